//! The second transcription of the reference documents (`tests/expectations/<layout>.toml`), and
//! what it says a node should let in.
//!
//! This is written apart from the catalog code, on purpose: where it and the catalog disagree, a
//! test fails. [`INTERPRETATIONS`] lists the places where sited reads a document differently on
//! purpose, and [`DECISIONS`] the inbound flows sited adds where a document is silent; both are
//! explained in the catalog's layout modules.

use std::collections::BTreeSet;

use serde::Deserialize;

/// One layout's expectations.
#[derive(Debug, Deserialize)]
pub struct Expectations {
    /// The rows.
    pub row: Vec<Expected>,
}

/// One row of a reference document.
#[derive(Debug, Clone, Deserialize)]
pub struct Expected {
    /// The document's section.
    pub section: String,
    /// `"80"` or `"49152-49252"`.
    pub port: String,
    /// `tcp` or `udp`.
    pub proto: String,
    /// Who connects.
    pub from: Vec<String>,
    /// Who accepts.
    pub to: Vec<String>,
    /// All must hold.
    pub conditions: Vec<String>,
}

/// Flows sited opens only on a node that needs them, though the document says "always":
/// (layout, port, from, to, the condition that opens them).
pub const NODE_CONDITIONS: &[(&str, &str, &str, &str, &str)] = &[(
    "novavms",
    "554",
    "cameras",
    "media",
    // Camera -> gateway RTSP serves cameras that push: shut on a node none of whose cameras does.
    "push_cameras",
)];

/// Where sited reads a document differently, on purpose: (layout, port, from, to, why).
pub const INTERPRETATIONS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "titop",
        "8087",
        "loopback",
        "application",
        "the streaming engine (tts) is sited's media role",
    ),
    (
        "titop",
        "1935",
        "clients",
        "application",
        "the streaming engine (tts) is sited's media role",
    ),
    (
        "titop",
        "8080",
        "clients",
        "application",
        "the streaming engine (tts) is sited's media role",
    ),
    (
        "titop",
        "8086",
        "clients",
        "application",
        "VOD is served where the recordings are: the media role",
    ),
    (
        "novavms",
        "49152-49252",
        "internet",
        "application",
        "the bullet names browsers as the TURN peers",
    ),
    (
        "novavms",
        "49152-49252",
        "application",
        "internet",
        "the bullet names browsers as the TURN peers",
    ),
];

/// One inbound flow: (layout, port, proto, from, to, conditions).
pub type Flow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

/// Inbound flows sited adds where a document is silent.
pub const DECISIONS: &[Flow] = &[
    ("titop", "1935", "tcp", "mobile", "media", &["mobile"]),
    (
        "titop",
        "8088",
        "tcp",
        "media",
        "application",
        &["multi_node"],
    ),
    (
        "titop",
        "8087",
        "tcp",
        "application",
        "media",
        &["multi_node"],
    ),
];

/// Whether sited reads this (layout, port, from, to) differently on purpose.
pub fn interpreted(layout: &str, port: &str, from: &str, to: &str) -> bool {
    INTERPRETATIONS
        .iter()
        .any(|(l, p, f, t, _)| *l == layout && *p == port && *f == from && *t == to)
}

/// Loads a layout's expectations.
pub fn load(layout: &str) -> Expectations {
    let text = std::fs::read_to_string(crate::tests_dir(&format!("expectations/{layout}.toml")))
        .expect("expectations");
    toml::from_str(&text).expect("parse expectations")
}

/// The facts of a site that conditions read.
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// `ssl = "enabled"`.
    pub ssl: bool,
    /// `admin = true`.
    pub admin: bool,
    /// `mobile = true`.
    pub mobile: bool,
    /// `license = "electronic"`.
    pub license_electronic: bool,
    /// `integration = true`.
    pub integration: bool,
    /// More than one node.
    pub multi_node: bool,
    /// A camera of the node pushes (NovaVMS).
    pub push_cameras: bool,
}

impl Features {
    fn hold(&self, c: &str) -> bool {
        match c {
            "always" => true,
            "ssl_disabled" => !self.ssl,
            "ssl_enabled" => self.ssl,
            "admin" => self.admin,
            "mobile" => self.mobile,
            "license_electronic" => self.license_electronic,
            "integration" => self.integration,
            "multi_node" => self.multi_node,
            "push_cameras" => self.push_cameras,
            _ => false, // dev_only, planned, loopback_only: never from outside
        }
    }
}

/// A port or range as `(lo, hi)`.
pub fn range(port: &str) -> (u16, u16) {
    match port.split_once('-') {
        Some((lo, hi)) => (lo.trim().parse().unwrap(), hi.trim().parse().unwrap()),
        None => {
            let p = port.trim().parse().unwrap();
            (p, p)
        }
    }
}

/// What a peer in zone (or of role) `from` may open on a node with `roles`: `(proto, lo, hi)`.
pub fn inbound(
    layout: &str,
    f: &Features,
    roles: &[&str],
    from: &str,
) -> BTreeSet<(String, u16, u16)> {
    let mut out = BTreeSet::new();
    let e = load(layout);
    for row in &e.row {
        if !row.conditions.iter().all(|c| f.hold(c)) || !row.from.iter().any(|x| x == from) {
            continue;
        }
        for to in row.to.iter().filter(|t| roles.contains(&t.as_str())) {
            let shut = NODE_CONDITIONS.iter().any(|(l, p, f_, t, c)| {
                *l == layout && *p == row.port && *f_ == from && t == to && !f.hold(c)
            });
            if !interpreted(layout, &row.port, from, to) && !shut {
                let (lo, hi) = range(&row.port);
                out.insert((row.proto.clone(), lo, hi));
            }
        }
    }
    // The interpretations move a flow to the media role.
    for (l, port, f_, to, _) in INTERPRETATIONS {
        if *l == layout
            && *f_ == from
            && *to == "application"
            && roles.contains(&"media")
            && from != "loopback"
        {
            for row in e
                .row
                .iter()
                .filter(|r| r.port == *port && r.from.iter().any(|x| x == from))
            {
                if row.conditions.iter().all(|c| f.hold(c)) {
                    let (lo, hi) = range(port);
                    out.insert((row.proto.clone(), lo, hi));
                }
            }
        }
    }
    for (l, port, proto, f_, to, conds) in DECISIONS {
        if *l == layout && *f_ == from && roles.contains(to) && conds.iter().all(|c| f.hold(c)) {
            let (lo, hi) = range(port);
            out.insert((proto.to_string(), lo, hi));
        }
    }
    out
}

/// Every UDP port any document names, for the UDP sweep.
pub fn all_udp_ports() -> BTreeSet<u16> {
    let mut out = BTreeSet::new();
    for layout in ["valt", "titop", "novavms"] {
        for row in load(layout).row.iter().filter(|r| r.proto == "udp") {
            let (lo, hi) = range(&row.port);
            out.extend([lo, hi, lo + (hi - lo) / 2]);
        }
    }
    out
}
