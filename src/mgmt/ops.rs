//! The management API's operations, run on backend workers over [`Admin`]: what each route reads
//! or writes, and the Kibana-shaped JSON it answers.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use super::Route;
use crate::backend::ops::uuid_v4;
use crate::backend::{ApiKey, Store, StoreError};
use crate::core::output_check::output_problems;
use crate::model::time::{parse_rfc3339, rfc3339_seconds};
use crate::model::{Action, ActionResult, Agent, EnrollmentKey};

/// Agents whose last checkin is older than this show as `offline` (two default long polls).
pub const OFFLINE_AFTER: Duration = Duration::from_secs(600);

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
    /// Results written for an action.
    fn action_results(&self, action_id: &str) -> Result<Vec<ActionResult>, StoreError>;
    /// Installs `data` as the next revision of policy `id` (and keeps its file in step); returns
    /// the revision, or why the policy is refused.
    fn apply_policy(&self, id: &str, data: Value) -> Result<i64, String>;
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
    /// Checkin state the event loop has not written yet (it batches checkin writes), per agent:
    /// agent listings merge it over the store's documents so a checkin shows at once. Filled by
    /// the event loop for [`Route::ListAgents`] and [`Route::GetAgent`].
    pub pending_checkins: HashMap<String, Map<String, Value>>,
}

impl AdminRequest {
    /// Whether the answer shows agents' checkin state (and so needs [`Self::pending_checkins`]).
    pub fn reads_checkin_state(&self) -> bool {
        matches!(self.route, Route::ListAgents | Route::GetAgent(_))
    }
}

/// The agent as it will be once the pending checkin state is written (the store's partial
/// update semantics); unchanged when there is none or the merge does not make an agent.
fn with_pending(agent: Agent, pending: &HashMap<String, Map<String, Value>>) -> Agent {
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
        Err(Failure::Store(e)) => (
            503,
            json!({"statusCode": 503, "error": "Service Unavailable", "message": e.to_string()}),
        ),
    }
}

