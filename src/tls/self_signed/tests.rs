//! Self-signed certificates: creation, reuse, re-issue, refusals, key types.

use super::*;
use crate::tls::test_support::*;
use crate::tls::{server_config, ClientAuth};

fn hosts(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn creates_ca_and_server_cert_with_private_permissions() {
    let dir = TempDir::new("ss-create");
    let out = load_or_create(
        dir.path(),
        &hosts(&["localhost", "127.0.0.1"]),
        KeyRequest::default(),
    )
    .unwrap();
    assert!(out.created && out.issued_server_cert);
    let certs = dir.path().join("certs");
    assert_eq!(out.ca_cert_path, certs.join("ca.crt"));
    for f in ["ca.crt", "ca.key", "server.crt", "server.key"] {
        assert!(certs.join(f).is_file(), "{f}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&certs), 0o700);
        assert_eq!(mode(&certs.join("ca.key")), 0o600);
        assert_eq!(mode(&certs.join("server.key")), 0o600);
    }
    assert_eq!(out.material.chain.len(), 2);
    assert_eq!(
        out.ca_fingerprint,
        sha256_fingerprint_hex(&out.material.chain[1])
    );
    let ca_on_disk = crate::tls::load_cert_chain(&out.ca_cert_path).unwrap();
    assert_eq!(ca_on_disk[0], out.material.chain[1]);

    // Agents trusting the CA can connect by name and by IP.
    let config = server_config(&out.material, ClientAuth::None, &[]).unwrap();
    handshake(config.clone(), &ca_on_disk[0], "localhost", None).unwrap();
    handshake(config, &ca_on_disk[0], "127.0.0.1", None).unwrap();
}

#[test]
fn reuses_everything_on_restart() {
    let dir = TempDir::new("ss-reuse");
    let h = hosts(&["localhost", "fleet.local"]);
    let first = load_or_create(dir.path(), &h, KeyRequest::default()).unwrap();
    let second = load_or_create(dir.path(), &h, KeyRequest::default()).unwrap();
    assert!(!second.created && !second.issued_server_cert);
    assert_eq!(second.ca_fingerprint, first.ca_fingerprint);
    assert_eq!(second.material.chain, first.material.chain);
    assert_eq!(
        second.material.key.secret_der(),
        first.material.key.secret_der()
    );
}

#[test]
fn a_new_host_gets_a_new_server_cert_from_the_same_ca() {
    let dir = TempDir::new("ss-newhost");
    let first = load_or_create(dir.path(), &hosts(&["localhost"]), KeyRequest::default()).unwrap();
    let second = load_or_create(
        dir.path(),
        &hosts(&["localhost", "gw.example", "10.1.2.3"]),
        KeyRequest::default(),
    )
    .unwrap();
    assert!(!second.created && second.issued_server_cert);
    assert_eq!(second.ca_fingerprint, first.ca_fingerprint);
    assert_ne!(second.material.chain[0], first.material.chain[0]);
    let ca = &second.material.chain[1];
    let config = server_config(&second.material, ClientAuth::None, &[]).unwrap();
    for name in ["localhost", "gw.example", "10.1.2.3"] {
        handshake(config.clone(), ca, name, None).unwrap();
    }
    // The new certificate was stored: a third start reuses it.
    let third = load_or_create(
        dir.path(),
        &hosts(&["gw.example", "10.1.2.3", "localhost"]),
        KeyRequest::default(),
    )
    .unwrap();
    assert!(!third.issued_server_cert);
    assert_eq!(third.material.chain[0], second.material.chain[0]);
}

#[test]
fn hosts_are_deduplicated_and_normalized() {
    let h = hosts(&["LOCALHOST", "localhost.", "[::1]", "::1", "127.0.0.1"]);
    assert_eq!(
        normalize_hosts(&h).unwrap(),
        hosts(&["localhost", "::1", "127.0.0.1"])
    );
    assert_eq!(normalize_hosts(&[]).unwrap(), hosts(&["localhost"]));
    assert!(matches!(
        normalize_hosts(&hosts(&["not a host"])),
        Err(TlsError::InvalidHost { .. })
    ));
    assert!(is_valid_host("fleet-1.example.com"));
    assert!(is_valid_host("[fe80::1]"));
    assert!(!is_valid_host(""));
    assert!(!is_valid_host("bad_host name"));
}

#[test]
fn corrupt_files_are_errors_naming_the_file_and_are_kept() {
    let dir = TempDir::new("ss-corrupt");
    load_or_create(dir.path(), &hosts(&["localhost"]), KeyRequest::default()).unwrap();
    let certs = dir.path().join("certs");
    for name in ["ca.crt", "ca.key", "server.crt", "server.key"] {
        let path = certs.join(name);
        let original = fs::read(&path).unwrap();
        fs::write(&path, "garbage").unwrap();
        let err =
            load_or_create(dir.path(), &hosts(&["localhost"]), KeyRequest::default()).unwrap_err();
        assert!(
            matches!(err, TlsError::CorruptSelfSigned { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(name), "{name}: {err}");
        assert_eq!(
            fs::read(&path).unwrap(),
            b"garbage",
            "{name} was overwritten"
        );
        fs::write(&path, original).unwrap();
    }
    assert!(load_or_create(dir.path(), &hosts(&["localhost"]), KeyRequest::default()).is_ok());
}

#[test]
fn a_missing_ca_key_is_an_error_not_a_new_ca() {
    let dir = TempDir::new("ss-missing");
    load_or_create(dir.path(), &hosts(&["localhost"]), KeyRequest::default()).unwrap();
    let key = dir.path().join("certs/ca.key");
    fs::remove_file(&key).unwrap();
    let err =
        load_or_create(dir.path(), &hosts(&["localhost"]), KeyRequest::default()).unwrap_err();
    assert!(
        err.to_string().contains("ca.key") && err.to_string().contains("missing"),
        "{err}"
    );
    assert!(!key.exists());
}

#[test]
fn a_missing_server_key_is_reissued_from_the_same_ca() {
    let dir = TempDir::new("ss-reissue");
    let first = load_or_create(dir.path(), &hosts(&["localhost"]), KeyRequest::default()).unwrap();
    fs::remove_file(dir.path().join("certs/server.key")).unwrap();
    let second = load_or_create(dir.path(), &hosts(&["localhost"]), KeyRequest::default()).unwrap();
    assert!(!second.created && second.issued_server_cert);
    assert_eq!(second.ca_fingerprint, first.ca_fingerprint);
}

#[test]
fn a_foreign_ca_is_reported_not_replaced() {
    let dir = TempDir::new("ss-foreign");
    let certs = dir.path().join("certs");
    fs::create_dir_all(&certs).unwrap();
    let foreign = make_ca("someone else's CA");
    fs::write(certs.join("ca.crt"), &foreign.cert_pem).unwrap();
    fs::write(certs.join("ca.key"), &foreign.key_pem).unwrap();
    let err =
        load_or_create(dir.path(), &hosts(&["localhost"]), KeyRequest::default()).unwrap_err();
    assert!(err.to_string().contains("ca.crt"), "{err}");
}

#[test]
fn civil_dates_are_right() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(59), (1970, 3, 1));
    assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    assert_eq!(civil_from_days(19_723), (2024, 1, 1));
}

const RSA: KeyRequest = KeyRequest {
    algorithm: KeyAlgorithm::Rsa2048,
    explicit: true,
};

/// The public key algorithm OID of a certificate's SubjectPublicKeyInfo, as rustls reads it.
fn is_rsa(cert: &CertificateDer<'_>) -> bool {
    // rsaEncryption, 1.2.840.113549.1.1.1
    let rsa_oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    cert.as_ref().windows(rsa_oid.len()).any(|w| w == rsa_oid)
}

#[test]
fn rsa_certificates_chain_and_serve_tls_and_are_kept_on_restart() {
    let dir = TempDir::new("ss-rsa");
    let h = hosts(&["localhost", "127.0.0.1"]);
    let out = load_or_create(dir.path(), &h, RSA).unwrap();
    assert!(out.created && out.issued_server_cert);
    assert!(is_rsa(&out.material.chain[0]) && is_rsa(&out.material.chain[1]));
    let ca_pem = fs::read_to_string(dir.path().join("certs/ca.key")).unwrap();
    assert!(ca_pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8");
    let config = server_config(&out.material, ClientAuth::None, &[]).unwrap();
    handshake(config, &out.material.chain[1], "localhost", None).unwrap();
    // Restarted with the default (auto → ECDSA) request: the RSA CA is kept, with a warning,
    // and so is its RSA server certificate.
    let again = load_or_create(dir.path(), &h, KeyRequest::default()).unwrap();
    assert!(!again.created && !again.issued_server_cert);
    assert_eq!(again.ca_fingerprint, out.ca_fingerprint);
    assert_eq!(again.material.chain, out.material.chain);
}

#[test]
fn an_explicit_key_type_that_the_stored_ca_lacks_is_an_error_and_nothing_is_replaced() {
    let dir = TempDir::new("ss-rsa-mismatch");
    let h = hosts(&["localhost"]);
    let first = load_or_create(dir.path(), &h, KeyRequest::default()).unwrap();
    assert!(!is_rsa(&first.material.chain[1]));
    let err = load_or_create(dir.path(), &h, RSA).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("ECDSA P-256 key, but RSA was asked for") && text.contains("ca.crt"),
        "{text}"
    );
    let kept = load_or_create(dir.path(), &h, KeyRequest::default()).unwrap();
    assert_eq!(kept.ca_fingerprint, first.ca_fingerprint);
    assert!(!kept.issued_server_cert);
}

#[test]
fn a_server_certificate_of_another_key_type_than_the_ca_is_reissued() {
    let dir = TempDir::new("ss-rsa-server");
    let h = hosts(&["localhost"]);
    let ecdsa = load_or_create(dir.path(), &h, KeyRequest::default()).unwrap();
    // An RSA CA is put in place of the ECDSA one, its server certificate left behind.
    let certs = dir.path().join("certs");
    fs::remove_file(certs.join("ca.crt")).unwrap();
    fs::remove_file(certs.join("ca.key")).unwrap();
    let rsa_dir = TempDir::new("ss-rsa-ca");
    let rsa = load_or_create(rsa_dir.path(), &h, RSA).unwrap();
    for f in ["ca.crt", "ca.key"] {
        fs::copy(rsa_dir.path().join("certs").join(f), certs.join(f)).unwrap();
    }
    let out = load_or_create(dir.path(), &h, RSA).unwrap();
    assert!(out.issued_server_cert && !out.created);
    assert_eq!(out.ca_fingerprint, rsa.ca_fingerprint);
    assert!(is_rsa(&out.material.chain[0]));
    assert_ne!(out.material.chain[0], ecdsa.material.chain[0]);
}

#[test]
fn key_type_settings_parse() {
    assert_eq!("auto".parse(), Ok(SelfSignedKey::Auto));
    assert_eq!(" RSA ".parse(), Ok(SelfSignedKey::Rsa));
    assert_eq!("ecdsa".parse(), Ok(SelfSignedKey::Ecdsa));
    assert!("rsa4096".parse::<SelfSignedKey>().is_err());
}
