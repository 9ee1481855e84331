//! Solver options: the method, tolerances, error norm, step-size controller and limits.

use crate::{Method, StateLayout};

/// A tolerance: one value for every component, or one per component.
#[derive(Debug, Clone, PartialEq)]
pub enum Tolerance {
    /// The same tolerance for every component.
    Scalar(f64),
    /// One tolerance per component (length = state dimension).
    PerComponent(Vec<f64>),
}

/// The norm applied to the scaled error `err_i / (atol_i + rtol_i·max(|y0_i|, |y1_i|))`.
#[derive(Debug, Clone, Copy)]
pub enum Norm {
    /// Root mean square over the controlled components (the default, as in Hairer's codes,
    /// SciPy, torchdiffeq and diffrax).
    Rms,
    /// Maximum absolute value.
    Max,
    /// A user norm of the scaled error vector (only the controlled components are passed).
    Custom(fn(&[f64]) -> f64),
}

/// A PID step-size controller (Söderlind 2003; diffrax's `PIDController`).
///
/// With `ε_n` the error norm of step `n` and `k = q + 1` (`q` the order of the error
/// estimate), the next step is `h·clamp(safety·ε_n^(-β1/k)·ε_{n-1}^(-β2/k)·ε_{n-2}^(-β3/k))`
/// with `β1 = p + i + d`, `β2 = -(p + 2d)`, `β3 = d`. The plain integral (I) controller is
/// `i = 1`, `p = d = 0`. A step is accepted when `ε_n <= 1`; a rejected step may only
/// shrink.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PidController {
    /// Proportional coefficient `p`.
    pub pcoeff: f64,
    /// Integral coefficient `i`.
    pub icoeff: f64,
    /// Derivative coefficient `d`.
    pub dcoeff: f64,
    /// Safety factor applied to every proposal.
    pub safety: f64,
    /// Smallest factor by which a step may shrink.
    pub factor_min: f64,
    /// Largest factor by which a step may grow.
    pub factor_max: f64,
}

impl PidController {
    /// The integral (I) controller, the classic choice: `i = 1`.
    pub fn integral() -> Self {
        PidController {
            pcoeff: 0.0,
            icoeff: 1.0,
            dcoeff: 0.0,
            safety: 0.9,
            factor_min: 0.2,
            factor_max: 10.0,
        }
    }

    /// A PI controller; `pi(0.4, 0.3)` is the choice diffrax suggests for most problems.
    pub fn pi(pcoeff: f64, icoeff: f64) -> Self {
        PidController { pcoeff, icoeff, ..Self::integral() }
    }

    /// A PID controller.
    pub fn pid(pcoeff: f64, icoeff: f64, dcoeff: f64) -> Self {
        PidController { pcoeff, icoeff, dcoeff, ..Self::integral() }
    }
}

impl Default for PidController {
    fn default() -> Self {
        Self::integral()
    }
}

/// Everything that configures a solve, built with chained setters:
///
/// ```
/// use ode_solvers::{Method, Options, Norm};
/// let opts = Options::new(Method::Dopri5).rtol(1e-8).atol(1e-10).norm(Norm::Max).max_steps(50_000);
/// assert_eq!(opts.method, Method::Dopri5);
/// ```
///
/// Values are `f64` whatever float the solve uses; they are converted once per solve.
#[derive(Debug, Clone)]
pub struct Options {
    /// The method.
    pub method: Method,
    /// Relative tolerance (adaptive methods). Default `1e-6`.
    pub rtol: Tolerance,
    /// Absolute tolerance (adaptive methods). Default `1e-9`.
    pub atol: Tolerance,
    /// Norm of the scaled error. Default RMS.
    pub norm: Norm,
    /// `Some(layout)`: the state's named parts; only the controlled ones enter the error
    /// norm (a seminorm; the others are still integrated). `None`: all components.
    pub layout: Option<StateLayout>,
    /// The step-size controller.
    pub controller: PidController,
    /// Fixed step size: required by fixed-step methods; for an adaptive method it turns
    /// error control off and steps with this size. Steps are shortened so that every
    /// requested time is hit exactly.
    pub step_size: Option<f64>,
    /// First step of an adaptive solve; `None` uses Hairer's automatic choice.
    pub first_step: Option<f64>,
    /// Smallest allowed adaptive step; below it the solve fails with `StepSizeTooSmall`.
    pub dt_min: f64,
    /// Largest allowed adaptive step.
    pub dt_max: f64,
    /// Largest number of steps (accepted and rejected) before `MaxStepsReached`.
    pub max_steps: usize,
    /// Record the time and state after every accepted step in `Solution::steps`.
    pub save_steps: bool,
    /// Keep every step's dense output, so `Solution::at(t)` evaluates the solution at any
    /// time of the solved interval (diffrax's `SaveAt(dense=True)`); Runge-Kutta methods.
    pub dense: bool,
}

impl Options {
    /// Default options for `method`.
    pub fn new(method: Method) -> Self {
        Options {
            method,
            rtol: Tolerance::Scalar(1e-6),
            atol: Tolerance::Scalar(1e-9),
            norm: Norm::Rms,
            layout: None,
            controller: PidController::integral(),
            step_size: None,
            first_step: None,
            dt_min: 0.0,
            dt_max: f64::INFINITY,
            max_steps: 100_000,
            save_steps: false,
            dense: false,
        }
    }

    /// Sets one relative tolerance for all components.
    pub fn rtol(mut self, rtol: f64) -> Self {
        self.rtol = Tolerance::Scalar(rtol);
        self
    }

    /// Sets one absolute tolerance for all components.
    pub fn atol(mut self, atol: f64) -> Self {
        self.atol = Tolerance::Scalar(atol);
        self
    }

    /// Sets per-component relative tolerances.
    pub fn rtol_per_component(mut self, rtol: Vec<f64>) -> Self {
        self.rtol = Tolerance::PerComponent(rtol);
        self
    }

    /// Sets per-component absolute tolerances.
    pub fn atol_per_component(mut self, atol: Vec<f64>) -> Self {
        self.atol = Tolerance::PerComponent(atol);
        self
    }

    /// Sets the error norm.
    pub fn norm(mut self, norm: Norm) -> Self {
        self.norm = norm;
        self
    }

    /// Describes the state's parts; error control covers the controlled ones only.
    pub fn layout(mut self, layout: StateLayout) -> Self {
        self.layout = Some(layout);
        self
    }

    /// Sets the step-size controller.
    pub fn controller(mut self, controller: PidController) -> Self {
        self.controller = controller;
        self
    }

    /// Sets a fixed step size.
    pub fn step_size(mut self, h: f64) -> Self {
        self.step_size = Some(h);
        self
    }

    /// Sets the first adaptive step.
    pub fn first_step(mut self, h: f64) -> Self {
        self.first_step = Some(h);
        self
    }

    /// Sets the smallest allowed adaptive step.
    pub fn dt_min(mut self, h: f64) -> Self {
        self.dt_min = h;
        self
    }

    /// Sets the largest allowed adaptive step.
    pub fn dt_max(mut self, h: f64) -> Self {
        self.dt_max = h;
        self
    }

    /// Sets the step budget.
    pub fn max_steps(mut self, n: usize) -> Self {
        self.max_steps = n;
        self
    }

    /// Records every accepted step.
    pub fn save_steps(mut self, yes: bool) -> Self {
        self.save_steps = yes;
        self
    }

    /// Keeps the dense output for `Solution::at`.
    pub fn dense(mut self, yes: bool) -> Self {
        self.dense = yes;
        self
    }
}
