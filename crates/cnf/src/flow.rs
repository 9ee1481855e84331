//! The continuous normalizing flow: `dz/dt = f(z, t, θ)` from data `x = z(0)` to the base
//! at `z(T)`, with the log-density change and the RNODE regularisers integrated beside `z`.

use adjoint::{integrands, AdjointOptions, AutodiffField, OdeBlock, Strategy, VectorField};

use crate::autodiff::layers::{Activation, ConcatSquash, Linear, Mlp};
use crate::autodiff::{Binary, Graph, Rng, Unary, Var};
use crate::ode_solvers::{odeint, Method, Options};
use crate::planar::LogDensity;
use crate::Error;

/// How `tr(∂f/∂z)` is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trace {
    /// Exactly: `d` VJPs per evaluation (small `d`).
    Exact,
    /// Hutchinson's `εᵀ(∂f/∂z)ε`, one VJP; `ε` drawn once per solve and held fixed.
    Hutchinson(Noise),
}

/// The distribution of Hutchinson's probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noise {
    /// Standard normal entries.
    Gaussian,
    /// ±1 entries.
    Rademacher,
}

/// The vector field's architecture.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    /// FFJORD's stack of `ConcatSquash` layers with these hidden widths.
    ConcatSquash(Vec<usize>),
    /// A plain MLP on `[z, t]` with these hidden widths.
    Mlp(Vec<usize>),
    /// The planar CNF of Chen et al. 2018 §4: `f(z, t) = Σ_m u_m(t) tanh(w_m(t)ᵀz + b_m(t))`
    /// with `width` units whose `w, u, b` come from a hypernetwork of `t` (two tanh layers
    /// of `hyper_hidden`; `u = û ⊙ σ(g)` as in torchdiffeq's `cnf.py`). With
    /// [`Trace::Exact`] its trace is the closed form `Σ_m (1 − h_m²) u_mᵀw_m`, O(M d).
    Planar {
        /// Units `M`.
        width: usize,
        /// The hypernetwork's hidden width.
        hyper_hidden: usize,
    },
}

/// What a flow is and how it is solved.
#[derive(Debug, Clone)]
pub struct CnfConfig {
    /// Data dimension `d`.
    pub dim: usize,
    /// Samples per evaluation (the graph's batch).
    pub batch: usize,
    /// The field.
    pub field: FieldKind,
    /// Its hidden activation.
    pub activation: Activation,
    /// The trace estimator.
    pub trace: Trace,
    /// RNODE's kinetic-energy weight `λ_K` (`∫‖f‖² dt`).
    pub lambda_kinetic: f64,
    /// RNODE's Jacobian weight `λ_J` (`∫‖εᵀ∂f/∂z‖² dt`).
    pub lambda_jacobian: f64,
    /// The end time `T` (learnable with `train_end_time`, kept positive as `√T²`).
    pub end_time: f64,
    /// Learn `T` (FFJORD's `train_T`).
    pub train_end_time: bool,
    /// The solves (forward; the backward is derived). The log-density and regulariser
    /// states are outside the error control (a seminorm) unless `control_integrands`.
    pub solver: AdjointOptions,
    /// Put the log-density and regularisers under error control.
    pub control_integrands: bool,
    /// The gradient strategy.
    pub strategy: Strategy,
}

