//! Fragmented MP4 (ISO BMFF) for live video: an init segment, then one fragment per frame.
//!
//! Browsers play it through Media Source Extensions, and HLS serves it as segments. The sample
//! entries (`avc1`, `hvc1`, `mp4a`) come from retina; the boxes around them are written here.
//! A video frame's duration is only known when the next one arrives, so [`Muxer`] holds one
//! video frame back (one frame of latency); audio frames carry their own duration.

use std::sync::Arc;

use bytes::{BufMut as _, Bytes, BytesMut};

use super::frame::{Frame, Kind, Tracks};

/// The track id of video in the init segment.
pub const VIDEO_ID: u32 = 1;
/// The track id of audio in the init segment.
pub const AUDIO_ID: u32 = 2;
/// Samples per AAC frame.
pub const AAC_FRAME: u32 = 1024;

/// Writes an ISO BMFF box: its size (filled in after the body), its type, its body.
pub(crate) fn boxed(out: &mut BytesMut, kind: &[u8; 4], body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

fn full(
    out: &mut BytesMut,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut BytesMut),
) {
    boxed(out, kind, |o| {
        o.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(o);
    });
}

fn matrix(o: &mut BytesMut) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        o.put_u32(v);
    }
}

/// The init segment (`ftyp` + `moov`) for a stream's tracks.
pub fn init(tracks: &Tracks) -> Bytes {
    let mut out = BytesMut::with_capacity(1024);
    boxed(&mut out, b"ftyp", |o| {
        o.put_slice(b"iso5");
        o.put_u32(512);
        for brand in [b"iso5", b"iso6", b"mp41"] {
            o.put_slice(brand);
        }
    });
    let list: Vec<(u32, &Arc<super::frame::Track>)> = [
        (VIDEO_ID, tracks.video.as_ref()),
        (AUDIO_ID, tracks.audio.as_ref()),
    ]
    .into_iter()
    .filter_map(|(id, t)| t.map(|t| (id, t)))
    .collect();
    boxed(&mut out, b"moov", |o| {
        full(o, b"mvhd", 0, 0, |o| {
            o.put_u32(0);
            o.put_u32(0);
            o.put_u32(1000);
            o.put_u32(0);
            o.put_u32(0x0001_0000);
            o.put_u16(0x0100);
            o.put_bytes(0, 10);
            matrix(o);
            o.put_bytes(0, 24);
            o.put_u32(AUDIO_ID + 1);
        });
        for (id, t) in &list {
            let video = *id == VIDEO_ID;
            boxed(o, b"trak", |o| {
                full(o, b"tkhd", 0, 3, |o| {
                    o.put_u32(0);
                    o.put_u32(0);
                    o.put_u32(*id);
                    o.put_u32(0);
                    o.put_u32(0);
                    o.put_bytes(0, 8);
                    o.put_u16(0);
                    o.put_u16(0);
                    o.put_u16(if video { 0 } else { 0x0100 });
                    o.put_u16(0);
                    matrix(o);
                    o.put_u32(t.dimensions.0 << 16);
                    o.put_u32(t.dimensions.1 << 16);
                });
                boxed(o, b"mdia", |o| {
                    full(o, b"mdhd", 0, 0, |o| {
                        o.put_u32(0);
                        o.put_u32(0);
                        o.put_u32(t.timescale);
                        o.put_u32(0);
                        o.put_u16(0x55c4);
                        o.put_u16(0);
                    });
                    full(o, b"hdlr", 0, 0, |o| {
                        o.put_u32(0);
                        o.put_slice(if video { b"vide" } else { b"soun" });
                        o.put_bytes(0, 12);
                        o.put_slice(b"sited\0");
                    });
                    boxed(o, b"minf", |o| {
                        if video {
                            full(o, b"vmhd", 0, 1, |o| o.put_bytes(0, 8));
                        } else {
                            full(o, b"smhd", 0, 0, |o| o.put_u32(0));
                        }
                        boxed(o, b"dinf", |o| {
                            full(o, b"dref", 0, 0, |o| {
                                o.put_u32(1);
                                full(o, b"url ", 0, 1, |_| {});
                            });
                        });
                        boxed(o, b"stbl", |o| {
                            full(o, b"stsd", 0, 0, |o| {
                                o.put_u32(1);
                                o.put_slice(&t.sample_entry);
                            });
                            full(o, b"stts", 0, 0, |o| o.put_u32(0));
                            full(o, b"stsc", 0, 0, |o| o.put_u32(0));
                            full(o, b"stsz", 0, 0, |o| {
                                o.put_u32(0);
                                o.put_u32(0);
                            });
                            full(o, b"stco", 0, 0, |o| o.put_u32(0));
                        });
                    });
                });
            });
        }
        boxed(o, b"mvex", |o| {
            for (id, _) in &list {
                full(o, b"trex", 0, 0, |o| {
                    o.put_u32(*id);
                    o.put_u32(1);
                    o.put_u32(0);
                    o.put_u32(0);
                    o.put_u32(0);
                });
            }
        });
    });
    out.freeze()
}

