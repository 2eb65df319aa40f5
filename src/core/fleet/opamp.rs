//! OpAMP replies: a handled message's checkin state joins the bulk writer (the same writer as
//! agent checkins; `Fleet::handle_reply` hands it over first), then the answer goes back as an HTTP response or a WebSocket message; an
//! accepted upgrade switches the connection to WebSocket framing.

use super::{ConnKey, Fleet, Output};
use crate::api::PendingKind;
use crate::backend::interface::JobOutput;
use crate::backend::ops::opamp::{OpAmpOutcome, OpAmpRefusal};
use crate::backend::ApiKey;

impl Fleet {
    /// A message handled by the backend (its checkin state is already with the writer).
    pub(super) fn opamp_answered(
        &mut self,
        conn: ConnKey,
        result: Result<OpAmpOutcome, OpAmpRefusal>,
    ) {
        let Some(inflight) = self.inflight.get(&conn) else {
            return;
        };
        if inflight.pending.kind == PendingKind::OpAmpMessage {
            if let Err(refusal) = &result {
                log::debug!("opamp: dropped a WebSocket message: {refusal}");
            }
            self.take_inflight(conn);
            let reply = result.ok().map(|o| o.reply);
            self.emit(Output::Message { conn, reply });
        } else {
            let response = inflight
                .pending
                .finish(JobOutput::OpAmp(result), self.health());
            self.finish(conn, response);
        }
    }

    /// An upgrade whose token was accepted.
    pub(super) fn opamp_upgraded(&mut self, conn: ConnKey, accept: String, token: ApiKey) {
        if self.take_inflight(conn).is_some() {
            self.emit(Output::Upgrade {
                conn,
                accept,
                token,
            });
        }
    }
}
