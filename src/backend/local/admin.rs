//! The writes Kibana would make, for the single-box mode's seeding, policy files and management
//! API (not in the `Store` trait): enrollment keys, policy revisions, actions, Fleet secrets, and
//! the listings the management API shows. Each is one transaction, durable when it returns.
//!
//! Enrollment records keep the encoded token (`api_key`) because the operator must be able to
//! read it again: Kibana's API and UI show enrollment tokens, and the quick start prints the
//! install command on every start. Its API key secret itself is stored only as a digest like every
//! other; the clear copy is protected like the server's TLS key and admin token beside it (file
//! 0600 in a 0700 directory). Agent access keys, the credentials that matter after enrollment,
//! are never stored in clear.

use std::time::SystemTime;

use redb::ReadableTable;
use serde_json::{json, Map, Value};

use super::committer::WriteFault;
use super::error::unavailable;
use super::schema::{
    decode, decode_agent, encode, KeyRecord, StoredAction, ACTIONS, ACTION_DOCS, ACTION_IDS,
    ACTION_SEQ, AGENTS, AGENT_ACTIONS, API_KEYS, ENROLLMENT, META, POLICIES, POLICY_LATEST,
    POLICY_SEQ, RESULTS, SECRETS,
};
use super::secrets::{self, secret_digest, ID_LEN, SECRET_LEN};
use super::store::{base64_encode, counter, invalidate_keys, table, unused_id};
use super::LocalStore;
use crate::backend::{ApiKey, StoreError};
use crate::model::time::rfc3339_seconds;
use crate::model::{Action, ActionResult, Agent, EnrollmentKey, PolicyDoc};

impl LocalStore {
    /// Creates an enrollment token for `policy_id`, as Kibana does: an API key (`type:
    /// enrollment` metadata) and its active enrollment record, in one transaction.
    pub fn add_enrollment_key(&self, policy_id: &str, name: &str) -> Result<ApiKey, StoreError> {
        let first_id = secrets::random_token(ID_LEN)?;
        let secret = secrets::random_token(SECRET_LEN)?;
        let (policy_id, name) = (policy_id.to_owned(), name.to_owned());
        let created_at = rfc3339_seconds(SystemTime::now());
        self.committer.write(move |batch| {
            let mut keys = batch.txn().open_table(API_KEYS)?;
            let id = unused_id(&keys, first_id)?;
            let key = ApiKey { id, secret };
            let record = KeyRecord {
                secret_sha256: base64_encode(&secret_digest(&key.id, &key.secret)),
                name: name.clone(),
                enabled: true,
                metadata: json!({"type": "enrollment", "policy_id": policy_id}),
                roles: json!({}),
            };
            let enrollment = EnrollmentKey {
                active: true,
                api_key: key.encoded(),
                api_key_id: key.id.clone(),
                name,
                policy_id,
                created_at,
                ..EnrollmentKey::default()
            };
            let record = encode("api key", &record).map_err(WriteFault::Answer)?;
            let enrollment = encode("enrollment key", &enrollment).map_err(WriteFault::Answer)?;
            keys.insert(key.id.as_str(), record.as_slice())?;
            batch
                .txn()
                .open_table(ENROLLMENT)?
                .insert(key.id.as_str(), enrollment.as_slice())?;
            Ok(key)
        })
    }

    /// Deactivates an enrollment record and invalidates its API key, in one transaction.
    /// `NotFound` when there is no record for `api_key_id`.
    pub fn revoke_enrollment_key(&self, api_key_id: &str) -> Result<(), StoreError> {
        let id = api_key_id.to_owned();
        self.committer.write(move |batch| {
            let records = batch.txn().open_table(ENROLLMENT)?;
            let mut record: EnrollmentKey = match records.get(id.as_str())? {
                Some(bytes) => {
                    decode("enrollment key", bytes.value()).map_err(WriteFault::Answer)?
                }
                None => return Err(WriteFault::Answer(StoreError::NotFound)),
            };
            record.active = false;
            let bytes = encode("enrollment key", &record).map_err(WriteFault::Answer)?;
            drop(records);
            // The key first: it answers (without writing) if a record does not decode.
            invalidate_keys(batch, std::slice::from_ref(&id))?;
            batch
                .txn()
                .open_table(ENROLLMENT)?
                .insert(id.as_str(), bytes.as_slice())?;
            Ok(())
        })
    }

    /// Every enrollment record, active or not, oldest first.
    pub fn list_enrollment_keys(&self) -> Result<Vec<EnrollmentKey>, StoreError> {
        self.read(|txn| {
            let mut out: Vec<EnrollmentKey> = Vec::new();
            for entry in table(txn, ENROLLMENT)?.iter().map_err(unavailable)? {
                let (_, bytes) = entry.map_err(unavailable)?;
                out.push(decode("enrollment key", bytes.value())?);
            }
            out.sort_by(|a, b| {
                (a.created_at.as_str(), a.api_key_id.as_str())
                    .cmp(&(b.created_at.as_str(), b.api_key_id.as_str()))
            });
            Ok(out)
        })
    }

