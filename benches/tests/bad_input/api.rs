//! Cases for the entry points the first rounds of the suite reached only through others:
//! builders and options (checked where they are used: the case runs the consumer), the
//! reference problems, accessors that take an index or a name, the strategies and fields
//! called directly rather than through `OdeBlock`, and every `train::Model` and
//! `train::Dataset` implementation. `inventory.rs` lists what must be here.

use super::*;
use ode_solvers::OdeSystem;

fn ode_solvers_api(s: &mut Suite) {
    use ode_solvers::problems::{arenstorf_rhs, limit_cycle, lotka_volterra_rhs, van_der_pol};
    use ode_solvers::{convergence, Direction, Norm, PidController};
    let ok = Options::new(Method::Dopri5);
    let run = |y0: &[f64], ts: &[f64], o: &Options| odeint(&decay, y0, ts, o);
    s.case("Options::new", OPTIONS, "a fixed-step method without a step size", || {
        matches!(
            run(&[1.0], &[0.0, 1.0], &Options::new(Method::Rk4)),
            Err(E::MissingStepSize { .. })
        )
    });
    s.case("Options::rtol", OPTIONS, "zero rtol", || {
        matches!(run(&[1.0], &[0.0, 1.0], &ok.clone().rtol(0.0)), Err(E::InvalidTolerance { .. }))
    });
    s.case("Options::rtol", NONFINITE, "NaN rtol", || {
        matches!(
            run(&[1.0], &[0.0, 1.0], &ok.clone().rtol(f64::NAN)),
            Err(E::InvalidTolerance { .. })
        )
    });
    s.case("Options::atol", OPTIONS, "negative atol", || {
        matches!(run(&[1.0], &[0.0, 1.0], &ok.clone().atol(-1.0)), Err(E::InvalidTolerance { .. }))
    });
    s.case("Options::atol", NONFINITE, "infinite atol", || {
        matches!(
            run(&[1.0], &[0.0, 1.0], &ok.clone().atol(f64::INFINITY)),
            Err(E::InvalidTolerance { .. })
        )
    });
    s.case("Options::norm", OPTIONS, "max norm: still accurate", || {
        run(&[1.0], &[0.0, 1.0], &ok.clone().norm(Norm::Max).rtol(1e-10).atol(1e-12))
            .is_ok_and(|sol| (sol.ys[1][0] - (-1.0f64).exp()).abs() < 1e-8)
    });
    s.case("Options::layout", SHAPES, "a layout of 3 for a state of 2", || {
        run(&[1.0, 2.0], &[0.0, 1.0], &ok.clone().layout(StateLayout::single("z", 3))).is_err()
    });
    s.case("Options::layout", OPTIONS, "no controlled part: still finite", || {
        let l = StateLayout::new().part("a", 2, false);
        run(&[1.0, 2.0], &[0.0, 1.0], &ok.clone().layout(l))
            .is_ok_and(|sol| sol.ys[1].iter().all(|v| v.is_finite()))
    });
    for (name, h) in [("zero step", 0.0), ("negative step", -0.1), ("NaN step", f64::NAN)] {
        let class = if h.is_nan() { NONFINITE } else { OPTIONS };
        s.case("Options::step_size", class, name, || {
            run(&[1.0], &[0.0, 1.0], &Options::new(Method::Rk4).step_size(h)).is_err()
        });
    }
    s.case("Options::dt_min", OPTIONS, "dt_min above dt_max", || {
        run(&[1.0], &[0.0, 1.0], &ok.clone().dt_min(0.5).dt_max(0.1)).is_err()
    });
    s.case("Options::dt_min", NONFINITE, "NaN dt_min", || {
        run(&[1.0], &[0.0, 1.0], &ok.clone().dt_min(f64::NAN)).is_err()
    });
    s.case("Options::dt_max", OPTIONS, "zero dt_max", || {
        run(&[1.0], &[0.0, 1.0], &ok.clone().dt_max(0.0)).is_err()
    });
    s.case("Options::max_steps", SIZES, "zero steps", || {
        matches!(run(&[1.0], &[0.0, 1.0], &ok.clone().max_steps(0)), Err(E::MaxStepsReached { .. }))
    });
    s.case("Options::max_steps", SIZES, "usize::MAX steps: finishes", || {
        run(&[1.0], &[0.0, 1.0], &ok.clone().max_steps(usize::MAX)).is_ok()
    });
    s.case("Options::save_steps", SIZES, "one output time: the initial state only", || {
        run(&[1.0], &[0.0], &ok.clone().save_steps(true)).is_ok_and(|sol| sol.ys == [vec![1.0]])
    });
    s.case("Options::dense", OPTIONS, "dense output past the interval", || {
        run(&[1.0], &[0.0, 1.0], &ok.clone().dense(true)).is_ok_and(|sol| sol.at(2.0).is_err())
    });
    s.case("PidController::pi", NONFINITE, "NaN coefficients", || {
        let c = PidController::pi(f64::NAN, 0.1);
        matches!(
            run(&[1.0], &[0.0, 1.0], &ok.clone().controller(c)),
            Err(E::InvalidController { .. })
        )
    });
    s.case("PidController::pid", NONFINITE, "infinite coefficients", || {
        let c = PidController::pid(0.1, f64::INFINITY, 0.0);
        matches!(
            run(&[1.0], &[0.0, 1.0], &ok.clone().controller(c)),
            Err(E::InvalidController { .. })
        )
    });
    s.case("Event::new", CALLBACK, "an event function that is never zero", || {
        let ev = Event::new(|_t: f64, _y: &[f64]| 1.0);
        odeint_with_event(&decay, &[1.0], &[0.0, 1.0], &ok, &ev)
            .is_ok_and(|sol| sol.event.is_none() && sol.ys.len() == 2)
    });
    s.case("Event::direction", OPTIONS, "rising only, crossing falls: not fired", || {
        let ev = Event::new(|_t: f64, y: &[f64]| y[0] - 0.5).direction(Direction::Rising);
        odeint_with_event(&decay, &[1.0], &[0.0, 1.0], &ok, &ev)
            .is_ok_and(|sol| sol.event.is_none())
    });
    // Sample counts are clamped to 1..=MAX_SAMPLES (usize::MAX samples per step used to
    // run for ever); the crossing of y = 1/2 at ln 2 is still found.
    let at_ln2 = |sol: ode_solvers::Solution<f64>| {
        sol.event.is_some_and(|e| (e.t - std::f64::consts::LN_2).abs() < 1e-6)
    };
    for (name, n) in [("zero samples", 0), ("usize::MAX samples", usize::MAX)] {
        s.case("Event::samples", SIZES, name, || {
            let ev = Event::new(|_t: f64, y: &[f64]| y[0] - 0.5).samples(n);
            odeint_with_event(&decay, &[1.0], &[0.0, 1.0], &ok, &ev).is_ok_and(at_ln2)
        });
    }
    s.case("Event::samples", SIZES, "usize::MAX set on the field", || {
        let mut ev = Event::new(|_t: f64, y: &[f64]| y[0] - 0.5);
        ev.samples = usize::MAX;
        odeint_with_event(&decay, &[1.0], &[0.0, 1.0], &ok, &ev).is_ok_and(at_ln2)
    });
    s.case("Direction::crosses", NONFINITE, "NaN values never cross", || {
        [Direction::Rising, Direction::Falling, Direction::Either]
            .iter()
            .all(|d| !d.crosses(f64::NAN, 1.0) && !d.crosses(-1.0, f64::NAN))
    });
    s.case("StateLayout::single", SIZES, "an empty part", || {
        run(&[1.0], &[0.0, 1.0], &ok.clone().layout(StateLayout::single("z", 0))).is_err()
    });
    s.case("StateLayout::extend_prefixed", SIZES, "huge parts", || {
        let big = StateLayout::single("a", usize::MAX);
        StateLayout::single("z", 2).extend_prefixed("p.", &big).check(2).is_err()
    });
    s.case("StateLayout::range", OPTIONS, "an unknown name", || {
        let l = StateLayout::single("z", 2);
        l.range("w").is_none() && l.range("z") == Some(0..2)
    });
    s.case("StateLayout::range", SIZES, "parts past usize::MAX", || {
        let l = StateLayout::single("a", usize::MAX).part("b", 2, true);
        l.range("b").is_none()
    });
    for (name, f) in [
        ("lotka_volterra_rhs", lotka_volterra_rhs as fn(f64, &[f64], &mut [f64])),
        ("arenstorf_rhs", arenstorf_rhs),
    ] {
        s.case(name, SHAPES, "a state of the wrong length", || {
            matches!(odeint(&f, &[1.0], &[0.0, 1.0], &ok), Err(E::NonFinite { .. }))
        });
    }
    s.case("van_der_pol", SHAPES, "a state of the wrong length", || {
        matches!(odeint(&van_der_pol(1.0), &[1.0], &[0.0, 1.0], &ok), Err(E::NonFinite { .. }))
    });
    s.case("van_der_pol", NONFINITE, "NaN mu", || {
        matches!(
            odeint(&van_der_pol(f64::NAN), &[1.0, 0.0], &[0.0, 1.0], &ok),
            Err(E::NonFinite { .. })
        )
    });
    s.case("limit_cycle", SHAPES, "a state of the wrong length", || {
        let (f, _) = limit_cycle(1.0);
        matches!(odeint(&f, &[1.0, 0.0, 0.0], &[0.0, 1.0], &ok), Err(E::NonFinite { .. }))
    });
    s.case("limit_cycle", NONFINITE, "NaN omega", || {
        let (f, exact) = limit_cycle(f64::NAN);
        odeint(&f, &[0.5, 0.0], &[0.0, 1.0], &ok).is_err() && exact(1.0)[0].is_nan()
    });
    s.case("default_steps", OPTIONS, "every method: increasing positive counts", || {
        Method::all().into_iter().all(|m| {
            let v = convergence::default_steps(m);
            v.len() >= 3 && v[0] > 0 && v.windows(2).all(|w| w[0] < w[1])
        })
    });
    s.case("scaled_steps", OPTIONS, "every method: increasing positive counts", || {
        Method::all().into_iter().all(|m| {
            let v = convergence::scaled_steps(m);
            v[0] > 0 && v.windows(2).all(|w| w[0] < w[1])
        })
    });
    s.case("default_dense_steps", SIZES, "order 0 and u32::MAX: positive decreasing", || {
        [0, u32::MAX].iter().all(|&q| {
            let v = convergence::default_dense_steps(q);
            v.iter().all(|&h| h > 0.0) && v.windows(2).all(|w| w[0] > w[1])
        })
    });
    s.case("RhsError::new", CALLBACK, "a failing right-hand side's cause is kept", || {
        let f = Fallible(|_t: f64, _y: &[f64], _d: &mut [f64]| {
            Err(RhsError::new(std::io::Error::other("disk")))
        });
        matches!(odeint(&f, &[1.0], &[0.0, 1.0], &ok), Err(E::Rhs { source, .. }) if source.to_string() == "disk")
    });
    s.case("RhsError::msg", CALLBACK, "an empty message", || {
        let f = Fallible(|_t: f64, _y: &[f64], _d: &mut [f64]| Err(RhsError::msg("")));
        matches!(odeint(&f, &[1.0], &[0.0, 1.0], &ok), Err(E::Rhs { t: 0.0, .. }))
    });
    s.case("Fallible::rhs", SHAPES, "called directly with mismatched buffers", || {
        let f = Fallible(|_t: f64, y: &[f64], d: &mut [f64]| {
            if y.len() != d.len() {
                return Err(RhsError::msg("lengths"));
            }
            Ok(())
        });
        f.rhs(0.0, &[1.0], &mut [0.0; 2]).is_err()
    });
    let mut rk = RkIntegrator::new(&decay, 1, &ok).unwrap();
    s.case("RkIntegrator::set_bound", NONFINITE, "a NaN bound", || {
        rk.init(0.0, &[1.0], 1.0).unwrap();
        rk.set_bound(f64::NAN).is_err() && rk.step().is_ok()
    });
    s.case("RkIntegrator::stage", SIZES, "index past the stages", || {
        rk.stage(99).is_none() && rk.stage(usize::MAX).is_none()
    });
    s.case("RkIntegrator::stage_time", SIZES, "index past the stages", || {
        rk.stage_time(99).is_none() && rk.stage_time(usize::MAX).is_none()
    });
    s.case("RkIntegrator::stage_coefficients", SIZES, "index past the stages", || {
        rk.stage_coefficients(99).next().is_none()
    });
}