impl CnfConfig {
    /// FFJORD's toy setting: three `ConcatSquash` layers of 64, tanh, Hutchinson with
    /// Gaussian noise, `T = 1`, Dopri5 at 1e-5, backsolve.
    pub fn ffjord(dim: usize, batch: usize) -> Self {
        CnfConfig {
            dim,
            batch,
            field: FieldKind::ConcatSquash(vec![64, 64, 64]),
            activation: Activation::Tanh,
            trace: Trace::Hutchinson(Noise::Gaussian),
            lambda_kinetic: 0.0,
            lambda_jacobian: 0.0,
            end_time: 1.0,
            train_end_time: false,
            solver: AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-5).atol(1e-5)),
            control_integrands: false,
            strategy: Strategy::Backsolve,
        }
    }

    /// RNODE's recipe (Finlay et al. 2020): `λ_K = λ_J = 0.01` and fixed-step RK4 with step
    /// 0.25 for training; evaluate with [`Cnf::evaluation_options`] (Dopri5 at 1e-5).
    pub fn rnode(dim: usize, batch: usize) -> Self {
        CnfConfig {
            lambda_kinetic: 0.01,
            lambda_jacobian: 0.01,
            solver: AdjointOptions::new(Options::new(Method::Rk4).step_size(0.25)),
            ..CnfConfig::ffjord(dim, batch)
        }
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |what, detail: String| Err(Error::InvalidArgument { what, detail });
        if self.dim == 0 || self.batch == 0 {
            return bad(
                "flow size",
                format!("dim {} and batch {} must be positive", self.dim, self.batch),
            );
        }
        if let FieldKind::Planar { width, hyper_hidden } = self.field {
            if !(1..=1 << 16).contains(&width) || !(1..=1 << 16).contains(&hyper_hidden) {
                return bad(
                    "planar field",
                    format!("width {width} and hyper_hidden {hyper_hidden} must be in 1..=65536"),
                );
            }
        }
        if !(self.end_time.is_finite() && self.end_time > 0.0) {
            return bad("end time", format!("{} must be positive and finite", self.end_time));
        }
        for (name, l) in
            [("lambda_kinetic", self.lambda_kinetic), ("lambda_jacobian", self.lambda_jacobian)]
        {
            if !(l.is_finite() && l >= 0.0) {
                return bad(
                    "regulariser weight",
                    format!("{name} = {l} must be finite and non-negative"),
                );
            }
        }
        Ok(())
    }
}

/// Per-sample results of a forward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Densities {
    /// `log p(x)` for each sample.
    pub log_p: Vec<f64>,
    /// `∫₀ᵀ ‖f‖² dt` for each sample.
    pub kinetic: Vec<f64>,
    /// `∫₀ᵀ ‖εᵀ∂f/∂z‖² dt` for each sample.
    pub jacobian: Vec<f64>,
    /// The latents `z(T)`, one row per sample.
    pub z: Vec<Vec<f64>>,
    /// Forward evaluations.
    pub nfe: usize,
}

/// A loss with its gradients.
#[derive(Debug, Clone, PartialEq)]
pub struct LossGrad {
    /// `mean(−log p(x)) + λ_K mean(K) + λ_J mean(J)`.
    pub loss: f64,
    /// The mean negative log-likelihood part.
    pub nll: f64,
    /// The mean kinetic energy.
    pub kinetic: f64,
    /// The mean Jacobian term.
    pub jacobian: f64,
    /// `∂L/∂θ` of the field, then `∂L/∂√T` when `T` is learnt.
    pub params: Vec<f64>,
    /// `∂L/∂x`, column-major `batch × dim`.
    pub x: Vec<f64>,
    /// Forward and backward evaluations.
    pub nfe: (usize, usize),
}

type Rec = adjoint::Record<<Strategy as adjoint::AdjointStrategy>::Tape>;

/// A continuous normalizing flow with a standard normal base.
pub struct Cnf {
    /// Its configuration.
    pub config: CnfConfig,
    field: AutodiffField,
    /// `√T`.
    sqrt_t: f64,
}

/// The field's graph: `(graph, z, t, eps, f, closed-form trace if the field has one)`.
type FieldGraph = (Graph, Var, Var, Var, Var, Option<Var>);

