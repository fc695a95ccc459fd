//! A lab of network namespaces: one node, and one peer namespace per zone, on one bridge.
//!
//! The node namespace holds a bridge with the node's addresses, `192.0.2.1/24` and
//! `2001:db8:1::1/64`; each peer has a veth into that bridge and an address of its own. Peer `i`
//! sits in `192.0.2.(16 i + 1)` and `2001:db8:1::(16 i + 1)`, so each peer's zone can be given as
//! its own `/28` and `/124`. Every namespace is deleted when the [`Lab`] is dropped, on a panic
//! too. Only documentation addresses are used, and no traffic leaves the lab.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The node's IPv4 address in every lab.
pub const NODE_V4: &str = "192.0.2.1";
/// The node's IPv6 address in every lab.
pub const NODE_V6: &str = "2001:db8:1::1";

static LABS: AtomicUsize = AtomicUsize::new(0);

/// Runs a command, panicking with its output if it fails.
pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One peer of the lab.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its role in the test: `client`, `admin`, `camera`, …
    pub name: String,
    /// Its namespace.
    pub ns: String,
    /// Its IPv4 address.
    pub v4: String,
    /// Its IPv6 address.
    pub v6: String,
    /// Its IPv4 network (a /28).
    pub net4: String,
    /// Its IPv6 network (a /124).
    pub net6: String,
}

/// The namespaces of one test.
pub struct Lab {
    /// The node's namespace.
    pub node: String,
    /// The peers, in the order given.
    pub peers: Vec<Peer>,
}

impl Lab {
    /// Builds a lab with the named peers.
    pub fn new(names: &[&str]) -> Lab {
        let id = format!(
            "{}x{}",
            std::process::id() % 100_000,
            LABS.fetch_add(1, Ordering::SeqCst)
        );
        let node = format!("sited{id}n");
        let mut lab = Lab {
            node: node.clone(),
            peers: Vec::new(),
        };
        sh(&["ip", "netns", "add", &node]);
        lab.exec(&node, &["ip", "link", "set", "lo", "up"]);
        lab.exec(&node, &["ip", "link", "add", "br0", "type", "bridge"]);
        lab.exec(
            &node,
            &["ip", "addr", "add", &format!("{NODE_V4}/24"), "dev", "br0"],
        );
        lab.exec(
            &node,
            &[
                "ip",
                "addr",
                "add",
                &format!("{NODE_V6}/64"),
                "dev",
                "br0",
                "nodad",
            ],
        );
        lab.exec(&node, &["ip", "link", "set", "br0", "up"]);
        // ICMP errors without rate limits, so that a UDP sweep tells "closed" from "dropped".
        lab.exec(
            &node,
            &[
                "sysctl",
                "-qw",
                "net.ipv4.icmp_ratelimit=0",
                "net.ipv6.icmp.ratelimit=0",
            ],
        );
        for (i, name) in names.iter().enumerate() {
            let n = i + 1;
            let ns = format!("sited{id}p{n}");
            sh(&["ip", "netns", "add", &ns]);
            let (here, there) = (format!("sd{id}a{n}"), format!("sd{id}b{n}"));
            sh(&[
                "ip", "link", "add", &here, "type", "veth", "peer", "name", &there,
            ]);
            sh(&["ip", "link", "set", &here, "netns", &node]);
            sh(&["ip", "link", "set", &there, "netns", &ns]);
            lab.exec(&node, &["ip", "link", "set", &here, "master", "br0"]);
            lab.exec(&node, &["ip", "link", "set", &here, "up"]);
            let v4 = format!("192.0.2.{}", 16 * n + 1);
            let v6 = format!("2001:db8:1::{:x}", 16 * n + 1);
            lab.exec(&ns, &["ip", "link", "set", "lo", "up"]);
            lab.exec(
                &ns,
                &["ip", "addr", "add", &format!("{v4}/24"), "dev", &there],
            );
            lab.exec(
                &ns,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("{v6}/64"),
                    "dev",
                    &there,
                    "nodad",
                ],
            );
            lab.exec(&ns, &["ip", "link", "set", &there, "up"]);
            lab.peers.push(Peer {
                name: name.to_string(),
                ns,
                net4: format!("192.0.2.{}/28", 16 * n),
                net6: format!("2001:db8:1::{:x}/124", 16 * n),
                v4,
                v6,
            });
        }
        lab
    }

    /// The peer called `name`.
    pub fn peer(&self, name: &str) -> &Peer {
        self.peers
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no peer {name}"))
    }

    /// Runs a command in a namespace, panicking if it fails.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        let mut all = vec!["ip", "netns", "exec", ns];
        all.extend_from_slice(args);
        sh(&all)
    }

    /// Runs a command in a namespace and returns its output, whatever its status.
    pub fn try_exec(&self, ns: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .output()
            .expect("run ip netns exec")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self
            .peers
            .iter()
            .map(|p| p.ns.as_str())
            .chain([self.node.as_str()])
        {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
