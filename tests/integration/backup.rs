//! `fleet-edge backup` / `restore` through the binary: a backup taken while the server runs and
//! an agent checks in restores into an empty directory, a server started on it serves the enrolled
//! agent (same key, same CA), its tokens and its policy; secrets keep mode 0600; a restore into a
//! non-empty directory is refused; a backup with no server running copies the store itself.

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::agent::Agent;
use crate::support::client::tls_config;
use crate::support::{run_to_exit, FleetEdge, TempDir};

fn ca_roots(data_dir: &std::path::Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(data_dir.join("certs/ca.crt")).unwrap();
    tls_config(
        &[rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap()],
        None,
    )
}

fn printed_token(server: &FleetEdge) -> String {
    let line = server
        .wait_for_log("elastic-agent install", Duration::from_secs(20))
        .unwrap();
    line.split("--enrollment-token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned()
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Runs a management subcommand against `data_dir`; panics unless it succeeds.
fn cli(data_dir: &std::path::Path, args: &[&str]) -> String {
    let dir = data_dir.to_str().unwrap();
    let (status, stdout, stderr) = run_to_exit(args, &[("FLEET_EDGE_DATA_DIR", dir)]);
    assert!(status.success(), "{args:?}: {stderr}");
    stdout
}

#[test]
fn a_backup_taken_under_load_restores_into_a_server_the_agent_still_authenticates_with() {
    let args = ["--checkin-long-poll", "1s", "--checkin-jitter", "0s"];
    let mut server = FleetEdge::start(&args);
    let token = printed_token(&server);
    let tls = ca_roots(&server.data_dir);
    let (mut agent, _) = Agent::enroll(server.addr, Arc::clone(&tls), &token, &["kept"]);
    let (_, body) = agent.checkin();
    let action = body["actions"][0].clone();
    agent.apply_policy(&action);
    agent.ack(&[(action["id"].as_str().unwrap(), "POLICY_CHANGE")]);
    cli(
        &server.data_dir,
        &[
            "tokens",
            "create",
            "--policy",
            "fleet-edge-default",
            "--name",
            "kept-token",
        ],
    );

    // Another agent keeps checking in while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let checkins = Arc::new(AtomicUsize::new(0));
    let (mut busy, _) = Agent::enroll(server.addr, Arc::clone(&tls), &token, &[]);
    let background = {
        let (stop, checkins) = (Arc::clone(&stop), Arc::clone(&checkins));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let (resp, _) = busy.checkin();
                assert_eq!(resp.status, 200);
                checkins.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let archives = TempDir::new("backups");
    let archive = archives.join("edge.tar.gz");
    let out = cli(&server.data_dir, &["backup", archive.to_str().unwrap()]);
    assert!(out.contains("by the running server"), "{out}");
    stop.store(true, Ordering::SeqCst);
    background.join().unwrap();
    assert!(checkins.load(Ordering::SeqCst) > 0);
    assert_eq!(mode(&archive), 0o600, "the archive holds keys");
    let leftovers: Vec<_> = std::fs::read_dir(&server.data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".backup-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(20)).unwrap().success());

    let target = TempDir::new("restored");
    let restored = target.join("data");
    let out = cli(
        &restored,
        &[
            "restore",
            archive.to_str().unwrap(),
            "--data-dir",
            restored.to_str().unwrap(),
        ],
    );
    assert!(out.contains("restored"), "{out}");
    for secret in [
        "admin-token",
        "certs/ca.key",
        "certs/server.key",
        "store/fleet-edge.redb",
    ] {
        assert_eq!(mode(&restored.join(secret)), 0o600, "{secret}");
    }
    assert!(!restored.join("management-url").exists());

    // A server on the restored dir: same CA, the agent's key, its policy and tokens.
    let second = FleetEdge::start_in(&restored, &args, &[]);
    agent.addr = second.addr;
    agent.tls = ca_roots(&restored);
    agent.conn = None;
    let (resp, body) = agent.checkin();
    assert_eq!(resp.status, 200, "{body}");
    // Revision 1 acknowledged before the backup: nothing new to deliver.
    assert_eq!(body["action"], "checkin", "{body}");
    assert!(
        body["actions"].as_array().is_none_or(Vec::is_empty),
        "{body}"
    );
    let tokens = cli(&restored, &["tokens", "list"]);
    assert!(tokens.contains("kept-token"), "{tokens}");
    let agents = cli(&restored, &["agents"]);
    assert!(agents.contains(&agent.id), "{agents}");
    assert!(restored.join("policies/fleet-edge-default.json").is_file());

    // Restoring over a directory with files is refused, and changes nothing.
    let dir = restored.to_str().unwrap();
    let (status, _, stderr) = run_to_exit(
        &["restore", archive.to_str().unwrap(), "--data-dir", dir],
        &[],
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not empty"), "{stderr}");
}

#[test]
fn a_backup_with_no_server_running_copies_the_store_itself() {
    let mut server = FleetEdge::start(&[]);
    let token = printed_token(&server);
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(20)).unwrap().success());
    let archives = TempDir::new("backups-offline");
    let archive = archives.join("edge.tar.gz");
    let out = cli(&server.data_dir, &["backup", archive.to_str().unwrap()]);
    assert!(out.contains("with no server running"), "{out}");
    let target = TempDir::new("restored-offline");
    let restored = target.join("data");
    cli(
        &restored,
        &[
            "restore",
            archive.to_str().unwrap(),
            "--data-dir",
            restored.to_str().unwrap(),
        ],
    );
    let second = FleetEdge::start_in(&restored, &[], &[]);
    let tokens = cli(&restored, &["tokens", "list"]);
    assert!(tokens.contains(&token), "{tokens}");
    drop(second);
}
