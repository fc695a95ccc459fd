//! Admission of connections: who may hold a connection open, and how many, before they log in.
//!
//! Every accepted connection gets a [`Ticket`] from its listener's [`Gate`], or is closed at
//! once. Three bounds apply:
//! - **Slots, per listener:** HTTP connections wait for one of [`Limits::slots`]; a flood on a
//!   media port never takes the web UI's. Connections claimed past HTTP (RTMP, HTTP-FLV
//!   viewers) [`Ticket::leave_slot`], since a viewer is a socket and a task, not an HTTP slot.
//! - **Before a login, per address and per listener:** a connection is *pending* until
//!   something on it authenticates ([`Ticket::authenticated`]: a valid session, token, Basic
//!   login, stream key or viewer token). One address (an IPv6 /64 counts as one) may hold
//!   [`Limits::per_address`] pending connections on a listener, and a listener
//!   [`Limits::pending`]. Logged-in viewers are not counted there, so a thousand viewers
//!   behind one NAT still play.
//! - **File descriptors, for the whole process:** [`Descriptors`] admits connections only while
//!   a reserve of descriptors stays free for the daemon's own work (recording files, the
//!   database, camera connections). [`raise_nofile`] first lifts the soft limit to the hard one.
//!
//! A listener's connections before a login may take at most half of the descriptors, so that
//! a flood on one port leaves room on the others (the web UI, `/api/v1/health`).
//!
//! When a flood ends, the memory its connections used is handed back to the system
//! (`malloc_trim`): glibc keeps freed memory in its arenas otherwise, and the daemon's RSS would
//! stay at the flood's peak.
//!
//! The accounting is here, apart from the accept loop, so that it can be tested alone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bounds of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// HTTP connections served at once; more wait for a free slot.
    pub slots: usize,
    /// Connections one address (an IPv6 /64) may hold before logging in.
    pub per_address: usize,
    /// Connections the listener holds before they log in, from all addresses.
    pub pending: usize,
}

/// The bounds of every listener.
pub const LIMITS: Limits = Limits {
    slots: 1024,
    per_address: 32,
    pending: 512,
};

