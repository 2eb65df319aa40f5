//! Startup of the Elasticsearch store (es-contract.md §1.2, §2.1.1): the fingerprint probe when
//! `ca_trusted_fingerprint` is set, then `GET /` with the product header and the version rule,
//! retried with backoff until the startup timeout while Elasticsearch is unreachable or answers
//! 5xx/429, and failing at once, with one sentence naming the cause, on bad credentials, an
//! untrusted certificate (saying against what: CA file, fingerprint or public roots), a client
//! certificate missing or refused, a fingerprint no presented certificate has, a server that is
//! not Elasticsearch, or a version too old. Neighbours: `tls.rs` (the probe), `client.rs`.

use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;

use super::client::{Client, Failure, Method, Req, Resp, TlsCause};
use super::tls::{check_client_cert, probe_fingerprint, ProbeFailure, Trust};
use super::EsOptions;
use crate::config::{parse_http_url, EsSettings};
use crate::server_version::ServerVersion;

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
    #[error("the TLS certificate presented by Elasticsearch at {host} {reason} (certificate verification failed: {detail})")]
    UntrustedCertificate {
        /// The host.
        host: String,
        /// What is wrong with it, naming the setting that decides what is trusted.
        reason: String,
        /// What rustls said.
        detail: String,
    },
    /// Elasticsearch asked for a client certificate and none is configured.
    #[error("Elasticsearch at {host} requires a TLS client certificate (it ended the handshake with the alert {alert}): set --fleet-server-es-cert and --fleet-server-es-cert-key")]
    ClientCertificateRequired {
        /// The host.
        host: String,
        /// The TLS alert it sent.
        alert: String,
    },
    /// Elasticsearch refused the configured client certificate.
    #[error("Elasticsearch at {host} rejected the client certificate of --fleet-server-es-cert (it ended the handshake with the alert {alert}): it must be valid now and signed by a CA Elasticsearch trusts for clients")]
    ClientCertificateRejected {
        /// The host.
        host: String,
        /// The TLS alert it sent.
        alert: String,
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
    #[error("Elasticsearch at {host} is version {found}, but fleet-edge (Fleet Server {server}, the version it claims: --server-version) needs Elasticsearch {required} or newer")]
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
        .with_user_agent(super::client::user_agent(settings.server_version))
    });
    match client.send(&Req::new(Method::Get, "/").once()) {
        Ok(resp) => check_root(&resp, settings.server_version),
        Err(Failure::Tls { detail, cause }) => {
            let (host, detail) = split_host(&detail);
            Step::Fail(tls_error(settings, probed.is_some(), host, detail, cause))
        }
        Err(f) => Step::Retry(f.to_string()),
    }
}

