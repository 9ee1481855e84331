//! Gradients of a loss on an ODE solution, by three strategies behind one function.

use std::cell::RefCell;

use ode_solvers::{odeint, Method, OdeSystem, Options, RkIntegrator, StepOutcome};

use crate::error::{backward, forward};
use crate::{Error, VectorField};

/// How the gradient is computed.
///
/// | strategy | memory in the number of steps | accuracy |
/// |---|---|---|
/// | `Backsolve` | O(1) | the continuous adjoint, with `z` re-integrated backwards (reset at each output time); can drift on unstable dynamics |
/// | `Checkpointed` | O(steps): one state per forward step | the continuous adjoint, with `z(t)` from the forward steps' dense output: no reconstruction error |
/// | `Direct` | O(steps): one state per forward step | the exact gradient of the discrete forward solution (steps held fixed) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The adjoint method of Chen et al. (2018), Algorithm 1: the augmented state
    /// `[z, a, ∂L/∂θ]` solved backwards with dynamics `[f, -aᵀ∂f/∂z, -aᵀ∂f/∂θ]`.
    Backsolve,
    /// The same backward ODE for `[a, ∂L/∂θ]`, with `z(t)` recomputed from stored forward
    /// steps instead of integrated backwards.
    Checkpointed,
    /// Backpropagation through the Runge-Kutta stages of every forward step.
    Direct,
}

/// Options of a gradient computation.
#[derive(Debug, Clone)]
pub struct AdjointOptions {
    /// The forward solve.
    pub forward: Options,
    /// The backward solve (method and tolerances; a step budget). Ignored by `Direct`.
    pub backward: Options,
    /// Exclude the parameter adjoint from the backward solve's error control (Kidger, Chen &
    /// Lyons 2021): on by default.
    pub seminorm: bool,
}

impl AdjointOptions {
    /// The same method and tolerances both ways, seminorm on.
    pub fn new(forward: Options) -> Self {
        AdjointOptions { backward: forward.clone(), forward, seminorm: true }
    }
}

/// A loss value with its gradients.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients {
    /// The loss.
    pub loss: f64,
    /// `∂L/∂z(t_0)`.
    pub z0: Vec<f64>,
    /// `∂L/∂θ`.
    pub params: Vec<f64>,
    /// `∂L/∂t_i` for every output time.
    pub times: Vec<f64>,
    /// The states at the output times.
    pub zs: Vec<Vec<f64>>,
    /// Right-hand-side evaluations of the forward solve.
    pub nfe_forward: usize,
    /// Evaluations of the backward pass (each a VJP, or a recomputed forward stage).
    pub nfe_backward: usize,
}

/// A loss of the states at the output times: returns `L` and `∂L/∂z(t_i)` for every `i`.
pub type Loss<'a> = &'a dyn Fn(&[Vec<f64>]) -> (f64, Vec<Vec<f64>>);

/// The field as an `OdeSystem`.
pub(crate) struct Forward<'a, F: ?Sized>(pub(crate) &'a F);

