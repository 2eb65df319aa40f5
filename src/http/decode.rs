//! The incremental request decoder: [`Decoder`] turns bytes from the front of the connection's read
//! buffer into complete [`Request`]s, one at a time, whatever the split of the bytes across reads.
//!
//! The head is parsed by httparse, but only once its end (an empty line) has arrived, and only
//! within the first `max_header_bytes` bytes: a peer streaming endless headers is cut off at the
//! limit, never buffered past it. While the request line is still incomplete it is checked on every
//! call, so garbage (a TLS ClientHello on a plain port, the HTTP/2 preface) is refused at once
//! instead of waiting for a header timeout. The partial head stays in the caller's buffer; the
//! decoder keeps only how far it has scanned. Body bytes move into the decoder's own buffer as
//! they arrive; gzip decoding happens once the body is complete.
//!
//! Every decision is a function of the byte prefix seen so far, which is what makes the result
//! independent of how the bytes are split (checked by the proptest in `proptests.rs`).
//!
//! Neighbours: `body.rs` (framing, chunked), `gzip.rs` (capped gunzip), `request.rs` (the output
//! types and limits), `error.rs` (what every refusal becomes on the wire).

use super::body::{self, ChunkedDecoder, Coding, Framing};
use super::error::HttpError;
use super::gzip;
use super::head::{find_head_end, leading_empty_lines, map_parse_error, parse_head, request_line};
use super::request::{trim_ows, BodyLimits, Limits, Method, Request};

/// What to write when [`Decoder::take_expect_continue`] says so (RFC 9110 10.1.1).
pub const CONTINUE_RESPONSE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Body bytes reserved up front for a `Content-Length` body; more grows as data arrives, so a
/// large announced length costs nothing until the bytes are actually sent.
const INITIAL_BODY_RESERVE: usize = 64 * 1024;

/// Incremental HTTP/1.1 request decoder for one connection. See the module docs.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    state: State,
    expect_continue: bool,
    /// The path of the request the last error refused, when its head was decoded.
    failed_path: Option<String>,
    /// Capacity of the last gunzip output buffer (for the gzip-bomb test).
    #[cfg(test)]
    pub(crate) last_gunzip_capacity: usize,
}

#[derive(Debug)]
enum State {
    /// Waiting for a complete head. The head's bytes stay in the caller's buffer.
    Head {
        /// Where to resume looking for the end of the head.
        scan_from: usize,
        /// The request line is complete and valid.
        line_ok: bool,
        /// The last call left bytes of a started request in the buffer.
        pending: bool,
    },
    /// Head decoded; collecting the body.
    Body(Box<InProgress>),
}

impl State {
    fn fresh(pending: bool) -> State {
        State::Head {
            scan_from: 0,
            line_ok: false,
            pending,
        }
    }
}

/// A request whose head is decoded and whose body is still arriving.
#[derive(Debug)]
struct InProgress {
    request: Request,
    reader: BodyReader,
    coding: Coding,
    max_decompressed: usize,
    defer_gzip: bool,
}

#[derive(Debug)]
enum BodyReader {
    Length { remaining: usize },
    Chunked(ChunkedDecoder),
}

