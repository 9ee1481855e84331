//! Training and evaluation through `train`: examples as a dataset whose batches carry the
//! `z0` noise (drawn from the trainer's stream, so a resumed run draws the same), the
//! model as a `train::Model`, and metrics over held-out series computed in parallel.

use rayon::prelude::*;

use crate::autodiff::Rng;
use crate::data::{Example, Series};
use crate::{Error, Forecaster, LatentOde, Prediction};

/// What [`Examples`], [`predict_all`], [`score`] and [`mean_neg_elbo`] need of a model:
/// [`LatentOde`] and [`Forecaster`] both are one.
pub trait SeriesModel {
    /// Values per observation.
    fn obs_dim(&self) -> usize;
    /// Standard normal values each example's batch entry carries (`z0` noise).
    fn noise_len(&self) -> usize;
    /// Conditions on `obs` and predicts at `times` ([`LatentOde::predict`]).
    fn predict_series(
        &mut self,
        obs: &Series,
        times: &[f64],
        samples: usize,
        rng: &mut Rng,
    ) -> Result<Prediction, Error>;
    /// The loss of reconstructing `obs` alone with noise `eps` and no KL warm-up: the
    /// negative ELBO of a latent ODE, the negative log-likelihood of a forecaster.
    fn observation_loss(&mut self, obs: &Series, eps: &[f64]) -> Result<f64, Error>;
}

impl SeriesModel for LatentOde {
    fn obs_dim(&self) -> usize {
        self.config.obs_dim
    }

    fn noise_len(&self) -> usize {
        self.config.samples * self.config.latent_dim
    }

    fn predict_series(
        &mut self,
        obs: &Series,
        times: &[f64],
        samples: usize,
        rng: &mut Rng,
    ) -> Result<Prediction, Error> {
        self.predict(obs, times, samples, rng)
    }

    fn observation_loss(&mut self, obs: &Series, eps: &[f64]) -> Result<f64, Error> {
        Ok(self.example_loss(&Example::observed(obs.clone()), eps, 1.0, None)?.loss)
    }
}

impl SeriesModel for Forecaster {
    fn obs_dim(&self) -> usize {
        self.config.obs_dim
    }

    fn noise_len(&self) -> usize {
        0
    }

    fn predict_series(
        &mut self,
        obs: &Series,
        times: &[f64],
        _samples: usize,
        _rng: &mut Rng,
    ) -> Result<Prediction, Error> {
        self.predict(obs, times)
    }

    fn observation_loss(&mut self, obs: &Series, eps: &[f64]) -> Result<f64, Error> {
        if !eps.is_empty() {
            return Err(Error::InvalidArgument {
                what: "noise",
                detail: format!("{} values for a forecaster, which draws none", eps.len()),
            });
        }
        Ok(self.example_loss(&Example::observed(obs.clone()), None)?.loss)
    }
}

/// A batch of examples with the reparameterisation noise of each.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesBatch {
    /// The examples.
    pub examples: Vec<Example>,
    /// `samples × latent_dim` standard normal values per example.
    pub eps: Vec<Vec<f64>>,
}

impl train::Chunk for SeriesBatch {
    fn chunk(&self, k: usize, parts: usize) -> Result<Self, train::Error> {
        let n = self.examples.len();
        if parts == 0 || k >= parts || n < parts {
            return Err(train::Error::InvalidArgument {
                what: "chunk",
                detail: format!("chunk {k} of {parts} of a batch of {n} series"),
            });
        }
        let (lo, hi) = (k * n / parts, (k + 1) * n / parts);
        Ok(SeriesBatch { examples: self.examples[lo..hi].to_vec(), eps: self.eps[lo..hi].to_vec() })
    }
}

/// Examples as a `train::Dataset`.
pub struct Examples {
    /// The examples.
    pub examples: Vec<Example>,
    /// Noise values per example (`samples × latent_dim`).
    pub noise_len: usize,
}

