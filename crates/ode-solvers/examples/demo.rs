//! The main job of `cargo xtask demo`: solve the reference problems with every adaptive
//! method over a range of tolerances, write the tables of method, tolerance, error and
//! NFE as Markdown, and plot the Arenstorf orbit and a work-precision diagram, all under
//! the output folder (first argument, default `target/demo`).

use std::error::Error as StdError;
use std::path::PathBuf;

use clap::Parser;
use ode_solvers::problems::{
    arenstorf, arenstorf_rhs, limit_cycle, lotka_volterra, lotka_volterra_rhs,
};
use ode_solvers::{odeint, Method, OdeSystem, Options};
use plotters::prelude::*;
use plotters::style::FontStyle;

type Result<T> = std::result::Result<T, Box<dyn StdError>>;

struct Run {
    method: Method,
    tol: f64,
    error: f64,
    nfe: usize,
}

fn max_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

fn sweep<S: OdeSystem<f64>>(f: &S, y0: &[f64], t1: f64, reference: &[f64]) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    for method in Method::adaptive() {
        for e in 3..=10 {
            let tol = 10f64.powi(-e);
            let opts = Options::new(method).rtol(tol).atol(tol).max_steps(2_000_000);
            let sol = odeint(f, y0, &[0.0, t1], &opts)?;
            runs.push(Run {
                method,
                tol,
                error: max_err(&sol.ys[1], reference),
                nfe: sol.stats.nfe,
            });
        }
    }
    Ok(runs)
}

/// Writes the runs as a Markdown table under `title`; prints one line.
fn write_table(path: &std::path::Path, title: &str, runs: &[Run]) -> Result<()> {
    let mut md =
        format!("# {title}\n\n| method | rtol = atol | error | NFE |\n|---|---|---|---|\n");
    for r in runs {
        md.push_str(&format!(
            "| {} | {:.0e} | {:.3e} | {} |\n",
            r.method.name(),
            r.tol,
            r.error,
            r.nfe
        ));
    }
    std::fs::write(path, md)?;
    println!("wrote {}: {title} ({} runs)", path.display(), runs.len());
    Ok(())
}

/// Colours that stay apart on white and for colour-blind readers (Okabe & Ito).
const COLOURS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(0, 0, 0),
    RGBColor(230, 159, 0),
];

fn plot_orbit(path: &PathBuf) -> Result<()> {
    let p = arenstorf();
    let ts: Vec<f64> = (0..=2000).map(|i| p.t_span.1 * f64::from(i) / 2000.0).collect();
    let sol =
        odeint(&arenstorf_rhs, &p.y0, &ts, &Options::new(Method::Dop853).rtol(1e-10).atol(1e-10))?;
    let root = BitMapBackend::new(path, (800, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Arenstorf orbit, Dop853 rtol=atol=1e-10, {} NFE", sol.stats.nfe),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(-1.5f64..1.2, -1.5f64..1.5)?;
    chart.configure_mesh().x_desc("x (rotating frame)").y_desc("y (rotating frame)").draw()?;
    let blue = COLOURS[0];
    chart
        .draw_series(LineSeries::new(sol.ys.iter().map(|y| (y[0], y[1])), blue.stroke_width(2)))?
        .label("satellite")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(2)));
    let mu = ode_solvers::problems::ARENSTORF_MU;
    let earth = COLOURS[1];
    chart
        .draw_series([Circle::new((-mu, 0.0), 8, earth.filled())])?
        .label("Earth")
        .legend(move |(x, y)| Circle::new((x + 10, y), 6, earth.filled()));
    let grey = RGBColor(90, 90, 90);
    chart
        .draw_series([Circle::new((1.0 - mu, 0.0), 5, grey.filled())])?
        .label("Moon")
        .legend(move |(x, y)| Circle::new((x + 10, y), 4, grey.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;
    Ok(())
}

fn plot_work_precision(path: &PathBuf, runs: &[Run]) -> Result<()> {
    let root = BitMapBackend::new(path, (900, 650)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_nfe = runs.iter().map(|r| r.nfe).max().unwrap_or(10) as f64;
    let min_err = runs.iter().map(|r| r.error).fold(1.0, f64::min).max(1e-16);
    let max_err = runs.iter().map(|r| r.error).fold(1e-16, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Work-precision: Arenstorf orbit, one period (rtol = atol = 1e-3 .. 1e-10)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (50f64..max_nfe * 1.5).log_scale(),
            (min_err / 2.0..max_err * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("right-hand-side evaluations (NFE)")
        .y_desc("error at t = T")
        .x_label_formatter(&|v| format!("{v:.0e}"))
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()?;
    for (i, method) in Method::adaptive().into_iter().enumerate() {
        let color = COLOURS[i % COLOURS.len()];
        let pts: Vec<(f64, f64)> = runs
            .iter()
            .filter(|r| r.method == method)
            .map(|r| (r.nfe as f64, r.error.max(1e-16)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(method.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
    root.present()?;
    Ok(())
}

/// Reference solves: every adaptive method over a range of tolerances, tables and plots.
#[derive(Parser)]
#[command(name = "demo")]
struct Args {
    /// Where the tables and plots go.
    #[arg(default_value = "target/demo")]
    out: PathBuf,
}

fn main() -> Result<()> {
    let out = Args::parse().out;
    std::fs::create_dir_all(&out)?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| "the embedded font could not be registered")?;

    let p = arenstorf();
    let arenstorf_runs = sweep(&arenstorf_rhs, &p.y0, p.t_span.1, &p.y0)?;
    write_table(
        &out.join("reference_arenstorf.md"),
        "Arenstorf orbit over one period (error = distance from y0 at T)",
        &arenstorf_runs,
    )?;

    let lv = lotka_volterra();
    let reference = odeint(
        &lotka_volterra_rhs,
        &lv.y0,
        &[0.0, lv.t_span.1],
        &Options::new(Method::Dop853).rtol(1e-14).atol(1e-14),
    )?;
    write_table(
        &out.join("reference_lotka_volterra.md"),
        "Lotka-Volterra on [0, 10] (reference: Dop853 at 1e-14)",
        &sweep(&lotka_volterra_rhs, &lv.y0, lv.t_span.1, &reference.ys[1])?,
    )?;

    let (f, exact) = limit_cycle(1.0);
    write_table(
        &out.join("reference_limit_cycle.md"),
        "Limit cycle on [0, 5] (exact solution)",
        &sweep(&f, &exact(0.0), 5.0, &exact(5.0))?,
    )?;

    let orbit = out.join("arenstorf_orbit.png");
    let wp = out.join("work_precision.png");
    plot_orbit(&orbit)?;
    plot_work_precision(&wp, &arenstorf_runs)?;
    println!("wrote {} and {}", orbit.display(), wp.display());
    Ok(())
}
