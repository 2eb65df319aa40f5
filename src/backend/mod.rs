//! The narrow interface between the Fleet protocol and storage (DESIGN.md §5).
//!
//! [`Store`] is the one thing the protocol knows about storage: a handful of domain operations
//! (API keys, enrollment records, agents, actions, results, policies) and a blocking change feed.
//! Its methods block, so they only ever run on backend worker threads, never on the event loop.
//! Two implementations: `es` (Elasticsearch, the exact calls of es-contract.md §2) and `local`
//! (an embedded crash-safe store for one box). `memory` is the reference semantics both must
//! match, used by unit and scenario tests; `hooks` are its test hooks (a test double is a hook,
//! not a wrapper). `layer` forwards every operation once for the one wrapper, `auth_cache`, the
//! API-key cache the server runs in front of `authenticate`. `remote` reaches the clusters of
//! `remote_elasticsearch` outputs (over HTTP, whatever the store), where those outputs' keys
//! live.

pub mod admin;
pub mod admission;
pub mod auth_cache;
pub mod deadline;
pub mod deferred;
pub mod delivery;
pub mod error;
pub mod es;
pub mod files;
pub mod files_memory;
pub mod hooks;
pub mod interface;
pub mod layer;
pub mod local;
pub mod memory;
pub mod ops;
pub mod relay;
pub mod remote;
pub mod workers;

#[cfg(test)]
pub mod conformance;

pub use error::{FileRefusal, OpError, Why};

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::model::{Action, ActionResult, Agent, EnrollmentKey, OutputHealth, PolicyDoc};

/// Why a store operation failed, named for what the caller does about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached (connection refused, down, timed out): answer 503 with
    /// `Retry-After`, keep parked requests parked, retry later. Never a 401.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered with an error status (Elasticsearch `elastic fail <status>: ...`).
    #[error("elastic fail {status}: {detail}")]
    Failed {
        /// HTTP status the store answered.
        status: u16,
        /// Error type and reason.
        detail: String,
    },
    /// The store rejected a request for being over its rate (Elasticsearch 429).
    #[error("store overloaded")]
    TooManyRequests,
    /// A create hit an existing document.
    #[error("document already exists")]
    Conflict,
    /// The document to update does not exist.
    #[error("document not found")]
    NotFound,
}

/// An API key credential: what agents present as `base64(id:secret)`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Key id.
    pub id: String,
    /// Key secret.
    pub secret: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    /// `base64(id:secret)`, the form in `Authorization: ApiKey ...` and enroll responses.
    pub fn encoded(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.id, self.secret))
    }

    /// `id:secret`, the form injected into policy outputs.
    pub fn joined(&self) -> String {
        format!("{}:{}", self.id, self.secret)
    }
}

/// What the store knows about a valid API key.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKeyInfo {
    /// Key id.
    pub id: String,
    /// Key name.
    pub name: String,
    /// False when invalidated or expired.
    pub enabled: bool,
    /// Metadata given at creation (`agent_id`, `type`, ...).
    pub metadata: Value,
}

/// A key to create.
#[derive(Clone, Debug, PartialEq)]
pub struct NewApiKey {
    /// Key name (`<agent_id>` for access keys, `<agent_id>:<output>` for output keys).
    pub name: String,
    /// Role descriptors.
    pub role_descriptors: Value,
    /// Metadata.
    pub metadata: Value,
}

/// Where a change-feed reader is: the highest sequence number seen per stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Policies stream.
    pub policies: i64,
    /// Actions stream.
    pub actions: i64,
}

impl Cursor {
    /// Before anything.
    pub const START: Cursor = Cursor {
        policies: -1,
        actions: -1,
    };
}

/// What changed since a cursor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    /// New policy revision documents, oldest first.
    pub policies: Vec<PolicyDoc>,
    /// New action documents, `seq_no` ascending.
    pub actions: Vec<Action>,
    /// The cursor to pass next time.
    pub cursor: Option<Cursor>,
}

/// Result of a create-if-absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// Written now.
    New,
    /// Already there (idempotent retry).
    Existed,
}

/// Members of an agent document that the audit/unenroll endpoint sets and a later checkin removes
/// (es-contract.md §3.7 script S1).
pub const AUDIT_MEMBERS: [&str; 3] = [
    "audit_unenrolled_reason",
    "audit_unenrolled_time",
    "unenrolled_at",
];

