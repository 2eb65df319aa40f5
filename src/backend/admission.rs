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

/// The queue's occupancy and the measured job durations, shared by the submitter and the
/// workers.
#[derive(Debug)]
pub struct Admission {
    workers: usize,
    /// Jobs submitted and not yet taken by a worker.
    queued: AtomicUsize,
    /// Jobs a worker is running.
    running: AtomicUsize,
    /// Moving average of job durations, microseconds (0 until the first job finishes).
    mean_micros: AtomicU64,
}

impl Admission {
    /// Admission for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: workers.max(1),
            queued: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            mean_micros: AtomicU64::new(0),
        }
    }

    /// How long a job submitted now would wait before a worker takes it: the jobs ahead
    /// (waiting and running) beyond one per worker, spread over the workers, at the measured
    /// average duration.
    pub fn expected_wait(&self) -> Duration {
        let ahead = self.queued.load(Ordering::Relaxed) + self.running.load(Ordering::Relaxed);
        let waves = (ahead + 1).saturating_sub(self.workers) as u64;
        let mean = self.mean_micros.load(Ordering::Relaxed);
        Duration::from_micros(mean.saturating_mul(waves) / self.workers as u64)
    }

    /// Counts a job in when the queue ahead of it can drain before `deadline`; `false`: refuse.
    pub fn admit(&self, now: Instant, deadline: Instant) -> bool {
        if now + self.expected_wait() >= deadline {
            return false;
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// An admitted job did not enter the queue after all (full, or the workers are gone).
    pub fn withdraw(&self) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
    }

    /// A worker took a job.
    pub fn started(&self) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
        self.running.fetch_add(1, Ordering::Relaxed);
    }

    /// A worker finished a job it ran for `took` (`None`: it was not run, its deadline had
    /// passed; that says nothing about how long jobs take).
    pub fn finished(&self, took: Option<Duration>) {
        self.running.fetch_sub(1, Ordering::Relaxed);
        let Some(took) = took else { return };
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let _ = self
            .mean_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |mean| {
                Some(if mean == 0 {
                    sample
                } else {
                    mean - mean / AVERAGE_OVER + sample / AVERAGE_OVER
                })
            });
    }

    /// The measured average job duration.
    pub fn mean(&self) -> Duration {
        Duration::from_micros(self.mean_micros.load(Ordering::Relaxed))
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
            assert!(a.admit(now, soon));
        }
        assert_eq!(a.expected_wait(), Duration::ZERO);
        // Jobs take 4 s each (Elasticsearch slow): two run, two wait.
        a.started();
        a.finished(Some(Duration::from_secs(4)));
        assert!(a.admit(now, soon));
        a.started();
        a.started();
        // 2 running + 2 queued on 2 workers: the next one waits (4+1-2)/2 × 4 s = 6 s.
        assert_eq!(a.expected_wait(), Duration::from_secs(6));
        assert!(a.admit(now, soon), "6 s of wait fits a 10 s deadline");
        // Now 2 running + 3 queued: 8 s; a 5 s deadline is refused, a 10 s one is not.
        assert!(!a.admit(now, now + Duration::from_secs(5)));
        assert!(a.admit(now, soon));
        // 4 queued: 10 s, no longer fits.
        assert!(!a.admit(now, soon));
    }

    #[test]
    fn the_average_follows_recovery_and_ignores_expired_jobs() {
        let a = Admission::new(1);
        let now = Instant::now();
        for _ in 0..3 {
            assert!(a.admit(now, now + Duration::from_secs(60)));
            a.started();
        }
        a.finished(Some(Duration::from_secs(10)));
        a.finished(None);
        assert_eq!(
            a.mean(),
            Duration::from_secs(10),
            "an expired job is no sample"
        );
        // Elasticsearch is back: jobs take 1 ms; the average falls below 100 ms within 20.
        a.finished(Some(Duration::from_millis(1)));
        for _ in 0..20 {
            a.admit(now, now + Duration::from_secs(60));
            a.started();
            a.finished(Some(Duration::from_millis(1)));
        }
        assert!(a.mean() < Duration::from_millis(100), "{:?}", a.mean());
        assert_eq!(a.expected_wait(), Duration::ZERO);
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
