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
//! Training: Adam with a linear warm-up (one epoch, at most a tenth of the run) and cosine
//! decay, cross-entropy, minibatches; the table reports test error, parameters, peak heap
//! memory during training, training time per epoch and NFE per solve (the mean over the
//! batch's chunks).
//!
//! Arguments: `--dataset mnist|digits`, `--epochs N`, `--width C` (64 on MNIST, 32 on the
//! digits), `--batch B`, `--train-size N`, `--test-size N`,
//! `--models mlp,resnet,rknet,odenet`, `--lr X`, `--chunks K` (data parallelism: every
//! model keeps K copies and runs each batch as K chunks on rayon's threads, the ODE block
//! of each chunk with its own adaptive steps; 2 by default; results depend on K, not on
//! the thread count), `--optimizer adam|sgd`, `--weight-decay W`
//! (decoupled, AdamW), `--label-smoothing E` (0.1 by default on the digits, 0 on MNIST),
//! `--shift S` (random translations of the training images by up to S pixels,
//! torchdiffeq's augmentation; off by default: on the 8×8 digits a 1-pixel shift cost
//! accuracy), `--out FILE.md`, `--min-accuracy A` (exit 1 if the ODE-Net's test accuracy
//! is lower), `--seed S`.

use std::error::Error as StdError;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rayon::prelude::*;
use std::time::Instant;

#[path = "common/peak.rs"]
mod peak;

use adjoint::{gradient_chunks, AdjointOptions, AutodiffField, Strategy, VectorField};
use autodiff::layers::{global_avg_pool, Conv2d, GroupNorm, Linear};
use autodiff::optim::{Adam, AdamConfig, Optimizer, Schedule, Sgd, SgdConfig};
use autodiff::{ConvGeometry, Executor, Graph, Mat, Rng, Var};
use ode_solvers::{Method, Options};

type Result<T> = std::result::Result<T, Box<dyn StdError + Send + Sync>>;

// ---------------------------------------------------------------------------------------
// Data.

/// Images as rows of pixels in [0, 1], with labels.
pub struct Dataset {
    /// `n × side²`, row-major per image.
    pub pixels: Vec<f64>,
    /// Labels 0..9.
    pub labels: Vec<u8>,
    /// Image side.
    pub side: usize,
}

impl Dataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.pixels.truncate(n * self.side * self.side);
    }
}

fn gunzip(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut out)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(out)
}

fn be_u32(b: &[u8], at: usize) -> Result<usize> {
    let w: [u8; 4] = b.get(at..at + 4).ok_or("truncated IDX header")?.try_into()?;
    Ok(u32::from_be_bytes(w) as usize)
}

/// An IDX image file and its label file.
fn load_idx(images: &Path, labels: &Path) -> Result<Dataset> {
    let (im, lb) = (gunzip(images)?, gunzip(labels)?);
    if be_u32(&im, 0)? != 0x0803 || be_u32(&lb, 0)? != 0x0801 {
        return Err("not IDX image/label files (bad magic)".into());
    }
    let (n, rows, cols) = (be_u32(&im, 4)?, be_u32(&im, 8)?, be_u32(&im, 12)?);
    if be_u32(&lb, 4)? != n || rows != cols || im.len() != 16 + n * rows * cols || lb.len() != 8 + n
    {
        return Err("IDX files have inconsistent sizes".into());
    }
    Ok(Dataset {
        pixels: im[16..].iter().map(|&p| f64::from(p) / 255.0).collect(),
        labels: lb[8..].to_vec(),
        side: rows,
    })
}

/// MNIST from `dir` (train, test).
pub fn load_mnist(dir: &Path) -> Result<(Dataset, Dataset)> {
    let train =
        load_idx(&dir.join("train-images-idx3-ubyte.gz"), &dir.join("train-labels-idx1-ubyte.gz"))?;
    let test =
        load_idx(&dir.join("t10k-images-idx3-ubyte.gz"), &dir.join("t10k-labels-idx1-ubyte.gz"))?;
    Ok((train, test))
}

/// The 8×8 digits: first 898 rows train, last 899 test.
pub fn load_digits(path: &Path) -> Result<(Dataset, Dataset)> {
    let text = String::from_utf8(gunzip(path)?)?;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let v: Vec<f64> = line
            .split(',')
            .map(|x| x.trim().parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| format!("digits row {i}: {e}"))?;
        if v.len() != 65 {
            return Err(format!("digits row {i}: {} fields, expected 65", v.len()).into());
        }
        pixels.extend(v[..64].iter().map(|p| p / 16.0));
        labels.push(v[64] as u8);
    }
    let split = 898;
    let test =
        Dataset { pixels: pixels.split_off(split * 64), labels: labels.split_off(split), side: 8 };
    Ok((Dataset { pixels, labels, side: 8 }, test))
}

