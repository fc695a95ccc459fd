//! What flows through the hub: the description of a stream's tracks, and its frames.
//!
//! Frames are in "MP4 form": H.264 and H.265 access units as 4-byte length-prefixed NAL units,
//! with the parameter sets in the track's `extra_data` (avcC / hvcC); AAC as raw frames with the
//! AudioSpecificConfig in `extra_data`. That form serves fMP4, FLV and recordings without
//! conversion. Frame data is shared [`Bytes`]: never copied per reader.

use std::sync::Arc;

use bytes::Bytes;

/// A codec sited carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    H265,
    /// AAC audio.
    Aac,
}

impl Codec {
    /// The name shown in the API.
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
            Codec::Aac => "aac",
        }
    }
}

/// One track of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// Its codec.
    pub codec: Codec,
    /// Ticks per second of its timestamps (90000 for video, the sample rate for audio).
    pub timescale: u32,
    /// The codec configuration: avcC / hvcC contents, or the AudioSpecificConfig.
    pub extra_data: Bytes,
    /// The ISO BMFF sample entry (`avc1`, `hvc1`, `mp4a` box), for fMP4.
    pub sample_entry: Bytes,
    /// The RFC 6381 codec string, for MSE and HLS (`avc1.64001f`).
    pub rfc6381: String,
    /// Width and height in pixels (video).
    pub dimensions: (u32, u32),
    /// Channels (audio).
    pub channels: u16,
}

#[cfg(test)]
impl Track {
    /// A track of `codec` that says nothing more (video at 90 kHz, no records): for tests that
    /// only need its codec.
    pub(crate) fn bare(codec: Codec) -> Track {
        Track {
            codec,
            timescale: 90_000,
            extra_data: Bytes::new(),
            sample_entry: Bytes::new(),
            rfc6381: String::new(),
            dimensions: (0, 0),
            channels: 0,
        }
    }
}

/// The tracks of a stream. A new value starts a new epoch: readers re-initialize.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tracks {
    /// The video track.
    pub video: Option<Arc<Track>>,
    /// The audio track.
    pub audio: Option<Arc<Track>>,
}

/// Which track a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The video track.
    Video,
    /// The audio track.
    Audio,
}

impl Frame {
    /// Presentation time, in the track's timescale.
    pub fn pts(&self) -> i64 {
        self.dts + i64::from(self.composition)
    }
}

/// One frame (access unit) of one track.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Its track.
    pub kind: Kind,
    /// A number increasing by one per frame of the stream, across tracks.
    pub seq: u64,
    /// Decode time, in the track's timescale, from the stream's start. Frames come in decode
    /// order, so it never goes back within an epoch.
    pub dts: i64,
    /// Presentation time minus decode time, in the track's timescale: positive for the frames
    /// that B-frames make the decoder hold back; 0 when decode order is display order (audio,
    /// streams without B-frames, and RTSP cameras, whose RTP clock carries presentation time).
    pub composition: i32,
    /// Whether a decoder can start here (video keyframes; every audio frame).
    pub keyframe: bool,
    /// The payload, in MP4 form.
    pub data: Bytes,
}
