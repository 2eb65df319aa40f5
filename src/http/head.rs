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
