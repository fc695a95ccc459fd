//! The live outputs' HTTP routes, on the layout's live ports (VALT 1935 / 444, Ti Top 8080):
//! WebSocket fMP4, HTTP-FLV (when hyper serves it) and live HLS, plus health and VOD.
//!
//! The muxers are the media layer's ([`crate::media::output`]); this is only their HTTP face.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::App;
use crate::media::hub::{Item, Stop};
use crate::media::output::{flv, ws};

fn authorized(app: &App, req: &Request) -> Result<(), Response> {
    match super::principal(app, req) {
        Ok(Some(_)) => Ok(()),
        _ => {
            let mut r = (
                StatusCode::UNAUTHORIZED,
                "log in: HTTP Basic, a session, or ?token=\n",
            )
                .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"sited\""),
            );
            Err(r)
        }
    }
}

pub(crate) async fn live(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    if let Err(r) = authorized(&app, &req) {
        return r;
    }
    if let Some(camera) = name.strip_suffix(".flv") {
        return flv_stream(&app, camera);
    }
    let Some(hub) = app.hubs.get(&name) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no live stream \"{name}\" on this node\n"),
        )
            .into_response();
    };
    ws::upgrade(req, || hub.subscribe())
}

fn flv_stream(app: &App, name: &str) -> Response {
    let Some(hub) = app.hubs.get(name) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no live stream \"{name}\" on this node\n"),
        )
            .into_response();
    };
    // The body pulls from the hub directly: no task and no queue per viewer beyond the hub's.
    struct Pull {
        reader: crate::media::hub::Reader,
        muxer: Option<flv::Muxer>,
    }
    let pull = Pull {
        reader: hub.subscribe(),
        muxer: None,
    };
    let tags = futures_util::stream::unfold(pull, |mut p| async move {
        loop {
            let chunk = match p.reader.next().await {
                Ok(Item::Tracks(tracks)) => {
                    // A second epoch cannot restart an FLV stream: the viewer reconnects.
                    if p.muxer.is_some() {
                        return None;
                    }
                    p.muxer = Some(flv::Muxer::new(&tracks));
                    let mut head = bytes::BytesMut::from(&flv::header(&tracks)[..]);
                    for h in flv::sequence_headers(&tracks) {
                        head.extend_from_slice(&h);
                    }
                    head.freeze()
                }
                Ok(Item::Frame(f)) => match p.muxer.as_mut() {
                    Some(m) => m.tag(&f),
                    None => continue,
                },
                Err(Stop::TooSlow | Stop::Closed) => return None,
            };
            return Some((Ok::<_, std::io::Error>(chunk), p));
        }
    });
    let body = Body::from_stream(tags);
    (
        [
            (header::CONTENT_TYPE, "video/x-flv"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn hls_file(
    State(app): State<Arc<App>>,
    Path((name, file)): Path<(String, String)>,
    req: Request,
) -> Response {
    if let Err(r) = authorized(&app, &req) {
        return r;
    }
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            format!("no {file} for \"{name}\" on this node\n"),
        )
            .into_response()
    };
    let Some(hub) = app.hubs.get(&name) else {
        return not_found();
    };
    let query: String = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| kv.starts_with("token="))
        .collect::<Vec<_>>()
        .join("&");
    match file.as_str() {
        "index.m3u8" => match app.hls.playlist(&name, hub, &query).await {
            Some(text) => (
                [
                    (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                text,
            )
                .into_response(),
            None => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the stream has no segment yet; retry\n",
            )
                .into_response(),
        },
        "init.mp4" => app.hls.init(&name).map_or_else(not_found, |b| {
            ([(header::CONTENT_TYPE, "video/mp4")], b).into_response()
        }),
        _ => {
            let seq = file
                .strip_prefix("seg-")
                .and_then(|f| f.strip_suffix(".m4s"))
                .and_then(|n| n.parse().ok());
            seq.and_then(|n| app.hls.segment(&name, n))
                .map_or_else(not_found, |b| {
                    (
                        [
                            (header::CONTENT_TYPE, "video/iso.segment"),
                            (header::CACHE_CONTROL, "max-age=60"),
                        ],
                        b,
                    )
                        .into_response()
                })
        }
    }
}

/// The router of the live listeners.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/live/{name}", get(live))
        .route("/live/{name}/{file}", get(hls_file))
        .route("/api/v1/health", get(super::api::health))
        .merge(super::vod::routes(app.clone()))
        .layer(axum::middleware::from_fn(super::origin::check_live))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            super::cors::cors,
        ))
        .with_state(app)
}
