//! The redb tables of the local store, the records kept in them, and the schema check made at
//! open. Documents are stored as their JSON source (the same bytes Elasticsearch would hold), so a
//! read-modify-write keeps fields this server does not interpret.
//!
//! | table             | key                    | value                                          |
//! |-------------------|------------------------|------------------------------------------------|
//! | `meta`            | name                   | `format_version`, `action_seq`, `policy_seq`   |
//! | `api_keys`        | key id                 | [`KeyRecord`] (secret as a SHA-256 digest)     |
//! | `enrollment_keys` | API key id             | `EnrollmentKey` JSON                           |
//! | `agents`          | agent id               | agent source JSON                              |
//! | `actions`         | `seq_no`               | [`StoredAction`] (document id + source)        |
//! | `action_doc_ids`  | document id            | `seq_no` (ack-token resolution)                |
//! | `action_ids`      | `action_id`            | `seq_no` of its first document                 |
//! | `agent_actions`   | (agent id, `seq_no`)   | `()` (pending-actions index)                   |
//! | `action_results`  | `<action_id>:<agent>`  | `ActionResult` JSON                            |
//! | `policies`        | policy `seq`           | `PolicyDoc` JSON (every revision)              |
//! | `policy_latest`   | policy id              | (`seq`, `revision_idx`) of its highest revision |
//! | `secrets`         | secret id              | the value (policies reference it; served as is) |
//! | `info`            | name                   | `written_by`: `fleet-edge X.Y.Z` (format 2)    |
//! | `uploads`         | file `_id`             | upload metadata document JSON (format 3; chunks are files, `files.rs`) |
//!
//! An older format is migrated in the opening write transaction ([`migrate`], one step per
//! version), so a crash leaves either the old store or the migrated one.

use std::time::SystemTime;

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::dir::FORMAT_VERSION;
use super::error::bad_document;
use crate::backend::{Cursor, StoreError};
use crate::model::time::parse_rfc3339;
use crate::model::{Action, Agent};

/// Store-wide counters and the format version.
pub(super) const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
/// API keys by id.
pub(super) const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
/// Enrollment records by API key id.
pub(super) const ENROLLMENT: TableDefinition<&str, &[u8]> = TableDefinition::new("enrollment_keys");
/// Agent sources by agent id.
pub(super) const AGENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("agents");
/// Action documents by `seq_no`.
pub(super) const ACTIONS: TableDefinition<i64, &[u8]> = TableDefinition::new("actions");
/// Action `seq_no` by document id.
pub(super) const ACTION_DOCS: TableDefinition<&str, i64> = TableDefinition::new("action_doc_ids");
/// First action document `seq_no` by `action_id`.
pub(super) const ACTION_IDS: TableDefinition<&str, i64> = TableDefinition::new("action_ids");
/// Which actions target which agent.
pub(super) const AGENT_ACTIONS: TableDefinition<(&str, i64), ()> =
    TableDefinition::new("agent_actions");
/// Action results by `<action_id>:<agent_id>`.
pub(super) const RESULTS: TableDefinition<&str, &[u8]> = TableDefinition::new("action_results");
/// Policy revision documents by policy sequence.
pub(super) const POLICIES: TableDefinition<i64, &[u8]> = TableDefinition::new("policies");
/// (sequence, revision) of the highest revision of each policy.
pub(super) const POLICY_LATEST: TableDefinition<&str, (i64, i64)> =
    TableDefinition::new("policy_latest");

/// Fleet secrets (`$co.elastic.secret{<id>}` values) by id.
pub(super) const SECRETS: TableDefinition<&str, &str> = TableDefinition::new("secrets");

/// Upload metadata documents by `_id` (`<action_id>.<agent_id>`), format 3.
pub(super) const UPLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("uploads");

/// Which fleet-edge last opened the store (format 2).
pub(super) const INFO: TableDefinition<&str, &str> = TableDefinition::new("info");
/// `info` key naming the fleet-edge version that last opened the store.
pub(super) const WRITTEN_BY: &str = "written_by";

