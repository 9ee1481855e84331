//! Gradients of the negative ELBO against central finite differences, thread-count
//! independence, missing entries, and prediction.

use latent_ode::adjoint::{AdjointOptions, Strategy};
use latent_ode::autodiff::Rng;
use latent_ode::ode_solvers::{Method, Options};
use latent_ode::train::{Model, Replicas};
use latent_ode::*;

fn small(encoder: EncoderKind, decoder: DecoderKind, strategy: Strategy) -> LatentConfig {
    check::config(encoder, decoder, strategy)
}

fn example() -> Example {
    check::example().unwrap()
}

fn check_gradient(cfg: LatentConfig, tol: f64) {
    let mut m = LatentOde::new(cfg.clone(), &mut Rng::new(3)).unwrap();
    let mut ex = example();
    if cfg.decoder == DecoderKind::Rnn {
        // The RNN decoder steps forward from the first observation.
        ex.target = ex.target.select(&[1, 2]).unwrap();
    }
    let eps: Vec<f64> = (0..cfg.samples * cfg.latent_dim).map(|i| 0.3 * (i as f64) - 0.4).collect();
    let worst = check::elbo_gradient_error(&mut m, &ex, &eps, 0.7, 1e-5).unwrap();
    assert!(
        worst < tol,
        "{:?}/{:?}/{:?}: worst relative error {worst:.2e}",
        cfg.encoder,
        cfg.decoder,
        cfg.strategy
    );
}

#[test]
fn elbo_gradient_matches_finite_differences_for_every_encoder_and_strategy() {
    for enc in [EncoderKind::Rnn, EncoderKind::Gru, EncoderKind::OdeRnn] {
        check_gradient(small(enc, DecoderKind::Ode, Strategy::Backsolve), 1e-5);
    }
    for s in [Strategy::Checkpointed, Strategy::Direct] {
        check_gradient(small(EncoderKind::OdeRnn, DecoderKind::Ode, s), 1e-5);
    }
}

#[test]
fn rnn_decoder_gradient_matches_finite_differences() {
    check_gradient(small(EncoderKind::Gru, DecoderKind::Rnn, Strategy::Backsolve), 1e-6);
}

#[test]
fn replicas_give_the_same_loss_and_gradient_for_any_thread_count() {
    let cfg = {
        let mut c = small(EncoderKind::Rnn, DecoderKind::Ode, Strategy::Backsolve);
        c.solver = AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-5).atol(1e-6));
        c
    };
    let mut rng = Rng::new(1);
    let data: Vec<Example> =
        spirals(12, 20, 0.1, &mut rng).unwrap().into_iter().map(|s| s.example).collect();
    let eps: Vec<Vec<f64>> = (0..12).map(|_| (0..6).map(|_| rng.normal()).collect()).collect();
    let batch = SeriesBatch { examples: data, eps };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let copies =
                (0..3).map(|_| LatentOde::new(cfg.clone(), &mut Rng::new(5)).unwrap()).collect();
            let mut r = Replicas::new(copies).unwrap();
            let mut g = vec![0.0; r.num_params()];
            let rep = r.loss_and_grad(&batch, &mut g).unwrap();
            (rep.loss, g)
        })
    };
    let (l1, g1) = run(1);
    let (l2, g2) = run(2);
    assert_eq!(l1.to_bits(), l2.to_bits());
    assert!(g1.iter().zip(&g2).all(|(a, b)| a.to_bits() == b.to_bits()));
    // And the replicas' mean equals one model over the whole batch (equal chunks).
    let mut one = LatentOde::new(cfg.clone(), &mut Rng::new(5)).unwrap();
    let mut g = vec![0.0; one.num_params()];
    let whole = one.batch_loss_grad(&batch.examples, &batch.eps, &mut g).unwrap();
    assert!((whole.loss - l1).abs() < 1e-12 * whole.loss.abs().max(1.0));
}

#[test]
fn prediction_quantiles_bracket_the_mean_and_samples_zero_is_the_posterior_mean() {
    let cfg = small(EncoderKind::Gru, DecoderKind::Ode, Strategy::Backsolve);
    let mut m = LatentOde::new(cfg, &mut Rng::new(2)).unwrap();
    let ex = example();
    let p = m.predict(&ex.obs, &[2.0, 0.1, 1.3, 1.3], 50, &mut Rng::new(9)).unwrap();
    assert_eq!(p.times, [0.1, 1.3, 2.0]);
    for k in 0..3 {
        for j in 0..2 {
            assert!(p.lower[k][j] <= p.mean[k][j] && p.mean[k][j] <= p.upper[k][j]);
            assert!(p.upper[k][j] > p.lower[k][j]);
        }
    }
    let a = m.predict(&ex.obs, &[1.3], 0, &mut Rng::new(1)).unwrap();
    let b = m.predict(&ex.obs, &[1.3], 0, &mut Rng::new(2)).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.lower, a.mean);
}

#[test]
fn long_csv_round_trips_with_missing_entries_and_any_row_order() {
    let ex = example();
    let text = long_csv(std::slice::from_ref(&ex));
    let back = parse_long_csv(&text).unwrap();
    assert_eq!(back, vec![ex.clone()]);
    // Shuffled rows, no header.
    let mut lines: Vec<&str> = text.lines().skip(1).collect();
    lines.reverse();
    assert_eq!(parse_long_csv(&lines.join("\n")).unwrap(), vec![ex]);
}

