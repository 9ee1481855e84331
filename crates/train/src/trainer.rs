//! The training loop: batches from a [`Dataset`], a [`Model`]'s loss and gradient, the
//! optimiser with a schedule and clipping, evaluation every N steps, progress callbacks,
//! and whole-state checkpoints that resume bit for bit.

use std::path::PathBuf;
use std::time::Instant;

use autodiff::checkpoint::OptimizerState;
use autodiff::optim::{clip_grad_norm, Optimizer, Schedule};
use autodiff::Rng;

use crate::progress::{Callback, Progress};
use crate::state::{Totals, TrainState};
use crate::{memory, shuffled, Dataset, Error, Model};

/// How a run goes.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Epochs (passes over the data).
    pub epochs: u64,
    /// Samples per batch; the last partial batch of an epoch is dropped.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f64,
    /// The learning rate over the steps.
    pub schedule: Schedule,
    /// Clip the gradient's global norm to this.
    pub clip: Option<f64>,
    /// Evaluate every this many steps (and after the last).
    pub eval_every: Option<u64>,
    /// Where training states go (`state.bin`), saved every `checkpoint_every` steps and at
    /// the end.
    pub checkpoint_dir: Option<PathBuf>,
    /// Save every this many steps (with `checkpoint_dir`).
    pub checkpoint_every: Option<u64>,
    /// Continue from `checkpoint_dir/state.bin` if it exists.
    pub resume: bool,
    /// Seed of the training stream (shuffles, augmentation).
    pub seed: u64,
    /// Stop after this many steps of this process (the run can be resumed later).
    pub max_steps: Option<u64>,
    /// The run's length in steps, counted across resumes: it ends there, part way through
    /// its last epoch if need be (at most `epochs` full epochs either way). A resumed run
    /// that already took them trains no further.
    pub total_steps: Option<u64>,
}

