//! H.264 out of RTP (RFC 6184): single NAL units, STAP-A aggregates and FU-A fragments, gathered
//! into access units in the hub's MP4 form (4-byte length prefixes).
//!
//! The parameter sets (from the SDP's `sprop-parameter-sets`, then in-band) are kept apart: they
//! make the track's avcC, and a new pair starts a new track. An access unit ends at the marker
//! bit or when the timestamp changes. A lost packet drops the access unit it belonged to, and
//! the stream waits for the next keyframe. Sizes are bounded ([`MAX_ACCESS_UNIT`]).

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
    /// Whether it holds an IDR slice.
    pub keyframe: bool,
    /// Its NAL units, each after a 4-byte length.
    pub data: Bytes,
}

/// The depacketizer of one H.264 RTP stream.
#[derive(Debug, Default)]
pub struct Depacketizer {
    sps: Option<Bytes>,
    pps: Option<Bytes>,
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
    /// A depacketizer primed with the SDP's `sprop-parameter-sets`, if any.
    pub fn new(sprop: Option<&str>) -> Depacketizer {
        let mut d = Depacketizer {
            waiting: true,
            ..Depacketizer::default()
        };
        for set in sprop.unwrap_or("").split(',') {
            if let Ok(nal) = base64::engine::general_purpose::STANDARD.decode(set.trim()) {
                d.parameter_set(&nal);
            }
        }
        d
    }

    fn parameter_set(&mut self, nal: &[u8]) {
        let slot = match nal.first().map(|h| h & 0x1f) {
            Some(7) => &mut self.sps,
            Some(8) => &mut self.pps,
            _ => return,
        };
        if slot.as_deref() != Some(nal) {
            *slot = Some(Bytes::copy_from_slice(nal));
            self.changed = true;
        }
    }

    /// The track the current parameter sets describe, once, after they change.
    pub fn track(&mut self) -> Option<Track> {
        if !self.changed {
            return None;
        }
        let (sps, pps) = (self.sps.as_ref()?, self.pps.as_ref()?);
        self.changed = false;
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

    fn add_nal(&mut self, nal: &[u8]) -> Result<(), Error> {
        let Some(&header) = nal.first() else {
            return Ok(());
        };
        match header & 0x1f {
            7 | 8 => self.parameter_set(nal),
            9 => {} // access unit delimiters are left out
            kind => {
                if kind == 5 {
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
        let Some(&header) = payload.first() else {
            return Ok(done);
        };
        match header & 0x1f {
            1..=23 => self.add_nal(payload)?,
            24 => {
                // STAP-A: 16-bit sizes, each followed by a NAL unit.
                let mut rest = &payload[1..];
                while rest.len() >= 2 {
                    let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    let Some(nal) = rest.get(2..2 + n) else {
                        crate::bail!(Invalid, "a STAP-A unit overruns its packet");
                    };
                    self.add_nal(nal)?;
                    rest = &rest[2 + n..];
                }
            }
            28 => {
                let Some(&fu) = payload.get(1) else {
                    crate::bail!(Invalid, "a FU-A packet without its header");
                };
                let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
                if start {
                    let mut nal = BytesMut::with_capacity(payload.len() * 8);
                    nal.put_u8((header & 0xe0) | (fu & 0x1f));
                    self.fragment = Some(nal);
                }
                match self.fragment.as_mut() {
                    Some(nal) => {
                        if nal.len() + payload.len() > MAX_ACCESS_UNIT {
                            crate::bail!(Invalid, "a NAL unit over {MAX_ACCESS_UNIT} bytes");
                        }
                        nal.put_slice(&payload[2..]);
                    }
                    // A fragment whose start was lost.
                    None => self.broken = true,
                }
                if end && let Some(nal) = self.fragment.take() {
                    self.add_nal(&nal)?;
                }
            }
            other => crate::bail!(Invalid, "RTP H.264 packet type {other} is not supported"),
        }
        if marker {
            done.extend(self.finish());
        }
        Ok(done)
    }
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
        let mut d = Depacketizer::new(Some(SPROP));
        let t = d.track().unwrap();
        assert_eq!(t.dimensions, (1280, 720));
        assert_eq!(t.rfc6381, "avc1.64001F");
        assert_eq!(&t.extra_data[..6], &[1, 0x64, 0x00, 0x1f, 0xff, 0xe1]);
        assert!(d.track().is_none(), "told once");
    }

    #[test]
    fn fragments_and_aggregates_make_access_units() {
        let mut d = Depacketizer::new(Some(SPROP));
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
        let mut d = Depacketizer::new(Some(SPROP));
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
        let mut d = Depacketizer::new(None);
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
}
