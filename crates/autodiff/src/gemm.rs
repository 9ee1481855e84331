//! An allocation-free matrix product for the executor.
//!
//! `C = op(A) · op(B)` with `C` (`m×n`) column-major and both operands read through
//! strides (transposes cost nothing). The loops follow Goto and van de Geijn's layered
//! scheme: `k` is cut into passes of `kc`; in each pass an `MR`-row panel of `op(A)` is
//! packed contiguously (into a caller-provided buffer, 32 KiB of it, so it stays in L1) and
//! reused by every 4-column block of `C`, while the `kc × n` slab of `op(B)` stays in L2.
//! A register-blocked `MR×4` micro-kernel keeps its accumulators in registers across
//! `kc`. In AVX-512, where the columns of op(A) are contiguous, the kernel reads them in
//! place instead of a packed panel; where its rows are (a weight gradient's `Xᵀ`), the
//! AVX-512 and AVX2 bodies pack the panel by transposes in registers (`pack_rows_*`).
//! The code is compiled three times and picked at run time: `MR = 24` for AVX-512
//! (12 accumulator registers of 8 lanes; a `24×8` kernel with 24, written with intrinsics,
//! where rows of op(B) are contiguous), `MR = 8` for AVX2 + FMA (an `8×6` kernel in
//! intrinsics on a packed slab of op(B)) and for other CPUs (`8×4`). It is generic over
//! the element type ([`Real`]): in `f32` the panels hold twice the rows (`48×8`, `16×6`),
//! so a product takes half the instructions of its `f64` form.
//! Products with 1-3 columns, or 2-3 deep, skip packing and run on their own vector paths.
//! General libraries such as `matrixmultiply` allocate packing buffers on every call,
//! which a replayed vector field evaluated thousands of times per solve cannot afford.

use crate::real::Real;

/// Strided read access to `op(B)`: element `(p, j)` is `b[p * rs + j * cs]`.
#[derive(Debug, Clone, Copy)]
pub struct Strided<'a, T> {
    pub(crate) data: &'a [T],
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

/// Bytes of one packed row panel (`MR × kc`): 32 KiB, within L1 on current x86-64
/// cores (chosen by measurement among 16, 24, 32, 48 and 64 KiB on a Xeon with 48 KiB L1d).
const PANEL_BYTES: usize = 32768;

/// Entries of one packed row panel of `T`.
const fn panel<T>() -> usize {
    PANEL_BYTES / std::mem::size_of::<T>()
}

/// Depth of one pass over `k` for panels of `mr` rows.
const fn kc_for<T>(mr: usize) -> usize {
    panel::<T>() / mr
}

/// Length of the packing buffer [`gemm`] needs for an `m×n` product of depth `k`: one row
/// panel of op(A), then (for the AVX2 kernel) one `kc × n` slab of op(B), `kc` at most
/// the deepest pass of 8-row panels.
pub(crate) fn pack_len<T>(m: usize, n: usize, k: usize) -> usize {
    if m >= 8 && k > 0 {
        panel::<T>() + k.min(kc_for::<T>(8)) * n
    } else {
        0
    }
}

/// The instruction sets a body is compiled for, which pick its micro-kernels.
const PORTABLE: u8 = 0;
const AVX2: u8 = 1;
const AVX512: u8 = 2;

/// The `MR×NR` micro-kernel for rows `i..i+MR` (packed panel `panel`: `kc` groups of
/// `MR`), columns `j..j+NR`; `bq(p)` returns `op(B)[k0 + p, j..j+NR]`. The first pass over
/// `k` writes `C`, later ones add to it.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn block<T: Real, const FMA: bool, const MR: usize, const NR: usize>(
    m: usize,
    kc: usize,
    (panel, stride): (&[T], usize),
    i: usize,
    c: &mut [T],
    j: usize,
    first: bool,
    bq: impl Fn(usize) -> [T; NR],
) {
    let mut acc = [[T::zero(); MR]; NR];
    for p in 0..kc {
        let Some(av) = panel.get(p * stride..p * stride + MR) else {
            acc = [[T::nan(); MR]; NR];
            break;
        };
        let b = bq(p);
        for q in 0..NR {
            for r in 0..MR {
                acc[q][r] = T::madd::<FMA>(av[r], b[q], acc[q][r]);
            }
        }
    }
    for (q, accq) in acc.iter().enumerate() {
        let dst = &mut c[i + (j + q) * m..i + (j + q) * m + MR];
        if first {
            dst.copy_from_slice(accq);
        } else {
            for (d, &a) in dst.iter_mut().zip(accq) {
                *d = *d + a;
            }
        }
    }
}

