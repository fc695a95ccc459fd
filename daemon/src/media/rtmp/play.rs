//! A viewer's stream: metadata and sequence headers, then one message per frame.
//!
//! A message's body is the FLV tag body [`flv`] writes for HTTP-FLV. Each frame is chunked
//! once per hub: [`Shared`] keeps the chunks of the last [`SHARED_FRAMES`] frames, and every
//! viewer of the hub sends those same bytes. That works because every viewer gets the same
//! chunk size ([`OUT_CHUNK_SIZE`]), the same message stream ([`STREAM_ID`]), and timestamps
//! taken from the frames themselves (milliseconds since the source started), not from when the
//! viewer joined.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rml_rtmp::rml_amf0::Amf0Value;

use super::chunk::{self, Header};
use super::command::{self, AMF0_DATA};
use crate::media::frame::{Codec, Frame, Kind, Tracks};
use crate::media::hub::{Item, Reader, Stop};
use crate::media::output::flv;

/// The most frames whose chunks are kept for the other viewers: as many as a GOP cache holds,
/// so that a new viewer's burst from the GOP cache finds its frames chunked already (viewers
/// that join together would otherwise each chunk a copy of the older ones). Only the current
/// and the previous GOP are kept, so a hub holds about two GOPs of chunks. A viewer further
/// behind chunks its frames itself.
pub const SHARED_FRAMES: usize = crate::media::hub::GOP_LIMIT;
/// The chunk size sent to viewers.
pub const OUT_CHUNK_SIZE: usize = 4096;
/// The message stream createStream gives (one stream per connection).
pub const STREAM_ID: u32 = 1;
/// The chunk stream of audio messages.
pub const AUDIO_CHUNK_STREAM: u32 = 4;
/// The chunk stream of data messages (metadata).
pub const DATA_CHUNK_STREAM: u32 = 5;
/// The chunk stream of video messages.
pub const VIDEO_CHUNK_STREAM: u32 = 6;

const AUDIO: u8 = 8;
const VIDEO: u8 = 9;

/// The chunks of a hub's recent frames, shared by its viewers.
#[derive(Default)]
pub struct Shared {
    recent: Mutex<VecDeque<(Arc<Frame>, Bytes)>>,
    made: AtomicU64,
    reused: AtomicU64,
}

impl Shared {
    /// The chunks of a frame: made by the first viewer to send it, then reused.
    pub fn chunks(&self, frame: &Arc<Frame>, tracks: &Tracks) -> Bytes {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        // Kept frames are in seq order; the same seq may be another source's frame.
        let kept = recent
            .binary_search_by_key(&frame.seq, |(f, _)| f.seq)
            .ok()
            .map(|i| &recent[i])
            .filter(|(f, _)| Arc::ptr_eq(f, frame));
        if let Some((_, c)) = kept {
            self.reused.fetch_add(1, Ordering::Relaxed);
            return c.clone();
        }
        let c = frame_chunks(frame, tracks);
        self.made.fetch_add(1, Ordering::Relaxed);
        // Only frames newer than the newest kept are kept: a viewer far behind does not evict
        // what the others are about to need.
        if recent.back().is_none_or(|(f, _)| f.seq < frame.seq) {
            if frame.kind == Kind::Video && frame.keyframe {
                // A new GOP: what came before the previous one is no longer needed.
                let previous = recent
                    .iter()
                    .rposition(|(f, _)| f.kind == Kind::Video && f.keyframe);
                recent.drain(..previous.unwrap_or(0));
            }
            recent.push_back((frame.clone(), c.clone()));
            if recent.len() > SHARED_FRAMES {
                recent.pop_front();
            }
        }
        c
    }

    /// Frames chunked, and frames whose chunks were reused.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.made.load(Ordering::Relaxed),
            self.reused.load(Ordering::Relaxed),
        )
    }
}

/// Milliseconds since the source started.
fn ms(frame: &Frame, tracks: &Tracks) -> u32 {
    let track = match frame.kind {
        Kind::Video => tracks.video.as_ref(),
        Kind::Audio => tracks.audio.as_ref(),
    };
    let scale = track.map_or(90_000, |t| t.timescale).max(1);
    (frame.dts.max(0) as u64 * 1000 / u64::from(scale)) as u32
}

/// An FLV tag's body: without its 11-byte header and 4-byte trailer (every tag [`flv`] writes
/// has both).
fn body(tag: &Bytes) -> Bytes {
    tag.slice(11..tag.len() - 4)
}

