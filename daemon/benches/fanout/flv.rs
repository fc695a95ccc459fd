//! HTTP-FLV: a GET, the response head, then FLV tags, with or without chunked transfer coding.
//!
//! Tags are parsed as they stream by: only an 11-byte header and the first two body bytes are
//! kept; the rest of the body is skipped. A video frame counts once its whole tag has arrived.

use base64::Engine as _;

use super::protocol::{Protocol, video_frame};

/// The FLV tags of a byte stream.
#[derive(Default)]
struct Tags {
    /// The 13-byte file header is still to be skipped.
    header_left: usize,
    /// Bytes of the current tag to skip (rest of the body and the PreviousTagSize).
    skip: usize,
    /// The tag header and first body bytes gathered so far.
    head: Vec<u8>,
    /// The timestamp of the video frame being skipped, counted when its tag ends.
    frame: Option<u32>,
}

impl Tags {
    fn new() -> Tags {
        Tags {
            header_left: 13,
            skip: 0,
            head: Vec::with_capacity(13),
            frame: None,
        }
    }

    fn feed(&mut self, mut data: &[u8], frames: &mut Vec<u32>) {
        while !data.is_empty() {
            if self.header_left > 0 || self.skip > 0 {
                let left = if self.header_left > 0 {
                    &mut self.header_left
                } else {
                    &mut self.skip
                };
                let n = (*left).min(data.len());
                *left -= n;
                data = &data[n..];
                if self.skip == 0 {
                    frames.extend(self.frame.take());
                }
                continue;
            }
            let size =
                |h: &[u8]| usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
            let want = if self.head.len() >= 11 {
                11 + size(&self.head).min(2)
            } else {
                11
            };
            let n = (want - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.head.len() < want || want == 11 && size(&self.head) > 0 {
                continue;
            }
            let h = &self.head;
            if h[0] == 9 && video_frame(&h[11..]) {
                self.frame = Some(u32::from_be_bytes([h[7], h[4], h[5], h[6]]));
            }
            self.skip = size(h) - (h.len() - 11) + 4;
            self.head.clear();
        }
    }
}

/// Chunked transfer coding, undone as the bytes stream by.
#[derive(Default)]
struct Chunked {
    /// Data bytes left in the current chunk.
    data_left: usize,
    /// CRLF bytes left after the current chunk's data.
    crlf_left: usize,
    /// The size line so far.
    line: Vec<u8>,
}

impl Chunked {
    fn feed(&mut self, mut data: &[u8], mut out: impl FnMut(&[u8])) -> Result<(), String> {
        while !data.is_empty() {
            if self.data_left > 0 {
                let n = self.data_left.min(data.len());
                out(&data[..n]);
                self.data_left -= n;
                data = &data[n..];
            } else if self.crlf_left > 0 {
                let n = self.crlf_left.min(data.len());
                self.crlf_left -= n;
                data = &data[n..];
            } else {
                let Some(end) = data.iter().position(|&b| b == b'\n') else {
                    self.line.extend_from_slice(data);
                    return Ok(());
                };
                self.line.extend_from_slice(&data[..end]);
                data = &data[end + 1..];
                let line = String::from_utf8_lossy(&self.line);
                let hex = line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(hex, 16).map_err(|_| format!("chunk {hex:?}"))?;
                if size == 0 {
                    return Err("the server ended the stream".into());
                }
                self.line.clear();
                (self.data_left, self.crlf_left) = (size, 2);
            }
        }
        Ok(())
    }
}

/// One HTTP-FLV viewer.
pub struct Flv {
    request: Vec<u8>,
    head: Vec<u8>,
    body_started: bool,
    chunked: Option<Chunked>,
    tags: Tags,
}

impl Flv {
    /// A viewer of `http://host/path`, with HTTP Basic `user:password` if given.
    pub fn new(host: &str, path: &str, auth: Option<&str>) -> Flv {
        let auth = auth
            .map(|a| {
                let b64 = base64::engine::general_purpose::STANDARD.encode(a);
                format!("Authorization: Basic {b64}\r\n")
            })
            .unwrap_or_default();
        Flv {
            request: format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n").into_bytes(),
            head: Vec::new(),
            body_started: false,
            chunked: None,
            tags: Tags::new(),
        }
    }
}

impl Protocol for Flv {
    fn hello(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.request)
    }

    fn feed(
        &mut self,
        mut data: &[u8],
        frames: &mut Vec<u32>,
        _: &mut Vec<u8>,
    ) -> Result<(), String> {
        if !self.body_started {
            let before = self.head.len();
            self.head.extend_from_slice(data);
            let Some(end) = self.head.windows(4).position(|w| w == b"\r\n\r\n") else {
                return Ok(());
            };
            let head = String::from_utf8_lossy(&self.head[..end]).to_ascii_lowercase();
            let status = head.lines().next().unwrap_or("").to_string();
            if !status.contains(" 200") {
                return Err(format!("the server answered {status:?}"));
            }
            if head.contains("transfer-encoding: chunked") {
                self.chunked = Some(Chunked::default());
            }
            self.body_started = true;
            data = &data[end + 4 - before..];
            self.head = Vec::new();
        }
        match &mut self.chunked {
            Some(c) => c.feed(data, |d| self.tags.feed(d, frames)),
            None => {
                self.tags.feed(data, frames);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_found_across_any_split() {
        let mut stream = b"FLV\x01\x05\0\0\0\x09\0\0\0\0".to_vec();
        let tag = |kind: u8, ts: u32, body: &[u8], out: &mut Vec<u8>| {
            let size = body.len() as u32;
            out.push(kind);
            out.extend_from_slice(&size.to_be_bytes()[1..]);
            out.extend_from_slice(&ts.to_be_bytes()[1..]);
            out.push((ts >> 24) as u8);
            out.extend_from_slice(&[0, 0, 0]);
            out.extend_from_slice(body);
            out.extend_from_slice(&(11 + size).to_be_bytes());
        };
        tag(9, 0, &[0x17, 0, 0, 0, 0, 1], &mut stream);
        tag(8, 10, &[0xaf, 1, 7], &mut stream);
        tag(9, 40, &[0x17, 1, 0, 0, 0, 9, 9], &mut stream);
        tag(18, 41, &[], &mut stream);
        tag(9, 0x0100_0050, &[0x27, 1, 0, 0, 0, 9], &mut stream);
        for step in 1..stream.len() {
            let mut t = Tags::new();
            let mut frames = Vec::new();
            for piece in stream.chunks(step) {
                t.feed(piece, &mut frames);
            }
            assert_eq!(frames, vec![40, 0x0100_0050], "split every {step} bytes");
        }
    }

    #[test]
    fn chunks_are_undone() {
        let mut c = Chunked::default();
        let mut out = Vec::new();
        c.feed(b"3\r\nabc\r\n2;x\r\nde\r", |d| out.extend_from_slice(d))
            .unwrap();
        c.feed(b"\n", |d| out.extend_from_slice(d)).unwrap();
        assert_eq!(out, b"abcde");
        assert!(c.feed(b"0\r\n\r\n", |_| {}).is_err());
    }
}
