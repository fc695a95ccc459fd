//! The one accept loop of every TCP listener sited serves (HTTP, RTSP, RTMP).
//!
//! [`accept_each`] accepts on already-bound sockets and runs a handler per connection, with at
//! most [`MAX_CONNECTIONS`] at once per listener. Every connection task is spawned on
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

/// Connections one listener serves at once; more wait for a free slot.
pub const MAX_CONNECTIONS: usize = 1024;

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

/// What serves one accepted TCP connection, to its end.
pub type Handler = Arc<dyn Fn(TcpStream, SocketAddr) -> BoxFuture<'static, ()> + Send + Sync>;

/// Accepts connections on bound sockets until `stop`, running `handle` for each. Returns the
/// accept error that ended it, if any; transient errors (a peer gone, no descriptors left)
/// only pause accepting.
pub async fn accept_each(
    sockets: Vec<TcpListener>,
    stop: CancellationToken,
    handle: Handler,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut accepts = tokio::task::JoinSet::new();
    for socket in sockets {
        let (stop, handle, slots) = (stop.clone(), handle.clone(), slots.clone());
        accepts.spawn(async move {
            loop {
                let permit = tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    p = slots.clone().acquire_owned() => p.map_err(std::io::Error::other)?,
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
                let _ = stream.set_nodelay(true);
                let served = handle(stream, peer);
                connections().spawn(async move {
                    let _permit = permit;
                    served.await;
                });
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
