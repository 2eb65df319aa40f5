//! The thin I/O shell: the only module that touches sockets, TLS sessions and signals.
//!
//! * `listen`: certificate resolution (given / self-signed / none) and binding.
//! * `server`: the mio event loop, connection slab, I/O deadlines, accept gate, drain; it feeds
//!   `core::fleet::Fleet` and carries out its outputs.
//! * `conn`: one connection's state machine (TLS, decode, write the answer, graceful close).
//! * `transport`: plain TCP or rustls under a connection.
//! * `pool`: reusable read/write buffers.
//! * `reload`: what SIGHUP reads again (certificates, admin token, log level).

mod conn;
mod listen;
mod pool;
pub mod reload;
mod server;
mod transport;

use std::sync::Arc;
use std::time::Duration;

pub use listen::Listening;
pub use server::{
    ChoreId, ConnKey, Management, ReplyTo, Server, Settings, ShutdownHandle, Stats, Stopped,
    WatchError,
};

use crate::api::health::Health;
use crate::backend::auth_cache::{max_entries_for, AuthCacheSettings};
use crate::backend::ops::replace_token::DEFAULT_ITERATIONS;
use crate::backend::workers::BackendSettings;
use crate::backend::Store;
use crate::config::Config;
use crate::core::longpoll::PollSettings;

/// Why the server could not start or stopped abnormally: one clear sentence each.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Certificates or keys could not be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// `--fleet-server-host` did not resolve.
    #[error("cannot resolve --fleet-server-host {host:?}: {source}")]
    Resolve {
        /// The host as given.
        host: String,
        /// The resolver error.
        source: std::io::Error,
    },
    /// `FLEET_URL` names a host the served certificate does not cover.
    #[error("FLEET_URL {url} names host {host:?}, which the certificate of --fleet-server-cert does not cover (its Subject Alternative Names); agents would refuse it: use a certificate for {host} or a FLEET_URL with one of its names")]
    FleetUrlNotCovered {
        /// The URL.
        url: String,
        /// Its host.
        host: String,
    },
    /// The management API would listen off loopback without TLS.
    #[error("the management API cannot listen on {addr}, off loopback, without TLS: its bearer token would cross the network in clear; keep --management-host on 127.0.0.1 or serve TLS (drop --fleet-server-insecure-http)")]
    ManagementWithoutTls {
        /// The address.
        addr: String,
    },
    /// No name the server's certificate covers reaches the management listener.
    #[error("the management API listens on {addr} over TLS, but the server's certificate covers neither {host:?} nor, for an unspecified address, localhost/127.0.0.1/::1; the CLI could not verify it: use a certificate for that name or another --management-host")]
    ManagementNameNotCovered {
        /// The address.
        addr: String,
        /// The configured host.
        host: String,
    },
    /// The event loop failed.
    #[error("event loop failure: {0}")]
    Poll(std::io::Error),
}

/// Loop settings derived from the configuration.
pub fn settings(config: &Config) -> Settings {
    let server = &config.server;
    let t = &server.timeouts;
    let limits_table = limits_table(config);
    Settings {
        max_connections: server.max_connections,
        // A tenth more (at least 16) to answer 429 rather than reset.
        gate_reserve: (server.max_connections / 10).max(16),
        limits: crate::http::Limits {
            max_header_bytes: server.max_header_bytes,
            ..crate::http::Limits::default()
        },
        handshake_timeout: t.handshake,
        header_timeout: t.read_header,
        // Go's `server.timeouts.read` default: a 1 MiB checkin body on a slow uplink must fit.
        body_timeout: Duration::from_secs(60),
        idle_timeout: t.idle,
        write_stall_timeout: t.write_stall,
        linger_timeout: Duration::from_secs(2),
        drain_timeout: t.drain,
        poll: PollSettings {
            long_poll: t.checkin_long_poll,
            jitter: t.checkin_jitter,
            max_poll: t.checkin_max_poll,
        },
        checkin_flush: Duration::from_secs(10),
        checkin_timestamp: Duration::from_secs(30),
        pbkdf2_iterations: DEFAULT_ITERATIONS,
        server_version: config.server_version,
        backend: BackendSettings {
            workers: backend_workers(config),
            queue: job_queue_for(limits_table),
            auth_cache: AuthCacheSettings {
                max_entries: max_entries_for(limits_table.map(|t| t.max_agents)),
                ..AuthCacheSettings::default()
            },
            remote: crate::backend::remote::RemoteSettings {
                server_version: config.server_version,
                ..Default::default()
            },
            files: server.files,
            job_timeout: t.backend,
            ..BackendSettings::default()
        },
        limits_table,
        files: crate::api::serving::FileServing {
            mirror: config.files.mirror_dir.clone(),
            pgp: Arc::new(crate::files::pgp::PgpSource::new(
                config.files.pgp_dir.clone(),
                config.files.pgp_upstream_url.clone(),
            )),
            endpoint_artifacts: Arc::default(),
        },
    }
}

