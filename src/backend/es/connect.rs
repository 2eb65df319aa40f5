//! Startup of the Elasticsearch store (es-contract.md §1.2, §2.1.1): the fingerprint probe when
//! `ca_trusted_fingerprint` is set, then `GET /` with the product header and the version rule,
//! retried with backoff until the startup timeout while Elasticsearch is unreachable or answers
//! 5xx/429, and failing at once, with one sentence naming the cause, on bad credentials, an
//! untrusted certificate, a fingerprint no presented certificate has, a server that is not
//! Elasticsearch, or a version too old. Neighbours: `tls.rs` (the probe), `client.rs`.

use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;

use super::client::{Client, Failure, Method, Req, Resp};
use super::tls::{check_client_cert, probe_fingerprint, ProbeFailure, Trust};
use super::EsOptions;
use crate::api::user_agent::{SERVER_VERSION, SERVER_VERSION_STR};
use crate::config::{parse_http_url, EsSettings};

/// Why the Elasticsearch store could not start; every variant is one sentence for `main`, and
/// every one means "do not start" (the retryable causes have already been retried until the
/// startup timeout).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EsError {
    /// The settings cannot work (no host, unusable client certificate ...).
    #[error("the Elasticsearch settings cannot be used: {0}")]
    Config(String),
    /// Nothing answered in time (refused, timed out, 5xx or 429 until the deadline).
    #[error("cannot reach Elasticsearch at {hosts} within {waited:?}: {reason}")]
    Unreachable {
        /// The hosts tried.
        hosts: String,
        /// How long startup waited.
        waited: Duration,
        /// The last failure.
        reason: String,
    },
    /// Elasticsearch answered 401 to the service token.
    #[error("Elasticsearch at {host} rejected the service token (401 Unauthorized): check --fleet-server-service-token or --fleet-server-service-token-path")]
    Unauthorized {
        /// The host.
        host: String,
    },
    /// The server certificate does not verify against the configured CA(s) or public roots.
    #[error("the TLS certificate of Elasticsearch at {host} is not trusted ({detail}): check --fleet-server-es-ca or --fleet-server-es-ca-trusted-fingerprint")]
    UntrustedCertificate {
        /// The host.
        host: String,
        /// What rustls said.
        detail: String,
    },
    /// No certificate the server presented has the configured fingerprint.
    #[error("no certificate presented by Elasticsearch at {host} has the SHA-256 fingerprint {fingerprint} given by --fleet-server-es-ca-trusted-fingerprint (it presented {presented})")]
    FingerprintNotFound {
        /// The host.
        host: String,
        /// The configured fingerprint.
        fingerprint: String,
        /// Fingerprints of the presented chain.
        presented: String,
    },
    /// The certificate with the fingerprint does not verify the server's chain or name.
    #[error("the certificate of Elasticsearch at {host} that has the fingerprint given by --fleet-server-es-ca-trusted-fingerprint does not verify its server certificate: {detail}")]
    FingerprintChainInvalid {
        /// The host.
        host: String,
        /// Why.
        detail: String,
    },
    /// The TLS handshake failed for a reason other than the server certificate.
    #[error("the TLS handshake with Elasticsearch at {host} failed ({detail}); if it requires client certificates, set --fleet-server-es-cert and --fleet-server-es-cert-key")]
    TlsHandshake {
        /// The host.
        host: String,
        /// What rustls said.
        detail: String,
    },
    /// `GET /` lacked `X-elastic-product: Elasticsearch`.
    #[error("the server at {host} is not Elasticsearch: its answer to GET / lacks the header X-elastic-product: Elasticsearch")]
    NotElasticsearch {
        /// The host.
        host: String,
    },
    /// Elasticsearch is older than this Fleet Server supports.
    #[error("Elasticsearch at {host} is version {found}, but fleet-edge (Fleet Server {server}) needs Elasticsearch {required} or newer")]
    UnsupportedVersion {
        /// The host.
        host: String,
        /// `version.number` as reported.
        found: String,
        /// The minimum.
        required: String,
        /// Our announced version.
        server: String,
    },
    /// `GET /` answered another error status.
    #[error("Elasticsearch at {host} answered GET / with HTTP {status}: {detail}")]
    Rejected {
        /// The host.
        host: String,
        /// Status.
        status: u16,
        /// `<type>: <reason>`.
        detail: String,
    },
}

/// What a successful startup learnt.
#[derive(Debug)]
pub struct Connected {
    /// The client, with the probed CA among its roots.
    pub client: Client,
    /// `version.number` of the cluster.
    pub version: String,
    /// The CA found through `ca_trusted_fingerprint`, if any.
    pub probed_ca: Option<CertificateDer<'static>>,
}

