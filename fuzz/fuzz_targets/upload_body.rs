//! Fuzz target `upload_body`: arbitrary bytes as the body of an upload begin
//! (`POST /api/fleet/uploads`) or complete (`POST /api/fleet/uploads/{id}`), through the real
//! request step (`api::uploads`) and operation (`backend::ops::uploads`) against a memory store
//! holding one agent and, for complete, one upload whose single chunk is stored.
//!
//! Invariants besides "no panic": every refusal renders to a response; a begin that succeeds
//! stores a metadata document that reads back as an AWAITING_UPLOAD upload of the agent with the
//! body's `file.size`; a complete that succeeds marks the upload READY and was given exactly the
//! transit hash of the stored chunk (either case of hex).
//!
//! Input layout: byte 0 even → begin, odd → complete; the rest is the body.
#![no_main]

use std::time::{Duration, SystemTime};

use fleet_edge::api::ApiError;
use fleet_edge::backend::files::FileSettings;
use fleet_edge::backend::interface::Job;
use fleet_edge::backend::memory::MemoryStore;
use fleet_edge::backend::ops::uploads::{
    begin, chunk, complete, sha256_hex, unhex, BeginInput, ChunkInput, CompleteInput, UploadAnswer,
};
use fleet_edge::backend::{ApiKey, NewApiKey, Store};
use fleet_edge::http::{Method, Request};
use fleet_edge::model::{Agent, AgentInfo};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const AGENT: &str = "agent-1";
const CHUNK: &[u8] = b"the one chunk of a small diagnostics bundle";

fn setup() -> Option<(MemoryStore, ApiKey)> {
    let store = MemoryStore::new();
    let access = Store::create_api_key(
        &store,
        &NewApiKey {
            name: AGENT.into(),
            role_descriptors: serde_json::json!({}),
            metadata: serde_json::json!({}),
        },
    )
    .ok()?;
    Store::create_agent(
        &store,
        &Agent {
            id: AGENT.into(),
            active: true,
            access_api_key_id: access.id.clone(),
            agent: Some(AgentInfo {
                id: AGENT.into(),
                version: "9.2.1".into(),
                kind: String::new(),
            }),
            policy_id: "p".into(),
            policy_revision_idx: 1,
            ..Agent::default()
        },
    )
    .ok()?;
    Some((store, access))
}

fn rendered(e: &ApiError) {
    let _ = e.to_response();
}

fn request(key: &ApiKey, body: &[u8]) -> Request {
    Request {
        peer: None,
        tls: true,
        method: Method::Post,
        path: "/api/fleet/uploads".into(),
        query: None,
        minor_version: 1,
        headers: vec![(
            "authorization".into(),
            format!("ApiKey {}", key.encoded()).into_bytes(),
        )],
        body: body.to_vec(),
        keep_alive: true,
    }
}

fn fuzz_begin(store: &MemoryStore, key: &ApiKey, body: &[u8], now: SystemTime) {
    let input: BeginInput = match fleet_edge::api::uploads::begin(&request(key, body)) {
        Ok(Job::UploadBegin(input)) => input,
        Ok(other) => panic!("begin made another job: {other:?}"),
        Err(e) => return rendered(&e),
    };
    match begin(store, &input, &FileSettings::default(), now) {
        Ok(UploadAnswer::Begun(answer)) => {
            let id = answer["upload_id"].as_str().expect("an upload id");
            let files = store.files().expect("memory files");
            let info = files.upload(id).expect("readable").expect("stored");
            assert_eq!(info.agent_id, AGENT);
            assert_eq!(info.status.as_str(), "AWAITING_UPLOAD");
            let size = input
                .payload
                .as_ref()
                .and_then(|p| p.get("file"))
                .and_then(|f| f.get("size"))
                .and_then(Value::as_u64);
            assert_eq!(Some(info.size), size);
        }
        Ok(other) => panic!("begin answered {other:?}"),
        Err(e) => rendered(&ApiError::from(&e)),
    }
}

fn fuzz_complete(store: &MemoryStore, key: &ApiKey, body: &[u8], now: SystemTime) {
    let payload = serde_json::json!({"action_id": "act", "agent_id": AGENT, "src": "agent",
        "file": {"size": CHUNK.len(), "name": "b.zip", "mime_type": "application/zip"}});
    let input = BeginInput {
        key: key.clone(),
        agent_id: AGENT.into(),
        payload: payload.as_object().cloned(),
    };
    let Ok(UploadAnswer::Begun(answer)) = begin(store, &input, &FileSettings::default(), now)
    else {
        panic!("the fixture upload must begin");
    };
    let upload_id = answer["upload_id"].as_str().unwrap_or_default().to_owned();
    let stored = chunk(
        store,
        &ChunkInput {
            key: key.clone(),
            upload_id: upload_id.clone(),
            chunk: 0,
            sha2: sha256_hex(CHUNK),
            body: CHUNK.to_vec(),
        },
        now,
    );
    assert_eq!(stored, Ok(UploadAnswer::Stored));
    let req = Request {
        path: format!("/api/fleet/uploads/{upload_id}"),
        ..request(key, body)
    };
    let input: CompleteInput = match fleet_edge::api::uploads::complete(&req, &upload_id) {
        Ok(Job::UploadComplete(input)) => input,
        Ok(other) => panic!("complete made another job: {other:?}"),
        Err(e) => return rendered(&e),
    };
    match complete(store, &input, now) {
        Ok(_) => {
            let digest = unhex(&sha256_hex(CHUNK)).expect("hex");
            let transit = sha256_hex(&digest);
            let given: Value = serde_json::Deserializer::from_slice(body)
                .into_iter::<Value>()
                .next()
                .and_then(Result::ok)
                .unwrap_or(Value::Null);
            let given = given["transithash"]["sha256"].as_str().unwrap_or("").trim();
            assert!(
                given.eq_ignore_ascii_case(&transit),
                "READY with hash {given:?}"
            );
            let files = store.files().expect("memory files");
            let info = files.upload(&upload_id).expect("readable").expect("stored");
            assert_eq!(info.status.as_str(), "READY");
        }
        Err(e) => rendered(&ApiError::from(&e)),
    }
}

fuzz_target!(|data: &[u8]| {
    let [which, body @ ..] = data else {
        return;
    };
    let Some((store, key)) = setup() else {
        panic!("the memory store must accept the fixture");
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    if which % 2 == 0 {
        fuzz_begin(&store, &key, body, now);
    } else {
        fuzz_complete(&store, &key, body, now);
    }
});
