//! Agents in the management API, Kibana's paths and bodies: the agent item (Kibana's `Agent`
//! with its computed `status`, plus what fleet-edge adds for the operator: `problems`,
//! `upgrade_failure`, `hostname`, `version`), listing with `page` / `perPage` / `showInactive` /
//! `kuery` (the subset of `query.rs`) / `sortField` / `sortOrder` / `getStatusSummary`, the
//! status counts, tags, reassign, unenroll (with `force` and `revoke`), delete, and the
//! `bulk_*` variants. The per-agent actions of other kinds live in `actions.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::actions::{create_action, new_action};
use super::admin::{with_pending, Admin, AdminRequest, Answer, Failure};
use super::listing::{counts, select, sort, PolicyFacts, Source};
use super::query::Params;
use super::{Bulk, Route};
use crate::model::agent_status::upgrade_failure;
use crate::model::time::rfc3339_seconds;
use crate::model::Agent;

/// An agent as the management API shows it: Kibana's `Agent` item and fleet-edge's additions.
pub fn view(agent: &Agent, facts: &PolicyFacts, now: SystemTime) -> Value {
    let status = facts.status(agent, now);
    let text = |s: &str| {
        if s.is_empty() {
            Value::Null
        } else {
            json!(s)
        }
    };
    let member = |name: &str| agent.other.get(name).cloned().unwrap_or(Value::Null);
    let problems = match facts.problems(&agent.policy_id) {
        Some(list) if agent.active => list.clone(),
        _ => Vec::new(),
    };
    let mut item = json!({
        "id": agent.id,
        "type": agent.agent_type,
        "active": agent.active,
        "status": status,
        "policy_id": text(&agent.policy_id),
        "policy_revision": if agent.policy_revision_idx == 0 { Value::Null } else { json!(agent.policy_revision_idx) },
        "enrolled_at": text(&agent.enrolled_at),
        "unenrolled_at": text(&agent.unenrolled_at),
        "unenrollment_started_at": member("unenrollment_started_at"),
        "upgrade_started_at": member("upgrade_started_at"),
        "upgraded_at": member("upgraded_at"),
        "upgrade_details": agent.upgrade_details.clone().unwrap_or(Value::Null),
        "last_checkin": text(&agent.last_checkin),
        "last_checkin_status": text(&agent.last_checkin_status),
        "last_checkin_message": text(&agent.last_checkin_message),
        "unhealthy_reason": member("unhealthy_reason"),
        "audit_unenrolled_reason": text(&agent.audit_unenrolled_reason),
        "local_metadata": agent.local_metadata.clone().unwrap_or_else(|| json!({})),
        "user_provided_metadata": agent.user_provided_metadata.clone().unwrap_or_else(|| json!({})),
        "tags": agent.tags,
        "components": agent.components.clone().unwrap_or_else(|| json!([])),
        "agent": {"id": agent.id, "version": agent.version()},
        "access_api_key_id": text(&agent.access_api_key_id),
        "version": agent.version(),
        "hostname": hostname(agent).map_or(Value::Null, |h| json!(h)),
        "problems": problems,
        "upgrade_failure": upgrade_failure(agent).map_or(Value::Null, Value::from),
    });
    if let Value::Object(members) = &mut item {
        members.extend(crate::opamp::document::operator_view(agent));
    }
    item
}

fn hostname(agent: &Agent) -> Option<&str> {
    agent
        .local_metadata
        .as_ref()
        .and_then(|m| m.pointer("/host/hostname"))
        .and_then(Value::as_str)
}

/// Kibana's `agent_status` results from the counts (`error` is error + degraded, `updating`
/// includes enrolling and unenrolling, `active` is all but inactive and unenrolled), plus
/// fleet-edge's `by_status` with every status apart.
fn status_results(by: &BTreeMap<&'static str, usize>) -> Value {
    let n = |s: &str| by.get(s).copied().unwrap_or(0);
    let all: usize = by.values().sum();
    let active = all - n("inactive") - n("unenrolled");
    json!({
        "online": n("online"),
        "error": n("error") + n("degraded"),
        "offline": n("offline"),
        "updating": n("updating") + n("enrolling") + n("unenrolling"),
        "inactive": n("inactive"),
        "unenrolled": n("unenrolled"),
        "uninstalled": n("uninstalled"),
        "orphaned": n("orphaned"),
        "other": 0,
        "events": 0,
        "total": active,
        "all": all,
        "active": active,
        "by_status": by,
    })
}

/// An enrolled agent, or why not.
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

fn policy_exists(admin: &dyn Admin, id: &str) -> Result<(), Failure> {
    if admin
        .store()
        .latest_policies()?
        .iter()
        .any(|p| p.policy_id == id)
    {
        Ok(())
    } else {
        Err(Failure::Invalid(format!("policy {id} does not exist")))
    }
}

