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
use crate::nodes::federation::Live;
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

/// `GET /` on an unconfigured node, without a login: it has no users to log in with, and this
/// page is how an installer learns what to do (issue 16 §2).
pub fn unconfigured(why: &str) -> Response {
    let body = format!(
        "<p class=\"error\">{}</p><p>This node runs no site yet. Put the site file at <code>/etc/sited/site.toml</code>, or on the boot partition as <code>sited/site.toml</code> before the first boot; check it first with <code>sited validate site.toml</code>. sited picks it up as soon as it is saved.</p>",
        esc(why)
    );
    frame("Overview", "unconfigured", None, "/", &body).into_response()
}

/// `GET /`: the site, the node, its roles, the config version and the last reload.
pub async fn overview(State(app): State<Arc<App>>, Extension(p): Extension<Principal>) -> Response {
    let Ok(s) = app.status.read() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut body = String::new();
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
        if let Some(link) = &s.link {
            let state = if link.online {
                badge("ok", "linked")
            } else {
                badge("bad", "offline")
            };
            body.push_str(&format!(
                "<p>Application node <strong>{}</strong>: {state} since {}{}</p>",
                esc(&link.application),
                esc(link.since.as_deref().unwrap_or("start")),
                link.error
                    .as_deref()
                    .map(|e| format!(" <span class=\"note\">({})</span>", esc(e)))
                    .unwrap_or_default()
            ));
        }
    }
    drop(s);
    let rollout = super::site::rollout(&app);
    if let Some(list) = rollout["nodes"].as_array().filter(|l| l.len() > 1) {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|n| {
                let online = if n["online"] == true {
                    badge("ok", "online")
                } else {
                    badge("bad", "offline")
                };
                let last = &n["last"];
                let outcome = last["outcome"].as_str().unwrap_or("");
                let kind = if matches!(outcome, "invalid" | "failed") {
                    "bad"
                } else {
                    "ok"
                };
                vec![
                    esc(n["name"].as_str().unwrap_or("")),
                    esc(&n["roles"]
                        .as_array()
                        .map(|r| {
                            r.iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default()),
                    esc(n["address"].as_str().unwrap_or("")),
                    online,
                    esc(n["last_seen"].as_str().unwrap_or(if n["this"] == true {
                        "now"
                    } else {
                        "never"
                    })),
                    format!(
                        "<code>{}</code>",
                        esc(n["version"]
                            .as_str()
                            .map(|v| &v[..12.min(v.len())])
                            .unwrap_or("none"))
                    ),
                    if outcome.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "{} {}{}",
                            badge(kind, outcome),
                            esc(last["summary"]
                                .as_str()
                                .unwrap_or("")
                                .lines()
                                .next()
                                .unwrap_or("")),
                            diagnostics_list(&last["diagnostics"])
                        )
                    },
                ]
            })
            .collect();
        body.push_str(&format!(
            "<h2>Nodes</h2><p>{}</p>{}",
            esc(rollout["rollout"]["text"].as_str().unwrap_or("")),
            super::page::table(
                &[
                    "Node",
                    "Roles",
                    "Address",
                    "State",
                    "Last seen",
                    "Version",
                    "Last reload"
                ],
                &rows
            )
        ));
    }
    let Ok(s) = app.status.read() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
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

