//! The web service in process: the real router on `127.0.0.1:0`, spoken to over raw HTTP/1.1.

use std::sync::{Arc, Mutex, RwLock};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::state::Status;

const SITE: &str = "[site]\nname = \"harbour\"\nlayout = \"valt\"\n[networks]\nclients = [\"192.0.2.0/24\"]\n[[nodes]]\nname = \"app\"\naddress = \"192.0.2.1\"\nroles = [\"application\", \"media\"]\n[[cameras]]\nname = \"quay\"\nurl = \"rtsp://198.51.100.1/s\"\n";

/// A web service on `127.0.0.1:0` for the VALT site [`SITE`], its users `ann` (admin) and `vic`.
pub(super) struct Server {
    pub(super) addr: std::net::SocketAddr,
    pub(super) stop: CancellationToken,
    pub(super) app: Arc<App>,
}

/// Starts a [`Server`].
pub(super) async fn server() -> Server {
    server_of(SITE, "app").await
}

/// Starts a [`Server`] of another site, as its node `node`, with the same users.
pub(super) async fn server_of(site: &str, node: &str) -> Server {
    // Hashed once, so that the nodes of one test's site have the same users.
    static USERS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let users = USERS.get_or_init(|| {
        [("ann", "admin", "ann-pw"), ("vic", "viewer", "vic-pw")]
            .iter()
            .map(|(name, role, password)| {
                let hash = crate::auth::hash_password(password).unwrap();
                format!(
                    "[[users]]\nname = \"{name}\"\nrole = \"{role}\"\npassword_hash = \"{hash}\"\n"
                )
            })
            .collect()
    });
    let text = format!("{site}{users}");
    let site = crate::plan::check(&text, Default::default()).site.unwrap();
    let plan = crate::plan::plan(&site, node).unwrap();
    let auth: Arc<crate::auth::Auth> = Default::default();
    auth.set_users(&site.users);
    let status = Status {
        site: Some(Arc::new(site)),
        plan: Some(Arc::new(plan)),
        node: Some(node.into()),
        ..Status::default()
    };
    let nodes = Arc::new(crate::nodes::Registry::new(auth.clone()));
    let app = Arc::new(App {
        status: Arc::new(RwLock::new(status)),
        store: Arc::new(Mutex::new(crate::store::Store::memory().unwrap())),
        auth: auth.clone(),
        hubs: Default::default(),
        cameras: Default::default(),
        hls: Default::default(),
        recordings: std::env::temp_dir().join("sited-web-test-recordings"),
        site_file: std::env::temp_dir().join(format!("sited-web-test-{}.toml", std::process::id())),
        nodes: nodes.clone(),
        relays: Arc::new(crate::nodes::relay::Relays::new(Default::default(), nodes)),
        discoveries: Default::default(),
        webrtc: Default::default(),
    });
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(serve(
        vec![socket],
        None,
        router(app.clone()),
        stop.clone(),
        stop.clone(),
    ));
    Server { addr, stop, app }
}

/// One request on a fresh connection; returns the status code, headers and body.
pub(super) async fn request(
    addr: std::net::SocketAddr,
    head: &str,
    body: &str,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let text = format!(
        "{head}\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    let (headers, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let code = headers
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, headers.to_string(), body.to_string())
}

/// The header of an HTTP Basic login.
pub(super) fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn health_needs_no_login_and_names_the_site() {
    let s = server().await;
    let (code, _, body) = request(s.addr, "GET /api/v1/health HTTP/1.1", "").await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["site"], "harbour");
    assert_eq!(v["configured"], true);
    s.stop.cancel();
}

