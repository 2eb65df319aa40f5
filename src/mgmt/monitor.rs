//! The monitoring endpoint, as Elastic's Fleet Server has it (`http.enabled`, `http.host`,
//! `http.port`; default `localhost:5066`, off by default): `GET /stats` in the libbeat JSON shape
//! (`beat.cpu`, `beat.memstats`, `beat.handles`, `beat.info`) plus fleet-edge's own figures
//! under `fleet_edge` (connections, parked long polls, late backend replies, agents by status,
//! store size), `GET /metrics` with the same figures in Prometheus text format, and `GET /state`.
//!
//! It is plain HTTP without authentication, like libbeat's, so it binds to localhost unless told
//! otherwise; it shows counts, never an id, a key or a policy. It runs on its own thread with a
//! blocking listener, one short request at a time: a scrape never touches the event loop, whose
//! counters it reads from [`Stats`] (atomics).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use super::route_stats::{RouteFigures, RouteStats, BUCKETS_MS};
use super::Admin;

/// Counters the event loop keeps current (`net::Server::stats`), read by this endpoint.
#[derive(Debug, Default)]
pub struct Stats {
    /// Checkins parked right now.
    pub parked: AtomicUsize,
    /// Connections open right now.
    pub connections: AtomicUsize,
    /// Backend replies that arrived for a connection that had gone.
    pub late_replies: AtomicU64,
    /// Live actions held for a checkin that was reading pending actions when they arrived.
    pub early_actions: AtomicU64,
    /// Jobs and chores waiting for a backend worker now.
    pub backend_queue: AtomicUsize,
    /// Most that waited at once since the start.
    pub backend_queue_peak: AtomicUsize,
    /// Jobs and chores queued since the start.
    pub backend_jobs: AtomicU64,
    /// Requests by route, kept by the engine.
    pub routes: Arc<RouteStats>,
}

/// Linux's `USER_HZ` (the unit of `/proc/self/stat` CPU times) on every platform fleet-edge
/// builds for.
const TICKS_PER_SECOND: u64 = 100;

/// What the endpoint reports from.
pub struct Sources {
    /// The event loop's counters.
    pub stats: Arc<Stats>,
    /// The embedded admin (agents by status), when in embedded mode.
    pub admin: Option<Arc<dyn Admin>>,
    /// The embedded store's directory, for its size.
    pub store_dir: Option<PathBuf>,
    /// When the process started serving.
    pub started: Instant,
}

/// One snapshot of every figure.
#[derive(Debug, Default)]
pub struct Figures {
    connections: u64,
    parked: u64,
    late_replies: u64,
    backend_queue: u64,
    backend_queue_peak: u64,
    backend_jobs: u64,
    routes: Vec<RouteFigures>,
    agents: Option<BTreeMap<&'static str, usize>>,
    store_bytes: Option<u64>,
    rss_bytes: Option<u64>,
    cpu_ticks: Option<(u64, u64)>,
    open_handles: Option<u64>,
    uptime: Duration,
}

