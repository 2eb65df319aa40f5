//! From raw strings with origins (`args.rs`) to the typed [`Config`]: parses every value, loads
//! every certificate, key, CA, passphrase and token file through `tls` (parse, don't validate),
//! checks the combinations, and collects EVERY problem as one sentence naming the flag or
//! environment variable that was used and the offending value or path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::server_version::{ServerVersion, BUILT_IN};
use crate::tls::{self, ClientAuth, Fingerprint, TlsError, TlsMaterial};

use super::args::{Origin, Raw};
use super::settings::{spec, SettingId as Id};
use super::values::{self, GoDuration};
use super::{
    Config, ConfigErrors, EsSettings, LogFormat, Secret, ServerSettings, ServerTls, SettingValue,
    Timeouts, TlsFiles,
};

mod output;

const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) fn build(raw: Vec<Raw>, errors: Vec<String>) -> Result<Config, ConfigErrors> {
    let mut b = Builder {
        raw,
        errors,
        warnings: Vec::new(),
    };

    let es_insecure = b.boolean(Id::EsInsecure);
    let insecure_http = b.boolean(Id::InsecureHttp);
    let _container_enable = b.boolean(Id::Enable);

    // Listener.
    let host_is_default = b.origin(Id::Host) == Origin::Default;
    let mut host = b
        .parsed(Id::Host, values::parse_bind_host)
        .unwrap_or_default();
    if insecure_http && host_is_default {
        host = "localhost".to_string();
        b.set_shown(
            Id::Host,
            "localhost",
            Origin::DerivedDefault("with --fleet-server-insecure-http"),
        );
    }
    let port = b.parsed(Id::Port, values::parse_port).unwrap_or_default();
    let client_auth = b
        .parsed(Id::ClientAuth, |s| {
            s.parse::<ClientAuth>().map_err(|e| e.to_string())
        })
        .unwrap_or(ClientAuth::None);
    let ca_paths = b.paths(Id::CertificateAuthorities);
    let client_cas = b.load_cas(Id::CertificateAuthorities, &ca_paths);
    if client_auth != ClientAuth::None && ca_paths.is_empty() {
        b.problem(
            Id::ClientAuth,
            format!("\"{client_auth}\" needs the CA certificates that agent certificates chain to; set --certificate-authorities (env FLEET_CA)"),
        );
    }
    if insecure_http && client_auth != ClientAuth::None {
        b.problem(
            Id::ClientAuth,
            format!("\"{client_auth}\" needs TLS, but --fleet-server-insecure-http turns TLS off"),
        );
    }
    let fleet_url = b.parsed_opt(Id::FleetUrl, |s| values::parse_http_url(s, None));
    let tls = b.server_tls(insecure_http, &host, fleet_url.as_ref());

    let timeouts = Timeouts {
        handshake: b.duration(Id::HandshakeTimeout, false),
        read_header: b.duration(Id::HeaderTimeout, false),
        idle: b.duration(Id::IdleTimeout, false),
        write_stall: b.duration(Id::WriteStallTimeout, false),
        drain: b.duration(Id::DrainTimeout, true),
        backend: b.duration(Id::BackendTimeout, false),
        checkin_long_poll: b.duration(Id::CheckinLongPoll, false),
        checkin_jitter: b.duration(Id::CheckinJitter, true),
        checkin_max_poll: b.duration(Id::CheckinMaxPoll, false),
    };
    if timeouts.checkin_long_poll > timeouts.checkin_max_poll {
        b.problem(
            Id::CheckinLongPoll,
            format!(
                "{:?} is longer than --checkin-max-poll ({:?})",
                timeouts.checkin_long_poll, timeouts.checkin_max_poll
            ),
        );
    }
    if !timeouts.checkin_jitter.is_zero() && timeouts.checkin_jitter >= timeouts.checkin_long_poll {
        b.problem(
            Id::CheckinJitter,
            format!(
                "{:?} must be shorter than --checkin-long-poll ({:?})",
                timeouts.checkin_jitter, timeouts.checkin_long_poll
            ),
        );
    }

    let tls_files = TlsFiles {
        cert: b.path(Id::Cert),
        key: b.path(Id::CertKey),
        passphrase: b.path(Id::CertKeyPassphrase),
        client_cas: ca_paths,
    };
    let self_signed_key = b
        .parsed(Id::SelfSignedKeyType, |s| s.parse())
        .unwrap_or_default();
    let mut server = ServerSettings {
        host,
        port,
        tls,
        client_auth,
        self_signed_key,
        defend_policy: None,
        client_cas,
        tls_files,
        max_connections: b
            .parsed(Id::MaxConnections, |s| values::parse_count(s, 1, 1_000_000))
            .unwrap_or(1),
        backend_workers: b.parsed_opt(Id::BackendWorkers, |s| values::parse_count(s, 1, 64)),
        max_header_bytes: b
            .parsed(Id::MaxHeaderBytes, |s| {
                values::parse_count(s, 1024, 1_048_576)
            })
            .unwrap_or(1024),
        timeouts,
        max_agents: b
            .parsed(Id::MaxAgents, |v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("{v:?} is not a whole number"))
            })
            .unwrap_or_default(),
        files: super::file_settings::FileSettings {
            max_file_size: b.parsed_opt(Id::MaxFileStorageSize, parse_bytes),
            retention: b.duration(Id::FileRetention, false),
            total_cap: b
                .parsed(Id::FileStorageCap, parse_bytes)
                .filter(|cap| *cap > 0),
        },
        management_host: b
            .parsed(Id::ManagementHost, values::parse_bind_host)
            .unwrap_or_else(|| "127.0.0.1".into()),
        management_port: b
            .parsed(Id::ManagementPort, values::parse_port)
            .unwrap_or_default(),
        http_enabled: b.boolean(Id::HttpEnabled),
        http_host: b
            .parsed(Id::HttpHost, values::parse_bind_host)
            .unwrap_or_else(|| "localhost".into()),
        http_port: b.parsed(Id::HttpPort, values::parse_port).unwrap_or(5066),
        agent_offline_after: b.duration(Id::AgentOfflineAfter, false),
    };

    let server_version = b
        .parsed(Id::ServerVersion, ServerVersion::parse_override)
        .unwrap_or(BUILT_IN);
    // Without hosts the Elasticsearch settings are not parsed: one sentence per setting given
    // says it does not apply, rather than a second complaint about its value.
    let es = if b.is_set(Id::EsHosts) {
        b.es_settings(es_insecure).map(|es| EsSettings {
            server_version,
            ..es
        })
    } else {
        b.elasticsearch_only_settings(es_insecure);
        None
    };
    let default_output = b.default_output(es.is_none());
    if es.is_none() {
        management_off_loopback(&mut b, &mut server);
    }
    let policy_id = b
        .value(Id::PolicyId)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let startup_timeout = match b.parsed(Id::StartupTimeout, values::parse_duration) {
        Some(GoDuration::Negative) => None,
        Some(GoDuration::Positive(d)) if d.is_zero() => Some(DEFAULT_STARTUP_TIMEOUT),
        Some(GoDuration::Positive(d)) => Some(d),
        None => Some(DEFAULT_STARTUP_TIMEOUT),
    };
    let data_dir = PathBuf::from(b.value(Id::DataDir).unwrap_or_default());
    let log_level = b
        .parsed(Id::LogLevel, parse_log_level)
        .unwrap_or(log::LevelFilter::Info);
    let log_format = b
        .parsed(Id::LogFormat, parse_log_format)
        .unwrap_or(LogFormat::Text);

    let files = super::FilesSettings {
        mirror_dir: b.path(Id::DownloadsDir).or_else(|| {
            // Embedded mode serves a mirror by default; with Elasticsearch only when asked.
            es.is_none().then(|| data_dir.join("downloads"))
        }),
        pgp_dir: b.path(Id::PgpDir).unwrap_or_else(|| data_dir.join("pgp")),
        pgp_upstream_url: b
            .value(Id::PgpUpstreamUrl)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
    };
    if !b.errors.is_empty() {
        return Err(ConfigErrors(b.errors));
    }
    Ok(Config {
        server,
        es,
        policy_id,
        fleet_url: fleet_url.map(|u| u.to_url_string()),
        startup_timeout,
        data_dir,
        log_level,
        log_format,
        server_version,
        default_output,
        files,
        settings: b.shown(),
        warnings: b.warnings,
    })
}

