//! [`Store`] for [`LocalStore`]: reads in a read transaction on the calling thread, writes queued
//! to the committer (`committer.rs`) and answered once durable. Semantics are `memory.rs`'s, case
//! by case; the conformance suite (`conformance.rs`) checks them.

use std::ops::Bound;
use std::time::{Duration, Instant, SystemTime};

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition};
use serde_json::{Map, Value};

use super::committer::{Batch, WriteFault};
use super::error::unavailable;
use super::schema::{
    agent_source, decode, decode_action, decode_agent, encode, is_live, KeyRecord, ACTIONS,
    ACTION_DOCS, ACTION_IDS, ACTION_SEQ, AGENTS, AGENT_ACTIONS, API_KEYS, ENROLLMENT, META,
    POLICIES, POLICY_LATEST, POLICY_SEQ, RESULTS, SECRETS,
};
use super::secrets::{self, digests_match, secret_digest, ID_LEN, SECRET_LEN};
use super::LocalStore;
use crate::backend::memory::{apply_checkin, apply_policy_ack, merge};
use crate::backend::{
    ApiKey, ApiKeyInfo, Changes, CheckinWrite, Created, Cursor, NewApiKey, PolicyAck, Store,
    StoreError,
};
use crate::model::{Action, ActionResult, Agent, EnrollmentKey, PolicyDoc};

/// Opens a table of a read transaction.
pub(super) fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    def: TableDefinition<K, V>,
) -> Result<ReadOnlyTable<K, V>, StoreError> {
    txn.open_table(def).map_err(unavailable)
}

/// `first` if no key of `keys` has that id yet, else a fresh random id that none has.
pub(super) fn unused_id(
    keys: &impl ReadableTable<&'static str, &'static [u8]>,
    first: String,
) -> Result<String, WriteFault> {
    let mut id = first;
    while keys.get(id.as_str())?.is_some() {
        id = secrets::random_token(ID_LEN).map_err(WriteFault::Answer)?;
    }
    Ok(id)
}

/// Merges `fields` into the stored agent `id`.
fn merge_agent(
    agents: &mut Table<'_, &'static str, &'static [u8]>,
    id: &str,
    fields: &Map<String, Value>,
) -> Result<(), WriteFault> {
    change_agent(agents, id, |source| merge(source, fields))
}

/// Applies `change` to the stored source of agent `id`.
fn change_agent(
    agents: &mut Table<'_, &'static str, &'static [u8]>,
    id: &str,
    change: impl FnOnce(&mut Map<String, Value>),
) -> Result<(), WriteFault> {
    let mut source: Map<String, Value> = match agents.get(id)? {
        Some(bytes) => decode(&format!("agent {id}"), bytes.value()).map_err(WriteFault::Answer)?,
        None => return Err(WriteFault::Answer(StoreError::NotFound)),
    };
    change(&mut source);
    let bytes = encode("agent", &source).map_err(WriteFault::Answer)?;
    agents.insert(id, bytes.as_slice())?;
    Ok(())
}

impl LocalStore {
    /// Reads agent `id` without the members named (and without the members this server does not
    /// interpret unless `keep_other`): `Agent::from_source_without`.
    fn agent_without(
        &self,
        id: &str,
        members: &'static [&'static str],
        keep_other: bool,
    ) -> Result<Option<Agent>, StoreError> {
        self.read(|txn| {
            let agents = table(txn, AGENTS)?;
            match agents.get(id).map_err(unavailable)? {
                Some(bytes) => {
                    let mut agent = Agent::from_source_without(bytes.value(), members, keep_other)
                        .map_err(|e| super::error::bad_document(&format!("agent {id}"), e))?;
                    agent.id = id.to_owned();
                    Ok(Some(agent))
                }
                None => Ok(None),
            }
        })
    }
}

/// Reads a counter of `meta`.
pub(super) fn counter(
    meta: &impl ReadableTable<&'static str, i64>,
    name: &str,
) -> Result<i64, redb::StorageError> {
    Ok(meta.get(name)?.map_or(0, |v| v.value()))
}

impl Store for LocalStore {
    /// No cluster to mint keys in: outputs keep the credentials written in the policy.
    fn mints_output_keys(&self) -> bool {
        false
    }

    fn files(&self) -> Option<&dyn crate::backend::files::FileStore> {
        Some(self)
    }

    fn authenticate(&self, key: &ApiKey) -> Result<Option<ApiKeyInfo>, StoreError> {
        self.read(|txn| {
            let keys = table(txn, API_KEYS)?;
            let Some(bytes) = keys.get(key.id.as_str()).map_err(unavailable)? else {
                return Ok(None);
            };
            let record: KeyRecord = decode("api key", bytes.value())?;
            let stored = base64_decode(&record.secret_sha256);
            if !digests_match(&stored, &secret_digest(&key.id, &key.secret)) {
                return Ok(None);
            }
            Ok(Some(ApiKeyInfo {
                id: key.id.clone(),
                name: record.name,
                enabled: record.enabled,
                metadata: record.metadata,
            }))
        })
    }

    fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey, StoreError> {
        let first_id = secrets::random_token(ID_LEN)?;
        let secret = secrets::random_token(SECRET_LEN)?;
        let new = key.clone();
        if crate::backend::deferred::active() {
            // In a run the key is answered before its commit, so its id cannot change: a taken
            // id (never seen in practice) fails the write, and the run repeats the call alone.
            let (id, secret_for_write) = (first_id.clone(), secret.clone());
            self.write_deferrable(move |batch| {
                let mut keys = batch.txn().open_table(API_KEYS)?;
                if keys.get(id.as_str())?.is_some() {
                    return Err(WriteFault::Answer(StoreError::Conflict));
                }
                let record = KeyRecord {
                    secret_sha256: base64_encode(&secret_digest(&id, &secret_for_write)),
                    name: new.name,
                    enabled: true,
                    metadata: new.metadata,
                    roles: new.role_descriptors,
                };
                let bytes = encode("api key", &record).map_err(WriteFault::Answer)?;
                keys.insert(id.as_str(), bytes.as_slice())?;
                Ok(())
            })?;
            return Ok(ApiKey {
                id: first_id,
                secret,
            });
        }
        self.committer.write(move |batch| {
            let mut keys = batch.txn().open_table(API_KEYS)?;
            let id = unused_id(&keys, first_id)?;
            let record = KeyRecord {
                secret_sha256: base64_encode(&secret_digest(&id, &secret)),
                name: new.name,
                enabled: true,
                metadata: new.metadata,
                roles: new.role_descriptors,
            };
            let bytes = encode("api key", &record).map_err(WriteFault::Answer)?;
            keys.insert(id.as_str(), bytes.as_slice())?;
            Ok(ApiKey { id, secret })
        })
    }

    fn api_key_roles(&self, id: &str) -> Result<Option<Value>, StoreError> {
        self.read(|txn| {
            let keys = table(txn, API_KEYS)?;
            match keys.get(id).map_err(unavailable)? {
                Some(bytes) => Ok(Some(decode::<KeyRecord>("api key", bytes.value())?.roles)),
                None => Ok(None),
            }
        })
    }

    fn update_api_key_roles(&self, id: &str, roles: &Value) -> Result<(), StoreError> {
        let (id, roles) = (id.to_owned(), roles.clone());
        self.committer.write(move |batch| {
            let mut keys = batch.txn().open_table(API_KEYS)?;
            let mut record: KeyRecord = match keys.get(id.as_str())? {
                Some(bytes) => decode("api key", bytes.value()).map_err(WriteFault::Answer)?,
                None => return Err(WriteFault::Answer(StoreError::NotFound)),
            };
            record.roles = roles;
            let bytes = encode("api key", &record).map_err(WriteFault::Answer)?;
            keys.insert(id.as_str(), bytes.as_slice())?;
            Ok(())
        })
    }

