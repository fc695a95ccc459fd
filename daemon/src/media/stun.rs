//! STUN messages (RFC 8489), as far as the WebRTC demultiplexer and the TURN server need them.
//!
//! [`Message::parse`] reads a message without copying; [`Builder`] writes one, with
//! XOR-MAPPED-ADDRESS style addresses, MESSAGE-INTEGRITY (HMAC-SHA1 over the message so far)
//! and FINGERPRINT (CRC-32 xor `0x5354554e`). Parsing never panics on hostile input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The magic cookie of every RFC 5389+ message.
pub const MAGIC: u32 = 0x2112_a442;
/// The header's length.
pub const HEADER: usize = 20;

/// USERNAME.
pub const USERNAME: u16 = 0x0006;
/// MESSAGE-INTEGRITY.
pub const MESSAGE_INTEGRITY: u16 = 0x0008;
/// ERROR-CODE.
pub const ERROR_CODE: u16 = 0x0009;
/// CHANNEL-NUMBER (TURN).
pub const CHANNEL_NUMBER: u16 = 0x000c;
/// LIFETIME (TURN).
pub const LIFETIME: u16 = 0x000d;
/// XOR-PEER-ADDRESS (TURN).
pub const XOR_PEER_ADDRESS: u16 = 0x0012;
/// DATA (TURN).
pub const DATA: u16 = 0x0013;
/// REALM.
pub const REALM: u16 = 0x0014;
/// NONCE.
pub const NONCE: u16 = 0x0015;
/// XOR-RELAYED-ADDRESS (TURN).
pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
/// REQUESTED-TRANSPORT (TURN).
pub const REQUESTED_TRANSPORT: u16 = 0x0019;
/// XOR-MAPPED-ADDRESS.
pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// SOFTWARE.
pub const SOFTWARE: u16 = 0x8022;
/// FINGERPRINT.
pub const FINGERPRINT: u16 = 0x8028;

/// A request's class bits in the message type.
pub const REQUEST: u16 = 0x0000;
/// An indication's class bits.
pub const INDICATION: u16 = 0x0010;
/// A success response's class bits.
pub const SUCCESS: u16 = 0x0100;
/// An error response's class bits.
pub const ERROR: u16 = 0x0110;

/// A parsed message, borrowing the datagram.
#[derive(Debug)]
pub struct Message<'a> {
    /// The method (the type without its class bits).
    pub method: u16,
    /// The class bits.
    pub class: u16,
    /// The transaction ID.
    pub transaction: [u8; 12],
    /// The attributes, in order, with the offset where each starts.
    pub attributes: Vec<(u16, &'a [u8], usize)>,
    raw: &'a [u8],
}

impl<'a> Message<'a> {
    /// Parses a datagram; `None` if it is not one well-formed STUN message.
    pub fn parse(raw: &'a [u8]) -> Option<Message<'a>> {
        if raw.len() < HEADER || raw[0] & 0xc0 != 0 {
            return None;
        }
        let kind = u16::from_be_bytes([raw[0], raw[1]]);
        let len = usize::from(u16::from_be_bytes([raw[2], raw[3]]));
        if u32::from_be_bytes(raw[4..8].try_into().ok()?) != MAGIC || HEADER + len != raw.len() {
            return None;
        }
        let mut attributes = Vec::new();
        let mut at = HEADER;
        while at + 4 <= raw.len() {
            let t = u16::from_be_bytes([raw[at], raw[at + 1]]);
            let l = usize::from(u16::from_be_bytes([raw[at + 2], raw[at + 3]]));
            let value = raw.get(at + 4..at + 4 + l)?;
            attributes.push((t, value, at));
            at += 4 + l.div_ceil(4) * 4;
        }
        Some(Message {
            method: kind & !0x0110,
            class: kind & 0x0110,
            transaction: raw[8..20].try_into().ok()?,
            attributes,
            raw,
        })
    }

    /// The first attribute of a type.
    pub fn get(&self, t: u16) -> Option<&'a [u8]> {
        self.attributes
            .iter()
            .find(|(k, _, _)| *k == t)
            .map(|(_, v, _)| *v)
    }

    /// The USERNAME, as text.
    pub fn username(&self) -> Option<&'a str> {
        std::str::from_utf8(self.get(USERNAME)?).ok()
    }

    /// An XOR-encoded address attribute.
    pub fn xor_address(&self, t: u16) -> Option<SocketAddr> {
        let v = self.get(t)?;
        let port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]) ^ (MAGIC >> 16) as u16;
        let ip = match v.first().zip(v.get(1))?.1 {
            1 => {
                let x = u32::from_be_bytes(v.get(4..8)?.try_into().ok()?) ^ MAGIC;
                IpAddr::V4(Ipv4Addr::from(x))
            }
            2 => {
                let mut b: [u8; 16] = v.get(4..20)?.try_into().ok()?;
                for (i, k) in self.mask().iter().enumerate() {
                    b[i] ^= k;
                }
                IpAddr::V6(Ipv6Addr::from(b))
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    }

    fn mask(&self) -> [u8; 16] {
        let mut m = [0u8; 16];
        m[..4].copy_from_slice(&MAGIC.to_be_bytes());
        m[4..].copy_from_slice(&self.transaction);
        m
    }

    /// Whether MESSAGE-INTEGRITY is present and right for `key` (RFC 8489 §14.5: the HMAC covers
    /// the message up to the attribute, with the length as if it ended after it).
    pub fn integrity_ok(&self, key: &[u8]) -> bool {
        let Some((_, value, at)) = self
            .attributes
            .iter()
            .find(|(t, _, _)| *t == MESSAGE_INTEGRITY)
        else {
            return false;
        };
        if value.len() != 20 {
            return false;
        }
        let mut head = self.raw[..*at].to_vec();
        let len = (*at + 24 - HEADER) as u16;
        head[2..4].copy_from_slice(&len.to_be_bytes());
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
        ring::hmac::verify(&k, &head, value).is_ok()
    }
}

