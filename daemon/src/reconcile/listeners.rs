//! The node's listeners: bound, served and supervised as reconcile's actions say
//! (`plan::diff::actions` decides; this only opens, closes and rebinds).
//!
//! Web listeners run the web service on their socket, restarted with backoff when binding or
//! accepting fails. Listeners served by the OS (SSH), done in process, or not built yet get a
//! status entry and no socket: nothing is ever faked. An unprivileged run (`make run` without
//! root) binds ports below 1024 at `port + offset`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use tokio::net::{TcpListener, TcpSocket};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::base::backoff::backoff;
use crate::catalog::{Component, Ports, Service};
use crate::media::output::Live;
use crate::plan::diff::Action;
use crate::plan::{Bind, Listener, Plan};
use crate::state::{ListenerState, ListenerStatus, Shared};

type Key = (Service, u16);

/// The RTMP server's context, replaced when the site's devices change.
pub type RtmpHandle = Arc<std::sync::RwLock<Arc<crate::media::rtmp::RtmpContext>>>;

/// What serves a listener's connections.
#[derive(Clone)]
pub enum Server {
    /// An HTTP router (the web service, the live outputs).
    Http(Router),
    /// The live router, with HTTP-FLV viewers served past it and, when given, RTMP on the same
    /// port: VALT 1935 (first byte 0x03), and RTMPS beside WSS on VALT 444 (the first byte
    /// after TLS).
    Live(Router, Arc<Live>, Option<RtmpHandle>),
    /// The RTSP server.
    Rtsp(Arc<Live>),
    /// The RTMP server alone (Ti Top 1935).
    Rtmp(RtmpHandle),
    /// Cameras that push over RTSP (NovaVMS 554).
    Push(Arc<crate::media::push::PushContext>),
    /// The WebRTC media socket (NovaVMS UDP 8555).
    Webrtc(Arc<crate::media::webrtc::Webrtc>),
    /// The TURN relay's control socket (NovaVMS UDP 3478).
    Turn(Arc<crate::media::turn::Turn>),
    /// The TURN relay's ports: bound by the TURN server, one per allocation, so the listener
    /// only holds its place while the server runs.
    TurnRelay,
}

/// What a listener's supervisor bound.
enum Sockets {
    Tcp(Vec<TcpListener>),
    Udp(tokio::net::UdpSocket),
    None,
}

async fn bind_for(server: &Server, bind_to: Bind, port: u16) -> std::io::Result<Sockets> {
    match server {
        Server::Webrtc(_) | Server::Turn(_) => crate::media::webrtc::bind(port).map(Sockets::Udp),
        Server::TurnRelay => Ok(Sockets::None),
        _ => bind(bind_to, port).await.map(Sockets::Tcp),
    }
}

/// The TURN relay's settings from a plan (none: a relay that reaches nothing). The realm is the
/// site's name; the only peers are the WebRTC socket's host candidates.
pub fn turn_settings(plan: Option<(&Plan, &Listeners, Arc<[u8]>)>) -> crate::media::turn::Settings {
    let mut s = crate::media::turn::Settings {
        realm: "sited".into(),
        secret: Arc::from(&[][..]),
        address: Ipv4Addr::UNSPECIFIED.into(),
        relay_ports: (0, 0),
        peers: Vec::new(),
        max_allocations: 0,
        max_per_user: 0,
    };
    let Some((plan, listeners, secret)) = plan else {
        return s;
    };
    let port = |service| {
        plan.listeners
            .iter()
            .find(|l| l.service == service)
            .map(|l| listeners.bound(l.ports))
    };
    s.realm = plan.site.clone();
    s.secret = secret;
    s.address = plan.node.address;
    if let Some(relay) = port(Service::TurnRelay) {
        s.relay_ports = (relay.lo, relay.hi);
        s.max_allocations = usize::from(relay.hi - relay.lo) + 1;
        // A browser allocates once per gathering; a restarted ICE allocates again.
        s.max_per_user = 4;
    }
    if let Some(webrtc) = port(Service::Webrtc) {
        s.peers = vec![SocketAddr::new(plan.node.address, webrtc.lo)];
    }
    s
}