enum Failure {
    NotFound(String),
    Invalid(String),
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

/// An agent as the management API lists it.
pub fn summary(agent: &Agent, now: SystemTime) -> Value {
    let status = if !agent.active {
        "unenrolled"
    } else if crate::opamp::document::is_disconnected(agent) {
        "offline"
    } else {
        match parse_rfc3339(&agent.last_checkin) {
            Some(t) if now.duration_since(t).unwrap_or_default() <= OFFLINE_AFTER => "online",
            _ => "offline",
        }
    };
    let mut view = json!({
        "id": agent.id,
        "type": agent.agent_type,
        "active": agent.active,
        "status": status,
        "policy_id": agent.policy_id,
        "policy_revision": agent.policy_revision_idx,
        "enrolled_at": agent.enrolled_at,
        "last_checkin": agent.last_checkin,
        "last_checkin_status": agent.last_checkin_status,
        "last_checkin_message": agent.last_checkin_message,
        "version": agent.version(),
        "tags": agent.tags,
        "upgrade_details": agent.upgrade_details,
        "hostname": agent.local_metadata.as_ref().and_then(|m| m.pointer("/host/hostname")).cloned().unwrap_or(Value::Null),
    });
    if let Value::Object(members) = &mut view {
        members.extend(crate::opamp::document::operator_view(agent));
    }
    view
}

/// Each policy's output problems (newest revision), by policy id.
fn policy_problems(admin: &dyn Admin) -> Result<HashMap<String, Vec<String>>, Failure> {
    Ok(admin
        .store()
        .latest_policies()?
        .iter()
        .map(|p| (p.policy_id.clone(), output_problems(&p.data)))
        .collect())
}

/// Adds `problems`: what keeps the agent's policy from working as written (an output not
/// configured, ...). An unenrolled agent has none.
fn with_problems(
    mut summary: Value,
    agent: &Agent,
    problems: &HashMap<String, Vec<String>>,
) -> Value {
    let list = match problems.get(&agent.policy_id) {
        Some(list) if agent.active => list.clone(),
        _ => Vec::new(),
    };
    summary["problems"] = json!(list);
    summary
}

fn token_view(k: &EnrollmentKey) -> Value {
    json!({"id": k.api_key_id, "api_key_id": k.api_key_id, "api_key": k.api_key, "name": k.name,
           "policy_id": k.policy_id, "active": k.active, "created_at": k.created_at})
}

fn action_for(
    admin: &dyn Admin,
    agent_id: &str,
    kind: &str,
    data: Value,
    now: SystemTime,
) -> Result<(u16, Value), Failure> {
    let agent = admin
        .store()
        .agent(agent_id)?
        .ok_or_else(|| Failure::NotFound(format!("agent {agent_id} not found")))?;
    if !agent.active {
        return Err(Failure::Invalid(format!(
            "agent {agent_id} is not enrolled"
        )));
    }
    let action = admin.add_action(Action {
        action_id: uuid_v4(),
        action_type: kind.into(),
        agents: vec![agent.id.clone()],
        timestamp: rfc3339_seconds(now),
        data,
        ..Action::default()
    })?;
    Ok((
        200,
        json!({"item": {"action_id": action.action_id, "type": kind, "agent_id": agent.id}, "actionId": action.action_id}),
    ))
}

fn run(admin: &dyn Admin, req: &AdminRequest, now: SystemTime) -> Result<(u16, Value), Failure> {
    match &req.route {
        Route::ListAgents => {
            let problems = policy_problems(admin)?;
            let items: Vec<Value> = admin
                .list_agents()?
                .into_iter()
                .map(|a| {
                    let a = with_pending(a, &req.pending_checkins);
                    with_problems(summary(&a, now), &a, &problems)
                })
                .collect();
            Ok((200, json!({"total": items.len(), "items": items})))
        }
        Route::GetAgent(id) => {
            let agent = admin
                .store()
                .agent(id)?
                .ok_or_else(|| Failure::NotFound(format!("agent {id} not found")))?;
            let agent = with_pending(agent, &req.pending_checkins);
            let problems = policy_problems(admin)?;
            Ok((
                200,
                json!({"item": with_problems(summary(&agent, now), &agent, &problems)}),
            ))
        }
        Route::Unenroll(id) => action_for(admin, id, "UNENROLL", Value::Null, now),
        Route::Upgrade(id) => {
            let Some(version) = req
                .body
                .get("version")
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
            else {
                return Err(Failure::Invalid("\"version\" is required".into()));
            };
            let mut data = json!({"version": version});
            if let Some(uri) = req.body.get("source_uri").and_then(Value::as_str) {
                data["source_uri"] = json!(uri);
            }
            action_for(admin, id, "UPGRADE", data, now)
        }
        Route::BulkUpgrade => {
            let action = super::upgrade::bulk_action(&admin.list_agents()?, &req.body, now)
                .map_err(|e| match e {
                    super::upgrade::BulkError::NotFound(m) => Failure::NotFound(m),
                    super::upgrade::BulkError::Invalid(m) => Failure::Invalid(m),
                })?;
            let agents = action.agents.len();
            let action = admin.add_action(action)?;
            Ok((
                200,
                json!({"actionId": action.action_id, "item": {"action_id": action.action_id, "type": "UPGRADE", "agents": agents}}),
            ))
        }
        Route::Migrate(id) => {
            let text = |name: &str| {
                req.body
                    .get(name)
                    .and_then(Value::as_str)
                    .filter(|v| !v.trim().is_empty())
                    .map(str::to_owned)
            };
            let (Some(uri), Some(token)) = (text("uri"), text("enrollment_token")) else {
                return Err(Failure::Invalid(
                    "\"uri\" (the target Fleet Server) and \"enrollment_token\" are required"
                        .into(),
                ));
            };
            if !(uri.starts_with("https://") || uri.starts_with("http://")) {
                return Err(Failure::Invalid(format!(
                    "\"uri\" must be an http(s) URL, not {uri:?}"
                )));
            }
            // fleet-protocol.md §5.3: MIGRATE data is `target_uri`, `enrollment_token`, `settings`.
            let mut data = json!({"target_uri": uri, "enrollment_token": token});
            if let Some(settings) = req.body.get("settings").filter(|s| s.is_object()) {
                data["settings"] = settings.clone();
            }
            action_for(admin, id, "MIGRATE", data, now)
        }
        Route::RequestDiagnostics(id) => {
            let data = match req.body.get("additional_metrics") {
                Some(m) => json!({"additional_metrics": m}),
                None => Value::Null,
            };
            action_for(admin, id, "REQUEST_DIAGNOSTICS", data, now)
        }
        Route::ListTokens => {
            let items: Vec<Value> = admin
                .list_enrollment_keys()?
                .iter()
                .map(token_view)
                .collect();
            Ok((200, json!({"total": items.len(), "items": items})))
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
            Ok((200, json!({"item": token_view(&record)})))
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
        Route::ListPolicies => {
            let items: Vec<Value> = admin
                .store()
                .latest_policies()?
                .iter()
                .map(|p| json!({"id": p.policy_id, "revision": p.revision_idx, "updated_at": p.timestamp, "name": p.data.get("name").cloned().unwrap_or(Value::Null)}))
                .collect();
            Ok((200, json!({"total": items.len(), "items": items})))
        }
        Route::PutPolicy(id) => {
            let revision = admin
                .apply_policy(id, req.body.clone())
                .map_err(Failure::Invalid)?;
            Ok((200, json!({"item": {"id": id, "revision": revision}})))
        }
        Route::Snapshot => {
            let path = admin.snapshot().map_err(Failure::Invalid)?;
            Ok((200, json!({"snapshot": path.to_string_lossy()})))
        }
        Route::ActionResults(action_id) => {
            let results = admin.action_results(action_id)?;
            let items: Vec<Value> = results
                .iter()
                .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
                .collect();
            let action = admin.store().action(action_id)?;
            if items.is_empty() && action.is_none() {
                return Err(Failure::NotFound(format!("action {action_id} not found")));
            }
            let targets = action.map(|a| a.agents).unwrap_or_default();
            let summary = super::upgrade::results_summary(&targets, &results);
            Ok((
                200,
                json!({"total": items.len(), "items": items, "summary": summary}),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AgentInfo;

    #[test]
    fn status_follows_activity_and_last_checkin() {
        let now = SystemTime::now();
        let mut a = Agent {
            id: "a".into(),
            active: true,
            agent: Some(AgentInfo {
                id: "a".into(),
                version: "9.2.1".into(),
                kind: String::new(),
            }),
            ..Agent::default()
        };
        assert_eq!(summary(&a, now)["status"], "offline", "never checked in");
        a.last_checkin = rfc3339_seconds(now);
        assert_eq!(summary(&a, now)["status"], "online");
        a.last_checkin = rfc3339_seconds(now - Duration::from_secs(3600));
        assert_eq!(summary(&a, now)["status"], "offline");
        a.active = false;
        assert_eq!(summary(&a, now)["status"], "unenrolled");
    }

    #[test]
    fn pending_checkin_state_shows_before_it_is_written() {
        let now = SystemTime::now();
        let stored = Agent {
            id: "a".into(),
            active: true,
            policy_id: "p".into(),
            ..Agent::default()
        };
        assert_eq!(summary(&stored, now)["status"], "offline");
        let mut pending = HashMap::new();
        let state = json!({"last_checkin": rfc3339_seconds(now), "last_checkin_status": "online"});
        let Value::Object(state) = state else {
            unreachable!()
        };
        pending.insert("a".to_owned(), state);
        let shown = summary(&with_pending(stored.clone(), &pending), now);
        assert_eq!(shown["status"], "online");
        assert_eq!(shown["id"], "a");
        assert_eq!(shown["policy_id"], "p");
        assert_eq!(shown["last_checkin"], rfc3339_seconds(now));
        // Other agents' state does not leak.
        let other = Agent {
            id: "b".into(),
            ..stored
        };
        assert_eq!(with_pending(other.clone(), &pending), other);
    }
}
