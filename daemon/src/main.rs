//! The `sited` binary: parses the command line and hands over to [`sited::cmd`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    sited::cmd::run(sited::cmd::Cli::parse())
}