fn media_message(type_id: u8, timestamp: u32, body: &[u8]) -> Bytes {
    let chunk_stream = if type_id == VIDEO {
        VIDEO_CHUNK_STREAM
    } else {
        AUDIO_CHUNK_STREAM
    };
    let header = Header {
        chunk_stream,
        timestamp,
        type_id,
        stream_id: STREAM_ID,
    };
    chunk::chunked(&header, body, OUT_CHUNK_SIZE)
}

/// The chunks of one frame's message.
pub fn frame_chunks(frame: &Frame, tracks: &Tracks) -> Bytes {
    // The muxer's tag body does not depend on its state (only the tag header's time does).
    let tag = flv::Muxer::new(tracks).tag(frame);
    let type_id = match frame.kind {
        Kind::Video => VIDEO,
        Kind::Audio => AUDIO,
    };
    media_message(type_id, ms(frame, tracks), &body(&tag))
}

/// `onMetaData`, then the sequence headers, at `timestamp`.
pub fn headers(tracks: &Tracks, timestamp: u32) -> Vec<Bytes> {
    let mut meta = vec![("encoder", command::string("sited"))];
    if let Some(v) = &tracks.video {
        let codec_id = match v.codec {
            Codec::H265 => f64::from(u32::from_be_bytes(*b"hvc1")),
            _ => 7.0,
        };
        meta.push(("width", Amf0Value::Number(f64::from(v.dimensions.0))));
        meta.push(("height", Amf0Value::Number(f64::from(v.dimensions.1))));
        meta.push(("videocodecid", Amf0Value::Number(codec_id)));
    }
    if let Some(a) = &tracks.audio {
        meta.push(("audiocodecid", Amf0Value::Number(10.0)));
        meta.push(("audiosamplerate", Amf0Value::Number(f64::from(a.timescale))));
        meta.push(("audiochannels", Amf0Value::Number(f64::from(a.channels))));
        meta.push(("stereo", Amf0Value::Boolean(a.channels == 2)));
    }
    let data = command::encode(&[command::string("onMetaData"), command::object(&meta)]);
    let header = Header {
        chunk_stream: DATA_CHUNK_STREAM,
        timestamp,
        type_id: AMF0_DATA,
        stream_id: STREAM_ID,
    };
    let mut out = vec![chunk::chunked(&header, &data, OUT_CHUNK_SIZE)];
    for tag in flv::sequence_headers(tracks) {
        out.push(media_message(tag[0], timestamp, &body(&tag)));
    }
    out
}

/// One viewer of one hub.
pub struct Player {
    reader: Reader,
    shared: Arc<Shared>,
    tracks: Option<Arc<Tracks>>,
    started: bool,
    /// Frames sent.
    pub frames: u64,
}

impl Player {
    /// A viewer reading `reader`, sharing chunks through `shared`.
    pub fn new(reader: Reader, shared: Arc<Shared>) -> Player {
        Player {
            reader,
            shared,
            tracks: None,
            started: false,
            frames: 0,
        }
    }

    /// Frames of this hub chunked, and chunkings reused, by all its viewers so far.
    pub fn shared_counts(&self) -> (u64, u64) {
        self.shared.counts()
    }

    /// The hub's next item.
    pub async fn next(&mut self) -> Result<Item, Stop> {
        self.reader.next().await
    }

