//! Recordings over HTTP: the recorded spans of a camera, and clips cut from them.
//!
//! `GET /api/v1/cameras/<camera>/recordings?start=&end=` lists `[{start, end}, …]` (RFC 3339;
//! default: the last 24 hours). `GET /api/v1/cameras/<camera>/clip.mp4?start=&end=` returns a
//! fragmented MP4 of `[start, end)`, starting at the keyframe at or before `start` (a cut, no
//! edit list), with `Content-Length` and Range support. Both are on every web listener and on
//! the layout's downloads port (VALT 8000). The same ranges as HLS VOD are in [`super::vod`].

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::App;
use crate::media::recorder::clip;

/// The longest clip one request may cut.
pub const MAX_CLIP: Duration = Duration::from_secs(24 * 3600);

/// A time range in the query.
#[derive(Debug, Deserialize)]
pub struct Range {
    /// RFC 3339.
    pub start: Option<String>,
    /// RFC 3339.
    pub end: Option<String>,
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn bad(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

/// The range asked for, UTC ms; `end` defaults to now, `start` to `default_span` before it.
/// The error is the sentence for a 400 ([`bad`]).
pub(crate) fn parse(range: &Range, default_span: Duration) -> Result<(i64, i64), String> {
    let at = |v: &Option<String>, name: &str| -> Result<Option<i64>, String> {
        v.as_deref()
            .map(|s| {
                humantime::parse_rfc3339_weak(s).map(ms).map_err(|e| {
                    format!("`{name}` is not an RFC 3339 time ({e}): use e.g. 2026-11-21T10:00:00Z")
                })
            })
            .transpose()
    };
    let end = at(&range.end, "end")?.unwrap_or_else(|| ms(SystemTime::now()));
    let start = at(&range.start, "start")?.unwrap_or(end - default_span.as_millis() as i64);
    if end <= start {
        return Err("`end` must come after `start`".into());
    }
    Ok((start, end))
}

/// The recordings and clip routes, for the web and downloads routers.
pub fn routes() -> axum::Router<Arc<App>> {
    axum::Router::new()
        .route(
            "/api/v1/cameras/{camera}/recordings",
            axum::routing::get(recordings),
        )
        .route(
            "/api/v1/cameras/{camera}/clip.mp4",
            axum::routing::get(clip_mp4),
        )
}

/// A 404 unless the camera is one of this node's.
pub(crate) fn unknown(app: &App, camera: &str) -> Option<Response> {
    let known = app
        .status
        .read()
        .ok()
        .and_then(|s| s.plan.clone())
        .is_some_and(|p| p.cameras.iter().any(|c| c.name == camera));
    (!known).then(|| {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no camera \"{camera}\" on this node")})),
        )
            .into_response()
    })
}

/// `GET /api/v1/storage`: the recordings' disk and what each camera holds.
pub async fn storage(State(app): State<Arc<App>>) -> Response {
    let totals = super::with_store(&app, |s| s.recording_totals())
        .await
        .unwrap_or_default();
    let limits = app
        .status
        .read()
        .ok()
        .and_then(|s| s.site.as_ref().map(|site| site.recording));
    let free = crate::media::recorder::retention::free_bytes(&app.recordings);
    Json(json!({
        "root": app.recordings.display().to_string(),
        "free_bytes": free,
        "bytes": totals.iter().map(|(_, b, _)| b).sum::<u64>(),
        "limits": limits.map(|l| json!({"keep_days": l.keep_days, "max_bytes": l.max_bytes, "min_free_bytes": l.min_free_bytes.unwrap_or(crate::media::recorder::retention::DEFAULT_MIN_FREE)})),
        "cameras": totals.iter().map(|(c, b, n)| json!({"camera": c, "bytes": b, "segments": n})).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// `GET /api/v1/cameras/<camera>/recordings`.
pub async fn recordings(
    State(app): State<Arc<App>>,
    Path(camera): Path<String>,
    Query(range): Query<Range>,
) -> Response {
    if let Some(r) = unknown(&app, &camera) {
        return r;
    }
    let (start, end) = match parse(&range, Duration::from_secs(24 * 3600)) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let spans = super::with_store(&app, move |s| s.recording_spans(&camera, start, end)).await;
    match spans {
        Ok(list) => Json(
            list.iter()
                .map(|s| json!({"start": crate::base::time::rfc3339_ms(s.start_ms), "end": crate::base::time::rfc3339_ms(s.end_ms)}))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => super::failure(&e),
    }
}

/// A body reading `range` of a clip on a blocking thread, a few chunks ahead of the client.
pub(crate) fn stream(plan: Arc<clip::ClipPlan>, range: std::ops::Range<u64>) -> Body {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    let reader = clip::ClipReader::new(plan, range);
    tokio::task::spawn_blocking(move || {
        for chunk in reader {
            if tx.blocking_send(chunk).is_err() {
                return;
            }
        }
    });
    Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// `GET /api/v1/cameras/<camera>/clip.mp4`.
pub async fn clip_mp4(
    State(app): State<Arc<App>>,
    Path(camera): Path<String>,
    Query(range): Query<Range>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unknown(&app, &camera) {
        return r;
    }
    if range.start.is_none() {
        return bad("give `start` (and `end`), RFC 3339".into());
    }
    let (start, end) = match parse(&range, Duration::from_secs(60)) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    if (end - start) as u128 > MAX_CLIP.as_millis() {
        return bad(format!(
            "a clip is at most {} hours",
            MAX_CLIP.as_secs() / 3600
        ));
    }
    let root = app.recordings.clone();
    let store = app.store.clone();
    let planned = tokio::task::spawn_blocking(move || -> Result<Option<clip::ClipPlan>, String> {
        let (segments, init) = {
            let s = store
                .lock()
                .map_err(|_| "state database lock".to_string())?;
            let segments = s
                .recording_segments(&camera, start, end)
                .map_err(|e| e.to_string())?;
            let Some(first) = segments.first() else {
                return Ok(None);
            };
            let init = s
                .recording_init(first.init_id)
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            (segments, init)
        };
        let Some(mut plan) = clip::plan(&root, &segments, bytes::Bytes::from(init), start, end)
        else {
            return Ok(None);
        };
        plan.trim_end().map_err(|e| e.to_string())?;
        Ok(Some(plan))
    })
    .await;
    let plan = match planned {
        Ok(Ok(Some(p))) => Arc::new(p),
        Ok(Ok(None)) => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "nothing is recorded in that range"})),
            )
                .into_response();
        }
        Ok(Err(e)) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e}))).into_response();
        }
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    let len = plan.len;
    let wanted = match super::range::parse(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        len,
    ) {
        Ok(r) => r,
        Err(_) => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{len}"))],
            )
                .into_response();
        }
    };
    let (status, range) = match &wanted {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.clone()),
        None => (StatusCode::OK, 0..len),
    };
    let body = stream(plan, range.clone());
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("video/mp4"),
    );
    h.insert(
        header::ACCEPT_RANGES,
        header::HeaderValue::from_static("bytes"),
    );
    if let Ok(v) = (range.end - range.start).to_string().parse() {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if wanted.is_some()
        && let Ok(v) = format!(
            "bytes {}-{}/{len}",
            range.start,
            range.end.saturating_sub(1)
        )
        .parse()
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    r
}
