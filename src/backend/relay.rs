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

use serde_json::Value;

use super::interface::Event;
use super::remote::RemoteClusters;
use super::{Cursor, Store};
use crate::model::{Action, PolicyDoc};
use crate::transform::prepared_policy::PreparedPolicy;
use crate::transform::secrets::referenced_ids;

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

/// Callback that wakes the event loop.
pub type Notify = Arc<dyn Fn() + Send + Sync>;

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

/// Prepares a policy revision with its secrets resolved.
pub fn prepare_policy(store: &dyn Store, doc: &PolicyDoc) -> Result<PreparedPolicy, String> {
    let mut secrets = HashMap::new();
    for id in referenced_ids(&doc.data) {
        match store.secret(&id) {
            Ok(Some(value)) => {
                secrets.insert(id, value);
            }
            Ok(None) => log::warn!("policy {} references unknown secret {id}", doc.policy_id),
            Err(e) => return Err(format!("reading secret {id}: {e}")),
        }
    }
    PreparedPolicy::prepare_with(doc, &secrets, store.mints_output_keys())
        .map_err(|e| e.to_string())
}

/// §3.12: inline secret references in an action's `data` are resolved for live dispatch (the
/// pending-query path delivers `data` as stored, as Fleet Server does).
pub fn resolve_action_secrets(store: &dyn Store, mut action: Action) -> Action {
    let ids: Vec<String> = action
        .other
        .get("secret_references")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        return action;
    }
    let mut secrets = HashMap::new();
    for id in ids {
        match store.secret(&id) {
            Ok(Some(value)) => {
                secrets.insert(id, value);
            }
            Ok(None) => log::warn!("action {} references unknown secret {id}", action.action_id),
            Err(e) => log::warn!("action {}: reading secret {id}: {e}", action.action_id),
        }
    }
    crate::transform::secrets::resolve_inline(&mut action.data, &secrets);
    action
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::backend::memory::MemoryStore;

    #[test]
    fn live_actions_get_inline_secrets_resolved() {
        let store = MemoryStore::new();
        store.add_secret("tok", "s3cret").unwrap();
        let mut action = Action {
            action_id: "a".into(),
            action_type: "INPUT_ACTION".into(),
            data: json!({"auth": "Bearer $co.elastic.secret{tok}", "unknown": "$co.elastic.secret{nope}"}),
            ..Action::default()
        };
        action.other.insert(
            "secret_references".into(),
            json!([{"id": "tok"}, {"id": "nope"}]),
        );
        let resolved = resolve_action_secrets(&store, action.clone());
        assert_eq!(resolved.data["auth"], "Bearer s3cret");
        assert_eq!(
            resolved.data["unknown"], "$co.elastic.secret{nope}",
            "unknown id left in place"
        );
        action.other.clear();
        assert_eq!(
            resolve_action_secrets(&store, action.clone()).data,
            action.data,
            "no references, untouched"
        );
    }
}