    /// Queues what an item means for the viewer; an error says why the play ends.
    pub fn on_item(
        &mut self,
        item: Result<Item, Stop>,
        out: &mut Vec<Bytes>,
    ) -> Result<(), &'static str> {
        match item {
            Ok(Item::Tracks(tracks)) => {
                // Timestamps restart with a new source: the viewer reconnects, as for HTTP-FLV.
                if self.tracks.is_some() {
                    return Err("the source restarted with new tracks");
                }
                self.tracks = Some(tracks);
            }
            Ok(Item::Frame(frame)) => {
                let Some(tracks) = &self.tracks else {
                    return Ok(());
                };
                let has_track = match frame.kind {
                    Kind::Video => tracks.video.is_some(),
                    Kind::Audio => tracks.audio.is_some(),
                };
                if !has_track {
                    return Ok(());
                }
                if !self.started {
                    out.extend(headers(tracks, ms(&frame, tracks)));
                    self.started = true;
                }
                out.push(self.shared.chunks(&frame, tracks));
                self.frames += 1;
            }
            Err(Stop::Closed) => return Err("the source stopped"),
            Err(Stop::TooSlow) => return Err("the viewer fell behind too often"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::frame::Track;
    use crate::media::hub::Hub;

    fn tracks() -> Arc<Tracks> {
        let video = Track {
            codec: Codec::H264,
            timescale: 90_000,
            extra_data: Bytes::from_static(&[1, 0x64, 0, 0x1e]),
            sample_entry: Bytes::new(),
            rfc6381: "avc1.64001e".into(),
            dimensions: (640, 360),
            channels: 0,
        };
        Arc::new(Tracks {
            video: Some(Arc::new(video)),
            audio: None,
        })
    }

    fn read(bytes: &[u8]) -> Vec<chunk::Message> {
        let mut r = chunk::Reader::new();
        let mut buf = bytes::BytesMut::new();
        // The viewer's side learns the chunk size from the connect reply.
        let mut w = bytes::BytesMut::new();
        let set = Header {
            chunk_stream: 2,
            timestamp: 0,
            type_id: chunk::SET_CHUNK_SIZE,
            stream_id: 0,
        };
        chunk::write(&mut w, &set, &(OUT_CHUNK_SIZE as u32).to_be_bytes(), 128);
        buf.extend_from_slice(&w);
        buf.extend_from_slice(bytes);
        std::iter::from_fn(|| r.next(&mut buf).unwrap()).collect()
    }

    #[tokio::test]
    async fn viewers_share_one_chunking_of_each_frame() {
        let hub = Hub::new("cam");
        hub.set_tracks((*tracks()).clone());
        let shared = Arc::new(Shared::default());
        let mut a = Player::new(hub.subscribe(), shared.clone());
        let mut b = Player::new(hub.subscribe(), shared.clone());
        let payload = Bytes::from(vec![7u8; 10_000]);
        hub.push(Kind::Video, 90_000 * 3, 0, true, payload.clone());
        let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            let item = a.next().await;
            a.on_item(item, &mut out_a).unwrap();
            let item = b.next().await;
            b.on_item(item, &mut out_b).unwrap();
        }
        assert_eq!(out_a.len(), 3, "metadata, sequence header, frame");
        assert_eq!(
            out_a.last().unwrap().as_ptr(),
            out_b.last().unwrap().as_ptr()
        );
        assert_eq!(shared.counts(), (1, 1));

        let all: Vec<u8> = out_a.iter().flat_map(|b| b.to_vec()).collect();
        let messages = read(&all);
        let kinds: Vec<(u8, u32)> = messages
            .iter()
            .map(|m| (m.header.type_id, m.header.timestamp))
            .collect();
        assert_eq!(kinds, [(AMF0_DATA, 3000), (VIDEO, 3000), (VIDEO, 3000)]);
        let values = command::values(&messages[0].data).unwrap();
        assert_eq!(values[0], command::string("onMetaData"));
        assert_eq!(&messages[1].data[..5], &[0x17, 0, 0, 0, 0]);
        assert_eq!(&messages[2].data[..5], &[0x17, 1, 0, 0, 0]);
        assert_eq!(&messages[2].data[5..], &payload[..]);
    }

    #[tokio::test]
    async fn a_new_source_or_a_gone_one_ends_the_play() {
        let hub = Hub::new("cam");
        hub.set_tracks((*tracks()).clone());
        let mut p = Player::new(hub.subscribe(), Arc::new(Shared::default()));
        let mut out = Vec::new();
        let item = p.next().await;
        p.on_item(item, &mut out).unwrap();
        hub.set_tracks(Tracks::default());
        let item = p.next().await;
        assert!(p.on_item(item, &mut out).is_err());
        assert!(p.on_item(Err(Stop::Closed), &mut out).is_err());
    }

    #[test]
    fn the_current_and_the_previous_gop_are_kept() {
        let shared = Shared::default();
        let t = tracks();
        let frame = |seq, keyframe| {
            Arc::new(Frame {
                kind: Kind::Video,
                seq,
                dts: 0,
                composition: 0,
                keyframe,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x41]),
            })
        };
        for seq in 1..=30 {
            shared.chunks(&frame(seq, seq % 10 == 1), &t);
        }
        let recent = shared.recent.lock().unwrap();
        assert_eq!(
            recent.front().unwrap().0.seq,
            11,
            "from the previous keyframe"
        );
        assert_eq!(recent.len(), 20);
    }

    #[test]
    fn only_recent_frames_are_kept() {
        let shared = Shared::default();
        let t = tracks();
        let frame = |seq| {
            Arc::new(Frame {
                kind: Kind::Video,
                seq,
                dts: 0,
                composition: 0,
                keyframe: false,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x41]),
            })
        };
        for seq in 1..=(SHARED_FRAMES as u64 + 10) {
            shared.chunks(&frame(seq), &t);
        }
        shared.chunks(&frame(3), &t);
        let recent = shared.recent.lock().unwrap();
        assert_eq!(recent.len(), SHARED_FRAMES);
        assert_eq!(recent.front().unwrap().0.seq, 11);
    }
}
