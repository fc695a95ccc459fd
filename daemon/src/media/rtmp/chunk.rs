//! The RTMP chunk stream (RTMP 1.0 §5.3): messages cut into chunks, the chunks of several chunk
//! streams interleaved on one connection.
//!
//! [`Reader`] reassembles messages with one state per chunk stream (last header, timestamp delta,
//! whether it used an extended timestamp, the message in progress), so chunks of different chunk
//! streams may alternate freely. rml_rtmp's deserializer keeps a single message in progress and
//! cannot do that, and Enhanced RTMP publishers (ffmpeg 6.1+, OBS 30+) interleave audio and video.
//! The reader never trusts a length before the bytes arrive: memory grows only with the bytes
//! received, and is capped per message, per connection and in chunk streams by its [`Budget`]:
//! [`Budget::PUBLISHER`] for a peer that published with a valid key, [`Budget::UNTRUSTED`] (a
//! few KiB) for everyone else, so that a connection that has not logged in pins kilobytes.
//!
//! [`write`] does the reverse with a type 0 chunk followed by type 3 chunks. That depends on
//! nothing sent earlier on the connection, so the chunks of a message are made once and shared
//! by every viewer.

use std::collections::HashMap;
use std::fmt;

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};

/// The chunk size until a Set Chunk Size message says otherwise.
pub const DEFAULT_CHUNK_SIZE: usize = 128;
/// The largest message a reader accepts by default (a 4K keyframe is a few MiB).
pub const MAX_MESSAGE: usize = 8 << 20;
/// The most bytes of unfinished messages held for one connection.
pub const MAX_BUFFERED: usize = 16 << 20;
/// The most chunk streams one connection may use (publishers use fewer than ten).
pub const MAX_CHUNK_STREAMS: usize = 64;
/// The largest chunk size a peer may announce (RTMP 1.0 §5.4.1: 31 bits).
pub const MAX_CHUNK_SIZE: u32 = 0x7fff_ffff;

/// What a reader may hold for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The largest message.
    pub max_message: usize,
    /// The most bytes of unfinished messages, over all chunk streams.
    pub max_buffered: usize,
    /// The most chunk streams.
    pub max_chunk_streams: usize,
    /// Bytes reserved up front for a message in progress (never more than its length): the
    /// reassembly of large frames without repeated growth, for publishers only.
    pub prealloc: usize,
}

impl Budget {
    /// A publisher's: 4K keyframes, a few interleaved streams.
    pub const PUBLISHER: Budget = Budget {
        max_message: MAX_MESSAGE,
        max_buffered: MAX_BUFFERED,
        max_chunk_streams: MAX_CHUNK_STREAMS,
        prealloc: 64 << 10,
    };
    /// Anyone else's (before a login, and viewers, who send only commands): enough for
    /// `connect` with its capability lists, and nothing reserved ahead of the bytes.
    pub const UNTRUSTED: Budget = Budget {
        max_message: 8 << 10,
        max_buffered: 16 << 10,
        max_chunk_streams: 8,
        prealloc: 0,
    };
}

/// Message type 1: Set Chunk Size.
pub const SET_CHUNK_SIZE: u8 = 1;
/// Message type 2: Abort.
pub const ABORT: u8 = 2;

const EXTENDED: u32 = 0x00ff_ffff;

/// Where a message belongs and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The chunk stream it travels on.
    pub chunk_stream: u32,
    /// Milliseconds, wrapping at 2^32.
    pub timestamp: u32,
    /// The message type (8 audio, 9 video, 20 AMF0 command...).
    pub type_id: u8,
    /// The message stream (0 for the connection, 1 for the stream made by createStream).
    pub stream_id: u32,
}

/// One reassembled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its header.
    pub header: Header,
    /// Its payload.
    pub data: Bytes,
}

