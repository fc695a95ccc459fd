//! The node link's security: mutual authentication from the per-site secret, then every frame
//! sealed (ChaCha20-Poly1305) with keys that only the two ends of this one connection know.
//!
//! The handshake, over whatever transport carries the link (plain TCP, or TLS whose
//! certificate nobody checks: the secret, not a certificate, is the trust):
//!
//! ```text
//! media → app   hello   { node, nonce_m }                          (32 random bytes)
//! app   → media answer  { nonce_a, proof_a = HMAC(K, "app"   ‖ node ‖ nonce_m ‖ nonce_a) }
//! media → app   proof   { proof_m = HMAC(K, "media" ‖ node ‖ nonce_m ‖ nonce_a) }
//! keys: HKDF-SHA256(K, salt = nonce_m ‖ nonce_a, info = "sited link media→app" / "app→media")
//! ```
//!
//! The media node checks the application node's proof before it sends its own, so a peer
//! without the secret learns nothing it could replay; fresh nonces on both sides make every
//! session's keys new. Each direction numbers its frames, and the number is the AEAD nonce, so
//! a frame replayed, dropped or reordered fails to open and ends the link.

use ring::{aead, hkdf, hmac};

use crate::base::{Error, Kind, random};

/// Bytes the seal adds to a frame (the AEAD tag).
pub const TAG: usize = 16;

/// Bytes in a nonce of the handshake.
pub const NONCE: usize = 32;

/// The per-site secret: 32 bytes, shared by every node of the site.
#[derive(Clone)]
pub struct Secret([u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A new random secret.
    pub fn generate() -> Result<Secret, Error> {
        Ok(Secret(random::bytes()?))
    }

    /// The secret as a file holds it: 64 hex digits and a newline.
    pub fn to_file_text(&self) -> String {
        format!("{}\n", crate::base::hex::encode(&self.0))
    }

    /// Reads a secret file's text: 64 hex digits, white space around them ignored.
    pub fn parse(text: &str) -> Result<Secret, Error> {
        crate::base::hex::decode(text.trim())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(Secret)
            .ok_or_else(|| {
                crate::err!(
                    Invalid,
                    "a site secret is 64 hex digits (`sited secret` makes one)"
                )
            })
    }

    /// The key of the site's tokens (`auth::token`): HKDF of the secret with its own label.
    pub fn token_key(&self) -> Result<crate::auth::TokenKey, Error> {
        crate::auth::TokenKey::derive(&self.0)
    }

    fn proof(&self, side: &str, node: &str, media: &[u8; NONCE], app: &[u8; NONCE]) -> Vec<u8> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut ctx = hmac::Context::with_key(&key);
        for part in [side.as_bytes(), b"\0", node.as_bytes(), b"\0", media, app] {
            ctx.update(part);
        }
        ctx.sign().as_ref().to_vec()
    }

    fn verify(
        &self,
        side: &str,
        node: &str,
        media: &[u8; NONCE],
        app: &[u8; NONCE],
        proof: &[u8],
    ) -> Result<(), Error> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut msg = Vec::new();
        for part in [side.as_bytes(), b"\0", node.as_bytes(), b"\0", media, app] {
            msg.extend_from_slice(part);
        }
        hmac::verify(&key, &msg, proof).map_err(|_| {
            Error::new(
                Kind::Unauthenticated,
                format!("the {side} side of the node link does not hold this site's secret"),
            )
        })
    }
}

/// Which end of the link this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The application node, which accepts links.
    App,
    /// A media node, which dials out.
    Media,
}

/// The media node's first step: its nonce.
pub fn media_nonce() -> Result<[u8; NONCE], Error> {
    random::bytes()
}

/// The application node's answer to a hello: its nonce and its proof.
pub fn answer(
    secret: &Secret,
    node: &str,
    media: &[u8; NONCE],
) -> Result<([u8; NONCE], Vec<u8>), Error> {
    let app: [u8; NONCE] = random::bytes()?;
    Ok((app, secret.proof("app", node, media, &app)))
}

