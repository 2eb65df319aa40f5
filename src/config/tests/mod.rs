//! Unit tests of `config`: precedence and origins, environment fallbacks, help against the seeds'
//! tables, print-config redaction, and the shared helpers. Validation errors are in
//! `validation.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::time::Duration;

use super::*;
use crate::tls::test_support::*;

fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Command, ConfigErrors> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    parse(args, &|name| env.get(name).cloned())
}

fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
    match run(args, env) {
        Ok(Command::Run(c)) => *c,
        Ok(other) => panic!("expected Run, got {other:?}"),
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

fn errors(args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    match run(args, env) {
        Err(ConfigErrors(e)) => e,
        Ok(c) => panic!("expected errors, got {c:?}"),
    }
}

fn one_error(args: &[&str], env: &[(&str, &str)]) -> String {
    let e = errors(args, env);
    assert_eq!(e.len(), 1, "expected exactly one problem, got {e:#?}");
    e.into_iter().next().unwrap()
}

/// A directory with a CA, a server certificate and key signed by it, an encrypted copy of the
/// key and its passphrase file.
struct Files {
    dir: TempDir,
    ca: String,
    cert: String,
    key: String,
    enc_key: String,
    pass: String,
}

fn files(name: &str) -> Files {
    let dir = TempDir::new(name);
    let ca = make_ca("CA");
    let leaf = make_leaf(&ca, &["localhost"]);
    let s = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    Files {
        ca: s(dir.write("ca.crt", &ca.cert_pem)),
        cert: s(dir.write("server.crt", &leaf.cert_pem)),
        key: s(dir.write("server.key", &leaf.key_pem)),
        enc_key: s(dir.write("enc.key", &encrypt_pkcs8_pem(&leaf.key_der, "s3cret"))),
        pass: s(dir.write("pass", "s3cret\n")),
        dir,
    }
}

#[test]
fn defaults_when_nothing_is_given() {
    let c = config(&[], &[]);
    assert_eq!(c.server.host, "0.0.0.0");
    assert_eq!(c.server.port, 8220);
    assert_eq!(c.server.bind_address(), "0.0.0.0:8220");
    assert_eq!(c.server.client_auth, ClientAuth::None);
    assert!(c.server.client_cas.is_empty());
    assert_eq!(c.server.max_connections, 10_000);
    assert_eq!(c.server.backend_workers, None);
    assert_eq!(crate::net::backend_workers(&c), 1, "embedded: one worker");
    assert_eq!(c.server.max_header_bytes, 8192);
    assert_eq!(
        c.server.timeouts,
        Timeouts {
            handshake: Duration::from_secs(10),
            read_header: Duration::from_secs(5),
            idle: Duration::from_secs(35),
            write_stall: Duration::from_secs(60),
            drain: Duration::from_secs(10),
            backend: Duration::from_secs(10),
            checkin_long_poll: Duration::from_secs(300),
            checkin_jitter: Duration::from_secs(30),
            checkin_max_poll: Duration::from_secs(3600),
        }
    );
    match &c.server.tls {
        ServerTls::SelfSigned { hosts } => assert_eq!(hosts, &["localhost", "127.0.0.1", "::1"]),
        other => panic!("{other:?}"),
    }
    assert!(c.es.is_none());
    assert_eq!(c.policy_id, None);
    assert_eq!(c.fleet_url, None);
    assert_eq!(c.startup_timeout, Some(Duration::from_secs(120)));
    assert_eq!(c.data_dir, std::path::PathBuf::from("fleet-edge-data"));
    assert_eq!(c.log_level, log::LevelFilter::Info);
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.settings.len(), SETTINGS.len());
    assert!(c.settings.iter().all(|s| s.origin == Origin::Default));
}

#[test]
fn environment_overrides_defaults_and_flags_override_environment() {
    let c = config(&[], &[("FLEET_SERVER_PORT", "9000")]);
    assert_eq!(c.server.port, 9000);
    assert_eq!(c.origin(SettingId::Port), Origin::Env("FLEET_SERVER_PORT"));
    assert_eq!(
        c.origin(SettingId::Port).to_string(),
        "env FLEET_SERVER_PORT"
    );

    let c = config(
        &["--fleet-server-port", "9100"],
        &[("FLEET_SERVER_PORT", "9000")],
    );
    assert_eq!(c.server.port, 9100);
    assert_eq!(
        c.origin(SettingId::Port).to_string(),
        "flag --fleet-server-port"
    );
    assert_eq!(c.origin(SettingId::Host).to_string(), "default");
    let printed = c.print_config();
    assert!(
        printed
            .lines()
            .any(|l| l.starts_with("--fleet-server-port ")
                && l.contains("9100")
                && l.ends_with("# flag --fleet-server-port")),
        "{printed}"
    );
}

