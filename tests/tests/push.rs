//! Cameras that push (NovaVMS 554): `ffmpeg -f rtsp` publishes H.264 or H.265 with AAC, with
//! Digest credentials; the stream is recorded and re-served like a pulled camera (RTSP and
//! HTTP-FLV decode, audio included); bad credentials, unknown cameras and a second publisher are
//! refused; the publisher's death shows the camera failed, and a new push resumes it.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use sited_tests::daemon::{ADMIN, Daemon, admin_hash, free_port, get};
use sited_tests::media::{T, decode, probe};
use sited_tests::require_media;

/// `ffmpeg` publishing a test pattern and a tone to `url` for `seconds`: `video` is `libx264`
/// (without B-frames) or `libx265`, the audio AAC.
fn publisher(url: &str, seconds: u32, video: &str) -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-v", "error", "-re", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=640x360:rate=25:duration={seconds}"))
        .args(["-re", "-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=48000:duration={seconds}"
        ))
        .args([
            "-c:v",
            video,
            "-preset",
            "ultrafast",
            "-bf",
            "0",
            "-g",
            "25",
        ])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "1"]);
    if video == "libx265" {
        c.args(["-x265-params", "log-level=error"]);
    }
    c.args(["-f", "rtsp", "-rtsp_transport", "tcp", url]);
    c
}

fn push_once(url: &str) -> Output {
    publisher(url, 2, "libx264").output().expect("ffmpeg")
}

fn spawn(url: &str) -> Child {
    spawn_with(url, "libx264")
}

fn spawn_with(url: &str, video: &str) -> Child {
    publisher(url, 600, video)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg")
}

fn state(api: u16, cam: &str) -> serde_json::Value {
    get(api, "/api/v1/cameras")
        .json()
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == cam)
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_pushing_camera_is_recorded_re_served_and_guarded() {
    require_media!();
    let (tls, api, rtsp, push) = (free_port(), free_port(), free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("sited-push-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("door.password");
    std::fs::write(&secret, "open-sesame\n").unwrap();
    let site = format!(
        "[site]\nname = \"nova\"\nlayout = \"novavms\"\n\n[networks]\nclients = [\"192.0.2.0/24\"]\ncameras = [\"127.0.0.0/8\"]\n\n[[nodes]]\nname = \"n1\"\naddress = \"192.0.2.1\"\nroles = [\"application\", \"media\"]\n\n[[users]]\nname = \"{1}\"\nrole = \"admin\"\npassword_hash = \"{2}\"\n\n[[cameras]]\nname = \"door\"\npush = true\nusername = \"door\"\npassword_file = \"{0}\"\nrecord = true\n\n[[cameras]]\nname = \"hevc\"\npush = true\nusername = \"door\"\npassword_file = \"{0}\"\n\n[ports]\nweb_tls = {tls}\napi = {api}\nrtsp = {rtsp}\ncamera_push = {push}\n",
        secret.display(),
        ADMIN.0,
        admin_hash(),
    );
    let d = Daemon::start(
        "push",
        Some(&site),
        &["--firewall", "none", "--node", "n1", "--force-port-offset"],
    );
    d.wait_for("the push camera waiting", T, || {
        state(api, "door")["error"] == "waiting for the camera to push"
    });
    let at = |user: &str, cam: &str| format!("rtsp://{user}@127.0.0.1:{push}/{cam}");

    // Refused: a wrong password (401) and a camera that does not push here (404), both logged.
    let wrong = push_once(&at("door:nope", "door"));
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let unknown = push_once(&at("door:open-sesame", "gate"));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    d.wait_for("both refusals logged with the source address", T, || {
        let log = d.log();
        log.contains("push refused: wrong credentials")
            && log.contains("push refused: no camera")
            && log.contains("127.0.0.1")
    });

    // Pushed: streaming, re-served over RTSP, recorded.
    let mut first = spawn(&at("door:open-sesame", "door"));
    d.wait_for("door streaming", T, || {
        state(api, "door")["state"] == "streaming"
    });
    assert_eq!(state(api, "door")["video"], "h264 640x360");
    assert_eq!(state(api, "door")["audio"], "aac 1 ch");
    let served = format!("rtsp://{}:{}@127.0.0.1:{rtsp}/door", ADMIN.0, ADMIN.1);
    let (decoded, errors) = decode(&served, &["-rtsp_transport", "tcp", "-t", "2"]);
    assert!(decoded, "{errors}");
    // Every live output carries both tracks: RTSP, and HTTP-FLV on the web port (NovaVMS has no
    // live port of its own).
    let flv = format!(
        "https://{}:{}@127.0.0.1:{tls}/live/door.flv",
        ADMIN.0, ADMIN.1
    );
    for (output, url) in [("RTSP", &served), ("HTTP-FLV", &flv)] {
        let seen = probe(url, 3);
        assert!(
            seen.contains_key("h264 640x360") && seen.keys().any(|k| k.starts_with("aac")),
            "{output}: {seen:?}"
        );
        assert!(
            seen.values().all(|(n, mono, _)| *n > 10 && *mono),
            "{output}: {seen:?}"
        );
    }

    // An H.265 camera pushes too: its IRAP pictures are keyframes, its stream decodes.
    let mut hevc = spawn_with(&at("door:open-sesame", "hevc"), "libx265");
    d.wait_for("hevc streaming", T, || {
        state(api, "hevc")["state"] == "streaming"
    });
    assert_eq!(state(api, "hevc")["video"], "h265 640x360");
    let served_hevc = format!("rtsp://{}:{}@127.0.0.1:{rtsp}/hevc", ADMIN.0, ADMIN.1);
    let seen = probe(&served_hevc, 3);
    assert!(
        seen.contains_key("hevc 640x360") && seen.keys().any(|k| k.starts_with("aac")),
        "H.265 over RTSP: {seen:?}"
    );
    let _ = hevc.kill();
    let _ = hevc.wait();

    // A second publisher is refused while the first is live.
    let second = push_once(&at("door:open-sesame", "door"));
    assert!(!second.status.success(), "a second publisher was accepted");
    assert!(state(api, "door")["state"] == "streaming");

    // The publisher dies: failed; it comes back: streaming again.
    let _ = first.kill();
    let _ = first.wait();
    d.wait_for("door failed", T, || state(api, "door")["state"] == "failed");
    let mut again = spawn(&at("door:open-sesame", "door"));
    d.wait_for("door streaming again", T, || {
        state(api, "door")["state"] == "streaming"
    });
    std::thread::sleep(Duration::from_secs(3));
    let spans = get(api, "/api/v1/cameras/door/recordings").json();
    assert!(
        spans.as_array().is_some_and(|s| !s.is_empty()),
        "the pushed stream is recorded: {spans}\n{}",
        d.log()
    );
    let _ = again.kill();
    let _ = again.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
