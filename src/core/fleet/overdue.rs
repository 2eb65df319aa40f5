//! Every agent request is answered by its deadline, whatever the backend does (issue 15 §1).
//!
//! A request gets its deadline when it arrives: a checkin its long poll (at least the backend
//! timeout: a very short long poll leaves its store part the time any request has, and a park
//! on the agent's own longer `poll_timeout` moves it to the end of that hold), every other
//! agent request the backend timeout (`--backend-timeout`). Each job submitted for the request
//! carries that deadline to the backend, which refuses it at once when the queue ahead cannot
//! drain in time (`backend::admission`; the engine answers the refusal 503) and bounds every
//! store call by it (`backend::deadline`), so the worker's own answer (a 503 when the store did
//! not answer in time) normally comes first.
//!
//! The job's deadline is [`OVERDUE_GRACE`] before the request's (half the budget when that is
//! shorter), so the worker's answer comes before the request's deadline, not after it. The
//! engine's own guarantee covers the rest: a job stuck outside the store's calls, or one
//! queued behind jobs that overran. At the request's deadline, a request still waiting for its
//! job is answered 503 with `Retry-After` (jittered over 5–15 s, as every 503 the engine
//! sends), and its connection is closed after the answer, so that the job's late reply cannot
//! meet the next request of that connection; that reply is dropped and counted
//! ([`Fleet::late_replies`]). So an agent request is answered by its deadline (plus however
//! long the event loop takes to get to it), which the agent sees as at most the backend
//! timeout plus its connection's set-up. A parked checkin waits for no job and keeps its long-poll ending
//! (200, no actions). Management requests and OpAMP WebSocket messages have no deadline here:
//! their jobs are bounded by the backend timeout from their start, and the engine waits for
//! their reply.

use std::time::{Duration, Instant};

use super::{ConnKey, Fleet, FleetSettings, Output};
use crate::api::{errors, ApiError, PendingKind};
use crate::core::deadlines::Ticket;

/// How long before a request's deadline its jobs' deadline is: the worker answers 503 by then
/// (its answer keeps the connection open), and the engine answers 503 itself at the request's
/// deadline only when the worker did not.
pub const OVERDUE_GRACE: Duration = Duration::from_millis(250);

/// The deadline of a job serving a request that arrived at `started` and is due at `deadline`:
/// [`OVERDUE_GRACE`] earlier, or half the request's budget earlier when that is less.
pub(super) fn job_deadline(started: Instant, deadline: Instant) -> Instant {
    let budget = deadline.saturating_duration_since(started);
    deadline - OVERDUE_GRACE.min(budget / 2)
}

/// The deadline of a request of `kind` that arrived at `started` (see the module header).
pub(super) fn request_deadline(
    kind: PendingKind,
    started: Instant,
    settings: &FleetSettings,
) -> Option<Instant> {
    let budget = match kind {
        PendingKind::Checkin => settings.poll.long_poll.max(settings.backend_timeout),
        PendingKind::Admin | PendingKind::OpAmpMessage => return None,
        PendingKind::Enroll
        | PendingKind::Ack
        | PendingKind::Status
        | PendingKind::Audit
        | PendingKind::OpAmp
        | PendingKind::OpAmpUpgrade
        | PendingKind::PgpKey
        | PendingKind::Download
        | PendingKind::Artifact
        | PendingKind::Upload => settings.backend_timeout,
    };
    Some(started + budget)
}

impl Fleet {
    /// A job for `conn`'s request is being submitted: its deadline ([`job_deadline`] before the
    /// request's, or the backend timeout from the request's start), with the overdue answer
    /// armed at the request's deadline when it has one. `None`: `conn` has no request in flight.
    pub(super) fn arm_overdue(&mut self, conn: ConnKey) -> Option<Instant> {
        let backend_timeout = self.settings.backend_timeout;
        let inflight = self.inflight.get_mut(&conn)?;
        let Some(deadline) = inflight.deadline else {
            return Some(inflight.started + backend_timeout);
        };
        let started = inflight.started;
        let ticket = self.overdue.arm(conn, deadline);
        if inflight.overdue.replace(ticket).is_some() {
            let inflight_map = &self.inflight;
            self.overdue.note_stale(|key, ticket| {
                inflight_map.get(&key).and_then(|i| i.overdue) == Some(ticket)
            });
        }
        Some(job_deadline(started, deadline))
    }

