//! The HTTP surface over the default transport (TLS with the self-signed certificate from the
//! data dir): status endpoint and its headers, keep-alive and pipelining, and the limits that
//! protect the server (431, the spec's 400 body, capped gzip decompression).

use std::io::Write;
use std::sync::Arc;

use crate::support::client::tls_config;
use crate::support::{Client, FleetEdge, STATUS_REQUEST};

fn tls_server(extra: &[&str]) -> (FleetEdge, Arc<rustls::ClientConfig>) {
    let server = FleetEdge::start(extra);
    let ca = std::fs::read(server.data_dir.join("certs/ca.crt")).unwrap();
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(&ca).unwrap();
    (server, tls_config(&[der], None))
}

fn assert_bad_request(resp: &crate::support::HttpResponse) {
    assert_eq!(resp.status, 400, "{resp:?}");
    assert_eq!(
        resp.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let body = resp.json();
    assert_eq!(body["statusCode"], 400);
    assert_eq!(body["error"], "BadRequest");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Bad request: "),
        "{body}"
    );
}

#[test]
fn status_answers_with_request_id_and_api_version() {
    let (server, tls) = tls_server(&[]);
    let mut c = Client::tls(server.addr, tls).unwrap();
    let resp = c
        .request(b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-Request-Id: req-42\r\nElastic-Api-Version: 2023-06-01\r\n\r\n")
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-request-id"), Some("req-42"));
    assert_eq!(resp.header("elastic-api-version"), Some("2023-06-01"));
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(resp.json()["status"], "HEALTHY");

    let generated = c.request(STATUS_REQUEST).unwrap();
    assert_eq!(
        generated.header("x-request-id").map(str::len),
        Some(36),
        "a UUID is generated"
    );
}

#[test]
fn unsupported_api_version_is_the_spec_400() {
    let (server, tls) = tls_server(&[]);
    let mut c = Client::tls(server.addr, tls).unwrap();
    let resp = c
        .request(b"GET /api/status HTTP/1.1\r\nHost: x\r\nElastic-Api-Version: 2031-01-01\r\n\r\n")
        .unwrap();
    assert_eq!(resp.status, 400);
    assert_eq!(resp.header("elastic-api-version"), Some("2023-06-01"));
    assert_eq!(resp.json()["error"], "ErrUnsupportedAPIVersion");
}

#[test]
fn unknown_path_is_404_text() {
    let (server, tls) = tls_server(&[]);
    let mut c = Client::tls(server.addr, tls).unwrap();
    let resp = c.request(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(resp.status, 404);
    // Go's http.NotFound, byte for byte.
    assert_eq!(resp.body, b"404 page not found\n");
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(resp.header("x-content-type-options"), Some("nosniff"));
}

#[test]
fn two_requests_on_one_keep_alive_connection_and_pipelining() {
    let (server, tls) = tls_server(&[]);
    let mut c = Client::tls(server.addr, tls).unwrap();
    assert_eq!(c.request(STATUS_REQUEST).unwrap().status, 200);
    assert_eq!(c.request(STATUS_REQUEST).unwrap().status, 200);
    let mut two = STATUS_REQUEST.to_vec();
    two.extend_from_slice(STATUS_REQUEST);
    c.send(&two).unwrap();
    assert_eq!(c.read_response().unwrap().status, 200);
    assert_eq!(c.read_response().unwrap().status, 200);
}

#[test]
fn connection_close_is_honoured() {
    let (server, tls) = tls_server(&[]);
    let mut c = Client::tls(server.addr, tls).unwrap();
    let resp = c
        .request(b"GET /api/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(c.read_to_close().unwrap().is_empty());
}

#[test]
fn oversize_headers_get_431() {
    let (server, tls) = tls_server(&[]);
    let mut c = Client::tls(server.addr, tls).unwrap();
    let mut req = b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 9000));
    req.extend_from_slice(b"\r\n\r\n");
    let resp = c.request(&req).unwrap();
    assert_eq!(resp.status, 431);
}

#[test]
fn oversize_body_gets_the_spec_400_before_it_is_sent() {
    let (server, tls) = tls_server(&[]);
    let mut c = Client::tls(server.addr, tls).unwrap();
    // Only the head goes out: the server must answer from Content-Length alone.
    let resp = c
        .request(b"POST /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        .unwrap();
    assert_bad_request(&resp);
    assert!(resp.json()["message"]
        .as_str()
        .unwrap()
        .contains("request body too large"));
}

#[test]
fn malformed_requests_get_the_spec_400() {
    let (server, tls) = tls_server(&[]);
    for raw in [
        &b"GET /api/status HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n"[..],
        b"POST /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"POST /api/status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let mut c = Client::tls(server.addr, tls.clone()).unwrap();
        assert_bad_request(&c.request(raw).unwrap());
    }
}

#[test]
fn gzip_bomb_is_refused_without_a_large_allocation() {
    let (server, tls) = tls_server(&[]);
    // ~60 MiB of zeros compress to ~60 KiB: under the body cap, far over the decompressed cap.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..60 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 64 * 1024, "bomb is {} bytes", bomb.len());
    let mut c = Client::tls(server.addr, tls.clone()).unwrap();
    assert_eq!(c.request(STATUS_REQUEST).unwrap().status, 200);
    let before = server.peak_rss_kib();

    let mut req = format!(
        "POST /api/status HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        bomb.len()
    )
    .into_bytes();
    req.extend_from_slice(&bomb);
    let resp = c.request(&req).unwrap();
    assert_bad_request(&resp);

    let after = server.peak_rss_kib();
    assert!(
        after < before + 8 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB while refusing a 60 MiB gzip bomb"
    );
    let mut again = Client::tls(server.addr, tls).unwrap();
    assert_eq!(
        again.request(STATUS_REQUEST).unwrap().status,
        200,
        "server still serves"
    );
}

/// Seconds since the epoch of an IMF-fixdate (`Thu, 03 Dec 2026 05:30:53 GMT`), or `None` when
/// the value is not one.
fn parse_imf_fixdate(value: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = value.split(' ').collect();
    let [weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    if weekday.len() != 4 || !weekday.ends_with(',') || day.len() != 2 || year.len() != 4 {
        return None;
    }
    let day: u64 = day.parse().ok()?;
    let month = MONTHS.iter().position(|m| m == month)? as u64 + 1;
    let year: u64 = year.parse().ok()?;
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    // Days from civil (proleptic Gregorian), counted independently of the server's formatter.
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * mo + 2) / 5 + day - 1 - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

fn assert_dated_now(what: &str, resp: &crate::support::HttpResponse) {
    let value = resp
        .header("date")
        .unwrap_or_else(|| panic!("{what}: no Date header in {resp:?}"));
    let at = parse_imf_fixdate(value).unwrap_or_else(|| panic!("{what}: Date {value:?}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(at.abs_diff(now) <= 5, "{what}: Date {value} is not now");
}

#[test]
fn imf_fixdate_parser_of_these_tests_reads_known_values() {
    assert_eq!(parse_imf_fixdate("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    assert_eq!(
        parse_imf_fixdate("Thu, 29 Feb 2024 00:00:00 GMT"),
        Some(1_709_164_800)
    );
    assert_eq!(parse_imf_fixdate("Thu, 29 Feb 2024 00:00:00 UTC"), None);
    assert_eq!(parse_imf_fixdate("Thursday, 29-Feb-24 00:00:00 GMT"), None);
}

#[test]
fn every_kind_of_response_carries_a_date() {
    let server = FleetEdge::start(&["--fleet-server-insecure-http", "--max-connections", "1"]);
    let mut c = Client::plain(server.addr).unwrap();
    let ask = |c: &mut Client, raw: &[u8]| c.request(raw).unwrap();
    let ok = ask(&mut c, STATUS_REQUEST);
    assert_eq!(ok.status, 200);
    assert_dated_now("status 200", &ok);
    let missing = ask(&mut c, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(missing.status, 404);
    assert_dated_now("404", &missing);
    let wrong = ask(&mut c, b"DELETE /api/status HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(wrong.status, 405);
    assert_dated_now("405", &wrong);
    let unauthorized = ask(
        &mut c,
        b"POST /api/fleet/agents/enroll HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    );
    assert_eq!(unauthorized.status, 401);
    assert_dated_now("401 JSON error", &unauthorized);
    // A key the store has never seen: answered after a backend job, not in the request's turn.
    let unknown_key = ask(
        &mut c,
        b"POST /api/fleet/agents/enroll HTTP/1.1\r\nHost: x\r\nAuthorization: ApiKey bm9wZTpub3Bl\r\nUser-Agent: Elastic Agent v9.2.1\r\nContent-Length: 2\r\n\r\n{}",
    );
    assert!(unknown_key.status >= 400, "{unknown_key:?}");
    assert_dated_now("answer after a backend job", &unknown_key);

    // The connection gate's 429, while `c` holds the only slot.
    let mut over = Client::plain(server.addr).unwrap();
    let gate = ask(&mut over, STATUS_REQUEST);
    assert_eq!(gate.status, 429);
    assert_dated_now("gate 429", &gate);

    // A request the decoder refuses (the spec's 400, connection closed after it).
    let bad = ask(
        &mut c,
        b"GET /api/status HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n",
    );
    assert_eq!(bad.status, 400);
    assert_dated_now("decoder 400", &bad);
}
