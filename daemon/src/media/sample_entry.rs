//! ISO BMFF sample entries and RFC 6381 codec strings built from decoder configuration records.
//!
//! retina gives these for cameras; a source that brings its own records (an RTMP publisher's
//! sequence headers) builds them here: `avc1` + `avcC` from an AVCDecoderConfigurationRecord,
//! `hvc1` + `hvcC` from an HEVCDecoderConfigurationRecord, `mp4a` + `esds` from an AAC
//! AudioSpecificConfig. The records are checked before use: a malformed one is an error, never a
//! panic, and never reaches a viewer.

use bytes::{BufMut as _, Bytes, BytesMut};

use super::fmp4::boxed;
use super::frame::{Codec, Track};
use crate::base::Error;

/// A VisualSampleEntry (ISO/IEC 14496-12 §12.1.3) of type `kind` holding the record in a box of
/// type `record_kind`.
fn visual(kind: &[u8; 4], record_kind: &[u8; 4], record: &[u8], (w, h): (u32, u32)) -> Bytes {
    let mut out = BytesMut::with_capacity(86 + 8 + record.len());
    boxed(&mut out, kind, |o| {
        o.put_slice(&[0; 6]); // SampleEntry.reserved
        o.put_u16(1); // data_reference_index
        o.put_slice(&[0; 16]); // pre_defined, reserved, pre_defined[3]
        o.put_u16(w.min(0xffff) as u16);
        o.put_u16(h.min(0xffff) as u16);
        o.put_u32(0x0048_0000); // horizresolution: 72 dpi
        o.put_u32(0x0048_0000); // vertresolution
        o.put_u32(0); // reserved
        o.put_u16(1); // frame_count
        o.put_slice(&[0; 32]); // compressorname
        o.put_u16(0x0018); // depth
        o.put_i16(-1); // pre_defined
        boxed(o, record_kind, |o| o.put_slice(record));
    });
    out.freeze()
}

/// The parameter sets of a decoder configuration record, by NAL unit type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParameterSets {
    /// Sequence parameter sets (the first is the one that gives the picture size).
    pub sps: Vec<Bytes>,
    /// Picture parameter sets.
    pub pps: Vec<Bytes>,
    /// Video parameter sets (H.265 only).
    pub vps: Vec<Bytes>,
    /// How many bytes prefix each NAL unit of a frame (1, 2 or 4).
    pub length_size: usize,
}

impl ParameterSets {
    /// The parameter sets of a video track's record (avcC or hvcC), read strictly.
    pub fn of_track(track: &Track) -> Result<ParameterSets, Error> {
        match track.codec {
            Codec::H264 => avcc_parameter_sets(&track.extra_data),
            Codec::H265 => hvcc_parameter_sets(&track.extra_data),
            Codec::Aac => crate::bail!(Invalid, "an audio track has no parameter sets"),
        }
    }

    /// Every set in the order a decoder needs them: VPS, SPS, PPS.
    pub fn in_order(&self) -> impl Iterator<Item = &Bytes> {
        self.vps.iter().chain(&self.sps).chain(&self.pps)
    }
}

fn take<'a>(data: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], Error> {
    if data.len() < n {
        crate::bail!(Invalid, "the record ends inside {what}");
    }
    let (head, rest) = data.split_at(n);
    *data = rest;
    Ok(head)
}

fn nal(data: &mut &[u8], record: &Bytes, what: &str) -> Result<Bytes, Error> {
    let len = take(data, 2, what)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    let start = record.len() - data.len();
    take(data, len, what)?;
    if len == 0 {
        crate::bail!(Invalid, "an empty {what}");
    }
    Ok(record.slice(start..start + len))
}

/// Reads an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1).
pub fn avcc_parameter_sets(avcc: &Bytes) -> Result<ParameterSets, Error> {
    let mut d = &avcc[..];
    let head = take(&mut d, 6, "the avcC header")?;
    if head[0] != 1 {
        crate::bail!(Invalid, "avcC version {} (only 1 exists)", head[0]);
    }
    let length_size = usize::from(head[4] & 3) + 1;
    if length_size == 3 {
        crate::bail!(
            Invalid,
            "avcC says NAL lengths take 3 bytes (only 1, 2 or 4 are valid)"
        );
    }
    let mut sets = ParameterSets {
        length_size,
        ..ParameterSets::default()
    };
    for _ in 0..(head[5] & 0x1f) {
        sets.sps.push(nal(&mut d, avcc, "an SPS")?);
    }
    let count = take(&mut d, 1, "the PPS count")?[0];
    for _ in 0..count {
        sets.pps.push(nal(&mut d, avcc, "a PPS")?);
    }
    if sets.sps.is_empty() || sets.pps.is_empty() {
        crate::bail!(Invalid, "the avcC has no SPS or no PPS");
    }
    Ok(sets)
}

