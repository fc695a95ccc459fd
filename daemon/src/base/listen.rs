//! The one accept loop of every TCP listener sited serves (HTTP, RTSP, RTMP).
//!
//! [`accept_each`] accepts on already-bound sockets and runs a handler per connection, each
//! admitted by the listener's [`Gate`] ([`super::admission`]: HTTP slots, connections before a
//! login per address and per listener, the daemon's reserve of file descriptors); the others
//! are closed at once. Every connection task is spawned on
//! [`connections`], so that shutdown can wait for the connections the daemon owns instead of
//! guessing with a sleep.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::admission::{Descriptors, Gate, LIMITS, Ticket};

/// Every connection task of the process: shutdown closes it and waits for it to drain.
pub fn connections() -> &'static TaskTracker {
    static TRACKER: std::sync::OnceLock<TaskTracker> = std::sync::OnceLock::new();
    TRACKER.get_or_init(TaskTracker::new)
}

/// Waits up to `grace` for every connection task to end, after the shutdown token was
/// cancelled; returns how many were still running when the wait gave up.
pub async fn drain(grace: Duration) -> usize {
    let tracker = connections();
    tracker.close();
    match tokio::time::timeout(grace, tracker.wait()).await {
        Ok(()) => 0,
        Err(_) => tracker.len(),
    }
}

/// A byte stream a protocol server can run on: plain TCP or TLS.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

/// What serves one accepted TCP connection, to its end. The ticket is the connection's
/// admission: the handler tells it when the peer logs in, and it ends with the connection.
pub type Handler =
    Arc<dyn Fn(TcpStream, SocketAddr, Arc<Ticket>) -> BoxFuture<'static, ()> + Send + Sync>;

/// Accepts connections on bound sockets until `stop`, running `handle` for each one the
/// listener's [`Gate`] admits; the others are closed at once. Returns the accept error that
/// ended it, if any; transient errors (a peer gone, no descriptors left) only pause accepting.
pub async fn accept_each(
    sockets: Vec<TcpListener>,
    stop: CancellationToken,
    handle: Handler,
) -> std::io::Result<()> {
    let gate = Gate::new(LIMITS, Descriptors::global());
    let mut accepts = tokio::task::JoinSet::new();
    for socket in sockets {
        let (stop, handle, gate) = (stop.clone(), handle.clone(), gate.clone());
        accepts.spawn(async move {
            loop {
                let slot = tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    p = gate.slot() => p,
                };
                let (stream, peer) = tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    a = socket.accept() => match a {
                        Ok(a) => a,
                        Err(e) if is_transient(&e) => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                        Err(e) => return Err(e),
                    },
                };
                let ticket = match gate.admit(peer.ip(), slot) {
                    Ok(t) => t,
                    Err(refusal) => {
                        tracing::debug!(peer = %peer, %refusal, "connection refused");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                connections().spawn(handle(stream, peer, ticket));
            }
        });
    }
    let result = match accepts.join_next().await {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(std::io::Error::other(e)),
        None => Ok(()),
    };
    accepts.abort_all();
    result
}

fn is_transient(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    use std::io::ErrorKind as K;
    let recoverable = [Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM];
    matches!(
        e.kind(),
        K::ConnectionAborted | K::ConnectionReset | K::Interrupted | K::WouldBlock
    ) || e
        .raw_os_error()
        .is_some_and(|n| recoverable.iter().any(|r| *r as i32 == n))
}