impl Decoder {
    /// A decoder applying `limits` to every request head.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            state: State::fresh(false),
            expect_continue: false,
            failed_path: None,
            #[cfg(test)]
            last_gunzip_capacity: 0,
        }
    }

    /// Consumes bytes from the FRONT of `buf` (drains what it used; leftover bytes of a pipelined
    /// next request stay in buf). Ok(Some(request)) when one full request is decoded, Ok(None) when
    /// more bytes are needed. `body_limits` is called once per request, as soon as the head is
    /// complete, with the method and path, so limits can be per route. Any split of the same bytes
    /// across calls gives the same result. After an Err the connection is to be closed (the caller
    /// answers err.to_response()).
    ///
    /// A head that is still incomplete stays in `buf` (it is drained once complete), so the caller
    /// must keep `buf`'s content between calls and only append to it.
    pub fn decode(
        &mut self,
        buf: &mut Vec<u8>,
        body_limits: &dyn Fn(&Method, &str) -> BodyLimits,
    ) -> Result<Option<Request>, HttpError> {
        let result = self.decode_inner(buf, body_limits);
        if result.is_err() {
            if let State::Body(in_progress) = &self.state {
                self.failed_path = Some(in_progress.request.path.clone());
            }
            self.state = State::fresh(false);
            self.expect_continue = false;
        }
        result
    }

    /// True when no partial request is pending: no body in progress and the last call left no
    /// bytes of a started head in the buffer (i.e. the connection is between requests).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head { pending: false, .. })
    }

    /// The path of the request the last error refused, when its head had been decoded (so a
    /// route can answer its own way, e.g. OpAMP's 413 for a body above its cap).
    pub fn failed_path(&self) -> Option<&str> {
        self.failed_path.as_deref()
    }

    /// True when the head is complete and the body is still arriving.
    pub fn in_body(&self) -> bool {
        matches!(self.state, State::Body(_))
    }

    /// True (once) when the head just decoded carried `Expect: 100-continue` on HTTP/1.1 and its
    /// body has not fully arrived: the caller should write [`CONTINUE_RESPONSE`] before waiting
    /// for the body (curl sends this for large bodies; real agents never do).
    pub fn take_expect_continue(&mut self) -> bool {
        std::mem::take(&mut self.expect_continue)
    }

    fn decode_inner(
        &mut self,
        buf: &mut Vec<u8>,
        body_limits: &dyn Fn(&Method, &str) -> BodyLimits,
    ) -> Result<Option<Request>, HttpError> {
        if matches!(self.state, State::Head { .. }) {
            let Some(in_progress) = self.decode_head(buf, body_limits)? else {
                return Ok(None);
            };
            self.state = State::Body(Box::new(in_progress));
        }
        self.decode_body(buf)
    }

    /// Looks for a complete head at the front of `buf`; on success drains it and returns the
    /// request with its body still to come.
    fn decode_head(
        &mut self,
        buf: &mut Vec<u8>,
        body_limits: &dyn Fn(&Method, &str) -> BodyLimits,
    ) -> Result<Option<InProgress>, HttpError> {
        let State::Head {
            scan_from,
            line_ok,
            pending,
        } = &mut self.state
        else {
            return Ok(None);
        };
        // Empty lines before a request line are ignored (RFC 9112 2.2); drop them from the buffer
        // so they count towards no limit and leave the decoder idle.
        let empty = leading_empty_lines(buf);
        if empty > 0 {
            buf.drain(..empty);
            *scan_from = 0;
            *line_ok = false;
        }
        if buf.is_empty() {
            *scan_from = 0;
            *line_ok = false;
            *pending = false;
            return Ok(None);
        }
        if *scan_from > buf.len() {
            // The caller replaced the buffer: start over.
            *scan_from = 0;
            *line_ok = false;
        }
        let max = self.limits.max_header_bytes;
        let window = buf.get(..buf.len().min(max)).unwrap_or_default();

        if !*line_ok {
            let (line, complete) = request_line(window);
            let mut no_headers = [];
            if let Err(e) = httparse::Request::new(&mut no_headers).parse(line) {
                return Err(map_parse_error(e));
            }
            *line_ok = complete;
        }

        loop {
            let Some(end) = find_head_end(window, *scan_from) else {
                if buf.len() >= max {
                    return Err(HttpError::HeadersTooLarge);
                }
                *scan_from = window.len().saturating_sub(2);
                *pending = !buf.is_empty();
                return Ok(None);
            };
            let head = window.get(..end).unwrap_or_default();
            match parse_head(head, self.limits.max_headers)? {
                Some((request, used)) => {
                    buf.drain(..used);
                    return self.begin_body(request, body_limits).map(Some);
                }
                // Not the end of the head after all; keep scanning after it.
                None => *scan_from = end,
            }
        }
    }

    /// Applies the framing, coding and per-route limits to a decoded head.
    fn begin_body(
        &mut self,
        request: Request,
        body_limits: &dyn Fn(&Method, &str) -> BodyLimits,
    ) -> Result<InProgress, HttpError> {
        let limits = body_limits(&request.method, &request.path);
        let framing = body::framing(request.minor_version, &request.headers)?;
        let coding = body::coding(&request.headers)?;
        let reader = match framing {
            Framing::Empty => BodyReader::Length { remaining: 0 },
            Framing::Length(n) => {
                if limits.max_body != 0 && n > limits.max_body {
                    self.failed_path = Some(request.path.clone());
                    return Err(HttpError::BodyTooLarge);
                }
                BodyReader::Length { remaining: n }
            }
            Framing::Chunked => BodyReader::Chunked(ChunkedDecoder::new(
                limits.max_body,
                self.limits.max_header_bytes,
            )),
        };
        self.expect_continue = request.minor_version == 1
            && framing != Framing::Empty
            && framing != Framing::Length(0)
            && request
                .header("expect")
                .is_some_and(|v| trim_ows(v).eq_ignore_ascii_case(b"100-continue"));
        let mut request = request;
        if let Framing::Length(n) = framing {
            request.body.reserve_exact(n.min(INITIAL_BODY_RESERVE));
        }
        Ok(InProgress {
            request,
            reader,
            coding,
            max_decompressed: limits.max_decompressed,
            defer_gzip: limits.defer_gzip,
        })
    }

    /// Moves body bytes from `buf` into the request; returns it once complete.
    fn decode_body(&mut self, buf: &mut Vec<u8>) -> Result<Option<Request>, HttpError> {
        let State::Body(in_progress) = &mut self.state else {
            return Ok(None);
        };
        let InProgress {
            request, reader, ..
        } = in_progress.as_mut();
        let complete = match reader {
            BodyReader::Length { remaining } => {
                let take = (*remaining).min(buf.len());
                reserve_within(&mut request.body, take, *remaining);
                request
                    .body
                    .extend_from_slice(buf.get(..take).unwrap_or_default());
                buf.drain(..take);
                *remaining -= take;
                *remaining == 0
            }
            BodyReader::Chunked(chunked) => {
                let used = chunked.feed(buf, &mut request.body)?;
                buf.drain(..used.min(buf.len()));
                chunked.is_done()
            }
        };
        if !complete {
            return Ok(None);
        }
        self.expect_continue = false;
        let State::Body(done) = std::mem::replace(&mut self.state, State::fresh(!buf.is_empty()))
        else {
            return Ok(None);
        };
        let InProgress {
            mut request,
            coding,
            max_decompressed,
            defer_gzip,
            ..
        } = *done;
        if coding == Coding::Gzip && !request.body.is_empty() && !defer_gzip {
            let mut plain = Vec::new();
            let result = gzip::decompress_into(&request.body, max_decompressed, &mut plain);
            #[cfg(test)]
            {
                self.last_gunzip_capacity = plain.capacity();
            }
            result?;
            request.body = plain;
        }
        Ok(Some(request))
    }
}

