//! Request-body fidelity per endpoint (issue 13 items 1, 11, 12): every member Go accepts as
//! `null` is accepted, agent timestamps are re-formatted as Go does, and decode errors carry
//! Go's wording behind each endpoint's prefix.

use std::time::SystemTime;

use serde_json::{json, Value};

use super::ack::ack;
use super::audit::audit_unenroll;
use super::checkin::checkin_start;
use super::enroll::enroll;
use super::testkit::{remotes, store_with_agent, store_with_policy};
use crate::backend::interface::{AckInput, AuditInput, CheckinInput, EnrollInput};
use crate::backend::memory::MemoryStore;
use crate::backend::OpError;
use crate::backend::{ApiKey, Store};
use crate::model::Action;

fn ack_body(store: &MemoryStore, key: &ApiKey, body: &[u8]) -> Result<(u16, Value), OpError> {
    let input = AckInput {
        key: key.clone(),
        agent_id: "a1".into(),
        body: crate::api::ack::parse(body),
    };
    ack(store, &remotes(), &input, SystemTime::now()).map(|o| (o.status, o.body))
}

fn checkin_body(store: &MemoryStore, key: &ApiKey, body: &[u8]) -> Result<(), OpError> {
    let input = CheckinInput {
        key: key.clone(),
        agent_id: "a1".into(),
        agent_version: Ok("9.2.1".into()),
        body: crate::api::checkin::parse(body),
        deferred: None,
    };
    checkin_start(store, &remotes(), &input, SystemTime::now()).map(|_| ())
}

fn enroll_body(body: &[u8]) -> Result<Value, OpError> {
    let (store, token) = store_with_policy("p");
    let input = EnrollInput {
        key: token,
        agent_version: Ok("9.2.1".into()),
        body: crate::api::enroll::parse(body),
        pbkdf2_iterations: 1000,
        enrollment_id: None,
        client_ip: None,
    };
    enroll(&*store, &input, SystemTime::now())
}

fn audit_body(store: &MemoryStore, key: &ApiKey, body: &[u8]) -> Result<(), OpError> {
    let input = AuditInput {
        key: key.clone(),
        agent_id: "a1".into(),
        body: crate::api::audit::parse(body),
    };
    audit_unenroll(store, &input, SystemTime::now())
}

/// One action of each type whose event variant carries extra members.
fn with_actions() -> (MemoryStore, ApiKey) {
    let (store, key) = store_with_agent("a1");
    for (id, action_type) in [
        ("plain", "SETTINGS"),
        ("diag", "REQUEST_DIAGNOSTICS"),
        ("input", "INPUT_ACTION"),
        ("upgrade", "UPGRADE"),
    ] {
        store
            .add_action(Action {
                action_id: id.into(),
                action_type: action_type.into(),
                agents: vec!["a1".into()],
                ..Action::default()
            })
            .unwrap();
    }
    (store, key)
}

