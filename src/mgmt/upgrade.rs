//! `POST /api/fleet/agents/bulk_upgrade` (Kibana's path and body): one UPGRADE action for a list
//! of agents, the agents of a policy (`"agents": "policy_id:<id>"`) or every enrolled agent
//! (`"agents": "*"`), with Kibana's rollout fields: `start_time` (default now when a rollout is
//! asked) and `rollout_duration_seconds`, which the server spreads over the agents on delivery
//! (fleet-protocol.md §5.2, `core::actions::rollout_start_time`). `force` is accepted: fleet-edge
//! checks no upgradeability, so there is nothing to force.

use std::time::SystemTime;

use serde_json::{json, Value};

use crate::backend::ops::uuid_v4;
use crate::model::time::{parse_rfc3339, rfc3339_millis};
use crate::model::{Action, Agent};

/// Why a bulk upgrade is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BulkError {
    /// A named agent does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The body is not a bulk upgrade (400).
    #[error("{0}")]
    Invalid(String),
}

/// Which enrolled agents `selector` (Kibana's `agents` member) names, in `agents`' order.
pub fn select(agents: &[Agent], selector: &Value) -> Result<Vec<String>, BulkError> {
    let enrolled = || agents.iter().filter(|a| a.active);
    let chosen: Vec<String> = match selector {
        Value::Array(ids) => {
            let mut out = Vec::new();
            for id in ids {
                let id = id.as_str().unwrap_or_default();
                match agents.iter().find(|a| a.id == id) {
                    Some(a) if a.active => out.push(a.id.clone()),
                    Some(_) => {
                        return Err(BulkError::Invalid(format!("agent {id} is not enrolled")))
                    }
                    None => return Err(BulkError::NotFound(format!("agent {id} not found"))),
                }
            }
            out.dedup();
            out
        }
        Value::String(all) if all.trim() == "*" => enrolled().map(|a| a.id.clone()).collect(),
        Value::String(kuery) => {
            let policy = kuery
                .trim()
                .strip_prefix("policy_id:")
                .map(|p| p.trim().trim_matches('"'))
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    BulkError::Invalid(format!(
                        "\"agents\" {kuery:?}: use a list of agent ids, \"policy_id:<id>\" or \"*\""
                    ))
                })?;
            enrolled()
                .filter(|a| a.policy_id == policy)
                .map(|a| a.id.clone())
                .collect()
        }
        _ => {
            return Err(BulkError::Invalid(
                "\"agents\" is required: a list of agent ids, \"policy_id:<id>\" or \"*\"".into(),
            ))
        }
    };
    if chosen.is_empty() {
        return Err(BulkError::Invalid(
            "no enrolled agent matches \"agents\"".into(),
        ));
    }
    Ok(chosen)
}

/// The UPGRADE action a bulk upgrade body asks for, over the store's `agents`.
pub fn bulk_action(agents: &[Agent], body: &Value, now: SystemTime) -> Result<Action, BulkError> {
    let invalid = |m: &str| BulkError::Invalid(m.to_owned());
    let version = body
        .get("version")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid("\"version\" is required"))?;
    let targets = select(agents, body.get("agents").unwrap_or(&Value::Null))?;
    let mut data = json!({"version": version});
    if let Some(uri) = body.get("source_uri").filter(|v| !v.is_null()) {
        let uri = uri
            .as_str()
            .ok_or_else(|| invalid("\"source_uri\" must be a string"))?;
        crate::config::parse_http_url(uri, None)
            .map_err(|e| BulkError::Invalid(format!("\"source_uri\": {e}")))?;
        data["source_uri"] = json!(uri);
    }
    let rollout = match body
        .get("rollout_duration_seconds")
        .filter(|v| !v.is_null())
    {
        None => None,
        Some(v) => Some(v.as_u64().filter(|s| *s > 0).ok_or_else(|| {
            invalid("\"rollout_duration_seconds\" must be a positive whole number")
        })?),
    };
    let start_time = match body.get("start_time").and_then(Value::as_str) {
        Some(t) => {
            let parsed = parse_rfc3339(t).ok_or_else(|| {
                BulkError::Invalid(format!("\"start_time\" {t:?} is not RFC 3339"))
            })?;
            Some(rfc3339_millis(parsed))
        }
        None => rollout.map(|_| rfc3339_millis(now)),
    };
    let mut action = Action {
        action_id: uuid_v4(),
        action_type: "UPGRADE".into(),
        agents: targets,
        timestamp: rfc3339_millis(now),
        start_time: start_time.unwrap_or_default(),
        data,
        ..Action::default()
    };
    if let Some(seconds) = rollout {
        action
            .other
            .insert("rollout_duration_seconds".into(), json!(seconds));
    }
    Ok(action)
}

