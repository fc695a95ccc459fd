//! WebRTC live view: every viewer's media on one UDP socket (NovaVMS 8555).
//!
//! A WHEP request ([`crate::web::whep`]) opens a [`session`] with [`Webrtc::open`]: one str0m
//! `Rtc` (ICE-lite, sans-IO) fed by one hub reader, in a task of its own. [`Webrtc::serve`]
//! reads the shared socket and hands each datagram to its session: by source address once
//! known, else by the local ICE ufrag in a STUN binding request's USERNAME (`ours:theirs`), as
//! go2rtc and MediaMTX do. Every session sends on the same socket.
//!
//! Invariants: sessions are bounded in total and per user ([`Limits`]); a session whose viewer
//! does not connect within [`CONNECT_TIMEOUT`], whose ICE disconnects, or that is deleted, ends
//! and forgets its ufrag and addresses. The host candidates are the node's address from the
//! site file with the bound port ([`Settings`]), set by reconcile.

pub mod codec;
pub mod session;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::media::hub::Hub;

/// How long a viewer has to connect after the answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Datagrams queued for one session before more are dropped.
const INBOX: usize = 256;

/// How many sessions the node holds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// In total.
    pub total: usize,
    /// Per user.
    pub per_user: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            total: 500,
            per_user: 64,
        }
    }
}

/// The TURN relay a viewer may use, with the secret its credentials are derived from.
#[derive(Debug, Clone)]
pub struct TurnOffer {
    /// The TURN server's address as clients reach it (the node's address, the bound port).
    pub server: SocketAddr,
    /// The per-node secret of the TURN REST credentials.
    pub secret: Arc<[u8]>,
}

/// Where viewers reach the node, set from the plan.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The host candidates: the node's address with the bound WebRTC port.
    pub candidates: Vec<SocketAddr>,
    /// The TURN relay, where the layout has one.
    pub turn: Option<TurnOffer>,
}

/// A datagram for a session.
pub struct Datagram {
    /// When it arrived.
    pub at: Instant,
    /// Who sent it.
    pub source: SocketAddr,
    /// The local address it arrived on (the host candidate of its family).
    pub destination: SocketAddr,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// What a session is told from outside.
pub enum Command {
    /// A datagram from its viewer.
    Datagram(Datagram),
    /// A trickled remote candidate (`a=candidate:...` line).
    Candidate(String),
}

struct Entry {
    user: String,
    ufrag: String,
    inbox: mpsc::Sender<Command>,
    stop: CancellationToken,
    addresses: Vec<SocketAddr>,
}

#[derive(Default)]
struct Registry {
    by_id: HashMap<String, Entry>,
    by_ufrag: HashMap<String, String>,
    by_addr: HashMap<SocketAddr, String>,
}

/// Why a session was not opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The node has no WebRTC socket (the layout has no WebRTC port, or it is not bound yet).
    Unavailable,
    /// Too many sessions, in total or for this user.
    Busy(String),
    /// The stream cannot go over WebRTC, or the offer has nothing sited can send.
    Unplayable(String),
    /// The offer is not SDP str0m accepts.
    BadOffer(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unavailable => write!(f, "WebRTC is not served on this node"),
            Refusal::Busy(why) | Refusal::Unplayable(why) => write!(f, "{why}"),
            Refusal::BadOffer(why) => write!(f, "the SDP offer was refused: {why}"),
        }
    }
}

/// An opened session.
#[derive(Debug, Clone)]
pub struct Opened {
    /// Its id, in the WHEP resource URL.
    pub id: String,
    /// The SDP answer.
    pub answer: String,
}

/// The node's WebRTC service.
#[derive(Default)]
pub struct Webrtc {
    socket: RwLock<Option<Arc<UdpSocket>>>,
    settings: RwLock<Settings>,
    registry: Mutex<Registry>,
    /// The session bounds.
    pub limits: Limits,
}

/// The crypto of every session: the system OpenSSL through str0m.
fn crypto() -> Arc<str0m::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<str0m::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(str0m::crypto::from_feature_flags()))
        .clone()
}

/// The node's DTLS certificate, made once: a key pair per session would cost each viewer's
/// first frame a key generation. The fingerprint in each answer authenticates it.
fn certificate() -> Option<str0m::crypto::dtls::DtlsCert> {
    static CERT: OnceLock<Option<str0m::crypto::dtls::DtlsCert>> = OnceLock::new();
    CERT.get_or_init(|| crypto().dtls_provider.generate_certificate())
        .clone()
}

