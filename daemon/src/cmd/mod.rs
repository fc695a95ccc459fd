//! The `sited` command line: one module per command.
//!
//! Exit codes, for every command: 0 ok, 1 invalid input (or, for `plan`, see there), 2 usage or
//! I/O error.

pub mod apply;
pub mod hash_password;
pub mod plan;
pub mod ports;
pub mod push;
pub mod render;
pub mod run;
pub mod schema;
pub mod secret;
pub mod validate;

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A video-management appliance configured by one file.
#[derive(Debug, Parser)]
#[command(name = "sited", version, about, propagate_version = true)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of `sited`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: plan, apply the firewall, serve, and reconcile on every change.
    Run(run::Args),
    /// Check site files and report every problem.
    Validate(validate::Args),
    /// Print the JSON Schema of site.toml.
    Schema,
    /// Print a node's resolved ports, or a layout's whole catalog.
    Ports(ports::Args),
    /// Print a node's exact nftables ruleset.
    Render(render::Args),
    /// Show what would change on a node; exit 0 no change, 2 changes, 1 error.
    Plan(plan::Args),
    /// Apply a node's firewall: check, replace atomically, verify, restore on failure.
    Apply(apply::Args),
    /// Keep a firewall change made with `apply --confirm`.
    Confirm(apply::ConfirmArgs),
    /// Read a password on stdin and print its argon2 hash for `[[users]]`.
    HashPassword,
    /// Make a new per-site secret for the node links.
    Secret(secret::Args),
    /// Send a site file to the application node, which rolls it out (`--dry-run`: each
    /// node's plan diff; exit 0 no change, 2 changes, 1 error).
    Push(push::Args),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Schema => schema::run(),
        Command::Ports(args) => ports::run(&args),
        Command::Render(args) => render::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Apply(args) => apply::run(&args),
        Command::Confirm(args) => apply::confirm(&args),
        Command::HashPassword => hash_password::run(),
        Command::Secret(args) => secret::run(&args),
        Command::Push(args) => push::run(&args),
    }
}

/// Exit code 1: the input is invalid.
pub const INVALID: u8 = 1;
/// Exit code 2: usage or I/O error.
pub const FAILURE: u8 = 2;

/// Reads a file, or prints why not.
pub fn read(path: &Path) -> Result<String, ExitCode> {
    std::fs::read_to_string(path).map_err(|e| {
        eprintln!("sited: cannot read {}: {e}", path.display());
        ExitCode::from(FAILURE)
    })
}

/// Reads and checks a site file; prints its diagnostics and fails when it is invalid.
pub fn load_site(path: &Path) -> Result<crate::config::Site, ExitCode> {
    let text = read(path)?;
    let checked = crate::plan::check(&text, crate::config::Options::default());
    let shown = path.display().to_string();
    let source = crate::config::Source::new(&shown, &text);
    for d in checked
        .diagnostics
        .iter()
        .filter(|d| checked.has_errors() || d.severity == crate::config::Severity::Error)
    {
        eprint!("{}", source.human(d));
    }
    checked.site.ok_or(ExitCode::from(INVALID))
}

/// Reads and checks a site file and plans one of its nodes.
pub fn load_plan(path: &Path, node: &str) -> Result<crate::plan::Plan, ExitCode> {
    let site = load_site(path)?;
    crate::plan::plan(&site, node).ok_or_else(|| {
        let names: Vec<&str> = site.nodes.iter().map(|n| n.name.as_str()).collect();
        eprintln!(
            "sited: no node \"{node}\" in {}; the nodes are {}",
            path.display(),
            names.join(", ")
        );
        ExitCode::from(INVALID)
    })
}
