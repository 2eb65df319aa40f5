//! Accepting connections: agents on the agent listener (up to `max_connections`, then the 429
//! gate), the operator on the management listener (plain HTTP on loopback, TLS off it), and
//! what happens when descriptors run out (the [`super::reserve`]).

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Interest, Token};
use rustls::server::UnbufferedServerConnection;

use super::{reserve, Server, TimerKey, MAX_MANAGEMENT_CONNECTIONS};
use crate::net::conn::Conn;
use crate::net::transport::Transport;
use rustls::ServerConfig;

/// The listeners and the state of accepting on them.
pub(super) struct Gate {
    /// The agent listener (`None` once draining).
    pub(super) listener: Option<TcpListener>,
    /// The management listener, if enabled (`None` once draining).
    pub(super) management: Option<TcpListener>,
    /// TLS of agent connections (replaced on SIGHUP).
    pub(super) tls: Option<Arc<ServerConfig>>,
    /// TLS of management connections off loopback.
    management_tls: Option<Arc<ServerConfig>>,
    /// The agent listener may have connections waiting.
    pub(super) ready: bool,
    /// The management listener may have connections waiting.
    pub(super) management_ready: bool,
    /// Accepting waits for [`TimerKey::AcceptRetry`] after running out of descriptors.
    pub(super) paused: bool,
    /// Descriptors held back for `/api/status` and the management API when the rest run out.
    pub(super) reserve: reserve::Reserve,
    /// The over-capacity warning was logged for the current episode.
    warned: bool,
    next_generation: u64,
}

impl Gate {
    /// Accepting on `listener` (and `management`, when enabled).
    pub(super) fn new(
        listener: TcpListener,
        tls: Option<Arc<ServerConfig>>,
        management: Option<TcpListener>,
        management_tls: Option<Arc<ServerConfig>>,
    ) -> Self {
        Self {
            listener: Some(listener),
            management,
            tls,
            management_tls,
            ready: true,
            management_ready: true,
            paused: false,
            reserve: reserve::Reserve::open(),
            warned: false,
            next_generation: 0,
        }
    }

    /// Stops listening (the drain).
    pub(super) fn close(&mut self, registry: &mio::Registry) {
        if let Some(mut listener) = self.listener.take() {
            let _ = registry.deregister(&mut listener);
        }
        if let Some(mut listener) = self.management.take() {
            let _ = registry.deregister(&mut listener);
        }
    }
}

impl Server {
    pub(super) fn accept(&mut self, now: Instant) {
        if self.gate.paused {
            return;
        }
        while self.gate.ready && self.drain.deadline.is_none() {
            let live = self.conns.len();
            if live >= self.settings.max_connections + self.settings.gate_reserve {
                // Leave further connections in the kernel backlog; retried when a slot frees.
                return;
            }
            let Some(listener) = self.gate.listener.as_ref() else {
                return;
            };
            let (sock, from_reserve) = match accept_one(listener) {
                Accepted::Socket(sock) => {
                    self.gate.reserve.recovered(now);
                    (sock, false)
                }
                Accepted::Retry => continue,
                Accepted::Drained => {
                    self.gate.reserve.recovered(now);
                    self.gate.ready = false;
                    return;
                }
                Accepted::Exhausted(e) => {
                    match self.accept_from_reserve(reserve::Pool::Agent, "agent", &e, now) {
                        Some(sock) => (sock, true),
                        None => {
                            self.gate.paused = true;
                            return;
                        }
                    }
                }
            };
            if from_reserve {
                self.register(sock, self.transport(), true, Role::Reserve, now);
                continue;
            }
            let over_capacity = live >= self.settings.max_connections;
            if over_capacity && !self.gate.warned {
                log::warn!(
                    "over max_connections ({}): answering new connections with 429",
                    self.settings.max_connections
                );
            }
            self.gate.warned = over_capacity;
            let Some(transport) = self.transport() else {
                continue;
            };
            self.register(sock, Some(transport), over_capacity, Role::Agent, now);
        }
    }

    /// The transport of a new agent connection (`None`: a TLS session could not start; logged).
    fn transport(&self) -> Option<Transport> {
        match &self.gate.tls {
            None => Some(Transport::Plain),
            Some(config) => match UnbufferedServerConnection::new(Arc::clone(config)) {
                Ok(session) => Some(Transport::tls(session)),
                Err(e) => {
                    log::warn!("cannot start a TLS session: {e}");
                    None
                }
            },
        }
    }

