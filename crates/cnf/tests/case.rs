//! The CNF case runner (`cargo xtask cnf --case`): the loss is its parts, its gradients
//! match central differences of the case itself, and malformed files are errors.

#[allow(dead_code)]
#[path = "../examples/cnf-case.rs"]
mod case;

use serde_json::{json, Value};

fn base() -> Value {
    json!({
        "layers": [
            {"weight": [[0.5, -0.3, 0.2], [0.1, 0.8, -0.4], [-0.6, 0.2, 0.3], [0.3, 0.1, 0.5]], "bias": [0.1, -0.2, 0.05, 0.0]},
            {"weight": [[0.7, -0.4, 0.3, 0.2], [-0.2, 0.5, 0.9, -0.1]], "bias": [0.0, 0.1]}
        ],
        "activation": "tanh",
        "x": [[1.0, 0.5], [-0.3, 0.8], [0.2, -1.1]],
        "t1": 0.9,
        "method": "dopri5",
        "rtol": 1e-11,
        "atol": 1e-11,
        "trace": "exact",
        "noise": [[0.3, -1.2], [0.7, 1.1], [-0.4, 0.9]],
        "lambda_kinetic": 0.3,
        "lambda_jacobian": 0.2,
        "gradient": "backsolve"
    })
}

fn run(c: &Value) -> Value {
    serde_json::from_str(&case::run(&c.to_string()).unwrap()).unwrap()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

#[test]
fn the_loss_is_its_parts_and_its_gradients_match_central_differences() {
    for (trace, gradient) in
        [("exact", "backsolve"), ("hutchinson", "checkpointed"), ("exact", "direct")]
    {
        let mut c = base();
        c["trace"] = json!(trace);
        c["gradient"] = json!(gradient);
        let out = run(&c);
        let mean = |k: &str| out[k].as_array().unwrap().iter().map(num).sum::<f64>() / 3.0;
        let parts = -mean("logp") + 0.3 * mean("kinetic") + 0.2 * mean("jacobian");
        assert!((num(&out["loss"]) - parts).abs() < 1e-10, "{trace}/{gradient}");
        let h = 1e-6;
        let loss_with = |path: &[&str], idx: (usize, usize), delta: f64| {
            let mut c2 = c.clone();
            let mut v = &mut c2;
            for p in path {
                v = if let Ok(i) = p.parse::<usize>() { &mut v[i] } else { &mut v[*p] };
            }
            let x = num(&v[idx.0][idx.1]);
            v[idx.0][idx.1] = json!(x + delta);
            num(&run(&c2)["loss"])
        };
        // A first-layer weight and an input entry.
        let fd_w = (loss_with(&["layers", "0", "weight"], (1, 2), h)
            - loss_with(&["layers", "0", "weight"], (1, 2), -h))
            / (2.0 * h);
        let gw = num(&out["grad_layers"][0]["weight"][1][2]);
        assert!(
            (fd_w - gw).abs() < 1e-6 * gw.abs().max(1.0),
            "{trace}/{gradient} weight: {fd_w} vs {gw}"
        );
        let fd_x = (loss_with(&["x"], (2, 0), h) - loss_with(&["x"], (2, 0), -h)) / (2.0 * h);
        let gx = num(&out["grad_x"][2][0]);
        assert!(
            (fd_x - gx).abs() < 1e-6 * gx.abs().max(1.0),
            "{trace}/{gradient} x: {fd_x} vs {gx}"
        );
        assert!(
            out["nfe_forward"].as_u64().unwrap() > 0 && out["nfe_backward"].as_u64().unwrap() > 0
        );
    }
}

#[test]
fn malformed_cases_say_what_is_wrong() {
    let err = |f: &dyn Fn(&mut Value)| {
        let mut c = base();
        f(&mut c);
        case::run(&c.to_string()).unwrap_err()
    };
    assert!(case::run("{").is_err());
    assert!(err(&|c| c["layers"][0]["weight"][1] = json!([0.1, 0.8]))
        .contains("layers[0].weight: row 1"));
    assert!(err(&|c| c["layers"][1]["bias"] = json!([0.0])).contains("layers[1].bias"));
    assert!(err(&|c| c["layers"][0]["weight"] = json!([[0.5, -0.3]])).contains("inputs"));
    assert!(err(&|c| c["x"][1] = json!([0.1])).contains("x:"));
    assert!(err(&|c| c["noise"] = json!([[0.1, 0.2]])).contains("noise"));
    assert!(err(&|c| {
        c["trace"] = json!("hutchinson");
        c["noise"] = Value::Null;
    })
    .contains("noise"));
    assert!(err(&|c| c["trace"] = json!("approximate")).contains("trace"));
    assert!(err(&|c| c["method"] = json!("rk45")).contains("valid names"));
    assert!(err(&|c| c["gradient"] = json!("adjoint")).contains("backsolve"));
    assert!(err(&|c| c["t1"] = json!(-1.0)).contains("end time"));
    assert!(err(&|c| c["extra"] = json!(1)).contains("unknown field"));
    assert!(err(&|c| c["activation"] = json!("gelu")).contains("activation"));
}
