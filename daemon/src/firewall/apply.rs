//! Applying a ruleset: the only part of the firewall with side effects.
//!
//! 1. The transaction is checked with `nft -c` first; a rejected ruleset changes nothing.
//! 2. The previous table is saved, then replaced in one `nft -f` transaction (add the table,
//!    delete it, add the new one; never `flush table`, which keeps stale set elements).
//! 3. The live table is read back and verified against the plan: chains, policies, the rules
//!    of every chain by comment, and every set's elements. On a mismatch the previous table is
//!    restored, or the table removed if there was none, and the error is reported.
//!
//! Every command goes through a [`Driver`]: [`Nft`] runs the `nft` binary, [`DryRun`] only
//! prints, and tests may supply their own.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde_json::Value;

use crate::plan::ruleset::{Action, FAMILY, Family, Ruleset, SetKind, TABLE, text};

/// How long resolved licence-host addresses stay in their sets without a refresh.
pub const RESOLVED_TIMEOUT: Duration = Duration::from_secs(3600);

/// Why an apply fails: [`crate::base::Error`] of kind `FirewallRejected` (nft -c said no),
/// `FirewallFailed` (nft could not run, or its transaction failed), `FirewallMismatch` (the live
/// table differed, the previous one was restored) or `FirewallRestoreFailed`. In every case but
/// the last, the previous table is live.
pub use crate::base::Error;
use crate::base::Kind;

/// The commands an apply needs, so that tests and dry runs can swap them.
pub trait Driver {
    /// Checks a script without applying it (`nft -c -f -`).
    fn check(&self, script: &str) -> Result<(), Error>;
    /// Runs a script as one transaction (`nft -f -`).
    fn run(&self, script: &str) -> Result<(), Error>;
    /// The live table as nft text, or `None` when there is none.
    fn live_text(&self) -> Result<Option<String>, Error>;
    /// The live table as libnftables JSON, or `None` when there is none.
    fn live_json(&self) -> Result<Option<Value>, Error>;
    /// Whether `run` changes the system, so that the result can be read back and verified.
    fn changes_system(&self) -> bool {
        true
    }
}

/// Runs the `nft` binary.
#[derive(Debug, Clone)]
pub struct Nft {
    /// The binary: `$SITED_NFT` if set (the tests inject faults through it), else `nft` from
    /// PATH, else `/usr/sbin/nft`.
    pub binary: PathBuf,
}

impl Default for Nft {
    fn default() -> Self {
        if let Some(path) = std::env::var_os("SITED_NFT") {
            return Nft {
                binary: PathBuf::from(path),
            };
        }
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .map(|d| d.join("nft"))
            .find(|p| p.is_file());
        Nft {
            binary: on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nft")),
        }
    }
}

impl Nft {
    fn nft(&self, args: &[&str], input: Option<&str>) -> Result<String, Error> {
        let failed = |what: String| Error::new(Kind::FirewallFailed, what);
        let mut child = Command::new(&self.binary)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("cannot run {}: {e}", self.binary.display())))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(text.as_bytes())
                .map_err(|e| failed(format!("writing to nft: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| failed(format!("waiting for nft: {e}")))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(failed(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ))
        }
    }

    /// `nft list table` with `args`; `None` when the table does not exist (one process, not
    /// a `list tables` first: each nft run costs a process start and a netlink dump).
    fn list_table(&self, args: &[&str]) -> Result<Option<String>, Error> {
        let mut all = args.to_vec();
        all.extend(["list", "table", FAMILY, TABLE]);
        match self.nft(&all, None) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.msg().contains("No such file or directory") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Driver for Nft {
    fn check(&self, script: &str) -> Result<(), Error> {
        self.nft(&["-c", "-f", "-"], Some(script)).map(drop)
    }

    fn run(&self, script: &str) -> Result<(), Error> {
        self.nft(&["-f", "-"], Some(script)).map(drop)
    }

    fn live_text(&self) -> Result<Option<String>, Error> {
        self.list_table(&[])
    }

    fn live_json(&self) -> Result<Option<Value>, Error> {
        let Some(text) = self.list_table(&["-j"])? else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::new(Kind::FirewallFailed, format!("nft -j output: {e}")))
    }
}

/// Prints what would be run, and changes nothing.
#[derive(Debug, Default)]
pub struct DryRun;

impl Driver for DryRun {
    fn check(&self, _: &str) -> Result<(), Error> {
        Ok(())
    }

    fn run(&self, script: &str) -> Result<(), Error> {
        print!("{script}");
        Ok(())
    }

    fn live_text(&self) -> Result<Option<String>, Error> {
        Ok(None)
    }

    fn live_json(&self) -> Result<Option<Value>, Error> {
        Ok(None)
    }

    fn changes_system(&self) -> bool {
        false
    }
}

/// Turns licence host names into addresses; a trait so that tests need no DNS.
pub trait Resolver {
    /// The addresses of a host; empty when it does not resolve.
    fn resolve(&self, host: &str) -> Vec<IpAddr>;
}

/// The system resolver (getaddrinfo).
#[derive(Debug, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str) -> Vec<IpAddr> {
        use std::net::ToSocketAddrs as _;
        let mut out: Vec<IpAddr> = (host, 0)
            .to_socket_addrs()
            .map(|a| a.map(|s| s.ip()).collect())
            .unwrap_or_default();
        out.sort();
        out.dedup();
        out
    }
}

