//! Cameras that push: RTSP ANNOUNCE and RECORD to `rtsp://NODE:554/<camera>` (NovaVMS's
//! "Camera -> gateway" port), into the camera's hub like any pulled camera.
//!
//! - A camera with `push = true` has a [`Slot`] in [`PushCameras`] while it is in the plan; the
//!   slot holds its credentials and whether a publisher is live.
//! - Each of ANNOUNCE, SETUP and RECORD needs HTTP Digest with the camera's own user and the
//!   password read from its file ([`digest`]); Basic is never accepted (no TLS on this port). An
//!   unknown camera gets 404, wrong credentials 401; both are logged with the source address.
//! - One publisher per camera: a second ANNOUNCE while one is live gets 455.
//! - Media: H.264 or H.265 video ([`video`]) and AAC audio ([`aac`]) over RTP interleaved in
//!   the TCP connection; other media are accepted and left out. UDP is refused with 461. Audio is
//!   placed against video by the arrival of each stream's first packet.
//! - A publisher that sends nothing for [`STALL`] is cut off; when it goes, the hub is cleared
//!   and the camera shows `failed` until it pushes again.

pub mod aac;
pub mod digest;
pub mod sdp;
pub mod video;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::frame::{Codec, Kind, Track, Tracks};
use super::hub::{Hub, Hubs};
use super::ingest::{CameraState, Statuses, update};
use super::output::rtsp::{find, response};
use super::output::rtsp_request::{Method, Request, parse};
use crate::base::Error;
use crate::config::Camera;

/// A publisher silent this long is cut off.
pub const STALL: Duration = super::ingest::STALL;
/// How long a connection may take to reach RECORD.
pub const SETUP_TIME: Duration = Duration::from_secs(20);
/// The largest request (with its SDP) or interleaved packet accepted.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// A camera that may push, while it is in the plan.
#[derive(Debug)]
pub struct Slot {
    /// Its entry: name, user, password file.
    pub camera: Camera,
    /// Cancelled when the camera leaves the plan or changes.
    pub stop: CancellationToken,
    live: AtomicBool,
}

impl Slot {
    /// A slot for a camera, stopped by `stop`.
    pub fn new(camera: Camera, stop: CancellationToken) -> Slot {
        Slot {
            camera,
            stop,
            live: AtomicBool::new(false),
        }
    }
}

/// The cameras of the node that may push, by name.
pub type PushCameras = Arc<RwLock<BTreeMap<String, Arc<Slot>>>>;

/// What the push server reads.
pub struct PushContext {
    /// The node's hubs.
    pub hubs: Arc<Hubs>,
    /// The cameras that may push.
    pub cameras: PushCameras,
    /// The cameras' status.
    pub status: Statuses,
}

/// The live publisher of a slot; dropping it frees the slot.
struct Claim(Arc<Slot>);

impl Claim {
    fn take(slot: &Arc<Slot>) -> Option<Claim> {
        slot.live
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Claim(slot.clone()))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.live.store(false, Ordering::Release);
    }
}

/// One message of the connection.
#[derive(Debug)]
pub enum Message {
    /// An RTSP request, with its body.
    Request(Request, Vec<u8>),
    /// An interleaved packet: its channel and payload.
    Interleaved(u8, Vec<u8>),
}

/// Takes the next whole message from `buf`; `Ok(None)` when more bytes are needed.
pub fn next_message(buf: &mut BytesMut) -> Result<Option<Message>, Error> {
    if buf.first() == Some(&b'$') {
        if buf.len() < 4 {
            return Ok(None);
        }
        let (channel, len) = (buf[1], usize::from(u16::from_be_bytes([buf[2], buf[3]])));
        if buf.len() < 4 + len {
            return Ok(None);
        }
        buf.advance(4);
        return Ok(Some(Message::Interleaved(
            channel,
            buf.split_to(len).to_vec(),
        )));
    }
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_MESSAGE {
            Err(crate::err!(ResourceExhausted, "a request head over 64 KiB"))
        } else {
            Ok(None)
        };
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let request =
        parse(&head).map_err(|b| crate::err!(Invalid, "a bad request ({} {})", b.0, b.1))?;
    let len: usize = request
        .headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    if len > MAX_MESSAGE {
        crate::bail!(ResourceExhausted, "a request body over 64 KiB");
    }
    if buf.len() < end + 4 + len {
        return Ok(None);
    }
    buf.advance(end + 4);
    Ok(Some(Message::Request(request, buf.split_to(len).to_vec())))
}

