//! The names of the settings of [`SETTINGS`](super::settings::SETTINGS), one per flag or
//! environment variable.

/// Identifies one setting of [`SETTINGS`](super::settings::SETTINGS).
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
    /// `--self-signed-key-type`
    SelfSignedKeyType,
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
    /// `--max-file-storage-size`
    MaxFileStorageSize,
    /// `--file-retention`
    FileRetention,
    /// `--file-storage-cap`
    FileStorageCap,
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
    /// `--agent-offline-after`: checkin age after which an agent is `offline`.
    AgentOfflineAfter,
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
    /// `--backend-timeout`
    BackendTimeout,
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
    /// `--downloads-dir`
    DownloadsDir,
    /// `--pgp-dir`
    PgpDir,
    /// `--pgp-upstream-url`
    PgpUpstreamUrl,
}
