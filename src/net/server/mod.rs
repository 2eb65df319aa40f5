//! The event loop (DESIGN.md §3). One thread owns the listeners, every connection, every I/O
//! timer and the Fleet engine ([`Fleet`]). Each iteration: poll with the earliest deadline (the
//! loop's or the engine's) as timeout; note readiness (listener → accept-ready, signals → drain,
//! waker → backend replies and store events for the engine, connection → readable); drive the
//! connections that had events, handing each decoded request to the engine; fire expired
//! deadlines; accept while under the connection limits. After each of these steps the loop
//! carries out the engine's outputs (`pump`): answers written on their connections, jobs
//! submitted to the backend. What a request means, what parks and what a reply or event
//! changes is the engine's business; this module knows sockets, TLS, framing and time.
//!
//! Connection gate: up to `max_connections` connections are served normally; up to
//! `gate_reserve` more are accepted only to be answered `429` with `Retry-After` and closed; past
//! that, new connections wait in the kernel's backlog instead of being reset.
//!
//! Connections are named by `(slot, generation)` ([`ConnKey`]): an answer or a reply for a
//! connection that has gone (slot reused) never reaches its successor.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

mod accept;
mod housekeeping;
mod reload;
mod reserve;
mod watch;

pub use housekeeping::ChoreId;
use housekeeping::SubmitChore;
pub use watch::WatchError;

use super::conn::{Conn, DriveCtx, Step, TimerKind};
use super::pool::BufPool;
use crate::api::health::{Health, HealthCell};
use crate::backend::workers::{Backend, BackendSettings};
use crate::backend::Store;
use crate::core::deadlines::{Deadlines, Ticket};
pub use crate::core::fleet::{ConnKey, ReplyTo};
use crate::core::fleet::{Fleet, FleetSettings, Origin, Output};
use crate::core::longpoll::PollSettings;
use crate::http::{DateCache, Limits};

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
    /// The tokens it accepts (admin and named operators).
    pub token: crate::mgmt::token::Credentials,
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
    pub limits_table: Option<&'static crate::api::limits::SizingTable>,
    /// The artifact mirror and PGP key directories.
    pub files: crate::api::serving::FileServing,
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
        }
    }

    /// What the engine needs of these settings.
    fn fleet(
        &self,
        has_store: bool,
        admin_token: Option<crate::mgmt::token::Credentials>,
        seed: u64,
    ) -> FleetSettings {
        FleetSettings {
            poll: self.poll,
            checkin_flush: self.checkin_flush,
            checkin_timestamp: self.checkin_timestamp,
            pbkdf2_iterations: self.pbkdf2_iterations,
            server_version: self.server_version,
            limits_table: self.limits_table,
            has_store,
            admin_token,
            seed,
            backend_timeout: self.backend.job_timeout,
            files: self.files.clone(),
        }
    }
}

/// The loop's own timers (the engine keeps its deadlines itself: [`Fleet::poll_timeout`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    Conn(ConnKey),
    Drain,
    AcceptRetry,
    /// A periodic chore (`housekeeping.rs`), by number.
    Housekeeping(usize),
    /// The watched directory's quiet period ended (`watch.rs`).
    Watch,
}

/// Where shutdown stands.
#[derive(Debug, Default)]
struct Drain {
    /// Set when the drain began: the drain timeout.
    deadline: Option<Instant>,
    /// The drain timeout passed (or a second signal came): stop now.
    expired: bool,
    /// SIGTERM/SIGINT arrived (as opposed to a [`ShutdownHandle`] drain).
    signalled: bool,
}

/// Buffers the connections share.
struct Buffers {
    pool: BufPool,
    /// Scratch space for socket reads.
    scratch: Box<[u8]>,
}

/// The event loop and everything it owns.
pub struct Server {
    poll: Poll,
    /// The listeners and the accept gate.
    gate: accept::Gate,
    conns: Slab<Conn>,
    deadlines: Deadlines<TimerKey>,
    settings: Settings,
    /// Every Fleet decision and all Fleet state.
    fleet: Fleet,
    backend: Option<Backend<ReplyTo>>,
    buffers: Buffers,
    signals: Signals,
    /// SIGHUP: reloading certificates, admin token, log level (`reload`).
    reload: reload::ReloadState,
    drain: Drain,
    chores: housekeeping::Chores,
    /// A directory whose changes run a chore at once (`watch.rs`).
    watch: Option<watch::Watch>,
    ready_slots: Vec<usize>,
    /// The `Date` header of responses, reformatted when the wall clock enters a new second.
    date: DateCache,
    /// This iteration's wall-clock reading (what `date` was updated with).
    wall: SystemTime,
    waker: Arc<Waker>,
    shutdown: Arc<AtomicBool>,
    stats: Arc<Stats>,
    /// The monitoring endpoint serving `stats`, stopped with this server.
    monitoring: Option<crate::mgmt::monitor::Handle>,
}

