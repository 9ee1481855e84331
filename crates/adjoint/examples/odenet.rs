//! The ODE-Net classifier experiment of Chen et al. (2018), Table 1 (`cargo xtask odenet`).
//!
//! Four models on MNIST (`data/mnist`) or the 8×8 digits (`data/sklearn_digits`):
//! - **MLP**: one hidden layer of 300 ReLU units.
//! - **ResNet**: a convolutional stem (28×28 → 7×7, or 8×8 → 4×4, `width` channels), six
//!   residual blocks `h + conv(relu(gn(conv(relu(gn(h))))))`, then group norm, ReLU,
//!   global average pooling and a linear head.
//! - **RK-Net**: the same stem and head around an ODE block `dh/dt = f(h, t)` (group norm,
//!   ReLU, time-conditioned 3×3 convolution, twice, and a final group norm) integrated with
//!   fixed RK4 steps and backpropagated directly through them.
//! - **ODE-Net**: that block solved by Dopri5 at rtol = atol = 1e-3 on [0, 1], trained with
//!   the backsolve adjoint.
//!
//! This file is model assembly and the command line: the stem and head are
//! `autodiff::GraphBlock` / `train::Classifier`, the ODE is an `adjoint::OdeBlock` between
//! them, and `train` does the rest (data, replicas per batch chunk, the training loop,
//! progress, checkpoints and resume). `--help` lists the options.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use rayon::prelude::*;

use adjoint::{AdjointOptions, AutodiffField, Float, OdeBlock, Strategy, VectorField};
use autodiff::checkpoint::OptimizerState;
use autodiff::layers::{global_avg_pool, ConcatConv2d, Conv2d, GroupNorm, Linear};
use autodiff::optim::{Adam, AdamConfig, Schedule, Sgd, SgdConfig};
use autodiff::{ConvGeometry, Graph, GraphBlock, Mat, Rng, Var};
use ode_solvers::{Method, Options};
use train::{
    argmax_rows, Classifier, Dataset, ImageBatches, Images, LabelledBatch, Model, ParamSet,
    Printer, RandomShift, Replicas, StepReport, TrainConfig, Trainer,
};

