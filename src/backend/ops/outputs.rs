//! Per-agent output API keys (fleet-protocol.md §3.7), run when an agent is about to receive a
//! POLICY_CHANGE whose Elasticsearch outputs it has no current key for:
//! * no key yet → create one with the output's role descriptors;
//! * permissions changed → keep the key, give it the new roles plus the old ones renamed
//!   `<name>-<i>-rdstale` (removed after the agent acks the revision, §4.3), so the agent never
//!   has fewer permissions during the rollout;
//! * an output that left the policy → its key is queued in `to_retire_api_key_ids`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::store_error;
use crate::api::ApiError;
use crate::backend::{NewApiKey, Store};
use crate::core::policy::PreparedPolicy;
use crate::model::time::rfc3339_seconds;
use crate::model::{Agent, OutputKey, RetiredKey};

/// Ensures `agent` has current keys for every Elasticsearch output of `policy`; returns output
/// name → `id:secret`, and writes the agent's `outputs` when anything changed.
pub fn ensure_output_keys(
    store: &dyn Store,
    agent: &Agent,
    policy: &PreparedPolicy,
    now: SystemTime,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut outputs = agent.outputs.clone();
    let mut changed = false;
    let now_text = rfc3339_seconds(now);

    // Outputs no longer in the policy: retire their keys under the first current output.
    let gone: Vec<String> = outputs
        .keys()
        .filter(|name| !policy.es_outputs.iter().any(|o| &o.name == *name))
        .cloned()
        .collect();
    let mut retired: Vec<RetiredKey> = Vec::new();
    for name in gone {
        if let Some(old) = outputs.remove(&name) {
            if !old.api_key_id.is_empty() {
                retired.push(RetiredKey {
                    id: old.api_key_id,
                    retired_at: now_text.clone(),
                    output: Some(name.clone()),
                    remote_config_hash: old.remote_config_hash.clone(),
                });
            }
            retired.extend(old.to_retire_api_key_ids);
            changed = true;
        }
    }

    let mut keys = BTreeMap::new();
    for (i, out) in policy.es_outputs.iter().enumerate() {
        let entry = outputs.entry(out.name.clone()).or_default();
        if i == 0 && !retired.is_empty() {
            entry.to_retire_api_key_ids.append(&mut retired);
        }
        if entry.api_key.is_empty() {
            let key = store
                .create_api_key(&NewApiKey {
                    name: format!("{}:{}", agent.id, out.name),
                    role_descriptors: out.roles.clone(),
                    metadata: json!({"agent_id": agent.id, "managed": true, "managed_by": "fleet-server",
                                     "output_name": out.name, "type": "output"}),
                })
                .map_err(store_error)?;
            if !entry.api_key_id.is_empty() {
                entry.to_retire_api_key_ids.push(RetiredKey {
                    id: entry.api_key_id.clone(),
                    retired_at: now_text.clone(),
                    output: None,
                    remote_config_hash: entry.remote_config_hash.clone(),
                });
            }
            *entry = OutputKey {
                api_key: key.joined(),
                api_key_id: key.id,
                permissions_hash: out.hash.clone(),
                output_type: "elasticsearch".into(),
                to_retire_api_key_ids: std::mem::take(&mut entry.to_retire_api_key_ids),
                remote_config_hash: String::new(),
            };
            changed = true;
        } else if entry.permissions_hash != out.hash {
            let current = store
                .api_key_roles(&entry.api_key_id)
                .map_err(store_error)?
                .unwrap_or(Value::Object(Map::new()));
            let merged = merge_with_stale(&out.roles, &current);
            store
                .update_api_key_roles(&entry.api_key_id, &merged)
                .map_err(store_error)?;
            entry.permissions_hash = out.hash.clone();
            entry.output_type = "elasticsearch".into();
            changed = true;
        }
        keys.insert(out.name.clone(), entry.api_key.clone());
    }
    if changed {
        // Objects merge recursively in a partial update: outputs that left the policy must be
        // removed explicitly.
        let mut written = match serde_json::to_value(&outputs) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        for gone in agent
            .outputs
            .keys()
            .filter(|name| !outputs.contains_key(*name))
        {
            written.insert(gone.clone(), Value::Null);
        }
        let mut fields = Map::new();
        fields.insert("outputs".into(), Value::Object(written));
        store
            .update_agent(&agent.id, &fields)
            .map_err(store_error)?;
    }
    Ok(keys)
}

