//! The byte pipe under one connection: plain TCP or a rustls server session over it. The rest of
//! the loop sees only plaintext in (`read_plaintext`) and plaintext out (`write_plaintext` +
//! `flush`), whichever it is.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use rustls::ServerConnection;

/// Most plaintext rustls buffers for sending before `write_plaintext` pushes back; a response
/// larger than this is fed in pieces as the socket drains, so a slow reader costs at most this
/// much inside rustls.
const TLS_SEND_BUFFER: usize = 64 * 1024;

/// Outcome of one attempt to read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Appended this many plaintext bytes (may be 0 when only TLS handshake records arrived).
    Data(usize),
    /// Nothing more to read until the socket is readable again.
    WouldBlock,
    /// The peer finished sending (FIN or TLS close_notify).
    Closed,
}

/// Plain TCP or TLS.
pub enum Transport {
    /// Plain HTTP (`--fleet-server-insecure-http`).
    Plain,
    /// A rustls server session; boxed so idle slab entries stay small.
    Tls(Box<ServerConnection>),
}

impl Transport {
    /// A TLS transport with the send-buffer cap applied.
    pub fn tls(mut session: ServerConnection) -> Self {
        session.set_buffer_limit(Some(TLS_SEND_BUFFER));
        Transport::Tls(Box::new(session))
    }

    /// True while the TLS handshake has not completed.
    pub fn is_handshaking(&self) -> bool {
        match self {
            Transport::Plain => false,
            Transport::Tls(s) => s.is_handshaking(),
        }
    }

    /// True when TLS records are waiting to go out (handshake messages, alerts, data).
    pub fn wants_write(&self) -> bool {
        match self {
            Transport::Plain => false,
            Transport::Tls(s) => s.wants_write(),
        }
    }

    /// Reads once from the socket and appends any plaintext to `into` through `scratch`.
    pub fn read_plaintext(
        &mut self,
        sock: &mut TcpStream,
        into: &mut Vec<u8>,
        scratch: &mut [u8],
    ) -> io::Result<ReadOutcome> {
        match self {
            Transport::Plain => match sock.read(scratch) {
                Ok(0) => Ok(ReadOutcome::Closed),
                Ok(n) => {
                    into.extend_from_slice(scratch.get(..n).unwrap_or_default());
                    Ok(ReadOutcome::Data(n))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(ReadOutcome::Data(0)),
                Err(e) => Err(e),
            },
            Transport::Tls(s) => read_tls(s, sock, into, scratch),
        }
    }

    /// Offers plaintext for sending; returns how much was taken (TLS may take less than all).
    pub fn write_plaintext(&mut self, sock: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain => match sock.write(data) {
                Ok(n) => Ok(n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    Ok(0)
                }
                Err(e) => Err(e),
            },
            Transport::Tls(s) => s.writer().write(data),
        }
    }

    /// Writes buffered TLS records to the socket. Returns true if anything was written.
    pub fn flush(&mut self, sock: &mut TcpStream) -> io::Result<bool> {
        let Transport::Tls(s) = self else {
            return Ok(false);
        };
        let mut wrote = false;
        while s.wants_write() {
            match s.write_tls(sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => wrote = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(wrote)
    }

    /// Queues a TLS close_notify (no-op for plain TCP).
    pub fn send_close_notify(&mut self) {
        if let Transport::Tls(s) = self {
            s.send_close_notify();
        }
    }
}

fn read_tls(
    s: &mut ServerConnection,
    sock: &mut TcpStream,
    into: &mut Vec<u8>,
    scratch: &mut [u8],
) -> io::Result<ReadOutcome> {
    let eof = match s.read_tls(sock) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            return drain_plaintext(s, into, scratch, false)
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(ReadOutcome::Data(0)),
        Err(e) => return Err(e),
    };
    if let Err(err) = s.process_new_packets() {
        // rustls has queued an alert for the peer; the caller flushes it before closing.
        return Err(io::Error::new(io::ErrorKind::InvalidData, err));
    }
    match drain_plaintext(s, into, scratch, eof)? {
        ReadOutcome::WouldBlock if eof => Ok(ReadOutcome::Closed),
        ReadOutcome::WouldBlock => Ok(ReadOutcome::Data(0)),
        other => Ok(other),
    }
}

fn drain_plaintext(
    s: &mut ServerConnection,
    into: &mut Vec<u8>,
    scratch: &mut [u8],
    eof: bool,
) -> io::Result<ReadOutcome> {
    let mut total = 0;
    loop {
        match s.reader().read(scratch) {
            Ok(0) => return Ok(ReadOutcome::Closed),
            Ok(n) => {
                into.extend_from_slice(scratch.get(..n).unwrap_or_default());
                total += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(if total > 0 {
                    ReadOutcome::Data(total)
                } else {
                    ReadOutcome::WouldBlock
                })
            }
            // TCP FIN without close_notify: treat as the end of input.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Ok(if total > 0 && !eof {
                    ReadOutcome::Data(total)
                } else {
                    ReadOutcome::Closed
                })
            }
            Err(e) => return Err(e),
        }
    }
}
