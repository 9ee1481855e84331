//! Branch-free `exp`, `tanh` and `sigmoid` that compilers vectorise, accurate to a few ulp.
//!
//! libm's scalar calls cost 10-40 ns each and dominate an MLP vector field (a 2→64→64→2
//! network at batch 512 evaluates 65 536 `tanh` per pass against 4.5 MFLOP of products).
//! `exp` uses Cody-Waite range reduction `x = k ln 2 + r`, `|r| ≤ ln2/2`, a degree-13
//! Taylor polynomial for `e^r` and exponent-bit scaling; `tanh` is `expm1`-based, one
//! polynomial (`EXPM1_F64`, near-minimax) and one division for every `x` (no branch to
//! blend).

const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
const LOG2E: f64 = std::f64::consts::LOG2_E;

/// `expm1(r) = r Σ_i EXPM1_F64[i] r^i` on `|r| ≤ ln2/2`: the interpolant of `expm1(r)/r` at
/// 11 Chebyshev nodes (near-minimax; 0.106 ε worst with these rounded coefficients, where
/// the degree-12 Taylor polynomial it replaced had 0.05 ε for two more FMAs; `tanh`'s
/// worst error stays 2.05 ε). Derived by `docs/derivations/expm1_poly.py`.
const EXPM1_F64: [f64; 11] = [
    1.0,
    0.500_000_000_000_000_6,
    0.166_666_666_666_666_7,
    0.041_666_666_666_573_14,
    0.008_333_333_333_326_141,
    0.001_388_888_893_248_859_9,
    0.000_198_412_698_748_004_93,
    2.480_150_434_699_768_6e-5,
    2.755_725_542_574_643_5e-6,
    2.762_635_724_144_722_3e-7,
    2.510_520_637_395_701e-8,
];

/// [`EXPM1_F64`]'s `f32` counterpart, degree 5 at 6 nodes (0.212 ε worst; the degree-7
/// Taylor polynomial it replaced took two more FMAs; `tanh`'s worst stays 1.33 ε).
const EXPM1_F32: [f32; 6] = [
    1.0,
    0.5,
    0.166_665_047_407_150_27,
    0.041_666_466_742_753_98,
    0.008_369_148_708_879_948,
    0.001_393_364_160_321_652_9,
];

/// `a·b + c`, fused where the caller is compiled for FMA (a libm call otherwise, so only
/// the FMA-compiled paths ask for it).
#[inline(always)]
pub(crate) fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `e^x`, relative error below 4e-16 on `[-707.7, 709.78]`; `+∞` above, and `0` below
/// (results that would be subnormal, under 2.2e-308, flush to zero); NaN for NaN.
#[inline(always)]
pub(crate) fn exp<const FMA: bool>(x: f64) -> f64 {
    let xc = x.clamp(-707.7, 709.78);
    // Round to nearest by adding and removing 1.5·2^52 (no libm call, vectorises).
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    let k = (xc * LOG2E + SHIFTER) - SHIFTER;
    let r = (xc - k * LN2_HI) - k * LN2_LO;
    // Taylor series of e^r to r^13 / 13! (truncation < 2e-17 for |r| ≤ 0.347).
    let mut p = 1.0 / 6_227_020_800.0;
    for c in [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = madd::<FMA>(p, r, c);
    }
    // 2p · 2^(k-1), 2^(k-1) from the bits of (k - 1) + 1023 + SHIFTER, whose low mantissa
    // bits hold the biased exponent (k ∈ [-1021, 1024], so k - 1 is a normal exponent). No
    // integer conversion, so the loop stays vectorised.
    let biased = (k + (SHIFTER + 1022.0)).to_bits() & 0x7FF;
    let y = (p + p) * f64::from_bits(biased << 52);
    if x > 709.78 {
        f64::INFINITY
    } else if x < -707.7 {
        0.0
    } else if x.is_nan() {
        x
    } else {
        y
    }
}

/// `tanh x`, relative error below 1e-15 (5e-16 measured), as
/// `-expm1(-2|x|) / (2 + expm1(-2|x|))` with the sign of `x`: no cancellation near 0, so
/// no second branch (a series for small `|x|`) is needed, and one exponential-type
/// polynomial and one division per element. `expm1(y) = 2^k expm1(r) + (2^k - 1)` with
/// `y = k ln 2 + r`, `|r| ≤ ln2/2`; `y` is clamped at -40, beyond which `tanh` rounds to
/// ±1, so `2^k` is always normal. NaN propagates (the clamp's comparison is false for it).
#[inline(always)]
pub(crate) fn tanh<const FMA: bool>(x: f64) -> f64 {
    let y = -2.0 * x.abs();
    let y = if y < -40.0 { -40.0 } else { y };
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    let k = madd::<FMA>(y, LOG2E, SHIFTER) - SHIFTER;
    let r = madd::<FMA>(k, -LN2_LO, madd::<FMA>(k, -LN2_HI, y));
    // expm1(r) = r Σ EXPM1_F64[i] r^i (0.106 ε for |r| ≤ 0.347).
    let mut p = EXPM1_F64[10];
    for &c in EXPM1_F64[..10].iter().rev() {
        p = madd::<FMA>(p, r, c);
    }
    // 2^k from the exponent bits of k + 1023 (k ∈ [-58, 0]), as in `exp`.
    let s = f64::from_bits(((k + (SHIFTER + 1023.0)).to_bits() & 0x7FF) << 52);
    let em = madd::<FMA>(s, p * r, s - 1.0);
    (-em / (2.0 + em)).copysign(x)
}

