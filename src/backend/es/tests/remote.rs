//! The remote-cluster client of `remote_elasticsearch` outputs (`es/remote.rs`) against a
//! stand-in as the remote cluster: the key calls with the output's service token, the headers
//! of remote requests, and its TLS settings (inline PEM CA, CA file, trusted fingerprint,
//! `verification_mode: none`, none of them against a private CA).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use es_standin::{ClientAuth, Options, StandIn, TlsSettings};
use serde_json::{json, Value};

use crate::backend::es::remote::HttpConnect;
use crate::backend::remote::{ConnectError, KeyCluster};
use crate::backend::{ApiKey, NewApiKey, StoreError};
use crate::tls::test_support::{make_ca, make_leaf, TempDir, TestCert};
use crate::transform::remote::RemoteEs;

fn output(hosts: &[String], token: &str, ssl: Value) -> RemoteEs {
    RemoteEs::from_output(&json!({"type": "remote_elasticsearch", "hosts": hosts,
                                  "service_token": token, "ssl": ssl}))
}

fn new_key() -> NewApiKey {
    NewApiKey {
        name: "agent-1:remote".into(),
        role_descriptors: json!({"r": {"cluster": ["monitor"]}}),
        metadata: json!({"agent_id": "agent-1", "managed": true, "managed_by": "fleet-server",
                         "output_name": "remote", "type": "output"}),
    }
}

/// The status of `_authenticate` with `key` on `es`.
fn authenticates(es: &StandIn, key: &ApiKey) -> u16 {
    es.client()
        .request(
            "GET",
            "/_security/_authenticate",
            &[("Authorization", &format!("ApiKey {}", key.encoded()))],
            None,
        )
        .unwrap()
        .status
}

#[test]
fn keys_live_on_the_remote_cluster() {
    let remote = StandIn::start(Options::default()).unwrap();
    let main = StandIn::start(Options::default()).unwrap();
    let cluster = HttpConnect::default()
        .client(&output(
            &[remote.url()],
            &remote.service_token(),
            Value::Null,
        ))
        .unwrap();
    let key = cluster.create_api_key(&new_key()).unwrap();
    assert_eq!(authenticates(&remote, &key), 200);
    assert_eq!(authenticates(&main, &key), 401, "not on another cluster");
    let roles = cluster.api_key_roles(&key.id).unwrap().unwrap();
    assert_eq!(roles["r"]["cluster"], json!(["monitor"]));
    cluster
        .update_api_key_roles(&key.id, &json!({"r2": {"cluster": []}}))
        .unwrap();
    assert!(cluster.api_key_roles(&key.id).unwrap().unwrap()["r2"].is_object());
    cluster
        .invalidate_api_keys(std::slice::from_ref(&key.id))
        .unwrap();
    assert_eq!(authenticates(&remote, &key), 401);
}

