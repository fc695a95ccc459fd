//! The security headers of every web response: no MIME sniffing, no framing by other sites, no
//! full URL (a `?token=`) sent on as a referrer, and HSTS on TLS listeners.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// How long a browser that saw HSTS keeps to HTTPS: one year.
pub const HSTS: &str = "max-age=31536000";

const ALWAYS: [(HeaderName, &str); 4] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "same-origin"),
];

/// Adds the headers to a response (those a handler set itself are kept).
pub async fn security(req: Request, next: Next) -> Response {
    let secure = req.extensions().get::<super::tls::Secure>().is_some();
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    for (name, value) in ALWAYS {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    if secure {
        h.entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static(HSTS));
    }
    r
}
