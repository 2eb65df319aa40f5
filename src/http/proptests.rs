//! Property tests of the decoder as a whole: for any valid request sequence (generated methods,
//! paths, queries, headers, Content-Length or chunked bodies, gzip or not, pipelined) and ANY split
//! of its bytes into pieces fed one after another, the decoded requests are identical to decoding
//! the bytes whole, and equal to what was generated. A second property mutates valid input into
//! mostly-invalid input and checks the outcome (requests and error) is still split-independent.

use std::io::Write;

use proptest::collection::vec;
use proptest::prelude::*;

use super::{BodyLimits, Decoder, HttpError, Limits, Method, Request};

/// One generated request and its wire form.
#[derive(Debug, Clone)]
struct Spec {
    method: &'static str,
    path: String,
    query: Option<String>,
    minor: u8,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    gzip: bool,
    /// `None`: Content-Length (or nothing when the body is empty and `omit_length`);
    /// `Some(sizes)`: chunked with these chunk sizes (cycled).
    chunks: Option<Vec<usize>>,
    omit_length: bool,
    close: bool,
}

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND",
];

/// Header names the generator must not produce (they change framing or are checked).
const RESERVED: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "content-encoding",
    "host",
    "connection",
    "expect",
];

fn gz(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        (
            prop::sample::select(METHODS),
            vec("[a-zA-Z0-9._~%-]{0,8}", 0..5),
            prop::option::of("[a-zA-Z0-9=&%/?]{0,16}"),
            0u8..=1,
        ),
        vec(
            ("[a-zA-Z][a-zA-Z0-9-]{0,12}", "[!-~]([ -~]{0,20}[!-~])?"),
            0..8,
        ),
        vec(any::<u8>(), 0..600),
        any::<bool>(),
        prop::option::of(vec(1usize..200, 1..6)),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |((method, segments, query, minor), headers, body, gzip, chunks, omit, close)| {
                let headers = headers
                    .into_iter()
                    .filter(|(n, _)| !RESERVED.contains(&n.to_ascii_lowercase().as_str()))
                    .collect();
                Spec {
                    method,
                    path: format!("/{}", segments.join("/")),
                    query,
                    // Chunked framing needs HTTP/1.1.
                    minor: if chunks.is_some() { 1 } else { minor },
                    headers,
                    body,
                    gzip,
                    chunks,
                    omit_length: omit,
                    close,
                }
            },
        )
}

