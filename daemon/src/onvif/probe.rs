//! The UDP side of discovery: send the Probe, gather the ProbeMatches for a fixed window.
//!
//! Thin: the messages are [`super::discovery`]'s. The socket binds port 3702 when it is free (so
//! that answers to the multicast Probe arrive on the port the `onvif_discovery` catalog row opens
//! to the cameras zone), else any port. Bound to an interface's address, the multicast Probe
//! leaves by that interface. However many datagrams arrive, the work stops at the end of the
//! window, each datagram is parsed within [`super::discovery::DATAGRAM`], and at most
//! [`MAX_DEVICES`] distinct devices are kept, at most [`MAX_PER_ADDRESS`] from one address.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::discovery::{self, ProbeMatch};
use crate::base::Error;

/// The most distinct devices one scan keeps.
pub const MAX_DEVICES: usize = 256;
/// The most devices kept from one address: a recorder may show a few, a flood from one rogue
/// host cannot crowd out the real cameras.
pub const MAX_PER_ADDRESS: usize = 4;
/// The most addresses probed one by one (a /22).
pub const MAX_TARGETS: usize = 1024;
/// How often the multicast Probe is sent (UDP may lose one).
const REPEATS: usize = 2;

/// What to probe.
#[derive(Debug, Clone)]
pub struct Scan {
    /// The local address to send from: an interface's, or unspecified for the default route (also
    /// used when the address is not this host's).
    pub local: Ipv4Addr,
    /// Send the multicast Probe.
    pub multicast: bool,
    /// Addresses to probe one by one, on port 3702.
    pub unicast: Vec<IpAddr>,
    /// How long to gather answers.
    pub window: Duration,
}

/// What a scan heard.
#[derive(Debug, Default)]
pub struct Heard {
    /// The distinct devices, by endpoint, with the address each answered from.
    pub matches: Vec<(ProbeMatch, IpAddr)>,
    /// Datagrams received.
    pub datagrams: usize,
    /// Datagrams refused (too large, too deep, not XML, not a ProbeMatches).
    pub refused: usize,
    /// Whether devices past [`MAX_DEVICES`] were left out.
    pub truncated: bool,
}

/// The IPv4 address of a network interface, by name.
pub fn interface_address(name: &str) -> Option<Ipv4Addr> {
    nix::ifaddrs::getifaddrs()
        .ok()?
        .filter(|a| a.interface_name == name)
        .find_map(|a| a.address?.as_sockaddr_in().map(|s| s.ip()))
}

/// The addresses of an IPv4 network to probe one by one, or why not.
pub fn targets(network: ipnet::IpNet) -> Result<Vec<IpAddr>, Error> {
    let ipnet::IpNet::V4(net) = network else {
        crate::bail!(
            Invalid,
            "{network}: only IPv4 networks are probed one by one (ONVIF multicast is IPv4)"
        );
    };
    let hosts: Vec<IpAddr> = net.hosts().take(MAX_TARGETS + 1).map(IpAddr::V4).collect();
    if hosts.len() > MAX_TARGETS {
        crate::bail!(
            Invalid,
            "{network} has more than {MAX_TARGETS} addresses: give a /22 or smaller"
        );
    }
    Ok(hosts)
}

async fn bind(local: Ipv4Addr) -> std::io::Result<UdpSocket> {
    let mut last = None;
    // The given address when it is this host's, else any; port 3702 when free, else any.
    for address in [local, Ipv4Addr::UNSPECIFIED] {
        for port in [discovery::PORT, 0] {
            match UdpSocket::bind((address, port)).await {
                Ok(socket) => return Ok(socket),
                Err(e) => last = Some(e),
            }
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no socket")))
}

/// Sends the Probes and gathers the answers until the window closes.
pub async fn scan(scan: &Scan) -> std::io::Result<Heard> {
    let socket = bind(scan.local).await?;
    let id = discovery::message_id().map_err(std::io::Error::other)?;
    let probe = discovery::probe(&id);
    let deadline = tokio::time::Instant::now() + scan.window;
    let mut heard = Heard::default();
    let mut seen = HashSet::new();
    let mut sent_any = false;
    let mut last_error = None;
    for repeat in 0..REPEATS {
        if scan.multicast {
            match socket.send_to(probe.as_bytes(), discovery::MULTICAST).await {
                Ok(_) => sent_any = true,
                Err(e) => last_error = Some(e),
            }
        }
        if repeat == 0 {
            for address in scan.unicast.iter().take(MAX_TARGETS) {
                // A host that does not exist costs an ARP miss, never an error worth stopping for.
                if socket
                    .send_to(probe.as_bytes(), SocketAddr::new(*address, discovery::PORT))
                    .await
                    .is_ok()
                {
                    sent_any = true;
                }
            }
        }
        let gap = tokio::time::Instant::now() + Duration::from_millis(200);
        gather(&socket, gap.min(deadline), &mut heard, &mut seen).await;
    }
    if !sent_any && let Some(e) = last_error {
        return Err(e);
    }
    gather(&socket, deadline, &mut heard, &mut seen).await;
    Ok(heard)
}

async fn gather(
    socket: &UdpSocket,
    until: tokio::time::Instant,
    heard: &mut Heard,
    seen: &mut HashSet<String>,
) {
    let mut buffer = vec![0u8; 65_536];
    while let Ok(Ok((n, from))) =
        tokio::time::timeout_at(until, socket.recv_from(&mut buffer)).await
    {
        heard.datagrams += 1;
        let Ok(matches) = discovery::parse_matches(&buffer[..n]) else {
            heard.refused += 1;
            continue;
        };
        if matches.is_empty() {
            heard.refused += 1;
        }
        for found in matches {
            if seen.contains(&found.endpoint) {
                continue;
            }
            let from_here = heard
                .matches
                .iter()
                .filter(|(_, a)| *a == from.ip())
                .count();
            if heard.matches.len() >= MAX_DEVICES || from_here >= MAX_PER_ADDRESS {
                heard.truncated = true;
                continue;
            }
            seen.insert(found.endpoint.clone());
            heard.matches.push((found, from.ip()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_the_hosts_of_a_small_ipv4_network() {
        let hosts = targets("192.0.2.0/29".parse().unwrap()).unwrap();
        assert_eq!(hosts.first().unwrap().to_string(), "192.0.2.1");
        assert_eq!(hosts.len(), 6);
        assert_eq!(targets("192.0.2.7/32".parse().unwrap()).unwrap().len(), 1);
        assert_eq!(
            targets("198.51.100.0/22".parse().unwrap()).unwrap().len(),
            1022
        );
        assert!(
            targets("198.51.100.0/21".parse().unwrap())
                .unwrap_err()
                .to_string()
                .contains("/22")
        );
        assert!(targets("2001:db8::/120".parse().unwrap()).is_err());
        assert!(interface_address("lo").is_some_and(|a| a.is_loopback()));
        assert_eq!(interface_address("no-such-if0"), None);
    }
}
