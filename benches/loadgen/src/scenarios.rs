//! The measured phases, in the order one run takes them: an empty server; a fleet enrolled at a
//! pace the server's fixed enroll limit admits (setup); (a) idle: RSS, RSS per parked agent,
//! CPU over a window; (b) rollout: a rewritten policy file, time until 50/99/100 % received and
//! acked the new revision; (c) reconnect storm: every connection dropped and re-opened at once,
//! handshakes/s beside the raw rustls rate measured in-process just before; (e) steady: the
//! server restarted on the same data dir with a short long poll, checkins/s; (d) enroll storm:
//! a fresh server and N new agents enrolling at once.
//!
//! Neighbours: `fleet.rs` (the agents), `server.rs` (the process and /proc), `report.rs`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use crate::fleet::{Behaviour, Fleet, Target};
use crate::rawtls;
use crate::report::{Goal, Report};
use crate::rssfit;
use crate::server::{self, ServerProc, ServerSpec, TempDir};
use crate::stats::{self, Kind, Stats};
use crate::storms;

/// A scenario of issue 7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// (a)
    Idle,
    /// (b)
    Rollout,
    /// (c)
    Reconnect,
    /// (d)
    Enroll,
    /// (e)
    Steady,
    /// Issue 15 §1: Elasticsearch mode through down / slow / 429 / 503 / recovery.
    Outage,
    /// Issue 19: the fleet stays enrolled and checking in while `--exec` runs (the console's
    /// browser measurement), its management URL and admin token in the environment.
    Console,
}

impl Scenario {
    /// Parses a name.
    pub fn parse(name: &str) -> Option<Scenario> {
        Some(match name {
            "idle" => Scenario::Idle,
            "rollout" => Scenario::Rollout,
            "reconnect" => Scenario::Reconnect,
            "enroll" => Scenario::Enroll,
            "steady" => Scenario::Steady,
            "outage" => Scenario::Outage,
            "console" => Scenario::Console,
            _ => return None,
        })
    }
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct Options {
    /// N.
    pub agents: usize,
    /// Scenarios to run.
    pub scenarios: Vec<Scenario>,
    /// The fleet-edge binary.
    pub binary: PathBuf,
    /// Setup enrolls per second (below the server's fixed enroll limit of 100/s).
    pub enroll_rate: f64,
    /// Idle CPU window.
    pub cpu_window: Duration,
    /// `--checkin-long-poll` / `--checkin-jitter` for idle, rollout, reconnect.
    pub long_poll: String,
    /// See `long_poll`.
    pub jitter: String,
    /// `--checkin-long-poll` of the steady scenario (jitter 0s).
    pub steady_poll: String,
    /// Steady measurement window.
    pub steady_window: Duration,
    /// How many 127.0.0.x source addresses (from 127.0.0.2).
    pub source_ips: usize,
    /// Raw rustls loop duration.
    pub raw_window: Duration,
    /// Longest any phase may take.
    pub phase_deadline: Duration,
    /// Multiplies the agents' error backoffs.
    pub backoff_scale: f64,
    /// Plain HTTP instead of TLS.
    pub plain: bool,
    /// Server `--log-level`.
    pub log_level: String,
    /// This process's descriptor limit (after raising it).
    pub nofile: u64,
    /// outage: the es-standin binary.
    pub standin: PathBuf,
    /// outage: length of each phase.
    pub outage_phase: Duration,
    /// outage: `--checkin-long-poll` (jitter 0s).
    pub outage_long_poll: Duration,
    /// outage: the server's `--backend-timeout`.
    pub backend_timeout: Duration,
    /// outage: a request with no answer after this counts as unanswered.
    pub agent_timeout: Duration,
    /// outage: fail the run on any unanswered request, 401 or lost ack (CI).
    pub enforce: bool,
    /// Fail the run when idle's RSS per parked agent is above this many bytes.
    pub max_rss_per_agent: Option<u64>,
    /// Fail the run when idle's RSS per further parked agent (the least-squares slope through
    /// the settled readings from N/2 to N) is above this many bytes.
    pub max_rss_per_further_agent: Option<u64>,
    /// Steps from N/2 to N with an RSS reading after each (`--rss-steps`).
    pub rss_steps: usize,
    /// The command the `console` scenario runs (through `sh -c`) while the fleet is up.
    pub exec: Option<String>,
}

/// The server's checkin flush period (`checkin_flush`): a settle waits this long for the bulk
/// writer's flush of the last agents' checkin state.
const FLUSH_PERIOD: Duration = Duration::from_secs(10);

/// How long RSS and the server's write count must stay still before an RSS reading.
const QUIET: Duration = Duration::from_secs(2);

/// The first reading (N/2) waits until the server is this old: its first `last_checkin`
/// refresh (30 s after start) has read every parked agent's document on the backend worker and
/// been written (the next 10 s flush), so the store's 1 MiB page cache has been refilled by the
/// worker as it is in steady state. Read earlier, the cache's pages were still those the
/// committer thread wrote, and a later refresh moved them into the worker's glibc arena between
/// two readings: up to ~0.6 MiB more RSS, a fixed cost that landed in the per-agent slope.
const WARM_AGE: Duration = Duration::from_secs(42);

/// A reading not settled by then is taken anyway (and reported as such): longer than the
/// 30 s `last_checkin` refresh period plus a flush, so a refresh cannot keep it from settling.
const SETTLE_DEADLINE: Duration = Duration::from_secs(45);

/// One settled reading of the server's RSS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reading {
    /// Agents parked.
    pub(crate) agents: usize,
    /// `VmRSS`, KiB.
    pub(crate) rss_kib: u64,
    /// Seconds the settle took.
    pub(crate) waited: f64,
    /// Whether it settled before the deadline.
    pub(crate) settled: bool,
    /// Whether the server wrote to its store meanwhile (false: nothing was pending).
    pub(crate) wrote: bool,
}

