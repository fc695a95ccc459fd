//! The firewall as data: the sets, chains and rules of table `inet sited`, built from a node's
//! flows by a pure function.
//!
//! The shape of the table (nft text of each part in the comments below):
//!
//! ```text
//! set clients_v4 { type ipv4_addr; flags interval; elements = { 192.0.2.0/24 } }   # one per zone
//! chain input   { type filter hook input priority filter; policy drop;
//!     ct state vmap { invalid : drop, established : accept, related : accept,
//!                     new : jump allow, untracked : jump allow }
//!     iif "lo" accept
//!     icmp type echo-request limit rate 10/second burst 20 packets accept
//!     icmpv6 …                       # RFC 4890: errors, echo, neighbour and listener discovery
//! }
//! chain allow   { ip saddr @clients_v4 jump from_clients; ip6 saddr @clients_v6 jump from_clients }
//! chain from_clients { tcp dport 80 accept comment "web: …" }          # one rule per flow
//! chain forward { type filter hook forward priority filter; policy drop; }
//! chain output  { type filter hook output priority filter; policy accept; }
//! ```
//!
//! With `egress = "documented"` the output policy is drop, and the output chain dispatches to
//! `to_<zone>` chains the same way. A zone is a pair of sets, so adding a network changes a set,
//! never the number of rules. Licence hosts are a pair of `flags timeout` sets that the apply
//! layer fills from DNS.

pub mod json;
pub mod text;

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::catalog::{Layout, Ports, Proto};
use crate::plan::{Direction, Flow, Peers};

/// The one table sited owns.
pub const TABLE: &str = "sited";
/// Its family.
pub const FAMILY: &str = "inet";
/// ICMP echo requests accepted per second (and the burst), per family.
pub const ECHO_RATE: (u32, u32) = (10, 20);

/// An address family of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4: `ip`, `ipv4_addr`.
    V4,
    /// IPv6: `ip6`, `ipv6_addr`.
    V6,
}

impl Family {
    /// The nft payload protocol: `ip` or `ip6`.
    pub fn payload(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }

    /// The nft set type.
    pub fn set_type(self) -> &'static str {
        match self {
            Family::V4 => "ipv4_addr",
            Family::V6 => "ipv6_addr",
        }
    }

    /// The suffix of set names.
    pub fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::V6 => "v6",
        }
    }
}

/// How a set holds its elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetKind {
    /// Networks: `flags interval`.
    Networks,
    /// Addresses resolved from host names, each with a timeout: `flags timeout`.
    Resolved,
}

/// A named set of addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    /// Its name, `<stem>_v4` or `<stem>_v6`.
    pub name: String,
    /// Its family.
    pub family: Family,
    /// Networks or resolved hosts.
    pub kind: SetKind,
    /// The elements, aggregated and sorted; empty for resolved sets until applied.
    pub elements: Vec<IpNet>,
}

/// A netfilter hook of a base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Traffic to this node.
    Input,
    /// Traffic through this node.
    Forward,
    /// Traffic from this node.
    Output,
}

impl Hook {
    /// The nft name.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
        }
    }
}

/// A verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `accept`.
    Accept,
    /// `drop`.
    Drop,
    /// `jump <chain>`.
    Jump(String),
}

/// A conntrack state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtState {
    /// `invalid`.
    Invalid,
    /// `established`.
    Established,
    /// `related`.
    Related,
    /// `new`.
    New,
    /// `untracked`.
    Untracked,
}

impl CtState {
    /// The nft name.
    pub fn name(self) -> &'static str {
        match self {
            CtState::Invalid => "invalid",
            CtState::Established => "established",
            CtState::Related => "related",
            CtState::New => "new",
            CtState::Untracked => "untracked",
        }
    }
}

