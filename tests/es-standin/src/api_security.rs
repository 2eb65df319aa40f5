//! The security REST API: `_authenticate`, API keys (create, get, invalidate, update, bulk
//! update), native users (put, get, delete) and `elastic/fleet-server` service accounts and tokens
//! (create, delete, list credentials, clear cache, get accounts), with ES's response shapes.

use crate::error::{EsError, EsResult};
use crate::http::Response;
use crate::router::Ctx;
use crate::security::{self, Principal, User, FLEET_SERVICE};
use crate::util;
use serde_json::{json, Map, Value};

fn ok(v: Value) -> EsResult<Response> {
    Ok(Response::json(200, &v))
}

/// Dispatches `/_security/...` (segments after `_security`).
pub fn route(c: &Ctx, s: &[&str]) -> EsResult<Response> {
    let m = c.req.method.as_str();
    match (m, s) {
        ("GET", ["_authenticate"]) => {
            c.authorize("cluster:admin/xpack/security/user/authenticate", &[])?;
            ok(c.shared.security().authenticate_response(&c.principal))
        }
        ("PUT" | "POST", ["api_key"]) => {
            let body = c.body()?;
            c.authorize("cluster:admin/xpack/security/api_key/create", &[])?;
            let v = c
                .shared
                .security()
                .create_api_key(&c.principal, &body, c.now())?;
            ok(v)
        }
        ("GET", ["api_key"]) => get_keys(c),
        ("DELETE", ["api_key"]) => invalidate(c),
        ("POST", ["api_key", "_bulk_update"]) => {
            let body = c.body()?;
            let ids: Vec<String> = body
                .get("ids")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            if ids.is_empty() {
                return Err(EsError::validation(&["Field [ids] cannot be empty".into()]));
            }
            bulk_update(c, &ids, &body)
        }
        ("PUT", ["api_key", id]) => {
            let body = c.body()?;
            let r = bulk_update(c, &[id.to_string()], &body)?;
            let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            if let Some(err) = v.pointer(&format!("/errors/details/{id}")) {
                return Err(EsError::new(
                    404,
                    err["type"]
                        .as_str()
                        .unwrap_or("resource_not_found_exception"),
                    err["reason"].as_str().unwrap_or(""),
                ));
            }
            ok(json!({"updated": v["updated"].as_array().is_some_and(|a| !a.is_empty())}))
        }
        ("PUT" | "POST", ["user", name]) => put_user(c, name),
        ("DELETE", ["user", name]) => {
            c.authorize("cluster:admin/xpack/security/user/delete", &[])?;
            let found = c.shared.security().users.remove(*name).is_some();
            Ok(Response::json(
                if found { 200 } else { 404 },
                &json!({"found": found}),
            ))
        }
        ("GET", ["user"]) | ("GET", ["user", _]) => {
            c.authorize("cluster:admin/xpack/security/user/get", &[])?;
            let sec = c.shared.security();
            let want = s.get(1).copied();
            let out: Map<String, Value> = sec
                .users
                .iter()
                .filter(|(n, _)| want.is_none_or(|w| w == n.as_str()))
                .map(|(n, u)| (n.clone(), json!({"username": n, "roles": u.roles, "full_name": u.full_name, "email": u.email, "metadata": u.metadata, "enabled": u.enabled})))
                .collect();
            if out.is_empty() && want.is_some() {
                return Ok(Response::json(404, &json!({})));
            }
            ok(Value::Object(out))
        }
        ("GET", ["service"])
        | ("GET", ["service", "elastic"])
        | ("GET", ["service", "elastic", "fleet-server"]) => {
            c.authorize("cluster:admin/xpack/security/service_account/get", &[])?;
            ok(json!({ FLEET_SERVICE: {"role_descriptor": fleet_role()} }))
        }
        ("POST" | "PUT", ["service", ns, svc, "credential", "token", name]) => {
            create_token(c, ns, svc, Some(name))
        }
        ("POST", ["service", ns, svc, "credential", "token"]) => create_token(c, ns, svc, None),
        ("DELETE", ["service", ns, svc, "credential", "token", name]) => {
            check_account(ns, svc)?;
            c.authorize(
                "cluster:admin/xpack/security/service_account/token/delete",
                &[],
            )?;
            let mut sec = c.shared.security();
            let found = sec.tokens.get(*name).is_some_and(|t| t.source == "index");
            if found {
                sec.tokens.remove(*name);
            }
            Ok(Response::json(
                if found { 200 } else { 404 },
                &json!({"found": found}),
            ))
        }
        ("GET", ["service", ns, svc, "credential"]) => {
            check_account(ns, svc)?;
            c.authorize(
                "cluster:admin/xpack/security/service_account/credential/get",
                &[],
            )?;
            let sec = c.shared.security();
            let node = &c.shared.config.node_name;
            let index: Map<String, Value> = sec
                .tokens
                .iter()
                .filter(|(_, t)| t.source == "index")
                .map(|(n, _)| (n.clone(), json!({})))
                .collect();
            let file: Map<String, Value> = sec
                .tokens
                .iter()
                .filter(|(_, t)| t.source == "file")
                .map(|(n, _)| (n.clone(), json!({"nodes": [node]})))
                .collect();
            ok(json!({
                "service_account": FLEET_SERVICE,
                "count": sec.tokens.len(),
                "tokens": index,
                "nodes_credentials": {"_nodes": {"total": 1, "successful": 1, "failed": 0}, "file_tokens": file},
            }))
        }
        ("POST", ["service", ns, svc, "credential", "token", _, "_clear_cache"]) => {
            check_account(ns, svc)?;
            c.authorize(
                "cluster:admin/xpack/security/service_account/token/clear_cache",
                &[],
            )?;
            let cfg = &c.shared.config;
            ok(
                json!({"_nodes": {"total": 1, "successful": 1, "failed": 0}, "cluster_name": cfg.cluster_name, "nodes": {cfg.node_id.clone(): {"name": cfg.node_name}}}),
            )
        }
        ("GET", ["service", ..]) => ok(json!({})),
        _ => Ok(Response::json(
            400,
            &json!({"error": format!("no handler found for uri [{}] and method [{m}]", c.req.path), "status": 400}),
        )),
    }
}

