//! H.264 (RFC 6184) and H.265 (RFC 7798) out of RTP: single NAL units, aggregates (STAP-A, AP)
//! and fragments (FU-A, FU), gathered into access units in the hub's MP4 form (4-byte length
//! prefixes).
//!
//! The parameter sets (from the SDP's `sprop-*`, then in-band) are kept apart: they make the
//! track's avcC or hvcC, and a new set starts a new track. An access unit ends at the marker bit
//! or when the timestamp changes. A lost packet drops the access unit it belonged to, and the
//! stream waits for the next keyframe (an IDR, or for H.265 any IRAP picture: IDR, CRA, BLA).
//! Sizes are bounded ([`MAX_ACCESS_UNIT`]).

use base64::Engine as _;
use bytes::{BufMut as _, Bytes, BytesMut};

use crate::base::Error;
use crate::media::frame::{Codec, Track};
use crate::media::sample_entry;

/// The largest access unit accepted.
pub const MAX_ACCESS_UNIT: usize = 8 * 1024 * 1024;

/// One complete access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// The RTP timestamp (90 kHz).
    pub timestamp: u32,
    /// Whether a decoder can start here.
    pub keyframe: bool,
    /// Its NAL units, each after a 4-byte length.
    pub data: Bytes,
}

/// What a NAL unit is, in the words both codecs share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nal {
    /// A parameter set, kept apart: its slot (VPS 0, SPS 1, PPS 2).
    ParameterSet(usize),
    /// An access unit delimiter: left out.
    Delimiter,
    /// A picture a decoder can start at.
    Key,
    /// Anything else of the access unit.
    Other,
    /// An aggregation packet.
    Aggregate,
    /// A fragment.
    Fragment,
    /// A packet type this depacketizer does not take.
    Unsupported(u8),
}

impl Codec {
    /// The bytes of a NAL unit header.
    fn nal_header_len(self) -> usize {
        if self == Codec::H265 { 2 } else { 1 }
    }

    /// What a NAL unit (or RTP payload) starting with `header` is.
    fn nal(self, header: u8) -> Nal {
        if self == Codec::H265 {
            match (header >> 1) & 0x3f {
                32 => Nal::ParameterSet(0),
                33 => Nal::ParameterSet(1),
                34 => Nal::ParameterSet(2),
                35 => Nal::Delimiter,
                16..=23 => Nal::Key,
                48 => Nal::Aggregate,
                49 => Nal::Fragment,
                t @ 50..=63 => Nal::Unsupported(t),
                _ => Nal::Other,
            }
        } else {
            match header & 0x1f {
                7 => Nal::ParameterSet(1),
                8 => Nal::ParameterSet(2),
                9 => Nal::Delimiter,
                5 => Nal::Key,
                24 => Nal::Aggregate,
                28 => Nal::Fragment,
                t @ (0 | 25..=27 | 29..=31) => Nal::Unsupported(t),
                _ => Nal::Other,
            }
        }
    }
}

/// The depacketizer of one H.264 or H.265 RTP stream.
#[derive(Debug)]
pub struct Depacketizer {
    codec: Codec,
    /// VPS (H.265 only), SPS, PPS.
    sets: [Option<Bytes>; 3],
    /// Parameter sets changed since [`Depacketizer::track`] was last asked.
    changed: bool,
    unit: BytesMut,
    unit_ts: Option<u32>,
    keyframe: bool,
    /// The access unit lost a packet: it is dropped.
    broken: bool,
    fragment: Option<BytesMut>,
    next_seq: Option<u16>,
    /// Waiting for a keyframe (at the start, and after a loss).
    waiting: bool,
}

