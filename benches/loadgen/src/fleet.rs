//! N simulated agents in one thread: a mio `Poll`, a slab of connections, a timer heap, and
//! each agent's loop as agent-client.md describes it: enroll (then a new connection, as the
//! agent restarts its daemon), checkin with a gzip body, save a non-empty `ack_token` at once,
//! apply a POLICY_CHANGE (report its policy id and revision from then on; probe `/api/status`
//! first when the policy names fleet hosts), ack it, re-checkin 1 s + U[0, 500 ms) after a 200,
//! and the agent's backoffs after errors (enroll 5 s → 10 min, checkin 60 s → 10 min, ack
//! retrier 60 s → 5 min, five attempts; 401 on enroll stops). A reused keep-alive connection
//! the server closed is retried once at once on a new one, as Go's transport does.
//!
//! Two lanes per agent: the main one (enroll, checkin, and the acks sent right after a checkin
//! reply, on the same keep-alive connection as Go's pool would pick) and a side one for an ack
//! or status probe that must go out while a long poll is parked (the real agent's second
//! connection; closed after its response here, where Go would leave it idle until the server's
//! idle timeout). A checkin that falls due while an ack is in flight on the main lane waits
//! for it (acks take milliseconds).
//!
//! Neighbours: `client.rs` (one connection), `agent.rs` (bytes and rules), `scenarios.rs`
//! (which phase asks what of the fleet).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use rustls::pki_types::ServerName;
use slab::Slab;

use crate::agent::{self, Agent, InFlight, Rng, MAIN, SIDE};
use crate::client::{Conn, ConnError, HttpResponse};
use crate::stats::{micros, Answer, Kind, Stats};

/// Where and how the agents connect.
#[derive(Clone)]
pub struct Target {
    /// The server's address.
    pub addr: SocketAddr,
    /// TLS client configuration and the name to verify, or None for plain HTTP.
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    /// The enrollment token.
    pub token: String,
}

/// Knobs of the simulated agents.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Source addresses, used round-robin per connection.
    pub source_ips: Vec<IpAddr>,
    /// A request (including connect and handshake) that takes longer fails as a timeout.
    pub request_timeout: Duration,
    /// Multiplies every error backoff (1.0 = the agent's own timings).
    pub backoff_scale: f64,
    /// Agents stop after enrolling (the enroll storm measures enrollment alone).
    pub stop_after_enroll: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// An agent's scheduled request (ignored unless `gen` is the agent's current one; acks
    /// carry no generation).
    Agent { idx: usize, gen: u64, kind: Kind },
    /// The deadline of request `serial` on connection `slot`.
    Request { slot: usize, serial: u64 },
}

/// When a connection's request moved (see [`Answer`]).
struct Timing {
    opened_at: Instant,
    connected_at: Option<Instant>,
    ready_at: Option<Instant>,
    sent_at: Option<Instant>,
    port: u16,
}

struct Entry {
    conn: Conn,
    agent: usize,
    lane: usize,
    /// Serial of the request in flight on it (0: none).
    serial: u64,
}

/// The simulated fleet.
pub struct Fleet {
    poll: Poll,
    events: Events,
    conns: Slab<Entry>,
    timers: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    timer_seq: u64,
    serial: u64,
    next_source: usize,
    target: Target,
    host_header: String,
    behaviour: Behaviour,
    rng: Rng,
    /// The agents.
    pub agents: Vec<Agent>,
    /// Counters of the current phase.
    pub stats: Stats,
    /// The revision whose delivery and ack are being timed.
    pub target_revision: Option<i64>,
    /// The newest policy revision any agent received.
    pub newest_revision: i64,
    /// Most connections open at once.
    pub peak_conns: usize,
    /// Every action an ack answered as accepted: (agent id, action id).
    pub acked_log: Vec<(String, String)>,
    /// When the loop last returned to its caller (nothing reads the sockets until it resumes).
    stopped_at: Option<Instant>,
    /// While the loop's first iteration after a stop runs: when it stopped and resumed.
    /// Whatever it reads then may have arrived at any moment in between.
    resumed_from: Option<(Instant, Instant)>,
}

