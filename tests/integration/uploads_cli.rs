//! The diagnostics workflow end to end through the real binary in embedded mode: the operator's
//! `fleet-edge diagnostics AGENT --wait --output FILE` while an agent-like client receives the
//! REQUEST_DIAGNOSTICS action, uploads a 9 MiB bundle as the agent's uploader does and acks with
//! `data.upload_id`; then `files list`, `files get` and the management API's download (whole and
//! by range); `files send` placing a file an agent then fetches. And a kill -9 in the middle of
//! an upload: the store reopens with the chunks that
//! were acknowledged, the upload finishes READY with the right bytes, and a half-written chunk is
//! never taken for one.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::management::{cli, only_action, roots};
use crate::support::agent::{body_json, raw_request, Agent, VERSION};
use crate::support::{Client, FleetEdge};
use crate::uploads::{bundle, post, put_chunk, transit_hash, upload, MIB};

/// The quick start's enrollment token.
fn token(server: &FleetEdge) -> String {
    let line = server
        .wait_for_log("elastic-agent install", Duration::from_secs(20))
        .unwrap();
    line.split("--enrollment-token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned()
}

/// A plain-HTTP GET on the management API; (status, headers text, body).
fn mgmt_get(server: &FleetEdge, path: &str, range: Option<&str>) -> (u16, String, Vec<u8>) {
    let url = std::fs::read_to_string(server.data_dir.join("management-url")).unwrap();
    let authority = url.trim().trim_start_matches("http://").to_owned();
    let token = std::fs::read_to_string(server.data_dir.join("admin-token")).unwrap();
    let range = range.map(|r| format!("Range: {r}\r\n")).unwrap_or_default();
    let mut c = Client::plain(authority.parse().unwrap()).unwrap();
    let resp = c
        .request(
            format!(
                "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n{range}\r\n",
                token.trim()
            )
            .as_bytes(),
        )
        .unwrap();
    let headers = resp
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\n"))
        .collect::<String>();
    (resp.status, headers, resp.body)
}

/// The agent's ack of a REQUEST_DIAGNOSTICS action whose bundle it uploaded.
pub(crate) fn ack_with_upload(agent: &mut Agent, action_id: &str, upload_id: &str) {
    let body = json!({"events": [{"type": "ACTION_RESULT", "subtype": "ACKNOWLEDGED",
        "agent_id": agent.id, "action_id": action_id,
        "message": format!("Action \"{action_id}\" of type \"REQUEST_DIAGNOSTICS\" acknowledged."),
        "timestamp": "2026-12-03T09:00:01.734912345Z",
        "action_data": {}, "action_response": {},
        "data": {"upload_id": upload_id}}]});
    let raw = raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/acks", agent.id),
        Some(&agent.access_key.clone()),
        &serde_json::to_vec(&body).unwrap(),
        false,
        &format!("Elastic Agent v{VERSION}"),
    );
    let resp = agent.send(&raw);
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
}

