//! Secret references in policies (fleet-protocol.md §3.12), resolved once per revision:
//! * inline: any string containing `$co.elastic.secret{<id>}` has each reference replaced by the
//!   value (an unknown id leaves the reference in place);
//! * path: an object member `"secrets": {"<k1>": {"<k2>": {"id": "<id>"}}}` writes the value at
//!   `<k1>.<k2>` inside that object (keys taken literally) and the member is removed; a missing
//!   secret writes an empty string.
//!
//! Every replaced location is reported as a dotted path (`inputs.0.streams.1.auth.basic.password`)
//! for the policy's `secret_paths`, so agents can redact them.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

const INLINE_OPEN: &str = "$co.elastic.secret{";

/// The sections of a policy's `data` where references are resolved.
const SECTIONS: &[&str] = &[
    "inputs",
    "outputs",
    "fleet",
    "extensions",
    "receivers",
    "processors",
    "connectors",
    "exporters",
    "service",
];

/// The secret ids a policy references (`data.secret_references[].id`).
pub fn referenced_ids(data: &Value) -> Vec<String> {
    data.get("secret_references")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Resolves references in place; returns the sorted, de-duplicated paths that were replaced.
pub fn resolve(data: &mut Map<String, Value>, secrets: &HashMap<String, String>) -> Vec<String> {
    let mut paths = BTreeSet::new();
    for section in SECTIONS {
        if let Some(v) = data.get_mut(*section) {
            walk(v, section, secrets, &mut paths);
        }
    }
    if let Some(download) = data.get_mut("agent").and_then(|a| a.get_mut("download")) {
        walk(download, "agent.download", secrets, &mut paths);
    }
    paths.into_iter().collect()
}

fn walk(
    value: &mut Value,
    path: &str,
    secrets: &HashMap<String, String>,
    paths: &mut BTreeSet<String>,
) {
    match value {
        Value::String(s) => {
            if let Some(resolved) = replace_inline(s, secrets) {
                *s = resolved;
                paths.insert(path.to_owned());
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &format!("{path}.{i}"), secrets, paths);
            }
        }
        Value::Object(map) => {
            if let Some(Value::Object(spec)) = map.remove("secrets") {
                let mut leaves = Vec::new();
                collect_leaves(&spec, &mut Vec::new(), &mut leaves);
                for (keys, id) in leaves {
                    let value = secrets.get(&id).cloned().unwrap_or_default();
                    set_at(map, &keys, Value::String(value));
                    paths.insert(format!("{path}.{}", keys.join(".")));
                }
            }
            for (k, v) in map.iter_mut() {
                walk(v, &format!("{path}.{k}"), secrets, paths);
            }
        }
        _ => {}
    }
}

/// Replaces inline references in every string inside `value` (actions' `data` on the live path,
/// §3.12); returns whether anything was replaced.
pub fn resolve_inline(value: &mut Value, secrets: &HashMap<String, String>) -> bool {
    match value {
        Value::String(s) => match replace_inline(s, secrets) {
            Some(resolved) => {
                *s = resolved;
                true
            }
            None => false,
        },
        // Every element must be visited: `any` would stop at the first replacement.
        Value::Array(items) => {
            let mut replaced = false;
            for v in items {
                replaced |= resolve_inline(v, secrets);
            }
            replaced
        }
        Value::Object(map) => {
            let mut replaced = false;
            for v in map.values_mut() {
                replaced |= resolve_inline(v, secrets);
            }
            replaced
        }
        _ => false,
    }
}

