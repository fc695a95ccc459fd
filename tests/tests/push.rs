//! Cameras that push (NovaVMS 554): `ffmpeg -f rtsp` publishes with Digest credentials; the
//! stream is recorded and re-served like a pulled camera; bad credentials, unknown cameras and a
//! second publisher are refused; the publisher's death shows the camera failed, and a new push
//! resumes it.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use sited_tests::daemon::{ADMIN, Daemon, admin_hash, free_port, get};
use sited_tests::media::{T, decode};
use sited_tests::require_media;

/// `ffmpeg` publishing a test pattern to `url` for `seconds`, H.264 without B-frames.
fn publisher(url: &str, seconds: u32) -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-v", "error", "-re", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=640x360:rate=25:duration={seconds}"))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "0",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-f", "rtsp", "-rtsp_transport", "tcp", url]);
    c
}

fn push_once(url: &str) -> Output {
    publisher(url, 2).output().expect("ffmpeg")
}

fn spawn(url: &str) -> Child {
    publisher(url, 600)
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
        "[site]\nname = \"nova\"\nlayout = \"novavms\"\n\n[networks]\nclients = [\"192.0.2.0/24\"]\ncameras = [\"127.0.0.0/8\"]\n\n[[nodes]]\nname = \"n1\"\naddress = \"192.0.2.1\"\nroles = [\"application\", \"media\"]\n\n[[users]]\nname = \"{}\"\nrole = \"admin\"\npassword_hash = \"{}\"\n\n[[cameras]]\nname = \"door\"\npush = true\nusername = \"door\"\npassword_file = \"{}\"\nrecord = true\n\n[ports]\nweb_tls = {tls}\napi = {api}\nrtsp = {rtsp}\ncamera_push = {push}\n",
        ADMIN.0,
        admin_hash(),
        secret.display()
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
    let served = format!("rtsp://{}:{}@127.0.0.1:{rtsp}/door", ADMIN.0, ADMIN.1);
    let (decoded, errors) = decode(&served, &["-rtsp_transport", "tcp", "-t", "2"]);
    assert!(decoded, "{errors}");

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
