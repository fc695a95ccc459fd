//! The mobile devices' stream keys: each `[[devices]]` entry names a key file, read at every
//! reconcile so that a rotated key needs no edit of site.toml.
//!
//! A missing or empty key file is logged, and that device cannot publish; the other devices
//! are not affected. Keys are never logged.

use std::collections::HashMap;

use crate::config::site::Device;

/// The stream key of each device whose key file reads, mapped to the device's name.
pub fn load(devices: &[Device]) -> HashMap<String, String> {
    let mut keys = HashMap::new();
    for d in devices {
        match std::fs::read_to_string(&d.key_file) {
            Ok(k) if !k.trim().is_empty() => {
                keys.insert(k.trim().to_string(), d.name.clone());
            }
            Ok(_) => {
                tracing::warn!(device = %d.name, file = %d.key_file.display(), "the device's key file is empty; it cannot publish")
            }
            Err(e) => {
                tracing::warn!(device = %d.name, file = %d.key_file.display(), error = %e, "cannot read the device's key file; it cannot publish")
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_and_skips_devices_without_one() {
        let dir = std::env::temp_dir().join(format!("sited-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.key"), "k-ipad\n").unwrap();
        std::fs::write(dir.join("b.key"), "  \n").unwrap();
        let device = |name: &str, file: &str| Device {
            name: name.into(),
            key_file: dir.join(file),
        };
        let keys = load(&[
            device("ipad", "a.key"),
            device("empty", "b.key"),
            device("gone", "c.key"),
        ]);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys["k-ipad"], "ipad");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
