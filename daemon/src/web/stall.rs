//! Dropping peers that stop reading: a write that makes no progress for [`STALL`] fails.
//!
//! [`WriteDeadline`] wraps a connection's stream. A write that the socket takes at once costs
//! nothing more; one that has to wait arms a timer, and if the peer accepts no byte before it
//! fires the write fails with `TimedOut`, which ends the connection. It sits under hyper, so it
//! covers every response body (an HTTP-FLV stream served by the router, a large download) and
//! the upgraded WebSocket, whose kernel buffers would otherwise stay pinned by a viewer that
//! stopped reading. Idle connections are not its business: nothing is being written.

use std::future::Future as _;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A peer that accepts no bytes for this long while something waits to be written is dropped
/// (as RTMP viewers are).
pub const STALL: Duration = Duration::from_secs(10);

/// A stream whose writes fail after `limit` without progress.
pub struct WriteDeadline<I> {
    inner: I,
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<I> WriteDeadline<I> {
    /// Wraps `inner`.
    pub fn new(inner: I, limit: Duration) -> WriteDeadline<I> {
        WriteDeadline {
            inner,
            limit,
            timer: None,
        }
    }

    /// Passes a ready result through (progress: the timer is disarmed), or waits on the timer.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if r.is_ready() {
            self.timer = None;
            return r;
        }
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the peer accepted nothing for {} s", limit.as_secs()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WriteDeadline<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_is_dropped_and_a_slow_one_is_not() {
        let (a, mut b) = tokio::io::duplex(16);
        let mut w = WriteDeadline::new(a, STALL);
        // A slow reader: a byte every 5 s keeps the writer going.
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(5)).await;
                b.read_exact(&mut buf).await.unwrap();
            }
            b // then it stops reading, and keeps the stream open
        });
        let started = tokio::time::Instant::now();
        w.write_all(&[1; 64]).await.unwrap();
        let _b = reader.await.unwrap();
        let e = w.write_all(&[2; 64]).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        // 3 reads 5 s apart, then the stall limit.
        assert_eq!(started.elapsed().as_secs(), 15 + STALL.as_secs());
    }
}