impl<F: VectorField + ?Sized> OdeSystem<f64> for Forward<'_, F> {
    fn rhs(&self, t: f64, y: &[f64], dy: &mut [f64]) {
        self.0.eval(t, y, dy)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn evaluate_loss(
    loss: Loss<'_>,
    zs: &[Vec<f64>],
    dim: usize,
) -> Result<(f64, Vec<Vec<f64>>), Error> {
    let (value, grads) = loss(zs);
    if grads.len() != zs.len() {
        return Err(Error::DimensionMismatch {
            what: "loss gradients (one per output time)",
            expected: zs.len(),
            got: grads.len(),
        });
    }
    if let Some(g) = grads.iter().find(|g| g.len() != dim) {
        return Err(Error::DimensionMismatch {
            what: "loss gradient",
            expected: dim,
            got: g.len(),
        });
    }
    if !value.is_finite() || grads.iter().flatten().any(|x| !x.is_finite()) {
        return Err(Error::NonFiniteLoss);
    }
    Ok((value, grads))
}

/// Computes the loss on the solution of `dz/dt = f(z, t, θ)`, `z(ts[0]) = z0`, at `ts`,
/// and its gradients with respect to `z0`, `θ` and the times.
pub fn gradient<F: VectorField + ?Sized>(
    field: &F,
    z0: &[f64],
    ts: &[f64],
    loss: Loss<'_>,
    strategy: Strategy,
    opts: &AdjointOptions,
) -> Result<Gradients, Error> {
    let d = field.dim();
    if z0.len() != d {
        return Err(Error::DimensionMismatch { what: "z0", expected: d, got: z0.len() });
    }
    if ts.is_empty() {
        return Err(forward(ode_solvers::Error::EmptyTimes));
    }
    if let Some(index) = ts.iter().position(|t| !t.is_finite()) {
        return Err(forward(ode_solvers::Error::NonFiniteInput { what: "ts", index }));
    }
    let dir = if ts.len() > 1 { (ts[1] - ts[0]).signum() } else { 1.0 };
    if let Some(index) = (1..ts.len()).find(|&i| (ts[i] - ts[i - 1]) * dir <= 0.0) {
        return Err(forward(ode_solvers::Error::UnsortedTimes { index }));
    }
    match strategy {
        Strategy::Backsolve => backsolve(field, z0, ts, loss, opts),
        Strategy::Checkpointed => checkpointed(field, z0, ts, loss, opts),
        Strategy::Direct => direct(field, z0, ts, loss, opts),
    }
}

/// `∂L/∂t_i = g_iᵀ f(z_i, t_i)` for `i ≥ 1` (moving an observation along the trajectory)
/// and `∂L/∂t_0 = -(a(t_0) - g_0)ᵀ f(z_0, t_0)`: moving `t_0` with `z_0` fixed shifts every
/// later state by `-Φ(t_i, t_0) f(z_0, t_0)` but leaves `z(t_0) = z_0` itself alone.
fn time_gradients<F: VectorField + ?Sized>(
    field: &F,
    ts: &[f64],
    zs: &[Vec<f64>],
    grads: &[Vec<f64>],
    a0: &[f64],
) -> Vec<f64> {
    let mut f = vec![0.0; field.dim()];
    ts.iter()
        .enumerate()
        .map(|(i, &t)| {
            field.eval(t, &zs[i], &mut f);
            if i == 0 {
                -a0.iter().zip(&grads[0]).zip(&f).map(|((a, g), f)| (a - g) * f).sum::<f64>()
            } else {
                dot(&grads[i], &f)
            }
        })
        .collect()
}

/// The backward sweep shared by the adjoint strategies: from the last output time to the
/// first, solve `rhs` over each interval, take its end state, let `after` adjust it (the
/// backsolve resets `z`), and add `∂L/∂z(t_{i-1})` to the adjoint at `state[a..a + d]`.
/// Returns the evaluations spent.
fn sweep<R, A>(
    ts: &[f64],
    grads: &[Vec<f64>],
    state: &mut [f64],
    a: usize,
    opts: &Options,
    rhs: R,
    mut after: A,
) -> Result<usize, Error>
where
    R: Fn(f64, &[f64], &mut [f64]),
    A: FnMut(usize, &mut [f64]) -> Result<(), Error>,
{
    let mut nfe = 0;
    for i in (1..ts.len()).rev() {
        let seg = odeint(&rhs, state, &[ts[i], ts[i - 1]], opts).map_err(backward)?;
        nfe += seg.stats.nfe;
        state.copy_from_slice(&seg.ys[1]);
        after(i - 1, state)?;
        for (x, g) in state[a..a + grads[i - 1].len()].iter_mut().zip(&grads[i - 1]) {
            *x += g;
        }
    }
    Ok(nfe)
}

fn backsolve<F: VectorField + ?Sized>(
    field: &F,
    z0: &[f64],
    ts: &[f64],
    loss: Loss<'_>,
    opts: &AdjointOptions,
) -> Result<Gradients, Error> {
    let (d, p) = (field.dim(), field.params().len());
    let sol = odeint(&Forward(field), z0, ts, &opts.forward).map_err(forward)?;
    let (value, grads) = evaluate_loss(loss, &sol.ys, d)?;
    let n = ts.len();
    // Augmented state [z, a, θ̄].
    let mut state = vec![0.0; 2 * d + p];
    state[..d].copy_from_slice(&sol.ys[n - 1]);
    state[d..2 * d].copy_from_slice(&grads[n - 1]);
    let augmented = |t: f64, s: &[f64], ds: &mut [f64]| {
        let (z, a) = (&s[..d], &s[d..2 * d]);
        let (dz, rest) = ds.split_at_mut(d);
        let (da, dp) = rest.split_at_mut(d);
        field.vjp(t, z, a, dz, da, dp);
        da.iter_mut().chain(dp.iter_mut()).for_each(|x| *x = -*x);
    };
    let mut bopts = opts.backward.clone();
    if opts.seminorm {
        bopts.error_mask = Some((0..2 * d + p).map(|i| i < 2 * d).collect());
    }
    let nfe_backward = sweep(ts, &grads, &mut state, d, &bopts, augmented, |i, s| {
        s[..d].copy_from_slice(&sol.ys[i]);
        Ok(())
    })?;
    let a0 = state[d..2 * d].to_vec();
    let times = time_gradients(field, ts, &sol.ys, &grads, &a0);
    Ok(Gradients {
        loss: value,
        z0: a0,
        params: state[2 * d..].to_vec(),
        times,
        zs: sol.ys,
        nfe_forward: sol.stats.nfe,
        nfe_backward,
    })
}

/// The forward trajectory, re-created step by step from stored step starts: each step is
/// recomputed once (the same method and step, hence the same stages) and its dense output
/// gives `z(t)`.
struct Trajectory<'a, F: VectorField + ?Sized> {
    rk: RkIntegrator<'a, f64, Forward<'a, F>>,
    ts: Vec<f64>,
    ys: Vec<Vec<f64>>,
    current: Option<usize>,
}

