//! AAC out of RTP (RFC 3640, `mpeg4-generic`, the AAC-hbr mode that ffmpeg and cameras send):
//! each packet holds AU headers (13-bit size, 3-bit index) and then the access units, 1024
//! samples each. The AudioSpecificConfig comes from the SDP's `config`.

use bytes::Bytes;

use crate::base::Error;
use crate::media::frame::Track;

/// The samples of one AAC access unit.
pub const SAMPLES_PER_UNIT: u32 = 1024;
/// The most access units one packet may carry.
pub const MAX_UNITS: usize = 64;

/// One AAC access unit and its RTP time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioUnit {
    /// Its RTP timestamp, in samples.
    pub timestamp: u32,
    /// The raw AAC frame.
    pub data: Bytes,
}

/// The audio track an SDP `m=audio` section of `mpeg4-generic` describes, from its fmtp.
pub fn track(config: Option<&str>, size_length: Option<&str>) -> Result<Track, Error> {
    if size_length.is_some_and(|s| s.trim() != "13") {
        crate::bail!(Invalid, "only AAC-hbr (sizelength=13) is taken");
    }
    let config = config.ok_or_else(|| crate::err!(Invalid, "the AAC stream has no config"))?;
    let asc = crate::base::hex::decode(config.trim())
        .ok_or_else(|| crate::err!(Invalid, "the AAC config is not hex"))?;
    crate::media::sample_entry::aac_track(&Bytes::from(asc))
}

/// The access units of one RTP payload.
pub fn units(timestamp: u32, payload: &[u8]) -> Result<Vec<AudioUnit>, Error> {
    let Some(head) = payload.get(..2) else {
        crate::bail!(Invalid, "an AAC packet without AU headers");
    };
    let header_bits = usize::from(u16::from_be_bytes([head[0], head[1]]));
    if header_bits % 16 != 0 {
        crate::bail!(
            Invalid,
            "AAC AU headers of {header_bits} bits (16 each expected)"
        );
    }
    let count = header_bits / 16;
    if count > MAX_UNITS {
        crate::bail!(Invalid, "{count} AAC units in one packet");
    }
    let headers = payload
        .get(2..2 + count * 2)
        .ok_or_else(|| crate::err!(Invalid, "the AAC AU headers overrun the packet"))?;
    let mut data = &payload[2 + count * 2..];
    let mut out = Vec::with_capacity(count);
    for (i, h) in headers.chunks_exact(2).enumerate() {
        let size = usize::from(u16::from_be_bytes([h[0], h[1]]) >> 3);
        if size > data.len() {
            crate::bail!(Invalid, "an AAC unit of {size} bytes overruns the packet");
        }
        let (unit, rest) = data.split_at(size);
        data = rest;
        out.push(AudioUnit {
            timestamp: timestamp.wrapping_add(SAMPLES_PER_UNIT * i as u32),
            data: Bytes::copy_from_slice(unit),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_cut_by_their_headers() {
        // Two units, of 3 and 2 bytes.
        let payload = [0, 32, 0, 3 << 3, 0, 2 << 3, 1, 2, 3, 4, 5];
        let u = units(1000, &payload).unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(&u[0].data[..], &[1, 2, 3]);
        assert_eq!(u[1].timestamp, 1000 + SAMPLES_PER_UNIT);
        assert_eq!(&u[1].data[..], &[4, 5]);
    }

    #[test]
    fn hostile_packets_are_refused() {
        assert!(units(0, &[0]).is_err());
        assert!(units(0, &[0, 15]).is_err(), "not whole headers");
        assert!(units(0, &[0, 32, 0, 8]).is_err(), "headers overrun");
        assert!(
            units(0, &[0, 16, 0xff, 0xf8, 1]).is_err(),
            "a unit overruns"
        );
        assert!(units(0, &[0x10, 0x00]).is_err(), "too many units");
    }

    #[test]
    fn the_track_comes_from_the_config() {
        let t = track(Some("1190"), Some("13")).unwrap();
        assert_eq!((t.timescale, t.channels), (48_000, 2));
        assert!(track(Some("zz"), None).is_err());
        assert!(track(None, None).is_err());
        assert!(track(Some("1190"), Some("6")).is_err());
    }
}
