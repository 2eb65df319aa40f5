//! The checkin bulk writer (fleet-protocol.md §3.8): checkin state waits here, latest per agent,
//! and goes to the store as one batch every flush interval (one batch in flight at a time; a
//! failed batch comes back, behind anything newer). Parked agents' `last_checkin` is refreshed
//! on its own interval (§3.2 step 10).
//!
//! Management requests that show checkin state read their writes: a listing read straight from
//! the store would show a just-checked-in agent as offline for a flush interval, so such a
//! request waits for a batch being written and carries the state not yet handed to the writer,
//! which the operation merges over the stored documents.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde_json::{Map, Value};

use super::{ConnKey, Fleet, Output, ReplyTo};
use crate::backend::interface::{Job, JobOutput};
use crate::backend::CheckinWrite;
use crate::mgmt::{AdminRequest, Route};
use crate::model::time::rfc3339_seconds;

/// Most agents one batch writes: a flush of more (every parked agent's refresh, say) goes as
/// consecutive batches, so the copies a batch makes on its way into the store stay small. 200,
/// not 1,000: what a batch allocates on the backend worker (documents, the write transaction's
/// pages) stays resident in its glibc arena, trimmed or not as the last frees fall, so up to
/// 1,000 agents it grew with the fleet and swung by up to ~1.4 MiB between runs of the 1k CI
/// load run (issue 21); capped at 200 it is a fixed cost for any fleet above 200 agents.
pub(super) const MAX_FLUSH: usize = 200;

/// Pending checkin state and the batch in flight.
#[derive(Debug, Default)]
pub(super) struct Writer {
    /// Checkin state waiting for the next bulk write, latest per agent.
    bulk: HashMap<String, CheckinWrite>,
    /// Parked agents whose `last_checkin` refresh is not in `bulk` yet, and the time it writes.
    /// The flush takes them a batch at a time: a refresh of every parked agent put all N into
    /// `bulk` at once (~N × 500 bytes every 30 s), and the long-lived allocations made meanwhile
    /// kept that much heap resident after it was freed (issue 21).
    refresh: Vec<Arc<str>>,
    refresh_at: Value,
    /// A batch is being written.
    pub(super) inflight: bool,
    /// The batch in flight left entries of the same flush behind: they go when it is written.
    continuing: bool,
    /// Management requests showing checkin state, waiting for the batch in flight.
    admin_waiting: Vec<(ConnKey, AdminRequest)>,
}

impl Writer {
    /// Nothing pending, nothing in flight.
    pub(super) fn idle(&self) -> bool {
        !self.inflight && self.bulk.is_empty() && self.refresh.is_empty()
    }

    /// Agents with state not yet handed to the store.
    pub(super) fn pending(&self) -> usize {
        self.bulk.len() + self.refresh.len()
    }

    /// A checkin's state replaces the agent's pending one.
    pub(super) fn checkin(&mut self, agent_id: String, state: CheckinWrite) {
        self.bulk.insert(agent_id, state);
    }

    /// An OpAMP message's state: two messages within one flush merge, the newer one's members
    /// winning, as if both updates had been written in order.
    pub(super) fn merge(&mut self, agent_id: String, fields: Map<String, Value>) {
        match self.bulk.get_mut(&agent_id) {
            Some(pending) => pending.fields.extend(fields),
            None => {
                self.bulk.insert(agent_id, CheckinWrite::fields(fields));
            }
        }
    }

    /// A connection closed: its waiting management request is dropped.
    pub(super) fn forget(&mut self, conn: ConnKey) {
        self.admin_waiting.retain(|(k, _)| *k != conn);
    }
}

impl Fleet {
    /// Sends the pending checkin state to the store as one batch (unless one is in flight), due
    /// within the backend timeout.
    pub(super) fn flush_checkins(&mut self, now: Instant, wall: SystemTime) {
        if self.writer.inflight || !self.settings.has_store {
            return;
        }
        self.take_refreshes(MAX_FLUSH.saturating_sub(self.writer.bulk.len()));
        let writer = &mut self.writer;
        if writer.bulk.is_empty() {
            return;
        }
        let updated_at = Value::from(rfc3339_seconds(wall));
        let mut batch: Vec<(String, CheckinWrite)> = if writer.bulk.len() <= MAX_FLUSH {
            writer.bulk.drain().collect()
        } else {
            let ids: Vec<String> = writer.bulk.keys().take(MAX_FLUSH).cloned().collect();
            ids.into_iter()
                .filter_map(|id| writer.bulk.remove_entry(&id))
                .collect()
        };
        for (_, state) in &mut batch {
            state.fields.insert("updated_at".into(), updated_at.clone());
        }
        writer.continuing = !writer.bulk.is_empty() || !writer.refresh.is_empty();
        writer.inflight = true;
        self.outputs.push_back(Output::Submit {
            to: ReplyTo::Writer,
            job: Job::WriteCheckins(batch),
            deadline: now + self.settings.backend_timeout,
        });
    }

