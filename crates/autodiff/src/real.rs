//! The float types an [`Executor`](crate::Executor) computes in: `f64` (the default) and
//! `f32`.
//!
//! A [`Graph`](crate::Graph) is recorded once, with its parameters and constants in `f64`;
//! an `Executor<f32>` replays it in single precision (parameters and constants converted
//! as it reads them, inputs and outputs in `f32`), with `f32` kernels: the matrix product's
//! AVX-512 micro-kernel holds 16 lanes per register where the `f64` one holds 8, and `exp`,
//! `tanh` and `sigmoid` use shorter polynomials. Gradient checks stay in `f64`.

use crate::fastmath;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// `f32` or `f64`: the element type of an [`Executor`](crate::Executor)'s values.
///
/// Sealed: the executor's kernels exist for these two types only.
pub trait Real:
    num_traits::Float
    + nalgebra::Scalar
    + Default
    + Send
    + Sync
    + std::iter::Sum
    + std::fmt::Display
    + sealed::Sealed
{
    /// `"f32"` or `"f64"`, for reports.
    const NAME: &'static str;
    /// Rows of the AVX-512 matrix-product micro-kernel: three registers of this type's
    /// lanes (24 for `f64`, 48 for `f32`).
    #[doc(hidden)]
    const WIDE_MR: usize;
    /// Rows of the AVX2 matrix-product micro-kernel: two registers of this type's lanes
    /// (8 for `f64`, 16 for `f32`).
    #[doc(hidden)]
    const AVX2_MR: usize;
    /// `x` rounded to this type.
    fn of(x: f64) -> Self;
    /// This value in `f64` (exact).
    fn widen(self) -> f64;
    /// `a·b + c`, fused where the caller is compiled for FMA.
    #[doc(hidden)]
    fn madd<const FMA: bool>(a: Self, b: Self, c: Self) -> Self;
    /// The executor's vectorisable `e^x`.
    #[doc(hidden)]
    fn fast_exp<const FMA: bool>(self) -> Self;
    /// The executor's vectorisable `tanh x`.
    #[doc(hidden)]
    fn fast_tanh<const FMA: bool>(self) -> Self;
    /// The executor's vectorisable logistic function.
    #[doc(hidden)]
    fn fast_sigmoid<const FMA: bool>(self) -> Self;
    /// The graph's `f64` parameters as this type without copying, where they already are.
    #[doc(hidden)]
    fn native(values: &[f64]) -> Option<&[Self]>;
    /// [`Real::native`], writable.
    #[doc(hidden)]
    fn native_mut(values: &mut [f64]) -> Option<&mut [Self]>;
    /// `out = tanh(xs)` in AVX-512 intrinsics where this type has such a kernel (returns
    /// `false`, writing nothing, where not).
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, VL and DQ, AVX2 and FMA.
    #[doc(hidden)]
    #[allow(unsafe_code)]
    unsafe fn tanh_avx512(out: &mut [Self], xs: &[Self]) -> bool;
    /// `out = tanh(xs)` in AVX2 + FMA intrinsics (returns `false`, writing nothing, where
    /// this target has no such kernel).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[doc(hidden)]
    #[allow(unsafe_code)]
    unsafe fn tanh_avx2(out: &mut [Self], xs: &[Self]) -> bool;
    /// The matrix product's micro-kernel in intrinsics (see `gemm.rs`): for `NR = 8` the
    /// `WIDE_MR × 8` AVX-512 one, for `NR = 6` the `AVX2_MR × 6` AVX2 one.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA, and for `NR = 8` AVX-512 F.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments, unsafe_code)]
    unsafe fn intrinsic_block<const NR: usize>(
        m: usize,
        kc: usize,
        panel: (&[Self], usize),
        i: usize,
        c: &mut [Self],
        j: usize,
        first: bool,
        bq: impl Fn(usize) -> [Self; NR],
    );
    /// Packs rows `base + r·rs ..+ kc` of `a` (`r < mr`) as `kc` groups of `mr`
    /// (`panel[p·mr + r] = a[base + r·rs + p]`) by transposes in registers, on the widest
    /// vector unit this CPU has (see `gemm.rs`); returns `false`, writing nothing, where
    /// `mr` is no multiple of 8, the slices are too short, or the CPU has neither AVX-512
    /// nor AVX2.
    #[doc(hidden)]
    fn pack_rows(panel: &mut [Self], mr: usize, a: &[Self], rows: (usize, usize, usize)) -> bool;
    /// [`Executor::replay`](crate::Executor::replay) for this type, compiled in this crate:
    /// the kernels (the products, element-wise loops and their AVX-512 and AVX2 copies)
    /// are then compiled once, here, instead of again in every crate and binary that
    /// replays a graph (generic code is compiled where it is used, and Rust shares no
    /// instantiations across crates at `opt-level` 2 or more).
    #[doc(hidden)]
    fn exec_replay(exec: &mut crate::Executor<Self>, g: &crate::Graph) -> Result<(), crate::Error>;
    /// [`Executor::build`](crate::Executor::build) for this type, compiled in this crate
    /// (see [`Real::exec_replay`]).
    #[doc(hidden)]
    fn exec_build(
        g: &crate::Graph,
        outputs: &[crate::Var],
    ) -> Result<crate::Executor<Self>, crate::Error>;
}

