//! Shared by the adjoint tests and `examples/gradcheck.rs`: the test loss, fields, and
//! central finite differences.

use adjoint::{
    gradient, AdjointOptions, AutodiffField, ClosureField, Gradients, Strategy, VectorField,
};
use autodiff::layers::{ConcatSquash, Linear};
use autodiff::{Graph, Rng};
use ode_solvers::{odeint, Method, Options};

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

/// The loss of a plain forward solve.
pub fn loss_of<F: VectorField>(field: &F, z0: &[f64], ts: &[f64], opts: &Options) -> f64 {
    loss(&odeint(field, z0, ts, opts).unwrap().ys).0
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
    )
    .time_gradients(true);
    Strategy::all()
        .into_iter()
        .map(|strategy| {
            let g = gradient(field, z0, ts, &loss, strategy, &opts).unwrap();
            let errs = [rel(&g.z0, &dz), rel(&g.params, &dp), rel(&g.times, &dt)];
            (strategy, g, errs)
        })
        .collect()
}

/// A ConcatSquash(2→8, tanh) → Linear(8→2) field with a time input.
pub fn mlp_field(batch: usize) -> AutodiffField {
    let mut g = Graph::new();
    let z = g.input(batch, 2);
    let t = g.input(1, 1);
    let mut rng = Rng::new(4);
    let l1 = ConcatSquash::new(&mut g, "l1", 2, 8, &mut rng).unwrap();
    let h = l1.forward(&mut g, z, t).unwrap();
    let h = g.tanh(h).unwrap();
    let out = Linear::new(&mut g, "l2", 8, 2, &mut rng).unwrap().forward(&mut g, h).unwrap();
    AutodiffField::new(g, out).unwrap()
}
