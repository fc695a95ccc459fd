//! The file's types: `site.toml` exactly as written, checked only for shape.
//!
//! These are plain serde structs with `deny_unknown_fields`. The JSON Schema (`sited schema`) is
//! derived from them, and so is the shape check that reports every unknown key and wrong type at
//! once ([`super::shape`]). Meaning (addresses, names, references between entries) is checked
//! later, by [`super::validate`], into a [`super::Site`]. Every field names its default.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::catalog::Layout;

/// The one file that describes a site.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "sited site.toml",
    description = "The one file that describes a sited site."
)]
pub struct SiteFile {
    /// The site as a whole. Required.
    pub site: SiteSection,
    /// The certificate for TLS, used when `ssl = "enabled"`. Default: none, in which case each
    /// node generates a self-signed certificate once.
    pub tls: Option<TlsSection>,
    /// The zones: who may reach which port. Default: every zone empty.
    #[serde(default)]
    pub networks: Networks,
    /// Optional parts of the layout that a site turns on. Default: all off.
    #[serde(default)]
    pub features: Features,
    /// The servers of the site: exactly one has the application role. Required.
    pub nodes: Vec<NodeEntry>,
    /// The cameras. Default: none.
    #[serde(default)]
    pub cameras: Vec<CameraEntry>,
    /// How long recordings are kept, on every node. Default: until the disk needs the space.
    #[serde(default)]
    pub recording: RecordingLimits,
    /// The mobile devices that may publish over RTMP (VALT's BEAM). Default: none.
    #[serde(default)]
    pub mobile_devices: Vec<MobileDevice>,
    /// The people who log in to the web UI, the API and the video outputs. Default: none (only
    /// the unauthenticated health endpoint answers).
    #[serde(default)]
    pub users: Vec<UserEntry>,
    /// Moves a catalog service to another port: `<service> = <port>`. A service with a port range
    /// moves as a whole, keeping its width. Default: the layout's documented ports.
    #[serde(default)]
    pub ports: BTreeMap<String, PortNumber>,
}

/// A TCP or UDP port number, 1 to 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct PortNumber(pub u16);

impl JsonSchema for PortNumber {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PortNumber".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A TCP or UDP port number.",
            "type": "integer",
            "minimum": 1,
            "maximum": 65535
        })
    }
}

/// `[site]`: the site as a whole.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteSection {
    /// The site's name: letters, digits, `-` and `_`. Required. It names the self-signed
    /// certificate and shows in the UI.
    pub name: String,
    /// Which reference document the site follows. Required.
    pub layout: Layout,
    /// Whether clients reach the site over TLS. Default: `"disabled"`.
    #[serde(default)]
    pub ssl: Ssl,
    /// The output policy of the firewall. Default: `"open"`.
    #[serde(default)]
    pub egress: Egress,
    /// Origins (`https://host[:port]` or `http://host[:port]`, as a browser sends them) whose
    /// pages may read the site's live, VOD, clip and API responses (CORS), with the viewer's
    /// credentials: an integrator's page that plays the streams with hls.js. Default: none.
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

/// Whether clients reach the site over TLS; the layouts open different ports for each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ssl {
    /// Plain HTTP and WS (🔓 in VALT).
    #[default]
    Disabled,
    /// HTTPS and WSS (🔒 in VALT).
    Enabled,
}

/// The firewall's output policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Egress {
    /// Every outbound connection is allowed.
    #[default]
    Open,
    /// Only the documented outbound flows are allowed: cameras, licence hosts, peer nodes, DNS,
    /// NTP and updates.
    Documented,
}

/// `[tls]`: give both paths or neither.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The PEM certificate chain, on the appliance. Default: none.
    pub certificate: Option<String>,
    /// The PEM private key, on the appliance. Default: none.
    pub key: Option<String>,
}

/// `[networks]`: CIDR lists, IPv4 and IPv6 mixed. An absent list means nobody.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Networks {
    /// Client machines: browsers, players. Default: `[]`.
    #[serde(default)]
    pub clients: Vec<String>,
    /// Machines admins work from. Default: `[]`.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Cameras and other video devices. Default: `[]`.
    #[serde(default)]
    pub cameras: Vec<String>,
    /// Mobile devices that stream to media nodes. Default: `[]`.
    #[serde(default)]
    pub mobile: Vec<String>,
}

