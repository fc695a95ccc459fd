//! The RTSP server: `rtsp://HOST:PORT/<camera>` re-serves every stream of the node (NovaVMS's
//! go2rtc RTSP server on 8554).
//!
//! It speaks enough of RFC 2326 for players and NVRs: OPTIONS, DESCRIBE (an SDP built from the
//! tracks), SETUP with RTP over TCP interleaved, PLAY, GET_PARAMETER (keep-alive) and TEARDOWN.
//! RTP over UDP is refused with 461; players retry over TCP. H.264 and H.265 are packetized
//! after RFC 6184 and RFC 7798 (single NAL units, fragmentation units above [`MTU`]), AAC after
//! RFC 3640 (AAC-hbr). Viewers log in with HTTP Basic or `?token=`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::{BufMut as _, Bytes, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::Live;
use crate::auth::Credentials;
use crate::media::frame::{Codec, Frame, Kind, Track, Tracks};
use crate::media::hub::{Item, Reader};

/// The largest RTP payload sent; larger NAL units are fragmented.
pub const MTU: usize = 1400;
/// The largest request accepted.
pub const MAX_REQUEST: usize = 16 * 1024;
/// How long a client may stay silent before PLAY.
pub const IDLE: Duration = Duration::from_secs(60);

/// A parsed request.
#[derive(Debug, Default)]
struct Request {
    method: String,
    url: String,
    headers: HashMap<String, String>,
}

fn parse(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, url, version) = (first.next()?, first.next()?, first.next()?);
    if !version.starts_with("RTSP/1.") {
        return None;
    }
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Request {
        method: method.to_string(),
        url: url.to_string(),
        headers,
    })
}

/// The stream name and the query of an RTSP URL: `rtsp://h:p/<name>[/trackID=N][?token=…]`.
fn target(url: &str) -> (String, Option<usize>, String) {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut parts = path.trim_matches('/').split('/');
    let name = parts.next().unwrap_or("").to_string();
    let track = parts
        .next()
        .and_then(|t| t.strip_prefix("trackID="))
        .and_then(|n| n.parse().ok());
    (name, track, query.to_string())
}

