//! The two storms: (c) reconnect — every agent drops its connection and reconnects at once,
//! with full TLS handshakes, measured beside the raw rustls rate of the same run; (d) enroll —
//! a fresh server and N new agents enrolling at once, with the agent's own backoff after errors.
//!
//! Neighbours: `scenarios.rs` (the run and the other phases), `rawtls.rs` (the yardstick).

use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use crate::fleet::Fleet;
use crate::rawtls;
use crate::report::Report;
use crate::scenarios::{goal, mib, take_stats, Run};
use crate::server::{self, ServerProc, ServerSpec, TempDir};
use crate::stats::{self, Kind};

/// The server's memory around a storm: RSS before it, the peak during it (`VmHWM`, reset by
/// `clear_refs` when the storm starts) and RSS after it.
struct StormMemory {
    before_kib: u64,
}

impl StormMemory {
    /// Reads RSS and resets the server's peak to it; call just before the storm starts.
    fn start(server: &ServerProc) -> Result<StormMemory, String> {
        let before_kib = server.rss_kib();
        server.reset_peak_rss()?;
        Ok(StormMemory { before_kib })
    }

    /// Reads the peak and RSS now into the report's rows of `scenario` (`n` agents stormed).
    fn report(&self, r: &mut Report, scenario: &str, server: &ServerProc, n: usize) {
        let peak = server.peak_rss_kib().max(self.before_kib);
        let after = server.rss_kib();
        r.metric(
            scenario,
            "server RSS before the storm",
            mib(self.before_kib),
            2,
            "MiB",
            None,
        );
        r.metric(
            scenario,
            "server peak RSS during the storm (VmHWM after clear_refs)",
            mib(peak),
            2,
            "MiB",
            None,
        );
        r.metric(
            scenario,
            "peak over before, per agent",
            (peak - self.before_kib) as f64 / n.max(1) as f64,
            2,
            "KiB",
            None,
        );
        r.metric(
            scenario,
            "server RSS after the storm",
            mib(after),
            2,
            "MiB",
            None,
        );
    }
}

/// (c) reconnect storm: every agent drops its connection and reconnects at once.
pub(crate) fn reconnect(
    run: &mut Run<'_>,
    fleet: &mut Fleet,
    server: &ServerProc,
    spec: &ServerSpec,
) -> Result<(), String> {
    let n = fleet.enrolled();
    // Back to a quiet, parked fleet first (agents that a 429 sent into a backoff are woken).
    fleet.drop_connections();
    fleet.checkin_all_now(Instant::now());
    let settle = Instant::now() + run.opts.phase_deadline;
    fleet.run_until(settle, |f, now| {
        f.parked(now, Duration::from_millis(500)) == n
    });
    fleet.run_until(Instant::now() + Duration::from_secs(3), |_, _| false);
    take_stats(fleet);

    let raw = match (server.tls, &server.ca_path) {
        (true, Some(ca)) => {
            let server_cfg = rawtls::server_config(&spec.data_dir)?;
            let client_cfg = rawtls::client_config(ca)?;
            let name = ServerName::IpAddress(server.addr.ip().into());
            let raw = rawtls::handshake_rate(&server_cfg, &client_cfg, &name, run.opts.raw_window)
                .map_err(|e| format!("raw rustls loop: {e}"))?;
            let session = rawtls::server_session_bytes(&server_cfg, &client_cfg, &name, 5000)
                .map_err(|e| format!("session size: {e}"))?;
            run.report.metric(
                "reconnect",
                "rustls server session after handshake (in-process RSS / session)",
                session / 1024.0,
                2,
                "KiB",
                None,
            );
            Some(raw)
        }
        _ => None,
    };
    let tcp0 = server::tcp_counters();
    let cpu0 = server.cpu_ticks();
    let own = format!("/proc/{}/stat", std::process::id());
    let own0 = server::cpu_ticks(&own);
    let memory = StormMemory::start(server)?;
    fleet.drop_connections();
    let t0 = Instant::now();
    fleet.checkin_all_now(t0);
    eprintln!("loadgen: reconnect: {n} agents reconnecting");
    let done = fleet.run_until(t0 + run.opts.phase_deadline, |f, _| {
        f.stats.handshakes.len() >= n
    });
    let mut times: Vec<Instant> = fleet.stats.handshakes.iter().map(|(t, _)| *t).collect();
    let mut lat: Vec<u64> = fleet
        .stats
        .handshakes
        .iter()
        .map(|(_, d)| d.as_micros() as u64)
        .collect();
    let last = times.iter().max().copied().unwrap_or(t0);
    let span = last.duration_since(t0);
    let cpu = run.cpu_percent(server.cpu_ticks().saturating_sub(cpu0), span);
    let own_cpu = run.cpu_percent(server::cpu_ticks(&own).saturating_sub(own0), span);
    // Let the reconnected agents park again before the counters are read.
    fleet.run_until(Instant::now() + Duration::from_secs(5), |_, _| false);
    let stats = take_stats(fleet);
    memory.report(run.report, "reconnect", server, n);
    let rate = times.len() as f64 / span.as_secs_f64().max(1e-9);
    let peak = stats::peak_per_second(&mut times);
    let r = &mut *run.report;
    r.metric(
        "reconnect",
        "handshakes completed",
        times.len() as f64,
        0,
        "",
        None,
    );
    r.metric(
        "reconnect",
        "time until all handshakes completed",
        span.as_secs_f64(),
        2,
        "s",
        None,
    );
    r.metric(
        "reconnect",
        "handshakes/s (N / that time)",
        rate,
        0,
        "/s",
        None,
    );
    r.metric(
        "reconnect",
        "handshakes/s, best 1 s window",
        peak,
        0,
        "/s",
        None,
    );
    r.metric(
        "reconnect",
        "connect → handshake done p50",
        stats::percentile(&mut lat, 50.0).unwrap_or(0) as f64 / 1000.0,
        1,
        "ms",
        None,
    );
    r.metric(
        "reconnect",
        "connect → handshake done p99",
        stats::percentile(&mut lat, 99.0).unwrap_or(0) as f64 / 1000.0,
        1,
        "ms",
        None,
    );
    r.metric(
        "reconnect",
        "server CPU during the storm",
        cpu,
        0,
        "% of one core",
        None,
    );
    r.metric(
        "reconnect",
        "loadgen CPU during the storm",
        own_cpu,
        0,
        "% of one core",
        None,
    );
    if let Some(raw) = raw {
        r.metric(
            "reconnect",
            &format!(
                "raw rustls handshakes/s, one core, client+server in-process ({})",
                raw.protocol
            ),
            raw.per_sec,
            0,
            "/s",
            None,
        );
        r.metric(
            "reconnect",
            "raw rustls, server side alone",
            raw.server_only_per_sec,
            0,
            "/s",
            None,
        );
        r.metric(
            "reconnect",
            "raw rustls handshakes done in the loop",
            raw.handshakes as f64,
            0,
            "",
            None,
        );
        let ratio = rate / raw.per_sec * 100.0;
        r.metric(
            "reconnect",
            "storm rate / raw rate",
            ratio,
            0,
            "%",
            goal("≥ 80 %", ratio >= 80.0),
        );
        let peak_ratio = peak / raw.per_sec * 100.0;
        r.metric(
            "reconnect",
            "best 1 s window / raw rate",
            peak_ratio,
            0,
            "%",
            None,
        );
    }
    if !done {
        r.notes.push(format!(
            "reconnect: only {} of {n} handshakes completed",
            times.len()
        ));
    }
    let tcp = server::tcp_delta(&tcp0, &server::tcp_counters());
    r.notes
        .push(format!("reconnect: kernel TCP counter deltas {tcp:?}"));
    r.errors("reconnect", &stats.errors);
    Ok(())
}

