//! Headless Chromium plays sited's video: the live page (a frame is painted and
//! `video.currentTime` advances), a recorded clip (its duration is the clip's, and it plays),
//! and, on NovaVMS, WebRTC over WHEP from another network namespace, directly and through
//! sited's TURN relay.
//!
//! Skipped with a reason when Chromium, GStreamer's RTSP server or ffmpeg is missing (`make
//! test` installs them as root), and the WebRTC test when not root. Chromium is driven over the
//! DevTools protocol.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use sited_tests::camera::FakeCameras;
use sited_tests::daemon::{Daemon, free_port, get, post, titop_site};
use sited_tests::media::setup;
use sited_tests::require_media;

const CHROMIUM: &str = "/usr/bin/chromium";

struct Browser(Child, std::path::PathBuf);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

async fn evaluate(ws_url: &str, expression: &str) -> serde_json::Value {
    let rest = ws_url.strip_prefix("ws://").unwrap();
    let host = rest.split('/').next().unwrap();
    let tcp = tokio::net::TcpStream::connect(host).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(ws_url, tcp).await.unwrap();
    let call = serde_json::json!({"id": 1, "method": "Runtime.evaluate", "params": {"expression": expression, "returnByValue": true, "awaitPromise": true}});
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        call.to_string().into(),
    ))
    .await
    .unwrap();
    while let Some(Ok(msg)) = ws.next().await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            if v["id"] == 1 {
                return v["result"]["result"]["value"].clone();
            }
        }
    }
    serde_json::Value::Null
}

/// DevTools' target list; its HTTP server wants `Host: 127.0.0.1`, not a name.
fn devtools_list(port: u16) -> serde_json::Value {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return serde_json::Value::Null;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or_default()
}

/// Skips the calling test when Chromium is missing.
macro_rules! require_chromium {
    () => {
        if !std::path::Path::new(CHROMIUM).exists() {
            sited::base::skip::skip(
                module_path!(),
                &format!(
                    "the browser test needs Chromium ({CHROMIUM}); `make test` installs it as root"
                ),
            );
            return;
        }
    };
}

/// Headless Chromium showing `url`; returns it and the DevTools WebSocket of its page.
fn chromium(url: &str) -> (Browser, String) {
    let devtools = free_port();
    let profile =
        std::env::temp_dir().join(format!("sited-chromium-{}-{devtools}", std::process::id()));
    let child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--mute-audio",
            "--autoplay-policy=no-user-gesture-required",
            // sited's self-signed certificate (NovaVMS serves the web on 443 with TLS).
            "--ignore-certificate-errors",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--remote-debugging-port={devtools}"))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let browser = Browser(child, profile);
    let mut page = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while page.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        let targets = devtools_list(devtools);
        page = targets
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(String::from));
    }
    (browser, page.expect("Chromium's DevTools page target"))
}

