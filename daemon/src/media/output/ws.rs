//! Live video to browsers: fragmented MP4 over a WebSocket, for Media Source Extensions.
//!
//! The first message is text, `{"codecs": "avc1.64001f,mp4a.40.2", "width": …, "height": …}`,
//! for `MediaSource.addSourceBuffer`; then a binary init segment; then one binary message per
//! fragment. When the camera's parameters change (or it reconnects), the text message and the
//! init segment are sent again.
//!
//! The server side of RFC 6455 is written here rather than with a WebSocket library: a viewer
//! only receives, so [`upgrade`] answers the handshake and [`stream`] writes each message as
//! one `writev` of the frame header, the fragment's `moof` and the frame's shared data
//! ([`super::writev`]). A library would copy every message into a write buffer of its own and
//! keep a read buffer, per viewer (128 KiB each by default). What the viewer sends is read
//! only to notice a Close frame or the connection's end.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};

use super::writev::write_parts;
use crate::media::fmp4;
use crate::media::hub::{Item, Reader, Stop};

/// RFC 6455 §1.3: appended to the key before hashing.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;

/// Whether a header holds `token` in its comma-separated list (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The `Sec-WebSocket-Accept` of a key.
fn accept(key: &[u8]) -> String {
    let mut input = key.to_vec();
    input.extend_from_slice(GUID.as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// Why a request is not a WebSocket upgrade we take, if it is not.
fn refusal(req: &Request) -> Option<(StatusCode, &'static str)> {
    let h = req.headers();
    if req.method() != Method::GET {
        return Some((StatusCode::METHOD_NOT_ALLOWED, "a live stream is a GET\n"));
    }
    if !has_token(h, header::CONNECTION, "upgrade") || !has_token(h, header::UPGRADE, "websocket") {
        return Some((
            StatusCode::BAD_REQUEST,
            "open the live stream as a WebSocket (or add .flv for HTTP-FLV)\n",
        ));
    }
    if h.get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v != "13")
    {
        return Some((
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Version must be 13\n",
        ));
    }
    if h.get(header::SEC_WEBSOCKET_KEY).is_none() {
        return Some((StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing\n"));
    }
    None
}

/// Answers a WebSocket upgrade and, once the connection is upgraded, streams `reader` on it.
pub fn upgrade(mut req: Request, reader: impl FnOnce() -> Reader) -> Response {
    if let Some(r) = refusal(&req) {
        return r.into_response();
    }
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return (
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded\n",
        )
            .into_response();
    };
    let key = req.headers()[header::SEC_WEBSOCKET_KEY].as_bytes();
    let accept = accept(key);
    let reader = reader();
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            stream(TokioIo::new(upgraded), reader).await;
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The header of an unmasked, final frame of `len` payload bytes.
fn frame_header(opcode: u8, len: usize) -> ([u8; 10], usize) {
    let mut h = [0u8; 10];
    h[0] = 0x80 | opcode;
    let n = match len {
        0..=125 => {
            h[1] = len as u8;
            2
        }
        126..=0xffff => {
            h[1] = 126;
            h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            h[1] = 127;
            h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    };
    (h, n)
}

/// Sends one message made of `parts` (at most three).
async fn send<W: AsyncWrite + Unpin>(
    io: &mut W,
    opcode: u8,
    parts: &[&[u8]],
) -> std::io::Result<()> {
    let len = parts.iter().map(|p| p.len()).sum();
    let (h, n) = frame_header(opcode, len);
    let mut all: [&[u8]; 4] = [&h[..n], &[], &[], &[]];
    all[1..=parts.len()].copy_from_slice(parts);
    write_parts(io, &all[..=parts.len()]).await
}

/// Streams a hub's reader to an upgraded connection until either side ends.
pub async fn stream<S: AsyncRead + AsyncWrite + Unpin>(mut io: S, mut reader: Reader) {
    let mut muxer: Option<fmp4::Muxer> = None;
    let mut incoming = [0u8; 64];
    loop {
        let item = tokio::select! {
            item = reader.next() => item,
            n = io.read(&mut incoming) => match n {
                // Pings are not expected from browsers; data frames are ignored. A Close (or
                // any frame starting with one) ends the stream with a Close in reply.
                Ok(n) if n > 0 && incoming[0] & 0x0f != CLOSE => continue,
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let _ = send(&mut io, CLOSE, &[]).await;
                    return;
                }
            },
        };
        let sent = match item {
            Ok(Item::Tracks(tracks)) => {
                let codecs: Vec<&str> = [tracks.video.as_ref(), tracks.audio.as_ref()]
                    .into_iter()
                    .flatten()
                    .map(|t| t.rfc6381.as_str())
                    .collect();
                let (w, h) = tracks.video.as_ref().map_or((0, 0), |v| v.dimensions);
                let hello =
                    serde_json::json!({"codecs": codecs.join(","), "width": w, "height": h})
                        .to_string();
                let init = fmp4::init(&tracks);
                muxer = Some(fmp4::Muxer::new(tracks));
                match send(&mut io, TEXT, &[hello.as_bytes()]).await {
                    Ok(()) => send(&mut io, BINARY, &[&init]).await,
                    Err(e) => Err(e),
                }
            }
            Ok(Item::Frame(frame)) => {
                let Some(m) = muxer.as_mut() else { continue };
                let mut result = Ok(());
                for f in m.push_parts(frame) {
                    result = send(&mut io, BINARY, &[&f.head, &f.data]).await;
                    if result.is_err() {
                        break;
                    }
                }
                result
            }
            Err(Stop::TooSlow) => {
                tracing::info!("dropping a WebSocket viewer that cannot keep up");
                let _ = send(&mut io, CLOSE, &[]).await;
                return;
            }
            Err(Stop::Closed) => return,
        };
        if sent.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        // The example of RFC 6455 §1.3.
        assert_eq!(
            accept(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn frame_headers_use_the_shortest_length() {
        assert_eq!(frame_header(BINARY, 5).0[..2], [0x82, 5]);
        let (h, n) = frame_header(BINARY, 300);
        assert_eq!(h[..n], [0x82, 126, 1, 44]);
        let (h, n) = frame_header(TEXT, 70_000);
        assert_eq!(h[..n], [0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn only_websocket_upgrades_are_taken() {
        let req = |headers: &[(&str, &str)]| {
            let mut r = Request::get("/live/cam").body(Body::empty()).unwrap();
            for (k, v) in headers {
                r.headers_mut().insert(
                    header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            r
        };
        let good = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        assert_eq!(refusal(&req(&good)), None);
        assert_eq!(
            refusal(&req(&good[1..])).unwrap().0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            refusal(&req(&good[..3])).unwrap().0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(refusal(&req(&[])).unwrap().0, StatusCode::BAD_REQUEST);
    }
}
