//! Secrets kept out of what is shown of a site file: the source lines of a diagnostic are
//! logged (the journal) and printed, so the values of secret-bearing keys and the passwords of
//! URLs are masked there. Each masked character becomes `*`, so that a diagnostic's underline
//! still falls where it did.

/// Key names whose string values are secrets (matched within the key, case-insensitively); a
/// key ending in `_file` names where a secret is, not the secret, and is shown.
pub const SECRET_KEYS: [&str; 6] = ["password", "secret", "token", "key", "hash", "psk"];

/// One line of a site file with its secrets masked.
pub fn line(text: &str) -> String {
    let mut out: Vec<char> = text.chars().collect();
    mask_secret_value(text, &mut out);
    mask_url_passwords(&mut out);
    out.into_iter().collect()
}

/// `key = "value"` with a secret-bearing key: the value's characters.
fn mask_secret_value(text: &str, out: &mut [char]) {
    let Some((key, _)) = text.split_once('=') else {
        return;
    };
    let key = key.trim().trim_matches('"').to_ascii_lowercase();
    if key.ends_with("_file") || !SECRET_KEYS.iter().any(|k| key.contains(k)) {
        return;
    }
    let chars: Vec<char> = text.chars().collect();
    let Some(eq) = chars.iter().position(|c| *c == '=') else {
        return;
    };
    let Some(open) = chars[eq..].iter().position(|c| *c == '"').map(|i| eq + i) else {
        return;
    };
    let close = chars[open + 1..]
        .iter()
        .position(|c| *c == '"')
        .map_or(chars.len(), |i| open + 1 + i);
    for c in &mut out[open + 1..close] {
        *c = '*';
    }
}

/// `scheme://user:password@host`: the password's characters.
fn mask_url_passwords(out: &mut [char]) {
    let mut at = 0;
    while at + 3 <= out.len() {
        if out[at..at + 3] != [':', '/', '/'] {
            at += 1;
            continue;
        }
        let start = at + 3;
        let end = out[start..]
            .iter()
            .position(|c| matches!(c, '/' | '"' | '\'' | ' ' | '?' | '#'))
            .map_or(out.len(), |i| start + i);
        if let Some(userinfo_end) = out[start..end].iter().rposition(|c| *c == '@') {
            let userinfo = start..start + userinfo_end;
            if let Some(colon) = out[userinfo.clone()].iter().position(|c| *c == ':') {
                for c in &mut out[userinfo.start + colon + 1..userinfo.end] {
                    *c = '*';
                }
            }
        }
        at = end.max(start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_and_url_passwords_are_masked_in_place() {
        assert_eq!(
            line("password_hash = \"hunter2\""),
            "password_hash = \"*******\""
        );
        assert_eq!(
            line("url = \"rtsp://admin:hunter2@198.51.100.21/stream1\""),
            "url = \"rtsp://admin:*******@198.51.100.21/stream1\""
        );
        assert_eq!(
            line("stream_key = \"k3y\" # the phone"),
            "stream_key = \"***\" # the phone"
        );
        assert_eq!(
            line("a = \"rtsp://u:p@h\", b = \"http://x:y@z/\""),
            "a = \"rtsp://u:*@h\", b = \"http://x:*@z/\""
        );
        for kept in [
            "name = \"lobby\"",
            "url = \"rtsp://198.51.100.21/stream1\"",
            "url = \"rtsp://user@h/\"",
            "roles = [\"media\"]",
            "password_file = \"/etc/sited/secrets/lobby\"",
        ] {
            assert_eq!(line(kept), kept);
        }
    }
}