fn check_account(ns: &str, svc: &str) -> EsResult<()> {
    if format!("{ns}/{svc}") != FLEET_SERVICE {
        return Err(EsError::illegal_argument(format!(
            "service account [{ns}/{svc}] does not exist"
        )));
    }
    Ok(())
}

fn fleet_role() -> Value {
    json!({
        "cluster": ["monitor", "manage_own_api_key", "read_fleet_secrets", "cluster:admin/xpack/connector/*"],
        "indices": [
            {"names": ["logs-*", "metrics-*", "traces-*", ".logs-endpoint.diagnostic.collection-*", ".logs-endpoint.action.responses-*", ".logs-endpoint.heartbeat-*"], "privileges": ["write", "create_index", "auto_configure"], "allow_restricted_indices": false},
            {"names": ["profiling-*"], "privileges": ["read", "write"], "allow_restricted_indices": false},
            {"names": ["traces-apm.sampled-*"], "privileges": ["read", "monitor", "maintenance"], "allow_restricted_indices": false},
            {"names": [".fleet-secrets*"], "privileges": ["read"], "allow_restricted_indices": true},
            {"names": [".fleet-actions*", ".fleet-agents*", ".fleet-artifacts*", ".fleet-enrollment-api-keys*", ".fleet-policies*", ".fleet-policies-leader*", ".fleet-servers*", ".fleet-fileds*"], "privileges": ["read", "write", "monitor", "create_index", "auto_configure", "maintenance"], "allow_restricted_indices": true},
            {"names": ["synthetics-*"], "privileges": ["read", "write", "create_index", "auto_configure"], "allow_restricted_indices": false}
        ],
        "applications": [{"application": "kibana-*", "privileges": ["reserved_fleet-setup"], "resources": ["*"]}],
        "run_as": [],
        "metadata": {},
        "transient_metadata": {"enabled": true},
    })
}

