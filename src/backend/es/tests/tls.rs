//! The TLS matrix against the stand-in over HTTPS, with certificates made by rcgen in the test:
//! CA file, CA trusted fingerprint only, wrong fingerprint, wrong CA, no CA (public roots),
//! mutual TLS required (with, without, and with a foreign client certificate), insecure.

use std::time::{Duration, Instant};

use es_standin::{ClientAuth, Options, StandIn, TlsSettings};

use super::{quick, settings};
use crate::backend::es::{EsError, EsStore};
use crate::backend::Store;
use crate::tls::test_support::{make_ca, make_leaf, TestCert};
use crate::tls::Fingerprint;

struct Pki {
    ca: TestCert,
    es: StandIn,
}

/// A stand-in over HTTPS whose certificate (chain: leaf, CA) is signed by a fresh CA; with
/// `client_ca`, client certificates signed by it are required.
fn https(client_ca: Option<&TestCert>) -> Pki {
    let ca = make_ca("es-standin test CA");
    let leaf = make_leaf(&ca, &["localhost", "127.0.0.1"]);
    let tls = TlsSettings {
        cert_pem: format!("{}{}", leaf.cert_pem, ca.cert_pem).into_bytes(),
        key_pem: leaf.key_pem.clone().into_bytes(),
        client_ca_pem: client_ca.map(|c| c.cert_pem.clone().into_bytes()),
        client_auth: ClientAuth::Required,
    };
    let es = StandIn::start(Options {
        tls: Some(tls),
        ..Options::default()
    })
    .unwrap();
    assert!(es.url().starts_with("https://"));
    Pki { ca, es }
}

fn connect(s: &crate::config::EsSettings) -> Result<EsStore, EsError> {
    EsStore::connect_with(s, Some(Duration::from_secs(30)), quick())
}

fn works(store: &EsStore) {
    assert_eq!(store.agent("nobody").unwrap(), None);
    assert_eq!(store.latest_policies().unwrap(), Vec::new());
}

#[test]
fn ca_file_is_trusted() {
    let pki = https(None);
    let mut s = settings(&pki.es);
    s.ca_certs = vec![pki.ca.cert_der.clone()];
    works(&connect(&s).unwrap());
}

#[test]
fn a_trusted_fingerprint_alone_is_enough() {
    let pki = https(None);
    let mut s = settings(&pki.es);
    s.ca_trusted_fingerprint = Some(Fingerprint::of(&pki.ca.cert_der));
    works(&connect(&s).unwrap());
}

#[test]
fn a_wrong_fingerprint_fails_at_once_with_a_clear_sentence() {
    let pki = https(None);
    let other = make_ca("someone else");
    let mut s = settings(&pki.es);
    s.ca_trusted_fingerprint = Some(Fingerprint::of(&other.cert_der));
    let began = Instant::now();
    let err = connect(&s).unwrap_err();
    eprintln!("{err}");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "not retried until the timeout"
    );
    assert!(
        matches!(err, EsError::FingerprintNotFound { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("no certificate presented by Elasticsearch at https://127.0.0.1:")
            && text.contains(&Fingerprint::of(&other.cert_der).to_string())
            && text.contains("--fleet-server-es-ca-trusted-fingerprint")
            && text.contains(&Fingerprint::of(&pki.ca.cert_der).to_string()),
        "{text}"
    );
}

#[test]
fn a_wrong_ca_fails_at_once_with_a_clear_sentence() {
    let pki = https(None);
    let other = make_ca("someone else");
    let mut s = settings(&pki.es);
    s.ca_certs = vec![other.cert_der.clone()];
    let began = Instant::now();
    let err = connect(&s).unwrap_err();
    eprintln!("{err}");
    assert!(began.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(err, EsError::UntrustedCertificate { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("the TLS certificate presented by Elasticsearch at https://127.0.0.1:")
            && text.contains(
                " is not signed by a CA of --fleet-server-es-ca (certificate verification failed: "
            ),
        "{text}"
    );
}

#[test]
fn a_private_ca_is_not_among_the_public_roots() {
    let pki = https(None);
    let err = connect(&settings(&pki.es)).unwrap_err();
    assert!(
        matches!(err, EsError::UntrustedCertificate { .. }),
        "{err:?}"
    );
}

#[test]
fn mutual_tls_required_works_with_a_client_certificate() {
    let client_ca = make_ca("client CA");
    let client = make_leaf(&client_ca, &["fleet-edge"]);
    let pki = https(Some(&client_ca));
    let mut s = settings(&pki.es);
    s.ca_certs = vec![pki.ca.cert_der.clone()];
    s.client_cert = Some(client.material());
    works(&connect(&s).unwrap());
    // The fingerprint probe presents the client certificate too.
    s.ca_certs.clear();
    s.ca_trusted_fingerprint = Some(Fingerprint::of(&pki.ca.cert_der));
    works(&connect(&s).unwrap());
}

#[test]
fn mutual_tls_required_without_a_client_certificate_fails_at_once() {
    let client_ca = make_ca("client CA");
    let pki = https(Some(&client_ca));
    let mut s = settings(&pki.es);
    s.ca_certs = vec![pki.ca.cert_der.clone()];
    let began = Instant::now();
    let err = connect(&s).unwrap_err();
    eprintln!("{err}");
    assert!(began.elapsed() < Duration::from_secs(5), "{err}");
    assert!(
        matches!(err, EsError::ClientCertificateRequired { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("--fleet-server-es-cert"), "{err}");
}

#[test]
fn mutual_tls_required_with_a_foreign_client_certificate_fails_at_once() {
    let client_ca = make_ca("client CA");
    let foreign = make_leaf(&make_ca("someone else"), &["fleet-edge"]);
    let pki = https(Some(&client_ca));
    let mut s = settings(&pki.es);
    s.ca_certs = vec![pki.ca.cert_der.clone()];
    s.client_cert = Some(foreign.material());
    let began = Instant::now();
    let err = connect(&s).unwrap_err();
    eprintln!("{err}");
    assert!(began.elapsed() < Duration::from_secs(5), "{err}");
    assert!(
        matches!(err, EsError::ClientCertificateRejected { .. }),
        "{err:?}"
    );
}

#[test]
fn insecure_skips_verification() {
    let pki = https(None);
    let mut s = settings(&pki.es);
    s.insecure = true;
    works(&connect(&s).unwrap());
}

#[test]
fn tls_settings_are_ignored_for_plain_http() {
    let es = StandIn::start(Options::default()).unwrap();
    let mut s = settings(&es);
    s.ca_trusted_fingerprint = Some(Fingerprint::of(&make_ca("unused").cert_der));
    let began = Instant::now();
    works(&connect(&s).unwrap());
    assert!(began.elapsed() < Duration::from_secs(5));
}
