//! The remote Elasticsearch clusters of `remote_elasticsearch` outputs (fleet-protocol.md §3.7,
//! §4.3, §4.4, §1.4): agents' keys for such an output are created, updated and invalidated on
//! the output's own cluster, reached over HTTP whatever store the agents live in.
//!
//! * [`KeyCluster`]: the four API-key calls, on any cluster (every [`Store`] is one: its own).
//! * [`Connect`]: builds the client of a cluster from an output's [`RemoteEs`] settings; the real
//!   one is `es::remote::HttpConnect`, tests plug in others.
//! * [`RemoteClusters`]: the registry shared by the backend threads, keyed by the hash of the
//!   connection settings: clients are built once per configuration and reused; configurations
//!   seen in policies are remembered (bounded) so keys made with them can be invalidated later by
//!   the hash agent documents keep; a cluster that failed (unreachable, unusable settings) fails
//!   fast for a while instead of holding a worker per agent; and each output's health is
//!   written to the store only when it changes (HEALTHY ↔ DEGRADED).
//!
//! Everything here blocks (file reads, fingerprint probes, HTTP): backend threads only.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::{ApiKey, NewApiKey, Store, StoreError};
use crate::model::time::rfc3339_seconds;
use crate::model::OutputHealth;
use crate::transform::remote::RemoteEs;

/// The API-key calls Fleet makes on a cluster.
pub trait KeyCluster: Send + Sync {
    /// Creates a key.
    fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey, StoreError>;
    /// Role descriptors of a key (`None`: unknown key).
    fn api_key_roles(&self, id: &str) -> Result<Option<Value>, StoreError>;
    /// Replaces the role descriptors of a key.
    fn update_api_key_roles(&self, id: &str, roles: &Value) -> Result<(), StoreError>;
    /// Invalidates keys; unknown ids are ignored.
    fn invalidate_api_keys(&self, ids: &[String]) -> Result<(), StoreError>;
}

impl<T: Store + ?Sized> KeyCluster for T {
    fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey, StoreError> {
        Store::create_api_key(self, key)
    }
    fn api_key_roles(&self, id: &str) -> Result<Option<Value>, StoreError> {
        Store::api_key_roles(self, id)
    }
    fn update_api_key_roles(&self, id: &str, roles: &Value) -> Result<(), StoreError> {
        Store::update_api_key_roles(self, id, roles)
    }
    fn invalidate_api_keys(&self, ids: &[String]) -> Result<(), StoreError> {
        Store::invalidate_api_keys(self, ids)
    }
}

/// Why a cluster's client could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The settings can never work (bad host, unreadable CA, bad fingerprint ...).
    Settings(String),
    /// Not now (a fingerprint probe could not reach the cluster); try again later.
    Unavailable(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Settings(s) | ConnectError::Unavailable(s) => f.write_str(s),
        }
    }
}

/// Builds the client of a remote cluster. Blocking.
pub trait Connect: Send + Sync {
    /// A client for these settings (whose `problem` is `None`).
    fn connect(&self, remote: &RemoteEs) -> Result<Arc<dyn KeyCluster>, ConnectError>;
}

/// Tuning of the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteSettings {
    /// How long a cluster that could not be reached fails fast before it is tried again.
    pub retry_after: Duration,
    /// Most configurations remembered (the oldest is forgotten first; its keys can then no
    /// longer be invalidated by this process, as when a remote output leaves every policy).
    pub max_configs: usize,
    /// The Fleet Server version this server claims (the remote clusters' `User-Agent`).
    pub server_version: crate::server_version::ServerVersion,
}

impl Default for RemoteSettings {
    fn default() -> Self {
        RemoteSettings {
            retry_after: Duration::from_secs(30),
            max_configs: 64,
            server_version: crate::server_version::BUILT_IN,
        }
    }
}

/// A configuration and what is known of its cluster.
struct Slot {
    remote: RemoteEs,
    cluster: Option<Arc<dyn KeyCluster>>,
    /// Why it fails, and until when it fails fast (`None`: for good, the settings are bad).
    broken: Option<(String, Option<Instant>)>,
}

