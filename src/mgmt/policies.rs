//! Agent policies in the management API, Kibana's paths and bodies: list (with agent counts),
//! get, `/full` (the compiled policy agents receive), create and update with Kibana's settings
//! body, delete (`POST /agent_policies/delete`, refused while agents use the policy). The
//! settings fleet-edge keeps — `name`, `namespace`, `description`, `inactivity_timeout`,
//! `monitoring_enabled` — live in the policy file itself (top-level members the agent ignores,
//! `agent.monitoring` for the last), so a policy is one file. Uploading a compiled policy, which
//! Kibana has no path for, is `PUT /api/fleet/fleet_edge/policies/{id}`.

use std::collections::HashMap;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::admin::{page_of, Admin, AdminRequest, Answer, Failure};
use super::listing::inactivity_timeout;
use super::Route;
use crate::backend::ops::uuid_v4;
use crate::model::PolicyDoc;
use crate::transform::output_check::output_problems;

/// The settings a create or update body may carry.
const SETTINGS: [&str; 5] = [
    "name",
    "namespace",
    "description",
    "inactivity_timeout",
    "monitoring_enabled",
];

/// Kibana's `AgentPolicy` item for a stored policy.
fn item(p: &PolicyDoc, agents: usize) -> Value {
    let data = &p.data;
    let text = |k: &str, default: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    let monitoring = data.pointer("/agent/monitoring");
    let on = |k: &str| {
        monitoring.and_then(|m| m.get("enabled")) != Some(&json!(false))
            && monitoring.and_then(|m| m.get(k)) == Some(&json!(true))
    };
    let mut enabled = Vec::new();
    if on("logs") {
        enabled.push("logs");
    }
    if on("metrics") {
        enabled.push("metrics");
    }
    json!({
        "id": p.policy_id,
        "name": text("name", &p.policy_id),
        "namespace": text("namespace", "default"),
        "description": text("description", ""),
        "status": "active",
        "is_managed": false,
        "is_protected": false,
        "revision": p.revision_idx,
        "updated_at": p.timestamp,
        "updated_by": "fleet-edge",
        "agents": agents,
        "inactivity_timeout": inactivity_timeout(data).map_or(0, |d| d.as_secs()),
        "monitoring_enabled": enabled,
        "package_policies": [],
        "problems": output_problems(data),
    })
}

/// Active agents per policy.
fn agent_counts(admin: &dyn Admin) -> Result<HashMap<String, usize>, Failure> {
    super::listing::active_per_policy(admin)
}

fn find(admin: &dyn Admin, id: &str) -> Result<PolicyDoc, Failure> {
    admin
        .store()
        .latest_policies()?
        .into_iter()
        .find(|p| p.policy_id == id)
        .ok_or_else(|| Failure::NotFound(format!("agent policy {id} not found")))
}

/// Writes the settings of a create/update body into the policy data; refuses members it does
/// not manage (so nothing a client sends is silently dropped).
fn apply_settings(
    data: &mut Map<String, Value>,
    body: &Value,
    extra: &[&str],
) -> Result<(), Failure> {
    let Some(body) = body.as_object() else {
        return Err(Failure::Invalid("the body must be a JSON object".into()));
    };
    if let Some(unknown) = body
        .keys()
        .find(|k| !SETTINGS.contains(&k.as_str()) && !extra.contains(&k.as_str()))
    {
        return Err(Failure::Invalid(format!(
            "fleet-edge does not manage the agent policy setting {unknown:?} (it manages: {})",
            SETTINGS.join(", ")
        )));
    }
    for key in ["name", "namespace", "description"] {
        match body.get(key) {
            None => {}
            Some(Value::String(s)) if key == "description" || !s.trim().is_empty() => {
                data.insert(key.into(), json!(s));
            }
            Some(other) => {
                return Err(Failure::Invalid(format!(
                    "{key} must be a non-empty string, not {other}"
                )))
            }
        }
    }
    if let Some(t) = body.get("inactivity_timeout") {
        let secs = t.as_u64().ok_or_else(|| {
            Failure::Invalid("inactivity_timeout must be a number of seconds".into())
        })?;
        data.insert("inactivity_timeout".into(), json!(secs));
    }
    if let Some(list) = body.get("monitoring_enabled") {
        let names: Vec<&str> = list
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !list.is_array() || names.iter().any(|n| !matches!(*n, "logs" | "metrics")) {
            return Err(Failure::Invalid(
                "monitoring_enabled must be a list of \"logs\" and \"metrics\"".into(),
            ));
        }
        let agent = data.entry("agent").or_insert_with(|| json!({}));
        if !agent.is_object() {
            *agent = json!({});
        }
        let monitoring = agent
            .as_object_mut()
            .map(|a| a.entry("monitoring").or_insert_with(|| json!({})));
        if let Some(Value::Object(m)) = monitoring {
            m.insert("enabled".into(), json!(!names.is_empty()));
            m.insert("logs".into(), json!(names.contains(&"logs")));
            m.insert("metrics".into(), json!(names.contains(&"metrics")));
        }
    }
    Ok(())
}

