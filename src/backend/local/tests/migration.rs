//! Store format versions: a store written in format 1 (today's tables without `info`, made here
//! table by table as that fleet-edge made them) opens migrated with its data; a store whose
//! database says a newer format is refused with one sentence naming the version that wrote it.

use redb::{Database, ReadableDatabase};

use super::super::schema::{self, INFO, META, WRITTEN_BY};
use super::super::LocalStore;
use super::Fresh;
use crate::backend::local::LocalError;
use crate::backend::Store;
use crate::model::Agent;
use crate::tls::test_support::TempDir;

/// A data dir holding a format-1 store with one agent, exactly as format 1 laid it out.
fn format_1_store(dir: &TempDir, agent_id: &str) {
    let store_dir = dir.path().join("store");
    std::fs::create_dir(&store_dir).unwrap();
    std::fs::write(
        store_dir.join("FORMAT"),
        "fleet-edge local store\nformat 1\n",
    )
    .unwrap();
    let db = Database::create(store_dir.join("fleet-edge.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut meta = txn.open_table(META).unwrap();
        meta.insert("format_version", 1).unwrap();
        meta.insert("action_seq", 0).unwrap();
        meta.insert("policy_seq", 0).unwrap();
        txn.open_table(schema::API_KEYS).unwrap();
        txn.open_table(schema::ENROLLMENT).unwrap();
        let mut agents = txn.open_table(schema::AGENTS).unwrap();
        let source = serde_json::json!({"active": true, "policy_id": "p1", "type": "PERMANENT"});
        agents
            .insert(agent_id, serde_json::to_vec(&source).unwrap().as_slice())
            .unwrap();
        txn.open_table(schema::ACTIONS).unwrap();
        txn.open_table(schema::ACTION_DOCS).unwrap();
        txn.open_table(schema::ACTION_IDS).unwrap();
        txn.open_table(schema::AGENT_ACTIONS).unwrap();
        txn.open_table(schema::RESULTS).unwrap();
        txn.open_table(schema::POLICIES).unwrap();
        txn.open_table(schema::POLICY_LATEST).unwrap();
        txn.open_table(schema::SECRETS).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn a_format_1_store_is_migrated_and_keeps_its_data() {
    let dir = TempDir::new("local-migrate");
    format_1_store(&dir, "agent-from-format-1");
    let store = LocalStore::open(dir.path()).unwrap();
    let agent: Agent = store.agent("agent-from-format-1").unwrap().unwrap();
    assert_eq!(agent.policy_id, "p1");
    drop(store);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("store/FORMAT")).unwrap(),
        "fleet-edge local store\nformat 3\n"
    );
    let db = Database::open(dir.path().join("store/fleet-edge.redb")).unwrap();
    let txn = db.begin_read().unwrap();
    let version = txn.open_table(META).unwrap().get("format_version").unwrap();
    assert_eq!(version.unwrap().value(), 3);
    txn.open_table(schema::UPLOADS)
        .expect("format 3 has the uploads table");
    let info = txn.open_table(INFO).unwrap();
    let by = info.get(WRITTEN_BY).unwrap().unwrap().value().to_owned();
    assert_eq!(by, concat!("fleet-edge ", env!("CARGO_PKG_VERSION")));
    drop((info, txn, db));
    // Opened again: nothing left to migrate, the agent still there.
    let store = LocalStore::open(dir.path()).unwrap();
    assert!(store.agent("agent-from-format-1").unwrap().is_some());
}

#[test]
fn a_database_of_a_newer_format_is_refused_in_one_sentence() {
    let Fresh { store, dir } = Fresh::new("local-newer");
    let db_path = store.path().to_path_buf();
    drop(store);
    {
        let db = Database::open(&db_path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("format_version", 7)
            .unwrap();
        txn.open_table(INFO)
            .unwrap()
            .insert(WRITTEN_BY, "fleet-edge 9.9.9")
            .unwrap();
        txn.commit().unwrap();
    }
    let err = LocalStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, LocalError::FormatNewer { found: 7, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("written by fleet-edge 9.9.9"), "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    assert!(!message.contains('\n'), "{message}");
    // Nothing was migrated or stamped: the newer binary finds its store as it left it.
    let db = Database::open(&db_path).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    assert_eq!(meta.get("format_version").unwrap().unwrap().value(), 7);
    let info = txn.open_table(INFO).unwrap();
    let by = info.get(WRITTEN_BY).unwrap().unwrap().value().to_owned();
    assert_eq!(by, "fleet-edge 9.9.9");
}