fn create_token(c: &Ctx, ns: &str, svc: &str, name: Option<&str>) -> EsResult<Response> {
    check_account(ns, svc)?;
    c.authorize(
        "cluster:admin/xpack/security/service_account/token/create",
        &[],
    )?;
    let name = name
        .map(String::from)
        .unwrap_or_else(|| format!("token_{}", util::random_id()));
    let valid = !name.is_empty()
        && name.len() <= 256
        && !name.starts_with('_')
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_".contains(ch));
    if !valid {
        return Err(EsError::validation(&[format!("service account token name [{name}] must have at least 1 and no more than 256 characters. They can contain alphanumeric characters (a-z, A-Z, 0-9), dashes (-), and underscores (_), but cannot begin with an underscore (_)")]));
    }
    let mut sec = c.shared.security();
    if sec.tokens.contains_key(&name) {
        return Err(EsError::version_conflict(
            &format!("service_account_token-{FLEET_SERVICE}/{name}"),
            "document already exists (current version [1])",
            ".security-7",
            "_na_",
        ));
    }
    let secret = util::random_uuid22();
    sec.tokens.insert(
        name.clone(),
        security::ServiceToken {
            secret: secret.clone(),
            source: "index",
        },
    );
    ok(
        json!({"created": true, "token": {"name": name, "value": security::encode_service_token(&name, &secret)}}),
    )
}

fn put_user(c: &Ctx, name: &str) -> EsResult<Response> {
    let body = c.body()?;
    c.authorize("cluster:admin/xpack/security/user/put", &[])?;
    let mut sec = c.shared.security();
    let existing = sec.users.get(name).cloned();
    let password = match body.get("password").and_then(Value::as_str) {
        Some(p) if p.len() >= 6 => p.to_string(),
        Some(_) => {
            return Err(EsError::validation(&[
                "passwords must be at least [6] characters long".into(),
            ]))
        }
        None => match &existing {
            Some(u) => u.password.clone(),
            None => {
                return Err(EsError::validation(&[
                    "password must be specified unless you are updating an existing user".into(),
                ]))
            }
        },
    };
    let roles = body
        .get("roles")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let user = User {
        password,
        roles,
        full_name: body
            .get("full_name")
            .and_then(Value::as_str)
            .map(String::from),
        email: body.get("email").and_then(Value::as_str).map(String::from),
        metadata: body.get("metadata").cloned().unwrap_or_else(|| json!({})),
        enabled: body.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        realm: existing
            .as_ref()
            .map(|u| u.realm)
            .unwrap_or("default_native"),
    };
    sec.users.insert(name.to_string(), user);
    ok(json!({"created": existing.is_none()}))
}

fn get_keys(c: &Ctx) -> EsResult<Response> {
    let owner = c.req.flag("owner");
    let active_only = c.req.flag("active_only");
    let now = c.now();
    let (id, name) = (c.param("id"), c.param("name"));
    let action = if owner {
        "cluster:admin/xpack/security/api_key/get[own]"
    } else {
        "cluster:admin/xpack/security/api_key/get"
    };
    c.authorize(action, &[])?;
    let sec = c.shared.security();
    if !owner
        && !sec
            .users
            .get(&sec.username(&c.principal))
            .is_some_and(|u| u.roles.iter().any(|r| r == "superuser"))
    {
        if let Principal::Service { .. } | Principal::ApiKey { .. } = c.principal {
            return Err(EsError::forbidden(format!("action [cluster:admin/xpack/security/api_key/get] is unauthorized for user [{}], this action is granted by the cluster privileges [read_security,manage_api_key,manage_security,all]", sec.username(&c.principal))));
        }
    }
    let me = sec.username(&c.principal);
    let keys: Vec<Value> = sec
        .api_keys
        .values()
        .filter(|k| id.is_none_or(|i| i == k.id))
        .filter(|k| {
            name.is_none_or(|n| n == "*" || k.name.as_deref().is_some_and(|kn| util::glob(n, kn)))
        })
        .filter(|k| !owner || k.owner == me)
        .filter(|k| c.param("username").is_none_or(|u| u == k.owner))
        .filter(|k| {
            !active_only || (k.invalidated.is_none() && k.expiration.is_none_or(|e| e > now))
        })
        .map(|k| sec.render_key(k))
        .collect();
    ok(json!({"api_keys": keys}))
}

