//! The checks of a site that need the planner: a site is valid only when every node of it
//! can be planned. Today that is one rule, that no two services of a node share a port.
//!
//! [`check`] is what every caller runs on a site file: the config layer's parse, shape and
//! validate steps, with these rules added to its validation.

use super::listener;
use crate::catalog::Service;
use crate::config::diagnostic::{Code, Diagnostic};
use crate::config::locate::{Locator, Seg};
use crate::config::{self, Checked, Options, Site};

/// Checks a site file's text: syntax, shape, meaning, and that every node can be planned.
pub fn check(text: &str, options: Options) -> Checked {
    config::check(text, options, &[conflicts])
}

/// Two services of one node on the same port: each pair once, at the `[ports]` entry that moved
/// one of them (or at the file when both are on their defaults).
pub fn conflicts(site: &Site, at: &Locator<'_, '_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut reported = Vec::new();
    for node in &site.nodes {
        let listeners = listener::listeners(site, node);
        for (i, a) in listeners.iter().enumerate() {
            for b in &listeners[i + 1..] {
                if a.service == b.service || a.proto != b.proto || !a.ports.overlaps(b.ports) {
                    continue;
                }
                let key = (a.service.min(b.service), a.service.max(b.service));
                if reported.contains(&key) {
                    continue;
                }
                reported.push(key);
                let place = |s: Service| at.entry(&[Seg::Key("ports"), Seg::Key(s.name())]);
                let label = |s: Service| match site.ports.get(&s) {
                    Some(_) => format!("{s} is moved here"),
                    None => format!("{s} is on its default port"),
                };
                let (first, second) = if place(a.service).is_some() {
                    (b, a)
                } else {
                    (a, b)
                };
                let defaults: Vec<String> = [first, second]
                    .iter()
                    .filter(|l| !site.ports.contains_key(&l.service))
                    .map(|l| {
                        format!(
                            "`{}` is on {} {} by default in layout {}",
                            l.service,
                            l.proto.name().to_uppercase(),
                            l.ports,
                            site.layout
                        )
                    })
                    .collect();
                let mut help = format!(
                    "move one of them with `[ports]`, e.g. `{} = <free port>`",
                    second.service
                );
                if !defaults.is_empty() {
                    help = format!("{}; {help}", defaults.join("; "));
                }
                out.push(
                    Diagnostic::error(
                        Code::PortConflict,
                        place(second.service),
                        format!(
                            "services `{}` and `{}` both use {} {} on node \"{}\"",
                            first.service,
                            second.service,
                            a.proto.name().to_uppercase(),
                            second.ports,
                            node.name
                        ),
                    )
                    .related(place(first.service), label(first.service))
                    .help(help),
                );
            }
        }
    }
    out
}
