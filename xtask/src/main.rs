//! Project automation, `cargo xtask <command>` (std only, after matklad's cargo-xtask):
//!
//! - `ci`: format check, clippy (`-D warnings`, all targets), all tests and doc-tests,
//!   a quick order report, the gradient checks and the digits ODE-Net fast test (15
//!   epochs, at least 95% test accuracy). This is the whole CI (`.ci/run`).
//! - `orders [--quick]`: each method's theoretical and measured orders.
//! - `gradcheck [--case FILE.json]`: every autodiff operation and layer, and every adjoint
//!   strategy, against finite differences; with `--case`, the gradients of an MLP field
//!   given in PyTorch layout, as JSON.
//! - `odenet [--epochs N] [--dataset mnist|digits]`: the ODE-Net experiment (Chen et al.
//!   2018, Table 1) and its baselines.
//! - `bench [FILTER]`: the criterion benches (those whose names contain FILTER), then a
//!   table of times, NFE for solves and GFLOP/s for products; without a filter, also the
//!   adjoint memory report.
//! - `demo`: the main job: reference problems, tables and plots under `target/demo/`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

#[cfg(test)]
mod tidy;

type Result<T> = std::result::Result<T, String>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn run(step: &str, cmd: &mut Command) -> Result<()> {
    println!("\n==> {step}");
    let start = Instant::now();
    let status = cmd.status().map_err(|e| format!("{step}: could not start: {e}"))?;
    println!("<== {step}: {:.1}s", start.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

fn ci() -> Result<()> {
    let start = Instant::now();
    run("fmt", cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(
        "clippy",
        cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
    )?;
    run("test", cargo().args(["test", "--workspace"]))?;
    orders(true)?;
    gradcheck(None)?;
    // The fast test of the ODE-Net experiment: the digits ODE-Net (small width, the
    // digits defaults of `examples/odenet.rs`) trained for 15 epochs must reach 95% test
    // accuracy (the full experiment is `cargo xtask odenet`).
    run(
        "odenet fast test (digits, >= 95%)",
        cargo().args([
            "run",
            "--release",
            "--quiet",
            "-p",
            "adjoint",
            "--example",
            "odenet",
            "--",
            "--dataset",
            "digits",
            "--models",
            "odenet",
            "--epochs",
            "15",
            "--min-accuracy",
            "0.95",
        ]),
    )?;
    println!("\nci passed in {:.0}s", start.elapsed().as_secs_f64());
    Ok(())
}

fn orders(quick: bool) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["run", "--release", "--quiet", "-p", "ode-solvers", "--example", "orders"]);
    if quick {
        cmd.args(["--", "--quick"]);
    }
    run("orders", &mut cmd)
}

/// `cargo xtask odenet [--epochs N] [--dataset mnist|digits] [...]`: the ODE-Net experiment;
/// the table goes to `target/demo/odenet_<dataset>.md`.
fn odenet(args: &[String]) -> Result<()> {
    let dataset = args
        .iter()
        .position(|a| a == "--dataset")
        .and_then(|i| args.get(i + 1))
        .map_or("mnist", String::as_str);
    let out = root().join("target").join("demo");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut cmd = cargo();
    cmd.args(["run", "--release", "--quiet", "-p", "adjoint", "--example", "odenet", "--"]);
    if !args.iter().any(|a| a == "--dataset") {
        cmd.args(["--dataset", "mnist"]);
    }
    cmd.args(args).arg("--out").arg(out.join(format!("odenet_{dataset}.md")));
    run("odenet", &mut cmd)
}

fn gradcheck(case: Option<&str>) -> Result<()> {
    if let Some(file) = case {
        let path = std::fs::canonicalize(file).map_err(|e| format!("{file}: {e}"))?;
        let mut cmd = cargo();
        cmd.args(["run", "--release", "--quiet", "-p", "adjoint", "--example", "case", "--"])
            .arg(path);
        return run("gradcheck --case", &mut cmd);
    }
    let example = |package: &str| {
        let mut cmd = cargo();
        cmd.args(["run", "--release", "--quiet", "-p", package, "--example", "gradcheck"]);
        cmd
    };
    run("gradcheck: autodiff", &mut example("autodiff"))?;
    run("gradcheck: adjoint", &mut example("adjoint"))
}

fn demo() -> Result<()> {
    let out = root().join("target").join("demo");
    let example = |package: &str, name: &str| {
        let mut cmd = cargo();
        cmd.args(["run", "--release", "--quiet", "-p", package, "--example", name, "--"]).arg(&out);
        cmd
    };
    run("demo: reference solves (ode-solvers)", &mut example("ode-solvers", "demo"))?;
    run("demo: learned dynamics (adjoint)", &mut example("adjoint", "spiral"))?;
    let mut odenet = example("adjoint", "odenet");
    odenet
        .args(["--dataset", "digits", "--epochs", "15", "--out"])
        .arg(out.join("odenet_digits.md"));
    run("demo: ODE-Net and baselines on the 8x8 digits", &mut odenet)?;
    println!("\nplots and tables are in {}", out.display());
    Ok(())
}

/// Reads `mean.point_estimate` (ns) from a criterion `estimates.json` without a JSON
/// dependency.
fn mean_ns(json: &str) -> Option<f64> {
    let mean = &json[json.find("\"mean\"")?..];
    let pe = &mean[mean.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = pe.find([',', '}'])?;
    pe[..end].trim().parse().ok()
}

/// `filter` (criterion's, a substring of the case names) limits the benches run; the
/// memory report runs only without one.
fn bench(filter: Option<&str>) -> Result<()> {
    let mut command = cargo();
    command.args(["bench", "-p", "benches"]);
    if let Some(f) = filter {
        command.args(["--", f]);
    }
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("bench: could not start: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    if !output.status.success() {
        return Err("bench failed".into());
    }
    println!("\n{:<44} {:>14} {:>10} {:>10}", "case", "time", "NFE", "GFLOP/s");
    for line in stdout.lines() {
        let mut parts = line.split_whitespace();
        let kind = parts.next();
        if kind != Some("NFE") && kind != Some("FLOPS") {
            continue;
        }
        // NFE may read "forward+backward".
        let (Some(case), Some(raw)) = (parts.next(), parts.next()) else {
            continue;
        };
        if filter.is_some_and(|f| !case.contains(f)) {
            continue;
        }
        let count: f64 = raw.split('+').filter_map(|n| n.parse::<f64>().ok()).sum();
        // criterion stores "group/param/eter" as group/param_eter.
        let (group, param) = case.split_once('/').unwrap_or((case, ""));
        let estimates = root()
            .join("target/criterion")
            .join(group)
            .join(param.replace('/', "_"))
            .join("new/estimates.json");
        let time = std::fs::read_to_string(&estimates).ok().and_then(|j| mean_ns(&j));
        let shown = match time {
            Some(ns) if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
            Some(ns) => format!("{:.2} µs", ns / 1e3),
            None => "-".into(),
        };
        let (nfe, gflops) = match (kind, time) {
            (Some("NFE"), _) => (raw.to_string(), "-".to_string()),
            (_, Some(ns)) => ("-".to_string(), format!("{:.2}", count / ns)),
            _ => ("-".to_string(), "-".to_string()),
        };
        println!("{case:<44} {shown:>14} {nfe:>10} {gflops:>10}");
    }
    if filter.is_some() {
        return Ok(());
    }
    run(
        "memory: peak bytes of the backsolve adjoint and of direct backpropagation",
        cargo().args(["run", "--release", "--quiet", "-p", "adjoint", "--example", "memory"]),
    )?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("orders") => orders(args.iter().any(|a| a == "--quick")),
        Some("bench") => bench(args.get(1).map(String::as_str)),
        Some("demo") => demo(),
        Some("odenet") => odenet(&args[1..]),
        Some("gradcheck") => {
            let case = args.iter().position(|a| a == "--case").and_then(|i| args.get(i + 1));
            gradcheck(case.map(String::as_str))
        }
        _ => Err("usage: cargo xtask <ci | orders [--quick] | gradcheck [--case FILE.json] | odenet [--epochs N] | bench [FILTER] | demo>".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
