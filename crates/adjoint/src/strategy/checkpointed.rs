//! The checkpointed adjoint: `z(t)` re-created from the stored forward steps.

use std::cell::RefCell;

use ode_solvers::{RkIntegrator, Steps};

use super::{
    backward_options, forward_options, solve_forward, sweep, AdjointStrategy, Pullback, Record,
};
use crate::error::backward;
use crate::{AdjointOptions, Error, VectorField};

/// The backward ODE for `[a, ∂L/∂θ]`, with `z(t)` recomputed from the stored forward
/// steps (each step replayed once, its dense output giving `z(t)`) instead of integrated
/// backwards: no reconstruction error, O(steps) memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpointed;

/// The forward trajectory, re-created step by step from stored step starts: each step is
/// recomputed once (the same method and step, hence the same stages) and its dense output
/// gives `z(t)`.
struct Trajectory<'a, F: VectorField + ?Sized> {
    rk: RkIntegrator<'a, f64, F>,
    steps: &'a Steps<f64>,
    current: Option<usize>,
}

impl<F: VectorField + ?Sized> Trajectory<'_, F> {
    /// Writes `z(t)` into `out`.
    fn at(&mut self, t: f64, out: &mut [f64]) -> Result<(), ode_solvers::Error> {
        let ts = &self.steps.ts;
        let dir = if ts.len() > 1 && ts[1] < ts[0] { -1.0 } else { 1.0 };
        let inside = |n: usize| (t - ts[n]) * dir >= 0.0 && (ts[n + 1] - t) * dir >= 0.0;
        match self.current {
            Some(n) if inside(n) => {}
            _ => {
                let last = ts.len().saturating_sub(2);
                let k = ts.partition_point(|&s| (t - s) * dir > 0.0);
                let n = k.saturating_sub(1).min(last);
                self.rk.init(ts[n], &self.steps.ys[n], ts[n + 1])?;
                self.rk.step_to(ts[n + 1])?;
                self.current = Some(n);
            }
        }
        self.rk.interpolate(t, out)
    }
}

impl AdjointStrategy for Checkpointed {
    /// Every accepted forward step.
    type Tape = Steps<f64>;

    fn forward<F: VectorField + ?Sized>(
        &self,
        field: &F,
        z0: &[f64],
        ts: &[f64],
        opts: &AdjointOptions,
    ) -> Result<Record<Steps<f64>>, Error> {
        solve_forward(field, z0, ts, opts, true)
    }

    fn backward<F: VectorField + ?Sized>(
        &self,
        field: &F,
        record: &Record<Steps<f64>>,
        cotangents: &[Vec<f64>],
        opts: &AdjointOptions,
    ) -> Result<Pullback, Error> {
        crate::block::checked_pull(field, &record.ts, &record.zs, cotangents, || {
            self.pull(field, &record.ts, &record.tape, cotangents, opts)
        })
    }
}

impl Checkpointed {
    /// The backward pass over the recorded `steps`.
    pub(crate) fn pull<F: VectorField + ?Sized>(
        &self,
        field: &F,
        ts: &[f64],
        steps: &Steps<f64>,
        cotangents: &[Vec<f64>],
        opts: &AdjointOptions,
    ) -> Result<Pullback, Error> {
        let (d, p) = (field.dim(), field.params().len());
        let n = ts.len();
        let mut replay_opts = forward_options(field, opts)?;
        replay_opts.step_size = None;
        let rk = RkIntegrator::new(field, d, &replay_opts).map_err(backward)?;
        let trajectory = RefCell::new(Trajectory { rk, steps, current: None });
        let scratch = RefCell::new((vec![0.0; d], vec![0.0; d]));
        let mut state = vec![0.0; d + p];
        state[..d].copy_from_slice(&cotangents[n - 1]);
        let adjoint = |t: f64, s: &[f64], ds: &mut [f64]| {
            let mut guard = scratch.borrow_mut();
            let (z, f) = &mut *guard;
            trajectory.borrow_mut().at(t, z).map_err(backward)?;
            let (da, dp) = ds.split_at_mut(d);
            field.vjp(t, z, &s[..d], f, da, dp)?;
            ds.iter_mut().for_each(|x| *x = -*x);
            Ok(())
        };
        let bopts = backward_options(field, opts, false, cotangents)?;
        let mut nfe_backward =
            sweep(ts, cotangents, &mut state, 0, &bopts, adjoint, |_, _| Ok(()))?;
        nfe_backward += trajectory.borrow().rk.stats().nfe;
        Ok(Pullback { z0: state[..d].to_vec(), params: state[d..].to_vec(), nfe_backward })
    }
}