/// The WebRTC service's settings from a plan: the node's address with the bound port, and the
/// TURN relay when the plan has one.
pub fn webrtc_settings(
    plan: &Plan,
    listeners: &Listeners,
    secret: Arc<[u8]>,
) -> crate::media::webrtc::Settings {
    let port = |service| {
        plan.listeners
            .iter()
            .find(|l| l.service == service)
            .map(|l| listeners.bound(l.ports).lo)
    };
    crate::media::webrtc::Settings {
        candidates: port(Service::Webrtc)
            .map(|p| SocketAddr::new(plan.node.address, p))
            .into_iter()
            .collect(),
        turn: port(Service::Turn).map(|p| crate::media::webrtc::TurnOffer {
            server: SocketAddr::new(plan.node.address, p),
            secret,
        }),
    }
}

/// Hands a connection to the RTMP server of the site's current devices.
fn rtmp_takeover(handle: &RtmpHandle) -> crate::web::Takeover {
    let handle = handle.clone();
    Arc::new(move |stream, peer, ticket| {
        let ctx = handle.read().ok().map(|c| c.clone());
        Box::pin(async move {
            if let Some(ctx) = ctx {
                crate::media::rtmp::serve(stream, peer, ctx, ticket).await;
            }
        })
    })
}

/// The RTMP server alone on a plain TCP listener (Ti Top 1935). Each session leaves its HTTP
/// slot, as RTMP on the live listeners does: viewers are bounded by file descriptors, and
/// sessions that have not published or played by the admission's limits.
fn rtmp_handler(handle: &RtmpHandle) -> crate::base::listen::Handler {
    let takeover = rtmp_takeover(handle);
    Arc::new(move |stream, peer, ticket| {
        ticket.leave_slot();
        takeover(Box::new(stream), peer, ticket)
    })
}

/// What a live listener takes before HTTP: RTMP (when it has it) and HTTP-FLV viewers on plain
/// connections, RTMPS on TLS ones.
fn live_takeovers(live: &Arc<Live>, rtmp: Option<&RtmpHandle>) -> crate::web::Takeovers {
    let (live, rtmp) = (live.clone(), rtmp.map(rtmp_takeover));
    let rtmps = rtmp.clone();
    let plain: crate::web::Sniff = Arc::new(move |first, stream, peer, ticket| match &rtmp {
        Some(rtmp) if first.first() == Some(&crate::web::serve::RTMP_VERSION) => {
            Ok(rtmp(Box::new(stream), peer, ticket.clone()))
        }
        _ => crate::media::output::http_flv::claim(&live, first, stream, peer, ticket),
    });
    crate::web::Takeovers {
        plain: Some(plain),
        rtmps,
    }
}

/// The servers of the node's listeners: the web service, the live outputs, RTSP.
#[derive(Clone)]
pub struct Routers {
    /// UI, API, metrics.
    pub web: Router,
    /// Live video out over HTTP and WebSocket.
    pub live: Router,
    /// Recordings, clips and VOD (VALT's downloads port).
    pub downloads: Router,
    /// Recorded video as HLS VOD (Ti Top's VOD port).
    pub vod: Router,
    /// What the RTSP server and the HTTP-FLV viewers read.
    pub live_outputs: Arc<Live>,
    /// The RTMP server's context.
    pub rtmp: RtmpHandle,
    /// What the push server reads.
    pub push: Arc<crate::media::push::PushContext>,
    /// WebRTC viewers (the same service the web's WHEP routes open sessions on).
    pub webrtc: Arc<crate::media::webrtc::Webrtc>,
    /// The TURN relay.
    pub turn: Arc<crate::media::turn::Turn>,
    /// The per-node secret of the TURN REST credentials, drawn at start.
    pub turn_secret: Arc<[u8]>,
}

impl Routers {
    /// What serves a service's listener, if sited serves it yet.
    pub fn serving(&self, service: Service) -> Option<Server> {
        match (service.component(), service) {
            (Component::Web, _) => Some(Server::Http(self.web.clone())),
            (Component::Media, Service::Live | Service::LiveTls) => Some(Server::Live(
                self.live.clone(),
                self.live_outputs.clone(),
                Some(self.rtmp.clone()),
            )),
            (Component::Media, Service::HttpLive) => Some(Server::Live(
                self.live.clone(),
                self.live_outputs.clone(),
                None,
            )),
            (Component::Media, Service::Rtmp) => Some(Server::Rtmp(self.rtmp.clone())),
            (Component::Media, Service::Rtsp) => Some(Server::Rtsp(self.live_outputs.clone())),
            (Component::Media, Service::CameraPush) => Some(Server::Push(self.push.clone())),
            (Component::Recorder, Service::Downloads) => Some(Server::Http(self.downloads.clone())),
            (Component::Recorder, Service::Vod) => Some(Server::Http(self.vod.clone())),
            (Component::Media, Service::Webrtc) => Some(Server::Webrtc(self.webrtc.clone())),
            (Component::Media, Service::Turn) => Some(Server::Turn(self.turn.clone())),
            (Component::Media, Service::TurnRelay) => Some(Server::TurnRelay),
            _ => None,
        }
    }
}

