//! The RTSP server: `rtsp://HOST:PORT/<camera>` re-serves every stream of the node (NovaVMS's
//! go2rtc RTSP server on 8554).
//!
//! It speaks enough of RFC 2326 for players and NVRs, sited itself among them (a camera may be
//! another node's re-serve): OPTIONS, DESCRIBE (an SDP built from the tracks), SETUP of a track
//! the stream has, with RTP over TCP interleaved, PLAY (answered once the next keyframe is at
//! hand, with `RTP-Info`), and keep-alives (OPTIONS, GET_PARAMETER) and TEARDOWN before and
//! after PLAY. A playing session sends RTCP Sender Reports on the odd channels, right after PLAY
//! and every [`SENDER_REPORTS_EVERY`], so that players can sync audio with video. RTP over UDP
//! is refused with 461; players retry over TCP. H.264 and H.265 are packetized
//! after RFC 6184 and RFC 7798 (single NAL units, fragmentation units above [`MTU`]), AAC after
//! RFC 3640 (AAC-hbr). Viewers log in with HTTP Basic or `?token=`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::{BufMut as _, Bytes, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Live;
use super::rtsp_request::{self as request, Bad, Channels, Message, Method, Request, TRACKS};
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
    // A request refused before its CSeq was read is answered without one.
    let mut out = format!("RTSP/1.0 {code} {reason}\r\n");
    if !cseq.is_empty() {
        out.push_str(&format!("CSeq: {cseq}\r\n"));
    }
    out.push_str("Server: sited\r\n");
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

/// One set-up track's RTP state (RFC 3550): its channels, SSRC, sequence number and
/// timestamp offset, and the counts its sender reports carry.
struct Rtp {
    channels: Channels,
    ssrc: u32,
    seq: u16,
    base: u32,
    /// The clock rate, in ticks per second.
    clock: u32,
    /// Packets sent; the counters wrap (RFC 3550 §6.4.1).
    packets: u32,
    /// Payload octets sent.
    octets: u32,
}

impl Rtp {
    /// A track's state, with random SSRC, sequence number and timestamp offset (RFC 3550
    /// §5.1). They protect nothing, so a failed generator leaves them at zero rather than
    /// refusing the SETUP.
    fn new(channels: Channels, clock: u32) -> Rtp {
        let r = crate::base::random::bytes::<10>().unwrap_or_default();
        Rtp {
            channels,
            ssrc: u32::from_be_bytes([r[0], r[1], r[2], r[3]]),
            seq: u16::from_be_bytes([r[4], r[5]]),
            base: u32::from_be_bytes([r[6], r[7], r[8], r[9]]),
            clock,
            packets: 0,
            octets: 0,
        }
    }

    /// The RTP timestamp of a time in this track's clock: RTP time is modulo 2^32 (RFC 3550
    /// §5.1), so the ticks wrap by design.
    fn stamp(&self, ticks: i64) -> u32 {
        (ticks as u32).wrapping_add(self.base)
    }

    /// Appends one interleaved RTP packet; a payload too large for the 16-bit interleaved
    /// length (which fragmentation never makes) is not sent.
    fn packet(&mut self, out: &mut BytesMut, ticks: i64, marker: bool, pt: u8, parts: &[&[u8]]) {
        let payload = parts.iter().map(|p| p.len()).sum::<usize>();
        let Some(len) = payload.checked_add(12).and_then(|l| u16::try_from(l).ok()) else {
            return;
        };
        out.put_u8(b'$');
        out.put_u8(self.channels.rtp());
        out.put_u16(len);
        out.put_u8(0x80);
        out.put_u8(if marker { 0x80 | pt } else { pt });
        out.put_u16(self.seq);
        out.put_u32(self.stamp(ticks));
        out.put_u32(self.ssrc);
        for p in parts {
            out.put_slice(p);
        }
        self.seq = self.seq.wrapping_add(1);
        self.packets = self.packets.wrapping_add(1);
        // payload < u16::MAX, checked above.
        self.octets = self.octets.wrapping_add(payload as u32);
    }

