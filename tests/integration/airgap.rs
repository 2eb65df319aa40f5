//! Air-gapped upgrades through the real binary over real TLS (issue 17): the PGP key endpoint's
//! every row (TLS/plain, mode, version parse, absent key with an unreachable or a working
//! upstream), and the artifact mirror under `/downloads/` (GET, HEAD, Range resume, 416, ETag,
//! traversal attempts, symlinks out, non-regular files, memory while streaming a large file).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use crate::management::{cli, json_of, only_action};
use crate::support::agent::Agent;
use crate::support::client::tls_config;
use crate::support::{Client, FleetEdge, TempDir};

const KEY: &[u8] = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBFwkv7cBEAC\n-----END PGP PUBLIC KEY BLOCK-----\n";
const PGP_PATH: &str = "/api/agents/upgrades/9.6.0/pgp-public-key";

fn ca_roots(server: &FleetEdge) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(server.data_dir.join("certs/ca.crt")).unwrap();
    tls_config(
        &[rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap()],
        None,
    )
}

fn client(server: &FleetEdge) -> Client {
    Client::tls(server.addr, ca_roots(server)).unwrap()
}

fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n").into_bytes()
}

/// A port nothing listens on (connection refused at once).
fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/GPG-KEY-elastic-agent",
        listener.local_addr().unwrap()
    );
    drop(listener);
    url
}

fn write_mode(path: &Path, bytes: &[u8], mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn pgp_key_rows_over_tls() {
    let upstream = closed_port_url();
    let server = FleetEdge::start(&["--pgp-upstream-url", &upstream]);
    let mut c = client(&server);

    // Absent key, upstream unreachable: 500.
    let r = c.request(&get(PGP_PATH, "")).unwrap();
    assert_eq!(r.status, 500, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"], "BadRequest");

    // Non-integer version parts: 500 from the binder; two parts: not a route.
    let r = c
        .request(&get("/api/agents/upgrades/9.x.0/pgp-public-key", ""))
        .unwrap();
    assert_eq!(r.status, 500);
    let r = c
        .request(&get("/api/agents/upgrades/9.6/pgp-public-key", ""))
        .unwrap();
    assert_eq!(r.status, 404);

    // A key that is not mode 0600 is refused, never served.
    let key_path = server.data_dir.join("pgp/default.pgp");
    write_mode(&key_path, KEY, 0o644);
    let r = c.request(&get(PGP_PATH, "")).unwrap();
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["message"], "pgp key permissions are not 0600");

    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = c.request(&get(PGP_PATH, "")).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, KEY);
    assert!(r.header("x-request-id").is_some());
    // No authentication is needed, and any integer version is the same key.
    let r = c
        .request(&get("/api/agents/upgrades/8.17.1/pgp-public-key", ""))
        .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, KEY));
    let mut post = get(PGP_PATH, "");
    post.splice(0..3, b"POST".iter().copied());
    assert_eq!(c.request(&post).unwrap().status, 405);
}

#[test]
fn pgp_key_over_plain_http_is_501() {
    let server = FleetEdge::start(&["--fleet-server-insecure-http"]);
    write_mode(&server.data_dir.join("pgp/default.pgp"), KEY, 0o600);
    let mut c = Client::plain(server.addr).unwrap();
    let r = c.request(&get(PGP_PATH, "")).unwrap();
    assert_eq!(r.status, 501);
    assert_eq!(
        r.json(),
        serde_json::json!({"statusCode":501,"error":"ErrTLSRequired","message":"server must run with tls to use this endpoint"})
    );
}

/// Serves `body` once per connection over plain HTTP, counting requests.
fn one_shot_upstream(body: &'static [u8]) -> (String, std::thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/GPG-KEY-elastic-agent",
        listener.local_addr().unwrap()
    );
    let handle = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && sock.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        sock.write_all(reply.as_bytes()).unwrap();
        sock.write_all(body).unwrap();
        1
    });
    (url, handle)
}

