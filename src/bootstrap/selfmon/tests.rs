//! The self-monitor's states (§6.5) and its own agent, against the memory store.

use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use super::*;
use crate::backend::memory::MemoryStore;
use crate::backend::StoreError;
use crate::tls::test_support::TempDir;

fn fleet_server_policy(id: &str, revision: i64, default: bool, with_input: bool) -> PolicyDoc {
    let inputs = if with_input {
        json!([{"type": "fleet-server", "id": "fleet_server-1"}])
    } else {
        json!([])
    };
    PolicyDoc {
        policy_id: id.into(),
        revision_idx: revision,
        default_fleet_server: default,
        data: json!({"id": id, "revision": revision, "inputs": inputs, "outputs": {}}),
        ..PolicyDoc::default()
    }
}

fn tick(m: &mut SelfMonitor, store: &MemoryStore) -> (Health, String) {
    m.tick(store, SystemTime::now(), Instant::now());
    let s = m.state().unwrap();
    (s.health, s.message.clone())
}

#[test]
fn waits_for_the_policy_then_its_input_then_an_enrollment_key() {
    let dir = TempDir::new("selfmon");
    let store = MemoryStore::new();
    let mut m = SelfMonitor::new(None, dir.path());
    assert_eq!(
        tick(&mut m, &store),
        (
            Health::Starting,
            "Waiting on default policy with Fleet Server integration".into()
        )
    );
    let mut named = SelfMonitor::new(Some("fs".into()), dir.path());
    assert_eq!(
        tick(&mut named, &store).1,
        "Waiting on policy with Fleet Server integration: fs"
    );
    store
        .add_policy(fleet_server_policy("fs", 1, true, false))
        .unwrap();
    assert_eq!(
        tick(&mut m, &store),
        (
            Health::Starting,
            "Waiting on fleet-server input to be added to policy: fs".into()
        )
    );
    store
        .add_policy(fleet_server_policy("fs", 2, true, true))
        .unwrap();
    assert_eq!(
        tick(&mut m, &store),
        (
            Health::Starting,
            "Waiting on active enrollment keys to be created in policy with Fleet Server integration: fs".into()
        )
    );
    assert_eq!(m.agent_id(), None);
}