/// Coefficients `c_i (-2)^(i+1)`: `h Σ c'_i h^i` with these is `r Σ c_i r^i` at `r = -2h`,
/// bit for bit, since scaling by a power of two commutes with rounding (away from overflow
/// and subnormals: every Horner partial sum here is scaled by `(-2)^(i+1)` exactly). The
/// vector kernels so skip [`tanh`]'s multiplication by -2, one FMA-port operation of
/// about 17 per vector, and 3-4 cycles off each element's chain of dependent operations.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn halved_argument<T: Copy + std::ops::Mul<Output = T>, const N: usize>(
    c: [T; N],
    minus_two: T,
) -> [T; N] {
    let mut scale = minus_two;
    c.map(|ci| {
        let v = ci * scale;
        scale = scale * minus_two;
        v
    })
}

/// Runs `whole`, a kernel over whole vectors of `L` lanes, on `xs`'s whole vectors, and on a
/// zero-padded copy of a tail shorter than one, so that an element's value never depends on
/// where it sits (a fused step's pieces and a whole matrix agree bit for bit). `out` and
/// `xs` have one length (the caller's contract; the shorter one bounds the work).
#[inline(always)]
fn with_padded_tail<T: Copy + Default, const L: usize>(
    out: &mut [T],
    xs: &[T],
    whole: impl Fn(&mut [T], &[T]),
) {
    let n = out.len().min(xs.len());
    let w = n / L * L;
    whole(&mut out[..w], &xs[..w]);
    if w < n {
        let (mut x, mut t) = ([T::default(); L], [T::default(); L]);
        x[..n - w].copy_from_slice(&xs[w..n]);
        whole(&mut t, &x);
        out[w..n].copy_from_slice(&t[..n - w]);
    }
}

/// Whether the AVX-512 `tanh` kernels divide with the divide unit (`DIV`) rather than by
/// `rcp14` and Newton steps: on AMD's cores. The division runs beside the FMA pipes, which
/// the Newton steps would otherwise share with the polynomial. On a Zen 4 EPYC the `f64`
/// kernel took 26.5 µs per 512×64 against 31.4 µs with `rcp14` (`benches/peers/ab.sh …
/// kernels tanh`, 6 rounds), the T2 forward 0.94x, its gradients 0.98x, the `f32` forward
/// 0.98x (3 rounds). Intel's cores keep the `rcp14` path, tuned on a Xeon (its 512-bit
/// division was not timed there). Fixed per machine by the CPU's vendor, so a machine's
/// results never change between runs.
#[cfg(target_arch = "x86_64")]
pub(crate) fn divides_in_hardware() -> bool {
    static AMD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AMD.get_or_init(|| {
        // CPUID leaf 0 names the vendor in EBX, EDX, ECX: "Auth" "enti" "cAMD".
        let r = std::arch::x86_64::__cpuid(0);
        (r.ebx, r.edx, r.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163)
    })
}

/// `out = tanh(xs)` in AVX-512: [`tanh`]'s formula with the exponent scaling by `scalef`,
/// and the division by the divide unit or, where [`divides_in_hardware`] says no, by
/// `rcp14` and two Newton steps (5 FMA-port operations). The second step corrects the
/// quotient itself, so the error stays within [`tanh`]'s few ulp (a third step, on the
/// reciprocal, left the worst error at 2.05 ε and cost 10% of the time). `out` and `xs` have one
/// length (the caller's contract). A tail shorter than a vector runs the same vector code on
/// a zero-padded copy, so an element's value never depends on where it sits (a fused
/// step's pieces and a whole matrix agree bit for bit).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
pub(crate) fn tanh_avx512(out: &mut [f64], xs: &[f64]) {
    // The closures inherit this function's target features.
    if divides_in_hardware() {
        with_padded_tail::<_, 8>(out, xs, |o, x| tanh_avx512_whole::<true>(o, x));
    } else {
        with_padded_tail::<_, 8>(out, xs, |o, x| tanh_avx512_whole::<false>(o, x));
    }
}

/// [`tanh_avx512`] over whole vectors (a tail shorter than one is left alone), dividing
/// with the divide unit where `DIV`: two vectors at a time, then one.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
#[inline]
fn tanh_avx512_whole<const DIV: bool>(out: &mut [f64], xs: &[f64]) {
    let n8 = out.len().min(xs.len()) / 8 * 8;
    let n16 = n8 / 16 * 16;
    let cf = halved_argument(EXPM1_F64, -2.0);
    for (o, x) in out[..n16].chunks_exact_mut(16).zip(xs[..n16].chunks_exact(16)) {
        tanh_avx512_vectors::<DIV, 2>(o, x, &cf);
    }
    for (o, x) in out[n16..n8].chunks_exact_mut(8).zip(xs[n16..n8].chunks_exact(8)) {
        tanh_avx512_vectors::<DIV, 1>(o, x, &cf);
    }
}

