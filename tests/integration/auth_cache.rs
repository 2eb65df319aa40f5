//! The API-key cache seen through the server (fleet-protocol.md §1.4, §10.4): an agent's
//! repeated requests check its key against the store once per TTL, and the key an UNENROLL ack
//! invalidates is refused on the very next request, not a TTL later. The store counts the
//! `authenticate` calls that reach it, per key id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fleet_edge::backend::memory::MemoryStore;
use fleet_edge::backend::Store;
use fleet_edge::model::Action;

use crate::protocol::{checks, error_of, only_action, policy};
use crate::support::agent::{body_json, Agent as TestAgent};
use crate::support::inproc::{InProc, Options};

/// A memory store counting the `authenticate` calls per key id (its `on_authenticate` hook).
struct Counting {
    inner: Arc<MemoryStore>,
    calls: Arc<Mutex<HashMap<String, usize>>>,
}

impl Counting {
    fn new() -> Self {
        let inner = Arc::new(MemoryStore::new());
        let calls: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let counter = Arc::clone(&calls);
        inner.on_authenticate(move |key| {
            *counter.lock().unwrap().entry(key.id.clone()).or_default() += 1;
        });
        Self { inner, calls }
    }

    fn calls(&self, key_id: &str) -> usize {
        self.calls.lock().unwrap().get(key_id).copied().unwrap_or(0)
    }
}

#[test]
fn an_agent_key_is_checked_once_per_ttl_and_refused_at_once_after_unenroll() {
    let store = Counting::new();
    store
        .inner
        .add_policy(policy("edge-policy", 1, checks()))
        .unwrap();
    let token = store.inner.add_enrollment_key("edge-policy").unwrap();
    let server = InProc::start(store.inner.clone(), Options::default());
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
