//! The `sited` command line: one module per command.
//!
//! Exit codes, for every command: 0 ok, 1 invalid input (or, for `plan`, see there), 2 usage or
//! I/O error.

pub mod ports;
pub mod schema;
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
    /// Check site files and report every problem.
    Validate(validate::Args),
    /// Print the JSON Schema of site.toml.
    Schema,
    /// Print a node's resolved ports, or a layout's whole catalog.
    Ports(ports::Args),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Schema => schema::run(),
        Command::Ports(args) => ports::run(&args),
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
    let checked = crate::config::check(&text, crate::config::Options::default());
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
