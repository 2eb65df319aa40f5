//! A Kibana-like seeding helper. It talks to a stand-in (or a real cluster) over the REST API as
//! Kibana does: policy revisions are new `.fleet-policies` documents (fleet-protocol.md §6.2, shapes
//! of `reference/fleet-server/policy-testdata`), enrollment keys are ES API keys plus their
//! `.fleet-enrollment-api-keys` document, actions are `.fleet-actions` documents (§5.1). Writes use
//! `refresh=wait_for`, as Kibana does.

use crate::client::Client;
use crate::datemath;
use crate::util;
use serde_json::{json, Value};

/// Seeding failures (transport or an ES error response).
#[derive(Debug)]
pub struct SeedError(pub String);

impl std::fmt::Display for SeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SeedError {}

/// An enrollment key as Kibana creates it.
#[derive(Debug, Clone)]
pub struct EnrollmentKey {
    /// ES API key id (`api_key_id`).
    pub api_key_id: String,
    /// The token agents send: base64(`id:key`).
    pub api_key: String,
    /// `_id` of the `.fleet-enrollment-api-keys` document.
    pub doc_id: String,
    /// Policy it enrolls into.
    pub policy_id: String,
}

/// The helper; cheap to clone.
#[derive(Debug, Clone)]
pub struct Seeder {
    client: Client,
    /// Hosts written into policies' `outputs.default.hosts`.
    pub es_hosts: Vec<String>,
    /// Hosts written into policies' `fleet.hosts`.
    pub fleet_hosts: Vec<String>,
}

