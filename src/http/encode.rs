//! The response side: [`Response`] (status, headers, [`Body`]), its constructors, and
//! [`encode_response`], which appends the HTTP/1.1 wire form to a caller-owned buffer (adding
//! `Content-Length`, `Connection: close`, and gzip when the client accepts it).
//!
//! Neighbours: error bodies are built by `error.rs` ([`super::error_response`]); the gzip compressor
//! lives in `gzip.rs`. The encoder never reads the clock: the `Date` header it writes is the
//! caller's [`EncodeOptions::date`], kept per second by the event loop (`date.rs`).

use std::borrow::Cow;
use std::sync::Arc;

use super::date::HttpDate;
use super::error::error_response;
use super::gzip;

/// A response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// A body owned by this response.
    Bytes(Vec<u8>),
    /// A body shared between many responses (one serialized policy sent to many agents).
    Shared(Arc<[u8]>),
    /// A body whose gzip form was put together in advance (a POLICY_CHANGE from parts
    /// compressed once per revision, [`super::gzip::Gzip`]): sent where the encoder would have
    /// compressed `raw`, and `raw` otherwise.
    Precompressed {
        /// The body.
        raw: Vec<u8>,
        /// `raw` gzipped.
        gzip: Vec<u8>,
    },
    /// A byte range of an open file. The encoder writes only its `Content-Length`; the connection
    /// streams the bytes from the file as the socket drains (never reading it whole), and sends
    /// none for `HEAD`. Never gzipped.
    File(FileBody),
    /// Bytes fetched part by part from a store (file chunks in Elasticsearch): the encoder writes
    /// only the `Content-Length`; the connection asks for the next part only once the socket
    /// took the previous one, so it holds at most one part. Never gzipped.
    Parts(PartsBody),
}

/// The open file and byte range of a [`Body::File`].
#[derive(Debug, Clone)]
pub struct FileBody {
    /// The file, read with positional reads (no shared cursor).
    pub file: Arc<std::fs::File>,
    /// First byte sent.
    pub offset: u64,
    /// Bytes sent from `offset`: the response's `Content-Length`.
    pub len: u64,
}

impl PartialEq for FileBody {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.file, &other.file) && self.offset == other.offset && self.len == other.len
    }
}

impl Eq for FileBody {}

/// The parts of a [`Body::Parts`], in order; their `take`s add up to the `Content-Length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartsBody {
    /// The parts still to send, first first.
    pub parts: std::collections::VecDeque<BodyPart>,
}

impl PartsBody {
    /// Bytes the parts add up to.
    pub fn len(&self) -> u64 {
        self.parts.iter().map(|p| p.take).sum()
    }

    /// No bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One part of a [`Body::Parts`]: where the store finds it (opaque here) and which of its
/// bytes are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyPart {
    /// The store's name for the part (a chunk document, say).
    pub locator: String,
    /// Bytes of the part skipped before the first one sent.
    pub skip: u64,
    /// Bytes sent.
    pub take: u64,
}

impl Body {
    /// The body's bytes (none for a streamed body, whose bytes are not in memory).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Empty | Body::File(_) | Body::Parts(_) => &[],
            Body::Bytes(b) | Body::Precompressed { raw: b, .. } => b,
            Body::Shared(b) => b,
        }
    }

    /// The length of a streamed body ([`Body::File`], [`Body::Parts`]).
    pub fn streamed_len(&self) -> Option<u64> {
        match self {
            Body::File(f) => Some(f.len),
            Body::Parts(p) => Some(p.len()),
            _ => None,
        }
    }
}

/// A response: status, headers in the order they are written, body.
///
/// The encoder owns the framing headers: a `Content-Length` or `Transfer-Encoding` set here is
/// ignored, and `Connection` is replaced by `Connection: close` when the connection is closing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Header names (as written on the wire) and values, in order.
    pub headers: Vec<(Cow<'static, str>, String)>,
    /// The body (before any gzip applied by the encoder).
    pub body: Body,
}