/// One agent's checkin-state write (fleet-protocol.md §3.8).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckinWrite {
    /// Members set, merged as [`Store::update_agent`] merges them.
    pub fields: Map<String, Value>,
    /// Also remove [`AUDIT_MEMBERS`]: the agent had been audit-unenrolled and checks in again.
    /// Elasticsearch gets Fleet Server's script S1 for it instead of a partial document.
    pub clear_audit: bool,
}

impl CheckinWrite {
    /// A plain partial update.
    pub fn fields(fields: Map<String, Value>) -> CheckinWrite {
        CheckinWrite {
            fields,
            clear_audit: false,
        }
    }
}

/// What [`Store::policy_acked`] writes.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyAck {
    /// The policy the acked revision belongs to; nothing of S3 is written when the agent was
    /// reassigned meanwhile.
    pub policy_id: String,
    /// The acked revision.
    pub revision: i64,
    /// `updated_at` (RFC 3339, seconds).
    pub updated_at: String,
    /// The agent's `outputs` after retiring keys, merged unconditionally; `None`: untouched.
    pub outputs: Option<Value>,
}

/// Storage for one Fleet deployment. Blocking; run only on backend threads.
pub trait Store: Send + Sync {
    /// Whether agents get per-agent output API keys minted by this store (§3.7). Elasticsearch:
    /// yes. The embedded store has no cluster to mint keys in: outputs keep the credentials
    /// written in the policy.
    fn mints_output_keys(&self) -> bool {
        true
    }

    /// File transfer storage (uploads, file delivery), when this store has it.
    fn files(&self) -> Option<&dyn files::FileStore> {
        None
    }

    /// Checks an API key. `Ok(None)`: unknown key or wrong secret (→ 401). Through the API-key
    /// cache (`auth_cache`) the answer carries only the id and `enabled` (name and metadata
    /// empty): that is all its callers read.
    fn authenticate(&self, key: &ApiKey) -> Result<Option<ApiKeyInfo>, StoreError>;
    /// Creates an API key.
    fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey, StoreError>;
    /// Role descriptors of a key (`None`: unknown key).
    fn api_key_roles(&self, id: &str) -> Result<Option<Value>, StoreError>;
    /// Replaces the role descriptors of a key.
    fn update_api_key_roles(&self, id: &str, roles: &Value) -> Result<(), StoreError>;
    /// Invalidates keys; unknown ids are ignored.
    fn invalidate_api_keys(&self, ids: &[String]) -> Result<(), StoreError>;

    /// The active enrollment record whose token has this API key id.
    fn enrollment_key(&self, api_key_id: &str) -> Result<Option<EnrollmentKey>, StoreError>;

    /// An active enrollment key of a policy (Q5 by `policy_id`): what this Fleet Server enrolls
    /// itself with into its own policy (fleet-protocol.md §6.5). `None` when the policy has none.
    fn policy_enrollment_key(&self, policy_id: &str) -> Result<Option<EnrollmentKey>, StoreError>;

