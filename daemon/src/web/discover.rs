//! `POST /api/v1/discover` (admins): ONVIF discovery from this node, on demand.
//!
//! It runs only on a media node whose layout documents ONVIF WS-Discovery (NovaVMS's UDP 3702,
//! the `onvif_discovery` catalog row); the probe leaves from the node's own address. The answer,
//! also kept for the Cameras page, tells each device apart: a configured camera (one whose URL
//! host is the device's address) with its ONVIF model and firmware, or a device found but not
//! configured, with its `[[cameras]]` snippet named apart from the configured cameras. One
//! discovery runs at a time; a second request while one runs gets 409.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{App, require_admin};
use crate::auth::Principal;
use crate::base::{Kind, ResultExt as _};
use crate::catalog::{self, Service};
use crate::config::Site;
use crate::onvif::{self, Credentials, probe, render};

/// What an admin may ask of a discovery.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    /// Also probe every address of this IPv4 network, as a CIDR (a /22 or smaller).
    pub network: Option<String>,
    /// The ONVIF user to ask the devices as.
    pub user: Option<String>,
    /// Its password.
    pub password: Option<String>,
    /// Seconds to gather answers (0.5 to 10; default 2).
    pub window: Option<f64>,
}

/// One device of a discovery, as the API and the Cameras page show it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Seen {
    /// The address it answered from.
    pub address: String,
    /// Its ONVIF manufacturer and model, if it told them.
    pub model: Option<String>,
    /// Its firmware version, if it told it.
    pub firmware: Option<String>,
    /// The configured camera at this address, if any.
    pub configured: Option<String>,
    /// Why it gave no stream, if so.
    pub problem: Option<String>,
    /// Its `[[cameras]]` entries (for a device not configured).
    pub toml: Option<String>,
}

/// The last discovery of the node.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Discovery {
    /// When it ran, RFC 3339.
    pub at: String,
    /// The devices.
    pub devices: Vec<Seen>,
    /// Datagrams received, and refused as unreadable.
    pub datagrams: usize,
    /// Datagrams refused.
    pub refused: usize,
}

/// The last discovery, and whether one is running.
#[derive(Debug, Default)]
pub struct Discoveries {
    last: Mutex<Option<Arc<Discovery>>>,
    running: std::sync::atomic::AtomicBool,
}

impl Discoveries {
    /// The last discovery, if one ran.
    pub fn last(&self) -> Option<Arc<Discovery>> {
        self.last.lock().ok()?.clone()
    }
}

/// Pairs a discovery's devices with the site's cameras (pure).
pub fn seen(site: &Site, report: &onvif::Report, username: Option<&str>) -> Vec<Seen> {
    let configured = |address: IpAddr| {
        site.cameras
            .iter()
            .find(|c| c.host.parse::<IpAddr>().ok() == Some(address))
            .map(|c| c.name.clone())
    };
    let taken: Vec<&str> = site.cameras.iter().map(|c| c.name.as_str()).collect();
    render::found(&report.devices, &taken, username)
        .into_iter()
        .map(|f| {
            let info = f.device.information.as_ref();
            let camera = configured(f.device.address);
            Seen {
                address: f.device.address.to_string(),
                model: info.map(|i| format!("{} {}", i.manufacturer, i.model).trim().to_string()),
                firmware: info.map(|i| i.firmware.clone()),
                problem: f.device.problem.as_ref().map(|p| p.to_string()),
                toml: camera.is_none().then_some(f.toml),
                configured: camera,
            }
        })
        .collect()
}

fn refuse(code: StatusCode, why: impl Into<String>) -> Response {
    (code, Json(serde_json::json!({"error": why.into()}))).into_response()
}

/// Releases the "running" flag when the discovery ends, however it ends.
struct Running<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// `POST /api/v1/discover`.
pub async fn discover(
    State(app): State<Arc<App>>,
    Extension(p): Extension<Principal>,
    body: String,
) -> Response {
    if let Err(r) = require_admin(&p) {
        return r;
    }
    let ask: Ask = if body.trim().is_empty() {
        Ask::default()
    } else {
        match serde_json::from_str(&body) {
            Ok(a) => a,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("bad request: {e}")),
        }
    };
    let (site, node) = {
        let Ok(s) = app.status.read() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        (s.site.clone(), s.node.clone())
    };
    let Some(site) = site else {
        return refuse(StatusCode::CONFLICT, "no site is in force");
    };
    let Some(node) = node.as_deref().and_then(|n| site.node(n)) else {
        return refuse(StatusCode::CONFLICT, "this node is not in the site");
    };
    if !node.roles.media
        || !catalog::rows(site.layout).any(|r| r.service == Service::OnvifDiscovery)
    {
        return refuse(
            StatusCode::CONFLICT,
            format!(
                "discovery runs on a media node of a layout that documents ONVIF WS-Discovery (UDP 3702); layout {} does not, or this node is not a media node",
                site.layout
            ),
        );
    }
    let window = ask.window.unwrap_or(onvif::WINDOW.as_secs_f64());
    if !(0.5..=10.0).contains(&window) {
        return refuse(StatusCode::BAD_REQUEST, "window is 0.5 to 10 seconds");
    }
    let network = ask.network.as_deref().map(|n| {
        n.parse::<ipnet::IpNet>()
            .err_kind(Kind::Invalid, || format!("network {n}"))
            .and_then(probe::targets)
    });
    let unicast = match network.transpose() {
        Ok(t) => t.unwrap_or_default(),
        Err(e) => return super::failure(&e),
    };
    let credentials = match (&ask.user, &ask.password) {
        (Some(u), Some(pw)) => Some(Credentials {
            username: u.clone(),
            password: pw.clone(),
        }),
        (None, None) => None,
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "give both user and password, or neither",
            );
        }
    };
    let scan = probe::Scan {
        local: match node.address {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        },
        multicast: true,
        unicast,
        window: Duration::from_secs_f64(window),
    };
    let discoveries = app.discoveries.clone();
    if discoveries
        .running
        .compare_exchange(
            false,
            true,
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
        )
        .is_err()
    {
        return refuse(StatusCode::CONFLICT, "a discovery is running");
    }
    let _running = Running(&discoveries.running);
    let report = match onvif::discover(&scan, credentials.as_ref()).await {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot probe: {e}"),
            );
        }
    };
    tracing::info!(
        devices = report.devices.len(),
        datagrams = report.datagrams,
        refused = report.refused,
        "ONVIF discovery"
    );
    let discovery = Arc::new(Discovery {
        at: crate::base::time::now_rfc3339(),
        devices: seen(&site, &report, ask.user.as_deref()),
        datagrams: report.datagrams,
        refused: report.refused,
    });
    if let Ok(mut last) = discoveries.last.lock() {
        *last = Some(discovery.clone());
    }
    Json(discovery.as_ref().clone()).into_response()
}

