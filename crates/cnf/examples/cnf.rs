//! `cargo xtask cnf`: fit a continuous normalizing flow (FFJORD, optionally RNODE) to one of
//! FFJORD's 2-D toys (or a user's CSV, `--data`) through `train::Trainer`, then report the
//! test NLL (exact trace, Dopri5 at 1e-5; fresh samples, or the last tenth of the file)
//! beside the toy's true entropy, as one JSON line, also written to `metrics.json` under
//! `target/cnf/<name>/`, with PNGs for 2-D data: held-out data, the learned density (exact
//! trace, on a grid), model samples and trajectories (held-out points carried from the
//! data at `t = 0` to the base at `T`, five times). `--help` lists the options.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use cnf::adjoint::AdjointOptions;
use cnf::autodiff::checkpoint::OptimizerState;
use cnf::autodiff::optim::{Adam, AdamConfig, Schedule};
use cnf::autodiff::Rng;
use cnf::ode_solvers::{Method, Options};
use cnf::train::{Printer, TrainConfig, Trainer};
use cnf::{
    bits_per_dim, dequantize, ChainModel, Cnf, CnfChain, CnfConfig, FieldKind, Gaussian, Kde,
    Noise, Points, Toy, Trace,
};
use plotters::prelude::*;

#[path = "common/colour.rs"]
mod common;
use common::colour;

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
    /// The toy: swissroll, circles, rings, moons, 8gaussians, pinwheel, 2spirals,
    /// checkerboard; or digits (the 8×8 digits, 64-d, reported in bits per dimension).
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
    /// Fit this CSV instead of a toy: one sample per row, numeric columns, header optional
    /// (the last tenth of the rows is held out for the test NLL).
    #[arg(long)]
    data: Option<PathBuf>,
    /// CNF blocks chained from the data to the base (a flow of flows), each with its own
    /// field and end time 1.
    #[arg(long, default_value_t = 1)]
    blocks: usize,
    /// The fixed RK4 step of RNODE's training solves (with `--rnode`).
    #[arg(long, default_value_t = 0.25)]
    step: f64,
    /// RNODE's weight of both regularisers, λ_K = λ_J (with `--rnode`).
    #[arg(long, default_value_t = 0.01)]
    lambda: f64,
    /// Each block's end time T.
    #[arg(long, default_value_t = 1.0)]
    end_time: f64,
    /// Learn each block's end time (FFJORD's `train_T`).
    #[arg(long)]
    train_end_time: bool,
    /// Decay the learning rate along a cosine to a hundredth of `--lr` at the last
    /// iteration.
    #[arg(long)]
    cosine: bool,
    /// Skip the PNGs.
    #[arg(long)]
    no_plots: bool,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cnf: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    let mut rng = Rng::new(args.seed);
    // The training rows and the held-out rows; a toy's true log-density where it has one.
    let (name, toy, train_rows, test): (String, Option<Toy>, Vec<Vec<f64>>, Vec<Vec<f64>>) =
        match &args.data {
            Some(path) => {
                let table = cnf::train::load_csv(path)?;
                let rows: Vec<Vec<f64>> =
                    table.data.chunks(table.cols).map(<[f64]>::to_vec).collect();
                let cut = rows.len() - rows.len() / 10;
                let name =
                    path.file_stem().map_or("data".into(), |s| s.to_string_lossy().into_owned());
                (name, None, rows[..cut].to_vec(), rows[cut..].to_vec())
            }
            None if args.dataset == "digits" => {
                // The 8×8 digits (898 train, 899 test), 17 grey levels dequantised as
                // (v + u)/17; eight dequantised copies of each training image.
                let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../data/sklearn_digits/digits.csv.gz");
                let (tr, te) = cnf::train::load_digits(&path)?;
                let levels = |im: &cnf::train::Images| -> Vec<Vec<f64>> {
                    im.pixels
                        .chunks(64)
                        .map(|r| r.iter().map(|p| (p * 16.0).round()).collect())
                        .collect()
                };
                let (tr, te) = (levels(&tr), levels(&te));
                let mut train = Vec::with_capacity(8 * tr.len());
                for _ in 0..8 {
                    train.extend(dequantize(&tr, 17, &mut rng)?);
                }
                let test = dequantize(&te, 17, &mut Rng::new(args.seed.wrapping_add(1_000_003)))?;
                ("digits".to_string(), None, train, test)
            }
            None => {
                let toy: Toy = args.dataset.parse()?;
                let train = toy.sample(50_000, &mut rng).iter().map(|p| p.to_vec()).collect();
                let mut test_rng = Rng::new(args.seed.wrapping_add(1_000_003));
                let test =
                    toy.sample(args.test_size, &mut test_rng).iter().map(|p| p.to_vec()).collect();
                (toy.name().to_string(), Some(toy), train, test)
            }
        };
    let dim = train_rows.first().map_or(0, Vec::len);
    if train_rows.len() < args.batch || test.is_empty() {
        return Err(format!(
            "{} training rows and {} held out: need at least one batch of {} and one test row",
            train_rows.len(),
            test.len(),
            args.batch
        )
        .into());
    }
    let trace = match args.trace {
        TraceName::Exact => Trace::Exact,
        TraceName::Hutchinson => Trace::Hutchinson(Noise::Gaussian),
    };
    let mut cfg = if args.rnode {
        CnfConfig::rnode(dim, args.batch)
    } else {
        CnfConfig::ffjord(dim, args.batch)
    };
    cfg.field = FieldKind::ConcatSquash(args.hidden.clone());
    cfg.trace = trace;
    cfg.end_time = args.end_time;
    cfg.train_end_time = args.train_end_time;
    if args.rnode {
        if !(args.step.is_finite() && args.step > 0.0) {
            return Err(format!("--step {}: must be positive and finite", args.step).into());
        }
        cfg.lambda_kinetic = args.lambda;
        cfg.lambda_jacobian = args.lambda;
        cfg.solver = AdjointOptions::new(Options::new(Method::Rk4).step_size(args.step));
    }
    if !(1..=64).contains(&args.blocks) {
        return Err(format!("--blocks {}: 1 to 64", args.blocks).into());
    }
    let blocks = (0..args.blocks)
        .map(|_| Cnf::new(cfg.clone(), &mut rng))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let chain = CnfChain::new(blocks)?;
    let data = Points::new(&train_rows, dim, trace)?;
    let per_epoch = (train_rows.len() / args.batch).max(1) as u64;
    let mut tc = TrainConfig::new(args.iters.div_ceil(per_epoch), args.batch, args.lr);
    tc.total_steps = Some(args.iters);
    tc.seed = args.seed ^ 0x5EED_0DE5;
    if args.cosine {
        tc.schedule =
            Schedule::WarmupCosine { warmup: 0, total: args.iters, min_lr: args.lr / 100.0 };
    }
    if let Some(dir) = &args.resume {
        tc.checkpoint_dir = Some(dir.clone());
        tc.checkpoint_every = Some(250);
        tc.resume = true;
    }
    let adam = OptimizerState::Adam(Adam::new(AdamConfig { lr: args.lr, ..AdamConfig::default() }));
    let arch = if args.blocks == 1 {
        format!("cnf {name} {:?}", args.hidden)
    } else {
        format!("cnf {name} {:?} x{}", args.hidden, args.blocks)
    };
    let mut trainer = Trainer::new(tc, adam, &arch)?;
    let mut model = ChainModel { chain };
    let summary = trainer.fit(
        &mut model,
        &data,
        None,
        &mut Printer::new(&format!("cnf {name}")).lines(10),
    )?;
    // Test NLL: exact trace, Dopri5 at 1e-5, in batches (a last partial batch is dropped).
    let started = Instant::now();
    // Every test row counts: the largest batch up to 1024 that divides the test set.
    let test_batch = (1..=1024.min(test.len())).rev().find(|b| test.len() % b == 0).unwrap_or(1);
    let evaluator = model.chain.reconfigured(|c| {
        c.trace = Trace::Exact;
        c.batch = test_batch;
        c.solver = Cnf::evaluation_options();
    })?;
    let (mut nll, mut count, mut nfe) = (0.0, 0usize, 0usize);
    for chunk in test.chunks(test_batch).filter(|c| c.len() == test_batch) {
        let x: Vec<f64> = (0..dim).flat_map(|j| chunk.iter().map(move |p| p[j])).collect();
        let d = evaluator.densities(&x)?;
        nll -= d.log_p.iter().sum::<f64>();
        count += chunk.len();
        nfe += d.nfe;
    }
    let nll = nll / count.max(1) as f64;
    let entropy = toy.filter(|t| t.log_density([0.0, 0.0]).is_some()).map(|t| {
        -test.iter().map(|p| t.log_density([p[0], p[1]]).unwrap_or(0.0)).sum::<f64>()
            / test.len() as f64
    });
    // Discrete data: bits per dimension, beside a Gaussian and a KDE fitted on the same
    // training rows (the KDE's bandwidth chosen on the last tenth of them).
    let digits = if name == "digits" {
        let bpd = |nll: f64| bits_per_dim(nll, dim, 17);
        let one_copy = &train_rows[..train_rows.len() / 8];
        let gauss = Gaussian::fit(one_copy, 1e-4)?;
        let g_nll =
            -test.iter().map(|x| gauss.log_density(x)).sum::<std::result::Result<f64, _>>()?
                / test.len() as f64;
        let cut = one_copy.len() * 9 / 10;
        let bandwidths: Vec<f64> = (0..12).map(|k| 0.02 * 1.25f64.powi(k)).collect();
        let picked = Kde::select(&one_copy[..cut], &one_copy[cut..], &bandwidths)?;
        let kde = Kde::new(one_copy, picked.bandwidth)?;
        let k_nll = -kde.mean_log_density(&test)?;
        format!(
            ", \"bits_per_dim\": {:.4}, \"gaussian_bits_per_dim\": {:.4}, \"kde_bits_per_dim\": {:.4}, \"kde_bandwidth\": {:.4}, \"gaussian_nll\": {g_nll:.3}, \"kde_nll\": {k_nll:.3}",
            bpd(nll),
            bpd(g_nll),
            bpd(k_nll),
            kde.bandwidth
        )
    } else {
        String::new()
    };
    let json = format!(
        "{{\"dataset\": \"{name}\", \"iters\": {}, \"rnode\": {}, \"rk4_step\": {}, \"lambda\": {}, \"cosine\": {}, \"end_time\": {}, \"test_nll\": {nll:.4}, \"true_entropy\": {}, \"gap\": {}, \"nfe_eval\": {:.1}, \"nfe_train\": [{:.1}, {:.1}], \"train_seconds\": {:.1}, \"seconds_per_iter\": {:.4}, \"eval_seconds\": {:.1}{digits}}}",
        summary.steps,
        args.rnode,
        if args.rnode { format!("{}", args.step) } else { "null".into() },
        if args.rnode { format!("{}", args.lambda) } else { "0".into() },
        args.cosine,
        args.end_time,
        entropy.map_or("null".into(), |e| format!("{e:.4}")),
        entropy.map_or("null".into(), |e| format!("{:.4}", nll - e)),
        nfe as f64 / (count / test_batch).max(1) as f64,
        summary.nfe_forward,
        summary.nfe_backward,
        summary.seconds,
        summary.seconds / summary.steps.max(1) as f64,
        started.elapsed().as_secs_f64()
    );
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/cnf").join(&name)
    });
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("metrics.json"), format!("{json}\n"))?;
    if dim == 2 && !args.no_plots {
        plot(&out, &name, &model.chain, &test)?;
    }
    println!("{json}");
    if let Some(max) = args.max_nll {
        if nll.is_nan() || nll > max {
            eprintln!("test NLL {nll:.4} is above {max}");
            std::process::exit(1);
        }
    }
    Ok(())
}

