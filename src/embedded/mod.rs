//! Single-box mode (no Elasticsearch): the embedded store in `--data-dir`, policies kept as JSON
//! files, and the one-command quick start. On first start it writes a default policy and mints
//! an enrollment token for it, so `cargo run --release` on a fresh machine ends with the exact
//! `elastic-agent install ...` command to run on an agent host.

pub mod backup;
pub mod policies;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::local::{LocalError, LocalStore};
use crate::backend::{ApiKey, StoreError};

/// Policy id of the policy written on first start.
pub const DEFAULT_POLICY_ID: &str = "fleet-edge-default";

/// Why embedded mode cannot start; one clear sentence each.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The store could not be opened (locked by another fleet-edge, corrupt, foreign).
    #[error(transparent)]
    Store(#[from] LocalError),
    /// A store operation failed at startup.
    #[error("the embedded store failed at startup: {0}")]
    Startup(#[from] StoreError),
    /// The policies directory could not be prepared.
    #[error("cannot prepare the policies directory {path}: {source}")]
    PoliciesDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The embedded store, started, with what the quick start prints.
pub struct Embedded {
    /// The store.
    pub store: Arc<LocalStore>,
    /// The policies directory being watched.
    pub policies_dir: PathBuf,
    /// An active enrollment token for the default policy.
    pub token: String,
    /// The policy that token enrolls into.
    pub token_policy: String,
    /// Scans the policy files at once (what SIGHUP does).
    pub rescan: policies::Rescan,
}

/// The management API's view of the embedded store.
pub struct EmbeddedAdmin {
    /// The store.
    pub store: Arc<LocalStore>,
    /// Where policy files live.
    pub policies_dir: PathBuf,
}

impl crate::mgmt::Admin for EmbeddedAdmin {
    fn store(&self) -> &dyn crate::backend::Store {
        &*self.store
    }
    fn list_agents(&self) -> Result<Vec<crate::model::Agent>, StoreError> {
        self.store.list_agents()
    }
    fn list_enrollment_keys(&self) -> Result<Vec<crate::model::EnrollmentKey>, StoreError> {
        self.store.list_enrollment_keys()
    }
    fn add_enrollment_key(&self, policy_id: &str, name: &str) -> Result<ApiKey, StoreError> {
        self.store.add_enrollment_key(policy_id, name)
    }
    fn revoke_enrollment_key(&self, api_key_id: &str) -> Result<(), StoreError> {
        self.store.revoke_enrollment_key(api_key_id)
    }
    fn add_action(&self, action: crate::model::Action) -> Result<crate::model::Action, StoreError> {
        self.store.add_action(action)
    }
    fn action_results(
        &self,
        action_id: &str,
    ) -> Result<Vec<crate::model::ActionResult>, StoreError> {
        self.store.action_results(action_id)
    }
    fn apply_policy(&self, id: &str, data: serde_json::Value) -> Result<i64, String> {
        policies::apply(&self.store, &self.policies_dir, id, data)
    }
    fn snapshot(&self) -> Result<std::path::PathBuf, String> {
        let data_dir = self.policies_dir.parent().unwrap_or(Path::new("."));
        let path = backup::snapshot_path(data_dir);
        self.store.snapshot(&path).map_err(|e| e.to_string())?;
        Ok(path)
    }
}

/// Opens the store, syncs policy files (writing the default policy on a fresh data dir), makes
/// sure an enrollment token exists, and starts the policy-file watcher.
pub fn start(data_dir: &Path) -> Result<Embedded, EmbeddedError> {
    let store = Arc::new(LocalStore::open(data_dir)?);
    let policies_dir = data_dir.join("policies");
    std::fs::create_dir_all(&policies_dir).map_err(|source| EmbeddedError::PoliciesDir {
        path: policies_dir.clone(),
        source,
    })?;
    let fresh = policies::policy_files(&policies_dir).is_empty()
        && crate::backend::Store::latest_policies(&*store)?.is_empty();
    if fresh {
        let path = policies_dir.join(format!("{DEFAULT_POLICY_ID}.json"));
        let text = serde_json::to_string_pretty(&policies::default_policy(DEFAULT_POLICY_ID))
            .unwrap_or_default();
        std::fs::write(&path, text + "\n").map_err(|source| EmbeddedError::PoliciesDir {
            path: path.clone(),
            source,
        })?;
        log::info!("wrote the default policy {}", path.display());
    }
    let mut watcher = policies::PolicyFiles::new(policies_dir.clone());
    watcher.sync(&store)?;

    let policy = if policies::policy_files(&policies_dir)
        .iter()
        .any(|p| p.file_stem().is_some_and(|s| s == DEFAULT_POLICY_ID))
    {
        DEFAULT_POLICY_ID.to_owned()
    } else {
        crate::backend::Store::latest_policies(&*store)?
            .first()
            .map(|p| p.policy_id.clone())
            .unwrap_or_else(|| DEFAULT_POLICY_ID.to_owned())
    };
    let token = match store
        .list_enrollment_keys()?
        .into_iter()
        .find(|k| k.active && k.policy_id == policy)
    {
        Some(key) => key.api_key,
        None => {
            let key: ApiKey = store.add_enrollment_key(&policy, "Default")?;
            log::info!("created an enrollment token for policy {policy}");
            key.encoded()
        }
    };
    let rescan = watcher.spawn(Arc::clone(&store));
    Ok(Embedded {
        store,
        policies_dir,
        token,
        token_policy: policy,
        rescan,
    })
}