#[derive(Default)]
struct State {
    slots: HashMap<String, Slot>,
    order: VecDeque<String>,
    /// Output name → whether its last written health was HEALTHY.
    health: HashMap<String, bool>,
}

/// The registry of remote clusters (see the module header).
pub struct RemoteClusters {
    connect: Arc<dyn Connect>,
    settings: RemoteSettings,
    state: Mutex<State>,
}

impl std::fmt::Debug for RemoteClusters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteClusters")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RemoteClusters {
    /// A registry building clients with `connect`.
    pub fn new(connect: Arc<dyn Connect>, settings: RemoteSettings) -> RemoteClusters {
        RemoteClusters {
            connect,
            settings,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent maps: keep using them.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers a configuration seen in a policy, so keys made with it can be invalidated by
    /// its hash later (after a restart too: the monitor prepares every current policy).
    pub fn learn(&self, remote: &RemoteEs) {
        let max = self.settings.max_configs.max(1);
        let mut state = self.lock();
        Self::slot(&mut state, remote, max);
    }

    fn slot<'s>(state: &'s mut State, remote: &RemoteEs, max: usize) -> &'s mut Slot {
        if !state.slots.contains_key(&remote.config_hash) {
            while state.slots.len() >= max {
                let Some(oldest) = state.order.pop_front() else {
                    break;
                };
                state.slots.remove(&oldest);
            }
            state.order.push_back(remote.config_hash.clone());
        }
        state
            .slots
            .entry(remote.config_hash.clone())
            .or_insert_with(|| Slot {
                remote: remote.clone(),
                cluster: None,
                broken: None,
            })
    }

    /// The cluster of these settings: the cached client, or a new one. Fails at once for
    /// unusable settings and, for [`RemoteSettings::retry_after`], for a cluster that just
    /// failed.
    pub fn cluster(&self, remote: &RemoteEs) -> Result<Arc<dyn KeyCluster>, String> {
        if let Some(problem) = &remote.problem {
            return Err(format!("the output's settings cannot be used: {problem}"));
        }
        let max = self.settings.max_configs.max(1);
        {
            let mut state = self.lock();
            let slot = Self::slot(&mut state, remote, max);
            match &slot.broken {
                Some((reason, None)) => return Err(reason.clone()),
                Some((reason, Some(until))) if Instant::now() < *until => {
                    return Err(reason.clone())
                }
                _ => slot.broken = None,
            }
            if let Some(cluster) = &slot.cluster {
                return Ok(Arc::clone(cluster));
            }
        }
        // Built outside the lock: it may read files and probe the cluster.
        let built = self.connect.connect(remote);
        let mut state = self.lock();
        let slot = Self::slot(&mut state, remote, max);
        match built {
            Ok(cluster) => {
                slot.cluster = Some(Arc::clone(&cluster));
                Ok(cluster)
            }
            Err(e) => {
                let reason = e.to_string();
                slot.broken = Some((
                    reason.clone(),
                    match e {
                        ConnectError::Settings(_) => None,
                        ConnectError::Unavailable(_) => {
                            Some(Instant::now() + self.settings.retry_after)
                        }
                    },
                ));
                Err(reason)
            }
        }
    }

    /// The cluster of a configuration known by its hash (a key's `remote_config_hash`); `None`
    /// when this process has not seen that configuration (or has forgotten it).
    pub fn by_hash(&self, config_hash: &str) -> Option<Result<Arc<dyn KeyCluster>, String>> {
        let remote = self.lock().slots.get(config_hash)?.remote.clone();
        Some(self.cluster(&remote))
    }

    /// Records the outcome of a call on the cluster of `config_hash`: an unreachable or
    /// overloaded cluster fails fast for a while.
    pub fn record(&self, config_hash: &str, result: Result<(), &StoreError>) {
        let mut state = self.lock();
        let Some(slot) = state.slots.get_mut(config_hash) else {
            return;
        };
        match result {
            Err(e @ (StoreError::Unavailable(_) | StoreError::TooManyRequests)) => {
                slot.broken = Some((
                    e.to_string(),
                    Some(Instant::now() + self.settings.retry_after),
                ));
            }
            Err(_) => {}
            Ok(()) => slot.broken = None,
        }
    }

    /// Writes `output`'s health to `store` if it differs from the last one written by this
    /// process: HEALTHY when `problem` is `None`, else DEGRADED with `problem` as the message.
    /// A write that fails is logged and retried at the next report.
    pub fn report(&self, store: &dyn Store, output: &str, problem: Option<&str>, now: SystemTime) {
        let healthy = problem.is_none();
        {
            let mut state = self.lock();
            if state.health.get(output) == Some(&healthy) {
                return;
            }
            state.health.insert(output.to_owned(), healthy);
        }
        match problem {
            Some(p) => log::warn!("remote output {output} is DEGRADED: {p}"),
            None => log::info!("remote output {output} is HEALTHY"),
        }
        let doc = OutputHealth::new(
            output,
            if healthy {
                OutputHealth::HEALTHY
            } else {
                OutputHealth::DEGRADED
            },
            problem.unwrap_or(""),
            rfc3339_seconds(now),
        );
        if let Err(e) = store.write_output_health(&doc) {
            log::warn!("writing the health of output {output} failed: {e}");
            self.lock().health.remove(output);
        }
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    //! A [`Connect`] whose clusters are memory stores, one per first host, counting connections.
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::{Connect, ConnectError, KeyCluster, RemoteClusters, RemoteSettings};
    use crate::backend::memory::MemoryStore;
    use crate::transform::remote::RemoteEs;

    /// Memory clusters by first host.
    #[derive(Default)]
    pub struct MemoryClusters {
        pub clusters: Mutex<HashMap<String, Arc<MemoryStore>>>,
        pub connects: AtomicUsize,
    }

    impl MemoryClusters {
        /// The cluster answering at `host` (created on first use).
        pub fn at(&self, host: &str) -> Arc<MemoryStore> {
            Arc::clone(
                self.clusters
                    .lock()
                    .unwrap()
                    .entry(host.to_owned())
                    .or_default(),
            )
        }
    }

    impl Connect for MemoryClusters {
        fn connect(&self, remote: &RemoteEs) -> Result<Arc<dyn KeyCluster>, ConnectError> {
            self.connects.fetch_add(1, Ordering::Relaxed);
            let host = remote.hosts.first().cloned().unwrap_or_default();
            if host.contains("bad") {
                return Err(ConnectError::Settings(format!("{host}: not a URL")));
            }
            Ok(self.at(&host))
        }
    }

    impl MemoryClusters {
        /// Makes the cluster at `host` unreachable (or reachable again).
        pub fn down(&self, host: &str, down: bool) {
            self.at(host).set_failure(down.then(|| {
                crate::backend::StoreError::Unavailable(format!("{host}: connection refused"))
            }));
        }
    }

    /// A registry over memory clusters, failing fast for a minute.
    pub fn registry() -> (Arc<MemoryClusters>, RemoteClusters) {
        registry_with(std::time::Duration::from_secs(60))
    }

    /// A registry over memory clusters, failing fast for `retry_after`.
    pub fn registry_with(
        retry_after: std::time::Duration,
    ) -> (Arc<MemoryClusters>, RemoteClusters) {
        let clusters = Arc::new(MemoryClusters::default());
        let registry = RemoteClusters::new(
            Arc::clone(&clusters) as Arc<dyn Connect>,
            RemoteSettings {
                retry_after,
                max_configs: 4,
                ..RemoteSettings::default()
            },
        );
        (clusters, registry)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use serde_json::json;

    use super::testkit::registry;
    use super::*;
    use crate::backend::memory::MemoryStore;

    fn remote(host: &str, token: &str) -> RemoteEs {
        RemoteEs::from_output(
            &json!({"type": "remote_elasticsearch", "hosts": [host], "service_token": token}),
        )
    }

    #[test]
    fn clients_are_built_once_per_configuration() {
        let (clusters, reg) = registry();
        let a = remote("https://a:9200", "t");
        let key = reg
            .cluster(&a)
            .unwrap()
            .create_api_key(&NewApiKey {
                name: "x".into(),
                role_descriptors: json!({}),
                metadata: json!({}),
            })
            .unwrap();
        reg.cluster(&a).unwrap();
        assert_eq!(clusters.connects.load(Ordering::Relaxed), 1);
        assert!(
            Store::authenticate(&*clusters.at("https://a:9200"), &key)
                .unwrap()
                .is_some(),
            "made on that cluster"
        );
        reg.cluster(&remote("https://a:9200", "other token"))
            .unwrap();
        assert_eq!(clusters.connects.load(Ordering::Relaxed), 2, "a new config");
        assert!(reg.by_hash(&a.config_hash).unwrap().is_ok());
        assert!(reg.by_hash("unknown").is_none());
    }

    #[test]
    fn bad_settings_and_unreachable_clusters_fail_fast() {
        let (clusters, reg) = registry();
        let broken = RemoteEs::from_output(&json!({"hosts": []}));
        assert!(reg.cluster(&broken).err().unwrap().contains("no hosts"));
        assert_eq!(clusters.connects.load(Ordering::Relaxed), 0);
        let bad = remote("bad://x", "t");
        assert!(reg.cluster(&bad).is_err());
        assert!(reg.cluster(&bad).is_err());
        assert_eq!(
            clusters.connects.load(Ordering::Relaxed),
            1,
            "settings errors are kept"
        );

        let a = remote("https://a:9200", "t");
        reg.cluster(&a).unwrap();
        let down = StoreError::Unavailable("refused".into());
        reg.record(&a.config_hash, Err(&down));
        assert!(reg.cluster(&a).err().unwrap().contains("refused"));
        reg.record(&a.config_hash, Ok(()));
        assert!(reg.cluster(&a).is_ok());
        reg.record(&a.config_hash, Err(&StoreError::NotFound));
        assert!(reg.cluster(&a).is_ok(), "an answer is not an outage");
    }

    #[test]
    fn configurations_are_remembered_up_to_the_bound() {
        let (_, reg) = registry();
        let first = remote("https://h0:9200", "t");
        reg.learn(&first);
        for i in 1..4 {
            reg.learn(&remote(&format!("https://h{i}:9200"), "t"));
        }
        assert!(reg.by_hash(&first.config_hash).is_some());
        reg.learn(&remote("https://h4:9200", "t"));
        assert!(
            reg.by_hash(&first.config_hash).is_none(),
            "oldest forgotten"
        );
    }

    #[test]
    fn health_is_written_on_changes_only() {
        let (_, reg) = registry();
        let store = MemoryStore::new();
        let now = SystemTime::now();
        reg.report(
            &store,
            "r",
            Some("remote ES could not create API key due to error: x"),
            now,
        );
        reg.report(
            &store,
            "r",
            Some("remote ES could not create API key due to error: y"),
            now,
        );
        assert_eq!(store.output_health_writes(), 1);
        assert_eq!(store.output_health("r").unwrap().state, "DEGRADED");
        reg.report(&store, "r", None, now);
        reg.report(&store, "r", None, now);
        reg.report(&store, "s", None, now);
        assert_eq!(store.output_health_writes(), 3);
        let doc = store.output_health("r").unwrap();
        assert!(doc.healthy() && doc.message.is_empty());

        store.set_failure(Some(StoreError::Unavailable("down".into())));
        reg.report(&store, "r", Some("e"), now);
        store.set_failure(None);
        reg.report(&store, "r", Some("e"), now);
        assert_eq!(
            store.output_health("r").unwrap().state,
            "DEGRADED",
            "a failed write is retried"
        );
    }
}
