//! A checkin after its store part (fleet-protocol.md §3.2): answer with pending actions, answer
//! with live actions that arrived while the pending query ran (the early-action window), deliver
//! a newer policy revision (making output keys first when they are not current), or park until
//! a revision, an action or the long-poll deadline. Also: live dispatch of new actions to parked
//! agents (§5.2) and the long-poll expiry.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::{parked_waiter, CheckinWait, ConnKey, Fleet};
use crate::api::{errors, ApiError};
use crate::backend::interface::CheckinStart;
use crate::backend::interface::Job;
use crate::backend::OpError;
use crate::core::deadlines::Ticket;
use crate::core::longpoll::{
    actions_body, empty_body, policy_change, poll_duration, subscription_revision, Waiter,
};
use crate::http::{Body, Response};
use crate::model::Action;
use crate::transform::actions::{is_delivered_type, rollout_start_time, to_wire};
use crate::transform::prepared_policy::PreparedPolicy;

/// Wire actions with the `seq_no` of their document.
pub(super) type Sequenced = Vec<(i64, Value)>;

/// A 200 checkin answer carrying `body`.
pub(super) fn checkin_response(body: Vec<u8>) -> Response {
    Response::new(200)
        .with_header("Content-Type", "application/json")
        .with_body(Body::Bytes(body))
}

/// A checkin answered with a POLICY_CHANGE ([`policy_change`]: gzipped in advance).
fn policy_change_response(body: Body) -> Response {
    Response::new(200)
        .with_header("Content-Type", "application/json")
        .with_body(body)
}

/// The answer of a long poll that ends with nothing to deliver.
pub(super) fn empty_response() -> Response {
    checkin_response(empty_body())
}

impl Fleet {
    /// The store part of a checkin finished.
    pub(super) fn checkin_started(
        &mut self,
        key: ConnKey,
        result: Result<CheckinStart, OpError>,
        now: Instant,
    ) {
        let start = match result {
            Ok(start) => start,
            Err(e) => {
                let e = ApiError::from(&e);
                if let Some(inflight) = self.inflight.get(&key) {
                    inflight.pending.log_refusal(&e);
                }
                return self.respond(key, errors::respond(&e));
            }
        };
        let agent_id = start.agent.id.clone();
        self.starting.remove(&agent_id);
        let early = self.early.remove(&agent_id);
        self.writer.checkin(agent_id.clone(), start.state);
        if !start.actions.is_empty() {
            // Anything that arrived meanwhile has a higher seq_no: the next checkin reads it.
            let body = actions_body(&start.ack_token, &start.actions);
            return self.respond(key, checkin_response(body));
        }
        // Live copies of actions the pending query already delivered are not delivered twice.
        if let Some((actions, token)) = early.map(|(a, t)| (newer_than(a, start.position), t)) {
            if !actions.is_empty() {
                return self.respond(key, checkin_response(actions_body(&token, &actions)));
            }
        }
        let revision = subscription_revision(&start.agent, &start.body, &self.cache);
        let mut waiter = Waiter::for_agent(&start.agent, revision, start.position);
        if let Some(policy) = self
            .cache
            .get(&start.agent.policy_id)
            .filter(|p| p.revision > revision)
            .cloned()
        {
            return self.deliver_policy(key, &waiter, policy);
        }
        if self.draining {
            return self.respond(key, empty_response());
        }
        // Only a parked waiter keeps these (a delivery does not write them again), and only
        // parks meet `last_repeat`: first checkins, answered with the policy, report another
        // state and would take turns with the parked ones there.
        waiter.repeat =
            crate::core::longpoll::Repeat::new(&start.repeat).share(&mut self.last_repeat);
        let random = self.ids.next_unit();
        let Some(inflight) = self.inflight.get_mut(&key) else {
            return;
        };
        let setup = now.saturating_duration_since(inflight.started);
        let hold = poll_duration(&self.settings.poll, start.poll_timeout, setup, random);
        log::debug!("checkin of agent {agent_id} parked for {hold:?}");
        // An agent's own poll_timeout may hold it past the server's long poll: its jobs (output
        // keys of a new revision) are due by the end of the hold.
        inflight.deadline = inflight.deadline.map(|due| due.max(now + hold));
        let ticket = self.long_polls.arm(key, now + hold);
        // Only the submission needed it (`starting`); the waiter's copy is the one kept.
        inflight.holds = None;
        inflight.open = self.timing.park(key);
        let old = self.waiters.park(key, &mut waiter);
        inflight.checkin = Some(CheckinWait {
            agent_id: Arc::clone(&waiter.agent_id),
            parked: Some(ticket),
            policy: None,
            waiter: Some(waiter),
        });
        if let Some(old) = old {
            // The agent checked in again on another connection; the old poll is answered
            // (which unparks it).
            self.respond(old, empty_response());
        }
    }

