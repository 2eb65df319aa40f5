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

/// Kibana's `MINIMUM_EXECUTION_DURATION_SECONDS` (2 hours).
const MINIMUM_EXECUTION_SECONDS: u64 = 2 * 60 * 60;

/// Kibana's `EXPIRATION_DURATION_SECONDS` (30 days): how long an upgrade scheduled without a
/// rollout stays deliverable after its start.
const SCHEDULED_EXPIRY_SECONDS: u64 = 30 * 24 * 60 * 60;

/// The UPGRADE action a bulk upgrade body asks for, to `agents` (already chosen): the rollout
/// fields as Kibana writes them (`start_time`, `rollout_duration_seconds`,
/// `minimum_execution_duration`, `expiration`).
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
    let start = match body.get("start_time").filter(|v| !v.is_null()) {
        Some(t) => Some(t.as_str().and_then(parse_rfc3339).ok_or_else(|| {
            Failure::Invalid(format!("\"start_time\" {t} is not an RFC 3339 time"))
        })?),
        None => rollout.map(|_| now),
    };
    // Kibana's `getRollingUpgradeOptions`: a rollout runs at least min(2h, its duration) and
    // expires after twice that when shorter than 2h, else after its duration; an upgrade only
    // scheduled runs at least 2h and expires a month after its start.
    let (minimum, expires_after) = match (start, rollout) {
        (_, Some(seconds)) => {
            let minimum = seconds.min(MINIMUM_EXECUTION_SECONDS);
            let after = if seconds <= MINIMUM_EXECUTION_SECONDS {
                minimum * 2
            } else {
                seconds
            };
            (Some(minimum), Some(after))
        }
        (Some(_), None) => (
            Some(MINIMUM_EXECUTION_SECONDS),
            Some(SCHEDULED_EXPIRY_SECONDS),
        ),
        (None, None) => (None, None),
    };
    let expiration = start
        .zip(expires_after)
        .and_then(|(t, after)| t.checked_add(std::time::Duration::from_secs(after)))
        .map(rfc3339_millis);
    let start_time = start.map(rfc3339_millis);
    // As `actions::new_action` makes them (which uses this file, so not called from here).
    let mut action = Action {
        action_id: uuid_v4(),
        action_type: "UPGRADE".into(),
        agents,
        timestamp: rfc3339_seconds(now),
        start_time: start_time.unwrap_or_default(),
        expiration: expiration.unwrap_or_default(),
        data,
        ..Action::default()
    };
    if let Some(seconds) = minimum {
        action
            .other
            .insert("minimum_execution_duration".into(), json!(seconds));
    }
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
        assert_eq!(action.other["minimum_execution_duration"], 600);
        assert_eq!(action.expiration, "2026-12-03T05:50:53.000Z", "twice 600 s");
        let long = bulk_action(
            ab(),
            &json!({"version": "9.6.0", "rollout_duration_seconds": 86400, "start_time": "2027-01-01T00:00:00Z"}),
            now,
        )
        .unwrap_or_else(|_| panic!("a valid rollout"));
        assert_eq!(long.other["minimum_execution_duration"], 7200);
        assert_eq!(long.expiration, "2027-01-02T00:00:00.000Z");
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
        assert_eq!(later.other["minimum_execution_duration"], 7200);
        assert_eq!(
            later.expiration, "2027-01-31T00:00:00.000Z",
            "a month later"
        );
        let plain = bulk_action(ab(), &json!({"version": "9.6.0"}), now)
            .unwrap_or_else(|_| panic!("a plain upgrade"));
        assert_eq!(plain.start_time, "");
        assert_eq!(plain.expiration, "");
        assert!(!plain.other.contains_key("minimum_execution_duration"));
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
