//! The yardsticks measured in-process, in the same run: the raw rustls handshake rate on one
//! core (a rustls server and client handshaking in memory on this one thread, with the server's
//! own `ServerConfig` built by `fleet_edge::tls` from its certificate and key, and the agents'
//! client configuration: full handshakes, no resumption), the time the server side alone spends
//! per handshake, and the heap a completed TLS session keeps (RSS growth per retained
//! `ServerConnection` / `ClientConnection`).

use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

/// The server's TLS configuration, built as fleet-edge builds it, from `<data-dir>/certs/`.
pub fn server_config(data_dir: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs = data_dir.join("certs");
    let material =
        fleet_edge::tls::load_material(&certs.join("server.crt"), &certs.join("server.key"), None)
            .map_err(|e| format!("cannot load the server certificate: {e}"))?;
    fleet_edge::tls::server_config(&material, fleet_edge::tls::ClientAuth::None, &[])
        .map_err(|e| format!("cannot build the server TLS configuration: {e}"))
}

/// The agents' TLS configuration: trust the server's CA, TLS 1.2 and 1.3, no ALPN, no session
/// resumption (Go's client keeps no session cache by default, so every connection is a full
/// handshake).
pub fn client_config(ca_path: &Path) -> Result<Arc<ClientConfig>, String> {
    let cas = fleet_edge::tls::load_certificate_authorities(&[ca_path.to_path_buf()])
        .map_err(|e| format!("cannot load the CA: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca)
            .map_err(|e| format!("bad CA certificate: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Moves every TLS byte one side has to send into the other; returns the time spent in the
/// server's calls when `server_is_receiver`.
fn pump(
    from: &mut dyn FnMut(&mut Vec<u8>) -> io::Result<usize>,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    buf.clear();
    while from(buf)? > 0 {}
    Ok(())
}

fn feed(
    data: &[u8],
    read_tls: &mut dyn FnMut(&mut dyn Read) -> io::Result<usize>,
) -> io::Result<()> {
    let mut rest = data;
    while !rest.is_empty() {
        let n = read_tls(&mut rest)?;
        if n == 0 {
            break;
        }
    }
    Ok(())
}

fn err(e: rustls::Error) -> io::Error {
    io::Error::other(e.to_string())
}

/// One complete in-memory handshake; returns the connections and the time the server side took.
fn handshake(
    server_cfg: &Arc<ServerConfig>,
    client_cfg: &Arc<ClientConfig>,
    name: &ServerName<'static>,
) -> io::Result<(ServerConnection, ClientConnection, Duration)> {
    let mut server_time = Duration::ZERO;
    let t = Instant::now();
    let mut server = ServerConnection::new(Arc::clone(server_cfg)).map_err(err)?;
    server_time += t.elapsed();
    let mut client = ClientConnection::new(Arc::clone(client_cfg), name.clone()).map_err(err)?;
    let mut buf = Vec::with_capacity(8192);
    for _ in 0..16 {
        if client.wants_write() {
            pump(&mut |b| client.write_tls(b), &mut buf)?;
            let t = Instant::now();
            feed(&buf, &mut |r| server.read_tls(r))?;
            server.process_new_packets().map_err(err)?;
            server_time += t.elapsed();
        }
        if server.wants_write() {
            let t = Instant::now();
            pump(&mut |b| server.write_tls(b), &mut buf)?;
            server_time += t.elapsed();
            feed(&buf, &mut |r| client.read_tls(r))?;
            client.process_new_packets().map_err(err)?;
        }
        if !client.is_handshaking()
            && !server.is_handshaking()
            && !client.wants_write()
            && !server.wants_write()
        {
            return Ok((server, client, server_time));
        }
    }
    Err(io::Error::other("handshake did not complete"))
}

/// The raw handshake yardstick.
#[derive(Debug, Clone, Copy)]
pub struct RawRate {
    /// Handshakes completed.
    pub handshakes: u64,
    /// Full handshakes per second, client and server on this one thread.
    pub per_sec: f64,
    /// Handshakes per second if the core did only the server side.
    pub server_only_per_sec: f64,
    /// The negotiated protocol, e.g. "TLSv1_3".
    pub protocol: &'static str,
}

/// Handshakes in a loop for `dur` on this thread.
pub fn handshake_rate(
    server_cfg: &Arc<ServerConfig>,
    client_cfg: &Arc<ClientConfig>,
    name: &ServerName<'static>,
    dur: Duration,
) -> io::Result<RawRate> {
    let start = Instant::now();
    let mut n = 0u64;
    let mut server_time = Duration::ZERO;
    let mut protocol = "?";
    while start.elapsed() < dur {
        let (server, _client, took) = handshake(server_cfg, client_cfg, name)?;
        if n == 0 {
            protocol = match server.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
                _ => "?",
            };
        }
        server_time += took;
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(RawRate {
        handshakes: n,
        per_sec: n as f64 / secs,
        server_only_per_sec: n as f64 / server_time.as_secs_f64().max(1e-9),
        protocol,
    })
}

/// RSS growth per retained completed server-side session (`ServerConnection` after its
/// handshake, with its buffers), in bytes; the client side of each pair is dropped at once.
pub fn server_session_bytes(
    server_cfg: &Arc<ServerConfig>,
    client_cfg: &Arc<ClientConfig>,
    name: &ServerName<'static>,
    count: usize,
) -> io::Result<f64> {
    let rss = || crate::server::status_field(std::process::id(), "VmRSS:").unwrap_or(0) * 1024;
    // Warm the allocator and the configurations first.
    for _ in 0..16 {
        let _ = handshake(server_cfg, client_cfg, name)?;
    }
    let mut servers = Vec::with_capacity(count);
    let before = rss();
    for _ in 0..count {
        let (s, c, _) = handshake(server_cfg, client_cfg, name)?;
        drop(c);
        servers.push(s);
    }
    let after = rss();
    drop(servers);
    Ok(after.saturating_sub(before) as f64 / count.max(1) as f64)
}
