//! Agent mode against Elasticsearch: what Elastic Agent and Fleet Server do together when an
//! agent is installed with `--fleet-server-es` (the seeds' seven-step flow, fleet-protocol.md
//! §6.5 and §9.5).
//!
//! * `overrides`: what the Fleet Server policy may change in the bootstrap configuration.
//! * `selfmon`: the self-monitor state (§6.5) and this server's own agent (self-registration).
//!
//! [`run`] is the supervisor: it serves with the bootstrap settings laid under the Fleet Server
//! policy's overrides, and the self-monitor re-reads the policy every [`MONITOR_EVERY`] (a timer
//! of the running server's loop, run on one of its backend workers: no thread of its own). When a
//! new revision changes a setting we use, the monitor connects to the policy's Elasticsearch
//! first when that changed (falling back to the running connection, and trying again after
//! [`ES_RETRY_AFTER`], as §9.5 says), then asks the running server to drain; the supervisor
//! starts the next one with the new settings. As with Elastic's Fleet Server (§9.5 "Reload"),
//! a change restarts the listener: parked long polls are answered and agents reconnect.

pub mod overrides;
pub mod selfmon;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::api::health::{Health, HealthCell};
use crate::backend::es::EsStore;
use crate::backend::Store;
use crate::config::{Config, EsSettings};
use crate::net::{ShutdownHandle, Stopped};
use overrides::{Overrides, Values};
use selfmon::SelfMonitor;

/// How often the monitor re-reads the Fleet Server policy (§6.5: every 5 s).
pub const MONITOR_EVERY: Duration = Duration::from_secs(5);

/// How long a policy's Elasticsearch that could not be reached waits for another try (§9.5).
pub const ES_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long connecting to a policy's Elasticsearch may take before falling back.
const ES_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What the next server runs with.
struct Plan {
    config: Config,
    store: Arc<dyn Store>,
    /// The policy revision the plan comes from, if any.
    revision: Option<(String, i64)>,
}

/// State shared by the supervisor and the self-monitor.
struct Shared {
    bootstrap: Config,
    scratch: PathBuf,
    health: Arc<HealthCell>,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Drains the running server; `None` between two servers.
    server: Option<ShutdownHandle>,
    /// The overrides the running server was planned from (`Values::default()`: none).
    applied: Values,
    /// The Elasticsearch settings and store in use.
    es: EsSettings,
    store: Arc<dyn Store>,
    /// A plan waiting for the running server to stop.
    pending: Option<Plan>,
    /// When the policy's Elasticsearch last failed, and for which overrides.
    es_failed: Option<(Instant, Values)>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs agent mode until SIGTERM/SIGINT: `store` is connected with the bootstrap settings of
/// `config`.
#[allow(
    clippy::disallowed_methods,
    reason = "bootstrap is an edge: the self-monitor's ticks read the clock"
)]
pub fn run(config: &Config, store: Arc<dyn Store>) -> Result<(), crate::net::StartupError> {
    let Some(es) = config.es.clone() else {
        return crate::net::run(config, Some(store), None, |_| {});
    };
    let shared = Arc::new(Shared {
        bootstrap: config.clone(),
        scratch: config.data_dir.join("policy-tls"),
        health: Arc::new(HealthCell::new(Health::Starting)),
        inner: Mutex::new(Inner {
            server: None,
            applied: Values::default(),
            es,
            store: Arc::clone(&store),
            pending: None,
            es_failed: None,
        }),
    });
    // The first look is synchronous, so the first listener already has the policy's settings.
    let mut monitor = SelfMonitor::new(config.policy_id.clone(), &config.data_dir)
        .with_server_version(config.server_version);
    let first = monitor
        .tick(&*store, SystemTime::now(), Instant::now())
        .and_then(|p| overrides::read(&p));
    if let Some(state) = monitor.state() {
        shared.health.set(state.health);
    }
    // A signal between two servers (neither listening for it) must still stop the process.
    let signalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&signalled))
            .map_err(crate::net::StartupError::Poll)?;
    }
    // SIGHUP reloads the running server; between two servers it must not stop the process
    // (its default action), so it is caught here too and has nothing to do.
    signal_hook::flag::register(
        signal_hook::consts::SIGHUP,
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    )
    .map_err(crate::net::StartupError::Poll)?;
    let mut plan = match first {
        Some(o) => plan_for(&shared, &o).unwrap_or_else(|| bootstrap_plan(&shared)),
        None => bootstrap_plan(&shared),
    };
    let monitor = Arc::new(Mutex::new(monitor));
    let mut bound_port = None;
    loop {
        // A listener on a free port (0) keeps its port across restarts.
        if plan.config.server.port == 0 {
            if let Some(port) = bound_port {
                plan.config.server.port = port;
            }
        }
        let (mut server, listening) = match crate::net::start(
            &plan.config,
            Some(Arc::clone(&plan.store)),
            None,
        ) {
            Ok(started) => started,
            Err(e) if plan.revision.is_some() => {
                log::error!("cannot serve with the settings of the Fleet Server policy: {e}; serving with the bootstrap settings");
                plan = bootstrap_plan(&shared);
                continue;
            }
            Err(e) => return Err(e),
        };
        if config.server.port == 0 && plan.config.server.port == 0 {
            bound_port = Some(listening.addr.port());
        }
        if signalled.load(std::sync::atomic::Ordering::SeqCst) {
            log::info!("shutdown signal received while restarting: stopping");
            break;
        }
        server.follow_health(Arc::clone(&shared.health));
        {
            let (shared, monitor) = (Arc::clone(&shared), Arc::clone(&monitor));
            server.every(
                "self-monitor",
                MONITOR_EVERY,
                Arc::new(move || monitor_tick(&shared, &monitor)),
            );
        }
        {
            let mut inner = shared.lock();
            let handle = server.shutdown_handle();
            if inner.pending.is_some() {
                // A newer revision arrived while this server was starting.
                handle.shutdown();
            }
            inner.server = Some(handle);
        }
        let stop_reason = server.run().map_err(crate::net::StartupError::Poll)?;
        let next = {
            let mut inner = shared.lock();
            inner.server = None;
            inner.pending.take()
        };
        match (stop_reason, next) {
            (Stopped::Requested, Some(next)) => {
                if let Some((id, revision)) = &next.revision {
                    log::info!("policy {id} revision {revision}: serving with its settings");
                }
                plan = next;
            }
            _ => break,
        }
    }
    Ok(())
}

