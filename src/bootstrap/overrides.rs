//! What the Fleet Server policy may change in the bootstrap configuration, and what it may not.
//!
//! The seeds' flag tables have a column "Can be overridden by policy?". Yes: the Elasticsearch
//! output's hosts, CA and client certificate (`outputs.<fleet-server's output>`), the listener's
//! TLS (certificate, key, passphrase, client CAs, client authentication), its host and port, and
//! the `server.*` keys of fleet-protocol.md §9.2 we implement (timeouts, connection limit,
//! `max_agents`). No ("must be CLI"): the service token, the policy id, the CA trusted
//! fingerprint, `--fleet-server-es-insecure` (`verification_mode: none`) and the timeout; a policy
//! that holds one of those is logged and the value is not used.
//!
//! Two steps, so a new revision that changes nothing we use restarts nothing: [`read`] turns a
//! policy document into [`Overrides`] (pure; comparable), and [`apply`] lays them over the
//! bootstrap [`Config`], loading the files they name. Keys may be nested objects or dotted
//! (`server.timeouts.checkin_long_poll`), as go-ucfg reads them. Certificates and keys may be
//! paths or inline PEM (a value starting with `-`, §9.3); inline ones are written to
//! `<data-dir>/policy-tls/` (mode 0600) so one loader, with its error sentences, serves both.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::config::{parse_duration, parse_http_url, Config, GoDuration, ServerTls};
use crate::model::PolicyDoc;
use crate::tls::ClientAuth;

/// The listener TLS settings a policy gives (`server.ssl`, or `ssl` on the input as Kibana
/// writes the Fleet Server host's SSL settings).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerSsl {
    /// `certificate`: path or inline PEM.
    pub certificate: Option<String>,
    /// `key`: path or inline PEM.
    pub key: Option<String>,
    /// `key_passphrase` (inline) or the content source `key_passphrase_path`.
    pub key_passphrase: Option<Passphrase>,
    /// `certificate_authorities`: paths or inline PEMs.
    pub certificate_authorities: Vec<String>,
    /// `client_authentication`.
    pub client_authentication: Option<String>,
}

/// Where a key passphrase comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Passphrase {
    /// The passphrase itself.
    Inline(String),
    /// A file holding it.
    Path(String),
}

/// The Elasticsearch output a policy gives Fleet Server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EsOutput {
    /// Canonical URLs.
    pub hosts: Vec<String>,
    /// `ssl.certificate_authorities`: paths or inline PEMs.
    pub certificate_authorities: Vec<String>,
    /// `ssl.certificate`: path or inline PEM.
    pub certificate: Option<String>,
    /// `ssl.key`: path or inline PEM.
    pub key: Option<String>,
}

/// The values a policy revision sets; two revisions with equal `Values` configure this server
/// the same way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Values {
    /// `server.host`.
    pub host: Option<String>,
    /// `server.port`.
    pub port: Option<u16>,
    /// `server.ssl`.
    pub ssl: Option<ServerSsl>,
    /// `server.timeouts.<name>` we implement, in table order.
    pub timeouts: Vec<(&'static str, Duration)>,
    /// `server.limits.max_connections`.
    pub max_connections: Option<usize>,
    /// `server.limits.max_agents`.
    pub max_agents: Option<i64>,
    /// `server.pgp.dir` (issue 17).
    pub pgp_dir: Option<String>,
    /// `server.pgp.upstream_url`.
    pub pgp_upstream_url: Option<String>,
    /// The Elasticsearch output.
    pub es: Option<EsOutput>,
    /// `http.enabled`: the monitoring endpoint.
    pub http_enabled: Option<bool>,
    /// `http.host`.
    pub http_host: Option<String>,
    /// `http.port`.
    pub http_port: Option<u16>,
}