    /// Appends an interleaved RTCP Sender Report (RFC 3550 §6.4.1) saying that `ticks` of
    /// this track's clock is the wall-clock time `now`.
    fn sender_report(&self, out: &mut BytesMut, now: SystemTime, ticks: i64) {
        let (seconds, fraction) = ntp(now);
        out.put_u8(b'$');
        out.put_u8(self.channels.rtcp());
        out.put_u16(28);
        out.put_u8(0x80); // V=2, no padding, no reception report blocks.
        out.put_u8(200); // SR
        out.put_u16(6); // length in 32-bit words, minus one
        out.put_u32(self.ssrc);
        out.put_u32(seconds);
        out.put_u32(fraction);
        out.put_u32(self.stamp(ticks));
        out.put_u32(self.packets);
        out.put_u32(self.octets);
    }
}

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX: u64 = 2_208_988_800;

/// A wall-clock time as NTP seconds and fraction; NTP seconds wrap (era 1 starts in 2036).
fn ntp(t: SystemTime) -> (u32, u32) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs().wrapping_add(NTP_UNIX) as u32;
    // nanos < 10^9, so the fraction is below 2^32.
    let fraction = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds, fraction as u32)
}

/// A time of `timescale` ticks per second in `clock` ticks per second.
fn rescale(ticks: i64, timescale: u32, clock: u32) -> i64 {
    let scaled = i128::from(ticks) * i128::from(clock) / i128::from(timescale.max(1));
    i64::try_from(scaled).unwrap_or(if scaled < 0 { i64::MIN } else { i64::MAX })
}

/// The media clock of a playing session: the time of the last frame sent and when it was
/// sent. Every track's sender reports read it at one instant, so players sync audio and
/// video by them.
#[derive(Clone, Copy)]
struct MediaClock {
    pts: i64,
    timescale: u32,
    at: Instant,
}

impl MediaClock {
    /// The media time at `now` in `clock` ticks per second.
    fn ticks(&self, clock: u32, now: Instant) -> i64 {
        let since = now.saturating_duration_since(self.at);
        let elapsed = since.as_nanos().saturating_mul(u128::from(clock)) / 1_000_000_000;
        rescale(self.pts, self.timescale, clock)
            .saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX))
    }
}

