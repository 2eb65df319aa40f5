//! The loop's directory watch (`src/net/server/watch.rs`), in a server in this process: a chore
//! whose period is an hour runs when a policy file is renamed into the watched directory or
//! written in place, and what it reads then is the whole file, even one written in several
//! steps. Waits are channel receives bounded at 20 s: with the watch broken they fail instead of
//! hanging, and the hour-long period cannot stand in for it.
#![cfg(target_os = "linux")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet_edge::backend::memory::MemoryStore;

use crate::support::inproc::{InProc, Options};
use crate::support::TempDir;

/// A server whose hour-long chore sends the content of `dir/p.json` each time it runs.
fn watching(dir: &Path) -> (InProc, mpsc::Receiver<Vec<u8>>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let file: PathBuf = dir.join("p.json");
    let dir = dir.to_path_buf();
    let server = InProc::start_prepared(
        Arc::new(MemoryStore::new()),
        Options::default(),
        move |server| {
            let chore = server.every(
                "test scan",
                Duration::from_secs(3600),
                Arc::new(move || {
                    let bytes = std::fs::read(&file).unwrap_or_default();
                    let _ = tx.lock().unwrap().send(bytes);
                }),
            );
            server
                .also_on_change(
                    chore,
                    &dir,
                    fleet_edge::embedded::policy_format::is_policy_file,
                )
                .unwrap();
        },
    );
    (server, rx)
}

fn next_run(rx: &mpsc::Receiver<Vec<u8>>) -> Vec<u8> {
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the chore did not run within 20 s of the write")
}

#[test]
fn a_policy_file_renamed_into_place_runs_the_chore() {
    let tmp = TempDir::new("watch-rename");
    let (_server, rx) = watching(tmp.path());
    std::fs::write(tmp.path().join(".p.json.tmp"), b"{\"rev\": 1}").unwrap();
    std::fs::rename(tmp.path().join(".p.json.tmp"), tmp.path().join("p.json")).unwrap();
    assert_eq!(next_run(&rx), b"{\"rev\": 1}");
    // And again: the watch stays armed after a run.
    std::fs::write(tmp.path().join(".p.json.tmp"), b"{\"rev\": 2}").unwrap();
    std::fs::rename(tmp.path().join(".p.json.tmp"), tmp.path().join("p.json")).unwrap();
    let mut last = next_run(&rx);
    while last != b"{\"rev\": 2}" {
        last = next_run(&rx);
    }
}

#[test]
fn a_file_written_in_several_steps_is_read_whole() {
    let tmp = TempDir::new("watch-steps");
    let (_server, rx) = watching(tmp.path());
    let mut file = std::fs::File::create(tmp.path().join("p.json")).unwrap();
    file.write_all(b"{\"id\": ").unwrap();
    file.sync_all().unwrap();
    file.write_all(b"\"p\"}").unwrap();
    drop(file);
    assert_eq!(next_run(&rx), b"{\"id\": \"p\"}");
}
