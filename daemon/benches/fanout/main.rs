//! Fan-out load: N viewers of one live stream, on one thread, measuring what each gets.
//!
//! Usage: `cargo bench -p sited --bench fanout -- URL READERS SECONDS [--pid PID] [--auth U:P]
//! [--spacing-us US] [--settle-s S]`. URL is `http://HOST:PORT/PATH.flv` (HTTP-FLV), `rtmp://HOST:PORT/APP/STREAM`
//! (RTMP play, [`rtmp`]) or `ws://HOST:PORT/PATH` (sited's fragmented MP4 over WebSocket, [`ws`]).
//! Readers start `--spacing-us` apart (500 µs by default). Each new reader gets a burst (the
//! server's GOP cache, up to a GOP of video), so the steady window starts `--settle-s` (3 s by
//! default) after the last reader started, when the bursts of a thousand joins have drained.
//!
//! Each connection parses its stream as the bytes arrive, without buffering media payloads: the
//! bytes are read into one buffer shared by every connection of the thread, so a reader costs a
//! few hundred bytes plus its frame log. Prints one line of `key=value`:
//! - `ttff_ms_p50`, `ttff_ms_p99`: from the TCP connect to the first video frame (a reader that
//!   never gets one counts as the whole run);
//! - `share_pct`: video frames received in the steady window (from the settle time after the
//!   last reader started to 0.5 s before the end) over those received and missed, summed over
//!   the readers. A reader missed the frames its timestamps skip (gaps over 1.5 frame
//!   intervals, the interval being the median one), and, when it ended early or got nothing,
//!   the rest of the window;
//! - `lag_ms_p99`: for each frame of the window, how much later than its reader's best frame it
//!   arrived relative to the stream's own clock ((arrival − timestamp) − min over the reader),
//!   so a server that falls behind shows, and each reader's own timestamp origin does not matter;
//! - with `--pid`, `cpu_pct` (the server's CPU, in % of one core, over the window) and
//!   `rss_kib` (its resident memory at the end of the window);
//! - `reader_cpu_pct`: this reader's own CPU over the window; near 100 % of its core, the
//!   figures above measure the reader, not the server.

// Each module's unit tests run in tests/fanout_reader.rs; a bench compiles them without their
// #[test] functions, so what only those use looks unused here.
#[allow(unused_imports, dead_code)]
mod flv;
mod protocol;
#[allow(unused_imports, dead_code)]
mod rtmp;
#[allow(unused_imports, dead_code)]
mod ws;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt as _;

use protocol::Protocol;

/// What one reader saw.
#[derive(Default)]
struct Outcome {
    first_frame: Option<Duration>,
    /// (timestamp ms, arrival µs since the run's start) of every video frame.
    frames: Vec<(u32, u32)>,
    error: Option<String>,
}

/// The read buffer every connection of the thread shares: each read is parsed before the next.
const READ_BUFFER: usize = 256 << 10;

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUFFER]);
}

