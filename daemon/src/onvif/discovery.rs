//! WS-Discovery as ONVIF uses it: the Probe sent to 239.255.255.250:3702, and the ProbeMatches
//! devices answer with (WS-Discovery 2005/04, SOAP 1.2 over UDP).
//!
//! Pure: a message id in, bytes out; bytes in, [`ProbeMatch`]es out. A datagram is parsed within
//! [`DATAGRAM`] bounds and yields at most [`MATCHES_PER_DATAGRAM`] matches, each with at most
//! [`SCOPES`] scopes and [`XADDRS`] addresses, so one datagram costs the same whatever it holds.

use super::xml::{self, Bounds, Element, Refusal};

/// The WS-Discovery multicast group and port.
pub const MULTICAST: std::net::SocketAddrV4 =
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(239, 255, 255, 250), PORT);
/// The WS-Discovery port.
pub const PORT: u16 = 3702;
/// The bounds of one ProbeMatches datagram: a real one is 1 to 4 KiB, 6 levels deep.
pub const DATAGRAM: Bounds = Bounds {
    bytes: 16 * 1024,
    depth: 12,
    elements: 256,
};
/// The most matches taken from one datagram.
pub const MATCHES_PER_DATAGRAM: usize = 8;
/// The most scopes kept from one match.
pub const SCOPES: usize = 32;
/// The most service addresses kept from one match.
pub const XADDRS: usize = 4;
/// The longest scope, address or endpoint kept (longer ones are dropped).
pub const FIELD: usize = 512;

/// A Probe for ONVIF video transmitters, with `message_id` (`urn:uuid:…`) as its MessageID.
pub fn probe(message_id: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope""#,
            r#" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing""#,
            r#" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery""#,
            r#" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">"#,
            r#"<s:Header>"#,
            r#"<a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>"#,
            r#"<a:MessageID>{}</a:MessageID>"#,
            r#"<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>"#,
            r#"<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>"#,
            r#"</s:Header>"#,
            r#"<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>"#,
            r#"</s:Envelope>"#,
        ),
        super::soap::escape(message_id)
    )
}

/// A fresh `urn:uuid:` (random, version 4) for a Probe's MessageID.
pub fn message_id() -> Result<String, crate::base::error::Error> {
    let mut b = crate::base::random::bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = crate::base::hex::encode(&b);
    Ok(format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// One device's answer to a Probe.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProbeMatch {
    /// The device's endpoint reference, usually `urn:uuid:…`: the same across reboots and
    /// address changes.
    pub endpoint: String,
    /// The device's service addresses (`http://ADDRESS[:PORT]/onvif/device_service`).
    pub xaddrs: Vec<String>,
    /// What the device says about itself.
    pub scopes: Scopes,
}

/// The ONVIF scopes of a device (`onvif://www.onvif.org/<category>/<value>`), percent-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Scopes {
    /// `name/…`: the name an installer gave the device, if any.
    pub name: Option<String>,
    /// `hardware/…`: the model.
    pub hardware: Option<String>,
    /// `location/…`, joined with `/` when there are several.
    pub location: Option<String>,
}

impl Scopes {
    /// Reads the whitespace-separated scope URIs of a ProbeMatch.
    pub fn parse(text: &str) -> Scopes {
        let mut scopes = Scopes::default();
        let mut locations = Vec::new();
        for scope in text.split_whitespace().take(SCOPES) {
            let Some(rest) = scope.strip_prefix("onvif://www.onvif.org/") else {
                continue;
            };
            let Some((category, value)) = rest.split_once('/') else {
                continue;
            };
            let value = percent_decode(value);
            if value.is_empty() || value.len() > FIELD {
                continue;
            }
            match category.to_ascii_lowercase().as_str() {
                "name" => scopes.name = scopes.name.or(Some(value)),
                "hardware" => scopes.hardware = scopes.hardware.or(Some(value)),
                "location" => locations.push(value),
                _ => {}
            }
        }
        if !locations.is_empty() {
            scopes.location = Some(locations.join("/"));
        }
        scopes
    }
}

