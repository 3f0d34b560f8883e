//! The crate's module graph has no import cycle and keeps its layers (see `shared/src/lib.rs`).
//!
//! Edges are the `crate::…` and `super::…` paths of each file's non-test code, resolved to the longest module
//! they name (a parent's `mod`/`pub use` of its children declares, it does not depend).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn modules(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(root)
                    .expect("under src")
                    .with_extension("");
                let mut parts: Vec<String> = rel
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                    parts.pop();
                }
                let src = std::fs::read_to_string(&path).expect("read file");
                let code = match src.find("#[cfg(test)]\nmod tests") {
                    Some(i) => src[..i].to_string(),
                    None => src,
                };
                out.insert(parts.join("::"), code);
            }
        }
    }
    out
}

fn resolve(names: &BTreeSet<&str>, path: &str) -> Option<String> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    (1..=segs.len())
        .rev()
        .map(|i| segs[..i].join("::"))
        .find(|cand| names.contains(cand.as_str()))
}

/// The module paths a line of code names after `prefix` (`crate::a::b`, `crate::a::{b, c::d}`).
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let base = rest[..end].trim_end_matches(':').to_string();
        if rest[end..].starts_with('{') && rest[..end].ends_with("::") {
            let close = rest[end..].find('}').map_or(rest.len(), |j| end + j);
            for item in rest[end + 1..close].split([',', ' ', '\n']) {
                let item = item.split(" as ").next().unwrap_or("").trim();
                if !item.is_empty() {
                    out.push(format!("{base}::{item}"));
                }
            }
        }
        out.push(base);
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&root);
    let names: BTreeSet<&str> = mods.keys().map(String::as_str).collect();
    let mut edges = BTreeMap::new();
    for (m, code) in &mods {
        let mut to = BTreeSet::new();
        for p in paths_after(code, "crate::") {
            if let Some(r) = resolve(&names, &p) {
                to.insert(r);
            }
        }
        let parent = m.rsplit_once("::").map_or("", |(p, _)| p);
        for p in paths_after(code, "super::") {
            let full = if parent.is_empty() {
                p
            } else {
                format!("{parent}::{p}")
            };
            if let Some(r) = resolve(&names, &full) {
                to.insert(r);
            }
        }
        to.remove(m);
        to.remove("");
        edges.insert(m.clone(), to);
    }
    edges
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        for w in &s.edges[v] {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.stack.contains(&w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.found.push(comp);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

#[test]
fn the_module_graph_has_no_cycle() {
    let found = cycles(&graph());
    assert!(found.is_empty(), "import cycles: {found:?}");
}

#[test]
fn the_finder_names_a_cycle() {
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    edges.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(cycles(&edges), vec![vec!["a".to_string(), "b".to_string()]]);
}

#[test]
fn each_layer_imports_only_from_layers_below_it() {
    // Which top-level modules each layer may name besides itself.
    let domain = ["intake", "stock", "orders", "finance", "recon", "archive"];
    let allowed = |from: &str, to: &str| -> bool {
        match from {
            "core" => false,
            "config" => to == "core",
            "events" => matches!(to, "core" | "config"),
            f if domain.contains(&f) => {
                // The domain reaches Centra and Cloudshelf through their clients, never AWS, the wiring or the
                // operators' tools built on top of it.
                !matches!(to, "adapters" | "wiring" | "lambda" | "ops")
            }
            _ => true,
        }
    };
    let mut broken = Vec::new();
    for (m, to) in graph() {
        for t in to {
            let (a, b) = (top(&m), top(&t));
            if a != b && !allowed(a, b) {
                broken.push(format!("{m} -> {t}"));
            }
        }
    }
    assert!(broken.is_empty(), "layer rule broken: {broken:#?}");
}
