//! The login throttle: guessing slows to a crawl, and the owner of the right password still
//! gets in.
//!
//! Failures are counted under two keys: the source (an IPv4 address, or an IPv6 /64, since one
//! host holds a whole /64) and the user name. A key with [`MAX_FAILURES`] failures within
//! [`FAILURE_WINDOW`] is *slowed*: it may try once per [`SLOW`], and an attempt in between is
//! refused (429, with how long to wait) without checking the password. An attempt that is let
//! through is checked as usual, so the right password always works on the next slot: the owner
//! waits seconds, never the whole window. The user key is not applied to a source that logged
//! in as that user before (within [`TRUSTED_FOR`]), so an attacker guessing one user's
//! password from many networks slows only themselves.
//!
//! The table forgets keys whose window has passed, and holds at most [`MAX_KEYS`]; a failure
//! is logged for the first [`MAX_FAILURES`] of a source in a window and once more when it is
//! slowed, never once per guess.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::base::admission::address_key;

/// Failures allowed per key and window before the key is slowed.
pub const MAX_FAILURES: u32 = 5;
/// The window of [`MAX_FAILURES`].
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// A slowed key may try once per this long.
pub const SLOW: Duration = Duration::from_secs(5);
/// A source that logged in as a user is not slowed by that user's failures for this long.
pub const TRUSTED_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// The most keys the table holds; the oldest are forgotten first.
pub const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Source(IpAddr),
    User(u64),
}

#[derive(Debug, Clone, Copy)]
struct Count {
    since: Instant,
    failures: u32,
    last_try: Instant,
}

/// Failed logins by source and by user.
#[derive(Debug, Default)]
pub struct Throttle {
    counts: HashMap<Key, Count>,
    trusted: HashMap<(IpAddr, u64), Instant>,
}

fn user_key(name: &str) -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    static SEED: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let mut h = SEED.get_or_init(Default::default).build_hasher();
    h.write(name.as_bytes());
    h.finish()
}

impl Throttle {
    fn keys(&self, ip: IpAddr, user: &str, now: Instant) -> Vec<Key> {
        let (source, user) = (address_key(ip), user_key(user));
        let trusted = self
            .trusted
            .get(&(source, user))
            .is_some_and(|at| now.duration_since(*at) < TRUSTED_FOR);
        let mut keys = vec![Key::Source(source)];
        if !trusted {
            keys.push(Key::User(user));
        }
        keys
    }

