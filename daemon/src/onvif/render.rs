//! Discovered devices as text for the one file: ready-to-paste `[[cameras]]` entries.
//!
//! Each device gives one entry for its main stream (its largest profile); its other streams
//! follow as commented-out entries named `<name>-sub`, `<name>-sub2`, …, to uncomment when
//! wanted. Names come from the ONVIF `name` scope, else the model, made valid for site.toml and
//! unique among themselves and the names already `taken`. URLs never carry credentials: the
//! user goes to `username`, the password to a `password_file` placeholder. A device that gave no
//! stream is a comment with the reason, never left out.

use std::collections::HashSet;

use super::device::Device;
use crate::config::validate::is_good_name;

/// Where the generated `password_file` placeholders point.
pub const PASSWORD_DIR: &str = "/etc/sited/cameras";
/// The longest base name, leaving room for `-sub9`.
const BASE: usize = 56;

/// Makes a valid camera name from free text: lowercase ASCII letters, digits, `-` and `_`.
pub fn camera_name(raw: &str) -> Option<String> {
    let mut out = String::new();
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= BASE {
            break;
        }
    }
    let out = out.trim_matches(['-', '_']).to_string();
    is_good_name(&out).then_some(out)
}

/// A TOML basic string.
fn quote(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A comment line's text: one line, no control characters.
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A stream URL without the user and password a device may have put in it.
pub fn without_credentials(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        _ => uri.to_string(),
    }
}

/// The base name of each device, valid and unique, avoiding `taken`.
pub fn names(devices: &[Device], taken: &[&str]) -> Vec<String> {
    let mut used: HashSet<String> = taken.iter().map(|s| s.to_string()).collect();
    devices
        .iter()
        .map(|d| {
            let base = [
                d.scopes.name.as_deref(),
                d.information.as_ref().map(|i| i.model.as_str()),
                d.scopes.hardware.as_deref(),
            ]
            .into_iter()
            .flatten()
            .find_map(camera_name)
            .unwrap_or_else(|| "camera".to_string());
            let last = match d.address {
                std::net::IpAddr::V4(a) => a.octets()[3].to_string(),
                std::net::IpAddr::V6(a) => format!("{:x}", a.segments()[7]),
            };
            let name = [base.clone(), format!("{base}-{last}")]
                .into_iter()
                .chain((2..).map(|n| format!("{base}-{last}-{n}")))
                .find(|n| !used.contains(n) && !used.contains(&format!("{n}-sub")))
                .unwrap_or(base);
            used.insert(name.clone());
            name
        })
        .collect()
}

/// One device with its name and its entries: what `--format json` and the API give.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Found {
    /// The device.
    #[serde(flatten)]
    pub device: Device,
    /// The name its main stream's entry has.
    pub name: String,
    /// Its `[[cameras]]` entries, or the comment that says why it has none.
    pub toml: String,
}

/// Names and renders each device.
pub fn found(devices: &[Device], taken: &[&str], username: Option<&str>) -> Vec<Found> {
    devices
        .iter()
        .zip(names(devices, taken))
        .map(|(device, name)| Found {
            toml: entry(device, &name, username),
            device: device.clone(),
            name,
        })
        .collect()
}

