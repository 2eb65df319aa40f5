//! `.fleet-actions` documents (written by Kibana or the management API) and
//! `.fleet-actions-results` documents (written on ack). fleet-protocol.md §4.2, §5.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One action document. `doc_id` and `seq_no` come from the store, not the source.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Document id; the ack token after delivery.
    #[serde(skip)]
    pub doc_id: String,
    /// Store sequence number, increasing with every write.
    #[serde(skip)]
    pub seq_no: i64,
    /// Logical action id (one action may span several documents).
    pub action_id: String,
    /// Action type (`UPGRADE`, `UNENROLL`, ...).
    #[serde(rename = "type")]
    pub action_type: String,
    /// Target agent ids.
    #[serde(default)]
    pub agents: Vec<String>,
    /// Creation time.
    #[serde(
        rename = "@timestamp",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub timestamp: String,
    /// Latest start time; never delivered after it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expiration: String,
    /// Earliest start time.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub start_time: String,
    /// Input type for INPUT_ACTION.
    #[serde(default)]
    pub input_type: String,
    /// Timeout in seconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    /// Type-specific payload.
    #[serde(default)]
    pub data: Value,
    /// Namespaces (copied into results).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Fields not interpreted here (`signed`, `traceparent`, rollout settings, ...).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// A result document, id `<action_id>:<agent_id>`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    /// Action id.
    pub action_id: String,
    /// Agent id.
    pub agent_id: String,
    /// Ack time (RFC 3339 with the agent's precision).
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    /// Error reported by the agent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The action's namespaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Type-specific fields (`data`, `action_input_type`, `started_at`, ...).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ActionResult {
    /// The document id: `<action_id>:<agent_id>`.
    pub fn doc_id(&self) -> String {
        format!("{}:{}", self.action_id, self.agent_id)
    }
}
