//! Memory under large, legitimate checkins (issue 15 §3), through the real binary in
//! Elasticsearch mode: agents each send, twice, a checkin of about 19 KB of gzip expanding to a
//! 19 MiB `message` (inside Elastic's 20 MiB cap). The server's peak resident set (`VmHWM`,
//! reset before the burst through `/proc/<pid>/clear_refs`) stays within the baseline plus
//! 2 × 20 MiB per checkin body decoded at once (a checkin's body is gunzipped and parsed on a
//! backend worker, so at most `--backend-workers` at once), and its resident set (`VmRSS`) is
//! back within 10 MB of the baseline within 10 s of the last answer. Every message reaches the
//! agent's document whole.
//!
//! With glibc's malloc the server runs with `MALLOC_MMAP_THRESHOLD_=131072`: a fixed mmap
//! threshold, so each freed 19 MiB buffer goes back to the system (the default dynamic
//! threshold rises to the size of the first large block freed and keeps later ones in the
//! heap). The static release builds use musl, whose allocator maps large blocks on its own.
//!
//! The scale is 20 agents; a debug build spends about 7 s of CPU on each 19 MiB
//! checkin (gunzip, parse and write here, the in-process stand-in's parse and store), so the
//! suite runs 6 agents and `FLEET_EDGE_LARGE_CHECKIN_AGENTS=20` runs the 20 (the
//! README has both runs' numbers).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::agent::{raw_request, Agent, VERSION};
use crate::support::client::Client;
use crate::support::FleetEdge;

const MESSAGE_BYTES: usize = 19 * 1024 * 1024;
const MIB: u64 = 1024;
const WORKERS: u64 = 4;

/// A `/proc/<pid>/status` field in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// Polls `condition` every 100 ms until it holds or `within` passed; whether it held.
fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// `agent`'s checkin with `message`: its usual body, gzipped as concatenated members (valid
/// gzip, as Go's multistream reader and the agent's own reader take it) so that the large
/// middle member, compressed once, is shared by every agent.
fn big_checkin(agent: &Agent, message_gz: &[u8]) -> Vec<u8> {
    let mut body = agent.checkin_body("online");
    body["message"] = json!("@");
    let text = serde_json::to_string(&body).unwrap();
    let (head, tail) = text.split_once("\"@\"").unwrap();
    let mut gz = gzip(format!("{head}\"").as_bytes());
    gz.extend_from_slice(message_gz);
    gz.extend_from_slice(&gzip(format!("\"{tail}").as_bytes()));
    let raw = raw_request(
        "POST",
        &format!("/api/fleet/agents/{}/checkin", agent.id),
        Some(&agent.access_key),
        &gz,
        false,
        &format!("Elastic Agent v{VERSION}"),
    );
    // Sent as gzip: the header goes in before the blank line.
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let mut out = raw[..split + 2].to_vec();
    out.extend_from_slice(b"Content-Encoding: gzip\r\n\r\n");
    out.extend_from_slice(&raw[split + 4..]);
    out
}