/// Outcome of one attempt: done, retry later (with the reason), or give up.
enum Step<T> {
    Done(T),
    Retry(String),
    Fail(EsError),
}

/// Runs the startup checks (see the module header).
pub fn connect(
    settings: &EsSettings,
    timeout: Option<Duration>,
    opts: EsOptions,
) -> Result<Connected, EsError> {
    if settings.hosts.is_empty() {
        return Err(EsError::Config(
            "no Elasticsearch host is configured".into(),
        ));
    }
    if let Some(m) = &settings.client_cert {
        check_client_cert(m)
            .map_err(|e| EsError::Config(format!("the client certificate cannot be used: {e}")))?;
    }
    if settings.insecure {
        log::warn!(
            "TLS certificate verification of Elasticsearch is DISABLED (--fleet-server-es-insecure): \
             the service token and all Fleet data can be intercepted; never use this in production"
        );
    }
    let started = Instant::now();
    let deadline = timeout.map(|t| started + t);
    let mut backoff = Duration::from_millis(500);
    let mut probed: Option<CertificateDer<'static>> = None;
    let mut client: Option<Client> = None;
    loop {
        let step = attempt(settings, &opts, &mut probed, &mut client);
        let reason = match step {
            Step::Done(version) => {
                let client = client.ok_or_else(|| EsError::Config("internal: no client".into()))?;
                return Ok(Connected {
                    client,
                    version,
                    probed_ca: probed,
                });
            }
            Step::Fail(e) => return Err(e),
            Step::Retry(reason) => reason,
        };
        let now = Instant::now();
        let left = match deadline {
            Some(d) if now >= d => {
                return Err(EsError::Unreachable {
                    hosts: settings.hosts.join(", "),
                    waited: now - started,
                    reason,
                })
            }
            Some(d) => d - now,
            None => backoff,
        };
        log::warn!("Elasticsearch is not ready ({reason}); retrying in {backoff:?}");
        std::thread::sleep(backoff.min(left));
        backoff = (backoff * 3 / 2).min(Duration::from_secs(10));
    }
}

fn attempt(
    settings: &EsSettings,
    opts: &EsOptions,
    probed: &mut Option<CertificateDer<'static>>,
    client: &mut Option<Client>,
) -> Step<String> {
    let any_https = settings
        .hosts
        .iter()
        .any(|h| parse_http_url(h, Some("http")).is_ok_and(|u| u.scheme == "https"));
    // A fingerprint only matters for https hosts (plain http ignores TLS settings, as in Go).
    if let (Some(fp), None, false, true) = (
        &settings.ca_trusted_fingerprint,
        &probed,
        settings.insecure,
        any_https,
    ) {
        match probe(settings, fp, opts) {
            Step::Done(ca) => *probed = Some(ca),
            Step::Retry(r) => return Step::Retry(r),
            Step::Fail(e) => return Step::Fail(e),
        }
    }
    let client = client.get_or_insert_with(|| {
        Client::new(
            settings.hosts.clone(),
            &Trust::from_settings(settings, probed.as_ref()),
            settings.client_cert.as_ref(),
            settings.service_token.clone(),
            settings.headers.clone(),
            opts.clone(),
        )
    });
    match client.send(&Req::new(Method::Get, "/").once()) {
        Ok(resp) => check_root(&resp),
        Err(Failure::Tls {
            detail,
            certificate: true,
        }) => {
            let (host, detail) = split_host(&detail);
            Step::Fail(EsError::UntrustedCertificate { host, detail })
        }
        Err(Failure::Tls { detail, .. }) => {
            let (host, detail) = split_host(&detail);
            Step::Fail(EsError::TlsHandshake { host, detail })
        }
        Err(f) => Step::Retry(f.to_string()),
    }
}

/// Failures read `<host>: <what>`; the host is named once in the sentence.
fn split_host(detail: &str) -> (String, String) {
    match detail.split_once(": ") {
        Some((host, rest)) => (host.to_owned(), rest.to_owned()),
        None => (String::new(), detail.to_owned()),
    }
}

