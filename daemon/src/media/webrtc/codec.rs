//! What a camera's video becomes on WebRTC, decided without I/O.
//!
//! H.264 and H.265 pass through: an access unit in the hub's MP4 form (4-byte NAL lengths) is
//! rewritten to Annex B (start codes, the form str0m packetizes), with the parameter sets of the
//! track put before every keyframe so that a viewer can start at any of them. A stream whose
//! decode order is not its presentation order (B-frames) cannot be sent: WebRTC has no
//! composition time, so [`refusal`] says why and the player falls back to MSE.

use bytes::Bytes;
use str0m::format::CodecConfig;
use str0m::media::Pt;

use crate::media::frame::{Codec, Track, Tracks};
use crate::media::sample_entry::ParameterSets;

/// The payload type sited proposes for the camera's codec; the browser's own numbers win in
/// the answer, since a WHEP viewer only receives.
const PT_VIDEO: u8 = 96;
/// The payload type of retransmissions (RTX) of [`PT_VIDEO`].
const PT_RTX: u8 = 97;

/// Why a stream cannot be watched over WebRTC, if it cannot; the player shows it and plays MSE.
pub fn refusal(tracks: Option<&Tracks>, bframes: bool) -> Option<String> {
    let Some(video) = tracks.and_then(|t| t.video.as_ref()) else {
        return Some("the camera sends no video yet".into());
    };
    if bframes {
        return Some(
            "the stream has B-frames (decode order differs from display order), which WebRTC cannot carry"
                .into(),
        );
    }
    match video.codec {
        Codec::H264 | Codec::H265 => None,
        other => Some(format!("{} video cannot go over WebRTC", other.name())),
    }
}

/// The codecs to offer a browser for this video track: exactly the camera's, with its profile,
/// packetization mode 1 (str0m fragments with FU-A). str0m matches it against the browser's
/// offer by profile, and answers with the browser's payload type and parameters.
pub fn codec_config(video: &Track) -> Option<CodecConfig> {
    let mut config = CodecConfig::empty();
    match video.codec {
        Codec::H264 => {
            let p = video.extra_data.get(1..4)?;
            let profile_level_id = u32::from_be_bytes([0, p[0], p[1], p[2]]);
            config.add_h264(PT_VIDEO.into(), Some(PT_RTX.into()), true, profile_level_id);
        }
        Codec::H265 => {
            // hvcC: general_profile_space(2) tier(1) profile_idc(5), then the level at byte 12.
            let h = &video.extra_data;
            let (profile, tier, level) = (*h.get(1)? & 0x1f, (*h.get(1)? >> 5) & 1, *h.get(12)?);
            config.add_h265(PT_VIDEO.into(), Some(PT_RTX.into()), profile, tier, level);
        }
        Codec::Aac => return None,
    }
    Some(config)
}

/// Whether a negotiated payload type carries this codec.
pub fn carries(codec: Codec, negotiated: str0m::format::Codec) -> bool {
    matches!(
        (codec, negotiated),
        (Codec::H264, str0m::format::Codec::H264) | (Codec::H265, str0m::format::Codec::H265)
    )
}

/// Rewrites access units of one video track to Annex B.
pub struct AnnexB {
    /// The parameter sets, each behind a start code, sent before every keyframe.
    parameter_sets: Vec<u8>,
}

const START: [u8; 4] = [0, 0, 0, 1];

impl AnnexB {
    /// For a track; `None` if its decoder configuration cannot be read.
    pub fn new(video: &Track) -> Option<AnnexB> {
        let sets = ParameterSets::of_track(video).ok()?;
        let mut parameter_sets = Vec::new();
        for unit in sets.in_order() {
            parameter_sets.extend_from_slice(&START);
            parameter_sets.extend_from_slice(unit);
        }
        Some(AnnexB { parameter_sets })
    }

    /// One access unit (4-byte NAL lengths) in Annex B; `None` if its lengths overrun it.
    pub fn access_unit(&self, data: &Bytes, keyframe: bool) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(data.len() + self.parameter_sets.len());
        if keyframe {
            out.extend_from_slice(&self.parameter_sets);
        }
        let mut rest = &data[..];
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let unit = rest.get(4..4 + len)?;
            out.extend_from_slice(&START);
            out.extend_from_slice(unit);
            rest = &rest[4 + len..];
        }
        Some(out)
    }
}

/// The payload type a str0m writer uses for the camera's codec among those negotiated.
pub fn negotiated_pt<'a>(
    codec: Codec,
    params: impl Iterator<Item = &'a str0m::format::PayloadParams>,
) -> Option<Pt> {
    params
        .filter(|p| carries(codec, p.spec().codec))
        .map(|p| p.pt())
        .next()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::media::sample_entry::tests::avcc_640x360;

    fn h264() -> Track {
        Track {
            codec: Codec::H264,
            timescale: 90_000,
            extra_data: avcc_640x360(),
            sample_entry: Bytes::new(),
            rfc6381: "avc1.64001E".into(),
            dimensions: (640, 360),
            channels: 0,
        }
    }

    #[test]
    fn a_keyframe_gets_the_parameter_sets_and_start_codes() {
        let annexb = AnnexB::new(&h264()).unwrap();
        let au = Bytes::from_static(&[0, 0, 0, 2, 0x65, 0xaa, 0, 0, 0, 1, 0x06]);
        let out = annexb.access_unit(&au, true).unwrap();
        assert_eq!(&out[..5], &[0, 0, 0, 1, 0x67], "the SPS comes first");
        assert!(out.ends_with(&[0, 0, 0, 1, 0x65, 0xaa, 0, 0, 0, 1, 0x06]));
        let p = annexb.access_unit(&au, false).unwrap();
        assert_eq!(p, [0, 0, 0, 1, 0x65, 0xaa, 0, 0, 0, 1, 0x06]);
        let overrun = Bytes::from_static(&[0, 0, 0, 9, 0x41]);
        assert!(annexb.access_unit(&overrun, false).is_none());
    }

    #[test]
    fn the_offer_carries_the_cameras_profile() {
        let config = codec_config(&h264()).unwrap();
        let p = &config.params()[0];
        assert_eq!(p.spec().format.profile_level_id, Some(0x64001e));
        assert_eq!(p.spec().format.packetization_mode, Some(1));
    }

    #[test]
    fn b_frames_and_missing_video_are_refused_with_a_reason() {
        let tracks = Tracks {
            video: Some(Arc::new(h264())),
            audio: None,
        };
        assert_eq!(refusal(Some(&tracks), false), None);
        assert!(refusal(Some(&tracks), true).unwrap().contains("B-frames"));
        assert!(refusal(None, false).unwrap().contains("no video"));
    }
}
