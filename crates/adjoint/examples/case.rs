//! `cargo xtask gradcheck --case FILE.json`: gradients of an MLP vector field given in
//! PyTorch's `nn.Linear` layout, for cross-checking other frameworks (torchdiffeq, diffrax).
//! The format is documented in `docs/CASES.md`.

use adjoint::{gradient, AdjointOptions, AutodiffField, Strategy};
use autodiff::layers::{Activation, Linear};
use autodiff::{Graph, Mat};
use ode_solvers::{Method, Options};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Layer {
    weight: Vec<Vec<f64>>,
    bias: Vec<f64>,
}

#[derive(Deserialize)]
struct Case {
    layers: Vec<Layer>,
    activation: String,
    z0: Vec<Vec<f64>>,
    ts: Vec<f64>,
    method: String,
    rtol: f64,
    atol: f64,
    #[serde(default)]
    step_size: Option<f64>,
    loss: String,
    gradient: String,
}

#[derive(Serialize)]
struct LayerGrad {
    weight: Vec<Vec<f64>>,
    bias: Vec<f64>,
}

#[derive(Serialize)]
struct Output {
    loss: f64,
    grad_z0: Vec<Vec<f64>>,
    grad_layers: Vec<LayerGrad>,
    nfe_forward: usize,
    nfe_backward: usize,
}

fn activation(name: &str) -> Result<Activation, String> {
    Ok(match name {
        "tanh" => Activation::Tanh,
        "relu" => Activation::Relu,
        "softplus" => Activation::Softplus,
        "sigmoid" => Activation::Sigmoid,
        "swish" | "silu" => Activation::Swish,
        "elu" => Activation::Elu(1.0),
        "identity" | "none" => Activation::Identity,
        other => return Err(format!("unknown activation '{other}'")),
    })
}

/// Runs a case and returns the output JSON.
pub fn run(json: &str) -> Result<String, String> {
    let case: Case = serde_json::from_str(json).map_err(|e| format!("case file: {e}"))?;
    let strategy: Strategy =
        case.gradient.parse().map_err(|e: adjoint::Error| format!("gradient: {e}"))?;
    if case.loss != "mean_square_final" {
        return Err(format!("unknown loss '{}'", case.loss));
    }
    let (batch, dim) = (case.z0.len(), case.z0.first().map_or(0, Vec::len));
    if batch == 0 || dim == 0 || case.z0.iter().any(|r| r.len() != dim) {
        return Err("z0 must be a non-empty batch × dim array".into());
    }
    if case.layers.is_empty() {
        return Err("layers: at least one layer is needed".into());
    }
    for (l, layer) in case.layers.iter().enumerate() {
        let inp = layer.weight.first().map_or(0, Vec::len);
        if inp == 0 {
            return Err(format!("layers[{l}].weight: empty"));
        }
        if let Some(r) = layer.weight.iter().position(|row| row.len() != inp) {
            return Err(format!(
                "layers[{l}].weight: row {r} has {} entries, row 0 has {inp} (rows must be equal)",
                layer.weight[r].len()
            ));
        }
        if layer.bias.len() != layer.weight.len() {
            return Err(format!(
                "layers[{l}].bias: {} entries for {} output rows",
                layer.bias.len(),
                layer.weight.len()
            ));
        }
    }
    let act = activation(&case.activation)?;
    let mut g = Graph::new();
    let z = g.input(batch, dim);
    let mut h = z;
    for (l, layer) in case.layers.iter().enumerate() {
        // PyTorch stores out × in; our layers compute x W with W in × out.
        let (out, inp) = (layer.weight.len(), layer.weight.first().map_or(0, Vec::len));
        let w = Mat::from_fn(inp, out, |i, o| layer.weight[o][i]);
        let b = Mat::from_row_slice(1, layer.bias.len(), &layer.bias);
        h = Linear::from_values(&mut g, &format!("layer{l}"), &w, &b)
            .and_then(|lin| lin.forward(&mut g, h))
            .map_err(|e| format!("layer {l}: {e}"))?;
        if l + 1 < case.layers.len() {
            h = act.apply(&mut g, h).map_err(|e| e.to_string())?;
        }
    }
    let field = AutodiffField::new(g, h).map_err(|e| e.to_string())?;
    let z0: Vec<f64> = (0..dim).flat_map(|j| case.z0.iter().map(move |r| r[j])).collect();
    let mut opts = Options::new(case.method.parse::<Method>().map_err(|e| format!("method: {e}"))?)
        .rtol(case.rtol)
        .atol(case.atol)
        .max_steps(1_000_000);
    opts.step_size = case.step_size;
    let n = (batch * dim) as f64;
    let loss = |zs: &[Vec<f64>]| {
        let last = zs.len() - 1;
        let value = zs[last].iter().map(|x| x * x).sum::<f64>() / n;
        let mut grads: Vec<Vec<f64>> = zs.iter().map(|z| vec![0.0; z.len()]).collect();
        grads[last] = zs[last].iter().map(|x| 2.0 * x / n).collect();
        (value, grads)
    };
    let grads = gradient(&field, &z0, &case.ts, &loss, strategy, &AdjointOptions::new(opts))
        .map_err(|e| e.to_string())?;
    let blocks = field.graph().param_blocks();
    let grad_layers = blocks
        .chunks(2)
        .map(|wb| {
            let (w, b) = (&wb[0], &wb[1]);
            let (inp, out) = w.shape;
            let gw = &grads.params[w.offset..w.offset + inp * out];
            LayerGrad {
                weight: (0..out).map(|o| (0..inp).map(|i| gw[i + o * inp]).collect()).collect(),
                bias: grads.params[b.offset..b.offset + b.shape.1].to_vec(),
            }
        })
        .collect();
    let output = Output {
        loss: grads.loss,
        grad_z0: (0..batch).map(|r| (0..dim).map(|j| grads.z0[r + j * batch]).collect()).collect(),
        grad_layers,
        nfe_forward: grads.nfe_forward,
        nfe_backward: grads.nfe_backward,
    };
    serde_json::to_string_pretty(&output).map_err(|e| e.to_string())
}

#[allow(dead_code)]
/// Gradients of an MLP vector field given in PyTorch's nn.Linear layout, as JSON (the
/// format is in docs/CASES.md).
#[derive(clap::Parser)]
#[command(name = "case")]
struct Args {
    /// The case file.
    file: String,
}

#[allow(dead_code)]
fn main() {
    let path = <Args as clap::Parser>::parse().file;
    let result = std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|json| run(&json))
        .map_err(|e| format!("{path}: {e} (the case format is in docs/CASES.md)"));
    match result {
        Ok(out) => println!("{out}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
