//! Micro benchmarks with a plain `Instant` harness (`cargo bench -p loadgen --bench micro`):
//!
//! * HTTP decoding: `fleet_edge::http::Decoder` on a realistic agent checkin request (Go's
//!   headers, a gzip body with the ECS local_metadata) whole and split in two reads, and on an
//!   uncompressed ack request.
//! * Policy fan-out: `PreparedPolicy::render_action` through `core::longpoll::policy_change_body`
//!   for 10,000 agents, for the embedded default policy and for a policy with 20 inputs and
//!   per-agent output keys (the Elasticsearch backend's mode), plus the gzip of each body that
//!   the server applies to answers over 1 KiB.
//!
//! Each case runs for about a second after a warm-up and prints ns per operation.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use fleet_edge::core::longpoll::policy_change_body;
use fleet_edge::http::{BodyLimits, Decoder, Limits, Method};
use fleet_edge::model::PolicyDoc;
use fleet_edge::transform::prepared_policy::PreparedPolicy;
use serde_json::{json, Value};

/// Runs `f` repeatedly for about `dur`; returns (iterations, ns per iteration).
fn time(dur: Duration, mut f: impl FnMut()) -> (u64, f64) {
    let warm = Instant::now();
    while warm.elapsed() < dur / 5 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    (n, start.elapsed().as_nanos() as f64 / n as f64)
}

fn report(name: &str, (n, ns): (u64, f64), per: &str) {
    println!(
        "{name:<62} {ns:>12.0} ns/{per}  ({:>9.0} {per}/s, {n} runs)",
        1e9 / ns
    );
}

