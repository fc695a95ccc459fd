//! The web service: the UI, the REST API under `/api/v1`, and the Prometheus metrics.
//!
//! One [`axum::Router`] serves every web listener of the node (the web ports, the REST and
//! config ports of Ti Top, NovaVMS's backend); [`serve`] runs it on already-bound sockets, with
//! TLS when the listener has it, so that tests bind `127.0.0.1:0` and run the real server.
//! Everything but `GET /api/v1/health` and the login page needs a login. Pages of the origins
//! `site.cors_origins` lists may read the responses ([`cors`]).

pub mod api;
pub mod cors;
pub mod discover;
pub mod headers;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod origin;
pub mod page;
pub mod range;
pub mod recordings;
pub mod serve;
pub mod site;
pub mod stall;
pub mod tls;
pub mod ui;
pub mod vod;
pub mod whep;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

pub use crate::auth::COOKIE;
use crate::auth::{Auth, Credentials, Principal, Refusal};
use crate::base::{Error, Kind};
use crate::config::site::{User, UserRole};
use crate::state::Shared;
use crate::store::Store;
pub use serve::{SNIFF_BYTES, Sniff, Takeover, Takeovers, serve_with};

/// How long a client may take to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every request handler shares.
pub struct App {
    /// The daemon's status.
    pub status: Shared,
    /// The state database.
    pub store: Arc<Mutex<Store>>,
    /// Sessions, tokens and login throttling.
    pub auth: Arc<Auth>,
    /// The live streams of the node.
    pub hubs: Arc<crate::media::hub::Hubs>,
    /// The cameras' status.
    pub cameras: crate::media::ingest::Statuses,
    /// The HLS segmenters.
    pub hls: Arc<crate::media::output::hls::Hls>,
    /// The recordings root, `<state-dir>/recordings`.
    pub recordings: std::path::PathBuf,
    /// The site file (`/etc/sited/site.toml`), which `PUT /api/v1/site` replaces.
    pub site_file: std::path::PathBuf,
    /// The media nodes linked to this one, when it is the application node.
    pub nodes: Arc<crate::nodes::Registry>,
    /// The cameras other nodes ingest, relayed here (application node).
    pub relays: Arc<crate::nodes::relay::Relays>,
    /// The last ONVIF discovery of the node.
    pub discoveries: Arc<discover::Discoveries>,
    /// WebRTC viewers (WHEP).
    pub webrtc: Arc<crate::media::webrtc::Webrtc>,
}

impl App {
    /// The users of the site in force.
    pub fn users(&self) -> Vec<User> {
        self.status
            .read()
            .ok()
            .and_then(|s| s.site.as_ref().map(|site| site.users.clone()))
            .unwrap_or_default()
    }
}

/// The client's address, put on every request by [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

fn peer_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<Peer>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |p| p.0.ip())
}

/// Whether a path is media a player fetches (live video, VOD, a clip), the only URLs where a
/// `?token=` is taken: a token in the URL of a page or an API call would end up in logs and
/// referrers for nothing.
pub fn is_media_path(path: &str) -> bool {
    path.starts_with("/live/")
        || path.starts_with("/vod/")
        || (path.starts_with("/api/v1/cameras/") && path.ends_with("/clip.mp4"))
}

/// Who is asking, by session cookie, bearer token (or `token=` query on media URLs), or HTTP
/// Basic.
pub fn principal(app: &App, req: &Request) -> Result<Option<Principal>, Refusal> {
    let query = req
        .uri()
        .query()
        .filter(|_| is_media_path(req.uri().path()));
    let credentials = Credentials::from_http(req.headers(), query);
    let found = app.auth.principal(&app.users(), &credentials, peer_ip(req));
    if let Ok(Some(_)) = found
        && let Some(ticket) = req
            .extensions()
            .get::<Arc<crate::base::admission::Ticket>>()
    {
        // The connection logged in: it no longer counts against its address.
        ticket.authenticated();
    }
    found
}

/// Runs `f` on the state database off the async threads: SQLite blocks, so no query runs on a
/// tokio worker.
pub async fn with_store<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&Store) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || {
        let s = store
            .lock()
            .map_err(|_| Error::new(Kind::Internal, "the state database lock is poisoned"))?;
        f(&s)
    })
    .await
    .map_err(|e| Error::new(Kind::Internal, "a state database task died").with_source(e))?
}

/// The answer to a request that failed with `e`: its kind's status, and JSON naming the kind.
pub fn failure(e: &Error) -> Response {
    let status =
        StatusCode::from_u16(e.kind().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!(error = %e, kind = %e.kind(), "request failed");
    }
    (
        status,
        axum::Json(serde_json::json!({"error": e.to_string(), "kind": e.kind().name()})),
    )
        .into_response()
}

