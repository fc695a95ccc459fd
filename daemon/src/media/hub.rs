//! The hub: one source fans out to many readers.
//!
//! Frames are shared (`Arc<Frame>` holding `Bytes`), never copied per reader. Each reader has a
//! bounded view of one broadcast ring of [`RING`] items: a reader that falls behind loses its
//! place (the ring never grows and the source never waits), then skips to the next keyframe; one
//! that falls behind [`MAX_LAPS`] times is disconnected. A GOP cache (the frames since the last
//! video keyframe) lets a new reader start at once.
//!
//! A hub's source may start on demand (a camera relayed from another node): such a hub is
//! marked [`Hub::set_on_demand`], each new reader (or [`Hub::ready`]) wakes its source through
//! [`Hub::wanted`], and the source stops once [`Hub::readers`] stays at zero.
//!
//! Where a reader starts at an H.265 CRA (the cache's keyframe, or the keyframe a lapped reader
//! skips to), the RASL pictures that follow it refer to frames the reader never had: the cache
//! does not hold them and a lapped reader skips them (`media::nal`). Readers that follow the
//! stream keep them, as do recordings, which play on from the segment before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::frame::{Codec, Frame, Kind, Tracks};
use super::nal;

/// Items the ring holds (about 3 s of 25 fps video with AAC audio); a reader further behind
/// than this has lapped.
pub const RING: usize = 256;
/// Laps a reader may fall behind, each within [`LAP_MEMORY`] of the last, before it is
/// disconnected.
pub const MAX_LAPS: u32 = 3;
/// How long a lap is remembered.
pub const LAP_MEMORY: Duration = Duration::from_secs(30);
/// How long an output that must describe a stream first waits for an on-demand source.
pub const READY: Duration = Duration::from_secs(8);
/// The most frames a GOP cache holds (a camera with a very long GOP is cut off there).
pub const GOP_LIMIT: usize = 600;

/// What a reader receives.
#[derive(Debug, Clone)]
pub enum Item {
    /// The stream (re)starts with these tracks; a reader (re)initializes.
    Tracks(Arc<Tracks>),
    /// A frame.
    Frame(Arc<Frame>),
}

#[derive(Default)]
struct Cache {
    tracks: Option<Arc<Tracks>>,
    gop: Vec<Arc<Frame>>,
    seq: u64,
    /// A video frame with a composition offset, or one timed before the frame it follows (a
    /// camera over RTSP, whose clock is presentation time), came in this epoch.
    bframes: bool,
    /// The last video frame's decode time.
    last_video: Option<i64>,
}

/// Counters a hub keeps for the status.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Video frames in the last full second.
    pub fps: f64,
    /// Bits per second in the last full second.
    pub bitrate: u64,
    /// When the last frame arrived.
    pub last_frame: Option<Instant>,
    window_start: Option<Instant>,
    window_frames: u64,
    window_bytes: u64,
}

/// One stream's fan-out.
pub struct Hub {
    /// The stream's name: the camera or device.
    pub name: String,
    tx: broadcast::Sender<Item>,
    cache: Mutex<Cache>,
    stats: Mutex<Stats>,
    /// Whether the source starts on demand.
    on_demand: std::sync::atomic::AtomicBool,
    /// Told when a reader comes (or wants the tracks), for an on-demand source.
    demand: tokio::sync::Notify,
    /// When a reader last came (tokio's clock, which tests can pause).
    wanted_at: Mutex<Option<tokio::time::Instant>>,
    /// Told when tracks are set.
    announced: tokio::sync::Notify,
}

impl Hub {
    /// A hub with no source yet.
    pub fn new(name: &str) -> Arc<Hub> {
        let (tx, _) = broadcast::channel(RING);
        Arc::new(Hub {
            name: name.to_string(),
            tx,
            cache: Mutex::new(Cache::default()),
            stats: Mutex::new(Stats::default()),
            on_demand: false.into(),
            demand: tokio::sync::Notify::new(),
            wanted_at: Mutex::new(None),
            announced: tokio::sync::Notify::new(),
        })
    }

