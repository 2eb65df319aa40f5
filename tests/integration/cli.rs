//! The command line as operators meet it: `--help` covers every flag and environment variable of
//! the seeds' tables, `--print-config` shows values with their origin and hides secrets, and
//! configuration that cannot work fails at startup with every problem listed and exit code 2.

use std::path::Path;

use crate::support::{run_to_exit, TempDir};

/// Flags and environment variables of the tables in seeds/000 (used when ../shared is absent).
const BUILT_IN: &[&str] = &[
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

/// Every backticked `--flag` or `UPPER_CASE` name in the table rows of the seeds' deploy guide.
fn seed_names(seeds: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(seeds).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        for line in text.lines().filter(|l| l.starts_with("| `")) {
            for (i, chunk) in line.split('`').enumerate() {
                let is_flag = chunk.starts_with("--") && chunk.len() > 2;
                let is_env = chunk.len() > 3
                    && chunk
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit());
                if i % 2 == 1 && (is_flag || is_env) && !names.contains(&chunk.to_owned()) {
                    names.push(chunk.to_owned());
                }
            }
        }
    }
    names
}

#[test]
fn help_lists_every_flag_and_variable_of_the_seeds_tables() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seeds");
    let names = if seeds.is_dir() {
        let found = seed_names(&seeds);
        assert!(
            found.len() >= BUILT_IN.len(),
            "seed tables not recognised: {found:?}"
        );
        found
    } else {
        BUILT_IN.iter().map(|s| s.to_string()).collect()
    };
    let (status, help, _) = run_to_exit(&["--help"], &[]);
    assert!(status.success());
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !help.contains(n.as_str()))
        .collect();
    assert!(missing.is_empty(), "--help lacks {missing:?}\n{help}");
}

#[test]
fn print_config_shows_origins_and_redacts_the_service_token() {
    let (status, out, err) = run_to_exit(
        &["--print-config", "--fleet-server-host", "10.1.2.3"],
        &[
            ("FLEET_SERVER_PORT", "9443"),
            (
                "FLEET_SERVER_SERVICE_TOKEN",
                "AAEAAWVsYXN0aWMvZmxlZXQtc2VydmVyL3Rva2Vu",
            ),
        ],
    );
    assert!(status.success(), "{err}");
    assert!(
        !out.contains("AAEAAWVsYXN0aWMvZmxlZXQtc2VydmVyL3Rva2Vu"),
        "token leaked:\n{out}"
    );
    let port = out
        .lines()
        .find(|l| l.contains("fleet-server-port"))
        .expect(&out);
    assert!(
        port.contains("9443") && port.contains("FLEET_SERVER_PORT"),
        "{port}"
    );
    let host = out
        .lines()
        .find(|l| l.contains("fleet-server-host"))
        .expect(&out);
    assert!(host.contains("10.1.2.3") && host.contains("flag"), "{host}");
}

#[test]
fn invalid_configuration_lists_every_problem_and_exits_2() {
    let data = TempDir::new("badcfg");
    let (status, _out, err) = run_to_exit(
        &[
            "--data-dir",
            data.path().to_str().unwrap(),
            "--fleet-server-port",
            "99999",
            "--fleet-server-client-auth",
            "sometimes",
            "--fleet-server-cert",
            "/nonexistent/server.crt",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("99999"), "bad port reported: {err}");
    assert!(err.contains("sometimes"), "bad client auth reported: {err}");
    assert!(
        err.contains("--fleet-server-cert-key"),
        "missing key reported: {err}"
    );
}

#[test]
fn token_and_token_path_together_exit_2() {
    let (status, _out, err) = run_to_exit(
        &[
            "--fleet-server-service-token",
            "x",
            "--fleet-server-service-token-path",
            "/tmp/t",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("--fleet-server-service-token-path"), "{err}");
}

#[test]
fn client_auth_required_without_certificate_authorities_exits_2() {
    let (status, _out, err) = run_to_exit(&["--fleet-server-client-auth", "required"], &[]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("--certificate-authorities"), "{err}");
}

#[test]
fn the_claimed_server_version_is_printed_and_checked() {
    let (status, out, err) = run_to_exit(&["--print-config", "--server-version", "9.7.0"], &[]);
    assert!(status.success(), "{err}");
    let line = out
        .lines()
        .find(|l| l.contains("server-version"))
        .expect(&out);
    assert!(line.contains("9.7.0") && line.contains("flag"), "{line}");
    let (_, out, _) = run_to_exit(&["--print-config"], &[]);
    let line = out
        .lines()
        .find(|l| l.contains("server-version"))
        .expect(&out);
    assert!(line.contains("9.6.0") && line.contains("default"), "{line}");
    let (_, help, _) = run_to_exit(&["--help"], &[]);
    assert!(
        help.contains("--server-version") && help.contains("FLEET_EDGE_SERVER_VERSION"),
        "{help}"
    );

    for (bad, why) in [("9.7", "MAJOR.MINOR.PATCH"), ("9.5.0", "older than 9.6.0")] {
        let (status, _, err) = run_to_exit(&[], &[("FLEET_EDGE_SERVER_VERSION", bad)]);
        assert_eq!(status.code(), Some(2), "{bad}: {err}");
        assert!(
            err.contains("FLEET_EDGE_SERVER_VERSION") && err.contains(why),
            "{bad}: {err}"
        );
    }
}
