//! Certificates generated at test time with rcgen: a CA, a server certificate for localhost and
//! 127.0.0.1, a client certificate from the same CA, and one from an unrelated CA. Written as PEM
//! files (what an operator hands fleet-edge) and kept as DER (what the rustls test clients use).

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::TempDir;

/// One certificate and its key, as files and as DER.
pub struct Identity {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub cert_der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
}

impl Identity {
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.cert_der.clone()]
    }

    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// A small PKI in a temporary directory.
pub struct Pki {
    pub dir: TempDir,
    pub ca_path: PathBuf,
    pub ca_der: CertificateDer<'static>,
    pub other_ca_path: PathBuf,
    pub server: Identity,
    pub client: Identity,
    pub foreign_client: Identity,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, rcgen::Certificate) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    (params, key, cert)
}

fn leaf(
    dir: &TempDir,
    name: &str,
    sans: &[&str],
    client: bool,
    issuer: &Issuer<'_, KeyPair>,
) -> Identity {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![if client {
        rcgen::ExtendedKeyUsagePurpose::ClientAuth
    } else {
        rcgen::ExtendedKeyUsagePurpose::ServerAuth
    }];
    let cert = params.signed_by(&key, issuer).unwrap();
    let cert_path = dir.join(&format!("{name}.crt"));
    let key_path = dir.join(&format!("{name}.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    Identity {
        cert_path,
        key_path,
        cert_der: cert.der().clone(),
        key_der: key.serialize_der(),
    }
}

impl Pki {
    pub fn new() -> Self {
        let dir = TempDir::new("pki");
        let (ca_params, ca_key, ca_cert) = ca("fleet-edge test CA");
        let ca_path = dir.join("ca.crt");
        std::fs::write(&ca_path, ca_cert.pem()).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let server = leaf(&dir, "server", &["localhost", "127.0.0.1"], false, &issuer);
        let client = leaf(&dir, "agent", &["agent-1"], true, &issuer);

        let (other_params, other_key, other_cert) = ca("unrelated CA");
        let other_ca_path = dir.join("other-ca.crt");
        std::fs::write(&other_ca_path, other_cert.pem()).unwrap();
        let other_issuer = Issuer::new(other_params, other_key);
        let foreign_client = leaf(&dir, "foreign-agent", &["agent-x"], true, &other_issuer);
        Self {
            dir,
            ca_path,
            ca_der: ca_cert.der().clone(),
            other_ca_path,
            server,
            client,
            foreign_client,
        }
    }

    /// The trust anchors a client of this PKI's server uses.
    pub fn roots(&self) -> Vec<CertificateDer<'static>> {
        vec![self.ca_der.clone()]
    }

    /// Writes the server key encrypted (PKCS#8, PBES2 PBKDF2-SHA256 + AES-256-CBC) and the
    /// passphrase file; returns (key path, passphrase path).
    pub fn encrypted_server_key(&self, passphrase: &str, file_content: &str) -> (PathBuf, PathBuf) {
        self.encrypted_key(&self.server, "server", passphrase, file_content)
    }

    /// The same for the client ("agent") key.
    pub fn encrypted_client_key(&self, passphrase: &str) -> (PathBuf, PathBuf) {
        self.encrypted_key(&self.client, "agent", passphrase, passphrase)
    }

    fn encrypted_key(
        &self,
        identity: &Identity,
        name: &str,
        passphrase: &str,
        file_content: &str,
    ) -> (PathBuf, PathBuf) {
        use pkcs8::der::pem::LineEnding;
        let info = pkcs8::PrivateKeyInfo::try_from(identity.key_der.as_slice()).unwrap();
        let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(
            2048,
            b"fleet-edge-salt!",
            &[7u8; 16],
        )
        .unwrap();
        let doc = info.encrypt_with_params(params, passphrase).unwrap();
        let pem = doc.to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF).unwrap();
        let key_path = self.dir.join(&format!("{name}-encrypted.key"));
        let pass_path = self.dir.join(&format!("{name}.pass"));
        std::fs::write(&key_path, pem.as_bytes()).unwrap();
        std::fs::write(&pass_path, file_content).unwrap();
        (key_path, pass_path)
    }
}
