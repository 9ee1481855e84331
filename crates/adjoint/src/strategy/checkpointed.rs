//! The checkpointed adjoint: `z(t)` read from the forward solve's dense output.

use ode_solvers::Dense;

use super::{backward_options, solve_forward, sweep, AdjointStrategy, Pullback, Record};
use crate::error::backward;
use crate::{AdjointOptions, Error, Float, VectorField};

/// The backward ODE for `[a, ∂L/∂θ]`, with `z(t)` read from the forward solve's dense
/// output (every accepted step's stages, kept by the forward pass) instead of integrated
/// backwards: no reconstruction error, no forward evaluation in the backward pass,
/// O(steps) memory (`stages + 2` state vectors per step: 9 for Dopri5). Runge-Kutta
/// methods only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpointed;

impl<R: Float> AdjointStrategy<R> for Checkpointed {
    /// The forward solve's dense output.
    type Tape = Dense<R>;

    fn forward<F: VectorField<R> + ?Sized>(
        &self,
        field: &F,
        z0: &[R],
        ts: &[R],
        opts: &AdjointOptions,
    ) -> Result<Record<Dense<R>, R>, Error> {
        solve_forward(field, z0, ts, opts, |o| o.dense(true), |sol| sol.dense.take())
    }

    fn backward<F: VectorField<R> + ?Sized>(
        &self,
        field: &F,
        record: &Record<Dense<R>, R>,
        cotangents: &[Vec<R>],
        opts: &AdjointOptions,
    ) -> Result<Pullback<R>, Error> {
        crate::block::checked_pull(field, &record.ts, &record.zs, cotangents, || {
            self.pull(field, &record.ts, &record.tape, cotangents, opts)
        })
    }
}

impl Checkpointed {
    /// The backward pass over the forward solve's `dense` output.
    pub(crate) fn pull<R: Float, F: VectorField<R> + ?Sized>(
        &self,
        field: &F,
        ts: &[R],
        dense: &Dense<R>,
        cotangents: &[Vec<R>],
        opts: &AdjointOptions,
    ) -> Result<Pullback<R>, Error> {
        let (d, p) = (field.dim(), field.params().len());
        let n = ts.len();
        let scratch = std::cell::RefCell::new((vec![R::zero(); d], vec![R::zero(); d]));
        let mut state = vec![R::zero(); d + p];
        state[..d].copy_from_slice(&cotangents[n - 1]);
        let adjoint = |t: R, s: &[R], ds: &mut [R]| {
            let mut guard = scratch.borrow_mut();
            let (z, f) = &mut *guard;
            dense.at_into(t, z).map_err(backward)?;
            let (da, dp) = ds.split_at_mut(d);
            field.vjp(t, z, &s[..d], f, da, dp)?;
            ds.iter_mut().for_each(|x| *x = -*x);
            Ok(())
        };
        let bopts = backward_options(field, opts, false, cotangents)?;
        let nfe_backward = sweep(ts, cotangents, &mut state, 0, &bopts, adjoint, |_, _| Ok(()))?;
        Ok(Pullback { z0: state[..d].to_vec(), params: state[d..].to_vec(), nfe_backward })
    }
}
