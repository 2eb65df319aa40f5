//! TLS of the management API when it listens off loopback (on loopback it stays plain HTTP: the
//! bearer token never leaves the machine). The server's own certificate and key serve it, without
//! client certificates; the CLI trusts the certificates above the server's in its chain (the
//! self-signed mode's CA, or the intermediates/CA an operator's chain file carries; a lone
//! self-signed certificate is trusted as itself), which the server writes to
//! `<data-dir>/management-ca.crt`, and checks the name in `<data-dir>/management-url`, which the
//! server picks among the names its certificate covers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::tls::{ClientAuth, TlsError, TlsMaterial};

/// The file the CLI reads its trust roots from.
pub const CA_FILE: &str = "management-ca.crt";

/// What the management listener needs to serve TLS.
#[derive(Clone)]
pub struct ManagementTls {
    /// The rustls configuration (the server's certificate, no client authentication).
    pub config: Arc<rustls::ServerConfig>,
    /// The server's certificate (its names decide the URL's host).
    pub leaf: CertificateDer<'static>,
    /// The certificates the CLI trusts.
    pub roots: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for ManagementTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementTls")
            .field("roots", &self.roots.len())
            .finish()
    }
}

impl ManagementTls {
    /// From the server's certificate chain and key.
    pub fn new(material: &TlsMaterial) -> Result<Self, TlsError> {
        let config = crate::tls::server_config(material, ClientAuth::None, &[])?;
        let leaf = material
            .chain
            .first()
            .cloned()
            .ok_or_else(|| TlsError::Config {
                detail: "the certificate chain is empty".into(),
            })?;
        let roots = if material.chain.len() > 1 {
            material.chain[1..].to_vec()
        } else {
            vec![leaf.clone()]
        };
        Ok(Self {
            config,
            leaf,
            roots,
        })
    }

    /// The host the CLI puts in its URL and checks the certificate against: the configured
    /// management host, or for an unspecified one (`0.0.0.0`, `::`) a loopback name, whichever
    /// the certificate covers first. `None`: it covers none of them.
    pub fn url_host(&self, configured: &str, bound: SocketAddr) -> Option<String> {
        let candidates: Vec<String> = if bound.ip().is_unspecified() {
            ["localhost", "127.0.0.1", "::1"]
                .map(str::to_owned)
                .to_vec()
        } else {
            vec![configured.to_owned(), bound.ip().to_string()]
        };
        let cert = rustls::server::ParsedCertificate::try_from(&self.leaf).ok()?;
        candidates.into_iter().find(|host| {
            ServerName::try_from(host.clone())
                .is_ok_and(|name| rustls::client::verify_server_name(&cert, &name).is_ok())
        })
    }

    /// The roots as PEM, for [`CA_FILE`].
    pub fn roots_pem(&self) -> String {
        let mut pem = String::new();
        for cert in &self.roots {
            let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
            pem.push_str("-----BEGIN CERTIFICATE-----\n");
            for line in b64.as_bytes().chunks(64) {
                pem.push_str(&String::from_utf8_lossy(line));
                pem.push('\n');
            }
            pem.push_str("-----END CERTIFICATE-----\n");
        }
        pem
    }
}

/// The CLI's side: sends `request` to the management API at `url` (`http://` or `https://`,
/// the latter trusting `<data_dir>/management-ca.crt`) and reads the answer to the end (the
/// request says `Connection: close`).
pub fn exchange(data_dir: &Path, url: &str, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let timeout = Some(Duration::from_secs(30));
    if let Some(authority) = url.strip_prefix("http://") {
        let mut stream = TcpStream::connect(authority)?;
        stream.set_read_timeout(timeout)?;
        stream.write_all(request)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        return Ok(raw);
    }
    let authority = url.strip_prefix("https://").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{url} is neither http:// nor https://"),
        )
    })?;
    let host = match authority.rsplit_once(':') {
        Some((host, _port)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => authority,
    };
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let ca_path = data_dir.join(CA_FILE);
    let roots =
        crate::tls::load_certificate_authorities(&[ca_path]).map_err(|e| invalid(e.to_string()))?;
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root).map_err(|e| invalid(e.to_string()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid(e.to_string()))?
    .with_root_certificates(store)
    .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned()).map_err(|e| invalid(e.to_string()))?;
    let session = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| invalid(e.to_string()))?;
    let tcp = TcpStream::connect(authority)?;
    tcp.set_read_timeout(timeout)?;
    let mut stream = rustls::StreamOwned::new(session, tcp);
    stream.write_all(request)?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => Ok(raw),
        // A close without close_notify after a whole answer (Connection: close) is its end.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => Ok(raw),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_roots_are_the_ca_and_names_come_from_the_certificate() {
        let dir = std::env::temp_dir().join(format!("fleet-edge-mgmt-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let generated = crate::tls::self_signed::load_or_create(
            &dir,
            &["localhost".into(), "127.0.0.1".into(), "gw.example".into()],
            crate::tls::self_signed::KeyRequest::default(),
        )
        .unwrap();
        let tls = ManagementTls::new(&generated.material).unwrap();
        assert_eq!(tls.roots, generated.material.chain[1..].to_vec());
        let ca = std::fs::read_to_string(&generated.ca_cert_path).unwrap();
        let strip = |s: &str| s.split_whitespace().collect::<String>();
        assert_eq!(strip(&tls.roots_pem()), strip(&ca));
        let any: SocketAddr = "0.0.0.0:8222".parse().unwrap();
        assert_eq!(tls.url_host("0.0.0.0", any).as_deref(), Some("localhost"));
        let ip: SocketAddr = "10.1.2.3:8222".parse().unwrap();
        assert_eq!(
            tls.url_host("gw.example", ip).as_deref(),
            Some("gw.example")
        );
        assert_eq!(tls.url_host("other.example", ip), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
