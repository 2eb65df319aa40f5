//! Builds the rustls `ServerConfig` agents connect to: the ring provider explicitly, TLS 1.2 and
//! 1.3, ALPN `http/1.1`, and client-certificate verification for `optional` / `required`.
//! Part of `tls`; used by `net` at startup and on rebind.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;

use super::{ClientAuth, TlsError, TlsMaterial};

/// Builds the server TLS configuration.
///
/// * `None`: no client certificate is requested.
/// * `Optional`: a certificate is requested; a client without one is accepted, an invalid one
///   is rejected.
/// * `Required`: a valid certificate chained to `client_cas` is required.
///
/// `Optional` and `Required` without any CA are an error.
pub fn server_config(
    material: &TlsMaterial,
    client_auth: ClientAuth,
    client_cas: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let config_err = |e: rustls::Error| TlsError::Config {
        detail: e.to_string(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(config_err)?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional | ClientAuth::Required => {
            if client_cas.is_empty() {
                return Err(TlsError::ClientAuthWithoutCas { mode: client_auth });
            }
            let mut roots = rustls::RootCertStore::empty();
            for ca in client_cas {
                roots.add(ca.clone()).map_err(config_err)?;
            }
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if client_auth == ClientAuth::Optional {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier.build().map_err(|e| TlsError::Config {
                detail: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(material.chain.clone(), material.key.clone_key())
        .map_err(config_err)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::test_support::*;

    struct Pki {
        server_ca: TestCert,
        server: TestCert,
        client_ca: TestCert,
        client: TestCert,
        stranger: TestCert,
    }

    fn pki() -> Pki {
        let server_ca = make_ca("server CA");
        let server = make_leaf(&server_ca, &["fleet.example", "127.0.0.1"]);
        let client_ca = make_ca("client CA");
        let client = make_leaf(&client_ca, &["agent-1"]);
        let other_ca = make_ca("other CA");
        let stranger = make_leaf(&other_ca, &["agent-2"]);
        Pki {
            server_ca,
            server,
            client_ca,
            client,
            stranger,
        }
    }

    #[test]
    fn client_auth_none_accepts_plain_clients_and_negotiates_http11() {
        let p = pki();
        let config = server_config(&p.server.material(), ClientAuth::None, &[]).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        handshake(config.clone(), &p.server_ca.cert_der, "fleet.example", None).unwrap();
        handshake(config, &p.server_ca.cert_der, "127.0.0.1", None).unwrap();
    }

    #[test]
    fn client_auth_optional_accepts_no_cert_and_a_valid_one_but_rejects_an_invalid_one() {
        let p = pki();
        let cas = [p.client_ca.cert_der.clone()];
        let config = server_config(&p.server.material(), ClientAuth::Optional, &cas).unwrap();
        let ca = &p.server_ca.cert_der;
        handshake(config.clone(), ca, "fleet.example", None).unwrap();
        handshake(
            config.clone(),
            ca,
            "fleet.example",
            Some(&p.client.material()),
        )
        .unwrap();
        let err = handshake(config, ca, "fleet.example", Some(&p.stranger.material()));
        assert!(
            err.is_err(),
            "a certificate from an unknown CA must be rejected"
        );
    }

    #[test]
    fn client_auth_required_needs_a_valid_cert() {
        let p = pki();
        let cas = [p.client_ca.cert_der.clone()];
        let config = server_config(&p.server.material(), ClientAuth::Required, &cas).unwrap();
        let ca = &p.server_ca.cert_der;
        assert!(handshake(config.clone(), ca, "fleet.example", None).is_err());
        assert!(handshake(
            config.clone(),
            ca,
            "fleet.example",
            Some(&p.stranger.material())
        )
        .is_err());
        handshake(config, ca, "fleet.example", Some(&p.client.material())).unwrap();
    }

    #[test]
    fn client_auth_without_cas_is_an_error() {
        let p = pki();
        for mode in [ClientAuth::Optional, ClientAuth::Required] {
            let err = server_config(&p.server.material(), mode, &[]).unwrap_err();
            assert!(matches!(err, TlsError::ClientAuthWithoutCas { .. }));
            assert!(err.to_string().contains(&mode.to_string()));
        }
    }

    #[test]
    fn mismatched_key_is_a_config_error() {
        let p = pki();
        let material = TlsMaterial {
            chain: vec![p.server.cert_der.clone()],
            key: p.client.key(),
        };
        assert!(matches!(
            server_config(&material, ClientAuth::None, &[]),
            Err(TlsError::Config { .. })
        ));
    }

    #[test]
    fn rsa_pkcs1_keys_serve_tls() {
        use rustls::pki_types::pem::PemObject;
        let ca = make_ca("CA");
        let rsa = rcgen::KeyPair::from_pem(RSA_PKCS8_PEM).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["rsa.example".to_string()]).unwrap();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let issuer_key = rcgen::KeyPair::try_from(ca.key_der.as_slice()).unwrap();
        let mut ca_params = rcgen::CertificateParams::default();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "CA");
        let issuer = rcgen::Issuer::new(ca_params, issuer_key);
        let cert = params.signed_by(&rsa, &issuer).unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::from_pem_slice(RSA_PKCS1_PEM.as_bytes()).unwrap();
        let material = TlsMaterial {
            chain: vec![cert.der().clone()],
            key,
        };
        let config = server_config(&material, ClientAuth::None, &[]).unwrap();
        handshake(config, &ca.cert_der, "rsa.example", None).unwrap();
    }
}