// ---------------------------------------------------------------------------------------
// Models.

/// Which model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1-layer MLP.
    Mlp,
    /// ResNet with six residual blocks.
    ResNet,
    /// ODE block through fixed RK4 steps, backpropagated directly.
    RkNet,
    /// ODE block with Dopri5 and the adjoint.
    OdeNet,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Mlp => "1-layer MLP",
            Kind::ResNet => "ResNet",
            Kind::RkNet => "RK-Net",
            Kind::OdeNet => "ODE-Net",
        }
    }
}

/// Sizes and training settings.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Channels of the convolutional models.
    pub width: usize,
    /// Minibatch size.
    pub batch: usize,
    /// The base learning rate.
    pub lr: f64,
    /// Each batch runs as this many chunks in parallel, one model copy each (the ODE
    /// blocks through `adjoint::gradient_chunks`, each chunk with its own adaptive steps).
    pub chunks: usize,
    /// SGD with momentum 0.9 (as torchdiffeq's `odenet_mnist.py`) instead of Adam.
    pub sgd: bool,
    /// Decoupled weight decay (AdamW; SGD: an L2 term).
    pub weight_decay: f64,
    /// Label smoothing ε of the training targets.
    pub smoothing: f64,
    /// Training images are shifted by up to this many pixels in each direction (uniform,
    /// zero fill), as torchdiffeq's `RandomCrop(28, padding=4)`; 0 turns it off.
    pub shift: usize,
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

/// Groups of the group norms: `min(32, C/2)`, so two channels per group as in the paper's
/// `GroupNorm(32, 64)` (and enough values per group at small widths).
fn groups(c: usize) -> usize {
    (c / 2).clamp(1, 32)
}

fn norm_relu(
    g: &mut Graph,
    name: &str,
    h: Var,
    c: usize,
    side: usize,
) -> std::result::Result<Var, autodiff::Error> {
    let gn = GroupNorm::new(g, name, groups(c), c, side * side)?;
    let n = gn.forward(g, h)?;
    g.relu(n)
}

/// The convolutional stem: 3×3 conv (padding 1), then stride-2 4×4 convs down to 7×7 (or
/// 4×4 for 8×8 inputs). Returns the features and their side.
fn stem(
    g: &mut Graph,
    x: Var,
    side: usize,
    c: usize,
    rng: &mut Rng,
) -> std::result::Result<(Var, usize), autodiff::Error> {
    let mut h = Conv2d::new(g, "stem0", geometry(1, side, 3, 1, 1), c, rng).forward(g, x)?;
    let mut s = side;
    let mut k = 1;
    while s > 7 {
        h = norm_relu(g, &format!("stem{k}.norm"), h, c, s)?;
        let conv = Conv2d::new(g, &format!("stem{k}"), geometry(c, s, 4, 2, 1), c, rng);
        h = conv.forward(g, h)?;
        s = conv.output().height;
        k += 1;
    }
    Ok((h, s))
}

/// FFJORD/Chen's `ConcatConv2d`: a 3×3 convolution of `[h, t]` (t as an extra channel).
fn concat_conv(
    g: &mut Graph,
    name: &str,
    h: Var,
    t: Var,
    c: usize,
    side: usize,
    rng: &mut Rng,
) -> std::result::Result<Var, autodiff::Error> {
    let b = g.shape(h)?.0;
    let tmap = g.broadcast_to(t, (b, side * side))?;
    let ht = g.concat_cols(&[h, tmap])?;
    Conv2d::new(g, name, geometry(c + 1, side, 3, 1, 1), c, rng).forward(g, ht)
}

/// The ODE function: gn, relu, concat-conv, gn, relu, concat-conv, gn.
fn odefunc(
    g: &mut Graph,
    h: Var,
    t: Var,
    c: usize,
    side: usize,
    rng: &mut Rng,
) -> std::result::Result<Var, autodiff::Error> {
    let a = norm_relu(g, "f.norm1", h, c, side)?;
    let a = concat_conv(g, "f.conv1", a, t, c, side, rng)?;
    let a = norm_relu(g, "f.norm2", a, c, side)?;
    let a = concat_conv(g, "f.conv2", a, t, c, side, rng)?;
    GroupNorm::new(g, "f.norm3", groups(c), c, side * side)?.forward(g, a)
}

