//! One client connection of a simulated agent: a non-blocking socket bound to a 127.0.0.x source
//! address before connecting (so that 100k connections fit in the port space), a rustls
//! `ClientConnection` (or plain bytes in `--plain` mode), and the HTTP/1.1 response reader.
//! Sans-policy: the connection knows nothing of Fleet; `fleet.rs` decides what to send.
//!
//! Readiness events are hints: every call drains the socket until `WouldBlock`.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::pki_types::ServerName;
use rustls::ClientConnection;
use socket2::{Domain, Socket, Type};

/// Why a connection failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnError {
    /// connect(2) failed (refused, unreachable, no ports left).
    Connect(String),
    /// The TLS layer refused the peer or the peer sent an alert.
    Tls(String),
    /// A socket error after connecting (reset, broken pipe).
    Io(String),
    /// The peer closed before a full response.
    Closed,
    /// The response could not be parsed.
    BadResponse(String),
}

impl ConnError {
    /// A short label for the error table.
    pub fn label(&self) -> String {
        match self {
            ConnError::Connect(e) => format!("connect: {e}"),
            ConnError::Tls(e) => format!("tls: {e}"),
            ConnError::Io(e) => format!("io: {e}"),
            ConnError::Closed => "closed by server before a response".into(),
            ConnError::BadResponse(e) => format!("bad response: {e}"),
        }
    }
}

/// A complete HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// The body, gunzipped when `Content-Encoding: gzip`.
    pub body: Vec<u8>,
    /// The server said `Connection: close`.
    pub close: bool,
    /// When the read that brought its last bytes returned (not when the loop got to it).
    pub arrived_at: Instant,
}

/// A connection.
pub struct Conn {
    sock: TcpStream,
    tls: Option<Box<ClientConnection>>,
    plain_out: Vec<u8>,
    rbuf: Vec<u8>,
    interest: Interest,
    /// TCP connected (writable after connect).
    pub connected: bool,
    /// When connect(2) was called.
    pub opened_at: Instant,
    /// When the loop saw the TCP connection established (its first writable event).
    pub connected_at: Option<Instant>,
    /// When the TLS handshake completed: the read that brought the server's Finished (or the
    /// TCP connection, in plain mode).
    pub ready_at: Option<Instant>,
    /// When the last byte of the request in flight went into the socket.
    pub sent_at: Option<Instant>,
    /// A request was queued and not all of it written yet.
    pending_send: bool,
    /// When the latest read that brought bytes returned.
    last_read_at: Option<Instant>,
    /// The local (source) port the kernel chose.
    pub local_port: u16,
    /// The peer closed its side.
    pub eof: bool,
    /// Bytes of a response have arrived since the last request was written.
    pub got_bytes: bool,
}

fn io_label(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::BrokenPipe => "broken pipe".into(),
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::AddrNotAvailable => "address not available".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        _ => e.to_string(),
    }
}

