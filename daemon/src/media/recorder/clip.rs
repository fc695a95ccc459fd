//! Clips: an MP4 of a camera's `[start, end)` built on the fly from its segments, without
//! re-encoding.
//!
//! A clip is a fragmented MP4: the segments' init segment, then their fragments, from the
//! keyframe at or before `start` to the first video fragment at or after `end`. It is cut at
//! that keyframe, with no edit list: it may begin up to one GOP before `start`. Every `tfdt` is
//! rebased as the bytes are read, so the clip starts at 0 and its timestamps increase across
//! segments; a gap between segments (a crash, a camera outage) is closed up, not kept as
//! a jump. Rewriting a `tfdt` in place keeps its size, so the length is known up front: an
//! HTTP handler sends Content-Length and serves Range requests (`web::range`) from
//! [`ClipReader`].
//!
//! [`plan`] is pure and cuts the end at a keyframe; [`ClipPlan::trim_end`] reads the `moof`s of
//! that last GOP (a few dozen small reads) to cut at the first video frame at or after `end`.
//! A clip stops at a change of init segment (new codec parameters): one MP4 has one `moov`.
//! Its `moov` gains a `mehd` with the clip's duration, so players know it up front.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::index;
use super::scan;
use crate::media::fmp4::VIDEO_ID;
use crate::store::recording::Segment;

/// Bytes a [`ClipReader`] returns at most at once.
pub const CHUNK: usize = 64 * 1024;

/// Where the end of the last piece may be trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trim {
    /// The file offset of the last GOP's keyframe, where the scan starts.
    pub from: u64,
    /// The first video `tfdt` (segment time) to leave out.
    pub end_90k: u64,
    /// The segment's start, UTC ms.
    pub segment_start_ms: i64,
}

/// One contiguous part of a clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Bytes held in memory (the init segment).
    Data(Bytes),
    /// A run of whole fragments of a segment file.
    File {
        /// The file.
        path: PathBuf,
        /// Where the run starts in the file (a keyframe's `moof`).
        offset: u64,
        /// Its length.
        len: u64,
        /// The segment time (90 kHz) of the run's first keyframe...
        from_90k: u64,
        /// ...and the clip time it becomes.
        to_90k: u64,
        /// How the end may be trimmed ([`ClipPlan::trim_end`]).
        trim: Option<Trim>,
    },
}

