//! WebRTC load: N WHEP viewers of one camera, on one thread, none of them decoding.
//!
//! Usage: `cargo bench -p sited --bench webrtc -- URL VIEWERS SECONDS [--pid PID]
//! [--auth U:P[,U:P...]] [--spacing-ms MS]`; viewer i logs in as the (i mod n)th login. URL is a WHEP endpoint (`http://HOST:PORT/live/CAM/whep` on sited,
//! `http://HOST:PORT/api/webrtc?src=CAM` on go2rtc). Each viewer is a str0m peer in RTP mode:
//! packets are decrypted (SRTP) and counted, never depacketized or decoded. Prints one line of
//! `key=value`:
//! - `connected`: viewers that received video;
//! - `ttff_ms_p50`, `ttff_ms_p99`: from the WHEP request to the first video packet (a viewer
//!   that never gets one counts as the whole run);
//! - `frames_per_viewer_s`: video frames (RTP marker bits) per viewer per second in the steady
//!   window (the last half of the run);
//! - with `--pid`, `cpu_pct`: the server's CPU over the steady window, in % of one core;
//! - `reader_cpu_pct`: this process's own CPU over the window (near 100 %, the figures measure
//!   the reader, not the server).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, RtcConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};

#[derive(Default, Clone)]
struct Outcome {
    first: Option<Duration>,
    steady_frames: u64,
    error: Option<String>,
}

/// Ticks of this process's or another's CPU (user + system), from /proc.
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

/// POSTs an SDP offer; returns the answer.
async fn whep(url: &str, auth: Option<&str>, offer: &str) -> Result<String, String> {
    use base64::Engine as _;
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (host, path) = rest.split_once('/').ok_or("no path")?;
    let mut s = TcpStream::connect(host).await.map_err(|e| e.to_string())?;
    let auth = auth.map_or(String::new(), |a| {
        format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(a)
        )
    });
    let req = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{offer}",
        offer.len()
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .await
        .map_err(|e| e.to_string())?;
    let (head, body) = out.split_once("\r\n\r\n").ok_or("no answer")?;
    let code = head.split(' ').nth(1).unwrap_or("");
    if !code.starts_with('2') {
        return Err(format!("{code} {}", body.trim()));
    }
    // go2rtc answers with chunked encoding; sited with a length.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.split("\r\n")
            .skip(1)
            .step_by(2)
            .collect::<Vec<_>>()
            .join("")
    } else {
        body.to_string()
    };
    Ok(body)
}

async fn viewer(url: String, auth: Option<String>, steady: Instant, end: Instant) -> Outcome {
    let mut o = Outcome::default();
    let socket = match UdpSocket::bind("127.0.0.1:0").await {
        Ok(s) => s,
        Err(e) => {
            o.error = Some(e.to_string());
            return o;
        }
    };
    let local: SocketAddr = socket.local_addr().unwrap();
    let began = Instant::now();
    let mut rtc = RtcConfig::new()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .set_rtp_mode(true)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let Some((offer, pending)) = api.apply() else {
        o.error = Some("no offer".into());
        return o;
    };
    let answer = match whep(&url, auth.as_deref(), &offer.to_sdp_string()).await {
        Ok(a) => a,
        Err(e) => {
            o.error = Some(e);
            return o;
        }
    };
    let Ok(answer) = SdpAnswer::from_sdp_string(&answer) else {
        o.error = Some("a bad answer".into());
        return o;
    };
    if rtc.sdp_api().accept_answer(pending, answer).is_err() {
        o.error = Some("the answer was refused".into());
        return o;
    }
    let mut buf = vec![0u8; 2048];
    while Instant::now() < end {
        let timeout = match rtc.poll_output() {
            Ok(Output::Timeout(t)) => t,
            Ok(Output::Transmit(t)) => {
                let _ = socket.send_to(&t.contents, t.destination).await;
                continue;
            }
            Ok(Output::Event(Event::RtpPacket(p))) => {
                o.first.get_or_insert(began.elapsed());
                if p.header.marker && Instant::now() >= steady {
                    o.steady_frames += 1;
                }
                continue;
            }
            Ok(Output::Event(_)) => continue,
            Err(e) => {
                o.error = Some(e.to_string());
                return o;
            }
        };
        let wait = timeout.min(end).saturating_duration_since(Instant::now());
        match tokio::time::timeout(wait, socket.recv_from(&mut buf)).await {
            Ok(Ok((n, source))) => {
                if let Ok(r) = Receive::new(Protocol::Udp, source, local, &buf[..n]) {
                    let _ = rtc.handle_input(Input::Receive(Instant::now(), r));
                }
            }
            _ => {
                let _ = rtc.handle_input(Input::Timeout(Instant::now()));
            }
        }
    }
    o
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let (Some(url), Some(n), Some(secs)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("usage: webrtc URL VIEWERS SECONDS [--pid PID] [--auth U:P] [--spacing-ms MS]");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("VIEWERS");
    let secs: f64 = secs.parse().expect("SECONDS");
    let pid = flag("--pid");
    let auth = flag("--auth");
    let spacing =
        Duration::from_millis(flag("--spacing-ms").map_or(20, |s| s.parse().unwrap_or(20)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let end = start + spacing * n as u32 + Duration::from_secs_f64(secs);
    let steady = end - Duration::from_secs_f64(secs / 2.0);
    let outcomes: Vec<Outcome> = rt.block_on(async {
        let mut tasks = Vec::new();
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let logins: Vec<String> = auth
                    .iter()
                    .flat_map(|a| a.split(','))
                    .map(String::from)
                    .collect();
                for i in 0..n {
                    tasks.push(tokio::task::spawn_local(viewer(
                        url.clone(),
                        logins.get(i % logins.len().max(1)).cloned(),
                        steady,
                        end,
                    )));
                    tokio::time::sleep(spacing).await;
                }
                tokio::time::sleep_until(tokio::time::Instant::from_std(steady)).await;
                let server0 = pid.as_deref().map(cpu_ticks);
                let me0 = cpu_ticks("self");
                let t0 = Instant::now();
                let mut out = Vec::new();
                for t in tasks {
                    out.push(t.await.unwrap_or_default());
                }
                let window = t0.elapsed().as_secs_f64();
                let hz = 100.0;
                if let (Some(p), Some(c0)) = (pid.as_deref(), server0) {
                    let c = (cpu_ticks(p) - c0) as f64 / hz / window * 100.0;
                    print!("cpu_pct={c:.1} ");
                }
                let me = (cpu_ticks("self") - me0) as f64 / hz / window * 100.0;
                print!("reader_cpu_pct={me:.1} ");
                out
            })
            .await
    });
    let whole = end - start;
    let mut ttff: Vec<Duration> = outcomes.iter().map(|o| o.first.unwrap_or(whole)).collect();
    ttff.sort();
    let connected = outcomes.iter().filter(|o| o.first.is_some()).count();
    let frames: u64 = outcomes.iter().map(|o| o.steady_frames).sum();
    let fps = frames as f64 / n.max(1) as f64 / (secs / 2.0);
    println!(
        "viewers={n} connected={connected} ttff_ms_p50={:.0} ttff_ms_p99={:.0} frames_per_viewer_s={fps:.1}",
        percentile(&ttff, 0.5),
        percentile(&ttff, 0.99)
    );
    if let Some(e) = outcomes.iter().find_map(|o| o.error.clone()) {
        eprintln!("first error: {e}");
    }
}