    /// Answers with a POLICY_CHANGE, making output keys first when they are not current.
    pub(super) fn deliver_policy(
        &mut self,
        key: ConnKey,
        waiter: &Waiter,
        policy: Arc<PreparedPolicy>,
    ) {
        if let Some(keys) = waiter.current_keys(&policy) {
            let body = policy_change(&policy, &waiter.agent_id, &keys);
            return self.respond(key, policy_change_response(body));
        }
        let Some(inflight) = self.inflight.get_mut(&key) else {
            return;
        };
        inflight.checkin = Some(CheckinWait {
            agent_id: Arc::clone(&waiter.agent_id),
            parked: None,
            policy: Some(Arc::clone(&policy)),
            waiter: None,
        });
        let job = Job::OutputKeys {
            agent_id: waiter.agent_id.to_string(),
            policy,
        };
        self.submit(key, job);
    }

    /// Output keys for the revision being delivered are ready.
    pub(super) fn keys_ready(
        &mut self,
        key: ConnKey,
        result: Result<BTreeMap<String, String>, OpError>,
    ) {
        let keys = match result {
            Ok(keys) => keys,
            Err(e) => return self.respond(key, errors::respond(&ApiError::from(&e))),
        };
        let Some(wait) = self.inflight.get(&key).and_then(|i| i.checkin.as_ref()) else {
            return;
        };
        let Some(policy) = wait.policy.clone() else {
            return;
        };
        let agent_id = Arc::clone(&wait.agent_id);
        let body = policy_change(&policy, &agent_id, &keys);
        self.respond(key, policy_change_response(body));
    }

    /// A long-poll deadline passed: the checkin is answered with no actions (if `ticket` is
    /// still its deadline).
    pub(super) fn long_poll_expired(&mut self, key: ConnKey, ticket: Ticket) {
        let parked = self
            .inflight
            .get(&key)
            .and_then(|i| i.checkin.as_ref())
            .and_then(|c| c.parked);
        if parked == Some(ticket) {
            self.respond(key, empty_response());
        }
    }

    /// Live dispatch (§5.2): new action documents go straight to their parked agents.
    pub(super) fn dispatch_actions(&mut self, actions: &[Action]) {
        let mut per_agent: HashMap<&str, (Sequenced, &str)> = HashMap::new();
        for action in actions.iter().filter(|a| is_delivered_type(&a.action_type)) {
            let total = action.agents.len();
            for (index, agent) in action.agents.iter().enumerate() {
                let entry = per_agent.entry(agent.as_str()).or_default();
                entry.1 = action.doc_id.as_str();
                if let Some(mut wire) = to_wire(action, agent) {
                    if let Some(start) = rollout_start_time(action, index, total) {
                        wire["start_time"] = Value::from(start);
                    }
                    entry.0.push((action.seq_no, wire));
                }
            }
        }
        for (agent, (wire, token)) in per_agent {
            if let Some(key) = self.waiters.of_agent(agent) {
                let position = parked_waiter(&self.inflight, key).map_or(i64::MIN, |w| w.position);
                let fresh = newer_than(wire, position);
                if fresh.is_empty() {
                    continue;
                }
                self.respond(key, checkin_response(actions_body(token, &fresh)));
            } else if self.starting.contains_key(agent) && !wire.is_empty() {
                let entry = self.early.entry(agent.to_owned()).or_default();
                self.early_actions += wire.len() as u64;
                entry.0.extend(wire);
                entry.1 = token.to_owned();
            }
        }
    }
}

/// The wire actions with a sequence number above `position`, in order.
fn newer_than(actions: Sequenced, position: i64) -> Vec<Value> {
    actions
        .into_iter()
        .filter(|(seq, _)| *seq > position)
        .map(|(_, wire)| wire)
        .collect()
}