/// The camera name of a push URL: `rtsp://host[:port]/<camera>[/<track>]`.
fn camera_of(url: &str) -> &str {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    path.split(['/', '?']).next().unwrap_or("")
}

struct Session {
    slot: Arc<Slot>,
    _claim: Claim,
    media: Vec<sdp::Media>,
    /// Interleaved RTP channel → media index.
    channels: HashMap<u8, usize>,
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    buf: BytesMut,
    nonce: String,
    session_id: String,
    ctx: Arc<PushContext>,
}

impl Connection {
    async fn read(&mut self, limit: Duration) -> Result<Message, Error> {
        loop {
            if let Some(m) = next_message(&mut self.buf)? {
                return Ok(m);
            }
            match tokio::time::timeout(limit, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => {
                    crate::bail!(
                        DeadlineExceeded,
                        "nothing received for {} s",
                        limit.as_secs()
                    )
                }
                Ok(Ok(0)) => crate::bail!(Unavailable, "the publisher closed the connection"),
                Ok(Err(e)) => return Err(e.into()),
                Ok(Ok(_)) => {}
            }
        }
    }

    async fn reply(&mut self, bytes: Vec<u8>) -> Result<(), Error> {
        Ok(self.stream.write_all(&bytes).await?)
    }

    /// Whether the request carries the camera's Digest credentials; answers 401 if not.
    async fn authorized(
        &mut self,
        request: &Request,
        slot: &Slot,
        cseq: &str,
    ) -> Result<bool, Error> {
        let camera = &slot.camera;
        let password = camera
            .password_file
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string());
        let header = request.headers.get("authorization");
        let ok = match (header, &camera.username, &password) {
            (Some(h), Some(user), Some(pw)) => {
                digest::verify(h, request.method.as_str(), &self.nonce, user, pw)
            }
            _ => false,
        };
        if ok {
            return Ok(true);
        }
        if header.is_some() {
            tracing::warn!(camera = %camera.name, peer = %self.peer, "push refused: wrong credentials");
        }
        if password.is_none() {
            tracing::warn!(camera = %camera.name, "push refused: the camera's password file cannot be read");
        }
        let challenge = digest::challenge(&self.nonce);
        self.reply(response(
            401,
            "Unauthorized",
            cseq,
            &[("WWW-Authenticate", challenge)],
            "",
        ))
        .await?;
        Ok(false)
    }

    fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        self.ctx.cameras.read().ok()?.get(name).cloned()
    }
}

/// Serves one pushing camera's connection; its admission `ticket` counts as logged in once
/// the camera's Digest credentials check out.
pub async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<PushContext>,
    ticket: Arc<crate::base::admission::Ticket>,
) {
    let (Ok(nonce), Ok(id)) = (
        crate::base::random::bytes::<16>(),
        crate::base::random::bytes::<8>(),
    ) else {
        tracing::error!("no random nonce can be made; closing the push connection");
        return;
    };
    let mut c = Connection {
        stream,
        peer,
        buf: BytesMut::with_capacity(8192),
        nonce: crate::base::hex::encode(&nonce),
        session_id: crate::base::hex::encode(&id),
        ctx,
    };
    let deadline = Instant::now() + SETUP_TIME;
    let mut session: Option<Session> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Message::Request(request, body)) = c.read(left).await else {
            return;
        };
        let cseq = request
            .headers
            .get("cseq")
            .cloned()
            .unwrap_or_else(|| "0".into());
        let name = camera_of(&request.url).to_string();
        let reply = match request.method.as_str() {
            "OPTIONS" => response(
                200,
                "OK",
                &cseq,
                &[(
                    "Public",
                    "OPTIONS, ANNOUNCE, SETUP, RECORD, TEARDOWN".into(),
                )],
                "",
            ),
            "ANNOUNCE" | "SETUP" | "RECORD" => {
                let Some(slot) = c.slot(&name) else {
                    tracing::warn!(camera = %name, peer = %c.peer, "push refused: no camera of this node pushes under this name");
                    let _ = c.reply(response(404, "Not Found", &cseq, &[], "")).await;
                    return;
                };
                if !matches!(c.authorized(&request, &slot, &cseq).await, Ok(true)) {
                    continue;
                }
                ticket.authenticated();
                match request.method.as_str() {
                    "ANNOUNCE" => match Claim::take(&slot) {
                        None => {
                            tracing::warn!(camera = %name, peer = %c.peer, "push refused: another publisher is live");
                            response(455, "Method Not Valid In This State", &cseq, &[], "")
                        }
                        Some(claim) => {
                            let media = sdp::parse(&String::from_utf8_lossy(&body));
                            if !media.iter().any(|m| video_codec(m).is_some()) {
                                response(415, "Unsupported Media Type", &cseq, &[], "")
                            } else {
                                session = Some(Session {
                                    slot,
                                    _claim: claim,
                                    media,
                                    channels: HashMap::new(),
                                });
                                response(200, "OK", &cseq, &[], "")
                            }
                        }
                    },
                    "SETUP" => setup(&request, &cseq, session.as_mut(), &c.session_id),
                    _ => {
                        let Some(s) = session.take() else {
                            let _ = c
                                .reply(response(
                                    455,
                                    "Method Not Valid In This State",
                                    &cseq,
                                    &[],
                                    "",
                                ))
                                .await;
                            return;
                        };
                        let ok =
                            response(200, "OK", &cseq, &[("Session", c.session_id.clone())], "");
                        if c.reply(ok).await.is_err() {
                            return;
                        }
                        record(c, s).await;
                        return;
                    }
                }
            }
            "TEARDOWN" => {
                let _ = c.reply(response(200, "OK", &cseq, &[], "")).await;
                return;
            }
            _ => response(501, "Not Implemented", &cseq, &[], ""),
        };
        if c.reply(reply).await.is_err() {
            return;
        }
    }
}