/// `GET /cameras`: the cameras of the site (application node) or of this node, each with the
/// node that ingests it and its state.
pub async fn cameras(State(app): State<Arc<App>>, Extension(p): Extension<Principal>) -> Response {
    let listed = super::api::site_cameras(&app);
    let Ok(s) = app.status.read() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let discovered = app.discoveries.last();
    let onvif = |name: &str| {
        let seen = discovered
            .as_ref()?
            .devices
            .iter()
            .find(|d| d.configured.as_deref() == Some(name))?;
        Some(format!(
            "ONVIF: {} {}",
            esc(seen.model.as_deref()?),
            esc(seen.firmware.as_deref().unwrap_or(""))
        ))
    };
    let rows: Vec<Vec<String>> = listed
        .iter()
        .map(|sc| {
            let c = &sc.camera;
            let st = match &sc.live {
                Live::Reported(x) => Some(x),
                _ => None,
            };
            let state = match (&sc.live, st.map(|x| &x.state)) {
                (Live::Offline { .. }, _) => badge("bad", "offline"),
                (_, Some(CameraState::Streaming)) => badge("ok", "streaming"),
                (_, Some(CameraState::Failed)) => badge("bad", "failed"),
                _ => badge("warn", "connecting"),
            };
            let mut detail = st
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
                    if let Some(w) = &x.warning {
                        d.push(format!("<span class=\"warning\">{}</span>", esc(w)));
                    }
                    d.extend(onvif(&c.name));
                    d.join("<br>")
                })
                .unwrap_or_default();
            if let Live::Offline { last_seen } = &sc.live {
                detail = format!(
                    "node {} offline; last seen {}",
                    esc(&c.node),
                    esc(last_seen.as_deref().unwrap_or("never"))
                );
            }
            if let Some(r) = sc.relay.as_ref().filter(|r| r.active) {
                detail.push_str(&format!(
                    "<br>relayed here to {} viewer{}",
                    r.readers,
                    if r.readers == 1 { "" } else { "s" }
                ));
            }
            let last = st.and_then(|x| x.last_frame.clone()).unwrap_or_default();
            vec![
                esc(&c.name),
                esc(&c.node),
                if c.push {
                    format!("pushes to {}", esc(&c.node))
                } else {
                    format!("<code>{}</code>", esc(&c.url))
                },
                if c.record { "yes".into() } else { "no".into() },
                state,
                detail,
                esc(&last),
            ]
        })
        .collect();
    let mut body = if rows.is_empty() {
        "<p class=\"note\">No camera to show: the site has none on this node.</p>".to_string()
    } else {
        table(
            &[
                "Camera",
                "Node",
                "Stream",
                "Recorded",
                "State",
                "",
                "Last frame",
            ],
            &rows,
        )
    };
    body.push_str(&super::discover::section(
        discovered.as_deref(),
        p.role == crate::config::site::UserRole::Admin,
    ));
    frame("Cameras", &site_name(&s), Some(&p.name), "/cameras", &body).into_response()
}