fn head(
    g: &mut Graph,
    h: Var,
    c: usize,
    side: usize,
    rng: &mut Rng,
) -> std::result::Result<Var, autodiff::Error> {
    let a = norm_relu(g, "head.norm", h, c, side)?;
    let pooled = global_avg_pool(g, a, side * side)?;
    Linear::new(g, "head.fc", c, 10, rng).forward(g, pooled)
}

/// The optimizer `cfg` asks for.
fn optimizer(cfg: Config) -> Box<dyn Optimizer + Send> {
    if cfg.sgd {
        Box::new(Sgd::new(SgdConfig {
            lr: cfg.lr,
            momentum: 0.9,
            weight_decay: cfg.weight_decay,
            ..SgdConfig::default()
        }))
    } else {
        Box::new(Adam::new(AdamConfig {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            decoupled_weight_decay: true,
            ..AdamConfig::default()
        }))
    }
}

/// A graph with a loss, its logits and parameter gradients, replayed per batch.
struct Trainable {
    g: Graph,
    loss: Var,
    logits: Var,
    grads: Vec<Var>,
    input_grad: Option<Var>,
    exe: Executor,
    predict: Executor,
    opt: Box<dyn Optimizer + Send>,
    flat: Vec<f64>,
}

impl Trainable {
    /// `build` gets the graph and the input; the loss is cross-entropy against a one-hot
    /// second input. With `input_grad`, the gradient for the input is computed too.
    fn new(
        mut g: Graph,
        input: Var,
        logits: Var,
        input_grad: bool,
        cfg: Config,
    ) -> std::result::Result<Self, autodiff::Error> {
        let (b, _) = g.shape(logits)?;
        let onehot = g.input(b, 10);
        let loss = g.cross_entropy(logits, onehot)?;
        let mut wrt: Vec<Var> = g.param_vars().to_vec();
        if input_grad {
            wrt.push(input);
        }
        let mut grads = g.grad(loss, &wrt)?;
        let input_grad = if input_grad { grads.pop() } else { None };
        let mut outs = vec![loss, logits];
        outs.extend(&grads);
        outs.extend(input_grad);
        let exe = Executor::new(&g, &outs)?;
        let predict = Executor::new(&g, &[logits])?;
        let flat = vec![0.0; g.params().len()];
        Ok(Trainable {
            g,
            loss,
            logits,
            grads,
            input_grad,
            exe,
            predict,
            opt: optimizer(cfg),
            flat,
        })
    }

    fn run(&mut self, x: &Mat, onehot: &Mat) -> std::result::Result<f64, autodiff::Error> {
        self.exe.run(&self.g, &[x, onehot])?;
        self.exe.gather(&self.g, &self.grads, &mut self.flat)?;
        Ok(self.exe.value(self.loss)[(0, 0)])
    }

    fn step(&mut self) -> std::result::Result<(), autodiff::Error> {
        self.opt.step(self.g.params_mut(), &self.flat)
    }

    fn logits(&mut self, x: &Mat) -> std::result::Result<&Mat, autodiff::Error> {
        let dummy = Mat::zeros(x.nrows(), 10);
        self.predict.run(&self.g, &[x, &dummy])?;
        Ok(self.predict.value(self.logits))
    }
}

/// The convolutional stem of RK-Net / ODE-Net for one batch chunk: forward and backward
/// executors and the chunk's input and cotangent buffers.
struct Stem {
    g: Graph,
    out: Var,
    fwd: Executor,
    bwd: Executor,
    grads: Vec<Var>,
    flat: Vec<f64>,
    x: Mat,
    cot: Mat,
}

/// The stem, ODE block and head of RK-Net / ODE-Net: one copy of each (same parameters)
/// per batch chunk.
struct OdeModel {
    stems: Vec<Mutex<Stem>>,
    stem_opt: Box<dyn Optimizer + Send>,
    fields: Vec<Mutex<AutodiffField>>,
    field_opt: Box<dyn Optimizer + Send>,
    heads: Vec<Mutex<Trainable>>,
    strategy: Strategy,
    opts: AdjointOptions,
}

/// A model as one copy per batch chunk (data parallelism: the chunks run on rayon's
/// threads, their gradients are summed and copy 0's optimizer steps for all).
enum Model {
    Single(Vec<Trainable>),
    Ode(Box<OdeModel>),
}

