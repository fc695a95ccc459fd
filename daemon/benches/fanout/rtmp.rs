//! RTMP play, as a viewer: the plain handshake (C0/C1, then C2 echoing S1), `connect`,
//! `createStream`, `play`, then the server's chunk streams.
//!
//! Chunks are parsed as they stream by (RTMP 1.0 §5.3): interleaved chunk streams each keep
//! their last header, fmt 1–3 headers inherit from it, a fmt 3 chunk that starts a message adds
//! the last delta, and extended timestamps are read where the header or the chunk stream says.
//! The server's Set Chunk Size and Window Acknowledgement Size are obeyed, and pings answered.
//! Command and control bodies are kept (up to [`MAX_BODY`]); of audio and video bodies only the
//! first two bytes are, which say whether a video message is a coded frame.

use std::collections::HashMap;

use super::protocol::{Protocol, video_frame};

const HANDSHAKE: usize = 1536;
/// Our chunk size: we never announce another.
const OUT_CHUNK: usize = 128;
/// The largest command or control message kept.
pub const MAX_BODY: usize = 1 << 20;
/// The most chunk streams a server may use.
const MAX_CHUNK_STREAMS: usize = 64;

const SET_CHUNK_SIZE: u8 = 1;
const ACKNOWLEDGEMENT: u8 = 3;
const USER_CONTROL: u8 = 4;
const WINDOW_ACK_SIZE: u8 = 5;
const AUDIO: u8 = 8;
const VIDEO: u8 = 9;
const AMF0_COMMAND: u8 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshake,
    Connect,
    CreateStream,
    Play,
}

/// What a chunk stream remembers.
#[derive(Default)]
struct ChunkStream {
    timestamp: u32,
    delta: u32,
    length: u32,
    type_id: u8,
    extended: bool,
    /// Bytes of the current message still to come.
    left: u32,
    body: Vec<u8>,
}

/// AMF0 values we write.
enum Amf<'a> {
    Str(&'a str),
    Num(f64),
    Bool(bool),
}

fn amf(out: &mut Vec<u8>, v: &Amf) {
    match v {
        Amf::Str(s) => {
            out.push(2);
            out.extend_from_slice(&(s.len() as u16).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Amf::Num(n) => {
            out.push(0);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Amf::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
    }
}

fn amf_object(out: &mut Vec<u8>, pairs: &[(&str, Amf)]) {
    out.push(3);
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u16).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        amf(out, v);
    }
    out.extend_from_slice(&[0, 0, 9]);
}

/// Reads an AMF0 string at `at`, returning it and where the next value starts.
fn read_string(b: &[u8], at: usize) -> Option<(String, usize)> {
    if *b.get(at)? != 2 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*b.get(at + 1)?, *b.get(at + 2)?]));
    let s = b.get(at + 3..at + 3 + len)?;
    Some((String::from_utf8_lossy(s).into_owned(), at + 3 + len))
}

/// Reads an AMF0 number at `at`, returning it and where the next value starts.
fn read_number(b: &[u8], at: usize) -> Option<(f64, usize)> {
    let bytes: [u8; 8] = b.get(at + 1..at + 9)?.try_into().ok()?;
    (b.get(at) == Some(&0)).then_some((f64::from_be_bytes(bytes), at + 9))
}

/// Writes a message as a fmt 0 chunk and fmt 3 continuations.
fn message(out: &mut Vec<u8>, chunk_stream: u8, type_id: u8, stream_id: u32, payload: &[u8]) {
    out.push(chunk_stream);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&stream_id.to_le_bytes());
    for (i, chunk) in payload.chunks(OUT_CHUNK).enumerate() {
        if i > 0 {
            out.push(0xc0 | chunk_stream);
        }
        out.extend_from_slice(chunk);
    }
}

fn u24(b: &[u8]) -> u32 {
    u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2])
}

