//! Group commit: concurrent writers share commits; the checkin bulk write is one transaction;
//! one write's refusal does not disturb its batch. The numbers are printed (run with
//! `--nocapture`), never asserted as timings (DESIGN.md §6: goals are checked by the benchmark).

use std::sync::{Arc, Barrier};
use std::time::Instant;

use serde_json::{json, Value};

use super::Fresh;
use crate::backend::local::LocalStore;
use crate::backend::{CheckinWrite, Store, StoreError};
use crate::model::Agent;

fn agent(id: &str) -> Agent {
    Agent {
        id: id.into(),
        active: true,
        access_api_key_id: "k".into(),
        policy_id: "p1".into(),
        ..Agent::default()
    }
}

/// `threads` × `per_thread` create_agent calls started together; returns writes/s.
fn storm(store: &Arc<LocalStore>, threads: usize, per_thread: usize, tag: &str) -> f64 {
    let barrier = Arc::new(Barrier::new(threads));
    let begun = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (store, barrier, tag) = (store.clone(), barrier.clone(), tag.to_owned());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..per_thread {
                    store
                        .create_agent(&agent(&format!("{tag}-{t}-{i}")))
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    (threads * per_thread) as f64 / begun.elapsed().as_secs_f64()
}

#[test]
fn concurrent_writers_share_commits() {
    let Fresh { store, .. } = Fresh::new("local-group");
    let store = Arc::new(store);
    println!("| threads x create_agent | writes | commits | writes/commit | writes/s |");
    println!("|---|---|---|---|---|");
    for (threads, per_thread) in [(1, 100), (4, 100), (16, 50), (64, 20)] {
        let base = store.commit_stats();
        let rate = storm(&store, threads, per_thread, &format!("t{threads}"));
        let stats = store.commit_stats();
        let (commits, writes) = (stats.commits - base.commits, stats.writes - base.writes);
        println!(
            "| {threads} x {per_thread} | {writes} | {commits} | {:.1} | {rate:.0} |",
            writes as f64 / commits as f64
        );
        assert_eq!(writes, (threads * per_thread) as u64);
        if threads >= 16 {
            assert!(commits < writes, "{commits} commits for {writes} writes");
        }
    }
    assert_eq!(store.list_agents().unwrap().len(), 100 + 400 + 800 + 1280);
}

#[test]
fn bulk_update_is_one_transaction() {
    let Fresh { store, .. } = Fresh::new("local-bulk");
    for i in 0..100 {
        store.create_agent(&agent(&format!("a{i}"))).unwrap();
    }
    let mut updates: Vec<(String, CheckinWrite)> = (0..100)
        .map(|i| {
            let Value::Object(fields) = json!({"last_checkin_status": "online", "n": i}) else {
                unreachable!()
            };
            (format!("a{i}"), CheckinWrite::fields(fields))
        })
        .collect();
    updates.push(("ghost".into(), CheckinWrite::default()));
    let before = store.commit_stats();
    let results = store.update_agents(&updates).unwrap();
    let after = store.commit_stats();
    assert_eq!(after.commits - before.commits, 1);
    assert_eq!(results.len(), 101);
    assert!(results[..100].iter().all(Result::is_ok));
    assert_eq!(results[100], Err(StoreError::NotFound));
    assert_eq!(
        store.agent("a42").unwrap().unwrap().last_checkin_status,
        "online"
    );
    assert_eq!(store.agent("a42").unwrap().unwrap().other["n"], 42);
}

#[test]
fn a_refused_write_does_not_disturb_its_batch() {
    let Fresh { store, .. } = Fresh::new("local-refused");
    let store = Arc::new(store);
    store.create_agent(&agent("taken")).unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                (0..20)
                    .map(|i| {
                        let id = if i % 2 == 0 {
                            "taken".to_owned()
                        } else {
                            format!("new-{t}-{i}")
                        };
                        store.create_agent(&agent(&id))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        for (i, result) in h.join().unwrap().into_iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(result, Err(StoreError::Conflict));
            } else {
                assert_eq!(result, Ok(()));
            }
        }
    }
    assert_eq!(store.list_agents().unwrap().len(), 1 + 8 * 10);
}