/// Why a peer's chunk stream was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A type 1, 2 or 3 chunk on a chunk stream that never had a type 0 header.
    NoHeader {
        /// The chunk stream.
        chunk_stream: u32,
        /// The chunk type.
        fmt: u8,
    },
    /// A message longer than the reader's limit.
    TooLarge {
        /// Its length.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// More chunk streams than the reader's budget.
    TooManyChunkStreams(usize),
    /// Unfinished messages past the reader's budget.
    TooMuchBuffered(usize),
    /// A Set Chunk Size of 0 or past [`MAX_CHUNK_SIZE`].
    ChunkSize(u32),
    /// A Set Chunk Size or Abort shorter than its 4 bytes.
    ShortControl(u8),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoHeader { chunk_stream, fmt } => write!(
                f,
                "a type {fmt} chunk on chunk stream {chunk_stream}, which had no type 0 header"
            ),
            Error::TooLarge { length, limit } => {
                write!(f, "a message of {length} bytes (the limit is {limit})")
            }
            Error::TooManyChunkStreams(n) => write!(f, "more than {n} chunk streams"),
            Error::TooMuchBuffered(n) => {
                write!(f, "more than {n} bytes of unfinished messages")
            }
            Error::ChunkSize(n) => write!(f, "a chunk size of {n}"),
            Error::ShortControl(t) => write!(f, "a control message of type {t} too short"),
        }
    }
}

impl std::error::Error for Error {}

/// The state of one chunk stream.
#[derive(Debug, Default)]
struct ChunkStream {
    timestamp: u32,
    /// The timestamp field of the last header: a delta, or the absolute time of a type 0.
    delta: u32,
    length: usize,
    type_id: u8,
    stream_id: u32,
    /// The last header used an extended timestamp, whose value was this.
    extended: Option<u32>,
    /// The message in progress.
    partial: Option<BytesMut>,
}

/// Reassembles messages from a peer's chunks.
#[derive(Debug)]
pub struct Reader {
    chunk_size: usize,
    budget: Budget,
    streams: HashMap<u32, ChunkStream>,
    buffered: usize,
}

impl Default for Reader {
    fn default() -> Reader {
        Reader {
            chunk_size: DEFAULT_CHUNK_SIZE,
            budget: Budget::PUBLISHER,
            streams: HashMap::new(),
            buffered: 0,
        }
    }
}

