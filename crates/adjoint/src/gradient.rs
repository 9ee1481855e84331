//! `gradient()`: a loss on an ODE solution and its gradients in one call, on top of
//! [`OdeBlock`]; and its batched form over chunks.

use ode_solvers::Options;

use crate::{AdjointStrategy, Error, Float, OdeBlock, Strategy, VectorField};

/// Options of a gradient computation.
#[derive(Debug, Clone)]
pub struct AdjointOptions {
    /// The forward solve.
    pub forward: Options,
    /// The backward solve (method, tolerances, step budget; its layout is derived from the
    /// forward one). Ignored by `Direct`.
    pub backward: Options,
    /// Exclude the parameter adjoint from the backward solve's error control (Kidger, Chen &
    /// Lyons 2021): on by default.
    pub seminorm: bool,
    /// Compute `∂L/∂t_i` (one more field evaluation per output time): off by default.
    pub time_gradients: bool,
}

impl AdjointOptions {
    /// The same method and tolerances both ways, seminorm on, no time gradients.
    pub fn new(forward: Options) -> Self {
        AdjointOptions { backward: forward.clone(), forward, seminorm: true, time_gradients: false }
    }

    /// Sets the backward solve's options.
    pub fn backward(mut self, backward: Options) -> Self {
        self.backward = backward;
        self
    }

    /// Turns the seminorm on or off.
    pub fn seminorm(mut self, on: bool) -> Self {
        self.seminorm = on;
        self
    }

    /// Asks for the gradients with respect to the output times.
    pub fn time_gradients(mut self, on: bool) -> Self {
        self.time_gradients = on;
        self
    }
}

/// A loss value with its gradients, in the solve's precision `R` (the loss in `f64`).
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients<R: Float = f64> {
    /// The loss.
    pub loss: f64,
    /// `∂L/∂z(t_0)`.
    pub z0: Vec<R>,
    /// `∂L/∂θ`.
    pub params: Vec<R>,
    /// `∂L/∂t_i` for every output time (empty unless asked for).
    pub times: Vec<R>,
    /// The states at the output times.
    pub zs: Vec<Vec<R>>,
    /// Right-hand-side evaluations of the forward solve.
    pub nfe_forward: usize,
    /// Evaluations of the backward pass (each a VJP, or a recomputed forward stage).
    pub nfe_backward: usize,
}

/// A loss of the states at the output times: returns `L` and `∂L/∂z(t_i)` for every `i`.
pub type Loss<'a, R = f64> = &'a dyn Fn(&[Vec<R>]) -> (f64, Vec<Vec<R>>);

/// Computes the loss on the solution of `dz/dt = f(z, t, θ)`, `z(ts[0]) = z0`, at `ts`,
/// and its gradients with respect to `z0`, `θ` (and the times, if asked): the forward
/// half of an [`OdeBlock`], the loss, then its backward half.
pub fn gradient<R: Float, F: VectorField<R> + ?Sized>(
    field: &F,
    z0: &[R],
    ts: &[R],
    loss: Loss<'_, R>,
    strategy: Strategy,
    opts: &AdjointOptions,
) -> Result<Gradients<R>, Error> {
    gradient_with(&OdeBlock::new(strategy, opts.clone()), field, z0, ts, loss)
}

/// [`gradient`] for any [`AdjointStrategy`].
pub fn gradient_with<R: Float, S: AdjointStrategy<R>, F: VectorField<R> + ?Sized>(
    block: &OdeBlock<S>,
    field: &F,
    z0: &[R],
    ts: &[R],
    loss: Loss<'_, R>,
) -> Result<Gradients<R>, Error> {
    let record = block.forward(field, z0, ts)?;
    let (value, cotangents) = loss(&record.zs);
    if !value.is_finite() {
        return Err(Error::NonFiniteLoss);
    }
    let g = block.backward(field, &record, &cotangents)?;
    Ok(Gradients {
        loss: value,
        z0: g.z0,
        params: g.params,
        times: g.times,
        zs: record.zs,
        nfe_forward: record.nfe_forward,
        nfe_backward: g.nfe_backward,
    })
}

/// Gradients of a batch split into chunks, each solved (with its own adaptive steps) in
/// parallel with rayon. `make_field(c)` builds chunk `c`'s field (its own buffers, the
/// same parameters), `z0s[c]` is its initial state and `loss(c, zs)` its share of a loss
/// that is a sum over chunks. Losses, parameter and time gradients are summed in chunk
/// order, so the result is bit-identical for any number of threads; `z0` holds the chunks'
/// gradients one after the other.
pub fn gradient_chunks<R, F, M, L>(
    make_field: M,
    z0s: &[Vec<R>],
    ts: &[R],
    loss: L,
    strategy: Strategy,
    opts: &AdjointOptions,
) -> Result<Gradients<R>, Error>
where
    R: Float,
    F: VectorField<R>,
    M: Fn(usize) -> Result<F, Error> + Sync,
    L: Fn(usize, &[Vec<R>]) -> (f64, Vec<Vec<R>>) + Sync,
{
    use rayon::prelude::*;
    let parts: Vec<Result<Gradients<R>, Error>> = z0s
        .par_iter()
        .enumerate()
        .map(|(c, z0)| {
            let field = make_field(c)?;
            let chunk_loss = |zs: &[Vec<R>]| loss(c, zs);
            gradient(&field, z0, ts, &chunk_loss, strategy, opts)
        })
        .collect();
    let mut total: Option<Gradients<R>> = None;
    for part in parts {
        let g = part?;
        total = Some(match total {
            None => g,
            Some(mut t) => {
                // Every chunk's field must have the same parameters (and the same times):
                // summing gradients of different lengths would drop entries silently.
                if g.params.len() != t.params.len() {
                    return Err(Error::DimensionMismatch {
                        what: "chunk parameters",
                        expected: t.params.len(),
                        got: g.params.len(),
                    });
                }
                t.loss += g.loss;
                t.z0.extend(&g.z0);
                t.params.iter_mut().zip(&g.params).for_each(|(a, &b)| *a = *a + b);
                t.times.iter_mut().zip(&g.times).for_each(|(a, &b)| *a = *a + b);
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
