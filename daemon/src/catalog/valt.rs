//! VALT: the application server and media servers of a LEMP + Wowza product.
//!
//! Transcribed from `000_88e53ad07ae3fc88.txt`, table by table, in the document's order. The
//! icons map to conditions: 🔓 [`SslDisabled`], 🔒 [`SslEnabled`], 🔧 [`Admin`]; the BEAM table
//! is [`Mobile`], the two "Multiple Server Configurations" tables [`MultiNode`], the licensing
//! table [`LicenseElectronic`]. The 🔧 rows say "Client" but are for administration, so their
//! source is the `admins` zone.
//!
//! Which sited service sits behind each Wowza or Nginx port:
//! - 80 / 443, the web application and the "Wowza Streaming API": sited's web service;
//! - 1935 / 444, WS and RTMP video: sited's one live listener, which sniffs RTMP (first byte
//!   0x03) from HTTP and WebSocket;
//! - 8000, downloads: clips and HLS VOD (`/vod/<camera>/index.m3u8`) from the recorder, as
//!   VALT's players fetch recordings from the media server's Wowza;
//! - 8086 / 8087 between servers: recordings (the same VOD) and the media engine's control API;
//! - 8088, Wowza admin: sited's web UI on a port of its own, for admins.
//!
//! The "Online Updates" table is missing from the document's text; [`super::common`] decides it.
//!
//! [`SslDisabled`]: Condition::SslDisabled
//! [`SslEnabled`]: Condition::SslEnabled
//! [`Admin`]: Condition::Admin
//! [`Mobile`]: Condition::Mobile
//! [`MultiNode`]: Condition::MultiNode
//! [`LicenseElectronic`]: Condition::LicenseElectronic

use super::Condition::{Admin, LicenseElectronic, Mobile, MultiNode, SslDisabled, SslEnabled};
use super::Endpoint::{Hosts, Node, Zone};
use super::{Ports, Proto::Tcp, Reference, Roles, Row, Service, Zone as Z};

const CLIENT: &str = "Client to Application & Media Server(s)";
const DEVICES: &str = "Media Server(s) to Video Device(s)";
const BEAM: &str = "BEAM (Mobile Application)";
const APP_TO_MEDIA: &str = "Multiple Server Configurations / Application Server to Media Server(s)";
const MEDIA_TO_APP: &str = "Multiple Server Configurations / Media Server(s) to Application Server";
const LICENSE: &str = "Digital Wowza License / Media Servers to Wowza Licensing Servers";

const APP: Roles = Roles::APPLICATION;
const MEDIA: Roles = Roles::MEDIA;
const EITHER: Roles = Roles::EITHER;

/// The licence hosts of the "Digital Wowza License" table.
pub const LICENSE_HOSTS: &[&str] = &[
    "wowzalicense-all.wowzamedia.com",
    "wowzalicense1.wowzamedia.com",
    "wowzalicense2.wowzamedia.com",
    "wowzalicense3.wowzamedia.com",
    "wowzalicense4.wowzamedia.com",
];

macro_rules! cite {
    ($section:expr, $row:expr) => {
        &[Reference {
            section: $section,
            row: $row,
        }]
    };
}