async fn reader(
    addr: String,
    mut protocol: Box<dyn Protocol>,
    start: Instant,
    until: Instant,
) -> Outcome {
    let mut out = Outcome::default();
    let began = Instant::now();
    let connect = tokio::time::timeout_at(until.into(), tokio::net::TcpStream::connect(&addr));
    let mut s = match connect.await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            out.error = Some(format!("connect: {e}"));
            return out;
        }
        Err(_) => {
            out.error = Some("connect: timed out".into());
            return out;
        }
    };
    let mut reply = protocol.hello();
    let mut frames = Vec::new();
    loop {
        if !reply.is_empty() {
            if let Err(e) = s.write_all(&reply).await {
                out.error = Some(format!("write: {e}"));
                return out;
            }
            reply.clear();
        }
        match tokio::time::timeout_at(until.into(), s.readable()).await {
            Err(_) => return out,
            Ok(Err(e)) => {
                out.error = Some(format!("readable: {e}"));
                return out;
            }
            Ok(Ok(())) => {}
        }
        let fed = BUFFER.with(|b| {
            let mut b = b.borrow_mut();
            match s.try_read(&mut b) {
                Ok(0) => Err("the server closed the connection".to_string()),
                Ok(n) => protocol.feed(&b[..n], &mut frames, &mut reply),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
                Err(e) => Err(format!("read: {e}")),
            }
        });
        if !frames.is_empty() {
            out.first_frame.get_or_insert_with(|| began.elapsed());
            let at = start.elapsed().as_micros() as u32;
            out.frames.extend(frames.drain(..).map(|ts| (ts, at)));
        }
        if let Err(e) = fed {
            out.error = Some(e);
            return out;
        }
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A process's CPU time (user + system) and resident memory (KiB), from /proc.
fn usage(pid: u32) -> Option<(Duration, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((Duration::from_secs_f64(ticks as f64 / hz as f64), rss))
}

struct Args {
    url: String,
    readers: usize,
    seconds: u64,
    pid: Option<u32>,
    auth: Option<String>,
    spacing: Duration,
    settle: Duration,
}

fn args() -> Args {
    let mut positional = Vec::new();
    let mut a = Args {
        url: String::new(),
        readers: 0,
        seconds: 0,
        pid: None,
        auth: None,
        spacing: Duration::from_micros(500),
        settle: Duration::from_secs(3),
    };
    let mut it = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--pid" => a.pid = it.next().and_then(|p| p.parse().ok()),
            "--auth" => a.auth = it.next(),
            "--spacing-us" => {
                a.spacing = Duration::from_micros(it.next().and_then(|p| p.parse().ok()).unwrap())
            }
            "--settle-s" => {
                a.settle = Duration::from_secs_f64(it.next().and_then(|p| p.parse().ok()).unwrap())
            }
            _ => positional.push(arg),
        }
    }
    assert!(positional.len() == 3, "usage: fanout URL READERS SECONDS");
    a.url = positional[0].clone();
    a.readers = positional[1].parse().expect("READERS");
    a.seconds = positional[2].parse().expect("SECONDS");
    a
}

/// The address and a protocol maker for a URL.
fn target(url: &str, auth: Option<&str>) -> (String, Rc<dyn Fn() -> Box<dyn Protocol>>) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (host, path) = rest.split_at(rest.find('/').expect("a path"));
    let (host, path, auth) = (host.to_string(), path.to_string(), auth.map(String::from));
    let maker: Rc<dyn Fn() -> Box<dyn Protocol>> = match scheme {
        "http" => Rc::new(move || Box::new(flv::Flv::new(&host, &path, auth.as_deref()))),
        "rtmp" => Rc::new(move || Box::new(rtmp::Rtmp::new(&host, &path))),
        "ws" => Rc::new(move || Box::new(ws::Ws::new(&host, &path, auth.as_deref()))),
        other => panic!("no reader for {other}://"),
    };
    let addr = rest.split_at(rest.find('/').unwrap()).0.to_string();
    (addr, maker)
}

fn main() {
    let a = args();
    let (addr, maker) = target(&a.url, a.auth.as_deref());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let until = start + Duration::from_secs(a.seconds);
    let ramp = a.spacing * a.readers as u32;
    let window = (
        ramp + a.settle,
        Duration::from_secs(a.seconds) - Duration::from_millis(500),
    );
    assert!(window.0 < window.1, "SECONDS is too short for the ramp");
    let (outcomes, server) = runtime.block_on(async {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let sampler = tokio::task::spawn_local(async move {
                    let me = std::process::id();
                    let pid = a.pid.unwrap_or(me);
                    tokio::time::sleep_until((start + window.0).into()).await;
                    let (t0, m0, i0) = (usage(pid)?, usage(me)?, Instant::now());
                    tokio::time::sleep_until((start + window.1).into()).await;
                    let (t1, m1, i1) = (usage(pid)?, usage(me)?, Instant::now());
                    let pct = |a: Duration, b: Duration| {
                        (b - a).as_secs_f64() / (i1 - i0).as_secs_f64() * 100.0
                    };
                    Some(Window {
                        server_cpu: a.pid.map(|_| pct(t0.0, t1.0)),
                        server_rss: t1.1,
                        reader_cpu: pct(m0.0, m1.0),
                    })
                });
                let mut tasks = Vec::new();
                for _ in 0..a.readers {
                    tasks.push(tokio::task::spawn_local(reader(
                        addr.clone(),
                        maker(),
                        start,
                        until,
                    )));
                    tokio::time::sleep(a.spacing).await;
                }
                let mut out = Vec::new();
                for t in tasks {
                    out.push(t.await.unwrap());
                }
                (out, sampler.await.unwrap())
            })
            .await
    });
    print_summary(&a, &outcomes, window, server);
}