fn setup(request: &Request, cseq: &str, session: Option<&mut Session>, id: &str) -> Vec<u8> {
    let Some(s) = session else {
        return response(455, "Method Not Valid In This State", cseq, &[], "");
    };
    let Some(index) = sdp::find(&s.media, &request.url) else {
        return response(404, "Not Found", cseq, &[], "");
    };
    let transport = request
        .headers
        .get("transport")
        .cloned()
        .unwrap_or_default();
    let channel = transport
        .split(';')
        .find_map(|p| p.trim().strip_prefix("interleaved="))
        .and_then(|r| r.split('-').next()?.parse::<u8>().ok());
    let Some(channel) = channel.filter(|_| transport.to_ascii_uppercase().contains("TCP")) else {
        return response(461, "Unsupported Transport", cseq, &[], "");
    };
    s.channels.insert(channel, index);
    response(
        200,
        "OK",
        cseq,
        &[
            (
                "Transport",
                format!(
                    "RTP/AVP/TCP;unicast;interleaved={}-{};mode=record",
                    channel,
                    channel.wrapping_add(1)
                ),
            ),
            ("Session", format!("{id};timeout=60")),
        ],
        "",
    )
}

/// The fields of an RTP packet: sequence number, timestamp, marker, payload.
pub fn rtp(packet: &[u8]) -> Option<(u16, u32, bool, &[u8])> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    let csrc = usize::from(packet[0] & 0x0f) * 4;
    let mut start = 12 + csrc;
    if packet[0] & 0x10 != 0 {
        let ext = packet.get(start + 2..start + 4)?;
        start += 4 + usize::from(u16::from_be_bytes([ext[0], ext[1]])) * 4;
    }
    let mut end = packet.len();
    if packet[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*packet.last()?))?;
    }
    let payload = packet.get(start..end)?;
    let seq = u16::from_be_bytes([packet[2], packet[3]]);
    let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
    Some((seq, ts, packet[1] & 0x80 != 0, payload))
}

/// The video codec of an SDP media section that sited takes.
fn video_codec(m: &sdp::Media) -> Option<Codec> {
    match (m.kind.as_str(), m.encoding.as_str()) {
        ("video", "h264") => Some(Codec::H264),
        ("video", "h265") => Some(Codec::H265),
        _ => None,
    }
}

/// One RTP clock mapped onto the hub's decode time: the first packet starts at `start` (its
/// arrival against the stream's first packet, in the track's timescale); later ones follow
/// their timestamps, unwrapped past 2^32.
struct Clock {
    last: Option<(u32, i64)>,
}

impl Clock {
    fn dts(&mut self, timestamp: u32, start: impl FnOnce() -> i64) -> i64 {
        let (last_ts, last_dts) = *self.last.get_or_insert_with(|| (timestamp, start()));
        let dts = last_dts + i64::from(timestamp.wrapping_sub(last_ts) as i32);
        self.last = Some((timestamp, dts));
        dts
    }
}

