//! Statuses in: each camera of the node is pulled over RTSP (retina) by a supervised task that
//! reconnects with exponential backoff and jitter, capped at 30 s.
//!
//! The password is read from `password_file` at each connection, so a rotated password needs no
//! reload; it is never logged or shown. A camera that sends no frame for [`STALL`] is treated as
//! failed and reconnected. Its state (connecting, streaming, failed with the last error; fps,
//! bitrate, the time of the last frame) is kept in [`CameraStatus`] for the API, UI and metrics.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt as _;
use retina::client::{
    PlayOptions, SessionGroup, SessionOptions, SetupOptions, TcpTransportOptions, Transport,
    UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::frame::{Codec, Kind, Track, Tracks};
use super::hub::Hub;
use super::nal;
use crate::base::backoff::backoff;
use crate::base::{Error, Kind as ErrorKind, ResultExt as _};
use crate::config::Camera;
use crate::config::site::Transport as CameraTransport;
use crate::store::recording::MAX_SEGMENT_MS;

/// A camera that sends no video keyframe for this long is shown with a warning: its recording
/// cannot be cut into segments.
pub const KEYFRAMES_WITHIN: Duration = Duration::from_millis(MAX_SEGMENT_MS.unsigned_abs());

/// Watches the keyframes of a camera's video: the warning to show when none came for
/// [`KEYFRAMES_WITHIN`], and when to clear it.
#[derive(Debug)]
pub struct KeyframeWatch {
    last: std::time::Instant,
    warned: bool,
}

/// What a [`KeyframeWatch`] asks to show.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyframeNews {
    /// No keyframe for longer than [`KEYFRAMES_WITHIN`]: the warning.
    Missing(String),
    /// A keyframe came after a warning: clear it.
    Back,
}

impl KeyframeWatch {
    /// A watch from `start` (the session's start).
    pub fn new(start: std::time::Instant) -> KeyframeWatch {
        KeyframeWatch {
            last: start,
            warned: false,
        }
    }

    /// A video frame came at `now`: what changes, if anything (once per warning).
    pub fn video(&mut self, keyframe: bool, now: std::time::Instant) -> Option<KeyframeNews> {
        if keyframe {
            self.last = now;
            return std::mem::take(&mut self.warned).then_some(KeyframeNews::Back);
        }
        let since = now.saturating_duration_since(self.last);
        if self.warned || since <= KEYFRAMES_WITHIN {
            return None;
        }
        self.warned = true;
        Some(KeyframeNews::Missing(format!(
            "no keyframe for {} s, longer than a recording segment may last: recording stops \
             until one comes (set the camera's GOP, I-frame interval, below a minute)",
            since.as_secs()
        )))
    }
}

/// A camera that sends nothing for this long is reconnected.
pub const STALL: Duration = Duration::from_secs(10);
/// How long connecting (DESCRIBE, SETUP, PLAY) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A camera's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CameraState {
    /// Connecting, or waiting to reconnect.
    Connecting,
    /// Frames are arriving.
    Streaming,
    /// The last attempt failed; it is retried with backoff.
    Failed,
}

impl CameraState {
    /// The name shown in the API and the metrics.
    pub fn name(&self) -> &'static str {
        match self {
            CameraState::Connecting => "connecting",
            CameraState::Streaming => "streaming",
            CameraState::Failed => "failed",
        }
    }
}

/// What the status shows of a camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CameraStatus {
    /// Its state.
    pub state: CameraState,
    /// The last error, if any. Never holds credentials.
    pub error: Option<String>,
    /// Video frames per second, over the last second.
    pub fps: f64,
    /// Bits per second, over the last second.
    pub bitrate: u64,
    /// When the last frame arrived, RFC 3339.
    pub last_frame: Option<String>,
    /// The video codec and size, once known.
    pub video: Option<String>,
    /// The audio codec, if the camera sends audio.
    pub audio: Option<String>,
    /// Failed attempts in a row.
    pub failures: u32,
    /// What is wrong with a stream that flows: a camera that sent no keyframe for longer than
    /// a recording segment may last ([`MAX_SEGMENT_MS`]), whose recording cannot be cut.
    pub warning: Option<String>,
}

