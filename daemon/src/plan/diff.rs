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

/// One step that makes a node match its new plan. [`actions`] is the one decision of what
/// reconcile does: the apply layer carries the list out through its drivers, and the log, the
/// config history and the API print the same list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Replace table `inet sited` with the plan's ruleset, in one transaction.
    ReplaceFirewall,
    /// Bind and serve a new listener.
    Open(Listener),
    /// Close a listener that the plan no longer has.
    Close(Listener),
    /// Close a listener and bind it again: its port, address or TLS changed, or its
    /// certificate was renewed.
    Rebind(Listener, Listener),
    /// Start ingesting (and recording) a new camera.
    StartCamera(Camera),
    /// Stop a camera that the plan no longer has; its live stream goes too.
    StopCamera(Camera),
    /// Restart a camera whose entry changed; its live stream stays, its viewers reconnect.
    RestartCamera(Camera),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::ReplaceFirewall => f.write_str("replace the firewall table"),
            Action::Open(l) => write!(f, "open listener {}", listener_text(l)),
            Action::Close(l) => write!(f, "close listener {}", listener_text(l)),
            Action::Rebind(o, n) if o == n => {
                write!(f, "rebind listener {} (new certificate)", listener_text(n))
            }
            Action::Rebind(o, n) => write!(
                f,
                "rebind listener {} -> {}",
                listener_text(o),
                listener_text(n)
            ),
            Action::StartCamera(c) => write!(f, "start camera {}", c.name),
            Action::StopCamera(c) => write!(f, "stop camera {}", c.name),
            Action::RestartCamera(c) => write!(f, "restart camera {}", c.name),
        }
    }
}

/// What reconcile does to go from the plan in force to `new`: `change` is their diff (against
/// an emptied plan when nothing is in force, `first`), and `tls_renewed` says whether the TLS
/// certificate differs from the one the running listeners serve.
pub fn actions(change: &Change, new: &Plan, first: bool, tls_renewed: bool) -> Vec<Action> {
    let mut out = Vec::new();
    if first || !change.firewall_unchanged() {
        out.push(Action::ReplaceFirewall);
    }
    for e in &change.listeners {
        out.push(match e {
            Edit::Added(l) => Action::Open(l.clone()),
            Edit::Removed(l) => Action::Close(l.clone()),
            Edit::Changed(o, n) => Action::Rebind(o.clone(), n.clone()),
        });
    }
    if tls_renewed && !first {
        let touched = change.listener_services();
        out.extend(
            new.listeners
                .iter()
                .filter(|l| l.tls && !touched.contains(&l.service))
                .map(|l| Action::Rebind(l.clone(), l.clone())),
        );
    }
    for e in &change.cameras {
        out.push(match e {
            Edit::Added(c) => Action::StartCamera(c.clone()),
            Edit::Removed(c) => Action::StopCamera(c.clone()),
            Edit::Changed(_, c) => Action::RestartCamera(c.clone()),
        });
    }
    out
}

/// The actions for people, one a line, or a line saying there is nothing to do.
pub fn render_actions(actions: &[Action]) -> String {
    if actions.is_empty() {
        return "nothing to do\n".to_string();
    }
    actions.iter().map(|a| format!("  {a}\n")).collect()
}

#[cfg(test)]
mod action_tests {
    use super::*;

    fn plan(text: &str) -> Plan {
        let site = crate::plan::check(text, Default::default()).site.unwrap();
        crate::plan::plan(&site, "streamer").unwrap()
    }

    const SITE: &str = r#"
[site]
name = "studio"
layout = "titop"
[networks]
clients = ["192.0.2.0/24"]
cameras = ["198.51.100.0/24"]
[[nodes]]
name = "streamer"
address = "192.0.2.20"
roles = ["application", "media"]
[[cameras]]
name = "stage"
url = "rtsp://198.51.100.30/main"
"#;

    #[test]
    fn the_first_plan_opens_everything_and_replaces_the_firewall() {
        let p = plan(SITE);
        let a = actions(&diff(&p.emptied(), &p), &p, true, false);
        assert_eq!(a[0], Action::ReplaceFirewall);
        assert!(a.contains(&Action::StartCamera(p.cameras[0].clone())));
        let opened = a.iter().filter(|a| matches!(a, Action::Open(_))).count();
        assert_eq!(opened, p.listeners.len());
    }

    #[test]
    fn a_camera_only_edit_restarts_that_camera_and_nothing_else() {
        let old = plan(SITE);
        let new = plan(&SITE.replace("/main", "/sub"));
        let a = actions(&diff(&old, &new), &new, false, false);
        assert_eq!(a, [Action::RestartCamera(new.cameras[0].clone())]);
        assert_eq!(render_actions(&a), "  restart camera stage\n");
    }

    #[test]
    fn a_no_op_edit_does_nothing_and_a_moved_port_rebinds_once() {
        let old = plan(SITE);
        assert!(actions(&diff(&old, &old), &old, false, false).is_empty());
        let new = plan(&format!("{SITE}[ports]\nhttp_live = 8081\n"));
        let a = actions(&diff(&old, &new), &new, false, false);
        assert_eq!(a[0], Action::ReplaceFirewall);
        assert!(matches!(&a[1], Action::Rebind(o, n) if o.ports.lo == 8080 && n.ports.lo == 8081));
        assert_eq!(a.len(), 2);
    }
}
