//! What an OpAMP message becomes in `.fleet-agents` (fleet-protocol.md §8 "OpAMP", as Fleet
//! Server's `handleOpAMP.go` writes it): attributes as JSON, the enroll document, the health tree
//! (Go's `encoding/json` rendering of `ComponentHealth`), capability names, the effective
//! configuration (YAML parsed, secrets redacted as `elastic-agent-libs/redact` does), and the
//! checkin-state update handed to the bulk writer. Pure functions: the caller passes `now`.

use serde_json::{json, Map, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

use super::proto::{
    any_value, AgentDescription, AgentToServer, AnyValue, ComponentHealth, EffectiveConfig,
    KeyValue, AGENT_CAPABILITIES,
};
use crate::model::{Agent, AgentInfo};

/// Why a message could not become a document (Fleet Server answers these with
/// `ServerErrorResponseType_Unavailable`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocumentError {
    /// An attribute or health value JSON cannot hold (NaN, infinity).
    #[error("a value cannot be written as JSON: {0}")]
    NotJson(&'static str),
    /// The effective configuration is not a YAML mapping.
    #[error("unmarshal effective config failure: {0}")]
    EffectiveConfig(String),
}

/// `health.status` Fleet Server maps to `degraded`.
const RECOVERABLE_ERROR: &str = "StatusRecoverableError";
/// The non-identifying attribute that carries comma-separated tags.
const TAGS_KEY: &str = "tags";

/// The JSON of one attribute value, as Fleet Server's `anyValueToInterface` renders it.
fn any_value_json(value: &AnyValue) -> Result<Value, DocumentError> {
    Ok(match &value.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => json!(s),
        Some(any_value::Value::BoolValue(b)) => json!(b),
        Some(any_value::Value::IntValue(i)) => json!(i),
        Some(any_value::Value::DoubleValue(d)) => float(*d)?,
        // Go marshals []byte as standard base64.
        Some(any_value::Value::BytesValue(b)) => json!(base64_std(b)),
        Some(any_value::Value::ArrayValue(a)) => Value::Array(
            a.values
                .iter()
                .map(any_value_json)
                .collect::<Result<_, _>>()?,
        ),
        Some(any_value::Value::KvlistValue(kv)) => attributes_json(&kv.values)?,
    })
}

fn float(d: f64) -> Result<Value, DocumentError> {
    Number::from_f64(d)
        .map(Value::Number)
        .ok_or(DocumentError::NotJson("a non-finite double"))
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Attributes as one JSON object (`ProtobufKVToRawMessage`): entries without a value are
/// skipped; a repeated key keeps its last value.
pub fn attributes_json(kvs: &[KeyValue]) -> Result<Value, DocumentError> {
    let mut out = Map::new();
    for kv in kvs {
        if let Some(value) = &kv.value {
            out.insert(kv.key.clone(), any_value_json(value)?);
        }
    }
    Ok(Value::Object(out))
}

fn string_value(kv: &KeyValue) -> &str {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s,
        _ => "",
    }
}

