//! The recordings index: one row per segment file, and the init segments the files start with.
//!
//! A row names its camera, its wall-clock span `[start_ms, end_ms)` (UTC milliseconds), its
//! media duration (90 kHz), the bytes of its file that are whole fragments, the file (relative
//! to the recordings root), its init segment, and its keyframes (a compact blob the recorder
//! encodes: byte offset and media time of each keyframe's fragment). `complete` is false while
//! the recorder still appends to it, or after a crash until recovery closes it.
//!
//! Invariants: a row never claims bytes its file does not durably hold (the recorder syncs the
//! file before it updates the row); no segment is longer than [`MAX_SEGMENT_MS`], so a range
//! query is one index range on `(camera, start_ms)`: O(log n + k) whatever the index's size.

use rusqlite::{Connection, OptionalExtension as _, params};

use super::{Error, Store};

/// The longest a segment may be, wall clock; the recorder closes a segment at this length even
/// without a keyframe, and range queries rely on it.
pub const MAX_SEGMENT_MS: i64 = 10 * 60 * 1000;

/// Segments this close (or overlapping) are one span.
pub const SPAN_GAP_MS: i64 = 1000;

/// One segment's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Its id (ignored by [`insert`]).
    pub id: i64,
    /// The camera.
    pub camera: String,
    /// Wall time of its first frame, UTC milliseconds.
    pub start_ms: i64,
    /// Wall time just past its last frame, UTC milliseconds.
    pub end_ms: i64,
    /// Media duration, 90 kHz ticks.
    pub duration_90k: i64,
    /// Length of the file's whole fragments (the init segment included).
    pub bytes: i64,
    /// The file, relative to the recordings root.
    pub path: String,
    /// Its init segment ([`init`]).
    pub init_id: i64,
    /// Its keyframes, as the recorder encodes them.
    pub keyframes: Vec<u8>,
    /// Whether the recorder closed it.
    pub complete: bool,
}

/// A recorded span of a camera: adjacent segments merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Start, UTC milliseconds.
    pub start_ms: i64,
    /// End, UTC milliseconds.
    pub end_ms: i64,
}

const COLUMNS: &str =
    "id, camera, start_ms, end_ms, duration_90k, bytes, path, init_id, keyframes, complete";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Segment> {
    Ok(Segment {
        id: r.get(0)?,
        camera: r.get(1)?,
        start_ms: r.get(2)?,
        end_ms: r.get(3)?,
        duration_90k: r.get(4)?,
        bytes: r.get(5)?,
        path: r.get(6)?,
        init_id: r.get(7)?,
        keyframes: r.get(8)?,
        complete: r.get(9)?,
    })
}

/// Stores an init segment once (by SHA-256); returns its id.
pub fn put_init(conn: &Connection, data: &[u8], codecs: &str) -> Result<i64, Error> {
    let sha = ring::digest::digest(&ring::digest::SHA256, data);
    conn.prepare_cached(
        "INSERT INTO recording_init (sha256, codecs, data) VALUES (?1, ?2, ?3)
         ON CONFLICT (sha256) DO NOTHING",
    )?
    .execute(params![sha.as_ref(), codecs, data])?;
    Ok(conn
        .prepare_cached("SELECT id FROM recording_init WHERE sha256 = ?1")?
        .query_row(params![sha.as_ref()], |r| r.get(0))?)
}

