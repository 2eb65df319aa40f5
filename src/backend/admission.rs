//! Admission to the backend queue and what a job past its deadline answers (issue 15 §1).
//!
//! Every job carries the deadline of the request it serves. [`Admission`] counts the jobs
//! waiting and running and keeps a moving average of how long jobs take (measured by the
//! workers); a job is refused at once — the event loop answers 503 with `Retry-After` — when
//! the jobs ahead of it cannot drain before its deadline. A job whose deadline has already
//! passed when a worker takes it is not run: [`expired`] gives its 503 answer without touching
//! the store. While Elasticsearch is away every job runs until its deadline, the average
//! climbs to that, and all but a few workers' worth of requests are answered at once instead
//! of waiting in the queue for an answer that would come too late.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::interface::{Job, JobOutput};
use super::{OpError, StoreError};

/// Weight of the newest measurement in the moving average, as 1/N.
const AVERAGE_OVER: u64 = 4;

/// Jobs whose durations differ by orders of magnitude are averaged apart, so that one kind's
/// samples do not price the queue of another: a bulk checkin write (one job, hundreds of
/// agents and a commit) must not make a queue of acks look a hundred times longer than it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Acks and enrolls: a worker runs those queued together as one batch whose writes share
    /// commits (`workers/runs.rs`), so a deep queue of them drains at the batch's pace.
    Batched,
    /// The bulk checkin writer's flushes.
    Writes,
    /// Everything else.
    Other,
}

