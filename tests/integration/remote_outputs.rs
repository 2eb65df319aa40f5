//! `remote_elasticsearch` outputs (fleet-protocol.md §3.7, §4.3, §4.4, §1.4) with two
//! clusters: the store the server runs on (memory, embedded, or Elasticsearch through the
//! stand-in) and a second stand-in as the output's remote cluster. The agent's key for that
//! output authenticates on the remote cluster and nowhere else; an unreachable remote cluster
//! gives the output without `api_key` and a DEGRADED health record, then a key and HEALTHY once
//! it is back; changed connection settings give a new key (the old one invalidated on the
//! remote cluster after the ack); unenroll and an inactive agent's checkin invalidate the key
//! there.

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Map, Value};

use es_standin::{Options as StandInOptions, StandIn};
use fleet_edge::backend::ApiKey;
use fleet_edge::model::{Action, PolicyDoc};

use crate::protocol::{checks, enrolled, only_action, park, Fixture};
use crate::support::agent::Agent;
use crate::support::inproc::{InProc, Options};

const POLICY: &str = "edge-policy";

fn remote_cluster() -> StandIn {
    StandIn::start(StandInOptions::default()).unwrap()
}

/// A revision with a local Elasticsearch output and a remote one at `hosts`.
fn policy(revision: i64, hosts: &[String], token: &str) -> PolicyDoc {
    PolicyDoc {
        timestamp: "2026-08-21T18:59:00.000Z".into(),
        policy_id: POLICY.into(),
        revision_idx: revision,
        data: json!({
            "id": POLICY, "revision": revision,
            "agent": {"monitoring": {"enabled": false, "logs": false, "metrics": false}},
            "fleet": {"hosts": ["https://fleet.example.com:8220"]},
            "outputs": {
                "default": {"type": "elasticsearch", "hosts": ["https://es.example.com:9200"]},
                "remote": {"type": "remote_elasticsearch", "hosts": hosts, "service_token": token,
                           "preset": "balanced"}},
            "output_permissions": {"default": checks(), "remote": checks()},
            "inputs": []
        }),
        ..PolicyDoc::default()
    }
}

fn start(fixture: &dyn Fixture, remote_retry_after: Duration) -> InProc {
    InProc::start(
        fixture.store(),
        Options {
            long_poll: "20s",
            remote_retry_after,
            ..Options::default()
        },
    )
}

/// The `api_key` of the delivered remote output (`id:secret`), if any.
fn remote_key(action: &Value) -> Option<String> {
    let out = &action["data"]["policy"]["outputs"]["remote"];
    assert_eq!(out["type"], "elasticsearch", "{out}");
    assert!(out.get("service_token").is_none(), "{out}");
    out.get("api_key").map(|k| k.as_str().unwrap().to_owned())
}

/// `_authenticate` on a stand-in with an `id:secret` key: its status.
fn status_on(es: &StandIn, joined: &str) -> u16 {
    let encoded = base64::engine::general_purpose::STANDARD.encode(joined);
    es.client()
        .request(
            "GET",
            "/_security/_authenticate",
            &[("Authorization", &format!("ApiKey {encoded}"))],
            None,
        )
        .unwrap()
        .status
}

/// Whether the store the server runs on (its own cluster) accepts `id:secret`.
fn valid_on_main(fixture: &dyn Fixture, joined: &str) -> bool {
    let (id, secret) = joined.split_once(':').unwrap();
    fixture
        .store()
        .authenticate(&ApiKey {
            id: id.into(),
            secret: secret.into(),
        })
        .unwrap()
        .is_some_and(|i| i.enabled)
}

/// First checkin: the POLICY_CHANGE, applied.
fn first_policy_change(agent: &mut Agent) -> Value {
    let (resp, body) = agent.checkin();
    assert_eq!(resp.status, 200);
    let action = only_action(&body).clone();
    assert_eq!(action["type"], "POLICY_CHANGE");
    agent.apply_policy(&action);
    action
}

