//! The latent ODE VAE (Chen et al. 2018 §5; Rubanova et al. 2019) and its RNN-decoder
//! baseline, one series at a time: encoder (RNN, GRU or ODE-RNN, run backwards over the
//! observations) → `q(z0)` → ODE block → decoder, each piece with a forward and a
//! backward half.

use adjoint::{AdjointOptions, AutodiffField, OdeBlock, Record, Strategy, VectorField};

use crate::autodiff::layers::{Activation, GruCell, Linear, Mlp};
use crate::autodiff::{Graph, GraphBlock, Rng};
use crate::data::{Example, Series};
use crate::ode_solvers::{Method, Options};
use crate::Error;

type Rec = Record<<Strategy as adjoint::AdjointStrategy>::Tape>;

/// The recognition network's update at each observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderKind {
    /// Chen et al.'s `h' = tanh(W [x, h] + b)`.
    Rnn,
    /// A GRU cell.
    Gru,
    /// Rubanova's ODE-RNN: a GRU update at each observation, the hidden state evolved by
    /// its own neural ODE between observations.
    OdeRnn,
}

/// What turns `z0` into the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderKind {
    /// A neural ODE `dz/dt = f(z)` (the latent ODE).
    Ode,
    /// The baseline: a GRU stepped through the query times with the time gaps as input,
    /// from a deterministic initial state (no VAE).
    Rnn,
}

/// A latent model's architecture and how it is solved and trained.
#[derive(Debug, Clone)]
pub struct LatentConfig {
    /// Values per observation.
    pub obs_dim: usize,
    /// Latent dimension.
    pub latent_dim: usize,
    /// The encoder's update.
    pub encoder: EncoderKind,
    /// The encoder's hidden size (also the RNN decoder's state size).
    pub encoder_hidden: usize,
    /// Hidden widths of the ODE-RNN's own field (tanh).
    pub encoder_field_hidden: Vec<usize>,
    /// The decoder kind.
    pub decoder: DecoderKind,
    /// Hidden widths of the latent field `f`.
    pub field_hidden: Vec<usize>,
    /// Its activation.
    pub field_activation: Activation,
    /// Hidden widths of the output network `z ↦ x̂`.
    pub output_hidden: Vec<usize>,
    /// Its activation.
    pub output_activation: Activation,
    /// The observation noise `σ` of the Gaussian likelihood (the initial value when learnt).
    pub obs_std: f64,
    /// Learn `log σ`, one per observed value.
    pub learn_obs_std: bool,
    /// The KL term's final weight `β`.
    pub kl_weight: f64,
    /// Training steps over which `β` rises linearly from 0 (0: no warm-up).
    pub kl_warmup: u64,
    /// `z0` samples per series in training.
    pub samples: usize,
    /// The time at which `z0` lives; `None`: each series' first observation.
    pub time_origin: Option<f64>,
    /// The ODE solves (latent and ODE-RNN), forward; the backward is derived.
    pub solver: AdjointOptions,
    /// The gradient strategy.
    pub strategy: Strategy,
    /// Train with one stacked solve at the union of the batch's times
    /// ([`LatentOde::union_batch_loss_grad`]) instead of one solve per series.
    pub union_of_times: bool,
}

impl LatentConfig {
    /// Chen et al.'s spiral model (torchdiffeq `examples/latent_ode.py`): latent 4,
    /// recognition RNN with 25 hidden units, field 4→20→20→4 (ELU), decoder 4→20→obs
    /// (ReLU), `σ = 0.3`, one sample, `z0` at `t = 0`. Solved by Dopri5 at rtol 1e-5, atol
    /// 1e-6 with the backsolve adjoint. (Our RNN also reads the mask and the time gap.)
    pub fn chen(obs_dim: usize) -> Self {
        LatentConfig {
            obs_dim,
            latent_dim: 4,
            encoder: EncoderKind::Rnn,
            encoder_hidden: 25,
            encoder_field_hidden: vec![25],
            decoder: DecoderKind::Ode,
            field_hidden: vec![20, 20],
            field_activation: Activation::Elu(1.0),
            output_hidden: vec![20],
            output_activation: Activation::Relu,
            obs_std: 0.3,
            learn_obs_std: false,
            kl_weight: 1.0,
            kl_warmup: 0,
            samples: 1,
            time_origin: Some(0.0),
            solver: AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-5).atol(1e-6)),
            strategy: Strategy::Backsolve,
            union_of_times: false,
        }
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |what, detail: String| Err(Error::InvalidArgument { what, detail });
        if self.obs_dim == 0 || self.latent_dim == 0 || self.encoder_hidden == 0 {
            return bad(
                "model size",
                format!(
                    "obs_dim {}, latent_dim {} and encoder_hidden {} must be positive",
                    self.obs_dim, self.latent_dim, self.encoder_hidden
                ),
            );
        }
        let huge = 1 << 20;
        if self.obs_dim > huge || self.latent_dim > huge || self.encoder_hidden > huge {
            return bad("model size", "sizes above 2^20 are not supported".into());
        }
        let widths =
            self.field_hidden.iter().chain(&self.output_hidden).chain(&self.encoder_field_hidden);
        if widths.clone().any(|&w| w == 0 || w > huge) {
            return bad("hidden widths", "every hidden width must be in 1..=2^20".into());
        }
        if !(self.obs_std.is_finite() && self.obs_std > 0.0) {
            return bad(
                "observation noise",
                format!("{} must be positive and finite", self.obs_std),
            );
        }
        if !(self.kl_weight.is_finite() && self.kl_weight >= 0.0) {
            return bad("KL weight", format!("{} must be finite and non-negative", self.kl_weight));
        }
        if self.samples == 0 || self.samples > 4096 {
            return bad("samples", format!("{} must be in 1..=4096", self.samples));
        }
        if self.time_origin.is_some_and(|t| !t.is_finite()) {
            return bad("time origin", "must be finite".into());
        }
        Ok(())
    }

    /// `β` at a training step.
    pub fn beta(&self, step: u64) -> f64 {
        if self.kl_warmup == 0 {
            self.kl_weight
        } else {
            self.kl_weight * ((step as f64 + 1.0) / self.kl_warmup as f64).min(1.0)
        }
    }
}

