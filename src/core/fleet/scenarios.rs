//! Scenario tests of the engine (the races the integration suite exercises through sockets and
//! a gated store, here in milliseconds on a virtual clock): park → revision → answer, the
//! early-action window, live dispatch, long-poll expiry, rollout pacing, drain, late replies,
//! enroll duplicates, closes while parked or while a job runs, the bulk writer.

use std::time::Duration;

use serde_json::{json, Value};

use super::testing::{
    action, agent, policy, policy_with_output_keys, started, with_current_keys, Answer, Scenario,
};
use super::writer::MAX_FLUSH;
use super::{ConnKey, ReplyTo};
use crate::api::limits::{LimitSpec, SizingTable};
use crate::backend::interface::CheckinStart;
use crate::backend::interface::{Event, Job, JobOutput};
use crate::backend::CheckinWrite;
use crate::http::Method;

/// Sends a checkin of `agent_id` on a new connection and takes its store job.
fn checkin(s: &mut Scenario, agent_id: &str) -> ConnKey {
    let conn = s.connect();
    s.checkin(conn, agent_id, json!({"status": "online"}));
    match s.take_job_of(conn) {
        Some(Job::CheckinStart(input)) => assert_eq!(input.agent_id, agent_id),
        other => panic!("expected the checkin's store job, got {other:?}"),
    }
    conn
}

fn start_done(s: &mut Scenario, conn: ConnKey, start: CheckinStart) {
    s.reply(
        ReplyTo::Conn(conn),
        JobOutput::CheckinStarted(Box::new(Ok(start))),
    );
    s.check().unwrap();
}

/// A checkin of `agent_id` (policy `p`, revision `revision`) parked on a new connection.
fn parked(s: &mut Scenario, agent_id: &str, revision: i64) -> ConnKey {
    let conn = checkin(s, agent_id);
    start_done(s, conn, started(agent(agent_id, "p", revision)));
    assert!(s.awaiting(conn), "parked");
    assert!(s.take_answer(conn).is_none());
    conn
}

fn body(answer: Option<Answer>) -> Value {
    let answer = answer.expect("an answer");
    assert_eq!(answer.status(), 200);
    answer.json()
}

fn action_ids(body: &Value) -> Vec<&str> {
    body["actions"]
        .as_array()
        .map(|a| a.iter().filter_map(|a| a["id"].as_str()).collect())
        .unwrap_or_default()
}

#[test]
fn a_parked_checkin_is_answered_with_the_new_revision() {
    let mut s = Scenario::default();
    s.event(Event::Policy(policy("p", 1).unwrap()));
    let conn = parked(&mut s, "a1", 1);
    assert_eq!(s.fleet.parked(), 1);
    s.advance(Duration::from_secs(5));
    assert!(s.awaiting(conn));
    s.event(Event::Policy(policy("p", 2).unwrap()));
    let answer = body(s.take_answer(conn));
    assert_eq!(action_ids(&answer), ["policy:p:2"]);
    assert_eq!(answer["ack_token"], "");
    assert_eq!(s.fleet.parked(), 0);
    s.check().unwrap();
}

#[test]
fn a_checkin_behind_the_cached_revision_gets_it_at_once() {
    let mut s = Scenario::default();
    s.event(Event::Policy(policy("p", 3).unwrap()));
    let conn = checkin(&mut s, "a1");
    start_done(&mut s, conn, started(agent("a1", "p", 2)));
    assert_eq!(action_ids(&body(s.take_answer(conn))), ["policy:p:3"]);
}

#[test]
fn a_revision_whose_output_keys_are_not_current_makes_them_first() {
    let mut s = Scenario::default();
    let conn = parked(&mut s, "a1", 1);
    s.event(Event::Policy(policy_with_output_keys("p", 2).unwrap()));
    assert!(s.awaiting(conn), "not answered before the keys exist");
    assert_eq!(s.fleet.parked(), 0, "no longer parked");
    let Some(Job::OutputKeys { agent_id, policy }) = s.take_job_of(conn) else {
        panic!("expected an output-keys job");
    };
    assert_eq!((agent_id.as_str(), policy.revision), ("a1", 2));
    // No longer parked: the keys may take until the end of its hold, the request's deadline
    // (past it, the request is answered 503: `overdue.rs`).
    s.advance(Duration::from_secs(200));
    assert!(s.awaiting(conn));
    let keys = [("default".to_owned(), "kid:ksecret".to_owned())].into();
    s.reply(ReplyTo::Conn(conn), JobOutput::OutputKeys(Ok(keys)));
    let answer = body(s.take_answer(conn));
    assert_eq!(action_ids(&answer), ["policy:p:2"]);
    let output = &answer["actions"][0]["data"]["policy"]["outputs"]["default"];
    assert_eq!(output["api_key"], "kid:ksecret");
    s.check().unwrap();
}

