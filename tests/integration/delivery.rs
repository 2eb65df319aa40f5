//! File delivery (fleet-protocol.md §8 "File delivery"): `GET /api/fleet/file/{id}` on every
//! store — a file placed for an agent (the embedded and memory stores through the store's
//! placing operations, Elasticsearch through Kibana's `.fleet-fileds-tohost-*` documents) read
//! whole and in ranges across chunks, then every error row of the endpoint over the wire.

use base64::Engine;
use serde_json::json;

use crate::protocol::{checks, policy, start};
use crate::support::agent::{body_json, Agent};
use crate::support::stores::{Es, Fixture};
use crate::support::HttpResponse;
use crate::uploads::{agent_request, bundle, hex, sha256, MIB};

const CHUNK: usize = 4 * MIB;

/// Places `data` for `agents` the way each store gets such files; returns the file id.
fn place(fixture: &dyn Fixture, agents: &[&str], data: &[u8], mime: &str) -> String {
    let agents: Vec<String> = agents.iter().map(|a| (*a).to_owned()).collect();
    if let Some(es) = fixture.as_any().downcast_ref::<Es>() {
        // As Kibana writes them: metadata READY with the target agents, chunks `<id>.<n>`.
        let id = format!("file-{}", data.len());
        es.rest(
            "PUT",
            &format!("/.fleet-fileds-tohost-meta-endpoint/_create/{id}?refresh=true"),
            &json!({"@timestamp": 1_764_748_800_000u64, "file": {"name": "script.sh",
                "size": data.len(), "ChunkSize": CHUNK, "Status": "READY", "mime_type": mime,
                "hash": {"sha256": hex(&sha256(data))},
                "Meta": {"target_agents": agents}}}),
        );
        let count = data.chunks(CHUNK).count();
        for (n, chunk) in data.chunks(CHUNK).enumerate() {
            es.rest(
                "PUT",
                &format!("/.fleet-fileds-tohost-data-endpoint/_create/{id}.{n}?refresh=true"),
                &json!({"@timestamp": 1_764_748_800_000u64, "bid": id, "last": n + 1 == count,
                    "sha2": hex(&sha256(chunk)),
                    "data": base64::engine::general_purpose::STANDARD.encode(chunk)}),
            );
        }
        return id;
    }
    let store = fixture.store();
    let files = store.files().expect("the store keeps files");
    let id = fleet_edge::backend::ops::uuid_v4();
    let mut doc = fleet_edge::backend::delivery::placed_doc(
        "script.sh",
        data.len() as u64,
        Some(mime),
        &agents,
        std::time::SystemTime::now(),
    );
    doc["file"]["hash"] = json!({"sha256": hex(&sha256(data))});
    files.place_begin(&id, &doc).unwrap();
    for (n, part) in data.chunks(CHUNK).enumerate() {
        files.place_part(&id, n as u64, part).unwrap();
    }
    let done = files.place_complete(&id).unwrap();
    assert_eq!(done["file"]["Status"], "READY");
    id
}

fn get(agent: &mut Agent, path: &str, extra: &[(&str, &str)]) -> HttpResponse {
    let key = agent.access_key.clone();
    agent.send(&agent_request("GET", path, &key, extra, b""))
}

fn error(resp: &HttpResponse) -> (u16, String, String) {
    let body = body_json(resp);
    (
        resp.status,
        body["error"].as_str().unwrap_or("").to_owned(),
        body["message"].as_str().unwrap_or("").to_owned(),
    )
}

fn row(status: u16, error: &str, message: &str) -> (u16, String, String) {
    (status, error.to_owned(), message.to_owned())
}

