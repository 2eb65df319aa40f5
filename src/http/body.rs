//! Request body framing and coding: how long the body is (`Content-Length`, `Transfer-Encoding:
//! chunked`, or none), which content coding it carries, and the incremental [`ChunkedDecoder`].
//!
//! Framing rules (RFC 9112 6): `Transfer-Encoding` other than exactly `chunked` → 501; both
//! `Content-Length` and `Transfer-Encoding`, or `Transfer-Encoding` in HTTP/1.0 → 400 (request
//! smuggling guard); several `Content-Length` lines must carry the same text (as Go's net/http).
//! Chunk framing is strict: every line ends in CRLF (a bare LF is refused, closing the
//! chunk-extension smuggling tricks), extensions are skipped, trailers are read and dropped.
//!
//! Neighbours: `decode.rs` drives these per request; `gzip.rs` decodes a gzip body afterwards.

use super::error::HttpError;
use super::request::{list_items, trim_ows, Request};

/// Longest chunk-size line (size, whitespace and extensions, without CRLF) accepted.
pub(crate) const MAX_CHUNK_LINE: usize = 4096;

/// How the body of one request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Neither `Content-Length` nor `Transfer-Encoding`: a request without body.
    Empty,
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// The request's content coding, decided from the first `Content-Encoding` line (as fleet-server
/// reads only the first line; the api layer may refuse duplicates itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    /// No coding, or `identity`.
    Identity,
    /// `gzip` (or its alias `x-gzip`).
    Gzip,
}

/// Decides the framing from the (lower-cased) headers of a request of version `1.minor`.
pub(crate) fn framing(minor: u8, headers: &[(String, Vec<u8>)]) -> Result<Framing, HttpError> {
    let mut te_lines = headers
        .iter()
        .filter(|(n, _)| n == "transfer-encoding")
        .peekable();
    let content_length = content_length(
        headers
            .iter()
            .filter(|(n, _)| n == "content-length")
            .map(|(_, v)| v.as_slice()),
    );
    if te_lines.peek().is_none() {
        return Ok(content_length?.map_or(Framing::Empty, Framing::Length));
    }
    let has_cl = headers.iter().any(|(n, _)| n == "content-length");
    if minor == 0 || has_cl {
        return Err(HttpError::AmbiguousFraming);
    }
    let mut codings = te_lines.flat_map(|(_, v)| list_items(v));
    match (codings.next(), codings.next()) {
        (Some(only), None) if only.eq_ignore_ascii_case(b"chunked") => Ok(Framing::Chunked),
        _ => Err(HttpError::UnsupportedTransferEncoding),
    }
}

/// The value of the `Content-Length` lines: `None` without any; every line must be the same
/// decimal text (Go compares the trimmed strings), digits only, fitting in `usize`.
fn content_length<'a>(
    mut values: impl Iterator<Item = &'a [u8]>,
) -> Result<Option<usize>, HttpError> {
    let Some(first) = values.next().map(trim_ows) else {
        return Ok(None);
    };
    if values.any(|v| trim_ows(v) != first) {
        return Err(HttpError::InvalidContentLength);
    }
    if first.is_empty() {
        return Err(HttpError::InvalidContentLength);
    }
    let mut n: usize = 0;
    for &b in first {
        if !b.is_ascii_digit() {
            return Err(HttpError::InvalidContentLength);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(b - b'0')))
            .ok_or(HttpError::InvalidContentLength)?;
    }
    Ok(Some(n))
}

/// Whether `req`'s body is announced as gzip (`Content-Encoding`, as the decoder reads it): of
/// a route that defers gzip (`BodyLimits::defer_gzip`), the body is then still compressed.
pub fn gzip_encoded(req: &Request) -> bool {
    matches!(coding(&req.headers), Ok(Coding::Gzip))
}

/// The content coding of the body, from the first `Content-Encoding` line.
pub(crate) fn coding(headers: &[(String, Vec<u8>)]) -> Result<Coding, HttpError> {
    let Some((_, value)) = headers.iter().find(|(n, _)| n == "content-encoding") else {
        return Ok(Coding::Identity);
    };
    let mut codings = list_items(value).filter(|c| !c.eq_ignore_ascii_case(b"identity"));
    match (codings.next(), codings.next()) {
        (None, _) => Ok(Coding::Identity),
        (Some(c), None) if c.eq_ignore_ascii_case(b"gzip") || c.eq_ignore_ascii_case(b"x-gzip") => {
            Ok(Coding::Gzip)
        }
        _ => Err(HttpError::UnsupportedContentEncoding),
    }
}

