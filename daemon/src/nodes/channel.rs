//! Channels: streams the application node opens to a media node, for what does not fit the
//! control link (relayed live video, proxied HTTP).
//!
//! ```text
//! app   → media  (control link)  open   { id, want }
//! media → app    (new connection, same upgrade and handshake as a link)  attach { id }
//! then, on that connection, either way: sealed binary frames  [tag] [data]
//! ```
//!
//! The media node dials the new connection itself, so channels work wherever the link does
//! (the application node never connects to a media node). The connection is authenticated and
//! sealed exactly as a link ([`super::link`]); the `id` is 128 random bits the application node
//! waits on for [`OPEN`], and only the node it asked may attach it.
//!
//! A [`Channel`] is a [`Sender`] and a [`Receiver`]:
//! - every frame carries at most [`MAX_DATA`] bytes, and a frame the peer announces longer is
//!   refused before it is read;
//! - at most [`QUEUE`] frames wait on either side: a sender waits for the TCP connection
//!   (backpressure), so a slow peer makes the other side wait, never buffer without bound;
//! - an idle sender pings every [`link::PING`]; a receiver that hears nothing for
//!   [`link::SILENCE`], or a writer blocked that long, ends the channel with an error;
//! - [`Sender::finish`] ends the stream cleanly or with a reason the receiver gets as an error.
//!
//! What a channel carries is its [`Want`]; the media node's [`Serve`] answers it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::link;
use super::seal::{self, Opener, Sealed, Sealer, Secret};
use super::wire::{self, Message};
use crate::base::listen::Conn;
use crate::base::{Error, Kind, hex, random};

/// How long the application node waits for a channel it asked for to attach.
pub const OPEN: Duration = Duration::from_secs(10);
/// The most bytes of data one frame carries.
pub const MAX_DATA: usize = wire::MAX_FRAME - seal::TAG - 1;
/// Frames queued on each side of a channel, beyond what TCP holds.
pub const QUEUE: usize = 4;
/// Channels a media node serves at once (further opens are refused); also the most the
/// application node waits on at once.
pub const MAX_OPEN: usize = 256;

/// What a channel carries, as the application node asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Want {
    /// A camera's live stream, from its hub on the media node ([`super::relay`]).
    Relay {
        /// The camera.
        camera: String,
    },
    /// An HTTP request to the media node's own API, answered over the channel.
    Http {
        /// The method (`GET`).
        method: String,
        /// The path and query (`/api/v1/cameras/gate/recordings?start=…`).
        path: String,
        /// The request's headers, in order.
        headers: Vec<(String, String)>,
    },
}

/// How the media node reaches the application node for a new channel: a fresh connection,
/// already upgraded (the seam the unit tests fill with in-memory streams).
pub trait Connect: Send + Sync {
    /// One new connection to the application node's link endpoint.
    fn connect(&self) -> BoxFuture<'static, Result<Box<dyn Conn>, Error>>;
}

/// What the media node does with a channel the application node opened.
pub trait Serve: Send + Sync {
    /// Serves `want` over `channel` until done; ends the channel with
    /// [`Sender::finish`].
    fn serve(&self, want: Want, channel: Channel) -> BoxFuture<'static, ()>;
}

const DATA: u8 = 0;
const PING: u8 = 1;
const END: u8 = 2;
const FAIL: u8 = 3;

/// Both directions of an open channel.
pub struct Channel {
    /// Frames out.
    pub sender: Sender,
    /// Frames in.
    pub receiver: Receiver,
}

/// The sending side of a channel.
pub struct Sender {
    out: mpsc::Sender<Vec<u8>>,
    writer: JoinHandle<()>,
}

/// The receiving side of a channel.
pub struct Receiver {
    frames: mpsc::Receiver<Result<Vec<u8>, Error>>,
    opener: Opener,
    reader: JoinHandle<()>,
    ended: bool,
}