fn response(code: u16, reason: &str, cseq: &str, extra: &[(&str, String)], body: &str) -> Vec<u8> {
    let mut out = format!("RTSP/1.0 {code} {reason}\r\nCSeq: {cseq}\r\nServer: sited\r\n");
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// The parameter sets in an avcC (H.264) or hvcC (H.265) record, in order.
fn parameter_sets(track: &Track) -> Vec<Bytes> {
    let d = &track.extra_data;
    let mut out = Vec::new();
    let take = |at: &mut usize| -> Option<Bytes> {
        let len = usize::from(u16::from_be_bytes([*d.get(*at)?, *d.get(*at + 1)?]));
        let nal = d.get(*at + 2..*at + 2 + len)?;
        *at += 2 + len;
        Some(Bytes::copy_from_slice(nal))
    };
    match track.codec {
        Codec::H264 if d.len() > 6 => {
            let mut at = 6;
            for _ in 0..(d[5] & 0x1f) {
                out.extend(take(&mut at));
            }
            if let Some(&n) = d.get(at) {
                at += 1;
                for _ in 0..n {
                    out.extend(take(&mut at));
                }
            }
        }
        Codec::H265 if d.len() > 23 => {
            let mut at = 23;
            for _ in 0..d[22] {
                at += 1;
                let n = d
                    .get(at..at + 2)
                    .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                at += 2;
                for _ in 0..n {
                    out.extend(take(&mut at));
                }
            }
        }
        _ => {}
    }
    out
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The SDP of a stream: track 0 is video, track 1 audio.
fn sdp(name: &str, tracks: &Tracks) -> String {
    let mut out = format!(
        "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns={name}\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=control:*\r\n"
    );
    if let Some(v) = &tracks.video {
        let sets = parameter_sets(v);
        out.push_str("m=video 0 RTP/AVP 96\r\n");
        match v.codec {
            Codec::H265 => {
                let kind = |n: &Bytes| (n.first().copied().unwrap_or(0) >> 1) & 0x3f;
                let of = |t: u8| {
                    sets.iter()
                        .filter(|n| kind(n) == t)
                        .map(|n| b64(n))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                out.push_str(&format!("a=rtpmap:96 H265/90000\r\na=fmtp:96 sprop-vps={};sprop-sps={};sprop-pps={}\r\n", of(32), of(33), of(34)));
            }
            _ => {
                let profile = v
                    .extra_data
                    .get(1..4)
                    .map(|p| format!("{:02X}{:02X}{:02X}", p[0], p[1], p[2]))
                    .unwrap_or_else(|| "42E01F".into());
                let sprop = sets.iter().map(|n| b64(n)).collect::<Vec<_>>().join(",");
                out.push_str(&format!("a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id={profile};sprop-parameter-sets={sprop}\r\n"));
            }
        }
        out.push_str("a=control:trackID=0\r\n");
    }
    if let Some(a) = &tracks.audio {
        let config: String = a.extra_data.iter().map(|b| format!("{b:02X}")).collect();
        out.push_str(&format!(
            "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/{}/{}\r\na=fmtp:97 streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config={config}\r\na=control:trackID=1\r\n",
            a.timescale, a.channels
        ));
    }
    out
}

/// One track's RTP state.
struct Rtp {
    channel: u8,
    ssrc: u32,
    seq: u16,
    base: u32,
}

impl Rtp {
    fn packet(
        &mut self,
        out: &mut BytesMut,
        timestamp: u32,
        marker: bool,
        pt: u8,
        parts: &[&[u8]],
    ) {
        let len = 12 + parts.iter().map(|p| p.len()).sum::<usize>();
        out.put_u8(b'$');
        out.put_u8(self.channel);
        out.put_u16(len as u16);
        out.put_u8(0x80);
        out.put_u8(if marker { 0x80 | pt } else { pt });
        out.put_u16(self.seq);
        out.put_u32(timestamp.wrapping_add(self.base));
        out.put_u32(self.ssrc);
        for p in parts {
            out.put_slice(p);
        }
        self.seq = self.seq.wrapping_add(1);
    }
}

/// Splits a frame in MP4 form (4-byte lengths) into NAL units.
fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= data.len() {
        let len = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let Some(nal) = data.get(at + 4..at + 4 + len) else {
            break;
        };
        out.push(nal);
        at += 4 + len;
    }
    out
}

/// Packetizes one video access unit (RFC 6184 / RFC 7798).
fn video(out: &mut BytesMut, rtp: &mut Rtp, track: &Track, frame: &Frame, sets: &[Bytes]) {
    // RTP carries presentation time; B-frames make it differ from decode order.
    let ts = frame.pts() as u32;
    let mut nals: Vec<&[u8]> = Vec::new();
    if frame.keyframe {
        nals.extend(sets.iter().map(|s| s.as_ref()));
    }
    nals.extend(nal_units(&frame.data));
    let h265 = track.codec == Codec::H265;
    let header_len = if h265 { 2 } else { 1 };
    for (i, nal) in nals.iter().enumerate() {
        let last = i + 1 == nals.len();
        if nal.len() <= MTU {
            rtp.packet(out, ts, last, 96, &[nal]);
            continue;
        }
        let (head, body) = nal.split_at(header_len);
        let chunks: Vec<&[u8]> = body.chunks(MTU - 3).collect();
        for (j, chunk) in chunks.iter().enumerate() {
            let (start, end) = (j == 0, j + 1 == chunks.len());
            let flags = (u8::from(start) << 7) | (u8::from(end) << 6);
            if h265 {
                let fu = [
                    (head[0] & 0x81) | (49 << 1),
                    head[1],
                    flags | ((head[0] >> 1) & 0x3f),
                ];
                rtp.packet(out, ts, last && end, 96, &[&fu, chunk]);
            } else {
                let fu = [(head[0] & 0xe0) | 28, flags | (head[0] & 0x1f)];
                rtp.packet(out, ts, last && end, 96, &[&fu, chunk]);
            }
        }
    }
}

/// Packetizes one AAC frame (RFC 3640, AAC-hbr, one AU per packet).
fn audio(out: &mut BytesMut, rtp: &mut Rtp, frame: &Frame) {
    let size = frame.data.len() as u16;
    let header = [0x00, 0x10, (size >> 5) as u8, ((size & 0x1f) << 3) as u8];
    rtp.packet(out, frame.pts() as u32, true, 97, &[&header, &frame.data]);
}

fn authorized(live: &Live, req: &Request, query: &str, peer: SocketAddr) -> bool {
    let credentials = Credentials::from_parts(
        |name| {
            req.headers
                .get(name)
                .map(String::as_str)
                .into_iter()
                .collect()
        },
        Some(query),
    );
    live.viewer(&credentials, peer.ip()).is_some()
}

/// Serves one RTSP connection until TEARDOWN, a closed socket, or an error.
pub async fn connection(mut stream: TcpStream, peer: SocketAddr, live: Arc<Live>) {
    let mut buf = BytesMut::with_capacity(4096);
    let mut session: Option<(String, Arc<Tracks>)> = None;
    let mut channels: HashMap<usize, u8> = HashMap::new();
    let Ok(id) = crate::base::random::bytes::<8>() else {
        tracing::error!("no random session id can be made; closing the RTSP connection");
        return;
    };
    let session_id = crate::base::hex::encode(&id);
    loop {
        let request = loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let _ = buf.split_to(end + 4);
                match parse(&head) {
                    Some(r) => {
                        let len: usize = r
                            .headers
                            .get("content-length")
                            .and_then(|l| l.parse().ok())
                            .unwrap_or(0);
                        if len > MAX_REQUEST {
                            return;
                        }
                        while buf.len() < len {
                            if !matches!(stream.read_buf(&mut buf).await, Ok(n) if n > 0) {
                                return;
                            }
                        }
                        let _ = buf.split_to(len);
                        break r;
                    }
                    None => {
                        let _ = stream
                            .write_all(&response(400, "Bad Request", "0", &[], ""))
                            .await;
                        return;
                    }
                }
            }
            if buf.len() > MAX_REQUEST {
                return;
            }
            match tokio::time::timeout(IDLE, stream.read_buf(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
        };
        let cseq = request
            .headers
            .get("cseq")
            .cloned()
            .unwrap_or_else(|| "0".into());
        let (name, track, query) = target(&request.url);
        let reply = match request.method.as_str() {
            "OPTIONS" => response(
                200,
                "OK",
                &cseq,
                &[(
                    "Public",
                    "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER".into(),
                )],
                "",
            ),
            "DESCRIBE" | "SETUP" | "PLAY" if !authorized(&live, &request, &query, peer) => {
                response(
                    401,
                    "Unauthorized",
                    &cseq,
                    &[("WWW-Authenticate", "Basic realm=\"sited\"".into())],
                    "",
                )
            }
            "DESCRIBE" => match live.hubs.get(&name).and_then(|h| h.tracks()) {
                Some(tracks) => {
                    let body = sdp(&name, &tracks);
                    session = Some((name.clone(), tracks));
                    response(
                        200,
                        "OK",
                        &cseq,
                        &[
                            ("Content-Type", "application/sdp".into()),
                            (
                                "Content-Base",
                                format!("{}/", request.url.split('?').next().unwrap_or("")),
                            ),
                        ],
                        &body,
                    )
                }
                None => response(404, "Not Found", &cseq, &[], ""),
            },
            "SETUP" => {
                let transport = request
                    .headers
                    .get("transport")
                    .cloned()
                    .unwrap_or_default();
                let interleaved = transport
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("interleaved="))
                    .and_then(|r| r.split('-').next()?.parse::<u8>().ok());
                if transport.contains("TCP") {
                    // The client's channel pair, or the next free one.
                    let ch = interleaved.unwrap_or((channels.len() * 2) as u8);
                    channels.insert(track.unwrap_or(0), ch);
                    let transport = format!("RTP/AVP/TCP;unicast;interleaved={}-{}", ch, ch + 1);
                    response(
                        200,
                        "OK",
                        &cseq,
                        &[
                            ("Transport", transport),
                            ("Session", format!("{session_id};timeout=60")),
                        ],
                        "",
                    )
                } else {
                    response(461, "Unsupported Transport", &cseq, &[], "")
                }
            }
            "PLAY" => {
                let Some((name, tracks)) = session.clone() else {
                    let _ = stream
                        .write_all(&response(
                            455,
                            "Method Not Valid In This State",
                            &cseq,
                            &[],
                            "",
                        ))
                        .await;
                    continue;
                };
                let Some(hub) = live.hubs.get(&name) else {
                    return;
                };
                let head = response(
                    200,
                    "OK",
                    &cseq,
                    &[
                        ("Session", session_id.clone()),
                        ("Range", "npt=0.000-".into()),
                    ],
                    "",
                );
                if stream.write_all(&head).await.is_err() {
                    return;
                }
                play(stream, hub.subscribe(), tracks, channels, buf).await;
                return;
            }
            "GET_PARAMETER" | "SET_PARAMETER" => {
                response(200, "OK", &cseq, &[("Session", session_id.clone())], "")
            }
            "TEARDOWN" => {
                let _ = stream.write_all(&response(200, "OK", &cseq, &[], "")).await;
                return;
            }
            _ => response(501, "Not Implemented", &cseq, &[], ""),
        };
        if stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

fn find(buf: &[u8], needle: &[u8]) -> Option<usize> {
    buf.windows(needle.len()).position(|w| w == needle)
}

async fn play(
    stream: TcpStream,
    mut reader: Reader,
    tracks: Arc<Tracks>,
    channels: HashMap<usize, u8>,
    _pending: BytesMut,
) {
    let (mut rd, mut wr) = stream.into_split();
    let mut rtp: HashMap<Kind, Rtp> = HashMap::new();
    for (track, kind) in [(0, Kind::Video), (1, Kind::Audio)] {
        if let Some(&channel) = channels.get(&track) {
            // Random starting values (RFC 3550 §5.1); they protect nothing, so a failed
            // generator leaves them at zero rather than ending the session.
            let r = crate::base::random::bytes::<10>().unwrap_or_default();
            rtp.insert(
                kind,
                Rtp {
                    channel,
                    ssrc: u32::from_be_bytes([r[0], r[1], r[2], r[3]]),
                    seq: u16::from_be_bytes([r[4], r[5]]),
                    base: u32::from_be_bytes([r[6], r[7], r[8], r[9]]),
                },
            );
        }
    }
    let sets = tracks
        .video
        .as_ref()
        .map(|v| parameter_sets(v))
        .unwrap_or_default();
    // Requests after PLAY (keep-alives, TEARDOWN) are read and dropped; a closed socket ends it.
    let mut scratch = [0u8; 1024];
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut waiting_for_key = true;
    loop {
        let item = tokio::select! {
            r = rd.read(&mut scratch) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if find(&scratch[..n], b"TEARDOWN").is_some() {
                        return;
                    }
                    continue;
                }
            },
            item = reader.next() => match item {
                Ok(item) => item,
                Err(_) => return,
            },
        };
        let frame = match item {
            // New parameters: the SDP no longer describes the stream; the player reconnects.
            Item::Tracks(t) if *t != *tracks => return,
            Item::Tracks(_) => continue,
            Item::Frame(f) => f,
        };
        if waiting_for_key && !(frame.kind == Kind::Video && frame.keyframe) {
            continue;
        }
        waiting_for_key = false;
        let Some(r) = rtp.get_mut(&frame.kind) else {
            continue;
        };
        out.clear();
        match (frame.kind, tracks.video.as_ref()) {
            (Kind::Video, Some(v)) => video(&mut out, r, v, &frame, &sets),
            (Kind::Audio, _) => audio(&mut out, r, &frame),
            _ => continue,
        }
        if wr.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Serves RTSP on bound sockets until `stop`.
pub async fn serve(
    sockets: Vec<tokio::net::TcpListener>,
    live: Arc<Live>,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    crate::base::listen::accept_each(
        sockets,
        stop,
        Arc::new(move |stream, peer| Box::pin(connection(stream, peer, live.clone()))),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_stream_the_track_and_the_token() {
        assert_eq!(
            target("rtsp://h:8554/lobby"),
            ("lobby".into(), None, String::new())
        );
        assert_eq!(
            target("rtsp://h:8554/lobby/trackID=1"),
            ("lobby".into(), Some(1), String::new())
        );
        assert_eq!(
            target("rtsp://h:8554/lobby?token=ab"),
            ("lobby".into(), None, "token=ab".into())
        );
    }

    #[test]
    fn large_nal_units_are_fragmented_with_start_and_end_bits() {
        let track = Track {
            codec: Codec::H264,
            timescale: 90_000,
            extra_data: Bytes::new(),
            sample_entry: Bytes::new(),
            rfc6381: String::new(),
            dimensions: (0, 0),
            channels: 0,
        };
        let mut data = vec![0, 0, 0x0b, 0xb9, 0x65];
        data.extend(std::iter::repeat_n(7u8, 3000));
        let frame = Frame {
            kind: Kind::Video,
            seq: 1,
            dts: 90_000,
            composition: 0,
            keyframe: false,
            data: Bytes::from(data),
        };
        let mut rtp = Rtp {
            channel: 0,
            ssrc: 1,
            seq: 0,
            base: 0,
        };
        let mut out = BytesMut::new();
        video(&mut out, &mut rtp, &track, &frame, &[]);
        assert_eq!(rtp.seq, 3, "3000 bytes in 1397-byte pieces");
        // First packet: FU indicator type 28, FU header with the start bit and type 5.
        assert_eq!(&out[16..18], &[0x60 | 28, 0x80 | 5]);
        // The last packet carries the end bit and the marker.
        let mut at = 0;
        let mut last = 0;
        while at < out.len() {
            last = at;
            at += 4 + usize::from(u16::from_be_bytes([out[at + 2], out[at + 3]]));
        }
        assert_eq!(out[last + 5] & 0x80, 0x80);
        assert_eq!(out[last + 17] & 0x40, 0x40);
    }
}
