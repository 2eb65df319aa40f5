//! What a backend worker runs for the management API, named here so that the backend names no
//! management type (`mgmt → backend` stays one-way): the [`Admin`] interface the operations run
//! over, and [`AdminWork`], one authenticated request that `mgmt` implements and the engine
//! submits as [`super::Job::Admin`].

use std::any::Any;
use std::fmt::Debug;
use std::time::SystemTime;

use serde_json::Value;

use super::{ApiKey, Store, StoreError};
use crate::model::agent_summary::AgentSummary;
use crate::model::status_history::StatusHistory;
use crate::model::{Action, ActionResult, Agent, EnrollmentKey};

/// What the management API needs beyond the agent-facing [`Store`].
pub trait Admin: Send + Sync {
    /// The store itself (agents, policies).
    fn store(&self) -> &dyn Store;
    /// Every agent.
    fn list_agents(&self) -> Result<Vec<Agent>, StoreError>;
    /// Every agent's summary for listings, sorted by id and current as of every acknowledged
    /// write, when this admin keeps them (the embedded store does); `None`: listings decode
    /// [`Admin::list_agents`].
    fn agent_summaries(&self) -> Result<Option<std::sync::Arc<Vec<AgentSummary>>>, StoreError> {
        Ok(None)
    }
    /// The agents-by-status samples of the last 24 hours, when this server keeps them
    /// (embedded mode; `mgmt::history` samples and serves them).
    fn status_history(&self) -> Option<&std::sync::Mutex<StatusHistory>> {
        None
    }
    /// Keeps `history` where a restart finds it.
    fn save_status_history(&self, _history: &StatusHistory) -> Result<(), String> {
        Ok(())
    }
    /// Every enrollment token record.
    fn list_enrollment_keys(&self) -> Result<Vec<EnrollmentKey>, StoreError>;
    /// Mints an enrollment token for a policy.
    fn add_enrollment_key(&self, policy_id: &str, name: &str) -> Result<ApiKey, StoreError>;
    /// Revokes an enrollment token (its record and its key).
    fn revoke_enrollment_key(&self, api_key_id: &str) -> Result<(), StoreError>;
    /// Creates an action.
    fn add_action(&self, action: Action) -> Result<Action, StoreError>;
    /// Every action document, oldest first.
    fn list_actions(&self) -> Result<Vec<Action>, StoreError>;
    /// Results written for an action.
    fn action_results(&self, action_id: &str) -> Result<Vec<ActionResult>, StoreError>;
    /// Installs `data` as the next revision of policy `id` (and keeps its file in step); returns
    /// the revision, or why the policy is refused.
    fn apply_policy(&self, id: &str, data: Value) -> Result<i64, String>;
    /// Removes policy `id` (its file and its place among the served policies).
    fn delete_policy(&self, id: &str) -> Result<(), String>;
    /// Writes a consistent copy of the store into a new file of the data dir (for `fleet-edge
    /// backup`, which archives and removes it); its path.
    fn snapshot(&self) -> Result<std::path::PathBuf, String> {
        Err("this server has no local store to back up".into())
    }
    /// The quick start's Fleet Server URL and trust flags, once known (embedded mode).
    fn enrollment(&self) -> Option<Enrollment> {
        None
    }
    /// The checkin age past which an agent's status is `offline` (`--agent-offline-after`;
    /// Kibana's 6 minutes by default).
    fn offline_after(&self) -> std::time::Duration {
        crate::model::agent_status::OFFLINE_AFTER
    }
}

/// What an agent host needs besides an enrollment token, as the quick start prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrollment {
    /// The Fleet Server URL agents use.
    pub url: String,
    /// What follows the token: ` --certificate-authorities=<abs path>` for the generated CA,
    /// ` --insecure` over plain HTTP, nothing for an operator's certificate.
    pub trust: String,
}

impl Enrollment {
    /// The exact command the quick start prints, for `token`.
    pub fn install_command(&self, token: &str) -> String {
        format!(
            "sudo elastic-agent install --url={} --enrollment-token={token}{}",
            self.url, self.trust
        )
    }
}

/// One management request as a worker runs it. `Any` lets a test look at the request the
/// engine submitted.
pub trait AdminWork: Any + Send + Debug {
    /// The key id of the enrollment token this request revokes: the worker drops the key's
    /// cached authentications around the run, so the revoked token is refused at once.
    fn revokes(&self) -> Option<&str>;
    /// Runs the request over `admin`; the status and JSON body of the answer.
    fn run(&self, admin: &dyn Admin, now: SystemTime) -> (u16, Value);
    /// The whole response instead, for a request answered with more than JSON (a file
    /// download, whose body streams); `None`: answer with [`AdminWork::run`].
    fn respond(&self, _admin: &dyn Admin) -> Option<crate::http::Response> {
        None
    }
}
