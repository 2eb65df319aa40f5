//! Request dispatch: the `/_standin/*` control endpoints (no auth, no faults), then fault gating,
//! authentication (401 with ES's body and `WWW-Authenticate` headers), route matching by method and
//! path segments, and conversion of handler errors into the ES error envelope. Handlers live in
//! `api_docs.rs`, `api_search.rs`, `api_admin.rs` and `api_security.rs`.

use crate::api_admin;
use crate::api_docs;
use crate::api_search;
use crate::api_security;
use crate::datemath;
use crate::error::{EsError, EsResult};
use crate::faults::Gate;
use crate::http::{Request, Response};
use crate::security::Principal;
use crate::state::Shared;
use crate::util;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Everything a handler needs.
pub struct Ctx<'a> {
    /// Shared state.
    pub shared: &'a Shared,
    /// The request.
    pub req: &'a Request,
    /// Authenticated caller.
    pub principal: Principal,
    /// Decoded path segments.
    pub seg: Vec<String>,
}

impl Ctx<'_> {
    /// Parses the JSON body (`Null` when empty).
    pub fn body(&self) -> EsResult<Value> {
        // ES takes any of its x-content types; Fleet Server sends upload chunks as CBOR.
        let cbor = self.req.header("content-type").is_some_and(|t| {
            t.trim()
                .to_ascii_lowercase()
                .starts_with("application/cbor")
        });
        if cbor {
            return crate::cbor::decode(&self.req.body);
        }
        parse_json(&self.req.body)
    }

    /// A query parameter.
    pub fn param(&self, k: &str) -> Option<&str> {
        self.req.query.get(k).map(String::as_str)
    }

    /// Checks a privilege.
    pub fn authorize(&self, action: &str, indices: &[String]) -> EsResult<()> {
        self.shared
            .security()
            .authorize(&self.principal, action, indices)
    }

    /// "now" in epoch ms.
    pub fn now(&self) -> i64 {
        datemath::now_millis()
    }
}

/// Parses a JSON body.
pub fn parse_json(b: &[u8]) -> EsResult<Value> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(b).map_err(|e| EsError::bad_json(&e))
}

fn ok(v: Value) -> EsResult<Response> {
    Ok(Response::json(200, &v))
}

