//! The daemon: reconcile the node with its site file at start, on every change and on SIGHUP.
//!
//! - [`daemon`] is the composition root: it builds the state, the drivers and the servers;
//! - [`attempt`] is one reconcile attempt: read, check, plan, decide with
//!   [`crate::plan::diff::actions`] (the one decision), and carry the actions out through the
//!   drivers. Everything fallible comes before the first change (TLS material, then the
//!   firewall, then the listeners), so a failed attempt leaves the last good plan running;
//! - [`event`] is the loop: file changes (debounced), SIGHUP, the watchdog, retention and the
//!   licence-host refresh, until SIGTERM;
//! - [`listeners`] opens, closes and rebinds listeners as told; [`node`] finds this node in the
//!   site; [`boot`] imports the installer's file; [`watch`] watches the config folder;
//!   [`renew`] renews the self-signed certificate before it ends.
//!
//! Every attempt is recorded in the config history. The last good file is kept in
//! `<state-dir>/last-good.toml`, so that a restart with a broken file still runs the last good
//! site.

pub mod attempt;
pub mod boot;
pub mod daemon;
pub mod event;
pub mod links;
pub mod listeners;
pub mod node;
pub mod renew;
pub mod watch;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

pub use daemon::{Daemon, Drivers};

/// How often retention runs by default.
pub const RETENTION: Duration = Duration::from_secs(60);

/// How often the self-signed certificate's remaining validity is checked.
pub const TLS_RENEWAL_CHECK: Duration = Duration::from_secs(12 * 3600);

/// How often resolved licence-host addresses are refreshed.
pub const LICENSE_REFRESH: Duration = Duration::from_secs(300);

/// How long shutdown waits for the connections it owns to end.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Which firewall driver the daemon uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirewallMode {
    /// nftables.
    Nft,
    /// None: sited leaves the firewall alone.
    None,
}

/// The daemon's own settings, from the `sited run` command line.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The site file.
    pub config: PathBuf,
    /// The node, if given.
    pub node: Option<String>,
    /// The node file, read when no node is given.
    pub node_file: PathBuf,
    /// The state directory.
    pub state_dir: PathBuf,
    /// The firewall driver.
    pub firewall: FirewallMode,
    /// Where an installer may drop `site.toml` before the first boot.
    pub boot_dir: PathBuf,
    /// Added to ports below 1024 (0: real ports).
    pub port_offset: u16,
    /// How long the file must be quiet before a change is reconciled.
    pub debounce: Duration,
    /// The length recorded segments aim for. Default: 60 s.
    pub segment: Duration,
    /// How often retention runs. Default: [`RETENTION`].
    pub retention: Duration,
}
