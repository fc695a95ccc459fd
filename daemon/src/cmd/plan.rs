//! `sited plan FILE --node NAME [--against OLD_FILE]`: what would change on the node.
//!
//! Without `--against`, the plan is compared with nothing, so everything shows as added. Exit
//! codes follow Terraform's `-detailed-exitcode`: 0 no change, 2 changes, 1 error.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::plan::diff;

/// Arguments of `sited plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The new site file.
    pub file: PathBuf,
    /// The node.
    #[arg(long)]
    pub node: String,
    /// The site file now in force.
    #[arg(long)]
    pub against: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    // `plan` exits 2 for "changes", so its errors are all 1.
    let error = |_| ExitCode::from(1);
    let new = match super::load_plan(&args.file, &args.node) {
        Ok(p) => p,
        Err(code) => return error(code),
    };
    let old = match &args.against {
        Some(path) => match super::load_plan(path, &args.node) {
            Ok(p) => p,
            Err(code) => return error(code),
        },
        None => new.emptied(),
    };
    let change = diff::diff(&old, &new);
    print!("{}", diff::render(&change));
    if change.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