fn invalidate(c: &Ctx) -> EsResult<Response> {
    let body = c.body()?;
    let mut ids: Vec<String> = body
        .get("ids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if let Some(i) = body.get("id").and_then(Value::as_str) {
        ids.push(i.to_string());
    }
    let name = body.get("name").and_then(Value::as_str);
    let owner = body.get("owner").and_then(Value::as_bool).unwrap_or(false);
    let username = body.get("username").and_then(Value::as_str);
    let realm = body.get("realm_name").and_then(Value::as_str);
    if ids.is_empty() && name.is_none() && !owner && username.is_none() && realm.is_none() {
        return Err(EsError::validation(&["One of [api key id(s), api key name, username, realm name] must be specified if [owner] flag is false".into()]));
    }
    c.authorize("cluster:admin/xpack/security/api_key/invalidate", &[])?;
    let now = c.now();
    let mut sec = c.shared.security();
    let me = sec.username(&c.principal);
    let mut inv = Vec::new();
    let mut prev = Vec::new();
    let candidates: Vec<String> = sec
        .api_keys
        .values()
        .filter(|k| ids.is_empty() || ids.contains(&k.id))
        .filter(|k| name.is_none_or(|n| k.name.as_deref() == Some(n)))
        .filter(|k| !owner || k.owner == me)
        .filter(|k| username.is_none_or(|u| u == k.owner))
        .filter(|k| realm.is_none_or(|r| r == k.realm))
        .map(|k| k.id.clone())
        .collect();
    for id in candidates {
        if let Some(k) = sec.api_keys.get_mut(&id) {
            if k.invalidated.is_some() {
                prev.push(id);
            } else {
                k.invalidated = Some(now);
                inv.push(id);
            }
        }
    }
    ok(
        json!({"invalidated_api_keys": inv, "previously_invalidated_api_keys": prev, "error_count": 0}),
    )
}

fn bulk_update(c: &Ctx, ids: &[String], body: &Value) -> EsResult<Response> {
    c.authorize("cluster:admin/xpack/security/api_key/update", &[])?;
    let now = c.now();
    let mut sec = c.shared.security();
    let me = sec.username(&c.principal);
    let mut updated = Vec::new();
    let mut noops = Vec::new();
    let mut details = Map::new();
    for id in ids {
        let Some(k) = sec
            .api_keys
            .get_mut(id)
            .filter(|k| k.owner == me || me == "elastic")
        else {
            details.insert(id.clone(), json!({"type": "resource_not_found_exception", "reason": format!("no API key owned by requesting user found for ID [{id}]")}));
            continue;
        };
        if k.invalidated.is_some() || k.expiration.is_some_and(|e| e <= now) {
            let what = if k.invalidated.is_some() {
                "invalidated"
            } else {
                "expired"
            };
            details.insert(id.clone(), json!({"type": "illegal_argument_exception", "reason": format!("cannot update {what} API key [{id}]")}));
            continue;
        }
        let mut changed = false;
        if let Some(rd) = body.get("role_descriptors") {
            let n = security::normalize_roles(Some(rd));
            if n != k.role_descriptors {
                k.role_descriptors = n;
                changed = true;
            }
        }
        if let Some(md) = body.get("metadata").filter(|m| !m.is_null()) {
            if *md != k.metadata {
                k.metadata = md.clone();
                changed = true;
            }
        }
        if changed {
            updated.push(id.clone());
        } else {
            noops.push(id.clone());
        }
    }
    let mut out = json!({"updated": updated, "noops": noops});
    if !details.is_empty() {
        out["errors"] = json!({"count": details.len(), "details": details});
    }
    ok(out)
}
