//! Management requests on the event loop. Checkin state is written in batches (`fleet.rs`), so
//! a listing read straight from the store would show a just-checked-in agent as offline for a
//! flush interval. A request that shows checkin state therefore reads its writes: it waits for
//! a batch being written, and carries the state not yet handed to the writer, which the
//! operation merges over the stored documents.

use std::time::Instant;

use super::{ConnKey, Server};
use crate::backend::workers::Job;
use crate::mgmt::{AdminRequest, Route};

impl Server {
    /// Submits a management request to the workers, with the pending checkin state it needs.
    pub(super) fn submit_admin(&mut self, key: ConnKey, mut request: AdminRequest, now: Instant) {
        if request.reads_checkin_state() {
            if self.bulk_inflight {
                // The batch being written is in no map any more; its reply releases this.
                self.admin_waiting.push((key, request));
                return;
            }
            let pending = |id: &String, write: &crate::backend::CheckinWrite| {
                let mut fields = write.fields.clone();
                if write.clear_audit {
                    // A null member is a removed one in the merged view, as in the stores.
                    for member in crate::backend::AUDIT_MEMBERS {
                        fields.insert(member.to_owned(), serde_json::Value::Null);
                    }
                }
                (id.clone(), fields)
            };
            request.pending_checkins = match &request.route {
                Route::GetAgent(id) => self
                    .bulk
                    .get_key_value(id)
                    .map(|(id, write)| pending(id, write))
                    .into_iter()
                    .collect(),
                _ => self.bulk.iter().map(|(id, w)| pending(id, w)).collect(),
            };
        }
        self.submit(key, Job::Admin(request), now);
    }

    /// The checkin write finished (or failed and its state is back in the pending map): the
    /// requests that waited for it go now.
    pub(super) fn release_admin_waiting(&mut self, now: Instant) {
        for (key, request) in std::mem::take(&mut self.admin_waiting) {
            self.submit_admin(key, request, now);
        }
    }
}