impl Channel {
    /// A channel over a connection whose handshake (and `attach`) is done.
    pub fn new<S: Conn + 'static>(io: S, sealed: Sealed) -> Channel {
        let (sealer, opener) = sealed.split();
        let (mut read, write) = tokio::io::split(io);
        let (frames_tx, frames) = mpsc::channel(QUEUE);
        let reader = tokio::spawn(async move { link::read_frames(&mut read, frames_tx).await });
        let (out, rx) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(write_frames(write, sealer, rx));
        Channel {
            sender: Sender { out, writer },
            receiver: Receiver {
                frames,
                opener,
                reader,
                ended: false,
            },
        }
    }

    /// The two sides apart.
    pub fn split(self) -> (Sender, Receiver) {
        (self.sender, self.receiver)
    }
}

/// Seals and writes each frame queued; pings when nothing was queued for [`link::PING`]. A
/// write blocked for [`link::SILENCE`] (the peer reads nothing) ends the channel.
async fn write_frames<W: tokio::io::AsyncWrite + Unpin>(
    mut io: W,
    mut sealer: Sealer,
    mut queued: mpsc::Receiver<Vec<u8>>,
) {
    loop {
        let plain = match tokio::time::timeout(link::PING, queued.recv()).await {
            Ok(Some(plain)) => plain,
            Ok(None) => break,
            Err(_) => vec![PING],
        };
        let last = matches!(plain.first(), Some(&END | &FAIL));
        let written = match sealer.seal(plain) {
            Ok(frame) => tokio::time::timeout(link::SILENCE, wire::write_frame(&mut io, &frame))
                .await
                .map_err(|_| crate::err!(DeadlineExceeded, "the channel's peer stopped reading"))
                .and_then(|r| r),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::debug!(error = %e, "a channel's writer stopped");
            return;
        }
        if last {
            break;
        }
    }
    let _ = tokio::time::timeout(link::SILENCE, tokio::io::AsyncWriteExt::shutdown(&mut io)).await;
}

impl Sender {
    /// Sends one frame of at most [`MAX_DATA`] bytes; waits while the peer is slow (at most
    /// [`link::SILENCE`] per frame before the channel fails).
    pub async fn send(&self, data: &[u8]) -> Result<(), Error> {
        if data.len() > MAX_DATA {
            crate::bail!(
                ResourceExhausted,
                "a channel frame of {} bytes is over {MAX_DATA}",
                data.len()
            );
        }
        let mut plain = Vec::with_capacity(1 + data.len() + seal::TAG);
        plain.push(DATA);
        plain.extend_from_slice(data);
        self.queue(plain).await
    }

    async fn queue(&self, plain: Vec<u8>) -> Result<(), Error> {
        self.out
            .send(plain)
            .await
            .map_err(|_| Error::new(Kind::Unavailable, "the channel is closed"))
    }

    /// Ends the stream: cleanly, or with `Err(reason)` that the receiver gets as its error.
    /// Waits (at most [`link::SILENCE`]) until everything queued is written.
    pub async fn finish(self, outcome: Result<(), String>) {
        let plain = match outcome {
            Ok(()) => vec![END],
            Err(reason) => {
                let mut p = vec![FAIL];
                p.extend_from_slice(&reason.as_bytes()[..reason.len().min(1024)]);
                p
            }
        };
        let _ = self.queue(plain).await;
        drop(self.out);
        let _ = tokio::time::timeout(link::SILENCE, self.writer).await;
    }
}

