//! Single-box mode (no Elasticsearch): the embedded store in `--data-dir`, policies kept as JSON
//! files, and the one-command quick start. On first start it writes a default policy (its
//! `fleet.hosts` the URL the quick start prints, its output from `--default-output-*` or marked
//! not configured) and mints an enrollment token for it, so `cargo run --release` on a fresh
//! machine ends with the exact `elastic-agent install ...` command to run on an agent host.
//!
//! Startup is two steps around the bind: [`open`] the store (the loop needs it), bind, then
//! [`start`] with the URL now known; the loop serves nothing before that.

pub mod backup;
pub mod policies;
pub mod policy_format;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::local::{LocalError, LocalStore};
use crate::backend::{ApiKey, StoreError};
use crate::config::DefaultOutput;
use crate::model::status_history::StatusHistory;

pub use crate::model::policy::DEFAULT_POLICY_ID;

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
    /// That policy's file.
    pub token_policy_file: PathBuf,
    /// That policy's output problems ([`crate::transform::output_check`]); empty when it can work.
    pub output_problems: Vec<String>,
    /// Scans the policy files: the loop's periodic chore and SIGHUP.
    pub rescan: policies::Rescan,
}

/// The management API's view of the embedded store.
pub struct EmbeddedAdmin {
    /// The store.
    pub store: Arc<LocalStore>,
    /// Where policy files live.
    pub policies_dir: PathBuf,
    /// What the quick start tells an agent host (set once the listener is bound).
    pub enrollment: Arc<std::sync::OnceLock<Enrollment>>,
    /// Checkin age past which an agent is `offline` (`--agent-offline-after`).
    pub offline_after: std::time::Duration,
    /// Agents by status over the last 24 hours (`mgmt::history`), kept in
    /// `<data-dir>/status-history.json`.
    history: std::sync::Mutex<StatusHistory>,
}

