//! The UI pages, rendered on the server: overview, cameras, ports, config history, login.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::page::{badge, esc, frame, table};
use super::{App, COOKIE, Peer};
use crate::auth::{Principal, Refusal, SESSION_TTL};
use crate::config::site::UserRole;
use crate::media::ingest::CameraState;
use crate::state::{ListenerState, Status};

fn site_name(s: &Status) -> String {
    s.site
        .as_ref()
        .map_or_else(|| "unconfigured".to_string(), |s| s.name.clone())
}

fn diagnostics_list(diagnostics: &serde_json::Value) -> String {
    let items: Vec<String> = diagnostics
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            format!(
                "<li><code>{}:{}:{}</code> {} <strong>{}</strong> {}<br><span class=\"note\">help: {}</span></li>",
                esc(d["file"].as_str().unwrap_or("")),
                d["line"],
                d["column"],
                badge(if d["severity"] == "error" { "bad" } else { "warn" }, d["code"].as_str().unwrap_or("")),
                esc(d["severity"].as_str().unwrap_or("")),
                esc(d["message"].as_str().unwrap_or("")),
                esc(d["help"].as_str().unwrap_or(""))
            )
        })
        .collect();
    if items.is_empty() {
        String::new()
    } else {
        format!("<ul>{}</ul>", items.join(""))
    }
}

/// `GET /`: the site, the node, its roles, the config version and the last reload.
pub async fn overview(State(app): State<Arc<App>>, Extension(p): Extension<Principal>) -> Response {
    let Ok(s) = app.status.read() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut body = String::new();
    if let Some(why) = &s.unconfigured {
        body.push_str(&format!(
            "<p class=\"error\">{}</p><p>This node runs no site yet. Put the site file at <code>/etc/sited/site.toml</code>, or on the boot partition as <code>sited/site.toml</code> before the first boot; check it first with <code>sited validate site.toml</code>. sited picks it up as soon as it is saved.</p>",
            esc(why)
        ));
    }
    if let (Some(site), Some(plan)) = (&s.site, &s.plan) {
        let roles = [
            (plan.roles().application, "application"),
            (plan.roles().media, "media"),
        ]
        .iter()
        .filter(|(has, _)| *has)
        .map(|(_, r)| *r)
        .collect::<Vec<_>>()
        .join(", ");
        body.push_str(&format!(
            "<dl><dt>Site</dt><dd>{}</dd><dt>Layout</dt><dd>{} ({})</dd><dt>Node</dt><dd>{} · {}</dd><dt>Roles</dt><dd>{}</dd><dt>Nodes in the site</dt><dd>{}</dd><dt>Cameras on this node</dt><dd>{}</dd><dt>Firewall</dt><dd>{} · {} rules</dd>",
            esc(&site.name),
            esc(site.layout.product()),
            esc(site.layout.name()),
            esc(&plan.node.name),
            plan.address(),
            roles,
            site.nodes.len(),
            plan.cameras.len(),
            esc(&s.firewall.driver),
            s.firewall.rules
        ));
        if let Some(v) = &s.version {
            body.push_str(&format!(
                "<dt>Config version</dt><dd><code>{}</code>, applied {}</dd>",
                esc(&v.sha256[..12.min(v.sha256.len())]),
                esc(&v.applied_at)
            ));
        }
        body.push_str("</dl>");
    }
    if let Some(last) = &s.last {
        let kind = match last.outcome.as_str() {
            "applied" | "unchanged" | "imported" => "ok",
            _ => "bad",
        };
        body.push_str(&format!(
            "<h2>Last reload</h2><p>{} at {}</p><pre>{}</pre>{}",
            badge(kind, &last.outcome),
            esc(&last.at),
            esc(&last.summary),
            diagnostics_list(&last.diagnostics)
        ));
    }
    frame("Overview", &site_name(&s), Some(&p.name), "/", &body).into_response()
}

