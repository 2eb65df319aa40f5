//! `HttpError`, every reason the decoder refuses a request, and its ONE mapping to the wire
//! ([`HttpError::status`] and [`HttpError::to_response`]); plus [`error_response`], the only builder
//! of the spec's JSON error body (fleet-protocol.md 1.7). The api layer builds its own errors with
//! [`error_response`] too, so every error body of the server has the same shape.
//!
//! Neighbours: the decoder that produces these errors is in `decode.rs` / `body.rs` / `gzip.rs`;
//! [`Response`] and the encoder are in `encode.rs`.

use super::encode::{Body, Response};

/// Why a request was refused before it reached routing. After any of these the connection is to be
/// closed: the caller encodes [`HttpError::to_response`] with `keep_alive: false`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The header block (request line up to and including the blank line) exceeds
    /// `Limits::max_header_bytes`, or has not ended by then. 431.
    #[error("request header block too large")]
    HeadersTooLarge,
    /// More header lines than `Limits::max_headers`. 431.
    #[error("too many request header fields")]
    TooManyHeaders,
    /// The request line or a header line is not valid HTTP/1.x syntax (or a framing rule such as a
    /// missing `Host` is broken); the text says what. 400.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// A `Content-Length` that is not a plain decimal number, overflows, or appears several times
    /// with different values. 400.
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// Both `Content-Length` and `Transfer-Encoding`, or `Transfer-Encoding` on an HTTP/1.0
    /// request: the framing is ambiguous (request smuggling guard). 400.
    #[error("ambiguous message framing")]
    AmbiguousFraming,
    /// The chunked body framing is broken (bad hex size, missing CRLF, over-long size line or
    /// trailer section); the text says what. 400.
    #[error("invalid chunked encoding: {0}")]
    BadChunkedEncoding(&'static str),
    /// The body as received (before decompression) is larger than `BodyLimits::max_body`. 400, as
    /// fleet-server answers on checkin/ack/enroll/audit (spec 1.7 last rows).
    #[error("request body too large")]
    BodyTooLarge,
    /// The gunzipped body would exceed `BodyLimits::max_decompressed`. 400.
    #[error("decompressed request body too large")]
    DecompressedTooLarge,
    /// The body announced as gzip is not a valid gzip stream (bad header, corrupt deflate data, CRC
    /// or length mismatch, truncated, trailing garbage). 400.
    #[error("invalid gzip request body")]
    BadGzip,
    /// A `Content-Encoding` other than `gzip`/`x-gzip`/`identity`. 400 rather than 415: fleet-server
    /// never sends 415; it ignores unknown encodings and then fails to parse the still-encoded
    /// body as JSON, which is a 400 `BadRequest`. Agents therefore only ever see 400 for this, and
    /// the spec's `Bad request: ...` envelope keeps their log line meaningful.
    #[error("unsupported content encoding")]
    UnsupportedContentEncoding,
    /// A `Transfer-Encoding` other than exactly `chunked`. 501 (RFC 9112 6.1).
    #[error("unsupported transfer encoding")]
    UnsupportedTransferEncoding,
    /// The request line is not HTTP/1.0 or HTTP/1.1 (this includes the HTTP/2 prior-knowledge
    /// preface `PRI * HTTP/2.0`). 505.
    #[error("unsupported HTTP version")]
    UnsupportedVersion,
}

impl HttpError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::HeadersTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::Malformed(_)
            | HttpError::InvalidContentLength
            | HttpError::AmbiguousFraming
            | HttpError::BadChunkedEncoding(_)
            | HttpError::BodyTooLarge
            | HttpError::DecompressedTooLarge
            | HttpError::BadGzip
            | HttpError::UnsupportedContentEncoding => 400,
            HttpError::UnsupportedTransferEncoding => 501,
            HttpError::UnsupportedVersion => 505,
        }
    }

    /// The complete response for this error, built with [`error_response`]. The caller encodes it
    /// with `keep_alive: false` and closes the connection.
    pub fn to_response(&self) -> Response {
        let status = self.status();
        match self {
            HttpError::HeadersTooLarge => error_response(
                status,
                "RequestHeaderFieldsTooLarge",
                "request header fields too large",
            ),
            HttpError::TooManyHeaders => error_response(
                status,
                "RequestHeaderFieldsTooLarge",
                "too many request header fields",
            ),
            HttpError::UnsupportedTransferEncoding => {
                error_response(status, "NotImplemented", "unsupported transfer encoding")
            }
            HttpError::UnsupportedVersion => error_response(
                status,
                "HTTPVersionNotSupported",
                "HTTP version not supported",
            ),
            _ => error_response(status, "BadRequest", &bad_request_message(self)),
        }
    }
}

