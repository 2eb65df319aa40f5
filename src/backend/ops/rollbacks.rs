//! `upgrade.rollbacks` of the checkin state (fleet-protocol.md §3.8, schema §11 `upgrade`): which
//! rollbacks an agent reports and whether they must be written. Fleet Server compares its typed
//! view of both lists (`version`, `valid_until`) and writes the request's when they differ; a
//! request without rollbacks is an empty list, so a list the agent no longer has is cleared to
//! `[]` rather than left for Kibana to offer.

use serde_json::{json, Map, Value};

use crate::model::Agent;

/// One available rollback as Fleet Server models it (`version`, `valid_until`; other members
/// are not kept, empty ones not written).
type Rollback = (String, String);

/// The request's rollbacks: a missing, `null` or `{}` `upgrade` means none (an empty list), an
/// explicit `"rollbacks": null` means null; `Err` when the shape is not Fleet Server's (then
/// nothing is written, as Fleet Server logs and skips it).
fn requested_rollbacks(upgrade: Option<&Value>) -> Result<Option<Vec<Rollback>>, ()> {
    match upgrade {
        None | Some(Value::Null) => Ok(Some(Vec::new())),
        Some(Value::Object(u)) => match u.get("rollbacks") {
            None => Ok(Some(Vec::new())),
            Some(list) => parse_rollbacks(list),
        },
        Some(_) => Err(()),
    }
}

/// A rollback list as stored or sent; `Ok(None)` for `null`.
fn parse_rollbacks(list: &Value) -> Result<Option<Vec<Rollback>>, ()> {
    let text = |r: &Map<String, Value>, k: &str| match r.get(k) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(()),
    };
    match list {
        Value::Null => Ok(None),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Object(r) => Ok((text(r, "version")?, text(r, "valid_until")?)),
                Value::Null => Ok((String::new(), String::new())),
                _ => Err(()),
            })
            .collect::<Result<Vec<_>, ()>>()
            .map(Some),
        _ => Err(()),
    }
}

/// fleet-protocol.md §3.8 `upgrade.rollbacks`: the request's `upgrade` member's list (an empty one when the agent sent none) when it
/// differs from the stored one — a list that went away is cleared to `[]` — else nothing.
pub fn rollbacks_to_write(agent: &Agent, upgrade: Option<&Value>) -> Option<Value> {
    let requested = match requested_rollbacks(upgrade) {
        Ok(r) => r,
        Err(()) => {
            log::debug!("agent {}: checkin `upgrade` not understood; kept", agent.id);
            return None;
        }
    };
    let stored = agent
        .other
        .get("upgrade")
        .and_then(|u| u.get("rollbacks"))
        .map_or(Ok(None), parse_rollbacks)
        .ok()
        .flatten();
    if requested == stored {
        return None;
    }
    Some(match requested {
        None => Value::Null,
        Some(list) => Value::Array(
            list.into_iter()
                .map(|(version, valid_until)| {
                    let mut r = Map::new();
                    if !valid_until.is_empty() {
                        r.insert("valid_until".into(), json!(valid_until));
                    }
                    if !version.is_empty() {
                        r.insert("version".into(), json!(version));
                    }
                    Value::Object(r)
                })
                .collect(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent_with(upgrade: Option<Value>) -> Agent {
        let mut agent = Agent {
            id: "a".into(),
            ..Agent::default()
        };
        if let Some(u) = upgrade {
            agent.other.insert("upgrade".into(), u);
        }
        agent
    }

    /// Compared as Fleet Server compares them: the agent's list (none is an empty list) is
    /// written when it differs from the stored one.
    #[test]
    fn written_when_they_differ_and_cleared_when_gone() {
        let empty = Some(json!([]));
        let none = agent_with(None);
        assert_eq!(
            rollbacks_to_write(&none, None),
            empty,
            "nothing stored: [] written"
        );
        assert_eq!(rollbacks_to_write(&none, Some(&json!({}))), empty);
        assert_eq!(rollbacks_to_write(&none, Some(&Value::Null)), empty);
        let listed = json!({"rollbacks": [{"version": "9.1.0", "valid_until": "2026-12-31T00:00:00Z", "extra": 1}]});
        let kept = json!([{"version": "9.1.0", "valid_until": "2026-12-31T00:00:00Z"}]);
        assert_eq!(rollbacks_to_write(&none, Some(&listed)), Some(kept.clone()));
        let stored = agent_with(Some(json!({"rollbacks": kept})));
        assert_eq!(
            rollbacks_to_write(&stored, Some(&listed)),
            None,
            "unchanged"
        );
        assert_eq!(
            rollbacks_to_write(&stored, Some(&json!({}))),
            empty,
            "gone: cleared"
        );
        assert_eq!(rollbacks_to_write(&stored, None), empty);
        assert_eq!(
            rollbacks_to_write(&stored, Some(&json!({"rollbacks": null}))),
            Some(Value::Null)
        );
        assert_eq!(
            rollbacks_to_write(&stored, Some(&json!({"rollbacks": "no"}))),
            None,
            "not understood: left alone"
        );
        let cleared = agent_with(Some(json!({"rollbacks": []})));
        assert_eq!(rollbacks_to_write(&cleared, Some(&json!({}))), None);
    }
}
