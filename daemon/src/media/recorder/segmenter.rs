//! The recorder's pure core: hub items in, file actions out.
//!
//! It cuts a camera's stream into segments that each start with a video keyframe: at the first
//! keyframe once a segment is [`Limits::target`] long, at a change of tracks, at a break in the
//! video's timestamps, and (without a keyframe) at [`MAX_SEGMENT_MS`], after which it waits for
//! the next keyframe. Within a segment the fragments' decode times count from its first
//! keyframe (video, 90 kHz; audio in its own timescale on the same clock). A video frame's
//! duration is known only when the next frame arrives, so one video frame is held back.
//!
//! Wall time: a run of frames is anchored to the clock at its first keyframe, and a segment's
//! start is the anchor plus media time, so adjacent segments touch exactly. If the clock and
//! the media drift apart by more than [`REANCHOR_MS`], the next segment is anchored anew.

use std::sync::Arc;

use bytes::Bytes;

use super::index::{self, Keyframe};
use crate::media::fmp4::{self, AAC_FRAME, AUDIO_ID, Sample, VIDEO_ID};
use crate::media::frame::{Frame, Kind, Tracks};
use crate::media::hub::Item;
use crate::store::recording::MAX_SEGMENT_MS;

/// The clock and the media may drift this far apart before a segment is re-anchored.
pub const REANCHOR_MS: i64 = 2000;
/// A jump of the video timestamps larger than this (or backwards) breaks the run.
pub const MAX_FRAME_GAP_90K: i64 = 5 * 90_000;

/// A stream silent this long closes its segment.
pub const CLOSE_IDLE_MS: i64 = 5000;

/// Segment and part lengths, in 90 kHz ticks of media time.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A segment is cut at the first keyframe at or after this length.
    pub target: i64,
    /// The file is synced, and its row updated, at least this often.
    pub part: i64,
}

/// What the writer does, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create `path` (relative to the root), write `init`, sync it, and insert its row.
    Open {
        /// The file.
        path: String,
        /// The segment's start, UTC ms.
        start_ms: i64,
        /// The init segment.
        init: Bytes,
        /// The codecs, RFC 6381, comma-separated.
        codecs: String,
    },
    /// Append a fragment.
    Append(Bytes),
    /// Sync the file, then update the row with this progress.
    Sync(Progress),
    /// Sync the file, then update the row with this progress and mark it complete.
    Close(Progress),
}

/// A segment's progress, as its row holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Wall time past its last written frame, UTC ms.
    pub end_ms: i64,
    /// Media duration written, 90 kHz.
    pub duration_90k: i64,
    /// Bytes written, the init included.
    pub bytes: u64,
    /// The keyframes written, encoded ([`index::encode`]).
    pub keyframes: Vec<u8>,
}

struct Open {
    start_dts: i64,
    start_ms: i64,
    bytes: u64,
    duration: i64,
    keyframes: Vec<Keyframe>,
    sequence: u32,
    synced: i64,
    audio_end: u64,
}

/// The segmenter of one camera.
pub struct Segmenter {
    camera: String,
    limits: Limits,
    tracks: Option<(Arc<Tracks>, Bytes, String)>,
    audio_scale: i64,
    anchor: Option<(i64, i64)>,
    seg: Option<Open>,
    held: Option<Arc<Frame>>,
    last_duration: u32,
    last_seq: u64,
    last_start_ms: i64,
}

impl Segmenter {
    /// A segmenter for `camera`.
    pub fn new(camera: &str, limits: Limits) -> Segmenter {
        Segmenter {
            camera: camera.to_string(),
            limits,
            tracks: None,
            audio_scale: 0,
            anchor: None,
            seg: None,
            held: None,
            last_duration: 3600,
            last_seq: 0,
            last_start_ms: i64::MIN,
        }
    }

