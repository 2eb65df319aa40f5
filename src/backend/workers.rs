//! Backend threads (DESIGN.md §1): a bounded job queue served by a few worker threads running
//! the blocking operations of `ops` (sharing one registry of remote clusters, `remote.rs`) and
//! the loop's periodic chores ([`Task`]s), and the change feed relayed as events (`relay.rs`):
//! by the store's own followers when it has them (Elasticsearch), else by one monitor thread.
//! Results and events come back over channels; `notify` (a mio Waker in practice; this module
//! does not import mio) tells the event loop to drain them. A full queue is refused at once so
//! the loop can answer 503 instead of blocking. Workers and monitor share one [`CachedAuth`] over
//! the store, so API keys are checked against the store once per TTL, not once per request.
//! [`Backend::shutdown`] (or dropping it) stops the feed and joins every thread it started.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::auth_cache::{AuthCacheSettings, CachedAuth};
use super::ops::ack::{ack, AckInput, AckOutcome};
use super::ops::checkin::{checkin_start, CheckinInput, CheckinStart};
use super::ops::enroll::{enroll, EnrollInput};
use super::ops::outputs::ensure_output_keys;
use super::ops::{authenticate, store_error};
use super::remote::{RemoteClusters, RemoteSettings};
use super::{ApiKey, CheckinWrite, Store, StoreError};
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

/// Work a backend thread runs for the loop that answers nobody (a periodic chore).
pub type Task = Arc<dyn Fn() + Send + Sync>;

/// What the job queue carries.
enum Work<T> {
    Job(T, Job),
    Task(Task),
    /// Writing jobs taken from the queue together (never sent; see [`take_run`]).
    Run(Vec<(T, Batched)>),
}

/// A job that may run in a batch: its writes can share commits.
#[derive(Debug)]
enum Batched {
    Ack(AckInput),
    Enroll(EnrollInput),
}

/// A job sorted by whether it may run in a batch.
enum Sorted {
    Batched(Batched),
    Alone(Job),
}

impl Batched {
    fn of(job: Job) -> Sorted {
        match job {
            Job::Ack(input) => Sorted::Batched(Batched::Ack(input)),
            Job::Enroll(input) => Sorted::Batched(Batched::Enroll(input)),
            other => Sorted::Alone(other),
        }
    }

    fn into_job(self) -> Job {
        match self {
            Batched::Ack(input) => Job::Ack(input),
            Batched::Enroll(input) => Job::Enroll(input),
        }
    }

    /// Not a second ack of the same agent, nor a second enroll with the same enrollment id,
    /// as a job already in `run`.
    fn fits<T>(&self, run: &[(T, Batched)]) -> bool {
        run.iter().all(|(_, other)| match (self, other) {
            (Batched::Ack(a), Batched::Ack(b)) => a.agent_id != b.agent_id,
            (Batched::Enroll(a), Batched::Enroll(b)) => {
                a.enrollment_id.is_none() || a.enrollment_id != b.enrollment_id
            }
            _ => true,
        })
    }

    fn run(&self, store: &dyn Store, remotes: &RemoteClusters, now: SystemTime) -> JobOutput {
        match self {
            Batched::Ack(input) => JobOutput::Acked(ack(store, remotes, input, now)),
            Batched::Enroll(input) => {
                #[cfg(debug_assertions)]
                crate::panics::failpoint_enroll();
                JobOutput::Enrolled(enroll(store, input, now))
            }
        }
    }
}

/// Most jobs run together.
const MAX_RUN: usize = 512;

