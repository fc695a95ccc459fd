//! The picture size a publisher's sequence parameter set declares (H.264 §7.3.2.1.1, H.265
//! §7.3.2.2), cropping included. Only the fields before the size are read; any malformed or
//! truncated SPS is an error, never a panic.

use crate::base::Result;

/// A NAL unit's RBSP: its payload after the `header_len` bytes of its header, without the
/// emulation prevention bytes.
pub fn rbsp(nal: &[u8], header_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal.iter().skip(header_len) {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Reads an RBSP (emulation prevention bytes removed) bit by bit.
struct Bits {
    rbsp: Vec<u8>,
    at: usize,
}

impl Bits {
    fn new(nal: &[u8], header_len: usize) -> Bits {
        Bits {
            rbsp: rbsp(nal, header_len),
            at: 0,
        }
    }

    fn bit(&mut self) -> Result<u32> {
        let byte = self
            .rbsp
            .get(self.at / 8)
            .ok_or_else(|| crate::err!(Invalid, "the SPS ends before the picture size"))?;
        let bit = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Ok(u32::from(bit))
    }

    fn bits(&mut self, n: u32) -> Result<u32> {
        (0..n).try_fold(0, |acc, _| Ok((acc << 1) | self.bit()?))
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        self.at += n;
        if self.at > self.rbsp.len() * 8 {
            crate::bail!(Invalid, "the SPS ends before the picture size");
        }
        Ok(())
    }

    /// An unsigned Exp-Golomb number.
    fn ue(&mut self) -> Result<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                crate::bail!(Invalid, "an Exp-Golomb number in the SPS is too long");
            }
        }
        Ok(((1u64 << zeros) - 1 + u64::from(self.bits(zeros)?)) as u32)
    }

    /// A signed Exp-Golomb number; only its length matters here.
    fn se(&mut self) -> Result<()> {
        self.ue().map(drop)
    }
}

/// SubWidthC and SubHeightC for a chroma format (both codecs share Table 6-1).
fn chroma_subsampling(chroma_array_type: u32) -> (u32, u32) {
    match chroma_array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    }
}

fn cropped(size: u32, crop: u64, what: &str) -> Result<u32> {
    u64::from(size)
        .checked_sub(crop)
        .filter(|&v| v > 0 && v <= 16_384)
        .map(|v| v as u32)
        .ok_or_else(|| crate::err!(Invalid, "the SPS gives a {what} of {size} minus {crop}"))
}

