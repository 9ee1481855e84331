//! A whole training state in one file: every parameter, the optimiser state, the RNG
//! streams and the position in the run, framed like `autodiff` checkpoints (magic,
//! version, length, checksum; written to a temporary file and renamed).

use std::path::Path;

use autodiff::checkpoint::{self, OptimizerState};
use autodiff::Rng;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The signature of training-state files.
pub const MAGIC: &[u8; 8] = b"NODETRAN";

/// Everything needed to continue a run exactly where it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// The model's description; resuming requires the same.
    pub architecture: String,
    /// All parameters (the model's flat vector; its [`crate::ParamSet`] names the parts).
    pub params: Vec<f64>,
    /// The optimiser with its moments.
    pub optimizer: OptimizerState,
    /// The training stream as it is now (augmentation, the next epoch's shuffle).
    pub rng: Rng,
    /// The stream at the start of the current epoch (regenerates its order).
    pub epoch_rng: Rng,
    /// Steps taken.
    pub step: u64,
    /// The current epoch (0-based).
    pub epoch: u64,
    /// Batches of the current epoch already taken.
    pub batch: u64,
    /// Running totals for the summary.
    pub totals: Totals,
}

/// Running sums of a run, kept across a resume.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Sum of the current epoch's losses.
    pub epoch_loss: f64,
    /// Forward NFE over all steps.
    pub nfe_forward: u64,
    /// Backward NFE over all steps.
    pub nfe_backward: u64,
    /// Seconds of training before this process.
    pub seconds: f64,
}

impl TrainState {
    /// Writes the state atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        checkpoint::write_atomic(path, &checkpoint::encode(MAGIC, self)?)?;
        Ok(())
    }

    /// Reads and checks a state file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let state: TrainState = checkpoint::decode(MAGIC, &checkpoint::read_file(path)?)?;
        let corrupt = |reason: &str| {
            Error::Autodiff(autodiff::Error::CorruptCheckpoint {
                reason: format!("{}: {reason}", path.display()),
            })
        };
        if !state.rng.is_valid() || !state.epoch_rng.is_valid() {
            return Err(corrupt("the RNG state is all zeros"));
        }
        if state.params.iter().any(|x| !x.is_finite()) {
            return Err(corrupt("non-finite parameters"));
        }
        Ok(state)
    }
}
