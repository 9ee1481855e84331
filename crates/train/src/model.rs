//! What the training loop trains: a [`Model`] over one flat parameter vector (a
//! [`ParamSet`] lays several graphs out in it), and [`Replicas`] for data parallelism.

use std::ops::Range;

use rayon::prelude::*;

use crate::Error;

/// What one training step of a model reports besides its gradient.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepReport {
    /// The batch's loss.
    pub loss: f64,
    /// Other named numbers (accuracy, ELBO parts, regularisers), averaged like the loss.
    pub metrics: Vec<(&'static str, f64)>,
    /// Right-hand-side evaluations of the model's forward solves (0 without an ODE).
    pub nfe_forward: usize,
    /// Evaluations of its backward passes.
    pub nfe_backward: usize,
}

/// A trainable model: all its parameters (however many graphs hold them) as one flat
/// vector, and the loss of a batch with its gradient in the same layout.
pub trait Model: Send {
    /// What a step consumes.
    type Batch: Sync;
    /// Number of parameters.
    fn num_params(&self) -> usize;
    /// Copies the parameters into `out` (length [`Model::num_params`]; another length is
    /// an error).
    fn read_params(&self, out: &mut [f64]) -> Result<(), Error>;
    /// Sets the parameters from `params` (length [`Model::num_params`]).
    fn write_params(&mut self, params: &[f64]) -> Result<(), Error>;
    /// The loss of `batch`, its gradient written into `grad` (length
    /// [`Model::num_params`]).
    fn loss_and_grad(&mut self, batch: &Self::Batch, grad: &mut [f64])
        -> Result<StepReport, Error>;
    /// Told the (0-based) step before each [`Model::loss_and_grad`] of training, for
    /// hyper-parameters on a schedule of their own (a KL weight warm-up); the step comes
    /// from the training state, so a resumed run sees the same values. Nothing by default.
    fn set_step(&mut self, step: u64) {
        let _ = step;
    }
}

/// Named parts of a flat parameter vector, one per graph (or layer) of a model, so one
/// optimiser steps them all:
///
/// ```
/// use train::ParamSet;
/// let set = ParamSet::new(&[("stem", 3), ("field", 2)]);
/// let (stem, field) = (vec![1.0, 2.0, 3.0], vec![4.0, 5.0]);
/// let mut flat = vec![0.0; set.len()];
/// set.gather(&[&stem, &field], &mut flat)?;
/// assert_eq!(flat, [1.0, 2.0, 3.0, 4.0, 5.0]);
/// assert_eq!(set.range("field"), Some(3..5));
/// let (mut s2, mut f2) = (vec![0.0; 3], vec![0.0; 2]);
/// set.scatter(&flat, &mut [&mut s2, &mut f2])?;
/// assert_eq!(f2, field);
/// assert!(set.gather(&[&stem], &mut flat).is_err());
/// # Ok::<(), train::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSet {
    parts: Vec<(String, Range<usize>)>,
    len: usize,
}

impl ParamSet {
    /// Parts with their lengths, laid out in order.
    pub fn new(parts: &[(&str, usize)]) -> Self {
        let mut at: usize = 0;
        let parts = parts
            .iter()
            .map(|&(name, n)| {
                // Lengths that overflow saturate: such a set matches no vector, so
                // `gather` and `scatter` refuse it instead of wrapping around.
                let r = at..at.saturating_add(n);
                at = r.end;
                (name.to_string(), r)
            })
            .collect();
        ParamSet { parts, len: at }
    }

    /// Total length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The range of part `name`.
    pub fn range(&self, name: &str) -> Option<Range<usize>> {
        self.parts.iter().find(|(n, _)| n == name).map(|(_, r)| r.clone())
    }

    /// The parts' names and ranges.
    pub fn parts(&self) -> &[(String, Range<usize>)] {
        &self.parts
    }

    fn check(&self, flat: usize, parts: &mut dyn Iterator<Item = usize>) -> Result<(), Error> {
        let lens: Vec<usize> = parts.collect();
        let expected: Vec<usize> = self.parts.iter().map(|(_, r)| r.len()).collect();
        if flat != self.len || lens != expected {
            return Err(Error::InvalidArgument {
                what: "parameter set",
                detail: format!("parts of lengths {lens:?} and a flat vector of {flat} for the set {expected:?}"),
            });
        }
        Ok(())
    }

    /// Copies each part (in order) into its range of `flat`.
    pub fn gather(&self, parts: &[&[f64]], flat: &mut [f64]) -> Result<(), Error> {
        self.check(flat.len(), &mut parts.iter().map(|p| p.len()))?;
        for ((_, r), p) in self.parts.iter().zip(parts) {
            flat[r.clone()].copy_from_slice(p);
        }
        Ok(())
    }

