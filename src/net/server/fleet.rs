//! The Fleet half of the event loop: backend replies routed to their connections, checkin
//! completion (answer with actions, deliver a POLICY_CHANGE, or park), wake-ups on new policy
//! revisions and new actions, the early-action window of a starting checkin, and the checkin
//! bulk writer. The generic half (sockets, timers, accept, drain) is in `mod.rs`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde_json::Value;

use super::{checkin_response, conn_of, ConnKey, ReplyTo, Server, TimerKey, ROLLOUT_TICK};
use crate::api::{errors, ApiError, PendingKind};
use crate::backend::ops::checkin::CheckinStart;
use crate::backend::workers::{Event, Job, JobOutput, Reply};
use crate::backend::CheckinWrite;
use crate::core::actions::{is_delivered_type, rollout_start_time, to_wire};
use crate::core::limits::LimitedRoute;
use crate::core::longpoll::{
    actions_body, empty_body, policy_change_body, poll_duration, subscription_revision, Waiter,
};
use crate::core::policy::PreparedPolicy;
use crate::core::Health;
use crate::model::time::rfc3339_seconds;
use crate::model::Action;
use crate::net::conn::CheckinWait;

impl Server {
    pub(super) fn on_backend(&mut self, now: Instant) {
        loop {
            let Some(backend) = &self.backend else { return };
            match backend.replies.try_recv() {
                Ok(reply) => self.on_reply(reply, now),
                Err(_) => break,
            }
        }
        loop {
            let Some(backend) = &self.backend else { return };
            match backend.events.try_recv() {
                Ok(event) => self.on_event(event, now),
                Err(_) => break,
            }
        }
    }

    fn on_reply(&mut self, reply: Reply<ReplyTo>, now: Instant) {
        let key = match reply.to {
            ReplyTo::Writer => {
                self.bulk_inflight = false;
                if let JobOutput::CheckinsWritten { retry, error } = reply.output {
                    if let Some(e) = error {
                        log::warn!(
                            "writing checkin state failed ({e}); {} kept for the next flush",
                            retry.len()
                        );
                    }
                    for (id, state) in retry {
                        // A newer checkin of the same agent supersedes the failed one.
                        self.bulk.entry(id).or_insert(state);
                    }
                }
                self.release_admin_waiting(now);
                if self.drain_deadline.is_some() {
                    self.flush_checkins();
                }
                return;
            }
            ReplyTo::Conn(key) => key,
        };
        let health = self.current_health();
        let draining = self.drain_deadline.is_some();
        let Some(conn) = conn_of(&mut self.conns, key) else {
            self.late_replies += 1;
            return;
        };
        let Some(inflight) = conn.inflight.as_ref() else {
            self.late_replies += 1;
            return;
        };
        match (inflight.pending.kind, reply.output) {
            (PendingKind::Checkin, JobOutput::CheckinStarted(result)) => {
                self.checkin_started(key, *result, now)
            }
            (PendingKind::Checkin, JobOutput::OutputKeys(result)) => {
                self.keys_ready(key, result, now)
            }
            (PendingKind::OpAmp | PendingKind::OpAmpMessage, JobOutput::OpAmp(result)) => {
                self.opamp_answered(key, result, now)
            }
            (PendingKind::OpAmpUpgrade, JobOutput::OpAmpConnected(Ok((accept, token)))) => {
                self.opamp_upgraded(key, &accept, token, now)
            }
            (_, output) => {
                if inflight.pending.kind == PendingKind::Enroll {
                    self.enrolling.retain(|_, k| *k != key);
                }
                let response = crate::api::errors::jitter_retry_after(
                    inflight.pending.finish(output, health),
                    self.ids.next_unit(),
                );
                if let Some(limited) =
                    conn.complete(&response, draining, self.date.current(), &mut self.pool)
                {
                    self.limits.get(limited).release();
                }
                self.drive(key.slot, now);
            }
        }
    }

