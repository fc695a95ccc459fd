//! One WebRTC viewer: a str0m `Rtc` driven by its datagrams, its timers and its hub reader.
//!
//! Frames are written only once ICE and DTLS are up, starting at a keyframe (the hub's GOP
//! cache gives the newest one at once). A viewer that falls behind the hub skips to the next
//! keyframe (the hub's rule); a PLI or FIR is answered with the cached keyframe, after which
//! the session waits for the next keyframe so that no frame refers to a picture the viewer
//! lacks. A change of tracks, an ICE disconnect, a stop or a viewer that never connects ends
//! the session.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::codec::{AnnexB, negotiated_pt};
use super::{CONNECT_TIMEOUT, Command};
use crate::base::{Error, Kind as ErrorKind, ResultExt as _};
use crate::media::frame::{Codec, Frame, Kind, Tracks};
use crate::media::hub::{Hub, Item, Reader, Stop};

/// The least time between two keyframes sent for PLI or FIR.
const KEYFRAME_ANSWER_INTERVAL: Duration = Duration::from_millis(500);

/// Where the camera's video goes in a session.
#[derive(Debug, Clone, Copy)]
pub struct VideoOut {
    /// The media line.
    pub mid: Mid,
    /// The negotiated payload type.
    pub pt: Pt,
}

/// The video media line of an answered `Rtc` (read from its SDP answer) and its payload type
/// for `codec`, if one was negotiated.
pub fn video_media(rtc: &mut Rtc, answer: &str, codec: Codec) -> Option<VideoOut> {
    let mids: Vec<Mid> = answer
        .split("m=")
        .filter(|section| section.starts_with("video"))
        .filter_map(|section| {
            let line = section
                .lines()
                .find_map(|l| l.trim().strip_prefix("a=mid:"))?;
            Some(Mid::from(line.trim()))
        })
        .collect();
    mids.into_iter().find_map(|mid| {
        let pt = negotiated_pt(codec, rtc.writer(mid)?.payload_params())?;
        Some(VideoOut { mid, pt })
    })
}

/// What a session runs with.
pub struct Session {
    /// The peer connection.
    pub rtc: Rtc,
    /// Where the video goes.
    pub video: VideoOut,
    /// The camera's hub, for its cached keyframe.
    pub hub: Arc<Hub>,
    /// The camera's frames.
    pub reader: Reader,
    /// The shared socket.
    pub socket: Arc<UdpSocket>,
    /// Datagrams and trickled candidates.
    pub inbox: mpsc::Receiver<Command>,
    /// Ends the session (DELETE, shutdown).
    pub stop: CancellationToken,
}

struct Sender {
    tracks: Option<Arc<Tracks>>,
    annexb: Option<AnnexB>,
    connected: bool,
    waiting_for_key: bool,
    last_keyframe_answer: Option<Instant>,
    /// Added to presentation times so that RTP time never goes back: not when the cached
    /// keyframe is resent, nor when the camera's clock restarts.
    offset: i64,
    last_time: Option<i64>,
}

impl Sender {
    /// The RTP time (90 kHz) of a frame presented at `pts`: strictly after the last one sent.
    fn rtp_time(&mut self, pts: i64) -> u64 {
        if let Some(last) = self.last_time
            && pts + self.offset <= last
        {
            // One frame interval at 25 fps after the last.
            self.offset = last + 3600 - pts;
        }
        let t = pts + self.offset;
        self.last_time = Some(t);
        t.max(0) as u64
    }
}