    /// Whether an attempt from `ip` as `user` may be checked now; `Err` with how long to wait
    /// when it is refused unchecked. Letting it through takes the key's slot.
    pub fn admit(&mut self, ip: IpAddr, user: &str, now: Instant) -> Result<(), Duration> {
        let keys = self.keys(ip, user, now);
        let mut wait = Duration::ZERO;
        for key in &keys {
            if let Some(c) = self.counts.get(key)
                && now.duration_since(c.since) < FAILURE_WINDOW
                && c.failures >= MAX_FAILURES
            {
                wait = wait.max(SLOW.saturating_sub(now.duration_since(c.last_try)));
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for key in keys {
            if let Some(c) = self.counts.get_mut(&key) {
                c.last_try = now;
            }
        }
        Ok(())
    }

    /// Counts a failure; returns whether it is worth a log line.
    pub fn failed(&mut self, ip: IpAddr, user: &str, now: Instant) -> bool {
        self.prune(now);
        let mut log = false;
        for key in self.keys(ip, user, now) {
            let c = self.counts.entry(key).or_insert(Count {
                since: now,
                failures: 0,
                last_try: now,
            });
            if now.duration_since(c.since) >= FAILURE_WINDOW {
                *c = Count {
                    since: now,
                    failures: 0,
                    last_try: now,
                };
            }
            c.failures = c.failures.saturating_add(1);
            c.last_try = now;
            if matches!(key, Key::Source(_)) {
                log = c.failures <= MAX_FAILURES;
            }
        }
        log
    }

    /// Records a login: the source is trusted for the user, and its failures are forgotten.
    pub fn succeeded(&mut self, ip: IpAddr, user: &str, now: Instant) {
        let source = address_key(ip);
        self.counts.remove(&Key::Source(source));
        self.trusted.insert((source, user_key(user)), now);
        if self.trusted.len() > MAX_KEYS {
            self.trusted
                .retain(|_, at| now.duration_since(*at) < TRUSTED_FOR);
        }
    }

    /// Keys held, for the tests.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Makes room for one more try's keys (its source and its user), so that the table never
    /// holds more than [`MAX_KEYS`]: expired keys go first, then the oldest.
    fn prune(&mut self, now: Instant) {
        const KEYS_PER_TRY: usize = 2;
        if self.counts.len() + KEYS_PER_TRY <= MAX_KEYS {
            return;
        }
        self.counts
            .retain(|_, c| now.duration_since(c.since) < FAILURE_WINDOW);
        while self.counts.len() + KEYS_PER_TRY > MAX_KEYS {
            let Some(oldest) = self
                .counts
                .iter()
                .min_by_key(|(_, c)| c.since)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.counts.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Guesses made until `admit` refuses, from `sources`, as `user`.
    fn guesses(t: &mut Throttle, sources: &[IpAddr], user: &str, now: Instant) -> usize {
        let mut n = 0;
        for s in sources.iter().cycle().take(1000) {
            if t.admit(*s, user, now).is_err() {
                continue;
            }
            t.failed(*s, user, now);
            n += 1;
        }
        n
    }

    /// Issue 16 §2: 20 addresses of one /64 made 100 guesses in 2.7 s.
    #[test]
    fn a_slash_64_is_one_source() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let sources: Vec<IpAddr> = (1..=20).map(|i| ip(&format!("2001:db8::{i}"))).collect();
        assert_eq!(guesses(&mut t, &sources, "ann", now), MAX_FAILURES as usize);
    }

    #[test]
    fn many_networks_guessing_one_user_are_slowed_together() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let sources: Vec<IpAddr> = (1..=20).map(|i| ip(&format!("2001:db8:{i}::1"))).collect();
        assert_eq!(guesses(&mut t, &sources, "ann", now), MAX_FAILURES as usize);
        // Another user is not slowed by them.
        assert!(t.admit(ip("192.0.2.1"), "bob", now).is_ok());
    }

    /// The owner is never locked out for the window: the next slot checks the password.
    #[test]
    fn a_slowed_owner_gets_in_on_the_next_slot() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let owner = ip("192.0.2.7");
        for _ in 0..MAX_FAILURES {
            t.admit(owner, "ann", now).unwrap();
            t.failed(owner, "ann", now);
        }
        let wait = t.admit(owner, "ann", now).unwrap_err();
        assert!(wait <= SLOW);
        assert!(t.admit(owner, "ann", now + SLOW).is_ok());
        t.succeeded(owner, "ann", now + SLOW);
        assert!(t.admit(owner, "ann", now + SLOW).is_ok());
    }

    #[test]
    fn a_source_that_logged_in_is_not_slowed_by_others_guessing_its_user() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let owner = ip("198.51.100.4");
        t.succeeded(owner, "ann", now);
        let attackers: Vec<IpAddr> = (1..=20).map(|i| ip(&format!("2001:db8:{i}::1"))).collect();
        guesses(&mut t, &attackers, "ann", now);
        assert!(t.admit(owner, "ann", now).is_ok());
        assert!(t.admit(ip("203.0.113.9"), "ann", now).is_err());
    }

    #[test]
    fn failures_are_logged_a_few_times_and_the_table_is_pruned() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let logged = (0..100)
            .filter(|_| t.failed(ip("192.0.2.1"), "x", now))
            .count();
        assert_eq!(logged, MAX_FAILURES as usize);
        for i in 0..(MAX_KEYS as u32 + 500) {
            let a = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            t.failed(IpAddr::V4(a), "nobody", now);
        }
        assert!(t.len() <= MAX_KEYS);
    }
}
