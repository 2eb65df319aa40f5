//! Document APIs: index/create (`PUT/POST /<idx>/_doc|_create/<id>`), realtime GET, delete, update,
//! `_mget` and `_bulk` (NDJSON framing errors, per-item results and statuses exactly as ES, the
//! `errors` flag, `forced_refresh`), plus the `refresh=true|wait_for|false` handling shared by every
//! write and the data stream write rules.

use crate::cluster::Cluster;
use crate::error::{EsError, EsResult};
use crate::http::Response;
use crate::index::{Occ, WriteResult};
use crate::router::{parse_json, Ctx};
use crate::search::SourceFilter;
use crate::update;
use crate::util;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// `refresh` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// `false` / absent.
    No,
    /// `true` / empty.
    Now,
    /// `wait_for`.
    WaitFor,
}

/// Parses the `refresh` parameter.
pub fn refresh_param(v: Option<&str>) -> EsResult<Refresh> {
    match v {
        None | Some("false") => Ok(Refresh::No),
        Some("") | Some("true") => Ok(Refresh::Now),
        Some("wait_for") => Ok(Refresh::WaitFor),
        Some(o) => Err(EsError::illegal_argument(format!(
            "Unknown value for refresh: [{o}]."
        ))),
    }
}

/// Applies the refresh policy to finished writes; sets `forced_refresh`.
pub fn after_writes(
    c: &Ctx,
    mut g: std::sync::MutexGuard<'_, Cluster>,
    results: &mut [&mut WriteResult],
    mode: Refresh,
) {
    let mode = if c.shared.config.refresh_on_write && mode == Refresh::No {
        Refresh::Now
    } else {
        mode
    };
    match mode {
        Refresh::No => {}
        Refresh::Now => {
            let mut names: Vec<String> = results
                .iter()
                .filter(|r| r.seq_no >= 0)
                .map(|r| r.index.clone())
                .collect();
            names.dedup();
            for n in &names {
                if let Some(i) = g.indices.get_mut(n) {
                    i.refresh();
                }
            }
            if !c.shared.config.refresh_on_write || c.req.query.contains_key("refresh") {
                for r in results
                    .iter_mut()
                    .filter(|r| r.seq_no >= 0 && r.result != "noop")
                {
                    r.forced_refresh = true;
                }
            }
        }
        Refresh::WaitFor => {
            let targets: Vec<(String, u32, i64)> = results
                .iter()
                .filter(|r| r.seq_no >= 0)
                .map(|r| (r.index.clone(), r.shard, r.seq_no))
                .collect();
            let far = Instant::now() + Duration::from_secs(3600);
            loop {
                let done = targets.iter().all(|(n, s, q)| {
                    g.indices
                        .get(n)
                        .is_none_or(|i| i.refreshed_seq_no(*s) >= *q)
                });
                if done || c.shared.is_shutdown() {
                    break;
                }
                g = c.shared.wait(g, far);
            }
        }
    }
    drop(g);
    c.shared.notify();
}

fn occ(c: &Ctx) -> EsResult<Occ> {
    let p = |k: &str| -> EsResult<Option<i64>> {
        match c.param(k) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                EsError::illegal_argument(format!(
                    "Failed to parse long parameter [{k}] with value [{v}]"
                ))
            }),
        }
    };
    let o = Occ {
        if_seq_no: p("if_seq_no")?,
        if_primary_term: p("if_primary_term")?,
    };
    if o.if_seq_no.is_some() != o.if_primary_term.is_some() {
        return Err(EsError::validation(&[
            "ifSeqNo is set, but primary term is [0]".into(),
        ]));
    }
    Ok(o)
}

fn write_doc(
    g: &mut Cluster,
    target: &str,
    id: Option<&str>,
    src: Value,
    create: bool,
    o: Occ,
    now: i64,
) -> EsResult<WriteResult> {
    if !src.is_object() {
        return Err(EsError::new(
            400,
            "document_parsing_exception",
            "[1:1] failed to parse: source must be an object",
        ));
    }
    let t = g.write_target(target, now)?;
    if t.data_stream {
        if !create {
            return Err(EsError::illegal_argument(
                "only write ops with an op_type of create are allowed in data streams",
            ));
        }
        if src.get("@timestamp").is_none() {
            return Err(EsError::new(
                400,
                "document_parsing_exception",
                "[1:1] failed to parse: data stream timestamp field [@timestamp] is missing",
            ));
        }
    }
    let id = match id {
        Some("") => {
            return Err(EsError::illegal_argument(
                "if _id is specified it must not be empty",
            ))
        }
        Some(i) => i.to_string(),
        None => util::random_id(),
    };
    if id.len() > 512 {
        return Err(EsError::validation(&[format!(
            "id [{id}] is too long, must be no longer than 512 bytes but was: {}",
            id.len()
        )]));
    }
    let idx = g
        .indices
        .get_mut(&t.concrete)
        .ok_or_else(|| EsError::index_not_found(target))?;
    idx.put(&id, src, create, o)
}