impl Fleet {
    /// `n` agents, none enrolled yet.
    pub fn new(n: usize, target: Target, behaviour: Behaviour) -> std::io::Result<Fleet> {
        let agents = (0..n)
            .map(|i| Agent {
                hostname: format!("loadgen-{i:06}"),
                ..Agent::default()
            })
            .collect();
        Ok(Fleet {
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            conns: Slab::with_capacity(n.min(1 << 20)),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            serial: 0,
            next_source: 0,
            host_header: target.addr.to_string(),
            target,
            behaviour,
            rng: Rng::new(),
            agents,
            stats: Stats::default(),
            target_revision: None,
            newest_revision: 0,
            peak_conns: 0,
            acked_log: Vec::new(),
            stopped_at: None,
            resumed_from: None,
        })
    }

    /// Points the agents at a (restarted) server.
    pub fn retarget(&mut self, target: Target) {
        self.host_header = target.addr.to_string();
        self.target = target;
    }

    /// Connections open now.
    pub fn open_conns(&self) -> usize {
        self.conns.len()
    }

    fn push_timer(&mut self, at: Instant, timer: Timer) {
        self.timer_seq += 1;
        self.timers.push(Reverse((at, self.timer_seq, timer)));
    }

    /// Schedules agent `idx`'s next enroll or checkin at `at` (replacing the one scheduled).
    pub fn schedule(&mut self, idx: usize, at: Instant, kind: Kind) {
        let Some(agent) = self.agents.get_mut(idx) else {
            return;
        };
        agent.timer_gen += 1;
        let gen = agent.timer_gen;
        self.push_timer(at, Timer::Agent { idx, gen, kind });
    }

    /// Every agent enrolls, spread evenly at `rate` per second from `now`.
    pub fn enroll_paced(&mut self, now: Instant, rate: f64) {
        self.enroll_paced_range(now, rate, 0..self.agents.len());
    }

    /// The agents of `range` enroll, spread evenly at `rate` per second from `now`.
    pub fn enroll_paced_range(&mut self, now: Instant, rate: f64, range: std::ops::Range<usize>) {
        let start = range.start;
        let end = range.end.min(self.agents.len());
        for idx in start..end {
            let at = now + Duration::from_secs_f64((idx - start) as f64 / rate.max(1.0));
            self.schedule(idx, at, Kind::Enroll);
        }
    }

    /// Every agent enrolls after a random wait in [0, 1 s), as the agent's first attempt does.
    pub fn enroll_storm(&mut self, now: Instant) {
        for idx in 0..self.agents.len() {
            let at = now + self.rng.below(Duration::from_secs(1));
            self.schedule(idx, at, Kind::Enroll);
        }
    }

