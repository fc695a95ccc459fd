//! The harness of sited's black-box tests.
//!
//! The tests run the real `sited` binary, built once per test process with the same cargo that
//! runs the tests. Privileged tests (nft, network namespaces, qemu) call [`require_root`] first,
//! which skips them with a reason when not run as root.

pub mod camera;
pub mod daemon;
pub mod expectations;
pub mod media;
pub mod netns;
pub mod onvif;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A path under `tests/`.
pub fn tests_dir(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The `sited` binary, built on first use.
pub fn sited() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "sited", "--bin", "sited"])
            .current_dir(root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of sited failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root().join("target"), PathBuf::from);
        target.join("debug").join("sited")
    })
}

/// Runs `sited` with arguments, from the workspace root.
pub fn run(args: &[&str]) -> Output {
    Command::new(sited())
        .args(args)
        .current_dir(root())
        .output()
        .expect("run sited")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether golden files should be rewritten instead of compared (`SITED_BLESS=1`).
pub fn bless() -> bool {
    std::env::var_os("SITED_BLESS").is_some()
}

/// Compares `actual` with the golden file at `path`, or rewrites it under `SITED_BLESS=1`.
pub fn golden(path: &Path, actual: &str) {
    if bless() {
        std::fs::write(path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with SITED_BLESS=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs from the output.\n--- expected\n{expected}\n--- actual\n{actual}\n(run with SITED_BLESS=1 to accept)",
        path.display()
    );
}

/// Whether this process runs as root; privileged tests need it.
pub fn is_root() -> bool {
    // The effective uid is in /proc/self/status; no libc binding is needed for one number.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Skips the calling test, with a reason, unless run as root with `tool` on the PATH.
#[macro_export]
macro_rules! require_root {
    ($($tool:expr),*) => {
        if !$crate::is_root() {
            eprintln!("SKIPPED: {} needs root (network namespaces, nft); run `make test` as root, as CI does", module_path!());
            return;
        }
        $(
            if std::process::Command::new("sh").args(["-c", &format!("command -v {}", $tool)]).output().map_or(true, |o| !o.status.success()) {
                panic!("{} is not installed; `make test` installs it with apt-get", $tool);
            }
        )*
    };
}
