//! `sited render nftables` and `sited plan`: golden snapshots and exit codes; no root needed.
//!
//! Each valid fixture has one snapshot per node and format in `tests/snapshots/`. `SITED_BLESS=1`
//! rewrites them; review the diff before committing.

use sited_tests::{golden, run, stderr, stdout, tests_dir};

fn nodes(fixture: &str) -> Vec<String> {
    let text = std::fs::read_to_string(tests_dir(fixture)).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_valid_fixture_renders_to_its_snapshot() {
    let mut count = 0;
    for entry in std::fs::read_dir(tests_dir("fixtures/valid")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let rel = format!("tests/fixtures/valid/{stem}.toml");
        for node in nodes(&format!("fixtures/valid/{stem}.toml")) {
            for (format, ext) in [("text", "nft"), ("json", "json")] {
                let out = run(&[
                    "render", "nftables", &rel, "--node", &node, "--format", format,
                ]);
                assert!(out.status.success(), "{rel} {node}: {}", stderr(&out));
                let again = run(&[
                    "render", "nftables", &rel, "--node", &node, "--format", format,
                ]);
                assert_eq!(
                    out.stdout, again.stdout,
                    "{rel} {node} {format}: not deterministic"
                );
                golden(
                    &tests_dir(&format!("snapshots/{stem}.{node}.{ext}")),
                    &stdout(&out),
                );
                count += 1;
            }
        }
    }
    assert!(count >= 16);
}

#[test]
fn plan_exit_codes_follow_terraform() {
    let single = "tests/fixtures/valid/valt-single.toml";
    let same = run(&["plan", single, "--node", "app-1", "--against", single]);
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
    assert_eq!(stdout(&same), "No changes.\n");
    let fresh = run(&["plan", single, "--node", "app-1"]);
    assert_eq!(fresh.status.code(), Some(2));
    assert!(stdout(&fresh).contains("+ listener web tcp 80"));
    let bad = run(&[
        "plan",
        "tests/fixtures/invalid/bad-cidr.toml",
        "--node",
        "app-1",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let nonode = run(&["plan", single, "--node", "nope"]);
    assert_eq!(nonode.status.code(), Some(1));
}

#[test]
fn plan_shows_rules_elements_listeners_and_cameras() {
    let dir = std::env::temp_dir().join(format!("sited-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let old = std::fs::read_to_string(tests_dir("fixtures/valid/valt-single.toml")).unwrap();
    let new = old
        .replace(
            "admins = [\"192.0.2.128/25\"]",
            "admins = [\"198.51.100.128/25\"]",
        )
        .replace("mobile = true", "mobile = false")
        .replace("name = \"yard\"", "name = \"garden\"")
        + "\n[ports]\ndownloads = 8001\n";
    let new_path = dir.join("new.toml");
    std::fs::write(&new_path, new).unwrap();
    let out = run(&[
        "plan",
        new_path.to_str().unwrap(),
        "--node",
        "app-1",
        "--against",
        "tests/fixtures/valid/valt-single.toml",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "- element admins_v4: 192.0.2.128/25",
        "+ element admins_v4: 198.51.100.128/25",
        "- rule from_mobile: tcp dport 1935 accept",
        "~ listener downloads tcp 8000 -> downloads tcp 8001",
        "- camera yard (rtsp://198.51.100.22:8554/live)",
        "+ camera garden (rtsp://198.51.100.22:8554/live)",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
