//! The daemon's part in one site of many nodes: the application node publishes each version
//! it applies to its media nodes; a media node keeps its link up, applies what arrives through
//! the same attempt as a local edit, and reports back.
//!
//! The rule for local edits on a media node: once its application node has sent it a version,
//! the media node runs that version. A local edit of its site.toml is not applied; it is
//! recorded as failed ("diverged"), logged, and the version it runs is written back.
//! Before any version has arrived (the application node unreachable since start), a local edit
//! applies as on any node, and the application node's version replaces it on reconnection.
//!
//! Version skew: a media node that cannot apply a version (a `password_file` of one of its
//! cameras missing here, say) keeps its last good file, reports the failure with its
//! diagnostics, and tries the version again on SIGHUP (once the file is in place) or when the
//! link comes back up.
//!
//! The site secret also keys the site's tokens: every node that holds it issues and accepts
//! the same sessions and tokens (`auth::token`); a node without it keeps local ones.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::Daemon;
use crate::catalog::{Roles, Service};
use crate::config::Site;
use crate::media::hub::Hubs;
use crate::nodes::channel::{Channel, Serve, Want};
use crate::nodes::dial::{self, Target};
use crate::nodes::link::Ends;
use crate::nodes::wire::Report;
use crate::nodes::{Secret, Version};
use crate::plan::{Bind, Plan};
use crate::store::{Outcome, Trigger};

/// A media node's running link.
pub(super) struct Link {
    target: Target,
    secret_text: String,
    stop: CancellationToken,
}

/// The channels between the daemon and its link.
pub(super) struct Channels {
    /// Versions from the application node, into the event loop.
    pub pushed_tx: mpsc::Sender<Version>,
    /// Taken by the event loop when it starts.
    pub pushed_rx: Option<mpsc::Receiver<Version>>,
    /// What the daemon runs, and its last report, for the link to send.
    pub reports: watch::Sender<(Option<String>, Option<Report>)>,
}

impl Default for Channels {
    fn default() -> Self {
        let (pushed_tx, pushed_rx) = mpsc::channel(4);
        Channels {
            pushed_tx,
            pushed_rx: Some(pushed_rx),
            reports: watch::channel((None, None)).0,
        }
    }
}

/// What a media node serves over the channels its application node opens.
struct NodeChannels {
    /// The node's live streams, for relays.
    hubs: Arc<Hubs>,
    /// The node's web service, for the recordings, clips and VOD asked through the
    /// application node (`web::remote`).
    web: axum::Router,
}

impl Serve for NodeChannels {
    fn serve(&self, want: Want, channel: Channel) -> BoxFuture<'static, ()> {
        let hubs = self.hubs.clone();
        let web = self.web.clone();
        Box::pin(async move {
            match want {
                Want::Relay { camera } => crate::nodes::relay::serve(&hubs, &camera, channel).await,
                want @ Want::Http { .. } => crate::web::remote::serve(web, want, channel).await,
            }
        })
    }
}

/// Where the application node of `site` takes links, as seen from `plan`'s node: its plain
/// web listener if it has one, else its TLS one. `None` on the application node itself.
pub fn target(site: &Site, plan: &Plan, bound: impl Fn(u16) -> u16) -> Option<Target> {
    if plan.node.roles.meets(Roles::APPLICATION) {
        return None;
    }
    let app = site
        .nodes
        .iter()
        .find(|n| n.roles.meets(Roles::APPLICATION))?;
    let app_plan = crate::plan::plan(site, &app.name)?;
    let web = |service: Service| {
        app_plan
            .listeners
            .iter()
            .find(|l| l.service == service && l.bind == Bind::Any)
    };
    let l = web(Service::Web)
        .filter(|l| !l.tls)
        .or_else(|| web(Service::WebTls))
        .or_else(|| web(Service::Web))?;
    Some(Target {
        node: app.name.clone(),
        address: app.address,
        port: bound(l.ports.lo),
        tls: l.tls,
    })
}

