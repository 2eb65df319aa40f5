//! The stores the protocol tests run against, each seeded the way its writer would seed it:
//! memory (reference semantics), the embedded redb store (as the management API writes), and
//! Elasticsearch through the stand-in (over REST, as Kibana writes).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use fleet_edge::backend::local::LocalStore;
use fleet_edge::backend::memory::MemoryStore;
use fleet_edge::backend::{ApiKey, Store};
use fleet_edge::model::{Action, OutputHealth, PolicyDoc};

use super::TempDir;

/// A store plus Kibana's writes to it.
pub trait Fixture: std::any::Any {
    fn as_any(&self) -> &dyn std::any::Any;
    fn store(&self) -> Arc<dyn Store>;
    fn add_policy(&self, doc: PolicyDoc);
    fn add_token(&self, policy_id: &str) -> ApiKey;
    fn add_action(&self, action: Action) -> Action;
    /// The latest output-health document of `output` the server wrote.
    fn output_health(&self, output: &str) -> Option<OutputHealth>;
    /// The agent document as the store keeps it, member for member.
    fn agent_document(&self, id: &str) -> Option<Map<String, Value>>;
    /// The `.fleet-actions-results` document `<action_id>:<agent_id>` as stored.
    fn result_document(&self, action_id: &str, agent_id: &str) -> Option<Value>;
    /// Whether the store keeps an explicit `null` written by a partial update (Elasticsearch)
    /// rather than removing the member (the embedded stores, whose readers treat both alike).
    fn keeps_nulls(&self) -> bool {
        false
    }
    /// Adds a `.fleet-artifacts` document as Kibana (or `artifacts add-endpoint`) does.
    fn add_artifact(&self, doc: &fleet_edge::model::Artifact);
}

struct Memory(Arc<MemoryStore>);

impl Fixture for Memory {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn add_artifact(&self, doc: &fleet_edge::model::Artifact) {
        self.0.add_artifact(doc.clone()).unwrap()
    }
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
    fn output_health(&self, output: &str) -> Option<OutputHealth> {
        self.0.output_health(output)
    }
    fn agent_document(&self, id: &str) -> Option<Map<String, Value>> {
        self.0.agent_document(id)
    }
    fn result_document(&self, action_id: &str, agent_id: &str) -> Option<Value> {
        let result = self.0.action_result(&format!("{action_id}:{agent_id}"))?;
        Some(serde_json::to_value(result).unwrap())
    }
}

pub fn memory() -> Box<dyn Fixture> {
    Box::new(Memory(Arc::new(MemoryStore::new())))
}

struct Local(Arc<LocalStore>, #[allow(dead_code)] TempDir);

impl Fixture for Local {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn add_artifact(&self, doc: &fleet_edge::model::Artifact) {
        let path = fleet_edge::files::endpoint::artifact_path(
            self.0.endpoint_artifacts_dir(),
            &doc.identifier,
            &doc.decoded_sha256,
        )
        .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, serde_json::to_vec(doc).unwrap()).unwrap();
    }
    fn store(&self) -> Arc<dyn Store> {
        self.0.clone()
    }
    fn add_policy(&self, doc: PolicyDoc) {
        self.0.add_policy(doc).unwrap()
    }
    fn add_token(&self, policy_id: &str) -> ApiKey {
        self.0.add_enrollment_key(policy_id, "test").unwrap()
    }
    fn add_action(&self, action: Action) -> Action {
        self.0.add_action(action).unwrap()
    }
    fn output_health(&self, output: &str) -> Option<OutputHealth> {
        self.0.output_health(output)
    }
    fn agent_document(&self, id: &str) -> Option<Map<String, Value>> {
        self.0.agent_document(id).unwrap()
    }
    fn result_document(&self, action_id: &str, agent_id: &str) -> Option<Value> {
        let results = self.0.action_results(action_id).unwrap();
        let result = results.into_iter().find(|r| r.agent_id == agent_id)?;
        Some(serde_json::to_value(result).unwrap())
    }
}

/// The Elasticsearch store over a fresh stand-in, seeded over REST as Kibana does it.
pub struct Es {
    pub es: es_standin::StandIn,
    store: Arc<fleet_edge::backend::es::EsStore>,
}

impl Es {
    pub fn rest(&self, method: &str, path: &str, body: &Value) -> Value {
        let (status, v) = self.es.client().json(method, path, Some(body)).unwrap();
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }
}

