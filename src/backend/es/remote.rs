//! The HTTP client of a `remote_elasticsearch` output's cluster ([`HttpConnect`], the real
//! [`Connect`] of `backend::remote`): the output's hosts, its service token as
//! `Authorization: Bearer`, `User-Agent: Elastic-Remote-Fleet-Server/...`, and TLS from its `ssl`
//! settings: `certificate_authorities` (file paths or inline PEM; only those roots are trusted),
//! `ca_trusted_fingerprint` (the CA found in the presented chain by the same probe as the
//! store's own connection, `tls.rs`), `verification_mode: none` (no verification). The API-key
//! calls are `keys.rs`'s, the store's own.
//!
//! One difference from Elastic's `tlscommon`: `verification_mode: certificate` (chain without
//! host name) is verified as `full`, host name included, because ureq 3 takes no custom
//! verifier (DESIGN.md §5); a cluster whose certificate does not name its host then degrades
//! the output with the TLS error, which says why.
//!
//! Requests to a remote cluster are tried once per host (failover, no retry rounds) with short
//! timeouts: a remote cluster that is down must cost an agent's checkin little, and the
//! registry (`backend::remote`) then fails fast for a while.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::client::{remote_user_agent, Client};
use super::keys;
use super::tls::{probe_fingerprint, ProbeFailure, Trust};
use super::EsOptions;
use crate::backend::remote::{Connect, ConnectError, KeyCluster};
use crate::backend::{ApiKey, NewApiKey, StoreError};
use crate::config::{parse_http_url, Secret};
use crate::server_version::ServerVersion;
use crate::tls::{certificate_authorities_from_pem, load_certificate_authorities, Fingerprint};
use crate::transform::remote::{RemoteEs, Verification};

/// Builds remote-cluster clients over HTTP(S).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConnect {
    /// TCP connect (and fingerprint probe) timeout.
    pub connect_timeout: Duration,
    /// Response timeout.
    pub request_timeout: Duration,
    /// The Fleet Server version this server claims, sent in the `User-Agent`.
    pub server_version: ServerVersion,
}

impl Default for HttpConnect {
    fn default() -> Self {
        HttpConnect {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            server_version: crate::server_version::BUILT_IN,
        }
    }
}

/// A remote cluster's client.
#[derive(Debug)]
pub struct RemoteCluster {
    client: Client,
}

impl RemoteCluster {
    /// The hosts it talks to.
    pub fn hosts(&self) -> &[String] {
        self.client.hosts()
    }
}

impl KeyCluster for RemoteCluster {
    fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey, StoreError> {
        keys::create(&self.client, key)
    }
    fn api_key_roles(&self, id: &str) -> Result<Option<Value>, StoreError> {
        keys::roles(&self.client, id)
    }
    fn update_api_key_roles(&self, id: &str, roles: &Value) -> Result<(), StoreError> {
        keys::update_roles(&self.client, id, roles)
    }
    fn invalidate_api_keys(&self, ids: &[String]) -> Result<(), StoreError> {
        keys::invalidate(&self.client, ids)
    }
}

impl HttpConnect {
    /// The client for `remote` (see the module header).
    pub fn client(&self, remote: &RemoteEs) -> Result<RemoteCluster, ConnectError> {
        if let Some(problem) = &remote.problem {
            return Err(ConnectError::Settings(format!(
                "the output's settings cannot be used: {problem}"
            )));
        }
        let mut urls = Vec::new();
        for host in &remote.hosts {
            let url = parse_http_url(host, Some("http"))
                .map_err(|e| ConnectError::Settings(format!("hosts: {e}")))?;
            urls.push(url);
        }
        let trust = match remote.verification {
            Verification::None => Trust::Insecure,
            Verification::Full | Verification::Certificate => {
                if remote.verification == Verification::Certificate {
                    log::warn!(
                        "remote output cluster {:?}: verification_mode certificate is verified as full (host name included)",
                        remote.hosts
                    );
                }
                let mut roots = Vec::new();
                for ca in &remote.certificate_authorities {
                    roots.extend(authority(ca)?);
                }
                let https: Vec<_> = urls.iter().filter(|u| u.scheme == "https").collect();
                if !remote.ca_trusted_fingerprint.is_empty() && !https.is_empty() {
                    let fp: Fingerprint = remote.ca_trusted_fingerprint.parse().map_err(
                        |e: crate::tls::TlsError| {
                            ConnectError::Settings(format!("ssl.ca_trusted_fingerprint: {e}"))
                        },
                    )?;
                    roots.push(self.probe(&https, &fp)?);
                }
                if roots.is_empty() {
                    Trust::Public
                } else {
                    Trust::Roots(roots)
                }
            }
        };
        let hosts: Vec<String> = urls.iter().map(|u| u.to_url_string()).collect();
        let options = EsOptions {
            // One attempt per host: failover, but no retry rounds with pauses.
            max_retries: u32::try_from(hosts.len().saturating_sub(1)).unwrap_or(0),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(500),
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            poll_timeout: self.request_timeout,
        };
        let client = Client::new(
            hosts,
            &trust,
            None,
            Some(Secret::new(remote.service_token.clone())),
            Vec::new(),
            options,
        )
        .with_user_agent(remote_user_agent(self.server_version));
        Ok(RemoteCluster { client })
    }

    /// The CA a fingerprint names, from the first https host that presents it.
    fn probe(
        &self,
        https: &[&crate::config::HttpUrl],
        fp: &Fingerprint,
    ) -> Result<rustls::pki_types::CertificateDer<'static>, ConnectError> {
        let mut last = String::new();
        for url in https {
            match probe_fingerprint(
                &url.host,
                url.port.unwrap_or(9200),
                fp,
                None,
                self.connect_timeout,
            ) {
                Ok(ca) => return Ok(ca),
                Err(ProbeFailure::NoMatch { presented }) => {
                    last = format!(
                        "no certificate presented by {} has the ssl.ca_trusted_fingerprint {fp} (it presented {})",
                        url.to_url_string(),
                        presented.join(", ")
                    );
                }
                Err(ProbeFailure::ChainInvalid(detail)) => {
                    last = format!(
                        "the certificate of {} with the ssl.ca_trusted_fingerprint does not verify its server certificate: {detail}",
                        url.to_url_string()
                    );
                }
                Err(ProbeFailure::Unreachable(detail)) => {
                    last = format!("{}: {detail}", url.to_url_string());
                }
            }
        }
        // The cluster may change what it presents, or come back: try again later.
        Err(ConnectError::Unavailable(last))
    }
}

/// One `certificate_authorities` entry: inline PEM, or a file path.
fn authority(ca: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, ConnectError> {
    if ca.contains("-----BEGIN") {
        return certificate_authorities_from_pem(ca.as_bytes())
            .map_err(|e| ConnectError::Settings(format!("ssl.certificate_authorities: {e}")));
    }
    load_certificate_authorities(&[PathBuf::from(ca)]).map_err(|e| match e {
        // The file may appear later (a volume mounted after start): try again then.
        crate::tls::TlsError::Unreadable { .. } => {
            ConnectError::Unavailable(format!("ssl.certificate_authorities: {e}"))
        }
        _ => ConnectError::Settings(format!("ssl.certificate_authorities: {e}")),
    })
}

impl Connect for HttpConnect {
    fn connect(&self, remote: &RemoteEs) -> Result<Arc<dyn KeyCluster>, ConnectError> {
        let cluster = self.client(remote)?;
        log::info!(
            "remote Elasticsearch output cluster at {}",
            cluster.hosts().join(", ")
        );
        Ok(Arc::new(cluster))
    }
}