/// Builds the `.fleet-agents` document of a newly enrolled collector (`enrollAgent`).
pub fn enroll_document(
    id: &str,
    description: Option<&AgentDescription>,
    policy_id: &str,
    namespaces: &[String],
    enrolled_at: &str,
) -> Result<Agent, DocumentError> {
    let (mut version, mut name, mut hostname, mut platform) = ("", "", "", "");
    let mut tags: Vec<String> = Vec::new();
    let mut identifying = None;
    let mut non_identifying = None;
    if let Some(d) = description {
        for kv in &d.identifying_attributes {
            match kv.key.as_str() {
                "service.version" => version = string_value(kv),
                "service.name" => name = string_value(kv),
                _ => {}
            }
        }
        for kv in &d.non_identifying_attributes {
            match kv.key.as_str() {
                "host.name" => hostname = string_value(kv),
                "os.type" => platform = string_value(kv),
                TAGS_KEY => tags.extend(
                    string_value(kv)
                        .split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned),
                ),
                _ => {}
            }
        }
        identifying = Some(attributes_json(&d.identifying_attributes)?);
        let kept: Vec<KeyValue> = d
            .non_identifying_attributes
            .iter()
            .filter(|kv| kv.key != TAGS_KEY)
            .cloned()
            .collect();
        non_identifying = Some(attributes_json(&kept)?);
    }
    // Go's `omitempty` drops empty strings; the three objects are always present.
    let mut agent_meta = Map::new();
    agent_meta.insert("id".into(), json!(id));
    for (k, v) in [("version", version), ("name", name)] {
        if !v.is_empty() {
            agent_meta.insert(k.into(), json!(v));
        }
    }
    let mut host = Map::new();
    if !hostname.is_empty() {
        host.insert("hostname".into(), json!(hostname));
        host.insert("name".into(), json!(hostname));
    }
    let mut os = Map::new();
    if !platform.is_empty() {
        os.insert("platform".into(), json!(platform));
    }
    let local_metadata = json!({"elastic": {"agent": agent_meta}, "host": host, "os": os});
    // Tags: the service name first, then the attribute's, without repeats (`dedupeSlice`).
    let mut all_tags: Vec<String> = Vec::with_capacity(tags.len() + 1);
    for t in std::iter::once(name.to_owned()).chain(tags) {
        if !all_tags.contains(&t) {
            all_tags.push(t);
        }
    }
    let mut other = Map::new();
    if let Some(v) = identifying {
        other.insert("identifying_attributes".into(), v);
    }
    if let Some(v) = non_identifying {
        other.insert("non_identifying_attributes".into(), v);
    }
    Ok(Agent {
        id: id.to_owned(),
        active: true,
        enrolled_at: enrolled_at.to_owned(),
        policy_id: policy_id.to_owned(),
        namespaces: namespaces.to_vec(),
        agent: Some(AgentInfo {
            id: id.to_owned(),
            version: version.to_owned(),
            // `agent.type` is the service name (model.AgentMetadata.Type).
            kind: name.to_owned(),
        }),
        local_metadata: Some(local_metadata),
        // Fleet Server: 1, because the collector never receives policies and 0 would keep it
        // "updating" in Kibana.
        policy_revision_idx: 1,
        agent_type: "OPAMP".into(),
        tags: all_tags,
        other,
        ..Agent::default()
    })
}

/// `ComponentHealth` as Go's `encoding/json` renders the generated struct (snake_case names,
/// `omitempty`, attributes in the oneof wrapper shape).
pub fn health_json(h: &ComponentHealth) -> Result<Value, DocumentError> {
    let mut out = Map::new();
    if h.healthy {
        out.insert("healthy".into(), json!(true));
    }
    if h.start_time_unix_nano != 0 {
        out.insert("start_time_unix_nano".into(), json!(h.start_time_unix_nano));
    }
    if !h.last_error.is_empty() {
        out.insert("last_error".into(), json!(h.last_error));
    }
    if !h.status.is_empty() {
        out.insert("status".into(), json!(h.status));
    }
    if h.status_time_unix_nano != 0 {
        out.insert(
            "status_time_unix_nano".into(),
            json!(h.status_time_unix_nano),
        );
    }
    if !h.component_health_map.is_empty() {
        let mut map = Map::new();
        for (k, v) in &h.component_health_map {
            map.insert(k.clone(), health_json(v)?);
        }
        out.insert("component_health_map".into(), Value::Object(map));
    }
    if !h.attributes.is_empty() {
        let attrs = h
            .attributes
            .iter()
            .map(go_key_value)
            .collect::<Result<Vec<_>, _>>()?;
        out.insert("attributes".into(), Value::Array(attrs));
    }
    Ok(Value::Object(out))
}

/// A `KeyValue` struct as Go's `encoding/json` renders it: `{"key", "value": {"Value": {...}}}`.
fn go_key_value(kv: &KeyValue) -> Result<Value, DocumentError> {
    let mut out = Map::new();
    if !kv.key.is_empty() {
        out.insert("key".into(), json!(kv.key));
    }
    if let Some(v) = &kv.value {
        out.insert("value".into(), go_any_value(v)?);
    }
    Ok(Value::Object(out))
}

