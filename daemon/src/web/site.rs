//! The site file over HTTP, for CI and `sited push`: read it with its version, and replace it
//! without losing anyone's update.
//!
//! - `GET /api/v1/site/file` (admins): the file in force, with `ETag: "<sha256>"`.
//! - `PUT /api/v1/site` (admins, application node only): the body is a site file.
//!   `If-Match` must name the version in force (428 without it, 409 when stale); an invalid
//!   file gets 422 with the same diagnostics as `sited validate`, and nothing is written; a
//!   valid one is written atomically to the site file, which the daemon reconciles and rolls
//!   out to every media node. The answer is 202 with the new version.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{App, require_admin};
use crate::auth::Principal;
use crate::base::hex;
use crate::catalog::Roles;
use crate::config::{Options, Source};

/// The ETag of a version: its SHA-256, quoted.
pub fn etag(sha256: &str) -> String {
    format!("\"{sha256}\"")
}

/// Whether this node is the site's application node (a node with no site is not).
fn is_application(app: &App) -> bool {
    app.status
        .read()
        .ok()
        .and_then(|s| {
            s.plan
                .as_ref()
                .map(|p| p.node.roles.meets(Roles::APPLICATION))
        })
        .unwrap_or(false)
}

/// `GET /api/v1/site/file`.
pub async fn file(State(app): State<Arc<App>>, Extension(p): Extension<Principal>) -> Response {
    if let Err(r) = require_admin(&p) {
        return r;
    }
    match std::fs::read_to_string(&app.site_file) {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, "application/toml".to_string()),
                (header::ETAG, etag(&hex::sha256(text.as_bytes()))),
            ],
            text,
        )
            .into_response(),
        Err(e) => super::failure(
            &crate::base::Error::from(e)
                .context(format!("cannot read {}", app.site_file.display())),
        ),
    }
}

/// `PUT /api/v1/site`.
pub async fn put(
    State(app): State<Arc<App>>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = require_admin(&p) {
        return r;
    }
    let error =
        |status: StatusCode, msg: String| (status, Json(json!({"error": msg}))).into_response();
    if !is_application(&app) {
        return error(
            StatusCode::CONFLICT,
            "this is not the site's application node; send the site file to the application node, which rolls it out".into(),
        );
    }
    let Some(wanted) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return error(
            StatusCode::PRECONDITION_REQUIRED,
            "give If-Match with the version in force (GET /api/v1/site/file shows it as the ETag), so that no update is lost".into(),
        );
    };
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return error(StatusCode::BAD_REQUEST, "the site file is not UTF-8".into());
    };
    // The version in force is the file on disk: a local edit not yet reconciled counts too.
    let current = std::fs::read_to_string(&app.site_file)
        .map(|t| hex::sha256(t.as_bytes()))
        .unwrap_or_default();
    if wanted.trim() != etag(&current) && wanted.trim() != "*" {
        return (
            StatusCode::CONFLICT,
            [(header::ETAG, etag(&current))],
            Json(json!({"error": "the site file changed since you read it; read it again, then re-apply your edit", "version": current})),
        )
            .into_response();
    }
    let checked = crate::plan::check(&text, Options::default());
    if checked.site.is_none() {
        let shown = "site.toml";
        let source = Source::new(shown, &text);
        let diagnostics: Vec<_> = checked
            .diagnostics
            .iter()
            .map(|d| serde_json::to_value(source.json(d)).unwrap_or_default())
            .collect();
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "the site file is invalid; nothing was written", "diagnostics": diagnostics})),
        )
            .into_response();
    }
    let sha = hex::sha256(text.as_bytes());
    let path = app.site_file.clone();
    let written =
        tokio::task::spawn_blocking(move || crate::base::fs::write_atomic(&path, text.as_bytes()))
            .await;
    match written {
        Ok(Ok(())) => {
            tracing::info!(user = %p.name, version = %sha, "site file replaced through the API");
            (
                StatusCode::ACCEPTED,
                [(header::ETAG, etag(&sha))],
                Json(json!({"version": sha, "status": "written; the daemon applies it and rolls it out to every media node (GET /api/v1/nodes)"})),
            )
                .into_response()
        }
        Ok(Err(e)) => {
            super::failure(&crate::base::Error::from(e).context("cannot write the site file"))
        }
        Err(e) => super::failure(
            &crate::base::Error::new(crate::base::Kind::Internal, "the write task died")
                .with_source(e),
        ),
    }
}

