//! A TURN relay (RFC 8656) that relays to nothing but sited's own WebRTC socket.
//!
//! Browsers that cannot reach the WebRTC port directly (NovaVMS: "used only when direct P2P
//! fails") allocate a relay port here over UDP. The server answers Binding, Allocate, Refresh,
//! CreatePermission, ChannelBind and Send, carries Data indications and ChannelData, and checks
//! long-term credentials with a nonce ([`credentials`]: ephemeral TURN REST credentials, one set
//! per WHEP session, derived from a per-node secret).
//!
//! Invariants: a permission, a channel or a Send to any peer that is not one of the WebRTC
//! host candidates is refused with 403, so the relay can never be used to reach the site's
//! networks; allocations are capped in total and per credential; relay ports come from the
//! catalog's range; an allocation not refreshed within its lifetime is freed.

pub mod credentials;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::media::stun::{self, Builder, Message};
use crate::media::webrtc::canonical;

const BINDING: u16 = 0x001;
const ALLOCATE: u16 = 0x003;
const REFRESH: u16 = 0x004;
const SEND: u16 = 0x006;
const DATA: u16 = 0x007;
const CREATE_PERMISSION: u16 = 0x008;
const CHANNEL_BIND: u16 = 0x009;

/// The lifetime of an allocation when the client asks for none (RFC 8656 §3.2).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// The longest lifetime granted.
const MAX_LIFETIME: Duration = Duration::from_secs(3600);
/// How long a permission lasts (RFC 8656 §9).
const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// How long a channel binding lasts (RFC 8656 §12).
const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// UDP, in REQUESTED-TRANSPORT.
const UDP: u8 = 17;

/// What the relay is allowed to do, set from the plan.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The realm of the long-term credentials.
    pub realm: String,
    /// The per-node secret of the TURN REST credentials.
    pub secret: Arc<[u8]>,
    /// The node's address, as the relayed address given to clients.
    pub address: IpAddr,
    /// The relay ports (inclusive).
    pub relay_ports: (u16, u16),
    /// The only peers: the WebRTC socket's host candidates.
    pub peers: Vec<SocketAddr>,
    /// The most allocations at once.
    pub max_allocations: usize,
    /// The most allocations of one credential (one WHEP session).
    pub max_per_user: usize,
}

struct Allocation {
    username: String,
    key: Vec<u8>,
    relay: Arc<UdpSocket>,
    relayed: SocketAddr,
    expires: Instant,
    permissions: HashMap<IpAddr, Instant>,
    channels: HashMap<u16, (SocketAddr, Instant)>,
    stop: CancellationToken,
}

type Allocations = Arc<Mutex<HashMap<SocketAddr, Allocation>>>;

/// The TURN server.
pub struct Turn {
    settings: RwLock<Settings>,
    allocations: Allocations,
}

enum Reply {
    None,
    Send(Vec<u8>),
}

impl Turn {
    /// A server with these settings.
    pub fn new(settings: Settings) -> Turn {
        Turn {
            settings: RwLock::new(settings),
            allocations: Arc::default(),
        }
    }

    /// Replaces the settings (a new plan); existing allocations keep their sockets.
    pub fn set_settings(&self, settings: Settings) {
        if let Ok(mut s) = self.settings.write() {
            *s = settings;
        }
    }

    fn settings(&self) -> Option<Settings> {
        self.settings.read().ok().map(|s| s.clone())
    }

    /// The number of allocations.
    pub fn allocations(&self) -> usize {
        self.allocations.lock().map_or(0, |a| a.len())
    }

    /// Serves the control socket until `stop`; frees every allocation at the end.
    pub async fn serve(
        self: Arc<Self>,
        socket: UdpSocket,
        stop: CancellationToken,
    ) -> std::io::Result<()> {
        let socket = Arc::new(socket);
        let mut buf = vec![0u8; 2048];
        let mut sweep = tokio::time::interval(Duration::from_secs(5));
        let result = loop {
            let (n, client) = tokio::select! {
                _ = stop.cancelled() => break Ok(()),
                _ = sweep.tick() => { self.expire(); continue; }
                r = socket.recv_from(&mut buf) => match r {
                    Ok(r) => r,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => break Err(e),
                },
            };
            let client = canonical(client);
            if let Reply::Send(out) = self.handle(&socket, client, &buf[..n]).await {
                let _ = socket.send_to(&out, to_socket(&socket, client)).await;
            }
        };
        if let Ok(mut a) = self.allocations.lock() {
            a.drain().for_each(|(_, a)| a.stop.cancel());
        }
        result
    }

