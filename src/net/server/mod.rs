//! The event loop (DESIGN.md §3). One thread owns the listener, every connection, every timer,
//! the policy cache and the parked long polls. Each iteration: poll with the earliest deadline as
//! timeout; note readiness (listener → accept-ready, signals → drain, waker → backend replies and
//! store events, connection → readable); drive the connections that had events; fire expired
//! deadlines; accept while under the connection limits.
//!
//! Connection gate: up to `max_connections` connections are served normally; up to
//! `gate_reserve` more are accepted only to be answered `429` with `Retry-After` and closed; past
//! that, new connections wait in the kernel's backlog instead of being reset.
//!
//! Backend replies carry the connection's `(slot, generation)`: a reply for a connection that has
//! gone (slot reused) is dropped and counted.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

mod accept;
mod admin;
mod fleet;
mod opamp;
mod overdue;
mod reload;
mod reserve;

use super::conn::{Conn, DriveCtx, Step, TimerKind};
use super::pool::BufPool;
use crate::api::{errors, ApiError};
use crate::backend::workers::{Backend, BackendSettings, Job};
use crate::backend::{CheckinWrite, Store};
use crate::core::deadlines::{Deadlines, Ticket};
use crate::core::limits::{LimitedRoute, RouteLimits};
use crate::core::longpoll::{empty_body, PolicyCache, PollSettings, Waiters};
use crate::core::pacing::Pacer;
use crate::core::policy::PreparedPolicy;
use crate::core::{Health, HealthCell, RequestIds};
use crate::http::{Body, DateCache, Limits, Response};

const LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
const WAKER: Token = Token(usize::MAX - 3);
const MANAGEMENT: Token = Token(usize::MAX - 4);

/// Most management connections at once (an operator's CLI, not a fleet).
const MAX_MANAGEMENT_CONNECTIONS: usize = 32;

/// The management API's listener and what it serves.
pub struct Management {
    /// Bound (by default on 127.0.0.1; plain HTTP there, TLS off loopback).
    pub listener: TcpListener,
    /// The bearer token it requires.
    pub token: String,
    /// The operations behind it.
    pub admin: Arc<dyn crate::mgmt::Admin>,
    /// TLS, when it listens off loopback.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Socket reads go through this much scratch space at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Limits and timeouts of the loop.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Connections served normally.
    pub max_connections: usize,
    /// Extra connections accepted only to answer 429.
    pub gate_reserve: usize,
    /// HTTP header limits.
    pub limits: Limits,
    /// Accept → TLS handshake complete.
    pub handshake_timeout: Duration,
    /// First byte of a request → head complete.
    pub header_timeout: Duration,
    /// Head complete → body complete.
    pub body_timeout: Duration,
    /// Keep-alive wait between requests.
    pub idle_timeout: Duration,
    /// Longest a pending response may make no progress.
    pub write_stall_timeout: Duration,
    /// Wait for the peer to close after our half-close.
    pub linger_timeout: Duration,
    /// Longest shutdown may take.
    pub drain_timeout: Duration,
    /// Long-poll hold times.
    pub poll: PollSettings,
    /// How often checkin state is written to the store (fleet-protocol.md §3.8: 10 s).
    pub checkin_flush: Duration,
    /// How often a parked agent's `last_checkin` is refreshed (`checkin_timestamp`, 30 s).
    pub checkin_timestamp: Duration,
    /// PBKDF2 iterations for replace tokens.
    pub pbkdf2_iterations: u32,
    /// The Fleet Server version this server claims (`--server-version`).
    pub server_version: crate::server_version::ServerVersion,
    /// Backend threads.
    pub backend: BackendSettings,
    /// The sizing table the route limits come from (`None`: the code defaults).
    pub limits_table: Option<&'static crate::core::limits::SizingTable>,
}

impl Settings {
    fn timeout(&self, kind: TimerKind) -> Duration {
        match kind {
            TimerKind::Handshake => self.handshake_timeout,
            TimerKind::Idle => self.idle_timeout,
            TimerKind::Header => self.header_timeout,
            TimerKind::Body => self.body_timeout,
            TimerKind::WriteStall => self.write_stall_timeout,
            TimerKind::Linger => self.linger_timeout,
            TimerKind::LongPoll => self.poll.long_poll,
            TimerKind::Backend => self.backend.job_timeout,
        }
    }
}

