//! The REST API under `/api/v1`: JSON views of the daemon's status, the config history, and
//! validation of candidate files. Described by [`super::openapi`].

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{App, require_admin};
use crate::auth::{Principal, TOKEN_TTL};
use crate::config::{self, Source};
use crate::plan::flow::Peering;

fn roles(r: crate::catalog::Roles) -> Vec<&'static str> {
    let mut out = Vec::new();
    if r.application {
        out.push("application");
    }
    if r.media {
        out.push("media");
    }
    out
}

/// `GET /api/v1/health`: unauthenticated and minimal.
pub async fn health(State(app): State<Arc<App>>) -> Json<Value> {
    let s = app.status.read().map(|s| {
        (
            s.site.as_ref().map(|x| x.name.clone()),
            s.node.clone(),
            s.unconfigured.is_none(),
        )
    });
    let (site, node, configured) = s.unwrap_or((None, None, false));
    Json(json!({"status": "ok", "site": site, "node": node, "configured": configured}))
}

/// `GET /api/v1/site`.
pub async fn site(State(app): State<Arc<App>>) -> Json<Value> {
    let Ok(s) = app.status.read() else {
        return Json(Value::Null);
    };
    let site = s.site.as_ref().map(|site| {
        json!({
            "name": site.name,
            "layout": site.layout,
            "ssl": format!("{:?}", site.ssl).to_lowercase(),
            "egress": format!("{:?}", site.egress).to_lowercase(),
            "features": {
                "admin": site.features.admin,
                "mobile": site.features.mobile,
                "license": format!("{:?}", site.features.license).to_lowercase(),
                "integration": site.features.integration,
            },
            "nodes": site.nodes.iter().map(|n| json!({"name": n.name, "address": n.address, "roles": roles(n.roles)})).collect::<Vec<_>>(),
            "cameras": site.cameras.len(),
        })
    });
    Json(
        json!({"site": site, "version": s.version, "last_reload": s.last, "unconfigured": s.unconfigured}),
    )
}

/// `GET /api/v1/node`.
pub async fn node(State(app): State<Arc<App>>) -> Json<Value> {
    let Ok(s) = app.status.read() else {
        return Json(Value::Null);
    };
    let plan = s.plan.as_ref();
    Json(json!({
        "name": s.node,
        "address": plan.map(|p| p.address()),
        "roles": plan.map(|p| roles(p.roles())).unwrap_or_default(),
        "listeners": s.listeners.values().collect::<Vec<_>>(),
        "firewall": s.firewall,
    }))
}

/// The cameras this node shows ([`crate::nodes::federation`]): every camera of the site on
/// the application node, the node's own elsewhere.
pub fn site_cameras(app: &App) -> Vec<crate::nodes::federation::SiteCamera> {
    let (site, me) = match app.status.read() {
        Ok(s) => (s.site.clone(), s.node.clone()),
        Err(_) => return Vec::new(),
    };
    let (Some(site), Some(me)) = (site, me) else {
        return Vec::new();
    };
    let local = app.cameras.read().map(|c| c.clone()).unwrap_or_default();
    crate::nodes::federation::cameras(&crate::nodes::federation::Sources {
        site: &site,
        me: &me,
        local: &local,
        linked: &app.nodes.nodes(),
        relays: &app.relays.states(),
    })
}

/// `GET /api/v1/cameras`: the cameras of the site (application node) or of this node, each
/// with the node that ingests it, its live state and, where this node ingests it, the
/// readers of its live stream (a relay to the application node is one).
pub async fn cameras(State(app): State<Arc<App>>) -> Json<Value> {
    let list = site_cameras(&app)
        .iter()
        .map(|c| {
            let mut v = c.json();
            if let Some(hub) = app.hubs.get(&c.camera.name).filter(|_| c.relay.is_none()) {
                v["readers"] = json!(hub.readers());
            }
            v
        })
        .collect();
    Json(Value::Array(list))
}

/// `GET /api/v1/ports`: this node's flows, as `sited ports --format json`; a viewer sees the
/// zones by name, not their networks.
pub async fn ports(State(app): State<Arc<App>>, Extension(p): Extension<Principal>) -> Json<Value> {
    let peering = if require_admin(&p).is_ok() {
        Peering::Networks
    } else {
        Peering::ZoneNames
    };
    let rows = app
        .status
        .read()
        .ok()
        .and_then(|s| s.plan.clone())
        .map(|plan| crate::plan::flow::json_rows(&plan.flows, peering))
        .unwrap_or_default();
    Json(Value::Array(rows))
}

/// Paging of the config history.
#[derive(Debug, Deserialize)]
pub struct Page {
    /// At most this many attempts (default 50, at most 500).
    pub limit: Option<u32>,
    /// Only attempts older than this id.
    pub before: Option<i64>,
}

/// `GET /api/v1/config/history`: admins only.
pub async fn history(
    State(app): State<Arc<App>>,
    Extension(p): Extension<Principal>,
    Query(page): Query<Page>,
) -> Response {
    if let Err(r) = require_admin(&p) {
        return r;
    }
    let limit = page.limit.unwrap_or(50).clamp(1, 500);
    let before = page.before;
    match super::with_store(&app, move |s| s.history(limit, before)).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => super::failure(&e),
    }
}

/// The answer of `POST /api/v1/config/validate`.
#[derive(Debug, Serialize)]
pub struct Validation {
    /// Whether the file has no error.
    pub valid: bool,
    /// Every diagnostic, as `sited validate --format json` prints them.
    pub diagnostics: Vec<Value>,
}

/// `POST /api/v1/config/validate`: the body is a candidate site.toml; nothing is applied.
pub async fn validate(Extension(p): Extension<Principal>, body: String) -> Response {
    if let Err(r) = require_admin(&p) {
        return r;
    }
    let checked = crate::plan::check(&body, config::Options::default());
    let source = Source::new("site.toml", &body);
    let diagnostics = checked
        .diagnostics
        .iter()
        .map(|d| serde_json::to_value(source.json(d)).unwrap_or_default())
        .collect();
    Json(Validation {
        valid: !checked.has_errors(),
        diagnostics,
    })
    .into_response()
}

/// `POST /api/v1/tokens`: a bearer token for the logged-in user, also usable as `?token=` on
/// the video outputs.
pub async fn tokens(State(app): State<Arc<App>>, Extension(p): Extension<Principal>) -> Response {
    let (token, _) = match app.auth.grant(p.clone(), TOKEN_TTL) {
        Ok(t) => t,
        Err(e) => return super::failure(&e),
    };
    (
        StatusCode::CREATED,
        Json(json!({"token": token, "user": p.name, "expires_in": TOKEN_TTL.as_secs()})),
    )
        .into_response()
}

/// The body of `POST /api/v1/tokens/revoke`.
#[derive(Debug, Deserialize)]
pub struct RevokeToken {
    /// The session or token to end.
    pub token: String,
}

/// `POST /api/v1/tokens/revoke`: ends a session or token before its expiry; with a site
/// secret, on every node of the site. Users may revoke their own; admins anyone's.
pub async fn revoke_token(
    State(app): State<Arc<App>>,
    Extension(p): Extension<Principal>,
    Json(body): Json<RevokeToken>,
) -> Response {
    let Some(owner) = app.auth.owner(&body.token) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such session or token (expired, revoked, or not of this site)"})),
        )
            .into_response();
    };
    if owner != p.name
        && let Err(r) = require_admin(&p)
    {
        return r;
    }
    app.auth.revoke(&body.token);
    tracing::info!(user = %p.name, owner = %owner, "a token was revoked");
    StatusCode::NO_CONTENT.into_response()
}
