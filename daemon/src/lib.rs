//! sited: a video-management appliance configured by one file.
//!
//! A map of the crate, in pipeline order:
//! - [`catalog`]: every port of the three reference documents, as rows of data;
//! - [`config`]: `site.toml` → parse → shape → validate → [`config::Site`];
//! - [`plan`]: `(Site, node)` → the node's flows, listeners and firewall, as pure data;
//! - [`onvif`]: finding cameras on the LAN (WS-Discovery, ONVIF SOAP) as `[[cameras]]` text;
//! - [`cmd`]: one module per command of the `sited` binary.

pub mod catalog;
pub mod cmd;
pub mod config;
pub mod firewall;
pub mod media;
pub mod onvif;
pub mod plan;
pub mod reconcile;
pub mod store;
pub mod system;
pub mod web;
