//! Learned dynamics (`cargo xtask demo`): learn `dz/dt = (z³) A`,
//! `A = [[-0.1, 2], [-2, -0.1]]`, `z(0) = (2, 0)`, observed at 1000 points on [0, 25],
//! from random sub-trajectories (20 of 10 consecutive points per step), with an MLP field
//! `f(z) = W₂ tanh(W₁ z³ + b₁) + b₂` (2→50→2) trained by Adam through the backsolve
//! adjoint: the experiment of torchdiffeq's `ode_demo.py`. Writes
//! `spiral_trajectories.png` and `spiral_phase.png` to the output folder (first argument).
//! `--iterations N` (default 2000, as `ode_demo.py`).

use std::error::Error as StdError;
use std::path::PathBuf;
use std::time::Instant;

use adjoint::{gradient, AdjointOptions, AutodiffField, Strategy, VectorField};
use autodiff::layers::Linear;
use autodiff::optim::{Adam, AdamConfig, Optimizer};
use autodiff::{Graph, Rng};
use ode_solvers::{odeint, Method, Options};
use plotters::prelude::*;
use plotters::style::FontStyle;

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
    let h = Linear::new(&mut g, "l1", 2, 50, rng).forward(&mut g, z3)?;
    let h = g.tanh(h)?;
    let out = Linear::new(&mut g, "l2", 50, 2, rng).forward(&mut g, h)?;
    AutodiffField::new(g, out)
}

fn plot(
    out: &std::path::Path,
    ts: &[f64],
    true_y: &[Vec<f64>],
    learned: &[Vec<f64>],
) -> Result<()> {
    let path = out.join("spiral_trajectories.png");
    let root = BitMapBackend::new(&path, (1000, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Learned dynamics: trajectories (solid: true, dashed: learned)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..25.0, -2.2..2.2)?;
    chart.configure_mesh().x_desc("t").y_desc("z").draw()?;
    for (k, color) in [(0, BLUE), (1, RED)] {
        chart
            .draw_series(LineSeries::new(
                ts.iter().zip(true_y).map(|(&t, y)| (t, y[k])),
                color.stroke_width(2),
            ))?
            .label(format!("z{} true", k + 1))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        let dashed = ts
            .iter()
            .zip(learned)
            .enumerate()
            .filter(|(i, _)| (i / 6) % 2 == 0)
            .map(|(_, (&t, y))| Circle::new((t, y[k]), 1, color.mix(0.6).filled()));
        chart
            .draw_series(dashed)?
            .label(format!("z{} learned", k + 1))
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;

    let path = out.join("spiral_phase.png");
    let root = BitMapBackend::new(&path, (700, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Phase portrait: true (blue) and learned (orange)", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(-2.2..2.2, -2.2..2.2)?;
    chart.configure_mesh().x_desc("z1").y_desc("z2").draw()?;
    chart
        .draw_series(LineSeries::new(true_y.iter().map(|y| (y[0], y[1])), BLUE.stroke_width(2)))?;
    let orange = RGBColor(230, 120, 0);
    chart.draw_series(LineSeries::new(
        learned.iter().map(|y| (y[0], y[1])),
        orange.stroke_width(2),
    ))?;
    root.present()?;
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(
        args.get(1)
            .filter(|a| !a.starts_with("--"))
            .cloned()
            .unwrap_or_else(|| "target/demo".into()),
    );
    let iterations: usize = args
        .iter()
        .position(|a| a == "--iterations")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    std::fs::create_dir_all(&out)?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| "font")?;

    let ts: Vec<f64> = (0..N).map(|i| 25.0 * i as f64 / (N - 1) as f64).collect();
    let true_y =
        odeint(&truth, &[2.0, 0.0], &ts, &Options::new(Method::Dopri5).rtol(1e-10).atol(1e-10))?.ys;
    let mut rng = Rng::new(42);
    let mut field = model(BATCH, &mut rng)?;
    let batch_t: Vec<f64> = ts[..BATCH_TIME].to_vec();
    let opts = AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-6).atol(1e-8));
    let mut adam = Adam::new(AdamConfig { lr: 1e-3, ..AdamConfig::default() });
    let start = Instant::now();
    let (mut nfe_f, mut nfe_b) = (0, 0);
    for it in 1..=iterations {
        let starts: Vec<usize> =
            (0..BATCH).map(|_| (rng.uniform() * (N - BATCH_TIME) as f64) as usize).collect();
        // Column-major batch: z[b + j·BATCH].
        let z0: Vec<f64> = (0..2)
            .flat_map(|j| starts.iter().map(move |&s| (s, j)))
            .map(|(s, j)| true_y[s][j])
            .collect();
        let target = |k: usize, b: usize, j: usize| true_y[starts[b] + k][j];
        let count = (BATCH * 2 * BATCH_TIME) as f64;
        // Mean absolute error over all points of all sub-trajectories (as ode_demo.py).
        let loss = |zs: &[Vec<f64>]| {
            let mut value = 0.0;
            let grads = zs
                .iter()
                .enumerate()
                .map(|(k, z)| {
                    (0..2 * BATCH)
                        .map(|idx| {
                            let (b, j) = (idx % BATCH, idx / BATCH);
                            let d = z[idx] - target(k, b, j);
                            value += d.abs() / count;
                            d.signum() / count
                        })
                        .collect()
                })
                .collect();
            (value, grads)
        };
        let g = gradient(&field, &z0, &batch_t, &loss, Strategy::Backsolve, &opts)?;
        nfe_f += g.nfe_forward;
        nfe_b += g.nfe_backward;
        adam.step(field.params_mut(), &g.params)?;
        if it % 100 == 0 || it == iterations {
            let elapsed = start.elapsed().as_secs_f64();
            let left = elapsed / it as f64 * (iterations - it) as f64;
            println!(
                "iter {it:>5}/{iterations}  loss {:.5}  NFE fwd/bwd {:>5.1}/{:>5.1} per step  {elapsed:>5.1}s, ~{left:.0}s left",
                g.loss,
                nfe_f as f64 / 100.0,
                nfe_b as f64 / 100.0
            );
            nfe_f = 0;
            nfe_b = 0;
        }
    }
    // The learned field on one trajectory over the whole interval.
    let params = field.params().to_vec();
    let mut single = model(1, &mut Rng::new(0))?;
    single.params_mut().copy_from_slice(&params);
    let learned =
        odeint(&single, &[2.0, 0.0], &ts, &Options::new(Method::Dopri5).rtol(1e-7).atol(1e-9))?.ys;
    let mse = learned
        .iter()
        .zip(&true_y)
        .map(|(a, b)| (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2))
        .sum::<f64>()
        / (2 * N) as f64;
    println!(
        "trained in {:.1}s; mean squared error of the learned trajectory over [0, 25]: {mse:.2e}",
        start.elapsed().as_secs_f64()
    );
    plot(&out, &ts, &true_y, &learned)?;
    println!(
        "wrote {} and {}",
        out.join("spiral_trajectories.png").display(),
        out.join("spiral_phase.png").display()
    );
    Ok(())
}
