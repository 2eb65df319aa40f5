//! The request head: finding its end in the read buffer, checking the request line early, and
//! turning httparse's view of a complete head into a [`Request`] without body (method, target split
//! into path and query, version, lower-cased headers, keep-alive, the `Host` rules).
//!
//! Neighbours: `decode.rs` drives these functions and owns the limits; `request.rs` defines the
//! output type.

use super::error::HttpError;
use super::request::{keep_alive, trim_ows, Method, Request};

/// How many bytes of empty lines (`\r\n` or `\n`) start `buf`. A trailing lone `\r` is kept: it
/// may be the start of `\r\n` or an error, which the next bytes decide.
pub(crate) fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match (buf.get(i), buf.get(i + 1)) {
            (Some(b'\n'), _) => i += 1,
            (Some(b'\r'), Some(b'\n')) => i += 2,
            _ => return i,
        }
    }
}

/// The request line at the front of `window` (through its LF, if present) and whether it is
/// complete.
pub(crate) fn request_line(window: &[u8]) -> (&[u8], bool) {
    match window.iter().position(|&b| b == b'\n') {
        Some(lf) => (window.get(..=lf).unwrap_or_default(), true),
        None => (window, false),
    }
}

/// The end (exclusive) of the first `LF [CR] LF` in `window` at or after `from`: the end of the
/// header block.
pub(crate) fn find_head_end(window: &[u8], from: usize) -> Option<usize> {
    let tail = window.get(from..)?;
    let mut offset = from;
    let mut rest = tail;
    while let Some(lf) = rest.iter().position(|&b| b == b'\n') {
        let at = offset + lf;
        match (window.get(at + 1), window.get(at + 2)) {
            (Some(b'\n'), _) => return Some(at + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(at + 3),
            _ => {}
        }
        offset = at + 1;
        rest = window.get(offset..)?;
    }
    None
}

/// Parses a complete head. `Ok(None)` if httparse still wants more (not the end after all).
pub(crate) fn parse_head(
    head: &[u8],
    max_headers: usize,
) -> Result<Option<(Request, usize)>, HttpError> {
    let mut slots = vec![httparse::EMPTY_HEADER; max_headers];
    let mut parsed = httparse::Request::new(&mut slots);
    let used = match parsed.parse(head) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(map_parse_error(e)),
    };
    let (Some(method), Some(target), Some(minor_version)) =
        (parsed.method, parsed.path, parsed.version)
    else {
        return Err(HttpError::Malformed("incomplete request line"));
    };
    let headers: Vec<(String, Vec<u8>)> = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), trim_ows(h.value).to_vec()))
        .collect();
    let hosts = headers.iter().filter(|(n, _)| n == "host").count();
    if hosts > 1 {
        return Err(HttpError::Malformed("too many Host headers"));
    }
    if hosts == 0 && minor_version == 1 {
        return Err(HttpError::Malformed("missing required Host header"));
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (target.to_owned(), None),
    };
    let request = Request {
        method: Method::from_token(method),
        path,
        query,
        minor_version,
        keep_alive: keep_alive(minor_version, &headers),
        headers,
        body: Vec::new(),
        // The connection knows its transport and peer and sets these.
        tls: false,
        peer: None,
    };
    Ok(Some((request, used)))
}

