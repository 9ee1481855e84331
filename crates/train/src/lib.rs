//! What every model crate needs to train: datasets, data parallelism, a training loop
//! with progress, evaluation and checkpoints of the whole training state.
//!
//! # A tour in the order you meet things
//!
//! - Data: [`Images`] from MNIST ([`load_mnist`]) or the 8×8 digits ([`load_digits`]), any
//!   numeric CSV ([`load_csv`]); a [`Dataset`] hands out batches, [`ImageBatches`] with an
//!   [`Augment`] hook ([`RandomShift`]) and label smoothing; [`shuffled`] is the seeded
//!   epoch order.
//! - A [`Classifier`] is a graph's logits with cross-entropy, replayed per batch.
//! - A [`Model`] is one flat parameter vector (a [`ParamSet`] lays several graphs out in
//!   it, so one optimiser steps them all) and `loss_and_grad` of a batch.
//!   [`Replicas`] runs copies on a batch's chunks in parallel, results independent of the
//!   thread count.
//! - A [`Trainer`] runs [`TrainConfig`]: schedule, clipping, evaluation every N steps,
//!   [`Callback`]s for progress ([`Printer`]: a bar on a terminal, plain lines in logs),
//!   peak memory ([`memory`]), and [`TrainState`] checkpoints (parameters, optimiser,
//!   RNG streams, position) from which a run resumes bit for bit.
//!
//! ```
//! use train::{Dataset, Error, Model, Quiet, StepReport, TrainConfig, Trainer};
//! use autodiff::checkpoint::OptimizerState;
//! use autodiff::optim::{Sgd, SgdConfig};
//! use autodiff::Rng;
//! // Fit y = 2x with one weight by SGD on the mean squared error.
//! struct Line(Vec<f64>);
//! impl Dataset for Line {
//!     type Batch = Vec<f64>;
//!     fn len(&self) -> usize { self.0.len() }
//!     fn batch(&self, idx: &[usize], _: &mut Rng) -> Result<Vec<f64>, Error> {
//!         Ok(idx.iter().map(|&i| self.0[i]).collect())
//!     }
//! }
//! struct Weight(f64);
//! impl Model for Weight {
//!     type Batch = Vec<f64>;
//!     fn num_params(&self) -> usize { 1 }
//!     fn read_params(&self, out: &mut [f64]) -> Result<(), Error> { out[0] = self.0; Ok(()) }
//!     fn write_params(&mut self, p: &[f64]) -> Result<(), Error> { self.0 = p[0]; Ok(()) }
//!     fn loss_and_grad(&mut self, xs: &Vec<f64>, g: &mut [f64]) -> Result<StepReport, Error> {
//!         let n = xs.len() as f64;
//!         let loss = xs.iter().map(|x| (self.0 * x - 2.0 * x).powi(2)).sum::<f64>() / n;
//!         g[0] = xs.iter().map(|x| 2.0 * (self.0 * x - 2.0 * x) * x).sum::<f64>() / n;
//!         Ok(StepReport { loss, ..StepReport::default() })
//!     }
//! }
//! let data = Line((0..64).map(|i| i as f64 / 64.0).collect());
//! let sgd = OptimizerState::Sgd(Sgd::new(SgdConfig::default()));
//! let mut trainer = Trainer::new(TrainConfig::new(20, 8, 0.5), sgd, "one weight")?;
//! let mut model = Weight(0.0);
//! let summary = trainer.fit(&mut model, &data, None, &mut Quiet)?;
//! assert_eq!(summary.steps, 160);
//! assert!((model.0 - 2.0).abs() < 1e-6);
//! # Ok::<(), Error>(())
//! ```
#![deny(missing_docs)]

mod classifier;
mod data;
mod error;
pub mod memory;
mod model;
mod progress;
mod state;
mod trainer;

pub use classifier::{argmax_rows, copy_params, Classifier};
pub use data::{
    load_csv, load_digits, load_idx, load_mnist, read_maybe_gz, shuffled, Augment, Dataset,
    ImageBatches, Images, LabelledBatch, RandomShift, Table,
};
pub use error::Error;

/// The layer below, so a user of this crate needs no other dependency.
pub use autodiff;
pub use model::{Chunk, Model, ParamSet, Replicas, StepReport};
pub use progress::{Callback, Printer, Progress, Quiet};
pub use state::{Totals, TrainState, MAGIC};
pub use trainer::{Evaluate, Summary, TrainConfig, Trainer};
