//! Retention: the oldest recordings are deleted first, when they pass a camera's age or size
//! limit, the node's size limit, or when the disk's free space falls below its floor.
//!
//! [`plan`] is pure: it picks the segments to delete from the oldest segments and the totals.
//! [`run`] applies it: each file is deleted before its row (a crash in between leaves a row
//! without a file, which recovery deletes), and every deletion is logged. The open segment of a
//! camera is never deleted. A full disk is handled here, not by crashing: live streaming does
//! not depend on the disk.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, params};

use crate::base::Error;
use crate::config::site::RecordingLimits;

/// The floor of free space when `min_free_bytes` is not given: 1 GiB.
pub const DEFAULT_MIN_FREE: u64 = 1 << 30;
/// How many of the oldest segments one pass looks at.
pub const BATCH: usize = 2000;

/// A segment as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its row.
    pub id: i64,
    /// Its camera.
    pub camera: String,
    /// Its end, UTC ms.
    pub end_ms: i64,
    /// Its size.
    pub bytes: u64,
    /// Its file, relative to the recordings root.
    pub path: String,
}

/// A camera's own limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CameraLimits {
    /// Age, in days.
    pub keep_days: Option<u32>,
    /// Size, in bytes.
    pub max_bytes: Option<u64>,
}

/// Why a segment goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Older than its age limit.
    Age,
    /// Its camera holds more than its size limit.
    CameraSize,
    /// The node holds more than its size limit.
    NodeSize,
    /// The disk's free space is below the floor.
    FreeSpace,
}

/// Picks what to delete. `oldest` is oldest first and holds complete segments only; `totals`
/// is the bytes each camera holds; `free` the free bytes of the disk.
pub fn plan(
    oldest: &[Candidate],
    totals: &HashMap<String, u64>,
    node: &RecordingLimits,
    cameras: &HashMap<String, CameraLimits>,
    free: u64,
    now_ms: i64,
) -> Vec<(Candidate, Reason)> {
    let day = 86_400_000i64;
    let mut camera_bytes = totals.clone();
    let mut node_bytes: u64 = totals.values().sum();
    let mut freed = 0u64;
    let floor = node.min_free_bytes.unwrap_or(DEFAULT_MIN_FREE);
    let mut out = Vec::new();
    for c in oldest {
        let own = cameras.get(&c.camera).copied().unwrap_or_default();
        let keep = own.keep_days.or(node.keep_days);
        let reason = if keep.is_some_and(|d| c.end_ms < now_ms - i64::from(d) * day) {
            Some(Reason::Age)
        } else if own
            .max_bytes
            .is_some_and(|m| camera_bytes.get(&c.camera).copied().unwrap_or(0) > m)
        {
            Some(Reason::CameraSize)
        } else if node.max_bytes.is_some_and(|m| node_bytes > m) {
            Some(Reason::NodeSize)
        } else if free + freed < floor {
            Some(Reason::FreeSpace)
        } else {
            None
        };
        if let Some(r) = reason {
            if let Some(b) = camera_bytes.get_mut(&c.camera) {
                *b = b.saturating_sub(c.bytes);
            }
            node_bytes = node_bytes.saturating_sub(c.bytes);
            freed += c.bytes;
            out.push((c.clone(), r));
        }
    }
    out
}

/// Free bytes on the file system holding `path`.
pub fn free_bytes(path: &Path) -> u64 {
    nix::sys::statvfs::statvfs(path).map_or(u64::MAX, |s| s.blocks_available() * s.fragment_size())
}