/// Packetizes one video access unit (RFC 6184 / RFC 7798).
fn video(out: &mut BytesMut, rtp: &mut Rtp, track: &Track, frame: &Frame, sets: &ParameterSets) {
    // RTP carries presentation time; B-frames make it differ from decode order.
    let ts = frame.pts();
    let mut nals: Vec<&[u8]> = Vec::new();
    if frame.keyframe {
        nals.extend(sets.in_order().map(|s| s.as_ref()));
    }
    nals.extend(crate::media::nal::units(&frame.data));
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

/// Packetizes one AAC frame (RFC 3640, AAC-hbr, one AU per packet); a frame too large for
/// the 13-bit AU size (AAC frames are far smaller) is not sent.
fn audio(out: &mut BytesMut, rtp: &mut Rtp, frame: &Frame) {
    let Some(size) = u16::try_from(frame.data.len())
        .ok()
        .filter(|s| *s < 1 << 13)
    else {
        return;
    };
    let header = [0x00, 0x10, (size >> 5) as u8, ((size & 0x1f) << 3) as u8];
    rtp.packet(out, frame.pts(), true, 97, &[&header, &frame.data]);
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

/// Reads one request (head and body) into a typed value, skipping interleaved packets:
/// `Ok(None)` when the client closed the connection or took too long, `Err` for a request to
/// refuse with its status.
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
    loop {
        match request::take(buf)? {
            Some(Message::Request(r)) => return Ok(Some(r)),
            Some(Message::Interleaved) => continue,
            None => {}
        }
        let empty = buf.is_empty();
        match tokio::time::timeout_at(deadline, stream.read_buf(buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return Ok(None),
        }
        if empty {
            deadline = Instant::now() + REQUEST_TIMEOUT;
        }
    }
}

/// The methods served, for OPTIONS.
const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER";

/// The track a SETUP names, when the stream has it: `trackID=0` is the video, `trackID=1`
/// the audio, a URL without a track the video. Its index and clock rate; 404 otherwise.
fn track_of(target: &request::Target, tracks: &Tracks) -> Result<(usize, u32), Bad> {
    let index = target.track.unwrap_or(0);
    let track = match index {
        0 => tracks.video.as_ref(),
        1 => tracks.audio.as_ref(),
        _ => None,
    };
    track
        .map(|t| (index, t.timescale))
        .ok_or(Bad(404, "Not Found"))
}

/// The answer to a request that comes once playing, and whether the connection then ends:
/// keep-alives (OPTIONS, GET_PARAMETER, SET_PARAMETER) are answered, TEARDOWN is answered and
/// ends the session, what only fits before PLAY is 455.
fn answer_playing(req: &Request, session_id: &str) -> (Vec<u8>, bool) {
    let session = ("Session", session_id.to_string());
    let cseq = &req.cseq;
    match req.method {
        Method::Options => (
            response(200, "OK", cseq, &[("Public", PUBLIC.into()), session], ""),
            false,
        ),
        Method::Parameter => (response(200, "OK", cseq, &[session], ""), false),
        Method::Teardown => (response(200, "OK", cseq, &[session], ""), true),
        Method::Describe | Method::Setup | Method::Play => (
            response(455, "Method Not Valid In This State", cseq, &[], ""),
            false,
        ),
        Method::Announce | Method::Record | Method::Other => {
            (response(501, "Not Implemented", cseq, &[], ""), false)
        }
    }
}

/// How long PLAY waits for the stream's next keyframe before answering 503.
pub const KEYFRAME_WAIT: Duration = Duration::from_secs(10);

/// The first video keyframe a new reader gets (the hub's GOP cache starts with it).
async fn first_keyframe(reader: &mut Reader, tracks: &Tracks) -> Option<Arc<Frame>> {
    let wait = async {
        loop {
            match reader.next().await {
                Ok(Item::Frame(f)) if f.kind == Kind::Video && f.keyframe => return Some(f),
                Ok(Item::Tracks(t)) if *t != *tracks => return None,
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    };
    tokio::time::timeout(KEYFRAME_WAIT, wait)
        .await
        .ok()
        .flatten()
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
    let mut set_up: [Option<SetUp>; TRACKS] = [None, None];
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
                let _ = stream.write_all(&response(code, reason, "", &[], "")).await;
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
        let not_valid = || response(455, "Method Not Valid In This State", &cseq, &[], "");
        let reply = match request.method {
            Method::Options => response(200, "OK", &cseq, &[("Public", PUBLIC.into())], ""),
            Method::Describe => match match live.hubs.get(&name) {
                // A relayed camera starts on demand: DESCRIBE waits for its tracks.
                Some(hub) => hub.ready(crate::media::hub::READY).await,
                None => None,
            } {
                Some(tracks) => {
                    let body = sdp(&name, &tracks);
                    session = Some((name.clone(), tracks));
                    set_up = [None, None];
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
            Method::Setup if setups >= MAX_SETUPS => not_valid(),
            Method::Setup => {
                // A SETUP without DESCRIBE names its stream; one session plays one stream.
                if session.is_none() {
                    session = live
                        .hubs
                        .get(&name)
                        .and_then(|h| h.tracks())
                        .map(|t| (name.clone(), t));
                }
                let header = request.headers.get("transport").map_or("", String::as_str);
                match &session {
                    None => response(404, "Not Found", &cseq, &[], ""),
                    Some((described, _)) if *described != name => not_valid(),
                    Some((_, tracks)) => match track_of(&target, tracks)
                        .and_then(|t| Ok((t, request::transport(header)?)))
                    {
                        Ok(((track, clock), asked)) => {
                            setups += 1;
                            // The client's channel pair, or the track's own: 0-1 video, 2-3 audio.
                            let pair = asked.unwrap_or(Channels::of_track(track));
                            let rtp = Rtp::new(pair, clock);
                            let transport = format!(
                                "RTP/AVP/TCP;unicast;interleaved={};ssrc={:08X}",
                                pair.header(),
                                rtp.ssrc
                            );
                            set_up[track] = Some(SetUp {
                                rtp,
                                url: request.url.split('?').next().unwrap_or("").to_string(),
                            });
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
                    },
                }
            }
            Method::Play => {
                let Some((name, tracks)) = session
                    .clone()
                    .filter(|_| set_up.iter().any(Option::is_some))
                else {
                    if write_parts(&mut stream, &[&not_valid()]).await.is_err() {
                        return;
                    }
                    continue;
                };
                let Some(hub) = live.hubs.get(&name) else {
                    let reply = response(404, "Not Found", &cseq, &[], "");
                    if write_parts(&mut stream, &[&reply]).await.is_err() {
                        return;
                    }
                    continue;
                };
                let mut reader = hub.subscribe();
                let Some(first) = first_keyframe(&mut reader, &tracks).await else {
                    let reply = response(503, "Service Unavailable", &cseq, &[], "");
                    if write_parts(&mut stream, &[&reply]).await.is_err() {
                        return;
                    }
                    continue;
                };
                let set_up = std::mem::take(&mut set_up);
                let head = response(
                    200,
                    "OK",
                    &cseq,
                    &[
                        ("Session", session_id.clone()),
                        ("Range", "npt=0.000-".into()),
                        ("RTP-Info", rtp_info(&set_up, &first, &tracks)),
                    ],
                    "",
                );
                if write_parts(&mut stream, &[&head]).await.is_err() {
                    return;
                }
                let playing = Playing {
                    reader,
                    tracks,
                    set_up,
                    session_id,
                };
                playing.run(stream, buf, first).await;
                return;
            }
            Method::Parameter => response(200, "OK", &cseq, &[("Session", session_id.clone())], ""),
            Method::Teardown => {
                let _ = write_parts(&mut stream, &[&response(200, "OK", &cseq, &[], "")]).await;
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

/// One track set up by SETUP: its RTP state and the URL it was set up with (RTP-Info names it).
struct SetUp {
    rtp: Rtp,
    url: String,
}

/// The time of `frame` in `clock` ticks per second.
fn ticks_in(frame: &Frame, tracks: &Tracks, clock: u32) -> i64 {
    let timescale = match frame.kind {
        Kind::Video => tracks.video.as_ref().map_or(clock, |t| t.timescale),
        Kind::Audio => tracks.audio.as_ref().map_or(clock, |t| t.timescale),
    };
    rescale(frame.pts(), timescale, clock)
}

/// The `RTP-Info` of a PLAY response (RFC 2326 §12.33): for each track set up, the sequence
/// number and RTP time of the instant playing starts at, the first keyframe's. Every track
/// names the same instant, so a player lines audio up with video from the first packet.
fn rtp_info(set_up: &[Option<SetUp>; TRACKS], first: &Frame, tracks: &Tracks) -> String {
    set_up
        .iter()
        .flatten()
        .map(|s| {
            let start = s.rtp.stamp(ticks_in(first, tracks, s.rtp.clock));
            format!("url={};seq={};rtptime={start}", s.url, s.rtp.seq)
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// How often a playing session sends RTCP Sender Reports, besides one right after PLAY.
pub const SENDER_REPORTS_EVERY: Duration = Duration::from_secs(5);

/// A session once PLAY is answered.
struct Playing {
    reader: Reader,
    tracks: Arc<Tracks>,
    set_up: [Option<SetUp>; TRACKS],
    session_id: String,
}

impl Playing {
    /// Sends the stream from `first` (a keyframe) on, with sender reports, and answers the
    /// client's requests, until TEARDOWN, a closed socket, a new set of tracks, or a viewer too
    /// slow.
    async fn run(mut self, stream: TcpStream, mut input: BytesMut, first: Arc<Frame>) {
        let (mut rd, mut wr) = stream.into_split();
        let sets = self
            .tracks
            .video
            .as_ref()
            .and_then(|v| ParameterSets::of_track(v).ok())
            .unwrap_or_default();
        let video_timescale = self.tracks.video.as_ref().map_or(90_000, |v| v.timescale);
        let start = first.pts();
        let mut clock = MediaClock {
            pts: start,
            timescale: video_timescale,
            at: Instant::now(),
        };
        let mut out = BytesMut::with_capacity(64 * 1024);
        self.sender_reports(&mut out, &clock);
        if write_parts(&mut wr, &[&out]).await.is_err() {
            return;
        }
        let mut reports =
            tokio::time::interval_at(Instant::now() + SENDER_REPORTS_EVERY, SENDER_REPORTS_EVERY);
        let mut next = Some(Item::Frame(first));
        loop {
            let item = match next.take() {
                Some(item) => item,
                None => tokio::select! {
                    r = rd.read_buf(&mut input) => match r {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {
                            out.clear();
                            let close = self.answer(&mut input, &mut out);
                            if write_parts(&mut wr, &[&out]).await.is_err() || close {
                                return;
                            }
                            continue;
                        }
                    },
                    _ = reports.tick() => {
                        out.clear();
                        self.sender_reports(&mut out, &clock);
                        if write_parts(&mut wr, &[&out]).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    item = self.reader.next() => match item {
                        Ok(item) => item,
                        Err(_) => return,
                    },
                },
            };
            let frame = match item {
                // New parameters: the SDP no longer describes the stream; the player reconnects.
                Item::Tracks(t) if *t != *self.tracks => return,
                Item::Tracks(_) => continue,
                Item::Frame(f) => f,
            };
            let index = match frame.kind {
                Kind::Video => 0,
                Kind::Audio => 1,
            };
            let Some(s) = self.set_up[index].as_mut() else {
                continue;
            };
            // Audio from before the instant RTP-Info names is not sent.
            let timescale = match frame.kind {
                Kind::Video => video_timescale,
                Kind::Audio => self.tracks.audio.as_ref().map_or(1, |a| a.timescale),
            };
            if frame.kind == Kind::Audio && rescale(frame.pts(), timescale, video_timescale) < start
            {
                continue;
            }
            clock = MediaClock {
                pts: frame.pts(),
                timescale,
                at: Instant::now(),
            };
            out.clear();
            match (frame.kind, self.tracks.video.as_ref()) {
                (Kind::Video, Some(v)) => video(&mut out, &mut s.rtp, v, &frame, &sets),
                (Kind::Audio, _) => audio(&mut out, &mut s.rtp, &frame),
                _ => continue,
            }
            // A viewer that accepts nothing for writev::WRITE_TIMEOUT is dropped.
            if write_parts(&mut wr, &[&out]).await.is_err() {
                return;
            }
        }
    }

    /// Appends a sender report for every track set up, all at one instant.
    fn sender_reports(&self, out: &mut BytesMut, clock: &MediaClock) {
        let (wall, now) = (SystemTime::now(), Instant::now());
        for s in self.set_up.iter().flatten() {
            s.rtp
                .sender_report(out, wall, clock.ticks(s.rtp.clock, now));
        }
    }

    /// Appends the answers to the whole requests in `input`; true when the connection ends
    /// (TEARDOWN, or a request refused outright).
    fn answer(&self, input: &mut BytesMut, out: &mut BytesMut) -> bool {
        loop {
            match request::take(input) {
                Ok(None) => return false,
                Ok(Some(Message::Interleaved)) => {}
                Ok(Some(Message::Request(req))) => {
                    let (reply, close) = answer_playing(&req, &self.session_id);
                    out.put_slice(&reply);
                    if close {
                        return true;
                    }
                }
                Err(Bad(code, reason)) => {
                    out.put_slice(&response(code, reason, "", &[], ""));
                    return true;
                }
            }
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
        let track = Track::bare(Codec::H264);
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
        let mut rtp = Rtp::new(Channels::of_track(0), 90_000);
        rtp.seq = 0;
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

    fn request(text: &str) -> Request {
        let mut buf = BytesMut::from(text.as_bytes());
        match request::take(&mut buf) {
            Ok(Some(Message::Request(r))) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn requests_after_play_are_answered() {
        for (text, code, close) in [
            (
                "OPTIONS rtsp://h/cam/ RTSP/1.0\r\nCSeq: 7\r\n\r\n",
                "200 OK",
                false,
            ),
            (
                "GET_PARAMETER rtsp://h/cam/ RTSP/1.0\r\nCSeq: 7\r\nSession: s1\r\n\r\n",
                "200 OK",
                false,
            ),
            (
                "SET_PARAMETER rtsp://h/cam/ RTSP/1.0\r\nCSeq: 7\r\n\r\n",
                "200 OK",
                false,
            ),
            (
                "TEARDOWN rtsp://h/cam/ RTSP/1.0\r\nCSeq: 7\r\n\r\n",
                "200 OK",
                true,
            ),
            (
                "SETUP rtsp://h/cam/trackID=1 RTSP/1.0\r\nCSeq: 7\r\n\r\n",
                "455 ",
                false,
            ),
            (
                "RECORD rtsp://h/cam/ RTSP/1.0\r\nCSeq: 7\r\n\r\n",
                "501 ",
                false,
            ),
        ] {
            let (reply, closes) = answer_playing(&request(text), "s1");
            let reply = String::from_utf8(reply).unwrap();
            assert!(
                reply.starts_with(&format!("RTSP/1.0 {code}")),
                "{text}: {reply}"
            );
            assert!(reply.contains("\r\nCSeq: 7\r\n"), "{reply}");
            assert_eq!(closes, close, "{text}");
        }
    }

    #[test]
    fn a_setup_names_a_track_the_stream_has() {
        let video = Arc::new(Track::bare(Codec::H264));
        let audio = Arc::new(Track {
            codec: Codec::Aac,
            timescale: 16_000,
            channels: 1,
            ..(*video).clone()
        });
        let silent = Tracks {
            video: Some(video.clone()),
            audio: None,
        };
        let talking = Tracks {
            video: Some(video),
            audio: Some(audio),
        };
        let target = |url| request::target(url).unwrap();
        assert_eq!(track_of(&target("rtsp://h/cam"), &silent), Ok((0, 90_000)));
        assert_eq!(
            track_of(&target("rtsp://h/cam/trackID=1"), &talking),
            Ok((1, 16_000))
        );
        assert_eq!(
            track_of(&target("rtsp://h/cam/trackID=1"), &silent)
                .unwrap_err()
                .0,
            404
        );
    }

    #[test]
    fn sender_reports_map_wall_clock_to_rtp_time() {
        let mut rtp = Rtp::new(Channels::starting_at(4).unwrap(), 16_000);
        rtp.base = u32::MAX - 10;
        let mut out = BytesMut::new();
        rtp.packet(&mut out, 0, true, 97, &[&[1, 2, 3]]);
        out.clear();
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        rtp.sender_report(&mut out, t, 16_000);
        assert_eq!(&out[..4], &[b'$', 5, 0, 28], "on the RTCP channel");
        assert_eq!(&out[4..8], &[0x80, 200, 0, 6]);
        let word = |i: usize| u32::from_be_bytes(out[i..i + 4].try_into().unwrap());
        assert_eq!(word(8), rtp.ssrc);
        assert_eq!(word(12), (1_700_000_000 + NTP_UNIX) as u32);
        assert_eq!(word(16), 1 << 31, "half a second");
        assert_eq!(word(20), 16_000 - 11, "the timestamp wraps");
        assert_eq!((word(24), word(28)), (1, 3), "packets and payload octets");
        // Every track's report names the same instant.
        let clock = MediaClock {
            pts: 180_000,
            timescale: 90_000,
            at: Instant::now(),
        };
        let later = clock.at + Duration::from_millis(500);
        assert_eq!(clock.ticks(16_000, later), 40_000);
        assert_eq!(clock.ticks(90_000, later), 225_000);
    }
}
