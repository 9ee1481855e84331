//! Fixed-step Adams-Bashforth and Adams-Bashforth-Moulton (PECE) methods.
//!
//! Coefficients: Hairer, Nørsett & Wanner, *Solving ODEs I*, §III.1, Tables 1.1 (explicit
//! Adams) and 1.2 (implicit Adams). The `k` starting values come from RK4 steps of the
//! same size; the history restarts whenever the step size changes (each interval between
//! requested times gets the largest uniform step not above `step_size`), so every requested
//! time is hit exactly and the order is kept.

use crate::rk::{RkIntegrator, Stats};
use crate::{Error, Method, OdeSystem, Options, Real};

/// Adams-Bashforth weights of `f_n, f_{n-1}, ...` for orders 1 to 5.
const AB: [&[f64]; 5] = [
    &[1.0],
    &[3.0 / 2.0, -1.0 / 2.0],
    &[23.0 / 12.0, -16.0 / 12.0, 5.0 / 12.0],
    &[55.0 / 24.0, -59.0 / 24.0, 37.0 / 24.0, -9.0 / 24.0],
    &[1901.0 / 720.0, -2774.0 / 720.0, 2616.0 / 720.0, -1274.0 / 720.0, 251.0 / 720.0],
];

/// Adams-Moulton weights of `f_{n+1}, f_n, ...` for orders 1 to 5.
const AM: [&[f64]; 5] = [
    &[1.0],
    &[1.0 / 2.0, 1.0 / 2.0],
    &[5.0 / 12.0, 8.0 / 12.0, -1.0 / 12.0],
    &[9.0 / 24.0, 19.0 / 24.0, -5.0 / 24.0, 1.0 / 24.0],
    &[251.0 / 720.0, 646.0 / 720.0, -264.0 / 720.0, 106.0 / 720.0, -19.0 / 720.0],
];

/// The ends of the fewest uniform steps not longer than `h` that go from `from` to
/// exactly `to` (the last one is `to` itself, not a rounded sum).
pub(crate) fn fixed_grid<T: Real>(from: T, to: T, h: f64) -> impl Iterator<Item = T> {
    let n = ((to - from).to_f64_lossless().abs() / h * (1.0 - 1e-12)).ceil();
    let n = if n.is_finite() && n >= 1.0 { n as usize } else { 1 };
    let dt = (to - from) / T::lit(n as f64);
    (1..=n).map(move |j| if j == n { to } else { from + dt * T::lit(j as f64) })
}

/// A multistep integrator over a ring buffer of past derivatives; allocation-free after
/// construction.
pub(crate) struct Adams<'s, T: Real, S: OdeSystem<T> + ?Sized> {
    system: &'s S,
    dim: usize,
    ab: Vec<T>,
    am: Option<Vec<T>>,
    starter: RkIntegrator<'s, T, S>,
    /// `hist[(head - i) mod k]` holds `f_{n-i}`.
    hist: Vec<T>,
    head: usize,
    len: usize,
    h: T,
    pub(crate) t: T,
    pub(crate) y: Vec<T>,
    y_new: Vec<T>,
    fp: Vec<T>,
    stats: Stats,
    max_steps: usize,
}

impl<'s, T: Real, S: OdeSystem<T> + ?Sized> Adams<'s, T, S> {
    pub(crate) fn new(system: &'s S, dim: usize, opts: &Options) -> Result<Self, Error> {
        let (k, moulton) = match opts.method {
            Method::AdamsBashforth(k) => (k, false),
            Method::AdamsBashforthMoulton(k) => (k, true),
            m => {
                return Err(Error::UnsupportedMethod {
                    method: m.name(),
                    detail: "not an Adams method".into(),
                })
            }
        };
        if !(1..=5).contains(&k) {
            return Err(Error::UnsupportedMethod {
                method: opts.method.name(),
                detail: format!("order {k} is not available; Adams methods have orders 1 to 5"),
            });
        }
        let k = usize::from(k);
        let mut rk4 = opts.clone();
        rk4.method = Method::Rk4;
        let lits = |c: &[f64]| c.iter().map(|&x| T::lit(x)).collect::<Vec<T>>();
        Ok(Adams {
            system,
            dim,
            ab: lits(AB[k - 1]),
            am: moulton.then(|| lits(AM[k - 1])),
            starter: RkIntegrator::new(system, dim, &rk4)?,
            hist: vec![T::zero(); k * dim],
            head: 0,
            len: 0,
            h: T::zero(),
            t: T::zero(),
            y: vec![T::zero(); dim],
            y_new: vec![T::zero(); dim],
            fp: vec![T::zero(); dim],
            stats: Stats::default(),
            max_steps: opts.max_steps,
        })
    }

