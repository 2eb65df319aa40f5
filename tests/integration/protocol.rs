//! The agent protocol as a real Elastic Agent drives it (agent-client.md §7, §8;
//! fleet-protocol.md §14), run against every store through the `Fixture` seam: the in-process
//! server over the store, seeded the way Kibana would seed it.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use fleet_edge::backend::ApiKey;
use fleet_edge::model::{Action, PolicyDoc};

use crate::support::agent::{body_json, once, raw_request, Agent, VERSION};
use crate::support::inproc::{InProc, Options};
pub(crate) use crate::support::stores::{es, Fixture};

pub fn policy(id: &str, revision: i64, roles: Value) -> PolicyDoc {
    PolicyDoc {
        timestamp: "2026-08-21T18:59:00.000Z".into(),
        policy_id: id.into(),
        revision_idx: revision,
        data: json!({
            "id": id, "revision": revision,
            "agent": {"monitoring": {"enabled": false, "logs": false, "metrics": false}},
            "fleet": {"hosts": ["https://fleet.example.com:8220"]},
            "outputs": {"default": {"type": "elasticsearch", "hosts": ["https://es.example.com:9200"]}},
            "output_permissions": {"default": roles},
            "inputs": []
        }),
        ..PolicyDoc::default()
    }
}

pub(crate) fn checks() -> Value {
    json!({"_elastic_agent_checks": {"cluster": ["monitor"]}})
}

pub(crate) fn start(fixture: &dyn Fixture, long_poll: &'static str) -> InProc {
    InProc::start(
        fixture.store(),
        Options {
            long_poll,
            ..Options::default()
        },
    )
}

