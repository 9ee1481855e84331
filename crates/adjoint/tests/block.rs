//! The ODE block's two halves: composition with other layers, the strategies' records,
//! fallible fields, extra inputs, augmented integrands, and non-finite gradients.

use adjoint::{
    gradient, integrands, AdjointOptions, AdjointStrategy, AutodiffField, Direct, Error, OdeBlock,
    Strategy, VectorField,
};
use autodiff::layers::{Activation, Mlp};
use autodiff::{Graph, Mat, Rng};
use ode_solvers::{odeint, Method, OdeSystem, Options, RhsError};

#[allow(dead_code)]
mod common;
use common::{linear_field, rel};

fn tight() -> AdjointOptions {
    AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-12).atol(1e-12).max_steps(1_000_000))
}

/// encoder z0 = 2x + 1 → ODE block → head L = Σ_i c_i ‖z(t_i)‖², each half by its own
/// means, against central differences of the whole composition in `x`.
#[test]
fn a_block_between_two_layers_matches_finite_differences_of_the_composition() {
    let field = linear_field(5);
    let ts = [0.0, 0.4, 1.0];
    let c = [0.3, -0.7, 1.1];
    let model = |block: &OdeBlock, x: &[f64]| -> (f64, Vec<f64>) {
        let z0: Vec<f64> = x.iter().map(|v| 2.0 * v + 1.0).collect();
        let rec = block.forward(&field, &z0, &ts).unwrap();
        let loss: f64 =
            rec.zs.iter().zip(&c).map(|(z, ci)| ci * z.iter().map(|v| v * v).sum::<f64>()).sum();
        let cot: Vec<Vec<f64>> =
            rec.zs.iter().zip(&c).map(|(z, ci)| z.iter().map(|v| 2.0 * ci * v).collect()).collect();
        let g = block.backward(&field, &rec, &cot).unwrap();
        (loss, g.z0.iter().map(|gz| 2.0 * gz).collect())
    };
    let x = [0.1, -0.4, 0.25];
    for strategy in Strategy::all() {
        let block = OdeBlock::new(strategy, tight());
        let (_, gx) = model(&block, &x);
        let h = 1e-6;
        let fd: Vec<f64> = (0..3)
            .map(|i| {
                let (mut xp, mut xm) = (x, x);
                xp[i] += h;
                xm[i] -= h;
                (model(&block, &xp).0 - model(&block, &xm).0) / (2.0 * h)
            })
            .collect();
        assert!(rel(&gx, &fd) < 1e-7, "{strategy}: {gx:?} vs {fd:?}");
    }
}

#[test]
fn direct_records_exactly_the_steps_odeint_takes() {
    let field = linear_field(2);
    let z0 = [1.0, 0.5, -0.5];
    for (opts, ts) in [
        (Options::new(Method::Dopri5).rtol(1e-7).atol(1e-9), vec![0.0, 0.37, 1.3, 2.0]),
        (Options::new(Method::Tsit5).rtol(1e-5).atol(1e-5), vec![2.0, 1.0, -1.0]),
        (Options::new(Method::Rk4).step_size(0.1), vec![0.0, 0.25, 1.0]),
    ] {
        let aopts = AdjointOptions::new(opts.clone());
        let rec = Direct.forward(&field, &z0, &ts, &aopts).unwrap();
        let sol = odeint(&field, &z0, &ts, &opts.clone().save_steps(true)).unwrap();
        assert_eq!(rec.tape, sol.steps.unwrap(), "{:?}", opts.method);
        assert_eq!(rec.zs, sol.ys);
        assert_eq!(rec.nfe_forward, sol.stats.nfe);
    }
}

/// `dz/dt = -z` whose evaluation fails for `t > fail_after` and whose VJP fails for
/// `t < vjp_fails_before`.
struct Failing {
    fail_after: f64,
    vjp_fails_before: f64,
    params: Vec<f64>,
}