/// A register-blocked micro-kernel in intrinsics: [`block`]'s job with `REGS` vector
/// registers of `LANES` lanes per column of C (`MR = REGS × LANES` rows) and `NR` columns,
/// so `REGS × NR` accumulators stay in registers across `kc` (the compiler does not keep a
/// generic block's accumulators in registers at these sizes). Per `p`: `REGS` loads of the
/// packed panel, `NR` broadcasts of op(B), `REGS × NR` FMAs.
macro_rules! micro_kernel {
    (
        $(#[$doc:meta])*
        $name:ident: $t:ty, $features:literal, $lanes:literal x $regs:literal x $nr:literal,
        $vec:ident, $zero:ident, $load:ident, $store:ident, $set1:ident, $fma:ident, $add:ident
    ) => {
        $(#[$doc])*
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn $name(
            m: usize,
            kc: usize,
            (panel, stride): (&[$t], usize),
            i: usize,
            c: &mut [$t],
            j: usize,
            first: bool,
            bq: impl Fn(usize) -> [$t; $nr],
        ) {
            use std::arch::x86_64::{$add, $fma, $load, $set1, $store, $vec, $zero};
            const MR: usize = $lanes * $regs;
            let mut acc: [[$vec; $regs]; $nr] = [[$zero(); $regs]; $nr];
            // (Checked arithmetic: a wrapped extent would pass the check.)
            let extent = match kc.checked_sub(1) {
                None => Some(0),
                Some(last) => last.checked_mul(stride).and_then(|x| x.checked_add(MR)),
            };
            let short = extent.is_none_or(|e| panel.len() < e);
            if short {
                acc = [[$set1(<$t>::NAN); $regs]; $nr];
            }
            for p in 0..if short { 0 } else { kc } {
                let a: [$vec; $regs] = std::array::from_fn(|h| {
                    #[allow(unsafe_code)]
                    // SAFETY: `panel` holds `(kc - 1)·stride + MR` values (the loop does
                    // not run where it is `short`), so the load of LANES at
                    // p·stride + h·LANES (p < kc, h < REGS) is in bounds.
                    unsafe {
                        $load(panel.as_ptr().add(p * stride + h * $lanes))
                    }
                });
                let b = bq(p);
                for (accq, &bv) in acc.iter_mut().zip(&b) {
                    let bb = $set1(bv);
                    for (x, &ah) in accq.iter_mut().zip(&a) {
                        *x = $fma(ah, bb, *x);
                    }
                }
            }
            for (q, accq) in acc.iter().enumerate() {
                let dst = &mut c[i + (j + q) * m..i + (j + q) * m + MR];
                for (d, &v) in dst.chunks_exact_mut($lanes).zip(accq) {
                    #[allow(unsafe_code)]
                    // SAFETY: `d` holds LANES values, the lanes read and written.
                    unsafe {
                        let v = if first { v } else { $add($load(d.as_ptr()), v) };
                        $store(d.as_mut_ptr(), v)
                    };
                }
            }
        }
    };
}

micro_kernel! {
    /// The AVX-512 `24×8` micro-kernel for `f64`: 24 accumulators of 8 lanes, three loads
    /// of the panel and eight broadcasts of op(B) per 24 FMAs (the `24×4` kernel needs seven
    /// memory operands per 12).
    block_24x8: f64, "avx512f,avx2,fma", 8 x 3 x 8,
    __m512d, _mm512_setzero_pd, _mm512_loadu_pd, _mm512_storeu_pd, _mm512_set1_pd,
    _mm512_fmadd_pd, _mm512_add_pd
}

micro_kernel! {
    /// The `f32` AVX-512 `48×8` micro-kernel: [`block_24x8`] with 16 lanes per register.
    block_48x8: f32, "avx512f,avx2,fma", 16 x 3 x 8,
    __m512, _mm512_setzero_ps, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps,
    _mm512_fmadd_ps, _mm512_add_ps
}

micro_kernel! {
    /// The AVX2 `8×6` micro-kernel for `f64` (BLIS's Haswell shape, transposed): 12
    /// accumulators of 4 lanes, two loads of the panel and six broadcasts of op(B) per 12
    /// FMAs, enough independent chains to cover the FMA latency at two FMAs per cycle, and
    /// 15 of the 16 registers. The generic [`block`] at `8×4` holds 8 accumulators, which
    /// leaves the FMA units waiting on latency; a `12×4` block needs all 16 registers and
    /// spills. Measured on a Zen core, 512×64×64 (the kernels alone): `8×4` 33, `12×4` 20,
    /// `8×6` 41 GFLOP/s (XLA's whole product: 38).
    block_8x6: f64, "avx2,fma", 4 x 2 x 6,
    __m256d, _mm256_setzero_pd, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_set1_pd,
    _mm256_fmadd_pd, _mm256_add_pd
}

micro_kernel! {
    /// The `f32` AVX2 `16×6` micro-kernel: [`block_8x6`] with 8 lanes per register.
    block_16x6_f32: f32, "avx2,fma", 8 x 2 x 6,
    __m256, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps,
    _mm256_fmadd_ps, _mm256_add_ps
}

/// [`Real::pack_rows`] for `f64`: [`pack_rows_f64`] where the CPU has AVX-512,
/// [`pack_rows_f64_avx2`] where it has AVX2, else `false`.
#[cfg(target_arch = "x86_64")]
pub(crate) fn transpose_rows_f64(
    panel: &mut [f64],
    mr: usize,
    a: &[f64],
    rows: (usize, usize, usize),
) -> bool {
    if has_avx512() {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX-512 F and AVX2 (checked just above).
        return unsafe { pack_rows_f64(panel, mr, a, rows) };
    }
    if has_avx2_fma() {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { pack_rows_f64_avx2(panel, mr, a, rows) };
    }
    false
}

/// [`Real::pack_rows`] for `f32`: [`pack_rows_f32`] where the CPU has AVX2, else `false`.
#[cfg(target_arch = "x86_64")]
pub(crate) fn transpose_rows_f32(
    panel: &mut [f32],
    mr: usize,
    a: &[f32],
    rows: (usize, usize, usize),
) -> bool {
    if has_avx2_fma() {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { pack_rows_f32(panel, mr, a, rows) };
    }
    false
}

/// The loops the transposing packers share: where [`pack_fits`] and `B` divides `mr`,
/// `block(panel, r0, p0)` for every `B × B` block of rows `r0..r0 + B` and values
/// `p0..p0 + B` (so `r0 + B ≤ mr` and `p0 + B ≤ kc`, the bounds each block's unchecked
/// loads and stores rely on), then each row's last `kc mod B` values one at a time;
/// `false`, with nothing written, where it does not fit.
#[inline(always)]
fn pack_by_blocks<T: Copy, const B: usize>(
    panel: &mut [T],
    mr: usize,
    a: &[T],
    (rs, base, kc): (usize, usize, usize),
    mut block: impl FnMut(&mut [T], usize, usize),
) -> bool {
    if !pack_fits(panel, mr, a, (rs, base, kc)) || !mr.is_multiple_of(B) {
        return false;
    }
    let kb = kc / B * B;
    for r0 in (0..mr).step_by(B) {
        for p0 in (0..kb).step_by(B) {
            block(panel, r0, p0);
        }
        for p in kb..kc {
            for q in 0..B {
                panel[p * mr + r0 + q] = a[base + (r0 + q) * rs + p];
            }
        }
    }
    true
}

/// Whether the transposing packers can pack `mr` rows of `kc` from `a` into `panel` (the
/// bounds every load and store of theirs stays within).
fn pack_fits<T>(panel: &[T], mr: usize, a: &[T], (rs, base, kc): (usize, usize, usize)) -> bool {
    // (Checked arithmetic: a wrapped bound would pass the check.)
    let rows_end = (mr.saturating_sub(1))
        .checked_mul(rs)
        .and_then(|x| x.checked_add(base))
        .and_then(|x| x.checked_add(kc));
    mr.is_multiple_of(8)
        && mr.checked_mul(kc).is_some_and(|n| panel.len() >= n)
        && (mr == 0 || kc == 0 || rows_end.is_some_and(|end| a.len() >= end))
}

/// [`Real::pack_rows`] for `f64` in AVX-512: a weight gradient's row panel of `op(A) = Xᵀ`,
/// each row of `op(A)` contiguous in memory, packed as `kc` groups of `mr`. Blocks of 8
/// rows × 8 values are loaded as 8 vectors and transposed in registers (three rounds of
/// 8 shuffles), so each group of 8 is one store. The element loop this replaces compiled
/// to scatters, about 18% of `(512×64)ᵀ·(512×64)` on a Zen 4 EPYC.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
pub(crate) fn pack_rows_f64(
    panel: &mut [f64],
    mr: usize,
    a: &[f64],
    (rs, base, kc): (usize, usize, usize),
) -> bool {
    use std::arch::x86_64::*;
    let lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
    let hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    pack_by_blocks::<_, 8>(panel, mr, a, (rs, base, kc), |panel, r0, p0| {
        let row: [__m512d; 8] = std::array::from_fn(|q| {
            #[allow(unsafe_code)]
            // SAFETY: `base + (r0 + q)·rs + p0 + 8 ≤ base + (mr - 1)·rs + kc ≤ a.len()`
            // (`pack_by_blocks`' bounds), as `r0 + q < mr` and `p0 + 8 ≤ kc`.
            unsafe {
                _mm512_loadu_pd(a.as_ptr().add(base + (r0 + q) * rs + p0))
            }
        });
        // Pairs of rows interleaved: t[2h] holds rows 2h, 2h+1 at even columns, t[2h+1]
        // at odd ones.
        let t: [__m512d; 8] = std::array::from_fn(|x| {
            let (r, s) = (row[x / 2 * 2], row[x / 2 * 2 + 1]);
            if x % 2 == 0 {
                _mm512_unpacklo_pd(r, s)
            } else {
                _mm512_unpackhi_pd(r, s)
            }
        });
        // Rows 0-3 (u[0..4]) and 4-7 (u[4..8]): columns (0, 4), (2, 6), (1, 5), (3, 7).
        let u: [__m512d; 8] = std::array::from_fn(|x| {
            let (g, v) = (x / 4 * 4, x % 4);
            let (first, second) = (t[g + v / 2], t[g + 2 + v / 2]);
            if v % 2 == 0 {
                _mm512_permutex2var_pd(first, lo, second)
            } else {
                _mm512_permutex2var_pd(first, hi, second)
            }
        });
        // Column c: its rows 0-3 and 4-7 from the low (c < 4) or high 256 bits.
        const WHICH: [usize; 8] = [0, 2, 1, 3, 0, 2, 1, 3];
        for (c, &w) in WHICH.iter().enumerate() {
            let col = if c < 4 {
                _mm512_shuffle_f64x2::<0x44>(u[w], u[w + 4])
            } else {
                _mm512_shuffle_f64x2::<0xEE>(u[w], u[w + 4])
            };
            #[allow(unsafe_code)]
            // SAFETY: `(p0 + c)·mr + r0 + 8 ≤ kc·mr ≤ panel.len()` (`pack_by_blocks`'
            // bounds), as `p0 + c < kc` and `r0 + 8 ≤ mr`.
            unsafe {
                _mm512_storeu_pd(panel.as_mut_ptr().add((p0 + c) * mr + r0), col)
            };
        }
    })
}

/// [`pack_rows_f64`] in AVX2: 4×4 blocks (unpack, then swap 128-bit halves), stored four
/// values of a group at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(crate) fn pack_rows_f64_avx2(
    panel: &mut [f64],
    mr: usize,
    a: &[f64],
    (rs, base, kc): (usize, usize, usize),
) -> bool {
    use std::arch::x86_64::*;
    pack_by_blocks::<_, 4>(panel, mr, a, (rs, base, kc), |panel, r0, p0| {
        let row: [__m256d; 4] = std::array::from_fn(|q| {
            #[allow(unsafe_code)]
            // SAFETY: as in `pack_rows_f64` (`r0 + q < mr`, `p0 + 4 ≤ kc`).
            unsafe {
                _mm256_loadu_pd(a.as_ptr().add(base + (r0 + q) * rs + p0))
            }
        });
        // t0 = rows 0, 1 at columns 0 | 2; t1 at 1 | 3; t2, t3 the same for rows 2, 3.
        let t0 = _mm256_unpacklo_pd(row[0], row[1]);
        let t1 = _mm256_unpackhi_pd(row[0], row[1]);
        let t2 = _mm256_unpacklo_pd(row[2], row[3]);
        let t3 = _mm256_unpackhi_pd(row[2], row[3]);
        let col = [
            _mm256_permute2f128_pd::<0x20>(t0, t2),
            _mm256_permute2f128_pd::<0x20>(t1, t3),
            _mm256_permute2f128_pd::<0x31>(t0, t2),
            _mm256_permute2f128_pd::<0x31>(t1, t3),
        ];
        for (c, v) in col.into_iter().enumerate() {
            #[allow(unsafe_code)]
            // SAFETY: as in `pack_rows_f64` (`p0 + c < kc`, `r0 + 4 ≤ mr`).
            unsafe {
                _mm256_storeu_pd(panel.as_mut_ptr().add((p0 + c) * mr + r0), v)
            };
        }
    })
}

/// [`pack_rows_f64`] for `f32`: 8×8 blocks in 256-bit registers (AVX2 only, so the AVX2
/// body uses it too).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(crate) fn pack_rows_f32(
    panel: &mut [f32],
    mr: usize,
    a: &[f32],
    (rs, base, kc): (usize, usize, usize),
) -> bool {
    use std::arch::x86_64::*;
    pack_by_blocks::<_, 8>(panel, mr, a, (rs, base, kc), |panel, r0, p0| {
        let row: [__m256; 8] = std::array::from_fn(|q| {
            #[allow(unsafe_code)]
            // SAFETY: as in `pack_rows_f64`.
            unsafe {
                _mm256_loadu_ps(a.as_ptr().add(base + (r0 + q) * rs + p0))
            }
        });
        // t[2h]: rows 2h, 2h+1 at columns 0, 1 | 4, 5; t[2h+1] at 2, 3 | 6, 7.
        let t: [__m256; 8] = std::array::from_fn(|x| {
            let (r, s) = (row[x / 2 * 2], row[x / 2 * 2 + 1]);
            if x % 2 == 0 {
                _mm256_unpacklo_ps(r, s)
            } else {
                _mm256_unpackhi_ps(r, s)
            }
        });
        // u[g + v]: rows g..g+4 at column v | v + 4.
        let u: [__m256; 8] = std::array::from_fn(|x| {
            let (g, v) = (x / 4 * 4, x % 4);
            let (first, second) = (t[g + v / 2], t[g + 2 + v / 2]);
            if v % 2 == 0 {
                _mm256_shuffle_ps::<0x44>(first, second)
            } else {
                _mm256_shuffle_ps::<0xEE>(first, second)
            }
        });
        for c in 0..8 {
            let col = if c < 4 {
                _mm256_permute2f128_ps::<0x20>(u[c], u[c + 4])
            } else {
                _mm256_permute2f128_ps::<0x31>(u[c - 4], u[c])
            };
            #[allow(unsafe_code)]
            // SAFETY: as in `pack_rows_f64`.
            unsafe {
                _mm256_storeu_ps(panel.as_mut_ptr().add((p0 + c) * mr + r0), col)
            };
        }
    })
}