#[test]
fn current_output_keys_are_rendered_without_a_store_round_trip() {
    let mut s = Scenario::default();
    let rev2 = policy_with_output_keys("p", 2).unwrap();
    let conn = checkin(&mut s, "a1");
    start_done(
        &mut s,
        conn,
        started(with_current_keys(agent("a1", "p", 1), &rev2)),
    );
    s.event(Event::Policy(rev2));
    assert_eq!(action_ids(&body(s.take_answer(conn))), ["policy:p:2"]);
    assert!(s.jobs().is_empty());
}

#[test]
fn a_long_poll_ends_empty_at_its_deadline_and_not_before() {
    let mut s = Scenario::default();
    let conn = parked(&mut s, "a1", 1);
    s.advance(Duration::from_secs(299));
    assert!(s.awaiting(conn));
    s.advance(Duration::from_secs(1));
    let answer = body(s.take_answer(conn));
    assert_eq!(answer, json!({"ack_token": "", "action": "checkin"}));
    assert_eq!(s.fleet.parked(), 0);
    s.check().unwrap();
}

#[test]
fn the_agents_requested_poll_timeout_sets_the_hold() {
    let mut s = Scenario::default();
    let conn = checkin(&mut s, "a1");
    let mut start = started(agent("a1", "p", 1));
    // §3.3: the requested timeout less 2 min, at least 60 s.
    start.poll_timeout = Some(Duration::from_secs(240));
    start_done(&mut s, conn, start);
    s.advance(Duration::from_secs(119));
    assert!(s.awaiting(conn));
    s.advance(Duration::from_secs(1));
    assert!(s.take_answer(conn).is_some());
}

#[test]
fn pending_actions_answer_at_once() {
    let mut s = Scenario::default();
    let conn = checkin(&mut s, "a1");
    let mut start = started(agent("a1", "p", 1));
    start.actions = vec![json!({"id": "x", "type": "SETTINGS"})];
    start.ack_token = "doc-x".into();
    start_done(&mut s, conn, start);
    let answer = body(s.take_answer(conn));
    assert_eq!(
        (action_ids(&answer), &answer["ack_token"]),
        (vec!["x"], &json!("doc-x"))
    );
}

#[test]
fn an_action_arriving_while_the_pending_query_runs_is_delivered_at_once() {
    let mut s = Scenario::default();
    let conn = checkin(&mut s, "a1");
    // The store part took its snapshot; the action lands before the checkin could park.
    s.event(Event::Actions(vec![action("late", 5, &["a1"])]));
    assert_eq!(s.fleet.early_actions(), 1);
    assert!(s.awaiting(conn));
    start_done(&mut s, conn, started(agent("a1", "p", 1)));
    let answer = body(s.take_answer(conn));
    assert_eq!(action_ids(&answer), ["late"]);
    assert_eq!(answer["ack_token"], "doc-late");
    s.check().unwrap();
}

#[test]
fn a_late_live_copy_of_an_action_already_delivered_is_not_delivered_again() {
    let mut s = Scenario::default();
    let conn = checkin(&mut s, "a1");
    s.event(Event::Actions(vec![action("once", 5, &["a1"])]));
    let mut start = started(agent("a1", "p", 1));
    start.position = 5; // the pending query delivered seq_no 5 already
    start_done(&mut s, conn, start);
    assert!(s.awaiting(conn), "parked, not answered with the copy");
    assert_eq!(s.fleet.parked(), 1);
    // A parked agent ignores copies at or below its position too.
    s.event(Event::Actions(vec![action("once", 5, &["a1"])]));
    assert!(s.awaiting(conn));
    s.check().unwrap();
}

