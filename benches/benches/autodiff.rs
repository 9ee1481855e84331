//! Criterion benchmarks of `autodiff` replays: the MLP 2→64→64→2 (tanh) at batch 1, 32
//! and 512 — forward, forward + VJP (cotangent in, gradients for input and parameters
//! out), and VJP of the VJP (gradient in the parameters of `‖aᵀ ∂f/∂x‖²`, RNODE's
//! Jacobian penalty) — each beside the bare nalgebra matrix products it contains.
//! Also the 64-channel 3×3 convolution (padding 1) on 7×7 maps at batch 128, forward and
//! forward + VJP, and single products of the MNIST ODE block's shapes. Before timing, each case prints `FLOPS <case> <n>` (the products' multiply-adds × 2),
//! from which `cargo xtask bench` reports GFLOP/s; the MLP's graph cases also print
//! `FLOOR <case> <flops> <tanh elements>` and the `tanh` case `TANH <case> <elements>`,
//! from which it reports each case's floor: its products at the run's best product rate
//! plus its `tanh` at the measured time per element. Cases ending in `_f32` replay the same
//! graphs in single precision (`Executor<f32>`); their floors use the `f32` rates.

use autodiff::layers::{Activation, Conv2d, Mlp};
use autodiff::{Axis, ConvGeometry, Executor, Graph, Mat, Rng, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;

const WIDTHS: [usize; 4] = [2, 64, 64, 2];

struct Field {
    g: Graph,
    forward: Vec<Var>,
    vjp: Vec<Var>,
    vjp_of_vjp: Vec<Var>,
}

fn field(batch: usize) -> Field {
    let mut g = Graph::new();
    let x = g.input(batch, 2);
    let a = g.input(batch, 2);
    let mlp = Mlp::new(&mut g, "f", &WIDTHS, Activation::Tanh, &mut Rng::new(0)).unwrap();
    let y = mlp.forward(&mut g, x).unwrap();
    let params = g.param_vars().to_vec();
    let mut wrt = vec![x];
    wrt.extend(&params);
    let grads = g.vjp(&[(y, a)], &wrt).unwrap();
    let sq = g.square(grads[0]).unwrap();
    let penalty = g.sum(sq, Axis::All).unwrap();
    let second = g.grad(penalty, &params).unwrap();
    let mut vjp = vec![y];
    vjp.extend(&grads);
    let mut vjp_of_vjp = vec![penalty];
    vjp_of_vjp.extend(second);
    Field { g, forward: vec![y], vjp, vjp_of_vjp }
}

/// Multiply-add count ×2 of a graph's planned matrix products.
fn product_flops(g: &Graph, outputs: &[Var]) -> usize {
    cost(g, outputs).0
}

/// The planned graph's matrix products (multiply-adds ×2) and `tanh` evaluations, what
/// its floor in `cargo xtask bench` is made of.
fn cost(g: &Graph, outputs: &[Var]) -> (usize, usize) {
    let mut needed = vec![false; g.len()];
    for o in outputs {
        needed[o.index()] = true;
    }
    let (mut flops, mut tanh) = (0, 0);
    for i in (0..g.len()).rev() {
        if !needed[i] {
            continue;
        }
        let node = g.node(Var::from_index(i)).unwrap();
        let ops = node.op.operands();
        for v in &ops {
            needed[v.index()] = true;
        }
        match node.op {
            autodiff::Op::MatMul { a, ta, .. } => {
                let sa = g.shape(a).unwrap();
                let k = if ta { sa.0 } else { sa.1 };
                flops += 2 * node.shape.0 * node.shape.1 * k;
            }
            autodiff::Op::Unary(autodiff::Unary::Tanh, _) => tanh += node.shape.0 * node.shape.1,
            _ => {}
        }
    }
    (flops, tanh)
}

/// The bare products of the forward pass and of forward + VJP, with nalgebra's `gemm`
/// into preallocated outputs.
struct Bare {
    x: Mat,
    w: Vec<Mat>,
    /// Transposed weights, precomputed so the timed loop allocates nothing.
    wt: Vec<Mat>,
    h: Vec<Mat>,
    dh: Vec<Mat>,
    dw: Vec<Mat>,
}

impl Bare {
    fn new(batch: usize) -> Self {
        let mut rng = Rng::new(1);
        let w: Vec<Mat> =
            WIDTHS.windows(2).map(|p| rng.matrix(p[0], p[1], Rng::normal).unwrap()).collect();
        let h = WIDTHS[1..].iter().map(|&n| Mat::zeros(batch, n)).collect();
        let dh = WIDTHS[..3].iter().map(|&n| Mat::zeros(batch, n)).collect();
        let dw = w.iter().map(|m| Mat::zeros(m.nrows(), m.ncols())).collect();
        let wt = w.iter().map(|m| m.transpose()).collect();
        Bare { x: rng.matrix(batch, 2, Rng::normal).unwrap(), w, wt, h, dh, dw }
    }

    fn forward(&mut self) {
        let (h0, rest) = self.h.split_at_mut(1);
        h0[0].gemm(1.0, &self.x, &self.w[0], 0.0);
        let (h1, h2) = rest.split_at_mut(1);
        h1[0].gemm(1.0, &h0[0], &self.w[1], 0.0);
        h2[0].gemm(1.0, &h1[0], &self.w[2], 0.0);
    }

    fn forward_vjp(&mut self) {
        self.forward();
        // dW_l = h_{l-1}ᵀ g_l and dh_{l-1} = g_l W_lᵀ, with the outputs standing in for g.
        let [d0, d1, d2] = &mut self.dh[..] else { return };
        self.dw[2].gemm_tr(1.0, &self.h[1], &self.h[2], 0.0);
        d2.gemm(1.0, &self.h[2], &self.wt[2], 0.0);
        self.dw[1].gemm_tr(1.0, &self.h[0], d2, 0.0);
        d1.gemm(1.0, d2, &self.wt[1], 0.0);
        self.dw[0].gemm_tr(1.0, &self.x, d1, 0.0);
        d0.gemm(1.0, d1, &self.wt[0], 0.0);
    }
}

fn bench_mlp(c: &mut Criterion) {
    let mut group = c.benchmark_group("mlp_2_64_64_2");
    for batch in [1usize, 32, 512] {
        let f = field(batch);
        let mut rng = Rng::new(2);
        let x = rng.matrix(batch, 2, Rng::normal).unwrap();
        let a = rng.matrix(batch, 2, Rng::normal).unwrap();
        for (name, outs) in
            [("forward", &f.forward), ("forward+vjp", &f.vjp), ("vjp_of_vjp", &f.vjp_of_vjp)]
        {
            let mut exe = Executor::new(&f.g, outs).unwrap();
            let id = format!("{name}/{batch}");
            let (flops, tanh) = cost(&f.g, outs);
            println!("FLOPS mlp_2_64_64_2/{id} {flops}");
            println!("FLOOR mlp_2_64_64_2/{id} {flops} {tanh}");
            group.bench_function(BenchmarkId::from_parameter(&id), |b| {
                b.iter(|| exe.run(&f.g, &[black_box(&x), black_box(&a)]).unwrap())
            });
            if batch == 512 {
                // The same graph replayed in single precision.
                let mut exe = Executor::<f32>::build(&f.g, outs).unwrap();
                let (x, a) = (x.map(|v| v as f32), a.map(|v| v as f32));
                let id = format!("{name}/{batch}_f32");
                println!("FLOPS mlp_2_64_64_2/{id} {flops}");
                println!("FLOOR mlp_2_64_64_2/{id} {flops} {tanh}");
                group.bench_function(BenchmarkId::from_parameter(&id), |b| {
                    b.iter(|| exe.run(&f.g, &[black_box(&x), black_box(&a)]).unwrap())
                });
            }
        }
        let mut bare = Bare::new(batch);
        let fwd_flops = 2 * batch * (2 * 64 + 64 * 64 + 64 * 2);
        println!("FLOPS mlp_2_64_64_2/bare_forward/{batch} {fwd_flops}");
        group.bench_function(BenchmarkId::from_parameter(format!("bare_forward/{batch}")), |b| {
            b.iter(|| bare.forward())
        });
        println!("FLOPS mlp_2_64_64_2/bare_forward+vjp/{batch} {}", 3 * fwd_flops);
        group.bench_function(
            BenchmarkId::from_parameter(format!("bare_forward+vjp/{batch}")),
            |b| b.iter(|| bare.forward_vjp()),
        );
    }
    group.finish();
}

fn bench_conv(c: &mut Criterion) {
    let geom = ConvGeometry {
        channels: 64,
        height: 7,
        width: 7,
        kernel_h: 3,
        kernel_w: 3,
        stride: 1,
        padding: 1,
    };
    let batch = 128;
    let mut g = Graph::new();
    let x = g.input(batch, geom.image_len());
    let conv = Conv2d::new(&mut g, "conv", geom, 64, &mut Rng::new(3)).unwrap();
    let y = conv.forward(&mut g, x).unwrap();
    let cot = g.input(batch, 64 * geom.positions());
    let grads = g.vjp(&[(y, cot)], &[x, conv.weight, conv.bias]).unwrap();
    let mut rng = Rng::new(4);
    let xv = rng.matrix(batch, geom.image_len(), Rng::normal).unwrap();
    let cv = rng.matrix(batch, 64 * geom.positions(), Rng::normal).unwrap();
    let mut group = c.benchmark_group("conv64_3x3_7x7_b128");
    group.sample_size(20);
    let mut vjp_outs = vec![y];
    vjp_outs.extend(grads);
    for (name, outs) in [("forward", vec![y]), ("forward+vjp", vjp_outs)] {
        let mut exe = Executor::new(&g, &outs).unwrap();
        println!("FLOPS conv64_3x3_7x7_b128/{name} {}", product_flops(&g, &outs));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| exe.run(&g, &[black_box(&xv), black_box(&cv)]).unwrap())
        });
    }
    group.finish();
}

