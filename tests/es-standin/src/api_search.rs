//! Search-side APIs: `_search`, `_count`, `_msearch`, `_fleet/_fleet_search` and
//! `_fleet/_fleet_msearch` (with `wait_for_checkpoints` exactly as es-contract.md §3.5),
//! `_fleet/global_checkpoints` (§3.4), `_refresh`, `_update_by_query` and `_delete_by_query`
//! (search-visible selection, seq_no-checked writes, `conflicts=proceed`).

use crate::api_docs::{after_writes, refresh_param};
use crate::cluster::Cluster;
use crate::error::{EsError, EsResult};
use crate::http::Response;
use crate::index::{Occ, WriteResult};
use crate::painless;
use crate::router::{parse_json, Ctx};
use crate::search::{self, SearchRequest};
use crate::util;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

fn mark_search(g: &mut Cluster, names: &[String]) {
    let now = Instant::now();
    for n in names {
        if let Some(i) = g.indices.get_mut(n) {
            // a search on a search-idle index with pending writes refreshes it first (ES waits for
            // the scheduled refresh that the search re-activates)
            if now.duration_since(i.last_search) >= Duration::from_secs(30)
                && i.has_pending()
                && i.settings.refresh_interval.is_some()
            {
                i.refresh();
            }
            i.last_search = now;
        }
    }
}

fn bool_param(p: &HashMap<String, String>, k: &str) -> bool {
    matches!(p.get(k).map(String::as_str), Some("true") | Some(""))
}

fn resolve(g: &Cluster, idx: Option<&str>, p: &HashMap<String, String>) -> EsResult<Vec<String>> {
    g.resolve(idx.unwrap_or(""), bool_param(p, "ignore_unavailable"))
}

/// `_search`.
pub fn search(c: &Ctx, idx: Option<&str>) -> EsResult<Response> {
    let started = Instant::now();
    let req = SearchRequest::parse(&c.body()?, &c.req.query)?;
    let mut g = c.shared.cluster();
    let names = resolve(&g, idx, &c.req.query)?;
    c.authorize("indices:data/read/search", &names)?;
    mark_search(&mut g, &names);
    let v = search::execute(
        &g,
        &names,
        &req,
        c.now(),
        started.elapsed().as_millis() as u64,
    )?;
    Ok(Response::json(200, &v))
}

/// `_count`.
pub fn count(c: &Ctx, idx: Option<&str>) -> EsResult<Response> {
    let body = c.body()?;
    let q = match body.get("query") {
        Some(q) => crate::query::Query::parse(q)?,
        None => crate::query::Query::MatchAll,
    };
    let mut g = c.shared.cluster();
    let names = resolve(&g, idx, &c.req.query)?;
    c.authorize("indices:data/read/search", &names)?;
    mark_search(&mut g, &names);
    let indices: Vec<_> = names.iter().filter_map(|n| g.indices.get(n)).collect();
    let n = search::matching(&indices, &q, &[], c.now()).len();
    let shards: u32 = indices.iter().map(|i| i.shards()).sum();
    Ok(Response::json(
        200,
        &json!({"count": n, "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0}}),
    ))
}

fn checkpoints_of(v: Option<&Value>) -> EsResult<Vec<i64>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_i64()
                    .ok_or_else(|| EsError::illegal_argument(format!("invalid checkpoint [{x}]")))
            })
            .collect(),
        Some(Value::Number(n)) => Ok(vec![n.as_i64().unwrap_or(-1)]),
        Some(Value::String(s)) => parse_list(s),
        Some(other) => Err(EsError::illegal_argument(format!(
            "invalid wait_for_checkpoints [{other}]"
        ))),
    }
}

fn parse_list(s: &str) -> EsResult<Vec<i64>> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse()
                .map_err(|_| EsError::illegal_argument(format!("Failed to parse long [{x}]")))
        })
        .collect()
}

