//! Upload operations on the memory store: the agent's sequence, and every refusal of the error
//! table that the store side decides.

use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use super::*;
use crate::backend::local::LocalStore;
use crate::backend::memory::MemoryStore;
use crate::backend::NewApiKey;
use crate::model::{Agent, AgentInfo};
use crate::tls::test_support::TempDir;

const MIB: usize = 1024 * 1024;

fn payload(size: u64) -> Map<String, Value> {
    json!({"action_id": "act1", "agent_id": "a1", "src": "agent", "contents": null,
        "file": {"size": size, "name": "elastic-agent-diagnostics.zip", "ext": "zip",
        "mime_type": "application/zip", "hash": {"sha256": "", "md5": ""}}})
    .as_object()
    .cloned()
    .unwrap()
}

fn begin_with(
    store: &dyn Store,
    key: &ApiKey,
    p: Map<String, Value>,
    settings: &FileSettings,
) -> Result<String, OpError> {
    let input = BeginInput {
        key: key.clone(),
        agent_id: p["agent_id"].as_str().unwrap_or("").to_owned(),
        payload: Some(p),
    };
    match begin(store, &input, settings, SystemTime::now())? {
        UploadAnswer::Begun(body) => {
            assert_eq!(body["chunk_size"], 4_194_304);
            Ok(body["upload_id"].as_str().unwrap().to_owned())
        }
        other => panic!("{other:?}"),
    }
}

fn put(
    store: &dyn Store,
    key: &ApiKey,
    id: &str,
    n: i64,
    data: &[u8],
) -> Result<UploadAnswer, OpError> {
    put_at(store, key, id, n, data, SystemTime::now())
}

fn put_at(
    store: &dyn Store,
    key: &ApiKey,
    id: &str,
    n: i64,
    data: &[u8],
    now: SystemTime,
) -> Result<UploadAnswer, OpError> {
    chunk(
        store,
        &ChunkInput {
            key: key.clone(),
            upload_id: id.into(),
            chunk: n,
            sha2: sha256_hex(data),
            body: data.to_vec(),
        },
        now,
    )
}

fn finish(store: &dyn Store, key: &ApiKey, id: &str, body: &str) -> Result<UploadAnswer, OpError> {
    complete(
        store,
        &CompleteInput {
            key: key.clone(),
            upload_id: id.into(),
            body: body.as_bytes().to_vec(),
        },
        SystemTime::now(),
    )
}

/// The agent's transit hash: SHA-256 over the binary digests of the chunks, in order.
fn transit(chunks: &[&[u8]]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for c in chunks {
        ctx.update(ring::digest::digest(&ring::digest::SHA256, c).as_ref());
    }
    hex(ctx.finish().as_ref())
}

fn doc(store: &dyn Store) -> Map<String, Value> {
    store
        .files()
        .unwrap()
        .upload_doc("act1.a1")
        .unwrap()
        .unwrap()
}

/// An active agent `id` with its access key, in any store.
fn seed(store: &dyn Store, id: &str) -> ApiKey {
    let key = store
        .create_api_key(&NewApiKey {
            name: id.into(),
            role_descriptors: json!({}),
            metadata: json!({}),
        })
        .unwrap();
    store
        .create_agent(&Agent {
            id: id.into(),
            active: true,
            access_api_key_id: key.id.clone(),
            agent: Some(AgentInfo {
                id: id.into(),
                version: "9.2.1".into(),
                kind: String::new(),
            }),
            policy_id: "p".into(),
            policy_revision_idx: 1,
            ..Agent::default()
        })
        .unwrap();
    key
}

/// Runs `check` on a memory store and on an embedded store, each with agent `a1`.
fn on_every_store(check: impl Fn(&dyn Store, &ApiKey)) {
    let memory = MemoryStore::new();
    let key = seed(&memory, "a1");
    check(&memory, &key);
    let dir = TempDir::new("uploads-ops");
    let local = LocalStore::open(dir.path()).unwrap();
    let key = seed(&local, "a1");
    check(&local, &key);
}

#[test]
fn the_agents_sequence_ends_ready_with_the_transit_hash() {
    on_every_store(agents_sequence);
}

