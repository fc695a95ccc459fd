//! RTMP on the layout's RTMP ports (VALT 1935, and 444 as RTMPS when SSL is enabled; Ti Top
//! 1935): mobile devices publish, viewers play.
//!
//! | URL | what |
//! |---|---|
//! | `rtmp://HOST:PORT/live/<stream key>` | a device publishes; its stream becomes the live source named after the device |
//! | `rtmp://HOST:PORT/live/<camera or device>?token=T` | a viewer plays a live source |
//!
//! The listener (TCP, or TLS for RTMPS) hands each accepted connection to [`serve`]. A
//! connection is a handshake (rml_rtmp), then messages reassembled by our own chunk layer
//! ([`chunk`]: it handles the interleaved chunk streams Enhanced RTMP publishers send, which
//! rml_rtmp's deserializer cannot), then AMF0 commands ([`command`]).
//!
//! - Publishing: the stream name is the device's key; an unknown key gets
//!   `NetStream.Publish.BadName` and the connection closes. Audio and video messages ([`tag`]:
//!   classic AVC/AAC, Enhanced RTMP `avc1`/`hvc1`) become the hub's tracks and frames. A second
//!   publisher with the same key takes over, and the first is disconnected (a phone that
//!   reconnects must not wait for its dead connection to time out). When the publisher leaves,
//!   the device's hub is cleared and removed, so its viewers are disconnected.
//! - Playing: `authorize_play` checks the `token` query parameter (of the stream name, or of the
//!   connect URL). Each frame is chunked once per hub and the chunks are shared by all viewers
//!   (`play::Shared`), so one frame costs the same for one viewer or a hundred.
//!
//! A rude peer (garbage, an oversized message or chunk size, a stall mid-message, a nesting
//! bomb in AMF0) gets one log line and the connection closed: limits are in [`chunk`] (a
//! publisher's 8 MiB a message and 16 MiB unfinished; 8 KiB and 16 KiB for anyone who has not
//! published with a valid key) and [`command`], timeouts in `session` (a peer has 10 s after
//! its handshake to publish or play). The number of connections is the listener's to cap
//! (`base::admission`): a session counts against its address until it publishes or plays.
//! Composition time offsets (B-frames) are dropped: a hub frame has a single timestamp, and it
//! carries the decode time so that every output's timeline stays monotonic.

pub mod chunk;
pub mod command;
pub mod keys;
mod play;
mod publish;
mod session;
pub mod sps;
pub mod tag;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use super::hub::Hubs;

/// The RTMP application name: `rtmp://HOST:PORT/live/...`.
pub const APP: &str = "live";

/// What the RTMP service needs from the node.
pub struct RtmpContext {
    /// The node's hubs: publishers fill one named after their device; viewers read any.
    pub hubs: Arc<Hubs>,
    /// The devices allowed to publish: stream key → device name.
    pub devices: HashMap<String, String>,
    /// Whether a viewer's token (the `token` query parameter, or "" without one) may play.
    pub authorize_play: Box<dyn Fn(&str) -> bool + Send + Sync>,
    /// The publisher of each device: its id and how to disconnect it.
    publishers: Mutex<HashMap<String, (u64, CancellationToken)>>,
    /// The shared chunks of each hub with viewers.
    shared: Mutex<HashMap<String, Weak<play::Shared>>>,
    next_id: AtomicU64,
}

impl RtmpContext {
    /// A context for these hubs, device keys and viewer check.
    pub fn new(
        hubs: Arc<Hubs>,
        devices: HashMap<String, String>,
        authorize_play: Box<dyn Fn(&str) -> bool + Send + Sync>,
    ) -> RtmpContext {
        RtmpContext {
            hubs,
            devices,
            authorize_play,
            publishers: Mutex::new(HashMap::new()),
            shared: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Makes a new publisher the device's only one: the previous one is told to leave.
    fn register_publisher(&self, device: &str) -> (u64, CancellationToken) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        let mut publishers = self.publishers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, old)) = publishers.insert(device.to_string(), (id, token.clone())) {
            old.cancel();
        }
        (id, token)
    }

    /// Forgets a publisher; true if it was still the device's publisher.
    fn unregister_publisher(&self, device: &str, id: u64) -> bool {
        let mut publishers = self.publishers.lock().unwrap_or_else(|e| e.into_inner());
        if publishers
            .get(device)
            .is_some_and(|(current, _)| *current == id)
        {
            publishers.remove(device);
            return true;
        }
        false
    }

    /// The shared chunks of a hub's viewers, made by the first viewer.
    fn shared(&self, name: &str) -> Arc<play::Shared> {
        let mut all = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|_, w| w.strong_count() > 0);
        if let Some(s) = all.get(name).and_then(Weak::upgrade) {
            return s;
        }
        let s = Arc::new(play::Shared::default());
        all.insert(name.to_string(), Arc::downgrade(&s));
        s
    }
}

/// Serves one RTMP connection (after TCP accept, or after the TLS handshake for RTMPS) until it
/// ends; every way it can end is logged here.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send>(
    stream: S,
    peer: SocketAddr,
    ctx: Arc<RtmpContext>,
    ticket: Arc<crate::base::admission::Ticket>,
) {
    match session::run(stream, peer, ctx, ticket).await {
        Ok(reason) => tracing::info!(peer = %peer, reason = %reason, "RTMP connection ended"),
        Err(error) => {
            tracing::warn!(peer = %peer, error = %error, "closing an RTMP connection")
        }
    }
}