impl<F: VectorField + ?Sized> Trajectory<'_, F> {
    /// Writes `z(t)` into `out`.
    fn at(&mut self, t: f64, out: &mut [f64]) -> Result<(), ode_solvers::Error> {
        let dir = if self.ts.len() > 1 && self.ts[1] < self.ts[0] { -1.0 } else { 1.0 };
        let inside = |n: usize| (t - self.ts[n]) * dir >= 0.0 && (self.ts[n + 1] - t) * dir >= 0.0;
        let n = match self.current {
            Some(n) if inside(n) => n,
            _ => {
                let last = self.ts.len().saturating_sub(2);
                let k = self.ts.partition_point(|&s| (t - s) * dir > 0.0);
                let n = k.saturating_sub(1).min(last);
                self.rk.init(self.ts[n], &self.ys[n], self.ts[n + 1])?;
                self.rk.step_to(self.ts[n + 1])?;
                self.current = Some(n);
                n
            }
        };
        debug_assert!(inside(n) || self.current == Some(n));
        self.rk.interpolate(t, out);
        Ok(())
    }
}

fn checkpointed<F: VectorField + ?Sized>(
    field: &F,
    z0: &[f64],
    ts: &[f64],
    loss: Loss<'_>,
    opts: &AdjointOptions,
) -> Result<Gradients, Error> {
    let (d, p) = (field.dim(), field.params().len());
    let sys = Forward(field);
    let sol = odeint(&sys, z0, ts, &opts.forward.clone().save_steps(true)).map_err(forward)?;
    let (value, grads) = evaluate_loss(loss, &sol.ys, d)?;
    let steps = sol.steps.clone().unwrap_or_default();
    let mut replay_opts = opts.forward.clone();
    replay_opts.step_size = None;
    let rk = RkIntegrator::new(&sys, d, &replay_opts).map_err(forward)?;
    let trajectory = RefCell::new(Trajectory { rk, ts: steps.ts, ys: steps.ys, current: None });
    let scratch = RefCell::new((vec![0.0; d], vec![0.0; d], None::<ode_solvers::Error>));
    let n = ts.len();
    // Backward state [a, θ̄].
    let mut state = vec![0.0; d + p];
    state[..d].copy_from_slice(&grads[n - 1]);
    let adjoint = |t: f64, s: &[f64], ds: &mut [f64]| {
        let mut guard = scratch.borrow_mut();
        let (z, f, failure) = &mut *guard;
        if let Err(e) = trajectory.borrow_mut().at(t, z) {
            *failure = Some(e);
            ds.fill(f64::NAN);
            return;
        }
        let (da, dp) = ds.split_at_mut(d);
        field.vjp(t, z, &s[..d], f, da, dp);
        ds.iter_mut().for_each(|x| *x = -*x);
    };
    let mut bopts = opts.backward.clone();
    if opts.seminorm {
        bopts.error_mask = Some((0..d + p).map(|i| i < d).collect());
    }
    let mut nfe_backward =
        sweep(ts, &grads, &mut state, 0, &bopts, adjoint, |_, _| {
            match scratch.borrow_mut().2.take() {
                Some(e) => Err(backward(e)),
                None => Ok(()),
            }
        })?;
    nfe_backward += trajectory.borrow().rk.stats().nfe;
    let a0 = state[..d].to_vec();
    let times = time_gradients(field, ts, &sol.ys, &grads, &a0);
    Ok(Gradients {
        loss: value,
        z0: a0,
        params: state[d..].to_vec(),
        times,
        zs: sol.ys,
        nfe_forward: sol.stats.nfe,
        nfe_backward,
    })
}