#[test]
fn flags_take_space_or_equals_and_port_zero_is_allowed() {
    let c = config(
        &["--fleet-server-port=0", "--fleet-server-host", "127.0.0.1"],
        &[],
    );
    assert_eq!(c.server.port, 0);
    assert_eq!(c.server.host, "127.0.0.1");
    let c = config(
        &["--fleet-server-host=[::1]", "--fleet-server-port=8220"],
        &[],
    );
    assert_eq!(c.server.bind_address(), "[::1]:8220");
}

#[test]
fn boolean_flags_take_no_value() {
    let c = config(
        &[
            "--fleet-server-es=http://es:9200",
            "--fleet-server-es-insecure",
        ],
        &[],
    );
    assert!(c.es.unwrap().insecure);
    let c = config(
        &[
            "--fleet-server-es=http://es:9200",
            "--fleet-server-es-insecure=false",
        ],
        &[],
    );
    assert!(!c.es.unwrap().insecure);
    let c = config(
        &["--fleet-server-es=http://es:9200"],
        &[("FLEET_SERVER_ELASTICSEARCH_INSECURE", "YES")],
    );
    assert!(c.es.unwrap().insecure);
    // A boolean flag does not swallow the next argument.
    let e = one_error(
        &[
            "--fleet-server-es=http://es:9200",
            "--fleet-server-es-insecure",
            "true",
        ],
        &[],
    );
    assert!(e.contains("unexpected argument \"true\""), "{e}");
    let e = one_error(&[], &[("FLEET_SERVER_INSECURE_HTTP", "sure")]);
    assert!(
        e.starts_with("env FLEET_SERVER_INSECURE_HTTP: \"sure\" is not a boolean"),
        "{e}"
    );
}

#[test]
fn environment_fallbacks_apply_in_order() {
    let fp = "AB".repeat(32);
    let c = config(
        &[],
        &[
            ("ELASTICSEARCH_HOST", "https://es-fallback:9200"),
            ("FLEET_SERVER_POLICY", "policy-fallback"),
            ("FLEET_SERVER_ELASTICSEARCH_CA_TRUSTED_FINGERPRINT", &fp),
            ("FLEET_SERVER_ELASTICSEARCH_INSECURE", "1"),
            ("FLEET_SERVER_ENABLE", "true"),
            ("FLEET_HEADER", "X-One=1"),
        ],
    );
    let es = c.es.as_ref().unwrap();
    assert_eq!(es.hosts, vec!["https://es-fallback:9200"]);
    assert_eq!(
        c.origin(SettingId::EsHosts),
        Origin::Env("ELASTICSEARCH_HOST")
    );
    assert_eq!(c.policy_id.as_deref(), Some("policy-fallback"));
    assert_eq!(
        es.ca_trusted_fingerprint.unwrap().to_string(),
        "ab".repeat(32)
    );
    assert!(es.insecure);
    assert_eq!(es.headers, vec![("X-One".to_string(), "1".to_string())]);
    assert_eq!(
        c.origin(SettingId::Enable),
        Origin::Env("FLEET_SERVER_ENABLE")
    );

    // The first name of a row wins over its fallbacks.
    let c = config(
        &[],
        &[
            ("FLEET_SERVER_ELASTICSEARCH_HOST", "http://primary:9200"),
            ("ELASTICSEARCH_HOST", "http://fallback:9200"),
            ("FLEET_SERVER_POLICY_ID", "primary-policy"),
            ("FLEET_SERVER_POLICY", "fallback-policy"),
            ("FLEET_HEADERS", "A=1,B=\"2, 3\""),
            ("FLEET_HEADER", "C=4"),
        ],
    );
    let es = c.es.as_ref().unwrap();
    assert_eq!(es.hosts, vec!["http://primary:9200"]);
    assert_eq!(c.policy_id.as_deref(), Some("primary-policy"));
    assert_eq!(
        es.headers,
        vec![
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "2, 3".to_string())
        ]
    );
}

