//! Cluster and index administration: `GET /` (info) and `HEAD /` (ping), `_cluster/health`,
//! index create/delete/exists/get, mappings, aliases, index templates, data streams, and the Fleet
//! secrets API (`/_fleet/secret`, stored in the `.fleet-secrets` system index).

use crate::error::{EsError, EsResult};
use crate::http::Response;
use crate::index::Occ;
use crate::router::Ctx;
use crate::util;
use serde_json::{json, Map, Value};

/// `GET /` and `HEAD /`.
pub fn info(c: &Ctx) -> EsResult<Response> {
    c.authorize("cluster:monitor/main", &[])?;
    let cfg = &c.shared.config;
    let body = json!({
        "name": cfg.node_name,
        "cluster_name": cfg.cluster_name,
        "cluster_uuid": cfg.cluster_uuid,
        "version": {
            "number": cfg.version,
            "build_flavor": "default",
            "build_type": "docker",
            "build_hash": "0000000000000000000000000000000000000000",
            "build_date": "2026-08-21T00:00:00.000000000Z",
            "build_snapshot": cfg.version.to_lowercase().ends_with("-snapshot"),
            "lucene_version": "10.3.0",
            "minimum_wire_compatibility_version": "8.19.0",
            "minimum_index_compatibility_version": "8.0.0",
            "transport_version": "9000000",
        },
        "tagline": "You Know, for Search",
    });
    Ok(Response::json(200, &body))
}

/// `GET /_cluster/health`.
pub fn health(c: &Ctx) -> EsResult<Response> {
    c.authorize("cluster:monitor/health", &[])?;
    let g = c.shared.cluster();
    let primaries: u32 = g.indices.values().map(|i| i.shards()).sum();
    let unassigned: u32 = g
        .indices
        .values()
        .map(|i| i.shards() * i.settings.replicas)
        .sum();
    let status = if unassigned > 0 { "yellow" } else { "green" };
    let total = primaries + unassigned;
    let pct = if total == 0 {
        100.0
    } else {
        f64::from(primaries) * 100.0 / f64::from(total)
    };
    Ok(Response::json(
        200,
        &json!({
            "cluster_name": c.shared.config.cluster_name,
            "status": status,
            "timed_out": false,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "active_primary_shards": primaries,
            "active_shards": primaries,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": unassigned,
            "unassigned_primary_shards": 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": pct,
        }),
    ))
}

/// `PUT /<index>`.
pub fn create_index(c: &Ctx, idx: &str) -> EsResult<Response> {
    let body = c.body()?;
    c.authorize("indices:admin/create", &[idx.to_string()])?;
    let mut g = c.shared.cluster();
    g.create_index(idx, &body, c.now())?;
    drop(g);
    c.shared.notify();
    Ok(Response::json(
        200,
        &json!({"acknowledged": true, "shards_acknowledged": true, "index": idx}),
    ))
}

/// `DELETE /<index>`.
pub fn delete_index(c: &Ctx, idx: &str) -> EsResult<Response> {
    c.authorize("indices:admin/delete", &[idx.to_string()])?;
    let mut g = c.shared.cluster();
    g.delete_indices(idx)?;
    drop(g);
    c.shared.notify();
    Ok(Response::json(200, &json!({"acknowledged": true})))
}

/// `HEAD /<index>`.
pub fn index_exists(c: &Ctx, idx: &str) -> EsResult<Response> {
    let g = c.shared.cluster();
    let found = g
        .resolve(idx, false)
        .map(|v| !v.is_empty())
        .unwrap_or(false);
    Ok(Response::empty(if found { 200 } else { 404 }))
}

