//! The ways to differentiate a solve, as implementations of one trait: each records in
//! the forward pass exactly what its backward pass needs.
//!
//! | strategy | its record | memory in the number of steps | accuracy |
//! |---|---|---|---|
//! | [`Backsolve`] | nothing (the outputs) | O(1) | the continuous adjoint, with `z` re-integrated backwards (reset at each output time); can drift on unstable dynamics |
//! | [`Checkpointed`] | the forward solve's dense output | O(steps) | the continuous adjoint, with `z(t)` from the forward steps' dense output: no reconstruction error, no forward evaluation in the backward pass |
//! | [`Direct`] | the forward steps | O(steps) | the exact gradient of the discrete forward solution (steps held fixed), replayed stage by stage through the RK engine |

mod backsolve;
mod checkpointed;
mod direct;

pub use backsolve::Backsolve;
pub use checkpointed::Checkpointed;
pub use direct::Direct;

use ode_solvers::{odeint, Dense, Fallible, Options, Solution, StateLayout, Steps, Tolerance};

use crate::error::{backward, forward};
use crate::{AdjointOptions, Error, Float, VectorField};

/// What a forward pass leaves for its backward pass (states and times in the solve's
/// precision `R`).
#[derive(Debug, Clone, PartialEq)]
pub struct Record<T, R: Float = f64> {
    /// The output times.
    pub ts: Vec<R>,
    /// The states at the output times.
    pub zs: Vec<Vec<R>>,
    /// Right-hand-side evaluations of the forward solve.
    pub nfe_forward: usize,
    /// The strategy's own record.
    pub tape: T,
}

impl<T, R: Float> Record<T, R> {
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Record<U, R> {
        Record { ts: self.ts, zs: self.zs, nfe_forward: self.nfe_forward, tape: f(self.tape) }
    }
}

/// What a backward pass returns: the adjoint at the first output time and the parameter
/// gradient.
#[derive(Debug, Clone, PartialEq)]
pub struct Pullback<R: Float = f64> {
    /// `∂L/∂z(t_0)`.
    pub z0: Vec<R>,
    /// `∂L/∂θ`.
    pub params: Vec<R>,
    /// Evaluations of the backward pass (each a VJP, or a recomputed forward stage).
    pub nfe_backward: usize,
}

/// A way to differentiate `z(t_i) = ODESolve(f, z0, t_0, t_i, θ)`: a forward pass that
/// records, and a backward pass that pulls the cotangents `∂L/∂z(t_i)` back to `z0`
/// and `θ`. [`crate::OdeBlock`] checks the inputs and the returned gradients for any
/// strategy; the built-in ones ([`Backsolve`], [`Checkpointed`], [`Direct`], [`Strategy`])
/// also check their own (`block::check_inputs`, `block::checked_pull`), so one called
/// directly never panics on bad input or returns a non-finite gradient as `Ok`. The
/// checks are O(state + parameters), not per step. `R` is the solve's precision.
pub trait AdjointStrategy<R: Float = f64> {
    /// What the forward pass keeps.
    type Tape;

    /// Solves forward and records.
    fn forward<F: VectorField<R> + ?Sized>(
        &self,
        field: &F,
        z0: &[R],
        ts: &[R],
        opts: &AdjointOptions,
    ) -> Result<Record<Self::Tape, R>, Error>;

    /// Pulls `cotangents` (one per output time, each of the state's length) back.
    fn backward<F: VectorField<R> + ?Sized>(
        &self,
        field: &F,
        record: &Record<Self::Tape, R>,
        cotangents: &[Vec<R>],
        opts: &AdjointOptions,
    ) -> Result<Pullback<R>, Error>;
}

/// The strategies as one value, chosen at run time (from a command line, a config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// [`Backsolve`]: the adjoint method of Chen et al. (2018), Algorithm 1.
    Backsolve,
    /// [`Checkpointed`]: the backward ODE with `z(t)` from stored forward steps.
    Checkpointed,
    /// [`Direct`]: backpropagation through the Runge-Kutta stages of every step.
    Direct,
}

impl Strategy {
    /// All strategies.
    pub fn all() -> [Strategy; 3] {
        [Strategy::Backsolve, Strategy::Checkpointed, Strategy::Direct]
    }