impl Response {
    /// An empty response with `status` and no headers.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    /// `value` serialized compactly, `Content-Type: application/json`. If serialization fails (it
    /// cannot for a `serde_json::Value`), the spec's 500 "Fleet server unable to marshall JSON".
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Response {
                status,
                headers: vec![("Content-Type".into(), "application/json".to_owned())],
                body: Body::Bytes(body),
            },
            Err(e) => error_response(500, &e.to_string(), "Fleet server unable to marshall JSON"),
        }
    }

    /// `text` with `Content-Type: text/plain; charset=utf-8`.
    pub fn text(status: u16, text: &str) -> Self {
        Response {
            status,
            headers: vec![(
                "Content-Type".into(),
                "text/plain; charset=utf-8".to_owned(),
            )],
            body: Body::Bytes(text.as_bytes().to_vec()),
        }
    }

    /// Appends a header (duplicates are kept, in order).
    pub fn with_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body's bytes (before any gzip applied by the encoder).
    pub fn body_bytes(&self) -> &[u8] {
        self.body.as_bytes()
    }
}

/// How to encode one response; derived from the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// The request's `Accept-Encoding` allows gzip ([`super::Request::accepts_gzip`]) and response
    /// compression is enabled (`server.compression_level` ≠ 0).
    pub accepts_gzip: bool,
    /// Bodies strictly larger than this are gzipped (spec `server.compression_threshold`, 1024).
    pub gzip_threshold: usize,
    /// The request was `HEAD`: headers as for GET (uncompressed length), no body.
    pub head_request: bool,
    /// Keep the connection open; when false the encoder writes `Connection: close`.
    pub keep_alive: bool,
    /// The `Date` header to write (RFC 9110 §6.6.1), unless the response has its own.
    pub date: Option<HttpDate>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            accepts_gzip: false,
            gzip_threshold: 1024,
            head_request: false,
            keep_alive: true,
            date: None,
        }
    }
}

