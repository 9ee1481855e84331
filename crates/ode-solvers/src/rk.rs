//! The one explicit Runge-Kutta engine: an allocation-free stepping kernel driven by a
//! [`Tableau`].
//!
//! [`RkIntegrator`] owns every buffer it needs; after [`RkIntegrator::init`], neither
//! [`RkIntegrator::step`], [`RkIntegrator::step_to`] nor [`RkIntegrator::interpolate`]
//! allocates. The one-call [`crate::odeint`] drives it; the adjoint layer drives it
//! directly.

use crate::options::{Norm, Options, Tolerance};
use crate::tableau::{ErrorEstimate, Tableau};
use crate::{Error, OdeSystem, Real, RhsError};

/// The solver's error for a failed evaluation at `t`.
fn rhs_failed<T: Real>(t: T, source: RhsError) -> Error {
    Error::Rhs { t: t.to_f64_lossless(), source }
}

/// Counters of a solve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Right-hand-side evaluations (NFE), including those of the initial-step heuristic
    /// and of dense output.
    pub nfe: usize,
    /// Accepted steps.
    pub accepted: usize,
    /// Rejected steps.
    pub rejected: usize,
}

/// What an adaptive step attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// The step was accepted: `t()` advanced, `interpolate` covers the step.
    Accepted,
    /// The error was too large; the step will be retried with a smaller size.
    Rejected,
}

/// One accepted step's dense output (see [`RkIntegrator::dense_segment`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DenseSegment<T> {
    /// Start of the step.
    pub t0: T,
    /// End of the step.
    pub t1: T,
    /// State at `t0`.
    pub y0: Vec<T>,
    /// State at `t1`.
    pub y1: Vec<T>,
    /// Every stage `k_j`, one after the other.
    pub k: Vec<T>,
}

/// A sparse row of coefficients, converted to the solver's float once.
#[derive(Debug, Clone)]
struct Row<T> {
    idx: Vec<usize>,
    val: Vec<T>,
}

impl<T: Real> Row<T> {
    fn new(dense: &[f64]) -> Self {
        // Sized first: `unzip` grew both vectors one push at a time, a quarter of a small
        // solve's set-up (`callgrind`, Lotka-Volterra through `odeint`).
        let n = dense.iter().filter(|&&x| x != 0.0).count();
        let (mut idx, mut val) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (i, &x) in dense.iter().enumerate().filter(|(_, &x)| x != 0.0) {
            idx.push(i);
            val.push(T::lit(x));
        }
        Row { idx, val }
    }

    /// `out = h Σ_j row_j k_j`.
    #[inline(always)]
    fn combine_zero(&self, h: T, k: &[T], dim: usize, out: &mut [T]) {
        self.sum_into(None, h, k, dim, out);
    }

    /// `out = base + h Σ_j row_j k_j`.
    #[inline(always)]
    fn combine(&self, base: &[T], h: T, k: &[T], dim: usize, out: &mut [T]) {
        self.sum_into(Some(base), h, k, dim, out);
    }

    /// `out = base + h Σ_j row_j k_j` (`base` 0 when `None`), each element summed in the
    /// row's order: one pass over `out` for rows of up to 8 terms (the explicit methods'
    /// stages), blocks of 64 elements kept in L1 for longer ones. Both give the same bits
    /// as adding one term at a time over the whole vector.
    #[inline(always)]
    fn sum_into(&self, base: Option<&[T]>, h: T, k: &[T], dim: usize, out: &mut [T]) {
        match dim {
            1 => self.small::<1>(base, h, k, out),
            2 => self.small::<2>(base, h, k, out),
            3 => self.small::<3>(base, h, k, out),
            4 => self.small::<4>(base, h, k, out),
            5 => self.small::<5>(base, h, k, out),
            6 => self.small::<6>(base, h, k, out),
            7 => self.small::<7>(base, h, k, out),
            _ => crate::simd::dispatch(
                dim,
                #[inline(always)]
                || self.sum_wide(base, h, k, dim, out),
            ),
        }
    }

    /// [`Row::sum_into`] for a state of exactly `N` components: the `N` sums held in
    /// registers side by side (independent chains, not one after the other) and stored
    /// together, so the right-hand side's loads of the stage input forward from one store.
    #[inline(always)]
    fn small<const N: usize>(&self, base: Option<&[T]>, h: T, k: &[T], out: &mut [T]) {
        let mut acc = [T::zero(); N];
        if let Some(b) = base {
            acc.copy_from_slice(&b[..N]);
        }
        for (&j, &a) in self.idx.iter().zip(&self.val) {
            let ha = h * a;
            let kj = &k[j * N..(j + 1) * N];
            for i in 0..N {
                acc[i] = acc[i] + ha * kj[i];
            }
        }
        out[..N].copy_from_slice(&acc);
    }

    /// [`Row::sum_into`] for 8 or more components, vectorised for the CPU's unit.
    #[inline(always)]
    fn sum_wide(&self, base: Option<&[T]>, h: T, k: &[T], dim: usize, out: &mut [T]) {
        self.sum_range(base, h, k, dim, 0, &mut out[..dim]);
    }

    /// Components `lo..lo + out.len()` of `base + h Σ_j row_j k_j` into `out`.
    #[inline(always)]
    fn sum_range(&self, base: Option<&[T]>, h: T, k: &[T], dim: usize, lo: usize, out: &mut [T]) {
        match self.idx.len() {
            1 => self.fused::<1>(base, h, k, dim, lo, out),
            2 => self.fused::<2>(base, h, k, dim, lo, out),
            3 => self.fused::<3>(base, h, k, dim, lo, out),
            4 => self.fused::<4>(base, h, k, dim, lo, out),
            5 => self.fused::<5>(base, h, k, dim, lo, out),
            6 => self.fused::<6>(base, h, k, dim, lo, out),
            7 => self.fused::<7>(base, h, k, dim, lo, out),
            8 => self.fused::<8>(base, h, k, dim, lo, out),
            _ => {
                let n = out.len();
                for blo in (0..n).step_by(64) {
                    let bhi = (blo + 64).min(n);
                    let (from, to) = (lo + blo, lo + bhi);
                    match base {
                        Some(b) => out[blo..bhi].copy_from_slice(&b[from..to]),
                        None => out[blo..bhi].fill(T::zero()),
                    }
                    for (&j, &a) in self.idx.iter().zip(&self.val) {
                        let ha = h * a;
                        let kj = &k[j * dim + from..j * dim + to];
                        for (o, &x) in out[blo..bhi].iter_mut().zip(kj) {
                            *o = *o + ha * x;
                        }
                    }
                }
            }
        }
    }