/// Records the accepted forward steps `(t_n, t_{n+1}, y_n)`, each interval between output
/// times stepped separately so that every output time is a step end.
fn record_steps<F: VectorField + ?Sized>(
    field: &F,
    z0: &[f64],
    ts: &[f64],
    opts: &Options,
) -> Result<(Vec<(f64, f64, Vec<f64>)>, Vec<Vec<f64>>, usize), ode_solvers::Error> {
    let sys = Forward(field);
    let mut rk = RkIntegrator::new(&sys, z0.len(), opts)?;
    let mut steps = Vec::new();
    let mut zs = vec![z0.to_vec()];
    let mut y = z0.to_vec();
    for w in ts.windows(2) {
        rk.init(w[0], &y, w[1])?;
        match opts.step_size {
            Some(h) => {
                let n = ((w[1] - w[0]).abs() / h * (1.0 - 1e-12)).ceil().max(1.0) as usize;
                for j in 1..=n {
                    let t_next =
                        if j == n { w[1] } else { w[0] + (w[1] - w[0]) * j as f64 / n as f64 };
                    let (t0, y0) = (rk.t(), rk.y().to_vec());
                    rk.step_to(t_next)?;
                    steps.push((t0, t_next, y0));
                }
            }
            None => {
                while rk.t() != w[1] {
                    let (t0, y0) = (rk.t(), rk.y().to_vec());
                    if rk.step()? == StepOutcome::Accepted {
                        steps.push((t0, rk.t(), y0));
                    }
                }
            }
        }
        y.copy_from_slice(rk.y());
        zs.push(y.clone());
    }
    Ok((steps, zs, rk.stats().nfe))
}

