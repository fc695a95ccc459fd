//! Reading back the fragmented MP4 the recorder writes: box headers, `moof` contents, `tfdt`
//! rewriting, and a whole-file scan for recovery.
//!
//! A file is an init segment (`ftyp` + `moov`) then fragments (`moof` + `mdat`). A fragment is
//! whole when its `mdat` ends within the file; a scan stops at the first box that is not.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom};

use bytes::Bytes;

use super::index::Keyframe;
use crate::media::fmp4::VIDEO_ID;

/// A box header: its type, and its size including the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The four-character type.
    pub kind: [u8; 4],
    /// The size of the whole box.
    pub size: u64,
    /// The size of the header (8, or 16 with a 64-bit size).
    pub header: u64,
}

/// Parses a box header at the start of `data`; `None` if `data` is too short or the box is
/// malformed ("to the end of the file" boxes are not written by sited and count as malformed).
pub fn header(data: &[u8]) -> Option<Header> {
    let size = u32::from_be_bytes(data.get(..4)?.try_into().ok()?);
    let kind: [u8; 4] = data.get(4..8)?.try_into().ok()?;
    let (size, header) = match size {
        0 => return None,
        1 => (u64::from_be_bytes(data.get(8..16)?.try_into().ok()?), 16),
        n => (u64::from(n), 8),
    };
    (size >= header).then_some(Header { kind, size, header })
}

/// The children of a box body, as (type, range of the whole child within `body`).
fn children(body: &[u8]) -> impl Iterator<Item = ([u8; 4], std::ops::Range<usize>)> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let h = header(&body[pos..])?;
        let end = pos.checked_add(usize::try_from(h.size).ok()?)?;
        if end > body.len() {
            return None;
        }
        let r = (h.kind, pos..end);
        pos = end;
        Some(r)
    })
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

/// What a `moof` says of its first track fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moof {
    /// The track.
    pub track: u32,
    /// Its decode time.
    pub tfdt: u64,
    /// The sum of its samples' durations.
    pub duration: u64,
    /// Whether its first sample is a sync sample.
    pub keyframe: bool,
}

/// Parses a whole `moof` box.
pub fn moof(data: &[u8]) -> Option<Moof> {
    let body = data.get(8..)?;
    let (_, traf) = children(body).find(|(k, _)| k == b"traf")?;
    let traf = &body[traf][8..];
    let mut out = Moof {
        track: 0,
        tfdt: 0,
        duration: 0,
        keyframe: false,
    };
    let (mut default_duration, mut default_flags) = (0u32, 0u32);
    for (kind, r) in children(traf) {
        let b = &traf[r];
        let flags = be32(b, 8)? & 0x00ff_ffff;
        match &kind {
            b"tfhd" => {
                out.track = be32(b, 12)?;
                let mut at = 16;
                if flags & 0x01 != 0 {
                    at += 8;
                }
                if flags & 0x02 != 0 {
                    at += 4;
                }
                if flags & 0x08 != 0 {
                    default_duration = be32(b, at)?;
                    at += 4;
                }
                if flags & 0x10 != 0 {
                    at += 4;
                }
                if flags & 0x20 != 0 {
                    default_flags = be32(b, at)?;
                }
            }
            b"tfdt" => {
                out.tfdt = if b[8] == 1 {
                    u64::from_be_bytes(b.get(12..20)?.try_into().ok()?)
                } else {
                    u64::from(be32(b, 12)?)
                };
            }
            b"trun" => {
                let count = be32(b, 12)?;
                let mut at = 16;
                if flags & 0x01 != 0 {
                    at += 4;
                }
                let first_flags = if flags & 0x04 != 0 {
                    at += 4;
                    Some(be32(b, at - 4)?)
                } else {
                    None
                };
                for i in 0..count {
                    let mut duration = default_duration;
                    let mut sample_flags = default_flags;
                    if flags & 0x100 != 0 {
                        duration = be32(b, at)?;
                        at += 4;
                    }
                    if flags & 0x200 != 0 {
                        at += 4;
                    }
                    if flags & 0x400 != 0 {
                        sample_flags = be32(b, at)?;
                        at += 4;
                    }
                    if flags & 0x800 != 0 {
                        at += 4;
                    }
                    if i == 0 {
                        let f = first_flags.unwrap_or(sample_flags);
                        out.keyframe = f & 0x0001_0000 == 0;
                    }
                    out.duration += u64::from(duration);
                }
            }
            _ => {}
        }
    }
    Some(out)
}

/// Rewrites every `tfdt` of a whole `moof` box in place: `f(track, tfdt) -> tfdt`. A version 0
/// `tfdt` saturates at `u32::MAX`.
pub fn patch_tfdt(data: &mut [u8], f: impl Fn(u32, u64) -> u64) {
    let Some(body) = data.get_mut(8..) else {
        return;
    };
    let trafs: Vec<_> = children(body)
        .filter(|(k, _)| k == b"traf")
        .map(|(_, r)| r)
        .collect();
    for traf in trafs {
        let traf = &mut body[traf][8..];
        let kids: Vec<_> = children(traf).collect();
        let Some(track) = kids
            .iter()
            .find(|(k, _)| k == b"tfhd")
            .and_then(|(_, r)| be32(&traf[r.clone()], 12))
        else {
            continue;
        };
        for (kind, r) in kids {
            if &kind != b"tfdt" {
                continue;
            }
            let b = &mut traf[r];
            if b.len() >= 20 && b[8] == 1 {
                let old = u64::from_be_bytes(b[12..20].try_into().unwrap_or_default());
                b[12..20].copy_from_slice(&f(track, old).to_be_bytes());
            } else if b.len() >= 16 {
                let old = u64::from(be32(b, 12).unwrap_or(0));
                let new = u32::try_from(f(track, old)).unwrap_or(u32::MAX);
                b[12..16].copy_from_slice(&new.to_be_bytes());
            }
        }
    }
}

