//! The relay's items on a channel: one item per channel frame, big-endian, no padding.
//!
//! ```text
//! tracks  01  video? audio?                      each: 00 (absent) | 01 track
//! track       codec u8 (0 h264, 1 h265, 2 aac)  timescale u32  width u32  height u32
//!             channels u16  extra_data (u32 len, bytes)  sample_entry (u32 len, bytes)
//!             rfc6381 (u8 len, ASCII)
//! frame   02  kind u8 (0 video, 1 audio)  flags u8 (bit 0: keyframe)  dts i64
//!             composition i32  data (the rest of the item)
//! ```
//!
//! Decoding refuses anything truncated, trailing, unknown or over its bound: a frame's data is
//! at most [`channel::MAX_DATA`] with its header; a decoder configuration at most
//! [`MAX_CONFIG`] bytes. A frame's data is shared with the item, never copied.

use std::sync::Arc;

use bytes::{BufMut as _, Bytes, BytesMut};

use crate::base::Error;
use crate::media::frame::{Codec, Frame, Kind, Track, Tracks};
use crate::nodes::channel;

/// The most bytes of a track's `extra_data` or `sample_entry`.
pub const MAX_CONFIG: usize = 64 << 10;
/// The bytes of a frame item before its data.
pub const FRAME_HEAD: usize = 1 + 1 + 1 + 8 + 4;

const TRACKS: u8 = 1;
const FRAME: u8 = 2;

/// One item of a relayed stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relayed {
    /// The stream (re)starts with these tracks.
    Tracks(Tracks),
    /// A frame, as the hub takes it.
    Frame {
        /// Its track.
        kind: Kind,
        /// Decode time, in the track's timescale.
        dts: i64,
        /// Presentation minus decode time.
        composition: i32,
        /// Whether a decoder can start here.
        keyframe: bool,
        /// The payload, in MP4 form.
        data: Bytes,
    },
}

fn refuse(what: &str) -> Error {
    crate::err!(Invalid, "a malformed relay item: {what}")
}

/// The tracks as an item.
pub fn tracks(t: &Tracks) -> Result<Vec<u8>, Error> {
    let mut out = BytesMut::new();
    out.put_u8(TRACKS);
    for track in [&t.video, &t.audio] {
        let Some(track) = track else {
            out.put_u8(0);
            continue;
        };
        if track.extra_data.len() > MAX_CONFIG
            || track.sample_entry.len() > MAX_CONFIG
            || track.rfc6381.len() > usize::from(u8::MAX)
        {
            crate::bail!(
                ResourceExhausted,
                "a track's configuration is too large to relay"
            );
        }
        out.put_u8(1);
        out.put_u8(match track.codec {
            Codec::H264 => 0,
            Codec::H265 => 1,
            Codec::Aac => 2,
        });
        out.put_u32(track.timescale);
        out.put_u32(track.dimensions.0);
        out.put_u32(track.dimensions.1);
        out.put_u16(track.channels);
        for b in [&track.extra_data, &track.sample_entry] {
            out.put_u32(b.len() as u32);
            out.put_slice(b);
        }
        out.put_u8(track.rfc6381.len() as u8);
        out.put_slice(track.rfc6381.as_bytes());
    }
    Ok(out.to_vec())
}

/// A frame as an item; refused when it would not fit one channel frame.
pub fn frame(f: &Frame) -> Result<Vec<u8>, Error> {
    if FRAME_HEAD + f.data.len() > channel::MAX_DATA {
        crate::bail!(
            ResourceExhausted,
            "a frame of {} bytes is too large to relay",
            f.data.len()
        );
    }
    let mut out = Vec::with_capacity(FRAME_HEAD + f.data.len());
    out.put_u8(FRAME);
    out.put_u8(match f.kind {
        Kind::Video => 0,
        Kind::Audio => 1,
    });
    out.put_u8(u8::from(f.keyframe));
    out.put_i64(f.dts);
    out.put_i32(f.composition);
    out.put_slice(&f.data);
    Ok(out)
}

/// Reads fields off the front of an item, refusing to read past its end.
struct Cursor {
    item: Bytes,
    at: usize,
}

impl Cursor {
    fn take(&mut self, n: usize) -> Result<Bytes, Error> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.item.len())
            .ok_or_else(|| refuse("truncated"))?;
        let b = self.item.slice(self.at..end);
        self.at = end;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let b = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&b);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn config(&mut self) -> Result<Bytes, Error> {
        let len = self.u32()? as usize;
        if len > MAX_CONFIG {
            return Err(refuse("a decoder configuration over its bound"));
        }
        self.take(len)
    }

    fn track(&mut self) -> Result<Option<Arc<Track>>, Error> {
        match self.u8()? {
            0 => return Ok(None),
            1 => {}
            _ => return Err(refuse("a track marker")),
        }
        let codec = match self.u8()? {
            0 => Codec::H264,
            1 => Codec::H265,
            2 => Codec::Aac,
            _ => return Err(refuse("an unknown codec")),
        };
        let timescale = self.u32()?;
        if timescale == 0 {
            return Err(refuse("a zero timescale"));
        }
        let dimensions = (self.u32()?, self.u32()?);
        let channels = u16::from_be_bytes(self.array()?);
        let extra_data = self.config()?;
        let sample_entry = self.config()?;
        let len = usize::from(self.u8()?);
        let rfc6381 = std::str::from_utf8(&self.take(len)?)
            .map_err(|_| refuse("a codec string that is not text"))?
            .to_string();
        Ok(Some(Arc::new(Track {
            codec,
            timescale,
            extra_data,
            sample_entry,
            rfc6381,
            dimensions,
            channels,
        })))
    }
}

