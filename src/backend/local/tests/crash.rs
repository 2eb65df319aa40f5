//! kill -9 during a write storm loses no acknowledged write.
//!
//! The test re-runs this test binary as a child (`crash_child`, selected by name and switched on by
//! an environment variable naming the data dir). The child opens the store and, from several
//! threads, enrolls like the protocol does (API key, agent) and acks (action result), printing
//! every write to stdout the moment its call returns. The parent reads those lines as they come,
//! SIGKILLs the child once enough are acknowledged (while more are in flight), reopens the store,
//! and checks that every acknowledged write is there and every key still authenticates.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::backend::local::LocalStore;
use crate::backend::{ApiKey, NewApiKey, Store};
use crate::model::{ActionResult, Agent};
use crate::tls::test_support::TempDir;

const CHILD_ENV: &str = "FLEET_EDGE_LOCAL_CRASH_CHILD";
const ROUND_ENV: &str = "FLEET_EDGE_LOCAL_CRASH_ROUND";
/// Kills in a row on the same store: recovery after recovery.
const ROUNDS: usize = 3;
const CHILD_TEST: &str = "backend::local::tests::crash::crash_child";
const THREADS: usize = 8;
/// Acknowledged writes to see before the kill.
const KILL_AFTER: usize = 600;

/// The child: a no-op unless [`CHILD_ENV`] names a data dir.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let round = std::env::var(ROUND_ENV).unwrap_or_default();
    let store = std::sync::Arc::new(LocalStore::open(std::path::Path::new(&dir)).unwrap());
    let stop = Instant::now() + Duration::from_secs(60);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, round) = (store.clone(), round.clone());
            std::thread::spawn(move || {
                let ack = |line: String| {
                    // One write per line, well under PIPE_BUF: lines never interleave; a line
                    // cut by the kill lacks its closing " ." and is ignored.
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(format!("ack {line} .\n").as_bytes());
                    let _ = out.flush();
                };
                for i in 0.. {
                    if Instant::now() > stop {
                        break;
                    }
                    let id = format!("agent-{round}-{t}-{i}");
                    let key = store
                        .create_api_key(&NewApiKey {
                            name: id.clone(),
                            role_descriptors: json!({}),
                            metadata: json!({"agent_id": id}),
                        })
                        .unwrap();
                    ack(format!("key {} {}", key.id, key.secret));
                    let agent = Agent {
                        id: id.clone(),
                        active: true,
                        access_api_key_id: key.id.clone(),
                        ..Agent::default()
                    };
                    store.create_agent(&agent).unwrap();
                    ack(format!("agent {id}"));
                    let result = ActionResult {
                        action_id: format!("action-{t}"),
                        agent_id: id.clone(),
                        timestamp: "2026-01-01T00:00:00Z".into(),
                        ..ActionResult::default()
                    };
                    store.create_action_result(&result).unwrap();
                    ack(format!("result action-{t} {id}"));
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

#[test]
fn kill_9_during_a_write_storm_loses_no_acknowledged_write() {
    let dir = TempDir::new("local-crash");
    let mut acked = Vec::new();
    for round in 0..ROUNDS {
        let killed_at = run_child_and_kill(dir.path(), round, &mut acked);
        let begun = Instant::now();
        let store = LocalStore::open(dir.path()).unwrap();
        let open_time = begun.elapsed();
        let (keys, agents, results) = check_all(&store, &acked);
        println!(
            "crash round {round}: killed after {killed_at} acks; {} acked so far ({keys} keys, \
             {agents} agents, {results} results) all present; reopen (recovery + full verify) \
             took {open_time:?}",
            acked.len()
        );
    }
}

/// Runs the child on `dir` and SIGKILLs it after [`KILL_AFTER`] new acknowledgements; appends
/// every acknowledged write to `acked`; returns how many had been seen at the kill.
fn run_child_and_kill(dir: &std::path::Path, round: usize, acked: &mut Vec<String>) -> usize {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 0;
    let mut killed_at = None;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if let Some(body) = line.strip_prefix("ack ").and_then(|l| l.strip_suffix(" .")) {
                    acked.push(body.to_owned());
                    seen += 1;
                }
                if killed_at.is_none() && seen >= KILL_AFTER {
                    // std's Child::kill is SIGKILL on Unix: no destructor, no clean shutdown.
                    child.kill().unwrap();
                    killed_at = Some(seen);
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("child stalled after {seen} acknowledgements");
            }
        }
    }
    reader.join().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "the child died by SIGKILL");
    killed_at.expect("killed")
}

/// Asserts every acknowledged write is in `store`; counts (keys, agents, results).
fn check_all(store: &LocalStore, acked: &[String]) -> (usize, usize, usize) {
    let (mut keys, mut agents, mut results) = (0, 0, 0);
    for line in acked {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["key", id, secret] => {
                let key = ApiKey {
                    id: (*id).into(),
                    secret: (*secret).into(),
                };
                let info = store.authenticate(&key).unwrap();
                assert!(info.is_some_and(|i| i.enabled), "key {id} lost");
                keys += 1;
            }
            ["agent", id] => {
                assert!(store.agent(id).unwrap().is_some(), "agent {id} lost");
                agents += 1;
            }
            ["result", action, agent] => {
                let found = store.action_results(action).unwrap();
                assert!(
                    found.iter().any(|r| r.agent_id == *agent),
                    "result {action}:{agent} lost"
                );
                results += 1;
            }
            other => panic!("unexpected line {other:?}"),
        }
    }
    (keys, agents, results)
}