/// `tanh` of `N` vectors of 8 (`o` and `x` hold at least `8N`; nothing is written where
/// not), each step done for all `N` before the next. Each element's operations form one
/// dependent chain of about 80 cycles, so only a few vectors' chains fit the core's
/// out-of-order window; interleaving two keeps twice the operations ready in it: 25.2 →
/// 23.5 µs per 512×64 on a Zen 4 EPYC (four: 1.02x slower than two). Each lane gets the
/// same operations for any `N`, so the bits do not depend on where an element sits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
#[inline]
fn tanh_avx512_vectors<const DIV: bool, const N: usize>(o: &mut [f64], x: &[f64], cf: &[f64; 11]) {
    use std::arch::x86_64::*;
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    if o.len() < 8 * N || x.len() < 8 * N {
        return;
    }
    let c = |v: f64| _mm512_set1_pd(v);
    let each = |f: &dyn Fn(usize) -> __m512d| -> [__m512d; N] { std::array::from_fn(f) };
    let xv = each(&|j| {
        #[allow(unsafe_code)]
        // SAFETY: `x` holds at least 8N values (checked above); lanes 8j..8j+8, j < N.
        unsafe {
            _mm512_loadu_pd(x.as_ptr().add(8 * j))
        }
    });
    // [`tanh`]'s `y = -2|x|` (clamped at -40) as `u = -y/2`, the factor folded into the
    // constants (see `halved_argument`). min(20, u) returns its second operand when either
    // is NaN: NaN propagates.
    let u = each(&|j| _mm512_min_pd(c(20.0), _mm512_abs_pd(xv[j])));
    let k =
        each(&|j| _mm512_sub_pd(_mm512_fmadd_pd(u[j], c(-2.0 * LOG2E), c(SHIFTER)), c(SHIFTER)));
    // r = -2h: [`tanh`]'s reduced argument, halved and negated.
    let h = each(&|j| _mm512_fmadd_pd(k[j], c(LN2_HI / 2.0), u[j]));
    let h = each(&|j| _mm512_fmadd_pd(k[j], c(LN2_LO / 2.0), h[j]));
    let mut p = [c(cf[10]); N];
    for &cj in cf[..10].iter().rev() {
        p = each(&|j| _mm512_fmadd_pd(p[j], h[j], c(cj)));
    }
    let s = each(&|j| _mm512_scalef_pd(c(1.0), k[j]));
    let ph = each(&|j| _mm512_mul_pd(p[j], h[j]));
    let em = each(&|j| _mm512_fmadd_pd(s[j], ph[j], _mm512_sub_pd(s[j], c(1.0))));
    let den = each(&|j| _mm512_add_pd(c(2.0), em[j]));
    let q = each(&|j| {
        if DIV {
            _mm512_div_pd(em[j], den[j])
        } else {
            // 1/den from 14 bits: one Newton step to 28, then one correction of the
            // quotient (worst error 2.05 ε over the test's grid, as with a second step).
            let inv = _mm512_rcp14_pd(den[j]);
            let inv = _mm512_fmadd_pd(inv, _mm512_fnmadd_pd(den[j], inv, c(1.0)), inv);
            let q = _mm512_mul_pd(em[j], inv);
            _mm512_fmadd_pd(_mm512_fnmadd_pd(den[j], q, em[j]), inv, q)
        }
    });
    // em/(2 + em) ≤ 0 is -|tanh x|: its magnitude bits with x's sign bit, one select.
    let sign = _mm512_castsi512_pd(_mm512_set1_epi64(i64::MIN));
    for j in 0..N {
        let t = _mm512_castsi512_pd(_mm512_ternarylogic_epi64::<0xCA>(
            _mm512_castpd_si512(sign),
            _mm512_castpd_si512(xv[j]),
            _mm512_castpd_si512(q[j]),
        ));
        #[allow(unsafe_code)]
        // SAFETY: `o` holds at least 8N values (checked above); lanes 8j..8j+8, j < N.
        unsafe {
            _mm512_storeu_pd(o.as_mut_ptr().add(8 * j), t)
        };
    }
}

/// `out = tanh(xs)` in AVX2 + FMA intrinsics: [`tanh`]'s formula with its polynomial in
/// Estrin's form for `r^3..r^12` and Horner's for the last three terms (the dependent chain
/// drops from 13 FMAs to 7, which is what bounds 4-lane throughput: 2.0 ns per element
/// against 2.5 for the compiler's vectorisation of [`tanh`] on a Zen core), the scaling by
/// `2^k` as an integer shift of `k`'s rounding bits, and the sign by a bit-or. The division
/// stays: `rcp_ps` through a conversion to `f32` and three Newton steps measured slower.
/// Errors as [`tanh`]'s. A tail runs on a padded copy, as in [`tanh_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn tanh_avx2(out: &mut [f64], xs: &[f64]) {
    // The closure inherits this function's target features.
    with_padded_tail::<_, 4>(out, xs, |o, x| tanh_avx2_whole(o, x));
}

/// [`tanh_avx2`] over whole vectors (a tail shorter than one is left alone): two at a
/// time, then one, as in [`tanh_avx512_whole`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn tanh_avx2_whole(out: &mut [f64], xs: &[f64]) {
    let n4 = out.len().min(xs.len()) / 4 * 4;
    let n8 = n4 / 8 * 8;
    let cf = halved_argument(EXPM1_F64, -2.0);
    for (o, x) in out[..n8].chunks_exact_mut(8).zip(xs[..n8].chunks_exact(8)) {
        tanh_avx2_vectors::<2>(o, x, &cf);
    }
    for (o, x) in out[n8..n4].chunks_exact_mut(4).zip(xs[n8..n4].chunks_exact(4)) {
        tanh_avx2_vectors::<1>(o, x, &cf);
    }
}