/// What a session's media become in the hub.
struct Streams {
    video: Option<(usize, video::Depacketizer)>,
    audio: Option<(usize, Arc<Track>)>,
    video_clock: Clock,
    audio_clock: Clock,
    started: Option<Instant>,
}

impl Streams {
    fn new(media: &[sdp::Media], camera: &str) -> Streams {
        let video = media.iter().enumerate().find_map(|(i, m)| {
            let codec = video_codec(m)?;
            let sprops: Vec<&str> = match codec {
                Codec::H265 => ["sprop-vps", "sprop-sps", "sprop-pps"]
                    .iter()
                    .filter_map(|k| m.parameter(k))
                    .collect(),
                _ => m.parameter("sprop-parameter-sets").into_iter().collect(),
            };
            Some((i, video::Depacketizer::new(codec, &sprops)))
        });
        let audio = media
            .iter()
            .enumerate()
            .find(|(_, m)| m.kind == "audio" && m.encoding == "mpeg4-generic")
            .and_then(|(i, m)| {
                match aac::track(m.parameter("config"), m.parameter("sizelength")) {
                    Ok(t) => Some((i, Arc::new(t))),
                    Err(e) => {
                        tracing::warn!(camera = %camera, error = %e, "pushed audio left out");
                        None
                    }
                }
            });
        Streams {
            video,
            audio,
            video_clock: Clock { last: None },
            audio_clock: Clock { last: None },
            started: None,
        }
    }

    /// The time since the first packet, in ticks of `timescale`.
    fn since_start(&mut self, timescale: u32) -> i64 {
        let started = *self.started.get_or_insert_with(Instant::now);
        (started.elapsed().as_secs_f64() * f64::from(timescale)) as i64
    }

    /// Takes one RTP packet of media `index` into the hub; `Ok(true)` if a frame went in.
    fn packet(
        &mut self,
        index: usize,
        packet: &[u8],
        hub: &Hub,
        status: &Statuses,
        camera: &str,
    ) -> Result<bool, Error> {
        let Some((seq, ts, marker, payload)) = rtp(packet) else {
            return Ok(false);
        };
        if let Some((_, video)) = self.video.as_mut().filter(|(i, _)| *i == index) {
            let units = video.push(seq, ts, marker, payload)?;
            if let Some(track) = video.track() {
                let size = format!(
                    "{} {}x{}",
                    track.codec.name(),
                    track.dimensions.0,
                    track.dimensions.1
                );
                update(status, camera, |st| {
                    st.video = Some(size);
                    st.audio = self
                        .audio
                        .as_ref()
                        .map(|(_, a)| format!("{} {} ch", a.codec.name(), a.channels));
                });
                hub.set_tracks(Tracks {
                    video: Some(Arc::new(track)),
                    audio: self.audio.as_ref().map(|(_, a)| a.clone()),
                });
            }
            let mut pushed = false;
            for unit in units {
                if hub.tracks().is_none() {
                    continue;
                }
                let since = self.since_start(90_000);
                let dts = self.video_clock.dts(unit.timestamp, || since);
                hub.push(Kind::Video, dts, 0, unit.keyframe, unit.data);
                pushed = true;
            }
            return Ok(pushed);
        }
        let Some((_, track)) = self.audio.as_ref().filter(|(i, _)| *i == index) else {
            return Ok(false);
        };
        let timescale = track.timescale;
        let units = aac::units(ts, payload)?;
        // Audio waits for the video's tracks: the hub announces both at once.
        if hub.tracks().is_none() {
            return Ok(false);
        }
        for unit in units {
            let since = self.since_start(timescale);
            let dts = self.audio_clock.dts(unit.timestamp, || since);
            hub.push(Kind::Audio, dts, 0, true, unit.data);
        }
        Ok(false)
    }
}

