//! The bad-input suite (docs/RELIABILITY.md): every public entry point of the crates fed
//! non-finite values, zero and huge sizes, wrong lengths and shapes, out-of-range and
//! inconsistent options, failing callbacks and malformed files. Each case runs under
//! `catch_unwind` and asserts the typed error variant (or the correct finite answer where
//! `Ok` is right); a panic fails the suite with the case's name. At the end the suite prints
//! the table of entry points × input classes with the number of cases.
//!
//! `cargo test -p benches --test bad_input -- --nocapture` prints the table.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

mod api;
mod inventory;

use adjoint::{
    gradient, AdjointOptions, AutodiffField, ClosureField, OdeBlock, Strategy, VectorField,
};
use autodiff::checkpoint::{Checkpoint, OptimizerState};
use autodiff::layers::{avg_pool2d, global_avg_pool, Activation, Conv2d, GroupNorm, Linear, Mlp};
use autodiff::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use autodiff::{ConvGeometry, Executor, Graph, GraphBlock, Mat, Rng};
use ode_solvers::{
    odeint, odeint_batch, odeint_batch_each, odeint_with_event, Event, Fallible, Method, Options,
    RhsError, RkIntegrator, StateLayout, Tableau,
};

/// Input classes.
const NONFINITE: &str = "non-finite values";
const SIZES: &str = "zero or huge sizes";
const SHAPES: &str = "wrong lengths and shapes";
const OPTIONS: &str = "out-of-range or inconsistent options";
const CALLBACK: &str = "failing or non-finite callbacks";
const FILES: &str = "malformed, truncated or forged files";

#[derive(Default)]
struct Suite {
    counts: BTreeMap<(&'static str, &'static str), usize>,
    failures: Vec<String>,
}

impl Suite {
    /// Runs a case: `f` returns whether the outcome is the expected one.
    fn case(
        &mut self,
        entry: &'static str,
        class: &'static str,
        name: &str,
        f: impl FnOnce() -> bool,
    ) {
        *self.counts.entry((entry, class)).or_default() += 1;
        if std::env::var_os("BAD_INPUT_TRACE").is_some() {
            eprintln!("case: {entry} / {name}");
        }
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(true) => {}
            Ok(false) => self.failures.push(format!("{entry} / {name}: wrong outcome")),
            Err(_) => self.failures.push(format!("{entry} / {name}: PANICKED")),
        }
    }

    fn finish(self) {
        let classes = [NONFINITE, SIZES, SHAPES, OPTIONS, CALLBACK, FILES];
        let mut entries: Vec<&str> = self.counts.keys().map(|k| k.0).collect();
        entries.dedup();
        println!("\n| entry point | {} | cases |", classes.join(" | "));
        println!("|---|{}---|", "---|".repeat(classes.len()));
        let mut total = 0;
        for e in entries {
            let row: Vec<String> = classes
                .iter()
                .map(|c| self.counts.get(&(e, *c)).map_or("-".into(), |n| n.to_string()))
                .collect();
            let n: usize = classes.iter().filter_map(|c| self.counts.get(&(e, *c))).sum();
            total += n;
            println!("| `{e}` | {} | {n} |", row.join(" | "));
        }
        println!("\n{total} cases, {} failures (panics or wrong outcomes)", self.failures.len());
        // Every public function and method that takes an input has a row of its own.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let api = inventory::entry_points(&root);
        let keys: Vec<&str> = self.counts.keys().map(|k| k.0).collect();
        let missing: Vec<String> = api
            .iter()
            .filter(|ep| !keys.iter().any(|e| inventory::covers(e, ep)))
            .map(|ep| format!("{} ({})", ep.name, ep.file))
            .collect();
        println!(
            "{} public entry points that take an input, {} with cases of their own",
            api.len(),
            api.len() - missing.len()
        );
        assert!(self.failures.is_empty(), "bad-input failures:\n{}", self.failures.join("\n"));
        assert!(api.len() > 300, "the inventory found only {} entry points", api.len());
        assert!(
            missing.is_empty(),
            "{} public entry points have no bad-input case:\n{}",
            missing.len(),
            missing.join("\n")
        );
    }
}

/// A one-channel 4×4 image under a 3×3 window, stride 1, padding 1.
fn small_geometry() -> ConvGeometry {
    ConvGeometry {
        channels: 1,
        height: 4,
        width: 4,
        kernel_h: 3,
        kernel_w: 3,
        stride: 1,
        padding: 1,
    }
}

fn decay(_t: f64, y: &[f64], dy: &mut [f64]) {
    for (d, x) in dy.iter_mut().zip(y) {
        *d = -x;
    }
}

use ode_solvers::Error as E;

fn ode_solvers_cases(s: &mut Suite) {
    let ok = Options::new(Method::Dopri5);
    let run = |y0: &[f64], ts: &[f64], o: &Options| odeint(&decay, y0, ts, o);
    s.case("Options::atol_per_component", SHAPES, "3 tolerances for 2 components", || {
        run(&[1.0, 2.0], &[0.0, 1.0], &ok.clone().atol_per_component(vec![1e-6; 3])).is_err()
    });
    s.case("Options::atol_per_component", NONFINITE, "a NaN tolerance", || {
        run(&[1.0, 2.0], &[0.0, 1.0], &ok.clone().atol_per_component(vec![1e-6, f64::NAN])).is_err()
    });
    s.case("Options::atol_per_component", OPTIONS, "a negative tolerance", || {
        run(&[1.0, 2.0], &[0.0, 1.0], &ok.clone().atol_per_component(vec![1e-6, -1.0])).is_err()
    });
    s.case("Options::first_step", OPTIONS, "a negative first step", || {
        run(&[1.0], &[0.0, 1.0], &ok.clone().first_step(-0.1)).is_err()
    });
    s.case("Options::first_step", NONFINITE, "a NaN first step", || {
        run(&[1.0], &[0.0, 1.0], &ok.clone().first_step(f64::NAN)).is_err()
    });
    s.case("Options::first_step", OPTIONS, "a first step past the interval: still exact", || {
        run(&[1.0], &[0.0, 1.0], &ok.clone().first_step(10.0).rtol(1e-10).atol(1e-12))
            .is_ok_and(|sol| (sol.ys[1][0] - (-1.0f64).exp()).abs() < 1e-8)
    });
    s.case("convergence::fit_slope", SIZES, "one point: NaN, not a number made up", || {
        ode_solvers::convergence::fit_slope(&[0.1], &[0.01]).is_nan()
    });
    s.case("convergence::fit_slope", SHAPES, "equal step sizes: NaN", || {
        ode_solvers::convergence::fit_slope(&[0.1, 0.1], &[0.01, 0.02]).is_nan()
    });
    s.case("odeint", NONFINITE, "NaN y0", || {
        matches!(run(&[f64::NAN], &[0.0, 1.0], &ok), Err(E::NonFiniteInput { what: "y0", .. }))
    });
    s.case("odeint", NONFINITE, "inf time", || {
        matches!(run(&[1.0], &[0.0, f64::INFINITY], &ok), Err(E::NonFiniteInput { what: "ts", .. }))
    });
    s.case("odeint", NONFINITE, "NaN rtol", || {
        matches!(
            run(&[1.0], &[0.0, 1.0], &ok.clone().rtol(f64::NAN)),
            Err(E::InvalidTolerance { .. })
        )
    });
    s.case("odeint", NONFINITE, "inf atol", || {
        matches!(
            run(&[1.0], &[0.0, 1.0], &ok.clone().atol(f64::INFINITY)),
            Err(E::InvalidTolerance { .. })
        )
    });
    s.case("odeint", OPTIONS, "rtol <= 0", || {
        matches!(run(&[1.0], &[0.0, 1.0], &ok.clone().rtol(0.0)), Err(E::InvalidTolerance { .. }))
    });
    s.case("odeint", OPTIONS, "negative atol", || {
        matches!(run(&[1.0], &[0.0, 1.0], &ok.clone().atol(-1.0)), Err(E::InvalidTolerance { .. }))
    });
    s.case("odeint", OPTIONS, "unsorted times", || {
        matches!(run(&[1.0], &[0.0, 2.0, 1.0], &ok), Err(E::UnsortedTimes { index: 2 }))
    });
    s.case("odeint", OPTIONS, "repeated time", || {
        matches!(run(&[1.0], &[0.0, 0.0], &ok), Err(E::UnsortedTimes { .. }))
    });
    s.case("odeint", SIZES, "no times", || matches!(run(&[1.0], &[], &ok), Err(E::EmptyTimes)));
    s.case("odeint", SIZES, "empty state", || {
        run(&[], &[0.0, 1.0], &ok).is_ok_and(|s| s.ys[1].is_empty())
    });
    s.case("odeint", OPTIONS, "too many steps", || {
        matches!(
            run(&[1.0], &[0.0, 1e6], &ok.clone().max_steps(10)),
            Err(E::MaxStepsReached { .. })
        )
    });
    s.case("odeint", OPTIONS, "dt_min above dt_max", || {
        matches!(
            run(&[1.0], &[0.0, 1.0], &ok.clone().dt_min(1.0).dt_max(0.1)),
            Err(E::InvalidStepSize { .. })
        )
    });
    s.case("odeint", OPTIONS, "zero step size", || {
        matches!(
            run(&[1.0], &[0.0, 1.0], &Options::new(Method::Rk4).step_size(0.0)),
            Err(E::InvalidStepSize { .. })
        )
    });
    s.case("odeint", OPTIONS, "NaN step size", || {
        matches!(
            run(&[1.0], &[0.0, 1.0], &Options::new(Method::Rk4).step_size(f64::NAN)),
            Err(E::InvalidStepSize { .. })
        )
    });
    s.case("odeint", OPTIONS, "fixed step method without step", || {
        matches!(
            run(&[1.0], &[0.0, 1.0], &Options::new(Method::Euler)),
            Err(E::MissingStepSize { .. })
        )
    });
    s.case("odeint", OPTIONS, "Adams order 9", || {
        matches!(
            run(&[1.0], &[0.0, 1.0], &Options::new(Method::AdamsBashforth(9)).step_size(0.1)),
            Err(E::UnsupportedMethod { .. })
        )
    });
    s.case("odeint", OPTIONS, "step underflow (dt_min)", || {
        let stiff = |_t: f64, y: &[f64], dy: &mut [f64]| dy[0] = -1e9 * y[0];
        matches!(
            odeint(&stiff, &[1.0], &[0.0, 1.0], &ok.clone().dt_min(1e-3)),
            Err(E::StepSizeTooSmall { .. })
        )
    });
    s.case("odeint", SHAPES, "per-component rtol of the wrong length", || {
        matches!(
            run(&[1.0], &[0.0, 1.0], &ok.clone().rtol_per_component(vec![1e-6; 3])),
            Err(E::DimensionMismatch { .. })
        )
    });
    s.case("odeint", SHAPES, "layout of the wrong length", || {
        matches!(
            run(&[1.0, 2.0], &[0.0, 1.0], &ok.clone().layout(StateLayout::single("z", 3))),
            Err(E::DimensionMismatch { .. })
        )
    });
    s.case("odeint", CALLBACK, "rhs returns NaN", || {
        let f = |_t: f64, _y: &[f64], dy: &mut [f64]| dy[0] = f64::NAN;
        matches!(odeint(&f, &[1.0], &[0.0, 1.0], &ok), Err(E::NonFinite { .. }))
    });
    s.case("odeint", CALLBACK, "rhs returns +inf at t0", || {
        let f = |_t: f64, _y: &[f64], dy: &mut [f64]| dy[0] = f64::INFINITY;
        matches!(odeint(&f, &[1.0], &[0.0, 1.0], &ok), Err(E::NonFinite { t }) if t == 0.0)
    });
    s.case("odeint", CALLBACK, "rhs fails", || {
        let f = Fallible(|_t: f64, _y: &[f64], _dy: &mut [f64]| Err::<(), _>(RhsError::msg("no")));
        matches!(odeint(&f, &[1.0], &[0.0, 1.0], &ok), Err(E::Rhs { .. }))
    });
    s.case("odeint", CALLBACK, "blow-up", || {
        let f = |_t: f64, y: &[f64], dy: &mut [f64]| dy[0] = y[0] * y[0];
        matches!(
            odeint(&f, &[1.0], &[0.0, 2.0], &ok),
            Err(E::StepSizeTooSmall { .. } | E::NonFinite { .. } | E::MaxStepsReached { .. })
        )
    });
    s.case("odeint (f32)", NONFINITE, "y0 = f32::MAX overflows", || {
        let f = |_t: f32, y: &[f32], dy: &mut [f32]| dy[0] = y[0] * 10.0;
        matches!(odeint(&f, &[f32::MAX], &[0.0f32, 1.0], &ok), Err(E::NonFinite { .. }))
    });
    s.case("odeint (f32)", OPTIONS, "rtol = 1e-50 underflows", || {
        let f = |_t: f32, y: &[f32], dy: &mut [f32]| dy[0] = -y[0];
        matches!(
            odeint(&f, &[1.0f32], &[0.0f32, 1.0], &ok.clone().rtol(1e-50)),
            Err(E::InvalidTolerance { .. })
        )
    });
    s.case("odeint", OPTIONS, "dense output with an Adams method", || {
        matches!(
            run(
                &[1.0],
                &[0.0, 1.0],
                &Options::new(Method::AdamsBashforth(2)).step_size(0.1).dense(true)
            ),
            Err(E::UnsupportedMethod { .. })
        )
    });
    s.case("Solution::at", OPTIONS, "outside the interval", || {
        run(&[1.0], &[0.0, 1.0], &ok.clone().dense(true))
            .is_ok_and(|s| matches!(s.at(2.0), Err(E::OutsideInterval { .. })))
    });
    s.case("Solution::at", NONFINITE, "NaN time", || {
        run(&[1.0], &[0.0, 1.0], &ok.clone().dense(true))
            .is_ok_and(|s| matches!(s.at(f64::NAN), Err(E::OutsideInterval { .. })))
    });
    s.case("Solution::at", OPTIONS, "no dense output", || {
        run(&[1.0], &[0.0, 1.0], &ok).is_ok_and(|s| matches!(s.at(0.5), Err(E::NoDenseOutput)))
    });
    s.case("odeint_with_event", CALLBACK, "event always NaN", || {
        let ev = Event::new(|_t: f64, _y: &[f64]| f64::NAN);
        matches!(
            odeint_with_event(&decay, &[1.0], &[0.0, 1.0], &ok, &ev),
            Err(E::NonFiniteEvent { .. })
        )
    });
    s.case("odeint_with_event", OPTIONS, "Adams method", || {
        let ev = Event::new(|_t: f64, y: &[f64]| y[0]);
        matches!(
            odeint_with_event(
                &decay,
                &[1.0],
                &[0.0, 1.0],
                &Options::new(Method::AdamsBashforth(2)).step_size(0.1),
                &ev
            ),
            Err(E::UnsupportedMethod { .. })
        )
    });
    s.case("odeint_batch", NONFINITE, "one NaN member", || {
        matches!(
            odeint_batch(&decay, &[vec![1.0], vec![f64::NAN]], &[0.0, 1.0], &ok),
            Err(E::Batch { index: 1, .. })
        )
    });
    s.case("odeint_batch", SIZES, "no members", || {
        odeint_batch(&decay, &Vec::<Vec<f64>>::new(), &[0.0, 1.0], &ok).is_ok_and(|v| v.is_empty())
    });
    s.case("odeint_batch_each", NONFINITE, "one NaN member", || {
        let r = odeint_batch_each(&decay, &[vec![1.0], vec![f64::NAN]], &[0.0, 1.0], &ok);
        r[0].is_ok() && matches!(r[1], Err(E::NonFiniteInput { .. }))
    });
    for method in [Method::AdamsBashforth(3), Method::AdamsBashforthMoulton(5)] {
        s.case("odeint (Adams)", SIZES, "empty state", || {
            odeint(&decay, &[], &[0.0, 1.0], &Options::new(method).step_size(0.1)).is_ok()
        });
    }
    s.case("RkIntegrator::new", OPTIONS, "an Adams method", || {
        RkIntegrator::new(&decay, 1, &Options::new(Method::AdamsBashforth(2))).is_err()
    });
    s.case("RkIntegrator::init", SHAPES, "y0 of the wrong length", || {
        let mut rk = RkIntegrator::new(&decay, 2, &ok).unwrap();
        matches!(rk.init(0.0, &[1.0], 1.0), Err(E::DimensionMismatch { .. }))
    });
    s.case("RkIntegrator::init", NONFINITE, "NaN y0", || {
        let mut rk = RkIntegrator::new(&decay, 1, &ok).unwrap();
        matches!(rk.init(0.0, &[f64::NAN], 1.0), Err(E::NonFiniteInput { .. }))
    });
    s.case("RkIntegrator::step_to", OPTIONS, "zero-length step", || {
        let mut rk = RkIntegrator::new(&decay, 1, &ok).unwrap();
        rk.init(0.0, &[1.0], 1.0).unwrap();
        matches!(rk.step_to(0.0), Err(E::StepSizeTooSmall { .. }))
    });
    s.case("RkIntegrator::interpolate", SHAPES, "wrong buffer", || {
        let mut rk = RkIntegrator::new(&decay, 1, &ok).unwrap();
        rk.init(0.0, &[1.0], 1.0).unwrap();
        matches!(rk.interpolate(0.5, &mut [0.0; 3]), Err(E::DimensionMismatch { .. }))
    });
    s.case("RkIntegrator::dense_weights", SHAPES, "wrong buffer", || {
        let mut rk = RkIntegrator::new(&decay, 1, &ok).unwrap();
        matches!(rk.dense_weights(0.5, &mut [0.0; 2]), Err(E::DimensionMismatch { .. }))
    });
    s.case("RkIntegrator::stage_input", SHAPES, "stage out of range", || {
        let rk = RkIntegrator::new(&decay, 1, &ok).unwrap();
        rk.stage_input(99, &mut [0.0]).is_err()
            && rk.stage(99).is_none()
            && rk.stage_time(99).is_none()
    });
    for (name, t) in [
        ("no rows", Tableau { a: vec![], ..Method::Rk4.tableau().unwrap().clone() }),
        (
            "ragged row",
            Tableau {
                a: vec![vec![], vec![0.5, 0.5], vec![0.0], vec![0.0, 0.0, 1.0]],
                ..Method::Rk4.tableau().unwrap().clone()
            },
        ),
        (
            "short error weights",
            Tableau {
                error: ode_solvers::tableau::ErrorEstimate::Embedded {
                    order: 4,
                    weights: vec![0.1],
                },
                ..Method::Dopri5.tableau().unwrap().clone()
            },
        ),
        ("extra stages without nodes", {
            let mut t = Method::Dop853.tableau().unwrap().clone();
            t.dense.extra_c.clear();
            t
        }),
        ("short b", Tableau { b: vec![1.0], ..Method::Rk4.tableau().unwrap().clone() }),
    ] {
        s.case("Tableau::check", SHAPES, name, || {
            t.check().is_err() && !t.is_fsal() || t.check().is_err()
        });
    }
    s.case("Method::from_str", OPTIONS, "unknown name", || {
        matches!("rk45".parse::<Method>(), Err(E::UnknownMethod { .. }))
    });
    s.case("Method::from_str", SIZES, "empty name", || "".parse::<Method>().is_err());
    s.case("StateLayout::check", SIZES, "huge parts saturate", || {
        StateLayout::new().part("a", usize::MAX, true).part("b", 5, false).check(3).is_err()
    });
}

