//! REST API specs for the YAML runner: the copied `rest-api-spec/*.json` files plus built-in
//! minimal specs (paths, methods, body mode) for the setup and security APIs the YAML tests call
//! that were not copied (`indices.create`, `cluster.health`, `security.put_user`, ...).

use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

/// One API: its paths (template, methods, part names) and whether bodies are NDJSON.
#[derive(Debug, Clone)]
pub struct Api {
    pub paths: Vec<(String, Vec<String>, Vec<String>)>,
    pub bulk_body: bool,
}

fn parse_api(v: &Value) -> Api {
    let mut paths = Vec::new();
    for p in v["url"]["paths"].as_array().cloned().unwrap_or_default() {
        let path = p["path"].as_str().unwrap_or("").to_string();
        let methods = p["methods"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let parts = p["parts"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        paths.push((path, methods, parts));
    }
    Api {
        paths,
        bulk_body: v["body"]["serialize"] == "bulk",
    }
}

fn builtin() -> Value {
    let p = |path: &str, methods: &[&str], parts: &[&str]| {
        let parts: serde_json::Map<String, Value> = parts
            .iter()
            .map(|k| (k.to_string(), json!({"type": "string"})))
            .collect();
        json!({"path": path, "methods": methods, "parts": parts})
    };
    json!({
        "indices.create": {"url": {"paths": [p("/{index}", &["PUT"], &["index"])]}},
        "indices.delete": {"url": {"paths": [p("/{index}", &["DELETE"], &["index"])]}},
        "indices.put_alias": {"url": {"paths": [p("/{index}/_alias/{name}", &["PUT", "POST"], &["index", "name"])]}},
        "indices.exists": {"url": {"paths": [p("/{index}", &["HEAD"], &["index"])]}},
        "count": {"url": {"paths": [p("/_count", &["POST", "GET"], &[]), p("/{index}/_count", &["POST", "GET"], &["index"])]}},
        "cluster.health": {"url": {"paths": [p("/_cluster/health", &["GET"], &[]), p("/_cluster/health/{index}", &["GET"], &["index"])]}},
        "security.put_user": {"url": {"paths": [p("/_security/user/{username}", &["PUT", "POST"], &["username"])]}},
        "security.delete_user": {"url": {"paths": [p("/_security/user/{username}", &["DELETE"], &["username"])]}},
        "security.get_user": {"url": {"paths": [p("/_security/user", &["GET"], &[]), p("/_security/user/{username}", &["GET"], &["username"])]}},
        "security.get_service_accounts": {"url": {"paths": [
            p("/_security/service/{namespace}/{service}", &["GET"], &["namespace", "service"]),
            p("/_security/service/{namespace}", &["GET"], &["namespace"]),
            p("/_security/service", &["GET"], &[])]}},
        "security.create_service_token": {"url": {"paths": [
            p("/_security/service/{namespace}/{service}/credential/token/{name}", &["PUT", "POST"], &["namespace", "service", "name"]),
            p("/_security/service/{namespace}/{service}/credential/token", &["POST"], &["namespace", "service"])]}},
        "security.delete_service_token": {"url": {"paths": [p("/_security/service/{namespace}/{service}/credential/token/{name}", &["DELETE"], &["namespace", "service", "name"])]}},
        "security.get_service_credentials": {"url": {"paths": [p("/_security/service/{namespace}/{service}/credential", &["GET"], &["namespace", "service"])]}},
        "security.clear_cached_service_tokens": {"url": {"paths": [p("/_security/service/{namespace}/{service}/credential/token/{name}/_clear_cache", &["POST"], &["namespace", "service", "name"])]}},
    })
}

/// Loads every spec of `dir` plus the built-in ones (copied specs win).
pub fn load(dir: &Path) -> HashMap<String, Api> {
    let mut out = HashMap::new();
    if let Some(m) = builtin().as_object() {
        for (k, v) in m {
            out.insert(k.clone(), parse_api(v));
        }
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            for (k, v) in m {
                out.insert(k, parse_api(&v));
            }
        }
    }
    out
}
