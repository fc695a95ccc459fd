//! TURN REST credentials (draft-uberti-behave-turn-rest) and the long-term credential check.
//!
//! The username is `<expiry, Unix seconds>:<WHEP session id>`, the password the base64 of
//! HMAC-SHA1(node secret, username): the TURN server needs no list of users, and a credential
//! dies with its expiry. The nonce is stateless too: `<issue time, hex>-<HMAC prefix>`, stale
//! after [`NONCE_LIFETIME`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use md5::Digest as _;

use super::Settings;
use crate::media::stun::{self, Message};

/// How long a nonce is good for.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(600);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn hmac(secret: &[u8], text: &str) -> ring::hmac::Tag {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    ring::hmac::sign(&k, text.as_bytes())
}

/// The password of a username.
pub fn password(secret: &[u8], username: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac(secret, username).as_ref())
}

/// A username and password for `session`, good for `ttl`.
pub fn issue(secret: &[u8], session: &str, ttl: Duration) -> (String, String) {
    let username = format!("{}:{session}", now() + ttl.as_secs());
    let password = password(secret, &username);
    (username, password)
}

/// A fresh nonce.
pub fn nonce(secret: &[u8]) -> String {
    let t = format!("{:x}", now());
    let tag = hmac(secret, &t);
    let mac: String = tag.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{t}-{mac}")
}

fn nonce_fresh(secret: &[u8], nonce: &str) -> bool {
    let Some((t, _)) = nonce.split_once('-') else {
        return false;
    };
    let Ok(issued) = u64::from_str_radix(t, 16) else {
        return false;
    };
    let expected = {
        let tag = hmac(secret, t);
        let mac: String = tag.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{t}-{mac}")
    };
    expected == nonce && now().saturating_sub(issued) < NONCE_LIFETIME.as_secs()
}

/// The long-term credential key, MD5(username ":" realm ":" password) (RFC 8489 §9.2.2).
pub fn key(username: &str, realm: &str, password: &str) -> Vec<u8> {
    md5::Md5::digest(format!("{username}:{realm}:{password}").as_bytes()).to_vec()
}

/// Checks a request's credentials; the key to sign the answer with, or the error to send
/// (401 asks for credentials, 438 for a new nonce).
pub fn check(settings: &Settings, m: &Message<'_>) -> Result<Vec<u8>, (u16, &'static str)> {
    let unauthorized = (401, "Unauthorized");
    let (Some(username), Some(nonce), Some(_)) = (
        m.username(),
        m.get(stun::NONCE),
        m.get(stun::MESSAGE_INTEGRITY),
    ) else {
        return Err(unauthorized);
    };
    if !nonce_fresh(&settings.secret, std::str::from_utf8(nonce).unwrap_or("")) {
        return Err((438, "Stale Nonce"));
    }
    let expiry = username
        .split_once(':')
        .and_then(|(t, _)| t.parse::<u64>().ok())
        .ok_or(unauthorized)?;
    if expiry < now() {
        return Err(unauthorized);
    }
    let key = key(
        username,
        &settings.realm,
        &password(&settings.secret, username),
    );
    if !m.integrity_ok(&key) {
        return Err(unauthorized);
    }
    Ok(key)
}
