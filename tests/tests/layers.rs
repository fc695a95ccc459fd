//! The layers of the `sited` crate import only downward.
//!
//! The order is the crate map in `daemon/src/lib.rs`: every top-level module of `daemon/src` is
//! a layer, and a file of a layer may name (`crate::x`, `use crate::{x, …}`) only the layers
//! listed before its own. A new module must be placed in [`ORDER`] before it can be used.

use std::path::Path;

/// The layers, bottom first.
const ORDER: &[&str] = &[
    "base",
    "system",
    "catalog",
    "config",
    "plan",
    "state",
    "firewall",
    "store",
    "auth",
    "media",
    "nodes",
    "web",
    "reconcile",
    "cmd",
];

/// Every `crate::<name>` a source text names, with its line, comments left out.
fn named_layers(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = &rest[..at];
            rest = &rest[at + "crate::".len()..];
            if before.ends_with('$') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let name = item.trim().split("::").next().unwrap_or("").trim();
                    if !name.is_empty() {
                        out.push((n + 1, name.to_string()));
                    }
                }
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push((n + 1, name));
        }
    }
    out
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read source folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_import_runs_upward() {
    let src = sited_tests::root().join("daemon/src");
    let mut violations = Vec::new();
    let mut all = Vec::new();
    files(&src, &mut all);
    for path in all {
        let rel = path.strip_prefix(&src).expect("under src");
        let Some(layer) = rel.components().next().and_then(|c| c.as_os_str().to_str()) else {
            continue;
        };
        let layer = layer.trim_end_matches(".rs");
        if matches!(layer, "lib" | "main") {
            continue;
        }
        let Some(rank) = ORDER.iter().position(|l| *l == layer) else {
            violations.push(format!(
                "{}: module `{layer}` is not a layer of ORDER",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&path).expect("read source");
        for (line, name) in named_layers(&text) {
            if name == layer || name == "bail" || name == "err" || name == "skip_unless" {
                continue;
            }
            match ORDER.iter().position(|l| *l == name) {
                Some(r) if r < rank => {}
                Some(_) => violations.push(format!(
                    "{}:{line}: layer `{layer}` imports `{name}`, which lies above it",
                    rel.display()
                )),
                None => violations.push(format!(
                    "{}:{line}: `crate::{name}` is not a layer",
                    rel.display()
                )),
            }
        }
    }
    assert!(
        violations.is_empty(),
        "upward imports:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scanner_sees_groups_and_paths() {
    let found = named_layers(
        "use crate::{media::hub, web};\nlet x = crate::plan::plan(); // crate::cmd\n$crate::base::x",
    );
    let names: Vec<&str> = found.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["media", "web", "plan"]);
}
