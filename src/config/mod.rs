//! THE one place for configuration: every CLI flag (pico-args) and environment variable, their
//! defaults, precedence (defaults < environment < CLI, kept per value as an [`Origin`]), startup
//! validation with every problem collected, `--help` and `--print-config`.
//!
//! Files: `settings.rs` (the one table everything is generated from), `args.rs` (precedence and
//! argument handling), `values.rs` (value syntaxes), `build.rs` (typed [`Config`], loading
//! certificates and keys through [`crate::tls`]), `render.rs` (help and print-config). A leaf:
//! depends only on `tls` (and `build_info` for the version line). `main` calls [`from_process`],
//! prints [`ConfigErrors`] and exits 2.
//!
//! After bootstrap the Fleet Server policy may override exactly the settings whose
//! [`SettingSpec::policy_overridable`] is true (applied elsewhere; this module only records it).

mod args;
mod build;
mod environment;
pub mod file_settings;
mod ids;
mod render;
mod settings;
mod values;

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

use crate::tls::{ClientAuth, Fingerprint, TlsMaterial};

pub use args::Origin;
pub use environment::{closest, unknown_variable_warnings, IGNORED_CONTAINER_VARIABLES};
pub use settings::{spec, Kind, Section, SettingId, SettingSpec, COMMAND_FLAGS, SETTINGS};
pub use values::{parse_bool, parse_duration, parse_http_url, GoDuration, HttpUrl};

/// What the process should do.
#[derive(Debug)]
pub enum Command {
    /// Run the server with this configuration.
    Run(Box<Config>),
    /// Print this help text and exit 0.
    Help(String),
    /// Print this version line and exit 0.
    Version(String),
    /// Print this effective configuration (secrets redacted) and exit 0.
    PrintConfig(String),
}

/// Every configuration problem found, one sentence each; `main` prints them all and exits 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(problem)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A secret string (the service token). `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The secret value itself; do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable text lines.
    Text,
    /// ECS JSON lines.
    Json,
}

/// The validated configuration. Files named by flags are already loaded and parsed.
#[derive(Clone, Debug)]
pub struct Config {
    /// The agent-facing listener.
    pub server: ServerSettings,
    /// Elasticsearch, when `--fleet-server-es` is given; otherwise the local store is used.
    pub es: Option<EsSettings>,
    /// `--fleet-server-policy`; `None` means the policy marked `default_fleet_server`.
    pub policy_id: Option<String>,
    /// `FLEET_URL`, canonicalised (`http(s)://host[:port][/path]`).
    pub fleet_url: Option<String>,
    /// `--fleet-server-timeout`: how long startup may wait for readiness; `None` = no limit
    /// (a negative value was given).
    pub startup_timeout: Option<Duration>,
    /// `--data-dir`: local store and generated certificates.
    pub data_dir: PathBuf,
    /// `--log-level`.
    pub log_level: log::LevelFilter,
    /// `--log-format`.
    pub log_format: LogFormat,
    /// `--server-version`: the Fleet Server version this server claims (see
    /// [`crate::server_version`] for everything it governs).
    pub server_version: crate::server_version::ServerVersion,
    /// `--default-output-*`: the output of the default policy written on the first start in
    /// embedded mode; `None` when no hosts were given (the output is then written not
    /// configured).
    pub default_output: Option<DefaultOutput>,
    /// The artifact mirror and the PGP key directory (issue 17).
    pub files: FilesSettings,
    /// Every setting's effective value (redacted where secret) and origin, in table order.
    pub settings: Vec<SettingValue>,
    /// Problems that do not stop the server, one sentence each; `main` logs them at startup.
    pub warnings: Vec<String>,
}

impl Config {
    /// The `--print-config` text: every setting with its value and origin, secrets redacted.
    pub fn print_config(&self) -> String {
        render::print_config(&self.settings)
    }

    /// Where a setting's value came from.
    pub fn origin(&self, id: SettingId) -> Origin {
        self.settings
            .iter()
            .find(|s| s.id == id)
            .map_or(Origin::Default, |s| s.origin)
    }
}

/// What the agent listener serves from disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilesSettings {
    /// `--downloads-dir`: the artifact mirror (`None`: off; embedded mode defaults it to
    /// `<data-dir>/downloads`).
    pub mirror_dir: Option<PathBuf>,
    /// `--pgp-dir` (`<data-dir>/pgp` unless given).
    pub pgp_dir: PathBuf,
    /// `--pgp-upstream-url`.
    pub pgp_upstream_url: String,
}