// The counters the loop publishes are the monitoring endpoint's (`mgmt::monitor`, which net
// starts): they live there so that mgmt does not import net.
pub use crate::mgmt::monitor::Stats;

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
        let has_store = store.is_some();
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
        let fleet = Fleet::new(
            settings.fleet(has_store, admin_token, seed),
            health,
            Instant::now(),
        );
        let routes = fleet.route_stats();
        Ok(Self {
            poll,
            gate: accept::Gate::new(listener, tls, management, management_tls),
            conns: Slab::with_capacity(1024.min(settings.max_connections + settings.gate_reserve)),
            deadlines: Deadlines::new(),
            settings,
            fleet,
            date: DateCache::new(SystemTime::now()),
            wall: SystemTime::now(),
            buffers: Buffers {
                pool: BufPool::new(64, READ_CHUNK),
                scratch: vec![0u8; READ_CHUNK].into_boxed_slice(),
            },
            signals,
            reload: reload::ReloadState::default(),
            backend,
            chores: housekeeping::Chores::default(),
            watch: None,
            drain: Drain::default(),
            ready_slots: Vec::new(),
            waker,
            shutdown: Arc::new(AtomicBool::new(false)),
            stats: Arc::new(Stats {
                routes,
                ..Stats::default()
            }),
            monitoring: None,
        })
    }

    /// Keeps the monitoring endpoint running as long as this server.
    pub fn keep_monitoring(&mut self, endpoint: crate::mgmt::monitor::Handle) {
        self.monitoring = Some(endpoint);
    }

    /// Live counters of this server.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Makes `GET /api/status` report `cell` (the self-monitor's state) whenever the loop itself
    /// is healthy.
    pub fn follow_health(&mut self, cell: Arc<HealthCell>) {
        self.fleet.follow_health(cell);
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
            if let Some(stopped) = self.stopped() {
                return Ok(stopped);
            }
            let timeout = self.next_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            // The one wall-clock reading of this iteration: every response written in it carries
            // this second's `Date`, and every timestamp the engine writes in it is this one.
            let wall = SystemTime::now();
            self.date.update(wall);
            self.wall = wall;
            let mut signalled = false;
            let mut woken = false;
            let mut watched = false;
            let mut ready = std::mem::take(&mut self.ready_slots);
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.gate.ready = true,
                    MANAGEMENT => self.gate.management_ready = true,
                    SIGNALS => signalled = true,
                    WAKER => woken = true,
                    watch::WATCH => watched = true,
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
                self.on_signals(now, wall);
            }
            if watched {
                self.on_watch(now);
            }
            if woken {
                if self.shutdown.load(Ordering::SeqCst) && self.drain.deadline.is_none() {
                    self.start_drain(now, wall);
                }
                self.on_backend(now, wall);
                self.finish_reload();
            }
            for slot in ready.drain(..) {
                self.drive(slot, now);
            }
            self.ready_slots = ready;
            self.fire_deadlines(now, wall);
            self.accept(now);
            self.accept_management(now);
            self.stats
                .parked
                .store(self.fleet.parked(), Ordering::Relaxed);
            self.stats
                .connections
                .store(self.conns.len(), Ordering::Relaxed);
            self.stats
                .late_replies
                .store(self.fleet.late_replies(), Ordering::Relaxed);
            self.stats
                .early_actions
                .store(self.fleet.early_actions(), Ordering::Relaxed);
            if let Some(backend) = &self.backend {
                let (depth, peak, jobs) = backend.queue_figures();
                self.stats.backend_queue.store(depth, Ordering::Relaxed);
                self.stats.backend_queue_peak.store(peak, Ordering::Relaxed);
                self.stats.backend_jobs.store(jobs, Ordering::Relaxed);
            }
        }
    }

    /// Whether the drain is over (every connection gone and checkin state written, or the
    /// drain timeout passed), and why the server stops.
    fn stopped(&self) -> Option<Stopped> {
        self.drain.deadline?;
        let writer_done = self.fleet.writer_idle();
        let done = self.conns.is_empty() && writer_done;
        if !done && !self.drain.expired {
            return None;
        }
        if !done {
            log::warn!(
                "drain timeout reached: closing {} connection(s); {} agent checkin state(s) not written",
                self.conns.len(),
                self.fleet.pending_writes()
            );
        }
        log::info!(
            "stopped ({} late backend replies dropped)",
            self.fleet.late_replies()
        );
        Some(if self.drain.signalled {
            Stopped::Signal
        } else {
            Stopped::Requested
        })
    }

    /// How long `poll` may block: until the loop's or the engine's earliest deadline.
    fn next_timeout(&self, now: Instant) -> Option<Duration> {
        let fleet = self
            .fleet
            .poll_timeout()
            .map(|at| at.saturating_duration_since(now));
        match (self.deadlines.next_timeout(now), fleet) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_signals(&mut self, now: Instant, wall: SystemTime) {
        let received: Vec<i32> = self.signals.pending().collect();
        if received.contains(&SIGHUP) {
            self.start_reload();
        }
        if received.iter().all(|s| *s == SIGHUP) {
            return;
        }
        self.drain.signalled = true;
        if self.drain.deadline.is_some() {
            log::warn!("second shutdown signal: stopping without waiting for the drain");
            self.drain.expired = true;
            return;
        }
        self.start_drain(now, wall);
    }

    fn start_drain(&mut self, now: Instant, wall: SystemTime) {
        let deadline = now + self.settings.drain_timeout;
        log::info!(
            "shutting down: no longer accepting; draining {} connection(s) for up to {:?}",
            self.conns.len(),
            self.settings.drain_timeout
        );
        self.gate.close(self.poll.registry());
        self.drain.deadline = Some(deadline);
        self.deadlines.arm(TimerKey::Drain, deadline);
        self.fleet.handle_drain(now, wall);
        self.pump(now);
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            // Read what has already arrived first: the signal may be handled before the
            // readiness of a connection whose request sits in its socket buffer, and that
            // request is in flight, not an idle keep-alive to close.
            self.drive(slot, now);
            if let Some(Step::Close) = self.conns.get(slot).map(Conn::begin_drain) {
                self.close(slot);
            }
        }
    }

    /// Hands the backend's replies and store events to the engine.
    fn on_backend(&mut self, now: Instant, wall: SystemTime) {
        let Some(backend) = &self.backend else { return };
        while let Ok(reply) = backend.replies.try_recv() {
            self.fleet.handle_reply(reply, now, wall);
        }
        while let Ok(event) = backend.events.try_recv() {
            self.fleet.handle_event(event, now);
        }
        self.pump(now);
    }

    /// Drives a connection, then carries out what the engine decided meanwhile.
    fn drive(&mut self, slot: usize, now: Instant) {
        self.drive_conn(slot, now);
        self.pump(now);
    }

    /// Runs a connection until it would block, handing each request it decodes to the engine.
    fn drive_conn(&mut self, slot: usize, now: Instant) {
        loop {
            let Some(conn) = self.conns.get_mut(slot) else {
                return;
            };
            let mut ctx = DriveCtx {
                pool: &mut self.buffers.pool,
                scratch: &mut self.buffers.scratch,
                draining: self.drain.deadline.is_some(),
                date: self.date.current(),
            };
            let key = ConnKey::new(slot, conn.generation);
            match conn.drive(&mut ctx) {
                Step::Open => break,
                Step::Close => return self.close(slot),
                Step::Request(req) => {
                    let origin = origin(conn);
                    let wall = self.wall;
                    // The first request of a connection began at its accept (the agent's clock
                    // counts the TLS handshake too); later ones when they are read.
                    let arrived = conn.accepted.take().unwrap_or(now);
                    self.fleet
                        .handle_request(key, origin, &req, (arrived, now), wall);
                }
                Step::Message(token, body) => self.fleet.handle_message(key, token, body, now),
                Step::NeedPart(part) => self.fleet.handle_part(key, part, now),
            }
        }
        self.update_timer(slot, now);
    }

    /// Carries out the engine's outputs until it has none: answers are written (and their
    /// connections driven on), jobs submitted.
    fn pump(&mut self, now: Instant) {
        while let Some(output) = self.fleet.poll_output() {
            let draining = self.drain.deadline.is_some();
            let date = self.date.current();
            let pool = &mut self.buffers.pool;
            let conn = match output {
                Output::Submit { to, job, deadline } => {
                    let refused = match &self.backend {
                        Some(backend) => backend.submit_by(to, job, deadline).err().map(|r| r.1),
                        None => Some(job),
                    };
                    if let Some(job) = refused {
                        self.fleet.handle_refused(to, job);
                    }
                    continue;
                }
                Output::Respond {
                    conn,
                    response,
                    close,
                } => {
                    if let Some(c) = conn_of(&mut self.conns, conn) {
                        c.complete(&response, draining || close, date, pool);
                    }
                    conn
                }
                Output::Part {
                    conn,
                    expected,
                    bytes,
                } => {
                    if let Some(c) = conn_of(&mut self.conns, conn) {
                        c.feed_part(bytes, expected, pool);
                    }
                    conn
                }
                Output::Message { conn, reply } => {
                    if let Some(c) = conn_of(&mut self.conns, conn) {
                        c.websocket_reply(reply, pool);
                    }
                    conn
                }
                Output::Upgrade {
                    conn,
                    accept,
                    token,
                } => {
                    if let Some(c) = conn_of(&mut self.conns, conn) {
                        c.upgrade_websocket(&accept, token, pool);
                    }
                    conn
                }
            };
            // A gone connection (no key match) is left alone: `drive_conn` looks the slot up.
            if conn_of(&mut self.conns, conn).is_some() {
                self.drive_conn(conn.slot(), now);
            }
        }
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
        let key = TimerKey::Conn(ConnKey::new(slot, conn.generation));
        let had_timer = conn.timer.is_some();
        let settings = &self.settings;
        conn.timer =
            desired.map(|kind| (self.deadlines.arm(key, now + settings.timeout(kind)), kind));
        if had_timer {
            let conns = &self.conns;
            self.deadlines
                .note_stale(|key, ticket| timer_is_live(conns, key, ticket));
        }
    }

    fn fire_deadlines(&mut self, now: Instant, wall: SystemTime) {
        while let Some((key, ticket)) = self.deadlines.expired(now) {
            match key {
                TimerKey::Drain => self.drain.expired = true,
                TimerKey::Housekeeping(chore) => self.run_chore(chore, now),
                TimerKey::Watch => self.fire_watch(ticket, now),
                TimerKey::AcceptRetry => {
                    self.gate.paused = false;
                    self.gate.management_ready = self.gate.management.is_some();
                }
                TimerKey::Conn(conn_key) => {
                    if !timer_is_live(&self.conns, key, ticket) {
                        continue;
                    }
                    let kind = self
                        .conns
                        .get(conn_key.slot())
                        .and_then(|c| c.timer)
                        .map(|(_, k)| k);
                    log::debug!("closing connection {}: {kind:?} timeout", conn_key.slot());
                    self.close(conn_key.slot());
                }
            }
        }
        if self.fleet.poll_timeout().is_some_and(|at| at <= now) {
            self.fleet.handle_timeout(now, wall);
            self.pump(now);
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(mut conn) = self.conns.try_remove(slot) {
            let _ = self.poll.registry().deregister(&mut conn.sock);
            self.fleet.handle_close(ConnKey::new(slot, conn.generation));
            if conn.timer.is_some() {
                let conns = &self.conns;
                self.deadlines
                    .note_stale(|key, ticket| timer_is_live(conns, key, ticket));
            }
        }
        // The descriptor just freed goes back to the reserve first, if it was drawn on.
        self.gate.reserve.refill();
    }
}

/// Which side of which listener a connection's requests come from.
fn origin(conn: &Conn) -> Origin {
    if conn.management {
        Origin::Management
    } else if conn.reserve {
        Origin::Reserve
    } else if conn.over_capacity() {
        Origin::OverCapacity
    } else {
        Origin::Agent
    }
}

/// The connection a key names, if it is still the same connection.
fn conn_of(conns: &mut Slab<Conn>, key: ConnKey) -> Option<&mut Conn> {
    conns
        .get_mut(key.slot())
        .filter(|c| c.generation == key.generation())
}

fn timer_is_live(conns: &Slab<Conn>, key: TimerKey, ticket: Ticket) -> bool {
    match key {
        // A watch timer that was pushed back is told apart when it fires (`watch.rs`).
        TimerKey::Drain | TimerKey::AcceptRetry | TimerKey::Housekeeping(_) | TimerKey::Watch => {
            true
        }
        TimerKey::Conn(conn) => conns.get(conn.slot()).is_some_and(|c| {
            c.generation == conn.generation() && c.timer.map(|(t, _)| t) == Some(ticket)
        }),
    }
}
