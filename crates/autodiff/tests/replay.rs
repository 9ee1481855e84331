//! Replayed graphs: bit-identical to eager evaluation, and no allocation per replay.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use autodiff::{eval, Axis, Executor, Graph, Mat, Rng, Var};

struct Counting;
thread_local! {
    /// Allocations made by this thread (other threads, such as the test harness's, are
    /// not the code under test).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.try_with(Cell::get).unwrap_or(0)
}

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// An MLP 2→16→16→2 with tanh, a VJP with cotangent `a`, and the VJP of `‖aᵀ∂f/∂x‖²` in
/// the parameters (the RNODE/FFJORD shape of second-order use). With `x` and `a` either
/// inputs or constants.
fn build(x_const: Option<(&Mat, &Mat)>) -> (Graph, Vec<Var>) {
    let mut rng = Rng::new(11);
    let mut g = Graph::new();
    let (x, a) = match x_const {
        Some((x, a)) => (g.constant(x.clone()), g.constant(a.clone())),
        None => (g.input(8, 2), g.input(8, 2)),
    };
    let mut h = x;
    let widths = [2, 16, 16, 2];
    for l in 0..3 {
        let w = g.param(
            &format!("w{l}"),
            &rng.matrix(widths[l], widths[l + 1], |r| 0.5 * r.normal()).unwrap(),
        );
        let b =
            g.param(&format!("b{l}"), &rng.matrix(1, widths[l + 1], |r| 0.1 * r.normal()).unwrap());
        let z = g.matmul(h, w).unwrap();
        h = g.add(z, b).unwrap();
        if l < 2 {
            h = g.tanh(h).unwrap();
        }
    }
    let params = g.param_vars().to_vec();
    let mut wrt = vec![x];
    wrt.extend(&params);
    let vjp = g.vjp(&[(h, a)], &wrt).unwrap();
    let sq = g.square(vjp[0]).unwrap();
    let frob = g.sum(sq, Axis::All).unwrap();
    let second = g.grad(frob, &params).unwrap();
    let mut outs = vec![h];
    outs.extend(vjp);
    outs.extend(second);
    (g, outs)
}

#[test]
fn replay_is_bit_identical_to_eager_evaluation_and_allocates_nothing() {
    let (g, outs) = build(None);
    let mut exe = Executor::new(&g, &outs).unwrap();
    let mut rng = Rng::new(5);
    let inputs: Vec<(Mat, Mat)> = (0..4)
        .map(|_| (rng.matrix(8, 2, Rng::normal).unwrap(), rng.matrix(8, 2, Rng::normal).unwrap()))
        .collect();
    exe.run(&g, &[&inputs[0].0, &inputs[0].1]).unwrap();
    for (x, a) in &inputs {
        let before = allocations();
        exe.run(&g, &[x, a]).unwrap();
        assert_eq!(allocations() - before, 0, "a replay allocated");
        // Eager: a graph built around these very values, evaluated once.
        let (ge, outs_e) = build(Some((x, a)));
        let eager = eval(&ge, &outs_e, &[]).unwrap();
        let once = eval(&g, &outs, &[x, a]).unwrap();
        for (k, (&o, e)) in outs.iter().zip(&eager).enumerate() {
            let replayed = if exe.value(o).is_empty() { &once[k] } else { exe.value(o) };
            assert_eq!(replayed, e, "output {k} differs from eager evaluation");
            assert_eq!(&once[k], e);
        }
    }
}

/// Intermediates share work buffers; planning every node as an output gives each its own
/// buffer. The two must agree bit for bit, and for a deep network (forward pass and
/// parameter gradients) sharing must take under a third of the memory.
#[test]
fn shared_work_buffers_change_no_value_and_save_memory() {
    let mut rng = Rng::new(3);
    let mut g = Graph::new();
    let x = g.input(32, 8);
    let mut h = x;
    for l in 0..24 {
        let w = g.param(&format!("w{l}"), &rng.matrix(8, 8, |r| 0.4 * r.normal()).unwrap());
        let z = g.matmul(h, w).unwrap();
        h = g.tanh(z).unwrap();
    }
    let loss = g.mean(h, Axis::All).unwrap();
    let params = g.param_vars().to_vec();
    let mut outs = vec![loss];
    outs.extend(g.grad(loss, &params).unwrap());
    let all: Vec<Var> = (0..g.len()).map(Var::from_index).collect();
    let mut shared = Executor::new(&g, &outs).unwrap();
    let mut separate = Executor::new(&g, &all).unwrap();
    for _ in 0..3 {
        let xv = rng.matrix(32, 8, Rng::normal).unwrap();
        shared.run(&g, &[&xv]).unwrap();
        separate.run(&g, &[&xv]).unwrap();
        for (k, &o) in outs.iter().enumerate() {
            assert!(!shared.value(o).is_empty());
            assert_eq!(shared.value(o), separate.value(o), "output {k}");
        }
    }
    let (a, b) = (shared.buffer_bytes(), separate.buffer_bytes());
    // Shared holds the 24 activations the backward pass reads and the outputs (~62 KiB
    // together); separate also holds every product, cotangent and tanh gradient.
    assert!(3 * a < b, "shared buffers {a} B, separate {b} B");
}