#[test]
fn diagnostics_bundle_reaches_the_operator() {
    let server = FleetEdge::start(&["--checkin-long-poll", "2s", "--checkin-jitter", "0s"]);
    server
        .wait_for_log("management API on", Duration::from_secs(20))
        .expect("management API announced");
    let (mut agent, _) = Agent::enroll(server.addr, roots(&server), &token(&server), &[]);
    let (_, first) = agent.checkin();
    agent.apply_policy(only_action(&first));

    // The operator asks and waits, in the background.
    let out_file = server.data_dir.join("../bundle-from-cli.zip");
    let dir = server.data_dir.to_str().unwrap().to_owned();
    let operator = Command::new(env!("CARGO_BIN_EXE_fleet-edge"))
        .args(["diagnostics", &agent.id, "--wait", "60s", "--output"])
        .arg(&out_file)
        .args(["--data-dir", &dir])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The agent gets REQUEST_DIAGNOSTICS, uploads its bundle, acks with the upload id.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let action = loop {
        let (resp, body) = agent.checkin();
        assert_eq!(resp.status, 200);
        let found = body["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == "REQUEST_DIAGNOSTICS")
            .cloned();
        if let Some(action) = found {
            break action;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no REQUEST_DIAGNOSTICS"
        );
    };
    let action_id = action["id"].as_str().unwrap().to_owned();
    let data = bundle(9 * MIB);
    let upload_id = upload(&mut agent, &action_id, &data);
    ack_with_upload(&mut agent, &action_id, &upload_id);

    let output = operator.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let downloaded = std::fs::read(&out_file).unwrap();
    let _ = std::fs::remove_file(&out_file);
    assert!(downloaded == data, "the CLI's bundle differs");

    // files list: one READY file of this agent and action.
    let (code, out, err) = cli(&server, &["files", "list"]);
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.contains(&action_id))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("READY") && line.contains(&agent.id) && line.contains("9437184"),
        "{line}"
    );
    let file_id = format!("{action_id}.{}", agent.id);

    // files get.
    let got = server.data_dir.join("../bundle-from-files-get.zip");
    let (code, _, err) = cli(
        &server,
        &["files", "get", &file_id, "--output", got.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read(&got).unwrap() == data);
    let _ = std::fs::remove_file(&got);

    // The management API: Kibana's listing and download paths.
    let (status, _, body) = mgmt_get(
        &server,
        &format!("/api/fleet/agents/{}/uploads", agent.id),
        None,
    );
    assert_eq!(status, 200);
    let listing: Value = serde_json::from_slice(&body).unwrap();
    let item = &listing["items"][0];
    assert_eq!(item["id"], file_id.as_str());
    assert_eq!(item["status"], "READY");
    let path = item["filePath"].as_str().unwrap().to_owned();
    assert!(
        path.starts_with(&format!("/api/fleet/agents/files/{file_id}/")),
        "{path}"
    );
    let (status, headers, body) = mgmt_get(&server, &path, None);
    assert_eq!(status, 200, "{headers}");
    assert!(headers.contains("application/zip"), "{headers}");
    assert!(
        headers.contains(
            "attachment; filename=\"elastic-agent-diagnostics-2026-12-03T08-00-00Z-00.zip\""
        ),
        "{headers}"
    );
    assert!(body == data, "whole download differs");
    let (status, headers, body) = mgmt_get(&server, &path, Some("bytes=4194300-4194309"));
    assert_eq!(status, 206);
    assert!(
        headers.contains("bytes 4194300-4194309/9437184"),
        "{headers}"
    );
    assert_eq!(body, data[4194300..4194310]);
    let (status, headers, _) = mgmt_get(&server, &path, Some("bytes=0-1,4-5"));
    assert_eq!(status, 416);
    assert!(headers.contains("bytes */9437184"), "{headers}");
}

