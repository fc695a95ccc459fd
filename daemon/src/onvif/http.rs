//! The HTTP side of ONVIF: one SOAP POST over a fresh connection, with a deadline and a bounded
//! reply.
//!
//! Thin, on hyper's HTTP/1.1 client (which also undoes chunked replies). A reply announcing more
//! than [`super::soap::REPLY`] bytes is refused before its body is read; one that streams more is
//! cut off at that size. Only `http://` and `https://` with an IP address are followed:
//! discovery already checked that the address is the one the device answered from. Over
//! `https://` the device's certificate is not checked ([`crate::base::tls`]): cameras carry
//! self-signed ones.
//!
//! A device that answers 401 with an HTTP Digest challenge (many do, besides or instead of the
//! WS-Security token in the envelope) is asked once more with the answer, computed by the
//! `http-auth` crate. Basic is answered only over `https://`: a password never travels in clear.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::device::Transport;
use super::soap::{Credentials, REPLY};
use crate::base::{Error, Kind, ResultExt as _};

/// The HTTP transport of ONVIF requests.
#[derive(Debug, Clone)]
pub struct Http {
    /// The most one request may take, connection included.
    pub timeout: Duration,
    /// What answers an HTTP authentication challenge, if anything.
    pub credentials: Option<Credentials>,
}