    fn expire(&self) {
        let now = Instant::now();
        if let Ok(mut all) = self.allocations.lock() {
            all.retain(|_, a| {
                a.permissions.retain(|_, t| *t > now);
                a.channels.retain(|_, (_, t)| *t > now);
                let alive = a.expires > now;
                if !alive {
                    a.stop.cancel();
                }
                alive
            });
        }
    }

    async fn handle(&self, socket: &Arc<UdpSocket>, client: SocketAddr, data: &[u8]) -> Reply {
        let Some(settings) = self.settings() else {
            return Reply::None;
        };
        if data.first().is_some_and(|b| (0x40..0x80).contains(b)) {
            self.channel_data(client, data).await;
            return Reply::None;
        }
        let Some(m) = Message::parse(data) else {
            return Reply::None;
        };
        if m.class == stun::INDICATION {
            if m.method == SEND {
                self.send_indication(&settings, client, &m).await;
            }
            return Reply::None;
        }
        if m.class != stun::REQUEST {
            return Reply::None;
        }
        if m.method == BINDING {
            return Reply::Send(
                Builder::new(BINDING, stun::SUCCESS, m.transaction)
                    .xor_address(stun::XOR_MAPPED_ADDRESS, client)
                    .fingerprint(),
            );
        }
        let key = match credentials::check(&settings, &m) {
            Ok(key) => key,
            Err((code, reason)) => return Reply::Send(challenge(&settings, &m, code, reason)),
        };
        let error = |code: u16, reason: &str| {
            Reply::Send(
                Builder::new(m.method, stun::ERROR, m.transaction)
                    .error(code, reason)
                    .integrity(&key)
                    .fingerprint(),
            )
        };
        let ok = |b: Builder| Reply::Send(b.integrity(&key).fingerprint());
        let success = Builder::new(m.method, stun::SUCCESS, m.transaction);
        match m.method {
            ALLOCATE => match self
                .allocate(&settings, socket, client, &m, key.clone())
                .await
            {
                Ok((relayed, lifetime)) => ok(success
                    .xor_address(stun::XOR_RELAYED_ADDRESS, relayed)
                    .attribute(stun::LIFETIME, &lifetime.to_be_bytes())
                    .xor_address(stun::XOR_MAPPED_ADDRESS, client)),
                Err((code, reason)) => error(code, reason),
            },
            REFRESH => {
                let asked = m
                    .get(stun::LIFETIME)
                    .and_then(|v| v.try_into().ok())
                    .map(u32::from_be_bytes);
                let Ok(mut all) = self.allocations.lock() else {
                    return Reply::None;
                };
                let Some(a) = all.get_mut(&client).filter(|a| a.key == key) else {
                    return error(437, "Allocation Mismatch");
                };
                let lifetime = lifetime(asked);
                if lifetime == 0 {
                    a.stop.cancel();
                    all.remove(&client);
                } else {
                    a.expires = Instant::now() + Duration::from_secs(lifetime.into());
                }
                ok(success.attribute(stun::LIFETIME, &lifetime.to_be_bytes()))
            }
            CREATE_PERMISSION | CHANNEL_BIND => {
                let peers: Vec<SocketAddr> = m
                    .attributes
                    .iter()
                    .filter(|(t, _, _)| *t == stun::XOR_PEER_ADDRESS)
                    .filter_map(|_| m.xor_address(stun::XOR_PEER_ADDRESS))
                    .collect();
                if peers.is_empty() {
                    return error(400, "Bad Request: no XOR-PEER-ADDRESS");
                }
                if peers.iter().any(|p| !allowed(&settings, *p)) {
                    return error(
                        403,
                        "Forbidden: this relay reaches only sited's WebRTC socket",
                    );
                }
                let channel = m
                    .get(stun::CHANNEL_NUMBER)
                    .and_then(|v| v.get(..2))
                    .map(|v| u16::from_be_bytes([v[0], v[1]]));
                if m.method == CHANNEL_BIND
                    && !channel.is_some_and(|c| (0x4000..0x5000).contains(&c))
                {
                    return error(400, "Bad Request: channel number out of range");
                }
                let Ok(mut all) = self.allocations.lock() else {
                    return Reply::None;
                };
                let Some(a) = all.get_mut(&client).filter(|a| a.key == key) else {
                    return error(437, "Allocation Mismatch");
                };
                let now = Instant::now();
                for p in &peers {
                    a.permissions.insert(p.ip(), now + PERMISSION_LIFETIME);
                }
                if let Some(c) = channel.filter(|_| m.method == CHANNEL_BIND) {
                    a.channels.insert(c, (peers[0], now + CHANNEL_LIFETIME));
                }
                ok(success)
            }
            _ => error(400, "Bad Request: unknown method"),
        }
    }