#[test]
fn kill_9_during_an_upload_leaves_a_finishable_upload() {
    let mut server = FleetEdge::start(&["--checkin-long-poll", "2s", "--checkin-jitter", "0s"]);
    let (mut agent, _) = Agent::enroll(server.addr, roots(&server), &token(&server), &[]);
    let data = bundle(9 * MIB);
    let id = agent.id.clone();
    let begin =
        serde_json::to_vec(&crate::uploads::begin_body("diag-kill", &id, data.len())).unwrap();
    let resp = post(&mut agent, "/api/fleet/uploads", &begin);
    assert_eq!(resp.status, 200);
    let upload_id = body_json(&resp)["upload_id"].as_str().unwrap().to_owned();
    assert_eq!(
        put_chunk(&mut agent, &upload_id, 0, &data[..4 * MIB]).status,
        200
    );
    // Chunk 1 is on its way (head and half the body sent) when the server is killed.
    let key = agent.access_key.clone();
    let raw = crate::uploads::agent_request(
        "PUT",
        &format!("/api/fleet/uploads/{upload_id}/1"),
        &key,
        &[(
            "X-Chunk-Sha2",
            &crate::uploads::hex(&crate::uploads::sha256(&data[4 * MIB..8 * MIB])),
        )],
        &data[4 * MIB..8 * MIB],
    );
    let mut half = Client::tls(server.addr, roots(&server)).unwrap();
    half.send(&raw[..raw.len() / 2]).unwrap();
    server.kill9();
    // What a kill inside the chunk write leaves: a part file.
    let chunk_dir = server.data_dir.join("files").join(&upload_id);
    std::fs::write(chunk_dir.join("1.part"), &data[4 * MIB..5 * MIB]).unwrap();

    let server = FleetEdge::start_in(
        &server.data_dir,
        &["--checkin-long-poll", "2s", "--checkin-jitter", "0s"],
        &[],
    );
    agent.addr = server.addr;
    agent.conn = None;
    // Completing now finds chunks missing; the agent's retry of chunk 1 and 2 finishes it.
    let done = json!({"transithash": {"sha256": transit_hash(&data, 4 * MIB)}}).to_string();
    let path = format!("/api/fleet/uploads/{upload_id}");
    assert_eq!(post(&mut agent, &path, done.as_bytes()).status, 400);
    let resp = put_chunk(&mut agent, &upload_id, 1, &data[4 * MIB..8 * MIB]);
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(
        put_chunk(&mut agent, &upload_id, 2, &data[8 * MIB..]).status,
        200
    );
    let resp = post(&mut agent, &path, done.as_bytes());
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let got = server.data_dir.join("../bundle-after-kill.zip");
    let (code, _, err) = cli(
        &server,
        &[
            "files",
            "get",
            &format!("diag-kill.{id}"),
            "--output",
            got.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read(&got).unwrap() == data);
    let _ = std::fs::remove_file(&got);
    assert!(
        chunk_dir.join("1.part").exists(),
        "the leftover part stays until its upload goes"
    );
}

#[test]
fn max_file_storage_size_reaches_the_uploads() {
    for (setting, size, status, error) in [
        ("0", 10, 403, "ErrFileFeatureDisable"),
        ("100", 101, 400, "ErrFileSizeTooLarge"),
    ] {
        let server = FleetEdge::start(&["--max-file-storage-size", setting]);
        let (mut agent, _) = Agent::enroll(server.addr, roots(&server), &token(&server), &[]);
        let id = agent.id.clone();
        let begin = serde_json::to_vec(&crate::uploads::begin_body("a", &id, size)).unwrap();
        let resp = post(&mut agent, "/api/fleet/uploads", &begin);
        assert_eq!(resp.status, status);
        assert_eq!(body_json(&resp)["error"], error);
    }
}

/// The operator places a 9 MiB file for one agent with `files send`; that agent fetches it
/// whole and by range (`GET /api/fleet/file/{id}`, streamed from the embedded store's file);
/// another agent gets 404; the management API lists it READY with its SHA-256.
#[test]
fn a_file_sent_by_the_operator_reaches_its_agent() {
    let server = FleetEdge::start(&["--checkin-long-poll", "2s", "--checkin-jitter", "0s"]);
    server
        .wait_for_log("management API on", Duration::from_secs(20))
        .expect("management API announced");
    let token = token(&server);
    let (mut agent, _) = Agent::enroll(server.addr, roots(&server), &token, &[]);
    let (mut other, _) = Agent::enroll(server.addr, roots(&server), &token, &[]);
    let data = bundle(9 * MIB + 7);
    let file = server.data_dir.join("../to-send.bin");
    std::fs::write(&file, &data).unwrap();
    let (code, out, err) = cli(
        &server,
        &[
            "files",
            "send",
            "--agent",
            &agent.id,
            "--mime-type",
            "application/x-tar",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_owned();
    assert!(!id.is_empty());

    let key = agent.access_key.clone();
    let path = format!("/api/fleet/file/{id}");
    let r = agent.send(&crate::uploads::agent_request("GET", &path, &key, &[], b""));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.body == data, "delivered bytes differ");
    assert_eq!(r.header("content-type"), Some("application/x-tar"));
    let sum = crate::uploads::hex(&crate::uploads::sha256(&data));
    assert_eq!(r.header("x-file-sha2"), Some(sum.as_str()));
    let r = agent.send(&crate::uploads::agent_request(
        "GET",
        &path,
        &key,
        &[("Range", "bytes=4194300-4194400")],
        b"",
    ));
    assert_eq!(r.status, 206);
    assert!(r.body == data[4_194_300..=4_194_400]);
    let other_key = other.access_key.clone();
    let r = other.send(&crate::uploads::agent_request(
        "GET",
        &path,
        &other_key,
        &[],
        b"",
    ));
    assert_eq!(r.status, 404);

    let (status, _, body) = mgmt_get(&server, "/api/fleet/fleet_edge/deliveries", None);
    assert_eq!(status, 200);
    let listing: Value = serde_json::from_slice(&body).unwrap();
    let item = &listing["items"][0];
    assert_eq!(item["_id"], id.as_str());
    assert_eq!(item["file"]["Status"], "READY");
    assert_eq!(item["file"]["hash"]["sha256"], sum.as_str());
    assert_eq!(item["file"]["Meta"]["target_agents"], json!([agent.id]));
}