#[test]
fn pgp_key_absent_is_fetched_upstream_and_written_0600() {
    let (upstream, served) = one_shot_upstream(KEY);
    let server = FleetEdge::start(&["--pgp-upstream-url", &upstream]);
    let mut c = client(&server);
    let r = c.request(&get(PGP_PATH, "")).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, KEY));
    assert_eq!(served.join().unwrap(), 1);
    let key_path = server.data_dir.join("pgp/default.pgp");
    assert_eq!(std::fs::read(&key_path).unwrap(), KEY);
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The upstream is gone now: the written file serves.
    let r = c.request(&get(PGP_PATH, "")).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, KEY));
}

const PACKAGE: &str = "beats/elastic-agent/elastic-agent-9.6.0-linux-arm64.tar.gz";

fn package_bytes() -> Vec<u8> {
    (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[test]
fn mirror_serves_ranges_head_and_validators() {
    let server = FleetEdge::start(&[]);
    let mirror = server.data_dir.join("downloads");
    assert!(
        mirror.is_dir(),
        "embedded mode creates the mirror directory"
    );
    let data = package_bytes();
    write_mode(&mirror.join(PACKAGE), &data, 0o644);
    let path = format!("/downloads/{PACKAGE}");
    let mut c = client(&server);

    let full = c.request(&get(&path, "")).unwrap();
    assert_eq!(full.status, 200);
    assert!(full.body == data, "whole file");
    let etag = full.header("etag").unwrap().to_owned();
    assert!(etag.starts_with('"'));
    assert!(full.header("last-modified").unwrap().ends_with(" GMT"));
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    assert_eq!(full.header("content-type"), Some("application/gzip"));
    assert!(full.header("elastic-api-version").is_none());

    // An interrupted download resumes where it stopped, and the pieces are the file.
    let first = c.request(&get(&path, "Range: bytes=0-99999\r\n")).unwrap();
    assert_eq!(first.status, 206);
    assert_eq!(first.header("content-range"), Some("bytes 0-99999/300000"));
    let rest = c
        .request(&get(
            &path,
            &format!("Range: bytes=100000-\r\nIf-Range: {etag}\r\n"),
        ))
        .unwrap();
    assert_eq!(rest.status, 206);
    assert_eq!(
        rest.header("content-range"),
        Some("bytes 100000-299999/300000")
    );
    let mut joined = first.body.clone();
    joined.extend_from_slice(&rest.body);
    assert!(joined == data, "range pieces make the file");
    let suffix = c.request(&get(&path, "Range: bytes=-10\r\n")).unwrap();
    assert_eq!(
        (suffix.status, suffix.body.as_slice()),
        (206, &data[299_990..])
    );

    // A range of another version is not stitched onto it.
    let stale = c
        .request(&get(
            &path,
            "Range: bytes=100000-\r\nIf-Range: \"other\"\r\n",
        ))
        .unwrap();
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body.len(), data.len());

    for bad in ["bytes=300000-", "bytes=9-3", "bytes=x-y", "lines=1-2"] {
        let r = c
            .request(&get(&path, &format!("Range: {bad}\r\n")))
            .unwrap();
        assert_eq!(r.status, 416, "{bad}");
        assert_eq!(r.header("content-range"), Some("bytes */300000"), "{bad}");
    }

    let cached = c
        .request(&get(&path, &format!("If-None-Match: {etag}\r\n")))
        .unwrap();
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());

    // HEAD: the GET's headers and length, no body (the next response on the connection is
    // read cleanly right after it).
    c.send(format!("HEAD {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .unwrap();
    let head = c.read_head_response().unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("300000"));
    assert_eq!(head.header("etag"), Some(etag.as_str()));
    let after = c.request(&get(&path, "Range: bytes=0-3\r\n")).unwrap();
    assert_eq!((after.status, after.body.as_slice()), (206, &data[..4]));

    let mut post = get(&path, "Content-Length: 0\r\n");
    post.splice(0..3, b"POST".iter().copied());
    let r = c.request(&post).unwrap();
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
}

#[test]
fn mirror_refuses_traversal_symlinks_out_and_non_regular_files() {
    let server = FleetEdge::start(&[]);
    let mirror = server.data_dir.join("downloads");
    write_mode(&mirror.join("beats/inside.sha512"), b"abc  inside\n", 0o644);
    let outside = TempDir::new("outside");
    write_mode(&outside.join("secret.txt"), b"secret", 0o644);
    std::os::unix::fs::symlink(outside.join("secret.txt"), mirror.join("out-file")).unwrap();
    std::os::unix::fs::symlink(outside.path(), mirror.join("out-dir")).unwrap();
    std::os::unix::fs::symlink(server.data_dir.join("admin-token"), mirror.join("token")).unwrap();
    std::os::unix::fs::symlink(mirror.join("beats/inside.sha512"), mirror.join("in-link")).unwrap();
    let fifo = mirror.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());

    let mut c = client(&server);
    let ok = c
        .request(&get("/downloads/beats/inside.sha512", ""))
        .unwrap();
    assert_eq!(
        (ok.status, ok.body.as_slice()),
        (200, &b"abc  inside\n"[..])
    );
    assert_eq!(ok.header("content-type"), Some("text/plain; charset=utf-8"));
    let linked = c.request(&get("/downloads/in-link", "")).unwrap();
    assert_eq!(linked.status, 200, "a symlink inside the mirror is served");

    for path in [
        "/downloads/../admin-token",
        "/downloads/beats/../../admin-token",
        "/downloads/%2e%2e/admin-token",
        "/downloads/%2E%2E/%2e%2e/etc/passwd",
        "/downloads/beats/%2e%2e%2f%2e%2e%2fadmin-token",
        "/downloads//etc/passwd",
        "/downloads/%2fetc%2fpasswd",
        "/downloads/out-file",
        "/downloads/out-dir/secret.txt",
        "/downloads/token",
        "/downloads/fifo",
        "/downloads/beats",
        "/downloads/beats/",
        "/downloads/",
        "/downloads/missing.tar.gz",
        "/downloads/.hidden",
    ] {
        let r = c.request(&get(path, "")).unwrap();
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.body, b"404 page not found\n", "{path}");
    }
}

