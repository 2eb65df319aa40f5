//! The change feed of the Elasticsearch store (fleet-protocol.md §6.1): `.fleet-policies` and
//! `.fleet-actions` followed through `GET /<index>/_fleet/global_checkpoints` and fetched with
//! `POST /<index>/_fleet/_fleet_search?wait_for_checkpoints=<n>`, paged by `fetch_size`.
//!
//! Two follower threads (one per index, started by the first `changes` call, stopped when the
//! store is dropped) long-poll with `wait_for_advance=true&wait_for_index=true` from the last
//! checkpoint they saw and bump a generation counter when it moves. `changes` reads both
//! checkpoints directly (a cheap non-waiting call), returns at once when either is past the
//! caller's cursor, and otherwise sleeps on a condition variable until a follower reports an
//! advance or the deadline passes, so it returns as soon as either index moves, without polling.
//! The followers' checkpoint of `.fleet-actions` is also the bound of the pending-actions query
//! (§3.4), as in Fleet Server. Missing index: checkpoint -1, not an error. A running server does
//! not call `changes`: the followers deliver to it themselves (`follow.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::bodies::{checkpoints_poll, q_monitor, ACTIONS, FETCH_SIZE, POLICIES};
use super::client::{failure_error, status_error, Client, Method, Req};
use crate::backend::{Changes, Cursor, StoreError};
use crate::model::time::rfc3339_seconds;
use crate::model::{Action, PolicyDoc};
use follow::DeliveryLock;

// The followers' delivery to the backend: the second half of `Feed`'s impl.
mod follow;

/// The followed indices, in follower order.
pub(super) const INDICES: [&str; 2] = [POLICIES, ACTIONS];

#[derive(Debug, Default)]
struct State {
    /// Bumped whenever a follower sees its index's checkpoint change.
    generation: u64,
    /// What each follower last saw; `None` while it is failing or not started.
    known: [Option<i64>; 2],
    started: bool,
    stop: bool,
}

/// The feed; shared by the store and its two follower threads.
#[derive(Debug)]
pub struct Feed {
    client: Arc<Client>,
    state: Mutex<State>,
    cv: Condvar,
    running: AtomicUsize,
    /// The sink the followers deliver to (`follow.rs`).
    delivery: DeliveryLock,
}

enum Poll {
    Advanced(i64),
    TimedOut,
    IndexMissing,
}

impl Feed {
    /// A feed over `client` (followers start with the first [`Feed::changes`]).
    pub fn new(client: Arc<Client>) -> Arc<Feed> {
        Arc::new(Feed {
            client,
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
            running: AtomicUsize::new(0),
            delivery: DeliveryLock::default(),
        })
    }