impl Depacketizer {
    /// A depacketizer for `codec` (H.264 or H.265), primed with the SDP's parameter sets, if
    /// any: `sprop-parameter-sets` for H.264, `sprop-vps`, `sprop-sps` and `sprop-pps` for H.265,
    /// each base64, comma-separated.
    pub fn new(codec: Codec, sprops: &[&str]) -> Depacketizer {
        let mut d = Depacketizer {
            codec,
            sets: [None, None, None],
            changed: false,
            unit: BytesMut::new(),
            unit_ts: None,
            keyframe: false,
            broken: false,
            fragment: None,
            next_seq: None,
            waiting: true,
        };
        for set in sprops.iter().flat_map(|s| s.split(',')) {
            if let Ok(nal) = base64::engine::general_purpose::STANDARD.decode(set.trim()) {
                d.parameter_set(&nal);
            }
        }
        d
    }

    fn parameter_set(&mut self, nal: &[u8]) {
        let Some(Nal::ParameterSet(slot)) = nal.first().map(|&h| self.codec.nal(h)) else {
            return;
        };
        if self.sets[slot].as_deref() != Some(nal) {
            self.sets[slot] = Some(Bytes::copy_from_slice(nal));
            self.changed = true;
        }
    }

    /// The track the current parameter sets describe, once, after they change.
    pub fn track(&mut self) -> Option<Track> {
        if !self.changed {
            return None;
        }
        let [vps, sps, pps] = &self.sets;
        let (sps, pps) = (sps.as_ref()?, pps.as_ref()?);
        let track = if self.codec == Codec::H265 {
            h265_track(vps.as_ref()?, sps, pps)?
        } else {
            h264_track(sps, pps)?
        };
        self.changed = false;
        Some(track)
    }

