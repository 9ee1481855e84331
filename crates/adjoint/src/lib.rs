//! Gradients of ODE solutions, making a solve a differentiable building block.
//!
//! # A tour in the order you meet things
//!
//! - A [`VectorField`] is `f(z, t, θ)` with its vector-Jacobian products `aᵀ∂f/∂z`,
//!   `aᵀ∂f/∂θ`, `aᵀ∂f/∂t`. [`AutodiffField`] replays an `autodiff` graph (a neural network)
//!   without allocating; [`ClosureField`] takes hand-written functions.
//!   A field is an `OdeSystem`, so `ode_solvers::odeint(&field, ..)` solves it directly.
//!   [`AutodiffField::builder`] adds integrands `∫ g(z, t) dt` to the state (log-density
//!   changes, kinetic energy: see [`integrands`]) and extra inputs held fixed per solve.
//! - An [`OdeBlock`] is the solve as a layer: `forward(field, z0, ts)` gives the states and
//!   a [`Record`]; `backward(field, record, cotangents)` gives [`BlockGradients`] with
//!   respect to `z0`, `θ` and (on request) the times. Models compose: encoder → ODE block
//!   → decoder, each half differentiated by its own means.
//! - The strategies implement [`AdjointStrategy`]: [`Backsolve`], [`Checkpointed`],
//!   [`Direct`] (see [`strategy`] for their memory and accuracy); [`Strategy`] picks one at
//!   run time.
//! - [`gradient`] is the one-call form: forward, a loss on the states at the output times,
//!   backward, returning [`Gradients`].
//! - [`gradient_chunks`] splits a batch into chunks solved in parallel, results identical
//!   for any thread count.
//! - [`AdjointOptions`] sets the forward and backward solves separately; the seminorm
//!   (parameter adjoints out of the backward error control) is on by default.
//! - Failures are an [`Error`]: a failed backward solve, a failing field (with its time) or
//!   a non-finite gradient never returns a gradient.
//!
//! ```
//! use adjoint::{gradient, AdjointOptions, ClosureField, Strategy};
//! use ode_solvers::{Method, Options};
//! // dz/dt = θ z, L = z(1)²: dL/dz0 = 2 z0 e^{2θ}, dL/dθ = 2 z0² e^{2θ}.
//! let field = ClosureField::new(1, vec![0.5],
//!     |_t, z: &[f64], p: &[f64], dz: &mut [f64]| dz[0] = p[0] * z[0],
//!     |_t, z: &[f64], p: &[f64], a: &[f64], vz: &mut [f64], vp: &mut [f64]| {
//!         vz[0] = a[0] * p[0];
//!         vp[0] = a[0] * z[0];
//!         0.0
//!     });
//! let loss = |zs: &[Vec<f64>]| (zs[1][0].powi(2), vec![vec![0.0], vec![2.0 * zs[1][0]]]);
//! let opts = AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-10).atol(1e-10));
//! let g = gradient(&field, &[2.0], &[0.0, 1.0], &loss, Strategy::Backsolve, &opts)?;
//! assert!((g.z0[0] - 4.0 * 1f64.exp()).abs() < 1e-7);
//! assert!((g.params[0] - 8.0 * 1f64.exp()).abs() < 1e-7);
//! # Ok::<(), adjoint::Error>(())
//! ```
#![deny(missing_docs)]

mod block;
mod error;
mod field;
mod gradient;
pub mod integrands;
pub mod strategy;

pub use block::{BlockGradients, OdeBlock};
pub use error::Error;
pub use field::{AutodiffField, ClosureField, FieldBuilder, VectorField};
pub use gradient::{gradient, gradient_chunks, gradient_with, AdjointOptions, Gradients, Loss};
pub use strategy::{AdjointStrategy, Backsolve, Checkpointed, Direct, Pullback, Record, Strategy};