fn go_any_value(v: &AnyValue) -> Result<Value, DocumentError> {
    let list = |values: Result<Vec<Value>, DocumentError>| -> Result<Value, DocumentError> {
        let values = values?;
        Ok(if values.is_empty() {
            json!({})
        } else {
            json!({ "values": values })
        })
    };
    let inner = match &v.value {
        None => return Ok(json!({})),
        Some(any_value::Value::StringValue(s)) if s.is_empty() => json!({}),
        Some(any_value::Value::StringValue(s)) => json!({ "string_value": s }),
        Some(any_value::Value::BoolValue(false)) => json!({}),
        Some(any_value::Value::BoolValue(b)) => json!({ "bool_value": b }),
        Some(any_value::Value::IntValue(0)) => json!({}),
        Some(any_value::Value::IntValue(i)) => json!({ "int_value": i }),
        Some(any_value::Value::DoubleValue(d)) if *d == 0.0 => json!({}),
        Some(any_value::Value::DoubleValue(d)) => json!({ "double_value": float(*d)? }),
        Some(any_value::Value::BytesValue(b)) if b.is_empty() => json!({}),
        Some(any_value::Value::BytesValue(b)) => json!({ "bytes_value": base64_std(b) }),
        Some(any_value::Value::ArrayValue(a)) => {
            json!({ "array_value": list(a.values.iter().map(go_any_value).collect())? })
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            json!({ "kvlist_value": list(kv.values.iter().map(go_key_value).collect())? })
        }
    };
    Ok(json!({ "Value": inner }))
}

/// Capability names of an `AgentCapabilities` bit set, lowest bit first.
pub fn capability_names(bits: u64) -> Vec<String> {
    AGENT_CAPABILITIES
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| (*name).to_owned())
        .collect()
}

/// The effective configuration as stored (`ParseEffectiveConfig`): the body of the file named
/// `""`, parsed as YAML, redacted, as JSON. `None` when there is no such file or it is empty.
pub fn effective_config_json(config: &EffectiveConfig) -> Result<Option<Value>, DocumentError> {
    let Some(file) = config
        .config_map
        .as_ref()
        .and_then(|m| m.config_map.get(""))
    else {
        return Ok(None);
    };
    if file.body.is_empty() {
        return Ok(None);
    }
    let text = std::str::from_utf8(&file.body)
        .map_err(|_| DocumentError::EffectiveConfig("the body is not UTF-8".into()))?;
    let docs = YamlLoader::load_from_str(text)
        .map_err(|e| DocumentError::EffectiveConfig(e.to_string()))?;
    let mut value = match docs.first() {
        // Only comments: Go leaves the target map empty.
        None | Some(Yaml::Null) => Value::Object(Map::new()),
        Some(doc @ Yaml::Hash(_)) => yaml_json(doc, 0)?,
        Some(_) => {
            return Err(DocumentError::EffectiveConfig(
                "the document is not a mapping".into(),
            ))
        }
    };
    super::redact::redact(&mut value);
    Ok(Some(value))
}

/// Deepest YAML nesting stored: deeper documents are refused before any recursion over them
/// (serializing, redacting, storing) can exhaust a worker thread's stack.
const MAX_YAML_DEPTH: usize = 100;

fn yaml_json(y: &Yaml, depth: usize) -> Result<Value, DocumentError> {
    if depth > MAX_YAML_DEPTH {
        return Err(DocumentError::EffectiveConfig("nested too deeply".into()));
    }
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => json!(b),
        Yaml::Integer(i) => json!(i),
        Yaml::Real(s) => {
            let parsed = y
                .as_f64()
                .ok_or_else(|| DocumentError::EffectiveConfig(format!("bad number {s}")))?;
            float(parsed)?
        }
        Yaml::String(s) => json!(s),
        Yaml::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| yaml_json(item, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Hash(h) => {
            let mut out = Map::new();
            for (k, v) in h {
                // Go's json.Marshal refuses maps whose keys are not strings.
                let Yaml::String(key) = k else {
                    return Err(DocumentError::EffectiveConfig(
                        "a mapping key is not a string".into(),
                    ));
                };
                out.insert(key.clone(), yaml_json(v, depth + 1)?);
            }
            Value::Object(out)
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            return Err(DocumentError::EffectiveConfig(
                "unsupported YAML value".into(),
            ))
        }
    })
}

