//! An allocation-free matrix product for the executor.
//!
//! `C = op(A) · op(B)` with `C` (`m×n`) column-major and both operands read through
//! strides (transposes cost nothing). `op(A)` is first packed into contiguous panels of 8
//! rows (in a caller-provided buffer: walking a column-major `A` across columns strides
//! by whole columns and thrashes the cache); a register-blocked 8×4 micro-kernel then
//! keeps 32 accumulators in registers across the `k` loop. On x86-64 CPUs with AVX2 and
//! FMA (detected at run time) the same code is compiled for them. General
//! libraries such as `matrixmultiply` allocate packing buffers on every call, which a
//! replayed vector field evaluated thousands of times per solve cannot afford.

use crate::fastmath::madd;

/// Strided read access to `op(B)`: element `(p, j)` is `b[p * rs + j * cs]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Strided<'a> {
    pub(crate) data: &'a [f64],
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

/// Length of the packing buffer [`gemm`] needs.
pub(crate) fn pack_len(m: usize, k: usize) -> usize {
    (m / 8) * 8 * k
}

/// The 8×4 micro-kernel for rows `i..i+8` (packed panel `panel`: `k` groups of 8),
/// columns `j..j+4`; `bq(p)` returns `op(B)[p, j..j+4]`.
#[inline(always)]
fn block<const FMA: bool>(
    m: usize,
    k: usize,
    panel: &[f64],
    i: usize,
    c: &mut [f64],
    j: usize,
    bq: impl Fn(usize) -> [f64; 4],
) {
    let mut acc = [[0.0f64; 8]; 4];
    for (p, av) in panel.chunks_exact(8).take(k).enumerate() {
        let b = bq(p);
        for q in 0..4 {
            for r in 0..8 {
                acc[q][r] = madd::<FMA>(av[r], b[q], acc[q][r]);
            }
        }
    }
    for (q, accq) in acc.iter().enumerate() {
        c[i + (j + q) * m..i + (j + q) * m + 8].copy_from_slice(accq);
    }
}

#[inline(always)]
fn body<const FMA: bool>(
    m: usize,
    n: usize,
    k: usize,
    a: Strided<'_>,
    b: Strided<'_>,
    c: &mut [f64],
    pack: &mut [f64],
) {
    let bat = |p: usize, j: usize| b.data[p * b.rs + j * b.cs];
    let aat = |i: usize, p: usize| a.data[i * a.rs + p * a.cs];
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
    let blocks = m / 8;
    for ib in 0..blocks {
        let panel = &mut pack[ib * 8 * k..(ib + 1) * 8 * k];
        for (p, dst) in panel.chunks_exact_mut(8).enumerate() {
            for (r, d) in dst.iter_mut().enumerate() {
                *d = aat(ib * 8 + r, p);
            }
        }
    }
    let panel = |i: usize| &pack[(i / 8) * 8 * k..(i / 8 + 1) * 8 * k];
    let mut j = 0;
    while j + 4 <= n {
        let mut i = 0;
        if b.rs == 1 {
            // op(B) column-major: four contiguous columns of length k.
            let col = |q: usize| &b.data[(j + q) * b.cs..(j + q) * b.cs + k];
            let (c0, c1, c2, c3) = (col(0), col(1), col(2), col(3));
            while i + 8 <= m {
                block::<FMA>(m, k, panel(i), i, c, j, |p| [c0[p], c1[p], c2[p], c3[p]]);
                i += 8;
            }
        } else if b.cs == 1 {
            // op(B) = Bᵀ of a column-major B: row p of op(B) is contiguous.
            while i + 8 <= m {
                block::<FMA>(m, k, panel(i), i, c, j, |p| {
                    let row = &b.data[p * b.rs + j..p * b.rs + j + 4];
                    [row[0], row[1], row[2], row[3]]
                });
                i += 8;
            }
        } else {
            while i + 8 <= m {
                block::<FMA>(m, k, panel(i), i, c, j, |p| {
                    [bat(p, j), bat(p, j + 1), bat(p, j + 2), bat(p, j + 3)]
                });
                i += 8;
            }
        }
        j += 4;
    }
    // Columns past a multiple of 4, for the rows in whole 8-row blocks.
    let i0 = m - m % 8;
    for jj in j..n {
        let col = &mut c[jj * m..jj * m + i0];
        col.fill(0.0);
        for p in 0..k {
            let bp = bat(p, jj);
            for (ii, o) in col.iter_mut().enumerate() {
                *o = madd::<FMA>(aat(ii, p), bp, *o);
            }
        }
    }
    // Rows past a multiple of 8 (every row when m < 8, e.g. batch 1), all columns.
    for ii in i0..m {
        if a.cs == 1 && b.rs == 1 {
            // Row of op(A) and columns of op(B) contiguous: dot products in 8 lanes.
            let row = &a.data[ii * a.rs..ii * a.rs + k];
            for jj in 0..n {
                c[ii + jj * m] = dot::<FMA>(row, &b.data[jj * b.cs..jj * b.cs + k]);
            }
        } else if b.cs == 1 && m == 1 {
            // One row of C against contiguous rows of op(B): axpy per p.
            c[..n].fill(0.0);
            for p in 0..k {
                let ap = aat(0, p);
                for (o, &x) in c[..n].iter_mut().zip(&b.data[p * b.rs..p * b.rs + n]) {
                    *o = madd::<FMA>(ap, x, *o);
                }
            }
        } else {
            // Independent accumulators across columns, never a latency-bound chain.
            for jj in 0..n {
                c[ii + jj * m] = 0.0;
            }
            for p in 0..k {
                let ap = aat(ii, p);
                for jj in 0..n {
                    c[ii + jj * m] = madd::<FMA>(ap, bat(p, jj), c[ii + jj * m]);
                }
            }
        }
    }
}