/// `GET /live`: a grid of the cameras the node shows (on the application node, every camera of
/// the site: those of other nodes are relayed), playing live over WebRTC (WHEP) where the node
/// serves it, else (and as the fallback) through the WebSocket output.
pub async fn live(State(app): State<Arc<App>>, Extension(p): Extension<Principal>) -> Response {
    let cameras: Vec<String> = super::api::site_cameras(&app)
        .into_iter()
        .map(|c| c.camera.name)
        .collect();
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
    let body = match output {
        None if !whep => "<p class=\"note\">No live output listens on this node: its layout has no WebSocket or HTTP live port.</p>".to_string(),
        _ if cameras.is_empty() => "<p class=\"note\">No camera to play: the site has none on this node.</p>".to_string(),
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

/// Whether `next` (where the login goes on to) is a path of this site: a browser must read it
/// as nothing else. Backslashes (`/\\evil.example`), controls and spaces (`/\t/evil.example`, which
/// browsers strip) and a second leading slash would take the user off-site.
fn same_origin_path(next: &str) -> bool {
    next.starts_with('/')
        && !next[1..].starts_with(['/', '\\'])
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && next.parse::<axum::http::uri::PathAndQuery>().is_ok()
}

/// The clip a form asks for, as a same-origin location; `None` when its fields are not a
/// camera name and two times (they are checked before they become a URL and a header).
fn clip_location(camera: &str, start: &str, end: &str) -> Option<String> {
    let name_ok = crate::config::validate::is_good_name(camera);
    let time = |t: &str| {
        let t = utc(t);
        humantime::parse_rfc3339_weak(&t).ok()?;
        Some(url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>())
    };
    let (start, end) = (time(start)?, time(end)?);
    name_ok.then(|| format!("/api/v1/cameras/{camera}/clip.mp4?start={start}&end={end}"))
}

/// `GET /recordings`: each camera's recorded spans of the last day, and a form to download a clip.
pub async fn recordings(
    State(app): State<Arc<App>>,
    Extension(p): Extension<Principal>,
    Query(form): Query<ClipForm>,
) -> Response {
    if let (Some(camera), Some(start), Some(end)) = (&form.camera, &form.start, &form.end) {
        return match clip_location(camera, start, end) {
            Some(to) => Redirect::to(&to).into_response(),
            None => (
                StatusCode::BAD_REQUEST,
                "a clip needs a camera name and two times (RFC 3339, or a date and time in UTC)\n",
            )
                .into_response(),
        };
    }
    let (site, cameras): (String, Vec<String>) = match app.status.read() {
        Ok(s) => (
            site_name(&s),
            s.plan
                .iter()
                .flat_map(|p| p.cameras.iter())
                .filter(|c| c.record)
                .map(|c| c.name.clone())
                .collect(),
        ),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let now = crate::base::time::now_ms();
    let names = cameras.clone();
    let spans = super::with_store(&app, move |store| {
        names
            .iter()
            .map(|c| store.recording_spans(c, now - 86_400_000, now))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .unwrap_or_default();
    let fmt = |ms: i64| {
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0)),
        )
        .to_string()
    };
    let rows: Vec<Vec<String>> = cameras
        .iter()
        .zip(spans.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(c, spans)| {
            let list: Vec<String> = spans
                .into_iter()
                .flatten()
                .map(|sp| format!("{} – {}", fmt(sp.start_ms), fmt(sp.end_ms)))
                .collect();
            vec![
                esc(c),
                if list.is_empty() {
                    "<span class=\"note\">nothing yet</span>".into()
                } else {
                    esc(&list.join("\n")).replace('\n', "<br>")
                },
            ]
        })
        .collect();
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
    frame("Recordings", &site, Some(&p.name), "/recordings", &body).into_response()
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
        .filter(|n| same_origin_path(n))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16 §2: `/login?next=/%5Cevil.example` and `/%09/…` sent the user off-site.
    #[test]
    fn only_paths_of_this_site_are_followed_after_a_login() {
        for good in ["/", "/recordings?camera=quay", "/api/v1/site"] {
            assert!(same_origin_path(good), "{good}");
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "https://evil.example",
            "evil.example",
            "/a\\b",
            "",
        ] {
            assert!(!same_origin_path(bad), "{bad:?}");
        }
    }

    /// Issue 16 §3: a CR/LF in `/recordings?camera=` made the redirect's header invalid (a 500).
    #[test]
    fn a_clip_form_becomes_a_location_only_when_its_fields_are_what_they_say() {
        assert_eq!(
            clip_location("quay", "2026-11-21T10:00", "2026-11-21T10:01:30Z").as_deref(),
            Some(
                "/api/v1/cameras/quay/clip.mp4?start=2026-11-21T10%3A00%3A00Z&end=2026-11-21T10%3A01%3A30Z"
            )
        );
        for (camera, start) in [
            ("quay\r\nSet-Cookie: x=1", "2026-11-21T10:00"),
            ("../../evil", "2026-11-21T10:00"),
            ("", "2026-11-21T10:00"),
            ("quay", "yesterday"),
            ("quay", "2026-11-21T10:00\r\nX: 1"),
        ] {
            assert_eq!(
                clip_location(camera, start, "2026-11-21T10:01Z"),
                None,
                "{camera:?} {start:?}"
            );
        }
    }
}
