//! Run-time dispatch of the solver's loops to the widest vector unit the CPU has.
//!
//! The crate is compiled for the baseline target (on x86-64: SSE2, two `f64` lanes), so
//! the stage combinations and the error norm would run two lanes at a time on a CPU with
//! 8-lane AVX-512. [`dispatch`] runs such a kernel inside a function compiled for AVX-512
//! or AVX2 where the CPU has them (checked at run time: a cached load). The kernels are
//! generic over the float only, not over the right-hand side, so each is compiled three
//! times per float type, not per system (dispatching a whole step, with the right-hand
//! side inlined, also vectorised a closure field but multiplied the workspace's build time
//! by the number of systems). The one exception is the right-hand-side call itself
//! (`rk.rs`'s `call_rhs`): three small copies per system, so that a closure field on a
//! large state is vectorised too. Rust never contracts `a * b + c` into a fused
//! multiply-add, so the three copies compute bit-identical results.

/// States shorter than this run the baseline code: for a handful of components the wide
/// loops' set-up and masked tails cost more than they save (Lotka-Volterra, 2 components,
/// measured 20% slower through AVX-512).
pub(crate) const WIDE_FROM: usize = 32;

/// Runs `f` compiled for the widest of AVX-512, AVX2 + FMA or the baseline that this CPU
/// has when `len` (the vectors' length) is at least [`WIDE_FROM`], else as compiled; `f`'s
/// body (and what it inlines) is vectorised for that unit.
///
/// Callers must write `f` as an `#[inline(always)] || ...` closure: without the
/// attribute the compiler may keep the closure an out-of-line function compiled for the
/// baseline (SSE2), called from the AVX-512 body, and nothing is vectorised (`perf`
/// showed it; Van der Pol 2048 at 1e-8 ran 2.60 ms against 2.25 ms).
#[inline(always)]
pub(crate) fn dispatch<R>(len: usize, f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if len >= WIDE_FROM {
        if has_avx512() {
            #[allow(unsafe_code)]
            // SAFETY: the CPU has every feature `avx512` is compiled for (checked above).
            return unsafe { avx512(f) };
        }
        if has_avx2_fma() {
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// Whether the CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Whether the CPU has the AVX-512 subsets the solver's loops use.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512() -> bool {
    has_avx2_fma()
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512dq")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
#[allow(unsafe_code)]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(unsafe_code)]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Whether every value is finite, in one pass [`dispatch`]ed to the vector unit: `x·0` is
/// NaN exactly for a non-finite `x`, and a sum is NaN when any term is.
#[inline(always)]
pub(crate) fn all_finite<T: crate::Real>(xs: &[T]) -> bool {
    dispatch(
        xs.len(),
        #[inline(always)]
        || finite_sum(xs),
    )
}

/// [`all_finite`]'s pass, compiled where it is inlined.
#[inline(always)]
fn finite_sum<T: crate::Real>(xs: &[T]) -> bool {
    let mut acc = [T::zero(); 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            acc[l] = acc[l] + c[l] * T::zero();
        }
    }
    for (l, &x) in tail.iter().enumerate() {
        acc[l] = acc[l] + x * T::zero();
    }
    !acc.iter().fold(T::zero(), |s, &a| s + a).is_nan()
}
