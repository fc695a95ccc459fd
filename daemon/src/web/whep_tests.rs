//! WHEP in process: a str0m client negotiates over the real router and receives a camera's
//! frames on the real WebRTC socket, on loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, RtcConfig};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::tests::{basic, request, server};
use crate::media::frame::{Codec, Kind, Track, Tracks};
use crate::media::hub::Hub;
use crate::media::sample_entry::tests::avcc_640x360;

/// Serves WebRTC on `127.0.0.1:0` for the app.
async fn webrtc(app: &super::App, stop: &CancellationToken) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    app.webrtc.set_settings(crate::media::webrtc::Settings {
        candidates: vec![socket.local_addr().unwrap()],
        turn: None,
    });
    tokio::spawn(app.webrtc.clone().serve(socket, stop.clone()));
    while !app.webrtc.available() {
        tokio::task::yield_now().await;
    }
}

/// A camera at 25 fps, a keyframe a second; `composition` on every frame (B-frames when not 0).
fn camera(hub: Arc<Hub>, composition: i32, stop: CancellationToken) {
    hub.set_tracks(Tracks {
        video: Some(Arc::new(Track {
            codec: Codec::H264,
            timescale: 90_000,
            extra_data: avcc_640x360(),
            sample_entry: Bytes::new(),
            rfc6381: "avc1.64001E".into(),
            dimensions: (640, 360),
            channels: 0,
        })),
        audio: None,
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(40));
        for n in 0i64.. {
            tokio::select! { _ = stop.cancelled() => return, _ = tick.tick() => {} }
            let key = n % 25 == 0;
            // One NAL unit of 3000 bytes: larger than an MTU, so it goes as FU-A.
            let mut au = vec![0, 0, 0x0b, 0xb8, if key { 0x65 } else { 0x41 }];
            au.resize(4 + 3000, 0x5a);
            hub.push(Kind::Video, n * 3600, composition, key, Bytes::from(au));
        }
    });
}

/// Opens a WHEP session as `vic` and counts the frames received within `within`; returns the
/// time to the first frame and the count, or the refusal's status and body.
async fn watch(
    http: SocketAddr,
    camera: &str,
    within: Duration,
) -> Result<(Duration, usize), (u16, String)> {
    let started = Instant::now();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let mut rtc = RtcConfig::new()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    let head = format!(
        "POST /live/{camera}/whep HTTP/1.1\r\n{}\r\nContent-Type: application/sdp",
        basic("vic", "vic-pw")
    );
    let (code, headers, body) = request(http, &head, &offer.to_sdp_string()).await;
    if code != 201 {
        return Err((code, body));
    }
    assert!(
        headers.contains(&format!("location: /live/{camera}/whep/")),
        "{headers}"
    );
    let answer = SdpAnswer::from_sdp_string(&body).unwrap();
    rtc.sdp_api().accept_answer(pending, answer).unwrap();
    let mut first = None;
    let mut frames = 0;
    let mut buf = vec![0u8; 2048];
    while started.elapsed() < within {
        let timeout = match rtc.poll_output().unwrap() {
            Output::Timeout(t) => t,
            Output::Transmit(t) => {
                socket.send_to(&t.contents, t.destination).await.unwrap();
                continue;
            }
            Output::Event(Event::MediaData(_)) => {
                frames += 1;
                first.get_or_insert(started.elapsed());
                continue;
            }
            Output::Event(_) => continue,
        };
        let wait = timeout.saturating_duration_since(Instant::now());
        match tokio::time::timeout(wait, socket.recv_from(&mut buf)).await {
            Ok(Ok((n, source))) => {
                let r = Receive::new(Protocol::Udp, source, local, &buf[..n]).unwrap();
                rtc.handle_input(Input::Receive(Instant::now(), r)).unwrap();
            }
            _ => rtc.handle_input(Input::Timeout(Instant::now())).unwrap(),
        }
    }
    Ok((first.unwrap_or(within), frames))
}

#[tokio::test]
async fn a_whep_viewer_receives_the_cameras_frames_from_a_keyframe() {
    let s = server().await;
    webrtc(&s.app, &s.stop).await;
    let hub = s.app.hubs.get_or_create("quay");
    camera(hub, 0, s.stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (first, frames) = watch(s.addr, "quay", Duration::from_secs(3)).await.unwrap();
    assert!(frames >= 25, "{frames} frames in 3 s");
    assert!(
        first < Duration::from_secs(1),
        "first frame after {first:?}"
    );
    assert_eq!(s.app.webrtc.sessions(), 1);
    s.stop.cancel();
}

#[tokio::test]
async fn b_frames_are_refused_with_the_reason() {
    let s = server().await;
    webrtc(&s.app, &s.stop).await;
    camera(s.app.hubs.get_or_create("quay"), 3600, s.stop.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (code, body) = watch(s.addr, "quay", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(code, 422);
    assert!(body.contains("B-frames"), "{body}");
    s.stop.cancel();
}

#[tokio::test]
async fn whep_needs_a_login_and_a_webrtc_port() {
    let s = server().await;
    camera(s.app.hubs.get_or_create("quay"), 0, s.stop.clone());
    let (code, _, _) = request(
        s.addr,
        "POST /live/quay/whep HTTP/1.1\r\nContent-Type: application/sdp",
        "v=0",
    )
    .await;
    assert_eq!(code, 401);
    let head = format!(
        "POST /live/quay/whep HTTP/1.1\r\n{}\r\nContent-Type: application/sdp",
        basic("vic", "vic-pw")
    );
    let (code, _, body) = request(s.addr, &head, "v=0").await;
    assert_eq!(code, 503, "no WebRTC socket: {body}");
    s.stop.cancel();
}
