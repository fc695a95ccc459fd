//! The event loop: reconcile at start, on file changes (debounced) and on SIGHUP; the
//! watchdog, retention and the licence-host refresh on their timers; until SIGTERM or SIGINT,
//! when it stops accepting and waits for the connections it owns.

use std::time::Duration;

use tokio::sync::mpsc;

use super::{Daemon, LICENSE_REFRESH, SHUTDOWN_GRACE, watch};
use crate::base::{Error, Kind, ResultExt as _};
use crate::firewall::apply as fw;
use crate::store::Trigger;
use crate::system::notify;

impl Daemon {
    /// Runs until SIGTERM or SIGINT: reconciles at start, on file changes and on SIGHUP.
    pub async fn run(mut self) -> Result<(), Error> {
        use tokio::signal::unix::{SignalKind, signal};
        self.import_boot_file();
        self.reconcile(Trigger::Startup).await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _watcher = watch::watch(&self.cfg.config, tx).err_kind(Kind::Io, || {
            format!("cannot watch {}", self.cfg.config.display())
        })?;
        let signal_of =
            |kind: SignalKind| signal(kind).err_kind(Kind::Io, || "cannot handle signals");
        let mut hup = signal_of(SignalKind::hangup())?;
        let mut term = signal_of(SignalKind::terminate())?;
        let mut int = signal_of(SignalKind::interrupt())?;
        let watchdog = notify::watchdog_interval();
        let mut dog = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        let mut license = tokio::time::interval(LICENSE_REFRESH);
        license.tick().await;
        let mut retention = tokio::time::interval(self.cfg.retention);
        let mut renewal = tokio::time::interval(super::TLS_RENEWAL_CHECK);
        renewal.tick().await;
        let disk_full = self.cameras.disk_full.clone();
        let mut pushed = self
            .channels
            .pushed_rx
            .take()
            .ok_or_else(|| Error::new(Kind::Internal, "the daemon runs once"))?;
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
                Some(version) = pushed.recv() => {
                    notify::reloading();
                    self.pushed(version).await;
                    notify::reloaded(&self.status_line());
                }
                _ = dog.tick() => if watchdog.is_some() { notify::watchdog() },
                _ = license.tick() => self.refresh_license_hosts().await,
                _ = retention.tick() => self.retention(),
                _ = renewal.tick() => self.renew_tls().await,
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
        self.cameras.stop_all();
        self.shutdown.cancel();
        let left = crate::base::listen::drain(SHUTDOWN_GRACE).await;
        if left > 0 {
            tracing::warn!(connections = left, "connections still open at shutdown");
        }
        Ok(())
    }

    /// Re-resolves the licence hosts into their sets, without replacing the table.
    async fn refresh_license_hosts(&self) {
        let (Some(driver), Some(current)) = (self.drivers.firewall.clone(), self.current.as_ref())
        else {
            return;
        };
        let hosts = current.plan.license_hosts();
        if hosts.is_empty() {
            return;
        }
        let ruleset = current.plan.ruleset.clone();
        let resolver = self.drivers.resolver.clone();
        let done = tokio::task::spawn_blocking(move || {
            let script = fw::resolved_elements(&ruleset, &hosts, resolver.as_ref());
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
            let now = crate::base::time::now_ms();
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
