//! The behaviour every [`Store`] must share, as test functions generic over a store factory.
//! `memory`, `local` and `es` (against the stand-in) each run `run_all`; a store that passes
//! behaves the same to the protocol code.

#![cfg(test)]

use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use super::{ApiKey, CheckinWrite, Created, Cursor, NewApiKey, PolicyAck, Store, StoreError};
use crate::model::{Action, ActionResult, Agent, AgentInfo, OutputHealth, PolicyDoc};

/// A store plus the writes Kibana (or the management API) would make, for seeding tests.
pub trait TestStore {
    /// The store under test.
    fn store(&self) -> &dyn Store;
    /// Creates an enrollment token for a policy.
    fn seed_enrollment_key(&self, policy_id: &str) -> ApiKey;
    /// Adds a policy revision.
    fn seed_policy(&self, doc: PolicyDoc);
    /// Adds an action; returns it with its document id and seq_no.
    fn seed_action(&self, action: Action) -> Action;
    /// Stores a Fleet secret.
    fn seed_secret(&self, id: &str, value: &str);
    /// The newest output-health document of `output` (as an operator would look it up).
    fn latest_output_health(&self, output: &str) -> Option<OutputHealth>;
    /// The stored source of an agent, member for member.
    fn agent_document(&self, id: &str) -> Option<Map<String, Value>>;
    /// Whether `authenticate` answers the key's name and metadata (false for the API-key
    /// cache, which keeps only whether a key is enabled: `backend::auth_cache`).
    fn answers_key_metadata(&self) -> bool {
        true
    }
}

type Factory<'a> = &'a dyn Fn() -> Box<dyn TestStore>;

/// Runs every conformance test against fresh stores from `factory`.
pub fn run_all(factory: Factory<'_>) {
    api_keys_authenticate_and_invalidate(&*factory());
    enrollment_keys_resolve_by_api_key_id(&*factory());
    agents_create_read_merge_delete(&*factory());
    bulk_updates_report_per_item(&*factory());
    a_checkin_write_can_remove_the_audit_members(&*factory());
    a_policy_ack_removes_the_key_history_only_on_the_same_policy(&*factory());
    pending_actions_filter_and_order(&*factory());
    action_results_are_written_once(&*factory());
    latest_policies_keep_highest_revision(&*factory());
    change_feed_reports_new_documents(&*factory());
    secrets_resolve_by_id(&*factory());
    output_health_keeps_the_latest_state(&*factory());
}

fn output_health_keeps_the_latest_state(t: &dyn TestStore) {
    let s = t.store();
    let doc = |output: &str, state: &str, second: u32| {
        OutputHealth::new(
            output,
            state,
            if state == OutputHealth::DEGRADED {
                "remote ES could not create API key due to error: down"
            } else {
                ""
            },
            format!("2026-08-21T19:00:{second:02}Z"),
        )
    };
    s.write_output_health(&doc("r", OutputHealth::DEGRADED, 1))
        .unwrap();
    s.write_output_health(&doc("other", OutputHealth::DEGRADED, 2))
        .unwrap();
    s.write_output_health(&doc("r", OutputHealth::HEALTHY, 3))
        .unwrap();
    assert_eq!(
        t.latest_output_health("r"),
        Some(doc("r", OutputHealth::HEALTHY, 3))
    );
    assert_eq!(
        t.latest_output_health("other"),
        Some(doc("other", OutputHealth::DEGRADED, 2))
    );
    assert_eq!(t.latest_output_health("nope"), None);
}

fn secrets_resolve_by_id(t: &dyn TestStore) {
    let s = t.store();
    t.seed_secret("sec-1", "hunter2");
    assert_eq!(s.secret("sec-1").unwrap().as_deref(), Some("hunter2"));
    assert_eq!(s.secret("nope").unwrap(), None);
}

fn agent(id: &str) -> Agent {
    Agent {
        id: id.into(),
        active: true,
        access_api_key_id: "k".into(),
        action_seq_no: Some(vec![-1]),
        agent: Some(AgentInfo {
            id: id.into(),
            version: "9.2.1".into(),
            kind: String::new(),
        }),
        policy_id: "p1".into(),
        ..Agent::default()
    }
}