use autodiff::Error as A;

fn autodiff_cases(s: &mut Suite) {
    // Builders: shapes and sizes.
    let mut g = Graph::new();
    let x = g.input(3, 4);
    let y = g.input(2, 5);
    s.case("Graph::matmul_t", SHAPES, "transposed inner sizes differ", || {
        g.clone().matmul_t(x, y, true, false).is_err()
    });
    s.case("Graph::matmul_t", SHAPES, "x·xᵀ is 3×3", || {
        let mut h = g.clone();
        h.matmul_t(x, x, false, true).is_ok_and(|v| h.shape(v).is_ok_and(|s| s == (3, 3)))
    });
    s.case("Graph::broadcast_to", SHAPES, "to a smaller shape", || {
        g.clone().broadcast_to(x, (1, 4)).is_err()
    });
    s.case("Graph::broadcast_to", SIZES, "to a huge shape", || {
        g.clone().broadcast_to(x, (usize::MAX, 4)).is_err()
    });
    s.case("Graph::sum_to", SHAPES, "to an unrelated shape", || {
        g.clone().sum_to(x, (2, 2)).is_err()
    });
    s.case("Graph::transpose", SHAPES, "a stale variable", || Graph::new().transpose(x).is_err());
    s.case("Graph::logsumexp_rows", SHAPES, "a stale variable", || {
        Graph::new().logsumexp_rows(y).is_err()
    });
    s.case("Graph::log_softmax_rows", SHAPES, "a stale variable", || {
        Graph::new().log_softmax_rows(y).is_err()
    });
    s.case("Graph::gaussian_log_density", SHAPES, "mean of another shape", || {
        g.clone().gaussian_log_density(x, y, x).is_err()
    });
    s.case("Graph::elu", OPTIONS, "NaN alpha", || g.clone().elu(x, f64::NAN).is_err());
    s.case("Graph::scale", NONFINITE, "infinite factor", || {
        g.clone().scale(x, f64::INFINITY).is_err()
    });
    s.case("Graph::add_scalar", NONFINITE, "NaN constant", || {
        g.clone().add_scalar(x, f64::NAN).is_err()
    });
    s.case("Graph::powi", SHAPES, "a stale variable", || Graph::new().powi(x, 2).is_err());
    s.case("Graph::rows_to_blocks", SIZES, "zero groups", || {
        g.clone().rows_to_blocks(x, 0).is_err()
    });
    s.case("Graph::rows_to_blocks", SHAPES, "groups not dividing the columns", || {
        g.clone().rows_to_blocks(x, 3).is_err()
    });
    s.case("Graph::blocks_to_rows", SIZES, "huge groups", || {
        g.clone().blocks_to_rows(x, usize::MAX).is_err()
    });
    s.case("Graph::positions_to_rows", SIZES, "zero positions", || {
        g.clone().positions_to_rows(x, 0).is_err()
    });
    s.case("Graph::rows_to_positions", SHAPES, "positions not dividing the columns", || {
        g.clone().rows_to_positions(x, 3).is_err()
    });
    s.case("optim::clip_grad_norm", OPTIONS, "negative max norm: unchanged", || {
        let mut gr = [3.0, 4.0];
        autodiff::optim::clip_grad_norm(&mut gr, -1.0) == 5.0 && gr == [3.0, 4.0]
    });
    s.case("optim::clip_grad_norm", NONFINITE, "NaN max norm: unchanged", || {
        let mut gr = [3.0, 4.0];
        autodiff::optim::clip_grad_norm(&mut gr, f64::NAN) == 5.0 && gr == [3.0, 4.0]
    });
    s.case("optim::clip_grad_norm", NONFINITE, "an infinite gradient is not zeroed", || {
        let mut gr = [f64::INFINITY, 1.0];
        autodiff::optim::clip_grad_norm(&mut gr, 1.0).is_infinite() && gr[1] == 1.0
    });
    s.case("optim::clip_grad_norm", SIZES, "empty gradient", || {
        autodiff::optim::clip_grad_norm(&mut [], 1.0) == 0.0
    });
    s.case("Graph::matmul", SHAPES, "inner sizes differ", || {
        matches!(g.clone().matmul(x, y), Err(A::ShapeMismatch { .. }))
    });
    s.case("Graph::add", SHAPES, "no broadcast", || {
        matches!(g.clone().add(x, y), Err(A::ShapeMismatch { .. }))
    });
    s.case("Graph::tanh_grad", SHAPES, "no broadcast", || {
        matches!(g.clone().tanh_grad(x, y), Err(A::ShapeMismatch { .. }))
    });
    s.case("Graph::tanh_grad", SHAPES, "an operand of another graph", || {
        g.clone().tanh_grad(x, autodiff::Var::from_index(usize::MAX)).is_err()
    });
    s.case("Graph::concat_cols", SHAPES, "rows differ", || g.clone().concat_cols(&[x, y]).is_err());
    s.case("Graph::concat_cols", SIZES, "no operands", || g.clone().concat_cols(&[]).is_err());
    s.case("Graph::slice_cols", SIZES, "start near usize::MAX", || {
        g.clone().slice_cols(x, usize::MAX, 2).is_err()
    });
    s.case("Graph::slice_cols", SIZES, "zero width", || g.clone().slice_cols(x, 0, 0).is_err());
    s.case("Graph::pad_cols", SIZES, "start near usize::MAX", || {
        g.clone().pad_cols(x, usize::MAX - 1, 8).is_err()
    });
    s.case("Graph::repeat_cols", SIZES, "times near usize::MAX", || {
        g.clone().repeat_cols(x, usize::MAX / 2).is_err()
    });
    s.case("Graph::repeat_cols", SIZES, "zero times", || g.clone().repeat_cols(x, 0).is_err());
    s.case("Graph::sum_groups", SHAPES, "size does not divide", || {
        g.clone().sum_groups(x, 3).is_err()
    });
    s.case("Graph::node", SHAPES, "unknown var", || {
        matches!(g.node(autodiff::Var::from_index(999)), Err(A::UnknownVar { .. }))
    });
    s.case("Graph::vjp", SHAPES, "cotangent shape", || g.clone().vjp(&[(x, y)], &[x]).is_err());
    s.case("Graph::grad", SHAPES, "non-scalar output", || g.clone().grad(x, &[x]).is_err());
    s.case("Graph::cross_entropy", SHAPES, "targets shape", || {
        g.clone().cross_entropy(x, y).is_err()
    });
    s.case("Executor::new", SIZES, "a huge input", || {
        let mut h = Graph::new();
        let big = h.input(usize::MAX / 4, 4);
        matches!(Executor::new(&h, &[big]), Err(A::InvalidArgument { .. }))
    });
    s.case("Executor::build", SIZES, "a huge input in f32", || {
        let mut h = Graph::new();
        let big = h.input(usize::MAX / 2, 4);
        matches!(Executor::<f32>::build(&h, &[big]), Err(A::InvalidArgument { .. }))
    });
    s.case("Executor::run", SHAPES, "another graph", || {
        let mut h = Graph::new();
        let i = h.input(1, 1);
        let o = h.tanh(i).unwrap();
        let mut exe = Executor::new(&h, &[o]).unwrap();
        let other = h.clone();
        exe.run(&other, &[&Mat::zeros(1, 1)]).is_err()
    });
    s.case("Executor::run", SHAPES, "wrong input count", || {
        let mut h = Graph::new();
        let i = h.input(1, 1);
        let o = h.tanh(i).unwrap();
        let mut exe = Executor::new(&h, &[o]).unwrap();
        matches!(exe.run(&h, &[]), Err(A::InputCount { .. }))
    });
    s.case("Executor::run", SHAPES, "wrong input shape", || {
        let mut h = Graph::new();
        let i = h.input(1, 1);
        let o = h.tanh(i).unwrap();
        let mut exe = Executor::new(&h, &[o]).unwrap();
        matches!(exe.run(&h, &[&Mat::zeros(2, 2)]), Err(A::ShapeMismatch { .. }))
    });
    s.case("Executor::gather", SHAPES, "buffer too short", || {
        let mut h = Graph::new();
        let i = h.input(2, 2);
        let o = h.tanh(i).unwrap();
        let mut exe = Executor::new(&h, &[o]).unwrap();
        exe.run(&h, &[&Mat::zeros(2, 2)]).unwrap();
        exe.gather(&h, &[o], &mut [0.0; 3]).is_err()
    });
    s.case("Executor::set_input", SHAPES, "not an input", || {
        let mut h = Graph::new();
        let i = h.input(2, 2);
        let o = h.tanh(i).unwrap();
        let mut exe = Executor::new(&h, &[o]).unwrap();
        exe.set_input(&h, o, &[0.0; 4]).is_err()
    });
    // Zero-row batches through every layer and the image operations.
    s.case("layers (zero rows)", SIZES, "MLP, conv, group norm, pools, GRU", || {
        let mut rng = Rng::new(0);
        let mut h = Graph::new();
        let geom = ConvGeometry {
            channels: 2,
            height: 4,
            width: 4,
            kernel_h: 3,
            kernel_w: 3,
            stride: 1,
            padding: 1,
        };
        let img = h.input(0, 32);
        let c = Conv2d::new(&mut h, "c", geom, 2, &mut rng).unwrap().forward(&mut h, img).unwrap();
        let n = GroupNorm::new(&mut h, "n", 1, 2, 16).unwrap().forward(&mut h, c).unwrap();
        let pool = avg_pool2d(
            &mut h,
            n,
            ConvGeometry { kernel_h: 2, kernel_w: 2, stride: 2, padding: 0, ..geom },
        )
        .unwrap();
        let gp = global_avg_pool(&mut h, n, 16).unwrap();
        let v = h.input(0, 3);
        let m = Mlp::new(&mut h, "m", &[3, 4, 2], Activation::Tanh, &mut rng)
            .unwrap()
            .forward(&mut h, v)
            .unwrap();
        let gru = autodiff::layers::GruCell::new(&mut h, "g", 3, 2, &mut rng).unwrap();
        let hid = h.input(0, 2);
        let gh = gru.forward(&mut h, v, hid).unwrap();
        let outs = [pool, gp, m, gh];
        let mut sum = h.fill(1, 1, 0.0);
        for o in outs {
            let so = h.sum(o, autodiff::Axis::All).unwrap();
            sum = h.add(sum, so).unwrap();
        }
        let params = h.param_vars().to_vec();
        let grads = h.grad(sum, &params).unwrap();
        let mut all = outs.to_vec();
        all.extend(grads);
        let r =
            autodiff::eval(&h, &all, &[&Mat::zeros(0, 32), &Mat::zeros(0, 3), &Mat::zeros(0, 2)]);
        r.is_ok_and(|v| v.iter().flat_map(|m| m.iter()).all(|x| x.is_finite()))
    });
    for (name, geom) in [
        (
            "huge padding",
            ConvGeometry {
                channels: 1,
                height: 4,
                width: 4,
                kernel_h: 3,
                kernel_w: 3,
                stride: 1,
                padding: usize::MAX / 2 + 1,
            },
        ),
        (
            "window larger than the image",
            ConvGeometry {
                channels: 1,
                height: 2,
                width: 2,
                kernel_h: 5,
                kernel_w: 5,
                stride: 1,
                padding: 0,
            },
        ),
        (
            "zero stride",
            ConvGeometry {
                channels: 1,
                height: 4,
                width: 4,
                kernel_h: 3,
                kernel_w: 3,
                stride: 0,
                padding: 1,
            },
        ),
        (
            "huge channels",
            ConvGeometry {
                channels: usize::MAX / 3,
                height: 4,
                width: 4,
                kernel_h: 3,
                kernel_w: 3,
                stride: 1,
                padding: 1,
            },
        ),
    ] {
        s.case("Graph::im2col", SIZES, name, || {
            let mut h = Graph::new();
            let img = h.input(2, 16);
            h.im2col(img, geom).is_err() && avg_pool2d(&mut h, img, geom).is_err()
        });
    }
    s.case("Linear::from_values", SHAPES, "bias of the wrong length", || {
        let mut h = Graph::new();
        Linear::from_values(&mut h, "l", &Mat::zeros(2, 3), &Mat::zeros(1, 2)).is_err()
    });
    // Optimisers.
    for (name, lr) in [("NaN", f64::NAN), ("negative", -1e-3), ("infinite", f64::INFINITY)] {
        s.case("Adam::step", OPTIONS, name, || {
            let mut p = [1.0];
            Adam::new(AdamConfig { lr, ..AdamConfig::default() }).step(&mut p, &[1.0]).is_err()
                && p == [1.0]
        });
        s.case("Sgd::step", OPTIONS, name, || {
            let mut p = [1.0];
            Sgd::new(SgdConfig { lr, ..SgdConfig::default() }).step(&mut p, &[1.0]).is_err()
                && p == [1.0]
        });
    }
    s.case("Adam::step", OPTIONS, "beta1 = 1", || {
        Adam::new(AdamConfig { beta1: 1.0, ..AdamConfig::default() })
            .step(&mut [1.0], &[1.0])
            .is_err()
    });
    s.case("Adam::step", OPTIONS, "eps = 0", || {
        Adam::new(AdamConfig { eps: 0.0, ..AdamConfig::default() })
            .step(&mut [1.0], &[0.0])
            .is_err()
    });
    s.case("Sgd::step", OPTIONS, "momentum = 1", || {
        Sgd::new(SgdConfig { momentum: 1.0, ..SgdConfig::default() })
            .step(&mut [1.0], &[1.0])
            .is_err()
    });
    s.case("Adam::step", NONFINITE, "NaN gradient", || {
        let mut p = [1.0, 2.0];
        Adam::new(AdamConfig::default()).step(&mut p, &[0.1, f64::NAN]).is_err() && p == [1.0, 2.0]
    });
    s.case("Sgd::step", SHAPES, "gradient of the wrong length", || {
        Sgd::new(SgdConfig::default()).step(&mut [1.0], &[1.0, 2.0]).is_err()
    });
    s.case("OptimizerState::step", OPTIONS, "no optimizer", || {
        OptimizerState::None.step(&mut [1.0], &[1.0]).is_err()
    });
    // Checkpoints.
    let mut h = Graph::new();
    h.param("w", &Mat::from_element(2, 2, 0.5));
    let good = Checkpoint::from_graph(&h, "m", OptimizerState::None, 3).to_bytes().unwrap();
    s.case("Checkpoint::from_bytes", FILES, "every truncation", || {
        (0..good.len()).all(|n| Checkpoint::from_bytes(&good[..n]).is_err())
    });
    s.case("Checkpoint::from_bytes", FILES, "every single-bit flip", || {
        (0..good.len()).all(|i| {
            let mut b = good.clone();
            b[i] ^= 1 << (i % 8);
            Checkpoint::from_bytes(&b).is_err()
        })
    });
    s.case("Checkpoint::from_bytes", FILES, "forged huge block shapes, valid checksum", || {
        let forged = Checkpoint {
            architecture: "m".into(),
            blocks: vec![autodiff::checkpoint::BlockShape {
                name: "w".into(),
                rows: usize::MAX,
                cols: 3,
            }],
            params: vec![0.0; 4],
            optimizer: OptimizerState::None,
            step: 0,
        };
        let bytes = autodiff::checkpoint::encode(autodiff::checkpoint::MAGIC, &forged).unwrap();
        matches!(Checkpoint::from_bytes(&bytes), Err(A::CorruptCheckpoint { .. }))
    });
    s.case("Checkpoint::from_bytes", FILES, "36-byte forged file, a length prefix of 2^28", || {
        let mut b = autodiff::checkpoint::MAGIC.to_vec();
        b.extend(1u32.to_le_bytes());
        b.extend(8u64.to_le_bytes());
        let payload = [252u8, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0, 0];
        let h = payload.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
            (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        b.extend(h.to_le_bytes());
        b.extend(payload);
        Checkpoint::from_bytes(&b).is_err()
    });
    s.case("Checkpoint::load", FILES, "missing file", || {
        matches!(Checkpoint::load(std::path::Path::new("/nonexistent/x.ckpt")), Err(A::Io { .. }))
    });
    s.case("Checkpoint::restore_into", FILES, "another architecture", || {
        let c = Checkpoint::from_bytes(&good).unwrap();
        c.restore_into(&mut h.clone(), "other").is_err()
    });
    s.case("GraphBlock::new", SHAPES, "two inputs", || {
        let mut h = Graph::new();
        let a = h.input(1, 1);
        let _b = h.input(1, 1);
        GraphBlock::new(h, a, a).is_err()
    });
    s.case("GraphBlock::build", SHAPES, "two inputs, f32", || {
        let mut h = Graph::new();
        let a = h.input(1, 1);
        let _b = h.input(1, 1);
        GraphBlock::<f32>::build(h, a, a).is_err()
    });
    s.case("GraphBlock::forward", SHAPES, "input of the wrong length", || {
        let mut h = Graph::new();
        let a = h.input(2, 1);
        let o = h.tanh(a).unwrap();
        GraphBlock::new(h, a, o).unwrap().forward(&[1.0]).is_err()
    });
}

use adjoint::Error as J;

fn field() -> AutodiffField {
    let mut g = Graph::new();
    let z = g.input(2, 2);
    let f = Mlp::new(&mut g, "f", &[2, 4, 2], Activation::Tanh, &mut Rng::new(0))
        .unwrap()
        .forward(&mut g, z)
        .unwrap();
    AutodiffField::new(g, f).unwrap()
}

fn adjoint_cases(s: &mut Suite) {
    {
        use adjoint::integrands::{
            exact_trace, hutchinson_trace, jacobian_frobenius, kinetic_energy, probe_vjp,
        };
        let mut g = Graph::new();
        let z = g.input(3, 2);
        let other = g.input(4, 2);
        let w = g.input(2, 2);
        let f = g.matmul(z, w).unwrap();
        s.case("integrands::probe_vjp", SHAPES, "noise of another shape", || {
            probe_vjp(&mut g.clone(), f, z, other).is_err()
        });
        s.case("integrands::hutchinson_trace", SHAPES, "probe and noise differ", || {
            hutchinson_trace(&mut g.clone(), z, other).is_err()
        });
        s.case("integrands::exact_trace", SHAPES, "a stale state variable", || {
            exact_trace(&mut Graph::new(), f, z).is_err()
        });
        s.case("integrands::kinetic_energy", SHAPES, "a stale field variable", || {
            kinetic_energy(&mut Graph::new(), f).is_err()
        });
        s.case("integrands::jacobian_frobenius", SHAPES, "a stale probe", || {
            jacobian_frobenius(&mut Graph::new(), f).is_err()
        });
        s.case("integrands::exact_trace", SHAPES, "a linear field: tr W per row", || {
            let mut h = g.clone();
            exact_trace(&mut h, f, z).is_ok_and(|t| h.shape(t).is_ok_and(|s| s == (3, 1)))
        });
    }
    let f = field();
    let opts = AdjointOptions::new(Options::new(Method::Dopri5));
    let z0 = [0.1, 0.2, 0.3, 0.4];
    let loss = |zs: &[Vec<f64>]| (zs[1].iter().sum::<f64>(), vec![vec![0.0; 4], vec![1.0; 4]]);
    for strategy in Strategy::all() {
        s.case("gradient", SHAPES, "z0 of the wrong length", || {
            matches!(
                gradient(&f, &[1.0], &[0.0, 1.0], &loss, strategy, &opts),
                Err(J::DimensionMismatch { .. })
            )
        });
        s.case("gradient", NONFINITE, "NaN z0", || {
            matches!(
                gradient(&f, &[f64::NAN; 4], &[0.0, 1.0], &loss, strategy, &opts),
                Err(J::Solve { backward: false, .. })
            )
        });
        s.case("gradient", NONFINITE, "NaN time", || {
            matches!(
                gradient(&f, &z0, &[0.0, f64::NAN], &loss, strategy, &opts),
                Err(J::Solve { backward: false, .. })
            )
        });
        s.case("gradient", OPTIONS, "unsorted times", || {
            matches!(
                gradient(&f, &z0, &[0.0, 1.0, 0.5], &loss, strategy, &opts),
                Err(J::Solve { .. })
            )
        });
        s.case("gradient", SIZES, "no times", || {
            matches!(gradient(&f, &z0, &[], &loss, strategy, &opts), Err(J::Solve { .. }))
        });
        s.case("gradient", CALLBACK, "NaN loss", || {
            let nan = |zs: &[Vec<f64>]| (f64::NAN, vec![vec![0.0; 4]; zs.len()]);
            matches!(gradient(&f, &z0, &[0.0, 1.0], &nan, strategy, &opts), Err(J::NonFiniteLoss))
        });
        s.case("gradient", CALLBACK, "loss gradient of the wrong length", || {
            let bad = |zs: &[Vec<f64>]| (0.0, vec![vec![0.0; 3]; zs.len()]);
            matches!(
                gradient(&f, &z0, &[0.0, 1.0], &bad, strategy, &opts),
                Err(J::DimensionMismatch { .. })
            )
        });
        s.case("gradient", CALLBACK, "NaN in the VJP", || {
            let nan_vjp = ClosureField::new(
                1,
                vec![1.0],
                |_t, z: &[f64], p: &[f64], dz: &mut [f64]| dz[0] = p[0] * z[0],
                |_t, _z: &[f64], _p: &[f64], _a: &[f64], vz: &mut [f64], vp: &mut [f64]| {
                    vz[0] = 0.0;
                    vp[0] = f64::NAN;
                    0.0
                },
            );
            let l = |zs: &[Vec<f64>]| (zs[1][0], vec![vec![0.0], vec![1.0]]);
            matches!(
                gradient(&nan_vjp, &[1.0], &[0.0, 1.0], &l, strategy, &opts),
                Err(J::NonFiniteGradient { .. } | J::Solve { backward: true, .. })
            )
        });
        s.case("gradient", OPTIONS, "backward step budget", || {
            let o = opts.clone().backward(Options::new(Method::Dopri5).max_steps(1));
            strategy == Strategy::Direct
                || matches!(
                    gradient(&f, &z0, &[0.0, 5.0], &loss, strategy, &o),
                    Err(J::Solve { backward: true, .. })
                )
        });
        s.case("gradient", OPTIONS, "Adams method", || {
            gradient(
                &f,
                &z0,
                &[0.0, 1.0],
                &loss,
                strategy,
                &AdjointOptions::new(Options::new(Method::AdamsBashforth(2)).step_size(0.1)),
            )
            .is_err()
                || strategy != Strategy::Direct
        });
        let block = OdeBlock::new(strategy, opts.clone());
        s.case("OdeBlock::backward", SHAPES, "too few cotangents", || {
            let rec = block.forward(&f, &z0, &[0.0, 1.0]).unwrap();
            matches!(block.backward(&f, &rec, &[vec![0.0; 4]]), Err(J::DimensionMismatch { .. }))
        });
        s.case("OdeBlock::backward", NONFINITE, "NaN cotangent", || {
            let rec = block.forward(&f, &z0, &[0.0, 1.0]).unwrap();
            matches!(
                block.backward(&f, &rec, &[vec![0.0; 4], vec![f64::NAN; 4]]),
                Err(J::NonFiniteLoss)
            )
        });
        s.case("OdeBlock::backward", SHAPES, "a record of another field", || {
            let rec = block.forward(&f, &z0, &[0.0, 1.0]).unwrap();
            let small = ClosureField::new(
                1,
                vec![],
                |_t, z: &[f64], _p: &[f64], dz: &mut [f64]| dz[0] = -z[0],
                |_t, _z: &[f64], _p: &[f64], a: &[f64], vz: &mut [f64], _vp: &mut [f64]| {
                    vz[0] = -a[0];
                    0.0
                },
            );
            block.backward(&small, &rec, &[vec![0.0; 4], vec![1.0; 4]]).is_err()
        });
    }
    s.case("AutodiffField::new", SHAPES, "output shape differs", || {
        let mut g = Graph::new();
        let z = g.input(2, 2);
        let o = g.sum(z, autodiff::Axis::Rows).unwrap();
        AutodiffField::new(g, o).is_err()
    });
    s.case("AutodiffField::from_graph", SHAPES, "output shape differs, f32", || {
        let mut g = Graph::new();
        let z = g.input(2, 2);
        let o = g.sum(z, autodiff::Axis::Rows).unwrap();
        AutodiffField::<f32>::from_graph(g, o).is_err()
    });
    s.case("AutodiffField::new", SHAPES, "three inputs", || {
        let mut g = Graph::new();
        let z = g.input(1, 1);
        g.input(1, 1);
        g.input(1, 1);
        AutodiffField::new(g, z).is_err()
    });
    s.case("FieldBuilder::build", OPTIONS, "no state declared", || {
        AutodiffField::builder(Graph::new()).build().is_err()
    });
    s.case("FieldBuilder::build", OPTIONS, "an undeclared input", || {
        let mut g = Graph::new();
        let z = g.input(1, 2);
        let _other = g.input(1, 2);
        let f = g.tanh(z).unwrap();
        AutodiffField::builder(g).state(z, f).build().is_err()
    });
    s.case("FieldBuilder::build", OPTIONS, "a part name used twice", || {
        let mut g = Graph::new();
        let z = g.input(1, 2);
        let f = g.tanh(z).unwrap();
        let q = g.sum(z, autodiff::Axis::Rows).unwrap();
        AutodiffField::builder(g)
            .state(z, f)
            .integrand("q", q, false)
            .integrand("q", q, false)
            .build()
            .is_err()
    });
    s.case("AutodiffField::set_extra", NONFINITE, "NaN value", || {
        let mut g = Graph::new();
        let z = g.input(1, 1);
        let c = g.input(1, 1);
        let f = g.mul(z, c).unwrap();
        let mut fld = AutodiffField::builder(g).state(z, f).extra("c", c).build().unwrap();
        fld.set_extra("c", &[f64::NAN]).is_err() && fld.set_extra("d", &[1.0]).is_err()
    });
    s.case("VectorField::vjp", SHAPES, "buffers of the wrong length", || {
        let (mut dz, mut vz, mut vp) = (vec![0.0; 4], vec![0.0; 3], vec![0.0; f.params().len()]);
        matches!(
            f.vjp(0.0, &z0, &[0.0; 4], &mut dz, &mut vz, &mut vp),
            Err(J::DimensionMismatch { .. })
        )
    });
    s.case("OdeSystem::rhs (field)", SHAPES, "state of the wrong length", || {
        ode_solvers::OdeSystem::rhs(&f, 0.0, &[0.0; 3], &mut [0.0; 4]).is_err()
    });
    s.case("Strategy::from_str", OPTIONS, "unknown name", || {
        "adjoint".parse::<Strategy>().is_err()
    });
}

fn train_cases(s: &mut Suite) {
    use train::{
        load_csv, load_idx, Classifier, Dataset, Error as T, ImageBatches, Images, Quiet, Replicas,
        TrainConfig, TrainState, Trainer,
    };
    let dir = std::env::temp_dir().join(format!("bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    s.case("load_digits", FILES, "missing file", || {
        train::load_digits(&dir.join("no-such.csv")).is_err()
    });
    s.case("load_digits", FILES, "64 columns instead of 65", || {
        let row = vec!["1"; 64].join(",");
        train::load_digits(&write("d64.csv", row.as_bytes())).is_err()
    });
    s.case("load_digits", FILES, "a pixel of 17", || {
        let mut row = vec!["1"; 64];
        row[3] = "17";
        let text = format!("{},3\n", row.join(","));
        train::load_digits(&write("d17.csv", text.as_bytes())).is_err()
    });
    s.case("load_digits", FILES, "a label of 10", || {
        let text = format!("{},10\n", vec!["1"; 64].join(","));
        train::load_digits(&write("dl.csv", text.as_bytes())).is_err()
    });
    s.case("read_maybe_gz", FILES, "a truncated gzip file", || {
        train::read_maybe_gz(&write("t.gz", &[0x1f, 0x8b, 8, 0, 0, 0])).is_err()
    });
    s.case("read_maybe_gz", FILES, "missing file", || {
        train::read_maybe_gz(&dir.join("none.gz")).is_err()
    });
    s.case("load_mnist", FILES, "a directory without the files", || {
        train::load_mnist(&dir).is_err()
    });
    let adam = || OptimizerState::Adam(Adam::new(AdamConfig::default()));
    for (name, cfg) in [
        ("NaN lr", TrainConfig::new(1, 4, f64::NAN)),
        ("zero batch", TrainConfig::new(1, 0, 1e-3)),
        ("clip 0", TrainConfig { clip: Some(0.0), ..TrainConfig::new(1, 4, 1e-3) }),
        ("eval every 0", TrainConfig { eval_every: Some(0), ..TrainConfig::new(1, 4, 1e-3) }),
        (
            "resume without a directory",
            TrainConfig { resume: true, ..TrainConfig::new(1, 4, 1e-3) },
        ),
    ] {
        s.case("Trainer::new", OPTIONS, name, || {
            matches!(Trainer::new(cfg, adam(), "m"), Err(T::InvalidArgument { .. }))
        });
    }
    s.case("Trainer::new", OPTIONS, "no optimizer", || {
        Trainer::new(TrainConfig::new(1, 4, 1e-3), OptimizerState::None, "m").is_err()
    });
    let mut g = Graph::new();
    let x = g.input(2, 4);
    let l = Linear::new(&mut g, "l", 4, 3, &mut Rng::new(0)).unwrap().forward(&mut g, x).unwrap();
    let images = Images {
        pixels: vec![0.5; 8 * 4],
        labels: vec![0, 1, 2, 0, 1, 2, 0, 1],
        side: 2,
        classes: 3,
    };
    s.case("Trainer::fit", CALLBACK, "a non-finite gradient", || {
        let mut model = Classifier::new(g.clone(), x, l, false).unwrap();
        // `write_params` refuses NaN now; set it behind the model's back.
        model.graph_mut().params_mut()[0] = f64::NAN;
        let data = ImageBatches { images: &images, augment: None, smoothing: 0.0 };
        let mut t = Trainer::new(TrainConfig::new(1, 2, 1e-3), adam(), "m").unwrap();
        matches!(
            t.fit(&mut model, &data, None, &mut Quiet),
            Err(T::NonFinite { .. }) | Err(T::Autodiff(A::NonFinite { .. }))
        )
    });
    s.case("ImageBatches::batch", OPTIONS, "smoothing 1", || {
        ImageBatches { images: &images, augment: None, smoothing: 1.0 }
            .batch(&[0, 1], &mut Rng::new(0))
            .is_err()
    });
    s.case("ImageBatches::batch", SIZES, "index past the end", || {
        ImageBatches { images: &images, augment: None, smoothing: 0.0 }
            .batch(&[0, 99], &mut Rng::new(0))
            .is_err()
    });
    s.case("Replicas::new", SIZES, "no copies", || Replicas::<Classifier>::new(vec![]).is_err());
    s.case("Model::write_params", SHAPES, "wrong length", || {
        let mut model = Classifier::new(g.clone(), x, l, false).unwrap();
        train::Model::write_params(&mut model, &[1.0]).is_err()
            && train::Model::read_params(&model, &mut [0.0; 2]).is_err()
    });
    s.case("ParamSet::gather", SHAPES, "wrong lengths", || {
        let set = train::ParamSet::new(&[("a", 2), ("b", 1)]);
        set.gather(&[&[1.0, 2.0]], &mut [0.0; 3]).is_err()
            && set.scatter(&[0.0; 2], &mut [&mut [0.0; 2], &mut [0.0]]).is_err()
    });
    s.case("LabelledBatch::chunk", SIZES, "zero parts, past the end, uneven", || {
        let b = ImageBatches { images: &images, augment: None, smoothing: 0.0 }
            .batch(&[0, 1, 2], &mut Rng::new(0))
            .unwrap();
        b.chunk(0, 0).is_err()
            && b.chunk(3, 3).is_err()
            && b.chunk(0, 2).is_err()
            && b.chunk(2, 3).is_ok()
    });
    s.case("Images::image", SIZES, "past the end", || {
        images.image(8).is_none() && images.image(usize::MAX).is_none()
    });
    s.case("Table::row", SIZES, "past the end", || {
        let t = train::Table { header: None, rows: 1, cols: 2, data: vec![1.0, 2.0] };
        t.row(1).is_none() && t.row(usize::MAX).is_none() && t.row(0).is_some()
    });
    s.case("Classifier::new", SHAPES, "two inputs", || {
        let mut h = Graph::new();
        let a = h.input(1, 2);
        let _b = h.input(1, 2);
        Classifier::new(h, a, a, false).is_err()
    });
    s.case("Classifier::build", SHAPES, "two inputs, f32", || {
        let mut h = Graph::new();
        let a = h.input(1, 2);
        let _b = h.input(1, 2);
        Classifier::<f32>::build(h, a, a, false).is_err()
    });
    s.case("load_csv", FILES, "ragged rows", || load_csv(&write("r.csv", b"1,2\n3\n")).is_err());
    s.case("load_csv", FILES, "not numbers", || load_csv(&write("n.csv", b"1,2\n3,x\n")).is_err());
    s.case("load_csv", NONFINITE, "NaN value", || {
        load_csv(&write("nan.csv", b"1,2\n3,NaN\n")).is_err()
    });
    s.case("load_csv", FILES, "not UTF-8", || {
        load_csv(&write("u.csv", &[0xff, 0xfe, 0x00])).is_err()
    });
    s.case("load_csv", FILES, "gzip that is not", || {
        load_csv(&write("g.csv.gz", b"plain text")).is_err()
    });
    s.case("load_csv", SIZES, "empty file", || load_csv(&write("e.csv", b"")).is_err());
    s.case("load_idx", FILES, "bad magic", || {
        load_idx(&write("a.idx", &[0; 16]), &write("b.idx", &[0; 8])).is_err()
    });
    s.case("load_idx", FILES, "truncated header", || {
        load_idx(&write("c.idx", &[0, 0, 8, 3]), &write("d.idx", &[0, 0, 8, 1])).is_err()
    });
    s.case("load_idx", SIZES, "forged huge count", || {
        let mut im = vec![0, 0, 8, 3];
        im.extend(u32::MAX.to_be_bytes());
        im.extend(28u32.to_be_bytes());
        im.extend(28u32.to_be_bytes());
        let mut lb = vec![0, 0, 8, 1];
        lb.extend(u32::MAX.to_be_bytes());
        load_idx(&write("e.idx", &im), &write("f.idx", &lb)).is_err()
    });
    s.case("TrainState::load", FILES, "a checkpoint of another kind", || {
        let mut h = Graph::new();
        h.param("w", &Mat::zeros(1, 1));
        let c = Checkpoint::from_graph(&h, "m", OptimizerState::None, 0).to_bytes().unwrap();
        TrainState::load(&write("s.bin", &c)).is_err()
    });
    s.case("TrainState::load", FILES, "missing file", || {
        TrainState::load(&dir.join("none.bin")).is_err()
    });
    s.case("Trainer::fit", OPTIONS, "resumed with a smaller dataset", || {
        let labels = (0..40).map(|i| (i % 3) as u8).collect();
        let big = Images { pixels: vec![0.5; 40 * 4], labels, side: 2, classes: 3 };
        let mut cfg = TrainConfig::new(1, 2, 1e-3);
        cfg.checkpoint_dir = Some(dir.join("resume"));
        cfg.max_steps = Some(15);
        let mut model = Classifier::new(g.clone(), x, l, false).unwrap();
        let data = ImageBatches { images: &big, augment: None, smoothing: 0.0 };
        Trainer::new(cfg.clone(), adam(), "m")
            .unwrap()
            .fit(&mut model, &data, None, &mut Quiet)
            .unwrap();
        cfg.resume = true;
        cfg.max_steps = None;
        let small = ImageBatches { images: &images, augment: None, smoothing: 0.0 };
        let r = Trainer::new(cfg, adam(), "m").unwrap().fit(&mut model, &small, None, &mut Quiet);
        matches!(r, Err(T::InvalidArgument { what: "training state", .. }))
    });
    let _ = std::fs::remove_dir_all(&dir);
}

fn planar_cases(s: &mut Suite) {
    use cnf::{
        Cnf, CnfConfig, Error as C, FieldKind, LogDensity, Objective, PlanarFlow, Target, Trace,
    };
    fn invalid<T>(r: Result<T, C>) -> bool {
        matches!(r, Err(C::InvalidArgument { .. }))
    }
    fn non_finite<T>(r: Result<T, C>) -> bool {
        matches!(r, Err(C::NonFinite { .. }))
    }
    for (name, field) in [
        ("zero planar width", FieldKind::Planar { width: 0, hyper_hidden: 4 }),
        ("huge planar width", FieldKind::Planar { width: usize::MAX, hyper_hidden: 4 }),
        ("zero hypernetwork width", FieldKind::Planar { width: 4, hyper_hidden: 0 }),
    ] {
        s.case("Cnf::new", OPTIONS, name, || {
            invalid(Cnf::new(CnfConfig { field, ..CnfConfig::ffjord(2, 3) }, &mut Rng::new(0)))
        });
    }
    let mut cfg = CnfConfig::ffjord(2, 3);
    cfg.field = FieldKind::Planar { width: 3, hyper_hidden: 4 };
    cfg.trace = Trace::Exact;
    let flow = Cnf::new(cfg, &mut Rng::new(0)).unwrap();
    struct ThreeD;
    impl LogDensity for ThreeD {
        fn dim(&self) -> usize {
            3
        }
        fn log_density_grad(&self, _: &[f64], _: &mut [f64]) -> Result<f64, C> {
            Ok(0.0)
        }
    }
    struct NanTarget;
    impl LogDensity for NanTarget {
        fn dim(&self) -> usize {
            2
        }
        fn log_density_grad(&self, _: &[f64], g: &mut [f64]) -> Result<f64, C> {
            g.fill(0.0);
            Ok(f64::NAN)
        }
    }
    s.case("Cnf::matching_grad", SHAPES, "base draws of the wrong length", || {
        flow.matching_grad(&[0.0; 5], &Target::TwoMoons).is_err()
    });
    s.case("Cnf::matching_grad", SHAPES, "a target of another dimension", || {
        invalid(flow.matching_grad(&[0.0; 6], &ThreeD))
    });
    s.case("Cnf::matching_grad", NONFINITE, "NaN base draw", || {
        flow.matching_grad(&[f64::NAN; 6], &Target::TwoCircles).is_err()
    });
    s.case("Cnf::matching_grad", CALLBACK, "a target whose log-density is NaN", || {
        non_finite(flow.matching_grad(&[0.1; 6], &NanTarget))
    });
    s.case("Cnf::matching_grad", SIZES, "good draws: finite KL and gradient", || {
        flow.matching_grad(&[0.1, -0.2, 0.3, 0.0, 0.5, -1.0], &Target::TwoMoons)
            .is_ok_and(|g| g.loss.is_finite() && g.params.iter().all(|v| v.is_finite()))
    });
    let opts = cnf::ode_solvers::Options::new(cnf::ode_solvers::Method::Dopri5);
    for (name, times) in [
        ("no times", vec![]),
        ("decreasing times", vec![0.8, 0.2]),
        ("a time past T", vec![0.0, 2.0]),
        ("a negative time", vec![-0.1, 0.5]),
        ("NaN time", vec![f64::NAN]),
    ] {
        s.case("Cnf::trajectory", OPTIONS, name, || {
            invalid(flow.trajectory(&[0.1; 6], &times, &opts))
        });
    }
    s.case("Cnf::trajectory", SHAPES, "data of the wrong length", || {
        invalid(flow.trajectory(&[0.1; 4], &[0.5], &opts))
    });
    s.case("CnfChain::new", SIZES, "no blocks", || invalid(cnf::CnfChain::new(vec![])));
    s.case("CnfChain::new", SHAPES, "blocks of different batches", || {
        let a = Cnf::new(CnfConfig::ffjord(2, 3), &mut Rng::new(0)).unwrap();
        let b = Cnf::new(CnfConfig::ffjord(2, 4), &mut Rng::new(0)).unwrap();
        invalid(cnf::CnfChain::new(vec![a, b]))
    });
    let chain = || {
        let mut c = CnfConfig::ffjord(2, 3);
        c.field = FieldKind::Mlp(vec![3]);
        let a = Cnf::new(c.clone(), &mut Rng::new(0)).unwrap();
        let b = Cnf::new(c, &mut Rng::new(1)).unwrap();
        cnf::CnfChain::new(vec![a, b]).unwrap()
    };
    s.case("CnfChain::reconfigured", OPTIONS, "a change to batch 0", || {
        invalid(chain().reconfigured(|c| c.batch = 0))
    });
    s.case("CnfChain::reconfigured", OPTIONS, "a change to a NaN end time", || {
        invalid(chain().reconfigured(|c| c.end_time = f64::NAN))
    });
    s.case("CnfChain::set_params", SHAPES, "wrong length", || invalid(chain().set_params(&[0.0])));
    s.case("CnfChain::set_params", NONFINITE, "NaN parameter", || {
        let mut c = chain();
        let p = vec![f64::NAN; c.num_params()];
        invalid(c.set_params(&p))
    });
    s.case("CnfChain::set_noise", SHAPES, "probe of the wrong length", || {
        chain().set_noise(&[0.0; 2]).is_err()
    });
    s.case("CnfChain::densities", NONFINITE, "NaN point", || {
        chain().densities(&[f64::NAN; 6]).is_err()
    });
    s.case("CnfChain::loss_grad", SHAPES, "batch of the wrong length", || {
        chain().loss_grad(&[0.0; 4]).is_err()
    });
    s.case("CnfChain::loss_grad", SIZES, "good batch: finite loss and gradient", || {
        chain()
            .loss_grad(&[0.1, 0.2, -0.3, 0.4, 0.0, 1.0])
            .is_ok_and(|g| g.loss.is_finite() && g.params.iter().chain(&g.x).all(|v| v.is_finite()))
    });
    s.case("CnfChain::sample", OPTIONS, "a solver that cannot take a step", || {
        let o = cnf::ode_solvers::Options::new(cnf::ode_solvers::Method::Dopri5).max_steps(1);
        chain().sample(&mut Rng::new(0), &o).is_err()
    });
    s.case("Cnf::set_params", NONFINITE, "infinite parameter", || {
        let mut f = Cnf::new(CnfConfig::ffjord(2, 3), &mut Rng::new(0)).unwrap();
        let mut p = f.params();
        p[0] = f64::INFINITY;
        invalid(f.set_params(&p))
    });
    s.case("Cnf::set_params", OPTIONS, "a learnt end time of 0", || {
        let cfg = CnfConfig { train_end_time: true, ..CnfConfig::ffjord(2, 3) };
        let mut f = Cnf::new(cfg, &mut Rng::new(0)).unwrap();
        let mut p = f.params();
        *p.last_mut().unwrap() = 0.0;
        invalid(f.set_params(&p))
    });
    use cnf::{bits_per_dim, dequantize, Gaussian, Kde};
    let two = vec![vec![0.0, 1.0], vec![1.0, 0.5], vec![0.3, 0.2]];
    s.case("Gaussian::fit", SIZES, "no rows", || invalid(Gaussian::fit(&[], 0.1)));
    s.case("Gaussian::fit", SHAPES, "ragged rows", || {
        invalid(Gaussian::fit(&[vec![0.0, 1.0], vec![1.0]], 0.1))
    });
    s.case("Gaussian::fit", NONFINITE, "NaN value", || {
        invalid(Gaussian::fit(&[vec![f64::NAN, 1.0]], 0.1))
    });
    s.case("Gaussian::fit", OPTIONS, "negative ridge", || invalid(Gaussian::fit(&two, -1.0)));
    s.case("Gaussian::fit", OPTIONS, "one row, no ridge (singular)", || {
        invalid(Gaussian::fit(&two[..1], 0.0))
    });
    s.case("Gaussian::log_density", SHAPES, "3 values", || {
        invalid(Gaussian::fit(&two, 0.1).unwrap().log_density(&[0.0; 3]))
    });
    s.case("Kde::new", OPTIONS, "zero bandwidth", || invalid(Kde::new(&two, 0.0)));
    s.case("Kde::new", NONFINITE, "NaN bandwidth", || invalid(Kde::new(&two, f64::NAN)));
    s.case("Kde::new", SIZES, "no rows", || invalid(Kde::new(&[], 0.1)));
    s.case("Kde::select", SIZES, "no candidates", || invalid(Kde::select(&two, &two, &[])));
    s.case("Kde::select", SIZES, "no validation rows", || invalid(Kde::select(&two, &[], &[0.1])));
    s.case("Kde::log_density", SHAPES, "1 value", || {
        invalid(Kde::new(&two, 0.1).unwrap().log_density(&[0.0]))
    });
    s.case("Kde::log_density", NONFINITE, "a point far away: finite", || {
        Kde::new(&two, 0.1).unwrap().log_density(&[1e6, -1e6]).is_ok_and(f64::is_finite)
    });
    s.case("dequantize", OPTIONS, "one level", || {
        invalid(dequantize(&[vec![0.0]], 1, &mut Rng::new(0)))
    });
    s.case("dequantize", OPTIONS, "a level out of range", || {
        invalid(dequantize(&[vec![-1.0]], 17, &mut Rng::new(0)))
    });
    s.case("dequantize", NONFINITE, "NaN level", || {
        invalid(dequantize(&[vec![f64::NAN]], 17, &mut Rng::new(0)))
    });
    s.case("bits_per_dim", SIZES, "uniform model: log2 levels", || {
        (bits_per_dim(0.0, 64, 17) - 17f64.log2()).abs() < 1e-12
    });
    s.case("Target::from_str", OPTIONS, "unknown name", || invalid("rings".parse::<Target>()));
    s.case("Target::log_density_grad", SHAPES, "3 values", || {
        invalid(Target::TwoCircles.log_density_grad(&[0.0; 3], &mut [0.0; 3]))
    });
    s.case("Target::log_density_grad", SHAPES, "gradient buffer of 1", || {
        invalid(Target::TwoCircles.log_density_grad(&[0.0; 2], &mut [0.0; 1]))
    });
    s.case("Target::log_density_grad", NONFINITE, "NaN point", || {
        non_finite(Target::TwoMoons.log_density_grad(&[f64::NAN, 0.0], &mut [0.0; 2]))
    });
    s.case("Target::log_density", NONFINITE, "a point far away: finite, very negative", || {
        let (lp, g) = Target::TwoMoons.log_density([1e6, -1e6]);
        lp.is_finite() && lp < -1e10 && g.iter().all(|v| v.is_finite())
    });
    s.case("Target::sample", SIZES, "no samples", || {
        Target::TwoCircles.sample(0, &mut Rng::new(0)).is_empty()
    });
    for (name, d, k) in [("zero layers", 2, 0), ("zero dim", 0, 3), ("huge layers", 2, usize::MAX)]
    {
        s.case("PlanarFlow::new", SIZES, name, || invalid(PlanarFlow::new(d, k, &mut Rng::new(0))));
    }
    let nf = PlanarFlow::new(2, 3, &mut Rng::new(0)).unwrap();
    s.case("PlanarFlow::set_params", SHAPES, "wrong length", || {
        invalid(nf.clone().set_params(&[0.0; 2]))
    });
    s.case("PlanarFlow::set_params", NONFINITE, "NaN parameter", || {
        invalid(nf.clone().set_params(&[f64::NAN; 15]))
    });
    s.case("PlanarFlow::set_params", NONFINITE, "huge weights: finite densities", || {
        let mut f = nf.clone();
        f.set_params(&[1e6; 15]).is_ok() && f.log_density(&[0.3, 0.2]).is_ok_and(f64::is_finite)
    });
    s.case("PlanarFlow::log_density", SHAPES, "3 values", || invalid(nf.log_density(&[0.0; 3])));
    s.case("PlanarFlow::log_density", NONFINITE, "infinite point", || {
        non_finite(nf.log_density(&[f64::INFINITY, 0.0]))
    });
    s.case("PlanarFlow::sample", SHAPES, "a draw of 1 value", || invalid(nf.sample(&[vec![0.0]])));
    s.case("PlanarFlow::sample", SIZES, "no draws", || {
        nf.sample(&[]).is_ok_and(|(x, l)| x.is_empty() && l.is_empty())
    });
    s.case("PlanarFlow::loss_grad", SIZES, "empty batch", || {
        invalid(nf.loss_grad(&[], Objective::MaxLikelihood))
    });
    s.case("PlanarFlow::loss_grad", SHAPES, "ragged batch", || {
        invalid(nf.loss_grad(&[0.0; 5], Objective::MaxLikelihood))
    });
    s.case("PlanarFlow::loss_grad", NONFINITE, "NaN point", || {
        non_finite(nf.loss_grad(&[f64::NAN, 0.0], Objective::Matching(Target::TwoMoons)))
    });
    s.case("PlanarFlow::loss_grad", OPTIONS, "a 2-D target for a 3-D flow", || {
        let f = PlanarFlow::new(3, 2, &mut Rng::new(0)).unwrap();
        invalid(f.loss_grad(&[0.0; 3], Objective::Matching(Target::TwoCircles)))
    });
}

fn cnf_cases(s: &mut Suite) {
    use cnf::{Cnf, CnfConfig, Error as C, Points, Toy, Trace};
    planar_cases(s);
    for (name, cfg) in [
        ("zero end time", CnfConfig { end_time: 0.0, ..CnfConfig::ffjord(2, 4) }),
        ("NaN end time", CnfConfig { end_time: f64::NAN, ..CnfConfig::ffjord(2, 4) }),
        ("negative lambda", CnfConfig { lambda_jacobian: -0.1, ..CnfConfig::ffjord(2, 4) }),
        ("infinite lambda", CnfConfig { lambda_kinetic: f64::INFINITY, ..CnfConfig::ffjord(2, 4) }),
        ("zero dimension", CnfConfig { dim: 0, ..CnfConfig::ffjord(2, 4) }),
        ("zero batch", CnfConfig { batch: 0, ..CnfConfig::ffjord(2, 4) }),
    ] {
        s.case("Cnf::new", OPTIONS, name, || {
            matches!(Cnf::new(cfg, &mut Rng::new(0)), Err(C::InvalidArgument { .. }))
        });
    }
    let mut small = CnfConfig::ffjord(2, 3);
    small.field = cnf::FieldKind::Mlp(vec![4]);
    let flow = Cnf::new(small, &mut Rng::new(0)).unwrap();
    s.case("Cnf::densities", SHAPES, "batch of the wrong length", || {
        flow.densities(&[0.0; 5], &Cnf::evaluation_options()).is_err()
    });
    s.case("Cnf::densities", NONFINITE, "NaN point", || {
        flow.densities(&[f64::NAN; 6], &Cnf::evaluation_options()).is_err()
    });
    s.case("Cnf::loss_grad", NONFINITE, "infinite point", || {
        flow.loss_grad(&[f64::INFINITY; 6]).is_err()
    });
    s.case("Cnf::loss_grad", SHAPES, "batch of the wrong length", || {
        flow.loss_grad(&[0.0; 2]).is_err()
    });
    s.case("Cnf::set_params", SHAPES, "wrong length", || {
        flow.with_batch(3).is_ok_and(|mut f| f.set_params(&[0.0]).is_err())
    });
    s.case("Cnf::set_noise", NONFINITE, "NaN probe", || {
        flow.with_batch(3).is_ok_and(|mut f| f.set_noise(&[f64::NAN; 6]).is_err())
    });
    s.case("Cnf::set_noise", SHAPES, "wrong length", || {
        flow.with_batch(3).is_ok_and(|mut f| f.set_noise(&[0.0; 2]).is_err())
    });
    s.case("Cnf::with_batch", SIZES, "zero batch", || flow.with_batch(0).is_err());
    s.case("Cnf::decode", SHAPES, "latents of the wrong length", || {
        flow.decode(&[0.0; 4], &Options::new(Method::Dopri5)).is_err()
    });
    s.case("Cnf::encode", OPTIONS, "a fixed-step method without a step", || {
        flow.encode(&[0.0; 6], &Options::new(Method::Rk4)).is_err()
    });
    s.case("Points::new", SHAPES, "ragged rows", || {
        Points::new(&[vec![1.0, 2.0], vec![1.0]], 2, Trace::Exact).is_err()
    });
    s.case("Points::new", NONFINITE, "NaN value", || {
        Points::new(&[vec![1.0, f64::NAN]], 2, Trace::Exact).is_err()
    });
    s.case("Points::batch", SIZES, "index past the end", || {
        let p = Points::new(&[vec![1.0, 2.0]], 2, Trace::Exact).unwrap();
        train::Dataset::batch(&p, &[0, 5], &mut Rng::new(0)).is_err()
    });
    s.case("Toy::from_str", OPTIONS, "unknown toy", || "spiral".parse::<Toy>().is_err());
    s.case("Toy::sample", SIZES, "no samples", || {
        Toy::ALL.iter().all(|t| t.sample(0, &mut Rng::new(0)).is_empty())
    });
    s.case("Toy::log_density", NONFINITE, "NaN point", || {
        Toy::ALL.iter().all(|t| {
            t.log_density([f64::NAN, 0.0]).is_none_or(|v| v.is_nan() || v == f64::NEG_INFINITY)
        })
    });
}

fn latent_cases(s: &mut Suite) {
    use latent_ode::{
        hold_out, interpolate, parse_long_csv, periodic, read_co2, read_grouped, read_long_csv,
        spirals, split_at_fraction, Error as L, Example, Interpolation, LatentConfig, LatentOde,
        Scaling, Series,
    };
    fn invalid<T>(r: Result<T, L>) -> bool {
        matches!(r, Err(L::InvalidArgument { .. }))
    }
    let ok_series =
        || Series::dense("a", vec![0.0, 0.5, 1.0], &[vec![1.0], vec![2.0], vec![0.5]]).unwrap();
    s.case("Series::new", NONFINITE, "NaN time", || {
        invalid(Series::new("a", 1, vec![0.0, f64::NAN], &[vec![Some(1.0)], vec![Some(2.0)]]))
    });
    s.case("Series::new", NONFINITE, "infinite value", || {
        invalid(Series::new("a", 1, vec![0.0], &[vec![Some(f64::INFINITY)]]))
    });
    s.case("Series::new", OPTIONS, "unsorted times", || {
        invalid(Series::new("a", 1, vec![1.0, 0.0], &[vec![Some(1.0)], vec![Some(2.0)]]))
    });
    s.case("Series::new", OPTIONS, "repeated time", || {
        invalid(Series::new("a", 1, vec![1.0, 1.0], &[vec![Some(1.0)], vec![Some(2.0)]]))
    });
    s.case("Series::new", SHAPES, "ragged row", || {
        invalid(Series::new("a", 2, vec![0.0], &[vec![Some(1.0)]]))
    });
    s.case("Series::new", SHAPES, "rows and times differ", || {
        invalid(Series::new("a", 1, vec![0.0, 1.0], &[vec![Some(1.0)]]))
    });
    s.case("Series::new", SIZES, "zero dim", || invalid(Series::new("a", 0, vec![], &[])));
    s.case("Series::check", SIZES, "huge dim", || {
        let mut x = ok_series();
        x.dim = usize::MAX;
        invalid(x.check())
    });
    s.case("Series::select", SIZES, "index past the end", || invalid(ok_series().select(&[0, 9])));
    s.case("Series::select", OPTIONS, "indices out of order", || {
        invalid(ok_series().select(&[2, 0]))
    });
    s.case("Example::check", SIZES, "no observations", || {
        invalid(Example::observed(Series::empty("a", 1)).check())
    });
    s.case("Example::check", SHAPES, "targets of another dim", || {
        invalid(Example { obs: ok_series(), target: Series::empty("a", 2) }.check())
    });
    for (name, text) in [
        ("no rows", "series,t,role,x0\n"),
        ("short row", "a,0.0,obs\n"),
        ("bad time", "a,zero,obs,1\n"),
        ("infinite time", "a,inf,obs,1\n"),
        ("NaN value", "a,0,obs,NaN\n"),
        ("bad role", "a,0,train,1\n"),
        ("ragged rows", "a,0,obs,1\na,1,obs,1,2\n"),
        ("duplicate time", "a,0,obs,1\na,0,obs,2\n"),
        ("only targets", "a,0,target,1\n"),
        ("binary garbage", "\u{0}\u{1}\u{2},\u{3}"),
    ] {
        s.case("parse_long_csv", FILES, name, || invalid(parse_long_csv(text)));
    }
    s.case("read_long_csv", FILES, "missing file", || {
        invalid(read_long_csv(std::path::Path::new("/nonexistent/x.csv")))
    });
    s.case("read_grouped", FILES, "missing column", || {
        let p = std::env::temp_dir().join("bad_input_grouped.csv");
        std::fs::write(&p, "Subject,Time\n1,0\n").unwrap();
        invalid(read_grouped(&p, "Subject", "Time", "conc"))
    });
    s.case("read_grouped", FILES, "non-numeric value", || {
        let p = std::env::temp_dir().join("bad_input_grouped2.csv");
        std::fs::write(&p, "Subject,Time,conc\n1,0,high\n").unwrap();
        invalid(read_grouped(&p, "Subject", "Time", "conc"))
    });
    s.case("read_co2", OPTIONS, "window of one week", || {
        invalid(read_co2(std::path::Path::new("data/none.csv"), 1))
    });
    s.case("read_co2", FILES, "truncated file", || {
        let p = std::env::temp_dir().join("bad_input_co2.csv");
        std::fs::write(&p, "date,co2\n19580329,31").unwrap();
        read_co2(&p, 2).is_ok_and(|v| v.is_empty())
    });
    let irr = latent_ode::irregular_spirals;
    type Make = fn(usize, usize, f64, &mut Rng) -> Result<Vec<latent_ode::Spiral>, L>;
    for (name, make, bad_noise) in
        [("spirals", spirals as Make, f64::NAN), ("irregular_spirals", irr as Make, f64::INFINITY)]
    {
        s.case(name, OPTIONS, "zero observed points", || {
            invalid(make(2, 0, 0.1, &mut Rng::new(0)))
        });
        s.case(name, OPTIONS, "more than 100 observed", || {
            invalid(make(2, 101, 0.1, &mut Rng::new(0)))
        });
        s.case(name, NONFINITE, "a non-finite noise", || {
            invalid(make(2, 10, bad_noise, &mut Rng::new(0)))
        });
    }
    s.case("spirals", SIZES, "no spirals", || {
        spirals(0, 10, 0.1, &mut Rng::new(0)).is_ok_and(|v| v.is_empty())
    });
    s.case("irregular_spirals", SIZES, "100 points: valid, strictly increasing times", || {
        irr(3, 100, 0.1, &mut Rng::new(0)).is_ok_and(|v| {
            v.iter().all(|s| s.example.obs.check().is_ok() && s.example.obs.len() <= 100)
        })
    });
    s.case("periodic", SIZES, "no series", || {
        periodic(0, &mut Rng::new(0)).is_ok_and(|v| v.is_empty())
    });
    s.case("hold_out", OPTIONS, "fraction 1", || {
        invalid(hold_out(&ok_series(), 1.0, &mut Rng::new(0)))
    });
    s.case("hold_out", NONFINITE, "NaN fraction", || {
        invalid(hold_out(&ok_series(), f64::NAN, &mut Rng::new(0)))
    });
    s.case("hold_out", SIZES, "empty series", || {
        invalid(hold_out(&Series::empty("e", 1), 0.5, &mut Rng::new(0)))
    });
    s.case("split_at_fraction", OPTIONS, "fraction 0", || {
        invalid(split_at_fraction(&ok_series(), 0.0))
    });
    s.case("Scaling::fit", SIZES, "no series", || invalid(Scaling::fit(&[])));
    s.case("Scaling::fit", SHAPES, "series of two dims", || {
        let b = Series::dense("b", vec![0.0], &[vec![1.0, 2.0]]).unwrap();
        invalid(Scaling::fit(&[&ok_series(), &b]))
    });
    s.case("interpolate", NONFINITE, "NaN query time", || {
        invalid(interpolate(&ok_series(), &[f64::NAN], Interpolation::Linear))
    });
    s.case("interpolate", SIZES, "a single observation", || {
        let one = Series::dense("o", vec![1.0], &[vec![3.0]]).unwrap();
        interpolate(&one, &[0.0, 5.0], Interpolation::CubicSpline)
            .is_ok_and(|v| v == [vec![3.0], vec![3.0]])
    });
    for (name, cfg) in [
        ("zero latent", LatentConfig { latent_dim: 0, ..LatentConfig::chen(1) }),
        ("zero obs dim", LatentConfig { obs_dim: 0, ..LatentConfig::chen(1) }),
        ("huge hidden", LatentConfig { encoder_hidden: usize::MAX, ..LatentConfig::chen(1) }),
        ("zero width", LatentConfig { field_hidden: vec![0], ..LatentConfig::chen(1) }),
        ("negative noise", LatentConfig { obs_std: -0.1, ..LatentConfig::chen(1) }),
        ("NaN KL weight", LatentConfig { kl_weight: f64::NAN, ..LatentConfig::chen(1) }),
        ("zero samples", LatentConfig { samples: 0, ..LatentConfig::chen(1) }),
        (
            "infinite origin",
            LatentConfig { time_origin: Some(f64::INFINITY), ..LatentConfig::chen(1) },
        ),
    ] {
        s.case("LatentOde::new", OPTIONS, name, || invalid(LatentOde::new(cfg, &mut Rng::new(0))));
    }
    let model = || LatentOde::new(LatentConfig::chen(1), &mut Rng::new(0)).unwrap();
    let ex =
        Example { obs: ok_series(), target: Series::dense("a", vec![1.5], &[vec![0.0]]).unwrap() };
    s.case("LatentOde::set_params", SHAPES, "wrong length", || invalid(model().set_params(&[0.0])));
    s.case("LatentOde::set_params", NONFINITE, "NaN parameter", || {
        let mut m = model();
        let p = vec![f64::NAN; m.num_params()];
        invalid(m.set_params(&p))
    });
    s.case("LatentOde::example_loss", SHAPES, "noise of the wrong length", || {
        invalid(model().example_loss(&ex, &[0.0; 3], 1.0, None))
    });
    s.case("LatentOde::example_loss", SHAPES, "gradient buffer of the wrong length", || {
        invalid(model().example_loss(&ex, &[0.0; 4], 1.0, Some(&mut [0.0; 3])))
    });
    s.case("LatentOde::example_loss", SHAPES, "series of another dim", || {
        let two = Series::dense("b", vec![0.0], &[vec![1.0, 2.0]]).unwrap();
        invalid(model().example_loss(&Example::observed(two), &[0.0; 4], 1.0, None))
    });
    s.case("LatentOde::example_loss", NONFINITE, "NaN noise", || {
        model().example_loss(&ex, &[f64::NAN; 4], 1.0, None).is_err()
    });
    s.case("LatentOde::example_loss", NONFINITE, "a value forged to infinity", || {
        let mut bad = ex.clone();
        bad.obs.values[1] = f64::INFINITY;
        invalid(model().example_loss(&bad, &[0.0; 4], 1.0, None))
    });
    s.case("LatentOde::example_loss", CALLBACK, "parameters that blow the solve up", || {
        let mut m = model();
        let p = vec![1e3; m.num_params()];
        m.set_params(&p).unwrap();
        let mut g = vec![0.0; m.num_params()];
        m.example_loss(&ex, &[0.5; 4], 1.0, Some(&mut g)).is_err()
    });
    s.case("LatentOde::batch_loss_grad", SIZES, "empty batch", || {
        let mut m = model();
        let mut g = vec![0.0; m.num_params()];
        invalid(m.batch_loss_grad(&[], &[], &mut g))
    });
    s.case("LatentOde::batch_loss_grad", SHAPES, "noise for another batch", || {
        let mut m = model();
        let mut g = vec![0.0; m.num_params()];
        invalid(m.batch_loss_grad(std::slice::from_ref(&ex), &[], &mut g))
    });
    s.case("LatentOde::predict", NONFINITE, "NaN query time", || {
        invalid(model().predict(&ex.obs, &[f64::NAN], 3, &mut Rng::new(0)))
    });
    s.case("LatentOde::predict", SIZES, "a million samples", || {
        invalid(model().predict(&ex.obs, &[1.0], 1_000_000, &mut Rng::new(0)))
    });
    s.case("LatentOde::predict", SIZES, "no query times", || {
        model().predict(&ex.obs, &[], 3, &mut Rng::new(0)).is_ok_and(|p| p.mean.is_empty())
    });
    s.case("LatentOde::predict", OPTIONS, "RNN decoder asked before its origin", || {
        let cfg = LatentConfig { decoder: latent_ode::DecoderKind::Rnn, ..LatentConfig::chen(1) };
        invalid(LatentOde::new(cfg, &mut Rng::new(0)).unwrap().predict(
            &ex.obs,
            &[-1.0],
            0,
            &mut Rng::new(0),
        ))
    });
    s.case("LatentOde::posterior", SIZES, "empty observations", || {
        invalid(model().posterior(&Series::empty("a", 1)))
    });
    s.case("Examples::new", SHAPES, "examples of another dim", || {
        let two = Series::dense("b", vec![0.0], &[vec![1.0, 2.0]]).unwrap();
        latent_ode::Examples::new(vec![Example::observed(two)], &model()).is_err()
    });
    s.case("Examples::batch", SIZES, "index past the end", || {
        let set = latent_ode::Examples::new(vec![ex.clone()], &model()).unwrap();
        train::Dataset::batch(&set, &[3], &mut Rng::new(0)).is_err()
    });
    s.case("SeriesBatch::chunk", SIZES, "more chunks than series", || {
        let b = latent_ode::SeriesBatch { examples: vec![ex.clone()], eps: vec![vec![0.0; 4]] };
        train::Chunk::chunk(&b, 0, 2).is_err()
    });
    s.case("predict_all", SIZES, "no model copies", || {
        let none: &mut [LatentOde] = &mut [];
        invalid(latent_ode::predict_all(none, std::slice::from_ref(&ex), 1, 0))
    });
    s.case("score_predictions", SHAPES, "predictions for another set", || {
        invalid(latent_ode::score_predictions(std::slice::from_ref(&ex), &[]))
    });
    let mut origin = LatentConfig::chen(1);
    origin.time_origin = None;
    s.case("LatentOde::union_batch_loss_grad", OPTIONS, "no fixed time origin", || {
        let mut m = LatentOde::new(origin.clone(), &mut Rng::new(0)).unwrap();
        let mut g = vec![0.0; m.num_params()];
        invalid(m.union_batch_loss_grad(std::slice::from_ref(&ex), &[vec![0.0; 4]], &mut g))
    });
    s.case("LatentOde::union_batch_loss_grad", OPTIONS, "RNN decoder", || {
        let cfg = LatentConfig { decoder: latent_ode::DecoderKind::Rnn, ..LatentConfig::chen(1) };
        let mut m = LatentOde::new(cfg, &mut Rng::new(0)).unwrap();
        let mut g = vec![0.0; m.num_params()];
        invalid(m.union_batch_loss_grad(std::slice::from_ref(&ex), &[vec![0.0; 4]], &mut g))
    });
    s.case("LatentOde::union_batch_loss_grad", OPTIONS, "a scored time before the origin", || {
        let cfg = LatentConfig { time_origin: Some(0.8), ..LatentConfig::chen(1) };
        let mut m = LatentOde::new(cfg, &mut Rng::new(0)).unwrap();
        let mut g = vec![0.0; m.num_params()];
        invalid(m.union_batch_loss_grad(std::slice::from_ref(&ex), &[vec![0.0; 4]], &mut g))
    });
    s.case("LatentOde::union_batch_loss_grad", SIZES, "empty batch", || {
        let mut m = model();
        let mut g = vec![0.0; m.num_params()];
        invalid(m.union_batch_loss_grad(&[], &[], &mut g))
    });
    s.case("LatentOde::union_batch_loss_grad", SHAPES, "noise of the wrong length", || {
        let mut m = model();
        let mut g = vec![0.0; m.num_params()];
        invalid(m.union_batch_loss_grad(std::slice::from_ref(&ex), &[vec![0.0; 3]], &mut g))
    });
    s.case("mean_neg_elbo", SIZES, "no examples", || {
        latent_ode::mean_neg_elbo(&mut model(), &[], 0).is_ok_and(|v| v == 0.0)
    });
    s.case("mean_neg_elbo", SHAPES, "series of another dim", || {
        let two = Series::dense("b", vec![0.0], &[vec![1.0, 2.0]]).unwrap();
        invalid(latent_ode::mean_neg_elbo(&mut model(), &[Example::observed(two)], 0))
    });
    s.case("subsample", SIZES, "more than there are", || {
        latent_ode::subsample(3, 10, &mut Rng::new(0)) == [0, 1, 2]
    });
    s.case("check::elbo_gradient_error", OPTIONS, "zero step", || {
        invalid(latent_ode::check::elbo_gradient_error(&mut model(), &ex, &[0.0; 4], 1.0, 0.0))
    });
    forecast_cases(s, &ex);
}

fn forecast_cases(s: &mut Suite, ex: &latent_ode::Example) {
    use latent_ode::{Error as L, Evolution, Example, ForecastConfig, Forecaster, Series};
    fn invalid<T>(r: Result<T, L>) -> bool {
        matches!(r, Err(L::InvalidArgument { .. }))
    }
    let base = ForecastConfig::new(1, Evolution::Ode);
    for (name, cfg) in [
        ("zero obs_dim", ForecastConfig { obs_dim: 0, ..base.clone() }),
        ("zero hidden", ForecastConfig { hidden: 0, ..base.clone() }),
        ("huge hidden", ForecastConfig { hidden: usize::MAX, ..base.clone() }),
        ("zero field width", ForecastConfig { field_hidden: vec![0], ..base.clone() }),
        ("huge output width", ForecastConfig { output_hidden: vec![1 << 40], ..base.clone() }),
        ("negative noise", ForecastConfig { obs_std: -1.0, ..base.clone() }),
        ("NaN noise", ForecastConfig { obs_std: f64::NAN, ..base.clone() }),
        ("infinite origin", ForecastConfig { time_origin: Some(f64::NAN), ..base.clone() }),
    ] {
        s.case("Forecaster::new", OPTIONS, name, || {
            invalid(Forecaster::new(cfg, &mut Rng::new(0)))
        });
    }
    for ev in [Evolution::Ode, Evolution::Delta, Evolution::Decay] {
        let model = || Forecaster::new(ForecastConfig::new(1, ev), &mut Rng::new(0)).unwrap();
        let tag = |what: &str| format!("{what} ({ev:?})");
        s.case("Forecaster::set_params", SHAPES, &tag("wrong length"), || {
            invalid(model().set_params(&[0.0]))
        });
        s.case("Forecaster::set_params", NONFINITE, &tag("NaN parameter"), || {
            let mut m = model();
            let p = vec![f64::NAN; m.num_params()];
            invalid(m.set_params(&p))
        });
        s.case(
            "Forecaster::example_loss",
            SHAPES,
            &tag("gradient buffer of the wrong length"),
            || invalid(model().example_loss(ex, Some(&mut [0.0; 3]))),
        );
        s.case("Forecaster::example_loss", SHAPES, &tag("series of another dim"), || {
            let two = Series::dense("b", vec![0.0], &[vec![1.0, 2.0]]).unwrap();
            invalid(model().example_loss(&Example::observed(two), None))
        });
        s.case("Forecaster::example_loss", SIZES, &tag("no observations"), || {
            invalid(model().example_loss(&Example::observed(Series::empty("e", 1)), None))
        });
        s.case("Forecaster::example_loss", NONFINITE, &tag("a value forged to infinity"), || {
            let mut bad = ex.clone();
            bad.obs.values[1] = f64::INFINITY;
            invalid(model().example_loss(&bad, None))
        });
        s.case("Forecaster::example_loss", CALLBACK, &tag("parameters that blow it up"), || {
            let mut m = model();
            let p = vec![1e3; m.num_params()];
            m.set_params(&p).unwrap();
            let mut g = vec![0.0; m.num_params()];
            // Either a typed error or a finite loss and gradient: never a silent NaN.
            match m.example_loss(ex, Some(&mut g)) {
                Ok(l) => l.loss.is_finite() && g.iter().all(|v| v.is_finite()),
                Err(_) => true,
            }
        });
        s.case("Forecaster::batch_loss_grad", SIZES, &tag("empty batch"), || {
            let mut m = model();
            let mut g = vec![0.0; m.num_params()];
            invalid(m.batch_loss_grad(&[], &mut g))
        });
        s.case(
            "Forecaster::batch_loss_grad",
            SHAPES,
            &tag("gradient buffer of the wrong length"),
            || invalid(model().batch_loss_grad(std::slice::from_ref(ex), &mut [0.0; 2])),
        );
        s.case("Forecaster::predict", NONFINITE, &tag("NaN query time"), || {
            invalid(model().predict(&ex.obs, &[f64::NAN]))
        });
        s.case("Forecaster::predict", SIZES, &tag("no query times"), || {
            model().predict(&ex.obs, &[]).is_ok_and(|p| p.mean.is_empty())
        });
        s.case("Forecaster::predict", OPTIONS, &tag("times before, between and after"), || {
            model()
                .predict(&ex.obs, &[-5.0, 0.25, 0.5, 9.0])
                .is_ok_and(|p| p.times.len() == 4 && p.mean.iter().flatten().all(|v| v.is_finite()))
        });
    }
    s.case("check::forecast_gradient_error", OPTIONS, "NaN step", || {
        let mut m = Forecaster::new(base.clone(), &mut Rng::new(0)).unwrap();
        invalid(latent_ode::check::forecast_gradient_error(&mut m, ex, f64::NAN))
    });
}

/// Entry points that build parameters, fill a caller's buffer or combine per-chunk results:
/// sizes whose bytes overflow, buffers of the wrong length, results of different shapes.
fn builder_and_buffer_cases(s: &mut Suite) {
    use autodiff::layers::{ConcatConv2d, ConcatLinear, ConcatSquash, GruCell};
    // ode-solvers.
    let tableau = Method::Dopri5.tableau().unwrap();
    s.case("Tableau::dense_weights", SHAPES, "a buffer one short", || {
        let mut w = vec![0.0; tableau.dense.weights.len() - 1];
        matches!(tableau.dense_weights(0.5, &mut w), Err(E::DimensionMismatch { .. }))
    });
    s.case("Tableau::dense_weights", SHAPES, "the right length sums to θ", || {
        let mut w = vec![0.0; tableau.dense.weights.len()];
        tableau.dense_weights(0.5, &mut w).is_ok() && (w.iter().sum::<f64>() - 0.5).abs() < 1e-12
    });
    let dense = || {
        odeint(&decay, &[1.0, 2.0], &[0.0, 1.0], &Options::new(Method::Dopri5).dense(true))
            .unwrap()
            .dense
            .unwrap()
    };
    s.case("Dense::at_into", SHAPES, "a buffer of 3 for a state of 2", || {
        matches!(dense().at_into(0.5, &mut [0.0; 3]), Err(E::DimensionMismatch { .. }))
    });
    s.case("Dense::at_into", NONFINITE, "NaN time", || {
        matches!(dense().at_into(f64::NAN, &mut [0.0; 2]), Err(E::OutsideInterval { .. }))
    });
    s.case("Dense::at_into", OPTIONS, "a time past the end", || {
        matches!(dense().at_into(1.5, &mut [0.0; 2]), Err(E::OutsideInterval { .. }))
    });
    use ode_solvers::convergence::{dense_local_order, global_order};
    s.case("convergence::global_order", SHAPES, "an exact solution of another length", || {
        matches!(
            global_order(&decay, &[1.0], 1.0, &[1.0, 2.0], Method::Rk4, &[10, 20]),
            Err(E::DimensionMismatch { .. })
        )
    });
    s.case("convergence::global_order", SIZES, "zero steps", || {
        global_order(&decay, &[1.0], 1.0, &[(-1.0f64).exp()], Method::Rk4, &[0]).is_err()
    });
    s.case("convergence::dense_local_order", SHAPES, "an exact solution changing length", || {
        let exact = |t: f64| if t == 0.0 { vec![1.0] } else { vec![1.0, 2.0] };
        matches!(
            dense_local_order(&decay, exact, 0.0, &[0.5], Method::Dopri5, &[0.1]),
            Err(E::DimensionMismatch { .. })
        )
    });
    use ode_solvers::PidController;
    for (name, ctl) in [
        ("NaN coefficient", PidController::pid(f64::NAN, 0.3, 0.0)),
        ("infinite coefficient", PidController::pi(0.4, f64::INFINITY)),
        ("zero safety", PidController { safety: 0.0, ..PidController::integral() }),
        ("safety above 1", PidController { safety: 1.5, ..PidController::integral() }),
        ("zero factor_min", PidController { factor_min: 0.0, ..PidController::integral() }),
        ("factor_max below 1", PidController { factor_max: 0.5, ..PidController::integral() }),
        (
            "infinite factor_max",
            PidController { factor_max: f64::INFINITY, ..PidController::integral() },
        ),
    ] {
        s.case("Options::controller", OPTIONS, name, || {
            let o = Options::new(Method::Dopri5).controller(ctl);
            matches!(odeint(&decay, &[1.0], &[0.0, 1.0], &o), Err(E::InvalidController { .. }))
        });
    }
    s.case("Options::controller", OPTIONS, "diffrax's PI(0.4, 0.3) solves", || {
        let o = Options::new(Method::Dopri5).controller(PidController::pi(0.4, 0.3));
        odeint(&decay, &[1.0], &[0.0, 1.0], &o)
            .is_ok_and(|sol| (sol.ys[1][0] - (-1.0f64).exp()).abs() < 1e-5)
    });
    s.case("Options::rtol_per_component", NONFINITE, "a NaN tolerance", || {
        let o = Options::new(Method::Dopri5).rtol_per_component(vec![1e-6, f64::NAN]);
        matches!(odeint(&decay, &[1.0, 2.0], &[0.0, 1.0], &o), Err(E::InvalidTolerance { .. }))
    });
    s.case("Options::rtol_per_component", SHAPES, "one tolerance for two components", || {
        let o = Options::new(Method::Dopri5).rtol_per_component(vec![1e-6]);
        matches!(odeint(&decay, &[1.0, 2.0], &[0.0, 1.0], &o), Err(E::DimensionMismatch { .. }))
    });
    s.case("StateLayout::part", SIZES, "a part of usize::MAX components", || {
        let layout = StateLayout::new().part("z", 1, true).part("huge", usize::MAX, false);
        let o = Options::new(Method::Dopri5).layout(layout);
        odeint(&decay, &[1.0], &[0.0, 1.0], &o).is_err()
    });
    s.case("Event::tol", NONFINITE, "NaN tolerance still locates y = 1/2 at ln 2", || {
        let ev = Event::new(|_t: f64, y: &[f64]| y[0] - 0.5).tol(f64::NAN);
        let o = Options::new(Method::Dopri5).rtol(1e-10).atol(1e-12);
        odeint_with_event(&decay, &[1.0], &[0.0, 2.0], &o, &ev)
            .is_ok_and(|r| r.event.is_some_and(|e| (e.t - std::f64::consts::LN_2).abs() < 1e-8))
    });

    // autodiff: parameter blocks whose bytes overflow are refused before allocating.
    let huge = usize::MAX / 4;
    let mut g = Graph::new();
    let rng = Rng::new(0);
    s.case("Linear::new", SIZES, "a usize::MAX/4 × 2 weight", || {
        matches!(
            Linear::new(&mut g.clone(), "l", huge, 2, &mut rng.clone()),
            Err(A::InvalidArgument { .. })
        )
    });
    s.case("Linear::new", SIZES, "zero outputs: an r × 0 result", || {
        let mut h = Graph::new();
        let x = h.input(3, 2);
        Linear::new(&mut h, "l", 2, 0, &mut Rng::new(0))
            .and_then(|l| l.forward(&mut h, x))
            .is_ok_and(|y| h.shape(y).is_ok_and(|s| s == (3, 0)))
    });
    s.case("Linear::with_init", SIZES, "usize::MAX inputs", || {
        use autodiff::layers::Init;
        Linear::with_init(&mut g.clone(), "l", usize::MAX, 2, Init::Zeros, &mut rng.clone())
            .is_err()
    });
    s.case("Mlp::new", SIZES, "a huge hidden width", || {
        Mlp::new(&mut g.clone(), "m", &[2, huge, 2], Activation::Tanh, &mut rng.clone()).is_err()
    });
    s.case("Mlp::new", OPTIONS, "a single width", || {
        Mlp::new(&mut g.clone(), "m", &[2], Activation::Tanh, &mut rng.clone()).is_err()
    });
    s.case("ConcatLinear::new", SIZES, "usize::MAX inputs (and the time column)", || {
        ConcatLinear::new(&mut g.clone(), "c", usize::MAX, 2, &mut rng.clone()).is_err()
    });
    s.case("ConcatSquash::new", SIZES, "a huge output", || {
        ConcatSquash::new(&mut g.clone(), "c", 2, huge, &mut rng.clone()).is_err()
    });
    s.case("GruCell::new", SIZES, "a huge hidden state", || {
        GruCell::new(&mut g.clone(), "gru", 2, huge, &mut rng.clone()).is_err()
    });
    let geom = small_geometry();
    s.case("Conv2d::new", OPTIONS, "a 9×9 window on a 4×4 image", || {
        let bad = ConvGeometry { kernel_h: 9, kernel_w: 9, padding: 0, ..geom };
        Conv2d::new(&mut g.clone(), "c", bad, 2, &mut rng.clone()).is_err()
    });
    s.case("Conv2d::new", SIZES, "huge output channels", || {
        Conv2d::new(&mut g.clone(), "c", geom, huge, &mut rng.clone()).is_err()
    });
    s.case("Conv2d::new", OPTIONS, "zero stride", || {
        Conv2d::new(&mut g.clone(), "c", ConvGeometry { stride: 0, ..geom }, 2, &mut rng.clone())
            .is_err()
    });
    s.case("ConcatConv2d::new", SIZES, "usize::MAX channels plus the time channel", || {
        let bad = ConvGeometry { channels: usize::MAX, ..geom };
        ConcatConv2d::new(&mut g.clone(), "c", bad, 2, &mut rng.clone()).is_err()
    });
    s.case("GroupNorm::new", SIZES, "usize::MAX channels in one group", || {
        GroupNorm::new(&mut g.clone(), "n", 1, usize::MAX, 16).is_err()
    });
    let x = g.input(2, 3);
    let y = g.tanh(x).unwrap();
    s.case("Graph::sum", SHAPES, "a stale variable", || {
        Graph::new().sum(y, autodiff::Axis::Rows).is_err()
    });
    s.case("Graph::mean", SHAPES, "a stale variable", || {
        Graph::new().mean(y, autodiff::Axis::Cols).is_err()
    });
    s.case("Graph::unary", SHAPES, "a stale variable", || {
        Graph::new().unary(autodiff::Unary::Exp, y).is_err()
    });
    s.case("Graph::binary", SHAPES, "a stale operand", || {
        g.clone().binary(autodiff::Binary::Mul, x, autodiff::Var::from_index(99)).is_err()
    });
    s.case("Graph::col2im", OPTIONS, "a geometry whose patches differ", || {
        g.clone().col2im(x, geom).is_err()
    });
    s.case("eval", SHAPES, "an input of the wrong shape", || {
        autodiff::eval(&g, &[y], &[&Mat::zeros(3, 3)]).is_err()
    });
    s.case("eval", SHAPES, "no inputs", || autodiff::eval(&g, &[y], &[]).is_err());
    s.case("eval", SHAPES, "an output from another graph", || {
        autodiff::eval(&g, &[autodiff::Var::from_index(99)], &[&Mat::zeros(2, 3)]).is_err()
    });
    s.case("Executor::replay", SHAPES, "a graph it was not built for", || {
        let mut exe = Executor::new(&g, &[y]).unwrap();
        let mut other = Graph::new();
        let a = other.input(5, 5);
        other.exp(a).unwrap();
        exe.replay(&other).is_err()
    });
    s.case("GraphBlock::backward", SHAPES, "a cotangent of the wrong length", || {
        let mut b = GraphBlock::new(g.clone(), x, y).unwrap();
        b.forward(&[0.5; 6]).is_ok() && b.backward(&[1.0; 5], &mut []).is_err()
    });
    s.case("GraphBlock::backward_at", SHAPES, "an input of the wrong length", || {
        let mut b = GraphBlock::new(g.clone(), x, y).unwrap();
        b.backward_at(&[0.5; 4], &[1.0; 6], &mut []).is_err()
    });
    let dir = std::env::temp_dir().join(format!("bad-input-save-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("taken")).unwrap();
    s.case("Checkpoint::save", FILES, "onto a directory: an error, no .tmp left", || {
        let mut h = Graph::new();
        h.param("w", &Mat::zeros(1, 1));
        let c = Checkpoint::from_graph(&h, "m", OptimizerState::None, 0);
        matches!(c.save(&dir.join("taken")), Err(A::Io { .. })) && !dir.join("taken.tmp").exists()
    });
    s.case("TrainState::save", FILES, "onto a directory: an error, no .tmp left", || {
        let st = train::TrainState {
            architecture: "m".into(),
            params: vec![1.0],
            optimizer: OptimizerState::None,
            rng: Rng::new(0),
            epoch_rng: Rng::new(0),
            step: 0,
            epoch: 0,
            batch: 0,
            totals: train::Totals::default(),
        };
        st.save(&dir.join("taken")).is_err() && !dir.join("taken.tmp").exists()
    });
    let _ = std::fs::remove_dir_all(&dir);

    // train.
    let mut cg = Graph::new();
    let cx = cg.input(2, 4);
    let logits =
        Linear::new(&mut cg, "l", 4, 3, &mut Rng::new(0)).unwrap().forward(&mut cg, cx).unwrap();
    let classifier = || train::Classifier::new(cg.clone(), cx, logits, false).unwrap();
    s.case("Classifier::loss_grad", SHAPES, "a batch of 3 for a graph of 2", || {
        let mut c = classifier();
        let n = train::Model::num_params(&c);
        c.loss_grad(&Mat::zeros(3, 4), &Mat::zeros(3, 3), &mut vec![0.0; n]).is_err()
    });
    s.case("Classifier::loss_grad", SHAPES, "a gradient buffer one short", || {
        let mut c = classifier();
        let n = train::Model::num_params(&c);
        c.loss_grad(&Mat::zeros(2, 4), &Mat::zeros(2, 3), &mut vec![0.0; n - 1]).is_err()
    });
    s.case("Classifier::logits", SHAPES, "5 features for 4", || {
        classifier().logits(&Mat::zeros(2, 5)).is_err()
    });
    s.case("Classifier::predict", SHAPES, "a batch of 1 for 2", || {
        classifier().predict(&Mat::zeros(1, 4)).is_err()
    });
    s.case("copy_params", SHAPES, "3 values for 2", || {
        train::copy_params(&mut [0.0; 2], &[1.0; 3]).is_err()
    });
    s.case("shuffled", SIZES, "zero items", || train::shuffled(0, &mut Rng::new(0)).is_empty());

    // cnf.
    use cnf::{Error as C, Kde};
    let kde = Kde::new(&[vec![0.0, 0.0], vec![1.0, 1.0]], 0.5).unwrap();
    s.case("Kde::mean_log_density", SIZES, "no rows", || {
        matches!(kde.mean_log_density(&[]), Err(C::InvalidArgument { .. }))
    });
    s.case("Kde::mean_log_density", SHAPES, "a row of 3 for 2-D points", || {
        kde.mean_log_density(&[vec![0.0, 0.0, 0.0]]).is_err()
    });
    s.case("Cnf::sample", OPTIONS, "rtol = 0", || {
        let flow = cnf::Cnf::new(cnf::CnfConfig::ffjord(2, 3), &mut Rng::new(0)).unwrap();
        flow.sample(&mut Rng::new(1), &Options::new(Method::Dopri5).rtol(0.0)).is_err()
    });
    s.case("i0e", NONFINITE, "NaN in, NaN out; e^-x I0(x) → 0 at ∞", || {
        cnf::i0e(f64::NAN).is_nan() && cnf::i0e(f64::INFINITY) == 0.0
    });

    // latent-ode.
    use latent_ode::{Error as L, Prediction, Scaling, Series};
    s.case("Series::dense", NONFINITE, "a NaN value", || {
        matches!(Series::dense("a", vec![0.0], &[vec![f64::NAN]]), Err(L::InvalidArgument { .. }))
    });
    s.case("Series::dense", OPTIONS, "unsorted times", || {
        Series::dense("a", vec![1.0, 0.0], &[vec![1.0], vec![2.0]]).is_err()
    });
    s.case("Series::dense", SHAPES, "ragged rows", || {
        Series::dense("a", vec![0.0, 1.0], &[vec![1.0, 2.0], vec![2.0]]).is_err()
    });
    let series = Series::dense("a", vec![0.0, 2.0], &[vec![1.0, 4.0], vec![3.0, 8.0]]).unwrap();
    let scaling = Scaling::fit(&[&series]).unwrap();
    s.case("Scaling::apply", SHAPES, "a scaling of one value for series of two", || {
        let one = Scaling { mean: vec![0.0], std: vec![1.0], ..scaling.clone() };
        matches!(one.apply(&series), Err(L::InvalidArgument { .. }))
    });
    s.case("Scaling::apply", NONFINITE, "a zero deviation", || {
        let bad = Scaling { std: vec![1.0, 0.0], ..scaling.clone() };
        bad.apply(&series).is_err()
    });
    s.case("Scaling::apply", NONFINITE, "a NaN time scale", || {
        Scaling { time_scale: f64::NAN, ..scaling.clone() }.apply(&series).is_err()
    });
    s.case("Scaling::apply_example", SHAPES, "a target of another width", || {
        let ex = latent_ode::Example {
            obs: series.clone(),
            target: Series::dense("a", vec![3.0], &[vec![1.0]]).unwrap(),
        };
        scaling.apply_example(&ex).is_err()
    });
    s.case("Scaling::invert", SHAPES, "rows of 3 for a scaling of 2: untouched", || {
        let mut p = Prediction {
            times: vec![0.5],
            mean: vec![vec![0.0; 3]],
            lower: vec![vec![0.0; 3]],
            upper: vec![vec![0.0; 3]],
        };
        let before = p.clone();
        scaling.invert(&mut p).is_err() && p == before
    });
    s.case("Scaling::invert", SHAPES, "apply then invert returns the values", || {
        let scaled = scaling.apply(&series).unwrap();
        let mut p = Prediction {
            times: scaled.times.clone(),
            mean: (0..2).map(|i| (0..2).map(|j| scaled.get(i, j).unwrap()).collect()).collect(),
            lower: vec![],
            upper: vec![],
        };
        scaling.invert(&mut p).is_ok()
            && p.times == series.times
            && (0..2)
                .all(|i| (0..2).all(|j| (p.mean[i][j] - series.get(i, j).unwrap()).abs() < 1e-12))
    });

    // adjoint: chunks whose fields disagree, a loss that fails.
    fn rhs(_t: f64, z: &[f64], p: &[f64], dz: &mut [f64]) {
        dz[0] = -p[0] * z[0];
    }
    fn vjp(_t: f64, z: &[f64], p: &[f64], a: &[f64], az: &mut [f64], ap: &mut [f64]) -> f64 {
        az[0] = -p[0] * a[0];
        ap.iter_mut().for_each(|v| *v = 0.0);
        ap[0] = -z[0] * a[0];
        0.0
    }
    // Chunk `c`'s field has `c + 1` parameters (only the first used).
    let chunk_field = |c: usize| Ok::<_, J>(ClosureField::new(1, vec![0.5; c + 1], rhs, vjp));
    let opts = AdjointOptions::new(Options::new(Method::Dopri5));
    let sum_loss = |_c: usize, zs: &[Vec<f64>]| (zs[1][0], vec![vec![0.0], vec![1.0]]);
    s.case("gradient_chunks", SHAPES, "chunks whose fields have different parameters", || {
        matches!(
            adjoint::gradient_chunks(
                chunk_field,
                &[vec![1.0], vec![2.0]],
                &[0.0, 1.0],
                sum_loss,
                Strategy::Backsolve,
                &opts
            ),
            Err(J::DimensionMismatch { .. })
        )
    });
    s.case("gradient_chunks", SIZES, "no chunks", || {
        adjoint::gradient_chunks(
            chunk_field,
            &[],
            &[0.0, 1.0],
            sum_loss,
            Strategy::Backsolve,
            &opts,
        )
        .is_err()
    });
    s.case("gradient_with", CALLBACK, "a NaN loss", || {
        let block = OdeBlock::new(Strategy::Backsolve, opts.clone());
        let f = chunk_field(0).unwrap();
        let nan = |_zs: &[Vec<f64>]| (f64::NAN, vec![vec![0.0], vec![1.0]]);
        matches!(
            adjoint::gradient_with(&block, &f, &[1.0], &[0.0, 1.0], &nan),
            Err(J::NonFiniteLoss)
        )
    });
    s.case("gradient_with", SHAPES, "a state of 2 for a field of 1", || {
        let block = OdeBlock::new(Strategy::Backsolve, opts.clone());
        let f = chunk_field(0).unwrap();
        let l = |_zs: &[Vec<f64>]| (0.0, vec![vec![0.0; 2], vec![1.0; 2]]);
        adjoint::gradient_with(&block, &f, &[1.0, 2.0], &[0.0, 1.0], &l).is_err()
    });
}

#[test]
fn no_public_entry_point_panics_or_answers_wrongly_on_bad_input() {
    let mut s = Suite::default();
    ode_solvers_cases(&mut s);
    autodiff_cases(&mut s);
    adjoint_cases(&mut s);
    train_cases(&mut s);
    cnf_cases(&mut s);
    latent_cases(&mut s);
    builder_and_buffer_cases(&mut s);
    api::cases(&mut s);
    s.finish();
}

/// The inventory itself can fail: it finds entry points of every kind and leaves out what
/// takes no input, private items, `std` trait impls and `#[cfg(test)]` code.
#[test]
fn the_inventory_finds_the_public_api() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let api = inventory::entry_points(&root);
    let names: Vec<&str> = api.iter().map(|e| e.name.as_str()).collect();
    for expected in [
        "odeint",                   // a free function
        "RkIntegrator::set_bound",  // an inherent method of a generic type
        "Cnf::loss_grad",           // a method of a re-exported type
        "FlowModel::loss_and_grad", // a workspace trait implemented for a public type
        "Backsolve::backward",      // a strategy called directly
        "AutodiffField::vjp",       // a field's trait method
        "integrands::exact_trace",  // in a public module (named without it)
    ] {
        let last = expected.rsplit_once("::").filter(|(m, _)| m.starts_with(char::is_lowercase));
        let name = last.map_or(expected, |(_, f)| f);
        assert!(names.contains(&name), "the inventory misses {expected}");
    }
    for absent in ["Error::fmt", "Error::from", "Cnf::num_params", "Graph::params", "F::rhs"] {
        assert!(!names.contains(&absent), "the inventory lists {absent}");
    }
    let ep = |name: &str| inventory::EntryPoint { name: name.into(), file: String::new() };
    assert!(inventory::covers("Cnf::new (chain)", &ep("Cnf::new")));
    assert!(!inventory::covers("CnfChain::new", &ep("Cnf::new")));
    assert!(inventory::covers("convergence::fit_slope", &ep("fit_slope")));
    assert!(!inventory::covers("Graph::add", &ep("add")));
}