fn replace_inline(s: &str, secrets: &HashMap<String, String>) -> Option<String> {
    if !s.contains(INLINE_OPEN) {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut replaced = false;
    while let Some(start) = rest.find(INLINE_OPEN) {
        let after = &rest[start + INLINE_OPEN.len()..];
        let Some(end) = after.find('}') else { break };
        out.push_str(&rest[..start]);
        match secrets.get(&after[..end]) {
            Some(v) => {
                out.push_str(v);
                replaced = true;
            }
            None => out.push_str(&rest[start..start + INLINE_OPEN.len() + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    replaced.then_some(out)
}

fn collect_leaves(
    spec: &Map<String, Value>,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
) {
    for (k, v) in spec {
        prefix.push(k.clone());
        match v.get("id").and_then(Value::as_str) {
            Some(id) => out.push((prefix.clone(), id.to_owned())),
            None => {
                if let Value::Object(inner) = v {
                    collect_leaves(inner, prefix, out);
                }
            }
        }
        prefix.pop();
    }
}

fn set_at(map: &mut Map<String, Value>, keys: &[String], value: Value) {
    let Some((last, parents)) = keys.split_last() else {
        return;
    };
    let mut cur = map;
    for k in parents {
        let entry = cur
            .entry(k.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        cur = next;
    }
    cur.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secrets() -> HashMap<String, String> {
        [("s1", "one"), ("s2", "two")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn inline_references_are_replaced_and_recorded() {
        let mut data = json!({
            "inputs": [{"streams": [{}, {"auth.basic.password": "x-$co.elastic.secret{s1}-$co.elastic.secret{s2}"}]}],
            "fleet": {"hosts": ["$co.elastic.secret{s1}"]},
            "outputs": {"o": {"type": "$co.elastic.secret{unknown}"}},
            "agent": {"download": {"sourceURI": "$co.elastic.secret{s2}"}, "other": "$co.elastic.secret{s1}"}
        });
        let paths = resolve(data.as_object_mut().unwrap(), &secrets());
        assert_eq!(
            data["inputs"][0]["streams"][1]["auth.basic.password"],
            "x-one-two"
        );
        assert_eq!(data["fleet"]["hosts"][0], "one");
        assert_eq!(
            data["outputs"]["o"]["type"], "$co.elastic.secret{unknown}",
            "unknown id kept"
        );
        assert_eq!(data["agent"]["download"]["sourceURI"], "two");
        assert_eq!(
            data["agent"]["other"], "$co.elastic.secret{s1}",
            "only agent.download"
        );
        assert_eq!(
            paths,
            [
                "agent.download.sourceURI",
                "fleet.hosts.0",
                "inputs.0.streams.1.auth.basic.password"
            ]
        );
    }

    #[test]
    fn path_references_write_nested_values_and_drop_the_member() {
        let mut data = json!({
            "outputs": {"fs": {"type": "elasticsearch", "secrets": {"ssl": {"key": {"id": "s1"}}}}},
            "inputs": [{"secrets": {"auth.basic.password": {"id": "missing"}}}]
        });
        let paths = resolve(data.as_object_mut().unwrap(), &secrets());
        assert_eq!(data["outputs"]["fs"]["ssl"]["key"], "one");
        assert!(data["outputs"]["fs"].get("secrets").is_none());
        assert_eq!(
            data["inputs"][0]["auth.basic.password"], "",
            "missing secret → empty string"
        );
        assert_eq!(
            paths,
            ["inputs.0.auth.basic.password", "outputs.fs.ssl.key"]
        );
    }

    #[test]
    fn inline_references_in_action_data() {
        let mut data = json!({"headers": ["Bearer $co.elastic.secret{s1}"], "n": 1, "k": {"v": "$co.elastic.secret{s2}"}});
        assert!(resolve_inline(&mut data, &secrets()));
        assert_eq!(
            data,
            json!({"headers": ["Bearer one"], "n": 1, "k": {"v": "two"}})
        );
        assert!(!resolve_inline(&mut json!({"x": "plain"}), &secrets()));
    }

    #[test]
    fn referenced_ids_are_listed() {
        let data = json!({"secret_references": [{"id": "a"}, {"id": "b"}, {"x": 1}]});
        assert_eq!(referenced_ids(&data), ["a", "b"]);
        assert!(referenced_ids(&json!({})).is_empty());
    }
}