/// The route limits' table: Fleet Server's selection (§10.1), whose tables size acks and
/// checkins for Elasticsearch; in embedded mode without `server.limits.max_agents`, the selected
/// table with its ack and checkin limits sized to the embedded store
/// (`api::limits::select_embedded_table`).
pub fn limits_table(config: &Config) -> Option<&'static crate::api::limits::SizingTable> {
    if config.es.is_none() && config.server.max_agents == 0 {
        return Some(crate::api::limits::select_embedded_table(
            available_memory_mib(),
        ));
    }
    crate::api::limits::select_table(config.server.max_agents, available_memory_mib())
}

/// Jobs that may wait for the backend: at least 4,096, and room for what the route limits
/// admit at once — a rollout's acks (the ack burst) and the checkins that follow it (the checkin
/// burst) — so that what the limits admit is not refused with 503 for a full queue. The queue
/// allocates as jobs arrive (`backend::workers`), so a large bound costs nothing while idle.
fn job_queue_for(table: Option<&crate::api::limits::SizingTable>) -> usize {
    use crate::api::limits::LimitedRoute;
    table.map_or(4096, |t| {
        let burst = |r| t.spec(r).burst as usize;
        (burst(LimitedRoute::Ack) + burst(LimitedRoute::Checkin)).max(4096)
    })
}

fn per_second(spec: crate::api::limits::LimitSpec) -> u64 {
    1_000_000 / spec.interval.as_micros().max(1) as u64
}

/// Backend worker threads: `--backend-workers`, else by store kind (the thread budget of
/// `lib.rs`): an Elasticsearch request can block for a network round trip or a long retry, so
/// four overlap; the embedded store answers from local disk in microseconds to milliseconds, so
/// one is enough.
pub fn backend_workers(config: &Config) -> usize {
    match (config.server.backend_workers, &config.es) {
        (Some(n), _) => n,
        (None, Some(_)) => 4,
        (None, None) => 1,
    }
}

/// Memory this process may use, MiB: the cgroup v2 limit when set, else the machine's total
/// (what Fleet Server consults to pick its sizing table).
pub fn available_memory_mib() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
                .map(|kib| kib / 1024)
        });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|bytes| bytes / (1024 * 1024));
    match (cgroup, total) {
        (Some(c), Some(t)) => Some(c.min(t)),
        (c, t) => c.or(t),
    }
}

/// Starts the server described by `config` over `store` and runs it until shutdown;
/// `admin` enables the management API; `on_listening` runs once the sockets are bound (the quick
/// start prints there).
pub fn run(
    config: &Config,
    store: Option<Arc<dyn Store>>,
    admin: Option<Arc<dyn crate::mgmt::Admin>>,
    on_listening: impl FnOnce(&Listening),
) -> Result<(), StartupError> {
    let (server, listening) = start(config, store, admin)?;
    on_listening(&listening);
    server.run().map(|_| ()).map_err(StartupError::Poll)
}

/// Binds the sockets and builds the server described by `config` without running it, so the
/// caller can take a [`ShutdownHandle`] or make it follow a self-monitor first.
pub fn start(
    config: &Config,
    store: Option<Arc<dyn Store>>,
    admin: Option<Arc<dyn crate::mgmt::Admin>>,
) -> Result<(Server, Listening), StartupError> {
    let started = bind(config, store, admin)?;
    announce(&started.1);
    Ok(started)
}

/// Logs `listening on <url>`: the line that says the server is about to serve (tests and
/// supervisors wait for it).
pub fn announce(listening: &Listening) {
    log::info!("listening on {}", listening.url());
}

/// [`start`] without the announcement, for a caller that prepares more (the embedded default
/// policy needs the bound address) before saying the server is ready. Connections made meanwhile
/// wait in the accept backlog.
pub fn bind(
    config: &Config,
    store: Option<Arc<dyn Store>>,
    admin: Option<Arc<dyn crate::mgmt::Admin>>,
) -> Result<(Server, Listening), StartupError> {
    let (listener, listening) = listen::prepare(config)?;
    let monitored_admin = admin.clone();
    let management = match admin {
        None => None,
        Some(admin) => Some(management(
            config,
            admin,
            listening.management_tls.as_ref(),
        )?),
    };
    let reloader = reload::Reloader::new(
        config,
        listening.certificate.as_ref(),
        management.as_ref().map(|m| m.token.clone()),
    );
    // Signal handlers are registered by Server::new: only after it may we announce the address,
    // or a SIGTERM sent right after the announcement would kill the process undrained.
    let mut server = Server::new(
        listener,
        listening.tls.clone(),
        settings(config),
        Health::Healthy,
        random_seed(),
        store,
        management,
    )
    .map_err(StartupError::Poll)?;
    server.on_reload(reloader);
    if config.server.http_enabled {
        let endpoint = monitoring(config, &server, monitored_admin)?;
        server.keep_monitoring(endpoint);
    }
    match limits_table(config) {
        Some(table) if config.es.is_none() && config.server.max_agents == 0 => log::info!(
            "route limits from Fleet Server's {} table, acks ({}/s) and checkins ({}/s) sized to the embedded store",
            table.name,
            per_second(table.spec(crate::api::limits::LimitedRoute::Ack)),
            per_second(table.spec(crate::api::limits::LimitedRoute::Checkin)),
        ),
        Some(table) => log::info!(
            "route limits from Fleet Server's {} table (up to {} agents)",
            table.name,
            table.max_agents
        ),
        None => log::info!("route limits: Fleet Server's code defaults"),
    }
    Ok((server, listening))
}

