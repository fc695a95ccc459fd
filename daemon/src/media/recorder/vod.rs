//! VOD: a recorded time range as an HLS playlist (`#EXT-X-PLAYLIST-TYPE:VOD`), its media
//! segments cut from the recorded segment files without re-encoding.
//!
//! [`plan`] is pure: from the rows overlapping `[start, end)` it makes [`Part`]s, each a run of
//! whole fragments of one file from a keyframe to a later keyframe (about [`TARGET_90K`] of
//! media; never across files). The first part starts at the keyframe at or before `start`,
//! the last ends at the first keyframe at or after `end`: whole GOPs at both ends.
//!
//! Timeline: parts follow each other without gaps, from decode time 0, as in a clip; each
//! part's `tfdt`s are rebased as its bytes are read ([`ClipPlan::fragments`]). A recording gap
//! (more than [`SPAN_GAP_MS`] between two rows) or a new init segment starts a new
//! discontinuity: `#EXT-X-DISCONTINUITY`, then `#EXT-X-PROGRAM-DATE-TIME` with the wall time,
//! and `#EXT-X-MAP` again when the init segment changed.
//!
//! A part's name carries everything needed to serve it: `seg-<row>-<first>-<last>-<at>.m4s`,
//! the row id, the keyframe range `[first, last)` (`last` may be the keyframe count: to the end
//! of the file) and its decode time in 90 kHz. So no playlist state is kept, and a part whose
//! row retention deleted is a plain 404.

use std::fmt::Write as _;
use std::path::Path;

use super::clip::ClipPlan;
use super::index;
use crate::store::recording::{SPAN_GAP_MS, Segment};

/// The media a part aims for: it ends at the first keyframe this far after its start.
pub const TARGET_90K: u64 = 6 * 90_000;

/// One media segment of a VOD playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The row of the file it is cut from.
    pub segment: i64,
    /// Its init segment's id.
    pub init_id: i64,
    /// The keyframe it starts at (an index into the row's keyframes).
    pub first: usize,
    /// The keyframe it stops before; the keyframe count means the end of the file.
    pub last: usize,
    /// Its decode time on the playlist's timeline, 90 kHz.
    pub at_90k: u64,
    /// Its media duration, 90 kHz.
    pub duration_90k: u64,
    /// Wall time of its first frame, UTC ms.
    pub start_ms: i64,
    /// Whether it starts a new discontinuity (a gap or new init segment before it).
    pub discontinuity: bool,
}

impl Part {
    /// Its file name in the playlist.
    pub fn name(&self) -> String {
        format!(
            "seg-{}-{}-{}-{}.m4s",
            self.segment, self.first, self.last, self.at_90k
        )
    }
}

/// A part's name parsed back: (row, first, last, at_90k).
pub fn parse_name(name: &str) -> Option<(i64, usize, usize, u64)> {
    let rest = name.strip_prefix("seg-")?.strip_suffix(".m4s")?;
    let mut it = rest.split('-');
    let out = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    it.next().is_none().then_some(out)
}

/// The parts of `[start_ms, end_ms)` from `segments` (oldest first, as
/// [`crate::store::recording::segments_overlapping`] returns them).
pub fn plan(segments: &[Segment], start_ms: i64, end_ms: i64) -> Vec<Part> {
    let mut out: Vec<Part> = Vec::new();
    let mut at = 0u64;
    let mut prev: Option<&Segment> = None;
    for seg in segments {
        if seg.end_ms <= start_ms || seg.start_ms >= end_ms {
            continue;
        }
        let Some(ks) = index::decode(&seg.keyframes).filter(|k| !k.is_empty()) else {
            continue;
        };
        let wall = |t: u64| seg.start_ms + (t / 90) as i64;
        let from = if out.is_empty() {
            ks.iter()
                .rposition(|k| wall(k.time) <= start_ms)
                .unwrap_or(0)
        } else {
            0
        };
        let stop = ks[from + 1..]
            .iter()
            .position(|k| wall(k.time) >= end_ms)
            .map_or(ks.len(), |i| i + from + 1);
        // An open segment grows: its last GOP is left out, so every part keeps its bytes.
        let end = if seg.complete {
            stop
        } else {
            stop.min(ks.len() - 1)
        };
        let time = |i: usize| ks.get(i).map_or(seg.duration_90k.max(0) as u64, |k| k.time);
        let mut discontinuity =
            prev.is_some_and(|p| p.init_id != seg.init_id || seg.start_ms - p.end_ms > SPAN_GAP_MS);
        let mut first = from;
        while first < end {
            let last = (first + 1..end)
                .find(|&j| ks[j].time >= ks[first].time + TARGET_90K)
                .unwrap_or(end);
            let duration = time(last).saturating_sub(ks[first].time);
            if duration > 0 {
                out.push(Part {
                    segment: seg.id,
                    init_id: seg.init_id,
                    first,
                    last,
                    at_90k: at,
                    duration_90k: duration,
                    start_ms: wall(ks[first].time),
                    discontinuity,
                });
                discontinuity = false;
                at += duration;
            }
            first = last;
        }
        prev = Some(seg);
        if stop < ks.len() {
            break;
        }
    }
    out
}

