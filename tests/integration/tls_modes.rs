//! TLS and mutual TLS as agents see them: which certificates the server presents and which
//! client certificates it accepts, for every `--fleet-server-client-auth` mode.

use std::time::Duration;

use crate::support::client::tls_config;
use crate::support::{run_to_exit, Client, FleetEdge, Pki, TempDir, STATUS_REQUEST};

fn status_over(client: &mut Client) -> u16 {
    client.request(STATUS_REQUEST).unwrap().status
}

/// A refused connection: the handshake fails, or (TLS 1.3, where the client finishes first) the
/// first request gets an alert or a close instead of a response.
fn refused(server: &FleetEdge, config: std::sync::Arc<rustls::ClientConfig>) -> bool {
    match Client::tls(server.addr, config) {
        Err(_) => true,
        Ok(mut c) => c.request(STATUS_REQUEST).is_err(),
    }
}

fn server_with(pki: &Pki, extra: &[&str]) -> FleetEdge {
    let cert = pki.server.cert_path.to_str().unwrap();
    let key = pki.server.key_path.to_str().unwrap();
    let mut args = vec!["--fleet-server-cert", cert, "--fleet-server-cert-key", key];
    args.extend_from_slice(extra);
    FleetEdge::start(&args)
}

#[test]
fn one_way_tls_with_a_ca_signed_certificate() {
    let pki = Pki::new();
    let server = server_with(&pki, &[]);
    assert!(server.url.starts_with("https://"));
    let mut client = Client::tls(server.addr, tls_config(&pki.roots(), None)).unwrap();
    let resp = client.request(STATUS_REQUEST).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.json(),
        serde_json::json!({"name":"fleet-server","status":"HEALTHY"})
    );
}

#[test]
fn one_way_tls_is_rejected_by_a_client_that_trusts_another_ca() {
    let pki = Pki::new();
    let server = server_with(&pki, &[]);
    let other = Pki::new();
    assert!(Client::tls(server.addr, tls_config(&other.roots(), None)).is_err());
}

#[test]
fn mtls_required_refuses_missing_and_foreign_certificates_and_accepts_a_good_one() {
    let pki = Pki::new();
    let ca = pki.ca_path.to_str().unwrap();
    let server = server_with(
        &pki,
        &[
            "--certificate-authorities",
            ca,
            "--fleet-server-client-auth",
            "required",
        ],
    );
    let roots = pki.roots();
    assert!(
        refused(&server, tls_config(&roots, None)),
        "no client certificate"
    );
    let foreign = Some((pki.foreign_client.chain(), pki.foreign_client.key()));
    assert!(
        refused(&server, tls_config(&roots, foreign)),
        "certificate from another CA"
    );
    let good = Some((pki.client.chain(), pki.client.key()));
    let mut client = Client::tls(server.addr, tls_config(&roots, good)).unwrap();
    assert_eq!(status_over(&mut client), 200);
}

#[test]
fn mtls_optional_accepts_no_certificate_but_refuses_a_bad_one() {
    let pki = Pki::new();
    let ca = pki.ca_path.to_str().unwrap();
    let server = server_with(
        &pki,
        &[
            "--certificate-authorities",
            ca,
            "--fleet-server-client-auth",
            "optional",
        ],
    );
    let roots = pki.roots();
    let mut anonymous = Client::tls(server.addr, tls_config(&roots, None)).unwrap();
    assert_eq!(status_over(&mut anonymous), 200);
    let foreign = Some((pki.foreign_client.chain(), pki.foreign_client.key()));
    assert!(refused(&server, tls_config(&roots, foreign)));
    let good = Some((pki.client.chain(), pki.client.key()));
    let mut client = Client::tls(server.addr, tls_config(&roots, good)).unwrap();
    assert_eq!(status_over(&mut client), 200);
}

#[test]
fn mtls_ca_list_is_comma_separated_as_in_the_seeds_example() {
    let pki = Pki::new();
    let cas = format!("{},{}", pki.other_ca_path.display(), pki.ca_path.display());
    let server = server_with(
        &pki,
        &[
            "--certificate-authorities",
            &cas,
            "--fleet-server-client-auth",
            "required",
        ],
    );
    let roots = pki.roots();
    let good = Some((pki.client.chain(), pki.client.key()));
    let mut client = Client::tls(server.addr, tls_config(&roots, good)).unwrap();
    assert_eq!(status_over(&mut client), 200);
    let foreign = Some((pki.foreign_client.chain(), pki.foreign_client.key()));
    let mut also_trusted = Client::tls(server.addr, tls_config(&roots, foreign)).unwrap();
    assert_eq!(
        status_over(&mut also_trusted),
        200,
        "second CA of the list is trusted too"
    );
}