struct Entry {
    planned: Listener,
    stop: CancellationToken,
}

/// The running listeners of the node.
pub struct Listeners {
    running: BTreeMap<Key, Entry>,
    /// Added to ports below 1024 when not root; 0 binds the real ports.
    pub offset: u16,
}

impl Listeners {
    /// No listener yet.
    pub fn new(offset: u16) -> Listeners {
        Listeners {
            running: BTreeMap::new(),
            offset,
        }
    }

    /// The port actually bound for a planned one.
    pub fn bound(&self, ports: Ports) -> Ports {
        if self.offset > 0 && ports.hi < 1024 {
            Ports {
                lo: ports.lo + self.offset,
                hi: ports.hi + self.offset,
            }
        } else {
            ports
        }
    }

    /// Carries out the listener actions of a reconcile decision (`plan::diff::actions`), and
    /// shows every listener of `plan` in the status. Returns the services (re)started.
    pub fn apply(
        &mut self,
        actions: &[Action],
        plan: &Plan,
        tls: Option<TlsAcceptor>,
        routers: &Routers,
        status: &Shared,
        shutdown: &CancellationToken,
    ) -> Vec<Service> {
        let key = |l: &Listener| (l.service, l.ports.lo);
        let mut start: Vec<&Listener> = Vec::new();
        for action in actions {
            let (close, open) = match action {
                Action::Open(l) => (None, Some(l)),
                Action::Close(l) => (Some(l), None),
                Action::Rebind(o, n) => (Some(o), Some(n)),
                _ => continue,
            };
            if let Some(e) = close.and_then(|l| self.running.remove(&key(l))) {
                tracing::info!(service = %e.planned.service, port = e.planned.ports.lo, "closing listener");
                e.stop.cancel();
            }
            start.extend(open);
        }
        self.show(plan, routers, status);
        let mut started = Vec::new();
        for l in start {
            let Some(server) = routers.serving(l.service) else {
                continue;
            };
            let acceptor = if l.tls { tls.clone() } else { None };
            if l.tls && acceptor.is_none() {
                continue;
            }
            let bound = self.bound(l.ports);
            let stop = shutdown.child_token();
            tracing::info!(service = %l.service, port = bound.lo, tls = l.tls, "starting listener");
            tokio::spawn(supervise(
                key(l),
                l.bind,
                bound.lo,
                acceptor,
                server,
                status.clone(),
                stop.clone(),
                shutdown.clone(),
            ));
            self.running.insert(
                key(l),
                Entry {
                    planned: l.clone(),
                    stop,
                },
            );
            started.push(l.service);
        }
        started
    }

    /// Puts every listener of `plan` in the status: a served one keeps its state while it
    /// runs, and starts as "starting"; the others say who serves them, or that nothing does.
    fn show(&self, plan: &Plan, routers: &Routers, status: &Shared) {
        let previous = status
            .read()
            .map(|s| s.listeners.clone())
            .unwrap_or_default();
        let mut entries: BTreeMap<Key, ListenerStatus> = BTreeMap::new();
        for l in &plan.listeners {
            let key = (l.service, l.ports.lo);
            let state = match l.component {
                Component::Outbound => continue,
                _ if routers.serving(l.service).is_some() => None,
                Component::System => Some(ListenerState::System),
                Component::InProcess => Some(ListenerState::InProcess),
                _ => Some(ListenerState::NotBuilt),
            };
            let kept = previous
                .get(&key)
                .filter(|_| self.running.contains_key(&key))
                .map(|e| e.state.clone());
            let state = state.or(kept).unwrap_or(ListenerState::Failed {
                error: "starting".into(),
                attempts: 0,
            });
            entries.insert(
                key,
                ListenerStatus {
                    service: l.service,
                    port: l.ports,
                    bound_port: self.bound(l.ports),
                    proto: l.proto,
                    bind: l.bind,
                    tls: l.tls,
                    component: l.component,
                    state,
                },
            );
        }
        // The entries go in first, so that a task that starts serving at once finds its entry.
        if let Ok(mut s) = status.write() {
            s.listeners = entries;
        }
    }

