//! New policy revisions: installed in the [`PolicyCache`](crate::core::longpoll::PolicyCache),
//! then rolled out to the agents parked behind them at the pace the ack and checkin limits
//! admit ([`Pacer`]): every woken agent acks at once, and acks beyond the ack bucket would get
//! 429 and a minute of agent backoff. The rest stay parked until the next step (or their own
//! long-poll end).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{parked_waiter, ConnKey, Fleet, Timer};
use crate::api::limits::{LimitSpec, LimitedRoute};
use crate::core::longpoll::Waiter;
use crate::core::pacing::Pacer;
use crate::transform::prepared_policy::PreparedPolicy;

/// Shortest pause between two paced rollout steps (batches, not one timer per agent).
const ROLLOUT_TICK: Duration = Duration::from_millis(50);

/// Revisions still waking their parked agents, and the pace.
#[derive(Debug)]
pub(super) struct Rollouts {
    running: Vec<Arc<PreparedPolicy>>,
    pacer: Pacer,
}

impl Rollouts {
    /// No rollout running; the pace of the ack and checkin limits.
    pub(super) fn new(ack: LimitSpec, checkin: LimitSpec) -> Self {
        Self {
            running: Vec::new(),
            pacer: Pacer::for_routes(ack, checkin),
        }
    }
}

impl Fleet {
    /// A new revision from the store: cached, then rolled out if it is newer.
    pub(super) fn new_revision(&mut self, policy: Arc<PreparedPolicy>, now: Instant) {
        if !self.cache.install(Arc::clone(&policy)) {
            return;
        }
        log::info!(
            "policy {} revision {}: rolling out to the parked agents",
            policy.policy_id,
            policy.revision
        );
        let running = &mut self.rollouts.running;
        running.retain(|p| p.policy_id != policy.policy_id);
        running.push(policy);
        self.pace_rollouts(now);
    }

    /// Wakes as many parked agents behind a new revision as the pacer allows now; the rest
    /// stay parked until [`Timer::Rollout`].
    pub(super) fn pace_rollouts(&mut self, now: Instant) {
        // The pace, and what the ack bucket holds right now (other agents' acks spend it too).
        let acks = self.limits.get(LimitedRoute::Ack).available(now) as usize;
        let mut allowance = self.rollouts.pacer.allowance(now).min(acks);
        let mut i = 0;
        while i < self.rollouts.running.len() {
            let policy = Arc::clone(&self.rollouts.running[i]);
            let woken = self.take_behind(&policy, allowance);
            let done = woken.len() < allowance;
            allowance -= woken.len();
            self.rollouts.pacer.spend(woken.len());
            if !woken.is_empty() {
                log::debug!(
                    "policy {} revision {}: waking {} parked agent(s)",
                    policy.policy_id,
                    policy.revision,
                    woken.len()
                );
            }
            for (key, waiter) in woken {
                self.deliver_policy(key, &waiter, Arc::clone(&policy));
            }
            if done {
                self.rollouts.running.remove(i);
            } else {
                i += 1;
            }
        }
        if !self.rollouts.running.is_empty() {
            let wait = self.rollouts.pacer.next_in().max(ROLLOUT_TICK);
            self.arm(Timer::Rollout, now + wait);
        }
    }

    /// Unparks and returns up to `limit` waiters parked on `policy` below its revision.
    fn take_behind(&mut self, policy: &PreparedPolicy, limit: usize) -> Vec<(ConnKey, Waiter)> {
        let inflight = &self.inflight;
        let keys = self.waiters.behind(&policy.policy_id, limit, |key| {
            parked_waiter(inflight, key).is_some_and(|w| w.revision < policy.revision)
        });
        let mut woken = Vec::with_capacity(keys.len());
        for key in keys {
            let waiter = self
                .inflight
                .get_mut(&key)
                .and_then(|i| i.checkin.as_mut())
                .and_then(|c| c.waiter.take());
            if let Some(waiter) = waiter {
                self.waiters.remove(key, &waiter);
                woken.push((key, waiter));
            }
        }
        woken
    }
}