    /// Reads an agent (realtime: sees every acknowledged write).
    fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError>;
    /// Reads an agent to authenticate and serve one of its requests: every member but
    /// `last_checkin_message`, which an agent may make megabytes long and no request needs
    /// (issue 15 §3). Stores that cannot leave a member out read it whole.
    fn agent_for_request(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        self.agent(id)
    }
    /// Reads an agent to authenticate and apply one of its acks: what [`Store::agent_for_request`]
    /// reads, less the members an ack never uses (`local_metadata`, `components`,
    /// `user_provided_metadata`, members this server does not interpret), which are most of a
    /// document's bytes. Stores that cannot leave them out read as `agent_for_request` does.
    fn agent_for_ack(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        self.agent_for_request(id)
    }
    /// The agent enrolled with this `enrollment_id` (§2.3 dedupe), after making recent writes
    /// visible to search.
    fn agent_by_enrollment_id(&self, enrollment_id: &str) -> Result<Option<Agent>, StoreError>;
    /// Creates an agent; `Conflict` when the id exists. Durable when it returns.
    fn create_agent(&self, agent: &Agent) -> Result<(), StoreError>;
    /// Merges `fields` into an agent document the way Elasticsearch's partial update does:
    /// objects merge recursively, arrays and scalars replace, `null` removes (see
    /// [`memory::merge`]).
    /// `NotFound` when it does not exist. Durable when it returns.
    fn update_agent(&self, id: &str, fields: &Map<String, Value>) -> Result<(), StoreError>;
    /// Deletes an agent; absent is fine.
    fn delete_agent(&self, id: &str) -> Result<(), StoreError>;
    /// Applies many checkin-state writes in one batch (the checkin bulk writer, fleet-protocol.md
    /// §3.8); per-item results in order. A failed item does not fail the others.
    fn update_agents(
        &self,
        updates: &[(String, CheckinWrite)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError>;
    /// The agent write of an acknowledged POLICY_CHANGE (fleet-protocol.md §4.3 step 2,
    /// es-contract.md §3.7 script S3): only while the agent's `policy_id` is still
    /// `ack.policy_id`, removes `default_api_key_history` and sets `policy_revision_idx` and
    /// `updated_at`; then, whatever the policy, merges `ack.outputs` when given.
    /// `NotFound` when the agent does not exist. Durable when it returns.
    fn policy_acked(&self, id: &str, ack: &PolicyAck) -> Result<(), StoreError>;

    /// Actions for `agent_id` with `seq_no > after_seq`, not expired at `now`, `seq_no`
    /// ascending, at most `limit`.
    fn pending_actions(
        &self,
        agent_id: &str,
        after_seq: i64,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<Action>, StoreError>;
    /// The first action document with this `action_id`.
    fn action(&self, action_id: &str) -> Result<Option<Action>, StoreError>;
    /// The `seq_no` of the action document with this document id (ack-token resolution).
    fn action_seq_no(&self, doc_id: &str) -> Result<Option<i64>, StoreError>;
    /// Writes a result document once (`<action_id>:<agent_id>`); a repeat is `Existed`.
    fn create_action_result(&self, result: &ActionResult) -> Result<Created, StoreError>;

    /// Records the state of a remote output (`logs-fleet_server.output_health-default`,
    /// fleet-protocol.md §3.7). Callers write on state changes only.
    fn write_output_health(&self, doc: &OutputHealth) -> Result<(), StoreError>;

    /// The value of a Fleet secret (`GET /_fleet/secret/<id>`); `None` when unknown.
    fn secret(&self, id: &str) -> Result<Option<String>, StoreError>;

    /// The newest revision of every policy.
    fn latest_policies(&self) -> Result<Vec<PolicyDoc>, StoreError>;

    /// The agent whose access API key has this id (Q1 by `access_api_key_id`): how file
    /// deliveries and Endpoint artifact downloads find their agent (fleet-protocol.md §1.4, §8).
    fn agent_by_access_key(&self, api_key_id: &str) -> Result<Option<Agent>, StoreError>;
    /// The first `.fleet-artifacts` document with this identifier and decoded SHA-256 (Q9).
    fn artifact(
        &self,
        identifier: &str,
        decoded_sha256: &str,
    ) -> Result<Option<crate::model::Artifact>, StoreError>;

    /// Blocks up to `wait` for policy or action documents newer than `since`; returns at once
    /// when there are some. An empty result with `cursor: None` means nothing changed.
    fn changes(
        &self,
        since: Cursor,
        now: SystemTime,
        wait: Duration,
    ) -> Result<Changes, StoreError>;

    /// Delivers the change feed to `sink` from follower threads of the store's own
    /// (Elasticsearch's checkpoint followers): every policy, then what changes; false when the
    /// store has none, and the backend follows [`Store::changes`] on a thread instead. One sink
    /// at a time.
    fn follow(&self, sink: std::sync::Arc<dyn relay::FeedSink>) -> bool {
        let _ = sink;
        false
    }

    /// Stops delivering to the sink of [`Store::follow`]: nothing reaches it after this returns.
    fn unfollow(&self) {}

    /// Delivers to the sink of [`Store::follow`] what it has not had yet, without waiting for a
    /// change (the backend runs it on a worker right after `follow`: followers already in a long
    /// poll would otherwise deliver only when it returns).
    fn catch_up(&self) {}
}
