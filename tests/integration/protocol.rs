//! The agent protocol as a real Elastic Agent drives it (agent-client.md §7, §8;
//! fleet-protocol.md §14), run against every store through the `Fixture` seam: the in-process
//! server over the store, seeded the way Kibana would seed it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use fleet_edge::backend::memory::MemoryStore;
use fleet_edge::backend::{ApiKey, Store};
use fleet_edge::model::{Action, PolicyDoc};

use crate::support::agent::{body_json, once, raw_request, Agent, VERSION};
use crate::support::inproc::{InProc, Options};

/// A store plus Kibana's writes to it.
pub trait Fixture {
    fn store(&self) -> Arc<dyn Store>;
    fn add_policy(&self, doc: PolicyDoc);
    fn add_token(&self, policy_id: &str) -> ApiKey;
    fn add_action(&self, action: Action) -> Action;
}

struct Memory(Arc<MemoryStore>);

impl Fixture for Memory {
    fn store(&self) -> Arc<dyn Store> {
        self.0.clone()
    }
    fn add_policy(&self, doc: PolicyDoc) {
        self.0.add_policy(doc).unwrap()
    }
    fn add_token(&self, policy_id: &str) -> ApiKey {
        self.0.add_enrollment_key(policy_id).unwrap()
    }
    fn add_action(&self, action: Action) -> Action {
        self.0.add_action(action).unwrap()
    }
}

fn memory() -> Box<dyn Fixture> {
    Box::new(Memory(Arc::new(MemoryStore::new())))
}

pub fn policy(id: &str, revision: i64, roles: Value) -> PolicyDoc {
    PolicyDoc {
        timestamp: "2026-08-21T18:59:00.000Z".into(),
        policy_id: id.into(),
        revision_idx: revision,
        data: json!({
            "id": id, "revision": revision,
            "agent": {"monitoring": {"enabled": false, "logs": false, "metrics": false}},
            "fleet": {"hosts": ["https://fleet.example.com:8220"]},
            "outputs": {"default": {"type": "elasticsearch", "hosts": ["https://es.example.com:9200"]}},
            "output_permissions": {"default": roles},
            "inputs": []
        }),
        ..PolicyDoc::default()
    }
}

fn checks() -> Value {
    json!({"_elastic_agent_checks": {"cluster": ["monitor"]}})
}

fn start(fixture: &dyn Fixture, long_poll: &'static str) -> InProc {
    InProc::start(
        fixture.store(),
        Options {
            long_poll,
            ..Options::default()
        },
    )
}

