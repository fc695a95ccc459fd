//! The recorder's effects: it applies [`Action`]s to the files and the index.
//!
//! The order is what makes a crash safe (see DESIGN.md): a file and its directory are synced
//! before the row naming it is inserted; fragments are appended with one `write` each (so a
//! kill -9 leaves them in the page cache); at each part the file is `fdatasync`ed before the
//! row's progress is updated, so a row never claims bytes that are not durable.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::segmenter::{Action, Progress};
use crate::store::Error;
use crate::store::recording::{self, Segment};

struct Current {
    file: File,
    row: Segment,
}

/// Applies one camera's actions under a recordings root.
pub struct Writer<'a> {
    conn: &'a rusqlite::Connection,
    root: PathBuf,
    camera: String,
    current: Option<Current>,
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
        }
    }

    /// Applies an action. After an error the segment is abandoned (its row stays incomplete
    /// for recovery) and actions are ignored until the next [`Action::Open`].
    pub fn apply(&mut self, action: Action) {
        let result = match action {
            Action::Open {
                path,
                start_ms,
                init,
                codecs,
            } => {
                self.current = None;
                self.open(&path, start_ms, &init, &codecs)
            }
            Action::Append(data) => match self.current.as_mut() {
                Some(c) => c.file.write_all(&data).map_err(|e| io(&c.row.path, e)),
                None => Ok(()),
            },
            Action::Sync(p) => self.progress(p, false),
            Action::Close(p) => {
                let r = self.progress(p, true);
                self.current = None;
                r
            }
        };
        if let Err(e) = result {
            tracing::error!(camera = %self.camera, error = %e, "recording: segment abandoned");
            self.current = None;
        }
    }

    fn open(&mut self, rel: &str, start_ms: i64, init: &[u8], codecs: &str) -> Result<(), Error> {
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
        let mut file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io(rel, e))?;
        file.write_all(init).map_err(|e| io(rel, e))?;
        file.sync_data().map_err(|e| io(rel, e))?;
        sync_dir(dir).map_err(|e| io(rel, e))?;
        for c in &created {
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
        self.current = Some(Current { file, row });
        Ok(())
    }

    fn progress(&mut self, p: Progress, complete: bool) -> Result<(), Error> {
        let Some(c) = self.current.as_mut() else {
            return Ok(());
        };
        c.file.sync_data().map_err(|e| io(&c.row.path, e))?;
        c.row.end_ms = p.end_ms;
        c.row.duration_90k = p.duration_90k;
        c.row.bytes = p.bytes as i64;
        c.row.keyframes = p.keyframes;
        c.row.complete = complete;
        recording::update(self.conn, &c.row)
    }
}

fn io(path: &str, e: std::io::Error) -> Error {
    Error(format!("recording {path}: {e}"))
}
