//! `.fleet-agents` documents (schema.json `agent`; fleet-protocol.md §2.5, §3.7, §3.8).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `agent` sub-object: the agent's own id and version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Agent id (same as the document id).
    pub id: String,
    /// Normalised version, e.g. `9.2.1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// An OpAMP collector's `service.name` (Fleet Server's `agent.type`); empty for Elastic Agents.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

/// A key retired after a permissions change or an output removal; invalidated after the agent
/// acks the new policy (§4.3).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RetiredKey {
    /// API key id.
    pub id: String,
    /// When it was retired (RFC 3339).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub retired_at: String,
    /// Output name it belonged to, when it was retired because the output went away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// For a key made on a remote cluster, the hash of that cluster's configuration (see
    /// [`OutputKey::remote_config_hash`]): it is invalidated there.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_config_hash: String,
}

/// `outputs.<name>`: the per-agent API key for one Elasticsearch output (§3.7).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputKey {
    /// `id:secret` as sent to the agent (or a `$co.elastic.secret{..}` reference).
    #[serde(default)]
    pub api_key: String,
    /// API key id.
    #[serde(default)]
    pub api_key_id: String,
    /// SHA-256 of the Go-encoded role descriptors the key was made for.
    #[serde(default)]
    pub permissions_hash: String,
    /// Output type (`elasticsearch`, remote outputs included, as Fleet Server writes it).
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub output_type: String,
    /// For a `remote_elasticsearch` output, the SHA-256 of the cluster configuration the key was
    /// made with (`transform::remote::RemoteEs::config_hash`): a different one means the key lives on
    /// another cluster (or was made with another token) and a new key is needed. Empty for keys
    /// of the store's own cluster. Fleet Server keeps this comparison in memory; storing it makes
    /// it survive restarts and work across instances. `outputs` is source-only in the
    /// `.fleet-agents` mapping (es-contract.md §4), so the field is kept, never indexed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_config_hash: String,
    /// Keys waiting to be invalidated after the next policy ack. Always written, empty too: a
    /// partial update must be able to clear the list (arrays replace).
    #[serde(default)]
    pub to_retire_api_key_ids: Vec<RetiredKey>,
}

/// One agent document. `id` is the document `_id` (not stored in the source). Read by a
/// hand-written reader (`agent_de.rs`) that visits the members once; the `serde` attributes
/// below describe how it is written, and the reader keeps them (defaults, `type`, `other`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Agent {
    /// Document id.
    #[serde(skip)]
    pub id: String,
    /// Whether the agent is enrolled (false after UNENROLL).
    #[serde(default)]
    pub active: bool,
    /// API key id of the agent's access key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub access_api_key_id: String,
    /// Last action `_seq_no` delivered, as a one-element array (`[-1]` initially).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_seq_no: Option<Vec<i64>>,
    /// Id and version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentInfo>,
    /// `PERMANENT` for Elastic Agents.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub agent_type: String,
    /// Enrollment time (RFC 3339, seconds).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub enrolled_at: String,
    /// Caller-supplied dedupe id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub enrollment_id: String,
    /// Local metadata reported by the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_metadata: Option<Value>,
    /// Namespaces from the enrollment key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Assigned policy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy_id: String,
    /// Policy id without any `#suffix`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy_base_id: String,
    /// Last acknowledged policy revision. Not written while 0: Fleet Server's enrollment document
    /// has no such member (fleet-protocol.md §2.5).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub policy_revision_idx: i64,
    /// Policy the agent reports running (checkin `agent_policy_id`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agent_policy_id: String,
    /// PBKDF2 hash of the replace token.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub replace_token: String,
    /// Tags, sorted and de-duplicated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Per-output API keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, OutputKey>,
    /// Last checkin time.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_checkin: String,
    /// Last checkin status as sent (`online`, `DEGRADED`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_checkin_status: String,
    /// Last checkin message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_checkin_message: String,
    /// Components as last reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Value>,
    /// When the agent was unenrolled.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unenrolled_at: String,
    /// Upgrade progress reported by the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_details: Option<Value>,
    /// Uninstall/orphan audit reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub audit_unenrolled_reason: String,
    /// User-provided metadata (Kibana).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_provided_metadata: Option<Value>,
    /// Fields this server does not interpret, kept verbatim.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// For `skip_serializing_if`.
fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl Agent {
    /// The last delivered action sequence number (`-1` when none).
    pub fn action_seq(&self) -> i64 {
        self.action_seq_no
            .as_ref()
            .and_then(|v| v.first().copied())
            .unwrap_or(-1)
    }

    /// The agent's reported version, if known.
    pub fn version(&self) -> &str {
        self.agent.as_ref().map_or("", |a| a.version.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_unknown_fields() {
        let src = serde_json::json!({
            "active": true, "access_api_key_id": "k1", "action_seq_no": [-1],
            "agent": {"id": "a1", "version": "9.2.1"}, "type": "PERMANENT",
            "enrolled_at": "2026-05-01T10:11:12Z", "policy_id": "p1", "policy_revision_idx": 3,
            "outputs": {"default": {"api_key": "i:s", "api_key_id": "i", "permissions_hash": "h", "type": "elasticsearch", "to_retire_api_key_ids": []}},
            "something_kibana_wrote": {"x": 1}
        });
        let agent: Agent = serde_json::from_value(src.clone()).unwrap();
        assert_eq!(agent.action_seq(), -1);
        assert_eq!(agent.version(), "9.2.1");
        assert_eq!(agent.outputs["default"].api_key_id, "i");
        assert_eq!(serde_json::to_value(&agent).unwrap(), src);
    }

    #[test]
    fn missing_fields_default() {
        let agent: Agent = serde_json::from_value(serde_json::json!({})).unwrap();
        assert!(!agent.active);
        assert_eq!(agent.action_seq(), -1);
    }
}