fn be24(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

/// A chunk's header, read without consuming anything.
struct Parsed {
    chunk_stream: u32,
    fmt: u8,
    field: Option<u32>,
    length: Option<usize>,
    type_id: Option<u8>,
    stream_id: Option<u32>,
    extended: Option<u32>,
    header_len: usize,
}

impl Reader {
    /// A reader at the default chunk size.
    pub fn new() -> Reader {
        Reader::default()
    }

    /// Sets what the reader may hold from now on (a reader starts with
    /// [`Budget::PUBLISHER`]). What is held already stays; a stream that goes on past a
    /// smaller budget is refused at its next chunk.
    pub fn set_budget(&mut self, budget: Budget) {
        self.budget = budget;
    }

    /// The bytes held for unfinished messages, reserved or filled.
    pub fn held(&self) -> usize {
        self.streams
            .values()
            .filter_map(|s| s.partial.as_ref())
            .map(BytesMut::capacity)
            .sum()
    }

    /// The peer's chunk size.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Whether a message is partly received (a peer that stops here is stalled).
    pub fn in_progress(&self) -> bool {
        self.streams.values().any(|s| s.partial.is_some())
    }

    /// Consumes whole chunks from the front of `buf` until a message is complete, and returns
    /// it; `None` when more bytes are needed. Set Chunk Size and Abort are applied here and not
    /// returned.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, Error> {
        loop {
            let Some((used, message)) = self.chunk(buf)? else {
                return Ok(None);
            };
            buf.advance(used);
            let Some(message) = message else { continue };
            match message.header.type_id {
                SET_CHUNK_SIZE => {
                    let size = control_value(&message)?;
                    if size == 0 || size > MAX_CHUNK_SIZE {
                        return Err(Error::ChunkSize(size));
                    }
                    self.chunk_size = size as usize;
                }
                ABORT => {
                    let id = control_value(&message)?;
                    if let Some(s) = self.streams.get_mut(&id)
                        && let Some(p) = s.partial.take()
                    {
                        self.buffered -= p.len();
                    }
                }
                _ => return Ok(Some(message)),
            }
        }
    }

    fn parse(&self, data: &[u8]) -> Result<Option<Parsed>, Error> {
        let Some(&first) = data.first() else {
            return Ok(None);
        };
        let fmt = first >> 6;
        let (chunk_stream, mut at) = match first & 0x3f {
            0 if data.len() >= 2 => (64 + u32::from(data[1]), 2),
            1 if data.len() >= 3 => (64 + u32::from(data[1]) + 256 * u32::from(data[2]), 3),
            0 | 1 => return Ok(None),
            id => (u32::from(id), 1),
        };
        let stream = self.streams.get(&chunk_stream);
        match stream {
            None if fmt >= 2 => return Err(Error::NoHeader { chunk_stream, fmt }),
            None if self.streams.len() >= self.budget.max_chunk_streams => {
                return Err(Error::TooManyChunkStreams(self.budget.max_chunk_streams));
            }
            _ => {}
        }
        let header_len = [11, 7, 3, 0][usize::from(fmt)];
        let Some(h) = data.get(at..at + header_len) else {
            return Ok(None);
        };
        at += header_len;
        let mut p = Parsed {
            chunk_stream,
            fmt,
            field: None,
            length: None,
            type_id: None,
            stream_id: None,
            extended: None,
            header_len: 0,
        };
        if fmt <= 2 {
            p.field = Some(be24(&h[0..3]));
        }
        if fmt <= 1 {
            p.length = Some(be24(&h[3..6]) as usize);
            p.type_id = Some(h[6]);
        }
        if fmt == 0 {
            p.stream_id = Some(u32::from_le_bytes([h[7], h[8], h[9], h[10]]));
        }
        if p.field == Some(EXTENDED) {
            let Some(e) = data.get(at..at + 4) else {
                return Ok(None);
            };
            let value = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            p.field = Some(value);
            p.extended = Some(value);
            at += 4;
        } else if fmt == 3
            && let Some(expected) = stream.and_then(|s| s.extended)
        {
            // A type 3 chunk after an extended timestamp repeats it (ffmpeg, librtmp); some
            // writers leave it out. It is taken as present only if it matches.
            let Some(e) = data.get(at..at + 4) else {
                return Ok(None);
            };
            if u32::from_be_bytes([e[0], e[1], e[2], e[3]]) == expected {
                at += 4;
            }
            p.extended = Some(expected);
        }
        p.header_len = at;
        Ok(Some(p))
    }

    /// Reads one chunk: the bytes it used and the message it completed, or `None` when the
    /// chunk is not all there yet. Nothing changes until the whole chunk is available.
    fn chunk(&mut self, data: &[u8]) -> Result<Option<(usize, Option<Message>)>, Error> {
        let Some(p) = self.parse(data)? else {
            return Ok(None);
        };
        let stream = self.streams.get(&p.chunk_stream);
        let continuing = p.fmt == 3 && stream.is_some_and(|s| s.partial.is_some());
        let length = match (p.length, stream) {
            (Some(l), _) => l,
            (None, Some(s)) => s.length,
            (None, None) => 0,
        };
        if length > self.budget.max_message {
            return Err(Error::TooLarge {
                length,
                limit: self.budget.max_message,
            });
        }
        let have = match stream.and_then(|s| s.partial.as_ref()) {
            Some(partial) if continuing => partial.len(),
            _ => 0,
        };
        let n = self.chunk_size.min(length - have);
        let Some(payload) = data.get(p.header_len..p.header_len + n) else {
            return Ok(None);
        };

        // The chunk is complete: commit it.
        let stream = self.streams.entry(p.chunk_stream).or_default();
        if !continuing {
            if let Some(dropped) = stream.partial.take() {
                // A new header in the middle of a message abandons it, as ffmpeg does.
                self.buffered -= dropped.len();
            }
            match p.fmt {
                0 => {
                    stream.timestamp = p.field.unwrap_or(0);
                    stream.delta = stream.timestamp;
                }
                1 | 2 => {
                    stream.delta = p.field.unwrap_or(0);
                    stream.timestamp = stream.timestamp.wrapping_add(stream.delta);
                }
                _ => stream.timestamp = stream.timestamp.wrapping_add(stream.delta),
            }
            stream.length = length;
            if let Some(t) = p.type_id {
                stream.type_id = t;
            }
            if let Some(id) = p.stream_id {
                stream.stream_id = id;
            }
        }
        if p.fmt <= 2 {
            stream.extended = p.extended;
        }
        let header = Header {
            chunk_stream: p.chunk_stream,
            timestamp: stream.timestamp,
            type_id: stream.type_id,
            stream_id: stream.stream_id,
        };
        let used = p.header_len + n;
        if !continuing && n == length {
            let data = Bytes::copy_from_slice(payload);
            return Ok(Some((used, Some(Message { header, data }))));
        }
        if self.buffered + n > self.budget.max_buffered {
            return Err(Error::TooMuchBuffered(self.budget.max_buffered));
        }
        self.buffered += n;
        let reserve = length.min(self.budget.prealloc).max(n);
        let partial = stream
            .partial
            .get_or_insert_with(|| BytesMut::with_capacity(reserve));
        partial.put_slice(payload);
        if partial.len() < length {
            return Ok(Some((used, None)));
        }
        let data = stream.partial.take().unwrap_or_default().freeze();
        self.buffered -= data.len();
        Ok(Some((used, Some(Message { header, data }))))
    }
}

