//! The ruleset as nft text: what `nft -f` loads and what `sited render nftables` prints.
//!
//! The output is deterministic: the same ruleset gives byte-identical text. The apply layer loads
//! exactly this text, wrapped in the transaction of [`transaction`].

use std::fmt::Write as _;

use super::{Action, Base, FAMILY, Match, Rule, Ruleset, Set, SetKind, TABLE, Verdict};
use crate::catalog::Ports;

fn verdict(v: &Verdict) -> String {
    match v {
        Verdict::Accept => "accept".into(),
        Verdict::Drop => "drop".into(),
        Verdict::Jump(chain) => format!("jump {chain}"),
    }
}

fn list(items: &[&str]) -> String {
    match items {
        [one] => (*one).to_string(),
        many => format!("{{ {} }}", many.join(", ")),
    }
}

fn ports(p: &[Ports]) -> String {
    let items: Vec<String> = p.iter().map(ToString::to_string).collect();
    match items.as_slice() {
        [one] => one.clone(),
        many => format!("{{ {} }}", many.join(", ")),
    }
}

fn matcher(m: &Match) -> String {
    match m {
        Match::InLoopback => "iif \"lo\"".into(),
        Match::OutLoopback => "oif \"lo\"".into(),
        Match::SourceIn(f, set) => format!("{} saddr @{set}", f.payload()),
        Match::DestinationIn(f, set) => format!("{} daddr @{set}", f.payload()),
        Match::Source6(net) => format!("ip6 saddr {net}"),
        Match::Port(proto, p) => format!("{proto} dport {}", ports(p)),
        Match::IcmpType(types) => format!("icmp type {}", list(types)),
        Match::Icmpv6Type(types) => format!("icmpv6 type {}", list(types)),
        Match::HopLimit(n) => format!("ip6 hoplimit {n}"),
        Match::AnyIcmp => "meta l4proto { icmp, ipv6-icmp }".into(),
        Match::Dhcpv6Reply => "udp sport 547 udp dport 546".into(),
        Match::Limit(rate, burst) => format!("limit rate {rate}/second burst {burst} packets"),
    }
}

/// One rule, as `nft list` would show it inside its chain.
pub fn rule(r: &Rule) -> String {
    let mut parts: Vec<String> = r.matches.iter().map(matcher).collect();
    match &r.action {
        Action::Verdict(v) => parts.push(verdict(v)),
        Action::CtStateMap(entries) => {
            let items: Vec<String> = entries
                .iter()
                .map(|(s, v)| format!("{} : {}", s.name(), verdict(v)))
                .collect();
            parts.push(format!("ct state vmap {{ {} }}", items.join(", ")));
        }
    }
    if let Some(c) = &r.comment {
        parts.push(format!("comment \"{c}\""));
    }
    parts.join(" ")
}

fn set(out: &mut String, s: &Set) {
    let _ = writeln!(out, "\tset {} {{", s.name);
    let _ = writeln!(out, "\t\ttype {}", s.family.set_type());
    let flags = match s.kind {
        SetKind::Networks => "interval",
        SetKind::Resolved => "timeout",
    };
    let _ = writeln!(out, "\t\tflags {flags}");
    if !s.elements.is_empty() {
        let items: Vec<String> = s.elements.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "\t\telements = {{ {} }}", items.join(", "));
    }
    let _ = writeln!(out, "\t}}");
}

fn base(b: &Base) -> String {
    let policy = if b.accept { "accept" } else { "drop" };
    format!(
        "type filter hook {} priority filter; policy {policy};",
        b.hook.name()
    )
}

/// The table, as a `table inet sited { … }` block.
pub fn render(rs: &Ruleset) -> String {
    let mut out = format!("table {FAMILY} {TABLE} {{\n");
    for s in &rs.sets {
        set(&mut out, s);
        out.push('\n');
    }
    for (i, c) in rs.chains.iter().enumerate() {
        let _ = writeln!(out, "\tchain {} {{", c.name);
        if let Some(b) = &c.base {
            let _ = writeln!(out, "\t\t{}", base(b));
        }
        for r in &c.rules {
            let _ = writeln!(out, "\t\t{}", rule(r));
        }
        out.push_str("\t}\n");
        if i + 1 < rs.chains.len() {
            out.push('\n');
        }
    }
    out.push_str("}\n");
    out
}

/// The atomic replacement: create the table if absent, delete it, and add the new one, in one
/// `nft -f` transaction. `flush table` is never used: it would keep stale set elements.
pub fn transaction(rs: &Ruleset) -> String {
    format!(
        "table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n{}",
        render(rs)
    )
}
