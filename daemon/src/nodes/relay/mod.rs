//! Relayed live video: the application node plays every camera of the site, pulling a camera
//! that another node ingests over one [`channel`] and fanning it out through its own hub.
//!
//! - On the application node, each camera another node ingests has a hub of the camera's
//!   name, marked on demand, so every live output (RTSP, HLS, HTTP-FLV, WebSocket, WebRTC,
//!   RTMP play) finds it as it finds a local camera.
//! - The first reader wakes the camera's [`pull`] task, which opens a [`Want::Relay`] channel
//!   to the ingesting node; that node's [`serve`] subscribes to its own hub (the GOP cache
//!   first, so a viewer starts at once) and sends the tracks and every frame
//!   ([`encoding`]). The application node pushes them into its hub.
//! - One relay per camera, whatever the number of viewers: they all read the one hub. The
//!   relay stops once the hub has had no reader for [`LINGER`].
//! - A relay that fails (the node offline, the link cut, the camera unknown there) is retried
//!   with backoff for as long as readers remain.
//! - A slow application node makes the media node's hub reader lap and skip to a keyframe,
//!   then drop the relay (which is retried): neither side buffers without bound.

pub mod encoding;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::Registry;
use super::channel::{Channel, Want};
use crate::base::Error;
use crate::base::backoff::backoff;
use crate::media::hub::{Hub, Hubs, Item, Stop};
use encoding::Relayed;

/// How long a relay outlives its last reader.
pub const LINGER: Duration = Duration::from_secs(10);
/// How often a running relay looks at its readers.
const CHECK: Duration = Duration::from_secs(1);

/// A relayed camera, as the API shows it.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct RelayState {
    /// The node that ingests the camera.
    pub node: String,
    /// Whether the stream is being pulled now.
    pub active: bool,
    /// Viewers reading the relayed stream on this node.
    pub readers: usize,
    /// Why the last relay failed, if it did.
    pub error: Option<String>,
    /// Failed relays in a row.
    pub failures: u32,
}

struct Running {
    node: String,
    hub: Arc<Hub>,
    stop: CancellationToken,
}

/// The application node's relays: one per camera another node ingests.
pub struct Relays {
    hubs: Arc<Hubs>,
    registry: Arc<Registry>,
    running: Mutex<BTreeMap<String, Running>>,
    states: Arc<RwLock<BTreeMap<String, RelayState>>>,
    opened: Arc<AtomicU64>,
}

impl Relays {
    /// No relay yet.
    pub fn new(hubs: Arc<Hubs>, registry: Arc<Registry>) -> Relays {
        Relays {
            hubs,
            registry,
            running: Mutex::default(),
            states: Arc::default(),
            opened: Arc::default(),
        }
    }

    /// Makes the relays those of `remote` (camera → the node that ingests it). A new camera
    /// gets an on-demand hub and a pull task; a camera gone stops its task, and loses its hub
    /// unless it is among `local` (ingested here now, into the same hub).
    pub fn set(
        &self,
        remote: &BTreeMap<String, String>,
        local: &BTreeSet<String>,
        shutdown: &CancellationToken,
    ) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<String> = running
            .iter()
            .filter(|(camera, r)| remote.get(*camera) != Some(&r.node))
            .map(|(camera, _)| camera.clone())
            .collect();
        for camera in gone {
            if let Some(r) = running.remove(&camera) {
                r.stop.cancel();
                r.hub.set_on_demand(false);
                if !local.contains(&camera) && !remote.contains_key(&camera) {
                    self.hubs.remove(&camera);
                }
            }
            if let Ok(mut s) = self.states.write() {
                s.remove(&camera);
            }
        }
        for (camera, node) in remote {
            if running.contains_key(camera) {
                continue;
            }
            let hub = self.hubs.get_or_create(camera);
            hub.set_on_demand(true);
            let stop = shutdown.child_token();
            if let Ok(mut s) = self.states.write() {
                s.insert(
                    camera.clone(),
                    RelayState {
                        node: node.clone(),
                        ..RelayState::default()
                    },
                );
            }
            tokio::spawn(pull(Pull {
                camera: camera.clone(),
                node: node.clone(),
                hub: hub.clone(),
                registry: self.registry.clone(),
                states: self.states.clone(),
                opened: self.opened.clone(),
                stop: stop.clone(),
            }));
            running.insert(
                camera.clone(),
                Running {
                    node: node.clone(),
                    hub,
                    stop,
                },
            );
        }
    }

    /// Each relayed camera's state, by name.
    pub fn states(&self) -> BTreeMap<String, RelayState> {
        let mut states = self.states.read().map(|s| s.clone()).unwrap_or_default();
        if let Ok(running) = self.running.lock() {
            for (camera, r) in running.iter() {
                if let Some(s) = states.get_mut(camera) {
                    s.readers = r.hub.readers();
                }
            }
        }
        states
    }

    /// Relays opened since start (each one stream from a media node).
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }
}

