//! `.fleet-enrollment-api-keys` documents (written by Kibana, or by the local store's
//! management API): which policy an enrollment token enrolls into.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An enrollment key record. `api_key_id` is the id half of the token agents present.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnrollmentKey {
    /// Whether the token may still enroll agents.
    #[serde(default)]
    pub active: bool,
    /// The token as handed to agents, `base64(id:secret)`.
    #[serde(default)]
    pub api_key: String,
    /// The API key id.
    #[serde(default)]
    pub api_key_id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Policy agents enrolled with it join.
    #[serde(default)]
    pub policy_id: String,
    /// Namespaces given to the enrolled agents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Creation time.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_at: String,
    /// Fields not interpreted here.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}