/// One retention pass over the database at `db` and the files under `root`; returns how many
/// segments were deleted.
pub fn run(
    db: &Path,
    root: &Path,
    node: &RecordingLimits,
    cameras: &HashMap<String, CameraLimits>,
    now_ms: i64,
) -> Result<usize, Error> {
    let conn = Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let totals: HashMap<String, u64> = {
        let mut stmt =
            conn.prepare_cached("SELECT camera, SUM(bytes) FROM recording GROUP BY camera")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        rows.filter_map(Result::ok).collect()
    };
    let oldest: Vec<Candidate> = {
        let mut stmt = conn
            .prepare_cached("SELECT id, camera, end_ms, bytes, path FROM recording WHERE complete = 1 ORDER BY start_ms LIMIT ?1")?;
        let rows = stmt.query_map(params![BATCH as i64], |r| {
            Ok(Candidate {
                id: r.get(0)?,
                camera: r.get(1)?,
                end_ms: r.get(2)?,
                bytes: r.get::<_, i64>(3)? as u64,
                path: r.get(4)?,
            })
        })?;
        rows.filter_map(Result::ok).collect()
    };
    std::fs::create_dir_all(root)?;
    let doomed = plan(&oldest, &totals, node, cameras, free_bytes(root), now_ms);
    for (c, reason) in &doomed {
        match std::fs::remove_file(root.join(&c.path)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(camera = %c.camera, path = %c.path, error = %e, "cannot delete a recording");
                continue;
            }
        }
        if let Err(e) = crate::store::recording::delete(&conn, c.id) {
            tracing::warn!(camera = %c.camera, path = %c.path, error = %e, "cannot delete a recording's row");
            continue;
        }
        tracing::info!(camera = %c.camera, path = %c.path, bytes = c.bytes, reason = ?reason, "recording deleted by retention");
    }
    Ok(doomed.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(id: i64, camera: &str, end_ms: i64, bytes: u64) -> Candidate {
        Candidate {
            id,
            camera: camera.into(),
            end_ms,
            bytes,
            path: format!("{camera}/{id}.mp4"),
        }
    }

    #[test]
    fn the_oldest_go_first_for_each_limit() {
        let day = 86_400_000;
        let now = 10 * day;
        let oldest = vec![
            seg(1, "a", day, 10),
            seg(2, "b", 2 * day, 10),
            seg(3, "a", 9 * day, 10),
            seg(4, "b", 9 * day, 10),
        ];
        let totals = HashMap::from([("a".to_string(), 20u64), ("b".to_string(), 20u64)]);
        let lots = u64::MAX / 2;
        // Age: 5 days keeps only the last two.
        let node = RecordingLimits {
            keep_days: Some(5),
            ..Default::default()
        };
        let ids: Vec<i64> = plan(&oldest, &totals, &node, &HashMap::new(), lots, now)
            .iter()
            .map(|(c, _)| c.id)
            .collect();
        assert_eq!(ids, [1, 2]);
        // A camera's own age limit wins over the node's.
        let cams = HashMap::from([(
            "b".to_string(),
            CameraLimits {
                keep_days: Some(30),
                max_bytes: None,
            },
        )]);
        let ids: Vec<i64> = plan(&oldest, &totals, &node, &cams, lots, now)
            .iter()
            .map(|(c, _)| c.id)
            .collect();
        assert_eq!(ids, [1]);
        // Node size: 25 bytes allowed of 40, so the two oldest go.
        let node = RecordingLimits {
            max_bytes: Some(25),
            ..Default::default()
        };
        let got = plan(&oldest, &totals, &node, &HashMap::new(), lots, now);
        assert_eq!(
            got.iter().map(|(c, r)| (c.id, *r)).collect::<Vec<_>>(),
            [(1, Reason::NodeSize), (2, Reason::NodeSize)]
        );
        // Free space: 15 bytes short of the floor, so two segments of 10.
        let node = RecordingLimits {
            min_free_bytes: Some(100),
            ..Default::default()
        };
        let got = plan(&oldest, &totals, &node, &HashMap::new(), 85, now);
        assert_eq!(
            got.iter().map(|(c, r)| (c.id, *r)).collect::<Vec<_>>(),
            [(1, Reason::FreeSpace), (2, Reason::FreeSpace)]
        );
        // Within every limit, nothing goes.
        assert!(
            plan(
                &oldest,
                &totals,
                &RecordingLimits::default(),
                &HashMap::new(),
                lots,
                now
            )
            .is_empty()
        );
    }
}