/// Runs a session to its end; returns why it ended.
pub async fn run(mut s: Session) -> String {
    let started = Instant::now();
    let mut tx = Sender {
        tracks: None,
        annexb: None,
        connected: false,
        waiting_for_key: true,
        last_keyframe_answer: None,
        offset: 0,
        last_time: None,
    };
    let v6 = s.socket.local_addr().is_ok_and(|a| a.is_ipv6());
    let mut outbox = Vec::new();
    loop {
        let driven = drive(&mut s, &mut tx, &mut outbox);
        // UDP never waits for a viewer: a full socket buffer means the node's own egress is
        // momentarily full, and every session waits its turn rather than lose packets.
        for (data, to) in outbox.drain(..) {
            let _ = s.socket.send_to(&data, outbound(to, v6)).await;
        }
        let deadline = match driven {
            Ok(d) => d,
            Err(why) => return why.to_string(),
        };
        if !tx.connected && started.elapsed() > CONNECT_TIMEOUT {
            return "the viewer did not connect".into();
        }
        let deadline = if tx.connected {
            deadline
        } else {
            deadline.min(started + CONNECT_TIMEOUT + Duration::from_millis(100))
        };
        let wake = tokio::time::Instant::from_std(deadline.max(Instant::now()));
        tokio::select! {
            _ = s.stop.cancelled() => {
                s.rtc.disconnect();
                return "deleted".into();
            }
            cmd = s.inbox.recv() => match cmd {
                Some(Command::Datagram(d)) => {
                    let Ok(r) = Receive::new(Protocol::Udp, d.source, d.destination, &d.data) else { continue };
                    if let Err(e) = s.rtc.handle_input(Input::Receive(d.at, r)) {
                        return format!("WebRTC error: {e}");
                    }
                }
                Some(Command::Candidate(line)) => {
                    let line = line.trim().trim_start_matches("a=");
                    if let Ok(c) = Candidate::from_sdp_string(line) {
                        s.rtc.add_remote_candidate(c);
                    }
                }
                None => return "closed".into(),
            },
            item = s.reader.next(), if tx.connected => match item {
                Ok(Item::Tracks(t)) => {
                    if tx.tracks.as_ref().is_some_and(|old| old.video != t.video) {
                        return "the camera's video changed; the viewer reconnects".into();
                    }
                    tx.annexb = t.video.as_deref().and_then(AnnexB::new);
                    tx.tracks = Some(t);
                }
                Ok(Item::Frame(f)) => {
                    if f.kind != Kind::Video {
                        continue;
                    }
                    if f.composition != 0 {
                        return "the stream has B-frames, which WebRTC cannot carry".into();
                    }
                    if tx.waiting_for_key && !f.keyframe {
                        continue;
                    }
                    tx.waiting_for_key = false;
                    if let Err(why) = write(&mut s.rtc, s.video, &mut tx, &f) {
                        return why.to_string();
                    }
                }
                Err(Stop::TooSlow) => return "the viewer could not keep up".into(),
                Err(Stop::Closed) => return "the stream ended".into(),
            },
            _ = tokio::time::sleep_until(wake) => {
                if let Err(e) = s.rtc.handle_input(Input::Timeout(Instant::now())) {
                    return format!("WebRTC error: {e}");
                }
            }
        }
    }
}

/// Writes one video frame, timed by its presentation time (see [`Sender::rtp_time`]).
fn write(rtc: &mut Rtc, video: VideoOut, tx: &mut Sender, f: &Frame) -> Result<(), Error> {
    let Some(annexb) = &tx.annexb else {
        return Ok(());
    };
    let Some(data) = annexb.access_unit(&f.data, f.keyframe) else {
        return Ok(());
    };
    let Some(writer) = rtc.writer(video.mid) else {
        crate::bail!(Internal, "the video media line is gone");
    };
    let time = MediaTime::new(tx.rtp_time(f.pts()), Frequency::NINETY_KHZ);
    writer
        .write(video.pt, Instant::now(), time, data)
        .err_kind(ErrorKind::Invalid, || "WebRTC")
}

/// Collects what str0m has to send and handles its events; returns when it next needs a
/// timeout.
fn drive(
    s: &mut Session,
    tx: &mut Sender,
    outbox: &mut Vec<(Vec<u8>, SocketAddr)>,
) -> Result<Instant, Error> {
    loop {
        match s
            .rtc
            .poll_output()
            .err_kind(ErrorKind::Invalid, || "WebRTC")?
        {
            Output::Timeout(t) => return Ok(t),
            Output::Transmit(t) => outbox.push((t.contents.into(), t.destination)),
            Output::Event(e) => match e {
                Event::Connected => {
                    tx.connected = true;
                    tx.waiting_for_key = true;
                }
                Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                    crate::bail!(Unavailable, "the viewer's ICE disconnected");
                }
                Event::KeyframeRequest(_) => answer_keyframe_request(s, tx)?,
                _ => {}
            },
        }
    }
}

/// Sends the hub's cached keyframe, at most every [`KEYFRAME_ANSWER_INTERVAL`].
fn answer_keyframe_request(s: &mut Session, tx: &mut Sender) -> Result<(), Error> {
    if !tx.connected
        || tx
            .last_keyframe_answer
            .is_some_and(|t| t.elapsed() < KEYFRAME_ANSWER_INTERVAL)
    {
        return Ok(());
    }
    tx.last_keyframe_answer = Some(Instant::now());
    if let Some(key) = s.hub.keyframe() {
        write(&mut s.rtc, s.video, tx, &key)?;
        tx.waiting_for_key = true;
    }
    Ok(())
}

/// A destination as the socket takes it: IPv4 as IPv4-mapped IPv6 on a dual-stack socket.
fn outbound(to: SocketAddr, v6: bool) -> SocketAddr {
    match to {
        SocketAddr::V4(a) if v6 => SocketAddr::from((a.ip().to_ipv6_mapped(), a.port())),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_time_never_goes_back() {
        let mut tx = Sender {
            tracks: None,
            annexb: None,
            connected: true,
            waiting_for_key: false,
            last_keyframe_answer: None,
            offset: 0,
            last_time: None,
        };
        assert_eq!(tx.rtp_time(90_000), 90_000);
        assert_eq!(tx.rtp_time(93_600), 93_600);
        // The cached keyframe, resent for a PLI, was presented earlier.
        assert_eq!(tx.rtp_time(0), 97_200);
        assert_eq!(tx.rtp_time(3600), 100_800, "the stream goes on from there");
        // The camera's clock restarts.
        assert_eq!(tx.rtp_time(0), 104_400);
    }
}
