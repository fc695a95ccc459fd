//! The HTTP `Range` header (RFC 9110 §14) of a download: one byte range of a body whose length
//! is known, checked before anything is read or computed from it.
//!
//! [`parse`] gives the range to send, `None` for the whole body (no header, several ranges, or a
//! form this server ignores, as RFC 9110 allows), or [`Unsatisfiable`] (a 416). Every bound is
//! clamped to the body, with no arithmetic that a header can overflow: `bytes=0-18446744073709551615`
//! is the whole body, not `0-0`.

use std::ops::Range;

/// Why a Range header cannot be served: a 416.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Parses a `Range` header for a body of `len` bytes: `Ok(None)` when the whole body is to be
/// sent, `Ok(Some(range))` for one non-empty range within it, `Err` for a 416.
pub fn parse(header: Option<&str>, len: u64) -> Result<Option<Range<u64>>, Unsatisfiable> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    // Digits past u64 are a last byte beyond any body: the same as the body's last byte.
    let number = |s: &str| s.parse::<u64>().unwrap_or(u64::MAX);
    let range = match (digits(a), digits(b)) {
        (true, true) if number(a) <= number(b) => number(a)..number(b).saturating_add(1).min(len),
        (true, false) if b.is_empty() => number(a)..len,
        (false, true) if a.is_empty() && number(b) > 0 => len.saturating_sub(number(b))..len,
        _ => return Ok(None),
    };
    if range.start >= len {
        return Err(Unsatisfiable);
    }
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_range_within_the_body() {
        assert_eq!(parse(Some("bytes=100-"), 1000), Ok(Some(100..1000)));
        assert_eq!(parse(Some("bytes=-10"), 1000), Ok(Some(990..1000)));
        assert_eq!(parse(Some("bytes=-5000"), 1000), Ok(Some(0..1000)));
        assert_eq!(parse(Some("bytes=0-0"), 5), Ok(Some(0..1)));
        assert_eq!(parse(Some("bytes=2-99"), 5), Ok(Some(2..5)));
        assert_eq!(parse(Some(" bytes= 1 - 2 "), 5), Ok(Some(1..3)));
    }

    /// Issue 16 §3: `bytes=0-18446744073709551615` was answered 206 `bytes 0-0/7695022`.
    #[test]
    fn bounds_past_u64_are_the_end_of_the_body() {
        assert_eq!(
            parse(Some("bytes=0-18446744073709551615"), 7_695_022),
            Ok(Some(0..7_695_022))
        );
        assert_eq!(
            parse(Some("bytes=0-99999999999999999999999"), 10),
            Ok(Some(0..10))
        );
        assert_eq!(
            parse(Some("bytes=18446744073709551615-"), 10),
            Err(Unsatisfiable)
        );
        assert_eq!(
            parse(Some("bytes=-18446744073709551615"), 10),
            Ok(Some(0..10))
        );
    }

    #[test]
    fn what_is_not_one_satisfiable_range() {
        assert_eq!(parse(Some("bytes=1000-"), 1000), Err(Unsatisfiable));
        assert_eq!(parse(Some("bytes=5-7"), 0), Err(Unsatisfiable));
        for ignored in [
            "bytes=0-1,5-6",
            "bytes=5-2",
            "bytes=-0",
            "bytes=-",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=a-b",
            "items=0-1",
            "bytes=0",
        ] {
            assert_eq!(parse(Some(ignored), 1000), Ok(None), "{ignored}");
        }
        assert_eq!(parse(None, 1000), Ok(None));
    }
}