#[test]
fn elasticsearch_ca_fallback_loads_the_file() {
    let f = files("es-ca-fallback");
    let c = config(
        &["--fleet-server-es", "es:9200"],
        &[("ELASTICSEARCH_CA", &f.ca)],
    );
    let es = c.es.unwrap();
    assert_eq!(es.hosts, vec!["http://es:9200"]);
    assert_eq!(es.ca, vec![std::path::PathBuf::from(&f.ca)]);
    assert_eq!(es.ca_certs.len(), 1);
}

#[test]
fn empty_environment_variables_count_as_unset() {
    let c = config(
        &[],
        &[("FLEET_SERVER_PORT", ""), ("FLEET_SERVER_CERT", "  ")],
    );
    assert_eq!(c.server.port, 8220);
    assert_eq!(c.origin(SettingId::Port), Origin::Default);
}

#[test]
fn elasticsearch_settings_are_parsed() {
    let f = files("es");
    let c = config(
        &[
            "--fleet-server-es=https://es1:9200,https://es2:9200/prefix/",
            "--fleet-server-es-ca",
            &f.ca,
            "--fleet-server-es-cert",
            &f.cert,
            "--fleet-server-es-cert-key",
            &f.key,
            "--fleet-server-service-token",
            "AAEAAWVsYXN0aWMvZmxlZXQtc2VydmVyL3Rva2VuOnNlY3JldA",
            "--header",
            "X-A=1",
            "--header=X-B=2",
            "--fleet-server-policy",
            "fleet-server-policy",
        ],
        &[],
    );
    assert_eq!(
        crate::net::backend_workers(&c),
        4,
        "Elasticsearch: four workers"
    );
    let es = c.es.unwrap();
    assert_eq!(
        es.hosts,
        vec!["https://es1:9200", "https://es2:9200/prefix"]
    );
    assert_eq!(es.ca_certs.len(), 1);
    assert_eq!(es.client_cert.as_ref().unwrap().chain.len(), 1);
    assert_eq!(
        es.service_token.as_ref().unwrap().expose(),
        "AAEAAWVsYXN0aWMvZmxlZXQtc2VydmVyL3Rva2VuOnNlY3JldA"
    );
    assert_eq!(
        es.headers,
        vec![
            ("X-A".to_string(), "1".to_string()),
            ("X-B".to_string(), "2".to_string())
        ]
    );
    assert_eq!(c.policy_id.as_deref(), Some("fleet-server-policy"));
}

#[test]
fn service_token_is_read_from_its_file_and_trimmed() {
    let dir = TempDir::new("token");
    let path = dir.write("token", "  the-token\n");
    let c = config(
        &["--fleet-server-es=http://es:9200"],
        &[("FLEET_SERVER_SERVICE_TOKEN_PATH", path.to_str().unwrap())],
    );
    assert_eq!(c.es.unwrap().service_token.unwrap().expose(), "the-token");
    let empty = dir.write("empty", "\n");
    let e = one_error(
        &[
            "--fleet-server-es=http://es:9200",
            "--fleet-server-service-token-path",
            empty.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        e.starts_with("--fleet-server-service-token-path: the service token file"),
        "{e}"
    );
    assert!(e.contains("is empty"), "{e}");
}

#[test]
fn print_config_redacts_the_service_token_and_header_values() {
    let token = "AAEAAWVsYXN0aWMvZmxlZXQtc2VydmVyL3Rva2VuOnRvcC1zZWNyZXQ";
    let out = match run(
        &[
            "--print-config",
            "--fleet-server-es=http://es:9200",
            "--header=Authorization=Basic Zm9v",
        ],
        &[("FLEET_SERVER_SERVICE_TOKEN", token)],
    )
    .unwrap()
    {
        Command::PrintConfig(s) => s,
        other => panic!("{other:?}"),
    };
    assert!(!out.contains(token), "{out}");
    assert!(!out.contains("Zm9v"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("--fleet-server-service-token ")
                && l.contains("<redacted>")
                && l.ends_with("# env FLEET_SERVER_SERVICE_TOKEN")),
        "{out}"
    );
    assert!(out.contains("Authorization=<redacted>"), "{out}");
    for s in SETTINGS {
        assert!(out.contains(s.name()), "print-config misses {}", s.name());
    }
    assert!(out.contains("(unset)"));

    let c = config(
        &[],
        &[
            ("FLEET_SERVER_SERVICE_TOKEN", token),
            ("FLEET_SERVER_ELASTICSEARCH_HOST", "http://es:9200"),
        ],
    );
    assert!(!format!("{c:?}").contains(token));
    assert_eq!(format!("{}", Secret::new(token.to_string())), "<redacted>");
}

#[test]
fn help_and_version_win_over_everything() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["--bogus", "-h"],
        &["--fleet-server-port=x", "--help"],
    ] {
        assert!(matches!(run(args, &[]), Ok(Command::Help(_))), "{args:?}");
    }
    for args in [&["--version"][..], &["-V"]] {
        match run(args, &[]) {
            Ok(Command::Version(v)) => {
                assert_eq!(v, crate::build_info::version_line())
            }
            other => panic!("{other:?}"),
        }
    }
}

