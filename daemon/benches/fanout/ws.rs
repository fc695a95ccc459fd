//! sited's live WebSocket: the upgrade, then one binary message per fMP4 fragment.
//!
//! A message is a video frame when its `moof` has a `tfhd` of track 1 (sited's video track);
//! its time is the `tfdt` decode time in the 90 kHz clock sited gives video. Only the first
//! [`KEPT`] bytes of a message are kept; the rest stream by.

use base64::Engine as _;

use super::protocol::Protocol;

/// The bytes of a message kept: enough for `moof`, `mfhd`, `traf`, `tfhd` and `tfdt`.
const KEPT: usize = 96;
const VIDEO_TRACK: u32 = 1;
const VIDEO_CLOCK: u64 = 90;

/// One WebSocket viewer.
pub struct Ws {
    request: Vec<u8>,
    head: Option<Vec<u8>>,
    /// The frame header gathered so far.
    frame: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    left: u64,
    /// The first bytes of the current message.
    message: Vec<u8>,
    fin: bool,
}

impl Ws {
    /// A viewer of `ws://host/path`, with HTTP Basic `user:password` if given.
    pub fn new(host: &str, path: &str, auth: Option<&str>) -> Ws {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let auth = auth
            .map(|a| format!("Authorization: Basic {}\r\n", b64(a)))
            .unwrap_or_default();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Upgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {}\r\n\r\n",
            b64("sited fan-out 16")
        );
        Ws {
            request: request.into_bytes(),
            head: Some(Vec::new()),
            frame: Vec::with_capacity(14),
            left: 0,
            message: Vec::with_capacity(KEPT),
            fin: false,
        }
    }

    /// The length of the frame header gathered so far, once known.
    fn header_length(&self) -> Option<usize> {
        let b1 = *self.frame.get(1)?;
        let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
        Some(
            2 + mask
                + match b1 & 0x7f {
                    126 => 2,
                    127 => 8,
                    _ => 0,
                },
        )
    }

    fn on_header(&mut self) -> Result<(), String> {
        let h = &self.frame;
        let (opcode, fin) = (h[0] & 0x0f, h[0] & 0x80 != 0);
        self.left = match h[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            127 => u64::from_be_bytes(h[2..10].try_into().unwrap()),
            n => u64::from(n),
        };
        if opcode == 8 {
            return Err("the server closed the WebSocket".into());
        }
        if opcode != 0 {
            self.message.clear();
        }
        self.fin = fin;
        self.frame.clear();
        Ok(())
    }

    fn on_message(&self, frames: &mut Vec<u32>) {
        if let Some(time) = video_time(&self.message) {
            frames.push((time / VIDEO_CLOCK) as u32);
        }
    }
}

/// The box at `at` of `b`: its type and where its body and the box end.
fn boxed(b: &[u8], at: usize) -> Option<(&[u8], usize, usize)> {
    let size = u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize;
    Some((b.get(at + 4..at + 8)?, at + 8, at + size))
}

/// The decode time of a fragment of the video track.
fn video_time(m: &[u8]) -> Option<u64> {
    let (kind, body, _) = boxed(m, 0)?;
    if kind != b"moof" {
        return None;
    }
    let (_, _, mfhd_end) = boxed(m, body)?;
    let (kind, traf, _) = boxed(m, mfhd_end)?;
    let (tfhd, tfhd_body, tfhd_end) = boxed(m, traf)?;
    if kind != b"traf" || tfhd != b"tfhd" {
        return None;
    }
    let track = u32::from_be_bytes(m.get(tfhd_body + 4..tfhd_body + 8)?.try_into().ok()?);
    let (tfdt, t, _) = boxed(m, tfhd_end)?;
    if track != VIDEO_TRACK || tfdt != b"tfdt" {
        return None;
    }
    match m.get(t)? {
        1 => Some(u64::from_be_bytes(m.get(t + 4..t + 12)?.try_into().ok()?)),
        _ => Some(u64::from(u32::from_be_bytes(
            m.get(t + 4..t + 8)?.try_into().ok()?,
        ))),
    }
}

impl Protocol for Ws {
    fn hello(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.request)
    }

    fn feed(
        &mut self,
        mut data: &[u8],
        frames: &mut Vec<u32>,
        _: &mut Vec<u8>,
    ) -> Result<(), String> {
        if let Some(head) = &mut self.head {
            let before = head.len();
            head.extend_from_slice(data);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                return Ok(());
            };
            let status = String::from_utf8_lossy(&head[..end]);
            let status = status.lines().next().unwrap_or("");
            if !status.contains(" 101") {
                return Err(format!("the server answered {status:?}"));
            }
            data = &data[end + 4 - before..];
            self.head = None;
        }
        while !data.is_empty() {
            if self.left > 0 {
                let n = (self.left as usize).min(data.len());
                let keep = KEPT.saturating_sub(self.message.len()).min(n);
                self.message.extend_from_slice(&data[..keep]);
                self.left -= n as u64;
                data = &data[n..];
                if self.left == 0 && self.fin {
                    self.on_message(frames);
                }
                continue;
            }
            self.frame.push(data[0]);
            data = &data[1..];
            if self.header_length() == Some(self.frame.len()) {
                self.on_header()?;
                if self.left == 0 && self.fin {
                    self.on_message(frames);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sited::media::fmp4::{Sample, fragment};

    #[test]
    fn video_fragments_are_frames_at_their_decode_time() {
        let sample = |len| Sample {
            duration: 3600,
            keyframe: true,
            composition: 0,
            data: Bytes::from(vec![0; len]),
        };
        let mut stream = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
        stream.extend_from_slice(&[0x81, 2, b'{', b'}']);
        for (track, time, len) in [(1, 90 * 40, 300), (2, 48 * 40, 10), (1, 90 * 80, 70_000)] {
            let f = fragment(1, track, time, &[sample(len)]);
            stream.push(0x82);
            match f.len() {
                n if n < 126 => stream.push(n as u8),
                n if n < 65536 => {
                    stream.push(126);
                    stream.extend_from_slice(&(n as u16).to_be_bytes());
                }
                n => {
                    stream.push(127);
                    stream.extend_from_slice(&(n as u64).to_be_bytes());
                }
            }
            stream.extend_from_slice(&f);
        }
        for step in [1, 5, 64, 1000, stream.len()] {
            let mut ws = Ws::new("h:1", "/live/cam", None);
            let mut frames = Vec::new();
            for piece in stream.chunks(step) {
                ws.feed(piece, &mut frames, &mut Vec::new()).unwrap();
            }
            assert_eq!(frames, vec![40, 80], "split every {step} bytes");
        }
    }
}
