//! The daemon: reconcile the node with its site file at start, on every change and on SIGHUP.
//!
//! Each attempt reads the file, checks it, plans this node, diffs the plan with the one in force,
//! and applies only the difference: the firewall is replaced (one transaction) only if it
//! changed, a listener is rebound only if its port, address or TLS changed. Everything fallible
//! comes before the first change (TLS material before the firewall, the firewall before the
//! listeners), so a failed attempt leaves the last good plan running. Every attempt is recorded
//! in the config history. The last good file is kept in `<state-dir>/last-good.toml`, so that a
//! restart with a broken file still runs the last good site.

pub mod boot;
pub mod listeners;
pub mod node;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ipnet::IpNet;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Source};
use crate::firewall::apply::{self as fw, Driver, Nft, SystemResolver};
use crate::plan::{self, Plan, diff};
use crate::state::{FirewallStatus, LastReload, Shared, Status, Version};
use crate::store::{Outcome, Store, Trigger};
use crate::system::notify;
use crate::web::{self, App};
use listeners::Listeners;

/// How often retention runs by default.
pub const RETENTION: Duration = Duration::from_secs(60);

/// How often resolved licence-host addresses are refreshed.
pub const LICENSE_REFRESH: Duration = Duration::from_secs(300);

/// Which firewall driver the daemon uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirewallMode {
    /// nftables.
    Nft,
    /// None: sited leaves the firewall alone.
    None,
}

/// The daemon's own settings, from the `sited run` command line.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The site file.
    pub config: PathBuf,
    /// The node, if given.
    pub node: Option<String>,
    /// The node file, read when no node is given.
    pub node_file: PathBuf,
    /// The state directory.
    pub state_dir: PathBuf,
    /// The firewall driver.
    pub firewall: FirewallMode,
    /// Where an installer may drop `site.toml` before the first boot.
    pub boot_dir: PathBuf,
    /// Added to ports below 1024 (0: real ports).
    pub port_offset: u16,
    /// How long the file must be quiet before a change is reconciled.
    pub debounce: Duration,
    /// The length recorded segments aim for. Default: 60 s.
    pub segment: Duration,
    /// How often retention runs. Default: [`RETENTION`].
    pub retention: Duration,
}

struct Running {
    sha256: String,
    plan: Arc<Plan>,
}

/// The running daemon.
pub struct Daemon {
    cfg: RunConfig,
    status: Shared,
    store: Arc<Mutex<Store>>,
    firewall: Option<Arc<dyn Driver + Send + Sync>>,
    listeners: Listeners,
    ingest: crate::media::cameras::Ingest,
    routers: listeners::Routers,
    current: Option<Running>,
    shutdown: CancellationToken,
    /// Whether a retention pass is running; a pass asked for meanwhile is skipped.
    retaining: Arc<std::sync::atomic::AtomicBool>,
}

fn sha256_hex(text: &str) -> String {
    web::tls::hex(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref())
}

fn json_diagnostics(path: &Path, text: &str, checked: &config::Checked) -> serde_json::Value {
    let shown = path.display().to_string();
    let source = Source::new(&shown, text);
    serde_json::Value::Array(
        checked
            .diagnostics
            .iter()
            .map(|d| serde_json::to_value(source.json(d)).unwrap_or_default())
            .collect(),
    )
}

