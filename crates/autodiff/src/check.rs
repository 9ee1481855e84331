//! Gradient checks against central finite differences, shared by the test suite and
//! `cargo xtask gradcheck`.
//!
//! For a case `y = f(x_1, ..., x_n)` the check builds the scalar `L = Σ w ⊙ y` (random `w`)
//! and compares `∂L/∂x_k` (first order) with `(L(x + h e_i) - L(x - h e_i)) / 2h`. For second
//! order it builds `s = Σ_k Σ u_k ⊙ ∂L/∂x_k` from the analytic gradient and compares
//! `∂s/∂x_k` (a Hessian-vector product) with central differences of `s`.
//!
//! The error of a component is `|analytic - fd| / max(|analytic|, |fd|, 1e-2)`: relative,
//! with a floor so that near-zero derivatives are compared absolutely.

use crate::graph::Axis;
use crate::{Error, Executor, Graph, Mat, Rng, Var};

/// Where a case's inputs are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Domain {
    /// Uniform on `[-2, 2]`, but at least `min_abs` away from 0 (kinks, poles).
    Real {
        /// Smallest allowed magnitude.
        min_abs: f64,
    },
    /// Uniform on `[0.2, 2]`.
    Positive,
    /// Every entry equal to the value (to probe a point such as a kink).
    Exactly(f64),
}

/// One checked function.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Name in reports.
    pub name: &'static str,
    /// Input shapes from three sizes `(r, c, k)`.
    pub shapes: fn(usize, usize, usize) -> Vec<(usize, usize)>,
    /// Input domain.
    pub domain: Domain,
    /// Builds the output from the inputs.
    pub build: fn(&mut Graph, &[Var]) -> Result<Var, Error>,
}

/// Largest errors of one check.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CheckResult {
    /// First order.
    pub first: f64,
    /// Second order.
    pub second: f64,
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-2)
}

fn draw(rng: &mut Rng, shape: (usize, usize), domain: Domain) -> Result<Mat, Error> {
    rng.matrix(shape.0, shape.1, |r| match domain {
        Domain::Positive => r.uniform_in(0.2, 2.0),
        Domain::Exactly(x) => x,
        Domain::Real { min_abs } => {
            let x = r.uniform_in(-2.0, 2.0);
            if x.abs() < min_abs {
                x.signum() * min_abs + x
            } else {
                x
            }
        }
    })
}

/// A case's graph with its checked outputs: `L = Σ w ⊙ y`, the gradients of `L` with
/// respect to the inputs and parameters, `s = Σ_k Σ u_k ⊙ ∂L/∂x_k` and its gradients.
struct Checked {
    g: Graph,
    values: Vec<Mat>,
    loss: Var,
    s: Var,
    grads: Vec<Var>,
    hvps: Vec<Var>,
}

fn build_checked(case: &Case, dims: (usize, usize, usize), seed: u64) -> Result<Checked, Error> {
    let mut rng = Rng::new(seed);
    let shapes = (case.shapes)(dims.0, dims.1, dims.2);
    let values: Vec<Mat> =
        shapes.iter().map(|&s| draw(&mut rng, s, case.domain)).collect::<Result<_, _>>()?;
    let mut g = Graph::new();
    let xs: Vec<Var> = shapes.iter().map(|&(r, c)| g.input(r, c)).collect();
    let y = (case.build)(&mut g, &xs)?;
    let mut wrt = xs.clone();
    wrt.extend(g.param_vars());
    let (yr, yc) = g.shape(y)?;
    let w = g.constant(rng.matrix(yr, yc, Rng::normal)?);
    let wy = g.mul(w, y)?;
    let loss = g.sum(wy, Axis::All)?;
    let grads = g.grad(loss, &wrt)?;
    let mut s = g.fill(1, 1, 0.0);
    for &gk in &grads {
        let (r, c) = g.shape(gk)?;
        let u = g.constant(rng.matrix(r, c, Rng::normal)?);
        let ug = g.mul(u, gk)?;
        let t = g.sum(ug, Axis::All)?;
        s = g.add(s, t)?;
    }
    let hvps = g.grad(s, &wrt)?;
    Ok(Checked { g, values, loss, s, grads, hvps })
}