/// An init segment's bytes.
pub fn init(conn: &Connection, id: i64) -> Result<Option<Vec<u8>>, Error> {
    Ok(conn
        .prepare_cached("SELECT data FROM recording_init WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))
        .optional()?)
}

/// Adds a row; returns its id.
pub fn insert(conn: &Connection, s: &Segment) -> Result<i64, Error> {
    conn.prepare_cached(
        "INSERT INTO recording (camera, start_ms, end_ms, duration_90k, bytes, path, init_id, keyframes, complete)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        s.camera,
        s.start_ms,
        s.end_ms,
        s.duration_90k,
        s.bytes,
        s.path,
        s.init_id,
        s.keyframes,
        s.complete
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Updates a row's progress: end, duration, bytes, keyframes and `complete`.
pub fn update(conn: &Connection, s: &Segment) -> Result<(), Error> {
    conn.prepare_cached(
        "UPDATE recording SET end_ms = ?2, duration_90k = ?3, bytes = ?4, keyframes = ?5, complete = ?6
         WHERE id = ?1",
    )?
    .execute(params![
        s.id,
        s.end_ms,
        s.duration_90k,
        s.bytes,
        s.keyframes,
        s.complete
    ])?;
    Ok(())
}

/// Removes a row.
pub fn delete(conn: &Connection, id: i64) -> Result<(), Error> {
    conn.prepare_cached("DELETE FROM recording WHERE id = ?1")?
        .execute(params![id])?;
    Ok(())
}

/// The rows of camera `?1` overlapping `[?2, ?3)`: one range of the index on
/// `(camera, start_ms)`, sound because no segment is longer than [`MAX_SEGMENT_MS`].
const RANGE: &str = "camera = ?1 AND start_ms > ?2 - MAX AND start_ms < ?3 AND end_ms > ?2";

/// The statement of [`segments_overlapping`].
pub fn segments_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM recording WHERE {} ORDER BY start_ms",
        RANGE.replace("MAX", &MAX_SEGMENT_MS.to_string())
    )
}

/// The statement of [`spans`]: it reads only the covering index `(camera, start_ms, end_ms)`.
pub fn spans_sql() -> String {
    format!(
        "SELECT start_ms, end_ms FROM recording WHERE {} ORDER BY start_ms",
        RANGE.replace("MAX", &MAX_SEGMENT_MS.to_string())
    )
}

/// The segments of `camera` that overlap `[start_ms, end_ms)`, oldest first.
pub fn segments_overlapping(
    conn: &Connection,
    camera: &str,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<Segment>, Error> {
    let mut stmt = conn.prepare_cached(&segments_sql())?;
    let rows = stmt.query_map(params![camera, start_ms, end_ms], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The recorded spans of `camera` within `[start_ms, end_ms)`: segments at most
/// [`SPAN_GAP_MS`] apart merged, clipped to the range.
pub fn spans(
    conn: &Connection,
    camera: &str,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<Span>, Error> {
    let mut stmt = conn.prepare_cached(&spans_sql())?;
    let rows = stmt.query_map(params![camera, start_ms, end_ms], |r| {
        Ok(Span {
            start_ms: r.get(0)?,
            end_ms: r.get(1)?,
        })
    })?;
    let rows = rows.collect::<Result<Vec<_>, _>>()?;
    Ok(merge(rows, SPAN_GAP_MS)
        .into_iter()
        .map(|s| Span {
            start_ms: s.start_ms.max(start_ms),
            end_ms: s.end_ms.min(end_ms),
        })
        .collect())
}

/// Merges spans sorted by start whose gap is at most `gap_ms` (overlaps included).
pub fn merge(sorted: impl IntoIterator<Item = Span>, gap_ms: i64) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for s in sorted {
        match out.last_mut() {
            Some(last) if s.start_ms <= last.end_ms + gap_ms => {
                last.end_ms = last.end_ms.max(s.end_ms);
            }
            _ => out.push(s),
        }
    }
    out
}

/// Rows the recorder left open (a crash, or still being written).
pub fn incomplete(conn: &Connection) -> Result<Vec<Segment>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM recording WHERE complete = 0 ORDER BY id"
    ))?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Rows of `camera` starting at or after `start_ms`, oldest first.
pub fn since(conn: &Connection, camera: &str, start_ms: i64) -> Result<Vec<Segment>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM recording WHERE camera = ?1 AND start_ms >= ?2 ORDER BY start_ms"
    ))?;
    let rows = stmt.query_map(params![camera, start_ms], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The row `id`, if it is still there.
pub fn get(conn: &Connection, id: i64) -> Result<Option<Segment>, Error> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM recording WHERE id = ?1"))?
        .query_row(params![id], row)
        .optional()?)
}

/// The newest row of `camera`.
pub fn newest(conn: &Connection, camera: &str) -> Result<Option<Segment>, Error> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM recording WHERE camera = ?1 ORDER BY start_ms DESC LIMIT 1"
        ))?
        .query_row(params![camera], row)
        .optional()?)
}

