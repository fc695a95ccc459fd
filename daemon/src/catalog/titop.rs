//! Ti Top Streamer: config server, REST server, web manager (process "ttsm") and the streaming
//! engine (process "tts").
//!
//! Transcribed from `002_24f6576032d5fa96.txt`. "Access from outside: No need" means the port
//! stays on loopback; "Need" means the clients zone; "Need only when integrate with outside
//! system" is the [`Integration`] condition. The ttsm ports sit on the application role, the tts
//! ports on the media role. VOD (ttsm in the document) sits on the media role too, because sited's
//! recorder lives where the recordings are; on a single server they are the same node.
//!
//! The document opens 8086 to clients even though VOD is also reachable through 8080; sited keeps
//! the table's "Need", and serves the same VOD on both: HLS playlists of recorded ranges at
//! `/vod/<camera>/index.m3u8?start=&end=` (see `web::vod`). The document names no mobile ingest and no multi-server flows; the rows
//! marked `sited` below add what a site with those features needs.
//!
//! [`Integration`]: Condition::Integration

use super::Condition::{Integration, Mobile, MultiNode};
use super::Endpoint::{Loopback, Node, Zone};
use super::Proto::{Tcp, Udp};
use super::{Ports, Reference, Roles, Row, Service, Zone as Z};

const TCP_TABLE: &str = "1. TCP Port";
const UDP_TABLE: &str = "2. UDP Port";
const SITED: &str = "sited (not in the document)";

const APP: Roles = Roles::APPLICATION;
const MEDIA: Roles = Roles::MEDIA;

macro_rules! cite {
    ($section:expr, $row:expr) => {
        &[Reference {
            section: $section,
            row: $row,
        }]
    };
}

/// The rows of the Ti Top document, then sited's additions.
pub const ROWS: &[Row] = &[
    Row {
        service: Service::ConfigApi,
        ports: Ports::one(8089),
        proto: Tcp,
        from: Loopback,
        to: Node(APP),
        when: &[],
        purpose: "Config Server HTTP service",
        references: cite!(
            TCP_TABLE,
            "8089 ttsm Config Server, access from outside: No need"
        ),
    },
    Row {
        service: Service::Api,
        ports: Ports::one(8085),
        proto: Tcp,
        from: Zone(Z::Clients),
        to: Node(APP),
        when: &[Integration],
        purpose: "Rest Server HTTP service",
        references: cite!(
            TCP_TABLE,
            "8085 ttsm Rest Server, access from outside: Need only when integrate with outside system"
        ),
    },
    Row {
        service: Service::Web,
        ports: Ports::one(8088),
        proto: Tcp,
        from: Zone(Z::Clients),
        to: Node(APP),
        when: &[],
        purpose: "Web Manager HTTP service",
        references: cite!(
            TCP_TABLE,
            "8088 ttsm Web Manager, access from outside: Need"
        ),
    },
    Row {
        service: Service::NodeApi,
        ports: Ports::one(8087),
        proto: Tcp,
        from: Loopback,
        to: Node(MEDIA),
        when: &[],
        purpose: "Streaming Engine HTTP service",
        references: cite!(
            TCP_TABLE,
            "8087 tts Streaming Engine HTTP service, access from outside: No need"
        ),
    },
    Row {
        service: Service::Rtmp,
        ports: Ports::one(1935),
        proto: Tcp,
        from: Zone(Z::Clients),
        to: Node(MEDIA),
        when: &[],
        purpose: "Streaming Engine RTMP service",
        references: cite!(
            TCP_TABLE,
            "1935 tts Streaming Engine RTMP service, access from outside: Need"
        ),
    },
    Row {
        service: Service::HttpLive,
        ports: Ports::one(8080),
        proto: Tcp,
        from: Zone(Z::Clients),
        to: Node(MEDIA),
        when: &[],
        purpose: "HTTP streaming service (HLS and FLV)",
        references: cite!(
            TCP_TABLE,
            "8080 tts Streaming Engine HTTP streaming service (HLS and FLV), access from outside: Need"
        ),
    },
    Row {
        service: Service::Vod,
        ports: Ports::one(8086),
        proto: Tcp,
        from: Zone(Z::Clients),
        to: Node(MEDIA),
        when: &[],
        purpose: "VOD streaming service",
        references: cite!(
            TCP_TABLE,
            "8086 ttsm VOD streaming service, access from outside: Need"
        ),
    },
    Row {
        service: Service::EngineEvents,
        ports: Ports::one(7002),
        proto: Udp,
        from: Loopback,
        to: Node(APP),
        when: &[],
        purpose: "Config Server receives key event messages from the Streaming Engine",
        references: cite!(
            UDP_TABLE,
            "7002 ttsm Config Server, access from outside: No need"
        ),
    },
    // sited's additions.
    Row {
        service: Service::Rtmp,
        ports: Ports::one(1935),
        proto: Tcp,
        from: Zone(Z::Mobile),
        to: Node(MEDIA),
        when: &[Mobile],
        purpose: "RTMP publish from mobile devices",
        references: cite!(
            SITED,
            "mobile devices publish on the RTMP service, as VALT's BEAM does"
        ),
    },
    Row {
        service: Service::Web,
        ports: Ports::one(8088),
        proto: Tcp,
        from: Node(MEDIA),
        to: Node(APP),
        when: &[MultiNode],
        purpose: "media nodes connect out to the application node",
        references: cite!(
            SITED,
            "the node link, on the application node's web port, as in VALT and NovaVMS"
        ),
    },
    Row {
        service: Service::NodeApi,
        ports: Ports::one(8087),
        proto: Tcp,
        from: Node(APP),
        to: Node(MEDIA),
        when: &[MultiNode],
        purpose: "the application node controls the media engines",
        references: cite!(
            SITED,
            "8087 opened to the application node only, as VALT does between servers"
        ),
    },
];
