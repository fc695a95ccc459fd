//! The site tokens revoked before their expiry (a logout, `POST /api/v1/tokens/revoke`), kept
//! until they expire and shared by every node of the site.
//!
//! A site token checks out by itself on any node ([`super::token`]), so a revocation has to
//! reach every node. Each node keeps this list; the node link carries it both ways whenever
//! it grows (and whole on every link up), and [`Revoked::merge`] only signals a change when
//! something was new, so a list sent back to where it came from stops there. An application
//! node that restarts learns the list again from its media nodes when they relink.
//!
//! The list is bounded ([`MAX`]): past it, the entries that expire soonest are dropped, and a
//! warning says so. Only logged-in users can add to it, one token at a time.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::token::ID;

/// The most revocations a node keeps.
pub const MAX: usize = 40_000;

/// One revoked token, as the node link carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The token's id, hex.
    pub id: String,
    /// Its expiry, Unix seconds: the revocation can be forgotten after it.
    pub expires: u64,
}

/// The revoked tokens of the site, as this node knows them.
pub struct Revoked {
    ids: Mutex<HashMap<[u8; ID], u64>>,
    changes: watch::Sender<u64>,
}

impl Default for Revoked {
    fn default() -> Self {
        Revoked {
            ids: Mutex::new(HashMap::new()),
            changes: watch::channel(0).0,
        }
    }
}

impl Revoked {
    fn ids(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; ID], u64>> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the token `id` is revoked.
    pub fn contains(&self, id: &[u8; ID]) -> bool {
        self.ids().contains_key(id)
    }

    /// Revokes the token `id` until `expires`.
    pub fn add(&self, id: [u8; ID], expires: u64, now: u64) {
        self.merge_ids([(id, expires)], now);
    }

    /// Adds revocations from another node; tells the subscribers only when one was new.
    pub fn merge(&self, list: &[Revocation], now: u64) {
        let ids = list.iter().filter_map(|r| {
            let id = crate::base::hex::decode(&r.id)?;
            Some((<[u8; ID]>::try_from(id).ok()?, r.expires))
        });
        self.merge_ids(ids, now);
    }

    fn merge_ids(&self, list: impl IntoIterator<Item = ([u8; ID], u64)>, now: u64) {
        let mut ids = self.ids();
        let mut new = false;
        for (id, expires) in list {
            if expires > now && ids.insert(id, expires).is_none() {
                new = true;
            }
        }
        if !new {
            return;
        }
        ids.retain(|_, e| *e > now);
        if ids.len() > MAX {
            let mut by_expiry: Vec<_> = ids.iter().map(|(id, e)| (*e, *id)).collect();
            by_expiry.sort_unstable();
            let over = ids.len() - MAX;
            for (_, id) in &by_expiry[..over] {
                ids.remove(id);
            }
            tracing::warn!(
                dropped = over,
                "too many revoked tokens: the ones that expire soonest are forgotten"
            );
        }
        drop(ids);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Every revocation not yet expired at `now`.
    pub fn list(&self, now: u64) -> Vec<Revocation> {
        self.ids()
            .iter()
            .filter(|(_, e)| **e > now)
            .map(|(id, e)| Revocation {
                id: crate::base::hex::encode(id),
                expires: *e,
            })
            .collect()
    }

    /// A receiver told of each change of the list.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_signals_only_what_is_new_and_forgets_the_expired() {
        let r = Revoked::default();
        let mut rx = r.subscribe();
        r.add([1; ID], 100, 10);
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        let list = r.list(10);
        assert_eq!(list.len(), 1);
        // The same list back (from the node it was sent to) is no change: no echo.
        r.merge(&list, 10);
        assert!(!rx.has_changed().unwrap());
        // Already expired: not kept.
        r.add([2; ID], 5, 10);
        assert!(!r.contains(&[2; ID]));
        assert!(r.contains(&[1; ID]));
        assert!(r.list(100).is_empty(), "expired by then");
        // Junk from the wire is skipped.
        r.merge(
            &[Revocation {
                id: "zz".into(),
                expires: 1000,
            }],
            10,
        );
        assert!(!rx.has_changed().unwrap());
    }

    #[test]
    fn the_list_is_bounded_by_dropping_what_expires_soonest() {
        let r = Revoked::default();
        let list: Vec<_> = (0..MAX as u64 + 2)
            .map(|i| {
                let mut id = [0u8; ID];
                id[..8].copy_from_slice(&i.to_be_bytes());
                (id, 1000 + i)
            })
            .collect();
        r.merge_ids(list.clone(), 0);
        assert_eq!(r.list(0).len(), MAX);
        assert!(!r.contains(&list[0].0));
        assert!(r.contains(&list[MAX + 1].0));
    }
}