/// The Cameras page's discovery section: the button (admins), the devices found but not
/// configured with their snippets, and when the last discovery ran.
pub fn section(last: Option<&Discovery>, admin: bool) -> String {
    use super::page::{esc, table};
    let mut out = String::from("<h2>Discovery</h2>");
    if admin {
        out.push_str(
            "<p><button type=\"button\" onclick=\"this.disabled=true;this.textContent='Discovering…';\
             fetch('/api/v1/discover',{method:'POST'}).then(()=>location.reload())\">Discover ONVIF cameras</button></p>",
        );
    }
    let Some(last) = last else {
        out.push_str("<p class=\"note\">No discovery has run on this node.</p>");
        return out;
    };
    let rows: Vec<Vec<String>> = last
        .devices
        .iter()
        .filter(|d| d.configured.is_none())
        .map(|d| {
            vec![
                esc(&d.address),
                esc(d.model.as_deref().unwrap_or("")),
                match (&d.problem, &d.toml) {
                    (Some(p), _) => format!("<span class=\"error\">{}</span>", esc(p)),
                    (None, Some(t)) => format!("<pre>{}</pre>", esc(t)),
                    _ => String::new(),
                },
            ]
        })
        .collect();
    out.push_str(&format!(
        "<p class=\"note\">Last run {}: {} device(s), {} configured.</p>",
        esc(&last.at),
        last.devices.len(),
        last.devices.len() - rows.len()
    ));
    if !rows.is_empty() {
        out.push_str("<h3>Found, not configured</h3>");
        out.push_str(&table(&["Address", "Model", "Paste into site.toml"], &rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onvif::discovery::Scopes;
    use crate::onvif::soap::DeviceInformation;

    fn device(address: &str, problem: Option<onvif::Problem>) -> onvif::Device {
        onvif::Device {
            address: address.parse().unwrap(),
            endpoint: format!("urn:uuid:{address}"),
            xaddr: None,
            onvif_port: Some(80),
            scopes: Scopes {
                name: Some("lobby".into()),
                ..Scopes::default()
            },
            information: Some(DeviceInformation {
                manufacturer: "Acme".into(),
                model: "X1".into(),
                firmware: "2.0".into(),
                serial: "1".into(),
            }),
            profiles: vec![onvif::soap::Profile {
                token: "p".into(),
                uri: Some(format!("rtsp://{address}/s")),
                ..Default::default()
            }],
            problem,
        }
    }

    #[test]
    fn configured_cameras_are_told_from_new_ones() {
        let checked = crate::plan::check(
            "[site]\nname = \"s\"\nlayout = \"novavms\"\n[[nodes]]\nname = \"gw\"\naddress = \"192.0.2.1\"\nroles = [\"application\", \"media\"]\n[[cameras]]\nname = \"lobby\"\nurl = \"rtsp://198.51.100.7/s\"\n",
            crate::config::Options::default(),
        );
        let site = checked.site.unwrap();
        let report = onvif::Report {
            devices: vec![
                device("198.51.100.7", None),
                device("198.51.100.8", None),
                device(
                    "198.51.100.9",
                    Some(onvif::Problem::Credentials("no".into())),
                ),
            ],
            ..Default::default()
        };
        let seen = seen(&site, &report, None);
        assert_eq!(seen[0].configured.as_deref(), Some("lobby"));
        assert_eq!(
            (seen[0].model.as_deref(), seen[0].firmware.as_deref()),
            (Some("Acme X1"), Some("2.0"))
        );
        assert!(seen[0].toml.is_none());
        let new = seen[1].toml.as_deref().unwrap();
        assert!(
            new.contains("name = \"lobby-8\""),
            "named apart from the configured camera: {new}"
        );
        assert!(
            seen[2]
                .problem
                .as_deref()
                .unwrap()
                .contains("refused the credentials")
        );
        let html = section(
            Some(&Discovery {
                devices: seen,
                ..Default::default()
            }),
            true,
        );
        assert!(
            html.contains("Found, not configured")
                && html.contains("lobby-8")
                && html.contains("Discover ONVIF cameras")
        );
        assert!(!section(None, false).contains("button"));
    }
}
