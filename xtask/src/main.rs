//! Project automation, `cargo xtask <command>` (std only, after matklad's cargo-xtask);
//! `cargo xtask` alone lists the commands ([`COMMANDS`]), `cargo xtask <command> --help`
//! explains one. `ci` is the whole CI (`.ci/run`): fmt, clippy, rustdoc with warnings
//! denied, then one optimised build (the `ci` profile: release with overflow checks) for
//! the tests, the order report, the gradient checks and the digits ODE-Net fast test, and
//! the time of every step at the end; `ci --quick` is the inner loop.

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

/// The steps run so far and their seconds, printed at the end of `ci`.
static TIMES: std::sync::Mutex<Vec<(String, f64)>> = std::sync::Mutex::new(Vec::new());

fn run(step: &str, cmd: &mut Command) -> Result<()> {
    println!("\n==> {step}");
    let start = Instant::now();
    let status = cmd.status().map_err(|e| format!("{step}: could not start: {e}"))?;
    let seconds = start.elapsed().as_secs_f64();
    println!("<== {step}: {seconds:.1}s");
    if let Ok(mut t) = TIMES.lock() {
        t.push((step.to_string(), seconds));
    }
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

/// `cargo run --profile PROFILE --quiet -p PACKAGE --example NAME --`.
fn example(profile: &str, package: &str, name: &str) -> Command {
    let mut cmd = cargo();
    cmd.args(["run", "--profile", profile, "--quiet", "-p", package, "--example", name, "--"]);
    cmd
}

/// The profile of CI's single build (Cargo.toml: release with overflow checks).
const CI: &str = "ci";

fn ci(quick: bool) -> Result<()> {
    let start = Instant::now();
    let result = ci_steps(quick);
    println!("\nstep times:");
    if let Ok(t) = TIMES.lock() {
        for (step, s) in t.iter() {
            println!("  {s:>7.1}s  {step}");
        }
    }
    let total = start.elapsed().as_secs_f64();
    match &result {
        Ok(()) => println!("\nci{} passed in {total:.0}s", if quick { " --quick" } else { "" }),
        Err(e) => println!("\nci failed after {total:.0}s: {e}"),
    }
    result
}

fn ci_steps(quick: bool) -> Result<()> {
    run("fmt", cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(
        "clippy",
        cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
    )?;
    if !quick {
        run(
            "doc (warnings denied)",
            cargo()
                .args(["doc", "--workspace", "--no-deps", "--quiet"])
                .env("RUSTDOCFLAGS", "-D warnings"),
        )?;
    }
    // One optimised build (with overflow checks) for the tests and every example below.
    run("test", cargo().args(["test", "--workspace", "--profile", CI]))?;
    if quick {
        return Ok(());
    }
    run("orders", built("orders").arg("--quick"))?;
    run("gradcheck: autodiff", &mut built("autodiff-gradcheck"))?;
    run("gradcheck: adjoint", &mut built("adjoint-gradcheck"))?;
    run("gradcheck: latent-ode", &mut built("latent-gradcheck"))?;
    // The fast test of the ODE-Net experiment: the digits ODE-Net (the digits defaults of
    // `examples/odenet.rs`) trained for 15 epochs must reach 93.5% test accuracy: seeds
    // 0..4 measured 96.44 / 95.11 / 95.88 / 95.66 / 97.11% (mean 96.04, sd 0.75), so the
    // threshold is about mean - 3 sd and seed 0 clears it by 2.9 points (docs/ODENET.md).
    let mut fast = built("odenet");
    fast.args(["--dataset", "digits", "--models", "odenet", "--epochs", "15"]);
    fast.args(["--min-accuracy", "0.935"]);
    run("odenet fast test (digits, >= 93.5%)", &mut fast)?;
    // The CNF fast test: 600 RNODE iterations on 8gaussians must bring the test NLL below
    // 3.5 nats: seeds 0..4 measured 3.26 / 3.09 / 3.26 / 3.26 / 3.15 (true entropy 2.83; a
    // Gaussian fitted to the data scores about 4.25), so the bound is about mean + 4 sd.
    let mut flow = built("cnf");
    flow.args(["--dataset", "8gaussians", "--iters", "600", "--rnode", "--hidden", "32,32"]);
    flow.args(["--batch", "256", "--max-nll", "3.5"]);
    run("cnf fast test (8gaussians, test NLL <= 3.5)", &mut flow)?;
    // The latent-ODE fast test: 300 iterations on 300 spirals (30 of 100 points observed,
    // noise 0.3) must reconstruct the 200 test spirals' observations with RMSE <= 0.55 and
    // extrapolate the 100 points after each window with RMSE <= 2.1. Seeds 0..4 measured
    // 0.444 / 0.479 / 0.432 / 0.472 / 0.427 and 1.84 / 1.03 / 1.04 / 1.48 / 1.30; holding the
    // last observation (the interpolation baselines) scores 2.21-2.50 and an untrained
    // model 3.9 on the reconstruction (docs/LATENT.md).
    let mut latent = built("latent");
    latent.args(["--dataset", "spirals", "--iters", "300", "--batch", "50", "--n-series", "300"]);
    latent.args(["--no-plots", "--max-rmse-obs", "0.55", "--max-rmse", "2.1"]);
    run("latent fast test (spirals, reconstruction <= 0.55, extrapolation <= 2.1)", &mut latent)
}

/// `cargo xtask latent [OPTIONS]`: train and score a latent ODE (the example's options,
/// `--help`).
fn latent(args: &[String]) -> Result<()> {
    let mut cmd = example("release", "latent-ode", "latent");
    // Paths are relative to where the user ran the command, not the workspace root.
    let here = std::env::current_dir().map_err(|e| format!("latent: {e}"))?;
    let paths = ["--train", "--test", "--predictions", "--out", "--resume"];
    let mut previous = "";
    for a in args {
        if paths.contains(&previous) && !a.starts_with('-') {
            cmd.arg(here.join(a));
        } else {
            cmd.arg(a);
        }
        previous = a;
    }
    run("latent", &mut cmd)
}

/// `cargo xtask cnf [OPTIONS]`: fit a CNF to a toy (the example's options, `--help`);
/// `cargo xtask cnf --case FILE.json`: a CNF case file (docs/CASES.md), JSON out.
fn cnf(args: &[String]) -> Result<()> {
    if let Some(i) = args.iter().position(|a| a == "--case") {
        let file =
            args.get(i + 1).ok_or("cnf: --case needs a value (a case file; docs/CASES.md)")?;
        let path = std::fs::canonicalize(file)
            .map_err(|e| format!("{file}: {e} (the case format is in docs/CASES.md)"))?;
        let mut cmd = example("release", "cnf", "cnf-case");
        cmd.arg(path);
        return run("cnf --case", &mut cmd);
    }
    let mut cmd = example("release", "cnf", "cnf");
    cmd.args(args);
    run("cnf", &mut cmd)
}

/// `cargo xtask planar [OPTIONS]`: the planar CNF against the planar NF (the example's
/// options, `--help`).
fn planar(args: &[String]) -> Result<()> {
    let mut cmd = example("release", "cnf", "planar");
    let here = std::env::current_dir().map_err(|e| format!("planar: {e}"))?;
    let mut previous = "";
    for a in args {
        if previous == "--out" && !a.starts_with('-') {
            cmd.arg(here.join(a));
        } else {
            cmd.arg(a);
        }
        previous = a;
    }
    run("planar", &mut cmd)
}

/// An example binary of CI's build: `cargo test --workspace --profile ci` builds every
/// example with the whole workspace's features, so running the binary directly rebuilds
/// nothing (`cargo run -p one-package` would resolve that package's features alone and
/// rebuild its dependencies).
fn built(name: &str) -> Command {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let mut cmd = Command::new(target.join(CI).join("examples").join(name));
    cmd.current_dir(root());
    cmd
}

fn orders(profile: &str, quick: bool) -> Result<()> {
    let mut cmd = example(profile, "ode-solvers", "orders");
    if quick {
        cmd.arg("--quick");
    }
    run("orders", &mut cmd)
}

/// `cargo xtask odenet [OPTIONS]`: the ODE-Net experiment (the example's options; MNIST
/// unless `--dataset` says otherwise); the table goes to `target/demo/odenet_<dataset>.md`.
fn odenet(args: &[String]) -> Result<()> {
    let mut cmd = example("release", "adjoint", "odenet");
    if args.iter().any(|a| a == "--help" || a == "-h") {
        cmd.arg("--help");
        return run("odenet --help", &mut cmd);
    }
    let dataset = args
        .iter()
        .position(|a| a == "--dataset")
        .and_then(|i| args.get(i + 1))
        .map_or("mnist", String::as_str);
    let out = root().join("target").join("demo");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    if !args.iter().any(|a| a == "--dataset") {
        cmd.args(["--dataset", "mnist"]);
    }
    cmd.args(args).arg("--out").arg(out.join(format!("odenet_{dataset}.md")));
    run("odenet", &mut cmd)
}

fn gradcheck() -> Result<()> {
    run("gradcheck: autodiff", &mut example("release", "autodiff", "autodiff-gradcheck"))?;
    run("gradcheck: adjoint", &mut example("release", "adjoint", "adjoint-gradcheck"))?;
    run("gradcheck: latent-ode", &mut example("release", "latent-ode", "latent-gradcheck"))
}

fn gradcheck_case(file: &str) -> Result<()> {
    let path = std::fs::canonicalize(file)
        .map_err(|e| format!("{file}: {e} (the case format is in docs/CASES.md)"))?;
    let mut cmd = example("release", "adjoint", "case");
    cmd.arg(path);
    run("gradcheck --case", &mut cmd)
}

fn demo() -> Result<()> {
    let out = root().join("target").join("demo");
    let with_out = |package: &str, name: &str| {
        let mut cmd = example("release", package, name);
        cmd.arg(&out);
        cmd
    };
    run("demo: reference solves (ode-solvers)", &mut with_out("ode-solvers", "demo"))?;
    run("demo: learned dynamics (adjoint)", &mut with_out("adjoint", "spiral"))?;
    let mut odenet = example("release", "adjoint", "odenet");
    odenet
        .args(["--dataset", "digits", "--epochs", "15", "--out"])
        .arg(out.join("odenet_digits.md"));
    run("demo: ODE-Net and baselines on the 8x8 digits", &mut odenet)?;
    for toy in ["8gaussians", "moons"] {
        let mut flow = example("release", "cnf", "cnf");
        flow.args(["--dataset", toy, "--iters", "2000", "--rnode", "--hidden", "64,64", "--out"]);
        flow.arg(out.join(format!("cnf_{toy}")));
        run(&format!("demo: a continuous normalizing flow on {toy}"), &mut flow)?;
    }
    for (model, dir) in [("latent-ode", "latent_spirals"), ("rnn", "latent_spirals_rnn")] {
        let mut latent = example("release", "latent-ode", "latent");
        latent.args(["--dataset", "spirals", "--model", model, "--iters", "1500", "--out"]);
        latent.arg(out.join(dir));
        run(&format!("demo: {model} on Chen's spirals (30 of 100 points observed)"), &mut latent)?;
    }
    let mut theoph = example("release", "latent-ode", "latent");
    theoph.args(["--dataset", "theoph", "--encoder", "gru", "--iters", "600", "--out"]);
    theoph.arg(out.join("latent_theoph"));
    run("demo: a latent ODE on Theophylline, 30% of each test subject held out", &mut theoph)?;
    let mut planar = example("release", "cnf", "planar");
    planar.args(["--iters", "400", "--out"]).arg(out.join("planar"));
    run(
        "demo: planar CNF (width M) against planar NF (depth K), Chen et al. 2018 Fig. 4",
        &mut planar,
    )?;
    let index = write_index(&out)?;
    println!("\nplots and tables are in {}; {} lists them", out.display(), index.display());
    Ok(())
}

/// What each demo artefact shows, for `target/demo/index.md`.
const ARTEFACTS: [(&str, &str); 27] = [
    ("cnf_8gaussians/trajectories.png", "8gaussians: held-out points carried by the flow from the data (t = 0) to the base (t = T), five times, coloured by their starting angle"),
    ("cnf_moons/trajectories.png", "moons: held-out points carried from the data to the base, five times"),
    ("planar/metrics.json", "planar CNF (M = 1, 8, 32) against planar NF (K = 1, 8, 32), 400 iterations each: KL(q‖p) of density matching and test NLL minus entropy of maximum likelihood, per target"),
    ("planar/planar.png", "the two targets and every planar model's density (matching rows: histograms of its samples; likelihood rows: its density on a grid)"),
    ("latent_spirals/metrics.json", "latent ODE on Chen's spirals: extrapolation RMSE over the 100 points after each window, reconstruction RMSE, baselines, NFE, times"),
    ("latent_spirals/series.png", "a test spiral: noisy observations, the true curve, the latent ODE's reconstruction and extrapolation"),
    ("latent_spirals_rnn/metrics.json", "the RNN-decoder baseline on the same spirals"),
    ("latent_spirals_rnn/series.png", "the same test spiral, the RNN baseline's reconstruction and extrapolation"),
    ("latent_theoph/metrics.json", "latent ODE (GRU encoder) on Theophylline: held-out RMSE beside linear and spline interpolation"),
    ("latent_theoph/series.png", "a test subject: observations, held-out points, the predictive mean and its 5-95% band"),
    ("reference_arenstorf.md", "Arenstorf orbit over one period: error and NFE of every adaptive method at rtol = atol = 1e-3 .. 1e-10"),
    ("reference_lotka_volterra.md", "Lotka-Volterra on [0, 10] against a Dop853 1e-14 reference: error and NFE per method and tolerance"),
    ("reference_limit_cycle.md", "A limit cycle with an exact solution on [0, 5]: error and NFE per method and tolerance"),
    ("arenstorf_orbit.png", "the Arenstorf orbit (Dop853 at 1e-10) with the Earth and the Moon"),
    ("work_precision.png", "work-precision diagram of the Arenstorf sweep: error against NFE, log-log"),
    ("spiral_trajectories.png", "learned dynamics dz/dt = z³A: true and learned z1(t), z2(t) over [0, 25]"),
    ("spiral_phase.png", "learned dynamics: true and learned phase portraits"),
    ("odenet_digits.md", "ODE-Net, RK-Net, ResNet and MLP on the 8x8 digits: test error, parameters, peak memory, time per epoch, NFE"),
    ("cnf_8gaussians/metrics.json", "CNF (RNODE, 2000 iterations) on 8gaussians: test NLL against the true entropy, NFE, times"),
    ("cnf_8gaussians/data.png", "8gaussians: held-out samples"),
    ("cnf_8gaussians/density.png", "8gaussians: the learned density on a grid (exact trace), its mass in view in the title"),
    ("cnf_8gaussians/samples.png", "8gaussians: samples of the flow (solved backwards from the base)"),
    ("cnf_moons/metrics.json", "CNF (RNODE, 2000 iterations) on moons: test NLL against the true entropy, NFE, times"),
    ("cnf_moons/data.png", "moons: held-out samples"),
    ("cnf_moons/density.png", "moons: the learned density on a grid (exact trace)"),
    ("cnf_moons/samples.png", "moons: samples of the flow"),
    ("index.md", "this list"),
];

/// Writes `index.md` in `out`: every file there with one line on what it shows.
fn write_index(out: &Path) -> Result<PathBuf> {
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(out).map_err(|e| format!("{}: {e}", out.display()))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() {
            // One level of sub-folders (a model's outputs).
            for sub in std::fs::read_dir(entry.path()).into_iter().flatten().flatten() {
                names.push(format!("{name}/{}", sub.file_name().to_string_lossy()));
            }
        } else {
            names.push(name);
        }
    }
    names.retain(|n| n.ends_with(".md") || n.ends_with(".png") || n.ends_with(".json"));
    names.push("index.md".into());
    names.sort();
    names.dedup();
    let mut md = String::from("# `cargo xtask demo`\n\nWhat the demo wrote, one line each.\n\n");
    for name in names {
        let what = ARTEFACTS.iter().find(|(n, _)| *n == name).map_or("(not described)", |(_, w)| w);
        md.push_str(&format!("- [`{name}`]({name}): {what}\n"));
    }
    let path = out.join("index.md");
    std::fs::write(&path, md).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Reads `mean.point_estimate` (ns) from a criterion `estimates.json` without a JSON
/// dependency.
fn mean_ns(json: &str) -> Option<f64> {
    let mean = &json[json.find("\"mean\"")?..];
    let pe = &mean[mean.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = pe.find([',', '}'])?;
    pe[..end].trim().parse().ok()
}

/// A time in ns as ms or µs.
fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} µs", ns / 1e3)
    }
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
    // Criterion's mean of a case in ns; criterion stores "group/param/eter" as
    // group/param_eter.
    let mean_of = |case: &str| {
        let (group, param) = case.split_once('/').unwrap_or((case, ""));
        let estimates = root()
            .join("target/criterion")
            .join(group)
            .join(param.replace('/', "_"))
            .join("new/estimates.json");
        std::fs::read_to_string(&estimates).ok().and_then(|j| mean_ns(&j))
    };
    // Rates and floors per precision: cases ending in `_f32` run in single precision.
    let precision = |case: &str| usize::from(case.ends_with("_f32"));
    let mut peak: [Option<(f64, String)>; 2] = [None, None];
    let mut tanh_ns: [Option<f64>; 2] = [None, None];
    let mut floors = Vec::new();
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (kind, case, raw) = match fields[..] {
            [kind @ ("NFE" | "FLOPS" | "TANH" | "FLOOR"), case, raw, ..] => (kind, case, raw),
            _ => continue,
        };
        if filter.is_some_and(|f| !f.split('|').any(|part| case.contains(part))) {
            continue;
        }
        let time = mean_of(case);
        let p = precision(case);
        match (kind, time) {
            ("TANH", Some(ns)) => tanh_ns[p] = raw.parse::<f64>().ok().map(|n| ns / n),
            ("FLOOR", Some(ns)) => {
                let extra = fields.get(3).and_then(|t| t.parse::<f64>().ok()).unwrap_or(0.0);
                floors.push((case.to_string(), ns, raw.parse::<f64>().unwrap_or(0.0), extra));
            }
            _ => {}
        }
        if kind == "TANH" || kind == "FLOOR" {
            continue;
        }
        // NFE may read "forward+backward".
        let count: f64 = raw.split('+').filter_map(|n| n.parse::<f64>().ok()).sum();
        let shown = time.map_or_else(|| "-".into(), fmt_ns);
        let (nfe, gflops) = match (kind, time) {
            ("NFE", _) => (raw.to_string(), "-".to_string()),
            (_, Some(ns)) => {
                if case.starts_with("matmul/") && peak[p].as_ref().is_none_or(|q| count / ns > q.0)
                {
                    peak[p] = Some((count / ns, case.to_string()));
                }
                ("-".to_string(), format!("{:.2}", count / ns))
            }
            _ => ("-".to_string(), "-".to_string()),
        };
        println!("{case:<44} {shown:>14} {nfe:>10} {gflops:>10}");
    }
    for (p, name) in ["f64", "f32"].into_iter().enumerate() {
        let ours: Vec<_> = floors.iter().filter(|f| precision(&f.0) == p).collect();
        if let (Some((rate, at)), Some(tanh), false) = (&peak[p], tanh_ns[p], ours.is_empty()) {
            println!(
                "\n{name} floors: products at this run's best {name} product rate, {rate:.1} \
                 GFLOP/s ({at}), plus tanh at {tanh:.2} ns per element"
            );
            println!("{:<44} {:>14} {:>14} {:>10}", "case", "time", "floor", "x floor");
            for (case, ns, flops, tanh_elems) in ours {
                let floor = flops / rate + tanh_elems * tanh;
                println!(
                    "{case:<44} {:>14} {:>14} {:>10.2}",
                    fmt_ns(*ns),
                    fmt_ns(floor),
                    ns / floor
                );
            }
        }
    }
    if filter.is_some() {
        return Ok(());
    }
    run(
        "memory: peak bytes of the backsolve adjoint and of direct backpropagation",
        &mut example("release", "adjoint", "memory"),
    )?;
    Ok(())
}

