//! Audit lines for refused requests (issue 18 item 6), from the real binary's log: a 401 for a
//! wrong agent key, a missing `Authorization` and a wrong management token, and a version
//! refusal, each one `info` line with the ECS fields; at most five lines a minute per client;
//! and no key, token or secret of any request in the log.

use std::time::{Duration, Instant};

use base64::Engine;

use crate::management::{cli, json_of, roots};
use crate::support::agent::{enroll_body, once, raw_request, Agent};
use crate::support::{Client, FleetEdge};

const WAIT: Duration = Duration::from_secs(30);

/// The audit lines of `action` in the log so far.
fn lines_of(server: &FleetEdge, action: &str) -> Vec<String> {
    let needle = format!("event.action={action} ");
    server
        .stderr_log()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_owned)
        .collect()
}

#[test]
fn refusals_are_audited_with_ecs_fields_rate_limited_and_without_secrets() {
    let server = FleetEdge::start(&[]);
    server
        .wait_for_log("management API on", WAIT)
        .expect("management API announced");
    let (_, out, _) = cli(&server, &["tokens", "list"]);
    let token = json_of(&out)["items"][0]["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (agent, _) = Agent::enroll(server.addr, roots(&server), &token, &[]);
    let started = Instant::now();

    // A wrong access key on a checkin (a real key id, a wrong secret).
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&agent.access_key)
        .unwrap();
    let key_id = String::from_utf8(decoded)
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let wrong_secret = "Wr0ngSecretWr0ngSecret";
    let wrong_key =
        base64::engine::general_purpose::STANDARD.encode(format!("{key_id}:{wrong_secret}"));
    let checkin = |key: &str| {
        raw_request(
            "POST",
            &format!("/api/fleet/agents/{}/checkin", agent.id),
            Some(key),
            br#"{"status":"online"}"#,
            false,
            "Elastic Agent v9.2.1",
        )
    };
    assert_eq!(
        once(server.addr, roots(&server), &checkin(&wrong_key)).status,
        401
    );
    // No Authorization at all on an enroll.
    let body = serde_json::to_vec(&enroll_body(&[])).unwrap();
    let anonymous = raw_request(
        "POST",
        "/api/fleet/agents/enroll",
        None,
        &body,
        false,
        "Elastic Agent v9.2.1",
    );
    assert_eq!(once(server.addr, roots(&server), &anonymous).status, 401);
    // A real enrollment token from an agent newer than the server: a version refusal.
    let too_new = raw_request(
        "POST",
        "/api/fleet/agents/enroll",
        Some(&token),
        &body,
        false,
        "Elastic Agent v99.0.0",
    );
    assert_eq!(once(server.addr, roots(&server), &too_new).status, 400);
    // A wrong bearer on the management API.
    let url = std::fs::read_to_string(server.data_dir.join("management-url")).unwrap();
    let management: std::net::SocketAddr =
        url.trim().trim_start_matches("http://").parse().unwrap();
    let wrong_bearer = "NotTheAdminTokenNotTheAdminToken";
    let resp = Client::plain(management)
        .unwrap()
        .request(
            format!("GET /api/fleet/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {wrong_bearer}\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(resp.status, 401);

    assert!(
        server.wait_for_log_count("event.action=agent-auth-refused ", 2, WAIT),
        "{}",
        server.stderr_log()
    );
    for action in ["agent-version-refused", "management-auth-refused"] {
        assert!(server
            .wait_for_log(&format!("event.action={action} "), WAIT)
            .is_some());
    }
    let mut refused = lines_of(&server, "agent-auth-refused");
    refused.extend(lines_of(&server, "management-auth-refused"));
    let line_for = |path: &str| {
        refused
            .iter()
            .find(|l| l.contains(&format!(" url.path={path} ")))
            .unwrap_or_else(|| panic!("no line for {path}:\n{refused:#?}"))
            .clone()
    };
    let wrong = line_for(&format!("/api/fleet/agents/{}/checkin", agent.id));
    for field in [
        " INFO ",
        "event.outcome=failure",
        "event.duration=",
        "http.request.method=POST",
        "http.response.status_code=401",
        "client.ip=127.0.0.1",
        "error.code=ErrUnauthorized",
        "error.message=",
    ] {
        assert!(wrong.contains(field), "{field} not in {wrong}");
    }
    assert!(line_for("/api/fleet/agents/enroll").contains("error.code=ErrNoAuthHeader"));
    assert!(line_for("/api/fleet/agents").contains("http.request.method=GET"));
    let version = &lines_of(&server, "agent-version-refused")[0];
    for field in [
        "http.response.status_code=400",
        "url.path=/api/fleet/agents/enroll",
        "error.code=UnsupportedVersion",
        "client.ip=127.0.0.1",
    ] {
        assert!(version.contains(field), "{field} not in {version}");
    }

    // Rate-limited per client: 20 more refusals from this client, at most five lines a minute.
    for _ in 0..20 {
        assert_eq!(
            once(server.addr, roots(&server), &checkin(&wrong_key)).status,
            401
        );
    }
    // A line logged after all of them (an operator action's audit line) orders the log: once it
    // is read, every refusal's line written before it has been read too.
    let (code, _, err) = cli(&server, &["settings", &agent.id, "--log-level", "debug"]);
    assert_eq!(code, 0, "{err}");
    assert!(server
        .wait_for_log("event.action=fleet-action-", WAIT)
        .is_some());
    let minutes = started.elapsed().as_secs() / 60 + 1;
    // One budget per client for both kinds.
    let logged = (lines_of(&server, "agent-auth-refused").len()
        + lines_of(&server, "management-auth-refused").len()
        + lines_of(&server, "agent-version-refused").len()) as u64;
    assert!(
        logged <= 5 * minutes && logged >= 5,
        "{logged} lines for 24 refusals in {minutes} minute(s)"
    );

    let log = server.stderr_log();
    for secret in [
        wrong_secret,
        wrong_key.as_str(),
        wrong_bearer,
        token.as_str(),
        agent.access_key.as_str(),
    ] {
        assert!(!log.contains(secret), "a secret is in the log: {secret}");
    }
}
