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
use tokio::time::Instant;

use super::Live;
use super::rtsp_request::{self as request, Bad, Channels, MAX_REQUEST, Method, Request, TRACKS};
use super::writev::write_parts;
use crate::auth::Credentials;
use crate::base::admission::Ticket;
use crate::media::frame::{Codec, Frame, Kind, Track, Tracks};
use crate::media::hub::{Item, Reader};
use crate::media::sample_entry::ParameterSets;

/// The largest RTP payload sent; larger NAL units are fragmented.
pub const MTU: usize = 1400;
/// How long a client may stay silent between requests before PLAY.
pub const IDLE: Duration = Duration::from_secs(60);
/// How long one request may take to arrive, from its first byte to the end of its body.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may go on without logging in.
pub const LOGIN_WITHIN: Duration = Duration::from_secs(30);
/// The most SETUP requests one connection may have granted (a stream has two tracks).
pub const MAX_SETUPS: usize = 4;

/// A response with its headers and body.
pub fn response(
    code: u16,
    reason: &str,
    cseq: &str,
    extra: &[(&str, String)],
    body: &str,
) -> Vec<u8> {
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

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The SDP of a stream: track 0 is video, track 1 audio.
fn sdp(name: &str, tracks: &Tracks) -> String {
    let mut out = format!(
        "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns={name}\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=control:*\r\n"
    );
    if let Some(v) = &tracks.video {
        // Sources check their records before a track reaches the hub.
        let sets = ParameterSets::of_track(v).unwrap_or_default();
        let joined = |units: &[Bytes]| units.iter().map(|n| b64(n)).collect::<Vec<_>>().join(",");
        out.push_str("m=video 0 RTP/AVP 96\r\n");
        match v.codec {
            Codec::H265 => {
                out.push_str(&format!("a=rtpmap:96 H265/90000\r\na=fmtp:96 sprop-vps={};sprop-sps={};sprop-pps={}\r\n", joined(&sets.vps), joined(&sets.sps), joined(&sets.pps)));
            }
            _ => {
                let profile = v
                    .extra_data
                    .get(1..4)
                    .map(|p| format!("{:02X}{:02X}{:02X}", p[0], p[1], p[2]))
                    .unwrap_or_else(|| "42E01F".into());
                let sprop = sets
                    .in_order()
                    .map(|n| b64(n))
                    .collect::<Vec<_>>()
                    .join(",");
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
fn video(out: &mut BytesMut, rtp: &mut Rtp, track: &Track, frame: &Frame, sets: &ParameterSets) {
    // RTP carries presentation time; B-frames make it differ from decode order.
    let ts = frame.pts() as u32;
    let mut nals: Vec<&[u8]> = Vec::new();
    if frame.keyframe {
        nals.extend(sets.in_order().map(|s| s.as_ref()));
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

/// Reads one request (head and body) into a typed value: `Ok(None)` when the client closed
/// the connection or took too long, `Err` for a request to refuse with its status.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    idle_until: Instant,
) -> Result<Option<Request>, Bad> {
    // Until the first byte, the client may idle; from it, the request has REQUEST_TIMEOUT.
    let mut deadline = if buf.is_empty() {
        idle_until
    } else {
        Instant::now() + REQUEST_TIMEOUT
    };
    let (head_end, req) = loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).map_err(|_| Bad(400, "Bad Request"))?;
            break (end + 4, request::parse(head)?);
        }
        if buf.len() > MAX_REQUEST {
            return Err(Bad(413, "Request Entity Too Large"));
        }
        let empty = buf.is_empty();
        match tokio::time::timeout_at(deadline, stream.read_buf(buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return Ok(None),
        }
        if empty {
            deadline = Instant::now() + REQUEST_TIMEOUT;
        }
    };
    while buf.len() < head_end + req.content_length {
        match tokio::time::timeout_at(deadline, stream.read_buf(buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return Ok(None),
        }
    }
    let _ = buf.split_to(head_end + req.content_length);
    Ok(Some(req))
}

/// Serves one RTSP connection until TEARDOWN, a closed socket, an error, or a client that
/// does not log in within [`LOGIN_WITHIN`].
pub async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    live: Arc<Live>,
    ticket: Arc<Ticket>,
) {
    let connected = Instant::now();
    let mut buf = BytesMut::with_capacity(4096);
    let mut session: Option<(String, Arc<Tracks>)> = None;
    let mut channels: [Option<Channels>; TRACKS] = [None; TRACKS];
    let mut setups = 0usize;
    let Ok(id) = crate::base::random::bytes::<8>() else {
        tracing::error!("no random session id can be made; closing the RTSP connection");
        return;
    };
    let session_id = crate::base::hex::encode(&id);
    loop {
        let idle_until = match ticket.is_pending() {
            true => (Instant::now() + IDLE).min(connected + LOGIN_WITHIN),
            false => Instant::now() + IDLE,
        };
        let request = match read_request(&mut stream, &mut buf, idle_until).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(Bad(code, reason)) => {
                let _ = stream
                    .write_all(&response(code, reason, "0", &[], ""))
                    .await;
                return;
            }
        };
        let cseq = request.cseq.clone();
        let target = match (&request.method, &request.target) {
            (_, Ok(t)) => t.clone(),
            (Method::Describe | Method::Setup | Method::Play, Err(Bad(code, reason))) => {
                let reply = response(*code, reason, &cseq, &[], "");
                if write_parts(&mut stream, &[&reply]).await.is_err() {
                    return;
                }
                continue;
            }
            (_, Err(_)) => request::Target::default(),
        };
        let name = target.name.clone();
        let needs_login = matches!(
            request.method,
            Method::Describe | Method::Setup | Method::Play
        );
        if needs_login {
            if !authorized(&live, &request, &target.query, peer) {
                let reply = response(
                    401,
                    "Unauthorized",
                    &cseq,
                    &[("WWW-Authenticate", "Basic realm=\"sited\"".into())],
                    "",
                );
                if write_parts(&mut stream, &[&reply]).await.is_err() {
                    return;
                }
                continue;
            }
            ticket.authenticated();
        }
        let reply = match request.method {
            Method::Options => response(
                200,
                "OK",
                &cseq,
                &[(
                    "Public",
                    "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER".into(),
                )],
                "",
            ),
            Method::Describe => match match live.hubs.get(&name) {
                // A relayed camera starts on demand: DESCRIBE waits for its tracks.
                Some(hub) => hub.ready(crate::media::hub::READY).await,
                None => None,
            } {
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
            Method::Setup if setups >= MAX_SETUPS => {
                response(455, "Method Not Valid In This State", &cseq, &[], "")
            }
            Method::Setup => {
                let track = target.track.unwrap_or(0);
                let header = request.headers.get("transport").map_or("", String::as_str);
                match request::transport(header) {
                    Ok(asked) => {
                        setups += 1;
                        // The client's channel pair, or the track's own: 0-1 video, 2-3 audio.
                        let pair = asked.unwrap_or(Channels::of_track(track));
                        channels[track] = Some(pair);
                        let transport =
                            format!("RTP/AVP/TCP;unicast;interleaved={}", pair.header());
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
                    }
                    Err(Bad(code, reason)) => response(code, reason, &cseq, &[], ""),
                }
            }
            Method::Play => {
                let Some((name, tracks)) = session.clone() else {
                    let reply = response(455, "Method Not Valid In This State", &cseq, &[], "");
                    if stream.write_all(&reply).await.is_err() {
                        return;
                    }
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
                drop(buf);
                play(stream, hub.subscribe(), tracks, channels).await;
                return;
            }
            Method::Parameter => response(200, "OK", &cseq, &[("Session", session_id.clone())], ""),
            Method::Teardown => {
                let _ = stream.write_all(&response(200, "OK", &cseq, &[], "")).await;
                return;
            }
            Method::Announce | Method::Record | Method::Other => {
                response(501, "Not Implemented", &cseq, &[], "")
            }
        };
        if write_parts(&mut stream, &[&reply]).await.is_err() {
            return;
        }
    }
}

/// Where `needle` first occurs in `buf`.
pub fn find(buf: &[u8], needle: &[u8]) -> Option<usize> {
    buf.windows(needle.len()).position(|w| w == needle)
}

async fn play(
    stream: TcpStream,
    mut reader: Reader,
    tracks: Arc<Tracks>,
    channels: [Option<Channels>; TRACKS],
) {
    let (mut rd, mut wr) = stream.into_split();
    let mut rtp: HashMap<Kind, Rtp> = HashMap::new();
    for (track, kind) in [(0, Kind::Video), (1, Kind::Audio)] {
        if let Some(pair) = channels[track] {
            // Random starting values (RFC 3550 §5.1); they protect nothing, so a failed
            // generator leaves them at zero rather than ending the session.
            let r = crate::base::random::bytes::<10>().unwrap_or_default();
            rtp.insert(
                kind,
                Rtp {
                    channel: pair.rtp(),
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
        .and_then(|v| ParameterSets::of_track(v).ok())
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
        // A viewer that accepts nothing for writev::WRITE_TIMEOUT is dropped.
        if write_parts(&mut wr, &[&out]).await.is_err() {
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
        Arc::new(move |stream, peer, ticket| {
            Box::pin(connection(stream, peer, live.clone(), ticket))
        }),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

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
        video(
            &mut out,
            &mut rtp,
            &track,
            &frame,
            &ParameterSets::default(),
        );
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
