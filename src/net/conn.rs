//! One client connection: socket, transport (plain or TLS), read buffer, HTTP decoder, pending
//! output and the timer it is waiting on. `drive` runs the connection as far as it can without
//! blocking: flush output, decode buffered bytes (yielding each request to the caller, which
//! hands it to the engine), read more, and graceful close (close_notify, half-close, then
//! discard input until the peer closes or the linger timer fires, so a response is never lost
//! to a TCP reset). What a request means is not decided here: the connection only remembers how
//! its answer must be written ([`Awaiting`]). A streamed body (a file, or parts the store hands
//! over one at a time) is sent as the socket drains: the next piece is read or asked for only
//! once the previous one is written.

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
    encode_response, Body, BodyPart, Decoder, EncodeOptions, HttpDate, Limits, Method, Request,
    Response, CONTINUE_RESPONSE,
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
    /// A streamed body needs its next part (the socket took the previous one): the caller
    /// fetches it and hands it over with [`Conn::feed_part`].
    NeedPart(BodyPart),
}

/// The rest of a streamed body.
#[derive(Debug)]
enum Stream {
    /// Read from a file as the socket drains.
    File(file::FileStream),
    /// Parts still to ask for; `waiting` while one is being fetched.
    Parts {
        parts: std::collections::VecDeque<BodyPart>,
        waiting: bool,
    },
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
    /// When it was accepted, until its first request is handed to the engine (that request's
    /// deadline counts from here: the TLS handshake is part of what the agent waits).
    pub accepted: Option<std::time::Instant>,
    /// Set once the connection switched to WebSocket framing (an OpAMP collector).
    ws: Option<Box<websocket::WsSession>>,
    /// The rest of a streamed body being sent.
    stream: Option<Stream>,
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
            accepted: None,
            ws: None,
            stream: None,
        }
    }

    /// Accepted above `max_connections` (its requests are answered 429).
    pub fn over_capacity(&self) -> bool {
        self.over_capacity
    }

    fn output_pending(&self) -> bool {
        self.out_pos < self.out.len() || self.transport.wants_write() || self.stream.is_some()
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
            if let Some(part) = self.next_part() {
                return Step::NeedPart(part);
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
                if self.awaiting.is_none() {
                    match self.websocket_step(ctx) {
                        websocket::WsStep::Message(key, body) => return Step::Message(key, body),
                        websocket::WsStep::Progress => continue,
                        websocket::WsStep::NeedMore => {}
                    }
                }
            } else if !self.transport.is_handshaking() && self.awaiting.is_none() {
                let management = self.management;
                let decoded = self.decoder.decode(&mut self.rbuf, &|m: &Method, p: &str| {
                    if management {
                        crate::mgmt::body_limits(m, p)
                    } else {
                        api::body_limits(m, p)
                    }
                });
                match decoded {
                    Ok(Some(mut req)) => {
                        req.tls = !matches!(self.transport, Transport::Plain);
                        req.peer = self.sock.peer_addr().ok().map(|a| a.ip());
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
                        let too_large = matches!(
                            err,
                            crate::http::HttpError::BodyTooLarge
                                | crate::http::HttpError::DecompressedTooLarge
                        );
                        let response = match (too_large, self.decoder.failed_path()) {
                            (true, Some(api::opamp::PATH)) => api::opamp::too_large(),
                            (true, Some(path)) => {
                                api::uploads::too_large(path).unwrap_or_else(|| err.to_response())
                            }
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
        if !opts.keep_alive {
            self.close_after_flush = true;
        }
        let bodiless = opts.head || response.status < 200 || matches!(response.status, 204 | 304);
        self.stream = match &response.body {
            _ if bodiless => None,
            Body::File(f) if f.len > 0 => Some(Stream::File(file::FileStream::new(f))),
            Body::Parts(p) if !p.is_empty() => Some(Stream::Parts {
                parts: p
                    .parts
                    .iter()
                    .filter(|part| part.take > 0)
                    .cloned()
                    .collect(),
                waiting: false,
            }),
            _ => None,
        };
    }

    /// The next part of a streamed body to fetch, once everything before it is written.
    fn next_part(&mut self) -> Option<BodyPart> {
        if self.out_pos < self.out.len() || self.transport.wants_write() {
            return None;
        }
        let Some(Stream::Parts { parts, waiting }) = &mut self.stream else {
            return None;
        };
        if *waiting {
            return None;
        }
        let part = parts.pop_front()?;
        *waiting = true;
        Some(part)
    }

    /// Hands over the part asked for with [`Step::NeedPart`]: its bytes are sent next. A part
    /// that could not be read, or whose length is not the one announced, ends the connection
    /// (the `Content-Length` already sent cannot be honoured).
    pub fn feed_part(&mut self, part: Result<Vec<u8>, String>, expected: u64, pool: &mut BufPool) {
        let Some(Stream::Parts { parts, waiting }) = &mut self.stream else {
            return;
        };
        *waiting = false;
        let bytes = match part {
            Ok(bytes) if bytes.len() as u64 == expected => bytes,
            Ok(bytes) => {
                log::warn!(
                    "closing a download: a part has {} bytes, {expected} were announced",
                    bytes.len()
                );
                return self.abort_stream(pool);
            }
            Err(e) => {
                log::warn!("closing a download: a part could not be read: {e}");
                return self.abort_stream(pool);
            }
        };
        let finished = parts.is_empty();
        if self.out.is_empty() {
            pool.give(std::mem::replace(&mut self.out, bytes));
            self.out_pos = 0;
        } else {
            self.out.extend_from_slice(&bytes);
        }
        if finished {
            self.stream = None;
        }
    }

    fn abort_stream(&mut self, pool: &mut BufPool) {
        self.stream = None;
        self.out_pos = 0;
        pool.give(std::mem::take(&mut self.out));
        self.close_after_flush = true;
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
            if self.out.is_empty() && !self.transport.wants_write() {
                if let Some(Stream::File(file)) = &mut self.stream {
                    if self.out.capacity() == 0 {
                        self.out = pool.take();
                    }
                    let refilled = file.refill(&mut self.out, file::FILE_CHUNK);
                    if refilled.is_err() || file.is_done() {
                        self.stream = None;
                    }
                    refilled?;
                    continue;
                }
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
        self.stream = None;
        pool.give(std::mem::take(&mut self.rbuf));
        pool.give(std::mem::take(&mut self.out));
        self.out_pos = 0;
    }
}

#[cfg(test)]
mod sizes {
    /// The slab entry of a connection, printed for the README's per-agent budget
    /// (`--nocapture`).
    #[test]
    fn a_connection_slot_stays_small() {
        let conn = std::mem::size_of::<super::Conn>();
        let decoder = std::mem::size_of::<crate::http::Decoder>();
        println!("Conn {conn} bytes, of which the HTTP decoder {decoder}");
        assert!(conn <= 512, "Conn grew to {conn} bytes");
    }
}