/// VmRSS of a process, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn mirror_streams_a_large_file_to_a_slow_reader_in_bounded_memory() {
    const SIZE: u64 = 200 * 1024 * 1024;
    let server = FleetEdge::start(&[]);
    let path = server.data_dir.join("downloads/big.tar.gz");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(SIZE).unwrap(); // sparse: no disk used
    file.write_all_at(b"HEAD", 0).unwrap();
    file.write_all_at(b"TAIL", SIZE - 4).unwrap();
    drop(file);

    let mut c = client(&server);
    // Warm up the connection and the loop's buffers before the baseline.
    assert_eq!(c.request(&get("/api/status", "")).unwrap().status, 200);
    let baseline = rss_kib(server.pid());

    let sock = std::net::TcpStream::connect(server.addr).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(ca_roots(&server), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(&get("/downloads/big.tar.gz", "")).unwrap();

    // The head, then the body as it arrives.
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        let n = tls.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before the head");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains(&format!("Content-Length: {SIZE}")), "{head}");
    let body_start = buf.split_off(head_end);
    let mut first: Vec<u8> = body_start.iter().take(4).copied().collect();
    let mut received = body_start.len() as u64;
    let mut last = body_start;
    let mut peak = baseline;
    let mut reads: u64 = 0;
    while received < SIZE {
        let n = tls.read(&mut chunk).unwrap();
        assert!(n > 0, "closed after {received} body bytes");
        received += n as u64;
        let missing = 4 - first.len().min(4);
        first.extend(chunk[..n].iter().take(missing));
        last.extend_from_slice(&chunk[..n]);
        let keep = last.len().saturating_sub(8);
        last.drain(..keep);
        reads += 1;
        // The server's memory is sampled while its output backs up behind this reader (each
        // sample pauses the reading).
        if reads.is_multiple_of(128) {
            peak = peak.max(rss_kib(server.pid()));
        }
    }
    assert_eq!(received, SIZE);
    assert_eq!(first, b"HEAD");
    assert!(last.ends_with(b"TAIL"));
    peak = peak.max(rss_kib(server.pid()));
    let grew = peak.saturating_sub(baseline);
    assert!(
        grew < 16 * 1024,
        "server RSS grew {grew} KiB while streaming a 200 MiB file (baseline {baseline} KiB)"
    );
}

