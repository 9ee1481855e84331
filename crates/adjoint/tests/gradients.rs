//! Every strategy's gradients (initial state, parameters, times) against central finite
//! differences in f64, and against each other, on a linear system and an MLP field, with
//! losses at one and several times.

use adjoint::{
    gradient, AdjointOptions, AutodiffField, ClosureField, Error, Gradients, Strategy, VectorField,
};
use autodiff::layers::{ConcatSquash, Linear};
use autodiff::{Graph, Rng};
use ode_solvers::{odeint, Method, OdeSystem, Options};

/// The test loss: L = Σ_i w_i·z(t_i) + ½ Σ_i ‖z(t_i)‖² / n (losses at every output time).
pub fn loss(zs: &[Vec<f64>]) -> (f64, Vec<Vec<f64>>) {
    let n = zs.len() as f64;
    let mut value = 0.0;
    let grads = zs
        .iter()
        .enumerate()
        .map(|(i, z)| {
            z.iter()
                .enumerate()
                .map(|(j, &x)| {
                    let w = ((i * 7 + j * 3) as f64).sin();
                    value += w * x + 0.5 * x * x / n;
                    w + x / n
                })
                .collect()
        })
        .collect();
    (value, grads)
}

/// The field as an `OdeSystem`, for reference solves.
pub struct Sys<'a, F>(&'a F);
impl<F: VectorField> OdeSystem<f64> for Sys<'_, F> {
    fn rhs(&self, t: f64, y: &[f64], dy: &mut [f64]) {
        self.0.eval(t, y, dy)
    }
}

/// The loss of a plain forward solve.
pub fn loss_of<F: VectorField>(field: &F, z0: &[f64], ts: &[f64], opts: &Options) -> f64 {
    loss(&odeint(&Sys(field), z0, ts, opts).unwrap().ys).0
}

/// Central differences of the loss in z0, θ (through `set`) and the times.
pub fn finite_differences<F: VectorField>(
    field: &mut F,
    set: fn(&mut F, usize, f64),
    z0: &[f64],
    ts: &[f64],
    opts: &Options,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let h = 1e-6;
    let mut z = z0.to_vec();
    let dz = (0..z.len())
        .map(|i| {
            z[i] = z0[i] + h;
            let lp = loss_of(field, &z, ts, opts);
            z[i] = z0[i] - h;
            let lm = loss_of(field, &z, ts, opts);
            z[i] = z0[i];
            (lp - lm) / (2.0 * h)
        })
        .collect();
    let p0 = field.params().to_vec();
    let dp = (0..p0.len())
        .map(|i| {
            set(field, i, p0[i] + h);
            let lp = loss_of(field, z0, ts, opts);
            set(field, i, p0[i] - h);
            let lm = loss_of(field, z0, ts, opts);
            set(field, i, p0[i]);
            (lp - lm) / (2.0 * h)
        })
        .collect();
    let mut t = ts.to_vec();
    let dt = (0..t.len())
        .map(|i| {
            t[i] = ts[i] + h;
            let lp = loss_of(field, z0, &t, opts);
            t[i] = ts[i] - h;
            let lm = loss_of(field, z0, &t, opts);
            t[i] = ts[i];
            (lp - lm) / (2.0 * h)
        })
        .collect();
    (dz, dp, dt)
}

/// Largest absolute difference relative to `b`'s largest entry (at least 1e-3).
pub fn rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().map(|x| x.abs()).fold(1e-3, f64::max);
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

/// A 3-d linear system `A z + θ₉ sin t` with `θ = (A row-major, θ₉)`.
pub fn linear_field(
    seed: u64,
) -> ClosureField<
    impl Fn(f64, &[f64], &[f64], &mut [f64]),
    impl Fn(f64, &[f64], &[f64], &[f64], &mut [f64], &mut [f64]) -> f64,
> {
    let d = 3;
    let mut rng = Rng::new(seed);
    // A = random/2 plus a rotation, row-major in θ; plus a time-dependent forcing θ_9 sin t.
    let mut theta: Vec<f64> = (0..d * d).map(|_| 0.5 * rng.normal()).collect();
    theta[1] += 1.0;
    theta[3] -= 1.0;
    theta.push(0.3);
    ClosureField::new(
        d,
        theta,
        move |t, z: &[f64], p: &[f64], dz: &mut [f64]| {
            for i in 0..d {
                dz[i] = (0..d).map(|j| p[i * d + j] * z[j]).sum::<f64>() + p[d * d] * t.sin();
            }
        },
        move |t, z: &[f64], p: &[f64], a: &[f64], vz: &mut [f64], vp: &mut [f64]| {
            for j in 0..d {
                vz[j] = (0..d).map(|i| a[i] * p[i * d + j]).sum();
            }
            for i in 0..d {
                for j in 0..d {
                    vp[i * d + j] = a[i] * z[j];
                }
            }
            vp[d * d] = a.iter().sum::<f64>() * t.sin();
            a.iter().sum::<f64>() * p[d * d] * t.cos()
        },
    )
}

/// Each strategy's gradients with their relative errors `[z0, θ, times]` against central
/// finite differences of a tight reference solve (Dop853 at 1e-13); the strategies run
/// Dopri5 at rtol = atol = 1e-12.
pub fn strategy_errors<F: VectorField>(
    field: &mut F,
    set: fn(&mut F, usize, f64),
    z0: &[f64],
    ts: &[f64],
) -> Vec<(Strategy, Gradients, [f64; 3])> {
    let tight = Options::new(Method::Dop853).rtol(1e-13).atol(1e-13);
    let (dz, dp, dt) = finite_differences(field, set, z0, ts, &tight);
    let opts = AdjointOptions::new(
        Options::new(Method::Dopri5).rtol(1e-12).atol(1e-12).max_steps(1_000_000),
    );
    [Strategy::Backsolve, Strategy::Checkpointed, Strategy::Direct]
        .into_iter()
        .map(|strategy| {
            let g = gradient(field, z0, ts, &loss, strategy, &opts).unwrap();
            let errs = [rel(&g.z0, &dz), rel(&g.params, &dp), rel(&g.times, &dt)];
            (strategy, g, errs)
        })
        .collect()
}

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

/// A ConcatSquash(2→8, tanh) → Linear(8→2) field with a time input.
pub fn mlp_field(batch: usize) -> AutodiffField {
    let mut g = Graph::new();
    let z = g.input(batch, 2);
    let t = g.input(1, 1);
    let mut rng = Rng::new(4);
    let l1 = ConcatSquash::new(&mut g, "l1", 2, 8, &mut rng);
    let h = l1.forward(&mut g, z, t).unwrap();
    let h = g.tanh(h).unwrap();
    let out = Linear::new(&mut g, "l2", 8, 2, &mut rng).forward(&mut g, h).unwrap();
    AutodiffField::new(g, out).unwrap()
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