/// One setting's effective value as shown by `--print-config`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingValue {
    /// Which setting.
    pub id: SettingId,
    /// The value as printed (`<redacted>` for secrets, `(unset)` when unset).
    pub shown: String,
    /// Where it came from.
    pub origin: Origin,
}

/// The agent-facing listener.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Bind host (IPv6 without brackets). Default `0.0.0.0`; `localhost` with
    /// `--fleet-server-insecure-http` and no explicit host, as the Elastic Agent does.
    pub host: String,
    /// Bind port; 0 picks a free port.
    pub port: u16,
    /// How connections are secured.
    pub tls: ServerTls,
    /// Client certificate authentication of agents.
    pub client_auth: ClientAuth,
    /// `--self-signed-key-type`: the key type of generated certificates.
    pub self_signed_key: crate::tls::self_signed::SelfSignedKey,
    /// A policy file with an Elastic Defend integration, found by embedded mode at start (with
    /// `auto`, generated certificates are then RSA).
    pub defend_policy: Option<PathBuf>,
    /// Authorities client certificates must chain to (`--certificate-authorities`).
    pub client_cas: Vec<CertificateDer<'static>>,
    /// The files `tls` and `client_cas` were loaded from, which SIGHUP re-reads.
    pub tls_files: TlsFiles,
    /// Most simultaneous connections.
    pub max_connections: usize,
    /// `--backend-workers` (`None`: by store kind, `net::backend_workers`).
    pub backend_workers: Option<usize>,
    /// Largest accepted request head, in bytes.
    pub max_header_bytes: usize,
    /// Connection and long-poll timeouts.
    pub timeouts: Timeouts,
    /// `server.limits.max_agents`: which sizing table the route limits use (0: by memory).
    pub max_agents: i64,
    /// File transfer: `max_file_storage_size`, and the embedded store's retention and cap.
    pub files: file_settings::FileSettings,
    /// Management API bind host (embedded mode).
    pub management_host: String,
    /// Management API port (0: a free one).
    pub management_port: u16,
    /// Whether the monitoring endpoint is served.
    pub http_enabled: bool,
    /// Monitoring endpoint bind host.
    pub http_host: String,
    /// Monitoring endpoint port (0: a free one).
    pub http_port: u16,
    /// Checkin age after which an agent's status is `offline` (`--agent-offline-after`).
    pub agent_offline_after: Duration,
}

impl ServerSettings {
    /// `host:port` for binding, IPv6 bracketed (`[::1]:8220`).
    pub fn bind_address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The files the listener's certificate, key and client authorities come from (empty when they
/// were not given as files): what a reload (SIGHUP) reads again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--fleet-server-cert`.
    pub cert: Option<PathBuf>,
    /// `--fleet-server-cert-key`.
    pub key: Option<PathBuf>,
    /// `--fleet-server-cert-key-passphrase`.
    pub passphrase: Option<PathBuf>,
    /// `--certificate-authorities`.
    pub client_cas: Vec<PathBuf>,
}

/// How the listener is secured.
#[derive(Clone, Debug)]
pub enum ServerTls {
    /// `--fleet-server-cert` and `--fleet-server-cert-key`, loaded.
    Provided(TlsMaterial),
    /// No certificate given: use [`crate::tls::self_signed::load_or_create`] with these hosts
    /// (already valid SAN entries: localhost, loopback addresses, the bind host when it is a
    /// specific address, the `FLEET_URL` host and, from [`from_process`], the machine's name).
    SelfSigned {
        /// Names and addresses the generated certificate must cover.
        hosts: Vec<String>,
    },
    /// `--fleet-server-insecure-http`: no TLS at all.
    PlainHttp,
}

/// Connection and long-poll timeouts (`server.timeouts.*` in Fleet Server terms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TLS handshake (default 10s).
    pub handshake: Duration,
    /// Receiving a request head (default 5s).
    pub read_header: Duration,
    /// Idle keep-alive (default 35s).
    pub idle: Duration,
    /// No write progress (default 60s).
    pub write_stall: Duration,
    /// Graceful shutdown (default 10s).
    pub drain: Duration,
    /// A backend job's deadline for enroll, ack and audit (default 10s).
    pub backend: Duration,
    /// Default checkin hold time (default 5m).
    pub checkin_long_poll: Duration,
    /// Random subtraction from the hold time; zero disables (default 30s).
    pub checkin_jitter: Duration,
    /// Cap for an agent's `poll_timeout` (default 1h).
    pub checkin_max_poll: Duration,
}

