//! Direct backpropagation through the solver's own steps.

use ode_solvers::{RkIntegrator, Steps};

use super::{forward_options, solve_forward, AdjointStrategy, Pullback, Record};
use crate::error::{backward, forward};
use crate::{AdjointOptions, Error, Float, VectorField};

/// Backpropagation through the Runge-Kutta stages of every forward step: the exact
/// gradient of the discrete forward solution, with the accepted steps held fixed. The
/// forward pass is `odeint` itself (the same steps, bit for bit); the backward pass
/// replays each step through the RK engine ([`RkIntegrator::step_to`] from the stored
/// step start) and pulls the cotangents back through its stages, its end weights and, for
/// output times inside a step, its dense output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Direct;

impl<R: Float> AdjointStrategy<R> for Direct {
    /// Every accepted forward step.
    type Tape = Steps<R>;

    fn forward<F: VectorField<R> + ?Sized>(
        &self,
        field: &F,
        z0: &[R],
        ts: &[R],
        opts: &AdjointOptions,
    ) -> Result<Record<Steps<R>, R>, Error> {
        if opts.forward.method.tableau().is_none() {
            return Err(forward(ode_solvers::Error::UnsupportedMethod {
                method: opts.forward.method.name(),
                detail: "direct backpropagation needs a Runge-Kutta method".into(),
            }));
        }
        solve_forward(field, z0, ts, opts, |o| o.save_steps(true), |sol| sol.steps.take())
    }

    fn backward<F: VectorField<R> + ?Sized>(
        &self,
        field: &F,
        record: &Record<Steps<R>, R>,
        cotangents: &[Vec<R>],
        opts: &AdjointOptions,
    ) -> Result<Pullback<R>, Error> {
        crate::block::checked_pull(field, &record.ts, &record.zs, cotangents, || {
            self.pull(field, &record.ts, &record.tape, cotangents, opts)
        })
    }
}

impl Direct {
    /// The backward pass over the recorded `steps`.
    pub(crate) fn pull<R: Float, F: VectorField<R> + ?Sized>(
        &self,
        field: &F,
        ts: &[R],
        steps: &Steps<R>,
        cotangents: &[Vec<R>],
        opts: &AdjointOptions,
    ) -> Result<Pullback<R>, Error> {
        let (d, p) = (field.dim(), field.params().len());
        let mut rk =
            RkIntegrator::new(field, d, &forward_options(field, opts)?).map_err(backward)?;
        let s = rk.total_stages();
        let mut kbar = vec![vec![R::zero(); d]; s];
        let mut weights = vec![R::zero(); s];
        let (mut yi, mut fbuf, mut vz, mut vp) =
            (vec![R::zero(); d], vec![R::zero(); d], vec![R::zero(); d], vec![R::zero(); p]);
        let mut abar = vec![R::zero(); d];
        let mut pbar = vec![R::zero(); p];
        let mut vjps = 0;
        let dir = if ts.len() > 1 && ts[1] < ts[0] { -R::one() } else { R::one() };
        // Output times still to pull back, from the last; ts[0] is added at the end.
        let mut o = ts.len() - 1;
        for m in (0..steps.ts.len().saturating_sub(1)).rev() {
            let (t0, t1) = (steps.ts[m], steps.ts[m + 1]);
            while o > 0 && ts[o] == t1 {
                add(&mut abar, &cotangents[o]);
                o -= 1;
            }
            rk.init(t0, &steps.ys[m], t1).map_err(backward)?;
            rk.step_to(t1).map_err(backward)?;
            let h = t1 - t0;
            kbar.iter_mut().for_each(|k| k.fill(R::zero()));
            for (i, b) in rk.end_weights() {
                kbar[i].iter_mut().zip(&abar).for_each(|(k, &a)| *k = h * b * a);
            }
            // Outputs inside the step come from its dense output y_n + Σ_j w_j k_j.
            while o > 0 && (ts[o] - t0) * dir > R::zero() {
                rk.dense_weights(ts[o], &mut weights).map_err(backward)?;
                for (j, &w) in weights.iter().enumerate() {
                    if w != R::zero() {
                        kbar[j].iter_mut().zip(&cotangents[o]).for_each(|(k, &g)| *k = *k + w * g);
                    }
                }
                add(&mut abar, &cotangents[o]);
                o -= 1;
            }
            // Reverse through the stages k_i = f(t_i, y_n + h Σ_j a_ij k_j).
            for i in (0..s).rev() {
                if kbar[i].iter().all(|&x| x == R::zero()) {
                    continue;
                }
                rk.stage_input(i, &mut yi).map_err(backward)?;
                let ti = rk.stage_time(i).unwrap_or(t0);
                field.vjp(ti, &yi, &kbar[i], &mut fbuf, &mut vz, &mut vp).map_err(|e| {
                    Error::Field { backward: true, t: ti.to_f64_lossless(), cause: Box::new(e) }
                })?;
                vjps += 1;
                add(&mut abar, &vz);
                add(&mut pbar, &vp);
                for (j, a) in rk.stage_coefficients(i) {
                    kbar[j].iter_mut().zip(&vz).for_each(|(k, &v)| *k = *k + h * a * v);
                }
            }
        }
        add(&mut abar, &cotangents[0]);
        Ok(Pullback { z0: abar, params: pbar, nfe_backward: rk.stats().nfe + vjps })
    }
}

fn add<R: Float>(acc: &mut [R], v: &[R]) {
    acc.iter_mut().zip(v).for_each(|(a, &x)| *a = *a + x);
}
