//! Partial updates as ES's `UpdateHelper` does them: `doc` deep merge (objects merged, arrays and
//! scalars replaced, explicit `null` kept) with `detect_noop`, `doc_as_upsert`, `upsert`,
//! `scripted_upsert`, scripts (Painless subset executed by `painless.rs`, `ctx.op` = `noop` /
//! `delete`), `if_seq_no`/`if_primary_term`, and the body validation errors. Also the S9 search
//! script field.

use crate::error::{EsError, EsResult};
use crate::index::{Index, Occ, WriteResult};
use crate::painless;
use base64::Engine;
use serde_json::{Map, Value};

/// A parsed update request body.
#[derive(Debug, Clone)]
pub struct UpdateBody {
    doc: Option<Value>,
    upsert: Option<Value>,
    doc_as_upsert: bool,
    scripted_upsert: bool,
    detect_noop: bool,
    script: Option<(painless::Script, Value)>,
    /// `_source` to return in `get`.
    pub source: Option<Value>,
}

const KEYS: &[&str] = &[
    "doc",
    "upsert",
    "doc_as_upsert",
    "scripted_upsert",
    "detect_noop",
    "script",
    "_source",
    "lang",
];

/// Parses and validates an update body (script compile errors surface here).
pub fn parse(body: &Value) -> EsResult<UpdateBody> {
    let Some(m) = body.as_object() else {
        return Err(EsError::new(
            400,
            "x_content_parse_exception",
            "[1:1] [UpdateRequest] failed to parse object",
        ));
    };
    for k in m.keys() {
        if !KEYS.contains(&k.as_str()) {
            return Err(EsError::new(
                400,
                "x_content_parse_exception",
                format!("[1:2] [UpdateRequest] unknown field [{k}]"),
            ));
        }
    }
    let flag = |k: &str, d: bool| m.get(k).and_then(Value::as_bool).unwrap_or(d);
    let script = match m.get("script") {
        None => None,
        Some(s) => Some(parse_script(s)?),
    };
    let doc = m.get("doc").cloned();
    let mut errs = Vec::new();
    if script.is_none() && doc.is_none() {
        errs.push("script or doc is missing".to_string());
    }
    if script.is_some() && doc.is_some() {
        errs.push("can't provide both script and doc".to_string());
    }
    if flag("doc_as_upsert", false) && script.is_some() {
        errs.push("doc must be specified if doc_as_upsert is enabled".to_string());
    }
    if !errs.is_empty() {
        return Err(EsError::validation(&errs));
    }
    Ok(UpdateBody {
        doc,
        upsert: m.get("upsert").cloned(),
        doc_as_upsert: flag("doc_as_upsert", false),
        scripted_upsert: flag("scripted_upsert", false),
        detect_noop: flag("detect_noop", true),
        script,
        source: m.get("_source").cloned(),
    })
}

fn parse_script(s: &Value) -> EsResult<(painless::Script, Value)> {
    let (source, lang, params, id) = match s {
        Value::String(src) => (
            src.clone(),
            "painless".to_string(),
            Value::Object(Map::new()),
            None,
        ),
        Value::Object(o) => (
            o.get("source")
                .or_else(|| o.get("inline"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            o.get("lang")
                .and_then(Value::as_str)
                .unwrap_or("painless")
                .to_string(),
            o.get("params")
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new())),
            o.get("id").and_then(Value::as_str).map(String::from),
        ),
        _ => {
            return Err(EsError::new(
                400,
                "x_content_parse_exception",
                "[1:11] [script] failed to parse field [script]",
            ))
        }
    };
    if let Some(id) = id {
        return Err(EsError::resource_not_found(format!(
            "unable to find script [{id}] in cluster state"
        )));
    }
    if lang != "painless" {
        return Err(EsError::illegal_argument(format!(
            "script_lang not supported [{lang}]"
        )));
    }
    match painless::compile(&source) {
        Ok(c) => Ok((c, params)),
        Err(e) => Err(painless::compile_error(&source, &e)),
    }
}

