//! Criterion benchmarks of `ode-solvers` on the reference problems: Dopri5 and Tsit5 on
//! Lotka-Volterra over [0, 10], the Arenstorf orbit over one period, and 1024 Van der Pol
//! oscillators (μ = 1, t ∈ [0, 10]) solved in parallel, at rtol = atol = 1e-6 and 1e-8.
//! Before timing, each case prints its NFE (`NFE <case> <n>`), which `cargo xtask bench`
//! collects. `lotka_volterra_stepper` solves Lotka-Volterra with one `RkIntegrator` kept
//! across solves (`init`, then `step` to the end), beside `odeint`'s solve: the difference
//! is `odeint`'s per-solve set-up and output.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ode_solvers::problems::{
    arenstorf, arenstorf_rhs, lotka_volterra, lotka_volterra_rhs, van_der_pol,
};
use ode_solvers::{odeint, odeint_batch, Method, OdeSystem, Options, RkIntegrator};
use std::hint::black_box;

const METHODS: [Method; 2] = [Method::Dopri5, Method::Tsit5];
const TOLS: [f64; 2] = [1e-6, 1e-8];

fn single<S: OdeSystem<f64>>(c: &mut Criterion, group: &str, f: &S, y0: &[f64], t1: f64) {
    let mut g = c.benchmark_group(group);
    for method in METHODS {
        for tol in TOLS {
            let opts = Options::new(method).rtol(tol).atol(tol);
            let id = format!("{}/{tol:e}", method.name());
            if let Ok(sol) = odeint(f, y0, &[0.0, t1], &opts) {
                println!("NFE {group}/{id} {}", sol.stats.nfe);
            }
            g.bench_function(BenchmarkId::from_parameter(&id), |b| {
                b.iter(|| odeint(f, black_box(y0), &[0.0, t1], &opts))
            });
        }
    }
    g.finish();
}

fn bench_lotka_volterra(c: &mut Criterion) {
    let p = lotka_volterra();
    single(c, "lotka_volterra", &lotka_volterra_rhs, &p.y0, p.t_span.1);
}

fn bench_lotka_volterra_stepper(c: &mut Criterion) {
    let p = lotka_volterra();
    let t1 = p.t_span.1;
    let mut g = c.benchmark_group("lotka_volterra_stepper");
    for tol in TOLS {
        let opts = Options::new(Method::Dopri5).rtol(tol).atol(tol);
        let Ok(mut rk) = RkIntegrator::new(&lotka_volterra_rhs, p.y0.len(), &opts) else {
            continue;
        };
        // Returns the solve's NFE.
        let mut solve = |y0: &[f64]| -> Result<usize, ode_solvers::Error> {
            rk.init(0.0, y0, t1)?;
            rk.reset_stats();
            while rk.t() < t1 {
                rk.step()?;
            }
            Ok(rk.stats().nfe)
        };
        let Ok(nfe) = solve(&p.y0) else { continue };
        let id = format!("Dopri5/{tol:e}");
        println!("NFE lotka_volterra_stepper/{id} {nfe}");
        g.bench_function(BenchmarkId::from_parameter(&id), |b| b.iter(|| solve(black_box(&p.y0))));
    }
    g.finish();
}

fn bench_arenstorf(c: &mut Criterion) {
    let p = arenstorf();
    single(c, "arenstorf", &arenstorf_rhs, &p.y0, p.t_span.1);
}

fn bench_van_der_pol_batch(c: &mut Criterion) {
    let f = van_der_pol(1.0);
    // Seeded initial states on a deterministic grid around the limit cycle.
    let y0s: Vec<Vec<f64>> = (0..1024)
        .map(|i| vec![2.0 * (i as f64 * 0.37).sin(), 2.0 * (i as f64 * 0.61).cos()])
        .collect();
    let mut g = c.benchmark_group("van_der_pol_1024");
    g.sample_size(10);
    for method in METHODS {
        for tol in TOLS {
            let opts = Options::new(method).rtol(tol).atol(tol);
            let id = format!("{}/{tol:e}", method.name());
            if let Ok(sols) = odeint_batch(&f, &y0s, &[0.0, 10.0], &opts) {
                println!(
                    "NFE van_der_pol_1024/{id} {}",
                    sols.iter().map(|s| s.stats.nfe).sum::<usize>()
                );
            }
            g.bench_function(BenchmarkId::from_parameter(&id), |b| {
                b.iter(|| odeint_batch(&f, black_box(&y0s), &[0.0, 10.0], &opts))
            });
        }
    }
    g.finish();
}

// criterion_group! generates an undocumented public function.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(
        benches,
        bench_lotka_volterra,
        bench_lotka_volterra_stepper,
        bench_arenstorf,
        bench_van_der_pol_batch
    );
}
criterion_main!(group::benches);
