//! Learned dynamics (`cargo xtask demo`): learn `dz/dt = (z³) A`,
//! `A = [[-0.1, 2], [-2, -0.1]]`, `z(0) = (2, 0)`, observed at 1000 points on [0, 25],
//! from random sub-trajectories (20 of 10 consecutive points per step), with an MLP field
//! `f(z) = W₂ tanh(W₁ z³ + b₁) + b₂` (2→50→2) trained by Adam through the backsolve
//! adjoint: the experiment of torchdiffeq's `ode_demo.py`, through `train`'s `Trainer` (a
//! sub-trajectory start is a sample; an epoch is a pass over the starts). Writes
//! `spiral_trajectories.png` and `spiral_phase.png` to the output folder. `--help` lists
//! the options.

use std::error::Error as StdError;
use std::path::PathBuf;

use adjoint::{AdjointOptions, AutodiffField, OdeBlock, Strategy, VectorField};
use autodiff::checkpoint::OptimizerState;
use autodiff::layers::Linear;
use autodiff::optim::{Adam, AdamConfig};
use autodiff::{Graph, Rng};
use clap::Parser;
use ode_solvers::{odeint, Method, Options};
use plotters::prelude::*;
use plotters::style::FontStyle;
use train::{Dataset, Model, Printer, StepReport, TrainConfig, Trainer};

type Result<T> = std::result::Result<T, Box<dyn StdError>>;

const N: usize = 1000;
const BATCH: usize = 20;
const BATCH_TIME: usize = 10;

fn truth(_t: f64, z: &[f64], dz: &mut [f64]) {
    let (a, b) = (z[0].powi(3), z[1].powi(3));
    // (z³) A with z a row vector.
    dz[0] = -0.1 * a - 2.0 * b;
    dz[1] = 2.0 * a - 0.1 * b;
}

fn model(batch: usize, rng: &mut Rng) -> std::result::Result<AutodiffField, adjoint::Error> {
    let mut g = Graph::new();
    let z = g.input(batch, 2);
    let z3 = g.powi(z, 3)?;
    let h = Linear::new(&mut g, "l1", 2, 50, rng)?.forward(&mut g, z3)?;
    let h = g.tanh(h)?;
    let out = Linear::new(&mut g, "l2", 50, 2, rng)?.forward(&mut g, h)?;
    AutodiffField::new(g, out)
}

fn plot(
    out: &std::path::Path,
    ts: &[f64],
    true_y: &[Vec<f64>],
    learned: &[Vec<f64>],
) -> Result<()> {
    let (trajectories, phase) = (out.join("spiral_trajectories.png"), out.join("spiral_phase.png"));
    // A legend entry that looks like the dashed line it names: two dashes.
    let dashed_legend = |color: RGBColor| {
        move |(x, y): (i32, i32)| {
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (9, 0)], color.stroke_width(2))
                + PathElement::new(vec![(15, 0), (24, 0)], color.stroke_width(2))
        }
    };
    let root = BitMapBackend::new(&trajectories, (1000, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Learned dynamics dz/dt = z³A: true (solid) and learned (dashed)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..25.0, -2.2..2.2)?;
    chart.configure_mesh().x_desc("time t").y_desc("state components z1, z2").draw()?;
    // Okabe & Ito's blue and vermillion: apart on white and for colour-blind readers.
    let colours = [RGBColor(0, 114, 178), RGBColor(213, 94, 0)];
    for (k, color) in colours.into_iter().enumerate() {
        chart
            .draw_series(LineSeries::new(
                ts.iter().zip(true_y).map(|(&t, y)| (t, y[k])),
                color.stroke_width(2),
            ))?
            .label(format!("z{} true", k + 1))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
            });
        chart
            .draw_series(DashedLineSeries::new(
                ts.iter().zip(learned).map(|(&t, y)| (t, y[k])),
                8,
                6,
                color.stroke_width(2),
            ))?
            .label(format!("z{} learned", k + 1))
            .legend(dashed_legend(color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;

    let root = BitMapBackend::new(&phase, (700, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Phase portrait: true and learned", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(-2.2..2.2, -2.2..2.2)?;
    chart.configure_mesh().x_desc("z1").y_desc("z2").draw()?;
    let blue = RGBColor(0, 114, 178);
    chart
        .draw_series(LineSeries::new(true_y.iter().map(|y| (y[0], y[1])), blue.stroke_width(2)))?
        .label("true")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], blue.stroke_width(2)));
    let orange = RGBColor(213, 94, 0);
    chart
        .draw_series(DashedLineSeries::new(
            learned.iter().map(|y| (y[0], y[1])),
            8,
            6,
            orange.stroke_width(2),
        ))?
        .label("learned")
        .legend(dashed_legend(orange));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The sub-trajectory starts `0 .. N - BATCH_TIME` as a dataset.
struct Starts;

impl Dataset for Starts {
    type Batch = Vec<usize>;
    fn len(&self) -> usize {
        N - BATCH_TIME
    }
    fn batch(
        &self,
        indices: &[usize],
        _: &mut Rng,
    ) -> std::result::Result<Vec<usize>, train::Error> {
        Ok(indices.to_vec())
    }
}

/// The field fitted to sub-trajectories of the true solution.
struct Fit<'a> {
    field: AutodiffField,
    block: OdeBlock,
    true_y: &'a [Vec<f64>],
    batch_t: Vec<f64>,
}

