//! Continuous-time forecasters that read a series forwards (no VAE): Rubanova's ODE-RNN
//! as a model of its own, and the two baselines users compare it with, an RNN with the
//! time gaps as input (RNN-Δt) and a GRU-D-style exponential decay (Che et al. 2018).
//!
//! All three keep a hidden state `h`, zero at the start, that is updated by a GRU cell at
//! each observation (reading `[h, x ⊙ m, m, Δt]`, the mask `m` marking the observed
//! values) and carried between observations by its [`Evolution`]. The prediction at any
//! time `t` is `output(h(t))` with `h(t)` carried from the last observation strictly
//! before `t`, so the loss scores each observation from the state *before* its update
//! (a one-step-ahead Gaussian likelihood) and every target from the state carried to it.

use adjoint::{AdjointOptions, AutodiffField, OdeBlock, Record, Strategy, VectorField};

use crate::autodiff::layers::{Activation, GruCell, Mlp};
use crate::autodiff::{Graph, GraphBlock, Rng};
use crate::data::{Example, Series};
use crate::model::{LossParts, Prediction};
use crate::ode_solvers::{Method, Options};
use crate::Error;

type Rec = Record<<Strategy as adjoint::AdjointStrategy>::Tape>;

const LN_2PI: f64 = 1.837_877_066_409_345_5;
/// The 95% quantile of the standard normal (the predictive band is mean ± this × σ).
const Z95: f64 = 1.644_853_626_951_472_7;

/// How the hidden state is carried from one observation to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evolution {
    /// ODE-RNN: `dh/dt = f(h)`, a neural ODE (an `adjoint` block, any strategy).
    Ode,
    /// RNN-Δt: the state is held; the prediction at `t` is the GRU cell stepped once
    /// with no data (`x = 0`, `m = 0`) and the gap `t − t_k` as input.
    Delta,
    /// GRU-D-style: `h(t) = γ(t − t_k) ⊙ h_k`, `γ(δ) = exp(−max(0, w δ + b))` per hidden
    /// unit, and a missing value fed to the cell as its last observed value decayed the
    /// same way toward 0 (the standardised mean) with its own `w, b` per value.
    Decay,
}

/// A forecaster's architecture and how it is solved.
#[derive(Debug, Clone)]
pub struct ForecastConfig {
    /// Values per observation.
    pub obs_dim: usize,
    /// The hidden state's size.
    pub hidden: usize,
    /// How the state is carried between observations.
    pub evolution: Evolution,
    /// Hidden widths of the ODE-RNN's field `f` (tanh).
    pub field_hidden: Vec<usize>,
    /// Hidden widths of the output network `h ↦ x̂`.
    pub output_hidden: Vec<usize>,
    /// Its activation.
    pub output_activation: Activation,
    /// The observation noise `σ` (the initial value when learnt).
    pub obs_std: f64,
    /// Learn `log σ`, one per observed value.
    pub learn_obs_std: bool,
    /// The time at which `h = 0`; `None`: each series' first observation (times before it
    /// are predicted from the zero state).
    pub time_origin: Option<f64>,
    /// The ODE-RNN's solves, forward; the backward is derived.
    pub solver: AdjointOptions,
    /// The gradient strategy of those solves.
    pub strategy: Strategy,
}

impl ForecastConfig {
    /// Rubanova et al.'s sizes scaled to the toy sets: hidden 25, field 25→25→25 (tanh),
    /// output 25→20→obs (ReLU), learnt noise from `σ = 0.1`, Dopri5 at rtol 1e-4 / atol
    /// 1e-5 with the backsolve adjoint.
    pub fn new(obs_dim: usize, evolution: Evolution) -> Self {
        ForecastConfig {
            obs_dim,
            hidden: 25,
            evolution,
            field_hidden: vec![25],
            output_hidden: vec![20],
            output_activation: Activation::Relu,
            obs_std: 0.1,
            learn_obs_std: true,
            time_origin: None,
            solver: AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-4).atol(1e-5)),
            strategy: Strategy::Backsolve,
        }
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |what, detail: String| Err(Error::InvalidArgument { what, detail });
        let huge = 1 << 20;
        if self.obs_dim == 0 || self.hidden == 0 || self.obs_dim > huge || self.hidden > huge {
            return bad(
                "model size",
                format!("obs_dim {} and hidden {} must be in 1..=2^20", self.obs_dim, self.hidden),
            );
        }
        if self.field_hidden.iter().chain(&self.output_hidden).any(|&w| w == 0 || w > huge) {
            return bad("hidden widths", "every hidden width must be in 1..=2^20".into());
        }
        if !(self.obs_std.is_finite() && self.obs_std > 0.0) {
            return bad(
                "observation noise",
                format!("{} must be positive and finite", self.obs_std),
            );
        }
        if self.time_origin.is_some_and(|t| !t.is_finite()) {
            return bad("time origin", "must be finite".into());
        }
        Ok(())
    }
}