    fn add_nal(&mut self, nal: &[u8]) -> Result<(), Error> {
        let Some(&header) = nal.first() else {
            return Ok(());
        };
        match self.codec.nal(header) {
            Nal::ParameterSet(_) => self.parameter_set(nal),
            Nal::Delimiter => {}
            kind => {
                if kind == Nal::Key {
                    self.keyframe = true;
                }
                if self.unit.len() + nal.len() + 4 > MAX_ACCESS_UNIT {
                    crate::bail!(Invalid, "an access unit over {MAX_ACCESS_UNIT} bytes");
                }
                self.unit.put_u32(nal.len() as u32);
                self.unit.put_slice(nal);
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Option<AccessUnit> {
        let timestamp = self.unit_ts.take()?;
        let data = std::mem::take(&mut self.unit).freeze();
        let (keyframe, broken) = (self.keyframe, self.broken);
        self.keyframe = false;
        self.broken = false;
        self.fragment = None;
        if broken || data.is_empty() {
            self.waiting = true;
            return None;
        }
        if self.waiting && !keyframe {
            return None;
        }
        self.waiting = false;
        Some(AccessUnit {
            timestamp,
            keyframe,
            data,
        })
    }

    /// Takes one RTP packet's fields; returns the access units it completes (at most two).
    pub fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<Vec<AccessUnit>, Error> {
        let mut done = Vec::new();
        if self.unit_ts.is_some_and(|t| t != timestamp) {
            done.extend(self.finish());
        }
        if self.next_seq.is_some_and(|n| n != seq) {
            self.broken = true;
            self.fragment = None;
        }
        self.next_seq = Some(seq.wrapping_add(1));
        self.unit_ts = Some(timestamp);
        let header_len = self.codec.nal_header_len();
        if payload.len() < header_len {
            return Ok(done);
        }
        match self.codec.nal(payload[0]) {
            Nal::Aggregate => {
                // 16-bit sizes, each followed by a NAL unit.
                let mut rest = &payload[header_len..];
                while rest.len() >= 2 {
                    let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    let Some(nal) = rest.get(2..2 + n) else {
                        crate::bail!(Invalid, "an aggregated NAL unit overruns its packet");
                    };
                    self.add_nal(nal)?;
                    rest = &rest[2 + n..];
                }
            }
            Nal::Fragment => self.fragment(payload)?,
            Nal::Unsupported(t) => {
                crate::bail!(
                    Invalid,
                    "RTP {} packet type {t} is not supported",
                    self.codec.name()
                )
            }
            _ => self.add_nal(payload)?,
        }
        if marker {
            done.extend(self.finish());
        }
        Ok(done)
    }

    /// One FU-A (H.264) or FU (H.265) packet.
    fn fragment(&mut self, payload: &[u8]) -> Result<(), Error> {
        let header_len = self.codec.nal_header_len();
        let Some(&fu) = payload.get(header_len) else {
            crate::bail!(Invalid, "a fragment without its header");
        };
        let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
        if start {
            let mut nal = BytesMut::with_capacity(payload.len() * 8);
            if self.codec == Codec::H265 {
                nal.put_u8((payload[0] & 0x81) | ((fu & 0x3f) << 1));
                nal.put_u8(payload[1]);
            } else {
                nal.put_u8((payload[0] & 0xe0) | (fu & 0x1f));
            }
            self.fragment = Some(nal);
        }
        match self.fragment.as_mut() {
            Some(nal) => {
                if nal.len() + payload.len() > MAX_ACCESS_UNIT {
                    crate::bail!(Invalid, "a NAL unit over {MAX_ACCESS_UNIT} bytes");
                }
                nal.put_slice(&payload[header_len + 1..]);
            }
            // A fragment whose start was lost.
            None => self.broken = true,
        }
        if end && let Some(nal) = self.fragment.take() {
            self.add_nal(&nal)?;
        }
        Ok(())
    }
}

/// The H.264 track of an SPS and a PPS: an avcC with one of each.
fn h264_track(sps: &Bytes, pps: &Bytes) -> Option<Track> {
    let dimensions = crate::media::rtmp::sps::h264_dimensions(sps).ok()?;
    let mut avcc = BytesMut::new();
    avcc.put_slice(&[1, *sps.get(1)?, *sps.get(2)?, *sps.get(3)?, 0xff, 0xe1]);
    avcc.put_u16(u16::try_from(sps.len()).ok()?);
    avcc.put_slice(sps);
    avcc.put_u8(1);
    avcc.put_u16(u16::try_from(pps.len()).ok()?);
    avcc.put_slice(pps);
    Some(Track {
        codec: Codec::H264,
        timescale: 90_000,
        sample_entry: sample_entry::avc1(&avcc, dimensions),
        rfc6381: sample_entry::avc1_codec(&avcc)?,
        extra_data: avcc.freeze(),
        dimensions,
        channels: 0,
    })
}

/// The H.265 track of a VPS, an SPS and a PPS: an hvcC (ISO/IEC 14496-15 §8.3.3.1) with one of
/// each. Its profile, tier and level are the SPS's `profile_tier_level`; chroma format and bit
/// depths say 4:2:0 at 8 bits, which decoders take from the SPS itself.
fn h265_track(vps: &Bytes, sps: &Bytes, pps: &Bytes) -> Option<Track> {
    let dimensions = crate::media::rtmp::sps::h265_dimensions(sps).ok()?;
    // The SPS's RBSP after its NAL header: one byte of ids, then 12 of profile_tier_level.
    let rbsp = crate::media::rtmp::sps::rbsp(sps, 2);
    let ptl = rbsp.get(1..13)?;
    let mut hvcc = BytesMut::new();
    hvcc.put_u8(1);
    hvcc.put_slice(ptl);
    hvcc.put_u16(0xf000); // min_spatial_segmentation_idc 0
    hvcc.put_u8(0xfc); // parallelismType 0
    hvcc.put_u8(0xfd); // chroma_format_idc 1 (4:2:0)
    hvcc.put_u8(0xf8); // bit_depth_luma_minus8 0
    hvcc.put_u8(0xf8); // bit_depth_chroma_minus8 0
    hvcc.put_u16(0); // avgFrameRate
    hvcc.put_u8(0x0f); // one temporal layer, nested, 4-byte NAL lengths
    hvcc.put_u8(3);
    for (kind, nal) in [(32u8, vps), (33, sps), (34, pps)] {
        hvcc.put_u8(0x80 | kind);
        hvcc.put_u16(1);
        hvcc.put_u16(u16::try_from(nal.len()).ok()?);
        hvcc.put_slice(nal);
    }
    Some(Track {
        codec: Codec::H265,
        timescale: 90_000,
        sample_entry: sample_entry::hvc1(&hvcc, dimensions),
        rfc6381: sample_entry::hvc1_codec(&hvcc)?,
        extra_data: hvcc.freeze(),
        dimensions,
        channels: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPROP: &str = "Z2QAH6zZQFAFuwEQAAADABAAAAMDIPGDGWA=,aOvjyyLA";

    fn idr(len: usize) -> Vec<u8> {
        let mut v = vec![0x65];
        v.extend((0..len).map(|i| i as u8));
        v
    }

    fn fu_a(nal: &[u8], size: usize) -> Vec<Vec<u8>> {
        let chunks: Vec<&[u8]> = nal[1..].chunks(size).collect();
        chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut p = vec![(nal[0] & 0xe0) | 28, nal[0] & 0x1f];
                if i == 0 {
                    p[1] |= 0x80;
                }
                if i == chunks.len() - 1 {
                    p[1] |= 0x40;
                }
                p.extend_from_slice(c);
                p
            })
            .collect()
    }

    #[test]
    fn a_track_comes_from_the_sdp_parameter_sets() {
        let mut d = Depacketizer::new(Codec::H264, &[SPROP]);
        let t = d.track().unwrap();
        assert_eq!(t.dimensions, (1280, 720));
        assert_eq!(t.rfc6381, "avc1.64001F");
        assert_eq!(&t.extra_data[..6], &[1, 0x64, 0x00, 0x1f, 0xff, 0xe1]);
        assert!(d.track().is_none(), "told once");
    }

    #[test]
    fn fragments_and_aggregates_make_access_units() {
        let mut d = Depacketizer::new(Codec::H264, &[SPROP]);
        let nal = idr(5000);
        let packets = fu_a(&nal, 1400);
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            out.extend(d.push(i as u16, 3000, i == packets.len() - 1, p).unwrap());
        }
        assert_eq!(out.len(), 1);
        assert!(out[0].keyframe);
        assert_eq!(&out[0].data[..4], &(nal.len() as u32).to_be_bytes());
        assert_eq!(&out[0].data[4..], &nal[..]);
        // A STAP-A with an in-band SPS and a P slice: the SPS is kept apart.
        let sps = base64::engine::general_purpose::STANDARD
            .decode(SPROP.split(',').next().unwrap())
            .unwrap();
        let slice = [0x41, 1, 2, 3];
        let mut stap = vec![24];
        for n in [&sps[..], &slice[..]] {
            stap.extend_from_slice(&(n.len() as u16).to_be_bytes());
            stap.extend_from_slice(n);
        }
        let seq = packets.len() as u16;
        let au = d.push(seq, 6000, true, &stap).unwrap();
        assert_eq!(au.len(), 1);
        assert!(!au[0].keyframe);
        assert_eq!(&au[0].data[4..], &slice);
        // A timestamp change ends the unit without a marker.
        assert!(d.push(seq + 1, 9000, false, &slice).unwrap().is_empty());
        assert_eq!(d.push(seq + 2, 12_000, false, &slice).unwrap().len(), 1);
    }

    #[test]
    fn a_loss_drops_the_unit_and_waits_for_a_keyframe() {
        let mut d = Depacketizer::new(Codec::H264, &[SPROP]);
        let packets = fu_a(&idr(5000), 1400);
        // Packet 1 of 4 is lost.
        for (i, p) in packets.iter().enumerate().filter(|(i, _)| *i != 1) {
            assert!(
                d.push(i as u16, 3000, i == packets.len() - 1, p)
                    .unwrap()
                    .is_empty()
            );
        }
        let p_slice = [0x41, 9];
        assert!(
            d.push(10, 6000, true, &p_slice).unwrap().is_empty(),
            "no P frame before a keyframe"
        );
        let au = d.push(11, 9000, true, &idr(10)).unwrap();
        assert!(au[0].keyframe);
    }

    #[test]
    fn hostile_packets_are_refused() {
        let mut d = Depacketizer::new(Codec::H264, &[]);
        assert!(d.push(0, 0, false, &[24, 0xff, 0xff, 1]).is_err());
        assert!(d.push(1, 0, false, &[28]).is_err());
        assert!(d.push(2, 0, false, &[29, 0]).is_err());
        let mut big = d.push(3, 0, false, &[28, 0x85]).map(|_| ());
        let chunk = vec![0u8; 60_000];
        for seq in 4..400 {
            big = big.and_then(|_| {
                d.push(seq, 0, false, &[&[28u8, 0x05][..], &chunk].concat())
                    .map(|_| ())
            });
        }
        assert!(big.is_err(), "a NAL unit cannot grow without bound");
        assert!(d.track().is_none(), "no parameter sets, no track");
    }

    /// An H.265 stream: a track from `sprop-vps/sps/pps`, FU fragments of a CRA picture (a
    /// keyframe: IRAP, not only IDR) and an AP of a VPS with a trailing picture.
    #[test]
    fn h265_comes_from_fragments_and_aggregates() {
        use crate::media::sample_entry::tests::hvcc_1366x766;
        let fixture = hvcc_1366x766();
        let sets = crate::media::sample_entry::hvcc_parameter_sets(&fixture).unwrap();
        let b64 = |n: &Bytes| base64::engine::general_purpose::STANDARD.encode(n);
        let sprops = [b64(&sets.vps[0]), b64(&sets.sps[0]), b64(&sets.pps[0])];
        let sprops: Vec<&str> = sprops.iter().map(String::as_str).collect();
        let mut d = Depacketizer::new(Codec::H265, &sprops);
        let t = d.track().unwrap();
        assert_eq!(t.dimensions, (1366, 766));
        assert_eq!(
            Some(t.rfc6381.clone()),
            crate::media::sample_entry::hvc1_codec(&fixture)
        );
        let own = crate::media::sample_entry::hvcc_parameter_sets(&t.extra_data).unwrap();
        assert_eq!(
            (own.length_size, own.sps[0].clone()),
            (4, sets.sps[0].clone())
        );

        // A CRA (type 21) in three FUs.
        let mut cra = vec![21 << 1, 1];
        cra.extend((0..3000).map(|i| i as u8));
        let chunks: Vec<&[u8]> = cra[2..].chunks(1200).collect();
        let mut out = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let mut fu = (21u8) & 0x3f;
            if i == 0 {
                fu |= 0x80;
            }
            if i == chunks.len() - 1 {
                fu |= 0x40;
            }
            let mut p = vec![49 << 1, 1, fu];
            p.extend_from_slice(c);
            out.extend(d.push(i as u16, 3000, i == chunks.len() - 1, &p).unwrap());
        }
        assert_eq!(out.len(), 1);
        assert!(out[0].keyframe, "a CRA is a keyframe");
        assert_eq!(&out[0].data[4..], &cra[..]);
        // An AP holding the VPS again and a trailing picture (type 1): the VPS is kept apart.
        let trail = [1 << 1, 1, 7, 7];
        let mut ap = vec![48 << 1, 1];
        for n in [&sets.vps[0][..], &trail[..]] {
            ap.extend_from_slice(&(n.len() as u16).to_be_bytes());
            ap.extend_from_slice(n);
        }
        let au = d.push(3, 6000, true, &ap).unwrap();
        assert_eq!(au.len(), 1);
        assert!(!au[0].keyframe);
        assert_eq!(&au[0].data[4..], &trail);
        assert!(d.track().is_none(), "the same VPS is no new track");
        // Packet types 50-63 are refused.
        assert!(d.push(4, 9000, true, &[50 << 1, 1, 0]).is_err());
    }
}
