//! The blocking HTTP client of the Elasticsearch store: ureq agents (one for ordinary calls, one
//! for long polls), the headers of every Fleet Server request (es-contract.md §1.1), several
//! hosts with failover, bounded retries with backoff on 408/425/429/502/503/504 and connection
//! failures (§1.3; the long-poll calls are not retried), and the one mapping of transport
//! failures and Elasticsearch error statuses to [`StoreError`]. Runs only on backend threads.
//! Neighbours: `tls.rs` (TLS configuration), `connect.rs` (startup), `mod.rs` (the calls).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use ureq::config::AutoHeaderValue;
use ureq::http;

use super::tls::{ureq_tls, Trust};
use super::EsOptions;
use crate::backend::{ApiKey, StoreError};
use crate::config::Secret;
use crate::server_version::ServerVersion;
use crate::tls::TlsMaterial;

/// Largest response body read (a 10 000-policy aggregation stays well under it).
const MAX_BODY: u64 = 512 * 1024 * 1024;

/// HTTP methods the contract uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE (with a body for API key invalidation)
    Delete,
}

impl Method {
    fn as_http(self) -> http::Method {
        match self {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
            Method::Put => http::Method::PUT,
            Method::Delete => http::Method::DELETE,
        }
    }
}

/// One request: path with its query string, optional JSON (or NDJSON) body.
#[derive(Debug)]
pub struct Req<'a> {
    /// Method.
    pub method: Method,
    /// Path and query (`/_bulk?refresh=true`).
    pub path: String,
    /// Body bytes, sent with `Content-Type: application/json`.
    pub body: Option<Vec<u8>>,
    /// Authenticate as this API key instead of the service token (`_authenticate`).
    pub api_key: Option<&'a ApiKey>,
    /// Send `Accept: application/json` (the secrets API does).
    pub accept_json: bool,
    /// Send `Accept: application/cbor` (the file delivery chunk read does).
    pub accept_cbor: bool,
    /// The body's `Content-Type` when it is not JSON (`application/cbor` for upload chunks).
    pub content_type: Option<&'static str>,
    /// A long poll: the long-poll agent, no retries on statuses.
    pub long_poll: bool,
    /// Retry retryable statuses and failures with backoff (failover to the next host on a
    /// connection failure happens either way).
    pub retries: bool,
}

impl<'a> Req<'a> {
    /// A request without a body.
    pub fn new(method: Method, path: impl Into<String>) -> Req<'a> {
        Req {
            method,
            path: path.into(),
            body: None,
            api_key: None,
            accept_json: false,
            accept_cbor: false,
            content_type: None,
            long_poll: false,
            retries: true,
        }
    }

    /// As a long poll (the long-poll agent, no retries).
    pub fn long_poll(mut self) -> Req<'a> {
        self.long_poll = true;
        self.retries = false;
        self
    }

    /// Without retries (one attempt per host).
    pub fn once(mut self) -> Req<'a> {
        self.retries = false;
        self
    }

    /// With a JSON body.
    pub fn json(mut self, body: &Value) -> Req<'a> {
        self.body = Some(body.to_string().into_bytes());
        self
    }

    /// With a raw body (NDJSON or hand-written JSON).
    pub fn raw(mut self, body: String) -> Req<'a> {
        self.body = Some(body.into_bytes());
        self
    }

    /// With a raw body already in bytes (NDJSON serialised in place).
    pub fn raw_bytes(mut self, body: Vec<u8>) -> Req<'a> {
        self.body = Some(body);
        self
    }
}

/// A response with any status.
#[derive(Debug)]
pub struct Resp {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
    /// The `X-elastic-product` header, if any.
    pub product: Option<String>,
    /// Base URL of the host that answered.
    pub host: String,
}

impl Resp {
    /// The body as JSON (`Null` when empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Whether the status is 200 or 201, the only successes Fleet Server accepts (§1.4).
    pub fn ok(&self) -> bool {
        matches!(self.status, 200 | 201)
    }

    /// `<type>: <reason>` of the ES error envelope (or the raw body when it is not one).
    pub fn error_detail(&self) -> String {
        error_detail(&self.json()).unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&self.body);
            text.chars().take(300).collect()
        })
    }
}