/// Appends status line, headers (adds `Date` when given, `Content-Length`; `Connection: close` when !keep_alive; when
/// accepts_gzip and the body is larger than gzip_threshold and not already encoded: gzips it at level
/// 1, `Content-Encoding: gzip`, `Vary: Accept-Encoding`), and the body (none for HEAD / 204 / 304) to
/// `out`.
///
/// An HTTP/1.0 client that asked for keep-alive needs `Connection: keep-alive` in the answer; the
/// encoder does not know the request version, so the caller adds that header itself.
pub fn encode_response(resp: &Response, opts: &EncodeOptions, out: &mut Vec<u8>) {
    let raw = resp.body_bytes();
    // 1xx, 204 and 304 carry neither body nor Content-Length (RFC 9110 8.6, 15.3.5, 15.4.5).
    let bodiless_status = resp.status == 204 || resp.status == 304 || resp.status < 200;
    let already_encoded = resp.header("content-encoding").is_some();
    let compress = opts.accepts_gzip
        && !opts.head_request
        && !bodiless_status
        && !already_encoded
        && resp.body.streamed_len().is_none()
        && raw.len() > opts.gzip_threshold;
    let compressed = match &resp.body {
        _ if !compress => None,
        Body::Precompressed { gzip, .. } => Some(Cow::Borrowed(gzip.as_slice())),
        _ => gzip::compress(raw).map(Cow::Owned),
    };
    let body: &[u8] = compressed.as_deref().unwrap_or(raw);

    out.reserve(128 + 40 * resp.headers.len() + if opts.head_request { 0 } else { body.len() });
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(resp.status.to_string().as_bytes());
    out.push(b' ');
    match reason_phrase(resp.status) {
        Some(reason) => out.extend_from_slice(reason.as_bytes()),
        // Go's net/http writes "status code N" for codes it has no text for (e.g. 499).
        None => {
            out.extend_from_slice(b"status code ");
            out.extend_from_slice(resp.status.to_string().as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");

    for (name, value) in &resp.headers {
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
            || (!opts.keep_alive && name.eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        push_header(out, name, value);
    }
    if let Some(date) = opts.date.filter(|_| resp.header("date").is_none()) {
        push_header(out, "Date", date.as_str());
    }
    if compressed.is_some() {
        push_header(out, "Content-Encoding", "gzip");
        push_header(out, "Vary", "Accept-Encoding");
    }
    if !bodiless_status {
        let len = resp.body.streamed_len().unwrap_or(body.len() as u64);
        push_header(out, "Content-Length", &len.to_string());
    }
    if !opts.keep_alive {
        push_header(out, "Connection", "close");
    }
    out.extend_from_slice(b"\r\n");
    if !opts.head_request && !bodiless_status {
        out.extend_from_slice(body);
    }
}

/// Writes one header line. CR and LF in names or values would split the header (response
/// splitting); they are replaced by spaces, so no caller mistake can inject a header.
fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    push_sanitized(out, name);
    out.extend_from_slice(b": ");
    push_sanitized(out, value);
    out.extend_from_slice(b"\r\n");
}

fn push_sanitized(out: &mut Vec<u8>, s: &str) {
    out.extend(
        s.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

/// The reason phrase Go's `http.StatusText` gives for `status`, for the codes this server sends.
fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Entity",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Parses encoder output back: (status, reason, headers, body after the head).
    fn parse(out: &[u8]) -> (u16, String, Vec<(String, String)>, Vec<u8>) {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let n = match resp.parse(out).unwrap() {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("incomplete head"),
        };
        let hs = resp
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8(h.value.to_vec()).unwrap(),
                )
            })
            .collect();
        (
            resp.code.unwrap(),
            resp.reason.unwrap().to_owned(),
            hs,
            out[n..].to_vec(),
        )
    }

    fn find<'a>(hs: &'a [(String, String)], name: &str) -> Option<&'a str> {
        hs.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn opts() -> EncodeOptions {
        EncodeOptions::default()
    }

    #[test]
    fn json_response_round_trips() {
        let resp = Response::json(
            200,
            &serde_json::json!({"name":"fleet-server","status":"HEALTHY"}),
        )
        .with_header("X-Request-Id", "abc");
        let mut out = Vec::new();
        encode_response(&resp, &opts(), &mut out);
        let (status, reason, hs, body) = parse(&out);
        assert_eq!((status, reason.as_str()), (200, "OK"));
        assert_eq!(find(&hs, "content-type"), Some("application/json"));
        assert_eq!(find(&hs, "x-request-id"), Some("abc"));
        assert_eq!(
            find(&hs, "content-length"),
            Some(body.len().to_string().as_str())
        );
        assert_eq!(find(&hs, "connection"), None);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["status"], "HEALTHY");
    }

    #[test]
    fn text_response_and_close() {
        let resp = Response::text(429, "Server capacity exceeded.");
        let mut out = Vec::new();
        let o = EncodeOptions {
            keep_alive: false,
            ..opts()
        };
        encode_response(&resp, &o, &mut out);
        let (status, reason, hs, body) = parse(&out);
        assert_eq!((status, reason.as_str()), (429, "Too Many Requests"));
        assert_eq!(find(&hs, "content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(find(&hs, "connection"), Some("close"));
        assert_eq!(body, b"Server capacity exceeded.");
    }

    #[test]
    fn caller_framing_headers_are_replaced() {
        let resp = Response::text(200, "hi")
            .with_header("Content-Length", "999")
            .with_header("Transfer-Encoding", "chunked")
            .with_header("Connection", "keep-alive");
        let mut out = Vec::new();
        encode_response(
            &resp,
            &EncodeOptions {
                keep_alive: false,
                ..opts()
            },
            &mut out,
        );
        let (_, _, hs, body) = parse(&out);
        let count = |n: &str| hs.iter().filter(|(h, _)| h.eq_ignore_ascii_case(n)).count();
        assert_eq!(count("content-length"), 1);
        assert_eq!(find(&hs, "content-length"), Some("2"));
        assert_eq!(count("transfer-encoding"), 0);
        assert_eq!(count("connection"), 1);
        assert_eq!(find(&hs, "connection"), Some("close"));
        assert_eq!(body, b"hi");
    }

    #[test]
    fn date_is_written_when_given_and_never_doubled() {
        let date = HttpDate::from_unix_seconds(1_796_275_853);
        let with_date = EncodeOptions {
            date: Some(date),
            ..opts()
        };
        for resp in [
            Response::json(200, &serde_json::json!({})),
            Response::text(404, "404 page not found\n"),
            Response::new(204),
        ] {
            let mut out = Vec::new();
            encode_response(&resp, &with_date, &mut out);
            let (_, _, hs, _) = parse(&out);
            assert_eq!(find(&hs, "date"), Some("Thu, 03 Dec 2026 05:30:53 GMT"));
        }
        let mut out = Vec::new();
        encode_response(&Response::new(200), &opts(), &mut out);
        assert_eq!(
            find(&parse(&out).2, "date"),
            None,
            "no date given, none written"
        );
        let own = Response::new(200).with_header("Date", "Mon, 01 Mar 2100 00:00:00 GMT");
        let mut out = Vec::new();
        encode_response(&own, &with_date, &mut out);
        let hs = parse(&out).2;
        assert_eq!(hs.iter().filter(|(n, _)| n == "Date").count(), 1);
        assert_eq!(find(&hs, "date"), Some("Mon, 01 Mar 2100 00:00:00 GMT"));
    }

    #[test]
    fn keep_alive_keeps_caller_connection_header() {
        let resp = Response::new(200).with_header("Connection", "keep-alive");
        let mut out = Vec::new();
        encode_response(&resp, &opts(), &mut out);
        let (_, _, hs, _) = parse(&out);
        assert_eq!(find(&hs, "connection"), Some("keep-alive"));
    }

    fn big_json() -> serde_json::Value {
        let items: Vec<_> = (0..200)
            .map(|i| serde_json::json!({"id": i, "type": "POLICY_CHANGE"}))
            .collect();
        serde_json::json!({ "actions": items })
    }

    #[test]
    fn gzip_applied_above_threshold_when_accepted() {
        let resp = Response::json(200, &big_json());
        let raw = resp.body_bytes().to_vec();
        assert!(raw.len() > 1024);
        let mut out = Vec::new();
        encode_response(
            &resp,
            &EncodeOptions {
                accepts_gzip: true,
                ..opts()
            },
            &mut out,
        );
        let (_, _, hs, body) = parse(&out);
        assert_eq!(find(&hs, "content-encoding"), Some("gzip"));
        assert_eq!(find(&hs, "vary"), Some("Accept-Encoding"));
        assert_eq!(
            find(&hs, "content-length"),
            Some(body.len().to_string().as_str())
        );
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, raw);
    }

    #[test]
    fn a_precompressed_body_is_sent_gzipped_only_where_it_would_be_compressed() {
        let raw = vec![b'a'; 2000];
        let gzip = vec![1, 2, 3];
        let resp = Response::new(200).with_body(Body::Precompressed {
            raw: raw.clone(),
            gzip: gzip.clone(),
        });
        let encode = |accepts_gzip, head_request| {
            let mut out = Vec::new();
            let opts = EncodeOptions {
                accepts_gzip,
                head_request,
                ..EncodeOptions::default()
            };
            encode_response(&resp, &opts, &mut out);
            out
        };
        let gzipped = encode(true, false);
        assert!(gzipped.ends_with(b"\r\n\r\n\x01\x02\x03"));
        let text = String::from_utf8_lossy(&gzipped).to_lowercase();
        assert!(text.contains("content-encoding: gzip\r\n"), "{text}");
        assert!(text.contains("content-length: 3\r\n"), "{text}");
        let plain = encode(false, false);
        assert!(plain.ends_with(&raw));
        assert!(!String::from_utf8_lossy(&plain)
            .to_lowercase()
            .contains("content-encoding"));
    }

    #[test]
    fn no_gzip_when_not_accepted_small_or_already_encoded() {
        let big = Response::json(200, &big_json());
        let small = Response::text(200, "small");
        let encoded = Response::new(200)
            .with_header("Content-Encoding", "br")
            .with_body(Body::Bytes(vec![7; 4096]));
        for (resp, accepts) in [(&big, false), (&small, true), (&encoded, true)] {
            let mut out = Vec::new();
            encode_response(
                resp,
                &EncodeOptions {
                    accepts_gzip: accepts,
                    ..opts()
                },
                &mut out,
            );
            let (_, _, hs, body) = parse(&out);
            assert_ne!(find(&hs, "content-encoding"), Some("gzip"));
            assert_eq!(find(&hs, "vary"), None);
            assert_eq!(body, resp.body_bytes());
        }
    }

    #[test]
    fn threshold_is_strictly_greater() {
        let resp = Response::new(200).with_body(Body::Bytes(vec![b'a'; 1024]));
        let mut out = Vec::new();
        encode_response(
            &resp,
            &EncodeOptions {
                accepts_gzip: true,
                ..opts()
            },
            &mut out,
        );
        let (_, _, hs, _) = parse(&out);
        assert_eq!(find(&hs, "content-encoding"), None);
    }

    #[test]
    fn shared_body_is_sent() {
        let shared: Arc<[u8]> = Arc::from(&b"{\"policy\":1}"[..]);
        let resp = Response::new(200).with_body(Body::Shared(shared.clone()));
        let mut out = Vec::new();
        encode_response(&resp, &opts(), &mut out);
        let (_, _, hs, body) = parse(&out);
        assert_eq!(body, &shared[..]);
        assert_eq!(find(&hs, "content-length"), Some("12"));
    }

    #[test]
    fn file_body_announces_its_range_length_and_writes_no_bytes_nor_gzip() {
        let file = std::sync::Arc::new(std::fs::File::open("Cargo.toml").unwrap());
        let resp = Response::new(206).with_body(Body::File(FileBody {
            file,
            offset: 10,
            len: 5000,
        }));
        let mut out = Vec::new();
        let opts = EncodeOptions {
            accepts_gzip: true,
            ..opts()
        };
        encode_response(&resp, &opts, &mut out);
        let (status, _, headers, body) = parse(&out);
        assert_eq!(status, 206);
        assert_eq!(find(&headers, "content-length"), Some("5000"));
        assert_eq!(find(&headers, "content-encoding"), None);
        assert!(body.is_empty(), "the connection streams the file itself");
    }

    #[test]
    fn head_has_length_but_no_body_and_no_gzip() {
        let resp = Response::json(200, &big_json());
        let mut out = Vec::new();
        encode_response(
            &resp,
            &EncodeOptions {
                head_request: true,
                accepts_gzip: true,
                ..opts()
            },
            &mut out,
        );
        let (_, _, hs, body) = parse(&out);
        assert!(body.is_empty());
        assert_eq!(find(&hs, "content-encoding"), None);
        assert_eq!(
            find(&hs, "content-length"),
            Some(resp.body_bytes().len().to_string().as_str())
        );
    }

    #[test]
    fn no_body_no_length_for_204_and_304() {
        for status in [204, 304] {
            let resp = Response::new(status).with_body(Body::Bytes(b"ignored".to_vec()));
            let mut out = Vec::new();
            encode_response(&resp, &opts(), &mut out);
            let (code, _, hs, body) = parse(&out);
            assert_eq!(code, status);
            assert!(body.is_empty());
            assert_eq!(find(&hs, "content-length"), None);
        }
    }

    #[test]
    fn unknown_status_uses_go_text() {
        let mut out = Vec::new();
        encode_response(&Response::new(499), &opts(), &mut out);
        assert!(out.starts_with(b"HTTP/1.1 499 status code 499\r\n"));
    }

    #[test]
    fn header_injection_is_neutralised() {
        let resp = Response::new(200).with_header("X-A", "v\r\nSet-Cookie: x=1");
        let mut out = Vec::new();
        encode_response(&resp, &opts(), &mut out);
        let (_, _, hs, _) = parse(&out);
        assert_eq!(find(&hs, "set-cookie"), None);
        assert_eq!(find(&hs, "x-a"), Some("v  Set-Cookie: x=1"));
    }

    #[test]
    fn appends_to_existing_buffer() {
        let mut out = b"previous".to_vec();
        encode_response(&Response::new(200), &opts(), &mut out);
        assert!(out.starts_with(b"previousHTTP/1.1 200 OK\r\n"));
        assert!(out.ends_with(b"Content-Length: 0\r\n\r\n"));
    }
}
