//! The reconcile suite: `sited run` as a real process, edited under its feet.
//!
//! Each test starts its own daemon with `--firewall none` on free ports. The site is Ti Top with
//! its web manager and config server moved to free ports by `[ports]`.

use std::time::Duration;

use sited_tests::daemon::{Daemon, KeepAlive, free_port, get, titop_site};

const T: Duration = Duration::from_secs(20);

fn start(name: &str, site: &str) -> Daemon {
    Daemon::start(
        name,
        Some(site),
        &["--firewall", "none", "--node", "n1", "--force-port-offset"],
    )
}

fn up(d: &Daemon, port: u16, site: &str) {
    d.wait_for(&format!("site {site} on port {port}"), T, || {
        get(port, "/api/v1/health").json()["site"] == site
    });
}

fn history(port: u16) -> Vec<serde_json::Value> {
    get(port, "/api/v1/config/history")
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_valid_edit_is_applied_and_recorded() {
    let (web, config, moved) = (free_port(), free_port(), free_port());
    let d = start("valid", &titop_site("one", web, config));
    up(&d, web, "one");
    std::fs::write(d.config(), titop_site("two", moved, config)).unwrap();
    up(&d, moved, "two");
    d.wait_for("the old port to close", T, || {
        get(web, "/api/v1/health").code == 0
    });
    let h = history(moved);
    assert_eq!(h[0]["outcome"], "applied", "{h:?}");
    assert_eq!(h[0]["trigger"], "file-change");
    assert!(
        h[0]["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("~ listener web tcp {web} -> web tcp {moved}")),
        "{}",
        h[0]["summary"]
    );
    assert_eq!(h.last().unwrap()["trigger"], "startup");
    let node = get(moved, "/api/v1/node").json();
    let states: Vec<(&str, &str)> = node["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["service"].as_str().unwrap(),
                l["state"].as_str().unwrap_or("failed"),
            )
        })
        .collect();
    assert!(
        states.contains(&("web", "serving"))
            && states.contains(&("rtmp", "serving"))
            && states.contains(&("vod", "serving"))
            && states.contains(&("engine_events", "in-process")),
        "{states:?}"
    );
}

#[test]
fn an_invalid_edit_keeps_the_last_good_plan_and_shows_the_error() {
    let (web, config) = (free_port(), free_port());
    let d = start("invalid", &titop_site("good", web, config));
    up(&d, web, "good");
    let before = get(web, "/api/v1/node").json()["listeners"].clone();
    std::fs::write(
        d.config(),
        titop_site("bad", web, config).replace("\"titop\"", "\"tittop\""),
    )
    .unwrap();
    d.wait_for("the invalid reload to show", T, || {
        get(web, "/api/v1/site").json()["last_reload"]["outcome"] == "invalid"
    });
    let site = get(web, "/api/v1/site").json();
    assert_eq!(
        site["site"]["name"], "good",
        "the last good site keeps running"
    );
    let d0 = &site["last_reload"]["diagnostics"][0];
    assert_eq!(
        (d0["code"].as_str(), d0["line"].as_u64()),
        (Some("unknown-value"), Some(3))
    );
    assert_eq!(
        get(web, "/api/v1/node").json()["listeners"],
        before,
        "listeners unchanged"
    );
    assert!(
        d.log().contains("error[unknown-value]"),
        "the diagnostics go to the log too"
    );
    assert_eq!(history(web)[0]["outcome"], "invalid");
}

#[test]
fn saving_by_rename_is_seen() {
    let (web, config) = (free_port(), free_port());
    let d = start("rename", &titop_site("before", web, config));
    up(&d, web, "before");
    let tmp = d.dir.join("etc/.site.toml.swp");
    std::fs::write(&tmp, titop_site("after", web, config)).unwrap();
    std::fs::rename(&tmp, d.config()).unwrap();
    up(&d, web, "after");
}

