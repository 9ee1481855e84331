//! Interpolation baselines: each value of a series interpolated between its observed
//! entries, linearly or by a natural cubic spline, held constant outside them.

use crate::data::Series;
use crate::Error;

/// How [`interpolate`] fills in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// Piecewise linear.
    Linear,
    /// A natural cubic spline (linear with two points, constant with one).
    CubicSpline,
}

/// The series' values at `times` (one row of `dim` per time), each value from its own
/// observed entries; a value never observed is 0.
pub fn interpolate(s: &Series, times: &[f64], kind: Interpolation) -> Result<Vec<Vec<f64>>, Error> {
    s.check()?;
    if let Some(i) = times.iter().position(|t| !t.is_finite()) {
        return Err(Error::InvalidArgument {
            what: "query times",
            detail: format!("time {i} is {}", times[i]),
        });
    }
    let mut out = vec![vec![0.0; s.dim]; times.len()];
    for j in 0..s.dim {
        let (xs, ys): (Vec<f64>, Vec<f64>) =
            (0..s.len()).filter_map(|i| s.get(i, j).map(|v| (s.times[i], v))).unzip();
        if xs.is_empty() {
            continue;
        }
        let m = match kind {
            Interpolation::CubicSpline if xs.len() >= 3 => natural_spline(&xs, &ys),
            _ => vec![0.0; xs.len()],
        };
        for (k, &t) in times.iter().enumerate() {
            out[k][j] = eval(&xs, &ys, &m, t);
        }
    }
    Ok(out)
}

/// Second derivatives of the natural cubic spline through `(xs, ys)` (Thomas algorithm).
fn natural_spline(xs: &[f64], ys: &[f64]) -> Vec<f64> {
    let n = xs.len();
    let mut m = vec![0.0; n];
    let (mut c, mut d) = (vec![0.0; n], vec![0.0; n]);
    for i in 1..n - 1 {
        let (h0, h1) = (xs[i] - xs[i - 1], xs[i + 1] - xs[i]);
        let rhs = 6.0 * ((ys[i + 1] - ys[i]) / h1 - (ys[i] - ys[i - 1]) / h0);
        let diag = 2.0 * (h0 + h1) - h0 * c[i - 1];
        c[i] = h1 / diag;
        d[i] = (rhs - h0 * d[i - 1]) / diag;
    }
    for i in (1..n - 1).rev() {
        m[i] = d[i] - c[i] * m[i + 1];
    }
    m
}

fn eval(xs: &[f64], ys: &[f64], m: &[f64], t: f64) -> f64 {
    let n = xs.len();
    if t <= xs[0] {
        return ys[0];
    }
    if t >= xs[n - 1] {
        return ys[n - 1];
    }
    let i = xs.partition_point(|&x| x <= t).clamp(1, n - 1) - 1;
    let h = xs[i + 1] - xs[i];
    let (a, b) = ((xs[i + 1] - t) / h, (t - xs[i]) / h);
    a * ys[i] + b * ys[i + 1] + ((a * a * a - a) * m[i] + (b * b * b - b) * m[i + 1]) * h * h / 6.0
}