/// Waits as a fleet search does for each shard's checkpoint; the error is a shard failure cause
/// (to be wrapped in `search_phase_execution_exception`) or a top-level request error.
fn wait_for_checkpoints<'a>(
    c: &Ctx,
    mut g: MutexGuard<'a, Cluster>,
    target: &str,
    concrete: &str,
    cps: &[i64],
    timeout: Duration,
) -> Result<MutexGuard<'a, Cluster>, (bool, EsError)> {
    let Some(idx) = g.indices.get(concrete) else {
        return Err((true, EsError::index_not_found(target)));
    };
    if cps.len() as u32 != idx.shards() {
        return Err((true, EsError::illegal_argument(format!(
            "Target configured with wait_for_checkpoints must search the same number of shards as checkpoints provided. [{}] checkpoints provided. Target [{target}] which resolved to index [{concrete}] has [{}] shards.",
            cps.len(),
            idx.shards()
        ))));
    }
    let deadline = Instant::now() + timeout;
    for (shard, &cp) in cps.iter().enumerate() {
        let shard = shard as u32;
        if cp <= -2 {
            continue;
        }
        loop {
            let Some(idx) = g.indices.get_mut(concrete) else {
                return Err((true, EsError::index_not_found(target)));
            };
            idx.last_search = Instant::now();
            if idx.settings.refresh_interval.is_none() {
                return Err((
                    false,
                    EsError::illegal_argument(
                        "Cannot use wait_for_checkpoints with [index.refresh_interval=-1]",
                    ),
                ));
            }
            let gcp = idx
                .global_checkpoints()
                .get(shard as usize)
                .copied()
                .unwrap_or(-1);
            if cp <= idx.refreshed_seq_no(shard) && cp <= gcp {
                break;
            }
            if cp > idx.max_seq_no(shard) {
                return Err((false, EsError::illegal_argument(format!(
                    "Cannot wait for unissued seqNo checkpoint [wait_for_checkpoint={cp}, max_issued_seqNo={}]",
                    idx.max_seq_no(shard)
                ))));
            }
            if Instant::now() >= deadline || c.shared.is_shutdown() {
                return Err((
                    false,
                    EsError::new(
                        429,
                        "search_timeout_exception",
                        format!(
                            "Wait for seq_no [{cp}] refreshed timed out [{}]",
                            fmt_time(timeout)
                        ),
                    ),
                ));
            }
            g = c.shared.wait(g, deadline);
        }
    }
    Ok(g)
}

fn fmt_time(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 60_000 == 0 && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 && ms > 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// One search of an msearch / fleet search: returns the response object or an error.
fn one_search(
    c: &Ctx,
    header: &Value,
    body: &Value,
    fleet: bool,
    default_idx: Option<&str>,
) -> EsResult<Value> {
    let started = Instant::now();
    let mut params: HashMap<String, String> = HashMap::new();
    let idx_expr = match header.get("index") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(a)) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => default_idx.map(String::from),
    };
    if header.get("ignore_unavailable").and_then(Value::as_bool) == Some(true) {
        params.insert("ignore_unavailable".into(), "true".into());
    }
    let req = SearchRequest::parse(body, &params)?;
    let cps = if fleet {
        checkpoints_of(header.get("wait_for_checkpoints"))?
    } else {
        Vec::new()
    };
    let timeout = header
        .get("wait_for_checkpoints_timeout")
        .and_then(Value::as_str)
        .and_then(util::parse_time)
        .unwrap_or(Duration::from_secs(30));
    if fleet && !cps.is_empty() && idx_expr.is_none() {
        return Err(EsError::illegal_argument("Fleet search API param wait_for_checkpoints is only supported with an index to search specified. No index specified."));
    }
    run_search(
        c,
        idx_expr.as_deref(),
        &params,
        &req,
        &cps,
        timeout,
        started,
    )
}

fn run_search(
    c: &Ctx,
    idx: Option<&str>,
    params: &HashMap<String, String>,
    req: &SearchRequest,
    cps: &[i64],
    timeout: Duration,
    started: Instant,
) -> EsResult<Value> {
    let mut g = c.shared.cluster();
    let names = resolve(&g, idx, params)?;
    c.authorize("indices:data/read/search", &names)?;
    if !cps.is_empty() {
        let target = idx.unwrap_or("");
        if names.len() != 1 {
            return Err(EsError::illegal_argument(format!("Failed to resolve wait_for_checkpoints target [{target}]. Configured target must resolve to a single open index.")));
        }
        g = match wait_for_checkpoints(c, g, target, &names[0], cps, timeout) {
            Ok(g) => g,
            Err((true, e)) => return Err(e),
            Err((false, e)) => {
                return Err(EsError::all_shards_failed(
                    e,
                    &names[0],
                    &c.shared.config.node_id,
                ))
            }
        };
    }
    mark_search(&mut g, &names);
    search::execute(
        &g,
        &names,
        req,
        c.now(),
        started.elapsed().as_millis() as u64,
    )
}

