//! The recorder's effects: it applies [`Action`]s to the files and the index.
//!
//! The order is what makes a crash safe (see DESIGN.md): a file and its directory are synced
//! before the row naming it is inserted; fragments are appended with one `write` each (so a
//! kill -9 leaves them in the page cache); at each part the file is `fdatasync`ed before the
//! row's progress is updated, so a row never claims bytes that are not durable.
//!
//! An I/O error (a full disk above all: `ENOSPC` on a `write`, or on an `fdatasync`) never
//! stops the daemon or live streaming. The segment is closed at its last durable part: the
//! file is cut back to the bytes its row claims and the row is marked complete, or both go if
//! nothing playable was synced. The error is logged once, with the hint; then, for
//! [`RETRY_AFTER`], new segments are refused without touching the disk, and the next keyframe
//! after that tries again. The first segment that opens logs that recording resumed.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::segmenter::{Action, Progress};
use crate::store::Error;
use crate::store::recording::{self, Segment};

/// After a failed write, new segments are refused this long before the disk is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(2);

struct Current {
    file: File,
    row: Segment,
}

/// Why an action failed.
#[derive(Debug)]
struct Failure {
    error: Error,
    /// No space left on the device (`ENOSPC`), or over a quota (`EDQUOT`).
    full: bool,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        let full = error.to_string().contains("database or disk is full");
        Failure { error, full }
    }
}

/// A recording failure the segmenter must hear of: its segment is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Whether the disk was full.
    pub full: bool,
}

/// Applies one camera's actions under a recordings root.
pub struct Writer<'a> {
    conn: &'a rusqlite::Connection,
    root: PathBuf,
    camera: String,
    current: Option<Current>,
    /// Since the last failure, while recording is suspended: (when, whether the disk was full).
    failed: Option<(Instant, bool)>,
}