    pub(crate) fn init(&mut self, t0: T, y0: &[T]) {
        self.t = t0;
        self.y.copy_from_slice(y0);
        self.len = 0;
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.nfe += self.starter.stats().nfe;
        s
    }

    fn push_f(&mut self) -> Result<(), Error> {
        let k = self.ab.len();
        let dim = self.dim;
        self.head = (self.head + 1) % k;
        let slot = &mut self.hist[self.head * dim..(self.head + 1) * dim];
        self.stats.nfe += 1;
        self.system
            .rhs(self.t, &self.y, slot)
            .map_err(|source| Error::Rhs { t: self.t.to_f64_lossless(), source })?;
        self.len = (self.len + 1).min(k);
        Ok(())
    }

    /// `y_new += h Σ_i w_i f_{n-i}` over the history.
    fn add_history(&mut self, h: T, weights: &[T]) {
        if self.dim == 0 {
            return;
        }
        let (k, dim) = (self.hist.len() / self.dim, self.dim);
        for (i, &w) in weights.iter().enumerate() {
            let idx = (self.head + k - i) % k;
            let hw = h * w;
            for (o, &f) in self.y_new.iter_mut().zip(&self.hist[idx * dim..(idx + 1) * dim]) {
                *o = *o + hw * f;
            }
        }
    }

    /// Takes one step of size `h` (restarting the history when `h` changed).
    pub(crate) fn step(&mut self, t_next: T) -> Result<(), Error> {
        if self.stats.accepted >= self.max_steps {
            return Err(Error::MaxStepsReached {
                t: self.t.to_f64_lossless(),
                steps: self.max_steps,
            });
        }
        let h = t_next - self.t;
        let k = self.ab.len();
        if self.len == 0 || (h - self.h).abs() > T::lit(1e-10) * h.abs() {
            self.h = h;
            self.len = 0;
            self.push_f()?;
        }
        if self.len < k {
            // Starting phase: one RK4 step.
            self.starter.init(self.t, &self.y, t_next)?;
            self.starter.step_to(t_next)?;
            self.y_new.copy_from_slice(self.starter.y());
        } else {
            self.y_new.copy_from_slice(&self.y);
            let ab = std::mem::take(&mut self.ab);
            self.add_history(h, &ab);
            self.ab = ab;
            if let Some(am) = self.am.take() {
                // Evaluate the predictor, then correct with the implicit Adams weights.
                self.stats.nfe += 1;
                self.system
                    .rhs(t_next, &self.y_new, &mut self.fp)
                    .map_err(|source| Error::Rhs { t: t_next.to_f64_lossless(), source })?;
                let g0 = h * am[0];
                for ((o, &y), &fp) in self.y_new.iter_mut().zip(&self.y).zip(&self.fp) {
                    *o = y + g0 * fp;
                }
                self.add_history(h, &am[1..]);
                self.am = Some(am);
            }
        }
        if !self.y_new.iter().all(|x| x.is_finite()) {
            return Err(Error::NonFinite { t: self.t.to_f64_lossless() });
        }
        std::mem::swap(&mut self.y, &mut self.y_new);
        self.t = t_next;
        self.stats.accepted += 1;
        self.push_f()
    }
}