/// The status Fleet Server records for a message (`updateAgent`) and its message text.
pub fn status_of(message: &AgentToServer) -> (&'static str, String) {
    match &message.health {
        None => ("online", String::new()),
        Some(h) => {
            let status = if !h.healthy {
                "error"
            } else if h.status == RECOVERABLE_ERROR {
                "degraded"
            } else {
                "online"
            };
            let text = if h.last_error.is_empty() {
                h.status.clone()
            } else {
                h.last_error.clone()
            };
            (status, text)
        }
    }
}

/// The checkin-state update of one message for the bulk writer (`updated_at` is added at flush).
/// `effective_config`, when present, replaces the stored one whole (Fleet Server's S2 script).
pub fn checkin_state(
    message: &AgentToServer,
    last_checkin: &str,
    clear_audit: bool,
) -> Result<Map<String, Value>, DocumentError> {
    let (status, text) = status_of(message);
    let mut s = Map::new();
    s.insert("last_checkin".into(), json!(last_checkin));
    s.insert("last_checkin_status".into(), json!(status));
    s.insert("last_checkin_message".into(), json!(text));
    s.insert("unhealthy_reason".into(), Value::Null);
    s.insert("sequence_num".into(), json!(message.sequence_num));
    if let Some(h) = &message.health {
        s.insert("health".into(), health_json(h)?);
    }
    if message.capabilities != 0 {
        s.insert(
            "capabilities".into(),
            json!(capability_names(message.capabilities)),
        );
    }
    if let Some(config) = &message.effective_config {
        if let Some(v) = effective_config_json(config)? {
            s.insert("effective_config".into(), v);
        }
    }
    if clear_audit {
        for field in [
            "audit_unenrolled_reason",
            "audit_unenrolled_time",
            "unenrolled_at",
        ] {
            s.insert(field.into(), Value::Null);
        }
    }
    Ok(s)
}

/// The update of an `agent_disconnect` message: only the status (`WithStatus("disconnected")`).
pub fn disconnect_state(last_checkin: &str) -> Map<String, Value> {
    let mut s = Map::new();
    s.insert("last_checkin".into(), json!(last_checkin));
    s.insert("last_checkin_status".into(), json!("disconnected"));
    s.insert("last_checkin_message".into(), json!(""));
    s.insert("unhealthy_reason".into(), Value::Null);
    s.insert("sequence_num".into(), json!(0));
    s
}

/// Whether a collector said goodbye (`agent_disconnect`): the operator sees it offline.
pub fn is_disconnected(agent: &Agent) -> bool {
    agent.agent_type == "OPAMP" && agent.last_checkin_status == "disconnected"
}

