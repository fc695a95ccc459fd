//! systemd notifications (`Type=notify`): READY, RELOADING, STATUS, and the watchdog.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing. `READY=1` is also printed
//! as a log line, `sited: READY`, which the image test looks for on the console.

use std::time::Duration;

use sd_notify::NotifyState;

/// Tells systemd the daemon is ready, with a status line.
pub fn ready(status: &str) {
    tracing::info!(status = %status, "sited: READY");
    let _ = sd_notify::notify(false, &[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd a reload started (`RELOADING=1` with `MONOTONIC_USEC`).
pub fn reloading() {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
        .unwrap_or(0);
    let usec = format!("MONOTONIC_USEC={now}");
    let _ = sd_notify::notify(false, &[NotifyState::Reloading, NotifyState::Custom(&usec)]);
}

/// Tells systemd the reload is over, with a new status line.
pub fn reloaded(status: &str) {
    let _ = sd_notify::notify(false, &[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Updates the status line.
pub fn status(status: &str) {
    let _ = sd_notify::notify(false, &[NotifyState::Status(status)]);
}

/// Tells systemd the daemon is stopping.
pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}

/// How often to ping the watchdog: half its timeout, if systemd set one.
pub fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        Some(Duration::from_micros(usec / 2))
    } else {
        None
    }
}

/// One watchdog ping.
pub fn watchdog() {
    let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
}
