//! The services of sited that the catalog's ports lead to.
//!
//! A [`Service`] is the key of a `[ports]` override and of a listener. Each one names the part of
//! sited (its [`Component`]) that serves it, or says honestly that sited does not serve it: the
//! OS does (SSH), it is built into sited without a socket, or it is not built yet.

use std::fmt;

use serde::Serialize;

/// A service named by the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// The web UI and REST API over plain HTTP.
    Web,
    /// The web UI and REST API over HTTPS.
    WebTls,
    /// The REST API on a port of its own (Ti Top's REST server, NovaVMS's backend).
    Api,
    /// The configuration API, on loopback (Ti Top's config server).
    ConfigApi,
    /// The media engine's control API: between nodes, or on loopback.
    NodeApi,
    /// Internal event messages from the streaming engine (Ti Top UDP 7002).
    EngineEvents,
    /// Live video on one port for every protocol: WebSocket fMP4 and HTTP for players, RTMP from
    /// mobile devices; the listener sniffs the first bytes (VALT 1935).
    Live,
    /// The same over TLS: WSS, HTTPS and RTMPS (VALT 444).
    LiveTls,
    /// RTMP publish and play (Ti Top 1935).
    Rtmp,
    /// HTTP live streaming: HLS and HTTP-FLV (Ti Top 8080).
    HttpLive,
    /// Recorded video on demand, HLS VOD playlists (Ti Top 8086; VALT's Wowza 8086 between
    /// nodes). The same playlists are on the live, downloads and web ports.
    Vod,
    /// Clip downloads (VALT 8000).
    Downloads,
    /// The RTSP server re-serving cameras (NovaVMS 8554).
    Rtsp,
    /// Administration of the media engine (VALT's Wowza admin, 8088).
    MediaAdmin,
    /// SSH, served by the OS's OpenSSH.
    Ssh,
    /// WebRTC media (NovaVMS 8555).
    Webrtc,
    /// The TURN relay's control port (NovaVMS 3478).
    Turn,
    /// The TURN relay's media ports (NovaVMS 49152-49252).
    TurnRelay,
    /// Cameras pushing RTSP to a gateway (NovaVMS "Camera -> gateway" 554).
    CameraPush,
    /// ONVIF WS-Discovery replies from cameras (NovaVMS UDP 3702).
    OnvifDiscovery,
    /// The vendor's database (NovaVMS PostgreSQL); sited embeds SQLite instead.
    Database,
    /// The vendor's object store (NovaVMS MinIO, planned).
    ObjectStore,
    /// A development server (NovaVMS Vite).
    DevServer,
    /// Outbound: the cameras' web API.
    CameraHttp,
    /// Outbound: the cameras' HTTPS API.
    CameraHttps,
    /// Outbound: the cameras' RTSP streams.
    CameraRtsp,
    /// Outbound: each camera's ONVIF port, from `onvif_port`.
    CameraOnvif,
    /// Outbound: the licence servers.
    License,
    /// Outbound: name resolution.
    Dns,
    /// Outbound: time.
    Ntp,
    /// Outbound: OS updates.
    Updates,
}

/// The part of sited that serves a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// The web service: UI, REST API, downloads.
    Web,
    /// The streaming engine: ingest and live outputs.
    Media,
    /// The recorder: VOD and clips.
    Recorder,
    /// Served by the operating system, not sited (OpenSSH).
    System,
    /// Done inside sited, with no socket of its own.
    InProcess,
    /// Nothing in sited serves it yet; the status says so.
    NotBuilt,
    /// Only ever a destination: sited connects out to it.
    Outbound,
}

impl Service {
    /// Every service.
    pub const ALL: [Service; 31] = [
        Service::Web,
        Service::WebTls,
        Service::Api,
        Service::ConfigApi,
        Service::NodeApi,
        Service::EngineEvents,
        Service::Live,
        Service::LiveTls,
        Service::Rtmp,
        Service::HttpLive,
        Service::Vod,
        Service::Downloads,
        Service::Rtsp,
        Service::MediaAdmin,
        Service::Ssh,
        Service::Webrtc,
        Service::Turn,
        Service::TurnRelay,
        Service::CameraPush,
        Service::OnvifDiscovery,
        Service::Database,
        Service::ObjectStore,
        Service::DevServer,
        Service::CameraHttp,
        Service::CameraHttps,
        Service::CameraRtsp,
        Service::CameraOnvif,
        Service::License,
        Service::Dns,
        Service::Ntp,
        Service::Updates,
    ];

    /// The name used as a `[ports]` key and in the port tables.
    pub fn name(self) -> &'static str {
        match self {
            Service::Web => "web",
            Service::WebTls => "web_tls",
            Service::Api => "api",
            Service::ConfigApi => "config_api",
            Service::NodeApi => "node_api",
            Service::EngineEvents => "engine_events",
            Service::Live => "live",
            Service::LiveTls => "live_tls",
            Service::Rtmp => "rtmp",
            Service::HttpLive => "http_live",
            Service::Vod => "vod",
            Service::Downloads => "downloads",
            Service::Rtsp => "rtsp",
            Service::MediaAdmin => "media_admin",
            Service::Ssh => "ssh",
            Service::Webrtc => "webrtc",
            Service::Turn => "turn",
            Service::TurnRelay => "turn_relay",
            Service::CameraPush => "camera_push",
            Service::OnvifDiscovery => "onvif_discovery",
            Service::Database => "database",
            Service::ObjectStore => "object_store",
            Service::DevServer => "dev_server",
            Service::CameraHttp => "camera_http",
            Service::CameraHttps => "camera_https",
            Service::CameraRtsp => "camera_rtsp",
            Service::CameraOnvif => "camera_onvif",
            Service::License => "license",
            Service::Dns => "dns",
            Service::Ntp => "ntp",
            Service::Updates => "updates",
        }
    }

    /// Parses a `[ports]` key.
    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The part of sited that serves it.
    pub fn component(self) -> Component {
        match self {
            Service::Web | Service::WebTls | Service::Api | Service::ConfigApi => Component::Web,
            Service::MediaAdmin => Component::Web,
            Service::NodeApi | Service::Live | Service::LiveTls | Service::Rtmp => Component::Media,
            Service::HttpLive | Service::Rtsp => Component::Media,
            Service::Vod | Service::Downloads => Component::Recorder,
            Service::Ssh => Component::System,
            Service::EngineEvents | Service::Database => Component::InProcess,
            Service::Webrtc | Service::Turn | Service::TurnRelay | Service::CameraPush => {
                Component::Media
            }
            // Bound on demand by `POST /api/v1/discover`, not held open.
            Service::OnvifDiscovery => Component::InProcess,
            Service::ObjectStore | Service::DevServer => Component::NotBuilt,
            Service::CameraHttp | Service::CameraHttps | Service::CameraRtsp => Component::Outbound,
            Service::CameraOnvif | Service::License | Service::Dns | Service::Ntp => {
                Component::Outbound
            }
            Service::Updates => Component::Outbound,
        }
    }

    /// Whether the service is served over TLS whatever the site's `ssl` says.
    pub fn always_tls(self) -> bool {
        matches!(self, Service::WebTls | Service::LiveTls)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
