//! A `sited run` child process for the black-box daemon tests, with its own site file, state
//! directory and ports, and a small HTTP client to talk to it.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The admin of every test site, and its password.
pub const ADMIN: (&str, &str) = ("admin", "sited-test");

/// A free TCP port on loopback (released at once; a test binds it soon after).
///
/// It is drawn from 20000-32767, below the kernel's ephemeral range (32768-60999): the source
/// ports of the many connections tests and players open come from that range, and one of them
/// could take a listener's port between this check and the daemon's bind. Each test process
/// walks its own sequence, from its pid, and never hands the same port out twice.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_768;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919);
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + start.wrapping_add(n.wrapping_mul(131)) % SPAN) as u16;
        let free = TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if free {
            return port;
        }
    }
    panic!("no free port in 20000-32767")
}

/// The argon2 hash of the test admin's password.
pub fn admin_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let mut child = Command::new(crate::sited())
            .arg("hash-password")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ADMIN.1.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
    .clone()
}

/// The RTMP and HTTP-live ports of the test site whose web port is `web`: free ports, chosen
/// once per web port, so that every edit of one test's site keeps them.
pub fn live_ports(web: u16) -> (u16, u16) {
    let (rtmp, live, _) = media_ports(web);
    (rtmp, live)
}

/// The VOD port of the test site whose web port is `web` (Ti Top's 8086, moved).
pub fn vod_port(web: u16) -> u16 {
    media_ports(web).2
}

/// The (RTMP, HTTP-live, VOD) ports picked for each web port.
type MediaPorts = std::sync::Mutex<std::collections::HashMap<u16, (u16, u16, u16)>>;

fn media_ports(web: u16) -> (u16, u16, u16) {
    static PORTS: std::sync::OnceLock<MediaPorts> = std::sync::OnceLock::new();
    let mut map = PORTS.get_or_init(Default::default).lock().unwrap();
    *map.entry(web)
        .or_insert_with(|| (free_port(), free_port(), free_port()))
}

/// A Ti Top site whose web listener is on `web` and config server on `config`, with a name;
/// its RTMP and HTTP-live ports are [`live_ports`], its VOD port [`vod_port`].
pub fn titop_site(name: &str, web: u16, config: u16) -> String {
    let (rtmp, live, vod) = media_ports(web);
    format!(
        "[site]\nname = \"{name}\"\nlayout = \"titop\"\n\n[networks]\nclients = [\"192.0.2.0/24\"]\n\n[[nodes]]\nname = \"n1\"\naddress = \"192.0.2.1\"\nroles = [\"application\", \"media\"]\n\n[[users]]\nname = \"{}\"\nrole = \"admin\"\npassword_hash = \"{}\"\n\n[ports]\nweb = {web}\nconfig_api = {config}\nrtmp = {rtmp}\nhttp_live = {live}\nvod = {vod}\n",
        ADMIN.0,
        admin_hash()
    )
}

/// A running daemon.
pub struct Daemon {
    /// The child process.
    pub child: Option<Child>,
    /// Its folder: `etc/site.toml`, `state/`, `log`.
    pub dir: PathBuf,
    /// Extra arguments it was started with.
    pub args: Vec<String>,
    /// Extra environment, for the child only. With `WATCHDOG_USEC`, `WATCHDOG_PID` is set to
    /// the child's own pid, as systemd does.
    pub env: Vec<(String, String)>,
    /// The network namespace to run in, if any.
    pub netns: Option<String>,
    /// A tmpfs of this many MiB mounted on this folder in a mount namespace of the daemon's own
    /// (`unshare -m`: it vanishes with the process), e.g. a small recordings disk. Needs root;
    /// the test sees it at [`Daemon::private_path`].
    pub tmpfs: Option<(PathBuf, u32)>,
}

impl Daemon {
    /// Writes `site` and starts `sited run` on it; does not wait for it.
    pub fn start(name: &str, site: Option<&str>, args: &[&str]) -> Daemon {
        let mut d = Daemon::unstarted(name, args);
        if let Some(site) = site {
            std::fs::write(d.config(), site).unwrap();
        }
        d.spawn();
        d
    }