impl TrainConfig {
    /// `epochs` of `batch_size` at a constant rate `lr`.
    pub fn new(epochs: u64, batch_size: usize, lr: f64) -> Self {
        TrainConfig {
            epochs,
            batch_size,
            lr,
            schedule: Schedule::Constant,
            clip: None,
            eval_every: None,
            checkpoint_dir: None,
            checkpoint_every: None,
            resume: false,
            seed: 0,
            max_steps: None,
            total_steps: None,
        }
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |what, detail: String| Err(Error::InvalidArgument { what, detail });
        if self.batch_size == 0 {
            return bad("batch size", "must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("learning rate", format!("{} must be positive and finite", self.lr));
        }
        if let Some(c) = self.clip {
            if !(c.is_finite() && c > 0.0) {
                return bad("gradient clip", format!("{c} must be positive and finite"));
            }
        }
        if self.eval_every == Some(0) || self.checkpoint_every == Some(0) {
            return bad("period", "eval_every and checkpoint_every must be at least 1".into());
        }
        if (self.checkpoint_every.is_some() || self.resume) && self.checkpoint_dir.is_none() {
            return bad("checkpoints", "checkpoint_every and resume need checkpoint_dir".into());
        }
        Ok(())
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Steps taken in all (across resumes).
    pub steps: u64,
    /// Whether the run reached its end: its last epoch or `total_steps` (false when
    /// `max_steps` stopped it).
    pub finished: bool,
    /// Training seconds in all (across resumes; evaluation excluded).
    pub seconds: f64,
    /// Seconds per epoch.
    pub seconds_per_epoch: f64,
    /// Mean loss of the last epoch (as far as it went).
    pub last_epoch_loss: f64,
    /// Mean forward NFE per step.
    pub nfe_forward: f64,
    /// Mean backward NFE per step.
    pub nfe_backward: f64,
    /// Peak heap bytes during this process's training, when measured.
    pub peak_bytes: Option<usize>,
    /// Evaluations: step and metrics.
    pub evals: Vec<(u64, Vec<(String, f64)>)>,
}

/// Trains models; holds the optimiser (and its state) between runs.
#[derive(Debug, Clone)]
pub struct Trainer {
    /// The run's settings.
    pub config: TrainConfig,
    /// The optimiser (saved in training states).
    pub optimizer: OptimizerState,
    /// The model's description, checked on resume.
    pub architecture: String,
}

/// An evaluation: named metrics of the model as it is.
pub type Evaluate<'a, M> = &'a mut dyn FnMut(&mut M) -> Result<Vec<(String, f64)>, Error>;

impl Trainer {
    /// A trainer; the optimiser's own learning rate is replaced by the schedule's.
    pub fn new(
        config: TrainConfig,
        optimizer: OptimizerState,
        architecture: &str,
    ) -> Result<Self, Error> {
        config.check()?;
        if matches!(optimizer, OptimizerState::None) {
            return Err(Error::InvalidArgument { what: "optimizer", detail: "none given".into() });
        }
        Ok(Trainer { config, optimizer, architecture: architecture.to_string() })
    }

    /// The state file of this trainer's checkpoint directory.
    pub fn state_path(&self) -> Option<PathBuf> {
        self.config.checkpoint_dir.as_ref().map(|d| d.join("state.bin"))
    }

    /// Trains `model` on `data`, calling `evaluate` every `eval_every` steps and at the
    /// end, and `callback` after every step.
    pub fn fit<M, D>(
        &mut self,
        model: &mut M,
        data: &D,
        mut evaluate: Option<Evaluate<'_, M>>,
        callback: &mut dyn Callback,
    ) -> Result<Summary, Error>
    where
        M: Model,
        D: Dataset<Batch = M::Batch>,
    {
        let cfg = self.config.clone();
        let batches = (data.len() / cfg.batch_size) as u64;
        if batches == 0 {
            return Err(Error::InvalidArgument {
                what: "dataset",
                detail: format!("{} samples make no batch of {}", data.len(), cfg.batch_size),
            });
        }
        let total_steps =
            cfg.total_steps.map_or(cfg.epochs * batches, |t| t.min(cfg.epochs * batches));
        let n = model.num_params();
        let mut params = vec![0.0; n];
        model.read_params(&mut params)?;
        let mut grad = vec![0.0; n];
        let (mut rng, mut epoch_rng) = (Rng::new(cfg.seed), Rng::new(cfg.seed));
        let (mut step, mut epoch, mut batch) = (0u64, 0u64, 0u64);
        let mut totals = Totals::default();
        if let Some(path) = self.state_path().filter(|p| cfg.resume && p.exists()) {
            let s = TrainState::load(&path)?;
            if s.architecture != self.architecture || s.params.len() != n {
                return Err(Error::Autodiff(autodiff::Error::CheckpointMismatch {
                    what: format!(
                        "{}: '{}' with {} parameters, the model is '{}' with {n}",
                        path.display(),
                        s.architecture,
                        s.params.len(),
                        self.architecture
                    ),
                }));
            }
            if s.batch >= batches {
                return Err(Error::InvalidArgument {
                    what: "training state",
                    detail: format!(
                        "{}: batch {} of an epoch that now has {batches} (resumed with other data?)",
                        path.display(),
                        s.batch
                    ),
                });
            }
            params = s.params;
            model.write_params(&params)?;
            self.optimizer = s.optimizer;
            (rng, epoch_rng) = (s.rng, s.epoch_rng);
            (step, epoch, batch, totals) = (s.step, s.epoch, s.batch, s.totals);
        }
        let base = memory::start();
        let start = Instant::now();
        let mut evals = Vec::new();
        let mut taken = 0u64;
        let mut stopped = false;
        let mut order =
            if batch > 0 { shuffled(data.len(), &mut epoch_rng.clone()) } else { Vec::new() };
        // One step per iteration; an epoch's shuffle is drawn when its first step is taken,
        // so a run stopped at an epoch's end resumes with the same stream.
        while epoch < cfg.epochs && step < total_steps {
            if cfg.max_steps.is_some_and(|m| taken >= m) {
                stopped = true;
                break;
            }
            if batch == 0 {
                epoch_rng = rng.clone();
                order = shuffled(data.len(), &mut rng);
                totals.epoch_loss = 0.0;
            }
            let t0 = Instant::now();
            let k = batch as usize;
            let idx = &order[k * cfg.batch_size..(k + 1) * cfg.batch_size];
            let b = data.batch(idx, &mut rng)?;
            model.set_step(step);
            let report = model.loss_and_grad(&b, &mut grad)?;
            if !report.loss.is_finite() {
                return Err(Error::NonFinite { what: "loss", step });
            }
            if grad.iter().any(|g| !g.is_finite()) {
                return Err(Error::NonFinite { what: "gradient", step });
            }
            if let Some(c) = cfg.clip {
                clip_grad_norm(&mut grad, c);
            }
            self.optimizer.set_learning_rate(cfg.schedule.lr(cfg.lr, step));
            self.optimizer.step(&mut params, &grad)?;
            model.write_params(&params)?;
            step += 1;
            batch += 1;
            taken += 1;
            totals.epoch_loss += report.loss;
            totals.nfe_forward += report.nfe_forward as u64;
            totals.nfe_backward += report.nfe_backward as u64;
            let elapsed = totals.seconds + start.elapsed().as_secs_f64();
            let per_step = elapsed / step as f64;
            callback.on_step(&Progress {
                step,
                total_steps,
                epoch: epoch + 1,
                epochs: cfg.epochs,
                batch,
                batches,
                loss: totals.epoch_loss / batch as f64,
                metrics: report.metrics,
                nfe_forward: totals.nfe_forward as f64 / step as f64,
                nfe_backward: totals.nfe_backward as f64 / step as f64,
                step_seconds: t0.elapsed().as_secs_f64(),
                elapsed,
                eta: per_step * total_steps.saturating_sub(step) as f64,
                peak_bytes: memory::since(base),
            });
            let last = step == total_steps;
            if let Some(every) = cfg.eval_every {
                if step.is_multiple_of(every) || last {
                    if let Some(ev) = evaluate.as_mut() {
                        let m = ev(model)?;
                        callback.on_eval(step, &m);
                        evals.push((step, m));
                    }
                }
            }
            if batch == batches {
                epoch += 1;
                batch = 0;
            }
            if cfg.checkpoint_every.is_some_and(|e| step.is_multiple_of(e)) && !last {
                self.save(&params, &rng, &epoch_rng, step, epoch, batch, totals, start, callback)?;
            }
        }
        let seconds = totals.seconds + start.elapsed().as_secs_f64();
        if cfg.checkpoint_dir.is_some() {
            self.save(&params, &rng, &epoch_rng, step, epoch, batch, totals, start, callback)?;
        }
        if cfg.eval_every.is_none() && !stopped {
            if let Some(ev) = evaluate.as_mut() {
                let m = ev(model)?;
                callback.on_eval(step, &m);
                evals.push((step, m));
            }
        }
        let done_batches = if batch == 0 { batches } else { batch };
        Ok(Summary {
            steps: step,
            finished: epoch >= cfg.epochs || step >= total_steps,
            seconds,
            seconds_per_epoch: seconds * batches as f64 / step.max(1) as f64,
            last_epoch_loss: totals.epoch_loss / done_batches as f64,
            nfe_forward: totals.nfe_forward as f64 / step.max(1) as f64,
            nfe_backward: totals.nfe_backward as f64 / step.max(1) as f64,
            peak_bytes: memory::since(base),
            evals,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn save(
        &self,
        params: &[f64],
        rng: &Rng,
        epoch_rng: &Rng,
        step: u64,
        epoch: u64,
        batch: u64,
        totals: Totals,
        start: Instant,
        callback: &mut dyn Callback,
    ) -> Result<(), Error> {
        let (Some(dir), Some(path)) = (self.config.checkpoint_dir.as_ref(), self.state_path())
        else {
            return Ok(());
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Io { path: dir.display().to_string(), message: e.to_string() })?;
        let state = TrainState {
            architecture: self.architecture.clone(),
            params: params.to_vec(),
            optimizer: self.optimizer.clone(),
            rng: rng.clone(),
            epoch_rng: epoch_rng.clone(),
            step,
            epoch,
            batch,
            totals: Totals { seconds: totals.seconds + start.elapsed().as_secs_f64(), ..totals },
        };
        state.save(&path)?;
        callback.on_checkpoint(step, &path);
        Ok(())
    }
}
