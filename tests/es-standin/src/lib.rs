//! es-standin: an in-memory Elasticsearch stand-in, faithful to the REST contract Fleet Server
//! uses (`../shared/spec/es-contract.md`), for fleet-edge's tests. Never linked into fleet-edge.
//!
//! ```no_run
//! let es = es_standin::StandIn::start(es_standin::Options::default()).unwrap();
//! println!("{} {}", es.url(), es.service_token());
//! es.faults().fail_next(3, 503);
//! es.seed().fleet_server_policy("fleet-server-policy").unwrap();
//! // stops when `es` is dropped
//! ```
//!
//! Module map: `server` (accept loop, TLS, connections) → `http` (framing) → `router` (control
//! endpoints, faults, authentication, dispatch) → `api_*` (handlers) → `cluster`/`index` (state,
//! seq_no, refresh) with `mapping`/`system` (mappings), `query`/`search`/`aggs` (search),
//! `update`/`painless` (partial updates and scripts), `security` (users, tokens, API keys),
//! `faults`, `seed` (Kibana-like helper), `client` (tiny HTTP client), `error` (ES envelope),
//! `datemath`, `util`.
#![forbid(unsafe_code)]

pub mod aggs;
pub mod api_admin;
pub mod api_docs;
pub mod api_search;
pub mod api_security;
pub mod cbor;
pub mod client;
pub mod cluster;
pub mod datemath;
pub mod error;
pub mod faults;
pub mod http;
pub mod index;
pub mod mapping;
pub mod painless;
pub mod query;
pub mod router;
pub mod search;
pub mod security;
pub mod seed;
pub mod server;
pub mod state;
pub mod system;
pub mod update;
pub mod util;

pub use client::{Client, ClientTls};
pub use faults::Faults;
pub use seed::{EnrollmentKey, Seeder};
pub use server::{ClientAuth, TlsSettings};

use base64::Engine;
use serde_json::Value;
use state::{Config, Shared};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Start-up options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Listen address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// `version.number` reported by `GET /`.
    pub version: String,
    /// Superuser name and password (basic auth).
    pub superuser: (String, String),
    /// File service tokens for `elastic/fleet-server`: (token name, secret).
    pub service_tokens: Vec<(String, String)>,
    /// Periodic refresh interval of new indices; `None` disables it (`-1`).
    pub refresh_interval: Option<Duration>,
    /// Refresh after every write (a simplification switch; off = ES behaviour).
    pub refresh_on_write: bool,
    /// HTTPS settings.
    pub tls: Option<TlsSettings>,
    /// Cluster name.
    pub cluster_name: String,
    /// Node name.
    pub node_name: String,
    /// Gzip responses for clients that accept it (ES `http.compression`, plain HTTP only).
    pub compression: bool,
    /// A separate plain-HTTP listener for `/_standin/*` that stays up during the `down` fault.
    pub control_listen: Option<SocketAddr>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            version: "9.6.0".into(),
            superuser: ("elastic".into(), "changeme".into()),
            service_tokens: vec![("token1".into(), util::random_uuid22())],
            refresh_interval: Some(Duration::from_secs(1)),
            refresh_on_write: false,
            tls: None,
            cluster_name: "es-standin".into(),
            node_name: "es-standin-0".into(),
            compression: true,
            control_listen: None,
        }
    }
}

