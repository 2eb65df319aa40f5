//! Fleet actions from the management API, Kibana's paths and bodies: UPGRADE,
//! REQUEST_DIAGNOSTICS, MIGRATE, PRIVILEGE_LEVEL_CHANGE, any delivered type through
//! `POST /agents/{id}/actions` (SETTINGS with `log_level`, ...), CANCEL, each with an optional
//! `expiration`; and the action list with per-action progress (`GET /agents/action_status`:
//! Kibana's members plus fleet-edge's `nbAgentsSent` and `latestErrors`). Every action is checked
//! with the same data rules the agent-facing side delivers by (`transform::actions`), so an action
//! the agent would never receive is refused here with a 400 instead.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::admin::{page_of, Admin, AdminRequest, Answer, Failure};
use super::Route;
use crate::backend::ops::uuid_v4;
use crate::model::time::{parse_rfc3339, rfc3339_seconds};
use crate::model::{Action, Agent};
use crate::transform::actions::to_wire;

/// A new action document for `agents`.
pub fn new_action(kind: &str, agents: Vec<String>, data: Value, now: SystemTime) -> Action {
    Action {
        action_id: uuid_v4(),
        action_type: kind.into(),
        agents,
        timestamp: rfc3339_seconds(now),
        data,
        ..Action::default()
    }
}

/// Stores an action after checking it is one the agents will receive.
pub(super) fn create_action(admin: &dyn Admin, action: Action) -> Result<Action, Failure> {
    if action.agents.is_empty() {
        return Err(Failure::Invalid("no agents to send the action to".into()));
    }
    if to_wire(&action, "").is_none() {
        return Err(Failure::Invalid(format!(
            "{} with data {} is not an action agents accept (agent-client.md §1.3)",
            action.action_type, action.data
        )));
    }
    if !action.expiration.is_empty() && parse_rfc3339(&action.expiration).is_none() {
        return Err(Failure::Invalid(format!(
            "expiration {:?} is not an RFC 3339 time",
            action.expiration
        )));
    }
    let action = admin.add_action(action)?;
    log::info!(
        "audit: event.action=fleet-action-{} event.outcome=success user.name=admin fleet.action.id={} fleet.agent.id={}",
        action.action_type.to_ascii_lowercase(),
        action.action_id,
        action.agents.join(",")
    );
    Ok(action)
}

/// REQUEST_DIAGNOSTICS data from Kibana's body `{additional_metrics?}`.
pub(super) fn diagnostics_data(body: &Value) -> Value {
    match body.get("additional_metrics") {
        Some(m) => json!({"additional_metrics": m}),
        None => Value::Null,
    }
}

/// Kibana marks agents it sent an UPGRADE to (`upgrade_started_at`; they are `updating` until
/// the upgrade is acknowledged).
pub(super) fn mark_upgrade_started(
    admin: &dyn Admin,
    ids: &[String],
    now: SystemTime,
) -> Result<(), Failure> {
    let mut fields = Map::new();
    fields.insert("upgrade_started_at".into(), json!(rfc3339_seconds(now)));
    fields.insert("upgraded_at".into(), Value::Null);
    for id in ids {
        admin.store().update_agent(id, &fields)?;
    }
    Ok(())
}

fn enrolled(admin: &dyn Admin, id: &str) -> Result<Agent, Failure> {
    let agent = admin
        .store()
        .agent(id)?
        .ok_or_else(|| Failure::NotFound(format!("agent {id} not found")))?;
    if !agent.active {
        return Err(Failure::Invalid(format!("agent {id} is not enrolled")));
    }
    Ok(agent)
}

