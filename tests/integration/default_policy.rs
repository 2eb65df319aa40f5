//! The default policy embedded mode writes on its first start, through the real binary: its
//! `fleet.hosts` is the URL the quick start prints (or `FLEET_URL`), its output comes from
//! `--default-output-*` or is written not configured (no hosts, no placeholder credential), the
//! quick start says so naming the file, and `fleet-edge agents` shows the problem beside an agent
//! that checked in. Bad output settings stop the start with exit 2, secrets unprinted.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::agent::Agent;
use crate::support::client::tls_config;
use crate::support::pki::Pki;
use crate::support::{run_to_exit, FleetEdge, TempDir};

fn roots(server: &FleetEdge) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(server.data_dir.join("certs/ca.crt")).unwrap();
    tls_config(
        &[rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap()],
        None,
    )
}

fn printed(server: &FleetEdge, label: &str) -> String {
    let line = server
        .wait_for_log("elastic-agent install", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no quick start:\n{}", server.log()));
    let _ = line;
    server
        .log()
        .lines()
        .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("no {label} line:\n{}", server.log()))
}

fn policy_file(server: &FleetEdge) -> Value {
    let path = server.data_dir.join("policies/fleet-edge-default.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn agents_table(server: &FleetEdge) -> String {
    let dir = server.data_dir.to_str().unwrap().to_owned();
    let (status, out, err) = run_to_exit(&["agents", "--data-dir", &dir], &[]);
    assert!(status.success(), "{err}");
    out
}

#[test]
fn without_output_settings_the_output_is_written_not_configured_and_shown_as_a_problem() {
    let server = FleetEdge::start(&["--checkin-long-poll", "1s", "--checkin-jitter", "0s"]);
    let url = printed(&server, "Fleet Server URL:");
    assert_eq!(url, format!("https://127.0.0.1:{}", server.addr.port()));
    let policy = policy_file(&server);
    assert_eq!(policy["fleet"], json!({"hosts": [url]}));
    assert_eq!(
        policy["outputs"],
        json!({"default": {"type": "elasticsearch", "hosts": []}}),
        "no hosts, no placeholder credential"
    );
    let file = server.data_dir.join("policies/fleet-edge-default.json");
    let output_line = printed(&server, "Output:");
    assert!(
        output_line.contains("output default is not configured")
            && output_line.contains(&file.display().to_string()),
        "one line naming the file: {output_line}"
    );

    let token = printed(&server, "Enrollment token:")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let (mut agent, _) = Agent::enroll(server.addr, roots(&server), &token, &[]);
    let (_, body) = agent.checkin();
    let delivered = &body["actions"][0]["data"]["policy"];
    assert_eq!(delivered["fleet"]["hosts"], json!([url]));
    assert_eq!(delivered["outputs"]["default"]["hosts"], json!([]));
    let table = agents_table(&server);
    let row = table
        .lines()
        .find(|l| l.starts_with(&agent.id))
        .unwrap_or_else(|| panic!("agent not listed:\n{table}"));
    assert!(
        row.contains("output default is not configured (no hosts)"),
        "{table}"
    );
    assert!(
        table.lines().next().unwrap().contains("PROBLEMS"),
        "{table}"
    );
}

#[test]
fn output_settings_and_fleet_url_shape_the_first_policy() {
    let data = TempDir::new("out-es");
    let server = FleetEdge::start_in(
        data.path(),
        &[
            "--default-output-hosts",
            "https://es-a.example:9200,https://es-b.example:9200",
        ],
        &[
            ("FLEET_URL", "https://fleet-edge.example:8220"),
            ("FLEET_EDGE_DEFAULT_OUTPUT_API_KEY", "kid:ksecret"),
        ],
    );
    let policy = policy_file(&server);
    assert_eq!(
        policy["fleet"],
        json!({"hosts": ["https://fleet-edge.example:8220"]}),
        "FLEET_URL is what agents are told"
    );
    assert_eq!(
        printed(&server, "Fleet Server URL:"),
        "https://fleet-edge.example:8220"
    );
    assert_eq!(
        policy["outputs"],
        json!({"default": {"type": "elasticsearch",
            "hosts": ["https://es-a.example:9200", "https://es-b.example:9200"],
            "api_key": "kid:ksecret"}})
    );
    assert!(
        !server.log().contains("Output:"),
        "no problem line:\n{}",
        server.log()
    );
    assert!(!server.log().contains("ksecret"), "the key is never logged");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.data_dir.join("policies/fleet-edge-default.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "policy file with credentials is private: {mode:o}"
        );
    }
    let token = printed(&server, "Enrollment token:")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let (mut agent, _) = Agent::enroll(server.addr, roots(&server), &token, &[]);
    let (_, body) = agent.checkin();
    assert_eq!(
        body["actions"][0]["data"]["policy"]["outputs"]["default"]["api_key"], "kid:ksecret",
        "embedded mode sends output credentials as written"
    );
    let table = agents_table(&server);
    let row = table.lines().find(|l| l.starts_with(&agent.id)).unwrap();
    assert!(row.trim_end().ends_with(" -"), "no problem: {row}");
}