impl Sources {
    /// Reads every figure now.
    pub fn figures(&self, now: SystemTime) -> Figures {
        Figures {
            connections: self.stats.connections.load(Ordering::Relaxed) as u64,
            parked: self.stats.parked.load(Ordering::Relaxed) as u64,
            late_replies: self.stats.late_replies.load(Ordering::Relaxed),
            backend_queue: self.stats.backend_queue.load(Ordering::Relaxed) as u64,
            backend_queue_peak: self.stats.backend_queue_peak.load(Ordering::Relaxed) as u64,
            backend_jobs: self.stats.backend_jobs.load(Ordering::Relaxed),
            routes: self.stats.routes.figures(),
            agents: self
                .admin
                .as_ref()
                .and_then(|a| super::listing::status_counts(&**a, now).ok()),
            store_bytes: self.store_dir.as_deref().map(dir_bytes),
            rss_bytes: rss_bytes(),
            cpu_ticks: cpu_ticks(),
            open_handles: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            uptime: self.started.elapsed(),
        }
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// (user, system) CPU ticks of this process.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; fields after its closing parenthesis are fixed.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?))
}

/// `GET /stats`: libbeat's shape and fleet-edge's figures.
pub fn stats_json(f: &Figures) -> Value {
    let ms = |ticks: u64| ticks * 1000 / TICKS_PER_SECOND;
    let (user, system) = f.cpu_ticks.unwrap_or_default();
    json!({
        "beat": {
            "cpu": {
                "user": {"ticks": user, "time": {"ms": ms(user)}},
                "system": {"ticks": system, "time": {"ms": ms(system)}},
                "total": {"ticks": user + system, "time": {"ms": ms(user + system)}, "value": user + system},
            },
            "handles": {"open": f.open_handles},
            "info": {"name": "fleet-server", "version": env!("CARGO_PKG_VERSION"),
                     "uptime": {"ms": f.uptime.as_millis() as u64}},
            "memstats": {"rss": f.rss_bytes},
        },
        "http_server": {"routes": elastic_routes(&f.routes)},
        "fleet_edge": {
            "routes": latencies(&f.routes),
            "backend_queue": {"depth": f.backend_queue, "peak": f.backend_queue_peak, "jobs": f.backend_jobs},
            "connections": f.connections,
            "parked_long_polls": f.parked,
            "late_backend_replies": f.late_replies,
            "agents": f.agents,
            "store_bytes": f.store_bytes,
        },
    })
}

/// Elastic's `http_server.routes.<route>` counters (Fleet Server's `routeStats` names), for the
/// routes that saw a request.
fn elastic_routes(routes: &[RouteFigures]) -> Value {
    let seen = routes.iter().filter(|r| r.total > 0);
    Value::Object(
        seen.map(|r| {
            (
                r.name.to_owned(),
                json!({"total": r.total, "active": r.active, "fail": r.fail, "drop": r.drop}),
            )
        })
        .collect(),
    )
}

/// fleet-edge's latency histogram per route (Elastic's `/stats` has none): answered requests,
/// their summed latency and how many took at most each bound (cumulative, `+Inf` = all).
fn latencies(routes: &[RouteFigures]) -> Value {
    let seen = routes.iter().filter(|r| r.total > 0);
    Value::Object(
        seen.map(|r| {
            let mut buckets: serde_json::Map<String, Value> = BUCKETS_MS
                .iter()
                .zip(r.buckets)
                .map(|(ms, n)| (ms.to_string(), json!(n)))
                .collect();
            buckets.insert("+Inf".into(), json!(r.count));
            (
                r.name.to_owned(),
                json!({"latency": {"count": r.count, "sum": {"ms": r.sum_micros as f64 / 1000.0},
                                   "buckets_ms": buckets}}),
            )
        })
        .collect(),
    )
}

/// The per-route series of `/metrics`: counters, and the latency histogram in seconds.
fn route_metrics(out: &mut String, routes: &[RouteFigures]) {
    let seen: Vec<&RouteFigures> = routes.iter().filter(|r| r.total > 0).collect();
    for (name, kind, help, value) in [
        (
            "fleet_edge_http_requests_total",
            "counter",
            "Requests received, by route (Elastic's http_server.routes.*.total).",
            (|r: &RouteFigures| r.total) as fn(&RouteFigures) -> u64,
        ),
        (
            "fleet_edge_http_requests_active",
            "gauge",
            "Requests not answered yet, parked checkins included, by route.",
            |r| r.active,
        ),
        (
            "fleet_edge_http_request_failures_total",
            "counter",
            "Requests answered with a status of 400 or more, by route.",
            |r| r.fail,
        ),
        (
            "fleet_edge_http_requests_dropped_total",
            "counter",
            "Requests whose connection closed before the answer, by route.",
            |r| r.drop,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for r in &seen {
            let _ = writeln!(out, "{name}{{route=\"{}\"}} {}", r.name, value(r));
        }
    }
    let name = "fleet_edge_http_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time from a request reaching the engine to its answer, by route.\n# TYPE {name} histogram"
    );
    for r in &seen {
        for (ms, n) in BUCKETS_MS.iter().zip(r.buckets) {
            let le = *ms as f64 / 1000.0;
            let _ = writeln!(out, "{name}_bucket{{route=\"{}\",le=\"{le}\"}} {n}", r.name);
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{route=\"{}\",le=\"+Inf\"}} {}",
            r.name, r.count
        );
        let _ = writeln!(
            out,
            "{name}_sum{{route=\"{}\"}} {}",
            r.name,
            r.sum_micros as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{route=\"{}\"}} {}", r.name, r.count);
    }
}

/// `GET /metrics`: the same figures in Prometheus text format (version 0.0.4).
pub fn prometheus(f: &Figures) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let one = |v: u64| vec![(String::new(), v)];
    let single_figures: [(&str, &str, &str, u64); 6] = [
        (
            "fleet_edge_connections",
            "gauge",
            "Connections open now.",
            f.connections,
        ),
        (
            "fleet_edge_parked_long_polls",
            "gauge",
            "Checkins parked in a long poll now.",
            f.parked,
        ),
        (
            "fleet_edge_late_backend_replies_total",
            "counter",
            "Backend replies that arrived after their connection had gone.",
            f.late_replies,
        ),
        (
            "fleet_edge_backend_queue_depth",
            "gauge",
            "Jobs and chores waiting for a backend worker now.",
            f.backend_queue,
        ),
        (
            "fleet_edge_backend_queue_peak",
            "gauge",
            "Most jobs and chores that waited for a backend worker at once since the start.",
            f.backend_queue_peak,
        ),
        (
            "fleet_edge_backend_jobs_total",
            "counter",
            "Jobs and chores queued for the backend workers since the start.",
            f.backend_jobs,
        ),
    ];
    for (name, kind, help, value) in single_figures {
        metric(name, kind, help, &one(value));
    }
    if let Some(agents) = &f.agents {
        let samples: Vec<(String, u64)> = agents
            .iter()
            .map(|(s, n)| (format!("{{status=\"{s}\"}}"), *n as u64))
            .collect();
        metric(
            "fleet_edge_agents",
            "gauge",
            "Agents by status, as Kibana computes it.",
            &samples,
        );
    }
    if let Some(bytes) = f.store_bytes {
        metric(
            "fleet_edge_store_bytes",
            "gauge",
            "Size of the embedded store's files.",
            &one(bytes),
        );
    }
    if let Some(rss) = f.rss_bytes {
        metric(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            &one(rss),
        );
    }
    if let Some((user, system)) = f.cpu_ticks {
        let _ = writeln!(
            out,
            "# HELP process_cpu_seconds_total User and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}",
            (user + system) as f64 / TICKS_PER_SECOND as f64
        );
    }
    if let Some(handles) = f.open_handles {
        let _ = writeln!(
            out,
            "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds {handles}"
        );
    }
    route_metrics(&mut out, &f.routes);
    let _ = writeln!(
        out,
        "# HELP fleet_edge_uptime_seconds Seconds since the server started.\n# TYPE fleet_edge_uptime_seconds gauge\nfleet_edge_uptime_seconds {}",
        f.uptime.as_secs()
    );
    out
}

/// The running endpoint: dropping it stops its thread and closes its listener (a server
/// restarted with other settings binds its own).
pub struct Handle {
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept; the loop sees the flag and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("the monitoring endpoint's thread panicked");
            }
        }
    }
}

