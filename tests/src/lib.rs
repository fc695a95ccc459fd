//! The harness of sited's black-box tests.
//!
//! The tests run the real `sited` binary, built once per test process with the same cargo that
//! runs the tests. Privileged tests (nft, network namespaces, qemu) call [`require_root`] first,
//! which skips them with a reason when not run as root. Every skip goes through
//! [`sited::base::skip`]: printed, counted by `make test`, and a failure under CI.

pub mod camera;
pub mod daemon;
pub mod expectations;
pub mod media;
pub mod netns;

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

/// Whether golden files should be rewritten instead of compared: `SITED_BLESS=1` exactly. Any
/// other value (`0`, empty) compares, so that a stray variable cannot make golden tests pass.
pub fn bless() -> bool {
    std::env::var("SITED_BLESS").is_ok_and(|v| v == "1")
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

/// Skips the calling test, with a reason, unless run as root with every `tool` on the PATH.
/// The skip is recorded by [`sited::base::skip`]: `make test` counts it, and CI
/// (`SITED_NO_SKIP=1`) fails on it.
#[macro_export]
macro_rules! require_root {
    ($($tool:expr),*) => {
        sited::skip_unless!(root $(, $tool)*);
    };
}
