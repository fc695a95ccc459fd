//! One RTMP connection: the handshake, then commands (`connect`, `createStream`, then `publish`
//! or `play`), then media in one direction.
//!
//! [`Session`] turns each incoming message into outgoing messages and hub pushes, and decides
//! when the connection ends; [`run`] does the I/O around it: reads with deadlines, writes with
//! a timeout, and the viewer's hub items. Every outgoing message is queued as whole chunks
//! (`Bytes`), so a viewer's frames go out as the shared chunks, never re-copied.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::rml_amf0::Amf0Value;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::chunk::{self, Budget, Header, Message};
use super::command::{self, AMF0_COMMAND, AMF0_DATA, AMF3_COMMAND, Command};
use super::play::{OUT_CHUNK_SIZE, Player, STREAM_ID};
use super::publish::Publisher;
use super::{APP, RtmpContext};
use crate::base::admission::Ticket;
use crate::base::{Error, Kind, ResultExt as _};
use crate::media::hub::{Item, Stop};

/// How long the handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer that has neither published with a valid key nor played with a valid token this long
/// after its handshake is dropped, however busy it keeps the connection.
pub const LOGIN_WITHIN: Duration = Duration::from_secs(10);
/// A publisher silent this long, or a peer stopped in the middle of a message, is dropped.
pub const STALL: Duration = Duration::from_secs(10);
/// A peer that accepts no bytes for this long is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The acknowledgement window and peer bandwidth announced to peers.
pub const WINDOW: u32 = 2_500_000;

const CONTROL_CHUNK_STREAM: u32 = 2;
const COMMAND_CHUNK_STREAM: u32 = 3;
const ACKNOWLEDGEMENT: u8 = 3;
const USER_CONTROL: u8 = 4;
const WINDOW_ACK_SIZE: u8 = 5;
const SET_PEER_BANDWIDTH: u8 = 6;
const AUDIO: u8 = 8;
const VIDEO: u8 = 9;

/// What the connection is for, once it has said.
enum Role {
    Idle,
    Publishing(Box<Publisher>),
    Playing(Box<Player>),
}

/// How a connection ends: normally, or with a problem worth a warning.
pub type End = Result<String, Error>;

/// A connection's state, apart from its I/O.
struct Session {
    peer: SocketAddr,
    ctx: Arc<RtmpContext>,
    /// The connection's admission: told when the peer publishes or plays.
    ticket: Arc<Ticket>,
    reader: chunk::Reader,
    connected: bool,
    /// The `token` of the connect URL (`rtmp://host/live?token=T`).
    connect_token: Option<String>,
    role: Role,
    out: Vec<Bytes>,
    /// The chunk size of what is sent: the default until Set Chunk Size is sent.
    chunk_size: usize,
    end: Option<End>,
    received: u64,
    acknowledged: u64,
    peer_window: u32,
}

/// Splits `name?query`.
fn split_query(s: &str) -> (&str, &str) {
    s.split_once('?').unwrap_or((s, ""))
}

