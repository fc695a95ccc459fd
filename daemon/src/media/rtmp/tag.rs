//! What a publisher's audio and video messages hold. Their bodies are FLV tag bodies: classic
//! AVC and AAC tags, HEVC with codec id 12 (an older convention some encoders still use), and
//! Enhanced RTMP tags (`avc1` / `hvc1` video with PacketTypeSequenceStart, CodedFrames and
//! CodedFramesX; `mp4a` audio). Parsing has no side effects; payloads are slices of the
//! message, never copies.

use bytes::{BufMut as _, Bytes, BytesMut};

use crate::media::frame::Codec;

/// A video message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Video {
    /// A decoder configuration record (avcC or hvcC).
    Config {
        /// The codec.
        codec: Codec,
        /// The record.
        record: Bytes,
    },
    /// A coded frame: length-prefixed NAL units.
    Frame {
        /// The codec.
        codec: Codec,
        /// A keyframe.
        keyframe: bool,
        /// Presentation time minus decode time, in milliseconds.
        composition_ms: i32,
        /// The NAL units.
        data: Bytes,
    },
    /// Nothing to decode: end of sequence, metadata, a command frame.
    Nothing,
}

/// An audio message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audio {
    /// An AAC AudioSpecificConfig.
    Config(Bytes),
    /// A raw AAC frame.
    Frame(Bytes),
}

/// Why a message was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A codec sited does not carry (named for the log).
    Unsupported(String),
    /// A body too short for its header.
    Truncated,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unsupported(what) => write!(f, "unsupported: {what}"),
            Error::Truncated => write!(f, "a message too short for its header"),
        }
    }
}

fn si24(b: &[u8]) -> i32 {
    (i32::from_be_bytes([b[0], b[1], b[2], 0])) >> 8
}

fn fourcc(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if c.is_ascii_graphic() {
                char::from(c)
            } else {
                '?'
            }
        })
        .collect()
}

/// Reads a video message body.
pub fn video(body: &Bytes) -> Result<Video, Error> {
    let &first = body.first().ok_or(Error::Truncated)?;
    let frame_type = (first >> 4) & 0x07;
    let keyframe = matches!(frame_type, 1 | 4);
    if first & 0x80 != 0 {
        return enhanced_video(body, frame_type, keyframe);
    }
    if frame_type == 5 {
        return Ok(Video::Nothing); // video info / command frame
    }
    let codec = match first & 0x0f {
        7 => Codec::H264,
        12 => Codec::H265,
        id => {
            let name = match id {
                2 => "Sorenson H.263",
                4 | 5 => "VP6",
                _ => "an unknown video codec",
            };
            return Err(Error::Unsupported(format!("{name} (FLV codec id {id})")));
        }
    };
    let head = body.get(1..5).ok_or(Error::Truncated)?;
    match head[0] {
        0 => Ok(Video::Config {
            codec,
            record: body.slice(5..),
        }),
        1 => Ok(Video::Frame {
            codec,
            keyframe,
            composition_ms: si24(&head[1..4]),
            data: body.slice(5..),
        }),
        _ => Ok(Video::Nothing), // end of sequence
    }
}

fn enhanced_video(body: &Bytes, frame_type: u8, keyframe: bool) -> Result<Video, Error> {
    const SEQUENCE_START: u8 = 0;
    const CODED_FRAMES: u8 = 1;
    const SEQUENCE_END: u8 = 2;
    const CODED_FRAMES_X: u8 = 3;
    const METADATA: u8 = 4;
    const MULTITRACK: u8 = 6;
    const MOD_EX: u8 = 7;
    let packet_type = body[0] & 0x0f;
    if frame_type == 5 && packet_type != METADATA {
        return Ok(Video::Nothing); // a command frame: no payload
    }
    if matches!(packet_type, MULTITRACK | MOD_EX) {
        return Err(Error::Unsupported(format!(
            "Enhanced RTMP video packet type {packet_type} (multitrack or ModEx)"
        )));
    }
    let tag = body.get(1..5).ok_or(Error::Truncated)?;
    let codec = match tag {
        b"avc1" => Codec::H264,
        b"hvc1" => Codec::H265,
        other => {
            return Err(Error::Unsupported(format!(
                "Enhanced RTMP video \"{}\"",
                fourcc(other)
            )));
        }
    };
    match packet_type {
        SEQUENCE_START => Ok(Video::Config {
            codec,
            record: body.slice(5..),
        }),
        CODED_FRAMES => {
            let cts = body.get(5..8).ok_or(Error::Truncated)?;
            Ok(Video::Frame {
                codec,
                keyframe,
                composition_ms: si24(cts),
                data: body.slice(8..),
            })
        }
        CODED_FRAMES_X => Ok(Video::Frame {
            codec,
            keyframe,
            composition_ms: 0,
            data: body.slice(5..),
        }),
        SEQUENCE_END | METADATA => Ok(Video::Nothing),
        other => Err(Error::Unsupported(format!(
            "Enhanced RTMP video packet type {other}"
        ))),
    }
}

