//! TLS to Elasticsearch: turns [`EsSettings`]' CA files, CA trusted fingerprint, client
//! certificate and `insecure` flag into ureq's `TlsConfig` (rustls with the ring provider, the
//! one rustls and ring of the whole tree), and finds the CA a fingerprint names.
//!
//! ureq 3 takes root certificates, a client certificate and `disable_verification`, but no
//! custom verifier (DESIGN.md §5). `ca_trusted_fingerprint` is therefore done by probing: a
//! plain rustls handshake whose verifier records the chain the server presents, then the
//! certificate whose SHA-256 matches is checked (full chain and host name verification with it
//! as the trust anchor, as Elastic's `tlscommon` does) and handed to ureq as a root. A SHA-256
//! names exactly one certificate, so one successful probe is enough for the life of the store;
//! should the cluster later present a chain without it, ordinary verification fails, which is
//! the correct answer for a pinned CA. Neighbours: `client.rs` (uses the config), `connect.rs`
//! (runs the probe at startup and words its failures).

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

use crate::config::EsSettings;
use crate::tls::{Fingerprint, TlsMaterial};

/// The one crypto provider (ring), shared by every rustls configuration built here.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What the client trusts, before any probing.
#[derive(Clone, Debug)]
pub enum Trust {
    /// No verification at all (`--fleet-server-es-insecure`).
    Insecure,
    /// Exactly these roots (CA files, plus a probed fingerprint CA).
    Roots(Vec<CertificateDer<'static>>),
    /// The public web PKI roots (webpki-roots): https without any CA setting.
    Public,
}

impl Trust {
    /// The trust the settings ask for; `probed` is the CA a fingerprint probe found.
    pub fn from_settings(settings: &EsSettings, probed: Option<&CertificateDer<'static>>) -> Trust {
        if settings.insecure {
            return Trust::Insecure;
        }
        let mut roots = settings.ca_certs.clone();
        roots.extend(probed.cloned());
        if roots.is_empty() {
            Trust::Public
        } else {
            Trust::Roots(roots)
        }
    }
}

/// ureq's TLS configuration for a trust decision and an optional client certificate.
pub fn ureq_tls(trust: &Trust, client: Option<&TlsMaterial>) -> TlsConfig {
    let builder = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(provider())
        .client_cert(client.and_then(client_cert));
    match trust {
        Trust::Insecure => builder.disable_verification(true),
        Trust::Public => builder.root_certs(RootCerts::WebPki),
        Trust::Roots(roots) => builder.root_certs(RootCerts::new_with_certs(
            &roots
                .iter()
                .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                .collect::<Vec<_>>(),
        )),
    }
    .build()
}

fn client_cert(material: &TlsMaterial) -> Option<ClientCert> {
    let chain: Vec<Certificate<'static>> = material
        .chain
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    // ureq 3 does not export its `KeyKind`, so the key goes through PEM with the right label.
    let label = match &material.key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => "PRIVATE KEY",
    };
    let pem = to_pem(label, material.key.secret_der());
    match PrivateKey::from_pem(pem.as_bytes()) {
        Ok(key) => Some(ClientCert::new_with_certs(&chain, key)),
        Err(e) => {
            log::error!("the Elasticsearch client key cannot be used: {e}");
            None
        }
    }
}

fn to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Checks, without connecting, that rustls accepts the client certificate and key (ureq would
/// otherwise panic on a bad pair at the first handshake).
pub fn check_client_cert(material: &TlsMaterial) -> Result<(), String> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(RootCertStore::empty())
        .with_client_auth_cert(material.chain.clone(), material.key.clone_key())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Why a fingerprint probe found no usable CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// The host could not be reached or the handshake broke before a certificate arrived.
    Unreachable(String),
    /// No presented certificate has the fingerprint; the presented ones are listed.
    NoMatch {
        /// SHA-256 of each presented certificate, end-entity first.
        presented: Vec<String>,
    },
    /// The matching certificate does not verify the server's chain or host name.
    ChainInvalid(String),
}

/// Records the chain a server presents and accepts it (only used for the probe handshake, whose
/// connection carries no request and is closed at once).
#[derive(Debug)]
struct Recorder {
    chain: Mutex<Option<(Vec<CertificateDer<'static>>, ServerName<'static>, UnixTime)>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        if let Ok(mut slot) = self.chain.lock() {
            *slot = Some((chain, server_name.to_owned(), now));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Connects to `host:port` (an https Elasticsearch), records the presented chain, and returns
/// the certificate whose SHA-256 is `fingerprint` once it verifies that chain and the host name.
pub fn probe_fingerprint(
    host: &str,
    port: u16,
    fingerprint: &Fingerprint,
    client: Option<&TlsMaterial>,
    timeout: Duration,
) -> Result<CertificateDer<'static>, ProbeFailure> {
    let provider = provider();
    let recorder = Arc::new(Recorder {
        chain: Mutex::new(None),
        provider: provider.clone(),
    });
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeFailure::Unreachable(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone());
    let config = match client {
        Some(m) => builder
            .with_client_auth_cert(m.chain.clone(), m.key.clone_key())
            .map_err(|e| ProbeFailure::Unreachable(format!("client certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from(host.to_owned()).map_err(|e| {
        ProbeFailure::Unreachable(format!("\"{host}\" is not a TLS server name: {e}"))
    })?;
    let handshake = handshake(Arc::new(config), name, host, port, timeout);
    let recorded = recorder.chain.lock().ok().and_then(|mut c| c.take());
    let Some((chain, server_name, now)) = recorded else {
        return Err(ProbeFailure::Unreachable(match handshake {
            Err(e) => e,
            Ok(()) => "the server presented no certificate".into(),
        }));
    };
    let Some(ca) = chain.iter().find(|c| fingerprint.matches(c)).cloned() else {
        return Err(ProbeFailure::NoMatch {
            presented: chain
                .iter()
                .map(crate::tls::sha256_fingerprint_hex)
                .collect(),
        });
    };
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone())
        .map_err(|e| ProbeFailure::ChainInvalid(format!("it cannot be a trust anchor: {e}")))?;
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| ProbeFailure::ChainInvalid(e.to_string()))?;
    let (end_entity, intermediates) = chain
        .split_first()
        .ok_or_else(|| ProbeFailure::Unreachable("empty certificate chain".into()))?;
    verifier
        .verify_server_cert(end_entity, intermediates, &server_name, &[], now)
        .map_err(|e| ProbeFailure::ChainInvalid(e.to_string()))?;
    Ok(ca)
}

fn handshake(
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<(), String> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = format!("cannot resolve {host}");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(mut sock) => {
                sock.set_read_timeout(Some(timeout))
                    .and_then(|()| sock.set_write_timeout(Some(timeout)))
                    .map_err(|e| e.to_string())?;
                let mut conn = ClientConnection::new(config.clone(), name.clone())
                    .map_err(|e| e.to_string())?;
                while conn.is_handshaking() {
                    conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
                }
                conn.send_close_notify();
                let _ = conn.complete_io(&mut sock);
                return Ok(());
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}
