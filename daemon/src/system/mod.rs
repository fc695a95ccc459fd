//! The process and its host: logging, systemd notifications, the watchdog, and panics.

pub mod log;
pub mod notify;

/// Whether the process runs with root's effective uid.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