/// `[features]`: optional parts of the layout.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Features {
    /// Open the administration ports (SSH, media admin) to `admins`. Default: `false`.
    #[serde(default)]
    pub admin: bool,
    /// Mobile devices may stream to media nodes (VALT's BEAM). Default: `false`.
    #[serde(default)]
    pub mobile: bool,
    /// The media engine's licence key. Default: `"none"`.
    #[serde(default)]
    pub license: License,
    /// Expose the REST server to clients (Ti Top: "only when integrating with outside systems").
    /// Default: `false`.
    #[serde(default)]
    pub integration: bool,
}

/// The kind of licence key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum License {
    /// No licence key.
    #[default]
    None,
    /// A physical key: no licence server is contacted.
    Physical,
    /// An electronic key: opens egress to the licence hosts.
    Electronic,
}

/// `[[nodes]]`: one server of the site.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// The node's name: letters, digits, `-` and `_`. Required. `sited run` finds its own entry by
    /// this name.
    pub name: String,
    /// The node's IP address, IPv4 or IPv6, as the other nodes and the clients reach it. Required.
    pub address: String,
    /// `application`, `media`, or both. Required.
    pub roles: Vec<Role>,
}

/// A role of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The web application, the API and coordination; exactly one node has it.
    Application,
    /// Talks to the cameras, streams and records.
    Media,
}

/// `[[cameras]]`: one camera.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CameraEntry {
    /// The camera's name: letters, digits, `-` and `_`. Required. It is the stream's name in every
    /// output URL.
    pub name: String,
    /// The stream, `rtsp://host[:port]/path` or `rtsps://…`, without credentials. Required,
    /// unless the camera pushes.
    pub url: Option<String>,
    /// The camera pushes its stream to its node (RTSP ANNOUNCE and RECORD to
    /// `rtsp://NODE:554/<name>`, NovaVMS's camera port) instead of being pulled from `url`.
    /// It then logs in with `username` and the password in `password_file` (HTTP Digest).
    /// Default: `false`.
    #[serde(default)]
    pub push: bool,
    /// The RTSP user name: the one sited logs in as, or, for a pushing camera, the one the camera
    /// must log in as. Default: none (required to push).
    pub username: Option<String>,
    /// A file on the appliance that holds that user's password. Default: none (required to push).
    pub password_file: Option<String>,
    /// The media node that ingests the camera. Default: in a site with one media node, that
    /// node; otherwise chosen by rendezvous hashing of the camera's name over the media nodes, so
    /// that adding a node moves only the cameras the new node wins.
    pub node: Option<String>,
    /// The camera's ONVIF port, opened outbound with `egress = "documented"`. Default: none.
    pub onvif_port: Option<PortNumber>,
    /// Record the camera continuously. Default: `false`.
    #[serde(default)]
    pub record: bool,
    /// How RTP travels from the camera. Default: `"tcp"`.
    #[serde(default)]
    pub transport: Transport,
    /// Keep this camera's recordings at most this many days. Default: `[recording] keep_days`.
    pub keep_days: Option<u32>,
    /// Keep at most this many bytes of this camera's recordings. Default: no limit of its own.
    pub max_bytes: Option<u64>,
}

/// `[recording]`: retention, applied on each node to the recordings it holds. The oldest media
/// is deleted first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordingLimits {
    /// Delete recordings older than this many days. Default: no age limit.
    pub keep_days: Option<u32>,
    /// Keep at most this many bytes of recordings on the node. Default: no size limit.
    pub max_bytes: Option<u64>,
    /// Keep at least this many bytes free on the recordings' disk. Default: 1 GiB.
    pub min_free_bytes: Option<u64>,
}

/// How RTP travels from a camera.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Interleaved in the RTSP connection.
    #[default]
    Tcp,
    /// Separate UDP packets.
    Udp,
}

/// `[[users]]`: one person who logs in.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// The login name: letters, digits, `-` and `_`. Required.
    pub name: String,
    /// What the user may do. Required.
    pub role: UserRole,
    /// The password as an argon2 PHC string, from `sited hash-password`. Required.
    pub password_hash: String,
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    /// Everything a viewer may, plus the config history and validating candidate files.
    Admin,
    /// Watch live video and recordings, and read the site's state.
    Viewer,
}

/// `[[mobile_devices]]`: a device that may publish a live stream over RTMP.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MobileDevice {
    /// The device's name: letters, digits, `-` and `_`. Required. Its stream appears under this
    /// name, like a camera's.
    pub name: String,
    /// A file on the appliance holding the device's stream key (its RTMP stream name). Required.
    pub key_file: String,
}