fn fields(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Unenrolls: an UNENROLL action the agent acknowledges (`unenrollment_started_at` meanwhile),
/// or with `force` / `revoke` at once — the agent is deactivated without waiting for it (its
/// next checkin is refused, which makes a real agent unenroll itself), and with `revoke` its
/// API keys are invalidated too. Returns the action id when one was sent.
fn unenroll(
    admin: &dyn Admin,
    agent: &Agent,
    force: bool,
    revoke: bool,
    now: SystemTime,
) -> Result<Option<String>, Failure> {
    let stamp = rfc3339_seconds(now);
    if force || revoke {
        if revoke {
            let mut keys = vec![agent.access_api_key_id.clone()];
            keys.extend(agent.outputs.values().map(|k| k.api_key_id.clone()));
            keys.retain(|k| !k.is_empty());
            admin.store().invalidate_api_keys(&keys)?;
        }
        admin.store().update_agent(
            &agent.id,
            &fields(json!({"active": false, "unenrolled_at": stamp, "updated_at": stamp})),
        )?;
        log::info!(
            "audit: event.action=agent-unenroll event.outcome=success user.name=admin fleet.agent.id={} fleet.policy.id={} ({})",
            agent.id,
            agent.policy_id,
            if revoke { "forced, keys revoked" } else { "forced" }
        );
        return Ok(None);
    }
    let action = create_action(
        admin,
        new_action("UNENROLL", vec![agent.id.clone()], Value::Null, now),
    )?;
    admin.store().update_agent(
        &agent.id,
        &fields(json!({"unenrollment_started_at": stamp})),
    )?;
    Ok(Some(action.action_id))
}

/// Moves an agent to another policy, as Kibana does: its `policy_id` changes, its revision is
/// cleared (it is `updating` until it runs the new policy), and a POLICY_REASSIGN action tells
/// it.
fn reassign(
    admin: &dyn Admin,
    agent: &Agent,
    policy_id: &str,
    now: SystemTime,
) -> Result<String, Failure> {
    let action = create_action(
        admin,
        new_action(
            "POLICY_REASSIGN",
            vec![agent.id.clone()],
            json!({"policy_id": policy_id}),
            now,
        ),
    )?;
    admin.store().update_agent(
        &agent.id,
        &fields(json!({"policy_id": policy_id, "policy_revision_idx": null,
                        "updated_at": rfc3339_seconds(now)})),
    )?;
    Ok(action.action_id)
}

/// Tags sorted and de-duplicated, as stored.
fn tag_list(v: &Value) -> Result<Vec<String>, Failure> {
    let list = v
        .as_array()
        .ok_or_else(|| Failure::Invalid("tags must be a list of strings".into()))?;
    let tags: BTreeSet<String> = list
        .iter()
        .map(|t| {
            t.as_str()
                .map(str::to_owned)
                .ok_or_else(|| Failure::Invalid("tags must be a list of strings".into()))
        })
        .collect::<Result<_, _>>()?;
    Ok(tags.into_iter().collect())
}

/// The agents of a bulk body's `agents`: a list of ids, or a kuery string.
fn bulk_targets(
    admin: &dyn Admin,
    req: &AdminRequest,
    now: SystemTime,
) -> Result<Vec<Agent>, Failure> {
    match req.body.get("agents") {
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|id| {
                let id = id
                    .as_str()
                    .ok_or_else(|| Failure::Invalid("agents must be ids or a kuery".into()))?;
                enrolled(admin, id)
            })
            .collect(),
        Some(Value::String(kuery)) => {
            let facts = PolicyFacts::read(admin)?;
            let mut params = Params::default();
            params.set("kuery", kuery);
            params.set("showInactive", "true");
            let source = Source::read(admin, Some(req))?;
            let rows = select(source.rows(&facts, now), &params)?;
            let mut agents = Vec::new();
            for row in rows.iter().filter(|r| r.active) {
                agents.extend(source.agent(admin, Some(req), row)?.filter(|a| a.active));
            }
            Ok(agents)
        }
        _ => Err(Failure::Invalid(
            "\"agents\" (a list of agent ids or a kuery) is required".into(),
        )),
    }
}

