//! Writing a frame to one viewer: its parts (headers and the shared payload) in one `writev`,
//! never copied into a per-viewer buffer.
//!
//! The first attempt runs without a timer, since a viewer that keeps up has room in its socket
//! buffer; only a write that has to wait gets [`WRITE_TIMEOUT`], so a viewer that accepts
//! nothing is dropped without costing every other write a timer.

use std::future::Future as _;
use std::io::IoSlice;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt as _};

/// A viewer that accepts no bytes for this long is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most parts one write takes.
pub const MAX_PARTS: usize = 4;

async fn write_all<W: AsyncWrite + Unpin>(io: &mut W, parts: &[&[u8]]) -> std::io::Result<()> {
    let mut slices = [IoSlice::new(&[]); MAX_PARTS];
    for (s, p) in slices.iter_mut().zip(parts) {
        *s = IoSlice::new(p);
    }
    let mut bufs = &mut slices[..parts.len().min(MAX_PARTS)];
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match io.write_vectored(bufs).await? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => IoSlice::advance_slices(&mut bufs, n),
        }
    }
    Ok(())
}

/// Writes all of `parts` (at most [`MAX_PARTS`]), in order.
pub async fn write_parts<W: AsyncWrite + Unpin>(
    io: &mut W,
    parts: &[&[u8]],
) -> std::io::Result<()> {
    debug_assert!(parts.len() <= MAX_PARTS);
    let mut write = pin!(write_all(io, parts));
    let first = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(result) => result,
        Poll::Pending => tokio::time::timeout(WRITE_TIMEOUT, write)
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    #[tokio::test]
    async fn parts_arrive_whole_and_in_order_even_when_the_reader_is_slow() {
        let (mut a, mut b) = tokio::io::duplex(7);
        let big = vec![9u8; 100];
        let read = tokio::spawn(async move {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            got
        });
        write_parts(&mut a, &[b"head", &[], &big, b"tail"])
            .await
            .unwrap();
        drop(a);
        let got = read.await.unwrap();
        assert_eq!(got, [&b"head"[..], &big, b"tail"].concat());
    }

    #[tokio::test(start_paused = true)]
    async fn a_viewer_that_reads_nothing_times_out() {
        let (mut a, _b) = tokio::io::duplex(8);
        let e = write_parts(&mut a, &[&[0u8; 64]]).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    }
}
