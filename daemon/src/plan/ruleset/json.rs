//! The ruleset as libnftables JSON (`nft -j -f`), built with the `nftables` crate's schema types.
//!
//! It holds the same table as [`super::text`], as a list of `add` commands. The privileged tests
//! load both forms into network namespaces and compare what the kernel lists back.

use std::borrow::Cow;
use std::collections::HashSet;

use ipnet::IpNet;
use nftables::expr::{self, Expression, NamedExpression, Payload, PayloadField, Prefix, SetItem};
use nftables::schema::{
    self, NfCmd, NfListObject, NfObject, Nftables, SetFlag, SetType, SetTypeValue,
};
use nftables::stmt::{self, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::{Action, Family, Hook, Match, Rule, Ruleset, SetKind, TABLE, Verdict};
use crate::catalog::Ports;

fn s(text: impl Into<String>) -> Expression<'static> {
    Expression::String(Cow::Owned(text.into()))
}

fn payload(protocol: &str, field: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Owned(protocol.to_string()),
            field: Cow::Owned(field.to_string()),
        },
    )))
}

fn eq(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(stmt::Match {
        left,
        right,
        op: Operator::EQ,
    })
}

fn set_of(items: Vec<Expression<'static>>) -> Expression<'static> {
    match <[_; 1]>::try_from(items) {
        Ok([one]) => one,
        Err(many) => Expression::Named(NamedExpression::Set(
            many.into_iter().map(SetItem::Element).collect(),
        )),
    }
}

fn port(p: Ports) -> Expression<'static> {
    if p.is_single() {
        Expression::Number(u32::from(p.lo))
    } else {
        Expression::Range(Box::new(expr::Range {
            range: [
                Expression::Number(u32::from(p.lo)),
                Expression::Number(u32::from(p.hi)),
            ],
        }))
    }
}

fn prefix(net: &IpNet) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(s(net.network().to_string())),
        len: u32::from(net.prefix_len()),
    }))
}

fn verdict(v: &Verdict) -> Statement<'static> {
    match v {
        Verdict::Accept => Statement::Accept(None),
        Verdict::Drop => Statement::Drop(None),
        Verdict::Jump(chain) => Statement::Jump(stmt::JumpTarget {
            target: Cow::Owned(chain.clone()),
        }),
    }
}

fn meta(key: expr::MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(expr::Meta { key }))
}

fn statements(m: &Match) -> Vec<Statement<'static>> {
    match m {
        Match::InLoopback => vec![eq(meta(expr::MetaKey::Iif), s("lo"))],
        Match::OutLoopback => vec![eq(meta(expr::MetaKey::Oif), s("lo"))],
        Match::SourceIn(f, set) => vec![eq(payload(f.payload(), "saddr"), s(format!("@{set}")))],
        Match::DestinationIn(f, set) => {
            vec![eq(payload(f.payload(), "daddr"), s(format!("@{set}")))]
        }
        Match::Source6(net) => vec![eq(payload("ip6", "saddr"), prefix(net))],
        Match::Port(proto, ports) => {
            vec![eq(
                payload(proto.name(), "dport"),
                set_of(ports.iter().map(|p| port(*p)).collect()),
            )]
        }
        Match::IcmpType(types) => vec![eq(
            payload("icmp", "type"),
            set_of(types.iter().map(|t| s(*t)).collect()),
        )],
        Match::Icmpv6Type(types) => vec![eq(
            payload("icmpv6", "type"),
            set_of(types.iter().map(|t| s(*t)).collect()),
        )],
        Match::HopLimit(n) => vec![eq(
            payload("ip6", "hoplimit"),
            Expression::Number(u32::from(*n)),
        )],
        Match::AnyIcmp => vec![eq(
            meta(expr::MetaKey::L4proto),
            set_of(vec![s("icmp"), s("ipv6-icmp")]),
        )],
        Match::Dhcpv6Reply => vec![
            eq(payload("udp", "sport"), Expression::Number(547)),
            eq(payload("udp", "dport"), Expression::Number(546)),
        ],
        Match::Limit(rate, burst) => vec![Statement::Limit(stmt::Limit {
            rate: *rate,
            rate_unit: None,
            per: Some(Cow::Borrowed("second")),
            burst: Some(*burst),
            burst_unit: Some(Cow::Borrowed("packets")),
            inv: None,
        })],
    }
}

