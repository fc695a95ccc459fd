//! The node link itself: the application node accepts ([`accept`]) and media nodes dial out
//! ([`dial`]), over any byte stream (the web listener hands over the connection after an HTTP
//! upgrade). The handshake and sealing are [`super::seal`]'s; the messages [`super::wire`]'s.
//! Besides the site versions and their reports, a link carries the site's revoked tokens both
//! ways ([`crate::auth::revoked`]), so a logout on any node holds on every linked node at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};

use super::channel::{self, Channel, Connect, Serve};
use super::registry::{Registry, Version};
use super::seal::{self, Sealed, Secret, Side};
use super::wire::{self, Message, Report};
use crate::auth::{Auth, token};
use crate::base::{Error, Kind, hex};
use crate::media::ingest::{CameraStatus, Statuses};

/// The `Upgrade` token of the HTTP request that becomes a link.
pub const UPGRADE: &str = "sited-link";

/// How often each side says it is alive.
pub const PING: Duration = Duration::from_secs(5);
/// A link silent for this long is down.
pub const SILENCE: Duration = Duration::from_secs(15);
/// How long the handshake may take.
pub const HANDSHAKE: Duration = Duration::from_secs(10);
/// Control messages (channel opens) queued for one media node's link.
const CONTROL: usize = 64;

pub(super) async fn send<S: AsyncWrite + Unpin>(
    io: &mut S,
    sealed: &mut Sealed,
    m: &Message,
) -> Result<(), Error> {
    let frame = sealed.seal(&wire::encode(m)?)?;
    wire::write_frame(io, &frame).await
}

async fn clear<S: AsyncRead + Unpin>(io: &mut S) -> Result<Message, Error> {
    let frame = tokio::time::timeout(HANDSHAKE, wire::read_frame(io))
        .await
        .map_err(|_| Error::new(Kind::DeadlineExceeded, "the node link handshake timed out"))??;
    wire::decode(&frame)
}

/// The application node's side of one connection, until it ends. After the handshake, a
/// connection that says `attach` becomes the channel the application node asked for
/// ([`super::channel`]); any other is a media node's control link: this sends it the version
/// in force and every new one at once, records what the node reports, and carries the
/// [`Message::Open`] of each channel asked for.
pub async fn accept<S>(mut io: S, registry: Arc<Registry>, peer: String) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(secret) = registry.secret() else {
        crate::bail!(
            Unavailable,
            "this node has no site secret; it accepts no node link"
        );
    };
    let (node, mut sealed) = handshake_app(&mut io, &secret, &peer).await?;
    let first = tokio::time::timeout(HANDSHAKE, wire::read_frame(&mut io))
        .await
        .map_err(|_| Error::new(Kind::DeadlineExceeded, "the node link handshake timed out"))??;
    match wire::decode(&sealed.open(first)?)? {
        Message::Attach { id } => {
            return registry
                .channels
                .attach(&node, &id, Channel::new(io, sealed));
        }
        Message::Status { version, sited } => registry.update(&node, |n| {
            n.version = version;
            n.sited = Some(sited);
        }),
        other => crate::bail!(
            Invalid,
            "a node link must start with status or attach, not {other:?}"
        ),
    }
    tracing::info!(node = %node, peer = %peer, "media node linked");
    let (control_tx, control) = mpsc::channel(CONTROL);
    let generation = registry.set_control(&node, control_tx);
    registry.update(&node, |n| {
        n.online = true;
        n.peer = Some(peer.clone());
    });
    let result = serve_media(&mut io, &mut sealed, &registry, &node, control).await;
    registry.drop_control(&node, generation);
    registry.update(&node, |n| n.online = false);
    tracing::warn!(node = %node, error = %result.as_ref().err().map(ToString::to_string).unwrap_or_default(), "media node link ended");
    result
}

/// The application node's half of the handshake: who dialled, and the connection's sealing.
async fn handshake_app<S>(
    io: &mut S,
    secret: &Secret,
    peer: &str,
) -> Result<(String, Sealed), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Message::Hello { node, nonce } = clear(io).await? else {
        crate::bail!(Invalid, "a node link must start with hello");
    };
    let media = wire::unhex::<{ seal::NONCE }>(&nonce)?;
    let (app, proof) = seal::answer(secret, &node, &media)?;
    let answer = Message::Answer {
        nonce: hex::encode(&app),
        proof: hex::encode(&proof),
    };
    wire::write_frame(io, &wire::encode(&answer)?).await?;
    let proof = match clear(io).await {
        Ok(Message::Proof { proof }) => proof,
        Ok(_) => crate::bail!(Invalid, "a node link hello must be followed by a proof"),
        Err(e) => {
            // A media node that finds our proof wrong hangs up: its secret differs from ours.
            tracing::warn!(node = %node, peer = %peer, error = %e, "refused a node link: the peer gave up after our proof (another site secret?)");
            return Err(e);
        }
    };
    if let Err(e) = seal::check_media(secret, &node, &media, &app, &wire::unhex_vec(&proof)?) {
        tracing::warn!(node = %node, peer = %peer, "refused a node link: wrong site secret");
        return Err(e);
    }
    Ok((node, Sealed::new(secret, Side::App, &media, &app)?))
}

