//! Tests of the Elasticsearch store against the es-standin: the shared conformance suite (a
//! fresh stand-in per store, seeded over REST as Kibana would), exact calls, and (in the
//! submodules) the TLS matrix, faults and failover, the followers' own delivery of the feed,
//! and the mapping conformance of every document the store writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod deadlines;
mod faults;
mod follow;
mod lean;
mod mapping;
mod remote;
mod tls;

use std::time::{Duration, SystemTime};

use base64::Engine;
use es_standin::{Options, StandIn};
use serde_json::{json, Map, Value};

use super::{EsOptions, EsStore};
use crate::backend::conformance::{run_all, TestStore};
use crate::backend::{ApiKey, Changes, CheckinWrite, Cursor, Store, StoreError};
use crate::config::{EsSettings, Secret};
use crate::model::{Action, Agent, PolicyDoc};

/// Options with short pauses, for tests.
/// Fast retries, and connect and request timeouts long enough for a slow CI machine or the armv7
/// tests under qemu (a TLS handshake there can take seconds): these tests check what
/// is answered, not how fast (`deadlines.rs` has its own short timeouts).
pub fn quick() -> EsOptions {
    EsOptions {
        max_retries: 3,
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        connect_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(120),
        poll_timeout: Duration::from_secs(2),
    }
}

/// Settings for a stand-in over plain HTTP.
pub fn settings(es: &StandIn) -> EsSettings {
    EsSettings {
        hosts: vec![es.url()],
        ca: Vec::new(),
        ca_certs: Vec::new(),
        ca_trusted_fingerprint: None,
        client_cert: None,
        insecure: false,
        service_token: Some(Secret::new(es.service_token())),
        headers: Vec::new(),
        server_version: crate::server_version::BUILT_IN,
    }
}

/// A stand-in and a store connected to it.
pub fn pair() -> (StandIn, EsStore) {
    let es = StandIn::start(Options::default()).unwrap();
    let store =
        EsStore::connect_with(&settings(&es), Some(Duration::from_secs(60)), quick()).unwrap();
    (es, store)
}

/// The superuser's REST call; panics unless 2xx.
pub fn rest(es: &StandIn, method: &str, path: &str, body: Option<&Value>) -> Value {
    let (status, v) = es.client().json(method, path, body).unwrap();
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {v}"
    );
    v
}

/// The store plus its stand-in; seeds as Kibana does (REST writes with `refresh=wait_for`).
pub struct EsTestStore {
    pub store: EsStore,
    pub es: StandIn,
}

impl EsTestStore {
    pub fn new() -> EsTestStore {
        let (es, store) = pair();
        EsTestStore { store, es }
    }
}

impl TestStore for EsTestStore {
    fn store(&self) -> &dyn Store {
        &self.store
    }

    fn seed_enrollment_key(&self, policy_id: &str) -> ApiKey {
        let key = self.es.seed().enrollment_key(policy_id, "Default").unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(key.api_key)
            .unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (id, secret) = text.split_once(':').unwrap();
        ApiKey {
            id: id.into(),
            secret: secret.into(),
        }
    }

    fn seed_policy(&self, doc: PolicyDoc) {
        let body = serde_json::to_value(&doc).unwrap();
        rest(
            &self.es,
            "POST",
            "/.fleet-policies/_doc?refresh=wait_for",
            Some(&body),
        );
    }

    fn seed_action(&self, mut action: Action) -> Action {
        // Kibana always writes an expiration; the contract's queries never match without one.
        if action.expiration.is_empty() {
            action.expiration = "2099-01-01T00:00:00.000Z".into();
        }
        if action.doc_id.is_empty() {
            action.doc_id = crate::backend::ops::uuid_v4();
        }
        let body = serde_json::to_value(&action).unwrap();
        let path = format!("/.fleet-actions/_doc/{}?refresh=wait_for", action.doc_id);
        let v = rest(&self.es, "PUT", &path, Some(&body));
        action.seq_no = v["_seq_no"].as_i64().unwrap();
        action
    }

    fn seed_secret(&self, id: &str, value: &str) {
        let path = format!("/.fleet-secrets/_doc/{id}?refresh=wait_for");
        rest(&self.es, "PUT", &path, Some(&json!({ "value": value })));
    }
    fn latest_output_health(&self, output: &str) -> Option<crate::model::OutputHealth> {
        latest_output_health(&self.es, output)
    }
    fn agent_document(&self, id: &str) -> Option<Map<String, Value>> {
        let path = format!("/.fleet-agents/_doc/{id}");
        let (status, v) = self.es.client().json("GET", &path, None).unwrap();
        if status == 404 {
            return None;
        }
        assert_eq!(status, 200, "{v}");
        v["_source"].as_object().cloned()
    }
}

