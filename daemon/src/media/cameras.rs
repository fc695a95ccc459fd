//! The node's cameras: one supervised ingest task per camera of the plan.
//!
//! Each camera with `record = true` also has a recorder reading its hub. A camera that pushes
//! has no ingest task: it gets a slot in [`super::push::PushCameras`], and the push server feeds
//! its hub while it pushes.
//!
//! Reconcile hands over the plan's cameras; a camera whose own entry did not change keeps its
//! task and its connection, a changed one is restarted, a removed one is stopped and its hub
//! forgotten.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::hub::Hubs;
use super::ingest::{self, Cameras};
use crate::config::Camera;

struct Running {
    camera: Camera,
    stop: CancellationToken,
    recorder: Option<super::recorder::Recorder>,
}

/// The ingest tasks of the node.
pub struct Ingest {
    running: BTreeMap<String, Running>,
    /// The hubs the cameras feed.
    pub hubs: Arc<Hubs>,
    /// The cameras' status.
    pub status: Cameras,
    db: std::path::PathBuf,
    recordings: std::path::PathBuf,
    /// Told by a recorder that ran out of space, so retention runs at once.
    pub disk_full: Arc<tokio::sync::Notify>,
    /// The length recorded segments aim for.
    pub segment: std::time::Duration,
    /// The cameras that push, for the push server.
    pub push: super::push::PushCameras,
}

impl Ingest {
    /// No camera yet.
    pub fn new(
        hubs: Arc<Hubs>,
        status: Cameras,
        db: std::path::PathBuf,
        recordings: std::path::PathBuf,
    ) -> Ingest {
        Ingest {
            running: BTreeMap::new(),
            hubs,
            status,
            db,
            recordings,
            disk_full: Arc::default(),
            segment: std::time::Duration::from_secs(60),
            push: Arc::default(),
        }
    }

    /// Makes the running cameras match `cameras`; returns the names (re)started.
    pub fn reconcile(&mut self, cameras: &[Camera], shutdown: &CancellationToken) -> Vec<String> {
        let wanted: BTreeMap<&str, &Camera> =
            cameras.iter().map(|c| (c.name.as_str(), c)).collect();
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(n, r)| wanted.get(n.as_str()) != Some(&&r.camera))
            .map(|(n, _)| n.clone())
            .collect();
        for name in stale {
            if let Some(r) = self.running.remove(&name) {
                tracing::info!(camera = %name, "stopping camera");
                r.stop.cancel();
                if let Some(recorder) = r.recorder {
                    tokio::spawn(recorder.stop());
                }
                if let Ok(mut push) = self.push.write() {
                    push.remove(&name);
                }
            }
            if !wanted.contains_key(name.as_str()) {
                self.hubs.remove(&name);
                if let Ok(mut s) = self.status.write() {
                    s.remove(&name);
                }
            }
        }
        let mut started = Vec::new();
        for (name, camera) in wanted {
            if self.running.contains_key(name) {
                continue;
            }
            let stop = shutdown.child_token();
            let hub = self.hubs.get_or_create(name);
            tracing::info!(camera = %name, "starting camera");
            if camera.push {
                // The push server feeds the hub when the camera pushes.
                ingest::update(&self.status, name, |s| {
                    s.error = Some("waiting for the camera to push".into());
                });
                if let Ok(mut push) = self.push.write() {
                    let slot = super::push::Slot::new(camera.clone(), stop.clone());
                    push.insert(name.to_string(), Arc::new(slot));
                }
            } else {
                tokio::spawn(ingest::run(
                    camera.clone(),
                    hub.clone(),
                    self.status.clone(),
                    stop.clone(),
                ));
            }
            let recorder = camera.record.then(|| {
                let mut options = super::recorder::Options::new(&self.recordings);
                options.disk_full = Some(self.disk_full.clone());
                options.segment = self.segment;
                super::recorder::Recorder::spawn(
                    name,
                    hub,
                    &self.db,
                    options,
                    Arc::new(super::recorder::SystemClock),
                )
            });
            self.running.insert(
                name.to_string(),
                Running {
                    camera: camera.clone(),
                    stop,
                    recorder,
                },
            );
            started.push(name.to_string());
        }
        started
    }

    /// Stops every camera.
    pub fn stop_all(&mut self) {
        if let Ok(mut push) = self.push.write() {
            push.clear();
        }
        for (_, r) in std::mem::take(&mut self.running) {
            r.stop.cancel();
            if let Some(recorder) = r.recorder {
                tokio::spawn(recorder.stop());
            }
        }
    }
}