/// Words a failed TLS handshake: what is wrong with the server's certificate given what is
/// trusted (CA files, the CA found by its fingerprint, or only the public roots), or what the
/// server's alert says about our client certificate.
fn tls_error(
    settings: &EsSettings,
    probed: bool,
    host: String,
    detail: String,
    cause: TlsCause,
) -> EsError {
    use rustls::AlertDescription as A;
    let reason = match cause {
        TlsCause::UnknownIssuer => match (settings.ca_certs.is_empty(), probed) {
            (false, false) => "is not signed by a CA of --fleet-server-es-ca",
            (true, true) => "is not signed by the CA of --fleet-server-es-ca-trusted-fingerprint",
            (false, true) => "is not signed by a CA of --fleet-server-es-ca or the CA of --fleet-server-es-ca-trusted-fingerprint",
            (true, false) => "is not signed by a public CA, and neither --fleet-server-es-ca nor --fleet-server-es-ca-trusted-fingerprint is set",
        },
        TlsCause::WrongName => "is not valid for the host name of that URL",
        TlsCause::Expired => "has expired",
        TlsCause::NotValidYet => "is not valid yet (check the clock)",
        TlsCause::BadCertificate => {
            "is not trusted: check --fleet-server-es-ca or --fleet-server-es-ca-trusted-fingerprint"
        }
        TlsCause::Alert(alert) => {
            let name = format!("{alert:?}");
            let presented = settings.client_cert.is_some();
            return match alert {
                A::CertificateRequired | A::BadCertificate | A::CertificateUnknown
                    if !presented =>
                {
                    EsError::ClientCertificateRequired { host, alert: name }
                }
                A::UnknownCA
                | A::BadCertificate
                | A::CertificateUnknown
                | A::CertificateExpired
                | A::CertificateRevoked
                | A::UnsupportedCertificate
                | A::AccessDenied
                    if presented =>
                {
                    EsError::ClientCertificateRejected { host, alert: name }
                }
                _ => EsError::TlsHandshake { host, detail },
            };
        }
        TlsCause::Other => return EsError::TlsHandshake { host, detail },
    };
    EsError::UntrustedCertificate {
        host,
        reason: reason.into(),
        detail,
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

fn check_root(resp: &Resp, server: ServerVersion) -> Step<String> {
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
    let required = server.min_elasticsearch();
    match parse_version(&found) {
        Some(v) if v >= required => Step::Done(found),
        _ => Step::Fail(EsError::UnsupportedVersion {
            host,
            found,
            required: format!("{}.{}.{}", required.0, required.1, required.2),
            server: server.to_string(),
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
    use crate::server_version::BUILT_IN;

    #[test]
    fn version_rule_of_the_contract() {
        assert_eq!(parse_version("9.6.0"), Some((9, 6, 0)));
        assert_eq!(parse_version("9.6.0-SNAPSHOT"), Some((9, 6, 0)));
        assert_eq!(parse_version(" 9.7.1-ddd98c79-SNAPSHOT"), Some((9, 7, 1)));
        assert_eq!(parse_version("10.0"), Some((10, 0, 0)));
        assert_eq!(parse_version("garbage"), None);
        assert_eq!(parse_version(""), None);
        let ok_for = |n: &str, server: ServerVersion| {
            let resp = Resp {
                status: 200,
                body: serde_json::json!({"version": {"number": n}})
                    .to_string()
                    .into_bytes(),
                product: Some("Elasticsearch".into()),
                host: "http://es:9200".into(),
            };
            matches!(check_root(&resp, server), Step::Done(_))
        };
        let ok = |n: &str| ok_for(n, BUILT_IN);
        assert!(ok("9.6.0") && ok("9.6.3") && ok("9.7.0") && ok("10.1.0") && ok("9.6.0-SNAPSHOT"));
        assert!(!ok("9.5.9") && !ok("8.19.0") && !ok("nonsense"));
        // A raised claim raises the cluster it needs, as Elastic's Fleet Server of that release.
        let raised = ServerVersion::parse_override("9.7.0").unwrap();
        assert!(ok_for("9.7.0", raised) && ok_for("10.0.0", raised));
        assert!(!ok_for("9.6.9", raised));
    }

    fn es_settings(ca: bool, client_cert: bool) -> EsSettings {
        use crate::tls::test_support::{make_ca, make_leaf};
        let ca_cert = make_ca("CA");
        EsSettings {
            hosts: vec!["https://es:9200".into()],
            ca: Vec::new(),
            ca_certs: if ca {
                vec![ca_cert.cert_der.clone()]
            } else {
                Vec::new()
            },
            ca_trusted_fingerprint: None,
            client_cert: client_cert.then(|| make_leaf(&ca_cert, &["fleet"]).material()),
            insecure: false,
            service_token: None,
            headers: Vec::new(),
            server_version: BUILT_IN,
        }
    }

    #[test]
    fn tls_failures_name_what_was_trusted_and_the_client_certificate() {
        use rustls::AlertDescription as A;
        let text = |ca: bool, probed: bool, client: bool, cause: TlsCause| {
            tls_error(
                &es_settings(ca, client),
                probed,
                "https://es:9200".into(),
                "rustls says".into(),
                cause,
            )
            .to_string()
        };
        assert_eq!(
            text(true, false, false, TlsCause::UnknownIssuer),
            "the TLS certificate presented by Elasticsearch at https://es:9200 is not signed by a CA of --fleet-server-es-ca (certificate verification failed: rustls says)"
        );
        assert!(text(false, false, false, TlsCause::UnknownIssuer)
            .contains(" is not signed by a public CA, and neither --fleet-server-es-ca nor --fleet-server-es-ca-trusted-fingerprint is set ("));
        assert!(text(false, true, false, TlsCause::UnknownIssuer)
            .contains(" is not signed by the CA of --fleet-server-es-ca-trusted-fingerprint ("));
        assert!(text(true, false, false, TlsCause::WrongName)
            .contains(" is not valid for the host name of that URL ("));
        assert!(text(true, false, false, TlsCause::Expired).contains(" has expired ("));
        assert_eq!(
            text(true, false, false, TlsCause::Alert(A::CertificateRequired)),
            "Elasticsearch at https://es:9200 requires a TLS client certificate (it ended the handshake with the alert CertificateRequired): set --fleet-server-es-cert and --fleet-server-es-cert-key"
        );
        assert!(text(true, false, true, TlsCause::Alert(A::UnknownCA))
            .starts_with("Elasticsearch at https://es:9200 rejected the client certificate of --fleet-server-es-cert (it ended the handshake with the alert UnknownCA)"));
        // Alerts that say nothing about client certificates stay a handshake failure.
        for (client, alert) in [
            (false, A::HandshakeFailure),
            (false, A::UnknownCA),
            (true, A::ProtocolVersion),
        ] {
            assert!(
                text(true, false, client, TlsCause::Alert(alert)).starts_with(
                    "the TLS handshake with Elasticsearch at https://es:9200 failed (rustls says)"
                ),
                "{alert:?}"
            );
        }
        assert!(text(true, false, false, TlsCause::Other).starts_with("the TLS handshake"));
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
            check_root(&resp(401, Some("Elasticsearch")), BUILT_IN),
            Step::Fail(EsError::Unauthorized { .. })
        ));
        assert!(matches!(
            check_root(&resp(503, Some("Elasticsearch")), BUILT_IN),
            Step::Retry(_)
        ));
        assert!(matches!(
            check_root(&resp(429, None), BUILT_IN),
            Step::Retry(_)
        ));
        assert!(matches!(
            check_root(&resp(403, Some("Elasticsearch")), BUILT_IN),
            Step::Fail(EsError::Rejected { status: 403, .. })
        ));
        assert!(matches!(
            check_root(&resp(200, None), BUILT_IN),
            Step::Fail(EsError::NotElasticsearch { .. })
        ));
    }
}