/// The subcommands: name, arguments, what it does.
const COMMANDS: [(&str, &str, &str); 9] = [
    ("ci", "[--quick]", "all checks and tests (fmt, clippy, doc, tests, orders, gradient checks, the ODE-Net fast test); --quick: fmt, clippy and tests only"),
    ("demo", "", "the main job: reference solves, learned dynamics, the digits ODE-Net, CNFs on two toys, latent ODEs on spirals and Theophylline, planar CNF against planar NF; tables and plots under target/demo/"),
    ("orders", "[--quick]", "each method's theoretical and measured convergence orders"),
    ("gradcheck", "[--case FILE.json]", "every autodiff op and layer and every adjoint strategy against finite differences; --case: an MLP field in PyTorch layout (docs/CASES.md)"),
    ("odenet", "[OPTIONS]", "the ODE-Net experiment (Chen et al. 2018, Table 1); `cargo xtask odenet --help` lists its options"),
    ("cnf", "[OPTIONS | --case FILE.json]", "fit a continuous normalizing flow to one of FFJORD's toys (`cargo xtask cnf --help` lists the options); --case: a CNF case file (docs/CASES.md)"),
    ("latent", "[OPTIONS]", "train a latent ODE (or the RNN baseline) on spirals, periodic, theoph, chickweight, co2 or --train/--test CSVs and score its predictions (`cargo xtask latent --help`)"),
    ("planar", "[OPTIONS]", "the planar CNF against the planar normalizing flow by density matching and maximum likelihood (Chen et al. 2018, Fig. 4; `cargo xtask planar --help`)"),
    ("bench", "[FILTER]", "criterion benches (names matching FILTER, a criterion regex; its '|'-separated parts pick the table rows), a table of times, NFE and GFLOP/s, and the memory report"),
];