/// A `tanh` kernel method of [`Real`] that calls `fastmath::$kernel` on x86-64 (and returns
/// `false`, writing nothing, elsewhere).
macro_rules! forward_tanh {
    ($name:ident, $kernel:ident) => {
        #[inline(always)]
        #[allow(unsafe_code)]
        unsafe fn $name(out: &mut [Self], xs: &[Self]) -> bool {
            #[cfg(target_arch = "x86_64")]
            {
                #[allow(unsafe_code)]
                // SAFETY: the caller guarantees the CPU features.
                unsafe {
                    fastmath::$kernel(out, xs)
                };
                true
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = (out, xs);
                false
            }
        }
    };
}

/// The kernel methods of [`Real`] that forward to the type's intrinsics: `tanh_avx2`,
/// `tanh_avx512`, `pack_rows` and `intrinsic_block` (with the portable block of the same
/// shape off x86-64).
macro_rules! forward_kernels {
    (
        $t:ty,
        $tanh:ident,
        $tanh512:ident,
        $wide:ident,
        $wide_mr:literal,
        $avx2:ident,
        $avx2_mr:literal,
        $pack:ident
    ) => {
        forward_tanh!(tanh_avx2, $tanh);
        forward_tanh!(tanh_avx512, $tanh512);
        #[inline(always)]
        fn pack_rows(
            panel: &mut [Self],
            mr: usize,
            a: &[Self],
            (rs, base, kc): (usize, usize, usize),
        ) -> bool {
            #[cfg(target_arch = "x86_64")]
            {
                crate::gemm::$pack(panel, mr, a, (rs, base, kc))
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = (panel, mr, a, rs, base, kc);
                false
            }
        }
        #[inline(always)]
        #[allow(unsafe_code)]
        unsafe fn intrinsic_block<const NR: usize>(
            m: usize,
            kc: usize,
            panel: (&[Self], usize),
            i: usize,
            c: &mut [Self],
            j: usize,
            first: bool,
            bq: impl Fn(usize) -> [Self; NR],
        ) {
            /// `bq`'s rows as the kernel's fixed width (`W == NR` where it is called).
            fn rows<T: Copy + Default, const NR: usize, const W: usize>(
                bq: impl Fn(usize) -> [T; NR],
            ) -> impl Fn(usize) -> [T; W] {
                move |p| {
                    let v = bq(p);
                    std::array::from_fn(|q| v.get(q).copied().unwrap_or_default())
                }
            }
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            // SAFETY: the caller guarantees the CPU features.
            unsafe {
                if NR == 8 {
                    crate::gemm::$wide(m, kc, panel, i, c, j, first, rows::<_, NR, 8>(bq))
                } else {
                    crate::gemm::$avx2(m, kc, panel, i, c, j, first, rows::<_, NR, 6>(bq))
                }
            };
            #[cfg(not(target_arch = "x86_64"))]
            if NR == 8 {
                crate::gemm::block::<$t, false, $wide_mr, NR>(m, kc, panel, i, c, j, first, bq);
            } else {
                crate::gemm::block::<$t, false, $avx2_mr, NR>(m, kc, panel, i, c, j, first, bq);
            }
        }
    };
}