fn query_token(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

impl Session {
    fn new(peer: SocketAddr, ctx: Arc<RtmpContext>, ticket: Arc<Ticket>) -> Session {
        // Until a peer publishes, it sends only commands: it may hold a few KiB.
        let mut reader = chunk::Reader::new();
        reader.set_budget(Budget::UNTRUSTED);
        Session {
            peer,
            ctx,
            ticket,
            reader,
            connected: false,
            connect_token: None,
            role: Role::Idle,
            out: Vec::new(),
            chunk_size: chunk::DEFAULT_CHUNK_SIZE,
            end: None,
            received: 0,
            acknowledged: 0,
            peer_window: 0,
        }
    }

    fn control(&mut self, type_id: u8, payload: &[u8]) {
        let header = Header {
            chunk_stream: CONTROL_CHUNK_STREAM,
            timestamp: 0,
            type_id,
            stream_id: 0,
        };
        self.out
            .push(chunk::chunked(&header, payload, self.chunk_size));
    }

    fn send(&mut self, type_id: u8, stream_id: u32, payload: &[u8]) {
        let header = Header {
            chunk_stream: COMMAND_CHUNK_STREAM,
            timestamp: 0,
            type_id,
            stream_id,
        };
        self.out
            .push(chunk::chunked(&header, payload, self.chunk_size));
    }

    fn status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        let payload = command::on_status(level, code, description);
        self.send(AMF0_COMMAND, stream_id, &payload);
    }

    fn stream_begin(&mut self, stream_id: u32) {
        let mut payload = vec![0, 0]; // event type 0: Stream Begin
        payload.extend_from_slice(&stream_id.to_be_bytes());
        self.control(USER_CONTROL, &payload);
    }

    /// Counts bytes received and acknowledges each window the peer asked for.
    fn received(&mut self, n: usize) {
        self.received += n as u64;
        if self.peer_window > 0 && self.received - self.acknowledged >= u64::from(self.peer_window)
        {
            self.acknowledged = self.received;
            self.control(ACKNOWLEDGEMENT, &(self.received as u32).to_be_bytes());
        }
    }

    fn handle(&mut self, m: Message) {
        match (m.header.type_id, &mut self.role) {
            (AUDIO, Role::Publishing(p)) => p.audio(m.header.timestamp, &m.data),
            (VIDEO, Role::Publishing(p)) => p.video(m.header.timestamp, &m.data),
            (WINDOW_ACK_SIZE, _) => {
                if let Some(w) = m.data.get(..4) {
                    self.peer_window = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
                }
            }
            (AMF0_COMMAND | AMF3_COMMAND, _) => match command::parse(m.header.type_id, &m.data) {
                Ok(c) => self.command(c, m.header.stream_id),
                Err(e) => self.end = Some(Err(crate::err!(Invalid, "a bad command: {e}"))),
            },
            // Acknowledgements, user control (ping replies, buffer length), peer bandwidth,
            // metadata, and media from a peer that is not publishing.
            _ => {}
        }
    }

    fn command(&mut self, c: Command, stream_id: u32) {
        match c.name.as_str() {
            "connect" => self.connect(&c),
            name if !self.connected => {
                self.end = Some(Err(crate::err!(Invalid, "\"{name}\" before connect")))
            }
            "createStream" => {
                let r = command::reply(
                    "_result",
                    c.transaction,
                    Amf0Value::Null,
                    Amf0Value::Number(f64::from(STREAM_ID)),
                );
                self.send(AMF0_COMMAND, 0, &r);
            }
            "releaseStream" | "FCPublish" => {
                let r = command::reply(
                    "_result",
                    c.transaction,
                    Amf0Value::Null,
                    Amf0Value::Undefined,
                );
                self.send(AMF0_COMMAND, 0, &r);
            }
            "publish" | "play" if !matches!(self.role, Role::Idle) => {
                self.end = Some(Err(crate::err!(
                    Invalid,
                    "\"{}\" on a stream already in use",
                    c.name
                )));
            }
            "publish" => self.publish(&c, stream_id),
            "play" => self.play(&c, stream_id),
            "deleteStream" | "closeStream" | "FCUnpublish" if !matches!(self.role, Role::Idle) => {
                self.end = Some(Ok(format!("the peer sent {}", c.name)));
            }
            other => tracing::debug!(peer = %self.peer, command = %other, "RTMP command ignored"),
        }
    }

    fn connect(&mut self, c: &Command) {
        if self.connected {
            self.end = Some(Err(crate::err!(Invalid, "connect twice")));
            return;
        }
        let (app, query) = split_query(c.property("app").unwrap_or(""));
        self.connect_token = query_token(query).or_else(|| {
            let tc_url = c.property("tcUrl").unwrap_or("");
            query_token(split_query(tc_url).1)
        });
        if app.trim_end_matches('/') != APP {
            let info = command::object(&[
                ("level", command::string("error")),
                ("code", command::string("NetConnection.Connect.Rejected")),
                (
                    "description",
                    command::string(&format!("no application \"{app}\": use rtmp://HOST/{APP}/")),
                ),
            ]);
            let r = command::reply("_error", c.transaction, Amf0Value::Null, info);
            self.send(AMF0_COMMAND, 0, &r);
            self.end = Some(Err(crate::err!(
                Invalid,
                "connect to an unknown application \"{app}\""
            )));
            return;
        }
        self.connected = true;
        self.control(WINDOW_ACK_SIZE, &WINDOW.to_be_bytes());
        let mut bandwidth = WINDOW.to_be_bytes().to_vec();
        bandwidth.push(2); // dynamic
        self.control(SET_PEER_BANDWIDTH, &bandwidth);
        self.control(
            chunk::SET_CHUNK_SIZE,
            &(OUT_CHUNK_SIZE as u32).to_be_bytes(),
        );
        // Viewers' frames are chunked at this size too (play::Shared).
        self.chunk_size = OUT_CHUNK_SIZE;
        let properties = command::object(&[
            ("fmsVer", command::string("FMS/3,0,1,123")),
            ("capabilities", Amf0Value::Number(31.0)),
        ]);
        let info = command::object(&[
            ("level", command::string("status")),
            ("code", command::string("NetConnection.Connect.Success")),
            ("description", command::string("Connection succeeded.")),
            ("objectEncoding", Amf0Value::Number(0.0)),
        ]);
        let r = command::reply("_result", c.transaction, properties, info);
        self.send(AMF0_COMMAND, 0, &r);
    }

    fn publish(&mut self, c: &Command, stream_id: u32) {
        let (key, _) = split_query(c.string_arg(0).unwrap_or(""));
        let Some(device) = self.ctx.devices.get(key).cloned() else {
            self.status(
                stream_id,
                "error",
                "NetStream.Publish.BadName",
                "unknown stream key",
            );
            // The key is a secret: it is never logged.
            self.end = Some(Err(crate::err!(
                Unauthenticated,
                "publish with an unknown stream key"
            )));
            return;
        };
        let publisher = Publisher::new(self.ctx.clone(), &device);
        self.reader.set_budget(Budget::PUBLISHER);
        self.ticket.authenticated();
        self.role = Role::Publishing(Box::new(publisher));
        self.stream_begin(stream_id);
        let description = format!("publishing {device}");
        self.status(stream_id, "status", "NetStream.Publish.Start", &description);
        tracing::info!(peer = %self.peer, device = %device, "device connected to publish");
    }

    fn play(&mut self, c: &Command, stream_id: u32) {
        let (name, query) = split_query(c.string_arg(0).unwrap_or(""));
        let name = name.to_string();
        let token = query_token(query)
            .or_else(|| self.connect_token.clone())
            .unwrap_or_default();
        if !(self.ctx.authorize_play)(&token) {
            let description = "not authorized: add ?token=T to the stream name";
            self.status(stream_id, "error", "NetStream.Play.Failed", description);
            self.end = Some(Err(crate::err!(
                Unauthenticated,
                "play \"{name}\" without a valid token"
            )));
            return;
        }
        self.ticket.authenticated();
        let Some(hub) = self.ctx.hubs.get(&name) else {
            let description = format!("no live stream \"{name}\" on this node");
            self.status(
                stream_id,
                "error",
                "NetStream.Play.StreamNotFound",
                &description,
            );
            self.end = Some(Ok(format!("play \"{name}\", which is not live")));
            return;
        };
        let player = Player::new(hub.subscribe(), self.ctx.shared(&name));
        self.role = Role::Playing(Box::new(player));
        self.stream_begin(stream_id);
        let description = format!("playing {name}");
        self.status(stream_id, "status", "NetStream.Play.Reset", &description);
        self.status(stream_id, "status", "NetStream.Play.Start", &description);
        let access = command::encode(&[
            command::string("|RtmpSampleAccess"),
            Amf0Value::Boolean(true),
            Amf0Value::Boolean(true),
        ]);
        self.send(AMF0_DATA, stream_id, &access);
        tracing::info!(peer = %self.peer, stream = %name, "viewer playing over RTMP");
    }

    /// A hub item for a viewer.
    fn on_item(&mut self, item: Result<Item, Stop>) {
        let Role::Playing(player) = &mut self.role else {
            return;
        };
        if let Err(reason) = player.on_item(item, &mut self.out) {
            let frames = player.frames;
            let (made, reused) = player.shared_counts();
            self.status(
                STREAM_ID,
                "status",
                "NetStream.Play.UnpublishNotify",
                reason,
            );
            self.end = Some(Ok(format!(
                "{reason} after {frames} frames (the stream's frames: {made} chunked, {reused} \
                 chunkings reused)"
            )));
        }
    }

    /// The next hub item, for a viewer; never for anyone else.
    async fn next_item(&mut self) -> Result<Item, Stop> {
        match &mut self.role {
            Role::Playing(player) => player.next().await,
            _ => std::future::pending().await,
        }
    }

    /// The token that tells a publisher another one took over.
    fn kicked(&self) -> Option<CancellationToken> {
        match &self.role {
            Role::Publishing(p) => Some(p.taken_over().clone()),
            _ => None,
        }
    }

    /// How long the peer may stay silent, and what it means if it does.
    fn silence(&self) -> Option<(Duration, &'static str)> {
        if self.reader.in_progress() {
            return Some((STALL, "stalled in the middle of a message"));
        }
        match self.role {
            Role::Idle => None,
            Role::Publishing(_) => Some((STALL, "a publisher sent nothing")),
            Role::Playing(_) => None,
        }
    }
}

