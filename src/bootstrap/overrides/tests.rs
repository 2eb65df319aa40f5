//! Reading a Fleet Server policy's overrides and laying them over the bootstrap configuration.

use serde_json::json;

use super::*;
use crate::config::{self, Command};
use crate::tls::test_support::{make_ca, make_leaf, TempDir};

fn bootstrap(extra: &[&str]) -> Config {
    let mut args: Vec<std::ffi::OsString> = vec![
        "--fleet-server-es".into(),
        "http://127.0.0.1:9200".into(),
        "--fleet-server-service-token".into(),
        "token".into(),
        "--fleet-server-port".into(),
        "8220".into(),
    ];
    args.extend(extra.iter().map(|a| a.into()));
    match config::parse(args, &|_| None) {
        Ok(Command::Run(c)) => *c,
        other => panic!("bootstrap config: {other:?}"),
    }
}

fn policy(revision: i64, input: Value, outputs: Value) -> PolicyDoc {
    PolicyDoc {
        policy_id: "fleet-server-policy".into(),
        revision_idx: revision,
        data: json!({"id": "fleet-server-policy", "revision": revision,
                     "outputs": outputs,
                     "inputs": [{"type": "system/metrics", "id": "sys"}, input]}),
        ..PolicyDoc::default()
    }
}

#[test]
fn the_pgp_settings_of_the_policy_are_applied() {
    let doc = policy(
        2,
        json!({"type": "fleet-server",
               "server": {"pgp": {"dir": "/srv/pgp", "upstream_url": "https://mirror.example/GPG-KEY"}}}),
        json!({"default": {"type": "elasticsearch", "hosts": ["http://127.0.0.1:9200"]}}),
    );
    let o = read(&doc).unwrap();
    assert_eq!(o.values.pgp_dir.as_deref(), Some("/srv/pgp"));
    let scratch = TempDir::new("pgp-overrides");
    let applied = apply(&bootstrap(&[]), &o.values, scratch.path());
    assert_eq!(applied.config.files.pgp_dir, PathBuf::from("/srv/pgp"));
    assert_eq!(
        applied.config.files.pgp_upstream_url,
        "https://mirror.example/GPG-KEY"
    );
    let text = applied.changes.join("\n");
    assert!(
        text.contains("server.pgp.dir: fleet-edge-data/pgp -> /srv/pgp"),
        "{text}"
    );
    assert!(text.contains("server.pgp.upstream_url: https://artifacts.elastic.co/GPG-KEY-elastic-agent -> https://mirror.example/GPG-KEY"), "{text}");
}

#[test]
fn keys_are_found_nested_dotted_or_mixed() {
    let v = json!({"server.timeouts": {"idle": "1s"}, "server": {"port": 1}, "server.host": "h"});
    assert_eq!(lookup(&v, "server.timeouts.idle"), Some(&json!("1s")));
    assert_eq!(lookup(&v, "server.port"), Some(&json!(1)));
    assert_eq!(lookup(&v, "server.host"), Some(&json!("h")));
    assert_eq!(lookup(&v, "server.ssl"), None);
    assert_eq!(lookup(&json!("x"), "a"), None);
}

#[test]
fn a_policy_without_a_fleet_server_input_has_no_say() {
    let doc = PolicyDoc {
        data: json!({"inputs": [{"type": "logfile"}]}),
        ..PolicyDoc::default()
    };
    assert_eq!(read(&doc), None);
}

#[test]
fn the_fleet_server_input_and_its_output_set_host_port_timeouts_and_es_hosts() {
    let doc = policy(
        3,
        json!({"type": "fleet-server", "use_output": "fs-out",
               "server.port": 8230,
               "server": {"host": "127.0.0.1", "timeouts": {"checkin_long_poll": "2m"}},
               "server.timeouts.checkin_jitter": "0s",
               "server.limits.max_agents": 500}),
        json!({"default": {"type": "elasticsearch", "hosts": ["http://other:9200"]},
               "fs-out": {"type": "elasticsearch", "hosts": ["https://es-a:9201", "es-b"]}}),
    );
    let o = read(&doc).unwrap();
    assert_eq!(o.values.port, Some(8230));
    assert_eq!(o.values.host.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        o.values.timeouts,
        vec![
            ("checkin_long_poll", Duration::from_secs(120)),
            ("checkin_jitter", Duration::ZERO)
        ]
    );
    assert_eq!(o.values.max_agents, Some(500));
    assert_eq!(
        o.values.es.as_ref().unwrap().hosts,
        vec!["https://es-a:9201", "http://es-b:9200"]
    );
    assert!(o.ignored.is_empty() && o.invalid.is_empty(), "{o:?}");

    let scratch = TempDir::new("overrides");
    let applied = apply(&bootstrap(&[]), &o.values, scratch.path());
    let c = &applied.config;
    assert_eq!(c.server.port, 8230);
    assert_eq!(c.server.host, "127.0.0.1");
    assert_eq!(
        c.server.timeouts.checkin_long_poll,
        Duration::from_secs(120)
    );
    assert_eq!(c.server.timeouts.checkin_jitter, Duration::ZERO);
    assert_eq!(c.server.max_agents, 500);
    assert_eq!(
        c.es.as_ref().unwrap().hosts,
        vec!["https://es-a:9201", "http://es-b:9200"]
    );
    // Service token and the rest of the bootstrap stay.
    assert_eq!(
        c.es.as_ref().unwrap().service_token,
        bootstrap(&[]).es.unwrap().service_token
    );
    assert!(applied.problems.is_empty(), "{:?}", applied.problems);
    let text = applied.changes.join("\n");
    assert!(text.contains("server.port: 8220 -> 8230"), "{text}");
    assert!(text.contains("output.elasticsearch.hosts: http://127.0.0.1:9200 -> https://es-a:9201,http://es-b:9200"), "{text}");
}

