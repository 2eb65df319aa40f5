//! The deadline of the backend job running on this thread (issue 15 §1): by when its request
//! must be answered. A worker sets it around each job ([`within`]); the Elasticsearch client
//! reads it ([`remaining`]) to bound every request's timeout by the time left and to stop
//! retrying once a retry could not finish in time, and the operations read [`passed`] between
//! store calls. It is ambient (a thread-local) rather than a parameter of every [`Store`]
//! method because it bounds *how* a call is made, not what it does: the store's operations,
//! the local store and the memory store ignore it, and threads with no job (change-feed
//! followers, the monitor) have none and keep their own timeouts.
//!
//! [`Store`]: super::Store

use std::cell::Cell;
use std::time::{Duration, Instant};

/// While the store is away, the longest one reachability probe of a change-feed follower (or
/// the monitor) takes, and the longest pause between two: recovery is seen within about a
/// second (issue 15 §1: `/api/status` is HEALTHY within 3 s of Elasticsearch answering again).
pub const PROBE_BUDGET: Duration = Duration::from_secs(1);

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// This thread's job deadline while the guard lives; the previous one comes back when it is
/// dropped. A nested scope can only shorten the deadline.
#[derive(Debug)]
#[must_use = "the deadline holds only while the scope lives"]
pub struct Scope {
    previous: Option<Instant>,
}

impl Scope {
    /// Sets `deadline` (or keeps an earlier one already set) until the guard is dropped.
    pub fn enter(deadline: Instant) -> Scope {
        let previous = DEADLINE.with(Cell::get);
        let effective = previous.map_or(deadline, |p| p.min(deadline));
        DEADLINE.with(|d| d.set(Some(effective)));
        Scope { previous }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(self.previous));
    }
}

/// Runs `f` with `deadline` as this thread's job deadline (see [`Scope`]).
pub fn within<R>(deadline: Instant, f: impl FnOnce() -> R) -> R {
    let _scope = Scope::enter(deadline);
    f()
}

/// This thread's job deadline, if it runs a job.
pub fn current() -> Option<Instant> {
    DEADLINE.with(Cell::get)
}

/// Time left before this thread's job deadline (`None`: no deadline; zero: passed).
pub fn remaining(now: Instant) -> Option<Duration> {
    current().map(|d| d.saturating_duration_since(now))
}

/// Whether this thread's job deadline has passed.
pub fn passed(now: Instant) -> bool {
    remaining(now).is_some_and(|left| left.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_restore() {
        let now = Instant::now();
        assert_eq!(remaining(now), None);
        assert!(!passed(now));
        within(now + Duration::from_secs(10), || {
            assert_eq!(remaining(now), Some(Duration::from_secs(10)));
            // A nested scope never extends the outer deadline.
            within(now + Duration::from_secs(60), || {
                assert_eq!(remaining(now), Some(Duration::from_secs(10)));
            });
            within(now + Duration::from_secs(1), || {
                assert_eq!(remaining(now), Some(Duration::from_secs(1)));
                assert!(passed(now + Duration::from_secs(2)));
            });
            assert_eq!(current(), Some(now + Duration::from_secs(10)));
        });
        assert_eq!(current(), None);
    }
}
