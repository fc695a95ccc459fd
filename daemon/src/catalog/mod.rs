//! The port catalog: every port of the three reference documents as a row of data.
//!
//! The firewall rules, the listeners and the human port documentation (`sited ports`) are all
//! generated from these rows, so they cannot disagree. A row is written once per *flow* (one
//! source, one destination, one port or range, one protocol); where a document describes the same
//! flow twice (NovaVMS's component table and its firewall bullets), the row cites both places.
//!
//! Invariants, checked by the tests below:
//! - within a layout, every row of one [`Service`] uses the same port, so that a `[ports]`
//!   override moves the service as a whole;
//! - a row that a node listens for (its `to` is a node) names a service that sited can place on a
//!   listener, and a row from [`Endpoint::Loopback`] is never opened by the firewall.
//!
//! One module per layout holds its rows; [`common`] holds the flows that no document lists but a
//! real appliance needs (DNS, NTP, updates, cameras), each marked as sited's own decision.

mod common;
mod novavms;
mod service;
mod titop;
mod valt;

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use common::UNCONFIGURED_ROWS;
pub use service::{Component, Service};

/// Which reference document a site follows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// VALT: an application server and media servers (LEMP + Wowza).
    Valt,
    /// Ti Top Streamer: config server, REST server, web manager and streaming engine.
    Titop,
    /// NovaVMS: a cloud server and on-site gateways.
    Novavms,
}

impl Layout {
    /// Every layout, in documentation order.
    pub const ALL: [Layout; 3] = [Layout::Valt, Layout::Titop, Layout::Novavms];

    /// The name used in site.toml.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Valt => "valt",
            Layout::Titop => "titop",
            Layout::Novavms => "novavms",
        }
    }

    /// The product the reference document describes.
    pub fn product(self) -> &'static str {
        match self {
            Layout::Valt => "VALT",
            Layout::Titop => "Ti Top Streamer",
            Layout::Novavms => "NovaVMS",
        }
    }

    /// The reference document, as named in `shared/reference/`.
    pub fn document(self) -> &'static str {
        match self {
            Layout::Valt => "000_88e53ad07ae3fc88.txt",
            Layout::Titop => "002_24f6576032d5fa96.txt",
            Layout::Novavms => "004_cfbe7b2726f1c9f8.txt",
        }
    }

    /// Parses a layout name as written in site.toml.
    pub fn from_name(name: &str) -> Option<Layout> {
        Layout::ALL.into_iter().find(|l| l.name() == name)
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// The lowercase name, as nft and the port tables write it.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A port or an inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ports {
    /// The first port.
    pub lo: u16,
    /// The last port; equal to `lo` for a single port.
    pub hi: u16,
}

impl Ports {
    /// A single port.
    pub const fn one(port: u16) -> Ports {
        Ports { lo: port, hi: port }
    }

    /// An inclusive range.
    pub const fn range(lo: u16, hi: u16) -> Ports {
        Ports { lo, hi }
    }

    /// Whether this is a single port.
    pub fn is_single(self) -> bool {
        self.lo == self.hi
    }

    /// Whether two port sets share a port.
    pub fn overlaps(self, other: Ports) -> bool {
        self.lo <= other.hi && other.lo <= self.hi
    }

    /// The same width, moved to start at `lo`. `None` if it would pass 65535.
    pub fn moved_to(self, lo: u16) -> Option<Ports> {
        let hi = u32::from(lo) + u32::from(self.hi - self.lo);
        u16::try_from(hi).ok().map(|hi| Ports { lo, hi })
    }
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

impl Serialize for Ports {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_single() {
            s.serialize_u16(self.lo)
        } else {
            s.collect_str(self)
        }
    }
}

/// A named source network of the site, given as CIDR lists in `[networks]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Zone {
    /// The client machines: browsers, players, the desktop application.
    Clients,
    /// The machines admins work from.
    Admins,
    /// The cameras and other video devices.
    Cameras,
    /// Mobile devices that stream to media nodes (VALT's BEAM).
    Mobile,
}

impl Zone {
    /// Every zone.
    pub const ALL: [Zone; 4] = [Zone::Clients, Zone::Admins, Zone::Cameras, Zone::Mobile];

