//! The OpAMP protobuf messages fleet-edge reads or writes (opamp-spec `proto/opamp/v1/opamp.proto`
//! and `anyvalue.proto`), as `prost` derive structs: only these fields, with the specification's
//! field numbers. Fields a collector sends that are not declared here (package statuses, custom
//! messages, connection settings, ...) are skipped by the decoder, as protobuf requires.

/// `AnyValue`: an attribute value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    /// The one value this carries (`None`: an empty value).
    #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<any_value::Value>,
}

/// The `value` oneof of [`AnyValue`].
pub mod any_value {
    /// One attribute value.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// `string_value = 1`.
        #[prost(string, tag = "1")]
        StringValue(String),
        /// `bool_value = 2`.
        #[prost(bool, tag = "2")]
        BoolValue(bool),
        /// `int_value = 3`.
        #[prost(int64, tag = "3")]
        IntValue(i64),
        /// `double_value = 4`.
        #[prost(double, tag = "4")]
        DoubleValue(f64),
        /// `array_value = 5`.
        #[prost(message, tag = "5")]
        ArrayValue(super::ArrayValue),
        /// `kvlist_value = 6`.
        #[prost(message, tag = "6")]
        KvlistValue(super::KeyValueList),
        /// `bytes_value = 7`.
        #[prost(bytes = "vec", tag = "7")]
        BytesValue(Vec<u8>),
    }
}

/// `ArrayValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrayValue {
    /// `values = 1`.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

/// `KeyValueList`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValueList {
    /// `values = 1`.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<KeyValue>,
}

/// `KeyValue`: one attribute.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// `key = 1`.
    #[prost(string, tag = "1")]
    pub key: String,
    /// `value = 2`.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// `AgentToServer`: what a collector sends.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentToServer {
    /// `instance_uid = 1`: 16 bytes, a UUID.
    #[prost(bytes = "vec", tag = "1")]
    pub instance_uid: Vec<u8>,
    /// `sequence_num = 2`.
    #[prost(uint64, tag = "2")]
    pub sequence_num: u64,
    /// `agent_description = 3`.
    #[prost(message, optional, tag = "3")]
    pub agent_description: Option<AgentDescription>,
    /// `capabilities = 4`: `AgentCapabilities` bits.
    #[prost(uint64, tag = "4")]
    pub capabilities: u64,
    /// `health = 5`.
    #[prost(message, optional, tag = "5")]
    pub health: Option<ComponentHealth>,
    /// `effective_config = 6`.
    #[prost(message, optional, tag = "6")]
    pub effective_config: Option<EffectiveConfig>,
    /// `remote_config_status = 7`.
    #[prost(message, optional, tag = "7")]
    pub remote_config_status: Option<RemoteConfigStatus>,
    /// `agent_disconnect = 9`.
    #[prost(message, optional, tag = "9")]
    pub agent_disconnect: Option<AgentDisconnect>,
    /// `flags = 10`: `AgentToServerFlags` bits.
    #[prost(uint64, tag = "10")]
    pub flags: u64,
}

/// `AgentToServerFlags_RequestInstanceUid`.
pub const FLAG_REQUEST_INSTANCE_UID: u64 = 0x1;

/// `AgentDisconnect`: the collector's last message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentDisconnect {}

/// `AgentDescription`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentDescription {
    /// `identifying_attributes = 1`.
    #[prost(message, repeated, tag = "1")]
    pub identifying_attributes: Vec<KeyValue>,
    /// `non_identifying_attributes = 2`.
    #[prost(message, repeated, tag = "2")]
    pub non_identifying_attributes: Vec<KeyValue>,
}

/// `ComponentHealth`: a tree of component health.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ComponentHealth {
    /// `healthy = 1`.
    #[prost(bool, tag = "1")]
    pub healthy: bool,
    /// `start_time_unix_nano = 2`.
    #[prost(fixed64, tag = "2")]
    pub start_time_unix_nano: u64,
    /// `last_error = 3`.
    #[prost(string, tag = "3")]
    pub last_error: String,
    /// `status = 4`.
    #[prost(string, tag = "4")]
    pub status: String,
    /// `status_time_unix_nano = 5`.
    #[prost(fixed64, tag = "5")]
    pub status_time_unix_nano: u64,
    /// `component_health_map = 6`.
    #[prost(btree_map = "string, message", tag = "6")]
    pub component_health_map: std::collections::BTreeMap<String, ComponentHealth>,
    /// `attributes = 7`.
    #[prost(message, repeated, tag = "7")]
    pub attributes: Vec<KeyValue>,
}

/// `EffectiveConfig`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EffectiveConfig {
    /// `config_map = 1`.
    #[prost(message, optional, tag = "1")]
    pub config_map: Option<AgentConfigMap>,
}

