//! A node's listeners: one per service that has an inbound flow on the node.
//!
//! A listener binds every address when any of its flows comes from outside, and loopback only
//! when all of them come from loopback; the firewall, not the bind address, decides who gets in.

use serde::Serialize;

use super::flow::{Direction, Peers, flows};
use crate::catalog::{self, Component, Ports, Proto, Service, TlsMode};
use crate::config::site::Ssl;
use crate::config::{Node, Site};

/// Where a listener binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bind {
    /// Every address, IPv4 and IPv6.
    Any,
    /// 127.0.0.1 and ::1 only.
    Loopback,
}

/// One listening socket (or range) of a node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Listener {
    /// The service it serves.
    pub service: Service,
    /// Its port or range.
    pub ports: Ports,
    /// Its protocol.
    pub proto: Proto,
    /// Where it binds.
    pub bind: Bind,
    /// Whether it speaks TLS.
    pub tls: bool,
    /// The part of sited that serves it.
    pub component: Component,
}

/// The listeners of a node, ordered by service.
pub fn listeners(site: &Site, node: &Node) -> Vec<Listener> {
    let mut out: Vec<Listener> = Vec::new();
    for flow in flows(site, node)
        .into_iter()
        .filter(|f| f.direction == Direction::In)
    {
        let service = flow.service();
        let bind = if flow.peers == Peers::Loopback {
            Bind::Loopback
        } else {
            Bind::Any
        };
        if let Some(existing) = out.iter_mut().find(|l| l.service == service) {
            existing.bind = existing.bind.min(bind);
            continue;
        }
        let tls = match catalog::tls_mode(site.layout, service) {
            TlsMode::Always => true,
            TlsMode::FollowsSsl => site.ssl == Ssl::Enabled,
            TlsMode::Never => false,
        };
        let component = service.component();
        for ports in flow.ports {
            out.push(Listener {
                service,
                ports,
                proto: flow.proto,
                bind,
                tls,
                component,
            });
        }
    }
    for l in &mut out {
        if l.bind == Bind::Loopback {
            l.tls = false;
        }
    }
    out.sort();
    out
}