fn bulk(admin: &dyn Admin, req: &AdminRequest, kind: Bulk, now: SystemTime) -> Answer {
    let targets = bulk_targets(admin, req, now)?;
    let ids: Vec<String> = targets.iter().map(|a| a.id.clone()).collect();
    let text = |name: &str| req.body.get(name).and_then(Value::as_str).unwrap_or("");
    let flag = |name: &str| req.body.get(name).and_then(Value::as_bool).unwrap_or(false);
    let action_id = match kind {
        Bulk::Reassign => {
            let policy = text("policy_id");
            policy_exists(admin, policy)?;
            let mut last = String::new();
            for agent in &targets {
                last = reassign(admin, agent, policy, now)?;
            }
            last
        }
        Bulk::Unenroll => {
            let (force, revoke) = (flag("force"), flag("revoke"));
            if force || revoke {
                for agent in &targets {
                    unenroll(admin, agent, force, revoke, now)?;
                }
                String::new()
            } else {
                let action =
                    create_action(admin, new_action("UNENROLL", ids.clone(), Value::Null, now))?;
                let stamp = rfc3339_seconds(now);
                for id in &ids {
                    admin
                        .store()
                        .update_agent(id, &fields(json!({"unenrollment_started_at": stamp})))?;
                }
                action.action_id
            }
        }
        Bulk::Upgrade => {
            let action = super::upgrade::bulk_action(ids.clone(), &req.body, now)?;
            let action = create_action(admin, action)?;
            super::actions::mark_upgrade_started(admin, &ids, now)?;
            action.action_id
        }
        Bulk::RequestDiagnostics => {
            let data = super::actions::diagnostics_data(&req.body);
            create_action(
                admin,
                new_action("REQUEST_DIAGNOSTICS", ids.clone(), data, now),
            )?
            .action_id
        }
        Bulk::UpdateTags => {
            let add = tag_list(req.body.get("tagsToAdd").unwrap_or(&json!([])))?;
            let remove = tag_list(req.body.get("tagsToRemove").unwrap_or(&json!([])))?;
            for agent in &targets {
                let mut tags: BTreeSet<String> = agent.tags.iter().cloned().collect();
                tags.extend(add.iter().cloned());
                tags.retain(|t| !remove.contains(t));
                admin
                    .store()
                    .update_agent(&agent.id, &fields(json!({"tags": tags})))?;
            }
            tags_action(admin, &ids, now)?
        }
    };
    Ok((200, json!({"actionId": action_id, "agents": ids})))
}

/// Records a bulk tag update as Kibana does: an `UPDATE_TAGS` action (agents are never sent
/// it: the type is not one they accept) with a result for every agent, complete at once; its id
/// is the answer's `actionId`, and `action_status` lists it.
fn tags_action(admin: &dyn Admin, ids: &[String], now: SystemTime) -> Result<String, Failure> {
    let action = admin.add_action(new_action("UPDATE_TAGS", ids.to_vec(), Value::Null, now))?;
    for id in ids {
        admin
            .store()
            .create_action_result(&crate::model::ActionResult {
                action_id: action.action_id.clone(),
                agent_id: id.clone(),
                timestamp: rfc3339_seconds(now),
                ..Default::default()
            })?;
    }
    log::info!(
        "audit: event.action=fleet-action-update_tags event.outcome=success user.name=admin fleet.action.id={} fleet.agent.id={}",
        action.action_id,
        ids.join(",")
    );
    Ok(action.action_id)
}

/// `GET /api/fleet/agents`: the page of the selected agents, sorted; only the page's documents
/// are read in full.
fn list(admin: &dyn Admin, req: &AdminRequest, now: SystemTime) -> Answer {
    list_from(admin, req, now, Source::read(admin, Some(req))?)
}

/// [`list`] over a given source (the tests compare the two sources).
fn list_from(admin: &dyn Admin, req: &AdminRequest, now: SystemTime, source: Source) -> Answer {
    let facts = PolicyFacts::read(admin)?;
    let mut rows = select(source.rows(&facts, now), &req.params)?;
    sort(&mut rows, &req.params)?;
    let page = req.params.number("page", 1).map_err(Failure::Invalid)?;
    let per_page = req.params.number("perPage", 20).map_err(Failure::Invalid)?;
    let mut items = Vec::new();
    for row in rows
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
    {
        // An agent deleted since the summaries were read is left out.
        if let Some(agent) = source.agent(admin, Some(req), row)? {
            items.push(view(&agent, &facts, now));
        }
    }
    let mut body = json!({"items": items, "total": rows.len(), "page": page, "perPage": per_page});
    if req
        .params
        .flag("getStatusSummary")
        .map_err(Failure::Invalid)?
    {
        body["statusSummary"] = json!(counts(&rows));
    }
    Ok((200, body))
}

