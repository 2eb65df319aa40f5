//! Dates as Elasticsearch's default `date` format reads them (`strict_date_optional_time||epoch_millis`,
//! millisecond resolution, UTC when no zone) and date math (`now-30d`, `now/d`, `<date>||+1M/M`), plus
//! the RFC 3339 / ISO formatting used in responses. Civil-date arithmetic only; no time zones other than
//! fixed offsets.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 for a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Civil date (y, m, d) for days since the epoch.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    days_from_civil(
        if m == 12 { y + 1 } else { y },
        if m == 12 { 1 } else { m + 1 },
        1,
    ) - days_from_civil(y, m, 1)
}

/// Formats epoch millis as `2026-08-21T10:00:00.000Z`.
pub fn format_millis(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Formats epoch millis as `2026-08-21T10:00:00Z` (RFC 3339, second precision).
pub fn format_rfc3339_secs(ms: i64) -> String {
    let s = format_millis(ms);
    format!("{}Z", &s[..19])
}

/// Formats epoch millis as `yyyy.MM.dd` (data stream backing index names).
pub fn format_ymd_dots(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}.{m:02}.{d:02}")
}

fn digits(s: &[u8], i: &mut usize, n: usize) -> Option<i64> {
    if *i + n > s.len() {
        return None;
    }
    let mut v = 0i64;
    for k in 0..n {
        let c = s[*i + k];
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    *i += n;
    Some(v)
}

/// Parses `strict_date_optional_time` (`yyyy[-MM[-dd[THH[:mm[:ss[.SSS…]]]]]][Z|±HH:mm]`).
pub fn parse_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mut i = 0;
    let y = digits(b, &mut i, 4)?;
    let (mut mo, mut d, mut h, mut mi, mut sec, mut ms) = (1, 1, 0, 0, 0, 0);
    let mut has_time = false;
    if i < b.len() && b[i] == b'-' {
        i += 1;
        mo = digits(b, &mut i, 2)?;
        if i < b.len() && b[i] == b'-' {
            i += 1;
            d = digits(b, &mut i, 2)?;
            if i < b.len() && b[i] == b'T' {
                i += 1;
                has_time = true;
                h = digits(b, &mut i, 2)?;
                if i < b.len() && b[i] == b':' {
                    i += 1;
                    mi = digits(b, &mut i, 2)?;
                    if i < b.len() && b[i] == b':' {
                        i += 1;
                        sec = digits(b, &mut i, 2)?;
                        if i < b.len() && (b[i] == b'.' || b[i] == b',') {
                            i += 1;
                            let start = i;
                            while i < b.len() && b[i].is_ascii_digit() {
                                i += 1;
                            }
                            let frac = &s[start..i];
                            if frac.is_empty() || frac.len() > 9 {
                                return None;
                            }
                            let mut f = frac.to_string();
                            while f.len() < 3 {
                                f.push('0');
                            }
                            ms = f[..3].parse().ok()?;
                        }
                    }
                }
            }
        }
    }
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59
    {
        return None;
    }
    let mut offset_min = 0i64;
    if i < b.len() {
        match b[i] {
            b'Z' if has_time && i + 1 == b.len() => i += 1,
            b'+' | b'-' if has_time => {
                let sign = if b[i] == b'-' { -1 } else { 1 };
                i += 1;
                let oh = digits(b, &mut i, 2)?;
                if i < b.len() && b[i] == b':' {
                    i += 1;
                }
                let om = if i < b.len() {
                    digits(b, &mut i, 2)?
                } else {
                    0
                };
                offset_min = sign * (oh * 60 + om);
            }
            _ => return None,
        }
    }
    if i != b.len() {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(days * 86_400_000 + h * 3_600_000 + mi * 60_000 + sec * 1000 + ms - offset_min * 60_000)
}

/// Parses a date value of the default format: ISO string or epoch millis (number or digits).
pub fn parse_date_value(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::String(s) => parse_date_str(s),
        _ => None,
    }
}

/// Parses a date string: ISO first, then epoch millis digits.
pub fn parse_date_str(s: &str) -> Option<i64> {
    if let Some(v) = parse_iso(s) {
        return Some(v);
    }
    let t = s.strip_prefix('-').unwrap_or(s);
    if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()) {
        return s.parse().ok();
    }
    None
}

