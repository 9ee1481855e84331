//! Optimizers over the flat parameter vector, with plain public hyper-parameter structs
//! (after candle's `optim.rs`), gradient clipping and learning-rate schedules.

use serde::{Deserialize, Serialize};

use crate::Error;

/// Something that updates parameters from their gradient.
///
/// ```
/// use autodiff::optim::{Optimizer, Sgd, SgdConfig};
/// // Minimise (p - 3)² with plain SGD.
/// let mut opt = Sgd::new(SgdConfig { lr: 0.1, ..SgdConfig::default() });
/// let mut p = [0.0];
/// for _ in 0..100 {
///     let g = [2.0 * (p[0] - 3.0)];
///     opt.step(&mut p, &g)?;
/// }
/// assert!((p[0] - 3.0).abs() < 1e-6);
/// # Ok::<(), autodiff::Error>(())
/// ```
pub trait Optimizer {
    /// One update of `params` given `grads` (same length).
    fn step(&mut self, params: &mut [f64], grads: &[f64]) -> Result<(), Error>;
    /// The current learning rate.
    fn learning_rate(&self) -> f64;
    /// Sets the learning rate (a schedule calls this every step).
    fn set_learning_rate(&mut self, lr: f64);
}

/// `Err` unless `ok`, naming the hyper-parameter and its valid range.
fn hyper(ok: bool, name: &'static str, value: f64, range: &str) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            op: "optimizer",
            detail: format!("{name} = {value} is outside {range}"),
        })
    }
}

/// Gradients must be finite: a NaN would silently turn every parameter into NaN.
fn check_finite(grads: &[f64]) -> Result<(), Error> {
    match grads.iter().position(|g| !g.is_finite()) {
        Some(i) => Err(Error::InvalidArgument {
            op: "optimizer step",
            detail: format!("gradient entry {i} is {}; no parameter was changed", grads[i]),
        }),
        None => Ok(()),
    }
}

fn check_lengths(params: &[f64], grads: &[f64], state: &mut Vec<f64>) -> Result<(), Error> {
    if params.len() != grads.len() {
        return Err(Error::ShapeMismatch {
            op: "optimizer step",
            expected: (params.len(), 1),
            got: (grads.len(), 1),
        });
    }
    if state.is_empty() {
        state.resize(params.len(), 0.0);
    } else if state.len() != params.len() {
        return Err(Error::ShapeMismatch {
            op: "optimizer state",
            expected: (state.len(), 1),
            got: (params.len(), 1),
        });
    }
    Ok(())
}

/// Hyper-parameters of [`Sgd`] (PyTorch's conventions).
///
/// ```
/// use autodiff::optim::SgdConfig;
/// let nesterov = SgdConfig { lr: 0.1, momentum: 0.9, nesterov: true, ..SgdConfig::default() };
/// assert_eq!(nesterov.weight_decay, 0.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// Momentum `μ`: `v ← μ v + g`, `θ ← θ - lr v`.
    pub momentum: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum: `θ ← θ - lr (g + μ v)`.
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { lr: 1e-2, momentum: 0.0, weight_decay: 0.0, nesterov: false }
    }
}

/// Stochastic gradient descent with momentum.
///
/// ```
/// use autodiff::optim::{Optimizer, Sgd, SgdConfig};
/// let mut sgd = Sgd::new(SgdConfig { lr: 0.5, ..SgdConfig::default() });
/// let mut p = [1.0];
/// sgd.step(&mut p, &[0.2])?;
/// assert_eq!(p, [0.9]);
/// assert!(sgd.step(&mut p, &[f64::NAN]).is_err()); // refused, p unchanged
/// # Ok::<(), autodiff::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sgd {
    /// Hyper-parameters.
    pub config: SgdConfig,
    velocity: Vec<f64>,
}