fn fields(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn api_keys_authenticate_and_invalidate(t: &dyn TestStore) {
    let s = t.store();
    let key = s
        .create_api_key(&NewApiKey {
            name: "agent-1".into(),
            role_descriptors: json!({"r": {"cluster": []}}),
            metadata: json!({"agent_id": "agent-1", "type": "access"}),
        })
        .unwrap();
    let info = s.authenticate(&key).unwrap().expect("valid key");
    assert!(info.enabled);
    assert_eq!(info.id, key.id);
    if t.answers_key_metadata() {
        assert_eq!(info.metadata["agent_id"], "agent-1");
        assert_eq!(info.name, "agent-1");
    } else {
        assert_eq!((info.name.as_str(), &info.metadata), ("", &Value::Null));
    }
    let wrong = ApiKey {
        id: key.id.clone(),
        secret: "nope".into(),
    };
    assert_eq!(s.authenticate(&wrong).unwrap(), None);
    assert_eq!(
        s.api_key_roles(&key.id)
            .unwrap()
            .map(|r| without_defaults(&r)),
        Some(json!({"r": {}}))
    );
    s.update_api_key_roles(&key.id, &json!({"r2": {}})).unwrap();
    assert_eq!(
        s.api_key_roles(&key.id)
            .unwrap()
            .map(|r| without_defaults(&r)),
        Some(json!({"r2": {}}))
    );
    s.invalidate_api_keys(&[key.id.clone(), "unknown".into()])
        .unwrap();
    let after = s.authenticate(&key).unwrap();
    assert!(
        after.is_none_or(|i| !i.enabled),
        "invalidated key is not usable"
    );
}

/// Role descriptors without the members Elasticsearch adds when it normalizes them (empty
/// lists, empty `metadata`, `transient_metadata: {"enabled": true}`,
/// `allow_restricted_indices: false`): the same permissions compare equal.
fn without_defaults(roles: &Value) -> Value {
    fn clean(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, v)| {
                        !(v.as_array().is_some_and(Vec::is_empty)
                            || (*k == "metadata" && v.as_object().is_some_and(Map::is_empty))
                            || (*k == "transient_metadata" && **v == json!({"enabled": true}))
                            || (*k == "allow_restricted_indices" && **v == json!(false)))
                    })
                    .map(|(k, v)| (k.clone(), clean(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
            other => other.clone(),
        }
    }
    clean(roles)
}

fn enrollment_keys_resolve_by_api_key_id(t: &dyn TestStore) {
    let s = t.store();
    let token = t.seed_enrollment_key("policy-a");
    let record = s.enrollment_key(&token.id).unwrap().expect("record");
    assert_eq!(record.policy_id, "policy-a");
    assert!(record.active);
    assert!(s.authenticate(&token).unwrap().is_some_and(|i| i.enabled));
    assert_eq!(s.enrollment_key("other").unwrap(), None);
    let by_policy = s
        .policy_enrollment_key("policy-a")
        .unwrap()
        .expect("the policy's key");
    assert_eq!(by_policy.api_key_id, token.id);
    assert_eq!(s.policy_enrollment_key("policy-b").unwrap(), None);
}

fn agents_create_read_merge_delete(t: &dyn TestStore) {
    let s = t.store();
    s.create_agent(&agent("a1")).unwrap();
    assert_eq!(s.create_agent(&agent("a1")), Err(StoreError::Conflict));
    let read = s.agent("a1").unwrap().unwrap();
    assert_eq!(read.id, "a1");
    assert_eq!(read.version(), "9.2.1");
    s.update_agent(
        "a1",
        &fields(json!({"last_checkin_status": "online", "policy_revision_idx": 4, "unknown_field": {"x": 1}})),
    )
    .unwrap();
    let read = s.agent("a1").unwrap().unwrap();
    assert_eq!(read.last_checkin_status, "online");
    assert_eq!(read.policy_revision_idx, 4);
    assert_eq!(read.other["unknown_field"], json!({"x": 1}));
    s.update_agent("a1", &fields(json!({"last_checkin_status": null})))
        .unwrap();
    assert_eq!(s.agent("a1").unwrap().unwrap().last_checkin_status, "");
    assert_eq!(
        s.update_agent("missing", &fields(json!({"a": 1}))),
        Err(StoreError::NotFound)
    );
    let mut enrolled = agent("e1");
    enrolled.enrollment_id = "enr-9".into();
    s.create_agent(&enrolled).unwrap();
    assert_eq!(
        s.agent_by_enrollment_id("enr-9").unwrap().map(|a| a.id),
        Some("e1".into())
    );
    assert_eq!(s.agent_by_enrollment_id("enr-0").unwrap(), None);
    s.delete_agent("a1").unwrap();
    s.delete_agent("a1").unwrap();
    assert_eq!(s.agent("a1").unwrap(), None);
}

fn bulk_updates_report_per_item(t: &dyn TestStore) {
    let s = t.store();
    s.create_agent(&agent("b1")).unwrap();
    let results = s
        .update_agents(&[
            (
                "b1".into(),
                CheckinWrite::fields(fields(json!({"last_checkin": "2026-01-01T00:00:00Z"}))),
            ),
            (
                "missing".into(),
                CheckinWrite::fields(fields(json!({"last_checkin": "x"}))),
            ),
        ])
        .unwrap();
    assert_eq!(results, vec![Ok(()), Err(StoreError::NotFound)]);
    assert_eq!(
        s.agent("b1").unwrap().unwrap().last_checkin,
        "2026-01-01T00:00:00Z"
    );
}

/// es-contract.md §3.7 S1: the checkin members set, the audit members gone (not null), on every
/// store; a member S1 does not set still arrives.
fn a_checkin_write_can_remove_the_audit_members(t: &dyn TestStore) {
    let s = t.store();
    s.create_agent(&agent("c1")).unwrap();
    s.update_agent(
        "c1",
        &fields(json!({"audit_unenrolled_reason": "uninstall",
            "audit_unenrolled_time": "2026-01-01T00:00:00Z", "unenrolled_at": "2026-01-01T00:00:00Z"})),
    )
    .unwrap();
    let checkin = fields(json!({"last_checkin": "2026-01-02T00:00:00Z",
        "updated_at": "2026-01-02T00:00:01Z", "last_checkin_status": "online",
        "last_checkin_message": "Running", "unhealthy_reason": ["input"], "action_seq_no": [7],
        "agent": {"version": "9.2.5"}, "upgraded_at": "2026-01-02T00:00:00Z"}));
    let results = s
        .update_agents(&[(
            "c1".into(),
            CheckinWrite {
                fields: checkin.clone(),
                clear_audit: true,
            },
        )])
        .unwrap();
    assert_eq!(results, vec![Ok(())]);
    let doc = t.agent_document("c1").unwrap();
    for gone in super::AUDIT_MEMBERS {
        assert!(!doc.contains_key(gone), "{gone} still in {doc:?}");
    }
    for (k, v) in &checkin {
        if k != "agent" {
            assert_eq!(doc.get(k), Some(v), "{k}");
        }
    }
    assert_eq!(doc["agent"], json!({"id": "c1", "version": "9.2.5"}));
}

/// fleet-protocol.md §4.3 step 2 (es-contract.md §3.7 S3).
fn a_policy_ack_removes_the_key_history_only_on_the_same_policy(t: &dyn TestStore) {
    let s = t.store();
    s.create_agent(&agent("p1")).unwrap();
    s.update_agent(
        "p1",
        &fields(json!({"policy_id": "pol", "policy_revision_idx": 1,
            "default_api_key_history": [{"id": "old", "retired_at": "2026-01-01T00:00:00Z"}]})),
    )
    .unwrap();
    let outputs = json!({"default": {"api_key": "i:s", "api_key_id": "i", "permissions_hash": "h",
        "type": "elasticsearch", "to_retire_api_key_ids": []}});
    let ack = |policy: &str, revision: i64| PolicyAck {
        policy_id: policy.into(),
        revision,
        updated_at: format!("2026-01-0{revision}T00:00:00Z"),
        outputs: Some(outputs.clone()),
    };
    s.policy_acked("p1", &ack("pol", 2)).unwrap();
    let doc = t.agent_document("p1").unwrap();
    assert!(!doc.contains_key("default_api_key_history"), "{doc:?}");
    assert_eq!(doc["policy_revision_idx"], 2);
    assert_eq!(doc["updated_at"], "2026-01-02T00:00:00Z");
    assert_eq!(doc["outputs"], outputs);
    s.policy_acked("p1", &ack("reassigned", 3)).unwrap();
    let doc = t.agent_document("p1").unwrap();
    assert_eq!(
        doc["policy_revision_idx"], 2,
        "another policy's ack changes nothing"
    );
    assert_eq!(doc["updated_at"], "2026-01-02T00:00:00Z");
    assert_eq!(
        s.policy_acked("nobody", &ack("pol", 4)),
        Err(StoreError::NotFound)
    );
}

fn action(id: &str, agents: &[&str], expiration: &str, kind: &str) -> Action {
    Action {
        action_id: id.into(),
        action_type: kind.into(),
        agents: agents.iter().map(|s| s.to_string()).collect(),
        timestamp: "2026-01-01T00:00:00Z".into(),
        expiration: expiration.into(),
        ..Action::default()
    }
}

fn pending_actions_filter_and_order(t: &dyn TestStore) {
    let s = t.store();
    let now = SystemTime::now();
    let a1 = t.seed_action(action(
        "act-1",
        &["x", "y"],
        "2099-01-01T00:00:00Z",
        "UPGRADE",
    ));
    let _expired = t.seed_action(action("act-2", &["x"], "2001-01-01T00:00:00Z", "SETTINGS"));
    let _other = t.seed_action(action("act-3", &["z"], "", "UNENROLL"));
    let a4 = t.seed_action(action("act-4", &["x"], "", "UNENROLL"));
    assert!(a4.seq_no > a1.seq_no);
    let got = s.pending_actions("x", -1, now, 100).unwrap();
    let ids: Vec<&str> = got.iter().map(|a| a.action_id.as_str()).collect();
    assert_eq!(
        ids,
        ["act-1", "act-4"],
        "expired and foreign actions are not pending"
    );
    let after = s.pending_actions("x", a1.seq_no, now, 100).unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].doc_id, a4.doc_id);
    assert_eq!(
        s.pending_actions("x", -1, now, 1).unwrap().len(),
        1,
        "limit"
    );
    assert_eq!(s.action_seq_no(&a4.doc_id).unwrap(), Some(a4.seq_no));
    assert_eq!(s.action_seq_no("nope").unwrap(), None);
    assert_eq!(s.action("act-4").unwrap().unwrap().action_type, "UNENROLL");
    assert_eq!(s.action("nope").unwrap(), None);
}

