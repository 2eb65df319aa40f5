//! Certificates and keys: PEM loading of certificate chains, certificate authorities and private
//! keys (PKCS#8, PKCS#1, SEC1, encrypted PKCS#8 with a passphrase file), SHA-256 fingerprints,
//! rustls server configuration with client authentication, and self-signed certificate
//! generation for when no certificate is configured.
//!
//! A leaf module: it is used by `config` (which loads every file through here at startup, so the
//! configuration carries parsed material), by `net` (which builds its `rustls::ServerConfig` with
//! [`server_config`]) and by the Elasticsearch client. Neighbours: `keys.rs` (private keys),
//! `fingerprint.rs`, `server.rs` (rustls server configuration), `self_signed.rs`.

mod fingerprint;
mod keys;
mod rsa_gen;
pub mod self_signed;
mod server;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use fingerprint::{sha256_fingerprint_hex, Fingerprint};
pub use keys::load_private_key;
pub use server::server_config;

/// Largest certificate, key or passphrase file we read (a guard against pointing a path at a
/// device or a huge file by mistake).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// A certificate chain (end-entity first) and its private key, ready for rustls.
pub struct TlsMaterial {
    /// The certificate chain, end-entity certificate first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key of the end-entity certificate.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for TlsMaterial {
    fn clone(&self) -> Self {
        TlsMaterial {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fingerprints: Vec<String> = self.chain.iter().map(sha256_fingerprint_hex).collect();
        f.debug_struct("TlsMaterial")
            .field("chain_sha256", &fingerprints)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Whether the server asks connecting agents for a client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is requested.
    None,
    /// A client certificate is requested; none is accepted, an invalid one is rejected.
    Optional,
    /// A valid client certificate chained to the configured authorities is required.
    Required,
}

impl FromStr for ClientAuth {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(ClientAuth::None),
            "optional" => Ok(ClientAuth::Optional),
            "required" => Ok(ClientAuth::Required),
            _ => Err(TlsError::BadClientAuth {
                value: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientAuth::None => "none",
            ClientAuth::Optional => "optional",
            ClientAuth::Required => "required",
        })
    }
}

/// Everything that can go wrong with certificates and keys. Each variant names the file to fix;
/// the caller's decision is always "report it and refuse to start", so the messages are written
/// as one complete sentence each.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read (missing, permissions, too large, ...).
    #[error("cannot read {what} file \"{}\": {reason}", path.display())]
    Unreadable {
        /// What the file was supposed to hold ("certificate", "private key", ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not valid PEM, or a PEM block does not hold what its label says.
    #[error("{what} file \"{}\" is not valid PEM: {detail}", path.display())]
    InvalidPem {
        /// What the file was supposed to hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The file holds no `CERTIFICATE` block.
    #[error("certificate file \"{}\" contains no PEM CERTIFICATE block", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate could not be parsed as X.509.
    #[error("certificate file \"{}\" holds a certificate that is not valid X.509: {detail}", path.display())]
    InvalidCertificate {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        detail: String,
    },
    /// The file holds no private key block.
    #[error("private key file \"{}\" contains no PEM private key (PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY or ENCRYPTED PRIVATE KEY)", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The key was parsed but is of a kind rustls cannot sign with.
    #[error("private key file \"{}\" holds a key that is not a supported RSA, ECDSA or Ed25519 key: {detail}", path.display())]
    UnsupportedKey {
        /// The file.
        path: PathBuf,
        /// The reason.
        detail: String,
    },
    /// The key is an encrypted PKCS#8 key but no passphrase file was given.
    #[error("private key file \"{}\" is encrypted but no passphrase file was given", path.display())]
    PassphraseRequired {
        /// The key file.
        path: PathBuf,
    },
    /// The passphrase does not decrypt the key.
    #[error("{}", wrong_passphrase_sentence(key_path, passphrase_path, *ends_with_newline))]
    WrongPassphrase {
        /// The key file.
        key_path: PathBuf,
        /// The passphrase file.
        passphrase_path: PathBuf,
        /// The passphrase file ends with a newline (tried with and without it).
        ends_with_newline: bool,
    },
    /// The key is encrypted with a scheme we do not implement.
    #[error("private key file \"{}\" is encrypted with an unsupported scheme ({detail}); re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`", path.display())]
    UnsupportedEncryption {
        /// The key file.
        path: PathBuf,
        /// The reason.
        detail: String,
    },
    /// The key uses the legacy OpenSSL `Proc-Type: 4,ENCRYPTED` PEM encryption.
    #[error("private key file \"{}\" uses legacy OpenSSL PEM encryption (Proc-Type: 4,ENCRYPTED), which is not supported; convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD -out NEW`", path.display())]
    LegacyEncryptedPem {
        /// The key file.
        path: PathBuf,
    },
    /// The private key does not belong to the certificate.
    #[error("private key file \"{}\" does not match the certificate in \"{}\"", key_path.display(), cert_path.display())]
    KeyMismatch {
        /// The certificate file.
        cert_path: PathBuf,
        /// The key file.
        key_path: PathBuf,
    },
    /// A fingerprint is not 64 hexadecimal digits.
    #[error("\"{value}\" is not a SHA-256 fingerprint: {reason}")]
    BadFingerprint {
        /// The rejected input.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A client authentication mode other than none, optional or required.
    #[error(
        "\"{value}\" is not a client authentication mode (expected none, optional or required)"
    )]
    BadClientAuth {
        /// The rejected input.
        value: String,
    },
    /// Client authentication was requested without any certificate authority to verify against.
    #[error("client authentication \"{mode}\" needs at least one certificate authority to verify client certificates against")]
    ClientAuthWithoutCas {
        /// The requested mode.
        mode: ClientAuth,
    },
    /// rustls refused the configuration (bad CA, key/certificate mismatch, ...).
    #[error("cannot build the TLS configuration: {detail}")]
    Config {
        /// rustls' reason.
        detail: String,
    },
    /// A stored self-signed file exists but cannot be used; it is never overwritten silently.
    #[error("self-signed certificate file \"{}\" cannot be used: {detail}; fix or remove it (removing the CA makes enrolled agents distrust this server)", path.display())]
    CorruptSelfSigned {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The stored self-signed CA has another key type than the one asked for explicitly.
    #[error("the self-signed CA \"{}\" has an {stored} key, but {wanted} was asked for (--self-signed-key-type): the CA agents trust is never replaced behind their back; move \"{}\" away to generate a new {wanted} CA (then give agents the new ca.crt), or use a certificate of your own (--fleet-server-cert, --fleet-server-cert-key)", path.display(), path.parent().unwrap_or(path).display())]
    SelfSignedKeyType {
        /// The CA certificate.
        path: PathBuf,
        /// Its key type.
        stored: self_signed::KeyAlgorithm,
        /// The requested one.
        wanted: self_signed::KeyAlgorithm,
    },
    /// Writing a generated file or creating its directory failed.
    #[error("cannot write \"{}\": {reason}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// A host name given for the self-signed certificate is neither an IP address nor a DNS name.
    #[error("\"{host}\" cannot be put in a certificate: it is neither an IP address nor a valid DNS name")]
    InvalidHost {
        /// The rejected host.
        host: String,
    },
    /// Certificate generation failed (rcgen).
    #[error("cannot generate the self-signed certificate: {detail}")]
    Generate {
        /// rcgen's reason.
        detail: String,
    },
}

fn wrong_passphrase_sentence(key: &Path, pass: &Path, ends_with_newline: bool) -> String {
    if ends_with_newline {
        format!(
            "the passphrase in \"{}\" does not decrypt the private key \"{}\" (the passphrase file ends with a newline; it was tried both with and without it)",
            pass.display(),
            key.display()
        )
    } else {
        format!(
            "the passphrase in \"{}\" does not decrypt the private key \"{}\"",
            pass.display(),
            key.display()
        )
    }
}

/// Reads a whole file of at most [`MAX_FILE_BYTES`], naming it and its purpose on error.
pub(crate) fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let unreadable = |reason: String| TlsError::Unreadable {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(unreadable(format!(
            "larger than {} MiB",
            MAX_FILE_BYTES / 1024 / 1024
        )));
    }
    Ok(bytes)
}

/// Parses every `CERTIFICATE` block of a PEM buffer; at least one is required.
fn parse_certificates(
    path: &Path,
    what: &'static str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        let cert = item.map_err(|e| TlsError::InvalidPem {
            what,
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Loads a PEM certificate chain (end-entity first); the file must hold at least one
/// certificate, and the first one must parse as an X.509 end-entity certificate.
pub fn load_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file("certificate", path)?;
    let chain = parse_certificates(path, "certificate", &pem)?;
    if let Some(first) = chain.first() {
        rustls::server::ParsedCertificate::try_from(first).map_err(|e| {
            TlsError::InvalidCertificate {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }
        })?;
    }
    Ok(chain)
}

/// Loads every certificate of every PEM file given (each file must hold at least one), checking
/// that each can serve as a trust anchor.
pub fn load_certificate_authorities(
    paths: &[PathBuf],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut all = Vec::new();
    for path in paths {
        let pem = read_file("certificate authority", path)?;
        all.extend(trust_anchors(path, &pem)?);
    }
    Ok(all)
}

/// Parses certificate authorities given inline as PEM text (as policies may carry them),
/// checking that each can serve as a trust anchor; errors name the source `<inline PEM>`.
pub fn certificate_authorities_from_pem(
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    trust_anchors(Path::new("<inline PEM>"), pem)
}

fn trust_anchors(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = parse_certificates(path, "certificate authority", pem)?;
    let mut store = rustls::RootCertStore::empty();
    for cert in &certs {
        store
            .add(cert.clone())
            .map_err(|e| TlsError::InvalidCertificate {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
    }
    Ok(certs)
}

/// Loads a certificate chain and its private key (decrypting it with the passphrase file if
/// given) and checks that the key belongs to the end-entity certificate.
pub fn load_material(
    cert_path: &Path,
    key_path: &Path,
    passphrase_file: Option<&Path>,
) -> Result<TlsMaterial, TlsError> {
    let chain = load_cert_chain(cert_path)?;
    let key = load_private_key(key_path, passphrase_file)?;
    check_key_matches(&chain, &key).map_err(|_| TlsError::KeyMismatch {
        cert_path: cert_path.to_path_buf(),
        key_path: key_path.to_path_buf(),
    })?;
    Ok(TlsMaterial { chain, key })
}

/// Checks that `key` is the private key of the first certificate of `chain`.
pub(crate) fn check_key_matches(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Result<(), rustls::Error> {
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain.to_vec(), key.clone_key(), &provider).map(|_| ())
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn client_auth_parses_the_three_modes_case_insensitively() {
        assert_eq!("none".parse::<ClientAuth>().ok(), Some(ClientAuth::None));
        assert_eq!(
            "Optional".parse::<ClientAuth>().ok(),
            Some(ClientAuth::Optional)
        );
        assert_eq!(
            "REQUIRED".parse::<ClientAuth>().ok(),
            Some(ClientAuth::Required)
        );
        let err = "sometimes"
            .parse::<ClientAuth>()
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("\"sometimes\" is not a client authentication mode (expected none, optional or required)")
        );
        assert_eq!(ClientAuth::Optional.to_string(), "optional");
    }

    #[test]
    fn cert_chain_loads_every_certificate_in_order() {
        let dir = TempDir::new("chain");
        let ca = make_ca("Test CA");
        let leaf = make_leaf(&ca, &["localhost"]);
        let path = dir.write("chain.pem", &format!("{}{}", leaf.cert_pem, ca.cert_pem));
        let chain = load_cert_chain(&path).unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].as_ref(), leaf.cert_der.as_ref());
        assert_eq!(chain[1].as_ref(), ca.cert_der.as_ref());
    }

