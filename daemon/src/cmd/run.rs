//! `sited run`: the daemon.
//!
//! It finds its node (the flag, then the node file, then the host name, then a local address),
//! plans, applies the firewall, binds every listener of the plan, and reconciles whenever the
//! site file changes or SIGHUP arrives. Without root it cannot touch nftables or bind ports
//! below 1024: the firewall falls back to none, with a warning, and low ports move up by
//! `--port-offset` (80 becomes 10080).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;
use tokio_util::sync::CancellationToken;

use crate::reconcile::{Daemon, FirewallMode, RunConfig};
use crate::system;

/// Arguments of `sited run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The site file.
    #[arg(long, default_value = "/etc/sited/site.toml")]
    pub config: PathBuf,
    /// This node's name in the site file.
    #[arg(long)]
    pub node: Option<String>,
    /// The state directory: database, certificates, last good site file.
    #[arg(long, default_value = "/var/lib/sited")]
    pub state_dir: PathBuf,
    /// The firewall driver: nft, or none to leave the firewall alone.
    #[arg(long, value_enum, default_value_t = Firewall::Nft)]
    pub firewall: Firewall,
    /// Where an installer may drop site.toml before the first boot (the ESP's sited/ folder).
    #[arg(long, default_value = "/boot/efi/sited")]
    pub boot_dir: PathBuf,
    /// Added to ports below 1024 when not running as root.
    #[arg(long, default_value_t = 10000)]
    pub port_offset: u16,
    /// Apply --port-offset even as root (a development machine whose port 80 is taken).
    #[arg(long)]
    pub force_port_offset: bool,
    /// How long the site file must be quiet before a change is reconciled, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub debounce_ms: u64,
    /// The length recorded segments aim for, in seconds; tests and benchmarks shorten it.
    #[arg(long, default_value_t = 60, hide = true)]
    pub segment_secs: u64,
    /// How often retention runs, in seconds; tests shorten it.
    #[arg(long, default_value_t = crate::reconcile::RETENTION.as_secs(), hide = true)]
    pub retention_secs: u64,
    /// Debug logging.
    #[arg(long, short)]
    pub verbose: bool,
}

/// The firewall driver of `sited run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Firewall {
    /// nftables: table `inet sited`.
    Nft,
    /// Leave the firewall alone.
    None,
}

/// Runs the daemon until SIGTERM.
pub fn run(args: &Args) -> ExitCode {
    system::log::init(args.verbose);
    let root = system::is_root();
    let firewall = match (args.firewall, root) {
        (Firewall::Nft, true) => FirewallMode::Nft,
        (Firewall::Nft, false) => {
            tracing::warn!(
                "not running as root: the firewall is left alone (--firewall none); run as root to apply table inet sited"
            );
            FirewallMode::None
        }
        (Firewall::None, _) => FirewallMode::None,
    };
    let port_offset = if root && !args.force_port_offset {
        0
    } else {
        args.port_offset
    };
    if port_offset > 0 {
        tracing::warn!(
            offset = port_offset,
            "not running as root: ports below 1024 are bound at port + {port_offset}"
        );
    }
    // State files (the database, keys, certificates, recordings) are the daemon's alone,
    // whatever the umask of whoever started it.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    // Peers get descriptors only while a reserve stays free for the daemon's own files.
    match crate::base::admission::raise_nofile() {
        Ok((soft, _)) => {
            let reserve = crate::base::admission::reserve(soft);
            tracing::info!(
                open_files = soft,
                reserve,
                "file descriptors: {soft}, of which {reserve} are kept from peers"
            );
        }
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the limit on open files"),
    }
    let node_file = args
        .config
        .parent()
        .map_or_else(|| PathBuf::from("node"), |d| d.join("node"));
    let cfg = RunConfig {
        config: args.config.clone(),
        node: args.node.clone(),
        node_file,
        state_dir: args.state_dir.clone(),
        firewall,
        boot_dir: args.boot_dir.clone(),
        port_offset,
        debounce: Duration::from_millis(args.debounce_ms),
        segment: Duration::from_secs(args.segment_secs.max(1)),
        retention: Duration::from_secs(args.retention_secs.max(1)),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sited: cannot start the runtime: {e}");
            return ExitCode::from(super::FAILURE);
        }
    };
    let result = runtime.block_on(async move {
        let (daemon, _app) = Daemon::new(cfg, CancellationToken::new())?;
        daemon.run().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "sited stopped");
            ExitCode::from(super::FAILURE)
        }
    }
}