/// Why a connection was closed as soon as it was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address holds [`Limits::per_address`] connections that have not logged in.
    Address,
    /// The listener holds [`Limits::pending`] connections that have not logged in.
    Pending,
    /// Admitting it would eat into the daemon's reserve of file descriptors.
    Descriptors,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Address => "too many connections from this address before a login",
            Refusal::Pending => "too many connections before a login on this listener",
            Refusal::Descriptors => "the file descriptors left are kept for the daemon",
        })
    }
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64 (one host's share of a
/// network), an IPv4-mapped IPv6 address as IPv4.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The process's budget of file descriptors for connections.
#[derive(Debug)]
pub struct Descriptors {
    /// A fixed number of connections, or `None`: the soft limit on open files less the
    /// [`reserve`], read at each admission (so that a limit changed by `prlimit` applies).
    capacity: Option<usize>,
    open: AtomicUsize,
    /// The most connections open since memory was last handed back.
    peak: AtomicUsize,
}

/// The descriptors kept free for the daemon's own work, out of a soft limit of `soft`: a
/// quarter, at least 64 and at most 1,024.
pub fn reserve(soft: u64) -> u64 {
    (soft / 4).clamp(64, 1024)
}

impl Descriptors {
    /// A budget of `capacity` connections.
    pub fn new(capacity: usize) -> Descriptors {
        Descriptors {
            capacity: Some(capacity),
            open: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// The process's budget: its soft limit on open files less the [`reserve`].
    pub fn global() -> Arc<Descriptors> {
        static GLOBAL: OnceLock<Arc<Descriptors>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                Arc::new(Descriptors {
                    capacity: None,
                    open: AtomicUsize::new(0),
                    peak: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// The connections the budget allows now.
    pub fn capacity(&self) -> usize {
        self.capacity.unwrap_or_else(|| {
            let soft = nofile().map_or(1024, |(soft, _)| soft);
            usize::try_from(soft.saturating_sub(reserve(soft))).unwrap_or(usize::MAX)
        })
    }

    /// Connections admitted and not yet closed.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn take(&self) -> bool {
        let capacity = self.capacity();
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < capacity).then_some(n + 1)
            });
        match taken {
            Ok(n) => {
                self.peak.fetch_max(n + 1, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// Gives a connection's descriptor back; true when a flood just ended: at least
    /// [`FLOOD`] connections closed since the peak, and fewer than half of it are left.
    fn give_back(&self) -> bool {
        let open = self.open.fetch_sub(1, Ordering::AcqRel) - 1;
        let peak = self.peak.load(Ordering::Relaxed);
        peak >= open + FLOOD
            && open < peak / 2
            && self
                .peak
                .compare_exchange(peak, open, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }
}

/// Connections closed since the peak that make a flood worth handing memory back for.
pub const FLOOD: usize = 64;

/// Hands the memory freed by a flood's connections back to the system, off the runtime.
fn trim() {
    #[cfg(target_env = "gnu")]
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn_blocking(|| {
            // SAFETY: malloc_trim only walks glibc's own arenas; it has no preconditions.
            unsafe { libc::malloc_trim(0) };
        });
    }
}

/// The soft and hard limits on open files.
pub fn nofile() -> std::io::Result<(u64, u64)> {
    use nix::sys::resource::{Resource, getrlimit};
    getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)
}

/// Raises the soft limit on open files to the hard limit; returns the limits now in force.
pub fn raise_nofile() -> std::io::Result<(u64, u64)> {
    use nix::sys::resource::{Resource, setrlimit};
    let (soft, hard) = nofile()?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(std::io::Error::from)?;
    }
    nofile()
}

#[derive(Debug, Default)]
struct Pending {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One listener's admission: its slots and its count of connections that have not logged in.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    slots: Arc<Semaphore>,
    descriptors: Arc<Descriptors>,
    pending: Mutex<Pending>,
}

impl Gate {
    /// A gate with these limits, drawing on `descriptors`.
    pub fn new(limits: Limits, descriptors: Arc<Descriptors>) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            slots: Arc::new(Semaphore::new(limits.slots)),
            descriptors,
            pending: Mutex::new(Pending::default()),
        })
    }

    /// Waits for a free slot: called before accepting, so that a full listener leaves new
    /// connections in the kernel's queue rather than opening them.
    pub async fn slot(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("the semaphore is never closed"))
    }

    /// Admits a connection from `ip` that holds `slot`, or says why not.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        slot: OwnedSemaphorePermit,
    ) -> Result<Arc<Ticket>, Refusal> {
        let key = address_key(ip);
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let from = p.by_address.get(&key).copied().unwrap_or(0);
            if from >= self.limits.per_address {
                return Err(Refusal::Address);
            }
            if p.total >= self.limits.pending.min(self.descriptors.capacity() / 2) {
                return Err(Refusal::Pending);
            }
            if !self.descriptors.take() {
                return Err(Refusal::Descriptors);
            }
            p.total += 1;
            *p.by_address.entry(key).or_default() += 1;
        }
        Ok(Arc::new(Ticket {
            gate: self.clone(),
            key,
            pending: AtomicBool::new(true),
            slot: Mutex::new(Some(slot)),
        }))
    }

    /// Connections that have not logged in: in all, and from `ip`'s key.
    pub fn pending(&self, ip: IpAddr) -> (usize, usize) {
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let from = p.by_address.get(&address_key(ip)).copied().unwrap_or(0);
        (p.total, from)
    }

    fn settle(&self, key: IpAddr) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.total = p.total.saturating_sub(1);
        if let Some(n) = p.by_address.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                p.by_address.remove(&key);
            }
        }
    }
}