/// Runs the fleet (its agents keep their connections) until the server's RSS is settled
/// (`rssfit::Settle`: the bulk writer flushed, then RSS and the server's write count still for
/// `QUIET`), and reads it.
fn settled_rss(fleet: &mut Fleet, server: &ServerProc, agents: usize) -> Reading {
    let t0 = Instant::now();
    let mut settle = rssfit::Settle::new(
        server.write_calls(),
        FLUSH_PERIOD.as_secs_f64(),
        QUIET.as_secs_f64(),
    );
    let mut rss_kib = server.rss_kib();
    let settled = fleet.run_until(t0 + SETTLE_DEADLINE, |_, now| {
        rss_kib = server.rss_kib();
        settle.observe(rssfit::Sample {
            t: now.duration_since(t0).as_secs_f64(),
            rss_kib,
            writes: server.write_calls(),
        })
    });
    Reading {
        agents,
        rss_kib,
        waited: t0.elapsed().as_secs_f64(),
        settled,
        wrote: settle.saw_write(),
    }
}

pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub(crate) fn secs(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64())
}

pub(crate) fn goal(text: &str, met: bool) -> Option<Goal> {
    Some(Goal {
        text: text.into(),
        met,
    })
}

/// The state shared by the phases of a run.
pub(crate) struct Run<'a> {
    pub(crate) opts: &'a Options,
    pub(crate) report: &'a mut Report,
    pub(crate) ticks: f64,
}