    /// Marks the hub's source as one that starts on demand (or not).
    pub fn set_on_demand(&self, yes: bool) {
        self.on_demand
            .store(yes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Someone wants the stream: wakes an on-demand source.
    fn want(&self) {
        if self.on_demand.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(mut t) = self.wanted_at.lock() {
                *t = Some(tokio::time::Instant::now());
            }
            self.demand.notify_one();
        }
    }

    /// For the on-demand source: resolves when a reader comes (at once if one came since the
    /// last call).
    pub async fn wanted(&self) {
        self.demand.notified().await;
    }

    /// When a reader last came (or asked for the tracks).
    pub fn last_wanted(&self) -> Option<tokio::time::Instant> {
        self.wanted_at.lock().ok().and_then(|t| *t)
    }

    /// The tracks, waiting up to `within` for an on-demand source to start when there are
    /// none yet (an output that must describe the stream before it reads it: RTSP DESCRIBE,
    /// WebRTC). A hub whose source is not on demand answers at once.
    pub async fn ready(&self, within: Duration) -> Option<Arc<Tracks>> {
        if !self.on_demand.load(std::sync::atomic::Ordering::Relaxed) {
            return self.tracks();
        }
        let announced = self.announced.notified();
        tokio::pin!(announced);
        announced.as_mut().enable();
        if let Some(t) = self.tracks() {
            return Some(t);
        }
        self.want();
        let _ = tokio::time::timeout(within, announced).await;
        self.tracks()
    }

    /// The source announces its tracks (at start, and whenever they change).
    pub fn set_tracks(&self, tracks: Tracks) {
        let tracks = Arc::new(tracks);
        if let Ok(mut c) = self.cache.lock() {
            if c.tracks.as_deref() == Some(&*tracks) {
                return;
            }
            c.tracks = Some(tracks.clone());
            c.gop.clear();
            c.bframes = false;
            c.last_video = None;
        }
        let _ = self.tx.send(Item::Tracks(tracks));
        self.announced.notify_waiters();
    }

    /// The source ends (disconnected camera, unpublished device): readers see no tracks.
    pub fn clear(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.tracks = None;
            c.gop.clear();
            c.last_video = None;
        }
    }

    /// The source pushes a frame; `seq` is assigned here.
    pub fn push(&self, kind: Kind, dts: i64, composition: i32, keyframe: bool, data: bytes::Bytes) {
        let len = data.len() as u64;
        let frame = {
            let Ok(mut c) = self.cache.lock() else { return };
            let leading = kind == Kind::Video
                && is_h265(c.tracks.as_deref())
                && nal::h265_skipped_leading(&data);
            c.seq += 1;
            let frame = Arc::new(Frame {
                kind,
                seq: c.seq,
                dts,
                composition,
                keyframe,
                data,
            });
            if kind == Kind::Video && keyframe {
                c.gop.clear();
            }
            if kind == Kind::Video {
                // A step back of under half a second is reordering; a longer one, a restart.
                let half_second = c
                    .tracks
                    .as_ref()
                    .and_then(|t| t.video.as_ref())
                    .map_or(45_000, |v| i64::from(v.timescale / 2));
                let back = c.last_video.map_or(0, |last| last - dts);
                c.bframes |= composition != 0 || (back > 0 && back < half_second);
                c.last_video = Some(dts);
            }
            let starts_or_follows = !c.gop.is_empty() || (kind == Kind::Video && keyframe);
            if c.gop.len() < GOP_LIMIT && starts_or_follows && !leading {
                c.gop.push(frame.clone());
            }
            frame
        };
        if let Ok(mut s) = self.stats.lock() {
            let now = Instant::now();
            s.last_frame = Some(now);
            let start = *s.window_start.get_or_insert(now);
            if kind == Kind::Video {
                s.window_frames += 1;
            }
            s.window_bytes += len;
            let elapsed = now.duration_since(start);
            if elapsed >= Duration::from_secs(1) {
                s.fps = s.window_frames as f64 / elapsed.as_secs_f64();
                s.bitrate = (s.window_bytes as f64 * 8.0 / elapsed.as_secs_f64()) as u64;
                s.window_start = Some(now);
                s.window_frames = 0;
                s.window_bytes = 0;
            }
        }
        let _ = self.tx.send(Item::Frame(frame));
    }

    /// The tracks of the stream, while it has a source.
    pub fn tracks(&self) -> Option<Arc<Tracks>> {
        self.cache.lock().ok()?.tracks.clone()
    }

    /// Whether the stream has B-frames (a video frame's presentation time differed from its
    /// decode time since the tracks were last set): WebRTC cannot carry it.
    pub fn has_bframes(&self) -> bool {
        self.cache.lock().is_ok_and(|c| c.bframes)
    }

