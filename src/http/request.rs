//! The decoded request ([`Request`], [`Method`]) with its header look-ups and the two header
//! interpretations the connection needs (keep-alive, gzip acceptance); and the limits the decoder
//! applies ([`Limits`] per listener, [`BodyLimits`] per route).
//!
//! Neighbours: `decode.rs` builds requests; `body.rs` and `gzip.rs` produce their bodies.

/// Per-listener limits on the request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of a header block, from the request line up to and including the blank line
    /// (spec `limits.max_header_byte_size`, 8192). Bigger → 431.
    pub max_header_bytes: usize,
    /// Most header lines in one request. More → 431.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 8192,
            max_headers: 64,
        }
    }
}

/// Per-route limits on the request body (spec 10.1 `max_body_byte_size`, `max_body_decompressed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BodyLimits {
    /// Most body bytes as received (compressed size, after de-chunking); 0 = unlimited.
    pub max_body: usize,
    /// Most bytes after gunzipping a `Content-Encoding: gzip` body; 0 = unlimited.
    pub max_decompressed: usize,
    /// Leave a gzip body compressed (its consumer gunzips it, within `max_decompressed`, where
    /// and when it has the memory for it): the request's `body` is then as received, and
    /// `http::gzip_encoded` says it is gzip. A checkin's 20 MiB is decoded on a backend
    /// worker, not on the event loop, so requests waiting for a worker hold their compressed
    /// bodies only (issue 15 §3).
    pub defer_gzip: bool,
}

/// A request method. Methods are case-sensitive (RFC 9110 9.1): `get` is `Other("get")`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `PATCH`
    Patch,
    /// `OPTIONS`
    Options,
    /// Any other token, verbatim.
    Other(String),
}

impl Method {
    /// The method for a request-line token.
    pub fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_owned()),
        }
    }

    /// The method's token as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Options => "OPTIONS",
            Method::Other(s) => s,
        }
    }
}

/// One complete, decoded request.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// Raw request-target path, without the query string (no percent-decoding).
    pub path: String,
    /// Text after the first `?`, if any (`Some("")` for the bare `?` real agents send).
    pub query: Option<String>,
    /// HTTP/1.0 → 0, HTTP/1.1 → 1.
    pub minor_version: u8,
    /// Header names lower-cased, in order, duplicates kept; values as received (OWS trimmed).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body: de-chunked and, if `Content-Encoding: gzip`, decompressed.
    pub body: Vec<u8>,
    /// HTTP/1.1: true unless `Connection: close`; HTTP/1.0: only with `Connection: keep-alive`.
    pub keep_alive: bool,
    /// The request arrived over TLS (set by the connection; Go's `r.TLS != nil`, which the PGP
    /// key endpoint checks).
    pub tls: bool,
    /// The client's address (set by the connection; the audit lines' `client.ip`).
    pub peer: Option<std::net::IpAddr>,
}

impl Request {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The first header called `name`, only if its value is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// How many header lines are called `name` (the spec turns some duplicates into errors).
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    /// All values of the header lines called `name`, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// `Accept-Encoding` allows gzip: `gzip` (or `x-gzip`) listed with q > 0, or else `*` with
    /// q > 0. Real agents send exactly `gzip`; fleet-server only accepts that exact value, and
    /// accepting it inside a list is a harmless superset (spec 3.11).
    pub fn accepts_gzip(&self) -> bool {
        let mut star = None;
        for value in self.header_values("accept-encoding") {
            for (coding, q_nonzero) in list_items(value).map(coding_and_q) {
                if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
                    return q_nonzero;
                }
                if coding == b"*" && star.is_none() {
                    star = Some(q_nonzero);
                }
            }
        }
        star.unwrap_or(false)
    }
}

/// Keep-alive as RFC 9112 9.3 says: the `Connection` options (all lines) decide; HTTP/1.1 persists
/// unless `close`, HTTP/1.0 only with `keep-alive` (and no `close`).
pub(crate) fn keep_alive(minor_version: u8, headers: &[(String, Vec<u8>)]) -> bool {
    let mut close = false;
    let mut keep = false;
    for (_, value) in headers.iter().filter(|(n, _)| n == "connection") {
        for token in list_items(value) {
            close |= token.eq_ignore_ascii_case(b"close");
            keep |= token.eq_ignore_ascii_case(b"keep-alive");
        }
    }
    if close {
        return false;
    }
    minor_version >= 1 || keep
}

/// The non-empty, OWS-trimmed items of a comma-separated header value.
pub(crate) fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|s| !s.is_empty())
}

/// `value` without leading and trailing spaces and tabs.
pub(crate) fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    value.get(start..end).unwrap_or_default()
}

