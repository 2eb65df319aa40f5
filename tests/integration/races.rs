//! Races between a checkin and the store, made deterministic with a store whose pending-actions
//! query takes its snapshot and then waits for the test to release it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use fleet_edge::backend::hooks::{Gate, Method};
use fleet_edge::backend::memory::MemoryStore;
use fleet_edge::model::Action;

use crate::protocol::{checks, only_action, policy};
use crate::support::agent::Agent as TestAgent;
use crate::support::inproc::{InProc, Options};

/// A memory store with gates on the reads these races need held.
struct Gated {
    inner: Arc<MemoryStore>,
    /// A checkin's pending-actions snapshot, taken, then held.
    pending: Arc<Gate>,
    /// The enroll dedupe read, done, then held.
    enroll: Arc<Gate>,
    /// The change feed: when shut, the monitor is "slow" and holds new documents back.
    feed: Arc<Gate>,
}

fn gated() -> Gated {
    let inner = Arc::new(MemoryStore::new());
    Gated {
        pending: inner.gate(Method::PendingActions),
        enroll: inner.gate(Method::AgentByEnrollmentId),
        feed: inner.gate(Method::Changes),
        inner,
    }
}

/// Waits until a call is held at `gate`.
fn wait_held(gate: &Gate) {
    assert!(
        gate.wait_held(Duration::from_secs(20)),
        "no query reached the gate"
    );
}

#[test]
fn an_action_written_while_a_checkin_reads_pending_actions_is_not_left_for_the_next_poll() {
    let store = gated();
    store
        .inner
        .add_policy(policy("edge-policy", 1, checks()))
        .unwrap();
    let token = store.inner.add_enrollment_key("edge-policy").unwrap();
    let server = InProc::start(
        store.inner.clone(),
        Options {
            long_poll: "60s",
            ..Options::default()
        },
    );
    let (mut agent, _) = TestAgent::enroll(server.addr, server.tls(), &token.encoded(), &[]);
    let (_, body) = agent.checkin();
    agent.apply_policy(only_action(&body));

    store.pending.shut();
    let id = agent.id.clone();
    let started = Instant::now();
    let checkin = std::thread::spawn(move || agent.checkin().1);
    wait_held(&store.pending);
    // The snapshot is taken; the action lands before the checkin could park.
    store
        .inner
        .add_action(Action {
            action_id: "late".into(),
            action_type: "SETTINGS".into(),
            agents: vec![id],
            data: json!({"log_level": "debug"}),
            ..Action::default()
        })
        .unwrap();
    // Wait until the loop has the live action and knows this agent's checkin is starting.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server
        .stats
        .early_actions
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the live action was not held for the starting checkin"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    store.pending.open();
    let body = checkin.join().unwrap();
    assert_eq!(only_action(&body)["id"], "late", "{body}");
    // Well under the test client's 20 s read timeout: a first answer, not a retry's.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "delivered at once, not after the long poll: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_concurrent_enroll_with_the_same_enrollment_id_is_429_enroll_duplicate() {
    let store = gated();
    store
        .inner
        .add_policy(policy("edge-policy", 1, checks()))
        .unwrap();
    let token = store
        .inner
        .add_enrollment_key("edge-policy")
        .unwrap()
        .encoded();
    let server = InProc::start(store.inner.clone(), Options::default());
    let mut body = crate::support::agent::enroll_body(&[]);
    body["enrollment_id"] = json!("enr-42");
    let raw = crate::support::agent::raw_request(
        "POST",
        "/api/fleet/agents/enroll",
        Some(&token),
        &serde_json::to_vec(&body).unwrap(),
        false,
        "Elastic Agent v9.2.1",
    );
    store.enroll.shut();
    let (addr, tls, first_raw) = (server.addr, server.tls(), raw.clone());
    let first =
        std::thread::spawn(move || crate::support::agent::once(addr, tls, &first_raw).status);
    wait_held(&store.enroll);
    let second = crate::support::agent::once(server.addr, server.tls(), &raw);
    assert_eq!(second.status, 429);
    assert_eq!(
        crate::support::agent::body_json(&second)["error"],
        "EnrollDuplicate"
    );
    store.enroll.open();
    assert_eq!(first.join().unwrap(), 200, "the first enroll completes");
    let again = crate::support::agent::once(server.addr, server.tls(), &raw);
    assert_eq!(again.status, 200, "not a duplicate once the first finished");
}

#[test]
fn a_late_live_copy_of_an_action_already_delivered_is_not_delivered_again() {
    let store = gated();
    store
        .inner
        .add_policy(policy("edge-policy", 1, checks()))
        .unwrap();
    let token = store.inner.add_enrollment_key("edge-policy").unwrap();
    let server = InProc::start(
        store.inner.clone(),
        Options {
            long_poll: "1s",
            ..Options::default()
        },
    );
    let (mut agent, _) = TestAgent::enroll(server.addr, server.tls(), &token.encoded(), &[]);
    let (_, body) = agent.checkin();
    agent.apply_policy(only_action(&body));

    // The monitor is slow: the action reaches the agent through its pending query first.
    store.feed.shut();
    let action = store
        .inner
        .add_action(Action {
            action_id: "once".into(),
            action_type: "SETTINGS".into(),
            agents: vec![agent.id.clone()],
            data: json!({"log_level": "debug"}),
            ..Action::default()
        })
        .unwrap();
    let (_, body) = agent.checkin();
    assert_eq!(only_action(&body)["id"], "once");
    assert_eq!(agent.ack_token, action.doc_id);

    // The live copy arrives while the next checkin is reading its pending actions.
    store.pending.shut();
    let checkin = std::thread::spawn(move || agent.checkin().1);
    wait_held(&store.pending);
    store.feed.open();
    let deadline = Instant::now() + Duration::from_secs(20);
    while server
        .stats
        .early_actions
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the live copy never reached the starting checkin"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    store.pending.open();
    let body = checkin.join().unwrap();
    assert!(body.get("actions").is_none(), "delivered twice: {body}");
}
