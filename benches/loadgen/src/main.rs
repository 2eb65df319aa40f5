//! `loadgen`: N simulated Elastic Agents in one event-driven process against a fleet-edge it
//! starts itself (release binary, embedded mode, 127.0.0.1, free port, temporary data dir), and
//! the issue-7 scenarios: `idle`, `rollout`, `reconnect`, `enroll`, `steady`, or `all`; and
//! `outage` (issue 15: Elasticsearch mode against an es-standin process, `outage.rs`). Prints a
//! Markdown table (and writes it with a JSON twin under `--out`), then stops the server. Only
//! loopback traffic; every phase is bounded by `--phase-deadline`.
//!
//! Module map: `agent.rs` (what an agent sends and how it reads replies), `client.rs` (one
//! TLS connection), `fleet.rs` (the event loop of N agents), `server.rs` (the server process and
//! /proc), `rawtls.rs` (in-process rustls yardsticks), `scenarios.rs` (the phases), `storms.rs` (the
//! reconnect and enroll storms), `stats.rs`,
//! `report.rs`.
#![forbid(unsafe_code)]

mod agent;
mod client;
mod fleet;
mod outage;
mod rawtls;
mod report;
mod rssfit;
mod scenarios;
mod server;
mod stats;
mod storms;
mod tcpstat;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use scenarios::{Options, Scenario};

const HELP: &str = "\
loadgen: simulated Elastic Agents against a fleet-edge it starts (embedded store, TLS, loopback)

USAGE: loadgen <idle|rollout|reconnect|enroll|steady|console|all|outage> [OPTIONS]
   or: loadgen run --scenarios idle,rollout,... [OPTIONS]

OPTIONS:
  --agents N            simulated agents (default 1000)
  --server PATH         fleet-edge binary (default target/release/fleet-edge)
  --out DIR             also write loadgen-<name>-<N>[-plain].md and .json there
  --enroll-rate R       setup enrolls per second (default 80; the server admits 100/s)
  --cpu-window SECS     idle CPU measurement window (default 60)
  --long-poll DUR       --checkin-long-poll for idle/rollout/reconnect (default 5m)
  --jitter DUR          --checkin-jitter for idle/rollout/reconnect (default 30s)
  --steady-poll DUR     --checkin-long-poll for steady, jitter 0s (default 1s)
  --steady-secs SECS    steady measurement window (default 30)
  --source-ips K        spread connections over 127.0.0.2 .. 127.0.0.(K+1) (default 8)
  --raw-secs SECS       raw rustls handshake loop duration (default 3)
  --phase-deadline SECS longest any phase may take (default 600)
  --backoff-scale F     multiply the agents' error backoffs (default 1.0 = the agent's own)
  --plain               plain HTTP (--fleet-server-insecure-http) instead of TLS
  --log-level LEVEL     the server's --log-level (default info)