/// One RTMP viewer.
pub struct Rtmp {
    app: String,
    tc_url: String,
    stream: String,
    phase: Phase,
    /// S0, S1 and S2 as they arrive.
    handshake: Vec<u8>,
    chunk_size: usize,
    streams: HashMap<u32, ChunkStream>,
    /// The chunk header gathered so far.
    header: Vec<u8>,
    /// The chunk stream of the chunk being read, and its payload bytes still to come.
    payload: Option<(u32, usize)>,
    window: u32,
    received: u64,
    acknowledged: u64,
}

impl Rtmp {
    /// A viewer of `rtmp://host/app/stream` (the stream may carry a `?query`).
    pub fn new(host: &str, path: &str) -> Rtmp {
        let (app, stream) = path
            .trim_start_matches('/')
            .split_once('/')
            .expect("/app/stream");
        Rtmp {
            app: app.into(),
            tc_url: format!("rtmp://{host}/{app}"),
            stream: stream.into(),
            phase: Phase::Handshake,
            handshake: Vec::with_capacity(1 + 2 * HANDSHAKE),
            chunk_size: 128,
            streams: HashMap::new(),
            header: Vec::with_capacity(18),
            payload: None,
            window: 0,
            received: 0,
            acknowledged: 0,
        }
    }

    /// The length of the chunk header gathered so far once it is known, with its fmt, chunk
    /// stream and basic header length.
    fn header_length(&self) -> Option<(usize, u8, u32, usize)> {
        let h = &self.header;
        let fmt = h[0] >> 6;
        let (basic, chunk_stream) = match h[0] & 0x3f {
            0 => (2, 64 + u32::from(*h.get(1)?)),
            1 => (3, 64 + u32::from(*h.get(1)?) + 256 * u32::from(*h.get(2)?)),
            n => (1, u32::from(n)),
        };
        let fields = [11, 7, 3, 0][usize::from(fmt)];
        let m = h.get(basic..basic + fields)?;
        let extended = if fmt < 3 {
            u24(m) == 0x00ff_ffff
        } else {
            self.streams.get(&chunk_stream).is_some_and(|c| c.extended)
        };
        Some((
            basic + fields + if extended { 4 } else { 0 },
            fmt,
            chunk_stream,
            basic,
        ))
    }

    /// A complete chunk header: updates its chunk stream and starts reading its payload.
    fn start_chunk(
        &mut self,
        fmt: u8,
        id: u32,
        basic: usize,
        frames: &mut Vec<u32>,
        reply: &mut Vec<u8>,
    ) -> Result<(), String> {
        if !self.streams.contains_key(&id) && self.streams.len() >= MAX_CHUNK_STREAMS {
            return Err("too many chunk streams".into());
        }
        let h = std::mem::take(&mut self.header);
        let cs = self.streams.entry(id).or_default();
        let m = &h[basic..];
        let field = if fmt < 3 { u24(m) } else { 0 };
        let extended = h.len() - basic > [11, 7, 3, 0][usize::from(fmt)];
        let time = if extended {
            u32::from_be_bytes(h[h.len() - 4..].try_into().unwrap())
        } else {
            field
        };
        if fmt < 3 {
            cs.extended = extended;
        }
        let starts = fmt < 3 || cs.left == 0;
        match fmt {
            0 => (cs.timestamp, cs.delta) = (time, 0),
            1 | 2 => {
                cs.delta = time;
                cs.timestamp = cs.timestamp.wrapping_add(time);
            }
            _ if starts => cs.timestamp = cs.timestamp.wrapping_add(cs.delta),
            _ => {}
        }
        if fmt < 2 {
            (cs.length, cs.type_id) = (u24(&m[3..]), m[6]);
        }
        if starts {
            cs.left = cs.length;
            cs.body.clear();
        }
        let take = (cs.left as usize).min(self.chunk_size);
        self.header = h;
        self.header.clear();
        if take == 0 {
            return self.on_message(id, frames, reply);
        }
        self.payload = Some((id, take));
        Ok(())
    }

