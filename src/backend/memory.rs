//! An in-memory [`Store`]: the reference semantics the `local` and `es` stores must match (the
//! shared conformance suite in `conformance.rs` runs against all of them), and the store of the
//! sans-IO scenario tests. Not durable; one mutex; a condvar wakes change-feed readers.
//!
//! Besides the trait it has the writes Kibana (or the management API) would make: enrollment
//! keys, policy revisions, actions.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};

use super::hooks::{Gate, Hooks, Method};
use super::{
    ApiKey, ApiKeyInfo, Changes, CheckinWrite, Created, Cursor, NewApiKey, PolicyAck, Store,
    StoreError, AUDIT_MEMBERS,
};
use crate::model::{
    time::parse_rfc3339, Action, ActionResult, Agent, EnrollmentKey, OutputHealth, PolicyDoc,
};

#[derive(Debug)]
struct KeyRecord {
    secret: String,
    name: String,
    enabled: bool,
    metadata: Value,
    roles: Value,
}

#[derive(Debug, Default)]
struct Inner {
    keys: HashMap<String, KeyRecord>,
    enrollment: Vec<EnrollmentKey>,
    agents: HashMap<String, Map<String, Value>>,
    actions: Vec<Action>,
    action_seq: i64,
    results: HashMap<String, ActionResult>,
    policies: Vec<(i64, PolicyDoc)>,
    policy_seq: i64,
    key_counter: u64,
    secrets: HashMap<String, String>,
    artifacts: Vec<crate::model::Artifact>,
    /// Test hook: when set, every operation fails with this error.
    fail_with: Option<StoreError>,
}

/// The in-memory store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    changed: Condvar,
    health: HealthBoard,
    files: super::files_memory::MemoryFiles,
    hooks: Hooks,
}

/// Output-health documents as a store without Elasticsearch keeps them: the latest per output,
/// and how many were written (the memory and the embedded store; not durable).
#[derive(Debug, Default)]
pub struct HealthBoard {
    latest: Mutex<(HashMap<String, OutputHealth>, usize)>,
}

impl HealthBoard {
    /// Records a document.
    pub fn record(&self, doc: &OutputHealth) -> Result<(), StoreError> {
        let mut board = self
            .latest
            .lock()
            .map_err(|_| StoreError::Unavailable("output health poisoned".into()))?;
        board.0.insert(doc.output.clone(), doc.clone());
        board.1 += 1;
        Ok(())
    }

    /// The latest document of `output`.
    pub fn latest(&self, output: &str) -> Option<OutputHealth> {
        self.latest.lock().ok()?.0.get(output).cloned()
    }

    /// Documents written so far, all outputs.
    pub fn writes(&self) -> usize {
        self.latest.lock().map_or(0, |b| b.1)
    }
}

