//! Requests whose backend job missed its deadline (issue 15 §1). The worker answers a job at its
//! deadline (Elasticsearch calls are bounded by the time left, a job taken late is not run), so
//! this is the loop's own guarantee for the rest: a job stuck outside the store's calls, or
//! queued behind jobs that overran. The request is answered 503 with a jittered `Retry-After`
//! and its connection closes after the answer, so that the job's late reply cannot meet the
//! next request of the same connection.

use std::time::Instant;

use super::{conn_of, ConnKey, Server};
use crate::api::{errors, ApiError};

impl Server {
    /// Answers a request whose backend deadline (plus grace) passed without a reply.
    pub(super) fn backend_overdue(&mut self, key: ConnKey, now: Instant) {
        self.starting.retain(|_, k| *k != key);
        self.enrolling.retain(|_, k| *k != key);
        let unit = self.ids.next_unit();
        let Some(conn) = conn_of(&mut self.conns, key) else {
            return;
        };
        conn.timer = None;
        let Some(inflight) = conn.inflight.as_ref() else {
            return;
        };
        if let Some(wait) = &inflight.checkin {
            self.early.remove(&wait.agent_id);
        }
        log::debug!(
            "{:?} request overdue at its backend deadline: answering 503",
            inflight.pending.kind
        );
        let response = errors::jitter_retry_after(
            inflight
                .pending
                .decorate(errors::respond(&ApiError::StoreUnavailable)),
            unit,
        );
        // `draining: true`: Connection: close (see the header).
        if let Some(limited) = conn.complete(&response, true, self.date.current(), &mut self.pool) {
            self.limits.get(limited).release();
        }
        self.drive(key.slot, now);
    }
}