#[test]
fn early_actions_of_a_checkin_whose_connection_closed_are_dropped() {
    let mut s = Scenario::default();
    let conn = checkin(&mut s, "a1");
    s.event(Event::Actions(vec![action("late", 5, &["a1"])]));
    s.close(conn);
    s.check().unwrap();
    s.reply(
        ReplyTo::Conn(conn),
        JobOutput::CheckinStarted(Box::new(Ok(started(agent("a1", "p", 1))))),
    );
    assert_eq!(s.fleet.late_replies(), 1);
    // The next checkin does not get the dropped live copy (its own query reads the action).
    let again = checkin(&mut s, "a1");
    start_done(&mut s, again, started(agent("a1", "p", 1)));
    assert!(s.awaiting(again));
}

#[test]
fn a_new_action_wakes_its_parked_agent_only() {
    let mut s = Scenario::default();
    let a1 = parked(&mut s, "a1", 1);
    let a2 = parked(&mut s, "a2", 1);
    s.event(Event::Actions(vec![action("x", 7, &["a1"])]));
    assert_eq!(action_ids(&body(s.take_answer(a1))), ["x"]);
    assert!(s.awaiting(a2));
    s.check().unwrap();
}

#[test]
fn a_second_checkin_of_the_same_agent_answers_the_first_poll() {
    let mut s = Scenario::default();
    let first = parked(&mut s, "a1", 1);
    let second = parked(&mut s, "a1", 1);
    assert_eq!(body(s.take_answer(first))["actions"], Value::Null);
    assert!(s.awaiting(second));
    assert_eq!(s.fleet.parked(), 1);
    s.check().unwrap();
}

#[test]
fn a_closed_parked_connection_leaves_no_waiter_and_gets_nothing() {
    let mut s = Scenario::default();
    let conn = parked(&mut s, "a1", 1);
    s.close(conn);
    assert_eq!(s.fleet.parked(), 0);
    s.event(Event::Policy(policy("p", 2).unwrap()));
    s.event(Event::Actions(vec![action("x", 9, &["a1"])]));
    s.advance(Duration::from_secs(400));
    assert!(s.take_answer(conn).is_none());
    s.check().unwrap();
}

#[test]
fn a_reply_for_a_closed_connection_is_dropped_and_counted() {
    let mut s = Scenario::default();
    let conn = s.connect();
    s.enroll(conn, None);
    assert!(matches!(s.take_job_of(conn), Some(Job::Enroll(_))));
    s.close(conn);
    s.reply(ReplyTo::Conn(conn), JobOutput::Enrolled(Ok(json!({}))));
    assert_eq!(s.fleet.late_replies(), 1);
    assert!(s.take_answer(conn).is_none());
    s.check().unwrap();
}

#[test]
fn a_concurrent_enroll_with_the_same_enrollment_id_is_429_enroll_duplicate() {
    let mut s = Scenario::default();
    let (first, second, third) = (s.connect(), s.connect(), s.connect());
    s.enroll(first, Some("enr-42"));
    assert!(s.take_job_of(first).is_some());
    s.enroll(second, Some("enr-42"));
    let refused = s.take_answer(second).expect("answered at once");
    assert_eq!(
        (refused.status(), &refused.json()["error"]),
        (429, &json!("EnrollDuplicate"))
    );
    assert!(s.jobs().is_empty());
    s.reply(
        ReplyTo::Conn(first),
        JobOutput::Enrolled(Ok(json!({"action": "created"}))),
    );
    assert_eq!(s.take_answer(first).map(|a| a.status()), Some(200));
    s.enroll(third, Some("enr-42"));
    assert!(
        s.take_job_of(third).is_some(),
        "not a duplicate once the first finished"
    );
    // A closed connection frees its enrollment id too.
    s.close(third);
    s.enroll(second, Some("enr-42"));
    assert!(s.take_job_of(second).is_some());
    s.check().unwrap();
}

/// Roomy limits except the ack bucket: 4 at once, then 100/s.
static TIGHT_ACKS: SizingTable = SizingTable {
    name: "scenario-tight-acks",
    max_agents: 100,
    min_ram_mib: 0,
    specs: [
        limit(1, 1000),
        limit(1, 1000),
        limit(10, 4),
        limit(1, 1000),
        limit(1, 1000),
    ],
};

const fn limit(interval_ms: u64, burst: u32) -> LimitSpec {
    LimitSpec {
        interval: Duration::from_millis(interval_ms),
        burst,
        max: 0,
    }
}

