//! The density baselines against closed forms, and the bits-per-dimension conversion.

use cnf::autodiff::Rng;
use cnf::{bits_per_dim, dequantize, Gaussian, Kde};

#[test]
fn the_gaussian_fits_mean_and_covariance_and_has_the_closed_form_density() {
    // Points (±1, ±2): mean 0, covariance diag(1, 4).
    let rows = vec![vec![1.0, 2.0], vec![-1.0, 2.0], vec![1.0, -2.0], vec![-1.0, -2.0]];
    let g = Gaussian::fit(&rows, 0.0).unwrap();
    let x = [0.5, -1.0];
    let expected = -0.5 * (0.25 + 0.25) - 0.5 * (4.0f64).ln() - (2.0 * std::f64::consts::PI).ln();
    assert!((g.log_density(&x).unwrap() - expected).abs() < 1e-12);
    // Rank-deficient data needs the ridge.
    let flat = vec![vec![1.0, 1.0], vec![2.0, 2.0], vec![3.0, 3.0]];
    assert!(Gaussian::fit(&flat, 0.0).is_err());
    assert!(Gaussian::fit(&flat, 1e-6).is_ok());
}

#[test]
fn the_kde_integrates_to_one_and_selects_a_sensible_bandwidth() {
    let mut rng = Rng::new(1);
    let pts: Vec<Vec<f64>> = (0..200).map(|_| vec![rng.normal()]).collect();
    let valid: Vec<Vec<f64>> = (0..200).map(|_| vec![rng.normal()]).collect();
    let k = Kde::new(&pts, 0.3).unwrap();
    let mass: f64 = (0..4000)
        .map(|i| -8.0 + 16.0 * (i as f64 + 0.5) / 4000.0)
        .map(|x| k.log_density(&[x]).unwrap().exp() * 16.0 / 4000.0)
        .sum();
    assert!((mass - 1.0).abs() < 1e-6, "mass {mass}");
    let cands = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0];
    let best = Kde::select(&pts, &valid, &cands).unwrap();
    // Silverman's rule for 200 standard normal points gives about 0.35.
    assert!(best.bandwidth == 0.3 || best.bandwidth == 1.0, "{}", best.bandwidth);
}

#[test]
fn dequantised_uniform_levels_are_log2_levels_bits_per_dim() {
    let mut rng = Rng::new(2);
    let v: Vec<Vec<f64>> = (0..100).map(|i| vec![(i % 17) as f64, ((i * 7) % 17) as f64]).collect();
    let x = dequantize(&v, 17, &mut rng).unwrap();
    assert!(x.iter().flatten().all(|&u| (0.0..1.0).contains(&u)));
    for (a, b) in x.iter().flatten().zip(v.iter().flatten()) {
        assert_eq!((a * 17.0).floor(), *b);
    }
    // The uniform density on [0, 1)² has NLL 0: log₂ 17 bits per dimension.
    assert!((bits_per_dim(0.0, 2, 17) - 17f64.log2()).abs() < 1e-12);
    assert!(dequantize(&[vec![17.0]], 17, &mut rng).is_err());
    assert!(dequantize(&[vec![1.5]], 17, &mut rng).is_err());
}