/// Single matrix products, `m×n` results over `k`: the MNIST ODE block's three products
/// (batch chunk 64 × 49 positions = 3136 rows, 576 = 64 channels × 3×3) and the MLP's
/// hidden layer at batch 512. `nn` is `A·B`, `tn` is `Aᵀ·B` (weight gradients), `nt` is
/// `A·Bᵀ` (input gradients).
fn bench_matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul");
    group.sample_size(20);
    let mut rng = Rng::new(5);
    // The MNIST ODE block's products at a batch chunk of 64, the MLP's hidden layer at
    // batch 512 with its weight and input gradients, and the T2 field's thin products with its 2-wide layers (forward
    // 512×64·64×2, weight gradient (512×64)ᵀ·(512×2), input gradient 512×2·(64×2)ᵀ, and
    // the first layer's forward and weight gradient).
    for (kind, m, n, k) in [
        ("nn", 3136, 64, 576),
        ("tn", 576, 64, 3136),
        ("nt", 3136, 576, 64),
        ("nn", 512, 64, 64),
        ("tn", 64, 64, 512),
        ("nt", 512, 64, 64),
        ("nn", 512, 2, 64),
        ("tn", 64, 2, 512),
        ("nt", 512, 64, 2),
        ("nn", 512, 64, 2),
        ("tn", 2, 64, 512),
    ] {
        let (ta, tb) = (kind.starts_with('t'), kind.ends_with('t'));
        let (sa, sb) = (if ta { (k, m) } else { (m, k) }, if tb { (n, k) } else { (k, n) });
        let mut g = Graph::new();
        let a = g.input(sa.0, sa.1);
        let b = g.input(sb.0, sb.1);
        let y = g.matmul_t(a, b, ta, tb).unwrap();
        let av = rng.matrix(sa.0, sa.1, Rng::normal).unwrap();
        let bv = rng.matrix(sb.0, sb.1, Rng::normal).unwrap();
        let mut exe = Executor::new(&g, &[y]).unwrap();
        let id = format!("{kind}_{m}x{n}x{k}");
        println!("FLOPS matmul/{id} {}", product_flops(&g, &[y]));
        group.bench_function(BenchmarkId::from_parameter(&id), |bch| {
            bch.iter(|| exe.run(&g, &[black_box(&av), black_box(&bv)]).unwrap())
        });
        if m == 512 || n == 512 || k == 512 {
            // The T2 field's products in single precision.
            let mut exe = Executor::<f32>::build(&g, &[y]).unwrap();
            let (av, bv) = (av.map(|v| v as f32), bv.map(|v| v as f32));
            let id = format!("{id}_f32");
            println!("FLOPS matmul/{id} {}", product_flops(&g, &[y]));
            group.bench_function(BenchmarkId::from_parameter(&id), |bch| {
                bch.iter(|| exe.run(&g, &[black_box(&av), black_box(&bv)]).unwrap())
            });
        }
    }
    group.finish();
}