/// `GET /api/v1/nodes`: every node of the site, and how far the version in force has rolled
/// out.
pub async fn nodes(State(app): State<Arc<App>>) -> Response {
    Json(rollout(&app)).into_response()
}

/// The nodes of the site as the API and the Overview show them.
pub fn rollout(app: &App) -> serde_json::Value {
    let Ok(s) = app.status.read() else {
        return json!({});
    };
    let (Some(site), Some(me)) = (s.site.as_ref(), s.node.as_ref()) else {
        return json!({"nodes": [], "rollout": null});
    };
    let version = s.version.as_ref().map(|v| v.sha256.clone());
    let linked = app.nodes.nodes();
    let mut applied = 0;
    let nodes: Vec<_> = site
        .nodes
        .iter()
        .map(|n| {
            let roles: Vec<&str> = [(Roles::APPLICATION, "application"), (Roles::MEDIA, "media")]
                .into_iter()
                .filter(|(r, _)| n.roles.meets(*r))
                .map(|(_, name)| name)
                .collect();
            let entry = if &n.name == me {
                json!({"online": true, "version": version, "this": true, "last": s.last})
            } else {
                match linked.get(&n.name) {
                    Some(l) => json!({"online": l.online, "last_seen": l.last_seen, "peer": l.peer, "version": l.version, "sited": l.sited, "last": l.last}),
                    None => json!({"online": false, "last_seen": null, "version": null}),
                }
            };
            if entry["version"].as_str().is_some() && entry["version"].as_str() == version.as_deref() {
                applied += 1;
            }
            let mut entry = entry;
            entry["name"] = json!(n.name);
            entry["address"] = json!(n.address);
            entry["roles"] = json!(roles);
            entry
        })
        .collect();
    json!({
        "nodes": nodes,
        "rollout": {
            "version": version,
            "applied": applied,
            "of": site.nodes.len(),
            "text": format!("version {} applied on {applied} of {} nodes", version.as_deref().map_or("none", |v| &v[..12.min(v.len())]), site.nodes.len()),
        },
    })
}

/// `GET /api/v1/node/link`: a media node's link, after `Upgrade: sited-link`. It carries no
/// login: the site secret authenticates both ends (`nodes::seal`).
pub async fn link(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Response {
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(crate::nodes::link::UPGRADE));
    if !upgrade {
        return (
            StatusCode::UPGRADE_REQUIRED,
            "the node link needs Upgrade: sited-link\n",
        )
            .into_response();
    }
    if app.nodes.secret().is_none() || !is_application(&app) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "this node accepts no node link (no site secret, or not the application node)\n",
        )
            .into_response();
    }
    let peer = req
        .extensions()
        .get::<super::Peer>()
        .map(|p| p.0.to_string())
        .unwrap_or_default();
    let registry = app.nodes.clone();
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let io = hyper_util::rt::TokioIo::new(upgraded);
                if let Err(e) = crate::nodes::link::accept(io, registry, peer.clone()).await {
                    tracing::debug!(peer = %peer, error = %e, "node link ended");
                }
            }
            Err(e) => tracing::debug!(peer = %peer, error = %e, "node link upgrade failed"),
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::UPGRADE, crate::nodes::link::UPGRADE),
            (header::CONNECTION, "upgrade"),
        ],
    )
        .into_response()
}