/// The type's AVX-512 micro-kernel ([`block_24x8`], [`block_48x8`]) in the AVX-512 body
/// where the block is `T::WIDE_MR × 8`, its AVX2 one ([`block_8x6`], [`block_16x6_f32`])
/// in the AVX2 body where the block is `T::AVX2_MR × 6`, else [`block`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn kernel<T: Real, const FMA: bool, const MR: usize, const NR: usize, const ISA: u8>(
    m: usize,
    kc: usize,
    panel: (&[T], usize),
    i: usize,
    c: &mut [T],
    j: usize,
    first: bool,
    bq: impl Fn(usize) -> [T; NR],
) {
    #[cfg(target_arch = "x86_64")]
    if (ISA == AVX512 && MR == T::WIDE_MR && NR == 8)
        || (ISA == AVX2 && MR == T::AVX2_MR && NR == 6)
    {
        #[allow(unsafe_code)]
        // SAFETY: `ISA == AVX512` only in `body_avx512`, which `gemm` calls only on a CPU
        // with AVX-512 F (checked by `has_avx512`), `ISA == AVX2` only in `body_avx2`, on a
        // CPU with AVX2 and FMA (checked by `has_avx2_fma`).
        unsafe {
            T::intrinsic_block(m, kc, panel, i, c, j, first, bq)
        };
        return;
    }
    block::<T, FMA, MR, NR>(m, kc, panel, i, c, j, first, bq)
}

