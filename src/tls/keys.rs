//! Private key loading: PKCS#8, PKCS#1 (RSA), SEC1 (EC) and encrypted PKCS#8 (PBES2) PEM files,
//! with the passphrase read from a file. Legacy OpenSSL `Proc-Type: 4,ENCRYPTED` keys are
//! refused with a sentence that says how to convert them. Part of `tls` (see `mod.rs`).
//!
//! Passphrase files: Elastic reads them verbatim. Editors and `echo` add a trailing newline, so
//! we try the content verbatim first and then without one trailing `\n` or `\r\n`; if only the
//! stripped passphrase works we accept it and log a warning.

use std::path::Path;

use base64::Engine as _;
use pkcs8::{pkcs5, EncryptedPrivateKeyInfo, PrivateKeyInfo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{read_file, TlsError};

const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// Loads a PEM private key; an `ENCRYPTED PRIVATE KEY` (PKCS#8 PBES2) is decrypted with the
/// passphrase read from `passphrase_file`. The key is checked to be usable for signing.
pub fn load_private_key(
    path: &Path,
    passphrase_file: Option<&Path>,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file("private key", path)?;
    let text = String::from_utf8_lossy(&pem);
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(TlsError::LegacyEncryptedPem {
            path: path.to_path_buf(),
        });
    }
    let key = match find_pem_block(&text, ENCRYPTED_LABEL) {
        Some(body) => {
            let der = decode_base64_body(body).ok_or_else(|| TlsError::InvalidPem {
                what: "private key",
                path: path.to_path_buf(),
                detail: "the ENCRYPTED PRIVATE KEY block is not valid base64".to_string(),
            })?;
            let Some(passphrase_path) = passphrase_file else {
                return Err(TlsError::PassphraseRequired {
                    path: path.to_path_buf(),
                });
            };
            decrypt(path, &der, passphrase_path)?
        }
        None => {
            let key = plain_key(path, &pem)?;
            if let Some(pass) = passphrase_file {
                log::debug!(
                    "private key \"{}\" is not encrypted; the passphrase file \"{}\" is not used",
                    path.display(),
                    pass.display()
                );
            }
            key
        }
    };
    rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| TlsError::UnsupportedKey {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    Ok(key)
}

fn plain_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_path_buf(),
        },
        other => TlsError::InvalidPem {
            what: "private key",
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    })
}

/// Decrypts an `EncryptedPrivateKeyInfo` with the passphrase file, verbatim first, then without
/// one trailing newline.
fn decrypt(
    path: &Path,
    der: &[u8],
    passphrase_path: &Path,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let info = EncryptedPrivateKeyInfo::try_from(der).map_err(|e| TlsError::InvalidPem {
        what: "private key",
        path: path.to_path_buf(),
        detail: format!("the ENCRYPTED PRIVATE KEY block is not PKCS#8: {e}"),
    })?;
    let passphrase = read_file("passphrase", passphrase_path)?;
    if let Some(key) = try_decrypt(path, &info, &passphrase)? {
        return Ok(key);
    }
    let stripped = strip_one_newline(&passphrase);
    if let Some(stripped) = stripped {
        if let Some(key) = try_decrypt(path, &info, stripped)? {
            log::warn!(
                "the passphrase file \"{}\" ends with a newline that is not part of the passphrase; it was used without it",
                passphrase_path.display()
            );
            return Ok(key);
        }
    }
    Err(TlsError::WrongPassphrase {
        key_path: path.to_path_buf(),
        passphrase_path: passphrase_path.to_path_buf(),
        ends_with_newline: stripped.is_some(),
    })
}