/// Rows `k·bc .. (k+1)·bc` of `m` into `out`.
fn chunk_rows(m: &Mat, k: usize, out: &mut Mat) {
    let bc = out.nrows();
    out.copy_from(&m.rows(k * bc, bc));
}

/// Adds the other copies' gradients to the first's, scaled by `scale`.
fn sum_into(
    first: &mut [f64],
    others: impl Iterator<Item = impl std::ops::Deref<Target = [f64]>>,
    scale: f64,
) {
    for other in others {
        for (sum, g) in first.iter_mut().zip(other.iter()) {
            *sum += g;
        }
    }
    first.iter_mut().for_each(|v| *v *= scale);
}

fn build(kind: Kind, cfg: Config, side: usize, rng: &mut Rng) -> Result<Model> {
    let (nc, c, pixels) = (cfg.chunks, cfg.width, side * side);
    let bc = cfg.batch / nc;
    // Chunk copies are built with the same random draws, so they start identical.
    let mut after = rng.clone();
    match kind {
        Kind::Mlp | Kind::ResNet => {
            let mut copies = Vec::new();
            for _ in 0..nc {
                let mut r = rng.clone();
                let mut g = Graph::new();
                let x = g.input(bc, pixels);
                let logits = if kind == Kind::Mlp {
                    let h = Linear::new(&mut g, "fc1", pixels, 300, &mut r).forward(&mut g, x)?;
                    let h = g.relu(h)?;
                    Linear::new(&mut g, "fc2", 300, 10, &mut r).forward(&mut g, h)?
                } else {
                    let (mut h, s) = stem(&mut g, x, side, c, &mut r)?;
                    for k in 0..6 {
                        let a = norm_relu(&mut g, &format!("res{k}.norm1"), h, c, s)?;
                        let geom = geometry(c, s, 3, 1, 1);
                        let a = Conv2d::new(&mut g, &format!("res{k}.conv1"), geom, c, &mut r)
                            .forward(&mut g, a)?;
                        let a = norm_relu(&mut g, &format!("res{k}.norm2"), a, c, s)?;
                        let a = Conv2d::new(&mut g, &format!("res{k}.conv2"), geom, c, &mut r)
                            .forward(&mut g, a)?;
                        h = g.add(h, a)?;
                    }
                    head(&mut g, h, c, s, &mut r)?
                };
                copies.push(Trainable::new(g, x, logits, false, cfg)?);
                after = r;
            }
            *rng = after;
            Ok(Model::Single(copies))
        }
        Kind::RkNet | Kind::OdeNet => {
            let (mut stems, mut fields, mut heads) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..nc {
                let mut r = rng.clone();
                let mut g = Graph::new();
                let x = g.input(bc, pixels);
                let (h0, s) = stem(&mut g, x, side, c, &mut r)?;
                let features = g.shape(h0)?.1;
                let cot = g.input(bc, features);
                let params = g.param_vars().to_vec();
                let grads = g.vjp(&[(h0, cot)], &params)?;
                stems.push(Mutex::new(Stem {
                    fwd: Executor::new(&g, &[h0])?,
                    bwd: Executor::new(&g, &grads)?,
                    grads,
                    flat: vec![0.0; g.params().len()],
                    x: Mat::zeros(bc, pixels),
                    cot: Mat::zeros(bc, features),
                    g,
                    out: h0,
                }));
                let mut fg = Graph::new();
                let z = fg.input(bc, features);
                let t = fg.input(1, 1);
                let f = odefunc(&mut fg, z, t, c, s, &mut r)?;
                fields.push(Mutex::new(AutodiffField::new(fg, f)?));
                let mut hg = Graph::new();
                let h1 = hg.input(bc, features);
                let logits = head(&mut hg, h1, c, s, &mut r)?;
                heads.push(Mutex::new(Trainable::new(hg, h1, logits, true, cfg)?));
                after = r;
            }
            *rng = after;
            let (strategy, forward) = if kind == Kind::OdeNet {
                (Strategy::Backsolve, Options::new(Method::Dopri5).rtol(1e-3).atol(1e-3))
            } else {
                (Strategy::Direct, Options::new(Method::Rk4).step_size(0.25))
            };
            Ok(Model::Ode(Box::new(OdeModel {
                stems,
                stem_opt: optimizer(cfg),
                fields,
                field_opt: optimizer(cfg),
                heads,
                strategy,
                opts: AdjointOptions::new(forward),
            })))
        }
    }
}