/// `GET /cameras`: the cameras of this node and their state.
pub async fn cameras(State(app): State<Arc<App>>, Extension(p): Extension<Principal>) -> Response {
    let Ok(s) = app.status.read() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let states = app.cameras.read().map(|c| c.clone()).unwrap_or_default();
    let rows: Vec<Vec<String>> = s
        .plan
        .iter()
        .flat_map(|p| p.cameras.iter())
        .map(|c| {
            let st = states.get(&c.name);
            let state = match st.map(|x| &x.state) {
                Some(CameraState::Streaming) => badge("ok", "streaming"),
                Some(CameraState::Failed) => badge("bad", "failed"),
                _ => badge("warn", "connecting"),
            };
            let detail = st
                .map(|x| {
                    let mut d = Vec::new();
                    if let Some(v) = &x.video {
                        d.push(esc(v));
                    }
                    if let Some(a) = &x.audio {
                        d.push(esc(a));
                    }
                    if x.state == CameraState::Streaming {
                        d.push(format!("{:.1} fps, {} kbit/s", x.fps, x.bitrate / 1000));
                    }
                    if let Some(e) = &x.error {
                        d.push(format!("<span class=\"error\">{}</span>", esc(e)));
                    }
                    d.join("<br>")
                })
                .unwrap_or_default();
            let last = st.and_then(|x| x.last_frame.clone()).unwrap_or_default();
            vec![
                esc(&c.name),
                format!("<code>{}</code>", esc(&c.url)),
                if c.record { "yes".into() } else { "no".into() },
                state,
                detail,
                esc(&last),
            ]
        })
        .collect();
    let body = if rows.is_empty() {
        "<p class=\"note\">This node ingests no camera.</p>".to_string()
    } else {
        table(
            &["Camera", "Stream", "Recorded", "State", "", "Last frame"],
            &rows,
        )
    };
    frame("Cameras", &site_name(&s), Some(&p.name), "/cameras", &body).into_response()
}

/// `GET /live`: a grid of the node's cameras, playing live over WebRTC (WHEP) where the node
/// serves it, else (and as the fallback) through the WebSocket output.
pub async fn live(State(app): State<Arc<App>>, Extension(p): Extension<Principal>) -> Response {
    let Ok(s) = app.status.read() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let output = s.listeners.values().find(|l| {
        matches!(
            l.service,
            crate::catalog::Service::Live
                | crate::catalog::Service::LiveTls
                | crate::catalog::Service::HttpLive
        ) && l.state == ListenerState::Serving
    });
    let whep = s
        .listeners
        .values()
        .any(|l| l.service == crate::catalog::Service::Webrtc && l.state == ListenerState::Serving);
    let cameras: Vec<String> = s
        .plan
        .iter()
        .flat_map(|p| p.cameras.iter())
        .map(|c| c.name.clone())
        .collect();
    let body = match output {
        None if !whep => "<p class=\"note\">No live output listens on this node: its layout has no WebSocket or HTTP live port.</p>".to_string(),
        _ if cameras.is_empty() => "<p class=\"note\">This node ingests no camera.</p>".to_string(),
        _ => {
            let (token, _) = match app.auth.grant(p.clone(), crate::auth::TOKEN_TTL) {
                Ok(t) => t,
                Err(e) => return super::failure(&e),
            };
            let tiles: String = cameras
                .iter()
                .map(|c| format!("<figure><video data-stream=\"{0}\" muted autoplay playsinline></video><figcaption>{0} <span class=\"state note\"></span></figcaption></figure>", esc(c)))
                .collect();
            // Without a live port of its own (NovaVMS), MSE plays from the web port itself.
            let (port, tls) = output.map_or((String::new(), false), |l| (l.bound_port.lo.to_string(), l.tls));
            format!(
                "<div class=\"grid\" data-live-port=\"{port}\" data-live-tls=\"{tls}\" data-whep=\"{whep}\" data-token=\"{token}\">{tiles}</div><script src=\"/assets/live.js\"></script>",
            )
        }
    };
    frame("Live", &site_name(&s), Some(&p.name), "/live", &body).into_response()
}

/// The recordings page's form.
#[derive(Debug, Deserialize)]
pub struct ClipForm {
    /// The camera.
    pub camera: Option<String>,
    /// RFC 3339, or `datetime-local` (taken as UTC).
    pub start: Option<String>,
    /// RFC 3339, or `datetime-local` (taken as UTC).
    pub end: Option<String>,
}

fn utc(t: &str) -> String {
    // A browser's datetime-local has no zone and may lack seconds: read it as UTC.
    let t = t.trim();
    if t.ends_with('Z') || t.contains('+') {
        t.to_string()
    } else if t.len() == 16 {
        format!("{t}:00Z")
    } else {
        format!("{t}Z")
    }
}

