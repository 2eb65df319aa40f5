//! Minimal HTTP/1.1 clients for tests, over plain TCP or rustls (ring provider), reading
//! responses framed by Content-Length.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A parsed response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One client connection.
pub struct Client {
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
}

fn tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    // Bound every wait: a broken server fails the test instead of hanging it.
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.set_write_timeout(Some(Duration::from_secs(20)))?;
    Ok(s)
}

/// rustls client configuration trusting `roots`, optionally presenting a client identity.
pub fn tls_config(
    roots: &[CertificateDer<'static>],
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(store);
    let config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

impl Client {
    pub fn plain(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self {
            stream: Box::new(tcp(addr)?),
            buf: Vec::new(),
        })
    }

    /// TLS to `addr`, verifying the server as `localhost`; the handshake completes here.
    pub fn tls(addr: SocketAddr, config: Arc<ClientConfig>) -> io::Result<Self> {
        let sock = tcp(addr)?;
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Self {
            stream: Box::new(stream),
            buf: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Reads one response (Content-Length framed; no body for 204/304/HEAD is not handled).
    pub fn read_response(&mut self) -> io::Result<HttpResponse> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head_len) = parsed
                .parse(&self.buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                let status = parsed.code.unwrap_or(0);
                let headers: Vec<(String, String)> = parsed
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
                while self.buf.len() < head_len + len {
                    self.fill()?;
                }
                let body = self.buf[head_len..head_len + len].to_vec();
                self.buf.drain(..head_len + len);
                return Ok(HttpResponse {
                    status,
                    headers,
                    body,
                });
            }
            self.fill()?;
        }
    }

    /// Reads the response to a `HEAD` request: its head only (a `Content-Length` there announces
    /// what a `GET` would send; no body follows).
    pub fn read_head_response(&mut self) -> io::Result<HttpResponse> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head_len = end + 4;
                let mut headers = [httparse::EMPTY_HEADER; 64];
                let mut parsed = httparse::Response::new(&mut headers);
                parsed
                    .parse(&self.buf[..head_len])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let response = HttpResponse {
                    status: parsed.code.unwrap_or(0),
                    headers: parsed
                        .headers
                        .iter()
                        .map(|h| {
                            let value = String::from_utf8_lossy(h.value).into_owned();
                            (h.name.to_owned(), value)
                        })
                        .collect(),
                    body: Vec::new(),
                };
                self.buf.drain(..head_len);
                return Ok(response);
            }
            self.fill()?;
        }
    }

    /// One request, one response.
    pub fn request(&mut self, bytes: &[u8]) -> io::Result<HttpResponse> {
        self.send(bytes)?;
        self.read_response()
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Reads until the peer closes; Ok(bytes received) on a clean or reset close.
    pub fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        let mut all = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(all),
                Ok(n) => all.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(all),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(all),
                Err(e) => return Err(e),
            }
        }
    }
}
