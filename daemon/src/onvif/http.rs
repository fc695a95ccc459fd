//! The HTTP side of ONVIF: one SOAP POST over a fresh connection, with a deadline and a bounded
//! reply.
//!
//! Thin, on hyper's HTTP/1.1 client (which also undoes chunked replies). A reply announcing more
//! than [`super::soap::REPLY`] bytes is refused before its body is read; one that streams more is
//! cut off at that size. Only `http://` with an IP address is followed: discovery already
//! checked that the address is the one the device answered from.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;

use super::device::Transport;
use super::soap::REPLY;
use crate::base::{Error, Kind, ResultExt as _};

/// The HTTP transport of ONVIF requests.
#[derive(Debug, Clone, Copy)]
pub struct Http {
    /// The most one request may take, connection included.
    pub timeout: Duration,
}

impl Transport for Http {
    async fn post(
        &self,
        url: &str,
        action: &str,
        envelope: String,
    ) -> Result<(u16, Vec<u8>), Error> {
        tokio::time::timeout(self.timeout, post(url, action, envelope))
            .await
            .unwrap_or_else(|_| {
                Err(crate::err!(
                    DeadlineExceeded,
                    "timed out after {:?}",
                    self.timeout
                ))
            })
    }
}

/// `host:port`, IPv6 in brackets.
fn authority_of(host: IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(host, port).to_string()
}

async fn post(url: &str, action: &str, envelope: String) -> Result<(u16, Vec<u8>), Error> {
    let parsed = url::Url::parse(url).err_kind(Kind::Invalid, || format!("bad address {url}"))?;
    if parsed.scheme() != "http" {
        crate::bail!(Invalid, "{} is not followed, only http", parsed.scheme());
    }
    let host: IpAddr = match parsed.host() {
        Some(url::Host::Ipv4(a)) => a.into(),
        Some(url::Host::Ipv6(a)) => a.into(),
        _ => crate::bail!(Invalid, "{url} has no IP address"),
    };
    let port = parsed.port().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .err_kind(Kind::Unavailable, || {
            format!("cannot reach {}", authority_of(host, port))
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .err_kind(Kind::Unavailable, || "HTTP")?;
    let driver = tokio::spawn(connection);
    let path = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let authority = authority_of(host, port);
    let request = http::Request::post(path)
        .header(http::header::HOST, authority)
        .header(
            http::header::CONTENT_TYPE,
            format!("application/soap+xml; charset=utf-8; action=\"{action}\""),
        )
        .header(http::header::CONNECTION, "close")
        .body(Full::new(Bytes::from(envelope)))
        .err_kind(Kind::Internal, || "a SOAP request")?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .err_kind(Kind::Unavailable, || "HTTP")?;
        let status = response.status().as_u16();
        let announced = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if announced.is_some_and(|n| n > REPLY.bytes) {
            crate::bail!(
                ResourceExhausted,
                "a reply of {} bytes is too large",
                announced.unwrap_or(0)
            );
        }
        let mut body = response.into_body();
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.err_kind(Kind::Unavailable, || "HTTP")?;
            if let Some(data) = frame.data_ref() {
                if out.len() + data.len() > REPLY.bytes {
                    crate::bail!(
                        ResourceExhausted,
                        "a reply over {} bytes is too large",
                        REPLY.bytes
                    );
                }
                out.extend_from_slice(data);
            }
        }
        Ok((status, out))
    }
    .await;
    driver.abort();
    result
}
