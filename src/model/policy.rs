//! `.fleet-policies` documents: every policy revision is a new document (fleet-protocol.md §6.2).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Policy id of the policy embedded mode writes on first start (the management API takes a new
/// policy's outputs from it).
pub const DEFAULT_POLICY_ID: &str = "fleet-edge-default";

/// One revision of one policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyDoc {
    /// Kibana's write time; becomes the POLICY_CHANGE `created_at`.
    #[serde(rename = "@timestamp", default)]
    pub timestamp: String,
    /// Policy id.
    pub policy_id: String,
    /// Revision; higher is newer.
    #[serde(default)]
    pub revision_idx: i64,
    /// Legacy coordinator index (ignored since 8.16).
    #[serde(default)]
    pub coordinator_idx: i64,
    /// Whether this is the default Fleet Server policy.
    #[serde(default)]
    pub default_fleet_server: bool,
    /// The full agent policy (`id`, `revision`, `outputs`, `output_permissions`, `inputs`, ...).
    #[serde(default)]
    pub data: Value,
    /// Fields not interpreted here.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}