/// Splits `coding;q=0.5` into the coding and whether its q-value is non-zero (absent q → 1).
fn coding_and_q(item: &[u8]) -> (&[u8], bool) {
    let mut parts = item.split(|&b| b == b';');
    let coding = trim_ows(parts.next().unwrap_or_default());
    let mut nonzero = true;
    for param in parts {
        let param = trim_ows(param);
        if let Some(q) = param
            .strip_prefix(b"q=")
            .or_else(|| param.strip_prefix(b"Q="))
        {
            nonzero = !is_zero_qvalue(trim_ows(q));
        }
    }
    (coding, nonzero)
}

/// `0`, `0.`, `0.0`, `0.00`, `0.000` (RFC 9110 12.4.2 qvalue zero).
fn is_zero_qvalue(q: &[u8]) -> bool {
    match q.split_first() {
        Some((b'0', rest)) => match rest.split_first() {
            None => true,
            Some((b'.', frac)) => frac.len() <= 3 && frac.iter().all(|&b| b == b'0'),
            Some(_) => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(minor: u8, headers: &[(&str, &str)]) -> Request {
        let headers: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
            .collect();
        Request {
            tls: false,
            peer: None,
            method: Method::Get,
            path: "/".into(),
            query: None,
            minor_version: minor,
            keep_alive: keep_alive(minor, &headers),
            headers,
            body: Vec::new(),
        }
    }

    #[test]
    fn method_tokens() {
        for (t, m) in [
            ("GET", Method::Get),
            ("HEAD", Method::Head),
            ("POST", Method::Post),
            ("PUT", Method::Put),
            ("DELETE", Method::Delete),
            ("PATCH", Method::Patch),
            ("OPTIONS", Method::Options),
            ("get", Method::Other("get".into())),
            ("PROPFIND", Method::Other("PROPFIND".into())),
        ] {
            assert_eq!(Method::from_token(t), m);
            assert_eq!(m.as_str(), t);
        }
    }

    #[test]
    fn header_lookups_are_case_insensitive_first_match() {
        let r = req(
            1,
            &[
                ("X-Request-Id", "a"),
                ("x-request-id", "b"),
                ("Bin", "\u{e9}"),
            ],
        );
        assert_eq!(r.header("X-REQUEST-ID"), Some(&b"a"[..]));
        assert_eq!(r.header_str("x-request-id"), Some("a"));
        assert_eq!(r.header_count("X-Request-ID"), 2);
        assert_eq!(r.header_count("missing"), 0);
        assert_eq!(r.header("missing"), None);
        assert_eq!(r.header_values("x-request-id").count(), 2);
        let mut raw = req(1, &[]);
        raw.headers.push(("bin".into(), vec![0xff, 0xfe]));
        assert_eq!(raw.header("bin"), Some(&[0xff, 0xfe][..]));
        assert_eq!(raw.header_str("bin"), None);
    }

    #[test]
    fn keep_alive_rules() {
        assert!(req(1, &[]).keep_alive);
        assert!(!req(1, &[("Connection", "close")]).keep_alive);
        assert!(!req(1, &[("Connection", "Upgrade, Close")]).keep_alive);
        assert!(req(1, &[("Connection", "keep-alive")]).keep_alive);
        assert!(!req(0, &[]).keep_alive);
        assert!(req(0, &[("Connection", "Keep-Alive")]).keep_alive);
        assert!(!req(0, &[("Connection", "keep-alive"), ("Connection", "close")]).keep_alive);
        assert!(req(0, &[("Connection", "foo"), ("Connection", "keep-alive")]).keep_alive);
    }

    #[test]
    fn accepts_gzip_rules() {
        assert!(req(1, &[("Accept-Encoding", "gzip")]).accepts_gzip());
        assert!(req(1, &[("Accept-Encoding", "br, GZIP;q=0.5")]).accepts_gzip());
        assert!(req(1, &[("Accept-Encoding", "x-gzip")]).accepts_gzip());
        assert!(req(
            1,
            &[("Accept-Encoding", "deflate"), ("Accept-Encoding", "gzip")]
        )
        .accepts_gzip());
        assert!(req(1, &[("Accept-Encoding", "*")]).accepts_gzip());
        assert!(!req(1, &[("Accept-Encoding", "gzip;q=0")]).accepts_gzip());
        assert!(!req(1, &[("Accept-Encoding", "gzip; q=0.000, *")]).accepts_gzip());
        assert!(!req(1, &[("Accept-Encoding", "*;q=0")]).accepts_gzip());
        assert!(!req(1, &[("Accept-Encoding", "identity")]).accepts_gzip());
        assert!(!req(1, &[("Accept-Encoding", "")]).accepts_gzip());
        assert!(!req(1, &[]).accepts_gzip());
        assert!(req(1, &[("Accept-Encoding", "gzip;q=0.001")]).accepts_gzip());
    }

    #[test]
    fn trim_and_list_items() {
        assert_eq!(trim_ows(b"  a b\t "), b"a b");
        assert_eq!(trim_ows(b" \t "), b"");
        assert_eq!(trim_ows(b""), b"");
        let items: Vec<&[u8]> = list_items(b" a, ,b ,, c").collect();
        assert_eq!(items, vec![&b"a"[..], b"b", b"c"]);
    }
}
