//! The density baselines a flow is reported beside — a full-covariance Gaussian and a
//! Gaussian kernel density estimate — and the dequantisation and bits-per-dimension
//! conversion for discrete data (the 8×8 digits' 17 grey levels).

use crate::autodiff::{Mat, Rng};
use crate::Error;

const LN_2PI: f64 = 1.837_877_066_409_345_5;

fn rows_check(rows: &[Vec<f64>], what: &'static str) -> Result<usize, Error> {
    let d = rows.first().map_or(0, Vec::len);
    if rows.is_empty() || d == 0 {
        return Err(Error::InvalidArgument { what, detail: "no rows or zero columns".into() });
    }
    for (i, r) in rows.iter().enumerate() {
        if r.len() != d {
            return Err(Error::InvalidArgument {
                what,
                detail: format!("row {i} has {} values, row 0 {d}", r.len()),
            });
        }
        if let Some(j) = r.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument {
                what,
                detail: format!("row {i}, column {j} is {}", r[j]),
            });
        }
    }
    Ok(d)
}

/// A Gaussian with the sample mean and covariance (plus `ridge · I`, so it is positive
/// definite on data of lower rank).
#[derive(Debug, Clone)]
pub struct Gaussian {
    mean: Vec<f64>,
    /// The lower Cholesky factor of the covariance.
    chol: Mat,
    log_det: f64,
}

impl Gaussian {
    /// Fits `rows` (each `dim` values).
    pub fn fit(rows: &[Vec<f64>], ridge: f64) -> Result<Self, Error> {
        let d = rows_check(rows, "Gaussian data")?;
        if !(ridge.is_finite() && ridge >= 0.0) {
            return Err(Error::InvalidArgument {
                what: "ridge",
                detail: format!("{ridge} must be finite and non-negative"),
            });
        }
        let n = rows.len() as f64;
        let mean: Vec<f64> = (0..d).map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n).collect();
        let mut cov = Mat::zeros(d, d);
        for r in rows {
            for i in 0..d {
                for j in 0..=i {
                    cov[(i, j)] += (r[i] - mean[i]) * (r[j] - mean[j]) / n;
                }
            }
        }
        for i in 0..d {
            for j in 0..i {
                cov[(j, i)] = cov[(i, j)];
            }
            cov[(i, i)] += ridge;
        }
        let chol = cov
            .cholesky()
            .ok_or_else(|| Error::InvalidArgument {
                what: "Gaussian data",
                detail: "the covariance is not positive definite; use a positive ridge".into(),
            })?
            .l();
        let log_det = 2.0 * (0..d).map(|i| chol[(i, i)].ln()).sum::<f64>();
        Ok(Gaussian { mean, chol, log_det })
    }

    /// `log N(x; μ, Σ)`.
    pub fn log_density(&self, x: &[f64]) -> Result<f64, Error> {
        let d = self.mean.len();
        if x.len() != d {
            return Err(Error::InvalidArgument {
                what: "point",
                detail: format!("{} values for a {d}-dimensional Gaussian", x.len()),
            });
        }
        // Solve L y = x − μ by forward substitution; the Mahalanobis term is ‖y‖².
        let mut y = vec![0.0; d];
        for i in 0..d {
            let mut s = x[i] - self.mean[i];
            for (k, yk) in y.iter().enumerate().take(i) {
                s -= self.chol[(i, k)] * yk;
            }
            y[i] = s / self.chol[(i, i)];
        }
        let m: f64 = y.iter().map(|v| v * v).sum();
        Ok(-0.5 * (m + self.log_det + d as f64 * LN_2PI))
    }
}

/// A Gaussian kernel density estimate: the mean of `N(x; x_i, h²I)` over the points.
#[derive(Debug, Clone)]
pub struct Kde {
    points: Vec<Vec<f64>>,
    /// The bandwidth `h`.
    pub bandwidth: f64,
}

impl Kde {
    /// A KDE on `rows` with bandwidth `h`.
    pub fn new(rows: &[Vec<f64>], h: f64) -> Result<Self, Error> {
        rows_check(rows, "KDE data")?;
        if !(h.is_finite() && h > 0.0) {
            return Err(Error::InvalidArgument {
                what: "bandwidth",
                detail: format!("{h} must be positive and finite"),
            });
        }
        Ok(Kde { points: rows.to_vec(), bandwidth: h })
    }

    /// The bandwidth among `candidates` with the best mean log-density on `valid`.
    pub fn select(
        rows: &[Vec<f64>],
        valid: &[Vec<f64>],
        candidates: &[f64],
    ) -> Result<Self, Error> {
        rows_check(valid, "KDE validation data")?;
        let mut best: Option<(f64, Kde)> = None;
        for &h in candidates {
            let k = Kde::new(rows, h)?;
            let score = k.mean_log_density(valid)?;
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, k));
            }
        }
        best.map(|(_, k)| k).ok_or_else(|| Error::InvalidArgument {
            what: "bandwidths",
            detail: "no candidates".into(),
        })
    }

    /// `log p(x)`.
    pub fn log_density(&self, x: &[f64]) -> Result<f64, Error> {
        let d = self.points[0].len();
        if x.len() != d {
            return Err(Error::InvalidArgument {
                what: "point",
                detail: format!("{} values for a {d}-dimensional KDE", x.len()),
            });
        }
        let h2 = self.bandwidth * self.bandwidth;
        let e: Vec<f64> = self
            .points
            .iter()
            .map(|p| -p.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / (2.0 * h2))
            .collect();
        let m = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = e.iter().map(|v| (v - m).exp()).sum();
        Ok(m + s.ln() - (self.points.len() as f64).ln() - 0.5 * d as f64 * (LN_2PI + h2.ln()))
    }

    /// The mean of [`Kde::log_density`] over `rows`.
    pub fn mean_log_density(&self, rows: &[Vec<f64>]) -> Result<f64, Error> {
        if rows.is_empty() {
            return Err(Error::InvalidArgument {
                what: "KDE",
                detail: "the mean log-density of no rows is undefined".into(),
            });
        }
        let mut total = 0.0;
        for r in rows {
            total += self.log_density(r)?;
        }
        Ok(total / rows.len() as f64)
    }
}

/// Uniform dequantisation of integer levels `v ∈ {0, …, levels − 1}`: `(v + u) / levels`,
/// `u ~ U[0, 1)` per value, into `[0, 1)`.
pub fn dequantize(
    values: &[Vec<f64>],
    levels: usize,
    rng: &mut Rng,
) -> Result<Vec<Vec<f64>>, Error> {
    if levels < 2 {
        return Err(Error::InvalidArgument { what: "levels", detail: format!("{levels} < 2") });
    }
    let top = (levels - 1) as f64;
    values
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.iter()
                .map(|&v| {
                    if !(0.0..=top).contains(&v) || v.fract() != 0.0 {
                        return Err(Error::InvalidArgument {
                            what: "levels",
                            detail: format!("row {i}: {v} is not an integer in 0..={top}"),
                        });
                    }
                    Ok((v + rng.uniform()) / levels as f64)
                })
                .collect()
        })
        .collect()
}

/// Bits per dimension of the discrete data from the mean negative log-density `nll` (nats)
/// of its dequantised copy: `(nll + d ln levels) / (d ln 2)` (the dequantised density
/// bounds the discrete likelihood; `log₂ levels` is a uniform model).
pub fn bits_per_dim(nll: f64, dim: usize, levels: usize) -> f64 {
    let d = dim as f64;
    (nll + d * (levels as f64).ln()) / (d * std::f64::consts::LN_2)
}