/// The USERNAME of a datagram, if it is a STUN message that has one.
pub fn username(raw: &[u8]) -> Option<&str> {
    Message::parse(raw)?.username()
}

/// Writes one message.
pub struct Builder {
    buf: Vec<u8>,
    transaction: [u8; 12],
}

impl Builder {
    /// A message of a method and class, answering (or starting) a transaction.
    pub fn new(method: u16, class: u16, transaction: [u8; 12]) -> Builder {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&(method | class).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC.to_be_bytes());
        buf.extend_from_slice(&transaction);
        Builder { buf, transaction }
    }

    fn set_len(&mut self) {
        let len = (self.buf.len() - HEADER) as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
    }

    /// Appends an attribute, padded to 4 bytes.
    pub fn attribute(mut self, t: u16, value: &[u8]) -> Builder {
        self.buf.extend_from_slice(&t.to_be_bytes());
        self.buf
            .extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(value);
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
        self.set_len();
        self
    }

    /// Appends an XOR-encoded address.
    pub fn xor_address(self, t: u16, addr: SocketAddr) -> Builder {
        let mut v = vec![0u8, 0];
        v.extend_from_slice(&(addr.port() ^ (MAGIC >> 16) as u16).to_be_bytes());
        match addr.ip().to_canonical() {
            IpAddr::V4(ip) => {
                v[1] = 1;
                v.extend_from_slice(&(u32::from(ip) ^ MAGIC).to_be_bytes());
            }
            IpAddr::V6(ip) => {
                v[1] = 2;
                let mut mask = [0u8; 16];
                mask[..4].copy_from_slice(&MAGIC.to_be_bytes());
                mask[4..].copy_from_slice(&self.transaction);
                v.extend(ip.octets().iter().zip(mask).map(|(a, b)| a ^ b));
            }
        }
        self.attribute(t, &v)
    }

    /// Appends ERROR-CODE.
    pub fn error(self, code: u16, reason: &str) -> Builder {
        let mut v = vec![0u8, 0, (code / 100) as u8, (code % 100) as u8];
        v.extend_from_slice(reason.as_bytes());
        self.attribute(ERROR_CODE, &v)
    }

    /// Appends MESSAGE-INTEGRITY for `key`.
    pub fn integrity(mut self, key: &[u8]) -> Builder {
        let len = (self.buf.len() + 24 - HEADER) as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
        let tag = ring::hmac::sign(&k, &self.buf);
        self.attribute(MESSAGE_INTEGRITY, tag.as_ref())
    }

    /// Appends FINGERPRINT and returns the datagram.
    pub fn fingerprint(mut self) -> Vec<u8> {
        let len = (self.buf.len() + 8 - HEADER) as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&self.buf) ^ 0x5354_554e;
        self.attribute(FINGERPRINT, &crc.to_be_bytes()).buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_message_parses_back_with_its_integrity() {
        let tx = [7u8; 12];
        let peer: SocketAddr = "192.0.2.1:8555".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:3478".parse().unwrap();
        let raw = Builder::new(0x0001, REQUEST, tx)
            .attribute(USERNAME, b"abc:def")
            .xor_address(XOR_PEER_ADDRESS, peer)
            .xor_address(XOR_MAPPED_ADDRESS, v6)
            .integrity(b"key")
            .fingerprint();
        let m = Message::parse(&raw).unwrap();
        assert_eq!((m.method, m.class, m.transaction), (1, REQUEST, tx));
        assert_eq!(m.username(), Some("abc:def"));
        assert_eq!(m.xor_address(XOR_PEER_ADDRESS), Some(peer));
        assert_eq!(m.xor_address(XOR_MAPPED_ADDRESS), Some(v6));
        assert!(m.integrity_ok(b"key"));
        assert!(!m.integrity_ok(b"other"));
        assert_eq!(username(&raw), Some("abc:def"));
    }

    #[test]
    fn hostile_input_is_not_a_message() {
        assert!(Message::parse(&[0u8; 19]).is_none());
        let mut raw = Builder::new(1, REQUEST, [0; 12])
            .attribute(USERNAME, b"x")
            .fingerprint();
        raw[23] = 200; // an attribute longer than the message
        assert!(Message::parse(&raw).is_none());
        assert!(username(&[0x80, 0, 0, 0]).is_none(), "RTP is not STUN");
    }
}
