//! Search execution over the refreshed snapshot of one or more indices: request parsing (body and
//! URL params), sorting with ES's missing-value rules and sort errors, `size`/`from` with the 10 000
//! window, `_source` filtering, `seq_no_primary_term`, `version`, `fields`, total-hits tracking and
//! the response shape. Aggregations live in `aggs.rs`.

use crate::aggs::{self, Agg};
use crate::cluster::Cluster;
use crate::error::{EsError, EsResult};
use crate::index::{Doc, Index};
use crate::mapping::FieldType;
use crate::query::{field_values, resolve_field, Ctx, FieldValue, Query};
use crate::util;
use serde_json::{json, Map, Value};
use std::cmp::Ordering;
use std::collections::HashMap;

/// `_source` filtering.
#[derive(Debug, Clone, Default)]
pub struct SourceFilter {
    /// `_source: false`.
    pub disabled: bool,
    /// Include patterns (empty = everything).
    pub includes: Vec<String>,
    /// Exclude patterns.
    pub excludes: Vec<String>,
}

impl SourceFilter {
    /// Parses the `_source` body value.
    pub fn parse(v: Option<&Value>) -> SourceFilter {
        let list = |v: Option<&Value>| -> Vec<String> {
            match v {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            }
        };
        match v {
            None | Some(Value::Bool(true)) | Some(Value::Null) => SourceFilter::default(),
            Some(Value::Bool(false)) => SourceFilter {
                disabled: true,
                ..SourceFilter::default()
            },
            Some(Value::Object(o)) => SourceFilter {
                disabled: false,
                includes: list(o.get("includes").or_else(|| o.get("include"))),
                excludes: list(o.get("excludes").or_else(|| o.get("exclude"))),
            },
            other => SourceFilter {
                disabled: false,
                includes: list(other),
                excludes: Vec::new(),
            },
        }
    }

    /// Applies URL params `_source`, `_source_includes`, `_source_excludes`.
    pub fn from_params(p: &HashMap<String, String>) -> Option<SourceFilter> {
        let split = |s: &str| -> Vec<String> {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect()
        };
        let mut f = match p.get("_source").map(String::as_str) {
            None => None,
            Some("false") => Some(SourceFilter {
                disabled: true,
                ..SourceFilter::default()
            }),
            Some("true") | Some("") => Some(SourceFilter::default()),
            Some(list) => Some(SourceFilter {
                includes: split(list),
                ..SourceFilter::default()
            }),
        };
        if let Some(i) = p.get("_source_includes") {
            f.get_or_insert_with(SourceFilter::default).includes = split(i);
        }
        if let Some(e) = p.get("_source_excludes") {
            f.get_or_insert_with(SourceFilter::default).excludes = split(e);
        }
        f
    }

    /// Filters a source document (`None` = `_source` omitted).
    pub fn apply(&self, src: &Value) -> Option<Value> {
        if self.disabled {
            return None;
        }
        if self.includes.is_empty() && self.excludes.is_empty() {
            return Some(src.clone());
        }
        match src {
            Value::Object(m) => Some(Value::Object(filter_map(
                m,
                "",
                &self.includes,
                &self.excludes,
            ))),
            other => Some(other.clone()),
        }
    }
}

