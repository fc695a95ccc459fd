//! What changes between two plans of one node: the reconcile diff and `sited plan`'s output.
//!
//! Firewall rules are compared as rendered text per chain (a multiset), set elements per set;
//! listeners by service (a listener that keeps its port, address and TLS is unchanged); cameras by
//! name (a camera whose own entry did not change is unchanged).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ipnet::IpNet;

use super::{Listener, Plan};
use crate::catalog::Service;
use crate::config::Camera;
use crate::plan::ruleset::{Ruleset, text};

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit<T> {
    /// Present only in the new plan.
    Added(T),
    /// Present only in the old plan.
    Removed(T),
    /// Present in both, different.
    Changed(T, T),
}

/// The differences between two plans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Rules added or removed, as `(chain, rule text)`.
    pub rules: Vec<Edit<(String, String)>>,
    /// Set elements added or removed, as `(set, element)`.
    pub elements: Vec<Edit<(String, IpNet)>>,
    /// Chain policies changed, as `(chain, policy)`.
    pub policies: Vec<Edit<(String, String)>>,
    /// Listeners added, removed or moved.
    pub listeners: Vec<Edit<Listener>>,
    /// Cameras added, removed or changed.
    pub cameras: Vec<Edit<Camera>>,
}

impl Change {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.firewall_unchanged() && self.listeners.is_empty() && self.cameras.is_empty()
    }

    /// Whether the firewall stays as it is.
    pub fn firewall_unchanged(&self) -> bool {
        self.rules.is_empty() && self.elements.is_empty() && self.policies.is_empty()
    }

    /// The services whose listeners must be (re)bound or closed.
    pub fn listener_services(&self) -> Vec<Service> {
        self.listeners
            .iter()
            .map(|e| match e {
                Edit::Added(l) | Edit::Removed(l) | Edit::Changed(_, l) => l.service,
            })
            .collect()
    }
}

fn rule_lines(rs: &Ruleset) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for chain in &rs.chains {
        for rule in &chain.rules {
            *out.entry((chain.name.clone(), text::rule(rule)))
                .or_insert(0) += 1;
        }
    }
    out
}

fn diff_keyed<K: Ord, T: Clone + PartialEq>(
    old: BTreeMap<K, T>,
    new: BTreeMap<K, T>,
) -> Vec<Edit<T>> {
    let mut out = Vec::new();
    for (k, o) in &old {
        match new.get(k) {
            None => out.push(Edit::Removed(o.clone())),
            Some(n) if n != o => out.push(Edit::Changed(o.clone(), n.clone())),
            Some(_) => {}
        }
    }
    out.extend(
        new.into_iter()
            .filter(|(k, _)| !old.contains_key(k))
            .map(|(_, n)| Edit::Added(n)),
    );
    out
}

fn listener_key(l: &Listener) -> (Service, u16) {
    // A service with several listeners (never today) would be told apart by its first port.
    (l.service, l.ports.lo)
}

/// Compares the old plan with the new one.
pub fn diff(old: &Plan, new: &Plan) -> Change {
    let mut change = Change::default();
    let (a, b) = (rule_lines(&old.ruleset), rule_lines(&new.ruleset));
    for (key, &n) in &a {
        for _ in b.get(key).copied().unwrap_or(0)..n {
            change.rules.push(Edit::Removed(key.clone()));
        }
    }
    for (key, &n) in &b {
        for _ in a.get(key).copied().unwrap_or(0)..n {
            change.rules.push(Edit::Added(key.clone()));
        }
    }
    let elements = |rs: &Ruleset| -> BTreeMap<(String, IpNet), (String, IpNet)> {
        rs.sets
            .iter()
            .flat_map(|s| {
                s.elements
                    .iter()
                    .map(|e| ((s.name.clone(), *e), (s.name.clone(), *e)))
            })
            .collect()
    };
    change.elements = diff_keyed(elements(&old.ruleset), elements(&new.ruleset));
    let policies = |rs: &Ruleset| -> BTreeMap<String, (String, String)> {
        rs.chains
            .iter()
            .filter_map(|c| {
                c.base.map(|b| {
                    (
                        c.name.clone(),
                        (
                            c.name.clone(),
                            if b.accept { "accept" } else { "drop" }.to_string(),
                        ),
                    )
                })
            })
            .collect()
    };
    change.policies = diff_keyed(policies(&old.ruleset), policies(&new.ruleset));
    let by_service = |p: &Plan| {
        p.listeners
            .iter()
            .map(|l| (listener_key(l), l.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let mut listeners = diff_keyed(by_service(old), by_service(new));
    // A service that moved port shows as one change, not a removal and an addition.
    let mut merged: Vec<Edit<Listener>> = Vec::new();
    for e in listeners.drain(..) {
        if let Edit::Added(n) = &e
            && let Some(pos) = merged
                .iter()
                .position(|m| matches!(m, Edit::Removed(o) if o.service == n.service))
        {
            let Edit::Removed(o) = merged.remove(pos) else {
                continue;
            };
            merged.push(Edit::Changed(o, n.clone()));
            continue;
        }
        merged.push(e);
    }
    change.listeners = merged;
    let by_name = |p: &Plan| {
        p.cameras
            .iter()
            .map(|c| (c.name.clone(), c.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    change.cameras = diff_keyed(by_name(old), by_name(new));
    change
}

fn listener_text(l: &Listener) -> String {
    let bind = match l.bind {
        super::Bind::Any => "",
        super::Bind::Loopback => " on loopback",
    };
    let tls = if l.tls { " with TLS" } else { "" };
    format!("{} {} {}{bind}{tls}", l.service, l.proto, l.ports)
}

/// The change for people, one edit a line, ending with a count.
pub fn render(change: &Change) -> String {
    let mut out = String::new();
    let mut count = [0usize; 3];
    let mut line = |sign: char, what: String| {
        count[match sign {
            '+' => 0,
            '~' => 1,
            _ => 2,
        }] += 1;
        let _ = writeln!(out, "  {sign} {what}");
    };
    for e in &change.policies {
        if let Edit::Changed((c, o), (_, n)) = e {
            line('~', format!("chain {c}: policy {o} -> {n}"));
        }
    }
    for e in &change.rules {
        match e {
            Edit::Added((c, r)) => line('+', format!("rule {c}: {r}")),
            Edit::Removed((c, r)) => line('-', format!("rule {c}: {r}")),
            Edit::Changed(..) => {}
        }
    }
    for e in &change.elements {
        match e {
            Edit::Added((s, n)) => line('+', format!("element {s}: {n}")),
            Edit::Removed((s, n)) => line('-', format!("element {s}: {n}")),
            Edit::Changed(..) => {}
        }
    }
    for e in &change.listeners {
        match e {
            Edit::Added(l) => line('+', format!("listener {}", listener_text(l))),
            Edit::Removed(l) => line('-', format!("listener {}", listener_text(l))),
            Edit::Changed(o, n) => line(
                '~',
                format!("listener {} -> {}", listener_text(o), listener_text(n)),
            ),
        }
    }
    for e in &change.cameras {
        match e {
            Edit::Added(c) => line('+', format!("camera {} ({})", c.name, c.url)),
            Edit::Removed(c) => line('-', format!("camera {} ({})", c.name, c.url)),
            Edit::Changed(_, c) => line('~', format!("camera {} ({})", c.name, c.url)),
        }
    }
    if count == [0, 0, 0] {
        out.push_str("No changes.\n");
    } else {
        let _ = writeln!(
            out,
            "Plan: {} to add, {} to change, {} to remove.",
            count[0], count[1], count[2]
        );
    }
    out
}