fn checkin_request() -> Vec<u8> {
    let body = format!(
        r#"{{"status":"online","ack_token":"5c1e4f0a-6d3b-4d1e-9c2a-0f8b7e6d5c4b","local_metadata":{{"elastic":{{"agent":{{"id":"8a3c7f1e-2b4d-4e6f-9a1b-3c5d7e9f0a2b","version":"9.2.1","snapshot":false,"build.original":"9.2.1 (build: 0123456789abcdef at 2026-08-21 19:06:21 +0000 UTC)","upgradeable":true,"log_level":"info","complete":false,"unprivileged":false,"fips":false}}}},"host":{{"architecture":"x86_64","hostname":"edge-gw-01","name":"edge-gw-01","id":"0123456789abcdef0123456789abcdef","ip":["127.0.0.1/8","10.0.0.5/24","::1/128"],"mac":["02:42:ac:11:00:02"],"memory":16777216000}},"os":{{"family":"debian","kernel":"6.8.0-45-generic","platform":"ubuntu","version":"24.04.1 LTS (Noble Numbat)","name":"Ubuntu","full":"Ubuntu noble(24.04.1 LTS (Noble Numbat))"}}}},"message":"Running","components":[{}],"agent_policy_id":"fleet-edge-default","policy_revision_idx":2,"upgrade":{{}}}}"#,
        (0..4)
            .map(|i| format!(r#"{{"id":"filestream-default-{i}","type":"filestream","status":"HEALTHY","message":"Healthy: communicating with pid '{i}'","units":[{{"id":"filestream-default-{i}-unit","type":"input","status":"HEALTHY","message":"Healthy"}}]}}"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    let _ = enc.write_all(body.as_bytes());
    let gz = enc.finish().unwrap_or_default();
    let mut out = format!(
        "POST /api/fleet/agents/8a3c7f1e-2b4d-4e6f-9a1b-3c5d7e9f0a2b/checkin? HTTP/1.1\r\nHost: fleet.example.com:8220\r\nUser-Agent: Elastic Agent v9.2.1\r\nContent-Length: {}\r\nAccept: application/json\r\nAuthorization: ApiKey YWdlbnQta2V5LWlkOmFnZW50LWtleS1zZWNyZXQ=\r\nContent-Encoding: gzip\r\nContent-Type: application/json\r\nElastic-Api-Version: 2023-06-01\r\nKbn-Xsrf: 1\r\nX-Request-Id: 01JAB6Z4K3QH7V8W9X0Y1Z2A3B\r\nAccept-Encoding: gzip\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    out.extend_from_slice(&gz);
    out
}

fn ack_request() -> Vec<u8> {
    let body = r#"{"events":[{"action_id":"policy:fleet-edge-default:2","agent_id":"8a3c7f1e-2b4d-4e6f-9a1b-3c5d7e9f0a2b","message":"Action \"policy:fleet-edge-default:2\" of type \"POLICY_CHANGE\" acknowledged.","subtype":"ACKNOWLEDGED","timestamp":"2026-08-21T19:00:01.734912345Z","type":"ACTION_RESULT"}]}"#;
    let mut out = format!(
        "POST /api/fleet/agents/8a3c7f1e-2b4d-4e6f-9a1b-3c5d7e9f0a2b/acks? HTTP/1.1\r\nHost: fleet.example.com:8220\r\nUser-Agent: Elastic Agent v9.2.1\r\nContent-Length: {}\r\nAccept: application/json\r\nAuthorization: ApiKey YWdlbnQta2V5LWlkOmFnZW50LWtleS1zZWNyZXQ=\r\nContent-Type: application/json\r\nElastic-Api-Version: 2023-06-01\r\nKbn-Xsrf: 1\r\nX-Request-Id: 01JAB6Z4K3QH7V8W9X0Y1Z2A3B\r\nAccept-Encoding: gzip\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

fn limits(_: &Method, _: &str) -> BodyLimits {
    BodyLimits {
        max_body: 1 << 20,
        max_decompressed: 20 << 20,
    }
}

fn decode(raw: &[u8], split: Option<usize>) -> usize {
    let mut decoder = Decoder::new(Limits::default());
    let mut buf = Vec::with_capacity(raw.len());
    let (first, second) = raw.split_at(split.unwrap_or(raw.len()));
    buf.extend_from_slice(first);
    let mut got = decoder.decode(&mut buf, &limits);
    if !second.is_empty() {
        buf.extend_from_slice(second);
        got = decoder.decode(&mut buf, &limits);
    }
    match got {
        Ok(Some(req)) => req.body.len(),
        _ => 0,
    }
}

fn policy(inputs: usize) -> Value {
    let mut p = fleet_edge::embedded::policies::default_policy(
        "fleet-edge-default",
        "https://fleet-edge.example:8220",
        None,
    );
    p["revision"] = json!(2);
    p["output_permissions"] = json!({"default": {"_elastic_agent_checks": {"cluster": ["monitor"]},
        "_elastic_agent_monitoring": {"indices": [{"names": ["logs-elastic_agent-default", "metrics-elastic_agent-default"], "privileges": ["auto_configure", "create_doc"]}]}}});
    p["inputs"] = Value::Array(
        (0..inputs)
            .map(|i| json!({
                "id": format!("logfile-system-{i}"), "name": format!("system-{i}"), "revision": 1, "type": "logfile",
                "use_output": "default", "meta": {"package": {"name": "system", "version": "1.60.0"}},
                "data_stream": {"namespace": "default"}, "package_policy_id": format!("pp-{i}"),
                "streams": [{"id": format!("logfile-system.auth-{i}"), "data_stream": {"dataset": "system.auth", "type": "logs"},
                    "paths": ["/var/log/auth.log*", "/var/log/secure*"], "exclude_files": ["\\.gz$"], "multiline": {"pattern": "^\\s", "match": "after"},
                    "processors": [{"add_locale": null}, {"rename": {"fields": [{"from": "message", "to": "event.original"}], "ignore_missing": true}}],
                    "tags": ["system-auth"]}]
            }))
            .collect(),
    );
    p
}

fn prepared(data: Value, mint_keys: bool) -> Option<PreparedPolicy> {
    let doc = PolicyDoc {
        timestamp: "2026-08-21T18:59:00.000Z".into(),
        policy_id: "fleet-edge-default".into(),
        revision_idx: 2,
        data,
        ..PolicyDoc::default()
    };
    match PreparedPolicy::prepare_with(&doc, &HashMap::new(), mint_keys) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("cannot prepare the policy: {e}");
            None
        }
    }
}

fn fan_out(name: &str, policy: &PreparedPolicy, keyed: bool, dur: Duration) {
    const AGENTS: usize = 10_000;
    let ids: Vec<String> = (0..AGENTS)
        .map(|i| format!("8a3c7f1e-2b4d-4e6f-9a1b-{i:012}"))
        .collect();
    let keys: Vec<BTreeMap<String, String>> = (0..AGENTS)
        .map(|i| {
            let mut m = BTreeMap::new();
            if keyed {
                m.insert(
                    "default".to_owned(),
                    format!("key-id-{i}:key-secret-{i:020}"),
                );
            }
            m
        })
        .collect();
    let size = policy_change_body(policy, &ids[0], &keys[0]).len();
    let (n, ns) = time(dur, || {
        let mut total = 0usize;
        for (id, k) in ids.iter().zip(&keys) {
            total += black_box(policy_change_body(policy, id, k)).len();
        }
        black_box(total);
    });
    report(
        &format!("fan-out: {name}, {AGENTS} agents, body {size} B"),
        (n, ns),
        "10k",
    );
    println!("{:<62} {:>12.0} ns/agent", "", ns / AGENTS as f64);
    let body = policy_change_body(policy, &ids[0], &keys[0]);
    let gz = fleet_edge::http::gzip_compress(&body).map_or(0, |g| g.len());
    report(
        &format!("  + gzip of one such body ({size} B → {gz} B)"),
        time(dur, || {
            black_box(fleet_edge::http::gzip_compress(black_box(&body)));
        }),
        "body",
    );
}

fn main() {
    let dur = Duration::from_secs(1);
    let checkin = checkin_request();
    let ack = ack_request();
    println!("HTTP decoding (fleet_edge::http::Decoder)");
    report(
        &format!(
            "checkin, gzip body, one read ({} B on the wire)",
            checkin.len()
        ),
        time(dur, || {
            black_box(decode(black_box(&checkin), None));
        }),
        "req",
    );
    let mid = checkin.len() / 2;
    report(
        "checkin, gzip body, split in two reads",
        time(dur, || {
            black_box(decode(black_box(&checkin), Some(mid)));
        }),
        "req",
    );
    report(
        &format!("ack, plain JSON body, one read ({} B)", ack.len()),
        time(dur, || {
            black_box(decode(black_box(&ack), None));
        }),
        "req",
    );
    println!("\nPolicy fan-out (PreparedPolicy::render_action via longpoll::policy_change_body)");
    if let Some(p) = prepared(
        fleet_edge::embedded::policies::default_policy(
            "fleet-edge-default",
            "https://fleet-edge.example:8220",
            None,
        ),
        false,
    ) {
        fan_out("embedded default policy", &p, false, dur);
    }
    if let Some(p) = prepared(policy(20), true) {
        fan_out("20 inputs, per-agent output key", &p, true, dur);
    }
}
