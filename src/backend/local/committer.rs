//! Group commit: one thread owns every write transaction of the local store.
//!
//! Callers do not write; they queue a write (a closure over the transaction) and sleep until it is
//! durable. The committer takes the first queued write, drains everything queued behind it (up to
//! [`MAX_BATCH`]), applies them in order in ONE redb write transaction, commits it (two-phase,
//! `Durability::Immediate`: the commit returns after fsync), then publishes the new change-feed
//! sequences and wakes every caller with its own result. While one commit is on the disk, the
//! writes arriving meanwhile pile up and share the next one: N concurrent enrolls cost about one
//! fsync, not N.
//!
//! A write's own answer (`Conflict`, `NotFound`) does not disturb the batch: writes check before
//! they change anything. A storage failure aborts the whole transaction and every write in it
//! gets `Unavailable` (nothing of the batch was acknowledged, so retrying is safe).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use redb::{Database, WriteTransaction};

use super::agent_ids::AgentIds;
use super::error::unavailable;
use crate::backend::{Cursor, StoreError};

/// The most writes one transaction takes.
pub(super) const MAX_BATCH: usize = 1024;

/// Why one queued write did not apply.
#[derive(Debug)]
pub(super) enum WriteFault {
    /// This write's own answer (`Conflict`, `NotFound`, ...); the rest of the batch goes on.
    /// Only returned before the write changed anything.
    Answer(StoreError),
    /// The transaction is unusable: the whole batch is aborted.
    Abort(String),
}

impl<E: Into<redb::Error>> From<E> for WriteFault {
    fn from(e: E) -> Self {
        WriteFault::Abort(e.into().to_string())
    }
}

/// The transaction being built, as one queued write sees it.
pub(super) struct Batch<'t> {
    txn: &'t WriteTransaction,
    feed: Cursor,
    feed_moved: bool,
    /// Agents this batch wrote (for the listing index, `listing.rs`).
    agents: AgentIds,
}

impl<'t> Batch<'t> {
    /// The shared write transaction.
    pub fn txn(&self) -> &'t WriteTransaction {
        self.txn
    }

    /// Records that this batch wrote action `seq`: the change feed moves when it commits.
    pub fn action_written(&mut self, seq: i64) {
        self.feed.actions = self.feed.actions.max(seq);
        self.feed_moved = true;
    }

    /// Records that this batch wrote (created, changed or removed) agent `id`: the listing
    /// index re-reads it once the commit is durable.
    pub fn agent_written(&mut self, id: &str) {
        self.agents.insert(id);
    }

    /// Records that this batch wrote policy `seq`.
    pub fn policy_written(&mut self, seq: i64) {
        self.feed.policies = self.feed.policies.max(seq);
        self.feed_moved = true;
    }
}

type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A queued write: applied to the batch (or told there is none) it returns how to answer its
/// caller once the commit is known, and why the transaction must be aborted, if it must.
type Job = Box<dyn FnOnce(Option<&mut Batch<'_>>) -> (Finish, Option<String>) + Send>;

/// Commit counters, for measurement and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Write transactions committed (each one fsync round).
    pub commits: u64,
    /// Writes (trait or admin calls) made durable by them.
    pub writes: u64,
    /// Writes queued so far, durable or not yet.
    pub queued: u64,
}

/// Agents written since the listing index last looked, while it keeps one (`listing.rs`).
#[derive(Debug, Default)]
pub(super) struct AgentMarks {
    /// Whether an index exists to keep current (nothing is recorded before the first listing).
    pub tracking: bool,
    /// The agents written since the index last took the marks.
    pub ids: AgentIds,
    /// More were written than [`MAX_MARKS`]: the index is rebuilt instead.
    pub overflow: bool,
}

/// The most agent marks kept between two listings; beyond, one rebuild is cheaper and the
/// marks' memory stays bounded.
pub(super) const MAX_MARKS: usize = 20_000;

impl AgentMarks {
    fn record(&mut self, ids: AgentIds) {
        if !self.tracking || self.overflow {
            return;
        }
        self.ids.extend(ids);
        if self.ids.len() > MAX_MARKS {
            self.overflow = true;
            self.ids = Default::default();
        }
    }
}

/// State shared by the committer, the store and change-feed readers.
#[derive(Debug)]
pub(super) struct Shared {
    /// The committed change-feed sequences.
    pub feed: Mutex<Cursor>,
    /// Notified after every commit that moved `feed`.
    pub changed: Condvar,
    /// Agents written since the listing index last looked.
    pub agent_marks: Mutex<AgentMarks>,
    commits: AtomicU64,
    writes: AtomicU64,
    queued: AtomicU64,
}

