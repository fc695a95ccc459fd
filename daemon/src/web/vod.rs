//! Recorded video as HLS VOD over HTTP.
//!
//! | URL | what |
//! |---|---|
//! | `/vod/<camera>/index.m3u8?start=&end=` | the playlist of `[start, end)` (RFC 3339; `end` defaults to now) |
//! | `/vod/<camera>/init-<id>.mp4` | an init segment the playlist maps |
//! | `/vod/<camera>/seg-<row>-<first>-<last>-<at>.m4s` | a media segment, cut on the fly |
//!
//! The playlist and its parts come from [`crate::media::recorder::vod`]. Served where the
//! layout puts VOD: Ti Top's VOD port (8086) and its HTTP streaming port (8080), every web
//! listener, and the downloads port (VALT 8000). Viewers log in as for every output: HTTP
//! Basic, a session, or `?token=`, which the playlist repeats on every URI it lists.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::App;
use super::recordings::{Range, stream, unknown};
use crate::media::recorder::vod;

/// The VOD routes, behind the login every output asks for; those of a camera another node
/// ingests go to that node ([`super::remote`]).
pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/vod/{camera}/{file}", get(file))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            super::remote::forward,
        ))
        .route_layer(axum::middleware::from_fn_with_state(app, super::api_login))
}

fn not_found(what: String) -> Response {
    (StatusCode::NOT_FOUND, axum::Json(json!({"error": what}))).into_response()
}

async fn file(
    State(app): State<Arc<App>>,
    Path((camera, file)): Path<(String, String)>,
    Query(range): Query<Range>,
    uri: Uri,
) -> Response {
    if let Some(r) = unknown(&app, &camera) {
        return r;
    }
    if file == "index.m3u8" {
        let token: Vec<&str> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| kv.starts_with("token="))
            .collect();
        return index(app, camera, &range, &token.join("&")).await;
    }
    if let Some(id) = file
        .strip_prefix("init-")
        .and_then(|f| f.strip_suffix(".mp4"))
        .and_then(|n| n.parse::<i64>().ok())
    {
        return init(app, id).await;
    }
    match vod::parse_name(&file) {
        Some((row, first, last, at)) => media(app, camera, row, first, last, at).await,
        None => not_found(format!("no {file} in a VOD playlist")),
    }
}

async fn index(app: Arc<App>, camera: String, range: &Range, query: &str) -> Response {
    let (start, end) = match range.cut(Duration::from_secs(3600), "VOD playlist") {
        Ok(r) => r,
        Err(e) => return super::failure(&e),
    };
    let segments =
        match super::with_store(&app, move |s| s.recording_segments(&camera, start, end)).await {
            Ok(s) => s,
            Err(e) => return super::failure(&e),
        };
    let parts = vod::plan(&segments, start, end);
    if parts.is_empty() {
        return not_found("nothing is recorded in that range".into());
    }
    (
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        vod::playlist(&parts, query),
    )
        .into_response()
}

async fn init(app: Arc<App>, id: i64) -> Response {
    match super::with_store(&app, move |s| s.recording_init(id)).await {
        Ok(Some(data)) => (
            [
                (header::CONTENT_TYPE, "video/mp4"),
                (header::CACHE_CONTROL, "max-age=86400"),
            ],
            data,
        )
            .into_response(),
        Ok(None) => not_found(format!("no init segment {id}")),
        Err(e) => super::failure(&e),
    }
}

async fn media(
    app: Arc<App>,
    camera: String,
    row: i64,
    first: usize,
    last: usize,
    at: u64,
) -> Response {
    let found = super::with_store(&app, move |s| {
        let Some(seg) = s.recording_segment(row)?.filter(|g| g.camera == camera) else {
            return Ok(None);
        };
        let init = s.recording_init(seg.init_id)?.unwrap_or_default();
        Ok(Some((seg, init)))
    })
    .await;
    let (seg, init) = match found {
        Ok(Some(f)) => f,
        Ok(None) => return not_found(format!("no recorded segment {row} (deleted?)")),
        Err(e) => return super::failure(&e),
    };
    let Some(plan) = vod::media(&app.recordings, &seg, &init, first, last, at) else {
        return not_found(format!("segment {row} has no keyframes {first}..{last}"));
    };
    let len = plan.len;
    let mut r = stream(Arc::new(plan), 0..len).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("video/iso.segment"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("max-age=86400"),
    );
    h.insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
    r
}