/// (d) enroll storm: a fresh server, N new agents enrolling at once (first wait U[0, 1 s),
/// then the agent's backoff on errors).
pub(crate) fn enroll_storm(run: &mut Run<'_>) -> Result<(), String> {
    let n = run.opts.agents;
    let dir = TempDir::new("enroll")?;
    let spec = run.spec(
        dir.path().join("data"),
        &run.opts.long_poll,
        &run.opts.jitter,
    );
    let mut server = ServerProc::start(&spec)?;
    eprintln!(
        "loadgen: enroll storm: fleet-edge pid {} on {}",
        server.pid, server.addr
    );
    let target = run.target(&server)?;
    let mut fleet = Fleet::new(n, target, run.behaviour(true)).map_err(|e| e.to_string())?;
    let memory = StormMemory::start(&server)?;
    let cpu0 = server.cpu_ticks();
    let t0 = Instant::now();
    fleet.enroll_storm(t0);
    let mut last_log = t0;
    let done = fleet.run_until(t0 + run.opts.phase_deadline, |f, now| {
        let enrolled = f.enrolled();
        if now.duration_since(last_log) >= Duration::from_secs(10) {
            last_log = now;
            eprintln!(
                "loadgen: enroll storm: {}s enrolled {enrolled} errors {}",
                now.duration_since(t0).as_secs(),
                f.stats.error_total()
            );
        }
        f.agents.iter().all(|a| a.enrolled() || a.stopped)
    });
    let mut times: Vec<Instant> = fleet.agents.iter().filter_map(|a| a.enrolled_at).collect();
    let last = times.iter().max().copied().unwrap_or(t0);
    let span = last.duration_since(t0);
    let cpu = run.cpu_percent(server.cpu_ticks().saturating_sub(cpu0), span);
    let mut stats = take_stats(&mut fleet);
    let r = &mut *run.report;
    r.metric("enroll", "agents enrolled", times.len() as f64, 0, "", None);
    r.metric(
        "enroll",
        "time until the last enrolled",
        span.as_secs_f64(),
        2,
        "s",
        None,
    );
    r.metric(
        "enroll",
        "enrolls/s (enrolled / that time)",
        times.len() as f64 / span.as_secs_f64().max(1e-9),
        0,
        "/s",
        None,
    );
    r.metric(
        "enroll",
        "enrolls/s, best 1 s window",
        stats::peak_per_second(&mut times),
        0,
        "/s",
        None,
    );
    r.metric(
        "enroll",
        "enroll latency p50 (successful requests)",
        stats.latency_ms(Kind::Enroll, 50.0).unwrap_or(f64::NAN),
        1,
        "ms",
        None,
    );
    r.metric(
        "enroll",
        "enroll latency p99 (successful requests)",
        stats.latency_ms(Kind::Enroll, 99.0).unwrap_or(f64::NAN),
        1,
        "ms",
        None,
    );
    r.metric("enroll", "server CPU", cpu, 0, "% of one core", None);
    memory.report(r, "enroll", &server, n);
    if !done {
        r.notes.push(format!(
            "enroll: {} of {n} agents enrolled before the deadline",
            times.len()
        ));
    }
    r.errors("enroll", &stats.errors);
    run.server_notes("enroll storm", &mut server);
    server.stop(Duration::from_secs(15));
    Ok(())
}
