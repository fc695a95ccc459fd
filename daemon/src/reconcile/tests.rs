//! Unit tests of one reconcile attempt, with fake drivers: no root, no nft, no cameras.
//!
//! The site is Ti Top's, on one node, with every listener moved to a free port on loopback.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Daemon, Drivers, FirewallMode, RunConfig};
use crate::base::Error;
use crate::catalog::Service;
use crate::firewall::apply::{Driver, Resolver};
use crate::state::ListenerState;
use crate::store::Trigger;

/// A firewall that records what it is told; when `mismatch` is set, the table it reads back
/// is empty, as if the kernel had lost the new one.
#[derive(Default)]
struct FakeFirewall {
    mismatch: AtomicBool,
    scripts: Mutex<Vec<String>>,
}

impl Driver for FakeFirewall {
    fn check(&self, _: &str) -> Result<(), Error> {
        Ok(())
    }
    fn run(&self, script: &str) -> Result<(), Error> {
        self.scripts.lock().unwrap().push(script.to_string());
        Ok(())
    }
    fn live_text(&self) -> Result<Option<String>, Error> {
        Ok(Some("table inet sited {}\n".into()))
    }
    fn live_json(&self) -> Result<Option<Value>, Error> {
        Ok(Some(serde_json::json!({"nftables": []})))
    }
    fn changes_system(&self) -> bool {
        self.mismatch.load(Ordering::Relaxed)
    }
}

/// A resolver that counts its calls and resolves nothing.
#[derive(Default)]
struct FakeResolver(AtomicUsize);

impl Resolver for FakeResolver {
    fn resolve(&self, _: &str) -> Vec<std::net::IpAddr> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Vec::new()
    }
}

/// A camera that connects to nothing: its session waits until it is stopped.
struct Idle;

impl crate::media::ingest::Opener for Idle {
    fn session<'a>(
        &'a self,
        _: &'a crate::config::Camera,
        _: Option<&'a str>,
        _: &'a crate::media::hub::Hub,
        _: &'a crate::media::ingest::Statuses,
        stop: &'a CancellationToken,
    ) -> futures_util::future::BoxFuture<'a, Result<bool, crate::base::Error>> {
        Box::pin(async move {
            stop.cancelled().await;
            Ok(false)
        })
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Harness {
    dir: PathBuf,
    daemon: Daemon,
    firewall: Arc<FakeFirewall>,
    ports: Vec<(Service, u16)>,
}

