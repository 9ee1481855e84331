//! The training loop: resuming reproduces the uninterrupted run bit for bit; replicas are
//! independent of the thread count; bad data and bad settings are typed errors.

use std::path::{Path, PathBuf};

use autodiff::checkpoint::OptimizerState;
use autodiff::layers::{Activation, Mlp};
use autodiff::optim::{Adam, AdamConfig, Schedule};
use autodiff::{Graph, Rng};
use train::{
    load_csv, load_digits, Classifier, Error, ImageBatches, Images, Model, Quiet, RandomShift,
    Replicas, TrainConfig, TrainState, Trainer,
};

fn digits() -> (Images, Images) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    load_digits(&root.join("data/sklearn_digits/digits.csv.gz")).unwrap()
}

fn mlp(batch: usize) -> Classifier {
    let mut g = Graph::new();
    let x = g.input(batch, 64);
    let logits = Mlp::new(&mut g, "mlp", &[64, 24, 10], Activation::Tanh, &mut Rng::new(7))
        .unwrap()
        .forward(&mut g, x)
        .unwrap();
    Classifier::new(g, x, logits, false).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("train-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config(dir: &Path) -> TrainConfig {
    let mut cfg = TrainConfig::new(3, 32, 1e-2);
    cfg.schedule = Schedule::WarmupCosine { warmup: 10, total: 84, min_lr: 1e-3 };
    cfg.clip = Some(5.0);
    cfg.seed = 11;
    cfg.checkpoint_dir = Some(dir.to_path_buf());
    cfg
}

fn adam() -> OptimizerState {
    OptimizerState::Adam(Adam::new(AdamConfig::default()))
}

/// Two replicas of the MLP with a random shift and label smoothing: every part of the
/// state (Adam moments, both RNG streams, the epoch position) matters.
fn run(dir: &Path, stops: &[u64]) -> (Vec<f64>, train::Summary) {
    run_to(dir, stops, None)
}

/// [`run`] with `TrainConfig::total_steps` set in every process.
fn run_to(dir: &Path, stops: &[u64], total: Option<u64>) -> (Vec<f64>, train::Summary) {
    let (train_set, _) = digits();
    let shift = RandomShift(1);
    let data = ImageBatches { images: &train_set, augment: Some(&shift), smoothing: 0.1 };
    let mut summary = None;
    let mut params = Vec::new();
    for (i, &stop) in stops.iter().enumerate() {
        // A fresh process each time: new model, new trainer.
        let mut model = Replicas::new(vec![mlp(16), mlp(16)]).unwrap();
        let mut cfg = config(dir);
        cfg.resume = i > 0;
        cfg.max_steps = (stop > 0).then_some(stop);
        cfg.total_steps = total;
        let mut trainer = Trainer::new(cfg, adam(), "mlp 64-24-10").unwrap();
        summary = Some(trainer.fit(&mut model, &data, None, &mut Quiet).unwrap());
        params = vec![0.0; model.num_params()];
        model.read_params(&mut params).unwrap();
    }
    (params, summary.unwrap())
}

#[test]
fn resuming_reproduces_the_uninterrupted_run_bit_for_bit() {
    let straight = scratch("straight");
    let (p_straight, s_straight) = run(&straight, &[0]);
    assert_eq!(s_straight.steps, 3 * (898 / 32));
    assert!(s_straight.finished);
    // Interrupted mid-epoch (step 13), exactly at the end of epoch 1 (step 28), at the end
    // of epoch 2 (step 56), then run to the end.
    let pieces = scratch("pieces");
    let (p_pieces, s_pieces) = run(&pieces, &[13, 15, 28, 0]);
    assert!(s_pieces.finished);
    assert_eq!(s_pieces.steps, s_straight.steps);
    let differing = p_pieces.iter().zip(&p_straight).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "{differing} of {} resumed parameters differ", p_straight.len());
    assert_eq!(s_pieces.last_epoch_loss, s_straight.last_epoch_loss);
    // And training did something: an untrained classifier's loss is ln 10 = 2.30 (the
    // 1-pixel shifts make the 8x8 digits hard: 1.76 measured after 3 epochs).
    assert!(s_straight.last_epoch_loss < 1.9, "{}", s_straight.last_epoch_loss);
    let _ = std::fs::remove_dir_all(&straight);
    let _ = std::fs::remove_dir_all(&pieces);
}

