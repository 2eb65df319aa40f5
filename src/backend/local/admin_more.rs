//! More of the writes and listings the management API makes on the embedded store (beside
//! `admin.rs`): every action for the action-status listing, and removing a policy.

use redb::ReadableTable;

use super::committer::WriteFault;
use super::error::unavailable;
use super::schema::{decode, StoredAction, ACTIONS, POLICY_LATEST};
use super::store::table;
use super::LocalStore;
use crate::backend::StoreError;
use crate::model::Action;

impl LocalStore {
    /// Every action document, oldest first (with its document id and `seq_no`).
    pub fn list_actions(&self) -> Result<Vec<Action>, StoreError> {
        self.read(|txn| {
            let mut out = Vec::new();
            for entry in table(txn, ACTIONS)?.iter().map_err(unavailable)? {
                let (seq, bytes) = entry.map_err(unavailable)?;
                let stored: StoredAction = decode("action", bytes.value())?;
                let mut action = stored.source;
                action.doc_id = stored.id;
                action.seq_no = seq.value();
                out.push(action);
            }
            Ok(out)
        })
    }

    /// Takes policy `id` out of the latest-revision index, so it is no longer listed or served
    /// (its revision documents stay, as Fleet keeps `.fleet-policies` history). `NotFound` when
    /// it is not there.
    pub fn remove_policy(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.committer.write(move |batch| {
            let mut latest = batch.txn().open_table(POLICY_LATEST)?;
            if latest.remove(id.as_str())?.is_none() {
                return Err(WriteFault::Answer(StoreError::NotFound));
            }
            Ok(())
        })
    }
}