/// The lines that fill the resolved sets: `add element inet sited license_hosts_v4 { … }`.
pub fn resolved_elements(rs: &Ruleset, hosts: &[&str], resolver: &dyn Resolver) -> String {
    let addresses: BTreeSet<IpAddr> = hosts.iter().flat_map(|h| resolver.resolve(h)).collect();
    let mut out = String::new();
    for set in rs.sets.iter().filter(|s| s.kind == SetKind::Resolved) {
        let mine: Vec<String> = addresses
            .iter()
            .filter(|a| {
                matches!(
                    (a, set.family),
                    (IpAddr::V4(_), Family::V4) | (IpAddr::V6(_), Family::V6)
                )
            })
            .map(|a| format!("{a} timeout {}s", RESOLVED_TIMEOUT.as_secs()))
            .collect();
        if !mine.is_empty() {
            out.push_str(&format!(
                "add element {FAMILY} {TABLE} {} {{ {} }}\n",
                set.name,
                mine.join(", ")
            ));
        }
    }
    out
}

/// The outcome of a successful apply.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The table that was live before, as nft text; `None` if there was none.
    pub previous: Option<String>,
    /// How long check, replace and verify took.
    pub took: Duration,
}

/// The script that puts back a previous table (or removes ours if there was none).
pub fn restore_script(previous: Option<&str>) -> String {
    match previous {
        Some(text) => format!("table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n{text}"),
        None => format!("table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n"),
    }
}

/// Applies a ruleset: check, replace atomically, verify, and restore on a mismatch.
pub fn apply(driver: &dyn Driver, rs: &Ruleset, extra: &str) -> Result<Applied, Error> {
    let start = Instant::now();
    let script = format!("{}{extra}", text::transaction(rs));
    driver.check(&script).map_err(|e| {
        Error::new(
            Kind::FirewallRejected,
            format!("nft rejected the ruleset, nothing was changed: {e}"),
        )
    })?;
    let nft_failed = |e: Error| {
        Error::new(
            Kind::FirewallFailed,
            format!("nft failed, nothing was changed: {e}"),
        )
    };
    let previous = driver.live_text().map_err(nft_failed)?;
    driver.run(&script).map_err(nft_failed)?;
    if !driver.changes_system() {
        return Ok(Applied {
            previous,
            took: start.elapsed(),
        });
    }
    let verified = match driver.live_json() {
        Ok(Some(live)) => verify(&live, rs),
        Ok(None) => Err(crate::err!(FirewallMismatch, "the table is not live")),
        Err(e) => Err(e),
    };
    if let Err(mismatch) = verified {
        return Err(match driver.run(&restore_script(previous.as_deref())) {
            Ok(()) => Error::new(
                Kind::FirewallMismatch,
                format!(
                    "the live table did not match the plan ({mismatch}); the previous table was restored"
                ),
            ),
            Err(e) => Error::new(
                Kind::FirewallRestoreFailed,
                format!(
                    "the live table did not match the plan ({mismatch}), and restoring the previous table failed: {e}"
                ),
            ),
        });
    }
    Ok(Applied {
        previous,
        took: start.elapsed(),
    })
}