#[test]
fn enrolls_itself_checks_in_as_fleet_edge_and_keeps_its_identity_across_restarts() {
    let dir = TempDir::new("selfmon");
    let store = MemoryStore::new();
    store
        .add_policy(fleet_server_policy("fs", 4, false, true))
        .unwrap();
    store.add_enrollment_key("fs").unwrap();
    let mut m = SelfMonitor::new(Some("fs".into()), dir.path());
    assert_eq!(
        tick(&mut m, &store),
        (
            Health::Healthy,
            "Running on policy with Fleet Server integration: fs".into()
        )
    );
    let id = m.agent_id().unwrap().to_owned();
    let agent = store.agent(&id).unwrap().expect("own agent document");
    assert!(agent.active);
    assert_eq!(agent.policy_id, "fs");
    assert_eq!(agent.policy_revision_idx, 4);
    assert_eq!(agent.last_checkin_status, "online");
    let meta = agent.local_metadata.clone().unwrap();
    assert!(meta["elastic"]["agent"]["build"]["original"]
        .as_str()
        .unwrap()
        .starts_with("fleet-edge "));
    assert_eq!(meta["elastic"]["agent"]["id"], json!(id));
    assert_eq!(meta["host"]["architecture"], json!(std::env::consts::ARCH));
    assert_eq!(meta["os"]["platform"], json!(std::env::consts::OS));
    assert_eq!(
        agent.components.as_ref().unwrap()[0]["type"],
        "fleet-server"
    );
    assert!(access_key(&Identity {
        id: id.clone(),
        access_api_key: serde_json::from_slice::<Identity>(
            &std::fs::read(dir.path().join("fleet-server-agent.json")).unwrap()
        )
        .unwrap()
        .access_api_key
    })
    .is_some_and(|k| store.authenticate(&k).unwrap().is_some()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("fleet-server-agent.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
    }
    // A restart finds its identity: no second agent.
    let mut again = SelfMonitor::new(Some("fs".into()), dir.path());
    assert_eq!(tick(&mut again, &store).0, Health::Healthy);
    assert_eq!(again.agent_id(), Some(id.as_str()));
}

#[test]
fn unenrolled_in_fleet_is_degraded_and_a_deleted_agent_enrolls_again() {
    let dir = TempDir::new("selfmon");
    let store = MemoryStore::new();
    store
        .add_policy(fleet_server_policy("fs", 1, true, true))
        .unwrap();
    store.add_enrollment_key("fs").unwrap();
    let mut m = SelfMonitor::new(None, dir.path());
    assert_eq!(tick(&mut m, &store).0, Health::Healthy);
    let first = m.agent_id().unwrap().to_owned();
    let mut fields = serde_json::Map::new();
    fields.insert("active".into(), json!(false));
    store.update_agent(&first, &fields).unwrap();
    let (health, message) = tick(&mut m, &store);
    assert_eq!(health, Health::Degraded);
    assert!(message.contains("was unenrolled"), "{message}");
    store.delete_agent(&first).unwrap();
    assert_eq!(tick(&mut m, &store).0, Health::Healthy);
    assert_ne!(m.agent_id(), Some(first.as_str()));
}

#[test]
fn a_store_failure_is_failed_and_checkins_resume_after_the_interval() {
    let dir = TempDir::new("selfmon");
    let store = MemoryStore::new();
    store
        .add_policy(fleet_server_policy("fs", 1, true, true))
        .unwrap();
    store.add_enrollment_key("fs").unwrap();
    let mut m = SelfMonitor::new(None, dir.path());
    let t0 = Instant::now();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    m.tick(&store, now, t0);
    let id = m.agent_id().unwrap().to_owned();
    let first = store.agent(&id).unwrap().unwrap().last_checkin;
    // Unchanged state before the interval: no write.
    m.tick(
        &store,
        now + Duration::from_secs(10),
        t0 + Duration::from_secs(10),
    );
    assert_eq!(store.agent(&id).unwrap().unwrap().last_checkin, first);
    m.tick(&store, now + CHECKIN_EVERY, t0 + CHECKIN_EVERY);
    assert_ne!(store.agent(&id).unwrap().unwrap().last_checkin, first);
    store.set_failure(Some(StoreError::Unavailable("down".into())));
    let s = {
        m.tick(&store, now, t0);
        m.state().unwrap().clone()
    };
    assert_eq!(s.health, Health::Failed);
    assert!(
        s.message.starts_with("Error - failed to query policies"),
        "{}",
        s.message
    );
}

#[test]
fn a_busy_store_keeps_the_state_and_an_unhealthy_one_is_rechecked_soon() {
    let dir = TempDir::new("selfmon");
    let store = MemoryStore::new();
    store
        .add_policy(fleet_server_policy("fs", 1, true, true))
        .unwrap();
    store.add_enrollment_key("fs").unwrap();
    let mut m = SelfMonitor::new(None, dir.path());
    let every = Duration::from_secs(5);
    assert!(
        m.round_due(Instant::now(), every),
        "the first round is due at once"
    );
    assert_eq!(tick(&mut m, &store).0, Health::Healthy);
    assert_eq!(m.next_round_in(every), every);
    assert!(!m.round_due(Instant::now() + RECHECK_EVERY, every));
    // Elasticsearch answering 429 (busy, often with this server's own retries) is not FAILED.
    store.set_failure(Some(StoreError::TooManyRequests));
    assert_eq!(tick(&mut m, &store).0, Health::Healthy);
    store.set_failure(Some(StoreError::Unavailable("down".into())));
    assert_eq!(tick(&mut m, &store).0, Health::Failed);
    // Failed: the next round comes within the recheck interval, not the regular one.
    assert_eq!(m.next_round_in(every), RECHECK_EVERY);
    assert!(m.round_due(Instant::now() + RECHECK_EVERY, every));
    store.set_failure(None);
    assert_eq!(tick(&mut m, &store).0, Health::Healthy);
    assert_eq!(m.next_round_in(every), every);
}
