//! The training layer's error.

use std::fmt;

/// Everything that can go wrong loading data or training.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    Io {
        /// The file.
        path: String,
        /// What the system said.
        message: String,
    },
    /// A data file is not in the expected format.
    Format {
        /// The file.
        path: String,
        /// Where and what.
        detail: String,
    },
    /// A hyper-parameter or argument is out of range.
    InvalidArgument {
        /// Which.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// The loss or the gradient became NaN or infinite at `step`; the parameters were not
    /// updated.
    NonFinite {
        /// `"loss"` or `"gradient"`.
        what: &'static str,
        /// The training step.
        step: u64,
    },
    /// A graph, optimizer or checkpoint operation failed.
    Autodiff(autodiff::Error),
    /// The model itself failed (e.g. an ODE solve in its forward or backward pass).
    Model(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Wraps a model's own error.
    pub fn model<E: std::error::Error + Send + Sync + 'static>(e: E) -> Self {
        Error::Model(Box::new(e))
    }
}

impl From<autodiff::Error> for Error {
    fn from(e: autodiff::Error) -> Self {
        Error::Autodiff(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, message } => write!(f, "{path}: {message}"),
            Error::Format { path, detail } => write!(f, "{path}: {detail}"),
            Error::InvalidArgument { what, detail } => write!(f, "invalid {what}: {detail}"),
            Error::NonFinite { what, step } => write!(
                f,
                "the {what} is NaN or infinite at step {step}; lower the learning rate or clip \
                 the gradient (the parameters were not updated)"
            ),
            Error::Autodiff(e) => write!(f, "{e}"),
            Error::Model(e) => write!(f, "model: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Autodiff(e) => Some(e),
            Error::Model(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}
