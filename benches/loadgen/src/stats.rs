//! What the simulated agents count: requests by kind (successes, latencies), every error by
//! kind and cause (non-200 statuses, resets, TLS failures, timeouts), handshakes, and the
//! percentile helpers the report uses. Reset at the start of each measured phase.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The requests an agent makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `POST /api/fleet/agents/enroll?`
    Enroll,
    /// `POST /api/fleet/agents/<id>/checkin?`
    Checkin,
    /// `POST /api/fleet/agents/<id>/acks?`
    Ack,
    /// `GET /api/status?` (the probe before switching to the policy's fleet hosts)
    Status,
}

impl Kind {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Enroll => "enroll",
            Kind::Checkin => "checkin",
            Kind::Ack => "ack",
            Kind::Status => "status",
        }
    }
}

/// Counters of one phase.
#[derive(Default, Debug)]
pub struct Stats {
    /// Successful requests by kind.
    pub ok: BTreeMap<Kind, u64>,
    /// Latency (request start to response) of successful requests, microseconds, by kind.
    pub latency_us: BTreeMap<Kind, Vec<u64>>,
    /// Errors by "kind: cause".
    pub errors: BTreeMap<String, u64>,
    /// Completed TLS handshakes: (completion time, connect-to-handshake duration).
    pub handshakes: Vec<(Instant, Duration)>,
    /// Reused keep-alive connections that the server had closed, retried at once on a new
    /// connection as Go's transport does (not errors).
    pub stale_retries: u64,
    /// Every HTTP answer, whatever its status, with where its time went.
    pub answers: Vec<Answer>,
    /// The loop's longest iteration (poll return to the next poll), the loadgen's own stall:
    /// bytes that arrived meanwhile waited that long to be read.
    pub loop_max_busy: Duration,
    /// Iterations longer than 50 ms.
    pub loop_slow: u64,
    /// Longest a timer (a scheduled request, a request timeout) fired after its time.
    pub timer_max_late: Duration,
    /// Longest the loop was not running at all, between two `run_until` calls (the scenario
    /// doing other work): nothing read the sockets meanwhile.
    pub loop_max_gap: Duration,
}

/// One HTTP answer and where its time went, on the load generator's clock. Instants are taken
/// where the bytes move (the connect seen complete, the read that brought the server's Finished
/// and the response's last bytes, the write that sent the request's last byte), not when the
/// loop got round to the connection, so the split holds up if the loop itself stalls.
#[derive(Clone, Copy, Debug)]
pub struct Answer {
    /// What was asked.
    pub kind: Kind,
    /// The answer's status.
    pub status: u16,
    /// Request start (the agent decides to send) to the response's last bytes read, µs.
    pub total_us: u64,
    /// For a request on a new connection: connect(2) until the loop saw it established, µs.
    pub connect_us: Option<u64>,
    /// For a request on a new connection: established until the handshake completed, µs.
    pub tls_us: Option<u64>,
    /// The request's last byte written until the response's last byte read, µs.
    pub request_us: u64,
    /// The connection's local port (to tell a reused port from a fresh one).
    pub port: u16,
    /// Read in the loop's first iteration after it had not been running at all (between
    /// `run_until` calls): how long of `total_us` the bytes may have waited unread (they
    /// arrived at an unknown moment in it). Zero for answers read by a running loop.
    pub unread_us: u64,
}

/// Microseconds of a duration, saturating.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Stats {
    /// Records a success.
    pub fn success(&mut self, kind: Kind, latency: Duration) {
        *self.ok.entry(kind).or_default() += 1;
        self.latency_us
            .entry(kind)
            .or_default()
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records an HTTP answer of any status.
    pub fn answered(&mut self, answer: Answer) {
        self.answers.push(answer);
    }

    /// Records one iteration of the loop (`busy`: poll return to the next poll).
    pub fn loop_iteration(&mut self, busy: Duration) {
        self.loop_max_busy = self.loop_max_busy.max(busy);
        if busy > Duration::from_millis(50) {
            self.loop_slow += 1;
        }
    }

    /// Records an error.
    pub fn error(&mut self, kind: Kind, cause: &str) {
        *self
            .errors
            .entry(format!("{}: {cause}", kind.name()))
            .or_default() += 1;
    }

    /// All errors.
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Successes of a kind.
    pub fn ok_of(&self, kind: Kind) -> u64 {
        self.ok.get(&kind).copied().unwrap_or(0)
    }

    /// Percentile `p` (0..=100) of a kind's latencies, in milliseconds.
    pub fn latency_ms(&mut self, kind: Kind, p: f64) -> Option<f64> {
        let v = self.latency_us.get_mut(&kind)?;
        percentile(v, p).map(|us| us as f64 / 1000.0)
    }
}

/// Nearest-rank percentile of `v` (sorted in place); None when empty.
pub fn percentile(v: &mut [u64], p: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len()) - 1).copied()
}

/// Time from `t0` until `fraction` of `total` events (given as instants) had happened; None if
/// fewer happened.
pub fn time_to_fraction(
    times: &mut [Instant],
    t0: Instant,
    total: usize,
    fraction: f64,
) -> Option<Duration> {
    times.sort_unstable();
    let need = ((fraction * total as f64).ceil() as usize).max(1);
    times.get(need - 1).map(|t| t.saturating_duration_since(t0))
}

/// The highest count of events in any sliding one-second window, in events per second.
pub fn peak_per_second(times: &mut [Instant]) -> f64 {
    times.sort_unstable();
    let mut best = 0usize;
    let mut start = 0usize;
    for end in 0..times.len() {
        while times[end].saturating_duration_since(times[start]) > Duration::from_secs(1) {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&mut v, 50.0), Some(50));
        assert_eq!(percentile(&mut v, 99.0), Some(99));
        assert_eq!(percentile(&mut v, 100.0), Some(100));
        assert_eq!(percentile(&mut [], 50.0), None);
    }

    #[test]
    fn fractions_and_peaks() {
        let t0 = Instant::now();
        let mut times: Vec<Instant> = (0..10)
            .map(|i| t0 + Duration::from_millis(i * 300))
            .collect();
        assert_eq!(
            time_to_fraction(&mut times, t0, 10, 0.5),
            Some(Duration::from_millis(1200))
        );
        assert_eq!(time_to_fraction(&mut times, t0, 20, 1.0), None);
        assert_eq!(peak_per_second(&mut times), 4.0);
    }
}
