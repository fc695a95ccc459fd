//! Random bytes from the operating system, for tokens, nonces, session ids and jitter.
//!
//! Every caller gets an error when the system's generator fails, never zeroes: a token made of
//! zeroes would be guessable.

use ring::rand::{SecureRandom as _, SystemRandom};

use super::error::{Error, Kind};

/// Fills `out` with random bytes.
pub fn fill(out: &mut [u8]) -> Result<(), Error> {
    SystemRandom::new()
        .fill(out)
        .map_err(|_| Error::new(Kind::Internal, "the system's random generator failed"))
}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}

/// A random token: 32 bytes as 64 lowercase hex digits.
pub fn token() -> Result<String, Error> {
    Ok(super::hex::encode(&bytes::<32>()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_differ_and_are_hex() {
        let (a, b) = (super::token().unwrap(), super::token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