/// What was measured over the steady window.
struct Window {
    /// The server's CPU, in % of one core.
    server_cpu: Option<f64>,
    /// The server's resident memory at the end, KiB.
    server_rss: u64,
    /// This reader's own CPU, in % of one core: near 100, the reader is the limit.
    reader_cpu: f64,
}

fn print_summary(
    a: &Args,
    outcomes: &[Outcome],
    window: (Duration, Duration),
    server: Option<Window>,
) {
    if std::env::var_os("FANOUT_DUMP").is_some() {
        // The first reader's frames, to look at a server's pacing: timestamp ms, arrival ms.
        for (ts, at) in outcomes.iter().flat_map(|o| o.frames.iter()).take(100_000) {
            eprintln!("{ts} {:.1}", f64::from(*at) / 1000.0);
        }
    }
    let connected = outcomes.iter().filter(|o| !o.frames.is_empty()).count();
    let errors = outcomes.iter().filter(|o| o.error.is_some()).count();
    let first_error = outcomes.iter().find_map(|o| o.error.clone());
    let mut ttff: Vec<f64> = outcomes
        .iter()
        .map(|o| o.first_frame.unwrap_or(Duration::from_secs(a.seconds)))
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let (w0, w1) = (window.0.as_micros() as u32, window.1.as_micros() as u32);
    let in_window: Vec<Vec<(u32, u32)>> = outcomes
        .iter()
        .map(|o| {
            let w = o.frames.iter().copied();
            w.filter(|(_, at)| (w0..w1).contains(at)).collect()
        })
        .collect();
    let mut deltas: Vec<f64> = in_window
        .iter()
        .flat_map(|w| w.windows(2).map(|p| f64::from(p[1].0.wrapping_sub(p[0].0))))
        .collect();
    let interval_ms = percentile(&mut deltas, 0.5).max(1.0);
    let (mut received, mut missed) = (0.0, 0.0);
    let mut lags = Vec::new();
    for (o, w) in outcomes.iter().zip(&in_window) {
        received += w.len() as f64;
        // Frames lost on the way show as gaps in the timestamps; a reader that ended (or
        // never got a frame) missed the rest of the window too.
        for p in w.windows(2) {
            let gap = f64::from(p[1].0.wrapping_sub(p[0].0)) / interval_ms;
            if gap > 1.5 {
                missed += gap.round() - 1.0;
            }
        }
        if o.error.is_some() || w.is_empty() {
            let last = w.last().map_or(w0, |f| f.1);
            missed += f64::from(w1 - last) / 1000.0 / interval_ms;
        }
        let late = |(ts, at): (u32, u32)| i64::from(at) - i64::from(ts) * 1000;
        let best = w.iter().map(|f| late(*f)).min().unwrap_or(0);
        lags.extend(w.iter().map(|f| (late(*f) - best) as f64 / 1000.0));
    }
    let share = if received + missed > 0.0 {
        received / (received + missed) * 100.0
    } else {
        0.0
    };
    let (cpu, rss, reader_cpu) = server.map_or((f64::NAN, 0, f64::NAN), |w| {
        (w.server_cpu.unwrap_or(f64::NAN), w.server_rss, w.reader_cpu)
    });
    println!(
        "readers={} connected={connected} errors={errors} ttff_ms_p50={:.0} ttff_ms_p99={:.0} \
         share_pct={share:.3} lag_ms_p99={:.1} lag_ms_max={:.0} frame_ms={interval_ms:.0} \
         cpu_pct={cpu:.2} rss_kib={rss} reader_cpu_pct={reader_cpu:.0} first_error={:?}",
        a.readers,
        percentile(&mut ttff, 0.5),
        percentile(&mut ttff, 0.99),
        percentile(&mut lags, 0.99),
        percentile(&mut lags, 1.0),
        first_error.unwrap_or_default(),
    );
}
