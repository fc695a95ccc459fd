//! The node's cameras: one supervised ingest task per camera of the plan.
//!
//! Each camera with `record = true` also has a recorder reading its hub. A camera that pushes
//! has no ingest task: it gets a slot in [`super::push::PushCameras`], and the push server feeds
//! its hub while it pushes.
//!
//! Reconcile hands over its actions (`plan::diff::actions` decides): a started camera gets a
//! task and a hub, a restarted one keeps its hub, a stopped one loses both. A camera no action
//! names keeps its task and its connection.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::hub::Hubs;
use super::ingest::{self, Statuses};
use crate::config::Camera;
use crate::plan::diff::Action;

struct Running {
    stop: CancellationToken,
    recorder: Option<super::recorder::Recorder>,
}

/// The ingest tasks of the node.
pub struct Supervisor {
    running: BTreeMap<String, Running>,
    /// The hubs the cameras feed.
    pub hubs: Arc<Hubs>,
    /// The cameras' status.
    pub status: Statuses,
    db: std::path::PathBuf,
    recordings: std::path::PathBuf,
    /// Told by a recorder that ran out of space, so retention runs at once.
    pub disk_full: Arc<tokio::sync::Notify>,
    /// The length recorded segments aim for.
    pub segment: std::time::Duration,
    /// The cameras that push, for the push server.
    pub push: super::push::PushCameras,
    /// Opens the pulled cameras' streams; tests give a fake.
    pub opener: Arc<dyn ingest::Opener>,
}

impl Supervisor {
    /// No camera yet.
    pub fn new(
        hubs: Arc<Hubs>,
        status: Statuses,
        db: std::path::PathBuf,
        recordings: std::path::PathBuf,
    ) -> Supervisor {
        Supervisor {
            running: BTreeMap::new(),
            hubs,
            status,
            db,
            recordings,
            disk_full: Arc::default(),
            segment: std::time::Duration::from_secs(60),
            push: Arc::default(),
            opener: Arc::new(ingest::Retina::default()),
        }
    }

    /// Carries out the camera actions of a reconcile decision (`plan::diff::actions`): a
    /// camera is started, stopped or restarted only when told. Returns the names (re)started.
    pub fn apply(&mut self, actions: &[Action], shutdown: &CancellationToken) -> Vec<String> {
        let mut started = Vec::new();
        for action in actions {
            let (stop, start) = match action {
                Action::StartCamera(c) => (None, Some(c)),
                Action::StopCamera(c) => (Some(c), None),
                Action::RestartCamera(c) => (Some(c), Some(c)),
                _ => continue,
            };
            if let Some(c) = stop {
                self.stop(&c.name, start.is_none());
            }
            if let Some(c) = start {
                self.start(c, shutdown);
                started.push(c.name.clone());
            }
        }
        started
    }

    fn stop(&mut self, name: &str, forget: bool) {
        if let Some(r) = self.running.remove(name) {
            tracing::info!(camera = %name, "stopping camera");
            r.stop.cancel();
            if let Some(recorder) = r.recorder {
                tokio::spawn(recorder.stop());
            }
        }
        if let Ok(mut push) = self.push.write() {
            push.remove(name);
        }
        if forget {
            self.hubs.remove(name);
            if let Ok(mut s) = self.status.write() {
                s.remove(name);
            }
        }
    }

    fn start(&mut self, camera: &Camera, shutdown: &CancellationToken) {
        let name = camera.name.as_str();
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
                self.opener.clone(),
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
        self.running
            .insert(name.to_string(), Running { stop, recorder });
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