impl Examples {
    /// Checks every example (and that they share one `dim`).
    pub fn new<M: SeriesModel>(examples: Vec<Example>, model: &M) -> Result<Self, Error> {
        for e in &examples {
            e.check()?;
            if e.obs.dim != model.obs_dim() {
                return Err(Error::InvalidArgument {
                    what: "example",
                    detail: format!(
                        "'{}' has {} values per time, the model {}",
                        e.obs.id,
                        e.obs.dim,
                        model.obs_dim()
                    ),
                });
            }
        }
        Ok(Examples { examples, noise_len: model.noise_len() })
    }
}

impl train::Dataset for Examples {
    type Batch = SeriesBatch;

    fn len(&self) -> usize {
        self.examples.len()
    }

    fn batch(&self, indices: &[usize], rng: &mut Rng) -> Result<SeriesBatch, train::Error> {
        let mut examples = Vec::with_capacity(indices.len());
        for &i in indices {
            examples.push(self.examples.get(i).cloned().ok_or_else(|| {
                train::Error::InvalidArgument {
                    what: "series index",
                    detail: format!("{i} of {}", self.examples.len()),
                }
            })?);
        }
        let eps =
            indices.iter().map(|_| (0..self.noise_len).map(|_| rng.normal()).collect()).collect();
        Ok(SeriesBatch { examples, eps })
    }
}

impl train::Model for LatentOde {
    type Batch = SeriesBatch;

    fn num_params(&self) -> usize {
        LatentOde::num_params(self)
    }

    fn read_params(&self, out: &mut [f64]) -> Result<(), train::Error> {
        train::copy_params(out, &self.params())
    }

    fn write_params(&mut self, params: &[f64]) -> Result<(), train::Error> {
        self.set_params(params).map_err(train::Error::model)
    }

    fn set_step(&mut self, step: u64) {
        LatentOde::set_step(self, step);
    }

    fn loss_and_grad(
        &mut self,
        batch: &SeriesBatch,
        grad: &mut [f64],
    ) -> Result<train::StepReport, train::Error> {
        let p = if self.config.union_of_times {
            self.union_batch_loss_grad(&batch.examples, &batch.eps, grad)
        } else {
            self.batch_loss_grad(&batch.examples, &batch.eps, grad)
        }
        .map_err(train::Error::model)?;
        Ok(train::StepReport {
            loss: p.loss,
            metrics: vec![("nll", p.nll), ("kl", p.kl), ("beta", p.beta), ("mse", p.mse)],
            nfe_forward: p.nfe_forward.round() as usize,
            nfe_backward: p.nfe_backward.round() as usize,
        })
    }
}

impl train::Model for Forecaster {
    type Batch = SeriesBatch;

    fn num_params(&self) -> usize {
        Forecaster::num_params(self)
    }

    fn read_params(&self, out: &mut [f64]) -> Result<(), train::Error> {
        train::copy_params(out, &self.params())
    }

    fn write_params(&mut self, params: &[f64]) -> Result<(), train::Error> {
        self.set_params(params).map_err(train::Error::model)
    }

    fn loss_and_grad(
        &mut self,
        batch: &SeriesBatch,
        grad: &mut [f64],
    ) -> Result<train::StepReport, train::Error> {
        let p = self.batch_loss_grad(&batch.examples, grad).map_err(train::Error::model)?;
        Ok(train::StepReport {
            loss: p.loss,
            metrics: vec![("nll", p.nll), ("mse", p.mse)],
            nfe_forward: p.nfe_forward.round() as usize,
            nfe_backward: p.nfe_backward.round() as usize,
        })
    }
}

/// Scores of predictions on held-out entries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scores {
    /// Root mean squared error over all target entries.
    pub rmse_target: f64,
    /// Mean absolute error over all target entries.
    pub mae_target: f64,
    /// Root mean squared error of the reconstruction of the observed entries.
    pub rmse_obs: f64,
    /// Number of target entries scored.
    pub n_target: usize,
    /// Mean negative ELBO per series of the observed entries (one `z0` sample; `β = 1`).
    pub neg_elbo: f64,
}