/// `type` of an error object (`{"error":{"type":..}}` or a bulk item's `error`).
pub fn error_type(v: &Value) -> Option<String> {
    let e = v.get("error").unwrap_or(v);
    e.get("type").and_then(Value::as_str).map(str::to_owned)
}

/// `<type>: <reason>` of an error object, if it is one.
pub fn error_detail(v: &Value) -> Option<String> {
    let e = v.get("error").unwrap_or(v);
    match (e.get("type"), e.get("reason")) {
        (Some(t), Some(r)) => Some(format!(
            "{}: {}",
            t.as_str().unwrap_or_default(),
            r.as_str().unwrap_or_default()
        )),
        (Some(t), None) => t.as_str().map(str::to_owned),
        _ => e.as_str().map(str::to_owned),
    }
}

/// Why no response arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Refused, reset, unresolvable, or no route: nobody answered.
    Connect(String),
    /// Timed out connecting or waiting for the answer.
    Timeout(String),
    /// The TLS handshake failed.
    Tls {
        /// What rustls said.
        detail: String,
        /// Why, as far as rustls tells.
        cause: TlsCause,
    },
    /// Anything else (protocol error, bad header ...).
    Other(String),
}

/// Why a TLS handshake failed: the server's certificate did not verify (the first five), the
/// server ended the handshake with an alert (its verdict on our client certificate, usually), or
/// something else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsCause {
    /// Not signed by any trusted CA.
    UnknownIssuer,
    /// Not valid for the host name (or IP address) of the URL.
    WrongName,
    /// Past its validity.
    Expired,
    /// Before its validity.
    NotValidYet,
    /// Any other reason the server certificate did not verify.
    BadCertificate,
    /// The server sent this fatal alert.
    Alert(rustls::AlertDescription),
    /// Anything else.
    Other,
}

impl TlsCause {
    /// Whether the server's certificate was rejected (retrying cannot help).
    pub fn is_certificate(self) -> bool {
        !matches!(self, TlsCause::Alert(_) | TlsCause::Other)
    }

    fn of(e: &rustls::Error) -> TlsCause {
        use rustls::CertificateError as C;
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                C::UnknownIssuer => TlsCause::UnknownIssuer,
                C::NotValidForName | C::NotValidForNameContext { .. } => TlsCause::WrongName,
                C::Expired | C::ExpiredContext { .. } => TlsCause::Expired,
                C::NotValidYet | C::NotValidYetContext { .. } => TlsCause::NotValidYet,
                _ => TlsCause::BadCertificate,
            },
            rustls::Error::General(_) => TlsCause::BadCertificate,
            rustls::Error::AlertReceived(alert) => TlsCause::Alert(*alert),
            _ => TlsCause::Other,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Connect(d) | Failure::Timeout(d) | Failure::Other(d) => f.write_str(d),
            Failure::Tls { detail, .. } => write!(f, "TLS handshake failed: {detail}"),
        }
    }
}

/// The HTTP client over one or more Elasticsearch hosts.
pub struct Client {
    hosts: Vec<String>,
    preferred: AtomicUsize,
    normal: ureq::Agent,
    poll: ureq::Agent,
    token: Option<Secret>,
    headers: Vec<(String, String)>,
    user_agent: String,
    opts: EsOptions,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("hosts", &self.hosts)
            .field("token", &self.token)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

/// `Elastic-Fleet-Server/<version> (<os>; <arch>; <commit>; <build time>)` with Go's names.
pub fn user_agent(version: ServerVersion) -> String {
    product_user_agent("Elastic-Fleet-Server", version)
}

/// The User-Agent of requests to the remote cluster of a `remote_elasticsearch` output:
/// `Elastic-Remote-Fleet-Server/<version> (...)` (es-contract.md §1.1).
pub fn remote_user_agent(version: ServerVersion) -> String {
    product_user_agent("Elastic-Remote-Fleet-Server", version)
}

fn product_user_agent(product: &str, version: ServerVersion) -> String {
    let os = std::env::consts::OS;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    let commit = option_env!("FLEET_EDGE_COMMIT")
        .unwrap_or(concat!("fleet-edge-", env!("CARGO_PKG_VERSION")));
    let built = option_env!("FLEET_EDGE_BUILD_TIME").unwrap_or("unknown");
    format!("{product}/{version} ({os}; {arch}; {commit}; {built})")
}

fn agent(
    trust: &Trust,
    client: Option<&TlsMaterial>,
    opts: &EsOptions,
    recv: Duration,
) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(AutoHeaderValue::None)
        .accept(AutoHeaderValue::None)
        .accept_encoding(AutoHeaderValue::None)
        .timeout_connect(Some(opts.connect_timeout))
        .timeout_recv_response(Some(recv))
        .timeout_recv_body(Some(recv))
        .max_idle_connections_per_host(16)
        .tls_config(ureq_tls(trust, client))
        .build()
        .new_agent()
}

