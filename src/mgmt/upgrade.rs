//! UPGRADE actions from Kibana's bodies, one implementation for `POST /api/fleet/agents/{id}/upgrade`
//! (`{version, source_uri?, force?}`) and `POST /api/fleet/agents/bulk_upgrade` (the same plus
//! `agents`, chosen by `agents.rs`, and the rollout fields `start_time`, default now when a
//! rollout is asked, and `rollout_duration_seconds`, which the server spreads over the agents on
//! delivery: fleet-protocol.md §5.2, `transform::actions::rollout_start_time`). `force` is accepted:
//! fleet-edge checks no upgradeability, so there is nothing to force. An upgrade's results are
//! summarised over its target agents ([`results_summary`]).

use std::time::SystemTime;

use serde_json::{json, Value};

use super::admin::Failure;
use crate::backend::ops::uuid_v4;
use crate::model::time::{parse_rfc3339, rfc3339_millis, rfc3339_seconds};
use crate::model::{Action, ActionResult};

/// UPGRADE data from `{version, source_uri?}`: the version is required, a source URI must be
/// an http(s) URL.
pub(super) fn upgrade_data(body: &Value) -> Result<Value, Failure> {
    let invalid = |m: &str| Failure::Invalid(m.to_owned());
    let version = body
        .get("version")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid("\"version\" is required"))?;
    let mut data = json!({"version": version});
    if let Some(uri) = body.get("source_uri").filter(|v| !v.is_null()) {
        let uri = uri
            .as_str()
            .ok_or_else(|| invalid("\"source_uri\" must be a string"))?;
        crate::config::parse_http_url(uri, None)
            .map_err(|e| Failure::Invalid(format!("\"source_uri\": {e}")))?;
        data["source_uri"] = json!(uri);
    }
    Ok(data)
}

/// The UPGRADE action a bulk upgrade body asks for, to `agents` (already chosen).
pub(super) fn bulk_action(
    agents: Vec<String>,
    body: &Value,
    now: SystemTime,
) -> Result<Action, Failure> {
    let data = upgrade_data(body)?;
    let rollout = match body
        .get("rollout_duration_seconds")
        .filter(|v| !v.is_null())
    {
        None => None,
        Some(v) => Some(v.as_u64().filter(|s| *s > 0).ok_or_else(|| {
            Failure::Invalid("\"rollout_duration_seconds\" must be a positive whole number".into())
        })?),
    };
    let start_time = match body.get("start_time").filter(|v| !v.is_null()) {
        Some(t) => {
            let parsed = t.as_str().and_then(parse_rfc3339).ok_or_else(|| {
                Failure::Invalid(format!("\"start_time\" {t} is not an RFC 3339 time"))
            })?;
            Some(rfc3339_millis(parsed))
        }
        None => rollout.map(|_| rfc3339_millis(now)),
    };
    // As `actions::new_action` makes them (which uses this file, so not called from here).
    let mut action = Action {
        action_id: uuid_v4(),
        action_type: "UPGRADE".into(),
        agents,
        timestamp: rfc3339_seconds(now),
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
pub fn results_summary(targets: &[String], results: &[ActionResult]) -> Value {
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

    #[test]
    fn results_summarise_succeeded_failed_and_in_progress() {
        let result = |agent: &str, error: &str| ActionResult {
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
    fn a_rollout_starts_now_unless_told_and_carries_its_duration() {
        let ab = || vec!["a".to_owned(), "b".to_owned()];
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_275_853);
        let action = bulk_action(
            ab(),
            &json!({"agents": "", "version": "9.6.0", "rollout_duration_seconds": 600, "source_uri": "https://h:8220/downloads/", "force": true}),
            now,
        )
        .unwrap_or_else(|_| panic!("a valid rollout"));
        assert_eq!(action.agents, ["a", "b"]);
        assert_eq!(action.action_type, "UPGRADE");
        assert_eq!(action.start_time, "2026-12-03T05:30:53.000Z");
        assert_eq!(action.other["rollout_duration_seconds"], 600);
        assert_eq!(
            action.data,
            json!({"version": "9.6.0", "source_uri": "https://h:8220/downloads/"})
        );
        let later = bulk_action(
            ab(),
            &json!({"version": "9.6.0", "start_time": "2027-01-01T00:00:00Z"}),
            now,
        )
        .unwrap_or_else(|_| panic!("a valid start time"));
        assert_eq!(later.start_time, "2027-01-01T00:00:00.000Z");
        assert!(!later.other.contains_key("rollout_duration_seconds"));
        let plain = bulk_action(ab(), &json!({"version": "9.6.0"}), now)
            .unwrap_or_else(|_| panic!("a plain upgrade"));
        assert_eq!(plain.start_time, "");
        for bad in [
            json!({}),
            json!({"version": ""}),
            json!({"version": "9.6.0", "rollout_duration_seconds": -5}),
            json!({"version": "9.6.0", "rollout_duration_seconds": "600"}),
            json!({"version": "9.6.0", "start_time": "tomorrow"}),
            json!({"version": "9.6.0", "start_time": 5}),
            json!({"version": "9.6.0", "source_uri": "ftp://x"}),
            json!({"version": "9.6.0", "source_uri": 7}),
        ] {
            assert!(
                matches!(bulk_action(ab(), &bad, now), Err(Failure::Invalid(_))),
                "{bad}"
            );
        }
    }
}
