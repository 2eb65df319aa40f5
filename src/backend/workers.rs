//! Backend threads (DESIGN.md §1): a bounded job queue served by a few worker threads running
//! the blocking operations of `ops` (sharing one registry of remote clusters, `remote.rs`) and
//! the loop's periodic chores ([`Task`]s), and the change feed relayed as events (`relay.rs`):
//! by the store's own followers when it has them (Elasticsearch), else by one monitor thread.
//! Results and events come back over channels; `notify` (a mio Waker in practice; this module
//! does not import mio) tells the event loop to drain them. A full queue is refused at once so
//! the loop can answer 503 instead of blocking. Workers and monitor share one [`CachedAuth`] over
//! the store, so API keys are checked against the store once per TTL, not once per request.
//! [`Backend::shutdown`] (or dropping it) stops the feed and joins every thread it started.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::auth_cache::{AuthCacheSettings, CachedAuth};
use super::ops::ack::ack;
use super::ops::authenticate;
use super::ops::checkin::checkin_start;
use super::ops::enroll::enroll;
use super::ops::outputs::ensure_output_keys;
use super::remote::{RemoteClusters, RemoteSettings};
use super::{CheckinWrite, OpError, Store, StoreError};

use super::interface::{Event, Job, JobOutput, Reply};

pub use super::relay::Notify;

/// Work a backend thread runs for the loop that answers nobody (a periodic chore).
pub type Task = Arc<dyn Fn() + Send + Sync>;

mod queue;
mod runs;

use queue::JobsTx;
use runs::{run_admitted, take_run, Batched};

/// What the job queue carries.
enum Work<T> {
    /// A job, where its reply goes, and by when it must be answered.
    Job(T, Job, Instant),
    Task(Task),
    /// Writing jobs taken from the queue together (never sent; see [`take_run`]).
    Run(Vec<((T, Instant), Batched)>),
}

/// Handle held by the event loop.
pub struct Backend<T> {
    /// `None` once shut down: the workers finish the queue and exit.
    jobs: Option<JobsTx<Work<T>>>,
    admission: Arc<super::admission::Admission>,
    job_timeout: Duration,
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
    /// File transfer (uploads) settings.
    pub files: super::files::FileSettings,
    /// Deadline of a job submitted without one (`--backend-timeout`).
    pub job_timeout: Duration,
}

impl Default for BackendSettings {
    fn default() -> Self {
        Self {
            workers: 4,
            queue: 4096,
            feed_wait: Duration::from_secs(1),
            remote: RemoteSettings::default(),
            auth_cache: AuthCacheSettings::default(),
            files: super::files::FileSettings::default(),
            job_timeout: Duration::from_secs(10),
        }
    }
}