impl EmbeddedAdmin {
    /// The admin of `store`, with the status history the data dir (the parent of
    /// `policies_dir`) keeps; a missing or unreadable history starts empty.
    pub fn new(
        store: Arc<LocalStore>,
        policies_dir: PathBuf,
        enrollment: Arc<std::sync::OnceLock<Enrollment>>,
        offline_after: std::time::Duration,
    ) -> EmbeddedAdmin {
        let mut admin = EmbeddedAdmin {
            store,
            policies_dir,
            enrollment,
            offline_after,
            history: Default::default(),
        };
        let path = admin.history_path();
        match std::fs::read(&path) {
            Ok(bytes) => match StatusHistory::from_bytes(&bytes) {
                Some(history) => admin.history = std::sync::Mutex::new(history),
                None => log::warn!(
                    "{} is not a status history this version reads: the chart starts over",
                    path.display()
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("cannot read {}: {e}", path.display()),
        }
        admin
    }

    fn history_path(&self) -> PathBuf {
        self.policies_dir
            .parent()
            .unwrap_or(Path::new("."))
            .join(crate::mgmt::history::FILE)
    }
}

pub use crate::backend::admin::Enrollment;

impl crate::mgmt::Admin for EmbeddedAdmin {
    fn enrollment(&self) -> Option<Enrollment> {
        self.enrollment.get().cloned()
    }

    fn offline_after(&self) -> std::time::Duration {
        self.offline_after
    }

    fn store(&self) -> &dyn crate::backend::Store {
        &*self.store
    }
    fn status_history(&self) -> Option<&std::sync::Mutex<StatusHistory>> {
        Some(&self.history)
    }
    fn save_status_history(&self, history: &StatusHistory) -> Result<(), String> {
        // Written aside and renamed: a crash leaves the old history or the new one.
        let path = self.history_path();
        let aside = path.with_extension("json.new");
        crate::fsmode::write_private(&aside, &history.to_bytes())
            .and_then(|()| std::fs::rename(&aside, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
    fn list_agents(&self) -> Result<Vec<crate::model::Agent>, StoreError> {
        self.store.list_agents()
    }
    fn agent_summaries(
        &self,
    ) -> Result<Option<Arc<Vec<crate::model::agent_summary::AgentSummary>>>, StoreError> {
        self.store.agent_summaries().map(Some)
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
    fn list_actions(&self) -> Result<Vec<crate::model::Action>, StoreError> {
        self.store.list_actions()
    }
    fn delete_policy(&self, id: &str) -> Result<(), String> {
        policies::delete(&self.store, &self.policies_dir, id)
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

/// The embedded store opened, before the listener is bound.
pub struct Opened {
    store: Arc<LocalStore>,
    policies_dir: PathBuf,
}

impl Opened {
    /// The store.
    pub fn store(&self) -> &Arc<LocalStore> {
        &self.store
    }

    /// Where policy files live.
    pub fn policies_dir(&self) -> &Path {
        &self.policies_dir
    }
}

/// Opens the store in `data_dir` and prepares its policies directory.
pub fn open(data_dir: &Path) -> Result<Opened, EmbeddedError> {
    let store = Arc::new(LocalStore::open(data_dir)?);
    let policies_dir = data_dir.join("policies");
    // Policy files hold output credentials: the directory and its files are the owner's only.
    crate::fsmode::private_dir(&policies_dir).map_err(|source| EmbeddedError::PoliciesDir {
        path: policies_dir.clone(),
        source,
    })?;
    Ok(Opened {
        store,
        policies_dir,
    })
}

/// What the default policy is written with on a fresh data dir.
pub struct FirstStart<'a> {
    /// The URL agents reach this server at (the quick start's URL): the policy's `fleet.hosts`.
    pub fleet_url: &'a str,
    /// `--default-output-*`, if given.
    pub output: Option<&'a DefaultOutput>,
    /// The artifact mirror agents download upgrades from, when it is on.
    pub download: Option<policies::DownloadSource>,
}

/// Syncs policy files (writing the default policy on a fresh data dir), makes sure an enrollment
/// token exists, and returns the policy files' scanner (the caller runs it periodically). Runs once the listener is bound (the URL is
/// known) and before the loop serves a request.
pub fn start(opened: Opened, first: &FirstStart<'_>) -> Result<Embedded, EmbeddedError> {
    let Opened {
        store,
        policies_dir,
    } = opened;
    let fresh = policies::policy_files(&policies_dir).is_empty()
        && crate::backend::Store::latest_policies(&*store)?.is_empty();
    if fresh {
        let path = policies_dir.join(format!("{DEFAULT_POLICY_ID}.json"));
        let mut policy = policies::default_policy(DEFAULT_POLICY_ID, first.fleet_url, first.output);
        if let Some(download) = &first.download {
            policies::download_from(&mut policy, download);
        }
        let text = serde_json::to_string_pretty(&policy).unwrap_or_default() + "\n";
        policies::write_private(&path, text.as_bytes()).map_err(|source| {
            EmbeddedError::PoliciesDir {
                path: path.clone(),
                source,
            }
        })?;
        log::info!(
            "wrote the default policy {} (fleet.hosts {}, output {})",
            path.display(),
            first.fleet_url,
            first.output.map_or("not configured", |o| o.kind.as_str())
        );
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
    let output_problems = crate::backend::Store::latest_policies(&*store)?
        .iter()
        .find(|p| p.policy_id == policy)
        .map(|p| crate::transform::output_check::output_problems(&p.data))
        .unwrap_or_default();
    let token_policy_file = policies::policy_files(&policies_dir)
        .into_iter()
        .find(|p| p.file_stem().is_some_and(|s| *s == *policy))
        .unwrap_or_else(|| policies_dir.join(format!("{policy}.json")));
    let rescan = watcher.rescan(Arc::clone(&store));
    Ok(Embedded {
        store,
        policies_dir,
        token,
        token_policy: policy,
        token_policy_file,
        output_problems,
        rescan,
    })
}
