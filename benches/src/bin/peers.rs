//! The peers' tasks T1 and T2 (issue #16) and T3 (issue #12, one FFJORD training step) on
//! our side, for the side-by-side comparison with diffrax in `benches/peers/`
//! (instructions in `docs/BENCHMARKS.md`).
//!
//! `peers inputs FILE.json` writes the shared inputs (the T2 MLP in PyTorch's `nn.Linear`
//! layout and its batch of initial states); `peers time FILE.json` reads them back, solves
//! every task on one thread and prints one JSON line per task: median milliseconds over
//! the repeats and their minimum (only tasks whose names contain the optional filter, or
//! equal it without a trailing `$`: `t2_backsolve$` leaves out `t2_backsolve_f32`), NFE,
//! accepted steps, the loss, and for gradients the relative error of `dL/dz0` and `dL/dθ`
//! against a Dop853 `1e-12` reference. `benches/peers/diffrax_tasks.py` prints the same
//! lines for diffrax from the same file, and `compare.py` joins the two.
//! `peers kernels [FILTER]` times the fields' single products and `tanh` (see [`kernels`]);
//! `peers floors` measures this core's ceilings that the hot paths are held against (see
//! [`floors`]).

use adjoint::{gradient, AdjointOptions, AutodiffField, Gradients, Strategy};
use autodiff::layers::{Activation, Linear};
use autodiff::{Graph, Mat, Rng, Var};
use ode_solvers::problems::{arenstorf, arenstorf_rhs, lotka_volterra, lotka_volterra_rhs};
use ode_solvers::{odeint, Method, Options};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// One `nn.Linear` layer: `weight` is `out × in`.
#[derive(Serialize, Deserialize)]
struct Layer {
    weight: Vec<Vec<f64>>,
    bias: Vec<f64>,
}

/// The shared inputs of T2.
#[derive(Serialize, Deserialize)]
struct Inputs {
    layers: Vec<Layer>,
    /// `batch × 2` initial states.
    z0: Vec<Vec<f64>>,
    t1: f64,
    rtol: f64,
    /// The number of Van der Pol oscillators of T1's large system (state `[x; v]`).
    vdp_n: usize,
    /// T3's inputs (absent in files written before T3 joined).
    #[serde(default)]
    t3: Option<T3>,
}

/// The shared inputs of T3: an MLP on `[z, t]` (time the last input), its batch and the
/// Hutchinson probe of the step.
#[derive(Serialize, Deserialize)]
struct T3 {
    layers: Vec<Layer>,
    /// `batch × 2` data points (8gaussians).
    x: Vec<Vec<f64>>,
    /// `batch × 2` Gaussian probe, held for the step.
    noise: Vec<Vec<f64>>,
    t1: f64,
    rtol: f64,
    lr: f64,
}

/// `nn.Linear` layers of these widths with PyTorch's default initialisation.
fn torch_layers(widths: &[usize], rng: &mut Rng) -> Vec<Layer> {
    widths
        .windows(2)
        .map(|w| {
            let bound = 1.0 / (w[0] as f64).sqrt();
            let weight = (0..w[1])
                .map(|_| (0..w[0]).map(|_| rng.uniform_in(-bound, bound)).collect())
                .collect();
            let bias = (0..w[1]).map(|_| rng.uniform_in(-bound, bound)).collect();
            Layer { weight, bias }
        })
        .collect()
}

/// T3 as #12 defines it: MLP 3→64→64→64→2 (tanh) from seed 3, 512 points of 8gaussians
/// from seed 4, a standard normal probe from seed 5, Dopri5 at 1e-5 over [0, 1], Adam at
/// lr 1e-3.
fn make_t3() -> T3 {
    let layers = torch_layers(&[3, 64, 64, 64, 2], &mut Rng::new(3));
    let x = cnf::Toy::EightGaussians.sample(512, &mut Rng::new(4));
    let mut rng = Rng::new(5);
    T3 {
        layers,
        x: x.iter().map(|p| p.to_vec()).collect(),
        noise: (0..512).map(|_| vec![rng.normal(), rng.normal()]).collect(),
        t1: 1.0,
        rtol: 1e-5,
        lr: 1e-3,
    }
}

