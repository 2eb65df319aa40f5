//! `POST /api/fleet/agents/{id}/acks` against the store (fleet-protocol.md §4): per-event
//! handling in request order, result documents written once, policy-revision acks with the
//! post-rollout key maintenance, UNENROLL deactivation, and the response whose HTTP status is the
//! highest item status.

use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::outputs::is_stale;
use super::{authenticate_agent, store_error};
use crate::api::ApiError;
use crate::backend::{ApiKey, Store, StoreError};
use crate::model::time::rfc3339_seconds;
use crate::model::{ActionResult, Agent};

/// What the ack operation needs from the request.
#[derive(Debug, Clone)]
pub struct AckInput {
    /// The access key presented.
    pub key: ApiKey,
    /// Agent id from the path.
    pub agent_id: String,
    /// The raw (decompressed) body.
    pub body: Vec<u8>,
}

#[derive(Debug, Deserialize)]
struct AckBody {
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    action_id: String,
    #[serde(default)]
    timestamp: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    action_input_type: Option<String>,
    #[serde(default)]
    action_data: Option<Value>,
    #[serde(default)]
    action_response: Option<Value>,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    completed_at: Option<String>,
}

/// The ack outcome: HTTP status and body.
#[derive(Debug, Clone, PartialEq)]
pub struct AckOutcome {
    /// The highest item status (200 when all succeeded).
    pub status: u16,
    /// `{"action":"acks","items":[...],"errors":true?}`.
    pub body: Value,
    /// Whether the agent was unenrolled by this request (the loop drops its caches).
    pub unenrolled: bool,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

fn item_for(err: &StoreError) -> (u16, String) {
    match err {
        StoreError::Failed { status, detail } => (*status, detail.clone()),
        StoreError::TooManyRequests => (429, reason(429).into()),
        StoreError::Unavailable(_) => (503, reason(503).into()),
        _ => (500, reason(500).into()),
    }
}

/// Processes the events of one ack request.
pub fn ack(store: &dyn Store, input: &AckInput, now: SystemTime) -> Result<AckOutcome, ApiError> {
    let agent = authenticate_agent(store, &input.key, &input.agent_id)?;
    let body: AckBody = serde_json::from_slice(&input.body)
        .map_err(|e| ApiError::BadRequest(format!("unable to decode ack request: {e}")))?;
    let mut items: Vec<(u16, String)> = Vec::with_capacity(body.events.len());
    let mut policy_events: Vec<(usize, String, i64)> = Vec::new();
    let mut unenroll = false;

    for (n, event) in body.events.iter().enumerate() {
        if !event.agent_id.is_empty() && event.agent_id != agent.id {
            items.push((400, reason(400).into()));
            continue;
        }
        if let Some(rest) = event.action_id.strip_prefix("policy:") {
            if event.error.is_empty() {
                if let Some((pid, rev)) = parse_policy_action(rest) {
                    policy_events.push((n, pid, rev));
                }
            }
            items.push((200, reason(200).into()));
            continue;
        }
        let action = match store.action(&event.action_id) {
            Ok(Some(a)) => a,
            Ok(None) => {
                items.push((404, reason(404).into()));
                continue;
            }
            Err(e) => {
                items.push(item_for(&e));
                continue;
            }
        };
        let mut other = Map::new();
        match action.action_type.as_str() {
            "REQUEST_DIAGNOSTICS" => {
                other.insert("data".into(), event.data.clone().unwrap_or(Value::Null));
            }
            "INPUT_ACTION" => {
                other.insert(
                    "action_input_type".into(),
                    json!(event.action_input_type.clone().unwrap_or_default()),
                );
                other.insert(
                    "started_at".into(),
                    json!(event.started_at.clone().unwrap_or_default()),
                );
                other.insert(
                    "completed_at".into(),
                    json!(event.completed_at.clone().unwrap_or_default()),
                );
                other.insert(
                    "action_data".into(),
                    event.action_data.clone().unwrap_or(Value::Null),
                );
                other.insert(
                    "action_response".into(),
                    event.action_response.clone().unwrap_or(Value::Null),
                );
            }
            _ => {}
        }
        let result = ActionResult {
            action_id: action.action_id.clone(),
            agent_id: agent.id.clone(),
            timestamp: if event.timestamp.is_empty() {
                "0001-01-01T00:00:00Z".into()
            } else {
                event.timestamp.clone()
            },
            error: event.error.clone(),
            namespaces: action.namespaces.clone(),
            other,
        };
        if let Err(e) = store.create_action_result(&result) {
            items.push(item_for(&e));
            continue;
        }
        if action.action_type == "UPGRADE" {
            if let Err(e) = upgrade_ack(store, &agent, event, now) {
                items.push(item_for(&e));
                continue;
            }
        }
        if event.error.is_empty() && matches!(action.action_type.as_str(), "UNENROLL" | "MIGRATE") {
            unenroll = true;
        }
        items.push((200, reason(200).into()));
    }

    if let Err(e) = apply_policy_acks(store, &agent, &policy_events, now) {
        let failed = item_for(&e);
        for (n, _, _) in &policy_events {
            if let Some(item) = items.get_mut(*n) {
                *item = failed.clone();
            }
        }
    }
    if unenroll {
        if let Err(e) = deactivate(store, &agent, now) {
            return Err(store_error(e));
        }
    }

    let status = items.iter().map(|(s, _)| *s).max().unwrap_or(200);
    let mut out = Map::new();
    out.insert("action".into(), json!("acks"));
    if !items.is_empty() {
        out.insert(
            "items".into(),
            Value::Array(
                items
                    .iter()
                    .map(|(s, m)| json!({"status": s, "message": m}))
                    .collect(),
            ),
        );
    }
    if status != 200 {
        out.insert("errors".into(), json!(true));
    }
    Ok(AckOutcome {
        status,
        body: Value::Object(out),
        unenrolled: unenroll,
    })
}

/// `<pid>:<rev>` or the legacy `<pid>:<rev>:<coordinator>`.
fn parse_policy_action(rest: &str) -> Option<(String, i64)> {
    let parts: Vec<&str> = rest.split(':').collect();
    let (pid, rev) = match parts.as_slice() {
        [pid, rev] | [pid, rev, _] => (pid, rev),
        _ => return None,
    };
    Some(((*pid).to_owned(), rev.parse().ok()?))
}

/// §4.3: highest acked revision of the agent's policy, if newer than stored.
fn apply_policy_acks(
    store: &dyn Store,
    agent: &Agent,
    events: &[(usize, String, i64)],
    now: SystemTime,
) -> Result<(), StoreError> {
    let Some(rev) = events
        .iter()
        .filter(|(_, pid, _)| *pid == agent.policy_id)
        .map(|(_, _, rev)| *rev)
        .max()
        .filter(|rev| *rev > agent.policy_revision_idx)
    else {
        return Ok(());
    };
    let mut outputs = agent.outputs.clone();
    for key in outputs
        .values_mut()
        .filter(|k| k.output_type == "elasticsearch" || k.output_type.is_empty())
    {
        if key.api_key_id.is_empty() {
            continue;
        }
        if let Some(Value::Object(roles)) = store.api_key_roles(&key.api_key_id)? {
            if roles.keys().any(|r| is_stale(r)) {
                let kept: Map<String, Value> =
                    roles.into_iter().filter(|(r, _)| !is_stale(r)).collect();
                store.update_api_key_roles(&key.api_key_id, &Value::Object(kept))?;
            }
        }
        let retire: Vec<String> = key
            .to_retire_api_key_ids
            .iter()
            .map(|r| r.id.clone())
            .filter(|id| *id != key.api_key_id)
            .collect();
        if !retire.is_empty() {
            store.invalidate_api_keys(&retire)?;
        }
        key.to_retire_api_key_ids.clear();
    }
    let mut fields = Map::new();
    fields.insert("policy_revision_idx".into(), json!(rev));
    fields.insert("updated_at".into(), json!(rfc3339_seconds(now)));
    fields.insert("default_api_key_history".into(), Value::Null);
    fields.insert(
        "outputs".into(),
        serde_json::to_value(&outputs).unwrap_or(Value::Null),
    );
    store.update_agent(&agent.id, &fields)
}

/// §4.2 step 5: the legacy UPGRADE ack path.
fn upgrade_ack(
    store: &dyn Store,
    agent: &Agent,
    event: &Event,
    now: SystemTime,
) -> Result<(), StoreError> {
    let retry = event
        .payload
        .as_ref()
        .and_then(|p| p.get("retry"))
        .and_then(Value::as_bool);
    let mut fields = Map::new();
    if !event.error.is_empty() {
        if retry == Some(true) {
            return Ok(());
        }
        fields.insert("upgrade_started_at".into(), Value::Null);
    } else {
        fields.insert("upgrade_started_at".into(), Value::Null);
        fields.insert("upgraded_at".into(), json!(rfc3339_seconds(now)));
        if agent.upgrade_details.is_none() {
            fields.insert("upgrade_attempts".into(), Value::Null);
        }
    }
    store.update_agent(&agent.id, &fields)
}

/// §4.4: invalidate every key of the agent and mark it inactive.
fn deactivate(store: &dyn Store, agent: &Agent, now: SystemTime) -> Result<(), StoreError> {
    let mut ids = vec![agent.access_api_key_id.clone()];
    for key in agent.outputs.values() {
        ids.push(key.api_key_id.clone());
        ids.extend(key.to_retire_api_key_ids.iter().map(|r| r.id.clone()));
    }
    ids.retain(|id| !id.is_empty());
    store.invalidate_api_keys(&ids)?;
    let now = rfc3339_seconds(now);
    let mut fields = Map::new();
    fields.insert("active".into(), json!(false));
    fields.insert("unenrolled_at".into(), json!(now));
    fields.insert("updated_at".into(), json!(now));
    store.update_agent(&agent.id, &fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryStore;
    use crate::model::Action;

    fn setup() -> (MemoryStore, ApiKey) {
        super::super::testkit::store_with_agent("a1")
    }

    fn ack_events(store: &MemoryStore, key: &ApiKey, events: Value) -> AckOutcome {
        ack(
            store,
            &AckInput {
                key: key.clone(),
                agent_id: "a1".into(),
                body: serde_json::to_vec(&json!({"events": events})).unwrap(),
            },
            SystemTime::now(),
        )
        .unwrap()
    }

    #[test]
    fn policy_ack_moves_the_revision_forward_only() {
        let (store, key) = setup();
        let out = ack_events(
            &store,
            &key,
            json!([{"action_id": "policy:p:3", "agent_id": "a1", "type": "ACTION_RESULT", "subtype": "ACKNOWLEDGED"}]),
        );
        assert_eq!(out.status, 200);
        assert_eq!(
            out.body,
            json!({"action": "acks", "items": [{"status": 200, "message": "OK"}]})
        );
        assert_eq!(store.agent("a1").unwrap().unwrap().policy_revision_idx, 3);
        ack_events(
            &store,
            &key,
            json!([{"action_id": "policy:p:2"}, {"action_id": "policy:other:9"}]),
        );
        assert_eq!(
            store.agent("a1").unwrap().unwrap().policy_revision_idx,
            3,
            "older or foreign revisions ignored"
        );
        ack_events(&store, &key, json!([{"action_id": "policy:p:5:1"}]));
        assert_eq!(
            store.agent("a1").unwrap().unwrap().policy_revision_idx,
            5,
            "legacy id accepted"
        );
    }

    #[test]
    fn unknown_action_is_404_with_errors_and_status_is_the_highest() {
        let (store, key) = setup();
        let out = ack_events(
            &store,
            &key,
            json!([{"action_id": "policy:p:2"}, {"action_id": "nope"}]),
        );
        assert_eq!(out.status, 404);
        assert_eq!(
            out.body,
            json!({"action": "acks", "errors": true, "items": [{"status": 200, "message": "OK"}, {"status": 404, "message": "Not Found"}]})
        );
        let empty = ack_events(&store, &key, json!([]));
        assert_eq!(empty.body, json!({"action": "acks"}));
    }

    #[test]
    fn results_are_written_once_and_unenroll_deactivates() {
        let (store, key) = setup();
        let action = store
            .add_action(Action {
                action_id: "u1".into(),
                action_type: "UNENROLL".into(),
                agents: vec!["a1".into()],
                namespaces: vec!["default".into()],
                ..Action::default()
            })
            .unwrap();
        let out = ack_events(
            &store,
            &key,
            json!([{"action_id": action.action_id, "timestamp": "2026-08-21T19:00:01.734912345Z"}]),
        );
        assert_eq!(out.status, 200);
        assert!(out.unenrolled);
        let result = store.action_result("u1:a1").unwrap();
        assert_eq!(result.timestamp, "2026-08-21T19:00:01.734912345Z");
        assert_eq!(result.namespaces, ["default"]);
        let agent = store.agent("a1").unwrap().unwrap();
        assert!(!agent.active);
        assert!(!agent.unenrolled_at.is_empty());
        assert!(
            store.authenticate(&key).unwrap().is_none_or(|i| !i.enabled),
            "keys invalidated"
        );
    }

    #[test]
    fn event_for_another_agent_is_400() {
        let (store, key) = setup();
        let out = ack_events(
            &store,
            &key,
            json!([{"action_id": "x", "agent_id": "someone-else"}]),
        );
        assert_eq!(out.status, 400);
    }
}
