//! The one-call API: [`odeint`], [`odeint_with_event`], [`odeint_batch`].

use rayon::prelude::*;

use crate::adams::{fixed_grid, Adams};
use crate::event::{Event, EventHit};
use crate::rk::{DenseSegment, RkIntegrator, Stats, StepOutcome};
use crate::{Error, OdeSystem, Options, Real};

/// Every accepted step of a solve (`Options::save_steps`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Steps<T> {
    /// Step end times, starting with `t0`.
    pub ts: Vec<T>,
    /// States at `ts`.
    pub ys: Vec<Vec<T>>,
}

/// The result of a solve.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution<T> {
    /// The requested times reached (all of `ts`, unless an event stopped the solve).
    pub ts: Vec<T>,
    /// `ys[i][j]`: component `j` of the state at `ts[i]`.
    pub ys: Vec<Vec<T>>,
    /// Function evaluations and step counts.
    pub stats: Stats,
    /// Every accepted step, when `Options::save_steps` is set.
    pub steps: Option<Steps<T>>,
    /// The terminal event, if one fired.
    pub event: Option<EventHit<T>>,
    /// Every step's dense output, when `Options::dense` is set.
    pub dense: Option<Dense<T>>,
}

/// The dense output of a whole solve (`Options::dense`): evaluate with [`Solution::at`].
#[derive(Debug, Clone, PartialEq)]
pub struct Dense<T> {
    /// Stage weight polynomials (`stages × degree`, power basis in θ).
    coefficients: Vec<T>,
    degree: usize,
    stages: usize,
    dim: usize,
    segments: Vec<DenseSegment<T>>,
}

impl<T: Real> Solution<T> {
    /// The solution at any `t` of the solved interval, from the steps' dense output (the
    /// solve must have run with `Options::dense(true)`):
    ///
    /// ```
    /// use ode_solvers::{odeint, Error, Method, Options};
    /// let f = |_t: f64, y: &[f64], dy: &mut [f64]| dy[0] = -y[0];
    /// let sol = odeint(&f, &[1.0], &[0.0, 2.0], &Options::new(Method::Tsit5).rtol(1e-9).atol(1e-12).dense(true))?;
    /// assert!((sol.at(0.7)?[0] - (-0.7f64).exp()).abs() < 1e-8);
    /// assert!(matches!(sol.at(2.5), Err(Error::OutsideInterval { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn at(&self, t: T) -> Result<Vec<T>, Error> {
        let dense = self.dense.as_ref().ok_or(Error::NoDenseOutput)?;
        let mut out = vec![T::zero(); dense.dim];
        dense.at_into(t, &mut out)?;
        Ok(out)
    }
}

impl<T: Real> Dense<T> {
    /// Writes the solution at `t` into `out`.
    pub fn at_into(&self, t: T, out: &mut [T]) -> Result<(), Error> {
        if out.len() != self.dim {
            return Err(Error::DimensionMismatch {
                what: "dense output",
                expected: self.dim,
                got: out.len(),
            });
        }
        let (first, last) = match (self.segments.first(), self.segments.last()) {
            (Some(a), Some(b)) => (a.t0, b.t1),
            _ => return Err(Error::NoDenseOutput),
        };
        let dir = if last >= first { T::one() } else { -T::one() };
        if !t.is_finite() || (t - first) * dir < T::zero() || (last - t) * dir < T::zero() {
            return Err(Error::OutsideInterval {
                t: t.to_f64_lossless(),
                start: first.to_f64_lossless(),
                end: last.to_f64_lossless(),
            });
        }
        // The first segment whose end is at or past t.
        let i = self.segments.partition_point(|s| (s.t1 - t) * dir < T::zero());
        let seg = &self.segments[i.min(self.segments.len() - 1)];
        let h = seg.t1 - seg.t0;
        if h == T::zero() || t == seg.t1 {
            out.copy_from_slice(&seg.y1);
            return Ok(());
        }
        let theta = (t - seg.t0) / h;
        out.copy_from_slice(&seg.y0);
        for j in 0..self.stages {
            let w = &self.coefficients[j * self.degree..(j + 1) * self.degree];
            let wj = w.iter().rev().fold(T::zero(), |acc, &c| acc * theta + c) * h;
            if wj != T::zero() {
                let k = &seg.k[j * self.dim..(j + 1) * self.dim];
                out.iter_mut().zip(k).for_each(|(o, &x)| *o = *o + wj * x);
            }
        }
        Ok(())
    }
}