fn throttled(left: Duration) -> Response {
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed logins; try again later\n",
    )
        .into_response();
    if let Ok(v) = left.as_secs().max(1).to_string().parse() {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The login of the API and the recorded outputs: a JSON 401 asking for Basic.
pub(crate) async fn api_login(
    State(app): State<Arc<App>>,
    mut req: Request,
    next: Next,
) -> Response {
    match principal(&app, &req) {
        Ok(Some(p)) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Ok(None) | Err(Refusal::Invalid) => {
            let mut r = (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({"error": "log in with HTTP Basic, a bearer token, or a session"}))).into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"sited\""),
            );
            r
        }
        Err(Refusal::Throttled(left)) => throttled(left),
    }
}

async fn ui_login(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    if req.uri().path() == "/" {
        let unconfigured = app.status.read().ok().and_then(|s| s.unconfigured.clone());
        if let Some(why) = unconfigured {
            return ui::unconfigured(&why);
        }
    }
    match principal(&app, &req) {
        Ok(Some(p)) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Err(Refusal::Throttled(left)) => throttled(left),
        _ => Redirect::to(&format!("/login?next={}", req.uri().path())).into_response(),
    }
}

/// Refuses a request of a viewer where an admin is needed.
pub fn require_admin(p: &Principal) -> Result<(), Response> {
    if p.role == UserRole::Admin {
        Ok(())
    } else {
        Err((
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({"error": "this needs an admin"})),
        )
            .into_response())
    }
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("assets/style.css"),
    )
}

async fn live_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("assets/live.js"),
    )
}

/// The router of every web listener.
pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/api/v1/site", get(api::site).put(site::put))
        .route("/api/v1/site/file", get(site::file))
        .route("/api/v1/nodes", get(site::nodes))
        .route("/api/v1/node", get(api::node))
        .route("/api/v1/cameras", get(api::cameras))
        .merge(recordings::routes())
        .route("/api/v1/storage", get(recordings::storage))
        .route("/api/v1/ports", get(api::ports))
        .route("/api/v1/config/history", get(api::history))
        .route("/api/v1/config/validate", post(api::validate))
        .route("/api/v1/tokens", post(api::tokens))
        .route("/api/v1/discover", post(discover::discover))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/metrics", get(metrics::render))
        .route_layer(middleware::from_fn_with_state(app.clone(), api_login));
    let ui = Router::new()
        .route("/", get(ui::overview))
        .route("/cameras", get(ui::cameras))
        .route("/live", get(ui::live))
        .route("/recordings", get(ui::recordings))
        .route("/ports", get(ui::ports))
        .route("/history", get(ui::history))
        .route_layer(middleware::from_fn_with_state(app.clone(), ui_login));
    Router::new()
        .route("/api/v1/health", get(api::health))
        .route("/api/v1/node/link", get(site::link))
        .route("/login", get(ui::login_page).post(ui::login))
        .route("/logout", post(ui::logout))
        .route("/assets/style.css", get(style))
        .route("/assets/live.js", get(live_js))
        .merge(api)
        .merge(ui)
        .merge(vod::routes(app.clone()))
        .merge(whep::routes())
        .layer(middleware::from_fn(origin::check))
        .layer(middleware::from_fn(headers::security))
        .layer(middleware::from_fn_with_state(app.clone(), cors::cors))
        .with_state(app)
}

/// The router of the downloads port (VALT 8000): health, recordings, clips and VOD.
pub fn downloads_router(app: Arc<App>) -> Router {
    let protected =
        recordings::routes().route_layer(middleware::from_fn_with_state(app.clone(), api_login));
    Router::new()
        .route("/api/v1/health", get(api::health))
        .merge(protected)
        .merge(vod::routes(app.clone()))
        .layer(middleware::from_fn(headers::security))
        .layer(middleware::from_fn_with_state(app.clone(), cors::cors))
        .with_state(app)
}

/// The router of a VOD port (Ti Top 8086): health and the VOD playlists.
pub fn vod_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/api/v1/health", get(api::health))
        .merge(vod::routes(app.clone()))
        .layer(middleware::from_fn_with_state(app.clone(), cors::cors))
        .with_state(app)
}

/// Serves `router` on bound sockets until `stop` (stop accepting) or `shutdown` (close
/// connections too). Returns the accept error that ended it, if any.
pub async fn serve(
    sockets: Vec<TcpListener>,
    tls: Option<TlsAcceptor>,
    router: Router,
    stop: CancellationToken,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with(sockets, tls, router, stop, shutdown, Takeovers::default()).await
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vod_tests;
#[cfg(test)]
mod whep_tests;