/// [`Real::exec_replay`] and [`Real::exec_build`]: the executor's generic bodies,
/// instantiated for the implementing type here, in this crate.
macro_rules! executor_here {
    () => {
        fn exec_replay(
            exec: &mut crate::Executor<Self>,
            g: &crate::Graph,
        ) -> Result<(), crate::Error> {
            exec.replay_here(g)
        }
        fn exec_build(
            g: &crate::Graph,
            outputs: &[crate::Var],
        ) -> Result<crate::Executor<Self>, crate::Error> {
            crate::Executor::build_here(g, outputs)
        }
    };
}

impl Real for f64 {
    forward_kernels!(f64, tanh_avx2, tanh_avx512, block_24x8, 24, block_8x6, 8, transpose_rows_f64);
    executor_here!();
    const NAME: &'static str = "f64";
    const WIDE_MR: usize = 24;
    const AVX2_MR: usize = 8;
    #[inline(always)]
    fn of(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn widen(self) -> f64 {
        self
    }
    #[inline(always)]
    fn madd<const FMA: bool>(a: Self, b: Self, c: Self) -> Self {
        fastmath::madd::<FMA>(a, b, c)
    }
    #[inline(always)]
    fn fast_exp<const FMA: bool>(self) -> Self {
        fastmath::exp::<FMA>(self)
    }
    #[inline(always)]
    fn fast_tanh<const FMA: bool>(self) -> Self {
        fastmath::tanh::<FMA>(self)
    }
    #[inline(always)]
    fn fast_sigmoid<const FMA: bool>(self) -> Self {
        fastmath::sigmoid::<FMA>(self)
    }
    #[inline(always)]
    fn native(values: &[f64]) -> Option<&[Self]> {
        Some(values)
    }
    #[inline(always)]
    fn native_mut(values: &mut [f64]) -> Option<&mut [Self]> {
        Some(values)
    }
}

impl Real for f32 {
    forward_kernels!(
        f32,
        tanh_avx2_f32,
        tanh_avx512_f32,
        block_48x8,
        48,
        block_16x6_f32,
        16,
        transpose_rows_f32
    );
    executor_here!();
    const NAME: &'static str = "f32";
    const WIDE_MR: usize = 48;
    const AVX2_MR: usize = 16;
    #[inline(always)]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn widen(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn madd<const FMA: bool>(a: Self, b: Self, c: Self) -> Self {
        fastmath::madd_f32::<FMA>(a, b, c)
    }
    #[inline(always)]
    fn fast_exp<const FMA: bool>(self) -> Self {
        fastmath::exp_f32::<FMA>(self)
    }
    #[inline(always)]
    fn fast_tanh<const FMA: bool>(self) -> Self {
        fastmath::tanh_f32::<FMA>(self)
    }
    #[inline(always)]
    fn fast_sigmoid<const FMA: bool>(self) -> Self {
        fastmath::sigmoid_f32::<FMA>(self)
    }
    #[inline(always)]
    fn native(_: &[f64]) -> Option<&[Self]> {
        None
    }
    #[inline(always)]
    fn native_mut(_: &mut [f64]) -> Option<&mut [Self]> {
        None
    }
}
