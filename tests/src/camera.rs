//! Fake cameras: `scripts/fake-camera.py`, a real GStreamer RTSP server with test patterns.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's python, which has python3-gi (a python3 earlier on PATH, such as pyenv's, may not).
pub const PYTHON: &str = "/usr/bin/python3";

/// A running fake-camera server.
pub struct FakeCameras {
    child: Child,
    /// Its RTSP port on 127.0.0.1.
    pub port: u16,
    specs: Vec<String>,
}

/// Whether the fake cameras can run here (GStreamer's RTSP server through python3-gi).
pub fn available() -> Result<(), String> {
    let out = Command::new(PYTHON)
        .args(["-c", "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err("GStreamer's RTSP server for python3 is missing; `make test` installs it (scripts/deps-media.sh) as root".into());
    }
    for tool in ["ffprobe", "ffmpeg"] {
        if Command::new(tool).arg("-version").output().is_err() {
            return Err(format!(
                "{tool} is missing; `make test` installs it as root"
            ));
        }
    }
    Ok(())
}

/// Skips the calling test, with a reason, when the fake cameras cannot run.
#[macro_export]
macro_rules! require_media {
    () => {
        if let Err(why) = $crate::camera::available() {
            sited::base::skip::skip(module_path!(), &why);
            return;
        }
    };
}

impl FakeCameras {
    /// Starts cameras (`name[:codec=h265][:audio=aac]…`) on `port`, waiting until they are ready.
    pub fn start_on(port: u16, specs: &[&str]) -> FakeCameras {
        let mut cmd = Command::new(PYTHON);
        cmd.arg(crate::root().join("scripts/fake-camera.py"))
            .args(["--port", &port.to_string()]);
        for s in specs {
            cmd.args(["--camera", s]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start scripts/fake-camera.py");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut ready = 0;
        while ready < specs.len() && Instant::now() < deadline {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("ready ") => ready += 1,
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        assert_eq!(ready, specs.len(), "the fake cameras did not start");
        FakeCameras {
            child,
            port,
            specs: specs.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Starts cameras on a free port.
    pub fn start(specs: &[&str]) -> FakeCameras {
        FakeCameras::start_on(crate::daemon::free_port(), specs)
    }

    /// The URL of a camera.
    pub fn url(&self, name: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{name}", self.port)
    }

    /// Kills the server (the cameras vanish).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the same cameras again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let specs: Vec<&str> = self.specs.iter().map(String::as_str).collect();
        *self = FakeCameras::start_on(self.port, &specs);
    }
}

impl Drop for FakeCameras {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