/// One sample of a fragment.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Its duration, in the track's timescale.
    pub duration: u32,
    /// Whether it is a sync sample.
    pub keyframe: bool,
    /// Presentation time minus decode time (B-frames), in the track's timescale.
    pub composition: i32,
    /// Its data.
    pub data: Bytes,
}

/// One fragment (`moof` + `mdat`) of one track.
pub fn fragment(sequence: u32, track: u32, decode_time: u64, samples: &[Sample]) -> Bytes {
    let head = fragment_head(sequence, track, decode_time, samples);
    let payload: usize = samples.iter().map(|s| s.data.len()).sum();
    let mut out = BytesMut::with_capacity(head.len() + payload);
    out.put_slice(&head);
    for s in samples {
        out.put_slice(&s.data);
    }
    out.freeze()
}

/// A fragment without its samples' data: the `moof` and the `mdat` header. The data follows
/// it, sample after sample.
pub fn fragment_head(sequence: u32, track: u32, decode_time: u64, samples: &[Sample]) -> Bytes {
    let payload: usize = samples.iter().map(|s| s.data.len()).sum();
    let mut out = BytesMut::with_capacity(128 + 16 * samples.len());
    let mut offset_at = 0;
    boxed(&mut out, b"moof", |o| {
        full(o, b"mfhd", 0, 0, |o| o.put_u32(sequence));
        boxed(o, b"traf", |o| {
            full(o, b"tfhd", 0, 0x02_0000, |o| o.put_u32(track));
            full(o, b"tfdt", 1, 0, |o| o.put_u64(decode_time));
            // Version 1 (signed composition offsets) only when a sample has one.
            let reordered = samples.iter().any(|s| s.composition != 0);
            let (version, offsets) = if reordered { (1, 0x0800) } else { (0, 0) };
            full(
                o,
                b"trun",
                version,
                0x0001 | 0x0100 | 0x0200 | 0x0400 | offsets,
                |o| {
                    o.put_u32(samples.len() as u32);
                    offset_at = o.len();
                    o.put_u32(0);
                    for s in samples {
                        o.put_u32(s.duration);
                        o.put_u32(s.data.len() as u32);
                        o.put_u32(if s.keyframe { 0x0200_0000 } else { 0x0101_0000 });
                        if reordered {
                            o.put_i32(s.composition);
                        }
                    }
                },
            );
        });
    });
    let data_offset = (out.len() + 8) as u32;
    out[offset_at..offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    out.put_u32((8 + payload) as u32);
    out.put_slice(b"mdat");
    out.freeze()
}

/// A fragment of one frame in two parts: [`fragment_head`] and the frame's data (shared, not
/// copied), for a writer that sends both with one `writev`.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// The `moof` and the `mdat` header.
    pub head: Bytes,
    /// The frame's data: the `mdat` body.
    pub data: Bytes,
}

/// Turns a stream's frames into fragments, one per frame, with exact durations.
pub struct Muxer {
    tracks: Arc<Tracks>,
    sequence: u32,
    held: Option<Arc<Frame>>,
    video_origin: Option<i64>,
    audio_origin: Option<i64>,
    audio_time: u64,
}

impl Muxer {
    /// A muxer for these tracks; send [`init`] first.
    pub fn new(tracks: Arc<Tracks>) -> Muxer {
        Muxer {
            tracks,
            sequence: 0,
            held: None,
            video_origin: None,
            audio_origin: None,
            audio_time: 0,
        }
    }

    /// The tracks.
    pub fn tracks(&self) -> &Arc<Tracks> {
        &self.tracks
    }

