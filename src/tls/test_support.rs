//! Test-only helpers for `tls` and `config` unit tests: temporary directories, test CAs and leaf
//! certificates made with rcgen, PEM writing, PKCS#8 encryption, and an in-memory TLS handshake.
//! Compiled only under `cfg(test)`; integration tests use rcgen/pkcs8 directly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use pkcs8::{pkcs5, PrivateKeyInfo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

use super::TlsMaterial;

/// An RSA 2048 key in PKCS#1 (`RSA PRIVATE KEY`) form, made by OpenSSL.
pub const RSA_PKCS1_PEM: &str = include_str!("testdata/rsa-pkcs1.pem");
/// The same RSA key in PKCS#8 form.
pub const RSA_PKCS8_PEM: &str = include_str!("testdata/rsa-pkcs8.pem");
/// A P-256 key encrypted by `openssl pkcs8 -topk8 -v2 aes-256-cbc`.
pub const OPENSSL_ENCRYPTED_EC_PEM: &str = include_str!("testdata/ec-encrypted-pkcs8.pem");
/// The passphrase of [`OPENSSL_ENCRYPTED_EC_PEM`].
pub const OPENSSL_PASSPHRASE: &str = "fleet-edge test passphrase";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("fleet-edge-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A generated certificate with its key, in DER and PEM.
pub struct TestCert {
    pub cert_der: CertificateDer<'static>,
    pub cert_pem: String,
    pub key_der: Vec<u8>,
    pub key_pem: String,
    params: CertificateParams,
}

impl TestCert {
    pub fn material(&self) -> TlsMaterial {
        TlsMaterial {
            chain: vec![self.cert_der.clone()],
            key: self.key(),
        }
    }

    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    fn issuer(&self) -> Issuer<'_, KeyPair> {
        let key = KeyPair::try_from(self.key_der.as_slice()).unwrap();
        Issuer::from_params(&self.params, key)
    }
}

/// A self-signed P-256 CA.
pub fn make_ca(name: &str) -> TestCert {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).unwrap();
    TestCert {
        cert_der: cert.der().clone(),
        cert_pem: cert.pem(),
        key_der: key.serialize_der(),
        key_pem: key.serialize_pem(),
        params,
    }
}

/// A P-256 leaf certificate for `names`, usable as server and client certificate, signed by `ca`.
pub fn make_leaf(ca: &TestCert, names: &[&str]) -> TestCert {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name.push(DnType::CommonName, "leaf");
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.signed_by(&key, &ca.issuer()).unwrap();
    TestCert {
        cert_der: cert.der().clone(),
        cert_pem: cert.pem(),
        key_der: key.serialize_der(),
        key_pem: key.serialize_pem(),
        params,
    }
}

/// PEM-encodes `der` under `label`.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The algorithm-specific key inside a PKCS#8 `PrivateKeyInfo` (SEC1 for EC, PKCS#1 for RSA).
pub fn pkcs8_to_inner(pkcs8_der: &[u8]) -> Vec<u8> {
    PrivateKeyInfo::try_from(pkcs8_der)
        .unwrap()
        .private_key
        .to_vec()
}

/// Encrypts a PKCS#8 key with PBES2 (PBKDF2-SHA256, AES-256-CBC) and PEM-encodes it.
pub fn encrypt_pkcs8_pem(pkcs8_der: &[u8], passphrase: &str) -> String {
    let info = PrivateKeyInfo::try_from(pkcs8_der).unwrap();
    let salt = [7u8; 16];
    let iv = [9u8; 16];
    let params = pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, &salt, &iv).unwrap();
    let doc = info.encrypt_with_params(params, passphrase).unwrap();
    pem("ENCRYPTED PRIVATE KEY", doc.as_bytes())
}

/// Runs a TLS handshake in memory between `server` and a client trusting `server_ca` and
/// presenting `client` (if any). Returns the first error, as a string, from either side.
pub fn handshake(
    server: Arc<rustls::ServerConfig>,
    server_ca: &CertificateDer<'static>,
    server_name: &str,
    client: Option<&TlsMaterial>,
) -> Result<(), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_ca.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        Some(m) => builder
            .with_client_auth_cert(m.chain.clone(), m.key.clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let mut c = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut s = rustls::ServerConnection::new(server).unwrap();
    for _ in 0..20 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let mut rd = buf.as_slice();
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
        }
        s.process_new_packets().map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        let mut rd = buf.as_slice();
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
        }
        c.process_new_packets().map_err(|e| e.to_string())?;
        if !c.is_handshaking() && !s.is_handshaking() {
            // TLS 1.3 client authentication is verified when the server reads the client's
            // Finished flight; one more round makes sure the server has seen it.
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            let mut rd = buf.as_slice();
            while !rd.is_empty() {
                s.read_tls(&mut rd).unwrap();
            }
            s.process_new_packets().map_err(|e| e.to_string())?;
            return Ok(());
        }
    }
    Err("handshake did not finish".to_string())
}