    /// The GOP cache's keyframe: what a viewer asking for a picture (PLI, FIR) gets.
    pub fn keyframe(&self) -> Option<Arc<Frame>> {
        self.cache.lock().ok()?.gop.first().cloned()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The number of readers.
    pub fn readers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// A new reader: it starts with the tracks and the cached GOP, then follows live.
    pub fn subscribe(&self) -> Reader {
        let rx = self.tx.subscribe();
        self.want();
        let (tracks, gop) = self
            .cache
            .lock()
            .map(|c| (c.tracks.clone(), c.gop.clone()))
            .unwrap_or_default();
        let h265 = is_h265(tracks.as_deref());
        let mut backlog: Vec<Item> = Vec::with_capacity(gop.len() + 1);
        if let Some(t) = tracks {
            backlog.push(Item::Tracks(t));
        }
        let last = gop.last().map_or(0, |f| f.seq);
        backlog.extend(gop.into_iter().map(Item::Frame));
        backlog.reverse();
        Reader {
            rx,
            backlog,
            skip_until: last,
            waiting_for_key: false,
            h265,
            leading: false,
            laps: 0,
            last_lap: None,
        }
    }
}

/// Whether the stream's video is H.265.
fn is_h265(tracks: Option<&Tracks>) -> bool {
    tracks
        .and_then(|t| t.video.as_ref())
        .is_some_and(|v| v.codec == Codec::H265)
}

/// Why a reader stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The hub is gone.
    Closed,
    /// The reader fell behind too often.
    TooSlow,
}

/// One reader of a hub.
pub struct Reader {
    rx: broadcast::Receiver<Item>,
    backlog: Vec<Item>,
    /// Live frames up to this seq were already delivered from the GOP cache.
    skip_until: u64,
    waiting_for_key: bool,
    /// The stream is H.265.
    h265: bool,
    /// The reader started again at a keyframe: RASL pictures after it are skipped.
    leading: bool,
    laps: u32,
    last_lap: Option<Instant>,
}

impl Reader {
    /// The next item; after a lap, frames are skipped up to the next video keyframe.
    pub async fn next(&mut self) -> Result<Item, Stop> {
        if let Some(item) = self.backlog.pop() {
            if self.backlog.is_empty() {
                // Free the GOP's worth of slots: a reader lives long, mostly without a backlog.
                self.backlog = Vec::new();
            }
            return Ok(item);
        }
        loop {
            match self.rx.recv().await {
                Ok(Item::Frame(f)) => {
                    if f.seq <= self.skip_until {
                        continue;
                    }
                    if self.waiting_for_key {
                        if !(f.kind == Kind::Video && f.keyframe) {
                            continue;
                        }
                        self.waiting_for_key = false;
                        self.leading = self.h265;
                    } else if self.leading && f.kind == Kind::Video {
                        if nal::h265_skipped_leading(&f.data) {
                            continue;
                        }
                        self.leading = false;
                    }
                    return Ok(Item::Frame(f));
                }
                Ok(Item::Tracks(t)) => {
                    self.skip_until = 0;
                    self.waiting_for_key = false;
                    self.leading = false;
                    self.h265 = is_h265(Some(&t));
                    return Ok(Item::Tracks(t));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if self.last_lap.is_some_and(|t| t.elapsed() > LAP_MEMORY) {
                        self.laps = 0;
                    }
                    self.last_lap = Some(Instant::now());
                    self.laps += 1;
                    if self.laps > MAX_LAPS {
                        return Err(Stop::TooSlow);
                    }
                    self.waiting_for_key = true;
                }
                Err(broadcast::error::RecvError::Closed) => return Err(Stop::Closed),
            }
        }
    }

    /// How many times this reader fell behind.
    pub fn laps(&self) -> u32 {
        self.laps
    }
}

/// Every hub of the node, by stream name.
#[derive(Default)]
pub struct Hubs {
    hubs: Mutex<HashMap<String, Arc<Hub>>>,
}

impl Hubs {
    /// The hub of a stream, created when first asked for.
    pub fn get_or_create(&self, name: &str) -> Arc<Hub> {
        let mut hubs = self.hubs.lock().unwrap_or_else(|e| e.into_inner());
        hubs.entry(name.to_string())
            .or_insert_with(|| Hub::new(name))
            .clone()
    }

    /// The hub of a stream, if it exists.
    pub fn get(&self, name: &str) -> Option<Arc<Hub>> {
        self.hubs.lock().ok()?.get(name).cloned()
    }