/// The playlist of `parts`; `query` (e.g. `token=…`, or empty) is appended to every URI.
pub fn playlist(parts: &[Part], query: &str) -> String {
    let suffix = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let target = parts
        .iter()
        .map(|p| p.duration_90k.div_ceil(90_000))
        .max()
        .unwrap_or(1)
        .max(1);
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    );
    let mut init = None;
    for p in parts {
        if p.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if init.is_none() || p.discontinuity {
            let _ = writeln!(
                out,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                crate::base::time::rfc3339_ms(p.start_ms)
            );
        }
        if init != Some(p.init_id) {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"init-{}.mp4{suffix}\"", p.init_id);
            init = Some(p.init_id);
        }
        let _ = write!(
            out,
            "#EXTINF:{:.3},\n{}{suffix}\n",
            p.duration_90k as f64 / 90_000.0,
            p.name()
        );
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// The bytes of a part of `seg`, the row [`parse_name`] named, under `root`; `init` is its init
/// segment. `None` if the keyframe range does not fit the row (a stale or forged name), or
/// runs to the end of a file still being written.
pub fn media(
    root: &Path,
    seg: &Segment,
    init: &[u8],
    first: usize,
    last: usize,
    at_90k: u64,
) -> Option<ClipPlan> {
    let ks = index::decode(&seg.keyframes)?;
    if first >= last || last > ks.len() || (last == ks.len() && !seg.complete) {
        return None;
    }
    let from = ks[first];
    let to = ks.get(last).map_or(seg.bytes.max(0) as u64, |k| k.offset);
    (to > from.offset).then(|| {
        ClipPlan::fragments(
            root.join(&seg.path),
            init,
            from.offset,
            to - from.offset,
            from.time,
            at_90k,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::recorder::clip::tests::gops;

    /// A 20 s segment with a keyframe every 2 s, 1000 bytes per GOP after a 100-byte init.
    fn segment(id: i64, start_ms: i64, init_id: i64) -> Segment {
        gops(id, start_ms, init_id, 10, 2, &format!("cam/{start_ms}.mp4"))
    }

    #[test]
    fn parts_are_whole_gops_of_about_six_seconds_on_one_gapless_timeline() {
        // 0–20 s and 20–40 s touch; 45–65 s follows a 5 s gap; 65–85 s has a new init.
        let segs = [
            segment(1, 0, 7),
            segment(2, 20_000, 7),
            segment(3, 45_000, 7),
            segment(4, 65_000, 8),
        ];
        let parts = plan(&segs, 3_000, 70_500);
        let got: Vec<(i64, usize, usize, u64, u64, bool)> = parts
            .iter()
            .map(|p| {
                (
                    p.segment,
                    p.first,
                    p.last,
                    p.at_90k / 90_000,
                    p.duration_90k / 90_000,
                    p.discontinuity,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                // From the keyframe at 2 s (before 3 s), 6 s each, the file's tail shorter.
                (1, 1, 4, 0, 6, false),
                (1, 4, 7, 6, 6, false),
                (1, 7, 10, 12, 6, false),
                (2, 0, 3, 18, 6, false),
                (2, 3, 6, 24, 6, false),
                (2, 6, 9, 30, 6, false),
                (2, 9, 10, 36, 2, false),
                // The gap closes up on the timeline but is a discontinuity.
                (3, 0, 3, 38, 6, true),
                (3, 3, 6, 44, 6, false),
                (3, 6, 9, 50, 6, false),
                (3, 9, 10, 56, 2, false),
                // New codec parameters; the end (70.5 s) stops at the keyframe at 71 s.
                (4, 0, 3, 58, 6, true),
            ]
        );
        assert_eq!(parts[0].start_ms, 2_000);
        assert_eq!(parts[7].start_ms, 45_000);
        assert_eq!(parse_name(&parts[5].name()), Some((2, 6, 9, 30 * 90_000)));
        assert_eq!(parse_name("seg-1-2-3.m4s"), None);
        assert_eq!(parse_name("seg-1-2-3-4-5.m4s"), None);
        assert!(plan(&segs, 100_000, 200_000).is_empty());
    }

    #[test]
    fn the_playlist_is_vod_with_a_map_per_init_and_discontinuities_at_gaps() {
        let segs = [
            segment(1, 1_763_700_000_000, 7),
            segment(2, 1_763_700_030_000, 8),
        ];
        let parts = plan(&segs, 1_763_700_000_000, 1_763_700_034_000);
        let text = playlist(&parts, "token=abc");
        let expected = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-PROGRAM-DATE-TIME:2025-11-21T04:40:00.000Z
#EXT-X-MAP:URI=\"init-7.mp4?token=abc\"
#EXTINF:6.000,
seg-1-0-3-0.m4s?token=abc
#EXTINF:6.000,
seg-1-3-6-540000.m4s?token=abc
#EXTINF:6.000,
seg-1-6-9-1080000.m4s?token=abc
#EXTINF:2.000,
seg-1-9-10-1620000.m4s?token=abc
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2025-11-21T04:40:30.000Z
#EXT-X-MAP:URI=\"init-8.mp4?token=abc\"
#EXTINF:4.000,
seg-2-0-2-1800000.m4s?token=abc
#EXT-X-ENDLIST
";
        assert_eq!(text, expected);
        assert!(!playlist(&parts, "").contains('?'));
    }

    #[test]
    fn media_is_the_gop_run_and_refuses_ranges_the_row_lacks() {
        let seg = segment(1, 0, 7);
        let m = media(Path::new("/r"), &seg, &[], 8, 10, 99).unwrap();
        assert_eq!(m.len, 10_100 - 8100, "to the end of the file");
        let m = media(Path::new("/r"), &seg, &[], 2, 5, 99).unwrap();
        assert_eq!(m.len, 3000);
        assert!(media(Path::new("/r"), &seg, &[], 5, 5, 0).is_none());
        assert!(media(Path::new("/r"), &seg, &[], 5, 11, 0).is_none());
        // A file still being written: its last GOP is not served, nor listed.
        let open = Segment {
            complete: false,
            ..seg
        };
        assert!(media(Path::new("/r"), &open, &[], 8, 10, 0).is_none());
        let parts = plan(&[open], 0, 30_000);
        assert_eq!(parts.last().map(|p| (p.first, p.last)), Some((6, 9)));
    }
}