/// One policy revision's overrides, with what it holds but may not change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// The policy.
    pub policy_id: String,
    /// Its revision.
    pub revision: i64,
    /// What it sets.
    pub values: Values,
    /// "Must be CLI" settings found in the policy, as log sentences; their values are not used.
    pub ignored: Vec<String>,
    /// Values that cannot be read, as log sentences; the bootstrap value stays.
    pub invalid: Vec<String>,
}

/// `server.timeouts.*` keys fleet-edge implements.
const TIMEOUTS: [&str; 6] = [
    "read_header",
    "idle",
    "drain",
    "checkin_long_poll",
    "checkin_jitter",
    "checkin_max_poll",
];

/// The first input of type `fleet-server` in a policy's data.
pub fn fleet_server_input(data: &Value) -> Option<&Value> {
    data.get("inputs")?
        .as_array()?
        .iter()
        .find(|i| i.get("type").and_then(Value::as_str) == Some("fleet-server"))
}

/// Reads the overrides of a Fleet Server policy; `None` when it has no `fleet-server` input.
pub fn read(doc: &PolicyDoc) -> Option<Overrides> {
    let input = fleet_server_input(&doc.data)?;
    let mut o = Overrides {
        policy_id: doc.policy_id.clone(),
        revision: doc.revision_idx,
        ..Overrides::default()
    };
    let at = |key: &str| format!("policy {} input fleet-server: {key}", doc.policy_id);
    if lookup(input, "policy.id").is_some() {
        o.ignored.push(format!(
            "{} is not used: the policy id must be given on the command line (--fleet-server-policy / FLEET_SERVER_POLICY_ID)",
            at("policy.id")
        ));
    }
    if let Some(v) = lookup(input, "server.host") {
        match v.as_str().map(str::trim) {
            Some(h) if !h.is_empty() => {
                o.values.host = Some(h.trim_matches(['[', ']']).to_owned());
            }
            _ => o.invalid.push(format!(
                "{} must be a host name or address",
                at("server.host")
            )),
        }
    }
    if let Some(v) = lookup(input, "server.port") {
        match as_u64(v).and_then(|p| u16::try_from(p).ok()) {
            Some(p) => o.values.port = Some(p),
            None => o.invalid.push(format!(
                "{} is not a port number (0 to 65535): {v}",
                at("server.port")
            )),
        }
    }
    for name in TIMEOUTS {
        let key = format!("server.timeouts.{name}");
        if let Some(v) = lookup(input, &key) {
            match v.as_str().map(parse_duration) {
                Some(Ok(GoDuration::Positive(d))) => o.values.timeouts.push((name, d)),
                _ => o.invalid.push(format!(
                    "{} is not a duration such as 30s or 5m: {v}",
                    at(&key)
                )),
            }
        }
    }
    if let Some(v) = lookup(input, "server.limits.max_connections") {
        match as_u64(v).and_then(|n| usize::try_from(n).ok()) {
            Some(n) => o.values.max_connections = Some(n),
            None => o.invalid.push(format!(
                "{} is not a number: {v}",
                at("server.limits.max_connections")
            )),
        }
    }
    if let Some(v) = lookup(input, "server.limits.max_agents") {
        match as_u64(v).and_then(|n| i64::try_from(n).ok()) {
            Some(n) => o.values.max_agents = Some(n),
            None => o.invalid.push(format!(
                "{} is not a number: {v}",
                at("server.limits.max_agents")
            )),
        }
    }
    read_http(input, &at, &mut o);
    o.values.pgp_dir = string_at(input, "server.pgp.dir");
    o.values.pgp_upstream_url = string_at(input, "server.pgp.upstream_url");
    let ssl = lookup(input, "server.ssl").or_else(|| lookup(input, "ssl"));
    if let Some(ssl) = ssl {
        o.values.ssl = read_server_ssl(ssl, &at("ssl"), &mut o.invalid, &mut o.ignored);
    }
    read_output(doc, input, &mut o);
    Some(o)
}

