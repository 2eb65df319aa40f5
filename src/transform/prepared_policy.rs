//! Policy revisions prepared once, delivered many times (fleet-protocol.md §3.5, §3.7).
//!
//! A `.fleet-policies` document becomes a [`PreparedPolicy`]: the `data` members agents receive
//! (the allowed top-level keys only), remote-ES outputs rewritten to `elasticsearch` without their
//! service token (their connection settings kept aside, see [`super::remote`]), the role
//! descriptors and `permissions_hash` of every Elasticsearch output, and the whole POLICY_CHANGE
//! action serialized once into literal segments with holes where each agent's output API keys go.
//! Rendering for one agent is then a concatenation: no JSON tree is built or walked per agent,
//! except when a key could not be made (a remote cluster down): that output goes without
//! `api_key`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value};

use super::gojson::permissions_hash;
use super::remote::RemoteEs;
use crate::http::gzip;
use crate::model::PolicyDoc;

/// Top-level members of `data` that reach agents (everything else, e.g. `secret_references`,
/// stays on the server).
const DELIVERED_KEYS: &[&str] = &[
    "id",
    "revision",
    "agent",
    "fleet",
    "inputs",
    "outputs",
    "output_permissions",
    "signed",
    "extensions",
    "receivers",
    "processors",
    "connectors",
    "exporters",
    "service",
];

/// Why a policy revision cannot be served; the previous revision stays in service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The `opamp` section cannot be served.
    #[error("policy {policy}: {reason}")]
    OpAmp {
        /// Policy id.
        policy: String,
        /// Why.
        reason: String,
    },
    /// `data` is not an object.
    #[error("policy {0}: data is not an object")]
    NotAnObject(String),
    /// No outputs at all.
    #[error("policy {0}: data.outputs is empty")]
    NoOutputs(String),
    /// An output without a string `type`, or of a type Fleet does not know.
    #[error("policy {policy}: output {output:?} has unsupported type {kind:?}")]
    BadOutputType {
        /// Policy id.
        policy: String,
        /// Output name.
        output: String,
        /// Its type.
        kind: String,
    },
    /// An Elasticsearch output without an `output_permissions` entry.
    #[error("policy {policy}: output {output:?} has no output_permissions entry")]
    NoPermissions {
        /// Policy id.
        policy: String,
        /// Output name.
        output: String,
    },
    /// An OTel exporter whose key cannot be mapped to an Elasticsearch output.
    #[error("policy {policy}: exporter {exporter:?} does not name an Elasticsearch output")]
    BadExporter {
        /// Policy id.
        policy: String,
        /// Exporter key.
        exporter: String,
    },
}

/// An Elasticsearch output that needs a per-agent API key.
#[derive(Debug, Clone, PartialEq)]
pub struct EsOutput {
    /// Output name (key of `data.outputs`).
    pub name: String,
    /// `data.output_permissions.<name>`: the role descriptors of the agent's key.
    pub roles: Value,
    /// Go-compatible SHA-256 of `roles`.
    pub hash: String,
    /// For a `remote_elasticsearch` output, the cluster its keys are made on; `None`: the
    /// store's own cluster.
    pub remote: Option<RemoteEs>,
}

