//! The documents a whole agent session leaves in the store, member for member, against the
//! lists the specification gives (fleet-protocol.md §2.5, §3.8–3.10, §4.2–4.4, §11;
//! es-contract.md §2.3 rows and §3.7 scripts S1/S3): enroll → checkin (POLICY_CHANGE) → ack →
//! checkin reporting the revision → audit/unenroll → checkin → an action delivered and acked →
//! checkin with its token → UNENROLL delivered and acked. Documents are read from the store
//! itself (the stand-in's REST API for Elasticsearch, the stored sources for the embedded
//! stores) and compared as JSON: no member more, none missing.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use fleet_edge::model::Action;

use crate::protocol::{only_action, setup, Fixture};
use crate::support::agent::{once, raw_request, Agent, VERSION};

/// §2.5, new agent: what enrollment writes when neither `enrollment_id` nor `replace_token` is
/// given, the tags are empty and the enrollment record has no namespaces.
const ENROLLED: &[&str] = &[
    "access_api_key_id",
    "action_seq_no",
    "active",
    "agent",
    "enrolled_at",
    "local_metadata",
    "policy_base_id",
    "policy_id",
    "type",
];

/// es-contract.md §2.3 checkin flush row / fleet-protocol.md §3.8: written by every flush.
const EVERY_FLUSH: &[&str] = &[
    "updated_at",
    "last_checkin",
    "last_checkin_status",
    "last_checkin_message",
    "unhealthy_reason",
    "sequence_num",
];

/// §3.8 conditional members the first checkin of the scripted agent writes: `components` (it
/// sends `[]`, the document has none) and `upgrade` (it sends `"upgrade": {}`: no rollbacks, which
/// differs from a document without any, so `{"rollbacks": []}` is written).
const FIRST_CHECKIN: &[&str] = &["components", "upgrade"];

fn members(doc: &Map<String, Value>) -> BTreeSet<String> {
    doc.keys().cloned().collect()
}

fn set(lists: &[&[&str]]) -> BTreeSet<String> {
    lists
        .iter()
        .flat_map(|l| l.iter().map(|m| (*m).to_owned()))
        .collect()
}