/// Serving with the bootstrap settings and the connection in use.
fn bootstrap_plan(shared: &Shared) -> Plan {
    let inner = shared.lock();
    let mut config = shared.bootstrap.clone();
    config.es = Some(inner.es.clone());
    Plan {
        config,
        store: Arc::clone(&inner.store),
        revision: None,
    }
}

/// The plan for a policy revision's overrides; `None` when it would change nothing in use.
/// Logs what the policy sets, ignores and cannot use. Blocks while connecting to a new
/// Elasticsearch (a backend worker or startup, never the event loop).
#[allow(
    clippy::disallowed_methods,
    reason = "bootstrap is an edge: it times the Elasticsearch retry"
)]
fn plan_for(shared: &Shared, o: &Overrides) -> Option<Plan> {
    let (applied, es_in_use, store_in_use, es_failed) = {
        let inner = shared.lock();
        (
            inner.applied.clone(),
            inner.es.clone(),
            Arc::clone(&inner.store),
            inner.es_failed.clone(),
        )
    };
    let retry_es = es_failed
        .as_ref()
        .is_some_and(|(at, values)| *values == o.values && at.elapsed() >= ES_RETRY_AFTER);
    if o.values == applied && !retry_es {
        return None;
    }
    let at = format!("policy {} revision {}", o.policy_id, o.revision);
    for line in &o.ignored {
        log::warn!("{at}: {line}");
    }
    for line in &o.invalid {
        log::warn!("{at}: {line}");
    }
    let applied_now = overrides::apply(&shared.bootstrap, &o.values, &shared.scratch);
    for line in &applied_now.problems {
        log::warn!("{at}: {line}");
    }
    let mut config = applied_now.config;
    let wanted = config.es.clone().unwrap_or_else(|| es_in_use.clone());
    let mut store = store_in_use;
    let mut es = es_in_use.clone();
    if !same_connection(&wanted, &es_in_use) {
        match EsStore::connect(&wanted, Some(ES_CONNECT_TIMEOUT)) {
            Ok(connected) => {
                store = Arc::new(connected);
                es = wanted;
                shared.lock().es_failed = None;
            }
            Err(e) => {
                log::warn!(
                    "{at}: its Elasticsearch output cannot be used ({e}); staying on {} and trying again in {:?}",
                    es_in_use.hosts.join(","),
                    ES_RETRY_AFTER
                );
                shared.lock().es_failed = Some((Instant::now(), o.values.clone()));
            }
        }
    }
    config.es = Some(es.clone());
    for line in &applied_now.changes {
        log::info!("{at} sets {line}");
    }
    let mut inner = shared.lock();
    inner.applied = o.values.clone();
    inner.es = es;
    inner.store = Arc::clone(&store);
    Some(Plan {
        config,
        store,
        revision: Some((o.policy_id.clone(), o.revision)),
    })
}

/// Whether two Elasticsearch settings reach the same cluster the same way.
fn same_connection(a: &EsSettings, b: &EsSettings) -> bool {
    let chain = |s: &EsSettings| s.client_cert.as_ref().map(|m| m.chain.clone());
    a.hosts == b.hosts && a.ca_certs == b.ca_certs && chain(a) == chain(b)
}

/// One look of the self-monitor at the Fleet Server policy: plans the next server when a new
/// revision changes a setting in use and asks the running one to drain.
#[allow(
    clippy::disallowed_methods,
    reason = "bootstrap is an edge: the self-monitor's tick reads the clock"
)]
fn monitor_tick(shared: &Shared, monitor: &Mutex<SelfMonitor>) {
    let mut monitor = monitor.lock().unwrap_or_else(PoisonError::into_inner);
    let store = Arc::clone(&shared.lock().store);
    if let Some(policy) = monitor.tick(&*store, SystemTime::now(), Instant::now()) {
        if let Some(o) = overrides::read(&policy) {
            if let Some(plan) = plan_for(shared, &o) {
                let mut inner = shared.lock();
                inner.pending = Some(plan);
                if let Some(server) = &inner.server {
                    log::info!(
                        "policy {} revision {} changes this server's settings: restarting the listener",
                        o.policy_id,
                        o.revision
                    );
                    server.shutdown();
                }
            }
        }
    }
    if let Some(state) = monitor.state() {
        shared.health.set(state.health);
    }
}