/// The OpAMP members the operator sees for a collector (management API, `fleet-edge agents`):
/// its health tree, effective configuration, capabilities and message sequence number.
pub fn operator_view(agent: &Agent) -> Map<String, Value> {
    [
        "health",
        "effective_config",
        "capabilities",
        "sequence_num",
        "remote_config_status",
    ]
    .iter()
    .filter_map(|k| Some(((*k).to_owned(), agent.other.get(*k)?.clone())))
    .filter(|(_, v)| !v.is_null())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opamp::proto::{AgentConfigFile, AgentConfigMap, ArrayValue, KeyValueList};

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
        }
    }

    fn health(healthy: bool, status: &str, last_error: &str) -> ComponentHealth {
        ComponentHealth {
            healthy,
            status: status.into(),
            last_error: last_error.into(),
            ..Default::default()
        }
    }

    #[test]
    fn status_follows_health_as_fleet_server_maps_it() {
        let mut m = AgentToServer::default();
        assert_eq!(status_of(&m), ("online", String::new()));
        m.health = Some(health(false, "StatusPermanentError", "boom"));
        assert_eq!(status_of(&m), ("error", "boom".into()));
        m.health = Some(health(true, "StatusRecoverableError", ""));
        assert_eq!(status_of(&m), ("degraded", "StatusRecoverableError".into()));
        m.health = Some(health(true, "StatusOK", ""));
        assert_eq!(status_of(&m), ("online", "StatusOK".into()));
    }

    #[test]
    fn attributes_render_every_value_kind() {
        use any_value::Value as V;
        let kvs = vec![
            kv("s", V::StringValue("x".into())),
            kv("b", V::BoolValue(true)),
            kv("i", V::IntValue(-3)),
            kv("d", V::DoubleValue(1.5)),
            kv("bytes", V::BytesValue(vec![1, 2])),
            kv(
                "a",
                V::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(V::IntValue(1)),
                    }],
                }),
            ),
            kv(
                "kv",
                V::KvlistValue(KeyValueList {
                    values: vec![kv("n", V::StringValue("y".into()))],
                }),
            ),
            KeyValue {
                key: "skipped".into(),
                value: None,
            },
            KeyValue {
                key: "empty".into(),
                value: Some(AnyValue { value: None }),
            },
        ];
        assert_eq!(
            attributes_json(&kvs).unwrap(),
            json!({"s": "x", "b": true, "i": -3, "d": 1.5, "bytes": "AQI=", "a": [1],
                   "kv": {"n": "y"}, "empty": null})
        );
        assert!(attributes_json(&[kv("nan", V::DoubleValue(f64::NAN))]).is_err());
    }

    #[test]
    fn health_attributes_keep_go_struct_shape() {
        let mut h = health(true, "", "");
        h.attributes = vec![kv("k", any_value::Value::StringValue("v".into()))];
        assert_eq!(
            health_json(&h).unwrap(),
            json!({"healthy": true, "attributes": [{"key": "k", "value": {"Value": {"string_value": "v"}}}]})
        );
        assert_eq!(health_json(&health(false, "", "")).unwrap(), json!({}));
    }

    fn config(body: &str) -> EffectiveConfig {
        let mut map = std::collections::BTreeMap::new();
        map.insert(
            String::new(),
            AgentConfigFile {
                body: body.as_bytes().to_vec(),
                content_type: "text/yaml".into(),
            },
        );
        EffectiveConfig {
            config_map: Some(AgentConfigMap { config_map: map }),
        }
    }

    #[test]
    fn effective_config_is_yaml_mapping_only() {
        assert_eq!(
            effective_config_json(&config("a: 1\nb: [x, 2.5, true, ~]\n")).unwrap(),
            Some(json!({"a": 1, "b": ["x", 2.5, true, null]}))
        );
        assert_eq!(
            effective_config_json(&config("# only a comment\n")).unwrap(),
            Some(json!({}))
        );
        assert_eq!(effective_config_json(&config("")).unwrap(), None);
        assert_eq!(
            effective_config_json(&EffectiveConfig::default()).unwrap(),
            None
        );
        assert!(effective_config_json(&config("- a\n- b\n")).is_err());
        assert!(effective_config_json(&config("1: x\n")).is_err());
        assert!(effective_config_json(&config("a: [\n")).is_err());
        let deep = format!("a: {}1{}\n", "[".repeat(150), "]".repeat(150));
        assert!(effective_config_json(&config(&deep)).is_err());
        let fine = format!("a: {}1{}\n", "[".repeat(50), "]".repeat(50));
        assert!(effective_config_json(&config(&fine)).is_ok());
    }

    #[test]
    fn enroll_document_without_description_keeps_fleet_defaults() {
        let doc = enroll_document("u1", None, "p", &[], "2026-01-01T00:00:00Z").unwrap();
        let v = serde_json::to_value(&doc).unwrap();
        assert_eq!(v["type"], "OPAMP");
        assert_eq!(v["agent"], json!({"id": "u1"}));
        assert_eq!(
            v["local_metadata"],
            json!({"elastic": {"agent": {"id": "u1"}}, "host": {}, "os": {}})
        );
        // Go prepends the (empty) service name to the tags.
        assert_eq!(v["tags"], json!([""]));
        assert!(v.get("identifying_attributes").is_none());
    }
}
