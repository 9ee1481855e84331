//! The model crates' remaining entry points: `cnf`'s and `latent-ode`'s `train::Model`
//! implementations, configs, datasets and accessors.

use super::super::*;
use super::model_buffer_cases;

fn cnf_api(s: &mut Suite) {
    use cnf::{
        log_normal, BaseSamples, ChainModel, Cnf, CnfChain, CnfConfig, FlowModel, MatchingModel,
        Objective, PlanarFlow, PlanarModel, PointBatch, Target,
    };
    let flow = || {
        let mut c = CnfConfig::ffjord(2, 3);
        c.field = cnf::FieldKind::ConcatSquash(vec![4]);
        Cnf::new(c, &mut Rng::new(0)).unwrap()
    };
    let batch = PointBatch { x: vec![0.1; 6], eps: vec![1.0; 6] };
    model_buffer_cases(s, "FlowModel", || FlowModel { flow: flow() }, &batch);
    model_buffer_cases(
        s,
        "ChainModel",
        || ChainModel { chain: CnfChain::new(vec![flow(), flow()]).unwrap() },
        &batch,
    );
    model_buffer_cases(
        s,
        "PlanarModel",
        || PlanarModel {
            flow: PlanarFlow::new(2, 2, &mut Rng::new(0)).unwrap(),
            objective: Objective::MaxLikelihood,
        },
        &batch,
    );
    model_buffer_cases(
        s,
        "MatchingModel",
        || MatchingModel { flow: flow(), target: Target::TwoMoons },
        &batch,
    );
    s.case("FlowModel::loss_and_grad", SHAPES, "a probe of another shape", || {
        let mut m = FlowModel { flow: flow() };
        let mut grad = vec![0.0; train::Model::num_params(&m)];
        let b = PointBatch { x: vec![0.1; 6], eps: vec![1.0; 5] };
        train::Model::loss_and_grad(&mut m, &b, &mut grad).is_err()
    });
    s.case("FlowModel::loss_and_grad", NONFINITE, "a NaN point", || {
        let mut m = FlowModel { flow: flow() };
        let mut grad = vec![0.0; train::Model::num_params(&m)];
        let b = PointBatch { x: vec![f64::NAN; 6], eps: vec![1.0; 6] };
        train::Model::loss_and_grad(&mut m, &b, &mut grad).is_err()
    });
    s.case("BaseSamples::batch", SIZES, "a dimension whose batch overflows", || {
        let d = BaseSamples { dim: usize::MAX, len: 4 };
        train::Dataset::batch(&d, &[0, 1], &mut Rng::new(0)).is_err()
    });
    s.case("BaseSamples::batch", SIZES, "index past the end", || {
        let d = BaseSamples { dim: 2, len: 4 };
        train::Dataset::batch(&d, &[9], &mut Rng::new(0)).is_err()
    });
    s.case("BaseSamples::batch", SIZES, "dimension 0", || {
        let d = BaseSamples { dim: 0, len: 4 };
        train::Dataset::batch(&d, &[0], &mut Rng::new(0)).is_err()
    });
    s.case("CnfConfig::ffjord", SIZES, "zero dimension and batch", || {
        Cnf::new(CnfConfig::ffjord(0, 0), &mut Rng::new(0)).is_err()
    });
    s.case("CnfConfig::ffjord", SIZES, "a dimension whose parameters overflow", || {
        Cnf::new(CnfConfig::ffjord(usize::MAX / 2, 1), &mut Rng::new(0)).is_err()
    });
    s.case("CnfConfig::rnode", SIZES, "zero dimension", || {
        Cnf::new(CnfConfig::rnode(0, 4), &mut Rng::new(0)).is_err()
    });
    s.case("CnfConfig::rnode", OPTIONS, "negative regulariser weights", || {
        let c = CnfConfig { lambda_kinetic: -1.0, ..CnfConfig::rnode(2, 4) };
        Cnf::new(c, &mut Rng::new(0)).is_err()
    });
    s.case("Cnf::draw_noise", SIZES, "the probe fits the flow's batch", || {
        let f = flow();
        let eps = f.draw_noise(&mut Rng::new(0));
        eps.len() == 6 && eps.iter().all(|v| v.is_finite()) && flow().set_noise(&eps).is_ok()
    });
    s.case("log_normal", NONFINITE, "NaN and infinite values", || {
        log_normal(&[f64::NAN]).is_nan() && log_normal(&[f64::INFINITY]) == f64::NEG_INFINITY
    });
    s.case("log_normal", SIZES, "an empty point: the 0-dimensional density", || {
        log_normal(&[]) == 0.0
    });
}

