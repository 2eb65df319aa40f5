//! Per-agent output API keys (fleet-protocol.md §3.7), run when an agent is about to receive a
//! POLICY_CHANGE whose Elasticsearch outputs it has no current key for:
//! * no key yet → create one with the output's role descriptors;
//! * permissions changed → keep the key, give it the new roles plus the old ones renamed
//!   `<name>-<i>-rdstale` (removed after the agent acks the revision, §4.3), so the agent never
//!   has fewer permissions during the rollout;
//! * an output that left the policy → its key is queued in `to_retire_api_key_ids`.
//!
//! Keys of `remote_elasticsearch` outputs live on the output's own cluster
//! ([`RemoteClusters`]); the agent document records the hash of the cluster configuration beside
//! each such key (and each retired one), so a changed configuration gets a new key there and
//! old keys are invalidated where they were made ([`invalidate_keys`], used by acks, unenroll
//! and the checkin of an inactive agent). A remote cluster that cannot make or update a key does
//! not fail the checkin: the output goes without `api_key` (or with its previous key) and the
//! output's health turns DEGRADED; the next delivery tries again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use crate::backend::remote::{KeyCluster, RemoteClusters};
use crate::backend::OpError;
use crate::backend::{ApiKey, NewApiKey, Store, StoreError};
use crate::model::time::rfc3339_seconds;
use crate::model::{Agent, OutputKey, RetiredKey};
use crate::transform::prepared_policy::{EsOutput, PreparedPolicy};

/// Ensures `agent` has current keys for every Elasticsearch output of `policy`; returns output
/// name → `id:secret` (without the outputs whose remote cluster could not make a key), and
/// writes the agent's `outputs` when anything changed.
pub fn ensure_output_keys(
    store: &dyn Store,
    remotes: &RemoteClusters,
    agent: &Agent,
    policy: &PreparedPolicy,
    now: SystemTime,
) -> Result<BTreeMap<String, String>, OpError> {
    let mut outputs = agent.outputs.clone();
    let mut changed = false;
    let now_text = rfc3339_seconds(now);

    // Outputs no longer in the policy: their keys are retired under the first current output
    // that has a key (below); they stay until one does.
    let gone: Vec<String> = outputs
        .keys()
        .filter(|name| !policy.es_outputs.iter().any(|o| &o.name == *name))
        .cloned()
        .collect();

    let mut keys = BTreeMap::new();
    for out in &policy.es_outputs {
        let mut entry = outputs.get(&out.name).cloned().unwrap_or_default();
        let new_cluster = entry.remote_config_hash != out.remote_config_hash();
        let outcome = if entry.api_key.is_empty() || new_cluster {
            create(store, remotes, agent, out, &entry, &now_text)?
        } else if entry.permissions_hash != out.hash {
            update(store, remotes, agent, out, &entry, &now_text)?
        } else {
            Outcome::Kept
        };
        let made = !matches!(outcome, Outcome::Kept);
        match outcome {
            Outcome::Kept => {}
            Outcome::Changed(e) => {
                entry = e;
                changed = true;
            }
            Outcome::Failed(problem) => {
                remotes.report(store, &out.name, Some(&problem), now);
                // Keep whatever key the agent has on the same cluster (older permissions);
                // nothing is written, so the next delivery tries again.
                if !new_cluster && !entry.api_key.is_empty() {
                    keys.insert(out.name.clone(), entry.api_key.clone());
                }
                continue;
            }
        }
        if out.remote.is_some() && made {
            remotes.report(store, &out.name, None, now);
        }
        keys.insert(out.name.clone(), entry.api_key.clone());
        outputs.insert(out.name.clone(), entry);
    }

    let holder = policy
        .es_outputs
        .iter()
        .find(|o| outputs.contains_key(&o.name))
        .map(|o| o.name.clone());
    if let (Some(holder), false) = (holder, gone.is_empty()) {
        let mut retired = Vec::new();
        for name in &gone {
            if let Some(old) = outputs.remove(name) {
                if !old.api_key_id.is_empty() {
                    retired.push(RetiredKey {
                        id: old.api_key_id,
                        retired_at: now_text.clone(),
                        output: Some(name.clone()),
                        remote_config_hash: old.remote_config_hash,
                    });
                }
                retired.extend(old.to_retire_api_key_ids);
            }
        }
        if let Some(entry) = outputs.get_mut(&holder) {
            entry.to_retire_api_key_ids.append(&mut retired);
        }
        changed = true;
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
            .map_err(OpError::from)?;
    }
    Ok(keys)
}