/// Where the chunked decoder is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex digits of a chunk size (`digits` so far, `value` so far).
    Size { value: usize, digits: usize },
    /// After the size: optional whitespace before `;` or CR.
    SizeWhitespace { value: usize },
    /// Inside a chunk extension, skipped up to CR.
    Extension { value: usize },
    /// After CR of the size line, expecting LF.
    SizeLf { value: usize },
    /// Inside chunk data, `remaining` bytes to go.
    Data { remaining: usize },
    /// After chunk data, expecting CR.
    DataCr,
    /// After chunk data and CR, expecting LF.
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    /// Inside a trailer field line, skipped up to CR.
    TrailerLine,
    /// After CR of a trailer field line, expecting LF.
    TrailerLf,
    /// After CR of the final empty line, expecting LF.
    EndLf,
    /// The body is complete.
    Done,
}

/// Incremental decoder of a chunked body. Feed it bytes in any split; it appends the chunk data to
/// the body and reports how many input bytes it consumed. It never consumes bytes past the end of
/// the body (they belong to the next pipelined request).
#[derive(Debug, Clone)]
pub(crate) struct ChunkedDecoder {
    state: State,
    /// Body bytes so far (chunk data only), checked against `max_body`.
    total: usize,
    max_body: usize,
    /// Bytes of the current size line, checked against [`MAX_CHUNK_LINE`].
    line: usize,
    /// Bytes of the trailer section so far, checked against `max_trailer`.
    trailer: usize,
    max_trailer: usize,
}

impl ChunkedDecoder {
    /// A decoder for one body of at most `max_body` data bytes (0 = unlimited) and a trailer
    /// section of at most `max_trailer` bytes.
    pub(crate) fn new(max_body: usize, max_trailer: usize) -> Self {
        ChunkedDecoder {
            state: State::Size {
                value: 0,
                digits: 0,
            },
            total: 0,
            max_body,
            line: 0,
            trailer: 0,
            max_trailer,
        }
    }

