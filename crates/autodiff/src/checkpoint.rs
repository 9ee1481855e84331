//! Checkpoints: a model's parameters and its optimizer state in one file.
//!
//! Layout: the magic `NODECKPT`, the format version (`u32`, little-endian), the payload
//! length (`u64`), a 64-bit FNV-1a checksum of the payload (`u64`), then the payload
//! (bincode of [`Checkpoint`]). Loading checks all of these before decoding and checks the
//! architecture before touching the model, so a truncated, corrupt or mismatched file is
//! an `Err` and never a partly loaded model. Saving writes a temporary file beside the
//! target and renames it, so a crash never leaves a half-written checkpoint.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::optim::{Adam, Sgd};
use crate::{Error, Graph};

/// The file signature.
pub const MAGIC: &[u8; 8] = b"NODECKPT";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 8 + 8;
/// Largest payload decoded (guards allocation even if a checksum collided).
const MAX_PAYLOAD: usize = 1 << 32;

/// Optimizer state saved with a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OptimizerState {
    /// No optimizer.
    None,
    /// SGD with its velocity.
    Sgd(Sgd),
    /// Adam / AdamW with its moments.
    Adam(Adam),
}

/// One parameter block's name and shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockShape {
    /// Name.
    pub name: String,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
}

/// Everything a checkpoint holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// A description of the architecture the caller chooses (e.g. `"mlp 2-64-64-2 tanh"`);
    /// loading requires it to match.
    pub architecture: String,
    /// Parameter blocks, in order.
    pub blocks: Vec<BlockShape>,
    /// The flat parameter vector.
    pub params: Vec<f64>,
    /// Optimizer state.
    pub optimizer: OptimizerState,
    /// Training step (or epoch) counter.
    pub step: u64,
}

fn blocks_of(g: &Graph) -> Vec<BlockShape> {
    g.param_blocks()
        .iter()
        .map(|b| BlockShape { name: b.name.clone(), rows: b.shape.0, cols: b.shape.1 })
        .collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn corrupt(reason: impl Into<String>) -> Error {
    Error::CorruptCheckpoint { reason: reason.into() }
}

impl Checkpoint {
    /// Captures `g`'s parameters with an optimizer state.
    pub fn from_graph(g: &Graph, architecture: &str, optimizer: OptimizerState, step: u64) -> Self {
        Checkpoint {
            architecture: architecture.to_string(),
            blocks: blocks_of(g),
            params: g.params().to_vec(),
            optimizer,
            step,
        }
    }

    /// Writes the parameters into `g` if the architecture and every block match; otherwise
    /// `g` is untouched.
    pub fn restore_into(&self, g: &mut Graph, architecture: &str) -> Result<(), Error> {
        if self.architecture != architecture {
            return Err(Error::CheckpointMismatch {
                what: format!(
                    "architecture '{}' in the file, '{architecture}' expected",
                    self.architecture
                ),
            });
        }
        let ours = blocks_of(g);
        if self.blocks != ours {
            let first = self
                .blocks
                .iter()
                .zip(&ours)
                .position(|(a, b)| a != b)
                .unwrap_or(self.blocks.len().min(ours.len()));
            return Err(Error::CheckpointMismatch {
                what: format!("parameter blocks differ from block {first} on ({} in the file, {} in the model)", self.blocks.len(), ours.len()),
            });
        }
        if self.params.len() != g.params().len() {
            return Err(Error::CheckpointMismatch {
                what: format!(
                    "{} parameters in the file, {} in the model",
                    self.params.len(),
                    g.params().len()
                ),
            });
        }
        g.params_mut().copy_from_slice(&self.params);
        Ok(())
    }

    /// Serialises with header and checksum.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        encode(MAGIC, self)
    }

    /// Parses bytes written by [`Checkpoint::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let ckpt: Checkpoint = decode(MAGIC, bytes)?;
        let expected = ckpt
            .blocks
            .iter()
            .try_fold(0usize, |n, b| b.rows.checked_mul(b.cols).and_then(|m| n.checked_add(m)));
        if expected != Some(ckpt.params.len()) {
            return Err(corrupt("parameter count does not match the blocks"));
        }
        Ok(ckpt)
    }

    /// Saves atomically: writes `path` + `.tmp`, syncs it, renames it over `path`.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        write_atomic(path, &self.to_bytes()?)
    }

    /// Loads a checkpoint file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        Self::from_bytes(&read_file(path)?)
    }
}