/// What happened to one output's key.
enum Outcome {
    /// Current already.
    Kept,
    /// New state of `outputs.<N>` (a new key, or new permissions).
    Changed(OutputKey),
    /// The remote cluster could not do it (the health message).
    Failed(String),
}

/// The cluster of an output: the store's, or its remote one.
enum Cluster<'a> {
    Main(&'a dyn Store),
    Remote(Arc<dyn KeyCluster>),
}

impl Cluster<'_> {
    fn create(&self, key: &NewApiKey) -> Result<ApiKey, StoreError> {
        match self {
            Cluster::Main(s) => s.create_api_key(key),
            Cluster::Remote(c) => c.create_api_key(key),
        }
    }
    fn roles(&self, id: &str) -> Result<Option<Value>, StoreError> {
        match self {
            Cluster::Main(s) => s.api_key_roles(id),
            Cluster::Remote(c) => c.api_key_roles(id),
        }
    }
    fn update(&self, id: &str, roles: &Value) -> Result<(), StoreError> {
        match self {
            Cluster::Main(s) => s.update_api_key_roles(id, roles),
            Cluster::Remote(c) => c.update_api_key_roles(id, roles),
        }
    }
}

/// Runs `call` on the output's cluster. Main-cluster failures are the checkin's (`Err`); a
/// remote failure is `Ok(Err(message))` for the output's health, and an outage makes the
/// registry fail fast for a while.
fn on_cluster<T>(
    store: &dyn Store,
    remotes: &RemoteClusters,
    out: &EsOutput,
    verb: &str,
    call: impl FnOnce(&Cluster<'_>) -> Result<T, StoreError>,
) -> Result<Result<T, String>, OpError> {
    let Some(remote) = &out.remote else {
        return call(&Cluster::Main(store)).map(Ok).map_err(OpError::from);
    };
    let problem =
        |e: &dyn std::fmt::Display| format!("remote ES could not {verb} API key due to error: {e}");
    let cluster = match remotes.cluster(remote) {
        Ok(c) => c,
        Err(reason) => return Ok(Err(problem(&reason))),
    };
    let result = call(&Cluster::Remote(cluster));
    remotes.record(&remote.config_hash, result.as_ref().map(|_| ()));
    Ok(result.map_err(|e| problem(&e)))
}

fn create(
    store: &dyn Store,
    remotes: &RemoteClusters,
    agent: &Agent,
    out: &EsOutput,
    entry: &OutputKey,
    now_text: &str,
) -> Result<Outcome, OpError> {
    let new = NewApiKey {
        name: format!("{}:{}", agent.id, out.name),
        role_descriptors: out.roles.clone(),
        metadata: json!({"agent_id": agent.id, "managed": true, "managed_by": "fleet-server",
                         "output_name": out.name, "type": "output"}),
    };
    let key = match on_cluster(store, remotes, out, "create", |c| c.create(&new))? {
        Ok(key) => key,
        Err(problem) => return Ok(Outcome::Failed(problem)),
    };
    let mut retired = entry.to_retire_api_key_ids.clone();
    if !entry.api_key_id.is_empty() {
        retired.push(RetiredKey {
            id: entry.api_key_id.clone(),
            retired_at: now_text.to_owned(),
            output: None,
            remote_config_hash: entry.remote_config_hash.clone(),
        });
    }
    Ok(Outcome::Changed(OutputKey {
        api_key: key.joined(),
        api_key_id: key.id,
        permissions_hash: out.hash.clone(),
        output_type: "elasticsearch".into(),
        to_retire_api_key_ids: retired,
        remote_config_hash: out.remote_config_hash().to_owned(),
    }))
}

fn update(
    store: &dyn Store,
    remotes: &RemoteClusters,
    agent: &Agent,
    out: &EsOutput,
    entry: &OutputKey,
    now_text: &str,
) -> Result<Outcome, OpError> {
    let id = entry.api_key_id.as_str();
    let done = on_cluster(store, remotes, out, "update", |c| {
        let current = match c.roles(id)? {
            Some(roles) => roles,
            // A remote key that is gone (its cluster was reset): make a new one below.
            None if out.remote.is_some() => return Ok(false),
            None => Value::Object(Map::new()),
        };
        c.update(id, &merge_with_stale(&out.roles, &current))?;
        Ok(true)
    })?;
    match done {
        Ok(true) => Ok(Outcome::Changed(OutputKey {
            permissions_hash: out.hash.clone(),
            output_type: "elasticsearch".into(),
            ..entry.clone()
        })),
        Ok(false) => create(store, remotes, agent, out, entry, now_text),
        Err(problem) => Ok(Outcome::Failed(problem)),
    }
}

/// Invalidates keys, each on the cluster it was made on: `(id, remote_config_hash)`, `""`
/// being the store's own cluster. A failure of the store's cluster is returned. Remote
/// failures are logged and their keys returned in `Ok` (the caller keeps them to try again);
/// keys of a configuration this process does not know are left orphaned on their cluster
/// (as Fleet Server leaves those of a remote output no longer in any policy), with a warning.
pub fn invalidate_keys(
    store: &dyn Store,
    remotes: &RemoteClusters,
    keys: &[(String, String)],
) -> Result<Vec<(String, String)>, StoreError> {
    let mut by_cluster: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (id, hash) in keys.iter().filter(|(id, _)| !id.is_empty()) {
        let ids = by_cluster.entry(hash.as_str()).or_default();
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    let mut kept = Vec::new();
    for (hash, ids) in by_cluster {
        if hash.is_empty() {
            store.invalidate_api_keys(&ids)?;
            continue;
        }
        let result = match remotes.by_hash(hash) {
            None => {
                log::warn!(
                    "API keys {ids:?} were made on a remote cluster whose settings are no longer in any policy seen by this server: left to expire there"
                );
                continue;
            }
            Some(Err(reason)) => Err(reason),
            Some(Ok(cluster)) => {
                let r = cluster.invalidate_api_keys(&ids);
                remotes.record(hash, r.as_ref().map(|_| ()));
                r.map_err(|e| e.to_string())
            }
        };
        if let Err(reason) = result {
            log::warn!("invalidating API keys {ids:?} on their remote cluster failed: {reason}");
            kept.extend(ids.into_iter().map(|id| (id, hash.to_owned())));
        }
    }
    Ok(kept)
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
    use crate::backend::ops::testkit::remotes;
    use crate::backend::remote::testkit::{registry, registry_with};
    use crate::model::{AgentInfo, PolicyDoc};
    use std::collections::HashMap;
    use std::time::Duration;

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
                kind: String::new(),
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
        let keys = ensure_output_keys(&store, &remotes(), &a, &p1, SystemTime::now()).unwrap();
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
            ensure_output_keys(&store, &remotes(), &a, &p1, SystemTime::now()).unwrap()["default"],
            first,
            "no churn"
        );

        let p2 = policy(
            json!({"default": {"type": "elasticsearch"}}),
            json!({"default": {"r2": {"cluster": []}}}),
        );
        let keys = ensure_output_keys(&store, &remotes(), &a, &p2, SystemTime::now()).unwrap();
        assert_eq!(keys["default"], first, "same key, new permissions");
        let roles = Store::api_key_roles(&store, id).unwrap().unwrap();
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
        ensure_output_keys(&store, &remotes(), &a, &p1, SystemTime::now()).unwrap();
        let a = store.agent("a1").unwrap().unwrap();
        let old_id = a.outputs["old"].api_key_id.clone();
        let p2 = policy(
            json!({"new": {"type": "elasticsearch"}}),
            json!({"new": {}}),
        );
        ensure_output_keys(&store, &remotes(), &a, &p2, SystemTime::now()).unwrap();
        let a = store.agent("a1").unwrap().unwrap();
        assert!(!a.outputs.contains_key("old"));
        let retired: Vec<&str> = a.outputs["new"]
            .to_retire_api_key_ids
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(retired, [old_id.as_str()]);
    }

    const R: &str = "https://remote:9200";

    fn remote_policy(token: &str, roles: Value) -> PreparedPolicy {
        policy(
            json!({"default": {"type": "elasticsearch"},
                   "remote": {"type": "remote_elasticsearch", "hosts": [R], "service_token": token}}),
            json!({"default": {"r": {"cluster": ["monitor"]}}, "remote": roles}),
        )
    }

    fn key(joined: &str) -> ApiKey {
        let (id, secret) = joined.split_once(':').unwrap();
        ApiKey {
            id: id.into(),
            secret: secret.into(),
        }
    }

    fn valid_on(store: &MemoryStore, joined: &str) -> bool {
        Store::authenticate(store, &key(joined))
            .unwrap()
            .is_some_and(|i| i.enabled)
    }

    #[test]
    fn remote_keys_are_made_on_the_remote_cluster() {
        let store = MemoryStore::new();
        let (clusters, remotes) = registry();
        let a = agent(&store);
        let p = remote_policy("t1", json!({"w": {"indices": []}}));
        let keys = ensure_output_keys(&store, &remotes, &a, &p, SystemTime::now()).unwrap();
        let remote = clusters.at(R);
        assert!(valid_on(&remote, &keys["remote"]));
        assert!(
            !valid_on(&store, &keys["remote"]),
            "not on the main cluster"
        );
        assert!(valid_on(&store, &keys["default"]));
        let info = Store::authenticate(&*remote, &key(&keys["remote"]))
            .unwrap()
            .unwrap();
        assert_eq!(info.name, "a1:remote");
        assert_eq!(
            info.metadata,
            json!({"agent_id": "a1", "managed": true, "managed_by": "fleet-server", "output_name": "remote", "type": "output"})
        );
        let doc = store.agent("a1").unwrap().unwrap();
        let out = &doc.outputs["remote"];
        assert_eq!(out.output_type, "elasticsearch");
        assert_eq!(out.remote_config_hash, p.es_outputs[1].remote_config_hash());
        assert!(doc.outputs["default"].remote_config_hash.is_empty());
        assert!(p.keys_current(&doc.outputs));
        assert!(store.output_health("remote").unwrap().healthy());
        assert!(
            store.output_health("default").is_none(),
            "local outputs have none"
        );

        // Delivered again: nothing made, nothing written.
        let again = ensure_output_keys(&store, &remotes, &doc, &p, SystemTime::now()).unwrap();
        assert_eq!(again, keys);
        assert_eq!(store.output_health_writes(), 1);
    }

    #[test]
    fn an_unreachable_remote_degrades_the_output_and_is_tried_again() {
        let store = MemoryStore::new();
        let (clusters, remotes) = registry_with(Duration::ZERO);
        let a = agent(&store);
        let p = remote_policy("t1", json!({}));
        clusters.down(R, true);
        for _ in 0..2 {
            let keys = ensure_output_keys(&store, &remotes, &a, &p, SystemTime::now()).unwrap();
            assert!(!keys.contains_key("remote") && keys.contains_key("default"));
        }
        let health = store.output_health("remote").unwrap();
        assert_eq!(health.state, "DEGRADED");
        assert!(
            health
                .message
                .starts_with("remote ES could not create API key due to error: "),
            "{}",
            health.message
        );
        assert_eq!(
            store.output_health_writes(),
            1,
            "written on the change only"
        );
        let doc = store.agent("a1").unwrap().unwrap();
        assert!(
            !doc.outputs.contains_key("remote"),
            "no empty key stored (it would force a POLICY_CHANGE on every checkin)"
        );

        clusters.down(R, false);
        let keys = ensure_output_keys(&store, &remotes, &doc, &p, SystemTime::now()).unwrap();
        assert!(valid_on(&clusters.at(R), &keys["remote"]));
        assert!(store.output_health("remote").unwrap().healthy());
        assert_eq!(store.output_health_writes(), 2);
    }

    #[test]
    fn a_failed_remote_fails_fast_until_its_retry_time() {
        let store = MemoryStore::new();
        let (clusters, remotes) = registry();
        let a = agent(&store);
        let p = remote_policy("t1", json!({}));
        ensure_output_keys(&store, &remotes, &a, &p, SystemTime::now()).unwrap();
        let other = Agent {
            id: "a2".into(),
            ..a.clone()
        };
        store.create_agent(&other).unwrap();
        clusters.down(R, true);
        let keys = ensure_output_keys(&store, &remotes, &other, &p, SystemTime::now()).unwrap();
        assert!(!keys.contains_key("remote"));
        clusters.down(R, false);
        let keys = ensure_output_keys(&store, &remotes, &other, &p, SystemTime::now()).unwrap();
        assert!(
            !keys.contains_key("remote"),
            "not tried again within retry_after"
        );
    }

    #[test]
    fn unusable_remote_settings_degrade_without_a_panic() {
        let store = MemoryStore::new();
        let a = agent(&store);
        for bad in [
            json!({"type": "remote_elasticsearch", "hosts": [], "service_token": "t"}),
            json!({"type": "remote_elasticsearch", "hosts": ["bad://x"], "service_token": "t"}),
            json!({"type": "remote_elasticsearch", "hosts": {"a": 1}, "service_token": ["t"], "ssl": 3}),
        ] {
            let (_, remotes) = registry();
            let p = policy(json!({"remote": bad}), json!({"remote": {}}));
            let keys = ensure_output_keys(&store, &remotes, &a, &p, SystemTime::now()).unwrap();
            assert!(keys.is_empty());
            assert_eq!(store.output_health("remote").unwrap().state, "DEGRADED");
        }
    }

    #[test]
    fn a_changed_remote_configuration_gets_a_new_key() {
        let store = MemoryStore::new();
        let (clusters, remotes) = registry();
        let a = agent(&store);
        let p1 = remote_policy("t1", json!({"w": {}}));
        let first = ensure_output_keys(&store, &remotes, &a, &p1, SystemTime::now()).unwrap();
        let a = store.agent("a1").unwrap().unwrap();
        let old_hash = a.outputs["remote"].remote_config_hash.clone();
        let p2 = remote_policy("t2", json!({"w": {}}));
        assert!(
            !p2.keys_current(&a.outputs),
            "same permissions, new settings"
        );
        let second = ensure_output_keys(&store, &remotes, &a, &p2, SystemTime::now()).unwrap();
        assert_ne!(second["remote"], first["remote"]);
        assert_eq!(second["default"], first["default"], "the local key stays");
        assert!(valid_on(&clusters.at(R), &second["remote"]));
        let a = store.agent("a1").unwrap().unwrap();
        let out = &a.outputs["remote"];
        assert_eq!(
            out.remote_config_hash,
            p2.es_outputs[1].remote_config_hash()
        );
        let retired: Vec<(&str, &str)> = out
            .to_retire_api_key_ids
            .iter()
            .map(|r| (r.id.as_str(), r.remote_config_hash.as_str()))
            .collect();
        assert_eq!(
            retired,
            [(key(&first["remote"]).id.as_str(), old_hash.as_str())],
            "retired where it was made"
        );
    }

    #[test]
    fn remote_permission_changes_update_the_key_on_its_cluster() {
        let store = MemoryStore::new();
        let (clusters, remotes) = registry();
        let a = agent(&store);
        let p1 = remote_policy("t1", json!({"w": {"cluster": []}}));
        let first = ensure_output_keys(&store, &remotes, &a, &p1, SystemTime::now()).unwrap();
        let a = store.agent("a1").unwrap().unwrap();
        let p2 = remote_policy("t1", json!({"w2": {"cluster": []}}));
        let second = ensure_output_keys(&store, &remotes, &a, &p2, SystemTime::now()).unwrap();
        assert_eq!(second["remote"], first["remote"]);
        let roles = Store::api_key_roles(&*clusters.at(R), &key(&first["remote"]).id)
            .unwrap()
            .unwrap();
        assert!(
            roles.get("w2").is_some() && roles.get("w-0-rdstale").is_some(),
            "{roles}"
        );
        assert!(p2.keys_current(&store.agent("a1").unwrap().unwrap().outputs));

        // Its cluster down: the agent keeps its key (older permissions); tried again later.
        let a = store.agent("a1").unwrap().unwrap();
        let p3 = remote_policy("t1", json!({"w3": {"cluster": []}}));
        clusters.down(R, true);
        let third = ensure_output_keys(&store, &remotes, &a, &p3, SystemTime::now()).unwrap();
        assert_eq!(third["remote"], first["remote"]);
        let health = store.output_health("remote").unwrap();
        assert!(health
            .message
            .starts_with("remote ES could not update API key"));
        assert!(!p3.keys_current(&store.agent("a1").unwrap().unwrap().outputs));
    }

    #[test]
    fn keys_are_invalidated_on_their_own_cluster() {
        let store = MemoryStore::new();
        let (clusters, remotes) = registry_with(Duration::ZERO);
        let a = agent(&store);
        let p = remote_policy("t1", json!({}));
        let keys = ensure_output_keys(&store, &remotes, &a, &p, SystemTime::now()).unwrap();
        let hash = p.es_outputs[1].remote_config_hash().to_owned();
        let pairs = [
            (key(&keys["default"]).id, String::new()),
            (key(&keys["remote"]).id, hash.clone()),
            ("made-elsewhere".into(), "unknown-config".into()),
        ];
        clusters.down(R, true);
        let kept = invalidate_keys(&store, &remotes, &pairs).unwrap();
        assert_eq!(kept, [pairs[1].clone()], "kept to try again");
        assert!(!valid_on(&store, &keys["default"]));
        clusters.down(R, false);
        assert!(valid_on(&clusters.at(R), &keys["remote"]));
        assert!(invalidate_keys(&store, &remotes, &pairs)
            .unwrap()
            .is_empty());
        assert!(!valid_on(&clusters.at(R), &keys["remote"]));
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