/// One match of a rule; all of a rule's matches must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// `iif "lo"`.
    InLoopback,
    /// `oif "lo"`.
    OutLoopback,
    /// `ip saddr @set` or `ip6 saddr @set`.
    SourceIn(Family, String),
    /// `ip daddr @set` or `ip6 daddr @set`.
    DestinationIn(Family, String),
    /// `ip6 saddr fe80::/10`.
    Source6(IpNet),
    /// `tcp dport 80`, `udp dport 49152-49252`, `tcp dport { 554, 8554 }`.
    Port(Proto, Vec<Ports>),
    /// `icmp type { … }`.
    IcmpType(&'static [&'static str]),
    /// `icmpv6 type { … }`.
    Icmpv6Type(&'static [&'static str]),
    /// `ip6 hoplimit 255`.
    HopLimit(u8),
    /// `meta l4proto { icmp, ipv6-icmp }`.
    AnyIcmp,
    /// `udp sport 547 udp dport 546`: DHCPv6 replies, which conntrack cannot relate to the
    /// multicast request.
    Dhcpv6Reply,
    /// `limit rate N/second burst B packets`.
    Limit(u32, u32),
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A verdict.
    Verdict(Verdict),
    /// `ct state vmap { state : verdict, … }`.
    CtStateMap(Vec<(CtState, Verdict)>),
}

/// A rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Its matches.
    pub matches: Vec<Match>,
    /// Its action.
    pub action: Action,
    /// Its comment: for flows, the service and the reference row.
    pub comment: Option<String>,
}

/// A base chain's hook and policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base {
    /// The hook.
    pub hook: Hook,
    /// The policy: accept (`true`) or drop.
    pub accept: bool,
}

/// A chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Its name.
    pub name: String,
    /// Hook and policy, for base chains.
    pub base: Option<Base>,
    /// Its rules, in order.
    pub rules: Vec<Rule>,
}

/// The whole table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    /// The sets, in order of first use.
    pub sets: Vec<Set>,
    /// The chains: input, allow, from_*, forward, output, to_*.
    pub chains: Vec<Chain>,
}

impl Ruleset {
    /// The chain called `name`.
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// The number of rules in every chain.
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }
}

const ICMPV6_ERRORS: &[&str] = &[
    "destination-unreachable",
    "packet-too-big",
    "time-exceeded",
    "parameter-problem",
];
const ICMPV6_ND: &[&str] = &[
    "nd-router-advert",
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
    "ind-neighbor-solicit",
    "ind-neighbor-advert",
];
const ICMPV6_MLD: &[&str] = &[
    "mld-listener-query",
    "mld-listener-report",
    "mld-listener-done",
    "mld2-listener-report",
];
const ECHO: &[&str] = &["echo-request"];

fn rule(matches: Vec<Match>, verdict: Verdict, comment: &str) -> Rule {
    Rule {
        matches,
        action: Action::Verdict(verdict),
        comment: Some(comment.to_string()),
    }
}

/// The stem of a peer's set names (`clients`, `media_nodes`, …), or `None` when the peer needs
/// no set. Sets carry no comment: nft 1.0's JSON parser drops set comments, and the text and JSON
/// forms must load the same table.
fn stem(peers: &Peers) -> Option<&'static str> {
    match peers {
        Peers::Zone(z, _) => Some(z.name()),
        Peers::Nodes(roles, _) => Some(match (roles.application, roles.media) {
            (true, false) => "application_nodes",
            (false, true) => "media_nodes",
            _ => "nodes",
        }),
        Peers::Hosts(_) => Some("license_hosts"),
        Peers::Loopback | Peers::Any => None,
    }
}