/// Handles one request.
pub fn handle(shared: &Arc<Shared>, req: &Request) -> Response {
    let seg = req.segments();
    if seg.first().map(String::as_str) == Some("_standin") {
        return control(shared, req, &seg);
    }
    // must not take the faults lock: `gate` holds it while evaluating `stop`
    let stop = || shared.is_shutdown();
    if let Gate::Fail(e) = shared.faults.gate(&stop) {
        return error_response(&e);
    }
    if let Some(ct) = req.header("content-type") {
        let ct = ct.to_ascii_lowercase();
        let known = ["json", "ndjson", "cbor", "smile", "yaml"]
            .iter()
            .any(|k| ct.contains(k));
        if !req.body.is_empty() && !known {
            return Response::json(
                406,
                &json!({"error": format!("Content-Type header [{ct}] is not supported"), "status": 406}),
            );
        }
    }
    let uri = if req.query.is_empty() {
        req.path.clone()
    } else {
        let mut q: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        q.sort();
        format!("{}?{}", req.path, q.join("&"))
    };
    let principal = {
        let sec = shared.security();
        sec.authenticate(req.header("authorization"), &uri, datemath::now_millis())
    };
    let principal = match principal {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let ctx = Ctx {
        shared,
        req,
        principal,
        seg,
    };
    match route(&ctx) {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

/// Handles a request on the control listener: only `/_standin/*`.
pub fn handle_control(shared: &Arc<Shared>, req: &Request) -> Response {
    let seg = req.segments();
    if seg.first().map(String::as_str) == Some("_standin") {
        return control(shared, req, &seg);
    }
    Response::json(
        404,
        &json!({"error": "the control listener serves /_standin/* only", "status": 404}),
    )
}

/// Renders an error as ES does (envelope, status, headers).
pub fn error_response(e: &EsError) -> Response {
    let mut r = Response::json(e.status, &e.envelope());
    r.headers = e.headers.clone();
    r
}

fn no_handler(req: &Request) -> EsResult<Response> {
    Ok(Response::json(
        400,
        &json!({"error": format!("no handler found for uri [{}] and method [{}]", req.path, req.method), "status": 400}),
    ))
}

fn bad_method(req: &Request, allowed: &str) -> EsResult<Response> {
    let mut r = Response::json(
        405,
        &json!({"error": format!("Incorrect HTTP method for uri [{}] and method [{}], allowed: [{allowed}]", req.path, req.method), "status": 405}),
    );
    r.headers.push(("Allow".into(), allowed.into()));
    Ok(r)
}

fn route(c: &Ctx) -> EsResult<Response> {
    let m = c.req.method.as_str();
    let s: Vec<&str> = c.seg.iter().map(String::as_str).collect();
    let get_post = matches!(m, "GET" | "POST");
    match (m, s.as_slice()) {
        ("GET" | "HEAD", []) => api_admin::info(c),
        (_, []) => bad_method(c.req, "HEAD, GET"),
        ("GET", ["_cluster", "health", ..]) => api_admin::health(c),
        (_, ["_security", ..]) => api_security::route(c, &s[1..]),
        ("POST", ["_fleet", "secret"]) => api_admin::secret_post(c),
        ("GET", ["_fleet", "secret", id]) => api_admin::secret_get(c, id),
        ("DELETE", ["_fleet", "secret", id]) => api_admin::secret_delete(c, id),
        (_, ["_fleet", "_fleet_msearch"]) if get_post => api_search::msearch(c, None, true),
        (_, [idx, "_fleet", "_fleet_msearch"]) if get_post => {
            api_search::msearch(c, Some(idx), true)
        }
        (_, [idx, "_fleet", "_fleet_search"]) if get_post => api_search::fleet_search(c, idx),
        ("GET", [idx, "_fleet", "global_checkpoints"]) => api_search::global_checkpoints(c, idx),
        ("PUT" | "POST", ["_bulk"]) => api_docs::bulk(c, None),
        ("PUT" | "POST", [idx, "_bulk"]) => api_docs::bulk(c, Some(idx)),
        (_, ["_bulk"]) | (_, [_, "_bulk"]) => bad_method(c.req, "POST, PUT"),
        (_, ["_mget"]) if get_post => api_docs::mget(c, None),
        (_, [idx, "_mget"]) if get_post => api_docs::mget(c, Some(idx)),
        (_, ["_search"]) if get_post => api_search::search(c, None),
        (_, [idx, "_search"]) if get_post => api_search::search(c, Some(idx)),
        (_, ["_count"]) if get_post => api_search::count(c, None),
        (_, [idx, "_count"]) if get_post => api_search::count(c, Some(idx)),
        (_, ["_msearch"]) if get_post => api_search::msearch(c, None, false),
        (_, [idx, "_msearch"]) if get_post => api_search::msearch(c, Some(idx), false),
        ("POST" | "GET", ["_refresh"]) => api_search::refresh(c, None),
        ("POST" | "GET", [idx, "_refresh"]) => api_search::refresh(c, Some(idx)),
        ("POST", [idx, "_update_by_query"]) => api_search::by_query(c, idx, false),
        ("POST", [idx, "_delete_by_query"]) => api_search::by_query(c, idx, true),
        ("PUT" | "POST", [idx, "_doc", id]) => api_docs::index_doc(c, idx, Some(id), false),
        ("POST", [idx, "_doc"]) => api_docs::index_doc(c, idx, None, false),
        ("PUT" | "POST", [idx, "_create", id]) => api_docs::index_doc(c, idx, Some(id), true),
        ("GET" | "HEAD", [idx, "_doc", id]) => api_docs::get_doc(c, idx, id, false),
        ("GET" | "HEAD", [idx, "_source", id]) => api_docs::get_doc(c, idx, id, true),
        ("DELETE", [idx, "_doc", id]) => api_docs::delete_doc(c, idx, id),
        ("POST", [idx, "_update", id]) => api_docs::update_doc(c, idx, id),
        ("GET", ["_mapping"]) => api_admin::get_mapping(c, None),
        ("GET", [idx, "_mapping"]) => api_admin::get_mapping(c, Some(idx)),
        ("PUT" | "POST", [idx, "_alias" | "_aliases", name]) => api_admin::put_alias(c, idx, name),
        ("GET", ["_alias", name]) => api_admin::get_alias(c, name),
        ("POST", ["_aliases"]) => api_admin::aliases(c),
        ("PUT" | "POST", ["_index_template", name]) => api_admin::put_template(c, name),
        ("DELETE", ["_index_template", _]) => ok(json!({"acknowledged": true})),
        ("GET", ["_data_stream", ..]) => api_admin::get_data_streams(c),
        ("PUT", [idx]) if !idx.starts_with('_') => api_admin::create_index(c, idx),
        ("DELETE", [idx]) if !idx.starts_with('_') => api_admin::delete_index(c, idx),
        ("HEAD", [idx]) if !idx.starts_with('_') => api_admin::index_exists(c, idx),
        ("GET", [idx]) if !idx.starts_with('_') => api_admin::get_index(c, idx),
        _ => no_handler(c.req),
    }
}

/// `/_standin/*` control endpoints (no authentication, not subject to faults).
fn control(shared: &Arc<Shared>, req: &Request, seg: &[String]) -> Response {
    let s: Vec<&str> = seg.iter().map(String::as_str).collect();
    let q = |k: &str| req.query.get(k).cloned();
    let dur = |k: &str| {
        q(k).and_then(|v| {
            util::parse_time(&v).or_else(|| v.parse::<u64>().ok().map(Duration::from_millis))
        })
    };
    let f = &shared.faults;
    match (req.method.as_str(), &s[1..]) {
        ("GET", ["faults"]) => {}
        ("POST" | "PUT", ["faults", "latency"]) => {
            f.latency(dur("ms").or_else(|| dur("for")).unwrap_or_default())
        }
        ("POST" | "PUT", ["faults", "fail"]) => {
            let n = q("count").and_then(|v| v.parse().ok()).unwrap_or(1);
            let status = q("status").and_then(|v| v.parse().ok()).unwrap_or(503);
            f.fail_next(n, status);
        }
        ("POST" | "PUT", ["faults", "hang"]) => f.hang(q("on").as_deref() != Some("false")),
        ("POST" | "PUT", ["faults", "down"]) => {
            let resp = Response::json(200, &json!({"acknowledged": true}));
            let d = dur("for");
            // answer first, then go down (the reply travels on this connection)
            let sh = shared.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                sh.faults.down(d);
            });
            return resp;
        }
        ("POST" | "PUT", ["faults", "up"]) => f.up(),
        ("POST" | "PUT" | "DELETE", ["faults", "clear"]) | ("DELETE", ["faults"]) => f.clear(),
        ("POST", ["refresh"]) => {
            for i in shared.cluster().indices.values_mut() {
                i.refresh();
            }
            shared.notify();
        }
        ("POST", ["reset"]) => {
            shared.cluster().wipe();
            shared.notify();
        }
        _ => {
            return Response::json(
                404,
                &json!({"error": "unknown stand-in control endpoint", "status": 404}),
            );
        }
    }
    Response::json(200, &json!({"acknowledged": true, "faults": f.status()}))
}