/// Evaluates `case`'s checked outputs (the loss, its gradients, `s` and its Hessian-vector
/// products, as in [`check_case`]) in `T` and in `f64` on the same data (inputs and
/// parameters rounded to `T`), and returns the largest difference
/// of an entry, relative to the largest magnitude of its output (at least 1): how much
/// precision an `Executor<T>` keeps on this operation.
pub fn precision_case<T: crate::Real>(
    case: &Case,
    dims: (usize, usize, usize),
    seed: u64,
) -> Result<f64, Error> {
    let Checked { mut g, mut values, loss, s, grads, hvps } = build_checked(case, dims, seed)?;
    // Both runs see the same numbers (the inputs and parameters rounded to `T`), so the
    // difference is the arithmetic's alone, not the rounding of the data.
    for p in g.params_mut() {
        *p = T::of(*p).widen();
    }
    for v in &mut values {
        v.apply(|x| *x = T::of(*x).widen());
    }
    let mut outputs = vec![loss, s];
    outputs.extend(&grads);
    outputs.extend(&hvps);
    let mut wide = Executor::new(&g, &outputs)?;
    wide.run(&g, &values.iter().collect::<Vec<_>>())?;
    let narrow_values: Vec<nalgebra::DMatrix<T>> = values.iter().map(|m| m.map(T::of)).collect();
    let mut narrow = Executor::<T>::build(&g, &outputs)?;
    narrow.run(&g, &narrow_values.iter().collect::<Vec<_>>())?;
    let mut worst = 0.0f64;
    for &o in &outputs {
        let (a, b) = (wide.value(o), narrow.value(o));
        let scale = a.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        for (x, y) in a.iter().zip(b.iter()) {
            worst = worst.max((x - y.widen()).abs() / scale);
        }
    }
    if !worst.is_finite() {
        return Err(Error::NonFinite { what: "precision check difference" });
    }
    Ok(worst)
}

/// Checks `case` at sizes `dims` with inputs drawn from `seed`: gradients and
/// Hessian-vector products with respect to the inputs and every parameter the case adds.
pub fn check_case(
    case: &Case,
    dims: (usize, usize, usize),
    seed: u64,
) -> Result<CheckResult, Error> {
    let Checked { mut g, mut values, loss, s, grads, hvps } = build_checked(case, dims, seed)?;
    let mut outputs = vec![loss, s];
    outputs.extend(&grads);
    outputs.extend(&hvps);
    let mut exe = Executor::new(&g, &outputs)?;
    fn run(
        exe: &mut Executor,
        g: &Graph,
        values: &[Mat],
        loss: Var,
        s: Var,
    ) -> Result<(f64, f64), Error> {
        let refs: Vec<&Mat> = values.iter().collect();
        exe.run(g, &refs)?;
        Ok((exe.value(loss)[(0, 0)], exe.value(s)[(0, 0)]))
    }
    run(&mut exe, &g, &values, loss, s)?;
    let mut analytic_grad =
        vec![
            0.0;
            grads.iter().map(|&v| g.shape(v).map(|(r, c)| r * c)).sum::<Result<usize, Error>>()?
        ];
    let mut analytic_hvp = analytic_grad.clone();
    exe.gather(&g, &grads, &mut analytic_grad)?;
    exe.gather(&g, &hvps, &mut analytic_hvp)?;
    let h = 1e-5;
    let mut result = CheckResult::default();
    let mut compare = |idx: usize, (lp, sp): (f64, f64), (lm, sm): (f64, f64)| {
        result.first = result.first.max(rel(analytic_grad[idx], (lp - lm) / (2.0 * h)));
        result.second = result.second.max(rel(analytic_hvp[idx], (sp - sm) / (2.0 * h)));
    };
    let mut idx = 0;
    for k in 0..values.len() {
        for e in 0..values[k].len() {
            let x0 = values[k][e];
            values[k][e] = x0 + h;
            let plus = run(&mut exe, &g, &values, loss, s)?;
            values[k][e] = x0 - h;
            let minus = run(&mut exe, &g, &values, loss, s)?;
            values[k][e] = x0;
            compare(idx, plus, minus);
            idx += 1;
        }
    }
    for e in 0..g.params().len() {
        let p0 = g.params()[e];
        g.params_mut()[e] = p0 + h;
        let plus = run(&mut exe, &g, &values, loss, s)?;
        g.params_mut()[e] = p0 - h;
        let minus = run(&mut exe, &g, &values, loss, s)?;
        g.params_mut()[e] = p0;
        compare(idx, plus, minus);
        idx += 1;
    }
    if !(result.first.is_finite() && result.second.is_finite()) {
        return Err(Error::NonFinite { what: "gradient check error" });
    }
    Ok(result)
}