/// Makes room for `take` more bytes in a body that will grow by exactly `remaining` more (`take <=
/// remaining`): geometric growth, but never a capacity past the announced length, so a
/// `Content-Length` body never holds more memory than its length.
fn reserve_within(body: &mut Vec<u8>, take: usize, remaining: usize) {
    let needed = body.len().saturating_add(take);
    if needed <= body.capacity() {
        return;
    }
    let final_len = body.len().saturating_add(remaining);
    let target = needed.max(body.capacity().saturating_mul(2).min(final_len));
    body.reserve_exact(target - body.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::io::Write;

    fn unlimited(_: &Method, _: &str) -> BodyLimits {
        BodyLimits::default()
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// Decodes everything in `bytes` with `limits`, collecting requests until the buffer is used up.
    fn decode_all_with(
        bytes: &[u8],
        limits: Limits,
        body_limits: &dyn Fn(&Method, &str) -> BodyLimits,
    ) -> (Vec<Request>, Result<(), HttpError>, Vec<u8>) {
        let mut d = Decoder::new(limits);
        let mut buf = bytes.to_vec();
        let mut out = Vec::new();
        loop {
            match d.decode(&mut buf, body_limits) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => return (out, Ok(()), buf),
                Err(e) => return (out, Err(e), buf),
            }
        }
    }

    fn one(bytes: &[u8]) -> Result<Request, HttpError> {
        let (mut reqs, res, _) = decode_all_with(bytes, Limits::default(), &unlimited);
        res?;
        assert_eq!(reqs.len(), 1, "expected exactly one request");
        Ok(reqs.remove(0))
    }

    fn err(bytes: &[u8]) -> HttpError {
        decode_all_with(bytes, Limits::default(), &unlimited)
            .1
            .unwrap_err()
    }

    #[test]
    fn get_without_body() {
        let r = one(b"GET /api/status?x=1&y HTTP/1.1\r\nHost: a\r\nX-Dup: 1\r\nUser-Agent: t\r\nx-dup: 2\r\n\r\n")
            .unwrap();
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.path, "/api/status");
        assert_eq!(r.query.as_deref(), Some("x=1&y"));
        assert_eq!(r.minor_version, 1);
        assert!(r.body.is_empty());
        assert!(r.keep_alive);
        let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["host", "x-dup", "user-agent", "x-dup"]);
        assert_eq!(r.header("X-DUP"), Some(&b"1"[..]));
        assert_eq!(r.header_count("x-dup"), 2);
    }

    #[test]
    fn bare_question_mark_is_empty_query_and_no_query_is_none() {
        let r = one(
            b"POST /api/fleet/agents/enroll? HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}",
        )
        .unwrap();
        assert_eq!(r.path, "/api/fleet/agents/enroll");
        assert_eq!(r.query.as_deref(), Some(""));
        assert_eq!(r.body, b"{}");
        let r = one(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(r.query, None);
    }

    #[test]
    fn content_length_body_any_split() {
        let raw = b"POST /api/fleet/agents/x/acks? HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world";
        let whole = one(raw).unwrap();
        assert_eq!(whole.body, b"hello world");
        for cut in 0..raw.len() {
            let mut d = Decoder::new(Limits::default());
            let mut buf = raw[..cut].to_vec();
            assert_eq!(d.decode(&mut buf, &unlimited), Ok(None), "cut {cut}");
            buf.extend_from_slice(&raw[cut..]);
            assert_eq!(
                d.decode(&mut buf, &unlimited).unwrap(),
                Some(whole_clone(&whole))
            );
            assert!(buf.is_empty());
        }
    }

    fn whole_clone(r: &Request) -> Request {
        Request {
            tls: r.tls,
            peer: r.peer,
            method: r.method.clone(),
            path: r.path.clone(),
            query: r.query.clone(),
            minor_version: r.minor_version,
            headers: r.headers.clone(),
            body: r.body.clone(),
            keep_alive: r.keep_alive,
        }
    }

    #[test]
    fn byte_at_a_time_chunked_gzip() {
        let body = br#"{"status":"online","message":"Running"}"#;
        let z = gz(body);
        let mut raw = b"POST /api/fleet/agents/a/checkin? HTTP/1.1\r\nHost: h\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for piece in z.chunks(7) {
            raw.extend_from_slice(format!("{:x};ext=1\r\n", piece.len()).as_bytes());
            raw.extend_from_slice(piece);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
        let mut d = Decoder::new(Limits::default());
        let mut buf = Vec::new();
        let mut got = None;
        for (i, b) in raw.iter().enumerate() {
            buf.push(*b);
            let r = d.decode(&mut buf, &unlimited).unwrap();
            if i + 1 < raw.len() {
                assert!(r.is_none());
            } else {
                got = r;
            }
        }
        let r = got.unwrap();
        assert_eq!(r.body, body);
        assert!(buf.is_empty());
        assert!(d.is_idle());
    }

    #[test]
    fn content_length_body_capacity_never_exceeds_its_length() {
        let n = 100_000;
        let mut d = Decoder::new(Limits::default());
        let mut buf =
            format!("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {n}\r\n\r\n").into_bytes();
        assert_eq!(d.decode(&mut buf, &unlimited), Ok(None));
        let mut sent = 0;
        let r = loop {
            buf.extend(std::iter::repeat_n(b'x', 1000));
            sent += 1000;
            if let Some(r) = d.decode(&mut buf, &unlimited).unwrap() {
                break r;
            }
            assert!(sent < n);
        };
        assert_eq!(r.body.len(), n);
        assert_eq!(r.body.capacity(), n);
    }

    #[test]
    fn pipelined_requests_in_one_buffer() {
        let raw = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\r\nPOST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\nGET /d HT";
        let mut d = Decoder::new(Limits::default());
        let mut buf = raw.to_vec();
        let a = d.decode(&mut buf, &unlimited).unwrap().unwrap();
        assert_eq!(a.path, "/a");
        assert!(!d.is_idle(), "next request already started");
        let b = d.decode(&mut buf, &unlimited).unwrap().unwrap();
        assert_eq!((b.path.as_str(), b.body.as_slice()), ("/b", &b"abc"[..]));
        // The stray CRLF between requests is tolerated.
        let c = d.decode(&mut buf, &unlimited).unwrap().unwrap();
        assert_eq!((c.path.as_str(), c.body.as_slice()), ("/c", &b"z"[..]));
        assert_eq!(d.decode(&mut buf, &unlimited), Ok(None));
        assert_eq!(
            buf, b"GET /d HT",
            "partial next head stays in the caller's buffer"
        );
        assert!(!d.is_idle());
    }

    #[test]
    fn is_idle_tracks_partial_requests() {
        let mut d = Decoder::new(Limits::default());
        assert!(d.is_idle());
        let mut buf = b"\r\n".to_vec();
        assert_eq!(d.decode(&mut buf, &unlimited), Ok(None));
        assert!(d.is_idle() && buf.is_empty(), "empty lines are dropped");
        buf.extend_from_slice(b"POST / HTTP/1.1\r\nHost: h\r\n");
        assert_eq!(d.decode(&mut buf, &unlimited), Ok(None));
        assert!(!d.is_idle());
        buf.extend_from_slice(b"Content-Length: 4\r\n\r\nab");
        assert_eq!(d.decode(&mut buf, &unlimited), Ok(None));
        assert!(!d.is_idle());
        assert!(buf.is_empty(), "body bytes move into the decoder");
        buf.extend_from_slice(b"cd");
        assert!(d.decode(&mut buf, &unlimited).unwrap().is_some());
        assert!(d.is_idle());
    }

    #[test]
    fn keep_alive_by_version_and_connection_header() {
        let ka = |raw: &[u8]| one(raw).unwrap().keep_alive;
        assert!(ka(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert!(!ka(
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        ));
        assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        let r = one(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(r.minor_version, 0);
    }

    #[test]
    fn header_block_limit_counts_through_blank_line() {
        let limits = Limits {
            max_header_bytes: 64,
            max_headers: 8,
        };
        let head = |len: usize| {
            let base = b"GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n".len();
            let mut s = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
            s.extend(std::iter::repeat_n(b'a', len - base));
            s.extend_from_slice(b"\r\n\r\n");
            assert_eq!(s.len(), len);
            s
        };
        let (reqs, res, _) = decode_all_with(&head(64), limits, &unlimited);
        assert_eq!((reqs.len(), res), (1, Ok(())));
        let (reqs, res, _) = decode_all_with(&head(65), limits, &unlimited);
        assert_eq!((reqs.len(), res), (0, Err(HttpError::HeadersTooLarge)));
    }

    #[test]
    fn endless_headers_are_cut_off_at_the_limit() {
        let limits = Limits {
            max_header_bytes: 1024,
            max_headers: 64,
        };
        let mut d = Decoder::new(limits);
        let mut buf = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        let mut fed = buf.len();
        loop {
            match d.decode(&mut buf, &unlimited) {
                Ok(None) => {
                    assert!(buf.len() < 1024);
                    buf.extend_from_slice(b"X-Endless: aaaaaaaaaa\r\n");
                    fed += 23;
                }
                Ok(Some(_)) => panic!("no request expected"),
                Err(e) => {
                    assert_eq!(e, HttpError::HeadersTooLarge);
                    assert_eq!(e.status(), 431);
                    break;
                }
            }
            assert!(fed < 1024 + 23 + 1, "not cut off at the limit");
        }
    }

    #[test]
    fn too_many_headers() {
        let limits = Limits {
            max_header_bytes: 8192,
            max_headers: 4,
        };
        let ok = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(decode_all_with(ok, limits, &unlimited).0.len(), 1);
        let bad = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
        let e = decode_all_with(bad, limits, &unlimited).1.unwrap_err();
        assert_eq!(e, HttpError::TooManyHeaders);
        assert_eq!(e.status(), 431);
    }

    #[test]
    fn content_length_errors() {
        assert_eq!(
            err(
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
            ),
            HttpError::InvalidContentLength
        );
        let same =
            one(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc")
                .unwrap();
        assert_eq!(same.body, b"abc");
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3a\r\n\r\n"),
            HttpError::InvalidContentLength
        );
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 184467440737095516160\r\n\r\n"),
            HttpError::InvalidContentLength
        );
    }

    #[test]
    fn body_limit_rejects_before_the_body_arrives() {
        let seen = RefCell::new(Vec::new());
        let limits = |m: &Method, p: &str| {
            seen.borrow_mut().push((m.clone(), p.to_owned()));
            BodyLimits {
                max_body: 10,
                max_decompressed: 0,
                defer_gzip: false,
            }
        };
        let mut d = Decoder::new(Limits::default());
        let mut buf =
            b"POST /api/fleet/agents/x/checkin?q HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"
                .to_vec();
        assert_eq!(d.decode(&mut buf, &limits), Err(HttpError::BodyTooLarge));
        assert_eq!(
            *seen.borrow(),
            vec![(Method::Post, "/api/fleet/agents/x/checkin".to_owned())]
        );
        // At the limit is fine; body_limits is called once per request.
        seen.borrow_mut().clear();
        let mut d = Decoder::new(Limits::default());
        let mut buf = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01234".to_vec();
        assert_eq!(d.decode(&mut buf, &limits), Ok(None));
        buf.extend_from_slice(b"56789");
        assert!(d.decode(&mut buf, &limits).unwrap().is_some());
        assert_eq!(seen.borrow().len(), 1);
        let e = HttpError::BodyTooLarge.to_response();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn chunked_body_limit() {
        let limits = |_: &Method, _: &str| BodyLimits {
            max_body: 4,
            max_decompressed: 0,
            defer_gzip: false,
        };
        let raw =
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\n";
        let (_, res, _) = decode_all_with(raw, Limits::default(), &limits);
        assert_eq!(res, Err(HttpError::BodyTooLarge));
    }

    #[test]
    fn transfer_encoding_errors() {
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            HttpError::UnsupportedTransferEncoding
        );
        assert_eq!(HttpError::UnsupportedTransferEncoding.status(), 501);
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            HttpError::AmbiguousFraming
        );
        assert_eq!(
            err(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            HttpError::AmbiguousFraming
        );
        assert!(matches!(
            err(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            HttpError::BadChunkedEncoding(_)
        ));
    }

    #[test]
    fn gzip_bodies() {
        let body = br#"{"status":"online"}"#;
        let z = gz(body);
        let mut raw = format!(
            "POST /c HTTP/1.1\r\nHost: h\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            z.len()
        )
        .into_bytes();
        raw.extend_from_slice(&z);
        let r = one(&raw).unwrap();
        assert_eq!(r.body, body);
        assert_eq!(r.header_str("content-encoding"), Some("gzip"));

        // Identity and absent encodings pass the body through.
        let r = one(b"POST /c HTTP/1.1\r\nHost: h\r\nContent-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!(r.body, b"{}");

        // Not gzip although announced.
        assert_eq!(
            err(b"POST /c HTTP/1.1\r\nHost: h\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}"),
            HttpError::BadGzip
        );
        // Unknown coding refused at the head, before the body.
        assert_eq!(
            err(
                b"POST /c HTTP/1.1\r\nHost: h\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n"
            ),
            HttpError::UnsupportedContentEncoding
        );
        // An empty gzip body is an empty body.
        let r = one(b"GET /c HTTP/1.1\r\nHost: h\r\nContent-Encoding: gzip\r\n\r\n").unwrap();
        assert!(r.body.is_empty());
    }

    #[test]
    fn gzip_bomb_through_the_decoder_stays_under_the_cap() {
        let bomb = gz(&vec![0u8; 10 * 1024 * 1024]);
        let cap = 1024 * 1024;
        let limits = move |_: &Method, _: &str| BodyLimits {
            max_body: 1024 * 1024,
            max_decompressed: cap,
            defer_gzip: false,
        };
        let mut raw = format!(
            "POST /c HTTP/1.1\r\nHost: h\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            bomb.len()
        )
        .into_bytes();
        raw.extend_from_slice(&bomb);
        let mut d = Decoder::new(Limits::default());
        let mut buf = raw;
        assert_eq!(
            d.decode(&mut buf, &limits),
            Err(HttpError::DecompressedTooLarge)
        );
        assert!(d.last_gunzip_capacity > 0);
        assert!(
            d.last_gunzip_capacity <= cap,
            "gunzip buffer grew to {}",
            d.last_gunzip_capacity
        );
        // Under a bigger cap the same body decodes.
        let roomy = |_: &Method, _: &str| BodyLimits::default();
        let mut buf = format!(
            "POST /c HTTP/1.1\r\nHost: h\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            bomb.len()
        )
        .into_bytes();
        buf.extend_from_slice(&bomb);
        let r = Decoder::new(Limits::default())
            .decode(&mut buf, &roomy)
            .unwrap()
            .unwrap();
        assert_eq!(r.body.len(), 10 * 1024 * 1024);
    }

    #[test]
    fn expect_continue_is_reported_once() {
        let mut d = Decoder::new(Limits::default());
        let mut buf =
            b"PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
                .to_vec();
        assert_eq!(d.decode(&mut buf, &unlimited), Ok(None));
        assert!(d.take_expect_continue());
        assert!(!d.take_expect_continue());
        buf.extend_from_slice(b"ok");
        assert!(d.decode(&mut buf, &unlimited).unwrap().is_some());
        assert!(!d.take_expect_continue());
        assert_eq!(CONTINUE_RESPONSE, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn decoder_is_reset_after_an_error() {
        let mut d = Decoder::new(Limits::default());
        let mut buf = b"GET / HTTP/9.9\r\n".to_vec();
        assert!(d.decode(&mut buf, &unlimited).is_err());
        assert!(d.is_idle());
        let mut buf = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n".to_vec();
        assert!(d.decode(&mut buf, &unlimited).unwrap().is_some());
    }
}
