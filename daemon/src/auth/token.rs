//! Site tokens: sessions and API tokens that every node of a site accepts, because each one
//! carries its own proof.
//!
//! A site token is `s1.<claims>.<mac>` (both parts base64url without padding). The claims are
//! the token's id (16 random bytes, what a revocation names), its expiry (Unix seconds), the
//! user's role, a fingerprint of the password hash the user logged in with, and the user's
//! name. The MAC is HMAC-SHA256 over the claims with a key derived (HKDF-SHA256, its own label)
//! from the per-site secret, which every node of the site holds. So a token issued by the
//! application node is checked on a media node without asking anyone, and a token made with
//! another site's secret, or altered in any byte, fails the MAC; the MAC is checked in constant
//! time (`ring::hmac::verify`) before anything of the claims is read.
//!
//! A token proves only that the site issued it: [`super::Auth::lookup`] still requires the
//! user to exist in the site file in force with the same role and password, and the id not to
//! be revoked ([`super::revoked`]).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::{hkdf, hmac};

use crate::base::{Error, Kind, random};
use crate::config::site::UserRole;

/// What every site token starts with; local random tokens (64 hex digits) never do.
pub const PREFIX: &str = "s1.";

/// The HKDF label of the token key: no other key of the site secret uses it.
const LABEL: &[u8] = b"sited site token v1";

/// Bytes of a token's id.
pub const ID: usize = 16;

/// The longest user name a token carries (longer claims are refused before any MAC).
const MAX_CLAIMS: usize = ID + 8 + 1 + 16 + 256;

/// The key that signs and checks site tokens, derived from the per-site secret.
#[derive(Clone)]
pub struct TokenKey(hmac::Key);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(…)")
    }
}

struct Len;

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        32
    }
}

impl TokenKey {
    /// The token key of a site secret's bytes.
    pub fn derive(secret: &[u8]) -> Result<TokenKey, Error> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(secret);
        let okm = prk
            .expand(&[LABEL], Len)
            .map_err(|_| Error::new(Kind::Internal, "HKDF"))?;
        let mut key = [0u8; 32];
        okm.fill(&mut key)
            .map_err(|_| Error::new(Kind::Internal, "HKDF"))?;
        Ok(TokenKey(hmac::Key::new(hmac::HMAC_SHA256, &key)))
    }
}

/// What a site token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Its id, what a revocation names.
    pub id: [u8; ID],
    /// When it expires, Unix seconds.
    pub expires: u64,
    /// The user's role when it was issued.
    pub role: UserRole,
    /// The fingerprint of the password hash the user logged in with.
    pub credential: [u8; 16],
    /// The user's name.
    pub name: String,
}

impl Claims {
    /// New claims with a random id.
    pub fn new(
        name: &str,
        role: UserRole,
        credential: [u8; 16],
        expires: u64,
    ) -> Result<Claims, Error> {
        Ok(Claims {
            id: random::bytes()?,
            expires,
            role,
            credential,
            name: name.to_string(),
        })
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ID + 8 + 1 + 16 + self.name.len());
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.expires.to_be_bytes());
        out.push(match self.role {
            UserRole::Admin => 0,
            UserRole::Viewer => 1,
        });
        out.extend_from_slice(&self.credential);
        out.extend_from_slice(self.name.as_bytes());
        out
    }

    fn from_bytes(b: &[u8]) -> Option<Claims> {
        let (id, rest) = b.split_first_chunk::<ID>()?;
        let (expires, rest) = rest.split_first_chunk::<8>()?;
        let (role, rest) = rest.split_first()?;
        let (credential, name) = rest.split_first_chunk::<16>()?;
        Some(Claims {
            id: *id,
            expires: u64::from_be_bytes(*expires),
            role: match role {
                0 => UserRole::Admin,
                1 => UserRole::Viewer,
                _ => return None,
            },
            credential: *credential,
            name: String::from_utf8(name.to_vec()).ok()?,
        })
    }
}

