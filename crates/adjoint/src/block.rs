//! The ODE solve as a layer with a forward and a backward half.

use crate::error::{check_finite, forward};
use crate::strategy::{AdjointStrategy, Pullback, Record, Strategy};
use crate::{AdjointOptions, Error, Float, VectorField};

/// Gradients of a loss with respect to an ODE block's inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockGradients<R: Float = f64> {
    /// `∂L/∂z(t_0)`.
    pub z0: Vec<R>,
    /// `∂L/∂θ`.
    pub params: Vec<R>,
    /// `∂L/∂t_i` for every output time when [`AdjointOptions::time_gradients`] is on;
    /// empty otherwise.
    pub times: Vec<R>,
    /// Evaluations of the backward pass (each a VJP, or a recomputed forward stage).
    pub nfe_backward: usize,
}

/// `ODESolve(f, z0, ts, θ)` as a differentiable layer: [`OdeBlock::forward`] solves and
/// returns a [`Record`] (the states at `ts` and whatever the strategy keeps);
/// [`OdeBlock::backward`] takes the cotangents `∂L/∂z(t_i)` and returns the gradients with
/// respect to `z0`, `θ` and the times. Whatever comes before (an encoder, a stem) and after
/// (a decoder, a head) is differentiated by its own means, and the cotangents pass
/// between them:
///
/// ```
/// use adjoint::{AdjointOptions, ClosureField, OdeBlock, Strategy};
/// use ode_solvers::{Method, Options};
/// // dz/dt = θ z; then a "head" L = 3 z(1).
/// let field = ClosureField::new(1, vec![0.5],
///     |_t, z: &[f64], p: &[f64], dz: &mut [f64]| dz[0] = p[0] * z[0],
///     |_t, z: &[f64], p: &[f64], a: &[f64], vz: &mut [f64], vp: &mut [f64]| {
///         vz[0] = a[0] * p[0];
///         vp[0] = a[0] * z[0];
///         0.0
///     });
/// let block = OdeBlock::new(Strategy::Backsolve,
///     AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-10).atol(1e-10)));
/// let record = block.forward(&field, &[2.0], &[0.0, 1.0])?;
/// let z1 = record.zs[1][0];
/// let head_cotangent = vec![vec![0.0], vec![3.0]]; // ∂L/∂z(t_i) from the head
/// let g = block.backward(&field, &record, &head_cotangent)?;
/// assert!((z1 - 2.0 * 0.5f64.exp()).abs() < 1e-8);
/// assert!((g.z0[0] - 3.0 * 0.5f64.exp()).abs() < 1e-8);
/// assert!((g.params[0] - 3.0 * z1).abs() < 1e-8);
/// # Ok::<(), adjoint::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct OdeBlock<S = Strategy> {
    /// How the backward pass is computed.
    pub strategy: S,
    /// The forward and backward solves.
    pub opts: AdjointOptions,
}

impl<S> OdeBlock<S> {
    /// A block differentiated by `strategy`.
    pub fn new(strategy: S, opts: AdjointOptions) -> Self {
        OdeBlock { strategy, opts }
    }

    /// Solves `dz/dt = f(z, t, θ)`, `z(ts[0]) = z0` and records for the backward pass.
    pub fn forward<R: Float, F: VectorField<R> + ?Sized>(
        &self,
        field: &F,
        z0: &[R],
        ts: &[R],
    ) -> Result<Record<S::Tape, R>, Error>
    where
        S: AdjointStrategy<R>,
    {
        check_inputs(field, z0, ts)?;
        self.strategy.forward(field, z0, ts, &self.opts)
    }

    /// Pulls `cotangents[i] = ∂L/∂z(ts[i])` (one per output time, each of the state's
    /// length) back through the solve recorded in `record`, which `field` (with the same
    /// parameters) produced.
    pub fn backward<R: Float, F: VectorField<R> + ?Sized>(
        &self,
        field: &F,
        record: &Record<S::Tape, R>,
        cotangents: &[Vec<R>],
    ) -> Result<BlockGradients<R>, Error>
    where
        S: AdjointStrategy<R>,
    {
        check_backward(field, &record.ts, &record.zs, cotangents)?;
        let pull = self.strategy.backward(field, record, cotangents, &self.opts)?;
        let times = if self.opts.time_gradients {
            time_gradients(field, &record.ts, &record.zs, cotangents, &pull.z0)?
        } else {
            Vec::new()
        };
        check_finite("z0", &pull.z0)?;
        check_finite("params", &pull.params)?;
        check_finite("times", &times)?;
        Ok(BlockGradients {
            z0: pull.z0,
            params: pull.params,
            times,
            nfe_backward: pull.nfe_backward,
        })
    }
}

