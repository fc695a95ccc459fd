//! `sited discover` against fake ONVIF cameras in network namespaces: it finds them, prints
//! entries that stream once pasted into a site, reports refused credentials, and stays bounded
//! under a flood of hostile answers.
//!
//! Privileged: skipped with a reason unless run as root (and without the fake cameras' tools).

use std::time::Duration;

use sited_tests::camera::FakeCameras;
use sited_tests::daemon::{ADMIN, Daemon, free_port, titop_site};
use sited_tests::netns::Lab;
use sited_tests::onvif::{FakeOnvif, discover};
use sited_tests::{require_media, require_root, stderr, stdout};

fn password_file(dir: &std::path::Path, password: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("onvif.password");
    std::fs::write(&path, format!("{password}\n")).unwrap();
    path.display().to_string()
}

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sited-onvif-{name}-{}", std::process::id()))
}

#[test]
fn discover_prints_an_entry_that_streams_once_pasted() {
    require_root!("ip");
    require_media!();
    let lab = Lab::new(&["camera"]);
    let cam = lab.peer("camera").v4.clone();
    let _rtsp = FakeCameras::start_in(Some(&lab.peer("camera").ns), &cam, 8554, &["cam1"]);
    let _onvif = FakeOnvif::start_in(
        &lab.peer("camera").ns,
        &[
            "--address",
            &cam,
            "--http-port",
            "8080",
            "--stream",
            "rtsp://{address}:8554/cam1",
            "--user",
            "onvif",
            "--password",
            "right",
            "--name",
            "Lobby Cam",
        ],
    );
    let dir = scratch("paste");
    let secret = password_file(&dir, "right");
    let (out, _) = discover(
        &lab.node,
        &[
            "--interface",
            "br0",
            "--window",
            "1.5",
            "--user",
            "onvif",
            "--password-file",
            &secret,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let parsed: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let cameras = parsed["cameras"].as_array().unwrap();
    assert_eq!(cameras.len(), 1, "the sub stream is commented out:\n{text}");
    let entry = cameras[0].as_table().unwrap();
    assert_eq!(entry["name"].as_str(), Some("lobby-cam"), "{text}");
    assert_eq!(
        entry["url"].as_str(),
        Some(format!("rtsp://{cam}:8554/cam1").as_str())
    );
    assert_eq!(entry["username"].as_str(), Some("onvif"));
    assert_eq!(entry["onvif_port"].as_integer(), Some(8080));
    assert!(text.contains("# name = \"lobby-cam-sub\""), "{text}");
    assert!(text.contains("Fake FakeCam-1, firmware 1.2.3"), "{text}");

    // Pasted into a site (the password placeholder pointed at a real file), it validates and streams.
    let (web, config) = (free_port(), free_port());
    let mut site = titop_site("onvif", web, config);
    let placeholder = entry["password_file"].as_str().unwrap();
    site.push_str(&format!("\n{}", text.replace(placeholder, &secret)));
    let site_path = dir.join("site.toml");
    std::fs::write(&site_path, &site).unwrap();
    let check = sited_tests::run(&["validate", site_path.to_str().unwrap()]);
    assert!(
        check.status.success(),
        "{}{}\n{site}",
        stdout(&check),
        stderr(&check)
    );
    let d = Daemon::start_in(
        &lab.node,
        "onvif-paste",
        &site,
        &["--firewall", "none", "--node", "n1"],
    );
    let url = format!("http://127.0.0.1:{web}/api/v1/cameras");
    let auth = format!("{}:{}", ADMIN.0, ADMIN.1);
    d.wait_for(
        "the pasted camera streaming",
        Duration::from_secs(30),
        || {
            let out = lab.try_exec(&lab.node, &["curl", "-s", "-u", &auth, &url]);
            let cams: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            cams.as_array()
                .into_iter()
                .flatten()
                .any(|c| c["name"] == "lobby-cam" && c["state"] == "streaming")
        },
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refused_and_missing_credentials_are_reported() {
    require_root!("ip");
    let lab = Lab::new(&["camera"]);
    let cam = lab.peer("camera").v4.clone();
    let _onvif = FakeOnvif::start_in(
        &lab.peer("camera").ns,
        &[
            "--address",
            &cam,
            "--http-port",
            "8080",
            "--user",
            "onvif",
            "--password",
            "right",
        ],
    );
    let dir = scratch("creds");
    let wrong = password_file(&dir, "wrong");
    let (out, _) = discover(
        &lab.node,
        &[
            "--interface",
            "br0",
            "--window",
            "1",
            "--user",
            "onvif",
            "--password-file",
            &wrong,
        ],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.contains(&format!("at {cam}"))
            && text.contains("# not usable: refused the credentials (Sender not Authorized)"),
        "{text}"
    );
    assert!(
        toml::from_str::<toml::Table>(&text)
            .unwrap()
            .get("cameras")
            .is_none()
    );

    let (out, _) = discover(
        &lab.node,
        &["--interface", "br0", "--window", "1", "--format", "json"],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let device = &report["devices"][0];
    assert_eq!(device["address"], cam.as_str());
    assert_eq!(device["problem"]["kind"], "needs_credentials", "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_flood_of_hostile_answers_leaves_discover_bounded() {
    require_root!("ip");
    let lab = Lab::new(&["camera", "rogue"]);
    let cam = lab.peer("camera").v4.clone();
    let _onvif = FakeOnvif::start_in(
        &lab.peer("camera").ns,
        &["--address", &cam, "--http-port", "8080", "--name", "Real"],
    );
    let rogue = lab.peer("rogue").v4.clone();
    let _rogue = FakeOnvif::start_in(&lab.peer("rogue").ns, &["--address", &rogue, "--hostile"]);
    let (out, took) = discover(
        &lab.node,
        &["--interface", "br0", "--window", "2", "--format", "json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The window, then every device asked within the overall deadline (12 s), and some slack.
    assert!(took < Duration::from_secs(2 + 12 + 4), "took {took:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let devices = report["devices"].as_array().unwrap();
    let real: Vec<_> = devices
        .iter()
        .filter(|d| d["address"] == cam.as_str())
        .collect();
    assert_eq!(real.len(), 1, "{report:#}");
    assert!(
        real[0]["problem"].is_null(),
        "the real camera is still asked: {:#}",
        real[0]
    );
    assert_eq!(real[0]["name"], "real");
    let from_rogue = devices
        .iter()
        .filter(|d| d["address"] == rogue.as_str())
        .count();
    assert!(
        from_rogue <= 4,
        "{from_rogue} devices kept from one rogue address"
    );
    assert!(
        devices
            .iter()
            .filter(|d| d["address"] == rogue.as_str())
            .all(|d| !d["problem"].is_null()),
        "{report:#}"
    );
    assert!(report["refused"].as_u64().unwrap() >= 3, "{report:#}");
}

#[test]
fn the_daemon_discovers_on_demand_and_tells_configured_cameras_apart() {
    require_root!("ip");
    let lab = Lab::new(&["camera", "other"]);
    let (cam, other) = (lab.peer("camera").v4.clone(), lab.peer("other").v4.clone());
    let _lobby = FakeOnvif::start_in(
        &lab.peer("camera").ns,
        &["--address", &cam, "--http-port", "8080", "--name", "Lobby"],
    );
    let _yard = FakeOnvif::start_in(
        &lab.peer("other").ns,
        &["--address", &other, "--http-port", "8080", "--name", "Yard"],
    );
    let (tls, api) = (free_port(), free_port());
    let site = format!(
        "[site]\nname = \"nova\"\nlayout = \"novavms\"\n\n[networks]\nclients = [\"192.0.2.0/24\"]\ncameras = [\"192.0.2.0/24\"]\n\n[[nodes]]\nname = \"n1\"\naddress = \"192.0.2.1\"\nroles = [\"application\", \"media\"]\n\n[[users]]\nname = \"{}\"\nrole = \"admin\"\npassword_hash = \"{}\"\n\n[[cameras]]\nname = \"lobby\"\nurl = \"rtsp://{cam}:8554/cam1\"\n\n[ports]\nweb_tls = {tls}\napi = {api}\n",
        ADMIN.0,
        sited_tests::daemon::admin_hash()
    );
    let d = Daemon::start_in(
        &lab.node,
        "onvif-api",
        &site,
        &["--firewall", "none", "--node", "n1"],
    );
    let auth = format!("{}:{}", ADMIN.0, ADMIN.1);
    let base = format!("http://127.0.0.1:{api}");
    d.wait_for("the API", Duration::from_secs(30), || {
        lab.try_exec(
            &lab.node,
            &[
                "curl",
                "-sf",
                "-u",
                &auth,
                &format!("{base}/api/v1/cameras"),
            ],
        )
        .status
        .success()
    });
    let out = lab.try_exec(
        &lab.node,
        &[
            "curl",
            "-s",
            "-u",
            &auth,
            "-X",
            "POST",
            "-d",
            "{\"window\": 1}",
            &format!("{base}/api/v1/discover"),
        ],
    );
    let found: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), d.log()));
    let devices = found["devices"].as_array().cloned().unwrap_or_default();
    let at = |a: &str| {
        devices
            .iter()
            .find(|d| d["address"] == a)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(at(&cam)["configured"], "lobby", "{found:#}");
    assert_eq!(at(&cam)["model"], "Fake FakeCam-1");
    assert_eq!(at(&cam)["firmware"], "1.2.3");
    assert!(at(&cam)["toml"].is_null());
    assert!(at(&other)["configured"].is_null(), "{found:#}");
    assert!(
        at(&other)["toml"]
            .as_str()
            .unwrap_or("")
            .contains("name = \"yard\""),
        "{found:#}"
    );

    // The Cameras page shows both: the configured camera's model, the new one's snippet.
    let page = lab.try_exec(
        &lab.node,
        &["curl", "-s", "-u", &auth, &format!("{base}/cameras")],
    );
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(
        page.contains("ONVIF: Fake FakeCam-1 1.2.3")
            && page.contains("Found, not configured")
            && page.contains("name = &quot;yard&quot;"),
        "{page}"
    );
}