/// The token of `claims`, signed with `key`.
pub fn sign(key: &TokenKey, claims: &Claims) -> String {
    let body = claims.to_bytes();
    let mac = hmac::sign(&key.0, &body);
    format!("{PREFIX}{}.{}", B64.encode(&body), B64.encode(mac.as_ref()))
}

/// Why a site token is refused (the log says which; the client only sees a 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not a site token at all.
    Malformed,
    /// Its MAC does not check out: forged, altered, or from another site.
    Forged,
    /// Past its expiry.
    Expired,
}

/// The claims of a site token, if `key` signed it and it has not expired at `now` (Unix s).
pub fn verify(key: &TokenKey, token: &str, now: u64) -> Result<Claims, Invalid> {
    let rest = token.strip_prefix(PREFIX).ok_or(Invalid::Malformed)?;
    let (body, mac) = rest.split_once('.').ok_or(Invalid::Malformed)?;
    if body.len() > MAX_CLAIMS.div_ceil(3) * 4 || mac.len() > 64 {
        return Err(Invalid::Malformed);
    }
    let body = B64.decode(body).map_err(|_| Invalid::Malformed)?;
    let mac = B64.decode(mac).map_err(|_| Invalid::Malformed)?;
    hmac::verify(&key.0, &body, &mac).map_err(|_| Invalid::Forged)?;
    let claims = Claims::from_bytes(&body).ok_or(Invalid::Malformed)?;
    if claims.expires <= now {
        return Err(Invalid::Expired);
    }
    Ok(claims)
}

/// The Unix time now, in seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(expires: u64) -> Claims {
        Claims::new("ann", UserRole::Viewer, [7; 16], expires).unwrap()
    }

    #[test]
    fn a_token_checks_out_with_its_site_key_until_it_expires() {
        let key = TokenKey::derive(&[1; 32]).unwrap();
        let c = claims(1000);
        let token = sign(&key, &c);
        assert!(token.starts_with(PREFIX));
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "safe in a URL query and a cookie: {token}"
        );
        assert_eq!(verify(&key, &token, 999), Ok(c));
        assert_eq!(verify(&key, &token, 1000), Err(Invalid::Expired));
    }

    #[test]
    fn forged_altered_and_other_site_tokens_are_refused() {
        let key = TokenKey::derive(&[1; 32]).unwrap();
        let other = TokenKey::derive(&[2; 32]).unwrap();
        let token = sign(&key, &claims(1000));
        assert_eq!(
            verify(&other, &token, 0),
            Err(Invalid::Forged),
            "another site"
        );
        // Promoting oneself: the same claims with another role, the old MAC.
        let (head, mac) = token.rsplit_once('.').unwrap();
        let mut body = B64.decode(head.strip_prefix(PREFIX).unwrap()).unwrap();
        body[ID + 8] = 0;
        let promoted = format!("{PREFIX}{}.{mac}", B64.encode(&body));
        assert_eq!(verify(&key, &promoted, 0), Err(Invalid::Forged));
        // Made up from scratch, without the key.
        let forged = format!("{PREFIX}{}.{}", B64.encode(&body), B64.encode([0u8; 32]));
        assert_eq!(verify(&key, &forged, 0), Err(Invalid::Forged));
        for junk in [
            "",
            "s1.",
            "s1.x",
            "s1.!!.!!",
            &"ab".repeat(32),
            &"s1.a".repeat(200),
        ] {
            assert_eq!(verify(&key, junk, 0), Err(Invalid::Malformed), "{junk}");
        }
    }

    #[test]
    fn the_token_key_is_not_the_secret_itself() {
        // The key is HKDF'd with its own label: a MAC made with the raw secret does not pass.
        let secret = [9u8; 32];
        let raw = TokenKey(hmac::Key::new(hmac::HMAC_SHA256, &secret));
        let token = sign(&raw, &claims(1000));
        let key = TokenKey::derive(&secret).unwrap();
        assert_eq!(verify(&key, &token, 0), Err(Invalid::Forged));
    }
}