/// A connection as backend replies and waiters name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey {
    slot: usize,
    generation: u64,
}

/// Where a backend reply goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyTo {
    /// A connection's in-flight request.
    Conn(ConnKey),
    /// The checkin bulk writer.
    Writer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    Conn(ConnKey),
    Drain,
    BulkFlush,
    CheckinTimestamp,
    AcceptRetry,
    Rollout,
}

/// The event loop and everything it owns.
pub struct Server {
    poll: Poll,
    listener: Option<TcpListener>,
    management: Option<TcpListener>,
    admin_token: Option<String>,
    management_tls: Option<Arc<rustls::ServerConfig>>,
    management_ready: bool,
    tls: Option<Arc<rustls::ServerConfig>>,
    conns: Slab<Conn>,
    deadlines: Deadlines<TimerKey>,
    settings: Settings,
    /// The loop's own view: `Stopping` while draining, `Degraded` while the store is away.
    health: Health,
    /// The agent-mode self-monitor's state, which the loop reports while its own view is
    /// healthy (fleet-protocol.md §6.5: `/api/status` follows the self-monitor).
    monitor: Option<Arc<HealthCell>>,
    ids: RequestIds,
    pool: BufPool,
    scratch: Box<[u8]>,
    signals: Signals,
    /// SIGHUP: reloading certificates, admin token, log level (`reload`).
    reload: reload::ReloadState,
    backend: Option<Backend<ReplyTo>>,
    cache: PolicyCache,
    waiters: Waiters<ConnKey>,
    /// New revisions still waking their parked agents, at the [`Pacer`]'s pace.
    rollouts: Vec<Arc<PreparedPolicy>>,
    pacer: Pacer,
    /// Agents whose checkin is between its pending-actions query and parking (§3.2 subscribes
    /// before querying; this is the equivalent): live actions for them are kept in `early`.
    starting: HashMap<String, ConnKey>,
    /// Enrollment ids of enrolls in flight (§2.3: a concurrent one gets 429 `EnrollDuplicate`).
    enrolling: HashMap<String, ConnKey>,
    /// Live actions that arrived for a starting checkin: wire actions and the ack token.
    early: HashMap<String, (fleet::Sequenced, String)>,
    /// Checkin state waiting for the next bulk write, latest per agent.
    bulk: HashMap<String, CheckinWrite>,
    bulk_inflight: bool,
    /// Management requests showing checkin state, waiting for the in-flight checkin write.
    admin_waiting: Vec<(ConnKey, crate::mgmt::AdminRequest)>,
    jobs: Vec<Job>,
    limits: RouteLimits,
    late_replies: u64,
    next_generation: u64,
    accept_ready: bool,
    /// Accepting waits for [`TimerKey::AcceptRetry`] after running out of descriptors.
    accept_paused: bool,
    /// Descriptors held back for `/api/status` and the management API when the rest run out.
    reserve: reserve::Reserve,
    gate_warned: bool,
    drain_deadline: Option<Instant>,
    drain_expired: bool,
    /// SIGTERM/SIGINT arrived (as opposed to a [`ShutdownHandle`] drain).
    signalled: bool,
    ready_slots: Vec<usize>,
    /// The `Date` header of responses, reformatted when the wall clock enters a new second.
    date: DateCache,
    waker: Arc<Waker>,
    shutdown: Arc<AtomicBool>,
    stats: Arc<Stats>,
}

/// Counters the loop keeps current, readable from other threads.
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
}

/// Why [`Server::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// SIGTERM or SIGINT: the process should exit.
    Signal,
    /// A [`ShutdownHandle`]: the owner decides (agent mode restarts with a new configuration).
    Requested,
}