/// `PUT/POST /<idx>/_doc[/<id>]`, `/<idx>/_create/<id>`.
pub fn index_doc(c: &Ctx, idx: &str, id: Option<&str>, create: bool) -> EsResult<Response> {
    let create = create || c.param("op_type") == Some("create") || id.is_none();
    let mode = refresh_param(c.param("refresh"))?;
    let o = occ(c)?;
    let src = c.body()?;
    c.authorize("indices:data/write/index", &[idx.to_string()])?;
    let mut g = c.shared.cluster();
    let mut r = write_doc(&mut g, idx, id, src, create, o, c.now())?;
    after_writes(c, g, &mut [&mut r], mode);
    let mut resp = Response::json(r.status(), &r.to_json());
    if r.status() == 201 {
        resp.headers.push((
            "Location".into(),
            format!("/{}/_doc/{}", r.index, util::percent_encode(&r.id)),
        ));
    }
    Ok(resp)
}

fn doc_json(index: &str, d: &crate::index::Doc, filter: &SourceFilter) -> Value {
    let mut v = json!({"_index": index, "_id": d.id, "_version": d.version, "_seq_no": d.seq_no, "_primary_term": 1, "found": true});
    if let Some(s) = filter.apply(&d.source) {
        v["_source"] = s;
    }
    v
}

/// `GET /<idx>/_doc/<id>` (realtime) and `GET /<idx>/_source/<id>`.
pub fn get_doc(c: &Ctx, idx: &str, id: &str, source_only: bool) -> EsResult<Response> {
    let filter = SourceFilter::from_params(&c.req.query).unwrap_or_default();
    let mut g = c.shared.cluster();
    let concrete = g.resolve_single(idx)?;
    c.authorize("indices:data/read/get", std::slice::from_ref(&concrete))?;
    let i = g
        .indices
        .get_mut(&concrete)
        .ok_or_else(|| EsError::index_not_found(idx))?;
    if c.req.flag("refresh") {
        i.refresh();
    }
    let realtime = c.param("realtime") != Some("false");
    let doc = if realtime {
        i.get(id)
    } else {
        i.searchable().find(|d| d.id == id).cloned()
    };
    match doc {
        Some(d) if source_only => Ok(Response::json(
            200,
            &filter.apply(&d.source).unwrap_or(Value::Null),
        )),
        Some(d) => {
            let mut v = doc_json(&concrete, &d, &filter);
            // `stored_fields`: the listed fields' values under `fields` (a binary field's is
            // its base64 text in JSON, its bytes in CBOR).
            if let Some(list) = c.param("stored_fields") {
                let mut fields = serde_json::Map::new();
                for name in list.split(',').filter(|n| !n.is_empty()) {
                    if let Some(value) = d.source.get(name) {
                        fields.insert(name.to_owned(), json!([value]));
                    }
                }
                if !fields.is_empty() {
                    v["fields"] = Value::Object(fields);
                }
            }
            let cbor = c
                .req
                .header("accept")
                .is_some_and(|a| a.to_ascii_lowercase().starts_with("application/cbor"));
            if cbor {
                return Ok(Response {
                    status: 200,
                    headers: Vec::new(),
                    body: crate::cbor::encode_get(&v),
                    content_type: "application/cbor",
                });
            }
            Ok(Response::json(200, &v))
        }
        None if source_only => Err(EsError::resource_not_found(format!(
            "Document not found [{concrete}]/[{id}]"
        ))),
        None => Ok(Response::json(
            404,
            &json!({"_index": concrete, "_id": id, "found": false}),
        )),
    }
}