/// `POST /<idx>/_fleet/_fleet_search`.
pub fn fleet_search(c: &Ctx, idx: &str) -> EsResult<Response> {
    let started = Instant::now();
    if idx.contains(',') || idx.contains('*') {
        return Err(EsError::illegal_argument(format!(
            "Fleet search API only supports searching a single index. Found: [{}].",
            idx.split(',').collect::<Vec<_>>().join(", ")
        )));
    }
    let req = SearchRequest::parse(&c.body()?, &c.req.query)?;
    let cps = match c.param("wait_for_checkpoints") {
        Some(s) => parse_list(s)?,
        None => Vec::new(),
    };
    let timeout = c
        .param("wait_for_checkpoints_timeout")
        .and_then(util::parse_time)
        .unwrap_or(Duration::from_secs(30));
    let v = run_search(c, Some(idx), &c.req.query, &req, &cps, timeout, started)?;
    Ok(Response::json(200, &v))
}

/// `_msearch` and `_fleet/_fleet_msearch`.
pub fn msearch(c: &Ctx, idx: Option<&str>, fleet: bool) -> EsResult<Response> {
    let started = Instant::now();
    let lines: Vec<&[u8]> = c
        .req
        .body
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect();
    if lines.is_empty() {
        return Err(EsError::validation(&["no requests added".into()]));
    }
    if lines.len() % 2 != 0 {
        return Err(EsError::illegal_argument(
            "The msearch request must be terminated by a newline [\\n]",
        ));
    }
    c.authorize("indices:data/read/msearch", &[])?;
    let mut responses = Vec::new();
    for pair in lines.chunks(2) {
        let header = parse_json(pair[0])?;
        let body = parse_json(pair[1])?;
        let r = match one_search(c, &header, &body, fleet, idx) {
            Ok(mut v) => {
                v["status"] = json!(200);
                v
            }
            Err(e) => json!({"error": e.full_body(), "status": e.status}),
        };
        responses.push(r);
    }
    Ok(Response::json(
        200,
        &json!({"took": started.elapsed().as_millis() as u64, "responses": responses}),
    ))
}