impl Run<'_> {
    pub(crate) fn spec(&self, data_dir: PathBuf, long_poll: &str, jitter: &str) -> ServerSpec {
        ServerSpec {
            binary: self.opts.binary.clone(),
            data_dir,
            long_poll: long_poll.into(),
            jitter: jitter.into(),
            max_connections: self.opts.agents + (self.opts.agents / 100).max(32),
            log_level: self.opts.log_level.clone(),
            plain: self.opts.plain,
            extra: Vec::new(),
        }
    }

    pub(crate) fn target(&self, server: &ServerProc) -> Result<Target, String> {
        let tls = match &server.ca_path {
            Some(ca) if server.tls => Some((
                rawtls::client_config(ca)?,
                ServerName::IpAddress(server.addr.ip().into()),
            )),
            _ => None,
        };
        Ok(Target {
            addr: server.addr,
            tls,
            token: server.token.clone(),
        })
    }

    pub(crate) fn behaviour(&self, stop_after_enroll: bool) -> Behaviour {
        Behaviour {
            source_ips: (0..self.opts.source_ips.max(1))
                .map(|i| IpAddr::from([127, 0, 0, 2 + (i % 250) as u8]))
                .collect(),
            request_timeout: Duration::from_secs(600),
            backoff_scale: self.opts.backoff_scale,
            stop_after_enroll,
        }
    }

    pub(crate) fn cpu_percent(&self, ticks: u64, over: Duration) -> f64 {
        ticks as f64 / self.ticks / over.as_secs_f64().max(1e-9) * 100.0
    }

    pub(crate) fn server_notes(&mut self, label: &str, server: &mut ServerProc) {
        let alive = server.alive();
        let (w, e, last) = server
            .log
            .lock()
            .map(|t| {
                (
                    t.warnings,
                    t.errors,
                    t.last.last().cloned().unwrap_or_default(),
                )
            })
            .unwrap_or_default();
        self.report.notes.push(format!(
            "{label}: server pid {} {}; log had {w} WARN and {e} ERROR lines{}; peak RSS {:.1} MiB; server descriptor limit {}.",
            server.pid,
            if alive { "still running" } else { "HAD EXITED" },
            if e + w > 0 { format!(" (last line: {last})") } else { String::new() },
            mib(server.peak_rss_kib()),
            server.nofile_limit().map_or("?".into(), |n| n.to_string()),
        ));
    }
}

/// Runs the selected scenarios and fills `report`.
pub fn run(opts: &Options, report: &mut Report) -> Result<(), String> {
    let mut run = Run {
        opts,
        report,
        ticks: server::clock_ticks_per_sec() as f64,
    };
    let has = |s| opts.scenarios.contains(&s);
    if has(Scenario::Idle)
        || has(Scenario::Rollout)
        || has(Scenario::Reconnect)
        || has(Scenario::Steady)
        || has(Scenario::Console)
    {
        fleet_phases(&mut run)?;
    }
    if has(Scenario::Enroll) {
        storms::enroll_storm(&mut run)?;
    }
    if has(Scenario::Outage) {
        crate::outage::outage(&mut run)?;
    }
    Ok(())
}

