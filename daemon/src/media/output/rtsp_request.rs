//! RTSP requests as typed values: what the server acts on is checked before it acts.
//!
//! [`parse`] turns a request head into a [`Request`]: a [`Method`], the stream it names
//! ([`Target`]: a name, a track that exists, a query), its `CSeq` (required: RFC 2326 §12.17),
//! a `Content-Length` within [`MAX_REQUEST`], and the headers. A head that is not RTSP ends the
//! connection; a URL that names nothing served is answered (404) and the connection goes on.
//! [`transport`] reads a SETUP's `Transport` into the one kind served (RTP over TCP,
//! interleaved on a channel pair that fits in a byte). [`take`] splits what a client sends into
//! messages: requests, and the interleaved packets (RTCP receiver reports) it sends once
//! playing. Anything else is a [`Bad`] request, answered with its status and never reaching
//! arithmetic.

use std::collections::HashMap;

use bytes::{Buf as _, BytesMut};

/// The largest request accepted, head and body.
pub const MAX_REQUEST: usize = 16 * 1024;
/// The tracks a stream has: 0 video, 1 audio.
pub const TRACKS: usize = 2;

/// A request method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// OPTIONS.
    Options,
    /// DESCRIBE.
    Describe,
    /// SETUP.
    Setup,
    /// PLAY.
    Play,
    /// GET_PARAMETER or SET_PARAMETER (keep-alives).
    Parameter,
    /// TEARDOWN.
    Teardown,
    /// ANNOUNCE (a camera that pushes, `media::push`).
    Announce,
    /// RECORD (a camera that pushes).
    Record,
    /// Any other method, answered 501.
    Other,
}

impl Method {
    /// The method's name as sent; empty for [`Method::Other`]. `GET_PARAMETER` and
    /// `SET_PARAMETER` both read as `GET_PARAMETER`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Options => "OPTIONS",
            Method::Describe => "DESCRIBE",
            Method::Setup => "SETUP",
            Method::Play => "PLAY",
            Method::Parameter => "GET_PARAMETER",
            Method::Teardown => "TEARDOWN",
            Method::Announce => "ANNOUNCE",
            Method::Record => "RECORD",
            Method::Other => "",
        }
    }
}

/// The stream a URL names: `rtsp://h:p/<name>[/trackID=N][?query]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// The stream's name.
    pub name: String,
    /// The track, when the URL names one.
    pub track: Option<usize>,
    /// The query, without `?`.
    pub query: String,
}

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The URL as sent.
    pub url: String,
    /// What the URL names, or why it names nothing served (answered, the connection goes on).
    pub target: Result<Target, Bad>,
    /// The `CSeq` header: digits, echoed in the response.
    pub cseq: String,
    /// The body's length.
    pub content_length: usize,
    /// Every header, by lower-case name.
    pub headers: HashMap<String, String>,
}

/// Why a request was refused: its status code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bad(pub u16, pub &'static str);

const BAD_REQUEST: Bad = Bad(400, "Bad Request");

/// Parses a request head (without its final empty line).
pub fn parse(head: &str) -> Result<Request, Bad> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(url), Some(version), None) =
        (first.next(), first.next(), first.next(), first.next())
    else {
        return Err(BAD_REQUEST);
    };
    if !version.starts_with("RTSP/1.") {
        return Err(Bad(505, "RTSP Version Not Supported"));
    }
    let mut headers = HashMap::new();
    for line in lines {
        let (k, v) = line.split_once(':').ok_or(BAD_REQUEST)?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let cseq = headers.get("cseq").ok_or(BAD_REQUEST)?;
    if cseq.is_empty() || cseq.len() > 10 || !cseq.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD_REQUEST);
    }
    let content_length = match headers.get("content-length") {
        None => 0,
        Some(l) => l.parse::<usize>().map_err(|_| BAD_REQUEST)?,
    };
    if content_length > MAX_REQUEST {
        return Err(Bad(413, "Request Entity Too Large"));
    }
    let method = match method {
        "OPTIONS" => Method::Options,
        "DESCRIBE" => Method::Describe,
        "SETUP" => Method::Setup,
        "PLAY" => Method::Play,
        "GET_PARAMETER" | "SET_PARAMETER" => Method::Parameter,
        "TEARDOWN" => Method::Teardown,
        "ANNOUNCE" => Method::Announce,
        "RECORD" => Method::Record,
        _ => Method::Other,
    };
    Ok(Request {
        method,
        url: url.to_string(),
        target: target(url),
        cseq: cseq.to_string(),
        content_length,
        headers,
    })
}

