//! `cargo xtask gradcheck` (adjoint part): every gradient strategy against central finite
//! differences in f64 (initial state, parameters, times) on a linear system and an MLP
//! field, with losses at one and several times, forward and backward in time. Prints a
//! table; exits with 1 above 1e-6.

#[allow(dead_code, unused_imports)]
#[path = "../tests/common/mod.rs"]
mod checks;

use adjoint::{AutodiffField, ClosureField};

fn main() {
    let tol = 1e-6;
    let mut failed = 0;
    println!(
        "{:<34} {:<13} {:>10} {:>10} {:>10} {:>6} {:>6}",
        "problem", "strategy", "z0", "θ", "times", "NFE f", "NFE b"
    );
    let mut report = |name: &str, rows: Vec<(adjoint::Strategy, adjoint::Gradients, [f64; 3])>| {
        for (s, g, e) in rows {
            let bad = e.iter().any(|&x| x.is_nan() || x > tol);
            failed += usize::from(bad);
            println!(
                "{name:<34} {:<13} {:>10.2e} {:>10.2e} {:>10.2e} {:>6} {:>6}{}",
                format!("{s:?}"),
                e[0],
                e[1],
                e[2],
                g.nfe_forward,
                g.nfe_backward,
                if bad { "  FAIL" } else { "" }
            );
        }
    };
    let set_lin = |f: &mut ClosureField<_, _>, i: usize, v: f64| f.params_mut()[i] = v;
    let z0 = [1.0, -0.5, 0.25];
    for (name, ts) in [
        ("linear 3-d, loss at t=1", vec![0.0, 1.0]),
        ("linear 3-d, losses at 4 times", vec![0.0, 0.3, 0.8, 1.5]),
        ("linear 3-d, backward in time", vec![1.0, 0.4, -0.2]),
    ] {
        let mut field = checks::linear_field(0);
        report(name, checks::strategy_errors(&mut field, set_lin, &z0, &ts));
    }
    let set_mlp = |f: &mut AutodiffField, i: usize, v: f64| f.params_mut()[i] = v;
    let mut field = checks::mlp_field(3);
    let z0: Vec<f64> = (0..6).map(|i| (i as f64 * 0.7).sin()).collect();
    report(
        "MLP ConcatSquash, batch 3, 3 times",
        checks::strategy_errors(&mut field, set_mlp, &z0, &[0.0, 0.5, 1.0]),
    );
    if failed > 0 {
        eprintln!("{failed} gradient checks above {tol:e}");
        std::process::exit(1);
    }
    println!("every strategy within {tol:e} of finite differences (Dopri5 at rtol = atol = 1e-12)");
}
