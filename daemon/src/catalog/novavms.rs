//! NovaVMS: a cloud server (the application role) and on-site gateways (the media role).
//!
//! Transcribed from `004_cfbe7b2726f1c9f8.txt`: its "Component ports" table and its "Firewall
//! rules for a typical install". A flow that both describe is one row citing both. "Bidirectional"
//! is two rows, one each way. The document does not say which host runs go2rtc, but its WebRTC
//! port is "on the cloud server" (the bullets) and its API (11984) is loopback-only, so on that
//! same host: go2rtc, with its RTSP server (8554, "used in direct-mode streaming and relay"),
//! sits on the application role. sited's application node serves every camera of the site
//! there, relaying those that gateways ingest (`nodes::relay`), so a client that reaches only
//! the cloud server still plays everything. WebRTC and TURN sit there too. The TURN
//! range names no peer in the table; the bullet names browsers, so the peer is `clients`.
//!
//! The document names no recordings port: clips and HLS VOD (`/vod/<camera>/index.m3u8`) are on
//! the web service (443), as its API serves recordings. TLS terminates on 443 whatever `ssl` says. PostgreSQL and MinIO are loopback-only in the
//! document; sited embeds SQLite and has no object store, so nothing listens there.

use super::Condition::{DevOnly, Planned};
use super::Endpoint::{Loopback, Node, Zone};
use super::Proto::{Tcp, Udp};
use super::{Ports, Reference, Roles, Row, Service, Zone as Z};

const TABLE: &str = "Component ports";
const BULLETS: &str = "Firewall rules for a typical install";

const APP: Roles = Roles::APPLICATION;
const MEDIA: Roles = Roles::MEDIA;

const fn cite(section: &'static str, row: &'static str) -> Reference {
    Reference { section, row }
}

