//! Gradients of ODE solutions, making a solve a differentiable building block.
//!
//! # A tour in the order you meet things
//!
//! - A [`VectorField`] is `f(z, t, θ)` with its vector-Jacobian products `aᵀ∂f/∂z`,
//!   `aᵀ∂f/∂θ`, `aᵀ∂f/∂t`. [`AutodiffField`] replays an `autodiff` graph (a neural network)
//!   without allocating; [`ClosureField`] takes hand-written functions.
//! - [`gradient`] solves forward, evaluates a loss on the states at the output times, and
//!   returns [`Gradients`] with respect to `z0`, `θ` and the times, by one of three
//!   [`Strategy`]s (see its table for their memory and accuracy).
//! - [`gradient_chunks`] splits a batch into chunks solved in parallel, results identical
//!   for any thread count.
//! - [`AdjointOptions`] sets the forward and backward solves separately; the seminorm
//!   (parameter adjoints out of the backward error control) is on by default.
//! - Failures are an [`Error`]: a failed backward solve never returns a gradient.
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

mod error;
mod field;
mod gradient;

pub use error::Error;
pub use field::{AutodiffField, ClosureField, VectorField};
pub use gradient::{gradient, gradient_chunks, AdjointOptions, Gradients, Loss, Strategy};
