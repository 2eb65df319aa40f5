//! The server's side of what a real Elastic Agent does (agent-client.md §8, "twenty behaviours",
//! and the §14 checks not covered elsewhere): each test is named after the behaviour and runs
//! against every store.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use fleet_edge::model::Action;

use crate::protocol::{checks, enrolled, error_of, only_action, park, policy, setup, Fixture};
use crate::support::agent::{body_json, enroll_body, once, raw_request, Agent, VERSION};
use crate::support::Client;

fn ua() -> String {
    format!("Elastic Agent v{VERSION}")
}

/// §14 check 1: the enroll reply has everything the agent requires.
fn check_01_enroll_happy_path(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let token = fixture.add_token("edge-policy");
    let (_, reply) = Agent::enroll(
        server.addr,
        server.tls(),
        &token.encoded(),
        &["b", "a", "b"],
    );
    let item = &reply["item"];
    assert_eq!(reply["action"], "created");
    assert_eq!(item["type"], "PERMANENT");
    assert_eq!(item["policy_id"], "edge-policy");
    assert_eq!(item["status"], "online");
    assert_eq!(item["tags"], json!(["a", "b"]));
    assert!(item["access_api_key"]
        .as_str()
        .is_some_and(|k| !k.is_empty()));
    assert!(
        fleet_edge::model::time::parse_rfc3339(item["enrolled_at"].as_str().unwrap()).is_some()
    );
}

/// §14 check 5: the first checkin after enrolling is an immediate POLICY_CHANGE.
fn check_05_first_checkin_delivers_policy_change(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "30s");
    let mut a = enrolled(&*fixture, &server);
    let started = Instant::now();
    let (_, body) = a.checkin();
    assert!(started.elapsed() < Duration::from_secs(5));
    let action = only_action(&body);
    assert_eq!(action["type"], "POLICY_CHANGE");
    assert_eq!(action["id"], "policy:edge-policy:1");
    assert_eq!(action["agent_id"], a.id.as_str());
    assert_eq!(action["input_type"], "");
    // Go's omitempty: a policy without secrets has no `secret_paths` member, not `[]`.
    assert!(action["data"]["policy"].get("secret_paths").is_none());
    assert!(action["data"]["policy"].get("secret_references").is_none());
}

/// §14 check 6: nothing to deliver → the request is held, then `{"ack_token":"","action":"checkin"}`.
fn check_06_long_poll_holds(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "2s");
    let mut a = enrolled(&*fixture, &server);
    let (_, body) = a.checkin();
    a.apply_policy(only_action(&body));
    let started = Instant::now();
    let (resp, body) = a.checkin();
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "held {:?}",
        started.elapsed()
    );
    assert_eq!(resp.status, 200);
    assert_eq!(body, json!({"ack_token": "", "action": "checkin"}));
}

/// §14 check 7: a new action and a new revision each end a parked poll early.
fn check_07_early_wake_up(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "60s");
    let mut a = enrolled(&*fixture, &server);
    let (_, body) = a.checkin();
    a.apply_policy(only_action(&body));
    let id = a.id.clone();
    let started = Instant::now();
    let parked = park(a);
    server.wait_parked(1);
    fixture.add_action(Action {
        action_id: "s1".into(),
        action_type: "SETTINGS".into(),
        agents: vec![id],
        data: json!({"log_level": "debug"}),
        ..Action::default()
    });
    let (a, status, body) = parked.join().unwrap();
    assert_eq!(
        (status, only_action(&body)["id"].as_str()),
        (200, Some("s1"))
    );
    let parked = park(a);
    server.wait_parked(1);
    fixture.add_policy(policy("edge-policy", 2, checks()));
    let (_, status, body) = parked.join().unwrap();
    assert_eq!(
        (status, only_action(&body)["id"].as_str()),
        (200, Some("policy:edge-policy:2"))
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "woken, not timed out"
    );
}

