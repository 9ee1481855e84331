//! The flow against closed forms (a linear field), the Hutchinson estimator's mean, round
//! trips, the toys' densities, and every gradient against central finite differences.

use cnf::adjoint::{AdjointOptions, Strategy, VectorField};
use cnf::autodiff::{Mat, Rng};
use cnf::ode_solvers::{Method, Options};
use cnf::{i0e, log_normal, Cnf, CnfConfig, FieldKind, Noise, Toy, Trace};

fn tight() -> AdjointOptions {
    AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-11).atol(1e-11).max_steps(1_000_000))
}

/// A flow whose field is exactly `f(z) = A z` (one linear layer on `[z, t]` with the time
/// column and bias zero).
fn linear_flow(a: &Mat, batch: usize, trace: Trace, t_end: f64) -> Cnf {
    let d = a.nrows();
    let mut cfg = CnfConfig::ffjord(d, batch);
    cfg.field = FieldKind::Mlp(vec![]);
    cfg.trace = trace;
    cfg.end_time = t_end;
    cfg.solver = tight();
    let mut flow = Cnf::new(cfg, &mut Rng::new(0)).unwrap();
    // The layer computes [z, t] W + b with W (d+1) × d, column-major in the parameters.
    let mut p = vec![0.0; flow.num_params()];
    for i in 0..d {
        for j in 0..d {
            p[i + j * (d + 1)] = a[(j, i)];
        }
    }
    flow.set_params(&p).unwrap();
    flow
}

#[test]
fn a_linear_flow_has_the_analytic_log_density() {
    let a = Mat::from_row_slice(2, 2, &[-0.3, 0.8, -0.5, 0.2]);
    let t = 0.7;
    let flow = linear_flow(&a, 3, Trace::Exact, t);
    let x = [0.5, -1.0, 0.25, 0.3, 0.0, -0.75]; // column-major 3 × 2
    let d = flow.densities(&x, &tight()).unwrap();
    let e = (&a * t).exp();
    for r in 0..3 {
        let xr = nalgebra_vec(&[x[r], x[r + 3]]);
        let z = &e * xr;
        let expected = log_normal(&[z[0], z[1]]) + t * (a[(0, 0)] + a[(1, 1)]);
        assert!((d.log_p[r] - expected).abs() < 1e-8, "sample {r}: {} vs {expected}", d.log_p[r]);
        assert!((d.z[r][0] - z[0]).abs() < 1e-8 && (d.z[r][1] - z[1]).abs() < 1e-8);
    }
}

fn nalgebra_vec(v: &[f64]) -> Mat {
    Mat::from_column_slice(v.len(), 1, v)
}

#[test]
fn hutchinson_is_unbiased_for_the_trace() {
    // One point repeated with many probes: the mean log-density change tends to -T tr A at
    // the Monte-Carlo rate (the variance of εᵀAε is 2‖sym A‖²_F for Gaussian ε).
    let a = Mat::from_row_slice(2, 2, &[0.4, -1.0, 0.6, -0.9]);
    let (n, t) = (4000, 0.5);
    for noise in [Noise::Gaussian, Noise::Rademacher] {
        let mut flow = linear_flow(&a, n, Trace::Hutchinson(noise), t);
        let eps = flow.draw_noise(&mut Rng::new(3));
        flow.set_noise(&eps).unwrap();
        let mut x = vec![0.2; n];
        x.extend(vec![-0.1; n]);
        let d = flow.densities(&x, &tight()).unwrap();
        let z = &(&a * t).exp() * nalgebra_vec(&[0.2, -0.1]);
        let base = log_normal(&[z[0], z[1]]);
        // log p = log N(z) + T εᵀAε, so the estimator of T tr A is log p - log N(z).
        let est: Vec<f64> = d.log_p.iter().map(|lp| lp - base).collect();
        let mean = est.iter().sum::<f64>() / n as f64;
        let var = est.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let exact = t * (a[(0, 0)] + a[(1, 1)]);
        let se = (var / n as f64).sqrt();
        assert!((mean - exact).abs() < 4.0 * se, "{noise:?}: {mean} vs {exact} ± {se}");
        assert!(se > 0.0 && se < 0.02);
    }
}