macro_rules! case {
    ($name:expr, $shapes:expr, $domain:expr, $build:expr) => {
        Case { name: $name, shapes: $shapes, domain: $domain, build: $build }
    };
}

fn one(r: usize, c: usize, _: usize) -> Vec<(usize, usize)> {
    vec![(r, c)]
}
fn two_same(r: usize, c: usize, _: usize) -> Vec<(usize, usize)> {
    vec![(r, c), (r, c)]
}
fn with_row(r: usize, c: usize, _: usize) -> Vec<(usize, usize)> {
    vec![(r, c), (1, c)]
}
fn with_col(r: usize, c: usize, _: usize) -> Vec<(usize, usize)> {
    vec![(r, c), (r, 1)]
}
fn scalar_first(r: usize, c: usize, _: usize) -> Vec<(usize, usize)> {
    vec![(1, 1), (r, c)]
}

const REAL: Domain = Domain::Real { min_abs: 0.0 };
const AWAY: Domain = Domain::Real { min_abs: 0.2 };

/// Every operation (and the composites built from them), with the input shapes it is
/// checked on. Sizes run over 1..=4 in the tests, so `1×1`, `1×n` and `n×1` all occur.
pub fn cases() -> Vec<Case> {
    let mut v = vec![
        case!("tanh", one, REAL, |g, x| g.tanh(x[0])),
        case!("sigmoid", one, REAL, |g, x| g.sigmoid(x[0])),
        case!("softplus", one, REAL, |g, x| g.softplus(x[0])),
        case!("relu", one, AWAY, |g, x| g.relu(x[0])),
        case!("elu", one, AWAY, |g, x| g.elu(x[0], 0.7)),
        case!("swish", one, REAL, |g, x| g.swish(x[0])),
        case!("exp", one, REAL, |g, x| g.exp(x[0])),
        case!("log", one, Domain::Positive, |g, x| g.log(x[0])),
        case!("sqrt", one, Domain::Positive, |g, x| g.sqrt(x[0])),
        case!("square", one, REAL, |g, x| g.square(x[0])),
        case!("abs", one, AWAY, |g, x| g.abs(x[0])),
        case!("neg", one, REAL, |g, x| g.neg(x[0])),
        case!("scale", one, REAL, |g, x| g.scale(x[0], -1.7)),
        case!("add_scalar", one, REAL, |g, x| g.add_scalar(x[0], 0.3)),
        case!("powi(3)", one, REAL, |g, x| g.powi(x[0], 3)),
        case!("powi(-2)", one, AWAY, |g, x| g.powi(x[0], -2)),
        case!("matmul", |r, c, k| vec![(r, k), (k, c)], REAL, |g, x| g.matmul(x[0], x[1])),
        case!("matmul aᵀb", |r, c, k| vec![(k, r), (k, c)], REAL, |g, x| g
            .matmul_t(x[0], x[1], true, false)),
        case!("matmul abᵀ", |r, c, k| vec![(r, k), (c, k)], REAL, |g, x| g
            .matmul_t(x[0], x[1], false, true)),
        case!("matmul aᵀbᵀ", |r, c, k| vec![(k, r), (c, k)], REAL, |g, x| g
            .matmul_t(x[0], x[1], true, true)),
        case!("sum", one, REAL, |g, x| g.sum(x[0], Axis::All)),
        case!("sum rows", one, REAL, |g, x| g.sum(x[0], Axis::Rows)),
        case!("sum cols", one, REAL, |g, x| g.sum(x[0], Axis::Cols)),
        case!("mean", one, REAL, |g, x| g.mean(x[0], Axis::All)),
        case!("mean rows", one, REAL, |g, x| g.mean(x[0], Axis::Rows)),
        case!("mean cols", one, REAL, |g, x| g.mean(x[0], Axis::Cols)),
        case!("broadcast row", |_, c, _| vec![(1, c)], REAL, |g, x| {
            let c = g.shape(x[0])?.1;
            g.broadcast_to(x[0], (3, c))
        }),
        case!("broadcast col", |r, _, _| vec![(r, 1)], REAL, |g, x| {
            let r = g.shape(x[0])?.0;
            g.broadcast_to(x[0], (r, 2))
        }),
        case!("concat cols", |r, c, k| vec![(r, c), (r, k)], REAL, |g, x| g
            .concat_cols(&[x[0], x[1], x[0]])),
        case!("slice cols", |r, c, _| vec![(r, c + 1)], REAL, |g, x| {
            let c = g.shape(x[0])?.1;
            g.slice_cols(x[0], 1, c - 1)
        }),
        case!("pad cols", one, REAL, |g, x| {
            let c = g.shape(x[0])?.1;
            g.pad_cols(x[0], 1, c + 2)
        }),
        case!("transpose", one, REAL, |g, x| g.transpose(x[0])),
        case!("logsumexp rows", one, REAL, |g, x| g.logsumexp_rows(x[0])),
        case!("log_softmax rows", one, REAL, |g, x| g.log_softmax_rows(x[0])),
        case!("cross_entropy", two_same, Domain::Positive, |g, x| g.cross_entropy(x[0], x[1])),
        case!("gaussian_log_density", |r, c, _| vec![(r, c), (r, c), (1, c)], REAL, |g, x| {
            g.gaussian_log_density(x[0], x[1], x[2])
        }),
    ];
    v.extend(layer_cases());
    v.extend(image_cases());
    v.extend([
        case!("add", two_same, REAL, |g, x| g.add(x[0], x[1])),
        case!("add row", with_row, REAL, |g, x| g.add(x[0], x[1])),
        case!("add col", with_col, REAL, |g, x| g.add(x[0], x[1])),
        case!("add scalar", scalar_first, REAL, |g, x| g.add(x[0], x[1])),
        case!("sub", two_same, REAL, |g, x| g.sub(x[0], x[1])),
        case!("sub row", with_row, REAL, |g, x| g.sub(x[0], x[1])),
        case!("sub col", with_col, REAL, |g, x| g.sub(x[0], x[1])),
        case!("sub scalar", scalar_first, REAL, |g, x| g.sub(x[0], x[1])),
        case!("mul", two_same, REAL, |g, x| g.mul(x[0], x[1])),
        case!("mul row", with_row, REAL, |g, x| g.mul(x[0], x[1])),
        case!("mul col", with_col, REAL, |g, x| g.mul(x[0], x[1])),
        case!("mul scalar", scalar_first, REAL, |g, x| g.mul(x[0], x[1])),
        case!("div", two_same, Domain::Real { min_abs: 0.5 }, |g, x| g.div(x[0], x[1])),
        case!("div row", with_row, Domain::Real { min_abs: 0.5 }, |g, x| g.div(x[0], x[1])),
        case!("div col", with_col, Domain::Real { min_abs: 0.5 }, |g, x| g.div(x[0], x[1])),
        case!("div scalar", scalar_first, Domain::Real { min_abs: 0.5 }, |g, x| g.div(x[0], x[1])),
        case!("tanh_grad", two_same, REAL, |g, x| g.tanh_grad(x[0], x[1])),
        case!("tanh_grad row", with_row, REAL, |g, x| g.tanh_grad(x[0], x[1])),
        case!("tanh_grad scalar", scalar_first, REAL, |g, x| g.tanh_grad(x[0], x[1])),
    ]);
    v
}