    /// Appends a policy revision document (the next policy sequence number); it becomes the
    /// latest of its policy when its `revision_idx` is higher than the latest's. Wakes change-feed
    /// readers.
    pub fn add_policy(&self, doc: PolicyDoc) -> Result<(), StoreError> {
        let bytes = encode("policy", &doc)?;
        self.committer.write(move |batch| {
            let mut meta = batch.txn().open_table(META)?;
            let seq = counter(&meta, POLICY_SEQ)? + 1;
            meta.insert(POLICY_SEQ, seq)?;
            drop(meta);
            batch
                .txn()
                .open_table(POLICIES)?
                .insert(seq, bytes.as_slice())?;
            let mut latest = batch.txn().open_table(POLICY_LATEST)?;
            let newer = match latest.get(doc.policy_id.as_str())? {
                Some(current) => doc.revision_idx > current.value().1,
                None => true,
            };
            if newer {
                latest.insert(doc.policy_id.as_str(), (seq, doc.revision_idx))?;
            }
            drop(latest);
            batch.policy_written(seq);
            Ok(())
        })
    }

    /// Appends an action document: assigns the next `seq_no` and, when `doc_id` is empty, a random
    /// 20-character document id. `Conflict` when the given `doc_id` exists. Wakes change-feed
    /// readers.
    pub fn add_action(&self, action: Action) -> Result<Action, StoreError> {
        let mut action = action;
        if action.doc_id.is_empty() {
            action.doc_id = secrets::random_token(ID_LEN)?;
        }
        let mut agents = action.agents.clone();
        agents.sort();
        agents.dedup();
        self.committer.write(move |batch| {
            let mut docs = batch.txn().open_table(ACTION_DOCS)?;
            if docs.get(action.doc_id.as_str())?.is_some() {
                return Err(WriteFault::Answer(StoreError::Conflict));
            }
            let mut meta = batch.txn().open_table(META)?;
            let seq = counter(&meta, ACTION_SEQ)? + 1;
            action.seq_no = seq;
            let stored = StoredAction {
                id: action.doc_id.clone(),
                source: action.clone(),
            };
            let bytes = encode("action", &stored).map_err(WriteFault::Answer)?;
            meta.insert(ACTION_SEQ, seq)?;
            docs.insert(action.doc_id.as_str(), seq)?;
            batch
                .txn()
                .open_table(ACTIONS)?
                .insert(seq, bytes.as_slice())?;
            let mut ids = batch.txn().open_table(ACTION_IDS)?;
            if ids.get(action.action_id.as_str())?.is_none() {
                ids.insert(action.action_id.as_str(), seq)?;
            }
            let mut index = batch.txn().open_table(AGENT_ACTIONS)?;
            for agent in &agents {
                index.insert((agent.as_str(), seq), ())?;
            }
            batch.action_written(seq);
            Ok(action)
        })
    }

    /// Stores (or replaces) a Fleet secret, as Kibana does through `POST /_fleet/secret`. Kept
    /// in clear: policies are served with it inlined.
    pub fn add_secret(&self, id: &str, value: &str) -> Result<(), StoreError> {
        let (id, value) = (id.to_owned(), value.to_owned());
        self.committer.write(move |batch| {
            batch
                .txn()
                .open_table(SECRETS)?
                .insert(id.as_str(), value.as_str())?;
            Ok(())
        })
    }

    /// Every agent, by id.
    pub fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.read(|txn| {
            let mut out = Vec::new();
            for entry in table(txn, AGENTS)?.iter().map_err(unavailable)? {
                let (id, bytes) = entry.map_err(unavailable)?;
                out.push(decode_agent(id.value(), bytes.value())?);
            }
            Ok(out)
        })
    }

    /// The stored source of agent `id`, member for member (what `fleet-edge agents` and the
    /// document-shape tests look at; `Store::agent` reads it into the model).
    pub fn agent_document(&self, id: &str) -> Result<Option<Map<String, Value>>, StoreError> {
        self.read(
            |txn| match table(txn, AGENTS)?.get(id).map_err(unavailable)? {
                Some(bytes) => decode(&format!("agent {id}"), bytes.value()).map(Some),
                None => Ok(None),
            },
        )
    }

    /// The result documents written for `action_id`, by agent id.
    pub fn action_results(&self, action_id: &str) -> Result<Vec<ActionResult>, StoreError> {
        let prefix = format!("{action_id}:");
        self.read(|txn| {
            let mut out = Vec::new();
            for entry in table(txn, RESULTS)?
                .range(prefix.as_str()..)
                .map_err(unavailable)?
            {
                let (id, bytes) = entry.map_err(unavailable)?;
                if !id.value().starts_with(&prefix) {
                    break;
                }
                let result: ActionResult = decode("action result", bytes.value())?;
                // `a:b:c` is under prefix `a:` but may be action `a:b`'s result for agent `c`.
                if result.action_id == action_id {
                    out.push(result);
                }
            }
            Ok(out)
        })
    }
}