#[test]
fn encoding_then_decoding_returns_the_input_and_sampling_agrees_with_densities() {
    let mut cfg = CnfConfig::ffjord(2, 5);
    cfg.field = FieldKind::ConcatSquash(vec![8, 8]);
    cfg.trace = Trace::Exact;
    let flow = Cnf::new(cfg, &mut Rng::new(11)).unwrap();
    let opts = Options::new(Method::Dopri5).rtol(1e-10).atol(1e-10);
    let x: Vec<f64> = (0..10).map(|i| (i as f64 * 0.7).sin()).collect();
    let z = flow.encode(&x, &opts).unwrap();
    let zc: Vec<f64> = (0..2).flat_map(|j| z.iter().map(move |r| r[j])).collect();
    let (back, _) = flow.decode(&zc, &opts).unwrap();
    for r in 0..5 {
        for j in 0..2 {
            assert!((back[r][j] - x[r + j * 5]).abs() < 1e-7);
        }
    }
    // The log-density of samples from the backward solve equals the forward one's.
    let (samples, logp) = flow.sample(&mut Rng::new(2), &opts).unwrap();
    let xs: Vec<f64> = (0..2).flat_map(|j| samples.iter().map(move |r| r[j])).collect();
    let fwd = flow.densities(&xs, &AdjointOptions::new(opts.clone())).unwrap();
    for r in 0..5 {
        assert!((fwd.log_p[r] - logp[r]).abs() < 1e-6, "{} vs {}", fwd.log_p[r], logp[r]);
    }
}

#[test]
fn every_gradient_matches_central_differences() {
    for strategy in Strategy::all() {
        let mut cfg = CnfConfig::ffjord(2, 3);
        cfg.field = FieldKind::ConcatSquash(vec![6]);
        cfg.trace = Trace::Exact;
        cfg.lambda_kinetic = 0.3;
        cfg.lambda_jacobian = 0.2;
        cfg.train_end_time = true;
        cfg.end_time = 0.8;
        cfg.solver = tight();
        cfg.strategy = strategy;
        let mut flow = Cnf::new(cfg, &mut Rng::new(5)).unwrap();
        flow.set_noise(&[0.3, -1.2, 0.7, 1.1, -0.4, 0.9]).unwrap();
        let x = [0.4, -0.7, 1.1, 0.2, 0.5, -0.3];
        let g = flow.loss_grad(&x).unwrap();
        let h = 1e-6;
        let p0 = flow.params();
        let loss_at = |flow: &Cnf, x: &[f64]| flow.loss_grad(x).unwrap().loss;
        let mut worst: f64 = 0.0;
        let scale = g.params.iter().chain(&g.x).fold(1e-3f64, |m, v| m.max(v.abs()));
        for i in 0..p0.len() {
            let mut p = p0.clone();
            p[i] += h;
            flow.set_params(&p).unwrap();
            let lp = loss_at(&flow, &x);
            p[i] -= 2.0 * h;
            flow.set_params(&p).unwrap();
            let lm = loss_at(&flow, &x);
            worst = worst.max(((lp - lm) / (2.0 * h) - g.params[i]).abs() / scale);
        }
        flow.set_params(&p0).unwrap();
        for i in 0..x.len() {
            let (mut xp, mut xm) = (x, x);
            xp[i] += h;
            xm[i] -= h;
            let fd = (loss_at(&flow, &xp) - loss_at(&flow, &xm)) / (2.0 * h);
            worst = worst.max((fd - g.x[i]).abs() / scale);
        }
        assert!(worst < 1e-6, "{strategy}: worst relative error {worst:e}");
        // The end time is a parameter: its gradient is the last entry.
        assert_eq!(g.params.len(), flow.field().params().len() + 1);
    }
}