impl EsOutput {
    /// The configuration hash agent documents keep beside a remote key (`""`: not remote).
    pub fn remote_config_hash(&self) -> &str {
        self.remote.as_ref().map_or("", |r| r.config_hash.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    /// Text shared by every agent, and its raw deflate ([`gzip::deflate_part`]; empty: not
    /// compressed, stored as it is).
    Literal(Arc<str>, Arc<[u8]>),
    /// `"<id>:<key>"` of this output, as a JSON string.
    Key(usize),
    /// `"base64(<id>:<key>)"` of this output, as a JSON string (OTel exporters).
    Base64Key(usize),
    /// The agent id, as a JSON string.
    AgentId,
}

/// One revision, ready to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedPolicy {
    /// Policy id.
    pub policy_id: String,
    /// `revision_idx` of the document.
    pub revision: i64,
    /// Elasticsearch outputs, in name order.
    pub es_outputs: Vec<EsOutput>,
    /// Whether the policy has a `fleet-server` input.
    pub has_fleet_server_input: bool,
    /// The remote configuration offered to the policy's OpAMP collectors (`opamp.config`).
    pub opamp: Option<Arc<crate::opamp::remote_config::RemoteConfig>>,
    segments: Vec<Segment>,
}

/// A placeholder string no policy contains (NUL bytes), numbered; serialized as
/// `"\u0000hole:<n>\u0000"`.
fn hole(n: usize) -> String {
    format!("\u{0}hole:{n}\u{0}")
}

const HOLE_OPEN: &str = "\"\\u0000hole:";
const HOLE_CLOSE: &str = "\\u0000\"";

/// Cuts serialized text at its numbered holes into literal segments and fills.
fn split_holes(text: &str, holes: &[Segment]) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(HOLE_OPEN) {
        let after = &rest[start + HOLE_OPEN.len()..];
        let Some(end) = after.find(HOLE_CLOSE) else {
            break;
        };
        let Some(fill) = after[..end]
            .parse::<usize>()
            .ok()
            .and_then(|n| holes.get(n))
        else {
            break;
        };
        segments.push(literal(&rest[..start]));
        segments.push(fill.clone());
        rest = &after[end + HOLE_CLOSE.len()..];
    }
    segments.push(literal(rest));
    segments
}

/// A literal segment, compressed once here for every agent's gzipped POLICY_CHANGE.
fn literal(text: &str) -> Segment {
    let deflated = match text {
        "" => None,
        _ => gzip::deflate_part(text.as_bytes()),
    };
    Segment::Literal(Arc::from(text), Arc::from(deflated.unwrap_or_default()))
}

impl PreparedPolicy {
    /// Prepares a revision for delivery with per-agent output keys; `secrets` holds the values of
    /// the secrets it references (see [`super::secrets::referenced_ids`]).
    pub fn prepare(
        doc: &PolicyDoc,
        secrets: &HashMap<String, String>,
    ) -> Result<PreparedPolicy, PolicyError> {
        Self::prepare_with(doc, secrets, true)
    }