/// The newest document of `output` in the output-health data stream of a stand-in.
pub fn latest_output_health(es: &StandIn, output: &str) -> Option<crate::model::OutputHealth> {
    let (status, v) = es
        .client()
        .json(
            "POST",
            "/logs-fleet_server.output_health-default/_search",
            Some(&json!({"size": 1000})),
        )
        .unwrap();
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "{v}");
    let mut docs: Vec<crate::model::OutputHealth> = v["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| serde_json::from_value(h["_source"].clone()).unwrap())
        .filter(|d: &crate::model::OutputHealth| d.output == output)
        .collect();
    docs.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
    docs.pop()
}

#[test]
fn conformance_suite_over_the_standin() {
    run_all(&|| Box::new(EsTestStore::new()) as Box<dyn TestStore>);
}

#[test]
fn connect_reports_the_cluster_version() {
    let (_es, store) = pair();
    assert_eq!(store.es_version(), "9.6.0");
    assert_eq!(store.follower_threads(), 0, "followers start with the feed");
}

#[test]
fn agent_nulls_read_as_absent_and_nested_objects_merge() {
    let t = EsTestStore::new();
    let mut agent = Agent {
        id: "n1".into(),
        active: true,
        ..Agent::default()
    };
    agent.outputs.insert(
        "default".into(),
        crate::model::OutputKey {
            api_key: "i:s".into(),
            api_key_id: "i".into(),
            ..Default::default()
        },
    );
    t.store.create_agent(&agent).unwrap();
    let mut fields = Map::new();
    fields.insert("audit_unenrolled_reason".into(), Value::Null);
    fields.insert(
        "outputs".into(),
        json!({"gone": null, "default": {"permissions_hash": "h"}}),
    );
    t.store.update_agent("n1", &fields).unwrap();
    let stored = t.es.document(".fleet-agents", "n1").unwrap();
    assert_eq!(
        stored["audit_unenrolled_reason"],
        Value::Null,
        "ES keeps explicit nulls"
    );
    let read = t.store.agent("n1").unwrap().unwrap();
    assert_eq!(read.audit_unenrolled_reason, "");
    assert_eq!(read.outputs.len(), 1);
    assert_eq!(
        read.outputs["default"].api_key_id, "i",
        "doc updates merge objects"
    );
    assert_eq!(read.outputs["default"].permissions_hash, "h");
}

#[test]
fn update_agents_is_one_bulk_without_refresh_and_reports_items() {
    let t = EsTestStore::new();
    t.store
        .create_agent(&Agent {
            id: "u1".into(),
            active: true,
            ..Agent::default()
        })
        .unwrap();
    let mut f = Map::new();
    f.insert("last_checkin_status".into(), json!("online"));
    assert_eq!(t.store.update_agents(&[]).unwrap(), Vec::new());
    let out = t
        .store
        .update_agents(&[
            ("u1".into(), CheckinWrite::fields(f.clone())),
            ("nope".into(), CheckinWrite::fields(f)),
        ])
        .unwrap();
    assert_eq!(out, vec![Ok(()), Err(StoreError::NotFound)]);
    assert_eq!(
        t.es.document(".fleet-agents", "u1").unwrap()["last_checkin_status"],
        "online"
    );
}

#[test]
fn missing_indices_are_empty_not_errors() {
    let (_es, store) = pair();
    let now = SystemTime::now();
    assert_eq!(store.agent("x").unwrap(), None);
    assert_eq!(store.enrollment_key("x").unwrap(), None);
    assert_eq!(
        store.pending_actions("x", -1, now, 100).unwrap(),
        Vec::new()
    );
    assert_eq!(store.action("x").unwrap(), None);
    assert_eq!(store.action_seq_no("x").unwrap(), None);
    assert_eq!(store.latest_policies().unwrap(), Vec::new());
    assert_eq!(store.secret("x").unwrap(), None);
    assert_eq!(store.delete_agent("x"), Ok(()));
    assert_eq!(
        store.update_agent("x", &Map::new()),
        Err(StoreError::NotFound)
    );
    assert_eq!(store.api_key_roles("x").unwrap(), None);
    let c = store
        .changes(Cursor::START, now, Duration::from_millis(20))
        .unwrap();
    assert_eq!(c, Changes::default());
}