/// A loss and its parts for a batch (means over its series).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LossParts {
    /// `nll + β kl` (the negative ELBO when `β = 1`).
    pub loss: f64,
    /// The Gaussian negative log-likelihood of the scored entries, summed per series.
    pub nll: f64,
    /// `KL(q(z0) ‖ N(0, I))` per series (0 for the RNN decoder).
    pub kl: f64,
    /// The KL weight used.
    pub beta: f64,
    /// Mean squared error of the scored entries (the mean prediction of the samples).
    pub mse: f64,
    /// Forward evaluations per series (all its solves).
    pub nfe_forward: f64,
    /// Backward evaluations per series.
    pub nfe_backward: f64,
}

/// A prediction at requested times: the mean over `z0` samples and 5% / 95% quantiles,
/// one row of `obs_dim` values per time.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The times.
    pub times: Vec<f64>,
    /// Means.
    pub mean: Vec<Vec<f64>>,
    /// 5% quantiles.
    pub lower: Vec<Vec<f64>>,
    /// 95% quantiles.
    pub upper: Vec<Vec<f64>>,
}

/// Where each decoded time's state comes from in an ODE decode.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Origin,
    After(usize),
    Before(usize),
}

/// The latent path at sorted query times: `z0` solved forwards to the later times and
/// backwards to the earlier ones.
struct Path {
    after: Option<Rec>,
    before: Option<Rec>,
    slots: Vec<Slot>,
}

/// Encoder tape: each step's cell input (and the ODE-RNN's solves between them).
struct EncoderTape {
    inputs: Vec<Vec<f64>>,
    solves: Vec<Rec>,
    h: Vec<f64>,
    nfe: usize,
}

/// A latent ODE (or its RNN-decoder baseline) over one series at a time.
pub struct LatentOde {
    /// Its configuration.
    pub config: LatentConfig,
    cell: GraphBlock,
    encoder_field: Option<AutodiffField>,
    head: GraphBlock,
    field: Option<AutodiffField>,
    decoder_cell: Option<GraphBlock>,
    output: GraphBlock,
    log_std: Vec<f64>,
    step: u64,
    /// The latent field at a stacked batch size (the union-of-times solve).
    stacked: Option<(usize, AutodiffField)>,
    /// Lengths of the parameter parts, in the flat order.
    parts: Vec<(&'static str, usize)>,
}

fn mlp_graph(
    name: &str,
    widths: &[usize],
    act: Activation,
    rng: &mut Rng,
) -> Result<(Graph, crate::autodiff::Var, crate::autodiff::Var), Error> {
    let mut g = Graph::new();
    let x = g.input(1, widths[0]);
    let y = Mlp::new(&mut g, name, widths, act, rng)?.forward(&mut g, x)?;
    Ok((g, x, y))
}

fn widths(first: usize, hidden: &[usize], last: usize) -> Vec<usize> {
    let mut w = vec![first];
    w.extend_from_slice(hidden);
    w.push(last);
    w
}

fn add_into(dst: &mut [f64], src: &[f64]) {
    for (a, b) in dst.iter_mut().zip(src) {
        *a += b;
    }
}

const LN_2PI: f64 = 1.837_877_066_409_345_5;

impl LatentOde {
    /// A model with fresh parameters from `rng`.
    pub fn new(config: LatentConfig, rng: &mut Rng) -> Result<Self, Error> {
        config.check()?;
        let (d, l, h) = (config.obs_dim, config.latent_dim, config.encoder_hidden);
        // The encoder cell reads [h, x ⊙ m, m, Δt].
        let u = 2 * d + 1;
        let mut g = Graph::new();
        let x = g.input(1, h + u);
        let out = match config.encoder {
            EncoderKind::Rnn => {
                let y = Linear::new(&mut g, "rnn", h + u, h, rng)?.forward(&mut g, x)?;
                g.tanh(y)?
            }
            EncoderKind::Gru | EncoderKind::OdeRnn => {
                let hh = g.slice_cols(x, 0, h)?;
                let uu = g.slice_cols(x, h, u)?;
                GruCell::new(&mut g, "gru", u, h, rng)?.forward(&mut g, uu, hh)?
            }
        };
        let cell = GraphBlock::new(g, x, out)?;
        let encoder_field = if config.encoder == EncoderKind::OdeRnn {
            let (g, _, y) = mlp_graph(
                "ode_rnn",
                &widths(h, &config.encoder_field_hidden, h),
                Activation::Tanh,
                rng,
            )?;
            Some(AutodiffField::new(g, y)?)
        } else {
            None
        };
        let (head_out, state) = match config.decoder {
            DecoderKind::Ode => (2 * l, l),
            DecoderKind::Rnn => (h, h),
        };
        let mut g = Graph::new();
        let x = g.input(1, h);
        let y = Linear::new(&mut g, "head", h, head_out, rng)?.forward(&mut g, x)?;
        let head = GraphBlock::new(g, x, y)?;
        let (field, decoder_cell) = match config.decoder {
            DecoderKind::Ode => {
                let (g, _, y) = mlp_graph(
                    "field",
                    &widths(l, &config.field_hidden, l),
                    config.field_activation,
                    rng,
                )?;
                (Some(AutodiffField::new(g, y)?), None)
            }
            DecoderKind::Rnn => {
                let mut g = Graph::new();
                let x = g.input(1, h + 1);
                let hh = g.slice_cols(x, 0, h)?;
                let dt = g.slice_cols(x, h, 1)?;
                let y = GruCell::new(&mut g, "decoder_gru", 1, h, rng)?.forward(&mut g, dt, hh)?;
                (None, Some(GraphBlock::new(g, x, y)?))
            }
        };
        let (g, x, y) = mlp_graph(
            "output",
            &widths(state, &config.output_hidden, d),
            config.output_activation,
            rng,
        )?;
        let output = GraphBlock::new(g, x, y)?;
        let log_std = vec![config.obs_std.ln(); d];
        let mut parts = vec![("encoder", cell.graph().params().len())];
        if let Some(f) = &encoder_field {
            parts.push(("encoder_field", f.params().len()));
        }
        parts.push(("head", head.graph().params().len()));
        if let Some(f) = &field {
            parts.push(("field", f.params().len()));
        }
        if let Some(c) = &decoder_cell {
            parts.push(("decoder_cell", c.graph().params().len()));
        }
        parts.push(("output", output.graph().params().len()));
        if config.learn_obs_std {
            parts.push(("log_std", d));
        }
        Ok(LatentOde {
            config,
            cell,
            encoder_field,
            head,
            field,
            decoder_cell,
            output,
            log_std,
            step: 0,
            stacked: None,
            parts,
        })
    }

