//! The planar CNF and the planar NF: closed-form trace against the exact VJP trace, every
//! gradient (maximum likelihood and density matching) against central differences, the
//! targets' densities and gradients, and the NF's log-determinant against a numerical
//! Jacobian.

use cnf::adjoint::{AdjointOptions, Strategy};
use cnf::autodiff::Rng;
use cnf::ode_solvers::{Method, Options};
use cnf::{Cnf, CnfConfig, FieldKind, Objective, PlanarFlow, Target, Trace};

fn tight() -> AdjointOptions {
    AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-11).atol(1e-11).max_steps(1_000_000))
}

fn planar_cnf(trace: Trace, strategy: Strategy) -> Cnf {
    let mut cfg = CnfConfig::ffjord(2, 3);
    cfg.field = FieldKind::Planar { width: 4, hyper_hidden: 5 };
    cfg.trace = trace;
    cfg.train_end_time = true;
    cfg.end_time = 0.9;
    cfg.solver = tight();
    cfg.strategy = strategy;
    let mut flow = Cnf::new(cfg, &mut Rng::new(11)).unwrap();
    flow.set_noise(&[0.3, -1.2, 0.7, 1.1, -0.4, 0.9]).unwrap();
    flow
}

/// The largest `|fd − g| / max(1e-3, max |g|)` over the parameters of `loss`.
fn worst_error(flow: &mut Cnf, g: &[f64], loss: &dyn Fn(&Cnf) -> f64) -> f64 {
    let h = 1e-6;
    let p0 = flow.params();
    let scale = g.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    let mut worst: f64 = 0.0;
    for i in 0..p0.len() {
        let mut p = p0.clone();
        p[i] += h;
        flow.set_params(&p).unwrap();
        let lp = loss(flow);
        p[i] -= 2.0 * h;
        flow.set_params(&p).unwrap();
        let lm = loss(flow);
        worst = worst.max(((lp - lm) / (2.0 * h) - g[i]).abs() / scale);
    }
    flow.set_params(&p0).unwrap();
    worst
}

#[test]
fn the_planar_fields_closed_form_trace_is_the_exact_trace() {
    // The closed form (Trace::Exact on a planar field) against Hutchinson averaged over
    // the probes e1, e2 (which sums to the exact trace for d = 2).
    let flow = planar_cnf(Trace::Exact, Strategy::Backsolve);
    let x = [0.4, -0.7, 1.1, 0.2, 0.5, -0.3];
    let exact = flow.densities(&x, &tight()).unwrap().log_p;
    let mut hutch = planar_cnf(Trace::Hutchinson(cnf::Noise::Gaussian), Strategy::Backsolve);
    hutch.set_params(&flow.params()).unwrap();
    let mut sum = [0.0; 3];
    for j in 0..2 {
        let mut e = vec![0.0; 6];
        for r in 0..3 {
            e[r + 3 * j] = 1.0;
        }
        hutch.set_noise(&e).unwrap();
        let d = hutch.densities(&x, &tight()).unwrap();
        // log p = log N(z(T)) + ∫ eᵀJe: z(T) is the same, so the trace parts add.
        for r in 0..3 {
            sum[r] += d.log_p[r];
        }
    }
    let z_part: Vec<f64> =
        flow.densities(&x, &tight()).unwrap().z.iter().map(|z| cnf::log_normal(z)).collect();
    for r in 0..3 {
        let from_probes = sum[r] - z_part[r]; // = 2 log N + ∫ tr − log N
        assert!((exact[r] - from_probes).abs() < 1e-8, "{r}: {} vs {from_probes}", exact[r]);
    }
}

#[test]
fn planar_cnf_gradients_match_central_differences_both_objectives() {
    let x = [0.4, -0.7, 1.1, 0.2, 0.5, -0.3];
    for strategy in Strategy::all() {
        let mut flow = planar_cnf(Trace::Exact, strategy);
        let g = flow.loss_grad(&x).unwrap();
        let e = worst_error(&mut flow, &g.params, &|f| f.loss_grad(&x).unwrap().loss);
        assert!(e < 1e-6, "{strategy} maximum likelihood: {e:e}");
        for target in Target::ALL {
            let g = flow.matching_grad(&x, &target).unwrap();
            let e =
                worst_error(&mut flow, &g.params, &|f| f.matching_grad(&x, &target).unwrap().loss);
            assert!(e < 1e-6, "{strategy} matching {}: {e:e}", target.name());
        }
    }
}

