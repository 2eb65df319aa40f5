//! Production mode through the real binary: `--fleet-server-es` against the Elasticsearch
//! stand-in (seeded as Kibana would), clear startup failures, Elasticsearch going away and coming
//! back, and two fleet-edge instances sharing one cluster.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::agent::{once, raw_request, Agent};
use crate::support::client::tls_config;
use crate::support::{run_to_exit, FleetEdge, TempDir};

fn standin() -> es_standin::StandIn {
    es_standin::StandIn::start(es_standin::Options {
        refresh_interval: Some(Duration::from_millis(100)),
        ..es_standin::Options::default()
    })
    .unwrap()
}

/// Kibana's side: a policy with an Elasticsearch output and its permissions, and a token.
fn seed(es: &es_standin::StandIn) -> String {
    es.seed()
        .policy_with_data(
            "prod-policy",
            json!({"id": "prod-policy", "revision": 1,
                   "outputs": {"default": {"type": "elasticsearch", "hosts": [es.url()]}},
                   "output_permissions": {"default": {"_elastic_agent_checks": {"cluster": ["monitor"]}}},
                   "inputs": []}),
        )
        .unwrap();
    es.seed()
        .enrollment_key("prod-policy", "Default")
        .unwrap()
        .api_key
}

fn fleet_edge_on(es: &es_standin::StandIn) -> FleetEdge {
    FleetEdge::start(&[
        "--fleet-server-es",
        &es.url(),
        "--fleet-server-service-token",
        &es.service_token(),
        "--checkin-long-poll",
        "30s",
        "--checkin-jitter",
        "0s",
    ])
}

fn roots(server: &FleetEdge) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(server.data_dir.join("certs/ca.crt")).unwrap();
    tls_config(
        &[rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap()],
        None,
    )
}

fn only_action(body: &Value) -> &Value {
    &body["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("no actions: {body}"))[0]
}

#[test]
fn agents_are_served_from_elasticsearch_with_output_keys_minted_there() {
    let es = standin();
    let token = seed(&es);
    let server = fleet_edge_on(&es);
    assert!(
        server.log().contains("connected to Elasticsearch 9.6.0"),
        "{}",
        server.log()
    );
    let (mut agent, _) = Agent::enroll(server.addr, roots(&server), &token, &[]);
    assert!(
        es.document(".fleet-agents", &agent.id).is_some(),
        "agent document written to ES"
    );
    let (_, body) = agent.checkin();
    let key = only_action(&body)["data"]["policy"]["outputs"]["default"]["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    // The output key authenticates against the cluster itself.
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(&key);
    let resp = es
        .client()
        .request(
            "GET",
            "/_security/_authenticate",
            &[("Authorization", &format!("ApiKey {auth}"))],
            None,
        )
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.json());
}

#[test]
fn bad_service_token_stops_startup_with_one_sentence() {
    let es = standin();
    let data = TempDir::new("badtoken");
    let (status, _, err) = run_to_exit(
        &[
            "--data-dir",
            data.path().to_str().unwrap(),
            "--fleet-server-es",
            &es.url(),
            "--fleet-server-service-token",
            "not-a-token",
            "--fleet-server-host",
            "127.0.0.1",
            "--fleet-server-port",
            "0",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.to_lowercase().contains("token") || err.to_lowercase().contains("401"),
        "{err}"
    );
}

#[test]
fn unreachable_elasticsearch_fails_after_the_startup_timeout() {
    let data = TempDir::new("unreachable");
    let started = Instant::now();
    let (status, _, err) = run_to_exit(
        &[
            "--data-dir",
            data.path().to_str().unwrap(),
            "--fleet-server-es",
            "http://127.0.0.1:1",
            "--fleet-server-service-token",
            "t",
            "--fleet-server-timeout",
            "2s",
            "--fleet-server-host",
            "127.0.0.1",
            "--fleet-server-port",
            "0",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "retried until the timeout"
    );
    assert!(err.contains("127.0.0.1:1"), "names the host: {err}");
}

#[test]
fn elasticsearch_down_mid_run_is_503_never_401_and_recovers_without_restart() {
    let es = standin();
    let token = seed(&es);
    let server = fleet_edge_on(&es);
    let (mut agent, _) = Agent::enroll(server.addr, roots(&server), &token, &[]);
    let (_, body) = agent.checkin();
    agent.apply_policy(only_action(&body));
    es.faults().down(None);
    let raw = raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/checkin", agent.id),
        Some(&agent.access_key),
        br#"{"status":"online"}"#,
        true,
        "Elastic Agent v9.2.1",
    );
    let resp = once(server.addr, roots(&server), &raw);
    assert_eq!(
        resp.status,
        503,
        "{:?}",
        String::from_utf8_lossy(&resp.body)
    );
    assert!(resp.header("retry-after").is_some());
    es.faults().up();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = once(server.addr, roots(&server), &raw);
        if resp.status == 200 {
            break;
        }
        assert_eq!(resp.status, 503);
        assert!(Instant::now() < deadline, "never recovered");
    }
}

#[test]
fn two_instances_share_one_cluster() {
    let es = standin();
    let token = seed(&es);
    let a = fleet_edge_on(&es);
    let b = fleet_edge_on(&es);
    // One agent enrolls on A, checks in on B (keys minted through B), acks on A.
    let (mut first, _) = Agent::enroll(a.addr, roots(&a), &token, &[]);
    first.addr = b.addr;
    first.tls = roots(&b);
    let (_, body) = first.checkin();
    assert_eq!(only_action(&body)["id"], "policy:prod-policy:1");
    first.apply_policy(only_action(&body));
    first.addr = a.addr;
    first.tls = roots(&a);
    first.conn = None;
    assert_eq!(
        first
            .ack(&[("policy:prod-policy:1", "POLICY_CHANGE")])
            .0
            .status,
        200
    );
    // Another agent lives on B.
    let (mut second, _) = Agent::enroll(b.addr, roots(&b), &token, &[]);
    let (_, body) = second.checkin();
    second.apply_policy(only_action(&body));
    // Parked on different instances (or about to be), both get the new revision.
    let parked_a = std::thread::spawn(move || first.checkin().1);
    let parked_b = std::thread::spawn(move || second.checkin().1);
    es.seed().new_revision("prod-policy").unwrap();
    for body in [parked_a.join().unwrap(), parked_b.join().unwrap()] {
        assert_eq!(only_action(&body)["id"], "policy:prod-policy:2", "{body}");
    }
}