/// Reads an audio message body.
pub fn audio(body: &Bytes) -> Result<Audio, Error> {
    let &first = body.first().ok_or(Error::Truncated)?;
    match first >> 4 {
        10 => match body.get(1).ok_or(Error::Truncated)? {
            0 => Ok(Audio::Config(body.slice(2..))),
            _ => Ok(Audio::Frame(body.slice(2..))),
        },
        9 => {
            // Enhanced RTMP v2: AudioPacketType, then a FourCC.
            let tag = body.get(1..5).ok_or(Error::Truncated)?;
            if tag != b"mp4a" || first & 0x0f > 1 {
                return Err(Error::Unsupported(format!(
                    "Enhanced RTMP audio \"{}\" packet type {}",
                    fourcc(tag),
                    first & 0x0f
                )));
            }
            match first & 0x0f {
                0 => Ok(Audio::Config(body.slice(5..))),
                _ => Ok(Audio::Frame(body.slice(5..))),
            }
        }
        format => {
            let name = match format {
                2 | 14 => "MP3",
                7 => "G.711 A-law",
                8 => "G.711 mu-law",
                11 => "Speex",
                0 | 3 => "PCM",
                _ => "an unknown audio codec",
            };
            Err(Error::Unsupported(format!(
                "{name} (FLV sound format {format})"
            )))
        }
    }
}