fn file_delivery(fixture: Box<dyn Fixture>) {
    fixture.add_policy(policy("edge-policy", 1, checks()));
    let token = fixture.add_token("edge-policy");
    let server = start(&*fixture, "1s");
    let (mut agent, _) = Agent::enroll(server.addr, server.tls(), &token.encoded(), &[]);
    let (mut other, _) = Agent::enroll(server.addr, server.tls(), &token.encoded(), &[]);
    let data = bundle(9 * MIB + 1);
    let id = place(
        &*fixture,
        &[&agent.id, "someone-else"],
        &data,
        "text/x-shellscript",
    );
    let path = format!("/api/fleet/file/{id}");
    let size = data.len();

    // The whole file: chunks in order, Content-Length = file.size, X-File-SHA2.
    let r = get(&mut agent, &path, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("text/x-shellscript"));
    assert_eq!(r.header("content-length"), Some(size.to_string().as_str()));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let digest = hex(&sha256(&data));
    assert_eq!(r.header("x-file-sha2"), Some(digest.as_str()));
    assert_eq!(r.header("elastic-api-version"), Some("2023-06-01"));
    assert!(r.header("x-request-id").is_some());
    assert!(r.body == data, "delivered bytes differ");

    // One range across two chunks, a suffix, an open end: 206 with Content-Range.
    for (header, start, end) in [
        ("bytes=4194000-8388999", 4_194_000, 8_388_999),
        ("bytes=-100", size - 100, size - 1),
        ("bytes=8388608-", 8_388_608, size - 1),
        ("bytes=7-30", 7, 30),
    ] {
        let r = get(&mut agent, &path, &[("Range", header)]);
        assert_eq!(
            r.status,
            206,
            "{header}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let want = format!("bytes {start}-{end}/{size}");
        assert_eq!(r.header("content-range"), Some(want.as_str()), "{header}");
        assert_eq!(r.header("x-file-sha2"), Some(digest.as_str()));
        assert!(r.body == data[start..=end], "{header}: bytes differ");
    }
    // Ranges adding up to more than the file are ignored: the whole file.
    let r = get(&mut agent, &path, &[("Range", "bytes=0-9437184,0-10")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), size);

    // 49: unsatisfiable, with Content-Range bytes */size; 50: several ranges.
    let r = get(&mut agent, &path, &[("Range", "bytes=99999999-")]);
    assert_eq!(
        error(&r),
        row(416, "ErrRangeNotSatisfiable", "range not satisfiable")
    );
    let star = format!("bytes */{size}");
    assert_eq!(r.header("content-range"), Some(star.as_str()));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let r = get(&mut agent, &path, &[("Range", "bytes=100-20")]);
    assert_eq!(r.status, 416);
    let r = get(&mut agent, &path, &[("Range", "bytes=0-1, 5-6")]);
    assert_eq!(
        error(&r),
        row(
            416,
            "ErrRangeNotSatisfiable",
            "Multipart ranges not satisfiable"
        )
    );

    // 48: a file not targeted at this agent, or no such file: ErrNoFile.
    let r = get(&mut other, &path, &[]);
    assert_eq!(error(&r), row(404, "ErrNoFile", "file not found"));
    let r = get(&mut agent, "/api/fleet/file/no-such-file", &[]);
    assert_eq!(error(&r), row(404, "ErrNoFile", "file not found"));

    // 52: `source` without an allow-listed client; 53: a library lookup that fails.
    let lib = format!("{path}?source=Scripts");
    let r = get(&mut agent, &lib, &[]);
    assert_eq!(
        error(&r),
        row(403, "ErrClientFileForbidden", "client forbidden")
    );
    let r = get(&mut agent, &lib, &[("X-elastic-product-origin", "kibana")]);
    assert_eq!(
        error(&r),
        row(403, "ErrClientFileForbidden", "client forbidden")
    );
    let r = get(
        &mut agent,
        &lib,
        &[("X-elastic-product-origin", "Endpoint-Security")],
    );
    assert_eq!(
        error(&r),
        row(404, "ErrFileForDeliveryNotFound", "file not found")
    );

    // The router: GET only; the access key rows.
    let key = agent.access_key.clone();
    let r = agent.send(&agent_request("POST", &path, &key, &[], b""));
    assert_eq!(r.status, 405);
    let raw = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = agent.send(raw.as_bytes());
    assert_eq!(
        error(&r),
        row(401, "ErrNoAuthHeader", "no authorization header")
    );
    // A valid key that is no agent's access key (the enrollment token): AgentNotFound.
    let r = agent.send(&agent_request("GET", &path, &token.encoded(), &[], b""));
    assert_eq!(
        error(&r),
        row(404, "AgentNotFound", "agent could not be found")
    );
}

mod memory_store {
    #[test]
    fn file_delivery() {
        super::file_delivery(crate::support::stores::memory())
    }
}

mod local_store {
    #[test]
    fn file_delivery() {
        super::file_delivery(crate::support::stores::local())
    }
}

mod es_store {
    use super::*;

    #[test]
    fn file_delivery() {
        super::file_delivery(crate::support::stores::es())
    }

    /// Elasticsearch only: a READY file whose chunks are missing is ErrNoFile.
    #[test]
    fn a_ready_file_without_chunks() {
        let fixture = crate::support::stores::es();
        fixture.add_policy(policy("edge-policy", 1, checks()));
        let token = fixture.add_token("edge-policy");
        let server = start(&*fixture, "1s");
        let (mut agent, _) = Agent::enroll(server.addr, server.tls(), &token.encoded(), &[]);
        let es = fixture.as_any().downcast_ref::<Es>().unwrap();
        let id = "no-chunks";
        es.rest(
            "PUT",
            &format!("/.fleet-fileds-tohost-meta-endpoint/_create/{id}?refresh=true"),
            &json!({"@timestamp": 1_764_748_800_000u64, "file": {"name": "x", "size": 10,
                "Status": "READY", "Meta": {"target_agents": [agent.id]}}}),
        );
        let r = get(&mut agent, &format!("/api/fleet/file/{id}"), &[]);
        assert_eq!(error(&r), row(404, "ErrNoFile", "file not found"));
    }
}
