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
use crate::base::Error;
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

impl Range {
    /// The range asked for, UTC ms; `end` defaults to now, `start` to `default_span` before it.
    pub(crate) fn span(&self, default_span: Duration) -> Result<(i64, i64), Error> {
        let at = |v: &Option<String>, name: &str| -> Result<Option<i64>, Error> {
            v.as_deref()
                .map(|s| {
                    humantime::parse_rfc3339_weak(s).map(ms).map_err(|e| {
                        crate::err!(
                            Invalid,
                            "`{name}` is not an RFC 3339 time ({e}): use e.g. 2026-11-21T10:00:00Z"
                        )
                    })
                })
                .transpose()
        };
        let end = at(&self.end, "end")?.unwrap_or_else(|| ms(SystemTime::now()));
        let start = at(&self.start, "start")?.unwrap_or(end - default_span.as_millis() as i64);
        if end <= start {
            crate::bail!(Invalid, "`end` must come after `start`");
        }
        Ok((start, end))
    }

    /// The range of a cut (a clip, a VOD playlist): `start` is required, and it spans at most
    /// [`MAX_CLIP`].
    pub(crate) fn cut(&self, default_span: Duration, what: &str) -> Result<(i64, i64), Error> {
        if self.start.is_none() {
            crate::bail!(Invalid, "give `start` (and `end`), RFC 3339");
        }
        let (start, end) = self.span(default_span)?;
        if (end - start) as u128 > MAX_CLIP.as_millis() {
            crate::bail!(
                Invalid,
                "a {what} is at most {} hours",
                MAX_CLIP.as_secs() / 3600
            );
        }
        Ok((start, end))
    }
}

/// The recordings and clip routes, for the web and downloads routers (which log in first);
/// those of a camera another node ingests go to that node ([`super::remote`]).
pub fn routes(app: Arc<App>) -> axum::Router<Arc<App>> {
    axum::Router::new()
        .route(
            "/api/v1/cameras/{camera}/recordings",
            axum::routing::get(recordings),
        )
        .route(
            "/api/v1/cameras/{camera}/clip.mp4",
            axum::routing::get(clip_mp4),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            app,
            super::remote::forward,
        ))
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
    let (start, end) = match range.span(Duration::from_secs(24 * 3600)) {
        Ok(r) => r,
        Err(e) => return super::failure(&e),
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
    let (start, end) = match range.cut(Duration::from_secs(60), "clip") {
        Ok(r) => r,
        Err(e) => return super::failure(&e),
    };
    let root = app.recordings.clone();
    let planned = super::with_store(&app, move |s| {
        let segments = s.recording_segments(&camera, start, end)?;
        let Some(first) = segments.first() else {
            return Ok(None);
        };
        let init = s.recording_init(first.init_id)?.unwrap_or_default();
        let Some(mut plan) = clip::plan(&root, &segments, bytes::Bytes::from(init), start, end)
        else {
            return Ok(None);
        };
        // Reads the last fragments from disk: this runs on the blocking thread too.
        plan.trim_end()?;
        Ok(Some(plan))
    })
    .await;
    let plan = match planned {
        Ok(Some(p)) => Arc::new(p),
        Ok(None) => {
            return super::failure(&crate::err!(NotFound, "nothing is recorded in that range"));
        }
        Err(e) => return super::failure(&e),
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