    async fn allocate(
        &self,
        settings: &Settings,
        socket: &Arc<UdpSocket>,
        client: SocketAddr,
        m: &Message<'_>,
        key: Vec<u8>,
    ) -> Result<(SocketAddr, u32), (u16, &'static str)> {
        let username = m.username().unwrap_or_default().to_string();
        if m.get(stun::REQUESTED_TRANSPORT).and_then(|v| v.first()) != Some(&UDP) {
            return Err((442, "Unsupported Transport Protocol"));
        }
        {
            let all = self.allocations.lock().map_err(|_| (500, "Server Error"))?;
            if all.contains_key(&client) {
                return Err((437, "Allocation Mismatch"));
            }
            if all.len() >= settings.max_allocations
                || all.values().filter(|a| a.username == username).count() >= settings.max_per_user
            {
                return Err((486, "Allocation Quota Reached"));
            }
        }
        let relay = bind_relay(settings).ok_or((508, "Insufficient Capacity"))?;
        let port = relay
            .local_addr()
            .map_err(|_| (500, "Server Error"))?
            .port();
        let relayed = SocketAddr::new(settings.address, port);
        let lifetime = lifetime(
            m.get(stun::LIFETIME)
                .and_then(|v| v.try_into().ok())
                .map(u32::from_be_bytes),
        );
        let relay = Arc::new(relay);
        let stop = CancellationToken::new();
        tokio::spawn(relay_to_client(
            relay.clone(),
            socket.clone(),
            client,
            self.allocations.clone(),
            stop.clone(),
        ));
        let mut all = self.allocations.lock().map_err(|_| (500, "Server Error"))?;
        all.insert(
            client,
            Allocation {
                username,
                key,
                relay,
                relayed,
                expires: Instant::now() + Duration::from_secs(lifetime.into()),
                permissions: HashMap::new(),
                channels: HashMap::new(),
                stop,
            },
        );
        tracing::info!(client = %client, relayed = %relayed, "TURN allocation");
        Ok((relayed, lifetime))
    }

    /// The relay socket and peer of a client's datagram for `peer`, if it has the permission.
    fn route(
        &self,
        client: SocketAddr,
        peer: Option<SocketAddr>,
        channel: Option<u16>,
    ) -> Option<(Arc<UdpSocket>, SocketAddr)> {
        let all = self.allocations.lock().ok()?;
        let a = all.get(&client)?;
        let peer = match channel {
            Some(c) => a.channels.get(&c)?.0,
            None => peer?,
        };
        a.permissions
            .contains_key(&peer.ip())
            .then(|| (a.relay.clone(), peer))
    }

    async fn send_indication(&self, settings: &Settings, client: SocketAddr, m: &Message<'_>) {
        let (Some(peer), Some(data)) = (m.xor_address(stun::XOR_PEER_ADDRESS), m.get(stun::DATA))
        else {
            return;
        };
        if !allowed(settings, peer) {
            return;
        }
        if let Some((relay, peer)) = self.route(client, Some(peer), None) {
            let _ = relay.send_to(data, to_socket(&relay, peer)).await;
        }
    }