impl OdeSystem<f64> for Failing {
    fn rhs(&self, t: f64, z: &[f64], dz: &mut [f64]) -> Result<(), RhsError> {
        if t > self.fail_after {
            return Err(Error::InvalidArgument { what: "time", detail: "too late".into() }.into());
        }
        dz[0] = -self.params[0] * z[0];
        Ok(())
    }
}

impl VectorField for Failing {
    fn dim(&self) -> usize {
        1
    }
    fn params(&self) -> &[f64] {
        &self.params
    }
    fn vjp(
        &self,
        t: f64,
        z: &[f64],
        a: &[f64],
        dz: &mut [f64],
        vz: &mut [f64],
        vp: &mut [f64],
    ) -> Result<f64, Error> {
        if t < self.vjp_fails_before {
            return Err(Error::InvalidArgument { what: "time", detail: "too early".into() });
        }
        dz[0] = -self.params[0] * z[0];
        vz[0] = -self.params[0] * a[0];
        vp[0] = -z[0] * a[0];
        Ok(0.0)
    }
}

#[test]
fn a_field_that_fails_mid_solve_stops_it_with_its_time_and_cause() {
    let sq = |zs: &[Vec<f64>]| (zs[1][0] * zs[1][0], vec![vec![0.0], vec![2.0 * zs[1][0]]]);
    let opts = AdjointOptions::new(Options::new(Method::Dopri5));
    let forward = Failing { fail_after: 0.5, vjp_fails_before: -1.0, params: vec![1.0] };
    let backward = Failing { fail_after: 9.0, vjp_fails_before: 0.3, params: vec![1.0] };
    for strategy in Strategy::all() {
        match gradient(&forward, &[1.0], &[0.0, 1.0], &sq, strategy, &opts) {
            Err(Error::Field { backward: false, t, cause }) => {
                assert!(t > 0.5 && t <= 1.0, "{strategy}: t = {t}");
                assert!(matches!(*cause, Error::InvalidArgument { what: "time", .. }));
            }
            other => panic!("{strategy}: expected a forward field error, got {other:?}"),
        }
        match gradient(&backward, &[1.0], &[0.0, 1.0], &sq, strategy, &opts) {
            Err(Error::Field { backward: true, t, cause }) => {
                assert!((0.0..0.3).contains(&t), "{strategy}: t = {t}");
                assert!(matches!(*cause, Error::InvalidArgument { what: "time", .. }));
            }
            other => panic!("{strategy}: expected a backward field error, got {other:?}"),
        }
    }
}

/// `dz/dt = -c·z` with `c` an extra input: z(1) = e^{-c} z0.
#[test]
fn extra_inputs_change_between_solves_without_re_recording() {
    let mut g = Graph::new();
    let z = g.input(2, 1);
    let c = g.input(1, 1);
    let w = g.param("w", &Mat::from_element(1, 1, 1.0));
    let cz = g.mul(z, c).unwrap();
    let f = g.mul(cz, w).unwrap();
    let f = g.neg(f).unwrap();
    let mut field = AutodiffField::builder(g).state(z, f).extra("c", c).build().unwrap();
    let nodes = field.graph().len();
    let opts = AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-10).atol(1e-12));
    let loss = |zs: &[Vec<f64>]| (zs[1].iter().sum::<f64>(), vec![vec![0.0; 2], vec![1.0; 2]]);
    for cval in [1.0, 2.0, 0.5] {
        field.set_extra("c", &[cval]).unwrap();
        let g =
            gradient(&field, &[1.0, 3.0], &[0.0, 1.0], &loss, Strategy::Backsolve, &opts).unwrap();
        assert!((g.zs[1][0] - (-cval).exp()).abs() < 1e-9, "c = {cval}");
        // dL/dw = Σ z0 · d e^{-c w}/dw = -c e^{-c} (1 + 3).
        assert!((g.params[0] + 4.0 * cval * (-cval).exp()).abs() < 1e-8);
        assert_eq!(field.graph().len(), nodes);
    }
    assert!(matches!(field.set_extra("nope", &[1.0]), Err(Error::InvalidArgument { .. })));
    assert!(matches!(field.set_extra("c", &[1.0, 2.0]), Err(Error::Autodiff(_))));
    assert!(matches!(field.set_extra("c", &[f64::NAN]), Err(Error::InvalidArgument { .. })));
}