    /// Takes an item that arrived at wall time `now_ms`; returns what to do.
    pub fn push(&mut self, item: &Item, now_ms: i64) -> Vec<Action> {
        let mut out = Vec::new();
        match item {
            Item::Tracks(t) => {
                if self.tracks.as_ref().is_some_and(|(old, _, _)| old == t) {
                    return out;
                }
                self.finish_into(&mut out);
                self.tracks = None;
                let Some(video) = t.video.as_ref() else {
                    tracing::warn!(camera = %self.camera, "no video track: not recording");
                    return out;
                };
                if video.timescale != 90_000 {
                    tracing::warn!(camera = %self.camera, timescale = video.timescale, "video timescale is not 90 kHz: not recording");
                    return out;
                }
                let codecs: Vec<&str> = [t.video.as_ref(), t.audio.as_ref()]
                    .into_iter()
                    .flatten()
                    .map(|t| t.rfc6381.as_str())
                    .collect();
                self.audio_scale = t.audio.as_ref().map_or(0, |a| i64::from(a.timescale));
                self.tracks = Some((t.clone(), fmp4::init(t), codecs.join(",")));
            }
            Item::Frame(f) => {
                // A reader that was re-created replays the GOP cache: skip what was seen.
                if f.seq <= self.last_seq {
                    return out;
                }
                self.last_seq = f.seq;
                if self.tracks.is_none() {
                    return out;
                }
                match f.kind {
                    Kind::Video => self.video(f, now_ms, &mut out),
                    Kind::Audio => self.audio(f, &mut out),
                }
            }
        }
        out
    }

    /// Nothing arrived for `idle_ms`: syncs what was written, and after [`CLOSE_IDLE_MS`] closes
    /// the segment (the camera is gone; the next keyframe opens a new one).
    pub fn idle(&mut self, idle_ms: i64) -> Vec<Action> {
        let mut out = Vec::new();
        if idle_ms >= CLOSE_IDLE_MS {
            self.finish_into(&mut out);
        } else if let Some(seg) = self.seg.as_mut().filter(|s| s.synced < s.duration) {
            seg.synced = seg.duration;
            out.push(Action::Sync(progress(seg)));
        }
        out
    }

    /// The writer could not write the open segment (and closed it at its last durable part):
    /// forgets it and the held frame, so the next keyframe opens a new one.
    pub fn drop_segment(&mut self) {
        self.seg = None;
        self.held = None;
    }

    /// The stream ends: writes the held frame and closes the segment.
    pub fn finish(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.finish_into(&mut out);
        out
    }

    fn finish_into(&mut self, out: &mut Vec<Action>) {
        if let Some(prev) = self.held.take() {
            self.write_video(&prev, self.last_duration, out);
        }
        self.close(out);
        self.anchor = None;
    }

    fn close(&mut self, out: &mut Vec<Action>) {
        if let Some(seg) = self.seg.take() {
            out.push(Action::Close(progress(&seg)));
        }
    }

    fn video(&mut self, f: &Arc<Frame>, now_ms: i64, out: &mut Vec<Action>) {
        if let Some(prev) = self.held.take() {
            let delta = f.dts - prev.dts;
            if delta <= 0 || delta > MAX_FRAME_GAP_90K {
                self.write_video(&prev, self.last_duration, out);
                self.close(out);
                self.anchor = None;
            } else {
                let length = f.dts - self.seg.as_ref().map_or(f.dts, |s| s.start_dts);
                self.write_video(&prev, delta as u32, out);
                if f.keyframe && length >= self.limits.target {
                    self.close(out);
                } else if length >= MAX_SEGMENT_MS * 90 - MAX_FRAME_GAP_90K {
                    // No keyframe in time: close, and wait for the next one.
                    self.close(out);
                    return;
                } else {
                    self.held = Some(f.clone());
                    return;
                }
            }
        }
        if self.seg.is_none() {
            if !f.keyframe {
                return;
            }
            self.open(f, now_ms, out);
        }
        self.held = Some(f.clone());
    }