impl Harness {
    fn new(name: &str) -> Harness {
        let dir =
            std::env::temp_dir().join(format!("sited-reconcile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let firewall = Arc::new(FakeFirewall::default());
        let cfg = RunConfig {
            config: dir.join("site.toml"),
            node: Some("streamer".into()),
            node_file: dir.join("node"),
            state_dir: dir.join("state"),
            firewall: FirewallMode::Nft,
            boot_dir: dir.join("boot"),
            port_offset: 0,
            debounce: Duration::from_millis(10),
            segment: Duration::from_secs(60),
            retention: Duration::from_secs(60),
        };
        let drivers = Drivers {
            firewall: Some(firewall.clone()),
            resolver: Arc::new(FakeResolver::default()),
        };
        let (mut daemon, _) = Daemon::with_drivers(cfg, CancellationToken::new(), drivers).unwrap();
        daemon.cameras.opener = Arc::new(Idle);
        let ports = [
            Service::Web,
            Service::ConfigApi,
            Service::NodeApi,
            Service::Rtmp,
            Service::HttpLive,
            Service::Vod,
        ]
        .into_iter()
        .map(|s| (s, free_port()))
        .collect();
        Harness {
            dir,
            daemon,
            firewall,
            ports,
        }
    }

    fn port(&self, service: Service) -> u16 {
        self.ports.iter().find(|(s, _)| *s == service).unwrap().1
    }

    /// Writes the site file, with `camera_url` for its one camera.
    fn write(&self, camera_url: &str, extra: &str) {
        let ports: String = self
            .ports
            .iter()
            .map(|(s, p)| format!("{} = {p}\n", s.name()))
            .collect();
        let text = format!(
            r#"[site]
name = "studio"
layout = "titop"

[networks]
clients = ["192.0.2.0/24"]
cameras = ["198.51.100.0/24"]

[[nodes]]
name = "streamer"
address = "127.0.0.1"
roles = ["application", "media"]

[[cameras]]
name = "stage"
url = "{camera_url}"
{extra}
[ports]
{ports}"#
        );
        std::fs::write(&self.daemon.cfg.config, text).unwrap();
    }

    fn last(&self) -> (String, String) {
        let s = self.daemon.status.read().unwrap();
        let last = s.last.as_ref().unwrap();
        (last.outcome.clone(), last.summary.clone())
    }

    fn version(&self) -> Option<String> {
        let s = self.daemon.status.read().unwrap();
        s.version.as_ref().map(|v| v.sha256.clone())
    }

    fn firewall_runs(&self) -> usize {
        self.firewall.scripts.lock().unwrap().len()
    }

    fn listener(&self, service: Service) -> ListenerState {
        let s = self.daemon.status.read().unwrap();
        s.listeners
            .values()
            .find(|l| l.service == service)
            .unwrap()
            .state
            .clone()
    }

    async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.daemon.listeners.stop_all();
        self.daemon.cameras.stop_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn the_first_attempt_applies_everything_and_an_invalid_file_changes_nothing() {
    let mut h = Harness::new("invalid");
    h.write("rtsp://198.51.100.30/main", "");
    h.daemon.reconcile(Trigger::Startup).await;
    let (outcome, summary) = h.last();
    assert_eq!(outcome, "applied", "{summary}");
    assert!(summary.contains("replace the firewall table"), "{summary}");
    assert!(summary.contains("start camera stage"), "{summary}");
    assert_eq!(h.firewall_runs(), 1);
    let version = h.version();
    h.settle().await;
    assert_eq!(h.listener(Service::Web), ListenerState::Serving);

    std::fs::write(&h.daemon.cfg.config, "[site]\nname = 7\n").unwrap();
    h.daemon.reconcile(Trigger::FileChange).await;
    assert_eq!(h.last().0, "invalid");
    assert_eq!(
        h.firewall_runs(),
        1,
        "an invalid file never reaches the firewall"
    );
    assert_eq!(h.version(), version, "the last good version stays in force");
    assert_eq!(h.listener(Service::Web), ListenerState::Serving);
}

#[tokio::test]
async fn a_failed_firewall_apply_restores_and_leaves_the_rest_running() {
    let mut h = Harness::new("firewall");
    h.write("rtsp://198.51.100.30/main", "");
    h.daemon.reconcile(Trigger::Startup).await;
    let version = h.version();
    h.firewall.mismatch.store(true, Ordering::Relaxed);
    // Another client network and another camera: the firewall must be replaced first, and
    // its failure must stop the camera's restart too.
    h.write("rtsp://198.51.100.30/sub", "");
    let text = std::fs::read_to_string(&h.daemon.cfg.config).unwrap();
    std::fs::write(
        &h.daemon.cfg.config,
        text.replace("192.0.2.0/24", "192.0.2.0/25"),
    )
    .unwrap();
    h.daemon.reconcile(Trigger::FileChange).await;
    let (outcome, summary) = h.last();
    assert_eq!(outcome, "failed", "{summary}");
    assert!(summary.contains("previous table was restored"), "{summary}");
    let scripts = h.firewall.scripts.lock().unwrap().clone();
    assert!(
        scripts.last().unwrap().contains("delete table inet sited"),
        "the previous table was put back: {scripts:?}"
    );
    let s = h.daemon.status.read().unwrap();
    assert_eq!(s.firewall.error_kind.as_deref(), Some("firewall-mismatch"));
    assert_eq!(
        s.firewall_failures_by_kind.get("firewall-mismatch"),
        Some(&1)
    );
    drop(s);
    assert_eq!(h.version(), version);
    let running = h.daemon.current.as_ref().unwrap();
    assert_eq!(
        running.plan.cameras[0].url.as_str(),
        "rtsp://198.51.100.30/main"
    );
}

#[tokio::test]
async fn a_listener_whose_bind_fails_shows_failed_and_the_others_serve() {
    let mut h = Harness::new("bind");
    let _taken = TcpListener::bind(("0.0.0.0", h.port(Service::Vod))).unwrap();
    h.write("rtsp://198.51.100.30/main", "");
    h.daemon.reconcile(Trigger::Startup).await;
    h.settle().await;
    assert!(
        matches!(h.listener(Service::Vod), ListenerState::Failed { ref error, .. } if error.contains("cannot bind")),
        "{:?}",
        h.listener(Service::Vod)
    );
    assert_eq!(h.listener(Service::Web), ListenerState::Serving);
    assert_eq!(h.last().0, "applied");
}

#[tokio::test]
async fn a_camera_only_edit_restarts_that_camera_and_touches_nothing_else() {
    let mut h = Harness::new("camera");
    h.write("rtsp://198.51.100.30/main", "");
    h.daemon.reconcile(Trigger::Startup).await;
    h.write("rtsp://198.51.100.30/sub", "");
    h.daemon.reconcile(Trigger::FileChange).await;
    let (outcome, summary) = h.last();
    assert_eq!(outcome, "applied");
    assert!(
        summary.ends_with("actions:\n  restart camera stage\n"),
        "{summary}"
    );
    assert_eq!(h.firewall_runs(), 1, "the firewall did not change");
}

#[tokio::test]
async fn a_no_op_edit_does_nothing() {
    let mut h = Harness::new("noop");
    h.write("rtsp://198.51.100.30/main", "");
    h.daemon.reconcile(Trigger::Startup).await;
    h.daemon.reconcile(Trigger::FileChange).await;
    assert_eq!(h.last().0, "unchanged", "the same bytes");
    h.write("rtsp://198.51.100.30/main", "# a comment\n");
    h.daemon.reconcile(Trigger::FileChange).await;
    let (outcome, summary) = h.last();
    assert_eq!(outcome, "applied");
    assert!(summary.ends_with("actions:\nnothing to do\n"), "{summary}");
    assert_eq!(h.firewall_runs(), 1);
}
