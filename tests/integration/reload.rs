//! SIGHUP through the real binary: a rotated server certificate reaches new handshakes while
//! 500 parked agents keep their connections (each is answered on it later); a certificate file
//! that does not parse keeps the running one with one log line; the admin token and the log
//! level are read again; SIGHUP never stops the process.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};

use crate::support::agent::{body_json, raw_request, Agent, VERSION};
use crate::support::client::tls_config;
use crate::support::pki::Pki;
use crate::support::{run_to_exit, Client, FleetEdge, TempDir};

const PARKED: usize = 500;

/// The certificate a fresh handshake with the server presents.
fn served_certificate(
    server: &FleetEdge,
    roots: &[CertificateDer<'static>],
) -> CertificateDer<'static> {
    let config = tls_config(roots, None);
    let mut conn =
        rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut sock = TcpStream::connect(server.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).unwrap();
    }
    conn.peer_certificates().unwrap()[0].clone().into_owned()
}

/// The token from the quick start's `elastic-agent install` line.
fn printed_token(server: &FleetEdge) -> String {
    let line = server
        .wait_for_log("elastic-agent install", Duration::from_secs(20))
        .unwrap();
    line.split("--enrollment-token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned()
}

/// Enrolls, retrying while the enroll route's rate limit answers 429.
fn enroll(server: &FleetEdge, tls: &Arc<rustls::ClientConfig>, token: &str) -> Agent {
    let body = serde_json::to_vec(&crate::support::agent::enroll_body(&[])).unwrap();
    let raw = raw_request(
        "POST",
        "/api/fleet/agents/enroll",
        Some(token),
        &body,
        false,
        &format!("Elastic Agent v{VERSION}"),
    );
    for _ in 0..200 {
        let mut client = Client::tls(server.addr, Arc::clone(tls)).unwrap();
        let resp = client.request(&raw).unwrap();
        if resp.status == 429 {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        assert_eq!(
            resp.status,
            200,
            "{:?}",
            String::from_utf8_lossy(&resp.body)
        );
        let item = body_json(&resp)["item"].clone();
        return Agent {
            addr: server.addr,
            tls: Arc::clone(tls),
            id: item["id"].as_str().unwrap().to_owned(),
            access_key: item["access_api_key"].as_str().unwrap().to_owned(),
            ack_token: String::new(),
            policy_id: None,
            revision: None,
            conn: Some(client),
        };
    }
    panic!("enroll stayed rate limited");
}

fn checkin_request(agent: &Agent) -> Vec<u8> {
    let body = serde_json::to_vec(&agent.checkin_body("online")).unwrap();
    raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/checkin", agent.id),
        Some(&agent.access_key),
        &body,
        true,
        &format!("Elastic Agent v{VERSION}"),
    )
}

#[test]
fn a_rotated_certificate_reaches_new_handshakes_and_parked_agents_stay_connected() {
    let old = Pki::new();
    let new = Pki::new();
    let files = TempDir::new("reload-certs");
    let cert = files.join("server.crt");
    let key = files.join("server.key");
    std::fs::copy(&old.server.cert_path, &cert).unwrap();
    std::fs::copy(&old.server.key_path, &key).unwrap();
    let mut server = FleetEdge::start(&[
        "--fleet-server-cert",
        cert.to_str().unwrap(),
        "--fleet-server-cert-key",
        key.to_str().unwrap(),
        "--checkin-long-poll",
        "5m",
        "--checkin-jitter",
        "0s",
        "--log-level",
        "debug",
    ]);
    let token = printed_token(&server);
    let roots = [old.ca_der.clone(), new.ca_der.clone()];
    let tls = tls_config(&roots, None);
    assert_eq!(served_certificate(&server, &roots), old.server.cert_der);

    // 500 agents on revision 1, each with a checkin parked on its own TLS connection.
    let mut agents = Vec::with_capacity(PARKED);
    for _ in 0..PARKED {
        let mut agent = enroll(&server, &tls, &token);
        let (resp, body) = agent.checkin();
        assert_eq!(resp.status, 200);
        agent.apply_policy(&body["actions"][0]);
        let raw = checkin_request(&agent);
        agent.conn.as_mut().unwrap().send(&raw).unwrap();
        agents.push(agent);
    }
    assert!(
        server.wait_for_log_count("parked for", PARKED, Duration::from_secs(60)),
        "{} checkins parked",
        server.count_log("parked for")
    );

    // Rotate: the new certificate for new handshakes.
    std::fs::copy(&new.server.cert_path, &cert).unwrap();
    std::fs::copy(&new.server.key_path, &key).unwrap();
    server.sighup();
    let line = server
        .wait_for_log("reloaded:", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no reload line:\n{}", server.log()));
    assert!(line.contains("server certificate SHA-256"), "{line}");
    assert_eq!(served_certificate(&server, &roots), new.server.cert_der);

    // A certificate file that does not parse: one line, the rotated certificate stays.
    std::fs::File::create(&cert)
        .unwrap()
        .write_all(b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
        .unwrap();
    server.sighup();
    let failed = server
        .wait_for_log("reload (SIGHUP) failed", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no failure line:\n{}", server.log()));
    assert!(
        failed.contains("keeping the running configuration"),
        "{failed}"
    );
    assert_eq!(server.count_log("reload (SIGHUP) failed"), 1);
    assert_eq!(served_certificate(&server, &roots), new.server.cert_der);

    // Every parked checkin is still there: a new revision is answered on its connection.
    let policy = server.data_dir.join("policies/fleet-edge-default.json");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&policy).unwrap()).unwrap();
    doc["agent"]["download"] = serde_json::json!({"timeout": "3h"});
    std::fs::write(&policy, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    for agent in &mut agents {
        let resp = agent
            .conn
            .as_mut()
            .unwrap()
            .read_response()
            .unwrap_or_else(|e| panic!("agent {} lost its connection: {e}", agent.id));
        assert_eq!(resp.status, 200);
        let body = body_json(&resp);
        assert_eq!(
            body["actions"][0]["id"], "policy:fleet-edge-default:2",
            "{body}"
        );
    }
    assert!(
        server.wait_exit(Duration::from_millis(0)).is_none(),
        "SIGHUP stopped the server"
    );
}

#[test]
fn sighup_reloads_the_admin_token_and_the_log_level_and_never_stops_the_server() {
    let mut server = FleetEdge::start(&[]);
    let data_dir = server.data_dir.to_str().unwrap().to_owned();
    let env = [("FLEET_EDGE_DATA_DIR", data_dir.as_str())];
    let (status, _, stderr) = run_to_exit(&["agents"], &env);
    assert!(status.success(), "{stderr}");

    // A new token in the file is refused until the server reloads it.
    std::fs::write(
        server.data_dir.join("admin-token"),
        "a-new-admin-token-0123456789\n",
    )
    .unwrap();
    let (status, _, _) = run_to_exit(&["agents"], &env);
    assert!(
        !status.success(),
        "the running server accepted a token it had not read"
    );
    std::fs::write(server.data_dir.join("log-level"), "debug\n").unwrap();
    server.sighup();
    let line = server
        .wait_for_log("reloaded:", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no reload line:\n{}", server.log()));
    assert!(line.contains("management admin token"), "{line}");
    assert!(line.contains("log level INFO -> DEBUG"), "{line}");
    let (status, _, stderr) = run_to_exit(&["agents"], &env);
    assert!(status.success(), "{stderr}");
    // Debug lines now appear (each request answered by the store logs one).
    assert!(server
        .wait_for_log("answered 200", Duration::from_secs(10))
        .is_some());

    // A bad level file: the whole reload is refused, the token stays.
    std::fs::write(server.data_dir.join("log-level"), "loud\n").unwrap();
    server.sighup();
    let failed = server
        .wait_for_log("reload (SIGHUP) failed", Duration::from_secs(20))
        .unwrap();
    assert!(failed.contains("\"loud\""), "{failed}");
    let (status, _, stderr) = run_to_exit(&["agents"], &env);
    assert!(status.success(), "{stderr}");
    assert!(server.wait_exit(Duration::from_millis(200)).is_none());
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(20)).unwrap().success());
}

const STATUS_REQUEST: &[u8] = b"GET /api/status HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Whether a new mTLS connection with `config` is refused (handshake, or TLS 1.3's first read).
fn refused(server: &FleetEdge, config: Arc<rustls::ClientConfig>) -> bool {
    match Client::tls(server.addr, config) {
        Err(_) => true,
        Ok(mut c) => c.request(STATUS_REQUEST).is_err(),
    }
}

#[test]
fn a_replaced_client_ca_file_decides_new_mtls_handshakes_after_sighup() {
    let pki = Pki::new();
    let files = TempDir::new("reload-client-ca");
    let client_ca = files.join("agents-ca.crt");
    std::fs::copy(&pki.ca_path, &client_ca).unwrap();
    let server = FleetEdge::start(&[
        "--fleet-server-cert",
        pki.server.cert_path.to_str().unwrap(),
        "--fleet-server-cert-key",
        pki.server.key_path.to_str().unwrap(),
        "--certificate-authorities",
        client_ca.to_str().unwrap(),
        "--fleet-server-client-auth",
        "required",
    ]);
    let roots = pki.roots();
    let ours = || tls_config(&roots, Some((pki.client.chain(), pki.client.key())));
    let foreign = || {
        tls_config(
            &roots,
            Some((pki.foreign_client.chain(), pki.foreign_client.key())),
        )
    };
    let mut established = Client::tls(server.addr, ours()).unwrap();
    assert_eq!(established.request(STATUS_REQUEST).unwrap().status, 200);
    assert!(refused(&server, foreign()));

    // The agents now carry certificates of the other CA.
    std::fs::copy(&pki.other_ca_path, &client_ca).unwrap();
    server.sighup();
    let line = server
        .wait_for_log("reloaded:", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no reload line:\n{}", server.log()));
    assert!(line.contains("client certificate authorities"), "{line}");
    assert!(!line.contains("server certificate"), "{line}");
    let mut migrated = Client::tls(server.addr, foreign()).unwrap();
    assert_eq!(migrated.request(STATUS_REQUEST).unwrap().status, 200);
    assert!(refused(&server, ours()), "a certificate of the old CA");
    // The connection made before keeps its session.
    assert_eq!(established.request(STATUS_REQUEST).unwrap().status, 200);
}