#[test]
fn rapid_edits_settle_on_the_last_one() {
    let (web, config) = (free_port(), free_port());
    let d = start("rapid", &titop_site("v0", web, config));
    up(&d, web, "v0");
    for i in 1..=20 {
        std::fs::write(d.config(), titop_site(&format!("v{i}"), web, config)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    up(&d, web, "v20");
    std::thread::sleep(Duration::from_secs(1));
    let h = history(web);
    assert!(
        h.len() < 10,
        "edits were debounced, not applied one by one: {} attempts",
        h.len()
    );
    assert_eq!(get(web, "/api/v1/health").json()["site"], "v20");
}

#[test]
fn sighup_reloads() {
    let (web, config) = (free_port(), free_port());
    let d = start("hup", &titop_site("same", web, config));
    up(&d, web, "same");
    d.signal("HUP");
    d.wait_for("the SIGHUP reload", T, || {
        history(web)
            .first()
            .is_some_and(|a| a["trigger"] == "sighup")
    });
    assert_eq!(history(web)[0]["outcome"], "unchanged");
}

#[test]
fn an_unchanged_listener_keeps_its_connections_across_a_reload() {
    let (web, config, other) = (free_port(), free_port(), free_port());
    let d = start("keep", &titop_site("k1", web, config));
    up(&d, web, "k1");
    let mut conn = KeepAlive::connect(web);
    assert_eq!(conn.health(), 200);
    // Move the config server only: the web listener must not be touched.
    std::fs::write(d.config(), titop_site("k2", web, other)).unwrap();
    d.wait_for("the reload", T, || {
        get(web, "/api/v1/health").json()["site"] == "k2"
    });
    assert_eq!(
        conn.health(),
        200,
        "the open connection to the unchanged listener survived"
    );
}

#[test]
fn a_restart_with_a_broken_file_runs_the_last_good_site() {
    let (web, config) = (free_port(), free_port());
    let mut d = start("restart", &titop_site("kept", web, config));
    up(&d, web, "kept");
    assert!(
        d.stop().is_some_and(|s| s.success()),
        "SIGTERM stops sited cleanly"
    );
    std::fs::write(d.config(), "[site\nthis is not toml").unwrap();
    d.spawn();
    up(&d, web, "kept");
    assert_eq!(
        get(web, "/api/v1/site").json()["last_reload"]["outcome"],
        "invalid"
    );
}

#[test]
fn without_a_site_file_the_node_is_unconfigured_and_says_what_to_do() {
    let d = Daemon::start(
        "unconfigured",
        None,
        &[
            "--firewall",
            "none",
            "--force-port-offset",
            "--port-offset",
            "20000",
        ],
    );
    d.wait_for("the unconfigured web UI", T, || {
        get(20080, "/api/v1/health").code == 200
    });
    assert_eq!(get(20080, "/api/v1/health").json()["configured"], false);
    assert!(d.log().contains("running unconfigured"));
}

#[test]
fn first_boot_imports_the_boot_partitions_file_once() {
    let (web, config) = (free_port(), free_port());
    let mut d = Daemon::unstarted(
        "boot",
        &["--firewall", "none", "--node", "n1", "--force-port-offset"],
    );
    std::fs::create_dir_all(d.dir.join("boot")).unwrap();
    std::fs::write(
        d.dir.join("boot/site.toml"),
        titop_site("flashed", web, config),
    )
    .unwrap();
    d.spawn();
    up(&d, web, "flashed");
    assert!(d.config().exists());
    let h = history(web);
    assert_eq!(h.last().unwrap()["outcome"], "imported");
}

#[test]
fn systemd_hears_ready_reloading_status_and_the_watchdog() {
    use std::os::unix::net::UnixDatagram;
    let (web, config) = (free_port(), free_port());
    let sock = std::env::temp_dir().join(format!("sited-notify-{}", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let listener = UnixDatagram::bind(&sock).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut d = Daemon::unstarted(
        "notify",
        &["--firewall", "none", "--node", "n1", "--force-port-offset"],
    );
    std::fs::write(d.config(), titop_site("notified", web, config)).unwrap();
    d.env = vec![
        ("NOTIFY_SOCKET".to_string(), sock.display().to_string()),
        ("WATCHDOG_USEC".to_string(), "400000".to_string()),
    ];
    d.spawn();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let mut read_until = |want: &str, seen: &mut String| {
        while !seen.contains(want) {
            let n = listener
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("no {want} from sited ({e}); got:\n{seen}"));
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            seen.push('\n');
        }
    };
    read_until("READY=1", &mut seen);
    assert!(seen.contains("STATUS=site notified node n1"), "{seen}");
    read_until("WATCHDOG=1", &mut seen);
    d.signal("HUP");
    read_until("RELOADING=1", &mut seen);
    assert!(seen.contains("MONOTONIC_USEC="), "{seen}");
    d.stop();
    read_until("STOPPING=1", &mut seen);
    let _ = std::fs::remove_file(&sock);
}

/// Issue 16 §2: state files were 0644 outside the unit's umask; they are the daemon's alone.
#[test]
fn state_files_are_readable_by_the_daemon_alone() {
    use std::os::unix::fs::PermissionsExt as _;
    let (web, config) = (free_port(), free_port());
    let d = start("modes", &titop_site("one", web, config));
    up(&d, web, "one");
    let state = d.dir.join("state");
    let mut seen = 0;
    let mut stack = vec![state.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{} is {:o}", path.display(), mode & 0o777);
            seen += 1;
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    assert!(seen > 0, "nothing in {}", state.display());
}

/// What curl prints of a response: its status line and headers, in lower case.
fn curl_head(args: &[&str]) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-D", "-", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).to_ascii_lowercase()
}

#[test]
fn a_listed_origin_may_read_live_vod_clip_and_api_responses_and_no_other() {
    let (web, config) = (free_port(), free_port());
    let (_, live) = sited_tests::daemon::live_ports(web);
    let vod = sited_tests::daemon::vod_port(web);
    let site = titop_site("cors", web, config).replacen(
        "layout = \"titop\"\n",
        "layout = \"titop\"\ncors_origins = [\"https://player.example\"]\n",
        1,
    );
    let d = start("cors", &site);
    up(&d, web, "cors");
    d.wait_for("the live port", T, || {
        get(live, "/api/v1/health").code == 200
    });
    let login = format!(
        "{}:{}",
        sited_tests::daemon::ADMIN.0,
        sited_tests::daemon::ADMIN.1
    );
    let range = "start=2026-01-01T00:00:00Z&end=2026-01-01T00:01:00Z";
    for url in [
        format!("http://127.0.0.1:{web}/api/v1/cameras"),
        format!("http://127.0.0.1:{web}/api/v1/cameras/door/clip.mp4?{range}"),
        format!("http://127.0.0.1:{live}/live/door/index.m3u8"),
        format!("http://127.0.0.1:{vod}/vod/door/index.m3u8?{range}"),
    ] {
        // The preflight of hls.js sending Authorization, answered before any login.
        let preflight = |origin: &str| {
            curl_head(&[
                "-X",
                "OPTIONS",
                "-H",
                &format!("Origin: {origin}"),
                "-H",
                "Access-Control-Request-Method: GET",
                "-H",
                "Access-Control-Request-Headers: authorization",
                &url,
            ])
        };
        let listed = preflight("https://player.example");
        assert!(listed.starts_with("http/1.1 204"), "{url}: {listed}");
        for header in [
            "access-control-allow-origin: https://player.example\r\n",
            "access-control-allow-credentials: true\r\n",
            "access-control-allow-methods: get, ",
            "access-control-allow-headers: authorization, ",
            "vary: origin\r\n",
        ] {
            assert!(listed.contains(header), "{url}: no {header:?} in {listed}");
        }
        let other = preflight("https://elsewhere.example");
        assert!(
            other.starts_with("http/1.1 403") && !other.contains("access-control-allow"),
            "{url}: {other}"
        );
        // The request itself: the listed origin may read the answer, whatever it is.
        let get_from =
            |origin: &str| curl_head(&["-u", &login, "-H", &format!("Origin: {origin}"), &url]);
        let listed = get_from("https://player.example");
        assert!(
            listed.contains("access-control-allow-origin: https://player.example\r\n")
                && listed.contains("access-control-allow-credentials: true\r\n")
                && listed.contains("vary: origin\r\n"),
            "{url}: {listed}"
        );
        let other = get_from("https://elsewhere.example");
        assert!(
            !other.contains("access-control-allow") && other.contains("vary: origin\r\n"),
            "{url}: {other}"
        );
    }
}

/// `sited push` over TLS (issue 12 §1, deploy from CI): the application node must prove it holds
/// the certificate given with `--ca` before any credential is sent; without `--ca`, or with
/// another certificate, nothing is sent. A dry run of a changed file exits 2, the push itself
/// applies it.
#[test]
fn push_over_https_proves_the_node_first() {
    let (web, config) = (free_port(), free_port());
    let site = titop_site("tls-push", web, config).replace(
        "layout = \"titop\"\n",
        "layout = \"titop\"\nssl = \"enabled\"\n",
    );
    let d = start("tls-push", &site);
    let health = || {
        let out = std::process::Command::new("curl")
            .args(["-sk", "--max-time", "2"])
            .arg(format!("https://localhost:{web}/api/v1/health"))
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default()
    };
    d.wait_for("the site over https", T, || health()["site"] == "tls-push");
    let edited = d.dir.join("edited.toml");
    // The config server on another port: a change of the plan. (Not another site name: that
    // would give the node a new self-signed certificate, which the old --ca no longer names.)
    let moved = free_port();
    let changed = site.replace(
        &format!("config_api = {config}\n"),
        &format!("config_api = {moved}\n"),
    );
    std::fs::write(&edited, &changed).unwrap();
    let ca = d.dir.join("state/tls/self-signed.crt");
    let push = |extra: &[&str]| {
        let out = std::process::Command::new(sited_tests::sited())
            .arg("push")
            .arg(&edited)
            .args(["--to", &format!("https://localhost:{web}")])
            .args(extra)
            .env("SITED_USER", sited_tests::daemon::ADMIN.0)
            .env("SITED_PASSWORD", sited_tests::daemon::ADMIN.1)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = push(&["--dry-run"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("needs --ca"), "{err}");
    // Another certificate than the node's: the TLS handshake fails, nothing is sent.
    let other = d.dir.join("other.crt");
    std::fs::write(
        &other,
        rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .unwrap()
            .cert
            .pem(),
    )
    .unwrap();
    let (code, err) = push(&["--dry-run", "--ca", other.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("localhost"), "{err}");
    let ca = ca.to_str().unwrap();
    let (code, err) = push(&["--dry-run", "--ca", ca]);
    assert_eq!(code, Some(2), "a dry run of a changed file: {err}");
    assert_eq!(health()["site"], "tls-push", "a dry run changes nothing");
    let (code, err) = push(&["--ca", ca]);
    assert_eq!(code, Some(0), "{err}");
    let (user, password) = sited_tests::daemon::ADMIN;
    let file = std::process::Command::new("curl")
        .args([
            "-sk",
            "--max-time",
            "5",
            "-u",
            &format!("{user}:{password}"),
        ])
        .arg(format!("https://localhost:{web}/api/v1/site/file"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&file.stdout), changed);
}