/// `DELETE /<idx>/_doc/<id>`.
pub fn delete_doc(c: &Ctx, idx: &str, id: &str) -> EsResult<Response> {
    let mode = refresh_param(c.param("refresh"))?;
    let o = occ(c)?;
    let mut g = c.shared.cluster();
    let concrete = g.resolve_single(idx)?;
    c.authorize("indices:data/write/delete", std::slice::from_ref(&concrete))?;
    let i = g
        .indices
        .get_mut(&concrete)
        .ok_or_else(|| EsError::index_not_found(idx))?;
    let mut r = i.delete(id, o)?;
    after_writes(c, g, &mut [&mut r], mode);
    Ok(Response::json(r.status(), &r.to_json()))
}

fn update_json(r: &WriteResult, filter: Option<&SourceFilter>) -> Value {
    let mut v = r.to_json();
    if let (Some(f), Some(src)) = (filter, &r.source) {
        if r.result != "deleted" {
            let mut get = json!({"_seq_no": r.seq_no, "_primary_term": 1, "found": true});
            if let Some(s) = f.apply(src) {
                get["_source"] = s;
            }
            v["get"] = get;
        }
    }
    v
}

fn update_filter(c: &Ctx, body: &update::UpdateBody) -> Option<SourceFilter> {
    SourceFilter::from_params(&c.req.query)
        .or_else(|| body.source.as_ref().map(|s| SourceFilter::parse(Some(s))))
        .filter(|f| !f.disabled)
}

/// `POST /<idx>/_update/<id>`.
pub fn update_doc(c: &Ctx, idx: &str, id: &str) -> EsResult<Response> {
    let mode = refresh_param(c.param("refresh"))?;
    let o = occ(c)?;
    let body = update::parse(&c.body()?)?;
    c.authorize("indices:data/write/update", &[idx.to_string()])?;
    let mut g = c.shared.cluster();
    let t = g.write_target(idx, c.now())?;
    let i = g
        .indices
        .get_mut(&t.concrete)
        .ok_or_else(|| EsError::index_not_found(idx))?;
    let mut r = update::apply(i, id, &body, o)?;
    after_writes(c, g, &mut [&mut r], mode);
    Ok(Response::json(
        r.status(),
        &update_json(&r, update_filter(c, &body).as_ref()),
    ))
}

/// `POST /_mget`.
pub fn mget(c: &Ctx, default_idx: Option<&str>) -> EsResult<Response> {
    let body = c.body()?;
    let filter = SourceFilter::from_params(&c.req.query);
    let mut specs: Vec<(Option<String>, String, Option<Value>)> = Vec::new();
    if let Some(docs) = body.get("docs").and_then(Value::as_array) {
        for d in docs {
            let id = match d.get("_id") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            let idx = d
                .get("_index")
                .and_then(Value::as_str)
                .map(String::from)
                .or_else(|| default_idx.map(String::from));
            specs.push((idx, id, d.get("_source").cloned()));
        }
    } else if let Some(ids) = body.get("ids").and_then(Value::as_array) {
        for id in ids {
            let id = id
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| id.to_string());
            specs.push((default_idx.map(String::from), id, None));
        }
    }
    let mut errs = Vec::new();
    if specs.is_empty() {
        errs.push("no documents to get".to_string());
    }
    for (i, (idx, id, _)) in specs.iter().enumerate() {
        if idx.is_none() {
            errs.push(format!("index is missing for doc {i}"));
        }
        if id.is_empty() {
            errs.push(format!("id is missing for doc {i}"));
        }
    }
    if !errs.is_empty() {
        return Err(EsError::validation(&errs));
    }
    c.authorize("indices:data/read/mget", &[])?;
    let mut g = c.shared.cluster();
    if c.req.flag("refresh") {
        for (idx, _, _) in &specs {
            if let Some(Ok(n)) = idx.as_deref().map(|i| g.resolve_single(i)) {
                if let Some(i) = g.indices.get_mut(&n) {
                    i.refresh();
                }
            }
        }
    }
    let realtime = c.param("realtime") != Some("false");
    let mut docs = Vec::new();
    for (idx, id, src) in &specs {
        let idx = idx.as_deref().unwrap_or("");
        let f = src
            .as_ref()
            .map(|s| SourceFilter::parse(Some(s)))
            .or_else(|| filter.clone())
            .unwrap_or_default();
        match g.resolve_single(idx) {
            Err(e) => docs.push(json!({"_index": idx, "_id": id, "error": e.full_body()})),
            Ok(concrete) => {
                if let Err(e) = c.shared.security().authorize(
                    &c.principal,
                    "indices:data/read/get",
                    std::slice::from_ref(&concrete),
                ) {
                    docs.push(json!({"_index": concrete, "_id": id, "error": e.full_body()}));
                    continue;
                }
                let i = g.indices.get(&concrete);
                let d = i.and_then(|i| {
                    if realtime {
                        i.get(id)
                    } else {
                        i.searchable().find(|d| &d.id == id).cloned()
                    }
                });
                match d {
                    Some(d) => docs.push(doc_json(&concrete, &d, &f)),
                    None => docs.push(json!({"_index": concrete, "_id": id, "found": false})),
                }
            }
        }
    }
    drop(g);
    Ok(Response::json(200, &json!({"docs": docs})))
}

