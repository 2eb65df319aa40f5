//! The API-key cache seen through the server (fleet-protocol.md §1.4, §10.4): an agent's
//! repeated requests check its key against the store once per TTL, and the key an UNENROLL ack
//! invalidates is refused on the very next request, not a TTL later. The store counts the
//! `authenticate` calls that reach it, per key id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use fleet_edge::backend::memory::MemoryStore;
use fleet_edge::backend::{
    ApiKey, ApiKeyInfo, Changes, CheckinWrite, Created, Cursor, NewApiKey, PolicyAck, Store,
    StoreError,
};
use fleet_edge::model::{Action, ActionResult, Agent, EnrollmentKey, PolicyDoc};

use crate::protocol::{checks, error_of, only_action, policy};
use crate::support::agent::{body_json, Agent as TestAgent};
use crate::support::inproc::{InProc, Options};

/// A memory store counting the `authenticate` calls per key id.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    calls: Mutex<HashMap<String, usize>>,
}

impl Counting {
    fn calls(&self, key_id: &str) -> usize {
        self.calls.lock().unwrap().get(key_id).copied().unwrap_or(0)
    }
}

impl Store for Counting {
    fn authenticate(&self, key: &ApiKey) -> Result<Option<ApiKeyInfo>, StoreError> {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(key.id.clone())
            .or_default() += 1;
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
        self.inner.agent_by_enrollment_id(id)
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
        self.inner.pending_actions(agent, after, now, limit)
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
        self.inner.changes(since, now, wait)
    }
}

#[test]
fn an_agent_key_is_checked_once_per_ttl_and_refused_at_once_after_unenroll() {
    let store = Arc::new(Counting::default());
    store
        .inner
        .add_policy(policy("edge-policy", 1, checks()))
        .unwrap();
    let token = store.inner.add_enrollment_key("edge-policy").unwrap();
    let server = InProc::start(store.clone(), Options::default());
    let (mut agent, _) = TestAgent::enroll(server.addr, server.tls(), &token.encoded(), &[]);
    let key_id = store
        .inner
        .agent(&agent.id)
        .unwrap()
        .unwrap()
        .access_api_key_id;

    // (a) The agent does not apply the policy, so every checkin is answered at once with it.
    for _ in 0..3 {
        let (resp, body) = agent.checkin();
        assert_eq!(resp.status, 200);
        assert_eq!(only_action(&body)["type"], "POLICY_CHANGE");
    }
    let probe = body_json(&agent.status_probe());
    assert!(probe["version"]["number"].is_string(), "long form: {probe}");
    assert_eq!(
        store.calls(&key_id),
        1,
        "three checkins and a status probe, one check of the key"
    );

    // (b) UNENROLL, acked: the ack invalidates the key through the cache.
    let unenroll = store
        .inner
        .add_action(Action {
            action_id: "unenroll-1".into(),
            action_type: "UNENROLL".into(),
            agents: vec![agent.id.clone()],
            ..Action::default()
        })
        .unwrap();
    let (resp, body) = agent.checkin();
    assert_eq!(resp.status, 200);
    assert!(
        body["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["type"] == "UNENROLL"),
        "{body}"
    );
    let (resp, _) = agent.ack(&[(unenroll.action_id.as_str(), "UNENROLL")]);
    assert_eq!(resp.status, 200);
    assert_eq!(
        error_of(&agent.checkin().0),
        (401, "ErrAgentInactive".into())
    );
    assert_eq!(
        store.calls(&key_id),
        2,
        "the entry was evicted: asked again"
    );
    // The status probe checks the key alone (no agent document): a key still cached as valid
    // would get the long form.
    let probe = body_json(&agent.status_probe());
    assert_eq!(probe["status"], "HEALTHY");
    assert!(
        probe.get("version").is_none(),
        "short form for an invalidated key: {probe}"
    );
    assert_eq!(
        store.calls(&key_id),
        2,
        "the disabled answer is cached in turn"
    );
}
