//! FLV for HTTP-FLV and RTMP play: a header, sequence headers, then one tag per frame.
//!
//! H.264 uses the classic AVC tags; H.265 uses Enhanced RTMP's `hvc1` FourCC tags, which ffmpeg
//! 6.1+, OBS 30+ and flv.js read. Frames are already AVCC / raw AAC (the hub's MP4 form), so a
//! tag is a few header bytes in front of the shared payload.

use bytes::{BufMut as _, Bytes, BytesMut};

use crate::media::frame::{Codec, Frame, Kind, Tracks};

/// The FLV file header and the first PreviousTagSize.
pub fn header(tracks: &Tracks) -> Bytes {
    let mut out = BytesMut::with_capacity(13);
    out.put_slice(b"FLV\x01");
    out.put_u8(if tracks.audio.is_some() { 0x05 } else { 0x01 });
    out.put_u32(9);
    out.put_u32(0);
    out.freeze()
}

fn tag(kind: u8, timestamp_ms: u32, head: &[u8], payload: &[u8]) -> Bytes {
    let size = head.len() + payload.len();
    let mut out = BytesMut::with_capacity(11 + size + 4);
    out.put_u8(kind);
    out.put_uint(size as u64, 3);
    out.put_uint(u64::from(timestamp_ms & 0x00ff_ffff), 3);
    out.put_u8((timestamp_ms >> 24) as u8);
    out.put_uint(0, 3);
    out.put_slice(head);
    out.put_slice(payload);
    out.put_u32((11 + size) as u32);
    out.freeze()
}

const VIDEO: u8 = 9;
const AUDIO: u8 = 8;

/// The sequence headers of a stream's tracks (decoder configuration), at time 0.
pub fn sequence_headers(tracks: &Tracks) -> Vec<Bytes> {
    let mut out = Vec::new();
    if let Some(v) = &tracks.video {
        match v.codec {
            Codec::H264 => out.push(tag(VIDEO, 0, &[0x17, 0, 0, 0, 0], &v.extra_data)),
            // Enhanced RTMP: IsExHeader | key frame, PacketTypeSequenceStart, FourCC.
            _ => out.push(tag(
                VIDEO,
                0,
                &[0x90, b'h', b'v', b'c', b'1'],
                &v.extra_data,
            )),
        }
    }
    if let Some(a) = &tracks.audio {
        out.push(tag(AUDIO, 0, &[0xaf, 0x00], &a.extra_data));
    }
    out
}

/// Turns frames into FLV tags with millisecond timestamps from the first frame.
pub struct Muxer {
    h265: bool,
    video_scale: u32,
    audio_scale: u32,
    origin: Option<(Kind, i64)>,
    video_origin: Option<i64>,
    audio_origin: Option<i64>,
    last_ms: u32,
}

impl Muxer {
    /// A muxer for these tracks.
    pub fn new(tracks: &Tracks) -> Muxer {
        Muxer {
            h265: tracks
                .video
                .as_ref()
                .is_some_and(|v| v.codec == Codec::H265),
            video_scale: tracks.video.as_ref().map_or(90_000, |v| v.timescale),
            audio_scale: tracks.audio.as_ref().map_or(48_000, |a| a.timescale),
            origin: None,
            video_origin: None,
            audio_origin: None,
            last_ms: 0,
        }
    }

    fn ms(&mut self, frame: &Frame) -> u32 {
        self.origin.get_or_insert((frame.kind, frame.dts));
        let (origin, scale) = match frame.kind {
            Kind::Video => (
                *self.video_origin.get_or_insert(frame.dts),
                self.video_scale,
            ),
            Kind::Audio => (
                *self.audio_origin.get_or_insert(frame.dts),
                self.audio_scale,
            ),
        };
        let ms = ((frame.dts - origin).max(0) as u64 * 1000 / u64::from(scale.max(1))) as u32;
        // Tags must not go back in time across tracks; a small reorder is clamped.
        self.last_ms = ms.max(self.last_ms.saturating_sub(1000));
        ms
    }

    /// The tag of a frame, in three parts: the tag header with the codec bytes, the frame's
    /// payload (shared, never copied), and the trailer. A viewer writes them with one `writev`.
    pub fn parts(&mut self, frame: &Frame) -> TagParts {
        let ms = self.ms(frame);
        let cts = composition_ms(frame, self.video_scale);
        let [_, c0, c1, c2] = cts.to_be_bytes();
        let (kind, codec, codec_len) = match frame.kind {
            Kind::Video if self.h265 => {
                let frame_type = if frame.keyframe { 0x10 } else { 0x20 };
                if cts == 0 {
                    // CodedFramesX: no composition time.
                    let codec = [0x83 | frame_type, b'h', b'v', b'c', b'1', 0, 0, 0];
                    (VIDEO, codec, 5)
                } else {
                    // CodedFrames: a 3-byte composition time.
                    let codec = [0x81 | frame_type, b'h', b'v', b'c', b'1', c0, c1, c2];
                    (VIDEO, codec, 8)
                }
            }
            Kind::Video => {
                let first = if frame.keyframe { 0x17 } else { 0x27 };
                (VIDEO, [first, 1, c0, c1, c2, 0, 0, 0], 5)
            }
            Kind::Audio => (AUDIO, [0xaf, 0x01, 0, 0, 0, 0, 0, 0], 2),
        };
        let size = codec_len + frame.data.len();
        let mut head = [0u8; HEAD_MAX];
        head[0] = kind;
        head[1..4].copy_from_slice(&(size as u32).to_be_bytes()[1..]);
        head[4..7].copy_from_slice(&(ms & 0x00ff_ffff).to_be_bytes()[1..]);
        head[7] = (ms >> 24) as u8;
        head[11..11 + codec_len].copy_from_slice(&codec[..codec_len]);
        TagParts {
            head,
            head_len: 11 + codec_len,
            trailer: ((11 + size) as u32).to_be_bytes(),
        }
    }