impl Model {
    /// Sets the learning rate of every optimizer.
    fn set_lr(&mut self, lr: f64) {
        match self {
            Model::Single(copies) => {
                if let Some(t) = copies.first_mut() {
                    t.opt.set_learning_rate(lr);
                }
            }
            Model::Ode(m) => {
                m.stem_opt.set_learning_rate(lr);
                m.field_opt.set_learning_rate(lr);
                lock(&m.heads[0]).opt.set_learning_rate(lr);
            }
        }
    }

    fn params(&self) -> usize {
        match self {
            Model::Single(copies) => copies.first().map_or(0, |t| t.g.params().len()),
            Model::Ode(m) => {
                lock(&m.stems[0]).g.params().len()
                    + lock(&m.fields[0]).params().len()
                    + lock(&m.heads[0]).g.params().len()
            }
        }
    }

    /// One training step; returns (loss, NFE forward, NFE backward).
    fn train_step(&mut self, x: &Mat, onehot: &Mat) -> Result<(f64, usize, usize)> {
        match self {
            Model::Single(copies) => {
                let nc = copies.len();
                let losses: Vec<std::result::Result<f64, autodiff::Error>> = copies
                    .par_iter_mut()
                    .enumerate()
                    .map(|(k, t)| {
                        let bc = x.nrows() / nc;
                        let (mut xk, mut yk) = (Mat::zeros(bc, x.ncols()), Mat::zeros(bc, 10));
                        chunk_rows(x, k, &mut xk);
                        chunk_rows(onehot, k, &mut yk);
                        t.run(&xk, &yk)
                    })
                    .collect();
                let mut loss = 0.0;
                for l in losses {
                    loss += l? / nc as f64;
                }
                let (first, rest) = copies.split_at_mut(1);
                let first = &mut first[0];
                sum_into(&mut first.flat, rest.iter().map(|t| t.flat.as_slice()), 1.0 / nc as f64);
                first.step()?;
                for t in rest {
                    t.g.params_mut().copy_from_slice(first.g.params());
                }
                Ok((loss, 0, 0))
            }
            Model::Ode(m) => {
                let nc = m.fields.len();
                let stems = &m.stems;
                let z0s: Vec<std::result::Result<Vec<f64>, autodiff::Error>> = (0..nc)
                    .into_par_iter()
                    .map(|k| {
                        let mut guard = lock(&stems[k]);
                        let s = &mut *guard;
                        chunk_rows(x, k, &mut s.x);
                        s.fwd.run(&s.g, &[&s.x, &s.cot])?;
                        Ok(s.fwd.value(s.out).as_slice().to_vec())
                    })
                    .collect();
                let z0s = z0s.into_iter().collect::<std::result::Result<Vec<_>, _>>()?;
                let (bc, n) = lock(&stems[0]).cot.shape();
                let onehots: Vec<Mat> =
                    (0..nc).map(|k| onehot.rows(k * bc, bc).into_owned()).collect();
                let heads = &m.heads;
                let failure = Mutex::new(None);
                // Each chunk's loss is its mean cross-entropy divided by nc, so the sum is
                // the batch mean.
                let scale = 1.0 / nc as f64;
                let loss = |k: usize, zs: &[Vec<f64>]| {
                    let mut head = lock(&heads[k]);
                    let h1 = Mat::from_column_slice(bc, n, &zs[1]);
                    match head.run(&h1, &onehots[k]) {
                        Ok(value) => {
                            let dh1 = head
                                .input_grad
                                .map(|v| head.exe.value(v).iter().map(|g| g * scale).collect())
                                .unwrap_or_default();
                            (value * scale, vec![vec![0.0; zs[0].len()], dh1])
                        }
                        Err(e) => {
                            *lock(&failure) = Some(e);
                            (f64::NAN, vec![vec![0.0; zs[0].len()]; 2])
                        }
                    }
                };
                let fields = &m.fields;
                let g = gradient_chunks(
                    |k| Ok(Locked(lock(&fields[k]))),
                    &z0s,
                    &[0.0, 1.0],
                    loss,
                    m.strategy,
                    &m.opts,
                );
                if let Some(e) = lock(&failure).take() {
                    return Err(e.into());
                }
                let g = g?;
                // Each chunk's z0 gradient (bc × n, column-major) through its stem copy.
                let done: Vec<std::result::Result<(), autodiff::Error>> = (0..nc)
                    .into_par_iter()
                    .map(|k| {
                        let mut guard = lock(&stems[k]);
                        let s = &mut *guard;
                        s.cot.as_mut_slice().copy_from_slice(&g.z0[k * bc * n..(k + 1) * bc * n]);
                        s.bwd.run(&s.g, &[&s.x, &s.cot])?;
                        s.bwd.gather(&s.g, &s.grads, &mut s.flat)
                    })
                    .collect();
                done.into_iter().collect::<std::result::Result<Vec<()>, _>>()?;
                let mut stem0 = lock(&stems[0]);
                let others: Vec<_> = stems[1..].iter().map(lock).collect();
                sum_into(&mut stem0.flat, others.iter().map(|s| s.flat.as_slice()), 1.0);
                drop(others);
                let s0 = &mut *stem0;
                m.stem_opt.step(s0.g.params_mut(), &s0.flat)?;
                for s in &stems[1..] {
                    lock(s).g.params_mut().copy_from_slice(s0.g.params());
                }
                drop(stem0);
                let mut f0 = lock(&m.fields[0]);
                m.field_opt.step(f0.params_mut(), &g.params)?;
                for f in &m.fields[1..] {
                    lock(f).params_mut().copy_from_slice(f0.params());
                }
                drop(f0);
                let mut head0 = lock(&m.heads[0]);
                let others: Vec<_> = m.heads[1..].iter().map(lock).collect();
                sum_into(&mut head0.flat, others.iter().map(|h| h.flat.as_slice()), scale);
                drop(others);
                head0.step()?;
                for h in &m.heads[1..] {
                    lock(h).g.params_mut().copy_from_slice(head0.g.params());
                }
                Ok((g.loss, g.nfe_forward / nc, g.nfe_backward / nc))
            }
        }
    }

