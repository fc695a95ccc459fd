//! The composition root: the daemon's state, drivers and servers, built once at start.
//!
//! [`Drivers`] are the seams of every side effect reconcile has beyond sockets: the firewall
//! and the resolver. The daemon gets the real ones from [`Drivers::real`]; the unit tests of
//! [`super::attempt`] give fakes.

use std::sync::{Arc, Mutex, RwLock};

use tokio_util::sync::CancellationToken;

use super::listeners::{self, Listeners};
use super::{FirewallMode, RunConfig};
use crate::base::Error;
use crate::firewall::apply::{Driver, Nft, Resolver, SystemResolver};
use crate::media::cameras::Supervisor;
use crate::plan::Plan;
use crate::state::{Shared, Status};
use crate::store::Store;
use crate::web::{self, App};

/// The side effects reconcile drives, apart from sockets and tasks.
#[derive(Clone)]
pub struct Drivers {
    /// The firewall, or `None` when sited leaves it alone.
    pub firewall: Option<Arc<dyn Driver + Send + Sync>>,
    /// Resolves the licence hosts of the firewall's named sets.
    pub resolver: Arc<dyn Resolver + Send + Sync>,
}

impl Drivers {
    /// The real drivers for a firewall mode.
    pub fn real(mode: FirewallMode) -> Drivers {
        Drivers {
            firewall: match mode {
                FirewallMode::Nft => Some(Arc::new(Nft::default())),
                FirewallMode::None => None,
            },
            resolver: Arc::new(SystemResolver),
        }
    }
}

/// The plan in force and what it was made from.
pub(super) struct Running {
    /// The site file's SHA-256; `None` for the unconfigured plan.
    pub sha256: Option<String>,
    /// The plan.
    pub plan: Arc<Plan>,
    /// The TLS certificate's fingerprint the listeners serve.
    pub fingerprint: String,
}

/// The running daemon.
pub struct Daemon {
    pub(super) cfg: RunConfig,
    pub(super) status: Shared,
    pub(super) store: Arc<Mutex<Store>>,
    pub(super) drivers: Drivers,
    pub(super) listeners: Listeners,
    pub(super) cameras: Supervisor,
    pub(super) routers: listeners::Routers,
    pub(super) current: Option<Running>,
    pub(super) shutdown: CancellationToken,
    /// Whether a retention pass is running; a pass asked for meanwhile is skipped.
    pub(super) retaining: Arc<std::sync::atomic::AtomicBool>,
    /// The media nodes linked to this one (application node).
    pub(super) nodes: Arc<crate::nodes::Registry>,
    /// The cameras other nodes ingest, relayed here (application node).
    pub(super) relays: Arc<crate::nodes::relay::Relays>,
    /// This node's link to its application node (media node).
    pub(super) link: Option<super::links::Link>,
    /// The channels between the daemon and its link.
    pub(super) channels: super::links::Channels,
    /// The last version the application node sent (media node).
    pub(super) received: Option<crate::nodes::Version>,
}

impl Daemon {
    /// Sets up the daemon with the real drivers: opens the state database; nothing is applied
    /// yet.
    pub fn new(cfg: RunConfig, shutdown: CancellationToken) -> Result<(Daemon, Arc<App>), Error> {
        let drivers = Drivers::real(cfg.firewall);
        Daemon::with_drivers(cfg, shutdown, drivers)
    }

    /// Sets up the daemon with the given drivers.
    pub fn with_drivers(
        cfg: RunConfig,
        shutdown: CancellationToken,
        drivers: Drivers,
    ) -> Result<(Daemon, Arc<App>), Error> {
        let db = cfg.state_dir.join("sited.db");
        let store = Store::open(&db)?;
        let recordings = cfg.state_dir.join("recordings");
        // Before any recorder starts: make the files and the index agree after a crash.
        match crate::media::recorder::recovery::run(store.conn(), &recordings) {
            Ok(report) => tracing::info!(report = ?report, "recordings recovered"),
            Err(e) => {
                tracing::error!(error = %e, "recording recovery failed; recordings may be incomplete")
            }
        }
        let status: Shared = Arc::new(RwLock::new(Status::default()));
        let store = Arc::new(Mutex::new(store));
        let hubs = Arc::new(crate::media::hub::Hubs::default());
        let statuses: crate::media::ingest::Statuses = Default::default();
        let auth: Arc<crate::auth::Auth> = Arc::default();
        let nodes = Arc::new(crate::nodes::Registry::new(auth.clone()));
        let hls: Arc<crate::media::output::hls::Hls> = Arc::default();
        let relays = Arc::new(crate::nodes::relay::Relays::new(
            hubs.clone(),
            nodes.clone(),
        ));
        let app = Arc::new(App {
            status: status.clone(),
            store: store.clone(),
            auth: auth.clone(),
            hubs: hubs.clone(),
            cameras: statuses.clone(),
            hls: hls.clone(),
            recordings: recordings.clone(),
            site_file: cfg.config.clone(),
            nodes: nodes.clone(),
            relays: relays.clone(),
            discoveries: Default::default(),
            webrtc: Default::default(),
        });
        let live_outputs = Arc::new(crate::media::output::Live {
            hubs: hubs.clone(),
            hls,
            auth,
        });
        let mut cameras = Supervisor::new(hubs, statuses, db, recordings);
        cameras.segment = cfg.segment;
        if let Ok(mut s) = status.write() {
            s.firewall.driver = if drivers.firewall.is_some() {
                "nft"
            } else {
                "none"
            }
            .to_string();
        }
        let listeners = Listeners::new(cfg.port_offset);
        let rtmp = super::attempt::rtmp_context(&live_outputs, &Default::default());
        let routers = listeners::Routers {
            web: web::router(app.clone()),
            live: web::live::router(app.clone()),
            downloads: web::downloads_router(app.clone()),
            vod: web::vod_router(app.clone()),
            rtmp: Arc::new(RwLock::new(Arc::new(rtmp))),
            push: Arc::new(crate::media::push::PushContext {
                hubs: cameras.hubs.clone(),
                cameras: cameras.push.clone(),
                status: cameras.status.clone(),
            }),
            live_outputs,
            webrtc: app.webrtc.clone(),
            turn: Arc::new(crate::media::turn::Turn::new(listeners::turn_settings(
                None,
            ))),
            turn_secret: Arc::from(crate::base::random::bytes::<32>()?.to_vec()),
        };
        Ok((
            Daemon {
                cfg,
                status,
                store,
                drivers,
                listeners,
                cameras,
                routers,
                current: None,
                shutdown,
                retaining: Arc::default(),
                nodes,
                relays,
                link: None,
                channels: Default::default(),
                received: None,
            },
            app,
        ))
    }

    /// The shared status.
    pub fn status(&self) -> Shared {
        self.status.clone()
    }
}
