//! Helpers shared by the integration tests: start a stand-in, talk to it as Fleet Server does
//! (bearer service token, NDJSON bodies with `application/json`), and wait on conditions with
//! deadlines.
#![allow(dead_code)]

use es_standin::{Client, Options, StandIn};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A stand-in with a short refresh interval.
pub fn start(refresh_ms: u64) -> StandIn {
    StandIn::start(Options {
        refresh_interval: Some(Duration::from_millis(refresh_ms)),
        ..Options::default()
    })
    .expect("start")
}

/// A client authenticated with the service token, as Fleet Server is.
pub fn fleet(es: &StandIn) -> Client {
    Client::new(&es.url(), None)
        .expect("client")
        .with_auth(&format!("Bearer {}", es.service_token()))
}

/// Sends NDJSON lines (`_bulk`, `_msearch`) with `Content-Type: application/json`, as go-elasticsearch does.
pub fn ndjson(c: &Client, path: &str, lines: &[Value]) -> (u16, Value) {
    let mut body = String::new();
    for l in lines {
        body.push_str(&l.to_string());
        body.push('\n');
    }
    let r = c
        .request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        )
        .expect("request");
    (r.status, r.json())
}

/// Polls `f` until it is true or the deadline passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}
