//! The management API and the CLI that drives it, against the real binary in embedded mode:
//! tokens, policies, agents with their status, actions and their results, and the bearer token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::agent::{body_json, enroll_body, once, raw_request, Agent, VERSION};
use crate::support::client::tls_config;
use crate::support::{run_to_exit, Client, FleetEdge};

pub(crate) fn cli(server: &FleetEdge, args: &[&str]) -> (i32, String, String) {
    let dir = server.data_dir.to_str().unwrap().to_owned();
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--data-dir", &dir]);
    let (status, out, err) = run_to_exit(&full, &[]);
    (status.code().unwrap_or(-1), out, err)
}

pub(crate) fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

pub(crate) fn roots(server: &FleetEdge) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(server.data_dir.join("certs/ca.crt")).unwrap();
    tls_config(
        &[rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap()],
        None,
    )
}

pub(crate) fn only_action(body: &Value) -> &Value {
    &body["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("no actions: {body}"))[0]
}

#[test]
fn operator_workflow_through_the_cli() {
    let server = FleetEdge::start(&["--checkin-long-poll", "30s", "--checkin-jitter", "0s"]);
    server
        .wait_for_log("management API on", Duration::from_secs(20))
        .expect("management API announced");

    // tokens: create for an existing policy, refuse an unknown one, list
    let (code, out, err) = cli(
        &server,
        &[
            "tokens",
            "create",
            "--policy",
            "fleet-edge-default",
            "--name",
            "site-7",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let token = json_of(&out)["item"]["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, _, err) = cli(&server, &["tokens", "create", "--policy", "no-such-policy"]);
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
    let (_, out, _) = cli(&server, &["tokens", "list"]);
    assert!(json_of(&out)["total"].as_u64().unwrap() >= 2);

    // an agent enrolls with the new token and shows up
    let (mut agent, _) = Agent::enroll(server.addr, roots(&server), &token, &["site-7"]);
    let (_, body) = agent.checkin();
    agent.apply_policy(only_action(&body));
    agent.ack(&[("policy:fleet-edge-default:1", "POLICY_CHANGE")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out, _) = cli(&server, &["agents"]);
        let line = out
            .lines()
            .find(|l| l.starts_with(&agent.id))
            .unwrap_or_default()
            .to_owned();
        if line.contains("online") {
            assert!(line.contains("fleet-edge-default"), "{line}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "agent never listed online:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // policy apply: a new revision reaches the parked agent
    let file = server.data_dir.join("new-policy.json");
    let mut policy: Value = serde_json::from_slice(
        &std::fs::read(server.data_dir.join("policies/fleet-edge-default.json")).unwrap(),
    )
    .unwrap();
    policy["inputs"] = serde_json::json!([{"id": "from-cli", "type": "logfile", "streams": []}]);
    std::fs::write(&file, serde_json::to_vec(&policy).unwrap()).unwrap();
    let parked = std::thread::spawn(move || {
        let (resp, body) = agent.checkin();
        (agent, resp.status, body)
    });
    // Parked or not yet: either way revision 2 is what the checkin must return.
    let (code, out, err) = cli(&server, &["policy", "apply", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_of(&out)["item"]["revision"], 2);
    let (mut agent, status, body) = parked.join().unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        only_action(&body)["data"]["policy"]["inputs"][0]["id"],
        "from-cli"
    );
    agent.apply_policy(only_action(&body));

    // unenroll: an UNENROLL action reaches the agent; its ack shows in the results
    let (code, out, err) = cli(&server, &["unenroll", &agent.id]);
    assert_eq!(code, 0, "{err}");
    let action_id = json_of(&out)["item"]["action_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) = agent.checkin();
    assert_eq!(only_action(&body)["type"], "UNENROLL");
    agent.ack(&[(action_id.as_str(), "UNENROLL")]);
    let (_, out, _) = cli(&server, &["results", &action_id]);
    assert_eq!(json_of(&out)["items"][0]["agent_id"], agent.id.as_str());
    let (_, out, _) = cli(&server, &["agents"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&agent.id) && l.contains("unenrolled")),
        "{out}"
    );
}

/// Revoking a token invalidates its API key behind the store interface; the server's key cache
/// must forget it at once, or a token used a moment ago would still pass the key check.
#[test]
fn a_revoked_token_is_refused_at_once_though_it_was_just_used() {
    let server = FleetEdge::start(&[]);
    server
        .wait_for_log("management API on", Duration::from_secs(20))
        .expect("management API announced");
    let (code, out, err) = cli(
        &server,
        &["tokens", "create", "--policy", "fleet-edge-default"],
    );
    assert_eq!(code, 0, "{err}");
    let item = json_of(&out)["item"].clone();
    let token = item["api_key"].as_str().unwrap().to_owned();
    Agent::enroll(server.addr, roots(&server), &token, &[]);

    let (code, _, err) = cli(&server, &["tokens", "revoke", item["id"].as_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let raw = raw_request(
        "POST",
        "/api/fleet/agents/enroll",
        Some(&token),
        &serde_json::to_vec(&enroll_body(&[])).unwrap(),
        false,
        &format!("Elastic Agent v{VERSION}"),
    );
    let resp = once(server.addr, roots(&server), &raw);
    assert_eq!(
        (resp.status, body_json(&resp)["message"].clone()),
        (401, Value::from("ApiKey not enabled")),
        "{:?}",
        String::from_utf8_lossy(&resp.body)
    );
}

#[test]
fn the_management_api_requires_the_admin_token() {
    let server = FleetEdge::start(&[]);
    server
        .wait_for_log("management API on", Duration::from_secs(20))
        .unwrap();
    let url = std::fs::read_to_string(server.data_dir.join("management-url")).unwrap();
    let addr: std::net::SocketAddr = url.trim().trim_start_matches("http://").parse().unwrap();
    assert!(addr.ip().is_loopback());
    let mut c = Client::plain(addr).unwrap();
    let resp = c
        .request(b"GET /api/fleet/agents HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(resp.status, 401);
    let resp = c
        .request(
            b"GET /api/fleet/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n\r\n",
        )
        .unwrap();
    assert_eq!(resp.status, 401);
    let token = std::fs::read_to_string(server.data_dir.join("admin-token")).unwrap();
    let req = format!(
        "GET /api/fleet/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        token.trim()
    );
    assert_eq!(c.request(req.as_bytes()).unwrap().status, 200);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.data_dir.join("admin-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn cli_without_a_running_server_says_so() {
    let (status, _, err) = run_to_exit(&["agents", "--data-dir", "/nonexistent/fleet-edge"], &[]);
    assert_eq!(status.code(), Some(1));
    assert!(
        err.contains(
            "Is fleet-edge running in embedded mode with --data-dir /nonexistent/fleet-edge?"
        ),
        "{err}"
    );
    assert!(
        err.contains("in Elasticsearch mode (--fleet-server-es) agents are managed with Kibana's Fleet UI or API"),
        "{err}"
    );
}

/// `migrate` sends Fleet's MIGRATE action (the way off a box to another Fleet Server without
/// touching the agent's host); its ack unenrolls the agent here (fleet-protocol.md §4.4).
#[test]
fn migrate_sends_the_target_and_token_and_its_ack_unenrolls_the_agent() {
    let server = FleetEdge::start(&["--checkin-long-poll", "1s", "--checkin-jitter", "0s"]);
    let (_, out, _) = cli(&server, &["tokens", "list"]);
    let token = json_of(&out)["items"][0]["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut agent, _) = Agent::enroll(server.addr, roots(&server), &token, &[]);
    let (_, body) = agent.checkin();
    agent.apply_policy(only_action(&body));
    agent.ack(&[("policy:fleet-edge-default:1", "POLICY_CHANGE")]);

    let (code, _, err) = cli(
        &server,
        &[
            "migrate",
            &agent.id,
            "--uri",
            "fleet.example",
            "--enrollment-token",
            "t",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("http(s) URL"), "{err}");
    let (code, out, err) = cli(
        &server,
        &[
            "migrate",
            &agent.id,
            "--uri",
            "https://fleet.example.com:8220",
            "--enrollment-token",
            "a2liYW5hLXRva2Vu",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let action_id = json_of(&out)["item"]["action_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) = agent.checkin();
    let action = only_action(&body);
    assert_eq!(action["type"], "MIGRATE", "{body}");
    assert_eq!(
        action["data"]["target_uri"],
        "https://fleet.example.com:8220"
    );
    assert_eq!(action["data"]["enrollment_token"], "a2liYW5hLXRva2Vu");
    agent.ack(&[(action_id.as_str(), "MIGRATE")]);
    let (resp, _) = agent.checkin();
    assert_eq!(resp.status, 401, "a migrated agent is unenrolled here");
}
