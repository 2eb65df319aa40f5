//! `logs-fleet_server.output_health-default` documents (schema.json `output_health`;
//! fleet-protocol.md §3.7 step 3, §11): the state of a remote Elasticsearch output as Fleet
//! Server last found it while making agents' API keys there.

use serde::{Deserialize, Serialize};

/// `data_stream` of every output-health document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataStream {
    /// `fleet_server.output_health`.
    pub dataset: String,
    /// `logs`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `default`.
    pub namespace: String,
}

/// One output-health document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputHealth {
    /// Output name (key of the policy's `outputs`).
    pub output: String,
    /// `HEALTHY` or `DEGRADED`.
    pub state: String,
    /// Why, when degraded (empty when healthy).
    pub message: String,
    /// When the state was found (RFC 3339).
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    /// Always `{dataset: fleet_server.output_health, type: logs, namespace: default}`.
    pub data_stream: DataStream,
}

impl OutputHealth {
    /// The data stream the documents go to.
    pub const INDEX: &'static str = "logs-fleet_server.output_health-default";
    /// The healthy state.
    pub const HEALTHY: &'static str = "HEALTHY";
    /// The degraded state.
    pub const DEGRADED: &'static str = "DEGRADED";

    /// A document for `output` in `state` at `timestamp`.
    pub fn new(output: &str, state: &str, message: &str, timestamp: String) -> OutputHealth {
        OutputHealth {
            output: output.to_owned(),
            state: state.to_owned(),
            message: message.to_owned(),
            timestamp,
            data_stream: DataStream {
                dataset: "fleet_server.output_health".into(),
                kind: "logs".into(),
                namespace: "default".into(),
            },
        }
    }

    /// Whether this is a `HEALTHY` document.
    pub fn healthy(&self) -> bool {
        self.state == Self::HEALTHY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_the_spec_shape() {
        let doc = OutputHealth::new(
            "remote",
            OutputHealth::DEGRADED,
            "remote ES could not create API key due to error: x",
            "2026-08-21T19:00:00Z".into(),
        );
        assert_eq!(
            serde_json::to_value(&doc).unwrap(),
            serde_json::json!({"output": "remote", "state": "DEGRADED",
                "message": "remote ES could not create API key due to error: x",
                "@timestamp": "2026-08-21T19:00:00Z",
                "data_stream": {"dataset": "fleet_server.output_health", "type": "logs", "namespace": "default"}})
        );
        assert!(!doc.healthy());
    }
}