/// `GET /recordings`: each camera's recorded spans of the last day, and a form to download a clip.
pub async fn recordings(
    State(app): State<Arc<App>>,
    Extension(p): Extension<Principal>,
    Query(form): Query<ClipForm>,
) -> Response {
    if let (Some(camera), Some(start), Some(end)) = (&form.camera, &form.start, &form.end) {
        let to = format!(
            "/api/v1/cameras/{}/clip.mp4?start={}&end={}",
            camera,
            utc(start),
            utc(end)
        );
        return Redirect::to(&to).into_response();
    }
    let Ok(s) = app.status.read() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let cameras: Vec<String> = s
        .plan
        .iter()
        .flat_map(|p| p.cameras.iter())
        .filter(|c| c.record)
        .map(|c| c.name.clone())
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut rows = Vec::new();
    if let Ok(store) = app.store.lock() {
        for c in &cameras {
            let spans = store
                .recording_spans(c, now - 86_400_000, now)
                .unwrap_or_default();
            let fmt = |ms: i64| {
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64),
                )
                .to_string()
            };
            let list: Vec<String> = spans
                .iter()
                .map(|sp| format!("{} – {}", fmt(sp.start_ms), fmt(sp.end_ms)))
                .collect();
            rows.push(vec![
                esc(c),
                if list.is_empty() {
                    "<span class=\"note\">nothing yet</span>".into()
                } else {
                    esc(&list.join("\n")).replace('\n', "<br>")
                },
            ]);
        }
    }
    let options: String = cameras
        .iter()
        .map(|c| format!("<option>{}</option>", esc(c)))
        .collect();
    let body = if cameras.is_empty() {
        "<p class=\"note\">No camera of this node is recorded: set <code>record = true</code> on a camera.</p>".to_string()
    } else {
        format!(
            "{}<h2>Download a clip</h2><form class=\"login\" method=\"get\" action=\"/recordings\"><label>Camera <select name=\"camera\">{options}</select></label><label>From (UTC) <input name=\"start\" type=\"datetime-local\" step=\"1\" required></label><label>To (UTC) <input name=\"end\" type=\"datetime-local\" step=\"1\" required></label><button>Download MP4</button></form>",
            table(&["Camera", "Recorded in the last 24 hours (UTC)"], &rows)
        )
    };
    frame(
        "Recordings",
        &site_name(&s),
        Some(&p.name),
        "/recordings",
        &body,
    )
    .into_response()
}

/// `GET /ports`: this node's port table, as `sited ports` prints it, and its listeners.
pub async fn ports(State(app): State<Arc<App>>, Extension(p): Extension<Principal>) -> Response {
    let Ok(s) = app.status.read() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut body = String::new();
    if let Some(plan) = &s.plan {
        let rows: Vec<Vec<String>> = plan
            .flows
            .iter()
            .map(|f| crate::plan::flow::cells(f).iter().map(|c| esc(c)).collect())
            .collect();
        body.push_str(&table(&crate::plan::flow::COLUMNS, &rows));
    }
    let listeners: Vec<Vec<String>> = s
        .listeners
        .values()
        .map(|l| {
            let state = match &l.state {
                ListenerState::Serving => badge("ok", "serving"),
                ListenerState::Failed { error, attempts } => {
                    badge("bad", &format!("failed ({attempts}): {error}"))
                }
                ListenerState::System => badge("ok", "the OS serves it"),
                ListenerState::InProcess => badge("ok", "in process"),
                ListenerState::NotBuilt => badge("warn", "not built yet"),
            };
            let port = if l.port == l.bound_port {
                l.port.to_string()
            } else {
                format!("{} (bound on {})", l.port, l.bound_port)
            };
            vec![
                esc(l.service.name()),
                format!("{} {port}", l.proto),
                format!("{:?}", l.bind).to_lowercase(),
                if l.tls { "TLS".into() } else { String::new() },
                state,
            ]
        })
        .collect();
    body.push_str("<h2>Listeners</h2>");
    body.push_str(&table(
        &["Service", "Port", "Bind", "", "State"],
        &listeners,
    ));
    frame("Ports", &site_name(&s), Some(&p.name), "/ports", &body).into_response()
}