fn only_action(body: &Value) -> &Value {
    let actions = body["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("no actions in {body}"));
    assert_eq!(actions.len(), 1, "{body}");
    &actions[0]
}

/// agent-client.md §7, steps 1-9, then the 401 after unenroll.
fn golden_exchange(fixture: Box<dyn Fixture>) {
    fixture.add_policy(policy("edge-policy", 1, checks()));
    let token = fixture.add_token("edge-policy");
    let server = start(&*fixture, "3s");

    // 1. enroll
    let (mut agent, enrolled) = Agent::enroll(
        server.addr,
        server.tls(),
        &token.encoded(),
        &["edge", "site-7"],
    );
    assert_eq!(enrolled["item"]["policy_id"], "edge-policy");
    assert_eq!(enrolled["item"]["tags"], json!(["edge", "site-7"]));

    // 2. first checkin: POLICY_CHANGE at once, output key minted with the policy's roles
    let started = Instant::now();
    let (resp, body) = agent.checkin();
    assert_eq!(resp.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at once"
    );
    assert_eq!(body["ack_token"], "");
    let action = only_action(&body);
    assert_eq!(action["type"], "POLICY_CHANGE");
    assert_eq!(action["id"], "policy:edge-policy:1");
    assert_eq!(action["agent_id"], agent.id.as_str());
    assert_eq!(action["input_type"], "");
    let delivered = &action["data"]["policy"];
    assert_eq!(delivered["revision"], 1);
    let output_key = delivered["outputs"]["default"]["api_key"].as_str().unwrap();
    let (kid, secret) = output_key.split_once(':').expect("id:key, not base64");
    let info = fixture
        .store()
        .authenticate(&ApiKey {
            id: kid.into(),
            secret: secret.into(),
        })
        .unwrap()
        .unwrap();
    assert!(info.enabled);
    assert_eq!(info.metadata["type"], "output");
    assert_eq!(
        fixture.store().api_key_roles(kid).unwrap().unwrap(),
        checks()
    );
    agent.apply_policy(action);

    // 3a. status probe with the access key on a new connection: 200 with the version block
    let probe = agent.status_probe();
    assert_eq!(probe.status, 200);
    let probe = body_json(&probe);
    assert_eq!(probe["status"], "HEALTHY");
    assert!(probe["version"]["number"].is_string(), "long form: {probe}");

    // 3b. ack
    let (resp, ack) = agent.ack(&[("policy:edge-policy:1", "POLICY_CHANGE")]);
    assert_eq!(resp.status, 200);
    assert_eq!(
        ack,
        json!({"action": "acks", "items": [{"message": "OK", "status": 200}]})
    );

    // 4. idle long poll: held for the poll duration, then an empty answer
    let started = Instant::now();
    let (resp, body) = agent.checkin();
    assert_eq!(resp.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "held, not answered at once: {:?}",
        started.elapsed()
    );
    assert_eq!(body, json!({"ack_token": "", "action": "checkin"}));

    // 5. a new revision wakes the parked poll
    let parked = park(agent);
    server.wait_parked(1);
    fixture.add_policy(policy("edge-policy", 2, checks()));
    let (mut agent, status, body) = parked.join().unwrap();
    assert_eq!(status, 200);
    let action = only_action(&body);
    assert_eq!(action["id"], "policy:edge-policy:2");
    assert_eq!(action["data"]["policy"]["revision"], 2);
    assert_eq!(
        action["data"]["policy"]["outputs"]["default"]["api_key"], output_key,
        "same key, same permissions"
    );
    agent.apply_policy(action);

    // 6. ack revision 2
    let (resp, _) = agent.ack(&[("policy:edge-policy:2", "POLICY_CHANGE")]);
    assert_eq!(resp.status, 200);

    // 8. unenroll while parked: delivered live, with the document id as ack token
    let agent_id = agent.id.clone();
    let parked = park(agent);
    server.wait_parked(1);
    let unenroll = fixture.add_action(Action {
        action_id: "6d1f3a52-7c44-4b8e-9e0f-1a2b3c4d5e6f".into(),
        action_type: "UNENROLL".into(),
        agents: vec![agent_id],
        timestamp: "2026-08-21T19:20:00.000Z".into(),
        ..Action::default()
    });
    let (mut agent, status, body) = parked.join().unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["ack_token"], unenroll.doc_id.as_str());
    let action = only_action(&body);
    assert_eq!(action["type"], "UNENROLL");
    assert_eq!(action["data"], Value::Null);
    assert_eq!(action["created_at"], "2026-08-21T19:20:00.000Z");
    assert_eq!(
        agent.ack_token, unenroll.doc_id,
        "agent saved the token first"
    );

    // 9. ack UNENROLL → keys invalidated, agent inactive; the next checkin is refused
    let (resp, _) = agent.ack(&[(unenroll.action_id.as_str(), "UNENROLL")]);
    assert_eq!(resp.status, 200);
    let (resp, _) = agent.checkin();
    assert_eq!(resp.status, 401, "next checkin after unenroll");
}

/// Starts a checkin on another thread (it parks); join for (agent, status, body).
fn park(mut agent: Agent) -> std::thread::JoinHandle<(Agent, u16, Value)> {
    std::thread::spawn(move || {
        let (resp, body) = agent.checkin();
        (agent, resp.status, body)
    })
}

#[test]
fn golden_exchange_memory() {
    golden_exchange(memory());
}
