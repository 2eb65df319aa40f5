//! Admission to the backend queue and what a job past its deadline answers (issue 15 §1).
//!
//! Every job carries the deadline of the request it serves. [`Admission`] counts the jobs
//! waiting and running and keeps moving averages of how long jobs take (measured by the
//! workers), per [`Kind`]: acks and enrolls queued together run as one batch whose writes share
//! commits (`workers::runs`), so a batch costs about one job alone (its commits) plus a small
//! cost for each further job, which is a small fraction of what a bulk checkin write, an
//! authentication or a management request costs; one average over every job would let a
//! single expensive job (or the lone enrolls of a paced start) make a burst of acks look like
//! minutes of work. A job is refused at once — the event loop answers 503 with `Retry-After` —
//! when the jobs ahead of it, each at the measured cost of its kind, cannot drain before its
//! deadline. A job whose
//! deadline has already passed when a worker takes it is not run: [`expired`] gives its 503
//! answer without touching the store. While Elasticsearch is away every job runs until its
//! deadline, the averages climb to that, and all but a few workers' worth of requests are
//! answered at once instead of waiting in the queue for an answer that would come too late.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::interface::{Job, JobOutput};
use super::{OpError, StoreError};

/// Weight of the newest measurement in a moving average, as 1/N.
const AVERAGE_OVER: u64 = 4;

/// Most jobs a worker runs as one batch (`workers::runs`).
pub const MAX_RUN: usize = 512;

/// What a job costs a worker, as admission tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Acks and enrolls: the ones queued together run as one batch whose writes share commits,
    /// so a batch costs about one job's time plus a small cost for each further job.
    Batched,
    /// Everything else, run one at a time.
    Single,
}

impl Kind {
    /// The kind of `job`.
    pub fn of(job: &Job) -> Kind {
        match job {
            Job::Ack(_) | Job::Enroll(_) => Kind::Batched,
            _ => Kind::Single,
        }
    }
}

/// A moving average of durations, microseconds (0 until the first sample).
#[derive(Debug, Default)]
struct Average(AtomicU64);

impl Average {
    fn get(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|m| *m > 0)
    }

    fn sample(&self, took: Duration) {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |mean| {
                Some(if mean == 0 {
                    sample.max(1)
                } else {
                    (mean - mean / AVERAGE_OVER + sample / AVERAGE_OVER).max(1)
                })
            });
    }
}

/// Occupancy and measured durations of the jobs of one [`Kind`].
#[derive(Debug, Default)]
struct Lane {
    /// Jobs submitted and not yet taken by a worker.
    queued: AtomicUsize,
    /// Jobs a worker is running.
    running: AtomicUsize,
    /// How long a job run on its own takes (for batched jobs: a batch's fixed cost, its
    /// commits, plus one job).
    alone: Average,
    /// Batched jobs only: what each further job of a batch adds to the batch's time, measured
    /// on batches of two or more.
    further: Average,
}

impl Lane {
    fn ahead(&self) -> u64 {
        (self.queued.load(Ordering::Relaxed) + self.running.load(Ordering::Relaxed)) as u64
    }
}

/// The queue's occupancy and the measured job durations, per [`Kind`], shared by the submitter
/// and the workers.
#[derive(Debug)]
pub struct Admission {
    workers: usize,
    batched: Lane,
    single: Lane,
}