    /// The name used on command lines and in case files.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Backsolve => "backsolve",
            Strategy::Checkpointed => "checkpointed",
            Strategy::Direct => "direct",
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Strategy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Strategy::all().into_iter().find(|k| k.name().eq_ignore_ascii_case(s)).ok_or_else(|| {
            Error::InvalidArgument {
                what: "strategy",
                detail: format!("'{s}'; valid: backsolve, checkpointed, direct"),
            }
        })
    }
}

/// What [`Strategy`]'s forward pass keeps: its strategy's own tape.
#[derive(Debug, Clone, PartialEq)]
pub enum Tape<R: Float = f64> {
    /// [`Backsolve`]'s: nothing beyond the outputs.
    Outputs,
    /// [`Checkpointed`]'s: the forward solve's dense output.
    Dense(Dense<R>),
    /// [`Direct`]'s: every accepted forward step.
    Steps(Steps<R>),
}

impl<R: Float> AdjointStrategy<R> for Strategy {
    /// The chosen strategy's tape.
    type Tape = Tape<R>;

    fn forward<F: VectorField<R> + ?Sized>(
        &self,
        field: &F,
        z0: &[R],
        ts: &[R],
        opts: &AdjointOptions,
    ) -> Result<Record<Tape<R>, R>, Error> {
        Ok(match self {
            Strategy::Backsolve => Backsolve.forward(field, z0, ts, opts)?.map(|()| Tape::Outputs),
            Strategy::Checkpointed => Checkpointed.forward(field, z0, ts, opts)?.map(Tape::Dense),
            Strategy::Direct => Direct.forward(field, z0, ts, opts)?.map(Tape::Steps),
        })
    }

    fn backward<F: VectorField<R> + ?Sized>(
        &self,
        field: &F,
        record: &Record<Tape<R>, R>,
        cotangents: &[Vec<R>],
        opts: &AdjointOptions,
    ) -> Result<Pullback<R>, Error> {
        let (ts, zs) = (&record.ts, &record.zs);
        let mismatch = || Error::InvalidArgument {
            what: "record",
            detail: format!("the {self} strategy cannot use a record made by another strategy"),
        };
        crate::block::checked_pull(field, ts, zs, cotangents, || match (self, &record.tape) {
            (Strategy::Backsolve, _) => Backsolve.pull(field, ts, zs, cotangents, opts),
            (Strategy::Checkpointed, Tape::Dense(dense)) => {
                Checkpointed.pull(field, ts, dense, cotangents, opts)
            }
            (Strategy::Direct, Tape::Steps(steps)) => {
                Direct.pull(field, ts, steps, cotangents, opts)
            }
            _ => Err(mismatch()),
        })
    }
}

/// The forward layout: the options' if set, else the field's.
pub(crate) fn forward_layout<R: Float, F: VectorField<R> + ?Sized>(
    field: &F,
    opts: &Options,
) -> Result<StateLayout, Error> {
    let layout = opts.layout.clone().unwrap_or_else(|| field.layout());
    layout.check(field.dim()).map_err(forward)?;
    Ok(layout)
}

/// The forward options with the field's layout in force.
pub(crate) fn forward_options<R: Float, F: VectorField<R> + ?Sized>(
    field: &F,
    opts: &AdjointOptions,
) -> Result<Options, Error> {
    let layout = forward_layout(field, &opts.forward)?;
    Ok(opts.forward.clone().layout(layout))
}

/// A backward tolerance stretched onto the backward state: one given per forward
/// component is used for the state and adjoint parts, and its smallest value for the
/// parameter adjoints.
fn backward_tolerance(tol: &Tolerance, d: usize, copies: usize, p: usize) -> Tolerance {
    match tol {
        Tolerance::PerComponent(v) if v.len() == d => {
            let smallest = v.iter().copied().fold(f64::INFINITY, f64::min);
            let mut out = Vec::with_capacity(copies * d + p);
            for _ in 0..copies {
                out.extend_from_slice(v);
            }
            out.extend(std::iter::repeat_n(if d == 0 { 1e-6 } else { smallest }, p));
            Tolerance::PerComponent(out)
        }
        other => other.clone(),
    }
}

