//! What the embedded store sustains on this machine (`cargo bench -p loadgen --bench store`),
//! the capacity embedded mode's default route limits and rollout pacing are derived from
//! (`fleet_edge::api::limits::EMBEDDED`):
//!
//! * policy acks, one thread waiting for each (one commit per ack: what a backend worker did
//!   before acks were batched);
//! * policy acks, one thread in runs of 512 with their durability deferred
//!   (`backend::deferred`, what the worker does with acks queued together);
//! * checkin state writes, `update_agents` in batches of 1,000 (the bulk writer).
//!
//! Every commit is durable (two-phase, fsync), in a data dir under the system temp dir.
// A benchmark: a failed store call ends the run with its message.
#![allow(clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use fleet_edge::backend::local::LocalStore;
use fleet_edge::backend::{deferred, CheckinWrite, PolicyAck, Store};
use fleet_edge::model::Agent;
use serde_json::{json, Value};

const AGENTS: usize = 10_000;

fn agent(i: usize) -> Agent {
    Agent {
        id: format!("agent-{i:05}"),
        active: true,
        access_api_key_id: format!("key-{i:05}"),
        policy_id: "policy-1".into(),
        ..Agent::default()
    }
}

fn policy_ack(revision: i64) -> PolicyAck {
    PolicyAck {
        policy_id: "policy-1".into(),
        revision,
        updated_at: "2026-12-03T10:00:00Z".into(),
        outputs: None,
    }
}

fn main() {
    let dir = std::env::temp_dir().join(format!("fleet-edge-store-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store = Arc::new(LocalStore::open(&dir).expect("open the store"));

    // 10,000 agents, created by 50 threads so that group commit keeps the setup short.
    let threads = 50;
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in (t..AGENTS).step_by(threads) {
                    store.create_agent(&agent(i)).expect("create agent");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("creator thread");
    }
    println!(
        "setup: {AGENTS} agents created in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("| case | writes | commits | writes/commit | writes/s |");
    println!("|---|---|---|---|---|");

    let measure = |name: &str, writes: usize, run: &dyn Fn()| {
        let before = store.commit_stats();
        let started = Instant::now();
        run();
        let secs = started.elapsed().as_secs_f64();
        let commits = store.commit_stats().commits - before.commits;
        println!(
            "| {name} | {writes} | {commits} | {:.1} | {:.0} |",
            writes as f64 / commits.max(1) as f64,
            writes as f64 / secs
        );
    };

    let serial = 300;
    measure("policy acks, one thread, one commit each", serial, &|| {
        for i in 0..serial {
            store
                .policy_acked(&agent(i).id, &policy_ack(2))
                .expect("policy ack");
        }
    });

    measure(
        "policy acks, one thread, runs of 512 deferred",
        AGENTS,
        &|| {
            let ids: Vec<usize> = (0..AGENTS).collect();
            for run in ids.chunks(512) {
                let ((), pending) = deferred::collect(|| {
                    for &i in run {
                        store
                            .policy_acked(&agent(i).id, &policy_ack(3))
                            .expect("queue a policy ack");
                    }
                });
                pending.wait().expect("policy acks durable");
            }
        },
    );

    measure(
        "checkin writes, update_agents batches of 1,000",
        AGENTS,
        &|| {
            let ids: Vec<usize> = (0..AGENTS).collect();
            for batch in ids.chunks(1000) {
                let updates: Vec<(String, CheckinWrite)> = batch
                    .iter()
                    .map(|&i| {
                        let Value::Object(fields) = json!({
                            "last_checkin_status": "online",
                            "last_checkin": "2026-12-03T10:00:01Z",
                        }) else {
                            unreachable!("a JSON object literal")
                        };
                        (agent(i).id, CheckinWrite::fields(fields))
                    })
                    .collect();
                for r in store.update_agents(&updates).expect("bulk write") {
                    r.expect("checkin write");
                }
            }
        },
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