impl Client {
    /// A client for `hosts` (base URLs without a trailing slash).
    pub fn new(
        hosts: Vec<String>,
        trust: &Trust,
        client_cert: Option<&TlsMaterial>,
        token: Option<Secret>,
        headers: Vec<(String, String)>,
        opts: EsOptions,
    ) -> Client {
        let hosts = hosts
            .into_iter()
            .map(|h| h.trim_end_matches('/').to_owned())
            .collect();
        Client {
            hosts,
            preferred: AtomicUsize::new(0),
            normal: agent(trust, client_cert, &opts, opts.request_timeout),
            poll: agent(
                trust,
                client_cert,
                &opts,
                opts.poll_timeout + Duration::from_secs(30),
            ),
            token,
            headers,
            // The version this server claims is set by its caller ([`Client::with_user_agent`]).
            user_agent: user_agent(crate::server_version::BUILT_IN),
            opts,
        }
    }

    /// The same client sending another `User-Agent`.
    pub fn with_user_agent(mut self, user_agent: String) -> Client {
        self.user_agent = user_agent;
        self
    }

    /// The options in force.
    pub fn options(&self) -> &EsOptions {
        &self.opts
    }

    /// The configured hosts.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// Sends `req` with failover and retries; `Ok` carries whatever status came last.
    pub fn send(&self, req: &Req<'_>) -> Result<Resp, Failure> {
        let n = self.hosts.len().max(1);
        let retry = req.retries && !req.long_poll;
        let attempts = if retry {
            self.opts.max_retries as usize + 1
        } else {
            n
        };
        let start = self.preferred.load(Ordering::Relaxed);
        let mut backoff = self.opts.backoff_initial;
        let mut last: Result<Resp, Failure> = Err(Failure::Other("no Elasticsearch host".into()));
        // The job's deadline (issue 15 §1): no attempt starts after it, none outlives it.
        let deadline = crate::backend::deadline::current();
        for attempt in 0..attempts {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                if attempt == 0 || last.is_ok() {
                    last = Err(Failure::Timeout(
                        "the request's deadline passed before Elasticsearch answered".into(),
                    ));
                }
                break;
            }
            let host = (start + attempt) % n;
            match self.once(host, req, left) {
                Ok(resp) if !retryable(resp.status) || !retry => {
                    self.preferred.store(host, Ordering::Relaxed);
                    return Ok(resp);
                }
                Ok(resp) => {
                    log::debug!(
                        "elasticsearch {} answered {}; retrying",
                        resp.host,
                        resp.status
                    );
                    last = Ok(resp);
                }
                Err(f) => {
                    log::debug!(
                        "elasticsearch {} failed: {f}",
                        self.hosts.get(host).map_or("", String::as_str)
                    );
                    let fatal = match &f {
                        Failure::Tls { cause, .. } => cause.is_certificate(),
                        Failure::Other(_) => true,
                        _ => false,
                    };
                    last = Err(f);
                    if fatal {
                        break;
                    }
                }
            }
            let round_done = (attempt + 1) % n == 0;
            let status_retry = last.is_ok();
            if attempt + 1 < attempts && retry && (round_done || status_retry) {
                let pause = jitter(backoff);
                // A retry that could not start before the deadline is not waited for.
                if deadline.is_some_and(|d| Instant::now() + pause >= d) {
                    break;
                }
                std::thread::sleep(pause);
                backoff = (backoff * 3 / 2).min(self.opts.backoff_max);
            }
        }
        last
    }

    /// Sends and maps every failure and error status to [`StoreError`]; `Ok` is a 200/201, or
    /// one of the `accept` statuses the caller handles itself.
    pub fn call(&self, req: &Req<'_>, accept: &[u16]) -> Result<Resp, StoreError> {
        let resp = self.send(req).map_err(failure_error)?;
        if resp.ok() || accept.contains(&resp.status) {
            return Ok(resp);
        }
        Err(status_error(&resp))
    }

    /// One attempt on one host; `limit` bounds it end to end (the time left before the job's
    /// deadline).
    fn once(&self, host: usize, req: &Req<'_>, limit: Option<Duration>) -> Result<Resp, Failure> {
        let base = self
            .hosts
            .get(host)
            .ok_or_else(|| Failure::Other("no Elasticsearch host".into()))?;
        let mut b = http::Request::builder()
            .method(req.method.as_http())
            .uri(format!("{base}{}", req.path))
            .header("User-Agent", &self.user_agent)
            .header("X-elastic-product-origin", "fleet");
        for (k, v) in &self.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if let Some(key) = req.api_key {
            b = b.header("Authorization", format!("ApiKey {}", key.encoded()));
        } else if let Some(token) = &self.token {
            b = b.header("Authorization", format!("Bearer {}", token.expose()));
        }
        if req.accept_json {
            b = b.header("Accept", "application/json");
        } else if req.accept_cbor {
            b = b.header("Accept", "application/cbor");
        }
        let agent = if req.long_poll {
            &self.poll
        } else {
            &self.normal
        };
        let result = match &req.body {
            Some(body) => b
                .header(
                    "Content-Type",
                    req.content_type.unwrap_or("application/json"),
                )
                .body(body.as_slice())
                .map(|r| agent.run(bounded(agent, r, limit))),
            None => b.body(()).map(|r| agent.run(bounded(agent, r, limit))),
        };
        let mut resp = result
            .map_err(|e| Failure::Other(format!("bad request: {e}")))?
            .map_err(|e| classify(e, base))?;
        let status = resp.status().as_u16();
        let product = resp
            .headers()
            .get("x-elastic-product")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| classify(e, base))?;
        Ok(Resp {
            status,
            body,
            product,
            host: base.clone(),
        })
    }
}

