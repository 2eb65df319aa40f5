//! Backend threads (DESIGN.md §1): a bounded job queue served by a few worker threads running
//! the blocking operations of `ops` (sharing one registry of remote clusters, `remote.rs`), and
//! one monitor thread following the store's change feed.
//! Results and events come back over channels; `notify` (a mio Waker in practice; this module
//! does not import mio) tells the event loop to drain them. A full queue is refused at once so
//! the loop can answer 503 instead of blocking. Workers and monitor share one [`CachedAuth`] over
//! the store, so API keys are checked against the store once per TTL, not once per request.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::auth_cache::{AuthCacheSettings, CachedAuth};
use super::ops::ack::{ack, AckInput, AckOutcome};
use super::ops::checkin::{checkin_start, CheckinInput, CheckinStart};
use super::ops::enroll::{enroll, EnrollInput};
use super::ops::outputs::ensure_output_keys;
use super::ops::{authenticate, store_error};
use super::remote::{RemoteClusters, RemoteSettings};
use super::{ApiKey, CheckinWrite, Cursor, Store, StoreError};
use crate::api::ApiError;
use crate::core::policy::PreparedPolicy;
use crate::core::secrets::referenced_ids;
use crate::model::{Action, PolicyDoc};

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
    AuditUnenroll(super::ops::audit::AuditInput),
    /// Check any API key (status long form).
    Authenticate(ApiKey),
    /// Flush checkin state (the bulk writer).
    WriteCheckins(Vec<(String, CheckinWrite)>),
    /// A management API request.
    Admin(crate::mgmt::AdminRequest),
    /// One OpAMP message (`backend::ops::opamp`).
    OpAmp(super::ops::opamp::OpAmpInput),
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
    Enrolled(Result<Value, ApiError>),
    /// From [`Job::CheckinStart`].
    CheckinStarted(Box<Result<CheckinStart, ApiError>>),
    /// From [`Job::OutputKeys`]: output name → `id:secret`.
    OutputKeys(Result<BTreeMap<String, String>, ApiError>),
    /// From [`Job::Ack`].
    Acked(Result<AckOutcome, ApiError>),
    /// From [`Job::Admin`]: status and body.
    Admin(u16, Value),
    /// From [`Job::AuditUnenroll`]: an empty 200 when `Ok`.
    Audited(Result<(), ApiError>),
    /// From [`Job::Authenticate`]: whether the key is valid and enabled.
    Authenticated(bool),
    /// From [`Job::OpAmp`].
    OpAmp(Result<super::ops::opamp::OpAmpOutcome, super::ops::opamp::OpAmpRefusal>),
    /// From [`Job::OpAmpConnect`]: the `Sec-WebSocket-Accept` value and the token, when good.
    OpAmpConnected(Result<(String, ApiKey), super::ops::opamp::OpAmpRefusal>),
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

/// Callback that wakes the event loop.
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// Handle held by the event loop.
pub struct Backend<T> {
    jobs: SyncSender<(T, Job, Instant)>,
    admission: Arc<super::admission::Admission>,
    job_timeout: Duration,
    /// Job results.
    pub replies: Receiver<Reply<T>>,
    /// Store changes.
    pub events: Receiver<Event>,
}

/// Sizing of the backend threads.
#[derive(Clone, Copy, Debug)]
pub struct BackendSettings {
    /// Worker threads.
    pub workers: usize,
    /// Jobs that may wait in the queue.
    pub queue: usize,
    /// Longest a change-feed read blocks.
    pub feed_wait: Duration,
    /// The remote clusters of `remote_elasticsearch` outputs.
    pub remote: RemoteSettings,
    /// The API-key cache every worker authenticates through.
    pub auth_cache: AuthCacheSettings,
    /// Deadline of a job submitted without one (`--backend-timeout`).
    pub job_timeout: Duration,
}

impl Default for BackendSettings {
    fn default() -> Self {
        Self {
            workers: 4,
            queue: 4096,
            feed_wait: Duration::from_secs(30),
            remote: RemoteSettings::default(),
            auth_cache: AuthCacheSettings::default(),
            job_timeout: Duration::from_secs(10),
        }
    }
}