/// `data.png` (held-out points), `density.png` (the learned density on a grid over
/// [-4, 4]², exact trace, Dopri5 at 1e-5) and `samples.png` (model samples).
fn plot(out: &std::path::Path, name: &str, flow: &CnfChain, test: &[Vec<f64>]) -> Result<()> {
    plotters::style::register_font(
        "sans-serif",
        plotters::style::FontStyle::Normal,
        dejavu::sans::regular(),
    )
    .map_err(|_| "font")?;
    let (lo, hi, n) = (-4.0, 4.0, 120usize);
    let h = (hi - lo) / n as f64;
    let with_batch = |batch: usize, trace: Option<Trace>| -> Result<CnfChain> {
        Ok(flow.reconfigured(|c| {
            c.batch = batch;
            c.solver = Cnf::evaluation_options();
            if let Some(t) = trace {
                c.trace = t;
            }
        })?)
    };
    let grid = with_batch(n, Some(Trace::Exact))?;
    let mut dens = vec![0.0; n * n];
    for j in 0..n {
        let y = lo + (j as f64 + 0.5) * h;
        let mut x: Vec<f64> = (0..n).map(|i| lo + (i as f64 + 0.5) * h).collect();
        x.extend(std::iter::repeat_n(y, n));
        let d = grid.densities(&x)?;
        for i in 0..n {
            dens[i + j * n] = d.log_p[i].exp();
        }
    }
    let max = dens.iter().copied().fold(0.0, f64::max).max(1e-300);
    let mass: f64 = dens.iter().sum::<f64>() * h * h;
    let scatter = |file: &str, title: &str, pts: &[(f64, f64)], c: RGBColor| -> Result<()> {
        let path = out.join(file);
        let root = BitMapBackend::new(&path, (560, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(40)
            .build_cartesian_2d(lo..hi, lo..hi)?;
        chart.configure_mesh().x_desc("x1").y_desc("x2").draw()?;
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 1, c.filled())))?;
        root.present()?;
        Ok(())
    };
    // Plotted subsets are spread over the whole held-out set: some toys (2spirals, as in
    // FFJORD) stack their parts without shuffling, so the first k points are one part.
    let spread = |k: usize| test.iter().step_by((test.len() / k.max(1)).max(1)).take(k);
    let data: Vec<(f64, f64)> = spread(4000).map(|p| (p[0], p[1])).collect();
    scatter(
        "data.png",
        &format!("{name}: {} held-out samples", data.len()),
        &data,
        RGBColor(0, 114, 178),
    )?;
    let sampler = with_batch(2000, None)?;
    let (samples, _) =
        sampler.sample(&mut Rng::new(7), &Options::new(Method::Dopri5).rtol(1e-5).atol(1e-5))?;
    let s: Vec<(f64, f64)> = samples.iter().map(|p| (p[0], p[1])).collect();
    scatter("samples.png", &format!("{name}: 2000 model samples"), &s, RGBColor(213, 94, 0))?;
    // trajectories.png: held-out points carried from the data (t = 0) to the base (t = T).
    // One block: five times over [0, T]; a chain: the middle and end of every block.
    let tracer = with_batch(test.len().min(2000), None)?;
    let tight = Options::new(Method::Dopri5).rtol(1e-5).atol(1e-5);
    let b = tracer.blocks()[0].config.batch;
    let mut cur: Vec<f64> = (0..2).flat_map(|j| spread(b).map(move |p| p[j])).collect();
    let mut paths: Vec<Vec<Vec<f64>>> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    for (k, block) in tracer.blocks().iter().enumerate() {
        let t1 = block.end_time();
        let single = tracer.blocks().len() == 1;
        let times: Vec<f64> = if single {
            (0..5).map(|i| t1 * i as f64 / 4.0).collect()
        } else if k == 0 {
            vec![0.0, t1 / 2.0, t1]
        } else {
            vec![t1 / 2.0, t1]
        };
        let part = block.trajectory(&cur, &times, &tight)?;
        for (t, p) in times.iter().zip(&part) {
            labels.push(if single {
                format!("t = {t:.2}")
            } else {
                format!("block {}, t = {t:.2}", k + 1)
            });
            paths.push(p.clone());
        }
        let end = part.last().ok_or("empty trajectory")?;
        cur = (0..2).flat_map(|j| end.iter().map(move |p| p[j])).collect();
    }
    let path = out.join("trajectories.png");
    let root = BitMapBackend::new(&path, (280 * paths.len() as u32, 330)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, paths.len()));
    for (k, panel) in panels.iter().enumerate() {
        let mut chart = ChartBuilder::on(panel)
            .caption(&labels[k], ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(25)
            .y_label_area_size(30)
            .build_cartesian_2d(lo..hi, lo..hi)?;
        chart.configure_mesh().disable_mesh().draw()?;
        // Colour each point by where it started (its angle at t = 0), so the transport
        // can be followed from panel to panel.
        chart.draw_series(paths[k].iter().zip(&paths[0]).map(|(p, p0)| {
            let hue = (p0[1].atan2(p0[0]) / std::f64::consts::TAU + 0.5).clamp(0.0, 1.0);
            Circle::new((p[0], p[1]), 1, colour(hue).filled())
        }))?;
    }
    root.present()?;
    let path = out.join("density.png");
    let root = BitMapBackend::new(&path, (560, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{name}: learned density (mass {mass:.3} in view)"), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(40)
        .build_cartesian_2d(lo..hi, lo..hi)?;
    chart.configure_mesh().x_desc("x1").y_desc("x2").disable_mesh().draw()?;
    chart.draw_series((0..n * n).map(|k| {
        let (i, j) = (k % n, k / n);
        let (x0, y0) = (lo + i as f64 * h, lo + j as f64 * h);
        Rectangle::new([(x0, y0), (x0 + h, y0 + h)], colour(dens[k] / max).filled())
    }))?;
    root.present()?;
    Ok(())
}