impl<T: Send + 'static> Backend<T> {
    /// Starts the workers and the monitor over `store`, behind the API-key cache.
    pub fn start(
        store: Arc<dyn Store>,
        admin: Option<Arc<dyn super::admin::Admin>>,
        notify: Notify,
        settings: BackendSettings,
    ) -> std::io::Result<Self> {
        let cache = Arc::new(CachedAuth::new(store, settings.auth_cache));
        let store: Arc<dyn Store> = cache.clone();
        let (jobs_tx, jobs_rx) = queue::job_queue::<Work<T>>(settings.queue);
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
        let mut backend = Self {
            jobs: Some(jobs_tx),
            admission: Arc::clone(&admission),
            job_timeout: settings.job_timeout,
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
            let admission = Arc::clone(&admission);
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
                        let (to, job, deadline) = match next {
                            Ok(Work::Job(to, job, deadline)) => (to, job, deadline),
                            Ok(Work::Run(batch)) => {
                                for reply in run_admitted(&*store, &remotes, &admission, batch) {
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
                        if matches!(job, Job::Enroll(_)) {
                            crate::panics::failpoint("worker-panic-on-enroll");
                        }
                        let kind = super::admission::Kind::of(&job);
                        admission.started(kind);
                        let began = Instant::now();
                        // Past its deadline already: answered 503 without touching the store.
                        let job = match super::admission::expired(job, began >= deadline) {
                            Ok(output) => {
                                admission.finished(kind, None);
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
                            (Job::Admin(work), Some(admin)) if work.respond(&**admin).is_some() => {
                                match work.respond(&**admin) {
                                    Some(response) => JobOutput::File(response),
                                    None => JobOutput::Admin(500, serde_json::Value::Null),
                                }
                            }
                            (Job::Admin(work), Some(admin)) => {
                                let run = || work.run(&**admin, SystemTime::now());
                                // Revoking a token invalidates its key behind the cache's back.
                                let (status, body) = match work.revokes() {
                                    Some(id) => cache.invalidating(&[id.to_owned()], run),
                                    None => run(),
                                };
                                JobOutput::Admin(status, body)
                            }
                            (job, _) => {
                                run(&*store, &remotes, job, &settings.files, SystemTime::now())
                            }
                        };
                        admission.finished(kind, Some(began.elapsed()));
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

    /// Queues a job due within the backend timeout; gives it back when it is refused.
    pub fn submit(&self, to: T, job: Job) -> Result<(), Box<(T, Job)>> {
        self.submit_by(to, job, Instant::now() + self.job_timeout)
    }

    /// Queues a job that must be answered by `deadline`; gives it back when the queue is full,
    /// the workers are gone, or the jobs ahead of it cannot drain before `deadline`.
    pub fn submit_by(&self, to: T, job: Job, deadline: Instant) -> Result<(), Box<(T, Job)>> {
        let Some(jobs) = &self.jobs else {
            return Err(Box::new((to, job)));
        };
        let kind = super::admission::Kind::of(&job);
        if !self.admission.admit(kind, Instant::now(), deadline) {
            return Err(Box::new((to, job)));
        }
        match jobs.try_send(Work::Job(to, job, deadline)) {
            Ok(()) => Ok(()),
            Err(work) => {
                self.admission.withdraw(kind);
                match work {
                    Work::Job(to, job, _) => Err(Box::new((to, job))),
                    // What was sent is a job: nothing else can come back from this send.
                    Work::Task(_) | Work::Run(_) => Ok(()),
                }
            }
        }
    }

    /// The job queue: items waiting now, most that waited at once, items queued since the
    /// start (jobs and chores; the monitoring endpoint's figures).
    pub fn queue_figures(&self) -> (usize, usize, u64) {
        self.jobs.as_ref().map_or((0, 0, 0), JobsTx::figures)
    }

    /// Deadline of a job submitted without one.
    pub fn job_timeout(&self) -> Duration {
        self.job_timeout
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
pub fn run(
    store: &dyn Store,
    remotes: &RemoteClusters,
    job: Job,
    files: &super::files::FileSettings,
    now: SystemTime,
) -> JobOutput {
    match job {
        Job::Enroll(input) => JobOutput::Enrolled(enroll(store, &input, now)),
        Job::CheckinStart(input) => {
            JobOutput::CheckinStarted(Box::new(checkin_start(store, remotes, &input, now)))
        }
        Job::OutputKeys { agent_id, policy } => JobOutput::OutputKeys(
            store
                .agent(&agent_id)
                .map_err(OpError::from)
                .and_then(|agent| agent.ok_or(OpError::AgentNotFound))
                .and_then(|agent| ensure_output_keys(store, remotes, &agent, &policy, now)),
        ),
        Job::Ack(input) => JobOutput::Acked(ack(store, remotes, &input, now)),
        Job::AuditUnenroll(input) => {
            JobOutput::Audited(super::ops::audit::audit_unenroll(store, &input, now))
        }
        Job::Authenticate(key) => JobOutput::Authenticated(authenticate(store, &key).is_ok()),
        Job::WriteCheckins(batch) => write_checkins(store, batch),
        Job::OpAmp(input) => JobOutput::OpAmp(super::ops::opamp::opamp_message(store, &input, now)),
        Job::UploadBegin(input) => {
            JobOutput::Upload(super::ops::uploads::begin(store, &input, files, now))
        }
        Job::UploadChunk(input) => {
            JobOutput::Upload(super::ops::uploads::chunk(store, &input, now))
        }
        Job::UploadComplete(input) => {
            JobOutput::Upload(super::ops::uploads::complete(store, &input, now))
        }
        Job::ReadPart(part) => JobOutput::Part(super::delivery::read_part(store, &part)),
        Job::Deliver(input) => JobOutput::Delivered(super::ops::delivery::deliver(store, &input)),
        Job::OpAmpConnect { key, accept } => JobOutput::OpAmpConnected(
            super::ops::opamp::authenticate_opamp(store, &key).map(|()| (accept, key)),
        ),
        Job::Artifact(input, cache) => {
            JobOutput::Artifact(super::ops::artifacts::artifact_download(
                store,
                &cache,
                &input,
                std::time::Instant::now(),
            ))
        }
        Job::PgpKey(source) => JobOutput::PgpKey(source.key().map_err(|e| e.to_string())),
        Job::Download(request) => {
            let found = crate::files::mirror::open(&request.root, &request.path);
            JobOutput::Download(Box::new((request, found)))
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryStore;

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
}