/// The status of every camera of the node, by name.
pub type Statuses = Arc<RwLock<std::collections::BTreeMap<String, CameraStatus>>>;

/// Changes a camera's status, creating it (connecting) if needed.
pub fn update(cams: &Statuses, name: &str, f: impl FnOnce(&mut CameraStatus)) {
    if let Ok(mut c) = cams.write() {
        let entry = c.entry(name.to_string()).or_insert(CameraStatus {
            state: CameraState::Connecting,
            error: None,
            fps: 0.0,
            bitrate: 0,
            last_frame: None,
            video: None,
            audio: None,
            failures: 0,
            warning: None,
        });
        f(entry);
    }
}

/// Removes credentials from an error message: retina's errors may quote the URL.
fn scrub(text: &str, camera: &Camera, password: Option<&str>) -> String {
    let mut out = text.to_string();
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        out = out.replace(p, "***");
    }
    if let Some(u) = &camera.username {
        out = out.replace(&format!("{u}:"), "");
    }
    out
}

/// Opens a camera's stream and feeds its hub until the stream ends: the seam the unit tests
/// of the supervisor and of reconcile swap for a fake, as Moonfire NVR has for its streams, so
/// that they open no connection.
pub trait Opener: Send + Sync {
    /// One session with `camera`: `Ok(true)` if frames flowed before it ended.
    fn session<'a>(
        &'a self,
        camera: &'a Camera,
        password: Option<&'a str>,
        hub: &'a Hub,
        cams: &'a Statuses,
        stop: &'a CancellationToken,
    ) -> futures_util::future::BoxFuture<'a, Result<bool, Error>>;
}

/// The real opener: RTSP with retina, one session group for the node's cameras.
#[derive(Default)]
pub struct Retina {
    group: Arc<SessionGroup>,
}

impl Opener for Retina {
    fn session<'a>(
        &'a self,
        camera: &'a Camera,
        password: Option<&'a str>,
        hub: &'a Hub,
        cams: &'a Statuses,
        stop: &'a CancellationToken,
    ) -> futures_util::future::BoxFuture<'a, Result<bool, Error>> {
        Box::pin(session(camera, password, hub, cams, &self.group, stop))
    }
}

/// Pulls one camera until `stop`, reconnecting with backoff.
pub async fn run(
    camera: Camera,
    hub: Arc<Hub>,
    cams: Statuses,
    stop: CancellationToken,
    opener: Arc<dyn Opener>,
) {
    let mut failures = 0u32;
    loop {
        update(&cams, &camera.name, |c| c.state = CameraState::Connecting);
        let password = camera.password_file.as_ref().map(|p| {
            std::fs::read_to_string(p).map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        });
        let outcome = match password {
            Some(Err(e)) => Err(format!("cannot read the password file: {e}")),
            Some(Ok(p)) => opener
                .session(&camera, Some(&p), &hub, &cams, &stop)
                .await
                .map_err(|e| scrub(&e.to_string(), &camera, Some(&p))),
            None => opener
                .session(&camera, None, &hub, &cams, &stop)
                .await
                .map_err(|e| scrub(&e.to_string(), &camera, None)),
        };
        hub.clear();
        if stop.is_cancelled() {
            return;
        }
        let error = match outcome {
            Ok(streamed) if streamed => {
                failures = 0;
                "the stream ended".to_string()
            }
            Ok(_) => "the stream ended before a frame".to_string(),
            Err(e) => e,
        };
        failures += 1;
        tracing::warn!(camera = %camera.name, error = %error, failures = failures, "camera failed; reconnecting");
        update(&cams, &camera.name, |c| {
            c.state = CameraState::Failed;
            c.error = Some(error.clone());
            c.failures = failures;
            c.fps = 0.0;
            c.bitrate = 0;
        });
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff(failures)) => {}
        }
    }
}

fn video_track(p: &retina::codec::VideoParameters) -> Option<Track> {
    let codec = match p.rfc6381_codec().split('.').next() {
        Some("avc1") => Codec::H264,
        Some("hvc1" | "hev1") => Codec::H265,
        _ => return None,
    };
    Some(Track {
        codec,
        timescale: 90_000,
        extra_data: Bytes::copy_from_slice(p.extra_data()),
        sample_entry: Bytes::from(p.mp4_sample_entry().build().ok()?),
        rfc6381: p.rfc6381_codec().to_string(),
        dimensions: p.pixel_dimensions(),
        channels: 0,
    })
}