/// The update at a segment's closing observation.
struct Update {
    /// The cell's input `[h⁻, x', m, Δt]`.
    input: Vec<f64>,
    /// Where `h⁻` comes from (ODE): the solve's last output, or the anchor when the
    /// observation is at the anchor.
    from_solve: bool,
    /// The gap from the anchor.
    delta: f64,
    /// GRU-D: each missing value's (index, last observed value, time since it).
    missing: Vec<(usize, f64, f64)>,
}

/// One stretch from an anchor (the start, or an observation after its update) to the
/// next observation (or past the last one).
struct Segment {
    anchor: f64,
    h_a: Vec<f64>,
    /// Queries strictly after the anchor: (query index, time, slot in the solve's outputs).
    queries: Vec<(usize, f64, usize)>,
    /// Queries at or before the anchor (only the first segment has them): their state is
    /// the anchor's.
    at_anchor: Vec<usize>,
    rec: Option<Rec>,
    update: Option<Update>,
}

struct Tape {
    segments: Vec<Segment>,
    /// The state at each query time.
    hq: Vec<Vec<f64>>,
    nfe: usize,
}

/// A forward-reading forecaster: ODE-RNN, RNN-Δt or GRU-D ([`Evolution`]).
pub struct Forecaster {
    /// Its configuration.
    pub config: ForecastConfig,
    cell: GraphBlock,
    field: Option<AutodiffField>,
    /// GRU-D: `w_h, b_h` (hidden), then `w_x, b_x` (values).
    decay: Vec<f64>,
    output: GraphBlock,
    log_std: Vec<f64>,
    parts: Vec<(&'static str, usize)>,
}

fn decay_factor(w: f64, b: f64, delta: f64) -> (f64, bool) {
    let a = w * delta + b;
    if a > 0.0 {
        ((-a).exp(), true)
    } else {
        (1.0, false)
    }
}

fn add_into(dst: &mut [f64], src: &[f64]) {
    for (a, b) in dst.iter_mut().zip(src) {
        *a += b;
    }
}

impl Forecaster {
    /// A forecaster with fresh parameters from `rng`.
    pub fn new(config: ForecastConfig, rng: &mut Rng) -> Result<Self, Error> {
        config.check()?;
        let (d, h) = (config.obs_dim, config.hidden);
        let u = 2 * d + 1;
        let mut g = Graph::new();
        let x = g.input(1, h + u);
        let hh = g.slice_cols(x, 0, h)?;
        let uu = g.slice_cols(x, h, u)?;
        let out = GruCell::new(&mut g, "gru", u, h, rng)?.forward(&mut g, uu, hh)?;
        let cell = GraphBlock::new(g, x, out)?;
        let field = if config.evolution == Evolution::Ode {
            let mut w = vec![h];
            w.extend_from_slice(&config.field_hidden);
            w.push(h);
            let mut g = Graph::new();
            let x = g.input(1, h);
            let y = Mlp::new(&mut g, "ode_rnn", &w, Activation::Tanh, rng)?.forward(&mut g, x)?;
            Some(AutodiffField::new(g, y)?)
        } else {
            None
        };
        let decay = if config.evolution == Evolution::Decay {
            // Positive rates so every unit starts decaying (a unit with w δ + b <= 0 has
            // no gradient until it crosses 0).
            let mut v = Vec::with_capacity(2 * (h + d));
            v.extend((0..h).map(|_| 0.1 + 0.9 * rng.uniform()));
            v.extend(std::iter::repeat_n(0.0, h));
            v.extend((0..d).map(|_| 0.1 + 0.9 * rng.uniform()));
            v.extend(std::iter::repeat_n(0.0, d));
            v
        } else {
            Vec::new()
        };
        let mut w = vec![h];
        w.extend_from_slice(&config.output_hidden);
        w.push(d);
        let mut g = Graph::new();
        let x = g.input(1, h);
        let y =
            Mlp::new(&mut g, "output", &w, config.output_activation, rng)?.forward(&mut g, x)?;
        let output = GraphBlock::new(g, x, y)?;
        let mut parts = vec![("cell", cell.graph().params().len())];
        if let Some(f) = &field {
            parts.push(("field", f.params().len()));
        }
        if !decay.is_empty() {
            parts.push(("decay", decay.len()));
        }
        parts.push(("output", output.graph().params().len()));
        if config.learn_obs_std {
            parts.push(("log_std", d));
        }
        let log_std = vec![config.obs_std.ln(); d];
        Ok(Forecaster { config, cell, field, decay, output, log_std, parts })
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
        if let Some(f) = &self.field {
            p.extend_from_slice(f.params());
        }
        p.extend_from_slice(&self.decay);
        p.extend_from_slice(self.output.graph().params());
        if self.config.learn_obs_std {
            p.extend_from_slice(&self.log_std);
        }
        p
    }