#[test]
fn toys_sample_where_their_densities_live() {
    // I0e against the power series e^{-x} Σ (x/2)^{2k} / (k!)², summed to convergence.
    for (x, v) in [
        (0.0, 1.0),
        (1.0, 0.465_759_607_593_640_4),
        (3.75, 0.214_457_051_230_048_7),
        (10.0, 0.127_833_337_163_428_6),
        (30.0, 0.073_145_946_482_237_3),
    ] {
        assert!((i0e(x) - v).abs() < 3e-7 * v, "i0e({x}) = {}", i0e(x));
    }
    for toy in Toy::ALL {
        let pts = toy.sample(2000, &mut Rng::new(1));
        assert!(pts.len() >= 1990, "{}", toy.name());
        if toy.log_density(pts[0]).is_some() {
            let finite =
                pts.iter().filter(|p| toy.log_density(**p).is_some_and(f64::is_finite)).count();
            assert_eq!(finite, pts.len(), "{}: samples outside the support", toy.name());
        }
        assert_eq!(toy.name().parse::<Toy>().unwrap(), toy);
    }
    // The densities integrate to one over a grid covering their mass.
    for toy in [
        Toy::EightGaussians,
        Toy::Circles,
        Toy::Rings,
        Toy::Moons,
        Toy::Swissroll,
        Toy::Checkerboard,
    ] {
        // The rings' σ = 0.08 needs the fine grid; the averages over curves do with less.
        let n = if matches!(toy, Toy::Moons | Toy::Swissroll) { 160 } else { 400 };
        let (lo, hi) = (-5.0, 5.0);
        let h = (hi - lo) / n as f64;
        let mut total = 0.0;
        for i in 0..n {
            for j in 0..n {
                let p = [lo + (i as f64 + 0.5) * h, lo + (j as f64 + 0.5) * h];
                total += toy.log_density(p).unwrap().exp() * h * h;
            }
        }
        assert!((total - 1.0).abs() < 0.01, "{}: integrates to {total}", toy.name());
    }
}

#[test]
fn bad_settings_and_inputs_are_errors() {
    for cfg in [
        CnfConfig { end_time: 0.0, ..CnfConfig::ffjord(2, 4) },
        CnfConfig { end_time: f64::NAN, ..CnfConfig::ffjord(2, 4) },
        CnfConfig { lambda_kinetic: -1.0, ..CnfConfig::ffjord(2, 4) },
        CnfConfig { dim: 0, ..CnfConfig::ffjord(2, 4) },
        CnfConfig { batch: 0, ..CnfConfig::ffjord(2, 4) },
    ] {
        assert!(matches!(Cnf::new(cfg, &mut Rng::new(0)), Err(cnf::Error::InvalidArgument { .. })));
    }
    let flow = Cnf::new(CnfConfig::ffjord(2, 4), &mut Rng::new(0)).unwrap();
    assert!(flow.densities(&[0.0; 7], &Cnf::evaluation_options()).is_err());
    assert!(flow.loss_grad(&[f64::NAN; 8]).is_err());
    assert!(matches!("spiral".parse::<Toy>(), Err(cnf::Error::InvalidArgument { .. })));
    let mut f2 = flow.with_batch(2).unwrap();
    assert!(f2.set_params(&[0.0; 3]).is_err());
    assert!(f2.set_noise(&[0.0; 3]).is_err());
    assert_eq!(f2.field().params(), flow.field().params());
}

#[test]
fn a_trajectory_starts_at_the_data_and_ends_at_the_encoding() {
    let mut cfg = CnfConfig::ffjord(2, 3);
    cfg.field = FieldKind::Mlp(vec![8]);
    cfg.end_time = 0.7;
    let flow = Cnf::new(cfg, &mut Rng::new(4)).unwrap();
    let x = [0.4, -0.7, 1.1, 0.2, 0.5, -0.3];
    let opts = Options::new(Method::Dopri5).rtol(1e-10).atol(1e-10);
    let path = flow.trajectory(&x, &[0.0, 0.35, 0.7], &opts).unwrap();
    assert_eq!(path.len(), 3);
    let z = flow.encode(&x, &opts).unwrap();
    for r in 0..3 {
        assert_eq!(path[0][r], vec![x[r], x[r + 3]]);
        for j in 0..2 {
            assert!((path[2][r][j] - z[r][j]).abs() < 1e-12);
        }
    }
    // Starting later than 0 still solves from the data.
    let later = flow.trajectory(&x, &[0.35], &opts).unwrap();
    assert!((later[0][1][0] - path[1][1][0]).abs() < 1e-9);
    for bad in [&[][..], &[0.5, 0.2], &[0.0, 0.8], &[f64::NAN]] {
        assert!(flow.trajectory(&x, bad, &opts).is_err(), "{bad:?}");
    }
}
