//! The site-file fixtures: every bad file gives its exact diagnostics, every good one none.
//!
//! `tests/fixtures/invalid/<code>.toml` exercises one diagnostic code (variants add a suffix);
//! its exact `sited validate --strict` output, line and column included, is in `<name>.expected`.
//! `SITED_BLESS=1` rewrites the `.expected` files; review the diff before committing.

use std::path::PathBuf;

use sited::config::Code;
use sited_tests::{golden, run, stderr, stdout, tests_dir};

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(tests_dir(dir))
        .expect("fixture folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn stem(p: &std::path::Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

#[test]
fn each_invalid_fixture_gives_its_exact_diagnostics() {
    let files = fixtures("fixtures/invalid");
    assert!(files.len() >= Code::ALL.len());
    for file in &files {
        let rel = file
            .strip_prefix(sited_tests::root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let name = stem(file);
        let mut args = vec!["validate", "--strict"];
        if name.starts_with("missing-file") {
            args.push("--on-node");
        }
        args.push(&rel);
        let out = run(&args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{rel} should be rejected:\n{}",
            stderr(&out)
        );
        // A variant adds a suffix to its code's name: the longest code the name starts with.
        let code = Code::ALL
            .iter()
            .map(|c| c.as_str())
            .filter(|c| name.starts_with(c))
            .max_by_key(|c| c.len())
            .unwrap_or(name.as_str());
        if name != "many-problems" {
            assert!(
                stderr(&out).contains(&format!("[{code}]:")),
                "{rel} does not report {code}:\n{}",
                stderr(&out)
            );
        }
        golden(&file.with_extension("expected"), &stderr(&out));
    }
}

#[test]
fn every_code_has_a_fixture() {
    let names: Vec<String> = fixtures("fixtures/invalid")
        .iter()
        .map(|f| stem(f))
        .collect();
    for code in Code::ALL {
        assert!(
            names.iter().any(|n| n == code.as_str()),
            "no fixture for {}",
            code.as_str()
        );
    }
}

#[test]
fn many_problems_are_reported_in_one_run() {
    let out = run(&[
        "validate",
        "tests/fixtures/invalid/many-problems.toml",
        "--format",
        "json",
    ]);
    let found: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let codes: Vec<&str> = found.iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        [
            "bad-cidr",
            "bad-address",
            "camera-credentials",
            "duplicate-camera",
            "unknown-node",
            "port-conflict"
        ]
    );
}

#[test]
fn valid_fixtures_and_the_example_pass_strictly() {
    let mut files = fixtures("fixtures/valid");
    assert!(files.len() >= 5);
    files.push(sited_tests::root().join("site.toml.example"));
    for file in files {
        let out = run(&["validate", "--strict", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}:\n{}",
            file.display(),
            stderr(&out)
        );
        assert!(stderr(&out).ends_with(": ok\n"), "{}", stderr(&out));
    }
}

#[test]
fn the_committed_schema_is_current() {
    let out = run(&["schema"]);
    assert!(out.status.success());
    golden(
        &sited_tests::root().join("daemon/site.schema.json"),
        &stdout(&out),
    );
}
