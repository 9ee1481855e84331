//! Latent ODEs for irregularly sampled, partly missing time series (Chen et al. 2018 §5;
//! Rubanova, Chen & Duvenaud 2019).
//!
//! # A tour in the order you meet things
//!
//! - A [`Series`] keeps its own strictly increasing times and a mask of missing entries;
//!   an [`Example`] is what a model conditions on (`obs`) and what it must predict
//!   (`target`). [`parse_long_csv`] reads the long format `series,t,role,x0,...`;
//!   [`spirals`], [`periodic`], [`read_grouped`] (Theophylline, ChickWeight) and
//!   [`read_co2`] make the paper's and the real datasets; [`Scaling`] puts them at unit
//!   scale.
//! - A [`LatentOde`] ([`LatentConfig`], [`LatentConfig::chen`]) reads a series backwards
//!   with an RNN, GRU or ODE-RNN encoder ([`EncoderKind`]) into `q(z0) = N(μ, diag σ²)`,
//!   decodes `z0` with an `adjoint` ODE block (or, as the baseline, an RNN stepped through
//!   the time gaps: [`DecoderKind`]) and maps latents to observations. Its loss is the
//!   negative ELBO over the observed entries only, with a warmed-up KL weight; its
//!   gradient goes through any adjoint strategy.
//! - Each series is solved on its own, with its own adaptive steps and output times; a
//!   batch is split among model copies on rayon's threads (`train::Replicas`), the result
//!   the same for any thread count.
//! - [`LatentOde::predict`] interpolates and extrapolates with uncertainty (mean and
//!   5%/95% quantiles over `z0` samples); [`score`] gives the RMSE / MAE on targets.
//! - A [`Forecaster`] ([`ForecastConfig`]) reads a series forwards without a VAE: the
//!   standalone ODE-RNN and the RNN-Δt and GRU-D baselines ([`Evolution`]).
//! - [`interpolate`] is the linear and cubic-spline baseline.
//! - Training goes through `train` ([`Examples`], `train::Model` for [`LatentOde`]).
//!   `latent-ode` re-exports `adjoint`, `train` and the layers below.
//!
//! Fit a latent ODE to a few spirals with this crate alone:
//!
//! ```
//! use latent_ode::autodiff::checkpoint::OptimizerState;
//! use latent_ode::autodiff::optim::{Adam, AdamConfig};
//! use latent_ode::autodiff::Rng;
//! use latent_ode::train::{Quiet, TrainConfig, Trainer};
//! use latent_ode::{score, spirals, Examples, LatentConfig, LatentOde};
//!
//! let mut rng = Rng::new(0);
//! let data = spirals(16, 30, 0.1, &mut rng)?;
//! let examples: Vec<_> = data.iter().map(|s| s.example.clone()).collect();
//! let mut cfg = LatentConfig::chen(2);
//! cfg.solver = latent_ode::adjoint::AdjointOptions::new(
//!     latent_ode::ode_solvers::Options::new(latent_ode::ode_solvers::Method::Dopri5).rtol(1e-3).atol(1e-4));
//! let mut model = LatentOde::new(cfg, &mut rng)?;
//! let set = Examples::new(examples.clone(), &model)?;
//! let before = score(std::slice::from_mut(&mut model), &examples, 0, 1)?;
//! let adam = OptimizerState::Adam(Adam::new(AdamConfig { lr: 1e-2, ..AdamConfig::default() }));
//! let mut trainer = Trainer::new(TrainConfig::new(10, 8, 1e-2), adam, "spirals")?;
//! trainer.fit(&mut model, &set, None, &mut Quiet)?;
//! let after = score(std::slice::from_mut(&mut model), &examples, 0, 1)?;
//! assert!(after.rmse_obs < before.rmse_obs);
//! # Ok::<(), latent_ode::Error>(())
//! ```
#![deny(missing_docs)]

mod baseline;
pub mod check;
mod data;
mod fit;
mod forecast;
mod model;

pub use baseline::{interpolate, Interpolation};
pub use data::{
    extrapolation_spirals, hold_out, irregular_spirals, long_csv, parse_long_csv, periodic,
    read_co2, read_grouped, read_long_csv, spiral_windows, spirals, split_at_fraction, subsample,
    Example, Scaling, Series, Spiral,
};
pub use fit::{
    mean_neg_elbo, predict_all, score, score_predictions, Examples, Scores, SeriesBatch,
    SeriesModel,
};
pub use forecast::{Evolution, ForecastConfig, Forecaster};
pub use model::{DecoderKind, EncoderKind, LatentConfig, LatentOde, LossParts, Prediction};

/// The layers below, so a user of this crate needs no other dependency.
pub use adjoint;
pub use adjoint::{autodiff, ode_solvers};
pub use train;

use std::fmt;

/// `p` is a model's `n` parameters: the right length and all finite.
fn check_params(p: &[f64], n: usize) -> Result<(), Error> {
    if p.len() != n {
        return Err(Error::InvalidArgument {
            what: "model parameters",
            detail: format!("{} values for {n} parameters", p.len()),
        });
    }
    if let Some(i) = p.iter().position(|v| !v.is_finite()) {
        return Err(Error::InvalidArgument {
            what: "model parameters",
            detail: format!("parameter {i} is {}", p[i]),
        });
    }
    Ok(())
}

/// Everything that can go wrong in a latent model.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A solve, gradient or layer failed.
    Adjoint(adjoint::Error),
    /// Training failed.
    Train(train::Error),
    /// A setting, series or file is invalid.
    InvalidArgument {
        /// Which.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// A loss, gradient or prediction came out non-finite.
    NonFinite {
        /// Which.
        what: &'static str,
        /// The first bad entry.
        index: usize,
        /// The series.
        series: String,
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
            Error::NonFinite { what, index, series } => {
                write!(f, "non-finite {what} (entry {index}) on series '{series}'; lower the learning rate or tighten the solver")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Adjoint(e) => Some(e),
            Error::Train(e) => Some(e),
            _ => None,
        }
    }
}