impl Fixture for Es {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn add_artifact(&self, doc: &fleet_edge::model::Artifact) {
        let path = format!(
            "/.fleet-artifacts/_doc/{}-{}?refresh=wait_for",
            doc.identifier, doc.decoded_sha256
        );
        self.rest("PUT", &path, &serde_json::to_value(doc).unwrap());
    }
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
    fn add_policy(&self, doc: PolicyDoc) {
        self.rest(
            "POST",
            "/.fleet-policies/_doc?refresh=wait_for",
            &serde_json::to_value(&doc).unwrap(),
        );
    }
    fn add_token(&self, policy_id: &str) -> ApiKey {
        use base64::Engine;
        let key = self.es.seed().enrollment_key(policy_id, "Default").unwrap();
        let text = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(key.api_key)
                .unwrap(),
        )
        .unwrap();
        let (id, secret) = text.split_once(':').unwrap();
        ApiKey {
            id: id.into(),
            secret: secret.into(),
        }
    }
    fn add_action(&self, mut action: Action) -> Action {
        // Kibana always writes an expiration; Fleet's queries never match an action without one.
        if action.expiration.is_empty() {
            action.expiration = "2099-01-01T00:00:00.000Z".into();
        }
        if action.doc_id.is_empty() {
            action.doc_id = fleet_edge::backend::ops::uuid_v4();
        }
        let path = format!("/.fleet-actions/_doc/{}?refresh=wait_for", action.doc_id);
        let v = self.rest("PUT", &path, &serde_json::to_value(&action).unwrap());
        action.seq_no = v["_seq_no"].as_i64().unwrap();
        action
    }
    fn keeps_nulls(&self) -> bool {
        true
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
    fn result_document(&self, action_id: &str, agent_id: &str) -> Option<Value> {
        // A data stream: searched by `_id` (its backing index is not the stream's name).
        let query =
            serde_json::json!({"query": {"ids": {"values": [format!("{action_id}:{agent_id}")]}}});
        let (status, v) = self
            .es
            .client()
            .json("POST", "/.fleet-actions-results/_search", Some(&query))
            .unwrap();
        if status == 404 {
            return None;
        }
        assert_eq!(status, 200, "{v}");
        v["hits"]["hits"].get(0).map(|h| h["_source"].clone())
    }
    fn output_health(&self, output: &str) -> Option<OutputHealth> {
        // The newest document of the data stream for that output, as an operator would query it.
        let (status, v) = self
            .es
            .client()
            .json(
                "POST",
                &format!("/{}/_search", OutputHealth::INDEX),
                Some(&serde_json::json!({"size": 1000, "seq_no_primary_term": true})),
            )
            .unwrap();
        if status == 404 {
            return None;
        }
        assert_eq!(status, 200, "{v}");
        // Written order is `_seq_no` order (timestamps have second precision).
        v["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["_seq_no"].as_i64().unwrap(),
                    serde_json::from_value::<OutputHealth>(h["_source"].clone()).unwrap(),
                )
            })
            .filter(|(_, d)| d.output == output)
            .max_by_key(|(seq, _)| *seq)
            .map(|(_, d)| d)
    }
}

pub fn es() -> Box<dyn Fixture> {
    let es = es_standin::StandIn::start(es_standin::Options {
        refresh_interval: Some(Duration::from_millis(100)),
        ..es_standin::Options::default()
    })
    .unwrap();
    let settings = fleet_edge::config::EsSettings {
        hosts: vec![es.url()],
        ca: Vec::new(),
        ca_certs: Vec::new(),
        ca_trusted_fingerprint: None,
        client_cert: None,
        insecure: false,
        service_token: Some(fleet_edge::config::Secret::new(es.service_token())),
        headers: Vec::new(),
        server_version: fleet_edge::server_version::BUILT_IN,
    };
    let options = fleet_edge::backend::es::EsOptions {
        poll_timeout: Duration::from_secs(2),
        ..fleet_edge::backend::es::EsOptions::default()
    };
    let store = Arc::new(
        fleet_edge::backend::es::EsStore::connect_with(
            &settings,
            Some(Duration::from_secs(10)),
            options,
        )
        .unwrap(),
    );
    Box::new(Es { es, store })
}

pub fn local() -> Box<dyn Fixture> {
    let dir = TempDir::new("local-store");
    Box::new(Local(Arc::new(LocalStore::open(dir.path()).unwrap()), dir))
}
