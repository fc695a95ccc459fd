//! Recording with a real daemon and fake cameras: HLS VOD of recorded ranges read by ffprobe,
//! and a full recordings disk.
//!
//! Skipped with a reason when GStreamer's RTSP server or ffmpeg is missing; the full-disk test
//! also needs root (a tmpfs in the daemon's own mount namespace), as CI has.

use std::process::Command;
use std::time::{Duration, SystemTime};

use sited_tests::daemon::{get, post, vod_port};
use sited_tests::media::{T, probe, setup, setup_with};
use sited_tests::{require_media, require_root};

fn time(v: &serde_json::Value) -> SystemTime {
    humantime::parse_rfc3339_weak(v.as_str().unwrap_or("")).unwrap()
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The status of a GET without any login.
fn anonymous(port: u16, path: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_recorded_range_with_a_gap_plays_as_hls_vod_on_every_port_that_serves_it() {
    require_media!();
    let mut s = setup("vod", &["yard"], &[], &["yard"]);
    std::thread::sleep(Duration::from_secs(12));
    // The camera vanishes for longer than a segment stays open in silence: a recording gap.
    s.cams.kill();
    std::thread::sleep(Duration::from_secs(7));
    s.cams.restart();
    s.wait_state("yard", "streaming");
    std::thread::sleep(Duration::from_secs(12));

    let spans = get(s.web, "/api/v1/cameras/yard/recordings").json();
    let spans = spans.as_array().cloned().unwrap_or_default();
    assert_eq!(spans.len(), 2, "a gap between two spans: {spans:?}");
    let (start, end) = (
        time(&spans[0]["start"]),
        time(&spans[1]["end"]) - Duration::from_secs(2),
    );
    let token = post(s.web, "/api/v1/tokens", "").json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!(
        "/vod/yard/index.m3u8?start={}&end={}&token={token}",
        rfc3339(start),
        rfc3339(end)
    );

    // The same playlist on Ti Top's VOD port, its HTTP streaming port and the web port.
    let vod = vod_port(s.web);
    let text = get(vod, &path).body;
    for port in [s.live, s.web] {
        assert_eq!(get(port, &path).body, text, "port {port}");
    }
    assert_eq!(anonymous(vod, &path.replace(&token, "nope")), "401");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"#EXTM3U"), "{text}");
    assert_eq!(lines.last(), Some(&"#EXT-X-ENDLIST"), "{text}");
    assert!(lines.contains(&"#EXT-X-PLAYLIST-TYPE:VOD"), "{text}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| **l == "#EXT-X-DISCONTINUITY")
            .count(),
        1,
        "the gap is the one discontinuity: {text}"
    );
    assert!(
        lines
            .iter()
            .filter(|l| !l.starts_with('#') || l.starts_with("#EXT-X-MAP"))
            .all(|l| l
                .trim_end_matches('"')
                .ends_with(&format!("?token={token}"))),
        "every URI carries the token: {text}"
    );
    let listed: f64 = lines
        .iter()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    let recorded: f64 = spans
        .iter()
        .map(|s| {
            time(&s["end"])
                .duration_since(time(&s["start"]))
                .unwrap()
                .as_secs_f64()
        })
        .sum::<f64>()
        - 2.0;
    assert!(
        (listed - recorded).abs() <= 3.0,
        "the parts last {listed} s, the spans {recorded} s (whole GOPs at the ends)"
    );

    // ffprobe reads the playlist, as a player does, with the token in every URI.
    let probed = probe(&format!("http://127.0.0.1:{vod}{path}"), 1000);
    let (frames, monotonic, _) = probed
        .get("h264 640x360")
        .cloned()
        .unwrap_or_else(|| panic!("no H.264 640x360 stream: {probed:?}\n{text}"));
    assert!(monotonic, "timestamps go forward across parts and the gap");
    let expected = listed * 25.0;
    assert!(
        (frames as f64 - expected).abs() <= 5.0,
        "{frames} frames for {listed} s at 25 fps"
    );
}

