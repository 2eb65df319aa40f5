//! The `outage` scenario (issue 15 §1): fleet-edge in Elasticsearch mode against the stand-in
//! (`es-standin`, started as a process with `--control-listen`, seeded as Kibana would), N agents
//! enrolled and parked, then five phases: Elasticsearch **down**, **slow** (+3 s a response),
//! a **429 burst** and a **503 burst** (every request refused for the phase), and **recovery**.
//! A new policy revision is written before each phase, so every phase sees checkins, output-key
//! work and acks; the seeding and fault switching run on a thread of their own while the
//! agents' loop keeps reading (a phase's counts include its seeding second). Per phase: answers
//! 200 / 503 / 401 / other, requests with **no answer** within the agent's timeout (timeouts,
//! resets, closes), p50 / p99 / max answer time (checkins and the rest apart), where the answer
//! time went (connect, TLS, request→answer; the loop's own stalls; the machine's TCP
//! counters), acks answered in the phase whose result is missing from
//! `.fleet-actions-results` afterwards; for recovery also how long `/api/status` took to say
//! HEALTHY again. Faults go through the stand-in's control listener, which stays up while it
//! is "down".
//!
//! Neighbours: `fleet.rs` (the agents), `server.rs` (the fleet-edge process), `scenarios.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use es_standin::{Client, Seeder};
use serde_json::{json, Value};

use crate::fleet::{Behaviour, Fleet};
use crate::report::Goal;
use crate::scenarios::Run;
use crate::server::{ServerProc, TempDir};
use crate::stats::{percentile, Answer, Kind, Stats};
use crate::tcpstat::TcpCounters;

const FS_POLICY: &str = "fleet-server-policy";
const AGENT_POLICY: &str = "outage-policy";

/// The stand-in as a child process: its URL, service token and control URL.
struct StandInProc {
    child: Child,
    url: String,
    token: String,
    control: String,
}

impl StandInProc {
    fn start(binary: &PathBuf) -> Result<StandInProc, String> {
        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {} ({e}); build it with `cargo build --release -p es-standin`",
                    binary.display()
                )
            })?;
        let out = child.stdout.take().ok_or("es-standin has no stdout")?;
        let mut lines = BufReader::new(out).lines();
        let mut next = || {
            lines
                .next()
                .and_then(Result::ok)
                .ok_or_else(|| "es-standin stopped before printing its URLs".to_owned())
        };
        let url = next()?;
        let token = next()?
            .strip_prefix("service_token=")
            .map(str::to_owned)
            .ok_or("es-standin printed no service token")?;
        let control = next()?
            .strip_prefix("control=")
            .map(str::to_owned)
            .ok_or("es-standin printed no control URL")?;
        Ok(StandInProc {
            child,
            url,
            token,
            control,
        })
    }
}

impl Drop for StandInProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a phase does to Elasticsearch.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Down,
    Slow,
    Refuse(u16),
    None,
}

impl Fault {
    fn describe(self) -> &'static str {
        match self {
            Fault::Down => "connection refused",
            Fault::Slow => "+3 s on every response",
            Fault::Refuse(429) => "every request 429",
            Fault::Refuse(_) => "every request 503",
            Fault::None => "none",
        }
    }
}

fn control(c: &Client, path: &str) -> Result<(), String> {
    match c.json("POST", path, None) {
        Ok((200, _)) => Ok(()),
        Ok((status, v)) => Err(format!("stand-in control {path}: {status} {v}")),
        Err(e) => Err(format!("stand-in control {path}: {e}")),
    }
}

fn apply(c: &Client, fault: Fault) -> Result<(), String> {
    match fault {
        Fault::Down => control(c, "/_standin/faults/down"),
        Fault::Slow => control(c, "/_standin/faults/latency?ms=3000"),
        Fault::Refuse(status) => control(
            c,
            &format!("/_standin/faults/fail?count=100000000&status={status}"),
        ),
        Fault::None => Ok(()),
    }
}

fn clear(c: &Client, fault: Fault) -> Result<(), String> {
    if matches!(fault, Fault::Down) {
        control(c, "/_standin/faults/up")?;
    }
    control(c, "/_standin/faults/clear")
}