fn direct<F: VectorField + ?Sized>(
    field: &F,
    z0: &[f64],
    ts: &[f64],
    loss: Loss<'_>,
    opts: &AdjointOptions,
) -> Result<Gradients, Error> {
    let (d, p) = (field.dim(), field.params().len());
    let method: Method = opts.forward.method;
    let tab = method.tableau().ok_or_else(|| {
        forward(ode_solvers::Error::UnsupportedMethod {
            method: method.name(),
            detail: "direct backpropagation needs a Runge-Kutta method".into(),
        })
    })?;
    let (steps, zs, nfe_forward) = record_steps(field, z0, ts, &opts.forward).map_err(forward)?;
    let (value, grads) = evaluate_loss(loss, &zs, d)?;
    let s = tab.stages();
    let (mut ys, mut ks) = (vec![vec![0.0; d]; s], vec![vec![0.0; d]; s]);
    let mut kbar = vec![vec![0.0; d]; s];
    let (mut vz, mut vp, mut fbuf) = (vec![0.0; d], vec![0.0; p], vec![0.0; d]);
    let mut abar = grads[ts.len() - 1].clone();
    let mut pbar = vec![0.0; p];
    let mut out_index = ts.len() - 1;
    let mut nfe_backward = 0;
    for (t0, t1, y0) in steps.iter().rev() {
        let h = t1 - t0;
        // Recompute the stages: Y_i = y0 + h Σ_j a_ij k_j, k_i = f(t0 + c_i h, Y_i).
        for i in 0..s {
            ys[i].copy_from_slice(y0);
            for (j, &aij) in tab.a[i].iter().enumerate() {
                if aij != 0.0 {
                    for (yv, kv) in ys[i].iter_mut().zip(&ks[j]) {
                        *yv += h * aij * kv;
                    }
                }
            }
            let (yi, ki) = (&ys[i], &mut ks[i]);
            field.eval(t0 + tab.c[i] * h, yi, ki);
            nfe_backward += 1;
        }
        // Reverse sweep: k̄_i = h b_i ā, then stage by stage from the last.
        for i in 0..s {
            for (kb, a) in kbar[i].iter_mut().zip(&abar) {
                *kb = h * tab.b[i] * a;
            }
        }
        for i in (0..s).rev() {
            if kbar[i].iter().all(|&x| x == 0.0) {
                continue;
            }
            field.vjp(t0 + tab.c[i] * h, &ys[i], &kbar[i], &mut fbuf, &mut vz, &mut vp);
            nfe_backward += 1;
            for (a, v) in abar.iter_mut().zip(&vz) {
                *a += v;
            }
            for (pb, v) in pbar.iter_mut().zip(&vp) {
                *pb += v;
            }
            for (j, &aij) in tab.a[i].iter().enumerate() {
                if aij != 0.0 {
                    let (lo, _) = kbar.split_at_mut(i);
                    for (kb, v) in lo[j].iter_mut().zip(&vz) {
                        *kb += h * aij * v;
                    }
                }
            }
        }
        // Entering the step's start: an output time there adds its gradient.
        if out_index > 0 && *t0 == ts[out_index - 1] {
            out_index -= 1;
            for (a, g) in abar.iter_mut().zip(&grads[out_index]) {
                *a += g;
            }
        }
    }
    let times = time_gradients(field, ts, &zs, &grads, &abar);
    Ok(Gradients { loss: value, z0: abar, params: pbar, times, zs, nfe_forward, nfe_backward })
}

/// Gradients of a batch split into chunks, each solved (with its own adaptive steps) in
/// parallel with rayon. `make_field(c)` builds chunk `c`'s field (its own buffers, the
/// same parameters), `z0s[c]` is its initial state and `loss(c, zs)` its share of a loss
/// that is a sum over chunks. Losses, parameter and time gradients are summed in chunk
/// order, so the result is bit-identical for any number of threads; `z0` holds the chunks'
/// gradients one after the other.
pub fn gradient_chunks<F, M, L>(
    make_field: M,
    z0s: &[Vec<f64>],
    ts: &[f64],
    loss: L,
    strategy: Strategy,
    opts: &AdjointOptions,
) -> Result<Gradients, Error>
where
    F: VectorField,
    M: Fn(usize) -> Result<F, Error> + Sync,
    L: Fn(usize, &[Vec<f64>]) -> (f64, Vec<Vec<f64>>) + Sync,
{
    use rayon::prelude::*;
    let parts: Vec<Result<Gradients, Error>> = z0s
        .par_iter()
        .enumerate()
        .map(|(c, z0)| {
            let field = make_field(c)?;
            let chunk_loss = |zs: &[Vec<f64>]| loss(c, zs);
            gradient(&field, z0, ts, &chunk_loss, strategy, opts)
        })
        .collect();
    let mut total: Option<Gradients> = None;
    for part in parts {
        let g = part?;
        total = Some(match total {
            None => g,
            Some(mut t) => {
                t.loss += g.loss;
                t.z0.extend(&g.z0);
                t.params.iter_mut().zip(&g.params).for_each(|(a, b)| *a += b);
                t.times.iter_mut().zip(&g.times).for_each(|(a, b)| *a += b);
                for (z, gz) in t.zs.iter_mut().zip(&g.zs) {
                    z.extend(gz);
                }
                t.nfe_forward += g.nfe_forward;
                t.nfe_backward += g.nfe_backward;
                t
            }
        });
    }
    total.ok_or(Error::DimensionMismatch { what: "chunks", expected: 1, got: 0 })
}