fn help_text() -> String {
    match run(&["--help"], &[]) {
        Ok(Command::Help(h)) => h,
        other => panic!("{other:?}"),
    }
}

#[test]
fn help_lists_every_setting_with_env_default_and_policy() {
    let help = help_text();
    for s in SETTINGS {
        if let Some(flag) = s.flag {
            assert!(help.contains(flag), "help misses {flag}");
        }
        for env in s.envs {
            assert!(help.contains(env), "help misses {env}");
        }
        if let Some(default) = s.default {
            assert!(
                help.contains(&format!("default: {default}")),
                "help misses default of {}",
                s.name()
            );
        }
    }
    for (long, short, _) in COMMAND_FLAGS {
        assert!(help.contains(long));
        if let Some(short) = short {
            assert!(help.contains(short));
        }
    }
    assert!(help.contains("policy: may override") && help.contains("policy: never"));
}

/// Every backticked `--flag` and `UPPER_CASE` variable of the table rows of `seeds/000_*.txt`.
fn seed_names() -> Vec<String> {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/seeds"));
    let builtin = [
        "--fleet-server-es",
        "--fleet-server-es-ca",
        "--fleet-server-es-ca-trusted-fingerprint",
        "--fleet-server-es-cert",
        "--fleet-server-es-cert-key",
        "--fleet-server-es-insecure",
        "--fleet-server-service-token",
        "--fleet-server-service-token-path",
        "--fleet-server-cert",
        "--fleet-server-cert-key",
        "--fleet-server-cert-key-passphrase",
        "--certificate-authorities",
        "--fleet-server-client-auth",
        "--fleet-server-host",
        "--fleet-server-port",
        "--fleet-server-timeout",
        "FLEET_SERVER_ELASTICSEARCH_HOST",
        "FLEET_SERVER_ELASTICSEARCH_CA",
        "FLEET_SERVER_ES_CERT",
        "FLEET_SERVER_ES_CERT_KEY",
        "FLEET_SERVER_SERVICE_TOKEN",
        "FLEET_SERVER_SERVICE_TOKEN_PATH",
        "FLEET_SERVER_CERT",
        "FLEET_SERVER_CERT_KEY",
        "FLEET_SERVER_CERT_KEY_PASSPHRASE",
        "FLEET_CA",
        "FLEET_SERVER_CLIENT_AUTH",
        "FLEET_SERVER_HOST",
        "FLEET_SERVER_PORT",
        "FLEET_SERVER_TIMEOUT",
        "FLEET_URL",
    ];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return builtin.iter().map(|s| s.to_string()).collect();
    };
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if !(file.starts_with("000_") && file.ends_with(".txt")) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for row in text.lines().filter(|l| l.trim_start().starts_with('|')) {
            for (i, token) in row.split('`').enumerate() {
                let is_flag = token.starts_with("--") && token.len() > 2;
                let is_env = token.len() > 1
                    && token.starts_with(|c: char| c.is_ascii_uppercase())
                    && token
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
                if i % 2 == 1 && (is_flag || is_env) && !names.contains(&token.to_string()) {
                    names.push(token.to_string());
                }
            }
        }
    }
    assert!(
        names.len() >= builtin.len(),
        "the seeds' tables yielded only {names:?}"
    );
    names
}