fn filter_map(
    m: &Map<String, Value>,
    prefix: &str,
    inc: &[String],
    exc: &[String],
) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in m {
        let path = format!("{prefix}{k}");
        if exc.iter().any(|p| util::glob(p, &path)) {
            continue;
        }
        let full = inc.is_empty() || inc.iter().any(|p| util::glob(p, &path));
        let below = |p: &String| {
            p.starts_with(&format!("{path}."))
                || (p.contains('*') && util::glob(p, &format!("{path}.x")))
        };
        match v {
            Value::Object(c) => {
                if full {
                    out.insert(
                        k.clone(),
                        Value::Object(filter_map(c, &format!("{path}."), &[], exc)),
                    );
                } else if inc.iter().any(below) {
                    let sub = filter_map(c, &format!("{path}."), inc, exc);
                    if !sub.is_empty() {
                        out.insert(k.clone(), Value::Object(sub));
                    }
                }
            }
            Value::Array(a) => {
                let mut items = Vec::new();
                for item in a {
                    match item {
                        Value::Object(c) if full || inc.iter().any(below) => {
                            let inner = if full { &[][..] } else { inc };
                            let sub = filter_map(c, &format!("{path}."), inner, exc);
                            if full || !sub.is_empty() {
                                items.push(Value::Object(sub));
                            }
                        }
                        other if full => items.push(other.clone()),
                        _ => {}
                    }
                }
                if full || !items.is_empty() {
                    out.insert(k.clone(), Value::Array(items));
                }
            }
            other if full => {
                out.insert(k.clone(), other.clone());
            }
            _ => {}
        }
    }
    out
}

/// One sort key.
#[derive(Debug, Clone)]
pub struct SortSpec {
    /// Field, `_score` or `_doc`.
    pub field: String,
    /// Descending.
    pub desc: bool,
    /// `unmapped_type` given.
    pub unmapped_ok: bool,
    /// Missing values first.
    pub missing_first: bool,
}

/// Parses a `sort` value (string, object, or array of them).
pub fn parse_sort(v: Option<&Value>) -> EsResult<Vec<SortSpec>> {
    let items: Vec<Value> = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => vec![other.clone()],
    };
    let mut out = Vec::new();
    for it in items {
        match it {
            Value::String(s) => {
                let (f, d) = match s.split_once(':') {
                    Some((f, o)) => (f.to_string(), o == "desc"),
                    None => (s.clone(), s == "_score"),
                };
                out.push(SortSpec {
                    field: f,
                    desc: d,
                    unmapped_ok: false,
                    missing_first: false,
                });
            }
            Value::Object(m) => {
                for (f, o) in m {
                    let (desc, unmapped_ok, missing_first) = match &o {
                        Value::String(x) => (x == "desc", false, false),
                        Value::Object(oo) => (
                            oo.get("order").and_then(Value::as_str) == Some("desc"),
                            oo.contains_key("unmapped_type"),
                            oo.get("missing").and_then(Value::as_str) == Some("_first"),
                        ),
                        _ => {
                            return Err(EsError::parsing(format!(
                                "[sort] malformed for field [{f}]"
                            )))
                        }
                    };
                    out.push(SortSpec {
                        field: f.clone(),
                        desc,
                        unmapped_ok,
                        missing_first,
                    });
                }
            }
            _ => return Err(EsError::parsing("[sort] malformed")),
        }
    }
    Ok(out)
}

/// A parsed search request.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// Query (match_all when absent).
    pub query: Query,
    /// `size` (default 10).
    pub size: usize,
    /// `from` (default 0).
    pub from: usize,
    /// Sort keys.
    pub sort: Vec<SortSpec>,
    /// `_source` filter.
    pub source: SourceFilter,
    /// `seq_no_primary_term`.
    pub seq_no_primary_term: bool,
    /// `version`.
    pub version: bool,
    /// `track_total_hits`: `None` = false, `Some(n)` = up to n.
    pub track_total: Option<usize>,
    /// `rest_total_hits_as_int`.
    pub total_as_int: bool,
    /// Aggregations.
    pub aggs: Vec<Agg>,
    /// `fields` to return per hit.
    pub fields: Vec<String>,
    /// `script_fields` (name → painless source).
    pub script_fields: Vec<(String, String)>,
}

const BODY_KEYS: &[&str] = &[
    "query",
    "size",
    "from",
    "sort",
    "_source",
    "seq_no_primary_term",
    "version",
    "track_total_hits",
    "aggs",
    "aggregations",
    "fields",
    "script_fields",
    "timeout",
    "stored_fields",
    "docvalue_fields",
    "explain",
    "min_score",
    "terminate_after",
    "track_scores",
    "post_filter",
    "highlight",
    "collapse",
    "search_after",
    "pit",
    "runtime_mappings",
    "indices_boost",
    "profile",
    "stats",
    "ext",
];

