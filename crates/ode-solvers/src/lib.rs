//! Explicit ODE solvers for `dy/dt = f(t, y)`: fixed-step and adaptive Runge-Kutta
//! methods, Adams multistep methods, dense output, events and parallel batches.
//!
//! # A tour in the order you meet things
//!
//! - A problem is an [`OdeSystem`]: anything that writes `f(t, y)` into a slice. Every
//!   closure `Fn(T, &[T], &mut [T])` is one; `T` is `f64` or `f32` ([`Real`]).
//! - [`Options`] picks a [`Method`] and configures the solve: `rtol`/`atol` (scalar or per
//!   component), the error [`Norm`] (RMS, max, or your own), a [`StateLayout`] naming the
//!   state's parts and which of them the error control watches (a seminorm), the
//!   [`PidController`], `step_size` for fixed steps,
//!   `dt_min`/`dt_max`/`max_steps`.
//! - [`odeint`] solves and returns a [`Solution`]: the states at the requested times (from
//!   dense output, never by shortening steps; fixed-step methods land exactly on them),
//!   [`Stats`] (NFE, accepted and rejected steps), and every step if asked.
//!   [`odeint_with_event`] stops at a zero crossing ([`Event`]); [`odeint_batch`] solves
//!   many initial states in parallel.
//! - Anything that goes wrong is an [`Error`], never a panic. A right-hand side may fail
//!   ([`Fallible`], [`RhsError`]): the solve stops with [`Error::Rhs`] and the time.
//! - Below the one-call API, [`RkIntegrator`] is the allocation-free stepping kernel; the
//!   methods are [`Tableau`] data that drive it.
//!
//! ```
//! use ode_solvers::{odeint, Method, Options};
//! let f = |_t: f64, y: &[f64], dy: &mut [f64]| { dy[0] = y[1]; dy[1] = -y[0]; };
//! let sol = odeint(&f, &[1.0, 0.0], &[0.0, 1.0, 2.0],
//!                  &Options::new(Method::Dopri5).rtol(1e-8).atol(1e-10))?;
//! let y_at_2 = &sol.ys[2];
//! assert!((y_at_2[0] - 2.0f64.cos()).abs() < 1e-7);
//! let fixed = odeint(&f, &[1.0, 0.0], &[0.0, 2.0], &Options::new(Method::Rk4).step_size(0.01))?;
//! assert!((fixed.ys[1][1] + 2.0f64.sin()).abs() < 1e-8);
//! // Backward in time: decreasing ts.
//! let back = odeint(&f, &y_at_2.clone(), &[2.0, 0.0], &Options::new(Method::Tsit5).rtol(1e-10).atol(1e-12))?;
//! assert!((back.ys[1][0] - 1.0).abs() < 1e-8);
//! # Ok::<(), ode_solvers::Error>(())
//! ```
#![deny(missing_docs)]

mod adams;
pub mod convergence;
mod error;
mod event;
mod layout;
mod method;
mod options;
pub mod problems;
mod real;
mod rk;
mod simd;
mod solve;
mod system;
pub mod tableau;

pub use error::Error;
pub use event::{Direction, Event, EventHit};
pub use layout::{Part, StateLayout};
pub use method::{Method, METHOD_NAMES};
pub use options::{Norm, Options, PidController, Tolerance};
pub use real::Real;
pub use rk::{DenseSegment, RkIntegrator, Stats, StepOutcome};
pub use solve::{
    odeint, odeint_batch, odeint_batch_each, odeint_with_event, Dense, Solution, Steps,
};
pub use system::{Fallible, OdeSystem, RhsError};
pub use tableau::Tableau;