/// The rows of the NovaVMS document.
pub const ROWS: &[Row] = &[
    Row {
        service: Service::WebTls,
        ports: Ports::one(443),
        proto: Tcp,
        from: Zone(Z::Clients),
        to: Node(APP),
        when: &[],
        purpose: "Frontend / API ingress (Caddy), TLS",
        references: &[
            cite(
                TABLE,
                "443 TCP Frontend / API ingress (Caddy), inbound from browsers",
            ),
            cite(BULLETS, "Browser -> cloud frontend: inbound TCP 443"),
        ],
    },
    Row {
        service: Service::WebTls,
        ports: Ports::one(443),
        proto: Tcp,
        from: Node(MEDIA),
        to: Node(APP),
        when: &[],
        purpose: "Gateway -> cloud (WebSocket + API over TLS)",
        references: &[
            cite(
                TABLE,
                "443 TCP Frontend / API ingress (Caddy), inbound from gateways",
            ),
            cite(
                BULLETS,
                "Gateway -> cloud: outbound TCP 443 on the gateway host",
            ),
        ],
    },
    Row {
        service: Service::DevServer,
        ports: Ports::one(5200),
        proto: Tcp,
        from: Zone(Z::Clients),
        to: Node(APP),
        when: &[DevOnly],
        purpose: "Frontend dev server (Vite)",
        references: &[cite(
            TABLE,
            "5200 TCP Frontend dev server (Vite), inbound (dev only)",
        )],
    },
    Row {
        service: Service::Api,
        ports: Ports::one(8090),
        proto: Tcp,
        from: Loopback,
        to: Node(APP),
        when: &[],
        purpose: "Cloud backend REST API + WebSocket, behind the frontend on 443",
        references: &[cite(
            TABLE,
            "8090 TCP Cloud backend REST API + WebSocket; production default is 127.0.0.1:8090 behind Caddy",
        )],
    },
    Row {
        service: Service::Rtsp,
        ports: Ports::one(8554),
        proto: Tcp,
        from: Zone(Z::Cameras),
        to: Node(APP),
        when: &[],
        purpose: "RTSP server (go2rtc), from cameras",
        references: &[cite(
            TABLE,
            "8554 TCP RTSP server (go2rtc), inbound from cameras",
        )],
    },
    Row {
        service: Service::Rtsp,
        ports: Ports::one(8554),
        proto: Tcp,
        from: Zone(Z::Clients),
        to: Node(APP),
        when: &[],
        purpose: "RTSP server (go2rtc), to playback clients",
        references: &[cite(
            TABLE,
            "8554 TCP RTSP server (go2rtc), inbound from playback clients",
        )],
    },
    Row {
        service: Service::Webrtc,
        ports: Ports::one(8555),
        proto: Udp,
        from: Zone(Z::Clients),
        to: Node(APP),
        when: &[],
        purpose: "WebRTC media (go2rtc), ICE candidate transport",
        references: &[
            cite(
                TABLE,
                "8555 UDP WebRTC media (go2rtc), bidirectional with browsers",
            ),
            cite(
                BULLETS,
                "Browser -> WebRTC: inbound UDP 8555 on the cloud server",
            ),
        ],
    },
    Row {
        service: Service::Webrtc,
        ports: Ports::one(8555),
        proto: Udp,
        from: Node(APP),
        to: Zone(Z::Clients),
        when: &[],
        purpose: "WebRTC media (go2rtc), ICE candidate transport",
        references: &[
            cite(
                TABLE,
                "8555 UDP WebRTC media (go2rtc), bidirectional with browsers",
            ),
            cite(
                BULLETS,
                "Browser -> WebRTC: outbound UDP 8555 on the cloud server",
            ),
        ],
    },
    Row {
        service: Service::NodeApi,
        ports: Ports::one(11984),
        proto: Tcp,
        from: Loopback,
        to: Node(APP),
        when: &[],
        purpose: "go2rtc HTTP API: stream management",
        references: &[cite(TABLE, "11984 TCP go2rtc HTTP API, loopback only")],
    },
    Row {
        service: Service::Turn,
        ports: Ports::one(3478),
        proto: Udp,
        from: Zone(Z::Clients),
        to: Node(APP),
        when: &[],
        purpose: "TURN relay control (Pion), for browsers behind strict NAT",
        references: &[
            cite(
                TABLE,
                "3478 UDP TURN relay control (Pion), inbound from browsers behind strict NAT",
            ),
            cite(
                BULLETS,
                "Cloud -> TURN: UDP 3478 inbound open on the cloud server",
            ),
        ],
    },
    Row {
        service: Service::TurnRelay,
        ports: Ports::range(49152, 49252),
        proto: Udp,
        from: Zone(Z::Clients),
        to: Node(APP),
        when: &[],
        purpose: "TURN relay media ports",
        references: &[
            cite(
                TABLE,
                "49152 - 49252 UDP TURN relay media ports, bidirectional",
            ),
            cite(
                BULLETS,
                "Browser -> WebRTC: inbound UDP 49152-49252 on the cloud server",
            ),
        ],
    },
    Row {
        service: Service::TurnRelay,
        ports: Ports::range(49152, 49252),
        proto: Udp,
        from: Node(APP),
        to: Zone(Z::Clients),
        when: &[],
        purpose: "TURN relay media ports",
        references: &[
            cite(
                TABLE,
                "49152 - 49252 UDP TURN relay media ports, bidirectional",
            ),
            cite(
                BULLETS,
                "Browser -> WebRTC: outbound UDP 49152-49252 on the cloud server",
            ),
        ],
    },
    Row {
        service: Service::Database,
        ports: Ports::one(5432),
        proto: Tcp,
        from: Loopback,
        to: Node(APP),
        when: &[],
        purpose: "PostgreSQL, loopback only",
        references: &[
            cite(TABLE, "5432 TCP PostgreSQL, loopback only (prod)"),
            cite(
                BULLETS,
                "Between cloud and database: loopback only, no external rule needed",
            ),
        ],
    },
    Row {
        service: Service::Database,
        ports: Ports::one(5434),
        proto: Tcp,
        from: Loopback,
        to: Node(APP),
        when: &[DevOnly],
        purpose: "PostgreSQL (dev override)",
        references: &[cite(
            TABLE,
            "5434 TCP PostgreSQL (dev override), loopback only",
        )],
    },
    Row {
        service: Service::ObjectStore,
        ports: Ports::one(9000),
        proto: Tcp,
        from: Loopback,
        to: Node(APP),
        when: &[Planned],
        purpose: "MinIO S3 API, planned for v2",
        references: &[cite(
            TABLE,
            "9000 TCP MinIO S3 API, loopback only, planned for v2",
        )],
    },
    Row {
        service: Service::CameraPush,
        ports: Ports::one(554),
        proto: Tcp,
        from: Zone(Z::Cameras),
        to: Node(MEDIA),
        when: &[],
        purpose: "Camera -> gateway (RTSP), opened on a media node one of whose cameras pushes",
        references: &[cite(
            BULLETS,
            "Camera -> gateway: inbound TCP 554 (RTSP) on the gateway LAN",
        )],
    },
    Row {
        service: Service::OnvifDiscovery,
        ports: Ports::one(3702),
        proto: Udp,
        from: Zone(Z::Cameras),
        to: Node(MEDIA),
        when: &[],
        purpose: "Camera -> gateway (ONVIF WS-Discovery)",
        references: &[cite(
            BULLETS,
            "Camera -> gateway: inbound UDP 3702 (ONVIF WS-Discovery) on the gateway LAN",
        )],
    },
    Row {
        service: Service::CameraHttp,
        ports: Ports::one(80),
        proto: Tcp,
        from: Node(MEDIA),
        to: Zone(Z::Cameras),
        when: &[],
        purpose: "Gateway -> cameras (HTTP)",
        references: &[cite(BULLETS, "Gateway -> cameras: outbound TCP 80")],
    },
    Row {
        service: Service::CameraHttps,
        ports: Ports::one(443),
        proto: Tcp,
        from: Node(MEDIA),
        to: Zone(Z::Cameras),
        when: &[],
        purpose: "Gateway -> cameras (HTTPS)",
        references: &[cite(BULLETS, "Gateway -> cameras: outbound TCP 443")],
    },
    Row {
        service: Service::CameraRtsp,
        ports: Ports::one(554),
        proto: Tcp,
        from: Node(MEDIA),
        to: Zone(Z::Cameras),
        when: &[],
        purpose: "Gateway -> cameras (RTSP)",
        references: &[cite(BULLETS, "Gateway -> cameras: outbound TCP 554")],
    },
    Row {
        service: Service::CameraOnvif,
        ports: Ports::one(2020),
        proto: Tcp,
        from: Node(MEDIA),
        to: Zone(Z::Cameras),
        when: &[],
        purpose: "Gateway -> cameras (the camera's ONVIF port, often 2020)",
        references: &[cite(
            BULLETS,
            "Gateway -> cameras: outbound the camera's ONVIF port (often 2020)",
        )],
    },
];
