//! THE table of settings: every flag and environment variable fleet-edge accepts, with its
//! default, help text, whether the Fleet Server policy may override it (per the Elastic docs in
//! `seeds/000_*.txt`, "Policy and CLI precedence") and whether it is a secret. `--help`, the
//! argument/environment resolution (`args.rs`) and `--print-config` are all generated from it,
//! so they cannot drift. Defaults are strings parsed by the same code as user input.

/// Identifies one setting of [`SETTINGS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SettingId {
    /// `--fleet-server-es`
    EsHosts,
    /// `--fleet-server-es-ca`
    EsCa,
    /// `--fleet-server-es-ca-trusted-fingerprint`
    EsCaTrustedFingerprint,
    /// `--fleet-server-es-cert`
    EsCert,
    /// `--fleet-server-es-cert-key`
    EsCertKey,
    /// `--fleet-server-es-insecure`
    EsInsecure,
    /// `--fleet-server-service-token`
    ServiceToken,
    /// `--fleet-server-service-token-path`
    ServiceTokenPath,
    /// `--header` / `FLEET_HEADERS` / `FLEET_HEADER`
    EsHeaders,
    /// `--fleet-server-policy`
    PolicyId,
    /// `--fleet-server-cert`
    Cert,
    /// `--fleet-server-cert-key`
    CertKey,
    /// `--fleet-server-cert-key-passphrase`
    CertKeyPassphrase,
    /// `--certificate-authorities`
    CertificateAuthorities,
    /// `--fleet-server-client-auth`
    ClientAuth,
    /// `--fleet-server-host`
    Host,
    /// `--fleet-server-port`
    Port,
    /// `--fleet-server-timeout`
    StartupTimeout,
    /// `FLEET_URL` (environment only)
    FleetUrl,
    /// `--fleet-server-insecure-http`
    InsecureHttp,
    /// `FLEET_SERVER_ENABLE` (environment only, accepted for container compatibility)
    Enable,
    /// `--data-dir`
    DataDir,
    /// `--log-level`
    LogLevel,
    /// `--log-format`
    LogFormat,
    /// `--max-connections`
    MaxConnections,
    /// `--backend-workers`
    BackendWorkers,
    /// `--max-agents`
    MaxAgents,
    /// `--management-host`
    ManagementHost,
    /// `--management-port`
    ManagementPort,
    /// `--http-enabled`: the monitoring endpoint (`/stats`, `/metrics`, `/state`).
    HttpEnabled,
    /// `--http-host`.
    HttpHost,
    /// `--http-port`.
    HttpPort,
    /// `--max-header-bytes`
    MaxHeaderBytes,
    /// `--handshake-timeout`
    HandshakeTimeout,
    /// `--header-timeout`
    HeaderTimeout,
    /// `--idle-timeout`
    IdleTimeout,
    /// `--write-stall-timeout`
    WriteStallTimeout,
    /// `--drain-timeout`
    DrainTimeout,
    /// `--checkin-long-poll`
    CheckinLongPoll,
    /// `--checkin-jitter`
    CheckinJitter,
    /// `--checkin-max-poll`
    CheckinMaxPoll,
    /// `--server-version`
    ServerVersion,
    /// `--default-output-type`
    DefaultOutputType,
    /// `--default-output-hosts`
    DefaultOutputHosts,
    /// `--default-output-api-key`
    DefaultOutputApiKey,
    /// `--default-output-ssl-certificate-authorities`
    DefaultOutputSslCas,
    /// `--default-output-ssl-certificate`
    DefaultOutputSslCert,
    /// `--default-output-ssl-key`
    DefaultOutputSslKey,
}

/// How a setting's value is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One value: `--flag VALUE` or `--flag=VALUE`.
    Value,
    /// One value holding a comma-separated list.
    List,
    /// A boolean: `--flag` (or `--flag=true|false`); environment `1/true/yes/y` or `0/false/no/n`.
    Bool,
    /// A flag that may be repeated, each occurrence adding one value.
    Repeated,
}

