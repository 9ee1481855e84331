//! Criterion benchmark of the peers' T3 task (issue #12): one FFJORD training step on
//! 8gaussians. Field: an MLP on `[z, t]`, 3→64→64→64→2, tanh; batch 512; Hutchinson trace
//! with Gaussian noise drawn once per step; Dopri5 at rtol = atol = 1e-5 over [0, 1];
//! backsolve adjoint; Adam at lr 1e-3; f64; one thread (run under `RAYON_NUM_THREADS=1` or
//! not: the step itself is single-threaded). Prints `NFE` and `FLOPS` lines for
//! `cargo xtask bench`'s table.
//!
//! FLOP model: an evaluation of `f` at batch `B` costs `2B Σ in·out` in its products; the
//! forward dynamics evaluate `f` and one VJP (about twice that), the backward dynamics the
//! VJP of that (about three times the forward evaluation's). Element-wise work is not
//! counted, so the GFLOP/s reported are of the products.

use cnf::autodiff::checkpoint::OptimizerState;
use cnf::autodiff::optim::{Adam, AdamConfig, Optimizer};
use cnf::autodiff::Rng;
use cnf::{Cnf, CnfConfig, FieldKind, Noise, Toy, Trace};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn bench_t3(c: &mut Criterion) {
    let batch = 512;
    let mut cfg = CnfConfig::ffjord(2, batch);
    cfg.field = FieldKind::Mlp(vec![64, 64, 64]);
    cfg.trace = Trace::Hutchinson(Noise::Gaussian);
    let mut flow = Cnf::new(cfg, &mut Rng::new(0)).expect("flow");
    let pts = Toy::EightGaussians.sample(batch, &mut Rng::new(1));
    let x: Vec<f64> = (0..2).flat_map(|j| pts.iter().map(move |p| p[j])).collect();
    let mut rng = Rng::new(2);
    let mut adam =
        OptimizerState::Adam(Adam::new(AdamConfig { lr: 1e-3, ..AdamConfig::default() }));
    let mut params = flow.params();
    let mut step = |flow: &mut Cnf| {
        let eps = flow.draw_noise(&mut rng);
        flow.set_noise(&eps).expect("noise");
        let g = flow.loss_grad(black_box(&x)).expect("gradient");
        adam.step(&mut params, &g.params).expect("adam");
        flow.set_params(&params).expect("params");
        g.nfe
    };
    let (f, b) = step(&mut flow);
    let products: f64 =
        [(3, 64), (64, 64), (64, 64), (64, 2)].iter().map(|&(i, o)| (i * o) as f64).sum();
    let eval = 2.0 * batch as f64 * products;
    let flops = f as f64 * 2.0 * eval + b as f64 * 6.0 * eval;
    println!("NFE cnf_t3_ffjord_8gaussians/train_step {f}+{b}");
    println!("FLOPS cnf_t3_ffjord_8gaussians/train_step {flops}");
    let mut group = c.benchmark_group("cnf_t3_ffjord_8gaussians");
    group.sample_size(10);
    group.bench_function("train_step", |bencher| bencher.iter(|| step(&mut flow)));
    group.finish();
}

#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, bench_t3);
}
criterion_main!(group::benches);