/// The monitoring endpoint's `http.enabled`, `http.host` and `http.port` (Elastic's `http.*`
/// keys), given in the fleet-server input.
fn read_http(input: &Value, at: &dyn Fn(&str) -> String, o: &mut Overrides) {
    match lookup(input, "http.enabled") {
        None => {}
        Some(Value::Bool(b)) => o.values.http_enabled = Some(*b),
        Some(Value::String(s)) if crate::config::parse_bool(s).is_ok() => {
            o.values.http_enabled = crate::config::parse_bool(s).ok();
        }
        Some(v) => o
            .invalid
            .push(format!("{} is not true or false: {v}", at("http.enabled"))),
    }
    if let Some(v) = lookup(input, "http.host") {
        match v.as_str().map(str::trim).filter(|h| !h.is_empty()) {
            Some(h) => o.values.http_host = Some(h.trim_matches(['[', ']']).to_owned()),
            None => o.invalid.push(format!(
                "{} must be a host name or address",
                at("http.host")
            )),
        }
    }
    if let Some(v) = lookup(input, "http.port") {
        match as_u64(v).and_then(|p| u16::try_from(p).ok()) {
            Some(p) => o.values.http_port = Some(p),
            None => o.invalid.push(format!(
                "{} is not a port number (0 to 65535): {v}",
                at("http.port")
            )),
        }
    }
}

fn read_server_ssl(
    ssl: &Value,
    at: &str,
    invalid: &mut Vec<String>,
    ignored: &mut Vec<String>,
) -> Option<ServerSsl> {
    if lookup(ssl, "enabled") == Some(&Value::Bool(false)) {
        ignored.push(format!(
            "{at}.enabled: false is not applied: plain HTTP is chosen only on the command line (--fleet-server-insecure-http)"
        ));
        return None;
    }
    let mut s = ServerSsl {
        certificate: string_at(ssl, "certificate"),
        key: string_at(ssl, "key"),
        key_passphrase: string_at(ssl, "key_passphrase")
            .map(Passphrase::Inline)
            .or_else(|| string_at(ssl, "key_passphrase_path").map(Passphrase::Path)),
        certificate_authorities: strings_at(ssl, "certificate_authorities"),
        client_authentication: string_at(ssl, "client_authentication"),
    };
    if s.certificate.is_some() != s.key.is_some() {
        invalid.push(format!(
            "{at}: certificate and key must be given together; the listener keeps its certificate"
        ));
        s.certificate = None;
        s.key = None;
    }
    if let Some(mode) = &s.client_authentication {
        if mode.parse::<ClientAuth>().is_err() {
            invalid.push(format!(
                "{at}.client_authentication {mode:?} is not none, optional or required"
            ));
            s.client_authentication = None;
        }
    }
    (s != ServerSsl::default()).then_some(s)
}

fn read_output(doc: &PolicyDoc, input: &Value, o: &mut Overrides) {
    let name = input
        .get("use_output")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let Some(output) = doc.data.pointer(&format!(
        "/outputs/{}",
        name.replace('~', "~0").replace('/', "~1")
    )) else {
        return;
    };
    let at = |key: &str| format!("policy {} output {name}: {key}", doc.policy_id);
    let kind = output.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "elasticsearch" {
        o.invalid.push(format!(
            "{} is {kind:?}; Fleet Server needs an elasticsearch output, so the Elasticsearch settings stay as bootstrapped",
            at("type")
        ));
        return;
    }
    for (key, flag) in [
        ("service_token", "--fleet-server-service-token"),
        ("service_token_path", "--fleet-server-service-token-path"),
        (
            "ssl.ca_trusted_fingerprint",
            "--fleet-server-es-ca-trusted-fingerprint",
        ),
    ] {
        if lookup(output, key).is_some() {
            o.ignored.push(format!(
                "{} is not used: it must be given on the command line or environment ({flag})",
                at(key)
            ));
        }
    }
    if lookup(output, "ssl.verification_mode").and_then(Value::as_str) == Some("none") {
        o.ignored.push(format!(
            "{} is not used: turning certificate verification off must be done on the command line (--fleet-server-es-insecure)",
            at("ssl.verification_mode: none")
        ));
    }
    let protocol = string_at(output, "protocol").unwrap_or_else(|| "http".to_owned());
    let mut es = EsOutput {
        certificate_authorities: strings_at(output, "ssl.certificate_authorities"),
        certificate: string_at(output, "ssl.certificate"),
        key: string_at(output, "ssl.key"),
        ..EsOutput::default()
    };
    for host in strings_at(output, "hosts") {
        match parse_http_url(&host, Some(&protocol)) {
            // libbeat's default port for Elasticsearch hosts given without one.
            Ok(mut url) => {
                url.port = url.port.or(Some(9200));
                es.hosts.push(url.to_url_string());
            }
            Err(e) => o.invalid.push(format!("{}: {e}", at("hosts"))),
        }
    }
    if es.certificate.is_some() != es.key.is_some() {
        o.invalid.push(format!(
            "{}: certificate and key must be given together; the bootstrap client certificate stays",
            at("ssl")
        ));
        es.certificate = None;
        es.key = None;
    }
    if es != EsOutput::default() {
        o.values.es = Some(es);
    }
}