    /// True once the terminating empty line after the last chunk (and trailers) was read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes a prefix of `input`, appending chunk data to `body`. Returns the bytes consumed.
    pub(crate) fn feed(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<usize, HttpError> {
        let mut i = 0;
        while i < input.len() {
            if let State::Data { remaining } = self.state {
                let take = remaining.min(input.len() - i);
                let data = input
                    .get(i..i + take)
                    .ok_or(HttpError::BadChunkedEncoding("internal bounds"))?;
                body.extend_from_slice(data);
                i += take;
                self.state = if take == remaining {
                    State::DataCr
                } else {
                    State::Data {
                        remaining: remaining - take,
                    }
                };
                continue;
            }
            if self.state == State::Done {
                break;
            }
            let Some(&b) = input.get(i) else { break };
            i += 1;
            self.state = self.step(b)?;
        }
        Ok(i)
    }

    /// One byte of framing (every state but `Data` and `Done`).
    fn step(&mut self, b: u8) -> Result<State, HttpError> {
        use HttpError::BadChunkedEncoding as Bad;
        let state = match self.state {
            State::Size { value, digits } => {
                self.count_line()?;
                if let Some(d) = hex_digit(b) {
                    let value = value
                        .checked_mul(16)
                        .and_then(|v| v.checked_add(d))
                        .ok_or(Bad("chunk size overflow"))?;
                    return Ok(State::Size {
                        value,
                        digits: digits + 1,
                    });
                }
                if digits == 0 {
                    return Err(Bad("invalid chunk size"));
                }
                self.after_size(b, value)?
            }
            State::SizeWhitespace { value } => {
                self.count_line()?;
                self.after_size(b, value)?
            }
            State::Extension { value } => {
                self.count_line()?;
                match b {
                    b'\r' => State::SizeLf { value },
                    b'\n' => return Err(Bad("bare LF in chunk extension")),
                    _ => State::Extension { value },
                }
            }
            State::SizeLf { value } => {
                if b != b'\n' {
                    return Err(Bad("missing LF after chunk size"));
                }
                self.line = 0;
                if value == 0 {
                    State::TrailerStart
                } else {
                    let total = self
                        .total
                        .checked_add(value)
                        .ok_or(HttpError::BodyTooLarge)?;
                    if self.max_body != 0 && total > self.max_body {
                        return Err(HttpError::BodyTooLarge);
                    }
                    self.total = total;
                    State::Data { remaining: value }
                }
            }
            State::DataCr if b == b'\r' => State::DataLf,
            State::DataLf if b == b'\n' => State::Size {
                value: 0,
                digits: 0,
            },
            State::DataCr | State::DataLf => return Err(Bad("missing CRLF after chunk data")),
            State::TrailerStart => {
                self.count_trailer()?;
                match b {
                    b'\r' => State::EndLf,
                    b'\n' => return Err(Bad("bare LF in trailer")),
                    _ => State::TrailerLine,
                }
            }
            State::TrailerLine => {
                self.count_trailer()?;
                match b {
                    b'\r' => State::TrailerLf,
                    b'\n' => return Err(Bad("bare LF in trailer")),
                    _ => State::TrailerLine,
                }
            }
            State::TrailerLf if b == b'\n' => {
                self.count_trailer()?;
                State::TrailerStart
            }
            State::EndLf if b == b'\n' => State::Done,
            State::TrailerLf | State::EndLf => return Err(Bad("missing LF in trailer")),
            // Handled by `feed`; never stepped.
            State::Data { .. } | State::Done => return Err(Bad("internal state")),
        };
        Ok(state)
    }

    /// The byte after the size digits (or after whitespace that followed them).
    fn after_size(&self, b: u8, value: usize) -> Result<State, HttpError> {
        match b {
            b' ' | b'\t' => Ok(State::SizeWhitespace { value }),
            b';' => Ok(State::Extension { value }),
            b'\r' => Ok(State::SizeLf { value }),
            _ => Err(HttpError::BadChunkedEncoding("invalid chunk size")),
        }
    }

    fn count_line(&mut self) -> Result<(), HttpError> {
        self.line += 1;
        if self.line > MAX_CHUNK_LINE {
            return Err(HttpError::BadChunkedEncoding("chunk size line too long"));
        }
        Ok(())
    }

    fn count_trailer(&mut self) -> Result<(), HttpError> {
        self.trailer += 1;
        if self.trailer > self.max_trailer {
            return Err(HttpError::BadChunkedEncoding("trailer section too large"));
        }
        Ok(())
    }
}

fn hex_digit(b: u8) -> Option<usize> {
    match b {
        b'0'..=b'9' => Some(usize::from(b - b'0')),
        b'a'..=b'f' => Some(usize::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(usize::from(b - b'A' + 10)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
            .collect()
    }

    /// Decodes `input` whole: (body, consumed) or the error.
    fn dechunk(input: &[u8], max_body: usize) -> Result<(Vec<u8>, usize, bool), HttpError> {
        let mut d = ChunkedDecoder::new(max_body, 8192);
        let mut body = Vec::new();
        let n = d.feed(input, &mut body)?;
        Ok((body, n, d.is_done()))
    }

    #[test]
    fn framing_content_length() {
        assert_eq!(framing(1, &hs(&[])), Ok(Framing::Empty));
        assert_eq!(
            framing(1, &hs(&[("Content-Length", "42")])),
            Ok(Framing::Length(42))
        );
        assert_eq!(
            framing(0, &hs(&[("Content-Length", " 0 ")])),
            Ok(Framing::Length(0))
        );
        assert_eq!(
            framing(1, &hs(&[("Content-Length", "7"), ("Content-Length", "7")])),
            Ok(Framing::Length(7))
        );
        for bad in [
            &[("Content-Length", "7"), ("Content-Length", "8")][..],
            &[("Content-Length", "7"), ("Content-Length", "07")],
            &[("Content-Length", "-1")],
            &[("Content-Length", "+1")],
            &[("Content-Length", "1e3")],
            &[("Content-Length", "")],
            &[("Content-Length", "5, 5")],
            &[("Content-Length", "0x10")],
            &[("Content-Length", "99999999999999999999999999")],
        ] {
            assert_eq!(
                framing(1, &hs(bad)),
                Err(HttpError::InvalidContentLength),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn framing_transfer_encoding() {
        assert_eq!(
            framing(1, &hs(&[("Transfer-Encoding", "chunked")])),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            framing(1, &hs(&[("Transfer-Encoding", " Chunked ")])),
            Ok(Framing::Chunked)
        );
        for unsupported in ["gzip", "gzip, chunked", "chunked, chunked", "identity", ""] {
            assert_eq!(
                framing(1, &hs(&[("Transfer-Encoding", unsupported)])),
                Err(HttpError::UnsupportedTransferEncoding),
                "{unsupported}"
            );
        }
        assert_eq!(
            framing(
                1,
                &hs(&[
                    ("Transfer-Encoding", "gzip"),
                    ("Transfer-Encoding", "chunked")
                ])
            ),
            Err(HttpError::UnsupportedTransferEncoding)
        );
    }

    #[test]
    fn framing_smuggling_guards() {
        assert_eq!(
            framing(
                1,
                &hs(&[("Content-Length", "5"), ("Transfer-Encoding", "chunked")])
            ),
            Err(HttpError::AmbiguousFraming)
        );
        assert_eq!(
            framing(
                1,
                &hs(&[("Transfer-Encoding", "chunked"), ("Content-Length", "5")])
            ),
            Err(HttpError::AmbiguousFraming)
        );
        assert_eq!(
            framing(0, &hs(&[("Transfer-Encoding", "chunked")])),
            Err(HttpError::AmbiguousFraming)
        );
    }

    #[test]
    fn coding_rules() {
        assert_eq!(coding(&hs(&[])), Ok(Coding::Identity));
        assert_eq!(
            coding(&hs(&[("Content-Encoding", "identity")])),
            Ok(Coding::Identity)
        );
        assert_eq!(
            coding(&hs(&[("Content-Encoding", "")])),
            Ok(Coding::Identity)
        );
        assert_eq!(
            coding(&hs(&[("Content-Encoding", "gzip")])),
            Ok(Coding::Gzip)
        );
        assert_eq!(
            coding(&hs(&[("Content-Encoding", "GZip")])),
            Ok(Coding::Gzip)
        );
        assert_eq!(
            coding(&hs(&[("Content-Encoding", "x-gzip")])),
            Ok(Coding::Gzip)
        );
        assert_eq!(
            coding(&hs(&[("Content-Encoding", "identity, gzip")])),
            Ok(Coding::Gzip)
        );
        // Only the first line counts (fleet-server reads the first line).
        assert_eq!(
            coding(&hs(&[
                ("Content-Encoding", "gzip"),
                ("Content-Encoding", "br")
            ])),
            Ok(Coding::Gzip)
        );
        for bad in ["br", "deflate", "gzip, gzip", "compress"] {
            assert_eq!(
                coding(&hs(&[("Content-Encoding", bad)])),
                Err(HttpError::UnsupportedContentEncoding),
                "{bad}"
            );
        }
    }

    #[test]
    fn chunked_basic_with_extensions_and_trailers() {
        let input = b"4\r\nWiki\r\n5;name=value;x=\"q\"\r\npedia\r\nE \r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\nX-T: 1\r\n\r\nNEXT";
        let (body, n, done) = dechunk(input, 0).unwrap();
        assert!(done);
        assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(&input[n..], b"NEXT");
    }

    #[test]
    fn chunked_hex_sizes_upper_lower_leading_zeros() {
        let mut input = b"000A\r\n0123456789\r\na\r\nabcdefghij\r\n00\r\n\r\n".to_vec();
        let (body, n, done) = dechunk(&input, 0).unwrap();
        assert!(done);
        assert_eq!(n, input.len());
        assert_eq!(body.len(), 20);
        input.truncate(input.len() - 1);
        let (_, _, done) = dechunk(&input, 0).unwrap();
        assert!(!done);
    }

    #[test]
    fn chunked_bad_framing_is_400() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b";ext\r\n",
            b"4\nWiki\r\n0\r\n\r\n",
            b"4\r\nWikiX\r\n",
            b"4\r\nWiki\n0\r\n\r\n",
            b"4 x\r\n",
            b"4;ext\nWiki",
            b"4\rX",
            b"0\r\nX-T: 1\n\r\n",
            b"0\r\n\n",
            b"0\r\n\rX",
            b"ffffffffffffffffffffffff\r\n",
        ] {
            let err = dechunk(bad, 0).unwrap_err();
            assert!(
                matches!(err, HttpError::BadChunkedEncoding(_)),
                "{bad:?} -> {err:?}"
            );
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn chunked_size_line_and_trailer_limits() {
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE));
        assert_eq!(
            dechunk(&long, 0).unwrap_err(),
            HttpError::BadChunkedEncoding("chunk size line too long")
        );
        let mut d = ChunkedDecoder::new(0, 10);
        let err = d
            .feed(b"0\r\nX-Long-Trailer: 1\r\n\r\n", &mut Vec::new())
            .unwrap_err();
        assert_eq!(
            err,
            HttpError::BadChunkedEncoding("trailer section too large")
        );
    }

    #[test]
    fn chunked_body_limit_rejects_on_size_line() {
        // The second chunk's size line alone pushes the total over: rejected before its data.
        assert_eq!(
            dechunk(b"5\r\nhello\r\n6\r\n", 10).unwrap_err(),
            HttpError::BodyTooLarge
        );
        let (body, _, done) = dechunk(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 10).unwrap();
        assert!(done);
        assert_eq!(body, b"helloworld");
    }

    #[test]
    fn chunked_byte_by_byte_equals_whole() {
        let input = b"3;a=b\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n";
        let (whole, _, _) = dechunk(input, 0).unwrap();
        let mut d = ChunkedDecoder::new(0, 8192);
        let mut body = Vec::new();
        for b in input.iter() {
            assert_eq!(d.feed(std::slice::from_ref(b), &mut body).unwrap(), 1);
        }
        assert!(d.is_done());
        assert_eq!(body, whole);
        assert_eq!(d.feed(b"more", &mut body).unwrap(), 0);
    }
}
