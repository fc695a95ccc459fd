//! One site of three nodes, each a `sited` process in its own network namespace on one bridge:
//! an application node and two media nodes. The site file is edited on the application node
//! only; the media nodes receive every version over their node link and report back.
//!
//! Privileged: skipped with a reason unless run as root.

use std::process::Output;
use std::time::Duration;

use sited_tests::camera::FakeCameras;
use sited_tests::daemon::{ADMIN, Daemon, admin_hash};
use sited_tests::netns::Lab;
use sited_tests::require_root;

const T: Duration = Duration::from_secs(40);
const WEB: u16 = 8088;
/// The fake cameras' RTSP port, in each media node's namespace.
const CAMERA: u16 = 8654;

fn site(lab: &Lab, cameras: &str) -> String {
    site_of(lab, "titop", cameras)
}

fn site_of(lab: &Lab, layout: &str, cameras: &str) -> String {
    let (m1, m2) = (&lab.peer("media-1").v4, &lab.peer("media-2").v4);
    format!(
        r#"[site]
name = "campus"
layout = "{layout}"

[networks]
clients = ["192.0.2.0/24"]
cameras = ["198.51.100.0/24"]

[[nodes]]
name = "app"
address = "192.0.2.1"
roles = ["application"]

[[nodes]]
name = "media-1"
address = "{m1}"
roles = ["media"]

[[nodes]]
name = "media-2"
address = "{m2}"
roles = ["media"]

[[users]]
name = "{}"
role = "admin"
password_hash = "{}"
{cameras}"#,
        ADMIN.0,
        admin_hash()
    )
}

/// curl in the application node's namespace, against its web port.
fn curl(lab: &Lab, args: &[&str]) -> Output {
    curl_at(lab, &format!("http://192.0.2.1:{WEB}"), args)
}