fn audio_track(p: &retina::codec::AudioParameters) -> Option<Track> {
    let codec = p.rfc6381_codec().filter(|c| c.starts_with("mp4a.40"))?;
    Some(Track {
        codec: Codec::Aac,
        timescale: p.clock_rate(),
        extra_data: Bytes::copy_from_slice(p.extra_data()),
        sample_entry: Bytes::from(p.mp4_sample_entry().build().ok()?),
        rfc6381: codec.to_string(),
        dimensions: (0, 0),
        channels: p.channels().get(),
    })
}

/// One RTSP session: returns Ok(true) if frames flowed before it ended.
async fn session(
    camera: &Camera,
    password: Option<&str>,
    hub: &Hub,
    cams: &Statuses,
    group: &Arc<SessionGroup>,
    stop: &CancellationToken,
) -> Result<bool, Error> {
    let url = url::Url::parse(&camera.url).err_kind(ErrorKind::Invalid, || "bad URL")?;
    let creds = camera
        .username
        .as_ref()
        .map(|u| retina::client::Credentials {
            username: u.clone(),
            password: password.unwrap_or("").to_string(),
        });
    let options = SessionOptions::default()
        .creds(creds)
        .session_group(group.clone())
        .user_agent(format!("sited/{}", env!("CARGO_PKG_VERSION")));
    let transport = match camera.transport {
        CameraTransport::Tcp => Transport::Tcp(TcpTransportOptions::default()),
        CameraTransport::Udp => Transport::Udp(UdpTransportOptions::default()),
    };
    let connect = async {
        let mut session = retina::client::Session::describe(url, options)
            .await
            .err_kind(ErrorKind::Unavailable, || "DESCRIBE")?;
        let video = session
            .streams()
            .iter()
            .position(|s| s.media() == "video" && matches!(s.encoding_name(), "h264" | "h265"));
        let audio = session
            .streams()
            .iter()
            .position(|s| s.media() == "audio" && s.encoding_name() == "mpeg4-generic");
        let Some(video_i) = video else {
            let offered: Vec<String> = session
                .streams()
                .iter()
                .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
                .collect();
            crate::bail!(
                Invalid,
                "no H.264 or H.265 video stream (the camera offers {})",
                offered.join(", ")
            );
        };
        for i in [Some(video_i), audio].into_iter().flatten() {
            session
                .setup(
                    i,
                    SetupOptions::default()
                        .transport(transport.clone())
                        .frame_format(FrameFormat::MP4),
                )
                .await
                .err_kind(ErrorKind::Unavailable, || "SETUP")?;
        }
        let playing = session
            .play(PlayOptions::default())
            .await
            .err_kind(ErrorKind::Unavailable, || "PLAY")?;
        let demuxed = playing
            .demuxed()
            .err_kind(ErrorKind::Invalid, || "the stream")?;
        Ok::<_, Error>((demuxed, video_i, audio))
    };
    let (mut demuxed, video_i, audio_i) = tokio::select! {
        _ = stop.cancelled() => return Ok(false),
        r = tokio::time::timeout(CONNECT_TIMEOUT, connect) => r.map_err(|_| crate::err!(DeadlineExceeded, "timed out connecting"))??,
    };
    let mut streamed = false;
    let mut announced: Option<Tracks> = None;
    // retina marks only IDR pictures as random access points; H.265's CRA and BLA are too.
    let h265 = demuxed.streams()[video_i].encoding_name() == "h265";
    let mut keyframes = KeyframeWatch::new(std::time::Instant::now());
    update(cams, &camera.name, |c| c.warning = None);
    let mut shown = std::time::Instant::now() - Duration::from_secs(1);
    loop {
        let item = tokio::select! {
            _ = stop.cancelled() => return Ok(streamed),
            item = tokio::time::timeout(STALL, demuxed.next()) => match item {
                Err(_) => crate::bail!(DeadlineExceeded, "no frame for {} s", STALL.as_secs()),
                Ok(None) => return Ok(streamed),
                Ok(Some(Err(e))) => return Err(Error::new(ErrorKind::Unavailable, "").with_source(e)),
                Ok(Some(Ok(item))) => item,
            },
        };
        let (kind, pts, key, data, new_params) = match item {
            CodecItem::VideoFrame(f) if f.stream_id() == video_i => {
                let new = f.has_new_parameters();
                let key = f.is_random_access_point();
                let (pts, data) = (f.timestamp().elapsed(), Bytes::from(f.into_data()));
                let key = key || (h265 && nal::h265_random_access(&data));
                match keyframes.video(key, std::time::Instant::now()) {
                    Some(KeyframeNews::Missing(warning)) => {
                        tracing::warn!(camera = %camera.name, "{warning}");
                        update(cams, &camera.name, |c| c.warning = Some(warning));
                    }
                    Some(KeyframeNews::Back) => {
                        tracing::info!(camera = %camera.name, "keyframes again");
                        update(cams, &camera.name, |c| c.warning = None);
                    }
                    None => {}
                }
                (Kind::Video, pts, key, data, new)
            }
            CodecItem::AudioFrame(f) if Some(f.stream_id()) == audio_i => (
                Kind::Audio,
                f.timestamp().elapsed(),
                true,
                Bytes::copy_from_slice(f.data()),
                false,
            ),
            _ => continue,
        };
        if announced.is_none() || new_params {
            let streams = demuxed.streams();
            let video = match streams[video_i].parameters() {
                Some(ParametersRef::Video(p)) => video_track(p).map(Arc::new),
                _ => None,
            };
            let audio = audio_i.and_then(|i| match streams[i].parameters() {
                Some(ParametersRef::Audio(p)) => audio_track(p).map(Arc::new),
                _ => None,
            });
            if video.is_none() {
                continue;
            }
            let tracks = Tracks { video, audio };
            let describe = |t: &Option<Arc<Track>>| {
                t.as_ref().map(|t| {
                    if t.dimensions.0 > 0 {
                        format!("{} {}x{}", t.codec.name(), t.dimensions.0, t.dimensions.1)
                    } else {
                        format!("{} {} ch", t.codec.name(), t.channels)
                    }
                })
            };
            let (v, a) = (describe(&tracks.video), describe(&tracks.audio));
            update(cams, &camera.name, |c| {
                c.video = v;
                c.audio = a;
            });
            hub.set_tracks(tracks.clone());
            announced = Some(tracks);
        }
        hub.push(kind, pts, 0, key, data);
        if !streamed {
            streamed = true;
            tracing::info!(camera = %camera.name, "camera streaming");
        }
        // The status is refreshed twice a second, not per frame.
        if shown.elapsed() < Duration::from_millis(500) {
            continue;
        }
        shown = std::time::Instant::now();
        show_streaming(cams, &camera.name, hub);
    }
}

