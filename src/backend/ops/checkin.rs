//! The store part of `POST /api/fleet/agents/{id}/checkin` (fleet-protocol.md §3.2 steps 2-9):
//! bind the access key to the agent (an inactive agent's remote-output keys are invalidated on
//! their clusters, §1.4), answer the body's refusal (`api::checkin` parsed it), resolve the ack token, read pending actions, and
//! compute the checkin-state update for the bulk writer. Whether to answer now or
//! park, and with which POLICY_CHANGE, is decided on the event loop from what this returns.

use std::time::SystemTime;

// Moved to `backend::interface`; this path stays for the branches developed alongside the move.
// To be removed.
use crate::backend::interface::{CheckinBody, CheckinInput, CheckinRequest, CheckinStart};

use serde_json::{json, Map, Value};

use super::authenticate_agent;
use super::outputs::invalidate_keys;
use super::rollbacks::rollbacks_to_write;
use crate::backend::remote::RemoteClusters;
use crate::backend::OpError;
use crate::backend::{CheckinWrite, Store};
use crate::model::time::rfc3339_seconds;
use crate::model::Agent;
use crate::transform::actions::{is_delivered_type, to_wire};

mod large;

use large::write_large_state;
pub use large::LARGE_MESSAGE;

/// Most pending actions answered at once (§3.4 query `size`).
const PENDING_LIMIT: usize = 100;

/// Runs the store part of a checkin.
pub fn checkin_start(
    store: &dyn Store,
    remotes: &RemoteClusters,
    input: &CheckinInput,
    now: SystemTime,
) -> Result<CheckinStart, OpError> {
    let agent = match authenticate_agent(store, &input.key, &input.agent_id) {
        Ok(agent) => agent,
        Err(OpError::AgentInactive) => {
            invalidate_remote_keys_of_inactive(store, remotes, &input.agent_id);
            return Err(OpError::AgentInactive);
        }
        Err(e) => return Err(e),
    };
    let version = input.agent_version.clone()?;
    let CheckinRequest {
        mut body,
        poll_timeout,
    } = match &input.deferred {
        // Gunzipped and parsed here, not on the event loop (issue 15 §3, `large.rs`).
        Some(deferred) => *(deferred.parse)(&deferred.gzip)?,
        None => *input.body.clone()?,
    };

    // §3.4: the token names the last action document delivered; unknown → stored position.
    let resolved_seq = match body.ack_token.as_str() {
        "" => agent.action_seq(),
        token => store
            .action_seq_no(token)
            .map_err(OpError::from)?
            .unwrap_or_else(|| agent.action_seq()),
    };
    let pending = store
        .pending_actions(&agent.id, resolved_seq, now, PENDING_LIMIT)
        .map_err(OpError::from)?;
    let mut actions = Vec::new();
    let mut ack_token = String::new();
    let mut position = resolved_seq;
    for action in &pending {
        if is_delivered_type(&action.action_type) {
            ack_token = action.doc_id.clone();
            position = action.seq_no;
        }
        match to_wire(action, &agent.id) {
            Some(wire) => actions.push(wire),
            None => log::debug!(
                "action {} ({}) not delivered to {}",
                action.action_id,
                action.action_type,
                agent.id
            ),
        }
    }

    let message = std::mem::take(&mut body.message);
    let large = message.len() > LARGE_MESSAGE;
    let state = checkin_state(&agent, &body, message, &version, resolved_seq, now);
    // A parked agent's periodic refresh writes these members again; a large message stays what
    // the checkin's own write stored, instead of being held (and copied) for the refresh.
    let repeat = REPEATED
        .iter()
        .filter(|k| !(large && **k == "last_checkin_message"))
        .filter_map(|k| Some(((*k).to_owned(), state.fields.get(*k)?.clone())))
        .collect();
    let state = if large && !state.clear_audit {
        write_large_state(store, &agent.id, state)
    } else {
        state
    };
    Ok(CheckinStart {
        agent,
        body,
        poll_timeout,
        actions,
        ack_token,
        state,
        repeat,
        position,
    })
}

