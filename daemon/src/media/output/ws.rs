//! Live video to browsers: fragmented MP4 over a WebSocket, for Media Source Extensions.
//!
//! The first message is text, `{"codecs": "avc1.64001f,mp4a.40.2", "width": …, "height": …}`,
//! for `MediaSource.addSourceBuffer`; then a binary init segment; then one binary message per
//! fragment. When the camera's parameters change (or it reconnects), the text message and the
//! init segment are sent again.

use axum::extract::ws::{Message, WebSocket};

use crate::media::fmp4;
use crate::media::hub::{Item, Reader, Stop};

/// Streams a hub's reader to a WebSocket until either side ends.
pub async fn stream(mut socket: WebSocket, mut reader: Reader) {
    let mut muxer: Option<fmp4::Muxer> = None;
    loop {
        let item = tokio::select! {
            item = reader.next() => item,
            msg = socket.recv() => match msg {
                // Pings are answered by the library; anything else from the viewer is ignored.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
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
                match socket.send(Message::Text(hello.into())).await {
                    Ok(()) => socket.send(Message::Binary(init)).await,
                    Err(e) => Err(e),
                }
            }
            Ok(Item::Frame(frame)) => {
                let Some(m) = muxer.as_mut() else { continue };
                let mut result = Ok(());
                for fragment in m.push(frame) {
                    result = socket.send(Message::Binary(fragment)).await;
                    if result.is_err() {
                        break;
                    }
                }
                result
            }
            Err(Stop::TooSlow) => {
                tracing::info!("dropping a WebSocket viewer that cannot keep up");
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            Err(Stop::Closed) => return,
        };
        if sent.is_err() {
            return;
        }
    }
}