/// 128 random bits, hex: session ids, ICE ufrags and passwords.
fn random_id() -> Result<String, Refusal> {
    crate::base::random::bytes::<16>()
        .map(|b| crate::base::hex::encode(&b))
        .map_err(|_| Refusal::Unavailable)
}

impl Webrtc {
    /// A service with these bounds.
    pub fn with_limits(limits: Limits) -> Webrtc {
        Webrtc {
            limits,
            ..Webrtc::default()
        }
    }

    /// Sets where viewers reach the node.
    pub fn set_settings(&self, settings: Settings) {
        if let Ok(mut s) = self.settings.write() {
            *s = settings;
        }
    }

    /// Where viewers reach the node.
    pub fn settings(&self) -> Settings {
        self.settings.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// Whether a socket is being served.
    pub fn available(&self) -> bool {
        self.socket.read().is_ok_and(|s| s.is_some())
    }

    /// The number of sessions.
    pub fn sessions(&self) -> usize {
        self.registry.lock().map_or(0, |r| r.by_id.len())
    }

    /// Opens a session of `user` watching `hub`, answering `offer`.
    pub fn open(
        self: &Arc<Self>,
        hub: Arc<Hub>,
        user: &str,
        offer: &str,
    ) -> Result<Opened, Refusal> {
        let socket = self
            .socket
            .read()
            .ok()
            .and_then(|s| s.clone())
            .ok_or(Refusal::Unavailable)?;
        let candidates = self.settings().candidates;
        if candidates.is_empty() {
            return Err(Refusal::Unavailable);
        }
        {
            let r = self.registry.lock().map_err(|_| Refusal::Unavailable)?;
            if r.by_id.len() >= self.limits.total {
                return Err(Refusal::Busy(format!(
                    "the node already serves {} WebRTC viewers",
                    self.limits.total
                )));
            }
            if r.by_id.values().filter(|e| e.user == user).count() >= self.limits.per_user {
                return Err(Refusal::Busy(format!(
                    "{user} already has {} WebRTC viewers open",
                    self.limits.per_user
                )));
            }
        }
        let tracks = hub.tracks();
        if let Some(why) = codec::refusal(tracks.as_deref(), hub.has_bframes()) {
            return Err(Refusal::Unplayable(why));
        }
        let video = tracks
            .as_ref()
            .and_then(|t| t.video.clone())
            .ok_or_else(|| Refusal::Unplayable("the camera sends no video yet".into()))?;
        let offer = str0m::change::SdpOffer::from_sdp_string(offer)
            .map_err(|e| Refusal::BadOffer(e.to_string()))?;
        let ufrag = random_id()?;
        let mut config = str0m::RtcConfig::new()
            .set_crypto_provider(crypto())
            .set_ice_lite(true)
            .set_local_ice_credentials(str0m::IceCreds {
                ufrag: ufrag.clone(),
                pass: random_id()?,
            });
        if let Some(cert) = certificate() {
            config = config.set_dtls_cert(cert);
        }
        *config.codec_config() = codec::codec_config(&video).ok_or_else(|| {
            Refusal::Unplayable("the camera's decoder configuration is unreadable".into())
        })?;
        let mut rtc = config.build(Instant::now());
        for c in &candidates {
            if let Ok(c) = str0m::Candidate::host(*c, "udp") {
                rtc.add_local_candidate(c);
            }
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| Refusal::BadOffer(e.to_string()))?;
        let answer = answer.to_sdp_string();
        let video_out = session::video_media(&mut rtc, &answer, video.codec).ok_or_else(|| {
            Refusal::Unplayable(format!(
                "the browser offered no {} with the camera's profile to receive",
                video.codec.name()
            ))
        })?;
        let id = random_id()?;
        let (inbox, rx) = mpsc::channel(INBOX);
        let stop = CancellationToken::new();
        {
            let mut r = self.registry.lock().map_err(|_| Refusal::Unavailable)?;
            r.by_ufrag.insert(ufrag.clone(), id.clone());
            r.by_id.insert(
                id.clone(),
                Entry {
                    user: user.to_string(),
                    ufrag,
                    inbox,
                    stop: stop.clone(),
                    addresses: Vec::new(),
                },
            );
        }
        let me = self.clone();
        let session_id = id.clone();
        tokio::spawn(async move {
            let end = session::run(session::Session {
                rtc,
                video: video_out,
                reader: hub.subscribe(),
                hub,
                socket,
                inbox: rx,
                stop,
            })
            .await;
            tracing::info!(session = %session_id, reason = %end, "WebRTC session ended");
            me.forget(&session_id);
        });
        Ok(Opened { id, answer })
    }

    /// Whether a session exists and belongs to `user`.
    pub fn owns(&self, id: &str, user: &str) -> bool {
        self.registry
            .lock()
            .is_ok_and(|r| r.by_id.get(id).is_some_and(|e| e.user == user))
    }

    /// Gives a session trickled candidates.
    pub fn trickle(&self, id: &str, candidates: Vec<String>) -> bool {
        let Some(inbox) = self
            .registry
            .lock()
            .ok()
            .and_then(|r| r.by_id.get(id).map(|e| e.inbox.clone()))
        else {
            return false;
        };
        for c in candidates {
            let _ = inbox.try_send(Command::Candidate(c));
        }
        true
    }

    /// Ends a session.
    pub fn close(&self, id: &str) -> bool {
        let stop = self
            .registry
            .lock()
            .ok()
            .and_then(|r| r.by_id.get(id).map(|e| e.stop.clone()));
        stop.inspect(CancellationToken::cancel).is_some()
    }

    fn forget(&self, id: &str) {
        if let Ok(mut r) = self.registry.lock()
            && let Some(e) = r.by_id.remove(id)
        {
            r.by_ufrag.remove(&e.ufrag);
            for a in e.addresses {
                r.by_addr.remove(&a);
            }
        }
    }

    /// The session a datagram is for: by its source, else by the ufrag of a STUN request (which
    /// then binds the source to the session).
    fn route(&self, source: SocketAddr, data: &[u8]) -> Option<mpsc::Sender<Command>> {
        let mut r = self.registry.lock().ok()?;
        if let Some(id) = r.by_addr.get(&source) {
            return r.by_id.get(id).map(|e| e.inbox.clone());
        }
        let ours = crate::media::stun::username(data)?.split(':').next()?;
        let id = r.by_ufrag.get(ours)?.clone();
        r.by_addr.insert(source, id.clone());
        let e = r.by_id.get_mut(&id)?;
        e.addresses.push(source);
        Some(e.inbox.clone())
    }

    /// Serves the shared socket until `stop`: every datagram goes to its session.
    pub async fn serve(
        self: Arc<Self>,
        socket: UdpSocket,
        stop: CancellationToken,
    ) -> std::io::Result<()> {
        let socket = Arc::new(socket);
        if let Ok(mut s) = self.socket.write() {
            *s = Some(socket.clone());
        }
        let result = self.receive(&socket, &stop).await;
        if let Ok(mut s) = self.socket.write() {
            *s = None;
        }
        if let Ok(r) = self.registry.lock() {
            r.by_id.values().for_each(|e| e.stop.cancel());
        }
        result
    }

    async fn receive(&self, socket: &UdpSocket, stop: &CancellationToken) -> std::io::Result<()> {
        let mut buf = vec![0u8; 2048];
        loop {
            let (n, source) = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = socket.recv_from(&mut buf) => match r {
                    Ok(r) => r,
                    // ICMP port unreachable from a gone viewer surfaces here on Linux.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => return Err(e),
                },
            };
            let source = canonical(source);
            let Some(inbox) = self.route(source, &buf[..n]) else {
                continue;
            };
            let destination = self.destination(source.ip());
            let _ = inbox.try_send(Command::Datagram(Datagram {
                at: Instant::now(),
                source,
                destination,
                data: buf[..n].to_vec(),
            }));
        }
    }

    /// The host candidate a viewer at `peer` talks to: the first of its family.
    fn destination(&self, peer: IpAddr) -> SocketAddr {
        let candidates = self.settings().candidates;
        candidates
            .iter()
            .find(|c| c.is_ipv4() == peer.is_ipv4())
            .or(candidates.first())
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }
}

/// An address as str0m knows it: IPv4-mapped IPv6 (from a dual-stack socket) as IPv4.
pub fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// Binds the WebRTC socket: dual-stack where IPv6 is on, else IPv4.
pub fn bind(port: u16) -> std::io::Result<UdpSocket> {
    let v6 = std::net::UdpSocket::bind(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)));
    let socket = match v6 {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => return Err(e),
        Err(_) => std::net::UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], port)))?,
    };
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}