/// `Ok(None)` means "this passphrase is wrong"; unsupported schemes are errors of their own.
fn try_decrypt(
    path: &Path,
    info: &EncryptedPrivateKeyInfo<'_>,
    passphrase: &[u8],
) -> Result<Option<PrivateKeyDer<'static>>, TlsError> {
    match info.decrypt(passphrase) {
        Ok(doc) => {
            let bytes = doc.as_bytes().to_vec();
            // A wrong passphrase occasionally yields valid padding; the plaintext then is not a
            // PrivateKeyInfo.
            if PrivateKeyInfo::try_from(bytes.as_slice()).is_err() {
                return Ok(None);
            }
            Ok(Some(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes))))
        }
        // pkcs5 0.7 reports a bad CBC padding on decryption as `EncryptFailed`.
        Err(pkcs8::Error::EncryptedPrivateKey(
            pkcs5::Error::DecryptFailed | pkcs5::Error::EncryptFailed,
        ))
        | Err(pkcs8::Error::Asn1(_)) => Ok(None),
        Err(other) => Err(TlsError::UnsupportedEncryption {
            path: path.to_path_buf(),
            detail: other.to_string(),
        }),
    }
}

fn strip_one_newline(bytes: &[u8]) -> Option<&[u8]> {
    bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
}

/// The base64 body between `-----BEGIN <label>-----` and `-----END <label>-----`, if present.
fn find_pem_block<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let len = text.get(start..)?.find(&end)?;
    text.get(start..start + len)
}

