//! Blocking HTTP/1.1 framing for the stand-in: request head parsing with httparse, bodies by
//! Content-Length or chunked encoding, gzip request bodies, keep-alive, `Expect: 100-continue`,
//! and response writing (every response carries `X-elastic-product: Elasticsearch`; gzip when the
//! client accepts it and compression is on, as ES's `http.compression`).

use crate::util;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use std::collections::HashMap;
use std::io::{self, BufRead, Read, Write};

/// Maximum request head size.
const MAX_HEAD: usize = 64 * 1024;
/// Maximum body size (ES `http.max_content_length` default 100mb).
pub const MAX_BODY: usize = 100 * 1024 * 1024;

/// A parsed request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Method, upper case.
    pub method: String,
    /// Raw path (without query), percent-encoded as sent.
    pub path: String,
    /// Decoded query parameters (last value wins).
    pub query: HashMap<String, String>,
    /// Headers (name lower-cased).
    pub headers: Vec<(String, String)>,
    /// Body (decompressed).
    pub body: Vec<u8>,
}

impl Request {
    /// First header value by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Decoded path segments.
    pub fn segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| util::percent_decode(s, false))
            .collect()
    }

    /// Query flag: present with empty value or `true`.
    pub fn flag(&self, name: &str) -> bool {
        matches!(
            self.query.get(name).map(String::as_str),
            Some("") | Some("true")
        )
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Content type.
    pub content_type: &'static str,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, v: &serde_json::Value) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: serde_json::to_vec(v).unwrap_or_default(),
            content_type: "application/json",
        }
    }

    /// An empty response (HEAD-style answers).
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            content_type: "application/json",
        }
    }

    /// A plain text response.
    pub fn text(status: u16, s: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: s.as_bytes().to_vec(),
            content_type: "text/plain; charset=UTF-8",
        }
    }
}

/// Framing failures.
#[derive(Debug)]
pub enum ReadError {
    /// Clean end of stream before a request started.
    Closed,
    /// I/O failure.
    Io(io::Error),
    /// Malformed request: answer 400 and close.
    Bad(String),
    /// Body too large: answer 413 and close.
    TooLarge,
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        ReadError::Io(e)
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Request Entity Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Reads one request (answers `100 Continue` on the stream when the client expects it).
pub fn read_request<S: BufRead + Write>(s: &mut S) -> Result<Request, ReadError> {
    let mut head = Vec::new();
    loop {
        let budget = (MAX_HEAD + 1).saturating_sub(head.len()) as u64;
        let n = Read::take(&mut *s, budget).read_until(b'\n', &mut head)?;
        if n == 0 {
            return if head.is_empty() {
                Err(ReadError::Closed)
            } else {
                Err(ReadError::Bad("truncated head".into()))
            };
        }
        if head == b"\r\n" || head == b"\n" {
            head.clear(); // tolerate stray CRLF between requests
            continue;
        }
        if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
            break;
        }
        if head.len() > MAX_HEAD {
            return Err(ReadError::Bad("request head too large".into()));
        }
    }
    let mut hbuf = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut hbuf);
    match req.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(ReadError::Bad("malformed request head".into())),
    }
    let method = req.method.unwrap_or("GET").to_ascii_uppercase();
    let target = req.path.unwrap_or("/");
    let (path, qs) = target.split_once('?').unwrap_or((target, ""));
    let mut query = HashMap::new();
    for pair in qs.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query.insert(util::percent_decode(k, true), util::percent_decode(v, true));
    }
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let mut r = Request {
        method,
        path: path.to_string(),
        query,
        headers,
        body: Vec::new(),
    };
    if r.header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        s.flush()?;
    }
    let chunked = r
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut line = String::new();
            if s.read_line(&mut line)? == 0 {
                return Err(ReadError::Bad("truncated chunk".into()));
            }
            let size_str = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_str, 16)
                .map_err(|_| ReadError::Bad("bad chunk size".into()))?;
            if size == 0 {
                loop {
                    let mut t = String::new();
                    if s.read_line(&mut t)? == 0 || t == "\r\n" || t == "\n" {
                        break;
                    }
                }
                break;
            }
            if body.len().saturating_add(size) > MAX_BODY {
                return Err(ReadError::TooLarge);
            }
            let start = body.len();
            body.resize(start + size, 0);
            s.read_exact(&mut body[start..])?;
            let mut crlf = String::new();
            s.read_line(&mut crlf)?;
        }
    } else if let Some(cl) = r.header("content-length") {
        let n: usize = cl
            .parse()
            .map_err(|_| ReadError::Bad("bad content-length".into()))?;
        if n > MAX_BODY {
            return Err(ReadError::TooLarge);
        }
        body.resize(n, 0);
        s.read_exact(&mut body)?;
    }
    if r.header("content-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"))
        && !body.is_empty()
    {
        let mut out = Vec::new();
        GzDecoder::new(&body[..])
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|_| ReadError::Bad("bad gzip body".into()))?;
        if out.len() > MAX_BODY {
            return Err(ReadError::TooLarge);
        }
        body = out;
    }
    r.body = body;
    Ok(r)
}

