//! Fuzz target `agent_body`: arbitrary bytes as the body of an agent request, through the real
//! operation the server runs for it (`backend::ops::{enroll, checkin, ack, audit}`) against a
//! memory store holding one policy, its enrollment token and one enrolled agent. This covers the
//! Go-style JSON decoding (`api::json_body`), each body's validation (enroll type, checkin status,
//! `poll_timeout`, `upgrade_details`, ack events of every type, audit reason and timestamp) and
//! what the operation does with a body that passes. No input may panic; every refusal must be an
//! `OpError` whose `ApiError` renders to a response. The enroll, checkin and audit bodies are
//! parsed by `api::{enroll, checkin, ack, audit}::parse` first, as the server does.
//!
//! Input layout: byte 0 picks the endpoint (enroll, checkin, ack, audit/unenroll); the rest is
//! the (decompressed) body.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fleet_edge::api::ApiError;
use fleet_edge::backend::interface::{AckInput, AuditInput, CheckinInput, EnrollInput};
use fleet_edge::backend::memory::MemoryStore;
use fleet_edge::backend::ops::ack::ack;
use fleet_edge::backend::ops::audit::audit_unenroll;
use fleet_edge::backend::ops::checkin::checkin_start;
use fleet_edge::backend::ops::enroll::enroll;
use fleet_edge::backend::remote::{
    Connect, ConnectError, KeyCluster, RemoteClusters, RemoteSettings,
};
use fleet_edge::backend::{ApiKey, NewApiKey, OpError, Store};
use fleet_edge::model::{Agent, AgentInfo, PolicyDoc};
use fleet_edge::transform::remote::RemoteEs;
use libfuzzer_sys::fuzz_target;

/// Remote clusters are never reachable here: a body cannot make the server dial anything.
struct NoRemote;

impl Connect for NoRemote {
    fn connect(&self, _: &RemoteEs) -> Result<Arc<dyn KeyCluster>, ConnectError> {
        Err(ConnectError::Unavailable("fuzzing".into()))
    }
}

const AGENT: &str = "agent-1";

fn setup() -> Option<(MemoryStore, ApiKey, ApiKey)> {
    let store = MemoryStore::new();
    store
        .add_policy(PolicyDoc {
            timestamp: "2026-08-21T18:59:00.000Z".into(),
            policy_id: "p".into(),
            revision_idx: 1,
            data: serde_json::json!({
                "id": "p", "revision": 1,
                "outputs": {"default": {"type": "elasticsearch", "hosts": ["https://es:9200"]}},
                "output_permissions": {"default": {"_elastic_agent_checks": {"cluster": ["monitor"]}}},
                "inputs": []
            }),
            ..PolicyDoc::default()
        })
        .ok()?;
    let token = store.add_enrollment_key("p").ok()?;
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
    Some((store, token, access))
}

fn check(result: Result<(), OpError>) {
    if let Err(e) = result {
        let _ = ApiError::from(&e).to_response();
    }
}

fuzz_target!(|data: &[u8]| {
    let [endpoint, body @ ..] = data else {
        return;
    };
    let Some((store, token, access)) = setup() else {
        panic!("the memory store must accept the fixture");
    };
    let remotes = RemoteClusters::new(Arc::new(NoRemote), RemoteSettings::default());
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    match endpoint % 4 {
        0 => check(
            enroll(
                &store,
                &EnrollInput {
                    key: token,
                    agent_version: Ok("9.2.1".into()),
                    body: fleet_edge::api::enroll::parse(body),
                    pbkdf2_iterations: 1,
                    enrollment_id: None,
                    client_ip: None,
                },
                now,
            )
            .map(drop),
        ),
        1 => check(
            checkin_start(
                &store,
                &remotes,
                &CheckinInput {
                    key: access,
                    agent_id: AGENT.into(),
                    agent_version: Ok("9.2.1".into()),
                    body: fleet_edge::api::checkin::parse(body),
                    deferred: None,
                },
                now,
            )
            .map(drop),
        ),
        2 => check(
            ack(
                &store,
                &remotes,
                &AckInput {
                    key: access,
                    agent_id: AGENT.into(),
                    body: fleet_edge::api::ack::parse(body),
                },
                now,
            )
            .map(drop),
        ),
        _ => check(audit_unenroll(
            &store,
            &AuditInput {
                key: access,
                agent_id: AGENT.into(),
                body: fleet_edge::api::audit::parse(body),
            },
            now,
        )),
    }
});