/// Columns `jlo..jhi` (a multiple of `NR` wide) of one packed row panel (rows `i..i+MR`,
/// `k` pass `k0..k0+kc`), `MR×NR` blocks.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn panel_columns<T: Real, const FMA: bool, const MR: usize, const NR: usize, const ISA: u8>(
    m: usize,
    (k0, kc, first): (usize, usize, bool),
    panel: (&[T], usize),
    i: usize,
    b: Strided<'_, T>,
    c: &mut [T],
    (jlo, jhi): (usize, usize),
) {
    let bat = |p: usize, j: usize| b.data[p * b.rs + j * b.cs];
    if b.rs == 1 {
        // op(B) column-major: NR contiguous columns.
        for j in (jlo..jhi).step_by(NR) {
            let mut cols: [&[T]; NR] = [&[]; NR];
            for (q, col) in cols.iter_mut().enumerate() {
                *col = &b.data[(j + q) * b.cs + k0..(j + q) * b.cs + k0 + kc];
            }
            let bq = |p: usize| {
                let mut v = [T::zero(); NR];
                for (x, col) in v.iter_mut().zip(&cols) {
                    *x = col[p];
                }
                v
            };
            kernel::<T, FMA, MR, NR, ISA>(m, kc, panel, i, c, j, first, bq);
        }
    } else if b.cs == 1 {
        // op(B) = Bᵀ of a column-major B: row p of op(B) is contiguous.
        for j in (jlo..jhi).step_by(NR) {
            let bq = |p: usize| {
                let at = (k0 + p) * b.rs + j;
                <[T; NR]>::try_from(&b.data[at..at + NR]).unwrap_or([T::nan(); NR])
            };
            kernel::<T, FMA, MR, NR, ISA>(m, kc, panel, i, c, j, first, bq);
        }
    } else {
        for j in (jlo..jhi).step_by(NR) {
            block::<T, FMA, MR, NR>(m, kc, panel, i, c, j, first, |p| {
                let mut v = [T::zero(); NR];
                for (q, x) in v.iter_mut().enumerate() {
                    *x = bat(k0 + p, j + q);
                }
                v
            });
        }
    }
}

