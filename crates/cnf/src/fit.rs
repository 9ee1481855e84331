//! Training a flow through `train`: points as a dataset whose batches carry their
//! Hutchinson probe (drawn from the trainer's stream, so a resumed run draws the same), and
//! the flow as a `train::Model`.

use crate::autodiff::Rng;
use crate::{Cnf, Error, Noise, Trace};

/// A batch of points (column-major `batch × dim`) with the probe for its solve.
#[derive(Debug, Clone, PartialEq)]
pub struct PointBatch {
    /// The points.
    pub x: Vec<f64>,
    /// Hutchinson's `ε`, the points' shape.
    pub eps: Vec<f64>,
}

/// Points (one row of `dim` values each) as a `train::Dataset`.
pub struct Points {
    /// Row-major points.
    pub data: Vec<f64>,
    /// Values per point.
    pub dim: usize,
    /// The probe's distribution.
    pub noise: Noise,
}

impl Points {
    /// Points from rows; every row must have `dim` finite values.
    pub fn new(rows: &[Vec<f64>], dim: usize, trace: Trace) -> Result<Self, Error> {
        let mut data = Vec::with_capacity(rows.len() * dim);
        for (i, r) in rows.iter().enumerate() {
            if r.len() != dim || r.iter().any(|v| !v.is_finite()) {
                return Err(Error::InvalidArgument {
                    what: "points",
                    detail: format!("row {i} must have {dim} finite values"),
                });
            }
            data.extend_from_slice(r);
        }
        let noise = match trace {
            Trace::Hutchinson(n) => n,
            Trace::Exact => Noise::Gaussian,
        };
        Ok(Points { data, dim, noise })
    }
}

impl train::Dataset for Points {
    type Batch = PointBatch;

    fn len(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }

    fn batch(&self, indices: &[usize], rng: &mut Rng) -> Result<PointBatch, train::Error> {
        let (b, d) = (indices.len(), self.dim);
        let mut x = vec![0.0; b * d];
        for (r, &i) in indices.iter().enumerate() {
            let row =
                self.data.get(i * d..(i + 1) * d).ok_or_else(|| train::Error::InvalidArgument {
                    what: "sample index",
                    detail: format!("{i} of {}", self.len()),
                })?;
            for j in 0..d {
                x[r + j * b] = row[j];
            }
        }
        let eps = (0..b * d)
            .map(|_| match self.noise {
                Noise::Gaussian => rng.normal(),
                Noise::Rademacher => rng.rademacher(),
            })
            .collect();
        Ok(PointBatch { x, eps })
    }
}

/// A flow as a `train::Model`: its loss and gradients per batch, the probe set first.
pub struct FlowModel {
    /// The flow.
    pub flow: Cnf,
}

impl train::Model for FlowModel {
    type Batch = PointBatch;

    fn num_params(&self) -> usize {
        self.flow.num_params()
    }

    fn read_params(&self, out: &mut [f64]) -> Result<(), train::Error> {
        train::copy_params(out, &self.flow.params())
    }

    fn write_params(&mut self, params: &[f64]) -> Result<(), train::Error> {
        self.flow.set_params(params).map_err(train::Error::model)
    }

    fn loss_and_grad(
        &mut self,
        batch: &PointBatch,
        grad: &mut [f64],
    ) -> Result<train::StepReport, train::Error> {
        self.flow.set_noise(&batch.eps).map_err(train::Error::model)?;
        let g = self.flow.loss_grad(&batch.x).map_err(train::Error::model)?;
        train::copy_params(grad, &g.params)?;
        Ok(train::StepReport {
            loss: g.loss,
            metrics: vec![("nll", g.nll), ("kinetic", g.kinetic), ("jacobian", g.jacobian)],
            nfe_forward: g.nfe.0,
            nfe_backward: g.nfe.1,
        })
    }
}
