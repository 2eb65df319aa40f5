//! Operating a fleet without Kibana (issue 18), against the real binary in embedded mode:
//! agents driven into each status Kibana computes and shown by the API and the CLI; Kibana's
//! Fleet API bodies for policies, enrollment keys, tags, reassign, unenroll force/revoke, bulk
//! operations and action status; every operator action delivered to and acked by the agent;
//! `kbn-xsrf` required on writes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::management::{cli, json_of, only_action, roots};
use crate::support::agent::{once, raw_request, Agent, VERSION};
use crate::support::{Client, FleetEdge};

/// The management API as a Kibana client calls it.
struct Api {
    addr: std::net::SocketAddr,
    token: String,
}

impl Api {
    fn of(server: &FleetEdge) -> Api {
        server
            .wait_for_log("management API on", Duration::from_secs(30))
            .expect("management API announced");
        let url = std::fs::read_to_string(server.data_dir.join("management-url")).unwrap();
        let token = std::fs::read_to_string(server.data_dir.join("admin-token")).unwrap();
        Api {
            addr: url.trim().trim_start_matches("http://").parse().unwrap(),
            token: token.trim().to_owned(),
        }
    }

    fn send(&self, method: &str, path: &str, body: Option<&Value>, xsrf: bool) -> (u16, Value) {
        let payload = body.map(Value::to_string).unwrap_or_default();
        let xsrf = if xsrf { "kbn-xsrf: true\r\n" } else { "" };
        let raw = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n{xsrf}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
            self.token,
            payload.len()
        );
        let resp = Client::plain(self.addr)
            .unwrap()
            .request(raw.as_bytes())
            .unwrap();
        (
            resp.status,
            serde_json::from_slice(&resp.body).unwrap_or(Value::Null),
        )
    }

    fn get(&self, path: &str) -> Value {
        let (status, body) = self.send("GET", path, None, false);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, answer) = self.send(method, path, Some(&body), true);
        assert_eq!(status, 200, "{method} {path} {body}: {answer}");
        answer
    }

    fn status_of(&self, id: &str) -> String {
        self.get(&format!("/api/fleet/agents/{id}"))["item"]["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits (deadline 30 s) until agent `id` shows `status`.
    fn wait_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = self.status_of(id);
            if now == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "agent {id} stayed {now}, never {status}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A server whose agents go offline only after a day: however slow the machine, an agent that
/// checked in at the start of a test is not offline by its end.
fn server() -> FleetEdge {
    FleetEdge::start(&[
        "--checkin-long-poll",
        "1s",
        "--checkin-jitter",
        "0s",
        "--agent-offline-after",
        "24h",
    ])
}

fn token_for(api: &Api, policy: &str) -> String {
    let answer = api.call(
        "POST",
        "/api/fleet/enrollment_api_keys",
        json!({"policy_id": policy, "name": format!("{policy} token")}),
    );
    assert_eq!(answer["action"], "created");
    answer["item"]["api_key"].as_str().unwrap().to_owned()
}

/// Enrolls, takes the policy and acks it: the agent runs its policy.
fn settled(server: &FleetEdge, token: &str, tags: &[&str]) -> Agent {
    let (mut agent, _) = Agent::enroll(server.addr, roots(server), token, tags);
    let (_, body) = agent.checkin();
    let action = only_action(&body).clone();
    agent.apply_policy(&action);
    agent.ack(&[(action["id"].as_str().unwrap(), "POLICY_CHANGE")]);
    agent
}

/// Checks in until an action of `kind` arrives (applying and acking a POLICY_CHANGE on the
/// way; other actions are left unacknowledged, so their progress stays what the test made it);
/// the action.
fn receive(agent: &mut Agent, kind: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (resp, body) = agent.checkin();
        assert_eq!(resp.status, 200, "{body}");
        for action in body["actions"].as_array().into_iter().flatten() {
            if action["type"] == kind {
                return action.clone();
            }
            if action["type"] == "POLICY_CHANGE" {
                agent.apply_policy(action);
                agent.ack(&[(action["id"].as_str().unwrap(), "POLICY_CHANGE")]);
            }
        }
        assert!(Instant::now() < deadline, "no {kind} arrived");
    }
}

fn audit(server: &FleetEdge, agent: &Agent, reason: &str) {
    let body = serde_json::to_vec(&json!({"reason": reason, "timestamp": "2026-12-03T09:00:00Z"}))
        .unwrap();
    let raw = raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/audit/unenroll", agent.id),
        Some(&agent.access_key),
        &body,
        false,
        &format!("Elastic Agent v{VERSION}"),
    );
    assert_eq!(once(server.addr, roots(server), &raw).status, 200);
}