fn probe(
    settings: &EsSettings,
    fp: &crate::tls::Fingerprint,
    opts: &EsOptions,
) -> Step<CertificateDer<'static>> {
    let mut last = String::from("no https host to probe");
    for host in &settings.hosts {
        let Ok(url) = parse_http_url(host, Some("http")) else {
            continue;
        };
        if url.scheme != "https" {
            continue;
        }
        match probe_fingerprint(
            &url.host,
            url.port.unwrap_or(9200),
            fp,
            settings.client_cert.as_ref(),
            opts.connect_timeout,
        ) {
            Ok(ca) => return Step::Done(ca),
            Err(ProbeFailure::NoMatch { presented }) => {
                return Step::Fail(EsError::FingerprintNotFound {
                    host: host.clone(),
                    fingerprint: fp.to_string(),
                    presented: presented.join(", "),
                })
            }
            Err(ProbeFailure::ChainInvalid(detail)) => {
                return Step::Fail(EsError::FingerprintChainInvalid {
                    host: host.clone(),
                    detail,
                })
            }
            Err(ProbeFailure::Unreachable(r)) => last = format!("{host}: {r}"),
        }
    }
    Step::Retry(last)
}

fn check_root(resp: &Resp) -> Step<String> {
    let host = resp.host.clone();
    match resp.status {
        200 => {}
        401 => return Step::Fail(EsError::Unauthorized { host }),
        408 | 425 | 429 | 500..=599 => {
            return Step::Retry(format!(
                "{host} answered {}: {}",
                resp.status,
                resp.error_detail()
            ))
        }
        status => {
            return Step::Fail(EsError::Rejected {
                host,
                status,
                detail: resp.error_detail(),
            })
        }
    }
    if !resp
        .product
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("Elasticsearch"))
    {
        return Step::Fail(EsError::NotElasticsearch { host });
    }
    let found = resp
        .json()
        .pointer("/version/number")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    let (major, minor, _) = SERVER_VERSION;
    match parse_version(&found) {
        Some(v) if v >= (major, minor, 0) => Step::Done(found),
        _ => Step::Fail(EsError::UnsupportedVersion {
            host,
            found,
            required: format!("{major}.{minor}.0"),
            server: SERVER_VERSION_STR.into(),
        }),
    }
}

/// es-contract.md §2.1.1: lower-case, strip `-snapshot`, trim, drop anything after the first
/// `-`, then `major.minor.patch` (missing parts are 0).
pub fn parse_version(number: &str) -> Option<(u64, u64, u64)> {
    let lower = number.to_ascii_lowercase();
    let lower = lower.strip_suffix("-snapshot").unwrap_or(&lower).trim();
    let core = lower.split('-').next()?;
    let mut parts = core.split('.');
    let mut next = || -> Option<u64> {
        match parts.next() {
            None => Some(0),
            Some(p) => p.parse().ok(),
        }
    };
    let v = (next()?, next()?, next()?);
    if parts.next().is_some() {
        return None;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rule_of_the_contract() {
        assert_eq!(parse_version("9.6.0"), Some((9, 6, 0)));
        assert_eq!(parse_version("9.6.0-SNAPSHOT"), Some((9, 6, 0)));
        assert_eq!(parse_version(" 9.7.1-ddd98c79-SNAPSHOT"), Some((9, 7, 1)));
        assert_eq!(parse_version("10.0"), Some((10, 0, 0)));
        assert_eq!(parse_version("garbage"), None);
        assert_eq!(parse_version(""), None);
        let ok = |n: &str| {
            let resp = Resp {
                status: 200,
                body: serde_json::json!({"version": {"number": n}})
                    .to_string()
                    .into_bytes(),
                product: Some("Elasticsearch".into()),
                host: "http://es:9200".into(),
            };
            matches!(check_root(&resp), Step::Done(_))
        };
        assert!(ok("9.6.0") && ok("9.6.3") && ok("9.7.0") && ok("10.1.0") && ok("9.6.0-SNAPSHOT"));
        assert!(!ok("9.5.9") && !ok("8.19.0") && !ok("nonsense"));
    }

    #[test]
    fn root_answers_map_to_decisions() {
        let resp = |status: u16, product: Option<&str>| Resp {
            status,
            body: br#"{"error":{"type":"security_exception","reason":"nope"},"status":401}"#
                .to_vec(),
            product: product.map(str::to_owned),
            host: "http://es:9200".into(),
        };
        assert!(matches!(
            check_root(&resp(401, Some("Elasticsearch"))),
            Step::Fail(EsError::Unauthorized { .. })
        ));
        assert!(matches!(
            check_root(&resp(503, Some("Elasticsearch"))),
            Step::Retry(_)
        ));
        assert!(matches!(check_root(&resp(429, None)), Step::Retry(_)));
        assert!(matches!(
            check_root(&resp(403, Some("Elasticsearch"))),
            Step::Fail(EsError::Rejected { status: 403, .. })
        ));
        assert!(matches!(
            check_root(&resp(200, None)),
            Step::Fail(EsError::NotElasticsearch { .. })
        ));
    }
}