/// `tanh` of `N` vectors of 4 (`o` and `x` hold at least `4N`; nothing is written where
/// not), interleaved as in [`tanh_avx512_vectors`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn tanh_avx2_vectors<const N: usize>(o: &mut [f64], x: &[f64], cf: &[f64; 11]) {
    use std::arch::x86_64::*;
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    if o.len() < 4 * N || x.len() < 4 * N {
        return;
    }
    let c = |v: f64| _mm256_set1_pd(v);
    let a = |i: usize| c(cf[i]);
    let sign = c(-0.0);
    let each = |f: &dyn Fn(usize) -> __m256d| -> [__m256d; N] { std::array::from_fn(f) };
    let xv = each(&|j| {
        #[allow(unsafe_code)]
        // SAFETY: `x` holds at least 4N values (checked above); lanes 4j..4j+4, j < N.
        unsafe {
            _mm256_loadu_pd(x.as_ptr().add(4 * j))
        }
    });
    // `u = -y/2` for [`tanh`]'s `y = -2|x|` clamped at -40, as in [`tanh_avx512`] (the
    // Estrin scheme's partial sums scale by powers of two as Horner's do). min(20, u)
    // returns its second operand when either is NaN: NaN propagates.
    let u = each(&|j| _mm256_min_pd(c(20.0), _mm256_andnot_pd(sign, xv[j])));
    let k =
        each(&|j| _mm256_sub_pd(_mm256_fmadd_pd(u[j], c(-2.0 * LOG2E), c(SHIFTER)), c(SHIFTER)));
    // The reduced argument halved and negated (named `r` here as in the polynomial).
    let r = each(&|j| _mm256_fmadd_pd(k[j], c(LN2_HI / 2.0), u[j]));
    let r = each(&|j| _mm256_fmadd_pd(k[j], c(LN2_LO / 2.0), r[j]));
    let r2 = each(&|j| _mm256_mul_pd(r[j], r[j]));
    let r4 = each(&|j| _mm256_mul_pd(r2[j], r2[j]));
    let q0 = each(&|j| _mm256_fmadd_pd(a(4), r[j], a(3)));
    let q1 = each(&|j| _mm256_fmadd_pd(a(6), r[j], a(5)));
    let q2 = each(&|j| _mm256_fmadd_pd(a(8), r[j], a(7)));
    let q3 = each(&|j| _mm256_fmadd_pd(a(10), r[j], a(9)));
    let s0 = each(&|j| _mm256_fmadd_pd(q1[j], r2[j], q0[j]));
    let s1 = each(&|j| _mm256_fmadd_pd(q3[j], r2[j], q2[j]));
    let h = each(&|j| _mm256_fmadd_pd(s1[j], r4[j], s0[j]));
    let p = each(&|j| _mm256_fmadd_pd(h[j], r[j], a(2)));
    let p = each(&|j| _mm256_fmadd_pd(_mm256_fmadd_pd(p[j], r[j], a(1)), r[j], a(0)));
    // 2^k: the low bits of k + 1023 + SHIFTER hold the biased exponent (k ∈ [-58, 0]);
    // shifting them into place drops SHIFTER's own bits.
    let s = each(&|j| {
        let biased = _mm256_castpd_si256(_mm256_add_pd(k[j], c(SHIFTER + 1023.0)));
        _mm256_castsi256_pd(_mm256_slli_epi64::<52>(biased))
    });
    let em =
        each(&|j| _mm256_fmadd_pd(s[j], _mm256_mul_pd(p[j], r[j]), _mm256_sub_pd(s[j], c(1.0))));
    let q = each(&|j| {
        _mm256_div_pd(_mm256_sub_pd(_mm256_setzero_pd(), em[j]), _mm256_add_pd(c(2.0), em[j]))
    });
    for j in 0..N {
        let t = _mm256_or_pd(q[j], _mm256_and_pd(xv[j], sign));
        #[allow(unsafe_code)]
        // SAFETY: `o` holds at least 4N values (checked above); lanes 4j..4j+4, j < N.
        unsafe {
            _mm256_storeu_pd(o.as_mut_ptr().add(4 * j), t)
        };
    }
}

/// The logistic function `1 / (1 + e^-x)`, evaluated without overflow.
#[inline(always)]
pub(crate) fn sigmoid<const FMA: bool>(x: f64) -> f64 {
    let e = exp::<FMA>(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 {
        s
    } else {
        e * s
    }
}

/// `f32` constants of the same reductions: `ln 2` split so that `k · LN2_HI_F32` is exact
/// for `|k| < 2^15` (Cephes `expf`'s split), and `1.5·2^23` for rounding by addition.
const LN2_HI_F32: f32 = 0.693_359_375;
const LN2_LO_F32: f32 = -2.121_944_4e-4;
const SHIFTER_F32: f32 = 12_582_912.0;

/// `a·b + c` in `f32`, fused where the caller is compiled for FMA.
#[inline(always)]
pub(crate) fn madd_f32<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `e^x` in `f32` by [`exp`]'s method with a degree-8 Taylor polynomial (truncation
/// under 6e-10 for `|r| ≤ ln2/2`, far below `f32`'s 6e-8 epsilon); relative error within a
/// few ulp on `[-86.9, 88.72]`, `+∞` above, `0` below (results under 1.8e-38 flush to
/// zero), NaN for NaN.
#[inline(always)]
pub(crate) fn exp_f32<const FMA: bool>(x: f32) -> f32 {
    let xc = x.clamp(-86.9, 88.72);
    let k = madd_f32::<FMA>(xc, std::f32::consts::LOG2_E, SHIFTER_F32) - SHIFTER_F32;
    let r = madd_f32::<FMA>(k, -LN2_LO_F32, madd_f32::<FMA>(k, -LN2_HI_F32, xc));
    let mut p = 1.0 / 40_320.0;
    for c in [1.0 / 5_040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = madd_f32::<FMA>(p, r, c);
    }
    // 2p · 2^(k-1): k ∈ [-125, 128], so k - 1 + 127 is a normal biased exponent.
    let biased = (k + (SHIFTER_F32 + 126.0)).to_bits() & 0xFF;
    let y = (p + p) * f32::from_bits(biased << 23);
    if x > 88.72 {
        f32::INFINITY
    } else if x < -86.9 {
        0.0
    } else if x.is_nan() {
        x
    } else {
        y
    }
}

/// `tanh x` in `f32` by [`tanh`]'s formula, `-expm1(-2|x|) / (2 + expm1(-2|x|))` with the
/// sign of `x`, `expm1` from [`EXPM1_F32`]; `-2|x|` is clamped at -20, beyond which
/// `tanh` rounds to ±1 in `f32`. Relative error within a few ulp; NaN propagates.
#[inline(always)]
pub(crate) fn tanh_f32<const FMA: bool>(x: f32) -> f32 {
    let y = -2.0 * x.abs();
    let y = if y < -20.0 { -20.0 } else { y };
    let k = madd_f32::<FMA>(y, std::f32::consts::LOG2_E, SHIFTER_F32) - SHIFTER_F32;
    let r = madd_f32::<FMA>(k, -LN2_LO_F32, madd_f32::<FMA>(k, -LN2_HI_F32, y));
    // expm1(r) = r Σ EXPM1_F32[i] r^i (0.212 ε for |r| ≤ 0.347).
    let mut p = EXPM1_F32[5];
    for &c in EXPM1_F32[..5].iter().rev() {
        p = madd_f32::<FMA>(p, r, c);
    }
    // 2^k from the exponent bits of k + 127 (k ∈ [-29, 0]).
    let s = f32::from_bits(((k + (SHIFTER_F32 + 127.0)).to_bits() & 0xFF) << 23);
    let em = madd_f32::<FMA>(s, p * r, s - 1.0);
    (-em / (2.0 + em)).copysign(x)
}

/// `out = tanh(xs)` in `f32` AVX2 + FMA intrinsics, 8 lanes: [`tanh_f32`]'s formula with
/// [`tanh_avx2`]'s Estrin/Horner polynomial, shift and sign (0.78 ns per element against
/// 0.87 for the compiler's vectorisation of [`tanh_f32`] on a Zen core). A tail runs
/// on a padded copy, as in [`tanh_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn tanh_avx2_f32(out: &mut [f32], xs: &[f32]) {
    // The closure inherits this function's target features.
    with_padded_tail::<_, 8>(out, xs, |o, x| tanh_avx2_f32_whole(o, x));
}