impl Conn {
    /// Starts a non-blocking connect from `source` (port chosen by the kernel) to `addr`, and
    /// registers it under `token`. `tls` is None in plain mode.
    pub fn connect(
        registry: &Registry,
        token: Token,
        source: IpAddr,
        addr: SocketAddr,
        tls: Option<(&Arc<rustls::ClientConfig>, &ServerName<'static>)>,
    ) -> Result<Conn, ConnError> {
        let err = |e: io::Error| ConnError::Connect(io_label(&e));
        let opened_at = Instant::now();
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).map_err(err)?;
        socket.set_nonblocking(true).map_err(err)?;
        socket.set_tcp_nodelay(true).map_err(err)?;
        socket
            .bind(&SocketAddr::new(source, 0).into())
            .map_err(err)?;
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(115) || e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(err(e)),
        }
        let local_port = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map_or(0, |a| a.port());
        let mut sock = TcpStream::from_std(socket.into());
        let interest = Interest::READABLE | Interest::WRITABLE;
        registry.register(&mut sock, token, interest).map_err(err)?;
        let tls = match tls {
            Some((config, name)) => Some(Box::new(
                ClientConnection::new(Arc::clone(config), name.clone())
                    .map_err(|e| ConnError::Tls(e.to_string()))?,
            )),
            None => None,
        };
        Ok(Conn {
            sock,
            tls,
            plain_out: Vec::new(),
            rbuf: Vec::new(),
            interest,
            connected: false,
            opened_at,
            connected_at: None,
            ready_at: None,
            sent_at: None,
            pending_send: false,
            last_read_at: None,
            local_port,
            eof: false,
            got_bytes: false,
        })
    }

    /// Deregisters the socket (it is closed when the `Conn` is dropped).
    pub fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.sock);
    }

    /// Queues a request (before or after the handshake: rustls holds it until it can send).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        self.got_bytes = false;
        self.sent_at = None;
        self.pending_send = true;
        match &mut self.tls {
            Some(tls) => tls
                .writer()
                .write_all(bytes)
                .map_err(|e| ConnError::Tls(e.to_string())),
            None => {
                self.plain_out.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// Whether the connection is connected, past its handshake, and has nothing buffered.
    pub fn is_idle_open(&self) -> bool {
        self.connected && self.ready_at.is_some() && !self.eof && self.rbuf.is_empty()
    }

    /// Does all the I/O the socket allows now; returns an error when the connection is dead.
    /// Afterwards the caller takes complete responses with [`Conn::take_response`].
    pub fn drive(&mut self, registry: &Registry, token: Token) -> Result<(), ConnError> {
        if !self.connected {
            match self.sock.take_error() {
                Ok(Some(e)) | Err(e) => return Err(ConnError::Connect(io_label(&e))),
                Ok(None) => {}
            }
            match self.sock.peer_addr() {
                Ok(_) => {
                    self.connected = true;
                    self.connected_at = Some(Instant::now());
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(e) if e.raw_os_error() == Some(107) => return Ok(()),
                Err(e) => return Err(ConnError::Connect(io_label(&e))),
            }
        }
        self.read_all()?;
        if self.ready_at.is_none() && self.tls.is_none() {
            self.ready_at = self.connected_at;
        }
        self.write_all()?;
        let wants_write = match &self.tls {
            Some(tls) => tls.wants_write(),
            None => !self.plain_out.is_empty(),
        };
        let handshaking = self.tls.as_ref().is_some_and(|t| t.is_handshaking());
        if self.pending_send && !wants_write && !handshaking {
            self.pending_send = false;
            self.sent_at = Some(Instant::now());
        }
        let interest = if wants_write {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if interest != self.interest {
            registry
                .reregister(&mut self.sock, token, interest)
                .map_err(|e| ConnError::Io(io_label(&e)))?;
            self.interest = interest;
        }
        Ok(())
    }

    fn read_all(&mut self) -> Result<(), ConnError> {
        let mut scratch = [0u8; 16 * 1024];
        loop {
            if self.eof {
                return Ok(());
            }
            match &mut self.tls {
                Some(tls) => {
                    match tls.read_tls(&mut self.sock) {
                        Ok(0) => self.eof = true,
                        Ok(_) => self.last_read_at = Some(Instant::now()),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(ConnError::Io(io_label(&e))),
                    }
                    let state = tls.process_new_packets().map_err(|e| {
                        // Send the alert rustls queued, then report.
                        let _ = tls.write_tls(&mut self.sock);
                        ConnError::Tls(e.to_string())
                    })?;
                    if self.ready_at.is_none() && !tls.is_handshaking() {
                        self.ready_at = self.last_read_at;
                    }
                    if state.plaintext_bytes_to_read() > 0 {
                        self.got_bytes = true;
                        loop {
                            match tls.reader().read(&mut scratch) {
                                Ok(0) => break,
                                Ok(n) => self.rbuf.extend_from_slice(&scratch[..n]),
                                Err(_) => break,
                            }
                        }
                    }
                    if state.peer_has_closed() {
                        self.eof = true;
                    }
                }
                None => match self.sock.read(&mut scratch) {
                    Ok(0) => self.eof = true,
                    Ok(n) => {
                        self.got_bytes = true;
                        self.last_read_at = Some(Instant::now());
                        self.rbuf.extend_from_slice(&scratch[..n]);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(ConnError::Io(io_label(&e))),
                },
            }
        }
    }

    fn write_all(&mut self) -> Result<(), ConnError> {
        loop {
            let result = match &mut self.tls {
                Some(tls) if tls.wants_write() => tls.write_tls(&mut self.sock),
                Some(_) => return Ok(()),
                None if self.plain_out.is_empty() => return Ok(()),
                None => self.sock.write(&self.plain_out).inspect(|&n| {
                    self.plain_out.drain(..n);
                }),
            };
            match result {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ConnError::Io(io_label(&e))),
            }
        }
    }

    /// A complete response from the front of the read buffer, if one has arrived.
    pub fn take_response(&mut self) -> Option<Result<HttpResponse, ConnError>> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let head_len = match resp.parse(&self.rbuf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return None,
            Err(e) => return Some(Err(ConnError::BadResponse(e.to_string()))),
        };
        let status = resp.code.unwrap_or(0);
        let mut length = None;
        let mut gzip = false;
        let mut close = false;
        for h in resp.headers.iter() {
            let value = String::from_utf8_lossy(h.value);
            if h.name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            } else if h.name.eq_ignore_ascii_case("content-encoding") {
                gzip = value.trim().eq_ignore_ascii_case("gzip");
            } else if h.name.eq_ignore_ascii_case("connection") {
                close = value.trim().eq_ignore_ascii_case("close");
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return Some(Err(ConnError::BadResponse(
                    "chunked responses are not expected from fleet-edge".into(),
                )));
            }
        }
        let Some(length) = length else {
            return Some(Err(ConnError::BadResponse("no Content-Length".into())));
        };
        if self.rbuf.len() < head_len + length {
            return None;
        }
        let rest = self.rbuf.split_off(head_len + length);
        let mut body = std::mem::replace(&mut self.rbuf, rest);
        body.drain(..head_len);
        if gzip {
            let mut out = Vec::with_capacity(body.len() * 4);
            if let Err(e) = flate2::read::GzDecoder::new(body.as_slice()).read_to_end(&mut out) {
                return Some(Err(ConnError::BadResponse(format!("gzip: {e}"))));
            }
            body = out;
        }
        Some(Ok(HttpResponse {
            status,
            body,
            close,
            arrived_at: self.last_read_at.unwrap_or_else(Instant::now),
        }))
    }
}
