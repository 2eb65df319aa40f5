//! The listing index: an [`AgentSummary`] per agent, kept in memory so that the management
//! API's agent listings, status counts and per-policy counts filter and sort summaries instead
//! of decoding every agent document (10,000 of them on each page of the console otherwise).
//!
//! Built on the first listing by one scan of the agents table. From then on the committer marks
//! every agent a durable commit wrote (`committer::AgentMarks`, published before the writer is
//! answered), and each listing first re-reads only the marked agents: a write is in the next
//! listing, and a listing costs what was written since the last one. The marks are taken before
//! the re-reading read transaction begins, so a write that commits meanwhile is either seen by
//! that transaction or left marked for the next listing; re-reading an agent twice is harmless.
//! When more than `MAX_MARKS` agents were written between two listings, the index is rebuilt.
//!
//! Summaries are kept sorted by agent id; a listing gets a shared snapshot (`Arc`) it can keep
//! while the next one updates a copy.

use std::sync::{Arc, Mutex};

use redb::ReadableTable;

use super::error::unavailable;
use super::schema::{decode_agent, AGENTS};
use super::store::table;
use super::LocalStore;
use crate::backend::StoreError;
use crate::model::agent_summary::AgentSummary;

/// The index: `None` until the first listing asks.
#[derive(Debug, Default)]
pub(super) struct AgentIndex {
    rows: Mutex<Option<Arc<Vec<AgentSummary>>>>,
}

impl LocalStore {
    /// Every agent's summary, sorted by id, current as of every write acknowledged so far.
    pub fn agent_summaries(&self) -> Result<Arc<Vec<AgentSummary>>, StoreError> {
        let mut rows = self.index.rows.lock().unwrap_or_else(|p| p.into_inner());
        let (ids, overflow) = {
            let mut marks = self
                .shared
                .agent_marks
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            marks.tracking = true;
            let overflow = std::mem::take(&mut marks.overflow);
            (std::mem::take(&mut marks.ids), overflow)
        };
        let current = match rows.as_mut() {
            Some(current) if !overflow => current,
            _ => {
                let built = Arc::new(self.read_summaries()?);
                *rows = Some(Arc::clone(&built));
                return Ok(built);
            }
        };
        if !ids.is_empty() {
            let mut ids: Vec<String> = ids.into_strings();
            ids.sort_unstable();
            let fresh = self.read(|txn| {
                let agents = table(txn, AGENTS)?;
                ids.iter()
                    .map(|id| match agents.get(id.as_str()).map_err(unavailable)? {
                        Some(bytes) => decode_agent(id, bytes.value())
                            .map(|a| (id.as_str(), Some(AgentSummary::of(&a)))),
                        None => Ok((id.as_str(), None)),
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            });
            let fresh = match fresh {
                Ok(fresh) => fresh,
                Err(e) => {
                    // The marks are gone: start over on the next listing.
                    *rows = None;
                    return Err(e);
                }
            };
            apply(Arc::make_mut(current), fresh);
        }
        Ok(Arc::clone(current))
    }

    /// One scan of the agents table into summaries, by id.
    fn read_summaries(&self) -> Result<Vec<AgentSummary>, StoreError> {
        self.read(|txn| {
            let mut out = Vec::new();
            for entry in table(txn, AGENTS)?.iter().map_err(unavailable)? {
                let (id, bytes) = entry.map_err(unavailable)?;
                out.push(AgentSummary::of(&decode_agent(id.value(), bytes.value())?));
            }
            Ok(out)
        })
    }
}

/// Replaces, inserts or removes (`None`) the re-read agents in `rows` (sorted by id).
fn apply(rows: &mut Vec<AgentSummary>, fresh: Vec<(&str, Option<AgentSummary>)>) {
    let mut gone = Vec::new();
    let mut added = Vec::new();
    for (id, summary) in fresh {
        match (rows.binary_search_by(|r| r.id().cmp(id)), summary) {
            (Ok(at), Some(summary)) => rows[at] = summary,
            (Err(_), Some(summary)) => added.push(summary),
            (Ok(at), None) => gone.push(at),
            (Err(_), None) => {}
        }
    }
    if !gone.is_empty() {
        gone.sort_unstable();
        let mut at = 0;
        rows.retain(|_| {
            let keep = gone.binary_search(&at).is_err();
            at += 1;
            keep
        });
    }
    if !added.is_empty() {
        rows.extend(added);
        rows.sort_by(|a, b| a.id().cmp(b.id()));
    }
}
