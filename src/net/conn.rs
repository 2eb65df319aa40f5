//! One client connection: socket, transport (plain or TLS), read buffer, HTTP decoder, pending
//! output and the timer it is waiting on. `drive` runs the connection as far as it can without
//! blocking: flush output, decode buffered bytes (yielding each request to the caller, which
//! hands it to the engine), read more, and graceful close (close_notify, half-close, then
//! discard input until the peer closes or the linger timer fires, so a response is never lost
//! to a TCP reset). What a request means is not decided here: the connection only remembers how
//! its answer must be written ([`Awaiting`]).

use std::io;
use std::net::Shutdown;

use mio::net::TcpStream;

mod file;
mod websocket;

use super::pool::BufPool;
use super::transport::{ReadOutcome, Transport};
use crate::api;
use crate::backend::ApiKey;
use crate::core::deadlines::Ticket;
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
}

/// Pipelined bytes a connection may buffer while its request is in flight; more waits in the
/// socket (backpressure).
const MAX_BUFFERED_WHILE_BUSY: usize = 64 * 1024;

/// How the answer to the request being decided elsewhere must be written.
#[derive(Clone, Copy, Debug)]
pub struct Awaiting {
    /// Whether the request allowed keep-alive (and the connection may keep it).
    keep_alive: bool,
    /// Whether the client accepts gzip.
    accepts_gzip: bool,
    /// A HEAD request: the answer has no body.
    head: bool,
}

/// What `drive` stopped for.
#[derive(Debug)]
pub enum Step {
    /// Keep it; wait for readiness or a timer.
    Open,
    /// Remove it from the slab and drop the socket.
    Close,
    /// A request was decoded: the caller decides it and drives the connection again (nothing
    /// more is decoded until it is answered).
    Request(Request),
    /// A WebSocket message arrived (with the token the upgrade checked): the same.
    Message(ApiKey, Vec<u8>),
}

/// What `drive` needs from the server besides the connection itself.
pub struct DriveCtx<'a> {
    /// Buffer pool for read and write buffers.
    pub pool: &'a mut BufPool,
    /// Scratch space for socket reads.
    pub scratch: &'a mut [u8],
    /// True once shutdown has begun: responses carry `Connection: close`.
    pub draining: bool,
    /// The `Date` header for responses written now (the loop's per-second cache).
    pub date: HttpDate,
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
    /// The request the engine is deciding, if any.
    pub awaiting: Option<Awaiting>,
    /// Accepted on the management listener: routed to the management API.
    pub management: bool,
    /// Accepted on a reserved descriptor while the process is out of them: `GET /api/status` is
    /// answered, every other request gets the over-capacity 429 (the connection is over capacity).
    pub reserve: bool,
    /// The armed timer, if any, and its ticket.
    pub timer: Option<(Ticket, TimerKind)>,
    /// Set once the connection switched to WebSocket framing (an OpAMP collector).
    ws: Option<Box<websocket::WsSession>>,
    /// The rest of a file body being sent (refills `out` as the socket drains).
    file_out: Option<file::FileStream>,
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
            awaiting: None,
            management: false,
            reserve: false,
            ws: None,
            file_out: None,
        }
    }

    /// Accepted above `max_connections` (its requests are answered 429).
    pub fn over_capacity(&self) -> bool {
        self.over_capacity
    }

    fn output_pending(&self) -> bool {
        self.out_pos < self.out.len() || self.transport.wants_write() || self.file_out.is_some()
    }

    /// True between requests: nothing buffered, nothing to send, handshake done.
    pub fn is_idle(&self) -> bool {
        self.awaiting.is_none()
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
        } else if self.awaiting.is_some() {
            // The engine keeps the deadline of a parked checkin; a job has the backend's.
            None
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
        if self.awaiting.is_none() && (self.is_idle() || self.transport.is_handshaking()) {
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
                self.transport.send_close_notify();
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
                return self.discard_input(ctx.scratch);
            }
            if self.ws.is_some() {
                if self.awaiting.is_none() {
                    match self.websocket_step(ctx) {
                        websocket::WsStep::Message(key, body) => return Step::Message(key, body),
                        websocket::WsStep::Progress => continue,
                        websocket::WsStep::NeedMore => {}
                    }
                }
            } else if !self.transport.is_handshaking() && self.awaiting.is_none() {
                let decoded = self.decoder.decode(&mut self.rbuf, &|m: &Method, p: &str| {
                    api::body_limits(m, p)
                });
                match decoded {
                    Ok(Some(mut req)) => {
                        req.tls = !matches!(self.transport, Transport::Plain);
                        self.awaiting = Some(Awaiting {
                            keep_alive: req.keep_alive && !ctx.draining && !self.over_capacity,
                            accepts_gzip: req.accepts_gzip(),
                            head: req.method == Method::Head,
                        });
                        return Step::Request(req);
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
            if self.awaiting.is_some() && self.rbuf.len() >= MAX_BUFFERED_WHILE_BUSY {
                return Step::Open;
            }
            if self.rbuf.capacity() == 0 {
                self.rbuf = ctx.pool.take();
            }
            match self
                .transport
                .read_plaintext(&mut self.sock, &mut self.rbuf, ctx.scratch)
            {
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
                    let _ = self.transport.flush(&mut self.sock);
                    return Step::Close;
                }
            }
        }
    }

    /// Writes `response` (headers complete) as the answer to the awaited request.
    pub fn complete(
        &mut self,
        response: &Response,
        draining: bool,
        date: HttpDate,
        pool: &mut BufPool,
    ) {
        let Some(awaiting) = self.awaiting.take() else {
            return;
        };
        let opts = ResponseOptions {
            keep_alive: awaiting.keep_alive && !draining,
            gzip: awaiting.accepts_gzip,
            head: awaiting.head,
            date,
        };
        self.queue(response, opts, pool);
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
        if let (crate::http::Body::File(body), false) = (&response.body, opts.head) {
            self.file_out = Some(file::FileStream::new(body));
        }
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
            self.refill_from_file(pool)?;
            if let Some(rest) = self.out.get(self.out_pos..) {
                if !rest.is_empty() {
                    let n = self.transport.write_plaintext(&mut self.sock, rest)?;
                    self.out_pos += n;
                    moved |= n > 0;
                }
            }
            moved |= self.transport.flush(&mut self.sock)?;
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

    /// Once `out` is drained, puts the next chunk of a file body in it.
    fn refill_from_file(&mut self, pool: &mut BufPool) -> io::Result<()> {
        let Some(stream) = self.file_out.as_mut() else {
            return Ok(());
        };
        if self.out_pos < self.out.len() {
            return Ok(());
        }
        if self.out.capacity() == 0 {
            self.out = pool.take();
        }
        self.out.clear();
        self.out_pos = 0;
        let refilled = stream.refill(&mut self.out, file::FILE_CHUNK);
        if refilled.is_err() || stream.is_done() {
            self.file_out = None;
        }
        refilled
    }

    fn discard_input(&mut self, scratch: &mut [u8]) -> Step {
        let mut sink = Vec::new();
        loop {
            sink.clear();
            match self
                .transport
                .read_plaintext(&mut self.sock, &mut sink, scratch)
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
