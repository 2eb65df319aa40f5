//! Startup of the agent-facing listener: resolve which certificate to serve (given, self-signed
//! from the data dir for the hosts config resolved, or none with `--fleet-server-insecure-http`), build the rustls config with
//! the client-authentication mode, and bind the socket. Everything here runs before the event
//! loop starts, so blocking (DNS for `--fleet-server-host`, disk) is fine.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use mio::net::TcpListener;

use super::StartupError;
use crate::config::{Config, ServerTls};
use crate::tls;

/// What was bound: address, TLS configuration, generated CA.
pub struct Listening {
    /// The address actually bound (port resolved when 0 was asked for).
    pub addr: SocketAddr,
    /// `None` for plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The generated CA agents must trust (path, SHA-256 fingerprint), when self-signed.
    pub generated_ca: Option<(std::path::PathBuf, String)>,
    /// The generated certificates' key type, when self-signed.
    pub generated_key: Option<tls::self_signed::KeyAlgorithm>,
    /// The server's certificate for the management listener, when it listens off loopback
    /// (`None` in plain-HTTP mode).
    pub management_tls: Option<crate::mgmt::tls::ManagementTls>,
    /// The served (leaf) certificate, when TLS is on.
    pub certificate: Option<rustls::pki_types::CertificateDer<'static>>,
}

impl Listening {
    /// `https://addr` or `http://addr`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

/// Resolves TLS and binds the listener.
pub fn prepare(config: &Config) -> Result<(TcpListener, Listening), StartupError> {
    let server = &config.server;
    let mut generated_ca = None;
    let mut generated_key = None;
    let mut management_tls = None;
    let mut certificate = None;
    let tls = match &server.tls {
        ServerTls::Provided(material) => {
            check_fleet_url(config, material)?;
            management_tls = Some(crate::mgmt::tls::ManagementTls::new(material)?);
            certificate = material.chain.first().cloned();
            Some(tls::server_config(
                material,
                server.client_auth,
                &server.client_cas,
            )?)
        }
        ServerTls::SelfSigned { hosts } => {
            let request = tls::self_signed::KeyRequest::for_setting(
                server.self_signed_key,
                server.defend_policy.as_deref(),
            );
            let generated = tls::self_signed::load_or_create(&config.data_dir, hosts, request)?;
            log::info!(
                "{} self-signed certificate for [{}]; agents trust it with --certificate-authorities={} (CA SHA-256 fingerprint {})",
                if generated.created { "generated a" } else { "using the" },
                hosts.join(", "),
                generated.ca_cert_path.display(),
                generated.ca_fingerprint,
            );
            generated_key = Some(generated.algorithm);
            generated_ca = Some((
                generated.ca_cert_path.clone(),
                generated.ca_fingerprint.clone(),
            ));
            management_tls = Some(crate::mgmt::tls::ManagementTls::new(&generated.material)?);
            certificate = generated.material.chain.first().cloned();
            Some(tls::server_config(
                &generated.material,
                server.client_auth,
                &server.client_cas,
            )?)
        }
        ServerTls::PlainHttp => {
            log::warn!(
                "serving plain HTTP (--fleet-server-insecure-http): agent credentials and policies cross the network unencrypted"
            );
            None
        }
    };
    let addr = resolve(&server.host, server.port)?;
    let listener = bind(addr).map_err(|source| StartupError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let addr = listener.local_addr().map_err(StartupError::Poll)?;
    Ok((
        listener,
        Listening {
            addr,
            tls,
            generated_ca,
            generated_key,
            management_tls,
            certificate,
        },
    ))
}

/// `FLEET_URL` is how this server reaches itself (and what agents use): its host must be a
/// name the served certificate covers, or every agent's TLS check fails (seeds: "This URL must
/// match the hostname in the Fleet Server certificate's Subject Alternative Name (SAN) list").
pub(super) fn check_fleet_url(
    config: &Config,
    material: &tls::TlsMaterial,
) -> Result<(), StartupError> {
    let Some(url) = config.fleet_url.as_deref() else {
        return Ok(());
    };
    let Ok(parsed) = crate::config::parse_http_url(url, None) else {
        return Ok(());
    };
    if parsed.scheme != "https" {
        return Ok(());
    }
    let host = parsed
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let covered = material.chain.first().is_some_and(|leaf| {
        let name = rustls::pki_types::ServerName::try_from(host.clone());
        let cert = rustls::server::ParsedCertificate::try_from(leaf);
        matches!((cert, name), (Ok(cert), Ok(name)) if rustls::client::verify_server_name(&cert, &name).is_ok())
    });
    if covered {
        Ok(())
    } else {
        Err(StartupError::FleetUrlNotCovered {
            url: url.to_owned(),
            host,
        })
    }
}

/// Accept backlog asked for; the kernel caps it at `net.core.somaxconn` (4096 on current Linux).
/// A reconnect storm of thousands of agents must queue, not be dropped (mio and std use 128).
const BACKLOG: i32 = 65_535;

/// A non-blocking listener with `SO_REUSEADDR` and a fleet-sized backlog.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(std::net::TcpListener::from(socket)))
}

/// Resolves a bind host and port (IPv6 brackets tolerated).
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, StartupError> {
    let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
    (unbracketed, port)
        .to_socket_addrs()
        .map_err(|source| StartupError::Resolve {
            host: host.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| StartupError::Resolve {
            host: host.to_owned(),
            source: std::io::ErrorKind::NotFound.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_queues_a_storm_without_accepting() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4096);
        // Nothing accepts: every connect beyond the backlog would stall in SYN retries.
        let n = 300.min(somaxconn);
        let mut clients = Vec::new();
        for _ in 0..n {
            // A queued connect completes at once; one past the backlog waits for SYN retries.
            match std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500))
            {
                Ok(c) => clients.push(c),
                Err(_) => break,
            }
        }
        assert_eq!(
            clients.len(),
            n,
            "only {} of {n} queued (a backlog of 128 queues 129)",
            clients.len()
        );
        drop(listener);
    }

    #[test]
    fn resolve_accepts_ipv4_ipv6_and_names() {
        assert_eq!(resolve("127.0.0.1", 1).unwrap().port(), 1);
        assert!(resolve("[::1]", 2).unwrap().is_ipv6());
        assert!(resolve("::1", 2).unwrap().is_ipv6());
        assert!(resolve("localhost", 3).is_ok());
    }
}