/// Rows `lo..hi` (a multiple of `MR`) × the first `n4` columns (a multiple of 4), `k` in
/// passes of [`kc_for`]`(MR)`: each row panel is packed once per pass.
#[inline(always)]
fn panels<T: Real, const FMA: bool, const MR: usize, const NR: usize, const ISA: u8>(
    (m, n4, k): (usize, usize, usize),
    a: Strided<'_, T>,
    b: Strided<'_, T>,
    c: &mut [T],
    pack: &mut [T],
    (lo, hi): (usize, usize),
) {
    // Passes of equal depth, at most what a panel holds (512 deep in f64: four of 128,
    // not three of 170 and one of 2).
    let kcmax = k.div_ceil(k.div_ceil(kc_for::<T>(MR).max(1)).max(1));
    let aat = |i: usize, p: usize| a.data[i * a.rs + p * a.cs];
    let bat = |p: usize, j: usize| b.data[p * b.rs + j * b.cs];
    // Where the columns of op(A) are contiguous (a forward `X·W`, an input gradient
    // `dY·Wᵀ`) and the AVX-512 kernel takes every column, it reads op(A) in place: the
    // `MR` rows at each `p` are one contiguous run, `a.cs` after the last. No panel is
    // packed, and neither is op(B) (its rows, or `NR` column pointers, feed the kernel).
    // On a Zen 4 EPYC, `512×64·64×64` took 83.3 → 80.0 µs and `512×64·(64×64)ᵀ` 84.4 →
    // 79.1: the copy cost more than re-reading the panel from L2 for each block of
    // columns (its `MR` values per `p` sit 4 KiB apart at batch 512, all in one L1 set).
    let direct = ISA == AVX512
        && MR == T::WIDE_MR
        && NR == 8
        && a.rs == 1
        && n4 % NR == 0
        && (b.rs == 1 || b.cs == 1);
    // NR-wide blocks where rows of op(B) are contiguous (an input gradient `dY·Wᵀ` or a
    // forward `X·W` of a transposed weight: the 24×8 kernel then reads each row of 8 in
    // one load; gathering 8 strided values per row measured slower than the 24×4 kernel),
    // or where op(B) is packed, then 4-wide blocks for the rest. In AVX2 the 8×6 kernel
    // reads a packed copy of op(B), so it takes every layout. In AVX-512 a column-major
    // op(B) (a forward `X·W`) is packed for the 24×8 kernel only where at least 8 row
    // panels share the copy: `512×64·64×64` took 0.94-0.96x the time of the 24×4 kernel,
    // while a weight gradient's `(512×64)ᵀ·(512×64)`, two panels per pass, took 1.02x.
    // (No row panel, no packing: with fewer than `MR` rows the buffer may be empty.)
    let packed_b = ((ISA == AVX2 && MR == T::AVX2_MR && NR == 6)
        || (ISA == AVX512 && MR == T::WIDE_MR && NR == 8 && b.cs != 1 && hi - lo >= 8 * MR))
        && lo < hi
        && !direct;
    let mut nw = if NR == 4 || b.cs == 1 || packed_b || direct { n4 - n4 % NR } else { 0 };
    // The rest must be whole 4-column blocks: with NR = 6, n4 % 6 = 2 leaves 2 columns,
    // so one 6-block goes back to the 4-wide kernel (2 + 6 = 2 × 4).
    while (n4 - nw) % 4 != 0 {
        nw -= NR;
    }
    let (apack, bpack) = pack.split_at_mut(panel::<T>().min(pack.len()));
    for k0 in (0..k).step_by(kcmax) {
        let kc = kcmax.min(k - k0);
        let first = k0 == 0;
        if packed_b {
            // Goto's B panel: the `kc × nw` slab of op(B) once per pass, each NR-wide
            // block as `kc` contiguous rows of NR, so the kernel reads one pointer (six
            // column pointers spill general registers and add a load per FMA pair).
            for (jb, blk) in bpack[..kc * nw].chunks_exact_mut(kc * NR).enumerate() {
                for (p, row) in blk.chunks_exact_mut(NR).enumerate() {
                    for (q, x) in row.iter_mut().enumerate() {
                        *x = bat(k0 + p, jb * NR + q);
                    }
                }
            }
        }
        // In AVX2, `X·W`'s and `dY·Wᵀ`'s panels (columns of op(A) contiguous, 8 rows of
        // f64 per `p`, each `p` in its own 4 KiB page at batch 512) are packed up to four at
        // a time: each page then gives four lines per visit, not one. With the AVX2 path
        // forced on a Zen 4 EPYC, `512×64·64×64` 97.4 → 91.2 µs and `512×64·(64×64)ᵀ`
        // 97.3 → 89.9; eight at a time (the whole 32 KiB buffer, which then competes with
        // the packed op(B) in L1) made the T2 gradients 1.02x slower.
        let group = if ISA == AVX2 && a.rs == 1 && a.cs != 1 && !direct {
            (apack.len() / (MR * kc).max(1)).clamp(1, 4)
        } else {
            1
        };
        for (n_i, i) in (lo..hi).step_by(MR).enumerate() {
            let (q, off) = (n_i % group, n_i % group * MR * kc);
            if group > 1 && q == 0 {
                let count = ((hi - i) / MR).min(group);
                for p in 0..kc {
                    let at = i + (k0 + p) * a.cs;
                    for (qq, chunk) in a.data[at..at + count * MR].chunks_exact(MR).enumerate() {
                        let to = qq * MR * kc + p * MR;
                        apack[to..to + MR].copy_from_slice(chunk);
                    }
                }
            }
            if direct {
                // (In range: `gemm` checked the operands' extents; the kernel checks the
                // panel's and writes NaN were it short.)
                let panel = (a.data.get(i + k0 * a.cs..).unwrap_or(&[]), a.cs);
                panel_columns::<T, FMA, MR, NR, ISA>(m, (k0, kc, first), panel, i, b, c, (0, n4));
                continue;
            }
            let panel = &mut apack[..MR * kc];
            // (The portable body keeps the element loop below, so the tests check it on
            // any CPU.)
            let transposed = group == 1
                && (ISA == AVX512 || ISA == AVX2)
                && a.cs == 1
                && T::pack_rows(panel, MR, a.data, (a.rs, i * a.rs + k0, kc));
            if transposed || group > 1 {
                // Packed by the type's transposing kernel, or with the group above.
            } else if a.cs == 1 {
                // Rows of op(A) contiguous (a weight gradient's `Xᵀ`): read each row in
                // order, its values `MR` apart in the panel. Reading `MR` rows at once (one
                // value each per `p`) touches `MR` lines 4 KiB apart at batch 512, all in
                // one set of an 8-way L1: `(512×64)ᵀ·(512×64)` took 112 µs against 90 µs
                // this way on an AMD EPYC (Zen 4, 32 KiB L1d), where `512×64·64×64` takes 88.
                for r in 0..MR {
                    let row = &a.data[(i + r) * a.rs + k0..(i + r) * a.rs + k0 + kc];
                    for (d, &x) in panel[r..].iter_mut().step_by(MR).zip(row) {
                        *d = x;
                    }
                }
            } else if a.rs == 1 {
                // Columns of op(A) contiguous (a forward `X·W`, an input gradient
                // `dY·Wᵀ`): `MR` contiguous values per `p`, one block copy each (the
                // element loop below, bounds-checked, ran scalar: `512×64·64×64` 88.5 →
                // 82.8 µs, `512×64·(64×64)ᵀ` 86.9 → 82.2 on a Zen 4 EPYC).
                for (p, dst) in panel.chunks_exact_mut(MR).enumerate() {
                    let at = i + (k0 + p) * a.cs;
                    dst.copy_from_slice(&a.data[at..at + MR]);
                }
            } else {
                for (p, dst) in panel.chunks_exact_mut(MR).enumerate() {
                    for (r, d) in dst.iter_mut().enumerate() {
                        *d = aat(i + r, k0 + p);
                    }
                }
            }
            let panel = (&apack[off..off + MR * kc], MR);
            if packed_b {
                for (jb, blk) in bpack[..kc * nw].chunks_exact(kc * NR).enumerate() {
                    let bq = |p: usize| {
                        <[T; NR]>::try_from(&blk[p * NR..p * NR + NR]).unwrap_or([T::nan(); NR])
                    };
                    kernel::<T, FMA, MR, NR, ISA>(m, kc, panel, i, c, jb * NR, first, bq);
                }
            } else {
                let cols = (0, nw);
                panel_columns::<T, FMA, MR, NR, ISA>(m, (k0, kc, first), panel, i, b, c, cols);
            }
            let cols = (nw, n4);
            panel_columns::<T, FMA, MR, 4, PORTABLE>(m, (k0, kc, first), panel, i, b, c, cols);
        }
    }
}

