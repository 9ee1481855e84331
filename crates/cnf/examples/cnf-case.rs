//! `cargo xtask cnf --case FILE.json`: a CNF whose field is an MLP on `[z, t]` given in
//! PyTorch's `nn.Linear` layout, with the Hutchinson probe given, for cross-checking other
//! frameworks (the same spirit as `gradcheck --case`). The format is in `docs/CASES.md`.

use cnf::adjoint::{AdjointOptions, Strategy};
use cnf::autodiff::layers::Activation;
use cnf::autodiff::Rng;
use cnf::ode_solvers::{Method, Options};
use cnf::{Cnf, CnfConfig, FieldKind, Noise, Trace};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    weight: Vec<Vec<f64>>,
    bias: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    layers: Vec<Layer>,
    activation: String,
    x: Vec<Vec<f64>>,
    t1: f64,
    method: String,
    rtol: f64,
    atol: f64,
    #[serde(default)]
    step_size: Option<f64>,
    trace: String,
    #[serde(default)]
    noise: Option<Vec<Vec<f64>>>,
    #[serde(default)]
    lambda_kinetic: f64,
    #[serde(default)]
    lambda_jacobian: f64,
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
    logp: Vec<f64>,
    kinetic: Vec<f64>,
    jacobian: Vec<f64>,
    grad_layers: Vec<LayerGrad>,
    grad_x: Vec<Vec<f64>>,
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
        other => {
            return Err(format!(
            "activation: unknown '{other}' (tanh, relu, softplus, sigmoid, swish, elu, identity)"
        ))
        }
    })
}

/// Runs a case and returns the output JSON.
pub fn run(json: &str) -> Result<String, String> {
    let case: Case = serde_json::from_str(json).map_err(|e| format!("case file: {e}"))?;
    let (b, d) = (case.x.len(), case.x.first().map_or(0, Vec::len));
    if b == 0 || d == 0 || case.x.iter().any(|r| r.len() != d) {
        return Err("x: must be a non-empty batch × dim array with rows of equal length".into());
    }
    // Widths: d + 1 inputs ([z, t]), the hidden layers, d outputs.
    let mut widths = vec![d + 1];
    for (l, layer) in case.layers.iter().enumerate() {
        let inp = layer.weight.first().map_or(0, Vec::len);
        if inp != *widths.last().unwrap_or(&0) {
            return Err(format!(
                "layers[{l}].weight: {inp} inputs, the layer before gives {}",
                widths[widths.len() - 1]
            ));
        }
        if let Some(r) = layer.weight.iter().position(|row| row.len() != inp) {
            return Err(format!(
                "layers[{l}].weight: row {r} has {} entries, row 0 has {inp}",
                layer.weight[r].len()
            ));
        }
        if layer.bias.len() != layer.weight.len() {
            return Err(format!(
                "layers[{l}].bias: {} entries for {} outputs",
                layer.bias.len(),
                layer.weight.len()
            ));
        }
        widths.push(layer.weight.len());
    }
    if widths.len() < 2 || widths[widths.len() - 1] != d {
        return Err(format!("layers: the last layer must give {d} outputs (the data's dimension)"));
    }
    let trace = match case.trace.as_str() {
        "exact" => Trace::Exact,
        "hutchinson" => Trace::Hutchinson(Noise::Gaussian),
        other => return Err(format!("trace: unknown '{other}' (exact or hutchinson)")),
    };
    let method: Method = case.method.parse().map_err(|e| format!("method: {e}"))?;
    let strategy: Strategy = case.gradient.parse().map_err(|e| format!("gradient: {e}"))?;
    let mut opts = Options::new(method).rtol(case.rtol).atol(case.atol).max_steps(1_000_000);
    opts.step_size = case.step_size;
    let mut cfg = CnfConfig::ffjord(d, b);
    cfg.field = FieldKind::Mlp(widths[1..widths.len() - 1].to_vec());
    cfg.activation = activation(&case.activation)?;
    cfg.trace = trace;
    cfg.lambda_kinetic = case.lambda_kinetic;
    cfg.lambda_jacobian = case.lambda_jacobian;
    cfg.end_time = case.t1;
    cfg.solver = AdjointOptions::new(opts);
    cfg.strategy = strategy;
    let mut flow = Cnf::new(cfg, &mut Rng::new(0)).map_err(|e| e.to_string())?;
    // PyTorch stores out × in; our layers compute x W with W in × out (column-major).
    let mut params = Vec::with_capacity(flow.num_params());
    for layer in &case.layers {
        let (out, inp) = (layer.weight.len(), layer.weight[0].len());
        for o in 0..out {
            for i in 0..inp {
                params.push(layer.weight[o][i]);
            }
        }
        params.extend_from_slice(&layer.bias);
    }
    flow.set_params(&params).map_err(|e| e.to_string())?;
    let noise = match (&case.noise, trace, case.lambda_jacobian) {
        (Some(n), _, _) => {
            if n.len() != b || n.iter().any(|r| r.len() != d) {
                return Err(format!("noise: must have x's shape, {b} × {d}"));
            }
            (0..d).flat_map(|j| n.iter().map(move |r| r[j])).collect()
        }
        (None, Trace::Hutchinson(_), _) => {
            return Err("noise: the hutchinson trace needs the probe".into())
        }
        (None, _, l) if l != 0.0 => return Err("noise: the Jacobian term needs the probe".into()),
        (None, _, _) => vec![0.0; b * d],
    };
    flow.set_noise(&noise).map_err(|e| e.to_string())?;
    let x: Vec<f64> = (0..d).flat_map(|j| case.x.iter().map(move |r| r[j])).collect();
    let dens = flow.densities(&x, &flow.config.solver.clone()).map_err(|e| e.to_string())?;
    let g = flow.loss_grad(&x).map_err(|e| e.to_string())?;
    let mut at = 0;
    let grad_layers = case
        .layers
        .iter()
        .map(|layer| {
            let (out, inp) = (layer.weight.len(), layer.weight[0].len());
            let w = &g.params[at..at + inp * out];
            at += inp * out;
            let bias = g.params[at..at + out].to_vec();
            at += out;
            LayerGrad {
                weight: (0..out).map(|o| (0..inp).map(|i| w[i + o * inp]).collect()).collect(),
                bias,
            }
        })
        .collect();
    let output = Output {
        loss: g.loss,
        logp: dens.log_p,
        kinetic: dens.kinetic,
        jacobian: dens.jacobian,
        grad_layers,
        grad_x: (0..b).map(|r| (0..d).map(|j| g.x[r + j * b]).collect()).collect(),
        nfe_forward: g.nfe.0,
        nfe_backward: g.nfe.1,
    };
    serde_json::to_string_pretty(&output).map_err(|e| e.to_string())
}

/// A CNF case file in, JSON out (the format is in docs/CASES.md).
#[allow(dead_code)]
#[derive(clap::Parser)]
#[command(name = "cnf-case")]
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