/// Per-series predictions at the target times (and the reconstruction at the observed
/// times), the same for any thread count: series are split among `models` (copies with
/// the same parameters) in order, and series `i` draws from `Rng::new(seed).fork(i)`.
pub fn predict_all<M: SeriesModel + Send>(
    models: &mut [M],
    examples: &[Example],
    samples: usize,
    seed: u64,
) -> Result<Vec<(crate::Prediction, crate::Prediction)>, Error> {
    if models.is_empty() {
        return Err(Error::InvalidArgument { what: "models", detail: "at least one copy".into() });
    }
    let parts = models.len();
    let n = examples.len();
    let chunks: Vec<Result<Vec<_>, Error>> = models
        .par_iter_mut()
        .enumerate()
        .map(|(k, m)| {
            (k * n / parts..(k + 1) * n / parts)
                .map(|i| {
                    let ex = &examples[i];
                    let mut rng = Rng::new(seed).fork(i as u64);
                    let target = m.predict_series(&ex.obs, &ex.target.times, samples, &mut rng)?;
                    let recon = m.predict_series(&ex.obs, &ex.obs.times, samples, &mut rng)?;
                    Ok((target, recon))
                })
                .collect()
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for c in chunks {
        out.extend(c?);
    }
    Ok(out)
}

/// Scores `examples` with [`predict_all`]'s predictions (the mean over `samples` draws),
/// and the negative ELBO of the observations.
pub fn score<M: SeriesModel + Send>(
    models: &mut [M],
    examples: &[Example],
    samples: usize,
    seed: u64,
) -> Result<Scores, Error> {
    let preds = predict_all(models, examples, samples, seed)?;
    let mut s = score_predictions(examples, &preds)?;
    s.neg_elbo = mean_neg_elbo(&mut models[0], examples, seed ^ 0x5eed)?;
    Ok(s)
}

/// The mean negative ELBO (`β = 1`, one `z0` draw per series from `Rng::new(seed)`) of
/// the examples' observations.
/// (For a [`Forecaster`], the mean negative log-likelihood.)
pub fn mean_neg_elbo<M: SeriesModel>(
    model: &mut M,
    examples: &[Example],
    seed: u64,
) -> Result<f64, Error> {
    let noise_len = model.noise_len();
    let mut rng = Rng::new(seed);
    let mut total = 0.0;
    for ex in examples {
        let eps: Vec<f64> = (0..noise_len).map(|_| rng.normal()).collect();
        total += model.observation_loss(&ex.obs, &eps)?;
    }
    Ok(total / examples.len().max(1) as f64)
}

/// RMSE and MAE of `(target, reconstruction)` predictions (as [`predict_all`] returns
/// them, one pair per example) against the examples' observed entries; `neg_elbo` is 0.
pub fn score_predictions(
    examples: &[Example],
    preds: &[(crate::Prediction, crate::Prediction)],
) -> Result<Scores, Error> {
    if preds.len() != examples.len() {
        return Err(Error::InvalidArgument {
            what: "predictions",
            detail: format!("{} for {} examples", preds.len(), examples.len()),
        });
    }
    let mut s = Scores::default();
    let (mut se, mut ae, mut se_obs, mut n_obs) = (0.0, 0.0, 0.0, 0usize);
    for (ex, (target, recon)) in examples.iter().zip(preds) {
        for (series, pred, obs) in [(&ex.target, target, false), (&ex.obs, recon, true)] {
            for i in 0..series.len() {
                for j in 0..series.dim {
                    if let Some(v) = series.get(i, j) {
                        let row = pred.times.partition_point(|&t| t < series.times[i]);
                        let p = pred.mean.get(row).and_then(|r| r.get(j)).ok_or_else(|| {
                            Error::InvalidArgument {
                                what: "predictions",
                                detail: format!(
                                    "none at t = {} for '{}'",
                                    series.times[i], series.id
                                ),
                            }
                        })?;
                        let e = p - v;
                        if obs {
                            se_obs += e * e;
                            n_obs += 1;
                        } else {
                            se += e * e;
                            ae += e.abs();
                            s.n_target += 1;
                        }
                    }
                }
            }
        }
    }
    s.rmse_target = (se / s.n_target.max(1) as f64).sqrt();
    s.mae_target = ae / s.n_target.max(1) as f64;
    s.rmse_obs = (se_obs / n_obs.max(1) as f64).sqrt();
    Ok(s)
}
