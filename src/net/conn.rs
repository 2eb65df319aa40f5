//! One client connection: socket, transport (plain or TLS), read buffer, HTTP decoder, pending
//! output and the timer it is waiting on. `drive` runs the connection as far as it can without
//! blocking: flush output, decode buffered bytes, answer requests, read more, and graceful close
//! (close_notify, half-close, then discard input until the peer closes or the linger timer fires,
//! so a response is never lost to a TCP reset).

use std::io;
use std::net::Shutdown;

use mio::net::TcpStream;

use std::sync::Arc;
use std::time::Instant;

mod websocket;

use super::pool::BufPool;
use super::transport::{ReadOutcome, Transport};
use crate::api::{self, Decision, Pending};
use crate::backend::workers::Job;
use crate::core::deadlines::Ticket;
use crate::core::policy::PreparedPolicy;
use crate::core::{Health, RequestIds};
use crate::http::{
    encode_response, Decoder, EncodeOptions, HttpDate, Limits, Method, Request, Response,
    CONTINUE_RESPONSE,
};

/// Responses larger than this are gzipped for clients that accept it (fleet-protocol.md §9.2).
const GZIP_THRESHOLD: usize = 1024;

/// The timer a connection is currently waiting on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// From accept until the TLS handshake completes.
    Handshake,
    /// Keep-alive: between requests.
    Idle,
    /// From the first byte of a request until its head is complete (slow-loris guard).
    Header,
    /// From the end of the head until the body is complete.
    Body,
    /// Output pending and the peer is not reading; re-armed on every write that makes progress.
    WriteStall,
    /// After our half-close, waiting for the peer to close.
    Linger,
    /// A parked checkin: answered with no actions when it fires.
    LongPoll,
}

/// Pipelined bytes a connection may buffer while its request is in flight; more waits in the
/// socket (backpressure).
const MAX_BUFFERED_WHILE_BUSY: usize = 64 * 1024;

/// A request handed to the backend (or parked), waiting for its answer.
#[derive(Debug)]
pub struct Inflight {
    /// What the response must carry.
    pub pending: Pending,
    /// Whether the request allowed keep-alive.
    pub keep_alive: bool,
    /// Whether the client accepts gzip.
    pub accepts_gzip: bool,
    /// When the request was decoded (long-poll setup time counts from here).
    pub started: Instant,
    /// Checkin progress, for checkins.
    pub checkin: Option<CheckinWait>,
}

/// Where a checkin is after its store part.
#[derive(Debug, Clone)]
pub struct CheckinWait {
    /// The agent.
    pub agent_id: String,
    /// Parked until this instant (`None`: a job is running).
    pub parked_until: Option<Instant>,
    /// The revision being delivered while its output keys are made.
    pub policy: Option<Arc<PreparedPolicy>>,
}

/// Whether the connection stays in the slab after `drive`.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Keep it; wait for readiness or a timer.
    Open,
    /// Remove it from the slab and drop the socket.
    Close,
}

/// What `drive` needs from the server besides the connection itself.
pub struct DriveCtx<'a> {
    /// Health for `/api/status`.
    pub health: Health,
    /// Request-id source.
    pub request_ids: &'a mut RequestIds,
    /// Buffer pool for read and write buffers.
    pub pool: &'a mut BufPool,
    /// Scratch space for socket reads.
    pub scratch: &'a mut [u8],
    /// True once shutdown has begun: responses carry `Connection: close`.
    pub draining: bool,
    /// Whether a store is attached.
    pub has_store: bool,
    /// PBKDF2 iterations for replace tokens.
    pub pbkdf2_iterations: u32,
    /// The Fleet Server version this server claims.
    pub server_version: crate::server_version::ServerVersion,
    /// When the loop last read the clock.
    pub now: Instant,
    /// The `Date` header for responses written now (the loop's per-second cache).
    pub date: HttpDate,
    /// Jobs the connection asks the server to submit.
    pub jobs: &'a mut Vec<Job>,
    /// Per-route limiters.
    pub limits: &'a mut crate::core::limits::RouteLimits,
    /// The management API's bearer token (when it is enabled).
    pub admin_token: Option<&'a str>,
}