fn rule(chain: &str, r: &Rule) -> schema::Rule<'static> {
    let mut expr: Vec<Statement<'static>> = r.matches.iter().flat_map(statements).collect();
    match &r.action {
        Action::Verdict(v) => expr.push(verdict(v)),
        Action::CtStateMap(entries) => {
            // Verdicts inside a map are written as statements (`{"accept": null}`), as nft lists them.
            let items = entries
                .iter()
                .map(|(state, v)| SetItem::MappingStatement(s(state.name()), verdict(v)))
                .collect();
            expr.push(Statement::VerdictMap(stmt::VerdictMap {
                key: Expression::Named(NamedExpression::CT(expr::CT {
                    key: Cow::Borrowed("state"),
                    family: None,
                    dir: None,
                })),
                data: Expression::Named(NamedExpression::Set(items)),
            }));
        }
    }
    schema::Rule {
        family: NfFamily::INet,
        table: Cow::Borrowed(TABLE),
        chain: Cow::Owned(chain.to_string()),
        expr: Cow::Owned(expr),
        handle: None,
        index: None,
        comment: r.comment.clone().map(Cow::Owned),
    }
}

/// The ruleset as libnftables JSON objects: the table, its sets, chains and rules, as `add`s.
pub fn objects(rs: &Ruleset) -> Nftables<'static> {
    let add = |o: NfListObject<'static>| NfObject::CmdObject(NfCmd::Add(o));
    let mut out = vec![add(NfListObject::Table(schema::Table {
        family: NfFamily::INet,
        name: Cow::Borrowed(TABLE),
        handle: None,
    }))];
    for set in &rs.sets {
        let flag = match set.kind {
            SetKind::Networks => SetFlag::Interval,
            SetKind::Resolved => SetFlag::Timeout,
        };
        let elem: Vec<Expression<'static>> = set.elements.iter().map(prefix).collect();
        out.push(add(NfListObject::Set(Box::new(schema::Set {
            family: NfFamily::INet,
            table: Cow::Borrowed(TABLE),
            name: Cow::Owned(set.name.clone()),
            set_type: SetTypeValue::Single(match set.family {
                Family::V4 => SetType::Ipv4Addr,
                Family::V6 => SetType::Ipv6Addr,
            }),
            flags: Some(HashSet::from([flag])),
            elem: if elem.is_empty() {
                None
            } else {
                Some(Cow::Owned(elem))
            },
            ..schema::Set::default()
        }))));
    }
    for chain in &rs.chains {
        let (hook, policy) = match chain.base {
            Some(b) => (
                Some(match b.hook {
                    Hook::Input => NfHook::Input,
                    Hook::Forward => NfHook::Forward,
                    Hook::Output => NfHook::Output,
                }),
                Some(if b.accept {
                    NfChainPolicy::Accept
                } else {
                    NfChainPolicy::Drop
                }),
            ),
            None => (None, None),
        };
        out.push(add(NfListObject::Chain(schema::Chain {
            family: NfFamily::INet,
            table: Cow::Borrowed(TABLE),
            name: Cow::Owned(chain.name.clone()),
            _type: hook.map(|_| NfChainType::Filter),
            hook,
            prio: hook.map(|_| 0),
            policy,
            ..schema::Chain::default()
        })));
    }
    for chain in &rs.chains {
        for r in &chain.rules {
            out.push(add(NfListObject::Rule(rule(&chain.name, r))));
        }
    }
    Nftables {
        objects: Cow::Owned(out),
    }
}

/// The JSON text, pretty-printed.
pub fn render(rs: &Ruleset) -> String {
    let mut text = serde_json::to_string_pretty(&objects(rs)).unwrap_or_default();
    text.push('\n');
    text
}
