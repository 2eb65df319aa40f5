//! The store's change feed relayed to the event loop as [`Event`]s (DESIGN.md §1): a
//! [`FeedSink`] takes batches of new policy and action documents and reachability changes,
//! whoever follows the feed. A store with follower threads of its own (Elasticsearch's
//! checkpoint followers, [`Store::follow`]) calls the sink from them; for the others (the
//! embedded and the memory store) the backend runs [`monitor`] on one thread over
//! [`Store::changes`]. [`Relay`] is the sink the backend hands out: it prepares the newest
//! revision of each policy (secrets resolved), resolves live actions' inline secrets, sends the
//! events and wakes the loop.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::remote::RemoteClusters;
use super::workers::{prepare_policy, resolve_action_secrets, Event, Notify};
use super::{Cursor, Store};
use crate::model::{Action, PolicyDoc};

/// Where a change-feed follower delivers. Each method returns false once nobody listens (the
/// loop has gone): the follower stops.
pub trait FeedSink: Send + Sync {
    /// New policy revision documents, oldest first.
    fn policies(&self, docs: &[PolicyDoc]) -> bool;
    /// Action documents written while this server runs, `seq_no` ascending (documents present
    /// before it started reach agents through their pending-actions query, not here).
    fn actions(&self, actions: Vec<Action>) -> bool;
    /// The feed failed (`false`) or works again (`true`); sent on changes only.
    fn reachable(&self, up: bool) -> bool;
}

/// The backend's sink: events to the loop over a channel, then a wake-up.
pub struct Relay {
    store: Arc<dyn Store>,
    remotes: Arc<RemoteClusters>,
    events: Sender<Event>,
    notify: Notify,
}

impl Relay {
    /// A sink preparing policies with `store` (its secrets) and `remotes` (which learn the
    /// clusters of remote outputs), sending to `events` and calling `notify` after each batch.
    pub fn new(
        store: Arc<dyn Store>,
        remotes: Arc<RemoteClusters>,
        events: Sender<Event>,
        notify: Notify,
    ) -> Self {
        Self {
            store,
            remotes,
            events,
            notify,
        }
    }

    fn send(&self, event: Event) -> bool {
        self.events.send(event).is_ok()
    }
}

impl FeedSink for Relay {
    fn policies(&self, docs: &[PolicyDoc]) -> bool {
        let mut newest: HashMap<&str, &PolicyDoc> = HashMap::new();
        for doc in docs {
            let entry = newest.entry(doc.policy_id.as_str()).or_insert(doc);
            if doc.revision_idx > entry.revision_idx {
                *entry = doc;
            }
        }
        for doc in newest.into_values() {
            let event = match prepare_policy(&*self.store, doc) {
                Ok(p) => {
                    // Keys made on a remote output's cluster can be invalidated later by the
                    // configuration hash agent documents keep.
                    for remote in p.es_outputs.iter().filter_map(|o| o.remote.as_ref()) {
                        self.remotes.learn(remote);
                    }
                    Event::Policy(Arc::new(p))
                }
                Err(reason) => Event::PolicyRejected {
                    policy_id: doc.policy_id.clone(),
                    revision: doc.revision_idx,
                    reason,
                },
            };
            if !self.send(event) {
                return false;
            }
        }
        (self.notify)();
        true
    }

    fn actions(&self, actions: Vec<Action>) -> bool {
        if actions.is_empty() {
            return true;
        }
        let actions = actions
            .into_iter()
            .map(|a| resolve_action_secrets(&*self.store, a))
            .collect();
        if !self.send(Event::Actions(actions)) {
            return false;
        }
        (self.notify)();
        true
    }

    fn reachable(&self, up: bool) -> bool {
        if !self.send(Event::StoreReachable(up)) {
            return false;
        }
        (self.notify)();
        true
    }
}

/// Follows `store`'s change feed into `sink` until `stop` is dropped (or sent to) or the sink
/// has nobody listening; each read blocks at most `wait`, which bounds how long stopping takes.
pub fn monitor(store: &dyn Store, sink: &dyn FeedSink, stop: &Receiver<()>, wait: Duration) {
    let mut cursor: Option<Cursor> = None;
    let mut reachable = true;
    let mut backoff = Duration::from_millis(500);
    loop {
        let since = cursor.unwrap_or(Cursor::START);
        let changes = store.changes(since, SystemTime::now(), wait);
        if !matches!(stop.try_recv(), Err(TryRecvError::Empty)) {
            return;
        }
        let changes = match changes {
            Ok(c) => c,
            Err(e) => {
                if reachable {
                    log::warn!("store change feed failed ({e}); retrying");
                    reachable = false;
                    if !sink.reachable(false) {
                        return;
                    }
                }
                // The monitor thread may wait: it owns nothing the loop needs.
                if !matches!(stop.recv_timeout(backoff), Err(RecvTimeoutError::Timeout)) {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(500);
        if !reachable {
            reachable = true;
            if !sink.reachable(true) {
                return;
            }
        }
        if !changes.policies.is_empty() && !sink.policies(&changes.policies) {
            return;
        }
        // Actions present before this server started reach agents through the pending query;
        // only documents written while running are dispatched live.
        if cursor.is_some() && !sink.actions(changes.actions) {
            return;
        }
        if let Some(next) = changes.cursor {
            cursor = Some(next);
        } else if cursor.is_none() {
            cursor = Some(Cursor::START);
        }
    }
}
