//! sited: a video-management appliance configured by one file.
//!
//! A map of the crate, bottom to top. Each layer imports only the layers above it in this
//! list (below it in the stack); `tests/tests/layers.rs` fails the build's tests on any import
//! that runs upward.
//!
//! | layer | what it holds |
//! |---|---|
//! | [`base`] | the error type, backoff, random bytes, hex, time formats, atomic writes, the accept loop, test skips |
//! | [`system`] | the process and its host: journald logging, systemd notifications |
//! | [`catalog`] | every port of the three reference documents, as rows of data |
//! | [`config`] | `site.toml` → parse → shape → validate → [`config::Site`] |
//! | [`plan`] | `(Site, node)` → flows, listeners, cameras, TLS, the nft ruleset (rendered as text and JSON), and [`plan::diff`]: the one decision of what changes |
//! | [`state`] | what the running daemon shows of itself: the types the web and metrics read |
//! | [`firewall`] | applying a ruleset through a driver: check, replace, verify, restore |
//! | [`store`] | the state database: config history, recordings index, schema upgrades |
//! | [`auth`] | users, sessions, tokens, credentials and the login throttle |
//! | [`onvif`] | finding cameras on the LAN: WS-Discovery, ONVIF SOAP, `[[cameras]]` text |
//! | [`media`] | ingest, the hub, muxers, the RTMP and RTSP servers, RTSP push, WebRTC and TURN, the recorder |
//! | [`nodes`] | the node link: the site secret's handshake, sealed frames, distribution of the site file, the registry of linked nodes |
//! | [`web`] | the HTTP surfaces: UI, REST API, live and VOD routes, TLS |
//! | [`reconcile`] | the daemon: one attempt decides with `plan::diff` and applies through drivers |
//! | [`cmd`] | one module per command of the `sited` binary |

pub mod auth;
pub mod base;
pub mod catalog;
pub mod cmd;
pub mod config;
pub mod firewall;
pub mod media;
pub mod nodes;
pub mod onvif;
pub mod plan;
pub mod reconcile;
pub mod state;
pub mod store;
pub mod system;
pub mod web;
