//! The Origin check of state-changing requests (issue 16 §2): CSRF does not rest on
//! `SameSite=Strict` alone.
//!
//! A browser sends `Origin` with every POST (and with WebSocket upgrades). A request that
//! changes state and names an origin other than the host it was sent to is refused (403), so
//! a page of another site cannot log a user in or out, mint a token, or act with their cookie.
//! Requests without `Origin` (curl, scripts, players) are not a browser's cross-site requests
//! and pass.

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

/// Refuses a cross-origin request that changes state.
pub async fn check(req: Request, next: Next) -> Response {
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.headers().contains_key(header::UPGRADE);
    if changes && let Some(origin) = req.headers().get(header::ORIGIN) {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !origin.to_str().is_ok_and(|o| same_origin(o, host)) {
            return (StatusCode::FORBIDDEN, "a request from another site\n").into_response();
        }
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
}
