//! Opening: the lock, foreign and damaged directories, format markers, corrupt files. Every
//! refusal names the path and leaves the directory exactly as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Fresh;
use crate::backend::local::{LocalError, LocalStore};
use crate::backend::Store;
use crate::model::Agent;
use crate::tls::test_support::TempDir;

/// Every file under `dir` with its contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(snapshot(&path));
        } else {
            out.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    out
}

fn open_err(dir: &Path) -> LocalError {
    match LocalStore::open(dir) {
        Ok(_) => panic!("{} opened", dir.display()),
        Err(e) => e,
    }
}

/// `open_err` after this test dropped its store. The store's lock is an `flock`: a process
/// another test forks in the same instant shares the descriptor until it execs (close-on-exec
/// acts only then), so the lock can outlive the drop by that window. Waits, with a deadline, for
/// the lock to be free rather than failing on that race (seen once under a loaded CI machine).
fn reopen_err(dir: &Path) -> LocalError {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match open_err(dir) {
            LocalError::Locked { .. } if std::time::Instant::now() < deadline => {
                std::thread::yield_now();
            }
            err => return err,
        }
    }
}

fn agent(id: &str) -> Agent {
    Agent {
        id: id.into(),
        active: true,
        ..Agent::default()
    }
}

#[test]
fn second_open_fails_while_the_first_holds_the_lock() {
    let Fresh { store, dir } = Fresh::new("local-lock");
    let err = open_err(dir.path());
    assert!(matches!(err, LocalError::Locked { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("store/LOCK"), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    store.create_agent(&agent("still-works")).unwrap();
    drop(store);
    let store = LocalStore::open(dir.path()).unwrap();
    assert!(store.agent("still-works").unwrap().is_some());
}

#[test]
fn corrupt_database_is_an_error_and_left_untouched() {
    let Fresh { store, dir } = Fresh::new("local-corrupt");
    for i in 0..300 {
        let mut a = agent(&format!("agent-{i:04}"));
        a.last_checkin_message = "x".repeat(200);
        store.create_agent(&a).unwrap();
    }
    let path = store.path().to_path_buf();
    drop(store);
    // Damage the second half of the file: live B-tree pages whose checksums must fail.
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len / 2..] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    let before = snapshot(dir.path());

    let err = reopen_err(dir.path());
    assert!(matches!(err, LocalError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
    let after = snapshot(dir.path());
    assert_eq!(
        before.get(&path),
        after.get(&path),
        "the corrupt file was modified"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_corrupt() {
    let Fresh { store, dir } = Fresh::new("local-garbage");
    let path = store.path().to_path_buf();
    drop(store);
    std::fs::write(&path, b"definitely not a redb file, but some bytes").unwrap();
    let before = snapshot(dir.path());
    let err = reopen_err(dir.path());
    assert!(matches!(err, LocalError::Corrupt { .. }), "{err:?}");
    assert_eq!(before.get(&path), snapshot(dir.path()).get(&path));
}

#[test]
fn foreign_directory_is_refused_untouched() {
    let dir = TempDir::new("local-foreign");
    std::fs::create_dir(dir.path().join("store")).unwrap();
    std::fs::write(dir.path().join("store/notes.txt"), "mine").unwrap();
    let before = snapshot(dir.path());
    let err = open_err(dir.path());
    assert!(matches!(err, LocalError::NotAStore { .. }), "{err:?}");
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert_eq!(before, snapshot(dir.path()), "nothing created or changed");
}

#[test]
fn database_without_marker_is_refused() {
    let Fresh { store, dir } = Fresh::new("local-nomarker");
    store.create_agent(&agent("a")).unwrap();
    drop(store);
    std::fs::remove_file(dir.path().join("store/FORMAT")).unwrap();
    let err = reopen_err(dir.path());
    assert!(matches!(err, LocalError::NotAStore { .. }), "{err:?}");
}

#[test]
fn a_newer_or_unknown_format_marker_is_refused() {
    let Fresh { store, dir } = Fresh::new("local-format");
    drop(store);
    let marker = dir.path().join("store/FORMAT");
    std::fs::write(&marker, "fleet-edge local store\nformat 4\n").unwrap();
    let err = reopen_err(dir.path());
    assert!(
        matches!(
            &err,
            LocalError::FormatNewer {
                found: 4,
                expected: 3,
                ..
            }
        ),
        "{err:?}"
    );
    // The database names the version that wrote it.
    let written_by = concat!("written by fleet-edge ", env!("CARGO_PKG_VERSION"));
    assert!(err.to_string().contains(written_by), "{err}");
    std::fs::write(&marker, "fleet-edge local store\nformat 0\n").unwrap();
    assert!(matches!(
        reopen_err(dir.path()),
        LocalError::FormatMismatch { .. }
    ));
    std::fs::write(&marker, "something else\n").unwrap();
    assert!(matches!(
        reopen_err(dir.path()),
        LocalError::NotAStore { .. }
    ));
}

#[test]
fn missing_database_is_not_recreated() {
    let Fresh { store, dir } = Fresh::new("local-missing");
    let path = store.path().to_path_buf();
    store.create_agent(&agent("a")).unwrap();
    drop(store);
    std::fs::remove_file(&path).unwrap();
    let err = reopen_err(dir.path());
    assert!(matches!(err, LocalError::DatabaseMissing { .. }), "{err:?}");
    assert!(!path.exists(), "no empty database was created");
}

#[test]
fn interrupted_initialisation_completes() {
    // Marker written, database file created but still empty: nothing to lose, start fresh.
    let dir = TempDir::new("local-interrupted");
    std::fs::create_dir(dir.path().join("store")).unwrap();
    std::fs::write(
        dir.path().join("store/FORMAT"),
        "fleet-edge local store\nformat 1\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("store/fleet-edge.redb"), b"").unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    store.create_agent(&agent("a")).unwrap();
}

#[test]
fn data_dir_that_is_a_file_is_an_io_error() {
    let dir = TempDir::new("local-file");
    let file = dir.write("data", "x");
    let err = open_err(&file);
    assert!(matches!(err, LocalError::Io { .. }), "{err:?}");
}