/// Checks a backward pass's inputs before any work: one cotangent per output time, each
/// finite and of the state's length, and a record whose states fit the field.
pub(crate) fn check_backward<R: Float, F: VectorField<R> + ?Sized>(
    field: &F,
    ts: &[R],
    zs: &[Vec<R>],
    cotangents: &[Vec<R>],
) -> Result<(), Error> {
    let d = field.dim();
    if cotangents.len() != ts.len() {
        return Err(Error::DimensionMismatch {
            what: "cotangents (one per output time)",
            expected: ts.len(),
            got: cotangents.len(),
        });
    }
    if let Some(c) = cotangents.iter().find(|c| c.len() != d) {
        return Err(Error::DimensionMismatch { what: "cotangent", expected: d, got: c.len() });
    }
    if zs.len() != ts.len() || zs.iter().any(|z| z.len() != d) {
        return Err(Error::InvalidArgument {
            what: "record",
            detail: "its states do not match this field; pass the record of this field's forward"
                .into(),
        });
    }
    if cotangents.iter().flatten().any(|x| !x.is_finite()) {
        return Err(Error::NonFiniteLoss);
    }
    Ok(())
}

/// A strategy's backward pass with its inputs checked first and its gradients after:
/// the strategies are public, so one called directly is as safe as through
/// [`OdeBlock`].
pub(crate) fn checked_pull<R: Float, F: VectorField<R> + ?Sized>(
    field: &F,
    ts: &[R],
    zs: &[Vec<R>],
    cotangents: &[Vec<R>],
    pull: impl FnOnce() -> Result<Pullback<R>, Error>,
) -> Result<Pullback<R>, Error> {
    check_backward(field, ts, zs, cotangents)?;
    let p = pull()?;
    check_finite("z0", &p.z0)?;
    check_finite("params", &p.params)?;
    Ok(p)
}

/// Checks a solve's inputs before any work.
pub(crate) fn check_inputs<R: Float, F: VectorField<R> + ?Sized>(
    field: &F,
    z0: &[R],
    ts: &[R],
) -> Result<(), Error> {
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
    if let Some(index) = z0.iter().position(|x| !x.is_finite()) {
        return Err(forward(ode_solvers::Error::NonFiniteInput { what: "z0", index }));
    }
    let dir = if ts.len() > 1 { (ts[1] - ts[0]).signum() } else { R::one() };
    if let Some(index) = (1..ts.len()).find(|&i| (ts[i] - ts[i - 1]) * dir <= R::zero()) {
        return Err(forward(ode_solvers::Error::UnsortedTimes { index }));
    }
    Ok(())
}

/// `∂L/∂t_i = g_iᵀ f(z_i, t_i)` for `i ≥ 1` (moving an observation along the trajectory)
/// and `∂L/∂t_0 = -(a(t_0) - g_0)ᵀ f(z_0, t_0)`: moving `t_0` with `z_0` fixed shifts every
/// later state by `-Φ(t_i, t_0) f(z_0, t_0)` but leaves `z(t_0) = z_0` itself alone.
fn time_gradients<R: Float, F: VectorField<R> + ?Sized>(
    field: &F,
    ts: &[R],
    zs: &[Vec<R>],
    cotangents: &[Vec<R>],
    a0: &[R],
) -> Result<Vec<R>, Error> {
    let mut f = vec![R::zero(); field.dim()];
    let dot = |a: &[R], b: &[R]| a.iter().zip(b).map(|(&x, &y)| x * y).sum::<R>();
    ts.iter()
        .enumerate()
        .map(|(i, &t)| {
            field.rhs(t, &zs[i], &mut f).map_err(|source| {
                crate::error::solve_error(
                    true,
                    ode_solvers::Error::Rhs { t: t.to_f64_lossless(), source },
                )
            })?;
            Ok(if i == 0 {
                -a0.iter().zip(&cotangents[0]).zip(&f).map(|((&a, &g), &f)| (a - g) * f).sum::<R>()
            } else {
                dot(&cotangents[i], &f)
            })
        })
        .collect()
}