fn elements(peers: &Peers, family: Family) -> (SetKind, Vec<IpNet>) {
    let nets: Vec<IpNet> = match peers {
        Peers::Zone(_, nets) => nets.clone(),
        Peers::Nodes(_, nodes) => nodes.iter().map(|(_, a)| IpNet::from(*a)).collect(),
        Peers::Hosts(_) => return (SetKind::Resolved, Vec::new()),
        Peers::Loopback | Peers::Any => Vec::new(),
    };
    let mine: Vec<IpNet> = nets
        .into_iter()
        .filter(|n| {
            matches!(
                (n, family),
                (IpNet::V4(_), Family::V4) | (IpNet::V6(_), Family::V6)
            )
        })
        .collect();
    (SetKind::Networks, IpNet::aggregate(&mine))
}

/// nft keeps comments of at most 128 bytes.
pub const COMMENT_MAX: usize = 127;

/// A comment nft accepts: ASCII, no double quotes, at most [`COMMENT_MAX`] bytes.
pub fn comment(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c == '"' { '\'' } else { c })
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .collect();
    clean[..clean.len().min(COMMENT_MAX)].trim_end().to_string()
}

/// The comment of a flow's rule: the service and the reference row.
pub fn flow_comment(layout: Layout, flow: &Flow) -> String {
    let reference = flow.row.references[0];
    let ports: Vec<String> = flow.ports.iter().map(ToString::to_string).collect();
    let source = if flow.row.is_decision() {
        "sited decision".to_string()
    } else {
        format!("{} {}", layout.product(), reference.section)
    };
    let text = format!(
        "{}: {source} / {} {}",
        flow.service(),
        flow.proto.name().to_uppercase(),
        ports.join(",")
    );
    let clean: String = text
        .chars()
        .map(|c| if c == '"' { '\'' } else { c })
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .collect();
    let mut end = clean.len().min(127);
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    clean[..end].trim_end().to_string()
}

/// Builds the ruleset of a node from its flows. Pure: the same flows give the same ruleset.
pub fn build(layout: Layout, flows: &[Flow], egress_documented: bool) -> Ruleset {
    let mut sets: BTreeMap<String, Set> = BTreeMap::new();
    let mut set_order: Vec<String> = Vec::new();
    let mut peer_chains: Vec<Chain> = Vec::new();
    let mut dispatch_in: Vec<Rule> = Vec::new();
    let mut dispatch_out: Vec<Rule> = Vec::new();
    let mut to_any: Vec<Rule> = Vec::new();

    for flow in flows {
        if flow.peers == Peers::Loopback || (flow.direction == Direction::Out && !egress_documented)
        {
            continue;
        }
        let accept = rule(
            vec![Match::Port(flow.proto, flow.ports.clone())],
            Verdict::Accept,
            &flow_comment(layout, flow),
        );
        let Some(stem) = stem(&flow.peers) else {
            // Anywhere: the rule sits in the dispatching chain itself.
            match flow.direction {
                Direction::In => dispatch_in.push(accept),
                Direction::Out => to_any.push(accept),
            }
            continue;
        };
        let chain_name = match flow.direction {
            Direction::In => format!("from_{stem}"),
            Direction::Out => format!("to_{stem}"),
        };
        if !peer_chains.iter().any(|c| c.name == chain_name) {
            peer_chains.push(Chain {
                name: chain_name.clone(),
                base: None,
                rules: Vec::new(),
            });
            for family in [Family::V4, Family::V6] {
                let set_name = format!("{stem}_{}", family.suffix());
                if !sets.contains_key(&set_name) {
                    let (kind, elements) = elements(&flow.peers, family);
                    set_order.push(set_name.clone());
                    sets.insert(
                        set_name.clone(),
                        Set {
                            name: set_name.clone(),
                            family,
                            kind,
                            elements,
                        },
                    );
                }
                let (m, list) = match flow.direction {
                    Direction::In => (Match::SourceIn(family, set_name), &mut dispatch_in),
                    Direction::Out => (Match::DestinationIn(family, set_name), &mut dispatch_out),
                };
                list.push(Rule {
                    matches: vec![m],
                    action: Action::Verdict(Verdict::Jump(chain_name.clone())),
                    comment: None,
                });
            }
        }
        if let Some(chain) = peer_chains.iter_mut().find(|c| c.name == chain_name) {
            chain.rules.push(accept);
        }
    }

    let input = Chain {
        name: "input".into(),
        base: Some(Base {
            hook: Hook::Input,
            accept: false,
        }),
        rules: input_rules(),
    };
    let allow = Chain {
        name: "allow".into(),
        base: None,
        rules: dispatch_in,
    };
    let forward = Chain {
        name: "forward".into(),
        base: Some(Base {
            hook: Hook::Forward,
            accept: false,
        }),
        rules: Vec::new(),
    };
    let mut output_rules = Vec::new();
    if egress_documented {
        output_rules.push(Rule {
            matches: vec![],
            action: Action::CtStateMap(vec![
                (CtState::Invalid, Verdict::Drop),
                (CtState::Established, Verdict::Accept),
                (CtState::Related, Verdict::Accept),
            ]),
            comment: None,
        });
        output_rules.push(rule(vec![Match::OutLoopback], Verdict::Accept, "loopback"));
        output_rules.push(rule(
            vec![Match::AnyIcmp],
            Verdict::Accept,
            "ICMP and ICMPv6 out",
        ));
        output_rules.extend(dispatch_out);
        output_rules.extend(to_any);
    }
    let output = Chain {
        name: "output".into(),
        base: Some(Base {
            hook: Hook::Output,
            accept: !egress_documented,
        }),
        rules: output_rules,
    };

    let (from, to): (Vec<Chain>, Vec<Chain>) = peer_chains
        .into_iter()
        .partition(|c| c.name.starts_with("from_"));
    let mut chains = vec![input, allow];
    chains.extend(from);
    chains.push(forward);
    chains.push(output);
    chains.extend(to);
    let sets = set_order
        .into_iter()
        .filter_map(|n| sets.remove(&n))
        .collect();
    Ruleset { sets, chains }
}

