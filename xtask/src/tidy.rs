//! Tidy checks, run as ordinary tests: crate layering, no panicking calls in library
//! sources, `unsafe` only in its files, and thin per-system code (compile time).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Allowed workspace dependencies of each crate (docs/ARCHITECTURE.md).
const LAYERS: [(&str, &[&str]); 6] = [
    ("ode-solvers", &[]),
    ("autodiff", &[]),
    ("adjoint", &["ode-solvers", "autodiff"]),
    ("train", &["autodiff", "adjoint"]),
    ("cnf", &["train", "adjoint", "ode-solvers", "autodiff"]),
    ("latent-ode", &["train", "adjoint", "ode-solvers", "autodiff"]),
];

/// The library files allowed to contain `unsafe`: the run-time-dispatched SIMD kernels and
/// the peak-memory allocator (docs/ARCHITECTURE.md).
const UNSAFE_ALLOWED: [&str; 6] = [
    "crates/ode-solvers/src/simd.rs",
    "crates/autodiff/src/gemm.rs",
    "crates/autodiff/src/real.rs",
    "crates/autodiff/src/exec.rs",
    "crates/autodiff/src/fastmath.rs",
    "crates/train/src/memory.rs",
];

fn crates() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("Cargo.toml").exists())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Names of workspace crates listed under `[dependencies]` (not dev-dependencies).
fn workspace_deps(manifest: &str) -> Vec<String> {
    let known: Vec<&str> = LAYERS.iter().map(|(n, _)| *n).collect();
    let mut in_deps = false;
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps {
            let name = line.split(['=', '.', ' ']).next().unwrap_or("");
            if known.contains(&name) {
                out.push(name.to_string());
            }
        }
    }
    out
}

#[test]
fn crates_respect_the_layers() {
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.into_iter().collect();
    let found = crates();
    assert!(!found.is_empty());
    for dir in found {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{name}: folder and crate names differ"
        );
        assert!(
            manifest.contains("[lints]\nworkspace = true"),
            "{name}: must use the workspace lints"
        );
        let ok = allowed
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name} is not in the layer table"));
        for dep in workspace_deps(&manifest) {
            assert!(ok.contains(&dep.as_str()), "{name} must not depend on {dep}");
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Library code, up to an in-file `#[cfg(test)]` module.
fn library_part(src: &str) -> &str {
    src.find("#[cfg(test)]").map_or(src, |i| &src[..i])
}

#[test]
fn library_sources_do_not_panic() {
    let forbidden = [
        ".unwrap()",
        ".expect(",
        "panic!(",
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
        "unreachable!(",
    ];
    let mut files = Vec::new();
    for dir in crates() {
        rust_files(&dir.join("src"), &mut files);
    }
    assert!(!files.is_empty());
    let mut offences = Vec::new();
    for file in files {
        let src = std::fs::read_to_string(&file).unwrap();
        for (n, line) in library_part(&src).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for f in forbidden {
                if code.contains(f) {
                    offences.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(offences.is_empty(), "panicking calls in library code:\n{}", offences.join("\n"));
}

#[test]
fn unsafe_code_stays_in_its_files() {
    let mut files = Vec::new();
    for dir in crates() {
        rust_files(&dir.join("src"), &mut files);
    }
    let root = root();
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| {
            let src = std::fs::read_to_string(f).unwrap_or_default();
            src.lines().any(|l| l.split("//").next().unwrap_or("").contains("unsafe"))
        })
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .filter(|f| !UNSAFE_ALLOWED.contains(&f.as_str()))
        .collect();
    assert!(offenders.is_empty(), "unsafe outside the allowed files: {offenders:?}");
}

/// The lines of `src` after the first line that starts with `header`, up to the first
/// line equal to `end` (a block's closing brace at its indentation); empty if absent.
fn block<'a>(src: &'a str, header: &str, end: &str) -> Vec<&'a str> {
    let mut lines = src.lines().skip_while(|l| !l.trim_start().starts_with(header));
    if lines.next().is_none() {
        return Vec::new();
    }
    lines.take_while(|l| *l != end).collect()
}

/// Per-system code stays thin (docs/ARCHITECTURE.md, "Compile time"): `RkIntegrator<T, S>`
/// reaches the float-only core through `Real`'s `rk_*` methods (compiled once in
/// `ode-solvers`), never the vector kernels directly, and `Executor::replay`/`build` go
/// through `autodiff`'s `Real::exec_*`. Calling the kernels from the shell would compile
/// them again for every system in every crate: 240 KB of machine code per system before.
#[test]
fn per_system_code_stays_thin() {
    let rk = std::fs::read_to_string(root().join("crates/ode-solvers/src/rk.rs")).unwrap();
    let shell =
        block(&rk, "impl<'s, T: Real, S: OdeSystem<T> + ?Sized> RkIntegrator<'s, T, S> {", "}");
    assert!(shell.len() > 100, "the RkIntegrator shell was not found in rk.rs");
    let kernels =
        ["dispatch(", "_here(", ".combine(", "sum_into(", "sum_pair(", "enorm", "error_norm("];
    let offences: Vec<&str> =
        shell.iter().filter(|l| kernels.iter().any(|k| l.contains(k))).copied().collect();
    assert!(offences.is_empty(), "RkIntegrator's per-system shell calls kernels: {offences:?}");
    let calls = shell.iter().filter(|l| l.contains("T::rk_")).count();
    assert!(calls >= 9, "RkIntegrator's shell reaches the core through T::rk_* ({calls} calls)");
    let exec = std::fs::read_to_string(root().join("crates/autodiff/src/exec.rs")).unwrap();
    for (f, via) in [
        ("pub fn replay(", "T::exec_replay(self, g)"),
        ("pub fn build(", "T::exec_build(g, outputs)"),
    ] {
        let body = block(&exec, f, "    }");
        assert_eq!(body.iter().map(|l| l.trim()).collect::<Vec<_>>(), [via], "Executor::{f}");
    }
}

#[test]
fn the_tidy_checks_can_fail() {
    assert_eq!(
        workspace_deps("[dependencies]\nautodiff.workspace = true\n[dev-dependencies]\ncnf = 1"),
        ["autodiff"]
    );
    assert_eq!(library_part("a.unwrap()\n#[cfg(test)]\nb.unwrap()"), "a.unwrap()\n");
    assert_eq!(block("x\n  impl A {\n  a\n  b\n}\nc", "impl A", "}"), ["  a", "  b"]);
    assert!(block("x\ny", "impl A", "}").is_empty());
}