/// curl in the application node's namespace, against `base` (TLS unchecked).
fn curl_at(lab: &Lab, base: &str, args: &[&str]) -> Output {
    let url_last = args.last().copied().unwrap_or("/");
    let url = format!("{base}{url_last}");
    let user = format!("{}:{}", ADMIN.0, ADMIN.1);
    let mut all = vec!["curl", "-s", "-k", "-i", "-u", &user];
    all.extend(&args[..args.len() - 1]);
    all.push(&url);
    lab.try_exec(&lab.node, &all)
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn nodes(lab: &Lab) -> serde_json::Value {
    body_json(&curl(lab, &["/api/v1/nodes"]))
}

fn body_json(o: &Output) -> serde_json::Value {
    text(o)
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or_default()
}

fn etag(lab: &Lab) -> String {
    text(&curl(lab, &["/api/v1/site/file"]))
        .lines()
        .find_map(|l| {
            l.strip_prefix("etag: ")
                .or_else(|| l.strip_prefix("ETag: "))
        })
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn put(lab: &Lab, body: &str, if_match: &str) -> String {
    let file = std::env::temp_dir().join(format!("sited-put-{}.toml", std::process::id()));
    std::fs::write(&file, body).unwrap();
    let data = format!("@{}", file.display());
    let header = format!("If-Match: {if_match}");
    text(&curl(
        lab,
        &[
            "-X",
            "PUT",
            "-H",
            &header,
            "--data-binary",
            &data,
            "/api/v1/site",
        ],
    ))
}

fn all_applied(lab: &Lab, version: &str) -> bool {
    all_applied_in(nodes(lab), version)
}

fn all_applied_in(n: serde_json::Value, version: &str) -> bool {
    n["rollout"]["version"].as_str() == Some(version)
        && n["rollout"]["applied"] == 3
        && n["rollout"]["of"] == 3
}

fn start(lab: &Lab, ns: &str, name: &str, site: &str, secret: &str) -> Daemon {
    // The lab's namespace names one test's daemons apart from another's.
    let mut d = Daemon::unstarted(
        &format!("{}-{name}", lab.node),
        &["--node", name, "--firewall", "none"],
    );
    d.netns = Some(ns.to_string());
    // What the installer flashed: the same first site file and the site secret on every node.
    std::fs::write(d.config(), site).unwrap();
    std::fs::write(d.config().with_file_name("site.secret"), secret).unwrap();
    d.spawn();
    d
}

#[test]
fn an_edit_on_the_application_node_reaches_every_node() {
    require_root!("ip", "curl");
    let lab = Lab::new(&["media-1", "media-2"]);
    let secret = "ab".repeat(32);
    let first = site(&lab, "");
    let app = start(&lab, &lab.node, "app", &first, &secret);
    let m1 = start(&lab, &lab.peer("media-1").ns, "media-1", &first, &secret);
    let mut m2 = start(&lab, &lab.peer("media-2").ns, "media-2", &first, &secret);
    let v1 = sited::base::hex::sha256(first.as_bytes());
    app.wait_for("every node on the first version", T, || {
        all_applied(&lab, &v1)
    });
    let n = nodes(&lab);
    assert_eq!(
        n["rollout"]["text"].as_str().unwrap(),
        format!("version {} applied on 3 of 3 nodes", &v1[..12])
    );

    // A stale If-Match is refused, and so is an invalid file; nothing changes anywhere.
    let second = site(
        &lab,
        "\n[[cameras]]\nname = \"gate\"\nurl = \"rtsp://198.51.100.40/main\"\nnode = \"media-2\"\n",
    );
    let stale = put(&lab, &second, "\"0000\"");
    assert!(stale.starts_with("HTTP/1.1 409"), "{stale}");
    let invalid = put(&lab, "[site]\nname = 7\n", &etag(&lab));
    assert!(invalid.starts_with("HTTP/1.1 422"), "{invalid}");
    assert!(invalid.contains("diagnostics"), "{invalid}");
    let missing = put(&lab, &second, "");
    assert!(missing.starts_with("HTTP/1.1 428"), "{missing}");
    assert!(all_applied(&lab, &v1), "{}", nodes(&lab));

    // A good edit with the version in force reaches both media nodes.
    let ok = put(&lab, &second, &etag(&lab));
    assert!(ok.starts_with("HTTP/1.1 202"), "{ok}");
    let v2 = sited::base::hex::sha256(second.as_bytes());
    app.wait_for("every node on the second version", T, || {
        all_applied(&lab, &v2)
    });
    assert_eq!(
        std::fs::read_to_string(m2.config()).unwrap(),
        second,
        "media-2 runs the application node's file"
    );

    // A local edit on a media node does not apply: it is put back.
    std::fs::write(m1.config(), site(&lab, "# local\n")).unwrap();
    m1.wait_for("the local edit to be put back", T, || {
        std::fs::read_to_string(m1.config()).unwrap() == second && m1.log().contains("diverged")
    });

    // A media node cut off keeps running; it catches up when it comes back.
    m2.stop();
    let third = site(
        &lab,
        "\n[[cameras]]\nname = \"gate\"\nurl = \"rtsp://198.51.100.40/sub\"\nnode = \"media-2\"\n",
    );
    let ok = put(&lab, &third, &etag(&lab));
    assert!(ok.starts_with("HTTP/1.1 202"), "{ok}");
    let v3 = sited::base::hex::sha256(third.as_bytes());
    app.wait_for("media-2 offline", T, || {
        let n = nodes(&lab);
        n["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "media-2" && x["online"] == false)
            && n["rollout"]["applied"] == 2
    });
    m2.spawn();
    app.wait_for("media-2 back on the newest version", T, || {
        all_applied(&lab, &v3)
    });
    drop(m1);
}

#[test]
fn a_node_with_the_wrong_secret_is_refused() {
    require_root!("ip", "curl");
    let lab = Lab::new(&["media-1", "media-2"]);
    let first = site(&lab, "");
    let app = start(&lab, &lab.node, "app", &first, &"ab".repeat(32));
    let intruder = start(
        &lab,
        &lab.peer("media-1").ns,
        "media-1",
        &first,
        &"cd".repeat(32),
    );
    app.wait_for("the link to be refused", T, || {
        app.log().contains("refused a node link")
    });
    intruder.wait_for("the intruder to see itself refused", T, || {
        intruder.log().contains("does not hold this site's secret")
    });
    let n = nodes(&lab);
    let m1 = n["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "media-1")
        .unwrap()
        .clone();
    assert_eq!(m1["online"], false, "{n}");
}

/// NovaVMS: the application node (the cloud server) serves every camera of the site through
/// its own outputs, relaying the cameras the gateways ingest: one stream per camera from the
/// gateway, whatever the number of viewers.
#[test]
fn every_camera_of_the_site_plays_through_the_application_node() {
    require_root!("ip", "curl", "ffprobe", "ffmpeg");
    sited_tests::require_media!();
    let lab = Lab::new(&["media-1", "media-2"]);
    let ns = |p: &str| lab.peer(p).ns.clone();
    let _yard = FakeCameras::start_in(Some(&ns("media-1")), "127.0.0.1", CAMERA, &["yard"]);
    let _gate = FakeCameras::start_in(Some(&ns("media-2")), "127.0.0.1", CAMERA, &["gate"]);
    let cameras = format!(
        "\n[[cameras]]\nname = \"yard\"\nurl = \"rtsp://127.0.0.1:{CAMERA}/yard\"\nnode = \"media-1\"\n\n[[cameras]]\nname = \"gate\"\nurl = \"rtsp://127.0.0.1:{CAMERA}/gate\"\nnode = \"media-2\"\n"
    );
    let first = site_of(&lab, "novavms", &cameras);
    let secret = "ab".repeat(32);
    let app = start(&lab, &lab.node, "app", &first, &secret);
    let _m1 = start(&lab, &ns("media-1"), "media-1", &first, &secret);
    let _m2 = start(&lab, &ns("media-2"), "media-2", &first, &secret);
    let web = "https://192.0.2.1:443";
    let api = |path: &str| body_json(&curl_at(&lab, web, &[path]));
    let v1 = sited::base::hex::sha256(first.as_bytes());
    app.wait_for("every node on the first version", T, || {
        all_applied_in(api("/api/v1/nodes"), &v1)
    });

    // The application node lists every camera, with the node that ingests it and its state.
    app.wait_for("both cameras streaming on their nodes", T, || {
        let list = api("/api/v1/cameras");
        let state = |name: &str| {
            list.as_array()
                .into_iter()
                .flatten()
                .find(|c| c["name"] == name)
                .map(|c| (c["node"].clone(), c["state"].clone()))
        };
        state("yard") == Some(("media-1".into(), "streaming".into()))
            && state("gate") == Some(("media-2".into(), "streaming".into()))
    });

    // A camera of media-2 decodes through the application node's RTSP server and HTTP-FLV.
    let token = body_json(&curl_at(&lab, web, &["-X", "POST", "/api/v1/tokens"]))["token"]
        .as_str()
        .expect("a token")
        .to_string();
    let rtsp = format!("rtsp://{}:{}@192.0.2.1:8554/gate", ADMIN.0, ADMIN.1);
    let flv = format!("{web}/live/gate.flv?token={token}");
    for (input, options) in [(&rtsp, &["-rtsp_transport", "tcp"][..]), (&flv, &[][..])] {
        let mut args = vec!["ffprobe", "-v", "error"];
        args.extend(options);
        args.extend([
            "-read_intervals",
            "%+3",
            "-show_entries",
            "stream=codec_name:packet=stream_index",
            "-of",
            "csv=p=0",
            input.as_str(),
        ]);
        let out = lab.try_exec(&lab.node, &args);
        let printed = text(&out);
        let packets = printed
            .lines()
            .filter(|l| l.trim().trim_end_matches(',') == "0")
            .count();
        assert!(
            printed.contains("h264") && packets > 10,
            "{input}: {packets} packets\n{printed}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Two viewers on the application node: one relay from media-2.
    let metric = |name: &str| -> u64 {
        let out = text(&curl_at(&lab, web, &["/metrics"]));
        out.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    let relay = "{camera=\"gate\",node=\"media-2\"}";
    let opened = metric("sited_relays_opened_total");
    let active = metric(&format!("sited_relay_active{relay}"));
    let viewers: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new("ip")
                .args(["netns", "exec", &lab.node, "ffmpeg", "-v", "error"])
                .args([
                    "-rtsp_transport",
                    "tcp",
                    "-i",
                    &rtsp,
                    "-t",
                    "20",
                    "-f",
                    "null",
                    "-",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("ffmpeg")
        })
        .collect();
    app.wait_for("two viewers of the relayed camera", T, || {
        metric(&format!("sited_relay_readers{relay}")) == 2
    });
    assert_eq!(metric(&format!("sited_relay_active{relay}")), 1);
    assert_eq!(
        metric("sited_relays_opened_total"),
        opened + u64::from(active == 0),
        "one relay for both viewers"
    );
    let listed = api("/api/v1/cameras");
    let gate = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "gate")
        .unwrap();
    assert_eq!(gate["relay"]["readers"], 2, "{gate}");
    for mut v in viewers {
        let _ = v.kill();
        let _ = v.wait();
    }
}