fn agents_sequence(store: &dyn Store, key: &ApiKey) {
    let data: Vec<u8> = (0..9 * MIB).map(|i| (i % 251) as u8).collect();
    let id = begin_with(
        store,
        key,
        payload(data.len() as u64),
        &FileSettings::default(),
    )
    .unwrap();
    let d = doc(store);
    assert_eq!(d["file"]["Status"], "AWAITING_UPLOAD");
    assert_eq!(d["file"]["ChunkSize"], 4_194_304);
    assert_eq!(d["upload_id"], id.as_str());
    assert!(d["upload_start"].is_i64() && d["@timestamp"] == d["upload_start"]);
    assert_eq!(d["namespaces"], Value::Null);
    assert_eq!(d["contents"], Value::Null, "payload members are kept");
    let parts: Vec<&[u8]> = data.chunks(4 * MIB).collect();
    assert_eq!(parts.len(), 3);
    for (n, part) in parts.iter().enumerate() {
        assert_eq!(
            put(store, key, &id, n as i64, part),
            Ok(UploadAnswer::Stored)
        );
    }
    let body = format!(r#"{{"transithash":{{"sha256":"{}"}}}}"#, transit(&parts));
    assert_eq!(finish(store, key, &id, &body), Ok(UploadAnswer::Completed));
    let d = doc(store);
    assert_eq!(d["file"]["Status"], "READY");
    assert_eq!(d["transithash"]["sha256"], transit(&parts).as_str());
    let files = store.files().unwrap();
    let info = files.upload(&id).unwrap().unwrap();
    let mut joined = Vec::new();
    for n in 0..info.chunk_count() {
        joined.extend(files.read_chunk(&info, n).unwrap().unwrap());
    }
    assert_eq!(joined, data);
    // Row 41: a completed upload takes no second complete; row 38: nor chunks.
    assert_eq!(
        finish(store, key, &id, &body),
        Err(OpError::File(FileRefusal::StatusNoUploads))
    );
    assert_eq!(
        put(store, key, &id, 0, parts[0]),
        Err(OpError::File(FileRefusal::UploadStopped))
    );
}

#[test]
fn begin_validation_rows() {
    on_every_store(begin_validation_rows_on);
}

fn begin_validation_rows_on(store: &dyn Store, key: &ApiKey) {
    let s = FileSettings::default();
    let mut p = payload(10);
    p.remove("src");
    assert_eq!(
        begin_with(store, key, p, &s),
        Err(OpError::File(FileRefusal::FieldRequired(
            "src is required: field required".into()
        )))
    );
    let mut p = payload(10);
    p["file"]
        .as_object_mut()
        .unwrap()
        .insert("name".into(), json!(" "));
    let e = begin_with(store, key, p, &s).unwrap_err();
    assert_eq!(
        crate::api::ApiError::from(&e).to_string(),
        "file.name is required: field required"
    );
    assert_eq!(
        crate::api::ApiError::from(&e).wire(),
        (400, "ErrFieldRequired".into())
    );
    let mut p = payload(10);
    p["file"].as_object_mut().unwrap().remove("size");
    assert_eq!(
        begin_with(store, key, p, &s),
        Err(OpError::File(FileRefusal::FileSizeRequired))
    );
    let e = begin_with(store, key, payload(0), &s).unwrap_err();
    assert_eq!(
        crate::api::ApiError::from(&e).to_string(),
        "file.size: 0: invalid filesize"
    );
    assert_eq!(
        crate::api::ApiError::from(&e).wire(),
        (400, "ErrInvalidFileSize".into())
    );
    let limited = FileSettings {
        max_file_size: Some(100),
        ..FileSettings::default()
    };
    assert_eq!(
        begin_with(store, key, payload(101), &limited),
        Err(OpError::File(FileRefusal::FileSizeTooLarge))
    );
    assert!(begin_with(store, key, payload(100), &limited).is_ok());
    let disabled = FileSettings {
        max_file_size: Some(0),
        ..FileSettings::default()
    };
    let e = begin_with(store, key, payload(1), &disabled).unwrap_err();
    assert_eq!(
        crate::api::ApiError::from(&e).wire(),
        (403, "ErrFileFeatureDisable".into())
    );
    // Row 42: a `null` payload (unreachable over HTTP: agent_id is checked first).
    assert_eq!(
        validate_begin(None, &FileSettings::default()),
        Err(OpError::File(FileRefusal::PayloadRequired))
    );
    // Row 19: the key's agent must be the body's.
    let mut p = payload(10);
    p.insert("agent_id".into(), json!("someone-else"));
    assert!(matches!(
        begin_with(store, key, p, &s),
        Err(OpError::AgentIdentity | OpError::AgentNotFound)
    ));
}

#[test]
fn chunk_rows() {
    on_every_store(chunk_rows_on);
}

fn chunk_rows_on(store: &dyn Store, key: &ApiKey) {
    let id = begin_with(store, key, payload(10), &FileSettings::default()).unwrap();
    assert_eq!(
        put(store, key, "nope", 0, b"x"),
        Err(OpError::File(FileRefusal::InvalidFileId))
    );
    assert_eq!(
        crate::api::ApiError::from(&OpError::File(FileRefusal::InvalidFileId)).wire(),
        (400, "ErrInvalidFileID".into())
    );
    assert_eq!(
        put(store, key, &id, 1, b"x"),
        Err(OpError::File(FileRefusal::InvalidChunkNum))
    );
    assert_eq!(
        put(store, key, &id, -1, b"x"),
        Err(OpError::File(FileRefusal::InvalidChunkNum))
    );
    let later = SystemTime::now() + Duration::from_secs(24 * 3600 + 5);
    assert_eq!(
        put_at(store, key, &id, 0, b"0123456789", later),
        Err(OpError::File(FileRefusal::UploadExpired))
    );
    let bad = ChunkInput {
        key: key.clone(),
        upload_id: id.clone(),
        chunk: 0,
        sha2: sha256_hex(b"other"),
        body: b"0123456789".to_vec(),
    };
    assert_eq!(
        chunk(store, &bad, SystemTime::now()),
        Err(OpError::File(FileRefusal::HashMismatch))
    );
    let info = store.files().unwrap().upload(&id).unwrap().unwrap();
    assert!(
        store
            .files()
            .unwrap()
            .chunk_infos(&info)
            .unwrap()
            .is_empty(),
        "a chunk with a wrong hash is not kept"
    );
    // Upper-case hex is the same hash (Go's EqualFold).
    let upper = ChunkInput {
        sha2: sha256_hex(b"0123456789").to_uppercase(),
        ..bad
    };
    assert_eq!(
        chunk(store, &upper, SystemTime::now()),
        Ok(UploadAnswer::Stored)
    );
}

#[test]
fn complete_rows() {
    on_every_store(complete_rows_on);
}

fn complete_rows_on(store: &dyn Store, key: &ApiKey) {
    let size = 4 * MIB + 5;
    let id = begin_with(store, key, payload(size as u64), &FileSettings::default()).unwrap();
    assert_eq!(
        finish(store, key, &id, "{}"),
        Err(OpError::File(FileRefusal::TransitHashRequired))
    );
    assert_eq!(
        finish(store, key, &id, r#"{"transithash":{"sha256":"  "}}"#),
        Err(OpError::File(FileRefusal::TransitHashRequired))
    );
    assert!(matches!(
        finish(store, key, &id, r#"{"transithash":1}"#),
        Err(OpError::Invalid(_))
    ));
    assert_eq!(
        finish(store, key, "nope", r#"{"transithash":{"sha256":"ab"}}"#),
        Err(OpError::File(FileRefusal::InvalidFileId))
    );
    let first = vec![7u8; 4 * MIB];
    put(store, key, &id, 0, &first).unwrap();
    let body = format!(
        r#"{{"transithash":{{"sha256":"{}"}}}}"#,
        transit(&[&first, b"12345"])
    );
    assert_eq!(
        finish(store, key, &id, &body),
        Err(OpError::File(FileRefusal::MissingChunks))
    );
    put(store, key, &id, 1, b"12345").unwrap();
    let wrong = format!(
        r#"{{"transithash":{{"sha256":"{}"}}}}"#,
        transit(&[b"12345"])
    );
    assert_eq!(
        finish(store, key, &id, &wrong),
        Err(OpError::File(FileRefusal::FailValidation))
    );
    let d = doc(store);
    assert_eq!(d["file"]["Status"], "UPLOAD_ERROR");
    let info = store.files().unwrap().upload(&id).unwrap().unwrap();
    assert!(store
        .files()
        .unwrap()
        .chunk_infos(&info)
        .unwrap()
        .is_empty());
    assert_eq!(
        finish(store, key, &id, &body),
        Err(OpError::File(FileRefusal::StatusNoUploads))
    );
}

#[test]
fn short_middle_chunks_fail_validation() {
    on_every_store(short_middle_chunks_fail_validation_on);
}

fn short_middle_chunks_fail_validation_on(store: &dyn Store, key: &ApiKey) {
    let id = begin_with(
        store,
        key,
        payload(4 * MIB as u64 + 1),
        &FileSettings::default(),
    )
    .unwrap();
    // Two chunks whose total is right but whose first is short.
    let first = vec![1u8; 4 * MIB - 1];
    put(store, key, &id, 0, &first).unwrap();
    put(store, key, &id, 1, b"ab").unwrap();
    let body = format!(
        r#"{{"transithash":{{"sha256":"{}"}}}}"#,
        transit(&[&first, b"ab"])
    );
    assert_eq!(
        finish(store, key, &id, &body),
        Err(OpError::File(FileRefusal::FailValidation))
    );
}

#[test]
fn hex_round_trips_and_refuses_junk() {
    assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
    assert_eq!(unhex("0"), None);
    assert_eq!(unhex("zz"), None);
    assert_eq!(hex(&[0, 255]), "00ff");
}
