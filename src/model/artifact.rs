//! `.fleet-artifacts` documents (fleet-protocol.md §11), written by Kibana for Elastic Defend's
//! exception and trusted-application lists: `body` is the base64 of the encoded (compressed,
//! typically zlib) bytes whose SHA-256 is `encoded_sha256`; `decoded_sha256` names the content
//! and is what policies' `artifact_manifest` and the download URL carry.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One artifact document.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// The artifact name (`endpoint-exceptionlist-linux-v1`).
    #[serde(default)]
    pub identifier: String,
    /// `zlib` or `none`.
    #[serde(default)]
    pub compression_algorithm: String,
    /// `none`.
    #[serde(default)]
    pub encryption_algorithm: String,
    /// SHA-256 (hex) of the encoded bytes.
    #[serde(default)]
    pub encoded_sha256: String,
    /// Size of the encoded bytes.
    #[serde(default)]
    pub encoded_size: i64,
    /// SHA-256 (hex) of the decoded content.
    #[serde(default)]
    pub decoded_sha256: String,
    /// Size of the decoded content.
    #[serde(default)]
    pub decoded_size: i64,
    /// Creation time.
    #[serde(default)]
    pub created: String,
    /// Base64 of the encoded bytes.
    #[serde(default)]
    pub body: String,
    /// The integration package that made it (`endpoint`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub package_name: String,
    /// Fields not interpreted here.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}