/// The entries of one device.
pub fn entry(device: &Device, name: &str, username: Option<&str>) -> String {
    let mut out = String::new();
    let what = match &device.information {
        Some(i) => format!("{} {}, firmware {}", i.manufacturer, i.model, i.firmware),
        None => device
            .scopes
            .hardware
            .clone()
            .unwrap_or_else(|| "unknown device".into()),
    };
    let label = device.scopes.name.as_deref().unwrap_or(name);
    out.push_str(&comment(&format!(
        "# {label}: {what}, at {} ({})",
        device.address, device.endpoint
    )));
    out.push('\n');
    if let Some(problem) = &device.problem {
        out.push_str(&comment(&format!("# not usable: {problem}")));
        out.push('\n');
        return out;
    }
    let password_file = format!("{PASSWORD_DIR}/{name}.password");
    for (i, profile) in device.profiles.iter().enumerate() {
        let Some(uri) = &profile.uri else { continue };
        let (entry_name, prefix) = match i {
            0 => (name.to_string(), ""),
            1 => (format!("{name}-sub"), "# "),
            n => (format!("{name}-sub{n}"), "# "),
        };
        let fps = profile
            .fps
            .map(|f| format!(" at {f} fps"))
            .unwrap_or_default();
        let stream = if i == 0 {
            "main stream"
        } else {
            "sub stream, uncomment to ingest it too"
        };
        out.push_str(&comment(&format!(
            "# {stream}: {} {}x{}{fps} (profile {})",
            profile.encoding, profile.width, profile.height, profile.name
        )));
        out.push('\n');
        let mut lines = vec![
            "[[cameras]]".to_string(),
            format!("name = {}", quote(&entry_name)),
            format!("url = {}", quote(&without_credentials(uri))),
        ];
        match username {
            Some(user) => {
                lines.push(format!("username = {}", quote(user)));
                lines.push(format!(
                    "password_file = {}  # put the password in this file",
                    quote(&password_file)
                ));
            }
            None if i == 0 => lines.push(format!(
                "# username = \"…\" and password_file = {} if the stream needs them",
                quote(&password_file)
            )),
            None => {}
        }
        if let Some(port) = device.onvif_port {
            lines.push(format!("onvif_port = {port}"));
        }
        for line in lines {
            out.push_str(prefix);
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onvif::device::Problem;
    use crate::onvif::discovery::Scopes;
    use crate::onvif::soap::{DeviceInformation, Profile};

    fn lobby() -> Device {
        let profile = |token: &str, w, h, uri: &str| Profile {
            token: token.into(),
            name: format!("{token}Stream"),
            encoding: "H264".into(),
            width: w,
            height: h,
            fps: Some(25),
            uri: Some(uri.into()),
        };
        Device {
            address: "192.0.2.17".parse().unwrap(),
            endpoint: "urn:uuid:1".into(),
            xaddr: Some("http://192.0.2.17:8080/onvif/device_service".into()),
            onvif_port: Some(8080),
            scopes: Scopes {
                name: Some("Lobby Cam \"East\"".into()),
                ..Scopes::default()
            },
            information: Some(DeviceInformation {
                manufacturer: "Acme".into(),
                model: "X1".into(),
                firmware: "1.0\nevil = true".into(),
                serial: "s".into(),
            }),
            profiles: vec![
                profile("main", 1920, 1080, "rtsp://root:pw@192.0.2.17/main"),
                profile("sub", 640, 360, "rtsp://192.0.2.17/sub"),
            ],
            problem: None,
        }
    }

    #[test]
    fn names_are_valid_and_unique() {
        assert_eq!(
            camera_name("Lobby Cam \"East\"").as_deref(),
            Some("lobby-cam-east")
        );
        assert_eq!(camera_name("  --Ünïcode__").as_deref(), Some("n-code"));
        assert_eq!(camera_name("!!!"), None);
        assert_eq!(camera_name(&"x".repeat(200)).unwrap().len(), BASE);
        let mut twin = lobby();
        twin.address = "192.0.2.18".parse().unwrap();
        let mut nameless = lobby();
        nameless.scopes.name = Some("***".into());
        nameless.information = None;
        let got = names(&[lobby(), twin, nameless], &["lobby-cam-east"]);
        assert_eq!(got, ["lobby-cam-east-17", "lobby-cam-east-18", "camera"]);
    }

    #[test]
    fn an_entry_is_valid_toml_without_credentials_in_urls() {
        let text = entry(&lobby(), "lobby", Some("admin"));
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        let cameras = parsed["cameras"].as_array().unwrap();
        assert_eq!(cameras.len(), 1, "the sub stream is commented out:\n{text}");
        let c = cameras[0].as_table().unwrap();
        assert_eq!(c["name"].as_str(), Some("lobby"));
        assert_eq!(c["url"].as_str(), Some("rtsp://192.0.2.17/main"));
        assert_eq!(c["username"].as_str(), Some("admin"));
        assert_eq!(
            c["password_file"].as_str(),
            Some("/etc/sited/cameras/lobby.password")
        );
        assert_eq!(c["onvif_port"].as_integer(), Some(8080));
        assert!(text.contains("# name = \"lobby-sub\""), "{text}");
        assert!(text.contains("H264 1920x1080 at 25 fps"));
        assert!(
            !text.contains("\nevil"),
            "a newline in a device field cannot make TOML:\n{text}"
        );
        let sub: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.starts_with(['[', 'n', 'u', 'p', 'o']) && !l.starts_with("not"))
            .collect::<Vec<_>>()
            .join("\n");
        let sub: toml::Table = toml::from_str(&sub).unwrap();
        assert_eq!(sub["cameras"][0]["name"].as_str(), Some("lobby-sub"));
    }

    #[test]
    fn a_device_without_stream_is_a_comment_with_its_reason() {
        let mut d = lobby();
        d.profiles.clear();
        d.problem = Some(Problem::Credentials("Sender not Authorized".into()));
        let text = entry(&d, "lobby", None);
        assert!(toml::from_str::<toml::Table>(&text).unwrap().is_empty());
        assert!(
            text.contains("# not usable: refused the credentials (Sender not Authorized)"),
            "{text}"
        );
    }
}