fn usage() -> String {
    let mut s = String::from("usage: cargo xtask <command> [options]\n\ncommands:\n");
    for (name, args, what) in COMMANDS {
        s.push_str(&format!("  {:<28} {what}\n", format!("{name} {args}")));
    }
    s
}

/// Checks a subcommand's arguments: `--help`, or only the flags it knows (each with a
/// value where `takes_value`), and at most `positional` other words.
fn parse<'a>(
    command: &str,
    args: &'a [String],
    flags: &[(&'a str, bool)],
    positional: usize,
) -> Result<Option<(Vec<(&'a str, Option<&'a str>)>, Vec<&'a str>)>> {
    let help = COMMANDS
        .iter()
        .find(|c| c.0 == command)
        .map_or(String::new(), |(n, a, w)| format!("usage: cargo xtask {n} {a}\n\n{w}"));
    let mut found = Vec::new();
    let mut words = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--help" || a == "-h" {
            println!("{help}");
            return Ok(None);
        }
        if let Some(&(flag, takes_value)) = flags.iter().find(|f| f.0 == a) {
            let value = if takes_value {
                Some(
                    it.next()
                        .map(String::as_str)
                        .ok_or(format!("{command}: {flag} needs a value\n\n{help}"))?,
                )
            } else {
                None
            };
            found.push((flag, value));
        } else if a.starts_with('-') || words.len() >= positional {
            return Err(format!("{command}: unexpected argument '{a}'\n\n{help}"));
        } else {
            words.push(a.as_str());
        }
    }
    Ok(Some((found, words)))
}