#[tokio::test]
async fn everything_else_needs_a_login() {
    let s = server().await;
    for path in [
        "/api/v1/site",
        "/api/v1/node",
        "/api/v1/cameras",
        "/api/v1/ports",
        "/api/v1/openapi.json",
        "/metrics",
    ] {
        let (code, headers, _) = request(s.addr, &format!("GET {path} HTTP/1.1"), "").await;
        assert_eq!(code, 401, "{path}");
        assert!(
            headers.contains("www-authenticate: Basic realm=\"sited\""),
            "{path}: {headers}"
        );
    }
    let (code, headers, _) = request(s.addr, "GET /ports HTTP/1.1", "").await;
    assert_eq!(code, 303);
    assert!(headers.contains("location: /login?next=/ports"));
    s.stop.cancel();
}

#[tokio::test]
async fn the_api_speaks_json_to_a_logged_in_user() {
    let s = server().await;
    let auth = basic("vic", "vic-pw");
    let (code, _, body) =
        request(s.addr, &format!("GET /api/v1/site HTTP/1.1\r\n{auth}"), "").await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["site"]["layout"], "valt");
    assert_eq!(
        v["site"]["nodes"][0]["roles"],
        serde_json::json!(["application", "media"])
    );
    let (_, _, body) = request(s.addr, &format!("GET /api/v1/ports HTTP/1.1\r\n{auth}"), "").await;
    let ports: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert!(
        ports
            .iter()
            .any(|p| p["port"] == 1935 && p["service"] == "live")
    );
    let (_, _, body) = request(
        s.addr,
        &format!("GET /api/v1/cameras HTTP/1.1\r\n{auth}"),
        "",
    )
    .await;
    assert!(body.contains("\"quay\""));
    let (_, _, body) = request(
        s.addr,
        &format!("GET /api/v1/openapi.json HTTP/1.1\r\n{auth}"),
        "",
    )
    .await;
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/config/validate"]["post"].is_object());
    s.stop.cancel();
}

#[tokio::test]
async fn validate_reports_diagnostics_and_is_for_admins() {
    let s = server().await;
    let candidate = SITE.replace("\"valt\"", "\"vatl\"");
    let (code, _, _) = request(
        s.addr,
        &format!(
            "POST /api/v1/config/validate HTTP/1.1\r\n{}",
            basic("vic", "vic-pw")
        ),
        &candidate,
    )
    .await;
    assert_eq!(code, 403);
    let (code, _, body) = request(
        s.addr,
        &format!(
            "POST /api/v1/config/validate HTTP/1.1\r\n{}",
            basic("ann", "ann-pw")
        ),
        &candidate,
    )
    .await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["diagnostics"][0]["code"], "unknown-value");
    assert_eq!(v["diagnostics"][0]["line"], 3);
    s.stop.cancel();
}

#[tokio::test]
async fn a_session_logs_into_the_ui_and_a_token_into_the_api() {
    let s = server().await;
    let (code, headers, _) = request(
        s.addr,
        "POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded",
        "user=ann&password=ann-pw&next=%2Fports",
    )
    .await;
    assert_eq!(code, 303);
    assert!(headers.contains("location: /ports"));
    let cookie = headers
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(headers.contains("HttpOnly") && headers.contains("SameSite=Strict"));
    let (code, _, body) = request(
        s.addr,
        &format!("GET /ports HTTP/1.1\r\nCookie: {cookie}"),
        "",
    )
    .await;
    assert_eq!(code, 200);
    assert!(
        body.contains("<h1>Ports</h1>")
            && body.contains("<td>live</td>")
            && body.contains("Video Streaming (WS)")
    );
    let (code, _, body) = request(s.addr, &format!("GET / HTTP/1.1\r\nCookie: {cookie}"), "").await;
    assert_eq!(code, 200);
    assert!(body.contains("harbour") && body.contains("application, media"));
    let (code, _, body) = request(
        s.addr,
        &format!("POST /api/v1/tokens HTTP/1.1\r\n{}", basic("vic", "vic-pw")),
        "",
    )
    .await;
    assert_eq!(code, 201);
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _, _) = request(
        s.addr,
        &format!("GET /api/v1/node HTTP/1.1\r\nAuthorization: Bearer {token}"),
        "",
    )
    .await;
    assert_eq!(code, 200);
    // Issue 16 §2: `?token=` is for media URLs only, not the API or the UI.
    for path in ["/api/v1/node", "/", "/recordings"] {
        let (code, _, _) = request(s.addr, &format!("GET {path}?token={token} HTTP/1.1"), "").await;
        assert!(code == 401 || code == 303, "{path}: {code}");
    }
    assert!(super::is_media_path("/live/cam.flv"));
    assert!(super::is_media_path("/vod/cam/index.m3u8"));
    assert!(super::is_media_path("/api/v1/cameras/cam/clip.mp4"));
    assert!(!super::is_media_path("/api/v1/cameras"));
    s.stop.cancel();
}