/// Checks `ts` and returns the direction of integration (+1 or -1; +1 for one time).
pub(crate) fn check_times<T: Real>(ts: &[T]) -> Result<T, Error> {
    if ts.is_empty() {
        return Err(Error::EmptyTimes);
    }
    if let Some(index) = ts.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFiniteInput { what: "ts", index });
    }
    let dir = if ts.len() > 1 { (ts[1] - ts[0]).signum() } else { T::one() };
    for i in 1..ts.len() {
        if (ts[i] - ts[i - 1]) * dir <= T::zero() {
            return Err(Error::UnsortedTimes { index: i });
        }
    }
    Ok(dir)
}

/// Solves `dy/dt = f(t, y)`, `y(ts[0]) = y0`, returning the state at every time in `ts`
/// (increasing, or decreasing to integrate backwards).
///
/// ```
/// use ode_solvers::{odeint, Method, Options};
/// let f = |_t: f64, y: &[f64], dy: &mut [f64]| { dy[0] = y[1]; dy[1] = -y[0]; };
/// let sol = odeint(&f, &[1.0, 0.0], &[0.0, 1.0, 2.0],
///                  &Options::new(Method::Dopri5).rtol(1e-8).atol(1e-10))?;
/// assert!((sol.ys[2][0] - 2.0f64.cos()).abs() < 1e-7);
/// assert!(sol.stats.nfe > 0);
/// # Ok::<(), ode_solvers::Error>(())
/// ```
pub fn odeint<T, S>(system: &S, y0: &[T], ts: &[T], opts: &Options) -> Result<Solution<T>, Error>
where
    T: Real,
    S: OdeSystem<T> + ?Sized,
{
    solve(system, y0, ts, opts, None::<&Event<fn(T, &[T]) -> T>>)
}

/// Like [`odeint`], stopping at the first zero crossing of `event.g` (see [`Event`]).
/// Only Runge-Kutta methods support events; the solution holds the requested times before
/// the event, and `Solution::event` the crossing.
pub fn odeint_with_event<T, S, G>(
    system: &S,
    y0: &[T],
    ts: &[T],
    opts: &Options,
    event: &Event<G>,
) -> Result<Solution<T>, Error>
where
    T: Real,
    S: OdeSystem<T> + ?Sized,
    G: Fn(T, &[T]) -> T,
{
    solve(system, y0, ts, opts, Some(event))
}

/// Solves one independent problem per initial state in `y0s`, in parallel with rayon,
/// each with its own adaptive steps. Results are bit-identical to calling [`odeint`] on
/// each state in turn, whatever the number of threads. The contract is all or nothing: if
/// any trajectory fails, the first failing one (by index) is reported as [`Error::Batch`]
/// and no solution is returned; [`odeint_batch_each`] returns every member's own result.
///
/// To share steps across the batch instead (as torchdiffeq and diffrax do when the batch
/// is part of the state), stack the states into one vector and solve once: the error norm
/// then covers all trajectories and the step is the one the worst needs:
///
/// ```
/// use ode_solvers::{odeint, odeint_batch, Method, Options};
/// let decay = |_t: f64, y: &[f64], dy: &mut [f64]| dy[0] = -y[0];
/// let opts = Options::new(Method::Tsit5);
/// // Independent steps per trajectory:
/// let each = odeint_batch(&decay, &[vec![1.0], vec![2.0]], &[0.0, 1.0], &opts)?;
/// // Shared steps: a stacked state of two trajectories of dimension 1.
/// let stacked = |_t: f64, y: &[f64], dy: &mut [f64]| {
///     for (d, x) in dy.iter_mut().zip(y) { *d = -x; }
/// };
/// let shared = odeint(&stacked, &[1.0, 2.0], &[0.0, 1.0], &opts)?;
/// assert!((each[1].ys[1][0] - shared.ys[1][1]).abs() < 1e-6);
/// # Ok::<(), ode_solvers::Error>(())
/// ```
pub fn odeint_batch<T, S, Y>(
    system: &S,
    y0s: &[Y],
    ts: &[T],
    opts: &Options,
) -> Result<Vec<Solution<T>>, Error>
where
    T: Real,
    S: OdeSystem<T> + Sync + ?Sized,
    Y: AsRef<[T]> + Sync,
{
    let results: Vec<Result<Solution<T>, Error>> =
        y0s.par_iter().map(|y0| odeint(system, y0.as_ref(), ts, opts)).collect();
    results
        .into_iter()
        .enumerate()
        .map(|(index, r)| r.map_err(|e| Error::Batch { index, source: Box::new(e) }))
        .collect()
}

