//! The right-hand side `dy/dt = f(t, y)`, and the error it may return.

use std::fmt;
use std::sync::Arc;

/// Why a right-hand side could not be evaluated: the cause a user's closure (or a neural
/// field's autodiff replay) returned. The solve stops at once and reports it as
/// [`crate::Error::Rhs`] with the time; no NaN is smuggled through.
///
/// The cause is shared (`Arc`), so the error stays cheap to clone;
/// [`RhsError::downcast_ref`] gets the original error back.
#[derive(Clone)]
pub struct RhsError(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl RhsError {
    /// Wraps any error.
    pub fn new<E: std::error::Error + Send + Sync + 'static>(cause: E) -> Self {
        RhsError(Arc::new(cause))
    }

    /// An error that is only a message.
    pub fn msg(message: impl Into<String>) -> Self {
        #[derive(Debug)]
        struct Message(String);
        impl fmt::Display for Message {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::error::Error for Message {}
        RhsError(Arc::new(Message(message.into())))
    }

    /// The cause, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref::<E>()
    }

    /// The cause.
    pub fn cause(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for RhsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RhsError({:?})", self.0)
    }
}

impl fmt::Display for RhsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Two errors are equal when they are the same shared cause or say the same thing.
impl PartialEq for RhsError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

/// A system of first-order ODEs `dy/dt = f(t, y)`.
///
/// The solver owns all buffers: `rhs` writes `f(t, y)` into `dy` (same length as `y`) and
/// must not allocate if the caller wants an allocation-free solve. An evaluation may fail:
/// the solve then stops with [`crate::Error::Rhs`]. Every closure `Fn(T, &[T], &mut [T])`
/// is an (infallible) `OdeSystem`; wrap a closure that returns `Result` in [`Fallible`]:
///
/// ```
/// use ode_solvers::{odeint, Error, Fallible, Method, OdeSystem, Options, RhsError};
/// let decay = |_t: f64, y: &[f64], dy: &mut [f64]| dy[0] = -y[0];
/// let mut dy = [0.0];
/// decay.rhs(0.0, &[2.0], &mut dy)?;
/// assert_eq!(dy, [-2.0]);
/// // A right-hand side that refuses negative states.
/// let sqrt = Fallible(|_t: f64, y: &[f64], dy: &mut [f64]| {
///     if y[0] < 0.0 {
///         return Err(RhsError::msg("sqrt of a negative state"));
///     }
///     dy[0] = -y[0].sqrt() - 1.0;
///     Ok(())
/// });
/// let err = odeint(&sqrt, &[1.0], &[0.0, 5.0], &Options::new(Method::Dopri5)).unwrap_err();
/// assert!(matches!(err, Error::Rhs { t, .. } if t > 0.0 && t < 5.0));
/// # Ok::<(), RhsError>(())
/// ```
pub trait OdeSystem<T> {
    /// Writes `f(t, y)` into `dy`, or says why it cannot.
    fn rhs(&self, t: T, y: &[T], dy: &mut [T]) -> Result<(), RhsError>;
}

impl<T, F> OdeSystem<T> for F
where
    F: Fn(T, &[T], &mut [T]),
{
    #[inline(always)]
    fn rhs(&self, t: T, y: &[T], dy: &mut [T]) -> Result<(), RhsError> {
        self(t, y, dy);
        Ok(())
    }
}

/// A closure `Fn(T, &[T], &mut [T]) -> Result<(), E>` as an [`OdeSystem`].
#[derive(Debug, Clone, Copy)]
pub struct Fallible<F>(pub F);

impl<T, F, E> OdeSystem<T> for Fallible<F>
where
    F: Fn(T, &[T], &mut [T]) -> Result<(), E>,
    E: Into<RhsError>,
{
    #[inline(always)]
    fn rhs(&self, t: T, y: &[T], dy: &mut [T]) -> Result<(), RhsError> {
        (self.0)(t, y, dy).map_err(Into::into)
    }
}
