//! Hardening through the real binary: private file modes in the data dir (looser ones tightened
//! at start, one log line each), the management API and `/api/status` reachable while the
//! process is out of descriptors (one log line when it starts, one when it ends), the management
//! listener off loopback only over TLS, and what a panic in a worker does.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::support::{FleetEdge, TempDir, STATUS_REQUEST};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every path of the data dir that holds something secret, with the mode it must have.
fn assert_private(data: &Path) {
    let expected = [
        ("", 0o700),
        ("policies", 0o700),
        ("policies/fleet-edge-default.json", 0o600),
        ("store", 0o700),
        ("store/fleet-edge.redb", 0o600),
        ("certs", 0o700),
        ("certs/ca.key", 0o600),
        ("certs/server.key", 0o600),
        ("admin-token", 0o600),
        ("management-url", 0o600),
    ];
    for (rel, want) in expected {
        let path = data.join(rel);
        assert_eq!(
            mode(&path),
            want,
            "{} is {:04o}, not {want:04o}",
            path.display(),
            mode(&path)
        );
    }
}

#[test]
fn a_fresh_data_dir_is_private_and_looser_modes_are_tightened_at_start() {
    let tmp = TempDir::new("modes");
    let data = tmp.join("data");
    let server = FleetEdge::start_in(&data, &[], &[]);
    server
        .wait_for_log("management API on", Duration::from_secs(20))
        .expect("management API announced");
    assert_private(&data);
    assert!(
        !server.log().contains("tightened"),
        "nothing to tighten on a fresh data dir:\n{}",
        server.log()
    );
    drop(server);

    // An operator's umask, a restored backup: everything readable by others.
    let loosened = [
        ("", 0o755),
        ("policies", 0o777),
        ("policies/fleet-edge-default.json", 0o644),
        ("store/fleet-edge.redb", 0o644),
        ("certs/server.key", 0o640),
        ("admin-token", 0o644),
    ];
    for (rel, m) in loosened {
        set_mode(&data.join(rel), m);
    }
    let server = FleetEdge::start_in(&data, &[], &[]);
    server
        .wait_for_log("management API on", Duration::from_secs(20))
        .expect("management API announced");
    assert_private(&data);
    let log = server.log();
    for (rel, old) in loosened {
        let path = data.join(rel);
        let path = path.to_str().unwrap().trim_end_matches('/');
        let new = if old & 0o100 != 0 { 0o700 } else { 0o600 };
        let line = format!("tightened the mode of {path} from {old:04o} to {new:04o}");
        assert_eq!(
            log.matches(&line).count(),
            1,
            "one line `{line}` expected:\n{log}"
        );
    }
    assert_eq!(log.matches("tightened the mode").count(), loosened.len());
}

/// Reads one HTTP answer's status line (up to `within`).
fn status_line(stream: &mut TcpStream, within: Duration) -> String {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => break,
            Err(e) => panic!("no answer ({e}); got {:?}", String::from_utf8_lossy(&head)),
        }
    }
    String::from_utf8_lossy(&head).trim().to_owned()
}

/// Out of descriptors: agents' new connections are answered 429 from the reserve instead of
/// hanging, `/api/status` and the management API keep answering, and the episode is logged
/// once when it starts and once when it ends.
#[test]
fn out_of_descriptors_the_management_api_and_status_stay_reachable() {
    let server = FleetEdge::start(&["--fleet-server-insecure-http"]);
    server
        .wait_for_log("management API on", Duration::from_secs(20))
        .expect("management API announced");
    let pid = server.pid();
    let token = std::fs::read_to_string(server.data_dir.join("admin-token")).unwrap();
    let management = std::fs::read_to_string(server.data_dir.join("management-url")).unwrap();
    let management = management.trim().trim_start_matches("http://").to_owned();

    // Agents take the last free descriptors (each kept alive after its answer) until the next
    // one is refused: a few above the number open now, more if the table has holes.
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let limit = open + 2;
    let status = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success());
    let enroll = b"POST /api/fleet/agents/enroll HTTP/1.1\r\nHost: localhost\r\nAuthorization: ApiKey eDp5\r\nContent-Length: 2\r\n\r\n{}";
    let mut holders: Vec<TcpStream> = Vec::new();
    loop {
        assert!(
            holders.len() < 32,
            "never ran out of descriptors:\n{}",
            server.log()
        );
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.write_all(enroll).unwrap();
        let line = status_line(&mut s, Duration::from_secs(10));
        if line.starts_with("HTTP/1.1 429") {
            break;
        }
        assert!(line.starts_with("HTTP/1.1 401"), "{line}");
        holders.push(s);
    }

    // More agents: refused with 429 from the reserve, not left hanging.
    for i in 0..6 {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.write_all(enroll).unwrap();
        let line = status_line(&mut s, Duration::from_secs(10));
        assert!(
            line.starts_with("HTTP/1.1 429"),
            "agent {i}: {line}\n{}",
            server.log()
        );
    }
    // /api/status answers.
    let mut probe = TcpStream::connect(server.addr).unwrap();
    probe.write_all(STATUS_REQUEST).unwrap();
    assert_eq!(
        status_line(&mut probe, Duration::from_secs(10)),
        "HTTP/1.1 200 OK"
    );
    drop(probe);
    // The management API answers, twice (its reserve refills).
    for _ in 0..2 {
        let mut m = TcpStream::connect(&management).unwrap();
        let req = format!(
            "GET /api/fleet/agents HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            token.trim()
        );
        m.write_all(req.as_bytes()).unwrap();
        assert_eq!(
            status_line(&mut m, Duration::from_secs(10)),
            "HTTP/1.1 200 OK"
        );
    }
    let log = server.log();
    assert_eq!(
        log.matches("out of file descriptors").count(),
        1,
        "one line when it starts:\n{log}"
    );
    assert!(!log.contains("accept failed"), "{log}");

    // Descriptors come back: the next connection is served normally and the episode ends.
    drop(holders);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.write_all(enroll).unwrap();
        let line = status_line(&mut s, Duration::from_secs(10));
        if !line.starts_with("HTTP/1.1 429") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still refused: {line}"
        );
    }
    let end = server
        .wait_for_log("file descriptors available again", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no end line:\n{}", server.log()));
    assert!(
        end.contains("connection(s) answered from the reserve") && end.contains("deferred"),
        "{end}"
    );
    let answered: u64 = end
        .split(" connection(s) answered")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {end}"));
    assert!(
        answered >= 9,
        "6 refused agents, a probe and 2 management calls: {end}"
    );
    assert_eq!(server.log().matches("out of file descriptors").count(), 1);
}

