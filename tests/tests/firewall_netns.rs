//! The firewall, proven in network namespaces: for every layout, ssl mode and feature set, every
//! expected flow passes and every other port is closed, from every peer.
//!
//! Privileged: skipped with a reason unless run as root. Each layout builds one lab (a node and
//! six peers: client, admin, camera, mobile, another node, an outsider), applies one site after
//! another with `sited apply`, and sweeps the node from every peer with nmap: all 65535 TCP ports
//! over IPv4 and IPv6, and the documents' UDP ports plus a sample of others. A port "passes" when
//! the node answers (SYN-ACK, RST, ICMP port unreachable); the firewall's drop answers nothing.
//! The expectations come from the second transcription in `tests/expectations/`, not from the
//! catalog code.

use std::collections::BTreeSet;

use sited_tests::expectations::{self, Features};
use sited_tests::netns::{Lab, NODE_V4, NODE_V6};
use sited_tests::{require_root, sited};

const PEERS: [&str; 6] = ["client", "admin", "camera", "mobile", "node", "outsider"];
const UDP_SAMPLE: [u16; 18] = [
    1, 67, 68, 161, 500, 514, 1900, 3477, 3479, 5353, 7001, 7003, 8554, 8556, 49151, 49253, 60000,
    65535,
];

#[derive(Debug, Clone)]
struct Combo {
    ssl: bool,
    features: Features,
    /// `both` for a single server; `application` or `media` with a second node of the other role.
    role: &'static str,
}

fn combos() -> Vec<Combo> {
    let mut out = Vec::new();
    for ssl in [false, true] {
        let base = Features {
            ssl,
            ..Features::default()
        };
        let mut add = |features: Features, role| {
            out.push(Combo {
                ssl,
                features,
                role,
            })
        };
        add(base.clone(), "both");
        add(
            Features {
                admin: true,
                ..base.clone()
            },
            "both",
        );
        add(
            Features {
                mobile: true,
                ..base.clone()
            },
            "both",
        );
        add(
            Features {
                license_electronic: true,
                ..base.clone()
            },
            "both",
        );
        add(
            Features {
                integration: true,
                ..base.clone()
            },
            "both",
        );
        add(
            Features {
                multi_node: true,
                ..base.clone()
            },
            "application",
        );
        if !ssl {
            add(
                Features {
                    push_cameras: true,
                    ..base.clone()
                },
                "both",
            );
        }
        add(
            Features {
                multi_node: true,
                ..base.clone()
            },
            "media",
        );
    }
    out
}

fn site(lab: &Lab, layout: &str, c: &Combo) -> String {
    let nets = |name: &str| {
        let p = lab.peer(name);
        format!("[\"{}\", \"{}\"]", p.net4, p.net6)
    };
    let f = &c.features;
    let roles = match c.role {
        "both" => "[\"application\", \"media\"]",
        "application" => "[\"application\"]",
        _ => "[\"media\"]",
    };
    let mut text = format!(
        "[site]\nname = \"lab\"\nlayout = \"{layout}\"\nssl = \"{}\"\n\n[networks]\nclients = {}\nadmins = {}\ncameras = {}\nmobile = {}\n\n[features]\nadmin = {}\nmobile = {}\nlicense = \"{}\"\nintegration = {}\n\n[[nodes]]\nname = \"n\"\naddress = \"{NODE_V4}\"\nroles = {roles}\n",
        if c.ssl { "enabled" } else { "disabled" },
        nets("client"),
        nets("admin"),
        nets("camera"),
        nets("mobile"),
        f.admin,
        f.mobile,
        if f.license_electronic {
            "electronic"
        } else {
            "none"
        },
        f.integration,
    );
    if c.role != "both" {
        let other = if c.role == "application" {
            "media"
        } else {
            "application"
        };
        text.push_str(&format!(
            "\n[[nodes]]\nname = \"peer\"\naddress = \"{}\"\nroles = [\"{other}\"]\n",
            lab.peer("node").v4
        ));
    }
    let media = if c.role == "application" { "peer" } else { "n" };
    text.push_str(&format!(
        "\n[[cameras]]\nname = \"cam\"\nurl = \"rtsp://{}/s\"\nnode = \"{media}\"\n",
        lab.peer("camera").v4
    ));
    if f.push_cameras && layout == "novavms" {
        text.push_str(&format!(
            "\n[[cameras]]\nname = \"door\"\npush = true\nusername = \"door\"\npassword_file = \"/etc/sited/door\"\nnode = \"{media}\"\n"
        ));
    }
    text
}

/// The ports that answered an nmap sweep, from its greppable output.
fn answered(grepable: &str) -> BTreeSet<u16> {
    let mut out = BTreeSet::new();
    for line in grepable.lines().filter(|l| l.contains("Ports:")) {
        let ports = line
            .split("Ports:")
            .nth(1)
            .unwrap_or("")
            .split('\t')
            .next()
            .unwrap_or("");
        for entry in ports.split(',') {
            let fields: Vec<&str> = entry.trim().split('/').collect();
            if fields.len() > 2 && (fields[1] == "open" || fields[1] == "closed") {
                out.insert(fields[0].parse().unwrap());
            }
        }
    }
    out
}