impl Class {
    /// The class of `job`.
    pub fn of(job: &Job) -> Class {
        match job {
            Job::Ack(_) | Job::Enroll(_) => Class::Batched,
            Job::WriteCheckins(_) => Class::Writes,
            _ => Class::Other,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A moving average of durations, microseconds (0 until the first sample).
#[derive(Debug, Default)]
struct Average(AtomicU64);

impl Average {
    fn add(&self, took: Duration) {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |mean| {
                Some(if mean == 0 {
                    sample
                } else {
                    mean - mean / AVERAGE_OVER + sample / AVERAGE_OVER
                })
            });
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One class's jobs: counts and measured durations.
#[derive(Debug, Default)]
struct Lane {
    /// Jobs submitted and not yet taken by a worker.
    queued: AtomicUsize,
    /// Jobs a worker is running.
    running: AtomicUsize,
    /// Durations of jobs run one at a time.
    alone: Average,
    /// Each job's share of a batch it ran in (only [`Class::Batched`] jobs run so).
    in_batch: Average,
}

impl Lane {
    fn ahead(&self) -> usize {
        self.queued.load(Ordering::Relaxed) + self.running.load(Ordering::Relaxed)
    }

    /// What a job of this lane is expected to take when `ahead` of them wait: a batch share
    /// once batches have been measured and more than one job is ahead (they will be taken
    /// together), else the duration of a job run alone.
    fn mean(&self, ahead: usize) -> u64 {
        let in_batch = self.in_batch.get();
        if ahead > 1 && in_batch > 0 {
            in_batch
        } else {
            self.alone.get()
        }
    }
}

/// The queue's occupancy and the measured job durations, shared by the submitter and the
/// workers.
#[derive(Debug)]
pub struct Admission {
    workers: usize,
    lanes: [Lane; 3],
}

impl Admission {
    /// Admission for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: workers.max(1),
            lanes: Default::default(),
        }
    }

    fn lane(&self, class: Class) -> &Lane {
        &self.lanes[class.index()]
    }

    /// How long a job submitted now would wait before a worker takes it: the jobs ahead
    /// (waiting and running) beyond one per worker, spread over the workers, each at its
    /// class's measured duration.
    pub fn expected_wait(&self) -> Duration {
        let ahead: usize = self.lanes.iter().map(Lane::ahead).sum();
        let waves = (ahead + 1).saturating_sub(self.workers) as u64;
        if waves == 0 {
            return Duration::ZERO;
        }
        // The work ahead, at each class's mean; `waves` of the `ahead` jobs must pass first.
        let work: u64 = self
            .lanes
            .iter()
            .map(|lane| {
                let n = lane.ahead();
                (n as u64).saturating_mul(lane.mean(n))
            })
            .fold(0, u64::saturating_add);
        let per_job = work / ahead.max(1) as u64;
        Duration::from_micros(per_job.saturating_mul(waves) / self.workers as u64)
    }

    /// Counts a job of `class` in when the queue ahead of it can drain before `deadline`;
    /// `false`: refuse.
    pub fn admit(&self, class: Class, now: Instant, deadline: Instant) -> bool {
        if now + self.expected_wait() >= deadline {
            return false;
        }
        self.lane(class).queued.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// An admitted job did not enter the queue after all (full, or the workers are gone).
    pub fn withdraw(&self, class: Class) {
        self.lane(class).queued.fetch_sub(1, Ordering::Relaxed);
    }

    /// A worker took a job.
    pub fn started(&self, class: Class) {
        let lane = self.lane(class);
        lane.queued.fetch_sub(1, Ordering::Relaxed);
        lane.running.fetch_add(1, Ordering::Relaxed);
    }

    /// A worker finished a job it ran alone for `took` (`None`: it was not run, its deadline
    /// had passed; that says nothing about how long jobs take).
    pub fn finished(&self, class: Class, took: Option<Duration>) {
        let lane = self.lane(class);
        lane.running.fetch_sub(1, Ordering::Relaxed);
        if let Some(took) = took {
            lane.alone.add(took);
        }
    }

    /// A worker finished a job that ran in a batch, whose time was `share` per job.
    pub fn finished_in_batch(&self, class: Class, share: Duration) {
        let lane = self.lane(class);
        lane.running.fetch_sub(1, Ordering::Relaxed);
        lane.in_batch.add(share);
    }

    /// The measured average duration of a job of `class` run alone.
    pub fn mean(&self, class: Class) -> Duration {
        Duration::from_micros(self.lane(class).alone.get())
    }
}

/// The answer of a job taken after its deadline (`late`), without running it; `Err` gives back
/// the job when it is not late or has no such answer (it runs, bounded by the deadline as every
/// job is).
pub fn expired(job: Job, late: bool) -> Result<JobOutput, Box<Job>> {
    if !late {
        return Err(Box::new(job));
    }
    Ok(match job {
        Job::Enroll(_) => JobOutput::Enrolled(Err(OpError::Unavailable)),
        Job::CheckinStart(_) => JobOutput::CheckinStarted(Box::new(Err(OpError::Unavailable))),
        Job::OutputKeys { .. } => JobOutput::OutputKeys(Err(OpError::Unavailable)),
        Job::Ack(_) => JobOutput::Acked(Err(OpError::Unavailable)),
        Job::AuditUnenroll(_) => JobOutput::Audited(Err(OpError::Unavailable)),
        Job::WriteCheckins(retry) => JobOutput::CheckinsWritten {
            retry,
            error: Some(StoreError::Unavailable(
                "the write waited in the backend queue past its deadline".into(),
            )),
        },
        other => return Err(Box::new(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_when_the_queue_ahead_cannot_drain_in_time() {
        let a = Admission::new(2);
        let now = Instant::now();
        let soon = now + Duration::from_secs(10);
        // Nothing measured yet and free workers: everything is admitted.
        for _ in 0..4 {
            assert!(a.admit(Class::Other, now, soon));
        }
        assert_eq!(a.expected_wait(), Duration::ZERO);
        // Jobs take 4 s each (Elasticsearch slow): two run, two wait.
        a.started(Class::Other);
        a.finished(Class::Other, Some(Duration::from_secs(4)));
        assert!(a.admit(Class::Other, now, soon));
        a.started(Class::Other);
        a.started(Class::Other);
        // 2 running + 2 queued on 2 workers: the next one waits (4+1-2)/2 × 4 s = 6 s.
        assert_eq!(a.expected_wait(), Duration::from_secs(6));
        assert!(
            a.admit(Class::Other, now, soon),
            "6 s of wait fits a 10 s deadline"
        );
        // Now 2 running + 3 queued: 8 s; a 5 s deadline is refused, a 10 s one is not.
        assert!(!a.admit(Class::Other, now, now + Duration::from_secs(5)));
        assert!(a.admit(Class::Other, now, soon));
        // 4 queued: 10 s, no longer fits.
        assert!(!a.admit(Class::Other, now, soon));
    }

    #[test]
    fn the_average_follows_recovery_and_ignores_expired_jobs() {
        let a = Admission::new(1);
        let now = Instant::now();
        for _ in 0..3 {
            assert!(a.admit(Class::Other, now, now + Duration::from_secs(60)));
            a.started(Class::Other);
        }
        a.finished(Class::Other, Some(Duration::from_secs(10)));
        a.finished(Class::Other, None);
        assert_eq!(
            a.mean(Class::Other),
            Duration::from_secs(10),
            "an expired job is no sample"
        );
        // Elasticsearch is back: jobs take 1 ms; the average falls below 100 ms within 20.
        a.finished(Class::Other, Some(Duration::from_millis(1)));
        for _ in 0..20 {
            a.admit(Class::Other, now, now + Duration::from_secs(60));
            a.started(Class::Other);
            a.finished(Class::Other, Some(Duration::from_millis(1)));
        }
        assert!(
            a.mean(Class::Other) < Duration::from_millis(100),
            "{:?}",
            a.mean(Class::Other)
        );
        assert_eq!(a.expected_wait(), Duration::ZERO);
    }

    /// A rollout: thousands of acks queue at once. A lone ack waiting for its own commit and a
    /// bulk checkin write do not price the queue of acks, which drains in batches.
    #[test]
    fn a_queue_of_acks_is_priced_at_the_batch_share() {
        let a = Admission::new(1);
        let now = Instant::now();
        let deadline = now + Duration::from_secs(10);
        // Measured: acks in a batch take 100 µs each; one ack ran alone for 10 ms (its own
        // two-fsync commit); a bulk write of a thousand checkins took 300 ms.
        for _ in 0..2 {
            assert!(a.admit(Class::Batched, now, deadline));
            a.started(Class::Batched);
            a.finished_in_batch(Class::Batched, Duration::from_micros(100));
        }
        assert!(a.admit(Class::Batched, now, deadline));
        a.started(Class::Batched);
        a.finished(Class::Batched, Some(Duration::from_millis(10)));
        assert!(a.admit(Class::Writes, now, deadline));
        a.started(Class::Writes);
        a.finished(Class::Writes, Some(Duration::from_millis(300)));
        // 20,000 acks fit the 10 s deadline (2 s of batches); with the lone ack's 10 ms as
        // the price, 1,000 would already have been refused.
        for n in 0..20_000 {
            assert!(a.admit(Class::Batched, now, deadline), "ack {n} refused");
        }
        assert!(
            a.expected_wait() <= Duration::from_secs(3),
            "{:?}",
            a.expected_wait()
        );
        // Batches that take long (Elasticsearch slow) are priced as they run: refused.
        for _ in 0..8 {
            a.started(Class::Batched);
            a.finished_in_batch(Class::Batched, Duration::from_millis(500));
        }
        assert!(!a.admit(Class::Batched, now, deadline));
        // Other jobs ahead are priced at their own class's duration.
        let b = Admission::new(1);
        assert!(b.admit(Class::Other, now, deadline));
        b.started(Class::Other);
        b.finished(Class::Other, Some(Duration::from_millis(2)));
        for _ in 0..3 {
            assert!(b.admit(Class::Other, now, deadline));
        }
        assert_eq!(b.expected_wait(), Duration::from_millis(6));
    }

    #[test]
    fn expired_jobs_answer_503_without_the_store() {
        let batch = || vec![("a".into(), crate::backend::CheckinWrite::default())];
        assert!(matches!(
            expired(Job::WriteCheckins(batch()), false).map_err(|j| *j),
            Err(Job::WriteCheckins(_))
        ));
        let out = expired(Job::WriteCheckins(batch()), true);
        assert!(matches!(
            out,
            Ok(JobOutput::CheckinsWritten { retry, error: Some(StoreError::Unavailable(_)) }) if retry.len() == 1
        ));
        let key = crate::backend::ApiKey {
            id: "i".into(),
            secret: "s".into(),
        };
        assert!(matches!(
            expired(Job::Authenticate(key), true).map_err(|j| *j),
            Err(Job::Authenticate(_))
        ));
    }
}