/// The `--help` section a setting is listed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// "Fleet Server to Elasticsearch" (seeds' first tables).
    Elasticsearch,
    /// "Agent to Fleet Server" (seeds' second tables).
    Agents,
    /// fleet-edge's own runtime settings.
    Runtime,
}

impl Section {
    /// The heading printed by `--help`.
    pub fn title(self) -> &'static str {
        match self {
            Section::Elasticsearch => "Fleet Server to Elasticsearch",
            Section::Agents => "Agent to Fleet Server",
            Section::Runtime => "fleet-edge runtime",
        }
    }
}

/// One row of the settings table.
#[derive(Debug)]
pub struct SettingSpec {
    /// Which setting this is.
    pub id: SettingId,
    /// The long flag, or `None` for environment-only settings.
    pub flag: Option<&'static str>,
    /// Environment variables, first wins; the rest are fallbacks.
    pub envs: &'static [&'static str],
    /// Placeholder for the value in `--help`.
    pub value_name: &'static str,
    /// The default, in the same syntax as user input; `None` = unset.
    pub default: Option<&'static str>,
    /// One or two sentences for `--help`.
    pub help: &'static str,
    /// How the value is given.
    pub kind: Kind,
    /// The Fleet Server policy may override it after bootstrap (seeds: "Can be overridden by
    /// policy? Yes"); `false` means CLI or environment only.
    pub policy_overridable: bool,
    /// Never printed: `--print-config` shows `<redacted>`.
    pub secret: bool,
    /// `--help` section.
    pub section: Section,
}

impl SettingSpec {
    /// The name used in messages: the flag, or the first environment variable.
    pub fn name(&self) -> &'static str {
        self.flag
            .or_else(|| self.envs.first().copied())
            .unwrap_or("?")
    }
}

/// The flags that are commands rather than settings: (long, short, help).
pub const COMMAND_FLAGS: &[(&str, Option<&str>, &str)] = &[
    (
        "--print-config",
        None,
        "Print every setting with its value and origin (secrets redacted), then exit.",
    ),
    ("--help", Some("-h"), "Print this help, then exit."),
    ("--version", Some("-V"), "Print the version, then exit."),
];

/// The spec of one setting.
pub fn spec(id: SettingId) -> &'static SettingSpec {
    // The table holds every id (checked by a unit test); the fallback is never reached.
    SETTINGS.iter().find(|s| s.id == id).unwrap_or(&SETTINGS[0])
}

use Kind::*;
use Section::*;
use SettingId as Id;

