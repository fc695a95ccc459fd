//! The node link's messages and their framing: a 4-byte big-endian length, then the frame.
//! The three handshake messages travel in clear JSON (they carry only nonces and proofs);
//! every later frame is sealed ([`super::seal`]) JSON. A connection that becomes a channel
//! ([`super::channel`]) carries one sealed `attach` and then the channel's own binary frames.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::base::{Error, Kind};

/// The largest frame either side accepts: a site file with thousands of cameras fits.
pub const MAX_FRAME: usize = 4 << 20;

/// One message of the node link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Message {
    /// Media → app, first: who is dialling, and its nonce (hex).
    Hello {
        /// The media node's name in the site.
        node: String,
        /// Its nonce, hex.
        nonce: String,
    },
    /// App → media: the application node's nonce and proof (hex).
    Answer {
        /// Its nonce, hex.
        nonce: String,
        /// Its proof, hex.
        proof: String,
    },
    /// Media → app: the media node's proof (hex). The link is up after it.
    Proof {
        /// Its proof, hex.
        proof: String,
    },
    /// Media → app, sealed: what the media node runs, and which sited it is.
    Status {
        /// The SHA-256 of the site file it runs, if any.
        version: Option<String>,
        /// The sited version (`CARGO_PKG_VERSION`).
        sited: String,
    },
    /// App → media, sealed: the site file in force.
    Site {
        /// Its SHA-256, hex.
        sha256: String,
        /// The file.
        text: String,
    },
    /// Media → app, sealed: the outcome of applying a version.
    Report(Report),
    /// Either way, sealed: the site tokens revoked before their expiry, as the sender knows
    /// them; sent whole on link up and whenever the list grows.
    Revoked {
        /// The revocations.
        tokens: Vec<crate::auth::Revocation>,
    },
    /// Either way, sealed: the link is alive.
    Ping,
    /// App → media, sealed, on the control link: dial a new connection back and attach it as
    /// channel `id`, carrying `want`.
    Open {
        /// The channel's id: 32 random hex digits the application node waits on.
        id: String,
        /// What the channel carries.
        want: super::channel::Want,
    },
    /// Media → app, sealed: the live state of the cameras the media node ingests, by name (on
    /// change, and every [`super::link::PING`]).
    Cameras {
        /// Each camera's state, as its own `GET /api/v1/cameras` shows it.
        cameras: std::collections::BTreeMap<String, crate::media::ingest::CameraStatus>,
    },
    /// Media → app, sealed, first on a connection dialled for a channel: it is channel `id`.
    Attach {
        /// The id the application node sent in [`Message::Open`].
        id: String,
    },
}

/// What a media node says of a version it was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Report {
    /// The version, SHA-256 hex.
    pub sha256: String,
    /// `applied`, `unchanged`, `invalid` or `failed`.
    pub outcome: String,
    /// What changed, or why it failed.
    pub summary: String,
    /// The diagnostics, as `sited validate --format json` prints them.
    #[schemars(with = "serde_json::Value")]
    pub diagnostics: serde_json::Value,
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(io: &mut W, frame: &[u8]) -> Result<(), Error> {
    let len = u32::try_from(frame.len())
        .ok()
        .filter(|n| (*n as usize) <= MAX_FRAME)
        .ok_or_else(|| Error::new(Kind::ResourceExhausted, "a node link frame is too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(frame).await?;
    io.flush().await?;
    Ok(())
}

/// Reads one frame, refusing any longer than [`MAX_FRAME`].
pub async fn read_frame<R: AsyncRead + Unpin>(io: &mut R) -> Result<Vec<u8>, Error> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        crate::bail!(
            ResourceExhausted,
            "a node link frame of {len} bytes is too large"
        );
    }
    let mut frame = vec![0u8; len];
    io.read_exact(&mut frame).await?;
    Ok(frame)
}

/// A message as JSON bytes.
pub fn encode(m: &Message) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(m)
        .map_err(|e| Error::new(Kind::Internal, "encoding a node link message").with_source(e))
}

/// A message from JSON bytes.
pub fn decode(frame: &[u8]) -> Result<Message, Error> {
    serde_json::from_slice(frame)
        .map_err(|e| Error::new(Kind::Invalid, "a malformed node link message").with_source(e))
}

/// Hex to bytes of a fixed length.
pub fn unhex<const N: usize>(text: &str) -> Result<[u8; N], Error> {
    <[u8; N]>::try_from(unhex_vec(text)?)
        .map_err(|_| crate::err!(Invalid, "a node link field has the wrong length"))
}

/// Hex to bytes of any length (proofs).
pub fn unhex_vec(text: &str) -> Result<Vec<u8>, Error> {
    if text.len() > 256 {
        crate::bail!(Invalid, "a node link field has the wrong length");
    }
    crate::base::hex::decode(text)
        .ok_or_else(|| crate::err!(Invalid, "a node link field is not hex"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_ones_are_refused() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let m = Message::Site {
            sha256: "ab".into(),
            text: "[site]\n".into(),
        };
        write_frame(&mut a, &encode(&m).unwrap()).await.unwrap();
        assert_eq!(decode(&read_frame(&mut b).await.unwrap()).unwrap(), m);
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let e = read_frame(&mut b).await.unwrap_err();
        assert_eq!(e.kind(), Kind::ResourceExhausted);
        assert_eq!(unhex::<2>("0aff").unwrap(), [10, 255]);
        assert!(unhex::<2>("0afg").is_err());
    }
}