/// The bootstrap configuration with the overrides laid over it.
#[derive(Debug)]
pub struct Applied {
    /// The configuration to run with.
    pub config: Config,
    /// What changed, one sentence each (`server.port: 8220 -> 8230`).
    pub changes: Vec<String>,
    /// Overrides that could not be used (a file that does not load, …), one sentence each;
    /// the bootstrap value stays for those.
    pub problems: Vec<String>,
}

/// Lays `o` over `bootstrap`; `scratch` receives inline PEMs.
pub fn apply(bootstrap: &Config, o: &Values, scratch: &Path) -> Applied {
    let mut config = bootstrap.clone();
    let mut changes = Vec::new();
    let mut problems = Vec::new();
    let server = &mut config.server;
    if let Some(host) = &o.host {
        if *host != server.host {
            changes.push(format!("server.host: {} -> {host}", server.host));
            server.host = host.clone();
            if let ServerTls::SelfSigned { hosts } = &mut server.tls {
                let lower = host.to_ascii_lowercase();
                let specific = !host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_unspecified());
                if specific
                    && crate::tls::self_signed::is_valid_host(&lower)
                    && !hosts.contains(&lower)
                {
                    hosts.push(lower);
                }
            }
        }
    }
    if let Some(port) = o.port {
        if port != server.port {
            changes.push(format!("server.port: {} -> {port}", server.port));
            server.port = port;
        }
    }
    for (name, value) in &o.timeouts {
        let t = &mut server.timeouts;
        let slot = match *name {
            "read_header" => &mut t.read_header,
            "idle" => &mut t.idle,
            "drain" => &mut t.drain,
            "checkin_long_poll" => &mut t.checkin_long_poll,
            "checkin_jitter" => &mut t.checkin_jitter,
            _ => &mut t.checkin_max_poll,
        };
        if *slot != *value {
            changes.push(format!("server.timeouts.{name}: {slot:?} -> {value:?}"));
            *slot = *value;
        }
    }
    if let Some(n) = o.max_connections.filter(|&n| n != server.max_connections) {
        changes.push(format!(
            "server.limits.max_connections: {} -> {n}",
            server.max_connections
        ));
        server.max_connections = n;
    }
    if let Some(n) = o.max_agents.filter(|&n| n != server.max_agents) {
        changes.push(format!(
            "server.limits.max_agents: {} -> {n}",
            server.max_agents
        ));
        server.max_agents = n;
    }
    if let Some(on) = o.http_enabled.filter(|on| *on != server.http_enabled) {
        changes.push(format!("http.enabled: {} -> {on}", server.http_enabled));
        server.http_enabled = on;
    }
    if let Some(host) = o.http_host.as_ref().filter(|h| **h != server.http_host) {
        changes.push(format!("http.host: {} -> {host}", server.http_host));
        server.http_host = host.clone();
    }
    if let Some(port) = o.http_port.filter(|p| *p != server.http_port) {
        changes.push(format!("http.port: {} -> {port}", server.http_port));
        server.http_port = port;
    }
    let files = &mut config.files;
    if let Some(dir) = o.pgp_dir.as_deref().map(PathBuf::from) {
        if dir != files.pgp_dir {
            changes.push(format!(
                "server.pgp.dir: {} -> {}",
                files.pgp_dir.display(),
                dir.display()
            ));
            files.pgp_dir = dir;
        }
    }
    if let Some(url) = o
        .pgp_upstream_url
        .as_ref()
        .filter(|u| **u != files.pgp_upstream_url)
    {
        changes.push(format!(
            "server.pgp.upstream_url: {} -> {url}",
            files.pgp_upstream_url
        ));
        files.pgp_upstream_url = url.clone();
    }
    if let Some(ssl) = &o.ssl {
        apply_server_ssl(&mut config, ssl, scratch, &mut changes, &mut problems);
    }
    if let Some(es) = &o.es {
        apply_es(&mut config, es, scratch, &mut changes, &mut problems);
    }
    Applied {
        config,
        changes,
        problems,
    }
}