/// [`tanh_avx2_f32`] over whole vectors (a tail shorter than one is left alone): two at
/// a time, then one, as in [`tanh_avx512_whole`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn tanh_avx2_f32_whole(out: &mut [f32], xs: &[f32]) {
    let n8 = out.len().min(xs.len()) / 8 * 8;
    let n16 = n8 / 16 * 16;
    let cf = halved_argument(EXPM1_F32, -2.0);
    for (o, x) in out[..n16].chunks_exact_mut(16).zip(xs[..n16].chunks_exact(16)) {
        tanh_avx2_f32_vectors::<2>(o, x, &cf);
    }
    for (o, x) in out[n16..n8].chunks_exact_mut(8).zip(xs[n16..n8].chunks_exact(8)) {
        tanh_avx2_f32_vectors::<1>(o, x, &cf);
    }
}

/// `tanh` of `N` vectors of 8 `f32` (`o` and `x` hold at least `8N`; nothing is written
/// where not), interleaved as in [`tanh_avx512_vectors`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn tanh_avx2_f32_vectors<const N: usize>(o: &mut [f32], x: &[f32], cf: &[f32; 6]) {
    use std::arch::x86_64::*;
    if o.len() < 8 * N || x.len() < 8 * N {
        return;
    }
    let c = |v: f32| _mm256_set1_ps(v);
    let a = |i: usize| c(cf[i]);
    let sign = c(-0.0);
    let each = |f: &dyn Fn(usize) -> __m256| -> [__m256; N] { std::array::from_fn(f) };
    let xv = each(&|j| {
        #[allow(unsafe_code)]
        // SAFETY: `x` holds at least 8N values (checked above); lanes 8j..8j+8, j < N.
        unsafe {
            _mm256_loadu_ps(x.as_ptr().add(8 * j))
        }
    });
    // `u = -y/2` for `y = -2|x|` clamped at -20, as in [`tanh_avx2`].
    let u = each(&|j| _mm256_min_ps(c(10.0), _mm256_andnot_ps(sign, xv[j])));
    let k = each(&|j| {
        _mm256_sub_ps(
            _mm256_fmadd_ps(u[j], c(-2.0 * std::f32::consts::LOG2_E), c(SHIFTER_F32)),
            c(SHIFTER_F32),
        )
    });
    // The reduced argument halved and negated.
    let r = each(&|j| _mm256_fmadd_ps(k[j], c(LN2_HI_F32 / 2.0), u[j]));
    let r = each(&|j| _mm256_fmadd_ps(k[j], c(LN2_LO_F32 / 2.0), r[j]));
    let r2 = each(&|j| _mm256_mul_ps(r[j], r[j]));
    // expm1 = r Σ cf[i] r^i: Estrin for r^2..r^5, then Horner.
    let q0 = each(&|j| _mm256_fmadd_ps(a(3), r[j], a(2)));
    let q1 = each(&|j| _mm256_fmadd_ps(a(5), r[j], a(4)));
    let h = each(&|j| _mm256_fmadd_ps(q1[j], r2[j], q0[j]));
    let p = each(&|j| _mm256_fmadd_ps(_mm256_fmadd_ps(h[j], r[j], a(1)), r[j], a(0)));
    // 2^k from the exponent bits of k + 127 (k ∈ [-29, 0]), shifted into place.
    let s = each(&|j| {
        let biased = _mm256_castps_si256(_mm256_add_ps(k[j], c(SHIFTER_F32 + 127.0)));
        _mm256_castsi256_ps(_mm256_slli_epi32::<23>(biased))
    });
    let em =
        each(&|j| _mm256_fmadd_ps(s[j], _mm256_mul_ps(p[j], r[j]), _mm256_sub_ps(s[j], c(1.0))));
    let q = each(&|j| {
        _mm256_div_ps(_mm256_sub_ps(_mm256_setzero_ps(), em[j]), _mm256_add_ps(c(2.0), em[j]))
    });
    for j in 0..N {
        let t = _mm256_or_ps(q[j], _mm256_and_ps(xv[j], sign));
        #[allow(unsafe_code)]
        // SAFETY: `o` holds at least 8N values (checked above); lanes 8j..8j+8, j < N.
        unsafe {
            _mm256_storeu_ps(o.as_mut_ptr().add(8 * j), t)
        };
    }
}

