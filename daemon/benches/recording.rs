//! The recordings index at scale, and a synthetic hour of recording for clip timings.
//!
//! Usage:
//! - `cargo bench -p sited --bench recording -- index [ROWS]`: builds an index of ROWS
//!   (1,000,000) segments, 10 cameras of 60 s segments (a gap after every 1000th), in one
//!   transaction; prints how long that took, then the p50 and p99 of listing a camera's spans
//!   over one day and one month, and of the segments of one hour (a clip's query), each at
//!   200 places spread over the recorded time.
//! - `cargo bench -p sited --bench recording -- hour STATE_DIR CAMERA`: extends CAMERA's
//!   recording in STATE_DIR to an hour by repeating its complete segments as new segments
//!   that follow on without a gap: each a hard link to a real segment file, with a row that
//!   copies the original's (bytes, keyframes, init) at the new start. The media are what
//!   sited recorded, so a clip of the hour reads real files; only the repetition is synthetic.
//!   Prints the recorded range as `START END` (RFC 3339).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use sited::media::recorder::index;
use sited::store::Store;
use sited::store::recording::{self, Segment};

fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    let n = times.len();
    (times[n / 2], times[(n * 99 / 100).min(n - 1)])
}

fn index_bench(rows: i64) {
    let dir = std::env::temp_dir().join(format!("sited-bench-index-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir.join("sited.db")).expect("open");
    let conn = &rusqlite::Connection::open(dir.join("sited.db")).expect("open");
    let init = recording::put_init(conn, b"init", "avc1").expect("init");
    let (cameras, per_camera) = (10, rows / 10);
    let t0 = 1_700_000_000_000i64;
    let started = Instant::now();
    conn.execute_batch("BEGIN").expect("begin");
    for cam in 0..cameras {
        let camera = format!("cam{cam}");
        for i in 0..per_camera {
            let start_ms = t0 + i * 60_000;
            let end_ms = start_ms + 60_000 - if i % 1000 == 999 { 5000 } else { 0 };
            let row = Segment {
                id: 0,
                camera: camera.clone(),
                start_ms,
                end_ms,
                duration_90k: (end_ms - start_ms) * 90,
                bytes: 15_000_000,
                path: index::path(&camera, start_ms),
                init_id: init,
                keyframes: vec![0; 120],
                complete: true,
            };
            recording::insert(conn, &row).expect("insert");
        }
    }
    conn.execute_batch("COMMIT").expect("commit");
    println!(
        "  index: {} segments inserted in {:.1} s (one transaction, one prepared statement)",
        cameras * per_camera,
        started.elapsed().as_secs_f64()
    );
    let span_ms = per_camera * 60_000;
    let day = 86_400_000i64;
    for (what, window, spans) in [
        ("spans, one day", day, true),
        ("spans, one month", 30 * day, true),
        ("segments, one hour", 3_600_000, false),
    ] {
        let mut times = Vec::new();
        let mut found = 0usize;
        for k in 0..200i64 {
            let start = t0 + (span_ms - window).max(0) * k / 200;
            let camera = format!("cam{}", k % cameras);
            let t = Instant::now();
            found += if spans {
                store
                    .recording_spans(&camera, start, start + window)
                    .expect("spans")
                    .len()
            } else {
                store
                    .recording_segments(&camera, start, start + window)
                    .expect("segments")
                    .len()
            };
            times.push(t.elapsed());
        }
        let (p50, p99) = percentiles(times);
        println!(
            "  {what:<20} p50 {:>7.3} ms  p99 {:>7.3} ms  ({} rows or spans per query)",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            found / 200
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
}

fn hour(state: &Path, camera: &str) {
    let store = Store::open(&state.join("sited.db")).expect("open the state database");
    let conn = rusqlite::Connection::open(state.join("sited.db")).expect("open");
    let root: PathBuf = state.join("recordings");
    let recorded: Vec<Segment> = store
        .recording_segments(camera, 0, i64::MAX / 2)
        .expect("segments")
        .into_iter()
        .filter(|s| s.complete && s.duration_90k > 0)
        .collect();
    assert!(!recorded.is_empty(), "{camera} has no complete segment");
    let first = recorded[0].start_ms;
    let mut next = recorded.iter().map(|s| s.end_ms).max().unwrap_or(first);
    let mut made = 0;
    for source in recorded.iter().cycle() {
        if next - first >= 3_600_000 {
            break;
        }
        let path = index::path(camera, next);
        let file = root.join(&path);
        std::fs::create_dir_all(file.parent().expect("a day directory")).expect("mkdir");
        std::fs::hard_link(root.join(&source.path), &file).expect("link a segment");
        let row = Segment {
            id: 0,
            start_ms: next,
            end_ms: next + (source.end_ms - source.start_ms),
            path,
            ..source.clone()
        };
        recording::insert(&conn, &row).expect("insert");
        next = row.end_ms;
        made += 1;
    }
    eprintln!("  hour: {made} segments added after {}", recorded.len());
    println!("{} {}", rfc3339(first), rfc3339(next));
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("index") => index_bench(
            args.get(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(1_000_000),
        ),
        Some("hour") if args.len() == 3 => hour(Path::new(&args[1]), &args[2]),
        _ => {
            eprintln!("usage: recording index [ROWS] | recording hour STATE_DIR CAMERA");
            std::process::exit(2);
        }
    }
}
