//! Checking `[[cameras]]`: URLs, names, and which media node ingests each camera.
//!
//! A camera without `node` is assigned by rendezvous hashing: each media node scores
//! `fnv1a(camera name + "/" + node name)`, and the highest score wins. The choice depends only on
//! the names, so it is the same on every machine and in every version, and adding a media node
//! moves only the cameras that the new node wins (about 1/n of them).

use std::collections::HashMap;
use std::path::PathBuf;

use super::diagnostic::{Code, Diagnostic, did_you_mean, quoted_list};
use super::file::CameraEntry;
use super::locate::{Locator, Seg};
use super::site::{Camera, Node};
use super::validate::{Options, is_good_name, missing_file};
use crate::catalog::Layout;

/// Checks every camera; returns those that are valid, assigned to their node.
pub fn check_all(
    entries: &[CameraEntry],
    nodes: &[Node],
    layout: Layout,
    at: &Locator<'_, '_>,
    found: &mut Vec<Diagnostic>,
    options: Options,
) -> Vec<Camera> {
    let media: Vec<&Node> = nodes.iter().filter(|n| n.roles.media).collect();
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut cameras = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = |key| [Seg::Key("cameras"), Seg::Index(i), Seg::Key(key)];
        if !is_good_name(&entry.name) {
            found.push(
                Diagnostic::error(Code::BadName, at.value(&path("name")), format!("camera name \"{}\" cannot be used", entry.name))
                    .help("use 1 to 63 letters, digits, `-` and `_`, starting with a letter or digit: it is the stream's name in every URL"),
            );
        }
        if let Some(first) = names.insert(&entry.name, i) {
            found.push(
                Diagnostic::error(
                    Code::DuplicateCamera,
                    at.value(&path("name")),
                    format!("two cameras are named \"{}\"", entry.name),
                )
                .related(
                    at.value(&[Seg::Key("cameras"), Seg::Index(first), Seg::Key("name")]),
                    "first named here",
                )
                .help("give every camera its own name"),
            );
        }
        let url = if entry.push {
            check_push(entry, layout, at.value(&path("push")), found).then(|| (String::new(), 0))
        } else {
            check_url(
                entry,
                at.value(&path("url")),
                at.value(&[Seg::Key("cameras"), Seg::Index(i)]),
                found,
            )
        };
        let node = assign(entry, nodes, &media, at, &path, found);
        if options.on_node
            && let Some(file) = &entry.password_file
        {
            found.extend(missing_file(
                file.as_ref(),
                at.value(&path("password_file")),
            ));
        }
        if let (Some((host, port)), Some(node)) = (url, node) {
            cameras.push(Camera {
                name: entry.name.clone(),
                url: entry.url.clone().unwrap_or_default(),
                push: entry.push,
                host,
                port,
                username: entry.username.clone(),
                password_file: entry.password_file.as_ref().map(PathBuf::from),
                node,
                onvif_port: entry.onvif_port.map(|p| p.0),
                record: entry.record,
                transport: entry.transport,
                keep_days: entry.keep_days,
                max_bytes: entry.max_bytes,
            });
        }
    }
    cameras
}

/// Whether a pushing camera is complete: no `url`, its credentials, a layout with a push port.
fn check_push(
    entry: &CameraEntry,
    layout: Layout,
    span: Option<std::ops::Range<usize>>,
    found: &mut Vec<Diagnostic>,
) -> bool {
    let mut bad = |message: String, help: &str| {
        found.push(
            Diagnostic::error(Code::CameraPush, span.clone(), message).help(help.to_string()),
        );
        false
    };
    if !crate::catalog::rows(layout).any(|r| r.service == crate::catalog::Service::CameraPush) {
        return bad(
            format!(
                "camera \"{}\" pushes, but layout {layout} documents no port for cameras that push",
                entry.name
            ),
            "give it a `url` to pull instead; only NovaVMS documents RTSP from cameras (TCP 554)",
        );
    }
    if entry.url.is_some() {
        return bad(
            format!("camera \"{}\" pushes and also has a `url`", entry.name),
            "remove `url` (the camera pushes to rtsp://NODE:554/<name>), or remove `push = true` to pull it",
        );
    }
    if entry.username.is_none() || entry.password_file.is_none() {
        return bad(
            format!("camera \"{}\" pushes without credentials", entry.name),
            "give `username` and `password_file`: the camera logs in with them (HTTP Digest) before it may push",
        );
    }
    true
}