/// The width and height an H.264 SPS NAL unit (with its header byte) declares.
pub fn h264_dimensions(nal: &[u8]) -> Result<(u32, u32)> {
    if nal.first().map(|h| h & 0x1f) != Some(7) {
        crate::bail!(Invalid, "not an H.264 SPS");
    }
    let mut r = Bits::new(nal, 1);
    let profile = r.bits(8)?;
    r.skip(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    let mut separate_planes = 0;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = r.ue()?;
        if chroma_format == 3 {
            separate_planes = r.bit()?;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.skip(1)?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            // seq_scaling_matrix_present_flag: skip each scaling list that is present.
            for i in 0..if chroma_format == 3 { 12 } else { 8 } {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..size {
                        if next != 0 {
                            let v = r.ue()?;
                            let delta = if v % 2 == 1 {
                                i64::from(v / 2 + 1)
                            } else {
                                -i64::from(v / 2)
                            };
                            next = (last + delta + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.skip(1)?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue()?;
            if cycle > 255 {
                crate::bail!(Invalid, "the SPS has a picture order cycle over 255");
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.skip(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = u64::from(r.bit()?);
    if frame_mbs_only == 0 {
        r.skip(1)?; // mb_adaptive_frame_field_flag
    }
    r.skip(1)?; // direct_8x8_inference_flag
    let (crop_w, crop_h) = cropping(&mut r)?;
    let chroma_array_type = if separate_planes == 1 {
        0
    } else {
        chroma_format
    };
    let (crop_x, crop_y) = if chroma_array_type == 0 {
        (1, 2 - frame_mbs_only)
    } else {
        let (sw, sh) = chroma_subsampling(chroma_array_type);
        (u64::from(sw), u64::from(sh) * (2 - frame_mbs_only))
    };
    let width = (width_mbs * 16).min(u64::from(u32::MAX)) as u32;
    let height = ((2 - frame_mbs_only) * height_units * 16).min(u64::from(u32::MAX)) as u32;
    Ok((
        cropped(width, crop_x * crop_w, "width")?,
        cropped(height, crop_y * crop_h, "height")?,
    ))
}

/// The cropping window's flag and offsets, in chroma units: (left + right, top + bottom).
fn cropping(r: &mut Bits) -> Result<(u64, u64)> {
    if r.bit()? == 0 {
        return Ok((0, 0));
    }
    let (left, right) = (u64::from(r.ue()?), u64::from(r.ue()?));
    let (top, bottom) = (u64::from(r.ue()?), u64::from(r.ue()?));
    Ok((left + right, top + bottom))
}

/// The width and height an H.265 SPS NAL unit (with its two header bytes) declares.
pub fn h265_dimensions(nal: &[u8]) -> Result<(u32, u32)> {
    if nal.first().map(|h| (h >> 1) & 0x3f) != Some(33) {
        crate::bail!(Invalid, "not an H.265 SPS");
    }
    let mut r = Bits::new(nal, 2);
    r.skip(4)?; // sps_video_parameter_set_id
    let sub_layers = r.bits(3)? as usize; // sps_max_sub_layers_minus1
    r.skip(1)?; // sps_temporal_id_nesting_flag
    // profile_tier_level(1, sps_max_sub_layers_minus1): the general profile and level first.
    r.skip(88 + 8)?;
    let mut present = Vec::with_capacity(sub_layers);
    for _ in 0..sub_layers {
        present.push((r.bit()?, r.bit()?));
    }
    if sub_layers > 0 {
        r.skip(2 * (8 - sub_layers))?; // reserved_zero_2bits
    }
    for (profile, level) in present {
        r.skip(88 * profile as usize + 8 * level as usize)?;
    }
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format = r.ue()?;
    let mut separate_planes = 0;
    if chroma_format == 3 {
        separate_planes = r.bit()?;
    }
    let width = r.ue()?;
    let height = r.ue()?;
    let (crop_w, crop_h) = cropping(&mut r)?;
    let chroma_array_type = if separate_planes == 1 {
        0
    } else {
        chroma_format
    };
    let (sw, sh) = chroma_subsampling(chroma_array_type);
    Ok((
        cropped(width, u64::from(sw) * crop_w, "width")?,
        cropped(height, u64::from(sh) * crop_h, "height")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::sample_entry::tests::{avcc_640x360, hvcc_1366x766};
    use crate::media::sample_entry::{avcc_parameter_sets, hvcc_parameter_sets};

    #[test]
    fn an_h264_sps_gives_its_cropped_size() {
        let sets = avcc_parameter_sets(&avcc_640x360()).unwrap();
        // 23 macroblocks high (368 lines), cropped by 8 to 360.
        assert_eq!(h264_dimensions(&sets.sps[0]).unwrap(), (640, 360));
    }

    #[test]
    fn an_h264_422_sps_with_its_own_chroma_format_gives_its_size() {
        // libx264 High 4:2:2 at 1920x1080: chroma_format_idc 2, cropped by 8 lines.
        let sps = [
            0x67, 0x7a, 0x00, 0x28, 0xbc, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe2, 0x70, 0x11, 0x00,
            0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x18, 0x31, 0x96,
        ];
        assert_eq!(h264_dimensions(&sps).unwrap(), (1920, 1080));
    }

    #[test]
    fn an_h265_sps_gives_its_conformance_window_size() {
        let sets = hvcc_parameter_sets(&hvcc_1366x766()).unwrap();
        // Coded as 1368x768, cropped by the conformance window.
        assert_eq!(h265_dimensions(&sets.sps[0]).unwrap(), (1366, 766));
    }

    #[test]
    fn a_truncated_or_foreign_sps_is_an_error_at_every_length() {
        let sets = avcc_parameter_sets(&avcc_640x360()).unwrap();
        let sps = &sets.sps[0];
        // The size and cropping end in the 11th byte; the VUI after them is not read.
        for cut in 0..11 {
            assert!(h264_dimensions(&sps[..cut]).is_err(), "{cut}");
        }
        assert_eq!(h264_dimensions(&sps[..11]).unwrap(), (640, 360));
        assert!(h264_dimensions(&sets.pps[0]).is_err());
        let sets = hvcc_parameter_sets(&hvcc_1366x766()).unwrap();
        for cut in 0..20 {
            assert!(h265_dimensions(&sets.sps[0][..cut]).is_err(), "{cut}");
        }
        assert!(h265_dimensions(&sets.vps[0]).is_err());
        assert!(h264_dimensions(&[0x67, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