/// Reads an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3.1).
pub fn hvcc_parameter_sets(hvcc: &Bytes) -> Result<ParameterSets, Error> {
    let mut d = &hvcc[..];
    let head = take(&mut d, 23, "the hvcC header")?;
    if head[0] != 1 {
        crate::bail!(Invalid, "hvcC version {} (only 1 exists)", head[0]);
    }
    let length_size = usize::from(head[21] & 3) + 1;
    if length_size == 3 {
        crate::bail!(
            Invalid,
            "hvcC says NAL lengths take 3 bytes (only 1, 2 or 4 are valid)"
        );
    }
    let mut sets = ParameterSets {
        length_size,
        ..ParameterSets::default()
    };
    for _ in 0..head[22] {
        let array = take(&mut d, 3, "a NAL unit array")?;
        let count = u16::from_be_bytes([array[1], array[2]]);
        for _ in 0..count {
            let unit = nal(&mut d, hvcc, "a parameter set")?;
            match array[0] & 0x3f {
                32 => sets.vps.push(unit),
                33 => sets.sps.push(unit),
                34 => sets.pps.push(unit),
                _ => {}
            }
        }
    }
    if sets.vps.is_empty() || sets.sps.is_empty() || sets.pps.is_empty() {
        crate::bail!(Invalid, "the hvcC lacks a VPS, an SPS or a PPS");
    }
    Ok(sets)
}

/// The `avc1` sample entry for an avcC and the picture size.
pub fn avc1(avcc: &[u8], dimensions: (u32, u32)) -> Bytes {
    visual(b"avc1", b"avcC", avcc, dimensions)
}

/// The `hvc1` sample entry for an hvcC and the picture size.
pub fn hvc1(hvcc: &[u8], dimensions: (u32, u32)) -> Bytes {
    visual(b"hvc1", b"hvcC", hvcc, dimensions)
}

/// The RFC 6381 codec string of an avcC: `avc1.PPCCLL` (profile, constraint flags, level), in
/// upper case like retina's.
pub fn avc1_codec(avcc: &[u8]) -> Option<String> {
    let p = avcc.get(1..4)?;
    Some(format!("avc1.{:02X}{:02X}{:02X}", p[0], p[1], p[2]))
}

/// The RFC 6381 codec string of an hvcC (ISO/IEC 14496-15 Annex E.3):
/// `hvc1.<space><profile>.<compatibility>.<tier><level>[.<constraint bytes>]`.
pub fn hvc1_codec(hvcc: &[u8]) -> Option<String> {
    let h = hvcc.get(..13)?;
    let space = ["", "A", "B", "C"][usize::from(h[1] >> 6)];
    let tier = if h[1] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = h[1] & 0x1f;
    // The compatibility flags are written in reverse bit order.
    let compatibility = u32::from_be_bytes([h[2], h[3], h[4], h[5]]).reverse_bits();
    let mut out = format!("hvc1.{space}{profile}.{compatibility:X}.{tier}{}", h[12]);
    let constraints = &h[6..12];
    let used = constraints
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i + 1);
    for b in &constraints[..used] {
        out.push_str(&format!(".{b:X}"));
    }
    Some(out)
}

/// The audio track of an AAC AudioSpecificConfig (an RTMP sequence header, an SDP `config`).
pub fn aac_track(asc: &Bytes) -> Result<Track, Error> {
    let config = AacConfig::parse(asc)?;
    Ok(Track {
        codec: Codec::Aac,
        timescale: config.sample_rate,
        extra_data: asc.clone(),
        sample_entry: mp4a(asc, &config),
        rfc6381: config.codec(),
        dimensions: (0, 0),
        channels: config.channels,
    })
}

/// What an AAC AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    /// The audio object type (2 = AAC LC, 5 = HE-AAC, 29 = HE-AAC v2).
    pub object_type: u8,
    /// The sampling rate of the core codec, in Hz.
    pub sample_rate: u32,
    /// The channel count.
    pub channels: u16,
}

const AAC_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