#[test]
fn planar_nf_gradients_match_central_differences_both_objectives() {
    let mut flow = PlanarFlow::new(2, 5, &mut Rng::new(3)).unwrap();
    // Larger weights than the initialisation, so û's correction and tanh's curvature count.
    let p: Vec<f64> = (0..flow.num_params()).map(|i| 0.9 * ((i as f64) * 1.7).sin()).collect();
    flow.set_params(&p).unwrap();
    let x = [0.4, -0.7, 1.1, 0.2, 0.5, -0.3];
    for obj in [
        Objective::MaxLikelihood,
        Objective::Matching(Target::TwoCircles),
        Objective::Matching(Target::TwoMoons),
    ] {
        let (_, g) = flow.loss_grad(&x, obj).unwrap();
        let h = 1e-6;
        let scale = g.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i] += h;
            flow.set_params(&q).unwrap();
            let lp = flow.loss_grad(&x, obj).unwrap().0;
            q[i] -= 2.0 * h;
            flow.set_params(&q).unwrap();
            let lm = flow.loss_grad(&x, obj).unwrap().0;
            let fd = (lp - lm) / (2.0 * h);
            assert!((fd - g[i]).abs() / scale < 1e-6, "{obj:?} parameter {i}: {fd} vs {}", g[i]);
        }
        flow.set_params(&p).unwrap();
    }
}

#[test]
fn planar_nf_log_density_is_the_change_of_variables_with_a_numerical_jacobian() {
    let mut flow = PlanarFlow::new(2, 4, &mut Rng::new(8)).unwrap();
    let p: Vec<f64> = (0..flow.num_params()).map(|i| 1.1 * ((i as f64) * 0.7).cos()).collect();
    flow.set_params(&p).unwrap();
    let x = [0.3, -0.6];
    let map = |v: [f64; 2]| -> [f64; 2] {
        let (z, _) = flow.sample(&[v.to_vec()]).unwrap();
        [z[0][0], z[0][1]]
    };
    let h = 1e-6;
    let mut jac = [[0.0; 2]; 2];
    for j in 0..2 {
        let (mut a, mut b) = (x, x);
        a[j] += h;
        b[j] -= h;
        let (fa, fb) = (map(a), map(b));
        for i in 0..2 {
            jac[i][j] = (fa[i] - fb[i]) / (2.0 * h);
        }
    }
    let det = jac[0][0] * jac[1][1] - jac[0][1] * jac[1][0];
    assert!(det > 0.0, "every planar layer is orientation-preserving");
    let z = map(x);
    let expected = cnf::log_normal(&z) + det.ln();
    let got = flow.log_density(&x).unwrap();
    assert!((got - expected).abs() < 1e-8, "{got} vs {expected}");
}

#[test]
fn targets_are_normalised_and_their_gradients_are_exact() {
    for t in Target::ALL {
        // ∫ p over a grid covering the support.
        let (n, lo, hi) = (400, -4.0, 4.0);
        let dx = (hi - lo) / n as f64;
        let mut mass = 0.0;
        for i in 0..n {
            for j in 0..n {
                let x = [lo + (i as f64 + 0.5) * dx, lo + (j as f64 + 0.5) * dx];
                mass += t.log_density(x).0.exp() * dx * dx;
            }
        }
        assert!((mass - 1.0).abs() < 1e-3, "{}: mass {mass}", t.name());
        let x = [0.7, -0.4];
        let (_, g) = t.log_density(x);
        for j in 0..2 {
            let (mut a, mut b) = (x, x);
            a[j] += 1e-6;
            b[j] -= 1e-6;
            let fd = (t.log_density(a).0 - t.log_density(b).0) / 2e-6;
            assert!((fd - g[j]).abs() < 1e-6 * fd.abs().max(1.0), "{} grad {j}", t.name());
        }
        // Samples sit where the density is high.
        let s = t.sample(2000, &mut Rng::new(1));
        let mean_lp: f64 = s.iter().map(|&x| t.log_density(x).0).sum::<f64>() / 2000.0;
        assert!(mean_lp > -3.0, "{}: mean log p of its samples {mean_lp}", t.name());
    }
}
