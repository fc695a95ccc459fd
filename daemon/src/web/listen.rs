//! Accepting connections: one accept loop for every listener sited serves, and the HTTP
//! connection on top of it.
//!
//! [`accept_each`] accepts on already-bound sockets and runs a handler per connection, each
//! admitted by the listener's [`Gate`] (slots, connections before a login per address and per
//! listener, the daemon's reserve of file descriptors: [`super::admission`]); the RTSP and RTMP
//! servers use it directly. [`serve_with`] is the handler of the HTTP listeners: TLS when the
//! listener has it, then HTTP/1.1 with upgrades (WebSocket), unless one of the listener's
//! [`Takeovers`] claims the connection first: on a plain connection, by its first bytes, peeked
//! (an RTMP handshake starts with 0x03; an HTTP-FLV viewer's request head is served past
//! hyper); on TLS, by the first decrypted byte (RTMPS). That is how VALT's 1935 carries RTMP
//! beside WebSocket, and its 444 RTMPS beside WSS. A claimed connection leaves its HTTP slot,
//! as viewers are bounded by file descriptors, not by HTTP slots; it keeps its [`Ticket`], so
//! it counts against its address until it logs in. An HTTP connection that accepts no bytes
//! for [`STALL`] while a response waits is closed ([`super::stall`]).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use futures_util::future::BoxFuture;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::admission::{Descriptors, Gate, LIMITS, Ticket};
use super::stall::{STALL, WriteDeadline};
use super::{HANDSHAKE_TIMEOUT, HEADER_TIMEOUT, Peer, tls};

/// A byte stream a protocol server can run on: plain TCP or TLS.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

/// What serves one accepted TCP connection, to its end. The ticket is the connection's
/// admission: the handler tells it when the peer logs in, and it ends with the connection.
pub type Handler =
    Arc<dyn Fn(TcpStream, SocketAddr, Arc<Ticket>) -> BoxFuture<'static, ()> + Send + Sync>;

/// Serves a connection past TLS whose first decrypted byte is 0x03 (RTMPS).
pub type Takeover =
    Arc<dyn Fn(Box<dyn Conn>, SocketAddr, Arc<Ticket>) -> BoxFuture<'static, ()> + Send + Sync>;

/// Looks at the first bytes a plain connection sent (peeked, so still unread) and claims the
/// connection (RTMP, an HTTP-FLV viewer), returning what serves it, or gives it back for HTTP.
pub type Sniff = Arc<
    dyn Fn(&[u8], TcpStream, SocketAddr, &Arc<Ticket>) -> Result<BoxFuture<'static, ()>, TcpStream>
        + Send
        + Sync,
>;

/// The most bytes a [`Sniff`] sees: enough for a player's request head.
pub const SNIFF_BYTES: usize = 1024;

/// What a listener serves before HTTP, if anything.
#[derive(Clone, Default)]
pub struct Takeovers {
    /// For plain connections.
    pub plain: Option<Sniff>,
    /// For TLS connections that start an RTMP handshake.
    pub rtmps: Option<Takeover>,
}

/// The first byte of an RTMP handshake (C0: version 3).
pub const RTMP_VERSION: u8 = 0x03;

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
                tokio::spawn(handle(stream, peer, ticket));
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

/// Serves `router` on bound sockets until `stop` (stop accepting) or `shutdown` (close
/// connections too), after offering each connection to `takeovers`. Returns the accept error
/// that ended it, if any.
pub async fn serve_with(
    sockets: Vec<TcpListener>,
    tls: Option<TlsAcceptor>,
    router: Router,
    stop: CancellationToken,
    shutdown: CancellationToken,
    takeovers: Takeovers,
) -> std::io::Result<()> {
    let handle: Handler = Arc::new(move |stream, peer, ticket| {
        let (tls, router, shutdown, takeovers) = (
            tls.clone(),
            router.clone(),
            shutdown.clone(),
            takeovers.clone(),
        );
        Box::pin(async move {
            let Some(acceptor) = tls else {
                let stream = match &takeovers.plain {
                    Some(sniff) => match sniffed(sniff, stream, peer, &ticket).await {
                        Ok(claimed) => {
                            ticket.leave_slot();
                            return claimed.await;
                        }
                        Err(stream) => stream,
                    },
                    None => stream,
                };
                return connection(stream, peer, false, router, shutdown, ticket).await;
            };
            let accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            let Ok(Ok(stream)) = accepted else {
                tracing::debug!(peer = %peer, "TLS handshake failed or timed out");
                return;
            };
            match takeovers.rtmps {
                Some(rtmp) => sniff_tls(stream, peer, router, shutdown, rtmp, ticket).await,
                None => connection(stream, peer, true, router, shutdown, ticket).await,
            }
        })
    });
    accept_each(sockets, stop, handle).await
}

/// Offers a plain connection to `sniff` with the first bytes it sent, peeked.
async fn sniffed(
    sniff: &Sniff,
    stream: TcpStream,
    peer: SocketAddr,
    ticket: &Arc<Ticket>,
) -> Result<BoxFuture<'static, ()>, TcpStream> {
    let mut first = [0u8; SNIFF_BYTES];
    let n = match tokio::time::timeout(HEADER_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(n)) => n,
        _ => 0,
    };
    sniff(&first[..n], stream, peer, ticket)
}

/// Reads the first decrypted byte (TLS has no peek) and puts it back in front of the stream.
async fn sniff_tls<S>(
    mut stream: S,
    peer: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
    rtmp: Takeover,
    ticket: Arc<Ticket>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut first = [0u8; 1];
    match tokio::time::timeout(HEADER_TIMEOUT, stream.read(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return,
    }
    let stream = Rewound {
        first: Some(first[0]),
        inner: stream,
    };
    if first[0] == RTMP_VERSION {
        ticket.leave_slot();
        rtmp(Box::new(stream), peer, ticket).await
    } else {
        connection(stream, peer, true, router, shutdown, ticket).await
    }
}

/// A stream with one byte already read from it, given back before the rest.
struct Rewound<S> {
    first: Option<u8>,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewound<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if buf.remaining() > 0
            && let Some(byte) = self.first.take()
        {
            buf.put_slice(&[byte]);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewound<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
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

/// Serves HTTP/1.1 (with upgrades) on one connection until it ends or `shutdown`. The
/// connection's ticket rides on every request, for the login to mark it.
async fn connection<I>(
    io: I,
    addr: SocketAddr,
    secure: bool,
    router: Router,
    shutdown: CancellationToken,
    ticket: Arc<Ticket>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use tower::ServiceExt as _;
    let io = TokioIo::new(WriteDeadline::new(io, STALL));
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(Peer(addr));
            req.extensions_mut().insert(ticket.clone());
            if secure {
                req.extensions_mut().insert(tls::Secure);
            }
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => if let Err(e) = r { tracing::debug!(peer = %addr, error = %e, "connection ended") },
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}