/// Whether solving `dz/dt = y(z)` (a 1×1 graph) over [0, 1] from 1 is refused.
fn solve_fails(g: Graph, y: autodiff::Var) -> bool {
    let f = AutodiffField::new(g, y).unwrap();
    let block =
        OdeBlock::new(Strategy::Backsolve, AdjointOptions::new(Options::new(Method::Dopri5)));
    block.forward(&f, &[1.0], &[0.0, 1.0]).is_err()
}

fn autodiff_api(s: &mut Suite) {
    use autodiff::checkpoint::{decode, encode, read_file, write_atomic};
    use autodiff::layers::{
        flatten, ConcatConv2d, ConcatLinear, ConcatSquash, GruCell, Init, Linear,
    };
    use autodiff::optim::Schedule;
    let foreign = {
        let mut other = Graph::new();
        other.input(1, 1);
        other.input(1, 1);
        other.input(1, 1)
    };
    let mut rng = Rng::new(0);
    // The builders generated by `unary_methods!` / `binary_methods!` (the inventory reads
    // no macro expansions, so they are listed here by hand).
    type Un = fn(&mut Graph, autodiff::Var) -> Result<autodiff::Var, A>;
    let unary: [(&'static str, Un); 11] = [
        ("Graph::tanh", Graph::tanh),
        ("Graph::sigmoid", Graph::sigmoid),
        ("Graph::softplus", Graph::softplus),
        ("Graph::relu", Graph::relu),
        ("Graph::swish", Graph::swish),
        ("Graph::exp", Graph::exp),
        ("Graph::log", Graph::log),
        ("Graph::sqrt", Graph::sqrt),
        ("Graph::square", Graph::square),
        ("Graph::abs", Graph::abs),
        ("Graph::neg", Graph::neg),
    ];
    for (name, op) in unary {
        s.case(name, SHAPES, "a variable of another graph", || {
            matches!(op(&mut Graph::new(), foreign), Err(A::UnknownVar { .. }))
        });
    }
    type Bin = fn(&mut Graph, autodiff::Var, autodiff::Var) -> Result<autodiff::Var, A>;
    let binary: [(&'static str, Bin); 5] = [
        ("Graph::add", Graph::add),
        ("Graph::sub", Graph::sub),
        ("Graph::mul", Graph::mul),
        ("Graph::div", Graph::div),
        ("Graph::tanh_grad", Graph::tanh_grad),
    ];
    for (name, op) in binary {
        s.case(name, SHAPES, "shapes that do not broadcast", || {
            let mut g = Graph::new();
            let (a, b) = (g.input(2, 3), g.input(3, 2));
            matches!(op(&mut g, a, b), Err(A::ShapeMismatch { .. }))
        });
    }
    s.case("Graph::input", SIZES, "huge: refused when planned", || {
        let mut g = Graph::new();
        let x = g.input(usize::MAX, 2);
        let y = g.tanh(x).unwrap();
        Executor::new(&g, &[y]).is_err()
    });
    s.case("Graph::input", SIZES, "zero rows: an empty result", || {
        let mut g = Graph::new();
        let x = g.input(0, 2);
        let y = g.tanh(x).unwrap();
        autodiff::eval(&g, &[y], &[&Mat::zeros(0, 2)]).is_ok_and(|v| v[0].shape() == (0, 2))
    });
    s.case("Graph::param", NONFINITE, "a NaN initial value: the gradient is refused", || {
        let mut g = Graph::new();
        let w = g.param("w", &Mat::from_element(1, 1, f64::NAN));
        let x = g.input(1, 1);
        let y = g.mul(x, w).unwrap();
        solve_fails(g, y)
    });
    s.case("Graph::constant", SIZES, "an empty constant", || {
        let mut g = Graph::new();
        let c = g.constant(Mat::zeros(0, 0));
        g.shape(c).is_ok_and(|sh| sh == (0, 0))
    });
    s.case("Graph::fill", NONFINITE, "NaN fill: NaN outputs, reported", || {
        let mut g = Graph::new();
        let x = g.input(1, 1);
        let c = g.fill(1, 1, f64::NAN);
        let y = g.add(x, c).unwrap();
        solve_fails(g, y)
    });
    s.case("Graph::shape", SHAPES, "a variable of another graph", || {
        matches!(Graph::new().shape(foreign), Err(A::UnknownVar { .. }))
    });
    s.case("Var::from_index", SIZES, "an index past the graph", || {
        let mut g = Graph::new();
        let v = autodiff::Var::from_index(usize::MAX);
        g.shape(v).is_err() && g.tanh(v).is_err()
    });
    s.case("Executor::value", SHAPES, "a variable it does not keep: empty", || {
        let mut g = Graph::new();
        let x = g.input(1, 1);
        let y = g.tanh(x).unwrap();
        let exe = Executor::new(&g, &[y]).unwrap();
        exe.value(autodiff::Var::from_index(usize::MAX)).is_empty()
    });
    s.case("Activation::apply", SHAPES, "a variable of another graph", || {
        [Activation::Tanh, Activation::Relu, Activation::Softplus]
            .iter()
            .all(|a| a.apply(&mut Graph::new(), foreign).is_err())
    });
    s.case("Init::draw", SIZES, "zero rows and columns", || {
        [Init::TorchDefault, Init::GlorotUniform, Init::Zeros]
            .iter()
            .all(|i| i.draw(&mut Rng::new(0), 0, 0, 0, 0).unwrap().shape() == (0, 0))
    });
    s.case("Rng::matrix", SIZES, "zero rows", || {
        Rng::new(0).matrix(0, 5, Rng::normal).is_ok_and(|m| m.is_empty())
    });
    s.case("Rng::matrix", SIZES, "a size whose bytes overflow", || {
        matches!(Rng::new(0).matrix(usize::MAX / 4, 3, Rng::normal), Err(A::InvalidArgument { .. }))
    });
    s.case("Init::draw", SIZES, "a size whose bytes overflow", || {
        matches!(
            Init::HeNormal.draw(&mut Rng::new(0), 1 << 40, 1 << 40, 1, 1),
            Err(A::InvalidArgument { .. })
        )
    });
    s.case("Rng::new", SIZES, "seed 0 and u64::MAX draw distinct finite streams", || {
        let (mut a, mut b) = (Rng::new(0), Rng::new(u64::MAX));
        let (x, y) = (a.normal(), b.normal());
        x.is_finite() && y.is_finite() && x != y
    });
    s.case("Rng::fork", SIZES, "index u64::MAX", || {
        let r = Rng::new(1);
        r.fork(u64::MAX).uniform() != r.fork(0).uniform()
    });
    s.case("Rng::uniform_in", NONFINITE, "NaN bound: NaN, not a made-up number", || {
        Rng::new(0).uniform_in(f64::NAN, 1.0).is_nan()
    });
    s.case("Rng::uniform_in", OPTIONS, "reversed bounds stay between them", || {
        let mut r = Rng::new(0);
        (0..100).all(|_| (1.0..=2.0).contains(&r.uniform_in(2.0, 1.0)))
    });
    let mut g = Graph::new();
    let x = g.input(2, 3);
    let t = g.input(1, 1);
    let lin = Linear::new(&mut g, "l", 3, 2, &mut rng).unwrap();
    let mlp = Mlp::new(&mut g, "m", &[3, 4, 2], Activation::Tanh, &mut rng).unwrap();
    let cl = ConcatLinear::new(&mut g, "c", 3, 2, &mut rng).unwrap();
    let cs = ConcatSquash::new(&mut g, "s", 3, 2, &mut rng).unwrap();
    let gru = GruCell::new(&mut g, "g", 3, 2, &mut rng).unwrap();
    let wrong = g.input(2, 5);
    s.case("Linear::forward", SHAPES, "input of 5 columns for 3", || {
        lin.forward(&mut g, wrong).is_err()
    });
    s.case("Linear::forward", SHAPES, "a variable of another graph", || {
        lin.forward(&mut g, foreign).is_err()
    });
    s.case("Mlp::forward", SHAPES, "input of 5 columns for 3", || {
        mlp.forward(&mut g, wrong).is_err()
    });
    s.case("ConcatLinear::forward", SHAPES, "input of 5 columns for 3", || {
        cl.forward(&mut g, wrong, t).is_err()
    });
    s.case("ConcatLinear::forward", SHAPES, "a time of 2 columns", || {
        let t2 = g.input(1, 2);
        cl.forward(&mut g, x, t2).is_err()
    });
    s.case("ConcatSquash::forward", SHAPES, "input of 5 columns for 3", || {
        cs.forward(&mut g, wrong, t).is_err()
    });
    s.case("GruCell::forward", SHAPES, "a hidden state of 5 for 2", || {
        gru.forward(&mut g, x, wrong).is_err()
    });
    {
        let geom = small_geometry();
        let mut h = Graph::new();
        let img = h.input(2, 16);
        let bad = h.input(2, 15);
        let tt = h.input(1, 1);
        let conv = Conv2d::new(&mut h, "c", geom, 2, &mut Rng::new(0)).unwrap();
        let cconv = ConcatConv2d::new(&mut h, "cc", geom, 2, &mut Rng::new(0)).unwrap();
        let gn = GroupNorm::new(&mut h, "n", 1, 1, 16).unwrap();
        s.case("Conv2d::forward", SHAPES, "an image of 15 pixels for 16", || {
            conv.forward(&mut h, bad).is_err()
        });
        s.case("ConcatConv2d::forward", SHAPES, "an image of 15 pixels for 16", || {
            cconv.forward(&mut h, bad, tt).is_err()
        });
        s.case("GroupNorm::forward", SHAPES, "15 columns for 1 channel of 16", || {
            gn.forward(&mut h, bad).is_err()
        });
        s.case("avg_pool2d", SHAPES, "an image of 15 pixels for 16", || {
            avg_pool2d(&mut h, bad, geom).is_err()
        });
        s.case("global_avg_pool", SHAPES, "15 columns in positions of 4", || {
            global_avg_pool(&mut h, bad, 4).is_err()
        });
        s.case("global_avg_pool", SIZES, "zero positions", || {
            global_avg_pool(&mut h, img, 0).is_err()
        });
        s.case("flatten", SHAPES, "an unknown variable stays unknown", || {
            h.shape(flatten(autodiff::Var::from_index(usize::MAX))).is_err()
        });
    }
    let mut opt_g = vec![1.0, 2.0];
    s.case("Sgd::new", NONFINITE, "NaN learning rate: refused at the step", || {
        let mut o = Sgd::new(SgdConfig { lr: f64::NAN, ..SgdConfig::default() });
        o.step(&mut opt_g, &[0.1, 0.1]).is_err() && opt_g == [1.0, 2.0]
    });
    s.case("Adam::new", OPTIONS, "beta2 above 1: refused at the step", || {
        let mut o = Adam::new(AdamConfig { beta2: 1.5, ..AdamConfig::default() });
        let mut p = vec![1.0];
        o.step(&mut p, &[0.1]).is_err() && p == [1.0]
    });
    s.case("AdamConfig::adamw", OPTIONS, "a negative learning rate", || {
        let mut o = Adam::new(AdamConfig::adamw(-1e-3));
        o.step(&mut [1.0], &[0.1]).is_err()
    });
    for (name, lr, class) in [
        ("NaN", f64::NAN, NONFINITE),
        ("negative", -1.0, OPTIONS),
        ("infinite", f64::INFINITY, NONFINITE),
    ] {
        s.case("Sgd::set_learning_rate", class, name, || {
            let mut o = Sgd::new(SgdConfig::default());
            o.set_learning_rate(lr);
            let mut p = vec![1.0];
            o.step(&mut p, &[0.1]).is_err() && p == [1.0]
        });
        s.case("Adam::set_learning_rate", class, name, || {
            let mut o = Adam::new(AdamConfig::default());
            o.set_learning_rate(lr);
            let mut p = vec![1.0];
            o.step(&mut p, &[0.1]).is_err() && p == [1.0]
        });
        s.case("OptimizerState::set_learning_rate", class, name, || {
            let mut o = OptimizerState::Adam(Adam::new(AdamConfig::default()));
            o.set_learning_rate(lr);
            let mut p = vec![1.0];
            o.step(&mut p, &[0.1]).is_err() && p == [1.0]
        });
    }
    s.case("Schedule::lr", NONFINITE, "NaN base: NaN, refused by every optimiser", || {
        let lr = Schedule::WarmupCosine { warmup: 2, total: 10, min_lr: 0.0 }.lr(f64::NAN, 3);
        let mut o = Adam::new(AdamConfig::default());
        o.set_learning_rate(lr);
        lr.is_nan() && o.step(&mut [1.0], &[0.1]).is_err()
    });
    s.case("Schedule::lr", SIZES, "step u64::MAX and a zero-length schedule: finite", || {
        [
            Schedule::Constant,
            Schedule::Step { every: 0, gamma: 0.5 },
            Schedule::Step { every: 1, gamma: 0.5 },
            Schedule::WarmupCosine { warmup: 0, total: 0, min_lr: 1e-5 },
        ]
        .iter()
        .all(|sch| {
            let lr = sch.lr(1e-3, u64::MAX);
            lr.is_finite() && lr >= 0.0
        })
    });
    let dir = std::env::temp_dir().join(format!("bad-input-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    s.case("write_atomic", FILES, "into a missing directory", || {
        matches!(write_atomic(&dir.join("no/such/dir/x"), b"abc"), Err(A::Io { .. }))
    });
    s.case("write_atomic", FILES, "onto a directory: nothing left behind", || {
        let target = dir.join("a-dir");
        std::fs::create_dir_all(&target).unwrap();
        write_atomic(&target, b"abc").is_err()
            && std::fs::read_dir(&dir)
                .unwrap()
                .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp"))
    });
    s.case("read_file", FILES, "a missing file", || {
        matches!(read_file(&dir.join("none")), Err(A::Io { .. }))
    });
    s.case("encode", SIZES, "an empty record round-trips", || {
        let bytes = encode(b"TESTMAGC", &Vec::<f64>::new()).unwrap();
        decode::<Vec<f64>>(b"TESTMAGC", &bytes).is_ok_and(|v| v.is_empty())
    });
    s.case("decode", FILES, "another magic, truncated, flipped", || {
        let bytes = encode(b"TESTMAGC", &vec![1.0f64, 2.0]).unwrap();
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        decode::<Vec<f64>>(b"OTHERMAG", &bytes).is_err()
            && decode::<Vec<f64>>(b"TESTMAGC", &bytes[..bytes.len() - 1]).is_err()
            && decode::<Vec<f64>>(b"TESTMAGC", &flipped).is_err()
            && decode::<Vec<f64>>(b"TESTMAGC", &[]).is_err()
    });
    s.case("Checkpoint::from_graph", SIZES, "a graph without parameters round-trips", || {
        let c = Checkpoint::from_graph(&Graph::new(), "", OptimizerState::None, u64::MAX);
        c.to_bytes().is_ok_and(|b| Checkpoint::from_bytes(&b).is_ok())
    });
    s.case("precision_case", SIZES, "zero dimensions: no difference, no error made up", || {
        autodiff::check::cases().iter().all(|case| {
            autodiff::check::precision_case::<f32>(case, (0, 0, 0), 0).map_or(true, |e| e == 0.0)
        })
    });
    s.case("check_case", SIZES, "zero dimensions: nothing to compare, no error made up", || {
        autodiff::check::cases().iter().all(|case| {
            autodiff::check::check_case(case, (0, 0, 0), 0)
                .map_or(true, |r| r.first == 0.0 && r.second == 0.0)
        })
    });
}

fn adjoint_api(s: &mut Suite) {
    use adjoint::{AdjointStrategy, Backsolve, Checkpointed, ClosureField, Direct};
    let opts = AdjointOptions::new(Options::new(Method::Dopri5));
    let f = field();
    s.case("AdjointOptions::new", OPTIONS, "zero rtol", || {
        let block = OdeBlock::new(
            Strategy::Backsolve,
            AdjointOptions::new(Options::new(Method::Dopri5).rtol(0.0)),
        );
        block.forward(&f, &[0.1; 4], &[0.0, 1.0]).is_err()
    });
    s.case("AdjointOptions::backward", OPTIONS, "a backward solve with NaN atol", || {
        let o = opts.clone().backward(Options::new(Method::Dopri5).atol(f64::NAN));
        let block = OdeBlock::new(Strategy::Backsolve, o);
        let rec = block.forward(&f, &[0.1; 4], &[0.0, 1.0]).unwrap();
        block.backward(&f, &rec, &[vec![0.0; 4], vec![1.0; 4]]).is_err()
    });
    s.case("AdjointOptions::seminorm", OPTIONS, "off: same gradient to tolerance", || {
        let g = |on: bool| {
            let o = AdjointOptions::new(Options::new(Method::Dopri5).rtol(1e-10).atol(1e-10))
                .seminorm(on);
            let block = OdeBlock::new(Strategy::Backsolve, o);
            let rec = block.forward(&f, &[0.1; 4], &[0.0, 1.0]).unwrap();
            block.backward(&f, &rec, &[vec![0.0; 4], vec![1.0; 4]]).unwrap().params
        };
        let (a, b) = (g(true), g(false));
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-7)
    });
    s.case("AdjointOptions::time_gradients", CALLBACK, "a field failing at the end time", || {
        let o = opts.clone().time_gradients(true);
        let block = OdeBlock::new(Strategy::Backsolve, o);
        let cf = ClosureField::new(
            1,
            vec![1.0],
            |t: f64, z: &[f64], p: &[f64], dz: &mut [f64]| {
                dz[0] = if t >= 1.0 { f64::NAN } else { -p[0] * z[0] }
            },
            |_t: f64, z: &[f64], p: &[f64], a: &[f64], vz: &mut [f64], vp: &mut [f64]| {
                vz[0] = -p[0] * a[0];
                vp[0] = -z[0] * a[0];
                0.0
            },
        );
        let rec = block.forward(&cf, &[1.0], &[0.0, 0.5]);
        rec.is_ok_and(|r| block.backward(&cf, &r, &[vec![0.0], vec![1.0]]).is_ok())
    });
    s.case("OdeBlock::new", OPTIONS, "Direct with an Adams method", || {
        let block = OdeBlock::new(
            Strategy::Direct,
            AdjointOptions::new(Options::new(Method::AdamsBashforth(4)).step_size(0.1)),
        );
        block.forward(&f, &[0.1; 4], &[0.0, 1.0]).is_err()
    });
    for (name, z0, ts, class) in [
        ("z0 of 3 for 4", vec![0.1; 3], vec![0.0, 1.0], SHAPES),
        ("no times", vec![0.1; 4], vec![], SIZES),
        ("NaN z0", vec![f64::NAN; 4], vec![0.0, 1.0], NONFINITE),
        ("unsorted times", vec![0.1; 4], vec![0.0, 1.0, 0.5], OPTIONS),
    ] {
        s.case("OdeBlock::forward", class, name, || {
            OdeBlock::new(Strategy::Checkpointed, opts.clone()).forward(&f, &z0, &ts).is_err()
        });
        // The strategies called directly check their inputs too.
        s.case("Backsolve::forward", class, name, || {
            Backsolve.forward(&f, &z0, &ts, &opts).is_err()
        });
        s.case("Checkpointed::forward", class, name, || {
            Checkpointed.forward(&f, &z0, &ts, &opts).is_err()
        });
        s.case("Direct::forward", class, name, || Direct.forward(&f, &z0, &ts, &opts).is_err());
        s.case("Strategy::forward", class, name, || {
            Strategy::Direct.forward(&f, &z0, &ts, &opts).is_err()
        });
    }
    let ts = [0.0, 1.0];
    let good = [vec![0.0; 4], vec![1.0; 4]];
    for (name, cot, class) in [
        ("one cotangent for two times", vec![vec![1.0; 4]], SHAPES),
        ("a cotangent of 3", vec![vec![0.0; 4], vec![1.0; 3]], SHAPES),
        ("a NaN cotangent", vec![vec![0.0; 4], vec![f64::NAN; 4]], NONFINITE),
    ] {
        s.case("Backsolve::backward", class, name, || {
            let r = Backsolve.forward(&f, &[0.1; 4], &ts, &opts).unwrap();
            Backsolve.backward(&f, &r, &cot, &opts).is_err()
        });
        s.case("Checkpointed::backward", class, name, || {
            let r = Checkpointed.forward(&f, &[0.1; 4], &ts, &opts).unwrap();
            Checkpointed.backward(&f, &r, &cot, &opts).is_err()
        });
        s.case("Direct::backward", class, name, || {
            let r = Direct.forward(&f, &[0.1; 4], &ts, &opts).unwrap();
            Direct.backward(&f, &r, &cot, &opts).is_err()
        });
        s.case("Strategy::backward", class, name, || {
            let r = Strategy::Checkpointed.forward(&f, &[0.1; 4], &ts, &opts).unwrap();
            Strategy::Checkpointed.backward(&f, &r, &cot, &opts).is_err()
        });
    }
    s.case("Strategy::backward", OPTIONS, "a backsolve record for the direct strategy", || {
        let r = Strategy::Backsolve.forward(&f, &[0.1; 4], &ts, &opts).unwrap();
        Strategy::Direct.backward(&f, &r, &good, &opts).is_err()
    });
    s.case("Strategy::backward", OPTIONS, "a checkpointed record for the direct strategy", || {
        let r = Strategy::Checkpointed.forward(&f, &[0.1; 4], &ts, &opts).unwrap();
        Strategy::Direct.backward(&f, &r, &good, &opts).is_err()
    });
    s.case("Checkpointed::forward", OPTIONS, "a method without dense output (Adams)", || {
        let adams = AdjointOptions::new(Options::new(Method::AdamsBashforth(4)).step_size(0.1));
        Checkpointed.forward(&f, &[0.1; 4], &ts, &adams).is_err()
    });
    s.case("Direct::backward", CALLBACK, "a VJP writing NaN: refused, not returned", || {
        let cf = ClosureField::new(
            1,
            vec![1.0],
            |_t: f64, z: &[f64], p: &[f64], dz: &mut [f64]| dz[0] = p[0] * z[0],
            |_t: f64, _z: &[f64], _p: &[f64], _a: &[f64], vz: &mut [f64], vp: &mut [f64]| {
                vz[0] = 0.0;
                vp[0] = f64::NAN;
                0.0
            },
        );
        let r = Direct.forward(&cf, &[1.0], &ts, &opts).unwrap();
        matches!(
            Direct.backward(&cf, &r, &[vec![0.0], vec![1.0]], &opts),
            Err(J::NonFiniteGradient { .. })
        )
    });
    s.case(
        "ClosureField::new",
        SHAPES,
        "parameters the closures do not expect: dim checked",
        || {
            let cf = ClosureField::new(
                2,
                vec![],
                |_t: f64, _z: &[f64], _p: &[f64], dz: &mut [f64]| dz.fill(0.0),
                |_t: f64, _z: &[f64], _p: &[f64], _a: &[f64], _vz: &mut [f64], _vp: &mut [f64]| 0.0,
            );
            OdeBlock::new(Strategy::Backsolve, opts.clone()).forward(&cf, &[1.0], &ts).is_err()
        },
    );
    s.case("ClosureField::rhs", SHAPES, "buffers of the wrong length", || {
        let cf = ClosureField::new(
            2,
            vec![],
            |_t: f64, _z: &[f64], _p: &[f64], dz: &mut [f64]| dz.fill(0.0),
            |_t: f64, _z: &[f64], _p: &[f64], _a: &[f64], _vz: &mut [f64], _vp: &mut [f64]| 0.0,
        );
        cf.rhs(0.0, &[1.0], &mut [0.0; 2]).is_err() && cf.rhs(0.0, &[1.0; 2], &mut [0.0]).is_err()
    });
    s.case("ClosureField::vjp", SHAPES, "buffers of the wrong length", || {
        let cf = ClosureField::new(
            1,
            vec![1.0],
            |_t: f64, _z: &[f64], _p: &[f64], dz: &mut [f64]| dz.fill(0.0),
            |_t: f64, _z: &[f64], _p: &[f64], _a: &[f64], _vz: &mut [f64], _vp: &mut [f64]| 0.0,
        );
        let (mut dz, mut vz, mut vp) = ([0.0], [0.0], [0.0; 2]);
        cf.vjp(0.0, &[1.0], &[1.0], &mut dz, &mut vz, &mut vp).is_err()
    });
    s.case("AutodiffField::rhs", SHAPES, "buffers of the wrong length", || {
        f.rhs(0.0, &[0.1; 3], &mut [0.0; 4]).is_err()
            && f.rhs(0.0, &[0.1; 4], &mut [0.0; 5]).is_err()
    });
    s.case("AutodiffField::rhs", NONFINITE, "a NaN state: NaN out, no panic", || {
        let mut d = [0.0; 4];
        f.rhs(0.0, &[f64::NAN; 4], &mut d).is_ok() && d.iter().all(|v: &f64| v.is_nan())
    });
    s.case("AutodiffField::vjp", SHAPES, "a parameter buffer of the wrong length", || {
        let (mut dz, mut vz, mut vp) = ([0.0; 4], [0.0; 4], vec![0.0; f.params().len() + 1]);
        f.vjp(0.0, &[0.1; 4], &[1.0; 4], &mut dz, &mut vz, &mut vp).is_err()
    });
    let builder_graph = || {
        let mut g = Graph::new();
        let z = g.input(1, 2);
        let t = g.input(1, 1);
        let y = g.tanh(z).unwrap();
        (g, z, t, y)
    };
    s.case("AutodiffField::builder", SHAPES, "no state", || {
        let (g, ..) = builder_graph();
        AutodiffField::builder(g).build().is_err()
    });
    s.case("FieldBuilder::state", SHAPES, "a derivative of another shape", || {
        let (mut g, z, _, _) = builder_graph();
        let w = g.input(1, 3);
        AutodiffField::builder(g).state(z, w).build().is_err()
    });
    s.case("FieldBuilder::state", SHAPES, "variables of another graph", || {
        let (g, ..) = builder_graph();
        let mut other = Graph::new();
        let (a, b) = (other.input(1, 5), other.input(1, 5));
        AutodiffField::builder(g).state(a, b).build().is_err()
    });
    s.case("FieldBuilder::time", SHAPES, "a time of 2 columns", || {
        let (mut g, z, _, y) = builder_graph();
        let t2 = g.input(1, 2);
        AutodiffField::builder(g).state(z, y).time(t2).build().is_err()
    });
    s.case("FieldBuilder::time", SHAPES, "the state as the time", || {
        let (g, z, _, y) = builder_graph();
        AutodiffField::builder(g).state(z, y).time(z).build().is_err()
    });
    s.case("FieldBuilder::integrand", SHAPES, "an integrand of 3 rows for a batch of 1", || {
        let (mut g, z, t, y) = builder_graph();
        let bad = g.input(3, 1);
        AutodiffField::builder(g).state(z, y).time(t).integrand("k", bad, false).build().is_err()
    });
    s.case("FieldBuilder::integrand", OPTIONS, "two integrands of one name", || {
        let (mut g, z, t, y) = builder_graph();
        let k = g.sum(y, autodiff::Axis::Cols).unwrap();
        AutodiffField::builder(g)
            .state(z, y)
            .time(t)
            .integrand("k", k, false)
            .integrand("k", k, false)
            .build()
            .is_err()
    });
    s.case("FieldBuilder::extra", OPTIONS, "an extra that is the state", || {
        let (g, z, t, y) = builder_graph();
        AutodiffField::builder(g).state(z, y).time(t).extra("e", z).build().is_err()
    });
    s.case("FieldBuilder::extra", OPTIONS, "an extra that is no input", || {
        let (g, z, t, y) = builder_graph();
        AutodiffField::builder(g).state(z, y).time(t).extra("e", y).build().is_err()
    });
}

fn train_api(s: &mut Suite) {
    use train::{
        argmax_rows, Callback, Classifier, Error as T, Images, ParamSet, Printer, Progress,
        RandomShift, Replicas, TrainConfig,
    };
    use train::{Augment, Model};
    s.case("ParamSet::new", SIZES, "parts whose lengths overflow", || {
        let set = ParamSet::new(&[("a", usize::MAX), ("b", 2)]);
        set.gather(&[&[1.0], &[1.0, 2.0]], &mut [0.0; 3]).is_err()
    });
    s.case("ParamSet::new", SIZES, "no parts", || ParamSet::new(&[]).is_empty());
    s.case("ParamSet::range", OPTIONS, "an unknown name", || {
        ParamSet::new(&[("a", 2)]).range("b").is_none()
    });
    s.case("ParamSet::scatter", SHAPES, "a flat vector of 4 for 3", || {
        let set = ParamSet::new(&[("a", 2), ("b", 1)]);
        set.scatter(&[0.0; 4], &mut [&mut [0.0; 2], &mut [0.0]]).is_err()
    });

    s.case("Images::truncate", SIZES, "past the end and usize::MAX", || {
        let mut im = Images { pixels: vec![0.0; 8], labels: vec![0, 1], side: 2, classes: 2 };
        im.truncate(usize::MAX);
        let kept = im.len() == 2 && im.pixels.len() == 8;
        im.truncate(0);
        kept && im.is_empty() && im.pixels.is_empty()
    });
    s.case("Images::truncate", SIZES, "a huge side", || {
        let mut im =
            Images { pixels: vec![0.0; 8], labels: vec![0, 1], side: usize::MAX, classes: 2 };
        im.truncate(1);
        im.len() == 1
    });
    s.case("argmax_rows", SIZES, "no rows and no columns", || {
        argmax_rows(&Mat::zeros(0, 3)).is_empty() && argmax_rows(&Mat::zeros(2, 0)) == [0, 0]
    });
    s.case("argmax_rows", NONFINITE, "NaN entries: an index, no panic", || {
        argmax_rows(&Mat::from_element(1, 3, f64::NAN))[0] < 3
    });
    s.case("since", SIZES, "no counting allocator installed: None", || {
        train::memory::since(usize::MAX).is_none()
    });
    s.case("Error::model", CALLBACK, "a model's own error is kept", || {
        let e = T::model(std::io::Error::other("model broke"));
        e.to_string().contains("model broke")
    });
    s.case(
        "RandomShift::apply",
        SHAPES,
        "an image of the wrong length, a shift past the side",
        || {
            let mut small = vec![1.0; 3];
            RandomShift(1).apply(&mut small, 2, &mut Rng::new(0));
            let mut img = vec![1.0; 4];
            RandomShift(usize::MAX).apply(&mut img, 2, &mut Rng::new(0));
            small.iter().all(|v| v.is_finite()) && img.iter().all(|v| v.is_finite())
        },
    );
    let progress = Progress {
        step: u64::MAX,
        total_steps: 0,
        epoch: 0,
        epochs: 0,
        batch: 0,
        batches: 0,
        loss: f64::NAN,
        metrics: vec![("m", f64::INFINITY)],
        nfe_forward: f64::NAN,
        nfe_backward: 0.0,
        step_seconds: f64::NAN,
        elapsed: f64::INFINITY,
        eta: f64::NAN,
        peak_bytes: Some(usize::MAX),
    };
    s.case("Printer::new", SIZES, "an empty label", || {
        Printer::new("").on_step(&progress);
        true
    });
    s.case("Printer::lines", SIZES, "zero lines", || {
        Printer::new("p").lines(0).on_step(&progress);
        true
    });
    s.case("Printer::on_step", NONFINITE, "NaN and infinite figures, zero total steps", || {
        Printer::new("p").on_step(&progress);
        true
    });
    s.case("Printer::on_eval", NONFINITE, "NaN metrics", || {
        Printer::new("p").on_eval(u64::MAX, &[("nll".into(), f64::NAN)]);
        true
    });
    // Every `Model` implementation: wrong-length parameter and gradient buffers.
    let mut g = Graph::new();
    let x = g.input(2, 4);
    let l = Linear::new(&mut g, "l", 4, 3, &mut Rng::new(0)).unwrap().forward(&mut g, x).unwrap();
    let classifier = || Classifier::new(g.clone(), x, l, false).unwrap();
    let images = Images {
        pixels: vec![0.5; 8 * 4],
        labels: vec![0, 1, 2, 0, 1, 2, 0, 1],
        side: 2,
        classes: 3,
    };
    let batch = train::ImageBatches { images: &images, augment: None, smoothing: 0.0 };
    let b = train::Dataset::batch(&batch, &[0, 1], &mut Rng::new(0)).unwrap();
    model_buffer_cases(s, "Classifier", classifier, &b);
    // A fresh classifier trained under `cfg`: the summary, and whether its parameters moved.
    let fit = |cfg: TrainConfig| {
        let adam = OptimizerState::Adam(Adam::new(AdamConfig::default()));
        let mut m = classifier();
        let before = m.graph().params().to_vec();
        let done = train::Trainer::new(cfg, adam, "m")
            .and_then(|mut t| t.fit(&mut m, &batch, None, &mut train::Quiet));
        (done, m.graph().params() != before.as_slice())
    };
    s.case("TrainConfig::new", SIZES, "zero epochs: no step taken", || {
        let (done, moved) = fit(TrainConfig::new(0, 4, 1e-3));
        done.is_ok() && !moved
    });
    s.case("TrainConfig::total_steps", SIZES, "zero steps: no step taken", || {
        let (done, moved) =
            fit(TrainConfig { total_steps: Some(0), ..TrainConfig::new(3, 4, 1e-3) });
        done.is_ok_and(|d| d.steps == 0) && !moved
    });
    s.case("TrainConfig::total_steps", SIZES, "u64::MAX steps: the epochs end the run", || {
        // Batches of 2, the classifier's input rows: one epoch of 8 images is 4 steps.
        let cfg = TrainConfig { total_steps: Some(u64::MAX), ..TrainConfig::new(1, 2, 1e-3) };
        fit(cfg).0.is_ok_and(|d| d.finished && d.steps == 4)
    });
    s.case("Classifier::loss_and_grad", NONFINITE, "a NaN image: refused, not a NaN loss", || {
        let mut m = classifier();
        let mut nan = b.clone();
        nan.x[(0, 0)] = f64::NAN;
        let mut grad = vec![0.0; m.num_params()];
        m.loss_and_grad(&nan, &mut grad).is_err()
    });
    model_buffer_cases(
        s,
        "Replicas",
        || Replicas::new(vec![classifier(), classifier()]).unwrap(),
        &b,
    );
    s.case("Replicas::set_step", SIZES, "step u64::MAX", || {
        let mut r = Replicas::new(vec![classifier()]).unwrap();
        r.set_step(u64::MAX);
        let mut grad = vec![0.0; r.num_params()];
        r.loss_and_grad(&b, &mut grad).is_ok()
    });
}

/// `read_params`, `write_params` and `loss_and_grad` of a `Model` with buffers of the wrong
/// length (and `write_params` with a NaN).
pub(crate) fn model_buffer_cases<M: train::Model>(
    s: &mut Suite,
    ty: &'static str,
    make: impl Fn() -> M,
    batch: &M::Batch,
) {
    let name = |m: &str| -> &'static str { Box::leak(format!("{ty}::{m}").into_boxed_str()) };
    s.case(name("read_params"), SHAPES, "a buffer one too long", || {
        let m = make();
        m.read_params(&mut vec![0.0; m.num_params() + 1]).is_err()
    });
    s.case(name("write_params"), SHAPES, "one value too few", || {
        let mut m = make();
        let n = m.num_params();
        m.write_params(&vec![0.0; n.saturating_sub(1)]).is_err()
    });
    s.case(name("write_params"), NONFINITE, "a NaN parameter", || {
        let mut m = make();
        let n = m.num_params();
        let mut p = vec![0.1; n];
        p[0] = f64::NAN;
        let refused = m.write_params(&p).is_err();
        // Accepted or not, no later gradient may be NaN and Ok.
        let mut grad = vec![0.0; n];
        refused || m.loss_and_grad(batch, &mut grad).is_err()
    });
    s.case(name("loss_and_grad"), SHAPES, "a gradient buffer one too short", || {
        let mut m = make();
        let mut grad = vec![0.0; m.num_params().saturating_sub(1)];
        m.loss_and_grad(batch, &mut grad).is_err()
    });
}

pub(crate) fn cases(s: &mut Suite) {
    ode_solvers_api(s);
    autodiff_api(s);
    adjoint_api(s);
    train_api(s);
    models::cases(s);
}

mod models;
