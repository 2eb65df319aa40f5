//! Fleet system indices and data stream templates, derived from the ES mapping files in
//! `../shared/reference/es/mappings` (the `conformance` test in `tests/mappings.rs` re-derives these
//! tables from those files and compares). Each system index is reached through an alias
//! (`.fleet-agents`) that points at its concrete `-7` index (`.fleet-agents-7`), created with its
//! managed mapping on first write, as the ES fleet plugin does.

use crate::mapping::Mapping;

/// A Fleet system index (alias → concrete `-7` index).
#[derive(Debug)]
pub struct SystemIndex {
    /// Name Fleet uses (an alias).
    pub alias: &'static str,
    /// Concrete index name reported in responses.
    pub concrete: &'static str,
    /// `managed_index_mappings_version` the fleet plugin stamps.
    pub mapping_version: u32,
    /// Compact field list (`path type [flags]`).
    pub fields: &'static [&'static str],
}

/// A data stream template (index pattern prefix → mapping).
#[derive(Debug)]
pub struct StreamTemplate {
    /// Data stream name prefix the template matches (`*` suffix implied unless `exact`).
    pub prefix: &'static str,
    /// The pattern matches only the exact name.
    pub exact: bool,
    /// `dynamic` at the root.
    pub dynamic: bool,
    /// Compact field list.
    pub fields: &'static [&'static str],
}

const AGENTS: &[&str] = &[
    "access_api_key_id keyword",
    "action_seq_no integer noindex",
    "active boolean",
    "agent.id keyword",
    "agent.version keyword",
    "default_api_key keyword",
    "default_api_key_id keyword",
    "default_api_key_history object disabled",
    "enrolled_at date",
    "last_checkin date",
    "last_checkin_status keyword",
    "last_checkin_message text",
    "last_checkin_message.keyword keyword ignore_above=1024",
    "unhealthy_reason keyword",
    "components object disabled",
    "last_updated date",
    "local_metadata.elastic.agent.build.original text",
    "local_metadata.elastic.agent.build.original.keyword keyword ignore_above=256",
    "local_metadata.elastic.agent.id keyword",
    "local_metadata.elastic.agent.log_level keyword",
    "local_metadata.elastic.agent.snapshot boolean",
    "local_metadata.elastic.agent.upgradeable boolean",
    "local_metadata.elastic.agent.unprivileged boolean",
    "local_metadata.elastic.agent.fips boolean",
    "local_metadata.elastic.agent.version text",
    "local_metadata.elastic.agent.version.keyword keyword ignore_above=16",
    "local_metadata.host.architecture keyword",
    "local_metadata.host.hostname text",
    "local_metadata.host.hostname.keyword keyword ignore_above=256",
    "local_metadata.host.id keyword",
    "local_metadata.host.ip text",
    "local_metadata.host.ip.keyword keyword ignore_above=64",
    "local_metadata.host.mac text",
    "local_metadata.host.mac.keyword keyword ignore_above=17",
    "local_metadata.host.name text",
    "local_metadata.host.name.keyword keyword ignore_above=256",
    "local_metadata.os.family keyword",
    "local_metadata.os.full text",
    "local_metadata.os.full.keyword keyword ignore_above=128",
    "local_metadata.os.kernel text",
    "local_metadata.os.kernel.keyword keyword ignore_above=128",
    "local_metadata.os.name text",
    "local_metadata.os.name.keyword keyword ignore_above=256",
    "local_metadata.os.platform keyword",
    "local_metadata.os.version text",
    "local_metadata.os.version.keyword keyword ignore_above=32",
    "packages keyword",
    "policy_coordinator_idx integer",
    "policy_id keyword",
    "policy_output_permissions_hash keyword",
    "policy_revision_idx integer",
    "shared_id keyword",
    "enrollment_id keyword",
    "type keyword",
    "unenrolled_at date",
    "unenrolled_reason keyword",
    "unenrollment_started_at date",
    "updated_at date",
    "upgrade_started_at date",
    "upgraded_at date",
    "upgrade_details.target_version text",
    "upgrade_details.target_version.keyword keyword ignore_above=16",
    "upgrade_details.action_id keyword",
    "upgrade_details.state keyword",
    "upgrade_details.metadata.scheduled_at date",
    "upgrade_details.metadata.download_percent double",
    "upgrade_details.metadata.download_rate double",
    "upgrade_details.metadata.failed_state keyword",
    "upgrade_details.metadata.error_msg text",
    "upgrade_details.metadata.error_msg.keyword keyword ignore_above=1024",
    "upgrade_details.metadata.retry_error_msg text",
    "upgrade_details.metadata.retry_error_msg.keyword keyword ignore_above=1024",
    "upgrade_details.metadata.retry_until date",
    "upgrade_status keyword",
    "upgrade_attempts date",
    "user_provided_metadata object disabled",
    "tags keyword",
    "namespaces keyword",
    "audit_unenrolled_time date",
    "audit_unenrolled_reason keyword",
];