/// What a URL names; a track past [`TRACKS`] is not found.
pub fn target(url: &str) -> Result<Target, Bad> {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut parts = path.trim_matches('/').split('/');
    let name = parts.next().unwrap_or("").to_string();
    let track = match parts.next() {
        None => None,
        Some(t) => {
            let n = t.strip_prefix("trackID=").ok_or(Bad(404, "Not Found"))?;
            match n.parse::<usize>() {
                Ok(n) if n < TRACKS => Some(n),
                _ => return Err(Bad(404, "Not Found")),
            }
        }
    };
    if parts.next().is_some() {
        return Err(Bad(404, "Not Found"));
    }
    Ok(Target {
        name,
        track,
        query: query.to_string(),
    })
}

/// What a client sends on an RTSP connection.
#[derive(Debug)]
pub enum Message {
    /// A request.
    Request(Request),
    /// An interleaved packet (`$`, channel, length, data): a player's RTCP, read and dropped.
    Interleaved,
}

/// Takes the first whole message off `buf`: `Ok(None)` while more bytes are needed. Empty
/// lines between messages are skipped; a head longer than [`MAX_REQUEST`] is refused (413).
pub fn take(buf: &mut BytesMut) -> Result<Option<Message>, Bad> {
    while buf.starts_with(b"\r\n") {
        buf.advance(2);
    }
    if buf.first() == Some(&b'$') {
        let Some(len) = buf.get(2..4) else {
            return Ok(None);
        };
        let total = 4 + usize::from(u16::from_be_bytes([len[0], len[1]]));
        if buf.len() < total {
            return Ok(None);
        }
        buf.advance(total);
        return Ok(Some(Message::Interleaved));
    }
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return match buf.len() > MAX_REQUEST {
            true => Err(Bad(413, "Request Entity Too Large")),
            false => Ok(None),
        };
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| BAD_REQUEST)?;
    let request = parse(head)?;
    // Both terms are at most MAX_REQUEST: the head was found within the buffer's bound.
    let total = end
        .checked_add(4)
        .and_then(|t| t.checked_add(request.content_length))
        .ok_or(BAD_REQUEST)?;
    if buf.len() < total {
        return Ok(None);
    }
    buf.advance(total);
    Ok(Some(Message::Request(request)))
}

/// The channel pair of RTP over TCP: RTP on one channel, RTCP on the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channels {
    rtp: u8,
    rtcp: u8,
}

impl Channels {
    /// The pair starting at `rtp`, when `rtp + 1` fits in a byte.
    pub fn starting_at(rtp: u8) -> Option<Channels> {
        rtp.checked_add(1).map(|rtcp| Channels { rtp, rtcp })
    }

    /// A track's own pair, when the client names none: 0-1 for video, 2-3 for audio.
    pub fn of_track(track: usize) -> Channels {
        match track {
            0 => Channels { rtp: 0, rtcp: 1 },
            _ => Channels { rtp: 2, rtcp: 3 },
        }
    }

    /// The RTP channel.
    pub fn rtp(self) -> u8 {
        self.rtp
    }

    /// The RTCP channel (sender reports).
    pub fn rtcp(self) -> u8 {
        self.rtcp
    }

    /// The `interleaved=` value of a Transport header.
    pub fn header(self) -> String {
        format!("{}-{}", self.rtp, self.rtcp)
    }
}