    /// `out = base + h Σ_j self_j k_j` and `err = h Σ_j other_j k_j` in one pass over the
    /// stages, for two rows of the same `N ≤ 8` terms (`None` for other lengths): each
    /// element summed in its row's order, so the bits of two [`Row::sum_into`] calls.
    #[inline(always)]
    fn sum_pair(
        &self,
        other: &Row<T>,
        base: &[T],
        h: T,
        k: &[T],
        dim: usize,
        out: &mut [T],
        err: &mut [T],
    ) -> Option<()> {
        match (self.idx.len(), other.idx.len()) {
            (3, 3) => self.pair::<3>(other, base, h, k, dim, out, err),
            (5, 5) => self.pair::<5>(other, base, h, k, dim, out, err),
            (6, 6) => self.pair::<6>(other, base, h, k, dim, out, err),
            _ => return None,
        }
        Some(())
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn pair<const N: usize>(
        &self,
        other: &Row<T>,
        base: &[T],
        h: T,
        k: &[T],
        dim: usize,
        out: &mut [T],
        err: &mut [T],
    ) {
        let ha: [T; N] = std::array::from_fn(|j| h * self.val[j]);
        let he: [T; N] = std::array::from_fn(|j| h * other.val[j]);
        let ka: [&[T]; N] = std::array::from_fn(|j| &k[self.idx[j] * dim..][..dim]);
        let ke: [&[T]; N] = std::array::from_fn(|j| &k[other.idx[j] * dim..][..dim]);
        let (base, out, err) = (&base[..dim], &mut out[..dim], &mut err[..dim]);
        for i in 0..dim {
            let mut acc = base[i];
            let mut e = T::zero();
            for j in 0..N {
                acc = acc + ha[j] * ka[j][i];
                e = e + he[j] * ke[j][i];
            }
            out[i] = acc;
            err[i] = e;
        }
    }

    /// [`Row::sum_range`] for a row of exactly `N` terms.
    #[inline(always)]
    fn fused<const N: usize>(
        &self,
        base: Option<&[T]>,
        h: T,
        k: &[T],
        dim: usize,
        lo: usize,
        out: &mut [T],
    ) {
        let n = out.len();
        let ha: [T; N] = std::array::from_fn(|j| h * self.val[j]);
        let ks: [&[T]; N] = std::array::from_fn(|j| &k[self.idx[j] * dim + lo..][..n]);
        match base {
            Some(b) => {
                let b = &b[lo..lo + n];
                for i in 0..n {
                    let mut acc = b[i];
                    for j in 0..N {
                        acc = acc + ha[j] * ks[j][i];
                    }
                    out[i] = acc;
                }
            }
            None => {
                for i in 0..n {
                    let mut acc = T::zero();
                    for j in 0..N {
                        acc = acc + ha[j] * ks[j][i];
                    }
                    out[i] = acc;
                }
            }
        }
    }
}

/// Error weights in the solver's float.
#[derive(Debug, Clone)]
enum ErrorRows<T> {
    None,
    Embedded(Row<T>),
    Dop853(Row<T>, Row<T>),
}

/// The scaled error norm `‖err_i / (atol_i + rtol_i·max(|y0_i|, |y1_i|))‖` over the
/// controlled components.
struct ErrorNorm<T> {
    rtol: Vec<T>,
    atol: Vec<T>,
    /// `(atol, rtol)` when every component has the same: the wide loops then read two
    /// vectors fewer per pass (the error norm reads 9 instead of 11 state vectors).
    uniform: Option<(T, T)>,
    mask: Option<Vec<bool>>,
    norm: Norm,
    scaled: Vec<T>,
    scaled64: Vec<f64>,
}

impl<T: Real> ErrorNorm<T> {
    /// `(atol, rtol)` if every component's pair is the first's.
    fn uniform_of(atol: &[T], rtol: &[T]) -> Option<(T, T)> {
        let (&a, &r) = (atol.first()?, rtol.first()?);
        (atol.iter().all(|&x| x == a) && rtol.iter().all(|&x| x == r)).then_some((a, r))
    }

    #[inline(always)]
    fn eval(&mut self, v: &[T], y0: &[T], y1: &[T]) -> T {
        if self.mask.is_none() {
            let norm = match v.len() {
                1 => self.small::<1>(v, y0, y1),
                2 => self.small::<2>(v, y0, y1),
                3 => self.small::<3>(v, y0, y1),
                4 => self.small::<4>(v, y0, y1),
                5 => self.small::<5>(v, y0, y1),
                6 => self.small::<6>(v, y0, y1),
                7 => self.small::<7>(v, y0, y1),
                n => crate::simd::dispatch(
                    n,
                    #[inline(always)]
                    || self.dense(v, y0, y1),
                ),
            };
            if let Some(norm) = norm {
                return norm;
            }
        }
        let mut n = 0;
        for i in 0..v.len() {
            if self.mask.as_ref().is_some_and(|m| !m[i]) {
                continue;
            }
            let sc = self.atol[i] + self.rtol[i] * abs_max(y0[i], y1[i]);
            self.scaled[n] = v[i] / sc;
            n += 1;
        }
        if n == 0 {
            return T::zero();
        }
        match self.norm {
            Norm::Rms => {
                let ss = self.scaled.iter().fold(T::zero(), |acc, &x| acc + x * x);
                (ss / T::lit(n as f64)).sqrt()
            }
            Norm::Max => self.scaled.iter().fold(T::zero(), |acc, &x| acc.max(x.abs())),
            Norm::Custom(f) => {
                for (o, x) in self.scaled64.iter_mut().zip(&self.scaled) {
                    *o = x.to_f64_lossless();
                }
                T::lit(f(&self.scaled64))
            }
        }
    }

    /// The norm of the error estimate `h Σ_j row_j k_j` (over `y0`'s length) without
    /// storing the estimate: 64 components at a time into a block on the stack, folded into
    /// [`ErrorNorm::dense`]'s eight lanes in the same order, so the same bits as storing it
    /// and calling [`ErrorNorm::eval`], two passes over the state fewer. `None` for a
    /// masked or custom norm.
    #[inline(always)]
    fn embedded(&self, row: &Row<T>, h: T, k: &[T], y0: &[T], y1: &[T]) -> Option<T> {
        match (&self.mask, self.norm) {
            (None, Norm::Rms) => Some(self.embedded_lanes::<true>(row, h, k, y0, y1)),
            (None, Norm::Max) => Some(self.embedded_lanes::<false>(row, h, k, y0, y1)),
            _ => None,
        }
    }

    #[inline(always)]
    fn embedded_lanes<const RMS: bool>(
        &self,
        row: &Row<T>,
        h: T,
        k: &[T],
        y0: &[T],
        y1: &[T],
    ) -> T {
        let n = y0.len();
        let (mut lanes, mut block) = (Lanes::<T, RMS>::new(), [T::zero(); 64]);
        for lo in (0..n).step_by(64) {
            let hi = (lo + 64).min(n);
            let e = &mut block[..hi - lo];
            row.sum_range(None, h, k, n, lo, e);
            self.scale_block(lo, y0, y1, e);
            lanes.add_block(e);
        }
        lanes.finish(n)
    }

    /// The norm of `partial + hl·k_last` (the error estimate whose terms before the last
    /// stage [`Row::sum_pair`] summed with the stage's input), without storing it: the bits
    /// of [`ErrorNorm::embedded`] over the whole row. `None` for a masked or custom norm.
    #[inline(always)]
    fn embedded_last(&self, partial: &[T], hl: T, k_last: &[T], y0: &[T], y1: &[T]) -> Option<T> {
        match (&self.mask, self.norm) {
            (None, Norm::Rms) => Some(self.last_lanes::<true>(partial, hl, k_last, y0, y1)),
            (None, Norm::Max) => Some(self.last_lanes::<false>(partial, hl, k_last, y0, y1)),
            _ => None,
        }
    }

    #[inline(always)]
    fn last_lanes<const RMS: bool>(
        &self,
        partial: &[T],
        hl: T,
        k_last: &[T],
        y0: &[T],
        y1: &[T],
    ) -> T {
        let n = y0.len();
        let (partial, k_last) = (&partial[..n], &k_last[..n]);
        let (mut lanes, mut block) = (Lanes::<T, RMS>::new(), [T::zero(); 64]);
        for lo in (0..n).step_by(64) {
            let hi = (lo + 64).min(n);
            let e = &mut block[..hi - lo];
            for ((e, &p), &x) in e.iter_mut().zip(&partial[lo..hi]).zip(&k_last[lo..hi]) {
                *e = p + hl * x;
            }
            self.scale_block(lo, y0, y1, e);
            lanes.add_block(e);
        }
        lanes.finish(n)
    }

    /// `e_i /= atol_i + rtol_i·max(|y0_i|, |y1_i|)` for the components `lo..lo + e.len()`:
    /// one element-wise loop, which vectorises at the unit's full width (folding each
    /// quotient into the lanes in the same loop kept it to 128- and 256-bit pieces).
    #[inline(always)]
    fn scale_block(&self, lo: usize, y0: &[T], y1: &[T], e: &mut [T]) {
        let hi = lo + e.len();
        let (y0, y1) = (&y0[lo..hi], &y1[lo..hi]);
        if let Some((a, r)) = self.uniform {
            for ((e, &y0), &y1) in e.iter_mut().zip(y0).zip(y1) {
                *e = *e / (a + r * abs_max(y0, y1));
            }
        } else {
            let tols = self.atol[lo..hi].iter().zip(&self.rtol[lo..hi]);
            for (((e, &y0), &y1), (&a, &r)) in e.iter_mut().zip(y0).zip(y1).zip(tols) {
                *e = *e / (a + r * abs_max(y0, y1));
            }
        }
    }

