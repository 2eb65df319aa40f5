//! A rustls server session driven through rustls's unbuffered API, so that the connection owns
//! no record buffers while it is parked: ciphertext in and out lives in buffers taken from the
//! loop's `BufPool` only while bytes move, and handed back as soon as they are empty. A parked
//! TLS agent keeps only rustls's keys and state machine (see the README's per-agent budget).
//!
//! The buffered `ServerConnection` keeps a 4 KiB deframer buffer and its send/receive queues
//! for the life of the connection; with 10,000 parked agents that alone is 40 MiB.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError};

use super::ReadOutcome;
use crate::net::pool::BufPool;

/// Most ciphertext queued for sending before `write_plaintext` pushes back; a larger response is
/// encrypted in pieces as the socket drains, so a slow reader costs at most about this much.
pub const TLS_SEND_BUFFER: usize = 64 * 1024;

/// Most unprocessed ciphertext held for one connection: a handshake message may span records up
/// to 64 KiB (rustls's own cap in its buffered API), plus one record and one socket read.
const MAX_INCOMING: usize = 0xffff + 16 * 1024 + 5 + 16 * 1024;

/// Room for one record's header, nonce, content type and tag beyond its plaintext.
const RECORD_OVERHEAD: usize = 64;

/// Plaintext bytes per TLS record.
const MAX_FRAGMENT: usize = 16 * 1024;

/// One rustls server session and the ciphertext it is moving right now.
pub struct TlsSession {
    conn: UnbufferedServerConnection,
    /// Ciphertext read but not yet processed (at most a partial record between reads).
    incoming: Vec<u8>,
    /// Ciphertext waiting for the socket, sent from `outgoing_pos`.
    outgoing: Vec<u8>,
    outgoing_pos: usize,
    /// Plaintext decrypted outside a read (never expected; kept rather than lost).
    stashed: Vec<u8>,
    /// The peer's close_notify arrived.
    peer_closed: bool,
    /// Our close_notify is queued.
    close_queued: bool,
    /// A fatal TLS error happened; nothing more is processed.
    failed: bool,
}

impl TlsSession {
    /// A session with no buffers yet.
    pub fn new(conn: UnbufferedServerConnection) -> Self {
        Self {
            conn,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            outgoing_pos: 0,
            stashed: Vec::new(),
            peer_closed: false,
            close_queued: false,
            failed: false,
        }
    }

    /// True while the handshake has not completed.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// True while ciphertext waits for the socket.
    pub fn wants_write(&self) -> bool {
        self.outgoing_pos < self.outgoing.len()
    }

    /// Bytes of buffer capacity this session holds outside rustls (0 when parked).
    #[cfg(test)]
    pub fn buffered_capacity(&self) -> usize {
        self.incoming.capacity() + self.outgoing.capacity() + self.stashed.capacity()
    }

