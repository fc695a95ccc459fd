//! Restarting with backoff: the delays of supervised tasks (listeners, cameras, node links).

use std::time::Duration;

/// The longest wait between two attempts.
pub const CAP: Duration = Duration::from_secs(30);

/// The wait before attempt `n + 1` after `n` failures in a row: exponential from half a second,
/// capped at [`CAP`], with up to 25% random jitter so that many failing tasks do not retry in step.
pub fn backoff(failures: u32) -> Duration {
    let base = Duration::from_millis(500)
        .saturating_mul(1u32 << failures.min(10))
        .min(CAP);
    // Without randomness (a failed generator) the delay has no jitter; it stays a valid delay.
    let byte = super::random::bytes::<1>().unwrap_or_default();
    let jitter = base.mul_f64(f64::from(byte[0]) / 255.0 * 0.25);
    (base - jitter).min(CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= Duration::from_secs(1));
        assert!(backoff(1) >= Duration::from_millis(750));
        assert!(backoff(4) >= Duration::from_secs(6));
        for n in [6, 10, 31, u32::MAX] {
            assert!(backoff(n) <= CAP && backoff(n) >= CAP.mul_f64(0.75), "{n}");
        }
    }
}
