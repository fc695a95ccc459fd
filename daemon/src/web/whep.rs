//! WHEP (draft-ietf-wish-whep): WebRTC live view negotiated over HTTP.
//!
//! | request | what |
//! |---|---|
//! | `POST /live/<camera>/whep` (`application/sdp` offer) | 201, the answer, `Location` of the session, the TURN relay in `Link` headers |
//! | `PATCH /live/<camera>/whep/<id>` (`application/trickle-ice-sdpfrag`) | 204: trickled candidates |
//! | `DELETE /live/<camera>/whep/<id>` | 200: the session ends |
//!
//! Viewers log in as for every other output (a session, Basic, `?token=`); a session can be
//! changed only by the user who opened it. A refusal is plain text saying why (B-frames, no
//! common codec, too many viewers, no WebRTC port in the layout): the player shows it and
//! falls back to MSE.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};

use super::App;
use crate::media::turn::credentials;
use crate::media::webrtc::Refusal;

/// The most bytes of an SDP offer or a trickle fragment.
const MAX_BODY: usize = 64 * 1024;
/// How long the TURN credentials of a session are good for.
const TURN_TTL: Duration = Duration::from_secs(12 * 3600);

fn text(status: StatusCode, why: impl Into<String>) -> Response {
    let mut why = why.into();
    why.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        why,
    )
        .into_response()
}

fn login(app: &App, req: &Request) -> Result<String, Response> {
    match super::principal(app, req) {
        Ok(Some(p)) => Ok(p.name),
        _ => {
            let mut r = text(
                StatusCode::UNAUTHORIZED,
                "log in: HTTP Basic, a session, or ?token=",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"sited\""),
            );
            Err(r)
        }
    }
}

async fn body(req: Request) -> Result<String, Response> {
    let bytes: Bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|_| text(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large"))?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| text(StatusCode::BAD_REQUEST, "the body is not UTF-8 text"))
}

/// The `Link` header of the node's TURN relay, with credentials for session `id`.
fn turn_link(app: &App, id: &str) -> Option<HeaderValue> {
    let turn = app.webrtc.settings().turn?;
    let (username, password) = credentials::issue(&turn.secret, id, TURN_TTL);
    let host = match turn.server.ip() {
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    HeaderValue::from_str(&format!(
        "<turn:{host}:{}?transport=udp>; rel=\"ice-server\"; username=\"{username}\"; credential=\"{password}\"; credential-type=\"password\"",
        turn.server.port()
    ))
    .ok()
}

async fn offer(State(app): State<Arc<App>>, Path(camera): Path<String>, req: Request) -> Response {
    let user = match login(&app, &req) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let is_sdp = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/sdp"));
    if !is_sdp {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the SDP offer as application/sdp",
        );
    }
    let Some(hub) = app.hubs.get(&camera) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("no live stream \"{camera}\" on this node"),
        );
    };
    let sdp = match body(req).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // A relayed camera starts on demand: the answer needs its tracks.
    hub.ready(crate::media::hub::READY).await;
    match app.webrtc.open(hub, &user, &sdp) {
        Ok(opened) => {
            let location = format!("/live/{camera}/whep/{}", opened.id);
            let mut r = (
                StatusCode::CREATED,
                [
                    (header::CONTENT_TYPE, "application/sdp".to_string()),
                    (header::LOCATION, location),
                    (header::CACHE_CONTROL, "no-store".to_string()),
                ],
                opened.answer,
            )
                .into_response();
            if let Some(link) = turn_link(&app, &opened.id) {
                r.headers_mut().append(header::LINK, link);
            }
            r
        }
        Err(refusal) => {
            let status = match &refusal {
                Refusal::Unavailable | Refusal::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
                Refusal::Unplayable(_) => StatusCode::UNPROCESSABLE_ENTITY,
                Refusal::BadOffer(_) => StatusCode::BAD_REQUEST,
            };
            text(status, refusal.to_string())
        }
    }
}

async fn trickle(
    State(app): State<Arc<App>>,
    Path((_camera, id)): Path<(String, String)>,
    req: Request,
) -> Response {
    if let Err(r) = owned(&app, &req, &id) {
        return r;
    }
    let fragment = match body(req).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let candidates = fragment
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .map(String::from)
        .collect();
    app.webrtc.trickle(&id, candidates);
    StatusCode::NO_CONTENT.into_response()
}

async fn end(
    State(app): State<Arc<App>>,
    Path((_camera, id)): Path<(String, String)>,
    req: Request,
) -> Response {
    if let Err(r) = owned(&app, &req, &id) {
        return r;
    }
    if !app.webrtc.close(&id) {
        return text(StatusCode::NOT_FOUND, "no such WHEP session");
    }
    StatusCode::OK.into_response()
}

/// Refuses a request on session `id` unless it comes from the user who opened it (404 for
/// anyone else, as if it did not exist).
fn owned(app: &App, req: &Request, id: &str) -> Result<(), Response> {
    let user = login(app, req)?;
    if !app.webrtc.owns(id, &user) {
        return Err(text(StatusCode::NOT_FOUND, "no such WHEP session"));
    }
    Ok(())
}

/// The WHEP routes, with the WebSocket live view beside them (the MSE fallback, on layouts
/// whose live video is on the web port: NovaVMS 443).
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/live/{name}", get(super::live::live))
        .route("/live/{name}/whep", post(offer))
        .route("/live/{name}/whep/{id}", patch(trickle).delete(end))
}