fn latent_api(s: &mut Suite) {
    use latent_ode::check::{config, forecast_config};
    use latent_ode::{
        long_csv, score, DecoderKind, EncoderKind, Evolution, Example, Examples, ForecastConfig,
        Forecaster, LatentConfig, LatentOde, Scaling, Series, SeriesBatch, SeriesModel,
    };
    fn invalid<T>(r: Result<T, latent_ode::Error>) -> bool {
        matches!(r, Err(latent_ode::Error::InvalidArgument { .. }))
    }
    let obs = Series::dense("a", vec![0.0, 0.5, 1.0], &[vec![1.0], vec![2.0], vec![0.5]]).unwrap();
    let ex =
        Example { obs: obs.clone(), target: Series::dense("a", vec![1.5], &[vec![0.0]]).unwrap() };
    let latent = || LatentOde::new(LatentConfig::chen(1), &mut Rng::new(0)).unwrap();
    let forecaster =
        || Forecaster::new(ForecastConfig::new(1, Evolution::Delta), &mut Rng::new(0)).unwrap();
    let batch = |m: &dyn Fn() -> usize| SeriesBatch {
        examples: vec![ex.clone()],
        eps: vec![vec![0.0; m()]],
    };
    let lb = batch(&|| latent().noise_len());
    let fb = batch(&|| forecaster().noise_len());
    model_buffer_cases(s, "LatentOde", latent, &lb);
    model_buffer_cases(s, "Forecaster", forecaster, &fb);
    s.case("LatentOde::loss_and_grad", SHAPES, "noise of the wrong length", || {
        let mut m = latent();
        let mut grad = vec![0.0; train::Model::num_params(&m)];
        let b = SeriesBatch { examples: vec![ex.clone()], eps: vec![vec![0.0; 1]] };
        train::Model::loss_and_grad(&mut m, &b, &mut grad).is_err()
    });
    s.case("LatentOde::set_step", SIZES, "step u64::MAX: the warm-up is over", || {
        let mut m = latent();
        m.set_step(u64::MAX);
        let mut grad = vec![0.0; train::Model::num_params(&m)];
        train::Model::loss_and_grad(&mut m, &lb, &mut grad).is_ok()
    });
    s.case("LatentConfig::beta", SIZES, "step u64::MAX and a zero warm-up", || {
        let mut c = LatentConfig::chen(1);
        c.kl_warmup = 1;
        let full = c.beta(u64::MAX) == c.kl_weight;
        c.kl_warmup = 0;
        full && c.beta(0) == c.kl_weight
    });
    s.case("LatentConfig::chen", SIZES, "zero observed dimensions", || {
        invalid(LatentOde::new(LatentConfig::chen(0), &mut Rng::new(0)))
    });
    s.case("LatentConfig::chen", SIZES, "dimensions whose parameters overflow", || {
        LatentOde::new(LatentConfig::chen(usize::MAX / 2), &mut Rng::new(0)).is_err()
    });
    s.case("ForecastConfig::new", SIZES, "zero observed dimensions", || {
        invalid(Forecaster::new(ForecastConfig::new(0, Evolution::Ode), &mut Rng::new(0)))
    });
    s.case("config", OPTIONS, "every encoder, decoder and strategy builds", || {
        [EncoderKind::Rnn, EncoderKind::Gru, EncoderKind::OdeRnn].iter().all(|&e| {
            [DecoderKind::Ode, DecoderKind::Rnn].iter().all(|&d| {
                Strategy::all()
                    .iter()
                    .all(|&st| LatentOde::new(config(e, d, st), &mut Rng::new(0)).is_ok())
            })
        })
    });
    s.case("forecast_config", OPTIONS, "every evolution and strategy builds", || {
        [Evolution::Ode, Evolution::Delta, Evolution::Decay].iter().all(|&e| {
            Strategy::all()
                .iter()
                .all(|&st| Forecaster::new(forecast_config(e, st), &mut Rng::new(0)).is_ok())
        })
    });
    for (ty, mut m) in [
        ("LatentOde", Box::new(latent()) as Box<dyn SeriesModel>),
        ("Forecaster", Box::new(forecaster())),
    ] {
        let name = |f: &str| -> &'static str { Box::leak(format!("{ty}::{f}").into_boxed_str()) };
        let two = Series::dense("b", vec![0.0], &[vec![1.0, 2.0]]).unwrap();
        s.case(name("predict_series"), SHAPES, "a series of another dim", || {
            invalid(m.predict_series(&two, &[1.0], 2, &mut Rng::new(0)))
        });
        s.case(name("predict_series"), NONFINITE, "a NaN time", || {
            invalid(m.predict_series(&obs, &[f64::NAN], 2, &mut Rng::new(0)))
        });
        s.case(name("predict_series"), SIZES, "zero samples: the posterior mean", || {
            m.predict_series(&obs, &[1.0], 0, &mut Rng::new(0))
                .is_ok_and(|p| p.mean.iter().flatten().all(|v| v.is_finite()))
        });
        // A forecaster is deterministic and ignores the sample count.
        s.case(name("predict_series"), SIZES, "a million samples", || {
            let r = m.predict_series(&obs, &[1.0], 1_000_000, &mut Rng::new(0));
            if ty == "LatentOde" {
                invalid(r)
            } else {
                r.is_ok()
            }
        });
        s.case(name("observation_loss"), SHAPES, "noise of the wrong length", || {
            invalid(m.observation_loss(&obs, &vec![0.0; m.noise_len() + 1]))
        });
        s.case(name("observation_loss"), SIZES, "an empty series", || {
            invalid(m.observation_loss(&Series::empty("e", 1), &vec![0.0; m.noise_len()]))
        });
    }
    s.case("Series::empty", SIZES, "dimension 0: refused when checked", || {
        Series::empty("e", 0).check().is_err()
    });
    s.case("Series::get", SIZES, "a column past the dimension", || {
        let two = Series::dense("b", vec![0.0, 1.0], &[vec![1.0, 2.0], vec![3.0, 4.0]]).unwrap();
        two.get(0, 2).is_none() && two.get(0, 1) == Some(2.0) && two.get(1, 0) == Some(3.0)
    });
    s.case("Series::get", SIZES, "usize::MAX indices", || {
        obs.get(usize::MAX, 0).is_none() && obs.get(0, usize::MAX).is_none()
    });
    s.case("Example::observed", SIZES, "an empty series: refused when checked", || {
        Example::observed(Series::empty("e", 1)).check().is_err()
    });
    s.case("long_csv", SIZES, "no examples: a header only", || long_csv(&[]).lines().count() == 1);
    s.case("long_csv", SHAPES, "examples of different dims: refused when read back", || {
        let two = Series::dense("b", vec![0.0], &[vec![1.0, 2.0]]).unwrap();
        let text = long_csv(&[ex.clone(), Example::observed(two)]);
        latent_ode::parse_long_csv(&text).is_err()
    });
    let scaling = Scaling { mean: vec![1.0], std: vec![2.0], time_scale: 1.0 };
    s.case("Scaling::check", SHAPES, "a width of 2 for 1", || invalid(scaling.check(2)));
    s.case("Scaling::check", NONFINITE, "a NaN mean", || {
        invalid(Scaling { mean: vec![f64::NAN], std: vec![1.0], time_scale: 1.0 }.check(1))
    });
    s.case("Scaling::value", SHAPES, "a column past the width", || {
        invalid(scaling.value(1, 3.0)) && scaling.value(0, 3.0).is_ok_and(|v| v == 7.0)
    });
    s.case("score", SIZES, "no models", || {
        invalid(score::<LatentOde>(&mut [], std::slice::from_ref(&ex), 2, 0))
    });
    s.case("score", SIZES, "zero samples: scored at the posterior mean", || {
        score(&mut [latent()], std::slice::from_ref(&ex), 0, 0)
            .is_ok_and(|sc| sc.rmse_target.is_finite())
    });
    s.case("spiral_windows", SIZES, "0 and 101 observed points", || {
        invalid(latent_ode::spiral_windows(2, 0, 0.3, false, &mut Rng::new(0)))
            && invalid(latent_ode::spiral_windows(2, 101, 0.3, true, &mut Rng::new(0)))
    });
    s.case("spiral_windows", NONFINITE, "NaN noise", || {
        invalid(latent_ode::spiral_windows(2, 30, f64::NAN, false, &mut Rng::new(0)))
    });
    s.case("spiral_windows", SIZES, "windows to the curve's end stay finite", || {
        latent_ode::spiral_windows(500, 100, 0.0, false, &mut Rng::new(0)).is_ok_and(|w| {
            w.len() == 500 && w.iter().all(|s| s.values.iter().all(|v| v.is_finite()))
        })
    });
    s.case("extrapolation_spirals", SIZES, "0 and 101 observed points", || {
        invalid(latent_ode::extrapolation_spirals(2, 0, 0.3, &mut Rng::new(0)))
            && invalid(latent_ode::extrapolation_spirals(2, 101, 0.3, &mut Rng::new(0)))
    });
    s.case("extrapolation_spirals", NONFINITE, "NaN and negative noise", || {
        invalid(latent_ode::extrapolation_spirals(2, 30, f64::NAN, &mut Rng::new(0)))
            && invalid(latent_ode::extrapolation_spirals(2, 30, -0.1, &mut Rng::new(0)))
    });
    s.case("extrapolation_spirals", SIZES, "100 noisy targets after every window", || {
        latent_ode::extrapolation_spirals(50, 30, 0.3, &mut Rng::new(0)).is_ok_and(|w| {
            w.len() == 50
                && w.iter()
                    .all(|e| e.target.len() == 100 && e.target.values.iter().all(|v| v.is_finite()))
        })
    });
    s.case("Examples::new", SIZES, "no examples: an empty dataset", || {
        Examples::new(vec![], &latent()).is_ok_and(|d| train::Dataset::len(&d) == 0)
    });
}

pub(crate) fn cases(s: &mut Suite) {
    cnf_api(s);
    latent_api(s);
}