/// Takes the pushed media into the camera's hub until the publisher goes or stalls.
async fn record(mut c: Connection, s: Session) {
    let camera = s.slot.camera.name.clone();
    let hub = c.ctx.hubs.get_or_create(&camera);
    let status = c.ctx.status.clone();
    let mut streams = Streams::new(&s.media, &camera);
    tracing::info!(camera = %camera, peer = %c.peer, "camera pushing");
    let mut shown = Instant::now() - Duration::from_secs(1);
    let mut streamed = false;
    let stop = s.slot.stop.clone();
    let outcome: String = loop {
        let message = tokio::select! {
            _ = stop.cancelled() => break "the camera left the plan".into(),
            m = c.read(STALL) => m,
        };
        let (channel, packet) = match message {
            Err(e) => break e.to_string(),
            Ok(Message::Interleaved(channel, packet)) => (channel, packet),
            Ok(Message::Request(request, _)) => {
                let cseq = request
                    .headers
                    .get("cseq")
                    .cloned()
                    .unwrap_or_else(|| "0".into());
                let done = request.method == Method::Teardown;
                if c.reply(response(
                    200,
                    "OK",
                    &cseq,
                    &[("Session", c.session_id.clone())],
                    "",
                ))
                .await
                .is_err()
                    || done
                {
                    break "the publisher ended the session".into();
                }
                continue;
            }
        };
        let Some(&index) = s.channels.get(&channel) else {
            continue;
        };
        match streams.packet(index, &packet, &hub, &status, &camera) {
            Ok(pushed) => streamed |= pushed,
            Err(e) => break format!("bad media: {e}"),
        }
        if streamed && shown.elapsed() >= Duration::from_millis(500) {
            shown = Instant::now();
            super::ingest::show_streaming(&status, &camera, &hub);
        }
    };
    hub.clear();
    tracing::warn!(camera = %camera, peer = %c.peer, error = %outcome, "push ended");
    update(&status, &camera, |st| {
        st.state = CameraState::Failed;
        st.error = Some(format!("{outcome}; waiting for the camera to push again"));
        st.failures += 1;
        st.fps = 0.0;
        st.bitrate = 0;
    });
}

/// Serves pushing cameras on bound sockets until `stop`.
pub async fn serve(
    sockets: Vec<tokio::net::TcpListener>,
    ctx: Arc<PushContext>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    crate::base::listen::accept_each(
        sockets,
        stop,
        Arc::new(move |stream, peer, ticket| {
            Box::pin(connection(stream, peer, ctx.clone(), ticket))
        }),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_framed_whole() {
        let mut buf = BytesMut::from(&b"ANNOUNCE rtsp://n/cam RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 5\r\n\r\nv=0\r\n$\x00\x00\x03abc$\x01"[..]);
        let Some(Message::Request(r, body)) = next_message(&mut buf).unwrap() else {
            panic!()
        };
        assert_eq!(
            (r.method.as_str(), body.as_slice()),
            ("ANNOUNCE", &b"v=0\r\n"[..])
        );
        let Some(Message::Interleaved(0, p)) = next_message(&mut buf).unwrap() else {
            panic!()
        };
        assert_eq!(p, b"abc");
        assert!(
            next_message(&mut buf).unwrap().is_none(),
            "half a packet waits"
        );
        let mut big =
            BytesMut::from(&b"RECORD rtsp://n/cam RTSP/1.0\r\nContent-Length: 9999999\r\n\r\n"[..]);
        assert!(next_message(&mut big).is_err());
        let mut endless = BytesMut::from(&vec![b'A'; MAX_MESSAGE + 1][..]);
        assert!(next_message(&mut endless).is_err());
    }

    #[test]
    fn urls_name_the_camera_and_rtp_is_read() {
        assert_eq!(camera_of("rtsp://192.0.2.1:554/lobby/streamid=0"), "lobby");
        assert_eq!(camera_of("rtsp://192.0.2.1/lobby?x"), "lobby");
        assert_eq!(camera_of("rtsp://192.0.2.1"), "");
        let mut p = vec![0x80, 0xe0, 0, 7, 0, 0, 0x0b, 0xb8, 1, 2, 3, 4];
        p.extend_from_slice(&[0x65, 1]);
        assert_eq!(rtp(&p), Some((7, 3000, true, &[0x65, 1][..])));
        assert_eq!(rtp(&p[..11]), None);
        let mut padded = p.clone();
        padded[0] |= 0x20;
        padded.push(9);
        assert_eq!(rtp(&padded), None, "padding longer than the packet");
    }

    #[test]
    fn one_publisher_per_slot() {
        let camera = Camera {
            name: "c".into(),
            url: String::new(),
            push: true,
            host: String::new(),
            port: 0,
            username: Some("u".into()),
            password_file: None,
            node: "n".into(),
            onvif_port: None,
            record: false,
            transport: Default::default(),
            keep_days: None,
            max_bytes: None,
        };
        let slot = Arc::new(Slot::new(camera, CancellationToken::new()));
        let first = Claim::take(&slot).unwrap();
        assert!(Claim::take(&slot).is_none());
        drop(first);
        assert!(Claim::take(&slot).is_some());
    }
}
