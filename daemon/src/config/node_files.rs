//! The files one node reads at run time, checked on that node before it applies a version:
//! the password files of the cameras it ingests, the TLS files, and (on a media node) the
//! mobile devices' key files.
//!
//! `sited validate --on-node` checks every such file of the whole site; a node checks only its
//! own, because the application node rolls one file out to nodes that each hold the secrets of
//! their own cameras. A file missing here makes the version one this node cannot apply (issue
//! 12's version skew): it keeps its last good file and reports these diagnostics.

use std::path::Path;

use toml::de::DeTable;

use super::locate::{Locator, Seg};
use super::validate::missing_file;
use super::{Diagnostic, Site};
use crate::catalog::Roles;

/// The diagnostics of the run-time files that `node` of the valid `site` (checked from `text`)
/// cannot read, in file order.
pub fn missing(text: &str, site: &Site, node: &str) -> Vec<Diagnostic> {
    let (doc, _) = DeTable::parse_recoverable(text);
    let at = Locator::new(&doc);
    let mut found = Vec::new();
    let mut check =
        |file: &Path, path: &[Seg<'_>]| found.extend(missing_file(file, at.value(path)));
    if let Some(tls) = &site.tls {
        check(
            &tls.certificate,
            &[Seg::Key("tls"), Seg::Key("certificate")],
        );
        check(&tls.key, &[Seg::Key("tls"), Seg::Key("key")]);
    }
    // A valid site keeps every `[[cameras]]` and `[[mobile_devices]]` entry, in file order.
    for (i, camera) in site.cameras.iter().enumerate() {
        if camera.node == node
            && let Some(file) = &camera.password_file
        {
            check(
                file,
                &[
                    Seg::Key("cameras"),
                    Seg::Index(i),
                    Seg::Key("password_file"),
                ],
            );
        }
    }
    let media = site
        .nodes
        .iter()
        .any(|n| n.name == node && n.roles.meets(Roles::MEDIA));
    if media {
        for (i, device) in site.devices.iter().enumerate() {
            check(
                &device.key_file,
                &[
                    Seg::Key("mobile_devices"),
                    Seg::Index(i),
                    Seg::Key("key_file"),
                ],
            );
        }
    }
    found.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_checks_only_the_files_it_reads() {
        let dir = std::env::temp_dir().join(format!("sited-node-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let here = dir.join("here.pw");
        std::fs::write(&here, "pw").unwrap();
        let gone = dir.join("gone.pw");
        let text = format!(
            "[site]\nname = \"s\"\nlayout = \"novavms\"\n\n[[nodes]]\nname = \"app\"\naddress = \"192.0.2.1\"\nroles = [\"application\"]\n\n[[nodes]]\nname = \"m1\"\naddress = \"192.0.2.2\"\nroles = [\"media\"]\n\n[[nodes]]\nname = \"m2\"\naddress = \"192.0.2.3\"\nroles = [\"media\"]\n\n[[cameras]]\nname = \"a\"\nurl = \"rtsp://198.51.100.1/s\"\nusername = \"u\"\npassword_file = \"{}\"\nnode = \"m1\"\n\n[[cameras]]\nname = \"b\"\nurl = \"rtsp://198.51.100.2/s\"\nusername = \"u\"\npassword_file = \"{}\"\nnode = \"m2\"\n",
            here.display(),
            gone.display()
        );
        let site = super::super::check(&text, Default::default(), &[])
            .site
            .unwrap();
        assert!(
            missing(&text, &site, "app").is_empty(),
            "no camera of its own"
        );
        assert!(missing(&text, &site, "m1").is_empty(), "its file is there");
        let m2 = missing(&text, &site, "m2");
        assert_eq!(m2.len(), 1, "{m2:?}");
        assert_eq!(m2[0].code, super::super::Code::MissingFile);
        assert!(m2[0].message.contains("gone.pw"), "{}", m2[0].message);
        let span = m2[0].span.clone().unwrap();
        assert_eq!(&text[span], format!("\"{}\"", gone.display()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