fn field_graph(cfg: &CnfConfig, batch: usize, rng: &mut Rng) -> Result<FieldGraph, Error> {
    let d = cfg.dim;
    let mut g = Graph::new();
    let z = g.input(batch, d);
    let t = g.input(1, 1);
    let eps = g.input(batch, d);
    let mut trace = None;
    let f = match &cfg.field {
        FieldKind::ConcatSquash(hidden) => {
            let mut widths = vec![d];
            widths.extend(hidden);
            widths.push(d);
            let mut h = z;
            for (k, w) in widths.windows(2).enumerate() {
                h = ConcatSquash::new(&mut g, &format!("cs{k}"), w[0], w[1], rng)?
                    .forward(&mut g, h, t)?;
                if k + 2 < widths.len() {
                    h = cfg.activation.apply(&mut g, h)?;
                }
            }
            h
        }
        FieldKind::Mlp(hidden) => {
            let tcol = g.broadcast_to(t, (batch, 1))?;
            let zt = g.concat_cols(&[z, tcol])?;
            let mut widths = vec![d + 1];
            widths.extend(hidden);
            widths.push(d);
            Mlp::new(&mut g, "mlp", &widths, cfg.activation, rng)?.forward(&mut g, zt)?
        }
        &FieldKind::Planar { width: m, hyper_hidden: hh } => {
            let h0 = Linear::new(&mut g, "hyper0", 1, hh, rng)?.forward(&mut g, t)?;
            let h0 = g.tanh(h0)?;
            let h1 = Linear::new(&mut g, "hyper1", hh, hh, rng)?.forward(&mut g, h0)?;
            let hid = g.tanh(h1)?;
            let mut head = |g: &mut Graph, name: String| -> Result<Var, Error> {
                Ok(Linear::new(g, &name, hh, m, rng)?.forward(g, hid)?)
            };
            let b = head(&mut g, "hyper_b".into())?;
            let mut ws = Vec::with_capacity(d);
            let mut us = Vec::with_capacity(d);
            for j in 0..d {
                ws.push(head(&mut g, format!("hyper_w{j}"))?);
                let u = head(&mut g, format!("hyper_u{j}"))?;
                let gate = head(&mut g, format!("hyper_g{j}"))?;
                let gate = g.unary(Unary::Sigmoid, gate)?;
                us.push(g.binary(Binary::Mul, u, gate)?);
            }
            // a = B + Σ_j z_j w_j (batch × M), h = tanh(a), f_j = h u_jᵀ.
            let mut a = g.broadcast_to(b, (batch, m))?;
            for (j, &w) in ws.iter().enumerate() {
                let zj = g.slice_cols(z, j, 1)?;
                let zw = g.binary(Binary::Mul, zj, w)?;
                a = g.binary(Binary::Add, a, zw)?;
            }
            let h = g.tanh(a)?;
            let cols = us
                .iter()
                .map(|&u| Ok(g.matmul_t(h, u, false, true)?))
                .collect::<Result<Vec<_>, Error>>()?;
            let f = g.concat_cols(&cols)?;
            // tr ∂f/∂z = Σ_m (1 − h_m²) Σ_j u_jm w_jm.
            let mut uw = g.binary(Binary::Mul, us[0], ws[0])?;
            for j in 1..d {
                let p = g.binary(Binary::Mul, us[j], ws[j])?;
                uw = g.binary(Binary::Add, uw, p)?;
            }
            let h2 = g.unary(Unary::Square, h)?;
            let one = g.fill(batch, m, 1.0);
            let dh = g.binary(Binary::Sub, one, h2)?;
            trace = Some(g.matmul_t(dh, uw, false, true)?);
            f
        }
    };
    Ok((g, z, t, eps, f, trace))
}

impl Cnf {
    /// A flow with fresh parameters drawn from `rng`.
    pub fn new(config: CnfConfig, rng: &mut Rng) -> Result<Self, Error> {
        config.check()?;
        let field = Self::build(&config, config.batch, rng)?;
        Ok(Cnf { sqrt_t: config.end_time.sqrt(), config, field })
    }

    fn build(cfg: &CnfConfig, batch: usize, rng: &mut Rng) -> Result<AutodiffField, Error> {
        let (mut g, z, t, eps, f, closed) = field_graph(cfg, batch, rng)?;
        // One probe VJP εᵀ∂f/∂z serves the Hutchinson trace and RNODE's Jacobian term.
        let probe = integrands::probe_vjp(&mut g, f, z, eps)?;
        let tr = match (cfg.trace, closed) {
            (Trace::Exact, Some(tr)) => tr,
            (Trace::Exact, None) => integrands::exact_trace(&mut g, f, z)?,
            (Trace::Hutchinson(_), _) => integrands::hutchinson_trace(&mut g, probe, eps)?,
        };
        let dlogp = g.neg(tr)?;
        let kinetic = integrands::kinetic_energy(&mut g, f)?;
        let jacobian = integrands::jacobian_frobenius(&mut g, probe)?;
        let c = cfg.control_integrands;
        Ok(AutodiffField::builder(g)
            .state(z, f)
            .time(t)
            .extra("eps", eps)
            .integrand("dlogp", dlogp, c)
            .integrand("kinetic", kinetic, c)
            .integrand("jacobian", jacobian, c)
            .build()?)
    }

    /// The same flow (same parameters) evaluated on batches of `batch` samples.
    pub fn with_batch(&self, batch: usize) -> Result<Cnf, Error> {
        let config = CnfConfig { batch, ..self.config.clone() };
        config.check()?;
        let mut field = Self::build(&config, batch, &mut Rng::new(0))?;
        field.params_mut().copy_from_slice(self.field.params());
        Ok(Cnf { config, field, sqrt_t: self.sqrt_t })
    }

    /// The end time `T`.
    pub fn end_time(&self) -> f64 {
        self.sqrt_t * self.sqrt_t
    }