/// The T2 inputs: PyTorch's default `nn.Linear` initialisation from seed 0, a standard
/// normal batch of 512 from seed 1.
fn make_inputs() -> Inputs {
    let layers = torch_layers(&[2, 64, 64, 2], &mut Rng::new(0));
    let mut rng = Rng::new(1);
    let z0 = (0..512).map(|_| vec![rng.normal(), rng.normal()]).collect();
    Inputs { layers, z0, t1: 1.0, rtol: 1e-6, vdp_n: 1024, t3: Some(make_t3()) }
}

/// The MLP field of the inputs, tanh between layers.
fn field(inputs: &Inputs) -> Result<AutodiffField, String> {
    let batch = inputs.z0.len();
    if batch == 0 || inputs.z0.iter().any(|r| r.len() != 2) {
        return Err("z0: a non-empty batch of 2-vectors is needed".into());
    }
    field_for(inputs, batch)
}

/// The inputs' MLP field on a batch of `batch` rows.
fn field_for(inputs: &Inputs, batch: usize) -> Result<AutodiffField, String> {
    let (g, _, h) = mlp_graph(inputs, batch)?;
    AutodiffField::new(g, h).map_err(|e| e.to_string())
}

/// The inputs' MLP as a graph on a batch of `batch` rows: the graph, its input and output.
fn mlp_graph(inputs: &Inputs, batch: usize) -> Result<(Graph, Var, Var), String> {
    if inputs.layers.iter().any(|l| l.weight.is_empty() || l.weight[0].is_empty()) {
        return Err("layers: an empty weight".into());
    }
    let mut g = Graph::new();
    let x = g.input(batch, 2);
    let mut h = x;
    for (l, layer) in inputs.layers.iter().enumerate() {
        let (out, inp) = (layer.weight.len(), layer.weight[0].len());
        let w = Mat::from_fn(inp, out, |i, o| layer.weight[o][i]);
        let b = Mat::from_row_slice(1, out, &layer.bias);
        h = Linear::from_values(&mut g, &format!("layer{l}"), &w, &b)
            .and_then(|lin| lin.forward(&mut g, h))
            .map_err(|e| e.to_string())?;
        if l + 1 < inputs.layers.len() {
            h = Activation::Tanh.apply(&mut g, h).map_err(|e| e.to_string())?;
        }
    }
    Ok((g, x, h))
}

/// T2 in single precision: the same graph as an `AutodiffField<f32>`, Dopri5 in `f32` at
/// the same tolerances, the forward solve and both gradients; `err_z1` is the final
/// state's largest difference from the `f64` solve's, relative to its largest entry, and
/// the gradients' errors are against the same `f64` Dop853 `1e-12` reference as T2's.
fn time_t2_f32(
    inputs: &Inputs,
    filter: &str,
    z1_f64: &[f64],
    reference: &Gradients,
) -> Result<(), String> {
    let batch = inputs.z0.len();
    let (g, _, y) = mlp_graph(inputs, batch)?;
    let f = AutodiffField::<f32>::from_graph(g, y).map_err(|e| e.to_string())?;
    let z0: Vec<f32> = (0..2).flat_map(|j| inputs.z0.iter().map(move |r| r[j] as f32)).collect();
    let ts = [0.0f32, inputs.t1 as f32];
    let opts =
        AdjointOptions::new(Options::new(Method::Dopri5).rtol(inputs.rtol).atol(inputs.rtol));
    let sol = odeint(&f, &z0, &ts, &opts.forward).map_err(|e| e.to_string())?;
    let widen = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let z1 = widen(&sol.ys[1]);
    let loss_value = z1.iter().map(|x| x * x).sum::<f64>();
    if selected("t2_forward_f32", filter) {
        let ms = median_ms(|| {
            let _ = std::hint::black_box(odeint(&f, &z0, &ts, &opts.forward));
        });
        let extra = format!(", \"err_z1\": {:.3e}", rel_error(&z1, z1_f64));
        line(
            "t2_forward_f32",
            ms,
            sol.stats.nfe.to_string(),
            sol.stats.accepted,
            loss_value,
            &extra,
        );
    }
    let loss = |zs: &[Vec<f32>]| {
        let v = zs[1].iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>();
        (v, vec![vec![0.0; zs[0].len()], zs[1].iter().map(|x| 2.0 * x).collect()])
    };
    for (task, strategy) in
        [("t2_backsolve_f32", Strategy::Backsolve), ("t2_checkpointed_f32", Strategy::Checkpointed)]
    {
        if !selected(task, filter) {
            continue;
        }
        let g = gradient(&f, &z0, &ts, &loss, strategy, &opts).map_err(|e| e.to_string())?;
        let ms = median_ms(|| {
            let _ = std::hint::black_box(gradient(&f, &z0, &ts, &loss, strategy, &opts));
        });
        let extra = format!(
            ", \"err_z0\": {:.3e}, \"err_params\": {:.3e}",
            rel_error(&widen(&g.z0), &reference.z0),
            rel_error(&widen(&g.params), &reference.params)
        );
        let nfe = format!("{}+{}", g.nfe_forward, g.nfe_backward);
        line(task, ms, nfe, sol.stats.accepted, g.loss, &extra);
    }
    Ok(())
}

