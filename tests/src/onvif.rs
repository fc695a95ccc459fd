//! Fake ONVIF devices: `scripts/fake-onvif.py` in a network namespace (WS-Discovery on UDP 3702
//! and canned SOAP over HTTP), and `sited discover` run beside them.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `scripts/fake-onvif.py`.
pub struct FakeOnvif {
    child: Child,
}

impl FakeOnvif {
    /// Starts it in `netns` with these arguments, waiting until it listens.
    pub fn start_in(netns: &str, args: &[&str]) -> FakeOnvif {
        let mut child = Command::new("ip")
            .args(["netns", "exec", netns, crate::camera::PYTHON])
            .arg(crate::root().join("scripts/fake-onvif.py"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start scripts/fake-onvif.py");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = matches!(lines.next(), Some(Ok(l)) if l == "ready");
        assert!(ready, "scripts/fake-onvif.py did not start");
        FakeOnvif { child }
    }
}

impl Drop for FakeOnvif {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `sited discover` with `args` in `netns`; returns its output and how long it took.
pub fn discover(netns: &str, args: &[&str]) -> (Output, Duration) {
    let sited = crate::sited();
    let start = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", netns])
        .arg(sited)
        .arg("discover")
        .args(args)
        .output()
        .expect("run sited discover");
    (out, start.elapsed())
}
