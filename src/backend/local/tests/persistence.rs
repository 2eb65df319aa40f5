//! What survives a close and reopen, the admin writes, the blocking change feed, and what is (not)
//! on disk in clear.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use super::Fresh;
use crate::backend::local::LocalStore;
use crate::backend::{ApiKey, Cursor, NewApiKey, Store, StoreError};
use crate::model::{Action, ActionResult, Agent, PolicyDoc};

fn agent(id: &str) -> Agent {
    Agent {
        id: id.into(),
        active: true,
        policy_id: "p1".into(),
        ..Agent::default()
    }
}

fn policy(id: &str, rev: i64) -> PolicyDoc {
    PolicyDoc {
        policy_id: id.into(),
        revision_idx: rev,
        data: json!({"id": id, "revision": rev}),
        ..PolicyDoc::default()
    }
}

fn action(id: &str, agents: &[&str]) -> Action {
    Action {
        action_id: id.into(),
        action_type: "UNENROLL".into(),
        agents: agents.iter().map(|a| a.to_string()).collect(),
        ..Action::default()
    }
}

#[test]
fn reopen_keeps_documents_and_continues_sequences() {
    let Fresh { store, dir } = Fresh::new("local-reopen");
    store.create_agent(&agent("a1")).unwrap();
    let key = store
        .create_api_key(&NewApiKey {
            name: "a1".into(),
            role_descriptors: json!({"r": {}}),
            metadata: json!({"agent_id": "a1"}),
        })
        .unwrap();
    let token = store.add_enrollment_key("p1", "default").unwrap();
    store.add_policy(policy("p1", 1)).unwrap();
    store.add_policy(policy("p1", 2)).unwrap();
    let first = store.add_action(action("act-1", &["a1"])).unwrap();
    store.add_secret("es-password", "hunter2").unwrap();
    let now = SystemTime::now();
    let before = store
        .changes(Cursor::START, now, Duration::ZERO)
        .unwrap()
        .cursor
        .unwrap();
    assert_eq!(
        before,
        Cursor {
            policies: 2,
            actions: 1
        }
    );
    drop(store);

    let store = LocalStore::open(dir.path()).unwrap();
    assert_eq!(store.agent("a1").unwrap().unwrap().policy_id, "p1");
    assert!(store.authenticate(&key).unwrap().unwrap().enabled);
    assert_eq!(
        store.enrollment_key(&token.id).unwrap().unwrap().policy_id,
        "p1"
    );
    assert_eq!(store.latest_policies().unwrap()[0].revision_idx, 2);
    assert_eq!(store.action_seq_no(&first.doc_id).unwrap(), Some(1));
    assert_eq!(
        store.secret("es-password").unwrap().as_deref(),
        Some("hunter2")
    );
    let quiet = store.changes(before, now, Duration::ZERO).unwrap();
    assert_eq!(quiet.cursor, None, "nothing new since the stored cursor");

    let second = store.add_action(action("act-2", &["a1"])).unwrap();
    store.add_policy(policy("p1", 3)).unwrap();
    assert_eq!(second.seq_no, 2, "action seq_no continues after restart");
    let got = store.changes(before, now, Duration::ZERO).unwrap();
    assert_eq!(got.actions.len(), 1);
    assert_eq!(got.actions[0].doc_id, second.doc_id);
    assert_eq!(got.policies.len(), 1);
    assert_eq!(got.policies[0].revision_idx, 3);
    assert_eq!(
        got.cursor,
        Some(Cursor {
            policies: 3,
            actions: 2
        })
    );
    let all = store.changes(Cursor::START, now, Duration::ZERO).unwrap();
    assert_eq!((all.policies.len(), all.actions.len()), (3, 2));
}

#[test]
fn secrets_are_stored_hashed_in_private_files() {
    let Fresh { store, dir } = Fresh::new("local-secrets");
    let key = store
        .create_api_key(&NewApiKey {
            name: "agent".into(),
            role_descriptors: json!({}),
            metadata: json!({}),
        })
        .unwrap();
    let wrong = ApiKey {
        id: key.id.clone(),
        secret: format!("{}x", key.secret),
    };
    assert_eq!(store.authenticate(&wrong).unwrap(), None);
    let path = store.path().to_path_buf();
    drop(store);
    let bytes = std::fs::read(&path).unwrap();
    let found = bytes
        .windows(key.secret.len())
        .any(|w| w == key.secret.as_bytes());
    assert!(!found, "an access key secret is on disk in clear");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("store")), 0o700);
}