const ACTIONS: &[&str] = &[
    "action_id keyword",
    "agents keyword",
    "data object disabled",
    "expiration date",
    "start_time date",
    "minimum_execution_duration integer",
    "rollout_duration_seconds integer",
    "input_type keyword",
    "timeout integer",
    "@timestamp date",
    "type keyword",
    "user_id keyword",
    "signed.data binary",
    "signed.signature binary",
    "namespaces keyword",
];

const ENROLLMENT_KEYS: &[&str] = &[
    "active boolean",
    "api_key keyword",
    "api_key_id keyword",
    "created_at date",
    "expire_at date",
    "name keyword",
    "policy_id keyword",
    "updated_at date",
    "namespaces keyword",
    "hidden boolean",
];

const POLICIES: &[&str] = &[
    "coordinator_idx integer",
    "namespaces keyword",
    "data object disabled",
    "default_fleet_server boolean",
    "policy_id keyword",
    "revision_idx integer",
    "@timestamp date",
    "unenroll_timeout integer",
];

const POLICIES_LEADER: &[&str] = &[
    "server.id keyword",
    "server.version keyword",
    "@timestamp date",
];

const SERVERS: &[&str] = &[
    "agent.id keyword",
    "agent.version keyword",
    "host.architecture keyword",
    "host.id keyword",
    "host.ip keyword",
    "host.name keyword",
    "server.id keyword",
    "server.version keyword",
    "@timestamp date",
];

const ARTIFACTS: &[&str] = &[
    "identifier keyword",
    "compression_algorithm keyword noindex",
    "encryption_algorithm keyword noindex",
    "encoded_sha256 keyword",
    "encoded_size long noindex",
    "decoded_sha256 keyword",
    "decoded_size long noindex",
    "created date",
    "package_name keyword",
    "type keyword",
    "relative_url keyword",
    "body binary",
];

const SECRETS: &[&str] = &["value keyword noindex"];

const ACTIONS_RESULTS: &[&str] = &[
    "action_id keyword",
    "action_input_type keyword",
    "agent_id keyword",
    "action_data object disabled",
    "action_response object dynamic",
    "data object disabled",
    "error text",
    "error.keyword keyword ignore_above=1024",
    "@timestamp date",
    "started_at date",
    "completed_at date",
];

const FROMHOST_META: &[&str] = &[
    "@timestamp date",
    "namespaces keyword",
    "upload_start date",
    "agent_id keyword",
    "action_id keyword",
    "source keyword",
    "upload_id keyword",
    "file.Status keyword",
    "file.ChunkSize integer",
    "file.Compression keyword",
    "file.name keyword",
];

const FROMHOST_DATA: &[&str] = &[
    "@timestamp date",
    "data binary",
    "bid keyword",
    "sha2 keyword noindex",
    "last boolean noindex",
];

const TOHOST_META: &[&str] = &[
    "@timestamp date",
    "agent_id keyword",
    "action_id keyword",
    "source keyword",
    "file.Status keyword",
    "file.ChunkSize integer",
    "file.Compression keyword",
    "file.name keyword",
    "file.Meta.target_agents keyword",
];

const TOHOST_DATA: &[&str] = &[
    "@timestamp date",
    "data binary store",
    "bid keyword",
    "sha2 keyword noindex",
    "last boolean noindex",
];