/// Setup, then idle, rollout, reconnect and steady on one fleet.
fn fleet_phases(run: &mut Run<'_>) -> Result<(), String> {
    let opts = run.opts;
    let has = |s| opts.scenarios.contains(&s);
    let dir = TempDir::new("fleet")?;
    // The fleet is always set up under the long poll: setup waits until every agent is parked,
    // and under steady's 1 s poll an agent is parked for less than the 500 ms that counts, so
    // `loadgen steady` alone never finished setup. Steady restarts the server with its short
    // poll below, as it does after the other phases.
    let first_poll = (opts.long_poll.clone(), opts.jitter.clone());
    let spec = run.spec(dir.path().join("data"), &first_poll.0, &first_poll.1);
    let mut server = ServerProc::start(&spec)?;
    eprintln!(
        "loadgen: fleet-edge pid {} on {} ({})",
        server.pid,
        server.addr,
        spec.args().join(" ")
    );
    std::thread::sleep(Duration::from_secs(2));
    let rss_empty = server.rss_kib();
    run.report.metric(
        "idle",
        "server RSS, empty (no agents)",
        mib(rss_empty),
        2,
        "MiB",
        goal("≤ 5 MB", mib(rss_empty) <= 5.0),
    );
    let field = |f| mib(server::status_field(server.pid, f).unwrap_or(0));
    run.report.metric(
        "idle",
        "empty: RssAnon (heap, stacks)",
        field("RssAnon:"),
        2,
        "MiB",
        None,
    );
    run.report.metric(
        "idle",
        "empty: RssFile (binary and library pages)",
        field("RssFile:"),
        2,
        "MiB",
        None,
    );
    run.report.metric(
        "idle",
        "empty: threads",
        field("Threads:") * 1024.0,
        0,
        "",
        None,
    );

    let target = run.target(&server)?;
    let mut fleet =
        Fleet::new(opts.agents, target, run.behaviour(false)).map_err(|e| e.to_string())?;
    let readings = setup(run, &mut fleet, &server, has(Scenario::Idle))?;
    if has(Scenario::Idle) {
        idle(run, &mut fleet, &server, rss_empty, readings);
    }
    if has(Scenario::Rollout) {
        rollout(run, &mut fleet, &server)?;
    }
    if has(Scenario::Reconnect) {
        storms::reconnect(run, &mut fleet, &server, &spec)?;
    }
    if has(Scenario::Console) {
        console(run, &mut fleet, &server)?;
    }
    if has(Scenario::Steady) {
        if first_poll.0 != opts.steady_poll {
            run.server_notes("idle/rollout/reconnect", &mut server);
            server.stop(Duration::from_secs(15));
            let spec = run.spec(dir.path().join("data"), &opts.steady_poll, "0s");
            server = ServerProc::start(&spec)?;
            eprintln!(
                "loadgen: restarted fleet-edge pid {} ({})",
                server.pid,
                spec.args().join(" ")
            );
            std::thread::sleep(Duration::from_secs(2));
            run.report.metric(
                "steady",
                "server RSS after restart: N agents in the store, none connected",
                mib(server.rss_kib()),
                1,
                "MiB",
                None,
            );
            fleet.retarget(run.target(&server)?);
        }
        steady(run, &mut fleet, &server)?;
    }
    run.server_notes("fleet phases", &mut server);
    server.stop(Duration::from_secs(15));
    Ok(())
}

/// Runs `--exec` while every agent keeps checking in; its exit status is the phase's outcome.
fn console(run: &mut Run<'_>, fleet: &mut Fleet, server: &ServerProc) -> Result<(), String> {
    let command = run
        .opts
        .exec
        .clone()
        .ok_or("the console scenario needs --exec COMMAND")?;
    let read = |name: &str| {
        std::fs::read_to_string(server.data_dir.join(name))
            .map(|s| s.trim().to_owned())
            .map_err(|e| format!("cannot read {name} of the server: {e}"))
    };
    let (url, token) = (read("management-url")?, read("admin-token")?);
    eprintln!("loadgen: console: running {command:?} against {url}");
    let mut child = std::process::Command::new("sh")
        .args(["-c", &command])
        .env("FLEET_EDGE_MANAGEMENT_URL", &url)
        .env("FLEET_EDGE_ADMIN_TOKEN", &token)
        .env("FLEET_EDGE_AGENTS", run.opts.agents.to_string())
        .spawn()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let t0 = Instant::now();
    let deadline = t0 + run.opts.phase_deadline;
    let mut status = None;
    fleet.run_until(deadline, |_, _| {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    let status = match status {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{command:?} did not finish within {} s",
                run.opts.phase_deadline.as_secs()
            ));
        }
    };
    run.report.metric(
        "console",
        "--exec ran while the fleet checked in",
        t0.elapsed().as_secs_f64(),
        1,
        "s",
        goal("exits 0", status.success()),
    );
    if !status.success() {
        return Err(format!("{command:?} failed: {status}"));
    }
    Ok(())
}