/// Every setting, in `--help` order.
pub static SETTINGS: &[SettingSpec] = &[
    // ---- Fleet Server to Elasticsearch ----
    SettingSpec {
        id: Id::EsHosts,
        flag: Some("--fleet-server-es"),
        envs: &["FLEET_SERVER_ELASTICSEARCH_HOST", "ELASTICSEARCH_HOST"],
        value_name: "URL[,URL...]",
        default: None,
        help: "Elasticsearch URL(s) where Fleet Server keeps its state, comma-separated. Without it fleet-edge uses its embedded local store.",
        kind: List,
        policy_overridable: true,
        secret: false,
        section: Elasticsearch,
    },
    SettingSpec {
        id: Id::EsCa,
        flag: Some("--fleet-server-es-ca"),
        envs: &["FLEET_SERVER_ELASTICSEARCH_CA", "ELASTICSEARCH_CA"],
        value_name: "PATH[,PATH...]",
        default: None,
        help: "CA certificate file(s) (PEM) to validate the Elasticsearch certificate.",
        kind: List,
        policy_overridable: true,
        secret: false,
        section: Elasticsearch,
    },
    SettingSpec {
        id: Id::EsCaTrustedFingerprint,
        flag: Some("--fleet-server-es-ca-trusted-fingerprint"),
        envs: &["FLEET_SERVER_ELASTICSEARCH_CA_TRUSTED_FINGERPRINT"],
        value_name: "HEX",
        default: None,
        help: "SHA-256 fingerprint (hex) of the CA that signed the Elasticsearch certificate; that CA is trusted when Elasticsearch presents it.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Elasticsearch,
    },
    SettingSpec {
        id: Id::EsCert,
        flag: Some("--fleet-server-es-cert"),
        envs: &["FLEET_SERVER_ES_CERT"],
        value_name: "PATH",
        default: None,
        help: "Client certificate (PEM) for mTLS to Elasticsearch.",
        kind: Value,
        policy_overridable: true,
        secret: false,
        section: Elasticsearch,
    },
    SettingSpec {
        id: Id::EsCertKey,
        flag: Some("--fleet-server-es-cert-key"),
        envs: &["FLEET_SERVER_ES_CERT_KEY"],
        value_name: "PATH",
        default: None,
        help: "Private key (PEM) of --fleet-server-es-cert.",
        kind: Value,
        policy_overridable: true,
        secret: false,
        section: Elasticsearch,
    },
    SettingSpec {
        id: Id::EsInsecure,
        flag: Some("--fleet-server-es-insecure"),
        envs: &["FLEET_SERVER_ELASTICSEARCH_INSECURE"],
        value_name: "",
        default: Some("false"),
        help: "Do not verify the Elasticsearch certificate (not recommended).",
        kind: Bool,
        policy_overridable: false,
        secret: false,
        section: Elasticsearch,
    },
    SettingSpec {
        id: Id::ServiceToken,
        flag: Some("--fleet-server-service-token"),
        envs: &["FLEET_SERVER_SERVICE_TOKEN"],
        value_name: "TOKEN",
        default: None,
        help: "Service token Fleet Server uses to authenticate with Elasticsearch.",
        kind: Value,
        policy_overridable: false,
        secret: true,
        section: Elasticsearch,
    },
    SettingSpec {
        id: Id::ServiceTokenPath,
        flag: Some("--fleet-server-service-token-path"),
        envs: &["FLEET_SERVER_SERVICE_TOKEN_PATH"],
        value_name: "PATH",
        default: None,
        help: "File holding the service token; mutually exclusive with --fleet-server-service-token.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Elasticsearch,
    },
    SettingSpec {
        id: Id::EsHeaders,
        flag: Some("--header"),
        envs: &["FLEET_HEADERS", "FLEET_HEADER"],
        value_name: "NAME=VALUE",
        default: None,
        help: "Extra HTTP header on every Elasticsearch request; repeat the flag for several. FLEET_HEADERS holds a comma-separated list (values may be double-quoted), FLEET_HEADER a single NAME=VALUE.",
        kind: Repeated,
        policy_overridable: true,
        secret: false,
        section: Elasticsearch,
    },
    SettingSpec {
        id: Id::PolicyId,
        flag: Some("--fleet-server-policy"),
        envs: &["FLEET_SERVER_POLICY_ID", "FLEET_SERVER_POLICY"],
        value_name: "ID",
        default: None,
        help: "Fleet Server policy ID (unset: the policy marked default_fleet_server).",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Elasticsearch,
    },
    // ---- Agent to Fleet Server ----
    SettingSpec {
        id: Id::Cert,
        flag: Some("--fleet-server-cert"),
        envs: &["FLEET_SERVER_CERT"],
        value_name: "PATH",
        default: None,
        help: "TLS certificate chain (PEM) Fleet Server presents to agents. Without it a self-signed CA and certificate are generated in <data-dir>/certs (not recommended for production).",
        kind: Value,
        policy_overridable: true,
        secret: false,
        section: Agents,
    },
    SettingSpec {
        id: Id::CertKey,
        flag: Some("--fleet-server-cert-key"),
        envs: &["FLEET_SERVER_CERT_KEY"],
        value_name: "PATH",
        default: None,
        help: "Private key (PEM) of --fleet-server-cert: PKCS#8, PKCS#1, SEC1 or encrypted PKCS#8.",
        kind: Value,
        policy_overridable: true,
        secret: false,
        section: Agents,
    },
    SettingSpec {
        id: Id::CertKeyPassphrase,
        flag: Some("--fleet-server-cert-key-passphrase"),
        envs: &["FLEET_SERVER_CERT_KEY_PASSPHRASE"],
        value_name: "PATH",
        default: None,
        help: "Path to a file holding the passphrase of an encrypted --fleet-server-cert-key.",
        kind: Value,
        policy_overridable: true,
        secret: false,
        section: Agents,
    },
    SettingSpec {
        id: Id::CertificateAuthorities,
        flag: Some("--certificate-authorities"),
        envs: &["FLEET_CA"],
        value_name: "PATH[,PATH...]",
        default: None,
        help: "CA certificate file(s) (PEM), comma-separated, that agent client certificates must chain to (mTLS).",
        kind: List,
        policy_overridable: true,
        secret: false,
        section: Agents,
    },
    SettingSpec {
        id: Id::ClientAuth,
        flag: Some("--fleet-server-client-auth"),
        envs: &["FLEET_SERVER_CLIENT_AUTH"],
        value_name: "none|optional|required",
        default: Some("none"),
        help: "Client certificate authentication of agents: none, optional (verified if presented) or required.",
        kind: Value,
        policy_overridable: true,
        secret: false,
        section: Agents,
    },
    SettingSpec {
        id: Id::Host,
        flag: Some("--fleet-server-host"),
        envs: &["FLEET_SERVER_HOST"],
        value_name: "HOST",
        default: Some("0.0.0.0"),
        help: "Address the Fleet Server HTTP endpoint binds to (localhost when --fleet-server-insecure-http is given without a host).",
        kind: Value,
        policy_overridable: true,
        secret: false,
        section: Agents,
    },
    SettingSpec {
        id: Id::Port,
        flag: Some("--fleet-server-port"),
        envs: &["FLEET_SERVER_PORT"],
        value_name: "PORT",
        default: Some("8220"),
        help: "Port the Fleet Server HTTP endpoint binds to; 0 picks a free port.",
        kind: Value,
        policy_overridable: true,
        secret: false,
        section: Agents,
    },
    SettingSpec {
        id: Id::StartupTimeout,
        flag: Some("--fleet-server-timeout"),
        envs: &["FLEET_SERVER_TIMEOUT"],
        value_name: "DURATION",
        default: Some("2m"),
        help: "How long to wait for Fleet Server to be ready at startup (Go duration such as 90s, 2m, 1m30s; 0 means the default; negative means no limit).",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Agents,
    },
    SettingSpec {
        id: Id::FleetUrl,
        flag: None,
        envs: &["FLEET_URL"],
        value_name: "URL",
        default: None,
        help: "URL Fleet Server uses to reach itself during bootstrap, http(s)://host[:port][/path]; its host must be in the certificate's SANs.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Agents,
    },
    SettingSpec {
        id: Id::InsecureHttp,
        flag: Some("--fleet-server-insecure-http"),
        envs: &["FLEET_SERVER_INSECURE_HTTP"],
        value_name: "",
        default: Some("false"),
        help: "Serve Fleet Server over plain HTTP, without TLS (not with a certificate).",
        kind: Bool,
        policy_overridable: false,
        secret: false,
        section: Agents,
    },
    SettingSpec {
        id: Id::Enable,
        flag: None,
        envs: &["FLEET_SERVER_ENABLE"],
        value_name: "BOOL",
        default: Some("false"),
        help: "Accepted for Elastic Agent container compatibility; fleet-edge always runs Fleet Server.",
        kind: Bool,
        policy_overridable: false,
        secret: false,
        section: Agents,
    },
    // ---- fleet-edge runtime ----
    SettingSpec {
        id: Id::DataDir,
        flag: Some("--data-dir"),
        envs: &["FLEET_EDGE_DATA_DIR"],
        value_name: "PATH",
        default: Some("fleet-edge-data"),
        help: "Directory for the local store and generated certificates.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::LogLevel,
        flag: Some("--log-level"),
        envs: &["FLEET_EDGE_LOG_LEVEL"],
        value_name: "trace|debug|info|warn|error",
        default: Some("info"),
        help: "Log level (warning is accepted for warn).",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::LogFormat,
        flag: Some("--log-format"),
        envs: &["FLEET_EDGE_LOG_FORMAT"],
        value_name: "text|json",
        default: Some("text"),
        help: "Log line format: human-readable text or ECS JSON.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::MaxAgents,
        flag: Some("--max-agents"),
        envs: &["FLEET_EDGE_MAX_AGENTS"],
        value_name: "N",
        default: Some("0"),
        help: "Fleet size the route limits are sized for (server.limits.max_agents): N > 0 picks Fleet Server's table for N agents, 0 picks by available memory, negative uses the code defaults.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::ManagementHost,
        flag: Some("--management-host"),
        envs: &["FLEET_EDGE_MANAGEMENT_HOST"],
        value_name: "HOST",
        default: Some("127.0.0.1"),
        help: "Address of the management API (embedded mode; bearer token in <data-dir>/admin-token). Plain HTTP on loopback; any other address is served over TLS with the server's certificate (refused with --fleet-server-insecure-http).",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::ManagementPort,
        flag: Some("--management-port"),
        envs: &["FLEET_EDGE_MANAGEMENT_PORT"],
        value_name: "PORT",
        default: Some("8222"),
        help: "Port of the management API; 0 picks a free port (the CLI finds it in <data-dir>/management-url).",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::HttpEnabled,
        flag: Some("--http-enabled"),
        envs: &["FLEET_SERVER_HTTP_ENABLED"],
        value_name: "",
        default: Some("false"),
        help: "Serve the monitoring endpoint (Elastic's http.enabled): GET /stats (libbeat-shaped JSON), /metrics (Prometheus text) and /state, plain HTTP, no authentication.",
        kind: Bool,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::HttpHost,
        flag: Some("--http-host"),
        envs: &["FLEET_SERVER_HTTP_HOST"],
        value_name: "HOST",
        default: Some("localhost"),
        help: "Address of the monitoring endpoint (Elastic's http.host).",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::HttpPort,
        flag: Some("--http-port"),
        envs: &["FLEET_SERVER_HTTP_PORT"],
        value_name: "PORT",
        default: Some("5066"),
        help: "Port of the monitoring endpoint (Elastic's http.port); 0 picks a free one (logged).",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::MaxConnections,
        flag: Some("--max-connections"),
        envs: &["FLEET_EDGE_MAX_CONNECTIONS"],
        value_name: "N",
        default: Some("10000"),
        help: "Most simultaneous agent connections; above it new connections get 429 with Retry-After.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::BackendWorkers,
        flag: Some("--backend-workers"),
        envs: &["FLEET_EDGE_BACKEND_WORKERS"],
        value_name: "N",
        default: None,
        help: "Threads running blocking store calls (1 to 64); default 1 with the embedded store, 4 with Elasticsearch.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::MaxHeaderBytes,
        flag: Some("--max-header-bytes"),
        envs: &["FLEET_EDGE_MAX_HEADER_BYTES"],
        value_name: "BYTES",
        default: Some("8192"),
        help: "Largest accepted HTTP request head (1024 to 1048576).",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::HandshakeTimeout,
        flag: Some("--handshake-timeout"),
        envs: &["FLEET_EDGE_HANDSHAKE_TIMEOUT"],
        value_name: "DURATION",
        default: Some("10s"),
        help: "Time allowed for a TLS handshake.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::HeaderTimeout,
        flag: Some("--header-timeout"),
        envs: &["FLEET_EDGE_HEADER_TIMEOUT"],
        value_name: "DURATION",
        default: Some("5s"),
        help: "Time allowed to receive a request's headers.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::IdleTimeout,
        flag: Some("--idle-timeout"),
        envs: &["FLEET_EDGE_IDLE_TIMEOUT"],
        value_name: "DURATION",
        default: Some("35s"),
        help: "How long an idle keep-alive connection stays open.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::WriteStallTimeout,
        flag: Some("--write-stall-timeout"),
        envs: &["FLEET_EDGE_WRITE_STALL_TIMEOUT"],
        value_name: "DURATION",
        default: Some("60s"),
        help: "How long a response may make no write progress before the connection is closed.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::DrainTimeout,
        flag: Some("--drain-timeout"),
        envs: &["FLEET_EDGE_DRAIN_TIMEOUT"],
        value_name: "DURATION",
        default: Some("10s"),
        help: "Graceful shutdown: how long to wait for in-flight requests.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::CheckinLongPoll,
        flag: Some("--checkin-long-poll"),
        envs: &["FLEET_EDGE_CHECKIN_LONG_POLL"],
        value_name: "DURATION",
        default: Some("5m"),
        help: "How long a checkin is held when nothing changes (server.timeouts.checkin_long_poll).",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::CheckinJitter,
        flag: Some("--checkin-jitter"),
        envs: &["FLEET_EDGE_CHECKIN_JITTER"],
        value_name: "DURATION",
        default: Some("30s"),
        help: "Random time subtracted from each long poll; 0 disables (server.timeouts.checkin_jitter).",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::CheckinMaxPoll,
        flag: Some("--checkin-max-poll"),
        envs: &["FLEET_EDGE_CHECKIN_MAX_POLL"],
        value_name: "DURATION",
        default: Some("1h"),
        help: "Cap on the poll_timeout an agent may ask for (server.timeouts.checkin_max_poll).",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::ServerVersion,
        flag: Some("--server-version"),
        envs: &["FLEET_EDGE_SERVER_VERSION"],
        value_name: "MAJOR.MINOR.PATCH",
        default: Some(crate::server_version::BUILT_IN_STR),
        help: "Fleet Server version this server claims: agents newer than its MAJOR.MINOR are refused (Elastic's rule), /api/status reports it, and Elasticsearch must be at least MAJOR.MINOR.0. Raise it to admit agents of a newer release; it cannot be lowered.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::DefaultOutputType,
        flag: Some("--default-output-type"),
        envs: &["FLEET_EDGE_DEFAULT_OUTPUT_TYPE"],
        value_name: "elasticsearch|logstash",
        default: Some("elasticsearch"),
        help: "Embedded mode, first start only: the type of the default policy's output.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::DefaultOutputHosts,
        flag: Some("--default-output-hosts"),
        envs: &["FLEET_EDGE_DEFAULT_OUTPUT_HOSTS"],
        value_name: "HOST[,HOST...]",
        default: None,
        help: "Embedded mode, first start only: where agents of the default policy send data; Elasticsearch URLs (https://es:9200) or Logstash host:port. Without it the default policy's output is written not configured (no hosts) until you edit the policy file.",
        kind: List,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::DefaultOutputApiKey,
        flag: Some("--default-output-api-key"),
        envs: &["FLEET_EDGE_DEFAULT_OUTPUT_API_KEY"],
        value_name: "ID:KEY",
        default: None,
        help: "Embedded mode, first start only: the Elasticsearch API key (id:key) agents of the default policy write with (there is no cluster to mint per-agent keys). Required for an elasticsearch output.",
        kind: Value,
        policy_overridable: false,
        secret: true,
        section: Runtime,
    },
    SettingSpec {
        id: Id::DefaultOutputSslCas,
        flag: Some("--default-output-ssl-certificate-authorities"),
        envs: &["FLEET_EDGE_DEFAULT_OUTPUT_SSL_CERTIFICATE_AUTHORITIES"],
        value_name: "PATH[,PATH...]",
        default: None,
        help: "Embedded mode, first start only: CA certificate file(s) (PEM) agents trust for the default output; embedded in the policy as PEM (ssl.certificate_authorities).",
        kind: List,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::DefaultOutputSslCert,
        flag: Some("--default-output-ssl-certificate"),
        envs: &["FLEET_EDGE_DEFAULT_OUTPUT_SSL_CERTIFICATE"],
        value_name: "PATH",
        default: None,
        help: "Embedded mode, first start only: client certificate (PEM) agents present to the default output (Logstash mutual TLS); embedded as ssl.certificate.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
    SettingSpec {
        id: Id::DefaultOutputSslKey,
        flag: Some("--default-output-ssl-key"),
        envs: &["FLEET_EDGE_DEFAULT_OUTPUT_SSL_KEY"],
        value_name: "PATH",
        default: None,
        help: "Embedded mode, first start only: unencrypted private key (PEM) of --default-output-ssl-certificate; embedded as ssl.key, so the policy file is written mode 0600.",
        kind: Value,
        policy_overridable: false,
        secret: false,
        section: Runtime,
    },
];
