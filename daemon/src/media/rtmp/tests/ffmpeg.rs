//! Real peers over TCP: ffmpeg publishes, ffprobe plays. Skipped when /usr/bin/ffmpeg or
//! /usr/bin/ffprobe is missing. Debian bookworm's ffmpeg 5.1 speaks classic RTMP only; Enhanced
//! RTMP is covered by the hand-made peers.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{DEVICE, KEY, TOKEN, context};
use crate::base::admission::Ticket;
use crate::media::fmp4;
use crate::media::frame::{Codec, Kind};
use crate::media::hub::Item;
use crate::media::rtmp::{RtmpContext, serve};

fn have_ffmpeg() -> bool {
    let found = Path::new("/usr/bin/ffmpeg").exists() && Path::new("/usr/bin/ffprobe").exists();
    if !found {
        crate::base::skip::skip(
            module_path!(),
            "/usr/bin/ffmpeg or /usr/bin/ffprobe is missing; `make test` installs them",
        );
    }
    found
}

/// The video and audio frames ffprobe counted; checks the video is H.264 640x360.
fn read_back(out: &std::process::Output) -> (u32, u32) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffprobe failed: {stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = json["streams"].as_array().unwrap();
    let find = |name: &str| streams.iter().find(|s| s["codec_name"] == name).cloned();
    let frames = |s: &serde_json::Value| s["nb_read_frames"].as_str()?.parse::<u32>().ok();
    let h264 = find("h264").expect("an h264 stream");
    let size = (h264["width"].as_u64(), h264["height"].as_u64());
    assert_eq!(size, (Some(640), Some(360)));
    let aac = find("aac").expect("an aac stream");
    (frames(&h264).unwrap_or(0), frames(&aac).unwrap_or(0))
}

/// A real listener on 127.0.0.1 serving RTMP.
async fn listen(ctx: Arc<RtmpContext>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            tokio::spawn(serve(stream, peer, ctx.clone(), Ticket::unlimited()));
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_and_ffprobe_plays() {
    if !have_ffmpeg() {
        return;
    }
    let ctx = context();
    let addr = listen(ctx.clone()).await;
    let url = format!("rtmp://{addr}/live/{KEY}");
    #[rustfmt::skip]
    let mut ffmpeg = tokio::process::Command::new("/usr/bin/ffmpeg")
        .args([
            "-nostdin", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
            "-f", "lavfi", "-i", "sine",
            "-t", "3", "-c:v", "libx264", "-g", "25", "-c:a", "aac", "-f", "flv", &url,
        ])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let hub = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(h) = ctx.hubs.get(DEVICE) {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("ffmpeg never published");
    let mut reader = hub.subscribe();
    drop(hub);

    // Two viewers: the second sends the chunks the first made.
    let shared = ctx.shared(DEVICE);
    let play = format!("rtmp://{addr}/live/{DEVICE}?token={TOKEN}");
    let probe = |url: String| {
        #[rustfmt::skip]
        let out = tokio::process::Command::new("/usr/bin/ffprobe")
            .args([
                "-v", "error", "-count_frames", "-of", "json",
                "-show_entries", "stream=codec_name,width,height,nb_read_frames", &url,
            ])
            .kill_on_drop(true)
            .output();
        tokio::spawn(out)
    };
    let probes = [probe(play.clone()), probe(play)];

    let (mut tracks, mut video, mut audio, mut keyframes, mut last_pts) = (None, 0, 0, 0, -1);
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(15), reader.next()).await {
            Ok(Ok(Item::Tracks(t))) => tracks = Some(t),
            Ok(Ok(Item::Frame(f))) => {
                if f.kind == Kind::Video {
                    video += 1;
                    keyframes += usize::from(f.keyframe);
                    assert!(f.dts > last_pts, "video timestamps increase");
                    last_pts = f.dts;
                } else {
                    audio += 1;
                }
                frames.push(f);
            }
            Ok(Err(_)) => break,
            Err(_) => panic!("the hub stalled"),
        }
    }
    assert!(ffmpeg.wait().await.unwrap().success());
    let tracks = tracks.expect("tracks");
    let v = tracks.video.as_ref().unwrap();
    assert_eq!((v.codec, v.dimensions), (Codec::H264, (640, 360)));
    assert!(v.rfc6381.starts_with("avc1.64"), "{}", v.rfc6381);
    let a = tracks.audio.as_ref().unwrap();
    assert_eq!((a.codec, a.timescale, a.channels), (Codec::Aac, 44_100, 1));
    assert!((60..=75).contains(&video), "{video} video frames");
    assert!(keyframes >= 2, "{keyframes} keyframes (one a second)");
    assert!(audio > 100, "{audio} audio frames");
    eprintln!("hub: {video} video frames ({keyframes} key), {audio} audio frames");

    // The tracks' sample entries (avc1, mp4a) are what fMP4 viewers get: ffprobe decodes them.
    let mut mp4 = fmp4::init(&tracks).to_vec();
    let mut muxer = fmp4::Muxer::new(tracks.clone());
    for f in frames {
        for fragment in muxer.push(f) {
            mp4.extend_from_slice(&fragment);
        }
    }
    let path = std::env::temp_dir().join(format!(
        "sited-rtmp-{}-{}.mp4",
        std::process::id(),
        addr.port()
    ));
    std::fs::write(&path, &mp4).unwrap();
    let out = probe(path.display().to_string()).await.unwrap().unwrap();
    let _ = std::fs::remove_file(&path);
    let (v, a) = read_back(&out);
    assert!(
        v >= 70 && a >= 120,
        "ffprobe decoded {v} video and {a} audio frames from fMP4"
    );
    eprintln!("fMP4 from the published tracks: ffprobe decoded {v} video and {a} audio frames");

    for probe in probes {
        let (v, a) = read_back(&probe.await.unwrap().unwrap());
        assert!(
            v >= 40 && a >= 60,
            "ffprobe read {v} video and {a} audio frames"
        );
        eprintln!("ffprobe read {v} video and {a} audio frames over RTMP");
    }
    let (made, reused) = shared.counts();
    eprintln!("frames chunked: {made}; chunks reused: {reused}");
    assert!(
        reused * 2 >= made,
        "the second viewer reused the first one's chunks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_with_an_unknown_key_and_ffprobe_without_a_token_are_refused() {
    if !have_ffmpeg() {
        return;
    }
    let ctx = context();
    let addr = listen(ctx.clone()).await;
    let url = format!("rtmp://{addr}/live/not-a-key");
    #[rustfmt::skip]
    let publish = tokio::process::Command::new("/usr/bin/ffmpeg")
        .args([
            "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=5",
            "-t", "1", "-c:v", "libx264", "-f", "flv", &url,
        ])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), publish)
        .await
        .expect("ffmpeg kept going")
        .unwrap();
    assert!(!out.status.success());
    assert!(ctx.hubs.get(DEVICE).is_none());

    let play = format!("rtmp://{addr}/live/{DEVICE}?token=wrong");
    let probe = tokio::process::Command::new("/usr/bin/ffprobe")
        .args(["-v", "error", &play])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), probe)
        .await
        .expect("ffprobe kept going")
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not authorized"), "{stderr}");
}