#[tokio::test]
async fn failed_logins_are_rate_limited() {
    let s = server().await;
    for _ in 0..crate::auth::MAX_FAILURES {
        let (code, _, _) = request(
            s.addr,
            &format!("GET /api/v1/site HTTP/1.1\r\n{}", basic("ann", "nope")),
            "",
        )
        .await;
        assert_eq!(code, 401);
    }
    let (code, headers, _) = request(
        s.addr,
        &format!("GET /api/v1/site HTTP/1.1\r\n{}", basic("ann", "ann-pw")),
        "",
    )
    .await;
    assert_eq!(
        code, 429,
        "slowed: the right password waits for the next slot"
    );
    assert!(headers.contains("retry-after:"));
    s.stop.cancel();
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let s = server().await;
    s.app.status.write().unwrap().reloads = 7;
    let (code, headers, body) = request(
        s.addr,
        &format!("GET /metrics HTTP/1.1\r\n{}", basic("ann", "ann-pw")),
        "",
    )
    .await;
    assert_eq!(code, 200);
    assert!(headers.contains("text/plain; version=0.0.4"));
    assert!(body.contains("# TYPE sited_reloads_total counter\nsited_reloads_total 7\n"));
    assert!(body.contains("sited_camera_state{camera=\"quay\",state=\"connecting\"} 1"));
    s.stop.cancel();
}