fn random_token(len: usize) -> String {
    use ring::rand::SecureRandom;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut bytes = vec![0u8; len];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        let inner = self
            .inner
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store poisoned".into()))?;
        match &inner.fail_with {
            Some(err) => Err(err.clone()),
            None => Ok(inner),
        }
    }

    /// Makes every operation fail with `err` (or succeed again with `None`).
    pub fn set_failure(&self, err: Option<StoreError>) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.fail_with = err;
        }
    }

    /// Test hook: runs `hook` in every later `authenticate`, once the answer is read (outside
    /// the store's lock: the hook may call the store).
    pub fn on_authenticate(&self, hook: impl Fn(&ApiKey) + Send + Sync + 'static) {
        self.hooks.on_authenticate(std::sync::Arc::new(hook));
    }

    /// Test hook: the gate of `method`; while it is shut, calls of that method read their
    /// answer, then wait.
    pub fn gate(&self, method: Method) -> std::sync::Arc<Gate> {
        self.hooks.gate(method)
    }

    /// Creates an enrollment token for `policy_id` (as Kibana does: an API key plus a record).
    pub fn add_enrollment_key(&self, policy_id: &str) -> Result<ApiKey, StoreError> {
        let key = self.create_api_key(&NewApiKey {
            name: format!("enrollment {policy_id}"),
            role_descriptors: Value::Object(Map::new()),
            metadata: serde_json::json!({"type": "enrollment"}),
        })?;
        let mut inner = self.lock()?;
        inner.enrollment.push(EnrollmentKey {
            active: true,
            api_key: key.encoded(),
            api_key_id: key.id.clone(),
            policy_id: policy_id.to_owned(),
            ..EnrollmentKey::default()
        });
        Ok(key)
    }

    /// Deactivates an enrollment record and invalidates its key.
    pub fn revoke_enrollment_key(&self, api_key_id: &str) -> Result<(), StoreError> {
        {
            let mut inner = self.lock()?;
            for record in inner
                .enrollment
                .iter_mut()
                .filter(|r| r.api_key_id == api_key_id)
            {
                record.active = false;
            }
        }
        self.invalidate_api_keys(&[api_key_id.to_owned()])
    }

    /// Appends a policy revision document.
    pub fn add_policy(&self, doc: PolicyDoc) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        inner.policy_seq += 1;
        let seq = inner.policy_seq;
        inner.policies.push((seq, doc));
        drop(inner);
        self.changed.notify_all();
        Ok(())
    }

    /// Appends an action document; assigns its document id (if empty) and `seq_no`.
    pub fn add_action(&self, mut action: Action) -> Result<Action, StoreError> {
        let mut inner = self.lock()?;
        inner.action_seq += 1;
        action.seq_no = inner.action_seq;
        if action.doc_id.is_empty() {
            action.doc_id = random_token(20);
        }
        inner.actions.push(action.clone());
        drop(inner);
        self.changed.notify_all();
        Ok(action)
    }

    /// Adds a `.fleet-artifacts` document (as Kibana writes them).
    pub fn add_artifact(&self, artifact: crate::model::Artifact) -> Result<(), StoreError> {
        self.lock()?.artifacts.push(artifact);
        Ok(())
    }

    /// Stores a Fleet secret (what Kibana does through `POST /_fleet/secret`).
    pub fn add_secret(&self, id: &str, value: &str) -> Result<(), StoreError> {
        self.lock()?.secrets.insert(id.to_owned(), value.to_owned());
        Ok(())
    }

    /// The latest output-health document of `output`, if any was written.
    pub fn output_health(&self, output: &str) -> Option<OutputHealth> {
        self.health.latest(output)
    }

    /// Output-health documents written so far.
    pub fn output_health_writes(&self) -> usize {
        self.health.writes()
    }

    /// The stored source of agent `id`, member for member.
    pub fn agent_document(&self, id: &str) -> Option<Map<String, Value>> {
        self.inner.lock().ok()?.agents.get(id).cloned()
    }

    /// A written result, if any.
    pub fn action_result(&self, doc_id: &str) -> Option<ActionResult> {
        self.inner.lock().ok()?.results.get(doc_id).cloned()
    }

    fn is_live(action: &Action, now: SystemTime) -> bool {
        action.expiration.is_empty()
            || parse_rfc3339(&action.expiration).is_some_and(|exp| exp > now)
    }
}

impl Store for MemoryStore {
    fn files(&self) -> Option<&dyn super::files::FileStore> {
        Some(&self.files)
    }

    fn authenticate(&self, key: &ApiKey) -> Result<Option<ApiKeyInfo>, StoreError> {
        let answer = self.lock().map(|inner| {
            inner
                .keys
                .get(&key.id)
                .filter(|r| r.secret == key.secret)
                .map(|r| ApiKeyInfo {
                    id: key.id.clone(),
                    name: r.name.clone(),
                    enabled: r.enabled,
                    metadata: r.metadata.clone(),
                })
        });
        // Failed calls too: a test counts what reached the store.
        self.hooks.authenticated(key);
        answer
    }

    fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey, StoreError> {
        let mut inner = self.lock()?;
        inner.key_counter += 1;
        let id = format!("{}{}", random_token(12), inner.key_counter);
        let secret = random_token(22);
        inner.keys.insert(
            id.clone(),
            KeyRecord {
                secret: secret.clone(),
                name: key.name.clone(),
                enabled: true,
                metadata: key.metadata.clone(),
                roles: key.role_descriptors.clone(),
            },
        );
        Ok(ApiKey { id, secret })
    }

    fn api_key_roles(&self, id: &str) -> Result<Option<Value>, StoreError> {
        Ok(self.lock()?.keys.get(id).map(|r| r.roles.clone()))
    }

    fn update_api_key_roles(&self, id: &str, roles: &Value) -> Result<(), StoreError> {
        match self.lock()?.keys.get_mut(id) {
            Some(r) => {
                r.roles = roles.clone();
                Ok(())
            }
            None => Err(StoreError::NotFound),
        }
    }

    fn invalidate_api_keys(&self, ids: &[String]) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        for id in ids {
            if let Some(r) = inner.keys.get_mut(id) {
                r.enabled = false;
            }
        }
        Ok(())
    }

    fn enrollment_key(&self, api_key_id: &str) -> Result<Option<EnrollmentKey>, StoreError> {
        Ok(self
            .lock()?
            .enrollment
            .iter()
            .find(|r| r.active && r.api_key_id == api_key_id)
            .cloned())
    }

    fn policy_enrollment_key(&self, policy_id: &str) -> Result<Option<EnrollmentKey>, StoreError> {
        Ok(self
            .lock()?
            .enrollment
            .iter()
            .find(|r| r.active && r.policy_id == policy_id)
            .cloned())
    }

    fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        let inner = self.lock()?;
        let Some(source) = inner.agents.get(id) else {
            return Ok(None);
        };
        let mut agent: Agent =
            serde_json::from_value(Value::Object(source.clone())).map_err(|e| {
                StoreError::Failed {
                    status: 500,
                    detail: format!("agent {id} does not decode: {e}"),
                }
            })?;
        agent.id = id.to_owned();
        Ok(Some(agent))
    }

    fn agent_by_enrollment_id(&self, enrollment_id: &str) -> Result<Option<Agent>, StoreError> {
        let id = {
            let inner = self.lock()?;
            inner
                .agents
                .iter()
                .find(|(_, src)| {
                    src.get("enrollment_id").and_then(Value::as_str) == Some(enrollment_id)
                })
                .map(|(id, _)| id.clone())
        };
        let found = match id {
            Some(id) => self.agent(&id),
            None => Ok(None),
        };
        self.hooks.pass(Method::AgentByEnrollmentId);
        found
    }

    fn create_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if inner.agents.contains_key(&agent.id) {
            return Err(StoreError::Conflict);
        }
        let Value::Object(source) = serde_json::to_value(agent).unwrap_or_default() else {
            return Err(StoreError::Failed {
                status: 500,
                detail: "agent does not encode".into(),
            });
        };
        inner.agents.insert(agent.id.clone(), source);
        Ok(())
    }

    fn update_agent(&self, id: &str, fields: &Map<String, Value>) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let Some(source) = inner.agents.get_mut(id) else {
            return Err(StoreError::NotFound);
        };
        merge(source, fields);
        Ok(())
    }

    fn delete_agent(&self, id: &str) -> Result<(), StoreError> {
        self.lock()?.agents.remove(id);
        Ok(())
    }

    fn update_agents(
        &self,
        updates: &[(String, CheckinWrite)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut inner = self.lock()?;
        Ok(updates
            .iter()
            .map(|(id, write)| match inner.agents.get_mut(id) {
                Some(source) => {
                    apply_checkin(source, write);
                    Ok(())
                }
                None => Err(StoreError::NotFound),
            })
            .collect())
    }

    fn policy_acked(&self, id: &str, ack: &PolicyAck) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let Some(source) = inner.agents.get_mut(id) else {
            return Err(StoreError::NotFound);
        };
        apply_policy_ack(source, ack);
        Ok(())
    }

    fn pending_actions(
        &self,
        agent_id: &str,
        after_seq: i64,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<Action>, StoreError> {
        let snapshot = self
            .lock()?
            .actions
            .iter()
            .filter(|a| a.seq_no > after_seq)
            .filter(|a| a.agents.iter().any(|id| id == agent_id))
            .filter(|a| Self::is_live(a, now))
            .take(limit)
            .cloned()
            .collect();
        self.hooks.pass(Method::PendingActions);
        Ok(snapshot)
    }

    fn action(&self, action_id: &str) -> Result<Option<Action>, StoreError> {
        Ok(self
            .lock()?
            .actions
            .iter()
            .find(|a| a.action_id == action_id)
            .cloned())
    }

    fn action_seq_no(&self, doc_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .lock()?
            .actions
            .iter()
            .find(|a| a.doc_id == doc_id)
            .map(|a| a.seq_no))
    }

    fn create_action_result(&self, result: &ActionResult) -> Result<Created, StoreError> {
        let mut inner = self.lock()?;
        let id = result.doc_id();
        if inner.results.contains_key(&id) {
            return Ok(Created::Existed);
        }
        inner.results.insert(id, result.clone());
        Ok(Created::New)
    }

    fn write_output_health(&self, doc: &OutputHealth) -> Result<(), StoreError> {
        drop(self.lock()?);
        self.health.record(doc)
    }

    fn secret(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock()?.secrets.get(id).cloned())
    }

    fn agent_by_access_key(&self, api_key_id: &str) -> Result<Option<Agent>, StoreError> {
        let id = {
            let inner = self.lock()?;
            inner
                .agents
                .iter()
                .find(|(_, src)| {
                    src.get("access_api_key_id").and_then(Value::as_str) == Some(api_key_id)
                })
                .map(|(id, _)| id.clone())
        };
        match id {
            Some(id) => self.agent(&id),
            None => Ok(None),
        }
    }

    fn artifact(
        &self,
        identifier: &str,
        decoded_sha256: &str,
    ) -> Result<Option<crate::model::Artifact>, StoreError> {
        Ok(self
            .lock()?
            .artifacts
            .iter()
            .find(|a| a.identifier == identifier && a.decoded_sha256 == decoded_sha256)
            .cloned())
    }

    fn latest_policies(&self) -> Result<Vec<PolicyDoc>, StoreError> {
        let inner = self.lock()?;
        let mut latest: HashMap<&str, &PolicyDoc> = HashMap::new();
        for (_, doc) in &inner.policies {
            let entry = latest.entry(doc.policy_id.as_str()).or_insert(doc);
            if doc.revision_idx > entry.revision_idx {
                *entry = doc;
            }
        }
        let mut out: Vec<PolicyDoc> = latest.into_values().cloned().collect();
        out.sort_by(|a, b| a.policy_id.cmp(&b.policy_id));
        Ok(out)
    }

    fn changes(
        &self,
        since: Cursor,
        now: SystemTime,
        wait: Duration,
    ) -> Result<Changes, StoreError> {
        let changes = self.wait_for_changes(since, now, wait);
        self.hooks.pass(Method::Changes);
        changes
    }
}