/// `GET /history`: the config history, newest first (admins).
pub async fn history(State(app): State<Arc<App>>, Extension(p): Extension<Principal>) -> Response {
    let site = app.status.read().map(|s| site_name(&s)).unwrap_or_default();
    if p.role != UserRole::Admin {
        return (
            StatusCode::FORBIDDEN,
            frame(
                "Config history",
                &site,
                Some(&p.name),
                "/history",
                "<p class=\"error\">The config history is for admins.</p>",
            ),
        )
            .into_response();
    }
    let list = super::with_store(&app, |s| s.history(100, None))
        .await
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            let kind = if matches!(a.outcome.as_str(), "invalid" | "failed") {
                "bad"
            } else {
                "ok"
            };
            vec![
                a.id.to_string(),
                esc(&a.at),
                esc(&a.trigger),
                badge(kind, &a.outcome),
                format!(
                    "<code>{}</code>",
                    esc(&a
                        .sha256
                        .clone()
                        .unwrap_or_default()
                        .chars()
                        .take(12)
                        .collect::<String>())
                ),
                format!(
                    "<pre>{}</pre>{}",
                    esc(&a.summary),
                    diagnostics_list(&a.diagnostics)
                ),
            ]
        })
        .collect();
    frame(
        "Config history",
        &site,
        Some(&p.name),
        "/history",
        &table(
            &["#", "When", "Trigger", "Outcome", "SHA-256", "Summary"],
            &rows,
        ),
    )
    .into_response()
}

/// The login form's query.
#[derive(Debug, Deserialize)]
pub struct Next {
    /// Where to go after logging in.
    pub next: Option<String>,
}

fn login_form(site: &str, next: &str, error: Option<&str>) -> Html<String> {
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    frame(
        "Log in",
        site,
        None,
        "",
        &format!(
            "{error}<form class=\"login\" method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"next\" value=\"{}\"><label>User <input name=\"user\" autocomplete=\"username\" required></label><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label><button>Log in</button></form>",
            esc(next)
        ),
    )
}

/// `GET /login`.
pub async fn login_page(State(app): State<Arc<App>>, Query(q): Query<Next>) -> Html<String> {
    let site = app.status.read().map(|s| site_name(&s)).unwrap_or_default();
    login_form(&site, q.next.as_deref().unwrap_or("/"), None)
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
    /// Where to go next.
    pub next: Option<String>,
}

/// `POST /login`: checks the credentials and sets the session cookie.
pub async fn login(State(app): State<Arc<App>>, req: Request) -> Response {
    let ip = req
        .extensions()
        .get::<Peer>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.0.ip());
    let secure = req.uri().scheme_str() == Some("https")
        || req.extensions().get::<super::tls::Secure>().is_some();
    let Ok(Form(c)) =
        <Form<Credentials> as axum::extract::FromRequest<()>>::from_request(req, &()).await
    else {
        return (StatusCode::BAD_REQUEST, "expected a login form\n").into_response();
    };
    let site = app.status.read().map(|s| site_name(&s)).unwrap_or_default();
    let next = c
        .next
        .filter(|n| n.starts_with('/') && !n.starts_with("//"))
        .unwrap_or_else(|| "/".into());
    match app.auth.login(&app.users(), ip, &c.user, &c.password) {
        Ok(principal) => {
            let (token, _) = match app.auth.grant(principal, SESSION_TTL) {
                Ok(t) => t,
                Err(e) => return super::failure(&e),
            };
            let flags = if secure { "; Secure" } else { "" };
            let cookie = format!(
                "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{flags}",
                SESSION_TTL.as_secs()
            );
            let mut r = Redirect::to(&next).into_response();
            if let Ok(v) = cookie.parse() {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(Refusal::Invalid) => (
            StatusCode::UNAUTHORIZED,
            login_form(&site, &next, Some("Wrong user or password.")),
        )
            .into_response(),
        Err(Refusal::Throttled(left)) => (
            StatusCode::TOO_MANY_REQUESTS,
            login_form(
                &site,
                &next,
                Some(&format!(
                    "Too many failed logins from your address; try again in {} s.",
                    left.as_secs().max(1)
                )),
            ),
        )
            .into_response(),
    }
}

/// `POST /logout`.
pub async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Some(token) = crate::auth::Credentials::from_http(&headers, None).session {
        app.auth.revoke(&token);
    }
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = format!("{COOKIE}=; Path=/; Max-Age=0").parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
