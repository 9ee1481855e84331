//! The case-file runner of `cargo xtask gradcheck --case`: strategies agree, the loss and
//! gradients match finite differences of the case itself, and bad files are errors.

#[path = "../examples/case.rs"]
mod case;

use serde_json::Value;

const CASE: &str = include_str!("data/mlp_case.json");

fn run(json: &str) -> Value {
    serde_json::from_str(&case::run(json).unwrap()).unwrap()
}

fn numbers(v: &Value) -> Vec<f64> {
    match v {
        Value::Number(n) => vec![n.as_f64().unwrap()],
        Value::Array(a) => a.iter().flat_map(numbers).collect(),
        Value::Object(o) => o.values().flat_map(numbers).collect(),
        _ => vec![],
    }
}

#[test]
fn strategies_agree_and_match_finite_differences() {
    let base: Value = serde_json::from_str(CASE).unwrap();
    let outs: Vec<Value> = ["backsolve", "checkpointed", "direct"]
        .iter()
        .map(|s| {
            let mut c = base.clone();
            c["gradient"] = Value::from(*s);
            run(&c.to_string())
        })
        .collect();
    let reference = numbers(&outs[0]["grad_layers"]);
    for o in &outs[1..] {
        for (a, b) in numbers(&o["grad_layers"]).iter().zip(&reference) {
            assert!((a - b).abs() < 1e-7, "{a} vs {b}");
        }
    }
    // d loss / d W[1][0][2] by central differences of the case itself.
    let h = 1e-6;
    let perturbed = |delta: f64| {
        let mut c = base.clone();
        let w = c["layers"][1]["weight"][0][2].as_f64().unwrap();
        c["layers"][1]["weight"][0][2] = Value::from(w + delta);
        run(&c.to_string())["loss"].as_f64().unwrap()
    };
    let fd = (perturbed(h) - perturbed(-h)) / (2.0 * h);
    let got = outs[0]["grad_layers"][1]["weight"][0][2].as_f64().unwrap();
    assert!((got - fd).abs() < 1e-7 * fd.abs().max(1.0), "{got} vs {fd}");
    assert!(outs[0]["nfe_forward"].as_u64().unwrap() > 0);
    assert_eq!(outs[0]["grad_z0"].as_array().unwrap().len(), 3);
}

#[test]
fn malformed_cases_are_errors() {
    assert!(case::run("{").is_err());
    let mut c: Value = serde_json::from_str(CASE).unwrap();
    c["method"] = Value::from("rk45-typo");
    assert!(case::run(&c.to_string()).is_err());
    let mut c: Value = serde_json::from_str(CASE).unwrap();
    c["layers"][0]["bias"] = Value::from(vec![1.0]);
    assert!(case::run(&c.to_string()).unwrap_err().contains("layers[0].bias"));
    // Ragged weight rows: a longer and a shorter row are both refused.
    for extra in [true, false] {
        let mut c: Value = serde_json::from_str(CASE).unwrap();
        let row = c["layers"][0]["weight"][1].as_array_mut().unwrap();
        if extra {
            row.push(Value::from(0.5));
        } else {
            row.pop();
        }
        let e = case::run(&c.to_string()).unwrap_err();
        assert!(e.contains("layers[0].weight: row 1"), "{e}");
    }
    let mut c: Value = serde_json::from_str(CASE).unwrap();
    c["gradient"] = Value::from("adjoint?");
    assert!(case::run(&c.to_string()).unwrap_err().contains("backsolve, checkpointed, direct"));
    let mut c: Value = serde_json::from_str(CASE).unwrap();
    c["method"] = Value::from("rk45");
    assert!(case::run(&c.to_string()).unwrap_err().contains("valid names"));
}