/// Syncs a directory, so the entries created in it survive a power cut.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl<'a> Writer<'a> {
    /// A writer for `camera`'s segments under `root`.
    pub fn new(conn: &'a rusqlite::Connection, root: &Path, camera: &str) -> Writer<'a> {
        Writer {
            conn,
            root: root.to_path_buf(),
            camera: camera.to_string(),
            current: None,
            failed: None,
        }
    }

    /// Applies an action. On an error the open segment is closed at its last durable part,
    /// and `Err` says so: the segmenter must drop its segment
    /// ([`super::segmenter::Segmenter::drop_segment`]). Actions for no open segment are ignored.
    pub fn apply(&mut self, action: Action) -> Result<(), Dropped> {
        let result = match action {
            Action::Open {
                path,
                start_ms,
                init,
                codecs,
            } => {
                self.current = None;
                match self.failed {
                    Some((at, full)) if at.elapsed() < RETRY_AFTER => {
                        return Err(Dropped { full });
                    }
                    _ => self.open(&path, start_ms, &init, &codecs),
                }
            }
            Action::Append(data) => match self.current.as_mut() {
                Some(c) => c.file.write_all(&data).map_err(|e| io(&c.row.path, e)),
                None => Ok(()),
            },
            Action::Sync(p) => self.progress(p, false),
            Action::Close(p) => {
                let r = self.progress(p, true);
                if r.is_ok() {
                    self.current = None;
                }
                r
            }
        };
        match result {
            Ok(()) => {
                if self.current.is_some()
                    && let Some((_, full)) = self.failed.take()
                {
                    tracing::info!(camera = %self.camera, after_full_disk = full, "recording resumed");
                }
                Ok(())
            }
            Err(f) => {
                let repeated = self.failed.is_some();
                self.failed = Some((Instant::now(), f.full));
                let closed = self.close_at_last_part();
                let hint = if f.full {
                    "the recordings' disk is full: retention frees space; recording resumes when it can write again"
                } else {
                    "recording retries at a keyframe every 2 s"
                };
                if repeated {
                    tracing::debug!(camera = %self.camera, error = %f.error, "recording still suspended");
                } else {
                    tracing::error!(camera = %self.camera, error = %f.error, disk_full = f.full, segment = %closed, "recording: segment closed after a write error; {hint}");
                }
                Err(Dropped { full: f.full })
            }
        }
    }

    /// Ends the open segment after an error, keeping what its row claims (durable by the
    /// fsync ordering): the file is cut back to it and the row closed; with nothing playable,
    /// the row and the file go. Says what it did, for the log.
    fn close_at_last_part(&mut self) -> String {
        let Some(Current { file, mut row }) = self.current.take() else {
            return "none open".into();
        };
        let path = self.root.join(&row.path);
        let playable = row.duration_90k > 0 && !row.keyframes.is_empty();
        if playable {
            row.complete = true;
            let closed = file
                .set_len(row.bytes as u64)
                .map_err(|e| io(&row.path, e).error)
                .and_then(|()| recording::update(self.conn, &row));
            return match closed {
                Ok(()) => format!("{} closed at {} bytes", row.path, row.bytes),
                Err(e) => format!("{} left for recovery: {e}", row.path),
            };
        }
        drop(file);
        let removed = recording::delete(self.conn, row.id)
            .and_then(|()| std::fs::remove_file(&path).map_err(|e| io(&row.path, e).error));
        match removed {
            Ok(()) => format!("{} removed (nothing durable yet)", row.path),
            Err(e) => format!("{} left for recovery: {e}", row.path),
        }
    }

    fn open(&mut self, rel: &str, start_ms: i64, init: &[u8], codecs: &str) -> Result<(), Failure> {
        let path = self.root.join(rel);
        let dir = path.parent().unwrap_or(&self.root);
        // The directories this creates, deepest last, to sync their parents.
        let mut created = Vec::new();
        let mut d = dir;
        while !d.exists() && d != self.root {
            created.push(d.to_path_buf());
            d = d.parent().unwrap_or(&self.root);
        }
        std::fs::create_dir_all(dir).map_err(|e| io(rel, e))?;
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io(rel, e))?;
        match self.start(file, rel, dir, &created, start_ms, init, codecs) {
            Ok(current) => {
                self.current = Some(current);
                Ok(())
            }
            Err(f) => {
                // No row names the file: it goes, so a full disk leaves no stray files.
                let _ = std::fs::remove_file(&path);
                Err(f)
            }
        }
    }

    /// Writes and syncs a new file's init segment and directories, then inserts its row.
    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        mut file: File,
        rel: &str,
        dir: &Path,
        created: &[PathBuf],
        start_ms: i64,
        init: &[u8],
        codecs: &str,
    ) -> Result<Current, Failure> {
        file.write_all(init).map_err(|e| io(rel, e))?;
        file.sync_data().map_err(|e| io(rel, e))?;
        sync_dir(dir).map_err(|e| io(rel, e))?;
        for c in created {
            sync_dir(c.parent().unwrap_or(&self.root)).map_err(|e| io(rel, e))?;
        }
        let init_id = recording::put_init(self.conn, init, codecs)?;
        let mut row = Segment {
            id: 0,
            camera: self.camera.clone(),
            start_ms,
            end_ms: start_ms,
            duration_90k: 0,
            bytes: init.len() as i64,
            path: rel.to_string(),
            init_id,
            keyframes: Vec::new(),
            complete: false,
        };
        row.id = recording::insert(self.conn, &row)?;
        Ok(Current { file, row })
    }

    fn progress(&mut self, p: Progress, complete: bool) -> Result<(), Failure> {
        let Some(c) = self.current.as_mut() else {
            return Ok(());
        };
        c.file.sync_data().map_err(|e| io(&c.row.path, e))?;
        let mut row = c.row.clone();
        row.end_ms = p.end_ms;
        row.duration_90k = p.duration_90k;
        row.bytes = p.bytes as i64;
        row.keyframes = p.keyframes;
        row.complete = complete;
        recording::update(self.conn, &row)?;
        // Only what the index holds is the row: a failed update leaves the last one in force.
        c.row = row;
        Ok(())
    }
}

fn io(path: &str, e: std::io::Error) -> Failure {
    let full = matches!(
        e.raw_os_error(),
        Some(code) if code == nix::errno::Errno::ENOSPC as i32 || code == nix::errno::Errno::EDQUOT as i32
    );
    Failure {
        error: Error::from(e).context(format!("recording {path}")),
        full,
    }
}
