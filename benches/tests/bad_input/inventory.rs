//! The public API's inventory, read from the crates' sources, so the suite can show that it
//! covers every public function and method that takes an input (docs/RELIABILITY.md).
//!
//! An entry point is
//! - a `pub fn` at a module's top level (named `name`),
//! - a `pub fn` in an inherent `impl` of a public type (`Type::name`),
//! - a method of a workspace trait implemented for a public type (`Type::name`),
//!
//! outside `#[cfg(test)]` items, with at least one parameter besides `self`. A method
//! without one (`len`, `params`, `name`) takes no input that could be bad. Implementations
//! of `std` traits (`Display`, `From`, ...) and blanket implementations for closures are
//! the standard library's or the caller's contracts, not entry points of ours.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One public function or method that takes an input.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EntryPoint {
    /// `Type::name` or `name`.
    pub name: String,
    /// The file, relative to the workspace root.
    pub file: String,
}

/// The workspace's own traits: their implementations for public types are entry points.
const OUR_TRAITS: [&str; 11] = [
    "OdeSystem",
    "VectorField",
    "AdjointStrategy",
    "Optimizer",
    "Model",
    "Chunk",
    "Dataset",
    "Augment",
    "Callback",
    "SeriesModel",
    "LogDensity",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The source with comments removed and string and character literals emptied, so that
/// braces and parentheses can be counted.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'r' && matches!(b.get(i + 1), Some(b'#') | Some(b'"')) && !ident(b, i) {
            // A raw string r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&b'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == b'\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let close = if b.get(i + 1) == Some(&b'\\') {
                (i + 2..b.len().min(i + 12)).find(|&j| b[j] == b'\'')
            } else {
                (b.get(i + 2) == Some(&b'\'')).then_some(i + 2)
            };
            match close {
                Some(j) => {
                    out.push_str("' '");
                    i = j + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(c as char);
            i += 1;
        }
    }
    out
}

fn ident(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// The index just past the bracket that closes the one at `open`.
fn close(b: &[u8], open: usize, l: u8, r: u8) -> usize {
    let mut depth = 0;
    for (j, &c) in b.iter().enumerate().skip(open) {
        if c == l {
            depth += 1;
        } else if c == r {
            depth -= 1;
            if depth == 0 {
                return j + 1;
            }
        }
    }
    b.len()
}

/// Splits `s` at commas outside brackets.
fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' | '<' | '{' => depth += 1,
            ')' | ']' | '>' | '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect()
}

/// Whether a parameter list has a parameter besides `self`.
fn takes_input(params: &str) -> bool {
    split_top(params).iter().any(|p| {
        let p = p.trim_start_matches('&').trim_start();
        let p = if p.starts_with('\'') {
            p.split_once(' ').map_or("", |(_, rest)| rest).trim_start()
        } else {
            p
        };
        let p = p.strip_prefix("mut ").unwrap_or(p).trim_start();
        !(p == "self" || p.starts_with("self:") || p.starts_with("self "))
    })
}

/// The words of `s` from `at`: identifier characters and `::`.
fn word(s: &str, at: usize) -> &str {
    let rest = &s[at..];
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
    &rest[..end]
}

/// The last path segment of a type written in an `impl` header, without generics.
fn type_name(s: &str) -> String {
    let s = s.trim();
    let s = s.trim_start_matches('&').trim_start_matches("mut ").trim_start();
    let base = s.split(['<', ' ', '{']).next().unwrap_or("");
    base.rsplit("::").next().unwrap_or("").to_string()
}

/// Items of one file: (public types declared, entry points).
fn scan(code: &str, file: &str, types: &mut BTreeSet<String>, out: &mut Vec<(EntryPoint, String)>) {
    let b = code.as_bytes();
    let mut i = 0;
    let mut skip_next_item = false;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() || c == b';' {
            i += 1;
            continue;
        }
        if c == b'#' {
            // An attribute: #[...] or #![...].
            let open = code[i..].find('[').map_or(b.len(), |o| i + o);
            let end = close(b, open, b'[', b']');
            let attr = &code[open..end];
            if attr.contains("cfg(test)") || attr.contains("cfg(all(test") {
                skip_next_item = true;
            }
            i = end;
            continue;
        }
        // One item at the top level: up to its `;` or its closing brace.
        let brace = code[i..].find('{').map(|o| i + o);
        let semi = code[i..].find(';').map(|o| i + o);
        let (header_end, body) = match (brace, semi) {
            (Some(br), Some(se)) if se < br && !code[i..se].contains('(') => (se, None),
            (Some(br), Some(se)) if se < br => {
                // `pub fn f(...) -> T;` never happens at the top level, but a tuple
                // struct `struct A(f64);` does: a `(` before the `;`.
                (se, None)
            }
            (Some(br), _) => (br, Some((br, close(b, br, b'{', b'}')))),
            (None, Some(se)) => (se, None),
            (None, None) => (b.len(), None),
        };
        let header = &code[i..header_end];
        let end = body.map_or(header_end + 1, |(_, e)| e);
        if !std::mem::take(&mut skip_next_item) {
            item(code, header, body, file, types, out);
        }
        i = end;
    }
}

