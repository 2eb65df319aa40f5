//! Request bodies as Elastic's server reads them (issue 13 items 1, 11, 12): the container's
//! `{"events":null}` key probe through the real binary, agent timestamps stored as Go
//! re-formats them on every store, and decode errors worded as Go's decoder words them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use fleet_edge::model::Action;

use crate::protocol::{enrolled, setup};
use crate::support::agent::{body_json, raw_request, Agent};
use crate::support::client::tls_config;
use crate::support::stores::Fixture;
use crate::support::FleetEdge;

const USER_AGENT: &str = "Elastic Agent v9.2.1";

fn post(agent: &mut Agent, path: &str, body: &[u8]) -> crate::support::HttpResponse {
    let raw = raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/{path}", agent.id),
        Some(&agent.access_key.clone()),
        body,
        false,
        USER_AGENT,
    );
    agent.send(&raw)
}

/// The Elastic Agent container probes its stored key with `{"events":null}` at start-up and
/// exits on anything but 200 or 401. Elastic answers 200 with no items (Go omits the empty
/// `items` and the false `errors`).
#[test]
fn the_container_key_probe_is_answered_200() {
    let server = FleetEdge::start(&["--checkin-long-poll", "1s", "--checkin-jitter", "0s"]);
    let line = server
        .wait_for_log("elastic-agent install", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no install command printed:\n{}", server.log()));
    let token = line
        .split("--enrollment-token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let roots = {
        use rustls::pki_types::pem::PemObject;
        let pem = std::fs::read(server.data_dir.join("certs/ca.crt")).unwrap();
        tls_config(
            &[rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap()],
            None,
        )
    };
    let (mut agent, _) = Agent::enroll(server.addr, Arc::clone(&roots), &token, &[]);
    for body in [&br#"{"events":null}"#[..], br#"{"events":[]}"#, b"{}"] {
        let resp = post(&mut agent, "acks", body);
        assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(body));
        assert_eq!(
            std::str::from_utf8(&resp.body).unwrap(),
            r#"{"action":"acks"}"#
        );
    }
}

/// Ack-event and audit times are parsed as Go's `time.Time` and written back in Go's
/// `RFC3339Nano` form, keeping the agent's offset, on the store the server runs on.
fn agent_times_are_stored_as_go_formats_them(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let mut agent = enrolled(&*fixture, &server);
    for (id, action_type) in [("t-settings", "SETTINGS"), ("t-input", "INPUT_ACTION")] {
        fixture.add_action(Action {
            action_id: id.into(),
            action_type: action_type.into(),
            agents: vec![agent.id.clone()],
            data: json!({}),
            ..Action::default()
        });
    }
    let body = format!(
        r#"{{"events":[
            {{"action_id":"t-settings","agent_id":"{id}","timestamp":"2026-12-02T23:22:06.000+00:00"}},
            {{"action_id":"t-input","agent_id":"{id}","action_input_type":"osquery",
              "started_at":"2026-12-03T01:22:05.250+02:00","completed_at":"2026-12-02T23:22:06Z",
              "timestamp":"2026-12-02T18:22:06.123456789-05:00","action_response":{{"rows":1}}}}
        ]}}"#,
        id = agent.id
    );
    let resp = post(&mut agent, "acks", body.as_bytes());
    assert_eq!(resp.status, 200, "{}", body_json(&resp));
    assert_eq!(
        fixture.action_result("t-settings", &agent.id).unwrap(),
        json!({"action_id": "t-settings", "agent_id": agent.id, "@timestamp": "2026-12-02T23:22:06Z"})
    );
    assert_eq!(
        fixture.action_result("t-input", &agent.id).unwrap(),
        json!({"action_id": "t-input", "agent_id": agent.id, "action_input_type": "osquery",
            "@timestamp": "2026-12-02T18:22:06.123456789-05:00",
            "started_at": "2026-12-03T01:22:05.25+02:00", "completed_at": "2026-12-02T23:22:06Z",
            "action_response": {"rows": 1}})
    );

    let resp = post(
        &mut agent,
        "audit/unenroll",
        br#"{"reason":"uninstall","timestamp":"2026-12-02T23:22:06.500000Z"}"#,
    );
    assert_eq!(resp.status, 200);
    let doc = fixture.store().agent(&agent.id).unwrap().unwrap();
    assert_eq!(
        doc.other.get("audit_unenrolled_time"),
        Some(&Value::from("2026-12-02T23:22:06.5Z"))
    );
}

/// A time Go cannot parse in the audit body is Go's decode error, 400.
fn an_unparsable_audit_time_is_gos_400(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let mut agent = enrolled(&*fixture, &server);
    let resp = post(
        &mut agent,
        "audit/unenroll",
        br#"{"reason":"uninstall","timestamp":"2026-12-02 23:22:06"}"#,
    );
    assert_eq!(resp.status, 400);
    assert_eq!(
        body_json(&resp),
        json!({"statusCode": 400, "error": "BadRequest",
            "message": "Bad request: unable to decode audit/unenroll request: parsing time \"2026-12-02 23:22:06\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \" 23:22:06\" as \"T\""})
    );
    let doc = fixture.store().agent(&agent.id).unwrap().unwrap();
    assert!(doc
        .other
        .get("audit_unenrolled_time")
        .is_none_or(Value::is_null));
}

on_every_store!(
    agent_times_are_stored_as_go_formats_them,
    an_unparsable_audit_time_is_gos_400,
);
