//! `sited render nftables FILE --node NAME`: the node's exact ruleset, as nft text or JSON.
//!
//! Deterministic and unprivileged: the same file gives byte-identical output, on any machine.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;

use crate::plan::ruleset::{json, text};

/// What `sited render` can render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum What {
    /// The nftables ruleset.
    Nftables,
}

/// Arguments of `sited render`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to render.
    #[arg(value_enum)]
    pub what: What,
    /// The site file.
    pub file: PathBuf,
    /// The node.
    #[arg(long)]
    pub node: String,
    /// nft syntax (`nft -f`) or libnftables JSON (`nft -j -f`).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Output formats of `sited render nftables`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// nft syntax.
    Text,
    /// libnftables JSON.
    Json,
}

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    let plan = match super::load_plan(&args.file, &args.node) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    match (args.what, args.format) {
        (What::Nftables, Format::Text) => print!("{}", text::render(&plan.ruleset)),
        (What::Nftables, Format::Json) => print!("{}", json::render(&plan.ruleset)),
    }
    ExitCode::SUCCESS
}