pub(crate) fn map_parse_error(e: httparse::Error) -> HttpError {
    match e {
        httparse::Error::Version => HttpError::UnsupportedVersion,
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        httparse::Error::HeaderName => HttpError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HttpError::Malformed("invalid header value"),
        httparse::Error::NewLine => HttpError::Malformed("invalid line ending"),
        httparse::Error::Token | httparse::Error::Status => {
            HttpError::Malformed("invalid request line")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{BodyLimits, Decoder, Limits};

    fn unlimited(_: &Method, _: &str) -> BodyLimits {
        BodyLimits::default()
    }

    fn one(bytes: &[u8]) -> Result<Request, HttpError> {
        let mut buf = bytes.to_vec();
        let r = Decoder::new(Limits::default()).decode(&mut buf, &unlimited)?;
        Ok(r.expect("a complete request"))
    }

    fn err(bytes: &[u8]) -> HttpError {
        let mut buf = bytes.to_vec();
        Decoder::new(Limits::default())
            .decode(&mut buf, &unlimited)
            .expect_err("an error")
    }

    #[test]
    fn empty_lines_before_the_request_line() {
        assert_eq!(leading_empty_lines(b""), 0);
        assert_eq!(leading_empty_lines(b"\r\n\n\r\nGET"), 5);
        assert_eq!(leading_empty_lines(b"\r"), 0);
        assert_eq!(leading_empty_lines(b"\n\r"), 1);
        assert_eq!(leading_empty_lines(b"\rX"), 0);
    }

    #[test]
    fn head_end_is_found_across_resumed_scans() {
        let head = b"GET / HTTP/1.1\r\nHost: h\r\n\r\nBODY";
        assert_eq!(find_head_end(head, 0), Some(head.len() - 4));
        // Resuming two bytes before the previous end still finds a terminator split across reads.
        assert_eq!(find_head_end(head, head.len() - 7), Some(head.len() - 4));
        assert_eq!(find_head_end(b"A\nB\n\n", 0), Some(5));
        assert_eq!(find_head_end(b"A\r\nB\r\n\r", 0), None);
        assert_eq!(find_head_end(b"abc", 10), None);
    }

    #[test]
    fn request_line_prefix() {
        assert_eq!(request_line(b"GET / HT"), (&b"GET / HT"[..], false));
        assert_eq!(
            request_line(b"GET / HTTP/1.1\r\nHost"),
            (&b"GET / HTTP/1.1\r\n"[..], true)
        );
    }

    #[test]
    fn host_rules() {
        assert_eq!(
            err(b"GET / HTTP/1.1\r\n\r\n"),
            HttpError::Malformed("missing required Host header")
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            HttpError::Malformed("too many Host headers")
        );
        assert!(one(b"GET / HTTP/1.0\r\n\r\n").is_ok());
    }

    #[test]
    fn versions() {
        assert_eq!(
            err(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            HttpError::UnsupportedVersion
        );
        assert_eq!(HttpError::UnsupportedVersion.status(), 505);
        assert_eq!(
            err(b"GET / HTTP/1.2\r\nHost: h\r\n\r\n"),
            HttpError::UnsupportedVersion
        );
        assert_eq!(err(b"GET / HTTP/3\r\n"), HttpError::UnsupportedVersion);
        // The preface is refused as soon as its request line is complete.
        let mut d = Decoder::new(Limits::default());
        let mut buf = b"PRI * HTTP/2.0\r\n".to_vec();
        assert_eq!(
            d.decode(&mut buf, &unlimited),
            Err(HttpError::UnsupportedVersion)
        );
    }

    #[test]
    fn garbage_is_refused_without_waiting_for_a_full_head() {
        // A TLS ClientHello sent to a plain-HTTP port.
        let mut d = Decoder::new(Limits::default());
        let mut buf = vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01];
        assert_eq!(
            d.decode(&mut buf, &unlimited),
            Err(HttpError::Malformed("invalid request line"))
        );
        assert!(matches!(err(b"GET /\r\n\r\n"), HttpError::Malformed(_)));
        assert!(matches!(err(b"\rX"), HttpError::Malformed(_)));
        assert!(matches!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n"),
            HttpError::Malformed(_)
        ));
    }

    #[test]
    fn bare_lf_heads_are_accepted() {
        let r = one(b"GET /x HTTP/1.1\nHost: h\n\n").unwrap();
        assert_eq!(r.path, "/x");
        let r = one(b"GET /x HTTP/1.1\nHost: h\n\r\n").unwrap();
        assert_eq!(r.path, "/x");
    }

    #[test]
    fn methods_and_other_tokens() {
        let r = one(b"PROPFIND / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(r.method, Method::Other("PROPFIND".into()));
        let r = one(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(r.method, Method::Head);
    }
}