/// Acks the revision the agent applied.
fn ack_policy(agent: &mut Agent) {
    let id = format!("policy:{POLICY}:{}", agent.revision.unwrap());
    let (resp, _) = agent.ack(&[(id.as_str(), "POLICY_CHANGE")]);
    assert_eq!(resp.status, 200);
}

/// Parks a checkin, publishes `next`, and returns the POLICY_CHANGE that wakes it (applied).
fn next_policy_change(
    fixture: &dyn Fixture,
    server: &InProc,
    agent: Agent,
    next: PolicyDoc,
) -> (Agent, Value) {
    let revision = next.revision_idx;
    let parked = park(agent);
    server.wait_parked(1);
    fixture.add_policy(next);
    let (mut agent, status, body) = parked.join().unwrap();
    assert_eq!(status, 200);
    let action = only_action(&body).clone();
    assert_eq!(
        action["id"],
        format!("policy:{POLICY}:{revision}"),
        "{body}"
    );
    agent.apply_policy(&action);
    (agent, action)
}

fn remote_output_key_is_made_on_the_remote_cluster(fixture: Box<dyn Fixture>) {
    let remote = remote_cluster();
    fixture.add_policy(policy(1, &[remote.url()], &remote.service_token()));
    let server = start(&*fixture, Duration::from_secs(30));
    let mut a = enrolled(&*fixture, &server);
    let action = first_policy_change(&mut a);

    let key = remote_key(&action).expect("a key for the remote output");
    assert!(key.contains(':'), "id:key, not base64: {key}");
    assert_eq!(
        status_on(&remote, &key),
        200,
        "authenticates on the remote cluster"
    );
    assert!(!valid_on_main(&*fixture, &key), "and not on the main one");
    if let Some(main) = fixture
        .as_any()
        .downcast_ref::<crate::support::stores::Es>()
    {
        assert_eq!(status_on(&main.es, &key), 401);
    }
    let id = key.split_once(':').unwrap().0;
    let (status, record) = remote
        .client()
        .json("GET", &format!("/_security/api_key?id={id}"), None)
        .unwrap();
    assert_eq!(status, 200);
    let record = &record["api_keys"][0];
    assert_eq!(record["name"], format!("{}:remote", a.id));
    assert_eq!(
        record["metadata"],
        json!({"agent_id": a.id, "managed": true, "managed_by": "fleet-server",
               "output_name": "remote", "type": "output"})
    );
    let health = fixture.output_health("remote").expect("a health record");
    assert_eq!(health.state, "HEALTHY");
    let doc = fixture.store().agent(&a.id).unwrap().unwrap();
    assert_eq!(doc.outputs["remote"].api_key, key);
    assert!(!doc.outputs["remote"].remote_config_hash.is_empty());
}

fn unreachable_remote_delivers_without_api_key_and_degrades(fixture: Box<dyn Fixture>) {
    let remote = remote_cluster();
    remote.faults().down(None);
    fixture.add_policy(policy(1, &[remote.url()], &remote.service_token()));
    let server = start(&*fixture, Duration::ZERO);
    let mut a = enrolled(&*fixture, &server);
    let action = first_policy_change(&mut a);

    assert_eq!(remote_key(&action), None, "delivered without api_key");
    assert_eq!(
        action["data"]["policy"]["outputs"]["remote"]["hosts"],
        json!([remote.url()])
    );
    if fixture.store().mints_output_keys() {
        assert!(action["data"]["policy"]["outputs"]["default"]["api_key"].is_string());
    }
    let health = fixture.output_health("remote").expect("a health record");
    assert_eq!(health.state, "DEGRADED");
    assert!(
        health
            .message
            .starts_with("remote ES could not create API key due to error: "),
        "{}",
        health.message
    );
    assert_eq!(health.data_stream.dataset, "fleet_server.output_health");
    ack_policy(&mut a);

    // The cluster comes back; the next revision brings the key.
    remote.faults().up();
    let (_, action) = next_policy_change(
        &*fixture,
        &server,
        a,
        policy(2, &[remote.url()], &remote.service_token()),
    );
    let key = remote_key(&action).expect("a key now");
    assert_eq!(status_on(&remote, &key), 200);
    assert_eq!(fixture.output_health("remote").unwrap().state, "HEALTHY");
}

