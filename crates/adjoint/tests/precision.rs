//! Single precision: an `AutodiffField<f32>` solved and differentiated in `f32` by every
//! strategy gives the gradients of the `f64` field to the accuracy `f32` and the
//! tolerance allow, and a gradient that is not finite is still an error.

use adjoint::autodiff::layers::{ConcatSquash, Linear};
use adjoint::autodiff::{Graph, Rng};
use adjoint::{gradient, AdjointOptions, AutodiffField, Error, Float, Strategy};
use ode_solvers::{Method, Options};

/// A ConcatSquash-tanh-Linear field on a batch of 2-d states, in precision `T`.
fn mlp<T: Float>(batch: usize) -> AutodiffField<T> {
    let mut g = Graph::new();
    let z = g.input(batch, 2);
    let t = g.input(1, 1);
    let mut rng = Rng::new(4);
    let l1 = ConcatSquash::new(&mut g, "l1", 2, 16, &mut rng).unwrap();
    let h = l1.forward(&mut g, z, t).unwrap();
    let h = g.tanh(h).unwrap();
    let out = Linear::new(&mut g, "l2", 16, 2, &mut rng).unwrap().forward(&mut g, h).unwrap();
    AutodiffField::<T>::from_graph(g, out).unwrap()
}

/// `Σ_i Σ z(t_i)²` and its cotangents.
fn sum_of_squares<T: Float>(zs: &[Vec<T>]) -> (f64, Vec<Vec<T>>) {
    let value = zs.iter().flatten().map(|&x| x.to_f64_lossless().powi(2)).sum();
    (value, zs.iter().map(|z| z.iter().map(|&x| x + x).collect()).collect())
}

fn rel(a: &[f32], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0.0f64, |m, (&x, y)| m.max((f64::from(x) - y).abs())) / scale
}

#[test]
fn f32_gradients_match_the_f64_gradients_for_every_strategy() {
    let batch = 64;
    let z0: Vec<f64> = (0..2 * batch).map(|i| 1.5 * (i as f64 * 0.37).sin()).collect();
    let z0_32: Vec<f32> = z0.iter().map(|&x| x as f32).collect();
    let ts = [0.0, 0.5, 1.0];
    let ts_32 = [0.0f32, 0.5, 1.0];
    let (wide, narrow) = (mlp::<f64>(batch), mlp::<f32>(batch));
    let tight = AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-11).atol(1e-11));
    let reference = gradient(&wide, &z0, &ts, &sum_of_squares, Strategy::Direct, &tight).unwrap();
    let opts = AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-5).atol(1e-5));
    for strategy in Strategy::all() {
        let g = gradient(&narrow, &z0_32, &ts_32, &sum_of_squares, strategy, &opts).unwrap();
        let f64_at_same_tol = gradient(&wide, &z0, &ts, &sum_of_squares, strategy, &opts).unwrap();
        let (ez, ep) = (rel(&g.z0, &reference.z0), rel(&g.params, &reference.params));
        let wide_z = f64_at_same_tol.z0.iter().zip(&reference.z0);
        let wide_err = wide_z.fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
            / reference.z0.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        eprintln!(
            "{strategy}: f32 rel. error z0 {ez:.2e} θ {ep:.2e} (f64 at the same tolerance: \
             z0 {wide_err:.2e}), NFE {}+{} (f64 {}+{})",
            g.nfe_forward,
            g.nfe_backward,
            f64_at_same_tol.nfe_forward,
            f64_at_same_tol.nfe_backward
        );
        // Measured: 4e-7 to 9e-6 (f64 at the same tolerance 4e-7 to 5e-7).
        assert!(ez < 5e-5 && ep < 5e-5, "{strategy}: z0 {ez:.2e}, θ {ep:.2e}");
        assert!((g.loss - reference.loss).abs() < 1e-4 * reference.loss);
    }
}

#[test]
fn an_f32_gradient_that_overflows_is_an_error() {
    // f32 overflows at 3.4e38: a state of 1e19 squares past it in the loss's cotangent
    // chain, and the gradient must come back as an error, never as an infinity.
    let narrow = mlp::<f32>(2);
    let z0 = [1e19f32, 0.0, 0.0, 0.0];
    let loss = |zs: &[Vec<f32>]| {
        (1.0, zs.iter().map(|z| z.iter().map(|&x| x * x * x).collect()).collect::<Vec<_>>())
    };
    let opts = AdjointOptions::new(Options::new(Method::Rk4).step_size(0.5));
    for strategy in Strategy::all() {
        let got = gradient(&narrow, &z0, &[0.0, 1.0], &loss, strategy, &opts);
        assert!(
            matches!(got, Err(Error::NonFiniteLoss | Error::NonFiniteGradient { .. })),
            "{strategy}: {got:?}"
        );
    }
}