/// The media node's half of the handshake: proves itself as `node` once the application node
/// has proven itself, and returns the connection's sealing.
pub(super) async fn handshake_media<S>(
    io: &mut S,
    secret: &Secret,
    node: &str,
) -> Result<Sealed, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let media = seal::media_nonce()?;
    let hello = Message::Hello {
        node: node.to_string(),
        nonce: hex::encode(&media),
    };
    wire::write_frame(io, &wire::encode(&hello)?).await?;
    let Message::Answer { nonce, proof } = clear(io).await? else {
        crate::bail!(Invalid, "the application node did not answer the hello");
    };
    let app = wire::unhex::<{ seal::NONCE }>(&nonce)?;
    let mine = seal::prove_media(secret, node, &media, &app, &wire::unhex_vec(&proof)?)?;
    let proof = Message::Proof {
        proof: hex::encode(&mine),
    };
    wire::write_frame(io, &wire::encode(&proof)?).await?;
    Sealed::new(secret, Side::Media, &media, &app)
}

async fn serve_media<S>(
    io: &mut S,
    sealed: &mut Sealed,
    registry: &Registry,
    node: &str,
    mut control: mpsc::Receiver<Message>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut versions = registry.subscribe();
    let mut ping = tokio::time::interval(PING);
    versions.mark_changed();
    let auth = registry.auth().clone();
    let mut revoked = auth.revoked().subscribe();
    revoked.mark_changed();
    let (mut reader, mut writer) = tokio::io::split(io);
    let (frames_tx, mut frames_rx) = mpsc::channel::<Result<Vec<u8>, Error>>(4);
    let read = read_frames(&mut reader, frames_tx);
    let work = async {
        loop {
            tokio::select! {
                changed = versions.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let version = versions.borrow_and_update().clone();
                    if let Some(Version { sha256, text }) = version {
                        let m = Message::Site { sha256, text };
                        send(&mut writer, sealed, &m).await?;
                    }
                }
                _ = ping.tick() => {
                    send(&mut writer, sealed, &Message::Ping).await?;
                }
                changed = revoked.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    revoked.borrow_and_update();
                    send(&mut writer, sealed, &revocations(&auth)).await?;
                }
                Some(m) = control.recv() => send(&mut writer, sealed, &m).await?,
                frame = frames_rx.recv() => {
                    let Some(frame) = frame else { return Ok(()) };
                    match wire::decode(&sealed.open(frame?)?)? {
                        Message::Status { version, sited } => registry.update(node, |n| {
                            n.version = version;
                            n.sited = Some(sited);
                        }),
                        Message::Report(report) => {
                            tracing::info!(node = %node, version = %report.sha256, outcome = %report.outcome, "media node reported");
                            registry.update(node, |n| {
                                if report.outcome == "applied" || report.outcome == "unchanged" {
                                    n.version = Some(report.sha256.clone());
                                }
                                n.last = Some(report);
                            });
                        }
                        Message::Ping => registry.update(node, |_| {}),
                        Message::Revoked { tokens } => {
                            auth.revoked().merge(&tokens, token::unix_now());
                        }
                        Message::Cameras { cameras } => registry.update(node, |n| n.cameras = cameras),
                        other => crate::bail!(Invalid, "unexpected {other:?} from a media node"),
                    }
                }
            }
        }
    };
    tokio::select! {
        () = read => Err(Error::new(Kind::Unavailable, "the media node closed the link")),
        r = work => r,
    }
}

/// What a media node's link hands its daemon, and takes from it.
pub struct Ends {
    /// Each version the application node sends.
    pub versions: mpsc::Sender<Version>,
    /// The daemon's report of each version, and the version it runs.
    pub reports: watch::Receiver<(Option<String>, Option<Report>)>,
    /// The node's authentication, whose revoked tokens the link shares.
    pub auth: Arc<Auth>,
    /// What serves the channels the application node opens; `None` refuses them.
    pub serve: Option<Arc<dyn Serve>>,
    /// The cameras this node ingests, whose live state goes to the application node.
    pub cameras: Statuses,
}

/// How often a media node looks for a change in its cameras' state to report.
const CAMERAS: Duration = Duration::from_secs(1);

/// Whether the cameras' state changed in what is worth reporting at once (fps and bitrate
/// move all the time: they go with the periodic report).
fn changed(last: &BTreeMap<String, CameraStatus>, now: &BTreeMap<String, CameraStatus>) -> bool {
    last.len() != now.len()
        || last.iter().zip(now).any(|((a, x), (b, y))| {
            a != b
                || x.state != y.state
                || x.error != y.error
                || x.video != y.video
                || x.audio != y.audio
                || x.failures != y.failures
                || x.warning != y.warning
        })
}

