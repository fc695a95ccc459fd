//! Fan-out load: N HTTP-FLV viewers of one live stream, on one thread, measuring what each gets.
//!
//! Usage: `cargo bench -p sited --bench fanout -- URL READERS SECONDS [AUTH]` where URL is
//! `http://127.0.0.1:PORT/live/<camera>.flv` and AUTH is `user:password` for HTTP Basic.
//! Prints one line: readers connected, time to first frame (p50, p99), video frames per reader
//! (min, median), the share of expected frames received, and the lag of frames behind the
//! fastest reader (p99). The server's CPU and memory are measured by the calling script.

use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

struct Outcome {
    first_frame: Option<Duration>,
    frames: u64,
    /// (tag time ms, arrival since the reader's start) of every video frame.
    arrivals: Vec<(u32, Duration)>,
}

async fn reader(
    host: String,
    path: String,
    auth: Option<String>,
    start: Instant,
    until: Instant,
) -> Outcome {
    let mut out = Outcome {
        first_frame: None,
        frames: 0,
        arrivals: Vec::new(),
    };
    let Ok(mut s) = tokio::net::TcpStream::connect(&host).await else {
        return out;
    };
    let auth = auth
        .map(|a| {
            format!(
                "Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(a)
            )
        })
        .unwrap_or_default();
    if s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n").as_bytes())
        .await
        .is_err()
    {
        return out;
    }
    let connected = Instant::now();
    let mut raw: Vec<u8> = Vec::with_capacity(256 * 1024);
    let mut body: Vec<u8> = Vec::with_capacity(256 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut headers_done = false;
    let mut chunked = false;
    let mut parsed = 13usize;
    while Instant::now() < until {
        let n = match tokio::time::timeout(until - Instant::now(), s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => break,
        };
        raw.extend_from_slice(&chunk[..n]);
        if !headers_done {
            let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            chunked = String::from_utf8_lossy(&raw[..p])
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked");
            raw.drain(..p + 4);
            headers_done = true;
        }
        if chunked {
            // Move every complete chunk from `raw` into `body`.
            let mut at = 0;
            while let Some(line_end) = raw[at..].windows(2).position(|w| w == b"\r\n") {
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&raw[at..at + line_end]).trim(),
                    16,
                )
                .unwrap_or(0);
                let data = at + line_end + 2;
                if size == 0 || data + size + 2 > raw.len() {
                    break;
                }
                body.extend_from_slice(&raw[data..data + size]);
                at = data + size + 2;
            }
            raw.drain(..at);
        } else {
            body.append(&mut raw);
        }
        while parsed + 11 <= body.len() {
            let kind = body[parsed];
            let size = usize::from(body[parsed + 1]) << 16
                | usize::from(body[parsed + 2]) << 8
                | usize::from(body[parsed + 3]);
            let ts = u32::from(body[parsed + 4]) << 16
                | u32::from(body[parsed + 5]) << 8
                | u32::from(body[parsed + 6])
                | u32::from(body[parsed + 7]) << 24;
            if parsed + 11 + size + 4 > body.len() {
                break;
            }
            if kind == 9 && size > 5 && body[parsed + 12] == 1 {
                out.frames += 1;
                out.first_frame.get_or_insert(connected.elapsed());
                out.arrivals.push((ts, start.elapsed()));
            }
            parsed += 11 + size + 4;
        }
        if parsed > 1 << 20 {
            body.drain(..parsed);
            parsed = 0;
        }
    }
    out
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (url, readers, seconds) = (
        &args[0],
        args[1].parse::<usize>().unwrap(),
        args[2].parse::<u64>().unwrap(),
    );
    let auth = args.get(3).cloned();
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcomes: Vec<Outcome> = runtime.block_on(async {
        let start = Instant::now();
        let until = start + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for _ in 0..readers {
            tasks.push(tokio::spawn(reader(
                host.to_string(),
                path.to_string(),
                auth.clone(),
                start,
                until,
            )));
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let connected = outcomes.iter().filter(|o| o.frames > 0).count();
    let mut ttff: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| o.first_frame.map(|d| d.as_secs_f64() * 1000.0))
        .collect();
    let mut frames: Vec<f64> = outcomes.iter().map(|o| o.frames as f64).collect();
    // Lag: how late each frame arrived compared with the earliest arrival of that frame anywhere.
    let mut earliest: std::collections::HashMap<u32, Duration> = std::collections::HashMap::new();
    for o in &outcomes {
        for (ts, at) in &o.arrivals {
            earliest
                .entry(*ts)
                .and_modify(|e| *e = (*e).min(*at))
                .or_insert(*at);
        }
    }
    let mut lags: Vec<f64> = outcomes
        .iter()
        .flat_map(|o| {
            o.arrivals
                .iter()
                .map(|(ts, at)| (*at - earliest[ts]).as_secs_f64() * 1000.0)
        })
        .collect();
    let best = frames.iter().cloned().fold(0.0, f64::max);
    let share = if best > 0.0 {
        frames.iter().sum::<f64>() / (best * readers as f64) * 100.0
    } else {
        0.0
    };
    println!(
        "readers={readers} connected={connected} ttff_ms p50={:.0} p99={:.0} frames min={:.0} median={:.0} share={share:.2}% lag_ms p99={:.0}",
        percentile(&mut ttff, 0.5),
        percentile(&mut ttff, 0.99),
        percentile(&mut frames.clone(), 0.0),
        percentile(&mut frames, 0.5),
        percentile(&mut lags, 0.99)
    );
}