    /// Predicted classes for a batch, the chunks in parallel.
    fn predict(&mut self, x: &Mat) -> Result<Vec<usize>> {
        let argmax = |l: &Mat| -> Vec<usize> {
            (0..l.nrows())
                .map(|i| (0..10).max_by(|&a, &b| l[(i, a)].total_cmp(&l[(i, b)])).unwrap_or(0))
                .collect()
        };
        let parts: Vec<Result<Vec<usize>>> = match self {
            Model::Single(copies) => {
                let nc = copies.len();
                copies
                    .par_iter_mut()
                    .enumerate()
                    .map(|(k, t)| {
                        let mut xk = Mat::zeros(x.nrows() / nc, x.ncols());
                        chunk_rows(x, k, &mut xk);
                        Ok(argmax(t.logits(&xk)?))
                    })
                    .collect()
            }
            Model::Ode(m) => (0..m.fields.len())
                .into_par_iter()
                .map(|k| {
                    let mut guard = lock(&m.stems[k]);
                    let s = &mut *guard;
                    chunk_rows(x, k, &mut s.x);
                    s.fwd.run(&s.g, &[&s.x, &s.cot])?;
                    let (bc, n) = s.cot.shape();
                    let field = lock(&m.fields[k]);
                    let z0 = s.fwd.value(s.out).as_slice();
                    let sol = ode_solvers::odeint(&*field, z0, &[0.0, 1.0], &m.opts.forward)?;
                    let h1 = Mat::from_column_slice(bc, n, &sol.ys[1]);
                    Ok(argmax(lock(&m.heads[k]).logits(&h1)?))
                })
                .collect(),
        };
        let mut classes = Vec::with_capacity(x.nrows());
        for p in parts {
            classes.extend(p?);
        }
        Ok(classes)
    }
}

/// Locks a mutex, also after a panic in another holder (the data is plain numbers).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A locked chunk field, as `gradient_chunks` takes fields by value.
struct Locked<'a>(MutexGuard<'a, AutodiffField>);

impl ode_solvers::OdeSystem<f64> for Locked<'_> {
    fn rhs(
        &self,
        t: f64,
        z: &[f64],
        dz: &mut [f64],
    ) -> std::result::Result<(), ode_solvers::RhsError> {
        self.0.rhs(t, z, dz)
    }
}

impl VectorField for Locked<'_> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn params(&self) -> &[f64] {
        self.0.params()
    }
    fn vjp(
        &self,
        t: f64,
        z: &[f64],
        a: &[f64],
        dz: &mut [f64],
        vz: &mut [f64],
        vp: &mut [f64],
    ) -> std::result::Result<f64, adjoint::Error> {
        self.0.vjp(t, z, a, dz, vz, vp)
    }
}