/// The media node checks the application node's proof and makes its own.
pub fn prove_media(
    secret: &Secret,
    node: &str,
    media: &[u8; NONCE],
    app: &[u8; NONCE],
    app_proof: &[u8],
) -> Result<Vec<u8>, Error> {
    secret.verify("app", node, media, app, app_proof)?;
    Ok(secret.proof("media", node, media, app))
}

/// The application node checks the media node's proof.
pub fn check_media(
    secret: &Secret,
    node: &str,
    media: &[u8; NONCE],
    app: &[u8; NONCE],
    proof: &[u8],
) -> Result<(), Error> {
    secret.verify("media", node, media, app, proof)
}

/// One direction's key and frame counter.
struct Direction {
    key: aead::LessSafeKey,
    next: u64,
}

impl Direction {
    fn nonce(&mut self) -> Result<aead::Nonce, Error> {
        let n = self.next;
        self.next = n.checked_add(1).ok_or_else(|| {
            Error::new(
                Kind::ResourceExhausted,
                "the node link used up its frame numbers",
            )
        })?;
        let mut bytes = [0u8; 12];
        bytes[4..].copy_from_slice(&n.to_be_bytes());
        Ok(aead::Nonce::assume_unique_for_key(bytes))
    }
}

/// The sealing state of one established link.
pub struct Sealed {
    send: Direction,
    receive: Direction,
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn direction(secret: &Secret, salt: &[u8], info: &str) -> Result<Direction, Error> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&secret.0);
    let info = [info.as_bytes()];
    let okm = prk
        .expand(&info, Len(32))
        .map_err(|_| Error::new(Kind::Internal, "HKDF"))?;
    let mut key = [0u8; 32];
    okm.fill(&mut key)
        .map_err(|_| Error::new(Kind::Internal, "HKDF"))?;
    let unbound = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &key)
        .map_err(|_| Error::new(Kind::Internal, "AEAD key"))?;
    Ok(Direction {
        key: aead::LessSafeKey::new(unbound),
        next: 0,
    })
}

impl Sealed {
    /// The keys of a link whose handshake used these nonces, for `side`.
    pub fn new(
        secret: &Secret,
        side: Side,
        media: &[u8; NONCE],
        app: &[u8; NONCE],
    ) -> Result<Sealed, Error> {
        let mut salt = media.to_vec();
        salt.extend_from_slice(app);
        let to_app = direction(secret, &salt, "sited link media→app")?;
        let to_media = direction(secret, &salt, "sited link app→media")?;
        Ok(match side {
            Side::Media => Sealed {
                send: to_app,
                receive: to_media,
            },
            Side::App => Sealed {
                send: to_media,
                receive: to_app,
            },
        })
    }

    /// Seals the next frame to send.
    pub fn seal(&mut self, plain: &[u8]) -> Result<Vec<u8>, Error> {
        seal_in_place(&mut self.send, plain.to_vec())
    }

    /// Opens the next frame received; any change, replay or reordering fails.
    pub fn open(&mut self, sealed: Vec<u8>) -> Result<Vec<u8>, Error> {
        open_in_place(&mut self.receive, sealed)
    }

    /// The two directions apart, for a reader and a writer that run on their own.
    pub fn split(self) -> (Sealer, Opener) {
        (Sealer(self.send), Opener(self.receive))
    }
}

/// The sending direction of a link, apart from the receiving one.
pub struct Sealer(Direction);

impl Sealer {
    /// Seals the next frame to send, in place (the tag is appended).
    pub fn seal(&mut self, plain: Vec<u8>) -> Result<Vec<u8>, Error> {
        seal_in_place(&mut self.0, plain)
    }
}

/// The receiving direction of a link, apart from the sending one.
pub struct Opener(Direction);

impl Opener {
    /// Opens the next frame received; any change, replay or reordering fails.
    pub fn open(&mut self, sealed: Vec<u8>) -> Result<Vec<u8>, Error> {
        open_in_place(&mut self.0, sealed)
    }
}