/// The server side of the handshake; returns the bytes that followed it.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S) -> Result<Vec<u8>, Error> {
    let mut handshake = Handshake::new(PeerType::Server);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = io
            .read(&mut buf)
            .await
            .err_kind(Kind::Io, || "read during the handshake")?;
        if n == 0 {
            crate::bail!(
                Unavailable,
                "the peer closed the connection during the handshake"
            );
        }
        let (response, rest) = match handshake.process_bytes(&buf[..n]) {
            Ok(HandshakeProcessResult::InProgress { response_bytes }) => (response_bytes, None),
            Ok(HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            }) => (response_bytes, Some(remaining_bytes)),
            Err(e) => crate::bail!(Invalid, "not an RTMP handshake: {e}"),
        };
        io.write_all(&response)
            .await
            .err_kind(Kind::Io, || "write during the handshake")?;
        if let Some(rest) = rest {
            return Ok(rest);
        }
    }
}

async fn flush<S: AsyncWrite + Unpin>(io: &mut S, out: &mut Vec<Bytes>) -> Result<(), Error> {
    if out.is_empty() {
        return Ok(());
    }
    let write = async {
        for b in out.drain(..) {
            io.write_all(&b).await?;
        }
        io.flush().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Err(_) => Err(crate::err!(
            DeadlineExceeded,
            "the peer accepted nothing for {} s",
            WRITE_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(Error::new(Kind::Io, "write").with_source(e)),
        Ok(Ok(())) => Ok(()),
    }
}

/// Reads into `buf` before `deadline`, if any.
async fn read<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut BytesMut,
    deadline: Option<(Instant, Duration, &'static str)>,
) -> Result<usize, Error> {
    let read = io.read_buf(buf);
    let result = match deadline {
        None => read.await,
        Some((at, limit, what)) => tokio::time::timeout_at(at, read)
            .await
            .map_err(|_| crate::err!(DeadlineExceeded, "{what} for {} s", limit.as_secs()))?,
    };
    result.err_kind(Kind::Io, || "read")
}

/// Runs one connection until it ends: `Ok` with why for a normal end, `Err` for a problem.
pub async fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(
    mut io: S,
    peer: SocketAddr,
    ctx: Arc<RtmpContext>,
    ticket: Arc<Ticket>,
) -> End {
    let rest = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut io))
        .await
        .map_err(|_| {
            crate::err!(
                DeadlineExceeded,
                "no handshake within {} s",
                HANDSHAKE_TIMEOUT.as_secs()
            )
        })??;
    let login_by = Instant::now() + LOGIN_WITHIN;
    let mut session = Session::new(peer, ctx, ticket);
    // A viewer sends little after play; only a publisher's input grows (see the reserve below).
    let mut input = BytesMut::with_capacity(4 << 10);
    input.extend_from_slice(&rest);
    session.received(rest.len());
    let mut last_read = Instant::now();
    loop {
        while session.end.is_none() {
            match session.reader.next(&mut input) {
                Ok(Some(message)) => session.handle(message),
                Ok(None) => break,
                Err(e) => session.end = Some(Err(crate::err!(Invalid, "a bad chunk stream: {e}"))),
            }
        }
        flush(&mut io, &mut session.out).await?;
        if let Some(end) = session.end.take() {
            let _ = io.shutdown().await;
            return end;
        }
        input.reserve(match session.role {
            Role::Publishing(_) => 16 << 10,
            _ => 1 << 10,
        });
        let mut deadline = session
            .silence()
            .map(|(limit, what)| (last_read + limit, limit, what));
        if matches!(session.role, Role::Idle) && deadline.is_none_or(|(at, ..)| login_by < at) {
            deadline = Some((login_by, LOGIN_WITHIN, "neither published nor played"));
        }
        let kicked = session.kicked();
        let kicked = async {
            match kicked {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            n = read(&mut io, &mut input, deadline) => match n? {
                0 => return Ok("the peer closed the connection".into()),
                n => {
                    last_read = Instant::now();
                    session.received(n);
                }
            },
            item = session.next_item() => session.on_item(item),
            () = kicked => return Ok("another publisher took over the stream key".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_the_query() {
        assert_eq!(
            split_query("cam?token=a%20b&x=1"),
            ("cam", "token=a%20b&x=1")
        );
        assert_eq!(query_token("token=a%20b&x=1").as_deref(), Some("a b"));
        assert_eq!(query_token("x=1"), None);
        assert_eq!(split_query("cam"), ("cam", ""));
    }
}
