//! Continuous normalizing flows (FFJORD, Grathwohl et al. 2019; RNODE, Finlay et al. 2020).
//!
//! # A tour in the order you meet things
//!
//! - Data `x` at `t = 0`, the base `N(0, I)` at `t = T`: `dz/dt = f(z, t, θ)` and
//!   `log p(x) = log N(z(T)) + ∫₀ᵀ tr(∂f/∂z) dt`. A [`Cnf`] is that field (FFJORD's
//!   `ConcatSquash` stack or an MLP on `[z, t]`, [`FieldKind`]) with the log-density change,
//!   the kinetic energy `∫‖f‖²` and the Jacobian term `∫‖εᵀ∂f/∂z‖²` integrated beside `z`
//!   (`adjoint`'s integrands; their VJPs are second-order autodiff), configured by
//!   [`CnfConfig`] ([`CnfConfig::ffjord`], [`CnfConfig::rnode`]).
//! - [`Trace`]: exact, or Hutchinson with Gaussian or Rademacher probes held fixed through
//!   a solve ([`Cnf::set_noise`]).
//! - [`Cnf::densities`] gives `log p(x)` per sample; [`Cnf::loss_grad`] the loss
//!   `mean(−log p) + λ_K mean(K) + λ_J mean(J)` with its gradients in `θ`, `T` and `x` by
//!   any adjoint strategy; [`Cnf::sample`] draws from the base and solves backwards, with
//!   `log p` of the samples from the same solve.
//! - [`CnfChain`] chains blocks (a flow of flows, each its own field and end time) with
//!   the same densities, loss, gradients and sampling; [`ChainModel`] trains it.
//! - Baselines for reports: a full-covariance [`Gaussian`] and a [`Kde`]; discrete data
//!   through [`dequantize`] and [`bits_per_dim`].
//! - [`Toy`]: FFJORD's eight 2-D toys with their true log-densities where known.
//! - Chen et al.'s planar CNF ([`FieldKind::Planar`]) and the discrete [`PlanarFlow`],
//!   trained by maximum likelihood or by density matching ([`Cnf::matching_grad`],
//!   [`Objective`]) to a [`Target`] ([`LogDensity`]) through [`PlanarModel`] and
//!   [`MatchingModel`] on [`BaseSamples`].
//! - Training goes through `train` ([`Points`], [`FlowModel`]); `cnf` re-exports
//!   `adjoint`, `train` and the layers below, so it is the only dependency a user needs.
//!
//! Fit a small flow to FFJORD's 8 Gaussians with this crate alone: data, a flow, the
//! trainer, then the test log-likelihood with the exact trace:
//!
//! ```
//! use cnf::autodiff::checkpoint::OptimizerState;
//! use cnf::autodiff::optim::{Adam, AdamConfig};
//! use cnf::autodiff::Rng;
//! use cnf::train::{Quiet, TrainConfig, Trainer};
//! use cnf::{Cnf, CnfConfig, FieldKind, FlowModel, Points, Toy, Trace};
//!
//! let mut rng = Rng::new(0);
//! let rows: Vec<Vec<f64>> = Toy::EightGaussians.sample(4096, &mut rng).iter().map(|p| p.to_vec()).collect();
//! let mut cfg = CnfConfig::rnode(2, 128); // RK4 steps of 0.25, kinetic and Jacobian terms
//! cfg.field = FieldKind::ConcatSquash(vec![16, 16]);
//! let flow = Cnf::new(cfg.clone(), &mut rng)?;
//! let data = Points::new(&rows, 2, cfg.trace)?;
//! let adam = OptimizerState::Adam(Adam::new(AdamConfig { lr: 1e-2, ..AdamConfig::default() }));
//! let mut trainer = Trainer::new(TrainConfig::new(2, 128, 1e-2), adam, "8gaussians")?;
//! let mut model = FlowModel { flow };
//! let before = model.flow.densities(&column_major(&rows[..128]), &Cnf::evaluation_options())?;
//! trainer.fit(&mut model, &data, None, &mut Quiet)?;
//! let after = model.flow.densities(&column_major(&rows[..128]), &Cnf::evaluation_options())?;
//! let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
//! assert!(mean(&after.log_p) > mean(&before.log_p) + 0.5);
//!
//! fn column_major(rows: &[Vec<f64>]) -> Vec<f64> {
//!     (0..2).flat_map(|j| rows.iter().map(move |r| r[j])).collect()
//! }
//! # Ok::<(), cnf::Error>(())
//! ```
//!
//! Evaluating a flow directly:
//!
//! ```
//! use cnf::{Cnf, CnfConfig, FieldKind, Trace};
//! use cnf::autodiff::Rng;
//! // A small flow on 2-D data with the exact trace; log p(x) of a batch of 4.
//! let mut cfg = CnfConfig::ffjord(2, 4);
//! cfg.field = FieldKind::Mlp(vec![16]);
//! cfg.trace = Trace::Exact;
//! let flow = Cnf::new(cfg, &mut Rng::new(0))?;
//! let x = [0.1, -0.4, 1.2, 0.0, 0.3, 0.3, -0.8, 0.5]; // column-major 4 × 2
//! let d = flow.densities(&x, &Cnf::evaluation_options())?;
//! assert_eq!(d.log_p.len(), 4);
//! let g = flow.loss_grad(&x)?;
//! assert_eq!(g.params.len(), flow.num_params());
//! # Ok::<(), cnf::Error>(())
//! ```
#![deny(missing_docs)]

mod baseline;
mod chain;
mod fit;
mod flow;
mod planar;
mod toy;

pub use baseline::{bits_per_dim, dequantize, Gaussian, Kde};
pub use chain::{ChainModel, CnfChain};
pub use fit::{FlowModel, PointBatch, Points};
pub use flow::{log_normal, Cnf, CnfConfig, Densities, FieldKind, LossGrad, Noise, Trace};
pub use planar::{
    BaseSamples, LogDensity, MatchingModel, Objective, PlanarFlow, PlanarModel, Target,
};
pub use toy::{i0e, Toy};

/// The layers below, so a user of this crate needs no other dependency.
pub use adjoint;
pub use adjoint::{autodiff, ode_solvers};
pub use train;

use std::fmt;

/// Everything that can go wrong in a flow.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A solve, gradient or field failed.
    Adjoint(adjoint::Error),
    /// Training failed.
    Train(train::Error),
    /// A setting or input is out of range.
    InvalidArgument {
        /// Which.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// A loss, density or gradient came out NaN or infinite.
    NonFinite {
        /// Which.
        what: &'static str,
        /// The first bad entry.
        index: usize,
    },
}

impl From<adjoint::Error> for Error {
    fn from(e: adjoint::Error) -> Self {
        Error::Adjoint(e)
    }
}

impl From<autodiff::Error> for Error {
    fn from(e: autodiff::Error) -> Self {
        Error::Adjoint(e.into())
    }
}

impl From<ode_solvers::Error> for Error {
    fn from(e: ode_solvers::Error) -> Self {
        Error::Adjoint(e.into())
    }
}

impl From<train::Error> for Error {
    fn from(e: train::Error) -> Self {
        Error::Train(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Adjoint(e) => write!(f, "{e}"),
            Error::Train(e) => write!(f, "{e}"),
            Error::InvalidArgument { what, detail } => write!(f, "invalid {what}: {detail}"),
            Error::NonFinite { what, index } => {
                write!(f, "non-finite {what} (entry {index}); lower the learning rate or tighten the solver")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Adjoint(e) => Some(e),
            Error::Train(e) => Some(e),
            Error::InvalidArgument { .. } | Error::NonFinite { .. } => None,
        }
    }
}