fn item(
    code: &str,
    header: &str,
    body: Option<(usize, usize)>,
    file: &str,
    types: &mut BTreeSet<String>,
    out: &mut Vec<(EntryPoint, String)>,
) {
    let h = header.trim();
    let public = h.starts_with("pub ") && !h.starts_with("pub(");
    let words: Vec<&str> = h.split_whitespace().collect();
    for kw in ["struct", "enum", "trait", "type"] {
        if public {
            if let Some(k) = words.iter().position(|w| *w == kw) {
                if let Some(name) = words.get(k + 1) {
                    types.insert(word(name, 0).to_string());
                }
            }
        }
    }
    if let Some(f) = h.find("fn ").filter(|&f| f == 0 || !ident(h.as_bytes(), f)) {
        if public && !h[..f].contains("impl") {
            if let Some(ep) = function(h, f, None, file) {
                out.push((ep, String::new()));
            }
        }
        return;
    }
    if words.contains(&"mod") {
        if let Some((open, end)) = body {
            scan(&code[open + 1..end - 1], file, types, out);
        }
        return;
    }
    let Some(at) = h.find("impl") else { return };
    if at != 0 && !h.starts_with("unsafe impl") {
        return;
    }
    let Some((open, end)) = body else { return };
    // `impl<G> Trait<X> for Type<G> where ...`: drop the generics after `impl`.
    let mut rest = h[at + 4..].trim_start();
    if rest.starts_with('<') {
        let e = close(rest.as_bytes(), 0, b'<', b'>');
        rest = rest[e..].trim_start();
    }
    let rest = rest.split(" where ").next().unwrap_or(rest);
    let (trait_name, ty) = match rest.split_once(" for ") {
        Some((t, ty)) => (Some(type_name(t)), type_name(ty)),
        None => (None, type_name(rest)),
    };
    let own_trait = trait_name.as_deref().is_none_or(|t| OUR_TRAITS.contains(&t));
    // A blanket implementation (`impl<F: Fn..> OdeSystem for F`) is the caller's closure.
    let blanket = ty.len() == 1;
    if !own_trait || blanket {
        return;
    }
    let inner = &code[open + 1..end - 1];
    let ib = inner.as_bytes();
    let mut j = 0;
    let mut skip = false;
    while j < ib.len() {
        if ib[j].is_ascii_whitespace() || ib[j] == b';' {
            j += 1;
            continue;
        }
        if ib[j] == b'#' {
            let o = inner[j..].find('[').map_or(ib.len(), |o| j + o);
            let e = close(ib, o, b'[', b']');
            skip |= inner[o..e].contains("cfg(test)");
            j = e;
            continue;
        }
        let br = inner[j..].find('{').map(|o| j + o);
        let se = inner[j..].find(';').map(|o| j + o);
        let (hend, bend) = match (br, se) {
            (Some(br), Some(se)) if se < br => (se, se + 1),
            (Some(br), _) => (br, close(ib, br, b'{', b'}')),
            (None, Some(se)) => (se, se + 1),
            (None, None) => (ib.len(), ib.len()),
        };
        let mh = inner[j..hend].trim();
        let is_pub = mh.starts_with("pub ") && !mh.starts_with("pub(");
        if !std::mem::take(&mut skip) && (is_pub || trait_name.is_some()) {
            if let Some(f) = mh.find("fn ").filter(|&f| f == 0 || !ident(mh.as_bytes(), f)) {
                if let Some(ep) = function(mh, f, Some(&ty), file) {
                    out.push((ep, ty.clone()));
                }
            }
        }
        j = bend;
    }
}

/// A function header `... fn name<..>(params) -> ...` as an entry point if it takes input.
fn function(h: &str, f: usize, ty: Option<&str>, file: &str) -> Option<EntryPoint> {
    let name = word(h, f + 3);
    let open = h[f..].find('(')? + f;
    let end = close(h.as_bytes(), open, b'(', b')');
    let params = &h[open + 1..end.saturating_sub(1)];
    takes_input(params).then(|| EntryPoint {
        name: ty.map_or_else(|| name.to_string(), |t| format!("{t}::{name}")),
        file: file.to_string(),
    })
}

/// Every entry point of the workspace's crates.
pub fn entry_points(root: &Path) -> Vec<EntryPoint> {
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    let mut types = BTreeSet::new();
    let mut found = Vec::new();
    for path in files {
        if !path.components().any(|c| c.as_os_str() == "src") {
            continue;
        }
        let Ok(src) = std::fs::read_to_string(&path) else { continue };
        let rel = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        scan(&code_only(&src), &rel, &mut types, &mut found);
    }
    let mut out: Vec<EntryPoint> = found
        .into_iter()
        .filter(|(_, ty)| ty.is_empty() || types.contains(ty))
        .map(|(ep, _)| ep)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether a suite entry (`Type::name`, `module::name`, `name`, each optionally followed by
/// a space and a qualifier) covers `ep`.
pub fn covers(entry: &str, ep: &EntryPoint) -> bool {
    let head = entry.split(' ').next().unwrap_or("");
    if ep.name.contains("::") {
        head == ep.name
    } else {
        head.rsplit("::").next() == Some(ep.name.as_str())
            && !head.starts_with(|c: char| c.is_ascii_uppercase())
    }
}
