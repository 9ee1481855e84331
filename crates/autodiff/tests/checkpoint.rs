//! Checkpoints: exact round trips; every corruption or truncation is an `Err` and never
//! changes the model.

use autodiff::checkpoint::{Checkpoint, OptimizerState};
use autodiff::layers::{Activation, Mlp};
use autodiff::optim::{Adam, AdamConfig, Optimizer};
use autodiff::{Error, Graph, Rng};
use proptest::prelude::*;

fn model(seed: u64) -> Graph {
    let mut g = Graph::new();
    let x = g.input(4, 2);
    Mlp::new(&mut g, "mlp", &[2, 8, 2], Activation::Tanh, &mut Rng::new(seed))
        .and_then(|m| m.forward(&mut g, x))
        .unwrap();
    g
}

fn trained() -> Checkpoint {
    let mut g = model(1);
    let mut adam = Adam::new(AdamConfig::default());
    let grads: Vec<f64> = (0..g.params().len()).map(|i| (i as f64).sin()).collect();
    for _ in 0..3 {
        adam.step(g.params_mut(), &grads).unwrap();
    }
    Checkpoint::from_graph(&g, "mlp 2-8-2 tanh", OptimizerState::Adam(adam), 3)
}

#[test]
fn round_trip_through_a_file_is_exact() {
    let ckpt = trained();
    let dir = std::env::temp_dir().join(format!("autodiff-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.ckpt");
    ckpt.save(&path).unwrap();
    assert!(!dir.join("model.ckpt.tmp").exists(), "the temporary file was renamed");
    let loaded = Checkpoint::load(&path).unwrap();
    assert_eq!(loaded, ckpt);
    let mut g = model(2);
    loaded.restore_into(&mut g, "mlp 2-8-2 tanh").unwrap();
    assert_eq!(g.params(), &ckpt.params[..]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mismatched_models_are_refused_and_left_unchanged() {
    let ckpt = trained();
    let mut other = Graph::new();
    let x = other.input(1, 2);
    Mlp::new(&mut other, "mlp", &[2, 9, 2], Activation::Tanh, &mut Rng::new(0))
        .and_then(|m| m.forward(&mut other, x))
        .unwrap();
    let before = other.params().to_vec();
    assert!(matches!(
        ckpt.restore_into(&mut other, "mlp 2-8-2 tanh"),
        Err(Error::CheckpointMismatch { .. })
    ));
    assert!(matches!(
        ckpt.restore_into(&mut model(0), "something else"),
        Err(Error::CheckpointMismatch { .. })
    ));
    assert_eq!(other.params(), &before[..]);
    assert!(matches!(
        Checkpoint::load(std::path::Path::new("/nonexistent/x.ckpt")),
        Err(Error::Io { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5EED), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_corrupted_byte_is_detected(pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut bytes = trained().to_bytes().unwrap();
        let i = pos.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(Checkpoint::from_bytes(&bytes).is_err(), "flipping byte {i} went unnoticed");
    }

    #[test]
    fn any_truncation_is_detected(keep in any::<prop::sample::Index>()) {
        let bytes = trained().to_bytes().unwrap();
        let n = keep.index(bytes.len());
        let truncated = matches!(Checkpoint::from_bytes(&bytes[..n]), Err(Error::CorruptCheckpoint { .. }));
        prop_assert!(truncated, "truncating to {} bytes went unnoticed", n);
    }
}

mod forged {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Largest;
    static LARGEST: AtomicUsize = AtomicUsize::new(0);

    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for Largest {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
            // SAFETY: forwarded unchanged to the system allocator.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded unchanged to the system allocator.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static GLOBAL: Largest = Largest;

    /// A 36-byte file with a valid header and checksum whose payload's first length prefix
    /// (the architecture string) claims 2^28 − 1 bytes: refused without reserving them (the
    /// decoder with a fixed 4 GiB limit reserved 268 MB here).
    #[test]
    fn a_forged_length_prefix_reserves_nothing_large() {
        let payload = [252u8, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0, 0];
        let checksum = payload.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        let mut bytes = autodiff::checkpoint::MAGIC.to_vec();
        bytes.extend(autodiff::checkpoint::FORMAT_VERSION.to_le_bytes());
        bytes.extend((payload.len() as u64).to_le_bytes());
        bytes.extend(checksum.to_le_bytes());
        bytes.extend(payload);
        assert_eq!(bytes.len(), 36);
        LARGEST.store(0, Ordering::Relaxed);
        assert!(autodiff::checkpoint::Checkpoint::from_bytes(&bytes).is_err());
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(largest < 1 << 20, "the loader reserved {largest} bytes for a 36-byte file");
    }
}
