//! `sited apply FILE --node NAME [--confirm SECONDS]` and `sited confirm`: the firewall of a node,
//! applied with the same code the daemon uses.
//!
//! With `--confirm`, the change is reverted unless `sited confirm` runs within the window, as in
//! Junos and VyOS: a remote admin who locks themselves out gets the old firewall back. The
//! previous table is saved under the state directory, and a detached timer process reverts it.
//! The timer and `sited confirm` race on one rename of the `pending` file, so exactly one wins.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::firewall::apply::{self, Driver, DryRun, Nft, SystemResolver};

/// Arguments of `sited apply`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The site file.
    pub file: PathBuf,
    /// The node.
    #[arg(long)]
    pub node: String,
    /// Revert unless `sited confirm` runs within this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub confirm: Option<u64>,
    /// Print the transaction instead of applying it.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the pending confirmation is kept.
    #[arg(long, default_value = "/var/lib/sited")]
    pub state_dir: PathBuf,
}

/// Arguments of `sited confirm`.
#[derive(Debug, clap::Args)]
pub struct ConfirmArgs {
    /// Where the pending confirmation is kept.
    #[arg(long, default_value = "/var/lib/sited")]
    pub state_dir: PathBuf,
    /// Internal: wait this many seconds, then revert if still unconfirmed.
    #[arg(long, hide = true)]
    pub revert_after: Option<u64>,
}

fn firewall_dir(state: &Path) -> PathBuf {
    state.join("firewall")
}

/// Runs `sited apply`.
pub fn run(args: &Args) -> ExitCode {
    let plan = match super::load_plan(&args.file, &args.node) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let hosts = plan.license_hosts();
    let extra = apply::resolved_elements(&plan.ruleset, &hosts, &SystemResolver);
    let dir = firewall_dir(&args.state_dir);
    if args.confirm.is_some() && dir.join("pending").exists() {
        eprintln!(
            "sited: a change is waiting for `sited confirm`; confirm it or let it revert first"
        );
        return ExitCode::from(super::FAILURE);
    }
    let driver: Box<dyn Driver> = if args.dry_run {
        Box::new(DryRun)
    } else {
        Box::new(Nft::default())
    };
    let applied = match apply::apply(driver.as_ref(), &plan.ruleset, &extra) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sited: {e}");
            return ExitCode::from(super::INVALID);
        }
    };
    if args.dry_run {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "sited: applied table inet sited to node {}: {} rules in {} chains, {} sets, in {} ms",
        plan.node.name,
        plan.ruleset.rule_count(),
        plan.ruleset.chains.len(),
        plan.ruleset.sets.len(),
        applied.took.as_millis()
    );
    if let Some(seconds) = args.confirm {
        if let Err(e) = arm(&dir, applied.previous.as_deref(), seconds) {
            eprintln!("sited: cannot arm the revert timer ({e}); reverting now");
            let _ = Nft::default().run(&apply::restore_script(applied.previous.as_deref()));
            return ExitCode::from(super::FAILURE);
        }
        eprintln!("sited: run `sited confirm` within {seconds} s, or this change is reverted");
    }
    ExitCode::SUCCESS
}

/// Saves the previous table and starts the detached revert timer.
fn arm(dir: &Path, previous: Option<&str>, seconds: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let rollback = match previous {
        Some(text) => text.to_string(),
        None => String::new(),
    };
    std::fs::write(dir.join("rollback.nft"), rollback)?;
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        + Duration::from_secs(seconds);
    std::fs::write(dir.join("pending"), format!("{}\n", deadline.as_secs()))?;
    let exe = std::env::current_exe()?;
    let state = dir.parent().unwrap_or(dir);
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("confirm")
        .arg("--state-dir")
        .arg(state)
        .arg("--revert-after")
        .arg(seconds.to_string());
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // A new session: the timer outlives the admin's SSH session and its hangup.
    unsafe {
        use std::os::unix::process::CommandExt as _;
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    cmd.spawn().map(drop)
}

/// Runs `sited confirm`.
pub fn confirm(args: &ConfirmArgs) -> ExitCode {
    let dir = firewall_dir(&args.state_dir);
    if let Some(seconds) = args.revert_after {
        std::thread::sleep(Duration::from_secs(seconds));
        return revert_if_pending(&dir);
    }
    match std::fs::remove_file(dir.join("pending")) {
        Ok(()) => {
            let _ = std::fs::remove_file(dir.join("rollback.nft"));
            eprintln!("sited: confirmed; the firewall change stays");
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "sited: nothing to confirm (no change is pending, or it was already reverted)"
            );
            ExitCode::from(super::INVALID)
        }
        Err(e) => {
            eprintln!("sited: cannot confirm: {e}");
            ExitCode::from(super::FAILURE)
        }
    }
}

fn revert_if_pending(dir: &Path) -> ExitCode {
    let taken = dir.join("reverting");
    if std::fs::rename(dir.join("pending"), &taken).is_err() {
        return ExitCode::SUCCESS;
    }
    let previous = std::fs::read_to_string(dir.join("rollback.nft")).unwrap_or_default();
    let previous = if previous.trim().is_empty() {
        None
    } else {
        Some(previous.as_str())
    };
    let outcome = Nft::default().run(&apply::restore_script(previous));
    let note = match &outcome {
        Ok(()) => "reverted: not confirmed in time\n".to_string(),
        Err(e) => format!("revert failed: {e}\n"),
    };
    let _ = std::fs::write(dir.join("last-revert"), note);
    let _ = std::fs::remove_file(&taken);
    let _ = std::fs::remove_file(dir.join("rollback.nft"));
    if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::FAILURE)
    }
}