/// A linear field `f = z Aᵀ` (rows are samples) with `-tr(∂f/∂z)` integrated: the
/// log-density change over `[0, T]` is `-T tr A` for every sample, exactly.
#[test]
fn the_log_density_change_of_a_linear_field_is_t_times_its_trace() {
    let a = [0.3, -1.2, 0.8, -0.5];
    for exact in [true, false] {
        let mut g = Graph::new();
        let z = g.input(3, 2);
        let am = g.param("A", &Mat::from_row_slice(2, 2, &a));
        let f = g.matmul_t(z, am, false, true).unwrap();
        let eps = g.input(3, 2);
        let tr = if exact {
            integrands::exact_trace(&mut g, f, z).unwrap()
        } else {
            let v = integrands::probe_vjp(&mut g, f, z, eps).unwrap();
            integrands::hutchinson_trace(&mut g, v, eps).unwrap()
        };
        let dlogp = g.neg(tr).unwrap();
        let mut field = AutodiffField::builder(g)
            .state(z, f)
            .integrand("logp", dlogp, false)
            .extra("eps", eps)
            .build()
            .unwrap();
        let e = [1.0, -1.0, 1.0, 1.0, 1.0, -1.0]; // Rademacher probes, column-major
        field.set_extra("eps", &e).unwrap();
        let t1 = 1.7;
        let mut z0 = vec![0.5, -0.2, 1.0, 0.1, 0.3, -0.8];
        z0.extend([0.0; 3]);
        let sol =
            odeint(&field, &z0, &[0.0, t1], &Options::new(Method::Dopri5).rtol(1e-10).atol(1e-12))
                .unwrap();
        for b in 0..3 {
            let expected = if exact {
                -t1 * (a[0] + a[3])
            } else {
                // εᵀ A ε for the probe of sample b.
                let (e0, e1) = (e[b], e[3 + b]);
                -t1 * (e0 * (a[0] * e0 + a[1] * e1) + e1 * (a[2] * e0 + a[3] * e1))
            };
            assert!((sol.ys[1][6 + b] - expected).abs() < 1e-8, "exact = {exact}, sample {b}");
        }
    }
}

/// An MLP field on [z, t] with the exact trace, the kinetic energy and the Jacobian
/// Frobenius estimate integrated beside z; loss = Σ ½‖z(T)‖² + Σ Δlogp + λ_K Σ K + λ_J Σ J.
fn cnf_like_field() -> AutodiffField {
    let (b, d) = (2, 2);
    let mut g = Graph::new();
    let z = g.input(b, d);
    let t = g.input(1, 1);
    let eps = g.input(b, d);
    let tcol = g.broadcast_to(t, (b, 1)).unwrap();
    let zt = g.concat_cols(&[z, tcol]).unwrap();
    let mlp = Mlp::new(&mut g, "f", &[3, 6, 2], Activation::Tanh, &mut Rng::new(3)).unwrap();
    let f = mlp.forward(&mut g, zt).unwrap();
    let tr = integrands::exact_trace(&mut g, f, z).unwrap();
    let dlogp = g.neg(tr).unwrap();
    let probe = integrands::probe_vjp(&mut g, f, z, eps).unwrap();
    let kin = integrands::kinetic_energy(&mut g, f).unwrap();
    let jac = integrands::jacobian_frobenius(&mut g, probe).unwrap();
    let mut field = AutodiffField::builder(g)
        .state(z, f)
        .time(t)
        .extra("eps", eps)
        .integrand("logp", dlogp, false)
        .integrand("kinetic", kin, false)
        .integrand("jacobian", jac, false)
        .build()
        .unwrap();
    field.set_extra("eps", &[0.7, -1.1, 0.4, 1.3]).unwrap();
    field
}

