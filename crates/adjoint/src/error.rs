//! The adjoint layer's error: the lower layers' errors, and its own.

use std::fmt;

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
    /// The loss or its gradient is NaN or infinite.
    NonFiniteLoss,
}

impl From<autodiff::Error> for Error {
    fn from(e: autodiff::Error) -> Self {
        Error::Autodiff(e)
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
            Error::Autodiff(e) => write!(f, "vector field: {e}"),
            Error::DimensionMismatch { what, expected, got } => {
                write!(f, "{what}: expected length {expected}, got {got}")
            }
            Error::NonFiniteLoss => write!(f, "the loss or its gradient is NaN or infinite"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Solve { source, .. } => Some(source),
            Error::Autodiff(e) => Some(e),
            _ => None,
        }
    }
}

pub(crate) fn forward(e: ode_solvers::Error) -> Error {
    Error::Solve { backward: false, source: e }
}

pub(crate) fn backward(e: ode_solvers::Error) -> Error {
    Error::Solve { backward: true, source: e }
}