#[derive(Debug)]
struct BulkItem {
    op: String,
    index: Option<String>,
    id: Option<String>,
    occ: Occ,
    source: Option<Value>,
}

const META_KEYS: &[&str] = &[
    "_index",
    "_id",
    "retry_on_conflict",
    "if_seq_no",
    "if_primary_term",
    "routing",
    "require_alias",
    "op_type",
    "pipeline",
    "dynamic_templates",
    "_source",
    "version",
    "version_type",
    "require_data_stream",
    "list_executed_pipelines",
];

fn parse_bulk(body: &[u8], default_idx: Option<&str>) -> EsResult<Vec<BulkItem>> {
    if body.is_empty() {
        return Err(EsError::validation(&["no requests added".into()]));
    }
    if body.last() != Some(&b'\n') {
        return Err(EsError::illegal_argument(
            "The bulk request must be terminated by a newline [\\n]",
        ));
    }
    let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
    let mut items = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let lineno = i + 1;
        i += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let action = parse_json(line)?;
        let Value::Object(m) = action else {
            return Err(EsError::illegal_argument(format!("Malformed action/metadata line [{lineno}], expected START_OBJECT or END_OBJECT but found [VALUE_STRING]")));
        };
        let Some((op, meta)) = m.iter().next() else {
            return Err(EsError::illegal_argument(format!("Malformed action/metadata line [{lineno}], expected FIELD_NAME but found [END_OBJECT]")));
        };
        if !["index", "create", "update", "delete"].contains(&op.as_str()) {
            return Err(EsError::illegal_argument(format!("Malformed action/metadata line [{lineno}], expected field [create], [delete], [index] or [update] but found [{op}]")));
        }
        let meta = meta.as_object().cloned().unwrap_or_else(Map::new);
        for k in meta.keys() {
            if !META_KEYS.contains(&k.as_str()) {
                return Err(EsError::illegal_argument(format!(
                    "Action/metadata line [{lineno}] contains an unknown parameter [{k}]"
                )));
            }
        }
        let id = match meta.get("_id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let num = |k: &str| meta.get(k).and_then(Value::as_i64);
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| default_idx.map(String::from));
        let mut op = op.clone();
        if op == "index" && meta.get("op_type").and_then(Value::as_str) == Some("create") {
            op = "create".into();
        }
        let source = if op == "delete" {
            None
        } else {
            let Some(src) = lines
                .get(i)
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            else {
                return Err(EsError::illegal_argument(format!(
                    "Malformed action/metadata line [{lineno}], expected a source line"
                )));
            };
            i += 1;
            Some(parse_json(src)?)
        };
        items.push(BulkItem {
            op,
            index,
            id,
            occ: Occ {
                if_seq_no: num("if_seq_no"),
                if_primary_term: num("if_primary_term"),
            },
            source,
        });
    }
    Ok(items)
}