#[test]
fn help_mentions_every_flag_and_env_var_of_the_seeds_tables() {
    let help = help_text();
    for name in seed_names() {
        let found = help
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .any(|word| word == name);
        assert!(found, "--help does not mention {name}");
    }
}

#[test]
fn every_seed_flag_and_env_var_is_accepted() {
    for name in seed_names() {
        if name.starts_with("--") {
            let result = run(&[&name, "x"], &[]);
            let unknown = match &result {
                Err(ConfigErrors(e)) => e.iter().any(|m| {
                    m.contains("is not a fleet-edge flag") || m.contains("unexpected argument")
                }),
                Ok(_) => false,
            };
            // Boolean flags take no value, so "x" is a stray argument for them only.
            let spec = SETTINGS
                .iter()
                .find(|s| s.flag == Some(name.as_str()))
                .unwrap();
            assert_eq!(unknown, spec.kind == Kind::Bool, "{name}: {result:?}");
        } else {
            assert!(
                SETTINGS.iter().any(|s| s.envs.contains(&name.as_str())),
                "{name}"
            );
        }
    }
}

#[test]
fn the_settings_table_is_consistent() {
    let mut flags = Vec::new();
    let mut envs = Vec::new();
    for s in SETTINGS {
        assert_eq!(spec(s.id).name(), s.name());
        if let Some(flag) = s.flag {
            assert!(flag.starts_with("--"), "{flag}");
            assert!(!flags.contains(&flag), "duplicate {flag}");
            flags.push(flag);
        }
        for env in s.envs {
            assert!(!envs.contains(env), "duplicate {env}");
            envs.push(*env);
        }
        assert!(s.flag.is_some() || !s.envs.is_empty());
        assert!(!s.help.is_empty());
    }
    assert_eq!(
        SETTINGS
            .iter()
            .filter(|s| s.id == SettingId::CheckinMaxPoll)
            .count(),
        1
    );
    // Exactly the "must be CLI or env" settings of the seeds are not policy-overridable.
    for id in [
        SettingId::ServiceToken,
        SettingId::ServiceTokenPath,
        SettingId::PolicyId,
        SettingId::EsCaTrustedFingerprint,
        SettingId::EsInsecure,
        SettingId::StartupTimeout,
        SettingId::FleetUrl,
    ] {
        assert!(!spec(id).policy_overridable, "{id:?}");
    }
    for id in [
        SettingId::EsHosts,
        SettingId::EsCa,
        SettingId::EsCert,
        SettingId::EsCertKey,
        SettingId::Cert,
        SettingId::CertKey,
        SettingId::CertKeyPassphrase,
        SettingId::CertificateAuthorities,
        SettingId::ClientAuth,
        SettingId::Host,
        SettingId::Port,
    ] {
        assert!(spec(id).policy_overridable, "{id:?}");
    }
    assert!(spec(SettingId::ServiceToken).secret);
}

#[test]
fn provided_certificate_key_and_client_cas_are_loaded() {
    let f = files("provided");
    let c = config(
        &[
            "--fleet-server-cert",
            &f.cert,
            "--fleet-server-cert-key",
            &f.key,
            "--certificate-authorities",
            &format!("{},{}", f.ca, f.ca),
            "--fleet-server-client-auth",
            "required",
        ],
        &[],
    );
    assert!(matches!(c.server.tls, ServerTls::Provided(ref m) if m.chain.len() == 1));
    assert_eq!(c.server.client_auth, ClientAuth::Required);
    assert_eq!(c.server.client_cas.len(), 2);

    // The same through the container variables, with an encrypted key.
    let c = config(
        &[],
        &[
            ("FLEET_SERVER_CERT", &f.cert),
            ("FLEET_SERVER_CERT_KEY", &f.enc_key),
            ("FLEET_SERVER_CERT_KEY_PASSPHRASE", &f.pass),
            ("FLEET_CA", &f.ca),
            ("FLEET_SERVER_CLIENT_AUTH", "optional"),
        ],
    );
    assert!(matches!(c.server.tls, ServerTls::Provided(_)));
    assert_eq!(c.server.client_auth, ClientAuth::Optional);
    drop(f.dir);
}