    /// Like [`Self::prepare`]; with `mint_keys` false, Elasticsearch outputs keep the credentials
    /// written in the policy and need no `output_permissions` (the embedded store's mode).
    /// Remote Elasticsearch outputs get keys from their own cluster in either mode.
    pub fn prepare_with(
        doc: &PolicyDoc,
        secrets: &HashMap<String, String>,
        mint_keys: bool,
    ) -> Result<PreparedPolicy, PolicyError> {
        let pid = doc.policy_id.clone();
        let Value::Object(original) = &doc.data else {
            return Err(PolicyError::NotAnObject(pid));
        };
        let mut resolved = original.clone();
        let secret_paths = super::secrets::resolve(&mut resolved, secrets);
        let data = &resolved;
        let mut policy: Map<String, Value> = DELIVERED_KEYS
            .iter()
            .filter_map(|k| data.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .filter(|(_, v)| !is_empty(v))
            .collect();
        if doc.revision_idx != 0 {
            policy.insert("revision".into(), Value::from(doc.revision_idx));
        }
        if !policy.contains_key("id") {
            policy.insert("id".into(), Value::from(pid.clone()));
        }

        let permissions = data.get("output_permissions").and_then(Value::as_object);
        let mut es_outputs = Vec::new();
        // Hole 0 is the agent id; the others are filled by index, whatever order serialization
        // puts them in.
        let mut holes: Vec<Segment> = vec![Segment::AgentId];
        let Some(Value::Object(outputs)) = policy.get_mut("outputs") else {
            return Err(PolicyError::NoOutputs(pid));
        };
        if outputs.is_empty() {
            return Err(PolicyError::NoOutputs(pid));
        }
        for (name, output) in outputs.iter_mut() {
            let kind = output
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            match kind.as_str() {
                "elasticsearch" if !mint_keys => {}
                "elasticsearch" | "remote_elasticsearch" => {
                    let roles =
                        permissions
                            .and_then(|p| p.get(name))
                            .cloned()
                            .ok_or_else(|| PolicyError::NoPermissions {
                                policy: pid.clone(),
                                output: name.clone(),
                            })?;
                    let remote =
                        (kind == "remote_elasticsearch").then(|| RemoteEs::from_output(output));
                    if let Value::Object(o) = output {
                        o.insert("type".into(), Value::from("elasticsearch"));
                        o.remove("service_token");
                        o.insert("api_key".into(), Value::from(hole(holes.len())));
                    }
                    holes.push(Segment::Key(es_outputs.len()));
                    es_outputs.push(EsOutput {
                        name: name.clone(),
                        hash: permissions_hash(&roles),
                        roles,
                        remote,
                    });
                }
                "logstash" | "kafka" => {}
                _ => {
                    return Err(PolicyError::BadOutputType {
                        policy: pid,
                        output: name.clone(),
                        kind,
                    })
                }
            }
        }
        // OTel exporters: `elasticsearch/<output>` gets that output's key (base64); other
        // exporter types (otlphttp/..., ...) pass through untouched, as Elastic's own test
        // policies expect; an `elasticsearch/` exporter naming no Elasticsearch output is an error.
        if let Some(Value::Object(exporters)) = policy.get_mut("exporters") {
            for (key, exporter) in exporters.iter_mut() {
                let Some(output) = key.strip_prefix("elasticsearch/").filter(|_| mint_keys) else {
                    continue;
                };
                let index = es_outputs.iter().position(|o| o.name == output);
                match (index, exporter) {
                    (Some(i), Value::Object(e)) => {
                        e.insert("api_key".into(), Value::from(hole(holes.len())));
                        holes.push(Segment::Base64Key(i));
                    }
                    _ => {
                        return Err(PolicyError::BadExporter {
                            policy: pid,
                            exporter: key.clone(),
                        })
                    }
                }
            }
        }
        // §3.5 step 4: the removed service tokens are not among the agent's secrets either.
        let removed: Vec<String> = es_outputs
            .iter()
            .filter(|o| o.remote.is_some())
            .map(|o| format!("outputs.{}.service_token", o.name))
            .collect();
        let secret_paths: Vec<Value> = secret_paths
            .into_iter()
            .filter(|p| !removed.contains(p))
            .map(Value::from)
            .collect();
        // Go's `secret_paths,omitempty`: a policy without secrets carries no member at all.
        if !secret_paths.is_empty() {
            policy.insert("secret_paths".into(), Value::Array(secret_paths));
        }

        let has_fleet_server_input =
            data.get("inputs")
                .and_then(Value::as_array)
                .is_some_and(|inputs| {
                    inputs
                        .iter()
                        .any(|i| i.get("type").and_then(Value::as_str) == Some("fleet-server"))
                });

        // The action around the policy, with the agent id as a hole too. Key order follows the
        // Go struct (agent_id, created_at, data, id, input_type, type).
        let action = serde_json::json!({
            "agent_id": hole(0),
            "created_at": doc.timestamp,
            "data": {"policy": Value::Object(policy)},
            "id": format!("policy:{}:{}", doc.policy_id, doc.revision_idx),
            "input_type": "",
            "type": "POLICY_CHANGE",
        });
        let text = serde_json::to_string(&action).unwrap_or_default();
        let segments = split_holes(&text, &holes);
        let opamp = crate::opamp::remote_config::RemoteConfig::from_policy(&doc.data)
            .map_err(|e| PolicyError::OpAmp {
                policy: pid.clone(),
                reason: e.to_string(),
            })?
            .map(Arc::new);
        Ok(PreparedPolicy {
            policy_id: doc.policy_id.clone(),
            revision: doc.revision_idx,
            opamp,
            es_outputs,
            has_fleet_server_input,
            segments,
        })
    }

    /// The POLICY_CHANGE action id, `policy:<id>:<revision>`.
    pub fn action_id(&self) -> String {
        format!("policy:{}:{}", self.policy_id, self.revision)
    }

    /// Whether `keys` (output name → stored key) are current for every Elasticsearch output:
    /// present, made for the same permissions and, for a remote output, on the same cluster
    /// configuration.
    pub fn keys_current(&self, keys: &BTreeMap<String, crate::model::OutputKey>) -> bool {
        self.es_outputs.iter().all(|o| {
            keys.get(&o.name).is_some_and(|k| {
                !k.api_key.is_empty()
                    && k.permissions_hash == o.hash
                    && k.remote_config_hash == o.remote_config_hash()
            })
        })
    }

    /// Appends the POLICY_CHANGE action for `agent_id` to `out`; `keys` maps output name to
    /// `id:secret`. An output without a key (its remote cluster could not make one) is sent
    /// without `api_key`, and so is the OTel exporter that uses it.
    pub fn render_action(
        &self,
        agent_id: &str,
        keys: &BTreeMap<String, String>,
        out: &mut Vec<u8>,
    ) {
        let missing: Vec<&str> = self
            .es_outputs
            .iter()
            .filter(|o| keys.get(&o.name).is_none_or(String::is_empty))
            .map(|o| o.name.as_str())
            .collect();
        if missing.is_empty() {
            return self.render_segments(agent_id, keys, out);
        }
        let mut full = Vec::new();
        self.render_segments(agent_id, keys, &mut full);
        let Ok(mut action) = serde_json::from_slice::<Value>(&full) else {
            out.extend_from_slice(&full);
            return;
        };
        if let Some(policy) = action.pointer_mut("/data/policy") {
            for name in missing {
                if let Some(Value::Object(o)) = policy.pointer_mut(&pointer(&["outputs", name])) {
                    o.remove("api_key");
                }
                let exporter = format!("elasticsearch/{name}");
                if let Some(Value::Object(e)) =
                    policy.pointer_mut(&pointer(&["exporters", &exporter]))
                {
                    e.remove("api_key");
                }
            }
        }
        match serde_json::to_vec(&action) {
            Ok(bytes) => out.extend_from_slice(&bytes),
            Err(_) => out.extend_from_slice(&full),
        }
    }

    /// Appends the POLICY_CHANGE action for `agent_id` to a gzip stream: the shared text as
    /// compressed when the revision was prepared, the agent's own values stored. `false` (and
    /// nothing appended) when an output has no key: [`PreparedPolicy::render_action`] rebuilds
    /// that action, and the encoder compresses it whole.
    pub fn render_action_gzip(
        &self,
        agent_id: &str,
        keys: &BTreeMap<String, String>,
        out: &mut gzip::Gzip,
    ) -> bool {
        if self
            .es_outputs
            .iter()
            .any(|o| keys.get(&o.name).is_none_or(String::is_empty))
        {
            return false;
        }
        let mut own = Vec::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text, deflated) if deflated.is_empty() => {
                    out.stored(text.as_bytes())
                }
                Segment::Literal(text, deflated) => out.precompressed(text.as_bytes(), deflated),
                Segment::AgentId | Segment::Key(_) | Segment::Base64Key(_) => {
                    own.clear();
                    self.render_fill(segment, agent_id, keys, &mut own);
                    out.stored(&own);
                }
            }
        }
        true
    }

    fn render_segments(&self, agent_id: &str, keys: &BTreeMap<String, String>, out: &mut Vec<u8>) {
        for segment in &self.segments {
            match segment {
                Segment::Literal(text, _) => out.extend_from_slice(text.as_bytes()),
                fill => self.render_fill(fill, agent_id, keys, out),
            }
        }
    }

    /// One agent's value for a hole: its id or an output's key, as a JSON string.
    fn render_fill(
        &self,
        segment: &Segment,
        agent_id: &str,
        keys: &BTreeMap<String, String>,
        out: &mut Vec<u8>,
    ) {
        match segment {
            Segment::Literal(..) => {}
            Segment::AgentId => push_json_string(agent_id, out),
            Segment::Key(i) => {
                let key = self.es_outputs.get(*i).and_then(|o| keys.get(&o.name));
                push_json_string(key.map_or("", String::as_str), out);
            }
            Segment::Base64Key(i) => {
                let key = self.es_outputs.get(*i).and_then(|o| keys.get(&o.name));
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(key.map_or("", String::as_str));
                push_json_string(&encoded, out);
            }
        }
    }
}

