//! Timestamps as Fleet writes them: RFC 3339 UTC, second precision for agent fields
//! (`2006-01-02T15:04:05Z`), nanoseconds where the agent sent them. Parsing accepts any RFC 3339
//! offset and fraction. Pure functions over `SystemTime`; the caller supplies `now`.
//!
//! Timestamps the agent sends (ack events, audit/unenroll) go through [`GoTime`]: Go's
//! `time.Time` JSON decoding (strict RFC 3339, Go's error texts) and its `RFC3339Nano`
//! formatting, which keeps the sender's offset (Fleet Server never calls `.UTC()` on them).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats a time as RFC 3339 UTC with milliseconds, e.g. `2026-11-22T19:54:00.123Z`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// `2026-11-22T19:54:00Z`.
pub fn rfc3339_seconds(t: SystemTime) -> String {
    let full = rfc3339_millis(t);
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

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01, proleptic Gregorian (Howard
/// Hinnant's `civil_from_days`, for non-negative day counts): the one date conversion of the log
/// lines, the HTTP `Date` and the RFC 3339 formatting here.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Go's `time.RFC3339` layout, named in its parse errors.
const GO_RFC3339: &str = "2006-01-02T15:04:05Z07:00";

/// A time as Go's `time.Time` holds one decoded from JSON: the wall clock as written plus the
/// offset it was written in (a `+02:00` time is re-marshalled with `+02:00`, as Go does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GoTime {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    /// Seconds east of UTC.
    offset_secs: i32,
}

impl GoTime {
    /// Go's zero `time.Time` (`0001-01-01T00:00:00Z`): what a missing or `null` member decodes to.
    pub const ZERO: GoTime = GoTime {
        year: 1,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        offset_secs: 0,
    };

    /// Parses the text of a JSON string member the way Go's `Time.UnmarshalJSON` does (Go 1.20+,
    /// strict RFC 3339: `T` and `Z` upper case, two-digit fields in range, `.` before the
    /// fraction, at most nine fraction digits kept, offsets below 24:00). The error is Go's text.
    pub fn parse(s: &str) -> Result<GoTime, String> {
        if let Some(t) = parse_strict(s.as_bytes()) {
            return Ok(t);
        }
        Err(go_parse_error(s))
    }

    /// Go's `t.Format(time.RFC3339Nano)`: fraction only when non-zero with trailing zeros
    /// trimmed, `Z` for a zero offset, otherwise `±hh:mm`.
    pub fn rfc3339_nano(&self) -> String {
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        if self.nanos != 0 {
            let digits = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
        if self.offset_secs == 0 {
            out.push('Z');
        } else {
            let sign = if self.offset_secs < 0 { '-' } else { '+' };
            let abs = self.offset_secs.unsigned_abs() / 60;
            out.push_str(&format!("{sign}{:02}:{:02}", abs / 60, abs % 60));
        }
        out
    }
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in(month: u32, year: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Go's `parseRFC3339` fast path, which since Go 1.20 is also the acceptance rule of
/// `Time.UnmarshalJSON` (anything it refuses is an error, with the text of `time.Parse`).
fn parse_strict(b: &[u8]) -> Option<GoTime> {
    let num = |from: usize, to: usize, min: u32, max: u32| -> Option<u32> {
        let part = b.get(from..to)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = part.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        (min..=max).contains(&n).then_some(n)
    };
    if b.len() < 19 {
        return None;
    }
    let year = num(0, 4, 0, 9999)?;
    let month = num(5, 7, 1, 12)?;
    let day = num(8, 10, 1, days_in(month, year))?;
    let hour = num(11, 13, 0, 23)?;
    let minute = num(14, 16, 0, 59)?;
    let second = num(17, 19, 0, 59)?;
    if !(b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':') {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if rest.len() >= 2 && rest[0] == b'.' && rest[1].is_ascii_digit() {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        for (i, d) in rest[1..=digits].iter().take(9).enumerate() {
            nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = &rest[1 + digits..];
    }
    let offset_secs = if rest == b"Z" {
        0
    } else {
        if rest.len() != 6 || rest[3] != b':' || !matches!(rest[0], b'+' | b'-') {
            return None;
        }
        let hh = num(b.len() - 5, b.len() - 3, 0, 23)?;
        let mm = num(b.len() - 2, b.len(), 0, 59)?;
        let secs = i32::try_from((hh * 60 + mm) * 60).ok()?;
        if rest[0] == b'-' {
            -secs
        } else {
            secs
        }
    };
    Some(GoTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
        nanos,
        offset_secs,
    })
}

/// Go's `time` package quoting of values in parse errors: printable ASCII as is, `"` and `\`
/// escaped, everything else as `\x..` bytes.
fn go_time_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{byte:02x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// The error `Time.UnmarshalJSON` returns for text its strict parser refused: `time.Parse`'s
/// error for the RFC 3339 layout, or, where `time.Parse` accepts what RFC 3339 does not, the
/// strict check's own error (Go's `parseStrictRFC3339`).
fn go_parse_error(s: &str) -> String {
    let b = s.as_bytes();
    let cannot = |value_elem: &str, layout_elem: &str| {
        format!(
            "parsing time {} as {}: cannot parse {} as {}",
            go_time_quote(s),
            go_time_quote(GO_RFC3339),
            go_time_quote(value_elem),
            go_time_quote(layout_elem)
        )
    };
    let out_of_range =
        |what: &str| format!("parsing time {}: {what} out of range", go_time_quote(s));
    // getnum(value, fixed): one or two leading digits.
    let getnum = |v: &[u8], fixed: bool| -> Option<(u32, usize)> {
        let d0 = *v.first().filter(|c| c.is_ascii_digit())?;
        match v.get(1).filter(|c| c.is_ascii_digit()) {
            Some(d1) => Some((u32::from(d0 - b'0') * 10 + u32::from(d1 - b'0'), 2)),
            None if fixed => None,
            None => Some((u32::from(d0 - b'0'), 1)),
        }
    };
    let mut pos = 0usize;
    let rest = |pos: usize| s.get(pos..).unwrap_or("");
    // stdLongYear
    if b.len() < 4 || !b[0].is_ascii_digit() || !b[..4].iter().all(u8::is_ascii_digit) {
        return cannot(rest(0), "2006");
    }
    let year: u32 = s[..4].parse().unwrap_or(0);
    pos += 4;
    let mut month = 0;
    let mut day = 0;
    // (literal prefix, element, fixed width, range name, max allowed)
    for (prefix, elem, fixed) in [
        ("-", "01", true),
        ("-", "02", true),
        ("T", "15", false),
        (":", "04", true),
        (":", "05", true),
    ] {
        if !rest(pos).starts_with(prefix) {
            return cannot(rest(pos), prefix);
        }
        pos += prefix.len();
        let Some((n, width)) = getnum(&b[pos..], fixed) else {
            return cannot(rest(pos), elem);
        };
        pos += width;
        match elem {
            "01" if !(1..=12).contains(&n) => return out_of_range("month"),
            "01" => month = n,
            "02" => day = n,
            "15" if n >= 24 => return out_of_range("hour"),
            "04" if n >= 60 => return out_of_range("minute"),
            "05" if n >= 60 => return out_of_range("second"),
            _ => {}
        }
    }
    // A fraction after the seconds, '.' or ','.
    if b.len() >= pos + 2 && matches!(b[pos], b'.' | b',') && b[pos + 1].is_ascii_digit() {
        pos += 1 + b[pos + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
    }
    // stdISO8601ColonTZ
    let tz = &b[pos..];
    if tz.first() == Some(&b'Z') {
        pos += 1;
    } else {
        let digits_ok = |v: &[u8]| v.iter().all(u8::is_ascii_digit);
        if tz.len() < 6 || tz[3] != b':' || !digits_ok(&tz[1..3]) || !digits_ok(&tz[4..6]) {
            return cannot(rest(pos), "Z07:00");
        }
        let hh = u32::from(tz[1] - b'0') * 10 + u32::from(tz[2] - b'0');
        let mm = u32::from(tz[4] - b'0') * 10 + u32::from(tz[5] - b'0');
        // Go sets the minute complaint after the hour one; the later wins.
        if mm > 60 {
            return out_of_range("time zone offset minute");
        }
        if hh > 24 {
            return out_of_range("time zone offset hour");
        }
        if !matches!(tz[0], b'+' | b'-') {
            return cannot(rest(pos), "Z07:00");
        }
        pos += 6;
    }
    if pos < b.len() {
        return format!(
            "parsing time {}: extra text: {}",
            go_time_quote(s),
            go_time_quote(rest(pos))
        );
    }
    if day < 1 || day > days_in(month, year) {
        return out_of_range("day");
    }
    // time.Parse accepted it; the strict checks name what RFC 3339 forbids.
    let strict = |value_elem: &str, layout_elem: &str, message: &str| {
        if message.is_empty() {
            cannot(value_elem, layout_elem)
        } else {
            format!("parsing time {}{message}", go_time_quote(s))
        }
    };
    if b.get(12) == Some(&b':') {
        return strict(&s[11..12], "15", "");
    }
    if b.get(19) == Some(&b',') {
        return strict(",", ".", "");
    }
    if b.last() != Some(&b'Z') {
        let two = |at: usize| u32::from(b[at] - b'0') * 10 + u32::from(b[at + 1] - b'0');
        if two(b.len() - 5) >= 24 {
            return strict("", "", ": timezone hour out of range");
        }
        if two(b.len() - 2) >= 60 {
            return strict("", "", ": timezone minute out of range");
        }
    }
    cannot(s, GO_RFC3339)
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

    #[test]
    fn go_time_round_trips_as_go_marshals_it() {
        for (input, marshalled) in [
            ("2026-12-02T23:22:06Z", "2026-12-02T23:22:06Z"),
            ("2026-12-02T23:22:06.000Z", "2026-12-02T23:22:06Z"),
            ("2026-12-02T23:22:06.120Z", "2026-12-02T23:22:06.12Z"),
            (
                "2026-12-02T23:22:06.123456789Z",
                "2026-12-02T23:22:06.123456789Z",
            ),
            (
                "2026-12-02T23:22:06.1234567891Z",
                "2026-12-02T23:22:06.123456789Z",
            ),
            // Go keeps the sender's offset; a zero offset is written `Z`.
            ("2026-12-03T01:22:06+02:00", "2026-12-03T01:22:06+02:00"),
            ("2026-12-02T18:22:06.5-05:00", "2026-12-02T18:22:06.5-05:00"),
            ("2026-12-02T23:22:06+00:00", "2026-12-02T23:22:06Z"),
            ("2026-12-02T23:22:06-00:00", "2026-12-02T23:22:06Z"),
            ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"),
            ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"),
        ] {
            assert_eq!(
                GoTime::parse(input).map(|t| t.rfc3339_nano()).as_deref(),
                Ok(marshalled),
                "{input}"
            );
        }
        assert_eq!(GoTime::ZERO.rfc3339_nano(), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn go_time_errors_are_gos_texts() {
        let layout = "as \"2006-01-02T15:04:05Z07:00\"";
        for (input, error) in [
            ("yesterday", format!("parsing time \"yesterday\" {layout}: cannot parse \"yesterday\" as \"2006\"")),
            ("", format!("parsing time \"\" {layout}: cannot parse \"\" as \"2006\"")),
            ("2026-13-01T00:00:00Z", "parsing time \"2026-13-01T00:00:00Z\": month out of range".into()),
            ("2026-02-30T00:00:00Z", "parsing time \"2026-02-30T00:00:00Z\": day out of range".into()),
            ("2026-05-01T10:00:60Z", "parsing time \"2026-05-01T10:00:60Z\": second out of range".into()),
            ("2026-05-01T10:00:00", format!("parsing time \"2026-05-01T10:00:00\" {layout}: cannot parse \"\" as \"Z07:00\"")),
            ("2026-05-01t10:00:00Z", format!("parsing time \"2026-05-01t10:00:00Z\" {layout}: cannot parse \"t10:00:00Z\" as \"T\"")),
            ("2026-05-01 10:00:00Z", format!("parsing time \"2026-05-01 10:00:00Z\" {layout}: cannot parse \" 10:00:00Z\" as \"T\"")),
            ("2026-5-01T10:00:00Z", format!("parsing time \"2026-5-01T10:00:00Z\" {layout}: cannot parse \"5-01T10:00:00Z\" as \"01\"")),
            ("2026-05-01T10:00:00z", format!("parsing time \"2026-05-01T10:00:00z\" {layout}: cannot parse \"z\" as \"Z07:00\"")),
            // time.Parse accepts these; Go's strict RFC 3339 check refuses them.
            ("2026-05-01T1:00:00Z", format!("parsing time \"2026-05-01T1:00:00Z\" {layout}: cannot parse \"1\" as \"15\"")),
            ("2026-05-01T10:00:00,5Z", format!("parsing time \"2026-05-01T10:00:00,5Z\" {layout}: cannot parse \",\" as \".\"")),
            ("2026-05-01T10:00:00+24:00", "parsing time \"2026-05-01T10:00:00+24:00\": timezone hour out of range".into()),
            ("2026-05-01T10:00:00+01:60", "parsing time \"2026-05-01T10:00:00+01:60\": timezone minute out of range".into()),
            ("2026-05-01T10:00:00Zjunk", "parsing time \"2026-05-01T10:00:00Zjunk\": extra text: \"junk\"".into()),
            ("2026-05-01T10:00:00+25:00", "parsing time \"2026-05-01T10:00:00+25:00\": time zone offset hour out of range".into()),
        ] {
            assert_eq!(GoTime::parse(input), Err(error), "{input}");
        }
    }
}