/// Batch `idx` as a column-major `B × pixels` matrix and one-hot labels; rows past the
/// data are zero (and ignored when scoring). With `shift = Some((s, rng))` each image is
/// translated by a random offset in `[-s, s]²`, zero filled.
fn batch(data: &Dataset, idx: &[usize], b: usize, shift: Option<(usize, &mut Rng)>) -> (Mat, Mat) {
    let side = data.side;
    let p = side * side;
    let mut x = Mat::zeros(b, p);
    let mut y = Mat::zeros(b, 10);
    let mut shift = shift;
    for (r, &i) in idx.iter().enumerate() {
        let (dy, dx) = match shift.as_mut() {
            Some((s, rng)) if *s > 0 => {
                let mut offset = || {
                    let k = (rng.uniform() * (2 * *s + 1) as f64) as isize;
                    k.min(2 * *s as isize) - *s as isize
                };
                (offset(), offset())
            }
            _ => (0, 0),
        };
        for row in 0..side {
            for col in 0..side {
                let (sr, sc) = (row as isize + dy, col as isize + dx);
                if (0..side as isize).contains(&sr) && (0..side as isize).contains(&sc) {
                    x[(r, row * side + col)] =
                        data.pixels[i * p + sr as usize * side + sc as usize];
                }
            }
        }
        y[(r, usize::from(data.labels[i]))] = 1.0;
    }
    (x, y)
}

/// Results of one model.
pub struct Report {
    /// Model name.
    pub model: &'static str,
    /// Test error in [0, 1].
    pub test_error: f64,
    /// Parameter count.
    pub params: usize,
    /// Peak heap bytes during training.
    pub peak_bytes: usize,
    /// Seconds per training epoch.
    pub epoch_seconds: f64,
    /// Mean NFE per chunk solve, forward and backward (ODE blocks only).
    pub nfe: Option<(f64, f64)>,
}

/// Trains `kind` and evaluates it on `test`.
pub fn train(
    kind: Kind,
    cfg: Config,
    train_set: &Dataset,
    test_set: &Dataset,
    epochs: usize,
    seed: u64,
    verbose: bool,
) -> Result<Report> {
    let mut rng = Rng::new(seed);
    let base = peak::start();
    let mut model = build(kind, cfg, train_set.side, &mut rng)?;
    let batches = train_set.len() / cfg.batch;
    // Linear warm-up over one epoch (at most a tenth of the run), then cosine decay to
    // lr/20.
    let schedule = Schedule::WarmupCosine {
        warmup: batches.min(epochs * batches / 10).max(1) as u64,
        total: (epochs * batches) as u64,
        min_lr: cfg.lr / 20.0,
    };
    let (mut nfe_f, mut nfe_b) = (0usize, 0usize);
    let start = Instant::now();
    for epoch in 1..=epochs {
        let mut order: Vec<usize> = (0..train_set.len()).collect();
        for i in (1..order.len()).rev() {
            let j = (rng.uniform() * (i + 1) as f64) as usize;
            order.swap(i, j.min(i));
        }
        let mut loss_sum = 0.0;
        for k in 0..batches {
            let idx = &order[k * cfg.batch..(k + 1) * cfg.batch];
            let (x, mut y) = batch(train_set, idx, cfg.batch, Some((cfg.shift, &mut rng)));
            // Label smoothing: (1 - ε) one-hot + ε/10 on every class.
            y.iter_mut().for_each(|v| *v = (1.0 - cfg.smoothing) * *v + cfg.smoothing / 10.0);
            model.set_lr(schedule.lr(cfg.lr, ((epoch - 1) * batches + k) as u64));
            let (loss, f, b) = model.train_step(&x, &y)?;
            loss_sum += loss;
            nfe_f += f;
            nfe_b += b;
            let done = (epoch - 1) * batches + k + 1;
            if verbose && (k + 1) % (batches / 5).max(1) == 0 {
                let elapsed = start.elapsed().as_secs_f64();
                let left = elapsed / done as f64 * (epochs * batches - done) as f64;
                println!(
                    "  {:<11} epoch {epoch}/{epochs} batch {:>5}/{batches}  loss {:.4}  NFE {:.1}/{:.1}  {elapsed:.0}s, ~{left:.0}s left",
                    kind.name(),
                    k + 1,
                    loss_sum / (k + 1) as f64,
                    nfe_f as f64 / done as f64,
                    nfe_b as f64 / done as f64
                );
            }
        }
    }
    let epoch_seconds = start.elapsed().as_secs_f64() / epochs.max(1) as f64;
    let peak_bytes = peak::since(base);
    let mut wrong = 0;
    for chunk in (0..test_set.len()).collect::<Vec<_>>().chunks(cfg.batch) {
        let (x, _) = batch(test_set, chunk, cfg.batch, None);
        let pred = model.predict(&x)?;
        wrong +=
            chunk.iter().zip(&pred).filter(|(&i, &p)| usize::from(test_set.labels[i]) != p).count();
    }
    let steps = (epochs * batches).max(1) as f64;
    Ok(Report {
        model: kind.name(),
        test_error: wrong as f64 / test_set.len().max(1) as f64,
        params: model.params(),
        peak_bytes,
        epoch_seconds,
        nfe: matches!(kind, Kind::RkNet | Kind::OdeNet)
            .then(|| (nfe_f as f64 / steps, nfe_b as f64 / steps)),
    })
}