    /// The key in `[networks]`, also the stem of its nft set names.
    pub fn name(self) -> &'static str {
        match self {
            Zone::Clients => "clients",
            Zone::Admins => "admins",
            Zone::Cameras => "cameras",
            Zone::Mobile => "mobile",
        }
    }
}

/// The roles a node can have; a single-server site has one node with both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Roles {
    /// The web application, the API, coordination.
    pub application: bool,
    /// Talks to the cameras, streams, records.
    pub media: bool,
}

impl Roles {
    /// The application role only.
    pub const APPLICATION: Roles = Roles {
        application: true,
        media: false,
    };
    /// The media role only.
    pub const MEDIA: Roles = Roles {
        application: false,
        media: true,
    };
    /// Either role: "Application & Media Server" in the references.
    pub const EITHER: Roles = Roles {
        application: true,
        media: true,
    };

    /// Whether a node with roles `self` is meant by `wanted`.
    pub fn meets(self, wanted: Roles) -> bool {
        (self.application && wanted.application) || (self.media && wanted.media)
    }

    /// The words the references use.
    pub fn describe(self) -> &'static str {
        match (self.application, self.media) {
            (true, true) => "application & media node",
            (true, false) => "application node",
            (false, true) => "media node",
            (false, false) => "no node",
        }
    }
}

/// One side of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// A zone of the site.
    Zone(Zone),
    /// The site's nodes that have one of these roles.
    Node(Roles),
    /// The node itself, over loopback: never opened by the firewall.
    Loopback,
    /// Named external hosts, resolved when the firewall is applied.
    Hosts(&'static [&'static str]),
    /// Anything beyond the site, where the document names no peer (update mirrors, DNS).
    Internet,
}

impl Endpoint {
    /// The side as machine-readable words: a zone, `application`, `media`, `loopback`,
    /// `host:NAME` or `internet`; a node of either role is two words.
    pub fn words(self) -> Vec<String> {
        match self {
            Endpoint::Zone(z) => vec![z.name().to_string()],
            Endpoint::Node(r) => {
                let mut out = Vec::new();
                if r.application {
                    out.push("application".to_string());
                }
                if r.media {
                    out.push("media".to_string());
                }
                out
            }
            Endpoint::Loopback => vec!["loopback".to_string()],
            Endpoint::Hosts(h) => h.iter().map(|h| format!("host:{h}")).collect(),
            Endpoint::Internet => vec!["internet".to_string()],
        }
    }

    /// How the port tables name this side.
    pub fn describe(self) -> String {
        match self {
            Endpoint::Zone(z) => z.name().to_string(),
            Endpoint::Node(r) => r.describe().to_string(),
            Endpoint::Loopback => "loopback".to_string(),
            Endpoint::Hosts(h) => h.join(", "),
            Endpoint::Internet => "internet".to_string(),
        }
    }
}

/// When a row applies. A row applies when all of its conditions hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// `ssl = "disabled"` (🔓 in VALT).
    SslDisabled,
    /// `ssl = "enabled"` (🔒 in VALT).
    SslEnabled,
    /// `[features] admin = true` (🔧 in VALT).
    Admin,
    /// `[features] mobile = true` (VALT's BEAM licences).
    Mobile,
    /// The site has more than one node.
    MultiNode,
    /// `[features] license = "electronic"`.
    LicenseElectronic,
    /// `[features] integration = true` (Ti Top's REST server).
    Integration,
    /// Development only: never opened on an appliance.
    DevOnly,
    /// Planned by the vendor, not in production: never opened.
    Planned,
}

impl Condition {
    /// The words of the port tables.
    pub fn describe(self) -> &'static str {
        match self {
            Condition::SslDisabled => "SSL disabled",
            Condition::SslEnabled => "SSL enabled",
            Condition::Admin => "administration",
            Condition::Mobile => "mobile licences",
            Condition::MultiNode => "several servers",
            Condition::LicenseElectronic => "electronic licence key",
            Condition::Integration => "external integration",
            Condition::DevOnly => "development only",
            Condition::Planned => "planned",
        }
    }
}

