//! Chen et al. 2018 §4's comparison: the planar CNF (a [`crate::FieldKind::Planar`] field)
//! against the discrete planar normalizing flow of Rezende & Mohamed 2015
//! ([`PlanarFlow`]), each trained by maximum likelihood on samples or by density matching
//! (minimising `KL(q ‖ p)` to a target `log p`, sampling from the flow), on the
//! density-matching targets ([`Target`]).

use crate::autodiff::Rng;
use crate::fit::PointBatch;
use crate::flow::log_normal;
use crate::{Cnf, Error};

/// A target density for density matching: `log p(x)` and its gradient.
pub trait LogDensity: Sync {
    /// The dimension of `x`.
    fn dim(&self) -> usize;
    /// `log p(x)`, with `∂ log p/∂x` written into `grad` (both `dim` long).
    fn log_density_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, Error>;
}

/// The density-matching targets: normalised 2-D mixtures of `N(c, σ²I)` over a fine grid
/// of a curve, so `KL(q ‖ p)` is a true KL (no `log Z`), `p` can be sampled for maximum
/// likelihood, and `∇ log p` is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Two concentric rings, radii 1 and 2, `σ = 0.15`.
    TwoCircles,
    /// Two interleaved half circles (sklearn's moons, `x ↦ 1.5 (x − (0.5, 0.25))`),
    /// `σ = 0.12`.
    TwoMoons,
}

/// Grid points per curve (per ring, per moon).
const GRID: usize = 256;

impl Target {
    /// Both targets.
    pub const ALL: [Target; 2] = [Target::TwoCircles, Target::TwoMoons];

    /// `two-circles` or `two-moons`.
    pub fn name(self) -> &'static str {
        match self {
            Target::TwoCircles => "two-circles",
            Target::TwoMoons => "two-moons",
        }
    }

    /// The mixture's standard deviation.
    pub fn sigma(self) -> f64 {
        match self {
            Target::TwoCircles => 0.15,
            Target::TwoMoons => 0.12,
        }
    }

    /// The mixture's centres.
    pub fn centres(self) -> Vec<[f64; 2]> {
        let pi = std::f64::consts::PI;
        match self {
            Target::TwoCircles => [1.0, 2.0]
                .iter()
                .flat_map(|&r| {
                    (0..GRID).map(move |i| {
                        let a = 2.0 * pi * i as f64 / GRID as f64;
                        [r * a.cos(), r * a.sin()]
                    })
                })
                .collect(),
            Target::TwoMoons => (0..2 * GRID)
                .map(|i| {
                    let th = pi * (i % GRID) as f64 / (GRID - 1) as f64;
                    let p = if i < GRID {
                        [th.cos(), th.sin()]
                    } else {
                        [1.0 - th.cos(), 1.0 - th.sin() - 0.5]
                    };
                    [1.5 * (p[0] - 0.5), 1.5 * (p[1] - 0.25)]
                })
                .collect(),
        }
    }

    /// `n` samples: a uniformly chosen centre plus `N(0, σ²I)`.
    pub fn sample(self, n: usize, rng: &mut Rng) -> Vec<[f64; 2]> {
        let c = self.centres();
        let s = self.sigma();
        (0..n)
            .map(|_| {
                let k = ((rng.uniform() * c.len() as f64) as usize).min(c.len() - 1);
                [c[k][0] + s * rng.normal(), c[k][1] + s * rng.normal()]
            })
            .collect()
    }

    /// `log p(x)` and its gradient.
    pub fn log_density(self, x: [f64; 2]) -> (f64, [f64; 2]) {
        let c = self.centres();
        let s2 = self.sigma() * self.sigma();
        let e: Vec<f64> = c
            .iter()
            .map(|ck| -((x[0] - ck[0]).powi(2) + (x[1] - ck[1]).powi(2)) / (2.0 * s2))
            .collect();
        let m = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = e.iter().map(|v| (v - m).exp()).collect();
        let total: f64 = w.iter().sum();
        let lp = m + total.ln() - (c.len() as f64).ln() - (2.0 * std::f64::consts::PI * s2).ln();
        let mut g = [0.0; 2];
        for (wk, ck) in w.iter().zip(&c) {
            g[0] += wk * (ck[0] - x[0]);
            g[1] += wk * (ck[1] - x[1]);
        }
        (lp, [g[0] / (total * s2), g[1] / (total * s2)])
    }
}