    async fn channel_data(&self, client: SocketAddr, data: &[u8]) {
        let Some(head) = data.get(..4) else { return };
        let channel = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let Some(payload) = data.get(4..4 + len) else {
            return;
        };
        if let Some((relay, peer)) = self.route(client, None, Some(channel)) {
            let _ = relay.send_to(payload, to_socket(&relay, peer)).await;
        }
    }

    /// The relayed addresses, for tests and the status.
    pub fn relayed(&self) -> Vec<SocketAddr> {
        self.allocations
            .lock()
            .map(|a| a.values().map(|a| a.relayed).collect())
            .unwrap_or_default()
    }
}

/// Whether the relay may reach `peer`: only the WebRTC socket's host candidates.
fn allowed(settings: &Settings, peer: SocketAddr) -> bool {
    let peer = canonical(peer);
    settings.peers.iter().any(|p| canonical(*p) == peer)
}

fn lifetime(asked: Option<u32>) -> u32 {
    let max = MAX_LIFETIME.as_secs() as u32;
    asked.map_or(DEFAULT_LIFETIME.as_secs() as u32, |l| l.min(max))
}

/// A 401 or 438 with the realm and a fresh nonce, or another error without integrity.
fn challenge(settings: &Settings, m: &Message<'_>, code: u16, reason: &str) -> Vec<u8> {
    let b = Builder::new(m.method, stun::ERROR, m.transaction).error(code, reason);
    let b = if code == 401 || code == 438 {
        b.attribute(stun::REALM, settings.realm.as_bytes())
            .attribute(stun::NONCE, credentials::nonce(&settings.secret).as_bytes())
    } else {
        b
    };
    b.fingerprint()
}

/// Binds the first free port of the relay range, on the family of the node's address.
fn bind_relay(settings: &Settings) -> Option<UdpSocket> {
    let (lo, hi) = settings.relay_ports;
    let any: IpAddr = if settings.address.is_ipv4() {
        [0, 0, 0, 0].into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    (lo..=hi).find_map(|port| {
        let s = std::net::UdpSocket::bind(SocketAddr::new(any, port)).ok()?;
        s.set_nonblocking(true).ok()?;
        UdpSocket::from_std(s).ok()
    })
}

/// A destination as a socket takes it: IPv4 as IPv4-mapped IPv6 on an IPv6 socket.
fn to_socket(socket: &UdpSocket, to: SocketAddr) -> SocketAddr {
    match to {
        SocketAddr::V4(a) if socket.local_addr().is_ok_and(|l| l.is_ipv6()) => {
            SocketAddr::from((a.ip().to_ipv6_mapped(), a.port()))
        }
        other => other,
    }
}

/// Carries what a peer sends to the relayed address back to the client: as ChannelData when a
/// channel is bound to the peer, else as a Data indication; only from permitted peers.
async fn relay_to_client(
    relay: Arc<UdpSocket>,
    control: Arc<UdpSocket>,
    client: SocketAddr,
    allocations: Allocations,
    stop: CancellationToken,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = relay.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(_) => continue,
            },
        };
        let peer = canonical(peer);
        let channel = {
            let Ok(all) = allocations.lock() else { return };
            let Some(a) = all.get(&client) else { return };
            if !a.permissions.contains_key(&peer.ip()) {
                continue;
            }
            a.channels
                .iter()
                .find(|(_, (p, _))| *p == peer)
                .map(|(c, _)| *c)
        };
        let out = match channel {
            Some(c) => {
                let mut out = Vec::with_capacity(n + 4);
                out.extend_from_slice(&c.to_be_bytes());
                out.extend_from_slice(&(n as u16).to_be_bytes());
                out.extend_from_slice(&buf[..n]);
                out
            }
            None => {
                let Ok(tx) = crate::base::random::bytes::<12>() else {
                    continue;
                };
                Builder::new(DATA, stun::INDICATION, tx)
                    .xor_address(stun::XOR_PEER_ADDRESS, peer)
                    .attribute(stun::DATA, &buf[..n])
                    .fingerprint()
            }
        };
        let _ = control.send_to(&out, to_socket(&control, client)).await;
    }
}

#[cfg(test)]
mod tests;