#[inline(always)]
fn body<T: Real, const FMA: bool, const MR: usize, const NR: usize, const ISA: u8>(
    m: usize,
    n: usize,
    k: usize,
    a: Strided<'_, T>,
    b: Strided<'_, T>,
    c: &mut [T],
    pack: &mut [T],
) {
    let bat = |p: usize, j: usize| b.data[p * b.rs + j * b.cs];
    let aat = |i: usize, p: usize| a.data[i * a.rs + p * a.cs];
    if k == 0 {
        c[..m * n].fill(T::zero());
        return;
    }
    if k == 1 && a.rs == 1 {
        // An outer product (a weight gradient at batch 1): no packing, straight columns.
        let col = &a.data[..m];
        for jj in 0..n {
            let bj = bat(0, jj);
            for (o, &x) in c[jj * m..(jj + 1) * m].iter_mut().zip(col) {
                *o = x * bj;
            }
        }
        return;
    }
    if k <= 3 && a.rs == 1 {
        // A product 2 or 3 deep with contiguous columns of op(A) (the first layer of an
        // MLP field on `[z, t]`, or the input gradient of its 2-wide last layer): each
        // column of C in one pass over the k columns of op(A), which stay in L1. Packing
        // panels for a 2-deep kernel costs more than the product: at 512×64×2 in f64 the
        // C stores, 4 KiB apart, made the packed path 3x slower than this one.
        let cols: [&[T]; 3] = std::array::from_fn(|p| {
            let p = p.min(k - 1);
            &a.data[p * a.cs..p * a.cs + m]
        });
        for jj in 0..n {
            let out = &mut c[jj * m..(jj + 1) * m];
            let (w0, w1) = (bat(0, jj), bat(1, jj));
            if k == 2 {
                for ((o, &x0), &x1) in out.iter_mut().zip(cols[0]).zip(cols[1]) {
                    *o = T::madd::<FMA>(x1, w1, x0 * w0);
                }
            } else {
                let w2 = bat(2, jj);
                for (((o, &x0), &x1), &x2) in out.iter_mut().zip(cols[0]).zip(cols[1]).zip(cols[2])
                {
                    *o = T::madd::<FMA>(x2, w2, T::madd::<FMA>(x1, w1, x0 * w0));
                }
            }
        }
        return;
    }
    // Whole `MR`-row blocks, then (in AVX-512) whole blocks of two registers' rows, then
    // whole 8-row blocks, × whole 4-column blocks.
    let n4 = n - n % 4;
    let wide = m - m % MR;
    // Two registers' rows keep 8 accumulators, enough independent FMA chains for two
    // ports; 8 rows of `f64` keep 4. A weight gradient's 64 rows are 24 + 24 + 16.
    let two_regs = if ISA == AVX512 && MR == T::WIDE_MR { MR / 3 * 2 } else { 0 };
    let mid = wide + (m - wide).checked_div(two_regs).unwrap_or(0) * two_regs;
    // (Were `MR` no multiple of 8, the 8-row blocks would start where the wide ones end.)
    let i0 = mid + (m - mid) / 8 * 8;
    if n4 > 0 {
        // (A product narrower than 4 has no whole column block: packing its row panels
        // would be pure cost, a strided copy of all of op(A).)
        panels::<T, FMA, MR, NR, ISA>((m, n4, k), a, b, c, pack, (0, wide));
        // (`ISA` only lets these panels be packed by transposes: their 4-wide blocks run the
        // portable kernel.)
        if two_regs == 16 {
            panels::<T, FMA, 16, 4, ISA>((m, n4, k), a, b, c, pack, (wide, mid));
        } else if two_regs == 32 {
            panels::<T, FMA, 32, 4, ISA>((m, n4, k), a, b, c, pack, (wide, mid));
        }
        panels::<T, FMA, 8, 4, ISA>((m, n4, k), a, b, c, pack, (mid, i0));
    }
    // Columns past a multiple of 4 (all of them for a 1-3-wide product, the thin layers
    // of an MLP field), for the rows in whole 8-row blocks, on contiguous vector paths
    // where the strides allow: the generic strided loop does not vectorise.
    if n4 < n && a.rs == 1 {
        // Columns of op(A) contiguous: op(A) is read once for all 1-3 trailing columns.
        let tail = &mut c[n4 * m..n * m];
        match n - n4 {
            1 => thin_axpy::<T, FMA, 1>(m, i0, k, a, b, n4, tail),
            2 => thin_axpy::<T, FMA, 2>(m, i0, k, a, b, n4, tail),
            _ => thin_axpy::<T, FMA, 3>(m, i0, k, a, b, n4, tail),
        }
    } else if n4 < n && a.cs == 1 && b.rs == 1 {
        // Rows of op(A) and columns of op(B) contiguous (a weight gradient `Xᵀ·dY`): each
        // row of op(A) is read once for all 1-3 trailing columns, dots in 8 lanes.
        let cols: [&[T]; 3] = std::array::from_fn(|q| {
            let jj = (n4 + q).min(n - 1);
            &b.data[jj * b.cs..jj * b.cs + k]
        });
        for ii in 0..i0 {
            let row = &a.data[ii * a.rs..ii * a.rs + k];
            match n - n4 {
                1 => c[ii + n4 * m] = dot::<T, FMA>(row, cols[0]),
                2 => {
                    let d = dots::<T, FMA, 2>(row, [cols[0], cols[1]]);
                    c[ii + n4 * m] = d[0];
                    c[ii + (n4 + 1) * m] = d[1];
                }
                _ => {
                    let d = dots::<T, FMA, 3>(row, cols);
                    for (q, v) in d.into_iter().enumerate() {
                        c[ii + (n4 + q) * m] = v;
                    }
                }
            }
        }
    } else {
        for jj in n4..n {
            let col = &mut c[jj * m..jj * m + i0];
            col.fill(T::zero());
            for p in 0..k {
                let bp = bat(p, jj);
                for (ii, o) in col.iter_mut().enumerate() {
                    *o = T::madd::<FMA>(aat(ii, p), bp, *o);
                }
            }
        }
    }
    // Rows past a multiple of 8 (every row when m < 8, e.g. batch 1), all columns.
    if i0 < m && a.cs == 1 && b.rs == 1 {
        // Rows of op(A) and columns of op(B) contiguous: dot products in 8 lanes, each
        // column of op(B) read from memory once for all (at most 7) rows, which stay in L1
        // (a first layer's weight gradient `(512×3)ᵀ·(512×64)`: 17.3 → 13.5 µs).
        for jj in 0..n {
            let col = &b.data[jj * b.cs..jj * b.cs + k];
            for ii in i0..m {
                c[ii + jj * m] = dot::<T, FMA>(&a.data[ii * a.rs..ii * a.rs + k], col);
            }
        }
        return;
    }
    for ii in i0..m {
        if b.cs == 1 && m == 1 {
            // One row of C against contiguous rows of op(B): axpy per p.
            c[..n].fill(T::zero());
            for p in 0..k {
                let ap = aat(0, p);
                for (o, &x) in c[..n].iter_mut().zip(&b.data[p * b.rs..p * b.rs + n]) {
                    *o = T::madd::<FMA>(ap, x, *o);
                }
            }
        } else {
            // Independent accumulators across columns, never a latency-bound chain.
            for jj in 0..n {
                c[ii + jj * m] = T::zero();
            }
            for p in 0..k {
                let ap = aat(ii, p);
                for jj in 0..n {
                    c[ii + jj * m] = T::madd::<FMA>(ap, bat(p, jj), c[ii + jj * m]);
                }
            }
        }
    }
}