/// New roles plus every old role renamed `<name>-<i>-rdstale` (first free `i` in 0..99; a name
/// already ending in `-N-rdstale` is re-based on its original name).
pub fn merge_with_stale(new_roles: &Value, old_roles: &Value) -> Value {
    let mut merged = new_roles.as_object().cloned().unwrap_or_default();
    if let Some(old) = old_roles.as_object() {
        for (name, descriptor) in old {
            let base = strip_stale(name);
            if let Some(fresh) = (0..100)
                .map(|i| format!("{base}-{i}-rdstale"))
                .find(|n| !merged.contains_key(n))
            {
                merged.insert(fresh, descriptor.clone());
            }
        }
    }
    Value::Object(merged)
}

/// `name` without a trailing `-<digits>-rdstale`.
pub fn strip_stale(name: &str) -> &str {
    if let Some(head) = name.strip_suffix("-rdstale") {
        if let Some((base, digits)) = head.rsplit_once('-') {
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return base;
            }
        }
    }
    name
}

/// Whether a role name is a stale copy kept during a rollout.
pub fn is_stale(name: &str) -> bool {
    strip_stale(name) != name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryStore;
    use crate::model::{AgentInfo, PolicyDoc};
    use std::collections::HashMap;

    fn policy(outputs: Value, permissions: Value) -> PreparedPolicy {
        PreparedPolicy::prepare(
            &PolicyDoc {
                policy_id: "p".into(),
                revision_idx: 1,
                data: json!({"outputs": outputs, "output_permissions": permissions}),
                ..PolicyDoc::default()
            },
            &HashMap::new(),
        )
        .unwrap()
    }

    fn agent(store: &MemoryStore) -> Agent {
        let a = Agent {
            id: "a1".into(),
            active: true,
            agent: Some(AgentInfo {
                id: "a1".into(),
                version: "9.2.1".into(),
            }),
            ..Agent::default()
        };
        store.create_agent(&a).unwrap();
        a
    }

    #[test]
    fn creates_then_reuses_then_updates_permissions() {
        let store = MemoryStore::new();
        let a = agent(&store);
        let p1 = policy(
            json!({"default": {"type": "elasticsearch"}}),
            json!({"default": {"r1": {"cluster": ["monitor"]}}}),
        );
        let keys = ensure_output_keys(&store, &a, &p1, SystemTime::now()).unwrap();
        let first = keys["default"].clone();
        let (id, secret) = first.split_once(':').unwrap();
        let info = store
            .authenticate(&crate::backend::ApiKey {
                id: id.into(),
                secret: secret.into(),
            })
            .unwrap()
            .unwrap();
        assert_eq!(info.metadata["type"], "output");
        assert_eq!(info.metadata["output_name"], "default");
        let a = store.agent("a1").unwrap().unwrap();
        assert!(p1.keys_current(&a.outputs));

        assert_eq!(
            ensure_output_keys(&store, &a, &p1, SystemTime::now()).unwrap()["default"],
            first,
            "no churn"
        );

        let p2 = policy(
            json!({"default": {"type": "elasticsearch"}}),
            json!({"default": {"r2": {"cluster": []}}}),
        );
        let keys = ensure_output_keys(&store, &a, &p2, SystemTime::now()).unwrap();
        assert_eq!(keys["default"], first, "same key, new permissions");
        let roles = store.api_key_roles(id).unwrap().unwrap();
        assert!(
            roles.get("r2").is_some() && roles.get("r1-0-rdstale").is_some(),
            "{roles}"
        );
        assert!(p2.keys_current(&store.agent("a1").unwrap().unwrap().outputs));
    }

    #[test]
    fn removed_outputs_are_retired() {
        let store = MemoryStore::new();
        let a = agent(&store);
        let p1 = policy(
            json!({"old": {"type": "elasticsearch"}}),
            json!({"old": {}}),
        );
        ensure_output_keys(&store, &a, &p1, SystemTime::now()).unwrap();
        let a = store.agent("a1").unwrap().unwrap();
        let old_id = a.outputs["old"].api_key_id.clone();
        let p2 = policy(
            json!({"new": {"type": "elasticsearch"}}),
            json!({"new": {}}),
        );
        ensure_output_keys(&store, &a, &p2, SystemTime::now()).unwrap();
        let a = store.agent("a1").unwrap().unwrap();
        assert!(!a.outputs.contains_key("old"));
        let retired: Vec<&str> = a.outputs["new"]
            .to_retire_api_key_ids
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(retired, [old_id.as_str()]);
    }

    #[test]
    fn stale_names_rebase() {
        assert_eq!(strip_stale("r-3-rdstale"), "r");
        assert_eq!(strip_stale("r-x-rdstale"), "r-x-rdstale");
        assert!(is_stale("a-0-rdstale") && !is_stale("a"));
        let merged = merge_with_stale(&json!({"r": 1}), &json!({"r": 0, "r-0-rdstale": 2}));
        assert_eq!(merged, json!({"r": 1, "r-0-rdstale": 0, "r-1-rdstale": 2}));
    }
}