/// Binds the monitoring endpoint (`--http-enabled`) and serves it on its own thread
/// (`mgmt::monitor`).
fn monitoring(
    config: &Config,
    server: &Server,
    admin: Option<Arc<dyn crate::mgmt::Admin>>,
) -> Result<crate::mgmt::monitor::Handle, StartupError> {
    let addr = listen::resolve(&config.server.http_host, config.server.http_port)?;
    let listener = std::net::TcpListener::bind(addr).map_err(|source| StartupError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let bound = listener.local_addr().map_err(StartupError::Poll)?;
    let store_dir = admin.as_ref().map(|_| config.data_dir.join("store"));
    let endpoint = crate::mgmt::monitor::spawn(
        listener,
        crate::mgmt::monitor::Sources {
            stats: server.stats(),
            admin,
            store_dir,
            started: std::time::Instant::now(),
        },
    )
    .map_err(StartupError::Poll)?;
    log::info!("monitoring endpoint on http://{bound} (/stats, /metrics, /state)");
    Ok(endpoint)
}

/// Binds the management listener, loads (or creates) its admin token, and records its URL in
/// `<data-dir>/management-url` for the CLI.
fn management(
    config: &Config,
    admin: Arc<dyn crate::mgmt::Admin>,
    tls: Option<&crate::mgmt::tls::ManagementTls>,
) -> Result<server::Management, StartupError> {
    let server = &config.server;
    let addr = listen::resolve(&server.management_host, server.management_port)?;
    let listener = mio::net::TcpListener::bind(addr).map_err(|source| StartupError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let bound = listener.local_addr().map_err(StartupError::Poll)?;
    let token = crate::mgmt::token::Credentials {
        admin: crate::mgmt::token::load_or_create(&config.data_dir).map_err(StartupError::Poll)?,
        operators: crate::mgmt::token::load_operators(&config.data_dir)
            .map_err(|e| StartupError::Poll(std::io::Error::other(e)))?,
    };
    // Off loopback the bearer token crosses a network: TLS only, with the server's certificate.
    let (url, tls) = if bound.ip().is_loopback() {
        (format!("http://{bound}"), None)
    } else {
        let tls = tls.ok_or_else(|| StartupError::ManagementWithoutTls {
            addr: bound.to_string(),
        })?;
        let host = tls
            .url_host(&server.management_host, bound)
            .ok_or_else(|| StartupError::ManagementNameNotCovered {
                addr: bound.to_string(),
                host: server.management_host.clone(),
            })?;
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        crate::fsmode::write_private(
            &config.data_dir.join(crate::mgmt::tls::CA_FILE),
            tls.roots_pem().as_bytes(),
        )
        .map_err(StartupError::Poll)?;
        (
            format!("https://{host}:{}", bound.port()),
            Some(Arc::clone(&tls.config)),
        )
    };
    crate::fsmode::write_private(
        &config.data_dir.join("management-url"),
        format!("{url}\n").as_bytes(),
    )
    .map_err(StartupError::Poll)?;
    log::info!(
        "management API on {url}{} (bearer token in {})",
        if tls.is_some() {
            format!(" over TLS, listening on {bound}")
        } else {
            String::new()
        },
        crate::mgmt::token::path(&config.data_dir).display()
    );
    Ok(server::Management {
        listener,
        token,
        admin,
        tls,
    })
}

fn random_seed() -> u64 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    // A failing OS random source only weakens request-id uniqueness across restarts.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::job_queue_for;
    use crate::api::limits::{select_embedded_table, LimitedRoute, SIZING_TABLES};

    #[test]
    fn the_job_queue_holds_what_the_limits_admit_at_once() {
        assert_eq!(job_queue_for(None), 4096);
        assert_eq!(job_queue_for(Some(&SIZING_TABLES[0])), 4096, "small tables");
        let t = select_embedded_table(Some(24 * 1024));
        let burst = |r| t.spec(r).burst as usize;
        assert_eq!(
            job_queue_for(Some(t)),
            burst(LimitedRoute::Ack) + burst(LimitedRoute::Checkin)
        );
        assert!(job_queue_for(Some(t)) > 4096);
    }
}
