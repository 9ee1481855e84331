//! Criterion benchmarks of `adjoint`: the MLP 2→64→64→2 (tanh) field at batch 512 with
//! Dopri5 at rtol = atol = 1e-6 over t ∈ [0, 1]: the forward solve alone, and the loss
//! gradient by the backsolve adjoint and by direct backpropagation. Before timing, each
//! case prints `NFE <case> <forward>+<backward>`.

use adjoint::{gradient, AdjointOptions, AutodiffField, Strategy};
use autodiff::layers::{Activation, Mlp};
use autodiff::{Graph, Rng};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ode_solvers::{odeint, Method, Options};
use std::hint::black_box;

fn bench_adjoint(c: &mut Criterion) {
    let batch = 512;
    let mut g = Graph::new();
    let z = g.input(batch, 2);
    let out = Mlp::new(&mut g, "f", &[2, 64, 64, 2], Activation::Tanh, &mut Rng::new(0))
        .unwrap()
        .forward(&mut g, z)
        .unwrap();
    let field = AutodiffField::new(g, out).unwrap();
    let z0: Vec<f64> = Rng::new(1).matrix(batch, 2, Rng::normal).unwrap().as_slice().to_vec();
    let loss = |zs: &[Vec<f64>]| {
        let v = zs[1].iter().map(|x| x * x).sum::<f64>();
        (v, vec![vec![0.0; zs[0].len()], zs[1].iter().map(|x| 2.0 * x).collect()])
    };
    let opts = AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-6).atol(1e-6));
    let mut group = c.benchmark_group("mlp_field_b512_dopri5_1e-6");
    group.sample_size(10);
    if let Ok(sol) = odeint(&field, &z0, &[0.0, 1.0], &opts.forward) {
        println!("NFE mlp_field_b512_dopri5_1e-6/forward {}", sol.stats.nfe);
    }
    group.bench_function(BenchmarkId::from_parameter("forward"), |b| {
        b.iter(|| odeint(&field, black_box(&z0), &[0.0, 1.0], &opts.forward).unwrap())
    });
    for (name, strategy) in [("backsolve", Strategy::Backsolve), ("direct", Strategy::Direct)] {
        if let Ok(g) = gradient(&field, &z0, &[0.0, 1.0], &loss, strategy, &opts) {
            println!("NFE mlp_field_b512_dopri5_1e-6/{name} {}+{}", g.nfe_forward, g.nfe_backward);
        }
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                gradient(&field, black_box(&z0), &[0.0, 1.0], &loss, strategy, &opts).unwrap()
            })
        });
    }
    group.finish();
}

#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, bench_adjoint);
}
criterion_main!(group::benches);