/// Like [`odeint_batch`], but each member's result on its own: one bad initial state does
/// not cost the others their solutions.
///
/// ```
/// use ode_solvers::{odeint_batch_each, Error, Method, Options};
/// let decay = |_t: f64, y: &[f64], dy: &mut [f64]| dy[0] = -y[0];
/// let r = odeint_batch_each(&decay, &[vec![1.0], vec![f64::NAN]], &[0.0, 1.0], &Options::new(Method::Tsit5));
/// assert!(r[0].is_ok());
/// assert!(matches!(r[1], Err(Error::NonFiniteInput { what: "y0", index: 0 })));
/// ```
pub fn odeint_batch_each<T, S, Y>(
    system: &S,
    y0s: &[Y],
    ts: &[T],
    opts: &Options,
) -> Vec<Result<Solution<T>, Error>>
where
    T: Real,
    S: OdeSystem<T> + Sync + ?Sized,
    Y: AsRef<[T]> + Sync,
{
    y0s.par_iter().map(|y0| odeint(system, y0.as_ref(), ts, opts)).collect()
}

fn solve<T, S, G>(
    system: &S,
    y0: &[T],
    ts: &[T],
    opts: &Options,
    event: Option<&Event<G>>,
) -> Result<Solution<T>, Error>
where
    T: Real,
    S: OdeSystem<T> + ?Sized,
    G: Fn(T, &[T]) -> T,
{
    let event = event.map(|e| Watch {
        g: &e.g as &dyn Fn(T, &[T]) -> T,
        direction: e.direction,
        tol: e.tol,
        samples: e.samples,
    });
    solve_watching(system, y0, ts, opts, event)
}

/// An [`Event`] with its function behind a reference, so the event code is compiled once
/// per float type, not once per event closure.
struct Watch<'e, T> {
    g: &'e dyn Fn(T, &[T]) -> T,
    direction: crate::Direction,
    tol: f64,
    samples: usize,
}

/// [`solve`] with the event erased. The loop is per system; what it calls on every
/// accepted step ([`Recorder`], [`EventProbe`]) sees the integrator as a `dyn` [`StepView`].
fn solve_watching<T, S>(
    system: &S,
    y0: &[T],
    ts: &[T],
    opts: &Options,
    event: Option<Watch<'_, T>>,
) -> Result<Solution<T>, Error>
where
    T: Real,
    S: OdeSystem<T> + ?Sized,
{
    let dir = check_times(ts)?;
    if let Some(index) = y0.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFiniteInput { what: "y0", index });
    }
    if opts.method.tableau().is_none() {
        if event.is_some() {
            return Err(Error::UnsupportedMethod {
                method: opts.method.name(),
                detail: "events need dense output; use a Runge-Kutta method".into(),
            });
        }
        return solve_adams(&ByRef(system), y0, ts, opts);
    }
    let fixed = opts.step_size;
    if fixed.is_none() && !opts.method.is_adaptive() {
        return Err(Error::MissingStepSize { method: opts.method.name() });
    }
    let dim = y0.len();
    let t_end = ts[ts.len() - 1];
    let mut rk = RkIntegrator::new(system, dim, opts)?;
    rk.init(ts[0], y0, t_end)?;
    let mut out = Recorder::new(ts, y0, opts.save_steps, dir);
    let mut dense = opts.dense.then(Vec::new);
    let mut probe = EventProbe::new(event, ts[0], y0, dim);
    // The interpolant's coefficients go with the segments, copied only where kept.
    let dense_of = |dense: Option<Vec<DenseSegment<T>>>, rk: &RkIntegrator<'_, T, S>| {
        dense.map(|segments| (segments, rk.dense_coefficients()))
    };
    let mut last_t = ts[0];
    while out.next < ts.len() {
        if let Some(h) = fixed {
            let target = ts[out.next];
            for t_next in fixed_grid(last_t, target, h) {
                rk.step_to(t_next)?;
                if let Some(d) = &mut dense {
                    d.push(rk.dense_segment()?);
                }
                if out.record(&mut rk, &mut probe)? {
                    return Ok(out.finish(rk.stats(), probe.hit, dense_of(dense, &rk), dim));
                }
            }
            last_t = target;
        } else if rk.step()? == StepOutcome::Accepted {
            if let Some(d) = &mut dense {
                d.push(rk.dense_segment()?);
            }
            if out.record(&mut rk, &mut probe)? {
                return Ok(out.finish(rk.stats(), probe.hit, dense_of(dense, &rk), dim));
            }
        }
    }
    Ok(out.finish(rk.stats(), None, dense_of(dense, &rk), dim))
}