/// How to reach Elasticsearch (the bootstrap output).
#[derive(Clone, Debug)]
pub struct EsSettings {
    /// Elasticsearch URLs, canonicalised (`http://` added when no scheme was given).
    pub hosts: Vec<String>,
    /// `--fleet-server-es-ca` paths (kept for the policy output's `ssl.certificate_authorities`).
    pub ca: Vec<PathBuf>,
    /// The certificates of those files, loaded.
    pub ca_certs: Vec<CertificateDer<'static>>,
    /// `--fleet-server-es-ca-trusted-fingerprint`.
    pub ca_trusted_fingerprint: Option<Fingerprint>,
    /// `--fleet-server-es-cert` + `--fleet-server-es-cert-key`, loaded.
    pub client_cert: Option<TlsMaterial>,
    /// `--fleet-server-es-insecure`: no certificate verification.
    pub insecure: bool,
    /// The service token (from the flag or read from the token file, trimmed). `None` only when
    /// neither was given, e.g. an Elasticsearch without security.
    pub service_token: Option<Secret>,
    /// Extra headers on every Elasticsearch request, in order.
    pub headers: Vec<(String, String)>,
    /// The Fleet Server version this server claims (`--server-version`): Elasticsearch must be
    /// at least its `major.minor.0`, and it is in every request's `User-Agent`.
    pub server_version: crate::server_version::ServerVersion,
}

/// The output type of [`DefaultOutput`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputType {
    /// `elasticsearch`: URLs and an API key.
    Elasticsearch,
    /// `logstash`: `host:port`s, optionally TLS.
    Logstash,
}

impl OutputType {
    /// The `type` member of the policy output.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputType::Elasticsearch => "elasticsearch",
            OutputType::Logstash => "logstash",
        }
    }
}

/// The default policy's output, as given by `--default-output-*` (validated; files read).
#[derive(Clone, Debug)]
pub struct DefaultOutput {
    /// `--default-output-type`.
    pub kind: OutputType,
    /// `--default-output-hosts`: URLs (Elasticsearch) or `host:port` (Logstash), canonical.
    pub hosts: Vec<String>,
    /// `--default-output-api-key` (`id:key`), Elasticsearch only.
    pub api_key: Option<Secret>,
    /// The PEM text of each `--default-output-ssl-certificate-authorities` file.
    pub certificate_authorities: Vec<String>,
    /// The PEM text of `--default-output-ssl-certificate`.
    pub certificate: Option<String>,
    /// The PEM text of `--default-output-ssl-key`.
    pub key: Option<Secret>,
}

/// Parses `args` (WITHOUT `argv[0]`) and the environment, given as a lookup so tests never touch
/// the process environment. `--help` and `--version` win over everything else (even errors).
pub fn parse(
    args: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, ConfigErrors> {
    let collected = args::collect(args, env);
    if collected.help {
        return Ok(Command::Help(render::help()));
    }
    if collected.version {
        return Ok(Command::Version(version()));
    }
    let print = collected.print_config;
    let config = build::build(collected.raw, collected.errors)?;
    if print {
        return Ok(Command::PrintConfig(config.print_config()));
    }
    Ok(Command::Run(Box::new(config)))
}

/// [`parse`] with the process's arguments and environment; adds the machine's host name to the
/// self-signed certificate's hosts.
#[allow(
    clippy::disallowed_methods,
    reason = "the one place the process environment is read"
)]
pub fn from_process() -> Result<Command, ConfigErrors> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut command = parse(args, &|name| std::env::var(name).ok())?;
    if let Command::Run(config) = &mut command {
        let names: Vec<String> = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect();
        config
            .warnings
            .extend(unknown_variable_warnings(names.iter().map(String::as_str)));
        if let ServerTls::SelfSigned { hosts } = &mut config.server.tls {
            if let Some(name) = system_hostname() {
                if crate::tls::self_signed::is_valid_host(&name) && !hosts.contains(&name) {
                    hosts.push(name);
                }
            }
        }
    }
    Ok(command)
}

/// The server's `--help` text (flags, environment variables, defaults).
pub fn help_text() -> String {
    render::help()
}

/// The `--version` line, newline included (see [`crate::build_info::version_line`]).
pub fn version() -> String {
    crate::build_info::version_line()
}

/// This machine's host name, if the OS tells it.
pub fn system_hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests;