#[test]
fn interpolation_baselines_are_exact_on_lines_and_cubic_on_smooth_curves() {
    let ts: Vec<f64> = (0..8).map(|i| i as f64 * 0.5).collect();
    let line =
        Series::dense("l", ts.clone(), &ts.iter().map(|t| vec![2.0 * t - 1.0]).collect::<Vec<_>>())
            .unwrap();
    let q = [0.25, 1.1, 3.3];
    for kind in [Interpolation::Linear, Interpolation::CubicSpline] {
        let v = interpolate(&line, &q, kind).unwrap();
        for (k, t) in q.iter().enumerate() {
            assert!((v[k][0] - (2.0 * t - 1.0)).abs() < 1e-12);
        }
    }
    let sine =
        Series::dense("s", ts.clone(), &ts.iter().map(|t| vec![t.sin()]).collect::<Vec<_>>())
            .unwrap();
    let lin = interpolate(&sine, &[1.75], Interpolation::Linear).unwrap()[0][0];
    let cub = interpolate(&sine, &[1.75], Interpolation::CubicSpline).unwrap()[0][0];
    assert!((cub - 1.75f64.sin()).abs() < (lin - 1.75f64.sin()).abs() / 3.0);
}

#[test]
fn per_series_and_union_of_times_batches_agree_to_solver_tolerance() {
    // Spirals, each with its own 20 observed times: the union has ~100 times.
    let mut rng = Rng::new(4);
    let data: Vec<Example> =
        spirals(8, 20, 0.1, &mut rng).unwrap().into_iter().map(|s| s.example).collect();
    let mut cfg = small(EncoderKind::Gru, DecoderKind::Ode, Strategy::Backsolve);
    cfg.time_origin = Some(0.0);
    let eps: Vec<Vec<f64>> =
        (0..8).map(|_| (0..cfg.samples * cfg.latent_dim).map(|_| rng.normal()).collect()).collect();
    let mut m = LatentOde::new(cfg, &mut Rng::new(6)).unwrap();
    let n = m.num_params();
    let (mut g1, mut g2) = (vec![0.0; n], vec![0.0; n]);
    let a = m.batch_loss_grad(&data, &eps, &mut g1).unwrap();
    let b = m.union_batch_loss_grad(&data, &eps, &mut g2).unwrap();
    assert!((a.loss - b.loss).abs() < 1e-7 * a.loss.abs(), "{} vs {}", a.loss, b.loss);
    assert!((a.kl - b.kl).abs() < 1e-12 * a.kl.abs().max(1.0));
    let norm = g1.iter().map(|x| x * x).sum::<f64>().sqrt();
    let diff = g1.iter().zip(&g2).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    assert!(diff < 1e-6 * norm, "gradient differs by {:.2e} of its norm", diff / norm);
}

#[test]
fn forecaster_gradients_match_finite_differences_for_every_evolution() {
    let ex = check::example().unwrap();
    for (ev, s) in [
        (Evolution::Ode, Strategy::Backsolve),
        (Evolution::Ode, Strategy::Direct),
        (Evolution::Delta, Strategy::Backsolve),
        (Evolution::Decay, Strategy::Backsolve),
    ] {
        let mut m = Forecaster::new(check::forecast_config(ev, s), &mut Rng::new(3)).unwrap();
        let err = check::forecast_gradient_error(&mut m, &ex, 1e-4).unwrap();
        assert!(err < 1e-5, "{ev:?} {s:?}: {err:e}");
    }
}

#[test]
fn forecaster_predictions_are_the_states_the_loss_scores_and_training_lowers_it() {
    // The prediction at an observation's time comes from the state before its update:
    // the loss's squared error over the observed entries equals predict()'s.
    let data: Vec<Series> = periodic(24, &mut Rng::new(4)).unwrap();
    let examples: Vec<Example> =
        data.iter().map(|s| hold_out(s, 0.5, &mut Rng::new(6)).unwrap()).collect();
    for ev in [Evolution::Ode, Evolution::Delta, Evolution::Decay] {
        let mut cfg = check::forecast_config(ev, Strategy::Backsolve);
        cfg.obs_dim = 1;
        cfg.solver = AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-6).atol(1e-7));
        let mut m = Forecaster::new(cfg, &mut Rng::new(8)).unwrap();
        let ex = &examples[0];
        let loss = m.example_loss(&Example::observed(ex.obs.clone()), None).unwrap();
        let p = m.predict(&ex.obs, &ex.obs.times).unwrap();
        let mse: f64 = (0..ex.obs.len())
            .map(|i| (p.mean[i][0] - ex.obs.get(i, 0).unwrap()).powi(2))
            .sum::<f64>()
            / ex.obs.len() as f64;
        assert!((mse - loss.mse).abs() < 1e-12 * mse.max(1.0), "{ev:?}: {mse} vs {}", loss.mse);
        assert!(p.lower[0][0] < p.mean[0][0] && p.mean[0][0] < p.upper[0][0]);
        // Fifty Adam steps on the batch lower its loss.
        let mut adam =
            latent_ode::autodiff::optim::Adam::new(latent_ode::autodiff::optim::AdamConfig {
                lr: 1e-2,
                ..Default::default()
            });
        let mut g = vec![0.0; m.num_params()];
        let first = m.batch_loss_grad(&examples, &mut g).unwrap().loss;
        let mut params = m.params();
        for _ in 0..50 {
            m.batch_loss_grad(&examples, &mut g).unwrap();
            latent_ode::autodiff::optim::Optimizer::step(&mut adam, &mut params, &g).unwrap();
            m.set_params(&params).unwrap();
        }
        let last = m.batch_loss_grad(&examples, &mut g).unwrap().loss;
        assert!(last < first - 1.0, "{ev:?}: {first} -> {last}");
    }
}
