//! The checked model of a site: what exists only once a file has passed validation.
//!
//! A [`Site`] holds parsed addresses, networks and URLs, every camera assigned to a node, and the
//! `[ports]` overrides keyed by [`Service`]. Everything downstream (plan, firewall, listeners)
//! reads this, never the file's types.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Serialize;

use crate::catalog::{self, Condition, Layout, Ports, Proto, Roles, Service, Zone};

pub use super::file::{Egress, License, RecordingLimits, Ssl, Transport, UserRole};

/// A valid site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The site's name.
    pub name: String,
    /// The reference document the site follows.
    pub layout: Layout,
    /// Whether clients use TLS.
    pub ssl: Ssl,
    /// The firewall's output policy.
    pub egress: Egress,
    /// The origins whose pages may read responses across origins (CORS), as browsers send them.
    pub cors_origins: Vec<String>,
    /// The certificate and key, when both were given.
    pub tls: Option<TlsFiles>,
    /// The networks of each zone; a zone without networks is absent or empty.
    pub zones: BTreeMap<Zone, Vec<IpNet>>,
    /// The features turned on.
    pub features: Features,
    /// The nodes, in file order.
    pub nodes: Vec<Node>,
    /// The cameras, in file order, each assigned to a node.
    pub cameras: Vec<Camera>,
    /// The `[ports]` overrides: the first port of each moved service.
    pub ports: BTreeMap<Service, u16>,
    /// The users who log in.
    pub users: Vec<User>,
    /// The mobile devices that may publish.
    pub devices: Vec<Device>,
    /// Retention on every node.
    pub recording: RecordingLimits,
}

/// A mobile device that may publish over RTMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its name: its stream's name.
    pub name: String,
    /// The file with its stream key, on the appliance.
    pub key_file: PathBuf,
}

/// A user who logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// What the user may do.
    pub role: UserRole,
    /// The argon2 PHC string.
    pub password_hash: String,
}

/// The certificate files from `[tls]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsFiles {
    /// The PEM certificate chain.
    pub certificate: PathBuf,
    /// The PEM private key.
    pub key: PathBuf,
}

/// The features of a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Features {
    /// Administration ports open to `admins`.
    pub admin: bool,
    /// Mobile devices may stream.
    pub mobile: bool,
    /// The licence key kind.
    pub license: License,
    /// The REST server is open to clients.
    pub integration: bool,
}

/// A node of the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: IpAddr,
    /// Its roles.
    #[serde(skip)]
    pub roles: Roles,
}

/// A camera, assigned to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Camera {
    /// Its name: the stream's name in every output.
    pub name: String,
    /// The stream URL, without credentials; empty for a camera that pushes.
    pub url: String,
    /// Whether the camera pushes its stream (RTSP RECORD) instead of being pulled.
    pub push: bool,
    /// The URL's host, without brackets.
    pub host: String,
    /// The URL's port, or the scheme's default (554 for rtsp, 322 for rtsps).
    pub port: u16,
    /// The RTSP user.
    pub username: Option<String>,
    /// Where the password is, on the appliance.
    pub password_file: Option<PathBuf>,
    /// The media node that ingests it.
    pub node: String,
    /// Its ONVIF port.
    pub onvif_port: Option<u16>,
    /// Whether it is recorded.
    pub record: bool,
    /// How RTP travels.
    #[serde(skip)]
    pub transport: Transport,
    /// Its own age limit, in days.
    pub keep_days: Option<u32>,
    /// Its own size limit, in bytes.
    pub max_bytes: Option<u64>,
}

impl Site {
    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The networks of a zone.
    pub fn zone(&self, zone: Zone) -> &[IpNet] {
        self.zones.get(&zone).map_or(&[], Vec::as_slice)
    }

    /// Whether a catalog condition holds for this site.
    pub fn holds(&self, condition: Condition) -> bool {
        match condition {
            Condition::SslDisabled => self.ssl == Ssl::Disabled,
            Condition::SslEnabled => self.ssl == Ssl::Enabled,
            Condition::Admin => self.features.admin,
            Condition::Mobile => self.features.mobile,
            Condition::MultiNode => self.nodes.len() > 1,
            Condition::LicenseElectronic => self.features.license == License::Electronic,
            Condition::Integration => self.features.integration,
            Condition::DevOnly | Condition::Planned => false,
        }
    }

    /// Whether a catalog row applies to this site (not yet to a node).
    pub fn applies(&self, row: &catalog::Row) -> bool {
        row.when.iter().all(|c| self.holds(*c))
    }

    /// The ports of a row after the `[ports]` overrides.
    pub fn ports_of(&self, row: &catalog::Row) -> Ports {
        self.ports
            .get(&row.service)
            .and_then(|&lo| row.ports.moved_to(lo))
            .unwrap_or(row.ports)
    }

    /// Where a service listens on this site, after overrides, if the layout has it.
    pub fn service_ports(&self, service: Service) -> Option<(Ports, Proto)> {
        catalog::rows(self.layout)
            .find(|r| r.service == service && r.in_production())
            .map(|r| (self.ports_of(r), r.proto))
    }

    /// The cameras a node ingests.
    pub fn cameras_of<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Camera> + 'a {
        self.cameras.iter().filter(move |c| c.node == node)
    }
}
