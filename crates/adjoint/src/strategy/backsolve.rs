//! The backsolve adjoint: `z` integrated backwards beside the adjoint.

use super::{backward_options, solve_forward, sweep, AdjointStrategy, Pullback, Record};
use crate::{AdjointOptions, Error, Float, VectorField};

/// The adjoint method of Chen et al. (2018), Algorithm 1: the augmented state
/// `[z, a, ∂L/∂θ]` solved backwards with dynamics `[f, -aᵀ∂f/∂z, -aᵀ∂f/∂θ]`, `z` reset to
/// the recorded output at every output time. O(1) memory in the number of steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backsolve;

impl<R: Float> AdjointStrategy<R> for Backsolve {
    /// Nothing beyond the outputs.
    type Tape = ();

    fn forward<F: VectorField<R> + ?Sized>(
        &self,
        field: &F,
        z0: &[R],
        ts: &[R],
        opts: &AdjointOptions,
    ) -> Result<Record<(), R>, Error> {
        solve_forward(field, z0, ts, opts, |o| o, |_| Some(()))
    }

    fn backward<F: VectorField<R> + ?Sized>(
        &self,
        field: &F,
        record: &Record<(), R>,
        cotangents: &[Vec<R>],
        opts: &AdjointOptions,
    ) -> Result<Pullback<R>, Error> {
        crate::block::checked_pull(field, &record.ts, &record.zs, cotangents, || {
            self.pull(field, &record.ts, &record.zs, cotangents, opts)
        })
    }
}

impl Backsolve {
    /// The backward pass from the recorded outputs `zs` at `ts`.
    pub(crate) fn pull<R: Float, F: VectorField<R> + ?Sized>(
        &self,
        field: &F,
        ts: &[R],
        zs: &[Vec<R>],
        cotangents: &[Vec<R>],
        opts: &AdjointOptions,
    ) -> Result<Pullback<R>, Error> {
        let (d, p) = (field.dim(), field.params().len());
        let n = ts.len();
        let mut state = vec![R::zero(); 2 * d + p];
        state[..d].copy_from_slice(&zs[n - 1]);
        state[d..2 * d].copy_from_slice(&cotangents[n - 1]);
        let augmented = |t: R, s: &[R], ds: &mut [R]| {
            let (z, a) = (&s[..d], &s[d..2 * d]);
            let (dz, rest) = ds.split_at_mut(d);
            let (da, dp) = rest.split_at_mut(d);
            field.vjp(t, z, a, dz, da, dp)?;
            da.iter_mut().chain(dp.iter_mut()).for_each(|x| *x = -*x);
            Ok(())
        };
        let bopts = backward_options(field, opts, true, cotangents)?;
        let nfe_backward = sweep(ts, cotangents, &mut state, d, &bopts, augmented, |i, s| {
            s[..d].copy_from_slice(&zs[i]);
            Ok(())
        })?;
        Ok(Pullback { z0: state[d..2 * d].to_vec(), params: state[2 * d..].to_vec(), nfe_backward })
    }
}
