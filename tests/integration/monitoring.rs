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
            assert!(["gauge", "counter", "histogram"].contains(&kind), "{line}");
            typed.push(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| typed.iter().any(|t| t == f))
            .unwrap_or(name);
        assert!(typed.iter().any(|t| t == family), "no # TYPE before {line}");
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
            && m.get("fleet_edge_http_requests_active{route=\"checkin\"}") == Some(&1.0)
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

    // What the load did: three enrolls, two acks, at least five checkins besides the parked
    // one (settled agents: two each; the fresh one: one), each answered and timed.
    let series = |name: &str, route: &str| {
        metrics
            .get(&format!("{name}{{route=\"{route}\"}}"))
            .copied()
            .unwrap_or_else(|| panic!("no {name} for {route}: {metrics:?}"))
    };
    assert_eq!(series("fleet_edge_http_requests_total", "enroll"), 3.0);
    assert_eq!(series("fleet_edge_http_requests_total", "acks"), 2.0);
    assert!(series("fleet_edge_http_requests_total", "checkin") >= 6.0);
    assert!(series("fleet_edge_http_requests_total", "management") >= 1.0);
    for route in ["enroll", "acks"] {
        assert_eq!(series("fleet_edge_http_request_failures_total", route), 0.0);
        let count = series("fleet_edge_http_request_duration_seconds_count", route);
        assert_eq!(count, series("fleet_edge_http_requests_total", route));
        let inf = metrics[&format!(
            "fleet_edge_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}}"
        )];
        assert_eq!(inf, count, "{route}");
        assert!(series("fleet_edge_http_request_duration_seconds_sum", route) >= 0.0);
    }
    // Buckets are cumulative; the parked checkins are in none until answered.
    let mut last = 0.0;
    for le in [
        "0.001", "0.005", "0.025", "0.1", "0.5", "2.5", "10", "60", "300", "+Inf",
    ] {
        let n = metrics[&format!(
            "fleet_edge_http_request_duration_seconds_bucket{{route=\"checkin\",le=\"{le}\"}}"
        )];
        assert!(n >= last, "checkin bucket {le}: {n} < {last}");
        last = n;
    }
    assert_eq!(
        last,
        series("fleet_edge_http_request_duration_seconds_count", "checkin")
    );
    // Every enroll, ack and checkin went through the backend queue: at least one job waited.
    assert!(
        metrics["fleet_edge_backend_jobs_total"] >= 11.0,
        "{metrics:?}"
    );
    assert!(metrics["fleet_edge_backend_queue_peak"] >= 1.0);
    assert!(metrics.contains_key("fleet_edge_backend_queue_depth"));

    let (status, text) = get(addr, "/stats");
    assert_eq!(status, 200);
    let stats: Value = serde_json::from_str(&text).unwrap();
    let enroll = &stats["http_server"]["routes"]["enroll"];
    assert_eq!(
        (
            enroll["total"].as_u64(),
            enroll["fail"].as_u64(),
            enroll["active"].as_u64()
        ),
        (Some(3), Some(0), Some(0)),
        "{stats}"
    );
    assert!(stats["http_server"]["routes"]["checkin"]["total"].as_u64() >= Some(6));
    let latency = &stats["fleet_edge"]["routes"]["enroll"]["latency"];
    assert_eq!(latency["count"], 3, "{stats}");
    assert_eq!(latency["buckets_ms"]["+Inf"], 3, "{stats}");
    assert!(latency["sum"]["ms"].as_f64().is_some(), "{stats}");
    let queue = &stats["fleet_edge"]["backend_queue"];
    assert!(queue["jobs"].as_u64() >= Some(11), "{stats}");
    assert!(queue["peak"].as_u64() >= Some(1), "{stats}");
    assert!(queue["depth"].is_u64(), "{stats}");
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
