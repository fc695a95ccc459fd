//! Recordings of the whole site through the application node: a request for the recordings,
//! a clip or the VOD of a camera that another node ingests (and so records) is forwarded to
//! that node over a node channel (`nodes::channel`, `Want::Http`), which answers it with its
//! own handlers, and the answer is streamed back.
//!
//! - **Who asks.** The caller logged in here; the media node serves the request under the same
//!   identity: the application node issues a site token of the caller's (one minute, enough to
//!   start the answer) and sends it as the request's bearer, so the media node checks the user
//!   against its own site file, as for any request.
//! - **What goes.** `GET` only, with the path and query as asked, and the headers that shape the
//!   answer (`Range`, `If-Range`, `Accept`, conditional ones); the media node serves only the
//!   recordings, clip and VOD paths over a channel.
//! - **What comes back.** The first frame is the answer's head (status and the headers in
//!   [`PASSED`]), then the body in frames of at most [`CHUNK`] bytes. The channel holds a few
//!   frames on each side and waits for the slower end, so a slow client slows the media node's
//!   reading instead of filling memory. `Range` and `Content-Range` pass through, so a player
//!   seeks in a remote clip as in a local one.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt as _;
use serde::{Deserialize, Serialize};
use tower::ServiceExt as _;

use super::App;
use crate::auth::Principal;
use crate::base::Error;
use crate::catalog::Roles;
use crate::nodes::channel::{Channel, Want};

/// The most body bytes in one channel frame.
pub const CHUNK: usize = 64 * 1024;

/// How long the token that carries the caller's identity lasts: enough to start the answer.
const IDENTITY_TTL: Duration = Duration::from_secs(60);

/// The request headers forwarded.
const FORWARDED: [HeaderName; 6] = [
    header::RANGE,
    header::IF_RANGE,
    header::ACCEPT,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
];

/// The answer headers passed back (the application node adds its own security headers).
pub const PASSED: [HeaderName; 9] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::CACHE_CONTROL,
    header::CONTENT_DISPOSITION,
    header::ETAG,
    header::LAST_MODIFIED,
    header::RETRY_AFTER,
];

/// An answer's head, the first frame of a channel that carries HTTP.
#[derive(Debug, Serialize, Deserialize)]
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

/// The camera a recordings, clip or VOD path names.
fn camera_of(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/api/v1/cameras/")
        .or_else(|| path.strip_prefix("/vod/"))?;
    rest.split('/').next().filter(|c| !c.is_empty())
}

/// Whether a path is one a channel may carry: a camera's recordings, clip or VOD.
pub fn is_recorded_path(path: &str) -> bool {
    camera_of(path).is_some()
        && (path.starts_with("/vod/")
            || path.ends_with("/recordings")
            || path.ends_with("/clip.mp4"))
}

/// The node that ingests `camera`, when this node is the application node and it is another.
fn owner(app: &App, camera: &str) -> Option<String> {
    let s = app.status.read().ok()?;
    let (site, plan) = (s.site.as_ref()?, s.plan.as_ref()?);
    if !plan.node.roles.meets(Roles::APPLICATION) {
        return None;
    }
    site.cameras
        .iter()
        .find(|c| c.name == camera && c.node != plan.node.name)
        .map(|c| c.node.clone())
}

/// Middleware of the recordings, clip and VOD routes, inside the login: forwards the request
/// of a camera another node ingests to that node.
pub async fn forward(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let Some(node) = camera_of(req.uri().path()).and_then(|c| owner(&app, c)) else {
        return next.run(req).await;
    };
    let Some(p) = req.extensions().get::<Principal>().cloned() else {
        return next.run(req).await;
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_string(), |p| p.to_string());
    let headers: Vec<(String, String)> = FORWARDED
        .iter()
        .filter_map(|h| {
            let v = req.headers().get(h)?.to_str().ok()?;
            Some((h.as_str().to_string(), v.to_string()))
        })
        .collect();
    let get = req.method() == http::Method::GET;
    drop(req);
    let asked = if get {
        ask(&app, &node, &p, path.clone(), headers).await
    } else {
        Err(crate::err!(
            Invalid,
            "only GET reaches another node's recordings"
        ))
    };
    match asked {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(node = %node, path = %path, error = %e, "a recording request to another node failed");
            super::failure(&e.context(format!("through media node {node}")))
        }
    }
}

async fn ask(
    app: &App,
    node: &str,
    p: &Principal,
    path: String,
    mut headers: Vec<(String, String)>,
) -> Result<Response, Error> {
    let (token, _) = app.auth.grant(p.clone(), IDENTITY_TTL)?;
    headers.push(("authorization".into(), format!("Bearer {token}")));
    let want = Want::Http {
        method: "GET".into(),
        path,
        headers,
    };
    let channel = app.nodes.open(node, want).await?;
    let (sender, mut receiver) = channel.split();
    let head = receiver.recv().await?.ok_or_else(|| {
        crate::err!(
            Unavailable,
            "media node {node} ended the answer before its head"
        )
    })?;
    let head: Head = serde_json::from_slice(&head)
        .map_err(|e| crate::err!(Invalid, "a malformed answer head from {node}: {e}"))?;
    let body = futures_util::stream::unfold(Some((receiver, sender)), |state| async move {
        let (mut receiver, sender) = state?;
        match receiver.recv().await {
            Ok(Some(data)) => Some((Ok(bytes::Bytes::from(data)), Some((receiver, sender)))),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
        }
    });
    let mut r = Response::new(Body::from_stream(body));
    *r.status_mut() = StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (k, v) in head.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v))
            && PASSED.contains(&k)
        {
            r.headers_mut().append(k, v);
        }
    }
    Ok(r)
}

