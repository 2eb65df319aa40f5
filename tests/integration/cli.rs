//! The command line as operators meet it: `--help` covers every flag and environment variable of
//! the seeds' tables, `--print-config` shows values with their origin and hides secrets,
//! configuration that cannot work fails at startup with every problem listed and exit code 2,
//! `--version` names the build, and the management subcommands refuse what they do not know,
//! carry every option, and show a checkin at once.

use std::path::Path;
use std::time::Duration;

use crate::management::{cli, json_of, only_action, roots};
use crate::support::agent::Agent;
use crate::support::{run_to_exit, FleetEdge, TempDir};

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
        &[
            "--print-config",
            "--fleet-server-host",
            "10.1.2.3",
            "--fleet-server-es",
            "http://127.0.0.1:9",
        ],
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
            "--fleet-server-es",
            "http://127.0.0.1:9",
            "--fleet-server-service-token",
            "x",
            "--fleet-server-service-token-path",
            "/tmp/t",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("--fleet-server-service-token-path"), "{err}");
    assert!(err.contains("are both set"), "{err}");
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

#[test]
fn version_names_commit_target_build_time_and_fleet_server_version() {
    let (status, out, err) = run_to_exit(&["--version"], &[]);
    assert_eq!(status.code(), Some(0), "{err}");
    let line = out
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("no trailing newline: {out:?}"));
    assert!(!line.contains('\n'), "{out:?}");
    let rest = line
        .strip_prefix(&format!("fleet-edge {} (", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{line}"));
    let (inside, tail) = rest.split_once(')').unwrap();
    let parts: Vec<&str> = inside.split(", ").collect();
    assert_eq!(parts.len(), 3, "{line}");
    // Built from a git checkout: a 12-digit commit and the commit's date.
    if std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.git")).exists() {
        assert_eq!(parts[0].len(), 12, "{line}");
        assert!(parts[0].chars().all(|c| c.is_ascii_hexdigit()), "{line}");
        assert!(parts[2].ends_with('Z') && parts[2].len() == 20, "{line}");
    }
    assert!(
        parts[1].matches('-').count() >= 2,
        "a target triple: {line}"
    );
    assert!(tail.starts_with(", Fleet Server compatible "), "{line}");
    let claimed = tail.trim_start_matches(", Fleet Server compatible ");
    assert_eq!(claimed.split('.').count(), 3, "{line}");
}

#[test]
fn misspelled_commands_and_options_exit_2_with_a_suggestion() {
    let (status, _, err) = run_to_exit(&["agnets"], &[]);
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("did you mean 'agents'?"), "{err}");
    let (status, _, err) = run_to_exit(&["tokens", "create", "--policy", "p", "--nmae", "x"], &[]);
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("did you mean '--name'?"), "{err}");
    let (status, _, err) = run_to_exit(&["--fleet-server-prot", "8220"], &[]);
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("did you mean --fleet-server-port?"), "{err}");
    for args in [
        &["help"][..],
        &["--help"],
        &["help", "agents"],
        &["agents", "--help"],
    ] {
        let (status, out, err) = run_to_exit(args, &[]);
        assert_eq!(status.code(), Some(0), "{args:?}: {err}");
        assert!(out.contains("Usage: fleet-edge"), "{args:?}: {out}");
    }
}

#[test]
fn embedded_mode_refuses_an_elasticsearch_only_setting() {
    let data = TempDir::new("esonly");
    // The host variable is misspelled: without the check this would start an empty embedded server.
    let (status, _, err) = run_to_exit(
        &["--data-dir", data.path().to_str().unwrap()],
        &[
            ("FLEET_SERVER_ELASTICSEARCH_HOTS", "https://es:9200"),
            ("FLEET_SERVER_SERVICE_TOKEN", "AAEAAWVsYXN0aWM"),
        ],
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("env FLEET_SERVER_SERVICE_TOKEN applies only with --fleet-server-es; set FLEET_SERVER_ELASTICSEARCH_HOST or remove it."),
        "{err}"
    );
}

#[test]
fn unknown_fleet_variables_are_warned_about_with_the_closest_name() {
    let data = TempDir::new("unknownenv");
    let server = FleetEdge::start_in(
        data.path(),
        &[],
        &[
            ("FLEET_SERVER_ELASTICSEARCH_HOTS", "https://es:9200"),
            ("FLEET_ENROLL", "1"),
        ],
    );
    let line = server
        .wait_for_log("FLEET_SERVER_ELASTICSEARCH_HOTS", Duration::from_secs(10))
        .expect("a warning naming the variable");
    assert!(
        line.contains("environment variable FLEET_SERVER_ELASTICSEARCH_HOTS is not read by fleet-edge; did you mean FLEET_SERVER_ELASTICSEARCH_HOST?"),
        "{line}"
    );
    assert!(line.contains("WARN") || line.contains("warn"), "{line}");
    // FLEET_ENROLL belongs to the Elastic Agent container: known, ignored, not warned about.
    assert!(server
        .wait_for_log("FLEET_ENROLL", Duration::ZERO)
        .is_none());
}

/// Just after a checkin the agent lists online with its checkin time, though the checkin state
/// is written in batches; `upgrade --source-uri` reaches the agent's UPGRADE action; results of
/// an unknown action are exit 1.
#[test]
fn management_commands_read_their_writes_and_carry_every_option() {
    let server = FleetEdge::start(&["--checkin-long-poll", "30s", "--checkin-jitter", "0s"]);
    server
        .wait_for_log("management API on", Duration::from_secs(20))
        .expect("management API announced");
    let (code, out, err) = cli(
        &server,
        &["tokens", "create", "--policy", "fleet-edge-default"],
    );
    assert_eq!(code, 0, "{err}");
    let token = json_of(&out)["item"]["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut agent, _) = Agent::enroll(server.addr, roots(&server), &token, &[]);
    let (_, body) = agent.checkin();
    let (code, out, err) = cli(&server, &["agents"]);
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with(&agent.id))
        .unwrap_or_else(|| panic!("agent not listed:\n{out}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    // Columns found by their header ("LAST CHECKIN" is two words; no cell before it has blanks).
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    // Checked in, first policy not acknowledged yet: Kibana's `updating` (not `enrolling`).
    assert_eq!(
        cells[column("STATUS")],
        "updating",
        "listed at once after its checkin:\n{out}"
    );
    assert!(
        cells[column("LAST")].ends_with('Z'),
        "last checkin shown:\n{out}"
    );

    agent.apply_policy(only_action(&body));
    agent.ack(&[("policy:fleet-edge-default:1", "POLICY_CHANGE")]);
    let uri = "https://artifacts.example.com/downloads/";
    let (code, out, err) = cli(
        &server,
        &[
            "upgrade",
            &agent.id,
            "--version",
            "9.2.0",
            "--source-uri",
            uri,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let action_id = json_of(&out)["item"]["action_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) = agent.checkin();
    let action = only_action(&body);
    assert_eq!(action["type"], "UPGRADE", "{body}");
    assert_eq!(action["id"], action_id.as_str(), "{body}");
    assert_eq!(action["data"]["version"], "9.2.0", "{body}");
    assert_eq!(action["data"]["source_uri"], uri, "{body}");

    let (code, out, _) = cli(&server, &["results", &action_id]);
    assert_eq!(code, 0, "a known action without results yet: {out}");
    let (code, _, err) = cli(&server, &["results", "no-such-action"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("action no-such-action not found"), "{err}");
    let (code, _, err) = cli(&server, &["unenroll", "no-such-agent"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("agent no-such-agent not found"), "{err}");
}