/// A JSON pointer (RFC 6901) to nested object members.
fn pointer(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1")))
        .collect()
}

fn push_json_string(s: &str, out: &mut Vec<u8>) {
    let quoted = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
    out.extend_from_slice(quoted.as_bytes());
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prep(data: Value) -> Result<PreparedPolicy, PolicyError> {
        PreparedPolicy::prepare(&doc(data), &HashMap::new())
    }

    fn doc(data: Value) -> PolicyDoc {
        PolicyDoc {
            timestamp: "2026-08-21T18:59:00.000Z".into(),
            policy_id: "edge-policy".into(),
            revision_idx: 2,
            data,
            ..PolicyDoc::default()
        }
    }

    fn basic() -> Value {
        json!({
            "id": "edge-policy", "revision": 2,
            "agent": {"monitoring": {"enabled": false}},
            "fleet": {"hosts": ["https://fleet.example.com:8220"]},
            "outputs": {"default": {"type": "elasticsearch", "hosts": ["https://es:9200"]},
                        "ls": {"type": "logstash", "hosts": ["ls:5044"]},
                        "remote": {"type": "remote_elasticsearch", "hosts": ["https://r:9200"], "service_token": "secret"}},
            "output_permissions": {"default": {"_elastic_agent_checks": {"cluster": ["monitor"]}},
                                   "remote": {"r": {"cluster": []}}},
            "inputs": [{"type": "fleet-server"}],
            "secret_references": [{"id": "s1"}],
            "signed": {"data": "d", "signature": "s"}
        })
    }

    fn render(p: &PreparedPolicy, agent: &str) -> Value {
        let keys: BTreeMap<String, String> = [
            ("default".to_owned(), "kid:ksecret".to_owned()),
            ("remote".to_owned(), "rid:rsecret".to_owned()),
        ]
        .into_iter()
        .collect();
        let mut out = Vec::new();
        p.render_action(agent, &keys, &mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn renders_the_spec_action_with_keys_spliced_in() {
        let p = prep(basic()).unwrap();
        assert_eq!(p.action_id(), "policy:edge-policy:2");
        assert!(p.has_fleet_server_input);
        let a = render(&p, "agent-\"1\"");
        assert_eq!(a["agent_id"], "agent-\"1\"");
        assert_eq!(a["id"], "policy:edge-policy:2");
        assert_eq!(a["type"], "POLICY_CHANGE");
        assert_eq!(a["input_type"], "");
        assert_eq!(a["created_at"], "2026-08-21T18:59:00.000Z");
        let policy = &a["data"]["policy"];
        assert_eq!(policy["id"], "edge-policy");
        assert_eq!(policy["revision"], 2);
        assert_eq!(policy["outputs"]["default"]["api_key"], "kid:ksecret");
        assert_eq!(policy["outputs"]["remote"]["type"], "elasticsearch");
        assert_eq!(policy["outputs"]["remote"]["api_key"], "rid:rsecret");
        assert!(policy["outputs"]["remote"].get("service_token").is_none());
        assert!(
            policy["outputs"]["ls"].get("api_key").is_none(),
            "logstash untouched"
        );
        assert!(policy.get("secret_references").is_none());
        assert!(
            policy.get("secret_paths").is_none(),
            "omitted when empty (Go omitempty)"
        );
        assert_eq!(policy["signed"]["signature"], "s");
    }

    #[test]
    fn permissions_hash_is_go_compatible_per_output() {
        let p = prep(basic()).unwrap();
        let default = p.es_outputs.iter().find(|o| o.name == "default").unwrap();
        assert_eq!(
            default.hash,
            "f672e8907e9dc67e088d02da3a9f1969e1580f93260bef1b94060c058a08bac5"
        );
    }

    #[test]
    fn keys_current_checks_presence_hash_and_remote_cluster() {
        let p = prep(basic()).unwrap();
        let mut keys = BTreeMap::new();
        assert!(!p.keys_current(&keys));
        for o in &p.es_outputs {
            keys.insert(
                o.name.clone(),
                crate::model::OutputKey {
                    api_key: "a:b".into(),
                    api_key_id: "a".into(),
                    permissions_hash: o.hash.clone(),
                    remote_config_hash: o.remote_config_hash().to_owned(),
                    ..Default::default()
                },
            );
        }
        assert!(p.keys_current(&keys));
        keys.get_mut("remote").unwrap().remote_config_hash = "other".into();
        assert!(
            !p.keys_current(&keys),
            "made on another remote configuration"
        );
        let remote = p.es_outputs.iter().find(|o| o.name == "remote").unwrap();
        keys.get_mut("remote").unwrap().remote_config_hash = remote.remote_config_hash().into();
        keys.get_mut("default").unwrap().permissions_hash = "old".into();
        assert!(!p.keys_current(&keys));
    }

    #[test]
    fn remote_outputs_keep_their_cluster_aside_and_out_of_secret_paths() {
        let mut d = basic();
        d["outputs"]["remote"]["service_token"] = json!("$co.elastic.secret{tok}");
        d["outputs"]["remote"]["ssl"] = json!({"ca_trusted_fingerprint": "ab12"});
        let secrets: HashMap<String, String> = [("tok".to_owned(), "s3cret".to_owned())].into();
        let p = PreparedPolicy::prepare(&doc(d), &secrets).unwrap();
        let remote = p.es_outputs.iter().find(|o| o.name == "remote").unwrap();
        let r = remote.remote.as_ref().unwrap();
        assert_eq!(r.service_token, "s3cret", "resolved before it is read");
        assert_eq!(r.ca_trusted_fingerprint, "ab12");
        assert_eq!(remote.remote_config_hash(), r.config_hash);
        let local = p.es_outputs.iter().find(|o| o.name == "default").unwrap();
        assert!(local.remote.is_none() && local.remote_config_hash().is_empty());
        let a = render(&p, "x");
        assert!(
            a["data"]["policy"].get("secret_paths").is_none(),
            "the removed service token was the only secret: no member"
        );
        assert!(a["data"]["policy"]["outputs"]["remote"]
            .get("service_token")
            .is_none());
    }

    #[test]
    fn secret_paths_are_listed_when_a_secret_was_resolved() {
        let mut d = basic();
        d["outputs"]["ls"]["password"] = json!("$co.elastic.secret{pw}");
        let secrets: HashMap<String, String> = [("pw".to_owned(), "hunter2".to_owned())].into();
        let p = PreparedPolicy::prepare(&doc(d), &secrets).unwrap();
        let a = render(&p, "x");
        assert_eq!(
            a["data"]["policy"]["secret_paths"],
            json!(["outputs.ls.password"])
        );
        assert_eq!(a["data"]["policy"]["outputs"]["ls"]["password"], "hunter2");
    }

    #[test]
    fn an_output_without_a_key_goes_without_api_key() {
        let mut d = basic();
        d["exporters"] = json!({"elasticsearch/remote": {"endpoints": ["https://r:9200"]},
                                "elasticsearch/default": {"endpoints": ["https://es:9200"]}});
        let p = prep(d).unwrap();
        let keys: BTreeMap<String, String> = [("default".to_owned(), "kid:ksecret".to_owned())]
            .into_iter()
            .collect();
        let mut out = Vec::new();
        p.render_action("agent-1", &keys, &mut out);
        let a: Value = serde_json::from_slice(&out).unwrap();
        let policy = &a["data"]["policy"];
        assert_eq!(policy["outputs"]["default"]["api_key"], "kid:ksecret");
        assert!(policy["outputs"]["remote"].get("api_key").is_none(), "{a}");
        assert_eq!(
            policy["outputs"]["remote"]["hosts"],
            json!(["https://r:9200"])
        );
        assert!(policy["exporters"]["elasticsearch/remote"]
            .get("api_key")
            .is_none());
        assert_eq!(
            policy["exporters"]["elasticsearch/default"]["api_key"],
            "a2lkOmtzZWNyZXQ="
        );
        // Everything else is what the fast path renders.
        let mut full = render(&p, "agent-1");
        full["data"]["policy"]["outputs"]["remote"]
            .as_object_mut()
            .unwrap()
            .remove("api_key");
        full["data"]["policy"]["exporters"]["elasticsearch/remote"]
            .as_object_mut()
            .unwrap()
            .remove("api_key");
        assert_eq!(a, full);
    }

    #[test]
    fn bad_revisions_are_refused_with_a_reason() {
        let mut d = basic();
        d["output_permissions"] = json!({});
        assert!(matches!(prep(d), Err(PolicyError::NoPermissions { .. })));
        let mut d = basic();
        d["outputs"]["default"]["type"] = json!("carrier-pigeon");
        assert!(matches!(prep(d), Err(PolicyError::BadOutputType { .. })));
        let mut d = basic();
        d["outputs"] = json!({});
        assert!(matches!(prep(d), Err(PolicyError::NoOutputs(_))));
        assert!(matches!(prep(json!([])), Err(PolicyError::NotAnObject(_))));
    }

    #[test]
    fn without_minting_local_outputs_keep_their_written_credentials() {
        let mut d = basic();
        d["outputs"]["default"]["api_key"] = json!("written:secret");
        d["output_permissions"] = json!({});
        assert!(
            matches!(PreparedPolicy::prepare_with(&doc(d.clone()), &HashMap::new(), false),
                Err(PolicyError::NoPermissions { output, .. }) if output == "remote"),
            "remote outputs get keys from their cluster in every mode"
        );
        d["output_permissions"] = json!({"remote": {"r": {}}});
        let p = PreparedPolicy::prepare_with(&doc(d), &HashMap::new(), false).unwrap();
        let names: Vec<&str> = p.es_outputs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["remote"]);
        let keys: BTreeMap<String, String> = [("remote".to_owned(), "rid:rsecret".to_owned())]
            .into_iter()
            .collect();
        let mut out = Vec::new();
        p.render_action("a", &keys, &mut out);
        let a: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            a["data"]["policy"]["outputs"]["default"]["api_key"],
            "written:secret"
        );
        assert_eq!(
            a["data"]["policy"]["outputs"]["remote"]["api_key"],
            "rid:rsecret"
        );
        assert!(a["data"]["policy"]["outputs"]["remote"]
            .get("service_token")
            .is_none());
    }

    #[test]
    fn otel_exporters_get_base64_keys() {
        let mut d = basic();
        d["exporters"] = json!({"elasticsearch/default": {"endpoints": ["https://es:9200"]}});
        let p = prep(d).unwrap();
        let a = render(&p, "x");
        assert_eq!(
            a["data"]["policy"]["exporters"]["elasticsearch/default"]["api_key"],
            "a2lkOmtzZWNyZXQ="
        );
        let mut d = basic();
        d["exporters"] = json!({"otlphttp/default": {"endpoint": "x"}});
        let p = prep(d).unwrap();
        assert_eq!(
            render(&p, "x")["data"]["policy"]["exporters"]["otlphttp/default"],
            json!({"endpoint": "x"})
        );
        let mut d = basic();
        d["exporters"] = json!({"elasticsearch/ls": {}});
        assert!(matches!(prep(d), Err(PolicyError::BadExporter { .. })));
    }

    #[test]
    fn every_reference_policy_prepares_when_present() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/reference/fleet-server/policy-testdata"
        );
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let secrets: HashMap<String, String> = crate::transform::secrets::referenced_ids(&data)
                .into_iter()
                .map(|id| (id, "elasticsearch".to_owned()))
                .collect();
            let p = PreparedPolicy::prepare(&doc(data), &secrets)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let a = render(&p, "agent-1");
            assert_eq!(a["type"], "POLICY_CHANGE", "{}", path.display());
            assert!(a["data"]["policy"].get("secret_references").is_none());
            if path.ends_with("policy_with_secrets_mixed.json") {
                let paths = &a["data"]["policy"]["secret_paths"];
                assert!(
                    paths
                        .as_array()
                        .unwrap()
                        .contains(&json!("outputs.fs-output.type")),
                    "{paths}"
                );
            }
        }
    }
}