/// §14 check 11: UNENROLL delivered with `data: null`, acked, then 401.
fn check_11_unenroll_flow(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let mut a = enrolled(&*fixture, &server);
    let (_, body) = a.checkin();
    a.apply_policy(only_action(&body));
    let u = fixture.add_action(Action {
        action_id: "unenroll-1".into(),
        action_type: "UNENROLL".into(),
        agents: vec![a.id.clone()],
        ..Action::default()
    });
    let (_, body) = a.checkin();
    assert_eq!(only_action(&body)["data"], Value::Null);
    let (resp, _) = a.ack(&[(u.action_id.as_str(), "UNENROLL")]);
    assert_eq!(resp.status, 200);
    assert_eq!(a.checkin().0.status, 401);
    assert!(!fixture.store().agent(&a.id).unwrap().unwrap().active);
}

/// 1. HTTP/1.1, a target ending in a bare `?`, Content-Length bodies, keep-alive reuse.
fn behaviour_01_request_line_and_framing(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let mut a = enrolled(&*fixture, &server);
    let mut conn = Client::tls(server.addr, server.tls()).unwrap();
    let checkin = raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/checkin", a.id),
        Some(&a.access_key),
        br#"{"status":"online"}"#,
        false,
        &ua(),
    );
    assert_eq!(conn.request(&checkin).unwrap().status, 200);
    let ack = raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/acks", a.id),
        Some(&a.access_key),
        br#"{"events":[]}"#,
        false,
        &ua(),
    );
    assert_eq!(
        conn.request(&ack).unwrap().status,
        200,
        "same connection reused"
    );
    a.conn = Some(conn);
}

/// 2. The fixed headers (kbn-xsrf, Accept, X-Request-ID, Accept-Encoding) are accepted; the id is echoed.
fn behaviour_02_fixed_headers(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let token = fixture.add_token("edge-policy");
    let body = serde_json::to_vec(&enroll_body(&[])).unwrap();
    let raw = raw_request(
        "POST",
        "/api/fleet/agents/enroll",
        Some(&token.encoded()),
        &body,
        false,
        &ua(),
    );
    let resp = once(server.addr, server.tls(), &raw);
    assert_eq!(resp.status, 200);
    let sent = String::from_utf8_lossy(&raw)
        .lines()
        .find(|l| l.starts_with("X-Request-Id"))
        .unwrap()
        .split(": ")
        .nth(1)
        .unwrap()
        .to_owned();
    assert_eq!(resp.header("x-request-id"), Some(sent.as_str()));
}

/// 3. After enrolling, everything (status included) uses the access key.
fn behaviour_03_access_key_for_everything_after_enroll(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let a = enrolled(&*fixture, &server);
    assert!(body_json(&a.status_probe())["version"].is_object());
}

/// 4. The exact enroll body: empty `id`/`replace_token` mean unset; `tags` may be null.
fn behaviour_04_enroll_body_exactly(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let token = fixture.add_token("edge-policy");
    let mut body = enroll_body(&[]);
    body["metadata"]["tags"] = Value::Null;
    body["metadata"]["user_provided"] = Value::Null;
    let raw = raw_request(
        "POST",
        "/api/fleet/agents/enroll",
        Some(&token.encoded()),
        &serde_json::to_vec(&body).unwrap(),
        false,
        &ua(),
    );
    let reply = body_json(&once(server.addr, server.tls(), &raw));
    assert_eq!(reply["item"]["tags"], json!([]));
    assert_eq!(
        reply["item"]["id"].as_str().unwrap().len(),
        36,
        "server-chosen UUID"
    );
}

/// 5. Enroll failures the agent retries are 429/503, never 401, when the token is fine.
fn behaviour_05_enroll_retryable_statuses(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let token = fixture.add_token("edge-policy");
    let body = serde_json::to_vec(&enroll_body(&[])).unwrap();
    let raw = raw_request(
        "POST",
        "/api/fleet/agents/enroll",
        Some(&token.encoded()),
        &body,
        false,
        &ua(),
    );
    // The enroll limiter's burst is 50: hammering yields 429s with the spec body, not 401s.
    let statuses: Vec<u16> = (0..60)
        .map(|_| once(server.addr, server.tls(), &raw).status)
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
}