fn apply_server_ssl(
    config: &mut Config,
    ssl: &ServerSsl,
    scratch: &Path,
    changes: &mut Vec<String>,
    problems: &mut Vec<String>,
) {
    let server = &mut config.server;
    if matches!(server.tls, ServerTls::PlainHttp) {
        problems.push("the policy's server.ssl is not applied: this server was started with --fleet-server-insecure-http".to_owned());
        return;
    }
    if let (Some(cert), Some(key)) = (&ssl.certificate, &ssl.key) {
        let loaded = (|| {
            let cert = materialize(cert, "certificate", scratch)?;
            let key = materialize(key, "key", scratch)?;
            let pass = match &ssl.key_passphrase {
                None => None,
                Some(Passphrase::Path(p)) => Some(PathBuf::from(p)),
                Some(Passphrase::Inline(p)) => {
                    Some(write_scratch(p.as_bytes(), "passphrase", scratch)?)
                }
            };
            let material = crate::tls::load_material(&cert, &key, pass.as_deref())
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((material, cert, key, pass))
        })();
        match loaded {
            Ok((material, cert, key, passphrase)) => {
                changes.push("server.ssl.certificate/key: from the policy".to_owned());
                server.tls = ServerTls::Provided(material);
                // A reload reads the policy's files again (inline PEM: the files written here).
                server.tls_files.cert = Some(cert);
                server.tls_files.key = Some(key);
                server.tls_files.passphrase = passphrase;
            }
            Err(e) => problems.push(format!(
                "the policy's server.ssl certificate is not applied: {e}"
            )),
        }
    }
    if !ssl.certificate_authorities.is_empty() {
        match load_cas(&ssl.certificate_authorities, scratch) {
            Ok((cas, paths)) => {
                server.tls_files.client_cas = paths;
                changes.push(format!(
                    "server.ssl.certificate_authorities: {} certificate(s) from the policy",
                    cas.len()
                ));
                server.client_cas = cas;
            }
            Err(e) => problems.push(format!(
                "the policy's server.ssl.certificate_authorities are not applied: {e}"
            )),
        }
    }
    // §9.3: client authentication defaults to `required` once the policy names client CAs.
    let mode = match &ssl.client_authentication {
        Some(m) => m.parse::<ClientAuth>().ok(),
        None if !ssl.certificate_authorities.is_empty() && !server.client_cas.is_empty() => {
            Some(ClientAuth::Required)
        }
        None => None,
    };
    if let Some(mode) = mode.filter(|m| *m != server.client_auth) {
        if mode != ClientAuth::None && server.client_cas.is_empty() {
            problems.push(format!(
                "the policy's client_authentication {mode:?} is not applied: no certificate authorities to verify agents with"
            ));
        } else {
            changes.push(format!(
                "server.ssl.client_authentication: {:?} -> {mode:?}",
                server.client_auth
            ));
            server.client_auth = mode;
        }
    }
}