/// `GET /<idx>/_fleet/global_checkpoints`.
pub fn global_checkpoints(c: &Ctx, idx: &str) -> EsResult<Response> {
    let flag = |k: &str| -> EsResult<bool> {
        match c.param(k) {
            None | Some("false") => Ok(false),
            Some("") | Some("true") => Ok(true),
            Some(o) => Err(EsError::illegal_argument(format!(
                "Failed to parse value [{o}] as only [true] or [false] are allowed."
            ))),
        }
    };
    let advance = flag("wait_for_advance")?;
    let wait_index = flag("wait_for_index")?;
    let cps = parse_list(c.param("checkpoints").unwrap_or(""))?;
    let timeout = match c.param("timeout") {
        Some(t) => util::parse_time(t).ok_or_else(|| EsError::illegal_argument(format!("failed to parse setting [timeout] with value [{t}] as a time value: unit is missing or unrecognized")))?,
        None => Duration::from_secs(30),
    };
    let mut errs = Vec::new();
    if wait_index && !advance {
        errs.push(
            "If wait_for_index is set to true, wait_for_advance must also be set to true."
                .to_string(),
        );
    }
    if cps.iter().any(|&x| x < -1) {
        errs.push(format!("All checkpoints must be >= -1. Found: {cps:?}"));
    }
    if !errs.is_empty() {
        return Err(EsError::validation(&errs));
    }
    let deadline = Instant::now() + timeout;
    let mut g = c.shared.cluster();
    let concrete = loop {
        match g.resolve_one(idx) {
            Some(v) if v.len() == 1 => break v[0].clone(),
            Some(_) => {
                return Err(EsError::illegal_argument(format!(
                    "[{idx}] resolves to more than one index"
                )))
            }
            None if wait_index && Instant::now() < deadline && !c.shared.is_shutdown() => {
                g = c.shared.wait(g, deadline)
            }
            None => return Err(EsError::index_not_found(idx)),
        }
    };
    drop(g);
    c.authorize(
        "indices:monitor/fleet/global_checkpoints",
        std::slice::from_ref(&concrete),
    )?;
    let mut g = c.shared.cluster();
    let shards = g.indices.get(&concrete).map(|i| i.shards()).unwrap_or(1);
    if advance && shards > 1 {
        return Err(EsError::status_exception(
            400,
            format!(
                "wait_for_advance only supports indices with one shard. [shard count: {shards}]"
            ),
        ));
    }
    if !cps.is_empty() && cps.len() as u32 != shards {
        return Err(EsError::status_exception(400, format!("number of checkpoints must equal number of shards. [shard count: {shards}, checkpoint count: {}]", cps.len())));
    }
    let current = |g: &Cluster| {
        g.indices
            .get(&concrete)
            .map(|i| i.global_checkpoints())
            .unwrap_or_default()
    };
    if !advance {
        return Ok(Response::json(
            200,
            &json!({"timed_out": false, "global_checkpoints": current(&g)}),
        ));
    }
    let want = cps.first().copied().unwrap_or(-1);
    loop {
        let now_cp = current(&g);
        if now_cp.is_empty() {
            return Err(EsError::index_not_found(idx));
        }
        if now_cp[0] > want {
            return Ok(Response::json(
                200,
                &json!({"timed_out": false, "global_checkpoints": now_cp}),
            ));
        }
        if Instant::now() >= deadline || c.shared.is_shutdown() {
            return Ok(Response::json(
                200,
                &json!({"timed_out": true, "global_checkpoints": now_cp}),
            ));
        }
        g = c.shared.wait(g, deadline);
    }
}

/// `POST [/<idx>]/_refresh`.
pub fn refresh(c: &Ctx, idx: Option<&str>) -> EsResult<Response> {
    let mut g = c.shared.cluster();
    let names = resolve(&g, idx, &c.req.query)?;
    c.authorize("indices:admin/refresh", &names)?;
    let (mut total, mut ok) = (0u32, 0u32);
    for n in &names {
        if let Some(i) = g.indices.get_mut(n) {
            i.refresh();
            total += i.shards() * (1 + i.settings.replicas);
            ok += i.shards();
        }
    }
    drop(g);
    c.shared.notify();
    Ok(Response::json(
        200,
        &json!({"_shards": {"total": total, "successful": ok, "failed": 0}}),
    ))
}

