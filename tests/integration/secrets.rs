//! No secret reaches the log at any level: a whole session at `--log-level=trace` (Elasticsearch
//! mode: enroll, checkin with a minted output key, ack; embedded mode: enroll, checkin, ack and a
//! management call with the admin token), then every secret it handled is searched for in the
//! log as text, as hex (lower/upper, with and without spaces), in the log with every whitespace
//! removed, and in the bytes of every hex dump in it joined together (a dump splits a value
//! across 16-byte lines, so a plain grep misses it).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::support::agent::Agent;
use crate::support::client::tls_config;
use crate::support::{run_to_exit, FleetEdge};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(s: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("{s:?} is not base64: {e}"));
    String::from_utf8(bytes).unwrap()
}

/// A named secret and the forms it travels in: an `id:key` pair also as its key alone and as
/// the base64 an `ApiKey` header carries; a base64 token also decoded.
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn new() -> Self {
        Self(Vec::new())
    }

    fn plain(&mut self, name: &str, value: &str) {
        assert!(
            value.len() >= 8,
            "{name} is too short to search for: {value:?}"
        );
        self.0.push((name.to_owned(), value.to_owned()));
    }

    /// An `id:key` API key (as an output key is handed to the agent).
    fn id_key(&mut self, name: &str, pair: &str) {
        let (_, key) = pair
            .split_once(':')
            .unwrap_or_else(|| panic!("{name} is not id:key: {pair:?}"));
        self.plain(name, pair);
        self.plain(&format!("{name} (key part)"), key);
        self.plain(&format!("{name} (ApiKey header)"), &b64(pair));
    }

    /// A base64 `id:key` token (enrollment tokens, agent access keys, service tokens).
    fn encoded(&mut self, name: &str, token: &str) {
        self.plain(name, token);
        let pair = unb64(token);
        let (_, key) = pair
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("{name} does not decode to id:key: {pair:?}"));
        self.plain(&format!("{name} (decoded)"), &pair);
        self.plain(&format!("{name} (key part)"), key);
    }

    /// Panics naming every secret found in `log`, and in which view of it.
    fn assert_absent(&self, log: &str) {
        assert!(
            log.contains(" DEBUG "),
            "the log is not at debug/trace level:\n{log}"
        );
        let no_space: String = log.chars().filter(|c| !c.is_whitespace()).collect();
        let dumps = hex_dump_bytes(log);
        let views = [
            ("log", log.to_owned()),
            ("log without whitespace", no_space),
            ("bytes of the hex dumps", dumps),
        ];
        let mut found = Vec::new();
        for (name, value) in &self.0 {
            let hex_lower: String = value.bytes().map(|b| format!("{b:02x}")).collect();
            let spaced_lower: Vec<String> = value.bytes().map(|b| format!("{b:02x}")).collect();
            let spaced_lower = spaced_lower.join(" ");
            let forms = [
                ("text", value.clone()),
                ("hex", hex_lower.clone()),
                ("HEX", hex_lower.to_uppercase()),
                ("spaced hex", spaced_lower.clone()),
                ("spaced HEX", spaced_lower.to_uppercase()),
            ];
            for (view, text) in &views {
                for (form, needle) in &forms {
                    if text.contains(needle.as_str()) {
                        found.push(format!("{name} as {form} in the {view}"));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "secrets in the log:\n  {}\n(log: {} lines)",
            found.join("\n  "),
            log.lines().count()
        );
    }
}

/// Every run of hex-digit words in the log's messages (`6162 6364`, `61 62`, `0a0b...`), decoded
/// and joined across lines: a value a dump split over several lines is whole again here.
fn hex_dump_bytes(log: &str) -> String {
    let mut bytes = Vec::new();
    for line in log.lines() {
        for word in line.split_whitespace() {
            let word = word.trim_end_matches("--");
            if word.len() >= 2 && word.len() % 2 == 0 && word.bytes().all(|b| b.is_ascii_hexdigit())
            {
                for pair in word.as_bytes().chunks(2) {
                    let text = std::str::from_utf8(pair).unwrap_or("00");
                    bytes.push(u8::from_str_radix(text, 16).unwrap_or(0));
                }
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn roots(server: &FleetEdge) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(server.data_dir.join("certs/ca.crt")).unwrap();
    tls_config(
        &[rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap()],
        None,
    )
}

fn only_action(body: &Value) -> &Value {
    &body["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("no actions: {body}"))[0]
}

/// The output key a POLICY_CHANGE hands the agent, and the policy's revision id.
fn output_key(body: &Value) -> (String, String) {
    let action = only_action(body);
    let key = action["data"]["policy"]["outputs"]["default"]["api_key"]
        .as_str()
        .unwrap_or_else(|| panic!("no output key: {body}"))
        .to_owned();
    (key, action["id"].as_str().unwrap().to_owned())
}

#[test]
fn an_elasticsearch_session_at_trace_level_logs_no_secret() {
    let es = es_standin::StandIn::start(es_standin::Options {
        refresh_interval: Some(Duration::from_millis(100)),
        ..es_standin::Options::default()
    })
    .unwrap();
    es.seed()
        .policy_with_data(
            "secret-policy",
            json!({"id": "secret-policy", "revision": 1,
                   "outputs": {"default": {"type": "elasticsearch", "hosts": [es.url()]}},
                   "output_permissions": {"default": {"_elastic_agent_checks": {"cluster": ["monitor"]}}},
                   "inputs": []}),
        )
        .unwrap();
    let enrollment = es
        .seed()
        .enrollment_key("secret-policy", "Default")
        .unwrap();
    let service_token = es.service_token();
    let server = FleetEdge::start(&[
        "--fleet-server-es",
        &es.url(),
        "--fleet-server-service-token",
        &service_token,
        "--log-level",
        "trace",
        "--checkin-long-poll",
        "2s",
        "--checkin-jitter",
        "0s",
    ]);
    let (mut agent, _) = Agent::enroll(server.addr, roots(&server), &enrollment.api_key, &[]);
    let (resp, body) = agent.checkin();
    assert_eq!(resp.status, 200);
    let (output, action_id) = output_key(&body);
    agent.apply_policy(only_action(&body));
    let (resp, acked) = agent.ack(&[(&action_id, "POLICY_CHANGE")]);
    assert_eq!(resp.status, 200, "{acked}");
    let (resp, _) = agent.checkin();
    assert_eq!(resp.status, 200);

    let mut secrets = Secrets::new();
    secrets.encoded("service token", &service_token);
    secrets.encoded("enrollment token", &enrollment.api_key);
    secrets.encoded("agent access key", &agent.access_key);
    secrets.id_key("output key", &output);
    secrets.assert_absent(&server.stderr_log());
}

#[test]
fn an_embedded_session_and_a_management_call_at_trace_level_log_no_secret() {
    let server = FleetEdge::start(&[
        "--log-level",
        "trace",
        "--checkin-long-poll",
        "2s",
        "--checkin-jitter",
        "0s",
    ]);
    server
        .wait_for_log("management API on", Duration::from_secs(20))
        .expect("management API announced");
    let token = server
        .wait_for_log("--enrollment-token=", Duration::from_secs(20))
        .as_deref()
        .and_then(|l| l.split("--enrollment-token=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("quick start names the token")
        .to_owned();
    let (mut agent, _) = Agent::enroll(server.addr, roots(&server), &token, &[]);
    let (resp, body) = agent.checkin();
    assert_eq!(resp.status, 200);
    let action_id = only_action(&body)["id"].as_str().unwrap().to_owned();
    agent.apply_policy(only_action(&body));
    let (resp, _) = agent.ack(&[(&action_id, "POLICY_CHANGE")]);
    assert_eq!(resp.status, 200);

    // A management call with the admin token: create an enrollment token through the CLI.
    let dir = server.data_dir.to_str().unwrap().to_owned();
    let (status, out, err) = run_to_exit(
        &[
            "tokens",
            "create",
            "--policy",
            "fleet-edge-default",
            "--data-dir",
            &dir,
        ],
        &[],
    );
    assert!(status.success(), "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let created = created["item"]["api_key"].as_str().unwrap().to_owned();
    let admin = std::fs::read_to_string(server.data_dir.join("admin-token")).unwrap();
    // The management answer is logged (debug) before it is sent: wait until the reader has it.
    server
        .wait_for_log("Admin answered", Duration::from_secs(10))
        .expect("the management request is in the trace log");

    let mut secrets = Secrets::new();
    secrets.encoded("enrollment token", &token);
    secrets.encoded("agent access key", &agent.access_key);
    secrets.plain("admin token", admin.trim());
    secrets.plain(
        "admin token (Bearer header)",
        &format!("Bearer {}", admin.trim()),
    );
    secrets.encoded("created enrollment token", &created);
    secrets.assert_absent(&server.stderr_log());
}

/// The search itself: a secret split over ureq-style hex-dump lines, or written as spaced upper
/// hex, or plainly, is found; a log without it passes.
#[test]
fn the_search_finds_secrets_in_every_form() {
    let secret = "c2VjcmV0LWlkOnNlY3JldC1rZXktMTIzNDU2Nzg5MA==";
    let mut secrets = Secrets::new();
    secrets.encoded("token", secret);
    let line = |msg: &str| format!("2026-12-03T05:55:09.634Z TRACE ureq_proto::util: {msg}\n");
    // ureq-proto's Row: 16 bytes as `xxxx ` pairs, then the printable column.
    let dump: String = format!("Authorization: ApiKey {secret}\r\n")
        .as_bytes()
        .chunks(16)
        .map(|row| {
            let mut hex = String::new();
            for i in 0..16 {
                match row.get(i) {
                    Some(b) => hex.push_str(&format!("{b:02x}")),
                    None => hex.push_str("--"),
                }
                if i % 2 == 1 {
                    hex.push(' ');
                }
            }
            let text: String = row
                .iter()
                .map(|b| {
                    if b.is_ascii_graphic() {
                        *b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            line(&format!("{hex} {text}"))
        })
        .collect();
    let base = line(" DEBUG marker") + &line("POST /api/fleet/agents/enroll -> 200");
    let spaced_upper: Vec<String> = "secret-key-1234567890"
        .bytes()
        .map(|b| format!("{b:02X}"))
        .collect();
    for leaked in [dump, line(secret), line(&spaced_upper.join(" "))] {
        let log = format!("{base}{leaked}");
        let found = std::panic::catch_unwind(|| secrets.assert_absent(&log));
        assert!(found.is_err(), "not found in:\n{leaked}");
    }
    secrets.assert_absent(&base);
}