impl Piece {
    /// Its length in the clip.
    pub fn len(&self) -> u64 {
        match self {
            Piece::Data(b) => b.len() as u64,
            Piece::File { len, .. } => *len,
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A clip, ready to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipPlan {
    /// The clip's length: the Content-Length.
    pub len: u64,
    /// Its parts, in order.
    pub pieces: Vec<Piece>,
    /// The wall time of its first frame (at or before the asked start), UTC ms.
    pub start_ms: i64,
    /// The wall time past its last frame, UTC ms.
    pub end_ms: i64,
    /// Whether it stops early, at a change of codec parameters.
    pub truncated: bool,
    timescales: Vec<(u32, u32)>,
    /// The clip's media duration (90 kHz), and where the init's `mehd` holds it.
    duration_90k: u64,
    mehd: Option<(usize, u64)>,
}

/// Plans the clip `[start_ms, end_ms)` from `segments` (as
/// [`crate::store::recording::segments_overlapping`] returns them, oldest first) and the init
/// segment of the first one; `None` if nothing is recorded in the range.
pub fn plan(
    root: &Path,
    segments: &[Segment],
    init: Bytes,
    start_ms: i64,
    end_ms: i64,
) -> Option<ClipPlan> {
    let first_init = segments.first()?.init_id;
    let mut out = ClipPlan {
        len: init.len() as u64,
        timescales: scan::timescales(&init),
        pieces: vec![Piece::Data(init)],
        start_ms: 0,
        end_ms: 0,
        truncated: false,
        duration_90k: 0,
        mehd: None,
    };
    let mut clip_time = 0u64;
    let wall = |seg: &Segment, t: u64| seg.start_ms + (t / 90) as i64;
    for seg in segments {
        if seg.end_ms <= start_ms || seg.start_ms >= end_ms {
            continue;
        }
        if seg.init_id != first_init {
            out.truncated = true;
            break;
        }
        let Some(ks) = index::decode(&seg.keyframes).filter(|k| !k.is_empty()) else {
            continue;
        };
        let first = if out.pieces.len() == 1 {
            ks.iter()
                .rposition(|k| wall(seg, k.time) <= start_ms)
                .unwrap_or(0)
        } else {
            0
        };
        let from = ks[first];
        let stop = ks[first + 1..]
            .iter()
            .position(|k| wall(seg, k.time) >= end_ms)
            .map(|i| i + first + 1);
        let (to_offset, to_time) = match stop {
            Some(i) => (ks[i].offset, ks[i].time),
            None => (seg.bytes as u64, seg.duration_90k as u64),
        };
        if to_offset <= from.offset || to_time < from.time {
            continue;
        }
        let end_90k = ((end_ms - seg.start_ms).max(0) * 90) as u64;
        let trim = (end_90k < to_time).then(|| {
            let last = ks[..stop.unwrap_or(ks.len())]
                .iter()
                .rev()
                .find(|k| k.time <= end_90k)
                .unwrap_or(&from);
            Trim {
                from: last.offset.max(from.offset),
                end_90k,
                segment_start_ms: seg.start_ms,
            }
        });
        if out.pieces.len() == 1 {
            out.start_ms = wall(seg, from.time);
        }
        out.pieces.push(Piece::File {
            path: root.join(&seg.path),
            offset: from.offset,
            len: to_offset - from.offset,
            from_90k: from.time,
            to_90k: clip_time,
            trim,
        });
        out.len += to_offset - from.offset;
        clip_time += to_time - from.time;
        out.end_ms = wall(seg, to_time);
        if stop.is_some() || end_90k < to_time {
            break;
        }
    }
    if out.pieces.len() == 1 {
        return None;
    }
    out.duration_90k = clip_time;
    if let Some(Piece::Data(init)) = out.pieces.first_mut()
        && let Some((with, at, scale)) = scan::with_duration(init, clip_time / 90)
    {
        out.len = out.len - init.len() as u64 + with.len() as u64;
        *init = Bytes::from(with);
        out.mehd = Some((at, scale));
    }
    Some(out)
}

fn read_at(file: &mut File, at: u64, len: usize) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(at))?;
    let mut buf = vec![0; len];
    file.read_exact(&mut buf)?;
    Ok(buf)
}

impl ClipPlan {
    /// A run of whole fragments with no init segment (an HLS media segment): the bytes
    /// `offset..offset + len` of `path`, whose decode times are rebased from `from_90k` to
    /// `to_90k`; `init` gives the tracks' timescales. Its wall times are left at 0.
    pub fn fragments(
        path: PathBuf,
        init: &[u8],
        offset: u64,
        len: u64,
        from_90k: u64,
        to_90k: u64,
    ) -> ClipPlan {
        ClipPlan {
            len,
            pieces: vec![Piece::File {
                path,
                offset,
                len,
                from_90k,
                to_90k,
                trim: None,
            }],
            start_ms: 0,
            end_ms: 0,
            truncated: false,
            timescales: scan::timescales(init),
            duration_90k: 0,
            mehd: None,
        }
    }