/// `_update_by_query` / `_delete_by_query`.
pub fn by_query(c: &Ctx, idx: &str, delete: bool) -> EsResult<Response> {
    let started = Instant::now();
    let body = c.body()?;
    let mode = refresh_param(c.param("refresh"))?;
    let proceed = c.param("conflicts") == Some("proceed")
        || body.get("conflicts").and_then(Value::as_str) == Some("proceed");
    let query = match body.get("query") {
        Some(q) => crate::query::Query::parse(q)?,
        None if delete => return Err(EsError::validation(&["query is missing".into()])),
        None => crate::query::Query::MatchAll,
    };
    let script = match body.get("script") {
        Some(s) if !delete => {
            let (src, params) = match s {
                Value::String(x) => (x.clone(), json!({})),
                o => (
                    o.get("source")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    o.get("params").cloned().unwrap_or_else(|| json!({})),
                ),
            };
            let compiled =
                painless::compile(&src).map_err(|e| painless::compile_error(&src, &e))?;
            Some((compiled, params))
        }
        _ => None,
    };
    let max_docs = body
        .get("max_docs")
        .and_then(Value::as_u64)
        .or_else(|| c.param("max_docs").and_then(|m| m.parse().ok()))
        .map(|m| m as usize);
    let mut g = c.shared.cluster();
    let names = resolve(&g, Some(idx), &c.req.query)?;
    c.authorize(
        if delete {
            "indices:data/write/delete/byquery"
        } else {
            "indices:data/write/update/byquery"
        },
        &names,
    )?;
    mark_search(&mut g, &names);
    let now = c.now();
    let mut selected: Vec<(String, String, i64)> = Vec::new();
    {
        let indices: Vec<_> = names.iter().filter_map(|n| g.indices.get(n)).collect();
        for h in search::matching(&indices, &query, &[], now) {
            selected.push((h.index.name.clone(), h.doc.id.clone(), h.doc.seq_no));
        }
    }
    if let Some(m) = max_docs {
        selected.truncate(m);
    }
    let (mut updated, mut deleted, mut noops, mut conflicts) = (0u64, 0u64, 0u64, 0u64);
    let mut failures = Vec::new();
    let mut results: Vec<WriteResult> = Vec::new();
    for (iname, id, seq) in &selected {
        let Some(index) = g.indices.get_mut(iname) else {
            continue;
        };
        let occ = Occ {
            if_seq_no: Some(*seq),
            if_primary_term: Some(1),
        };
        let r = if delete {
            index.delete(id, occ)
        } else {
            match index.get(id) {
                Some(d) if d.seq_no == *seq => match &script {
                    None => Ok(index.store(id, d.source.clone(), d.version + 1, "updated")),
                    Some((s, p)) => match painless::run(s, d.source.clone(), id, iname, "index", p)
                    {
                        Err(e) => Err(painless::runtime_error(&s.source, &e)),
                        Ok(o) if o.op == "noop" || o.op == "none" => Ok(index.noop(&d)),
                        Ok(o) if o.op == "delete" => index.delete(id, Occ::default()),
                        Ok(o) => Ok(index.store(id, o.source, d.version + 1, "updated")),
                    },
                },
                other => index
                    .put(
                        id,
                        json!({}),
                        false,
                        Occ {
                            if_seq_no: Some(*seq),
                            if_primary_term: Some(1),
                        },
                    )
                    .map(|_| unreachable_result(other.is_some())),
            }
        };
        match r {
            Ok(w) => {
                match w.result {
                    "deleted" => deleted += 1,
                    "noop" => noops += 1,
                    "not_found" => conflicts += 1,
                    _ => updated += 1,
                }
                results.push(w);
            }
            Err(e) if e.status == 409 => {
                conflicts += 1;
                if !proceed {
                    failures.push(
                        json!({"index": iname, "id": id, "cause": e.item_body(), "status": 409}),
                    );
                    break;
                }
            }
            Err(e) => {
                failures.push(
                    json!({"index": iname, "id": id, "cause": e.item_body(), "status": e.status}),
                );
                break;
            }
        }
    }
    let mut refs: Vec<&mut WriteResult> = results.iter_mut().collect();
    after_writes(c, g, &mut refs, mode);
    let total = selected.len();
    let mut out = json!({
        "took": started.elapsed().as_millis() as u64,
        "timed_out": false,
        "total": total,
    });
    if !delete {
        out["updated"] = json!(updated);
    }
    out["deleted"] = json!(deleted);
    out["batches"] = json!(total.div_ceil(1000));
    out["version_conflicts"] = json!(conflicts);
    out["noops"] = json!(noops);
    out["retries"] = json!({"bulk": 0, "search": 0});
    out["throttled_millis"] = json!(0);
    out["requests_per_second"] = json!(-1.0);
    out["throttled_until_millis"] = json!(0);
    out["failures"] = json!(failures);
    let status = if failures.iter().any(|f| f["status"] == 409) {
        409
    } else if failures.is_empty() {
        200
    } else {
        500
    };
    Ok(Response::json(status, &out))
}

// A document that changed (or vanished) since the search: `put` with the stale seq_no fails with
// the version conflict, so this is never reached; kept total for the type checker.
fn unreachable_result(_existed: bool) -> WriteResult {
    WriteResult {
        index: String::new(),
        id: String::new(),
        version: 0,
        result: "not_found",
        seq_no: -1,
        shards_total: 0,
        shard: 0,
        forced_refresh: false,
        source: None,
    }
}