fn local_networks() -> Vec<IpNet> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out: Vec<IpNet> = addrs
        .filter(|a| {
            !a.flags
                .contains(nix::net::if_::InterfaceFlags::IFF_LOOPBACK)
        })
        .filter_map(|a| {
            let (addr, mask) = (a.address?, a.netmask?);
            if let (Some(ip), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
                let len = u32::from(m.ip()).count_ones() as u8;
                return IpNet::new(std::net::IpAddr::V4(ip.ip()), len)
                    .ok()
                    .map(|n| n.trunc());
            }
            if let (Some(ip), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
                let len = u128::from(m.ip()).count_ones() as u8;
                return IpNet::new(std::net::IpAddr::V6(ip.ip()), len)
                    .ok()
                    .map(|n| n.trunc());
            }
            None
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

impl Daemon {
    /// Sets up the daemon: opens the state database; nothing is applied yet.
    pub fn new(cfg: RunConfig, shutdown: CancellationToken) -> Result<(Daemon, Arc<App>), String> {
        let db = cfg.state_dir.join("sited.db");
        let store = Store::open(&db).map_err(|e| e.to_string())?;
        let recordings = cfg.state_dir.join("recordings");
        // Before any recorder starts: make the files and the index agree after a crash.
        match crate::media::recorder::recovery::run(store.conn(), &recordings) {
            Ok(report) => tracing::info!(report = ?report, "recordings recovered"),
            Err(e) => {
                tracing::error!(error = %e, "recording recovery failed; recordings may be incomplete")
            }
        }
        let status: Shared = Arc::new(RwLock::new(Status::default()));
        let store = Arc::new(Mutex::new(store));
        let hubs = Arc::new(crate::media::hub::Hubs::default());
        let cameras: crate::media::ingest::Cameras = Default::default();
        let auth: Arc<crate::auth::Auth> = Arc::default();
        let hls: Arc<crate::media::output::hls::Hls> = Arc::default();
        let app = Arc::new(App {
            status: status.clone(),
            store: store.clone(),
            auth: auth.clone(),
            hubs: hubs.clone(),
            cameras: cameras.clone(),
            hls: hls.clone(),
            recordings: recordings.clone(),
            webrtc: Default::default(),
        });
        let live_outputs = Arc::new(crate::media::output::Live {
            hubs: hubs.clone(),
            hls,
            auth,
            status: status.clone(),
        });
        let mut ingest = crate::media::cameras::Ingest::new(hubs, cameras, db, recordings);
        ingest.segment = cfg.segment;
        let firewall: Option<Arc<dyn Driver + Send + Sync>> = match cfg.firewall {
            FirewallMode::Nft => Some(Arc::new(Nft::default())),
            FirewallMode::None => None,
        };
        if let Ok(mut s) = status.write() {
            s.firewall.driver = if firewall.is_some() { "nft" } else { "none" }.to_string();
        }
        let listeners = Listeners::new(cfg.port_offset);
        let routers = listeners::Routers {
            web: web::router(app.clone()),
            live: web::live::router(app.clone()),
            downloads: web::downloads_router(app.clone()),
            vod: web::vod_router(app.clone()),
            rtmp: Arc::new(RwLock::new(Arc::new(rtmp_context(&live_outputs, &[])))),
            live_outputs,
            webrtc: app.webrtc.clone(),
            turn: Arc::new(crate::media::turn::Turn::new(listeners::turn_settings(
                None,
            ))),
            turn_secret: Arc::from(
                crate::base::random::bytes::<32>()
                    .map_err(|e| e.to_string())?
                    .to_vec(),
            ),
        };
        Ok((
            Daemon {
                cfg,
                status,
                store,
                firewall,
                listeners,
                ingest,
                routers,
                current: None,
                shutdown,
                retaining: Arc::default(),
            },
            app,
        ))
    }

    /// The shared status.
    pub fn status(&self) -> Shared {
        self.status.clone()
    }

    fn record(
        &self,
        trigger: Trigger,
        sha: Option<&str>,
        outcome: Outcome,
        diagnostics: &serde_json::Value,
        summary: &str,
    ) {
        let at = crate::base::time::now_rfc3339();
        if let Ok(store) = self.store.lock()
            && let Err(e) = store.record(&at, trigger, sha, outcome, diagnostics, summary)
        {
            tracing::error!(error = %e, "cannot record the reload in the config history");
        }
        if let Ok(mut s) = self.status.write() {
            s.reloads += 1;
            if matches!(outcome, Outcome::Invalid | Outcome::Failed) {
                s.reload_failures += 1;
            }
            s.last = Some(LastReload {
                at,
                outcome: serde_json::to_value(outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                diagnostics: diagnostics.clone(),
                summary: summary.to_string(),
            });
        }
    }

    /// First boot: imports the boot partition's site file, once.
    pub fn import_boot_file(&self) {
        match boot::import(&self.cfg.boot_dir, &self.cfg.config, &self.cfg.state_dir) {
            Ok(boot::Import::Nothing) => {}
            Ok(boot::Import::Imported(text)) => {
                let summary = format!(
                    "imported {} to {}",
                    self.cfg.boot_dir.join("site.toml").display(),
                    self.cfg.config.display()
                );
                tracing::info!(from = %self.cfg.boot_dir.display(), "{summary}");
                self.record(
                    Trigger::BootImport,
                    Some(&sha256_hex(&text)),
                    Outcome::Imported,
                    &serde_json::json!([]),
                    &summary,
                );
            }
            Err(e) => tracing::error!(error = %e, "cannot import the boot partition's site file"),
        }
    }

    /// One reconcile attempt.
    pub async fn reconcile(&mut self, trigger: Trigger) {
        let path = self.cfg.config.clone();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                let why = format!("cannot read {}: {e}", path.display());
                tracing::warn!(error = %why, "no site file");
                self.record(trigger, None, Outcome::Failed, &serde_json::json!([]), &why);
                if self.current.is_none() {
                    self.unconfigured(&why).await;
                }
                return;
            }
        };
        let sha = sha256_hex(&text);
        if trigger != Trigger::Startup && self.current.as_ref().is_some_and(|c| c.sha256 == sha) {
            self.record(
                trigger,
                Some(&sha),
                Outcome::Unchanged,
                &serde_json::json!([]),
                "the file is the one in force",
            );
            return;
        }
        let checked = crate::plan::check(&text, config::Options::default());
        let diagnostics = json_diagnostics(&path, &text, &checked);
        let shown = path.display().to_string();
        let source = Source::new(&shown, &text);
        for d in &checked.diagnostics {
            tracing::warn!(code = d.code.as_str(), "{}", source.human(d).trim_end());
        }
        let Some(site) = checked.site else {
            let summary = format!(
                "{} is invalid ({} problems); the last good plan keeps running",
                path.display(),
                checked.diagnostics.len()
            );
            tracing::error!("{summary}");
            self.record(
                trigger,
                Some(&sha),
                Outcome::Invalid,
                &diagnostics,
                &summary,
            );
            if self.current.is_none() {
                self.run_last_good(&summary).await;
            }
            return;
        };
        match self.apply_site(site, &sha).await {
            Ok(summary) => {
                self.record(
                    trigger,
                    Some(&sha),
                    Outcome::Applied,
                    &diagnostics,
                    &summary,
                );
                let _ = write_atomic(&self.cfg.state_dir.join("last-good.toml"), &text);
            }
            Err(why) => {
                tracing::error!(error = %why, "the site file is valid but could not be applied; the last good plan keeps running");
                self.record(trigger, Some(&sha), Outcome::Failed, &diagnostics, &why);
                if self.current.is_none() {
                    self.unconfigured(&why).await;
                }
            }
        }
    }

    async fn run_last_good(&mut self, why: &str) {
        let last = self.cfg.state_dir.join("last-good.toml");
        let good = std::fs::read_to_string(&last).ok().and_then(|t| {
            crate::plan::check(&t, config::Options::default())
                .site
                .map(|s| (t, s))
        });
        match good {
            Some((text, site)) => {
                tracing::warn!(file = %last.display(), "running the last good site file");
                if let Err(e) = self.apply_site(site, &sha256_hex(&text)).await {
                    self.unconfigured(&format!("{why}; the last good file failed too: {e}"))
                        .await;
                }
            }
            None => self.unconfigured(why).await,
        }
    }

    /// Plans the node of a checked site and applies the difference with the plan in force.
    async fn apply_site(&mut self, site: config::Site, sha: &str) -> Result<String, String> {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok());
        let found = node::find(
            &site,
            self.cfg.node.as_deref(),
            &self.cfg.node_file,
            hostname.as_deref(),
            &node::local_addresses(),
        )?;
        let plan =
            Arc::new(plan::plan(&site, found.name()).ok_or("the node vanished from the site")?);
        let change = match &self.current {
            Some(c) => diff::diff(&c.plan, &plan),
            None => diff::diff(&plan.emptied(), &plan),
        };
        let tls = web::tls::server_config(&plan.tls, &self.cfg.state_dir)?;
        let fingerprint = web::tls::fingerprint(&tls, &plan.tls);
        let firewall_changed = self.current.is_none() || !change.firewall_unchanged();
        if firewall_changed {
            self.apply_firewall(&plan).await?;
        }
        let site = Arc::new(site);
        if let Ok(mut ctx) = self.routers.rtmp.write() {
            *ctx = Arc::new(rtmp_context(&self.routers.live_outputs, &site.devices));
        }
        if let Ok(mut s) = self.status.write() {
            s.node = Some(found.name().to_string());
            s.site = Some(site);
            s.plan = Some(plan.clone());
            s.unconfigured = None;
            s.version = Some(Version {
                sha256: sha.to_string(),
                applied_at: crate::base::time::now_rfc3339(),
            });
            s.firewall.rules = plan.ruleset.rule_count();
        }
        let secret = self.routers.turn_secret.clone();
        self.routers.webrtc.set_settings(listeners::webrtc_settings(
            &plan,
            &self.listeners,
            secret.clone(),
        ));
        self.routers
            .turn
            .set_settings(listeners::turn_settings(Some((
                &plan,
                &self.listeners,
                secret,
            ))));
        let started = self.listeners.reconcile(
            &plan,
            listeners::acceptor(tls),
            &fingerprint,
            &self.routers,
            &self.status,
            &self.shutdown,
        );
        let cameras = self.ingest.reconcile(&plan.cameras, &self.shutdown);
        self.current = Some(Running {
            sha256: sha.to_string(),
            plan: plan.clone(),
        });
        let mut summary = format!("node {} ({:?})\n", found.name(), found);
        summary.push_str(&diff::render(&change));
        if !firewall_changed {
            summary.push_str("firewall unchanged, not reapplied\n");
        }
        tracing::info!(
            node = found.name(),
            listeners_started = started.len(),
            cameras_started = cameras.len(),
            "site applied"
        );
        Ok(summary)
    }

    async fn apply_firewall(&mut self, plan: &Plan) -> Result<(), String> {
        let Some(driver) = self.firewall.clone() else {
            return Ok(());
        };
        let ruleset = plan.ruleset.clone();
        let hosts = plan.license_hosts();
        let result = tokio::task::spawn_blocking(move || {
            let extra = fw::resolved_elements(&ruleset, &hosts, &SystemResolver);
            fw::apply(driver.as_ref(), &ruleset, &extra)
        })
        .await
        .map_err(|e| e.to_string())?;
        let mut s = self.status.write().map_err(|_| "status lock poisoned")?;
        match result {
            Ok(applied) => {
                s.firewall = FirewallStatus {
                    driver: "nft".into(),
                    rules: plan.ruleset.rule_count(),
                    applied_at: Some(crate::base::time::now_rfc3339()),
                    apply_ms: Some(applied.took.as_millis() as u64),
                    error: None,
                };
                tracing::info!(
                    rules = plan.ruleset.rule_count(),
                    ms = applied.took.as_millis() as u64,
                    "firewall applied"
                );
                Ok(())
            }
            Err(e) => {
                s.firewall_failures += 1;
                s.firewall.error = Some(e.to_string());
                Err(format!("firewall: {e}"))
            }
        }
    }

    /// No valid site: serve the web UI (which explains what to do) and SSH to the local subnets.
    async fn unconfigured(&mut self, why: &str) {
        let local = local_networks();
        let address = node::local_addresses()
            .into_iter()
            .find(|a| !a.is_loopback())
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
        let name = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "sited".into());
        let plan = Arc::new(plan::unconfigured(&name, address, &local));
        if let Err(e) = self.apply_firewall(&plan).await {
            tracing::error!(error = %e, "cannot apply the unconfigured firewall");
        }
        if let Ok(mut s) = self.status.write() {
            s.unconfigured = Some(why.to_string());
            s.plan = Some(plan.clone());
            s.site = None;
            s.node = None;
        }
        self.listeners
            .reconcile(&plan, None, "", &self.routers, &self.status, &self.shutdown);
        self.ingest.reconcile(&[], &self.shutdown);
        tracing::warn!(reason = %why, "running unconfigured: web UI and SSH only, to the local subnets");
    }

    /// Re-resolves the licence hosts into their sets, without replacing the table.
    async fn refresh_license_hosts(&self) {
        let (Some(driver), Some(current)) = (self.firewall.clone(), self.current.as_ref()) else {
            return;
        };
        let hosts = current.plan.license_hosts();
        if hosts.is_empty() {
            return;
        }
        let ruleset = current.plan.ruleset.clone();
        let done = tokio::task::spawn_blocking(move || {
            let script = fw::resolved_elements(&ruleset, &hosts, &SystemResolver);
            if script.is_empty() {
                Ok(())
            } else {
                driver.run(&script)
            }
        })
        .await;
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "cannot refresh the licence hosts");
        }
    }

    /// Runs until SIGTERM or SIGINT: reconciles at start, on file changes and on SIGHUP.
    pub async fn run(mut self) -> Result<(), String> {
        use tokio::signal::unix::{SignalKind, signal};
        self.import_boot_file();
        self.reconcile(Trigger::Startup).await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _watcher = watch::watch(&self.cfg.config, tx)
            .map_err(|e| format!("cannot watch {}: {e}", self.cfg.config.display()))?;
        let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        let watchdog = notify::watchdog_interval();
        let mut dog = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        let mut license = tokio::time::interval(LICENSE_REFRESH);
        license.tick().await;
        let mut retention = tokio::time::interval(self.cfg.retention);
        let disk_full = self.ingest.disk_full.clone();
        notify::ready(&self.status_line());
        loop {
            tokio::select! {
                Some(()) = rx.recv() => {
                    // Debounce: wait until the file has been quiet for a moment.
                    while let Ok(Some(())) =
                        tokio::time::timeout(self.cfg.debounce, rx.recv()).await
                    {}
                    self.reload(Trigger::FileChange).await;
                }
                _ = hup.recv() => self.reload(Trigger::Sighup).await,
                _ = dog.tick() => if watchdog.is_some() { notify::watchdog() },
                _ = license.tick() => self.refresh_license_hosts().await,
                _ = retention.tick() => self.retention(),
                () = disk_full.notified() => {
                    tracing::debug!("a recorder ran out of space: retention runs now");
                    self.retention();
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        notify::stopping();
        tracing::info!("stopping");
        self.listeners.stop_all();
        self.ingest.stop_all();
        self.shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(())
    }

    /// One retention pass, off the reconcile loop's thread, unless one is running.
    fn retention(&self) {
        use std::sync::atomic::Ordering;
        let Some(site) = self.status.read().ok().and_then(|s| s.site.clone()) else {
            return;
        };
        if self.retaining.swap(true, Ordering::AcqRel) {
            return;
        }
        let retaining = self.retaining.clone();
        let cameras = site
            .cameras
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    crate::media::recorder::retention::CameraLimits {
                        keep_days: c.keep_days,
                        max_bytes: c.max_bytes,
                    },
                )
            })
            .collect();
        let (db, root, limits) = (
            self.cfg.state_dir.join("sited.db"),
            self.cfg.state_dir.join("recordings"),
            site.recording,
        );
        tokio::task::spawn_blocking(move || {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            if let Err(e) =
                crate::media::recorder::retention::run(&db, &root, &limits, &cameras, now)
            {
                tracing::warn!(error = %e, "retention failed");
            }
            retaining.store(false, Ordering::Release);
        });
    }

    async fn reload(&mut self, trigger: Trigger) {
        notify::reloading();
        self.reconcile(trigger).await;
        notify::reloaded(&self.status_line());
    }

    fn status_line(&self) -> String {
        let Ok(s) = self.status.read() else {
            return String::new();
        };
        match (&s.site, &s.node, &s.last) {
            (Some(site), Some(node), Some(last)) => format!(
                "site {} node {}: {} listeners, last reload {}",
                site.name,
                node,
                s.listeners.len(),
                last.outcome
            ),
            _ => format!(
                "unconfigured: {}",
                s.unconfigured.clone().unwrap_or_default()
            ),
        }
    }
}

