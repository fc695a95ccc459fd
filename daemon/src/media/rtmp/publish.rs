//! A device's published stream into its hub: sequence headers become tracks (sample entry,
//! codec string, picture size), coded frames become hub frames in MP4 form.
//!
//! The tracks are announced at the first video frame, once both sequence headers (which
//! publishers send first) are known, so a viewer sees one epoch, not one per header. A changed
//! sequence header later (an encoder that changes resolution) announces new tracks. Timestamps
//! are the publisher's milliseconds from its first message, unwrapped past 2^32.

use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::{RtmpContext, sps, tag};
use crate::base::Error;
use crate::media::frame::{Codec, Kind, Track, Tracks};
use crate::media::hub::Hub;
use crate::media::sample_entry;

/// The video track and how its frames' NAL lengths are written.
struct Video {
    track: Arc<Track>,
    length_size: usize,
}

/// RTMP milliseconds (32 bits, wrapping) to a signed count from the first message.
#[derive(Default)]
struct Clock {
    origin: Option<i64>,
    last: u32,
    wraps: i64,
}

impl Clock {
    fn ms(&mut self, ts: u32) -> i64 {
        const HALF: u32 = 1 << 31;
        let mut wraps = self.wraps;
        if self.origin.is_some() {
            if ts < self.last && self.last - ts > HALF {
                self.wraps += 1;
                wraps = self.wraps;
            } else if ts > self.last && ts - self.last > HALF {
                // A late message from before the last wrap.
                return (wraps - 1) * (1 << 32) + i64::from(ts) - self.origin.unwrap_or(0);
            }
        }
        self.last = ts;
        let unwrapped = wraps * (1 << 32) + i64::from(ts);
        unwrapped - *self.origin.get_or_insert(unwrapped)
    }
}

/// Builds the video track of a sequence header; also returns its NAL length size.
pub fn video_track(codec: Codec, record: &Bytes) -> Result<(Track, usize), Error> {
    let (sets, length_byte) = match codec {
        Codec::H264 => (sample_entry::avcc_parameter_sets(record)?, 4),
        Codec::H265 => (sample_entry::hvcc_parameter_sets(record)?, 21),
        Codec::Aac => crate::bail!(Invalid, "AAC is not video"),
    };
    // Frames are rewritten with 4-byte lengths, so the record must say so.
    let extra_data = if sets.length_size == 4 {
        record.clone()
    } else {
        let mut r = record.to_vec();
        r[length_byte] |= 3;
        Bytes::from(r)
    };
    let (dimensions, sample_entry, rfc6381) = match codec {
        Codec::H264 => {
            let d = sps::h264_dimensions(&sets.sps[0])?;
            (
                d,
                sample_entry::avc1(&extra_data, d),
                sample_entry::avc1_codec(&extra_data),
            )
        }
        _ => {
            let d = sps::h265_dimensions(&sets.sps[0])?;
            (
                d,
                sample_entry::hvc1(&extra_data, d),
                sample_entry::hvc1_codec(&extra_data),
            )
        }
    };
    let track = Track {
        codec,
        timescale: 90_000,
        extra_data,
        sample_entry,
        rfc6381: rfc6381.ok_or_else(|| crate::err!(Invalid, "the record has no profile"))?,
        dimensions,
        channels: 0,
    };
    Ok((track, sets.length_size))
}

/// How a track is shown in the log.
pub fn describe(track: &Track) -> String {
    match track.codec {
        Codec::Aac => format!(
            "{} {} Hz {} ch",
            track.rfc6381, track.timescale, track.channels
        ),
        _ => format!(
            "{} {}x{}",
            track.rfc6381, track.dimensions.0, track.dimensions.1
        ),
    }
}

/// One device's publishing session. Dropping it ends the device's live source, unless another
/// publisher took the device over.
pub struct Publisher {
    ctx: Arc<RtmpContext>,
    id: u64,
    /// Cancelled when another publisher takes the device over; nothing is pushed after that.
    taken_over: CancellationToken,
    device: String,
    hub: Arc<Hub>,
    video: Option<Video>,
    audio: Option<Arc<Track>>,
    announced: bool,
    clock: Clock,
    warned: Vec<String>,
    /// Frames pushed into the hub.
    pub frames: u64,
    /// Messages dropped (unsupported codec, malformed, before their sequence header).
    pub dropped: u64,
}

