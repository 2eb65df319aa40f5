//! The narrow interface between the event loop and the backend threads (DESIGN.md §1, §5): the
//! work a backend thread is given ([`Job`]), what comes back ([`JobOutput`] in a [`Reply`]),
//! what the change feed reports ([`Event`]), and the inputs and outcomes of the Fleet
//! operations. Failures are [`OpError`]s, named for the caller's decision; `api/errors.rs` maps
//! them to the wire. Names no `api` module; `workers.rs` runs these, `ops/` implements them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::ops::opamp::{OpAmpInput, OpAmpOutcome, OpAmpRefusal};
use super::{ApiKey, CheckinWrite, OpError, StoreError};
use crate::model::time::GoTime;
use crate::model::{Action, Agent};
use crate::transform::ack_event::RawEvent;
use crate::transform::gojson::null_as_default;
use crate::transform::prepared_policy::PreparedPolicy;

/// Work for a backend thread.
#[derive(Debug)]
pub enum Job {
    /// Enroll an agent.
    Enroll(EnrollInput),
    /// The store part of a checkin.
    CheckinStart(CheckinInput),
    /// Make the agent's output keys current for a policy revision.
    OutputKeys {
        /// Agent id.
        agent_id: String,
        /// The revision about to be delivered.
        policy: Arc<PreparedPolicy>,
    },
    /// Process acks.
    Ack(AckInput),
    /// Record an uninstall/orphan audit.
    AuditUnenroll(AuditInput),
    /// Check any API key (status long form).
    Authenticate(ApiKey),
    /// Flush checkin state (the bulk writer).
    WriteCheckins(Vec<(String, CheckinWrite)>),
    /// A management API request.
    Admin(Box<dyn super::admin::AdminWork>),
    /// One OpAMP message (`backend::ops::opamp`).
    OpAmp(OpAmpInput),
    /// An upload begin (`backend::ops::uploads`).
    UploadBegin(super::ops::uploads::BeginInput),
    /// An upload chunk.
    UploadChunk(super::ops::uploads::ChunkInput),
    /// An upload complete.
    UploadComplete(super::ops::uploads::CompleteInput),
    /// One part of a streamed body (a file chunk), read from the store's files.
    ReadPart(crate::http::BodyPart),
    /// A file delivery to an agent (`GET /api/fleet/file/{id}`).
    Deliver(super::ops::delivery::DeliverInput),
    /// Read (or fetch upstream) the upgrade PGP key (`files::pgp`).
    PgpKey(Arc<crate::files::pgp::PgpSource>),
    /// An Elastic Defend artifact download (`ops::artifacts`).
    Artifact(
        super::ops::artifacts::ArtifactInput,
        Arc<super::ops::artifacts::ArtifactCache>,
    ),
    /// Look up a file of the artifact mirror (`files::mirror`).
    Download(crate::files::mirror::DownloadRequest),
    /// The token check of an OpAMP WebSocket upgrade; `accept` comes back with the answer.
    OpAmpConnect {
        /// The enrollment token.
        key: ApiKey,
        /// The `Sec-WebSocket-Accept` value of the upgrade.
        accept: String,
    },
}