fn apply_es(
    config: &mut Config,
    es: &EsOutput,
    scratch: &Path,
    changes: &mut Vec<String>,
    problems: &mut Vec<String>,
) {
    let Some(current) = config.es.as_mut() else {
        return;
    };
    if !es.hosts.is_empty() && es.hosts != current.hosts {
        changes.push(format!(
            "output.elasticsearch.hosts: {} -> {}",
            current.hosts.join(","),
            es.hosts.join(",")
        ));
        current.hosts = es.hosts.clone();
    }
    if !es.certificate_authorities.is_empty() {
        match load_cas(&es.certificate_authorities, scratch) {
            Ok((cas, _)) if cas != current.ca_certs => {
                changes.push(format!(
                    "output.elasticsearch.ssl.certificate_authorities: {} certificate(s) from the policy",
                    cas.len()
                ));
                current.ca_certs = cas;
            }
            Ok(_) => {}
            Err(e) => problems.push(format!(
                "the policy's output ssl.certificate_authorities are not applied: {e}"
            )),
        }
    }
    if let (Some(cert), Some(key)) = (&es.certificate, &es.key) {
        let loaded = (|| {
            let cert = materialize(cert, "es-certificate", scratch)?;
            let key = materialize(key, "es-key", scratch)?;
            crate::tls::load_material(&cert, &key, None).map_err(|e| e.to_string())
        })();
        match loaded {
            Ok(material) => {
                changes
                    .push("output.elasticsearch.ssl.certificate/key: from the policy".to_owned());
                current.client_cert = Some(material);
            }
            Err(e) => problems.push(format!(
                "the policy's output client certificate is not applied: {e}"
            )),
        }
    }
}

fn load_cas(
    sources: &[String],
    scratch: &Path,
) -> Result<
    (
        Vec<rustls::pki_types::CertificateDer<'static>>,
        Vec<PathBuf>,
    ),
    String,
> {
    let paths = sources
        .iter()
        .map(|s| materialize(s, "ca", scratch))
        .collect::<Result<Vec<_>, _>>()?;
    let cas = crate::tls::load_certificate_authorities(&paths).map_err(|e| e.to_string())?;
    Ok((cas, paths))
}

/// A path for a policy value: the value itself, or the file an inline PEM was written to.
fn materialize(value: &str, what: &str, scratch: &Path) -> Result<PathBuf, String> {
    if value.trim_start().starts_with('-') {
        write_scratch(value.as_bytes(), what, scratch)
    } else {
        Ok(PathBuf::from(value))
    }
}

/// Writes `bytes` to `<scratch>/<what>-<sha256 prefix>.pem`, readable by the owner only.
fn write_scratch(bytes: &[u8], what: &str, scratch: &Path) -> Result<PathBuf, String> {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = scratch.join(format!("{what}-{hex}.pem"));
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    crate::fsmode::private_dir(scratch).map_err(fail)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(fail)?;
    std::io::Write::write_all(&mut file, bytes).map_err(fail)?;
    Ok(path)
}

/// `a.b.c` in `v`, whether written nested (`{a:{b:{c}}}`), dotted (`{"a.b.c"}`) or mixed
/// (`{"a.b":{c}}`), as go-ucfg reads it.
pub fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let map = v.as_object()?;
    if let Some(found) = map.get(path) {
        return Some(found);
    }
    path.match_indices('.').find_map(|(i, _)| {
        map.get(&path[..i])
            .and_then(|inner| lookup(inner, &path[i + 1..]))
    })
}

fn string_at(v: &Value, path: &str) -> Option<String> {
    match lookup(v, path)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// A list of strings, also accepting a single string or a comma-separated one.
fn strings_at(v: &Value, path: &str) -> Vec<String> {
    match lookup(v, path) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) if s.trim_start().starts_with('-') => vec![s.clone()],
        Some(Value::String(s)) => s
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