fn changed_remote_settings_give_a_new_key_and_retire_the_old_one_there(fixture: Box<dyn Fixture>) {
    let remote = remote_cluster();
    let token = remote.service_token();
    fixture.add_policy(policy(1, &[remote.url()], &token));
    let server = start(&*fixture, Duration::from_secs(30));
    let mut a = enrolled(&*fixture, &server);
    let first = remote_key(&first_policy_change(&mut a)).unwrap();
    ack_policy(&mut a);

    // Same cluster and permissions, another host name: another configuration.
    let renamed = remote.url().replace("127.0.0.1", "localhost");
    assert_ne!(renamed, remote.url());
    let (mut a, action) = next_policy_change(&*fixture, &server, a, policy(2, &[renamed], &token));
    let second = remote_key(&action).unwrap();
    assert_ne!(second, first, "a new key");
    assert_eq!(
        status_on(&remote, &first),
        200,
        "kept until the agent acks the revision"
    );
    ack_policy(&mut a);
    assert_eq!(
        status_on(&remote, &first),
        401,
        "invalidated on the remote cluster"
    );
    assert_eq!(status_on(&remote, &second), 200);
    let doc = fixture.store().agent(&a.id).unwrap().unwrap();
    assert!(doc.outputs["remote"].to_retire_api_key_ids.is_empty());
}

fn unenroll_invalidates_the_remote_key_on_the_remote_cluster(fixture: Box<dyn Fixture>) {
    let remote = remote_cluster();
    fixture.add_policy(policy(1, &[remote.url()], &remote.service_token()));
    let server = start(&*fixture, Duration::from_secs(30));
    let mut a = enrolled(&*fixture, &server);
    let key = remote_key(&first_policy_change(&mut a)).unwrap();
    ack_policy(&mut a);
    assert_eq!(status_on(&remote, &key), 200);

    let unenroll = fixture.add_action(Action {
        action_id: "unenroll-remote".into(),
        action_type: "UNENROLL".into(),
        agents: vec![a.id.clone()],
        ..Action::default()
    });
    let (_, body) = a.checkin();
    assert_eq!(only_action(&body)["type"], "UNENROLL");
    let (resp, _) = a.ack(&[(unenroll.action_id.as_str(), "UNENROLL")]);
    assert_eq!(resp.status, 200);
    assert_eq!(
        status_on(&remote, &key),
        401,
        "invalidated on the remote cluster"
    );
    assert_eq!(a.checkin().0.status, 401);
}

fn an_inactive_agents_checkin_invalidates_its_remote_key(fixture: Box<dyn Fixture>) {
    let remote = remote_cluster();
    fixture.add_policy(policy(1, &[remote.url()], &remote.service_token()));
    let server = start(&*fixture, Duration::from_secs(30));
    let mut a = enrolled(&*fixture, &server);
    let key = remote_key(&first_policy_change(&mut a)).unwrap();
    ack_policy(&mut a);

    // Kibana's force unenroll: the agent document only, in the main cluster.
    let mut off = Map::new();
    off.insert("active".into(), json!(false));
    fixture.store().update_agent(&a.id, &off).unwrap();
    assert_eq!(status_on(&remote, &key), 200);
    let (resp, _) = a.checkin();
    assert_eq!(resp.status, 401);
    assert_eq!(status_on(&remote, &key), 401);
}

on_every_store!(
    remote_output_key_is_made_on_the_remote_cluster,
    unreachable_remote_delivers_without_api_key_and_degrades,
    changed_remote_settings_give_a_new_key_and_retire_the_old_one_there,
    unenroll_invalidates_the_remote_key_on_the_remote_cluster,
    an_inactive_agents_checkin_invalidates_its_remote_key,
);
