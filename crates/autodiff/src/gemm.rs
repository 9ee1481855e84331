//! An allocation-free matrix product for the executor.
//!
//! `C = A · op(B)` with `C` (`m×n`) and `A` (`m×k`) column-major and contiguous, and `B`
//! read through strides (so `op(B) = Bᵀ` costs nothing). A register-blocked 8×4
//! micro-kernel keeps 32 accumulators in registers across the `k` loop; on x86-64 CPUs
//! with AVX2 and FMA (detected at run time) the same code is compiled for them. General
//! libraries such as `matrixmultiply` allocate packing buffers on every call, which a
//! replayed vector field evaluated thousands of times per solve cannot afford.

/// Strided read access to `op(B)`: element `(p, j)` is `b[p * rs + j * cs]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Strided<'a> {
    pub(crate) data: &'a [f64],
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

#[inline(always)]
fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[inline(always)]
fn body<const FMA: bool>(m: usize, n: usize, k: usize, a: &[f64], b: Strided<'_>, c: &mut [f64]) {
    let bat = |p: usize, j: usize| b.data[p * b.rs + j * b.cs];
    let mut j = 0;
    while j + 4 <= n {
        let mut i = 0;
        while i + 8 <= m {
            let mut acc = [[0.0f64; 8]; 4];
            for p in 0..k {
                let av: &[f64; 8] = match a[i + p * m..i + p * m + 8].try_into() {
                    Ok(v) => v,
                    Err(_) => return,
                };
                for (q, accq) in acc.iter_mut().enumerate() {
                    let bq = bat(p, j + q);
                    for r in 0..8 {
                        accq[r] = madd::<FMA>(av[r], bq, accq[r]);
                    }
                }
            }
            for (q, accq) in acc.iter().enumerate() {
                c[i + (j + q) * m..i + (j + q) * m + 8].copy_from_slice(accq);
            }
            i += 8;
        }
        if i < m {
            for q in 0..4 {
                for ii in i..m {
                    let mut s = 0.0;
                    for p in 0..k {
                        s = madd::<FMA>(a[ii + p * m], bat(p, j + q), s);
                    }
                    c[ii + (j + q) * m] = s;
                }
            }
        }
        j += 4;
    }
    for jj in j..n {
        let col = &mut c[jj * m..(jj + 1) * m];
        col.fill(0.0);
        for p in 0..k {
            let bp = bat(p, jj);
            for (o, &x) in col.iter_mut().zip(&a[p * m..(p + 1) * m]) {
                *o = madd::<FMA>(x, bp, *o);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn body_avx2(m: usize, n: usize, k: usize, a: &[f64], b: Strided<'_>, c: &mut [f64]) {
    body::<true>(m, n, k, a, b, c)
}

/// `C = A · op(B)`; see the module docs. Slices must hold `m·k` (`a`), `m·n` (`c`) and every
/// strided index of `b`; shapes are checked when a graph is built.
pub(crate) fn gemm(m: usize, n: usize, k: usize, a: &[f64], b: Strided<'_>, c: &mut [f64]) {
    let b_fits = k == 0 || n == 0 || (k - 1) * b.rs + (n - 1) * b.cs < b.data.len();
    if a.len() < m * k || c.len() < m * n || !b_fits {
        debug_assert!(false, "gemm operands smaller than their shapes");
        c.fill(f64::NAN);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        #[allow(unsafe_code)]
        // SAFETY: the CPU supports AVX2 and FMA (checked just above), the only
        // requirement of a `#[target_feature]` function.
        unsafe {
            body_avx2(m, n, k, a, b, c)
        };
        return;
    }
    body::<false>(m, n, k, a, b, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_naive_product_at_every_remainder() {
        for (m, n, k) in [(1, 1, 1), (8, 4, 3), (9, 5, 2), (17, 7, 6), (3, 9, 1), (16, 8, 0)] {
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
                gemm(m, n, k, &a, s, &mut c);
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
