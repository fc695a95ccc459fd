//! The Origin check of state-changing requests (issue 16 §2): CSRF does not rest on
//! `SameSite=Strict` alone.
//!
//! A browser sends `Origin` with every POST (and with WebSocket upgrades). A request that
//! changes state and names an origin other than the host it was sent to is refused (403), so
//! a page of another site cannot log a user in or out, mint a token, or act with their cookie.
//! Requests without `Origin` (curl, scripts, players) are not a browser's cross-site requests
//! and pass. The live ports ([`check_live`]) admit the node's own host on any port, since the
//! Live page on the web port opens their WebSockets. An origin that `site.cors_origins` lists
//! passes ([`super::cors`]): the site trusts its pages.

use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Whether `origin` (`scheme://host[:port]`) names the host the request was sent to.
pub fn same_origin(origin: &str, host: &str) -> bool {
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

/// Whether `origin` names the host the request was sent to, on any port: the live ports are
/// other ports of the same node, and the Live page on the web port opens their WebSockets.
pub fn same_host(origin: &str, host: &str) -> bool {
    let strip = |authority: &str| -> String {
        match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or("").to_ascii_lowercase(),
            None => authority
                .rsplit_once(':')
                .map_or(authority, |(h, _)| h)
                .to_ascii_lowercase(),
        }
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| strip(authority) == strip(host))
}

/// Whether a request changes state, or upgrades to a WebSocket, and names another origin than
/// `allowed` admits.
fn refused(req: &Request, allowed: fn(&str, &str) -> bool) -> bool {
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.headers().contains_key(header::UPGRADE);
    let Some(origin) = req.headers().get(header::ORIGIN).filter(|_| changes) else {
        return false;
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    !origin.to_str().is_ok_and(|o| allowed(o, host))
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "a request from another site\n").into_response()
}

/// Refuses a cross-origin request that changes state.
pub async fn check(req: Request, next: Next) -> Response {
    let listed = req.extensions().get::<super::cors::Listed>().is_some();
    if !listed && refused(&req, same_origin) {
        return forbidden();
    }
    next.run(req).await
}

/// The live ports' check: a WebSocket upgrade from a page of another host is refused (a page
/// of another site cannot watch with a viewer's cookie); the node's own pages, on any of its
/// ports, pass.
pub async fn check_live(req: Request, next: Next) -> Response {
    if refused(&req, same_host) {
        return forbidden();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hosts_own_origin_is_the_same() {
        assert!(same_origin("https://nvr.example:8443", "nvr.example:8443"));
        assert!(same_origin("http://192.0.2.1", "192.0.2.1"));
        assert!(!same_origin("https://evil.example", "nvr.example"));
        assert!(!same_origin("https://nvr.example", "nvr.example:8443"));
        assert!(!same_origin("null", "nvr.example"));
    }

    #[test]
    fn the_live_ports_admit_the_same_host_on_any_port() {
        assert!(same_host("https://nvr.example", "nvr.example:1935"));
        assert!(same_host("http://192.0.2.1:80", "192.0.2.1:8080"));
        assert!(same_host("http://[2001:db8::1]:80", "[2001:db8::1]:1935"));
        assert!(!same_host("http://[2001:db8::2]", "[2001:db8::1]:1935"));
        assert!(!same_host("https://evil.example", "nvr.example:1935"));
        assert!(!same_host("https://nvr.example.evil", "nvr.example"));
        assert!(!same_host("null", "nvr.example"));
    }
}
