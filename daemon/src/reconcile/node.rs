//! Which node of the site this machine is.
//!
//! In order: the `--node` flag; the first line of the node file (`/etc/sited/node` beside the
//! site file); the machine's host name, if a node has that name; the node whose address is one of
//! this machine's addresses.

use std::net::IpAddr;
use std::path::Path;

use crate::base::Error;
use crate::config::Site;

/// How the node was found, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// `--node`.
    Flag(String),
    /// The node file.
    File(String),
    /// The host name.
    Hostname(String),
    /// A local address.
    Address(String, IpAddr),
}

impl Found {
    /// The node's name.
    pub fn name(&self) -> &str {
        match self {
            Found::Flag(n) | Found::File(n) | Found::Hostname(n) | Found::Address(n, _) => n,
        }
    }
}

/// This machine's addresses.
pub fn local_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| a.address)
        .filter_map(|a| {
            a.as_sockaddr_in()
                .map(|s| IpAddr::V4(s.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
        })
        .collect()
}

/// Finds this node: the flag, the node file, the host name, then a local address.
pub fn find(
    site: &Site,
    flag: Option<&str>,
    node_file: &Path,
    hostname: Option<&str>,
    local: &[IpAddr],
) -> Result<Found, Error> {
    let names: Vec<&str> = site.nodes.iter().map(|n| n.name.as_str()).collect();
    let known = |n: &str| site.node(n).is_some();
    if let Some(n) = flag {
        return if known(n) {
            Ok(Found::Flag(n.to_string()))
        } else {
            Err(crate::err!(
                Invalid,
                "--node {n} is not a node of the site ({})",
                names.join(", ")
            ))
        };
    }
    if let Ok(text) = std::fs::read_to_string(node_file) {
        let n = text.lines().next().unwrap_or("").trim();
        if !n.is_empty() {
            return if known(n) {
                Ok(Found::File(n.to_string()))
            } else {
                Err(crate::err!(
                    Invalid,
                    "{} names node \"{n}\", which is not a node of the site ({})",
                    node_file.display(),
                    names.join(", ")
                ))
            };
        }
    }
    if let Some(h) = hostname.filter(|h| known(h)) {
        return Ok(Found::Hostname(h.to_string()));
    }
    if let Some(node) = site.nodes.iter().find(|n| local.contains(&n.address)) {
        return Ok(Found::Address(node.name.clone(), node.address));
    }
    Err(crate::err!(
        NotFound,
        "cannot tell which node this is: no --node, no {}, the host name is not a node name, and no node address ({}) is local",
        node_file.display(),
        site.nodes
            .iter()
            .map(|n| format!("{} {}", n.name, n.address))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        let text = "[site]\nname = \"s\"\nlayout = \"valt\"\n[[nodes]]\nname = \"app\"\naddress = \"192.0.2.1\"\nroles = [\"application\"]\n[[nodes]]\nname = \"m1\"\naddress = \"192.0.2.2\"\nroles = [\"media\"]\n";
        crate::plan::check(text, Default::default()).site.unwrap()
    }

    #[test]
    fn the_order_is_flag_file_hostname_address() {
        let s = site();
        let dir = std::env::temp_dir().join(format!("sited-node-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("node");
        let local = ["192.0.2.2".parse().unwrap()];
        assert_eq!(
            find(&s, None, &file, Some("app"), &local).unwrap(),
            Found::Hostname("app".into())
        );
        assert_eq!(
            find(&s, None, &file, Some("x"), &local).unwrap(),
            Found::Address("m1".into(), local[0])
        );
        std::fs::write(&file, "m1\n").unwrap();
        assert_eq!(
            find(&s, None, &file, Some("app"), &[]).unwrap(),
            Found::File("m1".into())
        );
        assert_eq!(
            find(&s, Some("app"), &file, None, &[]).unwrap(),
            Found::Flag("app".into())
        );
        assert!(
            find(&s, Some("nope"), &file, None, &[])
                .unwrap_err()
                .to_string()
                .contains("not a node")
        );
        std::fs::remove_file(&file).unwrap();
        assert!(
            find(&s, None, &file, Some("x"), &[])
                .unwrap_err()
                .to_string()
                .contains("cannot tell")
        );
    }
}
