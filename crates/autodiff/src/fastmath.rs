//! Branch-free `exp`, `tanh` and `sigmoid` that compilers vectorise, accurate to a few ulp.
//!
//! libm's scalar calls cost 10-40 ns each and dominate an MLP vector field (a 2→64→64→2
//! network at batch 512 evaluates 65 536 `tanh` per pass against 4.5 MFLOP of products).
//! `exp` uses Cody-Waite range reduction `x = k ln 2 + r`, `|r| ≤ ln2/2`, a degree-13
//! Taylor polynomial for `e^r` and exponent-bit scaling; `tanh` is `expm1`-based, one
//! polynomial and one division for every `x` (no branch to blend).

const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
const LOG2E: f64 = std::f64::consts::LOG2_E;

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
    // expm1(r) = r(1 + r/2 + r²/6 + ... + r^12/13!) (truncation < 2e-17 for |r| ≤ 0.347).
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
    ] {
        p = madd::<FMA>(p, r, c);
    }
    // 2^k from the exponent bits of k + 1023 (k ∈ [-58, 0]), as in `exp`.
    let s = f64::from_bits(((k + (SHIFTER + 1023.0)).to_bits() & 0x7FF) << 52);
    let em = madd::<FMA>(s, p * r, s - 1.0);
    (-em / (2.0 + em)).copysign(x)
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
}
