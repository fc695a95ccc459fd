//! `GET /metrics`: the Prometheus text format.
//!
//! The reload count and failures, the firewall's apply latency and failures, one gauge per
//! listener state and per camera state, and the relays of cameras other nodes ingest.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::App;
use crate::media::ingest::CameraState;
use crate::state::ListenerState;

/// Renders the metrics.
pub async fn render(State(app): State<Arc<App>>) -> impl IntoResponse {
    let mut out = String::new();
    if let Ok(s) = app.status.read() {
        let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in lines {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        metric(
            "sited_reloads_total",
            "counter",
            "Reloads of the site file attempted since start.",
            &[(String::new(), s.reloads.to_string())],
        );
        metric(
            "sited_reload_failures_total",
            "counter",
            "Reloads that were invalid or failed to apply.",
            &[(String::new(), s.reload_failures.to_string())],
        );
        metric(
            "sited_configured",
            "gauge",
            "1 when a site is in force.",
            &[(String::new(), u8::from(s.site.is_some()).to_string())],
        );
        metric(
            "sited_firewall_rules",
            "gauge",
            "Rules of the table in force.",
            &[(String::new(), s.firewall.rules.to_string())],
        );
        metric(
            "sited_firewall_apply_seconds",
            "gauge",
            "How long the last firewall apply took (check, replace, verify).",
            &[(
                String::new(),
                format!("{:.3}", s.firewall.apply_ms.unwrap_or(0) as f64 / 1000.0),
            )],
        );
        metric(
            "sited_firewall_apply_failures_total",
            "counter",
            "Firewall applies that failed, by the error's kind (firewall-rejected, firewall-failed, firewall-mismatch, firewall-restore-failed).",
            &crate::base::Kind::ALL
                .iter()
                .filter(|k| k.name().starts_with("firewall-"))
                .map(|k| {
                    (
                        format!("{{kind=\"{}\"}}", k.name()),
                        s.firewall_failures_by_kind
                            .get(k.name())
                            .copied()
                            .unwrap_or(0)
                            .to_string(),
                    )
                })
                .collect::<Vec<_>>(),
        );
        let states = ["serving", "failed", "system", "in-process", "not-built"];
        let lines: Vec<(String, String)> = s
            .listeners
            .values()
            .flat_map(|l| {
                let current = match l.state {
                    ListenerState::Serving => "serving",
                    ListenerState::Failed { .. } => "failed",
                    ListenerState::System => "system",
                    ListenerState::InProcess => "in-process",
                    ListenerState::NotBuilt => "not-built",
                };
                states.iter().map(move |st| {
                    (
                        format!(
                            "{{service=\"{}\",port=\"{}\",proto=\"{}\",state=\"{st}\"}}",
                            l.service, l.port, l.proto
                        ),
                        u8::from(*st == current).to_string(),
                    )
                })
            })
            .collect();
        metric(
            "sited_listener_state",
            "gauge",
            "1 for the state each listener is in.",
            &lines,
        );
        let states = app.cameras.read().map(|c| c.clone()).unwrap_or_default();
        let names: Vec<String> = s
            .plan
            .iter()
            .flat_map(|p| p.cameras.iter())
            .map(|c| c.name.clone())
            .collect();
        let mut lines = Vec::new();
        let (mut fps, mut bitrate) = (Vec::new(), Vec::new());
        for name in &names {
            let st = states.get(name);
            let current = st.map_or(CameraState::Connecting.name(), |x| x.state.name());
            for state in ["connecting", "streaming", "failed"] {
                lines.push((
                    format!("{{camera=\"{name}\",state=\"{state}\"}}"),
                    u8::from(state == current).to_string(),
                ));
            }
            fps.push((
                format!("{{camera=\"{name}\"}}"),
                format!("{:.1}", st.map_or(0.0, |x| x.fps)),
            ));
            bitrate.push((
                format!("{{camera=\"{name}\"}}"),
                st.map_or(0, |x| x.bitrate).to_string(),
            ));
        }
        metric(
            "sited_camera_state",
            "gauge",
            "1 for the state each camera is in.",
            &lines,
        );
        metric(
            "sited_camera_fps",
            "gauge",
            "Video frames per second from each camera.",
            &fps,
        );
        metric(
            "sited_camera_bitrate_bits",
            "gauge",
            "Bits per second from each camera.",
            &bitrate,
        );
        let relays = app.relays.states();
        metric(
            "sited_relay_readers",
            "gauge",
            "Viewers of each camera relayed to this node from the node that ingests it.",
            &relays
                .iter()
                .map(|(camera, r)| {
                    (
                        format!("{{camera=\"{camera}\",node=\"{}\"}}", r.node),
                        r.readers.to_string(),
                    )
                })
                .collect::<Vec<_>>(),
        );
        metric(
            "sited_relay_active",
            "gauge",
            "1 while a camera is being pulled from the node that ingests it.",
            &relays
                .iter()
                .map(|(camera, r)| {
                    (
                        format!("{{camera=\"{camera}\",node=\"{}\"}}", r.node),
                        u8::from(r.active).to_string(),
                    )
                })
                .collect::<Vec<_>>(),
        );
        metric(
            "sited_relays_opened_total",
            "counter",
            "Relays opened to other nodes since start (each is one stream from that node).",
            &[(String::new(), app.relays.opened().to_string())],
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