/// `C[..i0, n4..n4+W] = op(A)[..i0, :] · op(B)[:, n4..n4+W]` for contiguous columns of
/// op(A) (`a.rs == 1`) into `tail` (the `W` columns of `C`, `m` each): blocks of 32 rows
/// (then 8) keep their `W` columns of `C` in registers over all of `k`, so op(A) is read
/// once and `C` written once. (Loading and storing `C` every four `p` ran up to 2x slower
/// at batch 512, where the columns of `C` and op(A) sit 4 KiB apart: likely loads
/// aliasing the pending stores.)
#[inline(always)]
fn thin_axpy<T: Real, const FMA: bool, const W: usize>(
    m: usize,
    i0: usize,
    k: usize,
    a: Strided<'_, T>,
    b: Strided<'_, T>,
    n4: usize,
    tail: &mut [T],
) {
    let bat = |p: usize, j: usize| b.data[p * b.rs + j * b.cs];
    let i32 = i0 / 32 * 32;
    for i in (0..i32).step_by(32) {
        thin_rows::<T, FMA, W, 32>(m, i, k, a, &bat, n4, tail);
    }
    for i in (i32..i0).step_by(8) {
        thin_rows::<T, FMA, W, 8>(m, i, k, a, &bat, n4, tail);
    }
}

/// Rows `i..i+R` of [`thin_axpy`]'s product, `R × W` accumulators over all of `k`.
#[inline(always)]
fn thin_rows<T: Real, const FMA: bool, const W: usize, const R: usize>(
    m: usize,
    i: usize,
    k: usize,
    a: Strided<'_, T>,
    bat: &impl Fn(usize, usize) -> T,
    n4: usize,
    tail: &mut [T],
) {
    let mut acc = [[T::zero(); R]; W];
    for p in 0..k {
        let at = p * a.cs + i;
        // (In range: `gemm` checked the operands' extents.)
        let Some(Ok(col)) = a.data.get(at..at + R).map(<&[T; R]>::try_from) else {
            acc = [[T::nan(); R]; W];
            break;
        };
        for (q, accq) in acc.iter_mut().enumerate() {
            let bq = bat(p, n4 + q);
            for (o, &x) in accq.iter_mut().zip(col) {
                *o = T::madd::<FMA>(x, bq, *o);
            }
        }
    }
    for (q, accq) in acc.iter().enumerate() {
        tail[q * m + i..q * m + i + R].copy_from_slice(accq);
    }
}

/// `W` dot products `Σ x_i y_w,i`, each [`dot`]'s loop over `x` (which stays in L1): one
/// loop over all `W` let the compiler vectorise across the `W` products (two-lane `xmm`
/// code) instead of along the lanes.
#[inline(always)]
fn dots<T: Real, const FMA: bool, const W: usize>(x: &[T], ys: [&[T]; W]) -> [T; W] {
    let mut out = [T::zero(); W];
    for (o, y) in out.iter_mut().zip(ys) {
        *o = dot::<T, FMA>(x, y);
    }
    out
}

/// `Σ x_i y_i` in 16 independent lanes: four `f64` registers of 4 lanes (two of 8 in
/// `f32`), enough chains to hide the FMA latency where 8 lanes left a weight gradient
/// `(512×64)ᵀ·(512×2)` waiting on it.
#[inline(always)]
fn dot<T: Real, const FMA: bool>(x: &[T], y: &[T]) -> T {
    const LANES: usize = 16;
    let mut lanes = [T::zero(); LANES];
    let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..LANES {
            lanes[l] = T::madd::<FMA>(a[l], b[l], lanes[l]);
        }
    }
    let mut s = lanes.iter().copied().sum::<T>();
    for (a, b) in xr.iter().zip(yr) {
        s = T::madd::<FMA>(*a, *b, s);
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn body_avx2<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    a: Strided<'_, T>,
    b: Strided<'_, T>,
    c: &mut [T],
    pack: &mut [T],
) {
    if T::AVX2_MR == 16 {
        body::<T, true, 16, 6, AVX2>(m, n, k, a, b, c, pack)
    } else {
        body::<T, true, 8, 6, AVX2>(m, n, k, a, b, c, pack)
    }
}

/// The AVX-512 body with `MR = T::WIDE_MR` row panels (three registers of the type's
/// lanes; for `f64`, 16 and 32 rows measured slower than 24).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn body_avx512<T: Real, const MR: usize>(
    m: usize,
    n: usize,
    k: usize,
    a: Strided<'_, T>,
    b: Strided<'_, T>,
    c: &mut [T],
    pack: &mut [T],
) {
    body::<T, true, MR, 8, AVX512>(m, n, k, a, b, c, pack)
}

/// Whether this CPU has AVX2 and FMA (cached by the standard library after the first call).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Whether this CPU has AVX-512 F, VL and DQ besides AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn has_avx512() -> bool {
    has_avx2_fma()
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512dq")
}

