//! The floating-point scalar the solvers are generic over.

use std::fmt::{Debug, Display};

/// A real scalar: `f64` (the default everywhere) or `f32`.
///
/// Method coefficients are stored once as `f64` and converted with [`Real::lit`], the one
/// place where numeric constants enter generic code.
pub trait Real:
    num_traits::Float + Debug + Display + Default + Send + Sync + std::iter::Sum + 'static
{
    /// Converts an `f64` constant (rounding for `f32`).
    fn lit(x: f64) -> Self;
    /// Widens to `f64`, for error reports and statistics.
    fn to_f64_lossless(self) -> f64;
}

impl Real for f64 {
    #[inline(always)]
    fn lit(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64_lossless(self) -> f64 {
        self
    }
}

impl Real for f32 {
    #[inline(always)]
    fn lit(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64_lossless(self) -> f64 {
        f64::from(self)
    }
}