fn settings_json(i: &crate::index::Index) -> Value {
    let mut s = json!({
        "number_of_shards": i.shards().to_string(),
        "number_of_replicas": i.settings.replicas.to_string(),
        "uuid": i.uuid,
        "provided_name": i.name,
        "creation_date": i.created_ms.to_string(),
        "version": {"created": "9000000"},
    });
    match i.settings.refresh_interval {
        None => s["refresh_interval"] = json!("-1"),
        Some(d) if d != std::time::Duration::from_secs(1) => {
            s["refresh_interval"] = json!(format!("{}ms", d.as_millis()))
        }
        _ => {}
    }
    if i.settings.hidden {
        s["hidden"] = json!("true");
    }
    if i.name.starts_with(".fleet-") || i.name.starts_with(".ds-.fleet-") {
        s["auto_expand_replicas"] = json!("0-1");
    }
    json!({"index": s})
}

/// `GET /<index>`.
pub fn get_index(c: &Ctx, idx: &str) -> EsResult<Response> {
    let g = c.shared.cluster();
    let names = g.resolve(idx, false)?;
    c.authorize("indices:admin/get", &names)?;
    let mut out = Map::new();
    for n in names {
        let Some(i) = g.indices.get(&n) else { continue };
        let aliases: Map<String, Value> =
            i.aliases.iter().map(|a| (a.clone(), json!({}))).collect();
        let mut v = json!({"aliases": aliases, "mappings": i.mapping.to_es_json(), "settings": settings_json(i)});
        if let Some(ds) = &i.data_stream {
            v["data_stream"] = json!(ds);
        }
        out.insert(n, v);
    }
    Ok(Response::json(200, &Value::Object(out)))
}

/// `GET [/<index>]/_mapping`.
pub fn get_mapping(c: &Ctx, idx: Option<&str>) -> EsResult<Response> {
    let g = c.shared.cluster();
    let names = g.resolve(idx.unwrap_or(""), false)?;
    c.authorize("indices:admin/mappings/get", &names)?;
    let out: Map<String, Value> = names
        .iter()
        .filter_map(|n| {
            g.indices
                .get(n)
                .map(|i| (n.clone(), json!({"mappings": i.mapping.to_es_json()})))
        })
        .collect();
    Ok(Response::json(200, &Value::Object(out)))
}

/// `PUT /<index>/_alias/<name>`.
pub fn put_alias(c: &Ctx, idx: &str, name: &str) -> EsResult<Response> {
    c.authorize("indices:admin/aliases", &[idx.to_string()])?;
    let mut g = c.shared.cluster();
    g.put_alias(idx, name)?;
    Ok(Response::json(200, &json!({"acknowledged": true})))
}

/// `GET /_alias/<name>`.
pub fn get_alias(c: &Ctx, name: &str) -> EsResult<Response> {
    let g = c.shared.cluster();
    let mut out = Map::new();
    for i in g.indices.values() {
        let hits: Map<String, Value> = i
            .aliases
            .iter()
            .filter(|a| util::glob(name, a))
            .map(|a| (a.clone(), json!({})))
            .collect();
        if !hits.is_empty() {
            out.insert(i.name.clone(), json!({"aliases": hits}));
        }
    }
    if out.is_empty() {
        return Ok(Response::json(
            404,
            &json!({"error": format!("alias [{name}] missing"), "status": 404}),
        ));
    }
    Ok(Response::json(200, &Value::Object(out)))
}

/// `POST /_aliases` with `add` / `remove` actions.
pub fn aliases(c: &Ctx) -> EsResult<Response> {
    let body = c.body()?;
    c.authorize("indices:admin/aliases", &[])?;
    let mut g = c.shared.cluster();
    for a in body
        .get("actions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        if let Some(add) = a.get("add") {
            let idx = add.get("index").and_then(Value::as_str).unwrap_or("");
            let alias = add.get("alias").and_then(Value::as_str).unwrap_or("");
            g.put_alias(idx, alias)?;
        } else if let Some(rm) = a.get("remove") {
            let idx = rm.get("index").and_then(Value::as_str).unwrap_or("");
            let alias = rm.get("alias").and_then(Value::as_str).unwrap_or("");
            for n in g.resolve(idx, false)? {
                if let Some(i) = g.indices.get_mut(&n) {
                    i.aliases.retain(|x| x != alias);
                }
            }
        }
    }
    Ok(Response::json(
        200,
        &json!({"acknowledged": true, "errors": false}),
    ))
}