impl Sgd {
    /// A new optimizer (state is sized on the first step).
    pub fn new(config: SgdConfig) -> Self {
        Sgd { config, velocity: Vec::new() }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut [f64], grads: &[f64]) -> Result<(), Error> {
        let c = self.config;
        hyper(c.lr.is_finite() && c.lr >= 0.0, "lr", c.lr, "[0, ∞)")?;
        hyper((0.0..1.0).contains(&c.momentum), "momentum", c.momentum, "[0, 1)")?;
        let wd = c.weight_decay;
        hyper(wd.is_finite() && wd >= 0.0, "weight_decay", wd, "[0, ∞)")?;
        check_finite(grads)?;
        check_lengths(params, grads, &mut self.velocity)?;
        for ((p, &g0), v) in params.iter_mut().zip(grads).zip(&mut self.velocity) {
            let g = g0 + c.weight_decay * *p;
            let d = if c.momentum != 0.0 {
                *v = c.momentum * *v + g;
                if c.nesterov {
                    g + c.momentum * *v
                } else {
                    *v
                }
            } else {
                g
            };
            *p -= c.lr * d;
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }
}

/// Hyper-parameters of [`Adam`] (Kingma & Ba 2015); with `decoupled_weight_decay` it is
/// AdamW (Loshchilov & Hutter 2019).
///
/// ```
/// use autodiff::optim::AdamConfig;
/// let adamw = AdamConfig::adamw(1e-3);
/// assert!(adamw.decoupled_weight_decay && adamw.weight_decay == 0.01);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator guard.
    pub eps: f64,
    /// Weight decay: an L2 term in the gradient (Adam) or `θ ← θ(1 - lr·wd)` (AdamW).
    pub weight_decay: f64,
    /// AdamW's decoupled weight decay.
    pub decoupled_weight_decay: bool,
}

impl AdamConfig {
    /// AdamW with PyTorch's defaults (`weight_decay = 0.01`).
    pub fn adamw(lr: f64) -> Self {
        AdamConfig { lr, weight_decay: 0.01, decoupled_weight_decay: true, ..Self::default() }
    }
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
        }
    }
}

/// Adam / AdamW.
///
/// ```
/// use autodiff::optim::{Adam, AdamConfig, Optimizer};
/// let mut adam = Adam::new(AdamConfig { lr: 0.01, ..AdamConfig::default() });
/// let mut p = [1.0, -1.0];
/// adam.step(&mut p, &[3.0, -0.5])?; // the first step moves each entry by about lr
/// assert!((p[0] - 0.99).abs() < 1e-6 && (p[1] + 0.99).abs() < 1e-6);
/// assert_eq!(adam.steps(), 1);
/// # Ok::<(), autodiff::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    /// Hyper-parameters.
    pub config: AdamConfig,
    m: Vec<f64>,
    v: Vec<f64>,
    t: u64,
}

