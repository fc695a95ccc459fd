//! HTTP-FLV viewers served straight on their socket, past hyper.
//!
//! [`claim`] looks at the first bytes of a plain connection (peeked, so still unread). When they
//! are a whole `GET /live/<name>.flv` request head that is authorized (a `?token=`, a session
//! cookie or HTTP Basic, as for the router) for a stream that is live, the connection is taken:
//! the head is read, a `200` head written, then the stream: one `writev` per frame of the tag
//! header, the frame's shared payload and the trailer. A viewer then costs its task, its hub
//! reader and its socket: no HTTP buffers (hyper keeps 8 KiB to read and 8 KiB to write per
//! connection), no per-viewer copy of a frame, and no chunked coding. The body ends when the
//! connection closes (RFC 9112 §6.3), which is how an endless FLV stream ends anyway.
//!
//! Anything else (a head split over several segments, another method or path, a refusal, a
//! stream that is not live) is given back and served by hyper and the router, which answer it
//! exactly as before. Claimed viewers leave the listener's HTTP slot, like RTMP viewers: the
//! file-descriptor reserve bounds them (`base::admission`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request};
use futures_util::future::BoxFuture;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::Live;
use super::flv;
use super::writev::write_parts;
use crate::auth::Credentials;
use crate::base::admission::Ticket;
use crate::media::hub::{Item, Reader, Stop};

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: video/x-flv\r\n\
cache-control: no-store\r\nconnection: close\r\n\r\n";

/// Parses a whole `GET /live/<name>.flv` head, with its headers for the authorization check.
fn parse(peeked: &[u8]) -> Option<(usize, String, Request<Body>)> {
    let end = peeked.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = std::str::from_utf8(&peeked[..end]).ok()?;
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, target, version) = (
        request_line.next()?,
        request_line.next()?,
        request_line.next()?,
    );
    if method != "GET"
        || !matches!(version, "HTTP/1.1" | "HTTP/1.0")
        || request_line.next().is_some()
    {
        return None;
    }
    let path = target.split('?').next()?;
    let name = path.strip_prefix("/live/")?.strip_suffix(".flv")?;
    // Names the router would decode or reject are left to it.
    if name.is_empty() || name.contains(['/', '%']) {
        return None;
    }
    let mut request = Request::get(target).body(Body::empty()).ok()?;
    for line in lines {
        let (k, v) = line.split_once(':')?;
        let k = HeaderName::from_bytes(k.as_bytes()).ok()?;
        let v = HeaderValue::from_str(v.trim()).ok()?;
        request.headers_mut().append(k, v);
    }
    Some((end + 4, name.to_string(), request))
}

/// The claim of a live listener: takes an HTTP-FLV viewer, or gives the connection back.
pub fn claim(
    live: &Arc<Live>,
    peeked: &[u8],
    stream: TcpStream,
    peer: SocketAddr,
    ticket: &Arc<Ticket>,
) -> Result<BoxFuture<'static, ()>, TcpStream> {
    let Some((length, name, request)) = parse(peeked) else {
        return Err(stream);
    };
    let credentials = Credentials::from_http(request.headers(), request.uri().query());
    if live.viewer(&credentials, peer.ip()).is_none() {
        return Err(stream);
    }
    let Some(hub) = live.hubs.get(&name) else {
        return Err(stream);
    };
    ticket.authenticated();
    Ok(Box::pin(serve(stream, length, hub.subscribe())))
}

/// Streams the hub to a claimed viewer until either side ends.
async fn serve(mut io: TcpStream, head: usize, mut reader: Reader) {
    let mut request = vec![0; head];
    if io.read_exact(&mut request).await.is_err() {
        return;
    }
    drop(request);
    if write_parts(&mut io, &[RESPONSE]).await.is_err() {
        return;
    }
    let mut muxer: Option<flv::Muxer> = None;
    loop {
        let written = match reader.next().await {
            Ok(Item::Tracks(tracks)) => {
                // A second epoch cannot restart an FLV stream: the viewer reconnects.
                if muxer.is_some() {
                    break;
                }
                muxer = Some(flv::Muxer::new(&tracks));
                let headers = flv::sequence_headers(&tracks);
                let header = flv::header(&tracks);
                let mut parts: Vec<&[u8]> = vec![&header];
                parts.extend(headers.iter().map(|h| &h[..]));
                write_parts(&mut io, &parts).await
            }
            Ok(Item::Frame(f)) => match muxer.as_mut() {
                Some(m) => {
                    let p = m.parts(&f);
                    write_parts(&mut io, &[p.head(), &f.data, &p.trailer]).await
                }
                None => continue,
            },
            Err(Stop::TooSlow) => {
                tracing::info!("dropping an HTTP-FLV viewer that cannot keep up");
                break;
            }
            Err(Stop::Closed) => break,
        };
        if written.is_err() {
            break;
        }
    }
    let _ = io.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_flv_heads_are_claimed() {
        let head =
            b"GET /live/cam.flv?token=abc HTTP/1.1\r\nHost: x\r\nAuthorization: Basic eDp5\r\n\r\n";
        let (length, name, request) = parse(head).unwrap();
        assert_eq!((length, name.as_str()), (head.len(), "cam"));
        assert_eq!(request.uri().query(), Some("token=abc"));
        assert_eq!(request.headers()["authorization"], "Basic eDp5");
        assert!(parse(&head[..head.len() - 1]).is_none(), "a partial head");
        for other in [
            &b"POST /live/cam.flv HTTP/1.1\r\n\r\n"[..],
            b"GET /live/cam HTTP/1.1\r\n\r\n",
            b"GET /live/cam/index.m3u8 HTTP/1.1\r\n\r\n",
            b"GET /live/a%2Fb.flv HTTP/1.1\r\n\r\n",
            b"GET /live/.flv HTTP/1.1\r\n\r\n",
            b"GET /live/cam.flv HTTP/1.1\r\nbad header\r\n\r\n",
        ] {
            assert!(parse(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
    }
}