impl Publisher {
    /// Starts publishing as `device`; a publisher already there is told to leave.
    pub fn new(ctx: Arc<RtmpContext>, device: &str) -> Publisher {
        let (id, taken_over) = ctx.register_publisher(device);
        let hub = ctx.hubs.get_or_create(device);
        // What a previous publisher left (tracks, GOP) is not this one's: its viewers start a
        // new epoch at this publisher's first frame, with its timestamps.
        hub.clear();
        Publisher {
            ctx,
            id,
            taken_over,
            device: device.to_string(),
            hub,
            video: None,
            audio: None,
            announced: false,
            clock: Clock::default(),
            warned: Vec::new(),
            frames: 0,
            dropped: 0,
        }
    }

    /// Cancelled when another publisher takes the device over.
    pub fn taken_over(&self) -> &CancellationToken {
        &self.taken_over
    }

    /// Logs a problem once per publisher, and counts the message dropped.
    fn drop_message(&mut self, what: String) {
        self.dropped += 1;
        if !self.warned.contains(&what) {
            tracing::warn!(device = %self.device, problem = %what, "dropping RTMP messages");
            self.warned.push(what);
        }
    }

    fn announce(&mut self) {
        let Some(video) = &self.video else { return };
        let tracks = Tracks {
            video: Some(video.track.clone()),
            audio: self.audio.clone(),
        };
        tracing::info!(
            device = %self.device,
            video = %describe(&video.track),
            audio = %self.audio.as_deref().map(describe).unwrap_or_else(|| "none".into()),
            "device publishing"
        );
        self.hub.set_tracks(tracks);
        self.announced = true;
    }

    /// A video message.
    pub fn video(&mut self, timestamp: u32, body: &Bytes) {
        if self.taken_over.is_cancelled() {
            return;
        }
        let ms = self.clock.ms(timestamp);
        match tag::video(body) {
            Ok(tag::Video::Config { codec, record }) => match video_track(codec, &record) {
                Ok((track, length_size)) => {
                    let changed = self.video.as_ref().is_none_or(|v| *v.track != track);
                    self.video = Some(Video {
                        track: Arc::new(track),
                        length_size,
                    });
                    if changed && self.announced {
                        self.announce();
                    }
                }
                Err(e) => self.drop_message(format!("a bad {} sequence header: {e}", codec.name())),
            },
            Ok(tag::Video::Frame {
                codec,
                keyframe,
                composition_ms,
                data,
            }) => {
                let Some(video) = &self.video else {
                    return self.drop_message("video before its sequence header".into());
                };
                if video.track.codec != codec {
                    return self.drop_message(format!(
                        "{} frames after a {} sequence header",
                        codec.name(),
                        video.track.codec.name()
                    ));
                }
                let Some(data) = tag::four_byte_lengths(data, video.length_size) else {
                    return self.drop_message("a video frame with bad NAL unit lengths".into());
                };
                if !self.announced {
                    self.announce();
                }
                // FLV's composition time, clamped to what a sane encoder reorders (±10 s).
                let composition = composition_ms.clamp(-10_000, 10_000) * 90;
                self.hub
                    .push(Kind::Video, ms * 90, composition, keyframe, data);
                self.frames += 1;
            }
            Ok(tag::Video::Nothing) => {}
            Err(e) => self.drop_message(format!("video: {e}")),
        }
    }

