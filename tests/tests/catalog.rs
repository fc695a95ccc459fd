//! Every row of each reference document is in the catalog, and the catalog has no row that the
//! documents lack, except sited's marked decisions.
//!
//! The expectations in `tests/expectations/<layout>.toml` are a second, independent transcription
//! of the documents, written without looking at the catalog code. The comparison goes through
//! `sited ports --layout NAME --format json`, the generated documentation itself.

use std::collections::BTreeSet;

use serde::Deserialize;
use sited_tests::expectations::{INTERPRETATIONS, interpreted};
use sited_tests::{run, stdout, tests_dir};

#[derive(Deserialize)]
struct Expectations {
    row: Vec<Expected>,
}

#[derive(Deserialize)]
struct Expected {
    section: String,
    port: String,
    proto: String,
    from: Vec<String>,
    to: Vec<String>,
    conditions: Vec<String>,
}

#[derive(Deserialize)]
struct CatalogRow {
    port: serde_json::Value,
    proto: String,
    from: Vec<String>,
    to: Vec<String>,
    conditions: Vec<String>,
    decision: bool,
}

/// One atomic flow: port, protocol, one source, one destination, the sorted conditions.
type Tuple = (String, String, String, String, Vec<String>);

fn tuples(
    port: &str,
    proto: &str,
    from: &[String],
    to: &[String],
    conditions: &[String],
) -> Vec<Tuple> {
    let mut conds: Vec<String> = conditions
        .iter()
        .filter(|c| *c != "always")
        .cloned()
        .collect();
    conds.sort();
    conds.dedup();
    let mut out = Vec::new();
    for f in from {
        for t in to {
            out.push((
                port.to_string(),
                proto.to_string(),
                f.clone(),
                t.clone(),
                conds.clone(),
            ));
        }
    }
    out
}

fn compare(layout: &str) {
    let text = std::fs::read_to_string(tests_dir(&format!("expectations/{layout}.toml")))
        .expect("expectations");
    let expected: Expectations = toml::from_str(&text).expect("parse expectations");
    let out = run(&["ports", "--layout", layout, "--format", "json"]);
    assert!(out.status.success(), "sited ports failed");
    let catalog: Vec<CatalogRow> = serde_json::from_str(&stdout(&out)).expect("ports json");

    let mut have: BTreeSet<Tuple> = BTreeSet::new();
    let mut documented: BTreeSet<Tuple> = BTreeSet::new();
    for r in &catalog {
        let port = match &r.port {
            serde_json::Value::Number(n) => n.to_string(),
            other => other.as_str().unwrap_or_default().to_string(),
        };
        let ts = tuples(&port, &r.proto, &r.from, &r.to, &r.conditions);
        if !r.decision {
            documented.extend(ts.iter().cloned());
        }
        have.extend(ts);
    }
    let excused = |t: &Tuple| interpreted(layout, &t.0, &t.2, &t.3);
    let mut wanted: BTreeSet<Tuple> = BTreeSet::new();
    let mut missing = Vec::new();
    for e in &expected.row {
        for t in tuples(&e.port, &e.proto, &e.from, &e.to, &e.conditions) {
            if !excused(&t) && !have.contains(&t) {
                missing.push(format!("{t:?} (section \"{}\")", e.section));
            }
            wanted.insert(t);
        }
    }
    let extra: Vec<String> = documented
        .iter()
        .filter(|t| !wanted.contains(t))
        .filter(|t| {
            // A row sited moved on purpose stands in for the excused one.
            !INTERPRETATIONS
                .iter()
                .any(|(l, p, _, _, _)| *l == layout && *p == t.0)
        })
        .map(|t| format!("{t:?}"))
        .collect();
    assert!(
        missing.is_empty(),
        "{layout}: rows of the document missing from the catalog:\n{}",
        missing.join("\n")
    );
    assert!(
        extra.is_empty(),
        "{layout}: catalog rows that the document does not have:\n{}",
        extra.join("\n")
    );
    assert!(!expected.row.is_empty());
}

#[test]
fn valt_catalog_matches_its_document() {
    compare("valt");
}

#[test]
fn titop_catalog_matches_its_document() {
    compare("titop");
}

#[test]
fn novavms_catalog_matches_its_document() {
    compare("novavms");
}