#[test]
fn ack_accepts_null_wherever_go_does() {
    let (store, key) = with_actions();
    // The container's key probe and its relatives: no events, 200, no `items`, no `errors`.
    for body in [r#"{"events":null}"#, r#"{"events":[]}"#, "{}", "null"] {
        assert_eq!(
            ack_body(&store, &key, body.as_bytes()).unwrap(),
            (200, json!({"action": "acks"})),
            "{body}"
        );
    }
    let members = [
        "agent_id",
        "error",
        "message",
        "type",
        "subtype",
        "timestamp",
        "payload",
        "data",
        "action_input_type",
        "action_data",
        "action_response",
        "started_at",
        "completed_at",
    ];
    for action in ["plain", "diag", "input", "upgrade"] {
        for member in members {
            let mut event = json!({"action_id": action, "agent_id": "a1",
                "timestamp": "2026-05-01T10:00:00Z"});
            event[member] = Value::Null;
            let body = serde_json::to_vec(&json!({"events": [event]})).unwrap();
            assert_eq!(
                ack_body(&store, &key, &body).map(|(status, _)| status),
                Ok(200),
                "{action} with {member}: null"
            );
        }
    }
    // A null event is Go's zero event: no action id, so no action (404), not a 400.
    let (status, _) = ack_body(&store, &key, br#"{"events":[null]}"#).unwrap();
    assert_eq!(status, 404);
}

#[test]
fn checkin_accepts_null_wherever_go_does() {
    let (store, key) = store_with_agent("a1");
    for member in [
        "message",
        "ack_token",
        "local_metadata",
        "components",
        "poll_timeout",
        "upgrade_details",
        "agent_policy_id",
        "policy_revision_idx",
        "upgrade",
    ] {
        let mut body = json!({"status": "online"});
        body[member] = Value::Null;
        assert_eq!(
            checkin_body(&store, &key, &serde_json::to_vec(&body).unwrap()),
            Ok(()),
            "{member}: null"
        );
    }
    // `status: null` is the empty status Go refuses after decoding.
    assert_eq!(
        checkin_body(&store, &key, br#"{"status":null}"#),
        Err(OpError::Invalid("checkin status missing".into()))
    );
}

#[test]
fn enroll_accepts_null_wherever_go_does() {
    let base = || json!({"type": "PERMANENT", "metadata": {"local": {}, "tags": ["a"]}});
    for path in [
        &["id"][..],
        &["replace_token"],
        &["enrollment_id"],
        &["shared_id"],
        &["metadata"],
        &["metadata", "local"],
        &["metadata", "tags"],
        &["metadata", "user_provided"],
    ] {
        let mut body = base();
        match path {
            [one] => body[*one] = Value::Null,
            [outer, inner] => body[*outer][*inner] = Value::Null,
            _ => unreachable!(),
        }
        assert!(
            enroll_body(&serde_json::to_vec(&body).unwrap()).is_ok(),
            "{path:?}: null"
        );
    }
    let out = enroll_body(br#"{"type":"PERMANENT","metadata":{"tags":["b",null]}}"#).unwrap();
    assert_eq!(out["item"]["tags"], json!(["", "b"]));
    // A null or missing type is Go's empty type: unknown (500), not a decode error.
    for body in [r#"{"type":null}"#, "{}"] {
        assert_eq!(
            enroll_body(body.as_bytes()),
            Err(OpError::Refused("unknown enroll request type".into())),
            "{body}"
        );
    }
}

#[test]
fn audit_accepts_null_wherever_go_does() {
    let (store, key) = store_with_agent("a1");
    // A null time is Go's zero time, which is stored as such.
    audit_body(&store, &key, br#"{"reason":"uninstall","timestamp":null}"#).unwrap();
    let agent = store.agent("a1").unwrap().unwrap();
    assert_eq!(agent.other["audit_unenrolled_time"], "0001-01-01T00:00:00Z");
    assert_eq!(
        audit_body(
            &store,
            &key,
            br#"{"reason":null,"timestamp":"2026-05-01T10:00:00Z"}"#
        ),
        Err(OpError::Invalid(
            "audit/unenroll request invalid reason".into()
        ))
    );
}

#[test]
fn agent_timestamps_are_stored_as_go_re_formats_them() {
    let (store, key) = with_actions();
    // Raw text: member order matters to Go (decoding stops at a time that does not parse).
    let events = br#"{"events": [
        {"action_id": "plain", "agent_id": "a1", "timestamp": "2026-12-02T23:22:06.000Z"},
        {"action_id": "diag", "agent_id": "a1", "timestamp": "2026-12-03T01:22:06.120+02:00",
         "data": {"upload_id": "u1", "extra": true}},
        {"action_id": "input", "agent_id": "a1", "timestamp": "2026-12-02T23:22:06+00:00",
         "started_at": "2026-12-02T23:22:05.5Z", "completed_at": "bad", "action_data": {"q": 1}},
        {"action_id": "upgrade", "agent_id": "a1", "timestamp": "yesterday"}
    ]}"#;
    let (status, _) = ack_body(&store, &key, events).unwrap();
    assert_eq!(status, 200);
    let doc = |id: &str| serde_json::to_value(store.action_result(id).unwrap()).unwrap();
    assert_eq!(
        doc("plain:a1"),
        json!({"action_id": "plain", "agent_id": "a1", "@timestamp": "2026-12-02T23:22:06Z"})
    );
    assert_eq!(
        doc("diag:a1"),
        json!({"action_id": "diag", "agent_id": "a1",
            "@timestamp": "2026-12-03T01:22:06.12+02:00", "data": {"upload_id": "u1"}})
    );
    // completed_at does not parse: Go stops reading the event there (members after it zero).
    assert_eq!(
        doc("input:a1"),
        json!({"action_id": "input", "agent_id": "a1", "@timestamp": "2026-12-02T23:22:06Z",
            "started_at": "2026-12-02T23:22:05.5Z", "completed_at": "0001-01-01T00:00:00Z"})
    );
    // Go ignores the event's decode error: the unparsable time is the zero time.
    assert_eq!(doc("upgrade:a1")["@timestamp"], "0001-01-01T00:00:00Z");

    let (store, key) = store_with_agent("a1");
    audit_body(
        &store,
        &key,
        br#"{"reason":"uninstall","timestamp":"2026-12-02T23:22:06.100000+01:00"}"#,
    )
    .unwrap();
    let agent = store.agent("a1").unwrap().unwrap();
    assert_eq!(
        agent.other["audit_unenrolled_time"],
        "2026-12-02T23:22:06.1+01:00"
    );
}

#[test]
fn decode_errors_use_each_endpoints_prefix_and_gos_words() {
    let (store, key) = store_with_agent("a1");
    let bad = |m: &str| OpError::Invalid(m.into());
    assert_eq!(
        ack_body(&store, &key, br#"{"events":{}}"#).unwrap_err(),
        bad("unable to decode ack request: json: cannot unmarshal object into Go struct field AckRequest.events of type []api.AckRequest_Events_Item")
    );
    assert_eq!(
        ack_body(&store, &key, b"").unwrap_err(),
        bad("unable to decode ack request: EOF")
    );
    assert_eq!(
        checkin_body(&store, &key, br#"{"status":"online","policy_revision_idx":"7"}"#).unwrap_err(),
        bad("unable to decode checkin request: json: cannot unmarshal string into Go struct field CheckinRequest.policy_revision_idx of type int64")
    );
    assert_eq!(
        checkin_body(&store, &key, br#"{"status":"online",}"#).unwrap_err(),
        bad("unable to decode checkin request: invalid character '}' looking for beginning of object key string")
    );
    assert_eq!(
        enroll_body(br#"{"type":"PERMANENT","metadata":{"tags":"edge"}}"#).unwrap_err(),
        bad("unable to decode enroll request: json: cannot unmarshal string into Go struct field EnrollMetadata.metadata.tags of type []string")
    );
    assert_eq!(
        enroll_body(br#"{"type":"PERMANENT""#).unwrap_err(),
        bad("unable to decode enroll request: unexpected EOF")
    );
    assert_eq!(
        audit_body(&store, &key, br#"{"reason":"uninstall","timestamp":"yesterday"}"#).unwrap_err(),
        bad("unable to decode audit/unenroll request: parsing time \"yesterday\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"yesterday\" as \"2006\"")
    );
    assert_eq!(
        audit_body(&store, &key, br#"{"reason":"uninstall","timestamp":1}"#).unwrap_err(),
        bad("unable to decode audit/unenroll request: Time.UnmarshalJSON: input is not a JSON string")
    );
    assert_eq!(
        audit_body(&store, &key, br#"{"reason":7}"#).unwrap_err(),
        bad("unable to decode audit/unenroll request: json: cannot unmarshal number into Go struct field AuditUnenrollRequest.reason of type api.AuditUnenrollRequestReason")
    );
}

/// "401 before 400" (fleet-protocol.md §1.7): the endpoint parses the body on the event loop,
/// and its refusal rides to the worker, which answers the key first.
#[test]
fn a_bad_key_is_answered_before_a_bad_body() {
    let (store, _) = store_with_agent("a1");
    let stranger = ApiKey {
        id: "nobody".into(),
        secret: "x".into(),
    };
    let unknown = Err(OpError::Unauthorized(crate::backend::Why::KeyUnknown));
    assert_eq!(checkin_body(&store, &stranger, b"{"), unknown);
    assert_eq!(audit_body(&store, &stranger, b"{"), unknown);
    let input = EnrollInput {
        key: stranger,
        agent_version: Ok("9.2.1".into()),
        body: crate::api::enroll::parse(b"{"),
        pbkdf2_iterations: 1000,
        enrollment_id: None,
        client_ip: None,
    };
    assert!(input.body.is_err(), "the body itself is refused");
    assert_eq!(enroll(&store, &input, SystemTime::now()).map(drop), unknown);
}
