//! Running out of file descriptors (EMFILE/ENFILE) without going deaf or flooding the log.
//!
//! A few descriptors are held open on `/dev/null` from the start. When an accept fails for want
//! of descriptors, agent connections wait in the kernel's backlog, except that one reserved
//! descriptor at a time is released to accept the next one, which answers `GET /api/status` and
//! gives every other request the over-capacity 429 with `Retry-After` (then closes, and the
//! descriptor returns to the reserve). The management listener has reserved descriptors of its
//! own, so the operator's CLI keeps working while agents are refused.
//!
//! One episode is logged twice: a warning when it starts and a line when accepting works again,
//! with how long it lasted and how many accepts were deferred or answered from the reserve.

use std::fs::File;
use std::time::Instant;

/// Descriptors kept for `/api/status` (and 429s) on the agent listener.
const AGENT_RESERVE: usize = 2;
/// Descriptors kept for the management listener.
const MANAGEMENT_RESERVE: usize = 2;

/// Which listener a reserved descriptor is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pool {
    /// The agent listener (`/api/status` answered, the rest 429).
    Agent,
    /// The management listener (served in full).
    Management,
}

/// An out-of-descriptors episode in progress.
#[derive(Debug)]
struct Episode {
    since: Instant,
    /// Accepts that found no descriptor and no reserve: the connection stayed in the backlog.
    deferred: u64,
    /// Connections accepted on a reserved descriptor.
    from_reserve: u64,
}

/// The reserved descriptors and the current episode, if any.
#[derive(Debug, Default)]
pub(super) struct Reserve {
    agent: Vec<File>,
    management: Vec<File>,
    episode: Option<Episode>,
}

impl Reserve {
    /// Opens the reserve (as many descriptors as the process can spare now).
    pub(super) fn open() -> Self {
        let mut reserve = Self::default();
        reserve.refill();
        reserve
    }

    /// Reopens released descriptors (after a connection closed); cheap when the reserve is full.
    pub(super) fn refill(&mut self) {
        for (pool, want) in [
            (&mut self.management, MANAGEMENT_RESERVE),
            (&mut self.agent, AGENT_RESERVE),
        ] {
            while pool.len() < want {
                match File::open("/dev/null") {
                    Ok(file) => pool.push(file),
                    Err(_) => return,
                }
            }
        }
    }

    /// An accept on `which` listener failed with `error` (out of descriptors): starts an episode
    /// (logged once) and releases a reserved descriptor of `pool` for one more accept, if one
    /// is left. `false`: none left, the accept is deferred.
    pub(super) fn exhausted(
        &mut self,
        pool: Pool,
        which: &str,
        error: &std::io::Error,
        now: Instant,
    ) -> bool {
        let episode = self.episode.get_or_insert_with(|| {
            log::warn!(
                "out of file descriptors accepting {which} connections ({error}): new agent \
                 connections wait or get 429 from a reserve of {AGENT_RESERVE} descriptor(s); \
                 {MANAGEMENT_RESERVE} more keep the management API reachable"
            );
            Episode {
                since: now,
                deferred: 0,
                from_reserve: 0,
            }
        });
        let spare = match pool {
            Pool::Agent => &mut self.agent,
            Pool::Management => &mut self.management,
        };
        match spare.pop() {
            Some(file) => {
                drop(file);
                true
            }
            None => {
                episode.deferred += 1;
                false
            }
        }
    }

    /// A connection was accepted on a released descriptor.
    pub(super) fn accepted_from_reserve(&mut self) {
        if let Some(episode) = &mut self.episode {
            episode.from_reserve += 1;
        }
    }

    /// An accept on the agent listener succeeded without the reserve, or found the backlog
    /// empty: descriptors are available again, and an episode in progress ends (logged).
    pub(super) fn recovered(&mut self, now: Instant) {
        if let Some(episode) = self.episode.take() {
            self.refill();
            let lasted = now.saturating_duration_since(episode.since);
            log::info!(
                "file descriptors available again after {:.1} s: {} accept(s) deferred, {} \
                 connection(s) answered from the reserve",
                lasted.as_secs_f64(),
                episode.deferred,
                episode.from_reserve
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_episode_counts_and_the_reserve_refills() {
        let mut r = Reserve::open();
        assert_eq!((r.agent.len(), r.management.len()), (2, 2));
        let now = Instant::now();
        let emfile = std::io::Error::from_raw_os_error(24);
        assert!(r.exhausted(Pool::Agent, "agent", &emfile, now));
        assert!(r.exhausted(Pool::Agent, "agent", &emfile, now));
        assert!(
            !r.exhausted(Pool::Agent, "agent", &emfile, now),
            "agent reserve spent"
        );
        assert!(r.exhausted(Pool::Management, "management", &emfile, now));
        for _ in 0..3 {
            r.accepted_from_reserve();
        }
        let episode = r.episode.as_ref().unwrap();
        assert_eq!((episode.deferred, episode.from_reserve), (1, 3));
        r.refill();
        assert_eq!((r.agent.len(), r.management.len()), (2, 2));
        assert!(r.episode.is_some());
        r.recovered(now + Duration::from_secs(2));
        assert!(r.episode.is_none());
    }
}