    /// An audio message.
    pub fn audio(&mut self, timestamp: u32, body: &Bytes) {
        if self.taken_over.is_cancelled() {
            return;
        }
        let ms = self.clock.ms(timestamp);
        match tag::audio(body) {
            Ok(tag::Audio::Config(asc)) => match sample_entry::aac_track(&asc) {
                Ok(track) => {
                    let changed = self.audio.as_deref() != Some(&track);
                    self.audio = Some(Arc::new(track));
                    if changed && self.announced {
                        self.announce();
                    }
                }
                Err(e) => self.drop_message(format!("a bad AAC sequence header: {e}")),
            },
            Ok(tag::Audio::Frame(data)) => {
                let Some(audio) = &self.audio else {
                    return self.drop_message("audio before its sequence header".into());
                };
                // Audio before the first video frame has nothing to start with.
                if !self.announced || data.is_empty() {
                    return;
                }
                let pts = ms * i64::from(audio.timescale) / 1000;
                self.hub.push(Kind::Audio, pts, 0, true, data);
                self.frames += 1;
            }
            Err(e) => self.drop_message(format!("audio: {e}")),
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if self.ctx.unregister_publisher(&self.device, self.id) {
            self.hub.clear();
            self.ctx.hubs.remove(&self.device);
        }
        tracing::info!(
            device = %self.device,
            frames = self.frames,
            dropped = self.dropped,
            "device stopped publishing"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::hub::{Hubs, Item};
    use crate::media::sample_entry::tests::{avcc_640x360, hvcc_1366x766};
    use std::collections::HashMap;

    fn ctx() -> Arc<RtmpContext> {
        Arc::new(RtmpContext::new(
            Arc::new(Hubs::default()),
            HashMap::new(),
            Box::new(|_| true),
        ))
    }

    fn avc_header() -> Bytes {
        let mut b = vec![0x17, 0, 0, 0, 0];
        b.extend_from_slice(&avcc_640x360());
        Bytes::from(b)
    }

    #[test]
    fn the_clock_starts_at_zero_and_unwraps() {
        let mut c = Clock::default();
        assert_eq!(c.ms(u32::MAX - 10), 0);
        assert_eq!(
            c.ms(u32::MAX - 20),
            -10,
            "a small step back stays a step back"
        );
        assert_eq!(c.ms(5), 16);
        assert_eq!(c.ms(u32::MAX - 1), 9, "late, from before the wrap");
        assert_eq!(c.ms(40), 51);
    }

    #[test]
    fn sequence_headers_make_tracks() {
        let (track, length_size) = video_track(Codec::H264, &avcc_640x360()).unwrap();
        assert_eq!((track.dimensions, length_size), ((640, 360), 4));
        assert_eq!(track.rfc6381, "avc1.64001E");
        assert_eq!(&track.sample_entry[4..8], b"avc1");
        let (track, _) = video_track(Codec::H265, &hvcc_1366x766()).unwrap();
        assert_eq!(track.dimensions, (1366, 766));
        let audio = sample_entry::aac_track(&Bytes::from_static(&[0x11, 0x90])).unwrap();
        assert_eq!((audio.timescale, audio.channels), (48_000, 2));
        assert_eq!(describe(&audio), "mp4a.40.2 48000 Hz 2 ch");
    }

    #[test]
    fn two_byte_nal_lengths_are_widened_and_the_record_says_so() {
        let mut avcc = avcc_640x360().to_vec();
        avcc[4] = 0xfd; // lengthSizeMinusOne = 1
        let (track, length_size) = video_track(Codec::H264, &Bytes::from(avcc)).unwrap();
        assert_eq!(length_size, 2);
        assert_eq!(track.extra_data[4] & 3, 3);
    }

    #[tokio::test]
    async fn frames_reach_the_hub_after_the_tracks() {
        let ctx = ctx();
        let mut p = Publisher::new(ctx.clone(), "phone");
        let mut reader = ctx.hubs.get("phone").unwrap().subscribe();
        p.audio(0, &Bytes::from_static(&[0xaf, 1, 0x21])); // before any header: dropped
        p.video(0, &avc_header());
        p.audio(0, &Bytes::from_static(&[0xaf, 0, 0x11, 0x90]));
        p.audio(10, &Bytes::from_static(&[0xaf, 1, 0x21])); // before the first video frame
        p.video(
            40,
            &Bytes::from_static(&[0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]),
        );
        p.audio(60, &Bytes::from_static(&[0xaf, 1, 0x21]));
        p.video(
            80,
            &Bytes::from_static(&[0x27, 1, 0, 0, 0, 0, 0, 0, 9, 0x41]),
        ); // bad length
        let Ok(Item::Tracks(t)) = reader.next().await else {
            panic!()
        };
        assert!(t.video.is_some() && t.audio.is_some());
        let Ok(Item::Frame(f)) = reader.next().await else {
            panic!()
        };
        assert_eq!((f.kind, f.dts, f.keyframe), (Kind::Video, 40 * 90, true));
        let Ok(Item::Frame(f)) = reader.next().await else {
            panic!()
        };
        assert_eq!((f.kind, f.dts), (Kind::Audio, 60 * 48));
        assert_eq!((p.frames, p.dropped), (2, 2));
        drop(p);
        assert!(
            ctx.hubs.get("phone").is_none(),
            "unpublished: the source is gone"
        );
    }

    #[test]
    fn a_publisher_taken_over_leaves_the_new_ones_hub() {
        let ctx = ctx();
        let mut old = Publisher::new(ctx.clone(), "phone");
        let new = Publisher::new(ctx.clone(), "phone");
        assert!(old.taken_over().is_cancelled());
        old.video(0, &avc_header());
        assert!(old.video.is_none(), "a publisher taken over pushes nothing");
        drop(old);
        assert!(ctx.hubs.get("phone").is_some());
        drop(new);
        assert!(ctx.hubs.get("phone").is_none());
    }
}
