//! The one error type of this crate.

use std::fmt;

use crate::RhsError;

/// Everything that can go wrong in a solve. Times and step sizes are reported as `f64`
/// whatever the solver's float type, so the error is the same type for `f32` and `f64`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// More than `max_steps` steps were needed.
    MaxStepsReached {
        /// Time reached when the budget ran out.
        t: f64,
        /// The step budget (`Options::max_steps`).
        steps: usize,
    },
    /// The adaptive step size fell below `dt_min` or below the resolution of `t`.
    StepSizeTooSmall {
        /// Time at which the step underflowed.
        t: f64,
        /// The rejected step size.
        h: f64,
    },
    /// The right-hand side or the state became NaN or infinite and shrinking the step did
    /// not help.
    NonFinite {
        /// Time of the last finite state.
        t: f64,
    },
    /// The right-hand side failed (returned an error) at time `t`; the solve stopped there.
    Rhs {
        /// Time of the failing evaluation.
        t: f64,
        /// What the right-hand side said.
        source: RhsError,
    },
    /// A user input (initial state, time, tolerance vector) contains NaN or infinity.
    NonFiniteInput {
        /// Which input.
        what: &'static str,
        /// Index of the first offending entry.
        index: usize,
    },
    /// A tolerance is not positive (rtol) / negative (atol) / not finite.
    InvalidTolerance {
        /// `"rtol"` or `"atol"`.
        name: &'static str,
        /// The offending value.
        value: f64,
    },
    /// `ts` needs at least one time.
    EmptyTimes,
    /// `ts` is neither strictly increasing nor strictly decreasing.
    UnsortedTimes {
        /// Index `i` such that `ts[i]` breaks the direction set by `ts[0]..ts[1]`.
        index: usize,
    },
    /// Two lengths that must agree do not.
    DimensionMismatch {
        /// What was measured.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// A fixed-step method was used without `Options::step_size`.
    MissingStepSize {
        /// The method's name.
        method: &'static str,
    },
    /// A step-size option is not positive and finite, or `dt_min > dt_max`.
    InvalidStepSize {
        /// Which option.
        what: &'static str,
        /// The offending value.
        value: f64,
    },
    /// A step-size controller setting is out of range: coefficients must be finite,
    /// `0 < safety <= 1`, `0 < factor_min <= 1 <= factor_max < ∞`.
    InvalidController {
        /// Which setting.
        what: &'static str,
        /// The offending value.
        value: f64,
    },
    /// The method does not exist in the requested variant (e.g. `AdamsBashforth(9)`).
    UnsupportedMethod {
        /// The method's name.
        method: &'static str,
        /// What was asked for.
        detail: String,
    },
    /// The event function returned NaN at `t`: its crossings cannot be located.
    NonFiniteEvent {
        /// Where.
        t: f64,
    },
    /// A method name that [`crate::Method`] does not parse.
    UnknownMethod {
        /// The name given.
        name: String,
    },
    /// `Solution::at` on a solution solved without `Options::dense`.
    NoDenseOutput,
    /// `Solution::at(t)` outside the solved interval.
    OutsideInterval {
        /// The time asked for.
        t: f64,
        /// Start of the solved interval.
        start: f64,
        /// Its end.
        end: f64,
    },
    /// One trajectory of a batch failed.
    Batch {
        /// Index of the first failing initial state.
        index: usize,
        /// Its error.
        source: Box<Error>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MaxStepsReached { t, steps } => write!(
                f,
                "maximum number of steps ({steps}) reached at t = {t}; raise Options::max_steps, \
                 loosen the tolerances, or check the problem for stiffness"
            ),
            Error::StepSizeTooSmall { t, h } => write!(
                f,
                "step size {h:e} too small at t = {t}; the solution may blow up or the problem \
                 is stiff: check the right-hand side, or lower Options::dt_min"
            ),
            Error::NonFinite { t } => write!(
                f,
                "the right-hand side or state became NaN/infinite after t = {t}; check the \
                 right-hand side near that time"
            ),
            Error::Rhs { t, source } => {
                write!(f, "the right-hand side failed at t = {t}: {source}")
            }
            Error::NonFiniteInput { what, index } => {
                write!(f, "{what}[{index}] is NaN or infinite; pass finite values")
            }
            Error::InvalidTolerance { name, value } => write!(
                f,
                "invalid tolerance {name} = {value}: rtol must be positive and atol non-negative, \
                 both finite"
            ),
            Error::EmptyTimes => write!(f, "ts is empty; pass at least the initial time"),
            Error::UnsortedTimes { index } => write!(
                f,
                "ts is not strictly monotonic at index {index}; sort the output times \
                 (increasing for forward, decreasing for backward integration)"
            ),
            Error::DimensionMismatch { what, expected, got } => {
                write!(f, "{what}: expected length {expected}, got {got}")
            }
            Error::MissingStepSize { method } => write!(
                f,
                "{method} is a fixed-step method: set Options::step_size, or pick an adaptive \
                 method such as Dopri5"
            ),
            Error::InvalidStepSize { what, value } => {
                write!(f, "invalid {what} = {value}: step sizes must be positive and finite")
            }
            Error::InvalidController { what, value } => write!(
                f,
                "invalid step-size controller {what} = {value}: coefficients finite, \
                 0 < safety <= 1, 0 < factor_min <= 1 <= factor_max < inf"
            ),
            Error::UnsupportedMethod { method, detail } => write!(f, "{method}: {detail}"),
            Error::UnknownMethod { name } => {
                let valid: Vec<&str> =
                    crate::method::METHOD_NAMES.iter().map(|(n, _)| *n).collect();
                write!(f, "unknown method '{name}'; valid names: {}", valid.join(", "))
            }
            Error::NonFiniteEvent { t } => write!(
                f,
                "the event function returned NaN at t = {t}; an event must be finite to be located"
            ),
            Error::NoDenseOutput => write!(
                f,
                "this solution has no dense output; solve with Options::dense(true) to call at(t)"
            ),
            Error::OutsideInterval { t, start, end } => {
                write!(f, "t = {t} is outside the solved interval [{start}, {end}]")
            }
            Error::Batch { index, source } => {
                write!(f, "trajectory {index} of the batch failed: {source}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Batch { source, .. } => Some(source.as_ref()),
            Error::Rhs { source, .. } => Some(source.cause()),
            _ => None,
        }
    }
}
