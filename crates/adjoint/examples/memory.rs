//! Peak heap memory of a gradient against the number of steps (`cargo xtask bench`):
//! the MLP 2→64→64→2 (tanh) field at batch 512, fixed RK4 steps over [0, 1], loss on
//! z(1). A counting global allocator records the peak bytes allocated during each
//! gradient computation (the field itself is built beforehand). The backsolve adjoint's
//! peak should stay flat; direct backpropagation stores one state per step.
//! `--quick` stops at 1 000 steps.

#[global_allocator]
static ALLOC: train::memory::PeakAlloc = train::memory::PeakAlloc;

use adjoint::{gradient, AdjointOptions, AutodiffField, Strategy};
use autodiff::layers::{Activation, Mlp};
use autodiff::{Graph, Rng};
use ode_solvers::{Method, Options};

/// Peak heap memory of the backsolve adjoint and of direct backpropagation against the
/// number of RK4 steps.
#[derive(clap::Parser)]
#[command(name = "memory")]
struct Args {
    /// Stop at 1 000 steps.
    #[arg(long)]
    quick: bool,
}

fn main() {
    let quick = <Args as clap::Parser>::parse().quick;
    let batch = 512;
    let mut g = Graph::new();
    let z = g.input(batch, 2);
    let f = Mlp::new(&mut g, "f", &[2, 64, 64, 2], Activation::Tanh, &mut Rng::new(0))
        .and_then(|m| m.forward(&mut g, z));
    let field = match f.map_err(adjoint::Error::from).and_then(|out| AutodiffField::new(g, out)) {
        Ok(field) => field,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let z0: Vec<f64> = Rng::new(1).matrix(batch, 2, Rng::normal).unwrap().as_slice().to_vec();
    let loss = |zs: &[Vec<f64>]| {
        let last = zs.len() - 1;
        let v = zs[last].iter().map(|x| x * x).sum::<f64>();
        let mut grads: Vec<Vec<f64>> = zs.iter().map(|z| vec![0.0; z.len()]).collect();
        grads[last] = zs[last].iter().map(|x| 2.0 * x).collect();
        (v, grads)
    };
    println!("{:>7} {:>14} {:>14} {:>10}", "steps", "backsolve", "direct", "ratio");
    let mut first = None;
    let counts: &[usize] = if quick { &[10, 100, 1000] } else { &[10, 100, 1000, 10_000] };
    for &steps in counts {
        let opts = AdjointOptions::new(
            Options::new(Method::Rk4).step_size(1.0 / steps as f64).max_steps(10 * steps),
        );
        let mut peaks = [0usize; 2];
        for (k, strategy) in [Strategy::Backsolve, Strategy::Direct].into_iter().enumerate() {
            let base = train::memory::start();
            if let Err(e) = gradient(&field, &z0, &[0.0, 1.0], &loss, strategy, &opts) {
                eprintln!("{strategy:?} with {steps} steps: {e}");
                std::process::exit(1);
            }
            peaks[k] = train::memory::since(base).unwrap_or(0);
        }
        let mib = |b: usize| format!("{:.2} MiB", b as f64 / (1024.0 * 1024.0));
        println!(
            "{steps:>7} {:>14} {:>14} {:>10.1}",
            mib(peaks[0]),
            mib(peaks[1]),
            peaks[1] as f64 / peaks[0] as f64
        );
        let b0 = *first.get_or_insert(peaks[0]);
        if peaks[0] as f64 > 1.2 * b0 as f64 {
            eprintln!("backsolve's peak grew more than 1.2x with the number of steps");
            std::process::exit(1);
        }
    }
}