pub(crate) fn only_action(body: &Value) -> &Value {
    let actions = body["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("no actions in {body}"));
    assert_eq!(actions.len(), 1, "{body}");
    &actions[0]
}

/// agent-client.md §7, steps 1-9, then the 401 after unenroll.
fn golden_exchange(fixture: Box<dyn Fixture>) {
    fixture.add_policy(policy("edge-policy", 1, checks()));
    let token = fixture.add_token("edge-policy");
    let server = start(&*fixture, "3s");

    // 1. enroll
    let (mut agent, enrolled) = Agent::enroll(
        server.addr,
        server.tls(),
        &token.encoded(),
        &["edge", "site-7"],
    );
    assert_eq!(enrolled["item"]["policy_id"], "edge-policy");
    assert_eq!(enrolled["item"]["tags"], json!(["edge", "site-7"]));

    // 2. first checkin: POLICY_CHANGE at once, output key minted with the policy's roles
    let started = Instant::now();
    let (resp, body) = agent.checkin();
    assert_eq!(resp.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at once"
    );
    assert_eq!(body["ack_token"], "");
    let action = only_action(&body);
    assert_eq!(action["type"], "POLICY_CHANGE");
    assert_eq!(action["id"], "policy:edge-policy:1");
    assert_eq!(action["agent_id"], agent.id.as_str());
    assert_eq!(action["input_type"], "");
    let delivered = &action["data"]["policy"];
    assert_eq!(delivered["revision"], 1);
    let output_key = delivered["outputs"]["default"]["api_key"].clone();
    if fixture.store().mints_output_keys() {
        let (kid, secret) = output_key
            .as_str()
            .unwrap()
            .split_once(':')
            .expect("id:key, not base64");
        let info = fixture
            .store()
            .authenticate(&ApiKey {
                id: kid.into(),
                secret: secret.into(),
            })
            .unwrap()
            .unwrap();
        assert!(info.enabled);
        assert_eq!(info.metadata["type"], "output");
        // Elasticsearch normalises descriptors (adds empty lists, metadata): compare what was granted.
        let roles = fixture.store().api_key_roles(kid).unwrap().unwrap();
        assert_eq!(
            roles["_elastic_agent_checks"]["cluster"],
            json!(["monitor"]),
            "{roles}"
        );
    } else {
        assert_eq!(
            output_key,
            Value::Null,
            "the embedded store sends outputs as written"
        );
    }
    agent.apply_policy(action);

    // 3a. status probe with the access key on a new connection: 200 with the version block
    let probe = agent.status_probe();
    assert_eq!(probe.status, 200);
    let probe = body_json(&probe);
    assert_eq!(probe["status"], "HEALTHY");
    assert!(probe["version"]["number"].is_string(), "long form: {probe}");

    // 3b. ack
    let (resp, ack) = agent.ack(&[("policy:edge-policy:1", "POLICY_CHANGE")]);
    assert_eq!(resp.status, 200);
    assert_eq!(
        ack,
        json!({"action": "acks", "items": [{"message": "OK", "status": 200}]})
    );

    // 4. idle long poll: held for the poll duration, then an empty answer
    let started = Instant::now();
    let (resp, body) = agent.checkin();
    assert_eq!(resp.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "held, not answered at once: {:?}",
        started.elapsed()
    );
    assert_eq!(body, json!({"ack_token": "", "action": "checkin"}));

    // 5. a new revision wakes the parked poll
    let parked = park(agent);
    server.wait_parked(1);
    fixture.add_policy(policy("edge-policy", 2, checks()));
    let (mut agent, status, body) = parked.join().unwrap();
    assert_eq!(status, 200);
    let action = only_action(&body);
    assert_eq!(action["id"], "policy:edge-policy:2");
    assert_eq!(action["data"]["policy"]["revision"], 2);
    assert_eq!(
        action["data"]["policy"]["outputs"]["default"]["api_key"], output_key,
        "same key, same permissions"
    );
    agent.apply_policy(action);

    // 6. ack revision 2
    let (resp, _) = agent.ack(&[("policy:edge-policy:2", "POLICY_CHANGE")]);
    assert_eq!(resp.status, 200);

    // 8. unenroll while parked: delivered live, with the document id as ack token
    let agent_id = agent.id.clone();
    let parked = park(agent);
    server.wait_parked(1);
    let unenroll = fixture.add_action(Action {
        action_id: "6d1f3a52-7c44-4b8e-9e0f-1a2b3c4d5e6f".into(),
        action_type: "UNENROLL".into(),
        agents: vec![agent_id],
        timestamp: "2026-08-21T19:20:00.000Z".into(),
        ..Action::default()
    });
    let (mut agent, status, body) = parked.join().unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["ack_token"], unenroll.doc_id.as_str());
    let action = only_action(&body);
    assert_eq!(action["type"], "UNENROLL");
    assert_eq!(action["data"], Value::Null);
    assert_eq!(action["created_at"], "2026-08-21T19:20:00.000Z");
    assert_eq!(
        agent.ack_token, unenroll.doc_id,
        "agent saved the token first"
    );

    // 9. ack UNENROLL → keys invalidated, agent inactive; the next checkin is refused
    let (resp, _) = agent.ack(&[(unenroll.action_id.as_str(), "UNENROLL")]);
    assert_eq!(resp.status, 200);
    let (resp, _) = agent.checkin();
    assert_eq!(resp.status, 401, "next checkin after unenroll");
}

/// Starts a checkin on another thread (it parks); join for (agent, status, body).
pub(crate) fn park(mut agent: Agent) -> std::thread::JoinHandle<(Agent, u16, Value)> {
    std::thread::spawn(move || {
        let (resp, body) = agent.checkin();
        (agent, resp.status, body)
    })
}

pub(crate) fn enrolled(fixture: &dyn Fixture, server: &InProc) -> Agent {
    let token = fixture.add_token("edge-policy");
    Agent::enroll(server.addr, server.tls(), &token.encoded(), &[]).0
}