    /// Copies each range of `flat` into its part.
    pub fn scatter(&self, flat: &[f64], parts: &mut [&mut [f64]]) -> Result<(), Error> {
        self.check(flat.len(), &mut parts.iter().map(|p| p.len()))?;
        for ((_, r), p) in self.parts.iter().zip(parts.iter_mut()) {
            p.copy_from_slice(&flat[r.clone()]);
        }
        Ok(())
    }
}

/// A batch that splits into equal chunks by rows.
pub trait Chunk: Sized {
    /// Chunk `k` of `parts`.
    fn chunk(&self, k: usize, parts: usize) -> Result<Self, Error>;
}

impl Chunk for crate::LabelledBatch {
    fn chunk(&self, k: usize, parts: usize) -> Result<Self, Error> {
        crate::LabelledBatch::chunk(self, k, parts)
    }
}

/// Data parallelism: copies of a model (same parameters), each taking one chunk of every
/// batch on rayon's threads. Losses, metrics and gradients are averaged in chunk order,
/// so the result is bit-identical for any number of threads (it depends on the number of
/// copies, as the chunks' solves take their own adaptive steps). Each chunk's loss should
/// be its mean over its rows; equal chunks make the average the batch mean.
pub struct Replicas<M: Model> {
    copies: Vec<M>,
    grads: Vec<Vec<f64>>,
}

impl<M: Model> Replicas<M> {
    /// `copies` must start with the same parameters (they are set equal to the first's).
    pub fn new(mut copies: Vec<M>) -> Result<Self, Error> {
        let first = copies.first().ok_or(Error::InvalidArgument {
            what: "replicas",
            detail: "at least one copy is needed".into(),
        })?;
        let n = first.num_params();
        if let Some(i) = copies.iter().position(|c| c.num_params() != n) {
            return Err(Error::InvalidArgument {
                what: "replicas",
                detail: format!(
                    "copy {i} has {} parameters, copy 0 has {n}",
                    copies[i].num_params()
                ),
            });
        }
        let mut p = vec![0.0; n];
        copies[0].read_params(&mut p)?;
        for c in &mut copies[1..] {
            c.write_params(&p)?;
        }
        let grads = vec![vec![0.0; n]; copies.len()];
        Ok(Replicas { copies, grads })
    }

    /// The copies.
    pub fn copies(&self) -> &[M] {
        &self.copies
    }

    /// The copies, writable (e.g. for evaluation in parallel).
    pub fn copies_mut(&mut self) -> &mut [M] {
        &mut self.copies
    }
}

impl<M: Model> Model for Replicas<M>
where
    M::Batch: Chunk + Send,
{
    type Batch = M::Batch;

    fn num_params(&self) -> usize {
        self.copies[0].num_params()
    }

    fn read_params(&self, out: &mut [f64]) -> Result<(), Error> {
        self.copies[0].read_params(out)
    }

    fn write_params(&mut self, params: &[f64]) -> Result<(), Error> {
        for c in &mut self.copies {
            c.write_params(params)?;
        }
        Ok(())
    }

    fn set_step(&mut self, step: u64) {
        for c in &mut self.copies {
            c.set_step(step);
        }
    }

    fn loss_and_grad(&mut self, batch: &M::Batch, grad: &mut [f64]) -> Result<StepReport, Error> {
        let parts = self.copies.len();
        let reports: Vec<Result<StepReport, Error>> = self
            .copies
            .par_iter_mut()
            .zip(self.grads.par_iter_mut())
            .enumerate()
            .map(|(k, (model, g))| model.loss_and_grad(&batch.chunk(k, parts)?, g))
            .collect();
        let scale = 1.0 / parts as f64;
        let mut total = StepReport::default();
        grad.fill(0.0);
        for (k, r) in reports.into_iter().enumerate() {
            let r = r?;
            total.loss += r.loss * scale;
            if k == 0 {
                total.metrics = r.metrics.iter().map(|&(n, v)| (n, v * scale)).collect();
            } else {
                for (t, (_, v)) in total.metrics.iter_mut().zip(&r.metrics) {
                    t.1 += v * scale;
                }
            }
            total.nfe_forward += r.nfe_forward;
            total.nfe_backward += r.nfe_backward;
            for (a, b) in grad.iter_mut().zip(&self.grads[k]) {
                *a += b * scale;
            }
        }
        // NFE per chunk solve (each chunk solves its own ODE).
        total.nfe_forward /= parts;
        total.nfe_backward /= parts;
        Ok(total)
    }
}