/// The accepted step as [`Recorder`] and [`EventProbe`] read it: a `dyn` view, so their
/// code is compiled once per float type instead of once per system.
trait StepView<T> {
    fn t_prev(&self) -> T;
    fn t(&self) -> T;
    fn y(&self) -> &[T];
    fn interpolate(&mut self, t: T, out: &mut [T]) -> Result<(), Error>;
}

impl<T: Real, S: OdeSystem<T> + ?Sized> StepView<T> for RkIntegrator<'_, T, S> {
    fn t_prev(&self) -> T {
        RkIntegrator::t_prev(self)
    }
    fn t(&self) -> T {
        RkIntegrator::t(self)
    }
    fn y(&self) -> &[T] {
        RkIntegrator::y(self)
    }
    fn interpolate(&mut self, t: T, out: &mut [T]) -> Result<(), Error> {
        RkIntegrator::interpolate(self, t, out)
    }
}

/// A system behind a reference, sized, so it can be used as `dyn OdeSystem`: the fixed-step
/// Adams methods run through one `dyn` instantiation per float type.
struct ByRef<'a, S: ?Sized>(&'a S);

impl<T, S: OdeSystem<T> + ?Sized> OdeSystem<T> for ByRef<'_, S> {
    fn rhs(&self, t: T, y: &[T], dy: &mut [T]) -> Result<(), crate::RhsError> {
        self.0.rhs(t, y, dy)
    }
}

/// Collects outputs at the requested times and, optionally, every step.
struct Recorder<'a, T> {
    ts: &'a [T],
    ys: Vec<Vec<T>>,
    next: usize,
    steps: Option<Steps<T>>,
    dir: T,
}

impl<'a, T: Real> Recorder<'a, T> {
    fn new(ts: &'a [T], y0: &[T], save_steps: bool, dir: T) -> Self {
        let steps = save_steps.then(|| Steps { ts: vec![ts[0]], ys: vec![y0.to_vec()] });
        Recorder { ts, ys: vec![y0.to_vec()], next: 1, steps, dir }
    }

    /// Records the accepted step (see [`Recorder::accepted`]), skipping the out-of-line
    /// call where there is nothing to record: no event to look for, steps not saved, and
    /// the step short of the next requested time (most steps of a solve with few outputs).
    #[inline(always)]
    fn record<V: StepView<T>>(
        &mut self,
        rk: &mut V,
        probe: &mut EventProbe<'_, T>,
    ) -> Result<bool, Error> {
        let t = rk.t();
        let idle = probe.event.is_none()
            && self.steps.is_none()
            && self.ts.get(self.next).is_some_and(|&next| (t - next) * self.dir < T::zero());
        if idle {
            return Ok(false);
        }
        self.accepted(rk, probe)
    }

    /// Records the accepted step; returns true when a terminal event fired in it.
    fn accepted(
        &mut self,
        rk: &mut dyn StepView<T>,
        probe: &mut EventProbe<'_, T>,
    ) -> Result<bool, Error> {
        let stop_at = probe.check(rk)?;
        let limit = stop_at.unwrap_or(rk.t());
        while self.next < self.ts.len() {
            let t = self.ts[self.next];
            let inside = if stop_at.is_some() {
                (limit - t) * self.dir > T::zero()
            } else {
                (limit - t) * self.dir >= T::zero()
            };
            if !inside {
                break;
            }
            let mut y = vec![T::zero(); rk.y().len()];
            rk.interpolate(t, &mut y)?;
            self.ys.push(y);
            self.next += 1;
        }
        if let Some(steps) = &mut self.steps {
            if stop_at.is_none() {
                steps.ts.push(rk.t());
                steps.ys.push(rk.y().to_vec());
            }
        }
        Ok(stop_at.is_some())
    }

    fn finish(
        self,
        stats: Stats,
        event: Option<EventHit<T>>,
        dense: Option<(Vec<DenseSegment<T>>, (Vec<T>, usize, usize))>,
        dim: usize,
    ) -> Solution<T> {
        let n = self.ys.len();
        let dense = dense.map(|(segments, (coefficients, degree, stages))| Dense {
            coefficients,
            degree,
            stages,
            dim,
            segments,
        });
        Solution { ts: self.ts[..n].to_vec(), ys: self.ys, stats, steps: self.steps, event, dense }
    }
}

/// Watches an event function across steps.
struct EventProbe<'e, T> {
    event: Option<Watch<'e, T>>,
    g_prev: T,
    buf: Vec<T>,
    hit: Option<EventHit<T>>,
}

impl<'e, T: Real> EventProbe<'e, T> {
    fn new(event: Option<Watch<'e, T>>, t0: T, y0: &[T], dim: usize) -> Self {
        let g_prev = event.as_ref().map_or(T::zero(), |e| (e.g)(t0, y0));
        EventProbe { event, g_prev, buf: vec![T::zero(); dim], hit: None }
    }