impl Admission {
    /// Admission for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: workers.max(1),
            batched: Lane::default(),
            single: Lane::default(),
        }
    }

    fn lane(&self, kind: Kind) -> &Lane {
        match kind {
            Kind::Batched => &self.batched,
            Kind::Single => &self.single,
        }
    }

    /// How long the batched jobs ahead take: a batch's fixed cost (a job alone) for every
    /// [`MAX_RUN`] of them and each one's further cost in a batch (nothing until a batch has
    /// been measured: queued together, they run together; the first batch measures it).
    fn batched_work(&self, ahead: u64) -> u128 {
        let lane = &self.batched;
        let alone = lane.alone.get().unwrap_or(0);
        let further = lane.further.get().unwrap_or(0);
        let batches = ahead.div_ceil(MAX_RUN as u64);
        u128::from(batches) * u128::from(alone) + u128::from(ahead) * u128::from(further)
    }

    /// How long a job submitted now would wait before a worker takes it: the work ahead
    /// (waiting and running), each kind at its measured cost, of which the part beyond one job
    /// per worker must drain first, spread over the workers.
    pub fn expected_wait(&self) -> Duration {
        let (batched, single) = (self.batched.ahead(), self.single.ahead());
        let ahead = batched + single;
        let waves = (ahead + 1).saturating_sub(self.workers as u64);
        if waves == 0 {
            return Duration::ZERO;
        }
        let work = self.batched_work(batched)
            + u128::from(single) * u128::from(self.single.alone.get().unwrap_or(0));
        let wait = work * u128::from(waves) / (u128::from(ahead) * self.workers as u128);
        Duration::from_micros(u64::try_from(wait).unwrap_or(u64::MAX))
    }

    /// Counts a job of `kind` in when the queue ahead of it can drain before `deadline`;
    /// `false`: refuse.
    pub fn admit(&self, kind: Kind, now: Instant, deadline: Instant) -> bool {
        if now + self.expected_wait() >= deadline {
            return false;
        }
        self.lane(kind).queued.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// An admitted job did not enter the queue after all (full, or the workers are gone).
    pub fn withdraw(&self, kind: Kind) {
        self.lane(kind).queued.fetch_sub(1, Ordering::Relaxed);
    }

    /// A worker took a job.
    pub fn started(&self, kind: Kind) {
        let lane = self.lane(kind);
        lane.queued.fetch_sub(1, Ordering::Relaxed);
        lane.running.fetch_add(1, Ordering::Relaxed);
    }

    /// A worker finished a job it ran on its own for `took` (`None`: it was not run, its
    /// deadline had passed; that says nothing about how long jobs take).
    pub fn finished(&self, kind: Kind, took: Option<Duration>) {
        let lane = self.lane(kind);
        lane.running.fetch_sub(1, Ordering::Relaxed);
        if let Some(took) = took {
            lane.alone.sample(took);
        }
    }

    /// A worker finished a batch of `count` batched jobs that took `took` together.
    pub fn finished_batch(&self, count: usize, took: Duration) {
        let lane = &self.batched;
        lane.running.fetch_sub(count, Ordering::Relaxed);
        match count {
            0 => {}
            1 => lane.alone.sample(took),
            n => {
                // What the jobs beyond the first added: the batch's time less one job alone
                // (all of it shared out while no job has been measured alone).
                let first = lane
                    .alone
                    .get()
                    .map_or(Duration::ZERO, Duration::from_micros);
                let rest = u32::try_from(n - 1).unwrap_or(u32::MAX);
                lane.further
                    .sample(took.saturating_sub(first.min(took / 2)) / rest);
            }
        }
    }

    /// The measured cost of a job of `kind` run alone.
    pub fn mean(&self, kind: Kind) -> Duration {
        Duration::from_micros(self.lane(kind).alone.get().unwrap_or(0))
    }

    /// The measured cost of each further batched job of a batch.
    pub fn further(&self) -> Duration {
        Duration::from_micros(self.batched.further.get().unwrap_or(0))
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
            assert!(a.admit(Kind::Single, now, soon));
        }
        assert_eq!(a.expected_wait(), Duration::ZERO);
        // Jobs take 4 s each (Elasticsearch slow): two run, two wait.
        a.started(Kind::Single);
        a.finished(Kind::Single, Some(Duration::from_secs(4)));
        assert!(a.admit(Kind::Single, now, soon));
        a.started(Kind::Single);
        a.started(Kind::Single);
        // 2 running + 2 queued on 2 workers: the next one waits (4+1-2)/2 × 4 s = 6 s.
        assert_eq!(a.expected_wait(), Duration::from_secs(6));
        assert!(
            a.admit(Kind::Single, now, soon),
            "6 s of wait fits a 10 s deadline"
        );
        // Now 2 running + 3 queued: 8 s; a 5 s deadline is refused, a 10 s one is not.
        assert!(!a.admit(Kind::Single, now, now + Duration::from_secs(5)));
        assert!(a.admit(Kind::Single, now, soon));
        // 4 queued: 10 s, no longer fits.
        assert!(!a.admit(Kind::Single, now, soon));
    }

    #[test]
    fn the_average_follows_recovery_and_ignores_expired_jobs() {
        let a = Admission::new(1);
        let now = Instant::now();
        for _ in 0..3 {
            assert!(a.admit(Kind::Single, now, now + Duration::from_secs(60)));
            a.started(Kind::Single);
        }
        a.finished(Kind::Single, Some(Duration::from_secs(10)));
        a.finished(Kind::Single, None);
        assert_eq!(
            a.mean(Kind::Single),
            Duration::from_secs(10),
            "an expired job is no sample"
        );
        // Elasticsearch is back: jobs take 1 ms; the average falls below 100 ms within 20.
        a.finished(Kind::Single, Some(Duration::from_millis(1)));
        for _ in 0..20 {
            a.admit(Kind::Single, now, now + Duration::from_secs(60));
            a.started(Kind::Single);
            a.finished(Kind::Single, Some(Duration::from_millis(1)));
        }
        assert!(
            a.mean(Kind::Single) < Duration::from_millis(100),
            "{:?}",
            a.mean(Kind::Single)
        );
        assert_eq!(a.expected_wait(), Duration::ZERO);
    }

    /// Measures `n` jobs of `kind` run alone at `took` each.
    fn measure(a: &Admission, kind: Kind, n: usize, took: Duration) {
        let now = Instant::now();
        for _ in 0..n {
            assert!(a.admit(kind, now, now + Duration::from_secs(3600)));
            a.started(kind);
            a.finished(kind, Some(took));
        }
    }

    /// Measures a batch of `n` batched jobs that took `took` together.
    fn measure_batch(a: &Admission, n: usize, took: Duration) {
        let now = Instant::now();
        for _ in 0..n {
            assert!(a.admit(Kind::Batched, now, now + Duration::from_secs(3600)));
        }
        for _ in 0..n {
            a.started(Kind::Batched);
        }
        a.finished_batch(n, took);
    }

    #[test]
    fn one_slow_bulk_write_does_not_refuse_a_burst_of_batched_acks() {
        // The embedded store's single worker: an ack alone takes 12 ms (its commit), a batch of
        // 100 took 111 ms (1 ms more for each further ack), then one bulk checkin write took
        // 3 s. With one average over every job (weight 1/4) an ack looked like 0.75 s of work
        // and a burst of 500 was refused after the 14th.
        let a = Admission::new(1);
        measure(&a, Kind::Batched, 4, Duration::from_millis(12));
        measure_batch(&a, 100, Duration::from_millis(111));
        measure(&a, Kind::Single, 1, Duration::from_secs(3));
        assert_eq!(a.mean(Kind::Batched), Duration::from_millis(12));
        assert_eq!(a.further(), Duration::from_millis(1));
        assert_eq!(a.mean(Kind::Single), Duration::from_secs(3));
        let now = Instant::now();
        let deadline = now + Duration::from_secs(10);
        for i in 0..1000 {
            assert!(a.admit(Kind::Batched, now, deadline), "ack {i} refused");
        }
        // 1,000 acks ahead: two batches, 2 × 12 ms + 1,000 × 1 ms.
        assert_eq!(a.expected_wait(), Duration::from_millis(1024));
        // A checkin write still fits, and counts at its own cost for whoever comes after it.
        assert!(a.admit(Kind::Single, now, deadline));
        assert_eq!(a.expected_wait(), Duration::from_millis(4024));
        assert!(a.admit(Kind::Batched, now, deadline));
        assert!(!a.admit(Kind::Batched, now, now + Duration::from_secs(4)));
    }

    #[test]
    fn a_burst_before_any_batch_was_measured_is_judged_by_batches() {
        // Only lone acks and enrolls so far (paced, 15 ms each: a commit). A burst of 1,000
        // queued together runs as two batches, not as 1,000 commits (15 s).
        let a = Admission::new(1);
        measure(&a, Kind::Batched, 50, Duration::from_millis(15));
        let now = Instant::now();
        for i in 0..1000 {
            assert!(
                a.admit(Kind::Batched, now, now + Duration::from_secs(10)),
                "ack {i} refused"
            );
        }
        assert_eq!(a.expected_wait(), Duration::from_millis(30));
    }

    #[test]
    fn a_slow_backend_still_refuses_acks_and_other_jobs() {
        // Elasticsearch slow: an ack alone takes 4 s, each further ack of a batch 4 s more,
        // checkin writes 5 s.
        let a = Admission::new(1);
        measure(&a, Kind::Batched, 1, Duration::from_secs(4));
        measure_batch(&a, 3, Duration::from_secs(12));
        assert_eq!(a.further(), Duration::from_secs(4));
        measure(&a, Kind::Single, 1, Duration::from_secs(5));
        let now = Instant::now();
        let deadline = now + Duration::from_secs(10);
        // Nothing ahead, then 4 + 4 s of acks: both fit a 10 s deadline; 4 + 2 × 4 s does not.
        for _ in 0..2 {
            assert!(a.admit(Kind::Batched, now, deadline));
        }
        assert_eq!(a.expected_wait(), Duration::from_secs(12));
        assert!(!a.admit(Kind::Batched, now, deadline));
        assert!(!a.admit(Kind::Single, now, deadline));
        // Slow single jobs ahead refuse an ack even when acks themselves are cheap.
        let b = Admission::new(1);
        measure(&b, Kind::Batched, 1, Duration::from_millis(1));
        measure(&b, Kind::Single, 1, Duration::from_secs(5));
        assert!(b.admit(Kind::Single, now, deadline));
        b.started(Kind::Single);
        assert_eq!(b.expected_wait(), Duration::from_secs(5));
        assert!(b.admit(Kind::Single, now, deadline));
        assert_eq!(b.expected_wait(), Duration::from_secs(10));
        assert!(
            !b.admit(Kind::Batched, now, deadline),
            "10 s of writes ahead"
        );
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
