//! One reconcile attempt: read the file, check it, plan this node, decide with
//! [`diff::actions`], and carry the actions out through the drivers.
//!
//! The decision is pure and made once; the log, the config history and the API print the same
//! list of actions. Everything fallible comes first: the TLS material, then the firewall (one
//! transaction, verified, restored on failure). Only then do listeners and cameras change, so a
//! failed attempt leaves the plan in force running untouched.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;

use super::daemon::Running;
use super::{Daemon, boot, node};
use crate::base::{Error, Kind, hex};
use crate::config::{self, Source};
use crate::firewall::apply as fw;
use crate::plan::{self, Plan, diff};
use crate::state::{FirewallStatus, LastReload, Version};
use crate::store::{Outcome, Trigger};
use crate::web;

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

    /// First boot: imports the boot partition's site file and site secret, once.
    pub fn import_boot_file(&self) {
        match boot::import_secret(&self.cfg.boot_dir, &self.cfg.config) {
            Ok(true) => {
                tracing::info!(from = %self.cfg.boot_dir.display(), "imported the site secret")
            }
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "cannot import the boot partition's site secret"),
        }
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
                    Some(&hex::sha256(text.as_bytes())),
                    Outcome::Imported,
                    &serde_json::json!([]),
                    &summary,
                );
            }
            Err(e) => tracing::error!(error = %e, "cannot import the boot partition's site file"),
        }
    }

    /// One reconcile attempt on the site file. On a media node that could not apply its
    /// application node's version (a file it lacked), SIGHUP tries that version again.
    pub async fn reconcile(&mut self, trigger: Trigger) {
        if trigger == Trigger::Sighup
            && let Some(version) = self.pending_version()
        {
            tracing::info!(version = %version.sha256, "SIGHUP: trying the application node's version again");
            self.pushed(version).await;
            return;
        }
        let path = self.cfg.config.clone();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                let why = format!("cannot read {}: {e}", path.display());
                tracing::warn!(error = %why, "no site file");
                self.record(trigger, None, Outcome::Failed, &serde_json::json!([]), &why);
                if !self.configured() {
                    self.unconfigured(&why).await;
                }
                return;
            }
        };
        if let Some(diverged) = self.diverged(trigger, &text) {
            // A media node runs its application node's version: the local edit is put back.
            let sha = hex::sha256(text.as_bytes());
            tracing::error!("{diverged}");
            self.record(
                trigger,
                Some(&sha),
                Outcome::Failed,
                &serde_json::json!([]),
                &diverged,
            );
            // What runs: the application node's version, or the last good file when that
            // version could not apply here.
            let running = std::fs::read_to_string(self.cfg.state_dir.join("last-good.toml"))
                .ok()
                .or_else(|| self.received.as_ref().map(|v| v.text.clone()));
            if let Some(text) = running
                && let Err(e) = crate::base::fs::write_atomic(&path, text.as_bytes())
            {
                tracing::error!(error = %e, "cannot put the version this node runs back");
            }
            return;
        }
        self.attempt(trigger, &text).await;
    }

    /// One reconcile attempt on a site file's text, from the file or from the node link;
    /// returns how it ended.
    pub(super) async fn attempt(
        &mut self,
        trigger: Trigger,
        text: &str,
    ) -> (Outcome, String, serde_json::Value) {
        let path = self.cfg.config.clone();
        let sha = hex::sha256(text.as_bytes());
        if trigger != Trigger::Startup
            && self
                .current
                .as_ref()
                .is_some_and(|c| c.sha256.as_deref() == Some(sha.as_str()))
        {
            let summary = "the file is the one in force";
            self.record(
                trigger,
                Some(&sha),
                Outcome::Unchanged,
                &serde_json::json!([]),
                summary,
            );
            return (
                Outcome::Unchanged,
                summary.to_string(),
                serde_json::json!([]),
            );
        }
        let mut checked = plan::check(text, config::Options::default());
        // A valid file may still need files this node lacks (version skew between nodes).
        let missing = checked
            .site
            .as_ref()
            .map(|site| self.missing_files(site, text))
            .unwrap_or_default();
        let cannot = missing.len();
        checked.diagnostics.extend(missing);
        let diagnostics = json_diagnostics(&path, text, &checked);
        let shown = path.display().to_string();
        let source = Source::new(&shown, text);
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
            if !self.configured() {
                self.run_last_good(&summary).await;
            }
            return (Outcome::Invalid, summary, diagnostics);
        };
        // With nothing to keep running (a first start), the file runs anyway: its cameras
        // whose files are missing fail, and say so, rather than the whole node staying
        // unconfigured.
        let keep = self.configured() || self.cfg.state_dir.join("last-good.toml").exists();
        if cannot > 0 && !keep {
            tracing::warn!(
                missing = cannot,
                "files this node reads are missing, but there is no good site to keep: applying anyway"
            );
        }
        if cannot > 0 && keep {
            let summary = format!(
                "this node cannot apply {}: {cannot} file(s) it reads at run time are missing here; the last good plan keeps running",
                path.display()
            );
            tracing::error!("{summary}");
            self.record(trigger, Some(&sha), Outcome::Failed, &diagnostics, &summary);
            if !self.configured() {
                self.run_last_good(&summary).await;
            }
            return (Outcome::Failed, summary, diagnostics);
        }
        match self.apply_site(site, &sha, text).await {
            Ok(summary) => {
                self.record(
                    trigger,
                    Some(&sha),
                    Outcome::Applied,
                    &diagnostics,
                    &summary,
                );
                let last_good = self.cfg.state_dir.join("last-good.toml");
                if let Err(e) = crate::base::fs::write_atomic(&last_good, text.as_bytes()) {
                    tracing::error!(file = %last_good.display(), error = %e, "cannot keep the last good site file; a restart with a broken file will run unconfigured");
                }
                (Outcome::Applied, summary, diagnostics)
            }
            Err(e) => {
                tracing::error!(error = %e, kind = %e.kind(), "the site file is valid but could not be applied; the last good plan keeps running");
                self.record(
                    trigger,
                    Some(&sha),
                    Outcome::Failed,
                    &diagnostics,
                    &e.to_string(),
                );
                if !self.configured() {
                    self.unconfigured(&e.to_string()).await;
                }
                (Outcome::Failed, e.to_string(), diagnostics)
            }
        }
    }

    /// The files this node of `site` reads at run time and cannot (`config::node_files`);
    /// none when the node is not found (applying reports that).
    fn missing_files(&self, site: &config::Site, text: &str) -> Vec<config::Diagnostic> {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok());
        node::find(
            site,
            self.cfg.node.as_deref(),
            &self.cfg.node_file,
            hostname.as_deref(),
            &node::local_addresses(),
        )
        .map(|found| config::node_files::missing(text, site, found.name()))
        .unwrap_or_default()
    }

    /// Whether a site file (not the unconfigured plan) is in force.
    fn configured(&self) -> bool {
        self.current.as_ref().is_some_and(|c| c.sha256.is_some())
    }

    async fn run_last_good(&mut self, why: &str) {
        let last = self.cfg.state_dir.join("last-good.toml");
        let good = std::fs::read_to_string(&last).ok().and_then(|t| {
            plan::check(&t, config::Options::default())
                .site
                .map(|s| (t, s))
        });
        match good {
            Some((text, site)) => {
                tracing::warn!(file = %last.display(), "running the last good site file");
                if let Err(e) = self
                    .apply_site(site, &hex::sha256(text.as_bytes()), &text)
                    .await
                {
                    self.unconfigured(&format!("{why}; the last good file failed too: {e}"))
                        .await;
                }
            }
            None => self.unconfigured(why).await,
        }
    }

    /// Plans the node of a checked site, decides, and applies; returns the summary the history
    /// keeps: the node, the plan's diff and the actions taken.
    async fn apply_site(
        &mut self,
        site: config::Site,
        sha: &str,
        text: &str,
    ) -> Result<String, Error> {
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
        let plan = Arc::new(
            plan::plan(&site, found.name())
                .ok_or_else(|| Error::new(Kind::Internal, "the node vanished from the site"))?,
        );
        let tls = web::tls::server_config(&plan.tls, &self.cfg.state_dir)
            .map_err(|e| e.context("TLS"))?;
        let fingerprint = web::tls::fingerprint(&tls, &plan.tls, &self.cfg.state_dir);
        let actions = self.decide(&plan, &fingerprint);
        self.carry_out(&actions, &plan, web::tls::acceptor(tls))
            .await?;
        let keys = crate::media::rtmp::keys::load(&site.devices);
        self.routers.live_outputs.auth.set_users(&site.users);
        if let Ok(mut ctx) = self.routers.rtmp.write() {
            *ctx = Arc::new(rtmp_context(&self.routers.live_outputs, &keys));
        }
        let site_for_links = Arc::new(site);
        if let Ok(mut s) = self.status.write() {
            s.node = Some(found.name().to_string());
            s.site = Some(site_for_links.clone());
            s.plan = Some(plan.clone());
            s.unconfigured = None;
            s.version = Some(Version {
                sha256: sha.to_string(),
                applied_at: crate::base::time::now_rfc3339(),
            });
            s.firewall.rules = plan.ruleset.rule_count();
        }
        let change = match &self.current {
            Some(c) => diff::diff(&c.plan, &plan),
            None => diff::diff(&plan.emptied(), &plan),
        };
        self.site_links(&site_for_links, &plan, sha, text);
        self.current = Some(Running {
            sha256: Some(sha.to_string()),
            plan,
            fingerprint,
        });
        tracing::info!(node = found.name(), actions = actions.len(), "site applied");
        Ok(format!(
            "node {} ({:?})\n{}actions:\n{}",
            found.name(),
            found,
            diff::render(&change),
            diff::render_actions(&actions)
        ))
    }

    /// The one decision: what takes the node from the plan in force to `plan`.
    pub(super) fn decide(&self, plan: &Plan, fingerprint: &str) -> Vec<diff::Action> {
        match &self.current {
            Some(c) => diff::actions(
                &diff::diff(&c.plan, plan),
                plan,
                false,
                c.fingerprint != fingerprint,
            ),
            None => diff::actions(&diff::diff(&plan.emptied(), plan), plan, true, false),
        }
    }

    /// Carries the actions out: the firewall first (the only step that can fail), then the
    /// listeners and the cameras.
    pub(super) async fn carry_out(
        &mut self,
        actions: &[diff::Action],
        plan: &Plan,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Result<(), Error> {
        if actions.contains(&diff::Action::ReplaceFirewall) {
            self.apply_firewall(plan).await?;
        }
        for a in actions {
            tracing::info!(action = %a, "reconcile");
        }
        let secret = self.routers.turn_secret.clone();
        self.routers
            .webrtc
            .set_settings(super::listeners::webrtc_settings(
                plan,
                &self.listeners,
                secret.clone(),
            ));
        self.routers
            .turn
            .set_settings(super::listeners::turn_settings(Some((
                plan,
                &self.listeners,
                secret,
            ))));
        self.listeners.apply(
            actions,
            plan,
            tls,
            &self.routers,
            &self.status,
            &self.shutdown,
        );
        self.cameras.apply(actions, &self.shutdown);
        Ok(())
    }

    async fn apply_firewall(&mut self, plan: &Plan) -> Result<(), Error> {
        let Some(driver) = self.drivers.firewall.clone() else {
            return Ok(());
        };
        let ruleset = plan.ruleset.clone();
        let hosts = plan.license_hosts();
        let resolver = self.drivers.resolver.clone();
        let result = tokio::task::spawn_blocking(move || {
            let extra = fw::resolved_elements(&ruleset, &hosts, resolver.as_ref());
            fw::apply(driver.as_ref(), &ruleset, &extra)
        })
        .await
        .map_err(|e| Error::new(Kind::Internal, "the firewall apply task died").with_source(e))?;
        let Ok(mut s) = self.status.write() else {
            return Err(Error::new(Kind::Internal, "the status lock is poisoned"));
        };
        match result {
            Ok(applied) => {
                let ms = u64::try_from(applied.took.as_millis()).unwrap_or(u64::MAX);
                s.firewall = FirewallStatus {
                    driver: "nft".into(),
                    rules: plan.ruleset.rule_count(),
                    applied_at: Some(crate::base::time::now_rfc3339()),
                    apply_ms: Some(ms),
                    error: None,
                    error_kind: None,
                };
                tracing::info!(rules = plan.ruleset.rule_count(), ms, "firewall applied");
                Ok(())
            }
            Err(e) => {
                s.firewall_failures += 1;
                *s.firewall_failures_by_kind
                    .entry(e.kind().name())
                    .or_default() += 1;
                s.firewall.error = Some(e.to_string());
                s.firewall.error_kind = Some(e.kind().name().to_string());
                Err(e.context("firewall"))
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
        let mut actions = self.decide(&plan, "");
        if let Err(e) = self.carry_out(&actions, &plan, None).await {
            // The page that says what to do matters more than the firewall: serve it anyway.
            tracing::error!(error = %e, "cannot apply the unconfigured firewall");
            actions.retain(|a| *a != diff::Action::ReplaceFirewall);
            let _ = self.carry_out(&actions, &plan, None).await;
        }
        self.routers.live_outputs.auth.set_users(&[]);
        if let Ok(mut s) = self.status.write() {
            s.unconfigured = Some(why.to_string());
            s.plan = Some(plan.clone());
            s.site = None;
            s.node = None;
        }
        self.current = Some(Running {
            sha256: None,
            plan,
            fingerprint: String::new(),
        });
        tracing::warn!(reason = %why, "running unconfigured: web UI and SSH only, to the local subnets");
    }
}

/// The RTMP server's context for the devices' keys (`media::rtmp::keys::load`); viewers need a
/// token.
pub(super) fn rtmp_context(
    live: &Arc<crate::media::output::Live>,
    keys: &HashMap<String, String>,
) -> crate::media::rtmp::RtmpContext {
    let weak = Arc::downgrade(live);
    let authorize: Box<dyn Fn(&str) -> bool + Send + Sync> = Box::new(move |token: &str| {
        weak.upgrade().is_some_and(|live| {
            !token.is_empty() && live.auth.lookup(&live.auth.users(), token).is_some()
        })
    });
    crate::media::rtmp::RtmpContext::new(live.hubs.clone(), keys.clone(), authorize)
}
