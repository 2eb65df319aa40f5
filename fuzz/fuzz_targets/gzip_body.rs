//! Fuzz target `gzip_body`: arbitrary bytes as a `Content-Encoding: gzip` request body, and as
//! direct input to the capped gunzip. Must never panic, never return more than the cap, and
//! response compression must round-trip.
//!
//! Input layout: byte 0 picks the decompression cap; the rest is the body.
#![no_main]

use fleet_edge::http::{
    gunzip_capped, gzip_compress, BodyLimits, Decoder, HttpError, Limits, Method,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [cap_ctl, body @ ..] = data else {
        return;
    };
    let cap = usize::from(*cap_ctl) * 1024;

    match gunzip_capped(body, cap) {
        Ok(plain) => assert!(cap == 0 || plain.len() <= cap),
        Err(e) => assert!(matches!(
            e,
            HttpError::BadGzip | HttpError::DecompressedTooLarge
        )),
    }

    let mut buf = format!(
        "POST /api/fleet/agents/x/checkin? HTTP/1.1\r\nHost: f\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    buf.extend_from_slice(body);
    let limits = move |_: &Method, _: &str| BodyLimits {
        max_body: 0,
        max_decompressed: cap,
        defer_gzip: false,
    };
    match Decoder::new(Limits::default()).decode(&mut buf, &limits) {
        Ok(Some(request)) => assert!(cap == 0 || request.body.len() <= cap),
        Ok(None) => panic!("a complete request must decode"),
        Err(e) => {
            assert!(matches!(
                e,
                HttpError::BadGzip | HttpError::DecompressedTooLarge
            ));
            assert_eq!(e.to_response().status, 400);
        }
    }

    if let Some(z) = gzip_compress(body) {
        assert_eq!(gunzip_capped(&z, 0).ok().as_deref(), Some(body));
    }
});