    fn g_at(
        buf: &mut [T],
        rk: &mut dyn StepView<T>,
        g: &dyn Fn(T, &[T]) -> T,
        t: T,
    ) -> Result<T, Error> {
        rk.interpolate(t, buf)?;
        Ok(g(t, buf))
    }

    /// Returns the event time if a crossing happened in the last accepted step.
    fn check(&mut self, rk: &mut dyn StepView<T>) -> Result<Option<T>, Error> {
        let Some(event) = &self.event else { return Ok(None) };
        let (t0, t1) = (rk.t_prev(), rk.t());
        let m = event.samples.clamp(1, Event::<()>::MAX_SAMPLES);
        let (mut ta, mut ga) = (t0, self.g_prev);
        if ga.is_nan() {
            return Err(Error::NonFiniteEvent { t: t0.to_f64_lossless() });
        }
        for j in 1..=m {
            let tb = if j == m { t1 } else { t0 + (t1 - t0) * T::lit(j as f64 / m as f64) };
            let gb = Self::g_at(&mut self.buf, rk, event.g, tb)?;
            if gb.is_nan() {
                return Err(Error::NonFiniteEvent { t: tb.to_f64_lossless() });
            }
            if event.direction.crosses(ga.to_f64_lossless(), gb.to_f64_lossless()) {
                let t = Self::refine(&mut self.buf, rk, event, (ta, ga), (tb, gb))?;
                let mut y = vec![T::zero(); self.buf.len()];
                rk.interpolate(t, &mut y)?;
                self.hit = Some(EventHit { t, y });
                return Ok(Some(t));
            }
            (ta, ga) = (tb, gb);
        }
        self.g_prev = ga;
        Ok(None)
    }

    /// Illinois regula falsi on `[a, b]` (with `g(a)`, `g(b)` of opposite signs, or
    /// `g(b) = 0`), falling back to bisection; returns the far end of the final bracket.
    fn refine(
        buf: &mut [T],
        rk: &mut dyn StepView<T>,
        event: &Watch<'_, T>,
        (mut a, mut ga): (T, T),
        (mut b, mut gb): (T, T),
    ) -> Result<T, Error> {
        let tol = T::lit(event.tol);
        let mut side = 0i8;
        for iter in 0..200 {
            if (b - a).abs() <= tol || gb == T::zero() {
                break;
            }
            let secant = (a * gb - b * ga) / (gb - ga);
            let inside = (secant - a) * (b - secant) > T::zero();
            let c = if iter % 4 == 3 || !inside { (a + b) * T::lit(0.5) } else { secant };
            let gc = Self::g_at(buf, rk, event.g, c)?;
            let crossed_before_c = gc == T::zero() || (gc > T::zero()) != (ga > T::zero());
            if crossed_before_c {
                (b, gb) = (c, gc);
                if side == -1 {
                    ga = ga * T::lit(0.5);
                }
                side = -1;
            } else {
                (a, ga) = (c, gc);
                if side == 1 {
                    gb = gb * T::lit(0.5);
                }
                side = 1;
            }
        }
        Ok(b)
    }
}

fn solve_adams<T: Real>(
    system: &dyn OdeSystem<T>,
    y0: &[T],
    ts: &[T],
    opts: &Options,
) -> Result<Solution<T>, Error> {
    let h = opts.step_size.ok_or(Error::MissingStepSize { method: opts.method.name() })?;
    if !(h.is_finite() && h > 0.0) {
        return Err(Error::InvalidStepSize { what: "step_size", value: h });
    }
    let mut adams = Adams::new(system, y0.len(), opts)?;
    adams.init(ts[0], y0);
    let mut ys = vec![y0.to_vec()];
    let mut steps = opts.save_steps.then(|| Steps { ts: vec![ts[0]], ys: vec![y0.to_vec()] });
    for w in ts.windows(2) {
        for t_next in fixed_grid(w[0], w[1], h) {
            adams.step(t_next)?;
            if let Some(s) = &mut steps {
                s.ts.push(adams.t);
                s.ys.push(adams.y.clone());
            }
        }
        ys.push(adams.y.clone());
    }
    if opts.dense {
        return Err(Error::UnsupportedMethod {
            method: opts.method.name(),
            detail: "Adams methods have no dense output; use a Runge-Kutta method".into(),
        });
    }
    Ok(Solution { ts: ts.to_vec(), ys, stats: adams.stats(), steps, event: None, dense: None })
}