/// An ack or enroll taken from the queue, with the acks and enrolls queued behind it (at most
/// [`MAX_RUN`] jobs taken in all): they run as one batch whose store writes share commits
/// ([`run_batch`]). Other work taken on the way (checkin starts, tasks, a second job of the same
/// agent) is `held`, in order, to run right after the batch.
fn take_run<T>(first: Work<T>, rx: &Receiver<Work<T>>, held: &mut VecDeque<Work<T>>) -> Work<T> {
    let Work::Job(to, job) = first else {
        return first;
    };
    let mut run = match Batched::of(job) {
        Sorted::Batched(batched) => vec![(to, batched)],
        Sorted::Alone(job) => return Work::Job(to, job),
    };
    let mut taken = 1;
    while taken < MAX_RUN {
        let Ok(work) = rx.try_recv() else {
            break;
        };
        taken += 1;
        match work {
            Work::Job(to, job) => match Batched::of(job) {
                Sorted::Batched(batched) if batched.fits(&run) => run.push((to, batched)),
                Sorted::Batched(batched) => held.push_back(Work::Job(to, batched.into_job())),
                Sorted::Alone(job) => held.push_back(Work::Job(to, job)),
            },
            other => held.push_back(other),
        }
    }
    if run.len() == 1 {
        let (to, batched) = run.remove(0);
        return Work::Job(to, batched.into_job());
    }
    Work::Run(run)
}

/// Runs a batch of acks and enrolls with their store writes deferred ([`super::deferred`]):
/// every job runs, then every deferred write is waited for, so a batch costs about one commit
/// instead of one or two per job, and nothing is answered before its writes are durable. A job
/// whose deferred writes failed is run again on its own and answered with what that run says (a
/// policy ack rewrites the same fields; an enroll makes a new key and agent, and the first
/// attempt's key, if its commit went through, is left unused).
fn run_batch<T>(
    store: &dyn Store,
    remotes: &RemoteClusters,
    batch: Vec<(T, Batched)>,
    now: SystemTime,
) -> Vec<Reply<T>> {
    let ran: Vec<_> = batch
        .into_iter()
        .map(|(to, job)| {
            let (output, deferred) = super::deferred::collect(|| job.run(store, remotes, now));
            (to, job, output, deferred)
        })
        .collect();
    ran.into_iter()
        .map(|(to, job, output, deferred)| {
            let output = match deferred.wait() {
                Ok(()) => output,
                Err(_) => job.run(store, remotes, now),
            };
            Reply { to, output }
        })
        .collect()
}