fn input_rules() -> Vec<Rule> {
    let (rate, burst) = ECHO_RATE;
    vec![
        Rule {
            matches: vec![],
            action: Action::CtStateMap(vec![
                (CtState::Invalid, Verdict::Drop),
                (CtState::Established, Verdict::Accept),
                (CtState::Related, Verdict::Accept),
                (CtState::New, Verdict::Jump("allow".into())),
                (CtState::Untracked, Verdict::Jump("allow".into())),
            ]),
            comment: None,
        },
        rule(vec![Match::InLoopback], Verdict::Accept, "loopback"),
        rule(
            vec![Match::IcmpType(ECHO), Match::Limit(rate, burst)],
            Verdict::Accept,
            "ICMP echo, rate-limited",
        ),
        rule(
            vec![Match::Icmpv6Type(ICMPV6_ERRORS)],
            Verdict::Accept,
            "RFC 4890 4.4.1: ICMPv6 errors",
        ),
        rule(
            vec![Match::Icmpv6Type(ECHO), Match::Limit(rate, burst)],
            Verdict::Accept,
            "RFC 4890 4.4.1: ICMPv6 echo, rate-limited",
        ),
        rule(
            vec![Match::Icmpv6Type(ICMPV6_ND), Match::HopLimit(255)],
            Verdict::Accept,
            "RFC 4890 4.4.1: neighbour discovery, on-link only",
        ),
        rule(
            vec![Match::Icmpv6Type(ICMPV6_MLD), Match::Source6(link_local())],
            Verdict::Accept,
            "RFC 4890 4.4.1: multicast listener discovery, link-local",
        ),
        rule(
            vec![Match::Source6(link_local()), Match::Dhcpv6Reply],
            Verdict::Accept,
            "DHCPv6 replies, link-local",
        ),
    ]
}

fn link_local() -> IpNet {
    IpNet::V6(
        ipnet::Ipv6Net::new(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10)
            .unwrap_or_default(),
    )
}