#[tokio::test]
async fn a_rude_client_is_cut_off_and_others_are_served() {
    let s = server().await;
    // A client that sends half a request line and stalls holds no more than its own slot.
    let mut rude = TcpStream::connect(s.addr).await.unwrap();
    rude.write_all(b"GET /api/v1/hea").await.unwrap();
    let (code, _, _) = request(s.addr, "GET /api/v1/health HTTP/1.1", "").await;
    assert_eq!(code, 200);
    // Garbage instead of HTTP gets a 400 or a closed connection, never a crash.
    let mut garbage = TcpStream::connect(s.addr).await.unwrap();
    garbage
        .write_all(b"\x16\x03\x01\x00\xff nonsense\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = garbage.read_to_end(&mut out).await;
    assert!(out.is_empty() || out.starts_with(b"HTTP/1.1 400"));
    let (code, _, _) = request(s.addr, "GET /api/v1/health HTTP/1.1", "").await;
    assert_eq!(code, 200);
    s.stop.cancel();
}

#[tokio::test]
async fn tls_serves_with_a_self_signed_certificate_generated_once() {
    use crate::plan::Tls;
    use rustls::pki_types::ServerName;
    let dir = std::env::temp_dir().join(format!("sited-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let names = Tls::SelfSigned(vec!["harbour".into(), "app".into(), "192.0.2.1".into()]);
    let config = tls::server_config(&names, &dir).unwrap().unwrap();
    let pem = std::fs::read(dir.join("tls/self-signed.crt")).unwrap();
    tls::server_config(&names, &dir).unwrap();
    assert_eq!(
        std::fs::read(dir.join("tls/self-signed.crt")).unwrap(),
        pem,
        "generated once, then reused"
    );

    let s = server().await;
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(serve(
        vec![socket],
        Some(TlsAcceptor::from(config)),
        router(s.app.clone()),
        s.stop.clone(),
        s.stop.clone(),
    ));

    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    for name in ["localhost", "harbour"] {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut stream = connector
            .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
            .await
            .unwrap();
        stream
            .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        let _ = stream.read_to_string(&mut out).await;
        assert!(out.starts_with("HTTP/1.1 200"), "{name}: {out}");
    }
    // A plain-HTTP client on the TLS port gets nothing useful, and the server goes on.
    let (code, _, _) = request(addr, "GET /api/v1/health HTTP/1.1", "").await;
    assert_eq!(code, 0);
    s.stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn storage_and_recordings_answer_for_known_cameras() {
    let s = server().await;
    let auth = basic("vic", "vic-pw");
    let (code, _, body) = request(
        s.addr,
        &format!("GET /api/v1/storage HTTP/1.1\r\n{auth}"),
        "",
    )
    .await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["free_bytes"].as_u64().is_some() && v["cameras"].is_array());
    let (code, _, body) = request(
        s.addr,
        &format!("GET /api/v1/cameras/quay/recordings HTTP/1.1\r\n{auth}"),
        "",
    )
    .await;
    assert_eq!((code, body.as_str()), (200, "[]"));
    let (code, _, _) = request(
        s.addr,
        &format!("GET /api/v1/cameras/nope/recordings HTTP/1.1\r\n{auth}"),
        "",
    )
    .await;
    assert_eq!(code, 404);
    let (code, _, body) = request(s.addr, &format!("GET /api/v1/cameras/quay/clip.mp4?start=2026-11-21T10:00:00Z&end=2026-11-21T09:00:00Z HTTP/1.1\r\n{auth}"), "").await;
    assert_eq!(code, 400, "{body}");
    let (code, _, _) = request(s.addr, &format!("GET /api/v1/cameras/quay/clip.mp4?start=2026-11-21T10:00:00Z&end=2026-11-21T10:01:00Z HTTP/1.1\r\n{auth}"), "").await;
    assert_eq!(code, 404, "nothing recorded there");
    s.stop.cancel();
}

/// Issue 16 §2: the usual security headers, on every page (HSTS only under TLS).
#[tokio::test]
async fn responses_carry_the_security_headers() {
    let s = server().await;
    for path in ["/api/v1/health", "/login"] {
        let (code, headers, _) = request(s.addr, &format!("GET {path} HTTP/1.1"), "").await;
        assert_eq!(code, 200, "{path}");
        let headers = headers.to_ascii_lowercase();
        for h in [
            "x-content-type-options: nosniff",
            "content-security-policy: frame-ancestors 'none'",
            "referrer-policy: same-origin",
        ] {
            assert!(headers.contains(h), "{path}: {h} missing from {headers}");
        }
        assert!(!headers.contains("strict-transport-security"), "{path}");
    }
    s.stop.cancel();
}

/// Issue 16 §2: a page of another site cannot post to the UI or the API with the user's cookie.
#[tokio::test]
async fn state_changing_requests_from_another_site_are_refused() {
    let s = server().await;
    let (code, _, _) = request(
        s.addr,
        "POST /logout HTTP/1.1\r\nOrigin: https://evil.example",
        "",
    )
    .await;
    assert_eq!(code, 403);
    let (code, _, _) = request(
        s.addr,
        &format!(
            "POST /api/v1/tokens HTTP/1.1\r\nOrigin: http://test\r\n{}",
            basic("vic", "vic-pw")
        ),
        "",
    )
    .await;
    assert_eq!(code, 201, "the host's own origin");
    s.stop.cancel();
}

/// Issue 12 §3: the navigation of every page leads to Live and Recordings.
#[tokio::test]
async fn every_page_leads_to_live_and_recordings() {
    let s = server().await;
    let auth = basic("ann", "ann-pw");
    for page in [
        "/",
        "/live",
        "/recordings",
        "/cameras",
        "/ports",
        "/history",
    ] {
        let (code, _, body) = request(s.addr, &format!("GET {page} HTTP/1.1\r\n{auth}"), "").await;
        assert_eq!(code, 200, "{page}");
        let nav = body
            .split_once("<nav>")
            .and_then(|(_, n)| n.split_once("</nav>"))
            .map(|(n, _)| n)
            .unwrap_or_else(|| panic!("{page} has no navigation"));
        for link in ["<a href=\"/live\"", "<a href=\"/recordings\""] {
            assert!(nav.contains(link), "{page}: {nav}");
        }
    }
    s.stop.cancel();
}

/// Issue 12 §3: with the site secret, a token is a site token that another node of the site
/// accepts; revoking it (its owner or an admin) refuses it here, and on the other node once
/// the list reaches it (the node link carries it: `nodes::tests`).
#[tokio::test]
async fn site_tokens_are_revoked_by_their_owner_or_an_admin() {
    let s = server().await;
    let key = || crate::auth::TokenKey::derive(&[5; 32]).unwrap();
    s.app.auth.set_site_key(Some(key()));
    let token_of = |user: &'static str, password: &'static str| async move {
        let (code, _, body) = request(
            s.addr,
            &format!("POST /api/v1/tokens HTTP/1.1\r\n{}", basic(user, password)),
            "",
        )
        .await;
        assert_eq!(code, 201);
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (ann, vic) = (
        token_of("ann", "ann-pw").await,
        token_of("vic", "vic-pw").await,
    );
    let media = crate::auth::Auth::default();
    media.set_site_key(Some(key()));
    let users = s.app.auth.users();
    assert!(
        media.lookup(&users, &vic).is_some(),
        "another node accepts it"
    );
    let revoke = |bearer: String, token: String| async move {
        request(
            s.addr,
            &format!("POST /api/v1/tokens/revoke HTTP/1.1\r\nAuthorization: Bearer {bearer}\r\nContent-Type: application/json"),
            &serde_json::json!({"token": token}).to_string(),
        )
        .await
        .0
    };
    assert_eq!(
        revoke(vic.clone(), ann.clone()).await,
        403,
        "a viewer cannot end an admin's"
    );
    assert_eq!(revoke(ann.clone(), "s1.forged.x".into()).await, 404);
    assert_eq!(revoke(vic.clone(), vic.clone()).await, 204);
    let (code, _, _) = request(
        s.addr,
        &format!("GET /api/v1/node HTTP/1.1\r\nAuthorization: Bearer {vic}"),
        "",
    )
    .await;
    assert_eq!(code, 401);
    let now = crate::auth::token::unix_now();
    media.revoked().merge(&s.app.auth.revoked().list(now), now);
    assert!(media.lookup(&users, &vic).is_none());
    assert!(media.lookup(&users, &ann).is_some());
    s.stop.cancel();
}

/// Issue 16 §2: a viewer sees the zones a port is open to by name, never the site's networks;
/// an admin sees the networks.
#[tokio::test]
async fn only_admins_see_the_networks_of_the_zones() {
    let s = server().await;
    let peers = |body: &str| -> Vec<String> {
        let rows: serde_json::Value = serde_json::from_str(body).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["peers"].as_array().cloned().unwrap_or_default())
            .map(|p| p.as_str().unwrap_or_default().to_string())
            .collect()
    };
    let get = |user: &'static str, pw: &'static str| {
        let auth = basic(user, pw);
        async move { request(s.addr, &format!("GET /api/v1/ports HTTP/1.1\r\n{auth}"), "").await }
    };
    let (code, _, body) = get("vic", "vic-pw").await;
    assert_eq!(code, 200);
    let seen = peers(&body);
    assert!(seen.iter().any(|p| p == "clients"), "{seen:?}");
    assert!(!seen.iter().any(|p| p.contains("192.0.2.")), "{seen:?}");
    let (_, _, body) = get("ann", "ann-pw").await;
    assert!(peers(&body).iter().any(|p| p == "192.0.2.0/24"));
    s.stop.cancel();
}

/// Issue 16 §2: an unconfigured node has no users, so the page that says what to do needs no
/// login; every other page still does.
#[tokio::test]
async fn an_unconfigured_node_says_what_to_do_without_a_login() {
    let s = server().await;
    if let Ok(mut st) = s.app.status.write() {
        st.unconfigured = Some("no site file at /etc/sited/site.toml".into());
        st.site = None;
    }
    let (code, _, body) = request(s.addr, "GET / HTTP/1.1", "").await;
    assert_eq!(code, 200);
    assert!(body.contains("runs no site yet"), "{body}");
    assert!(body.contains("no site file at /etc/sited/site.toml"));
    let (code, _, _) = request(s.addr, "GET /ports HTTP/1.1", "").await;
    assert_eq!(code, 303);
    s.stop.cancel();
}

/// Issue 16 §2: the self-signed certificate names the site, is valid for about 13 months from
/// yesterday (not 1975–4096), and is generated again when less than a month of it is left.
#[test]
fn the_self_signed_certificate_names_the_site_and_is_renewed() {
    use std::time::{Duration, SystemTime};
    let dir = std::env::temp_dir().join(format!("sited-tls-renew-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let names = ["harbour".to_string(), "app".into(), "192.0.2.1".into()];
    let now = SystemTime::now();
    let der = |path: &std::path::Path| {
        let pem = std::fs::read(path).unwrap();
        let cert = rustls_pemfile::certs(&mut pem.as_slice())
            .next()
            .unwrap()
            .unwrap();
        cert.as_ref().to_vec()
    };
    let utc_day = |t: SystemTime| {
        let text = humantime::format_rfc3339_seconds(t).to_string();
        format!("{}{}{}000000Z", &text[2..4], &text[5..7], &text[8..10]).into_bytes()
    };
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    let (cert, _) = tls::self_signed_at(&dir, &names, now).unwrap();
    let first = der(&cert);
    assert!(!contains(&first, b"rcgen self signed cert"));
    assert!(contains(&first, b"harbour") && contains(&first, b"sited"));
    assert!(contains(&first, &utc_day(now + tls::SELF_SIGNED_VALIDITY)));
    assert!(contains(
        &first,
        &utc_day(now - Duration::from_secs(24 * 3600))
    ));
    // A month and a day before its end it is kept; with less left it is renewed.
    let later = now + tls::SELF_SIGNED_VALIDITY - tls::RENEW_BEFORE - Duration::from_secs(86_400);
    tls::self_signed_at(&dir, &names, later).unwrap();
    assert_eq!(der(&cert), first, "kept while more than a month is left");
    let end = now + tls::SELF_SIGNED_VALIDITY - Duration::from_secs(86_400);
    tls::self_signed_at(&dir, &names, end).unwrap();
    let renewed = der(&cert);
    assert_ne!(renewed, first, "renewed with less than a month left");
    assert!(contains(
        &renewed,
        &utc_day(end + tls::SELF_SIGNED_VALIDITY)
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 16 §2: on a live port, a WebSocket upgrade from a page of another site is refused
/// before any credential is looked at; the node's own page (another port of its host) passes.
#[tokio::test]
async fn live_websockets_refuse_other_sites() {
    let s = server().await;
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(serve(
        vec![socket],
        None,
        live::router(s.app.clone()),
        s.stop.clone(),
        s.stop.clone(),
    ));
    let upgrade = |origin: &str| {
        format!(
            "GET /live/quay HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: {origin}"
        )
    };
    let (code, _, _) = request(addr, &upgrade("https://evil.example"), "").await;
    assert_eq!(code, 403);
    // `request` sends `Host: test`: the node's own page on its web port has that host.
    let (code, _, _) = request(addr, &upgrade("http://test:8080"), "").await;
    assert_ne!(code, 403);
    s.stop.cancel();
}