    /// Sets the parameters (the layout of [`Forecaster::params`]).
    pub fn set_params(&mut self, p: &[f64]) -> Result<(), Error> {
        crate::check_params(p, self.num_params())?;
        let mut at = 0;
        let mut take = |dst: &mut [f64]| {
            dst.copy_from_slice(&p[at..at + dst.len()]);
            at += dst.len();
        };
        take(self.cell.params_mut());
        if let Some(f) = &mut self.field {
            take(f.params_mut());
        }
        take(&mut self.decay);
        take(self.output.params_mut());
        if self.config.learn_obs_std {
            take(&mut self.log_std);
        }
        Ok(())
    }

    /// The observation noise `σ` per value.
    pub fn obs_std(&self) -> Vec<f64> {
        self.log_std.iter().map(|l| l.exp()).collect()
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

    fn block(&self) -> OdeBlock {
        OdeBlock::new(self.config.strategy, self.config.solver.clone())
    }

    fn check_series(&self, s: &Series) -> Result<(), Error> {
        s.check()?;
        if s.dim != self.config.obs_dim {
            return Err(Error::InvalidArgument {
                what: "observations",
                detail: format!(
                    "'{}' has {} values per time, the model {}",
                    s.id, s.dim, self.config.obs_dim
                ),
            });
        }
        if s.is_empty() {
            return Err(Error::InvalidArgument {
                what: "observations",
                detail: format!("'{}' has none", s.id),
            });
        }
        Ok(())
    }

    /// The state carried `delta` past an anchor state `h_a` (RNN-Δt and GRU-D).
    fn carry(&mut self, h_a: &[f64], delta: f64) -> Result<Vec<f64>, Error> {
        let (d, h) = (self.config.obs_dim, self.config.hidden);
        match self.config.evolution {
            Evolution::Delta => {
                let mut x = Vec::with_capacity(h + 2 * d + 1);
                x.extend_from_slice(h_a);
                x.extend(std::iter::repeat_n(0.0, 2 * d));
                x.push(delta);
                Ok(self.cell.forward(&x)?.to_vec())
            }
            Evolution::Decay => Ok((0..h)
                .map(|i| decay_factor(self.decay[i], self.decay[h + i], delta).0 * h_a[i])
                .collect()),
            Evolution::Ode => Err(Error::InvalidArgument {
                what: "evolution",
                detail: "the ODE-RNN carries its state by a solve".into(),
            }),
        }
    }

    /// Reads `obs` forwards and returns the state at each of the sorted, distinct `queries`.
    fn run(&mut self, obs: &Series, queries: &[f64]) -> Result<Tape, Error> {
        let (d, h) = (self.config.obs_dim, self.config.hidden);
        let n = obs.len();
        let start = self.config.time_origin.unwrap_or(obs.times[0]).min(obs.times[0]);
        let block = self.block();
        let mut hq = vec![Vec::new(); queries.len()];
        let mut segments = Vec::with_capacity(n + 1);
        let mut h_a = vec![0.0; h];
        let mut anchor = start;
        let mut next_q = 0;
        let mut nfe = 0;
        // Per value: the last observed value and its time (GRU-D's input decay).
        let mut last = vec![(0.0, start); d];
        for k in 0..=n {
            let end = (k < n).then(|| obs.times[k]);
            let mut seg = Segment {
                anchor,
                h_a: h_a.clone(),
                queries: Vec::new(),
                at_anchor: Vec::new(),
                rec: None,
                update: None,
            };
            while next_q < queries.len() && end.is_none_or(|e| queries[next_q] <= e) {
                let t = queries[next_q];
                if t <= anchor && self.config.evolution == Evolution::Ode {
                    seg.at_anchor.push(next_q);
                } else {
                    seg.queries.push((next_q, t, 0));
                }
                next_q += 1;
            }
            let mut pre = h_a.clone();
            let mut from_solve = false;
            match self.config.evolution {
                Evolution::Ode => {
                    let mut ts = vec![anchor];
                    for q in &mut seg.queries {
                        if q.1 < end.unwrap_or(f64::INFINITY) {
                            q.2 = ts.len();
                            ts.push(q.1);
                        }
                    }
                    if let Some(e) = end.filter(|&e| e > anchor) {
                        ts.push(e);
                        for q in &mut seg.queries {
                            if q.1 == e {
                                q.2 = ts.len() - 1;
                            }
                        }
                    }
                    if ts.len() > 1 {
                        let field = self.field.as_ref().ok_or(Error::InvalidArgument {
                            what: "evolution",
                            detail: "no ODE-RNN field".into(),
                        })?;
                        let rec = block.forward(field, &h_a, &ts)?;
                        nfe += rec.nfe_forward;
                        for q in &seg.queries {
                            hq[q.0] = rec.zs[q.2].clone();
                        }
                        if end.is_some_and(|e| e > anchor) {
                            pre = rec.zs[ts.len() - 1].clone();
                            from_solve = true;
                        }
                        seg.rec = Some(rec);
                    }
                    for &qi in &seg.at_anchor {
                        hq[qi] = h_a.clone();
                    }
                }
                Evolution::Delta | Evolution::Decay => {
                    for qi in 0..seg.queries.len() {
                        let (i, t, _) = seg.queries[qi];
                        hq[i] = self.carry(&h_a, (t - anchor).max(0.0))?;
                    }
                    if let (Evolution::Decay, Some(e)) = (self.config.evolution, end) {
                        pre = self.carry(&h_a, e - anchor)?;
                    }
                }
            }
            let Some(e) = end else {
                segments.push(seg);
                break;
            };
            // The update at observation k.
            let delta = e - anchor;
            let mut input = Vec::with_capacity(h + 2 * d + 1);
            input.extend_from_slice(&pre);
            let mut missing = Vec::new();
            for (j, lj) in last.iter_mut().enumerate() {
                match obs.get(k, j) {
                    Some(v) => {
                        input.push(v);
                        *lj = (v, e);
                    }
                    None if self.config.evolution == Evolution::Decay => {
                        let since = e - lj.1;
                        let (g, _) =
                            decay_factor(self.decay[2 * h + j], self.decay[2 * h + d + j], since);
                        input.push(g * lj.0);
                        missing.push((j, lj.0, since));
                    }
                    None => input.push(0.0),
                }
            }
            for j in 0..d {
                input.push(if obs.mask[k * d + j] { 1.0 } else { 0.0 });
            }
            input.push(delta);
            h_a = self.cell.forward(&input)?.to_vec();
            seg.update = Some(Update { input, from_solve, delta, missing });
            segments.push(seg);
            anchor = e;
        }
        Ok(Tape { segments, hq, nfe })
    }

    /// GRU-D's hidden decay backward: adds `∂/∂h_a` into `dh_a` and the rates' gradients.
    fn decay_backward(&self, h_a: &[f64], delta: f64, dh: &[f64], dh_a: &mut [f64], g: &mut [f64]) {
        let h = self.config.hidden;
        for i in 0..h {
            let (gamma, active) = decay_factor(self.decay[i], self.decay[h + i], delta);
            dh_a[i] += gamma * dh[i];
            if active {
                let da = -gamma * h_a[i] * dh[i];
                g[i] += da * delta;
                g[h + i] += da;
            }
        }
    }

    /// The loss of one example: the Gaussian negative log-likelihood of every observed
    /// entry (each predicted before its own update) and every target entry; with `grad`,
    /// its gradient is added.
    pub fn example_loss(
        &mut self,
        ex: &Example,
        grad: Option<&mut [f64]>,
    ) -> Result<LossParts, Error> {
        ex.check()?;
        self.check_series(&ex.obs)?;
        if let Some(g) = &grad {
            if g.len() != self.num_params() {
                return Err(Error::InvalidArgument {
                    what: "gradient buffer",
                    detail: format!("{} values for {} parameters", g.len(), self.num_params()),
                });
            }
        }
        let mut times: Vec<f64> = ex.obs.times.iter().chain(&ex.target.times).copied().collect();
        times.sort_by(f64::total_cmp);
        times.dedup();
        let tape = self.run(&ex.obs, &times)?;
        let std = self.obs_std();
        let (d, h) = (self.config.obs_dim, self.config.hidden);
        let xs: Vec<Vec<f64>> = tape
            .hq
            .iter()
            .map(|z| Ok(self.output.forward(z)?.to_vec()))
            .collect::<Result<_, Error>>()?;
        let mut out = LossParts { beta: 0.0, nfe_forward: tape.nfe as f64, ..LossParts::default() };
        let mut dx = vec![vec![0.0; d]; times.len()];
        let mut d_log_std = vec![0.0; d];
        let mut count = 0usize;
        for s in [&ex.obs, &ex.target] {
            for i in 0..s.len() {
                let k = times.partition_point(|&t| t < s.times[i]);
                for j in 0..d {
                    if let Some(v) = s.get(i, j) {
                        let r = (xs[k][j] - v) / std[j];
                        out.nll += 0.5 * r * r + self.log_std[j] + 0.5 * LN_2PI;
                        out.mse += (xs[k][j] - v).powi(2);
                        dx[k][j] += r / std[j];
                        d_log_std[j] += 1.0 - r * r;
                        count += 1;
                    }
                }
            }
        }
        out.mse /= count.max(1) as f64;
        out.loss = out.nll;
        if !out.loss.is_finite() {
            return Err(Error::NonFinite { what: "loss", index: 0, series: ex.obs.id.clone() });
        }
        let Some(grad) = grad else { return Ok(out) };
        let mut dparams = vec![0.0; self.num_params()];
        let r_out = self.range("output");
        let mut tmp = vec![0.0; r_out.len()];
        let mut dhq = Vec::with_capacity(times.len());
        for k in 0..times.len() {
            dhq.push(self.output.backward_at(&tape.hq[k], &dx[k], &mut tmp)?.to_vec());
            add_into(&mut dparams[r_out.clone()], &tmp);
        }
        let (r_cell, r_field, r_decay) =
            (self.range("cell"), self.range("field"), self.range("decay"));
        let mut g_cell = vec![0.0; r_cell.len()];
        let mut g_field = vec![0.0; r_field.len()];
        let mut g_decay = vec![0.0; r_decay.len()];
        let mut tmp_cell = vec![0.0; r_cell.len()];
        let block = self.block();
        // The cotangent of the state after the current segment's update.
        let mut dh_plus = vec![0.0; h];
        for seg in tape.segments.iter().rev() {
            let mut dh_a = vec![0.0; h];
            let mut d_pre = None;
            if let Some(up) = &seg.update {
                let dxin = self.cell.backward_at(&up.input, &dh_plus, &mut tmp_cell)?.to_vec();
                add_into(&mut g_cell, &tmp_cell);
                for &(j, x_last, since) in &up.missing {
                    let (gamma, active) =
                        decay_factor(self.decay[2 * h + j], self.decay[2 * h + d + j], since);
                    if active {
                        let da = -gamma * x_last * dxin[h + j];
                        g_decay[2 * h + j] += da * since;
                        g_decay[2 * h + d + j] += da;
                    }
                }
                let dp = dxin[..h].to_vec();
                match self.config.evolution {
                    Evolution::Ode if up.from_solve => d_pre = Some(dp),
                    Evolution::Ode | Evolution::Delta => add_into(&mut dh_a, &dp),
                    Evolution::Decay => {
                        self.decay_backward(&seg.h_a, up.delta, &dp, &mut dh_a, &mut g_decay)
                    }
                }
            }
            match self.config.evolution {
                Evolution::Ode => {
                    for &qi in &seg.at_anchor {
                        add_into(&mut dh_a, &dhq[qi]);
                    }
                    if let Some(rec) = &seg.rec {
                        let mut cot = vec![vec![0.0; h]; rec.ts.len()];
                        for &(qi, _, slot) in &seg.queries {
                            add_into(&mut cot[slot], &dhq[qi]);
                        }
                        if let Some(dp) = &d_pre {
                            add_into(&mut cot[rec.ts.len() - 1], dp);
                        }
                        let field = self.field.as_ref().ok_or(Error::InvalidArgument {
                            what: "evolution",
                            detail: "no ODE-RNN field".into(),
                        })?;
                        let g = block.backward(field, rec, &cot)?;
                        add_into(&mut dh_a, &g.z0);
                        add_into(&mut g_field, &g.params);
                        out.nfe_backward += g.nfe_backward as f64;
                    }
                }
                Evolution::Delta => {
                    for &(qi, t, _) in &seg.queries {
                        let mut x = seg.h_a.clone();
                        x.extend(std::iter::repeat_n(0.0, 2 * d));
                        x.push((t - seg.anchor).max(0.0));
                        let dxin = self.cell.backward_at(&x, &dhq[qi], &mut tmp_cell)?;
                        add_into(&mut dh_a, &dxin[..h]);
                        add_into(&mut g_cell, &tmp_cell);
                    }
                }
                Evolution::Decay => {
                    for &(qi, t, _) in &seg.queries {
                        let delta = (t - seg.anchor).max(0.0);
                        self.decay_backward(&seg.h_a, delta, &dhq[qi], &mut dh_a, &mut g_decay);
                    }
                }
            }
            dh_plus = dh_a;
        }
        add_into(&mut dparams[r_cell], &g_cell);
        add_into(&mut dparams[r_field], &g_field);
        add_into(&mut dparams[r_decay], &g_decay);
        if self.config.learn_obs_std {
            add_into(&mut dparams[self.range("log_std")], &d_log_std);
        }
        if let Some(i) = dparams.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { what: "gradient", index: i, series: ex.obs.id.clone() });
        }
        add_into(grad, &dparams);
        Ok(out)
    }

