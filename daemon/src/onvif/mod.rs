//! ONVIF: finding the cameras of a LAN and what they stream, as text for the one file.
//!
//! - [`discovery`]: the WS-Discovery Probe and ProbeMatches (pure);
//! - [`soap`]: the device and media requests, the WS-Security digest, their replies (pure);
//! - [`xml`]: the bounded tree every reply is read into (pure);
//! - [`device`]: the questions asked of one device, behind a transport seam;
//! - [`render`]: ready-to-paste `[[cameras]]` entries (pure);
//! - [`probe`] and [`http`]: the thin socket work.
//!
//! [`discover`] ties them together with fixed bounds: a gathering window, at most
//! [`probe::MAX_DEVICES`] devices, [`CONCURRENCY`] devices asked at a time, each within
//! [`DEVICE_DEADLINE`], and the whole within the window plus [`ASK_DEADLINE`]. A hostile
//! device on the camera LAN can waste at most those.

pub mod device;
pub mod discovery;
pub mod http;
pub mod probe;
pub mod render;
pub mod soap;
pub mod xml;

use std::time::Duration;

use futures_util::StreamExt as _;

pub use device::{Device, Problem};
pub use soap::Credentials;

/// How many devices are asked at once.
pub const CONCURRENCY: usize = 64;
/// The most one device's questions may take together.
pub const DEVICE_DEADLINE: Duration = Duration::from_secs(6);
/// The most all devices' questions may take together, after the gathering window.
pub const ASK_DEADLINE: Duration = Duration::from_secs(12);
/// The most one ONVIF request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// The default gathering window: four times WS-Discovery's APP_MAX_DELAY (500 ms, the longest a
/// device waits before it answers a multicast Probe), with room for the repeated Probe.
pub const WINDOW: Duration = Duration::from_secs(2);

/// A whole discovery: every device heard, and what the scan saw.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// The devices, in the order they answered.
    pub devices: Vec<Device>,
    /// Datagrams received.
    pub datagrams: usize,
    /// Datagrams refused as not a readable ProbeMatches.
    pub refused: usize,
    /// Whether devices past the limit were left out.
    pub truncated: bool,
}

/// Probes, then asks every device heard.
pub async fn discover(
    scan: &probe::Scan,
    credentials: Option<&Credentials>,
) -> std::io::Result<Report> {
    let heard = probe::scan(scan).await?;
    let transport = http::Http {
        timeout: REQUEST_TIMEOUT,
        credentials: credentials.cloned(),
    };
    let overall = tokio::time::Instant::now() + ASK_DEADLINE;
    let (datagrams, refused, truncated) = (heard.datagrams, heard.refused, heard.truncated);
    let transport = &transport;
    let asks = heard.matches.into_iter().map(|(found, from)| {
        let credentials = credentials.cloned();
        async move {
            let deadline = (tokio::time::Instant::now() + DEVICE_DEADLINE).min(overall);
            let asked = device::interrogate(transport, &found, from, credentials.as_ref());
            match tokio::time::timeout_at(deadline, asked).await {
                Ok(device) => device,
                Err(_) => Device {
                    address: from,
                    endpoint: found.endpoint.clone(),
                    xaddr: found.xaddrs.first().cloned(),
                    onvif_port: None,
                    scopes: found.scopes.clone(),
                    information: None,
                    profiles: Vec::new(),
                    problem: Some(Problem::NoAnswer("no complete answer in time".into())),
                },
            }
        }
    });
    let devices = futures_util::stream::iter(asks)
        .buffered(CONCURRENCY)
        .collect()
        .await;
    Ok(Report {
        devices,
        datagrams,
        refused,
        truncated,
    })
}