impl Spec {
    fn wire(&self) -> Vec<u8> {
        let mut out = format!("{} {}", self.method, self.path).into_bytes();
        if let Some(q) = &self.query {
            out.push(b'?');
            out.extend_from_slice(q.as_bytes());
        }
        out.extend_from_slice(format!(" HTTP/1.{}\r\nHost: fleet:8220\r\n", self.minor).as_bytes());
        for (n, v) in &self.headers {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        let payload = if self.gzip {
            out.extend_from_slice(b"Content-Encoding: gzip\r\n");
            gz(&self.body)
        } else {
            self.body.clone()
        };
        match &self.chunks {
            None => {
                if !(payload.is_empty() && self.omit_length) {
                    out.extend_from_slice(
                        format!("Content-Length: {}\r\n", payload.len()).as_bytes(),
                    );
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&payload);
            }
            Some(sizes) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = &payload[..];
                let mut i = 0;
                while !rest.is_empty() {
                    let n = sizes[i % sizes.len()].min(rest.len());
                    let ext = if i % 2 == 0 { ";x=y" } else { "" };
                    out.extend_from_slice(format!("{n:X}{ext}\r\n").as_bytes());
                    out.extend_from_slice(&rest[..n]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                    i += 1;
                }
                out.extend_from_slice(b"0\r\n");
                if sizes.len() % 2 == 0 {
                    out.extend_from_slice(b"X-Checksum: abc\r\n");
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }

    fn check(&self, r: &Request) {
        assert_eq!(r.method, Method::from_token(self.method));
        assert_eq!(r.path, self.path);
        assert_eq!(r.query, self.query);
        assert_eq!(r.minor_version, self.minor);
        assert_eq!(r.body, self.body);
        assert_eq!(r.keep_alive, self.minor == 1 && !self.close);
        for (n, v) in &self.headers {
            assert!(r
                .header_values(n)
                .any(|got| got == v.trim_matches([' ', '\t']).as_bytes()));
        }
    }
}

fn limits(_: &Method, _: &str) -> BodyLimits {
    BodyLimits {
        max_body: 4096,
        max_decompressed: 4096,
        defer_gzip: false,
    }
}

type Outcome = (Vec<Request>, Option<HttpError>);

/// Feeds `pieces` one after another, decoding as far as possible after each.
fn run(pieces: &[&[u8]], head_limits: Limits) -> Outcome {
    let mut d = Decoder::new(head_limits);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match d.decode(&mut buf, &limits) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

/// Splits `bytes` at the given cut points (any values; reduced modulo the length and sorted).
fn split<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut at = 0;
    for c in cuts {
        pieces.push(&bytes[at..c]);
        at = c;
    }
    pieces.push(&bytes[at..]);
    pieces
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn any_split_decodes_like_whole(
        specs in vec(spec(), 1..4),
        separators in vec(any::<bool>(), 4),
        cuts in vec(any::<usize>(), 0..12),
        byte_at_a_time in any::<bool>(),
    ) {
        let mut bytes = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            if separators[i] {
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(&s.wire());
        }
        let whole = run(&[&bytes], Limits::default());
        prop_assert_eq!(&whole.1, &None);
        prop_assert_eq!(whole.0.len(), specs.len());
        for (s, r) in specs.iter().zip(&whole.0) {
            s.check(r);
        }
        let pieces: Vec<&[u8]> = if byte_at_a_time {
            bytes.chunks(1).collect()
        } else {
            split(&bytes, &cuts)
        };
        let parts = run(&pieces, Limits::default());
        prop_assert_eq!(parts, whole);
    }

    #[test]
    fn mutated_input_outcome_is_split_independent(
        s in spec(),
        flips in vec((any::<usize>(), any::<u8>()), 1..4),
        cuts in vec(any::<usize>(), 1..12),
        max_header_bytes in 16usize..300,
    ) {
        let mut bytes = s.wire();
        bytes.extend_from_slice(&s.wire());
        for (at, b) in flips {
            let len = bytes.len();
            bytes[at % len] = b;
        }
        let head_limits = Limits { max_header_bytes, max_headers: 6 };
        let whole = run(&[&bytes], head_limits);
        let parts = run(&split(&bytes, &cuts), head_limits);
        prop_assert_eq!(parts, whole);
    }
}

#[test]
fn a_route_deferring_gzip_gets_its_body_as_received() {
    use std::io::Write;
    let body = br#"{"status":"online"}"#;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(body).unwrap();
    let z = enc.finish().unwrap();
    let raw = |path: &str| {
        let mut raw = format!(
            "POST {path} HTTP/1.1\r\nHost: h\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            z.len()
        )
        .into_bytes();
        raw.extend_from_slice(&z);
        raw
    };
    let limits = |_: &Method, path: &str| BodyLimits {
        max_body: 1024,
        max_decompressed: 8,
        defer_gzip: path == "/deferred",
    };
    let decode = |raw: Vec<u8>| {
        let mut buf = raw;
        Decoder::new(Limits::default()).decode(&mut buf, &limits)
    };
    // Deferred: compressed as received, however far it expands (its consumer applies the cap).
    let deferred = decode(raw("/deferred")).unwrap().unwrap();
    assert_eq!(deferred.body, z);
    assert!(super::gzip_encoded(&deferred));
    // Not deferred: gunzipped here, within the cap.
    assert_eq!(
        decode(raw("/other")).unwrap_err(),
        HttpError::DecompressedTooLarge
    );
}
