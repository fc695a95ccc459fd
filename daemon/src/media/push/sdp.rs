//! The SDP of an ANNOUNCE: which media a pushing camera will send, and how.

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `video`, `audio`, …
    pub kind: String,
    /// The RTP payload type.
    pub payload_type: u8,
    /// The encoding name, lowercase (`h264`, `mpeg4-generic`).
    pub encoding: String,
    /// The RTP clock rate.
    pub clock_rate: u32,
    /// The `a=fmtp` parameters, as written.
    pub fmtp: String,
    /// The `a=control` value (`streamid=0`, `trackID=1`, or a whole URL).
    pub control: String,
}

impl Media {
    /// An `a=fmtp` parameter by name (case-insensitive).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.fmtp.split(';').find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }
}

/// The most media sections read.
pub const MAX_MEDIA: usize = 8;

/// Reads the media sections of an SDP.
pub fn parse(text: &str) -> Vec<Media> {
    let mut out: Vec<Media> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            if out.len() == MAX_MEDIA {
                break;
            }
            let mut f = m.split_whitespace();
            let kind = f.next().unwrap_or("").to_string();
            let payload_type = f.nth(2).and_then(|p| p.parse().ok()).unwrap_or(0);
            out.push(Media {
                kind,
                payload_type,
                encoding: String::new(),
                clock_rate: 0,
                fmtp: String::new(),
                control: String::new(),
            });
            continue;
        }
        let Some(media) = out.last_mut() else {
            continue;
        };
        if let Some(rest) = line.strip_prefix("a=rtpmap:") {
            let mut f = rest.split_whitespace();
            if f.next().and_then(|p| p.parse::<u8>().ok()) == Some(media.payload_type) {
                let mut enc = f.next().unwrap_or("").split('/');
                media.encoding = enc.next().unwrap_or("").to_ascii_lowercase();
                media.clock_rate = enc.next().and_then(|r| r.parse().ok()).unwrap_or(0);
            }
        } else if let Some(rest) = line.strip_prefix("a=fmtp:") {
            if let Some((_, params)) = rest.split_once(' ') {
                media.fmtp = params.trim().to_string();
            }
        } else if let Some(control) = line.strip_prefix("a=control:") {
            media.control = control.trim().to_string();
        }
    }
    out
}

/// Which media a SETUP URL names: the one whose control ends the URL, else the only one.
pub fn find(media: &[Media], url: &str) -> Option<usize> {
    let url = url.split('?').next().unwrap_or(url).trim_end_matches('/');
    media
        .iter()
        .position(|m| {
            !m.control.is_empty()
                && m.control != "*"
                && url.ends_with(m.control.trim_start_matches('/'))
        })
        .or_else(|| (media.len() == 1).then_some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `ffmpeg -f rtsp` announces for H.264 and AAC.
    const FFMPEG: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=tool:libavformat 61.7.100\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QAH6zZQFAFuwEQAAADABAAAAMDIPGDGWA=,aOvjyyLA; profile-level-id=64001F\r\na=control:streamid=0\r\nm=audio 0 RTP/AVP 97\r\nb=AS:128\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\na=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=121056E500\r\na=control:streamid=1\r\n";

    #[test]
    fn reads_what_ffmpeg_announces() {
        let m = parse(FFMPEG);
        assert_eq!(m.len(), 2);
        assert_eq!(
            (
                m[0].kind.as_str(),
                m[0].payload_type,
                m[0].encoding.as_str(),
                m[0].clock_rate
            ),
            ("video", 96, "h264", 90_000)
        );
        assert_eq!(
            m[0].parameter("sprop-parameter-sets"),
            Some("Z2QAH6zZQFAFuwEQAAADABAAAAMDIPGDGWA=,aOvjyyLA")
        );
        assert_eq!(m[0].parameter("packetization-mode"), Some("1"));
        assert_eq!(m[1].encoding, "mpeg4-generic");
        assert_eq!(find(&m, "rtsp://192.0.2.1:554/lobby/streamid=1"), Some(1));
        assert_eq!(find(&m, "rtsp://192.0.2.1:554/lobby/streamid=0"), Some(0));
        assert_eq!(find(&m, "rtsp://192.0.2.1:554/lobby/other"), None);
    }

    #[test]
    fn is_bounded_and_tolerant() {
        assert!(parse("garbage\na=rtpmap:96 H264/90000").is_empty());
        assert_eq!(
            parse(&"m=video 0 RTP/AVP 96\n".repeat(100)).len(),
            MAX_MEDIA
        );
        let only = parse("m=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000");
        assert_eq!(find(&only, "rtsp://x/cam"), Some(0));
    }
}