/// Item 1 of issue 18: each status Kibana computes, reached by a scripted agent, shown by the
/// API (item, filters, counts) and the CLI (table, filters, `--output json`, `agents show`).
#[test]
fn agents_reach_each_status_and_the_api_and_cli_show_it() {
    let server = server();
    let api = Api::of(&server);
    let token = token_for(&api, "fleet-edge-default");
    let short = api.call(
        "POST",
        "/api/fleet/agent_policies",
        json!({"name": "Short-lived", "namespace": "default", "inactivity_timeout": 2}),
    )["item"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let short_token = token_for(&api, &short);

    let online = settled(&server, &token, &["site-1"]);
    api.wait_status(&online.id, "online");
    let enrolled = format!(
        "event.action=agent-enroll event.outcome=success fleet.agent.id={} fleet.policy.id=fleet-edge-default host.name=gw-01",
        online.id
    );
    let line = server.wait_for_log(&enrolled, Duration::from_secs(30));
    assert!(
        line.as_deref()
            .is_some_and(|l| l.contains(" client.ip=127.0.0.1")),
        "no audit line {enrolled} with the client's address: {line:?}"
    );

    let mut degraded = settled(&server, &token, &[]);
    degraded.checkin_with(json!({"status": "DEGRADED", "message": "1 unit degraded",
        "components": [{"id": "filestream-default", "type": "filestream", "status": "DEGRADED",
            "message": "Degraded", "units": [{"id": "filestream-default-logs", "type": "input",
            "status": "DEGRADED", "message": "cannot open /var/log/app.log"}]}]}));
    api.wait_status(&degraded.id, "degraded");

    let mut error = settled(&server, &token, &[]);
    error.checkin_with(json!({"status": "FAILED", "message": "output failed",
        "components": [{"id": "elasticsearch-default", "type": "elasticsearch", "status": "FAILED",
            "message": "Failed", "units": [{"id": "elasticsearch-default-out", "type": "output",
            "status": "FAILED", "message": "connection refused"}]}]}));
    api.wait_status(&error.id, "error");
    let item = &api.get(&format!("/api/fleet/agents/{}", error.id))["item"];
    assert_eq!(item["unhealthy_reason"], json!(["output"]), "{item}");

    // First policy not acknowledged yet: Kibana says updating.
    let (mut fresh, _) = Agent::enroll(server.addr, roots(&server), &token, &[]);
    fresh.checkin();
    api.wait_status(&fresh.id, "updating");

    // A policy revision and no checkin: Kibana's `enrolling` (its order puts "no revision" →
    // updating first, so an agent enrolled a moment ago is updating, as above). The agent's
    // explicit policy ack (`policy:<id>:<rev>`, fleet-protocol.md §4.3) arriving before its
    // first checkin gives that document.
    let (mut early, _) = Agent::enroll(server.addr, roots(&server), &token, &[]);
    let (resp, acked) = early.ack(&[("policy:fleet-edge-default:1", "POLICY_CHANGE")]);
    assert_eq!(resp.status, 200, "{acked}");
    api.wait_status(&early.id, "enrolling");
    let item = &api.get(&format!("/api/fleet/agents/{}", early.id))["item"];
    assert_eq!(
        (&item["policy_revision"], &item["last_checkin"]),
        (&json!(1), &Value::Null),
        "{item}"
    );

    // An upgrade under way is updating; a failed one is reported, the agent online again.
    let mut upgrading = settled(&server, &token, &[]);
    let sent = api.call(
        "POST",
        &format!("/api/fleet/agents/{}/upgrade", upgrading.id),
        json!({"version": "9.3.0"}),
    );
    let upgrade_id = sent["actionId"].as_str().unwrap().to_owned();
    api.wait_status(&upgrading.id, "updating");
    let action = receive(&mut upgrading, "UPGRADE");
    assert_eq!(action["data"]["version"], "9.3.0");
    upgrading.ack_failed(&upgrade_id, "UPGRADE", "no space left on device");
    upgrading.checkin_with(json!({"upgrade_details": {"action_id": upgrade_id,
        "target_version": "9.3.0", "state": "UPG_FAILED",
        "metadata": {"error_msg": "no space left on device", "failed_state": "UPG_DOWNLOADING"}}}));
    api.wait_status(&upgrading.id, "online");
    let item = &api.get(&format!("/api/fleet/agents/{}", upgrading.id))["item"];
    assert_eq!(item["upgrade_failure"], "no space left on device", "{item}");

    // Unenroll: unenrolling until the agent acks, then unenrolled.
    let mut leaving = settled(&server, &token, &[]);
    let answer = api.call(
        "POST",
        &format!("/api/fleet/agents/{}/unenroll", leaving.id),
        json!({}),
    );
    api.wait_status(&leaving.id, "unenrolling");
    // Unenrolling lasts until the agent acks: the CLI shows it now.
    let (_, table, _) = cli(&server, &["agents"]);
    cli_shows(&server, &table, &leaving.id, "unenrolling");
    let action = receive(&mut leaving, "UNENROLL");
    assert_eq!(action["id"], answer["actionId"]);
    leaving.ack(&[(action["id"].as_str().unwrap(), "UNENROLL")]);
    api.wait_status(&leaving.id, "unenrolled");
    let unenrolled = format!(
        "event.action=agent-unenroll event.outcome=success fleet.agent.id={}",
        leaving.id
    );
    assert!(
        server
            .wait_for_log(&unenrolled, Duration::from_secs(10))
            .is_some(),
        "{unenrolled}"
    );

    // force and revoke: at once, and the agent is refused from then on.
    let mut dead = settled(&server, &token, &[]);
    let mut stolen = settled(&server, &token, &[]);
    for (agent, body) in [
        (&mut dead, json!({"force": true})),
        (&mut stolen, json!({"revoke": true})),
    ] {
        api.call(
            "POST",
            &format!("/api/fleet/agents/{}/unenroll", agent.id),
            body,
        );
        assert_eq!(api.status_of(&agent.id), "unenrolled");
        assert_eq!(agent.checkin().0.status, 401);
    }

    let uninstalled = settled(&server, &token, &[]);
    audit(&server, &uninstalled, "uninstall");
    api.wait_status(&uninstalled.id, "uninstalled");
    let orphaned = settled(&server, &token, &[]);
    audit(&server, &orphaned, "orphaned");
    api.wait_status(&orphaned.id, "orphaned");

    let idle = settled(&server, &short_token, &[]);
    api.wait_status(&idle.id, "inactive");

    // The listing: active statuses by default, everything with showInactive, kuery filters.
    let expected: HashMap<&str, &str> = [
        (online.id.as_str(), "online"),
        (degraded.id.as_str(), "degraded"),
        (error.id.as_str(), "error"),
        (fresh.id.as_str(), "updating"),
        (early.id.as_str(), "enrolling"),
        (upgrading.id.as_str(), "online"),
        (leaving.id.as_str(), "unenrolled"),
        (dead.id.as_str(), "unenrolled"),
        (stolen.id.as_str(), "unenrolled"),
        (uninstalled.id.as_str(), "uninstalled"),
        (orphaned.id.as_str(), "orphaned"),
        (idle.id.as_str(), "inactive"),
    ]
    .into_iter()
    .collect();
    let statuses = |answer: &Value| -> HashMap<String, String> {
        answer["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["id"].as_str().unwrap().to_owned(),
                    a["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let all = statuses(&api.get("/api/fleet/agents?showInactive=true&perPage=100"));
    for (id, status) in &expected {
        assert_eq!(all.get(*id).map(String::as_str), Some(*status), "{id}");
    }
    let active = api.get("/api/fleet/agents?perPage=100&getStatusSummary=true");
    let shown = statuses(&active);
    assert_eq!(shown.len(), 6, "{active}");
    assert!(shown
        .values()
        .all(|s| ["online", "degraded", "error", "updating", "enrolling"].contains(&s.as_str())));
    assert_eq!(active["statusSummary"]["degraded"], 1);
    let page = api.get("/api/fleet/agents?showInactive=true&perPage=2&page=2");
    assert_eq!(
        (
            page["total"].as_u64(),
            page["items"].as_array().unwrap().len(),
            page["page"].as_u64()
        ),
        (Some(12), 2, Some(2))
    );
    let filtered = api.get("/api/fleet/agents?kuery=status%3A%28degraded%20or%20error%29");
    let mut ids: Vec<String> = statuses(&filtered).into_keys().collect();
    ids.sort();
    let mut want = vec![degraded.id.clone(), error.id.clone()];
    want.sort();
    assert_eq!(ids, want);
    let tagged = api.get("/api/fleet/agents?kuery=tags%3A%22site-1%22");
    assert_eq!(
        statuses(&tagged).into_keys().collect::<Vec<_>>(),
        vec![online.id.clone()]
    );
    let (code, refused) = api.send("GET", "/api/fleet/agents?kuery=hostname%3Ax", None, false);
    assert_eq!(code, 400);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("local_metadata.host.hostname"),
        "{refused}"
    );

    let counts = &api.get("/api/fleet/agent_status")["results"];
    assert_eq!(
        (
            counts["online"].as_u64(),
            counts["error"].as_u64(),
            counts["updating"].as_u64(),
            counts["unenrolled"].as_u64(),
            counts["inactive"].as_u64(),
            counts["uninstalled"].as_u64(),
            counts["orphaned"].as_u64(),
            counts["all"].as_u64()
        ),
        (
            Some(2),
            Some(2),
            Some(2),
            Some(3),
            Some(1),
            Some(1),
            Some(1),
            Some(12)
        ),
        "{counts}"
    );

    // The CLI: table with the unhealthy reason, filters, JSON, one agent's report.
    let (code, out, err) = cli(&server, &["agents", "--status", "degraded,error"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{out}");
    let error_line = lines.iter().find(|l| l.starts_with(&error.id)).unwrap();
    assert!(
        error_line.contains("error") && error_line.contains("output unhealthy"),
        "{out}"
    );
    let (_, out, _) = cli(&server, &["agents", "list", "--output", "json"]);
    assert_eq!(statuses(&json_of(&out)), all);
    let (_, out, _) = cli(&server, &["agents", "--query", &upgrading.id[..8]]);
    assert!(
        out.contains("upgrade failed: no space left on device"),
        "{out}"
    );
    let (code, out, err) = cli(&server, &["agents", "show", &degraded.id]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "degraded",
        "filestream-default-logs",
        "cannot open /var/log/app.log",
        "fleet-edge-default revision 1",
        "1 unit degraded",
    ] {
        assert!(out.contains(needle), "{needle}:\n{out}");
    }
    let (code, _, err) = cli(&server, &["agents", "--status", "sleepy"]);
    assert_eq!(code, 2, "{err}");
    // Every agent's status in the table and in its own report.
    let (code, table, err) = cli(&server, &["agents"]);
    assert_eq!(code, 0, "{err}");
    for (id, status) in &expected {
        cli_shows(&server, &table, id, status);
    }
}

/// `offline`: the checkin age threshold (`--agent-offline-after`, Kibana's 6 minutes by
/// default) lowered to 2 s; an agent that stops checking in is offline in the API (item,
/// `kuery`, counts) and the CLI (table, `--status`, `agents show`).
#[test]
fn an_agent_that_stops_checking_in_goes_offline_after_the_threshold() {
    let server = FleetEdge::start(&[
        "--checkin-long-poll",
        "1s",
        "--checkin-jitter",
        "0s",
        "--agent-offline-after",
        "2s",
    ]);
    let api = Api::of(&server);
    let token = token_for(&api, "fleet-edge-default");
    let mut quiet = settled(&server, &token, &[]);
    let (resp, _) = quiet.checkin();
    assert_eq!(resp.status, 200);
    quiet.conn = None;
    api.wait_status(&quiet.id, "offline");
    let item = &api.get(&format!("/api/fleet/agents/{}", quiet.id))["item"];
    assert_eq!(item["last_checkin_status"], "online", "{item}");
    let listed = api.get("/api/fleet/agents?kuery=status%3Aoffline");
    assert_eq!(listed["items"][0]["id"], json!(quiet.id), "{listed}");
    assert_eq!(api.get("/api/fleet/agent_status")["results"]["offline"], 1);
    let (code, table, err) = cli(&server, &["agents", "--status", "offline"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(table.lines().count(), 2, "{table}");
    cli_shows(&server, &table, &quiet.id, "offline");

    // It is still enrolled: its next checkin is answered.
    assert_eq!(quiet.checkin().0.status, 200);
}

/// The CLI shows agent `id` as `status`: in the `fleet-edge agents` table (`table`, its STATUS
/// column) and in `fleet-edge agents show ID`.
pub(crate) fn cli_shows(server: &FleetEdge, table: &str, id: &str, status: &str) {
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("{id} not in the table:\n{table}"))
        .split_whitespace()
        .collect();
    assert_eq!(row.get(2), Some(&status), "{id}: {row:?}\n{table}");
    let (code, out, err) = cli(server, &["agents", "show", id]);
    assert_eq!(code, 0, "{err}");
    let shown = out
        .lines()
        .find_map(|l| l.strip_prefix("status"))
        .map(str::trim);
    assert_eq!(shown, Some(status), "{id}:\n{out}");
}

/// Item 2: Kibana's policy and enrollment-key bodies (the published schema's request shapes),
/// the compiled-policy upload on its own path, and `kbn-xsrf`.
#[test]
fn policies_and_keys_take_kibanas_bodies() {
    let server = server();
    let api = Api::of(&server);
    let create = json!({"name": "Edge sites", "namespace": "default",
        "description": "Gateways at the sites", "monitoring_enabled": ["logs", "metrics"],
        "inactivity_timeout": 1209600});
    let (code, refused) = api.send("POST", "/api/fleet/agent_policies", Some(&create), false);
    assert_eq!(
        (code, refused["message"].as_str()),
        (400, Some("Request must contain a kbn-xsrf header."))
    );
    let item = api.call("POST", "/api/fleet/agent_policies", create.clone())["item"].clone();
    let id = item["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (
            item["name"].as_str(),
            item["namespace"].as_str(),
            item["revision"].as_i64(),
            item["agents"].as_i64()
        ),
        (Some("Edge sites"), Some("default"), Some(1), Some(0)),
        "{item}"
    );
    assert_eq!(item["monitoring_enabled"], json!(["logs", "metrics"]));
    assert_eq!(
        api.send("POST", "/api/fleet/agent_policies", Some(&create), true)
            .0,
        409
    );

    let listed = api.get("/api/fleet/agent_policies");
    assert!(listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == id.as_str()));
    assert_eq!(
        api.get(&format!("/api/fleet/agent_policies/{id}"))["item"]["description"],
        "Gateways at the sites"
    );
    let full = &api.get(&format!("/api/fleet/agent_policies/{id}/full"))["item"];
    assert_eq!(full["id"], id.as_str());
    assert!(full["outputs"]["default"].is_object(), "{full}");

    let updated = api.call(
        "PUT",
        &format!("/api/fleet/agent_policies/{id}"),
        json!({"name": "Edge sites", "namespace": "prod", "monitoring_enabled": []}),
    )["item"]
        .clone();
    assert_eq!(
        (updated["namespace"].as_str(), updated["revision"].as_i64()),
        (Some("prod"), Some(2))
    );
    assert_eq!(updated["monitoring_enabled"], json!([]));
    let (code, refused) = api.send(
        "PUT",
        &format!("/api/fleet/agent_policies/{id}"),
        Some(&json!({"name": "Edge sites", "is_managed": true})),
        true,
    );
    assert_eq!(code, 400);
    assert!(
        refused["message"].as_str().unwrap().contains("is_managed"),
        "{refused}"
    );

    // Enrollment keys: {item, action}, get by id, list, delete.
    let key = api.call(
        "POST",
        "/api/fleet/enrollment_api_keys",
        json!({"policy_id": id, "name": "sites"}),
    );
    let key_id = key["item"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        api.get(&format!("/api/fleet/enrollment_api_keys/{key_id}"))["item"]["policy_id"],
        id.as_str()
    );
    let keys = api.get("/api/fleet/enrollment_api_keys");
    assert!(keys["total"].as_u64().unwrap() >= 2 && keys["items"] == keys["list"]);

    // A policy in use cannot be deleted; an unused one can, and its keys go with it.
    let token = key["item"]["api_key"].as_str().unwrap().to_owned();
    let agent = settled(&server, &token, &[]);
    let (code, refused) = api.send(
        "POST",
        "/api/fleet/agent_policies/delete",
        Some(&json!({"agentPolicyId": id})),
        true,
    );
    assert_eq!(code, 400, "{refused}");
    api.call(
        "POST",
        &format!("/api/fleet/agents/{}/unenroll", agent.id),
        json!({"revoke": true}),
    );
    let deleted = api.call(
        "POST",
        "/api/fleet/agent_policies/delete",
        json!({"agentPolicyId": id}),
    );
    assert_eq!(deleted, json!({"id": id, "name": "Edge sites"}));
    assert_eq!(
        api.send(
            "GET",
            &format!("/api/fleet/agent_policies/{id}"),
            None,
            false
        )
        .0,
        404
    );
    assert_eq!(
        api.get(&format!("/api/fleet/enrollment_api_keys/{key_id}"))["item"]["active"],
        false
    );

    // A compiled policy goes to fleet-edge's own path; Kibana's path refuses one.
    let compiled = api.get("/api/fleet/agent_policies/fleet-edge-default/full")["item"].clone();
    let (code, _) = api.send(
        "PUT",
        "/api/fleet/agent_policies/fleet-edge-default",
        Some(&compiled),
        true,
    );
    assert_eq!(code, 400, "Kibana's update body, not a compiled policy");
    let mut next = compiled.clone();
    next["inputs"] = json!([{"id": "uploaded", "type": "logfile", "streams": []}]);
    let answer = api.call(
        "PUT",
        "/api/fleet/fleet_edge/policies/fleet-edge-default",
        next,
    );
    assert_eq!(answer["item"]["revision"], 2);
}

/// Item 3: the operator's actions reach the agent with the data its handlers expect, are acked,
/// and show in the action list with their progress; tags, reassign and bulk operations.
#[test]
fn operator_actions_are_delivered_acked_and_tracked() {
    let server = server();
    let api = Api::of(&server);
    let token = token_for(&api, "fleet-edge-default");
    let mut a = settled(&server, &token, &["edge"]);
    let mut b = settled(&server, &token, &["edge"]);

    // SETTINGS from the CLI.
    let (code, out, err) = cli(&server, &["settings", &a.id, "--log-level", "debug"]);
    assert_eq!(code, 0, "{err}");
    let settings_id = json_of(&out)["actionId"].as_str().unwrap().to_owned();
    let action = receive(&mut a, "SETTINGS");
    assert_eq!(action["data"], json!({"log_level": "debug"}));
    a.ack(&[(&settings_id, "SETTINGS")]);
    let (code, _, err) = cli(&server, &["settings", &a.id, "--log-level", "loud"]);
    assert_eq!(code, 1, "{err}");

    // REQUEST_DIAGNOSTICS, then CANCEL for it from the CLI.
    let diag = api.call(
        "POST",
        &format!("/api/fleet/agents/{}/request_diagnostics", b.id),
        json!({"additional_metrics": ["CPU"]}),
    );
    let diag_id = diag["actionId"].as_str().unwrap().to_owned();
    let (code, out, err) = cli(&server, &["cancel", &diag_id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_of(&out)["item"]["data"]["target_id"], diag_id.as_str());
    let cancel = receive(&mut b, "CANCEL");
    assert_eq!(cancel["data"]["target_id"], diag_id.as_str());
    b.ack(&[(cancel["id"].as_str().unwrap(), "CANCEL")]);

    // PRIVILEGE_LEVEL_CHANGE through Kibana's path; any delivered type through /actions.
    let sent = api.call(
        "POST",
        &format!("/api/fleet/agents/{}/privilege_level_change", a.id),
        json!({}),
    );
    let action = receive(&mut a, "PRIVILEGE_LEVEL_CHANGE");
    assert_eq!(action["data"]["unprivileged"], true);
    a.ack(&[(sent["actionId"].as_str().unwrap(), "PRIVILEGE_LEVEL_CHANGE")]);
    let (code, refused) = api.send(
        "POST",
        &format!("/api/fleet/agents/{}/actions", a.id),
        Some(&json!({"action": {"type": "SETTINGS", "data": {"log_level": "chatty"}}})),
        true,
    );
    assert_eq!(code, 400, "{refused}");

    // Tags (Kibana's PUT body) and the tag list; bulk tags by id, then a bulk action by kuery.
    let item = api.call(
        "PUT",
        &format!("/api/fleet/agents/{}", a.id),
        json!({"tags": ["site-2", "edge", "edge"]}),
    )["item"]
        .clone();
    assert_eq!(item["tags"], json!(["edge", "site-2"]));
    // Kibana answers with the id of the UPDATE_TAGS action it records (complete at once).
    let tagged = api.call(
        "POST",
        "/api/fleet/agents/bulk_update_agent_tags",
        json!({"agents": [a.id, b.id], "tagsToAdd": ["rack-9"], "tagsToRemove": ["edge"]}),
    );
    let tags_id = tagged["actionId"].as_str().unwrap_or_default().to_owned();
    assert!(!tags_id.is_empty(), "{tagged}");
    assert_eq!(
        api.get("/api/fleet/agents/tags")["items"],
        json!(["rack-9", "site-2"])
    );
    let bulk = api.call(
        "POST",
        "/api/fleet/agents/bulk_request_diagnostics",
        json!({"agents": "tags:rack-9"}),
    );
    assert_eq!(bulk["agents"].as_array().unwrap().len(), 2, "{bulk}");
    let bulk_id = bulk["actionId"].as_str().unwrap().to_owned();
    let got = receive(&mut a, "REQUEST_DIAGNOSTICS");
    assert_eq!(got["id"], bulk_id.as_str());
    a.ack(&[(&bulk_id, "REQUEST_DIAGNOSTICS")]);

    // Reassign: updating until the agent runs the new policy.
    let other = api.call(
        "POST",
        "/api/fleet/agent_policies",
        json!({"name": "Other", "namespace": "default"}),
    )["item"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, _, err) = cli(&server, &["reassign", &b.id, "--policy", &other]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(api.status_of(&b.id), "updating");
    let reassign = receive(&mut b, "POLICY_REASSIGN");
    assert_eq!(reassign["data"]["policy_id"], other.as_str());
    b.ack(&[(reassign["id"].as_str().unwrap(), "POLICY_REASSIGN")]);
    let change = receive(&mut b, "POLICY_CHANGE");
    assert_eq!(change["data"]["policy"]["id"], other.as_str());
    b.apply_policy(&change);
    b.ack(&[(change["id"].as_str().unwrap(), "POLICY_CHANGE")]);
    // Still updating until the agent reports running the new policy, at its next checkin.
    b.checkin();
    api.wait_status(&b.id, "online");
    assert_eq!(
        api.get(&format!("/api/fleet/agents/{}", b.id))["item"]["policy_id"],
        other.as_str()
    );

    // The action list: per-action progress.
    let list = api.get("/api/fleet/agents/action_status?perPage=50");
    let by_id = |id: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["actionId"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not listed: {list}"))
    };
    let settings = by_id(&settings_id);
    assert_eq!(
        (
            settings["type"].as_str(),
            settings["status"].as_str(),
            settings["nbAgentsAck"].as_u64(),
            settings["nbAgentsSent"].as_u64()
        ),
        (Some("SETTINGS"), Some("COMPLETE"), Some(1), Some(1)),
        "{settings}"
    );
    let tags = by_id(&tags_id);
    assert_eq!(
        (
            tags["type"].as_str(),
            tags["status"].as_str(),
            tags["nbAgentsAck"].as_u64()
        ),
        (Some("UPDATE_TAGS"), Some("COMPLETE"), Some(2)),
        "{tags}"
    );
    let diag = by_id(&diag_id);
    assert_eq!(diag["status"], "CANCELLED", "{diag}");
    assert!(diag["cancellationTime"].is_string());
    let bulk = by_id(&bulk_id);
    assert_eq!(
        (
            bulk["nbAgentsActionCreated"].as_u64(),
            bulk["nbAgentsAck"].as_u64(),
            bulk["status"].as_str()
        ),
        (Some(2), Some(1), Some("IN_PROGRESS")),
        "{bulk}"
    );
    let (code, out, err) = cli(&server, &["actions"]);
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with(&settings_id))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("SETTINGS") && line.contains("COMPLETE"),
        "{line}"
    );

    // The other bulk operations, by id: upgrade, reassign, unenroll with revoke; then delete.
    let mut c = settled(&server, &token, &[]);
    let mut d = settled(&server, &token, &[]);
    let ids = json!([c.id, d.id]);
    // A rollout over 10 minutes from an hour from now, as Kibana writes it: the first agent
    // starts at the start time (the others up to 10 minutes later when the action reaches them
    // parked, §5.2), and the action expires after twice the rollout (Kibana: shorter than 2 h).
    let start = std::time::SystemTime::now() + Duration::from_secs(3600);
    let start_text = fleet_edge::model::time::rfc3339_seconds(start);
    let upgrade = api.call(
        "POST",
        "/api/fleet/agents/bulk_upgrade",
        json!({"agents": ids, "version": "9.3.0", "rollout_duration_seconds": 600,
               "start_time": start_text}),
    );
    let at = |secs: u64| {
        let t = start + Duration::from_secs(secs);
        format!(
            "{}.000Z",
            fleet_edge::model::time::rfc3339_seconds(t).trim_end_matches('Z')
        )
    };
    for (n, agent) in [&mut c, &mut d].into_iter().enumerate() {
        assert_eq!(api.status_of(&agent.id), "updating");
        let got = receive(agent, "UPGRADE");
        assert_eq!(
            (got["id"].as_str(), got["data"]["version"].as_str()),
            (upgrade["actionId"].as_str(), Some("9.3.0"))
        );
        assert_eq!(got["expiration"], at(1200), "{got}");
        let started = got["start_time"].as_str().unwrap_or_default();
        if n == 0 {
            assert_eq!(started, at(0), "{got}");
        } else {
            assert!(started == at(0) || started == at(300), "{got}");
        }
    }
    let moved = api.call(
        "POST",
        "/api/fleet/agents/bulk_reassign",
        json!({"agents": [c.id], "policy_id": other}),
    );
    let got = receive(&mut c, "POLICY_REASSIGN");
    assert_eq!(got["id"], moved["actionId"]);
    api.call(
        "POST",
        "/api/fleet/agents/bulk_unenroll",
        json!({"agents": ids, "revoke": true}),
    );
    for agent in [&mut c, &mut d] {
        assert_eq!(api.status_of(&agent.id), "unenrolled");
        assert_eq!(agent.checkin().0.status, 401);
    }
    let (code, answer) = api.send("DELETE", &format!("/api/fleet/agents/{}", d.id), None, true);
    assert_eq!((code, answer), (200, json!({"action": "deleted"})));
    assert_eq!(
        api.send("GET", &format!("/api/fleet/agents/{}", d.id), None, false)
            .0,
        404
    );
}

/// The conformance table (docs/kibana-fleet-api.md) and the router agree: every path it lists is
/// routed, with its method.
#[test]
fn conformance_table_matches_the_router() {
    let table = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/kibana-fleet-api.md"),
    )
    .unwrap();
    let mut rows = 0;
    let methods = ["| GET", "| POST", "| PUT", "| DELETE"];
    for line in table
        .lines()
        .filter(|l| methods.iter().any(|m| l.starts_with(m)))
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let method = match cells[1] {
            "GET" => fleet_edge::http::Method::Get,
            "POST" => fleet_edge::http::Method::Post,
            "PUT" => fleet_edge::http::Method::Put,
            _ => fleet_edge::http::Method::Delete,
        };
        let path = cells[2].trim_matches('`');
        let concrete: Vec<&str> = path
            .split('/')
            .map(|part| if part.starts_with('{') { "x1" } else { part })
            .collect();
        assert!(
            fleet_edge::mgmt::route(&method, &format!("/api/fleet{}", concrete.join("/")))
                .is_some(),
            "{} {path} is in the table but not routed",
            cells[1]
        );
        rows += 1;
    }
    assert_eq!(rows, 36, "rows of the table");
}

/// Item 4: the example policies (standalone `elastic-agent.yml` shape, YAML) load through
/// `fleet-edge policy apply`, and variables reach the agent untouched.
#[test]
fn example_policies_load_and_reach_agents_with_variables_untouched() {
    let server = server();
    let api = Api::of(&server);
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for name in [
        "system-to-elasticsearch",
        "system-to-logstash",
        "monitoring-off",
    ] {
        let file = examples.join(format!("{name}.yml"));
        let (code, out, err) = cli(&server, &["policy", "apply", file.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {err}");
        assert_eq!(json_of(&out)["item"]["revision"], 1, "{name}");
    }
    let broken = server.data_dir.join("broken.yml");
    std::fs::write(&broken, "id: broken\noutputs:\n  default: [\n").unwrap();
    let (code, _, err) = cli(&server, &["policy", "apply", broken.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("line") && err.contains("column"), "{err}");

    let token = token_for(&api, "system-to-elasticsearch");
    let (mut agent, _) = Agent::enroll(server.addr, roots(&server), &token, &[]);
    let (_, body) = agent.checkin();
    let policy = &only_action(&body)["data"]["policy"];
    assert_eq!(policy["outputs"]["default"]["username"], "${ES_USERNAME}");
    assert_eq!(
        policy["inputs"][0]["streams"][0]["paths"][0],
        "/var/log/auth.log*"
    );
    let listed = api.get("/api/fleet/agent_policies/monitoring-off");
    assert_eq!(listed["item"]["monitoring_enabled"], json!([]));
    assert_eq!(listed["item"]["name"], "Metrics only, agent monitoring off");
}