/// Start-up failures.
#[derive(Debug)]
pub enum StartError {
    /// The listen address could not be bound.
    Bind(std::io::Error),
    /// The TLS material is unusable.
    Tls(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Bind(e) => write!(f, "cannot bind the listen address: {e}"),
            StartError::Tls(e) => write!(f, "cannot use the TLS certificate/key: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A running stand-in; stops when dropped.
#[derive(Debug)]
pub struct StandIn {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls: bool,
    accept: Option<JoinHandle<()>>,
    control: Option<SocketAddr>,
    opts: Options,
}

impl StandIn {
    /// Binds, starts the accept loop and the refresh thread, and returns at once.
    pub fn start(opts: Options) -> Result<StandIn, StartError> {
        let tls = match &opts.tls {
            Some(t) => Some(server::build_tls(t).map_err(StartError::Tls)?),
            None => None,
        };
        let listener = TcpListener::bind(opts.listen).map_err(StartError::Bind)?;
        let addr = listener.local_addr().map_err(StartError::Bind)?;
        let cluster = cluster::Cluster {
            default_refresh: opts.refresh_interval,
            ..Default::default()
        };
        let security =
            security::Security::new((&opts.superuser.0, &opts.superuser.1), &opts.service_tokens);
        let config = Config {
            version: opts.version.clone(),
            cluster_name: opts.cluster_name.clone(),
            cluster_uuid: util::random_uuid22(),
            node_name: opts.node_name.clone(),
            node_id: util::random_uuid22(),
            refresh_on_write: opts.refresh_on_write,
            compression: opts.compression,
        };
        let shared = Arc::new(Shared::new(cluster, security, config));
        let control = match opts.control_listen {
            Some(a) => {
                let l = TcpListener::bind(a).map_err(StartError::Bind)?;
                let bound = l.local_addr().map_err(StartError::Bind)?;
                let sh = shared.clone();
                let _ = std::thread::Builder::new()
                    .name("es-standin-control".into())
                    .spawn(move || server::control_loop(l, sh));
                Some(bound)
            }
            None => None,
        };
        let sh = shared.clone();
        let _ = std::thread::Builder::new()
            .name("es-standin-refresh".into())
            .spawn(move || state::refresh_loop(&sh));
        let sh = shared.clone();
        let accept = std::thread::Builder::new()
            .name("es-standin-accept".into())
            .spawn(move || server::accept_loop(Some(listener), addr, sh, tls))
            .map_err(StartError::Bind)?;
        let is_tls = opts.tls.is_some();
        Ok(StandIn {
            shared,
            addr,
            tls: is_tls,
            accept: Some(accept),
            control,
            opts,
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            server::wake_addr(self.addr)
        )
    }

    /// Bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// URL of the separate control listener, when `Options::control_listen` was set.
    pub fn control_url(&self) -> Option<String> {
        self.control
            .map(|a| format!("http://{}", server::wake_addr(a)))
    }

    /// The first configured `elastic/fleet-server` service token (for `Authorization: Bearer`).
    pub fn service_token(&self) -> String {
        self.opts
            .service_tokens
            .first()
            .map(|(n, s)| security::encode_service_token(n, s))
            .unwrap_or_default()
    }

    /// `Authorization` header value of the superuser (`Basic ...`).
    pub fn superuser_auth(&self) -> String {
        let (u, p) = &self.opts.superuser;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    }

    /// Fault injection switches.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// An HTTP client for this stand-in, authenticated as the superuser (TLS: not verified).
    pub fn client(&self) -> Client {
        let tls = ClientTls {
            insecure: true,
            ..ClientTls::default()
        };
        match Client::new(&self.url(), Some(tls)) {
            Ok(c) => c.with_auth(&self.superuser_auth()),
            Err(_) => Client::new("http://127.0.0.1:9", None)
                .map(|c| c.with_auth(""))
                .unwrap_or_else(|_| unreachable_client()),
        }
    }

    /// The Kibana-like seeding helper for this stand-in.
    pub fn seed(&self) -> Seeder {
        Seeder::new(self.client(), &self.url())
    }

    /// Refreshes every index now.
    pub fn refresh_all(&self) {
        for i in self.shared.cluster().indices.values_mut() {
            i.refresh();
        }
        self.shared.notify();
    }

    /// Removes every index, data stream and template (security state is kept).
    pub fn reset(&self) {
        self.shared.cluster().wipe();
        self.shared.notify();
    }

    /// Removes API keys, native users (other than the superuser) and API-created service tokens.
    pub fn reset_security(&self) {
        let mut s = self.shared.security();
        s.api_keys.clear();
        let su = self.opts.superuser.0.clone();
        s.users.retain(|n, _| *n == su);
        s.tokens.retain(|_, t| t.source == "file");
    }

    /// Global checkpoint of shard 0 of an index (alias or concrete), `None` if missing.
    pub fn global_checkpoint(&self, index: &str) -> Option<i64> {
        let g = self.shared.cluster();
        let n = g.resolve_single(index).ok()?;
        g.indices
            .get(&n)
            .and_then(|i| i.global_checkpoints().first().copied())
    }

    /// Realtime `_source` of a document (alias or concrete index).
    pub fn document(&self, index: &str, id: &str) -> Option<Value> {
        let g = self.shared.cluster();
        let n = g.resolve_single(index).ok()?;
        g.indices
            .get(&n)
            .and_then(|i| i.get(id))
            .map(|d| d.source.clone())
    }

    /// Number of API keys in the security state (including invalidated ones).
    pub fn api_key_count(&self) -> usize {
        self.shared.security().api_keys.len()
    }

    /// Stops the stand-in (also done on drop).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.shared.shutdown.swap(true, Ordering::SeqCst) {
            return;
        }
        self.shared.notify();
        self.shared.faults.release_all();
        self.shared.faults.up();
        self.shared.faults.wake_listener();
        self.shared.faults.reset_connections();
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        if let Some(a) = self.control {
            // wake the control accept loop so it sees the shutdown flag
            let _ = std::net::TcpStream::connect_timeout(
                &server::wake_addr(a),
                Duration::from_millis(200),
            );
        }
    }
}

fn unreachable_client() -> Client {
    // Client::new only fails on malformed URLs; ours are well-formed.
    match Client::new("http://127.0.0.1:1", None) {
        Ok(c) => c,
        Err(_) => std::process::abort(),
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop();
    }
}