    /// [`ErrorNorm::dense`] for exactly `N < 8` components, in registers: the same
    /// eight lanes (lane `i` holds component `i`, the others 0) and the same sums.
    #[inline(always)]
    fn small<const N: usize>(&self, v: &[T], y0: &[T], y1: &[T]) -> Option<T> {
        match self.norm {
            Norm::Rms => Some(self.small_lanes::<N, true>(v, y0, y1)),
            Norm::Max => Some(self.small_lanes::<N, false>(v, y0, y1)),
            Norm::Custom(_) => None,
        }
    }

    #[inline(always)]
    fn small_lanes<const N: usize, const RMS: bool>(&self, v: &[T], y0: &[T], y1: &[T]) -> T {
        let (v, y0, y1) = (&v[..N], &y0[..N], &y1[..N]);
        let (atol, rtol) = (&self.atol[..N], &self.rtol[..N]);
        let mut lanes = Lanes::<T, RMS>::new();
        for i in 0..N {
            lanes.add(i, v[i] / (atol[i] + rtol[i] * abs_max(y0[i], y1[i])));
        }
        lanes.finish(N)
    }

    /// The RMS or max norm over every component in one pass, with 8 partial sums (a fixed
    /// order, so the same bits on every CPU); `None` for a custom norm.
    #[inline(always)]
    fn dense(&self, v: &[T], y0: &[T], y1: &[T]) -> Option<T> {
        match self.norm {
            Norm::Rms => Some(self.dense_lanes::<true>(v, y0, y1)),
            Norm::Max => Some(self.dense_lanes::<false>(v, y0, y1)),
            Norm::Custom(_) => None,
        }
    }

    #[inline(always)]
    fn dense_lanes<const RMS: bool>(&self, v: &[T], y0: &[T], y1: &[T]) -> T {
        let n = v.len();
        let (mut lanes, mut block) = (Lanes::<T, RMS>::new(), [T::zero(); 64]);
        for lo in (0..n).step_by(64) {
            let hi = (lo + 64).min(n);
            let e = &mut block[..hi - lo];
            e.copy_from_slice(&v[lo..hi]);
            self.scale_block(lo, y0, y1, e);
            lanes.add_block(e);
        }
        lanes.finish(n)
    }
}

/// The eight partial results of an RMS (`RMS`) or max norm, component `i` in lane
/// `i mod 8`, combined in one fixed order: the same bits on every CPU and every path.
struct Lanes<T, const RMS: bool> {
    acc: [T; 8],
    /// `Σ 0·x` per lane: NaN when a term is NaN, which `max` alone would drop.
    nan: [T; 8],
}

impl<T: Real, const RMS: bool> Lanes<T, RMS> {
    #[inline(always)]
    fn new() -> Self {
        Lanes { acc: [T::zero(); 8], nan: [T::zero(); 8] }
    }

    #[inline(always)]
    fn add(&mut self, l: usize, x: T) {
        if RMS {
            self.acc[l] = self.acc[l] + x * x;
        } else {
            self.acc[l] = self.acc[l].max(x.abs());
            self.nan[l] = self.nan[l] + x * T::zero();
        }
    }

    /// Folds a block whose first value is component `8m` (lane `i mod 8` for its `i`-th).
    #[inline(always)]
    fn add_block(&mut self, xs: &[T]) {
        let mut chunks = xs.chunks_exact(8);
        for c in &mut chunks {
            for (l, &x) in c.iter().enumerate() {
                self.add(l, x);
            }
        }
        for (l, &x) in chunks.remainder().iter().enumerate() {
            self.add(l, x);
        }
    }

    /// The norm over `n` components.
    #[inline(always)]
    fn finish(&self, n: usize) -> T {
        let acc = &self.acc;
        if RMS {
            if n == 0 {
                return T::zero();
            }
            let ss =
                ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            (ss / T::lit(n as f64)).sqrt()
        } else {
            let nan = self.nan.iter().fold(T::zero(), |s, &x| s + x);
            acc.iter().fold(nan, |m, &a| m.max(a)) + nan
        }
    }
}

/// `max(|a|, |b|)` as one compare-and-select (`vmaxpd`): `f64::max`'s NaN rule (the other
/// operand wins) adds a compare and a masked move per lane. The same value for numbers;
/// for a NaN `b` it is NaN (so is the norm: a rejected step), where `max` gave `|a|`: a
/// NaN in `y_{n+1}` is rejected either way. (With [`ErrorNorm::scale_block`] the error
/// norm's loop runs on full-width vectors; its time on the 2048-dim Van der Pol is then the
/// divisions', and the solve's 0.99x of the time before.)
#[inline(always)]
fn abs_max<T: Real>(a: T, b: T) -> T {
    let (a, b) = (a.abs(), b.abs());
    if a > b {
        a
    } else {
        b
    }
}

/// `dy = f(t, y)`, with the call (and the right-hand side, where it inlines: a closure)
/// compiled for the CPU's widest vector unit on states of [`crate::simd::WIDE_FROM`] or
/// more components: a user's closure field is compiled for the baseline target otherwise
/// (SSE2 on x86-64); the 2048-dim Van der Pol of `benches/peers` ran in 0.95-0.99x of the
/// undispatched time. This is the one vector-unit copy made per system, and it holds only
/// the call; a field that does not inline (a neural field's executor) costs three small
/// copies of its call.
#[inline(always)]
fn call_rhs<T: Real, S: OdeSystem<T> + ?Sized>(
    system: &S,
    t: T,
    y: &[T],
    dy: &mut [T],
) -> Result<(), Error> {
    crate::simd::dispatch(
        y.len(),
        #[inline(always)]
        || system.rhs(t, y, dy),
    )
    .map_err(|e| rhs_failed(t, e))
}

/// The explicit Runge-Kutta kernel for one trajectory of dimension `dim`.
pub struct RkIntegrator<'s, T: Real, S: OdeSystem<T> + ?Sized> {
    // A thin shell over `Core`: only the right-hand-side calls depend on the system `S`;
    // the stage combinations, error norm, step-size control and dense output are
    // `Core<T>`'s, compiled once per float type instead of once per system (they were 85%
    // of the machine code each system instantiated: `error_norm` alone 150 KB, with its
    // vector-unit copies), and for `f64`/`f32` in this crate only (`Real`'s `rk_*`).
    system: &'s S,
    core: Core<T>,
}

/// Proof of being inside this crate: the argument of `Real::rk_new`, so `Core`s exist only
/// inside `RkIntegrator`s.
#[doc(hidden)]
pub struct Token(());

/// Everything of an [`RkIntegrator`] but its system: buffers, coefficients, options and
/// the step's state. Its methods are generic over the float only, and the heavy ones are
/// reached through [`Real`]'s hidden `rk_*` methods, so that for `f64` and `f32` they are
/// compiled in this crate only (see `real.rs`).
#[doc(hidden)]
pub struct Core<T: Real> {
    tableau: &'static Tableau,
    dim: usize,
    stages: usize,
    total_stages: usize,
    fsal: bool,
    c: Vec<T>,
    rows: Vec<Row<T>>,
    b: Row<T>,
    error: ErrorRows<T>,
    /// An embedded FSAL pair's error row split at the last stage: its terms before it
    /// (summed in the same pass as the last stage's input, which is `y_{n+1}`) and the
    /// last stage's (nonzero) weight. `None` where that does not apply or a state is
    /// under 8 long.
    err_split: Option<(Row<T>, T)>,
    /// Whether `err` holds the split's partial sum for the step just computed.
    err_partial: bool,
    dense_degree: usize,
    dense: Vec<T>,
    // Options in T.
    enorm: ErrorNorm<T>,
    pid: [T; 3],
    safety: T,
    factor_min: T,
    factor_max: T,
    dt_min: T,
    dt_max: T,
    first_step: Option<T>,
    max_steps: usize,
    // State.
    t: T,
    y: Vec<T>,
    t_prev: T,
    y_prev: Vec<T>,
    h_prev: T,
    h_abs: T,
    direction: T,
    t_bound: T,
    k: Vec<T>,
    k0_valid: bool,
    fsal_pending: bool,
    extra_ready: bool,
    inv_err_hist: [T; 2],
    nonfinite_run: usize,
    stats: Stats,
    // Scratch.
    y_new: Vec<T>,
    ytmp: Vec<T>,
    err: Vec<T>,
    err3: Vec<T>,
    weights: Vec<T>,
}

