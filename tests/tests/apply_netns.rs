//! Applying the firewall in a network namespace: the previous table survives every failure,
//! `--confirm` reverts an unconfirmed change, and no other table is ever touched.
//!
//! Privileged: skipped with a reason unless run as root. Faults are injected through
//! `SITED_NFT`, a wrapper around the real nft that corrupts the ruleset, fails the commit, or
//! tampers with the live table after it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sited_tests::netns::Lab;
use sited_tests::{require_root, sited};

const A: &str = "tests/fixtures/valid/valt-single.toml";

struct Setup {
    lab: Lab,
    dir: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let dir = std::env::temp_dir().join(format!("sited-apply-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Setup {
            lab: Lab::new(&[]),
            dir,
        }
    }

    /// `sited ARGS` in the node namespace, with extra environment.
    fn sited(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.lab.node])
            .arg(sited())
            .args(args)
            .current_dir(sited_tests::root());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn apply(&self, file: &str, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let state = self.dir.join("state");
        let mut args = vec![
            "apply",
            file,
            "--node",
            "app-1",
            "--state-dir",
            state.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.sited(&args, env)
    }

    fn live(&self) -> String {
        let out = self
            .lab
            .try_exec(&self.lab.node, &["nft", "list", "ruleset"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A second site: admins moved to another network.
    fn b(&self) -> String {
        let text = std::fs::read_to_string(sited_tests::root().join(A)).unwrap();
        let path = self.dir.join("b.toml");
        std::fs::write(&path, text.replace("192.0.2.128/25", "198.51.100.128/25")).unwrap();
        path.to_str().unwrap().to_string()
    }

    fn wrapper(&self, body: &str) -> String {
        let path = self.dir.join("nft-wrapper");
        let script = format!(
            "#!/bin/sh\nreal=$(command -v nft || echo /usr/sbin/nft)\nmarker={}\n{body}\n",
            self.dir.join("tampered").display()
        );
        std::fs::write(&path, script).unwrap();
        std::process::Command::new("chmod")
            .args(["+x", path.to_str().unwrap()])
            .status()
            .unwrap();
        path.to_str().unwrap().to_string()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn failed(out: &std::process::Output, words: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(words), "expected {words:?} in: {err}");
}

#[test]
fn an_invalid_ruleset_leaves_the_old_one_live() {
    require_root!("nft");
    let s = Setup::new("invalid");
    ok(&s.apply(A, &[], &[]));
    let before = s.live();
    assert!(before.contains("192.0.2.128/25"));
    // The wrapper appends a line nft cannot parse: the real nft -c rejects the ruleset.
    let nft = s.wrapper("if [ \"$1\" = -c ] || [ \"$1\" = -f ]; then { cat; echo 'this is not nft'; } | \"$real\" \"$@\"; exit $?; fi\nexec \"$real\" \"$@\"");
    let b = s.b();
    failed(
        &s.apply(&b, &[], &[("SITED_NFT", &nft)]),
        "nft rejected the ruleset, nothing was changed",
    );
    assert_eq!(s.live(), before);
}

#[test]
fn a_failed_commit_leaves_the_old_one_live() {
    require_root!("nft");
    let s = Setup::new("commit");
    ok(&s.apply(A, &[], &[]));
    let before = s.live();
    let nft = s.wrapper("if [ \"$1\" = -f ]; then echo 'Error: Could not process rule: No buffer space available' >&2; exit 1; fi\nexec \"$real\" \"$@\"");
    let b = s.b();
    failed(
        &s.apply(&b, &[], &[("SITED_NFT", &nft)]),
        "nft failed, nothing was changed",
    );
    assert_eq!(s.live(), before);
}

#[test]
fn a_table_that_does_not_verify_is_rolled_back() {
    require_root!("nft");
    let s = Setup::new("verify");
    ok(&s.apply(A, &[], &[]));
    let before = s.live();
    // After the real commit, something adds a rule behind sited's back, once.
    let nft = s.wrapper("if [ \"$1\" = -f ] && [ ! -e \"$marker\" ]; then \"$real\" \"$@\" || exit $?; touch \"$marker\"; exec \"$real\" add rule inet sited allow tcp dport 9999 accept; fi\nexec \"$real\" \"$@\"");
    let b = s.b();
    failed(
        &s.apply(&b, &[], &[("SITED_NFT", &nft)]),
        "the previous table was restored",
    );
    assert_eq!(s.live(), before);
}

#[test]
fn replacing_the_table_drops_stale_set_elements_and_spares_other_tables() {
    require_root!("nft");
    let s = Setup::new("stale");
    s.lab.exec(&s.lab.node, &["nft", "add table inet other; add chain inet other c; add rule inet other c tcp dport 1 accept"]);
    ok(&s.apply(A, &[], &[]));
    let b = s.b();
    ok(&s.apply(&b, &[], &[]));
    let live = s.live();
    assert!(live.contains("198.51.100.128/25"));
    assert!(
        !live.contains("192.0.2.128/25"),
        "a removed admin network must lose its access"
    );
    assert!(live.contains("table inet other") && live.contains("tcp dport 1 accept"));
}

#[test]
fn an_unconfirmed_change_is_reverted() {
    require_root!("nft");
    let s = Setup::new("revert");
    ok(&s.apply(A, &[], &[]));
    let before = s.live();
    let b = s.b();
    let out = s.apply(&b, &["--confirm", "2"], &[]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `sited confirm` within 2 s"));
    assert!(s.live().contains("198.51.100.128/25"));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(s.live(), before, "the change was not reverted");
    let state = s.dir.join("state");
    let confirm = s.sited(&["confirm", "--state-dir", state.to_str().unwrap()], &[]);
    assert_eq!(confirm.status.code(), Some(1), "nothing is left to confirm");
    let note = std::fs::read_to_string(state.join("firewall/last-revert")).unwrap();
    assert!(note.starts_with("reverted"), "{note}");
}

#[test]
fn a_confirmed_change_stays() {
    require_root!("nft");
    let s = Setup::new("confirm");
    let b = s.b();
    ok(&s.apply(&b, &["--confirm", "3"], &[]));
    let state = s.dir.join("state");
    ok(&s.sited(&["confirm", "--state-dir", state.to_str().unwrap()], &[]));
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        s.live().contains("198.51.100.128/25"),
        "a confirmed change must stay"
    );
    assert!(!Path::new(&state.join("firewall/pending")).exists());
}

#[test]
fn a_first_unconfirmed_apply_removes_the_table_again() {
    require_root!("nft");
    let s = Setup::new("first");
    ok(&s.apply(A, &["--confirm", "1"], &[]));
    assert!(s.live().contains("table inet sited"));
    std::thread::sleep(Duration::from_secs(3));
    assert!(!s.live().contains("table inet sited"));
}

#[test]
fn every_snapshot_loads_and_its_text_and_json_agree() {
    require_root!("nft");
    let s = Setup::new("snapshots");
    let mut count = 0;
    for entry in std::fs::read_dir(sited_tests::tests_dir("snapshots")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "nft") {
            continue;
        }
        let json = path.with_extension("json");
        let listed = |args: &[&str], file: &Path| {
            let _ = s
                .lab
                .try_exec(&s.lab.node, &["nft", "delete", "table", "inet", "sited"]);
            let mut all = args.to_vec();
            all.push(file.to_str().unwrap());
            let out = s.lab.try_exec(&s.lab.node, &all);
            assert!(
                out.status.success(),
                "{}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            s.live()
        };
        let from_text = listed(&["nft", "-f"], &path);
        let from_json = listed(&["nft", "-j", "-f"], &json);
        assert_eq!(
            from_text,
            from_json,
            "{}: text and JSON load different tables",
            path.display()
        );
        assert!(from_text.contains("chain allow"));
        count += 1;
    }
    assert!(count >= 8);
}