/// Files and rows agree: every row's file exists and holds at least the bytes the row claims,
/// and at most one row (the open segment) is incomplete.
fn consistent(
    s: &sited_tests::media::Setup,
    camera: &str,
) -> Vec<sited::store::recording::Segment> {
    let store = sited::store::Store::open(&s.daemon.dir.join("state/sited.db")).unwrap();
    let rows = store.recording_segments(camera, 0, i64::MAX / 2).unwrap();
    let root = s
        .daemon
        .private_path(&s.daemon.dir.join("state/recordings"));
    for r in &rows {
        let len = std::fs::metadata(root.join(&r.path)).map_or(0, |m| m.len());
        // Retention deletes a file, then its row: a row gone meanwhile is no damage.
        let still = store.recording_segment(r.id).unwrap().is_some();
        assert!(
            len >= r.bytes as u64 || !still,
            "{} holds {len} bytes, its row claims {}",
            r.path,
            r.bytes
        );
    }
    let open = rows.iter().filter(|r| !r.complete).count();
    assert!(open <= 1, "{open} incomplete rows: {rows:?}");
    rows
}

#[test]
fn a_full_recordings_disk_hands_over_to_retention_and_live_streaming_goes_on() {
    require_root!("unshare", "mount");
    require_media!();
    const MIB: u64 = 1 << 20;
    // 40 MiB of disk, of which retention keeps 24 MiB free; 8 Mb/s in 4 s segments.
    let mut s = setup_with(
        "disk",
        &["full:bitrate=8000"],
        &[],
        &["full"],
        &format!("\n[recording]\nmin_free_bytes = {}\n", 24 * MIB),
        Some(40),
        &["--segment-secs", "4", "--retention-secs", "2"],
    );
    let storage = || get(s.web, "/api/v1/storage").json();
    s.daemon
        .wait_for("retention to delete by free space", T * 2, || {
            s.daemon.log().contains("reason=FreeSpace")
        });
    let free = storage()["free_bytes"].as_u64().unwrap();
    assert!(
        free >= 18 * MIB,
        "retention keeps about 24 MiB free: {free}"
    );
    consistent(&s, "full");

    // Now truly full: a ballast file takes every free byte of the recordings' disk.
    let root = s
        .daemon
        .private_path(&s.daemon.dir.join("state/recordings"));
    let ballast = root.join("ballast");
    let chunk = vec![0u8; 1 << 20];
    let mut f = std::fs::File::create(&ballast).unwrap();
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    drop(f);
    s.daemon
        .wait_for("the writer to report the full disk", T, || {
            s.daemon.log().contains("disk_full=true")
        });
    // Live streaming does not depend on the disk.
    let flv = probe(&s.url("/live/full.flv"), 3);
    assert!(
        flv.get("h264 640x360").is_some_and(|(n, _, _)| *n >= 25),
        "live HTTP-FLV while the disk is full: {flv:?}"
    );
    consistent(&s, "full");

    // Space comes back: recording resumes by itself.
    std::fs::remove_file(&ballast).unwrap();
    let resumed_from = SystemTime::now();
    s.daemon.wait_for("recording to resume", T, || {
        s.daemon.log().contains("recording resumed")
    });
    std::thread::sleep(Duration::from_secs(6));
    let rows = consistent(&s, "full");
    let newest = rows.iter().map(|r| r.end_ms).max().unwrap_or(0);
    let resumed_ms = resumed_from
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        newest > resumed_ms + 3000,
        "new media recorded after the space came back: {newest} vs {resumed_ms}"
    );
    let log = s.daemon.log();
    let errors = log
        .lines()
        .filter(|l| l.contains("segment closed after a write error"))
        .count();
    assert!(
        (1..=3).contains(&errors),
        "the full disk is logged once per episode, not per frame: {errors}"
    );
    for line in log
        .lines()
        .filter(|l| l.contains("write error") || l.contains("resumed") || l.contains("FreeSpace"))
    {
        eprintln!("{line}");
    }
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(
        s.daemon.child.as_mut().unwrap().try_wait().unwrap(),
        None,
        "the daemon still runs"
    );
}
