//! `cargo xtask gradcheck` (latent-ode part): the full negative ELBO's gradient (encoder,
//! `q(z0)` sampling, ODE or RNN decoder, output network, learnt noise, KL) against central
//! finite differences in f64, for every encoder, both decoders and every adjoint strategy,
//! on a series with missing entries and targets before and after its observations; then
//! the forward-reading forecasters' (ODE-RNN with each strategy, RNN-Δt, GRU-D) negative
//! log-likelihood.
//! Exits 1 if any relative error exceeds 1e-5.

use latent_ode::adjoint::Strategy;
use latent_ode::autodiff::Rng;
use latent_ode::{check, DecoderKind, EncoderKind, Evolution, Forecaster, LatentOde};

const TOL: f64 = 1e-5;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("latent-gradcheck: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<bool, latent_ode::Error> {
    if std::env::args().len() > 1 {
        return Err(latent_ode::Error::InvalidArgument {
            what: "arguments",
            detail: "latent-gradcheck takes none".into(),
        });
    }
    let base = check::example()?;
    println!(
        "{:<8} {:<5} {:<13} {:>7} {:>16}",
        "encoder", "dec", "strategy", "params", "max rel. error"
    );
    let mut ok = true;
    let encoders = [EncoderKind::Rnn, EncoderKind::Gru, EncoderKind::OdeRnn];
    let strategies = [Strategy::Backsolve, Strategy::Checkpointed, Strategy::Direct];
    for enc in encoders {
        for dec in [DecoderKind::Ode, DecoderKind::Rnn] {
            for strategy in strategies {
                if dec == DecoderKind::Rnn
                    && enc != EncoderKind::OdeRnn
                    && strategy != Strategy::Backsolve
                {
                    continue; // no ODE anywhere: the strategy plays no part
                }
                let c = check::config(enc, dec, strategy);
                let mut m = LatentOde::new(c.clone(), &mut Rng::new(3))?;
                let mut ex = base.clone();
                if dec == DecoderKind::Rnn {
                    ex.target = ex.target.select(&[1, 2])?;
                }
                let eps: Vec<f64> = (0..6).map(|i| 0.3 * i as f64 - 0.4).collect();
                let err = check::elbo_gradient_error(&mut m, &ex, &eps, 0.7, 1e-5)?;
                ok &= err <= TOL;
                println!(
                    "{:<8} {:<5} {:<13} {:>7} {:>16.2e}{}",
                    format!("{enc:?}"),
                    format!("{dec:?}"),
                    format!("{strategy:?}"),
                    m.num_params(),
                    err,
                    if err <= TOL { "" } else { "  FAIL" }
                );
            }
        }
    }
    // The forward-reading forecasters (ODE-RNN, RNN-Δt, GRU-D): their negative
    // log-likelihood of the same series' observations (one step ahead) and targets.
    let forecasters = [
        (Evolution::Ode, Strategy::Backsolve),
        (Evolution::Ode, Strategy::Checkpointed),
        (Evolution::Ode, Strategy::Direct),
        (Evolution::Delta, Strategy::Backsolve),
        (Evolution::Decay, Strategy::Backsolve),
    ];
    for (evolution, strategy) in forecasters {
        let mut m = Forecaster::new(check::forecast_config(evolution, strategy), &mut Rng::new(3))?;
        // Step 1e-4: these losses have no solver error at 1e-11 to hide, and the
        // round-off of a 1e-5 step (1e-6 relative here) is above the truncation error.
        let err = check::forecast_gradient_error(&mut m, &base, 1e-4)?;
        ok &= err <= TOL;
        let name = match evolution {
            Evolution::Ode => "ode-rnn",
            Evolution::Delta => "rnn-dt",
            Evolution::Decay => "gru-d",
        };
        println!(
            "{:<8} {:<5} {:<13} {:>7} {:>16.2e}{}",
            name,
            "-",
            format!("{strategy:?}"),
            m.num_params(),
            err,
            if err <= TOL { "" } else { "  FAIL" }
        );
    }
    println!("negative ELBO / NLL gradients: {}", if ok { "all within 1e-5" } else { "FAILED" });
    Ok(ok)
}
