//! Sans-IO HTTP/1.1 for the Fleet endpoints: bytes in, [`Request`]s out; [`Response`]s in, bytes
//! out. Nothing here touches a socket, reads the clock or the environment; the event loop in `net`
//! owns the buffers and calls in.
//!
//! * [`Decoder`] (`decode.rs`, head parsing in `head.rs`): incremental request decoding with
//!   httparse; header limits ([`Limits`], 431), `Content-Length` and chunked bodies (`body.rs`),
//!   per-route body limits ([`BodyLimits`]), capped gunzip of `Content-Encoding: gzip` bodies
//!   (`gzip.rs`). Any split of the input gives the same result (`proptests.rs`).
//! * [`encode_response`] (`encode.rs`): status line, headers, `Content-Length`,
//!   `Connection: close`, level-1 gzip when the client accepts it, into a caller-owned buffer.
//! * [`HttpDate`] / [`DateCache`] (`date.rs`): the `Date` header, IMF-fixdate, formatted once per
//!   second from the clock reading the loop passes in.
//! * [`HttpError`] (`error.rs`): every refusal and its one mapping to the wire;
//!   [`error_response`] is the only builder of the spec's JSON error body.
//!
//! Typical use by the connection driver:
//!
//! ```
//! use fleet_edge::http::{encode_response, BodyLimits, Decoder, EncodeOptions, HttpDate, Limits, Response};
//!
//! let mut decoder = Decoder::new(Limits::default());
//! let mut read_buf = b"GET /api/status HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n".to_vec();
//! let limits = |_: &_, _: &str| BodyLimits { max_body: 1 << 20, max_decompressed: 20 << 20, defer_gzip: false };
//! let mut out = Vec::new();
//! while let Some(req) = decoder.decode(&mut read_buf, &limits).expect("valid request") {
//!     let resp = Response::json(200, &serde_json::json!({"status": "HEALTHY"}));
//!     let opts = EncodeOptions {
//!         accepts_gzip: req.accepts_gzip(),
//!         gzip_threshold: 1024,
//!         head_request: req.method == fleet_edge::http::Method::Head,
//!         keep_alive: req.keep_alive,
//!         date: Some(HttpDate::from_unix_seconds(1_796_275_853)),
//!     };
//!     encode_response(&resp, &opts, &mut out);
//! }
//! assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
//! assert!(out.windows(37).any(|w| w == b"Date: Thu, 03 Dec 2026 05:30:53 GMT\r\n"));
//! ```

mod body;
mod date;
mod decode;
mod encode;
mod error;
pub(crate) mod gzip;
mod head;
mod request;
pub mod websocket;

#[cfg(test)]
mod proptests;

pub use body::gzip_encoded;
pub use date::{DateCache, HttpDate};
pub use decode::{Decoder, CONTINUE_RESPONSE};
pub use encode::{encode_response, Body, BodyPart, EncodeOptions, FileBody, PartsBody, Response};
pub use error::{error_response, HttpError};
pub use gzip::{compress as gzip_compress, decompress as gunzip_capped};
pub use request::{BodyLimits, Limits, Method, Request};
