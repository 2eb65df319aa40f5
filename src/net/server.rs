//! The event loop (DESIGN.md §3). One thread owns the listener, every connection and every
//! timer. Each iteration: poll with the earliest deadline as timeout; note readiness (listener →
//! accept-ready, signals → drain, connection → readable); drive the connections that had events;
//! fire expired deadlines; accept while under the connection limits.
//!
//! Connection gate: up to `max_connections` connections are served normally; up to
//! `gate_reserve` more are accepted only to be answered `429` with `Retry-After` and closed; past
//! that, new connections wait in the kernel's backlog instead of being reset.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use rustls::ServerConnection;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use super::conn::{Conn, DriveCtx, Step, TimerKind};
use super::pool::BufPool;
use super::transport::Transport;
use crate::core::deadlines::{Deadlines, Ticket};
use crate::core::{Health, RequestIds};
use crate::http::Limits;

const LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);

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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    Conn { slot: usize, generation: u64 },
    Drain,
}

/// The event loop and everything it owns.
pub struct Server {
    poll: Poll,
    listener: Option<TcpListener>,
    tls: Option<Arc<rustls::ServerConfig>>,
    conns: Slab<Conn>,
    deadlines: Deadlines<TimerKey>,
    settings: Settings,
    health: Health,
    ids: RequestIds,
    pool: BufPool,
    scratch: Box<[u8]>,
    signals: Signals,
    next_generation: u64,
    accept_ready: bool,
    gate_warned: bool,
    drain_deadline: Option<Instant>,
    drain_expired: bool,
    ready_slots: Vec<usize>,
}

impl Server {
    /// Registers the listener and the signal handlers. `seed` seeds request-id generation.
    pub fn new(
        mut listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        settings: Settings,
        health: Health,
        seed: u64,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let mut signals = Signals::new([SIGTERM, SIGINT])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        Ok(Self {
            poll,
            listener: Some(listener),
            tls,
            conns: Slab::with_capacity(1024.min(settings.max_connections + settings.gate_reserve)),
            deadlines: Deadlines::new(),
            settings,
            health,
            ids: RequestIds::new(seed),
            pool: BufPool::new(64, READ_CHUNK),
            scratch: vec![0u8; READ_CHUNK].into_boxed_slice(),
            signals,
            next_generation: 0,
            accept_ready: true,
            gate_warned: false,
            drain_deadline: None,
            drain_expired: false,
            ready_slots: Vec::new(),
        })
    }

    /// Runs until SIGTERM/SIGINT has drained every connection (or the drain timeout passed).
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            if self.drain_deadline.is_some() && (self.conns.is_empty() || self.drain_expired) {
                if !self.conns.is_empty() {
                    log::warn!(
                        "drain timeout reached: closing {} connection(s) still open",
                        self.conns.len()
                    );
                }
                log::info!("stopped");
                return Ok(());
            }
            let timeout = self.deadlines.next_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            let mut signalled = false;
            let mut ready = std::mem::take(&mut self.ready_slots);
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_ready = true,
                    SIGNALS => signalled = true,
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
            for slot in ready.drain(..) {
                self.drive(slot, now);
            }
            self.ready_slots = ready;
            self.fire_deadlines(now);
            self.accept(now);
        }
    }

    fn on_signals(&mut self, now: Instant) {
        let received: Vec<i32> = self.signals.pending().collect();
        if received.is_empty() {
            return;
        }
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
        self.drain_deadline = Some(deadline);
        self.deadlines.arm(TimerKey::Drain, deadline);
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
    }

    fn drive(&mut self, slot: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let mut ctx = DriveCtx {
            health: self.health,
            request_ids: &mut self.ids,
            pool: &mut self.pool,
            scratch: &mut self.scratch,
            draining: self.drain_deadline.is_some(),
        };
        if conn.drive(&mut ctx) == Step::Close {
            self.close(slot);
            return;
        }
        self.update_timer(slot, now);
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
        let key = TimerKey::Conn {
            slot,
            generation: conn.generation,
        };
        let had_timer = conn.timer.is_some();
        conn.timer = desired.map(|kind| {
            (
                self.deadlines.arm(key, now + self.settings.timeout(kind)),
                kind,
            )
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
                TimerKey::Conn { slot, .. } => {
                    if !timer_is_live(&self.conns, key, ticket) {
                        continue;
                    }
                    if let Some((_, kind)) = self.conns.get(slot).and_then(|c| c.timer) {
                        log::debug!("closing connection {slot}: {kind:?} timeout");
                    }
                    self.close(slot);
                }
            }
        }
    }

    fn accept(&mut self, now: Instant) {
        while self.accept_ready && self.drain_deadline.is_none() {
            let live = self.conns.len();
            if live >= self.settings.max_connections + self.settings.gate_reserve {
                // Leave further connections in the kernel backlog; retried when a slot frees.
                return;
            }
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            let (mut sock, _peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_ready = false;
                    return;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    // EMFILE and friends: the connection stays queued; retry on the next event.
                    log::warn!("accept failed: {e}");
                    self.accept_ready = false;
                    return;
                }
            };
            let over_capacity = live >= self.settings.max_connections;
            if over_capacity && !self.gate_warned {
                log::warn!(
                    "over max_connections ({}): answering new connections with 429",
                    self.settings.max_connections
                );
            }
            self.gate_warned = over_capacity;
            let _ = sock.set_nodelay(true);
            let transport = match &self.tls {
                None => Transport::Plain,
                Some(config) => match ServerConnection::new(Arc::clone(config)) {
                    Ok(session) => Transport::tls(session),
                    Err(e) => {
                        log::warn!("cannot start a TLS session: {e}");
                        continue;
                    }
                },
            };
            let entry = self.conns.vacant_entry();
            let slot = entry.key();
            if let Err(e) = self.poll.registry().register(
                &mut sock,
                Token(slot),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::warn!("cannot register a connection: {e}");
                continue;
            }
            let generation = self.next_generation;
            self.next_generation = self.next_generation.wrapping_add(1);
            entry.insert(Conn::new(
                generation,
                sock,
                transport,
                self.settings.limits,
                over_capacity,
            ));
            self.drive(slot, now);
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(mut conn) = self.conns.try_remove(slot) {
            let _ = self.poll.registry().deregister(&mut conn.sock);
            if conn.timer.is_some() {
                let conns = &self.conns;
                self.deadlines
                    .note_stale(|key, ticket| timer_is_live(conns, key, ticket));
            }
        }
    }
}

fn timer_is_live(conns: &Slab<Conn>, key: TimerKey, ticket: Ticket) -> bool {
    match key {
        TimerKey::Drain => true,
        TimerKey::Conn { slot, generation } => conns
            .get(slot)
            .is_some_and(|c| c.generation == generation && c.timer.map(|(t, _)| t) == Some(ticket)),
    }
}