#[global_allocator]
static ALLOC: train::memory::PeakAlloc = train::memory::PeakAlloc;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Which model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    /// 1-layer MLP.
    Mlp,
    /// ResNet with six residual blocks.
    Resnet,
    /// ODE block through fixed RK4 steps, backpropagated directly.
    Rknet,
    /// ODE block with Dopri5 and the backsolve adjoint.
    Odenet,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Mlp => "1-layer MLP",
            Kind::Resnet => "ResNet",
            Kind::Rknet => "RK-Net",
            Kind::Odenet => "ODE-Net",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DataName {
    Mnist,
    Digits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OptName {
    Adam,
    Sgd,
}

/// The ODE-Net experiment (Chen et al. 2018, Table 1): MLP, ResNet, RK-Net and ODE-Net.
#[derive(Debug, Parser)]
#[command(name = "odenet")]
struct Args {
    /// The dataset.
    #[arg(long, value_enum, default_value = "digits")]
    dataset: DataName,
    /// Training epochs.
    #[arg(long, default_value_t = 1)]
    epochs: u64,
    /// Channels of the convolutional models [default: 64 on MNIST, 32 on the digits].
    #[arg(long)]
    width: Option<usize>,
    /// Minibatch size [default: 128 on MNIST, 32 on the digits].
    #[arg(long)]
    batch: Option<usize>,
    /// Keep the first N training images.
    #[arg(long)]
    train_size: Option<usize>,
    /// Keep the first N test images.
    #[arg(long)]
    test_size: Option<usize>,
    /// The models to train, comma separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "mlp,resnet,rknet,odenet")]
    models: Vec<Kind>,
    /// Base learning rate (warm-up over one epoch, at most a tenth of the run, then cosine
    /// decay to lr/20).
    #[arg(long, default_value_t = 1e-2)]
    lr: f64,
    /// Data parallelism: every batch runs as K chunks on rayon's threads, one model copy
    /// each (results depend on K, not on the thread count).
    #[arg(long, default_value_t = 2)]
    chunks: usize,
    /// The optimiser (SGD with momentum 0.9, as torchdiffeq's odenet_mnist.py).
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptName,
    /// Weight decay (decoupled for Adam: AdamW).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Label smoothing of the training targets.
    #[arg(long, default_value_t = 0.1)]
    label_smoothing: f64,
    /// Shift training images randomly by up to S pixels (torchdiffeq's augmentation).
    #[arg(long, default_value_t = 0)]
    shift: usize,
    /// Write the results table (Markdown) here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit with 1 if the ODE-Net's test accuracy is below A (in [0, 1]).
    #[arg(long)]
    min_accuracy: Option<f64>,
    /// Seed of the initialisation and the training stream.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep training states in DIR/<model>/ and continue from them when present.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Save the training state every N steps (with --resume).
    #[arg(long, default_value_t = 200)]
    checkpoint_every: u64,
    /// Run the RK-Net's and ODE-Net's stem, ODE block and head in single precision
    /// (parameters, optimiser and checkpoints stay f64).
    #[arg(long)]
    f32: bool,
}

/// Sizes and training settings of one model.
#[derive(Debug, Clone, Copy)]
struct Config {
    width: usize,
    batch: usize,
    chunks: usize,
    f32: bool,
}

fn geometry(
    channels: usize,
    side: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> ConvGeometry {
    ConvGeometry {
        channels,
        height: side,
        width: side,
        kernel_h: kernel,
        kernel_w: kernel,
        stride,
        padding,
    }
}

/// Groups of the group norms: `min(32, C/2)`, two channels per group as in the paper's
/// `GroupNorm(32, 64)` (and enough values per group at small widths).
fn groups(c: usize) -> usize {
    (c / 2).clamp(1, 32)
}

type GraphResult<T> = std::result::Result<T, autodiff::Error>;

fn norm_relu(g: &mut Graph, name: &str, h: Var, c: usize, side: usize) -> GraphResult<Var> {
    let n = GroupNorm::new(g, name, groups(c), c, side * side)?.forward(g, h)?;
    g.relu(n)
}

/// The convolutional stem: 3×3 conv (padding 1), then stride-2 4×4 convs down to 7×7 (or
/// 4×4 for 8×8 inputs). Returns the features and their side.
fn stem(g: &mut Graph, x: Var, side: usize, c: usize, rng: &mut Rng) -> GraphResult<(Var, usize)> {
    let mut h = Conv2d::new(g, "stem0", geometry(1, side, 3, 1, 1), c, rng)?.forward(g, x)?;
    let (mut s, mut k) = (side, 1);
    while s > 7 {
        h = norm_relu(g, &format!("stem{k}.norm"), h, c, s)?;
        let conv = Conv2d::new(g, &format!("stem{k}"), geometry(c, s, 4, 2, 1), c, rng)?;
        h = conv.forward(g, h)?;
        s = conv.output().height;
        k += 1;
    }
    Ok((h, s))
}

/// The ODE function: gn, relu, concat-conv, gn, relu, concat-conv, gn.
fn odefunc(
    g: &mut Graph,
    h: Var,
    t: Var,
    c: usize,
    side: usize,
    rng: &mut Rng,
) -> GraphResult<Var> {
    let geom = geometry(c, side, 3, 1, 1);
    let a = norm_relu(g, "f.norm1", h, c, side)?;
    let a = ConcatConv2d::new(g, "f.conv1", geom, c, rng)?.forward(g, a, t)?;
    let a = norm_relu(g, "f.norm2", a, c, side)?;
    let a = ConcatConv2d::new(g, "f.conv2", geom, c, rng)?.forward(g, a, t)?;
    GroupNorm::new(g, "f.norm3", groups(c), c, side * side)?.forward(g, a)
}

fn head(g: &mut Graph, h: Var, c: usize, side: usize, rng: &mut Rng) -> GraphResult<Var> {
    let a = norm_relu(g, "head.norm", h, c, side)?;
    let pooled = global_avg_pool(g, a, side * side)?;
    Linear::new(g, "head.fc", c, 10, rng)?.forward(g, pooled)
}

/// MLP or ResNet: one graph.
fn single(kind: Kind, cfg: Config, side: usize, rng: &mut Rng) -> Result<Classifier> {
    let (c, pixels, bc) = (cfg.width, side * side, cfg.batch / cfg.chunks);
    let mut g = Graph::new();
    let x = g.input(bc, pixels);
    let logits = if kind == Kind::Mlp {
        let h = Linear::new(&mut g, "fc1", pixels, 300, rng)?.forward(&mut g, x)?;
        let h = g.relu(h)?;
        Linear::new(&mut g, "fc2", 300, 10, rng)?.forward(&mut g, h)?
    } else {
        let (mut h, s) = stem(&mut g, x, side, c, rng)?;
        let geom = geometry(c, s, 3, 1, 1);
        for k in 0..6 {
            let a = norm_relu(&mut g, &format!("res{k}.norm1"), h, c, s)?;
            let a =
                Conv2d::new(&mut g, &format!("res{k}.conv1"), geom, c, rng)?.forward(&mut g, a)?;
            let a = norm_relu(&mut g, &format!("res{k}.norm2"), a, c, s)?;
            let a =
                Conv2d::new(&mut g, &format!("res{k}.conv2"), geom, c, rng)?.forward(&mut g, a)?;
            h = g.add(h, a)?;
        }
        head(&mut g, h, c, s, rng)?
    };
    Ok(Classifier::new(g, x, logits, false)?)
}

/// stem → ODE block → head, each half differentiated by its own means, in precision `T`.
struct OdeNet<T: Float> {
    stem: GraphBlock<T>,
    field: AutodiffField<T>,
    head: Classifier<T>,
    block: OdeBlock,
    set: ParamSet,
    /// Features after the stem: rows × columns.
    features: (usize, usize),
    /// The images and the parameter gradients of the stem and the field in `T`.
    buffers: (Vec<T>, Vec<T>, Vec<T>),
}

impl<T: Float> OdeNet<T> {
    fn new(kind: Kind, cfg: Config, side: usize, rng: &mut Rng) -> Result<Self> {
        let (c, bc) = (cfg.width, cfg.batch / cfg.chunks);
        let mut g = Graph::new();
        let x = g.input(bc, side * side);
        let (h0, s) = stem(&mut g, x, side, c, rng)?;
        let features = (bc, g.shape(h0)?.1);
        let stem = GraphBlock::build(g, x, h0)?;
        let mut fg = Graph::new();
        let z = fg.input(features.0, features.1);
        let t = fg.input(1, 1);
        let f = odefunc(&mut fg, z, t, c, s, rng)?;
        let field = AutodiffField::from_graph(fg, f)?;
        let mut hg = Graph::new();
        let h1 = hg.input(features.0, features.1);
        let logits = head(&mut hg, h1, c, s, rng)?;
        let head = Classifier::build(hg, h1, logits, true)?;
        let (strategy, forward) = if kind == Kind::Odenet {
            (Strategy::Backsolve, Options::new(Method::Dopri5).rtol(1e-3).atol(1e-3))
        } else {
            (Strategy::Direct, Options::new(Method::Rk4).step_size(0.25))
        };
        let set = ParamSet::new(&[
            ("stem", stem.graph().params().len()),
            ("field", field.params().len()),
            ("head", head.num_params()),
        ]);
        Ok(OdeNet {
            stem,
            field,
            head,
            block: OdeBlock::new(strategy, AdjointOptions::new(forward)),
            set,
            features,
            buffers: (Vec::new(), Vec::new(), Vec::new()),
        })
    }

    /// The features after the ODE block for the images `x` (in `f64` for the head's
    /// `f64` interface) and the block's record.
    fn features(&mut self, x: &Mat) -> Result<(Mat, adjoint::Record<adjoint::Tape<T>, T>)> {
        let xs = &mut self.buffers.0;
        xs.clear();
        xs.extend(x.iter().map(|&v| <T as autodiff::Real>::of(v)));
        let z0 = self.stem.forward(xs)?.to_vec();
        let rec = self.block.forward(&self.field, &z0, &[T::zero(), T::one()])?;
        let h1 = rec.zs[1].iter().map(|&v| v.to_f64_lossless());
        Ok((Mat::from_iterator(self.features.0, self.features.1, h1), rec))
    }
}

impl<T: Float> Model for OdeNet<T> {
    type Batch = LabelledBatch;

    fn num_params(&self) -> usize {
        self.set.len()
    }

    fn read_params(&self, out: &mut [f64]) -> std::result::Result<(), train::Error> {
        self.set.gather(
            &[self.stem.graph().params(), self.field.params(), self.head.graph().params()],
            out,
        )
    }

    fn write_params(&mut self, params: &[f64]) -> std::result::Result<(), train::Error> {
        let (stem, field, head) =
            (self.stem.params_mut(), self.field.params_mut(), self.head.graph_mut().params_mut());
        self.set.scatter(params, &mut [stem, field, head])
    }

    fn loss_and_grad(
        &mut self,
        batch: &LabelledBatch,
        grad: &mut [f64],
    ) -> std::result::Result<StepReport, train::Error> {
        let (h1, rec) = self.features(&batch.x).map_err(train::Error::Model)?;
        let [rs, rf, rh] = [0, 1, 2].map(|i| self.set.parts()[i].1.clone());
        let loss = self.head.loss_grad(&h1, &batch.y, &mut grad[rh])?;
        let dh1 = self.head.input_grad().unwrap_or_default().to_vec();
        let cotangents = [vec![T::zero(); dh1.len()], dh1];
        let g = self.block.backward(&self.field, &rec, &cotangents).map_err(train::Error::model)?;
        grad[rf].iter_mut().zip(&g.params).for_each(|(d, &v)| *d = v.to_f64_lossless());
        let ds = &mut self.buffers.1;
        ds.clear();
        ds.resize(rs.len(), T::zero());
        self.stem.backward(&g.z0, ds)?;
        grad[rs].iter_mut().zip(ds.iter()).for_each(|(d, &v)| *d = v.to_f64_lossless());
        Ok(StepReport {
            loss,
            metrics: Vec::new(),
            nfe_forward: rec.nfe_forward,
            nfe_backward: g.nfe_backward,
        })
    }
}

/// A model of either shape, `K` copies for the batch chunks.
enum Net {
    Single(Replicas<Classifier>),
    Ode(Replicas<OdeNet<f64>>),
    Ode32(Replicas<OdeNet<f32>>),
}

impl Net {
    fn build(kind: Kind, cfg: Config, side: usize, seed: u64) -> Result<Net> {
        // Every copy is built from the same draws, so the copies start identical.
        Ok(if matches!(kind, Kind::Mlp | Kind::Resnet) {
            let copies = (0..cfg.chunks).map(|_| single(kind, cfg, side, &mut Rng::new(seed)));
            Net::Single(Replicas::new(copies.collect::<Result<_>>()?)?)
        } else if cfg.f32 {
            let copies = (0..cfg.chunks).map(|_| OdeNet::new(kind, cfg, side, &mut Rng::new(seed)));
            Net::Ode32(Replicas::new(copies.collect::<Result<_>>()?)?)
        } else {
            let copies = (0..cfg.chunks).map(|_| OdeNet::new(kind, cfg, side, &mut Rng::new(seed)));
            Net::Ode(Replicas::new(copies.collect::<Result<_>>()?)?)
        })
    }

    fn params(&self) -> usize {
        match self {
            Net::Single(m) => m.num_params(),
            Net::Ode(m) => m.num_params(),
            Net::Ode32(m) => m.num_params(),
        }
    }

    /// Test error over `images`, the copies on chunks of each batch in parallel.
    fn test_error(&mut self, images: &Images, batch: usize) -> Result<f64> {
        let data = ImageBatches { images, augment: None, smoothing: 0.0 };
        let mut wrong = 0;
        let mut seen = 0;
        let all: Vec<usize> = (0..images.len()).collect();
        for idx in all.chunks(batch) {
            // The last batch is padded with image 0 (scored only over the real rows).
            let mut padded = idx.to_vec();
            padded.resize(batch, 0);
            let b = data.batch(&padded, &mut Rng::new(0))?;
            let parts: Vec<Result<Vec<usize>>> = match self {
                Net::Single(m) => {
                    let k = m.copies().len();
                    m.copies_mut()
                        .par_iter_mut()
                        .enumerate()
                        .map(|(i, c)| Ok(c.predict(&b.chunk(i, k)?.x)?))
                        .collect()
                }
                Net::Ode(m) => ode_predictions(m, &b),
                Net::Ode32(m) => ode_predictions(m, &b),
            };
            let mut pred = Vec::with_capacity(batch);
            for p in parts {
                pred.extend(p?);
            }
            for (p, &label) in pred.iter().zip(&b.labels).take(idx.len()) {
                wrong += usize::from(*p != usize::from(label));
            }
            seen += idx.len();
        }
        Ok(wrong as f64 / seen.max(1) as f64)
    }
}

/// Predicted classes of an ODE model's copies, each on its chunk of `b`.
fn ode_predictions<T: Float>(
    m: &mut Replicas<OdeNet<T>>,
    b: &train::LabelledBatch,
) -> Vec<Result<Vec<usize>>> {
    let k = m.copies().len();
    m.copies_mut()
        .par_iter_mut()
        .enumerate()
        .map(|(i, c)| {
            let (h1, _) = c.features(&b.chunk(i, k)?.x)?;
            Ok(argmax_rows(c.head.logits(&h1)?))
        })
        .collect()
}

/// Results of one model.
struct Report {
    model: &'static str,
    test_error: f64,
    params: usize,
    peak_bytes: usize,
    epoch_seconds: f64,
    nfe: Option<(f64, f64)>,
}

fn train_one(
    kind: Kind,
    args: &Args,
    cfg: Config,
    train_set: &Images,
    test_set: &Images,
) -> Result<Report> {
    let base = train::memory::start();
    let mut net = Net::build(kind, cfg, train_set.side, args.seed)?;
    let batches = (train_set.len() / cfg.batch) as u64;
    let steps = args.epochs * batches;
    let mut tc = TrainConfig::new(args.epochs, cfg.batch, args.lr);
    tc.schedule = Schedule::WarmupCosine {
        warmup: batches.min(steps / 10).max(1),
        total: steps,
        min_lr: args.lr / 20.0,
    };
    // The training stream (shuffles, shifts) apart from the initialisation's.
    tc.seed = args.seed ^ 0x5EED_0DE5;
    if let Some(dir) = &args.resume {
        tc.checkpoint_dir = Some(dir.join(format!("{kind:?}").to_lowercase()));
        tc.checkpoint_every = Some(args.checkpoint_every);
        tc.resume = true;
    }
    let optimizer = match args.optimizer {
        OptName::Adam => OptimizerState::Adam(Adam::new(AdamConfig {
            lr: args.lr,
            weight_decay: args.weight_decay,
            decoupled_weight_decay: true,
            ..AdamConfig::default()
        })),
        OptName::Sgd => OptimizerState::Sgd(Sgd::new(SgdConfig {
            lr: args.lr,
            momentum: 0.9,
            weight_decay: args.weight_decay,
            ..SgdConfig::default()
        })),
    };
    let precision = if cfg.f32 && matches!(kind, Kind::Rknet | Kind::Odenet) { " f32" } else { "" };
    let architecture = format!(
        "{} width {} chunks {} {:?}{precision}",
        kind.name(),
        cfg.width,
        cfg.chunks,
        args.dataset
    );
    let mut trainer = Trainer::new(tc, optimizer, &architecture)?;
    let shift = RandomShift(args.shift);
    let data = ImageBatches {
        images: train_set,
        augment: (args.shift > 0).then_some(&shift as _),
        smoothing: args.label_smoothing,
    };
    let mut printer =
        Printer::new(&format!("  {:<11}", kind.name())).lines(args.epochs.clamp(5, 20));
    let summary = match &mut net {
        Net::Single(m) => trainer.fit(m, &data, None, &mut printer)?,
        Net::Ode(m) => trainer.fit(m, &data, None, &mut printer)?,
        Net::Ode32(m) => trainer.fit(m, &data, None, &mut printer)?,
    };
    let peak_bytes = train::memory::since(base).unwrap_or(0);
    let started = Instant::now();
    let test_error = net.test_error(test_set, cfg.batch)?;
    println!(
        "  {:<11} test error {:.2}% ({:.1} s to evaluate)",
        kind.name(),
        100.0 * test_error,
        started.elapsed().as_secs_f64()
    );
    Ok(Report {
        model: kind.name(),
        test_error,
        params: net.params(),
        peak_bytes,
        epoch_seconds: summary.seconds_per_epoch,
        nfe: matches!(kind, Kind::Rknet | Kind::Odenet)
            .then_some((summary.nfe_forward, summary.nfe_backward)),
    })
}

/// The results as a Markdown table.
fn table(reports: &[Report]) -> String {
    let mut s = String::from("| model | test error | parameters | peak memory | time per epoch | NFE forward | NFE backward |\n|---|---|---|---|---|---|---|\n");
    for r in reports {
        let (f, b) = r.nfe.map_or(("-".to_string(), "-".to_string()), |(f, b)| {
            (format!("{f:.1}"), format!("{b:.1}"))
        });
        s.push_str(&format!(
            "| {} | {:.2}% | {:.3} M | {:.1} MiB | {:.1} s | {f} | {b} |\n",
            r.model,
            100.0 * r.test_error,
            r.params as f64 / 1e6,
            r.peak_bytes as f64 / (1024.0 * 1024.0),
            r.epoch_seconds
        ));
    }
    s
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("odenet: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mnist = args.dataset == DataName::Mnist;
    let (mut train_set, mut test_set) = if mnist {
        train::load_mnist(&root.join("data/mnist"))?
    } else {
        train::load_digits(&root.join("data/sklearn_digits/digits.csv.gz"))?
    };
    if let Some(n) = args.train_size {
        train_set.truncate(n);
    }
    if let Some(n) = args.test_size {
        test_set.truncate(n);
    }
    let batch = args.batch.unwrap_or(if mnist { 128 } else { 32 });
    if batch == 0 || args.chunks == 0 || batch % args.chunks != 0 {
        return Err(format!(
            "--batch {batch} must be a positive multiple of --chunks {}",
            args.chunks
        )
        .into());
    }
    if !(0.0..1.0).contains(&args.label_smoothing) {
        return Err(format!("--label-smoothing {} must be in [0, 1)", args.label_smoothing).into());
    }
    let cfg = Config {
        width: args.width.unwrap_or(if mnist { 64 } else { 32 }),
        batch,
        chunks: args.chunks,
        f32: args.f32,
    };
    println!(
        "{:?}: {} training and {} test images, {} epoch(s), width {}, batch {} in {} chunk(s), {:?} lr {}, label smoothing {}, shift {}",
        args.dataset, train_set.len(), test_set.len(), args.epochs, cfg.width, cfg.batch, cfg.chunks,
        args.optimizer, args.lr, args.label_smoothing, args.shift
    );
    let mut reports = Vec::new();
    for &kind in &args.models {
        reports.push(train_one(kind, &args, cfg, &train_set, &test_set)?);
    }
    let t = table(&reports);
    println!("\n{t}");
    if let Some(out) = &args.out {
        std::fs::write(out, &t)?;
        println!("wrote {}", out.display());
    }
    if let Some(min) = args.min_accuracy {
        if let Some(r) = reports.iter().find(|r| r.model == Kind::Odenet.name()) {
            if 1.0 - r.test_error < min {
                eprintln!(
                    "ODE-Net test accuracy {:.2}% is below {:.2}%",
                    100.0 * (1.0 - r.test_error),
                    100.0 * min
                );
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