    /// Number of trainable parameters.
    pub fn num_params(&self) -> usize {
        self.parts.iter().map(|p| p.1).sum()
    }

    /// The parameter parts (name, length) in the flat order.
    pub fn param_parts(&self) -> &[(&'static str, usize)] {
        &self.parts
    }

    /// All parameters as one flat vector.
    pub fn params(&self) -> Vec<f64> {
        let mut p = Vec::with_capacity(self.num_params());
        p.extend_from_slice(self.cell.graph().params());
        if let Some(f) = &self.encoder_field {
            p.extend_from_slice(f.params());
        }
        p.extend_from_slice(self.head.graph().params());
        if let Some(f) = &self.field {
            p.extend_from_slice(f.params());
        }
        if let Some(c) = &self.decoder_cell {
            p.extend_from_slice(c.graph().params());
        }
        p.extend_from_slice(self.output.graph().params());
        if self.config.learn_obs_std {
            p.extend_from_slice(&self.log_std);
        }
        p
    }

    /// Sets the parameters (the layout of [`LatentOde::params`]).
    pub fn set_params(&mut self, p: &[f64]) -> Result<(), Error> {
        crate::check_params(p, self.num_params())?;
        let mut at = 0;
        let mut take = |dst: &mut [f64]| {
            dst.copy_from_slice(&p[at..at + dst.len()]);
            at += dst.len();
        };
        take(self.cell.params_mut());
        if let Some(f) = &mut self.encoder_field {
            take(f.params_mut());
        }
        take(self.head.params_mut());
        if let Some(f) = &mut self.field {
            take(f.params_mut());
        }
        if let Some(c) = &mut self.decoder_cell {
            take(c.params_mut());
        }
        take(self.output.params_mut());
        if self.config.learn_obs_std {
            take(&mut self.log_std);
        }
        Ok(())
    }

    /// Sets the training step (for the KL warm-up).
    pub fn set_step(&mut self, step: u64) {
        self.step = step;
    }

    /// The observation noise `σ` per value.
    pub fn obs_std(&self) -> Vec<f64> {
        self.log_std.iter().map(|l| l.exp()).collect()
    }

    fn block(&self) -> OdeBlock {
        OdeBlock::new(self.config.strategy, self.config.solver.clone())
    }

    fn check_series(&self, s: &Series, what: &'static str) -> Result<(), Error> {
        s.check()?;
        if s.dim != self.config.obs_dim {
            return Err(Error::InvalidArgument {
                what,
                detail: format!(
                    "'{}' has {} values per time, the model {}",
                    s.id, s.dim, self.config.obs_dim
                ),
            });
        }
        Ok(())
    }

    fn encode(&mut self, obs: &Series) -> Result<EncoderTape, Error> {
        let (d, h) = (self.config.obs_dim, self.config.encoder_hidden);
        let n = obs.len();
        if n == 0 {
            return Err(Error::InvalidArgument {
                what: "observations",
                detail: format!("'{}' has none to encode", obs.id),
            });
        }
        let block = self.block();
        let mut state = vec![0.0; h];
        let mut tape =
            EncoderTape { inputs: Vec::with_capacity(n), solves: Vec::new(), h: vec![], nfe: 0 };
        for k in (0..n).rev() {
            if let (Some(f), true) = (&self.encoder_field, k + 1 < n) {
                let rec = block.forward(f, &state, &[obs.times[k + 1], obs.times[k]])?;
                state.copy_from_slice(&rec.zs[1]);
                tape.nfe += rec.nfe_forward;
                tape.solves.push(rec);
            }
            let dt = if k + 1 < n { obs.times[k + 1] - obs.times[k] } else { 0.0 };
            let mut x = Vec::with_capacity(h + 2 * d + 1);
            x.extend_from_slice(&state);
            for j in 0..d {
                x.push(obs.get(k, j).unwrap_or(0.0));
            }
            for j in 0..d {
                x.push(if obs.mask[k * d + j] { 1.0 } else { 0.0 });
            }
            x.push(dt);
            state.copy_from_slice(self.cell.forward(&x)?);
            tape.inputs.push(x);
        }
        tape.h = state;
        Ok(tape)
    }

    /// Backpropagates `dh` (of the final hidden state) through the encoder, adding its
    /// parameter gradients into `g_cell`, `g_field`; returns the backward NFE.
    fn encode_backward(
        &mut self,
        tape: &EncoderTape,
        mut dh: Vec<f64>,
        g_cell: &mut [f64],
        g_field: &mut [f64],
    ) -> Result<usize, Error> {
        let h = self.config.encoder_hidden;
        let block = self.block();
        let mut tmp = vec![0.0; g_cell.len()];
        let mut nfe = 0;
        for s in (0..tape.inputs.len()).rev() {
            let dx = self.cell.backward_at(&tape.inputs[s], &dh, &mut tmp)?;
            dh.copy_from_slice(&dx[..h]);
            add_into(g_cell, &tmp);
            if s >= 1 {
                if let Some(f) = &self.encoder_field {
                    let rec = &tape.solves[s - 1];
                    let g = block.backward(f, rec, &[vec![0.0; h], dh.clone()])?;
                    dh = g.z0;
                    add_into(g_field, &g.params);
                    nfe += g.nfe_backward;
                }
            }
        }
        Ok(nfe)
    }

    fn origin(&self, obs: &Series) -> f64 {
        self.config.time_origin.unwrap_or(obs.times[0])
    }

    fn solve_path(
        &self,
        z0: &[f64],
        t0: f64,
        times: &[f64],
    ) -> Result<(Path, Vec<Vec<f64>>, usize), Error> {
        let field = self.field.as_ref().ok_or(Error::InvalidArgument {
            what: "decoder",
            detail: "not an ODE decoder".into(),
        })?;
        let block = self.block();
        let mut after_ts = vec![t0];
        let mut before_ts = vec![t0];
        let mut slots = Vec::with_capacity(times.len());
        for &t in times {
            if t > t0 {
                slots.push(Slot::After(after_ts.len()));
                after_ts.push(t);
            } else if t < t0 {
                slots.push(Slot::Before(0));
                before_ts.push(t);
            } else {
                slots.push(Slot::Origin);
            }
        }
        // The earlier times in decreasing order, nearest first.
        let nb = before_ts.len() - 1;
        let mut k = 0;
        for s in &mut slots {
            if let Slot::Before(_) = s {
                *s = Slot::Before(nb - k);
                k += 1;
            }
        }
        before_ts[1..].reverse();
        let after =
            if after_ts.len() > 1 { Some(block.forward(field, z0, &after_ts)?) } else { None };
        let before = if nb > 0 { Some(block.forward(field, z0, &before_ts)?) } else { None };
        let nfe = after.as_ref().map_or(0, |r| r.nfe_forward)
            + before.as_ref().map_or(0, |r| r.nfe_forward);
        let path = Path { after, before, slots };
        let zs = path
            .slots
            .iter()
            .map(|s| match *s {
                Slot::Origin => z0.to_vec(),
                Slot::After(i) => path.after.as_ref().map_or_else(Vec::new, |r| r.zs[i].clone()),
                Slot::Before(i) => path.before.as_ref().map_or_else(Vec::new, |r| r.zs[i].clone()),
            })
            .collect();
        Ok((path, zs, nfe))
    }

    /// Pulls `dz[i]` (per query time) back to `dz0`, adding the field's gradient.
    fn path_backward(
        &self,
        path: &Path,
        dz: &[Vec<f64>],
        g_field: &mut [f64],
    ) -> Result<(Vec<f64>, usize), Error> {
        let field = self.field.as_ref().ok_or(Error::InvalidArgument {
            what: "decoder",
            detail: "not an ODE decoder".into(),
        })?;
        let l = self.config.latent_dim;
        let block = self.block();
        let mut dz0 = vec![0.0; l];
        let mut nfe = 0;
        for (rec, after) in [(&path.after, true), (&path.before, false)] {
            let Some(rec) = rec else { continue };
            let mut cot = vec![vec![0.0; l]; rec.ts.len()];
            for (s, d) in path.slots.iter().zip(dz) {
                match (*s, after) {
                    (Slot::After(i), true) | (Slot::Before(i), false) => add_into(&mut cot[i], d),
                    _ => {}
                }
            }
            let g = block.backward(field, rec, &cot)?;
            add_into(&mut dz0, &g.z0);
            add_into(g_field, &g.params);
            nfe += g.nfe_backward;
        }
        for (s, d) in path.slots.iter().zip(dz) {
            if let Slot::Origin = s {
                add_into(&mut dz0, d);
            }
        }
        Ok((dz0, nfe))
    }

    /// The scored entries of an example: (time index into `times`, value index, value).
    fn scored(ex: &Example, with_target: bool) -> (Vec<f64>, Vec<(usize, usize, f64)>) {
        let mut times: Vec<f64> = ex.obs.times.clone();
        if with_target {
            times.extend_from_slice(&ex.target.times);
        }
        times.sort_by(f64::total_cmp);
        times.dedup();
        let mut entries = Vec::new();
        let mut add = |s: &Series| {
            for i in 0..s.len() {
                let k = times.partition_point(|&t| t < s.times[i]);
                for j in 0..s.dim {
                    if let Some(v) = s.get(i, j) {
                        entries.push((k, j, v));
                    }
                }
            }
        };
        add(&ex.obs);
        if with_target {
            add(&ex.target);
        }
        (times, entries)
    }

    fn range(&self, name: &str) -> std::ops::Range<usize> {
        let mut at = 0;
        for &(n, len) in &self.parts {
            if n == name {
                return at..at + len;
            }
            at += len;
        }
        at..at
    }

    /// The loss of one example (its `obs` and `target` entries reconstructed) with `β`
    /// and `z0` noise `eps` (`samples × latent_dim`); with `grad`, its gradient is added.
    pub fn example_loss(
        &mut self,
        ex: &Example,
        eps: &[f64],
        beta: f64,
        grad: Option<&mut [f64]>,
    ) -> Result<LossParts, Error> {
        ex.check()?;
        self.check_series(&ex.obs, "observations")?;
        let l = self.config.latent_dim;
        let samples = self.config.samples;
        if self.config.decoder == DecoderKind::Ode && eps.len() != samples * l {
            return Err(Error::InvalidArgument {
                what: "z0 noise",
                detail: format!("{} values for {samples} samples of {l}", eps.len()),
            });
        }
        if let Some(g) = &grad {
            if g.len() != self.num_params() {
                return Err(Error::InvalidArgument {
                    what: "gradient buffer",
                    detail: format!("{} values for {} parameters", g.len(), self.num_params()),
                });
            }
        }
        let (times, entries) = Self::scored(ex, true);
        let t0 = self.origin(&ex.obs);
        let tape = self.encode(&ex.obs)?;
        let head = self.head.forward(&tape.h)?.to_vec();
        let want = grad.is_some();
        let mut dparams = vec![0.0; if want { self.num_params() } else { 0 }];
        let mut out = LossParts { beta, nfe_forward: tape.nfe as f64, ..LossParts::default() };
        let mut d_head = vec![0.0; head.len()];
        let mut d_log_std = vec![0.0; self.config.obs_dim];
        match self.config.decoder {
            DecoderKind::Ode => {
                let (mu, lv) = head.split_at(l);
                let sig: Vec<f64> = lv.iter().map(|v| (0.5 * v).exp()).collect();
                let kl: f64 =
                    (0..l).map(|i| 0.5 * (lv[i].exp() + mu[i] * mu[i] - 1.0 - lv[i])).sum();
                let inv = 1.0 / samples as f64;
                for s in 0..samples {
                    let e = &eps[s * l..(s + 1) * l];
                    let z0: Vec<f64> = (0..l).map(|i| mu[i] + sig[i] * e[i]).collect();
                    let (path, zs, nfe) = self.solve_path(&z0, t0, &times)?;
                    out.nfe_forward += nfe as f64;
                    let dz = self.output_loss(
                        &zs,
                        &entries,
                        inv,
                        &mut out,
                        &mut d_log_std,
                        want.then_some(&mut dparams[..]),
                    )?;
                    if want {
                        let r_field = self.range("field");
                        let (dz0, nfe_b) = self.path_backward(&path, &dz, &mut dparams[r_field])?;
                        out.nfe_backward += nfe_b as f64;
                        for i in 0..l {
                            d_head[i] += dz0[i];
                            d_head[l + i] += dz0[i] * e[i] * 0.5 * sig[i];
                        }
                    }
                }
                out.kl = kl;
                for i in 0..l {
                    d_head[i] += beta * mu[i];
                    d_head[l + i] += beta * 0.5 * (lv[i].exp() - 1.0);
                }
            }
            DecoderKind::Rnn => {
                if times.first().is_some_and(|&t| t < t0) {
                    return Err(Error::InvalidArgument {
                        what: "query times",
                        detail: format!(
                            "the RNN decoder steps forward from {t0}; '{}' asks for {}",
                            ex.obs.id, times[0]
                        ),
                    });
                }
                let h = self.config.encoder_hidden;
                let (inputs, states) = self.rnn_decode(&head, t0, &times)?;
                let dz = self.output_loss(
                    &states,
                    &entries,
                    1.0,
                    &mut out,
                    &mut d_log_std,
                    want.then_some(&mut dparams[..]),
                )?;
                if want {
                    let r_cell = self.range("decoder_cell");
                    let mut tmp_cell = vec![0.0; r_cell.len()];
                    let mut carry = vec![0.0; h];
                    for k in (0..times.len()).rev() {
                        add_into(&mut carry, &dz[k]);
                        let cell = self.decoder_cell.as_mut().ok_or(Error::InvalidArgument {
                            what: "decoder",
                            detail: "no RNN decoder cell".into(),
                        })?;
                        let dxin = cell.backward_at(&inputs[k], &carry, &mut tmp_cell)?;
                        carry.copy_from_slice(&dxin[..h]);
                        add_into(&mut dparams[r_cell.clone()], &tmp_cell);
                    }
                    add_into(&mut d_head, &carry);
                }
            }
        }
        out.loss = out.nll + beta * out.kl;
        if let Some(grad) = grad {
            let r_head = self.range("head");
            let mut tmp = vec![0.0; r_head.len()];
            let dh = self.head.backward_at(&tape.h, &d_head, &mut tmp)?.to_vec();
            add_into(&mut dparams[r_head], &tmp);
            let (rc, rf) = (self.range("encoder"), self.range("encoder_field"));
            let (mut gc, mut gf) = (vec![0.0; rc.len()], vec![0.0; rf.len()]);
            out.nfe_backward += self.encode_backward(&tape, dh, &mut gc, &mut gf)? as f64;
            add_into(&mut dparams[rc], &gc);
            add_into(&mut dparams[rf], &gf);
            if self.config.learn_obs_std {
                add_into(&mut dparams[self.range("log_std")], &d_log_std);
            }
            if let Some(i) = dparams.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    what: "gradient",
                    index: i,
                    series: ex.obs.id.clone(),
                });
            }
            add_into(grad, &dparams);
        }
        if !out.loss.is_finite() {
            return Err(Error::NonFinite { what: "loss", index: 0, series: ex.obs.id.clone() });
        }
        Ok(out)
    }

    /// The Gaussian negative log-likelihood of `entries` (time index, value index, value)
    /// given latents `zs` per time, weighted by `weight`, added into `out`; with `dparams`,
    /// the output network's gradient is added there and `∂/∂z` per time returned.
    fn output_loss(
        &mut self,
        zs: &[Vec<f64>],
        entries: &[(usize, usize, f64)],
        weight: f64,
        out: &mut LossParts,
        d_log_std: &mut [f64],
        dparams: Option<&mut [f64]>,
    ) -> Result<Vec<Vec<f64>>, Error> {
        let std = self.obs_std();
        let n_entries = entries.len().max(1) as f64;
        let xs: Vec<Vec<f64>> = zs
            .iter()
            .map(|z| Ok(self.output.forward(z)?.to_vec()))
            .collect::<Result<_, Error>>()?;
        let mut dx = vec![vec![0.0; self.config.obs_dim]; zs.len()];
        for &(k, j, v) in entries {
            let r = (xs[k][j] - v) / std[j];
            out.nll += weight * (0.5 * r * r + self.log_std[j] + 0.5 * LN_2PI);
            out.mse += weight * (xs[k][j] - v).powi(2) / n_entries;
            dx[k][j] += weight * r / std[j];
            d_log_std[j] += weight * (1.0 - r * r);
        }
        let Some(dparams) = dparams else { return Ok(Vec::new()) };
        let r_out = self.range("output");
        let mut tmp = vec![0.0; r_out.len()];
        let mut dz = Vec::with_capacity(zs.len());
        for k in 0..zs.len() {
            dz.push(self.output.backward_at(&zs[k], &dx[k], &mut tmp)?.to_vec());
            add_into(&mut dparams[r_out.clone()], &tmp);
        }
        Ok(dz)
    }

    fn rnn_decode(
        &mut self,
        d0: &[f64],
        t0: f64,
        times: &[f64],
    ) -> Result<(Vec<Vec<f64>>, Vec<Vec<f64>>), Error> {
        let cell = self.decoder_cell.as_mut().ok_or(Error::InvalidArgument {
            what: "decoder",
            detail: "no RNN decoder cell".into(),
        })?;
        let mut state = d0.to_vec();
        let mut prev = t0;
        let (mut inputs, mut states) =
            (Vec::with_capacity(times.len()), Vec::with_capacity(times.len()));
        for &t in times {
            let mut x = state.clone();
            x.push(t - prev);
            state = cell.forward(&x)?.to_vec();
            inputs.push(x);
            states.push(state.clone());
            prev = t;
        }
        Ok((inputs, states))
    }

    /// The mean loss of a batch of examples (noise `eps[i]` for example `i`) at the
    /// current KL weight, its gradient (mean over the batch) written into `grad`.
    pub fn batch_loss_grad(
        &mut self,
        examples: &[Example],
        eps: &[Vec<f64>],
        grad: &mut [f64],
    ) -> Result<LossParts, Error> {
        if examples.is_empty() || eps.len() != examples.len() {
            return Err(Error::InvalidArgument {
                what: "batch",
                detail: format!("{} examples with {} noise vectors", examples.len(), eps.len()),
            });
        }
        if grad.len() != self.num_params() {
            return Err(Error::InvalidArgument {
                what: "gradient buffer",
                detail: format!("{} values for {} parameters", grad.len(), self.num_params()),
            });
        }
        let beta = self.config.beta(self.step);
        let mut total = LossParts { beta, ..LossParts::default() };
        let mut g = vec![0.0; grad.len()];
        for (ex, e) in examples.iter().zip(eps) {
            let p = self.example_loss(ex, e, beta, Some(&mut g))?;
            total.loss += p.loss;
            total.nll += p.nll;
            total.kl += p.kl;
            total.mse += p.mse;
            total.nfe_forward += p.nfe_forward;
            total.nfe_backward += p.nfe_backward;
        }
        let n = examples.len() as f64;
        for (a, b) in grad.iter_mut().zip(&g) {
            *a = b / n;
        }
        for v in [
            &mut total.loss,
            &mut total.nll,
            &mut total.kl,
            &mut total.mse,
            &mut total.nfe_forward,
            &mut total.nfe_backward,
        ] {
            *v /= n;
        }
        Ok(total)
    }

    /// The same loss and gradient as [`LatentOde::batch_loss_grad`], but with the latent
    /// paths of the whole batch (every series and `z0` sample) stacked into one state and
    /// solved once at the union of all series' times — torchdiffeq's trick, which makes
    /// every series' solve stop at every other series' times. Needs a fixed
    /// [`LatentConfig::time_origin`] at or before every scored time, and the ODE decoder.
    /// The two agree to solver tolerance (the stacked solve's steps are chosen for the
    /// whole batch at once).
    pub fn union_batch_loss_grad(
        &mut self,
        examples: &[Example],
        eps: &[Vec<f64>],
        grad: &mut [f64],
    ) -> Result<LossParts, Error> {
        let t0 = self.config.time_origin.ok_or(Error::InvalidArgument {
            what: "time origin",
            detail: "the union-of-times solve needs a fixed LatentConfig::time_origin".into(),
        })?;
        if self.config.decoder != DecoderKind::Ode {
            return Err(Error::InvalidArgument {
                what: "decoder",
                detail: "the union-of-times solve is for the ODE decoder".into(),
            });
        }
        let (l, samples) = (self.config.latent_dim, self.config.samples);
        if examples.is_empty()
            || eps.len() != examples.len()
            || eps.iter().any(|e| e.len() != samples * l)
        {
            return Err(Error::InvalidArgument {
                what: "batch",
                detail: format!(
                    "{} examples need as many noise vectors of {}",
                    examples.len(),
                    samples * l
                ),
            });
        }
        if grad.len() != self.num_params() {
            return Err(Error::InvalidArgument {
                what: "gradient buffer",
                detail: format!("{} values for {} parameters", grad.len(), self.num_params()),
            });
        }
        let beta = self.config.beta(self.step);
        let rows = examples.len() * samples;
        // Encoders, one series at a time.
        let mut tapes = Vec::with_capacity(examples.len());
        let mut heads = Vec::with_capacity(examples.len());
        let mut scored = Vec::with_capacity(examples.len());
        let mut union: Vec<f64> = vec![t0];
        for ex in examples {
            ex.check()?;
            self.check_series(&ex.obs, "observations")?;
            let (times, entries) = Self::scored(ex, true);
            if let Some(&t) = times.first().filter(|&&t| t < t0) {
                return Err(Error::InvalidArgument {
                    what: "scored times",
                    detail: format!("'{}' has {t}, before the time origin {t0}", ex.obs.id),
                });
            }
            union.extend(times.iter().copied().filter(|&t| t > t0));
            let tape = self.encode(&ex.obs)?;
            heads.push(self.head.forward(&tape.h)?.to_vec());
            tapes.push(tape);
            scored.push((times, entries));
        }
        union.sort_by(f64::total_cmp);
        union.dedup();
        // z0 of every (series, sample) row, column-major rows × l.
        let mut z0 = vec![0.0; rows * l];
        for (b, head) in heads.iter().enumerate() {
            for s in 0..samples {
                for i in 0..l {
                    let sig = (0.5 * head[l + i]).exp();
                    z0[(b * samples + s) + i * rows] = head[i] + sig * eps[b][s * l + i];
                }
            }
        }
        let block = self.block();
        let field = self.stacked_field(rows)?;
        let rec = block.forward(field, &z0, &union)?;
        let mut out =
            LossParts { beta, nfe_forward: rec.nfe_forward as f64, ..LossParts::default() };
        let mut dparams = vec![0.0; self.num_params()];
        let mut d_log_std = vec![0.0; self.config.obs_dim];
        let mut cot = vec![vec![0.0; rows * l]; union.len()];
        let inv = 1.0 / samples as f64;
        for (b, (times, entries)) in scored.iter().enumerate() {
            let idx: Vec<usize> =
                times.iter().map(|&t| union.partition_point(|&u| u < t)).collect();
            for s in 0..samples {
                let row = b * samples + s;
                let zs: Vec<Vec<f64>> = idx
                    .iter()
                    .map(|&k| (0..l).map(|i| rec.zs[k][row + i * rows]).collect())
                    .collect();
                let mut part = LossParts::default();
                let dz = self.output_loss(
                    &zs,
                    entries,
                    inv,
                    &mut part,
                    &mut d_log_std,
                    Some(&mut dparams[..]),
                )?;
                out.nll += part.nll;
                out.mse += part.mse;
                for (k, d) in idx.iter().zip(&dz) {
                    for i in 0..l {
                        cot[*k][row + i * rows] += d[i];
                    }
                }
            }
        }
        let field = self.stacked_field(rows)?;
        let g = block.backward(field, &rec, &cot)?;
        out.nfe_backward = g.nfe_backward as f64;
        add_into(&mut dparams[self.range("field")], &g.params);
        for (b, head) in heads.iter().enumerate() {
            let (mu, lv) = head.split_at(l);
            let mut d_head = vec![0.0; 2 * l];
            for i in 0..l {
                let sig = (0.5 * lv[i]).exp();
                for s in 0..samples {
                    let dz0 = g.z0[(b * samples + s) + i * rows];
                    d_head[i] += dz0;
                    d_head[l + i] += dz0 * eps[b][s * l + i] * 0.5 * sig;
                }
                d_head[i] += beta * mu[i];
                d_head[l + i] += beta * 0.5 * (lv[i].exp() - 1.0);
                out.kl += 0.5 * (lv[i].exp() + mu[i] * mu[i] - 1.0 - lv[i]);
            }
            let r_head = self.range("head");
            let mut tmp = vec![0.0; r_head.len()];
            let dh = self.head.backward_at(&tapes[b].h, &d_head, &mut tmp)?.to_vec();
            add_into(&mut dparams[r_head], &tmp);
            let (rc, rf) = (self.range("encoder"), self.range("encoder_field"));
            let (mut gc, mut gf) = (vec![0.0; rc.len()], vec![0.0; rf.len()]);
            out.nfe_backward += self.encode_backward(&tapes[b], dh, &mut gc, &mut gf)? as f64;
            out.nfe_forward += tapes[b].nfe as f64;
            add_into(&mut dparams[rc], &gc);
            add_into(&mut dparams[rf], &gf);
        }
        if self.config.learn_obs_std {
            add_into(&mut dparams[self.range("log_std")], &d_log_std);
        }
        let n = examples.len() as f64;
        out.loss = (out.nll + beta * out.kl) / n;
        out.nll /= n;
        out.kl /= n;
        out.mse /= n;
        if let Some(i) = dparams.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "gradient",
                index: i,
                series: "(union batch)".into(),
            });
        }
        if !out.loss.is_finite() {
            return Err(Error::NonFinite {
                what: "loss",
                index: 0,
                series: "(union batch)".into(),
            });
        }
        for (a, b) in grad.iter_mut().zip(&dparams) {
            *a = b / n;
        }
        Ok(out)
    }

    /// The latent field for `rows` stacked states (built once per size, the current
    /// parameters copied in).
    fn stacked_field(&mut self, rows: usize) -> Result<&AutodiffField, Error> {
        let params = self.field.as_ref().map(|f| f.params().to_vec()).unwrap_or_default();
        if self.stacked.as_ref().is_none_or(|(r, _)| *r != rows) {
            let l = self.config.latent_dim;
            let mut g = Graph::new();
            let x = g.input(rows, l);
            let y = Mlp::new(
                &mut g,
                "field",
                &widths(l, &self.config.field_hidden, l),
                self.config.field_activation,
                &mut Rng::new(0),
            )?
            .forward(&mut g, x)?;
            self.stacked = Some((rows, AutodiffField::new(g, y)?));
        }
        let (_, f) = self
            .stacked
            .as_mut()
            .ok_or(Error::InvalidArgument { what: "stacked field", detail: "not built".into() })?;
        if f.params().len() != params.len() {
            return Err(Error::InvalidArgument {
                what: "stacked field",
                detail: format!("{} parameters, the field has {}", f.params().len(), params.len()),
            });
        }
        f.params_mut().copy_from_slice(&params);
        Ok(f)
    }

    /// `q(z0 | obs)`: the mean and log-variance (the RNN decoder's initial state and
    /// nothing for the RNN baseline).
    pub fn posterior(&mut self, obs: &Series) -> Result<(Vec<f64>, Vec<f64>), Error> {
        self.check_series(obs, "observations")?;
        let tape = self.encode(obs)?;
        let head = self.head.forward(&tape.h)?.to_vec();
        Ok(match self.config.decoder {
            DecoderKind::Ode => {
                let l = self.config.latent_dim;
                (head[..l].to_vec(), head[l..].to_vec())
            }
            DecoderKind::Rnn => (head, Vec::new()),
        })
    }

    /// Conditions on `obs` and predicts at `times` (any finite times; sorted and
    /// deduplicated in the result): the mean of `samples` decoded `z0` draws from `rng`
    /// and their 5% / 95% quantiles; `samples = 0` decodes the posterior mean alone.
    pub fn predict(
        &mut self,
        obs: &Series,
        times: &[f64],
        samples: usize,
        rng: &mut Rng,
    ) -> Result<Prediction, Error> {
        self.check_series(obs, "observations")?;
        if let Some(i) = times.iter().position(|t| !t.is_finite()) {
            return Err(Error::InvalidArgument {
                what: "query times",
                detail: format!("time {i} is {}", times[i]),
            });
        }
        if samples > 100_000 {
            return Err(Error::InvalidArgument {
                what: "samples",
                detail: format!("{samples} is more than 100 000"),
            });
        }
        let mut ts = times.to_vec();
        ts.sort_by(f64::total_cmp);
        ts.dedup();
        let t0 = self.origin(obs);
        let tape = self.encode(obs)?;
        let head = self.head.forward(&tape.h)?.to_vec();
        let d = self.config.obs_dim;
        let mut draws: Vec<Vec<Vec<f64>>> = Vec::new();
        match self.config.decoder {
            DecoderKind::Ode => {
                let l = self.config.latent_dim;
                let (mu, lv) = head.split_at(l);
                for _ in 0..samples.max(1) {
                    let z0: Vec<f64> = if samples == 0 {
                        mu.to_vec()
                    } else {
                        (0..l).map(|i| mu[i] + (0.5 * lv[i]).exp() * rng.normal()).collect()
                    };
                    let (_, zs, _) = self.solve_path(&z0, t0, &ts)?;
                    draws.push(
                        zs.iter()
                            .map(|z| Ok(self.output.forward(z)?.to_vec()))
                            .collect::<Result<_, Error>>()?,
                    );
                }
            }
            DecoderKind::Rnn => {
                if ts.first().is_some_and(|&t| t < t0) {
                    return Err(Error::InvalidArgument {
                        what: "query times",
                        detail: format!(
                            "the RNN decoder steps forward from {t0}; asked for {}",
                            ts[0]
                        ),
                    });
                }
                let (_, states) = self.rnn_decode(&head, t0, &ts)?;
                draws.push(
                    states
                        .iter()
                        .map(|z| Ok(self.output.forward(z)?.to_vec()))
                        .collect::<Result<_, Error>>()?,
                );
            }
        }
        let n = draws.len();
        let mut mean = vec![vec![0.0; d]; ts.len()];
        let mut lower = mean.clone();
        let mut upper = mean.clone();
        let mut col = vec![0.0; n];
        for k in 0..ts.len() {
            for j in 0..d {
                for (s, dr) in draws.iter().enumerate() {
                    col[s] = dr[k][j];
                }
                mean[k][j] = col.iter().sum::<f64>() / n as f64;
                col.sort_by(f64::total_cmp);
                lower[k][j] = quantile(&col, 0.05);
                upper[k][j] = quantile(&col, 0.95);
            }
        }
        if mean.iter().flatten().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite { what: "prediction", index: 0, series: obs.id.clone() });
        }
        Ok(Prediction { times: ts, mean, lower, upper })
    }
}

/// The `q` quantile of sorted values (linear interpolation).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos - pos.floor());
    let j = (i + 1).min(sorted.len() - 1);
    sorted[i] * (1.0 - f) + sorted[j] * f
}
