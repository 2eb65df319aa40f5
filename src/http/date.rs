//! The `Date` response header (RFC 9110 §6.6.1: an origin server with a clock sends it on every
//! response), in IMF-fixdate form (`Thu, 03 Dec 2026 05:30:53 GMT`) as Go's net/http writes it.
//!
//! Sans-IO like the rest of `http`: the event loop reads the wall clock once per iteration and
//! hands the reading to [`DateCache::update`], which formats only when the second changed; the
//! encoder copies the cached [`HttpDate`] (29 bytes, `Copy`) into each response.

use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate.
const LEN: usize = 29;

/// One IMF-fixdate, formatted once and copied into responses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HttpDate([u8; LEN]);

impl HttpDate {
    /// The date of `secs` seconds after the Unix epoch.
    pub fn from_unix_seconds(secs: u64) -> HttpDate {
        const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
        const MONTHS: [&[u8; 3]; 12] = [
            b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
            b"Dec",
        ];
        let days = secs / 86_400;
        let of_day = secs % 86_400;
        let (year, month, day) = crate::model::time::civil_from_days(days);
        let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
        // 1970-01-01 was a Thursday.
        out[0..3].copy_from_slice(DAYS[(days % 7) as usize]);
        two_digits(&mut out[5..7], day);
        out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
        // IMF-fixdate has a four-digit year; past 9999 the value saturates rather than widening
        // the header.
        let year = year.min(9999);
        two_digits(&mut out[12..14], year / 100);
        two_digits(&mut out[14..16], year % 100);
        two_digits(&mut out[17..19], of_day / 3600);
        two_digits(&mut out[20..22], of_day / 60 % 60);
        two_digits(&mut out[23..25], of_day % 60);
        HttpDate(out)
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written into the buffer.
        std::str::from_utf8(&self.0).unwrap_or("Thu, 01 Jan 1970 00:00:00 GMT")
    }
}

impl std::fmt::Debug for HttpDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HttpDate({})", self.as_str())
    }
}

/// The current `Date` value, reformatted only when the wall clock enters a new second.
#[derive(Clone, Copy, Debug)]
pub struct DateCache {
    second: u64,
    value: HttpDate,
}

impl DateCache {
    /// A cache holding the date of `now`.
    pub fn new(now: SystemTime) -> DateCache {
        let second = unix_seconds(now);
        DateCache {
            second,
            value: HttpDate::from_unix_seconds(second),
        }
    }

    /// Moves the cache to `now` (formatting only if the second changed) and returns the value.
    pub fn update(&mut self, now: SystemTime) -> HttpDate {
        let second = unix_seconds(now);
        if second != self.second {
            self.second = second;
            self.value = HttpDate::from_unix_seconds(second);
        }
        self.value
    }

    /// The value of the last update.
    pub fn current(&self) -> HttpDate {
        self.value
    }
}

/// Whole seconds since the epoch; a clock set before 1970 reads as the epoch.
fn unix_seconds(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn two_digits(out: &mut [u8], value: u64) {
    out[0] = b'0' + (value / 10 % 10) as u8;
    out[1] = b'0' + (value % 10) as u8;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> String {
        HttpDate::from_unix_seconds(secs).as_str().to_owned()
    }

    #[test]
    fn formats_known_instants() {
        // Values checked against `date -u -d @N '+%a, %d %b %Y %H:%M:%S GMT'`.
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            at(784_111_777),
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "RFC 9110's example"
        );
        assert_eq!(
            at(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 GMT",
            "leap day of a 400-year"
        );
        assert_eq!(at(951_868_799), "Tue, 29 Feb 2000 23:59:59 GMT");
        assert_eq!(at(951_868_800), "Wed, 01 Mar 2000 00:00:00 GMT");
        assert_eq!(
            at(1_709_164_800),
            "Thu, 29 Feb 2024 00:00:00 GMT",
            "leap day"
        );
        assert_eq!(
            at(1_735_689_599),
            "Tue, 31 Dec 2024 23:59:59 GMT",
            "day 366"
        );
        assert_eq!(at(1_735_689_600), "Wed, 01 Jan 2025 00:00:00 GMT");
        assert_eq!(at(1_796_275_853), "Thu, 03 Dec 2026 05:30:53 GMT");
        assert_eq!(
            at(4_107_542_400),
            "Mon, 01 Mar 2100 00:00:00 GMT",
            "2100 is no leap year"
        );
        assert_eq!(at(4_107_542_399), "Sun, 28 Feb 2100 23:59:59 GMT");
        assert_eq!(at(253_402_300_799), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn every_value_is_a_29_byte_imf_fixdate() {
        for secs in (0..4_000_000_000u64).step_by(86_399 * 37) {
            let date = HttpDate::from_unix_seconds(secs);
            let text = date.as_str();
            assert_eq!(text.len(), 29, "{text}");
            assert!(text.ends_with(" GMT") && &text[3..5] == ", ", "{text}");
        }
    }

    #[test]
    fn the_cache_reformats_only_on_a_new_second() {
        let t0 = UNIX_EPOCH + Duration::from_millis(1_796_275_853_100);
        let mut cache = DateCache::new(t0);
        assert_eq!(cache.current().as_str(), "Thu, 03 Dec 2026 05:30:53 GMT");
        let same = cache.update(t0 + Duration::from_millis(899));
        assert_eq!(same.as_str(), "Thu, 03 Dec 2026 05:30:53 GMT");
        let next = cache.update(t0 + Duration::from_millis(900));
        assert_eq!(next.as_str(), "Thu, 03 Dec 2026 05:30:54 GMT");
        assert_eq!(cache.current(), next);
        assert_eq!(
            DateCache::new(UNIX_EPOCH - Duration::from_secs(5))
                .current()
                .as_str(),
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "a clock before 1970 reads as the epoch"
        );
    }
}
