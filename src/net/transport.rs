//! The byte pipe under one connection: plain TCP or a rustls server session over it. The rest of
//! the loop sees only plaintext in (`read_plaintext`) and plaintext out (`write_plaintext` +
//! `flush`), whichever it is.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use rustls::server::UnbufferedServerConnection;

mod tls;

use super::pool::BufPool;
use tls::TlsSession;

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
    Tls(Box<TlsSession>),
}

impl Transport {
    /// A TLS transport over a new unbuffered rustls session.
    pub fn tls(session: UnbufferedServerConnection) -> Self {
        Transport::Tls(Box::new(TlsSession::new(session)))
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

    /// Reads once from the socket and appends any plaintext to `into` through `scratch`; TLS
    /// takes its ciphertext buffer from `pool` only while a record is incomplete.
    pub fn read_plaintext(
        &mut self,
        sock: &mut TcpStream,
        into: &mut Vec<u8>,
        scratch: &mut [u8],
        pool: &mut BufPool,
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
            Transport::Tls(s) => s.read_plaintext(sock, into, scratch, pool),
        }
    }

    /// Offers plaintext for sending; returns how much was taken (TLS may take less than all).
    pub fn write_plaintext(
        &mut self,
        sock: &mut TcpStream,
        data: &[u8],
        pool: &mut BufPool,
    ) -> io::Result<usize> {
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
            Transport::Tls(s) => s.write_plaintext(data, pool),
        }
    }

    /// Writes buffered TLS records to the socket. Returns true if anything was written.
    pub fn flush(&mut self, sock: &mut TcpStream, pool: &mut BufPool) -> io::Result<bool> {
        match self {
            Transport::Plain => Ok(false),
            Transport::Tls(s) => s.flush(sock, pool),
        }
    }

    /// Queues a TLS close_notify (no-op for plain TCP).
    pub fn send_close_notify(&mut self, pool: &mut BufPool) {
        if let Transport::Tls(s) = self {
            s.send_close_notify(pool);
        }
    }
}

#[cfg(test)]
mod sizes {
    /// The fixed part of a TLS connection: the boxed session (rustls's unbuffered connection and
    /// the pump around it), printed for the README's per-agent budget (`--nocapture`).
    #[test]
    fn a_tls_session_box_stays_small() {
        let session = std::mem::size_of::<super::TlsSession>();
        let rustls = std::mem::size_of::<rustls::server::UnbufferedServerConnection>();
        println!("TlsSession {session} bytes, of which UnbufferedServerConnection {rustls}");
        assert!(session <= 1200, "TlsSession grew to {session} bytes");
    }
}
