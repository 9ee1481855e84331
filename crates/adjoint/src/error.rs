//! The adjoint layer's error: the lower layers' errors, and its own.

use std::fmt;

use ode_solvers::RhsError;

/// Everything that can go wrong computing a gradient.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The forward or backward solve failed; `backward` says which.
    Solve {
        /// Whether the backward (adjoint) solve failed.
        backward: bool,
        /// The solver's error.
        source: ode_solvers::Error,
    },
    /// The vector field (or its VJP) failed during a solve at time `t`; the solve stopped.
    Field {
        /// Whether it failed in the backward pass.
        backward: bool,
        /// Time of the failing evaluation.
        t: f64,
        /// What the field said.
        cause: Box<Error>,
    },
    /// Building or running the vector field's graph failed.
    Autodiff(autodiff::Error),
    /// Lengths that must agree do not.
    DimensionMismatch {
        /// What was measured.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// An argument is not acceptable (`what`), and why.
    InvalidArgument {
        /// The argument.
        what: &'static str,
        /// Why it is refused.
        detail: String,
    },
    /// The loss or its gradient is NaN or infinite.
    NonFiniteLoss,
    /// A computed gradient is NaN or infinite (`what`, first offending `index`): the
    /// field's VJP produced a non-finite value; no gradient is returned.
    NonFiniteGradient {
        /// `"z0"`, `"params"` or `"times"`.
        what: &'static str,
        /// Index of the first non-finite entry.
        index: usize,
    },
}

impl From<autodiff::Error> for Error {
    fn from(e: autodiff::Error) -> Self {
        Error::Autodiff(e)
    }
}

/// A solver error outside a gradient computation (a plain `odeint` in a user's script) is
/// a forward solve's.
impl From<ode_solvers::Error> for Error {
    fn from(e: ode_solvers::Error) -> Self {
        solve_error(false, e)
    }
}

/// A field's error travels through the solver as the cause of `ode_solvers::Error::Rhs`.
impl From<Error> for RhsError {
    fn from(e: Error) -> Self {
        RhsError::new(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Solve { backward: false, source } => write!(f, "forward solve failed: {source}"),
            Error::Solve { backward: true, source } => write!(
                f,
                "backward (adjoint) solve failed: {source}; no gradient was returned. Tighten the backward \\
                 tolerances or use the checkpointed adjoint"
            ),
            Error::Field { backward, t, cause } => write!(
                f,
                "the vector field failed at t = {t} in the {} pass: {cause}",
                if *backward { "backward" } else { "forward" }
            ),
            Error::Autodiff(e) => write!(f, "vector field: {e}"),
            Error::DimensionMismatch { what, expected, got } => {
                write!(f, "{what}: expected length {expected}, got {got}")
            }
            Error::InvalidArgument { what, detail } => write!(f, "invalid {what}: {detail}"),
            Error::NonFiniteLoss => write!(f, "the loss or its gradient is NaN or infinite"),
            Error::NonFiniteGradient { what, index } => write!(
                f,
                "the gradient with respect to {what} is NaN or infinite at index {index}; the \\
                 vector field's derivative is not finite along this trajectory"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Solve { source, .. } => Some(source),
            Error::Field { cause, .. } => Some(cause.as_ref()),
            Error::Autodiff(e) => Some(e),
            _ => None,
        }
    }
}

/// A solver error of the forward (`backward == false`) or backward pass; a field's own
/// error comes back out as [`Error::Field`].
pub(crate) fn solve_error(backward: bool, e: ode_solvers::Error) -> Error {
    if let ode_solvers::Error::Rhs { t, source } = &e {
        if let Some(cause) = source.downcast_ref::<Error>() {
            // A nested solve's failure (a checkpointed replay) is reported as it was.
            if matches!(cause, Error::Field { .. } | Error::Solve { .. }) {
                return cause.clone();
            }
            return Error::Field { backward, t: *t, cause: Box::new(cause.clone()) };
        }
    }
    Error::Solve { backward, source: e }
}

pub(crate) fn forward(e: ode_solvers::Error) -> Error {
    solve_error(false, e)
}

pub(crate) fn backward(e: ode_solvers::Error) -> Error {
    solve_error(true, e)
}

/// `Err(NonFiniteGradient)` at the first NaN or infinity of `v`.
pub(crate) fn check_finite<T: crate::Float>(what: &'static str, v: &[T]) -> Result<(), Error> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(Error::NonFiniteGradient { what, index }),
        None => Ok(()),
    }
}