impl Shared {
    /// Shared state starting at the stored sequences.
    pub fn new(feed: Cursor) -> Self {
        Shared {
            feed: Mutex::new(feed),
            changed: Condvar::new(),
            agent_marks: Mutex::new(AgentMarks::default()),
            commits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            queued: AtomicU64::new(0),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CommitStats {
        CommitStats {
            commits: self.commits.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
        }
    }
}

/// The committer thread and its queue.
#[derive(Debug)]
pub(super) struct Committer {
    /// Unbounded, so that nothing is allocated before writes arrive (a bounded std channel makes
    /// and writes all its slots up front); the writes queued are bounded by their writers: each
    /// waits for its own, or a backend worker for a run of at most `workers::MAX_RUN` jobs.
    queue: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Committer {
    /// Starts the committer thread over `db`.
    pub fn start(db: Arc<Database>, shared: Arc<Shared>) -> std::io::Result<Self> {
        let (queue, rx) = mpsc::channel();
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("local-store-commit".into())
            .spawn(move || run(&db, &rx, &for_thread))?;
        Ok(Committer {
            queue: Some(queue),
            thread: Some(thread),
            shared,
        })
    }

    /// Queues `op` and blocks until its transaction is durable (or failed); returns its result.
    pub fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Batch<'_>) -> Result<T, WriteFault> + Send + 'static,
    {
        let answer = self.submit(op)?;
        answer
            .recv()
            .map_err(|_| unavailable("the commit thread has stopped"))?
    }

    /// Queues `op` without waiting: the receiver gets its result once its transaction is
    /// durable (or failed). One thread can so put many writes into the same commit.
    pub fn submit<T, F>(&self, op: F) -> Result<Receiver<Result<T, StoreError>>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Batch<'_>) -> Result<T, WriteFault> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel::<Result<T, StoreError>>(1);
        let job: Job = Box::new(move |batch| {
            let outcome = match batch {
                Some(batch) => op(batch),
                None => Err(WriteFault::Abort("no write transaction".into())),
            };
            let abort = match &outcome {
                Err(WriteFault::Abort(detail)) => Some(detail.clone()),
                _ => None,
            };
            let finish: Finish = Box::new(move |commit| {
                let result = commit.and_then(|()| {
                    outcome.map_err(|fault| match fault {
                        WriteFault::Answer(err) => err,
                        WriteFault::Abort(detail) => unavailable(detail),
                    })
                });
                let _ = reply.send(result);
            });
            (finish, abort)
        });
        let queue = self
            .queue
            .as_ref()
            .ok_or_else(|| unavailable("the store is closing"))?;
        queue
            .send(job)
            .map_err(|_| unavailable("the commit thread has stopped"))?;
        self.shared.queued.fetch_add(1, Ordering::Relaxed);
        Ok(answer)
    }

    /// Stops commits until the returned hold is dropped: the committer applies a write that
    /// blocks until then, and every write queued meanwhile waits for the next commit. Tests use
    /// it to make "these writes share one commit" independent of thread scheduling.
    #[cfg(test)]
    pub fn hold(&self) -> Result<CommitHold, StoreError> {
        let (release, released) = mpsc::channel::<()>();
        let answer = self.submit(move |_| {
            // Any message or a dropped sender ends the hold.
            let _ = released.recv();
            Ok(())
        })?;
        Ok(CommitHold {
            _release: release,
            _answer: answer,
        })
    }
}

/// Commits are held while this lives ([`Committer::hold`]).
#[cfg(test)]
pub struct CommitHold {
    _release: Sender<()>,
    _answer: Receiver<Result<(), StoreError>>,
}

impl Drop for Committer {
    fn drop(&mut self) {
        // Closing the queue ends the thread after the writes already queued.
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(db: &Database, rx: &Receiver<Job>, shared: &Shared) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        commit_batch(db, jobs, shared);
    }
}

fn commit_batch(db: &Database, jobs: Vec<Job>, shared: &Shared) {
    let count = jobs.len() as u64;
    let mut txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => {
            log::error!("local store: cannot begin a write transaction: {e}");
            let err = unavailable(e);
            for job in jobs {
                job(None).0(Err(err.clone()));
            }
            return;
        }
    };
    // Two-phase commit: a torn commit can never leave a primary slot that fails its checksums,
    // so a checksum failure at open is real corruption, reported, never "repaired" by rolling
    // back to the previous commit.
    txn.set_two_phase_commit(true);
    let start = *shared.feed.lock().unwrap_or_else(|p| p.into_inner());
    let mut batch = Batch {
        txn: &txn,
        feed: start,
        feed_moved: false,
        agents: AgentIds::default(),
    };
    let mut finishers = Vec::with_capacity(jobs.len());
    let mut abort: Option<String> = None;
    for job in jobs {
        if abort.is_some() {
            finishers.push(job(None).0);
            continue;
        }
        let (finish, failed) = job(Some(&mut batch));
        abort = failed;
        finishers.push(finish);
    }
    let (feed, feed_moved, agents) = (batch.feed, batch.feed_moved, batch.agents);
    let outcome = match abort {
        Some(detail) => {
            log::error!("local store: write transaction aborted: {detail}");
            let _ = txn.abort();
            Err(unavailable(detail))
        }
        None => txn.commit().map_err(|e| {
            log::error!("local store: commit failed: {e}");
            unavailable(e)
        }),
    };
    if outcome.is_ok() {
        shared.commits.fetch_add(1, Ordering::Relaxed);
        shared.writes.fetch_add(count, Ordering::Relaxed);
        if feed_moved {
            // Published before the writers are answered: a caller that saw its write acknowledged
            // finds it in the change feed at once.
            *shared.feed.lock().unwrap_or_else(|p| p.into_inner()) = feed;
            shared.changed.notify_all();
        }
        if !agents.is_empty() {
            // Also before the writers are answered: the next listing shows the write.
            shared
                .agent_marks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .record(agents);
        }
    }
    for finish in finishers {
        finish(outcome.clone());
    }
}
