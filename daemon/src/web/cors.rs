//! CORS for integrators (issue 17 §4): a page of an origin listed in `site.cors_origins` may
//! read the live, VOD, clip and API responses, with the viewer's credentials (hls.js on an
//! integrator's page, sending `Authorization` or a `?token=`).
//!
//! A preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered here, before any
//! login: 204 with what may be sent for a listed origin, 403 for any other. Other responses to
//! a listed origin carry `Access-Control-Allow-Origin` (the origin itself, never `*`) and
//! `Access-Control-Allow-Credentials`; an unlisted origin gets no CORS header, so its page
//! cannot read the response. `Vary: Origin` keeps caches from mixing the two. The origin
//! check of state-changing requests (`origin`) lets a listed origin through.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::App;

/// The methods a listed origin may use.
pub const METHODS: &str = "GET, HEAD, POST, PUT, OPTIONS";
/// The request headers a listed origin may send.
pub const HEADERS: &str = "Authorization, Content-Type, Range, If-Match, If-Range";
/// The response headers a listed origin's page may read, beyond the simple ones.
pub const EXPOSE: &str = "Content-Length, Content-Range, Accept-Ranges, ETag";
/// How long a browser may keep a preflight's answer, in seconds.
pub const MAX_AGE: &str = "600";

/// A request from a listed origin: the origin check of state-changing requests lets it pass.
#[derive(Debug, Clone, Copy)]
pub struct Listed;

/// The request's `Origin` when `origins` lists it (origins compare without case).
pub fn listed<'a>(origins: &[String], headers: &'a HeaderMap) -> Option<&'a str> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(origin))
        .then_some(origin)
}

/// Adds the CORS headers of a listed origin.
fn allow(h: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

/// The CORS middleware of every listener with live, VOD, clip or API responses.
pub async fn cors(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let origins = app
        .status
        .read()
        .ok()
        .and_then(|s| s.site.as_ref().map(|site| site.cors_origins.clone()))
        .unwrap_or_default();
    let origin = listed(&origins, req.headers()).map(str::to_string);
    let preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut r = if preflight {
        match &origin {
            Some(o) => {
                let mut r = StatusCode::NO_CONTENT.into_response();
                let h = r.headers_mut();
                allow(h, o);
                for (name, value) in [
                    (header::ACCESS_CONTROL_ALLOW_METHODS, METHODS),
                    (header::ACCESS_CONTROL_ALLOW_HEADERS, HEADERS),
                    (header::ACCESS_CONTROL_MAX_AGE, MAX_AGE),
                ] {
                    h.insert(name, HeaderValue::from_static(value));
                }
                r
            }
            None => (StatusCode::FORBIDDEN, "origin not allowed\n").into_response(),
        }
    } else {
        if origin.is_some() {
            req.extensions_mut().insert(Listed);
        }
        let mut r = next.run(req).await;
        if let Some(o) = &origin {
            allow(r.headers_mut(), o);
            r.headers_mut().insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE),
            );
        }
        r
    };
    if !origins.is_empty() {
        r.headers_mut()
            .append(header::VARY, HeaderValue::from_static("Origin"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_listed_origin_is_named() {
        let origins = vec!["https://player.example:8443".to_string()];
        let with = |o: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
            h
        };
        assert_eq!(
            listed(&origins, &with("https://Player.example:8443")),
            Some("https://Player.example:8443")
        );
        for other in [
            "https://player.example",
            "http://player.example:8443",
            "https://player.example:8443.evil.example",
            "null",
        ] {
            assert_eq!(listed(&origins, &with(other)), None, "{other}");
        }
        assert_eq!(listed(&origins, &HeaderMap::new()), None);
    }
}