    /// Reads once from the socket and appends the plaintext it carried to `into`.
    pub fn read_plaintext(
        &mut self,
        sock: &mut TcpStream,
        into: &mut Vec<u8>,
        scratch: &mut [u8],
        pool: &mut BufPool,
    ) -> io::Result<ReadOutcome> {
        if !self.stashed.is_empty() {
            into.append(&mut self.stashed);
            return Ok(ReadOutcome::Data(into.len()));
        }
        if self.peer_closed || self.failed {
            return Ok(ReadOutcome::Closed);
        }
        let eof = match sock.read(scratch) {
            Ok(0) => true,
            Ok(n) => {
                if self.incoming.capacity() == 0 {
                    self.incoming = pool.take();
                }
                self.incoming
                    .extend_from_slice(scratch.get(..n).unwrap_or_default());
                false
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.release_incoming(pool);
                return Ok(ReadOutcome::WouldBlock);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(ReadOutcome::Data(0)),
            Err(e) => return Err(e),
        };
        let before = into.len();
        let processed = self.process(into, pool);
        self.release_incoming(pool);
        processed?;
        if self.incoming.len() > MAX_INCOMING {
            self.failed = true;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS peer sent more unprocessable data than a handshake message may hold",
            ));
        }
        let got = into.len() - before;
        if got > 0 {
            // A close_notify or FIN after the data: the next read reports the end.
            return Ok(ReadOutcome::Data(got));
        }
        if eof || self.peer_closed {
            return Ok(ReadOutcome::Closed);
        }
        Ok(ReadOutcome::Data(0))
    }

    /// Encrypts as much of `data` as the send cap allows; returns how much was taken.
    pub fn write_plaintext(&mut self, data: &[u8], pool: &mut BufPool) -> io::Result<usize> {
        if self.failed || self.close_queued {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let queued = self.outgoing.len() - self.outgoing_pos;
        let room = TLS_SEND_BUFFER.saturating_sub(queued);
        let chunk = data.get(..data.len().min(room)).unwrap_or_default();
        if chunk.is_empty() {
            return Ok(0);
        }
        self.with_write_traffic(pool, |traffic, out| {
            let reserve = chunk.len() + chunk.len().div_ceil(MAX_FRAGMENT) * RECORD_OVERHEAD;
            append_with(out, reserve, |buf| traffic.encrypt(chunk, buf))
                .map_err(encrypt_error)
                .map(|_| chunk.len())
        })
    }

    /// Queues a close_notify alert (after the handshake; a handshaking session just closes).
    pub fn send_close_notify(&mut self, pool: &mut BufPool) {
        if self.close_queued || self.failed || self.is_handshaking() {
            return;
        }
        let queued = self.with_write_traffic(pool, |traffic, out| {
            append_with(out, RECORD_OVERHEAD, |buf| traffic.queue_close_notify(buf))
                .map_err(encrypt_error)
                .map(|_| 0)
        });
        if queued.is_ok() {
            self.close_queued = true;
        }
    }

    /// Writes queued ciphertext until done or the socket pushes back; returns true if anything
    /// was written. The buffer goes back to the pool once empty.
    pub fn flush(&mut self, sock: &mut TcpStream, pool: &mut BufPool) -> io::Result<bool> {
        let mut wrote = false;
        while let Some(rest) = self.outgoing.get(self.outgoing_pos..) {
            if rest.is_empty() {
                break;
            }
            match sock.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.outgoing_pos += n;
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.outgoing_pos >= self.outgoing.len() && self.outgoing.capacity() > 0 {
            self.outgoing_pos = 0;
            pool.give(std::mem::take(&mut self.outgoing));
        }
        Ok(wrote)
    }

    /// Runs rustls over `incoming` until it needs more bytes from the peer: decrypted data goes
    /// to `into`, handshake records and alerts to `outgoing`.
    fn process(&mut self, into: &mut Vec<u8>, pool: &mut BufPool) -> io::Result<()> {
        loop {
            let status = self.conn.process_tls_records(&mut self.incoming);
            let mut discard = status.discard;
            let state = match status.state {
                Ok(state) => state,
                Err(err) => {
                    self.incoming.drain(..discard.min(self.incoming.len()));
                    return Err(self.fail(err, pool));
                }
            };
            let mut done = false;
            match state {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        match record {
                            Ok(record) => {
                                discard += record.discard;
                                into.extend_from_slice(record.payload);
                            }
                            Err(err) => {
                                drop(traffic);
                                self.incoming.drain(..discard.min(self.incoming.len()));
                                return Err(self.fail(err, pool));
                            }
                        }
                    }
                }
                ConnectionState::ReadEarlyData(mut early) => {
                    while let Some(record) = early.next_record() {
                        let record = record.map_err(invalid)?;
                        discard += record.discard;
                        into.extend_from_slice(record.payload);
                    }
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    take_buffer(&mut self.outgoing, pool);
                    append_with(&mut self.outgoing, 4096, |buf| encode.encode(buf))
                        .map_err(encode_error)?;
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    // The records are in `outgoing`, ahead of anything queued later; `flush`
                    // sends them in order.
                    transmit.done();
                }
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    self.peer_closed = true;
                    done = true;
                }
                ConnectionState::BlockedHandshake | ConnectionState::WriteTraffic(_) => done = true,
                _ => {
                    done = true;
                }
            }
            self.incoming.drain(..discard.min(self.incoming.len()));
            if done {
                return Ok(());
            }
        }
    }

    /// Brings rustls to its `WriteTraffic` state and runs `write` with it and the outgoing
    /// buffer. Returns 0 when the session cannot send application data yet.
    fn with_write_traffic(
        &mut self,
        pool: &mut BufPool,
        write: impl FnOnce(
            &mut rustls::unbuffered::WriteTraffic<'_, rustls::server::ServerConnectionData>,
            &mut Vec<u8>,
        ) -> io::Result<usize>,
    ) -> io::Result<usize> {
        loop {
            let status = self.conn.process_tls_records(&mut self.incoming);
            let mut discard = status.discard;
            let state = match status.state {
                Ok(state) => state,
                Err(err) => {
                    self.incoming.drain(..discard.min(self.incoming.len()));
                    return Err(self.fail(err, pool));
                }
            };
            match state {
                ConnectionState::WriteTraffic(mut traffic) => {
                    take_buffer(&mut self.outgoing, pool);
                    let result = write(&mut traffic, &mut self.outgoing);
                    self.incoming.drain(..discard.min(self.incoming.len()));
                    return result;
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    take_buffer(&mut self.outgoing, pool);
                    append_with(&mut self.outgoing, 4096, |buf| encode.encode(buf))
                        .map_err(encode_error)?;
                }
                ConnectionState::TransmitTlsData(transmit) => transmit.done(),
                // Records decrypted here belong to the next read (the read path leaves at most
                // a partial record, so this is not expected).
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(invalid)?;
                        discard += record.discard;
                        self.stashed.extend_from_slice(record.payload);
                    }
                }
                ConnectionState::PeerClosed => self.peer_closed = true,
                _ => {
                    self.incoming.drain(..discard.min(self.incoming.len()));
                    return Ok(0);
                }
            }
            self.incoming.drain(..discard.min(self.incoming.len()));
        }
    }

    /// Records a fatal error and queues the alert rustls prepared for the peer.
    fn fail(&mut self, err: rustls::Error, pool: &mut BufPool) -> io::Error {
        self.failed = true;
        // rustls hands out the alert it queued on the next call, before it looks at any input;
        // that call gets an empty buffer and is the only one (later calls would deframe again,
        // and rustls asserts that a session sends one fatal alert).
        let status = self.conn.process_tls_records(&mut []);
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) = status.state {
            take_buffer(&mut self.outgoing, pool);
            let _ = append_with(&mut self.outgoing, RECORD_OVERHEAD, |buf| {
                encode.encode(buf)
            });
        }
        invalid(err)
    }

    fn release_incoming(&mut self, pool: &mut BufPool) {
        if self.incoming.is_empty() && self.incoming.capacity() > 0 {
            pool.give(std::mem::take(&mut self.incoming));
        }
    }
}