/// `PUT /_index_template/<name>`.
pub fn put_template(c: &Ctx, name: &str) -> EsResult<Response> {
    let body = c.body()?;
    c.authorize("indices:admin/index_template/put", &[])?;
    let pats: Vec<String> = match body.get("index_patterns") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => return Err(EsError::validation(&["index patterns are missing".into()])),
    };
    let ds = body.get("data_stream").is_some();
    let mut g = c.shared.cluster();
    g.templates.retain(|(n, _, _, _)| n != name);
    g.templates.push((name.to_string(), pats, body, ds));
    Ok(Response::json(200, &json!({"acknowledged": true})))
}

/// `GET /_data_stream`.
pub fn get_data_streams(c: &Ctx) -> EsResult<Response> {
    let g = c.shared.cluster();
    let list: Vec<Value> = g
        .data_streams
        .iter()
        .map(|(n, b)| {
            json!({
                "name": n,
                "timestamp_field": {"name": "@timestamp"},
                "indices": b.iter().map(|i| json!({"index_name": i, "index_uuid": g.indices.get(i).map(|x| x.uuid.clone())})).collect::<Vec<_>>(),
                "generation": b.len(),
                "status": "GREEN",
                "hidden": n.starts_with('.'),
                "system": n.starts_with(".fleet-"),
            })
        })
        .collect();
    Ok(Response::json(200, &json!({"data_streams": list})))
}

const SECRETS: &str = ".fleet-secrets";

/// `POST /_fleet/secret`.
pub fn secret_post(c: &Ctx) -> EsResult<Response> {
    let body = c.body()?;
    let Some(value) = body.get("value").cloned().filter(|v| !v.is_null()) else {
        return Err(EsError::validation(&["value is missing".into()]));
    };
    c.authorize("cluster:admin/fleet/secrets/post", &[])?;
    let mut g = c.shared.cluster();
    let t = g.write_target(SECRETS, c.now())?;
    let id = util::random_id();
    let i = g
        .indices
        .get_mut(&t.concrete)
        .ok_or_else(|| EsError::index_not_found(SECRETS))?;
    i.put(&id, json!({"value": value}), true, Occ::default())?;
    i.refresh();
    drop(g);
    c.shared.notify();
    Ok(Response::json(200, &json!({"id": id})))
}

/// `GET /_fleet/secret/<id>`.
pub fn secret_get(c: &Ctx, id: &str) -> EsResult<Response> {
    c.authorize("cluster:admin/fleet/secrets/get", &[])?;
    let g = c.shared.cluster();
    let concrete = g.resolve_single(SECRETS)?;
    let doc = g.indices.get(&concrete).and_then(|i| i.get(id));
    match doc {
        Some(d) => Ok(Response::json(
            200,
            &json!({"id": id, "value": d.source.get("value").cloned().unwrap_or(Value::Null)}),
        )),
        None => Err(EsError::resource_not_found(format!(
            "No secret with id [{id}]"
        ))),
    }
}

/// `DELETE /_fleet/secret/<id>`.
pub fn secret_delete(c: &Ctx, id: &str) -> EsResult<Response> {
    c.authorize("cluster:admin/fleet/secrets/delete", &[])?;
    let mut g = c.shared.cluster();
    let concrete = g.resolve_single(SECRETS)?;
    let i = g
        .indices
        .get_mut(&concrete)
        .ok_or_else(|| EsError::index_not_found(SECRETS))?;
    if i.get(id).is_none() {
        return Err(EsError::resource_not_found(format!(
            "No secret with id [{id}]"
        )));
    }
    i.delete(id, Occ::default())?;
    i.refresh();
    drop(g);
    c.shared.notify();
    Ok(Response::json(200, &json!({"deleted": true})))
}
