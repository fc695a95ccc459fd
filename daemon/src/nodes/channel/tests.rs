//! Channels end to end in one process: a real link and real channel connections over
//! in-memory streams.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::nodes::tests::linked as site;
use futures_util::future::BoxFuture;

/// Echoes every frame back, then finishes as the first frame says.
struct Echo;

impl Serve for Echo {
    fn serve(&self, want: Want, channel: Channel) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let (tx, mut rx) = channel.split();
            let Want::Relay { camera } = want else {
                return tx.finish(Err("only relays here".into())).await;
            };
            tx.send(camera.as_bytes()).await.unwrap();
            while let Ok(Some(data)) = rx.recv().await {
                if data == b"fail" {
                    return tx.finish(Err("asked to fail".into())).await;
                }
                if data == b"end" {
                    return tx.finish(Ok(())).await;
                }
                tx.send(&data).await.unwrap();
            }
        })
    }
}

fn relay(camera: &str) -> Want {
    Want::Relay {
        camera: camera.into(),
    }
}

#[tokio::test]
async fn a_channel_carries_frames_both_ways_and_ends_cleanly() {
    let (registry, _media) = site(Some(Arc::new(Echo))).await;
    let (tx, mut rx) = registry
        .open("media-1", relay("gate"))
        .await
        .unwrap()
        .split();
    assert_eq!(rx.recv().await.unwrap().unwrap(), b"gate");
    let big = vec![7u8; 1 << 20];
    for data in [&b"one"[..], &[], &big] {
        tx.send(data).await.unwrap();
        assert_eq!(rx.recv().await.unwrap().unwrap(), data);
    }
    tx.send(b"end").await.unwrap();
    assert_eq!(rx.recv().await.unwrap(), None);
    assert_eq!(rx.recv().await.unwrap(), None, "ended stays ended");
    assert!(registry.channels.is_empty());
}

#[tokio::test]
async fn a_reason_to_fail_reaches_the_other_side() {
    let (registry, _media) = site(Some(Arc::new(Echo))).await;
    let mut c = registry.open("media-1", relay("gate")).await.unwrap();
    c.receiver.recv().await.unwrap();
    c.sender.send(b"fail").await.unwrap();
    let e = c.receiver.recv().await.unwrap_err();
    assert!(e.to_string().contains("asked to fail"), "{e}");
    let http = Want::Http {
        method: "GET".into(),
        path: "/".into(),
        headers: vec![],
    };
    let mut c = registry.open("media-1", http).await.unwrap();
    let e = c.receiver.recv().await.unwrap_err();
    assert!(e.to_string().contains("only relays"), "{e}");
    // A node that serves no channel refuses every one.
    let (registry, _media) = site(None).await;
    let mut c = registry.open("media-1", relay("gate")).await.unwrap();
    let e = c.receiver.recv().await.unwrap_err();
    assert!(e.to_string().contains("serves no channel"), "{e}");
}

#[tokio::test]
async fn oversized_frames_are_refused_and_a_slow_reader_holds_the_sender_back() {
    let (registry, _media) = site(Some(Arc::new(Echo))).await;
    let c = registry.open("media-1", relay("gate")).await.unwrap();
    let e = c.sender.send(&vec![0; MAX_DATA + 1]).await.unwrap_err();
    assert_eq!(e.kind(), Kind::ResourceExhausted);
    // Nobody reads what the echo sends back, so it stops reading too: the sender must wait
    // rather than queue without bound.
    let frame = vec![1u8; 256 << 10];
    let mut sent = 0;
    let stuck = loop {
        match tokio::time::timeout(Duration::from_millis(300), c.sender.send(&frame)).await {
            Ok(r) => r.unwrap(),
            Err(_) => break true,
        }
        sent += 1;
        if sent > 64 {
            break false;
        }
    };
    assert!(stuck, "the sender waited after {sent} frames");
    assert!(sent <= 4 * QUEUE + 8, "{sent} frames queued");
}

#[tokio::test]
async fn an_offline_node_fails_at_once_and_strangers_cannot_attach() {
    let (registry, _media) = site(Some(Arc::new(Echo))).await;
    let e = registry.open("media-2", relay("gate")).await.err().unwrap();
    assert_eq!(e.kind(), Kind::Unavailable, "{e}");
    // An id nobody waits on, or one asked of another node, is refused.
    let expected = registry.channels.expect("media-1").unwrap();
    let (a, b) = tokio::io::duplex(64);
    let k = Secret::generate().unwrap();
    let sealed = |side| Sealed::new(&k, side, &[0; 32], &[1; 32]).unwrap();
    let stray = Channel::new(a, sealed(seal::Side::App));
    let e = registry
        .channels
        .attach("media-2", &expected.id, stray)
        .unwrap_err();
    assert_eq!(e.kind(), Kind::PermissionDenied);
    let stray = Channel::new(b, sealed(seal::Side::App));
    assert!(registry.channels.attach("media-1", "00", stray).is_err());
    assert_eq!(registry.channels.len(), 1);
    drop(expected);
    assert!(
        registry.channels.is_empty(),
        "a dropped wait forgets its id"
    );
}

#[tokio::test(start_paused = true)]
async fn a_channel_that_never_attaches_times_out() {
    let pending = Pending::default();
    let expected = pending.expect("media-1").unwrap();
    let e = expected.attached().await.err().unwrap();
    assert_eq!(e.kind(), Kind::DeadlineExceeded);
    assert!(pending.is_empty());
}
