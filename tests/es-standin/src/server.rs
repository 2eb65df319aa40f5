//! Transport: the accept loop (thread per connection; closes and re-binds the listener for the
//! down/up fault), plain HTTP or HTTPS with rustls (ring provider; server certificate and key from
//! PEM; optional client-certificate verification, required or optional), and the per-connection
//! request loop with keep-alive.

use crate::http::{self, ReadError, Response};
use crate::router;
use crate::state::Shared;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

/// Client certificate policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Connections without a valid client certificate are rejected.
    Required,
    /// A client certificate is verified when presented.
    Optional,
}

/// HTTPS settings (PEM bytes).
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Certificate chain PEM.
    pub cert_pem: Vec<u8>,
    /// Private key PEM.
    pub key_pem: Vec<u8>,
    /// CA bundle PEM for client certificates.
    pub client_ca_pem: Option<Vec<u8>>,
    /// Client certificate policy when a CA is given.
    pub client_auth: ClientAuth,
}

/// Builds the rustls server configuration.
pub fn build_tls(t: &TlsSettings) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&t.cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in PEM".into());
    }
    let key = PrivateKeyDer::from_pem_slice(&t.key_pem)
        .map_err(|e| format!("bad private key PEM: {e}"))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &t.client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca) {
                let c = c.map_err(|e| format!("bad client CA PEM: {e}"))?;
                roots.add(c).map_err(|e| format!("bad client CA: {e}"))?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = match t.client_auth {
                ClientAuth::Required => v.build(),
                ClientAuth::Optional => v.allow_unauthenticated().build(),
            }
            .map_err(|e| format!("client verifier: {e}"))?;
            builder.with_client_cert_verifier(v)
        }
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate/key: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The address that reaches a listener bound to `a` (loopback for unspecified addresses).
pub fn wake_addr(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), a.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), a.port())
        }
        _ => a,
    }
}

/// Runs the accept loop until shutdown; re-binds `addr` after a `down`.
pub fn accept_loop(
    mut listener: Option<TcpListener>,
    addr: SocketAddr,
    shared: Arc<Shared>,
    tls: Option<Arc<ServerConfig>>,
) {
    shared.faults.set_wake(wake_addr(addr));
    let stop = || shared.is_shutdown();
    while !shared.is_shutdown() {
        if shared.faults.is_down() {
            listener = None;
            shared.faults.wait_up(&stop);
            continue;
        }
        let Some(l) = listener.as_ref() else {
            match TcpListener::bind(addr) {
                Ok(l) => listener = Some(l),
                Err(_) => thread::sleep(std::time::Duration::from_millis(20)),
            }
            continue;
        };
        match l.accept() {
            Ok((s, _)) => {
                if shared.is_shutdown() || shared.faults.is_down() {
                    drop(s);
                    continue;
                }
                let sh = shared.clone();
                let tls = tls.clone();
                let _ = thread::Builder::new()
                    .name("es-standin-conn".into())
                    .spawn(move || serve(s, sh, tls));
            }
            Err(_) => thread::sleep(std::time::Duration::from_millis(5)),
        }
    }
}

struct Conn<S: Read + Write> {
    r: BufReader<S>,
}

impl<S: Read + Write> Read for Conn<S> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        self.r.read(b)
    }
}
impl<S: Read + Write> BufRead for Conn<S> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.r.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.r.consume(n)
    }
}
impl<S: Read + Write> Write for Conn<S> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.r.get_mut().write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.r.get_mut().flush()
    }
}

/// Serves the control endpoints on their own listener (stays up while the ES listener is down).
pub fn control_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.is_shutdown() {
        let Ok((s, _)) = listener.accept() else {
            continue;
        };
        let sh = shared.clone();
        let _ = thread::Builder::new()
            .name("es-standin-control".into())
            .spawn(move || {
                let mut c = Conn {
                    r: BufReader::new(s),
                };
                while let Ok(req) = http::read_request(&mut c) {
                    let resp = router::handle_control(&sh, &req);
                    if http::write_response(&mut c, &resp, req.method == "HEAD", false, false)
                        .is_err()
                    {
                        return;
                    }
                }
            });
    }
}

fn serve(s: TcpStream, shared: Arc<Shared>, tls: Option<Arc<ServerConfig>>) {
    let _ = s.set_nodelay(true);
    let id = shared.faults.register(&s);
    match tls {
        None => serve_stream(
            Conn {
                r: BufReader::new(s),
            },
            &shared,
            false,
        ),
        Some(cfg) => {
            if let Ok(conn) = ServerConnection::new(cfg) {
                let mut stream = StreamOwned::new(conn, s);
                // complete the handshake eagerly so certificate failures close the socket
                while stream.conn.is_handshaking() {
                    if stream.conn.complete_io(&mut stream.sock).is_err() {
                        break;
                    }
                }
                if !stream.conn.is_handshaking() {
                    serve_stream(
                        Conn {
                            r: BufReader::new(stream),
                        },
                        &shared,
                        true,
                    );
                }
            }
        }
    }
    if let Some(id) = id {
        shared.faults.unregister(id);
    }
}

fn serve_stream<S: Read + Write>(mut c: Conn<S>, shared: &Arc<Shared>, is_tls: bool) {
    loop {
        if shared.is_shutdown() {
            return;
        }
        let req = match http::read_request(&mut c) {
            Ok(r) => r,
            Err(ReadError::Closed) | Err(ReadError::Io(_)) => return,
            Err(ReadError::Bad(m)) => {
                let e = crate::error::EsError::illegal_argument(m);
                let _ = http::write_response(
                    &mut c,
                    &Response::json(400, &e.envelope()),
                    false,
                    false,
                    true,
                );
                return;
            }
            Err(ReadError::TooLarge) => {
                let _ = http::write_response(&mut c, &Response::empty(413), false, false, true);
                return;
            }
        };
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let gzip = shared.config.compression
            && !is_tls
            && req
                .header("accept-encoding")
                .is_some_and(|v| v.to_ascii_lowercase().contains("gzip"));
        let resp = router::handle(shared, &req);
        if shared.faults.is_down() {
            return; // connection reset by the down fault
        }
        if http::write_response(&mut c, &resp, req.method == "HEAD", gzip, close).is_err() || close
        {
            return;
        }
    }
}
