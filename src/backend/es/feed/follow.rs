//! The Elasticsearch change feed delivered by its own follower threads ([`Store::follow`]): no
//! monitor thread relays for them. Each follower, when its index's checkpoint moves, fetches the
//! documents the attached [`FeedSink`] has not had (`_fleet_search` with `wait_for_checkpoints`,
//! as `Feed::changes` does) and hands them over: every policy revision from the start, then new
//! ones; actions only past the checkpoint seen when the sink was attached (older ones reach
//! agents through their pending-actions query). A failed fetch leaves the sink's position where
//! it was and the follower retries without a long poll; the sink hears `reachable(false)` when a
//! follower fails and `reachable(true)` when every follower works again.
//!
//! One [`Delivery`] lock covers a fetch and its hand-over, so [`Feed::detach`] returns only
//! once nothing more can reach the old sink. [`Feed::catch_up`] lets a worker deliver at once
//! after `follow`, instead of waiting for a follower's long poll to return (a rebind in agent
//! mode attaches a new sink to followers already waiting).
//!
//! [`Store::follow`]: crate::backend::Store::follow

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use super::{action_from_hit, Feed, INDICES};
use crate::backend::es::bodies::ACTIONS;
use crate::backend::relay::FeedSink;
use crate::backend::StoreError;
use crate::model::time::rfc3339_seconds;
use crate::model::PolicyDoc;

/// Index 0 of [`INDICES`]: `.fleet-policies`.
const POLICIES_AT: usize = 0;

/// The sink attached to a feed and what it has had.
#[derive(Default)]
pub struct Delivery {
    sink: Option<Arc<dyn FeedSink>>,
    /// Per index: the checkpoint up to which the sink has the documents. `None`: policies from
    /// the start; actions from the next checkpoint seen (the baseline).
    delivered: [Option<i64>; 2],
    /// Per index: the follower's last step failed.
    failing: [bool; 2],
    /// What the sink was last told (it starts out reachable).
    reported_down: bool,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("attached", &self.sink.is_some())
            .field("delivered", &self.delivered)
            .finish_non_exhaustive()
    }
}

/// The lock over a feed's delivery.
pub type DeliveryLock = Mutex<Delivery>;

fn lock(delivery: &DeliveryLock) -> MutexGuard<'_, Delivery> {
    delivery.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Feed {
    /// Attaches `sink` (replacing any other) and starts the followers if they are not running.
    pub fn attach(self: &Arc<Self>, sink: Arc<dyn FeedSink>) {
        // Actions the running follower has already seen are older than this server's start.
        let actions_seen = self.actions_checkpoint();
        *lock(self.delivery()) = Delivery {
            sink: Some(sink),
            delivered: [None, actions_seen],
            ..Delivery::default()
        };
        self.ensure_started();
    }

    /// Detaches the sink; nothing reaches it after this returns.
    pub fn detach(&self) {
        let detached = std::mem::take(&mut *lock(self.delivery()));
        // Dropped after the lock: the sink may hold the last reference to a store.
        drop(detached);
    }

    /// Brings the attached sink up to the current checkpoints now (both indices).
    pub fn catch_up(&self) {
        for (index, name) in INDICES.iter().enumerate() {
            match self.checkpoint(name) {
                Ok(checkpoint) => {
                    self.deliver(index, checkpoint);
                }
                Err(e) => {
                    log::debug!("{name} catch-up: {e}");
                    self.report(index, false);
                }
            }
        }
    }

    /// A follower of `index` saw `checkpoint`: hands the attached sink what it has not had.
    /// Whether that worked (true also with no sink attached).
    pub fn deliver(&self, index: usize, checkpoint: i64) -> bool {
        let mut delivery = lock(self.delivery());
        let Some(sink) = delivery.sink.clone() else {
            return true;
        };
        let from = match (index, delivery.delivered[index]) {
            (_, Some(at)) if at == checkpoint => None,
            // A checkpoint below the position: the index was recreated; read it from the start.
            (_, Some(at)) if at > checkpoint => Some(-1),
            (_, Some(at)) => Some(at),
            (POLICIES_AT, None) => Some(-1),
            (_, None) => None,
        };
        let handed = match from {
            None => Ok(true),
            Some(from) => self.hand_over(&*sink, index, from, checkpoint),
        };
        let ok = match handed {
            Ok(listening) => {
                delivery.delivered[index] = Some(checkpoint);
                if !listening {
                    delivery.sink = None;
                }
                true
            }
            Err(e) => {
                log::debug!("{} delivery: {e}", INDICES[index]);
                false
            }
        };
        Self::note(&mut delivery, index, ok);
        ok
    }

    /// Records a follower's failure or success and tells the sink when reachability changed.
    pub fn report(&self, index: usize, ok: bool) {
        Self::note(&mut lock(self.delivery()), index, ok);
    }

    fn note(delivery: &mut Delivery, index: usize, ok: bool) {
        delivery.failing[index] = !ok;
        let down = delivery.failing.iter().any(|f| *f);
        if down == delivery.reported_down {
            return;
        }
        let Some(sink) = delivery.sink.clone() else {
            return;
        };
        if !down {
            log::info!("Elasticsearch change feed works again");
        } else {
            log::warn!("Elasticsearch change feed failed; retrying");
        }
        delivery.reported_down = down;
        if !sink.reachable(!down) {
            delivery.sink = None;
        }
    }

    /// Fetches `(from, to]` of `index` and gives it to `sink`; whether the sink still listens.
    fn hand_over(
        &self,
        sink: &dyn FeedSink,
        index: usize,
        from: i64,
        to: i64,
    ) -> Result<bool, StoreError> {
        if to <= from {
            return Ok(true);
        }
        if INDICES[index] == ACTIONS {
            let now = rfc3339_seconds(SystemTime::now());
            let hits = self.fetch(ACTIONS, from, to, Some(&now))?;
            return Ok(sink.actions(hits.iter().filter_map(action_from_hit).collect()));
        }
        let hits = self.fetch(INDICES[index], from, to, None)?;
        let docs: Vec<PolicyDoc> = hits
            .iter()
            .filter_map(|hit| match serde_json::from_value(hit["_source"].clone()) {
                Ok(doc) => Some(doc),
                Err(e) => {
                    log::warn!("skipping policy document {}: {e}", hit["_id"]);
                    None
                }
            })
            .collect();
        Ok(docs.is_empty() || sink.policies(&docs))
    }
}