/// Handle held by the event loop.
pub struct Backend<T> {
    /// `None` once shut down: the workers finish the queue and exit.
    jobs: Option<SyncSender<Work<T>>>,
    /// Job results.
    pub replies: Receiver<Reply<T>>,
    /// Store changes.
    pub events: Receiver<Event>,
    store: Arc<dyn Store>,
    /// Dropping it stops the monitor thread.
    stop_monitor: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

/// Sizing of the backend threads.
#[derive(Clone, Copy, Debug)]
pub struct BackendSettings {
    /// Worker threads.
    pub workers: usize,
    /// Jobs that may wait in the queue.
    pub queue: usize,
    /// Longest a change-feed read of the monitor thread blocks: how long stopping it may take
    /// (a read returns at once when something changed; stores with followers of their own do
    /// not use it).
    pub feed_wait: Duration,
    /// The remote clusters of `remote_elasticsearch` outputs.
    pub remote: RemoteSettings,
    /// The API-key cache every worker authenticates through.
    pub auth_cache: AuthCacheSettings,
}

impl Default for BackendSettings {
    fn default() -> Self {
        Self {
            workers: 4,
            queue: 4096,
            feed_wait: Duration::from_secs(1),
            remote: RemoteSettings::default(),
            auth_cache: AuthCacheSettings::default(),
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
        let (jobs_tx, jobs_rx) = mpsc::sync_channel::<Work<T>>(settings.queue);
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
        let mut backend = Self {
            jobs: Some(jobs_tx),
            replies,
            events,
            store: Arc::clone(&store),
            stop_monitor: None,
            threads: Vec::new(),
        };
        for i in 0..settings.workers.max(1) {
            let store = Arc::clone(&store);
            let remotes = Arc::clone(&remotes);
            let cache = Arc::clone(&cache);
            let admin = admin.clone();
            let jobs_rx = Arc::clone(&jobs_rx);
            let reply_tx: Sender<Reply<T>> = reply_tx.clone();
            let notify = Arc::clone(&notify);
            let worker = std::thread::Builder::new()
                .name(format!("fleet-edge-backend-{i}"))
                .spawn(move || {
                    let mut held = VecDeque::new();
                    loop {
                        let next = match held.pop_front() {
                            Some(work) => Ok(work),
                            None => match jobs_rx.lock() {
                                Ok(rx) => rx.recv().map(|first| take_run(first, &rx, &mut held)),
                                Err(_) => return,
                            },
                        };
                        let (to, job) = match next {
                            Ok(Work::Job(to, job)) => (to, job),
                            Ok(Work::Run(batch)) => {
                                for reply in run_batch(&*store, &remotes, batch, SystemTime::now())
                                {
                                    if reply_tx.send(reply).is_err() {
                                        return;
                                    }
                                }
                                notify();
                                continue;
                            }
                            Ok(Work::Task(task)) => {
                                task();
                                continue;
                            }
                            Err(_) => return,
                        };
                        #[cfg(debug_assertions)]
                        crate::panics::failpoint(&job);
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
                        if reply_tx.send(Reply { to, output }).is_err() {
                            return;
                        }
                        notify();
                    }
                })?;
            backend.threads.push(worker);
        }
        let relay = Arc::new(super::relay::Relay::new(
            Arc::clone(&store),
            remotes,
            event_tx,
            notify,
        ));
        if store.follow(Arc::clone(&relay) as Arc<dyn super::relay::FeedSink>) {
            let store = Arc::clone(&store);
            backend.submit_task(Arc::new(move || store.catch_up()));
        } else {
            let (stop, stopped) = mpsc::channel();
            let monitor_store = Arc::clone(&store);
            let monitor = std::thread::Builder::new()
                .name("fleet-edge-monitor".into())
                .spawn(move || {
                    super::relay::monitor(&*monitor_store, &*relay, &stopped, settings.feed_wait)
                })?;
            backend.stop_monitor = Some(stop);
            backend.threads.push(monitor);
        }
        Ok(backend)
    }

    /// Queues a job; gives it back when the queue is full or the workers are gone.
    pub fn submit(&self, to: T, job: Job) -> Result<(), Box<(T, Job)>> {
        let Some(jobs) = &self.jobs else {
            return Err(Box::new((to, job)));
        };
        match jobs.try_send(Work::Job(to, job)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(work) | TrySendError::Disconnected(work)) => match work {
                Work::Job(to, job) => Err(Box::new((to, job))),
                // What was sent is a job: nothing else can come back from this send.
                Work::Task(_) | Work::Run(_) => Ok(()),
            },
        }
    }

    /// Queues a task for a worker; false when the queue is full or the workers are gone.
    pub fn submit_task(&self, task: Task) -> bool {
        self.jobs
            .as_ref()
            .is_some_and(|jobs| jobs.try_send(Work::Task(task)).is_ok())
    }

    /// Stops the change feed (nothing is relayed after this), lets the workers finish the jobs
    /// already queued, and joins every thread this backend started.
    pub fn shutdown(mut self) {
        self.stop();
    }
}

impl<T> Backend<T> {
    fn stop(&mut self) {
        self.store.unfollow();
        self.jobs = None;
        self.stop_monitor = None;
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                log::error!("a backend thread panicked");
            }
        }
    }
}