/// How one response is written on this connection.
#[derive(Clone, Copy)]
struct ResponseOptions {
    keep_alive: bool,
    gzip: bool,
    head: bool,
    date: HttpDate,
}

/// One accepted connection.
pub struct Conn {
    /// Generation of the slab slot, so late events for a reused slot can be told apart.
    pub generation: u64,
    /// The socket (registered with the poll under the slot's token).
    pub sock: TcpStream,
    transport: Transport,
    rbuf: Vec<u8>,
    decoder: Decoder,
    out: Vec<u8>,
    out_pos: usize,
    /// Readiness seen but not yet consumed to `WouldBlock` (edge-triggered polling).
    pub readable: bool,
    read_closed: bool,
    close_after_flush: bool,
    lingering: bool,
    /// Accepted above `max_connections`: answers its request with 429 and closes.
    over_capacity: bool,
    /// Set by writes that moved bytes; the server re-arms the write-stall timer on it.
    pub wrote: bool,
    /// The request being answered by the backend or parked, if any.
    pub inflight: Option<Inflight>,
    /// Accepted on the management listener: routed to the management API.
    pub management: bool,
    /// Accepted on a reserved descriptor while the process is out of them: `GET /api/status` is
    /// answered, every other request gets the over-capacity 429 (the connection is over capacity).
    pub reserve: bool,
    /// The armed timer, if any, and its ticket.
    pub timer: Option<(Ticket, TimerKind)>,
    /// Set once the connection switched to WebSocket framing (an OpAMP collector).
    ws: Option<Box<websocket::WsSession>>,
}

impl Conn {
    /// A new connection over `sock`.
    pub fn new(
        generation: u64,
        sock: TcpStream,
        transport: Transport,
        limits: Limits,
        over_capacity: bool,
    ) -> Self {
        Self {
            generation,
            sock,
            transport,
            rbuf: Vec::new(),
            decoder: Decoder::new(limits),
            out: Vec::new(),
            out_pos: 0,
            readable: true,
            read_closed: false,
            close_after_flush: false,
            lingering: false,
            over_capacity,
            wrote: false,
            timer: None,
            inflight: None,
            management: false,
            reserve: false,
            ws: None,
        }
    }

    fn output_pending(&self) -> bool {
        self.out_pos < self.out.len() || self.transport.wants_write()
    }

    /// True between requests: nothing buffered, nothing to send, handshake done.
    pub fn is_idle(&self) -> bool {
        self.inflight.is_none()
            && !self.transport.is_handshaking()
            && !self.output_pending()
            && self.rbuf.is_empty()
            && self.decoder.is_idle()
            && !self.lingering
    }

    /// The timer this connection should be waiting on now.
    pub fn desired_timer(&self) -> Option<TimerKind> {
        if self.lingering {
            Some(TimerKind::Linger)
        } else if self.transport.is_handshaking() {
            Some(TimerKind::Handshake)
        } else if self.output_pending() {
            Some(TimerKind::WriteStall)
        } else if let Some(inflight) = &self.inflight {
            let parked = inflight
                .checkin
                .as_ref()
                .is_some_and(|c| c.parked_until.is_some());
            parked.then_some(TimerKind::LongPoll)
        } else if self.ws.is_some() {
            // A parked collector waits without a timer; a frame that stalls halfway does not.
            (!self.rbuf.is_empty()).then_some(TimerKind::Body)
        } else if self.decoder.in_body() {
            Some(TimerKind::Body)
        } else if self.rbuf.is_empty() && self.decoder.is_idle() {
            Some(TimerKind::Idle)
        } else {
            Some(TimerKind::Header)
        }
    }

    /// Starts shutdown for this connection: an idle one closes now; a busy one stays until its
    /// current request is answered (every response during the drain says `Connection: close`).
    pub fn begin_drain(&self) -> Step {
        if self.inflight.is_none() && (self.is_idle() || self.transport.is_handshaking()) {
            Step::Close
        } else {
            Step::Open
        }
    }