/// Decodes `%XX` escapes; invalid escapes and bytes are kept as they are (lossily).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one ProbeMatches datagram: at most [`MATCHES_PER_DATAGRAM`] matches with an endpoint.
pub fn parse_matches(datagram: &[u8]) -> Result<Vec<ProbeMatch>, Refusal> {
    let root = xml::parse(datagram, DATAGRAM)?;
    if root.name != "Envelope" {
        return Err(Refusal::Malformed(format!(
            "a <{}> is not a SOAP envelope",
            root.name
        )));
    }
    let Some(matches) = root.at(&["Body", "ProbeMatches"]) else {
        return Ok(Vec::new());
    };
    Ok(matches
        .children
        .iter()
        .filter(|m| m.name == "ProbeMatch")
        .take(MATCHES_PER_DATAGRAM)
        .filter_map(read_match)
        .collect())
}

fn read_match(m: &Element) -> Option<ProbeMatch> {
    let endpoint = m.text_at(&["EndpointReference", "Address"]);
    if endpoint.is_empty() || endpoint.len() > FIELD {
        return None;
    }
    let xaddrs = m
        .text_at(&["XAddrs"])
        .split_whitespace()
        .filter(|x| x.len() <= FIELD && (x.starts_with("http://") || x.starts_with("https://")))
        .take(XADDRS)
        .map(str::to_string)
        .collect();
    Some(ProbeMatch {
        endpoint: endpoint.to_string(),
        xaddrs,
        scopes: Scopes::parse(m.text_at(&["Scopes"])),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ProbeMatches datagram as a Hikvision-style device sends it.
    pub const MATCH: &str = include_str!("fixtures/probe_match.xml");

    #[test]
    fn a_probe_is_well_formed_and_carries_its_id() {
        let id = message_id().unwrap();
        assert_eq!(id.len(), "urn:uuid:".len() + 36);
        assert_ne!(id, message_id().unwrap());
        let root = xml::parse(probe(&id).as_bytes(), DATAGRAM).unwrap();
        assert_eq!(root.text_at(&["Header", "MessageID"]), id);
        assert_eq!(
            root.text_at(&["Body", "Probe", "Types"]),
            "dn:NetworkVideoTransmitter"
        );
    }

    #[test]
    fn reads_a_probe_match() {
        let found = parse_matches(MATCH.as_bytes()).unwrap();
        assert_eq!(
            found,
            vec![ProbeMatch {
                endpoint: "urn:uuid:4d454930-0000-1000-8000-bcbac2a1b2c3".into(),
                xaddrs: vec!["http://192.0.2.17/onvif/device_service".into()],
                scopes: Scopes {
                    name: Some("Lobby Cam".into()),
                    hardware: Some("DS-2CD2143G0-I".into()),
                    location: Some("building/east".into()),
                },
            }]
        );
    }

    #[test]
    fn scopes_are_decoded_and_bounded() {
        let s = Scopes::parse(
            "onvif://www.onvif.org/name/A%20b%zz onvif://www.onvif.org/name/second \
             http://example/name/x onvif://www.onvif.org/type/video_encoder",
        );
        assert_eq!(s.name.as_deref(), Some("A b%zz"));
        assert_eq!(s.hardware, None);
        let many = "onvif://www.onvif.org/location/x ".repeat(1000);
        assert_eq!(Scopes::parse(&many).location.unwrap().len(), SCOPES * 2 - 1);
    }

    #[test]
    fn a_datagram_yields_a_bounded_number_of_matches() {
        let one = MATCH
            .split_once("<d:ProbeMatch>")
            .and_then(|(_, r)| r.split_once("</d:ProbeMatch>"))
            .unwrap()
            .0;
        let many = MATCH.replace(
            &format!("<d:ProbeMatch>{one}</d:ProbeMatch>"),
            &format!("<d:ProbeMatch>{one}</d:ProbeMatch>").repeat(20),
        );
        assert_eq!(
            parse_matches(many.as_bytes()).unwrap().len(),
            MATCHES_PER_DATAGRAM
        );
    }

    #[test]
    fn hostile_datagrams_are_refused() {
        let deep = format!(
            "<s:Envelope xmlns:s=\"x\">{}{}</s:Envelope>",
            "<a>".repeat(5000),
            "</a>".repeat(5000)
        );
        assert!(parse_matches(deep.as_bytes()).is_err());
        assert!(parse_matches(&vec![b'<'; 65_000]).is_err());
        assert!(parse_matches(b"<html/>").is_err());
        assert_eq!(parse_matches(b"<Envelope><Body/></Envelope>"), Ok(vec![]));
        let no_endpoint = MATCH.replace("urn:uuid:4d454930-0000-1000-8000-bcbac2a1b2c3", "");
        assert_eq!(parse_matches(no_endpoint.as_bytes()), Ok(vec![]));
    }
}
