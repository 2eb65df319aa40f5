//! OpAMP replies in the event loop: a handled message's checkin state joins the bulk writer
//! (the same writer as agent checkins), then the answer goes back as an HTTP response or a
//! WebSocket message; an accepted upgrade switches the connection to WebSocket framing.

use std::time::Instant;

use super::{conn_of, ConnKey, Server};
use crate::api::PendingKind;
use crate::backend::ops::opamp::{OpAmpOutcome, OpAmpRefusal};
use crate::backend::workers::JobOutput;
use crate::backend::{ApiKey, CheckinWrite};

impl Server {
    /// A message handled by the backend.
    pub(super) fn opamp_answered(
        &mut self,
        key: ConnKey,
        mut result: Result<OpAmpOutcome, OpAmpRefusal>,
        now: Instant,
    ) {
        if let Ok(outcome) = &mut result {
            if let Some((agent_id, state)) = outcome.checkin.take() {
                // Two messages within one flush: the newer one's members win, the older one's
                // others stay, as if both updates had been written in order.
                match self.bulk.get_mut(&agent_id) {
                    Some(pending) => pending.fields.extend(state),
                    None => {
                        self.bulk.insert(agent_id, CheckinWrite::fields(state));
                    }
                }
            }
        }
        let health = self.current_health();
        let draining = self.drain_deadline.is_some();
        let Some(conn) = conn_of(&mut self.conns, key) else {
            self.late_replies += 1;
            return;
        };
        let Some(inflight) = conn.inflight.as_ref() else {
            self.late_replies += 1;
            return;
        };
        if inflight.pending.kind == PendingKind::OpAmpMessage {
            if let Err(refusal) = &result {
                log::debug!("opamp: dropped a WebSocket message: {refusal}");
            }
            conn.websocket_reply(result.ok().map(|o| o.reply), &mut self.pool);
        } else {
            let response = inflight.pending.finish(JobOutput::OpAmp(result), health);
            if let Some(limited) =
                conn.complete(&response, draining, self.date.current(), &mut self.pool)
            {
                self.limits.get(limited).release();
            }
        }
        self.drive(key.slot, now);
    }

    /// An upgrade whose token was accepted.
    pub(super) fn opamp_upgraded(
        &mut self,
        key: ConnKey,
        accept: &str,
        token: ApiKey,
        now: Instant,
    ) {
        let Some(conn) = conn_of(&mut self.conns, key) else {
            self.late_replies += 1;
            return;
        };
        if let Some(limited) = conn.inflight.as_ref().and_then(|i| i.pending.limited) {
            self.limits.get(limited).release();
        }
        conn.upgrade_websocket(accept, token, &mut self.pool);
        self.drive(key.slot, now);
    }
}