    /// Writes `site` and starts `sited run` on it in a network namespace.
    pub fn start_in(netns: &str, name: &str, site: &str, args: &[&str]) -> Daemon {
        let mut d = Daemon::unstarted(name, args);
        d.netns = Some(netns.to_string());
        std::fs::write(d.config(), site).unwrap();
        d.spawn();
        d
    }

    /// A daemon in its own folder, not started yet (`spawn` starts it).
    pub fn unstarted(name: &str, args: &[&str]) -> Daemon {
        let dir = std::env::temp_dir().join(format!("sited-daemon-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        Daemon {
            child: None,
            dir,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            netns: None,
            tmpfs: None,
        }
    }

    /// Starts the process (again).
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("log"))
            .unwrap();
        // Through sh, so that `WATCHDOG_PID=$$` is the pid sited will have after `exec`.
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "sh"]);
                c
            }
            None => Command::new("sh"),
        };
        let mut script = String::from("export WATCHDOG_PID=$$; exec \"$0\" \"$@\"");
        if let Some((dir, mib)) = &self.tmpfs {
            cmd = Command::new("unshare");
            cmd.args(["-m", "--propagation", "private", "sh"]);
            script = format!(
                "mkdir -p '{0}' && mount -t tmpfs -o size={mib}m sited-test '{0}' && {script}",
                dir.display()
            );
        }
        let child = cmd
            .args(["-c", &script])
            .arg(crate::sited())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(["run", "--config"])
            .arg(self.dir.join("etc/site.toml"))
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .arg("--boot-dir")
            .arg(self.dir.join("boot"))
            .args(&self.args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start sited run");
        self.child = Some(child);
    }

    /// The site file.
    pub fn config(&self) -> PathBuf {
        self.dir.join("etc/site.toml")
    }

    /// Where the test sees `path` as the daemon does, through its mount namespace.
    pub fn private_path(&self, path: &std::path::Path) -> PathBuf {
        let pid = self.child.as_ref().map_or(0, Child::id);
        PathBuf::from(format!("/proc/{pid}/root")).join(path.strip_prefix("/").unwrap_or(path))
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Sends a signal.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        Command::new("kill")
            .args(["-s", sig, &pid])
            .status()
            .unwrap();
    }

    /// Stops the process with SIGTERM and waits for it.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-s", "TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// Waits until `check` holds, or panics with the daemon's log.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "timed out waiting for {what}; the daemon logged:\n{}",
            self.log()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A response: status code and body.
#[derive(Debug)]
pub struct Response {
    /// The status code; 0 when nothing answered.
    pub code: u16,
    /// The body.
    pub body: String,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

fn basic_header() -> String {
    use base64::Engine as _;
    format!(
        "Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", ADMIN.0, ADMIN.1))
    )
}

/// A GET on its own connection, logged in as the test admin.
pub fn get(port: u16, path: &str) -> Response {
    request(port, "GET", path, "")
}

/// A POST on its own connection, logged in as the test admin.
pub fn post(port: u16, path: &str, body: &str) -> Response {
    request(port, "POST", path, body)
}

fn request(port: u16, method: &str, path: &str, body: &str) -> Response {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return Response {
            code: 0,
            body: String::new(),
        };
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        basic_header(),
        body.len()
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    parse(&out)
}

fn parse(raw: &str) -> Response {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    Response {
        code: head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        body: body.to_string(),
    }
}

/// A kept-alive connection, for checking that a listener survives a reload.
pub struct KeepAlive(TcpStream);

impl KeepAlive {
    /// Connects.
    pub fn connect(port: u16) -> KeepAlive {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        KeepAlive(s)
    }

    /// One GET of `/api/v1/health` on this connection; returns the status code.
    pub fn health(&mut self) -> u16 {
        if write!(self.0, "GET /api/v1/health HTTP/1.1\r\nHost: t\r\n\r\n").is_err() {
            return 0;
        }
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        loop {
            let n = match self.0.read(&mut buf) {
                Ok(0) | Err(_) => return 0,
                Ok(n) => n,
            };
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    return parse(&text).code;
                }
            }
        }
    }
}