/// Starts the drain of a server from another thread (what SIGTERM does for the process).
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ShutdownHandle {
    /// Asks the server to drain and stop.
    pub fn shutdown(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

impl Server {
    /// Registers the listener, the signal handlers and the waker, and starts the backend threads
    /// over `store` (none: agent endpoints answer 503). `seed` seeds request ids and jitter.
    pub fn new(
        mut listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        settings: Settings,
        health: Health,
        seed: u64,
        store: Option<Arc<dyn Store>>,
        management: Option<Management>,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (management, admin_token, admin, management_tls) = match management {
            Some(mut m) => {
                poll.registry()
                    .register(&mut m.listener, MANAGEMENT, Interest::READABLE)?;
                (Some(m.listener), Some(m.token), Some(m.admin), m.tls)
            }
            None => (None, None, None, None),
        };
        let backend = match store {
            Some(store) => {
                let w = Arc::clone(&waker);
                let notify = Arc::new(move || {
                    let _ = w.wake();
                });
                Some(Backend::start(store, admin, notify, settings.backend)?)
            }
            None => None,
        };
        let table = settings.limits_table;
        let limits_spec = move |route: LimitedRoute| match table {
            Some(table) => table.spec(route),
            None => route.default_spec(),
        };
        let limits = RouteLimits::with(limits_spec);
        let pacer = Pacer::for_routes(
            limits_spec(LimitedRoute::Ack),
            limits_spec(LimitedRoute::Checkin),
        );
        let mut deadlines = Deadlines::new();
        if backend.is_some() {
            deadlines.arm(TimerKey::BulkFlush, Instant::now() + settings.checkin_flush);
            deadlines.arm(
                TimerKey::CheckinTimestamp,
                Instant::now() + settings.checkin_timestamp,
            );
        }
        Ok(Self {
            poll,
            listener: Some(listener),
            management,
            admin_token,
            management_tls,
            management_ready: true,
            tls,
            conns: Slab::with_capacity(1024.min(settings.max_connections + settings.gate_reserve)),
            deadlines,
            settings,
            health,
            monitor: None,
            ids: RequestIds::new(seed),
            date: DateCache::new(SystemTime::now()),
            pool: BufPool::new(64, READ_CHUNK),
            scratch: vec![0u8; READ_CHUNK].into_boxed_slice(),
            signals,
            reload: reload::ReloadState::default(),
            backend,
            cache: PolicyCache::default(),
            waiters: Waiters::default(),
            rollouts: Vec::new(),
            pacer,
            starting: HashMap::new(),
            enrolling: HashMap::new(),
            early: HashMap::new(),
            bulk: HashMap::new(),
            bulk_inflight: false,
            admin_waiting: Vec::new(),
            jobs: Vec::new(),
            limits,
            late_replies: 0,
            next_generation: 0,
            accept_ready: true,
            accept_paused: false,
            reserve: reserve::Reserve::open(),
            gate_warned: false,
            drain_deadline: None,
            drain_expired: false,
            signalled: false,
            ready_slots: Vec::new(),
            waker,
            shutdown: Arc::new(AtomicBool::new(false)),
            stats: Arc::new(Stats::default()),
        })
    }

    /// Live counters of this server.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Makes `GET /api/status` report `cell` (the self-monitor's state) whenever the loop itself
    /// is healthy.
    pub fn follow_health(&mut self, cell: Arc<HealthCell>) {
        self.monitor = Some(cell);
    }

    /// What `GET /api/status` reports now.
    fn current_health(&self) -> Health {
        match (&self.monitor, self.health) {
            (Some(cell), Health::Healthy) => cell.get(),
            (_, own) => own,
        }
    }

    /// A handle that drains this server like SIGTERM does.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            flag: Arc::clone(&self.shutdown),
            waker: Arc::clone(&self.waker),
        }
    }

    /// Runs until SIGTERM/SIGINT or a [`ShutdownHandle`] has drained every connection and
    /// flushed checkin state (or the drain timeout passed); says which of the two stopped it.
    pub fn run(mut self) -> io::Result<Stopped> {
        let mut events = Events::with_capacity(1024);
        loop {
            if self.drain_deadline.is_some() {
                let writer_done = !self.bulk_inflight && self.bulk.is_empty();
                if (self.conns.is_empty() && writer_done) || self.drain_expired {
                    if !self.conns.is_empty() || !writer_done {
                        log::warn!(
                            "drain timeout reached: closing {} connection(s); {} agent checkin state(s) not written",
                            self.conns.len(),
                            self.bulk.len()
                        );
                    }
                    log::info!(
                        "stopped ({} late backend replies dropped)",
                        self.late_replies
                    );
                    return Ok(if self.signalled {
                        Stopped::Signal
                    } else {
                        Stopped::Requested
                    });
                }
            }
            let timeout = self.deadlines.next_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            // The one wall-clock reading of this iteration: every response written in it carries
            // this second's `Date`.
            self.date.update(SystemTime::now());
            let mut signalled = false;
            let mut woken = false;
            let mut ready = std::mem::take(&mut self.ready_slots);
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_ready = true,
                    MANAGEMENT => self.management_ready = true,
                    SIGNALS => signalled = true,
                    WAKER => woken = true,
                    Token(slot) => {
                        if let Some(conn) = self.conns.get_mut(slot) {
                            if event.is_readable() || event.is_read_closed() || event.is_error() {
                                conn.readable = true;
                            }
                            ready.push(slot);
                        }
                    }
                }
            }
            if signalled {
                self.on_signals(now);
            }
            if woken {
                if self.shutdown.load(Ordering::SeqCst) && self.drain_deadline.is_none() {
                    self.start_drain(now);
                }
                self.on_backend(now);
                self.finish_reload();
            }
            for slot in ready.drain(..) {
                self.drive(slot, now);
            }
            self.ready_slots = ready;
            self.fire_deadlines(now);
            self.accept(now);
            self.accept_management(now);
            self.stats
                .parked
                .store(self.waiters.len(), Ordering::Relaxed);
            self.stats
                .connections
                .store(self.conns.len(), Ordering::Relaxed);
            self.stats
                .late_replies
                .store(self.late_replies, Ordering::Relaxed);
        }
    }

    fn on_signals(&mut self, now: Instant) {
        let received: Vec<i32> = self.signals.pending().collect();
        if received.contains(&SIGHUP) {
            self.start_reload();
        }
        if received.iter().all(|s| *s == SIGHUP) {
            return;
        }
        self.signalled = true;
        if self.drain_deadline.is_some() {
            log::warn!("second shutdown signal: stopping without waiting for the drain");
            self.drain_expired = true;
            return;
        }
        self.start_drain(now);
    }

    fn start_drain(&mut self, now: Instant) {
        let deadline = now + self.settings.drain_timeout;
        log::info!(
            "shutting down: no longer accepting; draining {} connection(s) for up to {:?}",
            self.conns.len(),
            self.settings.drain_timeout
        );
        self.health = Health::Stopping;
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        if let Some(mut listener) = self.management.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.drain_deadline = Some(deadline);
        self.deadlines.arm(TimerKey::Drain, deadline);
        // §3.2: parked long polls are answered 200 with no actions on shutdown.
        for key in self.waiters.keys() {
            self.waiters.remove(key);
            self.answer(key, checkin_response(empty_body()), now);
        }
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            let step = match self.conns.get_mut(slot) {
                Some(conn) => conn.begin_drain(),
                None => continue,
            };
            match step {
                Step::Close => self.close(slot),
                Step::Open => self.drive(slot, now),
            }
        }
        self.flush_checkins();
    }

    fn key_of(&self, slot: usize) -> Option<ConnKey> {
        self.conns.get(slot).map(|c| ConnKey {
            slot,
            generation: c.generation,
        })
    }

    fn drive(&mut self, slot: usize, now: Instant) {
        let health = self.current_health();
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let mut ctx = DriveCtx {
            health,
            request_ids: &mut self.ids,
            pool: &mut self.pool,
            scratch: &mut self.scratch,
            draining: self.drain_deadline.is_some(),
            has_store: self.backend.is_some(),
            pbkdf2_iterations: self.settings.pbkdf2_iterations,
            server_version: self.settings.server_version,
            now,
            date: self.date.current(),
            jobs: &mut self.jobs,
            limits: &mut self.limits,
            admin_token: self.admin_token.as_deref(),
        };
        let step = conn.drive(&mut ctx);
        let jobs = std::mem::take(&mut self.jobs);
        if step == Step::Close {
            self.close(slot);
            return;
        }
        if let Some(key) = self.key_of(slot) {
            for mut job in jobs {
                if let Job::OpAmp(input) = &mut job {
                    input.remote_configs = self.cache.opamp_configs();
                }
                let job = match job {
                    Job::Admin(request) => {
                        self.submit_admin(key, request, now);
                        continue;
                    }
                    other => other,
                };
                match &job {
                    Job::CheckinStart(input) => {
                        self.starting.insert(input.agent_id.clone(), key);
                    }
                    Job::Enroll(input) => {
                        if let Some(enrollment_id) = &input.enrollment_id {
                            if self.enrolling.contains_key(enrollment_id) {
                                self.answer(key, errors::respond(&ApiError::EnrollDuplicate), now);
                                continue;
                            }
                            self.enrolling.insert(enrollment_id.clone(), key);
                        }
                    }
                    _ => {}
                }
                self.submit(key, job, now);
            }
        }
        self.update_timer(slot, now);
    }

    /// Sends a job for a connection, due by its request's deadline; a job refused (full queue,
    /// or the queue ahead cannot drain in time) is answered 503 at once.
    fn submit(&mut self, key: ConnKey, job: Job, now: Instant) {
        let deadline = conn_of(&mut self.conns, key)
            .and_then(|c| c.inflight.as_mut())
            .and_then(|inflight| request_deadline(inflight, &self.settings))
            .unwrap_or_else(|| now + self.settings.backend.job_timeout);
        let refused = match &self.backend {
            Some(backend) => backend
                .submit_by(ReplyTo::Conn(key), job, deadline)
                .is_err(),
            None => true,
        };
        if refused {
            log::debug!("backend queue cannot take the job in time: answering 503");
            self.answer(key, errors::respond(&ApiError::StoreUnavailable), now);
        }
    }

    /// Answers a connection's in-flight request (adding its request headers) and drives it.
    fn answer(&mut self, key: ConnKey, response: Response, now: Instant) {
        let draining = self.drain_deadline.is_some();
        let Some(conn) = conn_of(&mut self.conns, key) else {
            return;
        };
        let Some(inflight) = conn.inflight.as_ref() else {
            return;
        };
        let response =
            errors::jitter_retry_after(inflight.pending.decorate(response), self.ids.next_unit());
        if let Some(limited) =
            conn.complete(&response, draining, self.date.current(), &mut self.pool)
        {
            self.limits.get(limited).release();
        }
        self.drive(key.slot, now);
    }

    /// Arms the timer the connection now waits on, if it changed (or output made progress).
    fn update_timer(&mut self, slot: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let desired = conn.desired_timer();
        let wrote = std::mem::take(&mut conn.wrote);
        let current = conn.timer.map(|(_, kind)| kind);
        let progressed = desired == Some(TimerKind::WriteStall) && wrote;
        if desired == current && !progressed {
            return;
        }
        let key = TimerKey::Conn(ConnKey {
            slot,
            generation: conn.generation,
        });
        let parked_until = conn.parked_until();
        let had_timer = conn.timer.is_some();
        let settings = &self.settings;
        let backend_deadline = conn.inflight.as_ref().and_then(|i| i.deadline);
        conn.timer = desired.map(|kind| {
            let at = match (kind, parked_until, backend_deadline) {
                (TimerKind::LongPoll, Some(until), _) => until,
                (TimerKind::Backend, _, Some(due)) => due + BACKEND_GRACE,
                _ => now + settings.timeout(kind),
            };
            (self.deadlines.arm(key, at), kind)
        });
        if had_timer {
            let conns = &self.conns;
            self.deadlines
                .note_stale(|key, ticket| timer_is_live(conns, key, ticket));
        }
    }

    fn fire_deadlines(&mut self, now: Instant) {
        while let Some((key, ticket)) = self.deadlines.expired(now) {
            match key {
                TimerKey::Drain => self.drain_expired = true,
                TimerKey::Rollout => self.pace_rollouts(now),
                TimerKey::AcceptRetry => {
                    self.accept_paused = false;
                    self.management_ready = self.management.is_some();
                }
                TimerKey::BulkFlush => {
                    self.flush_checkins();
                    self.deadlines
                        .arm(TimerKey::BulkFlush, now + self.settings.checkin_flush);
                }
                TimerKey::CheckinTimestamp => {
                    self.refresh_parked_checkins();
                    self.deadlines.arm(
                        TimerKey::CheckinTimestamp,
                        now + self.settings.checkin_timestamp,
                    );
                }
                TimerKey::Conn(conn_key) => {
                    if !timer_is_live(&self.conns, key, ticket) {
                        continue;
                    }
                    let kind = self
                        .conns
                        .get(conn_key.slot)
                        .and_then(|c| c.timer)
                        .map(|(_, k)| k);
                    if kind == Some(TimerKind::LongPoll) {
                        self.waiters.remove(conn_key);
                        if let Some(conn) = conn_of(&mut self.conns, conn_key) {
                            conn.timer = None;
                        }
                        self.answer(conn_key, checkin_response(empty_body()), now);
                        continue;
                    }
                    if kind == Some(TimerKind::Backend) {
                        self.backend_overdue(conn_key, now);
                        continue;
                    }
                    log::debug!("closing connection {}: {kind:?} timeout", conn_key.slot);
                    self.close(conn_key.slot);
                }
            }
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(mut conn) = self.conns.try_remove(slot) {
            let _ = self.poll.registry().deregister(&mut conn.sock);
            if let Some(inflight) = &conn.inflight {
                let key = ConnKey {
                    slot,
                    generation: conn.generation,
                };
                self.waiters.remove(key);
                self.enrolling.retain(|_, k| *k != key);
                if let Some(agent) = self
                    .starting
                    .iter()
                    .find(|(_, k)| **k == key)
                    .map(|(a, _)| a.clone())
                {
                    self.starting.remove(&agent);
                    self.early.remove(&agent);
                }
                if let Some(limited) = inflight.pending.limited {
                    self.limits.get(limited).release();
                }
            }
            if conn.timer.is_some() {
                let conns = &self.conns;
                self.deadlines
                    .note_stale(|key, ticket| timer_is_live(conns, key, ticket));
            }
        }
        // The descriptor just freed goes back to the reserve first, if it was drawn on.
        self.reserve.refill();
    }
}

