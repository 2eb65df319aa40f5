//! The management API's operations, run on backend workers over [`Admin`]: the dispatch of
//! each route to its module (`agents.rs`, `actions.rs`, `policies.rs`), enrollment tokens and
//! snapshots here, the failures and their Kibana error bodies.

use std::collections::HashMap;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::query::Params;
use super::{actions, agents, policies, Route};
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
    /// The quick start's Fleet Server URL and trust flags, once known.
    fn enrollment(&self) -> Option<crate::embedded::Enrollment> {
        None
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

/// Runs a management request: status and body.
pub fn execute(admin: &dyn Admin, req: &AdminRequest, now: SystemTime) -> (u16, Value) {
    match run(admin, req, now) {
        Ok(ok) => ok,
        Err(Failure::NotFound(what)) => (
            404,
            json!({"statusCode": 404, "error": "Not Found", "message": what}),
        ),
        Err(Failure::Invalid(why)) => (
            400,
            json!({"statusCode": 400, "error": "Bad Request", "message": why}),
        ),
        Err(Failure::Conflict(why)) => (
            409,
            json!({"statusCode": 409, "error": "Conflict", "message": why}),
        ),
        Err(Failure::Store(e)) => (
            503,
            json!({"statusCode": 503, "error": "Service Unavailable", "message": e.to_string()}),
        ),
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

/// Kibana's enrollment API key item.
fn token_view(k: &EnrollmentKey) -> Value {
    json!({"id": k.api_key_id, "api_key_id": k.api_key_id, "api_key": k.api_key, "name": k.name,
           "policy_id": k.policy_id, "active": k.active, "created_at": k.created_at})
}

/// A page of `items` as Kibana lists: `{items, total, page, perPage}`.
pub(super) fn page_of(items: Vec<Value>, params: &Params, default_per_page: usize) -> Answer {
    page_with(items, params, default_per_page, |v| v)
}

/// [`page_of`] with each shown item made by `view`: only the page's items are turned into
/// JSON (a 50-agent page of 10,000 agents makes 50 views, not 10,000).
pub(super) fn page_with<T>(
    items: Vec<T>,
    params: &Params,
    default_per_page: usize,
    view: impl Fn(T) -> Value,
) -> Answer {
    let page = params.number("page", 1).map_err(Failure::Invalid)?;
    let per_page = params
        .number("perPage", default_per_page)
        .map_err(Failure::Invalid)?;
    let total = items.len();
    let shown: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(view)
        .collect();
    Ok((
        200,
        json!({"items": shown, "total": total, "page": page, "perPage": per_page}),
    ))
}

fn run(admin: &dyn Admin, req: &AdminRequest, now: SystemTime) -> Answer {
    match &req.route {
        Route::ListAgents
        | Route::GetAgent(_)
        | Route::UpdateAgent(_)
        | Route::DeleteAgent(_)
        | Route::Reassign(_)
        | Route::Unenroll(_)
        | Route::AgentTags
        | Route::AgentStatusCounts
        | Route::Bulk(_) => agents::run(admin, req, now),
        Route::Upgrade(_)
        | Route::RequestDiagnostics(_)
        | Route::Migrate(_)
        | Route::PrivilegeLevelChange(_)
        | Route::AgentAction(_)
        | Route::ActionStatus
        | Route::CancelAction(_)
        | Route::ActionResults(_) => actions::run(admin, req, now),
        Route::ListPolicies
        | Route::GetPolicy(_)
        | Route::FullPolicy(_)
        | Route::CreatePolicy
        | Route::UpdatePolicy(_)
        | Route::DeletePolicy
        | Route::UploadPolicy(_) => policies::run(admin, req, now),
        Route::ListTokens => {
            let items: Vec<Value> = admin
                .list_enrollment_keys()?
                .iter()
                .map(token_view)
                .collect();
            let (status, mut body) = page_of(items, &req.params, 10_000)?;
            // Kibana still sends the deprecated `list` beside `items`.
            body["list"] = body["items"].clone();
            Ok((status, body))
        }
        Route::GetToken(id) => {
            let record = admin
                .list_enrollment_keys()?
                .into_iter()
                .find(|k| k.api_key_id == *id)
                .ok_or_else(|| Failure::NotFound(format!("enrollment token {id} not found")))?;
            Ok((200, json!({"item": token_view(&record)})))
        }
        Route::CreateToken => {
            let Some(policy_id) = req
                .body
                .get("policy_id")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
            else {
                return Err(Failure::Invalid("\"policy_id\" is required".into()));
            };
            if !admin
                .store()
                .latest_policies()?
                .iter()
                .any(|p| p.policy_id == policy_id)
            {
                return Err(Failure::Invalid(format!(
                    "policy {policy_id} does not exist"
                )));
            }
            let name = req
                .body
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("Default");
            let key = admin.add_enrollment_key(policy_id, name)?;
            let record = admin
                .list_enrollment_keys()?
                .into_iter()
                .find(|k| k.api_key_id == key.id)
                .ok_or_else(|| Failure::NotFound("the new token vanished".into()))?;
            Ok((
                200,
                json!({"item": token_view(&record), "action": "created"}),
            ))
        }
        Route::RevokeToken(id) => {
            admin.revoke_enrollment_key(id).map_err(|e| match e {
                StoreError::NotFound => {
                    Failure::NotFound(format!("enrollment token {id} not found"))
                }
                other => Failure::Store(other),
            })?;
            Ok((200, json!({"action": "deleted"})))
        }
        Route::Snapshot => {
            let path = admin.snapshot().map_err(Failure::Invalid)?;
            Ok((200, json!({"snapshot": path.to_string_lossy()})))
        }
        Route::Enrollment => {
            let e = admin
                .enrollment()
                .ok_or_else(|| Failure::NotFound("the Fleet Server URL is not known yet".into()))?;
            Ok((
                200,
                json!({"fleet_server_url": e.url, "install_command": e.install_command("{TOKEN}")}),
            ))
        }
        // The engine answers it from its own figures; it never reaches a worker.
        Route::ServerHealth => Err(Failure::NotFound(
            "the server's health is answered by the event loop".into(),
        )),
    }
}