pub(crate) fn take_stats(fleet: &mut Fleet) -> Stats {
    std::mem::take(&mut fleet.stats)
}

/// Enrolls every agent at the setup pace and waits until all are parked on the newest revision
/// (the console scenario alone: until all are enrolled and connected; the console needs the
/// agents in the store, not every policy ack through the server's ack limit).
/// Setup: every agent enrolls (paced) and parks. With `readings`, the fleet grows in steps from
/// N/2 to N (`rssfit::reading_points`) and the server's RSS is read, settled, after each step
/// but the last (idle takes that one): what the steps add is the marginal cost of a parked
/// agent, free of what a fleet's first agents bring (the returned readings).
fn setup(
    run: &mut Run<'_>,
    fleet: &mut Fleet,
    server: &ServerProc,
    readings: bool,
) -> Result<Vec<Reading>, String> {
    let only_console = run.opts.scenarios == [Scenario::Console];
    let n = run.opts.agents;
    let t0 = Instant::now();
    // Where each part of the setup ends.
    let ends = if readings {
        rssfit::reading_points(n, run.opts.rss_steps)
    } else {
        vec![n]
    };
    eprintln!(
        "loadgen: setup: enrolling {n} agents at {}/s",
        run.opts.enroll_rate
    );
    let mut taken = Vec::new();
    let mut all = true;
    let mut start = 0;
    for &target in &ends {
        let part = start..target;
        start = target;
        let begun = Instant::now();
        let expected = Duration::from_secs_f64(part.len() as f64 / run.opts.enroll_rate.max(1.0));
        fleet.enroll_paced_range(begun, run.opts.enroll_rate, part);
        let deadline = begun + expected + run.opts.phase_deadline;
        let mut last_log = begun;
        all = fleet.run_until(deadline, |f, now| {
            if now.duration_since(last_log) >= Duration::from_secs(10) {
                last_log = now;
                eprintln!(
                    "loadgen: setup: {}s enrolled {} parked {} conns {} errors {}",
                    now.duration_since(t0).as_secs(),
                    f.enrolled(),
                    f.parked(now, Duration::from_millis(500)),
                    f.open_conns(),
                    f.stats.error_total()
                );
            }
            if only_console {
                f.enrolled() == target && f.open_conns() == target
            } else {
                f.parked(now, Duration::from_millis(500)) == target
            }
        });
        if !all || target == n {
            break;
        }
        if taken.is_empty() {
            fleet.run_until(server.started + WARM_AGE, |_, _| false);
        }
        let reading = settled_rss(fleet, server, target);
        eprintln!(
            "loadgen: setup: {target} parked, RSS {} KiB (settled after {:.1} s{}); enrolling more",
            reading.rss_kib,
            reading.waited,
            if reading.settled { "" } else { ", NOT settled" }
        );
        taken.push(reading);
    }
    let took = t0.elapsed();
    let mut stats = take_stats(fleet);
    run.report.metric(
        "setup",
        "agents enrolled and parked",
        fleet.parked(Instant::now(), Duration::ZERO) as f64,
        0,
        "",
        None,
    );
    run.report.metric(
        "setup",
        "setup time (paced enrolls + first checkin + ack)",
        took.as_secs_f64(),
        1,
        "s",
        None,
    );
    run.report.metric(
        "setup",
        "enroll latency p50",
        stats.latency_ms(Kind::Enroll, 50.0).unwrap_or(f64::NAN),
        1,
        "ms",
        None,
    );
    run.report.metric(
        "setup",
        "enroll latency p99",
        stats.latency_ms(Kind::Enroll, 99.0).unwrap_or(f64::NAN),
        1,
        "ms",
        None,
    );
    run.report.errors("setup", &stats.errors);
    if !all {
        return Err(format!(
            "setup did not finish: {} of {n} agents parked after {:.0} s",
            fleet.parked(Instant::now(), Duration::ZERO),
            took.as_secs_f64()
        ));
    }
    Ok(taken)
}