fn check_tolerance(
    name: &'static str,
    tol: &Tolerance,
    dim: usize,
    positive: bool,
) -> Result<Vec<f64>, Error> {
    let values = match tol {
        Tolerance::Scalar(x) => vec![*x; dim],
        Tolerance::PerComponent(v) => {
            if v.len() != dim {
                return Err(Error::DimensionMismatch { what: name, expected: dim, got: v.len() });
            }
            v.clone()
        }
    };
    let bad = |x: f64| !x.is_finite() || if positive { x <= 0.0 } else { x < 0.0 };
    // Checked on its own too, so a bad scalar is caught even for an empty state.
    if let Tolerance::Scalar(x) = tol {
        if bad(*x) {
            return Err(Error::InvalidTolerance { name, value: *x });
        }
    }
    match values.iter().find(|&&x| bad(x)) {
        Some(&value) => Err(Error::InvalidTolerance { name, value }),
        None => Ok(values),
    }
}

fn check_step(what: &'static str, h: f64, allow_zero: bool, allow_inf: bool) -> Result<(), Error> {
    let ok = !h.is_nan() && (h > 0.0 || (allow_zero && h == 0.0)) && (h.is_finite() || allow_inf);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidStepSize { what, value: h })
    }
}

fn check_controller(c: &crate::PidController) -> Result<(), Error> {
    let checks = [
        ("pcoeff", c.pcoeff, c.pcoeff.is_finite()),
        ("icoeff", c.icoeff, c.icoeff.is_finite()),
        ("dcoeff", c.dcoeff, c.dcoeff.is_finite()),
        ("safety", c.safety, c.safety > 0.0 && c.safety <= 1.0),
        ("factor_min", c.factor_min, c.factor_min > 0.0 && c.factor_min <= 1.0),
        ("factor_max", c.factor_max, c.factor_max >= 1.0 && c.factor_max.is_finite()),
    ];
    match checks.iter().find(|c| !c.2) {
        Some(&(what, value, _)) => Err(Error::InvalidController { what, value }),
        None => Ok(()),
    }
}

impl<T: Real> Core<T> {
    /// Validates `opts` and allocates every buffer (see [`RkIntegrator::new`]).
    pub(crate) fn new_here(dim: usize, opts: &Options) -> Result<Self, Error> {
        let tableau = opts.method.tableau().ok_or_else(|| Error::UnsupportedMethod {
            method: opts.method.name(),
            detail: "not a Runge-Kutta method; use odeint".into(),
        })?;
        let rtol = check_tolerance("rtol", &opts.rtol, dim, true)?;
        let atol = check_tolerance("atol", &opts.atol, dim, false)?;
        let mask = match &opts.layout {
            Some(layout) => {
                layout.check(dim)?;
                (!layout.all_controlled()).then(|| layout.mask())
            }
            None => None,
        };
        check_step("dt_min", opts.dt_min, true, false)?;
        check_step("dt_max", opts.dt_max, false, true)?;
        if opts.dt_min > opts.dt_max {
            return Err(Error::InvalidStepSize {
                what: "dt_min (above dt_max)",
                value: opts.dt_min,
            });
        }
        if let Some(h) = opts.first_step {
            check_step("first_step", h, false, false)?;
        }
        check_controller(&opts.controller)?;
        if let Some(h) = opts.step_size {
            check_step("step_size", h, false, false)?;
        }
        // A tolerance that is positive in f64 may underflow to zero in the solver's float.
        let rtol_t: Vec<T> = rtol.iter().map(|&x| T::lit(x)).collect();
        let atol_t: Vec<T> = atol.iter().map(|&x| T::lit(x)).collect();
        if let Some(i) = rtol_t.iter().position(|&x| x <= T::zero()) {
            return Err(Error::InvalidTolerance {
                name: "rtol (underflows in this float type)",
                value: rtol[i],
            });
        }
        let s = tableau.stages();
        let total = s + tableau.dense.extra_c.len();
        let c = tableau.c.iter().chain(&tableau.dense.extra_c).map(|&x| T::lit(x)).collect();
        let rows = tableau.a.iter().chain(&tableau.dense.extra_a).map(|r| Row::new(r)).collect();
        let error = match &tableau.error {
            ErrorEstimate::None => ErrorRows::None,
            ErrorEstimate::Embedded { weights, .. } => ErrorRows::Embedded(Row::new(weights)),
            ErrorEstimate::Dop853 { e5, e3 } => ErrorRows::Dop853(Row::new(e5), Row::new(e3)),
        };
        let err_split = match &tableau.error {
            ErrorEstimate::Embedded { weights, .. } if tableau.is_fsal() && dim >= 8 => {
                let last = s - 1;
                let before: Vec<f64> = weights
                    .iter()
                    .enumerate()
                    .map(|(j, &w)| if j < last { w } else { 0.0 })
                    .collect();
                let partial = Row::new(&before);
                let w_last = weights.get(last).copied().filter(|&w| w != 0.0);
                let pairs = matches!(
                    (partial.idx.len(), Row::<T>::new(&tableau.b).idx.len()),
                    (3, 3) | (5, 5) | (6, 6)
                );
                let only_before = weights.iter().skip(last + 1).all(|&w| w == 0.0);
                w_last.filter(|_| pairs && only_before).map(|w| (partial, T::lit(w)))
            }
            _ => None,
        };
        let degree = tableau.dense.weights.iter().map(Vec::len).max().unwrap_or(1);
        let mut dense = vec![T::zero(); total * degree];
        for (j, w) in tableau.dense.weights.iter().enumerate() {
            for (d, &x) in w.iter().enumerate() {
                dense[j * degree + d] = T::lit(x);
            }
        }
        let q = tableau.error_order().unwrap_or(tableau.order);
        let ctl = &opts.controller;
        let k = f64::from(q + 1);
        let pid = [
            (ctl.pcoeff + ctl.icoeff + ctl.dcoeff) / k,
            -(ctl.pcoeff + 2.0 * ctl.dcoeff) / k,
            ctl.dcoeff / k,
        ];
        let controlled = mask.as_ref().map_or(dim, |m| m.iter().filter(|&&x| x).count());
        // Each state vector of 4 KiB or more gets 192 bytes of spare capacity. Allocated
        // one after the other, as here, the vectors then start at different offsets within
        // a page, so a step's loads from one do not wait on its stores to another at the
        // same low 12 address bits (4K aliasing). That relies on the allocator placing
        // them in order (glibc does, below its 128 KiB mapping threshold); where it does
        // not, nothing changes but the spare bytes. Van der Pol 2048: 0.962-0.964x
        // (`benches/peers/ab.sh`, 6 rounds, Zen 4 EPYC); the small states get none.
        let size = std::mem::size_of::<T>().max(1);
        let spare = if dim.saturating_mul(size) >= 4096 { 192 / size } else { 0 };
        let zeros = || {
            let mut v = Vec::with_capacity(dim.saturating_add(spare));
            v.resize(dim, T::zero());
            v
        };
        Ok(Core {
            tableau,
            dim,
            stages: s,
            total_stages: total,
            fsal: tableau.is_fsal(),
            c,
            rows,
            b: Row::new(&tableau.b),
            error,
            err_split,
            err_partial: false,
            dense_degree: degree,
            dense,
            enorm: ErrorNorm {
                uniform: ErrorNorm::uniform_of(&atol_t, &rtol_t),
                rtol: rtol_t,
                atol: atol_t,
                mask,
                norm: opts.norm,
                scaled: vec![T::zero(); controlled],
                scaled64: if matches!(opts.norm, Norm::Custom(_)) {
                    vec![0.0; controlled]
                } else {
                    vec![]
                },
            },
            pid: pid.map(T::lit),
            safety: T::lit(ctl.safety),
            factor_min: T::lit(ctl.factor_min),
            factor_max: T::lit(ctl.factor_max),
            dt_min: T::lit(opts.dt_min),
            dt_max: T::lit(opts.dt_max),
            first_step: opts.first_step.or(opts.step_size).map(T::lit),
            max_steps: opts.max_steps,
            t: T::zero(),
            y: zeros(),
            t_prev: T::zero(),
            y_prev: zeros(),
            h_prev: T::zero(),
            h_abs: T::zero(),
            direction: T::one(),
            t_bound: T::zero(),
            k: vec![T::zero(); total * dim],
            k0_valid: false,
            fsal_pending: false,
            extra_ready: false,
            inv_err_hist: [T::one(); 2],
            nonfinite_run: 0,
            stats: Stats::default(),
            y_new: zeros(),
            ytmp: zeros(),
            err: zeros(),
            err3: zeros(),
            weights: vec![T::zero(); total],
        })
    }

