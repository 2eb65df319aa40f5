//! The shared state every connection thread sees: the cluster (behind one mutex, with a condvar
//! that is signalled on every write, refresh and index creation so long-polls and `wait_for`
//! refreshes can block), the security state, faults, the node identity, and the periodic refresh
//! thread (1 s by default, search-idle after 30 s like ES).

use crate::cluster::Cluster;
use crate::faults::Faults;
use crate::security::Security;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Search-idle threshold (`index.search.idle.after`).
const SEARCH_IDLE: Duration = Duration::from_secs(30);

/// Node identity and behaviour switches.
#[derive(Debug, Clone)]
pub struct Config {
    /// `version.number` of `GET /`.
    pub version: String,
    /// Cluster name.
    pub cluster_name: String,
    /// Cluster UUID.
    pub cluster_uuid: String,
    /// Node name.
    pub node_name: String,
    /// Node id.
    pub node_id: String,
    /// Refresh every write immediately (simplification switch; off by default).
    pub refresh_on_write: bool,
    /// Gzip responses when the client accepts it.
    pub compression: bool,
}

/// State shared by all threads.
#[derive(Debug)]
pub struct Shared {
    cluster: Mutex<Cluster>,
    /// Signalled on every change of the cluster (writes, refreshes, index creation).
    pub changed: Condvar,
    security: Mutex<Security>,
    /// Fault injection.
    pub faults: Faults,
    /// Identity and switches.
    pub config: Config,
    /// Set when the stand-in stops.
    pub shutdown: AtomicBool,
}

impl Shared {
    /// New shared state.
    pub fn new(cluster: Cluster, security: Security, config: Config) -> Shared {
        Shared {
            cluster: Mutex::new(cluster),
            changed: Condvar::new(),
            security: Mutex::new(security),
            faults: Faults::default(),
            config,
            shutdown: AtomicBool::new(false),
        }
    }

    /// Locks the cluster (a poisoned lock is recovered: state stays usable for tests).
    pub fn cluster(&self) -> MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Locks the security state.
    pub fn security(&self) -> MutexGuard<'_, Security> {
        self.security.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes every waiter.
    pub fn notify(&self) {
        self.changed.notify_all();
    }

    /// Waits on the cluster condvar until `deadline` (or shutdown); returns the guard.
    pub fn wait<'a>(
        &self,
        g: MutexGuard<'a, Cluster>,
        deadline: Instant,
    ) -> MutexGuard<'a, Cluster> {
        let now = Instant::now();
        if now >= deadline || self.is_shutdown() {
            return g;
        }
        let step = (deadline - now).min(Duration::from_millis(250));
        match self.changed.wait_timeout(g, step) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        }
    }

    /// Whether the stand-in is stopping.
    pub fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// One pass of the periodic refresh: refresh indices whose interval elapsed and that are not
    /// search-idle. Returns the time until the next pass is useful.
    pub fn refresh_pass(&self) -> Duration {
        let mut next = Duration::from_millis(100);
        let mut any = false;
        {
            let mut c = self.cluster();
            let now = Instant::now();
            for idx in c.indices.values_mut() {
                let Some(iv) = idx.settings.refresh_interval else {
                    continue;
                };
                let iv = iv.max(Duration::from_millis(1));
                let since = now.duration_since(idx.last_refresh);
                let idle = now.duration_since(idx.last_search) >= SEARCH_IDLE;
                if idx.has_pending() && !idle {
                    if since >= iv {
                        idx.refresh();
                        any = true;
                    } else {
                        next = next.min(iv - since);
                    }
                }
            }
        }
        if any {
            self.notify();
        }
        next.max(Duration::from_millis(5))
    }
}

/// Runs the periodic refresh until shutdown.
pub fn refresh_loop(shared: &Shared) {
    while !shared.is_shutdown() {
        let d = shared.refresh_pass();
        let g = shared.cluster();
        let _g = shared.wait(g, Instant::now() + d);
    }
}
