//! Elasticsearch trouble through the real binary (issue 15 §1): while the cluster hangs, every
//! enroll, ack and checkin is answered by its deadline (the backend timeout, or the checkin's
//! long poll) with 503 and a jittered `Retry-After`, never left waiting; afterwards the same
//! agent is served again; and in agent mode `/api/status` is HEALTHY again within 3 s of the
//! cluster coming back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::agent::{once, raw_request, Agent};
use crate::support::client::{tls_config, HttpResponse};
use crate::support::FleetEdge;

fn standin() -> es_standin::StandIn {
    es_standin::StandIn::start(es_standin::Options {
        refresh_interval: Some(Duration::from_millis(100)),
        ..es_standin::Options::default()
    })
    .unwrap()
}

fn roots(server: &FleetEdge) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(server.data_dir.join("certs/ca.crt")).unwrap();
    tls_config(
        &[rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap()],
        None,
    )
}

/// Sends `raw` on a new connection; the answer and how long it took.
fn timed(addr: SocketAddr, tls: Arc<rustls::ClientConfig>, raw: &[u8]) -> (HttpResponse, Duration) {
    let began = Instant::now();
    let resp = once(addr, tls, raw);
    (resp, began.elapsed())
}

fn assert_503_by(what: &str, (resp, took): &(HttpResponse, Duration), limit: Duration) {
    assert_eq!(
        resp.status,
        503,
        "{what}: {:?}",
        String::from_utf8_lossy(&resp.body)
    );
    assert!(
        *took <= limit,
        "{what} answered after {took:?} (limit {limit:?})"
    );
    let retry: u64 = resp
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no Retry-After"));
    assert!((5..=15).contains(&retry), "{what}: Retry-After {retry}");
}

#[test]
fn every_request_is_answered_by_its_deadline_while_elasticsearch_hangs() {
    let es = standin();
    es.seed()
        .policy_with_data(
            "hang-policy",
            json!({"id": "hang-policy", "revision": 1,
                   "outputs": {"default": {"type": "elasticsearch", "hosts": [es.url()]}},
                   "output_permissions": {"default": {"_elastic_agent_checks": {"cluster": ["monitor"]}}},
                   "inputs": []}),
        )
        .unwrap();
    let token = es
        .seed()
        .enrollment_key("hang-policy", "Default")
        .unwrap()
        .api_key;
    let server = FleetEdge::start(&[
        "--fleet-server-es",
        &es.url(),
        "--fleet-server-service-token",
        &es.service_token(),
        "--backend-timeout",
        "2s",
        "--checkin-long-poll",
        "4s",
        "--checkin-jitter",
        "0s",
    ]);
    let tls = roots(&server);
    let (mut agent, _) = Agent::enroll(server.addr, Arc::clone(&tls), &token, &[]);
    let (_, body) = agent.checkin();
    agent.apply_policy(&body["actions"][0]);
    let ua = "Elastic Agent v9.2.1";
    let checkin = raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/checkin", agent.id),
        Some(&agent.access_key),
        &serde_json::to_vec(&agent.checkin_body("online")).unwrap(),
        false,
        ua,
    );
    let ack = raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/acks", agent.id),
        Some(&agent.access_key),
        &serde_json::to_vec(
            &json!({"events": [{"type": "ACTION_RESULT", "subtype": "ACKNOWLEDGED",
            "agent_id": agent.id, "action_id": "policy:hang-policy:1",
            "message": "Action \"policy:hang-policy:1\" of type \"POLICY_CHANGE\" acknowledged.",
            "timestamp": "2026-12-03T09:00:01.734912345Z"}]}),
        )
        .unwrap(),
        false,
        ua,
    );
    let enroll = raw_request(
        "POST",
        "/api/fleet/agents/enroll",
        Some(&token),
        &serde_json::to_vec(&crate::support::agent::enroll_body(&[])).unwrap(),
        false,
        ua,
    );

    es.faults().hang(true);
    // Backend timeout 2 s: answered by 3 s whatever Elasticsearch does.
    let limit = Duration::from_secs(3);
    let (acks, enrolls, checkins) = std::thread::scope(|s| {
        let acks = s.spawn(|| timed(server.addr, Arc::clone(&tls), &ack));
        let enrolls = s.spawn(|| timed(server.addr, Arc::clone(&tls), &enroll));
        let checkins = s.spawn(|| timed(server.addr, Arc::clone(&tls), &checkin));
        (
            acks.join().unwrap(),
            enrolls.join().unwrap(),
            checkins.join().unwrap(),
        )
    });
    assert_503_by("ack", &acks, limit);
    assert_503_by("enroll", &enrolls, limit);
    // A checkin waits up to its long poll (4 s), then is answered.
    assert_503_by("checkin", &checkins, Duration::from_secs(5));

    es.faults().hang(false);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let resp = once(server.addr, Arc::clone(&tls), &ack);
        if resp.status == 200 {
            break;
        }
        assert_eq!(
            resp.status,
            503,
            "{:?}",
            String::from_utf8_lossy(&resp.body)
        );
        assert!(Instant::now() < deadline, "acks never served again");
    }
}

#[test]
fn status_is_healthy_within_3s_of_elasticsearch_coming_back() {
    let es = standin();
    es.seed()
        .policy_with_data(
            "fs-policy",
            json!({"id": "fs-policy", "revision": 1,
                   "outputs": {"default": {"type": "elasticsearch", "hosts": [es.url()]}},
                   "output_permissions": {"default": {"_elastic_agent_checks": {"cluster": ["monitor"]}}},
                   "inputs": [{"id": "fleet_server-fs", "type": "fleet-server", "use_output": "default",
                               "server": {"host": "127.0.0.1"}}]}),
        )
        .unwrap();
    es.seed()
        .enrollment_key("fs-policy", "Fleet Server")
        .unwrap();
    let server = FleetEdge::start(&[
        "--fleet-server-es",
        &es.url(),
        "--fleet-server-service-token",
        &es.service_token(),
        "--fleet-server-policy",
        "fs-policy",
    ]);
    let tls = roots(&server);
    let status = || {
        let raw = raw_request("GET", "/api/status", None, b"", false, "curl/8");
        once(server.addr, Arc::clone(&tls), &raw).status
    };
    let wait_for = |code: u16, within: Duration| -> Duration {
        let began = Instant::now();
        while status() != code {
            assert!(
                began.elapsed() < within,
                "status never {code} within {within:?}:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        began.elapsed()
    };
    wait_for(200, Duration::from_secs(20));
    for round in 0..2 {
        es.faults().down(None);
        wait_for(503, Duration::from_secs(20));
        // Long enough for every retry backoff to have grown.
        std::thread::sleep(Duration::from_secs(4));
        es.faults().up();
        let back = wait_for(200, Duration::from_secs(10));
        assert!(
            back <= Duration::from_secs(3),
            "round {round}: HEALTHY {back:?} after Elasticsearch came back"
        );
    }
}
