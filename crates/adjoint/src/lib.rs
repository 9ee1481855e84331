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
//! - Precision: everything is `f64` by default and generic over [`Float`];
//!   `AutodiffField::<f32>::from_graph(graph, output)` solves and differentiates in single
//!   precision (states, adjoints and gradients in `f32`, parameters kept in `f64`), with
//!   the same strategies and checks (`tests/precision.rs`: every strategy's `f32`
//!   gradients within 1e-5 of the `f64` ones at `rtol = 1e-5`).
//!
//! # Training a neural ODE on data, with this crate alone
//!
//! `adjoint` re-exports what its API needs ([`ode_solvers`], [`autodiff`], and the usual
//! items in [`prelude`]), so a training script needs no other dependency. Fit an MLP
//! field to a trajectory of `dz/dt = A z` observed at 12 times:
//!
//! ```
//! use adjoint::prelude::*;
//!
//! // Data: the true system, solved tightly.
//! let truth = |_t: f64, z: &[f64], dz: &mut [f64]| {
//!     dz[0] = -0.1 * z[0] + 2.0 * z[1];
//!     dz[1] = -2.0 * z[0] - 0.1 * z[1];
//! };
//! let ts: Vec<f64> = (0..12).map(|i| 0.1 * i as f64).collect();
//! let data = odeint(&truth, &[2.0, 0.0], &ts, &Options::new(Method::Dopri5).rtol(1e-10).atol(1e-10))?.ys;
//!
//! // The field: an MLP 2 → 16 → 2 (tanh) on one state (a 1 × 2 batch).
//! let mut g = Graph::new();
//! let z = g.input(1, 2);
//! let mlp = Mlp::new(&mut g, "f", &[2, 16, 2], Activation::Tanh, &mut Rng::new(0))?;
//! let out = mlp.forward(&mut g, z)?;
//! let mut field = AutodiffField::new(g, out)?;
//!
//! // The solve as a layer, and an optimiser.
//! let block = OdeBlock::new(Strategy::Backsolve,
//!     AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-6).atol(1e-8)));
//! let mut adam = Adam::new(AdamConfig { lr: 2e-2, ..AdamConfig::default() });
//! let mut losses = Vec::new();
//! for _ in 0..150 {
//!     let record = block.forward(&field, &data[0], &ts)?;
//!     // Mean squared error over every time, and its cotangent ∂L/∂z(t_i).
//!     let n = (2 * ts.len()) as f64;
//!     let mut loss = 0.0;
//!     let cotangents: Vec<Vec<f64>> = record.zs.iter().zip(&data).map(|(z, d)| {
//!         z.iter().zip(d).map(|(a, b)| { loss += (a - b).powi(2) / n; 2.0 * (a - b) / n }).collect()
//!     }).collect();
//!     let grads = block.backward(&field, &record, &cotangents)?;
//!     adam.step(field.params_mut(), &grads.params)?;
//!     losses.push(loss);
//! }
//! assert!(losses[149] < 0.05 * losses[0], "{} -> {}", losses[0], losses[149]);
//! // The trained field is an OdeSystem: it goes straight into the solver.
//! let fitted = odeint(&field, &data[0], &ts, &Options::new(Method::Tsit5))?;
//! assert_eq!(fitted.ys.len(), ts.len());
//! # Ok::<(), adjoint::Error>(())
//! ```
//!
//! A hand-written field and the one-call [`gradient`]:
//!
//! ```
//! use adjoint::{gradient, AdjointOptions, ClosureField, Strategy};
//! use adjoint::ode_solvers::{Method, Options};
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

/// The precision of a solve and its gradients: `f64` (the default everywhere) or `f32`.
/// A field, its solves and its gradients share one; parameters stay `f64`.
pub trait Float: ode_solvers::Real + autodiff::Real {}
impl<T: ode_solvers::Real + autodiff::Real> Float for T {}
pub use error::Error;
pub use field::{AutodiffField, ClosureField, FieldBuilder, VectorField};
pub use gradient::{gradient, gradient_chunks, gradient_with, AdjointOptions, Gradients, Loss};
pub use strategy::{
    AdjointStrategy, Backsolve, Checkpointed, Direct, Pullback, Record, Strategy, Tape,
};

/// The lower layers, so a user of this crate needs no other dependency.
pub use autodiff;
pub use ode_solvers;

/// What a training script uses, in one import: `use adjoint::prelude::*;`.
pub mod prelude {
    pub use crate::{
        gradient, integrands, AdjointOptions, AutodiffField, ClosureField, Error, OdeBlock,
        Strategy, VectorField,
    };
    pub use autodiff::layers::{Activation, ConcatSquash, Linear, Mlp};
    pub use autodiff::optim::{Adam, AdamConfig, Optimizer, Schedule, Sgd, SgdConfig};
    pub use autodiff::{Axis, Graph, Mat, Rng, Var};
    pub use ode_solvers::{odeint, Method, OdeSystem, Options, StateLayout};
}