/// Writes a response. `head_only` for HEAD requests; `gzip` compresses the body.
pub fn write_response<W: Write>(
    w: &mut W,
    resp: &Response,
    head_only: bool,
    gzip: bool,
    close: bool,
) -> io::Result<()> {
    let mut body = resp.body.clone();
    let mut extra = String::new();
    if gzip && !body.is_empty() && !head_only {
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&body)?;
        body = enc.finish()?;
        extra.push_str("content-encoding: gzip\r\nvary: accept-encoding\r\n");
    }
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nX-elastic-product: Elasticsearch\r\ncontent-type: {}\r\ncontent-length: {}\r\n{}",
        resp.status,
        reason(resp.status),
        resp.content_type,
        body.len(),
        extra
    );
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(&body);
    }
    w.write_all(&out)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor};

    struct Duplex {
        r: BufReader<Cursor<Vec<u8>>>,
        w: Vec<u8>,
    }
    impl Read for Duplex {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.r.read(b)
        }
    }
    impl BufRead for Duplex {
        fn fill_buf(&mut self) -> io::Result<&[u8]> {
            self.r.fill_buf()
        }
        fn consume(&mut self, n: usize) {
            self.r.consume(n)
        }
    }
    impl Write for Duplex {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.w.write(b)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn duplex(s: &[u8]) -> Duplex {
        Duplex {
            r: BufReader::new(Cursor::new(s.to_vec())),
            w: Vec::new(),
        }
    }

    #[test]
    fn parses_content_length_and_query() {
        let mut d = duplex(b"POST /.fleet-agents/_search?size=5&q=a%2Cb HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
        let r = read_request(&mut d).unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.segments(), vec![".fleet-agents", "_search"]);
        assert_eq!(r.query["q"], "a,b");
        assert_eq!(r.body, b"{}");
        assert!(matches!(read_request(&mut d), Err(ReadError::Closed)));
    }

    #[test]
    fn parses_chunked_and_continue() {
        let mut d = duplex(b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n");
        let r = read_request(&mut d).unwrap();
        assert_eq!(r.body, b"abc");
        assert!(d.w.starts_with(b"HTTP/1.1 100 Continue"));
    }

    #[test]
    fn rejects_garbage() {
        let mut d = duplex(b"\x00\x01garbage\r\n\r\n");
        assert!(matches!(read_request(&mut d), Err(ReadError::Bad(_))));
    }

    #[test]
    fn writes_product_header() {
        let mut out = Vec::new();
        write_response(
            &mut out,
            &Response::json(200, &serde_json::json!({})),
            false,
            false,
            false,
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("X-elastic-product: Elasticsearch\r\n"));
        assert!(s.ends_with("\r\n\r\n{}"));
    }
}