/// A job's result.
#[derive(Debug)]
pub enum JobOutput {
    /// From [`Job::Enroll`]: the 200 body.
    Enrolled(Result<Value, OpError>),
    /// From [`Job::CheckinStart`].
    CheckinStarted(Box<Result<CheckinStart, OpError>>),
    /// From [`Job::OutputKeys`]: output name → `id:secret`.
    OutputKeys(Result<BTreeMap<String, String>, OpError>),
    /// From [`Job::Ack`].
    Acked(Result<AckOutcome, OpError>),
    /// From [`Job::Admin`]: status and body.
    Admin(u16, Value),
    /// From [`Job::AuditUnenroll`]: an empty 200 when `Ok`.
    Audited(Result<(), OpError>),
    /// From [`Job::Authenticate`]: whether the key is valid and enabled.
    Authenticated(bool),
    /// From [`Job::OpAmp`].
    OpAmp(Result<OpAmpOutcome, OpAmpRefusal>),
    /// From [`Job::OpAmpConnect`]: the `Sec-WebSocket-Accept` value and the token, when good.
    OpAmpConnected(Result<(String, ApiKey), OpAmpRefusal>),
    /// From the upload jobs.
    Upload(Result<super::ops::uploads::UploadAnswer, OpError>),
    /// From [`Job::Deliver`]: the response (its body streams from the store), or the refusal
    /// with the headers it carries (`Accept-Ranges`, `Content-Range`).
    Delivered(Result<crate::http::Response, super::ops::delivery::Refusal>),
    /// A complete response (a management download: its body streams from the store).
    File(crate::http::Response),
    /// From [`Job::ReadPart`]: the part's bytes (exactly its `take`), or why not.
    Part(Result<Vec<u8>, String>),
    /// From [`Job::PgpKey`]: the armored key, or why it cannot be served.
    PgpKey(Result<Vec<u8>, String>),
    /// From [`Job::Artifact`]: the encoded artifact bytes.
    Artifact(Result<Vec<u8>, OpError>),
    /// From [`Job::Download`]: the request and what the lookup found (an open file); `api`
    /// makes the response, whose body streams from the file.
    Download(
        Box<(
            crate::files::mirror::DownloadRequest,
            Result<crate::files::mirror::Opened, crate::files::mirror::MirrorError>,
        )>,
    ),
    /// From [`Job::WriteCheckins`]: the entries that must be retried, with the cause.
    CheckinsWritten {
        /// Entries not written (the store was down); written back into the pending map.
        retry: Vec<(String, CheckinWrite)>,
        /// Why, if anything failed.
        error: Option<StoreError>,
    },
}

/// A result and where it goes (an opaque tag chosen by the submitter).
#[derive(Debug)]
pub struct Reply<T> {
    /// The submitter's tag (a connection key, for instance).
    pub to: T,
    /// The result.
    pub output: JobOutput,
}

/// Something that changed in the store.
#[derive(Debug)]
pub enum Event {
    /// A new policy revision, prepared for delivery.
    Policy(Arc<PreparedPolicy>),
    /// A revision that cannot be served (the previous one stays).
    PolicyRejected {
        /// Policy id.
        policy_id: String,
        /// Its revision.
        revision: i64,
        /// Why.
        reason: String,
    },
    /// New action documents, `seq_no` ascending.
    Actions(Vec<Action>),
    /// Whether the store is reachable (sent on changes only).
    StoreReachable(bool),
}

/// What the enroll operation needs from the request.
#[derive(Debug, Clone)]
pub struct EnrollInput {
    /// The enrollment token presented.
    pub key: ApiKey,
    /// The User-Agent check's outcome (checked after the key, as the spec orders it).
    pub agent_version: Result<String, OpError>,
    /// The body as `api::enroll::parse` read it; its refusal is answered after the key check
    /// and the enrollment record lookup, as Fleet Server orders them.
    pub body: Result<Box<EnrollRequest>, OpError>,
    /// PBKDF2 iterations for replace tokens.
    pub pbkdf2_iterations: u32,
    /// The body's `enrollment_id`, when given (the loop de-duplicates concurrent enrolls on it).
    pub enrollment_id: Option<String>,
    /// The client's address, for the audit line's `client.ip`.
    pub client_ip: Option<std::net::IpAddr>,
}

/// What the checkin operation needs from the request.
#[derive(Debug, Clone)]
pub struct CheckinInput {
    /// The access key presented.
    pub key: ApiKey,
    /// Agent id from the path.
    pub agent_id: String,
    /// The User-Agent check's outcome.
    pub agent_version: Result<String, OpError>,
    /// The body as `api::checkin::parse` read it; its refusal is answered after the key check.
    pub body: Result<Box<CheckinRequest>, OpError>,
    /// A gzip body left compressed until the worker runs (issue 15 §3: requests waiting for a
    /// worker hold ~19 KB, not the 19 MiB it may expand to); when set, `body` is not read.
    pub deferred: Option<Box<DeferredBody>>,
}