/// 6. Checkin bodies arrive gzip-compressed.
fn behaviour_06_gzip_checkin_bodies(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let mut a = enrolled(&*fixture, &server);
    assert_eq!(
        a.checkin().0.status,
        200,
        "the test agent always gzips its checkin body"
    );
}

/// 7. Checkin fields: `components` null, `upgrade: {}`, no `poll_timeout`.
fn behaviour_07_checkin_fields(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let a = enrolled(&*fixture, &server);
    let body = br#"{"status":"starting","message":"Waiting for initial configuration and composable variables","components":null,"upgrade":{}}"#;
    let raw = raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/checkin", a.id),
        Some(&a.access_key),
        body,
        true,
        &ua(),
    );
    assert_eq!(once(server.addr, server.tls(), &raw).status, 200);
}

/// 8. Status words are stored verbatim, upper-case DEGRADED included.
fn behaviour_08_status_words_stored_verbatim(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let a = enrolled(&*fixture, &server);
    let raw = raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/checkin", a.id),
        Some(&a.access_key),
        br#"{"status":"DEGRADED","message":"m"}"#,
        true,
        &ua(),
    );
    assert_eq!(once(server.addr, server.tls(), &raw).status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while fixture
        .store()
        .agent(&a.id)
        .unwrap()
        .unwrap()
        .last_checkin_status
        != "DEGRADED"
    {
        assert!(Instant::now() < deadline, "checkin state never written");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 9. A non-empty ack_token is echoed on the next checkin and moves the position.
fn behaviour_09_ack_token_echoed(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let mut a = enrolled(&*fixture, &server);
    let (_, body) = a.checkin();
    a.apply_policy(only_action(&body));
    let act = fixture.add_action(Action {
        action_id: "c1".into(),
        action_type: "CANCEL".into(),
        agents: vec![a.id.clone()],
        data: json!({"target_id": "x"}),
        ..Action::default()
    });
    let (resp, body) = a.checkin();
    assert_eq!(a.ack_token, act.doc_id, "reply {}: {body}", resp.status);
    let (_, body) = a.checkin();
    assert!(body.get("actions").is_none());
}

/// 10. The agent re-checks in ~1 s after a 200: the server must hold it, not answer at once.
fn behaviour_10_cadence_needs_a_held_poll(fixture: Box<dyn Fixture>) {
    check_06_long_poll_holds(fixture);
}

/// 11. Checkin errors carry the JSON error body the agent logs.
fn behaviour_11_checkin_errors_have_json_bodies(fixture: Box<dyn Fixture>) {
    let (_fixture, server) = setup(fixture, "1s");
    let raw = raw_request(
        "POST",
        "/api/fleet/agents/nobody/checkin",
        None,
        br#"{"status":"online"}"#,
        true,
        &ua(),
    );
    let resp = once(server.addr, server.tls(), &raw);
    assert_eq!(error_of(&resp), (401, "ErrNoAuthHeader".into()));
}

/// 12. 401 on checkin after unenroll.
fn behaviour_12_unauthorized_after_unenroll(fixture: Box<dyn Fixture>) {
    check_11_unenroll_flow(fixture);
}

/// 13. Unknown action types are never delivered (so never acked).
fn behaviour_13_unknown_types_never_delivered(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let mut a = enrolled(&*fixture, &server);
    let (_, body) = a.checkin();
    a.apply_policy(only_action(&body));
    fixture.add_action(Action {
        action_id: "x".into(),
        action_type: "FROBNICATE".into(),
        agents: vec![a.id.clone()],
        ..Action::default()
    });
    let (_, body) = a.checkin();
    assert!(body.get("actions").is_none(), "{body}");
}

/// 14. Before switching hosts the agent probes `/api/status` with its access key: 200 needed.
fn behaviour_14_status_probe_before_policy_change(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let a = enrolled(&*fixture, &server);
    assert_eq!(a.status_probe().status, 200);
}

/// 15. Ack events in the agent's template (with RFC3339Nano timestamps) are accepted.
fn behaviour_15_ack_event_template(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let mut a = enrolled(&*fixture, &server);
    let (resp, body) = a.ack(&[("policy:edge-policy:1", "POLICY_CHANGE")]);
    assert_eq!((resp.status, &body["action"]), (200, &json!("acks")));
}

/// 16. Ack replies always carry `"action":"acks"`, whatever the status.
fn behaviour_16_ack_replies_always_say_acks(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let mut a = enrolled(&*fixture, &server);
    let (resp, body) = a.ack(&[
        ("missing", "UPGRADE"),
        ("policy:edge-policy:1", "POLICY_CHANGE"),
    ]);
    assert_eq!(resp.status, 404);
    assert_eq!(body["action"], "acks");
    assert_eq!(body["items"][1]["status"], 200, "other items processed");
}

/// 17. After a restart the agent re-acks the stored POLICY_CHANGE: idempotent.
fn behaviour_17_reack_after_restart(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let mut a = enrolled(&*fixture, &server);
    for _ in 0..2 {
        let (resp, _) = a.ack(&[("policy:edge-policy:1", "POLICY_CHANGE")]);
        assert_eq!(resp.status, 200);
    }
    assert_eq!(
        fixture
            .store()
            .agent(&a.id)
            .unwrap()
            .unwrap()
            .policy_revision_idx,
        1
    );
}

/// 18. An in-flight checkin aborted by the agent (UNENROLL handling) is cleaned up.
fn behaviour_18_aborted_checkin_is_released(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "60s");
    let mut a = enrolled(&*fixture, &server);
    let (_, body) = a.checkin();
    a.apply_policy(only_action(&body));
    let mut conn = Client::tls(server.addr, server.tls()).unwrap();
    let body = serde_json::to_vec(&a.checkin_body("online")).unwrap();
    conn.send(&raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/checkin", a.id),
        Some(&a.access_key),
        &body,
        true,
        &ua(),
    ))
    .unwrap();
    server.wait_parked(1);
    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server
        .stats
        .parked
        .load(std::sync::atomic::Ordering::Relaxed)
        > 0
    {
        assert!(
            Instant::now() < deadline,
            "parked checkin of a closed connection never released"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// 19. A long poll overlaps acks and status calls on other connections.
fn behaviour_19_concurrent_connections(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "60s");
    let mut a = enrolled(&*fixture, &server);
    let (_, body) = a.checkin();
    a.apply_policy(only_action(&body));
    let mut side = Agent {
        conn: None,
        ..clone_agent(&a)
    };
    let parked = park(a);
    server.wait_parked(1);
    assert_eq!(
        side.ack(&[("policy:edge-policy:1", "POLICY_CHANGE")])
            .0
            .status,
        200
    );
    assert_eq!(side.status_probe().status, 200);
    fixture.add_policy(policy("edge-policy", 2, checks()));
    assert_eq!(parked.join().unwrap().1, 200);
}

fn clone_agent(a: &Agent) -> Agent {
    Agent {
        addr: a.addr,
        tls: a.tls.clone(),
        id: a.id.clone(),
        access_key: a.access_key.clone(),
        ack_token: a.ack_token.clone(),
        policy_id: a.policy_id.clone(),
        revision: a.revision,
        conn: None,
    }
}

/// 20. TLS 1.2 and 1.3 clients, without ALPN, are both served.
fn behaviour_20_tls_versions(fixture: Box<dyn Fixture>) {
    let (_fixture, server) = setup(fixture, "1s");
    for versions in [
        &[&rustls::version::TLS12][..],
        &[&rustls::version::TLS13][..],
    ] {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(server.pki.ca_der.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let resp = once(
            server.addr,
            std::sync::Arc::new(config),
            b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert_eq!(resp.status, 200);
    }
}

/// §3.2 step 10: while parked, the agent's `last_checkin` keeps moving (Kibana shows it online).
fn parked_agents_keep_checking_in(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "60s");
    let mut a = enrolled(&*fixture, &server);
    let (_, body) = a.checkin();
    a.apply_policy(only_action(&body));
    let id = a.id.clone();
    let parked = park(a);
    server.wait_parked(1);
    let last = |fixture: &dyn Fixture| fixture.store().agent(&id).unwrap().unwrap().last_checkin;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut first = last(&*fixture);
    while first.is_empty() {
        assert!(Instant::now() < deadline, "never written");
        std::thread::sleep(Duration::from_millis(20));
        first = last(&*fixture);
    }
    // Second precision: a refresh at least a second later shows as a new value.
    while last(&*fixture) == first {
        assert!(
            Instant::now() < deadline,
            "last_checkin did not move while parked"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        server
            .stats
            .parked
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "still the same parked poll"
    );
    drop(server);
    let _ = parked.join();
}

/// `POST /api/fleet/agents/{id}/audit/unenroll` (§8): recorded, 409 once orphaned, removed by a
/// later checkin.
fn audit_unenroll_endpoint(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let a = enrolled(&*fixture, &server);
    let audit = |reason: &str| {
        let body =
            serde_json::to_vec(&json!({"reason": reason, "timestamp": "2026-05-01T10:00:00Z"}))
                .unwrap();
        once(
            server.addr,
            server.tls(),
            &raw_request(
                "POST",
                &format!("/api/fleet/agents/{}/audit/unenroll", a.id),
                Some(&a.access_key),
                &body,
                false,
                &ua(),
            ),
        )
    };
    assert_eq!(error_of(&audit("bored")).0, 400);
    let ok = audit("orphaned");
    assert_eq!(ok.status, 200);
    assert!(ok.body.is_empty());
    assert_eq!(
        fixture
            .store()
            .agent(&a.id)
            .unwrap()
            .unwrap()
            .audit_unenrolled_reason,
        "orphaned"
    );
    assert_eq!(
        error_of(&audit("uninstall")),
        (409, "ErrAuditReasonConflict".into())
    );
    let raw = raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/checkin", a.id),
        Some(&a.access_key),
        br#"{"status":"online"}"#,
        true,
        &ua(),
    );
    assert_eq!(once(server.addr, server.tls(), &raw).status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fixture
        .store()
        .agent(&a.id)
        .unwrap()
        .unwrap()
        .audit_unenrolled_reason
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "checkin did not remove the audit fields"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

on_every_store!(
    check_01_enroll_happy_path,
    check_05_first_checkin_delivers_policy_change,
    check_06_long_poll_holds,
    check_07_early_wake_up,
    check_11_unenroll_flow,
    behaviour_01_request_line_and_framing,
    behaviour_02_fixed_headers,
    behaviour_03_access_key_for_everything_after_enroll,
    behaviour_04_enroll_body_exactly,
    behaviour_05_enroll_retryable_statuses,
    behaviour_06_gzip_checkin_bodies,
    behaviour_07_checkin_fields,
    behaviour_08_status_words_stored_verbatim,
    behaviour_09_ack_token_echoed,
    behaviour_10_cadence_needs_a_held_poll,
    behaviour_11_checkin_errors_have_json_bodies,
    behaviour_12_unauthorized_after_unenroll,
    behaviour_13_unknown_types_never_delivered,
    behaviour_14_status_probe_before_policy_change,
    behaviour_15_ack_event_template,
    behaviour_16_ack_replies_always_say_acks,
    behaviour_17_reack_after_restart,
    behaviour_18_aborted_checkin_is_released,
    behaviour_19_concurrent_connections,
    behaviour_20_tls_versions,
    audit_unenroll_endpoint,
    parked_agents_keep_checking_in,
);