fn seal_in_place(d: &mut Direction, mut out: Vec<u8>) -> Result<Vec<u8>, Error> {
    let nonce = d.nonce()?;
    d.key
        .seal_in_place_append_tag(nonce, aead::Aad::empty(), &mut out)
        .map_err(|_| Error::new(Kind::Internal, "sealing a node link frame"))?;
    Ok(out)
}

fn open_in_place(d: &mut Direction, mut sealed: Vec<u8>) -> Result<Vec<u8>, Error> {
    let nonce = d.nonce()?;
    let plain = d
        .key
        .open_in_place(nonce, aead::Aad::empty(), &mut sealed)
        .map_err(|_| {
            Error::new(
                Kind::Unauthenticated,
                "a node link frame failed to open: altered, replayed or not from this site",
            )
        })?;
    let n = plain.len();
    sealed.truncate(n);
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake(media_secret: &Secret, app_secret: &Secret) -> Result<(Sealed, Sealed), Error> {
        let m = media_nonce()?;
        let (a, app_proof) = answer(app_secret, "media-1", &m)?;
        let proof = prove_media(media_secret, "media-1", &m, &a, &app_proof)?;
        check_media(app_secret, "media-1", &m, &a, &proof)?;
        Ok((
            Sealed::new(media_secret, Side::Media, &m, &a)?,
            Sealed::new(app_secret, Side::App, &m, &a)?,
        ))
    }

    #[test]
    fn both_ends_with_the_secret_talk_both_ways() {
        let k = Secret::generate().unwrap();
        let (mut media, mut app) = handshake(&k, &k).unwrap();
        for i in 0..3 {
            let text = format!("version {i}");
            let frame = app.seal(text.as_bytes()).unwrap();
            assert_eq!(media.open(frame).unwrap(), text.as_bytes());
            let back = media.seal(b"applied").unwrap();
            assert_eq!(app.open(back).unwrap(), b"applied");
        }
    }

    #[test]
    fn a_peer_without_the_secret_is_refused_on_either_side() {
        let (k, other) = (Secret::generate().unwrap(), Secret::generate().unwrap());
        // A fake application node (or a man in the middle with a TLS certificate of its own):
        // the media node refuses it before proving anything.
        let e = handshake(&k, &other).err().unwrap();
        assert_eq!(e.kind(), Kind::Unauthenticated);
        assert!(e.to_string().contains("app side"), "{e}");
        // A media node without the secret cannot make the application node's proof check out.
        let m = media_nonce().unwrap();
        let (a, _) = answer(&k, "media-1", &m).unwrap();
        let forged = other.proof("media", "media-1", &m, &a);
        assert!(check_media(&k, "media-1", &m, &a, &forged).is_err());
        // Nor can it reuse a proof made for another node name.
        let real = k.proof("media", "media-2", &m, &a);
        assert!(check_media(&k, "media-1", &m, &a, &real).is_err());
    }

    #[test]
    fn altered_replayed_or_reordered_frames_fail() {
        let k = Secret::generate().unwrap();
        let (mut media, mut app) = handshake(&k, &k).unwrap();
        let mut frame = app.seal(b"site").unwrap();
        frame[0] ^= 1;
        assert!(media.open(frame).is_err());
        let (mut media, mut app) = handshake(&k, &k).unwrap();
        let first = app.seal(b"one").unwrap();
        let second = app.seal(b"two").unwrap();
        assert!(media.open(second).is_err(), "out of order");
        let (mut media, mut app) = handshake(&k, &k).unwrap();
        let first_again = first.clone();
        let _ = app.seal(b"x").unwrap();
        assert!(media.open(first_again).is_err(), "from another session");
    }

    #[test]
    fn secrets_round_trip_through_their_file_and_bad_ones_are_refused() {
        let k = Secret::generate().unwrap();
        let back = Secret::parse(&k.to_file_text()).unwrap();
        assert_eq!(back.0, k.0);
        assert!(Secret::parse("abc").is_err());
        assert!(Secret::parse(&"zz".repeat(32)).is_err());
        assert_eq!(format!("{k:?}"), "Secret(…)");
    }
}