/// `AgentConfigMap`: file name → file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentConfigMap {
    /// `config_map = 1`.
    #[prost(btree_map = "string, message", tag = "1")]
    pub config_map: std::collections::BTreeMap<String, AgentConfigFile>,
}

/// `AgentConfigFile`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentConfigFile {
    /// `body = 1`.
    #[prost(bytes = "vec", tag = "1")]
    pub body: Vec<u8>,
    /// `content_type = 2`.
    #[prost(string, tag = "2")]
    pub content_type: String,
}

/// `RemoteConfigStatus`: what the collector did with the last remote config.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RemoteConfigStatus {
    /// `last_remote_config_hash = 1`.
    #[prost(bytes = "vec", tag = "1")]
    pub last_remote_config_hash: Vec<u8>,
    /// `status = 2`: `RemoteConfigStatuses` (0 UNSET, 1 APPLIED, 2 APPLYING, 3 FAILED).
    #[prost(int32, tag = "2")]
    pub status: i32,
    /// `error_message = 3`.
    #[prost(string, tag = "3")]
    pub error_message: String,
}

/// `ServerToAgent`: fleet-edge's answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ServerToAgent {
    /// `instance_uid = 1`.
    #[prost(bytes = "vec", tag = "1")]
    pub instance_uid: Vec<u8>,
    /// `error_response = 2`.
    #[prost(message, optional, tag = "2")]
    pub error_response: Option<ServerErrorResponse>,
    /// `remote_config = 3`.
    #[prost(message, optional, tag = "3")]
    pub remote_config: Option<AgentRemoteConfig>,
    /// `flags = 6`: `ServerToAgentFlags` bits.
    #[prost(uint64, tag = "6")]
    pub flags: u64,
    /// `capabilities = 7`: `ServerCapabilities` bits.
    #[prost(uint64, tag = "7")]
    pub capabilities: u64,
    /// `agent_identification = 8`.
    #[prost(message, optional, tag = "8")]
    pub agent_identification: Option<AgentIdentification>,
    /// `custom_capabilities = 10`.
    #[prost(message, optional, tag = "10")]
    pub custom_capabilities: Option<CustomCapabilities>,
}

/// `ServerToAgentFlags_ReportFullState`.
pub const FLAG_REPORT_FULL_STATE: u64 = 0x1;
/// `ServerCapabilities_AcceptsStatus`.
pub const SERVER_ACCEPTS_STATUS: u64 = 0x1;
/// `ServerCapabilities_OffersRemoteConfig`.
pub const SERVER_OFFERS_REMOTE_CONFIG: u64 = 0x2;
/// `ServerCapabilities_AcceptsEffectiveConfig`.
pub const SERVER_ACCEPTS_EFFECTIVE_CONFIG: u64 = 0x4;

/// `ServerErrorResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ServerErrorResponse {
    /// `type = 1`: `ServerErrorResponseType` (0 Unknown, 1 BadRequest, 2 Unavailable).
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// `error_message = 2`.
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// `ServerErrorResponseType_BadRequest`.
pub const ERROR_BAD_REQUEST: i32 = 1;
/// `ServerErrorResponseType_Unavailable`.
pub const ERROR_UNAVAILABLE: i32 = 2;

/// `AgentIdentification`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentIdentification {
    /// `new_instance_uid = 1`.
    #[prost(bytes = "vec", tag = "1")]
    pub new_instance_uid: Vec<u8>,
}

/// `AgentRemoteConfig`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentRemoteConfig {
    /// `config = 1`.
    #[prost(message, optional, tag = "1")]
    pub config: Option<AgentConfigMap>,
    /// `config_hash = 2`.
    #[prost(bytes = "vec", tag = "2")]
    pub config_hash: Vec<u8>,
}

/// `CustomCapabilities`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CustomCapabilities {
    /// `capabilities = 1`.
    #[prost(string, repeated, tag = "1")]
    pub capabilities: Vec<String>,
}

/// `AgentCapabilities` names by bit, as Fleet Server writes them (the enum name without its
/// `AgentCapabilities_` prefix).
pub const AGENT_CAPABILITIES: [(u64, &str); 16] = [
    (0x1, "ReportsStatus"),
    (0x2, "AcceptsRemoteConfig"),
    (0x4, "ReportsEffectiveConfig"),
    (0x8, "AcceptsPackages"),
    (0x10, "ReportsPackageStatuses"),
    (0x20, "ReportsOwnTraces"),
    (0x40, "ReportsOwnMetrics"),
    (0x80, "ReportsOwnLogs"),
    (0x100, "AcceptsOpAMPConnectionSettings"),
    (0x200, "AcceptsOtherConnectionSettings"),
    (0x400, "AcceptsRestartCommand"),
    (0x800, "ReportsHealth"),
    (0x1000, "ReportsRemoteConfig"),
    (0x2000, "ReportsHeartbeat"),
    (0x4000, "ReportsAvailableComponents"),
    (0x8000, "ReportsConnectionSettingsStatus"),
];