#[test]
fn a_rollout_to_more_agents_than_the_ack_burst_is_paced_and_every_ack_is_admitted() {
    let mut s = Scenario::new(super::FleetSettings {
        limits_table: Some(&TIGHT_ACKS),
        ..Scenario::settings()
    });
    let conns: Vec<ConnKey> = (0..12)
        .map(|i| parked(&mut s, &format!("a{i}"), 1))
        .collect();
    s.event(Event::Policy(policy("p", 2).unwrap()));
    let mut woken = Vec::new();
    let mut steps = 0;
    while woken.len() < conns.len() {
        let now: Vec<ConnKey> = conns
            .iter()
            .copied()
            .filter(|c| !woken.contains(c) && s.idle(*c))
            .collect();
        // Half the ack burst at a time (§10 pacing), never the whole fleet at once.
        assert!(now.len() <= 2, "woke {} at once", now.len());
        for conn in &now {
            let answer = body(s.take_answer(*conn));
            assert_eq!(action_ids(&answer), ["policy:p:2"]);
            // Each agent acks the moment its POLICY_CHANGE arrives, as the real agent does.
            let path = format!("/api/fleet/agents/a{}/acks", conn.slot());
            let ack = super::testing::agent_request(&path, &json!({"events": []}));
            s.request(*conn, super::Origin::Agent, &ack);
            assert!(
                matches!(s.take_job_of(*conn), Some(Job::Ack(_))),
                "ack refused during the rollout: {:?}",
                s.take_answer(*conn).map(|a| a.json())
            );
            s.reply(
                ReplyTo::Conn(*conn),
                JobOutput::Acked(Err(crate::backend::OpError::AgentNotFound)),
            );
            s.take_answer(*conn);
        }
        woken.extend(now);
        s.advance(Duration::from_millis(50));
        steps += 1;
        assert!(steps < 20, "the rollout stalled at {}", woken.len());
    }
    assert!(steps >= 5, "paced over several steps, not {steps}");
    s.check().unwrap();
}

#[test]
fn drain_answers_parked_polls_empty_and_writes_pending_checkin_state() {
    let mut s = Scenario::default();
    let conn = parked(&mut s, "a1", 1);
    let starting = checkin(&mut s, "a2");
    s.drain();
    assert_eq!(body(s.take_answer(conn))["actions"], Value::Null);
    let Some((_, Job::WriteCheckins(batch))) = s.take_job(|to, _| *to == ReplyTo::Writer) else {
        panic!("the drain writes pending checkin state at once");
    };
    assert_eq!(batch.len(), 1);
    assert!(!s.fleet.writer_idle());
    // A checkin whose store part finishes during the drain is answered, not parked.
    start_done(&mut s, starting, started(agent("a2", "p", 1)));
    assert_eq!(body(s.take_answer(starting))["actions"], Value::Null);
    assert_eq!(s.fleet.health(), crate::api::health::Health::Stopping);
    // Its state goes in the next batch, right after the first one is written.
    s.reply(
        ReplyTo::Writer,
        JobOutput::CheckinsWritten {
            retry: Vec::new(),
            error: None,
        },
    );
    let Some((_, Job::WriteCheckins(batch))) = s.take_job(|to, _| *to == ReplyTo::Writer) else {
        panic!("the drain flushes again after a batch");
    };
    assert_eq!(batch[0].0, "a2");
    s.reply(
        ReplyTo::Writer,
        JobOutput::CheckinsWritten {
            retry: Vec::new(),
            error: None,
        },
    );
    assert!(s.fleet.writer_idle());
    s.check().unwrap();
}