    /// Out of descriptors on a listener: releases a reserved one of `pool` and accepts one
    /// connection on it. `None` (the accept is deferred): the retry timer is armed.
    fn accept_from_reserve(
        &mut self,
        pool: reserve::Pool,
        which: &str,
        error: &io::Error,
        now: Instant,
    ) -> Option<mio::net::TcpStream> {
        let listener = match pool {
            reserve::Pool::Agent => self.gate.listener.as_ref(),
            reserve::Pool::Management => self.gate.management.as_ref(),
        };
        let accepted = match listener {
            Some(listener) if self.gate.reserve.exhausted(pool, which, error, now) => {
                match accept_one(listener) {
                    Accepted::Socket(sock) => Some(sock),
                    _ => None,
                }
            }
            _ => None,
        };
        match &accepted {
            Some(_) => self.gate.reserve.accepted_from_reserve(),
            None => {
                self.gate.reserve.refill();
                self.deadlines
                    .arm(TimerKey::AcceptRetry, now + ACCEPT_RETRY);
            }
        }
        accepted
    }

    /// Registers an accepted socket with the poll and drives it once (no transport: the socket
    /// is closed).
    fn register(
        &mut self,
        mut sock: mio::net::TcpStream,
        transport: Option<Transport>,
        over_capacity: bool,
        role: Role,
        now: Instant,
    ) {
        let Some(transport) = transport else {
            return;
        };
        let _ = sock.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        if let Err(e) = self.poll.registry().register(
            &mut sock,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log::warn!("cannot register a connection: {e}");
            return;
        }
        let generation = self.gate.next_generation;
        self.gate.next_generation = generation.wrapping_add(1);
        let mut conn = Conn::new(
            generation,
            sock,
            transport,
            self.settings.limits,
            over_capacity,
        );
        conn.management = role == Role::Management;
        conn.reserve = role == Role::Reserve;
        conn.accepted = Some(now);
        entry.insert(conn);
        self.drive(slot, now);
    }

    /// Accepts operator connections on the management listener (plain HTTP on loopback, TLS
    /// off it).
    pub(super) fn accept_management(&mut self, now: Instant) {
        while self.gate.management_ready {
            let open = self.conns.iter().filter(|(_, c)| c.management).count();
            if open >= MAX_MANAGEMENT_CONNECTIONS {
                return;
            }
            let Some(listener) = self.gate.management.as_ref() else {
                return;
            };
            let sock = match accept_one(listener) {
                Accepted::Socket(sock) => sock,
                Accepted::Retry => continue,
                Accepted::Exhausted(e) => {
                    match self.accept_from_reserve(reserve::Pool::Management, "management", &e, now)
                    {
                        Some(sock) => sock,
                        None => {
                            self.gate.management_ready = false;
                            return;
                        }
                    }
                }
                Accepted::Drained => {
                    self.gate.management_ready = false;
                    return;
                }
            };
            let transport = match &self.gate.management_tls {
                None => Some(Transport::Plain),
                Some(config) => match UnbufferedServerConnection::new(Arc::clone(config)) {
                    Ok(session) => Some(Transport::tls(session)),
                    Err(e) => {
                        log::warn!("cannot start a TLS session: {e}");
                        None
                    }
                },
            };
            self.register(sock, transport, false, Role::Management, now);
        }
    }
}

/// What one `accept` gave.
enum Accepted {
    /// A new connection.
    Socket(mio::net::TcpStream),
    /// Interrupted or aborted by the peer: try the next one.
    Retry,
    /// Nothing more now (WouldBlock), or an unexpected error (logged).
    Drained,
    /// Out of descriptors or kernel memory (EMFILE, ENFILE, ENOBUFS, ENOMEM): the connection
    /// stays in the backlog. The listener is edge-triggered and reports nothing new for it, so
    /// accepting resumes on a timer, not on the next readiness event.
    Exhausted(io::Error),
}

/// What an accepted connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// An agent's (or anyone's) connection on the agent listener.
    Agent,
    /// On the agent listener, on a reserved descriptor: `/api/status` or 429.
    Reserve,
    /// On the management listener.
    Management,
}

/// How long accepting pauses after running out of descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

fn accept_one(listener: &TcpListener) -> Accepted {
    match listener.accept() {
        Ok((sock, _peer)) => Accepted::Socket(sock),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Accepted::Drained,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
            ) =>
        {
            Accepted::Retry
        }
        // Linux errno values (the same on every architecture we build for).
        // Logged once per episode by the reserve, not once per retry.
        Err(e) if matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12)) => Accepted::Exhausted(e),
        Err(e) => {
            log::warn!("accept failed: {e}");
            Accepted::Drained
        }
    }
}
