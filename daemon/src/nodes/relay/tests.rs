//! Relays end to end in one process: an application node's hubs fed from a media node's hub
//! over a real link and channel, in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::media::frame::{Codec, Kind, Track, Tracks};
use crate::nodes::channel::Serve;
use crate::nodes::tests::linked;

/// The media node's channels: relays only.
struct MediaNode(Arc<Hubs>);

impl Serve for MediaNode {
    fn serve(&self, want: Want, channel: Channel) -> BoxFuture<'static, ()> {
        let hubs = self.0.clone();
        Box::pin(async move {
            if let Want::Relay { camera } = want {
                serve(&hubs, &camera, channel).await;
            }
        })
    }
}

fn tracks() -> Tracks {
    Tracks {
        video: Some(Arc::new(Track {
            codec: Codec::H264,
            timescale: 90_000,
            extra_data: Bytes::from_static(&[1, 0x64, 0, 0x1f]),
            sample_entry: Bytes::from_static(b"avc1"),
            rfc6381: "avc1.64001f".into(),
            dimensions: (640, 360),
            channels: 0,
        })),
        audio: None,
    }
}

async fn frame(r: &mut crate::media::hub::Reader) -> Arc<crate::media::frame::Frame> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), r.next()).await {
            Ok(Ok(Item::Frame(f))) => return f,
            Ok(Ok(Item::Tracks(_))) => {}
            other => panic!("{:?}", other.map(|r| r.err())),
        }
    }
}

async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..400 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn two_viewers_cost_the_media_node_one_stream_which_stops_when_they_leave() {
    let media_hubs = Arc::new(Hubs::default());
    let camera = media_hubs.get_or_create("gate");
    camera.set_tracks(tracks());
    camera.push(Kind::Video, 0, 0, true, Bytes::from_static(b"key"));
    camera.push(Kind::Video, 3600, 0, false, Bytes::from_static(b"delta"));
    let (registry, _media) = linked(Some(Arc::new(MediaNode(media_hubs.clone())))).await;
    let hubs = Arc::new(Hubs::default());
    let relays = Relays::new(hubs.clone(), registry);
    let stop = CancellationToken::new();
    let remote = BTreeMap::from([("gate".to_string(), "media-1".to_string())]);
    relays.set(&remote, &BTreeSet::new(), &stop);
    let hub = hubs.get("gate").expect("a remote camera has a hub here");
    assert!(!relays.states()["gate"].active, "no viewer, no relay");

    // An output that must describe the stream first (RTSP) gets the tracks at once.
    let described = hub.ready(Duration::from_secs(5)).await.expect("tracks");
    assert_eq!(*described, tracks());
    let mut one = hub.subscribe();
    let mut two = hub.subscribe();
    // The GOP cache first: each viewer starts at the keyframe.
    for r in [&mut one, &mut two] {
        let f = frame(r).await;
        assert!(f.keyframe && &f.data[..] == b"key");
        assert_eq!(&frame(r).await.data[..], b"delta");
    }
    camera.push(Kind::Video, 7200, 1800, false, Bytes::from_static(b"live"));
    for r in [&mut one, &mut two] {
        let f = frame(r).await;
        assert_eq!(
            (&f.data[..], f.dts, f.composition),
            (&b"live"[..], 7200, 1800)
        );
    }
    assert_eq!(camera.readers(), 1, "one stream from the media node");
    assert_eq!(relays.opened(), 1);
    let state = relays.states()["gate"].clone();
    assert!(state.active && state.readers == 2, "{state:?}");

    drop((one, two));
    tokio::time::pause();
    until("the relay to stop", || !relays.states()["gate"].active).await;
    tokio::time::resume();
    until("the media node's reader to go", || camera.readers() == 0).await;

    // A camera gone from the site loses its hub; one now ingested here keeps it.
    relays.set(&BTreeMap::new(), &BTreeSet::new(), &stop);
    assert!(hubs.get("gate").is_none());
    stop.cancel();
}

#[tokio::test]
async fn an_offline_node_or_an_unknown_camera_fails_and_is_retried_while_viewers_remain() {
    let (registry, _media) = linked(Some(Arc::new(MediaNode(Arc::default())))).await;
    let hubs = Arc::new(Hubs::default());
    let relays = Relays::new(hubs.clone(), registry);
    let stop = CancellationToken::new();
    let remote = BTreeMap::from([
        ("gate".to_string(), "media-2".to_string()),
        ("yard".to_string(), "media-1".to_string()),
    ]);
    relays.set(&remote, &BTreeSet::from(["lobby".to_string()]), &stop);
    let _gate = hubs.get("gate").unwrap().subscribe();
    let _yard = hubs.get("yard").unwrap().subscribe();
    until("both relays to fail twice", || {
        let s = relays.states();
        s["gate"].failures >= 2 && s["yard"].failures >= 2
    })
    .await;
    let s = relays.states();
    assert!(
        s["gate"]
            .error
            .as_deref()
            .unwrap()
            .contains("media-2 is offline"),
        "{s:?}"
    );
    assert!(
        s["yard"]
            .error
            .as_deref()
            .unwrap()
            .contains("no camera \"yard\""),
        "{s:?}"
    );
    stop.cancel();
}