#[test]
fn checkin_state_is_written_in_one_batch_per_interval_and_a_failed_batch_is_retried() {
    let mut s = Scenario::default();
    let conn = checkin(&mut s, "a1");
    let mut start = started(agent("a1", "p", 1));
    start.actions = vec![json!({"id": "x"})];
    start_done(&mut s, conn, start);
    s.advance(Duration::from_secs(9));
    assert!(s.jobs().is_empty(), "not before the flush interval");
    s.advance(Duration::from_secs(1));
    let Some((_, Job::WriteCheckins(batch))) = s.take_job(|to, _| *to == ReplyTo::Writer) else {
        panic!("a batch after 10 s");
    };
    assert_eq!(batch[0].0, "a1");
    assert_eq!(batch[0].1.fields["updated_at"], "2025-12-03T00:00:10Z");
    // While it is written, a newer checkin of the same agent waits, and no second batch goes.
    let newer = s.connect();
    s.checkin(newer, "a1", json!({}));
    s.take_job_of(newer);
    let mut start = started(agent("a1", "p", 1));
    start.actions = vec![json!({"id": "y"})];
    start.state = CheckinWrite::fields(
        [("last_checkin_status".to_owned(), json!("degraded"))]
            .into_iter()
            .collect(),
    );
    start_done(&mut s, newer, start);
    s.advance(Duration::from_secs(10));
    assert!(s.jobs().is_empty(), "one batch at a time");
    // The store was down: the failed entry comes back behind the newer state.
    s.reply(
        ReplyTo::Writer,
        JobOutput::CheckinsWritten {
            retry: batch,
            error: None,
        },
    );
    s.advance(Duration::from_secs(10));
    let Some((_, Job::WriteCheckins(batch))) = s.take_job(|to, _| *to == ReplyTo::Writer) else {
        panic!("the next batch");
    };
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].1.fields["last_checkin_status"], "degraded");
    s.check().unwrap();
}

#[test]
fn a_large_flush_goes_in_batches_of_max_flush_one_after_the_other() {
    let mut s = Scenario::default();
    for i in 0..2_500 {
        // Parked without `start_done`'s check after each agent: the invariants walk every
        // parked agent, so checking after each of 2,500 is quadratic (46 s in a debug build,
        // most of the armv7 unit tests' time under qemu). They are checked once all are parked.
        let agent_id = format!("a{i}");
        let conn = checkin(&mut s, &agent_id);
        s.reply(
            ReplyTo::Conn(conn),
            JobOutput::CheckinStarted(Box::new(Ok(started(agent(&agent_id, "p", 1))))),
        );
        assert!(s.awaiting(conn), "parked");
        if i % 1000 == 999 {
            // The checkin bucket (1,000, refilling 1,000/s) refills.
            s.advance(Duration::from_millis(1500));
        }
    }
    s.check().unwrap();
    s.advance(Duration::from_secs(10));
    let mut sizes = Vec::new();
    while let Some((_, Job::WriteCheckins(batch))) = s.take_job(|to, _| *to == ReplyTo::Writer) {
        assert!(s.jobs().is_empty(), "one batch at a time");
        sizes.push(batch.len());
        s.reply(
            ReplyTo::Writer,
            JobOutput::CheckinsWritten {
                retry: Vec::new(),
                error: None,
            },
        );
    }
    let full = 2_500 / MAX_FLUSH;
    let mut expected = vec![MAX_FLUSH; full];
    if 2_500 % MAX_FLUSH > 0 {
        expected.push(2_500 % MAX_FLUSH);
    }
    assert_eq!(sizes, expected, "the rest follows each written batch");
    // A failed batch stops the flush: what is left waits for the next interval.
    s.advance(Duration::from_secs(30));
    let Some((_, Job::WriteCheckins(batch))) = s.take_job(|to, _| *to == ReplyTo::Writer) else {
        panic!("the refresh of the parked agents");
    };
    assert_eq!(batch.len(), MAX_FLUSH);
    s.reply(
        ReplyTo::Writer,
        JobOutput::CheckinsWritten {
            retry: batch,
            error: Some(crate::backend::StoreError::Unavailable("down".into())),
        },
    );
    assert!(
        s.take_job(|to, _| *to == ReplyTo::Writer).is_none(),
        "no retry at once"
    );
    s.check().unwrap();
}

#[test]
fn a_parked_agents_last_checkin_is_refreshed_every_checkin_timestamp_interval() {
    let mut s = Scenario::default();
    let _conn = parked(&mut s, "a1", 1);
    s.advance(Duration::from_secs(10));
    let first = s.take_job(|to, _| *to == ReplyTo::Writer);
    s.reply(
        ReplyTo::Writer,
        JobOutput::CheckinsWritten {
            retry: Vec::new(),
            error: None,
        },
    );
    assert!(first.is_some());
    s.advance(Duration::from_secs(30));
    let Some((_, Job::WriteCheckins(batch))) = s.take_job(|to, _| *to == ReplyTo::Writer) else {
        panic!("the refresh is written");
    };
    assert_eq!(batch[0].1.fields["last_checkin"], "2025-12-03T00:00:30Z");
}