/// `meta` key of the on-disk format version.
pub(super) const FORMAT_KEY: &str = "format_version";
/// `meta` key of the last action `seq_no`.
pub(super) const ACTION_SEQ: &str = "action_seq";
/// `meta` key of the last policy sequence.
pub(super) const POLICY_SEQ: &str = "policy_seq";

const TABLE_NAMES: [&str; 14] = [
    "info",
    "meta",
    "api_keys",
    "enrollment_keys",
    "agents",
    "actions",
    "action_doc_ids",
    "action_ids",
    "agent_actions",
    "action_results",
    "policies",
    "policy_latest",
    "secrets",
    "uploads",
];

/// An API key as stored: never the secret, only its digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct KeyRecord {
    /// `secrets::secret_digest(id, secret)`, base64.
    pub secret_sha256: String,
    /// Key name.
    pub name: String,
    /// False once invalidated.
    pub enabled: bool,
    /// Metadata given at creation.
    pub metadata: Value,
    /// Role descriptors.
    pub roles: Value,
}

/// An action document as stored: the store-assigned document id beside the source.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredAction {
    /// Document id (the ack token).
    pub id: String,
    /// The action source.
    pub source: Action,
}

/// Why the schema check refused the database.
#[derive(Debug)]
pub(super) enum SchemaProblem {
    /// A table this store does not make.
    ForeignTable(String),
    /// Data without a format version.
    Unversioned,
    /// An older format version this build cannot migrate.
    Version(i64),
    /// A newer format version, and who wrote it (when the store says).
    Newer(i64, Option<String>),
    /// redb failed.
    Storage(redb::Error),
}

impl<E: Into<redb::Error>> From<E> for SchemaProblem {
    fn from(e: E) -> Self {
        SchemaProblem::Storage(e.into())
    }
}

/// In the opening write transaction: refuses foreign tables and other format versions, creates
/// every table (an interrupted initialisation ends here), and returns the stored sequences.
pub(super) fn ensure(txn: &WriteTransaction) -> Result<Cursor, SchemaProblem> {
    let existing: Vec<String> = txn.list_tables()?.map(|t| t.name().to_owned()).collect();
    if let Some(foreign) = existing.iter().find(|n| !TABLE_NAMES.contains(&n.as_str())) {
        return Err(SchemaProblem::ForeignTable(foreign.clone()));
    }
    if txn.list_multimap_tables()?.next().is_some() {
        return Err(SchemaProblem::ForeignTable("a multimap table".into()));
    }
    let mut meta = txn.open_table(META)?;
    let version = meta.get(FORMAT_KEY)?.map(|v| v.value());
    match version {
        Some(FORMAT_VERSION) => {}
        Some(newer) if newer > FORMAT_VERSION => {
            drop(meta);
            return Err(SchemaProblem::Newer(newer, written_by(txn)?));
        }
        Some(older) if older >= 1 => {
            migrate(txn, older)?;
            meta.insert(FORMAT_KEY, FORMAT_VERSION)?;
        }
        Some(other) => return Err(SchemaProblem::Version(other)),
        None if existing.iter().any(|n| n != "meta") || meta.len()? > 0 => {
            return Err(SchemaProblem::Unversioned)
        }
        None => {
            meta.insert(FORMAT_KEY, FORMAT_VERSION)?;
            meta.insert(ACTION_SEQ, 0)?;
            meta.insert(POLICY_SEQ, 0)?;
        }
    }
    let cursor = Cursor {
        policies: meta.get(POLICY_SEQ)?.map_or(0, |v| v.value()),
        actions: meta.get(ACTION_SEQ)?.map_or(0, |v| v.value()),
    };
    drop(meta);
    txn.open_table(API_KEYS)?;
    txn.open_table(ENROLLMENT)?;
    txn.open_table(AGENTS)?;
    txn.open_table(ACTIONS)?;
    txn.open_table(ACTION_DOCS)?;
    txn.open_table(ACTION_IDS)?;
    txn.open_table(AGENT_ACTIONS)?;
    txn.open_table(RESULTS)?;
    txn.open_table(POLICIES)?;
    txn.open_table(POLICY_LATEST)?;
    txn.open_table(SECRETS)?;
    txn.open_table(UPLOADS)?;
    let mut info = txn.open_table(INFO)?;
    let us = concat!("fleet-edge ", env!("CARGO_PKG_VERSION"));
    if info
        .get(WRITTEN_BY)?
        .map(|v| v.value().to_owned())
        .as_deref()
        != Some(us)
    {
        info.insert(WRITTEN_BY, us)?;
    }
    Ok(cursor)
}

