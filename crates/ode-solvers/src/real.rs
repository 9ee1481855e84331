//! The floating-point scalar the solvers are generic over.

use std::fmt::{Debug, Display};

/// The heavy float-only operations of the Runge-Kutta kernel (`rk::Core`), as hidden
/// methods of [`Real`]: `f64` and `f32` implement them below, so their code (stage sums,
/// the error norm and step control, each with AVX-512 and AVX2 copies) is compiled once, in
/// this crate, instead of again in every crate and binary that solves an ODE: generic code
/// is compiled where it is used, and Rust shares no instantiations across crates at
/// `opt-level` 2 or more. Another float type gets the same code as the trait's defaults.
macro_rules! rk_core_ops {
    () => {
        /// Only this crate holds a `Token`, so only it can build a `Core`: no other `rk_*`
        /// method can be reached from outside with a core of a caller's making.
        #[doc(hidden)]
        fn rk_new(
            dim: usize,
            opts: &crate::Options,
            _: crate::rk::Token,
        ) -> Result<crate::rk::Core<Self>, crate::Error> {
            crate::rk::Core::new_here(dim, opts)
        }
        #[doc(hidden)]
        fn rk_stage_io(
            core: &mut crate::rk::Core<Self>,
            i: usize,
            h: Self,
            t_new: Self,
        ) -> (Self, &[Self], &mut [Self]) {
            core.stage_io_here(i, h, t_new)
        }
        #[doc(hidden)]
        fn rk_end_of_step(core: &mut crate::rk::Core<Self>, h: Self) {
            core.end_of_step_here(h)
        }
        #[doc(hidden)]
        fn rk_initial_step_begin(
            core: &mut crate::rk::Core<Self>,
        ) -> Result<(Self, Self), crate::Error> {
            core.initial_step_begin_here()
        }
        #[doc(hidden)]
        fn rk_initial_step_end(core: &mut crate::rk::Core<Self>, h0: Self, d1: Self) -> Self {
            core.initial_step_end_here(h0, d1)
        }
        #[doc(hidden)]
        fn rk_control(
            core: &mut crate::rk::Core<Self>,
            h: Self,
            t_new: Self,
            h_abs: Self,
        ) -> Result<crate::StepOutcome, crate::Error> {
            core.control_here(h, t_new, h_abs)
        }
        #[doc(hidden)]
        fn rk_stage_input(
            core: &crate::rk::Core<Self>,
            i: usize,
            out: &mut [Self],
        ) -> Result<(), crate::Error> {
            core.stage_input_here(i, out)
        }
        #[doc(hidden)]
        fn rk_extra_stage_io(
            core: &mut crate::rk::Core<Self>,
            e: usize,
        ) -> (Self, &[Self], &mut [Self]) {
            core.extra_stage_io_here(e)
        }
        #[doc(hidden)]
        fn rk_interpolate_into(core: &mut crate::rk::Core<Self>, t: Self, out: &mut [Self]) {
            core.interpolate_into_here(t, out)
        }
    };
}

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
    rk_core_ops!();
}

impl Real for f64 {
    rk_core_ops!();
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
    rk_core_ops!();
    #[inline(always)]
    fn lit(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64_lossless(self) -> f64 {
        f64::from(self)
    }
}