    fn invalidate_api_keys(&self, ids: &[String]) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        self.committer
            .write(move |batch| invalidate_keys(batch, &ids))
    }

    fn enrollment_key(&self, api_key_id: &str) -> Result<Option<EnrollmentKey>, StoreError> {
        self.read(|txn| {
            let records = table(txn, ENROLLMENT)?;
            let Some(bytes) = records.get(api_key_id).map_err(unavailable)? else {
                return Ok(None);
            };
            let record: EnrollmentKey = decode("enrollment key", bytes.value())?;
            Ok(record.active.then_some(record))
        })
    }

    /// A scan: a box holds a handful of enrollment keys.
    fn policy_enrollment_key(&self, policy_id: &str) -> Result<Option<EnrollmentKey>, StoreError> {
        self.read(|txn| {
            let records = table(txn, ENROLLMENT)?;
            for entry in records.iter().map_err(unavailable)? {
                let (_, bytes) = entry.map_err(unavailable)?;
                let record: EnrollmentKey = decode("enrollment key", bytes.value())?;
                if record.active && record.policy_id == policy_id {
                    return Ok(Some(record));
                }
            }
            Ok(None)
        })
    }

    fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        self.read(|txn| {
            let agents = table(txn, AGENTS)?;
            match agents.get(id).map_err(unavailable)? {
                Some(bytes) => decode_agent(id, bytes.value()).map(Some),
                None => Ok(None),
            }
        })
    }

    fn agent_for_request(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        self.agent_without(id, &["last_checkin_message"], true)
    }

    fn agent_for_ack(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        self.agent_without(
            id,
            &[
                "last_checkin_message",
                "local_metadata",
                "components",
                "user_provided_metadata",
            ],
            false,
        )
    }

    /// A scan of the agents table: enrollment ids are rare (agents do not send them today) and
    /// a single box holds few agents; no index is kept for them.
    fn agent_by_enrollment_id(&self, enrollment_id: &str) -> Result<Option<Agent>, StoreError> {
        Ok(self
            .list_agents()?
            .into_iter()
            .find(|a| a.enrollment_id == enrollment_id))
    }

    fn create_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        let id = agent.id.clone();
        let bytes = encode("agent", &agent_source(agent)?)?;
        self.write_deferrable(move |batch| {
            let mut agents = batch.txn().open_table(AGENTS)?;
            if agents.get(id.as_str())?.is_some() {
                return Err(WriteFault::Answer(StoreError::Conflict));
            }
            agents.insert(id.as_str(), bytes.as_slice())?;
            batch.agent_written(&id);
            Ok(())
        })
    }

    fn update_agent(&self, id: &str, fields: &Map<String, Value>) -> Result<(), StoreError> {
        let (id, fields) = (id.to_owned(), fields.clone());
        self.committer.write(move |batch| {
            merge_agent(&mut batch.txn().open_table(AGENTS)?, &id, &fields)?;
            batch.agent_written(&id);
            Ok(())
        })
    }

    fn policy_acked(&self, id: &str, ack: &PolicyAck) -> Result<(), StoreError> {
        let (id, ack) = (id.to_owned(), ack.clone());
        self.write_deferrable(move |batch: &mut Batch<'_>| {
            change_agent(&mut batch.txn().open_table(AGENTS)?, &id, |source| {
                apply_policy_ack(source, &ack)
            })?;
            batch.agent_written(&id);
            Ok(())
        })
    }

    fn delete_agent(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.committer.write(move |batch| {
            batch.txn().open_table(AGENTS)?.remove(id.as_str())?;
            batch.agent_written(&id);
            Ok(())
        })
    }

    fn update_agents(
        &self,
        updates: &[(String, CheckinWrite)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let updates = updates.to_vec();
        self.committer.write(move |batch| {
            let mut agents = batch.txn().open_table(AGENTS)?;
            let mut results = Vec::with_capacity(updates.len());
            for (id, write) in &updates {
                match change_agent(&mut agents, id, |source| apply_checkin(source, write)) {
                    Ok(()) => {
                        batch.agent_written(id);
                        results.push(Ok(()));
                    }
                    Err(WriteFault::Answer(err)) => results.push(Err(err)),
                    Err(abort) => return Err(abort),
                }
            }
            Ok(results)
        })
    }

    fn pending_actions(
        &self,
        agent_id: &str,
        after_seq: i64,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<Action>, StoreError> {
        self.read(|txn| {
            let index = table(txn, AGENT_ACTIONS)?;
            let actions = table(txn, ACTIONS)?;
            let mut out = Vec::new();
            let range = index
                .range((agent_id, after_seq)..=(agent_id, i64::MAX))
                .map_err(unavailable)?;
            for entry in range {
                if out.len() >= limit {
                    break;
                }
                let (key, _) = entry.map_err(unavailable)?;
                let seq = key.value().1;
                if seq <= after_seq {
                    continue;
                }
                let Some(bytes) = actions.get(seq).map_err(unavailable)? else {
                    continue;
                };
                let action = decode_action(seq, bytes.value())?;
                if is_live(&action, now) {
                    out.push(action);
                }
            }
            Ok(out)
        })
    }

    fn action(&self, action_id: &str) -> Result<Option<Action>, StoreError> {
        self.read(|txn| {
            let Some(seq) = table(txn, ACTION_IDS)?
                .get(action_id)
                .map_err(unavailable)?
                .map(|v| v.value())
            else {
                return Ok(None);
            };
            match table(txn, ACTIONS)?.get(seq).map_err(unavailable)? {
                Some(bytes) => decode_action(seq, bytes.value()).map(Some),
                None => Ok(None),
            }
        })
    }

    fn action_seq_no(&self, doc_id: &str) -> Result<Option<i64>, StoreError> {
        self.read(|txn| {
            Ok(table(txn, ACTION_DOCS)?
                .get(doc_id)
                .map_err(unavailable)?
                .map(|v| v.value()))
        })
    }

    fn create_action_result(&self, result: &ActionResult) -> Result<Created, StoreError> {
        let id = result.doc_id();
        let bytes = encode("action result", result)?;
        self.committer.write(move |batch| {
            let mut results = batch.txn().open_table(RESULTS)?;
            if results.get(id.as_str())?.is_some() {
                return Ok(Created::Existed);
            }
            results.insert(id.as_str(), bytes.as_slice())?;
            Ok(Created::New)
        })
    }

    fn write_output_health(&self, doc: &crate::model::OutputHealth) -> Result<(), StoreError> {
        self.health.record(doc)
    }

    fn secret(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.read(|txn| {
            Ok(table(txn, SECRETS)?
                .get(id)
                .map_err(unavailable)?
                .map(|v| v.value().to_owned()))
        })
    }

    fn agent_by_access_key(&self, api_key_id: &str) -> Result<Option<Agent>, StoreError> {
        Ok(self
            .list_agents()?
            .into_iter()
            .find(|a| a.access_api_key_id == api_key_id))
    }

    fn artifact(
        &self,
        identifier: &str,
        decoded_sha256: &str,
    ) -> Result<Option<crate::model::Artifact>, StoreError> {
        let path = crate::files::endpoint::artifact_path(
            self.endpoint_artifacts_dir(),
            identifier,
            decoded_sha256,
        );
        let Some(path) = path else {
            return Ok(None);
        };
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                StoreError::Unavailable(format!(
                    "{}: not an artifact document: {e}",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Unavailable(format!("{}: {e}", path.display()))),
        }
    }

    fn latest_policies(&self) -> Result<Vec<PolicyDoc>, StoreError> {
        self.read(|txn| {
            let latest = table(txn, POLICY_LATEST)?;
            let policies = table(txn, POLICIES)?;
            let mut out = Vec::new();
            for entry in latest.iter().map_err(unavailable)? {
                let (_, value) = entry.map_err(unavailable)?;
                let (seq, _) = value.value();
                if let Some(bytes) = policies.get(seq).map_err(unavailable)? {
                    out.push(decode("policy", bytes.value())?);
                }
            }
            Ok(out)
        })
    }

    fn changes(
        &self,
        since: Cursor,
        now: SystemTime,
        wait: Duration,
    ) -> Result<Changes, StoreError> {
        if !self.wait_for_feed(since, wait)? {
            return Ok(Changes::default());
        }
        self.read(|txn| {
            let meta = table(txn, META)?;
            let cursor = Cursor {
                policies: counter(&meta, POLICY_SEQ).map_err(unavailable)?,
                actions: counter(&meta, ACTION_SEQ).map_err(unavailable)?,
            };
            let mut policies = Vec::new();
            let after = (Bound::Excluded(since.policies), Bound::Unbounded);
            for entry in table(txn, POLICIES)?.range(after).map_err(unavailable)? {
                let (_, bytes) = entry.map_err(unavailable)?;
                policies.push(decode("policy", bytes.value())?);
            }
            let mut actions = Vec::new();
            let after = (Bound::Excluded(since.actions), Bound::Unbounded);
            for entry in table(txn, ACTIONS)?.range(after).map_err(unavailable)? {
                let (seq, bytes) = entry.map_err(unavailable)?;
                let action = decode_action(seq.value(), bytes.value())?;
                if is_live(&action, now) {
                    actions.push(action);
                }
            }
            Ok(Changes {
                policies,
                actions,
                cursor: Some(cursor),
            })
        })
    }
}

impl LocalStore {
    /// Blocks until a commit moves the feed past `since` (true) or `wait` passes (false). Woken
    /// by the committer's condvar, never by polling.
    fn wait_for_feed(&self, since: Cursor, wait: Duration) -> Result<bool, StoreError> {
        let deadline = Instant::now().checked_add(wait);
        let mut feed = self.shared.feed.lock().map_err(poisoned)?;
        loop {
            if feed.policies > since.policies || feed.actions > since.actions {
                return Ok(true);
            }
            feed = match deadline {
                None => self.shared.changed.wait(feed).map_err(poisoned)?,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    self.shared
                        .changed
                        .wait_timeout(feed, left)
                        .map_err(poisoned)?
                        .0
                }
            };
        }
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> StoreError {
    unavailable("change feed lock poisoned")
}

/// Disables every listed key that exists.
pub(super) fn invalidate_keys(batch: &mut Batch<'_>, ids: &[String]) -> Result<(), WriteFault> {
    let mut keys = batch.txn().open_table(API_KEYS)?;
    let mut changed = Vec::new();
    for id in ids {
        if let Some(bytes) = keys.get(id.as_str())? {
            let mut record: KeyRecord =
                decode("api key", bytes.value()).map_err(WriteFault::Answer)?;
            record.enabled = false;
            changed.push((id, encode("api key", &record).map_err(WriteFault::Answer)?));
        }
    }
    // Written only once every record decoded: an answer never follows a partial write.
    for (id, bytes) in changed {
        keys.insert(id.as_str(), bytes.as_slice())?;
    }
    Ok(())
}

/// Base64 of a digest, as stored.
pub(super) fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A stored digest; an undecodable one matches nothing.
fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_default()
}