fn as_usize(v: Option<&Value>, what: &str) -> EsResult<Option<usize>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|x| usize::try_from(x).ok())
            .map(Some)
            .ok_or_else(|| {
                EsError::illegal_argument(format!(
                    "[{what}] parameter cannot be negative, found [{n}]"
                ))
            }),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
            EsError::illegal_argument(format!("failed to parse [{what}] value [{s}]"))
        }),
        Some(other) => Err(EsError::parsing(format!(
            "[{what}] malformed value [{other}]"
        ))),
    }
}

impl SearchRequest {
    /// Parses a search body plus URL params.
    pub fn parse(body: &Value, p: &HashMap<String, String>) -> EsResult<SearchRequest> {
        let empty = Map::new();
        let b = match body {
            Value::Object(m) => m,
            Value::Null => &empty,
            _ => return Err(EsError::parsing("request body must be an object")),
        };
        for k in b.keys() {
            if !BODY_KEYS.contains(&k.as_str()) {
                return Err(
                    EsError::parsing(format!("Unknown key for a START_OBJECT in [{k}]."))
                        .with("line", 1)
                        .with("col", 1),
                );
            }
        }
        let query = match b.get("query") {
            Some(q) => Query::parse(q)?,
            None => Query::MatchAll,
        };
        let size = match p.get("size") {
            Some(s) => as_usize(Some(&Value::String(s.clone())), "size")?,
            None => as_usize(b.get("size"), "size")?,
        }
        .unwrap_or(10);
        let from = match p.get("from") {
            Some(s) => as_usize(Some(&Value::String(s.clone())), "from")?,
            None => as_usize(b.get("from"), "from")?,
        }
        .unwrap_or(0);
        let mut sort = parse_sort(b.get("sort"))?;
        if let Some(s) = p.get("sort") {
            sort = parse_sort(Some(&Value::Array(
                s.split(',').map(|x| Value::String(x.into())).collect(),
            )))?;
        }
        let source =
            SourceFilter::from_params(p).unwrap_or_else(|| SourceFilter::parse(b.get("_source")));
        let flag = |k: &str| -> bool {
            p.get(k)
                .map(|v| v == "true" || v.is_empty())
                .unwrap_or(false)
                || b.get(k).and_then(Value::as_bool).unwrap_or(false)
        };
        let total_as_int = p
            .get("rest_total_hits_as_int")
            .is_some_and(|v| v == "true" || v.is_empty());
        let track_total = match b.get("track_total_hits").or(None) {
            Some(Value::Bool(true)) => Some(usize::MAX),
            Some(Value::Bool(false)) => None,
            Some(Value::Number(n)) => Some(n.as_u64().unwrap_or(10_000) as usize),
            _ => match p.get("track_total_hits").map(String::as_str) {
                Some("true") => Some(usize::MAX),
                Some("false") => None,
                Some(n) => Some(n.parse().unwrap_or(10_000)),
                None if total_as_int => Some(usize::MAX),
                None => Some(10_000),
            },
        };
        let aggs = match b.get("aggs").or_else(|| b.get("aggregations")) {
            Some(a) => aggs::parse(a)?,
            None => Vec::new(),
        };
        let fields = match b.get("fields") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|f| {
                    f.as_str()
                        .or_else(|| f.get("field").and_then(Value::as_str))
                        .map(String::from)
                })
                .collect(),
            _ => Vec::new(),
        };
        let script_fields = match b.get("script_fields") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| {
                    let src = v
                        .pointer("/script/source")
                        .or_else(|| v.get("script"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    (k.clone(), src.to_string())
                })
                .collect(),
            _ => Vec::new(),
        };
        if from.saturating_add(size) > 10_000 {
            return Err(EsError::all_shards_failed(
                EsError::illegal_argument(format!(
                    "Result window is too large, from + size must be less than or equal to: [10000] but was [{}]. See the scroll api for a more efficient way to request large data sets. This limit can be set by changing the [index.max_result_window] index level setting.",
                    from.saturating_add(size)
                )),
                "",
                "standin-node",
            ));
        }
        Ok(SearchRequest {
            query,
            size,
            from,
            sort,
            source,
            seq_no_primary_term: flag("seq_no_primary_term"),
            version: flag("version"),
            track_total,
            total_as_int,
            aggs,
            fields,
            script_fields,
        })
    }
}

