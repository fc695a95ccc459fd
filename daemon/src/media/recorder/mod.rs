//! Continuous recording: a camera's hub cut into fragmented-MP4 segment files, indexed in the
//! state database; recovery after a crash; clips cut from the segments without re-encoding.
//!
//! The design, the file layout, the fsync ordering and the crash-loss bound are in
//! `DESIGN.md` beside this file. The parts:
//! - [`segmenter`]: the pure core, hub items in, file actions out;
//! - [`writer`]: applies those actions to the files and the index, in a crash-safe order;
//! - [`index`]: the keyframe blob and the file names;
//! - [`scan`]: reads the files back (box headers, `moof`s, `tfdt` rewriting);
//! - [`recovery`]: run once at start-up, before any recorder, to make files and rows agree;
//! - [`clip`]: plans and reads an MP4 of `[start, end)`, with Content-Length and Range;
//! - [`vod`]: an HLS VOD playlist of `[start, end)`, its media segments cut like clips.
//!
//! The API for the daemon:
//! - [`recovery::run`]`(conn, root)` at start-up;
//! - [`Recorder::spawn`]`(camera, hub, store_path, options, clock)` per recorded camera, and
//!   [`Recorder::stop`] when it is no longer recorded (it closes the open segment);
//! - [`crate::store::recording::spans`] and [`crate::store::recording::segments_overlapping`]
//!   for the listing and the clips (also as `Store::recording_spans` / `recording_segments`);
//! - [`clip::plan`]`(root, segments, init, start_ms, end_ms)`, then [`clip::ClipPlan::trim_end`]
//!   and [`clip::ClipReader`] to send the bytes (of the `Range` that `web::range` parsed);
//! - [`vod::plan`] and [`vod::playlist`] for a playlist, [`vod::media`] for one of its parts.
//!
//! Invariants: every segment file starts with its init segment and a video keyframe; a row
//! never claims bytes its file does not durably hold; no segment is longer than
//! [`crate::store::recording::MAX_SEGMENT_MS`].

pub mod clip;
pub mod index;
pub mod recovery;
pub mod retention;
pub mod scan;
pub mod segmenter;
pub mod vod;
pub mod writer;

#[cfg(test)]
mod ffmpeg_tests;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::hub::{Hub, Item, Stop};
use crate::store::Store;
use segmenter::{Limits, Segmenter};

/// The wall clock, a trait so tests can drive the recorder through time.
pub trait Clock: Send + Sync {
    /// Now, UTC milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// How a recorder writes.
#[derive(Debug, Clone)]
pub struct Options {
    /// The recordings root, `<state-dir>/recordings`.
    pub root: PathBuf,
    /// A segment is cut at the first keyframe after this much media. Default: 60 s.
    pub segment: Duration,
    /// The file is synced and its row updated after this much media. Default: 1 s.
    pub part: Duration,
    /// Told when a write fails for lack of space, so retention runs at once. Default: none.
    pub disk_full: Option<Arc<tokio::sync::Notify>>,
}

impl Options {
    /// The defaults under `root`.
    pub fn new(root: &Path) -> Options {
        Options {
            root: root.to_path_buf(),
            segment: Duration::from_secs(60),
            part: Duration::from_secs(1),
            disk_full: None,
        }
    }

    fn limits(&self) -> Limits {
        let ticks = |d: Duration| (d.as_millis() as i64 * 90).max(1);
        Limits {
            target: ticks(self.segment).min(crate::store::recording::MAX_SEGMENT_MS * 45),
            part: ticks(self.part),
        }
    }
}

/// Items in flight between the hub reader and the writer thread.
const QUEUE: usize = 256;
/// Silence after which the writer is told the stream is idle.
const IDLE: Duration = Duration::from_secs(1);

enum Msg {
    Item(Item, i64),
    Idle(i64),
}

/// One camera's recorder: a task reading the hub, and a blocking writer thread.
pub struct Recorder {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Starts recording `camera` from `hub`, with its own connection to the state database at
    /// `store_path`. If the writer falls behind, the hub reader laps and resumes at a keyframe.
    pub fn spawn(
        camera: &str,
        hub: Arc<Hub>,
        store_path: &Path,
        options: Options,
        clock: Arc<dyn Clock>,
    ) -> Recorder {
        let stop = CancellationToken::new();
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = {
            let camera = camera.to_string();
            let store_path = store_path.to_path_buf();
            tokio::task::spawn_blocking(move || write(&camera, &store_path, &options, rx))
        };
        let task = tokio::spawn(read(
            camera.to_string(),
            hub,
            tx,
            stop.clone(),
            clock,
            writer,
        ));
        Recorder { stop, task }
    }

    /// Stops recording; returns once the open segment is closed.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn read(
    camera: String,
    hub: Arc<Hub>,
    tx: mpsc::Sender<Msg>,
    stop: CancellationToken,
    clock: Arc<dyn Clock>,
    writer: tokio::task::JoinHandle<()>,
) {
    let mut reader = hub.subscribe();
    let mut last = clock.now_ms();
    loop {
        let msg = tokio::select! {
            () = stop.cancelled() => break,
            r = reader.next() => match r {
                Ok(item) => {
                    last = clock.now_ms();
                    Msg::Item(item, last)
                }
                Err(Stop::TooSlow) => {
                    tracing::warn!(camera = %camera, "recording fell behind; resuming at a keyframe");
                    reader = hub.subscribe();
                    continue;
                }
                Err(Stop::Closed) => break,
            },
            () = tokio::time::sleep(IDLE) => Msg::Idle(clock.now_ms() - last),
        };
        if tx.send(msg).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

fn write(camera: &str, store_path: &Path, options: &Options, mut rx: mpsc::Receiver<Msg>) {
    let store = match Store::open(store_path) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(camera = %camera, error = %e, "recording: cannot open the index");
            return;
        }
    };
    if !index::valid_camera(camera) {
        tracing::error!(camera = %camera, "recording: the camera's name is not a safe file name");
        return;
    }
    let mut segmenter = Segmenter::new(camera, options.limits());
    let mut writer = writer::Writer::new(store.conn(), &options.root, camera);
    while let Some(msg) = rx.blocking_recv() {
        let actions = match msg {
            Msg::Item(item, now) => segmenter.push(&item, now),
            Msg::Idle(ms) => segmenter.idle(ms),
        };
        for a in actions {
            if let Err(dropped) = writer.apply(a) {
                segmenter.drop_segment();
                if let Some(n) = options.disk_full.as_ref().filter(|_| dropped.full) {
                    n.notify_one();
                }
                break;
            }
        }
    }
    for a in segmenter.finish() {
        if writer.apply(a).is_err() {
            break;
        }
    }
}