/// (a) idle: RSS with N parked, per agent, CPU over the window.
fn idle(
    run: &mut Run<'_>,
    fleet: &mut Fleet,
    server: &ServerProc,
    rss_empty: u64,
    mut readings: Vec<Reading>,
) {
    let n = run.opts.agents;
    // The last reading, settled as the setup's were.
    let last = settled_rss(fleet, server, n);
    eprintln!(
        "loadgen: idle: {n} parked, RSS {} KiB (settled after {:.1} s{}); measuring CPU for {:?}",
        last.rss_kib,
        last.waited,
        if last.settled { "" } else { ", NOT settled" },
        run.opts.cpu_window
    );
    readings.push(last);
    take_stats(fleet);
    let rss_parked = last.rss_kib;
    let cpu0 = server.cpu_ticks();
    let t0 = Instant::now();
    fleet.run_until(t0 + run.opts.cpu_window, |_, _| false);
    let window = t0.elapsed();
    let cpu = run.cpu_percent(server.cpu_ticks().saturating_sub(cpu0), window);
    let rss_after = server.rss_kib();
    let mut stats = take_stats(fleet);
    let per_agent_kib = rss_parked.saturating_sub(rss_empty) as f64 / n.max(1) as f64;
    run.report.rss_per_agent_bytes = Some(per_agent_kib * 1024.0);
    // The first and the last reading (N/2 and N): the two-point figure of earlier runs, kept to
    // compare. Signed: at small N the two readings' noise can make the difference negative.
    let first = readings.first().copied().filter(|_| readings.len() > 1);
    let two_point_kib = first.map(|f| {
        (rss_parked as f64 - f.rss_kib as f64) / (n.saturating_sub(f.agents)).max(1) as f64
    });
    let points: Vec<(f64, f64)> = readings
        .iter()
        .map(|r| (r.agents as f64, r.rss_kib as f64 * 1024.0))
        .collect();
    let fit = rssfit::least_squares(&points);
    run.report.rss_per_further_agent_bytes = fit.map(|f| f.slope);
    let unsettled = readings.iter().filter(|r| !r.settled).count();
    let status = |pid, f| server::status_field(pid, f).unwrap_or(0);
    let r = &mut *run.report;
    r.metric(
        "idle",
        "agents parked",
        fleet.parked(Instant::now(), Duration::ZERO) as f64,
        0,
        "",
        None,
    );
    r.metric(
        "idle",
        "server RSS with N parked",
        mib(rss_parked),
        1,
        "MiB",
        None,
    );
    r.metric(
        "idle",
        "RSS per parked agent (delta over empty)",
        per_agent_kib,
        2,
        "KiB",
        goal("≤ 5 KB", per_agent_kib * 1024.0 <= 5000.0),
    );
    if let (Some(first), Some(two_point)) = (first, two_point_kib) {
        r.metric(
            "idle",
            "server RSS with N/2 parked (during setup)",
            mib(first.rss_kib),
            1,
            "MiB",
            None,
        );
        r.metric(
            "idle",
            "RSS per further parked agent, two readings (N/2 and N)",
            two_point,
            2,
            "KiB",
            None,
        );
    }
    if let Some(fit) = fit {
        r.metric(
            "idle",
            &format!(
                "RSS per further parked agent (least-squares fit, {} settled readings N/2 to N)",
                readings.len()
            ),
            fit.slope,
            0,
            "bytes",
            goal("≤ 5 KB", fit.slope <= 5000.0),
        );
        r.metric(
            "idle",
            "readings' RMS distance from the fitted line",
            fit.rms_residual / 1024.0,
            0,
            "KiB",
            None,
        );
        r.metric(
            "idle",
            "readings not settled within the deadline",
            unsettled as f64,
            0,
            "",
            None,
        );
        let list: Vec<String> = readings
            .iter()
            .map(|x| {
                format!(
                    "{} agents {} KiB (settled in {:.1} s{})",
                    x.agents,
                    x.rss_kib,
                    x.waited,
                    if x.settled { "" } else { ", not settled" }
                )
            })
            .collect();
        r.notes
            .push(format!("idle: RSS readings: {}", list.join("; ")));
        r.values.entry("idle".into()).or_default().insert(
            "rss_readings".into(),
            serde_json::json!(readings
                .iter()
                .map(|x| serde_json::json!({
                    "agents": x.agents,
                    "rss_kib": x.rss_kib,
                    "settle_s": x.waited,
                    "settled": x.settled,
                    "store_wrote": x.wrote,
                }))
                .collect::<Vec<_>>()),
        );
    }
    r.metric(
        "idle",
        "server RSS after the CPU window",
        mib(rss_after),
        1,
        "MiB",
        None,
    );
    r.metric(
        "idle",
        "of which RssAnon (heap, stacks)",
        mib(status(server.pid, "RssAnon:")),
        1,
        "MiB",
        None,
    );
    r.metric(
        "idle",
        "of which RssFile (binary and library pages)",
        mib(status(server.pid, "RssFile:")),
        1,
        "MiB",
        None,
    );
    r.metric(
        "idle",
        &format!("server CPU over {} s", window.as_secs()),
        cpu,
        2,
        "% of one core",
        None,
    );
    r.metric(
        "idle",
        "checkins answered in the window (long polls ending)",
        stats.ok_of(Kind::Checkin) as f64,
        0,
        "",
        None,
    );
    let p50 = stats.latency_ms(Kind::Checkin, 50.0).unwrap_or(f64::NAN) / 1000.0;
    r.metric("idle", "long-poll hold p50 (of those)", p50, 1, "s", None);
    r.errors("idle", &stats.errors);
}