fn uuid4() -> String {
    let b = util::random_bytes::<16>();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

impl Seeder {
    /// A seeder using `client` (which must carry superuser credentials).
    pub fn new(client: Client, es_url: &str) -> Seeder {
        Seeder {
            client,
            es_hosts: vec![es_url.to_string()],
            fleet_hosts: vec!["https://localhost:8220".to_string()],
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, SeedError> {
        let (status, v) = self
            .client
            .json(method, path, body)
            .map_err(|e| SeedError(format!("{method} {path}: {e}")))?;
        if !(200..300).contains(&status) {
            return Err(SeedError(format!("{method} {path}: HTTP {status}: {v}")));
        }
        Ok(v)
    }

    fn index(&self, index: &str, id: Option<&str>, doc: &Value) -> Result<Value, SeedError> {
        let path = match id {
            Some(i) => format!("/{index}/_doc/{}?refresh=wait_for", util::percent_encode(i)),
            None => format!("/{index}/_doc?refresh=wait_for"),
        };
        self.call(if id.is_some() { "PUT" } else { "POST" }, &path, Some(doc))
    }

    fn policy_data(&self, policy_id: &str, revision: i64, fleet_server: bool) -> Value {
        let input = if fleet_server {
            json!({
                "id": format!("fleet_server-{policy_id}"),
                "name": "fleet_server-1",
                "revision": 1,
                "type": "fleet-server",
                "use_output": "default",
                "meta": {"package": {"name": "fleet_server", "version": "1.6.0"}},
                "data_stream": {"namespace": "default"},
                "package_policy_id": format!("fleet_server-{policy_id}"),
                "server": {"port": 8220, "host": "0.0.0.0"},
            })
        } else {
            json!({
                "id": format!("system-{policy_id}"),
                "name": "system-1",
                "revision": 1,
                "type": "logfile",
                "use_output": "default",
                "meta": {"package": {"name": "system", "version": "1.60.0"}},
                "data_stream": {"namespace": "default"},
                "package_policy_id": format!("system-{policy_id}"),
                "streams": [{"id": format!("logfile-system.syslog-{policy_id}"), "data_stream": {"dataset": "system.syslog", "type": "logs"}, "paths": ["/var/log/syslog*"]}],
            })
        };
        json!({
            "id": policy_id,
            "revision": revision,
            "outputs": {"default": {"type": "elasticsearch", "hosts": self.es_hosts}},
            "output_permissions": {"default": {
                "_elastic_agent_monitoring": {"indices": [{"names": ["logs-elastic_agent-default", "logs-elastic_agent.*-default", "metrics-elastic_agent.*-default"], "privileges": ["auto_configure", "create_doc"]}]},
                "_elastic_agent_checks": {"cluster": ["monitor"]},
                format!("{}-{policy_id}", if fleet_server { "fleet_server" } else { "system" }): {"indices": [{"names": ["logs-*-default", "metrics-*-default"], "privileges": ["auto_configure", "create_doc"]}]},
            }},
            "agent": {"monitoring": {"enabled": true, "use_output": "default", "namespace": "default", "logs": true, "metrics": true}, "download": {"sourceURI": "https://artifacts.elastic.co/downloads/"}, "features": {}, "protection": {"enabled": false, "uninstall_token_hash": "", "signing_key": ""}},
            "inputs": [input],
            "fleet": {"hosts": self.fleet_hosts},
            "signed": {"data": "", "signature": ""},
        })
    }

    fn write_policy(
        &self,
        policy_id: &str,
        revision: i64,
        fleet_server: bool,
        data: Option<Value>,
    ) -> Result<Value, SeedError> {
        let data = data.unwrap_or_else(|| self.policy_data(policy_id, revision, fleet_server));
        let doc = json!({
            "@timestamp": datemath::format_millis(datemath::now_millis()),
            "policy_id": policy_id,
            "revision_idx": revision,
            "coordinator_idx": 0,
            "default_fleet_server": fleet_server,
            "namespaces": ["default"],
            "unenroll_timeout": 0,
            "data": data,
        });
        self.index(".fleet-policies", None, &doc)?;
        Ok(doc)
    }

    /// Writes revision 1 of a Fleet Server policy (an input of type `fleet-server`).
    pub fn fleet_server_policy(&self, policy_id: &str) -> Result<Value, SeedError> {
        self.write_policy(policy_id, 1, true, None)
    }

    /// Writes revision 1 of an ordinary agent policy.
    pub fn agent_policy(&self, policy_id: &str) -> Result<Value, SeedError> {
        self.write_policy(policy_id, 1, false, None)
    }

    /// Writes a policy document with given `data` (revision taken from `data.revision`).
    pub fn policy_with_data(&self, policy_id: &str, data: Value) -> Result<Value, SeedError> {
        let rev = data.get("revision").and_then(Value::as_i64).unwrap_or(1);
        self.write_policy(policy_id, rev, false, Some(data))
    }

    /// Appends the next revision of a policy (same `data`, `revision` + 1). Returns the new document.
    pub fn new_revision(&self, policy_id: &str) -> Result<Value, SeedError> {
        let q = json!({"size": 1, "sort": [{"revision_idx": "desc"}], "query": {"bool": {"filter": [{"term": {"policy_id": policy_id}}]}}});
        self.call("POST", "/.fleet-policies/_refresh", None)?;
        let r = self.call("POST", "/.fleet-policies/_search", Some(&q))?;
        let Some(hit) = r.pointer("/hits/hits/0/_source") else {
            return Err(SeedError(format!("policy [{policy_id}] has no revision")));
        };
        let rev = hit["revision_idx"].as_i64().unwrap_or(0) + 1;
        let mut data = hit["data"].clone();
        data["revision"] = json!(rev);
        let fs = hit["default_fleet_server"].as_bool().unwrap_or(false);
        self.write_policy(policy_id, rev, fs, Some(data))
    }

    /// Creates an enrollment API key for a policy and its `.fleet-enrollment-api-keys` document.
    pub fn enrollment_key(&self, policy_id: &str, name: &str) -> Result<EnrollmentKey, SeedError> {
        let body = json!({
            "name": format!("{name} ({policy_id})"),
            "role_descriptors": {"fleet-apikey-enroll": {"cluster": [], "indices": [], "applications": [{"application": "fleet", "privileges": ["no-privileges"], "resources": ["*"]}]}},
            "metadata": {"managed_by": "fleet", "managed": true, "type": "enroll", "policy_id": policy_id},
        });
        let k = self.call("POST", "/_security/api_key?refresh=wait_for", Some(&body))?;
        let id = k["id"].as_str().unwrap_or_default().to_string();
        let encoded = k["encoded"].as_str().unwrap_or_default().to_string();
        let doc_id = uuid4();
        let now = datemath::format_millis(datemath::now_millis());
        let doc = json!({"active": true, "api_key_id": id, "api_key": encoded, "name": format!("{name} ({policy_id})"), "policy_id": policy_id, "namespaces": ["default"], "created_at": now, "hidden": false});
        self.index(".fleet-enrollment-api-keys", Some(&doc_id), &doc)?;
        Ok(EnrollmentKey {
            api_key_id: id,
            api_key: encoded,
            doc_id,
            policy_id: policy_id.to_string(),
        })
    }

    /// Creates an action for a set of agents; returns the action id.
    pub fn action(
        &self,
        action_type: &str,
        agents: &[&str],
        data: Value,
    ) -> Result<String, SeedError> {
        let id = uuid4();
        let now = datemath::now_millis();
        let doc = json!({
            "action_id": id,
            "type": action_type,
            "agents": agents,
            "@timestamp": datemath::format_millis(now),
            "expiration": datemath::format_millis(now + 30 * 86_400_000),
            "input_type": "",
            "timeout": 0,
            "user_id": "elastic",
            "namespaces": ["default"],
            "data": data,
        });
        self.index(".fleet-actions", Some(&uuid4()), &doc)?;
        Ok(id)
    }
}