/// Sends one action to one agent: `{actionId, item}` (Kibana answers `{actionId}` or `{}`;
/// `item` names the action for the CLI).
fn send_one(
    admin: &dyn Admin,
    agent_id: &str,
    kind: &str,
    data: Value,
    body: &Value,
    now: SystemTime,
) -> Answer {
    let agent = enrolled(admin, agent_id)?;
    let mut action = new_action(kind, vec![agent.id.clone()], data, now);
    action.expiration = body
        .get("expiration")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let action = create_action(admin, action)?;
    if kind == "UPGRADE" {
        mark_upgrade_started(admin, std::slice::from_ref(&agent.id), now)?;
    }
    Ok((
        200,
        json!({"actionId": action.action_id,
               "item": {"action_id": action.action_id, "type": kind, "agent_id": agent.id}}),
    ))
}

/// One action's progress, Kibana's `action_status` item.
fn status_item(
    action: &Action,
    agents: usize,
    results: &[crate::model::ActionResult],
    sent: usize,
    cancelled: Option<&str>,
    now: SystemTime,
) -> Value {
    let failed: Vec<&crate::model::ActionResult> =
        results.iter().filter(|r| !r.error.is_empty()).collect();
    let acked = results.len() - failed.len();
    let done = results.len() >= agents;
    let expired = parse_rfc3339(&action.expiration).is_some_and(|t| t < now);
    let status = if done && failed.is_empty() {
        "COMPLETE"
    } else if done {
        "FAILED"
    } else if cancelled.is_some() {
        "CANCELLED"
    } else if expired {
        "EXPIRED"
    } else {
        "IN_PROGRESS"
    };
    let completion = results
        .iter()
        .map(|r| r.timestamp.as_str())
        .max()
        .filter(|_| done);
    let errors: Vec<Value> = failed
        .iter()
        .map(|r| json!({"agentId": r.agent_id, "error": r.error, "timestamp": r.timestamp}))
        .collect();
    json!({
        "actionId": action.action_id,
        "type": action.action_type,
        "status": status,
        "nbAgentsActionCreated": agents,
        "nbAgentsActioned": agents,
        "nbAgentsSent": sent,
        "nbAgentsAck": acked,
        "nbAgentsFailed": failed.len(),
        "complete": done,
        "creationTime": action.timestamp,
        "startTime": if action.start_time.is_empty() { &action.timestamp } else { &action.start_time },
        "expiration": if action.expiration.is_empty() { Value::Null } else { json!(action.expiration) },
        "completionTime": completion,
        "cancellationTime": cancelled,
        "version": action.data.get("version").cloned().unwrap_or(Value::Null),
        "newPolicyId": action.data.get("policy_id").cloned().unwrap_or(Value::Null),
        "latestErrors": errors,
    })
}

/// Every action with its progress, newest first.
fn action_status(admin: &dyn Admin, req: &AdminRequest, now: SystemTime) -> Answer {
    let actions = admin.list_actions()?;
    // Delivered position per agent: an action is sent once the agent's acknowledged sequence
    // number reaches the action document's.
    let source = super::listing::Source::read(admin, Some(req))?;
    let facts = super::listing::PolicyFacts::default();
    let positions: HashMap<&str, i64> = source
        .rows(&facts, now)
        .into_iter()
        .map(|r| (r.id, r.action_seq))
        .collect();
    let cancels: HashMap<String, String> = actions
        .iter()
        .filter(|a| a.action_type == "CANCEL")
        .filter_map(|a| {
            let target = a.data.get("target_id")?.as_str()?;
            Some((target.to_owned(), a.timestamp.clone()))
        })
        .collect();
    // One action may span several documents: group by action id, keeping the first.
    let mut grouped: BTreeMap<String, (Action, Vec<String>, usize)> = BTreeMap::new();
    for a in actions.iter().filter(|a| a.action_type != "CANCEL") {
        let sent = a
            .agents
            .iter()
            .filter(|id| positions.get(id.as_str()).is_some_and(|p| *p >= a.seq_no))
            .count();
        let entry = grouped
            .entry(a.action_id.clone())
            .or_insert_with(|| (a.clone(), Vec::new(), 0));
        entry.1.extend(a.agents.iter().cloned());
        entry.2 += sent;
    }
    let mut items: Vec<(String, Value)> = Vec::new();
    // fleet-edge's `agentId`: the actions sent to one agent (the console's history of an agent).
    let only = req.params.get("agentId").filter(|a| !a.is_empty());
    for (id, (action, agents, sent)) in grouped {
        if only.is_some_and(|a| !agents.iter().any(|x| x == a)) {
            continue;
        }
        let results = admin.action_results(&id)?;
        let item = status_item(
            &action,
            agents.len(),
            &results,
            sent,
            cancels.get(&id).map(String::as_str),
            now,
        );
        items.push((action.timestamp.clone(), item));
    }
    items.sort_by(|a, b| b.0.cmp(&a.0));
    page_of(items.into_iter().map(|(_, v)| v).collect(), &req.params, 20)
}

