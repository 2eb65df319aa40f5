//! The thread budget of `src/lib.rs`, counted in `/proc/<pid>/task` of the real binary once an
//! agent has enrolled and received its policy (every thread that exists at all exists by then):
//! embedded mode at most 4, Elasticsearch mode at most 7. Also: a policy-file edit reaches a
//! parked agent within a second (the scan is a timer of the event loop, not a thread).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::agent::Agent;
use crate::support::client::tls_config;
use crate::support::FleetEdge;

/// The names of the process's threads (`comm` of each task).
pub fn threads(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|task| {
            let path = task.unwrap().path().join("comm");
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        })
        .collect();
    names.sort();
    names
}

fn ca_roots(server: &FleetEdge) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(server.data_dir.join("certs/ca.crt")).unwrap();
    tls_config(
        &[rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap()],
        None,
    )
}

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

/// Enrolls, checks in (the policy came through the change feed), acks it and checks in again:
/// every path that starts a thread has run.
fn exercise(server: &FleetEdge, token: &str) -> Agent {
    let (mut agent, _) = Agent::enroll(server.addr, ca_roots(server), token, &[]);
    let (resp, body) = agent.checkin();
    assert_eq!(resp.status, 200, "{body}");
    let action = only_action(&body).clone();
    agent.apply_policy(&action);
    let id = action["id"].as_str().unwrap().to_owned();
    agent.ack(&[(&id, "POLICY_CHANGE")]);
    agent
}

#[test]
fn embedded_mode_runs_at_most_four_threads() {
    let server = FleetEdge::start(&["--checkin-long-poll", "1s", "--checkin-jitter", "0s"]);
    let token = printed_token(&server);
    let mut agent = exercise(&server, &token);
    let (resp, _) = agent.checkin();
    assert_eq!(resp.status, 200);
    let names = threads(server.pid());
    assert!(names.len() <= 4, "{} threads: {names:?}", names.len());
}

#[test]
fn elasticsearch_mode_runs_at_most_seven_threads() {
    let es = es_standin::StandIn::start(es_standin::Options {
        refresh_interval: Some(Duration::from_millis(100)),
        ..es_standin::Options::default()
    })
    .unwrap();
    es.seed()
        .policy_with_data(
            "threads-policy",
            json!({"id": "threads-policy", "revision": 1,
                   "outputs": {"default": {"type": "elasticsearch", "hosts": [es.url()]}},
                   "output_permissions": {"default": {"_elastic_agent_checks": {"cluster": ["monitor"]}}},
                   "inputs": []}),
        )
        .unwrap();
    let token = es
        .seed()
        .enrollment_key("threads-policy", "Default")
        .unwrap()
        .api_key;
    let server = FleetEdge::start(&[
        "--fleet-server-es",
        &es.url(),
        "--fleet-server-service-token",
        &es.service_token(),
        "--checkin-long-poll",
        "1s",
        "--checkin-jitter",
        "0s",
    ]);
    let mut agent = exercise(&server, &token);
    let (resp, _) = agent.checkin();
    assert_eq!(resp.status, 200);
    let names = threads(server.pid());
    assert!(names.len() <= 7, "{} threads: {names:?}", names.len());
}

#[test]
fn policy_file_edits_reach_a_parked_agent_within_a_second() {
    let server = FleetEdge::start(&["--checkin-long-poll", "30s", "--checkin-jitter", "0s"]);
    let token = printed_token(&server);
    let mut agent = exercise(&server, &token);
    let file = server.data_dir.join("policies/fleet-edge-default.json");
    let mut policy: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    // Three edits: with a scan every two seconds, each would have had even odds of passing.
    for revision in 2..5 {
        // Measured from the write: the agent holds the previous revision, so its answer cannot
        // come before the edit is installed, whether or not it was parked by then.
        let checkin = std::thread::spawn(move || {
            let (resp, body) = agent.checkin();
            (agent, resp.status, body, Instant::now())
        });
        policy["inputs"] =
            json!([{"id": format!("logs-{revision}"), "type": "logfile", "streams": []}]);
        let written = Instant::now();
        std::fs::write(&file, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();
        let (back, status, body, answered) = checkin.join().unwrap();
        agent = back;
        assert_eq!(status, 200);
        let action = only_action(&body);
        assert_eq!(
            action["id"],
            format!("policy:fleet-edge-default:{revision}")
        );
        let took = answered.duration_since(written);
        assert!(
            took < Duration::from_secs(1),
            "edit {revision} took {took:?}"
        );
        agent.apply_policy(action);
        agent.ack(&[(action["id"].as_str().unwrap(), "POLICY_CHANGE")]);
    }
}