/// Serves `listener` on a new thread until the returned [`Handle`] is dropped.
pub fn spawn(listener: TcpListener, sources: Sources) -> std::io::Result<Handle> {
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("fleet-edge-monitoring".into())
        .spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                match stream {
                    Ok(s) => {
                        if let Err(e) = serve(s, &sources) {
                            log::debug!("monitoring endpoint: {e}");
                        }
                    }
                    Err(e) => log::debug!("monitoring endpoint accept: {e}"),
                }
            }
        })?;
    Ok(Handle {
        stop,
        addr,
        thread: Some(thread),
    })
}

#[allow(
    clippy::disallowed_methods,
    reason = "the monitoring endpoint is an edge: its own thread answers a scrape with the time it is read"
)]
fn serve(mut stream: TcpStream, sources: &Sources) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, kind, body) = match (method, path) {
        ("GET", "/stats") => (
            "200 OK",
            "application/json",
            stats_json(&sources.figures(SystemTime::now())).to_string(),
        ),
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4",
            prometheus(&sources.figures(SystemTime::now())),
        ),
        ("GET", "/state") => (
            "200 OK",
            "application/json",
            json!({"beat": {"name": "fleet-server", "version": env!("CARGO_PKG_VERSION")},
                   "fleet_edge": {"mode": if sources.admin.is_some() { "embedded" } else { "elasticsearch" }}})
                .to_string(),
        ),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_owned()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_owned(),
        ),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_a_type_for_every_sample() {
        let mut agents = BTreeMap::new();
        agents.insert("online", 2);
        agents.insert("offline", 1);
        let f = Figures {
            connections: 3,
            parked: 1,
            agents: Some(agents),
            store_bytes: Some(4096),
            rss_bytes: Some(1 << 20),
            cpu_ticks: Some((150, 50)),
            open_handles: Some(9),
            ..Figures::default()
        };
        let text = prometheus(&f);
        assert!(
            text.contains("fleet_edge_agents{status=\"online\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("process_cpu_seconds_total 2\n"), "{text}");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        }
        let stats = stats_json(&f);
        assert_eq!(stats["beat"]["cpu"]["total"]["time"]["ms"], 2000);
        assert_eq!(stats["fleet_edge"]["agents"]["offline"], 1);
    }
}