impl Daemon {
    /// The site secret beside the site file (`site.secret`), if there is a valid one.
    fn secret(&self) -> Option<(Secret, String)> {
        let path = self.cfg.config.with_file_name("site.secret");
        let text = std::fs::read_to_string(&path).ok()?;
        match Secret::parse(&text) {
            Ok(s) => Some((s, text)),
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "the site secret is unusable; no node link");
                None
            }
        }
    }

    /// After a version is applied: publish it (application node), or keep the link to the
    /// application node up (media node).
    pub(super) fn site_links(&mut self, site: &Site, plan: &Plan, sha: &str, text: &str) {
        let secret = self.secret();
        let key = secret.as_ref().and_then(|(s, _)| match s.token_key() {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::error!(error = %e, "cannot derive the site token key; tokens stay local");
                None
            }
        });
        self.nodes.auth().set_site_key(key);
        self.channels
            .reports
            .send_modify(|r| r.0 = Some(sha.to_string()));
        let application = plan.node.roles.meets(Roles::APPLICATION);
        let remote: BTreeMap<String, String> = site
            .cameras
            .iter()
            .filter(|c| application && c.node != plan.node.name)
            .map(|c| (c.name.clone(), c.node.clone()))
            .collect();
        let local: BTreeSet<String> = plan.cameras.iter().map(|c| c.name.clone()).collect();
        self.relays.set(&remote, &local, &self.shutdown);
        if application {
            self.nodes.set_secret(secret.map(|(s, _)| s));
            self.nodes.publish(Version {
                sha256: sha.to_string(),
                text: text.to_string(),
            });
            self.stop_link();
            return;
        }
        let offset = |p: u16| self.listeners.bound(crate::catalog::Ports::one(p)).lo;
        let (Some(target), Some((secret, secret_text))) = (target(site, plan, offset), secret)
        else {
            if self.link.is_some() {
                tracing::warn!("no application node or no site secret: the node link stops");
            }
            self.stop_link();
            return;
        };
        if self
            .link
            .as_ref()
            .is_some_and(|l| l.target == target && l.secret_text == secret_text)
        {
            return;
        }
        self.stop_link();
        let stop = self.shutdown.child_token();
        let ends = Ends {
            versions: self.channels.pushed_tx.clone(),
            reports: self.channels.reports.subscribe(),
            auth: self.nodes.auth().clone(),
            serve: Some(Arc::new(NodeChannels {
                hubs: self.cameras.hubs.clone(),
                web: self.routers.web.clone(),
            })),
            cameras: self.cameras.status.clone(),
        };
        let (state_tx, mut state_rx) = watch::channel(crate::state::LinkState::default());
        let status = self.status.clone();
        let watch_stop = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = watch_stop.cancelled() => return,
                    changed = state_rx.changed() => if changed.is_err() { return },
                }
                let state = state_rx.borrow_and_update().clone();
                if let Ok(mut s) = status.write() {
                    s.link = Some(state);
                }
            }
        });
        let me = plan.node.name.clone();
        tracing::info!(application = %target.node, address = %target.address, port = target.port, "linking to the application node");
        tokio::spawn(dial::run(
            target.clone(),
            me,
            secret,
            ends,
            state_tx,
            stop.clone(),
        ));
        self.link = Some(Link {
            target,
            secret_text,
            stop,
        });
    }

    fn stop_link(&mut self) {
        if let Some(l) = self.link.take() {
            l.stop.cancel();
        }
        if let Ok(mut s) = self.status.write() {
            s.link = None;
        }
    }

    /// Why a file edit must not apply: on a media node that runs its application node's
    /// version, any other text is a local edit (its last good file, kept when the application
    /// node's version could not apply here, is not one).
    pub(super) fn diverged(&self, trigger: Trigger, text: &str) -> Option<String> {
        let received = self.received.as_ref()?;
        if trigger == Trigger::NodeLink || self.link.is_none() || received.text == text {
            return None;
        }
        // The version it runs, kept when the application node's could not apply here: no edit.
        let running = self.current.as_ref().and_then(|c| c.sha256.as_deref());
        if running == Some(crate::base::hex::sha256(text.as_bytes()).as_str()) {
            return None;
        }
        Some(format!(
            "diverged: site.toml on a media node is the application node's ({}); the local edit was not applied, and the version this node runs was written back. Edit the site on the application node (PUT /api/v1/site or sited push).",
            self.link.as_ref().map_or("", |l| l.target.node.as_str())
        ))
    }

    /// The application node's version when this media node runs another one (it could not
    /// apply it): what a SIGHUP tries again.
    pub(super) fn pending_version(&self) -> Option<Version> {
        let running = self.current.as_ref().and_then(|c| c.sha256.as_deref());
        self.received
            .clone()
            .filter(|v| self.link.is_some() && running != Some(v.sha256.as_str()))
    }

    /// A version from the application node: applied through the same attempt as a local edit,
    /// written to the site file when it applies, and reported back.
    pub(super) async fn pushed(&mut self, version: Version) {
        tracing::info!(version = %version.sha256, "the application node sent a site version");
        self.received = Some(version.clone());
        let (outcome, summary, diagnostics) = self.attempt(Trigger::NodeLink, &version.text).await;
        if matches!(outcome, Outcome::Applied | Outcome::Unchanged) {
            let on_disk = std::fs::read_to_string(&self.cfg.config).ok();
            if on_disk.as_deref() != Some(version.text.as_str())
                && let Err(e) =
                    crate::base::fs::write_atomic(&self.cfg.config, version.text.as_bytes())
            {
                tracing::error!(error = %e, "cannot write the application node's version to the site file");
            }
        }
        let running = self.current.as_ref().and_then(|c| c.sha256.clone());
        let report = Report {
            sha256: version.sha256,
            outcome: outcome.as_str().to_string(),
            summary,
            diagnostics,
        };
        self.channels.reports.send_replace((running, Some(report)));
    }
}