/// A matching document with its score and index.
pub struct Hit<'a> {
    /// The index.
    pub index: &'a Index,
    /// The document.
    pub doc: &'a Doc,
    /// Score.
    pub score: f64,
    /// Sort values.
    pub sort: Vec<Option<FieldValue>>,
}

fn sort_value(doc: &Doc, ctx: &Ctx, s: &SortSpec) -> Option<FieldValue> {
    let vals = field_values(doc, &s.field, ctx);
    let cmp = |a: &&FieldValue, b: &&FieldValue| cmp_values(a, b);
    if s.desc {
        vals.iter().max_by(cmp).cloned()
    } else {
        vals.iter().min_by(cmp).cloned()
    }
}

fn cmp_values(a: &FieldValue, b: &FieldValue) -> Ordering {
    match (a, b) {
        (FieldValue::Num(x), FieldValue::Num(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (FieldValue::Bool(x), FieldValue::Bool(y)) => x.cmp(y),
        (FieldValue::Str(x) | FieldValue::Text(x), FieldValue::Str(y) | FieldValue::Text(y)) => {
            x.cmp(y)
        }
        _ => Ordering::Equal,
    }
}

/// Checks sort fields against the mappings of the searched indices (ES errors on unmapped/text).
pub fn check_sort(indices: &[&Index], sort: &[SortSpec]) -> EsResult<()> {
    for s in sort {
        if s.field.starts_with('_') || s.unmapped_ok {
            continue;
        }
        let mut mapped = false;
        for idx in indices {
            if let Some((f, _, _)) = resolve_field(&idx.mapping, &s.field) {
                mapped = true;
                if f.ty == FieldType::Text || f.ty == FieldType::Binary {
                    let e = EsError::illegal_argument(format!(
                        "Fielddata is disabled on [{}] in [{}]. Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [{}] in order to load field data by uninverting the inverted index. Note that this can use significant memory.",
                        s.field, idx.name, s.field
                    ));
                    return Err(EsError::all_shards_failed(e, &idx.name, "standin-node"));
                }
            }
        }
        if !mapped && !indices.is_empty() {
            let idx = indices[0];
            let e = EsError::new(
                400,
                "query_shard_exception",
                format!("No mapping found for [{}] in order to sort on", s.field),
            )
            .with("index_uuid", idx.uuid.clone())
            .with("index", idx.name.clone());
            return Err(EsError::all_shards_failed(e, &idx.name, "standin-node"));
        }
    }
    Ok(())
}

/// Collects and orders the matching documents of `indices`.
pub fn matching<'a>(
    indices: &[&'a Index],
    query: &Query,
    sort: &[SortSpec],
    now: i64,
) -> Vec<Hit<'a>> {
    let mut hits = Vec::new();
    for idx in indices {
        let ctx = Ctx::new(&idx.mapping, &idx.name, now);
        for doc in idx.searchable() {
            if let Some(score) = query.score(doc, &ctx) {
                let sv = sort.iter().map(|s| sort_value(doc, &ctx, s)).collect();
                hits.push(Hit {
                    index: idx,
                    doc,
                    score,
                    sort: sv,
                });
            }
        }
    }
    if sort.is_empty() {
        hits.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap_or(Ordering::Equal));
    } else {
        hits.sort_by(|a, b| {
            for (i, s) in sort.iter().enumerate() {
                let o = match s.field.as_str() {
                    "_score" => b.score.partial_cmp(&a.score).unwrap_or(Ordering::Equal),
                    "_doc" => Ordering::Equal,
                    _ => match (&a.sort[i], &b.sort[i]) {
                        (Some(x), Some(y)) => {
                            let o = cmp_values(x, y);
                            if s.desc {
                                o.reverse()
                            } else {
                                o
                            }
                        }
                        (Some(_), None) => {
                            if s.missing_first {
                                Ordering::Greater
                            } else {
                                Ordering::Less
                            }
                        }
                        (None, Some(_)) => {
                            if s.missing_first {
                                Ordering::Less
                            } else {
                                Ordering::Greater
                            }
                        }
                        (None, None) => Ordering::Equal,
                    },
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
    }
    hits
}

/// What to include in a rendered hit.
#[derive(Debug, Clone, Copy)]
pub struct RenderOpts<'a> {
    /// `_source` filter.
    pub source: &'a SourceFilter,
    /// Add `_seq_no` / `_primary_term`.
    pub seq_no_primary_term: bool,
    /// Add `_version`.
    pub version: bool,
    /// Sort keys (for `sort` values and `_score` nulling).
    pub sort: &'a [SortSpec],
    /// `fields` to return.
    pub fields: &'a [String],
    /// `script_fields`.
    pub script_fields: &'a [(String, String)],
}

/// Renders one hit.
pub fn render_hit(h: &Hit, o: &RenderOpts, now: i64) -> Value {
    let RenderOpts {
        source: req_source,
        seq_no_primary_term: spt,
        version,
        sort,
        fields,
        script_fields,
    } = *o;
    let mut m = Map::new();
    m.insert("_index".into(), json!(h.index.name));
    m.insert("_id".into(), json!(h.doc.id));
    if version {
        m.insert("_version".into(), json!(h.doc.version));
    }
    if spt {
        m.insert("_seq_no".into(), json!(h.doc.seq_no));
        m.insert("_primary_term".into(), json!(1));
    }
    let scored = sort.is_empty() || sort.iter().any(|s| s.field == "_score");
    m.insert(
        "_score".into(),
        if scored { json!(h.score) } else { Value::Null },
    );
    if let Some(src) = req_source.apply(&h.doc.source) {
        m.insert("_source".into(), src);
    }
    let ctx = Ctx::new(&h.index.mapping, &h.index.name, now);
    let mut fm = Map::new();
    for f in fields {
        let names: Vec<String> = if f.contains('*') {
            h.index
                .mapping
                .fields
                .keys()
                .filter(|k| util::glob(f, k))
                .cloned()
                .collect()
        } else {
            vec![f.clone()]
        };
        for name in names {
            let Some((fmap, _, _)) = resolve_field(&h.index.mapping, &name) else {
                continue;
            };
            let vals: Vec<Value> = field_values(h.doc, &name, &ctx)
                .into_iter()
                .map(|v| match (fmap.ty, v) {
                    (FieldType::Date, FieldValue::Num(n)) => {
                        json!(crate::datemath::format_millis(n as i64))
                    }
                    (_, v) => v.to_json(),
                })
                .collect();
            if !vals.is_empty() {
                fm.insert(name, Value::Array(vals));
            }
        }
    }
    for (name, src) in script_fields {
        if let Some(v) = crate::update::search_script_field(src, &h.doc.source) {
            fm.insert(name.clone(), json!([v]));
        }
    }
    if !fm.is_empty() {
        m.insert("fields".into(), Value::Object(fm));
    }
    if !sort.is_empty() {
        let sv: Vec<Value> = sort
            .iter()
            .zip(&h.sort)
            .map(|(s, v)| match (s.field.as_str(), v) {
                ("_score", _) => json!(h.score),
                ("_doc", _) => json!(h.doc.seq_no),
                (_, Some(v)) => v.to_json(),
                (_, None) => {
                    let numeric =
                        resolve_field(&h.index.mapping, &s.field).is_some_and(|(f, _, _)| {
                            matches!(f.ty, FieldType::Long | FieldType::Double | FieldType::Date)
                        }) || s.field.starts_with('_');
                    if !numeric {
                        Value::Null
                    } else if s.desc == s.missing_first {
                        json!(i64::MAX)
                    } else {
                        json!(i64::MIN)
                    }
                }
            })
            .collect();
        m.insert("sort".into(), Value::Array(sv));
    }
    Value::Object(m)
}

/// Executes a search over already-resolved concrete indices (searchable snapshots).
pub fn execute(
    cluster: &Cluster,
    names: &[String],
    req: &SearchRequest,
    now: i64,
    took: u64,
) -> EsResult<Value> {
    let indices: Vec<&Index> = names
        .iter()
        .filter_map(|n| cluster.indices.get(n))
        .collect();
    check_sort(&indices, &req.sort)?;
    let hits = matching(&indices, &req.query, &req.sort, now);
    let total = hits.len();
    let shards: u32 = indices.iter().map(|i| i.shards()).sum();
    let page: Vec<Value> = hits
        .iter()
        .skip(req.from)
        .take(req.size)
        .map(|h| {
            let o = RenderOpts {
                source: &req.source,
                seq_no_primary_term: req.seq_no_primary_term,
                version: req.version,
                sort: &req.sort,
                fields: &req.fields,
                script_fields: &req.script_fields,
            };
            render_hit(h, &o, now)
        })
        .collect();
    let sorted_by_field = !req.sort.is_empty() && !req.sort.iter().any(|s| s.field == "_score");
    let max_score = if sorted_by_field || hits.is_empty() {
        Value::Null
    } else {
        json!(hits.iter().map(|h| h.score).fold(f64::MIN, f64::max))
    };
    let mut hits_obj = Map::new();
    if req.total_as_int {
        hits_obj.insert("total".into(), json!(total));
    } else if let Some(limit) = req.track_total {
        let (value, rel) = if total > limit {
            (limit, "gte")
        } else {
            (total, "eq")
        };
        hits_obj.insert("total".into(), json!({"value": value, "relation": rel}));
    }
    hits_obj.insert("max_score".into(), max_score);
    hits_obj.insert("hits".into(), Value::Array(page));
    let mut out = json!({
        "took": took,
        "timed_out": false,
        "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0},
        "hits": Value::Object(hits_obj),
    });
    if !req.aggs.is_empty() && !indices.is_empty() {
        out["aggregations"] = aggs::run(&req.aggs, &hits, now)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_filtering() {
        let src = json!({"data":{"outputs":{"a":1},"inputs":[1]},"agents":["x"],"id":"p"});
        let f = SourceFilter::parse(Some(&json!({"includes":["data.outputs"]})));
        assert_eq!(f.apply(&src), Some(json!({"data":{"outputs":{"a":1}}})));
        let f = SourceFilter::parse(Some(&json!({"excludes":["agents"]})));
        assert_eq!(
            f.apply(&src),
            Some(json!({"data":{"outputs":{"a":1},"inputs":[1]},"id":"p"}))
        );
        let f = SourceFilter::parse(Some(&json!(["_seq_no"])));
        assert_eq!(f.apply(&src), Some(json!({})));
        let f = SourceFilter::parse(Some(&json!(false)));
        assert_eq!(f.apply(&src), None);
        let f = SourceFilter::parse(Some(&json!("data.*")));
        assert_eq!(
            f.apply(&src),
            Some(json!({"data":{"outputs":{"a":1},"inputs":[1]}}))
        );
    }

    #[test]
    fn sort_parsing() {
        let s = parse_sort(Some(&json!(["_seq_no", {"revision_idx":"desc"}, {"@timestamp":{"order":"desc","unmapped_type":"date"}}]))).unwrap();
        assert_eq!(s.len(), 3);
        assert!(!s[0].desc && s[1].desc && s[2].unmapped_ok);
    }

    #[test]
    fn request_defaults() {
        let r = SearchRequest::parse(&json!({}), &HashMap::new()).unwrap();
        assert_eq!((r.size, r.from, r.track_total), (10, 0, Some(10_000)));
        assert!(SearchRequest::parse(&json!({"size": 10001}), &HashMap::new()).is_err());
        assert!(SearchRequest::parse(&json!({"bogus": 1}), &HashMap::new()).is_err());
    }
}
