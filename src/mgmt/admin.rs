//! What the management API's operations share: the [`Admin`] interface they run over, the
//! authenticated [`AdminRequest`], the [`Failure`]s they decide on and Kibana's paging. The
//! route modules (`agents.rs`, `actions.rs`, `policies.rs`) and the dispatch in `ops.rs` use
//! it; it names none of them.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::query::Params;
use super::Route;
use crate::backend::{ApiKey, Store, StoreError};
use crate::model::{Action, ActionResult, Agent, EnrollmentKey};

/// What the management API needs beyond the agent-facing [`Store`].
pub trait Admin: Send + Sync {
    /// The store itself (agents, policies).
    fn store(&self) -> &dyn Store;
    /// Every agent.
    fn list_agents(&self) -> Result<Vec<Agent>, StoreError>;
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
}

/// One management request, authenticated and routed.
#[derive(Clone, Debug, PartialEq)]
pub struct AdminRequest {
    /// The route.
    pub route: Route,
    /// The JSON body (`null` when empty).
    pub body: Value,
    /// The query parameters.
    pub params: Params,
    /// Checkin state the event loop has not written yet (it batches checkin writes), per agent:
    /// agent listings merge it over the store's documents so a checkin shows at once. Filled by
    /// the event loop for the routes of [`Self::reads_checkin_state`].
    pub pending_checkins: HashMap<String, Map<String, Value>>,
}

impl AdminRequest {
    /// Whether the answer shows agents' checkin state (and so needs [`Self::pending_checkins`]).
    pub fn reads_checkin_state(&self) -> bool {
        matches!(
            self.route,
            Route::ListAgents | Route::GetAgent(_) | Route::AgentStatusCounts | Route::ActionStatus
        )
    }
}

/// The agent as it will be once the pending checkin state is written (the store's partial
/// update semantics); unchanged when there is none or the merge does not make an agent.
pub(super) fn with_pending(agent: Agent, pending: &HashMap<String, Map<String, Value>>) -> Agent {
    let Some(fields) = pending.get(&agent.id) else {
        return agent;
    };
    let Ok(Value::Object(mut source)) = serde_json::to_value(&agent) else {
        return agent;
    };
    crate::backend::memory::merge(&mut source, fields);
    match serde_json::from_value::<Agent>(Value::Object(source)) {
        Ok(mut merged) => {
            merged.id = agent.id;
            merged
        }
        Err(_) => agent,
    }
}

/// Why an operation failed, as the caller decides on it.
pub(super) enum Failure {
    /// 404.
    NotFound(String),
    /// 400.
    Invalid(String),
    /// 409.
    Conflict(String),
    /// 503.
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Failure::NotFound("not found".into()),
            other => Failure::Store(other),
        }
    }
}

/// What an operation answers.
pub(super) type Answer = Result<(u16, Value), Failure>;

/// A page of `items` as Kibana lists: `{items, total, page, perPage}`.
pub(super) fn page_of(items: Vec<Value>, params: &Params, default_per_page: usize) -> Answer {
    let page = params.number("page", 1).map_err(Failure::Invalid)?;
    let per_page = params
        .number("perPage", default_per_page)
        .map_err(Failure::Invalid)?;
    let total = items.len();
    let shown: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    Ok((
        200,
        json!({"items": shown, "total": total, "page": page, "perPage": per_page}),
    ))
}
