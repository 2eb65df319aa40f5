//! Fuzz target `http_decode`: arbitrary bytes through `http::Decoder`, fed whole and in pieces whose
//! sizes are derived from the input. It must never panic, and the outcome (the requests decoded and
//! the error, if any) must not depend on the split.
//!
//! Input layout: byte 0 picks the head limits, byte 1 the body limits, byte 2 seeds the split
//! points; the rest is the connection's byte stream.
#![no_main]

use fleet_edge::http::{BodyLimits, Decoder, HttpError, Limits, Method, Request};
use libfuzzer_sys::fuzz_target;

type Outcome = (Vec<Request>, Option<HttpError>);

fn run(pieces: &[&[u8]], limits: Limits, body: BodyLimits) -> Outcome {
    let body_limits = move |_: &Method, _: &str| body;
    let mut decoder = Decoder::new(limits);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf, &body_limits) {
                Ok(Some(request)) => out.push(request),
                Ok(None) => break,
                Err(e) => {
                    // Every error must map to a response without panicking.
                    let _ = e.to_response();
                    return (out, Some(e));
                }
            }
        }
        let _ = decoder.is_idle();
    }
    (out, None)
}

/// Splits `stream` into pieces of 1..=32 bytes driven by a tiny LCG seeded from `seed`.
fn pieces(stream: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 1;
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = ((state >> 16) as usize % 32 + 1).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        out.push(piece);
        rest = tail;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [head_ctl, body_ctl, seed, stream @ ..] = data else {
        return;
    };
    let limits = Limits {
        max_header_bytes: 16 + usize::from(*head_ctl) * 16,
        max_headers: 1 + usize::from(head_ctl % 32),
    };
    let body = BodyLimits {
        max_body: usize::from(*body_ctl) * 64,
        max_decompressed: usize::from(body_ctl.rotate_left(4)) * 256,
        defer_gzip: false,
    };
    let whole = run(&[stream], limits, body);
    let split = run(&pieces(stream, *seed), limits, body);
    assert_eq!(whole, split, "outcome depends on how the bytes were split");
});