impl Store {
    /// [`spans`], on the daemon's connection.
    pub fn recording_spans(
        &self,
        camera: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Span>, Error> {
        spans(self.conn(), camera, start_ms, end_ms)
    }

    /// [`segments_overlapping`], on the daemon's connection.
    pub fn recording_segments(
        &self,
        camera: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Segment>, Error> {
        segments_overlapping(self.conn(), camera, start_ms, end_ms)
    }

    /// [`get`], on the daemon's connection.
    pub fn recording_segment(&self, id: i64) -> Result<Option<Segment>, Error> {
        get(self.conn(), id)
    }

    /// Bytes and segments held per camera, for the metrics.
    pub fn recording_totals(&self) -> Result<Vec<(String, u64, u64)>, Error> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT camera, SUM(bytes), COUNT(*) FROM recording GROUP BY camera ORDER BY camera",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The init segment `id` (see [`init`]).
    pub fn recording_init(&self, id: i64) -> Result<Option<Vec<u8>>, Error> {
        init(self.conn(), id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn segment(camera: &str, start_ms: i64, end_ms: i64, init_id: i64) -> Segment {
        Segment {
            id: 0,
            camera: camera.into(),
            start_ms,
            end_ms,
            duration_90k: (end_ms - start_ms) * 90,
            bytes: 1000,
            path: format!("{camera}/{start_ms}.mp4"),
            init_id,
            keyframes: vec![1, 2, 3],
            complete: true,
        }
    }

    #[test]
    fn spans_merge_segments_a_second_apart_and_are_clipped_to_the_range() {
        let store = Store::memory().unwrap();
        let c = store.conn();
        let init = put_init(c, b"init", "avc1").unwrap();
        assert_eq!(put_init(c, b"init", "avc1").unwrap(), init, "stored once");
        for (s, e) in [(0, 60_000), (60_500, 120_000), (125_000, 130_000)] {
            insert(c, &segment("a", s, e, init)).unwrap();
        }
        insert(c, &segment("b", 0, 200_000, init)).unwrap();
        let spans = store.recording_spans("a", 10_000, 128_000).unwrap();
        assert_eq!(
            spans,
            [
                Span {
                    start_ms: 10_000,
                    end_ms: 120_000
                },
                Span {
                    start_ms: 125_000,
                    end_ms: 128_000
                }
            ]
        );
        assert!(
            store
                .recording_spans("a", 130_000, 140_000)
                .unwrap()
                .is_empty()
        );
        let segs = store.recording_segments("a", 59_000, 61_000).unwrap();
        assert_eq!(
            segs.iter().map(|s| s.start_ms).collect::<Vec<_>>(),
            [0, 60_500]
        );
        assert_eq!(segs[0].keyframes, [1, 2, 3]);
        assert_eq!(store.recording_init(init).unwrap().unwrap(), b"init");
    }

    #[test]
    fn merge_takes_overlaps_and_keeps_gaps() {
        let s = |a, b| Span {
            start_ms: a,
            end_ms: b,
        };
        assert_eq!(
            merge([s(0, 10), s(5, 8), s(9, 20), s(1021, 30)], 1000),
            [s(0, 20), s(1021, 30)]
        );
    }

    /// The query plan of `sql`, one detail line per step.
    fn query_plan(conn: &Connection, sql: &str) -> Vec<String> {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(params!["cam7", 0i64, 1i64], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Rows for `cameras` cameras of `per_camera` 60 s segments each from `t0`, every 1000th
    /// ending 5 s early (a gap), in one transaction with one prepared statement, as a year of
    /// recording would leave them. Returns the time it took.
    fn fill(conn: &Connection, cameras: usize, per_camera: i64, t0: i64) -> std::time::Duration {
        let init = put_init(conn, b"init", "avc1").unwrap();
        let started = std::time::Instant::now();
        let tx = conn.unchecked_transaction().unwrap();
        {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO recording (camera, start_ms, end_ms, duration_90k, bytes, path, init_id, keyframes, complete)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1)",
                )
                .unwrap();
            let keyframes = vec![0u8; 120];
            for cam in 0..cameras {
                let camera = format!("cam{cam}");
                for i in 0..per_camera {
                    let start = t0 + i * 60_000;
                    let end = start + 60_000 - if i % 1000 == 999 { 5000 } else { 0 };
                    stmt.execute(params![
                        camera,
                        start,
                        end,
                        (end - start) * 90,
                        15_000_000,
                        format!("{camera}/{start}.mp4"),
                        init,
                        keyframes
                    ])
                    .unwrap();
                }
            }
        }
        tx.commit().unwrap();
        started.elapsed()
    }

    /// A large index answers from one index range: correct spans, and no full scan of the
    /// table in either query's plan. 1,000,000 rows take about 10 s to build in a debug build;
    /// how fast the queries are is `make bench`'s (`benches/recording.rs`), not a timed test.
    #[test]
    fn a_large_index_lists_one_range_without_scanning_the_table() {
        let dir = std::env::temp_dir().join(format!("sited-large-index-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir.join("sited.db")).unwrap();
        let c = store.conn();
        let t0 = 1_700_000_000_000i64;
        let took = fill(c, 10, 100_000, t0);
        eprintln!("inserted 1,000,000 rows in {took:?}");
        let count: i64 = c
            .query_row("SELECT COUNT(*) FROM recording", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 1_000_000);
        // One day, from day 1.5: segments 2160 to 3599, and the 5 s gap after segment 2999.
        let day = 86_400_000;
        let (start, end) = (t0 + 3 * day / 2, t0 + 5 * day / 2);
        let spans = store.recording_spans("cam7", start, end).unwrap();
        let gap = t0 + 2999 * 60_000 + 55_000;
        assert_eq!(
            spans,
            [
                Span {
                    start_ms: start,
                    end_ms: gap
                },
                Span {
                    start_ms: gap + 5000,
                    end_ms: end
                }
            ]
        );
        let segs = store.recording_segments("cam7", start, end).unwrap();
        assert_eq!(segs.len(), 1440);
        assert!(segs.iter().all(|s| s.camera == "cam7"));
        // Everything: 100,000 minutes, a gap after every 1000th but the last.
        let all = store.recording_spans("cam3", 0, i64::MAX / 2).unwrap();
        assert_eq!(all.len(), 100);
        for sql in [spans_sql(), segments_sql()] {
            let plan = query_plan(c, &sql);
            assert!(
                plan.iter().any(|p| p.starts_with("SEARCH recording USING")
                    && p.contains("(camera=? AND start_ms>? AND start_ms<?)")),
                "{sql}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|p| p.starts_with("SCAN")),
                "a full scan in {sql}: {plan:?}"
            );
        }
        assert!(
            query_plan(c, &spans_sql())
                .iter()
                .any(|p| p.contains("COVERING INDEX recording_camera_start")),
            "spans read the covering index only"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