impl Model for Fit<'_> {
    type Batch = Vec<usize>;

    fn num_params(&self) -> usize {
        self.field.params().len()
    }
    fn read_params(&self, out: &mut [f64]) -> std::result::Result<(), train::Error> {
        train::copy_params(out, self.field.params())
    }
    fn write_params(&mut self, params: &[f64]) -> std::result::Result<(), train::Error> {
        train::copy_params(self.field.params_mut(), params)
    }

    /// Mean absolute error over all points of all sub-trajectories (as `ode_demo.py`).
    fn loss_and_grad(
        &mut self,
        starts: &Vec<usize>,
        grad: &mut [f64],
    ) -> std::result::Result<StepReport, train::Error> {
        // Column-major batch: z[b + j·BATCH].
        let z0: Vec<f64> = (0..2)
            .flat_map(|j| starts.iter().map(move |&s| (s, j)))
            .map(|(s, j)| self.true_y[s][j])
            .collect();
        let rec =
            self.block.forward(&self.field, &z0, &self.batch_t).map_err(train::Error::model)?;
        let count = (BATCH * 2 * BATCH_TIME) as f64;
        let mut loss = 0.0;
        let cotangents: Vec<Vec<f64>> = rec
            .zs
            .iter()
            .enumerate()
            .map(|(k, z)| {
                (0..2 * BATCH)
                    .map(|idx| {
                        let d = z[idx] - self.true_y[starts[idx % BATCH] + k][idx / BATCH];
                        loss += d.abs() / count;
                        d.signum() / count
                    })
                    .collect()
            })
            .collect();
        let g = self.block.backward(&self.field, &rec, &cotangents).map_err(train::Error::model)?;
        grad.copy_from_slice(&g.params);
        Ok(StepReport {
            loss,
            metrics: Vec::new(),
            nfe_forward: rec.nfe_forward,
            nfe_backward: g.nfe_backward,
        })
    }
}

/// Learned dynamics: torchdiffeq's ode_demo.py (dz/dt = z³A) through the backsolve adjoint.
#[derive(Debug, Parser)]
#[command(name = "spiral")]
struct Args {
    /// Where the PNGs go.
    #[arg(default_value = "target/demo")]
    out: PathBuf,
    /// Training iterations (batches of 20 sub-trajectories of 10 points; ode_demo.py's 2000).
    #[arg(long, default_value_t = 2000)]
    iterations: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let out = args.out;
    std::fs::create_dir_all(&out)?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| "font")?;

    let ts: Vec<f64> = (0..N).map(|i| 25.0 * i as f64 / (N - 1) as f64).collect();
    let true_y =
        odeint(&truth, &[2.0, 0.0], &ts, &Options::new(Method::Dopri5).rtol(1e-10).atol(1e-10))?.ys;
    let opts = AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-6).atol(1e-8));
    let mut fit = Fit {
        field: model(BATCH, &mut Rng::new(42))?,
        block: OdeBlock::new(Strategy::Backsolve, opts),
        true_y: &true_y,
        batch_t: ts[..BATCH_TIME].to_vec(),
    };
    let per_epoch = (Starts.len() / BATCH) as u64;
    let mut cfg = TrainConfig::new(args.iterations.div_ceil(per_epoch), BATCH, 1e-3);
    cfg.total_steps = Some(args.iterations);
    cfg.seed = 42;
    let adam = OptimizerState::Adam(Adam::new(AdamConfig { lr: 1e-3, ..AdamConfig::default() }));
    let mut trainer = Trainer::new(cfg, adam, "spiral mlp 2-50-2")?;
    let summary = trainer.fit(&mut fit, &Starts, None, &mut Printer::new("spiral").lines(10))?;
    // The learned field on one trajectory over the whole interval.
    let mut single = model(1, &mut Rng::new(0))?;
    single.params_mut().copy_from_slice(fit.field.params());
    let learned =
        odeint(&single, &[2.0, 0.0], &ts, &Options::new(Method::Dopri5).rtol(1e-7).atol(1e-9))?.ys;
    let mse = learned
        .iter()
        .zip(&true_y)
        .map(|(a, b)| (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2))
        .sum::<f64>()
        / (2 * N) as f64;
    println!(
        "trained {} steps in {:.1}s (NFE {:.1}/{:.1} per step); mean squared error of the learned trajectory over [0, 25]: {mse:.2e}",
        summary.steps, summary.seconds, summary.nfe_forward, summary.nfe_backward
    );
    plot(&out, &ts, &true_y, &learned)?;
    println!(
        "wrote {} and {}",
        out.join("spiral_trajectories.png").display(),
        out.join("spiral_phase.png").display()
    );
    Ok(())
}
