//! The unbuffered TLS session against a real rustls client over a loopback socket: handshake,
//! data both ways, buffers back in the pool once parked, capped sending, alerts, close_notify.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream as StdStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;

use super::{TlsSession, TLS_SEND_BUFFER};
use crate::net::pool::BufPool;
use crate::net::transport::ReadOutcome;
use crate::tls::test_support::{make_ca, make_leaf, TestCert};
use crate::tls::ClientAuth;

struct Pair {
    server: TlsSession,
    sock: TcpStream,
    client: rustls::ClientConnection,
    client_sock: StdStream,
    pool: BufPool,
    scratch: Vec<u8>,
    /// Plaintext the server has read.
    got: Vec<u8>,
    server_closed: bool,
}

fn pair() -> Pair {
    let ca = make_ca("transport CA");
    let leaf: TestCert = make_leaf(&ca, &["127.0.0.1"]);
    let config = crate::tls::server_config(&leaf.material(), ClientAuth::None, &[]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client_sock = StdStream::connect(listener.local_addr().unwrap()).unwrap();
    client_sock.set_nonblocking(true).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    accepted.set_nonblocking(true).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    Pair {
        server: TlsSession::new(UnbufferedServerConnection::new(config).unwrap()),
        sock: TcpStream::from_std(accepted),
        client: rustls::ClientConnection::new(Arc::new(client_config), name).unwrap(),
        client_sock,
        pool: BufPool::new(4, 16 * 1024),
        scratch: vec![0; 16 * 1024],
        got: Vec::new(),
        server_closed: false,
    }
}

impl Pair {
    /// Moves bytes both ways once; returns the plaintext the client received.
    fn step(&mut self) -> io::Result<Vec<u8>> {
        while self.client.wants_write() {
            match self.client.write_tls(&mut self.client_sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        loop {
            let outcome = self.server.read_plaintext(
                &mut self.sock,
                &mut self.got,
                &mut self.scratch,
                &mut self.pool,
            )?;
            match outcome {
                ReadOutcome::Data(_) => {}
                ReadOutcome::WouldBlock => break,
                ReadOutcome::Closed => {
                    self.server_closed = true;
                    break;
                }
            }
        }
        self.server.flush(&mut self.sock, &mut self.pool)?;
        let mut plain = Vec::new();
        match self.client.read_tls(&mut self.client_sock) {
            Ok(_) => {
                self.client
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let _ = self.client.reader().read_to_end(&mut plain);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(plain)
    }

    /// Steps until `done` holds, for at most 10 s.
    fn until(&mut self, what: &str, mut done: impl FnMut(&mut Self, &[u8]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut received = Vec::new();
        loop {
            received.extend(self.step().unwrap());
            if done(self, &received) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn handshake(&mut self) {
        self.until("the handshake", |p, _| {
            !p.server.is_handshaking() && !p.client.is_handshaking() && !p.server.wants_write()
        });
    }
}

#[test]
fn a_parked_session_holds_no_buffers() {
    let mut p = pair();
    p.handshake();
    p.client
        .writer()
        .write_all(b"GET / HTTP/1.1\r\n\r\n")
        .unwrap();
    p.until("the request", |p, _| p.got.len() == 18);
    assert_eq!(p.got, b"GET / HTTP/1.1\r\n\r\n");
    let taken = p
        .server
        .write_plaintext(b"HTTP/1.1 200 OK\r\n\r\n", &mut p.pool)
        .unwrap();
    assert_eq!(taken, 19);
    let mut answer = Vec::new();
    p.until("the response", |_, got| {
        answer = got.to_vec();
        got.len() >= 19
    });
    assert_eq!(answer, b"HTTP/1.1 200 OK\r\n\r\n");
    assert!(!p.server.wants_write());
    assert_eq!(
        p.server.buffered_capacity(),
        0,
        "a parked session gives its ciphertext buffers back to the pool"
    );
}

#[test]
fn a_large_response_is_encrypted_in_capped_pieces_and_arrives_whole() {
    let mut p = pair();
    p.handshake();
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.len() < body.len() {
        if sent < body.len() {
            let n = p
                .server
                .write_plaintext(&body[sent..], &mut p.pool)
                .unwrap();
            assert!(n <= TLS_SEND_BUFFER, "took {n} bytes at once");
            sent += n;
        }
        received.extend(p.step().unwrap());
        assert!(
            Instant::now() < deadline,
            "timed out after {} bytes",
            received.len()
        );
    }
    assert_eq!(received, body);
}

#[test]
fn garbage_is_an_error_with_an_alert_for_the_peer() {
    let mut p = pair();
    p.client_sock
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        match p
            .server
            .read_plaintext(&mut p.sock, &mut p.got, &mut p.scratch, &mut p.pool)
        {
            Err(err) => break err,
            Ok(_) => assert!(Instant::now() < deadline, "no error for plain HTTP"),
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(p.server.wants_write(), "an alert is queued for the peer");
    p.server.flush(&mut p.sock, &mut p.pool).unwrap();
    let mut alert = [0u8; 64];
    let deadline = Instant::now() + Duration::from_secs(10);
    let n = loop {
        match p.client_sock.read(&mut alert) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no alert arrived");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(n >= 7, "a whole alert record");
    assert_eq!(alert[0], 21, "content type alert");
}

#[test]
fn close_notify_both_ways() {
    let mut p = pair();
    p.handshake();
    p.server.send_close_notify(&mut p.pool);
    assert!(p.server.wants_write());
    assert!(
        p.server.write_plaintext(b"late", &mut p.pool).is_err(),
        "nothing is sent after close_notify"
    );
    p.until("the client to see close_notify", |p, _| {
        p.client.process_new_packets().unwrap().peer_has_closed()
    });
    p.client.send_close_notify();
    p.until("the server to see close_notify", |p, _| p.server_closed);
}

#[test]
fn a_refused_client_certificate_is_an_error_not_a_panic() {
    let ca = make_ca("transport CA");
    let leaf = make_leaf(&ca, &["127.0.0.1"]);
    let client_ca = make_ca("client CA");
    let config = crate::tls::server_config(
        &leaf.material(),
        ClientAuth::Required,
        std::slice::from_ref(&client_ca.cert_der),
    )
    .unwrap();
    let mut p = pair();
    p.server = TlsSession::new(UnbufferedServerConnection::new(config).unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        match p.step() {
            Err(err) => break err,
            Ok(_) => assert!(
                Instant::now() < deadline,
                "a client without a certificate was let in"
            ),
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
}