/// The rows of the VALT document.
pub const ROWS: &[Row] = &[
    // Client to Application & Media Server(s)
    Row {
        service: Service::Web,
        ports: Ports::one(80),
        proto: Tcp,
        from: Zone(Z::Clients),
        to: Node(APP),
        when: &[SslDisabled],
        purpose: "Web Application (HTTP)",
        references: cite!(
            CLIENT,
            "🔓 TCP 80 HTTP Web Application, Client → Application Server"
        ),
    },
    Row {
        service: Service::Live,
        ports: Ports::one(1935),
        proto: Tcp,
        from: Zone(Z::Clients),
        to: Node(EITHER),
        when: &[SslDisabled],
        purpose: "Video Streaming (WS)",
        references: cite!(
            CLIENT,
            "🔓 TCP 1935 WS Video Streaming, Client → Application & Media Server"
        ),
    },
    Row {
        service: Service::WebTls,
        ports: Ports::one(443),
        proto: Tcp,
        from: Zone(Z::Clients),
        to: Node(APP),
        when: &[SslEnabled],
        purpose: "Web Application (HTTPS)",
        references: cite!(
            CLIENT,
            "🔒 TCP 443 HTTPS Web Application, Client → Application Server"
        ),
    },
    Row {
        service: Service::LiveTls,
        ports: Ports::one(444),
        proto: Tcp,
        from: Zone(Z::Clients),
        to: Node(EITHER),
        when: &[SslEnabled],
        purpose: "Video Streaming (WSS)",
        references: cite!(
            CLIENT,
            "🔒 TCP 444 WSS Video Streaming, Client → Application & Media Server"
        ),
    },
    Row {
        service: Service::Downloads,
        ports: Ports::one(8000),
        proto: Tcp,
        from: Zone(Z::Clients),
        to: Node(EITHER),
        when: &[],
        purpose: "Downloads/Wowza webserver (HTTP/HTTPS)",
        references: cite!(
            CLIENT,
            "TCP 8000 HTTP/HTTPS* Downloads/Wowza webserver, Client → Application & Media Server"
        ),
    },
    Row {
        service: Service::Ssh,
        ports: Ports::one(22),
        proto: Tcp,
        from: Zone(Z::Admins),
        to: Node(EITHER),
        when: &[Admin],
        purpose: "SSH",
        references: cite!(CLIENT, "🔧 TCP 22 SSH, Client → Application & Media Server"),
    },
    Row {
        service: Service::MediaAdmin,
        ports: Ports::one(8088),
        proto: Tcp,
        from: Zone(Z::Admins),
        to: Node(EITHER),
        when: &[Admin],
        purpose: "Wowza admin (HTTP)",
        references: cite!(
            CLIENT,
            "🔧 TCP 8088 HTTP Wowza admin, Client → Application & Media Server"
        ),
    },
    // Media Server(s) to Video Device(s)
    Row {
        service: Service::CameraHttp,
        ports: Ports::one(80),
        proto: Tcp,
        from: Node(MEDIA),
        to: Zone(Z::Cameras),
        when: &[],
        purpose: "Web Application/API (HTTP)",
        references: cite!(
            DEVICES,
            "TCP 80 HTTP Web Application/API, Media Server → Camera"
        ),
    },
    Row {
        service: Service::CameraRtsp,
        ports: Ports::one(554),
        proto: Tcp,
        from: Node(MEDIA),
        to: Zone(Z::Cameras),
        when: &[],
        purpose: "Video Stream (RTSP)",
        references: cite!(DEVICES, "TCP 554 RTSP Video Stream, Media Server → Camera"),
    },
    // BEAM (Mobile Application)
    Row {
        service: Service::Web,
        ports: Ports::one(80),
        proto: Tcp,
        from: Zone(Z::Mobile),
        to: Node(MEDIA),
        when: &[Mobile, SslDisabled],
        purpose: "BEAM API/HTTP Upload",
        references: cite!(
            BEAM,
            "🔓 TCP 80 HTTP BEAM API/HTTP Upload, BEAM Device → Media Server"
        ),
    },
    Row {
        service: Service::Live,
        ports: Ports::one(1935),
        proto: Tcp,
        from: Zone(Z::Mobile),
        to: Node(MEDIA),
        when: &[Mobile, SslDisabled],
        purpose: "Video Streaming (RTMP)",
        references: cite!(
            BEAM,
            "🔓 TCP 1935 RTMP Video Streaming, BEAM Device → Media Server"
        ),
    },
    Row {
        service: Service::WebTls,
        ports: Ports::one(443),
        proto: Tcp,
        from: Zone(Z::Mobile),
        to: Node(MEDIA),
        when: &[Mobile, SslEnabled],
        purpose: "BEAM API/HTTPS Upload",
        references: cite!(
            BEAM,
            "🔒 TCP 443 HTTPS BEAM API/HTTPS Upload, BEAM Device → Media Server"
        ),
    },
    Row {
        service: Service::LiveTls,
        ports: Ports::one(444),
        proto: Tcp,
        from: Zone(Z::Mobile),
        to: Node(MEDIA),
        when: &[Mobile, SslEnabled],
        purpose: "Video Streaming (RTMPS)",
        references: cite!(
            BEAM,
            "🔒 TCP 444 RTMP Video Streaming, BEAM Device → Media Server"
        ),
    },
    // Multiple Server Configurations: Application Server to Media Server(s)
    Row {
        service: Service::Ssh,
        ports: Ports::one(22),
        proto: Tcp,
        from: Node(APP),
        to: Node(MEDIA),
        when: &[MultiNode],
        purpose: "OS (SSH)",
        references: cite!(APP_TO_MEDIA, "TCP 22 SSH OS"),
    },
    Row {
        service: Service::LiveTls,
        ports: Ports::one(444),
        proto: Tcp,
        from: Node(APP),
        to: Node(MEDIA),
        when: &[MultiNode, SslEnabled],
        purpose: "Wowza Streaming Engine (HTTPS)",
        references: cite!(APP_TO_MEDIA, "🔒 TCP 444 HTTPS Wowza Streaming Engine"),
    },
    Row {
        service: Service::Live,
        ports: Ports::one(1935),
        proto: Tcp,
        from: Node(APP),
        to: Node(MEDIA),
        when: &[MultiNode, SslDisabled],
        purpose: "Wowza Streaming Engine (HTTP)",
        references: cite!(APP_TO_MEDIA, "🔓 TCP 1935 HTTP Wowza Streaming Engine"),
    },
    Row {
        service: Service::Downloads,
        ports: Ports::one(8000),
        proto: Tcp,
        from: Node(APP),
        to: Node(MEDIA),
        when: &[MultiNode],
        purpose: "Wowza Streaming Engine (HTTP/HTTPS)",
        references: cite!(APP_TO_MEDIA, "TCP 8000 HTTP/HTTPS Wowza Streaming Engine"),
    },
    Row {
        service: Service::Vod,
        ports: Ports::one(8086),
        proto: Tcp,
        from: Node(APP),
        to: Node(MEDIA),
        when: &[MultiNode],
        purpose: "Wowza Streaming Engine (HTTP/HTTPS)",
        references: cite!(APP_TO_MEDIA, "TCP 8086 HTTP/HTTPS Wowza Streaming Engine"),
    },
    Row {
        service: Service::NodeApi,
        ports: Ports::one(8087),
        proto: Tcp,
        from: Node(APP),
        to: Node(MEDIA),
        when: &[MultiNode],
        purpose: "Wowza Streaming Engine (HTTP)",
        references: cite!(APP_TO_MEDIA, "TCP 8087 HTTP Wowza Streaming Engine"),
    },
    // Multiple Server Configurations: Media Server(s) to Application Server
    Row {
        service: Service::Ssh,
        ports: Ports::one(22),
        proto: Tcp,
        from: Node(MEDIA),
        to: Node(APP),
        when: &[MultiNode],
        purpose: "OS (SSH)",
        references: cite!(MEDIA_TO_APP, "TCP 22 SSH OS"),
    },
    Row {
        service: Service::Web,
        ports: Ports::one(80),
        proto: Tcp,
        from: Node(MEDIA),
        to: Node(APP),
        when: &[MultiNode, SslDisabled],
        purpose: "Wowza Streaming API (HTTP)",
        references: cite!(MEDIA_TO_APP, "🔓 TCP 80 HTTP Wowza Streaming API"),
    },
    Row {
        service: Service::WebTls,
        ports: Ports::one(443),
        proto: Tcp,
        from: Node(MEDIA),
        to: Node(APP),
        when: &[MultiNode, SslEnabled],
        purpose: "Wowza Streaming API (HTTPS)",
        references: cite!(MEDIA_TO_APP, "🔒 TCP 443 HTTPS Wowza Streaming API"),
    },
    Row {
        service: Service::Vod,
        ports: Ports::one(8086),
        proto: Tcp,
        from: Node(MEDIA),
        to: Node(APP),
        when: &[MultiNode],
        purpose: "Wowza Streaming Engine (HTTP/HTTPS)",
        references: cite!(MEDIA_TO_APP, "TCP 8086 HTTP/HTTPS Wowza Streaming Engine"),
    },
    Row {
        service: Service::NodeApi,
        ports: Ports::one(8087),
        proto: Tcp,
        from: Node(MEDIA),
        to: Node(APP),
        when: &[MultiNode],
        purpose: "Wowza Streaming Engine (HTTP)",
        references: cite!(MEDIA_TO_APP, "TCP 8087 HTTP Wowza Streaming Engine"),
    },
    // Digital Wowza License: one flow to five hosts, one rule.
    Row {
        service: Service::License,
        ports: Ports::one(80),
        proto: Tcp,
        from: Node(MEDIA),
        to: Hosts(LICENSE_HOSTS),
        when: &[LicenseElectronic],
        purpose: "Wowza licence check (HTTP)",
        references: cite!(
            LICENSE,
            "TCP 80 HTTP, Media Server → wowzalicense-all and wowzalicense1-4.wowzamedia.com"
        ),
    },
];