    /// Cuts the last piece at its first video fragment at or after the asked end, reading the
    /// `moof`s of its last GOP.
    pub fn trim_end(&mut self) -> io::Result<()> {
        let Some(Piece::File {
            path,
            offset,
            len,
            from_90k,
            to_90k,
            trim: trim @ Some(_),
        }) = self.pieces.last_mut()
        else {
            return Ok(());
        };
        let Some(t) = trim.take() else {
            return Ok(());
        };
        let mut file = File::open(&*path)?;
        let end = *offset + *len;
        let mut pos = t.from;
        while pos + 8 <= end {
            let head = read_at(&mut file, pos, 16.min((end - pos) as usize))?;
            let h = scan::header(&head).ok_or_else(|| bad(path))?;
            if &h.kind == b"moof" {
                let m = scan::moof(&read_at(&mut file, pos, h.size as usize)?)
                    .ok_or_else(|| bad(path))?;
                if m.track == VIDEO_ID && m.tfdt >= t.end_90k && pos > *offset {
                    self.len -= end - pos;
                    *len = pos - *offset;
                    self.end_ms = t.segment_start_ms + (m.tfdt / 90) as i64;
                    self.duration_90k = *to_90k + (m.tfdt - *from_90k);
                    break;
                }
            }
            pos += h.size;
        }
        if let (Some((at, scale)), Some(Piece::Data(init))) = (self.mehd, self.pieces.first_mut()) {
            let mut patched = init.to_vec();
            let value = self.duration_90k / 90 * scale / 1000;
            patched[at..at + 8].copy_from_slice(&value.to_be_bytes());
            *init = Bytes::from(patched);
        }
        Ok(())
    }
}

fn bad(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: not a segment sited wrote", path.display()),
    )
}

/// Reads a byte range of a clip, in chunks of at most [`CHUNK`], rebasing each `moof`'s
/// `tfdt` on the way. Blocking: run it on a blocking thread.
pub struct ClipReader {
    plan: Arc<ClipPlan>,
    pos: u64,
    end: u64,
    piece: usize,
    piece_start: u64,
    file: Option<File>,
    cursor: u64,
    raw: Option<Range<u64>>,
    moof: Option<(u64, Bytes)>,
}

impl ClipReader {
    /// A reader of `range` (clamped to the clip).
    pub fn new(plan: Arc<ClipPlan>, range: Range<u64>) -> ClipReader {
        let end = range.end.min(plan.len);
        ClipReader {
            plan,
            pos: range.start.min(end),
            end,
            piece: 0,
            piece_start: 0,
            file: None,
            cursor: 0,
            raw: None,
            moof: None,
        }
    }

    fn step(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            if self.pos >= self.end {
                return Ok(None);
            }
            let plan = self.plan.clone();
            let Some(piece) = plan.pieces.get(self.piece) else {
                return Ok(None);
            };
            if self.pos >= self.piece_start + piece.len() {
                self.piece_start += piece.len();
                self.piece += 1;
                self.file = None;
                continue;
            }
            let rel = self.pos - self.piece_start;
            let limit = piece.len().min(self.end - self.piece_start);
            let (path, offset, len, from_90k, to_90k) = match piece {
                Piece::Data(b) => {
                    let out = b.slice(rel as usize..limit as usize);
                    self.pos += out.len() as u64;
                    return Ok(Some(out));
                }
                Piece::File {
                    path,
                    offset,
                    len,
                    from_90k,
                    to_90k,
                    ..
                } => (path, *offset, *len, *from_90k, *to_90k),
            };
            if self.file.is_none() {
                self.file = Some(File::open(path)?);
                self.cursor = offset;
                self.raw = None;
                self.moof = None;
            }
            let file = self.file.as_mut().ok_or_else(|| bad(path))?;
            let want = offset + rel;
            let stop = offset + limit;
            if let Some((at, m)) = &self.moof
                && want >= *at
                && want < at + m.len() as u64
            {
                let out =
                    m.slice((want - at) as usize..(stop.min(at + m.len() as u64) - at) as usize);
                self.pos += out.len() as u64;
                return Ok(Some(out));
            }
            if self.raw.as_ref().is_some_and(|r| r.contains(&want)) {
                let n = (self.raw.as_ref().map_or(want, |r| r.end).min(stop) - want)
                    .min(CHUNK as u64) as usize;
                let out = Bytes::from(read_at(file, want, n)?);
                self.pos += n as u64;
                return Ok(Some(out));
            }
            // The next box: skipped if wholly before `want`, else cached (a `moof`, rebased)
            // or marked as raw bytes (an `mdat`).
            if self.cursor + 8 > offset + len {
                return Err(bad(path));
            }
            let head = read_at(file, self.cursor, 8)?;
            let h = scan::header(&head).ok_or_else(|| bad(path))?;
            let at = self.cursor;
            self.cursor += h.size;
            if self.cursor <= want {
                continue;
            }
            if &h.kind == b"moof" {
                let mut m = read_at(file, at, h.size as usize)?;
                let scales = &plan.timescales;
                scan::patch_tfdt(&mut m, |track, old| {
                    let ts = scales
                        .iter()
                        .find(|(id, _)| *id == track)
                        .map_or(90_000, |(_, s)| u64::from(*s));
                    let rescale = |t: u64| (u128::from(t) * u128::from(ts) / 90_000) as u64;
                    old.saturating_sub(rescale(from_90k)) + rescale(to_90k)
                });
                self.moof = Some((at, Bytes::from(m)));
            } else {
                self.raw = Some(at..self.cursor);
            }
        }
    }
}