/// §1.4 / §3.2 step 2: an inactive agent's keys on remote clusters are invalidated (Kibana
/// deactivates agents in the main cluster only). Best effort: the answer is the 401 whatever
/// happens here, and failures are logged.
fn invalidate_remote_keys_of_inactive(store: &dyn Store, remotes: &RemoteClusters, id: &str) {
    let agent = match store.agent(id) {
        Ok(Some(agent)) => agent,
        Ok(None) => return,
        Err(e) => {
            log::debug!("inactive agent {id}: reading it for its remote keys failed: {e}");
            return;
        }
    };
    let remote: Vec<(String, String)> = agent
        .outputs
        .values()
        .flat_map(|k| {
            std::iter::once((k.api_key_id.clone(), k.remote_config_hash.clone())).chain(
                k.to_retire_api_key_ids
                    .iter()
                    .map(|r| (r.id.clone(), r.remote_config_hash.clone())),
            )
        })
        .filter(|(id, hash)| !id.is_empty() && !hash.is_empty())
        .collect();
    if remote.is_empty() {
        return;
    }
    // Only remote keys are passed: the store's own cluster is not touched.
    if let Err(e) = invalidate_keys(store, remotes, &remote) {
        log::debug!("inactive agent {id}: {e}");
    }
}

/// The members every flush of a checkin writes (es-contract.md §2.3, checkin flush row), which a
/// parked checkin's periodic refresh writes again with its new `last_checkin`
/// (`core::longpoll::Repeat` keeps them by their position here).
pub const REPEATED: [&str; 4] = [
    "last_checkin_status",
    "last_checkin_message",
    "unhealthy_reason",
    "sequence_num",
];

/// The checkin-state write of the bulk writer (fleet-protocol.md §3.8; es-contract.md §2.3,
/// checkin flush row): `last_checkin`, status, message, `unhealthy_reason` (null when there is
/// none) and `sequence_num` always; the rest only when there is something to say. An agent that
/// was audit-unenrolled gets the members of script S1 instead (es-contract.md §3.7), which
/// removes the audit members and writes neither `sequence_num` nor `upgrade`.
fn checkin_state(
    agent: &Agent,
    body: &CheckinBody,
    message: String,
    version: &str,
    seq: i64,
    now: SystemTime,
) -> CheckinWrite {
    let clear_audit = !agent.audit_unenrolled_reason.is_empty() || !agent.unenrolled_at.is_empty();
    let mut s = Map::new();
    s.insert("last_checkin".into(), json!(rfc3339_seconds(now)));
    s.insert("last_checkin_status".into(), json!(body.status));
    s.insert("last_checkin_message".into(), Value::String(message));
    if !clear_audit {
        s.insert("sequence_num".into(), json!(0));
    }
    // Only a known position is written (Go's `SeqNo.IsSet`: non-negative); `[-1]` is what
    // enrollment wrote.
    if seq >= 0 {
        s.insert("action_seq_no".into(), json!([seq]));
    }
    if let (Some(pid), Some(rev)) = (&body.agent_policy_id, body.policy_revision_idx) {
        if *pid != agent.agent_policy_id || rev != agent.policy_revision_idx {
            s.insert("agent_policy_id".into(), json!(pid));
            s.insert("policy_revision_idx".into(), json!(rev));
        }
    }
    if version != agent.version() {
        s.insert("agent".into(), json!({"version": version}));
    }
    if body.local_metadata.is_some() && body.local_metadata != agent.local_metadata {
        s.insert(
            "local_metadata".into(),
            body.local_metadata.clone().unwrap_or(Value::Null),
        );
    }
    let components_changed = body.components.is_some() && body.components != agent.components;
    if components_changed {
        s.insert(
            "components".into(),
            body.components.clone().unwrap_or(Value::Null),
        );
    }
    s.insert(
        "unhealthy_reason".into(),
        unhealthy_reason(agent, body, components_changed),
    );
    if !clear_audit {
        if let Some(rollbacks) = rollbacks_to_write(agent, body.upgrade.as_ref()) {
            s.insert("upgrade".into(), json!({ "rollbacks": rollbacks }));
        }
    }
    match (&body.upgrade_details, &agent.upgrade_details) {
        (Some(details), _) => {
            s.insert("upgrade_details".into(), details.clone());
        }
        (None, Some(_)) => {
            // §3.10: details gone → the upgrade completed.
            s.insert("upgrade_details".into(), Value::Null);
            s.insert("upgrade_started_at".into(), Value::Null);
            s.insert("upgraded_at".into(), json!(rfc3339_seconds(now)));
        }
        (None, None) => {}
    }
    CheckinWrite {
        fields: s,
        clear_audit,
    }
}