impl std::str::FromStr for Target {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Target::ALL.into_iter().find(|t| t.name() == s).ok_or_else(|| Error::InvalidArgument {
            what: "target",
            detail: format!("'{s}': two-circles or two-moons"),
        })
    }
}

impl LogDensity for Target {
    fn dim(&self) -> usize {
        2
    }

    fn log_density_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, Error> {
        if x.len() != 2 || grad.len() != 2 {
            return Err(Error::InvalidArgument {
                what: "target input",
                detail: format!(
                    "{} values and a gradient of {} for a 2-D target",
                    x.len(),
                    grad.len()
                ),
            });
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite { what: "target input", index: 0 });
        }
        let (lp, g) = self.log_density([x[0], x[1]]);
        grad.copy_from_slice(&g);
        Ok(lp)
    }
}

/// What a flow is trained for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// `mean(−log p(x))` over data samples.
    MaxLikelihood,
    /// `KL(q ‖ p)` to the target, over base draws.
    Matching(Target),
}

/// `softplus(x) = ln(1 + eˣ)` and `σ(x)`, without overflow.
fn softplus(x: f64) -> (f64, f64) {
    let sig = if x >= 0.0 { 1.0 / (1.0 + (-x).exp()) } else { x.exp() / (1.0 + x.exp()) };
    (x.max(0.0) + (-x.abs()).exp().ln_1p(), sig)
}

/// One planar layer's parameters (at `off` in the flat vector) and `û = u + k w` with
/// `k = (m(wᵀu) − wᵀu) / ‖w‖²`, `m = −1 + softplus`, and the pieces its backward needs.
struct Layer<'a> {
    off: usize,
    w: &'a [f64],
    u: &'a [f64],
    b: f64,
    /// `‖w‖²` (floored).
    n2: f64,
    /// `σ(wᵀu)`, the derivative of softplus.
    sig: f64,
    /// `m(wᵀu) = ûᵀw`.
    mwu: f64,
    kk: f64,
    uhat: Vec<f64>,
}

/// `‖w‖²` is kept off zero by this much in `û` (a layer with `w = 0` is the identity).
const W_FLOOR: f64 = 1e-8;

/// The discrete planar flow of Rezende & Mohamed 2015: `K` layers
/// `f(z) = z + û tanh(wᵀz + b)`, with `û = u + (m(wᵀu) − wᵀu) w / ‖w‖²`,
/// `m(a) = −1 + softplus(a)`, so `ûᵀw > −1` and every layer is invertible with
/// `log |det ∂f/∂z| = ln(1 + (1 − tanh²(·)) ûᵀw)`.
///
/// One map `F` serves both directions: for maximum likelihood it normalises,
/// `log p(x) = log N(F(x)) + Σ log det`; for density matching it generates, `x = F(z)`
/// from `z ~ N(0, I)` with `log q(x) = log N(z) − Σ log det`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanarFlow {
    /// The dimension.
    pub dim: usize,
    /// Layers `K`.
    pub layers: usize,
    /// Per layer `[w (dim), u (dim), b]`.
    params: Vec<f64>,
}