#[test]
fn an_agent_listing_waits_for_the_batch_in_flight_and_carries_what_is_pending() {
    let mut s = Scenario::default();
    let conn = checkin(&mut s, "a1");
    let mut start = started(agent("a1", "p", 1));
    start.actions = vec![json!({"id": "x"})];
    start_done(&mut s, conn, start);
    s.advance(Duration::from_secs(10));
    let (_, batch) = s.take_job(|to, _| *to == ReplyTo::Writer).unwrap();
    let other = checkin(&mut s, "a2");
    let mut start = started(agent("a2", "p", 1));
    start.actions = vec![json!({"id": "x"})];
    start_done(&mut s, other, start);
    let admin = s.connect();
    s.admin(admin, Method::Get, "/api/fleet/agents");
    assert!(s.jobs().is_empty(), "waits for the batch being written");
    drop(batch);
    s.reply(
        ReplyTo::Writer,
        JobOutput::CheckinsWritten {
            retry: Vec::new(),
            error: None,
        },
    );
    let Some(Job::Admin(work)) = s.take_job_of(admin) else {
        panic!("released by the write");
    };
    let work: &dyn std::any::Any = &*work;
    let request = work
        .downcast_ref::<crate::mgmt::AdminRequest>()
        .expect("the engine submits the management request");
    assert_eq!(request.pending_checkins.keys().collect::<Vec<_>>(), ["a2"]);
    s.reply(
        ReplyTo::Conn(admin),
        JobOutput::Admin(200, json!({"list": []})),
    );
    assert_eq!(s.take_answer(admin).map(|a| a.status()), Some(200));
    s.check().unwrap();
}

#[test]
fn a_full_backend_queue_is_503_and_a_refused_batch_waits_for_the_next_flush() {
    let mut s = Scenario::default();
    let conn = checkin(&mut s, "a1");
    let mut start = started(agent("a1", "p", 1));
    start.actions = vec![json!({"id": "x"})];
    start_done(&mut s, conn, start);
    assert_eq!(s.take_answer(conn).map(|a| a.status()), Some(200));
    s.refuse_jobs(true);
    s.checkin(conn, "a1", json!({}));
    let refused = s.take_answer(conn).unwrap();
    assert_eq!(refused.status(), 503);
    s.advance(Duration::from_secs(10));
    assert!(s.fleet.pending_writes() == 1 && !s.fleet.writer_idle());
    s.refuse_jobs(false);
    s.advance(Duration::from_secs(10));
    assert!(s.take_job(|to, _| *to == ReplyTo::Writer).is_some());
    // The refused checkin left no starting entry behind: a live action is not held for it.
    s.event(Event::Actions(vec![action("x", 3, &["a1"])]));
    assert_eq!(s.fleet.early_actions(), 0);
    s.check().unwrap();
}

#[test]
fn a_store_error_of_the_checkin_is_answered_and_forgets_the_start() {
    let mut s = Scenario::default();
    let conn = checkin(&mut s, "a1");
    s.reply(
        ReplyTo::Conn(conn),
        JobOutput::CheckinStarted(Box::new(Err(crate::backend::OpError::AgentNotFound))),
    );
    assert_eq!(s.take_answer(conn).map(|a| a.status()), Some(404));
    s.event(Event::Actions(vec![action("x", 3, &["a1"])]));
    assert_eq!(s.fleet.early_actions(), 0);
    s.check().unwrap();
}

#[test]
fn an_opamp_messages_state_is_written_even_when_its_collector_has_gone() {
    let mut s = Scenario::default();
    let conn = s.connect();
    s.message(conn, vec![1, 2, 3]);
    let Some(Job::OpAmp(input)) = s.take_job_of(conn) else {
        panic!("the message goes to the backend");
    };
    assert!(input.websocket && !input.authenticate);
    s.close(conn);
    let state = [("last_checkin_status".to_owned(), json!("online"))];
    let outcome = crate::backend::ops::opamp::OpAmpOutcome {
        reply: Default::default(),
        checkin: Some(("collector-1".into(), state.into_iter().collect())),
    };
    s.reply(ReplyTo::Conn(conn), JobOutput::OpAmp(Ok(outcome)));
    assert_eq!(s.fleet.late_replies(), 1);
    assert_eq!(s.fleet.pending_writes(), 1);
    s.check().unwrap();
}
