//! Measurements for the README (ignored by default; performance is measured, not asserted):
//! `cargo test -p es-standin --release --test measure -- --ignored --nocapture`.
//! Start-up time (in-process start to first answered request, and the binary to its first stdout
//! line) and resident memory for 100 000 small documents.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use es_standin::{Options, StandIn};
use serde_json::json;
use std::io::BufRead;
use std::time::Instant;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
#[ignore]
fn startup_and_100k_documents() {
    let mut best = u128::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let es = StandIn::start(Options::default()).unwrap();
        let (s, _) = es.client().json("GET", "/", None).unwrap();
        assert_eq!(s, 200);
        best = best.min(t.elapsed().as_micros());
    }
    println!(
        "measure: in-process start to first response: {:.2} ms (best of 5)",
        best as f64 / 1000.0
    );
    let exe = env!("CARGO_BIN_EXE_es-standin");
    let t = Instant::now();
    let mut child = std::process::Command::new(exe)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    println!(
        "measure: binary exec to first stdout line (URL): {:.2} ms",
        t.elapsed().as_micros() as f64 / 1000.0
    );
    let _ = child.kill();
    let _ = child.wait();

    let es = StandIn::start(Options::default()).unwrap();
    let c = es.client();
    let before = rss_kib();
    let t = Instant::now();
    for batch in 0..100 {
        let mut lines = Vec::new();
        for i in 0..1000 {
            let id = format!("agent-{batch}-{i}");
            lines.push(json!({"create": {"_id": id, "_index": ".fleet-agents"}}));
            lines.push(json!({"active": true, "agent": {"id": id, "version": "9.6.0"}, "policy_id": "p1", "enrolled_at": "2026-05-01T10:11:12Z", "last_checkin_status": "online", "tags": ["edge"]}));
        }
        let (s, v) = common::ndjson(&c, "/_bulk", &lines);
        assert_eq!((s, v["errors"].clone()), (200, json!(false)));
    }
    let write = t.elapsed();
    es.refresh_all();
    let after = rss_kib();
    let t = Instant::now();
    let (_, v) = c
        .json(
            "POST",
            "/.fleet-agents/_search",
            Some(&json!({"query": {"bool": {"filter": [{"term": {"agent.id": "agent-99-999"}}]}}})),
        )
        .unwrap();
    assert_eq!(v["hits"]["total"]["value"], 1);
    let search = t.elapsed();
    println!(
        "measure: 100000 docs indexed through _bulk in {:.2} s",
        write.as_secs_f64()
    );
    println!(
        "measure: RSS {} MiB before, {} MiB after 100000 docs (+{} MiB, ~{} bytes/doc)",
        before / 1024,
        after / 1024,
        (after - before) / 1024,
        (after - before) * 1024 / 100_000
    );
    println!(
        "measure: term query over 100000 docs: {:.1} ms",
        search.as_secs_f64() * 1000.0
    );
}
