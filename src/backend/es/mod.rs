//! `EsStore`: the production [`Store`] over Elasticsearch, with exactly the calls of
//! es-contract.md §2 (DESIGN.md §5). Blocking; it runs on backend worker threads and the monitor
//! thread, never on the event loop.
//!
//! Files: `client.rs` (ureq agents, headers, hosts, retries, error mapping), `tls.rs` (CA files,
//! CA trusted fingerprint probe, client certificates, insecure), `connect.rs` (startup check and
//! [`EsError`]), `bodies.rs` (the exact request bodies), `feed.rs` (the change feed and its
//! follower threads; `feed/follow.rs`: the followers' delivery to the backend), `keys.rs` (the API-key calls, on this cluster or a remote one),
//! `store.rs` (the `Store` methods), `remote.rs` (the clients of `remote_elasticsearch` outputs'
//! clusters). Tests against the es-standin live in `tests/`.

mod bodies;
mod client;
mod connect;
mod delivery;
mod feed;
mod files;
mod keys;
mod opamp_script;
pub mod remote;
mod scripts;
mod store;
mod tls;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

pub use connect::{parse_version, EsError};

use crate::config::EsSettings;

/// Tuning of the Elasticsearch client; the defaults are Fleet Server's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EsOptions {
    /// Retries of an ordinary request after a retryable status or a connection failure.
    pub max_retries: u32,
    /// First pause between retries (grows ×1.5, with ±25 % jitter).
    pub backoff_initial: Duration,
    /// Longest pause between retries.
    pub backoff_max: Duration,
    /// TCP connect (and TLS probe) timeout.
    pub connect_timeout: Duration,
    /// Response timeout of ordinary requests (`output.elasticsearch.timeout`, 90 s).
    pub request_timeout: Duration,
    /// `timeout` of the `global_checkpoints` long poll (`monitor.poll_timeout`, 4 min).
    pub poll_timeout: Duration,
}

impl Default for EsOptions {
    fn default() -> Self {
        EsOptions {
            max_retries: 3,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(90),
            poll_timeout: Duration::from_secs(240),
        }
    }
}

/// The Elasticsearch store. Cheap to share behind an `Arc`; dropping it stops its change-feed
/// followers (each within one long-poll timeout).
pub struct EsStore {
    client: Arc<client::Client>,
    feed: Arc<feed::Feed>,
    version: String,
    #[cfg(test)]
    written: std::sync::Mutex<Vec<(String, serde_json::Value)>>,
}

impl std::fmt::Debug for EsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsStore")
            .field("client", &self.client)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl EsStore {
    /// Connects with the default [`EsOptions`]: probes the CA of `ca_trusted_fingerprint` if
    /// set, then checks `GET /` (product header, version ≥ this Fleet Server's major.minor),
    /// retrying while Elasticsearch is unreachable or answers 5xx/429 until `timeout` (`None`:
    /// forever), and failing at once with one sentence for bad credentials, an untrusted
    /// certificate, a fingerprint not presented, a server that is not Elasticsearch, or an
    /// unsupported version.
    pub fn connect(settings: &EsSettings, timeout: Option<Duration>) -> Result<EsStore, EsError> {
        Self::connect_with(settings, timeout, EsOptions::default())
    }

    /// [`EsStore::connect`] with explicit options.
    pub fn connect_with(
        settings: &EsSettings,
        timeout: Option<Duration>,
        options: EsOptions,
    ) -> Result<EsStore, EsError> {
        let connected = connect::connect(settings, timeout, options)?;
        log::info!(
            "connected to Elasticsearch {} at {}{}",
            connected.version,
            connected.client.hosts().join(", "),
            if connected.probed_ca.is_some() {
                " (CA found by its trusted fingerprint)"
            } else {
                ""
            }
        );
        let client = Arc::new(connected.client);
        Ok(EsStore {
            feed: feed::Feed::new(Arc::clone(&client)),
            client,
            version: connected.version,
            #[cfg(test)]
            written: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// `version.number` of the cluster at startup.
    pub fn es_version(&self) -> &str {
        &self.version
    }

    /// Change-feed follower threads alive now (0 before the first `changes` call and after
    /// the store is dropped and their long polls have returned).
    pub fn follower_threads(&self) -> usize {
        self.feed.running()
    }

    /// A handle that reports [`EsStore::follower_threads`] after the store is gone.
    pub fn follower_probe(&self) -> impl Fn() -> usize + Send + Sync + 'static {
        let feed = Arc::clone(&self.feed);
        move || feed.running()
    }
}

impl Drop for EsStore {
    fn drop(&mut self) {
        self.feed.stop();
    }
}
