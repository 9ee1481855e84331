//! `cargo xtask planar`: Chen et al. 2018 §4 — the planar CNF of width `M` against the
//! planar normalizing flow of depth `K` (`M, K ∈ {1, 8, 32}` by default), each trained on
//! the two targets by density matching (minimise `KL(q ‖ p)`, sampling from the flow) and by
//! maximum likelihood (on samples of the target), all through `train::Trainer`. Prints a
//! Markdown table (the KL estimate, and the test NLL beside the target's entropy) and
//! writes `planar.png` (target and every model's density) and `metrics.json` under
//! `target/cnf/planar/`. `--help` lists the options.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use cnf::autodiff::checkpoint::OptimizerState;
use cnf::autodiff::optim::{Adam, AdamConfig};
use cnf::autodiff::Rng;
use cnf::ode_solvers::{Method, Options};
use cnf::train::{Quiet, TrainConfig, Trainer};
use cnf::{
    BaseSamples, Cnf, CnfConfig, FieldKind, FlowModel, MatchingModel, Objective, PlanarFlow,
    PlanarModel, Points, Target, Trace,
};
use plotters::prelude::*;

#[path = "common/colour.rs"]
mod common;
use common::colour;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Planar CNF against planar NF, density matching and maximum likelihood.
#[derive(Debug, Parser)]
#[command(name = "planar")]
struct Args {
    /// Training iterations per model.
    #[arg(long, default_value_t = 1000)]
    iters: u64,
    /// Samples per iteration.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-2)]
    lr: f64,
    /// Sizes: NF depths K and CNF widths M, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    sizes: Vec<usize>,
    /// The hypernetwork's hidden width.
    #[arg(long, default_value_t = 32)]
    hyper_hidden: usize,
    /// The CNF's end time T.
    #[arg(long, default_value_t = 1.0)]
    end_time: f64,
    /// Samples for every KL and NLL estimate.
    #[arg(long, default_value_t = 4096)]
    eval_size: usize,
    /// Seed of the data, initialisations and training streams.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where planar.png and metrics.json go [default: target/cnf/planar].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip the figure.
    #[arg(long)]
    no_plots: bool,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("planar: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Which model.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Nf(usize),
    Cnf(usize),
}

impl Kind {
    fn label(self) -> String {
        match self {
            Kind::Nf(k) => format!("NF K={k}"),
            Kind::Cnf(m) => format!("CNF M={m}"),
        }
    }
}

/// A trained model.
enum Fitted {
    Nf(PlanarFlow),
    Cnf(Box<Cnf>),
}

const LO: f64 = -3.0;
const HI: f64 = 3.0;
const GRID: usize = 72;

fn cnf_config(args: &Args, m: usize, batch: usize) -> CnfConfig {
    let mut cfg = CnfConfig::ffjord(2, batch);
    cfg.field = FieldKind::Planar { width: m, hyper_hidden: args.hyper_hidden };
    cfg.trace = Trace::Exact; // the closed form, O(M d)
    cfg.end_time = args.end_time;
    cfg.solver = Cnf::evaluation_options();
    cfg
}

fn eval_cnf(args: &Args, flow: &Cnf, batch: usize) -> Result<Cnf> {
    let mut f = Cnf::new(cnf_config(args, width(flow), batch), &mut Rng::new(0))?;
    f.set_params(&flow.params())?;
    Ok(f)
}

fn width(flow: &Cnf) -> usize {
    match flow.config.field {
        FieldKind::Planar { width, .. } => width,
        _ => 0,
    }
}

fn column_major(rows: &[Vec<f64>]) -> Vec<f64> {
    (0..2).flat_map(|j| rows.iter().map(move |r| r[j])).collect()
}

fn train(args: &Args, kind: Kind, objective: Objective, data: &[Vec<f64>]) -> Result<Fitted> {
    let seed = args.seed ^ 0x91a;
    let tc = |len: usize| {
        let per_epoch = (len / args.batch).max(1) as u64;
        let mut tc = TrainConfig::new(args.iters.div_ceil(per_epoch), args.batch, args.lr);
        tc.total_steps = Some(args.iters);
        tc.seed = seed;
        tc
    };
    let adam =
        || OptimizerState::Adam(Adam::new(AdamConfig { lr: args.lr, ..AdamConfig::default() }));
    let base = BaseSamples { dim: 2, len: args.batch * 16 };
    let points = Points::new(data, 2, Trace::Exact)?;
    let mut rng = Rng::new(seed);
    Ok(match (kind, objective) {
        (Kind::Nf(k), obj) => {
            let mut model = PlanarModel { flow: PlanarFlow::new(2, k, &mut rng)?, objective: obj };
            let mut trainer = Trainer::new(tc(base.len), adam(), &format!("planar nf {k}"))?;
            match obj {
                Objective::Matching(_) => trainer.fit(&mut model, &base, None, &mut Quiet)?,
                Objective::MaxLikelihood => trainer.fit(&mut model, &points, None, &mut Quiet)?,
            };
            Fitted::Nf(model.flow)
        }
        (Kind::Cnf(m), Objective::Matching(target)) => {
            let flow = Cnf::new(cnf_config(args, m, args.batch), &mut rng)?;
            let mut model = MatchingModel { flow, target };
            let mut trainer = Trainer::new(tc(base.len), adam(), &format!("planar cnf {m}"))?;
            trainer.fit(&mut model, &base, None, &mut Quiet)?;
            Fitted::Cnf(Box::new(model.flow))
        }
        (Kind::Cnf(m), Objective::MaxLikelihood) => {
            let flow = Cnf::new(cnf_config(args, m, args.batch), &mut rng)?;
            let mut model = FlowModel { flow };
            let mut trainer = Trainer::new(tc(data.len()), adam(), &format!("planar cnf {m}"))?;
            trainer.fit(&mut model, &points, None, &mut Quiet)?;
            Fitted::Cnf(Box::new(model.flow))
        }
    })
}

/// `KL(q ‖ p)` on fresh flow samples, and the samples.
fn kl(args: &Args, fitted: &Fitted, target: Target) -> Result<(f64, Vec<Vec<f64>>)> {
    let n = args.eval_size;
    let mut rng = Rng::new(args.seed ^ 0xe7a1);
    let (xs, lq) = match fitted {
        Fitted::Nf(f) => {
            let z: Vec<Vec<f64>> = (0..n).map(|_| vec![rng.normal(), rng.normal()]).collect();
            f.sample(&z)?
        }
        Fitted::Cnf(f) => {
            let e = eval_cnf(args, f, n)?;
            e.sample(&mut rng, &Options::new(Method::Dopri5).rtol(1e-5).atol(1e-5))?
        }
    };
    let mean = xs.iter().zip(&lq).map(|(x, q)| q - target.log_density([x[0], x[1]]).0).sum::<f64>()
        / n as f64;
    Ok((mean, xs))
}

/// `−mean log q` on fresh target samples.
fn nll(args: &Args, fitted: &Fitted, test: &[Vec<f64>]) -> Result<f64> {
    let lp: Vec<f64> = match fitted {
        Fitted::Nf(f) => {
            test.iter().map(|x| f.log_density(x)).collect::<std::result::Result<_, _>>()?
        }
        Fitted::Cnf(f) => {
            let e = eval_cnf(args, f, test.len())?;
            e.densities(&column_major(test), &Cnf::evaluation_options())?.log_p
        }
    };
    Ok(-lp.iter().sum::<f64>() / lp.len() as f64)
}

/// The model's density on the plot grid (maximum likelihood: evaluated; matching: a
/// histogram of its samples), row-major `GRID × GRID`.
fn density_grid(args: &Args, fitted: &Fitted, samples: Option<&[Vec<f64>]>) -> Result<Vec<f64>> {
    let h = (HI - LO) / GRID as f64;
    let mut dens = vec![0.0; GRID * GRID];
    if let Some(s) = samples {
        for x in s {
            let (i, j) = (((x[0] - LO) / h).floor(), ((x[1] - LO) / h).floor());
            if (0.0..GRID as f64).contains(&i) && (0.0..GRID as f64).contains(&j) {
                dens[i as usize + j as usize * GRID] += 1.0;
            }
        }
        return Ok(dens);
    }
    let pts: Vec<Vec<f64>> = (0..GRID * GRID)
        .map(|k| vec![LO + ((k % GRID) as f64 + 0.5) * h, LO + ((k / GRID) as f64 + 0.5) * h])
        .collect();
    match fitted {
        Fitted::Nf(f) => {
            for (d, p) in dens.iter_mut().zip(&pts) {
                *d = f.log_density(p)?.exp();
            }
        }
        Fitted::Cnf(f) => {
            let e = eval_cnf(args, f, GRID)?;
            for j in 0..GRID {
                let row = &pts[j * GRID..(j + 1) * GRID];
                let lp = e.densities(&column_major(row), &Cnf::evaluation_options())?.log_p;
                for i in 0..GRID {
                    dens[i + j * GRID] = lp[i].exp();
                }
            }
        }
    }
    Ok(dens)
}

fn run() -> Result<()> {
    let args = Args::parse();
    if args.sizes.is_empty() || args.sizes.iter().any(|&s| s == 0 || s > 4096) {
        return Err("--sizes: each in 1..=4096".into());
    }
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/cnf/planar")
    });
    std::fs::create_dir_all(&out)?;
    let kinds: Vec<Kind> = args
        .sizes
        .iter()
        .map(|&k| Kind::Nf(k))
        .chain(args.sizes.iter().map(|&m| Kind::Cnf(m)))
        .collect();
    // rows of the figure: (title, target grid, model grids)
    let mut panels: Vec<(String, Vec<f64>, Vec<Vec<f64>>)> = Vec::new();
    let mut json = Vec::new();
    let mut table = String::from("| target | objective | figure |");
    for k in &kinds {
        table.push_str(&format!(" {} |", k.label()));
    }
    table.push_str("\n|---|---|---|");
    table.push_str(&"---|".repeat(kinds.len()));
    table.push('\n');
    let started = Instant::now();
    for target in Target::ALL {
        let mut rng = Rng::new(args.seed ^ 0xda7a);
        let train_data: Vec<Vec<f64>> =
            target.sample(args.batch * 40, &mut rng).iter().map(|p| p.to_vec()).collect();
        let test: Vec<Vec<f64>> =
            target.sample(args.eval_size, &mut rng).iter().map(|p| p.to_vec()).collect();
        // The target's entropy, estimated on the test samples: the NLL floor.
        let entropy = -test.iter().map(|x| target.log_density([x[0], x[1]]).0).sum::<f64>()
            / test.len() as f64;
        let h = (HI - LO) / GRID as f64;
        let truth: Vec<f64> = (0..GRID * GRID)
            .map(|k| {
                let x = [LO + ((k % GRID) as f64 + 0.5) * h, LO + ((k / GRID) as f64 + 0.5) * h];
                target.log_density(x).0.exp()
            })
            .collect();
        for objective in [Objective::Matching(target), Objective::MaxLikelihood] {
            let (obj_name, figure) = match objective {
                Objective::Matching(_) => ("density matching", "KL(q‖p), nats"),
                Objective::MaxLikelihood => ("maximum likelihood", "test NLL − entropy, nats"),
            };
            table.push_str(&format!("| {} | {obj_name} | {figure} |", target.name()));
            let mut grids = Vec::new();
            for &kind in &kinds {
                let t0 = Instant::now();
                let fitted = train(&args, kind, objective, &train_data)?;
                let secs = t0.elapsed().as_secs_f64();
                let (value, grid) = match objective {
                    Objective::Matching(t) => {
                        let (kl, xs) = kl(&args, &fitted, t)?;
                        let grid = if args.no_plots {
                            vec![]
                        } else {
                            density_grid(&args, &fitted, Some(&xs))?
                        };
                        (kl, grid)
                    }
                    Objective::MaxLikelihood => {
                        let gap = nll(&args, &fitted, &test)? - entropy;
                        let grid = if args.no_plots {
                            vec![]
                        } else {
                            density_grid(&args, &fitted, None)?
                        };
                        (gap, grid)
                    }
                };
                eprintln!(
                    "planar: {} {obj_name} {}: {value:.4} ({secs:.1} s)",
                    target.name(),
                    kind.label()
                );
                table.push_str(&format!(" {value:.3} |"));
                json.push(format!(
                    "{{\"target\": \"{}\", \"objective\": \"{obj_name}\", \"model\": \"{}\", \"value\": {value:.5}, \"seconds\": {secs:.2}}}",
                    target.name(),
                    kind.label()
                ));
                grids.push(grid);
            }
            table.push('\n');
            let short = if obj_name == "density matching" { "matching" } else { "max. likelihood" };
            panels.push((format!("{} ({short})", target.name()), truth.clone(), grids));
        }
        eprintln!("planar: {} entropy {entropy:.4} nats", target.name());
    }
    std::fs::write(
        out.join("metrics.json"),
        format!(
            "{{\"iters\": {}, \"runs\": [{}], \"seconds\": {:.1}}}\n",
            args.iters,
            json.join(", "),
            started.elapsed().as_secs_f64()
        ),
    )?;
    if !args.no_plots {
        plot(&out.join("planar.png"), &kinds, &panels)?;
    }
    println!("{table}");
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn plot(
    path: &std::path::Path,
    kinds: &[Kind],
    panels: &[(String, Vec<f64>, Vec<Vec<f64>>)],
) -> Result<()> {
    plotters::style::register_font(
        "sans-serif",
        plotters::style::FontStyle::Normal,
        dejavu::sans::regular(),
    )
    .map_err(|_| "font")?;
    let cell = 190u32;
    let cols = kinds.len() as u32 + 1;
    let rows = panels.len() as u32;
    let root = BitMapBackend::new(path, (cols * cell, rows * (cell + 24) + 10)).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.margin(5, 5, 5, 5).split_evenly((rows as usize, cols as usize));
    for (r, (title, truth, grids)) in panels.iter().enumerate() {
        let labels: Vec<String> = std::iter::once(format!("target, {title}"))
            .chain(kinds.iter().map(|k| {
                format!(
                    "{} ({})",
                    k.label(),
                    if title.contains("(matching)") { "samples" } else { "density" }
                )
            }))
            .collect();
        let all: Vec<&Vec<f64>> = std::iter::once(truth).chain(grids.iter()).collect();
        for (c, grid) in all.iter().enumerate() {
            let area = &areas[r * cols as usize + c];
            let max = grid.iter().copied().fold(0.0, f64::max).max(1e-300);
            let mut chart = ChartBuilder::on(area)
                .caption(&labels[c], ("sans-serif", 13))
                .margin(3)
                .build_cartesian_2d(LO..HI, LO..HI)?;
            let h = (HI - LO) / GRID as f64;
            chart.draw_series((0..GRID * GRID).map(|k| {
                let (i, j) = (k % GRID, k / GRID);
                let (x0, y0) = (LO + i as f64 * h, LO + j as f64 * h);
                Rectangle::new([(x0, y0), (x0 + h, y0 + h)], colour(grid[k] / max).filled())
            }))?;
        }
    }
    root.present()?;
    Ok(())
}