impl PlanarFlow {
    /// A flow with `w, u ~ N(0, 0.1²)` and `b = 0` from `rng`.
    pub fn new(dim: usize, layers: usize, rng: &mut Rng) -> Result<Self, Error> {
        if !(1..=1 << 16).contains(&dim) || !(1..=1 << 16).contains(&layers) {
            return Err(Error::InvalidArgument {
                what: "planar flow",
                detail: format!("dim {dim} and layers {layers} must be in 1..=65536"),
            });
        }
        let per = 2 * dim + 1;
        let params = (0..layers * per)
            .map(|i| if i % per == 2 * dim { 0.0 } else { 0.1 * rng.normal() })
            .collect();
        Ok(PlanarFlow { dim, layers, params })
    }

    /// The parameters, `[w, u, b]` per layer.
    pub fn params(&self) -> &[f64] {
        &self.params
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// Sets the parameters (the layout of [`PlanarFlow::params`]).
    pub fn set_params(&mut self, p: &[f64]) -> Result<(), Error> {
        if p.len() != self.params.len() {
            return Err(Error::InvalidArgument {
                what: "planar parameters",
                detail: format!("{} values for {}", p.len(), self.params.len()),
            });
        }
        if let Some(i) = p.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument {
                what: "planar parameters",
                detail: format!("parameter {i} is {}", p[i]),
            });
        }
        self.params.copy_from_slice(p);
        Ok(())
    }

    /// Layer `k`'s parameters and the reparameterised `û` with its intermediates.
    fn layer(&self, k: usize) -> Layer<'_> {
        let d = self.dim;
        let off = k * (2 * d + 1);
        let p = &self.params[off..off + 2 * d + 1];
        let (w, u, b) = (&p[..d], &p[d..2 * d], p[2 * d]);
        let wu: f64 = w.iter().zip(u).map(|(a, b)| a * b).sum();
        let n2: f64 = w.iter().map(|a| a * a).sum::<f64>() + W_FLOOR;
        let (sp, sig) = softplus(wu);
        let mwu = -1.0 + sp;
        let kk = (mwu - wu) / n2;
        let uhat = u.iter().zip(w).map(|(ui, wi)| ui + kk * wi).collect();
        Layer { off, w, u, b, n2, sig, mwu, kk, uhat }
    }

    /// `F(z)` and `Σ log det`, for one point; with `tape`, every layer's input is kept.
    fn map(&self, z: &[f64], mut tape: Option<&mut Vec<Vec<f64>>>) -> (Vec<f64>, f64) {
        let mut y = z.to_vec();
        let mut logdet = 0.0;
        for k in 0..self.layers {
            if let Some(t) = tape.as_deref_mut() {
                t.push(y.clone());
            }
            let Layer { w, uhat, b, mwu, .. } = self.layer(k);
            let a: f64 = w.iter().zip(&y).map(|(wi, yi)| wi * yi).sum::<f64>() + b;
            let h = a.tanh();
            for (yi, ui) in y.iter_mut().zip(&uhat) {
                *yi += ui * h;
            }
            logdet += (1.0 + (1.0 - h * h) * mwu).ln();
        }
        (y, logdet)
    }

    /// `log p(x)` read as a normalising flow (the maximum-likelihood direction).
    pub fn log_density(&self, x: &[f64]) -> Result<f64, Error> {
        self.check_point(x)?;
        let (z, logdet) = self.map(x, None);
        Ok(log_normal(&z) + logdet)
    }

    /// Samples `x = F(z)` of base draws `z` (one row each) with `log q(x)` (the
    /// density-matching direction).
    pub fn sample(&self, z: &[Vec<f64>]) -> Result<(Vec<Vec<f64>>, Vec<f64>), Error> {
        let mut xs = Vec::with_capacity(z.len());
        let mut lq = Vec::with_capacity(z.len());
        for zi in z {
            self.check_point(zi)?;
            let (x, logdet) = self.map(zi, None);
            xs.push(x);
            lq.push(log_normal(zi) - logdet);
        }
        Ok((xs, lq))
    }

    fn check_point(&self, x: &[f64]) -> Result<(), Error> {
        if x.len() != self.dim {
            return Err(Error::InvalidArgument {
                what: "point",
                detail: format!("{} values for a {}-dimensional flow", x.len(), self.dim),
            });
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { what: "point", index: i });
        }
        Ok(())
    }

    /// The mean loss of a batch (column-major `batch × dim`: data for maximum likelihood,
    /// base draws for matching) and its gradient in the parameters.
    pub fn loss_grad(&self, x: &[f64], objective: Objective) -> Result<(f64, Vec<f64>), Error> {
        let d = self.dim;
        if x.is_empty() || !x.len().is_multiple_of(d) {
            return Err(Error::InvalidArgument {
                what: "batch",
                detail: format!("{} values is not a non-empty batch of {d}-vectors", x.len()),
            });
        }
        if let Objective::Matching(t) = objective {
            if t.dim() != d {
                return Err(Error::InvalidArgument {
                    what: "target",
                    detail: format!("a {}-dimensional target for a {d}-dimensional flow", t.dim()),
                });
            }
        }
        let b = x.len() / d;
        let n = b as f64;
        // Every log det enters the loss with weight −1/n in both objectives.
        let c = -1.0 / n;
        let mut loss = 0.0;
        let mut grad = vec![0.0; self.params.len()];
        let mut tape = Vec::with_capacity(self.layers);
        let mut tgrad = vec![0.0; d];
        for r in 0..b {
            let p: Vec<f64> = (0..d).map(|j| x[r + j * b]).collect();
            self.check_point(&p)?;
            tape.clear();
            let (y, logdet) = self.map(&p, Some(&mut tape));
            let mut dy: Vec<f64> = match objective {
                Objective::MaxLikelihood => {
                    loss -= (log_normal(&y) + logdet) / n;
                    y.iter().map(|v| v / n).collect()
                }
                Objective::Matching(t) => {
                    let lp = t.log_density_grad(&y, &mut tgrad)?;
                    loss += (log_normal(&p) - logdet - lp) / n;
                    tgrad.iter().map(|g| -g / n).collect()
                }
            };
            for k in (0..self.layers).rev() {
                self.layer_backward(k, &tape[k], c, &mut dy, &mut grad);
            }
        }
        if !loss.is_finite() {
            return Err(Error::NonFinite { what: "planar loss", index: 0 });
        }
        if let Some(i) = grad.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { what: "planar gradient", index: i });
        }
        Ok((loss, grad))
    }

    /// Pulls `dy` (the cotangent of layer `k`'s output, input `z`, log det weight `c`)
    /// back to its input in place, adding the layer's parameter gradient into `grad`.
    fn layer_backward(&self, k: usize, z: &[f64], c: f64, dy: &mut [f64], grad: &mut [f64]) {
        let d = self.dim;
        let Layer { off, w, u, b, n2, sig, mwu, kk, uhat } = self.layer(k);
        let a: f64 = w.iter().zip(z).map(|(wi, zi)| wi * zi).sum::<f64>() + b;
        let h = a.tanh();
        let hp = 1.0 - h * h;
        let det = 1.0 + hp * mwu;
        let udy: f64 = uhat.iter().zip(dy.iter()).map(|(a, b)| a * b).sum();
        let s_a = udy * hp - 2.0 * c * mwu * h * hp / det;
        // û = u + k w.
        let duhat: Vec<f64> = dy.iter().map(|v| h * v).collect();
        let dk: f64 = duhat.iter().zip(w).map(|(a, b)| a * b).sum();
        let dmwu = c * hp / det + dk / n2;
        let dwu = -dk / n2 + dmwu * sig;
        let dn2 = -dk * kk / n2;
        let g = &mut grad[off..off + 2 * d + 1];
        for i in 0..d {
            g[i] += kk * duhat[i] + dwu * u[i] + 2.0 * dn2 * w[i] + s_a * z[i];
            g[d + i] += duhat[i] + dwu * w[i];
        }
        g[2 * d] += s_a;
        for (dyi, wi) in dy.iter_mut().zip(w) {
            *dyi += s_a * wi;
        }
    }
}