impl<T: Send + 'static> Backend<T> {
    /// Starts the workers and the monitor over `store`, behind the API-key cache.
    pub fn start(
        store: Arc<dyn Store>,
        admin: Option<Arc<dyn crate::mgmt::Admin>>,
        notify: Notify,
        settings: BackendSettings,
    ) -> std::io::Result<Self> {
        let cache = Arc::new(CachedAuth::new(store, settings.auth_cache));
        let store: Arc<dyn Store> = cache.clone();
        let (jobs_tx, jobs_rx) = mpsc::sync_channel::<(T, Job, Instant)>(settings.queue);
        let admission = Arc::new(super::admission::Admission::new(settings.workers.max(1)));
        let jobs_rx = Arc::new(std::sync::Mutex::new(jobs_rx));
        let (reply_tx, replies) = mpsc::channel();
        let (event_tx, events) = mpsc::channel();
        let remotes = Arc::new(RemoteClusters::new(
            Arc::new(super::es::remote::HttpConnect {
                server_version: settings.remote.server_version,
                ..Default::default()
            }),
            settings.remote,
        ));
        for i in 0..settings.workers.max(1) {
            let store = Arc::clone(&store);
            let remotes = Arc::clone(&remotes);
            let cache = Arc::clone(&cache);
            let admin = admin.clone();
            let jobs_rx = Arc::clone(&jobs_rx);
            let reply_tx: Sender<Reply<T>> = reply_tx.clone();
            let notify = Arc::clone(&notify);
            let admission = Arc::clone(&admission);
            std::thread::Builder::new()
                .name(format!("fleet-edge-backend-{i}"))
                .spawn(move || loop {
                    let next = match jobs_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((to, job, deadline)) = next else {
                        return;
                    };
                    #[cfg(debug_assertions)]
                    crate::panics::failpoint(&job);
                    admission.started();
                    let began = Instant::now();
                    // Past its deadline already: answered 503 without touching the store.
                    let job = match super::admission::expired(job, began >= deadline) {
                        Ok(output) => {
                            admission.finished(None);
                            if reply_tx.send(Reply { to, output }).is_err() {
                                return;
                            }
                            notify();
                            continue;
                        }
                        Err(job) => *job,
                    };
                    let _deadline = super::deadline::Scope::enter(deadline);
                    let output = match (job, &admin) {
                        (Job::Admin(req), Some(admin)) => {
                            let execute =
                                || crate::mgmt::ops::execute(&**admin, &req, SystemTime::now());
                            // Revoking a token invalidates its key behind the cache's back.
                            let (status, body) = match &req.route {
                                crate::mgmt::Route::RevokeToken(id) => {
                                    cache.invalidating(std::slice::from_ref(id), execute)
                                }
                                _ => execute(),
                            };
                            JobOutput::Admin(status, body)
                        }
                        (job, _) => run(&*store, &remotes, job, SystemTime::now()),
                    };
                    admission.finished(Some(began.elapsed()));
                    if reply_tx.send(Reply { to, output }).is_err() {
                        return;
                    }
                    notify();
                })?;
        }
        let monitor_store = Arc::clone(&store);
        std::thread::Builder::new()
            .name("fleet-edge-monitor".into())
            .spawn(move || {
                monitor(
                    &*monitor_store,
                    &remotes,
                    &event_tx,
                    &notify,
                    settings.feed_wait,
                )
            })?;
        Ok(Self {
            jobs: jobs_tx,
            admission,
            job_timeout: settings.job_timeout,
            replies,
            events,
        })
    }

    /// Queues a job due within the backend timeout; gives it back when it is refused.
    pub fn submit(&self, to: T, job: Job) -> Result<(), Box<(T, Job)>> {
        self.submit_by(to, job, Instant::now() + self.job_timeout)
    }

    /// Queues a job that must be answered by `deadline`; gives it back when the queue is full,
    /// the workers are gone, or the jobs ahead of it cannot drain before `deadline`.
    pub fn submit_by(&self, to: T, job: Job, deadline: Instant) -> Result<(), Box<(T, Job)>> {
        if !self.admission.admit(Instant::now(), deadline) {
            return Err(Box::new((to, job)));
        }
        self.jobs.try_send((to, job, deadline)).map_err(|e| {
            self.admission.withdraw();
            match e {
                TrySendError::Full((to, job, _)) | TrySendError::Disconnected((to, job, _)) => {
                    Box::new((to, job))
                }
            }
        })
    }

    /// Deadline of a job submitted without one.
    pub fn job_timeout(&self) -> Duration {
        self.job_timeout
    }
}