#[test]
fn enrollment_keys_list_and_revoke() {
    let Fresh { store, .. } = Fresh::new("local-enroll");
    let a = store.add_enrollment_key("p1", "first").unwrap();
    let b = store.add_enrollment_key("p2", "second").unwrap();
    let listed = store.list_enrollment_keys().unwrap();
    assert_eq!(listed.len(), 2);
    let first = listed.iter().find(|r| r.api_key_id == a.id).unwrap();
    assert_eq!(
        (first.name.as_str(), first.api_key.clone()),
        ("first", a.encoded())
    );
    assert!(!first.created_at.is_empty());

    store.revoke_enrollment_key(&a.id).unwrap();
    assert_eq!(store.enrollment_key(&a.id).unwrap(), None);
    assert!(!store.authenticate(&a).unwrap().unwrap().enabled);
    assert!(store.enrollment_key(&b.id).unwrap().is_some());
    let listed = store.list_enrollment_keys().unwrap();
    assert!(!listed.iter().find(|r| r.api_key_id == a.id).unwrap().active);
    assert_eq!(
        store.revoke_enrollment_key("unknown"),
        Err(StoreError::NotFound)
    );
}

#[test]
fn listings_for_the_management_api() {
    let Fresh { store, .. } = Fresh::new("local-lists");
    store.create_agent(&agent("b")).unwrap();
    store.create_agent(&agent("a")).unwrap();
    let ids: Vec<String> = store
        .list_agents()
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, ["a", "b"]);

    let result = |action: &str, agent: &str| ActionResult {
        action_id: action.into(),
        agent_id: agent.into(),
        timestamp: "2026-01-01T00:00:00Z".into(),
        ..ActionResult::default()
    };
    for (act, ag) in [("x", "a"), ("x", "b"), ("x:y", "a"), ("xx", "a")] {
        store.create_action_result(&result(act, ag)).unwrap();
    }
    let got: Vec<String> = store
        .action_results("x")
        .unwrap()
        .into_iter()
        .map(|r| r.agent_id)
        .collect();
    assert_eq!(got, ["a", "b"]);
    assert_eq!(store.action_results("x:y").unwrap().len(), 1);
    assert!(store.action_results("none").unwrap().is_empty());
}

#[test]
fn actions_keep_ids_and_refuse_duplicate_document_ids() {
    let Fresh { store, .. } = Fresh::new("local-actions");
    let a = store.add_action(action("act", &["x", "x", "y"])).unwrap();
    assert_eq!(a.doc_id.len(), 20);
    let dup = Action {
        doc_id: a.doc_id.clone(),
        ..action("act", &["x"])
    };
    assert_eq!(store.add_action(dup), Err(StoreError::Conflict));
    let b = store.add_action(action("act", &["y"])).unwrap();
    assert_eq!(b.seq_no, a.seq_no + 1, "a refused write takes no seq_no");
    let now = SystemTime::now();
    assert_eq!(store.pending_actions("x", -1, now, 10).unwrap().len(), 1);
    assert_eq!(store.pending_actions("y", -1, now, 10).unwrap().len(), 2);
    assert_eq!(
        store.action("act").unwrap().unwrap().doc_id,
        a.doc_id,
        "the first document of an action id"
    );
}

#[test]
fn change_feed_blocks_until_a_commit_wakes_it() {
    let Fresh { store, .. } = Fresh::new("local-feed");
    let store = std::sync::Arc::new(store);
    let start = store
        .changes(Cursor::START, SystemTime::now(), Duration::ZERO)
        .unwrap()
        .cursor
        .unwrap();
    let waiter = {
        let store = store.clone();
        std::thread::spawn(move || {
            let begun = Instant::now();
            let got = store
                .changes(start, SystemTime::now(), Duration::from_secs(30))
                .unwrap();
            (got, begun.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    store.add_policy(policy("woken", 1)).unwrap();
    let (got, waited) = waiter.join().unwrap();
    assert_eq!(got.policies.len(), 1);
    assert_eq!(got.policies[0].policy_id, "woken");
    assert!(waited < Duration::from_secs(20), "woken by the commit");
}