/// (b) rollout: rewrite the policy file; time until 50/99/100 % received and acked.
fn rollout(run: &mut Run<'_>, fleet: &mut Fleet, server: &ServerProc) -> Result<(), String> {
    let n = run.opts.agents;
    let revision = fleet.newest_revision + 1;
    fleet.set_target(revision);
    take_stats(fleet);
    let tcp0 = server::tcp_counters();
    let cpu0 = server.cpu_ticks();
    let t0 = Instant::now();
    server::bump_policy(&server.data_dir, revision as u32)?;
    eprintln!("loadgen: rollout: policy file rewritten for revision {revision}");
    let mut last_log = t0;
    let done = fleet.run_until(t0 + run.opts.phase_deadline, |f, now| {
        let acked = f.agents.iter().filter(|a| a.acked_target.is_some()).count();
        if now.duration_since(last_log) >= Duration::from_secs(10) {
            last_log = now;
            let got = f.agents.iter().filter(|a| a.got_target.is_some()).count();
            eprintln!(
                "loadgen: rollout: {}s received {got} acked {acked} errors {}",
                now.duration_since(t0).as_secs(),
                f.stats.error_total()
            );
        }
        acked == n
    });
    let took = t0.elapsed();
    let cpu = run.cpu_percent(server.cpu_ticks().saturating_sub(cpu0), took);
    let mut got: Vec<Instant> = fleet.agents.iter().filter_map(|a| a.got_target).collect();
    let mut acked: Vec<Instant> = fleet.agents.iter().filter_map(|a| a.acked_target).collect();
    let first = got.iter().min().copied();
    let stats = take_stats(fleet);
    let r = &mut *run.report;
    r.metric(
        "rollout",
        "received by 50 %",
        secs(stats::time_to_fraction(&mut got, t0, n, 0.5)),
        2,
        "s",
        None,
    );
    r.metric(
        "rollout",
        "received by 99 %",
        secs(stats::time_to_fraction(&mut got, t0, n, 0.99)),
        2,
        "s",
        None,
    );
    let all_got = stats::time_to_fraction(&mut got, t0, n, 1.0);
    r.metric("rollout", "received by 100 %", secs(all_got), 2, "s", None);
    r.metric(
        "rollout",
        "acked by 50 %",
        secs(stats::time_to_fraction(&mut acked, t0, n, 0.5)),
        2,
        "s",
        None,
    );
    r.metric(
        "rollout",
        "acked by 99 %",
        secs(stats::time_to_fraction(&mut acked, t0, n, 0.99)),
        2,
        "s",
        None,
    );
    let all_acked = stats::time_to_fraction(&mut acked, t0, n, 1.0);
    r.metric(
        "rollout",
        "received and acked by 100 % (from the file write)",
        secs(all_acked),
        2,
        "s",
        goal(
            "≤ 2 s at 10k",
            all_acked.is_some_and(|d| d <= Duration::from_secs(2)),
        ),
    );
    if let (Some(first), Some(last)) = (first, got.iter().max()) {
        r.metric(
            "rollout",
            "file write → first delivery (policy-file scan)",
            first.duration_since(t0).as_secs_f64(),
            2,
            "s",
            None,
        );
        r.metric(
            "rollout",
            "first → last delivery (fan-out)",
            last.duration_since(first).as_secs_f64(),
            3,
            "s",
            None,
        );
    }
    r.metric(
        "rollout",
        "acks OK / attempted",
        stats.ok_of(Kind::Ack) as f64,
        0,
        "",
        None,
    );
    r.metric(
        "rollout",
        "server CPU during the rollout",
        cpu,
        1,
        "% of one core",
        None,
    );
    if !done {
        r.notes.push(format!(
            "rollout: not every agent acked within {:.0} s",
            took.as_secs_f64()
        ));
    }
    let tcp = server::tcp_delta(&tcp0, &server::tcp_counters());
    r.notes
        .push(format!("rollout: kernel TCP counter deltas {tcp:?}"));
    r.errors("rollout", &stats.errors);
    Ok(())
}

