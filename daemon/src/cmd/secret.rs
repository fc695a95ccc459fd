//! `sited secret [--out FILE]`: makes a new per-site secret, the key every node of a site
//! shares for its node links. An installer puts the same file on every node's boot partition
//! (`sited/site.secret` on the ESP), from where sited imports it on first start.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::nodes::Secret;

/// Arguments of `sited secret`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the secret to this file (mode 0600, never over an existing file) instead of
    /// printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    let secret = match Secret::generate() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sited: {e}");
            return ExitCode::from(super::FAILURE);
        }
    };
    let Some(path) = &args.out else {
        print!("{}", secret.to_file_text());
        return ExitCode::SUCCESS;
    };
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| {
            f.write_all(secret.to_file_text().as_bytes())?;
            f.sync_all()
        });
    match written {
        Ok(()) => {
            eprintln!(
                "sited: wrote {}; copy it to every node of the site (boot partition: sited/site.secret)",
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sited: cannot write {}: {e}", path.display());
            ExitCode::from(super::FAILURE)
        }
    }
}