impl AacConfig {
    /// Reads the object type, rate and channels.
    pub fn parse(asc: &[u8]) -> Result<AacConfig, Error> {
        if asc.is_empty() {
            crate::bail!(Invalid, "an empty AudioSpecificConfig");
        }
        let bits = asc
            .iter()
            .take(8)
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
            << (8 * (8 - asc.len().min(8)));
        let mut at = 0;
        let mut read = |n: u32| {
            let v = (bits >> (64 - at - n)) & ((1 << n) - 1);
            at += n;
            v as u32
        };
        let mut object_type = read(5);
        if object_type == 31 {
            object_type = 32 + read(6);
        }
        let index = read(4);
        let sample_rate = match index {
            0xf => read(24),
            i => *AAC_RATES
                .get(i as usize)
                .ok_or_else(|| crate::err!(Invalid, "reserved AAC sampling frequency index {i}"))?,
        };
        let channels = read(4);
        if asc.len() * 8 < at as usize || object_type == 0 || sample_rate == 0 {
            crate::bail!(Invalid, "the AudioSpecificConfig is too short or empty");
        }
        let channels = match channels {
            0 => crate::bail!(
                Invalid,
                "AAC channels in a program config element are not supported"
            ),
            7 => 8,
            c @ 1..=6 => c as u16,
            c => crate::bail!(Invalid, "reserved AAC channel configuration {c}"),
        };
        Ok(AacConfig {
            object_type: object_type as u8,
            sample_rate,
            channels,
        })
    }

