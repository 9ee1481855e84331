//! Every strategy's gradients (initial state, parameters, times) against central finite
//! differences in f64, and against each other, on a linear system and an MLP field, with
//! losses at one and several times.

#[allow(dead_code)]
mod common;

use adjoint::{
    gradient, AdjointOptions, AutodiffField, ClosureField, Error, Strategy, VectorField,
};
use common::*;
use ode_solvers::{Method, Options};

fn check_all<F: VectorField>(
    field: &mut F,
    set: fn(&mut F, usize, f64),
    z0: &[f64],
    ts: &[f64],
    tol: f64,
) {
    let results = strategy_errors(field, set, z0, ts);
    for (strategy, g, errs) in &results {
        assert!(errs.iter().all(|&e| e < tol), "{strategy:?}: errors [z0, θ, times] = {errs:?}");
        assert!(g.nfe_forward > 0 && g.nfe_backward > 0);
    }
    // The strategies agree with each other.
    for (_, g, _) in &results[1..] {
        assert!(rel(&g.params, &results[0].1.params) < tol);
        assert!((g.loss - results[0].1.loss).abs() < 1e-9);
    }
}

#[test]
fn linear_system_gradients_match_finite_differences() {
    let set = |f: &mut ClosureField<_, _>, i: usize, v: f64| f.params_mut()[i] = v;
    for seed in 0..3 {
        let mut field = linear_field(seed);
        let z0 = [1.0, -0.5, 0.25];
        check_all(&mut field, set, &z0, &[0.0, 1.0], 1e-6);
        check_all(&mut field, set, &z0, &[0.0, 0.3, 0.8, 1.5], 1e-6);
        // Backward in time as well.
        check_all(&mut field, set, &z0, &[1.0, 0.4, -0.2], 1e-6);
    }
}

#[test]
fn mlp_field_gradients_match_finite_differences() {
    let set = |f: &mut AutodiffField, i: usize, v: f64| f.params_mut()[i] = v;
    let mut field = mlp_field(3);
    let z0: Vec<f64> = (0..6).map(|i| (i as f64 * 0.7).sin()).collect();
    check_all(&mut field, set, &z0, &[0.0, 0.5, 1.0], 1e-6);
}

#[test]
fn direct_is_the_exact_gradient_of_the_discrete_solution() {
    // With fixed RK4 steps the discrete map is the same for the finite differences, so
    // they agree to finite-difference accuracy, far below the discretisation error.
    let set = |f: &mut ClosureField<_, _>, i: usize, v: f64| f.params_mut()[i] = v;
    let mut field = linear_field(9);
    let z0 = [0.3, 0.2, -1.0];
    let ts = [0.0, 0.7, 2.0];
    let fixed = Options::new(Method::Rk4).step_size(0.25);
    let (dz, dp, _) = finite_differences(&mut field, set, &z0, &ts, &fixed);
    let g =
        gradient(&field, &z0, &ts, &loss, Strategy::Direct, &AdjointOptions::new(fixed)).unwrap();
    assert!(rel(&g.z0, &dz) < 1e-8, "{:e}", rel(&g.z0, &dz));
    assert!(rel(&g.params, &dp) < 1e-8, "{:e}", rel(&g.params, &dp));
}

#[test]
fn failures_are_errors_not_wrong_gradients() {
    let field = linear_field(1);
    let z0 = [1.0, 0.0, 0.0];
    let mut opts = AdjointOptions::new(Options::new(Method::Dopri5));
    opts.backward = opts.backward.clone().max_steps(2);
    let err = gradient(&field, &z0, &[0.0, 5.0], &loss, Strategy::Backsolve, &opts).unwrap_err();
    assert!(matches!(err, Error::Solve { backward: true, .. }), "{err}");
    let err = gradient(&field, &z0, &[0.0, 5.0], &loss, Strategy::Checkpointed, &opts).unwrap_err();
    assert!(matches!(err, Error::Solve { backward: true, .. }), "{err}");
    let ok = AdjointOptions::new(Options::new(Method::Dopri5));
    assert!(matches!(
        gradient(&field, &[1.0], &[0.0, 1.0], &loss, Strategy::Direct, &ok),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(matches!(
        gradient(&field, &z0, &[0.0, 0.0], &loss, Strategy::Backsolve, &ok),
        Err(Error::Solve { backward: false, .. })
    ));
    let nan_loss = |zs: &[Vec<f64>]| (f64::NAN, zs.to_vec());
    assert!(matches!(
        gradient(&field, &z0, &[0.0, 1.0], &nan_loss, Strategy::Direct, &ok),
        Err(Error::NonFiniteLoss)
    ));
}

#[test]
fn chunked_batches_sum_to_the_whole_and_ignore_the_thread_count() {
    use adjoint::gradient_chunks;
    let whole = mlp_field(6);
    let params = whole.params().to_vec();
    let z0: Vec<f64> = (0..12).map(|i| (i as f64 * 0.37).cos()).collect();
    // Chunks of 2 samples: the column-major B×2 state splits by rows.
    let zr = &z0;
    let chunk = |c: usize| -> Vec<f64> {
        [0, 1].iter().flat_map(|&j| (0..2).map(move |r| zr[2 * c + r + 6 * j])).collect()
    };
    let z0s: Vec<Vec<f64>> = (0..3).map(chunk).collect();
    let make = |_c: usize| {
        let mut f = mlp_field(2);
        f.params_mut().copy_from_slice(&params);
        Ok(f)
    };
    let sq = |zs: &[Vec<f64>]| {
        let last = zs.len() - 1;
        let v = zs[last].iter().map(|x| x * x).sum::<f64>();
        let mut g: Vec<Vec<f64>> = zs.iter().map(|z| vec![0.0; z.len()]).collect();
        g[last] = zs[last].iter().map(|x| 2.0 * x).collect();
        (v, g)
    };
    let ts = [0.0, 0.6, 1.2];
    let opts = AdjointOptions::new(Options::new(Method::Rk4).step_size(0.05));
    let reference = gradient(&whole, &z0, &ts, &sq, Strategy::Backsolve, &opts).unwrap();
    let mut runs = Vec::new();
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        runs.push(
            pool.install(|| {
                gradient_chunks(make, &z0s, &ts, |_, zs| sq(zs), Strategy::Backsolve, &opts)
            })
            .unwrap(),
        );
    }
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[0], runs[2]);
    // Fixed steps: chunks and the whole batch differ only by rounding.
    assert!((runs[0].loss - reference.loss).abs() < 1e-12);
    assert!(rel(&runs[0].params, &reference.params) < 1e-12);
}