/// A small image geometry for the checks: 2 channels of 3×4.
const IMG: crate::ConvGeometry = crate::ConvGeometry {
    channels: 2,
    height: 3,
    width: 4,
    kernel_h: 3,
    kernel_w: 3,
    stride: 1,
    padding: 1,
};
const IMG_S2: crate::ConvGeometry = crate::ConvGeometry {
    channels: 2,
    height: 5,
    width: 4,
    kernel_h: 2,
    kernel_w: 3,
    stride: 2,
    padding: 1,
};

/// The image operations and layers (`r` = batch).
fn image_cases() -> Vec<Case> {
    use crate::layers::{avg_pool2d, global_avg_pool, Conv2d, GroupNorm};
    vec![
        case!("im2col", |r, _, _| vec![(r, IMG.image_len())], REAL, |g, x| g.im2col(x[0], IMG)),
        case!("im2col stride 2", |r, _, _| vec![(r, IMG_S2.image_len())], REAL, |g, x| g
            .im2col(x[0], IMG_S2)),
        case!(
            "col2im",
            |r, _, _| vec![(r * IMG_S2.positions(), IMG_S2.patch_len())],
            REAL,
            |g, x| g.col2im(x[0], IMG_S2)
        ),
        case!("positions_to_rows", |r, c, _| vec![(3 * r, c)], REAL, |g, x| g
            .positions_to_rows(x[0], 3)),
        case!("rows_to_positions", |r, c, _| vec![(r, 3 * c)], REAL, |g, x| g
            .rows_to_positions(x[0], 3)),
        case!("rows_to_blocks", |r, c, _| vec![(r, 2 * c)], REAL, |g, x| g.rows_to_blocks(x[0], 2)),
        case!("blocks_to_rows", |r, c, _| vec![(2 * r, c)], REAL, |g, x| g.blocks_to_rows(x[0], 2)),
        case!("repeat_cols", one, REAL, |g, x| g.repeat_cols(x[0], 3)),
        case!("sum_groups", |r, c, _| vec![(r, 3 * c)], REAL, |g, x| g.sum_groups(x[0], 3)),
        case!("Conv2d 3x3 pad 1", |r, _, _| vec![(r, IMG.image_len())], REAL, |g, x| {
            Conv2d::new(g, "conv", IMG, 3, &mut Rng::new(7))?.forward(g, x[0])
        }),
        case!("Conv2d stride 2", |r, _, _| vec![(r, IMG_S2.image_len())], REAL, |g, x| {
            Conv2d::new(g, "conv", IMG_S2, 2, &mut Rng::new(8))?.forward(g, x[0])
        }),
        case!("GroupNorm", |r, _, _| vec![(r, 4 * 3)], REAL, |g, x| {
            let gn = GroupNorm::new(g, "gn", 2, 4, 3)?;
            // Non-trivial affine parameters so their gradients are exercised.
            let p = g.params_mut();
            for (i, v) in p.iter_mut().enumerate() {
                *v = 0.5 + 0.25 * i as f64;
            }
            gn.forward(g, x[0])
        }),
        case!("avg_pool2d", |r, _, _| vec![(r, IMG_S2.image_len())], REAL, |g, x| avg_pool2d(
            g, x[0], IMG_S2
        )),
        case!("global_avg_pool", |r, _, _| vec![(r, 2 * 6)], REAL, |g, x| global_avg_pool(
            g, x[0], 6
        )),
    ]
}