    /// The sink the followers deliver to.
    pub(super) fn delivery(&self) -> &DeliveryLock {
        &self.delivery
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the followers (each exits when its current long poll returns).
    pub fn stop(&self) {
        self.detach();
        self.lock().stop = true;
        self.cv.notify_all();
    }

    /// Follower threads alive now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// The `.fleet-actions` checkpoint the follower holds, when it is running and healthy.
    pub fn actions_checkpoint(&self) -> Option<i64> {
        self.lock().known[1]
    }

    pub(super) fn ensure_started(self: &Arc<Self>) {
        let mut st = self.lock();
        if st.started || st.stop {
            return;
        }
        st.started = true;
        drop(st);
        for (i, index) in INDICES.iter().enumerate() {
            let feed = Arc::clone(self);
            self.running.fetch_add(1, Ordering::SeqCst);
            let spawned = std::thread::Builder::new()
                .name(format!("fleet-edge-es-follow-{i}"))
                .spawn(move || {
                    feed.follow(i);
                    feed.running.fetch_sub(1, Ordering::SeqCst);
                });
            if let Err(e) = spawned {
                self.running.fetch_sub(1, Ordering::SeqCst);
                log::error!("cannot start the {index} follower: {e}");
            }
        }
    }

    /// `GET /<index>/_fleet/global_checkpoints` (no wait); a missing index is -1.
    pub fn checkpoint(&self, index: &str) -> Result<i64, StoreError> {
        let req = Req::new(Method::Get, format!("/{index}/_fleet/global_checkpoints"));
        let resp = self.client.call(&req, &[404])?;
        if resp.status == 404 {
            return Ok(-1);
        }
        first_checkpoint(&resp.json())
    }

    fn poll(&self, i: usize, checkpoint: i64) -> Result<Poll, StoreError> {
        let timeout = self.client.options().poll_timeout.as_millis();
        let req = Req::new(
            Method::Get,
            checkpoints_poll(INDICES[i], checkpoint, timeout),
        )
        .long_poll();
        let resp = self.client.send(&req).map_err(failure_error)?;
        match resp.status {
            504 => Ok(Poll::TimedOut),
            404 => Ok(Poll::IndexMissing),
            200 if resp.json()["timed_out"].as_bool() == Some(true) => Ok(Poll::TimedOut),
            200 => first_checkpoint(&resp.json()).map(Poll::Advanced),
            _ => Err(status_error(&resp)),
        }
    }

    /// Sleeps up to `d`, waking early on stop; returns whether to stop.
    fn pause(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut st = self.lock();
        while !st.stop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            st = match self.cv.wait_timeout(st, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        st.stop
    }

    fn follow(&self, i: usize) {
        let mut seen: Option<i64> = None;
        let mut backoff = Duration::from_millis(500);
        loop {
            if self.lock().stop {
                return;
            }
            let result = match seen {
                None => self.checkpoint(INDICES[i]).map(Poll::Advanced),
                Some(cp) => self.poll(i, cp),
            };
            match result {
                Ok(Poll::Advanced(cp)) => {
                    backoff = Duration::from_millis(500);
                    let mut st = self.lock();
                    st.known[i] = Some(cp);
                    if seen != Some(cp) {
                        st.generation += 1;
                        drop(st);
                        self.cv.notify_all();
                    }
                    seen = Some(cp);
                    if !self.deliver(i, cp) {
                        // Read the checkpoint again (no long poll) and retry after a pause.
                        seen = None;
                        if self.pause(backoff) {
                            return;
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
                Ok(Poll::TimedOut) => self.report(i, true),
                Ok(Poll::IndexMissing) => {
                    self.report(i, true);
                    // `wait_for_index` already waited; do not spin if it answered at once.
                    if self.pause(Duration::from_secs(1)) {
                        return;
                    }
                }
                Err(e) => {
                    log::debug!("{} follower: {e}", INDICES[i]);
                    self.lock().known[i] = None;
                    self.report(i, false);
                    seen = None;
                    if self.pause(backoff) {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// `Store::changes` (see the module header).
    pub fn changes(
        self: &Arc<Self>,
        since: Cursor,
        now: SystemTime,
        wait: Duration,
    ) -> Result<Changes, StoreError> {
        self.ensure_started();
        let deadline = Instant::now() + wait;
        loop {
            let generation = self.lock().generation;
            let policies = self.checkpoint(POLICIES)?;
            let actions = self.checkpoint(ACTIONS)?;
            if policies != since.policies || actions != since.actions {
                return self.collect(since, Cursor { policies, actions }, now);
            }
            let mut st = self.lock();
            while st.generation == generation && !st.stop {
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    return Ok(Changes::default());
                };
                st = match self.cv.wait_timeout(st, left) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
            if st.stop {
                return Ok(Changes::default());
            }
        }
    }

    fn collect(&self, since: Cursor, to: Cursor, now: SystemTime) -> Result<Changes, StoreError> {
        // A checkpoint below the cursor means the index was recreated: read it from the start.
        let from = |s: i64, t: i64| if t < s { -1 } else { s };
        let mut changes = Changes {
            cursor: Some(to),
            ..Changes::default()
        };
        if to.policies != since.policies {
            for hit in self.fetch(
                POLICIES,
                from(since.policies, to.policies),
                to.policies,
                None,
            )? {
                match serde_json::from_value::<PolicyDoc>(hit["_source"].clone()) {
                    Ok(doc) => changes.policies.push(doc),
                    Err(e) => log::warn!("skipping policy document {}: {e}", hit["_id"]),
                }
            }
        }
        if to.actions != since.actions {
            let now = rfc3339_seconds(now);
            let hits = self.fetch(
                ACTIONS,
                from(since.actions, to.actions),
                to.actions,
                Some(&now),
            )?;
            changes.actions = hits.iter().filter_map(action_from_hit).collect();
        }
        Ok(changes)
    }

    pub(super) fn fetch(
        &self,
        index: &str,
        after: i64,
        upto: i64,
        now: Option<&str>,
    ) -> Result<Vec<Value>, StoreError> {
        let mut out = Vec::new();
        let mut after = after;
        while after < upto {
            let req = Req::new(
                Method::Post,
                format!("/{index}/_fleet/_fleet_search?wait_for_checkpoints={upto}"),
            )
            .json(&q_monitor(after, upto, now))
            .long_poll();
            let resp = self.client.call(&req, &[404])?;
            if resp.status == 404 {
                break;
            }
            let mut body = resp.json();
            let hits = match body.pointer_mut("/hits/hits").map(Value::take) {
                Some(Value::Array(h)) => h,
                _ => Vec::new(),
            };
            let full = hits.len() >= FETCH_SIZE;
            let last = hits.last().and_then(|h| h["_seq_no"].as_i64());
            out.extend(hits);
            match (full, last) {
                (true, Some(seq)) if seq > after => after = seq,
                _ => break,
            }
        }
        Ok(out)
    }
}

fn first_checkpoint(v: &Value) -> Result<i64, StoreError> {
    v["global_checkpoints"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_i64)
        .ok_or_else(|| StoreError::Failed {
            status: 500,
            detail: format!("global_checkpoints missing in {v}"),
        })
}

/// An action from a search hit: `_source` plus `_id` and `_seq_no`.
pub fn action_from_hit(hit: &Value) -> Option<Action> {
    let mut action: Action = match serde_json::from_value(hit["_source"].clone()) {
        Ok(a) => a,
        Err(e) => {
            log::warn!("skipping action document {}: {e}", hit["_id"]);
            return None;
        }
    };
    action.doc_id = hit["_id"].as_str().unwrap_or_default().to_owned();
    action.seq_no = hit["_seq_no"].as_i64().unwrap_or(-1);
    Some(action)
}
