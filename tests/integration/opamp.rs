//! OpAMP collectors on `/v1/opamp` (fleet-protocol.md §8 "OpAMP") against every store, driven by
//! real OpAMP clients from the npm registry (`tests/opamp-client`): Elastic's
//! `@elastic/opamp-client-node` over HTTPS, and messages encoded by the same package's protobuf
//! schema sent over HTTPS and over WebSocket (`ws`). The stored documents are checked member by
//! member; the error rows (bad token, bad uid, bad protobuf, oversized message) each get their
//! answer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::protocol::{checks, policy, start, Fixture};
use crate::support::inproc::InProc;

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/opamp-client")
}

/// Installs the npm packages once (`npm ci` from the committed lock file) when CI has not.
fn ensure_client() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let dir = client_dir();
        if dir.join("node_modules/@elastic/opamp-client-node").exists() {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("the OpAMP client tests need node and npm (bash .ci/run installs them)");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    });
}

/// Runs `node client.js <args>` and returns its JSON lines.
fn node(args: &[&str]) -> Vec<Value> {
    ensure_client();
    let output = Command::new("node")
        .arg("client.js")
        .args(args)
        .current_dir(client_dir())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "node {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn endpoint(server: &InProc, scheme: &str) -> String {
    format!("{scheme}://127.0.0.1:{}/v1/opamp", server.addr.port())
}

fn ca(server: &InProc) -> String {
    server.pki.ca_path.to_str().unwrap().to_owned()
}

/// Runs message steps over `transport` ("http" or "ws").
fn raw(server: &InProc, transport: &str, token: &str, steps: &Value) -> Vec<Value> {
    raw_at(server.addr.port(), &ca(server), transport, token, steps)
}

fn raw_at(port: u16, ca: &str, transport: &str, token: &str, steps: &Value) -> Vec<Value> {
    let file = crate::support::TempDir::new("opamp-steps");
    let path = file.join("steps.json");
    std::fs::write(&path, serde_json::to_vec(steps).unwrap()).unwrap();
    let scheme = if transport == "ws" { "wss" } else { "https" };
    node(&[
        "raw",
        transport,
        &format!("{scheme}://127.0.0.1:{port}/v1/opamp"),
        token,
        ca,
        path.to_str().unwrap(),
    ])
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn uid_hex(b64_uid: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64_uid)
        .unwrap();
    fleet_edge::opamp::uid_text(&bytes).unwrap()
}