/// Frames `value` as a checkpoint-format file: `magic` (8 bytes), [`FORMAT_VERSION`],
/// payload length, FNV-1a checksum, bincode payload. Other crates store their own records
/// (a whole training state) with their own magic through this and [`decode`].
pub fn encode<T: Serialize>(magic: &[u8; 8], value: &T) -> Result<Vec<u8>, Error> {
    let payload = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| Error::InvalidArgument { op: "checkpoint encode", detail: e.to_string() })?;
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&fnv1a(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Checks the framing written by [`encode`] (magic, version, length, checksum) and
/// decodes the payload; any mismatch is [`Error::CorruptCheckpoint`] or
/// [`Error::UnsupportedVersion`].
pub fn decode<T: serde::de::DeserializeOwned>(magic: &[u8; 8], bytes: &[u8]) -> Result<T, Error> {
    if bytes.len() < HEADER {
        return Err(corrupt(format!(
            "{} bytes, shorter than the {HEADER}-byte header",
            bytes.len()
        )));
    }
    if &bytes[..8] != magic {
        return Err(corrupt(format!("not a {} file (bad magic)", String::from_utf8_lossy(magic))));
    }
    let word = |at: usize, n: usize| -> u64 {
        bytes[at..at + n].iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    };
    let version = word(8, 4) as u32;
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion { found: version });
    }
    let len = word(12, 8);
    let checksum = word(20, 8);
    let payload = &bytes[HEADER..];
    if len != payload.len() as u64 {
        return Err(corrupt(format!(
            "payload of {} bytes, header says {len} (truncated?)",
            payload.len()
        )));
    }
    if len as usize > MAX_PAYLOAD {
        return Err(corrupt("payload too large"));
    }
    if fnv1a(payload) != checksum {
        return Err(corrupt("checksum mismatch"));
    }
    // The decoder may reserve what a length prefix claims before reading it: limit its
    // claims to a bound tied to the bytes actually present (at most 64 times them, at
    // least 1 MiB), so a forged prefix cannot make it reserve gigabytes.
    fn with_limit<T: serde::de::DeserializeOwned, const N: usize>(
        payload: &[u8],
    ) -> Result<(T, usize), bincode::error::DecodeError> {
        bincode::serde::decode_from_slice(payload, bincode::config::standard().with_limit::<N>())
    }
    let n = payload.len();
    let decoded = if n <= 1 << 14 {
        with_limit::<T, { 1 << 20 }>(payload)
    } else if n <= 1 << 20 {
        with_limit::<T, { 1 << 26 }>(payload)
    } else if n <= 1 << 24 {
        with_limit::<T, { 1 << 30 }>(payload)
    } else {
        with_limit::<T, MAX_PAYLOAD>(payload)
    };
    let (value, used) = decoded.map_err(|e| corrupt(format!("undecodable payload: {e}")))?;
    if used != payload.len() {
        return Err(corrupt("trailing bytes after the payload"));
    }
    Ok(value)
}

/// Writes `bytes` to `path` atomically: `path` + `.tmp`, synced, renamed over `path`; on
/// any failure the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io =
        |e: std::io::Error| Error::Io { path: path.display().to_string(), message: e.to_string() };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let written = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

/// Reads a whole file, with the path in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::Io { path: path.display().to_string(), message: e.to_string() })
}