/// `tanh` over the T2 field's hidden layer at batch 512 (512 × 64 elements): its
/// nanoseconds per element are the `tanh` part of `cargo xtask bench`'s floors.
fn bench_tanh(c: &mut Criterion) {
    let mut group = c.benchmark_group("elementwise");
    let mut g = Graph::new();
    let x = g.input(512, 64);
    let y = g.tanh(x).unwrap();
    let xv = Rng::new(6).matrix(512, 64, Rng::normal).unwrap();
    let mut exe = Executor::new(&g, &[y]).unwrap();
    println!("TANH elementwise/tanh_512x64 {}", 512 * 64);
    group.bench_function("tanh_512x64", |b| b.iter(|| exe.run(&g, &[black_box(&xv)]).unwrap()));
    let mut exe32 = Executor::<f32>::build(&g, &[y]).unwrap();
    let xv32 = xv.map(|v| v as f32);
    println!("TANH elementwise/tanh_512x64_f32 {}", 512 * 64);
    group.bench_function("tanh_512x64_f32", |b| {
        b.iter(|| exe32.run(&g, &[black_box(&xv32)]).unwrap())
    });
    // The fused kernel `tanh_grad(a, t) = a ⊙ (1 − t²)` (tanh's backward, one pass) beside
    // the four passes it replaces (square, negate, add 1, multiply).
    let mut rng = Rng::new(7);
    let (av, tv) = (rng.matrix(512, 64, Rng::normal).unwrap(), xv.map(f64::tanh));
    for fused in [true, false] {
        let mut g = Graph::new();
        let (a, t) = (g.input(512, 64), g.input(512, 64));
        let y = if fused {
            g.tanh_grad(a, t).unwrap()
        } else {
            let sq = g.square(t).unwrap();
            let neg = g.neg(sq).unwrap();
            let one_minus = g.add_scalar(neg, 1.0).unwrap();
            g.mul(a, one_minus).unwrap()
        };
        let mut exe = Executor::new(&g, &[y]).unwrap();
        let name = if fused { "tanh_grad_512x64" } else { "tanh_grad_unfused_512x64" };
        group.bench_function(name, |b| {
            b.iter(|| exe.run(&g, &[black_box(&av), black_box(&tv)]).unwrap())
        });
    }
    // `tanh(x + b)` with a broadcast bias: fused (the sum computed in L1-sized pieces
    // inside the `tanh` step, never stored) beside the sum stored first (planned as an
    // output too, which is what stops the fusion).
    let bv = rng.matrix(1, 64, Rng::normal).unwrap();
    for fused in [true, false] {
        let mut g = Graph::new();
        let (x, b) = (g.input(512, 64), g.input(1, 64));
        let sum = g.add(x, b).unwrap();
        let y = g.tanh(sum).unwrap();
        let outs = if fused { vec![y] } else { vec![y, sum] };
        let mut exe = Executor::new(&g, &outs).unwrap();
        let name = if fused { "bias_tanh_512x64" } else { "bias_tanh_unfused_512x64" };
        group.bench_function(name, |bn| {
            bn.iter(|| exe.run(&g, &[black_box(&xv), black_box(&bv)]).unwrap())
        });
    }
    group.finish();
}

#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, bench_mlp, bench_conv, bench_matmul, bench_tanh);
}
criterion_main!(group::benches);