fn action_results_are_written_once(t: &dyn TestStore) {
    let s = t.store();
    let result = ActionResult {
        action_id: "act".into(),
        agent_id: "a".into(),
        timestamp: "2026-01-01T00:00:00.123456789Z".into(),
        ..ActionResult::default()
    };
    assert_eq!(s.create_action_result(&result).unwrap(), Created::New);
    assert_eq!(s.create_action_result(&result).unwrap(), Created::Existed);
}

fn policy(id: &str, rev: i64) -> PolicyDoc {
    PolicyDoc {
        timestamp: "2026-01-01T00:00:00.000Z".into(),
        policy_id: id.into(),
        revision_idx: rev,
        data: json!({"id": id, "revision": rev, "outputs": {}}),
        ..PolicyDoc::default()
    }
}

fn latest_policies_keep_highest_revision(t: &dyn TestStore) {
    let s = t.store();
    t.seed_policy(policy("p1", 1));
    t.seed_policy(policy("p1", 3));
    t.seed_policy(policy("p1", 2));
    t.seed_policy(policy("p2", 1));
    let latest = s.latest_policies().unwrap();
    let pairs: Vec<(&str, i64)> = latest
        .iter()
        .map(|p| (p.policy_id.as_str(), p.revision_idx))
        .collect();
    assert!(
        pairs.contains(&("p1", 3)) && pairs.contains(&("p2", 1)) && pairs.len() == 2,
        "{pairs:?}"
    );
}

fn change_feed_reports_new_documents(t: &dyn TestStore) {
    let s = t.store();
    let now = SystemTime::now();
    let first = s
        .changes(Cursor::START, now, Duration::from_millis(10))
        .unwrap();
    let start = first.cursor.unwrap_or(Cursor::START);
    let quiet = s.changes(start, now, Duration::from_millis(50)).unwrap();
    assert!(quiet.policies.is_empty() && quiet.actions.is_empty());
    t.seed_policy(policy("p9", 1));
    let a = t.seed_action(action("act-9", &["x"], "", "UNENROLL"));
    let got = s.changes(start, now, Duration::from_secs(5)).unwrap();
    assert_eq!(
        got.policies
            .iter()
            .map(|p| p.policy_id.as_str())
            .collect::<Vec<_>>(),
        ["p9"]
    );
    assert_eq!(
        got.actions
            .iter()
            .map(|a| a.doc_id.clone())
            .collect::<Vec<_>>(),
        [a.doc_id]
    );
    let next = got.cursor.expect("cursor advances");
    let again = s.changes(next, now, Duration::from_millis(10)).unwrap();
    assert!(again.policies.is_empty() && again.actions.is_empty());
}