fn decode_base64_body(body: &str) -> Option<Vec<u8>> {
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::test_support::*;

    const PASSPHRASE: &str = "correct horse battery staple";

    #[test]
    fn loads_pkcs8_ecdsa_and_ed25519_keys() {
        let dir = TempDir::new("pkcs8");
        let ca = make_ca("CA");
        let path = dir.write("ec.key", &ca.key_pem);
        let key = load_private_key(&path, None).unwrap();
        assert!(matches!(key, PrivateKeyDer::Pkcs8(_)));
        assert_eq!(key.secret_der(), ca.key_der.as_slice());

        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let path = dir.write("ed.key", &ed.serialize_pem());
        assert!(matches!(
            load_private_key(&path, None).unwrap(),
            PrivateKeyDer::Pkcs8(_)
        ));
    }

    #[test]
    fn loads_sec1_ec_keys() {
        let dir = TempDir::new("sec1");
        let ca = make_ca("CA");
        let sec1 = pkcs8_to_inner(&ca.key_der);
        let path = dir.write("ec.key", &pem("EC PRIVATE KEY", &sec1));
        let key = load_private_key(&path, None).unwrap();
        assert!(matches!(key, PrivateKeyDer::Sec1(_)));
    }

    #[test]
    fn loads_pkcs1_and_pkcs8_rsa_keys() {
        let dir = TempDir::new("rsa");
        let pkcs1 = dir.write("rsa1.key", RSA_PKCS1_PEM);
        let key = load_private_key(&pkcs1, None).unwrap();
        assert!(matches!(key, PrivateKeyDer::Pkcs1(_)));
        let pkcs8 = dir.write("rsa8.key", RSA_PKCS8_PEM);
        let key = load_private_key(&pkcs8, None).unwrap();
        assert!(matches!(key, PrivateKeyDer::Pkcs8(_)));
    }

    #[test]
    fn decrypts_encrypted_pkcs8_with_the_passphrase_file() {
        let dir = TempDir::new("enc");
        let ca = make_ca("CA");
        let path = dir.write("enc.key", &encrypt_pkcs8_pem(&ca.key_der, PASSPHRASE));
        let pass = dir.write("pass", PASSPHRASE);
        let key = load_private_key(&path, Some(&pass)).unwrap();
        assert_eq!(key.secret_der(), ca.key_der.as_slice());
    }

    #[test]
    fn decrypts_an_openssl_encrypted_pkcs8_key() {
        let dir = TempDir::new("openssl-enc");
        let path = dir.write("enc.key", OPENSSL_ENCRYPTED_EC_PEM);
        let pass = dir.write("pass", OPENSSL_PASSPHRASE);
        assert!(load_private_key(&path, Some(&pass)).is_ok());
    }

    #[test]
    fn wrong_passphrase_is_one_clear_sentence() {
        let dir = TempDir::new("wrong");
        let ca = make_ca("CA");
        let path = dir.write("enc.key", &encrypt_pkcs8_pem(&ca.key_der, PASSPHRASE));
        let pass = dir.write("pass", "not it");
        let err = load_private_key(&path, Some(&pass)).unwrap_err();
        assert!(matches!(
            err,
            TlsError::WrongPassphrase {
                ends_with_newline: false,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            format!(
                "the passphrase in \"{}\" does not decrypt the private key \"{}\"",
                pass.display(),
                path.display()
            )
        );
    }

    #[test]
    fn wrong_passphrase_with_trailing_newline_says_so() {
        let dir = TempDir::new("wrong-nl");
        let ca = make_ca("CA");
        let path = dir.write("enc.key", &encrypt_pkcs8_pem(&ca.key_der, PASSPHRASE));
        let pass = dir.write("pass", "not it\n");
        let err = load_private_key(&path, Some(&pass)).unwrap_err();
        assert!(matches!(
            err,
            TlsError::WrongPassphrase {
                ends_with_newline: true,
                ..
            }
        ));
        assert!(err.to_string().contains("ends with a newline"), "{err}");
    }

    #[test]
    fn passphrase_file_with_trailing_newline_is_accepted() {
        let dir = TempDir::new("nl");
        let ca = make_ca("CA");
        let path = dir.write("enc.key", &encrypt_pkcs8_pem(&ca.key_der, PASSPHRASE));
        for ending in ["\n", "\r\n"] {
            let pass = dir.write("pass", &format!("{PASSPHRASE}{ending}"));
            let key = load_private_key(&path, Some(&pass)).unwrap();
            assert_eq!(key.secret_der(), ca.key_der.as_slice());
        }
        // A passphrase that really ends with a newline still works verbatim.
        let with_nl = format!("{PASSPHRASE}\n");
        let path = dir.write("enc-nl.key", &encrypt_pkcs8_pem(&ca.key_der, &with_nl));
        let pass = dir.write("pass-nl", &with_nl);
        assert!(load_private_key(&path, Some(&pass)).is_ok());
    }

    #[test]
    fn encrypted_key_without_passphrase_is_refused() {
        let dir = TempDir::new("nopass");
        let ca = make_ca("CA");
        let path = dir.write("enc.key", &encrypt_pkcs8_pem(&ca.key_der, PASSPHRASE));
        let err = load_private_key(&path, None).unwrap_err();
        assert!(matches!(err, TlsError::PassphraseRequired { .. }));
        assert!(
            err.to_string()
                .contains("is encrypted but no passphrase file"),
            "{err}"
        );
    }

    #[test]
    fn unreadable_passphrase_file_names_it() {
        let dir = TempDir::new("pass-missing");
        let ca = make_ca("CA");
        let path = dir.write("enc.key", &encrypt_pkcs8_pem(&ca.key_der, PASSPHRASE));
        let missing = dir.path().join("nope");
        let err = load_private_key(&path, Some(&missing))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot read passphrase file") && err.contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn legacy_openssl_encryption_says_how_to_convert() {
        let dir = TempDir::new("legacy");
        let path = dir.write(
            "legacy.key",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        );
        let err = load_private_key(&path, None).unwrap_err();
        assert!(matches!(err, TlsError::LegacyEncryptedPem { .. }));
        assert!(err.to_string().contains("openssl pkcs8 -topk8"), "{err}");
    }

    #[test]
    fn file_without_key_or_with_garbage_key_is_refused() {
        let dir = TempDir::new("nokey");
        let ca = make_ca("CA");
        let path = dir.write("cert-only.pem", &ca.cert_pem);
        assert!(matches!(
            load_private_key(&path, None),
            Err(TlsError::NoPrivateKey { .. })
        ));
        let path = dir.write(
            "junk.key",
            "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n",
        );
        assert!(matches!(
            load_private_key(&path, None),
            Err(TlsError::UnsupportedKey { .. })
        ));
    }

    #[test]
    fn strip_one_newline_strips_exactly_one() {
        assert_eq!(strip_one_newline(b"a\n"), Some(&b"a"[..]));
        assert_eq!(strip_one_newline(b"a\r\n"), Some(&b"a"[..]));
        assert_eq!(strip_one_newline(b"a\n\n"), Some(&b"a\n"[..]));
        assert_eq!(strip_one_newline(b"a"), None);
    }
}
