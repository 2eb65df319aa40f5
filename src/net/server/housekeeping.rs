//! Periodic chores of the loop that run on a backend worker (the thread budget of `lib.rs`): the
//! embedded policy-file scan and the agent-mode self-monitor are timers of this loop whose
//! expiry submits their task to the workers, instead of threads of their own that sleep. A task
//! still running when its timer fires again is not submitted a second time, and a full job queue
//! skips one period (the next one tries again); neither blocks the loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Server, TimerKey};
use crate::backend::workers::Task;

/// One periodic chore.
struct Chore {
    name: &'static str,
    every: Duration,
    task: Task,
    /// Set while the task is queued or running on a worker.
    busy: Arc<AtomicBool>,
}

/// Marks a chore idle when its run ends, even by a panic.
struct Done(Arc<AtomicBool>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Names a chore of the loop (what [`Server::every`] returns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChoreId(usize);

/// What became of a request to run a chore now.
pub(super) enum SubmitChore {
    /// Queued for a worker.
    Submitted,
    /// Still queued or running from before: not queued twice.
    Busy,
    /// The backend's job queue is full.
    QueueFull,
    /// A server without a store has no workers: the chore never runs.
    NoBackend,
}

/// The loop's chores, indexed by their [`TimerKey::Housekeeping`] number.
#[derive(Default)]
pub(super) struct Chores(Vec<Chore>);

impl Server {
    /// Runs `task` on a backend worker every `every`, the first time one period from now (a
    /// server without a store has no workers: the chore never runs).
    pub fn every(&mut self, name: &'static str, every: Duration, task: Task) -> ChoreId {
        let index = self.chores.0.len();
        self.chores.0.push(Chore {
            name,
            every,
            task,
            busy: Arc::new(AtomicBool::new(false)),
        });
        self.deadlines
            .arm(TimerKey::Housekeeping(index), Instant::now() + every);
        ChoreId(index)
    }

    /// The timer of chore `index` fired: submit its task unless it is still busy, then re-arm.
    pub(super) fn run_chore(&mut self, index: usize, now: Instant) {
        let Some(every) = self.chores.0.get(index).map(|c| c.every) else {
            return;
        };
        self.submit_chore(ChoreId(index));
        self.deadlines
            .arm(TimerKey::Housekeeping(index), now + every);
    }

    /// Submits chore `id`'s task to a worker unless it is still queued or running.
    pub(super) fn submit_chore(&mut self, id: ChoreId) -> SubmitChore {
        let (Some(chore), Some(backend)) = (self.chores.0.get(id.0), &self.backend) else {
            return SubmitChore::NoBackend;
        };
        if chore.busy.swap(true, Ordering::AcqRel) {
            return SubmitChore::Busy;
        }
        let (task, busy) = (Arc::clone(&chore.task), Arc::clone(&chore.busy));
        let run: Task = Arc::new(move || {
            let _done = Done(Arc::clone(&busy));
            task();
        });
        if backend.submit_task(run) {
            SubmitChore::Submitted
        } else {
            chore.busy.store(false, Ordering::Release);
            log::debug!("{}: backend queue full, skipping one period", chore.name);
            SubmitChore::QueueFull
        }
    }
}