fn parse_log_level(s: &str) -> Result<log::LevelFilter, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "trace" => Ok(log::LevelFilter::Trace),
        "debug" => Ok(log::LevelFilter::Debug),
        "info" => Ok(log::LevelFilter::Info),
        "warn" | "warning" => Ok(log::LevelFilter::Warn),
        "error" => Ok(log::LevelFilter::Error),
        _ => Err(format!(
            "\"{s}\" is not a log level (use trace, debug, info, warn or error)"
        )),
    }
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("\"{s}\" is not a log format (use text or json)")),
    }
}

struct Builder {
    raw: Vec<Raw>,
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Builder {
    fn entry(&self, id: Id) -> Option<&Raw> {
        self.raw.iter().find(|r| r.id == id)
    }

    fn origin(&self, id: Id) -> Origin {
        self.entry(id).map_or(Origin::Default, |r| r.origin)
    }

    fn value(&self, id: Id) -> Option<String> {
        self.entry(id).and_then(|r| r.values.last().cloned())
    }

    fn is_set(&self, id: Id) -> bool {
        self.entry(id).is_some_and(|r| !r.values.is_empty())
    }

    /// The name the user used: the flag, `env NAME`, or the flag for defaults.
    fn who(&self, id: Id) -> String {
        match self.origin(id) {
            Origin::Flag(flag) => flag.to_string(),
            Origin::Env(name) => format!("env {name}"),
            Origin::Default | Origin::DerivedDefault(_) => spec(id).name().to_string(),
        }
    }

    fn problem(&mut self, id: Id, message: impl std::fmt::Display) {
        let who = self.who(id);
        self.push(format!("{who}: {message}"));
    }

    fn push(&mut self, mut sentence: String) {
        if !sentence.ends_with('.') {
            sentence.push('.');
        }
        self.errors.push(sentence);
    }

    fn set_shown(&mut self, id: Id, value: &str, origin: Origin) {
        if let Some(r) = self.raw.iter_mut().find(|r| r.id == id) {
            r.values = vec![value.to_string()];
            r.origin = origin;
        }
    }

    /// Parses the value (present by default or given); `None` after recording a problem.
    fn parsed<T>(&mut self, id: Id, parse: impl Fn(&str) -> Result<T, String>) -> Option<T> {
        let value = self.value(id)?;
        match parse(&value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(id, e);
                None
            }
        }
    }

