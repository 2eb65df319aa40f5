//! Unit tests of `config` validation: every problem alone with its exact sentence, and several
//! reported together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn token_and_token_path_together_is_an_error() {
    let e = one_error(
        &[
            "--fleet-server-es=http://es:9200",
            "--fleet-server-service-token=abc",
        ],
        &[("FLEET_SERVER_SERVICE_TOKEN_PATH", "/run/secrets/token")],
    );
    assert_eq!(
        e,
        "--fleet-server-service-token and env FLEET_SERVER_SERVICE_TOKEN_PATH are both set; give only one of them."
    );
}

#[test]
fn certificate_and_key_must_come_together() {
    let f = files("pairs");
    let e = one_error(&["--fleet-server-cert", &f.cert], &[]);
    assert_eq!(e, "--fleet-server-cert: a certificate is set but --fleet-server-cert-key (its private key) is not; give both.");
    let e = one_error(&[], &[("FLEET_SERVER_CERT_KEY", &f.key)]);
    assert_eq!(e, "env FLEET_SERVER_CERT_KEY: a private key is set but --fleet-server-cert (its certificate) is not; give both.");
    let e = one_error(&["--fleet-server-cert-key-passphrase", &f.pass], &[]);
    assert!(e.starts_with("--fleet-server-cert-key-passphrase: a passphrase file is set but there is no --fleet-server-cert-key"), "{e}");
    let e = one_error(
        &[
            "--fleet-server-es=http://es:9200",
            "--fleet-server-es-cert",
            &f.cert,
        ],
        &[],
    );
    assert!(
        e.starts_with(
            "--fleet-server-es-cert: a certificate is set but --fleet-server-es-cert-key"
        ),
        "{e}"
    );
    let e = one_error(
        &[
            "--fleet-server-es=http://es:9200",
            "--fleet-server-es-cert-key",
            &f.key,
        ],
        &[],
    );
    assert!(
        e.starts_with(
            "--fleet-server-es-cert-key: a private key is set but --fleet-server-es-cert"
        ),
        "{e}"
    );
}

#[test]
fn client_auth_must_be_a_known_mode_with_cas() {
    let e = one_error(&["--fleet-server-client-auth=sometimes"], &[]);
    assert_eq!(e, "--fleet-server-client-auth: \"sometimes\" is not a client authentication mode (expected none, optional or required).");
    for mode in ["optional", "required"] {
        let e = one_error(&[], &[("FLEET_SERVER_CLIENT_AUTH", mode)]);
        assert!(
            e.starts_with(&format!(
                "env FLEET_SERVER_CLIENT_AUTH: \"{mode}\" needs the CA certificates"
            )),
            "{e}"
        );
        assert!(e.contains("--certificate-authorities"), "{e}");
    }
}

#[test]
fn unreadable_files_name_the_setting_and_the_path() {
    let f = files("unreadable");
    let missing = f.dir.path().join("missing.pem");
    let m = missing.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--fleet-server-cert", m, "--fleet-server-cert-key", &f.key],
            "--fleet-server-cert: cannot read certificate file",
        ),
        (
            vec!["--fleet-server-cert", &f.cert, "--fleet-server-cert-key", m],
            "--fleet-server-cert-key: cannot read private key file",
        ),
        (
            vec![
                "--fleet-server-cert",
                &f.cert,
                "--fleet-server-cert-key",
                &f.enc_key,
                "--fleet-server-cert-key-passphrase",
                m,
            ],
            "--fleet-server-cert-key-passphrase: cannot read passphrase file",
        ),
        (
            vec!["--certificate-authorities", m],
            "--certificate-authorities: cannot read certificate authority file",
        ),
        (
            vec![
                "--fleet-server-es=http://es:9200",
                "--fleet-server-es-ca",
                m,
            ],
            "--fleet-server-es-ca: cannot read certificate authority file",
        ),
        (
            vec![
                "--fleet-server-es=http://es:9200",
                "--fleet-server-service-token-path",
                m,
            ],
            "--fleet-server-service-token-path: cannot read the service token file",
        ),
    ];
    for (args, start) in cases {
        let e = one_error(&args, &[]);
        assert!(e.starts_with(start), "{args:?}: {e}");
        assert!(e.contains(m), "{e}");
        assert!(e.ends_with('.'), "{e}");
    }
}

