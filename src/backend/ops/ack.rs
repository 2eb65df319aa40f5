//! `POST /api/fleet/agents/{id}/acks` against the store (fleet-protocol.md §4): per-event
//! handling in request order, result documents written once, policy-revision acks with the
//! post-rollout key maintenance, UNENROLL deactivation, and the response whose HTTP status is the
//! highest item status. The events are read the way Go reads them (`ack_event`), so any body Go
//! accepts, `{"events":null}` included, is accepted.

use std::time::SystemTime;

// Moved to `backend::interface`; this path stays for the branches developed alongside the move.
// To be removed.
use crate::backend::interface::{AckInput, AckOutcome};

use serde_json::{json, Map, Value};

use crate::transform::ack_event::{Event, RawEvent, View};

use super::authenticate_agent_for_ack;
use super::outputs::{invalidate_keys, is_stale};
use crate::backend::remote::{KeyCluster, RemoteClusters};
use crate::backend::OpError;
use crate::backend::{PolicyAck, Store, StoreError};
use crate::model::time::rfc3339_seconds;
use crate::model::{ActionResult, Agent};

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
pub fn ack(
    store: &dyn Store,
    remotes: &RemoteClusters,
    input: &AckInput,
    now: SystemTime,
) -> Result<AckOutcome, OpError> {
    let agent = authenticate_agent_for_ack(store, &input.key, &input.agent_id)?;
    let events = input.body.as_ref().map_err(OpError::clone)?;
    let mut items: Vec<(u16, String)> = Vec::with_capacity(events.len());
    let mut policy_events: Vec<(usize, String, i64)> = Vec::new();
    let mut unenroll = false;

    for (n, raw) in events.iter().enumerate() {
        let event = raw.view(View::Generic);
        if !event.agent_id.is_empty() && event.agent_id != agent.id {
            items.push((400, reason(400).into()));
            continue;
        }
        if let Some(rest) = event.action_id.strip_prefix("policy:") {
            if event.error.is_none() {
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
        let result = action_result(&action, &agent.id, raw);
        if let Err(e) = store.create_action_result(&result) {
            items.push(item_for(&e));
            continue;
        }
        if action.action_type == "UPGRADE" {
            if let Err(e) = upgrade_ack(store, &agent, &raw.view(View::Upgrade), now) {
                items.push(item_for(&e));
                continue;
            }
        }
        if event.error.is_none() && matches!(action.action_type.as_str(), "UNENROLL" | "MIGRATE") {
            unenroll = true;
        }
        items.push((200, reason(200).into()));
    }

    if let Err(e) = apply_policy_acks(store, remotes, &agent, &policy_events, now) {
        let failed = item_for(&e);
        for (n, _, _) in &policy_events {
            if let Some(item) = items.get_mut(*n) {
                *item = failed.clone();
            }
        }
    }
    if unenroll {
        if let Err(e) = deactivate(store, remotes, &agent, now) {
            return Err(e.into());
        }
        log::info!(
            "audit: event.action=agent-unenroll event.outcome=success fleet.agent.id={} fleet.policy.id={} (the agent acknowledged its UNENROLL or MIGRATE)",
            agent.id,
            agent.policy_id
        );
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

/// §4.2 step 4: the result document, from the event read as the action's type dictates
/// (Go's `eventToActionResult`): times re-formatted as Go's `RFC3339Nano` in the agent's offset,
/// members Go leaves empty omitted (`omitempty`).
fn action_result(action: &crate::model::Action, agent_id: &str, raw: &RawEvent) -> ActionResult {
    let view = match action.action_type.as_str() {
        "REQUEST_DIAGNOSTICS" => View::Diagnostics,
        "INPUT_ACTION" => View::Input,
        _ => View::Generic,
    };
    let event = raw.view(view);
    let mut other = Map::new();
    match view {
        View::Diagnostics => {
            // Go re-marshals the decoded struct: a nil pointer is written as `null`.
            other.insert("data".into(), event.data.clone().unwrap_or(Value::Null));
        }
        View::Input => {
            if !event.action_input_type.is_empty() {
                other.insert("action_input_type".into(), json!(event.action_input_type));
            }
            other.insert("started_at".into(), json!(event.started_at.rfc3339_nano()));
            other.insert(
                "completed_at".into(),
                json!(event.completed_at.rfc3339_nano()),
            );
            if let Some(data) = &event.action_data {
                other.insert("action_data".into(), data.clone());
            }
            if let Some(response) = &event.action_response {
                other.insert("action_response".into(), response.clone());
            }
        }
        View::Generic | View::Upgrade => {}
    }
    ActionResult {
        action_id: action.action_id.clone(),
        agent_id: agent_id.to_owned(),
        timestamp: event.timestamp.rfc3339_nano(),
        error: event.error.unwrap_or_default(),
        namespaces: action.namespaces.clone(),
        other,
    }
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

/// §4.3: highest acked revision of the agent's policy, if newer than stored. Key maintenance
/// happens on each key's own cluster; a remote cluster that cannot be reached does not fail the
/// ack (its stale roles stay until the next acked revision, its retired keys stay queued).
fn apply_policy_acks(
    store: &dyn Store,
    remotes: &RemoteClusters,
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
        if key.remote_config_hash.is_empty() {
            remove_stale_roles(store, &key.api_key_id)?;
        } else {
            let done = match remotes.by_hash(&key.remote_config_hash) {
                Some(Ok(cluster)) => {
                    let r = remove_stale_roles(&*cluster, &key.api_key_id);
                    remotes.record(&key.remote_config_hash, r.as_ref().map(|_| ()));
                    r.map_err(|e| e.to_string())
                }
                Some(Err(reason)) => Err(reason),
                None => Err("its remote cluster is not in any policy seen by this server".into()),
            };
            if let Err(reason) = done {
                log::warn!(
                    "agent {}: removing stale roles of remote API key {} failed: {reason}",
                    agent.id,
                    key.api_key_id
                );
            }
        }
        let retire: Vec<(String, String)> = key
            .to_retire_api_key_ids
            .iter()
            .filter(|r| r.id != key.api_key_id)
            .map(|r| (r.id.clone(), r.remote_config_hash.clone()))
            .collect();
        let kept = invalidate_keys(store, remotes, &retire)?;
        key.to_retire_api_key_ids.retain(|r| {
            kept.iter()
                .any(|(id, hash)| *id == r.id && *hash == r.remote_config_hash)
        });
    }
    // S3 (es-contract.md §3.7): the legacy key history is removed, not nulled; the outputs with
    // their retired keys gone are this server's addition (Fleet Server leaves them queued).
    let outputs = (!outputs.is_empty())
        .then(|| serde_json::to_value(&outputs).ok())
        .flatten();
    store.policy_acked(
        &agent.id,
        &PolicyAck {
            policy_id: agent.policy_id.clone(),
            revision: rev,
            updated_at: rfc3339_seconds(now),
            outputs,
        },
    )
}

/// Removes the `-rdstale` roles a permissions update left on a key.
fn remove_stale_roles<C: KeyCluster + ?Sized>(cluster: &C, id: &str) -> Result<(), StoreError> {
    if let Some(Value::Object(roles)) = cluster.api_key_roles(id)? {
        if roles.keys().any(|r| is_stale(r)) {
            let kept: Map<String, Value> =
                roles.into_iter().filter(|(r, _)| !is_stale(r)).collect();
            cluster.update_api_key_roles(id, &Value::Object(kept))?;
        }
    }
    Ok(())
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
    if event.error.is_some() {
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

/// §4.4: invalidate every key of the agent (remote ones on their clusters; a remote cluster
/// that cannot be reached leaves its keys there, with a warning) and mark it inactive.
fn deactivate(
    store: &dyn Store,
    remotes: &RemoteClusters,
    agent: &Agent,
    now: SystemTime,
) -> Result<(), StoreError> {
    let mut keys = vec![(agent.access_api_key_id.clone(), String::new())];
    for key in agent.outputs.values() {
        keys.push((key.api_key_id.clone(), key.remote_config_hash.clone()));
        keys.extend(
            key.to_retire_api_key_ids
                .iter()
                .map(|r| (r.id.clone(), r.remote_config_hash.clone())),
        );
    }
    let left = invalidate_keys(store, remotes, &keys)?;
    if !left.is_empty() {
        log::warn!(
            "agent {} unenrolled; {} of its remote output keys could not be invalidated",
            agent.id,
            left.len()
        );
    }
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
    use crate::backend::ApiKey;
    use crate::model::Action;

    fn setup() -> (MemoryStore, ApiKey) {
        super::super::testkit::store_with_agent("a1")
    }

    fn ack_events(store: &MemoryStore, key: &ApiKey, events: Value) -> AckOutcome {
        ack(
            store,
            &super::super::testkit::remotes(),
            &AckInput {
                key: key.clone(),
                agent_id: "a1".into(),
                body: crate::api::ack::parse(
                    &serde_json::to_vec(&json!({"events": events})).unwrap(),
                ),
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

    /// An agent with a local and a remote output key (revision 1 of policy `p`).
    fn with_remote_key(
        remotes: &RemoteClusters,
        token: &str,
    ) -> (
        MemoryStore,
        ApiKey,
        std::collections::BTreeMap<String, String>,
    ) {
        let (store, key) = setup();
        let keys = remote_keys(&store, remotes, token, 2);
        (store, key, keys)
    }

    fn remote_keys(
        store: &MemoryStore,
        remotes: &RemoteClusters,
        token: &str,
        revision: i64,
    ) -> std::collections::BTreeMap<String, String> {
        let policy = crate::transform::prepared_policy::PreparedPolicy::prepare(
            &crate::model::PolicyDoc {
                policy_id: "p".into(),
                revision_idx: revision,
                data: json!({"outputs": {
                    "default": {"type": "elasticsearch"},
                    "remote": {"type": "remote_elasticsearch", "hosts": ["https://r:9200"], "service_token": token}},
                    "output_permissions": {"default": {}, "remote": {}}}),
                ..crate::model::PolicyDoc::default()
            },
            &std::collections::HashMap::new(),
        )
        .unwrap();
        for remote in policy.es_outputs.iter().filter_map(|o| o.remote.as_ref()) {
            remotes.learn(remote);
        }
        let agent = store.agent("a1").unwrap().unwrap();
        super::super::outputs::ensure_output_keys(
            store,
            remotes,
            &agent,
            &policy,
            SystemTime::now(),
        )
        .unwrap()
    }

    fn split(joined: &str) -> ApiKey {
        let (id, secret) = joined.split_once(':').unwrap();
        ApiKey {
            id: id.into(),
            secret: secret.into(),
        }
    }

    fn enabled(cluster: &MemoryStore, key: &ApiKey) -> bool {
        Store::authenticate(cluster, key)
            .unwrap()
            .is_some_and(|i| i.enabled)
    }

    fn ack_with(
        store: &MemoryStore,
        remotes: &RemoteClusters,
        key: &ApiKey,
        events: Value,
    ) -> AckOutcome {
        ack(
            store,
            remotes,
            &AckInput {
                key: key.clone(),
                agent_id: "a1".into(),
                body: crate::api::ack::parse(
                    &serde_json::to_vec(&json!({"events": events})).unwrap(),
                ),
            },
            SystemTime::now(),
        )
        .unwrap()
    }

    #[test]
    fn unenroll_invalidates_remote_keys_on_their_cluster() {
        let (clusters, remotes) = crate::backend::remote::testkit::registry();
        let (store, key, keys) = with_remote_key(&remotes, "t1");
        let remote = clusters.at("https://r:9200");
        let remote_key = split(&keys["remote"]);
        assert!(enabled(&remote, &remote_key));
        let u = store
            .add_action(Action {
                action_id: "u1".into(),
                action_type: "UNENROLL".into(),
                agents: vec!["a1".into()],
                ..Action::default()
            })
            .unwrap();
        let out = ack_with(&store, &remotes, &key, json!([{"action_id": u.action_id}]));
        assert_eq!(out.status, 200);
        assert!(
            !enabled(&remote, &remote_key),
            "invalidated on the remote cluster"
        );
        assert!(!enabled(&store, &split(&keys["default"])));
        assert!(!enabled(&store, &key));
    }

    #[test]
    fn unenroll_with_the_remote_cluster_down_still_unenrolls() {
        let (clusters, remotes) = crate::backend::remote::testkit::registry();
        let (store, key, keys) = with_remote_key(&remotes, "t1");
        clusters.down("https://r:9200", true);
        let u = store
            .add_action(Action {
                action_id: "u1".into(),
                action_type: "UNENROLL".into(),
                agents: vec!["a1".into()],
                ..Action::default()
            })
            .unwrap();
        let out = ack_with(&store, &remotes, &key, json!([{"action_id": u.action_id}]));
        assert_eq!(out.status, 200);
        assert!(!store.agent("a1").unwrap().unwrap().active);
        clusters.down("https://r:9200", false);
        assert!(
            enabled(&clusters.at("https://r:9200"), &split(&keys["remote"])),
            "left there, with a warning"
        );
    }

    #[test]
    fn a_policy_ack_retires_old_remote_keys_on_their_cluster() {
        let (clusters, remotes) =
            crate::backend::remote::testkit::registry_with(std::time::Duration::ZERO);
        let (store, key, first) = with_remote_key(&remotes, "t1");
        // The output's token changes in revision 3: a new key, the old one queued for retirement.
        let second = remote_keys(&store, &remotes, "t2", 3);
        assert_ne!(first["remote"], second["remote"]);
        let remote = clusters.at("https://r:9200");
        let old = split(&first["remote"]);
        assert!(enabled(&remote, &old), "until the agent has the new key");

        clusters.down("https://r:9200", true);
        assert_eq!(
            ack_with(&store, &remotes, &key, json!([{"action_id": "policy:p:2"}])).status,
            200
        );
        let queued = &store.agent("a1").unwrap().unwrap().outputs["remote"].to_retire_api_key_ids;
        assert_eq!(queued.len(), 1, "kept while its cluster is down");

        clusters.down("https://r:9200", false);
        assert_eq!(
            ack_with(&store, &remotes, &key, json!([{"action_id": "policy:p:3"}])).status,
            200
        );
        assert!(!enabled(&remote, &old));
        assert!(enabled(&remote, &split(&second["remote"])));
        let agent = store.agent("a1").unwrap().unwrap();
        assert!(agent.outputs["remote"].to_retire_api_key_ids.is_empty());
        assert_eq!(agent.policy_revision_idx, 3);
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
