//! Gradient checks: the negative ELBO's gradient against central finite differences, for
//! `cargo xtask gradcheck` and the tests.

use crate::adjoint::{AdjointOptions, Strategy};
use crate::autodiff::layers::Activation;
use crate::data::{Example, Series};
use crate::ode_solvers::{Method, Options};
use crate::{
    DecoderKind, EncoderKind, Error, Evolution, ForecastConfig, Forecaster, LatentConfig, LatentOde,
};

/// The small model the gradient checks use: latent 3, widths 4–6, tanh, learnt noise, two
/// `z0` samples, `β = 0.7`, `z0` at each series' first observation, Dopri5 at 1e-11.
pub fn config(encoder: EncoderKind, decoder: DecoderKind, strategy: Strategy) -> LatentConfig {
    let mut c = LatentConfig::chen(2);
    c.latent_dim = 3;
    c.encoder = encoder;
    c.decoder = decoder;
    c.encoder_hidden = 5;
    c.encoder_field_hidden = vec![4];
    c.field_hidden = vec![6];
    c.field_activation = Activation::Tanh;
    c.output_hidden = vec![5];
    c.output_activation = Activation::Tanh;
    c.learn_obs_std = true;
    c.kl_weight = 0.7;
    c.samples = 2;
    c.time_origin = None;
    c.solver = AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-11).atol(1e-11));
    c.strategy = strategy;
    c
}

/// The checks' series: 2 values, a missing entry in each column, targets before and after
/// the observations.
pub fn example() -> Result<Example, Error> {
    let obs = Series::new(
        "check",
        2,
        vec![0.3, 0.7, 1.0, 1.6],
        &[
            vec![Some(0.5), Some(-0.2)],
            vec![None, Some(0.1)],
            vec![Some(0.9), Some(0.4)],
            vec![Some(0.2), None],
        ],
    )?;
    let target = Series::new(
        "check",
        2,
        vec![0.1, 1.3, 2.0],
        &[vec![Some(0.3), None], vec![Some(0.6), Some(0.0)], vec![None, Some(-0.3)]],
    )?;
    Ok(Example { obs, target })
}

/// The largest relative error `|fd − g| / (10⁻³ + max(|fd|, |g|))` over every parameter
/// between the model's gradient of `example`'s loss (noise `eps`, weight `beta`) and
/// central differences with step `h`. The model's parameters are restored.
pub fn elbo_gradient_error(
    model: &mut LatentOde,
    example: &Example,
    eps: &[f64],
    beta: f64,
    h: f64,
) -> Result<f64, Error> {
    worst_error(model, h, LatentOde::params, LatentOde::set_params, &mut |m, g| {
        Ok(m.example_loss(example, eps, beta, g)?.loss)
    })
}

/// The central-difference check shared by both model kinds: `loss(model, Some(grad))`
/// adds the gradient into `grad`, `loss(model, None)` only evaluates.
fn worst_error<M>(
    model: &mut M,
    h: f64,
    params: fn(&M) -> Vec<f64>,
    set_params: fn(&mut M, &[f64]) -> Result<(), Error>,
    loss: &mut dyn FnMut(&mut M, Option<&mut [f64]>) -> Result<f64, Error>,
) -> Result<f64, Error> {
    if !(h.is_finite() && h > 0.0) {
        return Err(Error::InvalidArgument {
            what: "step",
            detail: format!("{h} must be positive"),
        });
    }
    let p0 = params(model);
    let mut g = vec![0.0; p0.len()];
    loss(model, Some(&mut g))?;
    let mut worst: f64 = 0.0;
    let mut p = p0.clone();
    for i in 0..p0.len() {
        p[i] = p0[i] + h;
        set_params(model, &p)?;
        let up = loss(model, None);
        p[i] = p0[i] - h;
        set_params(model, &p)?;
        let dn = loss(model, None);
        p[i] = p0[i];
        let (up, dn) = match (up, dn) {
            (Ok(u), Ok(d)) => (u, d),
            (Err(e), _) | (_, Err(e)) => {
                set_params(model, &p0)?;
                return Err(e);
            }
        };
        let fd = (up - dn) / (2.0 * h);
        worst = worst.max((fd - g[i]).abs() / (1e-3 + fd.abs().max(g[i].abs())));
    }
    set_params(model, &p0)?;
    Ok(worst)
}

/// The small forecaster the gradient checks use: hidden 5, widths 4–5, tanh output,
/// learnt noise, `h = 0` at `t = 0` (before the first observation, so the first stretch
/// is solved too), Dopri5 at 1e-11.
pub fn forecast_config(evolution: Evolution, strategy: Strategy) -> ForecastConfig {
    let mut c = ForecastConfig::new(2, evolution);
    c.hidden = 5;
    c.field_hidden = vec![4];
    c.output_hidden = vec![5];
    c.output_activation = Activation::Tanh;
    c.time_origin = Some(0.0);
    c.solver = AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-11).atol(1e-11));
    c.strategy = strategy;
    c
}

/// [`elbo_gradient_error`] for a [`Forecaster`]'s loss (its negative log-likelihood).
pub fn forecast_gradient_error(
    model: &mut Forecaster,
    example: &Example,
    h: f64,
) -> Result<f64, Error> {
    worst_error(model, h, Forecaster::params, Forecaster::set_params, &mut |m, g| {
        Ok(m.example_loss(example, g)?.loss)
    })
}