/// A panic in a backend worker (a debug-build failpoint) is one ERROR line in the log and an
/// abort, so the service manager restarts the server (README, "Hardening"); without the hook
/// the worker thread died silently and its agent's request hung.
#[test]
fn a_worker_panic_is_logged_and_aborts_for_the_service_manager_to_restart() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = TempDir::new("panic");
    let mut server = FleetEdge::start_in(
        &tmp.join("data"),
        &["--fleet-server-insecure-http"],
        &[("FLEET_EDGE_FAILPOINT", "worker-panic-on-enroll")],
    );
    // An agent parked on another connection sees the process go (its connection closes).
    let mut other = TcpStream::connect(server.addr).unwrap();
    let enroll = b"POST /api/fleet/agents/enroll HTTP/1.1\r\nHost: localhost\r\nAuthorization: ApiKey eDp5\r\nContent-Length: 2\r\n\r\n{}";
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(enroll).unwrap();
    let status = server
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("still running after the panic:\n{}", server.log()));
    assert_eq!(
        status.signal(),
        Some(6),
        "SIGABRT: {status:?}\n{}",
        server.log()
    );
    let line = server
        .wait_for_log("panic in thread", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no panic line:\n{}", server.log()));
    assert!(line.contains(" ERROR "), "{line}");
    assert!(line.contains("fleet-edge-backend-"), "{line}");
    assert!(line.contains("failpoint worker-panic-on-enroll"), "{line}");
    assert!(line.contains("restarts fleet-edge"), "{line}");
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert!(matches!(other.read(&mut buf), Ok(0) | Err(_)));
}

/// Off loopback the management API speaks TLS only (the server's certificate, signed by its CA);
/// the CLI trusts that CA and works; the bearer token sent in clear gets no answer.
#[test]
fn the_management_api_off_loopback_is_served_over_tls_and_the_cli_uses_it() {
    let server = FleetEdge::start(&["--management-host", "0.0.0.0"]);
    let line = server
        .wait_for_log("management API on", Duration::from_secs(20))
        .expect("management API announced");
    assert!(line.contains("over TLS"), "{line}");
    let url = std::fs::read_to_string(server.data_dir.join("management-url")).unwrap();
    let url = url.trim();
    assert!(url.starts_with("https://localhost:"), "{url}");
    let port = url.rsplit(':').next().unwrap();

    let dir = server.data_dir.to_str().unwrap();
    let (status, out, err) = crate::support::run_to_exit(&["agents", "--data-dir", dir], &[]);
    assert!(
        status.success(),
        "the CLI over TLS: {err}\n{}",
        server.log()
    );
    assert!(!out.is_empty());
    let (status, out, err) = crate::support::run_to_exit(
        &[
            "tokens",
            "create",
            "--policy",
            "fleet-edge-default",
            "--data-dir",
            dir,
        ],
        &[],
    );
    assert!(status.success(), "{err}");
    assert!(out.contains("api_key"), "{out}");

    // The same request in clear: no HTTP answer (a TLS alert at most), so no token accepted.
    let token = std::fs::read_to_string(server.data_dir.join("admin-token")).unwrap();
    let mut plain = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    let req = format!(
        "GET /api/fleet/agents HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        token.trim()
    );
    plain.write_all(req.as_bytes()).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "answered in clear: {:?}",
        String::from_utf8_lossy(&answer)
    );
}

/// Off loopback without TLS material (plain-HTTP mode) the server refuses to start: one
/// sentence, exit 2.
#[test]
fn the_management_api_off_loopback_without_tls_refuses_to_start() {
    let data = TempDir::new("mgmt-plain");
    let (status, _, err) = crate::support::run_to_exit(
        &[
            "--data-dir",
            data.path().to_str().unwrap(),
            "--fleet-server-insecure-http",
            "--fleet-server-host",
            "127.0.0.1",
            "--fleet-server-port",
            "0",
            "--management-host",
            "0.0.0.0",
            "--management-port",
            "0",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(2), "{err}");
    let problems: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("--management-host"))
        .collect();
    assert_eq!(problems.len(), 1, "{err}");
    assert!(problems[0].contains("in clear"), "{err}");
    assert!(!data.join("management-url").exists());
}
