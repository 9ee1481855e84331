//! The one error type of this crate.

use std::fmt;

/// Everything that can go wrong building or running a graph.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// Operand shapes do not fit the operation.
    ShapeMismatch {
        /// The operation.
        op: &'static str,
        /// The shape it needed (rows, columns).
        expected: (usize, usize),
        /// The shape it got.
        got: (usize, usize),
    },
    /// The operation has no derivative that a gradient could use.
    BackwardNotSupported {
        /// The operation.
        op: &'static str,
    },
    /// A `Var` from another graph, or one not yet built.
    UnknownVar {
        /// Its index.
        index: usize,
    },
    /// `run` was given the wrong number of inputs.
    InputCount {
        /// Inputs the graph declares.
        expected: usize,
        /// Inputs given.
        got: usize,
    },
    /// A value that must be finite is not.
    NonFinite {
        /// What was checked.
        what: &'static str,
    },
    /// Reading or writing a file failed.
    Io {
        /// The file.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// A checkpoint file is truncated or corrupt (bad magic, length or checksum).
    CorruptCheckpoint {
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint was written by an unknown format version.
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
    },
    /// A checkpoint does not fit the model it is loaded into.
    CheckpointMismatch {
        /// What differs.
        what: String,
    },
    /// An invalid argument to an operation (a zero width, an out-of-range slice).
    InvalidArgument {
        /// The operation.
        op: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch { op, expected, got } => write!(
                f,
                "{op}: expected shape {}×{}, got {}×{}; check the operands' shapes",
                expected.0, expected.1, got.0, got.1
            ),
            Error::BackwardNotSupported { op } => {
                write!(f, "{op} has no gradient; keep it out of the differentiated path")
            }
            Error::UnknownVar { index } => {
                write!(f, "variable #{index} does not belong to this graph")
            }
            Error::InputCount { expected, got } => {
                write!(f, "the graph has {expected} inputs, {got} were given")
            }
            Error::NonFinite { what } => write!(f, "{what} is NaN or infinite"),
            Error::InvalidArgument { op, detail } => write!(f, "{op}: {detail}"),
            Error::Io { path, message } => write!(f, "{path}: {message}"),
            Error::CorruptCheckpoint { reason } => {
                write!(f, "corrupt checkpoint ({reason}); the model was left unchanged")
            }
            Error::UnsupportedVersion { found } => write!(
                f,
                "checkpoint format version {found} is not supported by this build (it reads version {})",
                crate::checkpoint::FORMAT_VERSION
            ),
            Error::CheckpointMismatch { what } => {
                write!(f, "checkpoint does not fit this model: {what}; the model was left unchanged")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Refuses a `rows × cols` block of `f64` whose bytes overflow the address space (a forged
/// or mistyped size), before anything is allocated.
pub(crate) fn param_size(op: &'static str, rows: usize, cols: usize) -> Result<(), Error> {
    match rows.checked_mul(cols).and_then(|n| n.checked_mul(std::mem::size_of::<f64>())) {
        Some(bytes) if bytes <= isize::MAX as usize => Ok(()),
        _ => Err(Error::InvalidArgument {
            op,
            detail: format!("a {rows}×{cols} block does not fit in memory"),
        }),
    }
}
