//! Actions as agents receive them (fleet-protocol.md §3.11, §5.3): only the types Fleet Server
//! delivers; `data` re-shaped to each type's schema (unknown keys dropped, a wrong-typed field
//! drops the action); `input_type` always present; optional members only when set.

use serde_json::{Map, Value};

use crate::model::Action;

/// Action types delivered to agents; everything else in the index is dropped.
pub const DELIVERED_TYPES: &[&str] = &[
    "CANCEL",
    "INPUT_ACTION",
    "POLICY_REASSIGN",
    "REQUEST_DIAGNOSTICS",
    "SETTINGS",
    "UNENROLL",
    "UPGRADE",
    "MIGRATE",
    "PRIVILEGE_LEVEL_CHANGE",
];

/// Whether a document of this type is delivered at all (its ack token advances past it either way).
pub fn is_delivered_type(action_type: &str) -> bool {
    DELIVERED_TYPES.contains(&action_type)
}

/// The wire form of `action` for `agent_id`, or `None` when it must not be delivered (type not
/// delivered, or `data` does not fit the type's schema).
pub fn to_wire(action: &Action, agent_id: &str) -> Option<Value> {
    if !is_delivered_type(&action.action_type) {
        return None;
    }
    let data = normalise_data(&action.action_type, &action.data)?;
    let mut out = Map::new();
    out.insert("agent_id".into(), Value::from(agent_id));
    out.insert("created_at".into(), Value::from(action.timestamp.clone()));
    out.insert("data".into(), data);
    out.insert("id".into(), Value::from(action.action_id.clone()));
    out.insert("input_type".into(), Value::from(action.input_type.clone()));
    out.insert("type".into(), Value::from(action.action_type.clone()));
    if !action.start_time.is_empty() {
        out.insert("start_time".into(), Value::from(action.start_time.clone()));
    }
    if !action.expiration.is_empty() {
        out.insert("expiration".into(), Value::from(action.expiration.clone()));
    }
    if action.timeout != 0 {
        out.insert("timeout".into(), Value::from(action.timeout));
    }
    for key in ["traceparent", "signed"] {
        if let Some(v) = action.other.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    Some(Value::Object(out))
}

/// §5.2: on live dispatch, the `i`-th of `n` target agents of an action with a `start_time` and
/// `rollout_duration_seconds` starts `floor(rollout × i / n)` seconds later. Returns the shifted
/// `start_time`, or `None` when nothing shifts.
pub fn rollout_start_time(action: &Action, index: usize, total: usize) -> Option<String> {
    let rollout = action.other.get("rollout_duration_seconds")?.as_f64()?;
    if action.start_time.is_empty() || rollout <= 0.0 || total == 0 || index == 0 {
        return None;
    }
    let start = crate::model::time::parse_rfc3339(&action.start_time)?;
    let offset = (rollout * index as f64 / total as f64).floor();
    let shifted = start.checked_add(std::time::Duration::from_secs_f64(offset))?;
    Some(crate::model::time::rfc3339_millis(shifted))
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    StrList,
    Any,
}

/// Keeps only `fields` of `data` (each type-checked); `required` fields appear even when absent
/// (as the Go struct would encode its zero value).
fn pick(data: &Value, fields: &[(&str, Kind, bool)]) -> Option<Value> {
    let src = match data {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return None,
    };
    let mut out = Map::new();
    for (name, kind, required) in fields {
        match src.get(*name) {
            None | Some(Value::Null) => {
                if *required {
                    let zero = match kind {
                        Kind::Str => Value::from(""),
                        Kind::Bool => Value::from(false),
                        Kind::StrList | Kind::Any => Value::Null,
                    };
                    out.insert((*name).into(), zero);
                }
            }
            Some(v) => {
                let ok = match kind {
                    Kind::Str => v.is_string(),
                    Kind::Bool => v.is_boolean(),
                    Kind::StrList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
                    Kind::Any => true,
                };
                if !ok {
                    return None;
                }
                let empty =
                    matches!(v, Value::String(s) if s.is_empty()) || *v == Value::Bool(false);
                if *required || !empty {
                    out.insert((*name).into(), v.clone());
                }
            }
        }
    }
    Some(Value::Object(out))
}

fn normalise_data(action_type: &str, data: &Value) -> Option<Value> {
    use Kind::*;
    match action_type {
        "UNENROLL" => Some(Value::Null),
        "UPGRADE" => pick(
            data,
            &[
                ("version", Str, true),
                ("source_uri", Str, false),
                ("rollback", Bool, false),
            ],
        ),
        "SETTINGS" => {
            let v = pick(data, &[("log_level", Str, false)])?;
            let level = v.get("log_level").and_then(Value::as_str);
            match level {
                None | Some("trace" | "debug" | "info" | "warning" | "error") => Some(v),
                Some(_) => None,
            }
        }
        "POLICY_REASSIGN" => pick(data, &[("policy_id", Str, true)]),
        "CANCEL" => pick(data, &[("target_id", Str, true)]),
        "REQUEST_DIAGNOSTICS" if data.is_null() => Some(Value::Null),
        "REQUEST_DIAGNOSTICS" => pick(
            data,
            &[
                ("additional_metrics", StrList, false),
                ("exclude_events_log", Bool, false),
            ],
        ),
        "INPUT_ACTION" => match data {
            Value::Object(_) | Value::Null => Some(data.clone()),
            _ => None,
        },
        "MIGRATE" => pick(
            data,
            &[
                ("enrollment_token", Str, true),
                ("settings", Any, false),
                ("target_uri", Str, true),
            ],
        ),
        "PRIVILEGE_LEVEL_CHANGE" => {
            let mut v = pick(
                data,
                &[("unprivileged", Bool, true), ("user_info", Any, false)],
            )?;
            if let Some(info) = v.get("user_info").cloned() {
                let info = pick(
                    &info,
                    &[
                        ("username", Str, false),
                        ("password", Str, false),
                        ("groupname", Str, false),
                    ],
                )?;
                if let Value::Object(m) = &mut v {
                    m.insert("user_info".into(), info);
                }
            }
            Some(v)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn action(kind: &str, data: Value) -> Action {
        Action {
            doc_id: "doc".into(),
            action_id: "act-1".into(),
            action_type: kind.into(),
            agents: vec!["a".into()],
            timestamp: "2026-05-01T10:00:00.000Z".into(),
            data,
            ..Action::default()
        }
    }

    #[test]
    fn rollout_spreads_start_times_over_the_targets() {
        let mut a = action("UPGRADE", json!({"version": "9.2.2"}));
        a.start_time = "2026-05-01T11:00:00.000Z".into();
        a.other
            .insert("rollout_duration_seconds".into(), json!(3600));
        assert_eq!(
            rollout_start_time(&a, 0, 4),
            None,
            "the first agent starts on time"
        );
        assert_eq!(
            rollout_start_time(&a, 1, 4).as_deref(),
            Some("2026-05-01T11:15:00.000Z")
        );
        assert_eq!(
            rollout_start_time(&a, 3, 4).as_deref(),
            Some("2026-05-01T11:45:00.000Z")
        );
        a.other.remove("rollout_duration_seconds");
        assert_eq!(rollout_start_time(&a, 3, 4), None);
    }

    #[test]
    fn unknown_and_server_side_types_are_dropped() {
        for kind in ["POLICY_CHANGE", "UPDATE_TAGS", "FORCE_UNENROLL", "WHATEVER"] {
            assert_eq!(to_wire(&action(kind, json!({})), "a"), None, "{kind}");
        }
    }

    #[test]
    fn upgrade_keeps_only_its_fields_and_passes_scheduling_through() {
        let mut a = action(
            "UPGRADE",
            json!({"version": "9.2.1", "source_uri": "https://x", "extra": 1}),
        );
        a.start_time = "2026-05-01T11:00:00.000Z".into();
        a.expiration = "2026-05-31T10:00:00.000Z".into();
        a.other
            .insert("signed".into(), json!({"data": "d", "signature": "s"}));
        let w = to_wire(&a, "agent-9").unwrap();
        assert_eq!(
            w["data"],
            json!({"version": "9.2.1", "source_uri": "https://x"})
        );
        assert_eq!(w["agent_id"], "agent-9");
        assert_eq!(w["input_type"], "");
        assert_eq!(w["start_time"], "2026-05-01T11:00:00.000Z");
        assert_eq!(w["expiration"], "2026-05-31T10:00:00.000Z");
        assert_eq!(w["signed"]["signature"], "s");
        assert!(w.get("timeout").is_none());
    }

    #[test]
    fn unenroll_has_null_data_and_diagnostics_null_when_absent() {
        assert_eq!(
            to_wire(&action("UNENROLL", json!({"x": 1})), "a").unwrap()["data"],
            Value::Null
        );
        assert_eq!(
            to_wire(&action("REQUEST_DIAGNOSTICS", Value::Null), "a").unwrap()["data"],
            Value::Null
        );
        let d = to_wire(
            &action(
                "REQUEST_DIAGNOSTICS",
                json!({"additional_metrics": ["CPU"], "junk": 1}),
            ),
            "a",
        )
        .unwrap();
        assert_eq!(d["data"], json!({"additional_metrics": ["CPU"]}));
    }

    #[test]
    fn wrong_typed_data_drops_the_action() {
        assert_eq!(
            to_wire(&action("UPGRADE", json!({"version": 9})), "a"),
            None
        );
        assert_eq!(
            to_wire(&action("SETTINGS", json!({"log_level": "loud"})), "a"),
            None
        );
        assert_eq!(to_wire(&action("CANCEL", json!("x")), "a"), None);
    }

    #[test]
    fn other_types_keep_their_schema() {
        let s = to_wire(
            &action("SETTINGS", json!({"log_level": "debug", "x": 1})),
            "a",
        )
        .unwrap();
        assert_eq!(s["data"], json!({"log_level": "debug"}));
        let r = to_wire(&action("POLICY_REASSIGN", json!({"policy_id": "p2"})), "a").unwrap();
        assert_eq!(r["data"], json!({"policy_id": "p2"}));
        let i = to_wire(&action("INPUT_ACTION", json!({"any": {"thing": 1}})), "a").unwrap();
        assert_eq!(i["data"], json!({"any": {"thing": 1}}));
        let p = to_wire(
            &action(
                "PRIVILEGE_LEVEL_CHANGE",
                json!({"unprivileged": true, "user_info": {"username": "u", "x": 1}}),
            ),
            "a",
        )
        .unwrap();
        assert_eq!(
            p["data"],
            json!({"unprivileged": true, "user_info": {"username": "u"}})
        );
        let m = to_wire(
            &action(
                "MIGRATE",
                json!({"enrollment_token": "t", "target_uri": "https://n"}),
            ),
            "a",
        )
        .unwrap();
        assert_eq!(
            m["data"],
            json!({"enrollment_token": "t", "target_uri": "https://n"})
        );
    }
}