/// The RTMP server's context for a site's devices: each device's key is read from its key file
/// (a missing file is logged, and that device cannot publish); viewers need a token.
fn rtmp_context(
    live: &Arc<crate::media::output::Live>,
    devices: &[crate::config::site::Device],
) -> crate::media::rtmp::RtmpContext {
    let mut keys = std::collections::HashMap::new();
    for d in devices {
        match std::fs::read_to_string(&d.key_file) {
            Ok(k) if !k.trim().is_empty() => {
                keys.insert(k.trim().to_string(), d.name.clone());
            }
            Ok(_) => {
                tracing::warn!(device = %d.name, file = %d.key_file.display(), "the device's key file is empty; it cannot publish")
            }
            Err(e) => {
                tracing::warn!(device = %d.name, file = %d.key_file.display(), error = %e, "cannot read the device's key file; it cannot publish")
            }
        }
    }
    let weak = Arc::downgrade(live);
    let authorize: Box<dyn Fn(&str) -> bool + Send + Sync> = Box::new(move |token: &str| {
        weak.upgrade().is_some_and(|live| {
            !token.is_empty() && live.auth.lookup(&live.users(), token).is_some()
        })
    });
    crate::media::rtmp::RtmpContext::new(live.hubs.clone(), keys, authorize)
}

/// Writes a file by writing a temporary one beside it, syncing it, and renaming it over.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