    /// Closes every connection; requests in flight are abandoned (not errors).
    pub fn drop_connections(&mut self) {
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            self.close_conn(slot);
        }
        for agent in &mut self.agents {
            agent.inflight = [None, None];
            agent.checkin_due = false;
        }
    }

    /// Every enrolled agent checks in now on a new connection (after [`Self::drop_connections`]).
    pub fn checkin_all_now(&mut self, now: Instant) {
        for idx in 0..self.agents.len() {
            if self.agents[idx].enrolled() && !self.agents[idx].stopped {
                self.agents[idx].timer_gen += 1;
                self.start(idx, Kind::Checkin, now);
            }
        }
    }

    /// Agents parked now: a checkin reporting the newest revision in flight for at least
    /// `min_age`, nothing left to ack.
    pub fn parked(&self, now: Instant, min_age: Duration) -> usize {
        self.agents
            .iter()
            .filter(|a| {
                a.acks.is_empty()
                    && a.policy
                        .as_ref()
                        .is_some_and(|(_, r)| *r >= self.newest_revision)
                    && a.inflight[MAIN].is_some_and(|f| {
                        f.kind == Kind::Checkin
                            && now.saturating_duration_since(f.started) >= min_age
                    })
            })
            .count()
    }

    /// Agents enrolled.
    pub fn enrolled(&self) -> usize {
        self.agents.iter().filter(|a| a.enrolled()).count()
    }

    /// Starts timing delivery and ack of `revision`.
    pub fn set_target(&mut self, revision: i64) {
        self.target_revision = Some(revision);
        for a in &mut self.agents {
            a.got_target = None;
            a.acked_target = None;
        }
    }

    /// Runs the loop until `done` says so (checked every 100 ms) or `deadline`; true if done.
    pub fn run_until(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&Fleet, Instant) -> bool,
    ) -> bool {
        let resumed = Instant::now();
        if let Some(stopped) = self.stopped_at.take() {
            self.resumed_from = Some((stopped, resumed));
            let gap = resumed.saturating_duration_since(stopped);
            self.stats.loop_max_gap = self.stats.loop_max_gap.max(gap);
        }
        let done_now = self.run_loop(deadline, &mut done);
        self.stopped_at = Some(Instant::now());
        done_now
    }

    /// For an answer to a request started at `started` and read now: how long its bytes may
    /// have waited unread because the loop was not running (zero unless this is the first
    /// iteration after a stop).
    fn maybe_unread(&self, started: Instant) -> Duration {
        self.resumed_from
            .map_or(Duration::ZERO, |(stopped, resumed)| {
                resumed.saturating_duration_since(stopped.max(started))
            })
    }

    fn run_loop(
        &mut self,
        deadline: Instant,
        done: &mut impl FnMut(&Fleet, Instant) -> bool,
    ) -> bool {
        let mut next_check = Instant::now();
        let mut ready: Vec<usize> = Vec::with_capacity(4096);
        loop {
            let now = Instant::now();
            if now >= next_check {
                if done(self, now) {
                    return true;
                }
                next_check = now + Duration::from_millis(100);
            }
            if now >= deadline {
                return false;
            }
            let mut wake = deadline.min(next_check);
            if let Some(Reverse((at, _, _))) = self.timers.peek() {
                wake = wake.min(*at);
            }
            let timeout = wake.saturating_duration_since(now);
            if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    self.stats.error(Kind::Checkin, &format!("poll: {e}"));
                }
                continue;
            }
            ready.clear();
            ready.extend(self.events.iter().map(|e| e.token().0));
            let now = Instant::now();
            for &slot in &ready {
                self.drive(slot, now);
            }
            self.fire_timers(now);
            self.resumed_from = None;
            self.stats.loop_iteration(now.elapsed());
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, _, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let late = now.saturating_duration_since(at);
            self.stats.timer_max_late = self.stats.timer_max_late.max(late);
            match timer {
                Timer::Agent { idx, gen, kind } => {
                    let Some(agent) = self.agents.get(idx) else {
                        continue;
                    };
                    if kind == Kind::Ack || agent.timer_gen == gen {
                        self.start(idx, kind, now);
                    }
                }
                Timer::Request { slot, serial } => {
                    if self.conns.get(slot).is_some_and(|e| e.serial == serial) {
                        self.fail(slot, "timeout".into(), now);
                    }
                }
            }
        }
    }

    /// Starts request `kind` of agent `idx` (or notes it as due while another is in flight).
    fn start(&mut self, idx: usize, kind: Kind, now: Instant) {
        let Some(agent) = self.agents.get_mut(idx) else {
            return;
        };
        if agent.stopped {
            return;
        }
        let lane = match kind {
            Kind::Enroll | Kind::Checkin => {
                if agent.inflight[MAIN].is_some() {
                    agent.checkin_due |= kind == Kind::Checkin;
                    return;
                }
                MAIN
            }
            Kind::Ack => {
                let busy = agent.inflight.iter().flatten().any(|f| f.kind == Kind::Ack);
                if busy || agent.acks.is_empty() || agent.ack_hold.is_some_and(|t| t > now) {
                    return;
                }
                match agent.inflight {
                    [None, _] => MAIN,
                    [Some(_), None] => SIDE,
                    [Some(_), Some(_)] => return,
                }
            }
            Kind::Status => {
                if agent.inflight[SIDE].is_some() {
                    return;
                }
                SIDE
            }
        };
        let batch = if kind == Kind::Ack {
            agent.acks.len()
        } else {
            0
        };
        self.serial += 1;
        let bytes = match kind {
            Kind::Enroll => agent::request(
                "POST",
                "/api/fleet/agents/enroll",
                &self.host_header,
                &self.target.token,
                &agent::enroll_body(&agent.hostname),
                false,
                self.serial,
            ),
            Kind::Checkin => {
                if !agent.enrolled() {
                    return;
                }
                if agent.checkin_gz.is_none() {
                    agent.checkin_gz = Some(agent::gzip(agent::checkin_json(agent).as_bytes()));
                }
                let body = agent.checkin_gz.as_deref().unwrap_or_default();
                let path = format!("/api/fleet/agents/{}/checkin", agent.id);
                agent::request(
                    "POST",
                    &path,
                    &self.host_header,
                    &agent.key,
                    body,
                    true,
                    self.serial,
                )
            }
            Kind::Ack => {
                let path = format!("/api/fleet/agents/{}/acks", agent.id);
                let body = agent::ack_body(&agent.id, &agent.acks);
                agent::request(
                    "POST",
                    &path,
                    &self.host_header,
                    &agent.key,
                    &body,
                    false,
                    self.serial,
                )
            }
            Kind::Status => agent::request(
                "GET",
                "/api/status",
                &self.host_header,
                &agent.key,
                b"",
                false,
                self.serial,
            ),
        };
        let reuse = agent.conn[lane]
            .filter(|_| lane == MAIN)
            .filter(|&slot| self.conns.get(slot).is_some_and(|e| e.conn.is_idle_open()));
        let slot = match reuse {
            Some(slot) => slot,
            None => {
                if let Some(old) = agent.conn[lane] {
                    self.close_conn(old);
                }
                match self.open(idx, lane) {
                    Ok(slot) => slot,
                    Err(e) => return self.failed(idx, kind, &e.label(), now),
                }
            }
        };
        self.agents[idx].conn[lane] = Some(slot);
        // The agent's clock starts when it sends, which is now, not when the loop woke (`now`).
        self.agents[idx].inflight[lane] = Some(InFlight {
            kind,
            started: Instant::now(),
            reused: reuse.is_some(),
            batch,
        });
        let serial = self.serial;
        let timeout = now + self.behaviour.request_timeout;
        self.push_timer(timeout, Timer::Request { slot, serial });
        if let Some(entry) = self.conns.get_mut(slot) {
            entry.serial = serial;
            if let Err(e) = entry.conn.send(&bytes) {
                return self.fail(slot, e.label(), now);
            }
        }
        self.drive(slot, now);
    }

    fn open(&mut self, idx: usize, lane: usize) -> Result<usize, ConnError> {
        let source = self
            .behaviour
            .source_ips
            .get(self.next_source % self.behaviour.source_ips.len().max(1))
            .copied()
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        self.next_source += 1;
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        let tls = self.target.tls.as_ref().map(|(c, n)| (c, n));
        let conn = Conn::connect(
            self.poll.registry(),
            Token(slot),
            source,
            self.target.addr,
            tls,
        )?;
        entry.insert(Entry {
            conn,
            agent: idx,
            lane,
            serial: 0,
        });
        self.peak_conns = self.peak_conns.max(self.conns.len());
        Ok(slot)
    }

    fn close_conn(&mut self, slot: usize) {
        if self.conns.contains(slot) {
            let mut entry = self.conns.remove(slot);
            entry.conn.deregister(self.poll.registry());
            if let Some(agent) = self.agents.get_mut(entry.agent) {
                if agent.conn[entry.lane] == Some(slot) {
                    agent.conn[entry.lane] = None;
                }
            }
        }
    }

    fn drive(&mut self, slot: usize, now: Instant) {
        let registry = self.poll.registry();
        let Some(entry) = self.conns.get_mut(slot) else {
            return;
        };
        let was_ready = entry.conn.ready_at.is_some();
        if let Err(e) = entry.conn.drive(registry, Token(slot)) {
            return self.fail(slot, e.label(), now);
        }
        if !was_ready {
            if let Some(ready) = entry.conn.ready_at {
                let took = ready.saturating_duration_since(entry.conn.opened_at);
                self.stats.handshakes.push((ready, took));
            }
        }
        loop {
            let Some(entry) = self.conns.get_mut(slot) else {
                return;
            };
            match entry.conn.take_response() {
                None => break,
                Some(Err(e)) => return self.fail(slot, e.label(), now),
                Some(Ok(resp)) => {
                    entry.serial = 0;
                    let idx = entry.agent;
                    let lane = entry.lane;
                    let close = resp.close || lane == SIDE;
                    let c = &entry.conn;
                    let timing = Timing {
                        opened_at: c.opened_at,
                        connected_at: c.connected_at,
                        ready_at: c.ready_at,
                        sent_at: c.sent_at,
                        port: c.local_port,
                    };
                    self.complete(idx, lane, resp, timing, now);
                    if close {
                        self.close_conn(slot);
                        return;
                    }
                }
            }
        }
        if let Some(entry) = self.conns.get(slot) {
            if entry.conn.eof {
                if entry.serial != 0 {
                    self.fail(slot, ConnError::Closed.label(), now);
                } else {
                    self.close_conn(slot);
                }
            }
        }
    }

    /// The connection failed; its agent's request (if any) fails or is retried at once.
    fn fail(&mut self, slot: usize, cause: String, now: Instant) {
        let Some(entry) = self.conns.get(slot) else {
            return;
        };
        let idx = entry.agent;
        let lane = entry.lane;
        let got_bytes = entry.conn.got_bytes;
        let busy = entry.serial != 0;
        self.close_conn(slot);
        if !busy {
            return;
        }
        let Some(inflight) = self
            .agents
            .get_mut(idx)
            .and_then(|a| a.inflight[lane].take())
        else {
            return;
        };
        if inflight.reused && !got_bytes && cause != "timeout" {
            self.stats.stale_retries += 1;
            return self.start(idx, inflight.kind, now);
        }
        self.failed(idx, inflight.kind, &cause, now);
    }

    /// Request `kind` of agent `idx` failed with `cause`: count it and back off as the agent does.
    fn failed(&mut self, idx: usize, kind: Kind, cause: &str, now: Instant) {
        self.stats.error(kind, cause);
        let s = Duration::from_secs;
        let scale = self.behaviour.backoff_scale;
        let random = self.rng.unit();
        let Some(agent) = self.agents.get_mut(idx) else {
            return;
        };
        match kind {
            Kind::Enroll => {
                if cause.ends_with("HTTP 401") {
                    agent.stopped = true;
                } else {
                    let wait = agent::backoff(s(5), s(600), agent.enroll_failures, random);
                    agent.enroll_failures += 1;
                    self.schedule(idx, now + wait.mul_f64(scale), Kind::Enroll);
                }
            }
            Kind::Checkin => {
                let wait = agent::backoff(s(60), s(600), agent.checkin_failures, random);
                agent.checkin_failures += 1;
                agent.checkin_due = false;
                self.schedule(idx, now + wait.mul_f64(scale), Kind::Checkin);
            }
            Kind::Ack => {
                agent.ack_failures += 1;
                if agent.ack_failures > 5 {
                    agent.acks.clear();
                    agent.ack_failures = 0;
                } else {
                    let wait = agent::backoff(s(60), s(300), agent.ack_failures - 1, random);
                    let at = now + wait.mul_f64(scale);
                    agent.ack_hold = Some(at);
                    self.push_timer(
                        at,
                        Timer::Agent {
                            idx,
                            gen: 0,
                            kind: Kind::Ack,
                        },
                    );
                }
            }
            Kind::Status => {
                // No ack and no stored policy: the server sends the POLICY_CHANGE again.
                agent.acks.clear();
                agent.ack_hold = None;
                agent.policy = None;
                agent.checkin_gz = None;
            }
        }
        self.next(idx, now);
    }

    /// After a request: pending acks first, then a checkin that fell due.
    fn next(&mut self, idx: usize, now: Instant) {
        let Some(agent) = self.agents.get_mut(idx) else {
            return;
        };
        if agent.stopped {
            return;
        }
        if !agent.acks.is_empty() && agent.ack_hold.is_none_or(|t| t <= now) {
            self.start(idx, Kind::Ack, now);
        }
        let Some(agent) = self.agents.get_mut(idx) else {
            return;
        };
        if agent.inflight[MAIN].is_none() && std::mem::take(&mut agent.checkin_due) {
            self.start(idx, Kind::Checkin, now);
        }
    }

    fn complete(
        &mut self,
        idx: usize,
        lane: usize,
        resp: HttpResponse,
        timing: Timing,
        now: Instant,
    ) {
        let Some(inflight) = self
            .agents
            .get_mut(idx)
            .and_then(|a| a.inflight[lane].take())
        else {
            return;
        };
        let arrived = resp.arrived_at;
        let latency = arrived.saturating_duration_since(inflight.started);
        let kind = inflight.kind;
        let status = resp.status;
        let since =
            |a: Instant, b: Option<Instant>| b.map(|b| micros(b.saturating_duration_since(a)));
        let new_conn = !inflight.reused;
        self.stats.answered(Answer {
            kind,
            status,
            total_us: micros(latency),
            connect_us: since(timing.opened_at, timing.connected_at).filter(|_| new_conn),
            tls_us: timing
                .connected_at
                .and_then(|c| since(c, timing.ready_at))
                .filter(|_| new_conn),
            request_us: micros(
                arrived.saturating_duration_since(timing.sent_at.unwrap_or(inflight.started)),
            ),
            port: timing.port,
            unread_us: micros(self.maybe_unread(inflight.started)),
        });
        let outcome = match kind {
            Kind::Enroll if status == 200 => self.enrolled_reply(idx, &resp.body, now),
            Kind::Checkin if status == 200 => self.checkin_reply(idx, &resp.body, now),
            Kind::Ack if agent::ack_succeeded(&resp.body) => {
                self.acked(idx, inflight.batch, &resp.body, now);
                Ok(())
            }
            Kind::Status if status == 200 => {
                self.probe_passed(idx, now);
                Ok(())
            }
            _ => Err(format!("HTTP {status}")),
        };
        match outcome {
            Ok(()) => {
                self.stats.success(kind, latency);
                self.next(idx, now);
            }
            Err(cause) => {
                self.failed(idx, kind, &cause, now);
            }
        }
    }

    fn enrolled_reply(&mut self, idx: usize, body: &[u8], now: Instant) -> Result<(), String> {
        let (id, key) = agent::parse_enroll(body)?;
        let first = self.rng.below(Duration::from_millis(500));
        let stop = self.behaviour.stop_after_enroll;
        let Some(agent) = self.agents.get_mut(idx) else {
            return Ok(());
        };
        agent.id = id;
        agent.key = key;
        agent.enrolled_at = Some(now);
        agent.enroll_failures = 0;
        agent.checkin_gz = None;
        // The agent restarts its daemon after enrolling: a new client, a new connection.
        if let Some(slot) = agent.conn[MAIN] {
            self.close_conn(slot);
        }
        if stop {
            if let Some(agent) = self.agents.get_mut(idx) {
                agent.stopped = true;
            }
        } else {
            self.schedule(idx, now + first, Kind::Checkin);
        }
        Ok(())
    }

    fn checkin_reply(&mut self, idx: usize, body: &[u8], now: Instant) -> Result<(), String> {
        let (token, actions) = agent::parse_checkin(body)?;
        let wait = Duration::from_secs(1) + self.rng.below(Duration::from_millis(500));
        let target = self.target_revision;
        let Some(agent) = self.agents.get_mut(idx) else {
            return Ok(());
        };
        if !token.is_empty() && token != agent.ack_token {
            agent.ack_token = token;
            agent.checkin_gz = None;
        }
        agent.checkin_failures = 0;
        let mut probe = false;
        for action in actions
            .into_iter()
            .filter(|a| agent::is_known_type(&a.kind))
        {
            if let Some((policy, revision, fleet_hosts)) = action.policy.clone() {
                self.newest_revision = self.newest_revision.max(revision);
                if target == Some(revision) && agent.got_target.is_none() {
                    agent.got_target = Some(now);
                }
                if fleet_hosts && agent.policy.is_none() {
                    probe = true;
                }
                agent.policy = Some((policy, revision));
                agent.checkin_gz = None;
            }
            if !agent.acks.iter().any(|(id, _)| *id == action.id) {
                agent.acks.push((action.id, action.kind));
            }
        }
        self.schedule(idx, now + wait, Kind::Checkin);
        if probe {
            // The policy's fleet hosts differ from the enrolled URL: probe them on a new
            // connection before acking (agent-client.md §1.7 step 2).
            self.agents[idx].ack_hold = Some(now + Duration::from_secs(3600));
            self.start(idx, Kind::Status, now);
        }
        Ok(())
    }

    fn probe_passed(&mut self, idx: usize, _now: Instant) {
        if let Some(agent) = self.agents.get_mut(idx) {
            agent.ack_hold = None;
        }
    }

    fn acked(&mut self, idx: usize, batch: usize, body: &[u8], now: Instant) {
        // Items the server refused (status 400 or more with `errors: true`) are acked again
        // later, as the agent re-queues them.
        let refused: Vec<bool> = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .filter(|v| v["errors"] == true)
            .and_then(|v| v["items"].as_array().cloned())
            .map(|items| {
                items
                    .iter()
                    .map(|i| i["status"].as_u64().is_some_and(|s| s >= 400))
                    .collect()
            })
            .unwrap_or_default();
        let target = self.target_revision;
        let Some(agent) = self.agents.get_mut(idx) else {
            return;
        };
        if let (Some(rev), None) = (target, agent.acked_target) {
            let suffix = format!(":{rev}");
            if agent.acks[..batch.min(agent.acks.len())]
                .iter()
                .any(|(id, kind)| kind == "POLICY_CHANGE" && id.ends_with(&suffix))
            {
                agent.acked_target = Some(now);
            }
        }
        let sent: Vec<(String, String)> = agent.acks.drain(..batch.min(agent.acks.len())).collect();
        for (i, (action, kind)) in sent.into_iter().enumerate() {
            if refused.get(i).copied().unwrap_or(false) {
                agent.acks.push((action, kind));
            } else {
                self.acked_log.push((agent.id.clone(), action));
            }
        }
        agent.ack_failures = 0;
        agent.ack_hold = None;
    }
}