#[test]
fn a_wrong_token_or_no_cluster_is_an_error_not_a_panic() {
    let remote = StandIn::start(Options::default()).unwrap();
    let cluster = HttpConnect::default()
        .client(&output(
            &[remote.url()],
            "AAEAAWVsYXN0aWMvbm9wZQ",
            Value::Null,
        ))
        .unwrap();
    assert!(matches!(
        cluster.create_api_key(&new_key()),
        Err(StoreError::Failed { status: 401, .. })
    ));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let cluster = HttpConnect::default()
        .client(&output(&[closed], "t", Value::Null))
        .unwrap();
    assert!(matches!(
        cluster.create_api_key(&new_key()),
        Err(StoreError::Unavailable(_))
    ));
    // Policy content that cannot go into a header: an error, never a panic.
    let cluster = HttpConnect::default()
        .client(&output(&[remote.url()], "bad\r\ntoken", Value::Null))
        .unwrap();
    assert!(cluster.create_api_key(&new_key()).is_err());
    for bad in [
        output(&["ftp://x".into()], "t", Value::Null),
        output(
            &[remote.url()],
            "t",
            json!({"certificate_authorities": ["-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"]}),
        ),
        output(
            &["https://localhost:1".into()],
            "t",
            json!({"ca_trusted_fingerprint": "xyz"}),
        ),
        output(&[], "t", Value::Null),
    ] {
        assert!(
            matches!(
                HttpConnect::default().client(&bad),
                Err(ConnectError::Settings(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        HttpConnect::default().client(&output(
            &[remote.url()],
            "t",
            json!({"certificate_authorities": ["/nonexistent/ca.pem"]})
        )),
        Err(ConnectError::Unavailable(_))
    ));
}

#[test]
fn remote_requests_carry_the_token_and_the_remote_user_agent() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(sock.try_clone().unwrap());
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push(line.trim_end().to_owned());
        }
        let body = r#"{"id":"kid","name":"agent-1:remote","api_key":"secret","encoded":"x"}"#;
        let mut sock = sock;
        write!(
            sock,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-elastic-product: Elasticsearch\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        head
    });
    let cluster = HttpConnect::default()
        .client(&output(&[url], "remote-token", Value::Null))
        .unwrap();
    let key = cluster.create_api_key(&new_key()).unwrap();
    assert_eq!((key.id.as_str(), key.secret.as_str()), ("kid", "secret"));
    let head = server.join().unwrap();
    let has = |h: &str| head.iter().any(|l| l.to_ascii_lowercase().starts_with(h));
    assert!(
        head[0].starts_with("PUT /_security/api_key?refresh=false "),
        "{head:?}"
    );
    assert!(has("authorization: bearer remote-token"), "{head:?}");
    assert!(has("user-agent: elastic-remote-fleet-server/"), "{head:?}");
    assert!(has("x-elastic-product-origin: fleet"), "{head:?}");
}

/// A stand-in over HTTPS presenting leaf + CA.
fn https() -> (TestCert, StandIn) {
    let ca = make_ca("remote test CA");
    let leaf = make_leaf(&ca, &["localhost", "127.0.0.1"]);
    let es = StandIn::start(Options {
        tls: Some(TlsSettings {
            cert_pem: format!("{}{}", leaf.cert_pem, ca.cert_pem).into_bytes(),
            key_pem: leaf.key_pem.clone().into_bytes(),
            client_ca_pem: None,
            client_auth: ClientAuth::Required,
        }),
        ..Options::default()
    })
    .unwrap();
    (ca, es)
}

#[test]
fn tls_settings_of_the_output_decide_trust() {
    let (ca, es) = https();
    let dir = TempDir::new("remote-ca");
    let ca_file = dir.write("ca.pem", &ca.cert_pem);
    let fingerprint = crate::tls::sha256_fingerprint_hex(&ca.cert_der);
    let works = |ssl: Value| {
        let cluster = HttpConnect::default()
            .client(&output(&[es.url()], &es.service_token(), ssl.clone()))
            .unwrap_or_else(|e| panic!("{ssl}: {e}"));
        let key = cluster
            .create_api_key(&new_key())
            .unwrap_or_else(|e| panic!("{ssl}: {e}"));
        assert_eq!(authenticates(&es, &key), 200, "{ssl}");
    };
    works(json!({"certificate_authorities": [ca.cert_pem]}));
    works(json!({"certificate_authorities": [ca_file.to_str().unwrap()]}));
    works(json!({"ca_trusted_fingerprint": fingerprint.to_uppercase()}));
    works(json!({"verification_mode": "none"}));

    // Public roots only: the private CA is not trusted.
    let cluster = HttpConnect::default()
        .client(&output(&[es.url()], &es.service_token(), Value::Null))
        .unwrap();
    let err = cluster.create_api_key(&new_key()).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    // Another CA's fingerprint: not presented.
    let other = make_ca("other CA");
    let fp = crate::tls::sha256_fingerprint_hex(&other.cert_der);
    match HttpConnect::default().client(&output(
        &[es.url()],
        &es.service_token(),
        json!({"ca_trusted_fingerprint": fp}),
    )) {
        Err(ConnectError::Unavailable(reason)) => {
            assert!(reason.contains("no certificate presented"), "{reason}")
        }
        other => panic!("{:?}", other.map(|c| c.hosts().to_vec())),
    }
}