    /// Takes a frame; returns the fragments that are complete now.
    pub fn push(&mut self, frame: Arc<Frame>) -> Vec<Bytes> {
        self.push_parts(frame)
            .into_iter()
            .map(|f| {
                let mut out = BytesMut::with_capacity(f.head.len() + f.data.len());
                out.put_slice(&f.head);
                out.put_slice(&f.data);
                out.freeze()
            })
            .collect()
    }

    /// [`Muxer::push`], each fragment in two parts.
    pub fn push_parts(&mut self, frame: Arc<Frame>) -> Vec<Fragment> {
        let mut out = Vec::new();
        let one = |sequence, track, decode, sample: Sample| Fragment {
            head: fragment_head(sequence, track, decode, std::slice::from_ref(&sample)),
            data: sample.data,
        };
        match frame.kind {
            Kind::Video if self.tracks.video.is_some() => {
                let origin = *self.video_origin.get_or_insert(frame.dts);
                if let Some(prev) = self.held.take() {
                    // Never a zero or negative duration, whatever the camera's clock does.
                    let duration = (frame.dts - prev.dts).clamp(1, 90_000 * 10) as u32;
                    self.sequence += 1;
                    let decode = (prev.dts - origin).max(0) as u64;
                    let sample = Sample {
                        duration,
                        keyframe: prev.keyframe,
                        composition: prev.composition,
                        data: prev.data.clone(),
                    };
                    out.push(one(self.sequence, VIDEO_ID, decode, sample));
                }
                self.held = Some(frame);
            }
            Kind::Audio if self.tracks.audio.is_some() => {
                let origin = *self.audio_origin.get_or_insert(frame.dts);
                let decode = ((frame.dts - origin).max(0) as u64).max(self.audio_time);
                self.audio_time = decode + u64::from(AAC_FRAME);
                self.sequence += 1;
                let sample = Sample {
                    duration: AAC_FRAME,
                    keyframe: true,
                    composition: 0,
                    data: frame.data.clone(),
                };
                out.push(one(self.sequence, AUDIO_ID, decode, sample));
            }
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::frame::{Codec, Track};

    fn boxes(mut data: &[u8]) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        while data.len() >= 8 {
            let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
            out.push((String::from_utf8_lossy(&data[4..8]).into_owned(), size));
            data = &data[size..];
        }
        out
    }

    fn tracks() -> Arc<Tracks> {
        let video = Track {
            codec: Codec::H264,
            timescale: 90_000,
            extra_data: Bytes::new(),
            sample_entry: Bytes::from_static(b"\0\0\0\x08avc1"),
            rfc6381: "avc1.42c01e".into(),
            dimensions: (640, 360),
            channels: 0,
        };
        Arc::new(Tracks {
            video: Some(Arc::new(video)),
            audio: None,
        })
    }

    #[test]
    fn the_init_segment_is_ftyp_then_moov() {
        let init = init(&tracks());
        let top = boxes(&init);
        assert_eq!(
            top.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["ftyp", "moov"]
        );
        assert_eq!(top.iter().map(|(_, s)| s).sum::<usize>(), init.len());
    }

    #[test]
    fn a_video_frame_is_emitted_when_the_next_one_gives_its_duration() {
        let mut m = Muxer::new(tracks());
        let frame = |seq, pts, keyframe| {
            Arc::new(Frame {
                kind: Kind::Video,
                seq,
                dts: pts,
                composition: 0,
                keyframe,
                data: Bytes::from_static(b"abcd"),
            })
        };
        assert!(m.push(frame(1, 1000, true)).is_empty());
        let out = m.push(frame(2, 4600, false));
        assert_eq!(out.len(), 1);
        let top = boxes(&out[0]);
        assert_eq!(
            top.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["moof", "mdat"]
        );
        // The trun's data offset points just past the mdat header, at the sample.
        let moof = top[0].1;
        let trun = out[0].windows(4).position(|w| w == b"trun").unwrap();
        let offset = u32::from_be_bytes(out[0][trun + 12..trun + 16].try_into().unwrap()) as usize;
        assert_eq!(offset, moof + 8);
        assert_eq!(&out[0][offset..offset + 4], b"abcd");
        let duration = u32::from_be_bytes(out[0][trun + 16..trun + 20].try_into().unwrap());
        assert_eq!(duration, 3600);
    }
}