    fn checkin_started(
        &mut self,
        key: ConnKey,
        result: Result<CheckinStart, ApiError>,
        now: Instant,
    ) {
        let start = match result {
            Ok(start) => start,
            Err(e) => {
                self.starting.retain(|_, k| *k != key);
                if let Some(inflight) =
                    conn_of(&mut self.conns, key).and_then(|c| c.inflight.as_ref())
                {
                    inflight.pending.log_refusal(&e);
                }
                return self.answer(key, errors::respond(&e), now);
            }
        };
        let agent_id = start.agent.id.clone();
        self.starting.remove(&agent_id);
        let early = self.early.remove(&agent_id);
        self.bulk.insert(agent_id.clone(), start.state);
        if !start.actions.is_empty() {
            // Anything that arrived meanwhile has a higher seq_no: the next checkin reads it.
            return self.answer(
                key,
                checkin_response(actions_body(&start.ack_token, &start.actions)),
                now,
            );
        }
        // Live copies of actions the pending query already delivered are not delivered twice.
        if let Some((actions, token)) = early.map(|(a, t)| (newer_than(a, start.position), t)) {
            if !actions.is_empty() {
                return self.answer(key, checkin_response(actions_body(&token, &actions)), now);
            }
        }
        let revision = subscription_revision(&start.agent, &start.body, &self.cache);
        let mut waiter = Waiter::for_agent(&start.agent, revision, start.position);
        waiter.repeat = start.repeat;
        if let Some(policy) = self
            .cache
            .get(&start.agent.policy_id)
            .filter(|p| p.revision > revision)
            .cloned()
        {
            return self.deliver_policy(key, &waiter, policy, now);
        }
        if self.drain_deadline.is_some() {
            return self.answer(key, checkin_response(empty_body()), now);
        }
        let random = self.ids.next_unit();
        let poll = self.settings.poll;
        let Some(conn) = conn_of(&mut self.conns, key) else {
            return;
        };
        let Some(inflight) = conn.inflight.as_mut() else {
            return;
        };
        let setup = now.saturating_duration_since(inflight.started);
        let hold = poll_duration(&poll, start.poll_timeout, setup, random);
        log::debug!("checkin of agent {agent_id} parked for {hold:?}");
        // An agent's own poll_timeout may hold it past the default long poll: its jobs (output
        // keys on a new revision) are due by the end of the hold.
        inflight.deadline = inflight.deadline.map(|due| due.max(now + hold));
        inflight.checkin = Some(CheckinWait {
            agent_id,
            parked_until: Some(now + hold),
            policy: None,
        });
        if let Some(old) = self.waiters.park(key, waiter) {
            // The agent checked in again on another connection; the old poll is answered.
            self.answer(old, checkin_response(empty_body()), now);
        }
        self.update_timer(key.slot, now);
    }

    /// Answers with a POLICY_CHANGE, making output keys first when they are not current.
    fn deliver_policy(
        &mut self,
        key: ConnKey,
        waiter: &Waiter,
        policy: Arc<PreparedPolicy>,
        now: Instant,
    ) {
        if let Some(keys) = waiter.current_keys(&policy) {
            let body = policy_change_body(&policy, &waiter.agent_id, &keys);
            return self.answer(key, checkin_response(body), now);
        }
        let Some(conn) = conn_of(&mut self.conns, key) else {
            return;
        };
        let Some(inflight) = conn.inflight.as_mut() else {
            return;
        };
        inflight.checkin = Some(CheckinWait {
            agent_id: waiter.agent_id.clone(),
            parked_until: None,
            policy: Some(Arc::clone(&policy)),
        });
        self.submit(
            key,
            Job::OutputKeys {
                agent_id: waiter.agent_id.clone(),
                policy,
            },
            now,
        );
        self.update_timer(key.slot, now);
    }

    /// Wakes as many parked agents behind a new revision as the pacer allows now; the
    /// rest stay parked until [`TimerKey::Rollout`] (or their own long-poll end).
    pub(super) fn pace_rollouts(&mut self, now: Instant) {
        // The pace, and what the ack bucket holds right now (other agents' acks spend it too).
        let acks = self.limits.get(LimitedRoute::Ack).available(now) as usize;
        let mut allowance = self.pacer.allowance(now).min(acks);
        let mut i = 0;
        while i < self.rollouts.len() {
            let policy = Arc::clone(&self.rollouts[i]);
            let woken = self
                .waiters
                .take_behind(&policy.policy_id, policy.revision, allowance);
            let done = woken.len() < allowance;
            allowance -= woken.len();
            self.pacer.spend(woken.len());
            if !woken.is_empty() {
                log::debug!(
                    "policy {} revision {}: waking {} parked agent(s)",
                    policy.policy_id,
                    policy.revision,
                    woken.len()
                );
            }
            for (key, waiter) in woken {
                self.deliver_policy(key, &waiter, Arc::clone(&policy), now);
            }
            if done {
                self.rollouts.remove(i);
            } else {
                i += 1;
            }
        }
        if !self.rollouts.is_empty() {
            let wait = self.pacer.next_in().max(ROLLOUT_TICK);
            self.deadlines.arm(TimerKey::Rollout, now + wait);
        }
    }