#[test]
fn must_be_cli_settings_in_a_policy_are_reported_and_not_used() {
    let doc = policy(
        1,
        json!({"type": "fleet-server", "policy.id": "another", "server": {"ssl": {"enabled": false}}}),
        json!({"default": {"type": "elasticsearch", "hosts": ["http://127.0.0.1:9200"],
                           "service_token": "AAEAA-stolen",
                           "ssl.ca_trusted_fingerprint": "ab12",
                           "ssl": {"verification_mode": "none"}}}),
    );
    let o = read(&doc).unwrap();
    let text = o.ignored.join("\n");
    for needle in [
        "policy.id is not used",
        "--fleet-server-policy",
        "service_token is not used",
        "ssl.ca_trusted_fingerprint is not used",
        "--fleet-server-es-insecure",
        "--fleet-server-insecure-http",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert!(
        !text.contains("AAEAA-stolen"),
        "a secret reached the log: {text}"
    );
    assert_eq!(o.values.ssl, None);
    let scratch = TempDir::new("overrides");
    let applied = apply(&bootstrap(&[]), &o.values, scratch.path());
    let es = applied.config.es.unwrap();
    assert_eq!(es.service_token, bootstrap(&[]).es.unwrap().service_token);
    assert!(es.ca_trusted_fingerprint.is_none());
    assert!(!es.insecure);
}

#[test]
fn unreadable_values_are_reported_and_the_bootstrap_value_stays() {
    let doc = policy(
        1,
        json!({"type": "fleet-server", "server.port": 70000, "server.timeouts.idle": "soon",
               "ssl": {"client_authentication": "sometimes"}}),
        json!({"default": {"type": "logstash", "hosts": ["ls:5044"]}}),
    );
    let o = read(&doc).unwrap();
    assert_eq!(o.values, Values::default());
    let text = o.invalid.join("\n");
    for needle in [
        "server.port is not a port",
        "server.timeouts.idle is not a duration",
        "\"sometimes\"",
        "\"logstash\"",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

#[test]
fn revisions_that_change_nothing_we_use_compare_equal() {
    let input = json!({"type": "fleet-server", "server.port": 8230});
    let a = read(&policy(1, input.clone(), json!({}))).unwrap();
    let mut other = input;
    other["meta"] = json!({"package": {"version": "1.6.0"}});
    let b = read(&policy(2, other, json!({}))).unwrap();
    assert_ne!(a, b);
    assert_eq!(a.values, b.values);
}

#[test]
fn inline_pem_tls_from_the_policy_is_loaded_and_client_auth_defaults_to_required() {
    let ca = make_ca("policy ca");
    let leaf = make_leaf(&ca, &["localhost"]);
    let scratch = TempDir::new("overrides");
    let doc = policy(
        1,
        json!({"type": "fleet-server",
               "ssl": {"certificate": leaf.cert_pem, "key": leaf.key_pem,
                       "certificate_authorities": [ca.cert_pem]}}),
        json!({"default": {"type": "elasticsearch", "hosts": ["http://127.0.0.1:9200"],
                           "ssl.certificate_authorities": [ca.cert_pem]}}),
    );
    let o = read(&doc).unwrap();
    let applied = apply(&bootstrap(&[]), &o.values, scratch.path());
    assert!(applied.problems.is_empty(), "{:?}", applied.problems);
    let c = &applied.config;
    match &c.server.tls {
        ServerTls::Provided(m) => assert_eq!(m.chain[0], leaf.cert_der),
        other => panic!("listener TLS not from the policy: {other:?}"),
    }
    assert_eq!(c.server.client_cas, vec![ca.cert_der.clone()]);
    assert_eq!(c.server.client_auth, ClientAuth::Required);
    assert_eq!(c.es.as_ref().unwrap().ca_certs, vec![ca.cert_der.clone()]);
    #[cfg(unix)]
    for entry in std::fs::read_dir(scratch.path()).unwrap() {
        use std::os::unix::fs::PermissionsExt;
        let mode = entry.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "inline PEMs must be private");
    }
}

#[test]
fn a_missing_certificate_file_is_a_problem_and_the_listener_keeps_its_own() {
    let scratch = TempDir::new("overrides");
    let doc = policy(
        1,
        json!({"type": "fleet-server",
               "server.ssl": {"certificate": "/nonexistent/cert.pem", "key": "/nonexistent/key.pem"}}),
        json!({}),
    );
    let o = read(&doc).unwrap();
    let applied = apply(&bootstrap(&[]), &o.values, scratch.path());
    assert!(matches!(
        applied.config.server.tls,
        ServerTls::SelfSigned { .. }
    ));
    assert!(
        applied.problems[0].contains("/nonexistent/cert.pem"),
        "{:?}",
        applied.problems
    );
}