fn install(admin: &dyn Admin, id: &str, data: Map<String, Value>) -> Answer {
    admin
        .apply_policy(id, Value::Object(data))
        .map_err(Failure::Invalid)?;
    let counts = agent_counts(admin)?;
    let p = find(admin, id)?;
    Ok((
        200,
        json!({"item": item(&p, counts.get(id).copied().unwrap_or(0))}),
    ))
}

/// Runs the policy routes.
pub(super) fn run(admin: &dyn Admin, req: &AdminRequest, _now: SystemTime) -> Answer {
    match &req.route {
        Route::ListPolicies => {
            let counts = agent_counts(admin)?;
            let mut policies = admin.store().latest_policies()?;
            policies.sort_by(|a, b| a.policy_id.cmp(&b.policy_id));
            let items = policies
                .iter()
                .map(|p| item(p, counts.get(&p.policy_id).copied().unwrap_or(0)))
                .collect();
            page_of(items, &req.params, 10_000)
        }
        Route::GetPolicy(id) => {
            let counts = agent_counts(admin)?;
            let p = find(admin, id)?;
            Ok((
                200,
                json!({"item": item(&p, counts.get(id).copied().unwrap_or(0))}),
            ))
        }
        Route::FullPolicy(id) => Ok((200, json!({"item": find(admin, id)?.data}))),
        Route::CreatePolicy => {
            let name = req.body.get("name").and_then(Value::as_str).unwrap_or("");
            if name.trim().is_empty() {
                return Err(Failure::Invalid("\"name\" is required".into()));
            }
            let policies = admin.store().latest_policies()?;
            if policies
                .iter()
                .any(|p| p.data.get("name") == Some(&json!(name)))
            {
                return Err(Failure::Conflict(format!(
                    "an agent policy named {name:?} already exists"
                )));
            }
            let id = match req.body.get("id") {
                Some(Value::String(id)) if !id.is_empty() => id.clone(),
                None => uuid_v4(),
                Some(other) => {
                    return Err(Failure::Invalid(format!(
                        "id must be a non-empty string, not {other}"
                    )))
                }
            };
            if policies.iter().any(|p| p.policy_id == id) {
                return Err(Failure::Conflict(format!(
                    "agent policy {id} already exists"
                )));
            }
            // The new policy sends where the default policy sends, with no inputs yet.
            let base = policies
                .iter()
                .find(|p| p.policy_id == crate::model::policy::DEFAULT_POLICY_ID)
                .or_else(|| policies.first())
                .ok_or_else(|| {
                    Failure::Invalid(
                        "no policy to take the outputs from: upload a compiled policy with PUT /api/fleet/fleet_edge/policies/{id} first".into(),
                    )
                })?;
            let mut data = Map::new();
            for key in ["outputs", "output_permissions", "fleet", "agent"] {
                if let Some(v) = base.data.get(key) {
                    data.insert(key.into(), v.clone());
                }
            }
            data.insert("id".into(), json!(id));
            data.insert("namespace".into(), json!("default"));
            data.insert("inputs".into(), json!([]));
            apply_settings(&mut data, &req.body, &["id"])?;
            install(admin, &id, data)
        }
        Route::UpdatePolicy(id) => {
            let current = find(admin, id)?;
            let Value::Object(mut data) = current.data else {
                return Err(Failure::Invalid(format!(
                    "agent policy {id} is not an object"
                )));
            };
            apply_settings(&mut data, &req.body, &[])?;
            install(admin, id, data)
        }
        Route::DeletePolicy => {
            let Some(id) = req.body.get("agentPolicyId").and_then(Value::as_str) else {
                return Err(Failure::Invalid("\"agentPolicyId\" is required".into()));
            };
            let p = find(admin, id)?;
            let assigned = agent_counts(admin)?.get(id).copied().unwrap_or(0);
            if assigned > 0 {
                return Err(Failure::Invalid(format!(
                    "Cannot delete an agent policy that is assigned to any active or inactive agents ({assigned} agents use {id}); reassign or unenroll them first"
                )));
            }
            for key in admin.list_enrollment_keys()? {
                if key.active && key.policy_id == id {
                    admin.revoke_enrollment_key(&key.api_key_id)?;
                }
            }
            admin.delete_policy(id).map_err(Failure::Invalid)?;
            log::info!("agent policy {id} deleted by the operator");
            let name = p.data.get("name").cloned().unwrap_or_else(|| json!(id));
            Ok((200, json!({"id": id, "name": name})))
        }
        Route::UploadPolicy(id) => {
            let revision = admin
                .apply_policy(id, req.body.clone())
                .map_err(Failure::Invalid)?;
            Ok((200, json!({"item": {"id": id, "revision": revision}})))
        }
        _ => Err(Failure::NotFound("no such policy route".into())),
    }
}
