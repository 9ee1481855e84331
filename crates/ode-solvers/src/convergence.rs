//! Measuring orders of accuracy, as the test suite and `cargo xtask orders` do, so users
//! can property-test the methods on their own problems.
//!
//! ```
//! use ode_solvers::{convergence, Method};
//! // y' = -y, y(0) = 1: exact y(1) = e^-1.
//! let f = |_t: f64, y: &[f64], dy: &mut [f64]| dy[0] = -y[0];
//! let est = convergence::global_order(&f, &[1.0], 1.0, &[(-1.0f64).exp()], Method::Rk4, &convergence::default_steps(Method::Rk4))?;
//! assert!((est.order - 4.0).abs() < 0.3);
//! # Ok::<(), ode_solvers::Error>(())
//! ```

use crate::{odeint, Error, Method, OdeSystem, Options, RkIntegrator};

/// Errors at several step sizes and the fitted order.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderEstimate {
    /// Step sizes used.
    pub hs: Vec<f64>,
    /// Max-norm errors at those step sizes.
    pub errors: Vec<f64>,
    /// Least-squares slope of `log(error)` against `log(h)` over the four smallest step
    /// sizes whose error is above `1e-13` (below that, round-off dominates): the most
    /// asymptotic range f64 resolves. NaN with fewer than three such points.
    pub order: f64,
}

/// Least-squares slope of `log(y)` against `log(x)`; NaN with fewer than two points.
pub fn fit_slope(xs: &[f64], ys: &[f64]) -> f64 {
    let pts: Vec<(f64, f64)> = xs.iter().zip(ys).map(|(x, y)| (x.ln(), y.ln())).collect();
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return f64::NAN;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    sxy / sxx
}

fn estimate(hs: Vec<f64>, errors: Vec<f64>) -> OrderEstimate {
    let mut pts: Vec<(f64, f64)> =
        hs.iter().zip(&errors).filter(|(_, &e)| e > 1e-13).map(|(h, e)| (*h, *e)).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts.truncate(4);
    let (x, y): (Vec<f64>, Vec<f64>) = pts.into_iter().unzip();
    let order = if x.len() >= 3 { fit_slope(&x, &y) } else { f64::NAN };
    OrderEstimate { hs, errors, order }
}

fn max_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Global error at `t_end` of `method` run with `n` fixed steps over `[0, t_end]`, for each
/// `n` in `steps`, against the exact `y(t_end)`; adaptive methods run with fixed steps.
pub fn global_order<S: OdeSystem<f64> + ?Sized>(
    system: &S,
    y0: &[f64],
    t_end: f64,
    exact: &[f64],
    method: Method,
    steps: &[usize],
) -> Result<OrderEstimate, Error> {
    if exact.len() != y0.len() {
        return Err(Error::DimensionMismatch {
            what: "exact solution",
            expected: y0.len(),
            got: exact.len(),
        });
    }
    let mut hs = Vec::new();
    let mut errors = Vec::new();
    for &n in steps {
        let h = t_end / n as f64;
        let sol = odeint(
            system,
            y0,
            &[0.0, t_end],
            &Options::new(method).step_size(h).max_steps(10 * n + 10),
        )?;
        hs.push(h);
        errors.push(max_err(&sol.ys[1], exact));
    }
    Ok(estimate(hs, errors))
}

/// Local error of the dense output: one step of size `h` from the exact state at `t0`;
/// the error is the largest over `t0 + θh` for `θ` in `thetas`, for each `h`. A method
/// whose interpolant has order `q` shows a slope of `q + 1`.
pub fn dense_local_order<S, E>(
    system: &S,
    exact: E,
    t0: f64,
    thetas: &[f64],
    method: Method,
    hs: &[f64],
) -> Result<OrderEstimate, Error>
where
    S: OdeSystem<f64> + ?Sized,
    E: Fn(f64) -> Vec<f64>,
{
    let y0 = exact(t0);
    let mut rk = RkIntegrator::new(system, y0.len(), &Options::new(method))?;
    let mut out = vec![0.0; y0.len()];
    let mut errors = Vec::new();
    for &h in hs {
        rk.init(t0, &y0, t0 + h)?;
        rk.step_to(t0 + h)?;
        let mut worst: f64 = 0.0;
        for &theta in thetas {
            rk.interpolate(t0 + theta * h, &mut out)?;
            let want = exact(t0 + theta * h);
            if want.len() != out.len() {
                return Err(Error::DimensionMismatch {
                    what: "exact solution",
                    expected: out.len(),
                    got: want.len(),
                });
            }
            worst = worst.max(max_err(&out, &want));
        }
        errors.push(worst);
    }
    Ok(estimate(hs.to_vec(), errors))
}

/// Step counts over `[0, 1]` that keep `method` between its pre-asymptotic regime and
/// round-off error on problems of unit scale.
pub fn default_steps(method: Method) -> Vec<usize> {
    let rk = match method.order() {
        0 | 1 => 64.0,
        2 => 32.0,
        3 => 16.0,
        4 => 8.0,
        5 => 8.0,
        _ => 2.0,
    };
    // Adams methods have error constants 10-100 times those of Runge-Kutta methods of the
    // same order.
    let n0 = if method.tableau().is_none() { 4.0 * rk } else { rk };
    let ratio: f64 = if method.order() >= 6 { 1.4 } else { 1.5 };
    (0..5).map(|i| (n0 * ratio.powi(i)).round() as usize).collect()
}

/// Frequency scale of the order tests' problems.
///
/// Fifth-order methods have small principal error coefficients (on `y' = λy`, Tsit5's
/// coefficient of `z^6`, `z = hλ`, is `4.3e-5` against `2.0e-4` for `z^7`), so their
/// asymptotic regime starts at small `|hλ|`, where errors on a unit-scale problem are near
/// round-off and fitted slopes drift towards `p + 1`. The order tests therefore run their
/// problems with a rotation 10 times faster and 10 times more steps: the same `hλ`, errors
/// well above round-off. Measured on the limit cycle, slopes at scale 1 / 10: Dopri5
/// 5.55 / 5.04, Tsit5 6.08 / 5.16, DOP853 8.42 / 7.95.
pub const ASYMPTOTIC_SCALE: f64 = 10.0;

/// [`default_steps`] for the order tests' problems, sped up by [`ASYMPTOTIC_SCALE`].
pub fn scaled_steps(method: Method) -> Vec<usize> {
    default_steps(method).into_iter().map(|n| (n as f64 * ASYMPTOTIC_SCALE) as usize).collect()
}

/// Step sizes for [`dense_local_order`] for an interpolant of order `q`: a geometric grid
/// reaching down into round-off, from which the estimate keeps the finest resolvable
/// points.
pub fn default_dense_steps(q: u32) -> Vec<f64> {
    // The estimate keeps only the finest resolvable points, so starting coarse just makes
    // sure there are enough of them, also for problems where the interpolant is unusually
    // accurate.
    let _ = q;
    (0..16).map(|i| 0.8 / 1.3f64.powi(i)).collect()
}