    /// Like [`Builder::parsed`] for settings without a default.
    fn parsed_opt<T>(&mut self, id: Id, parse: impl Fn(&str) -> Result<T, String>) -> Option<T> {
        if !self.is_set(id) {
            return None;
        }
        self.parsed(id, parse)
    }

    fn boolean(&mut self, id: Id) -> bool {
        self.parsed(id, values::parse_bool).unwrap_or(false)
    }

    fn duration(&mut self, id: Id, zero_allowed: bool) -> Duration {
        let fallback = spec(id)
            .default
            .and_then(|d| values::parse_duration(d).ok());
        let fallback = match fallback {
            Some(GoDuration::Positive(d)) => d,
            _ => Duration::from_secs(1),
        };
        match self.parsed(id, values::parse_duration) {
            Some(GoDuration::Positive(d)) if d.is_zero() && !zero_allowed => {
                self.problem(id, "must be longer than zero");
                fallback
            }
            Some(GoDuration::Positive(d)) => d,
            Some(GoDuration::Negative) => {
                self.problem(id, "must not be negative");
                fallback
            }
            None => fallback,
        }
    }

    fn path(&self, id: Id) -> Option<PathBuf> {
        self.value(id)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    }

    fn paths(&self, id: Id) -> Vec<PathBuf> {
        self.value(id)
            .map(|s| {
                values::split_list(&s)
                    .into_iter()
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn load_cas(
        &mut self,
        id: Id,
        paths: &[PathBuf],
    ) -> Vec<rustls::pki_types::CertificateDer<'static>> {
        let mut all = Vec::new();
        for path in paths {
            match tls::load_certificate_authorities(std::slice::from_ref(path)) {
                Ok(certs) => all.extend(certs),
                Err(e) => self.problem(id, e),
            }
        }
        all
    }

    /// Loads a certificate + key (+ passphrase file) pair, blaming the right setting.
    fn material(&mut self, cert: Id, key: Id, passphrase: Option<Id>) -> Option<TlsMaterial> {
        let cert_path = self.path(cert);
        let key_path = self.path(key);
        let pass_path = passphrase.and_then(|p| self.path(p));
        match (&cert_path, &key_path) {
            (Some(c), Some(k)) => match tls::load_material(c, k, pass_path.as_deref()) {
                Ok(m) => Some(m),
                Err(e) => {
                    let blamed = match &e {
                        TlsError::Unreadable {
                            what: "certificate",
                            ..
                        }
                        | TlsError::InvalidPem {
                            what: "certificate",
                            ..
                        }
                        | TlsError::NoCertificate { .. }
                        | TlsError::InvalidCertificate { .. } => cert,
                        TlsError::Unreadable {
                            what: "passphrase", ..
                        }
                        | TlsError::WrongPassphrase { .. } => passphrase.unwrap_or(key),
                        _ => key,
                    };
                    let message = match (&e, passphrase) {
                        (TlsError::PassphraseRequired { .. }, Some(p)) => {
                            format!("{e} (set {})", spec(p).name())
                        }
                        // No setting can carry a passphrase for this key (the Elasticsearch
                        // client key has none): do not ask for a passphrase file.
                        (TlsError::PassphraseRequired { path }, None) => format!(
                            "private key file \"{}\" is encrypted, and there is no passphrase setting for this key; give it unencrypted (openssl pkcs8 -in ENCRYPTED -out PLAIN)",
                            path.display()
                        ),
                        _ => e.to_string(),
                    };
                    self.problem(blamed, message);
                    None
                }
            },
            (Some(_), None) => {
                let other = spec(key).name();
                self.problem(
                    cert,
                    format!("a certificate is set but {other} (its private key) is not; give both"),
                );
                None
            }
            (None, Some(_)) => {
                let other = spec(cert).name();
                self.problem(
                    key,
                    format!("a private key is set but {other} (its certificate) is not; give both"),
                );
                None
            }
            (None, None) => {
                if let (Some(p), Some(_)) = (passphrase, &pass_path) {
                    let other = spec(key).name();
                    self.problem(
                        p,
                        format!("a passphrase file is set but there is no {other} to decrypt"),
                    );
                }
                None
            }
        }
    }

    fn server_tls(
        &mut self,
        insecure_http: bool,
        host: &str,
        fleet_url: Option<&values::HttpUrl>,
    ) -> ServerTls {
        let given = self.is_set(Id::Cert) || self.is_set(Id::CertKey);
        let material = self.material(Id::Cert, Id::CertKey, Some(Id::CertKeyPassphrase));
        if insecure_http {
            if given {
                let who = self.who(Id::InsecureHttp);
                let cert = if self.is_set(Id::Cert) {
                    self.who(Id::Cert)
                } else {
                    self.who(Id::CertKey)
                };
                self.push(format!("{who} turns TLS off but a certificate is also given ({cert}); remove one of them"));
            }
            return ServerTls::PlainHttp;
        }
        match material {
            Some(m) => ServerTls::Provided(m),
            None => ServerTls::SelfSigned {
                hosts: self_signed_hosts(host, fleet_url),
            },
        }
    }

    fn es_settings(&mut self, insecure: bool) -> Option<EsSettings> {
        let hosts: Vec<String> = self
            .value(Id::EsHosts)
            .map(|s| values::split_list(&s))
            .unwrap_or_default()
            .iter()
            .filter_map(|h| match values::parse_http_url(h, Some("http")) {
                Ok(url) => Some(url.to_url_string()),
                Err(e) => {
                    self.problem(Id::EsHosts, e);
                    None
                }
            })
            .collect();
        let ca = self.paths(Id::EsCa);
        let ca_certs = self.load_cas(Id::EsCa, &ca);
        let ca_trusted_fingerprint = self.parsed_opt(Id::EsCaTrustedFingerprint, |s| {
            s.parse::<Fingerprint>().map_err(|e| e.to_string())
        });
        let client_cert = self.material(Id::EsCert, Id::EsCertKey, None);
        let service_token = self.service_token();
        let headers = self.headers();
        if !self.is_set(Id::EsHosts) {
            return None;
        }
        Some(EsSettings {
            hosts,
            ca,
            ca_certs,
            ca_trusted_fingerprint,
            client_cert,
            insecure,
            service_token,
            headers,
            server_version: BUILT_IN,
        })
    }

    /// Embedded mode (no Elasticsearch hosts): a setting that only configures the connection to
    /// Elasticsearch would be silently ignored, and usually means the hosts variable is missing
    /// or misspelled, so it is an error. Two container variables are only warned about: the
    /// Elastic Agent container also reads `ELASTICSEARCH_CA` (as the Kibana and enrollment CA)
    /// and `FLEET_HEADER(S)` (as enrollment headers), so an environment shared with an agent
    /// container may set them without meaning Elasticsearch.
    fn elasticsearch_only_settings(&mut self, es_insecure: bool) {
        const ES_ONLY: &[Id] = &[
            Id::EsCa,
            Id::EsCaTrustedFingerprint,
            Id::EsCert,
            Id::EsCertKey,
            Id::EsInsecure,
            Id::ServiceToken,
            Id::ServiceTokenPath,
            Id::EsHeaders,
            Id::PolicyId,
        ];
        const SHARED_WITH_AGENT_CONTAINER: &[&str] =
            &["ELASTICSEARCH_CA", "FLEET_HEADER", "FLEET_HEADERS"];
        for &id in ES_ONLY {
            let origin = self.origin(id);
            let given = matches!(origin, Origin::Flag(_) | Origin::Env(_)) && self.is_set(id);
            if !given || (id == Id::EsInsecure && !es_insecure) {
                continue;
            }
            let who = self.who(id);
            match origin {
                Origin::Env(name) if SHARED_WITH_AGENT_CONTAINER.contains(&name) => {
                    self.warnings.push(format!(
                        "{who} is ignored: it applies only with --fleet-server-es, and is accepted in embedded mode only because the Elastic Agent container also reads it; set FLEET_SERVER_ELASTICSEARCH_HOST to use Elasticsearch, or remove it"
                    ));
                }
                _ => self.push(format!(
                    "{who} applies only with --fleet-server-es; set FLEET_SERVER_ELASTICSEARCH_HOST or remove it"
                )),
            }
        }
    }

    fn service_token(&mut self) -> Option<Secret> {
        let token = self.value(Id::ServiceToken).map(|s| s.trim().to_string());
        let path = self.path(Id::ServiceTokenPath);
        match (token, path) {
            (Some(_), Some(_)) => {
                let a = self.who(Id::ServiceToken);
                let b = self.who(Id::ServiceTokenPath);
                self.push(format!("{a} and {b} are both set; give only one of them"));
                None
            }
            (Some(token), None) => Some(Secret::new(token)),
            (None, Some(path)) => match read_token(&path) {
                Ok(token) => Some(Secret::new(token)),
                Err(e) => {
                    self.problem(Id::ServiceTokenPath, e);
                    None
                }
            },
            (None, None) => None,
        }
    }

    fn headers(&mut self) -> Vec<(String, String)> {
        let Some(entry) = self.entry(Id::EsHeaders).cloned() else {
            return Vec::new();
        };
        let mut headers = Vec::new();
        for value in &entry.values {
            let parsed = match entry.origin {
                Origin::Env("FLEET_HEADERS") => values::parse_header_list(value),
                _ => values::parse_header(value).map(|h| vec![h]),
            };
            match parsed {
                Ok(h) => headers.extend(h),
                Err(e) => self.problem(Id::EsHeaders, e),
            }
        }
        headers
    }

    /// Every setting's effective value for `--print-config`, secrets redacted.
    fn shown(&self) -> Vec<SettingValue> {
        self.raw
            .iter()
            .map(|r| {
                let s = spec(r.id);
                let shown = if r.values.is_empty() {
                    "(unset)".to_string()
                } else if s.secret {
                    "<redacted>".to_string()
                } else if r.id == Id::EsHeaders {
                    redacted_headers(r)
                } else {
                    r.values.join(", ")
                };
                SettingValue {
                    id: r.id,
                    shown,
                    origin: r.origin,
                }
            })
            .collect()
    }
}

/// Header names only: values may hold credentials.
fn redacted_headers(r: &Raw) -> String {
    let names: Vec<String> = r
        .values
        .iter()
        .flat_map(|v| match r.origin {
            Origin::Env("FLEET_HEADERS") => values::parse_header_list(v).unwrap_or_default(),
            _ => values::parse_header(v).map(|h| vec![h]).unwrap_or_default(),
        })
        .map(|(name, _)| format!("{name}=<redacted>"))
        .collect();
    names.join(", ")
}

fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the service token file \"{}\": {e}",
            path.display()
        )
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!(
            "the service token file \"{}\" is empty",
            path.display()
        ));
    }
    Ok(token.to_string())
}