    /// Forgets a stream.
    pub fn remove(&self, name: &str) {
        if let Ok(mut hubs) = self.hubs.lock() {
            hubs.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(hub: &Hub, key: bool) {
        hub.push(Kind::Video, 0, 0, key, Bytes::from_static(b"x"));
    }

    #[tokio::test]
    async fn a_reader_starting_at_a_cra_gets_no_rasl_pictures() {
        let hub = Hub::new("cam");
        let video = super::super::frame::Track::bare(Codec::H265);
        hub.set_tracks(Tracks {
            video: Some(Arc::new(video)),
            audio: None,
        });
        let mut following = hub.subscribe();
        // CRA, RASL_R, RASL_N, TRAIL_R: the H.265 NAL type is in the header's bits 1-6.
        for (t, key) in [(21u8, true), (9, false), (8, false), (1, false)] {
            let unit = Bytes::from(vec![0, 0, 0, 2, t << 1, 1]);
            hub.push(Kind::Video, 0, 0, key, unit);
        }
        let types = |f: &Frame| (f.data[4] >> 1, f.keyframe);
        let mut late = hub.subscribe();
        let mut got = Vec::new();
        for _ in 0..3 {
            match late.next().await {
                Ok(Item::Frame(f)) => got.push(types(&f)),
                Ok(Item::Tracks(_)) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        hub.push(
            Kind::Video,
            0,
            0,
            false,
            Bytes::from(vec![0, 0, 0, 2, 2, 1]),
        );
        if let Ok(Item::Frame(f)) = late.next().await {
            got.push(types(&f));
        }
        assert_eq!(got, vec![(21, true), (1, false), (1, false)]);
        // A reader that was there all along decodes them: it has the frames they refer to.
        assert!(matches!(following.next().await, Ok(Item::Tracks(_))));
        let mut all = Vec::new();
        for _ in 0..4 {
            if let Ok(Item::Frame(f)) = following.next().await {
                all.push(types(&f).0);
            }
        }
        assert_eq!(all, vec![21, 9, 8, 1]);
    }

    #[tokio::test]
    async fn a_new_reader_starts_at_the_last_keyframe() {
        let hub = Hub::new("cam");
        hub.set_tracks(Tracks::default());
        frame(&hub, true);
        frame(&hub, false);
        frame(&hub, true);
        frame(&hub, false);
        let mut r = hub.subscribe();
        assert!(matches!(r.next().await, Ok(Item::Tracks(_))));
        let Ok(Item::Frame(f)) = r.next().await else {
            panic!()
        };
        assert!(f.keyframe && f.seq == 3);
        let Ok(Item::Frame(f)) = r.next().await else {
            panic!()
        };
        assert_eq!(f.seq, 4);
        frame(&hub, false);
        let Ok(Item::Frame(f)) = r.next().await else {
            panic!()
        };
        assert_eq!(f.seq, 5, "no frame twice, none lost between cache and live");
    }

    #[test]
    fn b_frames_are_seen_by_composition_or_by_presentation_order() {
        let hub = Hub::new("cam");
        hub.set_tracks(Tracks::default());
        for (dts, composition) in [(0, 0), (50_000, 0), (100_000, 0)] {
            hub.push(Kind::Video, dts, composition, false, Bytes::new());
        }
        assert!(!hub.has_bframes());
        hub.push(Kind::Video, 0, 0, true, Bytes::new());
        assert!(!hub.has_bframes(), "a restarted clock is not reordering");
        hub.push(Kind::Video, 10_800, 0, false, Bytes::new());
        hub.push(Kind::Video, 3600, 0, false, Bytes::new());
        assert!(hub.has_bframes(), "RTSP: presentation times out of order");
        hub.set_tracks(Tracks {
            video: None,
            audio: Some(Arc::new(crate::media::frame::Track {
                codec: crate::media::frame::Codec::Aac,
                timescale: 48_000,
                extra_data: Bytes::new(),
                sample_entry: Bytes::new(),
                rfc6381: String::new(),
                dimensions: (0, 0),
                channels: 1,
            })),
        });
        assert!(!hub.has_bframes(), "a new epoch forgets");
        hub.push(Kind::Video, 0, 1800, true, Bytes::new());
        assert!(hub.has_bframes(), "RTMP: a composition offset");
    }

    #[tokio::test]
    async fn a_slow_reader_skips_to_a_keyframe_then_is_dropped_and_never_stalls_the_source() {
        let hub = Hub::new("cam");
        let mut slow = hub.subscribe();
        let mut fast = hub.subscribe();
        for i in 0..(RING as u64 + 10) {
            frame(&hub, i % 50 == 0);
            if let Ok(Item::Frame(f)) = fast.next().await {
                assert_eq!(f.seq, i + 1);
            }
        }
        let Ok(Item::Frame(f)) = slow.next().await else {
            panic!()
        };
        assert!(f.keyframe, "after a lap the reader resumes at a keyframe");
        for _ in 0..MAX_LAPS {
            for i in 0..(RING as u64 + 10) {
                frame(&hub, i % 50 == 0);
            }
            let _ = slow.next().await;
        }
        for _ in 0..(RING + 10) {
            frame(&hub, false);
        }
        assert_eq!(slow.next().await.unwrap_err(), Stop::TooSlow);
    }
}