#[test]
fn an_executor_refuses_a_graph_it_was_not_planned_for() {
    use autodiff::{Error, Executor, Graph, Mat};
    let mut g = Graph::new();
    let x = g.input(2, 3);
    let y = g.tanh(x).unwrap();
    let mut exe = Executor::new(&g, &[y]).unwrap();
    let other = g.clone();
    let input = Mat::zeros(2, 3);
    assert!(matches!(
        exe.run(&other, &[&input]),
        Err(Error::InvalidArgument { op: "executor", .. })
    ));
    assert!(matches!(exe.replay(&Graph::new()), Err(Error::InvalidArgument { .. })));
    // The graph it was built for, in place: set the input, replay.
    exe.set_input(&g, x, &[0.5; 6]).unwrap();
    exe.replay(&g).unwrap();
    assert_eq!(exe.value(y)[(1, 2)], 0.5f64.tanh());
    assert!(matches!(exe.set_input(&g, x, &[0.5; 5]), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(exe.set_input(&g, y, &[0.5; 6]), Err(Error::InvalidArgument { .. })));
}

#[test]
fn an_f32_replay_allocates_nothing_and_follows_parameter_changes() {
    let (mut g, outs) = build(None);
    let mut exe = autodiff::Executor::<f32>::build(&g, &outs).unwrap();
    let mut rng = Rng::new(8);
    let (x, a) = (rng.matrix(8, 2, Rng::normal).unwrap(), rng.matrix(8, 2, Rng::normal).unwrap());
    let (x32, a32) = (x.map(|v| v as f32), a.map(|v| v as f32));
    exe.run(&g, &[&x32, &a32]).unwrap();
    let before = allocations();
    exe.run(&g, &[&x32, &a32]).unwrap();
    assert_eq!(allocations() - before, 0, "an f32 replay allocated");
    // The parameters are read from the graph at every replay, as in f64.
    for p in g.params_mut() {
        *p *= 0.5;
    }
    exe.run(&g, &[&x32, &a32]).unwrap();
    let wide = eval(&g, &outs, &[&x, &a]).unwrap();
    for (k, (&o, w)) in outs.iter().zip(&wide).enumerate() {
        let narrow = exe.value(o);
        if narrow.is_empty() {
            continue;
        }
        let scale = w.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (n, w) in narrow.iter().zip(w.iter()) {
            assert!((f64::from(*n) - w).abs() < 1e-5 * scale, "output {k}: {n} against {w}");
        }
    }
}

/// Runs `g` planned for `[y]` (where `x`, read only by `y`, is fused) and for `[y, x]` (`x`
/// stored), in f64 and f32, asserts that `y` agrees bit for bit, and returns the fused
/// f64 plan's buffer bytes.
fn fused_and_stored_agree(g: &Graph, y: Var, x: Var, inputs: &[&Mat], what: &str) -> usize {
    let mut fused = Executor::new(g, &[y]).unwrap();
    let mut stored = Executor::new(g, &[y, x]).unwrap();
    fused.run(g, inputs).unwrap();
    stored.run(g, inputs).unwrap();
    let bits = |m: &Mat| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(fused.value(y)), bits(stored.value(y)), "{what}");
    let mut fused32 = Executor::<f32>::build(g, &[y]).unwrap();
    let mut stored32 = Executor::<f32>::build(g, &[y, x]).unwrap();
    let narrow: Vec<_> = inputs.iter().map(|m| m.map(|v| v as f32)).collect();
    let narrow: Vec<_> = narrow.iter().collect();
    fused32.run(g, &narrow).unwrap();
    stored32.run(g, &narrow).unwrap();
    let same = fused32
        .value(y)
        .iter()
        .zip(stored32.value(y).iter())
        .all(|(p, q)| p.to_bits() == q.to_bits());
    assert!(same, "f32 {what}");
    fused.buffer_bytes()
}

