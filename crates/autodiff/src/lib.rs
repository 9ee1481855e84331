//! Reverse-mode automatic differentiation on dense `f64` (or `f32`) matrices, for neural
//! vector fields that are evaluated thousands of times per ODE solve.
//!
//! # A tour in the order you meet things
//!
//! - A [`Graph`] records a computation once: [`Graph::input`]s (set on every run),
//!   [`Graph::param`]eters (stored together as one flat vector, with named
//!   [`ParamBlock`] views), constants, and operations ([`Op`]: matmul, broadcasting
//!   arithmetic, activations, reductions, column slicing and concatenation, transpose,
//!   log-sum-exp, log-softmax, cross-entropy). Building checks shapes and returns
//!   [`Error::ShapeMismatch`] instead of panicking.
//! - [`Graph::vjp`] and [`Graph::grad`] append the vector-Jacobian product as more nodes of
//!   the same graph. Differentiate those again for gradients of gradients.
//! - An [`Executor`] replays the graph on new inputs and parameters into preallocated
//!   buffers without allocating; [`eval`] is the one-off (eager) path over the same
//!   kernels, so both give bit-identical results. A [`GraphBlock`] is a graph as a layer
//!   with a forward and a backward half, to compose with other layers (an ODE block).
//! - Precision: a graph records `f64` parameters; [`Executor::build`] plans an
//!   `Executor<f32>` that replays the same graph in single precision with `f32` kernels
//!   (twice the lanes per vector register). See [`Real`].
//!
//! ```
//! use autodiff::{Axis, Executor, Graph, Mat};
//! // f(x) = Σ tanh(x W), its gradient in W, and a Hessian-vector product in x.
//! let mut g = Graph::new();
//! let x = g.input(4, 2);
//! let w = g.param("w", &Mat::from_row_slice(2, 3, &[0.1, -0.2, 0.3, 0.4, 0.5, -0.6]));
//! let h = g.matmul(x, w)?;
//! let y = g.tanh(h)?;
//! let f = g.sum(y, Axis::All)?;
//! let grads = g.grad(f, &[w, x])?;
//! let v = g.input(4, 2);
//! let gv = g.mul(grads[1], v)?;
//! let gv = g.sum(gv, Axis::All)?;
//! let hvp = g.grad(gv, &[x])?[0];
//! let mut exe = Executor::new(&g, &[f, grads[0], hvp])?;
//! exe.run(&g, &[&Mat::from_element(4, 2, 0.5), &Mat::from_element(4, 2, 1.0)])?;
//! assert_eq!(exe.value(grads[0]).shape(), (2, 3));
//! # Ok::<(), autodiff::Error>(())
//! ```
#![deny(missing_docs)]

mod backward;
mod block;
pub mod check;
pub mod checkpoint;
mod error;
mod exec;
mod fastmath;
mod gemm;
mod graph;
pub mod layers;
pub mod optim;
mod real;
mod rng;

pub use block::GraphBlock;
pub use error::Error;
pub use exec::{eval, Executor};
pub use graph::{Axis, Binary, ConvGeometry, Graph, Mat, Mat32, Node, Op, ParamBlock, Unary, Var};
/// The dense matrix type of every value (`Mat` is `DMatrix<f64>`), for code generic over
/// [`Real`].
pub use nalgebra::DMatrix;
pub use real::Real;
pub use rng::Rng;
