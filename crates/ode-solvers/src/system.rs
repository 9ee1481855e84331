//! The right-hand side `dy/dt = f(t, y)`.

/// A system of first-order ODEs `dy/dt = f(t, y)`.
///
/// The solver owns all buffers: `rhs` writes `f(t, y)` into `dy` (same length as `y`) and
/// must not allocate if the caller wants an allocation-free solve. Every closure
/// `Fn(T, &[T], &mut [T])` is an `OdeSystem`:
///
/// ```
/// use ode_solvers::OdeSystem;
/// let decay = |_t: f64, y: &[f64], dy: &mut [f64]| dy[0] = -y[0];
/// let mut dy = [0.0];
/// decay.rhs(0.0, &[2.0], &mut dy);
/// assert_eq!(dy, [-2.0]);
/// ```
pub trait OdeSystem<T> {
    /// Writes `f(t, y)` into `dy`.
    fn rhs(&self, t: T, y: &[T], dy: &mut [T]);
}

impl<T, F> OdeSystem<T> for F
where
    F: Fn(T, &[T], &mut [T]),
{
    #[inline(always)]
    fn rhs(&self, t: T, y: &[T], dy: &mut [T]) {
        self(t, y, dy)
    }
}