/// Waits until the agent document has exactly `expected` members (the checkin state reaches the
/// store with the bulk writer's next flush), then returns it.
fn document_with(
    fixture: &dyn Fixture,
    id: &str,
    expected: &BTreeSet<String>,
    step: &str,
) -> Map<String, Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let doc = fixture.agent_document(id).expect("agent document");
        if members(&doc) == *expected {
            return doc;
        }
        if Instant::now() > deadline {
            let have = members(&doc);
            panic!(
                "{step}: extra members {:?}, missing {:?}\n{}",
                have.difference(expected).collect::<Vec<_>>(),
                expected.difference(&have).collect::<Vec<_>>(),
                Value::Object(doc)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn audit_unenroll(server: &crate::support::inproc::InProc, id: &str, key: &str) -> u16 {
    let body =
        serde_json::to_vec(&json!({"reason": "uninstall", "timestamp": "2026-05-01T10:00:00Z"}))
            .unwrap();
    let raw = raw_request(
        "POST",
        &format!("/api/fleet/agents/{id}/audit/unenroll"),
        Some(key),
        &body,
        false,
        &format!("Elastic Agent v{VERSION}"),
    );
    once(server.addr, server.tls(), &raw).status
}

/// The done-when session of issue 13 on every store.
fn a_full_session_leaves_the_documents_the_spec_lists(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let nulls = fixture.keeps_nulls();
    let mints_keys = fixture.store().mints_output_keys();
    let token = fixture.add_token("edge-policy");
    let (mut a, _) = Agent::enroll(server.addr, server.tls(), &token.encoded(), &[]);
    let record = fixture.store().enrollment_key(&token.id).unwrap().unwrap();

    // Enrollment (§2.5): the new-agent document, no `policy_revision_idx`; `namespaces` only when
    // the enrollment record has some.
    let mut expected = set(&[ENROLLED]);
    if !record.namespaces.is_empty() {
        expected.insert("namespaces".into());
    }
    let doc = document_with(&*fixture, &a.id, &expected, "enroll");
    assert_eq!(doc["active"], true);
    assert_eq!(doc["action_seq_no"], json!([-1]));
    assert_eq!(doc["agent"], json!({"id": a.id, "version": VERSION}));
    assert_eq!(doc["type"], "PERMANENT");
    assert_eq!(doc["policy_id"], "edge-policy");
    assert_eq!(doc["policy_base_id"], "edge-policy");

    // First checkin: POLICY_CHANGE; the flush writes the §3.8 members (no `action_seq_no`: no
    // position is known yet) and, where this store mints them, the output keys (§3.7).
    let (_, body) = a.checkin();
    let change = only_action(&body).clone();
    assert_eq!(change["type"], "POLICY_CHANGE");
    a.apply_policy(&change);
    expected.extend(set(&[EVERY_FLUSH, FIRST_CHECKIN]));
    if mints_keys {
        expected.insert("outputs".into());
    }
    if !nulls {
        // `unhealthy_reason: null` removes the member where null is not kept.
        expected.remove("unhealthy_reason");
    }
    let doc = document_with(&*fixture, &a.id, &expected, "first checkin");
    assert_eq!(doc["last_checkin_status"], "online");
    assert_eq!(doc["last_checkin_message"], "Running");
    assert_eq!(doc["sequence_num"], 0);
    assert_eq!(doc["components"], json!([]));
    assert_eq!(doc["upgrade"], json!({"rollbacks": []}));
    assert_eq!(doc["action_seq_no"], json!([-1]), "unchanged by the flush");
    if nulls {
        assert_eq!(doc["unhealthy_reason"], Value::Null);
    }

    // POLICY_CHANGE ack (§4.3, S3): the revision, no `default_api_key_history`, no result document.
    let (resp, _) = a.ack(&[(change["id"].as_str().unwrap(), "POLICY_CHANGE")]);
    assert_eq!(resp.status, 200);
    expected.insert("policy_revision_idx".into());
    let doc = document_with(&*fixture, &a.id, &expected, "POLICY_CHANGE ack");
    assert_eq!(doc["policy_revision_idx"], 1);
    assert!(fixture
        .result_document(change["id"].as_str().unwrap(), &a.id)
        .is_none());

    // A checkin reporting the policy it runs (§3.8 conditional members).
    let (resp, _) = a.checkin();
    assert_eq!(resp.status, 200);
    expected.insert("agent_policy_id".into());
    let doc = document_with(
        &*fixture,
        &a.id,
        &expected,
        "checkin reporting the revision",
    );
    assert_eq!(doc["agent_policy_id"], "edge-policy");
    assert_eq!(doc["policy_revision_idx"], 1);

    // audit/unenroll (es-contract.md §2.3 row): reason and time.
    assert_eq!(audit_unenroll(&server, &a.id, &a.access_key), 200);
    expected.extend(set(&[&[
        "audit_unenrolled_reason",
        "audit_unenrolled_time",
    ]]));
    let doc = document_with(&*fixture, &a.id, &expected, "audit/unenroll");
    assert_eq!(doc["audit_unenrolled_reason"], "uninstall");

    // The next checkin removes them (S1): gone, not null.
    let (resp, _) = a.checkin();
    assert_eq!(resp.status, 200);
    expected.remove("audit_unenrolled_reason");
    expected.remove("audit_unenrolled_time");
    document_with(&*fixture, &a.id, &expected, "checkin after audit/unenroll");

    // An action delivered and acked: its result document (§4.2 step 4, default form); the checkin
    // that carries its token writes the position (`action_seq_no`).
    let settings = fixture.add_action(Action {
        action_id: "settings-1".into(),
        action_type: "SETTINGS".into(),
        agents: vec![a.id.clone()],
        data: json!({"log_level": "debug"}),
        ..Action::default()
    });
    let (_, body) = a.checkin();
    assert_eq!(only_action(&body)["id"], "settings-1");
    let (resp, _) = a.ack(&[("settings-1", "SETTINGS")]);
    assert_eq!(resp.status, 200);
    let result = fixture
        .result_document("settings-1", &a.id)
        .expect("result document");
    let result = result.as_object().unwrap();
    assert_eq!(
        members(result),
        set(&[&["@timestamp", "action_id", "agent_id"]]),
        "{result:?}"
    );
    assert_eq!(result["action_id"], "settings-1");
    assert_eq!(result["agent_id"], json!(a.id));

    // UNENROLL delivered (by a checkin carrying the SETTINGS token) and acked (§4.4).
    let unenroll = fixture.add_action(Action {
        action_id: "unenroll-1".into(),
        action_type: "UNENROLL".into(),
        agents: vec![a.id.clone()],
        ..Action::default()
    });
    let (_, body) = a.checkin();
    assert_eq!(only_action(&body)["id"], "unenroll-1");
    let (resp, _) = a.ack(&[("unenroll-1", "UNENROLL")]);
    assert_eq!(resp.status, 200);
    assert_eq!(a.checkin().0.status, 401);
    let result = fixture
        .result_document("unenroll-1", &a.id)
        .expect("result document");
    assert_eq!(
        members(result.as_object().unwrap()),
        set(&[&["@timestamp", "action_id", "agent_id"]]),
        "{result}"
    );
    expected.insert("unenrolled_at".into());
    let doc = document_with(&*fixture, &a.id, &expected, "UNENROLL ack");
    assert_eq!(doc["active"], false);
    assert_eq!(unenroll.action_id, "unenroll-1");
    // The checkin that delivered UNENROLL carried the SETTINGS token: its flush (which may land
    // after the ack) writes that position and nothing else new.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let doc = fixture.agent_document(&a.id).unwrap();
        assert_eq!(members(&doc), expected, "{}", Value::Object(doc.clone()));
        if doc["action_seq_no"] == json!([settings.seq_no]) {
            break;
        }
        assert!(Instant::now() < deadline, "position never written: {doc:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// §3.8 `upgrade.rollbacks` (issue 13 item 6): the list the agent reports is stored; when the agent
/// no longer has a rollback it sends `"upgrade": {}`, and the stored list becomes `[]`.
fn rollbacks_the_agent_no_longer_has_are_cleared(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let mut a = crate::protocol::enrolled(&*fixture, &server);
    let (_, body) = a.checkin();
    a.apply_policy(only_action(&body));
    let checkin = |a: &mut Agent, upgrade: Value| {
        let mut body = a.checkin_body("online");
        body["upgrade"] = upgrade;
        let raw = raw_request(
            "POST",
            &format!("/api/fleet/agents/{}/checkin", a.id),
            Some(&a.access_key.clone()),
            &serde_json::to_vec(&body).unwrap(),
            true,
            &format!("Elastic Agent v{VERSION}"),
        );
        assert_eq!(a.send(&raw).status, 200);
    };
    let upgrade_of = |id: &str| {
        fixture
            .agent_document(id)
            .and_then(|d| d.get("upgrade").cloned())
    };
    let wait_for = |id: &str, want: Value| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while upgrade_of(id) != Some(want.clone()) {
            assert!(
                Instant::now() < deadline,
                "upgrade is {:?}, not {want}",
                upgrade_of(id)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let rollback = json!({"version": "9.1.3", "valid_until": "2026-12-31T00:00:00Z"});
    checkin(&mut a, json!({"rollbacks": [rollback]}));
    wait_for(&a.id, json!({"rollbacks": [rollback]}));
    checkin(&mut a, json!({}));
    wait_for(&a.id, json!({"rollbacks": []}));
}

/// es-contract.md §2.3 checkin flush row: a parked checkin keeps checking in, and each of its
/// flushes writes the members every flush writes, not `last_checkin` alone (so a status
/// overwritten meanwhile is written again, as Fleet Server's periodic re-checkin does).
fn a_parked_checkins_flushes_write_what_every_flush_writes(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "60s");
    let mut a = crate::protocol::enrolled(&*fixture, &server);
    let (_, body) = a.checkin();
    a.apply_policy(only_action(&body));
    let id = a.id.clone();
    let parked = crate::protocol::park(a);
    server.wait_parked(1);
    let member = |name: &str| {
        fixture
            .agent_document(&id)
            .and_then(|d| d.get(name).cloned())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while member("policy_revision_idx") != Some(json!(1)) {
        assert!(
            Instant::now() < deadline,
            "the parked checkin never flushed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let Value::Object(overwritten) =
        json!({"last_checkin_status": "offline", "last_checkin_message": "elsewhere"})
    else {
        unreachable!()
    };
    fixture.store().update_agent(&id, &overwritten).unwrap();
    while member("last_checkin_status") != Some(json!("online")) {
        assert!(
            Instant::now() < deadline,
            "a refresh flush did not write the status again"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(member("last_checkin_message"), Some(json!("Running")));
    drop(server);
    let _ = parked.join();
}

on_every_store!(
    a_full_session_leaves_the_documents_the_spec_lists,
    rollbacks_the_agent_no_longer_has_are_cleared,
    a_parked_checkins_flushes_write_what_every_flush_writes,
);
