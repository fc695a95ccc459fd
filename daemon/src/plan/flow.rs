//! A node's flows: the catalog rows that apply to one node of one site, with their peers resolved.
//!
//! A row from `A` to `B` is an inbound flow on every node that is a `B`, and an outbound flow on
//! every node that is an `A`. Peers that are nodes are the *other* nodes with the right role, so a
//! row between roles is empty on a single server. Camera flows take their ports from the node's
//! cameras: RTSP adds each camera URL's own port (322 for `rtsps` without one), and ONVIF is each camera's `onvif_port`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::catalog::{self, Endpoint, Ports, Proto, Roles, Row, Service, Zone};
use crate::config::{Node, Site};

/// Which way a flow goes, seen from the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Into this node: it listens.
    In,
    /// Out of this node: it connects.
    Out,
}

/// Who is on the other side of a flow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peers {
    /// A zone of the site, with its networks.
    Zone(Zone, Vec<IpNet>),
    /// The other nodes that have these roles.
    Nodes(Roles, Vec<(String, IpAddr)>),
    /// This node itself.
    Loopback,
    /// Named hosts, resolved when the firewall is applied.
    Hosts(&'static [&'static str]),
    /// Anywhere.
    Any,
}

impl Peers {
    /// The peers as the JSON port table writes them: CIDRs, `"loopback"`, or host names.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Peers::Zone(_, nets) => json!(nets.iter().map(ToString::to_string).collect::<Vec<_>>()),
            Peers::Nodes(_, nodes) => {
                json!(
                    nodes
                        .iter()
                        .map(|(_, a)| IpNet::from(*a).to_string())
                        .collect::<Vec<_>>()
                )
            }
            Peers::Loopback => json!("loopback"),
            Peers::Hosts(hosts) => json!(hosts),
            Peers::Any => json!(["0.0.0.0/0", "::/0"]),
        }
    }

    /// A short name for tables: the zone, the role, `loopback`, …
    pub fn describe(&self) -> String {
        match self {
            Peers::Zone(z, nets) if nets.is_empty() => format!("{} (empty)", z.name()),
            Peers::Zone(z, _) => z.name().to_string(),
            Peers::Nodes(_, nodes) => nodes
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            Peers::Loopback => "loopback".to_string(),
            Peers::Hosts(h) => h.join(", "),
            Peers::Any => "internet".to_string(),
        }
    }
}

/// One catalog row, resolved for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// In or out.
    pub direction: Direction,
    /// The protocol.
    pub proto: Proto,
    /// The ports, after overrides; several only for camera flows.
    pub ports: Vec<Ports>,
    /// The other side.
    pub peers: Peers,
    /// The catalog row.
    pub row: &'static Row,
}

impl Flow {
    /// The service behind the flow.
    pub fn service(&self) -> Service {
        self.row.service
    }
}

fn peers(site: &Site, node: &Node, end: Endpoint) -> Option<Peers> {
    Some(match end {
        Endpoint::Zone(z) => Peers::Zone(z, site.zone(z).to_vec()),
        Endpoint::Node(roles) => {
            let others: Vec<(String, IpAddr)> = site
                .nodes
                .iter()
                .filter(|n| n.name != node.name && n.roles.meets(roles))
                .map(|n| (n.name.clone(), n.address))
                .collect();
            if others.is_empty() {
                return None;
            }
            Peers::Nodes(roles, others)
        }
        Endpoint::Loopback => Peers::Loopback,
        Endpoint::Hosts(h) => Peers::Hosts(h),
        Endpoint::Internet => Peers::Any,
    })
}

fn ports(site: &Site, node: &Node, row: &Row) -> Vec<Ports> {
    let cameras = site.cameras_of(&node.name);
    let set: BTreeSet<Ports> = match row.service {
        Service::CameraRtsp => cameras
            .filter(|c| !c.push)
            .map(|c| Ports::one(c.port))
            .chain([site.ports_of(row)])
            .collect(),
        // Cameras push to a node only if one of its cameras pushes: else the port stays shut.
        Service::CameraPush if !site.cameras_of(&node.name).any(|c| c.push) => BTreeSet::new(),
        Service::CameraOnvif => cameras
            .filter_map(|c| c.onvif_port)
            .map(Ports::one)
            .collect(),
        _ => [site.ports_of(row)].into(),
    };
    set.into_iter().collect()
}

/// Every flow of a node, in catalog order.
pub fn flows(site: &Site, node: &Node) -> Vec<Flow> {
    let mut out = Vec::new();
    for row in catalog::rows(site.layout) {
        if !row.in_production() || !site.applies(row) {
            continue;
        }
        let sides = [
            (Direction::In, row.to, row.from),
            (Direction::Out, row.from, row.to),
        ];
        for (direction, here, there) in sides {
            let Endpoint::Node(roles) = here else {
                continue;
            };
            if !node.roles.meets(roles) {
                continue;
            }
            let Some(peers) = peers(site, node, there) else {
                continue;
            };
            let ports = ports(site, node, row);
            if ports.is_empty() {
                continue;
            }
            out.push(Flow {
                direction,
                proto: row.proto,
                ports,
                peers,
                row,
            });
        }
    }
    out
}

/// The columns of a node's port table, in order.
pub const COLUMNS: [&str; 7] = [
    "direction",
    "proto",
    "port",
    "peers",
    "service",
    "purpose",
    "reference",
];

/// One flow as the cells of its row under [`COLUMNS`]: the one rendering that `sited ports`,
/// the Ports page and the JSON table share, so that they cannot disagree. Ports are joined by
/// `", "`, and every reference the row cites is given, joined by `"; "`.
pub fn cells(f: &Flow) -> [String; 7] {
    [
        match f.direction {
            Direction::In => "in".into(),
            Direction::Out => "out".into(),
        },
        f.proto.to_string(),
        f.ports
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        f.peers.describe(),
        f.service().to_string(),
        f.row.purpose.to_string(),
        references(f),
    ]
}

/// Every reference a flow's row cites, joined by `"; "`.
fn references(f: &Flow) -> String {
    f.row
        .references
        .iter()
        .map(|r| r.cite())
        .collect::<Vec<_>>()
        .join("; ")
}

/// How much of the peers a JSON port table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peering {
    /// The networks and addresses themselves (the CLI, admins).
    Networks,
    /// Zones by name only: a viewer does not learn the site's networks (issue 16 §2).
    ZoneNames,
}

/// The flows as the JSON port table: one object per port, as `sited ports --format json` and
/// `GET /api/v1/ports` print them.
pub fn json_rows(flows: &[Flow], peering: Peering) -> Vec<serde_json::Value> {
    flows
        .iter()
        .flat_map(|f| {
            f.ports.iter().map(move |p| {
                serde_json::json!({
                    "direction": f.direction,
                    "proto": f.proto,
                    "port": p,
                    "peers": match (&f.peers, peering) {
                        (Peers::Zone(z, _), Peering::ZoneNames) => serde_json::json!([z.name()]),
                        (peers, _) => peers.to_json(),
                    },
                    "service": f.service(),
                    "purpose": f.row.purpose,
                    "reference": references(f),
                })
            })
        })
        .collect()
}