fn control_value(message: &Message) -> Result<u32, Error> {
    let d = message
        .data
        .get(..4)
        .ok_or(Error::ShortControl(message.header.type_id))?;
    Ok(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
}

fn basic_header(out: &mut BytesMut, fmt: u8, chunk_stream: u32) {
    match chunk_stream {
        2..=63 => out.put_u8((fmt << 6) | chunk_stream as u8),
        64..=319 => {
            out.put_u8(fmt << 6);
            out.put_u8((chunk_stream - 64) as u8);
        }
        _ => {
            let id = chunk_stream.clamp(320, 65_599) - 64;
            out.put_u8((fmt << 6) | 1);
            out.put_u16_le(id as u16);
        }
    }
}

/// Appends the chunks of one message: a type 0 chunk, then type 3 chunks, each with at most
/// `chunk_size` payload bytes. An extended timestamp is repeated in every type 3 chunk, as
/// ffmpeg and librtmp expect.
pub fn write(out: &mut BytesMut, header: &Header, data: &[u8], chunk_size: usize) {
    let chunk_size = chunk_size.max(1);
    let extended = header.timestamp >= EXTENDED;
    let chunks = data.len().div_ceil(chunk_size).max(1);
    out.reserve(data.len() + 16 + chunks * 8);
    basic_header(out, 0, header.chunk_stream);
    out.put_uint(u64::from(header.timestamp.min(EXTENDED)), 3);
    out.put_uint(data.len().min(EXTENDED as usize) as u64, 3);
    out.put_u8(header.type_id);
    out.put_u32_le(header.stream_id);
    for (i, piece) in data.chunks(chunk_size).enumerate() {
        if i > 0 {
            basic_header(out, 3, header.chunk_stream);
        }
        if extended {
            out.put_u32(header.timestamp);
        }
        out.put_slice(piece);
    }
    if data.is_empty() && extended {
        out.put_u32(header.timestamp);
    }
}

/// The chunks of one message, as one shareable buffer.
pub fn chunked(header: &Header, data: &[u8], chunk_size: usize) -> Bytes {
    let mut out = BytesMut::new();
    write(&mut out, header, data, chunk_size);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(chunk_stream: u32, timestamp: u32, type_id: u8) -> Header {
        Header {
            chunk_stream,
            timestamp,
            type_id,
            stream_id: 1,
        }
    }

    fn payload(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    /// Feeds the bytes one at a time; returns every message.
    fn read_bytewise(reader: &mut Reader, bytes: &[u8]) -> Result<Vec<Message>, Error> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in bytes {
            buf.put_u8(b);
            while let Some(m) = reader.next(&mut buf)? {
                out.push(m);
            }
        }
        assert!(buf.is_empty(), "{} bytes left unread", buf.len());
        Ok(out)
    }

    /// Reads every message in `buf`; the first error ends it.
    fn read_all(reader: &mut Reader, buf: &mut BytesMut) -> Result<usize, Error> {
        let mut n = 0;
        while reader.next(buf)?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    /// Splits the chunks `write` made back into single chunks.
    fn split_chunks(bytes: &[u8], chunk_size: usize, data_len: usize) -> Vec<Vec<u8>> {
        let first = 12 + chunk_size.min(data_len);
        let mut out = vec![bytes[..first].to_vec()];
        let mut rest = &bytes[first..];
        while !rest.is_empty() {
            let n = (1 + chunk_size).min(rest.len());
            out.push(rest[..n].to_vec());
            rest = &rest[n..];
        }
        out
    }

    #[test]
    fn a_message_written_in_chunks_reads_back() {
        for len in [0, 1, 127, 128, 129, 1000, 70_000] {
            let data = payload(len, 7);
            let h = header(4, 1234, 9);
            let bytes = chunked(&h, &data, 128);
            let mut r = Reader::new();
            let mut buf = BytesMut::from(&bytes[..]);
            let m = r.next(&mut buf).unwrap().unwrap();
            assert_eq!((m.header, &m.data[..]), (h, &data[..]), "{len}");
            assert!(buf.is_empty() && !r.in_progress());
        }
    }

    #[test]
    fn two_interleaved_chunk_streams_reassemble_byte_by_byte() {
        let (video, audio) = (payload(1000, 1), payload(300, 2));
        let hv = header(6, 40, 9);
        let ha = header(4, 43, 8);
        let v = split_chunks(&chunked(&hv, &video, 128), 128, video.len());
        let a = split_chunks(&chunked(&ha, &audio, 128), 128, audio.len());
        // Video chunk, audio chunk, video chunk...: what Enhanced RTMP publishers send.
        let mut wire = Vec::new();
        for i in 0..v.len().max(a.len()) {
            for part in [v.get(i), a.get(i)].into_iter().flatten() {
                wire.extend_from_slice(part);
            }
        }
        let mut r = Reader::new();
        let got = read_bytewise(&mut r, &wire).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].header, &got[0].data[..]), (ha, &audio[..]));
        assert_eq!((got[1].header, &got[1].data[..]), (hv, &video[..]));
    }

    #[test]
    fn all_four_header_types_carry_their_fields() {
        let mut w = BytesMut::new();
        // Type 0: chunk stream 5, time 1000, 3 bytes, type 9, stream 1.
        w.put_slice(&[
            0x05, 0x00, 0x03, 0xe8, 0, 0, 3, 9, 1, 0, 0, 0, b'a', b'b', b'c',
        ]);
        // Type 1: delta 40, 2 bytes, type 8.
        w.put_slice(&[0x45, 0, 0, 40, 0, 0, 2, 8, b'd', b'e']);
        // Type 2: delta 20.
        w.put_slice(&[0x85, 0, 0, 20, b'f', b'g']);
        // Type 3: a new message with the same delta and length.
        w.put_slice(&[0xc5, b'h', b'i']);
        // A two-byte basic header (chunk stream 64 + 10) and a three-byte one (64 + 10 + 256).
        w.put_slice(&[0x00, 10, 0, 0, 5, 0, 0, 1, 20, 0, 0, 0, 0, b'j']);
        w.put_slice(&[0x01, 10, 1, 0, 0, 6, 0, 0, 1, 20, 0, 0, 0, 0, b'k']);
        let got = read_bytewise(&mut Reader::new(), &w).unwrap();
        let summary: Vec<(u32, u32, u8, u32, &[u8])> = got
            .iter()
            .map(|m| {
                let h = m.header;
                (
                    h.chunk_stream,
                    h.timestamp,
                    h.type_id,
                    h.stream_id,
                    &m.data[..],
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (5, 1000, 9, 1, &b"abc"[..]),
                (5, 1040, 8, 1, b"de"),
                (5, 1060, 8, 1, b"fg"),
                (5, 1080, 8, 1, b"hi"),
                (74, 5, 20, 0, b"j"),
                (330, 6, 20, 0, b"k"),
            ]
        );
    }

    #[test]
    fn extended_timestamps_with_and_without_repetition_in_type_3_chunks() {
        let data = payload(300, 3);
        let h = header(6, 0x0100_0000, 9);
        let repeated = chunked(&h, &data, 128);
        assert_eq!(repeated.len(), 12 + 4 + 300 + 2 * (1 + 4));
        let got = read_bytewise(&mut Reader::new(), &repeated).unwrap();
        assert_eq!((got[0].header, &got[0].data[..]), (h, &data[..]));

        // The same message from a writer that does not repeat it in type 3 chunks.
        let mut bare = repeated[..12 + 4 + 128].to_vec();
        bare.push(0xc6);
        bare.extend_from_slice(&data[128..256]);
        bare.push(0xc6);
        bare.extend_from_slice(&data[256..]);
        let got = read_bytewise(&mut Reader::new(), &bare).unwrap();
        assert_eq!((got[0].header, &got[0].data[..]), (h, &data[..]));
    }

    #[test]
    fn set_chunk_size_applies_to_the_chunks_after_it() {
        let mut w = BytesMut::new();
        write(
            &mut w,
            &header(2, 0, SET_CHUNK_SIZE),
            &4096u32.to_be_bytes(),
            128,
        );
        let data = payload(5000, 4);
        let h = header(6, 0, 9);
        write(&mut w, &h, &data, 4096);
        let mut r = Reader::new();
        let got = read_bytewise(&mut r, &w).unwrap();
        assert_eq!(r.chunk_size(), 4096);
        assert_eq!(got.len(), 1, "the Set Chunk Size is applied, not returned");
        assert_eq!(&got[0].data[..], &data[..]);
    }

    #[test]
    fn abort_drops_the_message_in_progress() {
        let data = payload(300, 5);
        let bytes = chunked(&header(6, 0, 9), &data, 128);
        let mut w = BytesMut::from(&bytes[..12 + 128]);
        write(&mut w, &header(2, 0, ABORT), &6u32.to_be_bytes(), 128);
        let next = header(6, 80, 9);
        write(&mut w, &next, b"xyz", 128);
        let mut r = Reader::new();
        let mut buf = w;
        assert!(r.next(&mut buf).unwrap().is_some_and(|m| m.header == next));
        assert!(!r.in_progress() && r.buffered == 0);
    }

    #[test]
    fn rude_peers_get_errors_not_panics() {
        let mut r = Reader::new();
        let mut buf = BytesMut::from(&[0x86, 0, 0, 1][..]);
        assert_eq!(
            r.next(&mut buf),
            Err(Error::NoHeader {
                chunk_stream: 6,
                fmt: 2
            })
        );

        let mut buf = BytesMut::from(&[0x06, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0][..]);
        assert_eq!(
            Reader::new().next(&mut buf),
            Err(Error::TooLarge {
                length: 0xff_ffff,
                limit: MAX_MESSAGE
            })
        );

        for size in [0u32, 0x8000_0000] {
            let mut w = BytesMut::new();
            write(
                &mut w,
                &header(2, 0, SET_CHUNK_SIZE),
                &size.to_be_bytes(),
                128,
            );
            assert_eq!(Reader::new().next(&mut w), Err(Error::ChunkSize(size)));
        }

        let mut w = BytesMut::new();
        write(&mut w, &header(2, 0, ABORT), &[1, 2], 128);
        assert_eq!(Reader::new().next(&mut w), Err(Error::ShortControl(ABORT)));

        let mut w = BytesMut::new();
        for id in 0..=MAX_CHUNK_STREAMS as u32 {
            write(&mut w, &header(3 + id, 0, 20), b"x", 128);
        }
        assert_eq!(
            read_all(&mut Reader::new(), &mut w),
            Err(Error::TooManyChunkStreams(MAX_CHUNK_STREAMS))
        );
    }

    #[test]
    fn a_lowered_limit_refuses_what_the_default_accepts() {
        let bytes = chunked(&header(3, 0, 20), &[0; 2000], 128);
        let mut r = Reader::new();
        r.set_budget(Budget {
            max_message: 1000,
            ..Budget::UNTRUSTED
        });
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(
            r.next(&mut buf),
            Err(Error::TooLarge {
                length: 2000,
                limit: 1000
            })
        );
        let mut buf = BytesMut::from(&bytes[..]);
        assert!(Reader::new().next(&mut buf).unwrap().is_some());
    }

    #[test]
    fn unfinished_messages_are_capped_per_connection() {
        let mut r = Reader::new();
        r.chunk_size = 1 << 20;
        let mut w = BytesMut::new();
        // Three chunk streams each start a large message and never finish it.
        for id in 3..6 {
            let data = vec![0u8; MAX_MESSAGE];
            let bytes = chunked(&header(id, 0, 9), &data, 1 << 20);
            w.put_slice(&bytes[..12 + (1 << 20)]);
            w.put_slice(&bytes[12 + (1 << 20)..][..(6 << 20) + 6]);
        }
        assert_eq!(
            read_all(&mut r, &mut w),
            Err(Error::TooMuchBuffered(MAX_BUFFERED))
        );
        assert!(r.buffered <= MAX_BUFFERED);
    }

    /// The reproduction of issue 16: unfinished messages on every chunk stream, a byte short
    /// of done, before any login. An untrusted reader holds kilobytes, whatever it is sent.
    #[test]
    fn an_untrusted_peer_pins_kilobytes() {
        let mut r = Reader::new();
        r.set_budget(Budget::UNTRUSTED);
        let mut w = BytesMut::new();
        let mut sent = 0;
        let mut result = Ok(());
        for id in 3..64 {
            let data = vec![0u8; 60_000];
            let bytes = chunked(&header(id, 0, 20), &data, 128);
            w.put_slice(&bytes[..12 + 128]);
            sent += 128;
            result = read_all(&mut r, &mut w).map(drop);
            if result.is_err() {
                break;
            }
        }
        // 60,000 bytes is past the budget's message size: refused at the first header.
        assert!(matches!(result, Err(Error::TooLarge { .. })), "{result:?}");
        assert_eq!((sent, r.held()), (128, 0));

        // Small messages, each a chunk short of done, on as many chunk streams as allowed.
        let mut r = Reader::new();
        r.set_budget(Budget::UNTRUSTED);
        let mut w = BytesMut::new();
        for id in 3..64 {
            let bytes = chunked(&header(id, 0, 20), &[0u8; 8000], 128);
            w.put_slice(&bytes[..12 + 128]);
        }
        let e = read_all(&mut r, &mut w).unwrap_err();
        assert_eq!(
            e,
            Error::TooManyChunkStreams(Budget::UNTRUSTED.max_chunk_streams)
        );
        assert!(
            r.held() <= 2 * Budget::UNTRUSTED.max_buffered,
            "{}",
            r.held()
        );

        // One message filled chunk by chunk up to the budget.
        let mut r = Reader::new();
        r.set_budget(Budget {
            max_chunk_streams: 64,
            ..Budget::UNTRUSTED
        });
        let mut w = BytesMut::new();
        for id in 3..64 {
            // All but the last chunk (1 + 64 bytes).
            let bytes = chunked(&header(id, 0, 20), &[0u8; 8000], 128);
            w.put_slice(&bytes[..bytes.len() - 65]);
        }
        let e = read_all(&mut r, &mut w).unwrap_err();
        assert_eq!(e, Error::TooMuchBuffered(Budget::UNTRUSTED.max_buffered));
        assert!(
            r.held() <= 2 * Budget::UNTRUSTED.max_buffered,
            "{}",
            r.held()
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut r = Reader::new();
            let mut buf = BytesMut::new();
            for _ in 0..64 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                buf.put_u64(seed);
            }
            while let Ok(Some(_)) = r.next(&mut buf) {}
        }
    }
}
