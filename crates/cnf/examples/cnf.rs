//! `cargo xtask cnf`: fit a continuous normalizing flow (FFJORD, optionally RNODE) to one of
//! FFJORD's 2-D toys through `train::Trainer`, then report the test NLL (exact trace,
//! Dopri5 at 1e-5, fresh samples) beside the toy's true entropy, as one JSON line, also
//! written to `target/cnf/<toy>/metrics.json`. `--help` lists the options.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use cnf::adjoint::AdjointOptions;
use cnf::autodiff::checkpoint::OptimizerState;
use cnf::autodiff::optim::{Adam, AdamConfig};
use cnf::autodiff::Rng;
use cnf::ode_solvers::{Method, Options};
use cnf::train::{Printer, TrainConfig, Trainer};
use cnf::{Cnf, CnfConfig, FieldKind, FlowModel, Noise, Points, Toy, Trace};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TraceName {
    Exact,
    Hutchinson,
}

/// Fit a CNF to a 2-D toy and report its test NLL beside the true entropy.
#[derive(Debug, Parser)]
#[command(name = "cnf")]
struct Args {
    /// The toy: swissroll, circles, rings, moons, 8gaussians, pinwheel, 2spirals, checkerboard.
    #[arg(long, default_value = "8gaussians")]
    dataset: String,
    /// Training iterations.
    #[arg(long, default_value_t = 1000)]
    iters: u64,
    /// Samples per iteration.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// RNODE: kinetic and Jacobian regularisers (0.01 each) and fixed RK4 steps of 0.25.
    #[arg(long)]
    rnode: bool,
    /// The trace in training.
    #[arg(long, value_enum, default_value = "hutchinson")]
    trace: TraceName,
    /// Hidden widths of the ConcatSquash field, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "64,64,64")]
    hidden: Vec<usize>,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Fresh samples for the test NLL.
    #[arg(long, default_value_t = 4096)]
    test_size: usize,
    /// Seed of the data, the initialisation and the training stream.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Exit with 1 if the test NLL is above this (the CI fast test).
    #[arg(long)]
    max_nll: Option<f64>,
    /// Where metrics.json goes [default: target/cnf/<toy>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the training state in DIR and continue from it when present.
    #[arg(long)]
    resume: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let toy: Toy = args.dataset.parse()?;
    let trace = match args.trace {
        TraceName::Exact => Trace::Exact,
        TraceName::Hutchinson => Trace::Hutchinson(Noise::Gaussian),
    };
    let mut cfg =
        if args.rnode { CnfConfig::rnode(2, args.batch) } else { CnfConfig::ffjord(2, args.batch) };
    cfg.field = FieldKind::ConcatSquash(args.hidden.clone());
    cfg.trace = trace;
    let mut rng = Rng::new(args.seed);
    let flow = Cnf::new(cfg, &mut rng)?;
    let train_rows: Vec<Vec<f64>> =
        toy.sample(50_000, &mut rng).into_iter().map(|p| p.to_vec()).collect();
    let data = Points::new(&train_rows, 2, trace)?;
    let per_epoch = (train_rows.len() / args.batch).max(1) as u64;
    let mut tc = TrainConfig::new(args.iters.div_ceil(per_epoch), args.batch, args.lr);
    tc.max_steps = Some(args.iters);
    tc.seed = args.seed ^ 0x5EED_0DE5;
    if let Some(dir) = &args.resume {
        tc.checkpoint_dir = Some(dir.clone());
        tc.checkpoint_every = Some(250);
        tc.resume = true;
    }
    let adam = OptimizerState::Adam(Adam::new(AdamConfig { lr: args.lr, ..AdamConfig::default() }));
    let mut trainer = Trainer::new(tc, adam, &format!("cnf {} {:?}", toy.name(), args.hidden))?;
    let mut model = FlowModel { flow };
    let summary = trainer.fit(
        &mut model,
        &data,
        None,
        &mut Printer::new(&format!("cnf {}", toy.name())).lines(10),
    )?;
    // Test NLL: exact trace, Dopri5 at 1e-5, fresh samples.
    let started = Instant::now();
    let test_batch = 512.min(args.test_size.max(1));
    let mut eval_cfg = model.flow.config.clone();
    eval_cfg.trace = Trace::Exact;
    eval_cfg.batch = test_batch;
    let mut evaluator = Cnf::new(eval_cfg, &mut Rng::new(0))?;
    evaluator.set_params(&model.flow.params())?;
    let test = toy.sample(args.test_size, &mut Rng::new(args.seed.wrapping_add(1_000_003)));
    let opts = AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-5).atol(1e-5));
    let (mut nll, mut count, mut nfe) = (0.0, 0usize, 0usize);
    for chunk in test.chunks(test_batch) {
        if chunk.len() < test_batch {
            break;
        }
        let x: Vec<f64> = (0..2).flat_map(|j| chunk.iter().map(move |p| p[j])).collect();
        let d = evaluator.densities(&x, &opts)?;
        nll -= d.log_p.iter().sum::<f64>();
        count += chunk.len();
        nfe += d.nfe;
    }
    let nll = nll / count.max(1) as f64;
    let entropy = toy.log_density(test[0]).map(|_| {
        -test.iter().map(|p| toy.log_density(*p).unwrap_or(0.0)).sum::<f64>() / test.len() as f64
    });
    let json = format!(
        "{{\"dataset\": \"{}\", \"iters\": {}, \"rnode\": {}, \"test_nll\": {nll:.4}, \"true_entropy\": {}, \"gap\": {}, \"nfe_eval\": {:.1}, \"nfe_train\": [{:.1}, {:.1}], \"train_seconds\": {:.1}, \"seconds_per_iter\": {:.4}, \"eval_seconds\": {:.1}}}",
        toy.name(),
        summary.steps,
        args.rnode,
        entropy.map_or("null".into(), |e| format!("{e:.4}")),
        entropy.map_or("null".into(), |e| format!("{:.4}", nll - e)),
        nfe as f64 / (count / test_batch).max(1) as f64,
        summary.nfe_forward,
        summary.nfe_backward,
        summary.seconds,
        summary.seconds / summary.steps.max(1) as f64,
        started.elapsed().as_secs_f64()
    );
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/cnf").join(toy.name())
    });
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("metrics.json"), format!("{json}\n"))?;
    println!("{json}");
    if let Some(max) = args.max_nll {
        if nll.is_nan() || nll > max {
            eprintln!("test NLL {nll:.4} is above {max}");
            std::process::exit(1);
        }
    }
    Ok(())
}