impl Iterator for ClipReader {
    type Item = io::Result<Bytes>;

    fn next(&mut self) -> Option<io::Result<Bytes>> {
        match self.step() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => None,
            Err(e) => {
                self.pos = self.end;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::media::recorder::index::{Keyframe, encode};

    /// A 4 s segment with a keyframe each second, 1000 bytes per second after a 100-byte init.
    fn segment(start_ms: i64, init_id: i64) -> Segment {
        gops(0, start_ms, init_id, 4, 1, &format!("{start_ms}.mp4"))
    }

    /// A complete segment of `count` GOPs of `gop_secs` seconds and 1000 bytes each, after a
    /// 100-byte init, stored at `path`.
    pub(crate) fn gops(
        id: i64,
        start_ms: i64,
        init_id: i64,
        count: i64,
        gop_secs: i64,
        path: &str,
    ) -> Segment {
        let ks: Vec<Keyframe> = (0..count as u64)
            .map(|i| Keyframe {
                offset: 100 + i * 1000,
                time: i * gop_secs as u64 * 90_000,
            })
            .collect();
        Segment {
            id,
            camera: "cam".into(),
            start_ms,
            end_ms: start_ms + count * gop_secs * 1000,
            duration_90k: count * gop_secs * 90_000,
            bytes: 100 + count * 1000,
            path: path.to_string(),
            init_id,
            keyframes: encode(&ks),
            complete: true,
        }
    }

    fn runs(plan: &ClipPlan) -> Vec<(u64, u64, u64, u64)> {
        plan.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::File {
                    offset,
                    len,
                    from_90k,
                    to_90k,
                    ..
                } => Some((*offset, *len, *from_90k, *to_90k)),
                Piece::Data(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_plan_runs_from_the_keyframe_before_start_closes_gaps_and_stops_at_a_new_init() {
        let init = Bytes::from_static(&[0; 100]);
        // 0–4 s, a 2 s gap, 6–10 s, then new codec parameters at 10 s.
        let segs = [segment(0, 1), segment(6000, 1), segment(10_000, 2)];
        let plan = plan(Path::new("/r"), &segs, init.clone(), 2500, 12_000).unwrap();
        assert_eq!(
            runs(&plan),
            [(2100, 2000, 180_000, 0), (100, 4000, 0, 180_000)],
            "from the keyframe at 2 s; the second run follows the first without the gap"
        );
        assert_eq!(
            plan.len,
            100 + 2000 + 4000,
            "the init is not an MP4: no mehd"
        );
        assert_eq!((plan.start_ms, plan.end_ms), (2000, 10_000));
        assert!(plan.truncated);
        // The end falls inside a GOP: the run ends at the next keyframe, with a trim to do.
        let plan = super::plan(Path::new("/r"), &segs, init, 6500, 7500).unwrap();
        let Some(Piece::File { len, trim, .. }) = plan.pieces.last() else {
            panic!()
        };
        assert_eq!(*len, 2000);
        assert_eq!(
            trim.as_ref().map(|t| (t.from, t.end_90k)),
            Some((1100, 135_000))
        );
        assert!(!plan.truncated);
    }
}