/// `out = tanh(xs)` in `f32` AVX-512, 16 lanes: [`tanh_f32`]'s formula and polynomial, the
/// scaling by `scalef`, and the division by the divide unit or (see [`divides_in_hardware`])
/// by `rcp14` and one correction of the quotient itself (worst error 1.33 ε over the
/// test's grid; a Newton step on the reciprocal first gives 1.30 ε for two more
/// operations). Errors as [`tanh_f32`]'s. A tail runs on a padded copy, as in
/// [`tanh_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
pub(crate) fn tanh_avx512_f32(out: &mut [f32], xs: &[f32]) {
    // The closures inherit this function's target features.
    if divides_in_hardware() {
        with_padded_tail::<_, 16>(out, xs, |o, x| tanh_avx512_f32_whole::<true>(o, x));
    } else {
        with_padded_tail::<_, 16>(out, xs, |o, x| tanh_avx512_f32_whole::<false>(o, x));
    }
}

/// [`tanh_avx512_f32`] over whole vectors (a tail shorter than one is left alone): two
/// at a time, then one, as in [`tanh_avx512_whole`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
#[inline]
fn tanh_avx512_f32_whole<const DIV: bool>(out: &mut [f32], xs: &[f32]) {
    let n16 = out.len().min(xs.len()) / 16 * 16;
    let n32 = n16 / 32 * 32;
    let cf = halved_argument(EXPM1_F32, -2.0);
    for (o, x) in out[..n32].chunks_exact_mut(32).zip(xs[..n32].chunks_exact(32)) {
        tanh_avx512_f32_vectors::<DIV, 2>(o, x, &cf);
    }
    for (o, x) in out[n32..n16].chunks_exact_mut(16).zip(xs[n32..n16].chunks_exact(16)) {
        tanh_avx512_f32_vectors::<DIV, 1>(o, x, &cf);
    }
}

/// [`tanh_avx512_vectors`] in `f32`: `N` vectors of 16 (`o` and `x` hold at least `16N`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
#[inline]
fn tanh_avx512_f32_vectors<const DIV: bool, const N: usize>(
    o: &mut [f32],
    x: &[f32],
    cf: &[f32; 6],
) {
    use std::arch::x86_64::*;
    if o.len() < 16 * N || x.len() < 16 * N {
        return;
    }
    let c = |v: f32| _mm512_set1_ps(v);
    let each = |f: &dyn Fn(usize) -> __m512| -> [__m512; N] { std::array::from_fn(f) };
    let xv = each(&|j| {
        #[allow(unsafe_code)]
        // SAFETY: `x` holds at least 16N values (checked above); lanes 16j..16j+16, j < N.
        unsafe {
            _mm512_loadu_ps(x.as_ptr().add(16 * j))
        }
    });
    // `u = -y/2` for [`tanh_f32`]'s `y = -2|x|` clamped at -20, as in [`tanh_avx512`].
    // min(10, u) returns its second operand when either is NaN: NaN propagates.
    let u = each(&|j| _mm512_min_ps(c(10.0), _mm512_abs_ps(xv[j])));
    let k = each(&|j| {
        _mm512_sub_ps(
            _mm512_fmadd_ps(u[j], c(-2.0 * std::f32::consts::LOG2_E), c(SHIFTER_F32)),
            c(SHIFTER_F32),
        )
    });
    // r = -2h.
    let h = each(&|j| _mm512_fmadd_ps(k[j], c(LN2_HI_F32 / 2.0), u[j]));
    let h = each(&|j| _mm512_fmadd_ps(k[j], c(LN2_LO_F32 / 2.0), h[j]));
    // expm1(r) = r Σ EXPM1_F32[i] r^i = h Σ cf[i] h^i, Horner from the top.
    let mut p = [c(cf[5]); N];
    for &cj in cf[..5].iter().rev() {
        p = each(&|j| _mm512_fmadd_ps(p[j], h[j], c(cj)));
    }
    let s = each(&|j| _mm512_scalef_ps(c(1.0), k[j]));
    let ph = each(&|j| _mm512_mul_ps(p[j], h[j]));
    let em = each(&|j| _mm512_fmadd_ps(s[j], ph[j], _mm512_sub_ps(s[j], c(1.0))));
    let den = each(&|j| _mm512_add_ps(c(2.0), em[j]));
    let q = each(&|j| {
        if DIV {
            _mm512_div_ps(em[j], den[j])
        } else {
            // 1/den to 14 bits; one correction of the quotient squares its error to 2^-28.
            let inv = _mm512_rcp14_ps(den[j]);
            let q = _mm512_mul_ps(em[j], inv);
            _mm512_fmadd_ps(_mm512_fnmadd_ps(den[j], q, em[j]), inv, q)
        }
    });
    // em/(2 + em) ≤ 0 is -|tanh x|: its magnitude bits with x's sign bit, one select.
    let sign = _mm512_castsi512_ps(_mm512_set1_epi32(i32::MIN));
    for j in 0..N {
        let t = _mm512_castsi512_ps(_mm512_ternarylogic_epi32::<0xCA>(
            _mm512_castps_si512(sign),
            _mm512_castps_si512(xv[j]),
            _mm512_castps_si512(q[j]),
        ));
        #[allow(unsafe_code)]
        // SAFETY: `o` holds at least 16N values (checked above); lanes 16j..16j+16, j < N.
        unsafe {
            _mm512_storeu_ps(o.as_mut_ptr().add(16 * j), t)
        };
    }
}