/// Logs the page (showing `/login`) in with the login form, as a user does, and goes on to
/// `next`: the UI takes no `?token=` (issue 16 §2).
fn log_in(rt: &tokio::runtime::Runtime, page: &str, next: &str) {
    let ready = "document.readyState === 'complete' && location.pathname === '/login'";
    let deadline = Instant::now() + Duration::from_secs(20);
    while rt.block_on(evaluate(page, ready)) != serde_json::Value::Bool(true) {
        assert!(Instant::now() < deadline, "the login page did not load");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (user, password) = sited_tests::daemon::ADMIN;
    let login = format!(
        "fetch('/login', {{method: 'POST', body: new URLSearchParams({{user: '{user}', password: '{password}', next: '{next}'}})}}).then(r => {{ location.href = r.url; }}); true"
    );
    rt.block_on(evaluate(page, &login));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_live_page_plays_in_chromium() {
    require_media!();
    require_chromium!();
    let cams = FakeCameras::start(&["lobby"]);
    let (web, config) = (free_port(), free_port());
    let site = titop_site("browser", web, config)
        + &format!(
            "\n[[cameras]]\nname = \"lobby\"\nurl = \"{}\"\n",
            cams.url("lobby")
        );
    let d = Daemon::start(
        "browser",
        Some(&site),
        &["--firewall", "none", "--node", "n1", "--force-port-offset"],
    );
    d.wait_for("the camera", Duration::from_secs(30), || {
        get(web, "/api/v1/cameras").body.contains("\"streaming\"")
    });
    let (_browser, page) = chromium(&format!("http://127.0.0.1:{web}/login?next=/live"));
    let rt = runtime();
    log_in(&rt, &page, "/live");
    let probe = "(() => { const v = document.querySelector('video'); return v ? [v.currentTime, v.videoWidth, v.readyState] : null; })()";
    let mut first: Option<f64> = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = rt.block_on(evaluate(&page, probe));
        let t = v[0].as_f64().unwrap_or(0.0);
        if let Some(f) = first.filter(|_| t > 0.0) {
            if t > f + 1.0 {
                assert_eq!(v[1], 640, "a 640-pixel-wide frame was decoded: {v}");
                break;
            }
        } else if t > 0.0 {
            first = Some(t);
        }
        assert!(
            Instant::now() < deadline,
            "video.currentTime did not advance: {v}; daemon log:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_recorded_clip_plays_in_chromium_with_its_duration() {
    require_media!();
    require_chromium!();
    let s = setup("browser-clip", &["hall"], &[], &["hall"]);
    std::thread::sleep(Duration::from_secs(16));
    let spans = get(s.web, "/api/v1/cameras/hall/recordings").json();
    let start = humantime::parse_rfc3339_weak(spans[0]["start"].as_str().unwrap()).unwrap();
    let at = |secs| humantime::format_rfc3339_millis(start + Duration::from_secs(secs));
    let token = post(s.web, "/api/v1/tokens", "").json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    // The clip.mp4 URL itself: Chromium shows it in a <video> of its own media page.
    let (_browser, page) = chromium(&format!(
        "http://127.0.0.1:{}/api/v1/cameras/hall/clip.mp4?start={}&end={}&token={token}",
        s.web,
        at(3),
        at(13)
    ));
    let rt = runtime();
    let probe = "(() => { const v = document.querySelector('video'); if (!v) return null; if (v.paused) v.play(); return [v.currentTime, v.duration, v.videoWidth, v.error ? v.error.code : 0]; })()";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = rt.block_on(evaluate(&page, probe));
        let (t, duration) = (v[0].as_f64().unwrap_or(0.0), v[1].as_f64().unwrap_or(0.0));
        assert_eq!(v[3], 0, "no media error: {v}");
        if t > 2.0 {
            assert!(
                (duration - 10.0).abs() <= 1.05,
                "the clip lasts 10 s within a GOP, Chromium says {duration}: {v}"
            );
            assert_eq!(v[2], 640, "a 640-pixel-wide frame was decoded: {v}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the clip did not play: {v}; daemon log:\n{}",
            s.daemon.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs `f` on a thread inside the network namespace `ns`: what it connects to and the
/// processes it starts are in that namespace.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).expect("the namespace's file");
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .unwrap()
}

/// curl in a namespace, as the test's admin, against the node's web port.
fn curl(lab: &sited_tests::netns::Lab, args: &[&str]) -> String {
    let user = format!(
        "{}:{}",
        sited_tests::daemon::ADMIN.0,
        sited_tests::daemon::ADMIN.1
    );
    let mut all = vec!["curl", "-sk", "--max-time", "5", "-u", &user];
    all.extend_from_slice(args);
    String::from_utf8_lossy(&lab.try_exec(&lab.node, &all).stdout).into_owned()
}

#[test]
fn webrtc_plays_in_chromium_from_another_namespace_directly_and_through_turn() {
    sited_tests::require_root!("ip", "curl");
    require_media!();
    require_chromium!();
    use sited_tests::netns::{Lab, NODE_V4};
    let lab = Lab::new(&["client"]);
    let client = lab.peer("client").clone();
    // Default routes: a browser gathers no host candidate without one.
    lab.exec(&lab.node, &["ip", "route", "add", "default", "dev", "br0"]);
    lab.exec(
        &client.ns,
        &["ip", "route", "add", "default", "via", NODE_V4],
    );
    let cams = in_netns(&lab.node, || FakeCameras::start(&["lobby"]));
    let site = format!(
        "[site]\nname = \"webrtc\"\nlayout = \"novavms\"\n\n[networks]\nclients = [\"192.0.2.0/24\"]\n\n[[nodes]]\nname = \"cloud\"\naddress = \"{NODE_V4}\"\nroles = [\"application\", \"media\"]\n\n[[users]]\nname = \"{}\"\nrole = \"admin\"\npassword_hash = \"{}\"\n\n[[cameras]]\nname = \"lobby\"\nurl = \"{}\"\n",
        sited_tests::daemon::ADMIN.0,
        sited_tests::daemon::admin_hash(),
        cams.url("lobby"),
    );
    let d = Daemon::start_in(
        &lab.node,
        "webrtc",
        &site,
        &["--firewall", "none", "--node", "cloud"],
    );
    d.wait_for("the camera", Duration::from_secs(30), || {
        curl(&lab, &["https://127.0.0.1/api/v1/cameras"]).contains("\"streaming\"")
    });
    for (next, transport) in [("/live", "WebRTC"), ("/live?ice=relay", "WebRTC via TURN")] {
        let url = format!("https://{NODE_V4}/login?next={}", next.replace('?', "%3F"));
        let seen = in_netns(&client.ns, move || {
            let (_browser, page) = chromium(&url);
            let rt = runtime();
            log_in(&rt, &page, next);
            let probe = "(async () => { const v = document.querySelector('video'); const state = v.parentElement.querySelector('.state').textContent; let decoded = 0; if (v.peerConnection) { (await v.peerConnection.getStats()).forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'video') decoded = r.framesDecoded; }); } return [v.videoWidth, state, decoded]; })()";
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut first: Option<u64> = None;
            loop {
                let v = rt.block_on(evaluate(&page, probe));
                let decoded = v[2].as_u64().unwrap_or(0);
                if v[1] == transport && v[0] == 640 && first.is_some_and(|f| decoded > f + 10) {
                    return Ok(v);
                }
                if decoded > 0 && first.is_none() {
                    first = Some(decoded);
                }
                if Instant::now() > deadline {
                    return Err(v);
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        assert!(
            seen.is_ok(),
            "{transport}: {seen:?}; daemon log:\n{}",
            d.log()
        );
    }
    assert!(d.log().contains("TURN allocation"), "the relay was used");
}
