//! The application node's view of its media nodes: who is linked, what each runs, the
//! version in force that every link sends on at once, and the channels it opens to them.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::channel::{self, Channel, Want};
use super::seal::Secret;
use super::wire::{Message, Report};
use crate::auth::Auth;
use crate::base::Error;

/// A version of the site file, as the links carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The file's SHA-256, hex.
    pub sha256: String,
    /// The file.
    pub text: String,
}

/// One media node as the application node sees it.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Linked {
    /// Whether its link is up.
    pub online: bool,
    /// When it was last heard from, RFC 3339.
    pub last_seen: Option<String>,
    /// The address it dialled from.
    pub peer: Option<String>,
    /// The SHA-256 of the site file it runs.
    pub version: Option<String>,
    /// The sited it runs.
    pub sited: Option<String>,
    /// Its last report.
    pub last: Option<Report>,
    /// The live state of the cameras it ingests, as it last reported it.
    #[serde(skip)]
    #[schemars(skip)]
    pub cameras: BTreeMap<String, crate::media::ingest::CameraStatus>,
}

/// The application node's registry of links.
pub struct Registry {
    current: watch::Sender<Option<Version>>,
    secret: RwLock<Option<Secret>>,
    nodes: RwLock<BTreeMap<String, Linked>>,
    auth: Arc<Auth>,
    /// Each linked node's control link (numbered, so an old link ending spares a new one).
    controls: RwLock<BTreeMap<String, (u64, mpsc::Sender<Message>)>>,
    generation: std::sync::atomic::AtomicU64,
    /// The channels asked for and not yet attached.
    pub channels: channel::Pending,
}

impl Registry {
    /// An empty registry; the links share `auth`'s revoked tokens with the media nodes.
    pub fn new(auth: Arc<Auth>) -> Registry {
        Registry {
            current: watch::channel(None).0,
            secret: RwLock::new(None),
            nodes: RwLock::new(BTreeMap::new()),
            auth,
            controls: RwLock::new(BTreeMap::new()),
            generation: std::sync::atomic::AtomicU64::new(0),
            channels: channel::Pending::default(),
        }
    }

    /// The node's authentication, whose revoked tokens the links share.
    pub fn auth(&self) -> &Arc<Auth> {
        &self.auth
    }

    /// Makes `version` the one every link sends, at once.
    pub fn publish(&self, version: Version) {
        self.current.send_if_modified(|v| {
            let changed = v.as_ref() != Some(&version);
            *v = Some(version);
            changed
        });
    }

    /// The version in force, and a receiver told of each new one.
    pub fn subscribe(&self) -> watch::Receiver<Option<Version>> {
        self.current.subscribe()
    }

    /// Sets the site's secret (or none: then no link is accepted).
    pub fn set_secret(&self, secret: Option<Secret>) {
        if let Ok(mut s) = self.secret.write() {
            *s = secret;
        }
    }

    /// The site's secret, if this node has one.
    pub fn secret(&self) -> Option<Secret> {
        self.secret.read().ok().and_then(|s| s.clone())
    }

    /// Changes what is known of `node`.
    pub fn update(&self, node: &str, f: impl FnOnce(&mut Linked)) {
        if let Ok(mut nodes) = self.nodes.write() {
            let entry = nodes.entry(node.to_string()).or_default();
            f(entry);
            entry.last_seen = Some(crate::base::time::now_rfc3339());
        }
    }

    /// A link to `node` is up: what it sends through; returns its number.
    pub fn set_control(&self, node: &str, control: mpsc::Sender<Message>) -> u64 {
        let n = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut c) = self.controls.write() {
            c.insert(node.to_string(), (n, control));
        }
        n
    }

    /// Link number `generation` to `node` ended.
    pub fn drop_control(&self, node: &str, generation: u64) {
        if let Ok(mut c) = self.controls.write()
            && c.get(node).is_some_and(|(g, _)| *g == generation)
        {
            c.remove(node);
        }
    }

    /// Opens a channel to `node` carrying `want` ([`channel`]): fails at once when the node
    /// is not linked, and after [`channel::OPEN`] when it does not attach.
    pub async fn open(&self, node: &str, want: Want) -> Result<Channel, Error> {
        let control = self
            .controls
            .read()
            .ok()
            .and_then(|c| c.get(node).map(|(_, tx)| tx.clone()))
            .ok_or_else(|| crate::err!(Unavailable, "media node {node} is offline"))?;
        let expected = self.channels.expect(node)?;
        let open = Message::Open {
            id: expected.id.clone(),
            want,
        };
        tokio::time::timeout(channel::OPEN, control.send(open))
            .await
            .map_err(|_| crate::err!(DeadlineExceeded, "the link to {node} is congested"))?
            .map_err(|_| crate::err!(Unavailable, "media node {node} went offline"))?;
        expected.attached().await
    }

    /// Every media node ever linked, by name.
    pub fn nodes(&self) -> BTreeMap<String, Linked> {
        self.nodes.read().map(|n| n.clone()).unwrap_or_default()
    }
}
