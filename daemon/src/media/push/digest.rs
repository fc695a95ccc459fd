//! HTTP Digest authentication (RFC 2617, without `qop`) for cameras that push: the challenge
//! sent, and the check of the answer. MD5, because RTSP clients (cameras, ffmpeg) know no other.

use md5::{Digest as _, Md5};

/// The realm of every challenge.
pub const REALM: &str = "sited";

fn md5_hex(text: &str) -> String {
    crate::base::hex::encode(&Md5::digest(text.as_bytes()))
}

/// The `WWW-Authenticate` value for a nonce.
pub fn challenge(nonce: &str) -> String {
    format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=MD5")
}

/// The parameters of an `Authorization: Digest …` header, unquoted (at most 32).
fn parameters(header: &str) -> Option<Vec<(String, String)>> {
    let mut rest = header.trim().strip_prefix("Digest")?;
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',', '\t']);
        if rest.is_empty() {
            return Some(out);
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_ascii_lowercase();
        let after = &rest[eq + 1..];
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim(), &after[end..])
            }
        };
        out.push((key, value.to_string()));
        if out.len() > 32 {
            return None;
        }
        rest = remaining;
    }
}

/// Whether `header` answers the challenge of `nonce` for `method` with `username`/`password`.
pub fn verify(header: &str, method: &str, nonce: &str, username: &str, password: &str) -> bool {
    let Some(params) = parameters(header) else {
        return false;
    };
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let (Some(user), Some(their_nonce), Some(uri), Some(response)) =
        (get("username"), get("nonce"), get("uri"), get("response"))
    else {
        return false;
    };
    if get("qop").is_some() || get("realm") != Some(REALM) {
        return false;
    }
    let ha1 = md5_hex(&format!("{username}:{REALM}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let expected = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
    let same = |a: &str, b: &str| {
        a.len() == b.len()
            && a.bytes()
                .zip(b.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0
    };
    // Every comparison is made, so the time taken says nothing about which one failed.
    let user_ok = same(user, username);
    let nonce_ok = same(their_nonce, nonce);
    let response_ok = same(&response.to_ascii_lowercase(), &expected);
    user_ok & nonce_ok & response_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5's example, without qop: computed with Python's hashlib.
    #[test]
    fn accepts_the_right_answer_only() {
        let nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c0";
        let ha1 = md5_hex("cam:sited:s3cret");
        let ha2 = md5_hex("ANNOUNCE:rtsp://192.0.2.1:554/lobby");
        let response = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
        let header = format!(
            "Digest username=\"cam\", realm=\"sited\", nonce=\"{nonce}\", uri=\"rtsp://192.0.2.1:554/lobby\", response=\"{response}\""
        );
        assert!(verify(&header, "ANNOUNCE", nonce, "cam", "s3cret"));
        assert!(!verify(&header, "ANNOUNCE", nonce, "cam", "wrong"));
        assert!(!verify(&header, "ANNOUNCE", nonce, "other", "s3cret"));
        assert!(!verify(&header, "RECORD", nonce, "cam", "s3cret"));
        assert!(!verify(
            &header,
            "ANNOUNCE",
            "another-nonce",
            "cam",
            "s3cret"
        ));
        assert!(!verify(
            &header.replace("realm=\"sited\"", "realm=\"x\""),
            "ANNOUNCE",
            nonce,
            "cam",
            "s3cret"
        ));
        assert!(!verify(
            "Basic Y2FtOnMzY3JldA==",
            "ANNOUNCE",
            nonce,
            "cam",
            "s3cret"
        ));
        assert!(!verify(
            "Digest username=\"cam\", nonce=",
            "ANNOUNCE",
            nonce,
            "cam",
            "s3cret"
        ));
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert!(challenge(nonce).contains(nonce));
    }

    #[test]
    fn reads_unquoted_and_oddly_spaced_parameters() {
        let p = parameters("Digest username=cam,realm=\"sited\" , algorithm=MD5, nonce=\"a,b\"")
            .unwrap();
        let keys: Vec<_> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            keys,
            ["username=cam", "realm=sited", "algorithm=MD5", "nonce=a,b"]
        );
    }
}