/// Whether task `name` passes `filter`: a substring of it, or the whole name where the filter
/// ends in `$` (`t2_backsolve$` is not `t2_backsolve_f32`).
fn selected(name: &str, filter: &str) -> bool {
    match filter.strip_suffix('$') {
        Some(whole) => name == whole,
        None => name.contains(filter),
    }
}

/// Median and minimum wall time in milliseconds of `f` over at least 10 runs and at least
/// 1 s, after 3 warm-up runs (the same rule as `diffrax_tasks.py`).
fn median_ms(mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..3 {
        f();
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 10 || start.elapsed().as_secs_f64() < 1.0 {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}

/// `max |a - b| / max |b|`.
fn rel_error(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn line(task: &str, (ms, min): (f64, f64), nfe: String, steps: usize, loss: f64, extra: &str) {
    println!(
        "{{\"side\": \"ours\", \"task\": \"{task}\", \"ms\": {ms:.4}, \"min_ms\": {min:.4}, \
         \"nfe\": \"{nfe}\", \"steps\": {steps}, \"loss\": {loss:.12e}{extra}}}"
    );
}

fn time(inputs: &Inputs, filter: &str) -> Result<(), String> {
    let f = field(inputs)?;
    // Our states are column-major: all first coordinates, then all second.
    let z0: Vec<f64> = (0..2).flat_map(|j| inputs.z0.iter().map(move |r| r[j])).collect();
    let ts = [0.0, inputs.t1];
    let loss = |zs: &[Vec<f64>]| {
        let v = zs[1].iter().map(|x| x * x).sum::<f64>();
        (v, vec![vec![0.0; zs[0].len()], zs[1].iter().map(|x| 2.0 * x).collect()])
    };
    let tol = inputs.rtol;
    let opts = AdjointOptions::new(Options::new(Method::Dopri5).rtol(tol).atol(tol));
    let sol = odeint(&f, &z0, &ts, &opts.forward).map_err(|e| e.to_string())?;
    let final_loss = sol.ys[1].iter().map(|x| x * x).sum::<f64>();
    if selected("t2_forward", filter) {
        let ms = median_ms(|| {
            let _ = std::hint::black_box(odeint(&f, &z0, &ts, &opts.forward));
        });
        line("t2_forward", ms, sol.stats.nfe.to_string(), sol.stats.accepted, final_loss, "");
    }
    let reference_opts = AdjointOptions::new(
        Options::new(Method::Dop853).rtol(1e-12).atol(1e-12).max_steps(1_000_000),
    );
    let reference = gradient(&f, &z0, &ts, &loss, Strategy::Direct, &reference_opts)
        .map_err(|e| format!("reference: {e}"))?;
    for (task, strategy) in
        [("t2_backsolve", Strategy::Backsolve), ("t2_checkpointed", Strategy::Checkpointed)]
    {
        if !selected(task, filter) {
            continue;
        }
        let g: Gradients =
            gradient(&f, &z0, &ts, &loss, strategy, &opts).map_err(|e| e.to_string())?;
        let ms = median_ms(|| {
            let _ = std::hint::black_box(gradient(&f, &z0, &ts, &loss, strategy, &opts));
        });
        let extra = format!(
            ", \"err_z0\": {:.3e}, \"err_params\": {:.3e}",
            rel_error(&g.z0, &reference.z0),
            rel_error(&g.params, &reference.params)
        );
        let nfe = format!("{}+{}", g.nfe_forward, g.nfe_backward);
        line(task, ms, nfe, sol.stats.accepted, g.loss, &extra);
    }
    time_t2_f32(inputs, filter, &sol.ys[1], &reference)?;
    if let Some(t3) = inputs.t3.as_ref().filter(|_| selected("t3_ffjord_step", filter)) {
        time_t3(t3, 1)?;
    }
    for tol in [1e-6, 1e-8] {
        let o = Options::new(Method::Dopri5).rtol(tol).atol(tol).max_steps(1_000_000);
        let lv = lotka_volterra();
        let ar = arenstorf();
        let n = inputs.vdp_n;
        let vdp = move |_t: f64, y: &[f64], dy: &mut [f64]| {
            let (x, v) = y.split_at(n);
            let (dx, dv) = dy.split_at_mut(n);
            dx.copy_from_slice(v);
            for ((d, &x), &v) in dv.iter_mut().zip(x).zip(v) {
                *d = (1.0 - x * x) * v - x;
            }
        };
        let vdp0: Vec<f64> = (0..n)
            .map(|i| 2.0 * (i as f64 * 0.37).sin())
            .chain((0..n).map(|i| 2.0 * (i as f64 * 0.61).cos()))
            .collect();
        let cases: [(&str, &dyn Fn() -> Result<ode_solvers::Solution<f64>, String>); 3] = [
            ("t1_lotka_volterra", &|| {
                odeint(&lotka_volterra_rhs, &lv.y0, &[0.0, lv.t_span.1], &o)
                    .map_err(|e| e.to_string())
            }),
            ("t1_arenstorf", &|| {
                odeint(&arenstorf_rhs, &ar.y0, &[0.0, ar.t_span.1], &o).map_err(|e| e.to_string())
            }),
            ("t1_vdp_2048", &|| odeint(&vdp, &vdp0, &[0.0, 10.0], &o).map_err(|e| e.to_string())),
        ];
        for (name, run) in cases {
            let name = format!("{name}/{tol:e}");
            if !selected(&name, filter) {
                continue;
            }
            let sol = run()?;
            let ms = median_ms(|| {
                let _ = std::hint::black_box(run());
            });
            let last = sol.ys.last().map_or(0.0, |y| y.iter().sum::<f64>());
            line(&name, ms, sol.stats.nfe.to_string(), sol.stats.accepted, last, "");
        }
    }
    Ok(())
}

/// T3's flow on the rows `rows` of its batch (the probe's rows with them), and those
/// rows of `x`, both column-major.
fn t3_flow(t3: &T3, rows: std::ops::Range<usize>) -> Result<(cnf::Cnf, Vec<f64>), String> {
    use cnf::{Cnf, CnfConfig, FieldKind, Noise, Trace};
    let n = t3.x.len();
    if n == 0 || t3.x.iter().chain(&t3.noise).any(|r| r.len() != 2) || t3.noise.len() != n {
        return Err("t3: x and noise must be batch × 2".into());
    }
    let (x, noise) = (&t3.x[rows.clone()], &t3.noise[rows]);
    let widths: Vec<usize> = t3.layers.iter().map(|l| l.weight.len()).collect();
    let mut cfg = CnfConfig::ffjord(2, x.len());
    cfg.field = FieldKind::Mlp(widths[..widths.len().saturating_sub(1)].to_vec());
    cfg.activation = Activation::Tanh;
    cfg.trace = Trace::Hutchinson(Noise::Gaussian);
    cfg.end_time = t3.t1;
    cfg.train_end_time = false;
    cfg.solver = AdjointOptions::new(Options::new(Method::Dopri5).rtol(t3.rtol).atol(t3.rtol));
    cfg.strategy = Strategy::Backsolve;
    let mut flow = Cnf::new(cfg, &mut Rng::new(0)).map_err(|e| e.to_string())?;
    // PyTorch stores out × in; the field's layers hold W as in × out, column-major.
    let mut params = Vec::with_capacity(flow.num_params());
    for layer in &t3.layers {
        let (out, inp) = (layer.weight.len(), layer.weight.first().map_or(0, Vec::len));
        for o in 0..out {
            params.extend((0..inp).map(|i| layer.weight[o][i]));
        }
        params.extend_from_slice(&layer.bias);
    }
    flow.set_params(&params).map_err(|e| e.to_string())?;
    let col =
        |m: &[Vec<f64>]| -> Vec<f64> { (0..2).flat_map(|j| m.iter().map(move |r| r[j])).collect() };
    flow.set_noise(&col(noise)).map_err(|e| e.to_string())?;
    Ok((flow, col(x)))
}

/// T3: one FFJORD training step (forward solve with the Hutchinson trace, backsolve
/// adjoint, Adam update) on `chunks` equal batch chunks, each its own flow and solve, on
/// rayon's pool (1 chunk: the whole batch, the side-by-side task), the chunks' mean
/// losses and gradients averaged. Timed from the same parameters and optimiser state each
/// time so every repeat does the same work.
fn time_t3(t3: &T3, chunks: usize) -> Result<(), String> {
    use autodiff::checkpoint::OptimizerState;
    use autodiff::optim::{Adam, AdamConfig, Optimizer};
    use rayon::prelude::*;
    let n = t3.x.len();
    if chunks == 0 || !n.is_multiple_of(chunks) {
        return Err(format!("{chunks} chunks do not divide the batch of {n}"));
    }
    let rows = n / chunks;
    let mut flows = (0..chunks)
        .map(|c| t3_flow(t3, c * rows..(c + 1) * rows))
        .collect::<Result<Vec<_>, _>>()?;
    let params = flows[0].0.params();
    let adam = OptimizerState::Adam(Adam::new(AdamConfig { lr: t3.lr, ..AdamConfig::default() }));
    let mut step = || -> Result<(f64, (usize, usize)), String> {
        let parts = flows
            .par_iter_mut()
            .map(|(flow, x)| flow.loss_grad(x).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let k = parts.len() as f64;
        let mut grad = vec![0.0; params.len()];
        for g in &parts {
            grad.iter_mut().zip(&g.params).for_each(|(a, b)| *a += b / k);
        }
        let loss = parts.iter().map(|g| g.loss).sum::<f64>() / k;
        let nfe = parts.iter().fold((0, 0), |m, g| (m.0.max(g.nfe.0), m.1.max(g.nfe.1)));
        let (mut p, mut opt) = (params.clone(), adam.clone());
        opt.step(&mut p, &grad).map_err(|e| e.to_string())?;
        std::hint::black_box(&p);
        Ok((loss, nfe))
    };
    let (loss, (f, bw)) = step()?;
    let ms = median_ms(|| {
        let _ = std::hint::black_box(step());
    });
    let (task, extra) = if chunks == 1 {
        ("t3_ffjord_step", String::new())
    } else {
        (
            "t3_ffjord_step_chunks",
            format!(", \"chunks\": {chunks}, \"threads\": {}", rayon::current_num_threads()),
        )
    };
    line(task, ms, format!("{f}+{bw}"), 0, loss, &extra);
    Ok(())
}

/// T2 split into `chunks` equal batch chunks, each its own solve (forward: one field per chunk;
/// gradient: `adjoint::gradient_chunks`, one field per chunk), on rayon's pool: run under
/// `RAYON_NUM_THREADS=1` and `=2` for the two-core scaling of issue #16. Each chunk takes
/// its own adaptive steps, so NFE are per chunk (the largest shown).
fn scaling(inputs: &Inputs, chunks: usize) -> Result<(), String> {
    let n = inputs.z0.len();
    if chunks == 0 || !n.is_multiple_of(chunks) {
        return Err(format!("{chunks} chunks do not divide the batch of {n}"));
    }
    let rows = n / chunks;
    let z0s: Vec<Vec<f64>> = inputs
        .z0
        .chunks(rows)
        .map(|c| (0..2).flat_map(|j| c.iter().map(move |r| r[j])).collect())
        .collect();
    let ts = [0.0, inputs.t1];
    let tol = inputs.rtol;
    let opts = AdjointOptions::new(Options::new(Method::Dopri5).rtol(tol).atol(tol));
    // A field holds its executors in a RefCell (not Sync): one per chunk, each chunk's
    // forward solve a rayon task.
    let mut fields: Vec<AutodiffField> =
        (0..chunks).map(|_| field_for(inputs, rows)).collect::<Result<_, _>>()?;
    let fwd = &opts.forward;
    let mut forward = || -> Result<Vec<ode_solvers::Solution<f64>>, String> {
        use rayon::prelude::*;
        fields
            .par_iter_mut()
            .zip(&z0s)
            .map(|(f, z0)| odeint(&*f, z0, &ts, fwd).map_err(|e| e.to_string()))
            .collect()
    };
    let sols = forward()?;
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    let build = median_ms(|| {
        let _ = std::hint::black_box(field_for(inputs, rows));
    });
    let loss_of = |zs: &[Vec<f64>]| zs[1].iter().map(|x| x * x).sum::<f64>();
    let loss: f64 = sols.iter().map(|s| loss_of(&s.ys)).sum();
    let nfe = sols.iter().map(|s| s.stats.nfe).max().unwrap_or(0);
    let steps = sols.iter().map(|s| s.stats.accepted).max().unwrap_or(0);
    let extra = format!(", \"chunks\": {chunks}, \"threads\": \"{threads}\"");
    let ms = median_ms(|| {
        let _ = std::hint::black_box(forward());
    });
    line("t2_forward_chunks", ms, nfe.to_string(), steps, loss, &extra);
    let make = |_c: usize| {
        field_for(inputs, rows)
            .map_err(|detail| adjoint::Error::InvalidArgument { what: "field", detail })
    };
    let chunk_loss = |_c: usize, zs: &[Vec<f64>]| {
        (loss_of(zs), vec![vec![0.0; zs[0].len()], zs[1].iter().map(|x| 2.0 * x).collect()])
    };
    let run = || adjoint::gradient_chunks(make, &z0s, &ts, chunk_loss, Strategy::Backsolve, &opts);
    let g = run().map_err(|e| e.to_string())?;
    let ms = median_ms(|| {
        let _ = std::hint::black_box(run());
    });
    let nfe = format!("{}+{}", g.nfe_forward, g.nfe_backward);
    let extra = format!("{extra}, \"field_build_ms\": {:.4}", build.1);
    line("t2_backsolve_chunks", ms, nfe, steps, g.loss, &extra);
    if let Some(t3) = &inputs.t3 {
        time_t3(t3, chunks)?;
    }
    Ok(())
}

/// The T2 and T3 fields' products and `tanh` at batch 512 as single-node replays,
/// `f64`, one thread: one JSON line per case with the best microseconds per replay over
/// 20 rounds of 200, for comparing two builds run alternately (`docs/BENCHMARKS.md`).
/// `nn` is `A·B`, `nt` `A·Bᵀ` (an input gradient), `tn` `Aᵀ·B` (a weight gradient).
fn kernels(filter: &str) -> Result<(), String> {
    type Case = (String, Graph, autodiff::Executor, f64);
    let mut rng = Rng::new(7);
    let mut cases: Vec<Case> = Vec::new();
    let products: [(&str, (usize, usize), (usize, usize), bool, bool); 9] = [
        ("nn_512x64.64x64", (512, 64), (64, 64), false, false),
        ("nt_512x64.64x64", (512, 64), (64, 64), false, true),
        ("tn_512x64.512x64", (512, 64), (512, 64), true, false),
        ("nn_512x64.64x2", (512, 64), (64, 2), false, false),
        ("nt_512x2.64x2", (512, 2), (64, 2), false, true),
        ("tn_512x64.512x2", (512, 64), (512, 2), true, false),
        ("nn_512x3.3x64", (512, 3), (3, 64), false, false),
        ("nt_512x64.3x64", (512, 64), (3, 64), false, true),
        ("tn_512x3.512x64", (512, 3), (512, 64), true, false),
    ];
    let err = |e: autodiff::Error| e.to_string();
    for (name, sa, sb, ta, tb) in products {
        let mut g = Graph::new();
        let (a, b) = (g.input(sa.0, sa.1), g.input(sb.0, sb.1));
        let y = g.matmul_t(a, b, ta, tb).map_err(err)?;
        let (r, c) = g.shape(y).map_err(err)?;
        let k = if ta { sa.0 } else { sa.1 };
        let mut exe = autodiff::Executor::new(&g, &[y]).map_err(err)?;
        exe.set_input(&g, a, rng.matrix(sa.0, sa.1, Rng::normal).map_err(err)?.as_slice())
            .map_err(err)?;
        exe.set_input(&g, b, rng.matrix(sb.0, sb.1, Rng::normal).map_err(err)?.as_slice())
            .map_err(err)?;
        cases.push((format!("matmul_{name}"), g, exe, (2 * r * c * k) as f64));
    }
    let mut g = Graph::new();
    let x = g.input(512, 64);
    let y = g.tanh(x).map_err(err)?;
    let mut exe = autodiff::Executor::new(&g, &[y]).map_err(err)?;
    exe.set_input(&g, x, rng.matrix(512, 64, Rng::normal).map_err(err)?.as_slice()).map_err(err)?;
    cases.push(("tanh_512x64".into(), g, exe, 0.0));
    cases.retain(|c| selected(&c.0, filter));
    // `tanh` in f32 too, the precision its kernels' f32 forms serve.
    let mut g32 = Graph::new();
    let x32 = g32.input(512, 64);
    let y32 = g32.tanh(x32).map_err(err)?;
    let mut exe32 = autodiff::Executor::<f32>::build(&g32, &[y32]).map_err(err)?;
    let xs32: Vec<f32> =
        rng.matrix(512, 64, Rng::normal).map_err(err)?.iter().map(|&v| v as f32).collect();
    exe32.set_input(&g32, x32, &xs32).map_err(err)?;
    let f32_case = selected("tanh_512x64_f32", filter);
    let mut best = vec![f64::INFINITY; cases.len()];
    let mut best32 = f64::INFINITY;
    for _ in 0..20 {
        for ((_, g, exe, _), best) in cases.iter_mut().zip(&mut best) {
            let t = Instant::now();
            for _ in 0..200 {
                exe.replay(g).map_err(err)?;
            }
            *best = best.min(t.elapsed().as_secs_f64() / 200.0 * 1e6);
        }
        if f32_case {
            let t = Instant::now();
            for _ in 0..200 {
                exe32.replay(&g32).map_err(err)?;
            }
            best32 = best32.min(t.elapsed().as_secs_f64() / 200.0 * 1e6);
        }
    }
    for ((name, _, _, flops), us) in cases.iter().zip(&best) {
        println!(
            "{{\"side\": \"ours\", \"task\": \"{name}\", \"us\": {us:.2}, \"gflops\": {:.1}}}",
            flops / us / 1e3
        );
    }
    if f32_case {
        println!(
            "{{\"side\": \"ours\", \"task\": \"tanh_512x64_f32\", \"us\": {best32:.2}, \"gflops\": 0.0}}"
        );
    }
    Ok(())
}

/// This core's ceilings, for the floors in `docs/BENCHMARKS.md`: the `f64` fused
/// multiply-add rate (12 independent chains on the widest vector unit, so latency never
/// binds), and the rate at which one core reads a working set of 12 vectors of 2048 `f64`
/// (192 KiB: the 2048-dim Van der Pol's, in L2 but not L1), summed with 8 independent
/// vector accumulators (reads only: it bounds the state vectors a solver step can read from
/// L2, not its writes).
fn floors() -> Result<(), String> {
    let (isa, peak) = fma_peak();
    println!("{{\"side\": \"ours\", \"task\": \"fma_peak_f64_{isa}\", \"gflops\": {peak:.1}}}");
    let n = 2048;
    let vs: Vec<Vec<f64>> =
        (0..12).map(|v| (0..n).map(|i| ((v * n + i) as f64 * 0.37).sin()).collect()).collect();
    let passes = 4000;
    let mut best = f64::INFINITY;
    for _ in 0..10 {
        let t = Instant::now();
        let mut s = 0.0;
        for p in 0..passes {
            s += read_pass(std::hint::black_box(&vs[p % 12]));
        }
        std::hint::black_box(s);
        best = best.min(t.elapsed().as_secs_f64());
    }
    let bytes = (passes * n * 8) as f64;
    println!(
        "{{\"side\": \"ours\", \"task\": \"read_192kib_working_set\", \"gb_per_s\": {:.1}}}",
        bytes / best / 1e9
    );
    Ok(())
}

/// `Σ x_i` in 64 lanes (8 vectors of 8), compiled for AVX-512 where the CPU has it.
fn read_pass(x: &[f64]) -> f64 {
    #[inline(always)]
    fn body(x: &[f64]) -> f64 {
        let mut acc = [0.0; 64];
        let mut chunks = x.chunks_exact(64);
        for c in &mut chunks {
            for (a, &v) in acc.iter_mut().zip(c) {
                *a += v;
            }
        }
        acc.iter().sum::<f64>() + chunks.remainder().iter().sum::<f64>()
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    fn wide(x: &[f64]) -> f64 {
        body(x)
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX-512 F (checked just above).
        return unsafe { wide(x) };
    }
    body(x)
}

/// The `f64` FMA rate in GFLOP/s of 12 independent accumulators on the widest unit.
fn fma_peak() -> (&'static str, f64) {
    const ITERS: usize = 2_000_000;
    let time = |f: &dyn Fn() -> f64, lanes: usize| {
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t = Instant::now();
            std::hint::black_box(f());
            best = best.min(t.elapsed().as_secs_f64());
        }
        (ITERS * 12 * lanes * 2) as f64 / best / 1e9
    };
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        #[target_feature(enable = "avx512f")]
        fn run512() -> f64 {
            let mut acc = [_mm512_set1_pd(0.0); 12];
            let a = _mm512_set1_pd(std::hint::black_box(0.999_999));
            let b = _mm512_set1_pd(std::hint::black_box(1e-9));
            for _ in 0..std::hint::black_box(ITERS) {
                for x in &mut acc {
                    *x = _mm512_fmadd_pd(*x, a, b);
                }
            }
            acc.iter().map(|&x| _mm512_reduce_add_pd(x)).sum()
        }
        #[target_feature(enable = "avx2,fma")]
        fn run256() -> f64 {
            let mut acc = [_mm256_set1_pd(0.0); 12];
            let a = _mm256_set1_pd(std::hint::black_box(0.999_999));
            let b = _mm256_set1_pd(std::hint::black_box(1e-9));
            for _ in 0..std::hint::black_box(ITERS) {
                for x in &mut acc {
                    *x = _mm256_fmadd_pd(*x, a, b);
                }
            }
            let mut out = [0.0; 4];
            let s = acc.iter().fold(_mm256_set1_pd(0.0), |s, &x| _mm256_add_pd(s, x));
            #[allow(unsafe_code)]
            // SAFETY: `out` holds the 4 lanes stored.
            unsafe {
                _mm256_storeu_pd(out.as_mut_ptr(), s)
            };
            out.iter().sum()
        }
        if is_x86_feature_detected!("avx512f") {
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX-512 F (checked just above).
            return ("avx512", time(&|| unsafe { run512() }, 8));
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return ("avx2", time(&|| unsafe { run256() }, 4));
        }
    }
    ("scalar", f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["inputs", path] => serde_json::to_string(&make_inputs())
            .map_err(|e| e.to_string())
            .and_then(|s| std::fs::write(path, s).map_err(|e| format!("{path}: {e}"))),
        ["time", path] => std::fs::read_to_string(path)
            .map_err(|e| format!("{path}: {e}"))
            .and_then(|s| serde_json::from_str::<Inputs>(&s).map_err(|e| format!("{path}: {e}")))
            .and_then(|inputs| time(&inputs, "")),
        ["time", path, filter] => std::fs::read_to_string(path)
            .map_err(|e| format!("{path}: {e}"))
            .and_then(|s| serde_json::from_str::<Inputs>(&s).map_err(|e| format!("{path}: {e}")))
            .and_then(|inputs| time(&inputs, filter)),
        ["scaling", path, chunks] => std::fs::read_to_string(path)
            .map_err(|e| format!("{path}: {e}"))
            .and_then(|s| serde_json::from_str::<Inputs>(&s).map_err(|e| format!("{path}: {e}")))
            .and_then(|inputs| {
                let c = chunks.parse::<usize>().map_err(|e| format!("chunks {chunks}: {e}"))?;
                scaling(&inputs, c)
            }),
        ["kernels"] => kernels(""),
        ["kernels", filter] => kernels(filter),
        ["floors"] => floors(),
        _ => Err("usage: peers inputs FILE.json | peers time FILE.json [TASK_FILTER] | \
                  peers scaling FILE.json CHUNKS | peers kernels [FILTER] | peers floors"
            .into()),
    };
    if let Err(e) = result {
        eprintln!("peers: {e}");
        std::process::exit(1);
    }
}