fn cnf_loss(zs: &[Vec<f64>]) -> (f64, Vec<Vec<f64>>) {
    let last = &zs[zs.len() - 1];
    let mut grad = vec![0.0; last.len()];
    let mut value = 0.0;
    for i in 0..4 {
        value += 0.5 * last[i] * last[i];
        grad[i] = last[i];
    }
    for (k, w) in [(4, 1.0), (6, 0.3), (8, 0.2)] {
        for b in 0..2 {
            value += w * last[k + b];
            grad[k + b] = w;
        }
    }
    let mut grads = vec![vec![0.0; last.len()]; zs.len()];
    grads[zs.len() - 1] = grad;
    (value, grads)
}

#[test]
fn augmented_integrands_gradients_match_finite_differences() {
    let mut field = cnf_like_field();
    assert_eq!(field.layout().mask(), [[true; 4].as_slice(), &[false; 6]].concat());
    let z0 = [0.4, -0.3, 0.9, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let ts = [0.0, 0.8];
    let ref_opts = Options::new(Method::Dop853).rtol(1e-13).atol(1e-13);
    let loss_at =
        |f: &AutodiffField, z: &[f64]| cnf_loss(&odeint(f, z, &ts, &ref_opts).unwrap().ys).0;
    let h = 1e-6;
    let dz: Vec<f64> = (0..4)
        .map(|i| {
            let (mut zp, mut zm) = (z0, z0);
            zp[i] += h;
            zm[i] -= h;
            (loss_at(&field, &zp) - loss_at(&field, &zm)) / (2.0 * h)
        })
        .collect();
    let p0 = field.params().to_vec();
    let mut dp = Vec::new();
    for i in 0..p0.len() {
        field.params_mut()[i] = p0[i] + h;
        let lp = loss_at(&field, &z0);
        field.params_mut()[i] = p0[i] - h;
        let lm = loss_at(&field, &z0);
        field.params_mut()[i] = p0[i];
        dp.push((lp - lm) / (2.0 * h));
    }
    for strategy in Strategy::all() {
        let g = gradient(&field, &z0, &ts, &cnf_loss, strategy, &tight()).unwrap();
        assert!(rel(&g.z0[..4], &dz) < 1e-6, "{strategy} z0: {:e}", rel(&g.z0[..4], &dz));
        assert!(rel(&g.params, &dp) < 1e-6, "{strategy} θ: {:e}", rel(&g.params, &dp));
    }
}

#[test]
fn direct_returns_an_error_not_a_nan_gradient() {
    // dz/dt = -z + 0·sqrt(z) at z0 = [1, 0]: the VJP of sqrt at 0 is 0·∞ = NaN.
    let mut g = Graph::new();
    let z = g.input(1, 2);
    let s = g.sqrt(z).unwrap();
    let zero = g.scale(s, 0.0).unwrap();
    let nz = g.neg(z).unwrap();
    let f = g.add(nz, zero).unwrap();
    let field = AutodiffField::new(g, f).unwrap();
    let loss = |zs: &[Vec<f64>]| (zs[1].iter().sum::<f64>(), vec![vec![0.0; 2], vec![1.0; 2]]);
    let opts = AdjointOptions::new(Options::new(Method::Rk4).step_size(0.1));
    for strategy in Strategy::all() {
        let r = gradient(&field, &[1.0, 0.0], &[0.0, 1.0], &loss, strategy, &opts);
        assert!(
            matches!(
                r,
                Err(Error::NonFiniteGradient { .. }) | Err(Error::Solve { backward: true, .. })
            ),
            "{strategy}: {r:?}"
        );
    }
}

#[test]
fn a_field_whose_output_is_a_parameter_works_with_every_strategy() {
    // dz/dt = θ: z(1) = z0 + θ, dL/dθ = dL/dz(1) for L = Σ z(1).
    let mut g = Graph::new();
    let _z = g.input(1, 2);
    let theta = g.param("theta", &Mat::from_row_slice(1, 2, &[0.5, -1.0]));
    let field = AutodiffField::new(g, theta).unwrap();
    let loss = |zs: &[Vec<f64>]| (zs[1].iter().sum::<f64>(), vec![vec![0.0; 2], vec![1.0; 2]]);
    let opts = AdjointOptions::new(Options::new(Method::Dopri5));
    for strategy in Strategy::all() {
        let g = gradient(&field, &[1.0, 2.0], &[0.0, 1.0], &loss, strategy, &opts).unwrap();
        assert!((g.zs[1][0] - 1.5).abs() < 1e-12 && (g.zs[1][1] - 1.0).abs() < 1e-12);
        assert!(rel(&g.params, &[1.0, 1.0]) < 1e-12, "{strategy}: {:?}", g.params);
        assert!(rel(&g.z0, &[1.0, 1.0]) < 1e-12);
    }
}

#[test]
fn backward_rejects_mismatched_cotangents_and_records() {
    let field = linear_field(0);
    let block = OdeBlock::new(Strategy::Checkpointed, tight());
    let rec = block.forward(&field, &[1.0, 0.0, 0.0], &[0.0, 1.0]).unwrap();
    assert!(matches!(
        block.backward(&field, &rec, &[vec![0.0; 3]]),
        Err(Error::DimensionMismatch { what: "cotangents (one per output time)", .. })
    ));
    assert!(matches!(
        block.backward(&field, &rec, &[vec![0.0; 3], vec![0.0; 2]]),
        Err(Error::DimensionMismatch { what: "cotangent", .. })
    ));
    assert!(matches!(
        block.backward(&field, &rec, &[vec![0.0; 3], vec![f64::NAN; 3]]),
        Err(Error::NonFiniteLoss)
    ));
    let backsolve = OdeBlock::new(Strategy::Backsolve, tight());
    let rec_b = backsolve.forward(&field, &[1.0, 0.0, 0.0], &[0.0, 1.0]).unwrap();
    assert!(matches!(
        block.backward(&field, &rec_b, &[vec![0.0; 3], vec![1.0; 3]]),
        Err(Error::InvalidArgument { what: "record", .. })
    ));
}

#[test]
fn per_component_tolerances_carry_over_to_the_backward_solve() {
    let field = linear_field(1);
    let fwd = Options::new(Method::Dopri5)
        .rtol_per_component(vec![1e-8, 1e-9, 1e-8])
        .atol_per_component(vec![1e-10; 3]);
    let opts = AdjointOptions::new(fwd);
    let loss = |zs: &[Vec<f64>]| (zs[1].iter().sum::<f64>(), vec![vec![0.0; 3], vec![1.0; 3]]);
    for strategy in Strategy::all() {
        gradient(&field, &[1.0, 0.0, 0.0], &[0.0, 1.0], &loss, strategy, &opts)
            .unwrap_or_else(|e| panic!("{strategy}: {e}"));
    }
}

/// Gradients at loose tolerances against a tight reference (issue #16): the T2 field (an
/// MLP 2→64→64→2 on a batch of 512) with a mean-square loss, so the adjoint is small
/// (`a = 2z/N`) and an absolute tolerance on it alone would be a loose relative one. Every
/// strategy's error must stay within a small multiple of the tolerance asked for.
#[test]
fn gradients_at_loose_tolerances_are_as_accurate_as_asked() {
    let batch = 512;
    let mut g = Graph::new();
    let z = g.input(batch, 2);
    let f = Mlp::new(&mut g, "f", &[2, 64, 64, 2], Activation::Tanh, &mut Rng::new(0))
        .unwrap()
        .forward(&mut g, z)
        .unwrap();
    let mut field = AutodiffField::new(g, f).unwrap();
    // Weights three times PyTorch's initialisation, so the flow moves the states well away
    // from the identity (at the plain initialisation every method is nearly exact).
    field.params_mut().iter_mut().for_each(|w| *w *= 3.0);
    let z0: Vec<f64> = Rng::new(1).matrix(batch, 2, Rng::normal).unwrap().as_slice().to_vec();
    let n = (2 * batch) as f64;
    let loss = |zs: &[Vec<f64>]| {
        let v = zs[1].iter().map(|x| x * x).sum::<f64>() / n;
        (v, vec![vec![0.0; zs[0].len()], zs[1].iter().map(|x| 2.0 * x / n).collect()])
    };
    let ts = [0.0, 1.0];
    let reference = gradient(&field, &z0, &ts, &loss, Strategy::Backsolve, &tight()).unwrap();
    // Direct is the exact gradient of the discrete forward solution, so its error is the
    // forward solve's effect on the gradient: the floor the continuous adjoints are held to.
    // Measured (Dopri5, rtol = atol = tol): at 1e-6, z0 errors 4.3e-4 / 1.8e-4 / 9.1e-5 and
    // θ errors 3.0e-6 / 1.4e-6 / 1.1e-6 (backsolve / checkpointed / direct); before the
    // checkpointed adjoint's tolerance was scaled to the cotangents it had 1.3e-2 and 8.6e-5.
    let mut failures = Vec::new();
    for tol in [1e-4, 1e-6] {
        let opts = AdjointOptions::new(Options::new(Method::Dopri5).rtol(tol).atol(tol));
        let errors: Vec<(Strategy, f64, f64)> = Strategy::all()
            .into_iter()
            .map(|strategy| {
                let gr = gradient(&field, &z0, &ts, &loss, strategy, &opts).unwrap();
                (strategy, rel(&gr.z0, &reference.z0), rel(&gr.params, &reference.params))
            })
            .collect();
        let floor = errors.iter().find(|e| e.0 == Strategy::Direct).map_or(0.0, |e| e.1);
        for (strategy, ez, ep) in errors {
            if ez > 10.0 * floor || ep > 5.0 * tol {
                failures
                    .push(format!("{strategy} at {tol:e}: z0 {ez:e} (direct {floor:e}), θ {ep:e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

/// The checkpointed backward pass reads `z(t)` from the forward solve's dense output: it
/// evaluates no forward step again, only VJPs, and agrees with the backsolve adjoint.
#[test]
fn checkpointed_backward_evaluates_only_vjps() {
    use std::cell::Cell;
    let (rhs_calls, vjp_calls) = (Cell::new(0usize), Cell::new(0usize));
    // dz/dt = -θ z², a nonlinear field so z(t) matters in the VJP.
    let field = adjoint::ClosureField::new(
        2,
        vec![0.8],
        |_t, z: &[f64], p: &[f64], dz: &mut [f64]| {
            rhs_calls.set(rhs_calls.get() + 1);
            dz.iter_mut().zip(z).for_each(|(d, &x)| *d = -p[0] * x * x);
        },
        |_t, z: &[f64], p: &[f64], a: &[f64], vz: &mut [f64], vp: &mut [f64]| {
            vjp_calls.set(vjp_calls.get() + 1);
            vp[0] = 0.0;
            for i in 0..2 {
                vz[i] = -2.0 * p[0] * z[i] * a[i];
                vp[0] -= z[i] * z[i] * a[i];
            }
            0.0
        },
    );
    let opts = AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-10).atol(1e-12));
    let (z0, ts) = ([1.0, 0.5], [0.0, 0.7, 2.0]);
    let rec = adjoint::Checkpointed.forward(&field, &z0, &ts, &opts).unwrap();
    let cot = vec![vec![0.0; 2], vec![1.0, -1.0], vec![0.5, 2.0]];
    let before = rhs_calls.get();
    let g = adjoint::Checkpointed.backward(&field, &rec, &cot, &opts).unwrap();
    // A closure field's VJP evaluates `f` once beside it: nothing more.
    assert_eq!(rhs_calls.get() - before, vjp_calls.get(), "the backward pass replayed steps");
    assert_eq!(g.nfe_backward, vjp_calls.get());
    let brec = adjoint::Backsolve.forward(&field, &z0, &ts, &opts).unwrap();
    let b = adjoint::Backsolve.backward(&field, &brec, &cot, &opts).unwrap();
    assert!(rel(&g.z0, &b.z0) < 1e-8, "{:?} vs {:?}", g.z0, b.z0);
    assert!(rel(&g.params, &b.params) < 1e-8, "{:?} vs {:?}", g.params, b.params);
}
