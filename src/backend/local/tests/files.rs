//! Uploads in the embedded store: chunks are files that survive a reopen, a half-written chunk
//! (`.part`) is never taken for a chunk, and housekeeping removes expired uploads, files past
//! their retention and directories of no upload, and keeps the total under its cap.

use std::time::{Duration, SystemTime};

use serde_json::json;

use super::Fresh;
use crate::backend::files::{ChunkWrite, FileSettings, FileStatus, FileStore, UploadInfo};
use crate::backend::local::LocalStore;
use crate::backend::ops::uploads::sha256_hex;

fn info(upload_id: &str, doc_id: &str, size: u64, start_ms: i64) -> UploadInfo {
    UploadInfo {
        upload_id: upload_id.into(),
        doc_id: doc_id.into(),
        source: "agent".into(),
        agent_id: "a1".into(),
        action_id: "act".into(),
        size,
        chunk_size: 4,
        start_ms,
        status: FileStatus::Awaiting,
    }
}

fn create(store: &LocalStore, i: &UploadInfo) {
    let doc = json!({"upload_id": i.upload_id, "agent_id": i.agent_id, "action_id": i.action_id,
        "src": "agent", "upload_start": i.start_ms,
        "file": {"size": i.size, "ChunkSize": i.chunk_size, "Status": "AWAITING_UPLOAD"}});
    store.create_upload(i, doc.as_object().unwrap()).unwrap();
}

fn write(store: &LocalStore, i: &UploadInfo, pos: u64, data: &[u8]) {
    store
        .write_chunk(
            i,
            &ChunkWrite {
                pos,
                last: false,
                sha2: &sha256_hex(data),
                data,
                timestamp_ms: 0,
            },
        )
        .unwrap();
}

fn now_ms() -> i64 {
    crate::backend::files::epoch_millis(SystemTime::now())
}

#[test]
fn chunks_survive_a_reopen_and_a_part_file_is_not_a_chunk() {
    let Fresh { store, dir } = Fresh::new("local-files-reopen");
    let up = info(
        "0f0e0d0c-0000-4000-8000-000000000001",
        "act.a1",
        10,
        now_ms(),
    );
    create(&store, &up);
    write(&store, &up, 0, b"abcd");
    write(&store, &up, 1, b"efgh");
    assert_eq!(
        store.write_chunk(
            &up,
            &ChunkWrite {
                pos: 1,
                last: false,
                sha2: "",
                data: b"zzzz",
                timestamp_ms: 0
            }
        ),
        Err(crate::backend::StoreError::Conflict),
        "a stored chunk is not replaced"
    );
    drop(store);
    // What a kill during the write of chunk 2 leaves behind.
    let chunk_dir = dir.path().join("files").join(&up.upload_id);
    std::fs::write(chunk_dir.join("2.part"), b"i").unwrap();
    std::fs::write(chunk_dir.join("2.0f0e-stale.part"), b"i").unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let found = store.upload(&up.upload_id).unwrap().unwrap();
    assert_eq!(found, up);
    let mut chunks = store.chunk_infos(&up).unwrap();
    chunks.sort_by_key(|c| c.pos);
    assert_eq!(chunks.len(), 2, "{chunks:?}");
    assert_eq!(
        chunks[0].sha2,
        sha256_hex(b"abcd"),
        "hashed from the bytes on disk"
    );
    assert_eq!(chunks[1].size, 4);
    assert_eq!(store.read_chunk(&up, 1).unwrap().unwrap(), b"efgh");
    store
        .set_upload_status(&up, FileStatus::Ready, Some("ab"))
        .unwrap();
    let doc = store.upload_doc("act.a1").unwrap().unwrap();
    assert_eq!(doc["file"]["Status"], "READY");
    assert_eq!(doc["transithash"]["sha256"], "ab");
    store.delete_chunks(&up).unwrap();
    assert!(!chunk_dir.exists());
}

#[test]
fn housekeeping_removes_expired_retained_and_orphaned_and_caps_the_total() {
    let Fresh { store, dir } = Fresh::new("local-files-sweep");
    let day_ms = 24 * 3600 * 1000;
    let stale = info(
        "00000000-0000-4000-8000-00000000000a",
        "a.a1",
        8,
        now_ms() - 2 * day_ms,
    );
    let old_ready = info(
        "00000000-0000-4000-8000-00000000000b",
        "b.a1",
        8,
        now_ms() - 40 * day_ms,
    );
    let fresh = info("00000000-0000-4000-8000-00000000000c", "c.a1", 8, now_ms());
    for i in [&stale, &old_ready, &fresh] {
        create(&store, i);
        write(&store, i, 0, b"1234");
    }
    store
        .set_upload_status(&old_ready, FileStatus::Ready, Some("x"))
        .unwrap();
    let orphan = dir.path().join("files").join("not-an-upload");
    std::fs::create_dir_all(&orphan).unwrap();
    let settings = FileSettings {
        total_cap: Some(20),
        ..FileSettings::default()
    };
    assert!(store.admit(12, &settings, SystemTime::now()).unwrap());
    assert!(store.upload(&stale.upload_id).unwrap().is_none(), "expired");
    assert!(
        store.upload(&old_ready.upload_id).unwrap().is_none(),
        "past retention"
    );
    assert!(store.upload(&fresh.upload_id).unwrap().is_some());
    assert!(!dir.path().join("files").join(&stale.upload_id).exists());
    assert!(!orphan.exists());
    assert!(dir.path().join("files").join(&fresh.upload_id).exists());
    assert!(
        !store.admit(13, &settings, SystemTime::now()).unwrap(),
        "8 held + 13 is over the cap of 20"
    );
    let later = SystemTime::now() + Duration::from_secs(25 * 3600);
    assert!(
        store.admit(13, &settings, later).unwrap(),
        "the fresh upload expired meanwhile"
    );
}