/// The `message` of a 400: the spec's `Bad request: <msg>[: <cause>]` form. Body-size errors reuse
/// Go's `http: request body too large` cause, as fleet-server's `MaxBytesReader` reports it.
fn bad_request_message(err: &HttpError) -> String {
    match err {
        HttpError::Malformed(what) => format!("Bad request: malformed HTTP request: {what}"),
        HttpError::InvalidContentLength => {
            "Bad request: malformed HTTP request: invalid Content-Length".to_owned()
        }
        HttpError::AmbiguousFraming => {
            "Bad request: malformed HTTP request: ambiguous message framing".to_owned()
        }
        HttpError::BadChunkedEncoding(what) => {
            format!("Bad request: unable to read request body: invalid chunked encoding: {what}")
        }
        HttpError::BodyTooLarge => {
            "Bad request: unable to read request body: http: request body too large".to_owned()
        }
        HttpError::DecompressedTooLarge => {
            "Bad request: unable to decompress request body: http: request body too large"
                .to_owned()
        }
        HttpError::BadGzip => {
            "Bad request: unable to decompress request body: gzip: invalid gzip data".to_owned()
        }
        HttpError::UnsupportedContentEncoding => {
            "Bad request: unable to decode request body: unsupported content encoding".to_owned()
        }
        other => format!("Bad request: {other}"),
    }
}

/// The spec's JSON error body (fleet-protocol.md 1.7), produced ONLY here:
/// `{"statusCode":N,"error":"..","message":".."}` (keys in that order, `message` omitted when
/// empty), Content-Type `application/json; charset=utf-8`, `X-Content-Type-Options: nosniff`.
pub fn error_response(status: u16, error: &str, message: &str) -> Response {
    let mut body = String::with_capacity(48 + error.len() + message.len());
    body.push_str("{\"statusCode\":");
    body.push_str(&status.to_string());
    body.push_str(",\"error\":");
    push_json_string(&mut body, error);
    if !message.is_empty() {
        body.push_str(",\"message\":");
        push_json_string(&mut body, message);
    }
    body.push('}');
    Response {
        status,
        headers: vec![
            (
                "Content-Type".into(),
                "application/json; charset=utf-8".to_owned(),
            ),
            ("X-Content-Type-Options".into(), "nosniff".to_owned()),
        ],
        body: Body::Bytes(body.into_bytes()),
    }
}

/// Appends `s` as a JSON string literal. serde_json does the escaping; serializing a `&str` cannot
/// fail, and if it ever did the fallback is an empty string rather than invalid JSON.
fn push_json_string(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_json(resp: &Response) -> serde_json::Value {
        serde_json::from_slice(resp.body_bytes()).unwrap()
    }

    #[test]
    fn error_response_has_spec_shape_and_key_order() {
        let resp = error_response(401, "ErrNoAuthHeader", "no authorization header");
        assert_eq!(resp.status, 401);
        assert_eq!(
            resp.body_bytes(),
            br#"{"statusCode":401,"error":"ErrNoAuthHeader","message":"no authorization header"}"#
        );
        assert_eq!(
            resp.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(resp.header("X-Content-Type-Options"), Some("nosniff"));
    }

    #[test]
    fn error_response_omits_empty_message() {
        let resp = error_response(500, "BadRequest", "");
        assert_eq!(
            resp.body_bytes(),
            br#"{"statusCode":500,"error":"BadRequest"}"#
        );
    }

    #[test]
    fn error_response_escapes_strings() {
        let resp = error_response(400, "a\"b", "line\nbreak \\ \u{1}");
        let v = body_json(&resp);
        assert_eq!(v["error"], "a\"b");
        assert_eq!(v["message"], "line\nbreak \\ \u{1}");
    }

    #[test]
    fn every_variant_maps_to_its_status_and_error_code() {
        let cases = [
            (
                HttpError::HeadersTooLarge,
                431,
                "RequestHeaderFieldsTooLarge",
            ),
            (
                HttpError::TooManyHeaders,
                431,
                "RequestHeaderFieldsTooLarge",
            ),
            (HttpError::Malformed("x"), 400, "BadRequest"),
            (HttpError::InvalidContentLength, 400, "BadRequest"),
            (HttpError::AmbiguousFraming, 400, "BadRequest"),
            (HttpError::BadChunkedEncoding("x"), 400, "BadRequest"),
            (HttpError::BodyTooLarge, 400, "BadRequest"),
            (HttpError::DecompressedTooLarge, 400, "BadRequest"),
            (HttpError::BadGzip, 400, "BadRequest"),
            (HttpError::UnsupportedContentEncoding, 400, "BadRequest"),
            (
                HttpError::UnsupportedTransferEncoding,
                501,
                "NotImplemented",
            ),
            (
                HttpError::UnsupportedVersion,
                505,
                "HTTPVersionNotSupported",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status(), status, "{err:?}");
            let resp = err.to_response();
            assert_eq!(resp.status, status);
            let v = body_json(&resp);
            assert_eq!(v["statusCode"], status, "{err:?}");
            assert_eq!(v["error"], code, "{err:?}");
            let message = v["message"].as_str().unwrap();
            assert!(!message.is_empty());
            if status == 400 {
                assert!(message.starts_with("Bad request: "), "{message}");
            }
        }
    }

    #[test]
    fn body_too_large_uses_go_cause_text() {
        let v = body_json(&HttpError::BodyTooLarge.to_response());
        assert!(v["message"]
            .as_str()
            .unwrap()
            .ends_with(": http: request body too large"));
    }
}