/// The timescale of each track of an init segment, by track id.
pub fn timescales(init: &[u8]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let Some((_, moov)) = children(init).find(|(k, _)| k == b"moov") else {
        return out;
    };
    let moov = &init[moov][8..];
    for (_, trak) in children(moov).filter(|(k, _)| k == b"trak") {
        let trak = &moov[trak][8..];
        let mut id = None;
        let mut scale = None;
        for (kind, r) in children(trak) {
            let b = &trak[r];
            match &kind {
                b"tkhd" => id = be32(b, if b[8] == 1 { 28 } else { 20 }),
                b"mdia" => {
                    let mdia = &b[8..];
                    if let Some((_, m)) = children(mdia).find(|(k, _)| k == b"mdhd") {
                        let m = &mdia[m];
                        scale = be32(m, if m[8] == 1 { 28 } else { 20 });
                    }
                }
                _ => {}
            }
        }
        if let (Some(id), Some(scale)) = (id, scale) {
            out.push((id, scale));
        }
    }
    out
}

/// The init segment with a `mehd` box in its `mvex` (replacing any) that gives the total
/// duration of the fragments, so a player knows a clip's length without reading every
/// fragment. Returns the bytes, the offset of the 64-bit duration (to patch in place), and the
/// `mvhd` timescale it counts in; `None` if the init segment is malformed.
pub fn with_duration(init: &[u8], duration_ms: u64) -> Option<(Vec<u8>, usize, u64)> {
    let mut out = Vec::with_capacity(init.len() + 20);
    let mut value_at = None;
    let mut scale = 1000u64;
    for (kind, r) in children(init) {
        if &kind != b"moov" {
            out.extend_from_slice(&init[r]);
            continue;
        }
        let moov_start = out.len();
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(b"moov");
        let moov = &init[r][8..];
        for (kind, r) in children(moov) {
            let b = &moov[r];
            if &kind == b"mvhd" {
                scale = u64::from(be32(b, if b[8] == 1 { 28 } else { 20 })?);
            }
            if &kind != b"mvex" {
                out.extend_from_slice(b);
                continue;
            }
            let mvex_start = out.len();
            out.extend_from_slice(&[0, 0, 0, 0]);
            out.extend_from_slice(b"mvex");
            out.extend_from_slice(&20u32.to_be_bytes());
            out.extend_from_slice(b"mehd");
            out.extend_from_slice(&[1, 0, 0, 0]);
            value_at = Some(out.len());
            out.extend_from_slice(&(duration_ms * scale / 1000).to_be_bytes());
            for (kind, r) in children(&b[8..]) {
                if &kind != b"mehd" {
                    out.extend_from_slice(&b[8..][r]);
                }
            }
            let size = (out.len() - mvex_start) as u32;
            out[mvex_start..mvex_start + 4].copy_from_slice(&size.to_be_bytes());
        }
        let size = (out.len() - moov_start) as u32;
        out[moov_start..moov_start + 4].copy_from_slice(&size.to_be_bytes());
    }
    Some((out, value_at?, scale))
}

/// What a scan of a segment file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The init segment at its head.
    pub init: Bytes,
    /// The end of its last whole fragment.
    pub bytes: u64,
    /// The video's media duration (90 kHz): the end of its last whole video fragment.
    pub duration_90k: u64,
    /// Its video keyframes.
    pub keyframes: Vec<Keyframe>,
}

fn read_at(file: &mut File, at: u64, len: usize) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(at))?;
    let mut buf = Vec::with_capacity(len);
    file.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Scans a segment file of `len` bytes: `None` if it has no whole init segment and video
/// keyframe fragment (nothing worth keeping). Reads only box headers and `moof`s.
pub fn scan(file: &mut File, len: u64) -> io::Result<Option<Scan>> {
    let mut pos = 0u64;
    let mut init_end = None;
    let mut out = Scan {
        init: Bytes::new(),
        bytes: 0,
        duration_90k: 0,
        keyframes: Vec::new(),
    };
    let mut pending: Option<(u64, Moof)> = None;
    while pos + 8 <= len {
        let head = read_at(file, pos, 16)?;
        let Some(h) = header(&head) else { break };
        let end = pos + h.size;
        if end > len {
            break;
        }
        match (&h.kind, init_end) {
            (b"ftyp", None) => {}
            (b"moov", None) => {
                init_end = Some(end);
                out.init = Bytes::from(read_at(file, 0, end as usize)?);
                out.bytes = end;
            }
            (b"moof", Some(_)) if h.size < 1 << 20 => {
                let data = read_at(file, pos, h.size as usize)?;
                pending = moof(&data).map(|m| (pos, m));
            }
            (b"mdat", Some(_)) => {
                if let Some((at, m)) = pending.take() {
                    if m.track == VIDEO_ID {
                        if m.keyframe {
                            out.keyframes.push(Keyframe {
                                offset: at,
                                time: m.tfdt,
                            });
                        }
                        if !out.keyframes.is_empty() {
                            out.duration_90k = out.duration_90k.max(m.tfdt + m.duration);
                        }
                    }
                    out.bytes = end;
                }
            }
            _ => break,
        }
        pos = end;
    }
    Ok((init_end.is_some() && !out.keyframes.is_empty()).then_some(out))
}