/// How long past a job's deadline the loop waits for its reply before answering 503 itself (the
/// worker answers at the deadline; this only covers a job stuck outside the store's calls).
const BACKEND_GRACE: Duration = Duration::from_millis(250);

/// The deadline of an agent request's backend jobs: its long poll for a checkin (at least the
/// backend timeout: a very short long poll leaves the store part the time any request has),
/// the backend timeout for the others; fixed by the first job. Management requests and OpAmp
/// WebSocket messages have none here (their jobs get the backend timeout from the worker side).
fn request_deadline(inflight: &mut super::conn::Inflight, settings: &Settings) -> Option<Instant> {
    use crate::api::PendingKind;
    let budget = match inflight.pending.kind {
        PendingKind::Checkin => settings.poll.long_poll.max(settings.backend.job_timeout),
        PendingKind::Admin | PendingKind::OpAmpMessage => return None,
        _ => settings.backend.job_timeout,
    };
    Some(*inflight.deadline.get_or_insert(inflight.started + budget))
}

/// Shortest pause between two paced rollout steps (batches, not one timer per agent).
const ROLLOUT_TICK: Duration = Duration::from_millis(50);

/// The connection a key names, if it is still the same connection.
fn conn_of(conns: &mut Slab<Conn>, key: ConnKey) -> Option<&mut Conn> {
    conns
        .get_mut(key.slot)
        .filter(|c| c.generation == key.generation)
}

/// A 200 checkin answer carrying `body`.
fn checkin_response(body: Vec<u8>) -> Response {
    Response::new(200)
        .with_header("Content-Type", "application/json")
        .with_body(Body::Bytes(body))
}

fn timer_is_live(conns: &Slab<Conn>, key: TimerKey, ticket: Ticket) -> bool {
    match key {
        TimerKey::Drain
        | TimerKey::BulkFlush
        | TimerKey::CheckinTimestamp
        | TimerKey::AcceptRetry
        | TimerKey::Rollout => true,
        TimerKey::Conn(ConnKey { slot, generation }) => conns
            .get(slot)
            .is_some_and(|c| c.generation == generation && c.timer.map(|(t, _)| t) == Some(ticket)),
    }
}
