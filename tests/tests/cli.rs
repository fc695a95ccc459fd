//! The command line as CI and admins use it: exit codes and the machine-readable formats.

use sited_tests::{run, stderr, stdout};

const BAD: &str = "tests/fixtures/invalid/many-problems.toml";
const WARN: &str = "tests/fixtures/invalid/empty-zone.toml";
const GOOD: &str = "tests/fixtures/valid/valt-single.toml";

#[test]
fn exit_codes_follow_the_contract() {
    assert_eq!(run(&["validate", GOOD]).status.code(), Some(0));
    assert_eq!(run(&["validate", BAD]).status.code(), Some(1));
    assert_eq!(run(&["validate", GOOD, BAD]).status.code(), Some(1));
    assert_eq!(
        run(&["validate", WARN]).status.code(),
        Some(0),
        "warnings pass without --strict"
    );
    assert_eq!(run(&["validate", "--strict", WARN]).status.code(), Some(1));
    assert_eq!(
        run(&["validate", "/nonexistent/site.toml"]).status.code(),
        Some(2)
    );
    assert_eq!(
        run(&["validate", "--format", "yaml", GOOD]).status.code(),
        Some(2)
    );
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn json_diagnostics_have_every_field() {
    let out = run(&["validate", "--format", "json", BAD, WARN]);
    let found: Vec<serde_json::Value> =
        serde_json::from_str(&stdout(&out)).expect("one JSON array");
    assert_eq!(found.len(), 7);
    let first = &found[0];
    assert_eq!(first["file"], BAD);
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(7), Some(28))
    );
    assert_eq!(
        (first["end_line"].as_u64(), first["end_column"].as_u64()),
        (Some(7), Some(44))
    );
    assert_eq!(first["severity"], "error");
    assert_eq!(first["code"], "bad-cidr");
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .contains("2001:db8::/129")
    );
    assert!(first["help"].as_str().unwrap().contains("prefix length"));
    assert_eq!(found[6]["severity"], "warning");
}

#[test]
fn github_format_prints_workflow_commands() {
    let out = run(&["validate", "--format", "github", BAD]);
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(
        lines[0],
        "::error file=tests/fixtures/invalid/many-problems.toml,line=7,col=28,endLine=7,endColumn=44,title=bad-cidr::\"2001:db8::/129\" in `networks.clients` is not a network%0Ahelp: \"129\" is not a prefix length for 2001:db8::: use 0-32 for IPv4, 0-128 for IPv6"
    );
}

#[test]
fn node_ports_as_json() {
    let out = run(&["ports", GOOD, "--node", "app-1", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let flows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let find = |dir: &str, port: u64| {
        flows
            .iter()
            .find(|f| f["direction"] == dir && f["port"].as_u64() == Some(port))
            .cloned()
    };
    let web = find("in", 80).expect("web on 80");
    assert_eq!(web["proto"], "tcp");
    assert_eq!(web["service"], "web");
    assert_eq!(web["peers"], serde_json::json!(["192.0.2.0/25"]));
    assert!(
        web["reference"]
            .as_str()
            .unwrap()
            .contains("Client to Application & Media Server(s)")
    );
    // The camera URL's own port is added to RTSP, and the licence hosts are named.
    assert!(find("out", 8554).is_some());
    let license = flows.iter().find(|f| f["service"] == "license").unwrap();
    assert_eq!(license["peers"][0], "wowzalicense-all.wowzamedia.com");
    // SSL is disabled: nothing listens on 443.
    assert!(find("in", 443).is_none());
}

#[test]
fn ports_follow_overrides() {
    let out = run(&[
        "ports",
        "tests/fixtures/valid/titop.toml",
        "--node",
        "streamer",
        "--format",
        "json",
    ]);
    let flows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let http_live: Vec<u64> = flows
        .iter()
        .filter(|f| f["service"] == "http_live")
        .filter_map(|f| f["port"].as_u64())
        .collect();
    assert_eq!(http_live, [8081]);
    let loopback: Vec<u64> = flows
        .iter()
        .filter(|f| f["peers"] == "loopback")
        .filter_map(|f| f["port"].as_u64())
        .collect();
    assert_eq!(loopback, [8089, 8087, 7002]);
}

#[test]
fn layout_markdown_reads_like_the_document() {
    let out = run(&["ports", "--layout", "valt", "--format", "markdown"]);
    let text = stdout(&out);
    assert!(text.starts_with("# VALT ports (layout `valt`)"));
    assert!(text.contains("\n## clients → application node\n"));
    assert!(text.contains("\n## application node → media node\n"));
    assert!(text.contains("| 1935 | TCP | live | Video Streaming (WS) | SSL disabled |"));
    assert!(text.contains("wowzalicense4.wowzamedia.com"));
}

#[test]
fn an_unknown_node_is_an_error() {
    let out = run(&["ports", GOOD, "--node", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("the nodes are app-1"));
}

#[test]
fn the_schema_is_json_schema_of_the_file() {
    let out = run(&["schema"]);
    let schema: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["required"], serde_json::json!(["site", "nodes"]));
    assert_eq!(schema["additionalProperties"], false);
}

#[test]
fn the_readme_documents_every_key() {
    let out = run(&["schema"]);
    let schema: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let readme = std::fs::read_to_string(sited_tests::root().join("README.md")).unwrap();
    let defs = &schema["$defs"];
    let resolve = |s: &serde_json::Value| -> serde_json::Value {
        let s = s
            .get("anyOf")
            .and_then(|a| a[0].as_object())
            .map_or(s.clone(), |o| serde_json::Value::Object(o.clone()));
        let s = s.get("items").cloned().unwrap_or(s);
        match s.get("$ref").and_then(|r| r.as_str()) {
            Some(r) => defs[r.rsplit('/').next().unwrap()].clone(),
            None => s,
        }
    };
    for (section, prop) in schema["properties"].as_object().unwrap() {
        let target = resolve(prop);
        let Some(keys) = target.get("properties").and_then(|p| p.as_object()) else {
            assert!(
                readme.contains(&format!("`[{section}] <")),
                "README lacks [{section}]"
            );
            continue;
        };
        for key in keys.keys() {
            let dotted = format!("{section}.{key}");
            let array = format!("`[[{section}]] {key}`");
            assert!(
                readme.contains(&format!("`{dotted}`"))
                    || readme.contains(&format!("`{dotted},"))
                    || readme.contains(&format!(", `{dotted}`"))
                    || readme.contains(&array),
                "README does not document {dotted}"
            );
        }
    }
}