#[test]
fn a_run_of_total_steps_ends_there_across_resumes() {
    // 40 steps: part way through the second of three 28-step epochs.
    let straight = scratch("total-straight");
    let (p_straight, s_straight) = run_to(&straight, &[0], Some(40));
    assert_eq!(s_straight.steps, 40);
    assert!(s_straight.finished);
    // Stopped at 13, resumed (27 more steps, not 40 more: `max_steps` counts one process's
    // steps, `total_steps` the run's), then resumed once more with nothing left to do.
    let pieces = scratch("total-pieces");
    let (p_pieces, s_pieces) = run_to(&pieces, &[13, 0, 0], Some(40));
    assert_eq!(s_pieces.steps, 40);
    assert!(s_pieces.finished);
    assert_eq!(p_pieces, p_straight);
    let _ = std::fs::remove_dir_all(&straight);
    let _ = std::fs::remove_dir_all(&pieces);
}

#[test]
fn replicas_do_not_depend_on_the_thread_count() {
    let (train_set, _) = digits();
    let data = ImageBatches { images: &train_set, augment: None, smoothing: 0.0 };
    let mut results = Vec::new();
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let params = pool.install(|| {
            let mut model = Replicas::new(vec![mlp(8), mlp(8), mlp(8), mlp(8)]).unwrap();
            let mut cfg = TrainConfig::new(1, 32, 1e-2);
            cfg.max_steps = Some(5);
            let mut trainer = Trainer::new(cfg, adam(), "mlp").unwrap();
            trainer.fit(&mut model, &data, None, &mut Quiet).unwrap();
            let mut p = vec![0.0; model.num_params()];
            model.read_params(&mut p).unwrap();
            p
        });
        results.push(params);
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
}

#[test]
fn bad_settings_and_states_are_typed_errors() {
    for (lr, clip) in [(f64::NAN, None), (-1.0, None), (f64::INFINITY, None), (1e-3, Some(0.0))] {
        let mut cfg = TrainConfig::new(1, 8, lr);
        cfg.clip = clip;
        assert!(matches!(Trainer::new(cfg, adam(), "m"), Err(Error::InvalidArgument { .. })));
    }
    assert!(matches!(
        Trainer::new(TrainConfig::new(1, 0, 1e-3), adam(), "m"),
        Err(Error::InvalidArgument { what: "batch size", .. })
    ));
    let mut resume = TrainConfig::new(1, 8, 1e-3);
    resume.resume = true;
    assert!(matches!(Trainer::new(resume, adam(), "m"), Err(Error::InvalidArgument { .. })));
    // A state of another architecture is refused; the model stays as it was.
    let dir = scratch("mismatch");
    let (train_set, _) = digits();
    let data = ImageBatches { images: &train_set, augment: None, smoothing: 0.0 };
    let mut cfg = config(&dir);
    cfg.max_steps = Some(2);
    let mut model = mlp(32);
    Trainer::new(cfg.clone(), adam(), "a")
        .unwrap()
        .fit(&mut model, &data, None, &mut Quiet)
        .unwrap();
    cfg.resume = true;
    let mut other = mlp(32);
    let before = other.graph().params().to_vec();
    let r =
        Trainer::new(cfg.clone(), adam(), "b").unwrap().fit(&mut other, &data, None, &mut Quiet);
    assert!(matches!(r, Err(Error::Autodiff(autodiff::Error::CheckpointMismatch { .. }))));
    assert_eq!(other.graph().params(), &before[..]);
    // Every truncation and a flipped byte of the state file are refused.
    let path = dir.join("state.bin");
    let bytes = std::fs::read(&path).unwrap();
    for cut in [0, 10, 27, 28, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert!(TrainState::load(&path).is_err(), "cut at {cut}");
    }
    let mut flipped = bytes.clone();
    flipped[40] ^= 0x10;
    std::fs::write(&path, &flipped).unwrap();
    assert!(TrainState::load(&path).is_err());
    let _ = std::fs::remove_dir_all(&dir);
    // A dataset too small for one batch.
    let tiny = Images { pixels: vec![0.0; 64], labels: vec![1], side: 8, classes: 10 };
    let data = ImageBatches { images: &tiny, augment: None, smoothing: 0.0 };
    let r = Trainer::new(TrainConfig::new(1, 8, 1e-3), adam(), "m").unwrap().fit(
        &mut mlp(8),
        &data,
        None,
        &mut Quiet,
    );
    assert!(matches!(r, Err(Error::InvalidArgument { what: "dataset", .. })));
}