    fn open(&mut self, f: &Frame, now_ms: i64, out: &mut Vec<Action>) {
        let Some((_, init, codecs)) = &self.tracks else {
            return;
        };
        let anchored = self
            .anchor
            .map(|(ms, pts)| ms + (f.dts - pts) / 90)
            .filter(|at| (at - now_ms).abs() <= REANCHOR_MS);
        let start_ms = match anchored {
            Some(at) => at,
            None => {
                self.anchor = Some((now_ms, f.dts));
                now_ms
            }
        }
        .max(self.last_start_ms + 1);
        self.last_start_ms = start_ms;
        out.push(Action::Open {
            path: index::path(&self.camera, start_ms),
            start_ms,
            init: init.clone(),
            codecs: codecs.clone(),
        });
        self.seg = Some(Open {
            start_dts: f.dts,
            start_ms,
            bytes: init.len() as u64,
            duration: 0,
            keyframes: Vec::new(),
            sequence: 0,
            synced: 0,
            audio_end: 0,
        });
    }

    fn write_video(&mut self, f: &Frame, duration: u32, out: &mut Vec<Action>) {
        let Some(seg) = self.seg.as_mut() else {
            return;
        };
        self.last_duration = duration;
        let tfdt = (f.dts - seg.start_dts).max(seg.duration);
        seg.sequence += 1;
        let frag = fmp4::fragment(
            seg.sequence,
            VIDEO_ID,
            tfdt as u64,
            &[Sample {
                duration,
                keyframe: f.keyframe,
                composition: f.composition,
                data: f.data.clone(),
            }],
        );
        if f.keyframe {
            seg.keyframes.push(Keyframe {
                offset: seg.bytes,
                time: tfdt as u64,
            });
        }
        seg.bytes += frag.len() as u64;
        seg.duration = tfdt + i64::from(duration);
        out.push(Action::Append(frag));
        if seg.duration - seg.synced >= self.limits.part {
            seg.synced = seg.duration;
            out.push(Action::Sync(progress(seg)));
        }
    }

    fn audio(&mut self, f: &Frame, out: &mut Vec<Action>) {
        if self.audio_scale == 0 {
            return;
        }
        let Some(seg) = self.seg.as_mut() else {
            return;
        };
        let base = seg.start_dts * self.audio_scale / 90_000;
        let tfdt = ((f.dts - base).max(0) as u64).max(seg.audio_end);
        seg.audio_end = tfdt + u64::from(AAC_FRAME);
        seg.sequence += 1;
        let frag = fmp4::fragment(
            seg.sequence,
            AUDIO_ID,
            tfdt,
            &[Sample {
                duration: AAC_FRAME,
                keyframe: true,
                composition: 0,
                data: f.data.clone(),
            }],
        );
        seg.bytes += frag.len() as u64;
        out.push(Action::Append(frag));
    }
}