    /// Runs the connection until it would block. Never blocks, never panics on peer input.
    pub fn drive(&mut self, ctx: &mut DriveCtx<'_>) -> Step {
        loop {
            match self.flush(ctx.pool) {
                Ok(()) => {}
                Err(_) => return Step::Close,
            }
            if self.output_pending() {
                return Step::Open;
            }
            if self.close_after_flush && !self.lingering {
                self.transport.send_close_notify(ctx.pool);
                if self.flush(ctx.pool).is_err() {
                    return Step::Close;
                }
                if self.output_pending() {
                    return Step::Open;
                }
                let _ = self.sock.shutdown(Shutdown::Write);
                self.lingering = true;
                self.release_buffers(ctx.pool);
            }
            if self.lingering {
                return self.discard_input(ctx.scratch, ctx.pool);
            }
            if self.ws.is_some() {
                if self.inflight.is_none() && self.websocket_step(ctx) {
                    continue;
                }
            } else if !self.transport.is_handshaking() && self.inflight.is_none() {
                let decoded = self.decoder.decode(&mut self.rbuf, &|m: &Method, p: &str| {
                    api::body_limits(m, p)
                });
                match decoded {
                    Ok(Some(req)) => {
                        self.respond(&req, ctx);
                        continue;
                    }
                    Ok(None) => {
                        if self.decoder.take_expect_continue() {
                            self.queue_raw(CONTINUE_RESPONSE, ctx.pool);
                            continue;
                        }
                    }
                    Err(err) => {
                        log::debug!("closing connection after HTTP error: {err}");
                        let response = match (&err, self.decoder.failed_path()) {
                            (
                                crate::http::HttpError::BodyTooLarge
                                | crate::http::HttpError::DecompressedTooLarge,
                                Some(api::opamp::PATH),
                            ) => api::opamp::too_large(),
                            _ => err.to_response(),
                        };
                        let opts = ResponseOptions {
                            keep_alive: false,
                            gzip: false,
                            head: false,
                            date: ctx.date,
                        };
                        self.queue(&response, opts, ctx.pool);
                        continue;
                    }
                }
            }
            if self.read_closed || !self.readable {
                if self.read_closed {
                    return Step::Close;
                }
                self.release_idle_read_buffer(ctx.pool);
                return Step::Open;
            }
            if self.inflight.is_some() && self.rbuf.len() >= MAX_BUFFERED_WHILE_BUSY {
                return Step::Open;
            }
            if self.rbuf.capacity() == 0 {
                self.rbuf = ctx.pool.take();
            }
            match self.transport.read_plaintext(
                &mut self.sock,
                &mut self.rbuf,
                ctx.scratch,
                ctx.pool,
            ) {
                Ok(ReadOutcome::Data(_)) => {}
                Ok(ReadOutcome::WouldBlock) => {
                    self.readable = false;
                    if !self.transport.wants_write() {
                        self.release_idle_read_buffer(ctx.pool);
                        return Step::Open;
                    }
                }
                Ok(ReadOutcome::Closed) => self.read_closed = true,
                Err(err) => {
                    log::debug!("connection error: {err}");
                    // Best effort: let a queued TLS alert reach the peer.
                    let _ = self.transport.flush(&mut self.sock, ctx.pool);
                    return Step::Close;
                }
            }
        }
    }

    fn respond(&mut self, req: &Request, ctx: &mut DriveCtx<'_>) {
        let keep_alive = req.keep_alive && !ctx.draining && !self.over_capacity;
        let head = req.method == Method::Head;
        let decision = if self.management {
            let request_id = ctx.request_ids.next_id();
            match crate::mgmt::handle(req, ctx.admin_token.unwrap_or("")) {
                Err(response) => {
                    Decision::Respond(response.with_header("X-Request-Id", request_id))
                }
                Ok(admin_request) => Decision::Job(
                    Job::Admin(admin_request),
                    Pending {
                        kind: api::PendingKind::Admin,
                        request_id,
                        api_version: api::version::DEFAULT,
                        limited: None,
                        server_version: ctx.server_version,
                        refused_agent_version: None,
                    },
                ),
            }
        } else if self.over_capacity && !(self.reserve && req.path == "/api/status") {
            Decision::Respond(api::capacity_exceeded(Some(req), ctx.request_ids))
        } else {
            api::handle(
                req,
                &mut api::Context {
                    health: ctx.health,
                    request_ids: ctx.request_ids,
                    has_store: ctx.has_store,
                    pbkdf2_iterations: ctx.pbkdf2_iterations,
                    server_version: ctx.server_version,
                    limits: ctx.limits,
                    now: ctx.now,
                },
            )
        };
        match decision {
            Decision::Respond(response) => {
                log::debug!("{:?} {} -> {}", req.method, req.path, response.status);
                let opts = ResponseOptions {
                    keep_alive,
                    gzip: req.accepts_gzip(),
                    head,
                    date: ctx.date,
                };
                self.queue(&response, opts, ctx.pool);
            }
            Decision::Job(job, pending) => {
                self.inflight = Some(Inflight {
                    pending,
                    keep_alive,
                    accepts_gzip: req.accepts_gzip(),
                    started: ctx.now,
                    checkin: None,
                });
                ctx.jobs.push(job);
            }
        }
    }