/// The results as a markdown table.
pub fn table(reports: &[Report]) -> String {
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

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

#[allow(dead_code)]
fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dataset: String = arg(&args, "--dataset").unwrap_or_else(|| "digits".into());
    let (mut train_set, mut test_set) = match dataset.as_str() {
        "mnist" => load_mnist(&root.join("data/mnist"))?,
        "digits" => load_digits(&root.join("data/sklearn_digits/digits.csv.gz"))?,
        other => return Err(format!("unknown dataset '{other}' (mnist or digits)").into()),
    };
    if let Some(n) = arg::<usize>(&args, "--train-size") {
        train_set.truncate(n);
    }
    if let Some(n) = arg::<usize>(&args, "--test-size") {
        test_set.truncate(n);
    }
    let epochs = arg(&args, "--epochs").unwrap_or(1);
    let cfg = Config {
        width: arg(&args, "--width").unwrap_or(if dataset == "mnist" { 64 } else { 32 }),
        batch: arg(&args, "--batch").unwrap_or(if dataset == "mnist" { 128 } else { 32 }),
        lr: arg(&args, "--lr").unwrap_or(if dataset == "mnist" { 1e-3 } else { 1e-2 }),
        sgd: arg::<String>(&args, "--optimizer").is_some_and(|o| o == "sgd"),
        chunks: 2,
        weight_decay: arg(&args, "--weight-decay").unwrap_or(0.0),
        smoothing: arg(&args, "--label-smoothing").unwrap_or(if dataset == "mnist" {
            0.0
        } else {
            0.1
        }),
        shift: arg(&args, "--shift").unwrap_or(0),
    };
    let mut cfg = cfg;
    cfg.chunks = arg::<usize>(&args, "--chunks").unwrap_or(cfg.chunks).clamp(1, cfg.batch.max(1));
    while !cfg.batch.is_multiple_of(cfg.chunks) {
        cfg.chunks -= 1;
    }
    let seed = arg(&args, "--seed").unwrap_or(0);
    let models: String = arg(&args, "--models").unwrap_or_else(|| "mlp,resnet,rknet,odenet".into());
    let kinds: Vec<Kind> = models
        .split(',')
        .map(|m| match m {
            "mlp" => Ok(Kind::Mlp),
            "resnet" => Ok(Kind::ResNet),
            "rknet" => Ok(Kind::RkNet),
            "odenet" => Ok(Kind::OdeNet),
            other => Err(format!("unknown model '{other}'")),
        })
        .collect::<std::result::Result<_, _>>()?;
    println!(
        "{dataset}: {} training and {} test images, {epochs} epoch(s), width {}, batch {} in {} chunk(s), {} lr {}, label smoothing {}, shift {}",
        train_set.len(),
        test_set.len(),
        cfg.width,
        cfg.batch,
        cfg.chunks,
        if cfg.sgd { "SGD (momentum 0.9)" } else { "Adam" },
        cfg.lr,
        cfg.smoothing,
        cfg.shift
    );
    let mut reports = Vec::new();
    for kind in kinds {
        let r = train(kind, cfg, &train_set, &test_set, epochs, seed, true)?;
        println!(
            "{}: test error {:.2}%, {} parameters, {:.1} s per epoch",
            r.model,
            100.0 * r.test_error,
            r.params,
            r.epoch_seconds
        );
        reports.push(r);
    }
    let t = table(&reports);
    println!("\n{t}");
    if let Some(out) = arg::<String>(&args, "--out") {
        std::fs::write(&out, &t)?;
        println!("wrote {out}");
    }
    if let Some(min) = arg::<f64>(&args, "--min-accuracy") {
        if let Some(r) = reports.iter().find(|r| r.model == Kind::OdeNet.name()) {
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