impl<T> Drop for Backend<T> {
    fn drop(&mut self) {
        self.stop();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryStore;
    use serde_json::json;

    #[test]
    fn shutdown_joins_every_thread_after_the_queued_work() {
        let store = Arc::new(MemoryStore::new());
        let backend = Backend::<u32>::start(
            Arc::clone(&store) as Arc<dyn Store>,
            None,
            Arc::new(|| {}),
            BackendSettings {
                workers: 2,
                ..BackendSettings::default()
            },
        )
        .unwrap();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        assert!(backend.submit_task(Arc::new(move || {
            flag.store(true, std::sync::atomic::Ordering::SeqCst)
        })));
        backend.shutdown();
        assert!(
            ran.load(std::sync::atomic::Ordering::SeqCst),
            "queued work ran"
        );
        // The workers and the monitor each held the store: all of them have ended.
        assert_eq!(Arc::strong_count(&store), 1);
    }

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

#[cfg(test)]
mod ack_run_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::backend::local::LocalStore;
    use crate::backend::NewApiKey;
    use crate::model::Agent;
    use crate::tls::test_support::TempDir;
    use serde_json::json;

    fn ack_of(key: &ApiKey, agent: &str, revision: i64) -> AckInput {
        AckInput {
            key: key.clone(),
            agent_id: agent.into(),
            body: serde_json::to_vec(&json!({"events": [{
                "action_id": format!("policy:p:{revision}"), "agent_id": agent,
                "type": "ACTION_RESULT", "subtype": "ACKNOWLEDGED"}]}))
            .unwrap(),
        }
    }

    /// a0's key id with a wrong secret.
    fn forged_key(store: &LocalStore) -> ApiKey {
        let agent = store.agent("a0").unwrap().unwrap();
        ApiKey {
            id: agent.access_api_key_id,
            secret: "not-the-secret".into(),
        }
    }

    #[test]
    fn a_run_of_acks_and_enrolls_shares_commits_and_answers_each() {
        let dir = TempDir::new("ack-run");
        let store = LocalStore::open(dir.path()).unwrap();
        let mut batch = Vec::new();
        for i in 0..20 {
            let id = format!("a{i}");
            let key = store
                .create_api_key(&NewApiKey {
                    name: id.clone(),
                    role_descriptors: json!({}),
                    metadata: json!({}),
                })
                .unwrap();
            store
                .create_agent(&Agent {
                    id: id.clone(),
                    active: true,
                    access_api_key_id: key.id.clone(),
                    agent: Some(crate::model::AgentInfo {
                        id: id.clone(),
                        version: "9.2.1".into(),
                        kind: String::new(),
                    }),
                    policy_id: "p".into(),
                    policy_revision_idx: 1,
                    ..Agent::default()
                })
                .unwrap();
            batch.push((i, Batched::Ack(ack_of(&key, &id, 3))));
        }
        // A wrong key is refused as on its own, and does not disturb the run.
        batch.push((99, Batched::Ack(ack_of(&forged_key(&store), "a0", 3))));
        // Enrolls share the run: each gets its key and agent, durable before the answer.
        store
            .add_policy(crate::model::PolicyDoc {
                policy_id: "p".into(),
                revision_idx: 1,
                data: json!({"id": "p", "revision": 1, "inputs": [],
                    "outputs": {"default": {"type": "elasticsearch", "hosts": ["https://es:9200"]}},
                    "output_permissions": {"default": {"x": {"cluster": ["monitor"]}}}}),
                ..crate::model::PolicyDoc::default()
            })
            .unwrap();
        let token = store.add_enrollment_key("p", "run").unwrap();
        for i in 0..5 {
            batch.push((
                100 + i,
                Batched::Enroll(EnrollInput {
                    key: token.clone(),
                    agent_version: Ok("9.2.1".into()),
                    body: br#"{"type":"PERMANENT","metadata":{"local":{},"tags":[]}}"#.to_vec(),
                    pbkdf2_iterations: 1000,
                    enrollment_id: None,
                }),
            ));
        }
        let before = store.commit_stats();
        let replies = run_batch(
            &store,
            &crate::backend::ops::testkit::remotes(),
            batch,
            SystemTime::now(),
        );
        let commits = store.commit_stats().commits - before.commits;
        assert_eq!(replies.len(), 26);
        for reply in &replies {
            match (&reply.to, &reply.output) {
                (99, JobOutput::Acked(out)) => assert!(out.is_err(), "forged key: {out:?}"),
                (_, JobOutput::Acked(Ok(out))) => assert_eq!(out.status, 200, "{out:?}"),
                (_, JobOutput::Enrolled(Ok(body))) => {
                    let id = body["item"]["id"].as_str().unwrap();
                    let agent = store.agent(id).unwrap().expect("agent durable");
                    let key = store.authenticate(&ApiKey {
                        id: agent.access_api_key_id.clone(),
                        secret: "wrong".into(),
                    });
                    assert!(matches!(key, Ok(None)), "its key is stored: {key:?}");
                }
                (to, other) => panic!("{to}: {other:?}"),
            }
        }
        assert!(
            commits <= 4,
            "20 policy acks and 5 enrolls took {commits} commits"
        );
        for i in 0..20 {
            let agent = store.agent(&format!("a{i}")).unwrap().unwrap();
            assert_eq!(
                agent.policy_revision_idx, 3,
                "a{i} durable before its answer"
            );
        }
    }

    #[test]
    fn acks_and_enrolls_queued_together_are_taken_as_one_run() {
        let (tx, rx) = mpsc::sync_channel::<Work<u32>>(16);
        let key = ApiKey {
            id: "k".into(),
            secret: "s".into(),
        };
        let enroll_of = |id: Option<&str>| {
            Job::Enroll(EnrollInput {
                key: key.clone(),
                agent_version: Ok("9.2.1".into()),
                body: Vec::new(),
                pbkdf2_iterations: 1000,
                enrollment_id: id.map(str::to_owned),
            })
        };
        let queued = [
            (2, Job::Ack(ack_of(&key, "a2", 2))),
            (3, enroll_of(Some("e1"))),
            (4, enroll_of(None)),
            (5, enroll_of(None)),
            (6, Job::Ack(ack_of(&key, "a3", 2))),
            (7, Job::Ack(ack_of(&key, "a2", 2))),
            (8, Job::Ack(ack_of(&key, "a8", 2))),
        ];
        for (to, job) in queued {
            assert!(tx.try_send(Work::Job(to, job)).is_ok());
        }
        let mut held = VecDeque::new();
        let first = Work::Job(1, Job::Ack(ack_of(&key, "a1", 2)));
        match take_run(first, &rx, &mut held) {
            Work::Run(run) => {
                let tos: Vec<u32> = run.iter().map(|(to, _)| *to).collect();
                assert_eq!(tos, [1, 2, 3, 4, 5, 6, 8], "a second ack of a2 waits");
            }
            _ => panic!("not a run"),
        }
        assert_eq!(held.len(), 1);
        assert!(matches!(held.pop_front(), Some(Work::Job(7, Job::Ack(_)))));
        // Other work and a second enroll with the same enrollment id wait, in order.
        assert!(tx.try_send(Work::Job(10, enroll_of(Some("e1")))).is_ok());
        assert!(tx
            .try_send(Work::Job(11, Job::Authenticate(key.clone())))
            .is_ok());
        assert!(tx.try_send(Work::Job(12, enroll_of(None))).is_ok());
        let run = take_run(Work::Job(9, enroll_of(Some("e1"))), &rx, &mut held);
        assert!(
            matches!(run, Work::Run(ref r) if r.len() == 2),
            "12 joins 9"
        );
        let held_tos: Vec<u32> = held
            .iter()
            .map(|w| match w {
                Work::Job(to, _) => *to,
                _ => 0,
            })
            .collect();
        assert_eq!(held_tos, [10, 11]);
        // A lone job stays a plain job and takes nothing else.
        let mut held = VecDeque::new();
        assert!(tx.try_send(Work::Job(14, enroll_of(None))).is_ok());
        let lone = take_run(
            Work::Job(13, Job::Authenticate(key.clone())),
            &rx,
            &mut held,
        );
        assert!(matches!(lone, Work::Job(13, Job::Authenticate(_))) && held.is_empty());
        assert!(matches!(
            take_run(Work::Job(15, enroll_of(None)), &rx, &mut held),
            Work::Run(ref r) if r.len() == 2
        ));
        assert!(matches!(
            take_run(Work::Job(16, enroll_of(None)), &rx, &mut held),
            Work::Job(16, Job::Enroll(_))
        ));
        assert!(held.is_empty());
    }
}