fn run_item(c: &Ctx, g: &mut Cluster, it: &BulkItem, now: i64) -> EsResult<WriteResult> {
    let Some(target) = it.index.as_deref() else {
        return Err(EsError::validation(&["index is missing".into()]));
    };
    match it.op.as_str() {
        "index" | "create" => {
            let create = it.op == "create";
            if it.id.as_deref() == Some("") {
                return Err(EsError::illegal_argument(
                    "if _id is specified it must not be empty",
                ));
            }
            let name = g
                .resolve_single(target)
                .unwrap_or_else(|_| target.to_string());
            c.shared
                .security()
                .authorize(&c.principal, "indices:data/write/index", &[name])?;
            let src = it.source.clone().unwrap_or(Value::Null);
            write_doc(g, target, it.id.as_deref(), src, create, it.occ, now)
        }
        "update" => {
            let id = it.id.clone().unwrap_or_default();
            let body = update::parse(it.source.as_ref().unwrap_or(&Value::Null))?;
            let name = g
                .resolve_single(target)
                .unwrap_or_else(|_| target.to_string());
            c.shared
                .security()
                .authorize(&c.principal, "indices:data/write/update", &[name])?;
            let t = g.write_target(target, now)?;
            let i = g
                .indices
                .get_mut(&t.concrete)
                .ok_or_else(|| EsError::index_not_found(target))?;
            update::apply(i, &id, &body, it.occ)
        }
        _ => {
            let id = it.id.clone().unwrap_or_default();
            let concrete = g.resolve_single(target)?;
            c.shared.security().authorize(
                &c.principal,
                "indices:data/write/delete",
                std::slice::from_ref(&concrete),
            )?;
            let i = g
                .indices
                .get_mut(&concrete)
                .ok_or_else(|| EsError::index_not_found(target))?;
            i.delete(&id, it.occ)
        }
    }
}

/// `POST /_bulk`.
pub fn bulk(c: &Ctx, default_idx: Option<&str>) -> EsResult<Response> {
    let started = Instant::now();
    let mode = refresh_param(c.param("refresh"))?;
    let items = parse_bulk(&c.req.body, default_idx.or(c.param("index")))?;
    c.authorize("indices:data/write/bulk", &[])?;
    let now = c.now();
    let mut g = c.shared.cluster();
    let mut outcomes: Vec<(usize, Result<WriteResult, EsError>)> = Vec::new();
    for (n, it) in items.iter().enumerate() {
        outcomes.push((n, run_item(c, &mut g, it, now)));
    }
    let mut oks: Vec<&mut WriteResult> = outcomes
        .iter_mut()
        .filter_map(|(_, r)| r.as_mut().ok())
        .collect();
    after_writes(c, g, &mut oks, mode);
    let filter = SourceFilter::from_params(&c.req.query).filter(|f| !f.disabled);
    let mut errors = false;
    let mut rendered = Vec::new();
    for (n, r) in &outcomes {
        let it = &items[*n];
        let v = match r {
            Ok(w) => {
                let mut v = if it.op == "update" {
                    update_json(w, filter.as_ref())
                } else {
                    w.to_json()
                };
                v["status"] = json!(w.status());
                if w.status() >= 300 {
                    errors = true;
                }
                v
            }
            Err(e) => {
                errors = true;
                let index = g_index_name(it, e);
                json!({"_index": index, "_id": it.id, "status": e.status, "error": e.item_body()})
            }
        };
        rendered.push(json!({ it.op.clone(): v }));
    }
    let took = started.elapsed().as_millis() as u64;
    Ok(Response::json(
        200,
        &json!({"errors": errors, "took": took, "items": rendered}),
    ))
}

fn g_index_name(it: &BulkItem, e: &EsError) -> String {
    e.meta
        .iter()
        .find(|(k, _)| k == "index")
        .and_then(|(_, v)| v.as_str().map(String::from))
        .or_else(|| it.index.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_framing_errors() {
        assert!(parse_bulk(b"{\"index\":{}}", None)
            .unwrap_err()
            .reason
            .contains("terminated by a newline"));
        let e = parse_bulk(b"{\"index\":{\"_index\":\"a\"}}\n{}\n{}\n", None).unwrap_err();
        assert_eq!(
            e.reason,
            "Malformed action/metadata line [3], expected FIELD_NAME but found [END_OBJECT]"
        );
        let e = parse_bulk(b"{\"foo\":{}}\n", None).unwrap_err();
        assert!(e
            .reason
            .contains("expected field [create], [delete], [index] or [update] but found [foo]"));
        let items = parse_bulk(b"{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"update\":{\"_id\":\"2\",\"retry_on_conflict\":3}}\n{\"doc\":{}}\n", Some("d")).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].index.as_deref(), Some("d"));
        assert_eq!(refresh_param(Some("")).unwrap(), Refresh::Now);
        assert!(refresh_param(Some("x")).is_err());
    }
}