impl Transport for Http {
    async fn post(
        &self,
        url: &str,
        action: &str,
        envelope: String,
    ) -> Result<(u16, Vec<u8>), Error> {
        tokio::time::timeout(self.timeout, self.exchange(url, action, envelope))
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

/// Where a SOAP request goes.
struct Target {
    tls: bool,
    host: IpAddr,
    port: u16,
    /// The path and query.
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, Error> {
        let parsed =
            url::Url::parse(url).err_kind(Kind::Invalid, || format!("bad address {url}"))?;
        let tls = match parsed.scheme() {
            "http" => false,
            "https" => true,
            other => crate::bail!(Invalid, "{other} is not followed, only http and https"),
        };
        let host: IpAddr = match parsed.host() {
            Some(url::Host::Ipv4(a)) => a.into(),
            Some(url::Host::Ipv6(a)) => a.into(),
            _ => crate::bail!(Invalid, "{url} has no IP address"),
        };
        Ok(Target {
            tls,
            host,
            port: parsed.port().unwrap_or(if tls { 443 } else { 80 }),
            path: match parsed.query() {
                Some(q) => format!("{}?{q}", parsed.path()),
                None => parsed.path().to_string(),
            },
        })
    }

    /// `host:port`, IPv6 in brackets.
    fn authority(&self) -> String {
        std::net::SocketAddr::new(self.host, self.port).to_string()
    }
}

/// A reply: its status, its challenge if it is a 401, and its body.
struct Reply {
    status: u16,
    challenge: Option<String>,
    body: Vec<u8>,
}

impl Http {
    async fn exchange(
        &self,
        url: &str,
        action: &str,
        envelope: String,
    ) -> Result<(u16, Vec<u8>), Error> {
        let target = Target::parse(url)?;
        let first = send(&target, action, envelope.clone(), None).await?;
        let (Some(challenge), Some(credentials)) = (&first.challenge, &self.credentials) else {
            return Ok((first.status, first.body));
        };
        let Some(authorization) = answer(challenge, credentials, &target) else {
            return Ok((first.status, first.body));
        };
        let second = send(&target, action, envelope, Some(authorization)).await?;
        Ok((second.status, second.body))
    }
}

/// The `Authorization` answering `challenge`: Digest always, Basic only over TLS.
fn answer(challenge: &str, credentials: &Credentials, target: &Target) -> Option<String> {
    let mut client = http_auth::PasswordClient::try_from(challenge).ok()?;
    if matches!(client, http_auth::PasswordClient::Basic(_)) && !target.tls {
        tracing::warn!(device = %target.authority(), "an ONVIF device asks for Basic over plain HTTP; not answered");
        return None;
    }
    client
        .respond(&http_auth::PasswordParams {
            username: &credentials.username,
            password: &credentials.password,
            uri: &target.path,
            method: "POST",
            body: None,
        })
        .ok()
}

/// One POST on a fresh connection (TLS when the target says so).
async fn send(
    target: &Target,
    action: &str,
    envelope: String,
    authorization: Option<String>,
) -> Result<Reply, Error> {
    let stream = tokio::net::TcpStream::connect((target.host, target.port))
        .await
        .err_kind(Kind::Unavailable, || {
            format!("cannot reach {}", target.authority())
        })?;
    let mut request = http::Request::post(target.path.as_str())
        .header(http::header::HOST, target.authority())
        .header(
            http::header::CONTENT_TYPE,
            format!("application/soap+xml; charset=utf-8; action=\"{action}\""),
        )
        .header(http::header::CONNECTION, "close");
    if let Some(a) = authorization {
        request = request.header(http::header::AUTHORIZATION, a);
    }
    let request = request
        .body(Full::new(Bytes::from(envelope)))
        .err_kind(Kind::Internal, || "a SOAP request")?;
    if !target.tls {
        return over(stream, request).await;
    }
    let config = crate::base::tls::unverified_client(&[b"http/1.1"])?;
    let name = rustls::pki_types::ServerName::IpAddress(target.host.into());
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .err_kind(Kind::Unavailable, || {
            format!("TLS with {}", target.authority())
        })?;
    over(tls, request).await
}

/// One request and its bounded reply over an open connection.
async fn over<S>(io: S, request: http::Request<Full<Bytes>>) -> Result<Reply, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .err_kind(Kind::Unavailable, || "HTTP")?;
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .err_kind(Kind::Unavailable, || "HTTP")?;
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get(http::header::WWW_AUTHENTICATE)
            .filter(|_| status == 401)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
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
        Ok(Reply {
            status,
            challenge,
            body: out,
        })
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use md5::{Digest as _, Md5};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    const NONCE: &str = "5e1d";

    fn md5_hex(text: &str) -> String {
        crate::base::hex::encode(&Md5::digest(text.as_bytes()))
    }

    /// A device that wants HTTP Digest (RFC 2617, no qop) for `cam`/`pw`: 401 with a challenge,
    /// then 200 with `<ok/>` for the right answer.
    async fn device<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) {
        let mut buf = vec![0u8; 16 << 10];
        let mut n = 0;
        while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            match io.read(&mut buf[n..]).await {
                Ok(0) | Err(_) => return,
                Ok(k) => n += k,
            }
        }
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        let auth = head.lines().find_map(|l| {
            l.strip_prefix("authorization: ")
                .or(l.strip_prefix("Authorization: "))
        });
        let expected = {
            let ha1 = md5_hex("cam:onvif:pw");
            let ha2 = md5_hex("POST:/onvif/device_service");
            md5_hex(&format!("{ha1}:{NONCE}:{ha2}"))
        };
        let reply = match auth {
            Some(a) if a.contains(&format!("response=\"{expected}\"")) => {
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n<ok/>".to_string()
            }
            _ => format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"onvif\", nonce=\"{NONCE}\", algorithm=MD5\r\nContent-Length: 0\r\n\r\n"
            ),
        };
        let _ = io.write_all(reply.as_bytes()).await;
        let _ = io.shutdown().await;
    }

    async fn listen(tls: bool) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tls.then(|| {
            let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
            let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der())
                .unwrap();
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                match &acceptor {
                    Some(a) => {
                        if let Ok(tls) = a.accept(stream).await {
                            device(tls).await;
                        }
                    }
                    None => device(stream).await,
                }
            }
        });
        addr
    }

    fn http(credentials: Option<(&str, &str)>) -> Http {
        Http {
            timeout: Duration::from_secs(5),
            credentials: credentials.map(|(u, p)| Credentials {
                username: u.into(),
                password: p.into(),
            }),
        }
    }

    /// Issue 14: a device that wants HTTP Digest is answered, over http and over https with a
    /// self-signed certificate; without credentials, or with wrong ones, its 401 comes back.
    #[tokio::test]
    async fn digest_is_answered_over_http_and_https() {
        for (tls, scheme) in [(false, "http"), (true, "https")] {
            let addr = listen(tls).await;
            let url = format!("{scheme}://{addr}/onvif/device_service");
            let (status, body) = http(Some(("cam", "pw")))
                .post(&url, "GetDeviceInformation", "<e/>".into())
                .await
                .unwrap();
            assert_eq!((status, &body[..]), (200, &b"<ok/>"[..]), "{scheme}");
            let (status, _) = http(None).post(&url, "a", "<e/>".into()).await.unwrap();
            assert_eq!(status, 401, "{scheme}: no credentials");
            let (status, _) = http(Some(("cam", "no")))
                .post(&url, "a", "<e/>".into())
                .await
                .unwrap();
            assert_eq!(status, 401, "{scheme}: wrong password");
        }
        let refused = http(None)
            .post("ftp://192.0.2.1/x", "a", String::new())
            .await;
        assert_eq!(refused.unwrap_err().kind(), Kind::Invalid);
    }

    #[test]
    fn basic_is_answered_only_over_tls() {
        let credentials = Credentials {
            username: "cam".into(),
            password: "pw".into(),
        };
        let target = |tls| Target {
            tls,
            host: [192, 0, 2, 1].into(),
            port: 80,
            path: "/onvif/device_service".into(),
        };
        let basic = "Basic realm=\"onvif\"";
        assert!(answer(basic, &credentials, &target(false)).is_none());
        assert!(
            answer(basic, &credentials, &target(true)).is_some_and(|a| a.starts_with("Basic "))
        );
    }
}