/// Runs the action routes.
pub(super) fn run(admin: &dyn Admin, req: &AdminRequest, now: SystemTime) -> Answer {
    let body = &req.body;
    match &req.route {
        Route::Upgrade(id) => {
            let data = super::upgrade::upgrade_data(body)?;
            send_one(admin, id, "UPGRADE", data, body, now)
        }
        Route::RequestDiagnostics(id) => send_one(
            admin,
            id,
            "REQUEST_DIAGNOSTICS",
            diagnostics_data(body),
            body,
            now,
        ),
        Route::Migrate(id) => {
            let text = |name: &str| {
                body.get(name)
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
            if let Some(settings) = body.get("settings").filter(|s| s.is_object()) {
                data["settings"] = settings.clone();
            }
            send_one(admin, id, "MIGRATE", data, body, now)
        }
        Route::PrivilegeLevelChange(id) => {
            // Kibana's body `{user_info?}` switches the agent to unprivileged mode.
            let mut data = json!({"unprivileged": true});
            if let Some(info) = body.get("user_info").filter(|v| v.is_object()) {
                data["user_info"] = info.clone();
            }
            send_one(admin, id, "PRIVILEGE_LEVEL_CHANGE", data, body, now)
        }
        Route::AgentAction(id) => {
            let Some(action) = body.get("action").filter(|a| a.is_object()) else {
                return Err(Failure::Invalid(
                    "the body must be {\"action\": {\"type\": ..., \"data\": ...}}".into(),
                ));
            };
            let Some(kind) = action.get("type").and_then(Value::as_str) else {
                return Err(Failure::Invalid("action.type is required".into()));
            };
            let data = action.get("data").cloned().unwrap_or(Value::Null);
            let (status, answer) = send_one(admin, id, kind, data, action, now)?;
            let action_id = answer["actionId"].clone();
            let item = admin
                .store()
                .action(action_id.as_str().unwrap_or_default())?
                .map(|a| {
                    let mut v = serde_json::to_value(&a).unwrap_or(Value::Null);
                    v["id"] = json!(a.action_id);
                    v
                })
                .unwrap_or(Value::Null);
            Ok((status, json!({"item": item, "actionId": action_id})))
        }
        Route::CancelAction(target) => {
            let original = admin
                .store()
                .action(target)?
                .ok_or_else(|| Failure::NotFound(format!("action {target} not found")))?;
            let cancel = create_action(
                admin,
                new_action(
                    "CANCEL",
                    original.agents.clone(),
                    json!({"target_id": target}),
                    now,
                ),
            )?;
            let mut item = serde_json::to_value(&cancel).unwrap_or(Value::Null);
            item["id"] = json!(cancel.action_id);
            Ok((200, json!({"item": item})))
        }
        Route::ActionStatus => action_status(admin, req, now),
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
            // Succeeded / failed / in progress over the action's target agents.
            let targets = action.map(|a| a.agents).unwrap_or_default();
            let summary = super::upgrade::results_summary(&targets, &results);
            Ok((
                200,
                json!({"total": items.len(), "items": items, "summary": summary}),
            ))
        }
        _ => Err(Failure::NotFound("no such action route".into())),
    }
}
