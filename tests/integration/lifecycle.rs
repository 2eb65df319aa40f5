//! Connection lifecycle: a slow-loris peer loses its slot at the request timeout, the connection
//! gate answers 429 with Retry-After instead of resetting, and SIGTERM drains then exits 0.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{Client, FleetEdge, STATUS_REQUEST};

#[test]
fn slow_loris_loses_its_slot_at_the_header_timeout() {
    let server = FleetEdge::start(&["--fleet-server-insecure-http", "--header-timeout", "1s"]);
    let mut sock = TcpStream::connect(server.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    let trickle = b"GET /api/status HTTP/1.1\r\nX-Slow: "
        .iter()
        .chain(std::iter::repeat(&b'a'));
    let mut closed_after = None;
    for byte in trickle {
        if started.elapsed() > Duration::from_secs(20) {
            break;
        }
        if sock.write_all(&[*byte]).is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 64];
        match sock.read(&mut buf) {
            Ok(0) => {
                closed_after = Some(started.elapsed());
                break;
            }
            Ok(_) => panic!("no response expected for an incomplete request"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                closed_after = Some(started.elapsed());
                break;
            }
        }
    }
    let closed_after = closed_after.expect("server kept a trickling connection for 20 s");
    assert!(
        closed_after >= Duration::from_millis(900),
        "closed too early: {closed_after:?}"
    );
    // And a well-behaved client is still served.
    let mut c = Client::plain(server.addr).unwrap();
    assert_eq!(c.request(STATUS_REQUEST).unwrap().status, 200);
}

#[test]
fn connection_gate_answers_429_with_retry_after_instead_of_resetting() {
    let server = FleetEdge::start(&["--fleet-server-insecure-http", "--max-connections", "2"]);
    let mut a = Client::plain(server.addr).unwrap();
    let mut b = Client::plain(server.addr).unwrap();
    assert_eq!(a.request(STATUS_REQUEST).unwrap().status, 200);
    assert_eq!(b.request(STATUS_REQUEST).unwrap().status, 200);

    let mut over = Client::plain(server.addr).unwrap();
    let resp = over.request(STATUS_REQUEST).unwrap();
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after"), Some("5"));
    assert_eq!(resp.body, b"Server capacity exceeded.");
    assert!(resp.header("x-request-id").is_some());
    assert!(
        over.read_to_close().unwrap().is_empty(),
        "gate connection is closed after the 429"
    );

    // Once a slot frees up, new connections are served again.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = Client::plain(server.addr).unwrap();
        let status = c.request(STATUS_REQUEST).unwrap().status;
        if status == 200 {
            break;
        }
        assert_eq!(status, 429);
        assert!(
            Instant::now() < deadline,
            "slot never freed after a client left"
        );
    }
    assert_eq!(b.request(STATUS_REQUEST).unwrap().status, 200);
}

#[test]
fn sigterm_stops_accepting_finishes_requests_in_flight_and_exits_0() {
    let mut server = FleetEdge::start(&["--fleet-server-insecure-http", "--drain-timeout", "10s"]);
    let mut idle = Client::plain(server.addr).unwrap();
    assert_eq!(idle.request(STATUS_REQUEST).unwrap().status, 200);
    let mut in_flight = Client::plain(server.addr).unwrap();
    in_flight
        .send(b"GET /api/status HTTP/1.1\r\nHost: x\r\n")
        .unwrap();

    server.sigterm();
    server
        .wait_for_log("shutting down", Duration::from_secs(10))
        .expect("drain logged");
    assert!(
        idle.read_to_close().unwrap().is_empty(),
        "idle keep-alive connection closed"
    );

    in_flight.send(b"\r\n").unwrap();
    let resp = in_flight.read_response().unwrap();
    assert_eq!(resp.status, 503, "status reports STOPPING while draining");
    assert_eq!(resp.json()["status"], "STOPPING");
    assert_eq!(resp.header("connection"), Some("close"));

    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("exited after drain");
    assert_eq!(status.code(), Some(0));
    assert!(
        TcpStream::connect(server.addr).is_err(),
        "no longer accepting"
    );
}

#[test]
fn drain_timeout_bounds_shutdown_even_with_a_stuck_client() {
    let mut server = FleetEdge::start(&[
        "--fleet-server-insecure-http",
        "--drain-timeout",
        "1s",
        "--header-timeout",
        "60s",
    ]);
    let mut stuck = Client::plain(server.addr).unwrap();
    // One full exchange first: the server has accepted this connection before SIGTERM (a
    // connection still in the backlog would not be drained at all).
    assert_eq!(stuck.request(STATUS_REQUEST).unwrap().status, 200);
    stuck.send(b"GET /api/status HTTP/1.1\r\n").unwrap();
    let started = Instant::now();
    server.sigterm();
    let status = server.wait_exit(Duration::from_secs(20)).expect("exited");
    assert_eq!(status.code(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "exit came from the 1 s drain deadline, not the 60 s request timeout"
    );
    assert!(server.log().contains("drain timeout"), "{}", server.log());
}

#[test]
fn a_slow_body_is_governed_by_the_body_timeout_not_the_header_timeout() {
    let server = FleetEdge::start(&["--fleet-server-insecure-http", "--header-timeout", "1s"]);
    let mut c = Client::plain(server.addr).unwrap();
    c.send(b"POST /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    // Trickle the body over about twice the header timeout; each byte waits on the clock the
    // peer would really spend, which is the condition under test.
    for byte in b"abcdef" {
        std::thread::sleep(Duration::from_millis(350));
        c.send(&[*byte]).unwrap();
    }
    let resp = c.read_response().unwrap();
    assert!(started.elapsed() > Duration::from_secs(1));
    assert_eq!(resp.status, 405, "the complete request was routed");
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let server = FleetEdge::start(&["--fleet-server-insecure-http"]);
    let mut c = Client::plain(server.addr).unwrap();
    c.send(b"POST /api/status HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        .unwrap();
    let interim = c.read_response().unwrap();
    assert_eq!(interim.status, 100);
    c.send(b"{}").unwrap();
    assert_eq!(c.read_response().unwrap().status, 405);
}

/// Out of descriptors, queued connections wait in the backlog; once descriptors free up they
/// are accepted without another connection arriving (the listener is edge-triggered: nothing
/// new would be reported for them).
#[test]
fn accepting_resumes_after_running_out_of_descriptors() {
    let server = FleetEdge::start(&["--fleet-server-insecure-http"]);
    let pid = server.pid();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let limit = open + 4;
    let status = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success());
    let mut queued: Vec<TcpStream> = (0..12)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    server
        .wait_for_log("out of file descriptors", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("never ran out of descriptors:\n{}", server.log()));
    let mut last = queued.pop().unwrap();
    drop(queued);
    last.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    last.write_all(STATUS_REQUEST).unwrap();
    let mut head = [0u8; 12];
    last.read_exact(&mut head).unwrap_or_else(|e| {
        panic!(
            "the queued connection was never served ({e}):\n{}",
            server.log()
        )
    });
    assert_eq!(&head, b"HTTP/1.1 200");
}