/// The transport a SETUP asks for: RTP over TCP on the client's channels (or the server's
/// choice), or something not served (461).
pub fn transport(header: &str) -> Result<Option<Channels>, Bad> {
    const UNSUPPORTED: Bad = Bad(461, "Unsupported Transport");
    let mut params = header.split(';').map(str::trim);
    let profile = params.next().unwrap_or("");
    if !profile.eq_ignore_ascii_case("RTP/AVP/TCP") {
        return Err(UNSUPPORTED);
    }
    let Some(range) = params.find_map(|p| p.strip_prefix("interleaved=")) else {
        return Ok(None);
    };
    let (rtp, rtcp) = match range.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (range, None),
    };
    let rtp = rtp.parse::<u8>().map_err(|_| UNSUPPORTED)?;
    let pair = Channels::starting_at(rtp).ok_or(UNSUPPORTED)?;
    if let Some(rtcp) = rtcp
        && rtcp.parse::<u16>().ok() != Some(u16::from(rtp) + 1)
    {
        return Err(UNSUPPORTED);
    }
    Ok(Some(pair))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_stream_the_track_and_the_token() {
        let t = |url| target(url).unwrap();
        assert_eq!(t("rtsp://h:8554/lobby").name, "lobby");
        assert_eq!(t("rtsp://h:8554/lobby/trackID=1").track, Some(1));
        assert_eq!(t("rtsp://h:8554/lobby?token=ab").query, "token=ab");
        for bad in [
            "rtsp://h/lobby/trackID=2",
            "rtsp://h/lobby/trackID=18446744073709551616",
            "rtsp://h/lobby/x",
            "rtsp://h/lobby/trackID=0/more",
            "rtsp://h/lobby/trackID=7",
            "rtsp://h/cam3/*",
            "rtsp://h/cam3/trackID=",
            "rtsp://h/cam3/trackID=-1",
        ] {
            assert_eq!(target(bad).unwrap_err().0, 404, "{bad}");
        }
    }

    #[test]
    fn channel_255_has_no_pair_and_only_rtp_over_tcp_is_served() {
        assert_eq!(
            transport("RTP/AVP/TCP;unicast;interleaved=0-1").unwrap(),
            Channels::starting_at(0)
        );
        assert_eq!(
            transport("RTP/AVP/TCP;unicast;interleaved=254-255")
                .unwrap()
                .unwrap()
                .header(),
            "254-255"
        );
        assert_eq!(transport("RTP/AVP/TCP;unicast").unwrap(), None);
        for bad in [
            "RTP/AVP/TCP;unicast;interleaved=255",
            "RTP/AVP/TCP;unicast;interleaved=255-0",
            "RTP/AVP/TCP;unicast;interleaved=256-257",
            "RTP/AVP/TCP;unicast;interleaved=2-7",
            "RTP/AVP;unicast;client_port=5000-5001",
            "RTP/AVP/UDP;unicast;interleaved=0-1",
        ] {
            assert_eq!(transport(bad).unwrap_err().0, 461, "{bad}");
        }
    }

    #[test]
    fn heads_are_checked_before_use() {
        let r = parse("SETUP rtsp://h/cam/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: x").unwrap();
        assert_eq!((r.method, r.cseq.as_str()), (Method::Setup, "3"));
        assert_eq!(r.headers["transport"], "x");
        for (head, code) in [
            (
                "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 99999",
                413,
            ),
            ("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: -1", 400),
            (
                "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 18446744073709551616",
                400,
            ),
            ("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Evil: a\r\nbroken", 400),
            ("OPTIONS * RTSP/1.0\r\nCSeq: 1\rX: 2", 400),
            ("OPTIONS * HTTP/1.1\r\nCSeq: 1", 505),
            ("OPTIONS *  RTSP/1.0", 400),
            // RFC 2326 §12.17: every request carries a CSeq.
            ("OPTIONS * RTSP/1.0", 400),
            ("GET_PARAMETER rtsp://h/cam RTSP/1.0\r\nSession: 1", 400),
            ("OPTIONS * RTSP/1.0\r\nCSeq: x1", 400),
        ] {
            assert_eq!(parse(head).unwrap_err().0, code, "{head:?}");
        }
    }

    #[test]
    fn a_connection_is_split_into_requests_and_interleaved_packets() {
        let mut buf = BytesMut::from(
            &b"\r\n$\x01\x00\x03abcGET_PARAMETER rtsp://h/cam/ RTSP/1.0\r\nCSeq: 4\r\nContent-Length: 2\r\n\r\nhiOPTI"[..],
        );
        assert!(matches!(take(&mut buf), Ok(Some(Message::Interleaved))));
        match take(&mut buf) {
            Ok(Some(Message::Request(r))) => {
                assert_eq!((r.method, r.cseq.as_str()), (Method::Parameter, "4"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(&buf[..], b"OPTI");
        assert!(matches!(take(&mut buf), Ok(None)));
        // A packet that has not fully arrived waits; so does a request's body.
        let mut half = BytesMut::from(&b"$\x01\x00\x09abc"[..]);
        assert!(matches!(take(&mut half), Ok(None)));
        let mut body = BytesMut::from(
            &b"SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 5\r\n\r\nab"[..],
        );
        assert!(matches!(take(&mut body), Ok(None)));
        let mut endless = BytesMut::from(&vec![b'A'; MAX_REQUEST + 1][..]);
        assert_eq!(take(&mut endless).unwrap_err().0, 413);
        let mut no_cseq = BytesMut::from(&b"TEARDOWN rtsp://h/cam RTSP/1.0\r\n\r\n"[..]);
        assert_eq!(take(&mut no_cseq).unwrap_err().0, 400);
    }
}