pub(crate) fn setup(
    fixture: Box<dyn Fixture>,
    long_poll: &'static str,
) -> (Box<dyn Fixture>, InProc) {
    fixture.add_policy(policy("edge-policy", 1, checks()));
    let server = start(&*fixture, long_poll);
    (fixture, server)
}

pub(crate) fn error_of(resp: &crate::support::HttpResponse) -> (u16, String) {
    (
        resp.status,
        body_json(resp)["error"].as_str().unwrap_or("").to_owned(),
    )
}

/// §14 check 2.
fn check_02_auth_errors(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "2s");
    let mut a = enrolled(&*fixture, &server);
    let b = enrolled(&*fixture, &server);
    let ua = format!("Elastic Agent v{VERSION}");
    let checkin = |auth: Option<&str>, id: &str| {
        let raw = raw_request(
            "POST",
            &format!("/api/fleet/agents/{id}/checkin"),
            auth,
            br#"{"status":"online"}"#,
            false,
            &ua,
        );
        once(server.addr, server.tls(), &raw)
    };
    assert_eq!(
        error_of(&checkin(None, &a.id)),
        (401, "ErrNoAuthHeader".into())
    );
    let raw = b"POST /api/fleet/agents/x/checkin HTTP/1.1\r\nHost: x\r\nUser-Agent: Elastic Agent v9.2.1\r\nAuthorization: Bearer x\r\nContent-Length: 2\r\n\r\n{}";
    assert_eq!(
        error_of(&once(server.addr, server.tls(), raw)),
        (400, "ErrMalformedHeader".into())
    );
    assert_eq!(
        error_of(&checkin(Some("!!notbase64"), &a.id)),
        (401, "ErrInvalidToken".into())
    );
    use base64::Engine;
    let nocolon = base64::engine::general_purpose::STANDARD.encode("nocolon");
    assert_eq!(
        error_of(&checkin(Some(&nocolon), &a.id)),
        (400, "ErrMalformedToken".into())
    );
    let unknown = base64::engine::general_purpose::STANDARD.encode("unknown-id:secret");
    assert_eq!(
        error_of(&checkin(Some(&unknown), &a.id)),
        (401, "ErrUnauthorized".into())
    );
    assert_eq!(
        error_of(&checkin(Some(&a.access_key), &b.id)),
        (403, "ErrAgentIdentity".into()),
        "another agent's path"
    );
    let token = fixture.add_token("edge-policy");
    assert_eq!(
        error_of(&checkin(Some(&token.encoded()), &a.id)),
        (403, "ErrAgentIdentity".into()),
        "enrollment token on checkin"
    );
    let body = body_json(&checkin(None, &a.id));
    assert_eq!(
        body,
        json!({"statusCode": 401, "error": "ErrNoAuthHeader", "message": "no authorization header"})
    );
    // unenrolled agent → 401 ErrAgentInactive
    let (_, first) = a.checkin();
    a.apply_policy(only_action(&first));
    let unenroll = fixture.add_action(Action {
        action_id: "u".into(),
        action_type: "UNENROLL".into(),
        agents: vec![a.id.clone()],
        ..Action::default()
    });
    let (_, body) = a.checkin();
    assert_eq!(only_action(&body)["type"], "UNENROLL");
    a.ack(&[(unenroll.action_id.as_str(), "UNENROLL")]);
    assert_eq!(error_of(&a.checkin().0), (401, "ErrAgentInactive".into()));
}

