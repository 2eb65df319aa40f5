//! The CPU of a policy ack on the embedded store's worker (`cargo bench -p loadgen --bench ack`):
//! what one backend worker spends per `POST /acks` of a POLICY_CHANGE during a rollout, with
//! agent documents as the loadgen agents leave them (enroll metadata, a checkin's members), the
//! API-key cache in front of the store as the workers have it, and the acks run in batches of 512
//! whose writes share commits (`backend::deferred`), as `backend/workers/runs.rs` runs them.
//!
//! `ACK_BENCH_AGENTS` sets the number of agents (default 4,000); under
//! `valgrind --tool=callgrind` a few hundred are enough to see where the instructions go.
//! Every commit is durable (two-phase, fsync), in a data dir under the system temp dir.
// A benchmark: a failed store call ends the run with its message.
#![allow(clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use fleet_edge::backend::auth_cache::{AuthCacheSettings, CachedAuth};
use fleet_edge::backend::interface::AckInput;
use fleet_edge::backend::local::LocalStore;
use fleet_edge::backend::remote::{Connect, ConnectError, KeyCluster, RemoteClusters};
use fleet_edge::backend::{deferred, ApiKey, NewApiKey, Store};
use fleet_edge::model::{Agent, AgentInfo};
use fleet_edge::transform::remote::RemoteEs;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// No remote cluster is used by these agents' outputs.
struct NoRemotes;

impl Connect for NoRemotes {
    fn connect(&self, _: &RemoteEs) -> Result<Arc<dyn KeyCluster>, ConnectError> {
        panic!("the benchmark's agents have no remote output")
    }
}

/// The `local_metadata` a loadgen agent enrolls and checks in with.
fn local_metadata(id: &str, host: &str) -> Value {
    json!({
        "elastic": {"agent": {"id": id, "version": "9.2.1", "snapshot": false,
            "build.original": "9.2.1 (build: 0123456789abcdef at 2026-08-21 19:06:21 +0000 UTC)",
            "upgradeable": true, "log_level": "info", "complete": false, "unprivileged": false,
            "fips": false}},
        "host": {"architecture": "x86_64", "hostname": host, "name": host, "id": "14",
            "ip": ["127.0.0.1/8", "10.0.0.5/24", "::1/128"], "mac": ["02:42:ac:11:00:02"],
            "memory": 16_777_216_000_u64},
        "os": {"family": "debian", "kernel": "6.8.0-45-generic", "platform": "ubuntu",
            "version": "24.04.1 LTS (Noble Numbat)", "name": "Ubuntu",
            "full": "Ubuntu noble(24.04.1 LTS (Noble Numbat))"}
    })
}

fn agent(i: usize, key: &ApiKey) -> Agent {
    let id = format!("0b6a4b3e-1f7c-4d2a-9e51-{i:012}");
    let host = format!("loadgen-{i:06}");
    Agent {
        id: id.clone(),
        active: true,
        access_api_key_id: key.id.clone(),
        action_seq_no: Some(vec![-1]),
        agent: Some(AgentInfo {
            id: id.clone(),
            version: "9.2.1".into(),
            kind: String::new(),
        }),
        agent_type: "PERMANENT".into(),
        enrolled_at: "2026-12-03T10:00:00Z".into(),
        local_metadata: Some(local_metadata(&id, &host)),
        policy_id: "fleet-edge-default".into(),
        policy_revision_idx: 1,
        last_checkin: "2026-12-03T10:00:01Z".into(),
        last_checkin_status: "online".into(),
        last_checkin_message: "Running".into(),
        components: Some(json!([])),
        ..Agent::default()
    }
}

fn ack_input(key: &ApiKey, agent: &str, revision: i64) -> AckInput {
    let body = serde_json::to_vec(&json!({"events": [{
        "type": "ACTION_RESULT", "subtype": "ACKNOWLEDGED",
        "agent_id": agent, "action_id": format!("policy:fleet-edge-default:{revision}"),
        "message": format!("Action \"policy:fleet-edge-default:{revision}\" of type \"POLICY_CHANGE\" acknowledged."),
        "timestamp": "2026-12-03T10:00:02.123456789Z",
        "payload": {"commit": "abc", "version": "9.2.1"}}]}))
    .expect("ack body");
    AckInput {
        key: key.clone(),
        agent_id: agent.to_owned(),
        body: fleet_edge::api::ack::parse(&body),
    }
}

