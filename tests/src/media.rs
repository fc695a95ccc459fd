//! A daemon recording and streaming fake cameras, and ffprobe to read what it serves: the
//! set-up of the media and recording tests.

use std::collections::HashMap;
use std::time::Duration;

use crate::camera::FakeCameras;
use crate::daemon::{ADMIN, Daemon, free_port, get, titop_site};

/// How long a media test waits for a state.
pub const T: Duration = Duration::from_secs(30);

/// A daemon pulling fake cameras, as [`setup`] starts it.
pub struct Setup {
    /// The cameras.
    pub cams: FakeCameras,
    /// The daemon.
    pub daemon: Daemon,
    /// Its web port.
    pub web: u16,
    /// Its HTTP live port.
    pub live: u16,
}

/// Fake cameras and a daemon pulling them; cameras in `udp` are pulled over UDP, those in
/// `record` are recorded. Returns once every camera streams.
pub fn setup(name: &str, specs: &[&str], udp: &[&str], record: &[&str]) -> Setup {
    setup_with(name, specs, udp, record, "", None, &[])
}

/// [`setup`], with `extra` appended to the site file, the recordings on a tmpfs of
/// `tmpfs_mib` MiB in the daemon's own mount namespace (see [`Daemon::tmpfs`]), and more
/// arguments for `sited run`.
pub fn setup_with(
    name: &str,
    specs: &[&str],
    udp: &[&str],
    record: &[&str],
    extra: &str,
    tmpfs_mib: Option<u32>,
    args: &[&str],
) -> Setup {
    let cams = FakeCameras::start(specs);
    let (web, config) = (free_port(), free_port());
    let live = crate::daemon::live_ports(web).1;
    let mut site = titop_site(name, web, config);
    for spec in specs {
        let cam = spec.split(':').next().unwrap();
        let transport = if udp.contains(&cam) { "udp" } else { "tcp" };
        site.push_str(&format!(
            "\n[[cameras]]\nname = \"{cam}\"\nurl = \"{}\"\ntransport = \"{transport}\"\nrecord = {}\n",
            cams.url(cam),
            record.contains(&cam)
        ));
    }
    site.push_str(extra);
    let mut all = vec!["--firewall", "none", "--node", "n1", "--force-port-offset"];
    all.extend_from_slice(args);
    let mut daemon = Daemon::unstarted(name, &all);
    std::fs::write(daemon.config(), site).unwrap();
    daemon.tmpfs = tmpfs_mib.map(|m| (daemon.dir.join("state/recordings"), m));
    daemon.spawn();
    let s = Setup {
        cams,
        daemon,
        web,
        live,
    };
    for spec in specs {
        s.wait_state(spec.split(':').next().unwrap(), "streaming");
    }
    s
}

impl Setup {
    /// A camera's entry in `/api/v1/cameras`.
    pub fn state(&self, cam: &str) -> serde_json::Value {
        get(self.web, "/api/v1/cameras")
            .json()
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == cam)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until a camera is in `state`.
    pub fn wait_state(&self, cam: &str, state: &str) {
        self.daemon
            .wait_for(&format!("camera {cam} {state}"), T, || {
                self.state(cam)["state"] == state
            });
    }

    /// A URL of the live port, logged in with HTTP Basic.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}:{}@127.0.0.1:{}{path}",
            ADMIN.0, ADMIN.1, self.live
        )
    }
}

/// Decodes `input` with ffmpeg, `options` going before `-i`: whether it succeeded, and what it
/// printed (errors only).
pub fn decode(input: &str, options: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error"])
        .args(options)
        .args(["-i", input, "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Packets per stream (codec, width, height) and whether their timestamps only go forward.
pub fn probe(input: &str, seconds: u32) -> HashMap<String, (usize, bool, String)> {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-read_intervals",
            &format!("%+{seconds}"),
            "-show_entries",
            "stream=index,codec_name,width,height:packet=stream_index,dts_time",
            "-of",
            "compact=p=0:nk=0",
            input,
        ])
        .output()
        .expect("ffprobe");
    parse_probe(&String::from_utf8_lossy(&out.stdout))
}

/// Reads ffprobe's compact output: (codec size) → (packets, monotonic, index).
pub fn parse_probe(text: &str) -> HashMap<String, (usize, bool, String)> {
    let mut codecs: HashMap<String, String> = HashMap::new();
    let mut packets: HashMap<String, (usize, bool, f64)> = HashMap::new();
    for line in text.lines() {
        let kv: HashMap<&str, &str> = line.split('|').filter_map(|f| f.split_once('=')).collect();
        if let Some(codec) = kv.get("codec_name") {
            let size = format!(
                "{}x{}",
                kv.get("width").unwrap_or(&"0"),
                kv.get("height").unwrap_or(&"0")
            );
            codecs.insert(kv["index"].to_string(), format!("{codec} {size}"));
        } else if let (Some(i), Some(t)) = (
            kv.get("stream_index"),
            kv.get("dts_time").and_then(|t| t.parse::<f64>().ok()),
        ) {
            let e = packets.entry(i.to_string()).or_insert((0, true, f64::MIN));
            e.0 += 1;
            e.1 &= t >= e.2;
            e.2 = t;
        }
    }
    codecs
        .into_iter()
        .map(|(i, c)| {
            let (n, mono, _) = packets.get(&i).copied().unwrap_or((0, true, 0.0));
            (c, (n, mono, i))
        })
        .collect()
}