/// The management API (embedded mode) off loopback is served over TLS only: refused in plain-HTTP
/// mode (its bearer token would cross the network in clear), and a generated certificate also
/// covers the management host so the CLI can verify it.
fn management_off_loopback(b: &mut Builder, server: &mut ServerSettings) {
    let host = server.management_host.clone();
    if is_loopback_host(&host) {
        return;
    }
    match &mut server.tls {
        ServerTls::PlainHttp => b.problem(
            Id::ManagementHost,
            format!(
                "{host:?} is not a loopback address and the server has no TLS (--fleet-server-insecure-http): \
                 the management API's bearer token would cross the network in clear; keep it on 127.0.0.1 or serve TLS"
            ),
        ),
        ServerTls::SelfSigned { hosts } => {
            let h = host.to_ascii_lowercase();
            let unspecified = h
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_unspecified());
            if !unspecified && tls::self_signed::is_valid_host(&h) && !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        ServerTls::Provided(_) => {}
    }
}

/// `localhost` or an address (or a name resolving only to addresses) on loopback.
fn is_loopback_host(host: &str) -> bool {
    use std::net::ToSocketAddrs;
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let addrs: Vec<std::net::SocketAddr> = (host, 0)
        .to_socket_addrs()
        .map(Iterator::collect)
        .unwrap_or_default();
    !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
}

/// Names a generated certificate must cover: loopback names, the bind host when specific, and
/// the `FLEET_URL` host.
fn self_signed_hosts(host: &str, fleet_url: Option<&values::HttpUrl>) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let unspecified = host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    let mut extra = Vec::new();
    if !unspecified {
        extra.push(host.to_string());
    }
    if let Some(url) = fleet_url {
        extra.push(url.host.clone());
    }
    for h in extra {
        let h = h.to_ascii_lowercase();
        if tls::self_signed::is_valid_host(&h) && !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    hosts
}

/// A byte count: a whole number of bytes.
fn parse_bytes(v: &str) -> Result<u64, String> {
    v.trim()
        .parse::<u64>()
        .map_err(|_| format!("{v:?} is not a whole number of bytes"))
}
