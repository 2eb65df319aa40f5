//! Value syntaxes shared by flags and environment variables: Go durations, booleans, ports,
//! http(s) URLs, bind hosts, comma-separated lists and `NAME=VALUE` headers. Each parser returns
//! the problem as the end of a sentence (`"abc" is not a port number (0 to 65535)`); `build.rs`
//! prefixes the flag or environment variable. No I/O here.

use std::net::IpAddr;
use std::time::Duration;

/// A parsed Go duration: `Negative` for any value below zero (the seeds' "negative = no limit").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoDuration {
    /// A value below zero.
    Negative,
    /// Zero or more.
    Positive(Duration),
}

/// Parses Go's `time.ParseDuration` syntax: an optional sign, then one or more decimal numbers
/// with optional fraction, each followed by a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), e.g.
/// `300ms`, `-1.5h`, `2h45m`. A bare `0` is allowed.
pub fn parse_duration(input: &str) -> Result<GoDuration, String> {
    let bad = || {
        format!("\"{input}\" is not a duration (use a number with a unit, such as 500ms, 30s, 5m, 1h or 1m30s)")
    };
    let s = input.trim();
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(GoDuration::Positive(Duration::ZERO));
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(tail) => {
                let len = tail.bytes().take_while(u8::is_ascii_digit).count();
                tail.split_at(len)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        let mut frac_nanos: u128 = 0;
        let mut scale: u128 = 1;
        for digit in frac_part.bytes().take(18) {
            frac_nanos = frac_nanos * 10 + u128::from(digit - b'0');
            scale *= 10;
        }
        total_nanos = whole
            .checked_mul(unit_nanos)
            .and_then(|n| n.checked_add(frac_nanos * unit_nanos / scale))
            .and_then(|n| total_nanos.checked_add(n))
            .ok_or_else(|| format!("\"{input}\" is too long a duration"))?;
        rest = after;
    }
    if negative && total_nanos > 0 {
        return Ok(GoDuration::Negative);
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000)
        .map_err(|_| format!("\"{input}\" is too long a duration"))?;
    let nanos = (total_nanos % 1_000_000_000) as u32;
    Ok(GoDuration::Positive(Duration::new(secs, nanos)))
}

/// Booleans: true for `1`, `t`, `true`, `y`, `yes`; false for `0`, `f`, `false`, `n`, `no`
/// (any case).
pub fn parse_bool(input: &str) -> Result<bool, String> {
    match input.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "y" | "yes" => Ok(true),
        "0" | "f" | "false" | "n" | "no" => Ok(false),
        _ => Err(format!(
            "\"{input}\" is not a boolean (use true, yes, y or 1; or false, no, n or 0)"
        )),
    }
}

/// A TCP port, 0 to 65535.
pub fn parse_port(input: &str) -> Result<u16, String> {
    input
        .trim()
        .parse::<u16>()
        .map_err(|_| format!("\"{input}\" is not a port number (0 to 65535)"))
}

/// An unsigned integer within `min..=max`.
pub fn parse_count(input: &str, min: usize, max: usize) -> Result<usize, String> {
    match input.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "\"{input}\" is not a whole number from {min} to {max}"
        )),
    }
}

/// The comma-separated items of a list, trimmed, empty items dropped.
pub fn split_list(input: &str) -> Vec<String> {
    input
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// An `http://` or `https://` URL split into its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// `http` or `https` (lowercase).
    pub scheme: String,
    /// The host, IPv6 without brackets.
    pub host: String,
    /// The explicit port, if any.
    pub port: Option<u16>,
    /// The path, `""` or starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Reassembles the URL in canonical form (lowercase scheme, IPv6 bracketed).
    pub fn to_url_string(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(port) => format!("{}://{host}:{port}{}", self.scheme, self.path),
            None => format!("{}://{host}{}", self.scheme, self.path),
        }
    }
}