/// One admitted connection; dropping the last reference gives everything back.
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<Gate>,
    key: IpAddr,
    pending: AtomicBool,
    slot: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Ticket {
    /// A ticket of its own gate, without limits: for a connection served outside a listener
    /// (tests, benchmarks).
    pub fn unlimited() -> Arc<Ticket> {
        let limits = Limits {
            slots: 1,
            per_address: usize::MAX,
            pending: usize::MAX,
        };
        let gate = Gate::new(limits, Arc::new(Descriptors::new(usize::MAX)));
        let slot = gate
            .slots
            .clone()
            .try_acquire_owned()
            .unwrap_or_else(|_| unreachable!("a new gate has a free slot"));
        gate.admit(std::net::Ipv6Addr::LOCALHOST.into(), slot)
            .unwrap_or_else(|_| unreachable!("an unlimited gate admits"))
    }

    /// Something on the connection logged in: it no longer counts as pending.
    pub fn authenticated(&self) {
        if self.pending.swap(false, Ordering::AcqRel) {
            self.gate.settle(self.key);
        }
    }

    /// Whether nothing on the connection has logged in yet.
    pub fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Gives the listener's HTTP slot back: the connection was claimed past HTTP.
    pub fn leave_slot(&self) {
        self.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.authenticated();
        if self.gate.descriptors.give_back() {
            trim();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(per_address: usize, pending: usize, capacity: usize) -> Arc<Gate> {
        let limits = Limits {
            slots: 8,
            per_address,
            pending,
        };
        Gate::new(limits, Arc::new(Descriptors::new(capacity)))
    }

    async fn admit(g: &Arc<Gate>, ip: &str) -> Result<Arc<Ticket>, Refusal> {
        let slot = g.slot().await;
        g.admit(ip.parse().unwrap(), slot)
    }

    #[test]
    fn ipv6_counts_by_slash_64_and_mapped_ipv4_as_ipv4() {
        let k = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(k("2001:db8:1:2:aa::1"), k("2001:db8:1:2:ffff::9"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert_eq!(k("::ffff:192.0.2.7"), k("192.0.2.7"));
        assert_ne!(k("192.0.2.7"), k("192.0.2.8"));
    }

    #[tokio::test]
    async fn one_address_holds_only_so_many_connections_before_a_login() {
        let g = gate(2, 100, 100);
        let a = admit(&g, "2001:db8::1").await.unwrap();
        let _b = admit(&g, "2001:db8::2").await.unwrap();
        assert_eq!(
            admit(&g, "2001:db8::3").await.unwrap_err(),
            Refusal::Address
        );
        let _other = admit(&g, "2001:db8:0:1::1").await.unwrap();
        // A login frees its place; so does a closed connection.
        a.authenticated();
        let c = admit(&g, "2001:db8::3").await.unwrap();
        drop(c);
        let _d = admit(&g, "2001:db8::4").await.unwrap();
        assert_eq!(g.pending("2001:db8::9".parse().unwrap()), (3, 2));
        drop(a);
        assert_eq!(g.pending("2001:db8::9".parse().unwrap()), (3, 2));
    }

    #[tokio::test]
    async fn a_listener_holds_only_so_many_pending_connections() {
        let g = gate(10, 2, 100);
        let a = admit(&g, "192.0.2.1").await.unwrap();
        let _b = admit(&g, "192.0.2.2").await.unwrap();
        assert_eq!(admit(&g, "192.0.2.3").await.unwrap_err(), Refusal::Pending);
        a.authenticated();
        admit(&g, "192.0.2.3").await.unwrap();
    }

    #[tokio::test]
    async fn the_descriptor_reserve_counts_logged_in_connections_too() {
        let fds = Arc::new(Descriptors::new(4));
        let limits = Limits {
            slots: 8,
            per_address: 10,
            pending: 10,
        };
        let web = Gate::new(limits, fds.clone());
        let media = Gate::new(limits, fds.clone());
        let mut viewers = Vec::new();
        for i in 1..=3 {
            let t = admit(&web, &format!("192.0.2.{i}")).await.unwrap();
            t.authenticated();
            viewers.push(t);
        }
        let _d = admit(&media, "192.0.2.4").await.unwrap();
        assert_eq!(
            admit(&media, "192.0.2.5").await.unwrap_err(),
            Refusal::Descriptors
        );
        // Refused connections took nothing.
        let ip = "192.0.2.5".parse().unwrap();
        assert_eq!((fds.open(), media.pending(ip)), (4, (1, 0)));
        viewers.pop();
        assert_eq!(fds.open(), 3);
        admit(&web, "192.0.2.5").await.unwrap();
    }

    #[tokio::test]
    async fn slots_are_per_listener_and_a_claimed_connection_leaves_its_own() {
        let fds = Arc::new(Descriptors::new(100));
        let limits = Limits {
            slots: 1,
            per_address: 10,
            pending: 10,
        };
        let (web, media) = (Gate::new(limits, fds.clone()), Gate::new(limits, fds));
        let held = admit(&media, "192.0.2.1").await.unwrap();
        // The media listener is full; the web listener is not.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), media.slot());
        assert!(waiting.await.is_err());
        admit(&web, "192.0.2.1").await.unwrap();
        held.leave_slot();
        admit(&media, "192.0.2.1").await.unwrap();
    }

    #[tokio::test]
    async fn a_listener_takes_at_most_half_the_descriptors_before_a_login() {
        let g = gate(1000, 1000, 10);
        let mut held = Vec::new();
        for i in 0..5 {
            held.push(admit(&g, &format!("192.0.2.{i}")).await.unwrap());
        }
        assert_eq!(admit(&g, "192.0.2.9").await.unwrap_err(), Refusal::Pending);
        held[0].authenticated();
        admit(&g, "192.0.2.9").await.unwrap();
    }

    #[test]
    fn the_end_of_a_flood_is_noticed_when_half_of_it_is_gone() {
        let fds = Descriptors::new(1000);
        for _ in 0..200 {
            assert!(fds.take());
        }
        let ends: Vec<usize> = (0..200)
            .filter(|_| fds.give_back())
            .map(|_| fds.open())
            .collect();
        // 99 open of a peak of 200; then 35 of 99; 64 closes are too few after that.
        assert_eq!(ends, [99, 35]);
    }

    #[test]
    fn the_reserve_is_a_quarter_within_bounds() {
        assert_eq!(reserve(100), 64);
        assert_eq!(reserve(1500), 375);
        assert_eq!(reserve(1 << 20), 1024);
    }
}