/// Checks that `data` is whole NAL units each prefixed by a `length_size`-byte length, and
/// returns them with 4-byte lengths (the hub's form): the same bytes when they already are.
pub fn four_byte_lengths(data: Bytes, length_size: usize) -> Option<Bytes> {
    let mut units = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let prefix = data.get(at..at + length_size)?;
        let len = prefix
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        at += length_size;
        if len == 0 || data.len() - at < len {
            return None;
        }
        units.push(at..at + len);
        at += len;
    }
    if units.is_empty() {
        return None;
    }
    if length_size == 4 {
        return Some(data);
    }
    let mut out = BytesMut::with_capacity(data.len() + units.len() * 4);
    for unit in units {
        out.put_u32(unit.len() as u32);
        out.put_slice(&data[unit]);
    }
    Some(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(bytes: &[u8]) -> Bytes {
        Bytes::copy_from_slice(bytes)
    }

    #[test]
    fn classic_avc_tags() {
        assert_eq!(
            video(&b(&[0x17, 0, 0, 0, 0, 1, 0x64])).unwrap(),
            Video::Config {
                codec: Codec::H264,
                record: b(&[1, 0x64])
            }
        );
        assert_eq!(
            video(&b(&[0x27, 1, 0xff, 0xff, 0xd8, 0, 0, 0, 1, 0x41])).unwrap(),
            Video::Frame {
                codec: Codec::H264,
                keyframe: false,
                composition_ms: -40,
                data: b(&[0, 0, 0, 1, 0x41])
            }
        );
        assert_eq!(video(&b(&[0x17, 2, 0, 0, 0])).unwrap(), Video::Nothing);
        assert_eq!(video(&b(&[0x57, 0])).unwrap(), Video::Nothing);
    }

    #[test]
    fn enhanced_rtmp_hevc_and_avc_tags() {
        let mut start = vec![0x90];
        start.extend_from_slice(b"hvc1");
        start.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            video(&b(&start)).unwrap(),
            Video::Config {
                codec: Codec::H265,
                record: b(&[1, 2, 3])
            }
        );
        // CodedFrames: a key frame with a 3-byte composition time.
        let mut coded = vec![0x91];
        coded.extend_from_slice(b"hvc1");
        coded.extend_from_slice(&[0, 0, 80, 0, 0, 0, 2, 0x26, 0x01]);
        assert_eq!(
            video(&b(&coded)).unwrap(),
            Video::Frame {
                codec: Codec::H265,
                keyframe: true,
                composition_ms: 80,
                data: b(&[0, 0, 0, 2, 0x26, 0x01])
            }
        );
        // CodedFramesX: an inter frame, no composition time.
        let mut coded_x = vec![0xa3];
        coded_x.extend_from_slice(b"avc1");
        coded_x.extend_from_slice(&[0, 0, 0, 1, 0x41]);
        assert_eq!(
            video(&b(&coded_x)).unwrap(),
            Video::Frame {
                codec: Codec::H264,
                keyframe: false,
                composition_ms: 0,
                data: b(&[0, 0, 0, 1, 0x41])
            }
        );
        let mut end = vec![0x92];
        end.extend_from_slice(b"hvc1");
        assert_eq!(video(&b(&end)).unwrap(), Video::Nothing);
    }

    #[test]
    fn codecs_sited_does_not_carry_are_named() {
        let mut av1 = vec![0x90];
        av1.extend_from_slice(b"av01");
        assert_eq!(
            video(&b(&av1)),
            Err(Error::Unsupported("Enhanced RTMP video \"av01\"".into()))
        );
        assert!(matches!(video(&b(&[0x12, 0])), Err(Error::Unsupported(s)) if s.contains("H.263")));
        assert!(matches!(audio(&b(&[0x2f, 0])), Err(Error::Unsupported(s)) if s.contains("MP3")));
        let mut opus = vec![0x91];
        opus.extend_from_slice(b"Opus");
        assert!(audio(&b(&opus)).is_err());
    }

    #[test]
    fn truncated_bodies_are_errors() {
        for body in [
            &[][..],
            &[0x17],
            &[0x17, 0, 0],
            &[0x91, b'h', b'v'],
            &[0x91, b'h', b'v', b'c', b'1', 0],
        ] {
            assert_eq!(video(&b(body)), Err(Error::Truncated), "{body:?}");
        }
        for body in [&[][..], &[0xaf], &[0x90, b'm']] {
            assert_eq!(audio(&b(body)), Err(Error::Truncated), "{body:?}");
        }
    }

    #[test]
    fn aac_tags_classic_and_enhanced() {
        assert_eq!(
            audio(&b(&[0xaf, 0, 0x12, 0x10])).unwrap(),
            Audio::Config(b(&[0x12, 0x10]))
        );
        assert_eq!(
            audio(&b(&[0xaf, 1, 0x21])).unwrap(),
            Audio::Frame(b(&[0x21]))
        );
        let mut ex = vec![0x91];
        ex.extend_from_slice(b"mp4a");
        ex.push(0x21);
        assert_eq!(audio(&b(&ex)).unwrap(), Audio::Frame(b(&[0x21])));
    }

    #[test]
    fn nal_lengths_are_checked_and_widened() {
        let four = b(&[0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x06]);
        let same = four_byte_lengths(four.clone(), 4).unwrap();
        assert_eq!(same.as_ptr(), four.as_ptr(), "no copy when already in form");
        assert_eq!(
            four_byte_lengths(b(&[0, 2, 0x65, 1, 0, 1, 0x06]), 2).unwrap(),
            four
        );
        assert!(
            four_byte_lengths(b(&[0, 0, 0, 9, 0x65]), 4).is_none(),
            "overruns"
        );
        assert!(four_byte_lengths(b(&[0, 0, 0]), 4).is_none(), "cut prefix");
        assert!(
            four_byte_lengths(b(&[0, 0, 0, 0]), 4).is_none(),
            "empty unit"
        );
        assert!(four_byte_lengths(Bytes::new(), 4).is_none(), "no unit");
    }
}