/// The host and port of a camera URL, or a diagnostic.
fn check_url(
    entry: &CameraEntry,
    span: Option<std::ops::Range<usize>>,
    entry_span: Option<std::ops::Range<usize>>,
    found: &mut Vec<Diagnostic>,
) -> Option<(String, u16)> {
    let bad = |code, message: String, help: &str| {
        Diagnostic::error(code, span.clone(), message).help(help.to_string())
    };
    let Some(url) = &entry.url else {
        found.push(
            Diagnostic::error(
                Code::MissingKey,
                entry_span,
                format!("camera \"{}\" has no `url`", entry.name),
            )
            .help("give the stream as `url = \"rtsp://host[:port]/path\"`, or `push = true` for a camera that pushes"),
        );
        return None;
    };
    let Ok(uri) = url.parse::<http::Uri>() else {
        found.push(bad(
            Code::CameraScheme,
            format!(
                "camera \"{}\" has URL \"{}\", which does not parse",
                entry.name, url
            ),
            "write it as rtsp://host[:port]/path",
        ));
        return None;
    };
    let default_port = match uri.scheme_str() {
        Some("rtsp") => 554,
        Some("rtsps") => 322,
        other => {
            let scheme = other.unwrap_or("");
            let help = if scheme.is_empty() {
                "start the URL with rtsp:// or rtsps://".to_string()
            } else {
                match did_you_mean(scheme, ["rtsp", "rtsps"]) {
                    Some(m) => format!(
                        "did you mean {m}://? sited pulls cameras over {}",
                        quoted_list(["rtsp", "rtsps"])
                    ),
                    None => "sited pulls cameras over rtsp:// or rtsps://".to_string(),
                }
            };
            found.push(bad(
                Code::CameraScheme,
                format!(
                    "camera \"{}\" has scheme \"{scheme}\"; only rtsp and rtsps are pulled",
                    entry.name
                ),
                &help,
            ));
            return None;
        }
    };
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        found.push(bad(
            Code::CameraCredentials,
            format!("camera \"{}\" has credentials in its URL", entry.name),
            "remove them from the URL, and give `username` and `password_file` instead, so the password never sits in site.toml",
        ));
        return None;
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Some((host, authority.port_u16().unwrap_or(default_port)))
}

/// The node that ingests a camera.
fn assign(
    entry: &CameraEntry,
    nodes: &[Node],
    media: &[&Node],
    at: &Locator<'_, '_>,
    path: &dyn Fn(&'static str) -> [Seg<'static>; 3],
    found: &mut Vec<Diagnostic>,
) -> Option<String> {
    if let Some(name) = &entry.node {
        let span = at.value(&path("node"));
        let Some(node) = nodes.iter().find(|n| &n.name == name) else {
            let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            let help = match did_you_mean(name, names.iter().copied()) {
                Some(m) => format!(
                    "did you mean \"{m}\"? The nodes are {}",
                    quoted_list(names.iter().copied())
                ),
                None => format!("the nodes are {}", quoted_list(names.iter().copied())),
            };
            found.push(
                Diagnostic::error(
                    Code::UnknownNode,
                    span,
                    format!(
                        "camera \"{}\" is on node \"{name}\", which is not in [[nodes]]",
                        entry.name
                    ),
                )
                .help(help),
            );
            return None;
        };
        if !node.roles.media {
            let media_names = quoted_list(media.iter().map(|n| n.name.as_str()));
            found.push(
                Diagnostic::error(
                    Code::NotMedia,
                    span,
                    format!(
                        "camera \"{}\" is on node \"{name}\", which has no media role",
                        entry.name
                    ),
                )
                .help(if media.is_empty() {
                    "give the node the media role: `roles = [\"application\", \"media\"]`"
                        .to_string()
                } else {
                    format!("put it on a media node: {media_names}")
                }),
            );
            return None;
        }
        return Some(node.name.clone());
    }
    if media.is_empty() {
        found.push(
            Diagnostic::error(Code::NotMedia, at.value(&path("name")), format!("camera \"{}\" has no media node to ingest it", entry.name))
                .help("give a node the media role: `roles = [\"application\", \"media\"]` on a single server"),
        );
        return None;
    }
    media
        .iter()
        .max_by_key(|n| (rendezvous(&entry.name, &n.name), n.name.as_str()))
        .map(|n| n.name.clone())
}

/// The rendezvous score of a camera on a node: 64-bit FNV-1a of `camera/node`, then the
/// MurmurHash3 finalizer, so that names differing only in their last characters still spread.
pub fn rendezvous(camera: &str, node: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in camera.bytes().chain([b'/']).chain(node.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINNED: u64 = 15_950_440_043_498_378_607;

    #[test]
    fn rendezvous_is_stable_and_spreads() {
        // A fixed value: changing the hash would move cameras on every site that upgrades.
        assert_eq!(rendezvous("lobby", "media-1"), PINNED);
        assert_ne!(
            rendezvous("lobby", "media-1"),
            rendezvous("lobby", "media-2")
        );
        let nodes = ["m1", "m2", "m3", "m4"];
        let mut counts = [0usize; 4];
        for c in 0..1000 {
            let cam = format!("cam-{c}");
            let (i, _) = nodes
                .iter()
                .enumerate()
                .max_by_key(|(_, n)| rendezvous(&cam, n))
                .unwrap();
            counts[i] += 1;
        }
        assert!(
            counts.iter().all(|&n| (150..350).contains(&n)),
            "{counts:?}"
        );
    }

    #[test]
    fn adding_a_node_moves_only_what_it_wins() {
        let before = ["m1", "m2", "m3"];
        let after = ["m1", "m2", "m3", "m4"];
        fn pick(nodes: &[&'static str], cam: &str) -> &'static str {
            nodes
                .iter()
                .copied()
                .max_by_key(|n| rendezvous(cam, n))
                .unwrap()
        }
        for c in 0..500 {
            let cam = format!("cam-{c}");
            let (b, a) = (pick(&before, &cam), pick(&after, &cam));
            assert!(a == b || a == "m4", "{cam} moved from {b} to {a}");
        }
    }
}