impl MemoryStore {
    fn wait_for_changes(
        &self,
        since: Cursor,
        now: SystemTime,
        wait: Duration,
    ) -> Result<Changes, StoreError> {
        let deadline = Instant::now() + wait;
        let mut inner = self.lock()?;
        loop {
            if inner.policy_seq > since.policies || inner.action_seq > since.actions {
                let policies = inner
                    .policies
                    .iter()
                    .filter(|(seq, _)| *seq > since.policies)
                    .map(|(_, d)| d.clone())
                    .collect();
                let actions = inner
                    .actions
                    .iter()
                    .filter(|a| a.seq_no > since.actions && Self::is_live(a, now))
                    .cloned()
                    .collect();
                return Ok(Changes {
                    policies,
                    actions,
                    cursor: Some(Cursor {
                        policies: inner.policy_seq,
                        actions: inner.action_seq,
                    }),
                });
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Ok(Changes::default());
            };
            inner = self
                .changed
                .wait_timeout(inner, left)
                .map_err(|_| StoreError::Unavailable("memory store poisoned".into()))?
                .0;
        }
    }
}

/// Partial-document merge as Elasticsearch's partial update does it: objects merge recursively,
/// arrays and scalars replace, and `null` removes the key (Elasticsearch stores the null; every
/// reader treats null as absent).
pub fn merge(source: &mut Map<String, Value>, fields: &Map<String, Value>) {
    for (k, v) in fields {
        // Fleet Server replaces a collector's effective configuration whole (its checkin script
        // S2 assigns the field): keys the collector dropped must not survive a merge.
        if k == REPLACED_WHOLE && v.is_object() {
            source.insert(k.clone(), v.clone());
            continue;
        }
        merge_field(source, k, v);
    }
}

