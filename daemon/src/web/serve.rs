//! Serving HTTP on a listener: the HTTP connection on top of the shared accept loop
//! ([`crate::base::listen`]).
//!
//! [`serve_with`] is the handler of the HTTP listeners: TLS when the listener has it, then HTTP/1.1 with
//! upgrades (WebSocket), unless one of the listener's [`Takeovers`] claims the connection first:
//! on a plain connection, by its first bytes, peeked (an RTMP handshake starts with 0x03; an
//! HTTP-FLV viewer's request head is served past hyper); on TLS, by the first decrypted byte
//! (RTMPS). That is how VALT's 1935 carries RTMP beside WebSocket, and its 444 RTMPS beside
//! WSS. A claimed connection leaves its HTTP slot, as viewers are bounded by file descriptors,
//! not by HTTP slots; it keeps its [`Ticket`], so it counts against its address until it logs
//! in ([`crate::base::admission`]). An HTTP connection that accepts no bytes for [`STALL`] while
//! a response waits is closed ([`super::stall`]).

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

use super::stall::{STALL, WriteDeadline};
use super::{HANDSHAKE_TIMEOUT, HEADER_TIMEOUT, Peer, tls};
use crate::base::admission::Ticket;
use crate::base::listen::{Conn, Handler, accept_each};

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