/// Brings a store of format `from` to [`FORMAT_VERSION`], one step per version, inside the
/// opening transaction.
fn migrate(txn: &WriteTransaction, from: i64) -> Result<(), SchemaProblem> {
    for version in from..FORMAT_VERSION {
        match version {
            // 1 -> 2: the `info` table, filled by `ensure` right after.
            1 => {
                txn.open_table(INFO)?;
            }
            // 2 -> 3: the `uploads` table.
            2 => {
                txn.open_table(UPLOADS)?;
            }
            other => return Err(SchemaProblem::Version(other)),
        }
        log::info!(
            "migrated the local store from format {version} to format {}",
            version + 1
        );
    }
    Ok(())
}

/// The `written_by` of a store, when it has an `info` table.
fn written_by(txn: &WriteTransaction) -> Result<Option<String>, SchemaProblem> {
    let has_info = txn.list_tables()?.any(|t| t.name() == "info");
    if !has_info {
        return Ok(None);
    }
    let info = txn.open_table(INFO)?;
    let by = info.get(WRITTEN_BY)?.map(|v| v.value().to_owned());
    Ok(by)
}

/// The `written_by` of a store file opened read-only (for the message refusing a newer store).
pub(super) fn written_by_file(path: &std::path::Path) -> Option<String> {
    use redb::ReadableDatabase;
    let db = redb::ReadOnlyDatabase::open(path).ok()?;
    let txn = db.begin_read().ok()?;
    let info = txn.open_table(INFO).ok()?;
    let by = info.get(WRITTEN_BY).ok()??.value().to_owned();
    Some(by)
}

/// JSON bytes of a value to store; fails before anything is written.
pub(super) fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| bad_document(what, e))
}

/// A stored JSON value.
pub(super) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| bad_document(what, e))
}

/// The source of an agent document (without its id), as a JSON object.
pub(super) fn agent_source(agent: &Agent) -> Result<Map<String, Value>, StoreError> {
    match serde_json::to_value(agent) {
        Ok(Value::Object(source)) => Ok(source),
        Ok(_) => Err(bad_document("agent", "not an object")),
        Err(e) => Err(bad_document("agent", e)),
    }
}

/// An agent from its stored source.
pub(super) fn decode_agent(id: &str, bytes: &[u8]) -> Result<Agent, StoreError> {
    let mut agent: Agent = decode(&format!("agent {id}"), bytes)?;
    agent.id = id.to_owned();
    Ok(agent)
}

/// An action from its stored row.
pub(super) fn decode_action(seq: i64, bytes: &[u8]) -> Result<Action, StoreError> {
    let stored: StoredAction = decode(&format!("action #{seq}"), bytes)?;
    Ok(Action {
        doc_id: stored.id,
        seq_no: seq,
        ..stored.source
    })
}

/// Whether an action may still be delivered at `now` (no expiration, or one in the future).
pub(super) fn is_live(action: &Action, now: SystemTime) -> bool {
    action.expiration.is_empty() || parse_rfc3339(&action.expiration).is_some_and(|exp| exp > now)
}