/// An action's progress over its target agents: results without an error succeeded, with one
/// failed, and targets without a result are still in progress.
pub fn results_summary(targets: &[String], results: &[crate::model::ActionResult]) -> Value {
    let failed = results.iter().filter(|r| !r.error.is_empty()).count();
    let answered: std::collections::HashSet<&str> =
        results.iter().map(|r| r.agent_id.as_str()).collect();
    let in_progress = targets
        .iter()
        .filter(|t| !answered.contains(t.as_str()))
        .count();
    json!({"succeeded": results.len() - failed, "failed": failed, "in_progress": in_progress})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, policy: &str, active: bool) -> Agent {
        Agent {
            id: id.into(),
            policy_id: policy.into(),
            active,
            ..Agent::default()
        }
    }

    #[test]
    fn results_summarise_succeeded_failed_and_in_progress() {
        let result = |agent: &str, error: &str| crate::model::ActionResult {
            agent_id: agent.into(),
            error: error.into(),
            ..Default::default()
        };
        let targets: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(
            results_summary(&targets, &[result("a", ""), result("b", "download failed")]),
            json!({"succeeded": 1, "failed": 1, "in_progress": 2})
        );
        assert_eq!(
            results_summary(&targets, &[]),
            json!({"succeeded": 0, "failed": 0, "in_progress": 4})
        );
    }

    #[test]
    fn selectors_name_lists_policies_or_everyone_enrolled() {
        let agents = [
            agent("a", "p1", true),
            agent("b", "p2", true),
            agent("c", "p1", false),
        ];
        assert_eq!(select(&agents, &json!(["b", "a"])).unwrap(), ["b", "a"]);
        assert_eq!(select(&agents, &json!("policy_id:\"p1\"")).unwrap(), ["a"]);
        assert_eq!(select(&agents, &json!("*")).unwrap(), ["a", "b"]);
        assert!(matches!(
            select(&agents, &json!(["zz"])),
            Err(BulkError::NotFound(_))
        ));
        assert!(matches!(
            select(&agents, &json!(["c"])),
            Err(BulkError::Invalid(_))
        ));
        assert!(matches!(
            select(&agents, &json!("policy_id:none")),
            Err(BulkError::Invalid(_))
        ));
        assert!(matches!(
            select(&agents, &json!("status:online")),
            Err(BulkError::Invalid(_))
        ));
        assert!(matches!(
            select(&agents, &Value::Null),
            Err(BulkError::Invalid(_))
        ));
    }

    #[test]
    fn a_rollout_starts_now_unless_told_and_carries_its_duration() {
        let agents = [agent("a", "p1", true), agent("b", "p1", true)];
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_275_853);
        let action = bulk_action(
            &agents,
            &json!({"agents": "*", "version": "9.6.0", "rollout_duration_seconds": 600, "source_uri": "https://h:8220/downloads/", "force": true}),
            now,
        )
        .unwrap();
        assert_eq!(action.agents, ["a", "b"]);
        assert_eq!(action.start_time, "2026-12-03T05:30:53.000Z");
        assert_eq!(action.other["rollout_duration_seconds"], 600);
        assert_eq!(
            action.data,
            json!({"version": "9.6.0", "source_uri": "https://h:8220/downloads/"})
        );
        let later = bulk_action(
            &agents,
            &json!({"agents": ["a"], "version": "9.6.0", "start_time": "2027-01-01T00:00:00Z"}),
            now,
        )
        .unwrap();
        assert_eq!(later.start_time, "2027-01-01T00:00:00.000Z");
        assert!(!later.other.contains_key("rollout_duration_seconds"));
        let plain =
            bulk_action(&agents, &json!({"agents": ["a"], "version": "9.6.0"}), now).unwrap();
        assert_eq!(plain.start_time, "");
        for bad in [
            json!({"agents": "*"}),
            json!({"agents": "*", "version": "9.6.0", "rollout_duration_seconds": -5}),
            json!({"agents": "*", "version": "9.6.0", "start_time": "tomorrow"}),
            json!({"agents": "*", "version": "9.6.0", "source_uri": "ftp://x"}),
        ] {
            assert!(
                matches!(bulk_action(&agents, &bad, now), Err(BulkError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