    /// The tag of a frame, as one buffer.
    pub fn tag(&mut self, frame: &Frame) -> Bytes {
        let p = self.parts(frame);
        let mut out = BytesMut::with_capacity(p.head().len() + frame.data.len() + 4);
        out.put_slice(p.head());
        out.put_slice(&frame.data);
        out.put_slice(&p.trailer);
        out.freeze()
    }
}

/// The longest tag head: 11 bytes of tag header, then up to 8 codec bytes (Enhanced RTMP's
/// CodedFrames: the frame type, the FourCC and a composition time).
const HEAD_MAX: usize = 19;

/// A frame's tag without its payload: what goes before and after it.
#[derive(Debug, Clone, Copy)]
pub struct TagParts {
    head: [u8; HEAD_MAX],
    head_len: usize,
    /// The PreviousTagSize that follows the payload.
    pub trailer: [u8; 4],
}

impl TagParts {
    /// The tag header (11 bytes) and the codec bytes before the payload.
    pub fn head(&self) -> &[u8] {
        &self.head[..self.head_len]
    }
}

/// A video frame's composition time in milliseconds, as FLV's signed 24-bit field holds it.
fn composition_ms(frame: &Frame, scale: u32) -> i32 {
    let ms = i64::from(frame.composition) * 1000 / i64::from(scale.max(1));
    ms.clamp(-(1 << 23), (1 << 23) - 1) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_has_its_size_time_and_trailer() {
        let t = tag(VIDEO, 0x0102_0304, &[0x17, 1, 0, 0, 0], b"abc");
        assert_eq!(t[0], VIDEO);
        assert_eq!(&t[1..4], &[0, 0, 8]);
        assert_eq!(
            &t[4..8],
            &[0x02, 0x03, 0x04, 0x01],
            "24 low bits, then the extension byte"
        );
        assert_eq!(u32::from_be_bytes(t[t.len() - 4..].try_into().unwrap()), 19);
    }

    fn tracks(codec: Codec) -> Tracks {
        let track = crate::media::frame::Track {
            codec,
            timescale: 90_000,
            extra_data: Bytes::from_static(b"config"),
            sample_entry: Bytes::new(),
            rfc6381: String::new(),
            dimensions: (640, 360),
            channels: 0,
        };
        Tracks {
            video: Some(std::sync::Arc::new(track)),
            audio: None,
        }
    }

    /// What the RTMP publisher's parser (Enhanced RTMP included) reads from a tag's body.
    fn read_back(tag: &Bytes) -> crate::media::rtmp::tag::Video {
        crate::media::rtmp::tag::video(&tag.slice(11..tag.len() - 4)).unwrap()
    }

    #[test]
    fn h264_and_h265_tags_read_back_with_their_key_flag_and_composition_time() {
        use crate::media::rtmp::tag::Video;
        for codec in [Codec::H264, Codec::H265] {
            let tracks = tracks(codec);
            match read_back(&sequence_headers(&tracks)[0]) {
                Video::Config { codec: c, record } => {
                    assert_eq!((c, &record[..]), (codec, &b"config"[..]))
                }
                other => panic!("{codec:?}: {other:?}"),
            }
            let mut muxer = Muxer::new(&tracks);
            // A keyframe shown 80 ms after it is decoded (B-frames follow), then a B-frame.
            for (dts, composition, keyframe, cts_ms) in [
                (0, 7200, true, 80),
                (3600, -3600, false, -40),
                (7200, 0, false, 0),
            ] {
                let frame = Frame {
                    kind: Kind::Video,
                    seq: 1,
                    dts,
                    composition,
                    keyframe,
                    data: Bytes::from_static(b"\0\0\0\x01x"),
                };
                let tag = muxer.tag(&frame);
                let ms = u32::from_be_bytes([tag[7], tag[4], tag[5], tag[6]]);
                assert_eq!(
                    i64::from(ms),
                    dts / 90,
                    "{codec:?}: the tag time is decode time"
                );
                match read_back(&tag) {
                    Video::Frame {
                        codec: c,
                        keyframe: k,
                        composition_ms,
                        data,
                    } => assert_eq!(
                        (c, k, composition_ms, &data[..]),
                        (codec, keyframe, cts_ms, &b"\0\0\0\x01x"[..]),
                    ),
                    other => panic!("{codec:?}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn a_frames_parts_make_the_same_tag_as_the_whole() {
        let tracks = Tracks::default();
        let frame = Frame {
            kind: Kind::Video,
            seq: 1,
            dts: 90_000 * 0x0100_0000 / 1000 + 90,
            composition: 0,
            keyframe: true,
            data: Bytes::from_static(b"abc"),
        };
        let mut m = Muxer::new(&tracks);
        let origin = Frame {
            dts: 0,
            ..frame.clone()
        };
        m.tag(&origin);
        let p = m.parts(&frame);
        let whole = tag(VIDEO, 0x0100_0001, &[0x17, 1, 0, 0, 0], b"abc");
        assert_eq!(
            [p.head(), &frame.data[..], &p.trailer[..]].concat(),
            whole.to_vec()
        );
        let audio = Frame {
            kind: Kind::Audio,
            ..origin
        };
        assert_eq!(m.parts(&audio).head()[11..], [0xaf, 0x01]);
    }
}