/// The stored agent document (its source, as the store returns it), once `ready` holds.
fn wait_for_doc(fixture: &dyn Fixture, id: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let agent = fixture.store().agent(id).unwrap();
        let doc = agent.map(|a| serde_json::to_value(&a).unwrap());
        match doc {
            Some(doc) if ready(&doc) => return doc,
            doc => assert!(
                Instant::now() < deadline,
                "document {id} never got ready: {doc:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kv(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

fn description() -> Value {
    json!({
        "identifyingAttributes": [kv("service.name", "edot-collector"), kv("service.version", "9.4.0"),
            {"key": "service.instance.id", "value": {"intValue": "42"}}],
        "nonIdentifyingAttributes": [kv("host.name", "gw-7"), kv("os.type", "linux"), kv("tags", "edge, site-a,edge")]
    })
}

const CONFIG_V1: &str = "receivers:\n  otlp:\n    protocols:\n      grpc: {}\nexporters:\n  elasticsearch:\n    endpoint: https://user:pw@es.example:9200\n    api_key: s3cr3t\nservice:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [elasticsearch]}\n    metrics: {receivers: [otlp], exporters: [elasticsearch]}\n";
const CONFIG_V2: &str =
    "receivers:\n  otlp: {}\nservice:\n  pipelines:\n    traces: {receivers: [otlp]}\n";

fn effective_config(yaml: &str) -> Value {
    json!({"configMap": {"configMap": {"": {"body": b64(yaml.as_bytes()), "contentType": "text/yaml"}}}})
}

/// Elastic's node client enrolls over TLS with an enrollment token and keeps checking in.
fn elastic_client_enrolls(fixture: Box<dyn Fixture>) {
    fixture.add_policy(policy("collectors", 1, checks()));
    let token = fixture.add_token("collectors").encoded();
    let server = start(&*fixture, "2s");
    let desc = json!({
        "identifyingAttributes": {"service.name": "edot-collector", "service.version": "9.4.0"},
        "nonIdentifyingAttributes": {"host.name": "gw-1", "os.type": "linux", "tags": "edge,site-a"}
    });
    let lines = node(&[
        "elastic",
        &endpoint(&server, "https"),
        &token,
        &ca(&server),
        "3",
        &desc.to_string(),
    ]);
    let result = &lines[0];
    assert_eq!(result["failures"], json!([]), "{result}");
    let first = &result["replies"][0];
    assert_eq!(first["flags"], "1", "ReportFullState: {first}");
    assert_eq!(
        first["capabilities"], "5",
        "AcceptsStatus|AcceptsEffectiveConfig"
    );
    assert!(first.get("agentIdentification").is_none());
    let hex = result["instance_uid"].as_str().unwrap();
    let id = fleet_edge::opamp::uid_text(&hex_bytes(hex)).unwrap();
    let doc = wait_for_doc(&*fixture, &id, |d| d["sequence_num"].as_u64() >= Some(2));
    assert_eq!(doc["type"], "OPAMP");
    assert_eq!(doc["active"], true);
    assert_eq!(doc["policy_id"], "collectors");
    assert_eq!(doc["policy_revision_idx"], 1);
    assert_eq!(
        doc["agent"],
        json!({"id": id, "version": "9.4.0", "type": "edot-collector"})
    );
    assert_eq!(
        doc["local_metadata"],
        json!({"elastic": {"agent": {"id": id, "version": "9.4.0", "name": "edot-collector"}},
               "host": {"hostname": "gw-1", "name": "gw-1"}, "os": {"platform": "linux"}})
    );
    assert_eq!(
        doc["identifying_attributes"],
        json!({"service.name": "edot-collector", "service.version": "9.4.0"})
    );
    assert_eq!(
        doc["non_identifying_attributes"],
        json!({"host.name": "gw-1", "os.type": "linux"})
    );
    assert_eq!(doc["tags"], json!(["edot-collector", "edge", "site-a"]));
    assert_eq!(doc["last_checkin_status"], "online");
    assert_eq!(
        doc["capabilities"],
        json!(["ReportsStatus", "ReportsHeartbeat"])
    );
    assert!(fleet_edge::model::time::parse_rfc3339(doc["enrolled_at"].as_str().unwrap()).is_some());
    assert!(doc.get("health").is_none() && doc.get("effective_config").is_none());
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// A collector asking for an instance uid, then reporting health and effective config.
fn reports_health_and_effective_config(fixture: &dyn Fixture, transport: &str) {
    fixture.add_policy(policy("collectors", 1, checks()));
    let token = fixture.add_token("collectors").encoded();
    let server = start(fixture, "2s");
    let asked = b64(&[0x11; 16]);
    let steps = json!([
        {"message": {"instanceUid": asked, "sequenceNum": "1", "flags": "1",
            "capabilities": "6149", "agentDescription": description(),
            "health": {"healthy": true, "status": "StatusOK", "startTimeUnixNano": "1700000000000000000",
                "componentHealthMap": {"pipeline:traces": {"healthy": true, "status": "StatusOK"}}},
            "effectiveConfig": effective_config(CONFIG_V1)}},
    ]);
    let first = raw(&server, transport, &token, &steps);
    let reply = &first.last().unwrap()["reply"];
    assert_eq!(reply["instanceUid"], asked, "{first:?}");
    assert_eq!(reply["flags"], "1");
    assert_eq!(reply["capabilities"], "5");
    let new_uid = reply["agentIdentification"]["newInstanceUid"]
        .as_str()
        .unwrap_or_else(|| panic!("no new uid: {reply}"));
    let id = uid_hex(new_uid);
    assert_eq!(&id[14..15], "7", "a UUIDv7: {id}");
    let doc = wait_for_doc(fixture, &id, |d| d["sequence_num"] == 1);
    assert_eq!(doc["last_checkin_status"], "online");
    assert_eq!(doc["last_checkin_message"], "StatusOK");
    assert_eq!(
        doc["health"],
        json!({"healthy": true, "status": "StatusOK", "start_time_unix_nano": 1_700_000_000_000_000_000u64,
               "component_health_map": {"pipeline:traces": {"healthy": true, "status": "StatusOK"}}})
    );
    assert_eq!(
        doc["capabilities"],
        json!([
            "ReportsStatus",
            "ReportsEffectiveConfig",
            "ReportsHealth",
            "ReportsRemoteConfig"
        ])
    );
    assert_eq!(
        doc["effective_config"],
        json!({
            "receivers": {"otlp": {"protocols": {"grpc": {}}}},
            "exporters": {"elasticsearch": {"endpoint": "https://REDACTED:REDACTED@es.example:9200", "api_key": "REDACTED"}},
            "service": {"pipelines": {
                "traces": {"receivers": ["otlp"], "exporters": ["elasticsearch"]},
                "metrics": {"receivers": ["otlp"], "exporters": ["elasticsearch"]}}}
        })
    );
    assert_eq!(doc["tags"], json!(["edot-collector", "edge", "site-a"]));
    assert_eq!(doc["identifying_attributes"]["service.instance.id"], 42);
    assert!(
        fixture.store().agent(&uid_hex(&asked)).unwrap().is_none(),
        "the asked-for uid got no document"
    );

    // Unhealthy, a smaller configuration (replaced whole), then recoverable, then disconnect.
    let steps = json!([
        {"message": {"instanceUid": new_uid, "sequenceNum": "2", "capabilities": "6149",
            "health": {"healthy": false, "status": "StatusPermanentError", "lastError": "exporter down"},
            "effectiveConfig": effective_config(CONFIG_V2)}},
    ]);
    let second = raw(&server, transport, &token, &steps);
    let reply = &second.last().unwrap()["reply"];
    assert!(reply.get("agentIdentification").is_none(), "{reply}");
    // The stored status is online now: capabilities are not repeated.
    assert!(reply.get("capabilities").is_none(), "{reply}");
    let doc = wait_for_doc(fixture, &id, |d| d["sequence_num"] == 2);
    assert_eq!(doc["last_checkin_status"], "error");
    assert_eq!(doc["last_checkin_message"], "exporter down");
    assert_eq!(
        doc["effective_config"],
        json!({"receivers": {"otlp": {}}, "service": {"pipelines": {"traces": {"receivers": ["otlp"]}}}}),
        "replaced, not merged"
    );
    let steps = json!([
        {"message": {"instanceUid": new_uid, "sequenceNum": "3",
            "health": {"healthy": true, "status": "StatusRecoverableError"}}},
        {"message": {"instanceUid": new_uid, "sequenceNum": "4", "agentDisconnect": {}}},
    ]);
    let third = raw(&server, transport, &token, &steps);
    assert_eq!(third.last().unwrap()["reply"]["instanceUid"], new_uid);
    let doc = wait_for_doc(fixture, &id, |d| d["last_checkin_status"] == "disconnected");
    // Health and configuration stay as last reported.
    assert_eq!(doc["health"]["last_error"], "exporter down");
    assert_eq!(doc["effective_config"]["receivers"], json!({"otlp": {}}));
}

fn reports_over_http(fixture: Box<dyn Fixture>) {
    reports_health_and_effective_config(&*fixture, "http");
}

fn reports_over_websocket(fixture: Box<dyn Fixture>) {
    reports_health_and_effective_config(&*fixture, "ws");
}

on_every_store!(
    elastic_client_enrolls,
    reports_over_http,
    reports_over_websocket,
    remote_config_from_the_policy,
    elastic_client_applies_remote_config
);

/// The error rows: bad token, bad uid, bad protobuf, oversized message, on both transports.
fn error_rows(fixture: Box<dyn Fixture>) {
    fixture.add_policy(policy("collectors", 1, checks()));
    let token = fixture.add_token("collectors").encoded();
    let server = start(&*fixture, "2s");
    let bad_token = b64(b"unknown-id:wrong-secret");
    let good =
        |seq: &str| json!({"message": {"instanceUid": b64(&[0x22; 16]), "sequenceNum": seq}});
    let short_uid = json!({"message": {"instanceUid": b64(&[0x22; 15]), "sequenceNum": "1"}});
    let not_protobuf = b64(&[0xff, 0xff, 0xff, 0xff]);
    let oversized = b64(&vec![0u8; 3 * 1024 * 1024 + 1]);

    // Plain HTTP.
    let refused = raw(&server, "http", &bad_token, &json!([good("1")]));
    assert_eq!(
        refused[0],
        json!({"status": 401, "content_type": "application/x-protobuf", "body_length": 0})
    );
    let answers = raw(
        &server,
        "http",
        &token,
        &json!([short_uid, {"raw": not_protobuf}, {"raw": oversized}, good("1")]),
    );
    let error = &answers[0]["reply"]["errorResponse"];
    assert_eq!(answers[0]["status"], 200, "{answers:?}");
    assert_eq!(
        error["type"], "ServerErrorResponseType_BadRequest",
        "{error}"
    );
    assert_eq!(error["errorMessage"], "failed to parse instance_uid");
    assert_eq!(answers[1]["status"], 400, "{answers:?}");
    assert_eq!(answers[1]["body_length"], 0);
    assert_eq!(answers[2]["status"], 413, "{answers:?}");
    assert_eq!(
        answers[3]["status"], 200,
        "a good message still works: {answers:?}"
    );

    // WebSocket.
    let refused = raw(&server, "ws", &bad_token, &json!([good("1")]));
    assert_eq!(refused[0]["upgrade"]["status"], 401, "{refused:?}");
    let short_uid = json!({"message": {"instanceUid": b64(&[0x33; 15]), "sequenceNum": "1"}});
    let answers = raw(
        &server,
        "ws",
        &token,
        &json!([
            short_uid,
            {"raw": b64(&[0, 0xff, 0xff, 0xff]), "ping_after": "dropped"},
            {"raw": b64(&[1, 0x0a, 0x00]), "ping_after": "bad header"},
            good("1"),
            {"ping": "alive"},
            {"raw": oversized},
        ]),
    );
    assert_eq!(answers[0]["upgrade"]["status"], 101);
    assert_eq!(answers[1]["header"], 0);
    assert_eq!(
        answers[1]["reply"]["errorResponse"]["errorMessage"],
        "failed to parse instance_uid"
    );
    assert_eq!(
        answers[2],
        json!({"pong": "dropped"}),
        "bad protobuf: no answer"
    );
    assert_eq!(
        answers[3],
        json!({"pong": "bad header"}),
        "bad header: no answer"
    );
    assert_eq!(answers[4]["reply"]["flags"], "1", "{answers:?}");
    assert_eq!(answers[5], json!({"pong": "alive"}));
    assert_eq!(answers[6], json!({"closed": 1009}), "message too big");
}

#[test]
fn error_rows_memory() {
    error_rows(crate::support::stores::memory());
}

#[test]
fn error_rows_es() {
    error_rows(crate::protocol::es());
}

/// Collectors appear to the operator: `fleet-edge agents` lists them with type OPAMP, and the
/// management API returns their health tree and effective configuration (real binary, embedded
/// store, the CLI's own token).
#[test]
fn collectors_are_visible_to_the_operator() {
    use crate::support::{run_to_exit, FleetEdge};
    let server = FleetEdge::start(&["--checkin-jitter", "0s"]);
    server
        .wait_for_log("management API on", Duration::from_secs(20))
        .expect("management API announced");
    let dir = server.data_dir.to_str().unwrap().to_owned();
    let cli = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend(["--data-dir", &dir]);
        let (status, out, err) = run_to_exit(&full, &[]);
        assert!(status.success(), "{args:?}: {err}");
        out
    };
    let created: Value = serde_json::from_str(&cli(&[
        "tokens",
        "create",
        "--policy",
        "fleet-edge-default",
    ]))
    .unwrap();
    let token = created["item"]["api_key"].as_str().unwrap().to_owned();
    let uid = [0x44u8; 16];
    let id = fleet_edge::opamp::uid_text(&uid).unwrap();
    let ca = server.data_dir.join("certs/ca.crt");
    let steps = json!([{"message": {"instanceUid": b64(&uid), "sequenceNum": "1",
        "capabilities": "2053", "agentDescription": description(),
        "health": {"healthy": true, "status": "StatusOK"},
        "effectiveConfig": effective_config(CONFIG_V2)}}]);
    let answers = raw_at(
        server.addr.port(),
        ca.to_str().unwrap(),
        "ws",
        &token,
        &steps,
    );
    assert_eq!(answers[1]["reply"]["flags"], "1", "{answers:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let line = loop {
        let out = cli(&["agents"]);
        if let Some(line) = out
            .lines()
            .find(|l| l.starts_with(&id) && l.contains("online"))
        {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline, "collector never listed:\n{out}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(line.contains("OPAMP") && line.contains("9.4.0"), "{line}");
    let url = std::fs::read_to_string(server.data_dir.join("management-url")).unwrap();
    let addr: std::net::SocketAddr = url.trim().trim_start_matches("http://").parse().unwrap();
    let admin = std::fs::read_to_string(server.data_dir.join("admin-token")).unwrap();
    let mut client = crate::support::Client::plain(addr).unwrap();
    let request = format!(
        "GET /api/fleet/agents/{id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        admin.trim()
    );
    let item = client.request(request.as_bytes()).unwrap().json()["item"].clone();
    assert_eq!(item["type"], "OPAMP");
    assert_eq!(
        item["health"],
        json!({"healthy": true, "status": "StatusOK"})
    );
    assert_eq!(
        item["effective_config"],
        json!({"receivers": {"otlp": {}}, "service": {"pipelines": {"traces": {"receivers": ["otlp"]}}}})
    );
    assert_eq!(
        item["capabilities"],
        json!(["ReportsStatus", "ReportsEffectiveConfig", "ReportsHealth"])
    );
    assert_eq!(item["hostname"], "gw-7");
}

/// Beyond Fleet Server: a policy's `opamp.config` is offered to collectors that accept remote
/// configuration, until they report its hash; their applied / failed status is recorded.
fn remote_config_from_the_policy(fixture: Box<dyn Fixture>) {
    let mut doc = policy("collectors", 1, checks());
    doc.data["opamp"] = json!({"config": {"": CONFIG_V2}});
    fixture.add_policy(doc);
    let token = fixture.add_token("collectors").encoded();
    let server = start(&*fixture, "2s");
    let uid = b64(&[0x55; 16]);
    // AcceptsRemoteConfig | ReportsRemoteConfig | ReportsStatus.
    let hello =
        json!([{"message": {"instanceUid": uid, "sequenceNum": "1", "capabilities": "4099"}}]);
    // The policy reaches the server's cache through the change feed: ask until it is offered.
    let deadline = Instant::now() + Duration::from_secs(15);
    let reply = loop {
        let answers = raw(&server, "http", &token, &hello);
        let reply = answers[0]["reply"].clone();
        if reply.get("remoteConfig").is_some() {
            break reply;
        }
        assert!(Instant::now() < deadline, "never offered: {reply}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        reply["capabilities"], "7",
        "OffersRemoteConfig added: {reply}"
    );
    let file = &reply["remoteConfig"]["config"]["configMap"][""];
    assert_eq!(file["body"], b64(CONFIG_V2.as_bytes()));
    assert_eq!(file["contentType"], "text/yaml");
    let hash = reply["remoteConfig"]["configHash"]
        .as_str()
        .unwrap()
        .to_owned();

    // Applied: not offered again, status recorded; then a failure with its message.
    let steps = json!([
        {"message": {"instanceUid": uid, "sequenceNum": "2", "capabilities": "4099",
            "remoteConfigStatus": {"lastRemoteConfigHash": hash, "status": "RemoteConfigStatuses_APPLIED"}}},
    ]);
    let answers = raw(&server, "ws", &token, &steps);
    assert!(
        answers[1]["reply"].get("remoteConfig").is_none(),
        "{answers:?}"
    );
    let id = uid_hex(&uid);
    let hex_hash: String = base64::engine::general_purpose::STANDARD
        .decode(&hash)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let doc = wait_for_doc(&*fixture, &id, |d| d["sequence_num"] == 2);
    assert_eq!(
        doc["remote_config_status"],
        json!({"last_remote_config_hash": hex_hash, "status": "APPLIED", "error_message": ""})
    );
    // A heartbeat without a status: the stored hash is current, nothing offered.
    let steps = json!([{"message": {"instanceUid": uid, "sequenceNum": "3", "capabilities": "4099",
        "effectiveConfig": effective_config(CONFIG_V2),
        "remoteConfigStatus": {"lastRemoteConfigHash": hash, "status": "RemoteConfigStatuses_FAILED", "errorMessage": "bad pipeline"}}},
        {"message": {"instanceUid": uid, "sequenceNum": "4", "capabilities": "4099"}}]);
    let answers = raw(&server, "http", &token, &steps);
    assert!(
        answers[0]["reply"].get("remoteConfig").is_none(),
        "{answers:?}"
    );
    let doc = wait_for_doc(&*fixture, &id, |d| d["sequence_num"] == 4);
    assert_eq!(doc["remote_config_status"]["status"], "FAILED");
    assert_eq!(doc["remote_config_status"]["error_message"], "bad pipeline");
    assert!(
        answers[1]["reply"].get("remoteConfig").is_none(),
        "{answers:?}"
    );
    assert_eq!(doc["effective_config"]["receivers"], json!({"otlp": {}}));
}

/// Elastic's node client accepts the policy's remote configuration, applies it and reports it
/// APPLIED; the server stops offering it and records the status.
fn elastic_client_applies_remote_config(fixture: Box<dyn Fixture>) {
    let mut doc = policy("collectors", 1, checks());
    doc.data["opamp"] = json!({"config": {"": CONFIG_V2}});
    fixture.add_policy(doc);
    let token = fixture.add_token("collectors").encoded();
    let server = start(&*fixture, "2s");
    let desc = json!({"identifyingAttributes": {"service.name": "edot-collector"}});
    let lines = node(&[
        "elastic",
        &endpoint(&server, "https"),
        &token,
        &ca(&server),
        "2",
        &desc.to_string(),
        "remote",
    ]);
    let result = &lines[0];
    assert_eq!(result["failures"], json!([]), "{result}");
    assert_eq!(
        result["applied"]["files"],
        json!({"": CONFIG_V2}),
        "{result}"
    );
    let hash = result["applied"]["hash"].as_str().unwrap().to_owned();
    let last = result["replies"].as_array().unwrap().last().unwrap();
    assert!(last.get("remoteConfig").is_none(), "offered again: {last}");
    let id =
        fleet_edge::opamp::uid_text(&hex_bytes(result["instance_uid"].as_str().unwrap())).unwrap();
    let doc = wait_for_doc(&*fixture, &id, |d| {
        d["remote_config_status"]["status"] == "APPLIED"
    });
    assert_eq!(doc["remote_config_status"]["last_remote_config_hash"], hash);
    assert_eq!(
        doc["capabilities"],
        json!([
            "ReportsStatus",
            "AcceptsRemoteConfig",
            "ReportsRemoteConfig",
            "ReportsHeartbeat"
        ])
    );
}
