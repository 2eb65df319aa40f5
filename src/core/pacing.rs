//! Rollout pacing: how many parked agents a new policy revision may wake now.
//!
//! Every agent woken with a POLICY_CHANGE acks it at once and checks in again a second later,
//! so waking 10,000 at once sends 10,000 acks into the ack route's token bucket (§10: burst 4,000
//! and 2,000/s in the `lte40000` table); the refused ones get 429 and the agent's ack retrier
//! waits a minute (agent-client.md), which is how the first 10k benchmark spent two minutes on a
//! rollout whose deliveries took 0.2 s. Elastic's Fleet Server paces the same fan-out with its
//! `policy_limit`. Here the pace follows the routes the woken agents will use next: half the
//! smaller burst of the ack and checkin buckets at once, then 90 % of the slower refill rate, so
//! the acks and checkins a rollout causes fit the buckets the sizing table gives. Sans-IO: `now`
//! is passed in.

use std::time::{Duration, Instant};

use crate::api::limits::LimitSpec;

/// A token bucket of deliveries.
#[derive(Clone, Debug)]
pub struct Pacer {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl Pacer {
    /// The pace the ack and checkin limits admit; unlimited when neither has a rate limit.
    pub fn for_routes(ack: LimitSpec, checkin: LimitSpec) -> Self {
        let limited: Vec<LimitSpec> = [ack, checkin]
            .into_iter()
            .filter(|s| !s.interval.is_zero())
            .collect();
        if limited.is_empty() {
            return Self {
                per_second: f64::INFINITY,
                capacity: f64::INFINITY,
                tokens: f64::INFINITY,
                at: None,
            };
        }
        let per_second = limited
            .iter()
            .map(|s| 1.0 / s.interval.as_secs_f64())
            .fold(f64::INFINITY, f64::min)
            * 0.9;
        let burst = limited
            .iter()
            .map(|s| f64::from(s.burst.max(1)))
            .fold(f64::INFINITY, f64::min);
        let capacity = (burst / 2.0).floor().max(1.0);
        Self {
            per_second,
            capacity,
            tokens: capacity,
            at: None,
        }
    }

    /// Deliveries allowed at `now` (refills first).
    pub fn allowance(&mut self, now: Instant) -> usize {
        if self.per_second.is_infinite() {
            return usize::MAX;
        }
        let since = self
            .at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.tokens = (self.tokens + since.as_secs_f64() * self.per_second).min(self.capacity);
        self.at = Some(now);
        // Whole deliveries only; the cast saturates and `tokens` is at most `capacity`.
        self.tokens.floor() as usize
    }

    /// Records `n` deliveries made.
    pub fn spend(&mut self, n: usize) {
        if self.per_second.is_finite() {
            self.tokens = (self.tokens - n as f64).max(0.0);
        }
    }

    /// When the next delivery is allowed, counted from the last [`Pacer::allowance`].
    pub fn next_in(&self) -> Duration {
        if self.tokens >= 1.0 || self.per_second.is_infinite() {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((1.0 - self.tokens) / self.per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(interval_ms: u64, burst: u32) -> LimitSpec {
        LimitSpec {
            interval: Duration::from_millis(interval_ms),
            burst,
            max: 0,
        }
    }

    #[test]
    fn half_the_smaller_burst_at_once_then_ninety_percent_of_the_slower_rate() {
        // lte40000: ack 0.5ms/4000, checkin 0.5ms/4000 → 2,000 now, then 1,800/s.
        let half_ms = LimitSpec {
            interval: Duration::from_micros(500),
            burst: 4000,
            max: 8000,
        };
        let mut p = Pacer::for_routes(half_ms, half_ms);
        let t0 = Instant::now();
        assert_eq!(p.allowance(t0), 2000);
        p.spend(2000);
        assert_eq!(p.allowance(t0), 0);
        assert_eq!(p.next_in(), Duration::from_secs_f64(1.0 / 1800.0));
        assert_eq!(p.allowance(t0 + Duration::from_secs(1)), 1800);
        // Never more than the capacity, however long it rested.
        assert_eq!(p.allowance(t0 + Duration::from_secs(60)), 2000);
    }

    #[test]
    fn the_slower_route_sets_the_pace() {
        let mut p = Pacer::for_routes(spec(10, 50), spec(1, 1000));
        let t0 = Instant::now();
        assert_eq!(p.allowance(t0), 25);
        p.spend(25);
        assert_eq!(p.allowance(t0 + Duration::from_millis(100)), 9);
    }

    #[test]
    fn no_rate_limits_means_no_pacing() {
        let mut p = Pacer::for_routes(spec(0, 0), spec(0, 0));
        assert_eq!(p.allowance(Instant::now()), usize::MAX);
        p.spend(1_000_000);
        assert_eq!(p.next_in(), Duration::ZERO);
    }
}