/// `Σ x_i y_i` in 8 independent lanes.
#[inline(always)]
fn dot<const FMA: bool>(x: &[f64], y: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..8 {
            lanes[l] = madd::<FMA>(a[l], b[l], lanes[l]);
        }
    }
    let mut s = lanes.iter().sum::<f64>();
    for (a, b) in xr.iter().zip(yr) {
        s = madd::<FMA>(*a, *b, s);
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn body_avx2(
    m: usize,
    n: usize,
    k: usize,
    a: Strided<'_>,
    b: Strided<'_>,
    c: &mut [f64],
    pack: &mut [f64],
) {
    body::<true>(m, n, k, a, b, c, pack)
}

/// Whether this CPU has AVX2 and FMA (cached by the standard library after the first call).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// `C = op(A) · op(B)`; see the module docs. `c` holds `m·n`, `pack` at least
/// [`pack_len`]`(m, k)`, and the strided operands every index they describe; shapes are
/// checked when a graph is built.
pub(crate) fn gemm(
    m: usize,
    n: usize,
    k: usize,
    a: Strided<'_>,
    b: Strided<'_>,
    c: &mut [f64],
    pack: &mut [f64],
) {
    let fits = |s: Strided<'_>, r: usize, cols: usize| {
        r == 0 || cols == 0 || (r - 1) * s.rs + (cols - 1) * s.cs < s.data.len()
    };
    if !fits(a, m, k) || !fits(b, k, n) || c.len() < m * n || pack.len() < pack_len(m, k) {
        debug_assert!(false, "gemm operands smaller than their shapes");
        c.fill(f64::NAN);
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
    body::<false>(m, n, k, a, b, c, pack)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_naive_product_at_every_remainder() {
        for (m, n, k) in [
            (1, 1, 1),
            (1, 9, 20),
            (8, 4, 3),
            (9, 5, 2),
            (17, 7, 6),
            (3, 9, 1),
            (16, 8, 0),
            (2, 3, 17),
        ] {
            let a: Vec<f64> = (0..m * k).map(|x| (x as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..k * n).map(|x| (x as f64 * 0.91).cos()).collect();
            for transposed in [false, true] {
                // op(B) = B (k×n, column-major) or Bᵀ of an n×k column-major matrix.
                let s = if transposed {
                    Strided { data: &b, rs: n, cs: 1 }
                } else {
                    Strided { data: &b, rs: 1, cs: k }
                };
                let mut c = vec![f64::NAN; m * n];
                let mut pack = vec![0.0; pack_len(m, k)];
                gemm(m, n, k, Strided { data: &a, rs: 1, cs: m }, s, &mut c, &mut pack);
                for i in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k).map(|p| a[i + p * m] * b[p * s.rs + j * s.cs]).sum();
                        assert!((c[i + j * m] - want).abs() < 1e-12, "{m}×{n}×{k} at ({i},{j})");
                    }
                }
            }
        }
    }
}