/// A planar flow and its objective as a `train::Model` (the batch's `eps` is unused).
pub struct PlanarModel {
    /// The flow.
    pub flow: PlanarFlow,
    /// What it is trained for.
    pub objective: Objective,
}

impl train::Model for PlanarModel {
    type Batch = PointBatch;

    fn num_params(&self) -> usize {
        self.flow.num_params()
    }

    fn read_params(&self, out: &mut [f64]) -> Result<(), train::Error> {
        train::copy_params(out, self.flow.params())
    }

    fn write_params(&mut self, params: &[f64]) -> Result<(), train::Error> {
        self.flow.set_params(params).map_err(train::Error::model)
    }

    fn loss_and_grad(
        &mut self,
        batch: &PointBatch,
        grad: &mut [f64],
    ) -> Result<train::StepReport, train::Error> {
        let (loss, g) =
            self.flow.loss_grad(&batch.x, self.objective).map_err(train::Error::model)?;
        train::copy_params(grad, &g)?;
        Ok(train::StepReport { loss, metrics: vec![], nfe_forward: 0, nfe_backward: 0 })
    }
}

/// A CNF trained by density matching ([`Cnf::matching_grad`]) as a `train::Model`; its
/// batches are base draws ([`BaseSamples`]) with their probe.
pub struct MatchingModel {
    /// The flow.
    pub flow: Cnf,
    /// The target.
    pub target: Target,
}