/// Parses `http(s)://host[:port][/path]`. With `default_scheme`, a value without a scheme
/// (`es:9200`) gets that scheme, as Elasticsearch output hosts do.
pub fn parse_http_url(input: &str, default_scheme: Option<&str>) -> Result<HttpUrl, String> {
    let s = input.trim();
    let expected = "expected http(s)://host[:port][/path]";
    let (scheme, rest) = match s.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => match default_scheme {
            Some(scheme) => (scheme.to_string(), s),
            None => return Err(format!("\"{input}\" is not a URL ({expected})")),
        },
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "\"{input}\" has scheme \"{scheme}\" but only http and https are supported"
        ));
    }
    if rest.contains(['?', '#']) {
        return Err(format!(
            "\"{input}\" must not have a query or fragment ({expected})"
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(format!(
            "\"{input}\" must not contain credentials; use the service token instead"
        ));
    }
    let (host, port) = split_host_port(authority)
        .ok_or_else(|| format!("\"{input}\" does not have a valid host[:port] ({expected})"))?;
    let path = path.trim_end_matches('/').to_string();
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("\"{input}\" has spaces in its path"));
    }
    Ok(HttpUrl {
        scheme,
        host,
        port,
        path,
    })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`; the host must be valid.
/// `host[:port]` (IPv6 in brackets), the host a valid name or address, the port above 0.
pub(super) fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (v6, None),
            _ => (v6, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return None,
        },
        None => None,
    };
    if !host.contains(':') && !is_host_name(host) {
        return None;
    }
    Some((host.to_string(), port))
}

fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A bind host: an IP address (IPv6 with or without brackets) or a host name. IPv6 is returned
/// without brackets.
pub fn parse_bind_host(input: &str) -> Result<String, String> {
    let s = input.trim();
    let unbracketed = s
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    if is_host_name(s) {
        return Ok(s.to_string());
    }
    Err(format!(
        "\"{input}\" is not an IP address or host name to bind to"
    ))
}

/// One `NAME=VALUE` header; the name must be an HTTP token, the value one line.
pub fn parse_header(input: &str) -> Result<(String, String), String> {
    let (name, value) = input
        .split_once('=')
        .ok_or_else(|| format!("\"{input}\" is not a header (expected NAME=VALUE)"))?;
    let name = name.trim();
    let is_token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(is_token_char) {
        return Err(format!(
            "\"{input}\" does not start with a valid header name"
        ));
    }
    let value = unquote(value.trim());
    if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        return Err(format!(
            "the value of header \"{name}\" contains a line break"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

/// A comma-separated list of `NAME=VALUE` headers; a value may be double-quoted to hold commas
/// (`k1=v1,k2="v 2, more"`).
pub fn parse_header_list(input: &str) -> Result<Vec<(String, String)>, String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in input.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if quoted {
        return Err(format!("\"{input}\" has an unterminated double quote"));
    }
    items.push(current);
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(parse_header)
        .collect()
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> GoDuration {
        GoDuration::Positive(Duration::from_secs(n))
    }

    #[test]
    fn go_durations_parse_like_go() {
        assert_eq!(parse_duration("0"), Ok(secs(0)));
        assert_eq!(parse_duration("2m"), Ok(secs(120)));
        assert_eq!(parse_duration("1m30s"), Ok(secs(90)));
        assert_eq!(parse_duration("1h"), Ok(secs(3600)));
        assert_eq!(parse_duration("+5s"), Ok(secs(5)));
        assert_eq!(
            parse_duration("500ms"),
            Ok(GoDuration::Positive(Duration::from_millis(500)))
        );
        assert_eq!(
            parse_duration("1.5s"),
            Ok(GoDuration::Positive(Duration::from_millis(1500)))
        );
        assert_eq!(
            parse_duration(".5m"),
            Ok(GoDuration::Positive(Duration::from_secs(30)))
        );
        assert_eq!(
            parse_duration("2us"),
            Ok(GoDuration::Positive(Duration::from_micros(2)))
        );
        assert_eq!(
            parse_duration("3µs100ns"),
            Ok(GoDuration::Positive(Duration::from_nanos(3100)))
        );
        assert_eq!(parse_duration("-1s"), Ok(GoDuration::Negative));
        assert_eq!(parse_duration("-0s"), Ok(secs(0)));
    }

    #[test]
    fn bad_durations_are_refused() {
        for bad in ["", "30", "5 m", "1d", "m", "-", "1.s.", "s5", "1h-2m", "."] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("is not a duration"), "{bad}: {err}");
        }
        assert!(parse_duration("99999999999999999999h")
            .unwrap_err()
            .contains("too long"));
    }

    #[test]
    fn booleans_accept_the_container_spellings() {
        for t in ["1", "true", "TRUE", "yes", "Y", "t"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["0", "false", "No", "n", "F"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        assert!(parse_bool("maybe").unwrap_err().contains("not a boolean"));
    }

    #[test]
    fn ports_and_counts() {
        assert_eq!(parse_port("0"), Ok(0));
        assert_eq!(parse_port("65535"), Ok(65535));
        assert!(parse_port("65536").is_err());
        assert!(parse_port("-1").is_err());
        assert!(parse_port("http")
            .unwrap_err()
            .contains("not a port number"));
        assert_eq!(parse_count("10", 1, 100), Ok(10));
        assert!(parse_count("0", 1, 100).is_err());
    }

    #[test]
    fn urls() {
        let u = parse_http_url("HTTPS://fleet.example:8220/base/", None).unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.host.as_str(), u.port, u.path.as_str()),
            ("https", "fleet.example", Some(8220), "/base")
        );
        assert_eq!(u.to_url_string(), "https://fleet.example:8220/base");
        let v6 = parse_http_url("https://[::1]:8220", None).unwrap();
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.to_url_string(), "https://[::1]:8220");
        assert_eq!(
            parse_http_url("es:9200", Some("http"))
                .unwrap()
                .to_url_string(),
            "http://es:9200"
        );
        for bad in [
            "fleet.example",
            "ftp://x",
            "https://",
            "https://a b",
            "https://h:99999",
            "https://h:0",
            "https://u:p@h",
            "https://h/?q=1",
            "https://[zz]:1",
        ] {
            assert!(parse_http_url(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn bind_hosts() {
        assert_eq!(parse_bind_host("0.0.0.0").unwrap(), "0.0.0.0");
        assert_eq!(parse_bind_host("[::]").unwrap(), "::");
        assert_eq!(parse_bind_host("::1").unwrap(), "::1");
        assert_eq!(parse_bind_host("localhost").unwrap(), "localhost");
        assert!(parse_bind_host("").is_err());
        assert!(parse_bind_host("bad host").is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(
            parse_header("X-Team=edge"),
            Ok(("X-Team".to_string(), "edge".to_string()))
        );
        assert_eq!(
            parse_header_list("a=1, b=\"x, y\",c=3").unwrap(),
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "x, y".to_string()),
                ("c".to_string(), "3".to_string())
            ]
        );
        assert!(parse_header("novalue").is_err());
        assert!(parse_header("bad name=1").is_err());
        assert!(parse_header_list("a=\"1").is_err());
        assert_eq!(split_list(" a, ,b ,"), vec!["a", "b"]);
    }
}