/// The logistic function in `f32`, as [`sigmoid`].
#[inline(always)]
pub(crate) fn sigmoid_f32<const FMA: bool>(x: f32) -> f32 {
    let e = exp_f32::<FMA>(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 {
        s
    } else {
        e * s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_rel(f: fn(f64) -> f64, reference: fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
        (0..=200_000)
            .map(|i| lo + (hi - lo) * i as f64 / 200_000.0)
            .map(|x| {
                let (a, b) = (f(x), reference(x));
                if b == 0.0 {
                    a.abs()
                } else {
                    ((a - b) / b).abs()
                }
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn agree_with_libm_to_a_few_ulp() {
        fn both(check: impl Fn(fn(f64) -> f64, fn(f64) -> f64, fn(f64) -> f64)) {
            check(exp::<false>, tanh::<false>, sigmoid::<false>);
            check(exp::<true>, tanh::<true>, sigmoid::<true>);
        }
        both(|exp, tanh, sigmoid| {
            assert!(max_rel(exp, f64::exp, -707.0, 709.7) < 1e-15);
            assert!(max_rel(exp, f64::exp, -1.0, 1.0) < 5e-16);
            assert!(max_rel(tanh, f64::tanh, -20.0, 20.0) < 1e-15);
            assert!(max_rel(tanh, f64::tanh, -1e-3, 1e-3) < 5e-16);
            assert!(max_rel(tanh, f64::tanh, -1.0, 1.0) < 6e-16);
            assert!(max_rel(sigmoid, |x| 1.0 / (1.0 + (-x).exp()), -30.0, 30.0) < 1e-15);
        });
    }

    /// Arguments that cover every branch-free path: a dense grid, signed zeros, tiny and
    /// saturating values, infinities, and small values around 0 (NaN separately).
    fn tanh_arguments() -> Vec<f64> {
        (0..=400_003)
            .map(|i| -20.0 + 40.0 * i as f64 / 400_003.0)
            .chain([0.0, -0.0, 1e-300, -1e-300, 50.0, -50.0, f64::INFINITY, f64::NEG_INFINITY])
            .chain((0..2000).map(|i| (i as f64 - 1000.0) * 1e-6))
            .collect()
    }

    /// A vector `tanh` kernel against libm: within `tol` relative error with the sign of
    /// the argument (zeros included), NaN for NaN, tails of every length, and each value
    /// bit for bit the same wherever it sits (in a vector or in the tail).
    fn check_vector_tanh(kernel: impl Fn(&mut [f64], &[f64]), tol: f64) {
        let xs = tanh_arguments();
        let mut first = vec![0.0; xs.len()];
        kernel(&mut first, &xs);
        for tail in 0..9 {
            let xs = &xs[tail..];
            let mut out = vec![0.0; xs.len()];
            kernel(&mut out, xs);
            let same = out.iter().zip(&first[tail..]).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "values moved by {tail} changed");
            // Every 37th value alone, so all of the tail path's arguments.
            for (&x, &t) in xs.iter().zip(&out).step_by(37) {
                let mut one = [0.0];
                kernel(&mut one, &[x]);
                assert_eq!(one[0].to_bits(), t.to_bits(), "tanh({x}) alone");
            }
            for (&x, &t) in xs.iter().zip(&out) {
                let want = x.tanh();
                let err = if want == 0.0 { t.abs() } else { ((t - want) / want).abs() };
                assert!(err < tol, "tanh({x}) = {t}, libm {want}");
                assert_eq!(t.is_sign_negative(), want.is_sign_negative(), "sign of tanh({x})");
            }
        }
        let mut nan = [0.0; 9];
        kernel(&mut nan, &[f64::NAN; 9]);
        assert!(nan.iter().all(|v| v.is_nan()));
    }

    /// As [`check_vector_tanh`] for an `f32` kernel of up to 16 lanes, against the `f64`
    /// reference at the `f32` argument: a few ulp.
    fn check_vector_tanh_f32(kernel: impl Fn(&mut [f32], &[f32])) {
        let xs: Vec<f32> = (0..=400_003)
            .map(|i| -12.0 + 24.0 * i as f32 / 400_003.0)
            .chain([0.0, -0.0, 1e-30, -1e-30, 30.0, -30.0, f32::INFINITY, f32::NEG_INFINITY])
            .chain((0..2000).map(|i| (i as f32 - 1000.0) * 1e-6))
            .collect();
        let mut first = vec![0.0f32; xs.len()];
        kernel(&mut first, &xs);
        for tail in 0..17 {
            let xs = &xs[tail..];
            let mut out = vec![0.0f32; xs.len()];
            kernel(&mut out, xs);
            let same = out.iter().zip(&first[tail..]).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "f32 values moved by {tail} changed");
            for (&x, &t) in xs.iter().zip(&out).step_by(37) {
                let mut one = [0.0f32];
                kernel(&mut one, &[x]);
                assert_eq!(one[0].to_bits(), t.to_bits(), "f32 tanh({x}) alone");
            }
            for (&x, &t) in xs.iter().zip(&out) {
                let want = f64::from(x).tanh();
                let got = f64::from(t);
                let err = if want == 0.0 { got.abs() } else { ((got - want) / want).abs() };
                assert!(err < 4.0 * f64::from(f32::EPSILON), "tanh({x}) = {t}, libm {want}");
                assert_eq!(t.is_sign_negative(), x.is_sign_negative(), "sign of tanh({x})");
            }
        }
        let mut nan = [0.0f32; 33];
        kernel(&mut nan, &[f32::NAN; 33]);
        assert!(nan.iter().all(|v| v.is_nan()));
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_avx512_tanh_agrees_with_libm_where_the_cpu_has_it() {
        if !crate::gemm::has_avx512() {
            return;
        }
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX-512 (checked above).
        check_vector_tanh(|out, xs| unsafe { tanh_avx512(out, xs) }, 1e-15);
        #[allow(unsafe_code)]
        // SAFETY: as above.
        check_vector_tanh_f32(|out, xs| unsafe { tanh_avx512_f32(out, xs) });
        // Both divisions, whichever this CPU's vendor picks.
        #[allow(unsafe_code)]
        // SAFETY: as above, each kernel called directly.
        unsafe {
            check_vector_tanh(
                |o, x| with_padded_tail::<_, 8>(o, x, |o, x| tanh_avx512_whole::<true>(o, x)),
                1e-15,
            );
            check_vector_tanh(
                |o, x| with_padded_tail::<_, 8>(o, x, |o, x| tanh_avx512_whole::<false>(o, x)),
                1e-15,
            );
            check_vector_tanh_f32(|o, x| {
                with_padded_tail::<_, 16>(o, x, |o, x| tanh_avx512_f32_whole::<true>(o, x))
            });
            check_vector_tanh_f32(|o, x| {
                with_padded_tail::<_, 16>(o, x, |o, x| tanh_avx512_f32_whole::<false>(o, x))
            });
        }
        // With the divide unit, bit for bit the scalar formula, though the kernels fold
        // its `-2|x|` into their constants (`halved_argument`).
        let xs = tanh_arguments();
        let mut out = vec![0.0; xs.len()];
        #[allow(unsafe_code)]
        // SAFETY: as above.
        unsafe {
            with_padded_tail::<_, 8>(&mut out, &xs, |o, x| tanh_avx512_whole::<true>(o, x))
        };
        for (&x, &t) in xs.iter().zip(&out) {
            assert_eq!(t.to_bits(), tanh::<true>(x).to_bits(), "tanh({x})");
        }
        let xs: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
        let mut out = vec![0.0f32; xs.len()];
        #[allow(unsafe_code)]
        // SAFETY: as above.
        unsafe {
            with_padded_tail::<_, 16>(&mut out, &xs, |o, x| tanh_avx512_f32_whole::<true>(o, x))
        };
        for (&x, &t) in xs.iter().zip(&out) {
            assert_eq!(t.to_bits(), tanh_f32::<true>(x).to_bits(), "f32 tanh({x})");
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_avx2_tanh_agrees_with_libm_where_the_cpu_has_it() {
        if !crate::gemm::has_avx2_fma() {
            return;
        }
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2 and FMA (checked above).
        check_vector_tanh(|out, xs| unsafe { tanh_avx2(out, xs) }, 1e-15);
        #[allow(unsafe_code)]
        // SAFETY: as above.
        check_vector_tanh_f32(|out, xs| unsafe { tanh_avx2_f32(out, xs) });
    }

    #[test]
    fn edge_values() {
        let (exp, tanh, sigmoid) = (exp::<false>, tanh::<false>, sigmoid::<false>);
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(1000.0), f64::INFINITY);
        assert_eq!(exp(-1000.0), 0.0);
        assert!(exp(f64::NAN).is_nan());
        assert!((exp(-707.0) / (-707.0f64).exp() - 1.0).abs() < 1e-15);
        assert_eq!(exp(-740.0), 0.0);
        assert!((exp(709.5) / 709.5f64.exp() - 1.0).abs() < 1e-15);
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-50.0), -1.0);
        assert_eq!(tanh(f64::INFINITY), 1.0);
        assert_eq!(tanh(f64::NEG_INFINITY), -1.0);
        assert!(tanh(f64::NAN).is_nan());
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(tanh(1e-300), 1e-300);
        assert_eq!(sigmoid(-800.0), 0.0);
        assert_eq!(sigmoid(800.0), 1.0);
    }

    /// Largest relative error of an `f32` function against the `f64` reference, over a
    /// grid of `f32` arguments.
    fn max_rel_f32(f: fn(f32) -> f32, reference: fn(f64) -> f64, lo: f32, hi: f32) -> f64 {
        (0..=200_000)
            .map(|i| lo + (hi - lo) * i as f32 / 200_000.0)
            .map(|x| {
                let (a, b) = (f64::from(f(x)), reference(f64::from(x)));
                if b == 0.0 {
                    a.abs()
                } else {
                    ((a - b) / b).abs()
                }
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn the_f32_functions_agree_with_f64_libm_to_a_few_ulp() {
        let eps = f64::from(f32::EPSILON);
        for fma in [false, true] {
            let (exp, tanh, sigmoid): (fn(f32) -> f32, fn(f32) -> f32, fn(f32) -> f32) = if fma {
                (exp_f32::<true>, tanh_f32::<true>, sigmoid_f32::<true>)
            } else {
                (exp_f32::<false>, tanh_f32::<false>, sigmoid_f32::<false>)
            };
            assert!(max_rel_f32(exp, f64::exp, -86.0, 88.0) < 4.0 * eps);
            assert!(max_rel_f32(tanh, f64::tanh, -12.0, 12.0) < 4.0 * eps);
            assert!(max_rel_f32(tanh, f64::tanh, -1e-3, 1e-3) < 2.0 * eps);
            assert!(max_rel_f32(sigmoid, |x| 1.0 / (1.0 + (-x).exp()), -30.0, 30.0) < 4.0 * eps);
            assert_eq!(exp(0.0), 1.0);
            assert_eq!(exp(100.0), f32::INFINITY);
            assert_eq!(exp(-100.0), 0.0);
            assert!(exp(f32::NAN).is_nan());
            assert_eq!(tanh(0.0), 0.0);
            assert_eq!(tanh(-0.0).to_bits(), (-0.0f32).to_bits());
            assert_eq!(tanh(30.0), 1.0);
            assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
            assert!(tanh(f32::NAN).is_nan());
            assert_eq!(tanh(1e-30), 1e-30);
            assert_eq!(sigmoid(-200.0), 0.0);
            assert_eq!(sigmoid(200.0), 1.0);
        }
    }
}