fn sha512_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA512, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The air-gap walk-through: `pgp import`, `artifacts import` (verified against its `.sha512`;
/// a mismatch imports nothing), `artifacts` lists, an UPGRADE whose `source_uri` is the mirror,
/// and the agent downloading from it the package, its `.sha512` and the PGP key.
#[test]
fn import_upgrade_and_download_from_the_mirror() {
    let server = FleetEdge::start(&["--checkin-long-poll", "30s", "--checkin-jitter", "0s"]);
    server
        .wait_for_log("management API on", std::time::Duration::from_secs(20))
        .expect("management API announced");
    let staging = TempDir::new("staging");

    // PGP key: a file that is not a key is refused; a key is installed 0600 and served.
    std::fs::write(staging.join("junk.txt"), b"not a key").unwrap();
    let (code, _, err) = cli(
        &server,
        &["pgp", "import", staging.join("junk.txt").to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");
    std::fs::write(staging.join("GPG-KEY-elastic-agent"), KEY).unwrap();
    let key_file = staging.join("GPG-KEY-elastic-agent");
    let (code, out, err) = cli(&server, &["pgp", "import", key_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("default.pgp"), "{out}");
    let installed = server.data_dir.join("pgp/default.pgp");
    assert_eq!(
        std::fs::metadata(&installed).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A package whose .sha512 does not match is refused and leaves nothing.
    let name = "elastic-agent-9.6.0-linux-x86_64.tar.gz";
    let data = package_bytes();
    let package = staging.join(name);
    std::fs::write(&package, &data).unwrap();
    let checksum = staging.join(&format!("{name}.sha512"));
    std::fs::write(&checksum, format!("{}  {name}\n", sha512_hex(b"other"))).unwrap();
    let (code, _, err) = cli(&server, &["artifacts", "import", package.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not match"), "{err}");
    let (code, out, _) = cli(&server, &["artifacts"]);
    assert_eq!(code, 0);
    assert!(out.contains("is empty"), "nothing imported: {out}");

    std::fs::write(&checksum, format!("{}  {name}\n", sha512_hex(&data))).unwrap();
    std::fs::write(staging.join(&format!("{name}.asc")), b"signature").unwrap();
    let (code, out, err) = cli(&server, &["artifacts", "import", package.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "/downloads/beats/elastic-agent/{name} (SHA-512 verified)"
        )),
        "{out}"
    );
    let (_, listed, _) = cli(&server, &["artifacts", "list"]);
    for suffix in ["", ".sha512", ".asc"] {
        assert!(
            listed.contains(&format!("/downloads/beats/elastic-agent/{name}{suffix}\n")),
            "{listed}"
        );
    }
    let (code, _, err) = cli(&server, &["artifacts", "import", "--bogus", "x"]);
    assert_eq!(code, 2, "unknown options are usage errors: {err}");

    // The operator points the upgrade at the mirror; the agent gets it in its UPGRADE action
    // and downloads from there as Elastic Agent does (<source_uri>beats/elastic-agent/<file>).
    let (code, out, err) = cli(
        &server,
        &["tokens", "create", "--policy", "fleet-edge-default"],
    );
    assert_eq!(code, 0, "{err}");
    let token = json_of(&out)["item"]["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut agent, _) = Agent::enroll(server.addr, ca_roots(&server), &token, &[]);
    let (_, body) = agent.checkin();
    agent.apply_policy(only_action(&body));
    agent.ack(&[("policy:fleet-edge-default:1", "POLICY_CHANGE")]);
    // The mirror's URL as the default policy names it.
    let policy_text =
        std::fs::read_to_string(server.data_dir.join("policies/fleet-edge-default.json")).unwrap();
    let policy: serde_json::Value = serde_json::from_str(&policy_text).unwrap();
    let source_uri = policy["agent"]["download"]["sourceURI"]
        .as_str()
        .unwrap()
        .to_owned();
    // A version the mirror does not hold is refused before any action is made.
    let (code, _, err) = cli(
        &server,
        &[
            "upgrade",
            &agent.id,
            "--version",
            "9.7.0",
            "--source-uri",
            &source_uri,
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("has no Elastic Agent 9.7.0 package"), "{err}");
    let (code, _, err) = cli(
        &server,
        &[
            "upgrade",
            &agent.id,
            "--version",
            "9.6.0",
            "--source-uri",
            &source_uri,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (_, body) = agent.checkin();
    let action = only_action(&body);
    assert_eq!(action["type"], "UPGRADE", "{body}");
    let uri = action["data"]["source_uri"].as_str().unwrap();
    assert_eq!(uri, source_uri);
    let path = uri
        .split_once(&format!(":{}", server.addr.port()))
        .unwrap()
        .1;
    let mut c = client(&server);
    let package = c
        .request(&get(&format!("{path}beats/elastic-agent/{name}"), ""))
        .unwrap();
    assert_eq!(package.status, 200);
    assert!(package.body == data);
    let sum = c
        .request(&get(
            &format!("{path}beats/elastic-agent/{name}.sha512"),
            "",
        ))
        .unwrap();
    assert_eq!(sum.status, 200);
    assert!(String::from_utf8_lossy(&sum.body).starts_with(&sha512_hex(&package.body)));
    let key = c.request(&get(PGP_PATH, "")).unwrap();
    assert_eq!((key.status, key.body.as_slice()), (200, KEY));
}

/// Issue 17 item 3: the default policy written on the first start downloads upgrades from the
/// mirror, trusting the CA the agents already trust.
#[test]
fn the_default_policy_points_agent_downloads_at_the_mirror() {
    let server = FleetEdge::start(&[]);
    let text =
        std::fs::read_to_string(server.data_dir.join("policies/fleet-edge-default.json")).unwrap();
    let policy: serde_json::Value = serde_json::from_str(&text).unwrap();
    let fleet_url = policy["fleet"]["hosts"][0].as_str().unwrap();
    let download = &policy["agent"]["download"];
    assert_eq!(
        download["sourceURI"],
        format!("{fleet_url}/downloads/"),
        "{policy}"
    );
    let ca = std::fs::read_to_string(server.data_dir.join("certs/ca.crt")).unwrap();
    assert_eq!(download["ssl"]["certificate_authorities"][0], ca.as_str());
}

/// Issue 17 item 4: one UPGRADE action for a policy's agents with Kibana's rollout fields, the
/// progress an agent reports shown by `fleet-edge agents`, and the CLI's refusals.
#[test]
fn rollouts_reach_every_agent_of_a_policy_and_progress_is_listed() {
    let server = FleetEdge::start(&["--checkin-long-poll", "30s", "--checkin-jitter", "0s"]);
    server
        .wait_for_log("management API on", std::time::Duration::from_secs(20))
        .expect("management API announced");
    let (code, out, err) = cli(
        &server,
        &["tokens", "create", "--policy", "fleet-edge-default"],
    );
    assert_eq!(code, 0, "{err}");
    let token = json_of(&out)["item"]["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut agents: Vec<Agent> = (0..2)
        .map(|_| {
            let (mut agent, _) = Agent::enroll(server.addr, ca_roots(&server), &token, &[]);
            let (_, body) = agent.checkin();
            agent.apply_policy(only_action(&body));
            agent.ack(&[("policy:fleet-edge-default:1", "POLICY_CHANGE")]);
            agent
        })
        .collect();

    for bad in [
        &["upgrade", "--version", "9.6.0"][..],
        &["upgrade", "x", "--all", "--version", "9.6.0"],
        &[
            "upgrade",
            "--all",
            "--version",
            "9.6.0",
            "--rollout-duration",
            "soon",
        ],
        &[
            "upgrade",
            "--all",
            "--version",
            "9.6.0",
            "--start-time",
            "tomorrow",
        ],
        &["upgrade", "--all", "--all", "--version", "9.6.0"],
        &["upgrade", "--all", "--version", "9.6.0", "--bogus"],
    ] {
        let (code, _, err) = cli(&server, bad);
        assert_eq!(code, 2, "{bad:?}: {err}");
    }
    let (code, _, err) = cli(
        &server,
        &["upgrade", "no-such-agent", "other", "--version", "9.6.0"],
    );
    assert_eq!(code, 1, "{err}");

    // A day from now: the scheduled upgrade expires a month after its start (Kibana's rule),
    // so a fixed date would stop being delivered once it is a month old.
    let start_at = std::time::SystemTime::now() + std::time::Duration::from_secs(86_400);
    let start = fleet_edge::model::time::rfc3339_seconds(start_at);
    let start = start.as_str();
    let (code, out, err) = cli(
        &server,
        &[
            "upgrade",
            "--policy",
            "fleet-edge-default",
            "--version",
            "9.6.0",
            "--rollout-duration",
            "1h",
            "--start-time",
            start,
            "--force",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let answer = json_of(&out);
    assert_eq!(
        answer["agents"].as_array().map(Vec::len),
        Some(2),
        "{answer}"
    );
    let action_id = answer["actionId"].as_str().unwrap().to_owned();
    for agent in &mut agents {
        let (_, body) = agent.checkin();
        let action = only_action(&body);
        assert_eq!(action["type"], "UPGRADE", "{body}");
        assert_eq!(action["id"], action_id.as_str(), "{body}");
        assert_eq!(action["data"]["version"], "9.6.0", "{body}");
        let scheduled = format!("{}.000Z", start.trim_end_matches('Z'));
        assert_eq!(action["start_time"], scheduled.as_str(), "{body}");
    }

    // The action's results summarise the rollout.
    let summary = |server: &FleetEdge| {
        let (code, out, err) = cli(server, &["results", &action_id]);
        assert_eq!(code, 0, "{err}");
        json_of(&out)["summary"].clone()
    };
    assert_eq!(
        summary(&server),
        serde_json::json!({"succeeded": 0, "failed": 0, "in_progress": 2})
    );
    agents[1].ack(&[(&action_id, "UPGRADE")]);
    assert_eq!(
        summary(&server),
        serde_json::json!({"succeeded": 1, "failed": 0, "in_progress": 1})
    );

    // The agent reports its progress at checkin; the operator sees it.
    let agent = &mut agents[0];
    let mut body = agent.checkin_body("online");
    body["upgrade_details"] = serde_json::json!({
        "target_version": "9.6.0", "action_id": action_id, "state": "UPG_DOWNLOADING",
        "metadata": {"download_percent": 37.0}
    });
    let raw = crate::support::agent::raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/checkin", agent.id),
        Some(&agent.access_key.clone()),
        &serde_json::to_vec(&body).unwrap(),
        false,
        &format!("Elastic Agent v{}", crate::support::agent::VERSION),
    );
    // The checkin parks (nothing to deliver); its state is listed at once.
    let mut parked = client(&server);
    parked.send(&raw).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (code, out, err) = cli(&server, &["agents"]);
        assert_eq!(code, 0, "{err}");
        let line = out
            .lines()
            .find(|l| l.starts_with(&agent.id))
            .unwrap()
            .to_owned();
        if line.contains("UPG_DOWNLOADING->9.6.0 37%") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "progress not listed:\n{out}"
        );
    }

    // --all is every enrolled agent (Kibana's empty kuery).
    let (code, out, err) = cli(&server, &["upgrade", "--all", "--version", "9.6.1"]);
    assert_eq!(code, 0, "{err}");
    let mut targets: Vec<String> = json_of(&out)["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    targets.sort();
    let mut ids: Vec<String> = agents.iter().map(|a| a.id.clone()).collect();
    ids.sort();
    assert_eq!(targets, ids);
}
