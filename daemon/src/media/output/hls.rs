//! HLS with fMP4 segments: `/live/<camera>/index.m3u8`, `init.mp4`, `seg-<n>.m4s`.
//!
//! A segmenter starts for a stream when its playlist is first asked for, reads the hub like any
//! viewer, and cuts a segment at the first keyframe after [`TARGET`]. It keeps the last
//! [`WINDOW`] segments in memory and stops when nobody has asked for the stream for [`IDLE`].
//! Segments are whole moof/mdat runs from the [`fmp4`] muxer, shared by every viewer.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::media::fmp4;
use crate::media::frame::Kind;
use crate::media::hub::{Hub, Item};

/// The duration a segment aims for.
pub const TARGET: Duration = Duration::from_secs(2);
/// Segments kept and listed.
pub const WINDOW: usize = 6;
/// A segmenter nobody asked for in this long stops.
pub const IDLE: Duration = Duration::from_secs(30);

struct Segment {
    seq: u64,
    seconds: f64,
    data: Bytes,
}

#[derive(Default)]
struct State {
    init: Option<Bytes>,
    segments: VecDeque<Segment>,
    next_seq: u64,
    /// Bumped when the tracks change: players must see a discontinuity.
    discontinuity_at: Option<u64>,
}

struct Segmenter {
    state: Mutex<State>,
    asked: Mutex<Instant>,
}

/// The segmenters of the node, by stream.
#[derive(Default)]
pub struct Hls {
    streams: Mutex<HashMap<String, Arc<Segmenter>>>,
}

impl Hls {
    fn segmenter(self: &Arc<Self>, name: &str, hub: Arc<Hub>) -> Arc<Segmenter> {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = streams.get(name) {
            if let Ok(mut t) = s.asked.lock() {
                *t = Instant::now();
            }
            return s.clone();
        }
        let s = Arc::new(Segmenter {
            state: Mutex::new(State::default()),
            asked: Mutex::new(Instant::now()),
        });
        streams.insert(name.to_string(), s.clone());
        tokio::spawn(run(name.to_string(), hub, s.clone(), self.clone()));
        s
    }

    fn forget(&self, name: &str) {
        if let Ok(mut streams) = self.streams.lock() {
            streams.remove(name);
        }
    }

    /// The playlist, once the first segment is complete (waits up to a few seconds).
    pub async fn playlist(
        self: &Arc<Self>,
        name: &str,
        hub: Arc<Hub>,
        query: &str,
    ) -> Option<String> {
        let s = self.segmenter(name, hub);
        let deadline = Instant::now() + TARGET * 4;
        loop {
            if let Some(text) = s.playlist(query) {
                return Some(text);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The init segment.
    pub fn init(&self, name: &str) -> Option<Bytes> {
        let s = self.streams.lock().ok()?.get(name).cloned()?;
        s.state.lock().ok()?.init.clone()
    }

    /// A media segment by number.
    pub fn segment(&self, name: &str, seq: u64) -> Option<Bytes> {
        let s = self.streams.lock().ok()?.get(name).cloned()?;
        if let Ok(mut t) = s.asked.lock() {
            *t = Instant::now();
        }
        let state = s.state.lock().ok()?;
        state
            .segments
            .iter()
            .find(|g| g.seq == seq)
            .map(|g| g.data.clone())
    }
}

impl Segmenter {
    fn playlist(&self, query: &str) -> Option<String> {
        let state = self.state.lock().ok()?;
        if state.init.is_none() || state.segments.len() < 2 {
            return None;
        }
        let suffix = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        let target = state
            .segments
            .iter()
            .map(|s| s.seconds)
            .fold(0.0, f64::max)
            .ceil()
            .max(1.0) as u64;
        let first = state.segments.front().map_or(0, |s| s.seq);
        let mut out = format!(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4{suffix}\"\n"
        );
        for s in &state.segments {
            if state.discontinuity_at == Some(s.seq) {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = write!(
                out,
                "#EXTINF:{:.3},\nseg-{}.m4s{suffix}\n",
                s.seconds, s.seq
            );
        }
        Some(out)
    }
}

async fn run(name: String, hub: Arc<Hub>, seg: Arc<Segmenter>, hls: Arc<Hls>) {
    let mut reader = hub.subscribe();
    let mut muxer: Option<fmp4::Muxer> = None;
    let mut current = BytesMut::new();
    let mut started: Option<(i64, u32)> = None;
    loop {
        let idle = seg.asked.lock().map(|t| t.elapsed() > IDLE).unwrap_or(true);
        if idle {
            break;
        }
        let item = match tokio::time::timeout(Duration::from_secs(5), reader.next()).await {
            Ok(Ok(item)) => item,
            Ok(Err(_)) => break,
            Err(_) => continue,
        };
        match item {
            Item::Tracks(tracks) => {
                let init = fmp4::init(&tracks);
                muxer = Some(fmp4::Muxer::new(tracks));
                current.clear();
                started = None;
                if let Ok(mut st) = seg.state.lock() {
                    if st.init.is_some() {
                        st.discontinuity_at = Some(st.next_seq);
                    }
                    st.init = Some(init);
                }
            }
            Item::Frame(frame) => {
                let Some(m) = muxer.as_mut() else { continue };
                let cut_here = frame.kind == Kind::Video && frame.keyframe;
                let timescale = m.tracks().video.as_ref().map_or(90_000, |v| v.timescale);
                let pts = frame.dts;
                for f in m.push(frame) {
                    current.extend_from_slice(&f);
                }
                if !cut_here {
                    continue;
                }
                match started {
                    Some((start, scale))
                        if Duration::from_secs_f64((pts - start) as f64 / f64::from(scale))
                            >= TARGET =>
                    {
                        let seconds = (pts - start) as f64 / f64::from(scale);
                        if let Ok(mut st) = seg.state.lock() {
                            let seq = st.next_seq;
                            st.next_seq += 1;
                            st.segments.push_back(Segment {
                                seq,
                                seconds,
                                data: current.split().freeze(),
                            });
                            while st.segments.len() > WINDOW {
                                st.segments.pop_front();
                            }
                        }
                        started = Some((pts, timescale));
                    }
                    Some(_) => {}
                    None => {
                        // The first keyframe opens the first segment.
                        current.clear();
                        started = Some((pts, timescale));
                    }
                }
            }
        }
    }
    hls.forget(&name);
}