    fn init(&mut self, t0: T, y0: &[T], t_bound: T) -> Result<(), Error> {
        if y0.len() != self.dim {
            return Err(Error::DimensionMismatch { what: "y0", expected: self.dim, got: y0.len() });
        }
        if let Some(index) = y0.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFiniteInput { what: "y0", index });
        }
        if !t0.is_finite() {
            return Err(Error::NonFiniteInput { what: "t0", index: 0 });
        }
        if !t_bound.is_finite() {
            return Err(Error::NonFiniteInput { what: "t_bound", index: 0 });
        }
        self.t = t0;
        self.y.copy_from_slice(y0);
        self.t_prev = t0;
        self.y_prev.copy_from_slice(y0);
        self.h_prev = T::zero();
        self.k0_valid = false;
        self.fsal_pending = false;
        self.extra_ready = false;
        self.inv_err_hist = [T::one(); 2];
        self.nonfinite_run = 0;
        self.set_bound(t_bound)?;
        self.h_abs = T::zero();
        Ok(())
    }

    fn set_bound(&mut self, t_bound: T) -> Result<(), Error> {
        if !t_bound.is_finite() {
            return Err(Error::NonFiniteInput { what: "t_bound", index: 0 });
        }
        self.t_bound = t_bound;
        if t_bound != self.t {
            self.direction = (t_bound - self.t).signum();
        }
        Ok(())
    }

    /// The input (`ytmp` or `y`) and output slot (stage `stage`) of an evaluation,
    /// counted.
    #[inline(always)]
    fn eval_io(&mut self, stage: usize, from_ytmp: bool) -> (&[T], &mut [T]) {
        let dim = self.dim;
        self.stats.nfe += 1;
        let out = &mut self.k[stage * dim..(stage + 1) * dim];
        let y = if from_ytmp { &self.ytmp } else { &self.y };
        (y, out)
    }

    /// Moves a pending FSAL stage into `k[0]`; whether `k[0] = f(t, y)` then holds.
    #[inline(always)]
    fn k0_from_fsal(&mut self) -> bool {
        if self.fsal_pending {
            let dim = self.dim;
            let last = (self.stages - 1) * dim;
            self.k.copy_within(last..last + dim, 0);
            self.fsal_pending = false;
            self.k0_valid = true;
        }
        self.k0_valid
    }

    /// Stage `i`'s time, input (`y + h Σ_{j<i} a_ij k_j`, summed here) and output slot, of
    /// a step of size `h` ending at `t_new`; counts the evaluation. The FSAL stage's input
    /// is `y_{n+1}` itself, summed in one pass with the error estimate's terms before it
    /// where the method's rows allow.
    pub(crate) fn stage_io_here(&mut self, i: usize, h: T, t_new: T) -> (T, &[T], &mut [T]) {
        if self.dim >= 8 {
            return self.stage_io_wide(i, h, t_new);
        }
        self.stage_io_summed(i, h, t_new)
    }

    /// [`Core::stage_io_here`] for 8 or more components, out of line: the small states'
    /// path then keeps a short prologue (Lotka-Volterra and Arenstorf 0.94-0.97x).
    #[inline(never)]
    fn stage_io_wide(&mut self, i: usize, h: T, t_new: T) -> (T, &[T], &mut [T]) {
        let dim = self.dim;
        if self.fsal && i == self.stages - 1 {
            if let Some((partial, _)) = &self.err_split {
                let (row, y, done) = (&self.rows[i], &self.y, &self.k[..i * dim]);
                let (y_new, err) = (&mut self.y_new, &mut self.err);
                let paired = crate::simd::dispatch(
                    dim,
                    #[inline(always)]
                    || row.sum_pair(partial, y, h, done, dim, y_new, err),
                );
                if paired.is_some() {
                    self.stats.nfe += 1;
                    self.err_partial = true;
                    return (t_new, &self.y_new, &mut self.k[i * dim..(i + 1) * dim]);
                }
            }
        }
        self.stage_io_summed(i, h, t_new)
    }

    /// [`Core::stage_io_here`] with the stage's input summed on its own (`ytmp`, or
    /// `y_{n+1}` for the FSAL stage).
    #[inline(always)]
    fn stage_io_summed(&mut self, i: usize, h: T, t_new: T) -> (T, &[T], &mut [T]) {
        let dim = self.dim;
        self.stats.nfe += 1;
        let (done, rest) = self.k.split_at_mut(i * dim);
        let last = self.fsal && i == self.stages - 1;
        let input = if last { &mut self.y_new } else { &mut self.ytmp };
        let ti = if self.c[i] == T::one() { t_new } else { self.t + self.c[i] * h };
        self.rows[i].combine(&self.y, h, done, dim, input);
        (ti, input, &mut rest[..dim])
    }

    /// `y_{n+1} = y + h Σ b_i k_i` for a method that does not get it from its last stage.
    pub(crate) fn end_of_step_here(&mut self, h: T) {
        if !self.fsal {
            self.b.combine(&self.y, h, &self.k, self.dim, &mut self.y_new);
        }
    }

    /// The error norm of the step just computed (0 for a fixed-step method). An embedded
    /// estimate on fewer than 8 components is summed and measured here, inline; the rest
    /// out of line, so that the small states' path keeps a short prologue.
    #[inline(always)]
    fn error_norm(&mut self, h: T) -> T {
        if self.dim < 8 {
            if let ErrorRows::Embedded(e) = &self.error {
                e.combine_zero(h, &self.k, self.dim, &mut self.err);
                return self.enorm.eval(&self.err, &self.y, &self.y_new);
            }
        }
        self.error_norm_general(h)
    }

    /// [`Core::error_norm`] for every method and size.
    #[inline(never)]
    fn error_norm_general(&mut self, h: T) -> T {
        let dim = self.dim;
        match &self.error {
            ErrorRows::None => T::zero(),
            ErrorRows::Embedded(_) if self.err_partial => {
                let hl = self.err_split.as_ref().map_or(T::zero(), |&(_, w)| h * w);
                let last = self.stages - 1;
                let k_last = &self.k[last * dim..(last + 1) * dim];
                let (enorm, partial, y, y_new) = (&self.enorm, &self.err, &self.y, &self.y_new);
                if let Some(norm) = crate::simd::dispatch(
                    dim,
                    #[inline(always)]
                    || enorm.embedded_last(partial, hl, k_last, y, y_new),
                ) {
                    return norm;
                }
                for (e, &x) in self.err[..dim].iter_mut().zip(k_last) {
                    *e = *e + hl * x;
                }
                self.enorm.eval(&self.err, &self.y, &self.y_new)
            }
            ErrorRows::Embedded(e) => {
                // (States under 8 components stopped in `error_norm`.)
                let (enorm, k, y, y_new) = (&self.enorm, &self.k, &self.y, &self.y_new);
                if let Some(norm) = crate::simd::dispatch(
                    dim,
                    #[inline(always)]
                    || enorm.embedded(e, h, k, y, y_new),
                ) {
                    return norm;
                }
                e.combine_zero(h, &self.k, dim, &mut self.err);
                self.enorm.eval(&self.err, &self.y, &self.y_new)
            }
            ErrorRows::Dop853(e5, e3) => {
                e5.combine_zero(h, &self.k, dim, &mut self.err);
                e3.combine_zero(h, &self.k, dim, &mut self.err3);
                let n5 = self.enorm.eval(&self.err, &self.y, &self.y_new);
                let n3 = self.enorm.eval(&self.err3, &self.y, &self.y_new);
                if n5 == T::zero() {
                    T::zero()
                } else {
                    n5 * n5 / (n5 * n5 + T::lit(0.01) * n3 * n3).sqrt()
                }
            }
        }
    }

    /// Hairer's initial step (Solving ODEs I, §II.4), the part before its one evaluation:
    /// `h0` and `d1 = ‖f0‖`, with `ytmp = y0 + h0 f0` (evaluated into the last stage's
    /// slot, which no one reads yet).
    #[inline(never)]
    pub(crate) fn initial_step_begin_here(&mut self) -> Result<(T, T), Error> {
        let dim = self.dim;
        // A non-finite derivative at the start is the right-hand side's fault, not a step
        // size that underflowed.
        if !self.k[..dim].iter().all(|x| x.is_finite()) {
            return Err(Error::NonFinite { t: self.t.to_f64_lossless() });
        }
        let (y, f0) = (&self.y, &self.k[..dim]);
        let d0 = self.enorm.eval(y, y, y);
        let d1 = self.enorm.eval(f0, y, y);
        let small = T::lit(1e-5);
        let h0 = if d0 < small || d1 < small { T::lit(1e-6) } else { T::lit(0.01) * d0 / d1 };
        let h0 = h0.min((self.t_bound - self.t).abs());
        for i in 0..dim {
            self.ytmp[i] = self.y[i] + self.direction * h0 * self.k[i];
        }
        Ok((h0, d1))
    }

    /// The initial step from `h0`, `d1` and `f(t0 + h0, y0 + h0 f0)` in the last stage's
    /// slot.
    #[inline(never)]
    pub(crate) fn initial_step_end_here(&mut self, h0: T, d1: T) -> T {
        let dim = self.dim;
        let slot = self.stages - 1;
        for i in 0..dim {
            self.err[i] = (self.k[slot * dim + i] - self.k[i]) / h0;
        }
        let d2 = self.enorm.eval(&self.err, &self.y, &self.y);
        let order =
            T::lit(f64::from(self.tableau.error_order().unwrap_or(self.tableau.order)) + 1.0);
        let h1 = if d1.max(d2) <= T::lit(1e-15) {
            T::lit(1e-6).max(h0 * T::lit(1e-3))
        } else {
            (T::lit(0.01) / d1.max(d2)).powf(order.recip())
        };
        (T::lit(100.0) * h0).min(h1)
    }

    fn check_budget(&self) -> Result<(), Error> {
        if self.stats.accepted + self.stats.rejected >= self.max_steps {
            return Err(Error::MaxStepsReached {
                t: self.t.to_f64_lossless(),
                steps: self.max_steps,
            });
        }
        Ok(())
    }

    fn accept(&mut self, t_new: T, h: T) {
        std::mem::swap(&mut self.y_prev, &mut self.y);
        std::mem::swap(&mut self.y, &mut self.y_new);
        self.t_prev = self.t;
        self.t = t_new;
        self.h_prev = h;
        self.stats.accepted += 1;
        self.extra_ready = false;
        if self.fsal {
            self.fsal_pending = true;
        } else {
            self.k0_valid = false;
        }
    }

    /// The next adaptive step's `(h, t_new, |h| before clipping to the bound)`, or why
    /// there is none.
    fn propose(&self) -> Result<(T, T, T), Error> {
        let remaining = (self.t_bound - self.t).abs();
        let mut h_abs = self.h_abs.min(self.dt_max);
        let last = h_abs >= remaining;
        if last {
            h_abs = remaining;
        }
        let t_new = if last { self.t_bound } else { self.t + self.direction * h_abs };
        let h = t_new - self.t;
        if h == T::zero() || (!last && h_abs < self.dt_min) {
            if self.nonfinite_run > 0 {
                return Err(Error::NonFinite { t: self.t.to_f64_lossless() });
            }
            return Err(Error::StepSizeTooSmall {
                t: self.t.to_f64_lossless(),
                h: h.to_f64_lossless(),
            });
        }
        Ok((h, t_new, h_abs))
    }

    /// Error control of the step just computed: accepts it or not, and sizes the next.
    #[inline(never)]
    pub(crate) fn control_here(&mut self, h: T, t_new: T, h_abs: T) -> Result<StepOutcome, Error> {
        let err = self.error_norm(h);
        let finite = err.is_finite() && crate::simd::all_finite(&self.y_new);
        if !finite {
            self.stats.rejected += 1;
            self.nonfinite_run += 1;
            if self.nonfinite_run > 30 {
                return Err(Error::NonFinite { t: self.t.to_f64_lossless() });
            }
            self.h_abs = h_abs * self.factor_min;
            return Ok(StepOutcome::Rejected);
        }
        self.nonfinite_run = 0;
        let inv = if err == T::zero() { T::infinity() } else { err.recip() };
        // x^0 = 1 for the I controller's zero exponents: skip those. The others as
        // `exp(e ln x)`: a step-size factor needs no correctly rounded power, and libm's
        // `pow` took half of a small system's solve (Arenstorf, `perf`), `ln` + `exp` a
        // fraction of it, with relative error ~1e-15.
        let pow = |x: T, e: T| {
            if e == T::zero() {
                T::one()
            } else if x > T::zero() && x.is_finite() {
                (e * x.ln()).exp()
            } else {
                x.powf(e)
            }
        };
        let [b1, b2, b3] = self.pid;
        let factor = self.safety
            * pow(inv, b1)
            * pow(self.inv_err_hist[0], b2)
            * pow(self.inv_err_hist[1], b3);
        let factor = if factor.is_nan() { self.factor_max } else { factor };
        if err <= T::one() {
            self.inv_err_hist = [inv.min(T::lit(1e10)), self.inv_err_hist[0]];
            self.h_abs = h_abs * factor.min(self.factor_max).max(self.factor_min);
            self.accept(t_new, h);
            Ok(StepOutcome::Accepted)
        } else {
            self.stats.rejected += 1;
            self.h_abs = h_abs * factor.min(T::one()).max(self.factor_min);
            Ok(StepOutcome::Rejected)
        }
    }

    /// See [`RkIntegrator::stage_input`].
    pub(crate) fn stage_input_here(&self, i: usize, out: &mut [T]) -> Result<(), Error> {
        let row = self.rows.get(i).ok_or(Error::DimensionMismatch {
            what: "stage index",
            expected: self.total_stages,
            got: i,
        })?;
        if out.len() != self.dim {
            return Err(Error::DimensionMismatch {
                what: "stage input",
                expected: self.dim,
                got: out.len(),
            });
        }
        row.combine(&self.y_prev, self.h_prev, &self.k, self.dim, out);
        Ok(())
    }

    /// The last accepted step's dense output (extra stages evaluated).
    fn segment(&self) -> DenseSegment<T> {
        DenseSegment {
            t0: self.t_prev,
            t1: self.t,
            y0: self.y_prev.clone(),
            y1: self.y.clone(),
            k: self.k.clone(),
        }
    }

    /// Extra (dense-output) stage `e`'s time, input and output slot, counted.
    pub(crate) fn extra_stage_io_here(&mut self, e: usize) -> (T, &[T], &mut [T]) {
        let (h, dim) = (self.h_prev, self.dim);
        self.stats.nfe += 1;
        let te = self.t_prev + self.c[e] * h;
        let (done, rest) = self.k.split_at_mut(e * dim);
        self.rows[e].combine(&self.y_prev, h, done, dim, &mut self.ytmp);
        (te, &self.ytmp, &mut rest[..dim])
    }

    /// Whether the interpolant's extra stages are still to be evaluated in this step.
    fn extra_pending(&self) -> bool {
        !self.extra_ready && self.total_stages > self.stages && self.h_prev != T::zero()
    }

    /// `weights[j] = h·b_j(θ)` at `t = t_prev + θ h` (extra stages evaluated).
    fn weights_at(&mut self, t: T) {
        let h = self.h_prev;
        let theta = (t - self.t_prev) / h;
        let deg = self.dense_degree;
        for j in 0..self.total_stages {
            let w = &self.dense[j * deg..(j + 1) * deg];
            self.weights[j] = w.iter().rev().fold(T::zero(), |acc, &c| acc * theta + c) * h;
        }
    }

    /// The dense output at `t` into `out` (extra stages evaluated).
    #[inline(never)]
    pub(crate) fn interpolate_into_here(&mut self, t: T, out: &mut [T]) {
        let dim = self.dim;
        self.weights_at(t);
        out.copy_from_slice(&self.y_prev);
        for j in 0..self.total_stages {
            let wj = self.weights[j];
            if wj == T::zero() {
                continue;
            }
            for (o, &x) in out.iter_mut().zip(&self.k[j * dim..(j + 1) * dim]) {
                *o = *o + wj * x;
            }
        }
    }
}

