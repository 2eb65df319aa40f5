//! Fuzz target `mgmt_request`: an arbitrary method, path, bearer token and body through the
//! management API's authentication, routing and body decoding (`mgmt::handle`, `mgmt::route`).
//! No input may panic; a refusal is a response with a 4xx status, and only the right token
//! gets past authentication.
//!
//! Input layout: byte 0 picks the method; then lines: the path, the presented token, and the
//! rest is the body.
#![no_main]

use fleet_edge::http::{Method, Request};
use fleet_edge::mgmt::{handle, route};
use libfuzzer_sys::fuzz_target;

const TOKEN: &str = "admin-token-0123456789";

fuzz_target!(|data: &[u8]| {
    let [m, rest @ ..] = data else {
        return;
    };
    let method = match m % 6 {
        0 => Method::Get,
        1 => Method::Post,
        2 => Method::Put,
        3 => Method::Delete,
        4 => Method::Head,
        _ => Method::Patch,
    };
    let mut parts = rest.splitn(3, |b| *b == b'\n');
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let token = parts.next().unwrap_or_default().to_vec();
    let body = parts.next().unwrap_or_default().to_vec();
    let _ = route(&method, &path);
    let mut authorization = b"Bearer ".to_vec();
    authorization.extend_from_slice(&token);
    let request = Request {
        method,
        path,
        query: None,
        minor_version: 1,
        headers: vec![("authorization".into(), authorization)],
        body,
        keep_alive: true,
    };
    match handle(&request, TOKEN) {
        Ok(_) => assert_eq!(std::str::from_utf8(&token).map(str::trim), Ok(TOKEN)),
        Err(response) => assert!((400..500).contains(&response.status)),
    }
});