/// §3.9: the stored value (`["other"]` when there is none and the last status was unhealthy),
/// replaced by what changed components say when they say something; `null` when nothing is
/// known. Fleet Server writes it on every flush.
fn unhealthy_reason(agent: &Agent, body: &CheckinBody, components_changed: bool) -> Value {
    let stored = match agent.other.get("unhealthy_reason") {
        Some(v) if !v.is_null() => v.clone(),
        _ if matches!(agent.last_checkin_status.as_str(), "FAILED" | "DEGRADED") => {
            json!(["other"])
        }
        _ => Value::Null,
    };
    let components = body
        .components
        .as_ref()
        .and_then(Value::as_array)
        .filter(|_| components_changed);
    let Some(components) = components else {
        return stored;
    };
    let bad = |v: &Value| {
        matches!(
            v.get("status").and_then(Value::as_str),
            Some("FAILED" | "DEGRADED")
        )
    };
    let (mut input, mut output, mut any) = (false, false, false);
    for c in components.iter().filter(|c| bad(c)) {
        any = true;
        let units = c.get("units").and_then(Value::as_array).into_iter();
        for u in units.flatten().filter(|u| bad(u)) {
            match u.get("type").and_then(Value::as_str) {
                Some("input") => input = true,
                Some("output") => output = true,
                _ => {}
            }
        }
    }
    let mut reasons = Vec::new();
    if input {
        reasons.push("input");
    }
    if output {
        reasons.push("output");
    }
    if any && reasons.is_empty() {
        reasons.push("other");
    }
    if reasons.is_empty() {
        stored
    } else {
        json!(reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::super::enroll::enroll;
    use super::super::testkit::{remotes, store_with_policy};
    use super::*;
    use crate::backend::interface::EnrollInput;
    use crate::backend::memory::MemoryStore;
    use crate::backend::ApiKey;
    use crate::backend::AUDIT_MEMBERS;
    use crate::model::Action;
    use std::time::Duration;

    pub(super) fn enrolled() -> (std::sync::Arc<MemoryStore>, ApiKey, String) {
        let (store, token) = store_with_policy("p");
        let resp = enroll(
            &*store,
            &EnrollInput {
                key: token,
                agent_version: Ok("9.2.1".into()),
                body: crate::api::enroll::parse(br#"{"type":"PERMANENT","id":"","replace_token":"","metadata":{"local":{},"tags":[]}}"#),
                pbkdf2_iterations: 1000,
                enrollment_id: None,
                client_ip: None,
            },
            SystemTime::now(),
        )
        .unwrap();
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(resp["item"]["access_api_key"].as_str().unwrap())
            .unwrap();
        let (id, secret) = std::str::from_utf8(&decoded)
            .unwrap()
            .split_once(':')
            .unwrap();
        let key = ApiKey {
            id: id.into(),
            secret: secret.into(),
        };
        (store, key, resp["item"]["id"].as_str().unwrap().to_owned())
    }

    fn input(key: &ApiKey, agent: &str, body: Value) -> CheckinInput {
        CheckinInput {
            key: key.clone(),
            agent_id: agent.into(),
            agent_version: Ok("9.2.1".into()),
            body: crate::api::checkin::parse(&serde_json::to_vec(&body).unwrap()),
            deferred: None,
        }
    }

    #[test]
    fn identity_errors() {
        let (store, key, id) = enrolled();
        let body = json!({"status": "online"});
        assert_eq!(
            checkin_start(
                &*store,
                &remotes(),
                &input(&key, "other-agent", body.clone()),
                SystemTime::now()
            ),
            Err(OpError::AgentIdentity)
        );
        let (store2, token) = store_with_policy("q");
        let _ = store2;
        let enroll_key_on_checkin = input(&token, &id, body.clone());
        assert_eq!(
            checkin_start(
                &*store,
                &remotes(),
                &enroll_key_on_checkin,
                SystemTime::now()
            ),
            Err(OpError::Unauthorized(crate::backend::Why::KeyUnknown))
        );
        let mut off = Map::new();
        off.insert("active".into(), json!(false));
        store.update_agent(&id, &off).unwrap();
        assert_eq!(
            checkin_start(
                &*store,
                &remotes(),
                &input(&key, &id, body),
                SystemTime::now()
            ),
            Err(OpError::AgentInactive)
        );
    }

    #[test]
    fn an_inactive_agents_remote_keys_are_invalidated_on_their_cluster() {
        let (store, key, id) = enrolled();
        let (clusters, remotes) = crate::backend::remote::testkit::registry();
        let policy = crate::transform::prepared_policy::PreparedPolicy::prepare(
            &crate::model::PolicyDoc {
                policy_id: "p".into(),
                revision_idx: 2,
                data: json!({"outputs": {
                    "default": {"type": "elasticsearch"},
                    "remote": {"type": "remote_elasticsearch", "hosts": ["https://r:9200"], "service_token": "t"}},
                    "output_permissions": {"default": {}, "remote": {}}}),
                ..crate::model::PolicyDoc::default()
            },
            &std::collections::HashMap::new(),
        )
        .unwrap();
        let agent = store.agent(&id).unwrap().unwrap();
        let keys = crate::backend::ops::outputs::ensure_output_keys(
            &*store,
            &remotes,
            &agent,
            &policy,
            SystemTime::now(),
        )
        .unwrap();
        let split = |k: &str| {
            let (id, secret) = k.split_once(':').unwrap();
            ApiKey {
                id: id.into(),
                secret: secret.into(),
            }
        };
        let (remote_key, local_key) = (split(&keys["remote"]), split(&keys["default"]));
        let remote = clusters.at("https://r:9200");
        assert!(remote.authenticate(&remote_key).unwrap().unwrap().enabled);

        let body = json!({"status": "online"});
        assert!(checkin_start(
            &*store,
            &remotes,
            &input(&key, &id, body.clone()),
            SystemTime::now()
        )
        .is_ok());
        assert!(
            remote.authenticate(&remote_key).unwrap().unwrap().enabled,
            "active: kept"
        );

        // Kibana force-unenrolls in the main cluster only.
        let mut off = Map::new();
        off.insert("active".into(), json!(false));
        store.update_agent(&id, &off).unwrap();
        assert_eq!(
            checkin_start(
                &*store,
                &remotes,
                &input(&key, &id, body),
                SystemTime::now()
            ),
            Err(OpError::AgentInactive)
        );
        assert!(!remote.authenticate(&remote_key).unwrap().unwrap().enabled);
        assert!(
            store.authenticate(&local_key).unwrap().unwrap().enabled,
            "the main cluster's keys are Kibana's business"
        );
    }

    #[test]
    fn body_validation() {
        let (store, key, id) = enrolled();
        assert!(matches!(checkin_start(
            &*store,
            &remotes(), &input(&key, &id, json!({})), SystemTime::now()), Err(OpError::Invalid(m)) if m == "checkin status missing"));
        assert!(matches!(
            checkin_start(
                &*store,
                &remotes(),
                &input(
                    &key,
                    &id,
                    json!({"status": "online", "poll_timeout": "soon"})
                ),
                SystemTime::now()
            ),
            Err(OpError::Invalid(_))
        ));
        let ok = checkin_start(
            &*store,
            &remotes(),
            &input(&key, &id, json!({"status": "online", "poll_timeout": "3m"})),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(ok.poll_timeout, Some(Duration::from_secs(180)));
        let mut bad_ua = input(&key, &id, json!({"status": "online"}));
        bad_ua.agent_version = Err(OpError::UnsupportedVersion);
        assert_eq!(
            checkin_start(&*store, &remotes(), &bad_ua, SystemTime::now()),
            Err(OpError::UnsupportedVersion)
        );
    }

    #[test]
    fn pending_actions_and_ack_token_round_trip() {
        let (store, key, id) = enrolled();
        let mk = |kind: &str, action_id: &str| Action {
            action_id: action_id.into(),
            action_type: kind.into(),
            agents: vec![id.clone()],
            timestamp: "2026-01-01T00:00:00Z".into(),
            data: json!({"version": "9.2.2"}),
            ..Action::default()
        };
        let up = store.add_action(mk("UPGRADE", "a1")).unwrap();
        let tags = store.add_action(mk("UPDATE_TAGS", "a2")).unwrap();
        let first = checkin_start(
            &*store,
            &remotes(),
            &input(&key, &id, json!({"status": "online"})),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(first.actions.len(), 1, "UPDATE_TAGS dropped");
        assert_eq!(first.actions[0]["id"], "a1");
        assert_eq!(
            first.ack_token, up.doc_id,
            "token is the last delivered-type document"
        );
        assert!(
            !first.state.fields.contains_key("action_seq_no"),
            "no position known yet: not written"
        );

        let again = checkin_start(
            &*store,
            &remotes(),
            &input(
                &key,
                &id,
                json!({"status": "online", "ack_token": up.doc_id}),
            ),
            SystemTime::now(),
        )
        .unwrap();
        assert!(again.actions.is_empty(), "not re-delivered after the token");
        assert_eq!(again.state.fields["action_seq_no"], json!([up.seq_no]));
        let _ = tags;
        let unknown = checkin_start(
            &*store,
            &remotes(),
            &input(&key, &id, json!({"status": "online", "ack_token": "gone"})),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(
            unknown.actions.len(),
            1,
            "unknown token falls back to the stored position, not the start of time"
        );
    }

    #[test]
    fn state_fields_follow_the_spec() {
        let (store, key, id) = enrolled();
        let body = json!({"status": "DEGRADED", "message": "m", "agent_policy_id": "p", "policy_revision_idx": 3,
            "local_metadata": {"host": {"name": "x"}},
            "components": [{"id": "c", "status": "DEGRADED", "units": [{"type": "output", "status": "FAILED"}]}],
            "upgrade": {"rollbacks": [{"version": "9.1.0"}]}});
        let s = checkin_start(
            &*store,
            &remotes(),
            &input(&key, &id, body),
            SystemTime::now(),
        )
        .unwrap()
        .state
        .fields;
        assert_eq!(s["last_checkin_status"], "DEGRADED");
        assert_eq!(s["agent_policy_id"], "p");
        assert_eq!(s["policy_revision_idx"], 3);
        assert_eq!(s["unhealthy_reason"], json!(["output"]));
        assert_eq!(s["upgrade"], json!({"rollbacks": [{"version": "9.1.0"}]}));
        assert!(s.contains_key("local_metadata"));
        assert!(!s.contains_key("agent"), "version unchanged");
        let mut newer = input(&key, &id, json!({"status": "online"}));
        newer.agent_version = Ok("9.2.5".into());
        let s = checkin_start(&*store, &remotes(), &newer, SystemTime::now())
            .unwrap()
            .state
            .fields;
        assert_eq!(s["agent"], json!({"version": "9.2.5"}));
    }

    fn state_of(store: &MemoryStore, key: &ApiKey, id: &str, body: Value) -> CheckinWrite {
        checkin_start(store, &remotes(), &input(key, id, body), SystemTime::now())
            .unwrap()
            .state
    }

    fn set_members(store: &MemoryStore, id: &str, members: Value) {
        let Value::Object(fields) = members else {
            panic!("not an object")
        };
        store.update_agent(id, &fields).unwrap();
    }

    /// es-contract.md §2.3 checkin flush row: `unhealthy_reason` on every flush, null when
    /// nothing is wrong; `action_seq_no` only for a known position.
    #[test]
    fn every_flush_writes_unhealthy_reason_and_only_a_known_position() {
        let (store, key, id) = enrolled();
        let s = state_of(&store, &key, &id, json!({"status": "online"}));
        assert_eq!(s.fields.get("unhealthy_reason"), Some(&Value::Null));
        assert!(!s.fields.contains_key("action_seq_no"), "{s:?}");
        assert!(!s.clear_audit);
        let keys: Vec<&str> = s.fields.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "last_checkin",
                "last_checkin_message",
                "last_checkin_status",
                "sequence_num",
                "unhealthy_reason",
                "upgrade"
            ]
        );

        // §3.9: the stored value is the start; `["other"]` when none and the status was bad;
        // changed components replace it (inputs before outputs).
        set_members(&store, &id, json!({"unhealthy_reason": ["input"]}));
        let s = state_of(&store, &key, &id, json!({"status": "online"}));
        assert_eq!(s.fields["unhealthy_reason"], json!(["input"]));
        set_members(
            &store,
            &id,
            json!({"unhealthy_reason": null, "last_checkin_status": "FAILED"}),
        );
        let s = state_of(&store, &key, &id, json!({"status": "online"}));
        assert_eq!(s.fields["unhealthy_reason"], json!(["other"]));
        let body = json!({"status": "DEGRADED", "components": [{"id": "c", "status": "FAILED", "units": [
            {"type": "output", "status": "FAILED"}, {"type": "input", "status": "DEGRADED"}]}]});
        let s = state_of(&store, &key, &id, body);
        assert_eq!(s.fields["unhealthy_reason"], json!(["input", "output"]));
    }

    /// es-contract.md §3.7 S1: an audit-unenrolled agent's checkin removes the audit members and
    /// writes S1's members only.
    #[test]
    fn an_audit_unenrolled_agents_checkin_clears_the_audit_members() {
        let (store, key, id) = enrolled();
        set_members(
            &store,
            &id,
            json!({"audit_unenrolled_reason": "uninstall", "audit_unenrolled_time": "2026-01-01T00:00:00Z"}),
        );
        let s = state_of(
            &store,
            &key,
            &id,
            json!({"status": "online", "upgrade": {}}),
        );
        assert!(s.clear_audit);
        assert!(!s.fields.contains_key("sequence_num"));
        assert!(!s.fields.contains_key("upgrade"));
        assert!(s
            .fields
            .keys()
            .all(|k| !AUDIT_MEMBERS.contains(&k.as_str())));
        store.update_agents(&[(id.clone(), s)]).unwrap();
        let doc = store.agent_document(&id).unwrap();
        assert!(
            doc.keys().all(|k| !AUDIT_MEMBERS.contains(&k.as_str())),
            "{doc:?}"
        );
        let s = state_of(&store, &key, &id, json!({"status": "online"}));
        assert!(!s.clear_audit, "once removed, plain writes again");
    }

    #[test]
    fn invalid_upgrade_details_fail_the_checkin() {
        let (store, key, id) = enrolled();
        let body = json!({"status": "online", "upgrade_details": {"action_id": "x", "state": "UPG_FAILED", "metadata": {}}});
        assert!(matches!(
            checkin_start(
                &*store,
                &remotes(),
                &input(&key, &id, body),
                SystemTime::now()
            ),
            Err(OpError::Refused(_))
        ));
    }
}
