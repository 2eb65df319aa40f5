//! Races between a checkin and the store, made deterministic with a store whose pending-actions
//! query takes its snapshot and then waits for the test to release it.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Map, Value};

use fleet_edge::backend::memory::MemoryStore;
use fleet_edge::backend::{
    ApiKey, ApiKeyInfo, Changes, CheckinWrite, Created, Cursor, NewApiKey, PolicyAck, Store,
    StoreError,
};
use fleet_edge::model::{Action, ActionResult, Agent, EnrollmentKey, PolicyDoc};

use crate::protocol::{checks, only_action, policy};
use crate::support::agent::Agent as TestAgent;
use crate::support::inproc::{InProc, Options};

/// Delegates to a memory store; `pending_actions` blocks after reading while the gate is shut.
struct Gated {
    inner: MemoryStore,
    gate: Mutex<(bool, usize)>,
    changed: Condvar,
    /// When shut, the change feed holds new documents back (the monitor is "slow").
    feed_shut: Mutex<bool>,
}

fn gated() -> Arc<Gated> {
    Arc::new(Gated {
        inner: MemoryStore::new(),
        gate: Mutex::new((false, 0)),
        changed: Condvar::new(),
        feed_shut: Mutex::new(false),
    })
}

impl Gated {
    fn shut(&self) {
        self.gate.lock().unwrap().0 = true;
    }
    fn open(&self) {
        self.gate.lock().unwrap().0 = false;
        self.changed.notify_all();
    }
    fn set_feed(&self, shut: bool) {
        *self.feed_shut.lock().unwrap() = shut;
        self.changed.notify_all();
    }

    /// Holds the calling (backend) thread while the gate is shut.
    fn hold(&self) {
        let mut g = self.gate.lock().unwrap();
        g.1 += 1;
        self.changed.notify_all();
        while g.0 {
            g = self.changed.wait(g).unwrap();
        }
        g.1 -= 1;
    }

    /// Waits until a query is held at the gate.
    fn wait_held(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut g = self.gate.lock().unwrap();
        while g.1 == 0 {
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("no query reached the gate");
            g = self.changed.wait_timeout(g, left).unwrap().0;
        }
    }
}

impl Store for Gated {
    fn authenticate(&self, key: &ApiKey) -> Result<Option<ApiKeyInfo>, StoreError> {
        self.inner.authenticate(key)
    }
    fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey, StoreError> {
        self.inner.create_api_key(key)
    }
    fn api_key_roles(&self, id: &str) -> Result<Option<Value>, StoreError> {
        self.inner.api_key_roles(id)
    }
    fn update_api_key_roles(&self, id: &str, roles: &Value) -> Result<(), StoreError> {
        self.inner.update_api_key_roles(id, roles)
    }
    fn invalidate_api_keys(&self, ids: &[String]) -> Result<(), StoreError> {
        self.inner.invalidate_api_keys(ids)
    }
    fn enrollment_key(&self, id: &str) -> Result<Option<EnrollmentKey>, StoreError> {
        self.inner.enrollment_key(id)
    }
    fn policy_enrollment_key(&self, policy_id: &str) -> Result<Option<EnrollmentKey>, StoreError> {
        self.inner.policy_enrollment_key(policy_id)
    }
    fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        self.inner.agent(id)
    }
    fn agent_by_enrollment_id(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        let found = self.inner.agent_by_enrollment_id(id);
        self.hold();
        found
    }
    fn create_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        self.inner.create_agent(agent)
    }
    fn update_agent(&self, id: &str, f: &Map<String, Value>) -> Result<(), StoreError> {
        self.inner.update_agent(id, f)
    }
    fn delete_agent(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete_agent(id)
    }
    fn update_agents(
        &self,
        u: &[(String, CheckinWrite)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        self.inner.update_agents(u)
    }
    fn policy_acked(&self, id: &str, ack: &PolicyAck) -> Result<(), StoreError> {
        self.inner.policy_acked(id, ack)
    }
    fn pending_actions(
        &self,
        agent: &str,
        after: i64,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<Action>, StoreError> {
        let snapshot = self.inner.pending_actions(agent, after, now, limit);
        self.hold();
        snapshot
    }
    fn action(&self, id: &str) -> Result<Option<Action>, StoreError> {
        self.inner.action(id)
    }
    fn action_seq_no(&self, id: &str) -> Result<Option<i64>, StoreError> {
        self.inner.action_seq_no(id)
    }
    fn create_action_result(&self, r: &ActionResult) -> Result<Created, StoreError> {
        self.inner.create_action_result(r)
    }
    fn write_output_health(&self, doc: &fleet_edge::model::OutputHealth) -> Result<(), StoreError> {
        self.inner.write_output_health(doc)
    }
    fn secret(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.inner.secret(id)
    }
    fn latest_policies(&self) -> Result<Vec<PolicyDoc>, StoreError> {
        self.inner.latest_policies()
    }
    fn agent_by_access_key(
        &self,
        api_key_id: &str,
    ) -> Result<Option<fleet_edge::model::Agent>, StoreError> {
        self.inner.agent_by_access_key(api_key_id)
    }
    fn artifact(
        &self,
        identifier: &str,
        decoded_sha256: &str,
    ) -> Result<Option<fleet_edge::model::Artifact>, StoreError> {
        self.inner.artifact(identifier, decoded_sha256)
    }
    fn changes(
        &self,
        since: Cursor,
        now: SystemTime,
        wait: Duration,
    ) -> Result<Changes, StoreError> {
        let changes = self.inner.changes(since, now, wait)?;
        if !changes.actions.is_empty() {
            let mut shut = self.feed_shut.lock().unwrap();
            while *shut {
                shut = self.changed.wait(shut).unwrap();
            }
        }
        Ok(changes)
    }
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
        store.clone(),
        Options {
            long_poll: "60s",
            ..Options::default()
        },
    );
    let (mut agent, _) = TestAgent::enroll(server.addr, server.tls(), &token.encoded(), &[]);
    let (_, body) = agent.checkin();
    agent.apply_policy(only_action(&body));

    store.shut();
    let id = agent.id.clone();
    let started = Instant::now();
    let checkin = std::thread::spawn(move || agent.checkin().1);
    store.wait_held();
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
    store.open();
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
    let server = InProc::start(store.clone(), Options::default());
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
    store.shut();
    let (addr, tls, first_raw) = (server.addr, server.tls(), raw.clone());
    let first =
        std::thread::spawn(move || crate::support::agent::once(addr, tls, &first_raw).status);
    store.wait_held();
    let second = crate::support::agent::once(server.addr, server.tls(), &raw);
    assert_eq!(second.status, 429);
    assert_eq!(
        crate::support::agent::body_json(&second)["error"],
        "EnrollDuplicate"
    );
    store.open();
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
        store.clone(),
        Options {
            long_poll: "1s",
            ..Options::default()
        },
    );
    let (mut agent, _) = TestAgent::enroll(server.addr, server.tls(), &token.encoded(), &[]);
    let (_, body) = agent.checkin();
    agent.apply_policy(only_action(&body));

    // The monitor is slow: the action reaches the agent through its pending query first.
    store.set_feed(true);
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
    store.shut();
    let checkin = std::thread::spawn(move || agent.checkin().1);
    store.wait_held();
    store.set_feed(false);
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
    store.open();
    let body = checkin.join().unwrap();
    assert!(body.get("actions").is_none(), "delivered twice: {body}");
}