OUTAGE (Elasticsearch mode against es-standin; not part of `all`):
  --standin PATH        es-standin binary (default target/release/es-standin)
  --phase-secs SECS     length of each phase: down, slow, 429 burst, 503 burst, recovery (default 30)
  --outage-long-poll SECS  the server's --checkin-long-poll (default 20)
  --backend-timeout SECS   the server's --backend-timeout (default 10)
  --agent-timeout SECS  a request unanswered after this counts as no answer (default 60)
  --enforce             exit 1 on any request with no answer, any 401, any lost ack (CI)
  --max-rss-per-agent B exit with an error when idle's RSS per parked agent (delta over the
                        empty server, divided by N) is above B bytes
  --max-rss-per-further-agent B
                        exit with an error when idle's RSS per further parked agent is above
                        B bytes (the CI run's regression check): the least-squares slope
                        through the server's RSS read, settled, at N/2, then after each of
                        the steps to N (bulk writer flushed, RSS and writes still for 2 s)
  --rss-steps K         steps from N/2 to N, each followed by an RSS reading (default 5)
  --exec COMMAND        console scenario: run COMMAND (sh -c) once the fleet is parked, with
                        FLEET_EDGE_MANAGEMENT_URL, FLEET_EDGE_ADMIN_TOKEN and FLEET_EDGE_AGENTS
                        set, while the agents keep checking in; fails when it fails
";

fn default_server() -> PathBuf {
    sibling("fleet-edge")
}

/// A release binary of the workspace: `target/release/<name>`.
fn sibling(name: &str) -> PathBuf {
    let here = PathBuf::from("target/release").join(name);
    if here.exists() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/release")
        .join(name)
}

fn parse() -> Result<(String, Options, Option<PathBuf>), String> {
    let mut args = pico_args::Arguments::from_env();
    if args.contains(["-h", "--help"]) {
        return Err(String::new());
    }
    let e = |e: pico_args::Error| e.to_string();
    let command: String = args
        .free_from_str()
        .map_err(|_| "name a scenario".to_owned())?;
    let list: Option<String> = args.opt_value_from_str("--scenarios").map_err(e)?;
    let names: Vec<String> = match command.as_str() {
        "all" => ["idle", "rollout", "reconnect", "steady", "enroll"]
            .map(String::from)
            .to_vec(),
        "run" => list
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        one => vec![one.to_owned()],
    };
    let scenarios = names
        .iter()
        .map(|n| Scenario::parse(n).ok_or_else(|| format!("unknown scenario {n:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    if scenarios.is_empty() {
        return Err("no scenario given".into());
    }
    let secs = |v: u64| Duration::from_secs(v);
    let opts = Options {
        agents: args
            .opt_value_from_str("--agents")
            .map_err(e)?
            .unwrap_or(1000),
        scenarios,
        binary: args
            .opt_value_from_str("--server")
            .map_err(e)?
            .unwrap_or_else(default_server),
        enroll_rate: args
            .opt_value_from_str("--enroll-rate")
            .map_err(e)?
            .unwrap_or(80.0),
        cpu_window: secs(
            args.opt_value_from_str("--cpu-window")
                .map_err(e)?
                .unwrap_or(60),
        ),
        long_poll: args
            .opt_value_from_str("--long-poll")
            .map_err(e)?
            .unwrap_or_else(|| "5m".into()),
        jitter: args
            .opt_value_from_str("--jitter")
            .map_err(e)?
            .unwrap_or_else(|| "30s".into()),
        steady_poll: args
            .opt_value_from_str("--steady-poll")
            .map_err(e)?
            .unwrap_or_else(|| "1s".into()),
        steady_window: secs(
            args.opt_value_from_str("--steady-secs")
                .map_err(e)?
                .unwrap_or(30),
        ),
        source_ips: args
            .opt_value_from_str("--source-ips")
            .map_err(e)?
            .unwrap_or(8),
        raw_window: secs(
            args.opt_value_from_str("--raw-secs")
                .map_err(e)?
                .unwrap_or(3),
        ),
        phase_deadline: secs(
            args.opt_value_from_str("--phase-deadline")
                .map_err(e)?
                .unwrap_or(600),
        ),
        backoff_scale: args
            .opt_value_from_str("--backoff-scale")
            .map_err(e)?
            .unwrap_or(1.0),
        plain: args.contains("--plain"),
        log_level: args
            .opt_value_from_str("--log-level")
            .map_err(e)?
            .unwrap_or_else(|| "info".into()),
        nofile: 0,
        standin: args
            .opt_value_from_str("--standin")
            .map_err(e)?
            .unwrap_or_else(|| sibling("es-standin")),
        outage_phase: secs(
            args.opt_value_from_str("--phase-secs")
                .map_err(e)?
                .unwrap_or(30),
        ),
        outage_long_poll: secs(
            args.opt_value_from_str("--outage-long-poll")
                .map_err(e)?
                .unwrap_or(20),
        ),
        backend_timeout: secs(
            args.opt_value_from_str("--backend-timeout")
                .map_err(e)?
                .unwrap_or(10),
        ),
        enforce: args.contains("--enforce"),
        agent_timeout: secs(
            args.opt_value_from_str("--agent-timeout")
                .map_err(e)?
                .unwrap_or(60),
        ),
        max_rss_per_agent: args.opt_value_from_str("--max-rss-per-agent").map_err(e)?,
        max_rss_per_further_agent: args
            .opt_value_from_str("--max-rss-per-further-agent")
            .map_err(e)?,
        rss_steps: args
            .opt_value_from_str("--rss-steps")
            .map_err(e)?
            .unwrap_or(5),
        exec: args.opt_value_from_str("--exec").map_err(e)?,
    };
    let out: Option<PathBuf> = args.opt_value_from_str("--out").map_err(e)?;
    let rest = args.finish();
    if !rest.is_empty() {
        return Err(format!("unexpected arguments {rest:?}"));
    }
    Ok((command, opts, out))
}

/// Raises this process's descriptor limit to its hard limit and checks that N agents fit (in
/// this process and in the server, which inherits the limit).
fn descriptors(agents: usize) -> Result<u64, String> {
    let limit = rlimit::increase_nofile_limit(u64::MAX)
        .map_err(|e| format!("cannot raise RLIMIT_NOFILE: {e}"))?;
    let need = agents as u64 + (agents as u64 / 100).max(32) + 128;
    if limit < need {
        return Err(format!(
            "{agents} agents need about {need} open descriptors in this process and as many in the server \
             (one TCP connection per parked agent on each side), but RLIMIT_NOFILE's hard limit here is {limit}; \
             raising a hard limit needs CAP_SYS_RESOURCE (or a higher `ulimit -Hn` set by the parent). \
             The largest N this machine allows is about {}",
            limit.saturating_sub(160) * 100 / 101
        ));
    }
    Ok(limit)
}

fn main() -> ExitCode {
    let (command, mut opts, out) = match parse() {
        Ok(x) => x,
        Err(e) if e.is_empty() => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("loadgen: {e}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    opts.nofile = match descriptors(opts.agents) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(1);
        }
    };
    let line = std::env::args().collect::<Vec<_>>().join(" ");
    let transport = if opts.plain {
        "plain HTTP"
    } else {
        "TLS (rustls, full handshakes)"
    };
    let mut report = report::Report::new(opts.agents, transport, line);
    let loadavg = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    report.notes.push(format!(
        "load average at the start (the 2 cores are shared with other work): {}",
        loadavg().trim()
    ));
    let started = std::time::Instant::now();
    let result = scenarios::run(&opts, &mut report).and_then(|()| {
        // The regression check of the CI run: the budget per parked agent (bytes).
        let check = |limit: Option<u64>, bytes: Option<f64>, what: &str| match (limit, bytes) {
            (Some(limit), Some(bytes)) if bytes > limit as f64 => Err(format!(
                "RSS per {what} is {bytes:.0} bytes, above the limit of {limit} bytes"
            )),
            (Some(_), None) => Err(format!("no RSS per {what} was measured (run idle)")),
            _ => Ok(()),
        };
        check(
            opts.max_rss_per_agent,
            report.rss_per_agent_bytes,
            "parked agent",
        )?;
        check(
            opts.max_rss_per_further_agent,
            report.rss_per_further_agent_bytes,
            "further parked agent (fit, N/2 to N)",
        )
    });
    report.notes.push(format!(
        "run took {:.0} s; loadgen descriptor limit {}; loadgen peak RSS {:.0} MiB.",
        started.elapsed().as_secs_f64(),
        opts.nofile,
        server::status_field(std::process::id(), "VmHWM:").unwrap_or(0) as f64 / 1024.0
    ));
    report
        .notes
        .push(format!("load average at the end: {}", loadavg().trim()));
    if let Err(e) = &result {
        report.notes.push(format!("RUN FAILED: {e}"));
    }
    let markdown = report.markdown();
    println!("{markdown}");
    if let Some(dir) = out {
        let plain = if opts.plain { "-plain" } else { "" };
        let base = dir.join(format!("loadgen-{command}-{}{plain}", opts.agents));
        let json = serde_json::to_string_pretty(&report.json()).unwrap_or_default();
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(base.with_extension("md"), &markdown))
            .and_then(|()| std::fs::write(base.with_extension("json"), json + "\n"));
        if let Err(e) = written {
            eprintln!(
                "loadgen: cannot write the report under {}: {e}",
                dir.display()
            );
            return ExitCode::from(1);
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(1)
        }
    }
}