/// Deep-merges `changes` into `target`; returns whether anything changed.
pub fn merge(target: &mut Map<String, Value>, changes: &Map<String, Value>) -> bool {
    let mut modified = false;
    for (k, v) in changes {
        match (target.get_mut(k), v) {
            (Some(Value::Object(old)), Value::Object(new)) => {
                modified |= merge(old, new);
            }
            (Some(old), new) => {
                if old != new {
                    *old = new.clone();
                    modified = true;
                }
            }
            (None, new) => {
                target.insert(k.clone(), new.clone());
                modified = true;
            }
        }
    }
    modified
}

/// Applies an update to `id` in `index`.
pub fn apply(index: &mut Index, id: &str, body: &UpdateBody, occ: Occ) -> EsResult<WriteResult> {
    let cur = index.get(id);
    let Some(cur) = cur else {
        let (src, create) =
            if let Some((script, params)) = body.script.as_ref().filter(|_| body.scripted_upsert) {
                let up = body
                    .upsert
                    .clone()
                    .unwrap_or_else(|| Value::Object(Map::new()));
                let out = painless::run(script, up, id, &index.name, "create", params)
                    .map_err(|e| painless::runtime_error(&script.source, &e))?;
                if out.op == "none" || out.op == "noop" {
                    return Ok(WriteResult {
                        result: "noop",
                        ..index_noop_missing(index, id)
                    });
                }
                (out.source, true)
            } else if let Some(up) = &body.upsert {
                (up.clone(), true)
            } else if body.doc_as_upsert {
                (body.doc.clone().unwrap_or(Value::Null), true)
            } else {
                return Err(EsError::document_missing(id, &index.name, &index.uuid));
            };
        let mut r = index.put(id, src.clone(), create, Occ::default())?;
        r.source = Some(src);
        return Ok(r);
    };
    if let (Some(s), Some(t)) = (occ.if_seq_no, occ.if_primary_term) {
        if cur.seq_no != s || t != 1 {
            return Err(EsError::version_conflict(
                id,
                &format!(
                    "required seqNo [{s}], primary term [{t}]. current document has seqNo [{}] and primary term [1]",
                    cur.seq_no
                ),
                &index.name,
                &index.uuid,
            ));
        }
    }
    if let Some(doc) = &body.doc {
        let Value::Object(changes) = doc else {
            return Err(EsError::new(
                400,
                "x_content_parse_exception",
                "[1:9] [UpdateRequest] failed to parse field [doc]",
            ));
        };
        let mut merged = match &cur.source {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        let modified = merge(&mut merged, changes);
        if !modified && body.detect_noop {
            let mut r = index.noop(&cur);
            r.source = Some(cur.source.clone());
            return Ok(r);
        }
        let src = Value::Object(merged);
        index.mapping.check(&src, id)?;
        index.mapping.map_dynamic(&src);
        let mut r = index.store(id, src.clone(), cur.version + 1, "updated");
        r.source = Some(src);
        return Ok(r);
    }
    let Some((script, params)) = &body.script else {
        return Err(EsError::validation(&[
            "script or doc is missing".to_string()
        ]));
    };
    let out = painless::run(script, cur.source.clone(), id, &index.name, "index", params)
        .map_err(|e| painless::runtime_error(&script.source, &e))?;
    match out.op.as_str() {
        "noop" | "none" => {
            let mut r = index.noop(&cur);
            r.source = Some(cur.source.clone());
            Ok(r)
        }
        "delete" => index.delete(id, Occ::default()),
        "index" | "create" => {
            index.mapping.check(&out.source, id)?;
            index.mapping.map_dynamic(&out.source);
            let mut r = index.store(id, out.source.clone(), cur.version + 1, "updated");
            r.source = Some(out.source);
            Ok(r)
        }
        other => Err(EsError::illegal_argument(format!(
            "Operation type [{other}] not allowed, only [noop, index, delete] are allowed"
        ))),
    }
}

fn index_noop_missing(index: &Index, id: &str) -> WriteResult {
    WriteResult {
        index: index.name.clone(),
        id: id.to_string(),
        version: -1,
        result: "noop",
        seq_no: -2,
        shards_total: 0,
        shard: 0,
        forced_refresh: false,
        source: None,
    }
}

/// `script_fields` in searches: only Fleet's S9 (`params._source.data.length`, the decoded byte
/// length of a binary `data` field) is supported.
pub fn search_script_field(source_text: &str, doc: &Value) -> Option<Value> {
    let norm: String = source_text.chars().filter(|c| !c.is_whitespace()).collect();
    if norm.trim_end_matches(';') != "params._source.data.length" {
        return None;
    }
    let data = doc.get("data")?.as_str()?;
    let n = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map(|b| b.len())
        .unwrap_or(data.len());
    Some(Value::from(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Settings;
    use crate::mapping::Mapping;
    use serde_json::json;

    fn idx() -> Index {
        Index::new(
            "t",
            Mapping::dynamic(),
            Settings {
                shards: 1,
                replicas: 0,
                refresh_interval: None,
                hidden: false,
            },
            0,
        )
    }

    #[test]
    fn doc_merge_noop_and_upserts() {
        let mut i = idx();
        let b = parse(&json!({"doc":{"a":{"b":1},"l":[1]},"doc_as_upsert":true})).unwrap();
        let r = apply(&mut i, "1", &b, Occ::default()).unwrap();
        assert_eq!((r.result, r.version), ("created", 1));
        let r = apply(&mut i, "1", &b, Occ::default()).unwrap();
        assert_eq!((r.result, r.version, r.seq_no), ("noop", 1, 0));
        let b = parse(&json!({"doc":{"a":{"c":null},"l":[2]}})).unwrap();
        let r = apply(&mut i, "1", &b, Occ::default()).unwrap();
        assert_eq!(r.result, "updated");
        assert_eq!(
            i.get("1").unwrap().source,
            json!({"a":{"b":1,"c":null},"l":[2]})
        );
        let b = parse(&json!({"doc":{"x":1}})).unwrap();
        assert_eq!(
            apply(&mut i, "2", &b, Occ::default()).unwrap_err().kind,
            "document_missing_exception"
        );
    }

    #[test]
    fn scripts_and_validation() {
        let mut i = idx();
        i.put("1", json!({"policy_id":"p"}), false, Occ::default())
            .unwrap();
        let b = parse(&json!({"script":{"lang":"painless","source":"if (ctx._source.policy_id == params.id) {ctx._source.policy_revision_idx = params.rev;} else {ctx.op = \"noop\";}","params":{"id":"x","rev":2}}})).unwrap();
        assert_eq!(
            apply(&mut i, "1", &b, Occ::default()).unwrap().result,
            "noop"
        );
        let b = parse(&json!({"script":"ctx._source.agent = [:]; ctx._source.agent.id = ctx._id"}))
            .unwrap();
        assert_eq!(
            apply(&mut i, "1", &b, Occ::default()).unwrap().result,
            "updated"
        );
        assert_eq!(i.get("1").unwrap().source["agent"]["id"], "1");
        let e = parse(&json!({"script":{"source":"this is not painless ?"}})).unwrap_err();
        assert_eq!(
            (e.kind.as_str(), e.reason.as_str()),
            ("script_exception", "compile error")
        );
        assert_eq!(
            parse(&json!({})).unwrap_err().reason,
            "Validation Failed: 1: script or doc is missing;"
        );
        assert_eq!(
            parse(&json!({"bogus":1})).unwrap_err().kind,
            "x_content_parse_exception"
        );
        let b = parse(&json!({"script":"ctx.op = 'delete'"})).unwrap();
        assert_eq!(
            apply(&mut i, "1", &b, Occ::default()).unwrap().result,
            "deleted"
        );
    }

    #[test]
    fn s9() {
        assert_eq!(
            search_script_field("params._source.data.length", &json!({"data":"AAEC"})),
            Some(json!(3))
        );
        assert_eq!(search_script_field("other", &json!({})), None);
    }
}