#[test]
fn encrypted_key_is_decrypted_with_its_passphrase_file() {
    let pki = Pki::new();
    let (key, pass) = pki.encrypted_server_key("s3cret pass", "s3cret pass");
    let server = FleetEdge::start(&[
        "--fleet-server-cert",
        pki.server.cert_path.to_str().unwrap(),
        "--fleet-server-cert-key",
        key.to_str().unwrap(),
        "--fleet-server-cert-key-passphrase",
        pass.to_str().unwrap(),
    ]);
    let mut client = Client::tls(server.addr, tls_config(&pki.roots(), None)).unwrap();
    assert_eq!(status_over(&mut client), 200);
}

#[test]
fn wrong_passphrase_exits_2_with_one_clear_sentence() {
    let pki = Pki::new();
    let (key, pass) = pki.encrypted_server_key("right", "wrong");
    let data = TempDir::new("wrongpass");
    let (status, _out, err) = run_to_exit(
        &[
            "--data-dir",
            data.path().to_str().unwrap(),
            "--fleet-server-cert",
            pki.server.cert_path.to_str().unwrap(),
            "--fleet-server-cert-key",
            key.to_str().unwrap(),
            "--fleet-server-cert-key-passphrase",
            pass.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(status.code(), Some(2), "stderr: {err}");
    let lower = err.to_lowercase();
    assert!(lower.contains("passphrase"), "stderr: {err}");
    assert!(
        err.contains(pass.to_str().unwrap()) || err.contains(key.to_str().unwrap()),
        "names the file: {err}"
    );
}

#[test]
fn self_signed_certificate_is_generated_then_reused_after_restart() {
    let data = TempDir::new("selfsigned");
    let ca_path = data.join("certs/ca.crt");
    let first_ca;
    {
        let mut server = FleetEdge::start_in(data.path(), &[], &[]);
        assert!(ca_path.exists(), "CA written to the data dir");
        first_ca = std::fs::read(&ca_path).unwrap();
        let log = server.log();
        assert!(
            log.contains(ca_path.to_str().unwrap()),
            "log names the CA path: {log}"
        );
        let ca_der = pem_to_der(&first_ca);
        let fingerprint = sha256_hex(&ca_der);
        assert!(
            log.contains(&fingerprint),
            "log shows the CA fingerprint {fingerprint}: {log}"
        );
        let mut client = Client::tls(server.addr, tls_config(&[ca_der], None)).unwrap();
        assert_eq!(status_over(&mut client), 200);
        server.sigterm();
        assert_eq!(
            server.wait_exit(Duration::from_secs(15)).unwrap().code(),
            Some(0)
        );
    }
    let server = FleetEdge::start_in(data.path(), &[], &[]);
    assert_eq!(
        std::fs::read(&ca_path).unwrap(),
        first_ca,
        "same CA after restart"
    );
    let mut client = Client::tls(server.addr, tls_config(&[pem_to_der(&first_ca)], None)).unwrap();
    assert_eq!(status_over(&mut client), 200, "a pinned CA keeps working");
}

#[test]
fn plain_http_only_with_insecure_http_and_it_warns() {
    let server = FleetEdge::start(&["--fleet-server-insecure-http"]);
    assert!(server.url.starts_with("http://"), "{}", server.url);
    let mut client = Client::plain(server.addr).unwrap();
    assert_eq!(status_over(&mut client), 200);
    let log = server.log().to_lowercase();
    assert!(log.contains("warn") && log.contains("plain http"), "{log}");
}

fn pem_to_der(pem: &[u8]) -> rustls::pki_types::CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem).unwrap()
}

fn sha256_hex(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn fleet_url_outside_the_certificate_stops_startup_and_a_covered_one_starts() {
    let pki = Pki::new();
    let data = TempDir::new("fleeturl");
    let args = |dir: &str| {
        vec![
            "--data-dir".to_owned(),
            dir.to_owned(),
            "--fleet-server-host".into(),
            "127.0.0.1".into(),
            "--fleet-server-port".into(),
            "0".into(),
            "--management-port".into(),
            "0".into(),
            "--fleet-server-cert".into(),
            pki.server.cert_path.to_str().unwrap().into(),
            "--fleet-server-cert-key".into(),
            pki.server.key_path.to_str().unwrap().into(),
        ]
    };
    let dir = data.path().to_str().unwrap().to_owned();
    let a = args(&dir);
    let argv: Vec<&str> = a.iter().map(String::as_str).collect();
    let (status, _, err) = run_to_exit(&argv, &[("FLEET_URL", "https://fleet.example.com:8220")]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("fleet.example.com") && err.contains("does not cover"),
        "{err}"
    );
    // localhost is in the test certificate's SANs: the server starts.
    let server = FleetEdge::start_in(
        data.path(),
        &[
            "--fleet-server-cert",
            pki.server.cert_path.to_str().unwrap(),
            "--fleet-server-cert-key",
            pki.server.key_path.to_str().unwrap(),
        ],
        &[("FLEET_URL", "https://localhost:8220")],
    );
    assert!(server.url.starts_with("https://"));
}