/// A checkin's gzip body and the endpoint's parse for it, run by the worker.
#[derive(Debug, Clone)]
pub struct DeferredBody {
    /// The body as received.
    pub gzip: Vec<u8>,
    /// Gunzips within the endpoint's cap and parses (`api::checkin::parse_gzip`): the plain
    /// bytes are dropped once parsed.
    pub parse: fn(&[u8]) -> Result<Box<CheckinRequest>, OpError>,
}

/// A checkin body that passed the endpoint's validation (§3.1, §3.10).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckinRequest {
    /// The body's members.
    pub body: CheckinBody,
    /// Requested hold time, parsed (`None`: server default).
    pub poll_timeout: Option<Duration>,
}

/// The checkin body fields this server interprets (§3.1).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct CheckinBody {
    /// Agent state; required non-empty.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    /// Status message.
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    /// Token from the previous response.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ack_token: String,
    /// Local metadata.
    #[serde(default)]
    pub local_metadata: Option<Value>,
    /// Component states.
    #[serde(default)]
    pub components: Option<Value>,
    /// Requested hold time (Go duration).
    #[serde(default)]
    pub poll_timeout: Option<String>,
    /// Upgrade progress.
    #[serde(default)]
    pub upgrade_details: Option<Value>,
    /// Policy the agent runs (9.2+).
    #[serde(default)]
    pub agent_policy_id: Option<String>,
    /// Revision it runs (9.2+).
    #[serde(default)]
    pub policy_revision_idx: Option<i64>,
    /// Available rollbacks.
    #[serde(default)]
    pub upgrade: Option<Value>,
}

/// What the loop needs to finish the checkin.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckinStart {
    /// The agent document as read.
    pub agent: Agent,
    /// The parsed body.
    pub body: CheckinBody,
    /// Requested hold time, already parsed (`None`: server default).
    pub poll_timeout: Option<Duration>,
    /// Pending actions in wire form; non-empty means answer now.
    pub actions: Vec<Value>,
    /// The ack token to answer with (`""` when no action passed the type filter).
    pub ack_token: String,
    /// The checkin-state update for the bulk writer (`updated_at` added at flush).
    pub state: CheckinWrite,
    /// The members of `state` a later flush of the same, still parked, checkin writes again.
    pub repeat: Map<String, Value>,
    /// The agent's position in the action sequence after this answer: actions at or below it
    /// were delivered (a live copy of one of them is not delivered again).
    pub position: i64,
}

/// What the ack operation needs from the request.
#[derive(Debug, Clone)]
pub struct AckInput {
    /// The access key presented.
    pub key: ApiKey,
    /// Agent id from the path.
    pub agent_id: String,
    /// The body's events as `api::ack::parse` read them; its refusal is answered after the key
    /// check.
    pub body: Result<Vec<RawEvent>, OpError>,
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

/// What the audit operation needs from the request.
#[derive(Debug, Clone)]
pub struct AuditInput {
    /// The access key presented.
    pub key: ApiKey,
    /// Agent id from the path.
    pub agent_id: String,
    /// The body as `api::audit::parse` read it; its refusal is answered after the key check.
    pub body: Result<AuditRequest, OpError>,
}

/// An audit/unenroll body that passed the endpoint's validation (§8).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRequest {
    /// `uninstall`, `orphaned`, `key_revoked` or `migrated`.
    pub reason: String,
    /// When the agent says it happened (Go's zero time when absent).
    pub timestamp: GoTime,
}

/// An enroll body that passed the endpoint's validation (§2.2).
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollRequest {
    /// `PERMANENT`, `EPHEMERAL` or `TEMPORARY`.
    pub enroll_type: String,
    /// A caller-chosen agent id, as sent.
    pub id: Option<String>,
    /// The token that lets this enroll replace an active agent, as sent.
    pub replace_token: Option<String>,
    /// The enrollment id, as sent.
    pub enrollment_id: Option<String>,
    /// `metadata.local`.
    pub local_metadata: Option<Value>,
    /// `metadata.tags`, sorted and without duplicates.
    pub tags: Vec<String>,
}