    /// A job of `conn` replied (or was refused): its overdue answer is disarmed. Whether `conn`
    /// still has a request in flight (false: the reply is late, its request was answered).
    pub(super) fn job_replied(&mut self, conn: ConnKey) -> bool {
        let Some(inflight) = self.inflight.get_mut(&conn) else {
            return false;
        };
        if inflight.overdue.take().is_some() {
            let inflight_map = &self.inflight;
            self.overdue.note_stale(|key, ticket| {
                inflight_map.get(&key).and_then(|i| i.overdue) == Some(ticket)
            });
        }
        true
    }

    /// An overdue deadline passed: if `ticket` is still the request's, its job has not replied
    /// by the request's deadline, and the request is answered 503 (connection closed after).
    pub(super) fn job_overdue(&mut self, conn: ConnKey, ticket: Ticket) {
        let Some(inflight) = self.inflight.get_mut(&conn) else {
            return;
        };
        if inflight.overdue != Some(ticket) {
            return;
        }
        // Popped from the heap already: not a stale entry.
        inflight.overdue = None;
        let Some(inflight) = self.take_inflight(conn) else {
            return;
        };
        self.overdue_answers += 1;
        log::debug!(
            "{:?} request overdue at its deadline: answering 503",
            inflight.pending.kind
        );
        let response = inflight
            .pending
            .decorate(errors::respond(&ApiError::StoreUnavailable));
        self.emit(Output::Respond {
            conn,
            response,
            close: true,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::OVERDUE_GRACE;
    use crate::backend::interface::{AckOutcome, Event, Job, JobOutput};
    use crate::core::fleet::testing::{
        agent, agent_request, policy_with_output_keys, started, Answer, Scenario,
    };
    use crate::core::fleet::{ConnKey, Origin, ReplyTo};

    const BACKEND_TIMEOUT: Duration = Duration::from_secs(10);

    fn scenario() -> Scenario {
        let mut settings = Scenario::settings();
        settings.backend_timeout = BACKEND_TIMEOUT;
        Scenario::new(settings)
    }

    fn ack(s: &mut Scenario, conn: ConnKey) {
        let req = agent_request("/api/fleet/agents/a1/acks", &json!({"events": []}));
        s.request(conn, Origin::Agent, &req);
    }

    /// A 503 with a `Retry-After` in the jittered range.
    fn assert_retry_later(answer: &Answer) -> u64 {
        assert_eq!(answer.status(), 503, "{answer:?}");
        let Answer::Response(response) = answer else {
            unreachable!()
        };
        let secs: u64 = response
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .expect("Retry-After in seconds");
        assert!((5..=15).contains(&secs), "Retry-After {secs}");
        secs
    }

    #[test]
    fn a_job_never_replying_is_answered_503_at_its_deadline_and_its_late_reply_dropped() {
        let mut s = scenario();
        let conn = s.connect();
        let arrived = s.now();
        ack(&mut s, conn);
        assert_eq!(
            s.job_deadline(ReplyTo::Conn(conn)),
            Some(arrived + BACKEND_TIMEOUT - OVERDUE_GRACE),
            "the job must be done a little before the request's deadline"
        );
        let job = s.take_job_of(conn).expect("the ack's job");
        assert!(matches!(job, Job::Ack(_)));
        // The worker's own answer may still come until the request's deadline.
        s.advance(BACKEND_TIMEOUT - Duration::from_millis(1));
        assert!(s.awaiting(conn), "not answered before the deadline");
        s.advance(Duration::from_millis(1));
        let answer = s
            .take_answer(conn)
            .expect("answered at the request's deadline, not after it");
        assert_retry_later(&answer);
        assert!(
            s.closed(conn),
            "closed after the answer: the job may still reply"
        );
        assert_eq!(s.fleet.overdue_answers(), 1);
        s.check().unwrap();
        // The job's reply comes after all: dropped, counted, nothing sent.
        s.reply(
            ReplyTo::Conn(conn),
            JobOutput::Acked(Ok(AckOutcome {
                status: 200,
                body: json!({"action": "acks", "items": []}),
                unenrolled: false,
            })),
        );
        assert!(s.take_answer(conn).is_none());
        assert_eq!(s.fleet.late_replies(), 1);
        s.check().unwrap();
    }

    #[test]
    fn every_agent_request_is_answered_by_its_deadline_whatever_the_budget() {
        // Backend timeouts from long to shorter than twice the margin: the job is due before
        // the request, and the request is answered by its deadline, never after it.
        for budget_ms in [10_000, 5_000, 400, 100, 2] {
            let budget = Duration::from_millis(budget_ms);
            let mut settings = Scenario::settings();
            settings.backend_timeout = budget;
            let mut s = Scenario::new(settings);
            let conn = s.connect();
            let arrived = s.now();
            s.enroll(conn, Some("e-1"));
            let job_due = s.job_deadline(ReplyTo::Conn(conn)).expect("a deadline");
            assert!(job_due > arrived, "{budget:?}: the job has time");
            assert!(
                job_due < arrived + budget,
                "{budget:?}: the job is due first"
            );
            assert!(s.take_job_of(conn).is_some());
            s.advance(budget - Duration::from_millis(1));
            assert!(s.awaiting(conn), "{budget:?}");
            s.advance(Duration::from_millis(1));
            assert_retry_later(&s.take_answer(conn).expect("answered by the deadline"));
            s.check().unwrap();
        }
    }

    #[test]
    fn the_deadline_of_a_new_connections_first_request_counts_from_its_accept() {
        // The agent's clock runs from before its connection: a TLS handshake that took 2 s
        // (a loaded box) is part of what it waits, so the server counts it too.
        let mut s = scenario();
        let conn = s.connect();
        let accepted = s.now();
        let handshake = Duration::from_secs(2);
        s.advance(handshake);
        let req = agent_request("/api/fleet/agents/a1/acks", &json!({"events": []}));
        s.request_since(conn, Origin::Agent, &req, accepted);
        assert_eq!(
            s.job_deadline(ReplyTo::Conn(conn)),
            Some(accepted + BACKEND_TIMEOUT - OVERDUE_GRACE)
        );
        assert!(s.take_job_of(conn).is_some());
        s.advance(BACKEND_TIMEOUT - handshake - Duration::from_millis(1));
        assert!(s.awaiting(conn));
        s.advance(Duration::from_millis(1));
        assert_retry_later(
            &s.take_answer(conn)
                .expect("answered by accept + backend timeout"),
        );
        s.check().unwrap();
    }

    #[test]
    fn a_checkin_whose_store_part_never_replies_is_answered_by_its_long_poll() {
        let mut s = scenario();
        let long_poll = Scenario::settings().poll.long_poll;
        let conn = s.connect();
        let arrived = s.now();
        s.checkin(conn, "a1", json!({"status": "online"}));
        assert_eq!(
            s.job_deadline(ReplyTo::Conn(conn)),
            Some(arrived + long_poll - OVERDUE_GRACE)
        );
        assert!(s.take_job_of(conn).is_some());
        s.advance(long_poll - Duration::from_millis(1));
        assert!(s.awaiting(conn));
        s.advance(Duration::from_millis(1));
        assert_retry_later(&s.take_answer(conn).unwrap());
        assert!(s.closed(conn));
        // Nothing is left of it: a live action for the agent is not held for it.
        let action = crate::core::fleet::testing::action("x", 5, &["a1"]);
        s.event(Event::Actions(vec![action]));
        assert_eq!(s.fleet.early_actions(), 0);
        s.check().unwrap();
    }

    #[test]
    fn output_keys_of_a_woken_checkin_are_due_by_the_end_of_its_hold() {
        let mut s = scenario();
        let conn = s.connect();
        s.checkin(conn, "a1", json!({}));
        s.take_job_of(conn);
        let parked_at = s.now();
        // The agent asked for a hold longer than the server's long poll (§3.3: its
        // poll_timeout less two minutes).
        let mut start = started(agent("a1", "p", 1));
        let hold = Duration::from_secs(600);
        start.poll_timeout = Some(hold + Duration::from_secs(120));
        s.reply(
            ReplyTo::Conn(conn),
            JobOutput::CheckinStarted(Box::new(Ok(start))),
        );
        assert_eq!(s.fleet.parked(), 1);
        // Parked, it waits for no job: nothing is overdue while it waits.
        s.advance(Duration::from_secs(400));
        assert!(s.awaiting(conn));
        s.event(Event::Policy(policy_with_output_keys("p", 2).unwrap()));
        s.advance(Duration::from_millis(100));
        let hold_ends = s.job_deadline(ReplyTo::Conn(conn)).unwrap() + OVERDUE_GRACE;
        assert!(
            matches!(s.take_job_of(conn), Some(Job::OutputKeys { .. })),
            "the woken checkin's keys are made first"
        );
        assert!(hold_ends >= parked_at + hold, "due by the end of the hold");
        s.advance(hold_ends.saturating_duration_since(s.now()));
        assert_retry_later(&s.take_answer(conn).expect("answered 503"));
        s.check().unwrap();
    }

    #[test]
    fn a_parked_checkin_ends_with_its_long_poll_not_with_a_503() {
        let mut s = scenario();
        let conn = s.connect();
        s.checkin(conn, "a1", json!({}));
        s.take_job_of(conn);
        s.reply(
            ReplyTo::Conn(conn),
            JobOutput::CheckinStarted(Box::new(Ok(started(agent("a1", "p", 1))))),
        );
        s.advance(Scenario::settings().poll.long_poll + OVERDUE_GRACE);
        let answer = s.take_answer(conn).unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.json(), json!({"ack_token": "", "action": "checkin"}));
        assert!(s.idle(conn), "a long poll's end keeps the connection");
        assert_eq!(s.fleet.overdue_answers(), 0);
    }

    #[test]
    fn a_job_refused_by_admission_is_answered_503_at_once_and_the_connection_kept() {
        let mut s = scenario();
        let conn = s.connect();
        // The backend says the queue ahead cannot drain by the deadline.
        s.refuse_jobs(true);
        ack(&mut s, conn);
        assert_retry_later(&s.take_answer(conn).expect("answered at once"));
        assert!(s.idle(conn), "a refusal keeps the connection");
        assert!(s.jobs().is_empty());
        // Nothing is armed for it: the deadline passing answers nothing more.
        s.advance(BACKEND_TIMEOUT + OVERDUE_GRACE);
        assert!(s.take_answer(conn).is_none());
        assert_eq!(s.fleet.overdue_answers(), 0);
        s.refuse_jobs(false);
        ack(&mut s, conn);
        assert!(
            s.take_job_of(conn).is_some(),
            "the next request goes through"
        );
        s.check().unwrap();
    }

    #[test]
    fn the_workers_own_503_in_time_keeps_the_connection_and_nothing_fires_later() {
        let mut s = scenario();
        let conn = s.connect();
        s.enroll(conn, Some("e-1"));
        s.take_job_of(conn);
        s.advance(BACKEND_TIMEOUT - OVERDUE_GRACE);
        s.reply(
            ReplyTo::Conn(conn),
            JobOutput::Enrolled(Err(crate::backend::OpError::Unavailable)),
        );
        assert_retry_later(&s.take_answer(conn).unwrap());
        assert!(s.idle(conn));
        s.advance(OVERDUE_GRACE * 4);
        assert!(s.take_answer(conn).is_none());
        assert_eq!(s.fleet.overdue_answers(), 0);
        // The enrollment id is free again.
        s.enroll(conn, Some("e-1"));
        assert!(matches!(s.take_job_of(conn), Some(Job::Enroll(_))));
        s.check().unwrap();
    }

    #[test]
    fn retry_after_is_spread_over_the_refused() {
        let mut s = scenario();
        s.refuse_jobs(true);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..30 {
            let conn = s.connect();
            ack(&mut s, conn);
            seen.insert(assert_retry_later(&s.take_answer(conn).unwrap()));
        }
        assert!(seen.len() >= 5, "Retry-After values {seen:?}");
    }

    #[test]
    fn management_requests_wait_for_their_reply() {
        let mut s = scenario();
        let conn = s.connect();
        s.admin(conn, crate::http::Method::Get, "/api/fleet/agents");
        let arrived = s.now();
        assert_eq!(
            s.job_deadline(ReplyTo::Conn(conn)),
            Some(arrived + BACKEND_TIMEOUT),
            "its job is bounded by the backend timeout all the same"
        );
        s.take_job_of(conn);
        s.advance(BACKEND_TIMEOUT * 3);
        assert!(s.awaiting(conn));
        s.reply(
            ReplyTo::Conn(conn),
            JobOutput::Admin(200, json!({"list": []})),
        );
        assert_eq!(s.take_answer(conn).unwrap().status(), 200);
        s.check().unwrap();
    }
}