impl Receiver {
    /// The next frame's data; `Ok(None)` once the peer finished cleanly, an error if it
    /// finished with one, the connection broke, or it went silent. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, Error> {
        loop {
            if self.ended {
                return Ok(None);
            }
            let frame = self
                .frames
                .recv()
                .await
                .ok_or_else(|| Error::new(Kind::Unavailable, "the channel is closed"))??;
            let mut plain = self.opener.open(frame)?;
            match plain.first().copied() {
                Some(DATA) => {
                    plain.remove(0);
                    return Ok(Some(plain));
                }
                Some(PING) => {}
                Some(END) => self.ended = true,
                Some(FAIL) => {
                    self.ended = true;
                    crate::bail!(
                        Unavailable,
                        "the peer ended the channel: {}",
                        String::from_utf8_lossy(&plain[1..])
                    );
                }
                _ => crate::bail!(Invalid, "a malformed channel frame"),
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // The read half goes with the reader, so the connection closes once the writer ends.
        self.reader.abort();
    }
}

/// The channels the application node waits on, by id.
#[derive(Default)]
pub struct Pending {
    waiting: Mutex<HashMap<String, (String, oneshot::Sender<Channel>)>>,
}

/// A channel asked for and not yet attached; forgets its id when dropped.
pub struct Expected<'a> {
    pending: &'a Pending,
    /// The id to send in [`Message::Open`].
    pub id: String,
    attached: oneshot::Receiver<Channel>,
}

impl Pending {
    /// Waits for a channel from `node`: a new id, and what resolves once it attaches.
    pub fn expect(&self, node: &str) -> Result<Expected<'_>, Error> {
        let id = hex::encode(&random::bytes::<16>()?);
        let (tx, attached) = oneshot::channel();
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if waiting.len() >= MAX_OPEN {
            crate::bail!(
                ResourceExhausted,
                "{MAX_OPEN} node channels are already being opened"
            );
        }
        waiting.insert(id.clone(), (node.to_string(), tx));
        Ok(Expected {
            pending: self,
            id,
            attached,
        })
    }

    /// A connection from `node` says it is channel `id`: hands it to whoever waits.
    pub fn attach(&self, node: &str, id: &str, channel: Channel) -> Result<(), Error> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        match waiting.get(id) {
            Some((expected, _)) if expected == node => {}
            _ => crate::bail!(
                PermissionDenied,
                "{node} attached a channel nobody asked it for"
            ),
        }
        let Some((_, tx)) = waiting.remove(id) else {
            crate::bail!(Internal, "a pending channel vanished");
        };
        tx.send(channel)
            .map_err(|_| crate::err!(Unavailable, "nobody waits on that channel any more"))
    }

    /// How many channels are being waited on.
    pub fn len(&self) -> usize {
        self.waiting.lock().map_or(0, |w| w.len())
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Expected<'_> {
    /// The channel, once attached (at most [`OPEN`]).
    pub async fn attached(mut self) -> Result<Channel, Error> {
        tokio::time::timeout(OPEN, &mut self.attached)
            .await
            .map_err(|_| {
                crate::err!(
                    DeadlineExceeded,
                    "the media node did not open the channel within {} s",
                    OPEN.as_secs()
                )
            })?
            .map_err(|_| crate::err!(Unavailable, "the channel was dropped"))
    }
}

impl Drop for Expected<'_> {
    fn drop(&mut self) {
        if let Ok(mut w) = self.pending.waiting.lock() {
            w.remove(&self.id);
        }
    }
}

/// The media node's side of [`Message::Open`]: dials a new connection, proves itself as
/// `node`, attaches it as channel `id`, and serves `want` over it (or refuses it, when this
/// node serves no channel).
pub async fn answer(
    connect: Arc<dyn Connect>,
    secret: Secret,
    node: String,
    id: String,
    want: Want,
    serve: Option<Arc<dyn Serve>>,
) {
    let dialled = async {
        let mut io = tokio::time::timeout(OPEN, connect.connect())
            .await
            .map_err(|_| crate::err!(DeadlineExceeded, "connecting for a channel timed out"))??;
        let mut sealed = link::handshake_media(&mut io, &secret, &node).await?;
        link::send(&mut io, &mut sealed, &Message::Attach { id }).await?;
        Ok::<_, Error>(Channel::new(io, sealed))
    };
    let channel = match dialled.await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(node = %node, error = %e, "could not open a channel to the application node");
            return;
        }
    };
    match serve {
        Some(s) => s.serve(want, channel).await,
        None => {
            channel
                .sender
                .finish(Err("this node serves no channel".into()))
                .await
        }
    }
}

#[cfg(test)]
mod tests;