/// (e) steady checkins with a short long poll.
fn steady(run: &mut Run<'_>, fleet: &mut Fleet, server: &ServerProc) -> Result<(), String> {
    fleet.drop_connections();
    fleet.checkin_all_now(Instant::now());
    fleet.run_until(Instant::now() + Duration::from_secs(10), |_, _| false);
    take_stats(fleet);
    let cpu0 = server.cpu_ticks();
    let t0 = Instant::now();
    eprintln!(
        "loadgen: steady: measuring for {:?}",
        run.opts.steady_window
    );
    fleet.run_until(t0 + run.opts.steady_window, |_, _| false);
    let window = t0.elapsed();
    let cpu = run.cpu_percent(server.cpu_ticks().saturating_sub(cpu0), window);
    let mut stats = take_stats(fleet);
    let ok = stats.ok_of(Kind::Checkin) as f64;
    let r = &mut *run.report;
    r.text(
        "steady",
        "server flags",
        &format!(
            "--checkin-long-poll {} --checkin-jitter 0s",
            run.opts.steady_poll
        ),
        None,
    );
    r.metric(
        "steady",
        "checkins/s (200s)",
        ok / window.as_secs_f64(),
        0,
        "/s",
        None,
    );
    r.metric(
        "steady",
        "checkin latency p50 (includes the long poll)",
        stats.latency_ms(Kind::Checkin, 50.0).unwrap_or(f64::NAN),
        0,
        "ms",
        None,
    );
    r.metric(
        "steady",
        "checkin latency p99",
        stats.latency_ms(Kind::Checkin, 99.0).unwrap_or(f64::NAN),
        0,
        "ms",
        None,
    );
    r.metric("steady", "server CPU", cpu, 0, "% of one core", None);
    r.errors("steady", &stats.errors);
    Ok(())
}