/// The backward options for the state `[z (if with_z), a, θ̄]`: its layout derived from
/// the forward one (each adjoint part controlled like its state part; `θ̄` only when the
/// seminorm is off), per-component tolerances stretched to match. Without `z` in the state
/// (the checkpointed adjoint), the absolute tolerance of the adjoint parts is scaled by the
/// cotangents' magnitude: an adjoint of a mean over many entries is small (`a = 2z/N` for
/// a mean square), and an unscaled `atol` on it alone acts as a loose relative tolerance
/// (issue #16: a 3.4e-4 error where 1e-6 was asked). With `z` in the norm (backsolve) its
/// steps stay as accurate as the forward ones, and the tolerance is left as given.
pub(crate) fn backward_options<R: Float, F: VectorField<R> + ?Sized>(
    field: &F,
    opts: &AdjointOptions,
    with_z: bool,
    cotangents: &[Vec<R>],
) -> Result<Options, Error> {
    let fwd = forward_layout(field, &opts.forward)?;
    let (d, p) = (field.dim(), field.params().len());
    let mut layout = StateLayout::new();
    if with_z {
        layout = layout.extend_prefixed("", &fwd);
    }
    layout =
        layout.extend_prefixed("adjoint of ", &fwd).part("parameter adjoint", p, !opts.seminorm);
    let copies = if with_z { 2 } else { 1 };
    let n = layout.len();
    let mut b = opts.backward.clone().layout(layout);
    b.rtol = backward_tolerance(&opts.backward.rtol, d, copies, p);
    let scale = cotangents.iter().flatten().fold(0.0f64, |m, c| m.max(c.abs().to_f64_lossless()));
    let mut atol = match backward_tolerance(&opts.backward.atol, d, copies, p) {
        Tolerance::Scalar(x) => vec![x; n],
        Tolerance::PerComponent(v) => v,
    };
    if !with_z && scale.is_finite() && scale > 0.0 {
        atol.iter_mut().for_each(|x| *x *= scale);
    }
    b.atol = Tolerance::PerComponent(atol);
    Ok(b)
}

/// The plain forward solve as a record: `configure` adds what the strategy keeps to the
/// forward options, `keep` takes it out of the solution as the tape.
pub(crate) fn solve_forward<R: Float, F: VectorField<R> + ?Sized, T>(
    field: &F,
    z0: &[R],
    ts: &[R],
    opts: &AdjointOptions,
    configure: impl FnOnce(Options) -> Options,
    keep: impl FnOnce(&mut Solution<R>) -> Option<T>,
) -> Result<Record<T, R>, Error> {
    crate::block::check_inputs(field, z0, ts)?;
    let fopts = configure(forward_options(field, opts)?);
    let mut sol = odeint(field, z0, ts, &fopts).map_err(forward)?;
    let tape = keep(&mut sol).ok_or(Error::InvalidArgument {
        what: "forward solve",
        detail: "the solver kept no record for the backward pass (a Runge-Kutta method is needed)"
            .into(),
    })?;
    Ok(Record { ts: ts.to_vec(), zs: sol.ys, nfe_forward: sol.stats.nfe, tape })
}

/// The backward sweep shared by the adjoint strategies: from the last output time to the
/// first, solve `rhs` over each interval, take its end state, let `after` adjust it (the
/// backsolve resets `z`), and add `∂L/∂z(t_{i-1})` to the adjoint at `state[a..a + d]`.
/// Returns the evaluations spent.
pub(crate) fn sweep<T: Float, R, A>(
    ts: &[T],
    cotangents: &[Vec<T>],
    state: &mut [T],
    a: usize,
    opts: &Options,
    rhs: R,
    mut after: A,
) -> Result<usize, Error>
where
    R: Fn(T, &[T], &mut [T]) -> Result<(), Error>,
    A: FnMut(usize, &mut [T]) -> Result<(), Error>,
{
    let system = Fallible(rhs);
    let mut nfe = 0;
    for i in (1..ts.len()).rev() {
        let seg = odeint(&system, state, &[ts[i], ts[i - 1]], opts).map_err(backward)?;
        nfe += seg.stats.nfe;
        state.copy_from_slice(&seg.ys[1]);
        after(i - 1, state)?;
        for (x, &g) in state[a..a + cotangents[i - 1].len()].iter_mut().zip(&cotangents[i - 1]) {
            *x = *x + g;
        }
    }
    Ok(nfe)
}