/// Where a row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference {
    /// The heading of the table, as the document writes it, or `sited` for our own decisions.
    pub section: &'static str,
    /// The row, in the document's own words.
    pub row: &'static str,
}

impl Reference {
    /// One line: `section / row`.
    pub fn cite(&self) -> String {
        format!("{} / {}", self.section, self.row)
    }
}

/// One flow of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The sited service behind the port; `[ports]` overrides are keyed by it.
    pub service: Service,
    /// The port or range, before overrides.
    pub ports: Ports,
    /// The protocol.
    pub proto: Proto,
    /// Who opens the connection.
    pub from: Endpoint,
    /// Who accepts it.
    pub to: Endpoint,
    /// All must hold for the row to apply.
    pub when: &'static [Condition],
    /// What the flow is for, in the document's words.
    pub purpose: &'static str,
    /// Where the row is written down; a flow described twice cites both.
    pub references: &'static [Reference],
}

impl Row {
    /// The conditions as the port tables show them, `always` when there are none.
    pub fn condition_text(&self) -> String {
        let mut words: Vec<&str> = self.when.iter().map(|c| c.describe()).collect();
        if self.from == Endpoint::Loopback {
            words.push("loopback only");
        }
        if words.is_empty() {
            "always".to_string()
        } else {
            words.join(", ")
        }
    }

    /// The conditions as machine-readable words, `loopback_only` included.
    pub fn condition_words(&self) -> Vec<String> {
        let mut words: Vec<String> = self
            .when
            .iter()
            .map(|c| {
                serde_json::to_value(c)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
            })
            .map(Option::unwrap_or_default)
            .collect();
        if self.from == Endpoint::Loopback {
            words.push("loopback_only".to_string());
        }
        words
    }

    /// Whether the row is sited's own decision rather than a row of the document.
    pub fn is_decision(&self) -> bool {
        self.references
            .iter()
            .all(|r| r.section.starts_with("sited"))
    }

    /// Whether the row can ever be open on an appliance.
    pub fn in_production(&self) -> bool {
        !self
            .when
            .iter()
            .any(|c| matches!(c, Condition::DevOnly | Condition::Planned))
    }
}

/// Whether a listener speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Always, whatever `ssl` says (VALT 443/444, NovaVMS 443).
    Always,
    /// When `ssl = "enabled"`: ports the document gives as "HTTP/HTTPS", and Ti Top's HTTP ports,
    /// since that document has no separate TLS ports.
    FollowsSsl,
    /// Never: plain protocols, and everything on loopback.
    Never,
}

/// How a service of a layout uses TLS.
pub fn tls_mode(layout: Layout, service: Service) -> TlsMode {
    use Service as S;
    match (layout, service) {
        (_, S::WebTls | S::LiveTls) => TlsMode::Always,
        // The document's "HTTP Wowza admin" on 8088 is sited's admin UI: with SSL on, an admin's
        // login never travels in clear there either (issue 16 §2).
        (Layout::Valt, S::Downloads | S::Vod | S::MediaAdmin) => TlsMode::FollowsSsl,
        (Layout::Titop, S::Web | S::Api | S::HttpLive | S::Vod) => TlsMode::FollowsSsl,
        _ => TlsMode::Never,
    }
}

/// The rows of a layout, followed by sited's own decisions for what the document leaves out.
pub fn rows(layout: Layout) -> impl Iterator<Item = &'static Row> {
    let own: &'static [Row] = match layout {
        Layout::Valt => valt::ROWS,
        Layout::Titop => titop::ROWS,
        Layout::Novavms => novavms::ROWS,
    };
    own.iter().chain(common::rows(layout))
}

/// The default port of a service in a layout, if the layout has that service.
pub fn default_ports(layout: Layout, service: Service) -> Option<(Ports, Proto)> {
    rows(layout)
        .find(|r| r.service == service)
        .map(|r| (r.ports, r.proto))
}

/// The services a layout can place on a listener: those `[ports]` may move.
pub fn listener_services(layout: Layout) -> Vec<Service> {
    let mut out: Vec<Service> = rows(layout)
        .filter(|r| matches!(r.to, Endpoint::Node(_)) && r.in_production())
        .map(|r| r.service)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