fn dispatch(args: &[String]) -> Result<()> {
    let Some(command) = args.first().map(String::as_str) else {
        println!("{}", usage());
        return Ok(());
    };
    let rest = &args[1..];
    let has = |f: &[(&str, Option<&str>)], name: &str| f.iter().any(|(n, _)| *n == name);
    match command {
        "ci" => match parse("ci", rest, &[("--quick", false)], 0)? {
            Some((f, _)) => ci(has(&f, "--quick")),
            None => Ok(()),
        },
        "orders" => match parse("orders", rest, &[("--quick", false)], 0)? {
            Some((f, _)) => orders("release", has(&f, "--quick")),
            None => Ok(()),
        },
        "gradcheck" => match parse("gradcheck", rest, &[("--case", true)], 0)? {
            Some((f, _)) => match f.iter().find(|(n, _)| *n == "--case") {
                Some((_, Some(file))) => gradcheck_case(file),
                _ => gradcheck(),
            },
            None => Ok(()),
        },
        "demo" => match parse("demo", rest, &[], 0)? {
            Some(_) => demo(),
            None => Ok(()),
        },
        "bench" => match parse("bench", rest, &[], 1)? {
            Some((_, words)) => bench(words.first().copied()),
            None => Ok(()),
        },
        // The example parses (and explains) its own options.
        "odenet" => odenet(rest),
        "cnf" => cnf(rest),
        "latent" => latent(rest),
        "planar" => planar(rest),
        "help" | "--help" | "-h" => {
            println!("{}", usage());
            Ok(())
        }
        other => Err(format!("unknown command '{other}'\n\n{}", usage())),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn unknown_commands_and_options_are_refused_with_the_usage() {
        let e = dispatch(&words("frobnicate")).unwrap_err();
        assert!(e.contains("unknown command 'frobnicate'") && e.contains("gradcheck"), "{e}");
        let e = dispatch(&words("ci --fast")).unwrap_err();
        assert!(e.contains("unexpected argument '--fast'") && e.contains("usage: cargo xtask ci"));
        let e = dispatch(&words("gradcheck --case")).unwrap_err();
        assert!(e.contains("--case needs a value"), "{e}");
        let e = dispatch(&words("orders extra")).unwrap_err();
        assert!(e.contains("unexpected argument 'extra'"));
        assert!(dispatch(&words("bench a b")).is_err());
    }

    /// The examples built beside this test binary (`target/<profile>/examples`), when the
    /// whole workspace was built (as `cargo xtask ci` does).
    fn example_binary(name: &str) -> Option<PathBuf> {
        let exe = std::env::current_exe().ok()?;
        let p = exe.parent()?.parent()?.join("examples").join(name);
        p.exists().then_some(p)
    }

    /// Every example that takes options: `--help` lists them and exits 0; an unknown option
    /// and an unparsable value exit non-zero with a message.
    #[test]
    fn every_example_with_options_has_help_and_refuses_bad_ones() {
        let cases: [(&str, &[&str]); 10] = [
            ("latent", &["--model", "lstm"]),
            ("planar", &["--sizes", "0"]),
            ("odenet", &["--epochs", "many"]),
            ("cnf-case", &[]),
            ("cnf", &["--dataset", "spiral"]),
            ("spiral", &["--iterations", "-3"]),
            ("orders", &["extra"]),
            ("memory", &["--quick=maybe"]),
            ("case", &[]),
            ("demo", &["a", "b"]),
        ];
        let mut ran = 0;
        for (name, bad_value) in cases {
            let Some(bin) = example_binary(name) else { continue };
            ran += 1;
            let help = Command::new(&bin).arg("--help").output().unwrap();
            let text = String::from_utf8_lossy(&help.stdout);
            assert!(help.status.success() && text.contains("Usage"), "{name} --help: {text}");
            let unknown = Command::new(&bin).arg("--no-such-option").output().unwrap();
            let err = String::from_utf8_lossy(&unknown.stderr);
            assert!(
                !unknown.status.success() && err.contains("unexpected argument"),
                "{name}: {err}"
            );
            let bad = Command::new(&bin).args(bad_value).output().unwrap();
            assert!(!bad.status.success() && !bad.stderr.is_empty(), "{name} {bad_value:?}");
        }
        // Without the examples built (`cargo test -p xtask` alone) there is nothing to run.
        if ran == 0 {
            println!(
                "no example binaries beside {:?}; build the workspace first",
                std::env::current_exe()
            );
        }
    }

    #[test]
    fn help_prints_and_runs_nothing() {
        for c in ["ci", "orders", "gradcheck", "demo", "bench"] {
            assert_eq!(dispatch(&words(&format!("{c} --help"))), Ok(()), "{c}");
        }
        assert_eq!(dispatch(&[]), Ok(()));
        assert!(usage().lines().count() >= COMMANDS.len() + 2);
    }
}
