//! HLS VOD in process: a recording written by the recorder's own segmenter and writer, then its
//! playlist, init and media segments fetched from the real router.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::tests::{basic, request, server};
use crate::media::recorder::Clock as _;
use crate::media::recorder::segmenter::tests::{frame, tracks};
use crate::media::recorder::segmenter::{Limits, Segmenter};
use crate::media::recorder::writer::Writer;
use crate::media::recorder::{scan, vod};

/// A GET logged in as `ann`; the status and the body's bytes.
async fn fetch(addr: std::net::SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\n{}\r\nConnection: close\r\n\r\n",
        basic("ann", "ann-pw")
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let code = String::from_utf8_lossy(&out[9..12]).parse().unwrap_or(0);
    (code, out[end..].to_vec())
}

#[tokio::test]
async fn a_recorded_range_is_a_vod_playlist_whose_parts_are_rebased_fragments() {
    let s = server().await;
    let t0 = crate::media::recorder::SystemClock.now_ms() - 60_000;
    // 10 s at 25 fps, a keyframe a second, cut every 4 s: three files of camera "quay".
    {
        let store = s.app.store.lock().unwrap();
        let mut seg = Segmenter::new(
            "quay",
            Limits {
                target: 4 * 90_000,
                part: 90_000,
            },
        );
        let mut w = Writer::new(store.conn(), &s.app.recordings, "quay");
        let mut actions = seg.push(
            &crate::media::hub::Item::Tracks(tracks(b"\0\0\0\x08avc1")),
            t0,
        );
        for i in 0..250u64 {
            actions.extend(seg.push(
                &frame(i + 1, i as i64 * 3600, i % 25 == 0),
                t0 + i as i64 * 40,
            ));
        }
        actions.extend(seg.finish());
        for a in actions {
            w.apply(a).unwrap();
        }
    }
    let range = format!(
        "start={}&end={}",
        crate::base::time::rfc3339_ms(t0 + 1500),
        crate::base::time::rfc3339_ms(t0 + 8500)
    );
    let playlist = format!("/vod/quay/index.m3u8?{range}&token=t0k");
    let (code, _, _) = request(s.addr, &format!("GET {playlist} HTTP/1.1"), "").await;
    assert_eq!(code, 401, "a made-up token is no login");
    let (code, _) = fetch(s.addr, "/vod/quay/index.m3u8").await;
    assert_eq!(code, 400, "a playlist needs a start");
    let (code, _) = fetch(s.addr, &format!("/vod/pier/index.m3u8?{range}")).await;
    assert_eq!(code, 404, "not a camera of the node");

    let (code, text) = fetch(s.addr, &format!("/vod/quay/index.m3u8?{range}")).await;
    let text = String::from_utf8(text).unwrap();
    assert_eq!(code, 200, "{text}");
    // From the keyframe at 1 s to the one at 9 s: 3 s, 4 s and 1 s of the three files.
    let durations: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .collect();
    assert_eq!(durations, ["3.000,", "4.000,", "1.000,"], "{text}");
    assert!(!text.contains("DISCONTINUITY"), "the files touch: {text}");
    let map = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .unwrap()
        .trim_end_matches('"');
    let (code, init) = fetch(s.addr, &format!("/vod/quay/{map}")).await;
    assert_eq!((code, &init[4..8]), (200, &b"ftyp"[..]));

    let mut expected_start = 0u64;
    for uri in text.lines().filter(|l| l.starts_with("seg-")) {
        let (code, body) = fetch(s.addr, &format!("/vod/quay/{uri}")).await;
        assert_eq!(code, 200, "{uri}");
        // Whole moof + mdat pairs, the first a keyframe at the part's place on the timeline.
        let head = scan::header(&body).unwrap();
        assert_eq!(&head.kind, b"moof", "{uri}");
        let first = scan::moof(&body[..head.size as usize]).unwrap();
        assert!(first.keyframe, "{uri}");
        assert_eq!(first.tfdt, expected_start, "{uri}");
        let mut pos = 0usize;
        let mut end = 0;
        while pos < body.len() {
            let h = scan::header(&body[pos..]).unwrap();
            if &h.kind == b"moof" {
                let m = scan::moof(&body[pos..pos + h.size as usize]).unwrap();
                end = m.tfdt + m.duration;
            }
            pos += h.size as usize;
        }
        assert_eq!(pos, body.len(), "{uri} is whole boxes");
        expected_start = end;
    }
    assert_eq!(expected_start, 8 * 90_000, "8 s of media, without a gap");
    let first = text.lines().find(|l| l.starts_with("seg-")).unwrap();
    let (row, from, _, at) = vod::parse_name(first).unwrap();
    let forged = format!("seg-{row}-{from}-99-{at}.m4s");
    let (code, _) = fetch(s.addr, &format!("/vod/quay/{forged}")).await;
    assert_eq!(code, 404, "{forged}: keyframes the row lacks");
    let _ = std::fs::remove_dir_all(s.app.recordings.join("quay"));
    s.stop.cancel();
}