    /// Stops every listener.
    pub fn stop_all(&mut self) {
        for (_, e) in std::mem::take(&mut self.running) {
            e.stop.cancel();
        }
    }
}

/// Binds a listener: every address as one dual-stack socket (IPv4 alone where IPv6 is off), or
/// loopback on 127.0.0.1 and, when present, ::1.
pub async fn bind(bind: Bind, port: u16) -> std::io::Result<Vec<TcpListener>> {
    let one = |addr: SocketAddr| -> std::io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(1024)
    };
    match bind {
        Bind::Any => match one(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))) {
            Ok(s) => Ok(vec![s]),
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    || e.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                Err(e)
            }
            Err(_) => Ok(vec![one(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))?]),
        },
        Bind::Loopback => {
            let mut out = vec![one(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?];
            if let Ok(s) = one(SocketAddr::from((Ipv6Addr::LOCALHOST, port))) {
                out.push(s);
            }
            Ok(out)
        }
    }
}

fn set(status: &Shared, key: Key, state: ListenerState) {
    if let Ok(mut s) = status.write()
        && let Some(e) = s.listeners.get_mut(&key)
    {
        e.state = state;
    }
}

#[allow(clippy::too_many_arguments)]
async fn supervise(
    key: Key,
    bind_to: Bind,
    port: u16,
    tls: Option<TlsAcceptor>,
    server: Server,
    status: Shared,
    stop: CancellationToken,
    shutdown: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let error = match bind_for(&server, bind_to, port).await {
            Ok(sockets) => {
                set(&status, key, ListenerState::Serving);
                failures = 0;
                let served = match (&server, sockets) {
                    (Server::Webrtc(webrtc), Sockets::Udp(socket)) => {
                        webrtc.clone().serve(socket, stop.clone()).await
                    }
                    (Server::Turn(turn), Sockets::Udp(socket)) => {
                        turn.clone().serve(socket, stop.clone()).await
                    }
                    (_, Sockets::Udp(_)) | (_, Sockets::None) => {
                        stop.cancelled().await;
                        Ok(())
                    }
                    (Server::Http(router), Sockets::Tcp(sockets)) => {
                        crate::web::serve(
                            sockets,
                            tls.clone(),
                            router.clone(),
                            stop.clone(),
                            shutdown.clone(),
                        )
                        .await
                    }
                    (Server::Live(router, live, rtmp), Sockets::Tcp(sockets)) => {
                        crate::web::serve_with(
                            sockets,
                            tls.clone(),
                            router.clone(),
                            stop.clone(),
                            shutdown.clone(),
                            live_takeovers(live, rtmp.as_ref()),
                        )
                        .await
                    }
                    (Server::Rtsp(live), Sockets::Tcp(sockets)) => {
                        crate::media::output::rtsp::serve(sockets, live.clone(), stop.clone()).await
                    }
                    (Server::Push(ctx), Sockets::Tcp(sockets)) => {
                        crate::media::push::serve(sockets, ctx.clone(), stop.clone()).await
                    }
                    (Server::Rtmp(rtmp), Sockets::Tcp(sockets)) => {
                        crate::base::listen::accept_each(sockets, stop.clone(), rtmp_handler(rtmp))
                            .await
                    }
                    (_, Sockets::Tcp(_)) => Ok(()),
                };
                match served {
                    Ok(()) => return,
                    Err(e) => format!("accepting on {port}: {e}"),
                }
            }
            Err(e) => format!("cannot bind port {port}: {e}"),
        };
        if stop.is_cancelled() {
            return;
        }
        failures += 1;
        tracing::warn!(service = %key.0, port = port, error = %error, failures = failures, "listener failed; retrying");
        set(
            &status,
            key,
            ListenerState::Failed {
                error,
                attempts: failures,
            },
        );
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff(failures)) => {}
        }
    }
}