impl train::Model for MatchingModel {
    type Batch = PointBatch;

    fn num_params(&self) -> usize {
        self.flow.num_params()
    }

    fn read_params(&self, out: &mut [f64]) -> Result<(), train::Error> {
        train::copy_params(out, &self.flow.params())
    }

    fn write_params(&mut self, params: &[f64]) -> Result<(), train::Error> {
        self.flow.set_params(params).map_err(train::Error::model)
    }

    fn loss_and_grad(
        &mut self,
        batch: &PointBatch,
        grad: &mut [f64],
    ) -> Result<train::StepReport, train::Error> {
        self.flow.set_noise(&batch.eps).map_err(train::Error::model)?;
        let g = self.flow.matching_grad(&batch.x, &self.target).map_err(train::Error::model)?;
        train::copy_params(grad, &g.params)?;
        Ok(train::StepReport {
            loss: g.loss,
            metrics: vec![],
            nfe_forward: g.nfe.0,
            nfe_backward: g.nfe.1,
        })
    }
}

/// Fresh standard normal draws as a `train::Dataset` of `len` "samples": every batch is
/// drawn anew from the trainer's stream (so a resumed run draws the same), with a
/// Gaussian probe beside it.
pub struct BaseSamples {
    /// The dimension.
    pub dim: usize,
    /// Samples per epoch.
    pub len: usize,
}

impl train::Dataset for BaseSamples {
    type Batch = PointBatch;

    fn len(&self) -> usize {
        self.len
    }

    fn batch(&self, indices: &[usize], rng: &mut Rng) -> Result<PointBatch, train::Error> {
        let bad = |detail: String| train::Error::InvalidArgument { what: "base samples", detail };
        if self.dim == 0 {
            return Err(bad("dimension 0".into()));
        }
        if let Some(i) = indices.iter().find(|&&i| i >= self.len) {
            return Err(bad(format!("index {i} past {} samples", self.len)));
        }
        // Two buffers of `n` values each must fit in memory.
        let n = indices
            .len()
            .checked_mul(self.dim)
            .filter(|n| n.checked_mul(16).is_some_and(|b| b <= isize::MAX as usize))
            .ok_or_else(|| {
                bad(format!("{} draws of {} values overflow", indices.len(), self.dim))
            })?;
        let x = (0..n).map(|_| rng.normal()).collect();
        let eps = (0..n).map(|_| rng.normal()).collect();
        Ok(PointBatch { x, eps })
    }
}
