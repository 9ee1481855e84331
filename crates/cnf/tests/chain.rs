//! A chain of CNF blocks: one block is that block, a sample's `log p` from the decoding
//! solves equals the chain's density of it, and every gradient (both blocks' parameters
//! and end times, and `x`) matches central differences for every strategy.

use cnf::adjoint::{AdjointOptions, Strategy};
use cnf::autodiff::Rng;
use cnf::ode_solvers::{Method, Options};
use cnf::{Cnf, CnfChain, CnfConfig, FieldKind, Trace};

fn block(seed: u64, strategy: Strategy, t: f64) -> Cnf {
    let mut cfg = CnfConfig::ffjord(2, 3);
    cfg.field = if seed.is_multiple_of(2) {
        FieldKind::ConcatSquash(vec![5])
    } else {
        FieldKind::Mlp(vec![6])
    };
    cfg.trace = Trace::Exact;
    cfg.lambda_kinetic = 0.2;
    cfg.lambda_jacobian = 0.1 * seed as f64;
    cfg.train_end_time = true;
    cfg.end_time = t;
    cfg.solver = AdjointOptions::new(
        Options::new(Method::Dopri5).rtol(1e-11).atol(1e-11).max_steps(1_000_000),
    );
    cfg.strategy = strategy;
    let mut c = Cnf::new(cfg, &mut Rng::new(seed)).unwrap();
    c.set_noise(&[0.3, -1.2, 0.7, 1.1, -0.4, 0.9]).unwrap();
    c
}

const X: [f64; 6] = [0.4, -0.7, 1.1, 0.2, 0.5, -0.3];

#[test]
fn one_block_is_the_block_and_samples_have_the_chains_density() {
    let single = block(1, Strategy::Backsolve, 0.8);
    let alone = single.densities(&X, &single.config.solver).unwrap();
    let chain = CnfChain::new(vec![block(1, Strategy::Backsolve, 0.8)]).unwrap();
    let d = chain.densities(&X).unwrap();
    for r in 0..3 {
        assert!((d.log_p[r] - alone.log_p[r]).abs() < 1e-12);
    }
    let chain =
        CnfChain::new(vec![block(1, Strategy::Backsolve, 0.8), block(2, Strategy::Backsolve, 0.5)])
            .unwrap();
    let tight = Options::new(Method::Dopri5).rtol(1e-11).atol(1e-11).max_steps(1_000_000);
    let (xs, lp) = chain.sample(&mut Rng::new(3), &tight).unwrap();
    let flat: Vec<f64> = (0..2).flat_map(|j| xs.iter().map(move |r| r[j])).collect();
    let d = chain.densities(&flat).unwrap();
    for r in 0..3 {
        assert!((d.log_p[r] - lp[r]).abs() < 1e-8, "{r}: {} vs {}", d.log_p[r], lp[r]);
    }
    // A chain of two differs from either block alone.
    assert!((d.log_p[0] - alone.log_p[0]).abs() > 1e-6);
}

#[test]
fn chain_gradients_match_central_differences_for_every_strategy() {
    for strategy in Strategy::all() {
        let mut chain =
            CnfChain::new(vec![block(1, strategy, 0.8), block(2, strategy, 0.5)]).unwrap();
        let g = chain.loss_grad(&X).unwrap();
        assert_eq!(g.params.len(), chain.num_params());
        let h = 1e-6;
        let scale = g.params.iter().chain(&g.x).fold(1e-3f64, |m, v| m.max(v.abs()));
        let p0 = chain.params();
        let mut worst: f64 = 0.0;
        for i in 0..p0.len() {
            let mut p = p0.clone();
            p[i] += h;
            chain.set_params(&p).unwrap();
            let lp = chain.loss_grad(&X).unwrap().loss;
            p[i] -= 2.0 * h;
            chain.set_params(&p).unwrap();
            let lm = chain.loss_grad(&X).unwrap().loss;
            worst = worst.max(((lp - lm) / (2.0 * h) - g.params[i]).abs() / scale);
        }
        chain.set_params(&p0).unwrap();
        for i in 0..6 {
            let (mut a, mut b) = (X, X);
            a[i] += h;
            b[i] -= h;
            let fd =
                (chain.loss_grad(&a).unwrap().loss - chain.loss_grad(&b).unwrap().loss) / (2.0 * h);
            worst = worst.max((fd - g.x[i]).abs() / scale);
        }
        assert!(worst < 1e-6, "{strategy}: worst relative error {worst:e}");
    }
}

#[test]
fn chains_of_mismatched_blocks_or_none_are_errors() {
    assert!(CnfChain::new(vec![]).is_err());
    let mut other = CnfConfig::ffjord(2, 4);
    other.field = FieldKind::Mlp(vec![4]);
    let b4 = Cnf::new(other, &mut Rng::new(0)).unwrap();
    assert!(CnfChain::new(vec![block(1, Strategy::Backsolve, 0.5), b4]).is_err());
}