/// A binary node read only by a unary one is evaluated inside it, in L1-sized pieces,
/// and never stored. Fused and stored (the binary node planned as an output too) must
/// agree bit for bit for every binary and broadcast case, pieces that split columns
/// (1500 rows) and the flat matrix (10 × 300, no broadcast), in f64 and f32; and the
/// fused plan must hold no work buffer.
#[test]
fn fused_binary_unary_steps_agree_bit_for_bit_with_stored_ones() {
    use autodiff::{Binary, Unary};
    let mut rng = Rng::new(21);
    let cases: [((usize, usize), (usize, usize), (usize, usize)); 7] = [
        ((512, 3), (512, 3), (1, 3)),
        ((512, 3), (1, 3), (512, 3)),
        ((100, 5), (100, 5), (100, 1)),
        ((64, 4), (64, 4), (1, 1)),
        ((1500, 2), (1500, 2), (1, 2)),
        ((10, 300), (10, 300), (10, 300)),
        ((1500, 2), (1500, 2), (1500, 2)),
    ];
    let binaries = [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div, Binary::TanhGrad];
    let unaries = [Unary::Tanh, Unary::Sigmoid, Unary::Exp, Unary::Relu, Unary::Square];
    for (shape, sa, sb) in cases {
        let (av, bv) = (
            rng.matrix(sa.0, sa.1, Rng::normal).unwrap(),
            rng.matrix(sb.0, sb.1, Rng::normal).unwrap(),
        );
        for f in binaries {
            for u in unaries {
                let mut g = Graph::new();
                let (a, b) = (g.input(sa.0, sa.1), g.input(sb.0, sb.1));
                let x = g.binary(f, a, b).unwrap();
                let y = g.unary(u, x).unwrap();
                let what = format!("{u:?}({f:?}) at {shape:?}, {sa:?} with {sb:?}");
                let bytes = fused_and_stored_agree(&g, y, x, &[&av, &bv], &what);
                let held = (av.len() + bv.len() + shape.0 * shape.1) * 8;
                assert_eq!(bytes, held, "{what}: a work buffer");
            }
        }
    }
}

/// `f2(f1(a, b), c)`, `f2(c, f1(a, b))` and `f2(x, x)` with `x = f1(a, b)` planned fused
/// (pieces in scratch, no work buffer) give the bits of the same graph with `x` stored.
#[test]
fn fused_binary_binary_steps_agree_bit_for_bit_with_stored_ones() {
    use autodiff::Binary;
    let mut rng = Rng::new(22);
    let cases: [((usize, usize), (usize, usize), (usize, usize), (usize, usize)); 6] = [
        ((512, 3), (512, 3), (1, 3), (512, 3)),
        ((512, 3), (1, 3), (512, 3), (1, 3)),
        ((100, 5), (100, 5), (100, 1), (100, 5)),
        ((1500, 2), (1500, 2), (1500, 2), (1, 1)),
        ((10, 300), (10, 300), (10, 300), (10, 300)),
        ((1500, 2), (1500, 2), (1, 2), (1500, 2)),
    ];
    let binaries = [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div, Binary::TanhGrad];
    for (shape, sa, sb, sc) in cases {
        let (av, bv, cv) = (
            rng.matrix(sa.0, sa.1, Rng::normal).unwrap(),
            rng.matrix(sb.0, sb.1, Rng::normal).unwrap(),
            rng.matrix(sc.0, sc.1, Rng::normal).unwrap(),
        );
        for f1 in binaries {
            for f2 in binaries {
                for order in 0..3 {
                    let mut g = Graph::new();
                    let (a, b, c) = (g.input(sa.0, sa.1), g.input(sb.0, sb.1), g.input(sc.0, sc.1));
                    let x = g.binary(f1, a, b).unwrap();
                    let y = match order {
                        0 => g.binary(f2, x, c).unwrap(),
                        1 => g.binary(f2, c, x).unwrap(),
                        _ => g.binary(f2, x, x).unwrap(),
                    };
                    let what =
                        format!("{f2:?}/{order} of {f1:?} at {shape:?}: {sa:?} {sb:?} {sc:?}");
                    let bytes = fused_and_stored_agree(&g, y, x, &[&av, &bv, &cv], &what);
                    // (`x ∘ x` does not read `c`, so nothing holds it.)
                    let c_len = if order < 2 { cv.len() } else { 0 };
                    let held = (av.len() + bv.len() + c_len + shape.0 * shape.1) * 8;
                    assert_eq!(bytes, held, "{what}: a work buffer");
                }
            }
        }
    }
}