/// The revoked tokens of `auth`, as a message.
fn revocations(auth: &Auth) -> Message {
    Message::Revoked {
        tokens: auth.revoked().list(token::unix_now()),
    }
}

/// A media node's side of one link, until it ends: proves itself, then hands every version to
/// the daemon and sends back what the daemon reports. Each channel the application node opens
/// is dialled through `connect` and served by `ends.serve`.
pub async fn dial<S>(
    mut io: S,
    secret: &Secret,
    node: &str,
    ends: &mut Ends,
    connect: &Arc<dyn Connect>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut sealed = handshake_media(&mut io, secret, node).await?;
    let answering = Arc::new(tokio::sync::Semaphore::new(channel::MAX_OPEN));
    let (running, _) = ends.reports.borrow_and_update().clone();
    let status = Message::Status {
        version: running,
        sited: env!("CARGO_PKG_VERSION").to_string(),
    };
    send(&mut io, &mut sealed, &status).await?;
    tracing::info!(node = %node, "linked to the application node");
    let (mut reader, mut writer) = tokio::io::split(io);
    let (frames_tx, mut frames_rx) = mpsc::channel::<Result<Vec<u8>, Error>>(4);
    let read = read_frames(&mut reader, frames_tx);
    let auth = ends.auth.clone();
    let mut revoked = auth.revoked().subscribe();
    revoked.mark_changed();
    let work = async {
        let mut ping = tokio::time::interval(PING);
        let mut look = tokio::time::interval(CAMERAS);
        let mut reported: Option<(BTreeMap<String, CameraStatus>, tokio::time::Instant)> = None;
        loop {
            tokio::select! {
                frame = frames_rx.recv() => {
                    let Some(frame) = frame else { return Ok(()) };
                    match wire::decode(&sealed.open(frame?)?)? {
                        Message::Site { sha256, text } => {
                            if hex::sha256(text.as_bytes()) != sha256 {
                                crate::bail!(Invalid, "a site version whose SHA-256 does not match");
                            }
                            ends.versions
                                .send(Version { sha256, text })
                                .await
                                .map_err(|_| Error::new(Kind::Unavailable, "the daemon stopped"))?;
                        }
                        Message::Ping => {}
                        Message::Revoked { tokens } => {
                            auth.revoked().merge(&tokens, token::unix_now());
                        }
                        Message::Open { id, want } => {
                            let answer = channel::answer(
                                connect.clone(),
                                secret.clone(),
                                node.to_string(),
                                id,
                                want,
                                ends.serve.clone(),
                            );
                            match answering.clone().try_acquire_owned() {
                                Ok(permit) => {
                                    tokio::spawn(async move {
                                        answer.await;
                                        drop(permit);
                                    });
                                }
                                Err(_) => tracing::warn!(node = %node, "refused a channel: {} already open", channel::MAX_OPEN),
                            }
                        }
                        other => crate::bail!(Invalid, "unexpected {other:?} from the application node"),
                    }
                }
                changed = ends.reports.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let (_, report) = ends.reports.borrow_and_update().clone();
                    if let Some(report) = report {
                        send(&mut writer, &mut sealed, &Message::Report(report)).await?;
                    }
                }
                _ = ping.tick() => send(&mut writer, &mut sealed, &Message::Ping).await?,
                changed = revoked.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    revoked.borrow_and_update();
                    send(&mut writer, &mut sealed, &revocations(&auth)).await?;
                }
                _ = look.tick() => {
                    let now = ends.cameras.read().map(|c| c.clone()).unwrap_or_default();
                    let due = reported.as_ref().is_none_or(|(last, at)| {
                        changed(last, &now) || at.elapsed() >= PING
                    });
                    if due {
                        let m = Message::Cameras { cameras: now.clone() };
                        send(&mut writer, &mut sealed, &m).await?;
                        reported = Some((now, tokio::time::Instant::now()));
                    }
                }
            }
        }
    };
    tokio::select! {
        () = read => Err(Error::new(Kind::Unavailable, "the application node closed the link")),
        r = work => r,
    }
}

/// Reads frames into `frames` until the stream ends, fails, or goes silent for [`SILENCE`]
/// (the error is the last item). Reading apart from the select loop keeps a frame whole when
/// the loop wakes for something else.
pub(super) async fn read_frames<R: AsyncRead + Unpin>(
    reader: &mut R,
    frames: mpsc::Sender<Result<Vec<u8>, Error>>,
) {
    loop {
        let frame = tokio::time::timeout(SILENCE, wire::read_frame(reader))
            .await
            .map_err(|_| Error::new(Kind::DeadlineExceeded, "the node link went silent"))
            .and_then(|r| r);
        let stop = frame.is_err();
        if frames.send(frame).await.is_err() || stop {
            return;
        }
    }
}