/// §14 check 3.
fn check_03_user_agent_rules(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "2s");
    let token = fixture.add_token("edge-policy").encoded();
    let body = serde_json::to_vec(&crate::support::agent::enroll_body(&[])).unwrap();
    let enroll = |ua: &str| {
        once(
            server.addr,
            server.tls(),
            &raw_request(
                "POST",
                "/api/fleet/agents/enroll",
                Some(&token),
                &body,
                false,
                ua,
            ),
        )
    };
    assert_eq!(
        error_of(&enroll("elastic-agent 9.0.0")),
        (400, "InvalidUserAgent".into())
    );
    assert_eq!(
        error_of(&enroll("Elastic Agent v9.7.0")),
        (400, "UnsupportedVersion".into()),
        "minor newer than the server"
    );
    assert_eq!(
        enroll("Elastic Agent v9.6.7").status,
        200,
        "newer patch accepted"
    );
    assert_eq!(
        enroll("Elastic Agent 9.2.1-SNAPSHOT").status,
        200,
        "suffix accepted"
    );
    // not checked on acks
    let mut a = enrolled(&*fixture, &server);
    let raw = raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/acks", a.id),
        Some(&a.access_key.clone()),
        br#"{"events":[]}"#,
        false,
        "curl/8",
    );
    assert_eq!(a.send(&raw).status, 200);
}