/// The top-level agent field an update replaces instead of merging.
const REPLACED_WHOLE: &str = "effective_config";

fn merge_field(source: &mut Map<String, Value>, k: &String, v: &Value) {
    match (source.get_mut(k), v) {
        (_, Value::Null) => {
            source.remove(k);
        }
        (Some(Value::Object(existing)), Value::Object(update)) => {
            for (k, v) in update {
                merge_field(existing, k, v);
            }
        }
        _ => {
            source.insert(k.clone(), v.clone());
        }
    }
}

/// A checkin-state write on a document source: the fields merged, then the audit members
/// removed when asked (the effect of es-contract.md §3.7 S1).
pub fn apply_checkin(source: &mut Map<String, Value>, write: &CheckinWrite) {
    merge(source, &write.fields);
    if write.clear_audit {
        for member in AUDIT_MEMBERS {
            source.remove(member);
        }
    }
}

/// A POLICY_CHANGE ack on a document source: the effect of es-contract.md §3.7 S3, then the
/// outputs merged.
pub fn apply_policy_ack(source: &mut Map<String, Value>, ack: &PolicyAck) {
    if source.get("policy_id").and_then(Value::as_str) == Some(ack.policy_id.as_str()) {
        source.remove("default_api_key_history");
        source.insert("policy_revision_idx".into(), Value::from(ack.revision));
        source.insert("updated_at".into(), Value::from(ack.updated_at.clone()));
    }
    if let Some(outputs) = &ack.outputs {
        let mut fields = Map::new();
        fields.insert("outputs".into(), outputs.clone());
        merge(source, &fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        super::super::conformance::run_all(&|| Box::new(MemoryStore::new()) as Box<dyn TestStore>);
    }

    impl TestStore for MemoryStore {
        fn store(&self) -> &dyn Store {
            self
        }
        fn seed_enrollment_key(&self, policy_id: &str) -> ApiKey {
            self.add_enrollment_key(policy_id).unwrap()
        }
        fn seed_policy(&self, doc: PolicyDoc) {
            self.add_policy(doc).unwrap()
        }
        fn seed_action(&self, action: Action) -> Action {
            self.add_action(action).unwrap()
        }
        fn seed_secret(&self, id: &str, value: &str) {
            self.add_secret(id, value).unwrap()
        }
        fn latest_output_health(&self, output: &str) -> Option<crate::model::OutputHealth> {
            self.output_health(output)
        }
        fn agent_document(&self, id: &str) -> Option<Map<String, Value>> {
            MemoryStore::agent_document(self, id)
        }
    }

    use super::super::conformance::TestStore;
}