/// Every Fleet system index.
pub const SYSTEM_INDICES: &[SystemIndex] = &[
    SystemIndex {
        alias: ".fleet-agents",
        concrete: ".fleet-agents-7",
        mapping_version: 6,
        fields: AGENTS,
    },
    SystemIndex {
        alias: ".fleet-actions",
        concrete: ".fleet-actions-7",
        mapping_version: 2,
        fields: ACTIONS,
    },
    SystemIndex {
        alias: ".fleet-enrollment-api-keys",
        concrete: ".fleet-enrollment-api-keys-7",
        mapping_version: 3,
        fields: ENROLLMENT_KEYS,
    },
    SystemIndex {
        alias: ".fleet-policies",
        concrete: ".fleet-policies-7",
        mapping_version: 2,
        fields: POLICIES,
    },
    SystemIndex {
        alias: ".fleet-policies-leader",
        concrete: ".fleet-policies-leader-7",
        mapping_version: 1,
        fields: POLICIES_LEADER,
    },
    SystemIndex {
        alias: ".fleet-servers",
        concrete: ".fleet-servers-7",
        mapping_version: 1,
        fields: SERVERS,
    },
    SystemIndex {
        alias: ".fleet-artifacts",
        concrete: ".fleet-artifacts-7",
        mapping_version: 1,
        fields: ARTIFACTS,
    },
    SystemIndex {
        alias: ".fleet-secrets",
        concrete: ".fleet-secrets-7",
        mapping_version: 1,
        fields: SECRETS,
    },
];

/// Data stream templates (system ones and the built-in `logs-*-*` / `metrics-*-*`).
pub const STREAM_TEMPLATES: &[StreamTemplate] = &[
    StreamTemplate {
        prefix: ".fleet-actions-results",
        exact: true,
        dynamic: false,
        fields: ACTIONS_RESULTS,
    },
    StreamTemplate {
        prefix: ".fleet-fileds-fromhost-meta-",
        exact: false,
        dynamic: false,
        fields: FROMHOST_META,
    },
    StreamTemplate {
        prefix: ".fleet-fileds-fromhost-data-",
        exact: false,
        dynamic: false,
        fields: FROMHOST_DATA,
    },
    StreamTemplate {
        prefix: ".fleet-fileds-tohost-meta-",
        exact: false,
        dynamic: false,
        fields: TOHOST_META,
    },
    StreamTemplate {
        prefix: ".fleet-fileds-tohost-data-",
        exact: false,
        dynamic: false,
        fields: TOHOST_DATA,
    },
    StreamTemplate {
        prefix: "logs-",
        exact: false,
        dynamic: true,
        fields: &["@timestamp date"],
    },
    StreamTemplate {
        prefix: "metrics-",
        exact: false,
        dynamic: true,
        fields: &["@timestamp date"],
    },
    StreamTemplate {
        prefix: "traces-",
        exact: false,
        dynamic: true,
        fields: &["@timestamp date"],
    },
];

/// The system index a name (alias or concrete) denotes.
pub fn system_index(name: &str) -> Option<&'static SystemIndex> {
    SYSTEM_INDICES
        .iter()
        .find(|s| s.alias == name || s.concrete == name)
}

/// The data stream template matching a name, if any (`logs-*-*` needs two dashes).
pub fn stream_template(name: &str) -> Option<&'static StreamTemplate> {
    STREAM_TEMPLATES.iter().find(|t| {
        if t.exact {
            return name == t.prefix;
        }
        let Some(rest) = name.strip_prefix(t.prefix) else {
            return false;
        };
        if t.prefix.starts_with('.') {
            !rest.is_empty()
        } else {
            // logs-*-*: dataset and namespace both present
            rest.split('-').filter(|p| !p.is_empty()).count() >= 2
        }
    })
}

impl SystemIndex {
    /// The managed mapping (`dynamic: false`).
    pub fn mapping(&self) -> Mapping {
        Mapping::from_compact(false, self.fields)
    }
}

impl StreamTemplate {
    /// The template mapping.
    pub fn mapping(&self) -> Mapping {
        Mapping::from_compact(self.dynamic, self.fields)
    }

    /// Whether the stream is a hidden/system one (starts with a dot).
    pub fn hidden(&self) -> bool {
        self.prefix.starts_with('.')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution() {
        assert_eq!(
            system_index(".fleet-agents").unwrap().concrete,
            ".fleet-agents-7"
        );
        assert_eq!(
            system_index(".fleet-agents-7").unwrap().alias,
            ".fleet-agents"
        );
        assert!(system_index(".fleet-actions-results").is_none());
        assert!(stream_template(".fleet-actions-results").is_some());
        assert!(stream_template("logs-fleet_server.output_health-default").is_some());
        assert!(stream_template("logs-x").is_none());
        assert!(stream_template("test_1").is_none());
        let m = system_index(".fleet-policies").unwrap().mapping();
        assert!(!m.dynamic);
        assert!(m.lookup("data.outputs").is_none());
        assert!(m.lookup("revision_idx").is_some());
    }
}
