//! Startup of the agent-facing listener: resolve which certificate to serve (given, self-signed
//! from the data dir, or none with `--fleet-server-insecure-http`), build the rustls config with
//! the client-authentication mode, and bind the socket. Everything here runs before the event
//! loop starts, so blocking (DNS for `--fleet-server-host`, disk) is fine.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use mio::net::TcpListener;

use super::StartupError;
use crate::config::{Config, ServerTls};
use crate::tls;

/// A bound listener and the TLS configuration its connections use.
pub struct Listening {
    /// The bound socket.
    pub listener: TcpListener,
    /// The address actually bound (port resolved when 0 was asked for).
    pub addr: SocketAddr,
    /// `None` for plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Listening {
    /// `https://addr` or `http://addr`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

/// Resolves TLS and binds the listener.
pub fn prepare(config: &Config) -> Result<Listening, StartupError> {
    let server = &config.server;
    let tls = match &server.tls {
        ServerTls::Provided(material) => Some(tls::server_config(
            material,
            server.client_auth,
            &server.client_cas,
        )?),
        ServerTls::SelfSigned => {
            let hosts = self_signed_hosts(config);
            let generated = tls::self_signed::load_or_create(&config.data_dir, &hosts)?;
            log::info!(
                "{} self-signed certificate for [{}]; agents trust it with --certificate-authorities={} (CA SHA-256 fingerprint {})",
                if generated.created { "generated a" } else { "using the" },
                hosts.join(", "),
                generated.ca_cert_path.display(),
                generated.ca_fingerprint,
            );
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
    let listener = TcpListener::bind(addr).map_err(|source| StartupError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let addr = listener.local_addr().map_err(StartupError::Poll)?;
    Ok(Listening { listener, addr, tls })
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, StartupError> {
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

/// The names a generated certificate must cover: this machine's host name, loopback, the bind
/// host when it is a specific one, and the host agents are told to use (`FLEET_URL`).
fn self_signed_hosts(config: &Config) -> Vec<String> {
    let mut hosts = Vec::new();
    if let Some(name) = machine_hostname() {
        hosts.push(name);
    }
    hosts.push("localhost".to_owned());
    hosts.push("127.0.0.1".to_owned());
    hosts.push("::1".to_owned());
    let bind = config.server.host.trim_start_matches('[').trim_end_matches(']');
    if !matches!(bind, "" | "0.0.0.0" | "::") {
        hosts.push(bind.to_owned());
    }
    if let Some(host) = config.fleet_url.as_deref().and_then(url_host) {
        hosts.push(host.to_owned());
    }
    let mut seen = std::collections::HashSet::new();
    hosts.retain(|h| seen.insert(h.to_ascii_lowercase()));
    hosts
}

fn machine_hostname() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let name = raw.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// The host part of `scheme://host[:port][/path]`, without IPv6 brackets.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_host_handles_ports_paths_and_ipv6() {
        assert_eq!(url_host("https://fleet.example.com:8220/x"), Some("fleet.example.com"));
        assert_eq!(url_host("https://10.0.0.5"), Some("10.0.0.5"));
        assert_eq!(url_host("https://[fd00::1]:8220"), Some("fd00::1"));
        assert_eq!(url_host("https://user@host:1"), Some("host"));
        assert_eq!(url_host("https://"), None);
    }

    #[test]
    fn resolve_accepts_ipv4_ipv6_and_names() {
        assert_eq!(resolve("127.0.0.1", 1).unwrap().port(), 1);
        assert!(resolve("[::1]", 2).unwrap().is_ipv6());
        assert!(resolve("::1", 2).unwrap().is_ipv6());
        assert!(resolve("localhost", 3).is_ok());
    }
}