/// §14 check 4.
fn check_04_elastic_api_version(fixture: Box<dyn Fixture>) {
    let (_fixture, server) = setup(fixture, "2s");
    let get = |version: Option<&str>| {
        let extra = version
            .map(|v| format!("Elastic-Api-Version: {v}\r\n"))
            .unwrap_or_default();
        let raw = format!("GET /api/status HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        once(server.addr, server.tls(), raw.as_bytes())
    };
    assert_eq!(get(None).header("elastic-api-version"), Some("2023-06-01"));
    assert_eq!(
        get(Some("2023-06-01")).header("elastic-api-version"),
        Some("2023-06-01")
    );
    let bad = get(Some("bad"));
    assert_eq!(error_of(&bad), (400, "ErrInvalidAPIVersionFormat".into()));
    let old = get(Some("2020-01-01"));
    assert_eq!(error_of(&old), (400, "ErrUnsupportedAPIVersion".into()));
    assert_eq!(old.header("elastic-api-version"), Some("2023-06-01"));
}

/// §14 check 8.
fn check_08_ack_token_round_trip_and_fallback_to_the_stored_position(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let mut a = enrolled(&*fixture, &server);
    let (_, first) = a.checkin();
    a.apply_policy(only_action(&first));
    let up = fixture.add_action(Action {
        action_id: "upg-1".into(),
        action_type: "UPGRADE".into(),
        agents: vec![a.id.clone()],
        data: json!({"version": "9.2.2"}),
        ..Action::default()
    });
    let (_, body) = a.checkin();
    assert_eq!(only_action(&body)["id"], "upg-1");
    assert_eq!(a.ack_token, up.doc_id);
    let (_, body) = a.checkin();
    assert!(
        body.get("actions").is_none(),
        "not re-delivered after the token: {body}"
    );
    // The position the token resolved to reaches the store with the next bulk flush...
    let deadline = Instant::now() + Duration::from_secs(10);
    while fixture.store().agent(&a.id).unwrap().unwrap().action_seq() != up.seq_no {
        assert!(Instant::now() < deadline, "checkin state never flushed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...so an agent whose token is unknown (a restart elsewhere) resumes there, not at the start.
    a.ack_token = "token-from-another-server".into();
    let (_, body) = a.checkin();
    assert!(
        body.get("actions").is_none(),
        "fell back to the stored position: {body}"
    );
}

/// §14 check 9.
fn check_09_implicit_policy_ack(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let mut a = enrolled(&*fixture, &server);
    let (_, first) = a.checkin();
    a.apply_policy(only_action(&first));
    let (_, body) = a.checkin();
    assert!(
        body.get("actions").is_none(),
        "reporting the newest revision is an ack: {body}"
    );
    a.policy_id = Some("some-other-policy".into());
    let (_, body) = a.checkin();
    assert_eq!(
        only_action(&body)["id"],
        "policy:edge-policy:1",
        "reassignment → immediate POLICY_CHANGE"
    );
    a.policy_id = Some("edge-policy".into());
    a.revision = Some(99);
    let (_, body) = a.checkin();
    assert_eq!(
        only_action(&body)["id"],
        "policy:edge-policy:1",
        "revision above the newest → re-delivered"
    );
}

/// §14 check 10.
fn check_10_acks(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let mut a = enrolled(&*fixture, &server);
    let (resp, body) = a.ack(&[("no-such-action", "UPGRADE")]);
    assert_eq!(resp.status, 404);
    assert_eq!(
        body,
        json!({"action": "acks", "errors": true, "items": [{"status": 404, "message": "Not Found"}]})
    );
    let settings = fixture.add_action(Action {
        action_id: "set-1".into(),
        action_type: "SETTINGS".into(),
        agents: vec![a.id.clone()],
        data: json!({"log_level": "debug"}),
        ..Action::default()
    });
    let (resp, body) = a.ack(&[(settings.action_id.as_str(), "SETTINGS")]);
    assert_eq!(resp.status, 200);
    assert!(body.get("errors").is_none());
    let (resp, _) = a.ack(&[(settings.action_id.as_str(), "SETTINGS")]);
    assert_eq!(resp.status, 200, "a repeated ack is idempotent");
    let (resp, _) = a.ack(&[("policy:edge-policy:1", "POLICY_CHANGE")]);
    assert_eq!(resp.status, 200);
    assert_eq!(
        fixture
            .store()
            .agent(&a.id)
            .unwrap()
            .unwrap()
            .policy_revision_idx,
        1
    );
}

/// §14 check 12.
fn check_12_gzip_both_ways(fixture: Box<dyn Fixture>) {
    let mut doc = policy("edge-policy", 1, checks());
    doc.data["inputs"] = json!([{"id": "logs", "type": "logfile", "streams": (0..20).map(|i| json!({"id": format!("stream-{i}"), "paths": ["/var/log/*.log"]})).collect::<Vec<_>>()}]);
    fixture.add_policy(doc);
    let server = start(&*fixture, "1s");
    let mut a = enrolled(&*fixture, &server);
    let (resp, body) = a.checkin();
    assert_eq!(
        resp.header("content-encoding"),
        Some("gzip"),
        "large response to an agent accepting gzip"
    );
    assert_eq!(only_action(&body)["type"], "POLICY_CHANGE");
    let plain = format!(
        "POST /api/fleet/agents/{}/checkin HTTP/1.1\r\nHost: x\r\nUser-Agent: Elastic Agent v9.2.1\r\nAuthorization: ApiKey {}\r\nContent-Length: 19\r\n\r\n{{\"status\":\"online\"}}",
        a.id, a.access_key
    );
    let resp = once(server.addr, server.tls(), plain.as_bytes());
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-encoding"),
        None,
        "no Accept-Encoding: plain"
    );
    assert_eq!(body_json(&resp)["actions"][0]["type"], "POLICY_CHANGE");
}

/// §14 check 13.
fn check_13_action_filtering_and_normalisation(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let mut a = enrolled(&*fixture, &server);
    let (_, first) = a.checkin();
    a.apply_policy(only_action(&first));
    let mk = |id: &str, kind: &str, expiration: &str, data: Value| Action {
        action_id: id.into(),
        action_type: kind.into(),
        agents: vec![a.id.clone()],
        expiration: expiration.into(),
        data,
        timestamp: "2026-01-01T00:00:00.000Z".into(),
        ..Action::default()
    };
    fixture.add_action(mk("tags", "UPDATE_TAGS", "", json!({})));
    fixture.add_action(mk("pc", "POLICY_CHANGE", "", json!({})));
    fixture.add_action(mk(
        "old",
        "UPGRADE",
        "2001-01-01T00:00:00Z",
        json!({"version": "1"}),
    ));
    let mut upgrade = mk(
        "upg",
        "UPGRADE",
        "2099-01-01T00:00:00.000Z",
        json!({"version": "9.2.2", "source_uri": "https://a", "junk": true}),
    );
    upgrade.start_time = "2026-01-02T00:00:00.000Z".into();
    upgrade
        .other
        .insert("signed".into(), json!({"data": "d", "signature": "s"}));
    fixture.add_action(upgrade);
    let (_, body) = a.checkin();
    let action = only_action(&body);
    assert_eq!(action["id"], "upg");
    assert_eq!(
        action["data"],
        json!({"version": "9.2.2", "source_uri": "https://a"})
    );
    assert_eq!(action["start_time"], "2026-01-02T00:00:00.000Z");
    assert_eq!(action["expiration"], "2099-01-01T00:00:00.000Z");
    assert_eq!(action["signed"], json!({"data": "d", "signature": "s"}));
}

/// §14 check 14.
fn check_14_status_forms(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let a = enrolled(&*fixture, &server);
    let short = once(
        server.addr,
        server.tls(),
        b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(
        body_json(&short),
        json!({"name": "fleet-server", "status": "HEALTHY"})
    );
    let long = a.status_probe();
    assert_eq!(long.status, 200);
    assert!(body_json(&long)["version"]["number"].is_string());
    let bad = once(
        server.addr,
        server.tls(),
        b"GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: ApiKey eDp5\r\n\r\n",
    );
    assert_eq!(bad.status, 200, "a bad key just gets the short form");
    assert!(body_json(&bad).get("version").is_none());
}

/// §14 check 15 (headers, body limit, replace token).
fn check_15_headers_body_limit_and_replace_token(fixture: Box<dyn Fixture>) {
    let (fixture, server) = setup(fixture, "1s");
    let mut a = enrolled(&*fixture, &server);
    let resp = once(
        server.addr,
        server.tls(),
        b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc\r\n\r\n",
    );
    assert_eq!(resp.header("x-request-id"), Some("abc"));
    let big = vec![b' '; 1024 * 1024 + 10];
    let raw = raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/checkin", a.id),
        Some(&a.access_key.clone()),
        &big,
        false,
        "Elastic Agent v9.2.1",
    );
    let resp = a.send(&raw);
    assert_eq!(
        error_of(&resp),
        (400, "BadRequest".into()),
        "oversize checkin body"
    );

    let token = fixture.add_token("edge-policy").encoded();
    let enroll_with = |replace: &str| {
        let mut body = crate::support::agent::enroll_body(&[]);
        body["id"] = json!("my-fixed-id");
        body["replace_token"] = json!(replace);
        let raw = raw_request(
            "POST",
            "/api/fleet/agents/enroll",
            Some(&token),
            &serde_json::to_vec(&body).unwrap(),
            false,
            "Elastic Agent v9.2.1",
        );
        once(server.addr, server.tls(), &raw)
    };
    let first = enroll_with("rt-1");
    assert_eq!(first.status, 200);
    assert_eq!(
        error_of(&enroll_with("wrong")),
        (403, "AgentNotReplaceable".into())
    );
    let second = enroll_with("rt-1");
    assert_eq!(second.status, 200);
    assert_eq!(body_json(&second)["item"]["id"], "my-fixed-id");
    let old_key = body_json(&first)["item"]["access_api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let raw = raw_request(
        "POST",
        "/api/fleet/agents/my-fixed-id/checkin",
        Some(&old_key),
        br#"{"status":"online"}"#,
        false,
        "Elastic Agent v9.2.1",
    );
    assert_eq!(
        once(server.addr, server.tls(), &raw).status,
        401,
        "old key rejected afterwards"
    );
}

/// The golden exchange over mutual TLS.
fn golden_exchange_over_mtls(fixture: Box<dyn Fixture>) {
    fixture.add_policy(policy("edge-policy", 1, checks()));
    let token = fixture.add_token("edge-policy");
    let server = InProc::start(
        fixture.store(),
        Options {
            long_poll: "1s",
            client_auth_required: true,
            ..Options::default()
        },
    );
    assert!(
        crate::support::Client::tls(server.addr, server.tls())
            .and_then(|mut c| c.request(b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n"))
            .is_err(),
        "no client certificate → refused"
    );
    let (mut agent, _) = Agent::enroll(server.addr, server.mtls(), &token.encoded(), &[]);
    let (_, body) = agent.checkin();
    assert_eq!(only_action(&body)["type"], "POLICY_CHANGE");
    agent.apply_policy(only_action(&body));
    let (resp, _) = agent.ack(&[("policy:edge-policy:1", "POLICY_CHANGE")]);
    assert_eq!(resp.status, 200);
    assert_eq!(agent.status_probe().status, 200);
}

on_every_store!(
    golden_exchange,
    golden_exchange_over_mtls,
    check_02_auth_errors,
    check_03_user_agent_rules,
    check_04_elastic_api_version,
    check_08_ack_token_round_trip_and_fallback_to_the_stored_position,
    check_09_implicit_policy_ack,
    check_10_acks,
    check_12_gzip_both_ways,
    check_13_action_filtering_and_normalisation,
    check_14_status_forms,
    check_15_headers_body_limit_and_replace_token,
);

/// Every reference policy (`../shared/reference/fleet-server/policy-testdata`, when present)
/// becomes a POLICY_CHANGE whose output keys authenticate against the cluster.
#[test]
fn reference_policies_become_policy_changes_with_working_keys() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/reference/fleet-server/policy-testdata"
    );
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!("no ../shared: reference policies not checked");
        return;
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for path in files {
        let fixture = es();
        let es_fixture = fixture_es(&*fixture);
        let mut data: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        // Secrets as Kibana stores them; values that make the policy servable (a secret used as
        // an output type must name a type).
        for id in fleet_edge::transform::secrets::referenced_ids(&data) {
            es_fixture.rest(
                "PUT",
                &format!("/.fleet-secrets/_doc/{id}?refresh=wait_for"),
                &json!({"value": "elasticsearch"}),
            );
        }
        let policy_id = data["id"].as_str().unwrap_or("reference").to_owned();
        data["revision"] = json!(1);
        fixture.add_policy(PolicyDoc {
            timestamp: "2026-08-21T18:59:00.000Z".into(),
            policy_id: policy_id.clone(),
            revision_idx: 1,
            data,
            ..PolicyDoc::default()
        });
        let token = fixture.add_token(&policy_id);
        let server = start(&*fixture, "1s");
        let (mut agent, _) = Agent::enroll(server.addr, server.tls(), &token.encoded(), &[]);
        let (resp, body) = agent.checkin();
        assert_eq!(resp.status, 200, "{}", path.display());
        let action = only_action(&body);
        assert_eq!(action["type"], "POLICY_CHANGE", "{}", path.display());
        let outputs = action["data"]["policy"]["outputs"].as_object().unwrap();
        let mut checked = 0;
        for (name, output) in outputs {
            let Some(key) = output.get("api_key").and_then(Value::as_str) else {
                continue;
            };
            use base64::Engine;
            let auth = format!(
                "ApiKey {}",
                base64::engine::general_purpose::STANDARD.encode(key)
            );
            let resp = es_fixture
                .es
                .client()
                .request(
                    "GET",
                    "/_security/_authenticate",
                    &[("Authorization", &auth)],
                    None,
                )
                .unwrap();
            assert_eq!(
                resp.status,
                200,
                "{}: output {name} key does not authenticate",
                path.display()
            );
            checked += 1;
        }
        assert!(checked > 0, "{}: no output key to check", path.display());
    }
}

fn fixture_es(f: &dyn Fixture) -> &crate::support::stores::Es {
    f.as_any()
        .downcast_ref::<crate::support::stores::Es>()
        .expect("an Elasticsearch fixture")
}