/// What one camera's pull task needs.
struct Pull {
    camera: String,
    node: String,
    hub: Arc<Hub>,
    registry: Arc<Registry>,
    states: Arc<RwLock<BTreeMap<String, RelayState>>>,
    opened: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Pull {
    fn state(&self, f: impl FnOnce(&mut RelayState)) {
        if let Ok(mut s) = self.states.write()
            && let Some(st) = s.get_mut(&self.camera)
        {
            f(st);
        }
    }

    /// Whether a reader is there, or came within [`LINGER`].
    fn wanted(&self) -> bool {
        self.hub.readers() > 0 || self.hub.last_wanted().is_some_and(|t| t.elapsed() < LINGER)
    }
}

/// One camera's relay on the application node, until `stop`: idle until a reader comes,
/// then pulling until the readers are gone, retrying with backoff while they remain.
async fn pull(p: Pull) {
    let mut failures = 0u32;
    loop {
        while !p.wanted() {
            tokio::select! {
                () = p.stop.cancelled() => return,
                () = p.hub.wanted() => {}
            }
        }
        p.state(|s| s.active = true);
        let outcome = tokio::select! {
            () = p.stop.cancelled() => return,
            r = session(&p) => r,
        };
        p.hub.clear();
        p.state(|s| s.active = false);
        match outcome {
            Ok(()) => {
                failures = 0;
                tracing::info!(camera = %p.camera, node = %p.node, "relay stopped: no viewer left");
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(camera = %p.camera, node = %p.node, error = %e, failures, "relay failed; retrying while viewers remain");
                p.state(|s| {
                    s.error = Some(e.to_string());
                    s.failures = failures;
                });
                tokio::select! {
                    () = p.stop.cancelled() => return,
                    () = tokio::time::sleep(backoff(failures.min(4))) => {}
                }
            }
        }
    }
}

/// One relay: open the channel, push what arrives into the hub, end once no reader is left
/// for [`LINGER`].
async fn session(p: &Pull) -> Result<(), Error> {
    let channel = p
        .registry
        .open(
            &p.node,
            Want::Relay {
                camera: p.camera.clone(),
            },
        )
        .await?;
    p.opened.fetch_add(1, Ordering::Relaxed);
    tracing::info!(camera = %p.camera, node = %p.node, "relaying");
    let (tx, mut rx) = channel.split();
    let mut check = tokio::time::interval(CHECK);
    let mut idle: Option<Instant> = None;
    let mut first = true;
    loop {
        tokio::select! {
            item = rx.recv() => {
                let Some(item) = item? else {
                    crate::bail!(Unavailable, "{} ended the relay", p.node);
                };
                match encoding::decode(Bytes::from(item))? {
                    Relayed::Tracks(t) => p.hub.set_tracks(t),
                    Relayed::Frame { kind, dts, composition, keyframe, data } => {
                        if first {
                            first = false;
                            p.state(|s| {
                                s.error = None;
                                s.failures = 0;
                            });
                        }
                        p.hub.push(kind, dts, composition, keyframe, data);
                    }
                }
            }
            _ = check.tick() => {
                if p.hub.readers() > 0 {
                    idle = None;
                } else if idle.get_or_insert_with(Instant::now).elapsed() >= LINGER && !p.wanted() {
                    tx.finish(Ok(())).await;
                    return Ok(());
                }
            }
        }
    }
}

/// The media node's side of a [`Want::Relay`]: the camera's hub, GOP cache first, then live,
/// until the application node finishes the channel or it breaks.
pub async fn serve(hubs: &Hubs, camera: &str, channel: Channel) {
    let (tx, mut rx) = channel.split();
    let Some(hub) = hubs.get(camera) else {
        return tx
            .finish(Err(format!("no camera \"{camera}\" on this node")))
            .await;
    };
    let mut reader = hub.subscribe();
    drop(hub);
    tracing::info!(camera = %camera, "relaying to the application node");
    let outcome = loop {
        let item = tokio::select! {
            item = reader.next() => item,
            r = rx.recv() => match r {
                Ok(Some(_)) => continue,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e.to_string()),
            },
        };
        let encoded = match item {
            Ok(Item::Tracks(t)) => encoding::tracks(&t),
            Ok(Item::Frame(f)) => match encoding::frame(&f) {
                Err(e) => {
                    tracing::warn!(camera = %camera, error = %e, "a frame was not relayed");
                    continue;
                }
                ok => ok,
            },
            Err(Stop::TooSlow) => break Err("the application node reads too slowly".into()),
            Err(Stop::Closed) => break Err(format!("camera \"{camera}\" stopped on this node")),
        };
        let sent = match encoded {
            Ok(item) => tx.send(&item).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            break Err(e.to_string());
        }
    };
    tracing::info!(camera = %camera, outcome = ?outcome, "relay to the application node ended");
    tx.finish(outcome).await;
}

#[cfg(test)]
mod tests;