    fn keys_ready(
        &mut self,
        key: ConnKey,
        result: Result<std::collections::BTreeMap<String, String>, ApiError>,
        now: Instant,
    ) {
        let keys = match result {
            Ok(keys) => keys,
            Err(e) => return self.answer(key, errors::respond(&e), now),
        };
        let Some(conn) = conn_of(&mut self.conns, key) else {
            return;
        };
        let Some(wait) = conn.inflight.as_ref().and_then(|i| i.checkin.clone()) else {
            return;
        };
        let Some(policy) = wait.policy else { return };
        let body = policy_change_body(&policy, &wait.agent_id, &keys);
        self.answer(key, checkin_response(body), now);
    }

    fn on_event(&mut self, event: Event, now: Instant) {
        match event {
            Event::Policy(policy) => {
                if !self.cache.install(Arc::clone(&policy)) {
                    return;
                }
                log::info!(
                    "policy {} revision {}: rolling out to the parked agents",
                    policy.policy_id,
                    policy.revision
                );
                self.rollouts.retain(|p| p.policy_id != policy.policy_id);
                self.rollouts.push(policy);
                self.pace_rollouts(now);
            }
            Event::PolicyRejected {
                policy_id,
                revision,
                reason,
            } => log::error!("policy {policy_id} revision {revision} cannot be served, keeping the previous one: {reason}"),
            Event::Actions(actions) => self.dispatch_actions(&actions, now),
            Event::StoreReachable(up) => {
                if self.drain_deadline.is_none() {
                    self.health = if up { Health::Healthy } else { Health::Degraded };
                }
                if up {
                    log::info!("store reachable again");
                }
            }
        }
    }

    /// Live dispatch (§5.2): new action documents go straight to their parked agents.
    fn dispatch_actions(&mut self, actions: &[Action], now: Instant) {
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
                let position = self.waiters.get(key).map_or(i64::MIN, |w| w.position);
                let fresh = newer_than(wire, position);
                if fresh.is_empty() {
                    continue;
                }
                self.waiters.remove(key);
                self.answer(key, checkin_response(actions_body(token, &fresh)), now);
            } else if self.starting.contains_key(agent) && !wire.is_empty() {
                let entry = self.early.entry(agent.to_owned()).or_default();
                self.stats
                    .early_actions
                    .fetch_add(wire.len() as u64, Ordering::Relaxed);
                entry.0.extend(wire);
                entry.1 = token.to_owned();
            }
        }
    }

    /// §3.2 step 10: a parked agent is still checking in; its `last_checkin` moves with it, and
    /// a flush of it writes what every checkin flush writes (§3.8: status, message,
    /// `unhealthy_reason`, `sequence_num`), as Fleet Server's periodic re-checkin does.
    pub(super) fn refresh_parked_checkins(&mut self) {
        let now = Value::from(rfc3339_seconds(SystemTime::now()));
        for waiter in self.waiters.parked() {
            self.bulk
                .entry(waiter.agent_id.clone())
                .or_insert_with(|| CheckinWrite::fields(waiter.repeat.clone()))
                .fields
                .insert("last_checkin".into(), now.clone());
        }
    }

    /// Sends the pending checkin state to the store as one batch.
    pub(super) fn flush_checkins(&mut self) {
        if self.bulk_inflight || self.bulk.is_empty() {
            return;
        }
        let Some(backend) = &self.backend else { return };
        let updated_at = Value::from(rfc3339_seconds(SystemTime::now()));
        let batch: Vec<(String, CheckinWrite)> = self
            .bulk
            .drain()
            .map(|(id, mut state)| {
                state.fields.insert("updated_at".into(), updated_at.clone());
                (id, state)
            })
            .collect();
        match backend.submit(ReplyTo::Writer, Job::WriteCheckins(batch)) {
            Ok(()) => self.bulk_inflight = true,
            Err(refused) => {
                if let (_, Job::WriteCheckins(batch)) = *refused {
                    self.bulk.extend(batch);
                }
            }
        }
    }
}

/// Wire actions with the `seq_no` of their document.
pub(super) type Sequenced = Vec<(i64, Value)>;

/// The wire actions with a sequence number above `position`, in order.
fn newer_than(actions: Sequenced, position: i64) -> Vec<Value> {
    actions
        .into_iter()
        .filter(|(seq, _)| *seq > position)
        .map(|(_, wire)| wire)
        .collect()
}
