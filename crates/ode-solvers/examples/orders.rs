//! Prints each method's theoretical and measured orders (`cargo xtask orders`).
//!
//! Global order: fitted slope of the error at `t = 1` against the fixed step size on the
//! limit cycle of `problems::limit_cycle` (nonlinear, time-dependent, closed form) and on
//! a fixed linear system (`expm`-free: a rotation with damping, exact by hand). Dense
//! output: the local slope of the interpolant's largest error over a step, minus one.
//! `--quick` skips the linear system.

use clap::Parser;
use ode_solvers::convergence::{
    default_dense_steps, default_steps, dense_local_order, global_order, ASYMPTOTIC_SCALE,
};
use ode_solvers::problems::limit_cycle;
use ode_solvers::{Error, Method};

/// Each method's theoretical and measured convergence orders.
#[derive(Parser)]
#[command(name = "orders")]
struct Args {
    /// Skip the linear system (the limit cycle and the dense output only).
    #[arg(long)]
    quick: bool,
}

fn main() -> Result<(), Error> {
    let quick = Args::parse().quick;
    let sigma = ASYMPTOTIC_SCALE;
    let (f, exact) = limit_cycle(sigma);
    // y' = A y with A = [[-0.5, -σ], [σ, -0.5]]: y = e^{-t/2} R(σt) y0.
    let lin = move |_t: f64, y: &[f64], dy: &mut [f64]| {
        dy[0] = -0.5 * y[0] - sigma * y[1];
        dy[1] = sigma * y[0] - 0.5 * y[1];
    };
    let lin_exact = |t: f64| {
        let (s, c) = (sigma * t).sin_cos();
        let d = (-0.5 * t).exp();
        vec![d * c, d * s]
    };
    let thetas: Vec<f64> = (1..10).map(|i| f64::from(i) / 10.0).collect();
    let (dense_f, dense_exact) = limit_cycle(1.0);
    println!(
        "{:<8} {:>6} {:>16} {:>16} {:>6} {:>14}",
        "method", "order", "measured (cycle)", "measured (linear)", "dense", "measured dense"
    );
    let mut worst: f64 = 0.0;
    for method in Method::all() {
        let steps: Vec<usize> =
            default_steps(method).into_iter().map(|n| (n as f64 * sigma) as usize).collect();
        let p = f64::from(method.order());
        let cycle = global_order(&f, &exact(0.0), 1.0, &exact(1.0), method, &steps)?.order;
        worst = worst.max((cycle - p).abs());
        let linear = if quick {
            "-".to_string()
        } else {
            let o =
                global_order(&lin, &lin_exact(0.0), 1.0, &lin_exact(1.0), method, &steps)?.order;
            format!("{o:.2}")
        };
        let (dense, measured_dense) = match method.dense_order() {
            Some(q) => {
                let est = dense_local_order(
                    &dense_f,
                    dense_exact,
                    0.3,
                    &thetas,
                    method,
                    &default_dense_steps(q),
                )?;
                (q.to_string(), format!("{:.2}", est.order - 1.0))
            }
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<8} {:>6} {:>16.2} {:>16} {:>6} {:>14}",
            method.name(),
            method.order(),
            cycle,
            linear,
            dense,
            measured_dense
        );
    }
    println!("largest deviation of a measured global order from theory (cycle): {worst:.2}");
    if worst > 0.6 {
        eprintln!("a measured order is more than 0.6 away from theory");
        std::process::exit(1);
    }
    Ok(())
}
