//! What the running daemon shows of itself: the site and plan in force, the last reload, the
//! listeners, the firewall and the counters. The web service and the metrics read it; only the
//! reconcile loop and the supervised tasks write it.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::catalog::{Component, Ports, Proto, Service};
use crate::config::Site;
use crate::plan::{Bind, Plan};

/// The shared, lockable status.
pub type Shared = Arc<RwLock<Status>>;

/// The version of the site file in force.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Version {
    /// The file's SHA-256, hex.
    pub sha256: String,
    /// When it was applied, RFC 3339.
    pub applied_at: String,
}

/// The outcome of the last reload.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LastReload {
    /// When, RFC 3339.
    pub at: String,
    /// `applied`, `unchanged`, `invalid`, `failed` or `imported`.
    pub outcome: String,
    /// The diagnostics of the file, as `sited validate --format json` prints them.
    pub diagnostics: serde_json::Value,
    /// What changed, or why it failed.
    pub summary: String,
}

/// The state of one listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ListenerState {
    /// Bound and serving.
    Serving,
    /// Binding or serving failed; it is retried with backoff.
    Failed {
        /// The last error.
        error: String,
        /// How many times in a row it failed.
        attempts: u32,
    },
    /// Served by the operating system (SSH).
    System,
    /// Done inside sited without a socket of its own.
    InProcess,
    /// No part of sited serves this yet; nothing listens.
    NotBuilt,
}

/// One listener as the status shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ListenerStatus {
    /// The service.
    #[schemars(with = "String")]
    pub service: Service,
    /// The planned port.
    #[schemars(with = "String")]
    pub port: Ports,
    /// The port actually bound: differs when an unprivileged run moves low ports.
    #[schemars(with = "String")]
    pub bound_port: Ports,
    /// tcp or udp.
    #[schemars(with = "String")]
    pub proto: Proto,
    /// Every address, or loopback.
    #[schemars(with = "String")]
    pub bind: Bind,
    /// Whether it speaks TLS.
    pub tls: bool,
    /// The part of sited behind it.
    #[schemars(with = "String")]
    pub component: Component,
    /// Its state.
    pub state: ListenerState,
}

/// The firewall as the status shows it.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct FirewallStatus {
    /// `nft`, or `none` when sited does not touch the firewall.
    pub driver: String,
    /// The number of rules of the table in force.
    pub rules: usize,
    /// When it was last applied, RFC 3339.
    pub applied_at: Option<String>,
    /// How long the last apply took, in milliseconds.
    pub apply_ms: Option<u64>,
    /// The last apply error, if the last apply failed.
    pub error: Option<String>,
    /// Its kind (`firewall-rejected`, `firewall-restore-failed`, …), if the last apply failed.
    pub error_kind: Option<String>,
}

/// A media node's link to its application node, as the status shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct LinkState {
    /// The application node.
    pub application: String,
    /// Whether the link is up.
    pub online: bool,
    /// Since when it is up or down, RFC 3339.
    pub since: Option<String>,
    /// Why it is down, when it is.
    pub error: Option<String>,
}

/// Everything the daemon shows of itself.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// The node's name, once found.
    pub node: Option<String>,
    /// The site in force.
    pub site: Option<Arc<Site>>,
    /// The plan in force.
    pub plan: Option<Arc<Plan>>,
    /// The site file in force.
    pub version: Option<Version>,
    /// The last reload.
    pub last: Option<LastReload>,
    /// Why there is no site in force, when there is none.
    pub unconfigured: Option<String>,
    /// The listeners, by service and planned port.
    pub listeners: BTreeMap<(Service, u16), ListenerStatus>,
    /// The firewall.
    pub firewall: FirewallStatus,
    /// Reloads attempted since start.
    pub reloads: u64,
    /// Reloads that did not apply (invalid or failed).
    pub reload_failures: u64,
    /// Firewall applies that failed.
    pub firewall_failures: u64,
    /// On a media node, its link to the application node.
    pub link: Option<LinkState>,
    /// Firewall applies that failed, by the error's kind.
    pub firewall_failures_by_kind: BTreeMap<&'static str, u64>,
}
