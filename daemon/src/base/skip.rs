//! Skipped tests: the one way a test that cannot run here says so, instead of passing.
//!
//! A test calls [`skip`] (or [`unless`]) and returns. The test harness has no "skipped" state,
//! so the reason is printed as `SKIPPED: <test>: <reason>` and appended as a line to the file
//! named by `SITED_SKIPPED`; `make test` counts that file at the end and names every skipped
//! test. Under `SITED_NO_SKIP=1` (CI, which has every tool installed) a skip fails the test
//! instead, so a green CI run means every test ran.

use std::io::Write as _;

/// The variable naming the file that collects skips.
pub const LOG_VAR: &str = "SITED_SKIPPED";
/// The variable that turns skips into failures.
pub const FORBID_VAR: &str = "SITED_NO_SKIP";

/// Records that `test` is skipped because of `reason`; panics under `SITED_NO_SKIP=1`.
pub fn skip(test: &str, reason: &str) {
    if std::env::var(FORBID_VAR).is_ok_and(|v| v == "1") {
        panic!("{test} cannot run here ({reason}), and {FORBID_VAR}=1 forbids skipping");
    }
    eprintln!("SKIPPED: {test}: {reason}");
    if let Some(path) = std::env::var_os(LOG_VAR)
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(f, "{test}: {reason}");
    }
}

/// Whether `tool` is on the PATH (or is an existing path).
pub fn has_tool(tool: &str) -> bool {
    if tool.contains('/') {
        return std::path::Path::new(tool).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Whether the process runs with root's effective uid.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips the calling test (and returns from it) unless every named tool is on the PATH, and
/// root when `root` is given first: `unless!(root, "nft", "ip")`, `unless!("ffmpeg")`.
#[macro_export]
macro_rules! skip_unless {
    (root $(, $tool:expr)*) => {
        if !$crate::base::skip::is_root() {
            $crate::base::skip::skip(module_path!(), "needs root (network namespaces, nft); `make test` runs it as root, as CI does");
            return;
        }
        $crate::skip_unless!($($tool),*);
    };
    ($($tool:expr),*) => {
        $(
            if !$crate::base::skip::has_tool($tool) {
                $crate::base::skip::skip(module_path!(), &format!("{} is not installed; `make test` installs it", $tool));
                return;
            }
        )*
    };
}