    /// The RFC 6381 codec string: `mp4a.40.<object type>`.
    pub fn codec(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

/// An MPEG-4 descriptor (ISO/IEC 14496-1 §8.3.3): tag, 7-bit-per-byte length, body.
fn descriptor(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.put_u8(tag);
    let len = body.len() as u32;
    for shift in [21, 14, 7] {
        if len >> shift != 0 {
            out.put_u8(0x80 | ((len >> shift) & 0x7f) as u8);
        }
    }
    out.put_u8((len & 0x7f) as u8);
    out.put_slice(body);
}

/// The `mp4a` sample entry (ISO/IEC 14496-14 §5.6.1) for an AudioSpecificConfig.
pub fn mp4a(asc: &[u8], config: &AacConfig) -> Bytes {
    let mut decoder_config = BytesMut::new();
    decoder_config.put_u8(0x40); // objectTypeIndication: ISO/IEC 14496-3 audio
    decoder_config.put_u8(0x15); // streamType audio, upstream 0, reserved 1
    decoder_config.put_uint(768 * u64::from(config.channels), 3); // bufferSizeDB: 6144 bits/ch
    decoder_config.put_u32(0); // maxBitrate: unknown
    decoder_config.put_u32(0); // avgBitrate: variable
    descriptor(&mut decoder_config, 0x05, asc); // DecoderSpecificInfo
    let mut es = BytesMut::new();
    es.put_u16(0); // ES_ID
    es.put_u8(0); // no dependence, URL or OCR stream
    descriptor(&mut es, 0x04, &decoder_config); // DecoderConfigDescriptor
    descriptor(&mut es, 0x06, &[0x02]); // SLConfigDescriptor: predefined for MP4
    let mut out = BytesMut::with_capacity(64 + asc.len());
    boxed(&mut out, b"mp4a", |o| {
        o.put_slice(&[0; 6]);
        o.put_u16(1); // data_reference_index
        o.put_slice(&[0; 8]);
        o.put_u16(config.channels);
        o.put_u16(16); // samplesize
        o.put_u32(0); // pre_defined, reserved
        // A rate past 16 bits would need a SamplingRateBox; the decoder reads the ASC anyway.
        o.put_u32(if config.sample_rate <= 0xffff {
            config.sample_rate << 16
        } else {
            0
        });
        boxed(o, b"esds", |o| {
            o.put_u32(0); // version, flags
            descriptor(o, 0x03, &es); // ES_Descriptor
        });
    });
    out.freeze()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn hex(s: &str) -> Bytes {
        Bytes::from(
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>(),
        )
    }

    /// The avcC libx264 writes for 640x360 High profile, level 3.0.
    pub(crate) fn avcc_640x360() -> Bytes {
        hex(
            "0164001effe1001a6764001eacd940a02ff97011000003000100000300320f162d9601000668ebe3cb22c0fdf8f800",
        )
    }

    /// The hvcC libx265 writes for 1366x766 Main profile, level 4.0 (SEI left out).
    pub(crate) fn hvcc_1366x766() -> Bytes {
        hex(concat!(
            "01016000000090000000000078f000fcfdf8f800000f03a00001001840010c01ffff016000000300900000",
            "030000030078959809a10001002c420101016000000300900000030000030078a002ac80301d565959a493",
            "2bc05a020000030002000003003210a2000100074401c172b46240"
        ))
    }

    #[test]
    fn an_avcc_gives_its_parameter_sets_and_codec_string() {
        let avcc = avcc_640x360();
        let sets = avcc_parameter_sets(&avcc).unwrap();
        assert_eq!(
            (sets.sps.len(), sets.pps.len(), sets.length_size),
            (1, 1, 4)
        );
        assert_eq!(sets.sps[0][0] & 0x1f, 7);
        assert_eq!(sets.pps[0][0] & 0x1f, 8);
        assert_eq!(avc1_codec(&avcc).unwrap(), "avc1.64001E");
    }

    #[test]
    fn the_avc1_entry_matches_retinas() {
        let avcc = avcc_640x360();
        let sets = avcc_parameter_sets(&avcc).unwrap();
        let params = retina::codec::h264::parameters_from_sps_and_pps(
            &sets.sps[0],
            &sets.pps[0],
            retina::codec::h26x::Framing::FourByteLength,
        )
        .unwrap();
        assert_eq!(params.rfc6381_codec(), avc1_codec(&avcc).unwrap());
        let theirs = params.mp4_sample_entry().build().unwrap();
        let ours = avc1(params.extra_data(), params.pixel_dimensions());
        assert_eq!(&ours[..], &theirs[..]);
    }

    #[test]
    fn an_hvcc_gives_its_parameter_sets_and_codec_string() {
        let hvcc = hvcc_1366x766();
        let sets = hvcc_parameter_sets(&hvcc).unwrap();
        assert_eq!(
            (
                sets.vps.len(),
                sets.sps.len(),
                sets.pps.len(),
                sets.length_size
            ),
            (1, 1, 1, 4)
        );
        assert_eq!(sets.sps[0][0] >> 1, 33);
        // What ffprobe says of the same stream: Main profile, main tier, level 4.0.
        assert_eq!(hvc1_codec(&hvcc).unwrap(), "hvc1.1.6.L120.90");
        let entry = hvc1(&hvcc, (1366, 766));
        assert_eq!(&entry[4..8], b"hvc1");
        assert_eq!(&entry[32..36], &[0x05, 0x56, 0x02, 0xfe]);
        assert_eq!(&entry[90..94], b"hvcC");
        assert_eq!(entry.len(), 86 + 8 + hvcc.len());
    }

    #[test]
    fn a_truncated_or_foreign_record_is_an_error() {
        let avcc = avcc_640x360();
        for cut in [0, 5, 8, 20, 36] {
            assert!(avcc_parameter_sets(&avcc.slice(..cut)).is_err(), "{cut}");
        }
        assert!(hvcc_parameter_sets(&avcc).is_err());
        let hvcc = hvcc_1366x766();
        assert!(hvcc_parameter_sets(&hvcc.slice(..60)).is_err());
        assert!(avc1_codec(&[1, 2]).is_none());
        assert!(hvc1_codec(&hvcc[..12]).is_none());
    }

    #[test]
    fn the_mp4a_entry_is_what_ffmpeg_writes_apart_from_rates() {
        let asc = [0x12, 0x10]; // AAC LC, 44100 Hz, stereo
        let config = AacConfig::parse(&asc).unwrap();
        assert_eq!(
            config,
            AacConfig {
                object_type: 2,
                sample_rate: 44_100,
                channels: 2
            }
        );
        assert_eq!(config.codec(), "mp4a.40.2");
        let entry = mp4a(&asc, &config);
        assert_eq!(&entry[4..8], b"mp4a");
        assert_eq!(
            u32::from_be_bytes(entry[..4].try_into().unwrap()) as usize,
            entry.len()
        );
        assert_eq!(&entry[24..26], &[0, 2], "channels");
        assert_eq!(&entry[32..34], &[0xac, 0x44], "44100 in 16.16");
        let esds = &entry[36..];
        assert_eq!(&esds[4..8], b"esds");
        // ES_Descriptor > DecoderConfigDescriptor > DecoderSpecificInfo holding the ASC.
        let dsi = esds
            .windows(3)
            .position(|w| w == [0x05, 0x02, 0x12])
            .unwrap();
        assert_eq!(esds[dsi + 3], 0x10);
        assert_eq!(&esds[esds.len() - 3..], &[0x06, 0x01, 0x02]);
    }

    #[test]
    fn aac_configs_with_explicit_rates_and_bad_fields() {
        // HE-AAC (5), explicit 24-bit rate 16000, mono.
        let asc = [0x2f, 0x80, 0x1f, 0x40, 0x08];
        let c = AacConfig::parse(&asc).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (5, 16_000, 1));
        assert!(AacConfig::parse(&[]).is_err());
        assert!(
            AacConfig::parse(&[0x12]).is_err(),
            "cut inside the channels"
        );
        assert!(
            AacConfig::parse(&[0x16, 0x80]).is_err(),
            "reserved rate index"
        );
        assert!(
            AacConfig::parse(&[0x12, 0x00]).is_err(),
            "program config element"
        );
    }

    #[test]
    fn a_long_descriptor_length_takes_several_bytes() {
        let mut out = BytesMut::new();
        descriptor(&mut out, 5, &[0; 300]);
        assert_eq!(&out[..3], &[5, 0x82, 0x2c]);
        assert_eq!(out.len(), 303);
    }
}
