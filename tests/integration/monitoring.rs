//! The monitoring endpoint (`--http-enabled`, issue 18 item 5) of the real binary: off by
//! default; `/metrics` in Prometheus text format and `/stats` in libbeat's shape, scraped while
//! agents are enrolled, checking in and parked, against what the test made them do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::management::{cli, json_of, only_action, roots};
use crate::support::agent::Agent;
use crate::support::{Client, FleetEdge};

fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let resp = Client::plain(addr)
        .unwrap()
        .request(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    (resp.status, String::from_utf8(resp.body).unwrap())
}

/// Parses Prometheus text format (0.0.4): every sample's metric has a `# TYPE`; samples by
/// `name{labels}`.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut typed = Vec::new();
    let mut samples = HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            typed.push(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let name = series.split('{').next().unwrap();
        assert!(typed.iter().any(|t| t == name), "no # TYPE before {line}");
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line}"
            );
        }
        samples.insert(
            series.to_owned(),
            value
                .parse::<f64>()
                .unwrap_or_else(|e| panic!("{line}: {e}")),
        );
    }
    samples
}

#[test]
fn stats_and_metrics_are_scraped_while_agents_work() {
    let quiet = FleetEdge::start(&[]);
    quiet
        .wait_for_log("management API on", Duration::from_secs(30))
        .unwrap();
    assert!(
        !quiet.log().contains("monitoring endpoint"),
        "off by default"
    );
    drop(quiet);

    let server = FleetEdge::start(&[
        "--http-enabled",
        "--http-port",
        "0",
        "--checkin-long-poll",
        "3s",
        "--checkin-jitter",
        "0s",
    ]);
    let line = server
        .wait_for_log("monitoring endpoint on http://", Duration::from_secs(30))
        .expect("monitoring endpoint announced");
    let addr: std::net::SocketAddr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (_, out, _) = cli(&server, &["tokens", "list"]);
    let token = json_of(&out)["items"][0]["api_key"]
        .as_str()
        .unwrap()
        .to_owned();

    // Two agents run their policy, one has not acknowledged it; one of the two stays parked.
    let mut settled = Vec::new();
    for _ in 0..2 {
        let (mut a, _) = Agent::enroll(server.addr, roots(&server), &token, &[]);
        let (_, body) = a.checkin();
        let action = only_action(&body).clone();
        a.apply_policy(&action);
        a.ack(&[(action["id"].as_str().unwrap(), "POLICY_CHANGE")]);
        a.checkin();
        settled.push(a);
    }
    let (mut fresh, _) = Agent::enroll(server.addr, roots(&server), &token, &[]);
    fresh.checkin();
    let stop = Arc::new(AtomicBool::new(false));
    let mut parked_agent = settled.pop().unwrap();
    let parking = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                parked_agent.checkin();
            }
        })
    };

    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (status, text) = get(addr, "/metrics");
        assert_eq!(status, 200);
        let m = parse_prometheus(&text);
        let ok = m.get("fleet_edge_parked_long_polls") == Some(&1.0)
            && m.get("fleet_edge_agents{status=\"online\"}") == Some(&2.0)
            && m.get("fleet_edge_agents{status=\"updating\"}") == Some(&1.0);
        if ok {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "never the expected figures:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(metrics["fleet_edge_connections"] >= 1.0, "{metrics:?}");
    assert_eq!(metrics["fleet_edge_agents{status=\"offline\"}"], 0.0);
    assert!(metrics["fleet_edge_store_bytes"] > 0.0);
    assert!(metrics["process_resident_memory_bytes"] > 1_000_000.0);
    assert!(metrics.contains_key("process_cpu_seconds_total"));

    let (status, text) = get(addr, "/stats");
    assert_eq!(status, 200);
    let stats: Value = serde_json::from_str(&text).unwrap();
    assert!(
        stats["beat"]["memstats"]["rss"].as_u64().unwrap() > 1_000_000,
        "{stats}"
    );
    assert!(stats["beat"]["cpu"]["total"]["time"]["ms"].is_u64());
    assert!(stats["beat"]["handles"]["open"].as_u64().unwrap() > 3);
    assert_eq!(stats["fleet_edge"]["agents"]["online"], 2, "{stats}");
    let (status, text) = get(addr, "/state");
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["fleet_edge"]["mode"],
        "embedded"
    );
    assert_eq!(get(addr, "/nothing").0, 404);

    stop.store(true, Ordering::SeqCst);
    parking.join().unwrap();
}