#[test]
fn a_logstash_output_embeds_its_tls_material_as_pem() {
    let pki = Pki::new();
    let server = FleetEdge::start(&[
        "--default-output-type",
        "logstash",
        "--default-output-hosts",
        "ls.example:5044",
        "--default-output-ssl-certificate-authorities",
        pki.ca_path.to_str().unwrap(),
        "--default-output-ssl-certificate",
        pki.client.cert_path.to_str().unwrap(),
        "--default-output-ssl-key",
        pki.client.key_path.to_str().unwrap(),
    ]);
    let output = &policy_file(&server)["outputs"]["default"];
    assert_eq!(output["type"], "logstash");
    assert_eq!(output["hosts"], json!(["ls.example:5044"]));
    assert!(output.get("api_key").is_none());
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    assert_eq!(
        output["ssl"]["certificate_authorities"][0]
            .as_str()
            .unwrap()
            .trim(),
        read(&pki.ca_path).trim()
    );
    assert_eq!(
        output["ssl"]["certificate"].as_str().unwrap().trim(),
        read(&pki.client.cert_path).trim()
    );
    let key = read(&pki.client.key_path);
    assert_eq!(output["ssl"]["key"].as_str().unwrap().trim(), key.trim());
    let body = key.lines().nth(1).unwrap();
    assert!(!server.log().contains(body), "the key is never logged");
}

#[test]
fn bad_output_settings_exit_2_with_every_problem_and_no_secret() {
    let (status, _, err) = run_to_exit(
        &["--default-output-type", "kafka"],
        &[("FLEET_EDGE_DEFAULT_OUTPUT_API_KEY", "not-a-key-s3cr3t")],
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("\"kafka\" is not an output type"), "{err}");
    assert!(
        err.contains("FLEET_EDGE_DEFAULT_OUTPUT_API_KEY")
            && err.contains("needs --default-output-hosts"),
        "{err}"
    );
    assert!(!err.contains("s3cr3t"), "secret printed: {err}");

    let (status, _, err) = run_to_exit(
        &[
            "--default-output-hosts",
            "https://es:9200",
            "--default-output-api-key",
            "justone-s3cr3t",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("form id:key") && !err.contains("s3cr3t"),
        "{err}"
    );

    let (status, _, err) = run_to_exit(&["--default-output-hosts", "https://es:9200"], &[]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("needs an API key"), "{err}");

    let (status, _, err) = run_to_exit(
        &[
            "--default-output-type",
            "logstash",
            "--default-output-hosts",
            "https://ls:5044",
            "--default-output-ssl-certificate",
            "/nonexistent/client.crt",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("not a Logstash host"), "{err}");
    assert!(
        err.contains("--default-output-ssl-key"),
        "cert without key: {err}"
    );

    let (status, _, err) = run_to_exit(
        &[
            "--fleet-server-es",
            "http://127.0.0.1:9",
            "--default-output-hosts",
            "https://es:9200",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("embedded mode"), "{err}");

    let (status, out, err) = run_to_exit(
        &[
            "--print-config",
            "--default-output-hosts",
            "https://es:9200",
        ],
        &[("FLEET_EDGE_DEFAULT_OUTPUT_API_KEY", "kid:ks3cr3t")],
    );
    assert!(status.success(), "{err}");
    let line = out
        .lines()
        .find(|l| l.contains("default-output-api-key"))
        .expect(&out);
    assert!(
        line.contains("<redacted>") && !out.contains("ks3cr3t"),
        "{out}"
    );
    assert!(out.contains("https://es:9200"), "{out}");
}