    /// The mean loss of a batch and its gradient (mean over the batch) written into `grad`.
    pub fn batch_loss_grad(
        &mut self,
        examples: &[Example],
        grad: &mut [f64],
    ) -> Result<LossParts, Error> {
        if examples.is_empty() {
            return Err(Error::InvalidArgument { what: "batch", detail: "no examples".into() });
        }
        if grad.len() != self.num_params() {
            return Err(Error::InvalidArgument {
                what: "gradient buffer",
                detail: format!("{} values for {} parameters", grad.len(), self.num_params()),
            });
        }
        let mut total = LossParts::default();
        let mut g = vec![0.0; grad.len()];
        for ex in examples {
            let p = self.example_loss(ex, Some(&mut g))?;
            total.loss += p.loss;
            total.nll += p.nll;
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
            &mut total.mse,
            &mut total.nfe_forward,
            &mut total.nfe_backward,
        ] {
            *v /= n;
        }
        Ok(total)
    }

    /// Conditions on `obs` and predicts at `times` (any finite times; sorted and
    /// deduplicated in the result). The forecaster is deterministic: the band is the
    /// learnt noise's, mean ± 1.645 σ; `samples` and `rng` are unused.
    pub fn predict(&mut self, obs: &Series, times: &[f64]) -> Result<Prediction, Error> {
        self.check_series(obs)?;
        if let Some(i) = times.iter().position(|t| !t.is_finite()) {
            return Err(Error::InvalidArgument {
                what: "query times",
                detail: format!("time {i} is {}", times[i]),
            });
        }
        let mut ts = times.to_vec();
        ts.sort_by(f64::total_cmp);
        ts.dedup();
        let tape = self.run(obs, &ts)?;
        let std = self.obs_std();
        let mut mean = Vec::with_capacity(ts.len());
        for z in &tape.hq {
            mean.push(self.output.forward(z)?.to_vec());
        }
        if mean.iter().flatten().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite { what: "prediction", index: 0, series: obs.id.clone() });
        }
        let band = |sign: f64| -> Vec<Vec<f64>> {
            mean.iter()
                .map(|r| r.iter().zip(&std).map(|(m, s)| m + sign * Z95 * s).collect())
                .collect()
        };
        let (lower, upper) = (band(-1.0), band(1.0));
        Ok(Prediction { times: ts, mean, lower, upper })
    }
}
