//! Per-route limiters (fleet-protocol.md §10.1): a token bucket refilling one token per
//! `interval` up to `burst` (no token → 429 `RateLimit`), and at most `max` requests of the route
//! in flight (→ 429 `MaxLimit`; a parked checkin counts for its whole duration). Sans-IO: the
//! caller passes `now` and releases what it acquired.

use std::time::{Duration, Instant};

/// One route's limits; zero means "no limit" for that dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitSpec {
    /// Refill period of the token bucket (zero: no rate limit).
    pub interval: Duration,
    /// Bucket capacity.
    pub burst: u32,
    /// Most requests in flight (zero: unlimited).
    pub max: u32,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No token in the bucket.
    Rate,
    /// Too many in flight.
    Concurrency,
}

/// The limiter state of one route.
#[derive(Debug)]
pub struct Limiter {
    spec: LimitSpec,
    tokens: f64,
    refilled_at: Option<Instant>,
    in_flight: u32,
}

impl Limiter {
    /// A limiter with a full bucket.
    pub fn new(spec: LimitSpec) -> Self {
        Self {
            spec,
            tokens: f64::from(spec.burst),
            refilled_at: None,
            in_flight: 0,
        }
    }

    /// Admits one request at `now` or says why not. An admitted request must be released.
    pub fn acquire(&mut self, now: Instant) -> Result<(), Refusal> {
        if self.spec.max > 0 && self.in_flight >= self.spec.max {
            return Err(Refusal::Concurrency);
        }
        if !self.spec.interval.is_zero() {
            let since = self
                .refilled_at
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
            let refill = since.as_secs_f64() / self.spec.interval.as_secs_f64();
            self.tokens = (self.tokens + refill).min(f64::from(self.spec.burst.max(1)));
            self.refilled_at = Some(now);
            if self.tokens < 1.0 {
                return Err(Refusal::Rate);
            }
            self.tokens -= 1.0;
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Releases an admitted request.
    pub fn release(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }
}

/// The routes with limiters, and their code defaults (§10.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitedRoute {
    /// `checkin_limit`: 1ms / 1000 / unlimited.
    Checkin,
    /// `enroll_limit`: 10ms / 50 / 100.
    Enroll,
    /// `ack_limit`: 10ms / 50 / 100.
    Ack,
    /// `status_limit`: 5ms / 25 / 50.
    Status,
    /// `audit_unenroll_limit`: 10ms / 50 / 100.
    AuditUnenroll,
}

impl LimitedRoute {
    /// The code default of the route.
    pub fn default_spec(self) -> LimitSpec {
        let ms = Duration::from_millis;
        match self {
            LimitedRoute::Checkin => LimitSpec {
                interval: ms(1),
                burst: 1000,
                max: 0,
            },
            LimitedRoute::Enroll => LimitSpec {
                interval: ms(10),
                burst: 50,
                max: 100,
            },
            LimitedRoute::Ack => LimitSpec {
                interval: ms(10),
                burst: 50,
                max: 100,
            },
            LimitedRoute::Status => LimitSpec {
                interval: ms(5),
                burst: 25,
                max: 50,
            },
            LimitedRoute::AuditUnenroll => LimitSpec {
                interval: ms(10),
                burst: 50,
                max: 100,
            },
        }
    }
}

/// Limiters of every limited route.
#[derive(Debug)]
pub struct RouteLimits {
    checkin: Limiter,
    enroll: Limiter,
    ack: Limiter,
    status: Limiter,
    audit: Limiter,
}

impl Default for RouteLimits {
    fn default() -> Self {
        Self::with(|r| r.default_spec())
    }
}

impl RouteLimits {
    /// Limiters with the specs `spec` gives.
    pub fn with(spec: impl Fn(LimitedRoute) -> LimitSpec) -> Self {
        Self {
            checkin: Limiter::new(spec(LimitedRoute::Checkin)),
            enroll: Limiter::new(spec(LimitedRoute::Enroll)),
            ack: Limiter::new(spec(LimitedRoute::Ack)),
            status: Limiter::new(spec(LimitedRoute::Status)),
            audit: Limiter::new(spec(LimitedRoute::AuditUnenroll)),
        }
    }

    /// The limiter of a route.
    pub fn get(&mut self, route: LimitedRoute) -> &mut Limiter {
        match route {
            LimitedRoute::Checkin => &mut self.checkin,
            LimitedRoute::Enroll => &mut self.enroll,
            LimitedRoute::Ack => &mut self.ack,
            LimitedRoute::Status => &mut self.status,
            LimitedRoute::AuditUnenroll => &mut self.audit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_empties_then_refills_at_the_interval() {
        let t0 = Instant::now();
        let mut l = Limiter::new(LimitSpec {
            interval: Duration::from_millis(10),
            burst: 2,
            max: 0,
        });
        assert_eq!(l.acquire(t0), Ok(()));
        assert_eq!(l.acquire(t0), Ok(()));
        assert_eq!(l.acquire(t0), Err(Refusal::Rate));
        assert_eq!(l.acquire(t0 + Duration::from_millis(5)), Err(Refusal::Rate));
        assert_eq!(
            l.acquire(t0 + Duration::from_millis(11)),
            Ok(()),
            "one token after one interval"
        );
        assert_eq!(
            l.acquire(t0 + Duration::from_secs(100)),
            Ok(()),
            "refill is capped at burst"
        );
        assert_eq!(l.acquire(t0 + Duration::from_secs(100)), Ok(()));
        assert_eq!(l.acquire(t0 + Duration::from_secs(100)), Err(Refusal::Rate));
    }

    #[test]
    fn concurrency_is_counted_until_release() {
        let t0 = Instant::now();
        let mut l = Limiter::new(LimitSpec {
            interval: Duration::ZERO,
            burst: 0,
            max: 2,
        });
        assert!(l.acquire(t0).is_ok() && l.acquire(t0).is_ok());
        assert_eq!(l.acquire(t0), Err(Refusal::Concurrency));
        l.release();
        assert_eq!(l.acquire(t0), Ok(()));
        assert_eq!(l.in_flight(), 2);
    }

    #[test]
    fn defaults_follow_the_code_table() {
        assert_eq!(
            LimitedRoute::Enroll.default_spec(),
            LimitSpec {
                interval: Duration::from_millis(10),
                burst: 50,
                max: 100
            }
        );
        assert_eq!(
            LimitedRoute::Checkin.default_spec().max,
            0,
            "long polls unlimited by default"
        );
    }
}
