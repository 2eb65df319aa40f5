//! File uploads (fleet-protocol.md §8 "Uploads") through the server, as the real agent's uploader
//! (`fleetapi/uploader/uploader.go`, agent-client.md "Uploads") calls them: begin with
//! `"contents":null` and empty hashes, 4 MiB chunks with `X-Chunk-Sha2`, the transit hash; on
//! every store. Then every error row of the upload endpoints over the wire.

use serde_json::{json, Value};

use crate::protocol::{checks, policy, start};
use crate::support::agent::{body_json, Agent, VERSION};
use crate::support::stores::Fixture;
use crate::support::HttpResponse;

pub(crate) const MIB: usize = 1024 * 1024;

/// A request as the agent's fleetapi client builds it, with extra headers.
pub(crate) fn agent_request(
    method: &str,
    path: &str,
    auth: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!(
        "{method} {path}? HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Elastic Agent v{VERSION}\r\nElastic-Api-Version: 2023-06-01\r\nContent-Type: application/json\r\nAccept: application/json\r\nKbn-Xsrf: 1\r\nAccept-Encoding: gzip\r\nContent-Length: {}\r\nAuthorization: ApiKey {auth}\r\n",
        body.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

pub(crate) fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The agent's begin body for a diagnostics bundle of `size` bytes.
pub(crate) fn begin_body(action_id: &str, agent_id: &str, size: usize) -> Value {
    json!({"action_id": action_id, "agent_id": agent_id, "src": "agent",
        "file": {"size": size, "name": "elastic-agent-diagnostics-2026-12-03T08-00-00Z-00.zip",
            "ext": "zip", "mime_type": "application/zip", "hash": {"sha256": "", "md5": ""}},
        "contents": null})
}

pub(crate) fn post(agent: &mut Agent, path: &str, body: &[u8]) -> HttpResponse {
    let key = agent.access_key.clone();
    agent.send(&agent_request("POST", path, &key, &[], body))
}

pub(crate) fn put_chunk(agent: &mut Agent, upload_id: &str, n: usize, data: &[u8]) -> HttpResponse {
    let key = agent.access_key.clone();
    let sum = hex(&sha256(data));
    agent.send(&agent_request(
        "PUT",
        &format!("/api/fleet/uploads/{upload_id}/{n}"),
        &key,
        &[("X-Chunk-Sha2", &sum)],
        data,
    ))
}

/// The transit hash: SHA-256 over the concatenated raw chunk digests.
pub(crate) fn transit_hash(data: &[u8], chunk_size: usize) -> String {
    let mut digests = Vec::new();
    for chunk in data.chunks(chunk_size) {
        digests.extend(sha256(chunk));
    }
    hex(&sha256(&digests))
}

/// The uploader's three steps; returns the upload id.
pub(crate) fn upload(agent: &mut Agent, action_id: &str, data: &[u8]) -> String {
    let id = agent.id.clone();
    let begin = serde_json::to_vec(&begin_body(action_id, &id, data.len())).unwrap();
    let resp = post(agent, "/api/fleet/uploads", &begin);
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let answer = body_json(&resp);
    let chunk_size = answer["chunk_size"].as_u64().unwrap() as usize;
    assert_eq!(chunk_size, 4 * MIB);
    let upload_id = answer["upload_id"].as_str().unwrap().to_owned();
    for (n, chunk) in data.chunks(chunk_size).enumerate() {
        let resp = put_chunk(agent, &upload_id, n, chunk);
        assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
        assert!(resp.body.is_empty());
    }
    let done = json!({"transithash": {"sha256": transit_hash(data, chunk_size)}});
    let resp = post(
        agent,
        &format!("/api/fleet/uploads/{upload_id}"),
        &serde_json::to_vec(&done).unwrap(),
    );
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(body_json(&resp), json!({"status": "ok"}));
    upload_id
}

/// 9 MiB of bytes that are not all alike.
pub(crate) fn bundle(size: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// The stored file, chunk by chunk, through the store's file interface.
fn stored_bytes(fixture: &dyn Fixture, upload_id: &str) -> (Value, Vec<u8>) {
    let store = fixture.store();
    let files = store.files().expect("the store keeps files");
    let info = files.upload(upload_id).unwrap().expect("upload found");
    // Elasticsearch shows the status written by `_update_by_query` to searches after its next
    // refresh (1 s): wait for it, with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let doc = loop {
        let doc = files.upload_doc(&info.doc_id).unwrap().unwrap();
        if doc["file"]["Status"] == "READY" || std::time::Instant::now() > deadline {
            break doc;
        }
        std::thread::yield_now();
    };
    let mut bytes = Vec::new();
    for n in 0..info.chunk_count() {
        bytes.extend(files.read_chunk(&info, n).unwrap().expect("chunk"));
    }
    (Value::Object(doc), bytes)
}

fn diagnostics_bundle_upload(fixture: Box<dyn Fixture>) {
    fixture.add_policy(policy("edge-policy", 1, checks()));
    let token = fixture.add_token("edge-policy");
    let server = start(&*fixture, "1s");
    let (mut agent, _) = Agent::enroll(server.addr, server.tls(), &token.encoded(), &[]);
    let data = bundle(9 * MIB);
    let upload_id = upload(&mut agent, "diag-action-1", &data);
    let (doc, bytes) = stored_bytes(&*fixture, &upload_id);
    assert_eq!(bytes.len(), data.len());
    assert!(bytes == data, "stored bytes differ");
    assert_eq!(doc["file"]["Status"], "READY");
    assert_eq!(doc["file"]["ChunkSize"], 4 * MIB);
    assert_eq!(doc["transithash"]["sha256"], transit_hash(&data, 4 * MIB));
    assert_eq!(doc["agent_id"], agent.id.as_str());
    assert_eq!(doc["action_id"], "diag-action-1");
    assert_eq!(doc["upload_id"], upload_id.as_str());
    assert_eq!(doc["src"], "agent");
    assert!(doc["upload_start"].is_i64());
}

mod memory_store {
    #[test]
    fn diagnostics_bundle_upload() {
        super::diagnostics_bundle_upload(crate::support::stores::memory())
    }
}

mod local_store {
    #[test]
    fn diagnostics_bundle_upload() {
        super::diagnostics_bundle_upload(crate::support::stores::local())
    }
}

mod es_store {
    #[test]
    fn diagnostics_bundle_upload() {
        super::diagnostics_bundle_upload(crate::support::stores::es())
    }
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

#[test]
fn every_upload_error_row_over_the_wire() {
    let fixture = crate::support::stores::memory();
    fixture.add_policy(policy("edge-policy", 1, checks()));
    let token = fixture.add_token("edge-policy");
    let server = start(&*fixture, "1s");
    let (mut agent, _) = Agent::enroll(server.addr, server.tls(), &token.encoded(), &[]);
    let (mut other, _) = Agent::enroll(server.addr, server.tls(), &token.encoded(), &[]);
    let id = agent.id.clone();
    let begin = |agent: &mut Agent, body: &Value| {
        post(
            agent,
            "/api/fleet/uploads",
            &serde_json::to_vec(body).unwrap(),
        )
    };

    // 23: empty body; 24: no agent_id; BadRequest: not a JSON object.
    let r = post(&mut agent, "/api/fleet/uploads", b"");
    assert_eq!(
        error(&r),
        row(400, "ErrFileInfoBodyRequired", "file info body is required")
    );
    let r = begin(&mut agent, &json!({"file": {}}));
    assert_eq!(
        error(&r),
        row(
            400,
            "ErrAgentIDMissing",
            "required field agent_id is missing"
        )
    );
    let r = post(&mut agent, "/api/fleet/uploads", b"[]");
    assert_eq!(r.status, 400);
    assert_eq!(error(&r).1, "BadRequest");
    // 19: the body names another agent than the key's.
    let r = begin(&mut agent, &begin_body("a1", &other.id, 10));
    assert_eq!(
        error(&r),
        row(
            403,
            "ErrAgentIdentity",
            "Agent header contains wrong identifier"
        )
    );
    // 45, 43, 44.
    let mut body = begin_body("a1", &id, 10);
    body["file"]["mime_type"] = json!("");
    let r = begin(&mut agent, &body);
    assert_eq!(
        error(&r),
        row(
            400,
            "ErrFieldRequired",
            "file.mime_type is required: field required"
        )
    );
    let mut body = begin_body("a1", &id, 10);
    body["file"].as_object_mut().unwrap().remove("size");
    let r = begin(&mut agent, &body);
    assert_eq!(
        error(&r),
        row(400, "ErrFileSizeRequired", "file.size is required")
    );
    let r = begin(&mut agent, &begin_body("a1", &id, 0));
    assert_eq!(
        error(&r),
        row(400, "ErrInvalidFileSize", "file.size: 0: invalid filesize")
    );
    // 56: a begin body over 5 MiB is 413 (the connection is closed after it).
    let mut big = begin_body("a1", &id, 10);
    big["padding"] = json!("x".repeat(5 * MIB));
    let r = begin(&mut agent, &big);
    assert_eq!(
        error(&r),
        row(
            413,
            "ErrPayloadSizeTooLarge",
            "the request body exceeds the maximum allowed size"
        )
    );

    // An upload of 4 MiB + 3 bytes: two chunks.
    let data = bundle(4 * MIB + 3);
    let r = begin(&mut agent, &begin_body("act-2", &id, data.len()));
    assert_eq!(r.status, 200);
    let upload_id = body_json(&r)["upload_id"].as_str().unwrap().to_owned();
    // 51: unknown upload id (chunk and complete).
    let r = put_chunk(&mut agent, "no-such-upload", 0, b"abc");
    assert_eq!(error(&r), row(400, "ErrInvalidFileID", "ErrInvalidID"));
    let r = post(&mut agent, "/api/fleet/uploads/no-such-upload", b"{}");
    assert_eq!(error(&r), row(400, "ErrInvalidFileID", "ErrInvalidID"));
    // 39: chunk number out of range.
    let r = put_chunk(&mut agent, &upload_id, 2, b"abc");
    assert_eq!(
        error(&r),
        row(400, "ErrInvalidChunkNum", "invalid chunk number")
    );
    // The binder's 500s: a chunk number that is not one, a missing hash header.
    let key = agent.access_key.clone();
    let r = agent.send(&agent_request(
        "PUT",
        &format!("/api/fleet/uploads/{upload_id}/x"),
        &key,
        &[("X-Chunk-Sha2", "00")],
        b"abc",
    ));
    assert_eq!(r.status, 500);
    let r = agent.send(&agent_request(
        "PUT",
        &format!("/api/fleet/uploads/{upload_id}/0"),
        &key,
        &[],
        b"abc",
    ));
    assert_eq!(
        error(&r),
        row(
            500,
            "BadRequest",
            "Header parameter X-Chunk-SHA2 is required, but not found"
        )
    );
    // 36: the body does not match its hash.
    let r = agent.send(&agent_request(
        "PUT",
        &format!("/api/fleet/uploads/{upload_id}/1"),
        &key,
        &[("X-Chunk-Sha2", &hex(&sha256(b"something else")))],
        b"abc",
    ));
    assert_eq!(
        error(&r),
        row(400, "ErrHashMismatch", "hash does not match")
    );
    // 19: another agent's key on this upload.
    let r = put_chunk(&mut other, &upload_id, 1, &data[4 * MIB..]);
    assert_eq!(error(&r).0, 403);
    // 18: complete without a hash; 56: a complete body over 1 KiB.
    let path = format!("/api/fleet/uploads/{upload_id}");
    let r = post(&mut agent, &path, br#"{"transithash":{"sha256":""}}"#);
    assert_eq!(
        error(&r),
        row(400, "TransitHashRequired", "Transit hash required")
    );
    let long = format!(r#"{{"transithash":{{"sha256":"{}"}}}}"#, "a".repeat(2000));
    let r = post(&mut agent, &path, long.as_bytes());
    assert_eq!(error(&r).0, 413);
    // 35: chunks missing.
    let done = json!({"transithash": {"sha256": transit_hash(&data, 4 * MIB)}}).to_string();
    assert_eq!(
        put_chunk(&mut agent, &upload_id, 1, &data[4 * MIB..]).status,
        200
    );
    let r = post(&mut agent, &path, done.as_bytes());
    assert_eq!(
        error(&r),
        row(
            400,
            "ErrMissingChunks",
            "file data incomplete, not all chunks were uploaded"
        )
    );
    // 40: a wrong transit hash fails validation, and the upload is closed: 41, 38.
    assert_eq!(
        put_chunk(&mut agent, &upload_id, 0, &data[..4 * MIB]).status,
        200
    );
    let wrong = json!({"transithash": {"sha256": hex(&sha256(b"no"))}}).to_string();
    let r = post(&mut agent, &path, wrong.as_bytes());
    assert_eq!(
        error(&r),
        row(400, "ErrFailValidation", "file contents failed validation")
    );
    let r = post(&mut agent, &path, done.as_bytes());
    assert_eq!(
        error(&r),
        row(
            400,
            "ErrStatusNoUploads",
            "file closed, not accepting uploads"
        )
    );
    let r = put_chunk(&mut agent, &upload_id, 0, &data[..4 * MIB]);
    assert_eq!(
        error(&r),
        row(400, "ErrUploadStopped", "upload has stopped")
    );
    let store = fixture.store();
    let files = store.files().unwrap();
    let info = files.upload(&upload_id).unwrap().unwrap();
    assert_eq!(info.status.as_str(), "UPLOAD_ERROR");
    assert!(
        files.chunk_infos(&info).unwrap().is_empty(),
        "chunks deleted"
    );
}

#[test]
fn upload_begin_is_rate_limited_by_upload_start_limit() {
    let fixture = crate::support::stores::memory();
    fixture.add_policy(policy("edge-policy", 1, checks()));
    let token = fixture.add_token("edge-policy");
    let server = crate::support::inproc::InProc::start(
        fixture.store(),
        crate::support::inproc::Options {
            limits_table: Some(&fleet_edge::api::limits::SIZING_TABLES[0]),
            ..Default::default()
        },
    );
    let (mut agent, _) = Agent::enroll(server.addr, server.tls(), &token.encoded(), &[]);
    // lte0500: burst 5, one token per 2 s: of ten begins sent at once about five pass, and the
    // rest are the limiter's 429.
    let id = agent.id.clone();
    let statuses: Vec<u16> = (0..10)
        .map(|i| {
            let body = serde_json::to_vec(&begin_body(&format!("act-{i}"), &id, 10)).unwrap();
            post(&mut agent, "/api/fleet/uploads", &body).status
        })
        .collect();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(limited >= 3, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
}