#[test]
fn authenticate_is_none_only_for_a_401() {
    let t = EsTestStore::new();
    let bogus = ApiKey {
        id: "nope".into(),
        secret: "nope".into(),
    };
    assert_eq!(t.store.authenticate(&bogus), Ok(None));
    t.es.faults().fail_next(10, 503);
    assert!(matches!(
        t.store.authenticate(&bogus),
        Err(StoreError::Unavailable(_))
    ));
    t.es.faults().clear();
    t.es.faults().fail_next(10, 429);
    assert_eq!(
        t.store.authenticate(&bogus),
        Err(StoreError::TooManyRequests)
    );
    t.es.faults().clear();
}

#[test]
fn change_feed_returns_as_soon_as_either_index_advances() {
    let t = EsTestStore::new();
    let first = t
        .store
        .changes(Cursor::START, SystemTime::now(), Duration::from_millis(10))
        .unwrap();
    let start = first.cursor.unwrap_or(Cursor::START);
    let es_seed = t.es.seed();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        es_seed.agent_policy("late").unwrap();
    });
    let began = std::time::Instant::now();
    let got = t
        .store
        .changes(start, SystemTime::now(), Duration::from_secs(20))
        .unwrap();
    let took = began.elapsed();
    writer.join().unwrap();
    assert_eq!(got.policies.len(), 1, "{got:?}");
    assert_eq!(got.policies[0].policy_id, "late");
    assert!(
        took < Duration::from_secs(5),
        "woke on the advance, took {took:?}"
    );
    assert_eq!(t.store.follower_threads(), 2);
    let probe = t.store.follower_probe();
    drop(t);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while probe() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(probe(), 0, "followers stop after the store is dropped");
}

#[test]
fn monitor_fetch_pages_by_fetch_size() {
    let t = EsTestStore::new();
    let mut lines = String::new();
    for i in 0..1005 {
        lines.push_str(&format!("{{\"create\":{{\"_index\":\".fleet-policies\"}}}}\n{}\n",
            json!({"@timestamp": "2026-01-01T00:00:00.000Z", "policy_id": format!("p{i}"), "revision_idx": 1, "data": {}})));
    }
    let (status, v) =
        t.es.client()
            .request(
                "POST",
                "/_bulk?refresh=wait_for",
                &[],
                Some(lines.as_bytes()),
            )
            .map(|r| (r.status, r.json()))
            .unwrap();
    assert_eq!(status, 200, "{v}");
    let got = t
        .store
        .changes(Cursor::START, SystemTime::now(), Duration::from_secs(5))
        .unwrap();
    assert_eq!(got.policies.len(), 1005);
    assert_eq!(got.cursor.unwrap().policies, 1004);
}

/// Rough latencies against the in-process stand-in (debug build); run with
/// `cargo test --lib backend::es::tests::measure -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure() {
    use std::time::Instant;
    let t = EsTestStore::new();
    let ids: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    for id in &ids {
        t.store
            .create_agent(&Agent {
                id: id.clone(),
                active: true,
                ..Agent::default()
            })
            .unwrap();
    }
    let mut lat: Vec<Duration> = ids
        .iter()
        .map(|id| {
            let began = Instant::now();
            t.store.agent(id).unwrap().unwrap();
            began.elapsed()
        })
        .collect();
    lat.sort();
    println!("agent() mget: p50 {:?} p99 {:?}", lat[500], lat[990]);
    let mut f = Map::new();
    f.insert("last_checkin_status".into(), json!("online"));
    let batch: Vec<_> = ids
        .iter()
        .map(|id| (id.clone(), CheckinWrite::fields(f.clone())))
        .collect();
    let began = Instant::now();
    let out = t.store.update_agents(&batch).unwrap();
    assert!(out.iter().all(Result::is_ok));
    println!("update_agents(1000) one _bulk: {:?}", began.elapsed());
    let first = t
        .store
        .changes(Cursor::START, SystemTime::now(), Duration::from_millis(10))
        .unwrap();
    let start = first.cursor.unwrap_or(Cursor::START);
    let seed = t.es.seed();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let began = Instant::now();
        seed.agent_policy("measured").unwrap();
        began
    });
    let got = t
        .store
        .changes(start, SystemTime::now(), Duration::from_secs(30))
        .unwrap();
    let written = writer.join().unwrap();
    assert_eq!(got.policies.len(), 1);
    println!(
        "policy write (refresh=wait_for) to changes() return: {:?}",
        written.elapsed()
    );
}