    #[test]
    fn cert_chain_errors_name_the_file() {
        let dir = TempDir::new("chain-err");
        let missing = dir.path().join("missing.pem");
        let err = load_cert_chain(&missing).unwrap_err().to_string();
        assert!(err.starts_with("cannot read certificate file \""), "{err}");
        assert!(err.contains("missing.pem"), "{err}");

        let empty = dir.write("empty.pem", "hello\n");
        let err = load_cert_chain(&empty).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        assert!(err.to_string().contains("empty.pem"));

        let garbage = dir.write(
            "garbage.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
        );
        let err = load_cert_chain(&garbage).unwrap_err();
        assert!(matches!(err, TlsError::InvalidPem { .. }), "{err}");

        let not_x509 = dir.write(
            "notx509.pem",
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        );
        let err = load_cert_chain(&not_x509).unwrap_err();
        assert!(matches!(err, TlsError::InvalidCertificate { .. }), "{err}");
    }

    #[test]
    fn certificate_authorities_load_from_several_files() {
        let dir = TempDir::new("cas");
        let a = make_ca("A");
        let b = make_ca("B");
        let pa = dir.write("a.pem", &a.cert_pem);
        let pb = dir.write("b.pem", &b.cert_pem);
        let cas = load_certificate_authorities(&[pa.clone(), pb]).unwrap();
        assert_eq!(cas.len(), 2);
        let bad = dir.write("bad.pem", "nothing here");
        let err = load_certificate_authorities(&[pa, bad]).unwrap_err();
        assert!(err.to_string().contains("bad.pem"), "{err}");
    }

    #[test]
    fn material_detects_a_key_that_does_not_match_the_certificate() {
        let dir = TempDir::new("mismatch");
        let ca = make_ca("CA");
        let leaf = make_leaf(&ca, &["localhost"]);
        let other = make_leaf(&ca, &["localhost"]);
        let cert = dir.write("leaf.crt", &leaf.cert_pem);
        let good_key = dir.write("leaf.key", &leaf.key_pem);
        let wrong_key = dir.write("other.key", &other.key_pem);
        let material = load_material(&cert, &good_key, None).unwrap();
        assert_eq!(material.chain.len(), 1);
        let err = load_material(&cert, &wrong_key, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("other.key") && err.contains("does not match") && err.contains("leaf.crt"),
            "{err}"
        );
    }

    #[test]
    fn material_debug_never_shows_the_key() {
        let ca = make_ca("CA");
        let leaf = make_leaf(&ca, &["localhost"]);
        let material = leaf.material();
        let debug = format!("{material:?}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(!debug.contains(&format!("{:?}", material.key.secret_der())));
    }
}