    /// Payload bytes of the current chunk; returns how many were used.
    fn chunk_payload(
        &mut self,
        data: &[u8],
        frames: &mut Vec<u32>,
        reply: &mut Vec<u8>,
    ) -> Result<usize, String> {
        let Some((id, left)) = self.payload else {
            return Ok(0);
        };
        let n = left.min(data.len());
        let cs = self.streams.get_mut(&id).expect("the chunk's stream");
        let keep = if matches!(cs.type_id, AUDIO | VIDEO) {
            2usize.saturating_sub(cs.body.len()).min(n)
        } else {
            n
        };
        if cs.body.len() + keep > MAX_BODY {
            return Err(format!(
                "a type {} message over {MAX_BODY} bytes",
                cs.type_id
            ));
        }
        cs.body.extend_from_slice(&data[..keep]);
        cs.left -= n as u32;
        let message_done = cs.left == 0;
        self.payload = (left > n).then_some((id, left - n));
        if self.payload.is_none() && message_done {
            self.on_message(id, frames, reply)?;
        }
        Ok(n)
    }

    fn on_message(
        &mut self,
        id: u32,
        frames: &mut Vec<u32>,
        reply: &mut Vec<u8>,
    ) -> Result<(), String> {
        let cs = &self.streams[&id];
        let (b, ts) = (&cs.body, cs.timestamp);
        let word = || {
            b.get(..4)
                .map(|w| u32::from_be_bytes(w.try_into().unwrap()))
        };
        match cs.type_id {
            SET_CHUNK_SIZE => {
                let size = word().ok_or("a short Set Chunk Size")? & 0x7fff_ffff;
                if size == 0 {
                    return Err("chunk size 0".into());
                }
                self.chunk_size = size as usize;
            }
            WINDOW_ACK_SIZE => self.window = word().ok_or("a short Window Ack Size")?,
            USER_CONTROL if b.get(..2) == Some(&[0, 6]) => {
                // Ping request: the response echoes its timestamp.
                let mut pong = vec![0, 7];
                pong.extend_from_slice(b.get(2..6).ok_or("a short ping")?);
                message(reply, 2, USER_CONTROL, 0, &pong);
            }
            VIDEO if video_frame(b) => frames.push(ts),
            AMF0_COMMAND => {
                let body = b.clone();
                self.on_command(&body, reply)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn on_command(&mut self, b: &[u8], reply: &mut Vec<u8>) -> Result<(), String> {
        let Some((name, at)) = read_string(b, 0) else {
            return Ok(());
        };
        let transaction = read_number(b, at).map_or(0.0, |(t, _)| t);
        let text = || String::from_utf8_lossy(b).replace(|c: char| c.is_control(), " ");
        match (self.phase, name.as_str()) {
            (_, "_error") => return Err(format!("_error: {}", text())),
            (_, "onStatus") if b.windows(8).any(|w| w == b"\x02\x00\x05error") => {
                return Err(format!("onStatus: {}", text()));
            }
            (Phase::Connect, "_result") if transaction == 1.0 => {
                let mut c = Vec::new();
                amf(&mut c, &Amf::Str("createStream"));
                amf(&mut c, &Amf::Num(2.0));
                c.push(5);
                message(reply, 3, AMF0_COMMAND, 0, &c);
                self.phase = Phase::CreateStream;
            }
            (Phase::CreateStream, "_result") if transaction == 2.0 => {
                // The command object (null), then the stream id.
                let after_tx = at + 9;
                let sid = read_number(b, after_tx + 1).map_or(1.0, |(n, _)| n) as u32;
                let mut c = Vec::new();
                amf(&mut c, &Amf::Str("play"));
                amf(&mut c, &Amf::Num(3.0));
                c.push(5);
                amf(&mut c, &Amf::Str(&self.stream));
                amf(&mut c, &Amf::Num(-1000.0));
                message(reply, 8, AMF0_COMMAND, sid, &c);
                self.phase = Phase::Play;
            }
            _ => {}
        }
        Ok(())
    }
}

impl Protocol for Rtmp {
    fn hello(&mut self) -> Vec<u8> {
        let mut c0c1 = vec![3];
        c0c1.extend_from_slice(&[0; 8]);
        // Random-looking bytes (a server may look for a digest; there is none to find).
        let mut x: u32 = 0x9e37_79b9;
        c0c1.extend((8..HANDSHAKE).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        }));
        c0c1
    }

    fn feed(
        &mut self,
        mut data: &[u8],
        frames: &mut Vec<u32>,
        reply: &mut Vec<u8>,
    ) -> Result<(), String> {
        self.received += data.len() as u64;
        if self.phase == Phase::Handshake {
            let n = (1 + 2 * HANDSHAKE - self.handshake.len()).min(data.len());
            self.handshake.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.handshake.len() < 1 + 2 * HANDSHAKE {
                return Ok(());
            }
            if self.handshake[0] != 3 {
                return Err(format!("RTMP version {}", self.handshake[0]));
            }
            reply.extend_from_slice(&self.handshake[1..1 + HANDSHAKE]);
            self.handshake = Vec::new();
            let mut c = Vec::new();
            amf(&mut c, &Amf::Str("connect"));
            amf(&mut c, &Amf::Num(1.0));
            amf_object(
                &mut c,
                &[
                    ("app", Amf::Str(&self.app)),
                    ("flashVer", Amf::Str("LNX 9,0,124,2")),
                    ("tcUrl", Amf::Str(&self.tc_url)),
                    ("fpad", Amf::Bool(false)),
                    ("capabilities", Amf::Num(15.0)),
                    ("audioCodecs", Amf::Num(4071.0)),
                    ("videoCodecs", Amf::Num(252.0)),
                    ("videoFunction", Amf::Num(1.0)),
                ],
            );
            message(reply, 3, AMF0_COMMAND, 0, &c);
            self.phase = Phase::Connect;
        }
        while !data.is_empty() {
            if self.payload.is_some() {
                let n = self.chunk_payload(data, frames, reply)?;
                data = &data[n..];
                continue;
            }
            self.header.push(data[0]);
            data = &data[1..];
            if let Some((length, fmt, id, basic)) = self.header_length()
                && self.header.len() == length
            {
                self.start_chunk(fmt, id, basic, frames, reply)?;
            }
        }
        if self.window > 0 && self.received - self.acknowledged >= u64::from(self.window) {
            self.acknowledged = self.received;
            message(
                reply,
                2,
                ACKNOWLEDGEMENT,
                0,
                &(self.received as u32).to_be_bytes(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sited::media::rtmp::chunk::{Header, write};

    fn chunked(csid: u32, ts: u32, type_id: u8, body: &[u8], size: usize) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        let h = Header {
            chunk_stream: csid,
            timestamp: ts,
            type_id,
            stream_id: 1,
        };
        write(&mut out, &h, body, size);
        out.to_vec()
    }

    /// A viewer past the handshake and the commands.
    fn playing() -> Rtmp {
        let mut r = Rtmp::new("h:1", "/live/cam?token=t");
        r.phase = Phase::Play;
        r
    }

    #[test]
    fn frames_are_found_in_interleaved_chunk_streams_split_anywhere() {
        let mut stream = chunked(2, 0, SET_CHUNK_SIZE, &200u32.to_be_bytes(), 128);
        let mut video = vec![0x17, 1, 0, 0, 0];
        video.resize(500, 7);
        let v = chunked(6, 40, VIDEO, &video, 200);
        let a = chunked(4, 41, AUDIO, &[0xaf, 1, 5, 5, 5], 200);
        // The audio message between the video message's chunks.
        stream.extend_from_slice(&v[..12 + 200]);
        stream.extend_from_slice(&a);
        stream.extend_from_slice(&v[12 + 200..]);
        stream.extend(chunked(6, 0x0200_0000, VIDEO, &[0x27, 1, 0, 0, 0, 3], 200));
        stream.extend(chunked(6, 0, VIDEO, &[0x17, 0, 0, 0, 0, 3], 200));
        for step in [1, 2, 3, 7, 100, stream.len()] {
            let mut r = playing();
            let (mut frames, mut reply) = (Vec::new(), Vec::new());
            for piece in stream.chunks(step) {
                r.feed(piece, &mut frames, &mut reply).unwrap();
            }
            assert_eq!(frames, vec![40, 0x0200_0000], "split every {step} bytes");
            assert_eq!(r.chunk_size, 200);
        }
    }

    #[test]
    fn headers_inherit_and_fmt3_messages_add_the_delta() {
        let mut r = playing();
        let (mut frames, mut reply) = (Vec::new(), Vec::new());
        let body = [0x27, 1, 0, 0, 0];
        // fmt 0 at 100, fmt 2 with delta 40, then a fmt 3 message: 180.
        let mut s = chunked(6, 100, VIDEO, &body, 128);
        s.extend_from_slice(&[0x80 | 6, 0, 0, 40]);
        s.extend_from_slice(&body);
        s.push(0xc0 | 6);
        s.extend_from_slice(&body);
        r.feed(&s, &mut frames, &mut reply).unwrap();
        assert_eq!(frames, vec![100, 140, 180]);
    }

    #[test]
    fn the_commands_follow_the_replies_and_windows_are_acknowledged() {
        let mut r = Rtmp::new("h:1", "/live/cam?token=t");
        let (mut frames, mut reply) = (Vec::new(), Vec::new());
        assert_eq!(r.hello().len(), 1 + HANDSHAKE);
        r.feed(&[3; 1 + 2 * HANDSHAKE], &mut frames, &mut reply)
            .unwrap();
        assert_eq!(&reply[..HANDSHAKE], &[3; HANDSHAKE][..], "C2 echoes S1");
        assert_eq!(
            &reply[HANDSHAKE..HANDSHAKE + 1],
            &[3],
            "then connect, on chunk stream 3"
        );
        assert!(reply.windows(7).any(|w| w == b"connect"));
        assert_eq!(r.phase, Phase::Connect);
        let mut result = Vec::new();
        amf(&mut result, &Amf::Str("_result"));
        amf(&mut result, &Amf::Num(1.0));
        reply.clear();
        let mut s = chunked(2, 0, WINDOW_ACK_SIZE, &100u32.to_be_bytes(), 128);
        s.extend(chunked(3, 0, AMF0_COMMAND, &result, 128));
        r.feed(&s, &mut frames, &mut reply).unwrap();
        assert_eq!(r.phase, Phase::CreateStream);
        assert!(reply.windows(12).any(|w| w == b"createStream"));
        assert!(
            reply.ends_with(&(r.received as u32).to_be_bytes()),
            "acknowledged"
        );
        let mut result = Vec::new();
        amf(&mut result, &Amf::Str("_result"));
        amf(&mut result, &Amf::Num(2.0));
        result.push(5);
        amf(&mut result, &Amf::Num(7.0));
        reply.clear();
        r.feed(
            &chunked(3, 0, AMF0_COMMAND, &result, 128),
            &mut frames,
            &mut reply,
        )
        .unwrap();
        assert_eq!(r.phase, Phase::Play);
        assert_eq!(
            &reply[8..12],
            &7u32.to_le_bytes(),
            "play on the stream created"
        );
        assert!(reply.windows(11).any(|w| w == b"cam?token=t"));
        let mut status = Vec::new();
        amf(&mut status, &Amf::Str("onStatus"));
        amf(&mut status, &Amf::Num(0.0));
        status.push(5);
        amf_object(&mut status, &[("level", Amf::Str("error"))]);
        let e = r.feed(
            &chunked(3, 0, AMF0_COMMAND, &status, 128),
            &mut frames,
            &mut reply,
        );
        assert!(e.unwrap_err().starts_with("onStatus"));
    }
}