#[test]
fn unparsable_files_are_reported() {
    let f = files("unparsable");
    let junk = f.dir.write("junk.pem", "this is not PEM");
    let j = junk.to_str().unwrap();
    let e = one_error(
        &["--fleet-server-cert", j, "--fleet-server-cert-key", &f.key],
        &[],
    );
    assert!(
        e.starts_with("--fleet-server-cert: certificate file") && e.contains("no PEM CERTIFICATE"),
        "{e}"
    );
    let e = one_error(
        &["--fleet-server-cert", &f.cert, "--fleet-server-cert-key", j],
        &[],
    );
    assert!(
        e.starts_with("--fleet-server-cert-key: private key file")
            && e.contains("contains no PEM private key"),
        "{e}"
    );
    let e = one_error(
        &["--certificate-authorities", &format!("{},{j}", f.ca)],
        &[],
    );
    assert!(e.contains(j), "{e}");
    // A key that does not match, and an encrypted key without its passphrase.
    let other = make_leaf(&make_ca("other"), &["x"]);
    let other_key = f.dir.write("other.key", &other.key_pem);
    let e = one_error(
        &[
            "--fleet-server-cert",
            &f.cert,
            "--fleet-server-cert-key",
            other_key.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        e.starts_with("--fleet-server-cert-key: private key file")
            && e.contains("does not match the certificate"),
        "{e}"
    );
    let e = one_error(
        &[
            "--fleet-server-cert",
            &f.cert,
            "--fleet-server-cert-key",
            &f.enc_key,
        ],
        &[],
    );
    assert!(e.contains("is encrypted but no passphrase file was given (set --fleet-server-cert-key-passphrase)"), "{e}");
}

#[test]
fn an_encrypted_es_client_key_says_there_is_no_passphrase_setting_for_it() {
    let f = files("es-enc");
    let e = one_error(
        &[
            "--fleet-server-es=https://es:9200",
            "--fleet-server-es-cert",
            &f.cert,
            "--fleet-server-es-cert-key",
            &f.enc_key,
        ],
        &[],
    );
    assert_eq!(
        e,
        format!(
            "--fleet-server-es-cert-key: private key file \"{}\" is encrypted, and there is no passphrase setting for this key; give it unencrypted (openssl pkcs8 -in ENCRYPTED -out PLAIN).",
            f.enc_key
        )
    );
    assert!(!e.contains("passphrase file"), "{e}");
}

#[test]
fn wrong_passphrase_is_blamed_on_the_passphrase_setting() {
    let f = files("wrongpass");
    let bad = f.dir.write("bad-pass", "nope\n");
    let e = one_error(
        &[
            "--fleet-server-cert",
            &f.cert,
            "--fleet-server-cert-key",
            &f.enc_key,
        ],
        &[("FLEET_SERVER_CERT_KEY_PASSPHRASE", bad.to_str().unwrap())],
    );
    assert!(
        e.starts_with("env FLEET_SERVER_CERT_KEY_PASSPHRASE: the passphrase in"),
        "{e}"
    );
    assert!(e.contains("ends with a newline"), "{e}");
}

#[test]
fn bad_scalar_values_are_reported() {
    let cases: Vec<Case> = vec![
        (
            vec!["--fleet-server-port=http"],
            vec![],
            "--fleet-server-port: \"http\" is not a port number (0 to 65535).",
        ),
        (
            vec![],
            vec![("FLEET_SERVER_PORT", "70000")],
            "env FLEET_SERVER_PORT: \"70000\" is not a port number (0 to 65535).",
        ),
        (
            vec![
                "--fleet-server-es=http://es:9200",
                "--fleet-server-es-ca-trusted-fingerprint=abc",
            ],
            vec![],
            "--fleet-server-es-ca-trusted-fingerprint: \"abc\" is not a SHA-256 fingerprint",
        ),
        (
            vec!["--fleet-server-timeout=5"],
            vec![],
            "--fleet-server-timeout: \"5\" is not a duration",
        ),
        (
            vec!["--header-timeout=-1s"],
            vec![],
            "--header-timeout: must not be negative.",
        ),
        (
            vec!["--idle-timeout=0"],
            vec![],
            "--idle-timeout: must be longer than zero.",
        ),
        (
            vec![],
            vec![("FLEET_EDGE_CHECKIN_LONG_POLL", "soon")],
            "env FLEET_EDGE_CHECKIN_LONG_POLL: \"soon\" is not a duration",
        ),
        (
            vec!["--checkin-long-poll=2h"],
            vec![],
            "--checkin-long-poll: 7200s is longer than --checkin-max-poll (3600s).",
        ),
        (
            vec!["--checkin-long-poll=20s"],
            vec![],
            "--checkin-jitter: 30s must be shorter than --checkin-long-poll (20s).",
        ),
        (
            vec!["--log-level=loud"],
            vec![],
            "--log-level: \"loud\" is not a log level (use trace, debug, info, warn or error).",
        ),
        (
            vec![],
            vec![("FLEET_EDGE_LOG_FORMAT", "xml")],
            "env FLEET_EDGE_LOG_FORMAT: \"xml\" is not a log format (use text or json).",
        ),
        (
            vec![],
            vec![("FLEET_URL", "fleet.example:8220")],
            "env FLEET_URL: \"fleet.example:8220\" is not a URL",
        ),
        (
            vec![],
            vec![("FLEET_URL", "ftp://fleet.example")],
            "env FLEET_URL: \"ftp://fleet.example\" has scheme \"ftp\"",
        ),
        (
            vec!["--fleet-server-es=http://es:9200,https://bad host"],
            vec![],
            "--fleet-server-es: \"https://bad host\" does not have a valid host",
        ),
        (
            vec!["--max-connections=0"],
            vec![],
            "--max-connections: \"0\" is not a whole number from 1 to 1000000.",
        ),
        (
            vec!["--backend-workers=0"],
            vec![],
            "--backend-workers: \"0\" is not a whole number from 1 to 64.",
        ),
        (
            vec!["--max-header-bytes=100"],
            vec![],
            "--max-header-bytes: \"100\" is not a whole number from 1024 to 1048576.",
        ),
        (
            vec!["--fleet-server-host=not a host"],
            vec![],
            "--fleet-server-host: \"not a host\" is not an IP address or host name",
        ),
        (
            vec!["--fleet-server-es=http://es:9200", "--header=novalue"],
            vec![],
            "--header: \"novalue\" is not a header (expected NAME=VALUE).",
        ),
        (
            vec![],
            vec![("FLEET_SERVER_ENABLE", "maybe")],
            "env FLEET_SERVER_ENABLE: \"maybe\" is not a boolean",
        ),
    ];
    for (args, env, start) in cases {
        let e = one_error(&args, &env);
        assert!(
            e.starts_with(start),
            "{args:?} {env:?}:\n  got  {e}\n  want {start}"
        );
    }
}

#[test]
fn insecure_http_with_a_certificate_is_an_error() {
    let f = files("insecure-cert");
    let e = one_error(
        &[
            "--fleet-server-insecure-http",
            "--fleet-server-cert",
            &f.cert,
            "--fleet-server-cert-key",
            &f.key,
        ],
        &[],
    );
    assert_eq!(e, format!("--fleet-server-insecure-http turns TLS off but a certificate is also given (--fleet-server-cert); remove one of them."));
    let e = one_error(
        &[
            "--fleet-server-insecure-http",
            "--fleet-server-client-auth=required",
            "--certificate-authorities",
            &f.ca,
        ],
        &[],
    );
    assert!(
        e.contains("needs TLS, but --fleet-server-insecure-http turns TLS off"),
        "{e}"
    );
}

#[test]
fn unknown_flags_stray_arguments_missing_values_and_repeats_are_errors() {
    assert_eq!(
        one_error(&["--fleet-server-bogus"], &[]),
        "--fleet-server-bogus is not a fleet-edge flag; did you mean --fleet-server-es?"
    );
    assert_eq!(
        one_error(&["serve"], &[]),
        "unexpected argument \"serve\": fleet-edge takes only flags (see --help)."
    );
    assert_eq!(
        one_error(&["--fleet-server-port"], &[]),
        "--fleet-server-port needs a value (--fleet-server-port VALUE or --fleet-server-port=VALUE)."
    );
    assert_eq!(
        one_error(&["--fleet-server-port=1", "--fleet-server-port=2"], &[]),
        "--fleet-server-port was given 2 times; give it once."
    );
    let e = errors(&["--fleet-server-policy", "--fleet-server-port", "1"], &[]);
    assert!(e.iter().any(|m| m == "--fleet-server-policy needs a value, but was followed by the flag --fleet-server-port."), "{e:?}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = errors(
        &[
            "--fleet-server-port=99999",
            "--fleet-server-client-auth=required",
            "--fleet-server-cert=/nonexistent/cert.pem",
            "--log-level=chatty",
            "--fleet-server-es=http://es:9200",
            "--fleet-server-es-ca-trusted-fingerprint=zz",
            "--unknown",
        ],
        &[
            ("FLEET_SERVER_SERVICE_TOKEN", "t"),
            ("FLEET_SERVER_SERVICE_TOKEN_PATH", "/t"),
            ("FLEET_URL", "nope"),
            ("FLEET_EDGE_IDLE_TIMEOUT", "forever"),
        ],
    );
    let expect = [
        "--unknown is not a fleet-edge flag",
        "--fleet-server-port:",
        "--fleet-server-client-auth: \"required\" needs the CA certificates",
        "--fleet-server-cert: a certificate is set but",
        "--log-level:",
        "--fleet-server-es-ca-trusted-fingerprint:",
        "are both set",
        "env FLEET_URL:",
        "env FLEET_EDGE_IDLE_TIMEOUT:",
    ];
    for start in expect {
        assert!(
            e.iter().any(|m| m.contains(start)),
            "missing {start:?} in {e:#?}"
        );
    }
    assert_eq!(e.len(), expect.len(), "{e:#?}");
    let shown = ConfigErrors(e.clone()).to_string();
    assert_eq!(shown.lines().count(), e.len());
}

#[test]
fn default_output_settings_are_checked_together() {
    let c = config(
        &["--default-output-hosts", "https://es:9200/"],
        &[("FLEET_EDGE_DEFAULT_OUTPUT_API_KEY", " kid:ksecret ")],
    );
    let out = c.default_output.expect("an output");
    assert_eq!(out.kind, OutputType::Elasticsearch);
    assert_eq!(out.hosts, vec!["https://es:9200"]);
    assert_eq!(
        out.api_key.as_ref().map(Secret::expose),
        Some("kid:ksecret")
    );
    assert!(
        config(&[], &[]).default_output.is_none(),
        "none given: not configured"
    );
    let e = one_error(&["--default-output-type", "logstash"], &[]);
    assert!(e.contains("needs --default-output-hosts"), "{e}");
    let e = one_error(
        &[
            "--default-output-type",
            "logstash",
            "--default-output-hosts",
            "ls:5044",
            "--default-output-api-key",
            "a:b",
        ],
        &[],
    );
    assert!(
        e.starts_with("--default-output-api-key: applies to elasticsearch outputs only"),
        "{e}"
    );
    let e = one_error(
        &[
            "--default-output-hosts",
            "es:9200",
            "--default-output-api-key",
            "a:b",
        ],
        &[],
    );
    assert!(
        e.contains("is not a URL"),
        "an elasticsearch host is a URL: {e}"
    );
    for bad in ["nocolon-zq", ":keyzq", "idzq:", "idzq:k:ey", "idzq :key"] {
        let e = one_error(
            &[
                "--default-output-hosts",
                "https://es:9200",
                "--default-output-api-key",
                bad,
            ],
            &[],
        );
        assert!(e.contains("form id:key") && !e.contains(bad), "{bad}: {e}");
    }
    let e = one_error(
        &[
            "--fleet-server-es",
            "http://es:9200",
            "--default-output-type",
            "logstash",
        ],
        &[],
    );
    assert!(e.contains("embedded mode"), "{e}");
}

#[test]
fn elasticsearch_only_settings_in_embedded_mode_are_errors() {
    let sentence =
        " applies only with --fleet-server-es; set FLEET_SERVER_ELASTICSEARCH_HOST or remove it.";
    let cases: Vec<Case> = vec![
        (
            vec!["--fleet-server-es-ca=/ca.pem"],
            vec![],
            "--fleet-server-es-ca",
        ),
        (
            vec![],
            vec![("FLEET_SERVER_ELASTICSEARCH_CA_TRUSTED_FINGERPRINT", "zz")],
            "env FLEET_SERVER_ELASTICSEARCH_CA_TRUSTED_FINGERPRINT",
        ),
        (
            vec!["--fleet-server-es-cert=/c.pem"],
            vec![],
            "--fleet-server-es-cert",
        ),
        (
            vec![],
            vec![("FLEET_SERVER_ES_CERT_KEY", "/k.pem")],
            "env FLEET_SERVER_ES_CERT_KEY",
        ),
        (
            vec!["--fleet-server-es-insecure"],
            vec![],
            "--fleet-server-es-insecure",
        ),
        (
            vec![],
            vec![("FLEET_SERVER_SERVICE_TOKEN", "t")],
            "env FLEET_SERVER_SERVICE_TOKEN",
        ),
        (
            vec!["--fleet-server-service-token-path=/t"],
            vec![],
            "--fleet-server-service-token-path",
        ),
        (vec!["--header=X-A=b"], vec![], "--header"),
        (
            vec![],
            vec![("FLEET_SERVER_POLICY_ID", "p")],
            "env FLEET_SERVER_POLICY_ID",
        ),
    ];
    for (args, env, who) in cases {
        // The misspelled host variable is the case this catches.
        let mut env = env;
        env.push(("FLEET_SERVER_ELASTICSEARCH_HOTS", "http://es:9200"));
        assert_eq!(
            one_error(&args, &env),
            format!("{who}{sentence}"),
            "{args:?} {env:?}"
        );
    }
    // A boolean explicitly false configures nothing.
    let c = config(&[], &[("FLEET_SERVER_ELASTICSEARCH_INSECURE", "false")]);
    assert!(c.es.is_none() && c.warnings.is_empty());
    // With Elasticsearch they are accepted.
    let c = config(
        &[
            "--fleet-server-es=http://es:9200",
            "--fleet-server-policy=p",
        ],
        &[("FLEET_SERVER_SERVICE_TOKEN", "t")],
    );
    assert!(c.es.is_some() && c.warnings.is_empty());
}

#[test]
fn container_variables_the_elastic_agent_also_reads_only_warn_in_embedded_mode() {
    let c = config(
        &[],
        &[("ELASTICSEARCH_CA", "/ca.pem"), ("FLEET_HEADERS", "X-A=b")],
    );
    assert!(c.es.is_none());
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    for (w, who) in c
        .warnings
        .iter()
        .zip(["env ELASTICSEARCH_CA", "env FLEET_HEADERS"])
    {
        assert!(
            w.starts_with(&format!(
                "{who} is ignored: it applies only with --fleet-server-es"
            )),
            "{w}"
        );
    }
}

#[test]
fn unknown_flags_get_the_closest_flag() {
    assert_eq!(
        one_error(&["--fleet-server-prot=8220"], &[]),
        "--fleet-server-prot is not a fleet-edge flag; did you mean --fleet-server-port?"
    );
    assert_eq!(
        one_error(&["--print-confg"], &[]),
        "--print-confg is not a fleet-edge flag; did you mean --print-config?"
    );
    assert_eq!(
        one_error(&["--zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"], &[]),
        "--zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz is not a fleet-edge flag (see --help for the list)."
    );
}