/// `r` with an end-to-end timeout of `limit` (when there is one) on top of the agent's own.
fn bounded<S: ureq::AsSendBody>(
    agent: &ureq::Agent,
    r: http::Request<S>,
    limit: Option<Duration>,
) -> http::Request<S> {
    match limit {
        Some(limit) => agent
            .configure_request(r)
            .timeout_global(Some(limit))
            .build(),
        None => r,
    }
}

fn retryable(status: u16) -> bool {
    matches!(status, 408 | 425 | 429 | 502 | 503 | 504)
}

fn jitter(d: Duration) -> Duration {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 1];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    // 75 % .. 125 % of the nominal backoff.
    d * (75 + u32::from(b[0]) * 50 / 255) / 100
}

/// Maps a ureq error to a [`Failure`], naming the host.
fn classify(e: ureq::Error, host: &str) -> Failure {
    use std::io::ErrorKind;
    match e {
        ureq::Error::Timeout(t) => Failure::Timeout(format!("{host}: timed out ({t})")),
        ureq::Error::HostNotFound => Failure::Connect(format!("{host}: host not found")),
        ureq::Error::ConnectionFailed => Failure::Connect(format!("{host}: connection failed")),
        ureq::Error::Rustls(r) => tls_failure(&r, host),
        ureq::Error::Tls(m) => Failure::Tls {
            detail: format!("{host}: {m}"),
            cause: TlsCause::Other,
        },
        ureq::Error::Io(io) => {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return tls_failure(r, host);
            }
            match io.kind() {
                ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                    Failure::Timeout(format!("{host}: timed out ({io})"))
                }
                _ => Failure::Connect(format!("{host}: {io}")),
            }
        }
        other => Failure::Other(format!("{host}: {other}")),
    }
}

fn tls_failure(e: &rustls::Error, host: &str) -> Failure {
    Failure::Tls {
        detail: format!("{host}: {e}"),
        cause: TlsCause::of(e),
    }
}