fn progress(seg: &Open) -> Progress {
    Progress {
        end_ms: seg.start_ms + seg.duration / 90,
        duration_90k: seg.duration,
        bytes: seg.bytes,
        keyframes: index::encode(&seg.keyframes),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::media::frame::{Codec, Track};

    pub(crate) fn tracks(entry: &'static [u8]) -> Arc<Tracks> {
        Arc::new(Tracks {
            video: Some(Arc::new(Track {
                codec: Codec::H264,
                timescale: 90_000,
                extra_data: Bytes::new(),
                sample_entry: Bytes::from_static(entry),
                rfc6381: "avc1.42c01e".into(),
                dimensions: (320, 240),
                channels: 0,
            })),
            audio: None,
        })
    }

    pub(crate) fn frame(seq: u64, dts: i64, keyframe: bool) -> Item {
        Item::Frame(Arc::new(Frame {
            kind: Kind::Video,
            seq,
            dts,
            composition: 0,
            keyframe,
            data: Bytes::from(vec![if keyframe { 0x65 } else { 0x41 }; 1000]),
        }))
    }

    fn limits() -> Limits {
        Limits {
            target: 4 * 90_000,
            part: 90_000,
        }
    }

    /// Frames at 25 fps, a keyframe every 25; returns every action.
    fn run(s: &mut Segmenter, frames: std::ops::Range<u64>, t0: i64) -> Vec<Action> {
        let mut out = Vec::new();
        for i in frames {
            out.extend(s.push(
                &frame(i + 1, i as i64 * 3600, i % 25 == 0),
                t0 + i as i64 * 40,
            ));
        }
        out
    }

    fn opens(actions: &[Action]) -> Vec<i64> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Open { start_ms, .. } => Some(*start_ms),
                _ => None,
            })
            .collect()
    }

    fn closes(actions: &[Action]) -> Vec<Progress> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Close(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn segments_start_at_the_first_keyframe_after_the_target_and_touch() {
        let mut s = Segmenter::new("cam", limits());
        let mut out = s.push(&Item::Tracks(tracks(b"\0\0\0\x08avc1")), 0);
        // Starts mid-GOP: frames before the first keyframe are skipped.
        out.extend(run(&mut s, 10..250, 1_000_000));
        out.extend(s.finish());
        let t0 = 1_000_000;
        assert_eq!(
            opens(&out),
            [t0 + 1000, t0 + 5000, t0 + 9000],
            "cut at keyframes 25, 125, 225"
        );
        let c = closes(&out);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].end_ms, t0 + 5000, "adjacent segments touch");
        assert_eq!(c[0].duration_90k, 4 * 90_000);
        assert_eq!(
            c[2].duration_90k,
            25 * 3600,
            "the held frame gets the last duration"
        );
        let ks = index::decode(&c[0].keyframes).unwrap();
        assert_eq!(ks.len(), 4);
        assert_eq!(ks[1].time, 90_000);
        // Each fragment is one frame: bytes add up.
        let init = fmp4::init(&tracks(b"\0\0\0\x08avc1")).len() as u64;
        assert_eq!(ks[0].offset, init);
        let appended: u64 = out
            .iter()
            .take_while(|a| !matches!(a, Action::Close(_)))
            .filter_map(|a| match a {
                Action::Append(b) => Some(b.len() as u64),
                _ => None,
            })
            .sum();
        assert_eq!(c[0].bytes, init + appended);
        // Synced about every second of media.
        let syncs = out.iter().filter(|a| matches!(a, Action::Sync(_))).count();
        assert!((8..=10).contains(&syncs), "{syncs}");
    }

    #[test]
    fn a_timestamp_jump_or_new_tracks_cut_the_segment_and_a_drifting_clock_reanchors() {
        let mut s = Segmenter::new("cam", limits());
        s.push(&Item::Tracks(tracks(b"\0\0\0\x08avc1")), 0);
        let mut out = run(&mut s, 0..30, 0);
        // The camera restarts: timestamps go back to 0.
        for i in 0..30u64 {
            out.extend(s.push(
                &frame(100 + i, i as i64 * 3600, i % 25 == 0),
                60_000 + i as i64 * 40,
            ));
        }
        assert_eq!(opens(&out), [0, 60_000]);
        // New tracks (new parameters): the segment closes; the next keyframe opens one.
        out = s.push(&Item::Tracks(tracks(b"\0\0\0\x08avc2")), 61_200);
        assert_eq!(closes(&out).len(), 1);
        out = s.push(&frame(200, 30 * 3600, true), 61_200);
        assert_eq!(opens(&out), [61_200]);
        // Replayed frames (seq already seen) are ignored.
        assert!(s.push(&frame(150, 0, true), 61_300).is_empty());
        // The same run, but the wall clock moved 5 s more than the media: re-anchored.
        for i in 31..160u64 {
            out.extend(s.push(
                &frame(200 + i, i as i64 * 3600, i % 25 == 0),
                61_200 + 5000 + (i as i64 - 30) * 40,
            ));
        }
        assert_eq!(opens(&out)[1], 61_200 + 5000 + (150 - 30) * 40);
    }
}