/// The layers, with parameter and input gradients checked (sizes: batch `r`, input `c`,
/// output `k`).
fn layer_cases() -> Vec<Case> {
    use crate::layers::{Activation, ConcatLinear, ConcatSquash, GruCell, Linear, Mlp};
    vec![
        case!("Linear", |r, c, _| vec![(r, c)], REAL, |g, x| {
            let c = g.shape(x[0])?.1;
            Linear::new(g, "l", c, 3, &mut Rng::new(1))?.forward(g, x[0])
        }),
        case!("Mlp tanh", |r, c, _| vec![(r, c)], REAL, |g, x| {
            let c = g.shape(x[0])?.1;
            Mlp::new(g, "m", &[c, 5, 4, 2], Activation::Tanh, &mut Rng::new(2))?.forward(g, x[0])
        }),
        case!("Mlp softplus", |r, c, _| vec![(r, c)], REAL, |g, x| {
            let c = g.shape(x[0])?.1;
            Mlp::new(g, "m", &[c, 4, 2], Activation::Softplus, &mut Rng::new(3))?.forward(g, x[0])
        }),
        case!("ConcatLinear", |r, c, _| vec![(r, c), (1, 1)], REAL, |g, x| {
            let c = g.shape(x[0])?.1;
            ConcatLinear::new(g, "cl", c, 3, &mut Rng::new(4))?.forward(g, x[0], x[1])
        }),
        case!("ConcatSquash", |r, c, _| vec![(r, c), (1, 1)], REAL, |g, x| {
            let c = g.shape(x[0])?.1;
            ConcatSquash::new(g, "cs", c, 3, &mut Rng::new(5))?.forward(g, x[0], x[1])
        }),
        case!("GruCell", |r, c, k| vec![(r, c), (r, k)], REAL, |g, x| {
            let (c, k) = (g.shape(x[0])?.1, g.shape(x[1])?.1);
            GruCell::new(g, "gru", c, k, &mut Rng::new(6))?.forward(g, x[0], x[1])
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_catches_a_derivative_that_disagrees_with_the_function() {
        // At the jump of `step`, the analytic derivative is 0 and the central difference
        // is 1/(2h): the check must report a 100% error.
        let jump = Case {
            name: "step at 0",
            shapes: one,
            domain: Domain::Exactly(0.0),
            build: |g, x| g.unary(crate::Unary::Step, x[0]),
        };
        assert!(check_case(&jump, (2, 1, 1), 0).unwrap().first >= 0.99);
        let smooth = Case {
            name: "step away from 0",
            shapes: one,
            domain: Domain::Exactly(1.0),
            build: jump.build,
        };
        assert_eq!(check_case(&smooth, (2, 1, 1), 0).unwrap().first, 0.0);
    }
}