/// Shows a camera as streaming, with its hub's frame rate and bit rate.
pub fn show_streaming(cams: &Statuses, name: &str, hub: &Hub) {
    let stats = hub.stats();
    update(cams, name, |c| {
        c.state = CameraState::Streaming;
        c.error = None;
        c.failures = 0;
        c.fps = (stats.fps * 10.0).round() / 10.0;
        c.bitrate = stats.bitrate;
        c.last_frame = Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_without_keyframes_for_a_segment_cap_is_a_warning_once() {
        let t0 = std::time::Instant::now();
        let mut watch = KeyframeWatch::new(t0);
        assert_eq!(watch.video(true, t0), None);
        assert_eq!(watch.video(false, t0 + KEYFRAMES_WITHIN), None);
        let late = t0 + KEYFRAMES_WITHIN + Duration::from_secs(1);
        let Some(KeyframeNews::Missing(text)) = watch.video(false, late) else {
            panic!("no warning");
        };
        assert!(text.starts_with("no keyframe for 601 s"), "{text}");
        assert_eq!(
            watch.video(false, late + Duration::from_secs(60)),
            None,
            "once"
        );
        assert_eq!(watch.video(true, late), Some(KeyframeNews::Back));
        assert_eq!(watch.video(true, late), None);
    }
}