impl Adam {
    /// A new optimizer (state is sized on the first step).
    pub fn new(config: AdamConfig) -> Self {
        Adam { config, m: Vec::new(), v: Vec::new(), t: 0 }
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.t
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &mut [f64], grads: &[f64]) -> Result<(), Error> {
        let c = self.config;
        hyper(c.lr.is_finite() && c.lr >= 0.0, "lr", c.lr, "[0, ∞)")?;
        hyper((0.0..1.0).contains(&c.beta1), "beta1", c.beta1, "[0, 1)")?;
        hyper((0.0..1.0).contains(&c.beta2), "beta2", c.beta2, "[0, 1)")?;
        hyper(c.eps.is_finite() && c.eps > 0.0, "eps", c.eps, "(0, ∞)")?;
        let wd = c.weight_decay;
        hyper(wd.is_finite() && wd >= 0.0, "weight_decay", wd, "[0, ∞)")?;
        check_finite(grads)?;
        check_lengths(params, grads, &mut self.m)?;
        check_lengths(params, grads, &mut self.v)?;
        self.t += 1;
        let t = self.t as i32;
        let (bc1, bc2) = (1.0 - c.beta1.powi(t), 1.0 - c.beta2.powi(t));
        for (((p, &g0), m), v) in params.iter_mut().zip(grads).zip(&mut self.m).zip(&mut self.v) {
            let g = if c.decoupled_weight_decay {
                *p *= 1.0 - c.lr * c.weight_decay;
                g0
            } else {
                g0 + c.weight_decay * *p
            };
            *m = c.beta1 * *m + (1.0 - c.beta1) * g;
            *v = c.beta2 * *v + (1.0 - c.beta2) * g * g;
            *p -= c.lr * (*m / bc1) / ((*v / bc2).sqrt() + c.eps);
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }
}

/// Scales `grads` so their global L2 norm is at most `max_norm`; returns the norm before.
///
/// ```
/// use autodiff::optim::clip_grad_norm;
/// let mut g = [3.0, 4.0];
/// let before = clip_grad_norm(&mut g, 1.0);
/// assert_eq!(before, 5.0);
/// assert!((g[0] - 0.6).abs() < 1e-15 && (g[1] - 0.8).abs() < 1e-15);
/// ```
///
/// A `max_norm` that is not positive and finite clips nothing (a negative one would flip
/// the gradient); a non-finite norm is returned with the gradients untouched, so the
/// caller's finiteness check sees it instead of a silently zeroed gradient.
pub fn clip_grad_norm(grads: &mut [f64], max_norm: f64) -> f64 {
    let norm = grads.iter().map(|g| g * g).sum::<f64>().sqrt();
    if !(max_norm.is_finite() && max_norm > 0.0 && norm.is_finite()) {
        return norm;
    }
    if norm > max_norm && norm > 0.0 {
        let s = max_norm / norm;
        grads.iter_mut().for_each(|g| *g *= s);
    }
    norm
}

/// Learning rate as a function of the step.
///
/// ```
/// use autodiff::optim::Schedule;
/// let s = Schedule::WarmupCosine { warmup: 10, total: 110, min_lr: 1e-4 };
/// assert_eq!(s.lr(1e-2, 0), 1e-3); // warm-up: step 1 of 10
/// assert_eq!(s.lr(1e-2, 9), 1e-2);
/// assert!((s.lr(1e-2, 110) - 1e-4).abs() < 1e-15); // decayed to min_lr
/// assert_eq!(Schedule::Step { every: 10, gamma: 0.5 }.lr(1.0, 25), 0.25);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Schedule {
    /// Always the base rate.
    Constant,
    /// Multiply by `gamma` every `every` steps.
    Step {
        /// Period in steps.
        every: u64,
        /// Factor.
        gamma: f64,
    },
    /// Linear warm-up over `warmup` steps, then cosine decay to `min_lr` at `total`.
    WarmupCosine {
        /// Warm-up steps.
        warmup: u64,
        /// Total steps.
        total: u64,
        /// Final rate.
        min_lr: f64,
    },
}

impl Schedule {
    /// The rate at `step` (0-based) for base rate `base`.
    pub fn lr(&self, base: f64, step: u64) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => {
                base * gamma.powi((step / every.max(1)).min(i32::MAX as u64) as i32)
            }
            Schedule::WarmupCosine { warmup, total, min_lr } => {
                if step < warmup {
                    base * (step + 1) as f64 / warmup as f64
                } else {
                    let span = total.saturating_sub(warmup).max(1) as f64;
                    let progress = ((step - warmup) as f64 / span).min(1.0);
                    min_lr + 0.5 * (base - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
                }
            }
        }
    }
}

/// The saved optimizers are optimizers too: a training loop can hold the one it
/// checkpoints. `OptimizerState::None` refuses to step.
impl Optimizer for crate::checkpoint::OptimizerState {
    fn step(&mut self, params: &mut [f64], grads: &[f64]) -> Result<(), Error> {
        use crate::checkpoint::OptimizerState;
        match self {
            OptimizerState::Sgd(o) => o.step(params, grads),
            OptimizerState::Adam(o) => o.step(params, grads),
            OptimizerState::None => Err(Error::InvalidArgument {
                op: "optimizer step",
                detail: "no optimizer (OptimizerState::None)".into(),
            }),
        }
    }

