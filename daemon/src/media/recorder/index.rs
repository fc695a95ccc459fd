//! What the recorder writes into the index besides plain columns: the keyframe blob, and where a
//! segment's file lives.
//!
//! A file is `<camera>/<yyyy>/<mm>/<dd>/<start-unix-ms>.mp4` under the recordings root, the
//! date being the segment's start in UTC. The name alone gives the camera and the start, so
//! recovery can adopt a file that has no row.

/// One keyframe of a segment: where its fragment starts and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyframe {
    /// Byte offset of its `moof` in the file.
    pub offset: u64,
    /// Its decode time (the fragment's `tfdt`): 90 kHz ticks from the segment's start.
    pub time: u64,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(data: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = data.split_first()?;
        *data = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Encodes keyframes (in file order) as varint deltas: about 4 bytes each.
pub fn encode(keyframes: &[Keyframe]) -> Vec<u8> {
    let mut out = Vec::with_capacity(keyframes.len() * 5);
    let (mut offset, mut time) = (0, 0);
    for k in keyframes {
        put_varint(&mut out, k.offset - offset);
        put_varint(&mut out, k.time.saturating_sub(time));
        (offset, time) = (k.offset, k.time.max(time));
    }
    out
}

/// Decodes [`encode`]'s blob; `None` if it is damaged.
pub fn decode(mut data: &[u8]) -> Option<Vec<Keyframe>> {
    let mut out = Vec::new();
    let (mut offset, mut time) = (0u64, 0u64);
    while !data.is_empty() {
        offset = offset.checked_add(get_varint(&mut data)?)?;
        time = time.checked_add(get_varint(&mut data)?)?;
        out.push(Keyframe { offset, time });
    }
    Some(out)
}

/// (year, month, day) of a day number since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The day number since 1970-01-01 of a date (H. Hinnant's `days_from_civil`).
pub fn days(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The file of a segment of `camera` starting at `start_ms`, relative to the recordings root.
pub fn path(camera: &str, start_ms: i64) -> String {
    let (y, m, d) = civil(start_ms.div_euclid(86_400_000));
    format!("{camera}/{y:04}/{m:02}/{d:02}/{start_ms}.mp4")
}

/// The camera and start of a file named by [`path`]; `None` for any other name.
pub fn parse_path(rel: &str) -> Option<(String, i64)> {
    let parts: Vec<&str> = rel.split('/').collect();
    let [camera, _, _, _, name] = parts.as_slice() else {
        return None;
    };
    let start_ms: i64 = name.strip_suffix(".mp4")?.parse().ok()?;
    (path(camera, start_ms) == rel).then(|| (camera.to_string(), start_ms))
}

/// Whether a camera name is safe as a directory name.
pub fn valid_camera(camera: &str) -> bool {
    !camera.is_empty()
        && camera
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframes_round_trip_in_a_few_bytes_each() {
        let ks: Vec<Keyframe> = (0..60)
            .map(|i| Keyframe {
                offset: 1000 + i * 250_000,
                time: i * 90_000,
            })
            .collect();
        let blob = encode(&ks);
        assert!(blob.len() <= 6 * ks.len(), "{}", blob.len());
        assert_eq!(decode(&blob).unwrap(), ks);
        assert_eq!(decode(&[0x80]), None);
    }

    #[test]
    fn paths_carry_the_utc_date_and_parse_back() {
        // 2024-02-29T23:59:59.999Z
        let p = path("door", 1_709_251_199_999);
        assert_eq!(p, "door/2024/02/29/1709251199999.mp4");
        assert_eq!(parse_path(&p), Some(("door".into(), 1_709_251_199_999)));
        assert_eq!(path("a", 0), "a/1970/01/01/0.mp4");
        assert_eq!(parse_path("door/2024/02/28/1709251199999.mp4"), None);
        assert_eq!(parse_path("door/x.mp4"), None);
        assert_eq!(days(2024, 2, 29), 1_709_251_199_999 / 86_400_000);
        assert_eq!(civil(days(1969, 12, 31)), (1969, 12, 31));
        assert!(valid_camera("door_1-a") && !valid_camera("../x") && !valid_camera(""));
    }
}
