//! NAL units of a video frame in MP4 form (each unit after its 4-byte big-endian length), and
//! what H.265 picture types say about where decoding may start.
//!
//! - An IRAP picture (types 16–23: BLA, IDR, CRA) is a random access point. retina reports only
//!   IDR pictures as such, so the open GOPs of x265 and of many cameras (a CRA every GOP) would
//!   never show a keyframe after the first; [`h265_random_access`] reads the type instead.
//! - A RASL picture (types 8–9) leads a CRA: it follows it in decode order, precedes it in
//!   display order, and refers to pictures before it. Where decoding starts at that CRA, the
//!   RASL pictures cannot be decoded and a decoder drops them (H.265 §8.1.3: `NoRaslOutputFlag`);
//!   sited drops them itself where it makes such a start ([`h265_skipped_leading`]): a new
//!   reader's GOP cache, a lapped reader's next keyframe (`media::hub`). Recorded segments keep
//!   them: VOD plays on from the segment before, where they decode; a clip or a player that
//!   starts at a segment's CRA has its decoder drop them, as the standard requires.

/// The NAL units of a frame; a truncated last unit is left out.
pub fn units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let (len, body) = rest.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        let (unit, after) = body.split_at_checked(len)?;
        rest = after;
        Some(unit)
    })
}

/// The type of the frame's first picture (VCL) unit, when it has one.
fn h265_picture_type(data: &[u8]) -> Option<u8> {
    units(data)
        .filter_map(|u| u.first().map(|b| (b >> 1) & 0x3f))
        .find(|t| *t < 32)
}

/// Whether an H.265 frame is an IRAP picture (BLA, IDR or CRA), where decoding may start.
pub fn h265_random_access(data: &[u8]) -> bool {
    h265_picture_type(data).is_some_and(|t| (16..=23).contains(&t))
}

/// Whether an H.265 frame is a RASL picture: undecodable where decoding starts at the CRA it
/// follows.
pub fn h265_skipped_leading(data: &[u8]) -> bool {
    matches!(h265_picture_type(data), Some(8 | 9))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of units with these H.265 types, each with a second header byte and a payload.
    fn frame(types: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for t in types {
            out.extend_from_slice(&[0, 0, 0, 3, t << 1, 1, 0xaf]);
        }
        out
    }

    #[test]
    fn irap_pictures_are_random_access_points_and_rasl_pictures_lead_them() {
        // VPS, SPS, PPS, SEI, then the picture: IDR_W_RADL, IDR_N_LP, CRA, BLA_W_LP.
        for t in [19, 20, 21, 16] {
            assert!(h265_random_access(&frame(&[32, 33, 34, 39, t])), "type {t}");
        }
        // TRAIL_N, TRAIL_R, RADL_N, RASL_N, RASL_R are not.
        for t in [0, 1, 6, 8, 9] {
            assert!(!h265_random_access(&frame(&[35, t])), "type {t}");
        }
        assert!(h265_skipped_leading(&frame(&[35, 8])));
        assert!(h265_skipped_leading(&frame(&[9])));
        assert!(
            !h265_skipped_leading(&frame(&[21, 8])),
            "the first picture counts"
        );
        assert!(!h265_skipped_leading(&frame(&[7])), "RADL decodes");
        // Only parameter sets, nothing, or a unit cut short: no picture.
        assert!(!h265_random_access(&frame(&[32, 33, 34])));
        assert!(!h265_random_access(&[]));
        assert!(!h265_random_access(&[0, 0, 0, 9, 21 << 1, 1]));
        assert!(!h265_random_access(&[0xff, 0xff, 0xff, 0xff, 21 << 1]));
    }

    #[test]
    fn units_follow_their_lengths() {
        let data = [0, 0, 0, 1, 7, 0, 0, 0, 2, 8, 9, 0, 0, 0, 5, 1];
        assert_eq!(
            units(&data).collect::<Vec<_>>(),
            vec![&[7][..], &[8, 9][..]]
        );
    }
}