fn add_unit(ms: i64, n: i64, unit: char) -> Option<i64> {
    let per = |k: i64| n.checked_mul(k).and_then(|d| ms.checked_add(d));
    match unit {
        's' => per(1000),
        'm' => per(60_000),
        'h' | 'H' => per(3_600_000),
        'd' => per(86_400_000),
        'w' => per(7 * 86_400_000),
        'M' | 'y' => {
            let days = ms.div_euclid(86_400_000);
            let rem = ms.rem_euclid(86_400_000);
            let (y, m, d) = civil_from_days(days);
            let months = if unit == 'y' { n.checked_mul(12)? } else { n };
            let total = y.checked_mul(12)?.checked_add(m - 1)?.checked_add(months)?;
            if total.abs() > 12 * 300_000 {
                return None;
            }
            let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) + 1);
            let nd = d.min(days_in_month(ny, nm));
            days_from_civil(ny, nm, nd)
                .checked_mul(86_400_000)?
                .checked_add(rem)
        }
        _ => None,
    }
}

fn round_down(ms: i64, unit: char) -> Option<i64> {
    let days = ms.div_euclid(86_400_000);
    let (y, m, _) = civil_from_days(days);
    Some(match unit {
        's' => ms - ms.rem_euclid(1000),
        'm' => ms - ms.rem_euclid(60_000),
        'h' | 'H' => ms - ms.rem_euclid(3_600_000),
        'd' => days * 86_400_000,
        'w' => (days - (days + 3).rem_euclid(7)) * 86_400_000,
        'M' => days_from_civil(y, m, 1) * 86_400_000,
        'y' => days_from_civil(y, 1, 1) * 86_400_000,
        _ => return None,
    })
}

/// Evaluates a date-math expression. `round_up` selects the end of a rounded unit (used for
/// `gt` and `lte`), as Elasticsearch does.
pub fn eval(expr: &str, now: i64, round_up: bool) -> Option<i64> {
    let (mut t, rest) = if let Some(r) = expr.strip_prefix("now") {
        (now, r)
    } else if let Some(pos) = expr.find("||") {
        (parse_date_str(&expr[..pos])?, &expr[pos + 2..])
    } else {
        return parse_date_str(expr);
    };
    let b: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let op = b[i];
        i += 1;
        match op {
            '+' | '-' => {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let n: i64 = if start == i {
                    1
                } else {
                    b[start..i].iter().collect::<String>().parse().ok()?
                };
                let unit = *b.get(i)?;
                i += 1;
                t = add_unit(t, if op == '-' { -n } else { n }, unit)?;
            }
            '/' => {
                let unit = *b.get(i)?;
                i += 1;
                let down = round_down(t, unit)?;
                t = if round_up {
                    add_unit(down, 1, unit)? - 1
                } else {
                    down
                };
            }
            _ => return None,
        }
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_forms() {
        assert_eq!(parse_iso("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(parse_iso("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_iso("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(
            parse_iso("2026-08-21T10:00:00.000Z"),
            parse_iso("2026-08-21T10:00:00Z")
        );
        assert_eq!(parse_iso("2026-02-30"), None);
        assert_eq!(parse_iso("abc"), None);
        assert_eq!(
            parse_date_str("1000"),
            parse_iso("1000-01-01"),
            "4 digits are a year, as in ES"
        );
        assert_eq!(parse_date_str("100000"), Some(100_000));
    }

    #[test]
    fn format_roundtrip() {
        let t = parse_iso("2024-02-29T23:59:58.123Z").unwrap();
        assert_eq!(format_millis(t), "2024-02-29T23:59:58.123Z");
        assert_eq!(format_rfc3339_secs(t), "2024-02-29T23:59:58Z");
        assert_eq!(format_ymd_dots(t), "2024.02.29");
    }

    #[test]
    fn math() {
        let now = parse_iso("2026-03-31T12:34:56Z").unwrap();
        assert_eq!(
            eval("now-30d", now, false),
            parse_iso("2026-03-01T12:34:56Z")
        );
        assert_eq!(
            eval("now-1M", now, false),
            parse_iso("2026-02-28T12:34:56Z")
        );
        assert_eq!(eval("now/d", now, false), parse_iso("2026-03-31"));
        assert_eq!(
            eval("now/d", now, true),
            parse_iso("2026-03-31T23:59:59.999Z")
        );
        assert_eq!(eval("2026-01-01||+1y", now, false), parse_iso("2027-01-01"));
        assert_eq!(eval("now-1x", now, false), None);
        assert_eq!(eval("now-99999999999999999d", now, false), None);
        assert_eq!(eval("now+9999999999999y", now, false), None);
    }
}
