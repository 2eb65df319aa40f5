//! A minimal blocking HTTP/1.1 client (one connection per request, plain or TLS with a CA, an
//! insecure mode, and an optional client certificate) used by the seeding helper, the `seed`
//! subcommand and tests. Not a general-purpose client.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
    StreamOwned,
};
use serde_json::Value;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

/// TLS options of the client.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// CA bundle PEM to trust.
    pub ca_pem: Option<Vec<u8>>,
    /// Accept any server certificate.
    pub insecure: bool,
    /// Client certificate and key PEM.
    pub client_cert: Option<(Vec<u8>, Vec<u8>)>,
}

/// A response.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    /// Status code.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl ClientResponse {
    /// Body as JSON (`Null` when empty or invalid).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// First header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The client.
#[derive(Clone)]
pub struct Client {
    host: String,
    port: u16,
    tls: Option<Arc<ClientConfig>>,
    server_name: String,
    auth: Option<String>,
    /// Read timeout per request.
    pub timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Client({}:{}, tls={})",
            self.host,
            self.port,
            self.tls.is_some()
        )
    }
}

#[derive(Debug)]
struct AcceptAll(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAll {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl Client {
    /// A client for `url` (`http://host:port` or `https://host:port`).
    pub fn new(url: &str, tls: Option<ClientTls>) -> Result<Client, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or("url must start with http:// or https://")?;
        let hostport = rest.trim_end_matches('/');
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_start_matches('[').trim_end_matches(']').to_string(),
                p.parse().map_err(|_| "bad port")?,
            ),
            None => (
                hostport.to_string(),
                if scheme == "https" { 443 } else { 80 },
            ),
        };
        let tls = if scheme == "https" {
            let t = tls.unwrap_or_default();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let b = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?;
            let b = if t.insecure {
                b.dangerous()
                    .with_custom_certificate_verifier(Arc::new(AcceptAll(provider)))
            } else {
                let mut roots = RootCertStore::empty();
                if let Some(ca) = &t.ca_pem {
                    for c in CertificateDer::pem_slice_iter(ca) {
                        roots
                            .add(c.map_err(|e| e.to_string())?)
                            .map_err(|e| e.to_string())?;
                    }
                }
                b.with_root_certificates(roots)
            };
            let cfg = match &t.client_cert {
                Some((cert, key)) => {
                    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
                        .collect::<Result<_, _>>()
                        .map_err(|e| e.to_string())?;
                    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| e.to_string())?;
                    b.with_client_auth_cert(certs, key)
                        .map_err(|e| e.to_string())?
                }
                None => b.with_no_client_auth(),
            };
            Some(Arc::new(cfg))
        } else {
            None
        };
        Ok(Client {
            server_name: host.clone(),
            host,
            port,
            tls,
            auth: None,
            timeout: Duration::from_secs(600),
        })
    }

    /// Sets the `Authorization` header value used by default.
    pub fn with_auth(mut self, header: &str) -> Client {
        self.auth = Some(header.to_string());
        self
    }

    /// Sends a request; `headers` override the default `Authorization`.
    pub fn request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> io::Result<ClientResponse> {
        let sock = TcpStream::connect((self.host.as_str(), self.port))?;
        sock.set_read_timeout(Some(self.timeout))?;
        let _ = sock.set_nodelay(true);
        let mut head = format!(
            "{method} {path_and_query} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n",
            self.host, self.port
        );
        let has_auth = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
        if let (false, Some(a)) = (has_auth, &self.auth) {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                head.push_str("Content-Type: application/json\r\n");
            }
            head.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if let Some(b) = body {
            out.extend_from_slice(b);
        }
        match &self.tls {
            None => exchange(sock, &out, method == "HEAD"),
            Some(cfg) => {
                let name = ServerName::try_from(self.server_name.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
                let conn = ClientConnection::new(cfg.clone(), name)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                exchange(StreamOwned::new(conn, sock), &out, method == "HEAD")
            }
        }
    }

    /// Sends a JSON request and returns status and JSON body.
    pub fn json(&self, method: &str, path: &str, body: Option<&Value>) -> io::Result<(u16, Value)> {
        let b = body.map(|v| serde_json::to_vec(v).unwrap_or_default());
        let r = self.request(method, path, &[], b.as_deref())?;
        Ok((r.status, r.json()))
    }
}

fn exchange<S: Read + Write>(mut s: S, out: &[u8], head_only: bool) -> io::Result<ClientResponse> {
    s.write_all(out)?;
    s.flush()?;
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line)?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l)? == 0 || l == "\r\n" {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut body = Vec::new();
    if !head_only {
        match headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
        {
            Some(n) => {
                body.resize(n, 0);
                r.read_exact(&mut body)?;
            }
            None => {
                let _ = r.read_to_end(&mut body);
            }
        }
    }
    Ok(ClientResponse {
        status,
        headers,
        body,
    })
}