/// Runs one job against the store (and the remote clusters of remote outputs).
pub fn run(store: &dyn Store, remotes: &RemoteClusters, job: Job, now: SystemTime) -> JobOutput {
    match job {
        Job::Enroll(input) => JobOutput::Enrolled(enroll(store, &input, now)),
        Job::CheckinStart(input) => {
            JobOutput::CheckinStarted(Box::new(checkin_start(store, remotes, &input, now)))
        }
        Job::OutputKeys { agent_id, policy } => JobOutput::OutputKeys(
            store
                .agent(&agent_id)
                .map_err(store_error)
                .and_then(|agent| agent.ok_or(ApiError::AgentNotFound))
                .and_then(|agent| ensure_output_keys(store, remotes, &agent, &policy, now)),
        ),
        Job::Ack(input) => JobOutput::Acked(ack(store, remotes, &input, now)),
        Job::AuditUnenroll(input) => {
            JobOutput::Audited(super::ops::audit::audit_unenroll(store, &input, now))
        }
        Job::Authenticate(key) => JobOutput::Authenticated(authenticate(store, &key).is_ok()),
        Job::WriteCheckins(batch) => write_checkins(store, batch),
        Job::OpAmp(input) => JobOutput::OpAmp(super::ops::opamp::opamp_message(store, &input, now)),
        Job::OpAmpConnect { key, accept } => JobOutput::OpAmpConnected(
            super::ops::opamp::authenticate_opamp(store, &key).map(|()| (accept, key)),
        ),
        Job::Admin(_) => JobOutput::Admin(
            404,
            serde_json::json!({"statusCode": 404, "error": "Not Found", "message": "this store has no management API"}),
        ),
    }
}

fn write_checkins(store: &dyn Store, batch: Vec<(String, CheckinWrite)>) -> JobOutput {
    match store.update_agents(&batch) {
        Ok(results) => {
            // A missing agent (deleted meanwhile) is dropped; only unavailability is retried.
            let retry: Vec<_> = batch
                .into_iter()
                .zip(results)
                .filter(|(_, r)| {
                    matches!(
                        r,
                        Err(StoreError::Unavailable(_) | StoreError::TooManyRequests)
                    )
                })
                .map(|(entry, _)| entry)
                .collect();
            JobOutput::CheckinsWritten { retry, error: None }
        }
        Err(error) => JobOutput::CheckinsWritten {
            retry: batch,
            error: Some(error),
        },
    }
}

/// Prepares a policy revision with its secrets resolved.
pub fn prepare_policy(store: &dyn Store, doc: &PolicyDoc) -> Result<PreparedPolicy, String> {
    let mut secrets = HashMap::new();
    for id in referenced_ids(&doc.data) {
        match store.secret(&id) {
            Ok(Some(value)) => {
                secrets.insert(id, value);
            }
            Ok(None) => log::warn!("policy {} references unknown secret {id}", doc.policy_id),
            Err(e) => return Err(format!("reading secret {id}: {e}")),
        }
    }
    PreparedPolicy::prepare_with(doc, &secrets, store.mints_output_keys())
        .map_err(|e| e.to_string())
}

/// §3.12: inline secret references in an action's `data` are resolved for live dispatch (the
/// pending-query path delivers `data` as stored, as Fleet Server does).
pub fn resolve_action_secrets(store: &dyn Store, mut action: Action) -> Action {
    let ids: Vec<String> = action
        .other
        .get("secret_references")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        return action;
    }
    let mut secrets = HashMap::new();
    for id in ids {
        match store.secret(&id) {
            Ok(Some(value)) => {
                secrets.insert(id, value);
            }
            Ok(None) => log::warn!("action {} references unknown secret {id}", action.action_id),
            Err(e) => log::warn!("action {}: reading secret {id}: {e}", action.action_id),
        }
    }
    crate::core::secrets::resolve_inline(&mut action.data, &secrets);
    action
}