/// `/api/status` sampled every 100 ms on its own thread: (when, status; 0 = no answer).
struct StatusProbe {
    samples: Arc<Mutex<Vec<(Instant, u16)>>>,
    stop: Arc<AtomicBool>,
}

impl StatusProbe {
    fn start(server: &ServerProc) -> Result<StatusProbe, String> {
        let tls = match &server.ca_path {
            Some(ca) if server.tls => Some(es_standin::ClientTls {
                ca_pem: Some(std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?),
                ..Default::default()
            }),
            _ => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut client = Client::new(&format!("{scheme}://{}", server.addr), tls)?;
        client.timeout = Duration::from_secs(5);
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (out, flag) = (Arc::clone(&samples), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let status = client
                    .request("GET", "/api/status", &[], None)
                    .map_or(0, |r| r.status);
                if let Ok(mut v) = out.lock() {
                    v.push((Instant::now(), status));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Ok(StatusProbe { samples, stop })
    }

    /// First HEALTHY (200) answer at or after `since`, measured from `since`.
    fn healthy_after(&self, since: Instant) -> Option<Duration> {
        let v = self.samples.lock().ok()?;
        v.iter()
            .find(|(at, code)| *at >= since && *code == 200)
            .map(|(at, _)| at.saturating_duration_since(since))
    }
}

impl Drop for StatusProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One phase's numbers.
struct PhaseRow {
    name: &'static str,
    fault: Fault,
    by_status: BTreeMap<u16, u64>,
    no_answer: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_checkin_ms: f64,
    max_other_ms: f64,
    acked: usize,
    lost: usize,
    healthy_after: Option<Duration>,
}

/// Causes that mean the request got no HTTP answer at all.
fn unanswered(cause: &str) -> bool {
    cause == "timeout"
        || [
            "connect:",
            "tls:",
            "io:",
            "closed by server",
            "bad response",
        ]
        .iter()
        .any(|p| cause.starts_with(p))
}

fn summarise(name: &'static str, fault: Fault, stats: &Stats) -> PhaseRow {
    let mut by_status = BTreeMap::new();
    let mut all: Vec<u64> = Vec::new();
    let (mut max_checkin, mut max_other) = (0u64, 0u64);
    for a in &stats.answers {
        *by_status.entry(a.status).or_default() += 1;
        all.push(a.total_us);
        if a.kind == Kind::Checkin {
            max_checkin = max_checkin.max(a.total_us);
        } else {
            max_other = max_other.max(a.total_us);
        }
    }
    let no_answer = stats
        .errors
        .iter()
        .filter(|(k, _)| {
            k.split_once(": ")
                .is_some_and(|(_, cause)| unanswered(cause))
        })
        .map(|(_, n)| *n)
        .sum();
    let ms = |us: Option<u64>| us.map_or(f64::NAN, |us| us as f64 / 1000.0);
    PhaseRow {
        name,
        fault,
        by_status,
        no_answer,
        p50_ms: ms(percentile(&mut all, 50.0)),
        p99_ms: ms(percentile(&mut all, 99.0)),
        max_checkin_ms: max_checkin as f64 / 1000.0,
        max_other_ms: max_other as f64 / 1000.0,
        acked: 0,
        lost: 0,
        healthy_after: None,
    }
}

fn ms(us: u64) -> String {
    format!("{:.0}", us as f64 / 1000.0)
}

/// One row of the split table: the maxima of each part of the answer time, the loop's own
/// stalls, and the machine's TCP counters over the phase.
fn split_row(name: &str, stats: &Stats, tcp: &[(String, i64)]) -> String {
    let max = |f: &dyn Fn(&Answer) -> Option<u64>| stats.answers.iter().filter_map(f).max();
    let opt = |v: Option<u64>| v.map_or("–".to_owned(), ms);
    let checkin = |a: &Answer| a.kind == Kind::Checkin;
    let counters = if tcp.is_empty() {
        "none".to_owned()
    } else {
        tcp.iter()
            .map(|(name, d)| format!("{name} {d:+}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {counters} |\n",
        opt(max(&|a| a.connect_us)),
        opt(max(&|a| a.tls_us)),
        opt(max(&|a| checkin(a).then_some(a.request_us))),
        opt(max(&|a| (!checkin(a)).then_some(a.request_us))),
        stats
            .answers
            .iter()
            .filter(|a| a.connect_us.is_some())
            .count(),
        ms(micros_of(stats.loop_max_busy)),
        stats.loop_slow,
        ms(micros_of(stats.loop_max_gap)),
        stats.answers.iter().filter(|a| a.unread_us > 0).count(),
        ms(micros_of(stats.timer_max_late)),
        stats
            .answers
            .iter()
            .filter(|a| a.connect_us.is_some_and(|c| c >= 500_000))
            .count(),
    )
}

fn micros_of(d: Duration) -> u64 {
    crate::stats::micros(d)
}

/// The answers of a phase closest to (or over) their bound, with where their time went.
fn slowest(name: &str, stats: &Stats, checkin_bound_us: u64, other_bound_us: u64) -> String {
    let mut v: Vec<&Answer> = stats.answers.iter().collect();
    let over = |a: &Answer| {
        let bound = if a.kind == Kind::Checkin {
            checkin_bound_us
        } else {
            other_bound_us
        };
        a.total_us as i64 - bound as i64
    };
    v.sort_by_key(|a| std::cmp::Reverse(over(a)));
    let mut out = String::new();
    for a in v.into_iter().take(4) {
        let conn = match (a.connect_us, a.tls_us) {
            (Some(c), t) => format!(
                "new connection: connect {} + TLS {} + ",
                ms(c),
                t.map_or("–".into(), ms)
            ),
            (None, _) => "reused connection: ".to_owned(),
        };
        let before = a
            .total_us
            .saturating_sub(a.request_us + a.connect_us.unwrap_or(0) + a.tls_us.unwrap_or(0));
        out.push_str(&format!(
            "- {name}: {} {} in {} ms = {conn}other {} + request→answer {} (port {}){}\n",
            a.kind.name(),
            a.status,
            ms(a.total_us),
            ms(before),
            ms(a.request_us),
            a.port,
            if a.unread_us > 0 {
                format!(
                    "; read as the loop resumed after a stop: up to {} ms of it unread",
                    ms(a.unread_us)
                )
            } else {
                String::new()
            }
        ));
    }
    out
}

/// Runs `work` (seeding, switching faults: blocking calls to the stand-in) on a thread of its
/// own while the agents' loop keeps running. A loop stopped for it would read the answers that
/// arrived meanwhile only when it resumed, and count that wait against the server: with the
/// seeding of a phase taking about a second, an answer the server sent at its deadline was
/// counted up to a second past it.
fn while_running<T: Send>(fleet: &mut Fleet, work: impl FnOnce() -> T + Send) -> Result<T, String> {
    std::thread::scope(|scope| {
        let handle = scope.spawn(work);
        while !handle.is_finished() {
            fleet.run_until(Instant::now() + Duration::from_secs(60), |_, _| {
                handle.is_finished()
            });
        }
        handle
            .join()
            .map_err(|_| "the seeding thread panicked".to_owned())
    })
}

fn policy_data(id: &str, es_url: &str, fleet_server: bool) -> Value {
    let inputs = if fleet_server {
        json!([{"id": "fleet_server-outage", "type": "fleet-server", "use_output": "default",
                "server": {"host": "127.0.0.1"}}])
    } else {
        json!([])
    };
    json!({"id": id, "revision": 1,
           "outputs": {"default": {"type": "elasticsearch", "hosts": [es_url]}},
           "output_permissions": {"default": {"_elastic_agent_checks": {"cluster": ["monitor"]}}},
           "inputs": inputs})
}

/// (agent id, action id) pairs with no document in `.fleet-actions-results`.
fn missing_results(
    es: &Client,
    acked: &[(String, String)],
) -> Result<BTreeSet<(String, String)>, String> {
    let _ = es.json("POST", "/.fleet-actions-results/_refresh", None);
    let mut by_action: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    // POLICY_CHANGE acks move the agent document; only real actions have result documents.
    for (agent, action) in acked.iter().filter(|(_, a)| !a.starts_with("policy:")) {
        by_action.entry(action).or_default().insert(agent);
    }
    let mut missing = BTreeSet::new();
    for (action, agents) in by_action {
        let mut found: BTreeSet<String> = BTreeSet::new();
        // Agents ack in batches of at most N ≤ 10 000: one page per action.
        let q = json!({"size": 10000, "_source": ["agent_id"],
                       "query": {"term": {"action_id": action}}});
        let (status, v) = es
            .json("POST", "/.fleet-actions-results/_search", Some(&q))
            .map_err(|e| format!("searching .fleet-actions-results: {e}"))?;
        if status != 200 && status != 404 {
            return Err(format!("searching .fleet-actions-results: {status} {v}"));
        }
        for hit in v["hits"]["hits"].as_array().into_iter().flatten() {
            if let Some(a) = hit["_source"]["agent_id"].as_str() {
                found.insert(a.to_owned());
            }
        }
        for agent in agents {
            if !found.contains(agent) {
                missing.insert((agent.to_owned(), action.to_owned()));
            }
        }
    }
    Ok(missing)
}

/// Runs the scenario and adds its table (and goal rows) to the report.
pub(crate) fn outage(run: &mut Run<'_>) -> Result<(), String> {
    let opts = run.opts;
    let es = StandInProc::start(&opts.standin)?;
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("elastic:changeme")
    );
    let rest = Client::new(&es.url, None)?.with_auth(&basic);
    let ctl = Client::new(&es.control, None)?;
    let seed = Seeder::new(rest.clone(), &es.url);
    let e = |e: es_standin::seed::SeedError| format!("seeding the stand-in: {e:?}");
    seed.policy_with_data(FS_POLICY, policy_data(FS_POLICY, &es.url, true))
        .map_err(e)?;
    seed.enrollment_key(FS_POLICY, "Fleet Server").map_err(e)?;
    seed.policy_with_data(AGENT_POLICY, policy_data(AGENT_POLICY, &es.url, false))
        .map_err(e)?;
    let token = seed
        .enrollment_key(AGENT_POLICY, "Default")
        .map_err(e)?
        .api_key;

    let dir = TempDir::new("outage")?;
    let long_poll = format!("{}s", opts.outage_long_poll.as_secs());
    let mut spec = run.spec(dir.path().join("data"), &long_poll, "0s");
    spec.extra = [
        "--fleet-server-es",
        &es.url,
        "--fleet-server-service-token",
        &es.token,
        "--fleet-server-policy",
        FS_POLICY,
        "--backend-timeout",
        &format!("{}s", opts.backend_timeout.as_secs()),
    ]
    .map(str::to_owned)
    .to_vec();
    let mut server = ServerProc::start(&spec)?;
    eprintln!(
        "loadgen: stand-in {} (control {}); fleet-edge pid {} on {} ({})",
        es.url,
        es.control,
        server.pid,
        server.addr,
        spec.args().join(" ")
    );
    run.report.backend = "Elasticsearch (es-standin process)".into();
    let mut target = run.target(&server)?;
    target.token = token;
    let behaviour = Behaviour {
        request_timeout: opts.agent_timeout,
        ..run.behaviour(false)
    };
    let n = opts.agents;
    let mut fleet = Fleet::new(n, target, behaviour).map_err(|e| e.to_string())?;

    // Setup: everyone enrolled, on revision 1, acked, parked.
    let began = Instant::now();
    fleet.enroll_paced(began, opts.enroll_rate);
    let settled = fleet.run_until(began + opts.phase_deadline, |f, now| {
        f.enrolled() == n && f.parked(now, Duration::ZERO) >= n * 99 / 100
    });
    if !settled {
        return Err(format!(
            "setup: {} of {n} agents enrolled, {} parked within {:?}",
            fleet.enrolled(),
            fleet.parked(Instant::now(), Duration::ZERO),
            opts.phase_deadline
        ));
    }
    run.report.metric(
        "outage",
        "setup: enrolled and parked",
        began.elapsed().as_secs_f64(),
        1,
        "s",
        None,
    );
    let _ = std::mem::take(&mut fleet.stats);
    let probe = StatusProbe::start(&server)?;

    let phases = [
        ("down", Fault::Down),
        ("slow", Fault::Slow),
        ("429 burst", Fault::Refuse(429)),
        ("503 burst", Fault::Refuse(503)),
        ("recovery", Fault::None),
    ];
    let mut rows = Vec::new();
    let mut previous_end: Option<Instant> = None;
    let (mut split_rows, mut slow_lines) = (String::new(), String::new());
    for (name, fault) in phases {
        // A new revision and a SETTINGS action for every agent before the fault: the phase
        // has a rollout, output-key work, and acks whose results must reach Elasticsearch.
        if let Err(err) = while_running(&mut fleet, || seed.new_revision(AGENT_POLICY))? {
            run.report
                .notes
                .push(format!("{name}: no new revision ({err:?})"));
        }
        let ids: Vec<String> = fleet.agents.iter().map(|a| a.id.clone()).collect();
        let settings = while_running(&mut fleet, || {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            seed.action("SETTINGS", &ids, json!({"log_level": "info"}))
        })?;
        if let Err(err) = settings {
            run.report
                .notes
                .push(format!("{name}: no SETTINGS action ({err:?})"));
        }
        let acked_before = fleet.acked_log.len();
        let tcp_before = TcpCounters::read();
        while_running(&mut fleet, || apply(&ctl, fault))??;
        let start = Instant::now();
        fleet.run_until(start + opts.outage_phase, |_, _| false);
        while_running(&mut fleet, || clear(&ctl, fault))??;
        let end = Instant::now();
        if matches!(fault, Fault::None) {
            // Recovery: let every agent reach the newest revision and ack it.
            let newest = fleet.newest_revision;
            fleet.run_until(end + opts.agent_timeout * 2, |f, now| {
                f.parked(now, Duration::ZERO) >= n * 99 / 100
                    && f.agents.iter().all(|a| {
                        a.acks.is_empty() && a.policy.as_ref().is_some_and(|(_, r)| *r >= newest)
                    })
            });
        }
        let stats = std::mem::take(&mut fleet.stats);
        let tcp = TcpCounters::read().delta_since(&tcp_before);
        split_rows.push_str(&split_row(name, &stats, &tcp));
        slow_lines.push_str(&slowest(
            name,
            &stats,
            crate::stats::micros(opts.outage_long_poll),
            crate::stats::micros(opts.backend_timeout),
        ));
        let mut row = summarise(name, fault, &stats);
        row.acked = fleet.acked_log[acked_before..]
            .iter()
            .filter(|(_, a)| !a.starts_with("policy:"))
            .count();
        if matches!(fault, Fault::None) {
            row.healthy_after = previous_end.and_then(|t| probe.healthy_after(t));
        }
        previous_end = Some(end);
        rows.push((row, acked_before..fleet.acked_log.len()));
    }
    let missing = missing_results(&rest, &fleet.acked_log)?;
    let mut table = String::from(
        "| phase | Elasticsearch | answers | 200 | 503 | 401 | other | no answer | p50 ms | p99 ms | max checkin ms | max enroll/ack ms | action acks answered | lost |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let checkin_limit = opts.outage_long_poll.as_secs_f64() * 1000.0 + 1000.0;
    let other_limit = opts.backend_timeout.as_secs_f64() * 1000.0 + 1000.0;
    let (mut total_no_answer, mut total_401, mut total_lost) = (0, 0, 0);
    let (mut worst_checkin, mut worst_other) = (0f64, 0f64);
    for (mut row, range) in rows {
        row.lost = fleet.acked_log[range]
            .iter()
            .filter(|pair| missing.contains(pair))
            .count();
        let count = |s: u16| row.by_status.get(&s).copied().unwrap_or(0);
        let total: u64 = row.by_status.values().sum();
        let other = total - count(200) - count(503) - count(401);
        // Which statuses the "other" answers had, e.g. `151 (429 ×151)`.
        let other_codes: Vec<String> = row
            .by_status
            .iter()
            .filter(|(s, _)| ![200, 503, 401].contains(*s))
            .map(|(s, n)| format!("{s} ×{n}"))
            .collect();
        let other = if other_codes.is_empty() {
            other.to_string()
        } else {
            format!("{other} ({})", other_codes.join(", "))
        };
        total_no_answer += row.no_answer;
        total_401 += count(401);
        total_lost += row.lost;
        worst_checkin = worst_checkin.max(row.max_checkin_ms);
        worst_other = worst_other.max(row.max_other_ms);
        let healthy = row
            .healthy_after
            .map(|d| format!(" (HEALTHY after {:.1} s)", d.as_secs_f64()))
            .unwrap_or_default();
        table.push_str(&format!(
            "| {}{healthy} | {} | {total} | {} | {} | {} | {other} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} |\n",
            row.name,
            row.fault.describe(),
            count(200),
            count(503),
            count(401),
            row.no_answer,
            row.p50_ms,
            row.p99_ms,
            row.max_checkin_ms,
            row.max_other_ms,
            row.acked,
            row.lost,
        ));
        if let Some(d) = row.healthy_after {
            run.report.metric(
                "outage",
                "/api/status HEALTHY after Elasticsearch recovered",
                d.as_secs_f64(),
                1,
                "s",
                Some(Goal {
                    text: "≤ 3 s".into(),
                    met: d <= Duration::from_secs(3),
                }),
            );
        } else if matches!(row.fault, Fault::None) {
            run.report.text(
                "outage",
                "/api/status HEALTHY after Elasticsearch recovered",
                "never",
                Some(Goal {
                    text: "≤ 3 s".into(),
                    met: false,
                }),
            );
        }
    }
    let goal = |met: bool, text: &str| {
        Some(Goal {
            text: text.into(),
            met,
        })
    };
    let report = &mut run.report;
    report.metric(
        "outage",
        "requests with no answer",
        total_no_answer as f64,
        0,
        "",
        goal(total_no_answer == 0, "0"),
    );
    report.metric(
        "outage",
        "answers 401",
        total_401 as f64,
        0,
        "",
        goal(total_401 == 0, "0"),
    );
    report.metric(
        "outage",
        "acked results missing from .fleet-actions-results",
        total_lost as f64,
        0,
        "",
        goal(total_lost == 0, "0"),
    );
    report.metric(
        "outage",
        "max checkin answer",
        worst_checkin,
        0,
        "ms",
        goal(
            worst_checkin <= checkin_limit,
            &format!("≤ long poll + 1 s ({checkin_limit:.0} ms)"),
        ),
    );
    report.metric(
        "outage",
        "max enroll/ack/status answer",
        worst_other,
        0,
        "ms",
        goal(
            worst_other <= other_limit,
            &format!("≤ backend timeout + 1 s ({other_limit:.0} ms)"),
        ),
    );
    report.sections.push(format!(
        "Outage phases ({:?} each; backend timeout {:?}, long poll {:?}, agent timeout {:?}, backoffs × {}):\n\n{table}",
        opts.outage_phase,
        opts.backend_timeout,
        opts.outage_long_poll,
        opts.agent_timeout,
        opts.backoff_scale
    ));
    report.sections.push(format!(
        "Where the answer time went (the load generator's clock, instants taken where the bytes move; maxima per phase; ms). \
         Connect: connect(2) until the loop saw the connection established; TLS: until the read that brought the server's Finished; \
         request→answer: the request's last byte written until the response's last byte read. Loop: the load generator's own longest \
         iteration (poll return to next poll), iterations over 50 ms, and the longest it was not running at all (the scenario seeding or \
         switching faults between two runs of the loop); timers: the latest a scheduled request or timeout fired. \
         TCP counters are the kernel's, machine-wide (every process on the box, other builds and tests included), over the phase:\n\n\
         | phase | connect | TLS | checkin request→answer | enroll/ack request→answer | new connections | loop max | loop > 50 ms | loop stopped | answers read as it resumed | timers late | connects ≥ 500 ms | TCP counters (machine-wide) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n{split_rows}\n\
         The answers closest to or over their bound (checkins: long poll; the rest: backend timeout), per phase:\n\n{slow_lines}"
    ));
    run.server_notes("outage", &mut server);
    server.stop(Duration::from_secs(15));
    drop(probe);
    drop(es);
    if opts.enforce && (total_no_answer > 0 || total_401 > 0 || total_lost > 0) {
        return Err(format!(
            "outage goals missed: {total_no_answer} request(s) with no answer, {total_401} × 401, {total_lost} acked result(s) lost"
        ));
    }
    Ok(())
}