    /// §3.2 step 10: a parked agent is still checking in; its `last_checkin` moves with it, and
    /// a flush of it writes what every checkin flush writes (§3.8: status, message,
    /// `unhealthy_reason`, `sequence_num`), as Fleet Server's periodic re-checkin does. The
    /// agents are queued (one shared id each) and the flushes take them a batch at a time; a
    /// refresh still queued when the next one comes is replaced by it.
    pub(super) fn refresh_parked_checkins(&mut self, wall: SystemTime) {
        self.writer.refresh = self.waiters.agents().map(Arc::clone).collect();
        self.writer.refresh_at = Value::from(rfc3339_seconds(wall));
    }

    /// Moves up to `room` queued refreshes into the pending state (agents no longer parked
    /// are skipped: their checkin wrote a newer `last_checkin`, or will).
    fn take_refreshes(&mut self, room: usize) {
        let writer = &mut self.writer;
        let mut taken = 0;
        while taken < room {
            let Some(id) = writer.refresh.pop() else {
                break;
            };
            let parked = self.waiters.of_agent(&id);
            let Some(waiter) = parked.and_then(|k| super::parked_waiter(&self.inflight, k)) else {
                continue;
            };
            taken += 1;
            writer
                .bulk
                .entry(id.to_string())
                .or_insert_with(|| CheckinWrite::fields(waiter.repeat.members()))
                .fields
                .insert("last_checkin".into(), writer.refresh_at.clone());
        }
        if writer.refresh.is_empty() {
            // The queue's allocation is as large as the fleet: not kept between refreshes.
            writer.refresh = Vec::new();
        }
    }

    /// The batch in flight was written (entries that must be retried come back).
    pub(super) fn checkins_written(&mut self, output: JobOutput, now: Instant, wall: SystemTime) {
        self.writer.inflight = false;
        if let JobOutput::CheckinsWritten { retry, error } = output {
            if let Some(e) = error {
                log::warn!(
                    "writing checkin state failed ({e}); {} kept for the next flush",
                    retry.len()
                );
                // The rest of this flush waits for the next interval too.
                self.writer.continuing = false;
            }
            self.take_back(retry);
        }
        self.release_admin_waiting();
        if self.draining || std::mem::take(&mut self.writer.continuing) {
            self.flush_checkins(now, wall);
        }
    }

    /// The backend refused the batch: it waits for the next flush.
    pub(super) fn batch_refused(&mut self, job: Job) {
        self.writer.inflight = false;
        self.writer.continuing = false;
        if let Job::WriteCheckins(batch) = job {
            self.take_back(batch);
        }
        self.release_admin_waiting();
    }

    fn take_back(&mut self, batch: Vec<(String, CheckinWrite)>) {
        for (id, state) in batch {
            // A newer checkin of the same agent supersedes the failed one.
            self.writer.bulk.entry(id).or_insert(state);
        }
    }

    /// Submits a management request, with the pending checkin state it needs.
    pub(super) fn submit_admin(&mut self, conn: ConnKey, mut request: AdminRequest) {
        if request.reads_checkin_state() {
            if self.writer.inflight {
                // The batch being written is in no map any more; its reply releases this.
                self.writer.admin_waiting.push((conn, request));
                return;
            }
            let pending = |id: &String, write: &CheckinWrite| {
                let mut fields = write.fields.clone();
                if write.clear_audit {
                    // A null member is a removed one in the merged view, as in the stores.
                    for member in crate::backend::AUDIT_MEMBERS {
                        fields.insert(member.to_owned(), Value::Null);
                    }
                }
                (id.clone(), fields)
            };
            let bulk = &self.writer.bulk;
            request.pending_checkins = match &request.route {
                Route::GetAgent(id) => bulk
                    .get_key_value(id)
                    .map(|(id, write)| pending(id, write))
                    .into_iter()
                    .collect(),
                _ => bulk.iter().map(|(id, w)| pending(id, w)).collect(),
            };
        }
        self.submit(conn, Job::Admin(Box::new(request)));
    }

    /// The checkin write finished (or failed and its state is back in the pending map): the
    /// requests that waited for it go now.
    fn release_admin_waiting(&mut self) {
        for (conn, request) in std::mem::take(&mut self.writer.admin_waiting) {
            self.submit_admin(conn, request);
        }
    }
}