#[test]
fn insecure_http_serves_plain_http_on_localhost_by_default() {
    let c = config(&["--fleet-server-insecure-http"], &[]);
    assert!(matches!(c.server.tls, ServerTls::PlainHttp));
    assert_eq!(c.server.host, "localhost");
    assert_eq!(
        c.origin(SettingId::Host).to_string(),
        "default (with --fleet-server-insecure-http)"
    );
    let c = config(
        &["--fleet-server-host=0.0.0.0"],
        &[("FLEET_SERVER_INSECURE_HTTP", "1")],
    );
    assert!(matches!(c.server.tls, ServerTls::PlainHttp));
    assert_eq!(c.server.host, "0.0.0.0");
}

#[test]
fn self_signed_hosts_cover_the_bind_host_and_fleet_url() {
    let c = config(
        &["--fleet-server-host", "10.0.0.5"],
        &[("FLEET_URL", "https://Fleet.Example.com:8220")],
    );
    assert_eq!(
        c.fleet_url.as_deref(),
        Some("https://Fleet.Example.com:8220")
    );
    match c.server.tls {
        ServerTls::SelfSigned { hosts } => assert_eq!(
            hosts,
            vec![
                "localhost",
                "127.0.0.1",
                "::1",
                "10.0.0.5",
                "fleet.example.com"
            ]
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn startup_timeout_follows_go_durations() {
    let t = |v: &str| config(&["--fleet-server-timeout", v], &[]).startup_timeout;
    assert_eq!(t("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(t("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(t("0"), Some(Duration::from_secs(120)));
    assert_eq!(t("-1s"), None);
    let c = config(
        &[
            "--checkin-long-poll=30s",
            "--checkin-jitter=0",
            "--drain-timeout=0s",
        ],
        &[],
    );
    assert_eq!(c.server.timeouts.checkin_long_poll, Duration::from_secs(30));
    assert_eq!(c.server.timeouts.checkin_jitter, Duration::ZERO);
    assert_eq!(c.server.timeouts.drain, Duration::ZERO);
    let c = config(
        &[],
        &[
            ("FLEET_EDGE_HEADER_TIMEOUT", "2s"),
            ("FLEET_EDGE_IDLE_TIMEOUT", "1m"),
        ],
    );
    assert_eq!(c.server.timeouts.read_header, Duration::from_secs(2));
    assert_eq!(c.server.timeouts.idle, Duration::from_secs(60));
}

#[test]
fn runtime_settings_parse() {
    let c = config(
        &[
            "--log-level=WARNING",
            "--log-format",
            "json",
            "--max-connections=5",
            "--backend-workers=2",
            "--data-dir",
            "/var/lib/fe",
        ],
        &[],
    );
    assert_eq!(crate::net::backend_workers(&c), 2);
    assert_eq!(c.log_level, log::LevelFilter::Warn);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.server.max_connections, 5);
    assert_eq!(c.data_dir, std::path::PathBuf::from("/var/lib/fe"));
    let c = config(
        &[],
        &[
            ("FLEET_EDGE_LOG_LEVEL", "debug"),
            ("FLEET_EDGE_DATA_DIR", "/data"),
        ],
    );
    assert_eq!(c.log_level, log::LevelFilter::Debug);
    assert_eq!(c.data_dir, std::path::PathBuf::from("/data"));
}

mod validation;

#[test]
fn file_transfer_settings() {
    let c = config(&[], &[]);
    assert_eq!(c.server.files.max_file_size, None, "unset: unlimited");
    assert_eq!(
        c.server.files.retention,
        std::time::Duration::from_secs(720 * 3600)
    );
    assert_eq!(c.server.files.total_cap, Some(1 << 30));
    let c = config(
        &["--max-file-storage-size", "0", "--file-storage-cap", "0"],
        &[("FLEET_EDGE_FILE_RETENTION", "48h")],
    );
    assert_eq!(c.server.files.max_file_size, Some(0), "0: uploads disabled");
    assert_eq!(c.server.files.total_cap, None, "0: no cap");
    assert_eq!(
        c.server.files.retention,
        std::time::Duration::from_secs(48 * 3600)
    );
    let e = one_error(&["--max-file-storage-size", "5MB"], &[]);
    assert!(e.contains("not a whole number of bytes"), "{e}");
}