    fn learning_rate(&self) -> f64 {
        use crate::checkpoint::OptimizerState;
        match self {
            OptimizerState::Sgd(o) => o.learning_rate(),
            OptimizerState::Adam(o) => o.learning_rate(),
            OptimizerState::None => 0.0,
        }
    }

    fn set_learning_rate(&mut self, lr: f64) {
        use crate::checkpoint::OptimizerState;
        match self {
            OptimizerState::Sgd(o) => o.set_learning_rate(lr),
            OptimizerState::Adam(o) => o.set_learning_rate(lr),
            OptimizerState::None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgd_momentum_follows_pytorch() {
        // PyTorch: v1 = g1, p1 = p0 - lr v1; v2 = μ v1 + g2, p2 = p1 - lr v2.
        let mut opt = Sgd::new(SgdConfig { lr: 0.1, momentum: 0.9, ..SgdConfig::default() });
        let mut p = [1.0];
        opt.step(&mut p, &[2.0]).unwrap();
        assert_eq!(p, [1.0 - 0.1 * 2.0]);
        opt.step(&mut p, &[1.0]).unwrap();
        assert!((p[0] - (0.8 - 0.1 * (0.9 * 2.0 + 1.0))).abs() < 1e-15);
    }

    #[test]
    fn adam_first_step_is_lr_times_sign_and_adamw_decays_decoupled() {
        let mut adam =
            Adam::new(AdamConfig { lr: 0.01, eps: f64::MIN_POSITIVE, ..AdamConfig::default() });
        let mut p = [1.0, -1.0];
        adam.step(&mut p, &[3.0, -0.5]).unwrap();
        assert!((p[0] - 0.99).abs() < 1e-15 && (p[1] + 0.99).abs() < 1e-15);
        let mut adamw = Adam::new(AdamConfig { eps: f64::MIN_POSITIVE, ..AdamConfig::adamw(0.01) });
        let mut q = [2.0];
        adamw.step(&mut q, &[1.0]).unwrap();
        assert!((q[0] - (2.0 * (1.0 - 0.01 * 0.01) - 0.01)).abs() < 1e-15);
    }

    #[test]
    fn adam_minimises_a_quadratic() {
        let mut opt = Adam::new(AdamConfig { lr: 0.05, ..AdamConfig::default() });
        let mut p = [3.0, -2.0];
        for _ in 0..2000 {
            let g = [2.0 * (p[0] - 1.0), 2.0 * (p[1] + 0.5)];
            opt.step(&mut p, &g).unwrap();
        }
        assert!((p[0] - 1.0).abs() < 1e-3 && (p[1] + 0.5).abs() < 1e-3);
    }

    #[test]
    fn mismatched_lengths_are_errors() {
        let mut opt = Adam::new(AdamConfig::default());
        assert!(matches!(opt.step(&mut [1.0], &[1.0, 2.0]), Err(Error::ShapeMismatch { .. })));
        opt.step(&mut [1.0], &[1.0]).unwrap();
        assert!(matches!(opt.step(&mut [1.0, 2.0], &[1.0, 2.0]), Err(Error::ShapeMismatch { .. })));
    }

    #[test]
    fn clipping_and_schedules() {
        let mut g = [3.0, 4.0];
        assert_eq!(clip_grad_norm(&mut g, 1.0), 5.0);
        assert!((g[0] - 0.6).abs() < 1e-15 && (g[1] - 0.8).abs() < 1e-15);
        assert_eq!(Schedule::Step { every: 10, gamma: 0.5 }.lr(1.0, 25), 0.25);
        let s = Schedule::WarmupCosine { warmup: 10, total: 110, min_lr: 0.0 };
        assert_eq!(s.lr(1.0, 4), 0.5);
        assert!((s.lr(1.0, 60) - 0.5).abs() < 1e-12);
        assert!(s.lr(1.0, 110).abs() < 1e-12);
    }
}
