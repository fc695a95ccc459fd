//! Start-up recovery: makes the recordings' files and rows agree after a crash.
//!
//! Run once, before any recorder starts. It
//! - closes every incomplete row at its file's last whole fragment, truncating a torn tail
//!   (the row is deleted, and the file removed, if no whole keyframe fragment is left);
//! - deletes rows whose file is gone, and repairs rows whose file is shorter than they claim;
//! - adopts files that have no row (a crash between creating a file and inserting its row),
//!   rebuilding the row from the file, or removes them if they hold nothing playable.
//!
//! Crashes only leave such damage at the newest segments, so beyond the incomplete rows it
//! looks at each camera's last two days of directories (and the day of its newest row), not
//! at months of files.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::index;
use super::scan::{self, Scan};
use super::writer::sync_dir;
use crate::store::Error;
use crate::store::recording::{self, Segment};

/// What recovery did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Files without a row, adopted.
    pub adopted: usize,
    /// Files removed (unusable).
    pub removed: usize,
    /// Rows closed or corrected from their file.
    pub repaired: usize,
    /// Rows deleted (file gone or unusable).
    pub deleted: usize,
}

const DAY_MS: i64 = 86_400_000;

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::from(e).context(format!("recovery: {}", path.display()))
}

/// Scans a file, truncating it after its last whole fragment; `None` if it is unusable.
fn scan_and_truncate(path: &Path) -> Result<Option<Scan>, Error> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io(path, e))?;
    let len = file.metadata().map_err(|e| io(path, e))?.len();
    let found = scan::scan(&mut file, len).map_err(|e| io(path, e))?;
    if let Some(s) = &found
        && s.bytes < len
    {
        file.set_len(s.bytes).map_err(|e| io(path, e))?;
        file.sync_all().map_err(|e| io(path, e))?;
    }
    Ok(found)
}

fn remove(path: &Path) -> Result<(), Error> {
    std::fs::remove_file(path).map_err(|e| io(path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir).map_err(|e| io(dir, e))?;
    }
    Ok(())
}

fn fill(row: &mut Segment, s: &Scan) {
    row.bytes = s.bytes as i64;
    row.duration_90k = s.duration_90k as i64;
    row.end_ms = row.start_ms + row.duration_90k / 90;
    row.keyframes = index::encode(&s.keyframes);
    row.complete = true;
}

/// Repairs one row from its file.
fn repair(
    conn: &Connection,
    root: &Path,
    mut row: Segment,
    report: &mut Report,
) -> Result<(), Error> {
    let path = root.join(&row.path);
    if !path.exists() {
        recording::delete(conn, row.id)?;
        report.deleted += 1;
        return Ok(());
    }
    match scan_and_truncate(&path)? {
        Some(s) => {
            fill(&mut row, &s);
            recording::update(conn, &row)?;
            report.repaired += 1;
        }
        None => {
            recording::delete(conn, row.id)?;
            remove(&path)?;
            report.deleted += 1;
            report.removed += 1;
        }
    }
    Ok(())
}

/// Subdirectories of `dir` whose names are numbers of `width` digits, sorted.
fn numbered(dir: &Path, width: usize) -> Vec<(u32, PathBuf)> {
    let mut out: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            (name.len() == width).then_some(())?;
            Some((name.parse().ok()?, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// The day directories of a camera: (day number, path), oldest first.
fn day_dirs(camera_dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut out = Vec::new();
    for (y, yp) in numbered(camera_dir, 4) {
        for (m, mp) in numbered(&yp, 2) {
            for (d, dp) in numbered(&mp, 2) {
                out.push((index::days(i64::from(y), m, d), dp));
            }
        }
    }
    out
}

/// Makes files and rows agree under `root`; see the module's documentation.
pub fn run(conn: &Connection, root: &Path) -> Result<Report, Error> {
    let mut report = Report::default();
    for row in recording::incomplete(conn)? {
        repair(conn, root, row, &mut report)?;
    }
    let cameras: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| index::valid_camera(n))
        .collect();
    for camera in cameras {
        let days = day_dirs(&root.join(&camera));
        let newest = recording::newest(conn, &camera)?.map(|r| r.start_ms.div_euclid(DAY_MS));
        let recent = days.iter().rev().nth(1).or(days.last()).map(|(d, _)| *d);
        let Some(first_day) = [recent, newest].into_iter().flatten().min() else {
            continue;
        };
        let mut known = HashSet::new();
        for row in recording::since(conn, &camera, first_day * DAY_MS)? {
            known.insert(row.path.clone());
            let len = std::fs::metadata(root.join(&row.path))
                .map(|m| m.len())
                .ok();
            if len.is_none_or(|l| l < row.bytes as u64) {
                repair(conn, root, row, &mut report)?;
            }
        }
        for (_, dir) in days.iter().filter(|(d, _)| *d >= first_day) {
            let files = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
            for file in files.flatten() {
                let path = file.path();
                let Ok(rel) = path.strip_prefix(root) else {
                    continue;
                };
                let rel = rel.to_string_lossy().into_owned();
                if known.contains(&rel) {
                    continue;
                }
                adopt(conn, root, &rel, &mut report)?;
            }
        }
    }
    Ok(report)
}

fn adopt(conn: &Connection, root: &Path, rel: &str, report: &mut Report) -> Result<(), Error> {
    let path = root.join(rel);
    let Some((camera, start_ms)) = index::parse_path(rel) else {
        tracing::warn!(file = %path.display(), "recovery: not a segment file; left alone");
        return Ok(());
    };
    match scan_and_truncate(&path)? {
        Some(s) => {
            let mut row = Segment {
                id: 0,
                camera,
                start_ms,
                end_ms: start_ms,
                duration_90k: 0,
                bytes: 0,
                path: rel.to_string(),
                init_id: recording::put_init(conn, &s.init, "")?,
                keyframes: Vec::new(),
                complete: true,
            };
            fill(&mut row, &s);
            recording::insert(conn, &row)?;
            report.adopted += 1;
        }
        None => {
            remove(&path)?;
            report.removed += 1;
        }
    }
    Ok(())
}
