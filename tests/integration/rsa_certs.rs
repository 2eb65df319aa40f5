//! Issue 17 item 6 through the binary: the key type of the generated CA and server certificate
//! (`--self-signed-key-type`, `FLEET_EDGE_SELF_SIGNED_KEY_TYPE`): RSA on request or, with
//! `auto`, when a policy file has an Elastic Defend integration; ECDSA P-256 otherwise; agents
//! enroll over either; a stored CA of another type is never replaced (an error when the type
//! was named, a warning with `auto`); the quick start names the key type and when RSA is needed.

use std::path::Path;
use std::sync::Arc;

use crate::support::agent::Agent;
use crate::support::client::tls_config;
use crate::support::{FleetEdge, TempDir};

fn ca_roots(data_dir: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(data_dir.join("certs/ca.crt")).unwrap();
    tls_config(
        &[rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap()],
        None,
    )
}

/// Whether a PEM certificate's public key is RSA (its SubjectPublicKeyInfo names
/// rsaEncryption, 1.2.840.113549.1.1.1) rather than EC (id-ecPublicKey, 1.2.840.10045.2.1).
fn is_rsa(cert_file: &Path) -> bool {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(cert_file).unwrap();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
    let rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let ec = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let has = |oid: &[u8]| der.as_ref().windows(oid.len()).any(|w| w == oid);
    assert!(has(&rsa) != has(&ec), "exactly one key type");
    has(&rsa)
}

/// The quick start's `CA certificate:` line (stdout, printed once the server listens).
fn quick_start_ca_line(server: &FleetEdge) -> String {
    server
        .wait_for_log("CA certificate:", std::time::Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no quick start:\n{}", server.log()))
        .trim()
        .to_owned()
}

/// Enrolls one agent over TLS trusting the generated CA and checks in.
fn enroll_and_checkin(server: &FleetEdge) {
    let line = server
        .wait_for_log("Enrollment token:", std::time::Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no quick start:\n{}", server.log()));
    let token = line
        .trim()
        .strip_prefix("Enrollment token:")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let (mut agent, _) = Agent::enroll(server.addr, ca_roots(&server.data_dir), &token, &[]);
    let (resp, _) = agent.checkin();
    assert_eq!(resp.status, 200);
}

#[test]
fn rsa_on_request_serves_agents_and_a_stored_ca_is_never_replaced() {
    let tmp = TempDir::new("rsa-flag");
    let data = tmp.path().to_path_buf();
    {
        let server = FleetEdge::start_in(&data, &["--self-signed-key-type", "rsa"], &[]);
        assert!(is_rsa(&data.join("certs/ca.crt")));
        assert!(is_rsa(&data.join("certs/server.crt")));
        let log = server.log();
        assert!(log.contains("generated a self-signed RSA CA"), "{log}");
        let line = quick_start_ca_line(&server);
        assert!(line.ends_with("/certs/ca.crt (RSA)"), "{line}");
        enroll_and_checkin(&server);
    }
    // The same data dir with ECDSA named explicitly: refused, naming the CA; nothing replaced.
    let ca_before = std::fs::read(data.join("certs/ca.crt")).unwrap();
    let mut refused =
        FleetEdge::spawn_in(&data, &[], &[("FLEET_EDGE_SELF_SIGNED_KEY_TYPE", "ecdsa")]);
    let status = refused
        .wait_exit(std::time::Duration::from_secs(30))
        .expect("exits");
    assert!(!status.success());
    let log = refused.log();
    assert!(
        log.contains("has an RSA key, but ECDSA P-256 was asked for") && log.contains("ca.crt"),
        "{log}"
    );
    assert_eq!(std::fs::read(data.join("certs/ca.crt")).unwrap(), ca_before);
    // auto keeps the stored RSA CA (no Defend policy, so it would pick ECDSA): a warning.
    let server = FleetEdge::start_in(&data, &[], &[]);
    assert_eq!(std::fs::read(data.join("certs/ca.crt")).unwrap(), ca_before);
    assert!(server
        .log()
        .contains("has an RSA key, but ECDSA P-256 was asked for"));
    enroll_and_checkin(&server);
}

#[test]
fn auto_is_ecdsa_unless_a_policy_has_elastic_defend() {
    let plain = TempDir::new("rsa-auto-plain");
    {
        let server = FleetEdge::start_in(plain.path(), &[], &[]);
        assert!(!is_rsa(&plain.path().join("certs/ca.crt")));
        assert!(!is_rsa(&plain.path().join("certs/server.crt")));
        let line = quick_start_ca_line(&server);
        assert!(
            line.contains("(ECDSA P-256; Elastic Defend needs RSA: --self-signed-key-type rsa"),
            "{line}"
        );
    }

    let defend = TempDir::new("rsa-auto-defend");
    let policies = defend.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("defend.yml"),
        "id: defend\nname: Elastic Defend\nnamespace: default\noutputs:\n  default:\n    type: elasticsearch\n    hosts: ['https://es.example:9200']\ninputs:\n  - id: defend-1\n    name: defend\n    type: endpoint\n    use_output: default\n    meta:\n      package:\n        name: endpoint\n        version: 9.6.0\n",
    )
    .unwrap();
    let server = FleetEdge::start_in(defend.path(), &[], &[]);
    assert!(is_rsa(&defend.path().join("certs/ca.crt")));
    assert!(is_rsa(&defend.path().join("certs/server.crt")));
    let log = server.log();
    assert!(
        log.contains("defend.yml has an Elastic Defend integration: a CA generated now is RSA"),
        "{log}"
    );
    enroll_and_checkin(&server);
}