    /// All trainable parameters: the field's, then `√T` when it is learnt.
    pub fn params(&self) -> Vec<f64> {
        let mut p = self.field.params().to_vec();
        if self.config.train_end_time {
            p.push(self.sqrt_t);
        }
        p
    }

    /// Number of trainable parameters.
    pub fn num_params(&self) -> usize {
        self.field.params().len() + usize::from(self.config.train_end_time)
    }

    /// Sets the parameters (the layout of [`Cnf::params`]).
    pub fn set_params(&mut self, p: &[f64]) -> Result<(), Error> {
        let n = self.field.params().len();
        if p.len() != self.num_params() {
            return Err(Error::InvalidArgument {
                what: "flow parameters",
                detail: format!("{} values for {} parameters", p.len(), self.num_params()),
            });
        }
        if let Some(i) = p.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument {
                what: "flow parameters",
                detail: format!("parameter {i} is {}", p[i]),
            });
        }
        if self.config.train_end_time && p[n] == 0.0 {
            return Err(Error::InvalidArgument {
                what: "flow parameters",
                detail: "√T = 0: the end time must stay positive".into(),
            });
        }
        self.field.params_mut().copy_from_slice(&p[..n]);
        if self.config.train_end_time {
            self.sqrt_t = p[n];
        }
        Ok(())
    }

    /// The field (its graph, layout, parameters).
    pub fn field(&self) -> &AutodiffField {
        &self.field
    }

    /// Sets Hutchinson's probe `ε` (`batch × dim`, column-major) for the next solves; the
    /// exact trace ignores it except in the Jacobian term.
    pub fn set_noise(&mut self, eps: &[f64]) -> Result<(), Error> {
        Ok(self.field.set_extra("eps", eps)?)
    }

    /// Draws a probe from `rng` (the trace's noise; Gaussian for the exact trace).
    pub fn draw_noise(&self, rng: &mut Rng) -> Vec<f64> {
        let n = self.config.batch * self.config.dim;
        match self.config.trace {
            Trace::Hutchinson(Noise::Rademacher) => (0..n).map(|_| rng.rademacher()).collect(),
            _ => (0..n).map(|_| rng.normal()).collect(),
        }
    }

    /// Dopri5 at rtol = atol = 1e-5, the evaluation setting of FFJORD and RNODE.
    pub fn evaluation_options() -> AdjointOptions {
        AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-5).atol(1e-5))
    }

    fn block(&self, opts: &AdjointOptions) -> OdeBlock {
        OdeBlock::new(self.config.strategy, opts.clone().time_gradients(self.config.train_end_time))
    }

    fn initial_state(&self, x: &[f64]) -> Result<Vec<f64>, Error> {
        let (b, d) = (self.config.batch, self.config.dim);
        if x.len() != b * d {
            return Err(Error::InvalidArgument {
                what: "data batch",
                detail: format!("{} values for a batch of {b} × {d}", x.len()),
            });
        }
        let mut s = x.to_vec();
        s.extend(std::iter::repeat_n(0.0, 3 * b));
        Ok(s)
    }

    /// `log p(x)` and the regularisers for a batch `x` (column-major `batch × dim`), solved
    /// with `opts` (e.g. [`Cnf::evaluation_options`]).
    pub fn densities(&self, x: &[f64], opts: &AdjointOptions) -> Result<Densities, Error> {
        let (b, d) = (self.config.batch, self.config.dim);
        let s0 = self.initial_state(x)?;
        let rec = self.block(opts).forward(&self.field, &s0, &[0.0, self.end_time()])?;
        let end = &rec.zs[1];
        let z: Vec<Vec<f64>> = (0..b).map(|r| (0..d).map(|j| end[r + j * b]).collect()).collect();
        let log_p = (0..b).map(|r| log_normal(&z[r]) - end[b * d + r]).collect();
        Ok(Densities {
            log_p,
            kinetic: end[b * d + b..b * d + 2 * b].to_vec(),
            jacobian: end[b * d + 2 * b..b * d + 3 * b].to_vec(),
            z,
            nfe: rec.nfe_forward,
        })
    }

    /// The loss `mean(−log p(x)) + λ_K mean(K) + λ_J mean(J)` of a batch and its gradients
    /// with respect to the parameters (and `T`) and to `x`, by the configured strategy.
    pub fn loss_grad(&self, x: &[f64]) -> Result<LossGrad, Error> {
        let (b, d) = (self.config.batch, self.config.dim);
        let (lk, lj) = (self.config.lambda_kinetic, self.config.lambda_jacobian);
        let s0 = self.initial_state(x)?;
        let block = self.block(&self.config.solver);
        let t1 = self.end_time();
        let rec = block.forward(&self.field, &s0, &[0.0, t1])?;
        let end = &rec.zs[1];
        let n = b as f64;
        let (mut nll, mut kin, mut jac) = (0.0, 0.0, 0.0);
        let mut cot = vec![0.0; end.len()];
        for r in 0..b {
            let z: Vec<f64> = (0..d).map(|j| end[r + j * b]).collect();
            nll += (end[b * d + r] - log_normal(&z)) / n;
            kin += end[b * d + b + r] / n;
            jac += end[b * d + 2 * b + r] / n;
            for j in 0..d {
                cot[r + j * b] = z[j] / n; // ∂(−log N(z))/∂z
            }
            cot[b * d + r] = 1.0 / n;
            cot[b * d + b + r] = lk / n;
            cot[b * d + 2 * b + r] = lj / n;
        }
        let g = block.backward(&self.field, &rec, &[vec![0.0; end.len()], cot])?;
        let mut params = g.params;
        if self.config.train_end_time {
            // L depends on T = (√T)² through the end time.
            params.push(g.times[1] * 2.0 * self.sqrt_t);
        }
        Ok(LossGrad {
            loss: nll + lk * kin + lj * jac,
            nll,
            kinetic: kin,
            jacobian: jac,
            params,
            x: g.z0[..b * d].to_vec(),
            nfe: (rec.nfe_forward, g.nfe_backward),
        })
    }

    /// One forward solve of the batch `x` from 0 to `T` with the configured solver: the
    /// record for [`Cnf::pull_back`] and the end state `[z(T), Δ log p, K, J]` (the last
    /// three one value per sample; `log p(x) = log N(z(T)) − Δ log p`).
    pub(crate) fn push_forward(&self, x: &[f64]) -> Result<(Rec, Vec<f64>), Error> {
        let s0 = self.initial_state(x)?;
        let rec =
            self.block(&self.config.solver).forward(&self.field, &s0, &[0.0, self.end_time()])?;
        let end = rec.zs[1].clone();
        Ok((rec, end))
    }

    /// The backward pass of [`Cnf::push_forward`] for the end-state cotangent `cot`:
    /// `(∂L/∂params (with √T last when learnt), ∂L/∂x, backward NFE)`.
    pub(crate) fn pull_back(
        &self,
        rec: &Rec,
        cot: Vec<f64>,
    ) -> Result<(Vec<f64>, Vec<f64>, usize), Error> {
        let (b, d) = (self.config.batch, self.config.dim);
        let block = self.block(&self.config.solver);
        let g = block.backward(&self.field, rec, &[vec![0.0; cot.len()], cot])?;
        let mut params = g.params;
        if self.config.train_end_time {
            params.push(g.times[1] * 2.0 * self.sqrt_t);
        }
        Ok((params, g.z0[..b * d].to_vec(), g.nfe_backward))
    }

    /// Density matching: base draws `z` (column-major `batch × dim`) are solved backwards
    /// from `T` to 0 into samples `x` with `log q(x)` from the same solve, and the loss is
    /// the Monte-Carlo `KL(q ‖ p) = mean(log q(x) − log p(x))` for a target `log p` given
    /// with its gradient (unnormalised: the estimate is then off by `log Z`). Returns the
    /// estimate and its gradient in the parameters (and `T`), by the configured strategy;
    /// the RNODE terms play no part here.
    pub fn matching_grad(&self, z: &[f64], target: &dyn LogDensity) -> Result<LossGrad, Error> {
        let (b, d) = (self.config.batch, self.config.dim);
        if target.dim() != d {
            return Err(Error::InvalidArgument {
                what: "target",
                detail: format!("a {}-dimensional target for a {d}-dimensional flow", target.dim()),
            });
        }
        let s0 = self.initial_state(z)?;
        let block = self.block(&self.config.solver);
        let rec = block.forward(&self.field, &s0, &[self.end_time(), 0.0])?;
        let end = &rec.zs[1];
        let n = b as f64;
        let mut kl = 0.0;
        let mut cot = vec![0.0; end.len()];
        let (mut x, mut zr, mut grad) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
        for r in 0..b {
            for j in 0..d {
                x[j] = end[r + j * b];
                zr[j] = z[r + j * b];
            }
            let lp = target.log_density_grad(&x, &mut grad)?;
            kl += (log_normal(&zr) + end[b * d + r] - lp) / n;
            for j in 0..d {
                cot[r + j * b] = -grad[j] / n;
            }
            cot[b * d + r] = 1.0 / n;
        }
        if !kl.is_finite() {
            return Err(Error::NonFinite { what: "KL estimate", index: 0 });
        }
        let g = block.backward(&self.field, &rec, &[vec![0.0; end.len()], cot])?;
        let mut params = g.params;
        if self.config.train_end_time {
            params.push(g.times[0] * 2.0 * self.sqrt_t);
        }
        Ok(LossGrad {
            loss: kl,
            nll: kl,
            kinetic: 0.0,
            jacobian: 0.0,
            params,
            x: g.z0[..b * d].to_vec(),
            nfe: (rec.nfe_forward, g.nfe_backward),
        })
    }

    /// Samples: `z ~ N(0, I)` from `rng`, solved backwards from `T` to 0; returns the
    /// samples (one row each) and their `log p` from the same solve.
    pub fn sample(
        &self,
        rng: &mut Rng,
        opts: &Options,
    ) -> Result<(Vec<Vec<f64>>, Vec<f64>), Error> {
        let (b, d) = (self.config.batch, self.config.dim);
        let z: Vec<f64> = (0..b * d).map(|_| rng.normal()).collect();
        let (x, log_p) = self.decode(&z, opts)?;
        Ok((x, log_p))
    }

    /// Latents `z` (column-major `batch × dim`) to data, with `log p` of the results:
    /// `log p(x) = log N(z) + ∫₀ᵀ tr(∂f/∂z) dt`.
    pub fn decode(&self, z: &[f64], opts: &Options) -> Result<(Vec<Vec<f64>>, Vec<f64>), Error> {
        let (b, d) = (self.config.batch, self.config.dim);
        let s = self.initial_state(z)?;
        let layout = self.field.layout();
        let sol = odeint(&self.field, &s, &[self.end_time(), 0.0], &opts.clone().layout(layout))?;
        let end = &sol.ys[1];
        let rows = |v: &[f64]| -> Vec<Vec<f64>> {
            (0..b).map(|r| (0..d).map(|j| v[r + j * b]).collect()).collect()
        };
        let zrows = rows(z);
        let log_p = (0..b).map(|r| log_normal(&zrows[r]) + end[b * d + r]).collect();
        Ok((rows(end), log_p))
    }

    /// The path of data `x` (column-major `batch × dim`) through the flow: its points at
    /// each of `times` (increasing, in `[0, T]`; 0 is the data, `T` the base), one row
    /// per sample per time.
    pub fn trajectory(
        &self,
        x: &[f64],
        times: &[f64],
        opts: &Options,
    ) -> Result<Vec<Vec<Vec<f64>>>, Error> {
        let (b, d) = (self.config.batch, self.config.dim);
        let t1 = self.end_time();
        if times.is_empty()
            || times.iter().any(|t| !(0.0..=t1).contains(t))
            || times.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(Error::InvalidArgument {
                what: "trajectory times",
                detail: format!("must be increasing, within [0, T = {t1}]; got {times:?}"),
            });
        }
        let s = self.initial_state(x)?;
        let mut ts = times.to_vec();
        let lead = ts[0] > 0.0;
        if lead {
            ts.insert(0, 0.0);
        }
        let sol = odeint(&self.field, &s, &ts, &opts.clone().layout(self.field.layout()))?;
        let skip = usize::from(lead);
        Ok(sol.ys[skip..]
            .iter()
            .map(|y| (0..b).map(|r| (0..d).map(|j| y[r + j * b]).collect()).collect())
            .collect())
    }

    /// Data `x` (column-major) to latents `z(T)` (one row each).
    pub fn encode(&self, x: &[f64], opts: &Options) -> Result<Vec<Vec<f64>>, Error> {
        let (b, d) = (self.config.batch, self.config.dim);
        let s = self.initial_state(x)?;
        let sol = odeint(
            &self.field,
            &s,
            &[0.0, self.end_time()],
            &opts.clone().layout(self.field.layout()),
        )?;
        Ok((0..b).map(|r| (0..d).map(|j| sol.ys[1][r + j * b]).collect()).collect())
    }
}

/// `log N(z; 0, I)`.
pub fn log_normal(z: &[f64]) -> f64 {
    -0.5 * z.iter().map(|v| v * v).sum::<f64>()
        - 0.5 * z.len() as f64 * (2.0 * std::f64::consts::PI).ln()
}