impl<'s, T: Real, S: OdeSystem<T> + ?Sized> RkIntegrator<'s, T, S> {
    /// Builds the kernel for `method` on states of length `dim`, validating `opts`. This is
    /// the only place that allocates.
    pub fn new(system: &'s S, dim: usize, opts: &Options) -> Result<Self, Error> {
        Ok(RkIntegrator { system, core: T::rk_new(dim, opts, Token(()))? })
    }

    /// The method's tableau.
    pub fn tableau(&self) -> &'static Tableau {
        self.core.tableau
    }

    /// Starts (or restarts) at `(t0, y0)` integrating towards `t_bound`, which steps never
    /// pass. Choosing the first adaptive step may evaluate the right-hand side twice. The
    /// counters carry over, and with them the step budget (`Options::max_steps` counts the
    /// steps since the last [`RkIntegrator::reset_stats`]): a new solve on a reused
    /// integrator calls both.
    pub fn init(&mut self, t0: T, y0: &[T], t_bound: T) -> Result<(), Error> {
        self.core.init(t0, y0, t_bound)
    }

    /// Moves the end of integration (steps never pass it); a non-finite bound is refused
    /// and leaves the old one in place.
    pub fn set_bound(&mut self, t_bound: T) -> Result<(), Error> {
        self.core.set_bound(t_bound)
    }

    /// Current time.
    pub fn t(&self) -> T {
        self.core.t
    }

    /// Current state.
    pub fn y(&self) -> &[T] {
        &self.core.y
    }

    /// Start of the last accepted step (equal to `t()` before the first step).
    pub fn t_prev(&self) -> T {
        self.core.t_prev
    }

    /// The step size the controller proposes next (signed).
    pub fn proposed_step(&self) -> T {
        self.core.h_abs * self.core.direction
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// Resets the counters.
    pub fn reset_stats(&mut self) {
        self.core.stats = Stats::default();
    }

    fn eval(&mut self, t: T, stage: usize, from_ytmp: bool) -> Result<(), Error> {
        let (y, out) = self.core.eval_io(stage, from_ytmp);
        call_rhs(self.system, t, y, out)
    }

    /// Makes `k[0] = f(t, y)` hold.
    fn ensure_k0(&mut self) -> Result<(), Error> {
        if !self.core.k0_from_fsal() {
            self.eval(self.core.t, 0, false)?;
            self.core.k0_valid = true;
        }
        Ok(())
    }

    /// Computes all stages and `y_new` for a step of size `h` ending at `t_new`.
    fn stages(&mut self, h: T, t_new: T) -> Result<(), Error> {
        self.core.err_partial = false;
        for i in 1..self.core.stages {
            let (ti, input, out) = T::rk_stage_io(&mut self.core, i, h, t_new);
            call_rhs(self.system, ti, input, out)?;
        }
        T::rk_end_of_step(&mut self.core, h);
        Ok(())
    }

    /// Hairer's automatic initial step (Solving ODEs I, §II.4); one extra evaluation.
    fn initial_step(&mut self) -> Result<T, Error> {
        self.ensure_k0()?;
        let (h0, d1) = T::rk_initial_step_begin(&mut self.core)?;
        let slot = self.core.stages - 1;
        self.eval(self.core.t + self.core.direction * h0, slot, true)?;
        Ok(T::rk_initial_step_end(&mut self.core, h0, d1))
    }

    /// One adaptive step attempt towards the bound. Returns `Rejected` when the error was
    /// too large (the state is unchanged and the next call retries with a smaller step).
    pub fn step(&mut self) -> Result<StepOutcome, Error> {
        self.core.check_budget()?;
        if self.core.tableau.error_order().is_none() {
            return Err(Error::MissingStepSize { method: self.core.tableau.name });
        }
        self.ensure_k0()?;
        if self.core.h_abs == T::zero() {
            self.core.h_abs = match self.core.first_step {
                Some(h) => h,
                None => self.initial_step()?,
            };
        }
        let (h, t_new, h_abs) = self.core.propose()?;
        self.stages(h, t_new)?;
        T::rk_control(&mut self.core, h, t_new, h_abs)
    }

    /// One step without error control, landing exactly on `t_next`.
    pub fn step_to(&mut self, t_next: T) -> Result<(), Error> {
        if !t_next.is_finite() {
            return Err(Error::NonFiniteInput { what: "t_next", index: 0 });
        }
        self.core.check_budget()?;
        self.ensure_k0()?;
        let h = t_next - self.core.t;
        if h == T::zero() {
            return Err(Error::StepSizeTooSmall { t: self.core.t.to_f64_lossless(), h: 0.0 });
        }
        self.stages(h, t_next)?;
        if !crate::simd::all_finite(&self.core.y_new) {
            return Err(Error::NonFinite { t: self.core.t.to_f64_lossless() });
        }
        self.core.accept(t_next, h);
        Ok(())
    }

    /// Evaluates the dense output of the last accepted step at `t` (which should lie in
    /// `[t_prev(), t()]`) into `out` (of the state's length). The first call in a step
    /// evaluates the interpolant's extra stages, if it has any.
    pub fn interpolate(&mut self, t: T, out: &mut [T]) -> Result<(), Error> {
        let dim = self.core.dim;
        if out.len() != dim {
            return Err(Error::DimensionMismatch {
                what: "interpolate output",
                expected: dim,
                got: out.len(),
            });
        }
        if self.core.h_prev == T::zero() || t == self.core.t {
            out.copy_from_slice(&self.core.y);
            return Ok(());
        }
        self.ensure_extra_stages()?;
        T::rk_interpolate_into(&mut self.core, t, out);
        Ok(())
    }

    /// Evaluates the extra stages of the interpolant once per step.
    fn ensure_extra_stages(&mut self) -> Result<(), Error> {
        if self.core.extra_pending() {
            for e in self.core.stages..self.core.total_stages {
                let (te, input, out) = T::rk_extra_stage_io(&mut self.core, e);
                call_rhs(self.system, te, input, out)?;
            }
            self.core.extra_ready = true;
        }
        Ok(())
    }

    // The last accepted step opened up, for backpropagation through it (the adjoint
    // layer's direct strategy): with `h = t() - t_prev()`, stage `i` is
    // `k_i = f(stage_time(i), stage_input(i))`, the step's end is
    // `y_prev + h Σ_i b_i k_i` and its dense output `y_prev + Σ_j dense_weights(t)_j k_j`.

    /// Number of stages of the method, with the interpolant's extra stages (which exist
    /// for a step only after [`RkIntegrator::interpolate`] or
    /// [`RkIntegrator::dense_weights`] ran in it).
    pub fn total_stages(&self) -> usize {
        self.core.total_stages
    }

    /// `k_i` of the last accepted step.
    pub fn stage(&self, i: usize) -> Option<&[T]> {
        let start = i.checked_mul(self.core.dim)?;
        self.core.k.get(start..start.checked_add(self.core.dim)?)
    }

    /// Time of stage `i` of the last accepted step.
    pub fn stage_time(&self, i: usize) -> Option<T> {
        let c = *self.core.c.get(i)?;
        Some(if c == T::one() && i < self.core.stages {
            self.core.t
        } else {
            self.core.t_prev + c * self.core.h_prev
        })
    }

    /// Writes the input of stage `i` of the last accepted step, `y_prev + h Σ_j a_ij k_j`,
    /// into `out`.
    pub fn stage_input(&self, i: usize, out: &mut [T]) -> Result<(), Error> {
        T::rk_stage_input(&self.core, i, out)
    }

    /// The coefficients `a_ij` of stage `i` (extra stages included) as `(j, a_ij)` pairs.
    pub fn stage_coefficients(&self, i: usize) -> impl Iterator<Item = (usize, T)> + '_ {
        self.core
            .rows
            .get(i)
            .into_iter()
            .flat_map(|r| r.idx.iter().copied().zip(r.val.iter().copied()))
    }

    /// The weights `b_i` of the step's end as `(i, b_i)` pairs.
    pub fn end_weights(&self) -> impl Iterator<Item = (usize, T)> + '_ {
        self.core.b.idx.iter().copied().zip(self.core.b.val.iter().copied())
    }

    /// The last accepted step's dense output, kept for evaluation after the solve: its
    /// start, end, start state and every stage (the interpolant's extra stages evaluated).
    pub fn dense_segment(&mut self) -> Result<DenseSegment<T>, Error> {
        self.ensure_extra_stages()?;
        Ok(self.core.segment())
    }

    /// The interpolant's power-basis stage weights (`stages × degree`), the degree and the
    /// number of stages: what evaluating a [`DenseSegment`] needs.
    pub(crate) fn dense_coefficients(&self) -> (Vec<T>, usize, usize) {
        (self.core.dense.clone(), self.core.dense_degree, self.core.total_stages)
    }

    /// Writes `h·b_j(θ)` for every stage `j` (extra stages included, evaluated if needed)
    /// at `t = t_prev + θ h` into `out`: the dense output is `y_prev + Σ_j out_j k_j`.
    pub fn dense_weights(&mut self, t: T, out: &mut [T]) -> Result<(), Error> {
        if out.len() != self.core.total_stages {
            return Err(Error::DimensionMismatch {
                what: "dense weights",
                expected: self.core.total_stages,
                got: out.len(),
            });
        }
        if self.core.h_prev == T::zero() {
            out.fill(T::zero());
            return Ok(());
        }
        self.ensure_extra_stages()?;
        self.core.weights_at(t);
        out.copy_from_slice(&self.core.weights);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Method;

    fn bits(y: &[f64]) -> Vec<u64> {
        y.iter().map(|x| x.to_bits()).collect()
    }

    /// The kernels through `simd::dispatch` (AVX-512 or AVX2 on a CPU that has them, for
    /// these 100-component vectors) against the same bodies compiled for the baseline
    /// (called directly from this test): the same bits, for rows of 1 to 12 terms (the
    /// fused and the blocked forms), both norms, with and without a base.
    #[test]
    fn the_dispatched_kernels_give_the_bits_of_the_baseline_code() {
        for dim in [1, 2, 3, 4, 5, 6, 7, 8, 31, 32, 100, 200] {
            kernels_match_the_baseline_code(dim);
        }
    }

    /// The last stage's input summed with the error's terms before it, and the error norm
    /// finished from that partial sum, take the steps and give the bits of the unfused
    /// path (error row summed in full, then its norm), for the three FSAL pairs, with
    /// uniform and per-component tolerances, on a Van der Pol batch of 40 components.
    #[test]
    fn the_fused_last_stage_gives_the_bits_of_the_unfused_path() {
        let n = 20;
        let vdp = move |_t: f64, y: &[f64], dy: &mut [f64]| {
            for i in 0..n {
                dy[i] = y[n + i];
                dy[n + i] = (1.0 - y[i] * y[i]) * y[n + i] - y[i];
            }
        };
        let y0: Vec<f64> = (0..2 * n).map(|i| 2.0 * (i as f64 * 0.37).sin()).collect();
        let each: Vec<f64> = (0..2 * n).map(|i| 1e-7 * (1.0 + i as f64 / 9.0)).collect();
        let mut rejected = 0;
        for method in [Method::Bosh3, Method::Dopri5, Method::Tsit5] {
            for opts in [
                Options::new(method).rtol(1e-7).atol(1e-7),
                Options::new(method).rtol_per_component(each.clone()).atol(1e-8),
            ] {
                let run = |fused: bool| {
                    let mut rk = RkIntegrator::<f64, _>::new(&vdp, 2 * n, &opts).unwrap();
                    assert!(rk.core.err_split.is_some(), "{method}");
                    if !fused {
                        rk.core.err_split = None;
                    }
                    rk.init(0.0, &y0, 3.0).unwrap();
                    while rk.t() < 3.0 {
                        rk.step().unwrap();
                    }
                    (bits(rk.y()), rk.stats())
                };
                let (fused, plain) = (run(true), run(false));
                assert_eq!(fused, plain, "{method}");
                rejected += fused.1.rejected;
            }
        }
        assert!(rejected > 0, "a rejected step is exercised");
    }

    fn kernels_match_the_baseline_code(dim: usize) {
        let k: Vec<f64> = (0..13 * dim).map(|i| ((i * 37 % 101) as f64 * 0.173).sin()).collect();
        let base: Vec<f64> = (0..dim).map(|i| (i as f64 * 0.3).cos()).collect();
        for terms in 1..=12 {
            let dense: Vec<f64> =
                (0..13).map(|j| if j < terms { 0.1 + j as f64 / 7.0 } else { 0.0 }).collect();
            let row = Row::<f64>::new(&dense);
            for b in [Some(&base[..]), None] {
                let (mut wide, mut plain) = (vec![0.0; dim], vec![0.0; dim]);
                row.sum_into(b, 0.37, &k, dim, &mut wide);
                row.sum_wide(b, 0.37, &k, dim, &mut plain);
                assert_eq!(bits(&wide), bits(&plain), "dim {dim}, {terms} terms");
                // And the same bits as one pass per term over the whole vector.
                let mut naive = b.map_or(vec![0.0; dim], <[f64]>::to_vec);
                for (&j, &a) in row.idx.iter().zip(&row.val) {
                    for i in 0..dim {
                        naive[i] += 0.37 * a * k[j * dim + i];
                    }
                }
                assert_eq!(bits(&wide), bits(&naive), "dim {dim}, {terms} terms, naive");
            }
        }
        let v = &k[1..dim + 1];
        let y1: Vec<f64> = base.iter().map(|x| x * 1.5 - 0.2).collect();
        // Uniform tolerances (read as two scalars) and per-component ones that are not.
        let tols = [(vec![1e-6; dim], vec![1e-9; dim]), {
            let r: Vec<f64> = (0..dim).map(|i| 1e-6 * (1.0 + i as f64 / 7.0)).collect();
            (r, (0..dim).map(|i| 1e-9 * (1.0 + (i % 3) as f64)).collect())
        }];
        for (norm, (rtol, atol)) in
            [Norm::Rms, Norm::Max].into_iter().flat_map(|n| tols.iter().map(move |t| (n, t)))
        {
            let uniform = ErrorNorm::uniform_of(atol, rtol);
            assert_eq!(uniform.is_some(), rtol[dim - 1] == rtol[0]);
            let mut e = ErrorNorm {
                rtol: rtol.clone(),
                atol: atol.clone(),
                uniform,
                mask: None,
                norm,
                scaled: vec![0.0; dim],
                scaled64: vec![0.0; dim],
            };
            let wide = e.eval(v, &base, &y1);
            let plain = e.dense(v, &base, &y1).unwrap();
            // Reading the tolerances as scalars gives the per-component loop's bits.
            e.uniform = None;
            assert_eq!(e.eval(v, &base, &y1).to_bits(), wide.to_bits(), "dim {dim}, {norm:?}");
            e.uniform = uniform;
            assert_eq!(wide.to_bits(), plain.to_bits(), "dim {dim}, {norm:?}");
            // The estimate's norm without storing it: the bits of storing it first.
            for terms in [1, 6, 7, 9] {
                let coeffs: Vec<f64> =
                    (0..13).map(|j| if j < terms { 0.3 - j as f64 / 11.0 } else { 0.0 }).collect();
                let row = Row::<f64>::new(&coeffs);
                let mut est = vec![0.0; dim];
                row.combine_zero(0.37, &k, dim, &mut est);
                let stored = e.eval(&est, &base, &y1);
                let fused = crate::simd::dispatch(dim, || e.embedded(&row, 0.37, &k, &base, &y1));
                assert_eq!(
                    fused.unwrap().to_bits(),
                    stored.to_bits(),
                    "dim {dim}, {norm:?}, {terms} terms"
                );
                assert_eq!(
                    e.embedded(&row, 0.37, &k, &base, &y1).unwrap().to_bits(),
                    stored.to_bits()
                );
            }
            assert!(wide > 0.0 && wide.is_finite());
            // A NaN component makes the norm NaN on every path.
            let mut bad = v.to_vec();
            bad[dim - 1] = f64::NAN;
            assert!(e.eval(&bad, &base, &y1).is_nan(), "dim {dim}, {norm:?}");
        }
        let mut y = base.clone();
        assert!(crate::simd::dispatch(dim, || crate::simd::all_finite(&y)));
        y[dim - 1] = f64::INFINITY;
        assert!(!crate::simd::dispatch(dim, || crate::simd::all_finite(&y)));
        assert!(!crate::simd::all_finite(&y));
    }
}
