//! TLS from the real binary to Elasticsearch (issue #4 acceptance): the stand-in over HTTPS with
//! a certificate chain from a test PKI, and fleet-edge started with `--fleet-server-es-ca`,
//! `--fleet-server-es-ca-trusted-fingerprint` (lower case, upper case with colons),
//! `--fleet-server-es-cert`/`--fleet-server-es-cert-key` against a stand-in that requires client
//! certificates, `--fleet-server-es-insecure` against a self-signed one; the startup failures
//! (wrong fingerprint, wrong CA, public roots only, no client certificate, an encrypted client
//! key) as exit codes and one sentence; and Elasticsearch coming up on its port only after
//! fleet-edge started waiting for it.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use es_standin::{ClientAuth, Options, StandIn, TlsSettings};
use rustls::pki_types::CertificateDer;
use serde_json::json;

use crate::support::agent::Agent;
use crate::support::client::tls_config;
use crate::support::{run_to_exit, FleetEdge, Pki, TempDir};

/// The stand-in's server certificate (localhost, 127.0.0.1) followed by the CA that signed it,
/// as Elasticsearch's `http.p12` chains usually are; with `mtls`, client certificates signed by
/// the same CA are required.
fn chain_tls(pki: &Pki, mtls: bool) -> TlsSettings {
    let mut cert_pem = std::fs::read(&pki.server.cert_path).unwrap();
    cert_pem.extend(std::fs::read(&pki.ca_path).unwrap());
    TlsSettings {
        cert_pem,
        key_pem: std::fs::read(&pki.server.key_path).unwrap(),
        client_ca_pem: mtls.then(|| std::fs::read(&pki.ca_path).unwrap()),
        client_auth: ClientAuth::Required,
    }
}

fn https_standin(tls: TlsSettings) -> StandIn {
    let es = StandIn::start(Options {
        tls: Some(tls),
        refresh_interval: Some(Duration::from_millis(100)),
        ..Options::default()
    })
    .unwrap();
    assert!(es.url().starts_with("https://"), "{}", es.url());
    es
}

/// Kibana's side: a policy with an Elasticsearch output, and an enrollment token for it.
fn seed(es: &StandIn) -> String {
    seed_with(&es.seed(), &es.url())
}

/// [`seed`] for a stand-in that requires client certificates: Kibana presents one too.
fn seed_mtls(es: &StandIn, pki: &Pki) -> String {
    let tls = es_standin::ClientTls {
        ca_pem: Some(std::fs::read(&pki.ca_path).unwrap()),
        insecure: false,
        client_cert: Some((
            std::fs::read(&pki.client.cert_path).unwrap(),
            std::fs::read(&pki.client.key_path).unwrap(),
        )),
    };
    let client = es_standin::Client::new(&es.url(), Some(tls))
        .unwrap()
        .with_auth(&es.superuser_auth());
    seed_with(&es_standin::Seeder::new(client, &es.url()), &es.url())
}

fn seed_with(seeder: &es_standin::Seeder, url: &str) -> String {
    seeder
        .policy_with_data(
            "tls-policy",
            json!({"id": "tls-policy", "revision": 1,
                   "outputs": {"default": {"type": "elasticsearch", "hosts": [url]}},
                   "output_permissions": {"default": {"_elastic_agent_checks": {"cluster": ["monitor"]}}},
                   "inputs": []}),
        )
        .unwrap();
    seeder
        .enrollment_key("tls-policy", "Default")
        .unwrap()
        .api_key
}

/// The production-mode arguments for `url`, plus `extra`.
fn es_args<'a>(url: &'a str, token: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--fleet-server-es",
        url,
        "--fleet-server-service-token",
        token,
        "--checkin-long-poll",
        "30s",
        "--checkin-jitter",
        "0s",
    ];
    args.extend_from_slice(extra);
    args
}

/// The CA fleet-edge generated for its own listener (agents trust it).
fn agent_roots(server: &FleetEdge) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(server.data_dir.join("certs/ca.crt")).unwrap();
    tls_config(&[CertificateDer::from_pem_slice(&pem).unwrap()], None)
}