fn nmap(lab: &Lab, ns: &str, v6: bool, udp: bool, ports: &str, careful: bool) -> BTreeSet<u16> {
    let target = if v6 { NODE_V6 } else { NODE_V4 };
    let mut args = vec!["nmap", "-n", "-Pn", "-oG", "-", "-p", ports];
    args.push(if udp { "-sU" } else { "-sS" });
    if v6 {
        args.push("-6");
    }
    if careful {
        args.extend(["--max-retries", "3"]);
    } else {
        args.extend([
            "--min-rate",
            "100000",
            "--max-retries",
            "0",
            "--max-rtt-timeout",
            "100ms",
            "--initial-rtt-timeout",
            "50ms",
        ]);
    }
    args.push(target);
    let out = lab.exec(ns, &args);
    answered(&String::from_utf8_lossy(&out.stdout))
}

fn expand(set: &BTreeSet<(String, u16, u16)>, proto: &str) -> BTreeSet<u16> {
    set.iter()
        .filter(|(p, _, _)| p == proto)
        .flat_map(|(_, lo, hi)| *lo..=*hi)
        .collect()
}

/// Sweeps the node from one peer, both families; returns the mismatches.
fn sweep(lab: &Lab, layout: &str, c: &Combo, peer: &str, udp_ports: &BTreeSet<u16>) -> Vec<String> {
    let node_roles: Vec<&str> = match c.role {
        "both" => vec!["application", "media"],
        r => vec![r],
    };
    let from = match peer {
        "client" => Some("clients"),
        "admin" => Some("admins"),
        "camera" => Some("cameras"),
        "mobile" => Some("mobile"),
        "node" if c.role == "application" => Some("media"),
        "node" if c.role == "media" => Some("application"),
        _ => None,
    };
    let expected = from
        .map(|f| expectations::inbound(layout, &c.features, &node_roles, f))
        .unwrap_or_default();
    let ns = &lab.peer(peer).ns;
    let udp_list = udp_ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut problems = Vec::new();
    for v6 in [false, true] {
        // The other node is known to the site by its IPv4 address only.
        let want_any = !(v6 && peer == "node");
        for (proto, udp) in [("tcp", false), ("udp", true)] {
            let mut want = if want_any {
                expand(&expected, proto)
            } else {
                BTreeSet::new()
            };
            if udp {
                want.retain(|p| udp_ports.contains(p));
            }
            let mut got = nmap(
                lab,
                ns,
                v6,
                udp,
                if udp { &udp_list } else { "1-65535" },
                false,
            );
            // A fast sweep may lose a probe; look again, carefully, at what should have answered.
            let lost: Vec<String> = want.difference(&got).map(u16::to_string).collect();
            if !lost.is_empty() {
                got.extend(nmap(lab, ns, v6, udp, &lost.join(","), true));
            }
            if got != want {
                let family = if v6 { "IPv6" } else { "IPv4" };
                problems.push(format!(
                    "{layout} {c:?}: from {peer} over {family} {proto}: open {:?}, expected {:?}",
                    got.difference(&want).collect::<Vec<_>>(),
                    want.difference(&got).collect::<Vec<_>>()
                ));
            }
        }
    }
    problems
}

fn prove(layout: &str) {
    require_root!("nft", "nmap");
    let lab = Lab::new(&PEERS);
    let dir = std::env::temp_dir().join(format!("sited-fw-{layout}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut udp_ports = expectations::all_udp_ports();
    udp_ports.extend(UDP_SAMPLE);
    let mut problems = Vec::new();
    // Only NovaVMS has cameras that push.
    for c in combos()
        .into_iter()
        .filter(|c| layout == "novavms" || !c.features.push_cameras)
    {
        let file = dir.join("site.toml");
        std::fs::write(&file, site(&lab, layout, &c)).unwrap();
        let state = dir.join("state");
        let out = lab.try_exec(
            &lab.node,
            &[
                sited().to_str().unwrap(),
                "apply",
                file.to_str().unwrap(),
                "--node",
                "n",
                "--state-dir",
                state.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{layout} {c:?}: apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let found: Vec<Vec<String>> = std::thread::scope(|s| {
            let handles: Vec<_> = PEERS
                .iter()
                .map(|p| {
                    let (lab, c, u) = (&lab, &c, &udp_ports);
                    s.spawn(move || sweep(lab, layout, c, p, u))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        problems.extend(found.into_iter().flatten());
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        problems.is_empty(),
        "{} mismatches:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn valt_firewall_lets_in_exactly_the_documented_flows() {
    prove("valt");
}

#[test]
fn titop_firewall_lets_in_exactly_the_documented_flows() {
    prove("titop");
}

#[test]
fn novavms_firewall_lets_in_exactly_the_documented_flows() {
    prove("novavms");
}