/// Longest a store probe takes, and longest pause between two, while the store is away.
const PROBE_BUDGET: Duration = Duration::from_secs(1);

fn monitor(
    store: &dyn Store,
    remotes: &RemoteClusters,
    events: &Sender<Event>,
    notify: &Notify,
    wait: Duration,
) {
    let mut cursor: Option<Cursor> = None;
    let mut reachable = true;
    let mut backoff = Duration::from_millis(500);
    loop {
        let since = cursor.unwrap_or(Cursor::START);
        // While the store is away, each look is a short probe that returns as soon as it
        // answers (no long wait, retries bounded), so recovery is seen within about a second.
        let read = || {
            store.changes(
                since,
                SystemTime::now(),
                if reachable { wait } else { Duration::ZERO },
            )
        };
        let result = if reachable {
            read()
        } else {
            super::deadline::within(Instant::now() + PROBE_BUDGET, read)
        };
        let changes = match result {
            Ok(c) => c,
            Err(e) => {
                if reachable {
                    log::warn!("store change feed failed ({e}); retrying");
                    reachable = false;
                    if events.send(Event::StoreReachable(false)).is_err() {
                        return;
                    }
                    notify();
                }
                // The monitor thread may wait: it owns nothing the loop needs.
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(PROBE_BUDGET);
                continue;
            }
        };
        backoff = Duration::from_millis(500);
        if !reachable {
            reachable = true;
            if events.send(Event::StoreReachable(true)).is_err() {
                return;
            }
        }
        let mut newest: HashMap<&str, &PolicyDoc> = HashMap::new();
        for doc in &changes.policies {
            let entry = newest.entry(doc.policy_id.as_str()).or_insert(doc);
            if doc.revision_idx > entry.revision_idx {
                *entry = doc;
            }
        }
        for doc in newest.into_values() {
            let event = match prepare_policy(store, doc) {
                Ok(p) => {
                    // Keys made on a remote output's cluster can be invalidated later by the
                    // configuration hash agent documents keep.
                    for remote in p.es_outputs.iter().filter_map(|o| o.remote.as_ref()) {
                        remotes.learn(remote);
                    }
                    Event::Policy(Arc::new(p))
                }
                Err(reason) => Event::PolicyRejected {
                    policy_id: doc.policy_id.clone(),
                    revision: doc.revision_idx,
                    reason,
                },
            };
            if events.send(event).is_err() {
                return;
            }
        }
        // Actions present before this server started reach agents through the pending query;
        // only documents written while running are dispatched live.
        if cursor.is_some() && !changes.actions.is_empty() {
            let actions = changes
                .actions
                .into_iter()
                .map(|a| resolve_action_secrets(store, a))
                .collect();
            if events.send(Event::Actions(actions)).is_err() {
                return;
            }
        }
        if let Some(next) = changes.cursor {
            cursor = Some(next);
        } else if cursor.is_none() {
            cursor = Some(Cursor::START);
        }
        notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryStore;
    use serde_json::json;

    #[test]
    fn live_actions_get_inline_secrets_resolved() {
        let store = MemoryStore::new();
        store.add_secret("tok", "s3cret").unwrap();
        let mut action = Action {
            action_id: "a".into(),
            action_type: "INPUT_ACTION".into(),
            data: json!({"auth": "Bearer $co.elastic.secret{tok}", "unknown": "$co.elastic.secret{nope}"}),
            ..Action::default()
        };
        action.other.insert(
            "secret_references".into(),
            json!([{"id": "tok"}, {"id": "nope"}]),
        );
        let resolved = resolve_action_secrets(&store, action.clone());
        assert_eq!(resolved.data["auth"], "Bearer s3cret");
        assert_eq!(
            resolved.data["unknown"], "$co.elastic.secret{nope}",
            "unknown id left in place"
        );
        action.other.clear();
        assert_eq!(
            resolve_action_secrets(&store, action.clone()).data,
            action.data,
            "no references, untouched"
        );
    }
}