/// An agent enrolls through `server` and its first checkin brings the policy as POLICY_CHANGE:
/// both need fleet-edge's calls to Elasticsearch (over the TLS under test) to work.
fn an_agent_gets_its_policy(server: &FleetEdge, enrollment_token: &str) {
    let (mut agent, _) = Agent::enroll(server.addr, agent_roots(server), enrollment_token, &[]);
    let (resp, body) = agent.checkin();
    assert_eq!(resp.status, 200, "{body}");
    let action = &body["actions"][0];
    assert_eq!(action["type"], "POLICY_CHANGE", "{body}");
    assert_eq!(action["id"], "policy:tls-policy:1", "{body}");
}

/// SHA-256 of a certificate's DER in lower-case hex without separators.
fn fingerprint(der: &CertificateDer<'_>) -> String {
    ring::digest::digest(&ring::digest::SHA256, der.as_ref())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The same fingerprint in upper case with colons (`AB:CD:...`), as `openssl x509 -fingerprint`
/// prints it.
fn fingerprint_upper_colons(der: &CertificateDer<'_>) -> String {
    fingerprint(der)
        .to_ascii_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A startup that must fail: runs fleet-edge to exit with `args` (its own data dir, loopback,
/// ephemeral ports, `--fleet-server-timeout` of `timeout`) and returns (exit code, how long it
/// ran, the last stderr line, all of stderr).
fn failed_startup(args: &[&str], timeout: &str) -> (Option<i32>, Duration, String, String) {
    let data = TempDir::new("es-tls-fail");
    let mut full = vec![
        "--data-dir",
        path(data.path()),
        "--fleet-server-host",
        "127.0.0.1",
        "--fleet-server-port",
        "0",
        "--management-port",
        "0",
        "--fleet-server-timeout",
        timeout,
    ];
    full.extend_from_slice(args);
    let began = Instant::now();
    let (status, _, err) = run_to_exit(&full, &[]);
    eprintln!("{err}");
    let last = err.lines().last().unwrap_or_default().to_owned();
    (status.code(), began.elapsed(), last, err)
}

/// The startup failure is one line of stderr, `fleet-edge: <sentence>`, and it came well before
/// the startup timeout (these causes are not retried).
fn one_sentence_at_once(code: Option<i32>, took: Duration, last: &str, err: &str) -> String {
    assert_eq!(code, Some(1), "{err}");
    assert!(
        took < Duration::from_secs(15),
        "stopped at once, not at the 20 s timeout: {took:?}\n{err}"
    );
    let sentence = last
        .strip_prefix("fleet-edge: ")
        .unwrap_or_else(|| panic!("last stderr line is not the startup error: {err}"));
    assert!(!sentence.is_empty());
    sentence.to_owned()
}

#[test]
fn es_ca_file_is_trusted_and_an_agent_gets_its_policy() {
    let pki = Pki::new();
    let es = https_standin(chain_tls(&pki, false));
    let token = seed(&es);
    let (url, service) = (es.url(), es.service_token());
    let server = FleetEdge::start(&es_args(
        &url,
        &service,
        &["--fleet-server-es-ca", path(&pki.ca_path)],
    ));
    assert!(
        server
            .log()
            .contains(&format!("connected to Elasticsearch 9.6.0 at {url}")),
        "{}",
        server.log()
    );
    an_agent_gets_its_policy(&server, &token);
}

#[test]
fn a_trusted_fingerprint_alone_is_enough_in_either_spelling() {
    let pki = Pki::new();
    let es = https_standin(chain_tls(&pki, false));
    let token = seed(&es);
    let (url, service) = (es.url(), es.service_token());
    for spelling in [
        fingerprint(&pki.ca_der),
        fingerprint_upper_colons(&pki.ca_der),
    ] {
        let server = FleetEdge::start(&es_args(
            &url,
            &service,
            &["--fleet-server-es-ca-trusted-fingerprint", &spelling],
        ));
        assert!(
            server
                .log()
                .contains("(CA found by its trusted fingerprint)"),
            "{spelling}: {}",
            server.log()
        );
        an_agent_gets_its_policy(&server, &token);
    }
}

#[test]
fn mutual_tls_with_the_es_client_certificate_works() {
    let pki = Pki::new();
    let es = https_standin(chain_tls(&pki, true));
    let token = seed_mtls(&es, &pki);
    let (url, service) = (es.url(), es.service_token());
    let fp = fingerprint(&pki.ca_der);
    // With the CA file, and with the fingerprint (whose probe presents the certificate too).
    for trust in [
        ["--fleet-server-es-ca", path(&pki.ca_path)],
        ["--fleet-server-es-ca-trusted-fingerprint", fp.as_str()],
    ] {
        let mut extra = trust.to_vec();
        extra.extend([
            "--fleet-server-es-cert",
            path(&pki.client.cert_path),
            "--fleet-server-es-cert-key",
            path(&pki.client.key_path),
        ]);
        let server = FleetEdge::start(&es_args(&url, &service, &extra));
        an_agent_gets_its_policy(&server, &token);
    }
}

#[test]
fn mutual_tls_without_a_client_certificate_stops_with_a_sentence_naming_it() {
    let pki = Pki::new();
    let es = https_standin(chain_tls(&pki, true));
    let (url, service) = (es.url(), es.service_token());
    let (code, took, last, err) = failed_startup(
        &es_args(
            &url,
            &service,
            &["--fleet-server-es-ca", path(&pki.ca_path)],
        ),
        "20s",
    );
    let sentence = one_sentence_at_once(code, took, &last, &err);
    assert_eq!(
        sentence,
        format!("Elasticsearch at {url} requires a TLS client certificate (it ended the handshake with the alert CertificateRequired): set --fleet-server-es-cert and --fleet-server-es-cert-key")
    );
}

#[test]
fn mutual_tls_with_a_foreign_client_certificate_stops_with_a_sentence_naming_it() {
    let pki = Pki::new();
    let es = https_standin(chain_tls(&pki, true));
    let (url, service) = (es.url(), es.service_token());
    let (code, took, last, err) = failed_startup(
        &es_args(
            &url,
            &service,
            &[
                "--fleet-server-es-ca",
                path(&pki.ca_path),
                "--fleet-server-es-cert",
                path(&pki.foreign_client.cert_path),
                "--fleet-server-es-cert-key",
                path(&pki.foreign_client.key_path),
            ],
        ),
        "20s",
    );
    let sentence = one_sentence_at_once(code, took, &last, &err);
    assert!(
        sentence.starts_with(&format!(
            "Elasticsearch at {url} rejected the client certificate of --fleet-server-es-cert"
        )),
        "{sentence}"
    );
}

#[test]
fn an_encrypted_es_client_key_is_refused_as_configuration() {
    // There is no passphrase setting for the Elasticsearch client key (Elastic documents none):
    // the configuration is refused (exit 2) with a sentence that says so, rather than asking for
    // a passphrase file nobody can give.
    let pki = Pki::new();
    let (encrypted, _) = pki.encrypted_client_key("secret");
    let (code, _, _, err) = failed_startup(
        &[
            "--fleet-server-es",
            "https://127.0.0.1:9",
            "--fleet-server-service-token",
            "t",
            "--fleet-server-es-cert",
            path(&pki.client.cert_path),
            "--fleet-server-es-cert-key",
            path(&encrypted),
        ],
        "20s",
    );
    assert_eq!(code, Some(2), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("--fleet-server-es-cert-key"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains("is encrypted") && line.contains("no passphrase setting"),
        "{line}"
    );
}

#[test]
fn insecure_accepts_an_untrusted_self_signed_es_and_warns_loudly() {
    let self_signed =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let es = https_standin(TlsSettings {
        cert_pem: self_signed.cert.pem().into_bytes(),
        key_pem: self_signed.signing_key.serialize_pem().into_bytes(),
        client_ca_pem: None,
        client_auth: ClientAuth::Required,
    });
    let token = seed(&es);
    let (url, service) = (es.url(), es.service_token());
    let server = FleetEdge::start(&es_args(&url, &service, &["--fleet-server-es-insecure"]));
    let warning = server
        .log()
        .lines()
        .find(|l| l.contains("--fleet-server-es-insecure"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no warning: {}", server.log()));
    assert!(
        warning.contains("WARN") && warning.contains("DISABLED"),
        "{warning}"
    );
    an_agent_gets_its_policy(&server, &token);
    // The same stand-in without the flag is refused: the flag is what made it work.
    let (code, took, last, err) = failed_startup(&es_args(&url, &service, &[]), "20s");
    let sentence = one_sentence_at_once(code, took, &last, &err);
    assert!(
        sentence.contains(" is not signed by a public CA"),
        "{sentence}"
    );
}

#[test]
fn a_wrong_fingerprint_stops_with_a_sentence_naming_the_fingerprint() {
    let pki = Pki::new();
    let es = https_standin(chain_tls(&pki, false));
    let (url, service) = (es.url(), es.service_token());
    let other = Pki::new();
    let wrong = fingerprint(&other.ca_der);
    let (code, took, last, err) = failed_startup(
        &es_args(
            &url,
            &service,
            &["--fleet-server-es-ca-trusted-fingerprint", &wrong],
        ),
        "20s",
    );
    let sentence = one_sentence_at_once(code, took, &last, &err);
    assert!(
        sentence.contains(&url)
            && sentence.contains(&wrong)
            && sentence.contains("--fleet-server-es-ca-trusted-fingerprint")
            && sentence.contains(&fingerprint(&pki.ca_der)),
        "names the host, the wanted and the presented fingerprints: {sentence}"
    );
}

#[test]
fn a_wrong_ca_stops_with_a_sentence_naming_certificate_verification() {
    let pki = Pki::new();
    let es = https_standin(chain_tls(&pki, false));
    let (url, service) = (es.url(), es.service_token());
    let (code, took, last, err) = failed_startup(
        &es_args(
            &url,
            &service,
            &["--fleet-server-es-ca", path(&pki.other_ca_path)],
        ),
        "20s",
    );
    let sentence = one_sentence_at_once(code, took, &last, &err);
    assert!(
        sentence.contains(&url)
            && sentence.contains(" is not signed by a CA of --fleet-server-es-ca ")
            && sentence.contains("(certificate verification failed: "),
        "{sentence}"
    );
}

#[test]
fn https_without_a_ca_trusts_only_public_roots_and_says_so() {
    let pki = Pki::new();
    let es = https_standin(chain_tls(&pki, false));
    let (url, service) = (es.url(), es.service_token());
    let (code, took, last, err) = failed_startup(&es_args(&url, &service, &[]), "20s");
    let sentence = one_sentence_at_once(code, took, &last, &err);
    assert!(
        sentence.contains(&url)
            && sentence.contains(" is not signed by a public CA, and neither --fleet-server-es-ca nor --fleet-server-es-ca-trusted-fingerprint is set ")
            && sentence.contains("(certificate verification failed: "),
        "{sentence}"
    );
}

/// A loopback port nobody listens on (bound and released; the stand-in binds it later).
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// fleet-edge starts while nothing listens on Elasticsearch's port, retries (its log says so),
/// and once the stand-in comes up on that port it becomes ready and serves an agent.
fn down_at_startup_then_up(trust: impl Fn(&Pki) -> Vec<String>) {
    let pki = Pki::new();
    let addr = free_port();
    let url = format!("https://{addr}");
    // The stand-in's service token is chosen here, so fleet-edge can be given it before it runs.
    let service_tokens = vec![("token1".to_owned(), "es-tls-down-then-up".to_owned())];
    let service = es_standin::security::encode_service_token("token1", "es-tls-down-then-up");
    let trust = trust(&pki);
    let mut extra: Vec<&str> = trust.iter().map(String::as_str).collect();
    extra.extend(["--fleet-server-timeout", "120s"]);
    let mut server = FleetEdge::spawn(&es_args(&url, &service, &extra));
    assert!(
        server
            .wait_for_log("Elasticsearch is not ready", Duration::from_secs(30))
            .is_some(),
        "no retry while Elasticsearch is down: {}",
        server.log()
    );
    assert!(!server.log().contains("listening on"), "{}", server.log());
    let es = StandIn::start(Options {
        tls: Some(chain_tls(&pki, false)),
        listen: addr,
        service_tokens,
        refresh_interval: Some(Duration::from_millis(100)),
        ..Options::default()
    })
    .unwrap();
    assert_eq!(es.url(), url);
    let token = seed(&es);
    server.wait_ready(Duration::from_secs(60));
    assert!(
        server
            .log()
            .contains(&format!("connected to Elasticsearch 9.6.0 at {url}")),
        "{}",
        server.log()
    );
    an_agent_gets_its_policy(&server, &token);
}

#[test]
fn elasticsearch_down_at_startup_then_up_is_waited_for_with_a_ca_file() {
    down_at_startup_then_up(|pki| {
        vec!["--fleet-server-es-ca".into(), path(&pki.ca_path).to_owned()]
    });
}

#[test]
fn elasticsearch_down_at_startup_then_up_is_waited_for_with_a_fingerprint() {
    down_at_startup_then_up(|pki| {
        vec![
            "--fleet-server-es-ca-trusted-fingerprint".into(),
            fingerprint(&pki.ca_der),
        ]
    });
}