#[test]
fn agents_sending_19_mib_checkin_messages_twice_stay_within_the_memory_bound() {
    let agents_n: usize = std::env::var("FLEET_EDGE_LARGE_CHECKIN_AGENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let es = es_standin::StandIn::start(es_standin::Options {
        refresh_interval: Some(Duration::from_millis(100)),
        ..es_standin::Options::default()
    })
    .unwrap();
    es.seed()
        .policy_with_data(
            "big-policy",
            json!({"id": "big-policy", "revision": 1,
                   "outputs": {"default": {"type": "elasticsearch", "hosts": [es.url()]}},
                   "output_permissions": {"default": {"_elastic_agent_checks": {"cluster": ["monitor"]}}},
                   "inputs": []}),
        )
        .unwrap();
    let token = es
        .seed()
        .enrollment_key("big-policy", "Default")
        .unwrap()
        .api_key;
    let data = crate::support::TempDir::new("large-checkins");
    let server = FleetEdge::start_in(
        data.path(),
        &[
            "--fleet-server-es",
            &es.url(),
            "--fleet-server-service-token",
            &es.service_token(),
            "--backend-workers",
            &WORKERS.to_string(),
            // A debug build takes seconds over a 19 MiB body and the burst queues behind four
            // workers: the memory bound is under test here, not answer times (`outage.rs`).
            "--backend-timeout",
            "600s",
            "--checkin-long-poll",
            "1s",
            "--checkin-jitter",
            "0s",
        ],
        &[("MALLOC_MMAP_THRESHOLD_", "131072")],
    );
    let pid = server.pid();
    let tls = {
        use rustls::pki_types::pem::PemObject;
        let pem = std::fs::read(server.data_dir.join("certs/ca.crt")).unwrap();
        crate::support::client::tls_config(
            &[rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap()],
            None,
        )
    };
    // Enrolled, on their policy, acked: from here on their checkins park for the long poll.
    let mut agents: Vec<Agent> = (0..agents_n)
        .map(|_| {
            let (mut agent, _) = Agent::enroll(server.addr, Arc::clone(&tls), &token, &[]);
            let (_, body) = agent.checkin();
            agent.apply_policy(&body["actions"][0]);
            let id = body["actions"][0]["id"].as_str().unwrap().to_owned();
            assert_eq!(agent.ack(&[(&id, "POLICY_CHANGE")]).0.status, 200);
            agent
        })
        .collect();
    for agent in &mut agents {
        assert_eq!(agent.checkin().0.status, 200);
    }
    let message_gz = gzip(&vec![b'x'; MESSAGE_BYTES]);
    let requests: Vec<Vec<u8>> = agents.iter().map(|a| big_checkin(a, &message_gz)).collect();
    assert!(requests[0].len() < 32 * 1024, "{} bytes", requests[0].len());
    // The baseline: the resident set once steady (two readings 1 s apart within 1 MiB).
    let mut last = status_kib(pid, "VmRSS:");
    assert!(
        eventually(Duration::from_secs(30), || {
            std::thread::sleep(Duration::from_secs(1));
            let now = status_kib(pid, "VmRSS:");
            let steady = now.abs_diff(last) <= MIB;
            last = now;
            steady
        }),
        "resident set never steady"
    );
    let baseline = last;
    // The peak from here on (`clear_refs` 5 resets VmHWM to the current resident set).
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();

    let burst = Instant::now();
    std::thread::scope(|s| {
        for request in &requests {
            let (addr, tls) = (server.addr, Arc::clone(&tls));
            s.spawn(move || {
                let mut conn = Client::tls_waiting(addr, tls, Duration::from_secs(600)).unwrap();
                for round in 0..2 {
                    let resp = conn.request(request).unwrap();
                    assert_eq!(
                        resp.status,
                        200,
                        "round {round}: {}",
                        String::from_utf8_lossy(&resp.body)
                    );
                }
            });
        }
    });
    let answered = Instant::now();

    // Within 10 s of the last answer, resident again within 10 MB of the baseline.
    let within = 10 * 1000; // KiB: the 10 MB
    let back = eventually(Duration::from_secs(10), || {
        status_kib(pid, "VmRSS:") <= baseline + within
    });
    let rss = status_kib(pid, "VmRSS:");
    let peak = status_kib(pid, "VmHWM:");
    let bound = baseline + 2 * 20 * MIB * WORKERS;
    eprintln!(
        "{agents_n} agents x 2 checkins of a 19 MiB message (gzip {} bytes) in {:?}: baseline \
         {baseline} KiB, peak {peak} KiB (+{} MiB; bound +{} MiB: 2 x 20 MiB x {WORKERS} bodies \
         decoded at once), resident {rss} KiB {:?} after the last answer",
        requests[0].len(),
        answered - burst,
        (peak.saturating_sub(baseline)) / MIB,
        (bound - baseline) / MIB,
        answered.elapsed()
    );
    assert!(
        back,
        "resident {rss} KiB > baseline {baseline} KiB + 10 MB, 10 s after the last answer"
    );
    assert!(
        peak <= bound,
        "peak {peak} KiB > {bound} KiB (baseline {baseline} KiB + 2 x 20 MiB x {WORKERS})"
    );

    // Every agent's message was written whole.
    for agent in &agents {
        let doc = es.document(".fleet-agents", &agent.id).unwrap();
        let stored = doc["last_checkin_message"].as_str().map_or(0, str::len);
        assert_eq!(stored, MESSAGE_BYTES, "agent {}", agent.id);
    }
}