    /// Answers the in-flight request with `response` (already decorated); returns the limiter
    /// the request held, for the caller to release.
    pub fn complete(
        &mut self,
        response: &Response,
        draining: bool,
        date: HttpDate,
        pool: &mut BufPool,
    ) -> Option<crate::core::limits::LimitedRoute> {
        let inflight = self.inflight.take()?;
        log::debug!("{:?} answered {}", inflight.pending.kind, response.status);
        let opts = ResponseOptions {
            keep_alive: inflight.keep_alive && !draining,
            gzip: inflight.accepts_gzip,
            head: false,
            date,
        };
        self.queue(response, opts, pool);
        inflight.pending.limited
    }

    /// The parked deadline, if parked.
    pub fn parked_until(&self) -> Option<Instant> {
        self.inflight.as_ref()?.checkin.as_ref()?.parked_until
    }

    fn queue(&mut self, response: &Response, opts: ResponseOptions, pool: &mut BufPool) {
        if self.out.capacity() == 0 {
            self.out = pool.take();
        }
        let encode = EncodeOptions {
            accepts_gzip: opts.gzip,
            gzip_threshold: GZIP_THRESHOLD,
            head_request: opts.head,
            keep_alive: opts.keep_alive,
            date: Some(opts.date),
        };
        encode_response(response, &encode, &mut self.out);
        if !opts.keep_alive {
            self.close_after_flush = true;
        }
    }

    fn queue_raw(&mut self, bytes: &[u8], pool: &mut BufPool) {
        if self.out.capacity() == 0 {
            self.out = pool.take();
        }
        self.out.extend_from_slice(bytes);
    }

    /// Writes pending plaintext and TLS records until done or the socket pushes back.
    fn flush(&mut self, pool: &mut BufPool) -> io::Result<()> {
        loop {
            let mut moved = false;
            if let Some(rest) = self.out.get(self.out_pos..) {
                if !rest.is_empty() {
                    let n = self.transport.write_plaintext(&mut self.sock, rest, pool)?;
                    self.out_pos += n;
                    moved |= n > 0;
                }
            }
            moved |= self.transport.flush(&mut self.sock, pool)?;
            self.wrote |= moved;
            if self.out_pos >= self.out.len() && !self.out.is_empty() {
                self.out_pos = 0;
                pool.give(std::mem::take(&mut self.out));
            }
            if !moved || !self.output_pending() {
                return Ok(());
            }
        }
    }

    fn discard_input(&mut self, scratch: &mut [u8], pool: &mut BufPool) -> Step {
        let mut sink = Vec::new();
        loop {
            sink.clear();
            match self
                .transport
                .read_plaintext(&mut self.sock, &mut sink, scratch, pool)
            {
                Ok(ReadOutcome::Data(_)) => {}
                Ok(ReadOutcome::WouldBlock) => {
                    self.readable = false;
                    return Step::Open;
                }
                Ok(ReadOutcome::Closed) | Err(_) => return Step::Close,
            }
        }
    }

    fn release_idle_read_buffer(&mut self, pool: &mut BufPool) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
            pool.give(std::mem::take(&mut self.rbuf));
        }
    }

    fn release_buffers(&mut self, pool: &mut BufPool) {
        pool.give(std::mem::take(&mut self.rbuf));
        pool.give(std::mem::take(&mut self.out));
        self.out_pos = 0;
    }
}
