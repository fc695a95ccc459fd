//! The fuzz targets of sited: every parser that reads bytes a peer or an operator controls.
//!
//! Each target is a function of the input bytes that must never panic, hang or allocate without
//! bound; the binaries under `src/bin/` hand them to AFL++ (`cargo afl`, stable Rust), and
//! `tests/smoke.rs` runs each on its corpus (`corpus/<target>/`) and on mutations of it, so
//! that CI runs every target on every change. `make fuzz` runs each under AFL++ for a while
//! (`scripts/fuzz.sh`).

use bytes::{Bytes, BytesMut};
use sited::config::{Options, Source};
use sited::media::output::rtsp_request;
use sited::media::rtmp::{chunk, command, sps, tag};
use sited::media::sample_entry;

/// A fuzz target: input bytes in, a panic on a finding.
pub type Target = fn(&[u8]);

/// The targets, by name (the names of `corpus/` folders and of the binaries).
pub const TARGETS: [(&str, Target); 8] = [
    ("site_file", site_file),
    ("rtmp_chunks", rtmp_chunks),
    ("amf0", amf0),
    ("rtsp_request", rtsp_request),
    ("flv_tag", flv_tag),
    ("http_range", http_range),
    ("parameter_sets", parameter_sets),
    ("sps", sps),
];

/// The site file: parse, shape, validate and plan, then render every diagnostic.
pub fn site_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let checked = sited::plan::check::check(&text, Options::default());
    let source = Source::new("site.toml", &text);
    for d in &checked.diagnostics {
        let _ = source.human(d);
    }
}

/// The RTMP chunk reader, fed in two pieces, under a publisher's budget then an untrusted
/// peer's; every message is also parsed as a command.
pub fn rtmp_chunks(data: &[u8]) {
    for budget in [chunk::Budget::PUBLISHER, chunk::Budget::UNTRUSTED] {
        let mut reader = chunk::Reader::new();
        reader.set_budget(budget);
        let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
        let mut buf = BytesMut::new();
        for piece in [&data[..split], &data[split..]] {
            buf.extend_from_slice(piece);
            while let Ok(Some(m)) = reader.next(&mut buf) {
                let _ = command::parse(m.header.type_id, &m.data);
            }
        }
        assert!(reader.held() <= 2 * budget.max_buffered + budget.prealloc);
    }
}

/// AMF0 values and commands.
pub fn amf0(data: &[u8]) {
    let _ = command::values(data);
    let _ = command::parse(command::AMF0_COMMAND, data);
    let _ = command::parse(command::AMF3_COMMAND, data);
}

/// An RTSP request head and a SETUP's Transport header.
pub fn rtsp_request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(r) = rtsp_request::parse(&text)
        && let Some(t) = r.headers.get("transport")
        && let Ok(Some(pair)) = rtsp_request::transport(t)
    {
        let _ = pair.header();
    }
}

/// FLV audio and video tag bodies (classic and Enhanced RTMP).
pub fn flv_tag(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    let _ = tag::video(&body);
    let _ = tag::audio(&body);
    for length_size in 1..=4 {
        let _ = tag::four_byte_lengths(body.clone(), length_size);
    }
}

/// The HTTP Range header, against a few body lengths.
pub fn http_range(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for len in [0, 1, 7_695_022, u64::MAX] {
        if let Ok(Some(r)) = sited::web::range::parse(Some(&text), len) {
            assert!(r.start < r.end && r.end <= len, "{text:?} {len}: {r:?}");
        }
    }
}

/// avcC and hvcC records, and the codec strings made from them.
pub fn parameter_sets(data: &[u8]) {
    let record = Bytes::copy_from_slice(data);
    let _ = sample_entry::avcc_parameter_sets(&record);
    let _ = sample_entry::hvcc_parameter_sets(&record);
    let _ = sample_entry::avc1_codec(data);
    let _ = sample_entry::hvc1_codec(data);
    let _ = sample_entry::AacConfig::parse(data);
}

/// H.264 and H.265 sequence parameter sets.
pub fn sps(data: &[u8]) {
    let _ = sps::h264_dimensions(data);
    let _ = sps::h265_dimensions(data);
}