#[test]
fn csv_files_parse_with_or_without_a_header_and_bad_ones_say_where() {
    let dir = scratch("csv");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let t = load_csv(&write("h.csv", "x,y\n1,2\n\n3.5,-4\n")).unwrap();
    assert_eq!((t.rows, t.cols, t.data.clone()), (2, 2, vec![1.0, 2.0, 3.5, -4.0]));
    assert_eq!(t.header, Some(vec!["x".to_string(), "y".to_string()]));
    let t = load_csv(&write("n.csv", "1,2\n3,4\n")).unwrap();
    assert_eq!(t.header, None);
    let msg = |p: &Path| load_csv(p).unwrap_err().to_string();
    assert!(msg(&write("r.csv", "1,2\n3\n")).contains("line 2: 1 values"));
    assert!(msg(&write("b.csv", "1,2\n3,zz\n")).contains("line 2"));
    assert!(msg(&write("i.csv", "1,2\n3,inf\n")).contains("not finite"));
    assert!(msg(&write("e.csv", "a,b\n")).contains("no data rows"));
    assert!(msg(&dir.join("missing.csv")).contains("missing.csv"));
    assert!(matches!(load_digits(&write("d.csv", "1,2\n")), Err(Error::Format { .. })));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_f32_classifier_gives_the_f64_loss_and_gradient_to_f32_accuracy() {
    let (train_set, _) = digits();
    let data = ImageBatches { images: &train_set, augment: None, smoothing: 0.1 };
    let idx: Vec<usize> = (0..32).collect();
    let batch = train::Dataset::batch(&data, &idx, &mut Rng::new(1)).unwrap();
    let build = |g: &mut Graph| {
        let x = g.input(32, 64);
        let mlp = Mlp::new(g, "mlp", &[64, 24, 10], Activation::Tanh, &mut Rng::new(7)).unwrap();
        (x, mlp.forward(g, x).unwrap())
    };
    let (mut g64, mut g32) = (Graph::new(), Graph::new());
    let ((x64, l64), (x32, l32)) = (build(&mut g64), build(&mut g32));
    let mut wide = Classifier::new(g64, x64, l64, false).unwrap();
    let mut narrow = Classifier::<f32>::build(g32, x32, l32, false).unwrap();
    let n = wide.num_params();
    let (mut gw, mut gn) = (vec![0.0; n], vec![0.0; n]);
    let lw = wide.loss_and_grad(&batch, &mut gw).unwrap().loss;
    let ln = narrow.loss_and_grad(&batch, &mut gn).unwrap().loss;
    assert!((lw - ln).abs() < 1e-6 * lw.abs(), "loss {lw} against {ln}");
    let scale = gw.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = gw.iter().zip(&gn).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())) / scale;
    assert!(err < 1e-5, "gradient differs by {err:.2e} of its scale");
    assert_eq!(wide.predict(&batch.x).unwrap(), narrow.predict(&batch.x).unwrap());
}