/// A transport failure as the store reports it: Elasticsearch cannot be reached.
pub fn failure_error(f: Failure) -> StoreError {
    StoreError::Unavailable(format!("elasticsearch unreachable: {f}"))
}

/// An error status as the store reports it (after retries).
pub fn status_error(resp: &Resp) -> StoreError {
    match resp.status {
        429 => StoreError::TooManyRequests,
        408 | 425 | 502 | 503 | 504 => StoreError::Unavailable(format!(
            "elasticsearch answered {}: {}",
            resp.status,
            resp.error_detail()
        )),
        status => StoreError::Failed {
            status,
            detail: resp.error_detail(),
        },
    }
}

/// A bulk or msearch item error as the store reports it.
pub fn item_error(status: u16, item: &Value) -> StoreError {
    let detail = error_detail(item).unwrap_or_default();
    match status {
        429 => StoreError::TooManyRequests,
        503 => StoreError::Unavailable(format!("elasticsearch answered 503: {detail}")),
        _ => StoreError::Failed { status, detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_has_the_fleet_server_form() {
        let ua = user_agent(crate::server_version::BUILT_IN);
        assert!(ua.starts_with("Elastic-Fleet-Server/9.6.0 ("), "{ua}");
        assert_eq!(ua.matches("; ").count(), 3, "{ua}");
        assert!(ua.ends_with(')'));
        let raised = ServerVersion::parse_override("9.7.2").unwrap();
        assert!(user_agent(raised).starts_with("Elastic-Fleet-Server/9.7.2 ("));
        let remote = remote_user_agent(crate::server_version::BUILT_IN);
        assert_eq!(
            remote.strip_prefix("Elastic-Remote-Fleet-Server"),
            ua.strip_prefix("Elastic-Fleet-Server")
        );
    }

    #[test]
    fn error_details_read_the_envelope() {
        let v = serde_json::json!({"error": {"type": "index_not_found_exception", "reason": "no such index [.fleet-agents]"}, "status": 404});
        assert_eq!(
            error_detail(&v).as_deref(),
            Some("index_not_found_exception: no such index [.fleet-agents]")
        );
        assert_eq!(error_type(&v).as_deref(), Some("index_not_found_exception"));
        let resp = Resp {
            status: 429,
            body: v.to_string().into_bytes(),
            product: None,
            host: String::new(),
        };
        assert_eq!(status_error(&resp), StoreError::TooManyRequests);
        let resp = Resp {
            status: 400,
            ..resp
        };
        assert!(
            matches!(status_error(&resp), StoreError::Failed { status: 400, detail } if detail.starts_with("index_not_found_exception: "))
        );
    }

    #[test]
    fn rustls_errors_map_to_causes() {
        use rustls::{AlertDescription, CertificateError as C, Error as E};
        let cause = |e: E| TlsCause::of(&e);
        assert_eq!(
            cause(E::InvalidCertificate(C::UnknownIssuer)),
            TlsCause::UnknownIssuer
        );
        assert_eq!(
            cause(E::InvalidCertificate(C::NotValidForName)),
            TlsCause::WrongName
        );
        assert_eq!(cause(E::InvalidCertificate(C::Expired)), TlsCause::Expired);
        assert_eq!(
            cause(E::InvalidCertificate(C::NotValidYet)),
            TlsCause::NotValidYet
        );
        assert_eq!(
            cause(E::InvalidCertificate(C::BadSignature)),
            TlsCause::BadCertificate
        );
        assert_eq!(
            cause(E::AlertReceived(AlertDescription::CertificateRequired)),
            TlsCause::Alert(AlertDescription::CertificateRequired)
        );
        assert_eq!(cause(E::HandshakeNotComplete), TlsCause::Other);
        assert!(
            TlsCause::UnknownIssuer.is_certificate() && TlsCause::BadCertificate.is_certificate()
        );
        assert!(!TlsCause::Alert(AlertDescription::UnknownCA).is_certificate());
        assert!(!TlsCause::Other.is_certificate());
    }

    #[test]
    fn jitter_stays_near_the_backoff() {
        for _ in 0..50 {
            let j = jitter(Duration::from_millis(1000));
            assert!(
                j >= Duration::from_millis(750) && j <= Duration::from_millis(1250),
                "{j:?}"
            );
        }
    }
}
