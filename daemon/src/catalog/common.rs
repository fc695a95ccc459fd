//! sited's own decisions: flows that no reference document lists but a real appliance needs.
//!
//! These matter only with `[site] egress = "documented"`, where the output policy is drop and
//! every outbound flow must be a row.
//!
//! - **Updates, DNS, NTP** (all layouts). VALT's "Online Updates" table is missing from its text;
//!   the text keeps only "Valid DNS servers are required to download updates". An Ubuntu or Debian
//!   appliance fetches packages over HTTP and HTTPS from mirrors that are not fixed addresses, so
//!   these go to the internet: TCP 80 and 443 for updates, UDP and TCP 53 for DNS (TCP for large
//!   answers), UDP 123 for NTP.
//! - **Cameras** (Ti Top, and ONVIF for VALT). A media node must reach its cameras whatever the
//!   layout: RTSP on 554 (plus each camera URL's own port, added by the plan), the camera's web
//!   API on 80, and each camera's `onvif_port`. NovaVMS documents all of these itself.

use super::Endpoint::{Internet, Node, Zone};
use super::Proto::{Tcp, Udp};
use super::{Layout, Ports, Reference, Roles, Row, Service, Zone as Z};

const SITED: &str = "sited (not in the document)";
const UPDATES: Reference = Reference {
    section: SITED,
    row: "updates, DNS and NTP: VALT's Online Updates table is missing from its text",
};
const CAMERAS: Reference = Reference {
    section: SITED,
    row: "a media node reaches its cameras: RTSP, web API and ONVIF",
};

const fn system(service: Service, port: u16, proto: super::Proto, purpose: &'static str) -> Row {
    Row {
        service,
        ports: Ports::one(port),
        proto,
        from: Node(Roles::EITHER),
        to: Internet,
        when: &[],
        purpose,
        references: &[UPDATES],
    }
}

const fn camera(service: Service, port: u16, purpose: &'static str) -> Row {
    Row {
        service,
        ports: Ports::one(port),
        proto: Tcp,
        from: Node(Roles::MEDIA),
        to: Zone(Z::Cameras),
        when: &[],
        purpose,
        references: &[CAMERAS],
    }
}

const SYSTEM: &[Row] = &[
    system(Service::Dns, 53, Udp, "name resolution"),
    system(Service::Dns, 53, Tcp, "name resolution (large answers)"),
    system(Service::Ntp, 123, Udp, "time"),
    system(Service::Updates, 80, Tcp, "OS updates (HTTP mirrors)"),
    system(Service::Updates, 443, Tcp, "OS updates (HTTPS mirrors)"),
];

const VALT: &[Row] = &[camera(
    Service::CameraOnvif,
    2020,
    "each camera's ONVIF port",
)];

const TITOP: &[Row] = &[
    camera(Service::CameraHttp, 80, "the camera's web API"),
    camera(Service::CameraRtsp, 554, "the camera's RTSP stream"),
    camera(Service::CameraOnvif, 2020, "each camera's ONVIF port"),
];

/// sited's additions for a layout.
pub fn rows(layout: Layout) -> impl Iterator<Item = &'static Row> {
    let cameras: &'static [Row] = match layout {
        Layout::Valt => VALT,
        Layout::Titop => TITOP,
        Layout::Novavms => &[],
    };
    cameras.iter().chain(SYSTEM)
}

const UNCONFIGURED: Reference = Reference {
    section: "sited (unconfigured)",
    row: "no site file yet: the web UI and SSH, open to the local subnets",
};

/// The flows of a node without a site file: its web UI (which explains what to do) and SSH,
/// open to the subnets the node is on.
pub const UNCONFIGURED_ROWS: &[Row] = &[
    Row {
        service: Service::Web,
        ports: Ports::one(80),
        proto: Tcp,
        from: Zone(Z::Clients),
        to: Node(Roles::EITHER),
        when: &[],
        purpose: "the web UI of an unconfigured node",
        references: &[UNCONFIGURED],
    },
    Row {
        service: Service::Ssh,
        ports: Ports::one(22),
        proto: Tcp,
        from: Zone(Z::Clients),
        to: Node(Roles::EITHER),
        when: &[],
        purpose: "SSH to an unconfigured node",
        references: &[UNCONFIGURED],
    },
];