/// Runs the agent routes.
pub(super) fn run(admin: &dyn Admin, req: &AdminRequest, now: SystemTime) -> Answer {
    match &req.route {
        Route::ListAgents => list(admin, req, now),
        Route::GetAgent(id) => {
            let agent = admin
                .store()
                .agent(id)?
                .ok_or_else(|| Failure::NotFound(format!("agent {id} not found")))?;
            let agent = with_pending(agent, &req.pending_checkins);
            let facts = PolicyFacts::read(admin)?;
            Ok((200, json!({"item": view(&agent, &facts, now)})))
        }
        Route::AgentStatusCounts => {
            let facts = PolicyFacts::read(admin)?;
            let mut params = req.params.clone();
            params.set("showInactive", "true");
            let source = Source::read(admin, Some(req))?;
            let rows = select(source.rows(&facts, now), &params)?;
            Ok((200, json!({"results": status_results(&counts(&rows))})))
        }
        Route::AgentTags => {
            let facts = PolicyFacts::read(admin)?;
            let source = Source::read(admin, Some(req))?;
            let rows = select(source.rows(&facts, now), &req.params)?;
            let tags: BTreeSet<&String> = rows.iter().flat_map(|r| r.tags).collect();
            Ok((200, json!({"items": tags})))
        }
        Route::UpdateAgent(id) => {
            let agent = admin
                .store()
                .agent(id)?
                .ok_or_else(|| Failure::NotFound(format!("agent {id} not found")))?;
            let mut update = Map::new();
            if let Some(tags) = req.body.get("tags") {
                update.insert("tags".into(), json!(tag_list(tags)?));
            }
            if let Some(meta) = req.body.get("user_provided_metadata") {
                if !meta.is_object() {
                    return Err(Failure::Invalid(
                        "user_provided_metadata must be an object".into(),
                    ));
                }
                update.insert("user_provided_metadata".into(), meta.clone());
            }
            if update.is_empty() {
                return Err(Failure::Invalid(
                    "nothing to update: give tags or user_provided_metadata".into(),
                ));
            }
            update.insert("updated_at".into(), json!(rfc3339_seconds(now)));
            admin.store().update_agent(&agent.id, &update)?;
            let agent = admin
                .store()
                .agent(id)?
                .ok_or_else(|| Failure::NotFound(format!("agent {id} not found")))?;
            let facts = PolicyFacts::read(admin)?;
            Ok((200, json!({"item": view(&agent, &facts, now)})))
        }
        Route::DeleteAgent(id) => {
            let agent = admin
                .store()
                .agent(id)?
                .ok_or_else(|| Failure::NotFound(format!("agent {id} not found")))?;
            if !agent.access_api_key_id.is_empty() {
                admin
                    .store()
                    .invalidate_api_keys(std::slice::from_ref(&agent.access_api_key_id))?;
            }
            admin.store().delete_agent(id)?;
            log::info!(
                "audit: event.action=agent-delete event.outcome=success user.name=admin fleet.agent.id={id}"
            );
            Ok((200, json!({"action": "deleted"})))
        }
        Route::Reassign(id) => {
            let agent = enrolled(admin, id)?;
            let Some(policy) = req.body.get("policy_id").and_then(Value::as_str) else {
                return Err(Failure::Invalid("\"policy_id\" is required".into()));
            };
            policy_exists(admin, policy)?;
            let action_id = reassign(admin, &agent, policy, now)?;
            Ok((200, json!({"actionId": action_id})))
        }
        Route::Unenroll(id) => {
            let agent = admin
                .store()
                .agent(id)?
                .ok_or_else(|| Failure::NotFound(format!("agent {id} not found")))?;
            let flag = |name: &str| req.body.get(name).and_then(Value::as_bool).unwrap_or(false);
            let (force, revoke) = (flag("force"), flag("revoke"));
            if !agent.active && !revoke {
                return Err(Failure::Invalid(format!("agent {id} is not enrolled")));
            }
            let sent = unenroll(admin, &agent, force, revoke, now)?;
            Ok((
                200,
                match sent {
                    Some(action_id) => json!({"actionId": action_id,
                        "item": {"action_id": action_id, "type": "UNENROLL", "agent_id": agent.id}}),
                    None => json!({}),
                },
            ))
        }
        Route::Bulk(kind) => bulk(admin, req, *kind, now),
        _ => Err(Failure::NotFound("no such agent route".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AgentStatus;

    #[test]
    fn kibana_counts_fold_statuses() {
        let mut by: BTreeMap<&'static str, usize> =
            AgentStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for (s, n) in [
            ("online", 2),
            ("degraded", 1),
            ("error", 1),
            ("enrolling", 1),
            ("unenrolled", 3),
            ("inactive", 1),
        ] {
            by.insert(s, n);
        }
        let r = status_results(&by);
        assert_eq!(r["error"], 2);
        assert_eq!(r["updating"], 1);
        assert_eq!(r["all"], 9);
        assert_eq!(r["active"], 5);
        assert_eq!(r["by_status"]["degraded"], 1);
    }
}
