//! Per-route request figures for the monitoring endpoint (`monitor.rs`), kept by the engine as
//! it answers: Elastic's `http_server.routes.<route>` counters (`total`, `active`, `fail`,
//! `drop`, the names of Fleet Server's `routeStats`) and fleet-edge's latency histogram (count,
//! sum, cumulative buckets), which Elastic's `/stats` does not have.
//!
//! Atomics only: the event loop writes, the monitoring thread reads, neither waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The routes figures are kept for: Elastic's route names first (`checkin`, `enroll`,
/// `artifacts`, `acks`, `status`, `upload`, `uploadChunk`, `uploadEnd`), then fleet-edge's.
pub const ROUTES: [&str; 15] = [
    "checkin",
    "enroll",
    "artifacts",
    "acks",
    "status",
    "upload",
    "uploadChunk",
    "uploadEnd",
    "audit_unenroll",
    "opamp",
    "file",
    "pgp",
    "downloads",
    "management",
    "other",
];

/// Upper bounds of the latency buckets, in milliseconds (a parked checkin lasts up to its long
/// poll, 5 minutes by default; the last bucket, unbounded, is every request).
pub const BUCKETS_MS: [u64; 9] = [1, 5, 25, 100, 500, 2_500, 10_000, 60_000, 300_000];

/// The figures of one route.
#[derive(Debug, Default)]
struct Route {
    total: AtomicU64,
    active: AtomicU64,
    fail: AtomicU64,
    drop: AtomicU64,
    answered: AtomicU64,
    sum_micros: AtomicU64,
    /// Requests answered within each bound (not cumulative here; [`RouteFigures`] is).
    buckets: [AtomicU64; BUCKETS_MS.len()],
}

/// Every route's figures.
#[derive(Debug, Default)]
pub struct RouteStats {
    routes: [Route; ROUTES.len()],
}

/// One route's figures at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteFigures {
    /// The route's name ([`ROUTES`]).
    pub name: &'static str,
    /// Requests received (Elastic's `total`).
    pub total: u64,
    /// Requests not answered yet, parked checkins included (`active`).
    pub active: u64,
    /// Requests answered with a status of 400 or more (`fail`).
    pub fail: u64,
    /// Requests whose connection closed before they were answered (`drop`).
    pub drop: u64,
    /// Requests answered: the histogram's count.
    pub count: u64,
    /// Their summed latency, in microseconds.
    pub sum_micros: u64,
    /// Requests answered within each of [`BUCKETS_MS`], cumulative (Prometheus' `le`).
    pub buckets: [u64; BUCKETS_MS.len()],
}

/// The index in [`ROUTES`] of `name` (`other` when it is none of them).
pub fn index(name: &str) -> usize {
    ROUTES
        .iter()
        .position(|r| *r == name)
        .unwrap_or(ROUTES.len() - 1)
}

impl RouteStats {
    /// A request of route `route` ([`index`]) arrived.
    pub fn started(&self, route: usize) {
        if let Some(r) = self.routes.get(route) {
            r.total.fetch_add(1, Ordering::Relaxed);
            r.active.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request of route `route` was answered with `status` after `took`.
    pub fn answered(&self, route: usize, status: u16, took: Duration) {
        let Some(r) = self.routes.get(route) else {
            return;
        };
        r.active.fetch_sub(1, Ordering::Relaxed);
        if status >= 400 {
            r.fail.fetch_add(1, Ordering::Relaxed);
        }
        r.answered.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        r.sum_micros.fetch_add(micros, Ordering::Relaxed);
        if let Some(i) = BUCKETS_MS.iter().position(|ms| micros <= ms * 1000) {
            r.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request of route `route` lost its connection before its answer.
    pub fn dropped(&self, route: usize) {
        if let Some(r) = self.routes.get(route) {
            r.active.fetch_sub(1, Ordering::Relaxed);
            r.drop.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every route's figures now.
    pub fn figures(&self) -> Vec<RouteFigures> {
        ROUTES
            .iter()
            .zip(&self.routes)
            .map(|(name, r)| {
                let mut buckets = [0; BUCKETS_MS.len()];
                let mut within = 0;
                for (slot, b) in buckets.iter_mut().zip(&r.buckets) {
                    within += b.load(Ordering::Relaxed);
                    *slot = within;
                }
                RouteFigures {
                    name,
                    total: r.total.load(Ordering::Relaxed),
                    active: r.active.load(Ordering::Relaxed),
                    fail: r.fail.load(Ordering::Relaxed),
                    drop: r.drop.load(Ordering::Relaxed),
                    count: r.answered.load(Ordering::Relaxed),
                    sum_micros: r.sum_micros.load(Ordering::Relaxed),
                    buckets,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_every_answer_is_counted() {
        let stats = RouteStats::default();
        let checkin = index("checkin");
        assert_eq!(index("nothing"), index("other"));
        for ms in [0, 3, 3, 70_000, 400_000] {
            stats.started(checkin);
            stats.answered(checkin, 200, Duration::from_millis(ms));
        }
        stats.started(checkin);
        stats.answered(checkin, 401, Duration::from_micros(1500));
        stats.started(checkin);
        stats.started(checkin);
        stats.dropped(checkin);
        let f = &stats.figures()[checkin];
        assert_eq!(
            (f.total, f.active, f.fail, f.drop, f.count),
            (8, 1, 1, 1, 6)
        );
        assert_eq!(f.buckets, [1, 4, 4, 4, 4, 4, 4, 4, 5]);
        assert_eq!(f.sum_micros, 470_007_500);
    }
}
