//! Embedded mode through the real binary: the quick start's printed command works as printed,
//! policy files are the policies (an edit reaches parked agents, a broken file keeps the last
//! good revision), one data dir serves one process, and a kill -9 during an enroll storm loses no
//! agent that was told it enrolled.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::support::agent::Agent;
use crate::support::client::tls_config;
use crate::support::{run_to_exit, FleetEdge, TempDir};

fn ca_roots(server: &FleetEdge) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(server.data_dir.join("certs/ca.crt")).unwrap();
    tls_config(
        &[rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap()],
        None,
    )
}

/// The token from the quick start's `elastic-agent install` line.
fn printed_token(server: &FleetEdge) -> String {
    let line = server
        .wait_for_log("elastic-agent install", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no install command printed:\n{}", server.log()));
    line.split("--enrollment-token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned()
}

fn only_action(body: &Value) -> &Value {
    &body["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("no actions: {body}"))[0]
}

#[test]
fn quick_start_prints_a_working_install_command() {
    let server = FleetEdge::start(&["--checkin-long-poll", "1s", "--checkin-jitter", "0s"]);
    let line = server
        .wait_for_log("elastic-agent install", Duration::from_secs(20))
        .unwrap();
    assert!(
        line.contains(&format!("--url=https://127.0.0.1:{}", server.addr.port())),
        "{line}"
    );
    let ca = std::fs::canonicalize(server.data_dir.join("certs/ca.crt")).unwrap();
    assert!(
        line.contains(&format!("--certificate-authorities={}", ca.display())),
        "{line}"
    );
    assert!(server.log().contains("CA fingerprint:"));
    let token = printed_token(&server);
    let (mut agent, enrolled) = Agent::enroll(server.addr, ca_roots(&server), &token, &["edge"]);
    assert_eq!(enrolled["item"]["policy_id"], "fleet-edge-default");
    let (resp, body) = agent.checkin();
    assert_eq!(resp.status, 200);
    let action = only_action(&body);
    assert_eq!(action["id"], "policy:fleet-edge-default:1");
    assert_eq!(
        action["data"]["policy"]["fleet"]["hosts"],
        serde_json::json!([format!("https://127.0.0.1:{}", server.addr.port())]),
        "agents learn the URL the quick start printed"
    );
}

#[test]
fn a_policy_file_edit_reaches_parked_agents_and_a_broken_file_keeps_the_last_revision() {
    let server = FleetEdge::start(&["--checkin-long-poll", "30s", "--checkin-jitter", "0s"]);
    let token = printed_token(&server);
    let (mut agent, _) = Agent::enroll(server.addr, ca_roots(&server), &token, &[]);
    let (_, body) = agent.checkin();
    agent.apply_policy(only_action(&body));
    agent.ack(&[("policy:fleet-edge-default:1", "POLICY_CHANGE")]);

    let file = server.data_dir.join("policies/fleet-edge-default.json");
    let mut policy: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let parked = std::thread::spawn(move || {
        let (resp, body) = agent.checkin();
        (agent, resp.status, body)
    });
    // The agent is held (30 s poll); the edit must end the poll with revision 2.
    server.wait_for_log(
        "policy fleet-edge-default revision 1",
        Duration::from_secs(1),
    );
    policy["inputs"] = serde_json::json!([{"id": "logs-1", "type": "logfile", "streams": []}]);
    std::fs::write(&file, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();
    let (mut agent, status, body) = parked.join().unwrap();
    assert_eq!(status, 200);
    let action = only_action(&body);
    assert_eq!(action["id"], "policy:fleet-edge-default:2");
    assert_eq!(action["data"]["policy"]["inputs"][0]["id"], "logs-1");
    agent.apply_policy(action);

    std::fs::write(&file, b"{ \"id\": \"fleet-edge-default\", \"outputs\": ").unwrap();
    server
        .wait_for_log("rejected at line", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no rejection logged:\n{}", server.log()));
    assert!(
        server.log().contains("fleet-edge-default.json"),
        "names the file"
    );
    agent.revision = Some(0);
    let (_, body) = agent.checkin();
    assert_eq!(
        only_action(&body)["id"],
        "policy:fleet-edge-default:2",
        "last good revision still served"
    );
}

#[test]
fn a_second_fleet_edge_on_the_same_data_dir_refuses_to_start() {
    let data = TempDir::new("twice");
    let _first = FleetEdge::start_in(data.path(), &[], &[]);
    let (status, _, err) = run_to_exit(
        &[
            "--data-dir",
            data.path().to_str().unwrap(),
            "--fleet-server-host",
            "127.0.0.1",
            "--fleet-server-port",
            "0",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.to_lowercase().contains("another")
            || err.to_lowercase().contains("in use")
            || err.to_lowercase().contains("lock"),
        "{err}"
    );
}

#[test]
fn kill_9_during_an_enroll_storm_loses_no_acknowledged_agent() {
    let data = TempDir::new("storm");
    let mut server = FleetEdge::start_in(
        data.path(),
        &["--checkin-long-poll", "1s", "--checkin-jitter", "0s"],
        &[],
    );
    let token = printed_token(&server);
    let roots = ca_roots(&server);
    let addr = server.addr;
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (acknowledged, stop, roots, token) = (
                Arc::clone(&acknowledged),
                Arc::clone(&stop),
                Arc::clone(&roots),
                token.clone(),
            );
            std::thread::spawn(move || {
                let body = serde_json::to_vec(&crate::support::agent::enroll_body(&[])).unwrap();
                let raw = crate::support::agent::raw_request(
                    "POST",
                    "/api/fleet/agents/enroll",
                    Some(&token),
                    &body,
                    false,
                    "Elastic Agent v9.2.1",
                );
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let Ok(mut c) = crate::support::Client::tls(addr, Arc::clone(&roots)) else {
                        break;
                    };
                    let Ok(resp) = c.request(&raw) else { break };
                    if resp.status == 200 {
                        let item = crate::support::agent::body_json(&resp)["item"].clone();
                        acknowledged.lock().unwrap().push((
                            item["id"].as_str().unwrap().into(),
                            item["access_api_key"].as_str().unwrap().into(),
                        ));
                    }
                }
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 40 {
        assert!(std::time::Instant::now() < deadline, "enrolls too slow");
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill9();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let enrolled = acknowledged.lock().unwrap().clone();
    let server = FleetEdge::start_in(
        data.path(),
        &["--checkin-long-poll", "1s", "--checkin-jitter", "0s"],
        &[],
    );
    let roots = ca_roots(&server);
    for (id, key) in &enrolled {
        let mut agent = Agent {
            addr: server.addr,
            tls: Arc::clone(&roots),
            id: id.clone(),
            access_key: key.clone(),
            ack_token: String::new(),
            policy_id: None,
            revision: None,
            conn: None,
        };
        let (resp, _) = agent.checkin();
        assert_eq!(
            resp.status, 200,
            "agent {id} acknowledged before the kill cannot check in"
        );
    }
    assert!(enrolled.len() >= 40);
}

/// One enroll with `user_agent`: (status, body).
fn enroll_as(server: &FleetEdge, token: &str, user_agent: &str) -> (u16, Value) {
    let body = serde_json::to_vec(&crate::support::agent::enroll_body(&[])).unwrap();
    let raw = crate::support::agent::raw_request(
        "POST",
        "/api/fleet/agents/enroll",
        Some(token),
        &body,
        false,
        user_agent,
    );
    let resp = crate::support::agent::once(server.addr, ca_roots(server), &raw);
    (resp.status, crate::support::agent::body_json(&resp))
}

#[test]
fn a_newer_agent_is_refused_unless_the_claimed_version_is_raised() {
    let data = TempDir::new("version");
    let server = FleetEdge::start_in(data.path(), &[], &[]);
    let token = printed_token(&server);
    let (status, body) = enroll_as(&server, &token, "Elastic Agent v9.7.0");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "UnsupportedVersion");
    let line = server
        .wait_for_log("refused an Elastic Agent 9.7.0", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no refusal logged:\n{}", server.log()));
    assert!(
        line.contains("WARN") && line.contains("9.6.0") && line.contains("--server-version"),
        "the line names the server version and the override: {line}"
    );
    let (status, body) = enroll_as(&server, &token, "Elastic Agent v9.6.4");
    assert_eq!(status, 200, "newer only in the patch: {body}");
    // The same agent upgraded past the server: its checkin is refused and logged too.
    let id = body["item"]["id"].as_str().unwrap();
    let access_key = body["item"]["access_api_key"].as_str().unwrap();
    let raw = crate::support::agent::raw_request(
        "POST",
        &format!("/api/fleet/agents/{id}/checkin"),
        Some(access_key),
        br#"{"status":"online"}"#,
        false,
        "Elastic Agent v9.8.1",
    );
    let resp = crate::support::agent::once(server.addr, ca_roots(&server), &raw);
    assert_eq!(resp.status, 400);
    assert_eq!(
        crate::support::agent::body_json(&resp)["error"],
        "UnsupportedVersion"
    );
    let line = server
        .wait_for_log("refused an Elastic Agent 9.8.1", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("checkin refusal not logged:\n{}", server.log()));
    assert!(line.contains("Checkin"), "{line}");
    drop(server);

    let server = FleetEdge::start_in(data.path(), &[], &[("FLEET_EDGE_SERVER_VERSION", "9.7.0")]);
    let (status, body) = enroll_as(&server, &token, "Elastic Agent v9.7.0");
    assert_eq!(status, 200, "admitted with the override: {body}");
    let (status, body) = enroll_as(&server, &token, "Elastic Agent v9.8.0");
    assert_eq!(status, 400, "still Elastic's rule above it: {body}");
    assert_eq!(body["error"], "UnsupportedVersion");
    // The long status form reports the claimed version (any valid key gets it).
    let raw =
        format!("GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: ApiKey {token}\r\n\r\n");
    let resp = crate::support::agent::once(server.addr, ca_roots(&server), raw.as_bytes());
    assert_eq!(
        crate::support::agent::body_json(&resp)["version"]["number"],
        "9.7.0"
    );
}
