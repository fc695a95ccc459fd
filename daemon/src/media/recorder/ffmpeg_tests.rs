//! A real H.264 stream (libx264 via ffmpeg) recorded, then a clip cut from it read by ffprobe
//! and decoded by ffmpeg. Skipped when ffmpeg is not installed.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use bytes::{BufMut as _, Bytes, BytesMut};

use super::clip::{self, ClipReader};
use super::segmenter::{Limits, Segmenter};
use super::tests::TempDir;
use super::writer::Writer;
use crate::media::frame::{Codec, Frame, Kind, Track, Tracks};
use crate::media::hub::Item;
use crate::store::Store;

const T0: i64 = 1_763_700_000_000;

/// Splits an Annex B stream into NAL units.
fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(n, &s)| {
            let mut end = starts.get(n + 1).map_or(data.len(), |&e| e - 3);
            while end > s && data[end - 1] == 0 {
                end -= 1;
            }
            &data[s..end]
        })
        .collect()
}

/// Access units in MP4 form (length-prefixed, parameter sets and delimiters left out), each
/// with whether it is a keyframe; and the SPS and PPS.
fn access_units(data: &[u8]) -> (Vec<(Bytes, bool)>, Vec<u8>, Vec<u8>) {
    let (mut sps, mut pps) = (Vec::new(), Vec::new());
    let mut out: Vec<(BytesMut, bool)> = Vec::new();
    for nal in nal_units(data) {
        let kind = nal[0] & 0x1f;
        match kind {
            7 if sps.is_empty() => sps = nal.to_vec(),
            8 if pps.is_empty() => pps = nal.to_vec(),
            1 | 5 => {
                // first_mb_in_slice == 0 (ue(v) "1") starts a new picture.
                if nal[1] & 0x80 != 0 || out.is_empty() {
                    out.push((BytesMut::new(), false));
                }
                let au = out.last_mut().unwrap();
                au.0.put_u32(nal.len() as u32);
                au.0.put_slice(nal);
                au.1 |= kind == 5;
            }
            _ => {}
        }
    }
    let aus = out.into_iter().map(|(b, k)| (b.freeze(), k)).collect();
    (aus, sps, pps)
}

/// An `avc1` sample entry with its `avcC`.
fn avc1(sps: &[u8], pps: &[u8], width: u16, height: u16) -> Bytes {
    let mut avcc = BytesMut::new();
    avcc.put_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe1]);
    avcc.put_u16(sps.len() as u16);
    avcc.put_slice(sps);
    avcc.put_u8(1);
    avcc.put_u16(pps.len() as u16);
    avcc.put_slice(pps);
    let mut e = BytesMut::new();
    e.put_u32(0);
    e.put_slice(b"avc1");
    e.put_bytes(0, 6);
    e.put_u16(1);
    e.put_bytes(0, 16);
    e.put_u16(width);
    e.put_u16(height);
    e.put_u32(0x0048_0000);
    e.put_u32(0x0048_0000);
    e.put_u32(0);
    e.put_u16(1);
    e.put_bytes(0, 32);
    e.put_u16(0x18);
    e.put_i16(-1);
    e.put_u32(8 + avcc.len() as u32);
    e.put_slice(b"avcC");
    e.put_slice(&avcc);
    let len = e.len() as u32;
    e[..4].copy_from_slice(&len.to_be_bytes());
    e.freeze()
}

fn ffprobe(path: &Path, entries: &str) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json", "-show_entries", entries])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_clip_of_a_real_h264_recording_plays_in_ffprobe_and_ffmpeg() {
    crate::skip_unless!("/usr/bin/ffmpeg");
    let dir = TempDir::new("ffmpeg");
    let es = dir.0.join("in.h264");
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
        ])
        .args([
            "-t", "12", "-c:v", "libx264", "-g", "25", "-bf", "0", "-threads", "1",
        ])
        .args(["-bsf:v", "h264_mp4toannexb", "-f", "h264"])
        .arg(&es)
        .status()
        .unwrap();
    assert!(status.success());
    let (aus, sps, pps) = access_units(&std::fs::read(&es).unwrap());
    assert_eq!(aus.len(), 300);
    let profile = format!("avc1.{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3]);
    let tracks = Arc::new(Tracks {
        video: Some(Arc::new(Track {
            codec: Codec::H264,
            timescale: 90_000,
            extra_data: Bytes::new(),
            sample_entry: avc1(&sps, &pps, 320, 240),
            rfc6381: profile,
            dimensions: (320, 240),
            channels: 0,
        })),
        audio: None,
    });

    let root = dir.0.join("recordings");
    let store = Store::open(&dir.0.join("sited.db")).unwrap();
    let mut seg = Segmenter::new(
        "cam",
        Limits {
            target: 4 * 90_000,
            part: 90_000,
        },
    );
    let mut w = Writer::new(store.conn(), &root, "cam");
    let mut actions = seg.push(&Item::Tracks(tracks), T0);
    for (i, (data, keyframe)) in aus.into_iter().enumerate() {
        let frame = Frame {
            kind: Kind::Video,
            seq: i as u64 + 1,
            dts: i as i64 * 3600,
            composition: 0,
            keyframe,
            data,
        };
        actions.extend(seg.push(&Item::Frame(Arc::new(frame)), T0 + i as i64 * 40));
    }
    actions.extend(seg.finish());
    for a in actions {
        w.apply(a).unwrap();
    }
    let segs = store.recording_segments("cam", T0, T0 + 12_000).unwrap();
    assert_eq!(segs.len(), 3);
    // Each segment file plays on its own.
    let one = ffprobe(&root.join(&segs[0].path), "format=duration");
    let d: f64 = one["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((d - 4.0).abs() < 0.05, "{d}");

    // A 5 s clip across a segment cut: [3.5 s, 8.5 s) starts at the keyframe at 3 s.
    let (start, end) = (T0 + 3500, T0 + 8500);
    let segs = store.recording_segments("cam", start, end).unwrap();
    let init = store.recording_init(segs[0].init_id).unwrap().unwrap();
    let mut plan = clip::plan(&root, &segs, Bytes::from(init), start, end).unwrap();
    plan.trim_end().unwrap();
    let plan = Arc::new(plan);
    let path = dir.0.join("clip.mp4");
    let bytes: Vec<u8> = ClipReader::new(plan.clone(), 0..plan.len)
        .flat_map(|c| c.unwrap().to_vec())
        .collect();
    assert_eq!(bytes.len() as u64, plan.len);
    std::fs::write(&path, &bytes).unwrap();

    let probe = ffprobe(&path, "format=duration:packet=pts_time,dts_time,flags");
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    eprintln!("clip: {} bytes, {duration} s", plan.len);
    assert!(
        (5.0..=6.0).contains(&duration),
        "duration {duration} s: within one GOP (1 s) of 5 s"
    );
    let pts: Vec<f64> = probe["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pts_time"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(pts[0], 0.0);
    assert!(pts.windows(2).all(|w| w[1] > w[0]), "monotonic: {pts:?}");
    assert_eq!(pts.len(), 138, "3 s to 8.5 s at 25 fps");
    assert!(
        probe["packets"][0]["flags"]
            .as_str()
            .unwrap()
            .starts_with('K')
    );

    // It decodes without an error.
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
