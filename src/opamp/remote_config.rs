//! Remote configuration for collectors, beyond Elastic's Fleet Server (issue 22, item 4): a
//! policy may carry an `opamp` section whose `config` maps file names to configuration bodies;
//! collectors of that policy that report `AcceptsRemoteConfig` are offered it (OpAMP
//! `AgentRemoteConfig`, with a hash over the whole map), and what they report back
//! (`RemoteConfigStatus`: applied, applying, failed and its message) is recorded per collector.
//!
//! ```json
//! "opamp": {"config": {"": "receivers: {otlp: {}}\n...", "extra.yaml": {"body": "...", "content_type": "text/yaml"}}}
//! ```

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::proto::{AgentConfigFile, AgentConfigMap, AgentRemoteConfig, RemoteConfigStatus};

/// Content type of a file given as a plain string.
const DEFAULT_CONTENT_TYPE: &str = "text/yaml";

/// Why a policy's `opamp` section cannot be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RemoteConfigError {
    /// `opamp.config` is not an object of files.
    #[error("opamp.config must be an object of file name -> body or {{body, content_type}}")]
    Shape,
}

/// A policy's remote configuration, ready to offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteConfig {
    /// File name → (body, content type).
    pub files: BTreeMap<String, (Vec<u8>, String)>,
    /// SHA-256 over the files (name, content type and body of each, in name order).
    pub hash: Vec<u8>,
}

impl RemoteConfig {
    /// The configuration of a policy's `data`, if it has an `opamp.config` section.
    pub fn from_policy(data: &Value) -> Result<Option<Self>, RemoteConfigError> {
        let Some(config) = data.pointer("/opamp/config") else {
            return Ok(None);
        };
        let Value::Object(entries) = config else {
            return Err(RemoteConfigError::Shape);
        };
        let mut files = BTreeMap::new();
        for (name, file) in entries {
            let (body, content_type) = match file {
                Value::String(body) => (body.clone(), DEFAULT_CONTENT_TYPE.to_owned()),
                Value::Object(f) => match (f.get("body"), f.get("content_type")) {
                    (Some(Value::String(body)), None) => {
                        (body.clone(), DEFAULT_CONTENT_TYPE.to_owned())
                    }
                    (Some(Value::String(body)), Some(Value::String(kind))) => {
                        (body.clone(), kind.clone())
                    }
                    _ => return Err(RemoteConfigError::Shape),
                },
                _ => return Err(RemoteConfigError::Shape),
            };
            files.insert(name.clone(), (body.into_bytes(), content_type));
        }
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for (name, (body, kind)) in &files {
            for part in [name.as_bytes(), kind.as_bytes(), body.as_slice()] {
                ctx.update(&(part.len() as u64).to_be_bytes());
                ctx.update(part);
            }
        }
        Ok(Some(Self {
            files,
            hash: ctx.finish().as_ref().to_vec(),
        }))
    }

    /// The `AgentRemoteConfig` message.
    pub fn to_proto(&self) -> AgentRemoteConfig {
        AgentRemoteConfig {
            config: Some(AgentConfigMap {
                config_map: self
                    .files
                    .iter()
                    .map(|(name, (body, kind))| {
                        (
                            name.clone(),
                            AgentConfigFile {
                                body: body.clone(),
                                content_type: kind.clone(),
                            },
                        )
                    })
                    .collect(),
            }),
            config_hash: self.hash.clone(),
        }
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A reported status as stored on the collector's document (`remote_config_status`).
pub fn status_json(status: &RemoteConfigStatus) -> Value {
    let name = match status.status {
        1 => "APPLIED",
        2 => "APPLYING",
        3 => "FAILED",
        _ => "UNSET",
    };
    json!({
        "last_remote_config_hash": hex(&status.last_remote_config_hash),
        "status": name,
        "error_message": status.error_message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_hash_from_the_policy() {
        let data = json!({"opamp": {"config": {"": "a: 1\n", "x.json": {"body": "{}", "content_type": "application/json"}}}});
        let config = RemoteConfig::from_policy(&data).unwrap().unwrap();
        assert_eq!(
            config.files[""],
            (b"a: 1\n".to_vec(), "text/yaml".to_owned())
        );
        assert_eq!(config.hash.len(), 32);
        let changed = json!({"opamp": {"config": {"": "a: 2\n", "x.json": {"body": "{}", "content_type": "application/json"}}}});
        assert_ne!(
            RemoteConfig::from_policy(&changed).unwrap().unwrap().hash,
            config.hash
        );
        assert_eq!(RemoteConfig::from_policy(&json!({"inputs": []})), Ok(None));
        assert_eq!(
            RemoteConfig::from_policy(&json!({"opamp": {"config": {"": 5}}})),
            Err(RemoteConfigError::Shape)
        );
        let proto = config.to_proto();
        assert_eq!(proto.config.unwrap().config_map.len(), 2);
    }

    #[test]
    fn a_policy_with_a_bad_opamp_section_is_refused_and_a_good_one_kept() {
        use crate::transform::prepared_policy::{PolicyError, PreparedPolicy};
        let mut doc = crate::model::PolicyDoc {
            policy_id: "p".into(),
            revision_idx: 1,
            data: json!({
                "id": "p", "revision": 1,
                "outputs": {"default": {"type": "elasticsearch", "hosts": ["https://es:9200"]}},
                "output_permissions": {"default": {"_elastic_agent_checks": {"cluster": ["monitor"]}}},
                "inputs": [],
                "opamp": {"config": 3}
            }),
            ..Default::default()
        };
        let secrets = std::collections::HashMap::new();
        assert!(matches!(
            PreparedPolicy::prepare(&doc, &secrets),
            Err(PolicyError::OpAmp { .. })
        ));
        doc.data["opamp"] = json!({"config": {"": "a: 1\n"}});
        let prepared = PreparedPolicy::prepare(&doc, &secrets).unwrap();
        assert_eq!(prepared.opamp.unwrap().files.len(), 1);
    }

    #[test]
    fn status_names() {
        let s = RemoteConfigStatus {
            last_remote_config_hash: vec![0xab, 0x01],
            status: 3,
            error_message: "bad".into(),
        };
        assert_eq!(
            status_json(&s),
            json!({"last_remote_config_hash": "ab01", "status": "FAILED", "error_message": "bad"})
        );
    }
}
