//! Planning: what one node of a site should look like, as plain data.
//!
//! [`plan`] is a pure function of `(Site, node name)`: no I/O, no clock. Its [`Plan`] holds the
//! node's flows, its listeners, the cameras it ingests, the TLS material it needs and its
//! firewall ruleset; the apply layer makes the system match it, and [`diff`] compares two plans
//! for reconcile and `sited plan`.

pub mod check;
pub mod diff;
pub mod flow;
pub mod listener;
pub mod ruleset;

use std::net::IpAddr;

pub use check::check;
pub use diff::Change;
pub use flow::{Direction, Flow, Peers, flows};
pub use listener::{Bind, Listener, listeners};

use crate::catalog::{Layout, Roles};
use crate::config::site::{Egress, TlsFiles};
use crate::config::{Camera, Node, Site};
pub use ruleset::Ruleset;

/// Where a node's TLS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// No listener of the node speaks TLS.
    None,
    /// The files of `[tls]`.
    Files(TlsFiles),
    /// A certificate generated once on the node, for these names and addresses.
    SelfSigned(Vec<String>),
}

/// Everything one node should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The site's name.
    pub site: String,
    /// The site's layout.
    pub layout: Layout,
    /// This node.
    pub node: Node,
    /// The other nodes.
    pub peers: Vec<Node>,
    /// The node's flows.
    pub flows: Vec<Flow>,
    /// The node's listeners.
    pub listeners: Vec<Listener>,
    /// The cameras the node ingests.
    pub cameras: Vec<Camera>,
    /// The TLS material the node needs.
    pub tls: Tls,
    /// The firewall.
    pub ruleset: Ruleset,
}

/// Plans one node of a site; `None` if the site has no such node.
pub fn plan(site: &Site, node: &str) -> Option<Plan> {
    let node = site.node(node)?.clone();
    let flows = flows(site, &node);
    let listeners = listeners(site, &node);
    let ruleset = ruleset::build(site.layout, &flows, site.egress == Egress::Documented);
    let tls = if !listeners.iter().any(|l| l.tls) {
        Tls::None
    } else if let Some(files) = &site.tls {
        Tls::Files(files.clone())
    } else {
        Tls::SelfSigned(vec![
            site.name.clone(),
            node.name.clone(),
            node.address.to_string(),
        ])
    };
    Some(Plan {
        site: site.name.clone(),
        layout: site.layout,
        peers: site
            .nodes
            .iter()
            .filter(|n| n.name != node.name)
            .cloned()
            .collect(),
        cameras: site.cameras_of(&node.name).cloned().collect(),
        flows,
        listeners,
        tls,
        ruleset,
        node,
    })
}

/// The plan of a node that has no valid site file: its web UI on port 80, which says what to do,
/// and SSH, both open to the node's own subnets (`local`), and nothing else.
pub fn unconfigured(name: &str, address: std::net::IpAddr, local: &[ipnet::IpNet]) -> Plan {
    use crate::catalog::{Component, Proto, UNCONFIGURED_ROWS, Zone};
    let node = Node {
        name: name.to_string(),
        address,
        roles: Roles::EITHER,
    };
    let flows: Vec<Flow> = UNCONFIGURED_ROWS
        .iter()
        .map(|row| Flow {
            direction: Direction::In,
            proto: row.proto,
            ports: vec![row.ports],
            peers: Peers::Zone(Zone::Clients, local.to_vec()),
            row,
        })
        .collect();
    let listeners = UNCONFIGURED_ROWS
        .iter()
        .map(|row| Listener {
            service: row.service,
            ports: row.ports,
            proto: Proto::Tcp,
            bind: Bind::Any,
            tls: false,
            component: row.service.component(),
        })
        .filter(|l| matches!(l.component, Component::Web | Component::System))
        .collect();
    Plan {
        site: String::new(),
        layout: Layout::Valt,
        ruleset: ruleset::build(Layout::Valt, &flows, false),
        node,
        peers: Vec::new(),
        flows,
        listeners,
        cameras: Vec::new(),
        tls: Tls::None,
    }
}

impl Plan {
    /// The node's roles.
    pub fn roles(&self) -> Roles {
        self.node.roles
    }

    /// The node's address.
    pub fn address(&self) -> IpAddr {
        self.node.address
    }

    /// The licence host names the node's firewall resolves into sets.
    pub fn license_hosts(&self) -> Vec<&'static str> {
        self.flows
            .iter()
            .filter_map(|f| match f.peers {
                Peers::Hosts(h) => Some(h),
                _ => None,
            })
            .flatten()
            .copied()
            .collect()
    }

    /// The same node with nothing in it: what the first plan is diffed against.
    pub fn emptied(&self) -> Plan {
        Plan {
            flows: Vec::new(),
            listeners: Vec::new(),
            cameras: Vec::new(),
            ruleset: Ruleset {
                sets: Vec::new(),
                chains: Vec::new(),
            },
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests;