/// Errors that carry how much room they needed.
trait NeedsRoom {
    fn required_size(&self) -> Option<usize>;
}

impl NeedsRoom for EncodeError {
    fn required_size(&self) -> Option<usize> {
        match self {
            EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
                Some(*required_size)
            }
            _ => None,
        }
    }
}

impl NeedsRoom for EncryptError {
    fn required_size(&self) -> Option<usize> {
        match self {
            EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
                Some(*required_size)
            }
            _ => None,
        }
    }
}

/// Lets `write` fill the spare end of `out` (at least `reserve` bytes, more if it asks for
/// them once) and keeps what it wrote.
fn append_with<E: NeedsRoom>(
    out: &mut Vec<u8>,
    reserve: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
) -> Result<usize, E> {
    let start = out.len();
    out.resize(start + reserve, 0);
    let result = match write(out.get_mut(start..).unwrap_or_default()) {
        Err(err) => match err.required_size() {
            Some(needed) => {
                out.resize(start + needed, 0);
                write(out.get_mut(start..).unwrap_or_default())
            }
            None => Err(err),
        },
        ok => ok,
    };
    out.truncate(start + *result.as_ref().unwrap_or(&0));
    result
}

fn take_buffer(buf: &mut Vec<u8>, pool: &mut BufPool) {
    if buf.capacity() == 0 {
        *buf = pool.take();
    }
}

fn invalid(err: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

fn encode_error(err: EncodeError) -> io::Error {
    io::Error::other(err)
}

fn encrypt_error(err: EncryptError) -> io::Error {
    io::Error::other(err)
}

#[cfg(test)]
mod tests;