/// Checks the live table (libnftables JSON) against the planned ruleset.
pub fn verify(live: &Value, rs: &Ruleset) -> Result<(), Error> {
    let objects = live
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| crate::err!(FirewallMismatch, "no nftables array"))?;
    let of = |kind: &'static str| {
        objects
            .iter()
            .filter_map(move |o| o.get(kind))
            .filter(|o| o["table"] == TABLE)
    };
    for chain in &rs.chains {
        let live_chain = of("chain")
            .find(|c| c["name"] == chain.name.as_str())
            .ok_or_else(|| crate::err!(FirewallMismatch, "chain {} is missing", chain.name))?;
        if let Some(base) = chain.base {
            let policy = if base.accept { "accept" } else { "drop" };
            if live_chain["policy"] != policy {
                return Err(crate::err!(
                    FirewallMismatch,
                    "chain {} has policy {}, not {policy}",
                    chain.name,
                    live_chain["policy"]
                ));
            }
        }
        let live_rules: Vec<Option<&str>> = of("rule")
            .filter(|r| r["chain"] == chain.name.as_str())
            .map(|r| r["comment"].as_str())
            .collect();
        let planned: Vec<Option<&str>> = chain.rules.iter().map(|r| r.comment.as_deref()).collect();
        if live_rules != planned {
            return Err(crate::err!(
                FirewallMismatch,
                "chain {} has {} rules, {} planned, or they differ",
                chain.name,
                live_rules.len(),
                planned.len()
            ));
        }
        let vmaps = of("rule")
            .filter(|r| r["chain"] == chain.name.as_str())
            .filter(|r| r.to_string().contains("\"vmap\""))
            .count();
        let planned_vmaps = chain
            .rules
            .iter()
            .filter(|r| matches!(r.action, Action::CtStateMap(_)))
            .count();
        if vmaps != planned_vmaps {
            return Err(crate::err!(
                FirewallMismatch,
                "chain {} lost its ct state map",
                chain.name
            ));
        }
    }
    if of("chain").count() != rs.chains.len() {
        return Err(crate::err!(
            FirewallMismatch,
            "the live table has chains that were not planned"
        ));
    }
    for set in &rs.sets {
        let live_set = of("set")
            .find(|s| s["name"] == set.name.as_str())
            .ok_or_else(|| crate::err!(FirewallMismatch, "set {} is missing", set.name))?;
        if set.kind == SetKind::Resolved {
            continue;
        }
        let live_elements: BTreeSet<IpNet> = live_set["elem"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(element)
            .collect();
        let planned: BTreeSet<IpNet> = set.elements.iter().copied().collect();
        if live_elements != planned {
            return Err(crate::err!(
                FirewallMismatch,
                "set {} holds {} elements, {} planned, or they differ",
                set.name,
                live_elements.len(),
                planned.len()
            ));
        }
    }
    Ok(())
}

/// One set element of `nft -j` output: an address, a prefix, or a range that is a prefix.
fn element(v: &Value) -> Option<IpNet> {
    if let Some(s) = v.as_str() {
        return s.parse::<IpAddr>().ok().map(IpNet::from);
    }
    if let Some(p) = v.get("prefix") {
        let addr: IpAddr = p["addr"].as_str()?.parse().ok()?;
        return IpNet::new(addr, u8::try_from(p["len"].as_u64()?).ok()?).ok();
    }
    if let Some(r) = v.get("range").and_then(Value::as_array) {
        let lo: IpAddr = r.first()?.as_str()?.parse().ok()?;
        let hi: IpAddr = r.get(1)?.as_str()?.parse().ok()?;
        return range_prefix(lo, hi);
    }
    None
}

fn range_prefix(lo: IpAddr, hi: IpAddr) -> Option<IpNet> {
    let bits = match lo {
        IpAddr::V4(_) => 32u8,
        IpAddr::V6(_) => 128,
    };
    (0..=bits).find_map(|len| {
        IpNet::new(lo, len)
            .ok()
            .filter(|n| n.network() == lo && n.broadcast() == hi)
    })
}