/// The recorded spans of `camera` in `[from, to)` (UTC ms), asked of `node` as `p`: what the
/// Recordings page shows of a camera another node records.
pub async fn spans(
    app: &App,
    node: &str,
    p: &Principal,
    camera: &str,
    (from, to): (i64, i64),
) -> Result<Vec<(i64, i64)>, Error> {
    let at = |ms| crate::base::time::rfc3339_ms(ms);
    let path = format!(
        "/api/v1/cameras/{camera}/recordings?start={}&end={}",
        at(from),
        at(to)
    );
    let answer = ask(app, node, p, path, Vec::new()).await?;
    if !answer.status().is_success() {
        crate::bail!(
            Unavailable,
            "media node {node} answered {}",
            answer.status()
        );
    }
    let body = http_body_util::Limited::new(answer.into_body(), 1 << 20)
        .collect()
        .await
        .map_err(|e| crate::err!(Unavailable, "the spans from {node}: {e}"))?
        .to_bytes();
    let list: Vec<serde_json::Value> = serde_json::from_slice(&body)
        .map_err(|e| crate::err!(Invalid, "the spans from {node}: {e}"))?;
    let ms = |v: &serde_json::Value| {
        humantime::parse_rfc3339_weak(v.as_str()?)
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_millis()).ok())
    };
    Ok(list
        .iter()
        .filter_map(|s| Some((ms(&s["start"])?, ms(&s["end"])?)))
        .collect())
}

/// A media node's side: answers `want` (a forwarded recordings, clip or VOD request) with
/// `router`, this node's own web service, and streams the answer back over `channel`.
pub async fn serve(router: Router, want: Want, channel: Channel) {
    let (sender, _receiver) = channel.split();
    let Want::Http {
        method,
        path,
        headers,
    } = want
    else {
        sender.finish(Err("not an HTTP request".into())).await;
        return;
    };
    let only_path = path.split('?').next().unwrap_or("");
    if method != "GET" || !is_recorded_path(only_path) {
        sender
            .finish(Err(format!("a node channel serves only GET of recordings, clips and VOD, not {method} {only_path}")))
            .await;
        return;
    }
    let mut req = Request::builder().method(http::Method::GET).uri(&path);
    for (k, v) in &headers {
        let k = HeaderName::try_from(k.as_str()).ok();
        if let Some(k) = k.filter(|k| FORWARDED.contains(k) || *k == header::AUTHORIZATION) {
            req = req.header(k, v.as_str());
        }
    }
    let req = match req.header(header::HOST, "node-channel").body(Body::empty()) {
        Ok(mut r) => {
            r.extensions_mut()
                .insert(super::Peer(std::net::SocketAddr::from(([127, 0, 0, 1], 0))));
            r
        }
        Err(e) => {
            sender.finish(Err(format!("a bad request: {e}"))).await;
            return;
        }
    };
    let answer = match router.oneshot(req).await {
        Ok(a) => a,
        Err(e) => match e {},
    };
    let head = Head {
        status: answer.status().as_u16(),
        headers: answer
            .headers()
            .iter()
            .filter(|(k, _)| PASSED.contains(k))
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect(),
    };
    let Ok(head) = serde_json::to_vec(&head) else {
        sender.finish(Err("cannot encode the head".into())).await;
        return;
    };
    if sender.send(&head).await.is_err() {
        return;
    }
    let mut body = answer.into_body();
    let outcome = loop {
        match body.frame().await {
            None => break Ok(()),
            Some(Err(e)) => break Err(format!("the answer's body failed: {e}")),
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let mut sent = Ok(());
                for chunk in data.chunks(CHUNK) {
                    sent = sender.send(chunk).await;
                    if sent.is_err() {
                        break;
                    }
                }
                if sent.is_err() {
                    // The application node went away: nobody is left to tell.
                    return;
                }
            }
        }
    };
    sender.finish(outcome).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_recordings_clips_and_vod_name_a_camera_to_forward() {
        assert_eq!(camera_of("/api/v1/cameras/gate/clip.mp4"), Some("gate"));
        assert_eq!(camera_of("/vod/gate/index.m3u8"), Some("gate"));
        assert_eq!(camera_of("/api/v1/cameras/"), None);
        assert!(is_recorded_path("/api/v1/cameras/gate/recordings"));
        assert!(is_recorded_path("/vod/gate/seg-1-2-3-4.m4s"));
        assert!(!is_recorded_path("/api/v1/cameras/gate/whatever"));
        assert!(!is_recorded_path("/api/v1/site"));
    }
}