/// `C = op(A) · op(B)`; see the module docs. `c` holds `m·n`, `pack` at least
/// [`pack_len`]`(m, n, k)`, and the strided operands every index they describe; shapes are
/// checked when a graph is built.
pub(crate) fn gemm<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    a: Strided<'_, T>,
    b: Strided<'_, T>,
    c: &mut [T],
    pack: &mut [T],
) {
    let fits = |s: Strided<'_, T>, r: usize, cols: usize| {
        r == 0 || cols == 0 || (r - 1) * s.rs + (cols - 1) * s.cs < s.data.len()
    };
    if !fits(a, m, k) || !fits(b, k, n) || c.len() < m * n || pack.len() < pack_len::<T>(m, n, k) {
        debug_assert!(false, "gemm operands smaller than their shapes");
        c.fill(T::nan());
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() && std::arch::is_x86_feature_detected!("avx512f") {
        #[allow(unsafe_code)]
        // SAFETY: the CPU supports AVX-512F, AVX2 and FMA (checked just above), the only
        // requirement of a `#[target_feature]` function.
        unsafe {
            if T::WIDE_MR == 48 {
                body_avx512::<T, 48>(m, n, k, a, b, c, pack)
            } else {
                body_avx512::<T, 24>(m, n, k, a, b, c, pack)
            }
        };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        #[allow(unsafe_code)]
        // SAFETY: the CPU supports AVX2 and FMA (checked just above), the only
        // requirement of a `#[target_feature]` function.
        unsafe {
            body_avx2(m, n, k, a, b, c, pack)
        };
        return;
    }
    body::<T, false, 8, 4, PORTABLE>(m, n, k, a, b, c, pack)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Product<T> = fn(usize, usize, usize, Strided<'_, T>, Strided<'_, T>, &mut [T], &mut [T]);

    /// The dispatched product (the fastest path this CPU has) and the portable code at
    /// both panel heights and both block widths, so every kernel is checked on any CPU;
    /// `tol` is relative to `Σ |a b|`.
    fn check_every_remainder<T: Real>(paths: &[(&str, Product<T>)], tol: f64) {
        for (m, n, k) in [
            (1, 1, 1),
            (1, 9, 20),
            (8, 4, 3),
            (9, 5, 2),
            (17, 7, 6),
            (3, 9, 1),
            (16, 8, 0),
            (2, 3, 17),
            (40, 9, 300),
            (24, 8, 513),
            (48, 8, 1100),
            (61, 6, 1100),
            (64, 2, 512),
            (512, 2, 64),
            (40, 3, 17),
            (16, 1, 9),
            (50, 12, 30),
            (72, 21, 9),
            (100, 17, 70),
            (13, 4, 3),
            (20, 5, 7),
            (36, 6, 40),
            (24, 13, 2),
            (33, 7, 3),
            (5, 9, 2),
            (3, 16, 4),
            (64, 64, 512),
            (80, 9, 40),
            (88, 5, 33),
            (200, 13, 70),
            (400, 11, 300),
        ] {
            let a: Vec<T> = (0..m * k).map(|x| T::of((x as f64 * 0.37).sin())).collect();
            let b: Vec<T> = (0..k * n).map(|x| T::of((x as f64 * 0.91).cos())).collect();
            for &(name, product) in paths {
                for (transposed, a_transposed) in
                    [(false, false), (true, false), (false, true), (true, true)]
                {
                    // op(B) = B (k×n, column-major) or Bᵀ of an n×k column-major matrix;
                    // op(A) likewise (Aᵀ of a k×m matrix: a weight gradient's `Xᵀ`).
                    let s = if transposed {
                        Strided { data: &b, rs: n, cs: 1 }
                    } else {
                        Strided { data: &b, rs: 1, cs: k }
                    };
                    let sa = if a_transposed {
                        Strided { data: &a, rs: k, cs: 1 }
                    } else {
                        Strided { data: &a, rs: 1, cs: m }
                    };
                    let mut c = vec![T::nan(); m * n];
                    let mut pack = vec![T::zero(); pack_len::<T>(m, n, k)];
                    product(m, n, k, sa, s, &mut c, &mut pack);
                    for i in 0..m {
                        for j in 0..n {
                            let terms = (0..k).map(|p| {
                                a[i * sa.rs + p * sa.cs].widen() * b[p * s.rs + j * s.cs].widen()
                            });
                            let want: f64 = terms.clone().sum();
                            let scale: f64 = terms.map(f64::abs).sum::<f64>().max(1.0);
                            assert!(
                                (c[i + j * m].widen() - want).abs() < tol * scale,
                                "{} {name} {m}×{n}×{k} (Aᵀ {a_transposed}, Bᵀ {transposed}) at ({i},{j})",
                                T::NAME
                            );
                        }
                    }
                }
            }
        }
    }

    /// The AVX2 body ([`block_8x6`], [`block_16x6_f32`] and their remainders) where the
    /// CPU has AVX2 and FMA, so CPUs with AVX-512 check it too; the portable body where not.
    fn avx2<T: Real>(
        m: usize,
        n: usize,
        k: usize,
        a: Strided<'_, T>,
        b: Strided<'_, T>,
        c: &mut [T],
        pack: &mut [T],
    ) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() {
            #[allow(unsafe_code)]
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            unsafe {
                body_avx2(m, n, k, a, b, c, pack)
            };
            return;
        }
        body::<T, false, 8, 4, PORTABLE>(m, n, k, a, b, c, pack)
    }

    /// Every transposing packer against its definition, `panel[p·mr + r] = a[base + r·rs +
    /// p]`, at depths with and without a remainder; too short a panel or operand is refused
    /// with nothing written.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_transposing_packers_match_their_definition() {
        type Packer<T> = unsafe fn(&mut [T], usize, &[T], (usize, usize, usize)) -> bool;
        fn check<T: Real>(name: &str, pack: Packer<T>) {
            for (mr, kc, rs, base) in
                [(8, 8, 8, 0), (24, 37, 40, 3), (16, 130, 131, 1), (48, 9, 9, 0)]
            {
                let a: Vec<T> = (0..base + mr * rs + kc).map(|x| T::of(x as f64)).collect();
                let mut panel = vec![T::nan(); mr * kc];
                #[allow(unsafe_code)]
                // SAFETY: the caller checked the CPU features of `pack`.
                let done = unsafe { pack(&mut panel, mr, &a, (rs, base, kc)) };
                assert!(done, "{name} {mr}×{kc}");
                for p in 0..kc {
                    for r in 0..mr {
                        assert_eq!(panel[p * mr + r], a[base + r * rs + p], "{name} ({p}, {r})");
                    }
                }
                let mut short = vec![T::nan(); mr * kc - 1];
                #[allow(unsafe_code)]
                // SAFETY: as above.
                let refused = !unsafe { pack(&mut short, mr, &a, (rs, base, kc)) };
                assert!(refused && short.iter().all(|x| x.is_nan()), "{name}: short panel");
                #[allow(unsafe_code)]
                // SAFETY: as above.
                let refused =
                    !unsafe { pack(&mut panel, mr, &a[..base + (mr - 1) * rs], (rs, base, kc)) };
                assert!(refused, "{name}: short operand");
            }
        }
        if has_avx2_fma() {
            check::<f64>("avx2 f64", pack_rows_f64_avx2);
            check::<f32>("f32", pack_rows_f32);
        }
        if has_avx512() {
            check::<f64>("avx512 f64", pack_rows_f64);
        }
    }

    #[test]
    fn matches_a_naive_product_at_every_remainder() {
        check_every_remainder::<f64>(
            &[
                ("gemm", gemm),
                ("avx2", avx2),
                ("portable 8", body::<f64, false, 8, 4, PORTABLE>),
                ("portable 24", body::<f64, false, 24, 4, PORTABLE>),
                ("portable 24x8", body::<f64, false, 24, 8, PORTABLE>),
                ("portable 8x6", body::<f64, false, 8, 6, PORTABLE>),
            ],
            1e-13,
        );
    }

    #[test]
    fn matches_a_naive_product_at_every_remainder_in_f32() {
        check_every_remainder::<f32>(
            &[
                ("gemm", gemm),
                ("avx2", avx2),
                ("portable 8", body::<f32, false, 8, 4, PORTABLE>),
                ("portable 48", body::<f32, false, 48, 4, PORTABLE>),
                ("portable 48x8", body::<f32, false, 48, 8, PORTABLE>),
                ("portable 16x6", body::<f32, false, 16, 6, PORTABLE>),
            ],
            2e-6,
        );
    }
}
