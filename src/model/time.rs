//! Timestamps as Fleet writes them: RFC 3339 UTC, second precision for agent fields
//! (`2006-01-02T15:04:05Z`), nanoseconds where the agent sent them. Parsing accepts any RFC 3339
//! offset and fraction. Pure functions over `SystemTime`; the caller supplies `now`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2026-11-22T19:54:00Z`.
pub fn rfc3339_seconds(t: SystemTime) -> String {
    let full = crate::logging::rfc3339_millis(t);
    // "YYYY-MM-DDTHH:MM:SS.mmmZ" → drop ".mmm"
    match full.split_once('.') {
        Some((head, _)) => format!("{head}Z"),
        None => full,
    }
}

/// Parses RFC 3339 (`Z` or `±HH:MM`, optional fraction) into a `SystemTime`.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u64> { s.get(from..to)?.parse().ok() };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = s.get(19..)?;
    let mut nanos: u64 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let kept = &frac[..digits.min(9)];
        nanos = kept.parse::<u64>().ok()? * 10u64.pow(9 - kept.len() as u32);
        rest = &frac[digits..];
    }
    let offset_secs: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            if rest.len() != 6 || rest.as_bytes().get(3) != Some(&b':') {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(year, month, day)?;
    let secs =
        days.checked_mul(86_400)? + (hour * 3600 + minute * 60 + second) as i64 - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos as u32))
}

fn days_from_civil(y: u64, m: u64, d: u64) -> Option<i64> {
    let y = i64::try_from(y).ok()? - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_precision_format() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_377_240_123);
        assert_eq!(rfc3339_seconds(t), "2026-11-22T19:54:00Z");
    }

    #[test]
    fn parses_zulu_offsets_and_fractions() {
        let base = UNIX_EPOCH + Duration::from_secs(1_795_377_240);
        assert_eq!(parse_rfc3339("2026-11-22T19:54:00Z"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-22T20:54:00+01:00"), Some(base));
        assert_eq!(
            parse_rfc3339("2026-11-22T19:54:00.123456789Z"),
            Some(base + Duration::from_nanos(123_456_789))
        );
        assert_eq!(
            parse_rfc3339("2026-11-22T19:54:00.5Z"),
            Some(base + Duration::from_millis(500))
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_782_400))
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "2026-11-22",
            "2026-13-01T00:00:00Z",
            "2026-11-22T19:54:00",
            "2026-11-22T19:54:00+0100",
            "x026-11-22T19:54:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