fn main() {
    let agents: usize = std::env::var("ACK_BENCH_AGENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4_000);
    let dir = std::env::temp_dir().join(format!("fleet-edge-ack-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let local = Arc::new(LocalStore::open(&dir).expect("open the store"));
    let store: Arc<dyn Store> =
        Arc::new(CachedAuth::new(local.clone(), AuthCacheSettings::default()));
    let remotes = RemoteClusters::new(Arc::new(NoRemotes), Default::default());

    // Agents and keys, created in runs so that they share commits.
    let ids: Vec<usize> = (0..agents).collect();
    let mut fleet = Vec::with_capacity(agents);
    for run in ids.chunks(512) {
        let (made, pending) = deferred::collect(|| {
            run.iter()
                .map(|&i| {
                    let key = store
                        .create_api_key(&NewApiKey {
                            name: format!("agent-{i}"),
                            role_descriptors: json!({}),
                            metadata: json!({"agent_id": i}),
                        })
                        .expect("api key");
                    let agent = agent(i, &key);
                    store.create_agent(&agent).expect("create agent");
                    (agent.id, key)
                })
                .collect::<Vec<_>>()
        });
        pending.wait().expect("agents durable");
        fleet.extend(made);
    }

    let mut revision = 1;
    let mut round = |name: &str| {
        revision += 1;
        let inputs: Vec<AckInput> = fleet
            .iter()
            .map(|(id, key)| ack_input(key, id, revision))
            .collect();
        let started = Instant::now();
        for run in inputs.chunks(512) {
            let now = SystemTime::now();
            let (outcomes, pending) = deferred::collect(|| {
                run.iter()
                    .map(|input| fleet_edge::backend::ops::ack::ack(&*store, &remotes, input, now))
                    .collect::<Vec<_>>()
            });
            pending.wait().expect("acks durable");
            for outcome in outcomes {
                let status = outcome.expect("ack answered").status;
                assert_eq!(status, 200);
            }
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "| {name} | {agents} | {:.1} | {:.0} |",
            secs * 1e6 / agents as f64,
            agents as f64 / secs
        );
    };
    println!("| case | acks | µs per ack | acks/s |");
    println!("|---|---|---|---|");
    // The first round fills the API-key cache (a store read and a digest per key).
    round("policy acks, cold key cache");
    round("policy acks, warm key cache");
    round("policy acks, warm key cache (again)");
    decode_cases(&fleet[0].0, &fleet[0].1);
    let check = local
        .agent(&fleet[0].0)
        .expect("read")
        .expect("agent exists");
    assert_eq!(check.policy_revision_idx, revision);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `Agent` as serde's derive read it before `model/agent_de.rs`: the same members, the
/// uninterpreted ones in a flattened map (which makes serde buffer the whole document first).
#[allow(dead_code)]
#[derive(Deserialize)]
struct DerivedAgent {
    #[serde(default)]
    active: bool,
    #[serde(default)]
    access_api_key_id: String,
    #[serde(default)]
    action_seq_no: Option<Vec<i64>>,
    #[serde(default)]
    agent: Option<AgentInfo>,
    #[serde(default, rename = "type")]
    agent_type: String,
    #[serde(default)]
    enrolled_at: String,
    #[serde(default)]
    enrollment_id: String,
    #[serde(default)]
    local_metadata: Option<Value>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    policy_id: String,
    #[serde(default)]
    policy_base_id: String,
    #[serde(default)]
    policy_revision_idx: i64,
    #[serde(default)]
    agent_policy_id: String,
    #[serde(default)]
    replace_token: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    outputs: std::collections::BTreeMap<String, fleet_edge::model::OutputKey>,
    #[serde(default)]
    last_checkin: String,
    #[serde(default)]
    last_checkin_status: String,
    #[serde(default)]
    last_checkin_message: String,
    #[serde(default)]
    components: Option<Value>,
    #[serde(default)]
    unenrolled_at: String,
    #[serde(default)]
    upgrade_details: Option<Value>,
    #[serde(default)]
    audit_unenrolled_reason: String,
    #[serde(default)]
    user_provided_metadata: Option<Value>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

/// Reading one agent document as the benchmark's agents leave it, after a checkin with four
/// components: the reader before `agent_de.rs`, today's full read, and the ack's read.
fn decode_cases(id: &str, key: &ApiKey) {
    let mut doc = agent(0, key);
    doc.components = Some(json!((0..4).map(|i| json!({"id": format!("filestream-default-{i}"),
        "type": "filestream", "status": "HEALTHY", "message": format!("Healthy: communicating with pid '{i}'"),
        "units": [{"id": format!("filestream-default-{i}-unit"), "type": "input", "status": "HEALTHY", "message": "Healthy"}]})).collect::<Vec<_>>()));
    doc.id = id.to_owned();
    let bytes = serde_json::to_vec(&doc).expect("agent source");
    let time = |name: &str, f: &dyn Fn() -> bool| {
        let n = 20_000;
        let started = Instant::now();
        let mut ok = 0;
        for _ in 0..n {
            ok += usize::from(std::hint::black_box(f()));
        }
        assert_eq!(ok, n);
        let ns = started.elapsed().as_nanos() as f64 / n as f64;
        println!("| {name} ({} bytes) | {:.1} µs |", bytes.len(), ns / 1000.0);
    };
    println!();
    println!("| reading one agent document | µs |");
    println!("|---|---|");
    time("derived reader with a flattened map (before)", &|| {
        serde_json::from_slice::<DerivedAgent>(&bytes).is_ok()
    });
    time("`Agent` reader (checkin)", &|| {
        Agent::from_source_without(&bytes, &["last_checkin_message"], true).is_ok()
    });
    time("`Agent` reader for an ack", &|| {
        Agent::from_source_without(
            &bytes,
            &[
                "last_checkin_message",
                "local_metadata",
                "components",
                "user_provided_metadata",
            ],
            false,
        )
        .is_ok()
    });
}