/// An item back, sharing `item`'s bytes.
pub fn decode(item: Bytes) -> Result<Relayed, Error> {
    if item.len() > channel::MAX_DATA {
        crate::bail!(
            ResourceExhausted,
            "a relay item over {} bytes",
            channel::MAX_DATA
        );
    }
    let mut c = Cursor { item, at: 0 };
    let relayed = match c.u8()? {
        TRACKS => {
            let video = c.track()?;
            let audio = c.track()?;
            if c.at != c.item.len() {
                return Err(refuse("trailing bytes"));
            }
            Relayed::Tracks(Tracks { video, audio })
        }
        FRAME => {
            let kind = match c.u8()? {
                0 => Kind::Video,
                1 => Kind::Audio,
                _ => return Err(refuse("an unknown track kind")),
            };
            let flags = c.u8()?;
            if flags > 1 {
                return Err(refuse("unknown flags"));
            }
            let dts = i64::from_be_bytes(c.array()?);
            let composition = i32::from_be_bytes(c.array()?);
            let rest = c.item.len() - c.at;
            Relayed::Frame {
                kind,
                dts,
                composition,
                keyframe: flags == 1,
                data: c.take(rest)?,
            }
        }
        _ => return Err(refuse("an unknown item")),
    };
    Ok(relayed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tracks {
        let track = |codec, timescale, dims, channels| {
            Some(Arc::new(Track {
                codec,
                timescale,
                extra_data: Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff]),
                sample_entry: Bytes::from(vec![9u8; 300]),
                rfc6381: "avc1.64001f".into(),
                dimensions: dims,
                channels,
            }))
        };
        Tracks {
            video: track(Codec::H264, 90_000, (1920, 1080), 0),
            audio: track(Codec::Aac, 48_000, (0, 0), 2),
        }
    }

    #[test]
    fn tracks_and_frames_round_trip() {
        for t in [
            sample(),
            Tracks::default(),
            Tracks {
                audio: None,
                ..sample()
            },
        ] {
            let item = tracks(&t).unwrap();
            assert_eq!(decode(Bytes::from(item)).unwrap(), Relayed::Tracks(t));
        }
        let f = Frame {
            kind: Kind::Video,
            seq: 42,
            dts: -3_000_000_000,
            composition: -1800,
            keyframe: true,
            data: Bytes::from_static(b"\0\0\0\x02\x65\x88"),
        };
        let item = frame(&f).unwrap();
        assert_eq!(item.len(), FRAME_HEAD + 6, "compact: 15 bytes of header");
        let Relayed::Frame {
            kind,
            dts,
            composition,
            keyframe,
            data,
        } = decode(Bytes::from(item)).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (kind, dts, composition, keyframe),
            (Kind::Video, f.dts, -1800, true)
        );
        assert_eq!(data, f.data);
    }

    #[test]
    fn truncated_trailing_unknown_or_oversized_items_are_refused() {
        let item = tracks(&sample()).unwrap();
        for cut in [0, 1, 2, 10, item.len() - 1] {
            let e = decode(Bytes::copy_from_slice(&item[..cut])).unwrap_err();
            assert!(e.to_string().contains("truncated"), "cut at {cut}: {e}");
        }
        let mut trailing = item.clone();
        trailing.push(0);
        assert!(decode(Bytes::from(trailing)).is_err());
        let f = frame(&Frame {
            kind: Kind::Audio,
            seq: 0,
            dts: 0,
            composition: 0,
            keyframe: false,
            data: Bytes::new(),
        })
        .unwrap();
        assert!(decode(Bytes::copy_from_slice(&f[..FRAME_HEAD - 1])).is_err());
        for (at, bad) in [(0, 9), (1, 7), (2, 4)] {
            let mut b = f.clone();
            b[at] = bad;
            assert!(decode(Bytes::from(b)).is_err(), "byte {at} = {bad}");
        }
        // A configuration that claims more than its bound, and an item over a channel frame.
        let mut huge = vec![TRACKS, 1, 0];
        huge.extend_from_slice(&[0, 1, 0x5f, 0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        huge.extend_from_slice(&(MAX_CONFIG as u32 + 1).to_be_bytes());
        let e = decode(Bytes::from(huge)).unwrap_err();
        assert!(e.to_string().contains("bound"), "{e}");
        let e = decode(Bytes::from(vec![FRAME; channel::MAX_DATA + 1])).unwrap_err();
        assert_eq!(e.kind(), crate::base::Kind::ResourceExhausted);
        let big = Frame {
            kind: Kind::Video,
            seq: 0,
            dts: 0,
            composition: 0,
            keyframe: true,
            data: Bytes::from(vec![0; channel::MAX_DATA]),
        };
        assert!(
            frame(&big).is_err(),
            "a frame too large to relay is refused when encoded"
        );
    }
}
