//! The query DSL subset (term, terms, range with date math, exists, ids, match_all, match_none,
//! match, prefix, bool with object-or-array clauses, constant_score), mapping-aware: a field that is
//! not mapped (dynamic:false) or lives under a disabled object matches nothing, as in ES. Also the
//! field-value access shared with sorting and aggregations (`_id`, `_seq_no`, multi-fields with
//! `ignore_above`, dotted paths, arrays).

use crate::datemath;
use crate::error::{EsError, EsResult};
use crate::index::Doc;
use crate::mapping::{values_at, FieldMapping, FieldType, Mapping};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;

/// A parsed query.
#[derive(Debug, Clone)]
pub enum Query {
    /// Everything.
    MatchAll,
    /// Nothing.
    MatchNone,
    /// Exact value.
    Term(String, Value, bool),
    /// Any of the values.
    Terms(String, Vec<Value>),
    /// Range bounds `(gt, gte, lt, lte)`.
    Range(String, [Option<Value>; 4]),
    /// Field has an indexed value.
    Exists(String),
    /// `_id` in list.
    Ids(Vec<String>),
    /// Analyzed match (OR of tokens unless `and`).
    Match(String, String, bool),
    /// Prefix on keyword values.
    Prefix(String, String),
    /// Boolean combination.
    Bool {
        /// Scoring AND clauses.
        must: Vec<Query>,
        /// Non-scoring AND clauses.
        filter: Vec<Query>,
        /// OR clauses.
        should: Vec<Query>,
        /// NOT clauses.
        must_not: Vec<Query>,
        /// Minimum should clauses that must match.
        min_should: usize,
    },
    /// Filter with a constant score.
    ConstantScore(Box<Query>),
}

/// What a query evaluation needs besides the document.
pub struct Ctx<'a> {
    /// Mapping of the index.
    pub mapping: &'a Mapping,
    /// Concrete index name (`_index` field).
    pub index: &'a str,
    /// "now" for date math.
    pub now: i64,
    /// Field resolutions made so far (one lookup per field and search, not per document).
    cache: RefCell<HashMap<String, Option<(FieldMapping, String)>>>,
}

impl<'a> Ctx<'a> {
    /// A context for one index.
    pub fn new(mapping: &'a Mapping, index: &'a str, now: i64) -> Ctx<'a> {
        Ctx {
            mapping,
            index,
            now,
            cache: RefCell::new(HashMap::new()),
        }
    }

    fn resolved(&self, path: &str) -> Option<(FieldMapping, String)> {
        if let Some(r) = self.cache.borrow().get(path) {
            return r.clone();
        }
        let r = resolve_field(self.mapping, path).map(|(f, p, _)| (f.clone(), p));
        self.cache.borrow_mut().insert(path.to_string(), r.clone());
        r
    }
}

fn one_entry<'a>(v: &'a Value, what: &str) -> EsResult<(&'a String, &'a Value)> {
    let Some(m) = v.as_object() else {
        return Err(EsError::parsing(format!(
            "[{what}] query malformed, no start_object after query name"
        )));
    };
    let mut it = m.iter();
    match (it.next(), it.next()) {
        (Some(e), None) => Ok(e),
        (Some((a, _)), Some((b, _))) => Err(EsError::parsing(format!(
            "[{what}] query doesn't support multiple fields, found [{a}] and [{b}]"
        ))),
        _ => Err(EsError::parsing(format!(
            "[{what}] query malformed, no field"
        ))),
    }
}

fn clauses(v: Option<&Value>) -> EsResult<Vec<Query>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(Query::parse).collect(),
        Some(o) => Ok(vec![Query::parse(o)?]),
    }
}

impl Query {
    /// Parses a query object (`{"term":{...}}`).
    pub fn parse(v: &Value) -> EsResult<Query> {
        let (name, body) = match v.as_object() {
            Some(m) if m.len() == 1 => m
                .iter()
                .next()
                .map(|(k, b)| (k.as_str(), b))
                .unwrap_or(("", v)),
            Some(m) if m.is_empty() => return Ok(Query::MatchAll),
            _ => {
                return Err(EsError::parsing(
                    "query malformed, must start with start_object",
                ))
            }
        };
        Ok(match name {
            "match_all" => Query::MatchAll,
            "match_none" => Query::MatchNone,
            "term" => {
                let (f, val) = one_entry(body, "term")?;
                let (val, ci) = match val {
                    Value::Object(o) => (
                        o.get("value").cloned().unwrap_or(Value::Null),
                        o.get("case_insensitive")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                    ),
                    other => (other.clone(), false),
                };
                if val.is_null() {
                    return Err(EsError::illegal_argument("field name is null or empty"));
                }
                Query::Term(f.clone(), val, ci)
            }
            "terms" => {
                let m = body
                    .as_object()
                    .ok_or_else(|| EsError::parsing("[terms] query malformed"))?;
                let mut found = None;
                for (k, val) in m {
                    if k == "boost" || k == "_name" {
                        continue;
                    }
                    let Value::Array(a) = val else {
                        return Err(EsError::parsing(format!(
                            "[terms] query does not support [{k}]"
                        )));
                    };
                    if found.is_some() {
                        return Err(EsError::parsing(
                            "[terms] query does not support multiple fields",
                        ));
                    }
                    found = Some(Query::Terms(k.clone(), a.clone()));
                }
                found.ok_or_else(|| EsError::parsing("[terms] query requires a field"))?
            }
            "range" => {
                let (f, b) = one_entry(body, "range")?;
                let mut bounds: [Option<Value>; 4] = [None, None, None, None];
                if let Some(o) = b.as_object() {
                    for (k, val) in o {
                        let slot = match k.as_str() {
                            "gt" => 0,
                            "gte" | "from" => 1,
                            "lt" => 2,
                            "lte" | "to" => 3,
                            "format" | "time_zone" | "boost" | "relation" => continue,
                            other => {
                                return Err(EsError::parsing(format!(
                                    "[range] query does not support [{other}]"
                                )))
                            }
                        };
                        if !val.is_null() {
                            bounds[slot] = Some(val.clone());
                        }
                    }
                }
                Query::Range(f.clone(), bounds)
            }
            "exists" => {
                let f = body
                    .get("field")
                    .and_then(Value::as_str)
                    .ok_or_else(|| EsError::parsing("[exists] must be provided with a [field]"))?;
                Query::Exists(f.to_string())
            }
            "ids" => {
                let vals = body
                    .get("values")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                Query::Ids(vals.iter().map(scalar_string).collect())
            }
            "match" | "match_phrase" => {
                let (f, b) = one_entry(body, name)?;
                let (q, and) = match b {
                    Value::Object(o) => (
                        o.get("query").map(scalar_string).unwrap_or_default(),
                        o.get("operator")
                            .and_then(Value::as_str)
                            .map(|s| s.eq_ignore_ascii_case("and"))
                            == Some(true)
                            || name == "match_phrase",
                    ),
                    other => (scalar_string(other), name == "match_phrase"),
                };
                Query::Match(f.clone(), q, and)
            }
            "prefix" => {
                let (f, b) = one_entry(body, "prefix")?;
                let p = match b {
                    Value::Object(o) => o.get("value").map(scalar_string).unwrap_or_default(),
                    other => scalar_string(other),
                };
                Query::Prefix(f.clone(), p)
            }
            "bool" => {
                let m = body.as_object().cloned().unwrap_or_else(Map::new);
                for k in m.keys() {
                    if ![
                        "must",
                        "filter",
                        "should",
                        "must_not",
                        "minimum_should_match",
                        "boost",
                        "_name",
                    ]
                    .contains(&k.as_str())
                    {
                        return Err(EsError::parsing(format!(
                            "[bool] query does not support [{k}]"
                        )));
                    }
                }
                let must = clauses(m.get("must"))?;
                let filter = clauses(m.get("filter"))?;
                let should = clauses(m.get("should"))?;
                let must_not = clauses(m.get("must_not"))?;
                let min_should = match m.get("minimum_should_match") {
                    Some(v) => scalar_string(v).parse().unwrap_or(1),
                    None if must.is_empty() && filter.is_empty() && !should.is_empty() => 1,
                    None => 0,
                };
                Query::Bool {
                    must,
                    filter,
                    should,
                    must_not,
                    min_should,
                }
            }
            "constant_score" => {
                let f = body.get("filter").ok_or_else(|| {
                    EsError::parsing("[constant_score] requires a 'filter' element")
                })?;
                Query::ConstantScore(Box::new(Query::parse(f)?))
            }
            other => {
                return Err(EsError::parsing(format!("unknown query [{other}]"))
                    .with("line", 1)
                    .with("col", 1))
            }
        })
    }

    /// Score of a matching document, `None` when it does not match. Filters score 0, scoring
    /// clauses 1 each (ES's BM25 is not modelled).
    pub fn score(&self, doc: &Doc, ctx: &Ctx) -> Option<f64> {
        match self {
            Query::MatchAll => Some(1.0),
            Query::MatchNone => None,
            Query::ConstantScore(q) => q.score(doc, ctx).map(|_| 1.0),
            Query::Bool {
                must,
                filter,
                should,
                must_not,
                min_should,
            } => {
                let mut score = 0.0;
                for q in must {
                    score += q.score(doc, ctx)?;
                }
                for q in filter {
                    q.score(doc, ctx)?;
                }
                for q in must_not {
                    if q.score(doc, ctx).is_some() {
                        return None;
                    }
                }
                let mut hits = 0;
                for q in should {
                    if let Some(s) = q.score(doc, ctx) {
                        hits += 1;
                        score += s;
                    }
                }
                if hits < *min_should {
                    return None;
                }
                if must.is_empty() && should.is_empty() && filter.is_empty() {
                    return Some(1.0);
                }
                Some(score)
            }
            _ => self.leaf_matches(doc, ctx).then_some(1.0),
        }
    }

    fn leaf_matches(&self, doc: &Doc, ctx: &Ctx) -> bool {
        match self {
            Query::Ids(ids) => ids.iter().any(|i| i == &doc.id),
            Query::Term(f, v, ci) => {
                let vals = field_values(doc, f, ctx);
                vals.iter().any(|dv| term_eq(dv, v, *ci, ctx.now))
            }
            Query::Terms(f, list) => {
                let vals = field_values(doc, f, ctx);
                vals.iter()
                    .any(|dv| list.iter().any(|v| term_eq(dv, v, false, ctx.now)))
            }
            Query::Range(f, b) => {
                let vals = field_values(doc, f, ctx);
                vals.iter().any(|dv| in_range(dv, b, ctx.now))
            }
            Query::Exists(f) => {
                if !field_values(doc, f, ctx).is_empty() {
                    return true;
                }
                // object path: any mapped leaf below it
                let prefix = format!("{f}.");
                ctx.mapping
                    .fields
                    .keys()
                    .filter(|k| k.starts_with(&prefix))
                    .any(|k| !field_values(doc, k, ctx).is_empty())
            }
            Query::Match(f, q, and) => {
                let vals = field_values(doc, f, ctx);
                let qtokens: Vec<String> = match vals.first() {
                    Some(FieldValue::Text(_)) => analyze(q),
                    _ => vec![q.clone()],
                };
                if qtokens.is_empty() {
                    return false;
                }
                let hit = |t: &String| {
                    vals.iter()
                        .any(|dv| term_eq(dv, &Value::String(t.clone()), false, ctx.now))
                };
                if *and {
                    qtokens.iter().all(hit)
                } else {
                    qtokens.iter().any(hit)
                }
            }
            Query::Prefix(f, p) => field_values(doc, f, ctx).iter().any(|dv| match dv {
                FieldValue::Str(s) | FieldValue::Text(s) => s.starts_with(p.as_str()),
                _ => false,
            }),
            _ => false,
        }
    }
}

/// A value as a field indexes it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// Keyword / ip / `_id` / `_index`.
    Str(String),
    /// One token of an analyzed text field.
    Text(String),
    /// Numbers and dates (ms).
    Num(f64),
    /// Booleans.
    Bool(bool),
}

impl FieldValue {
    /// JSON form used in `sort` arrays and aggregation keys.
    pub fn to_json(&self) -> Value {
        match self {
            FieldValue::Str(s) | FieldValue::Text(s) => Value::String(s.clone()),
            FieldValue::Num(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Value::from(*n as i64),
            FieldValue::Num(n) => Value::from(*n),
            FieldValue::Bool(b) => Value::Bool(*b),
        }
    }
}

/// Lowercase alphanumeric tokens (approximation of the standard analyzer).
pub fn analyze(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The mapping of a field path plus the source path its values come from (multi-fields read
/// their parent).
pub fn resolve_field<'a>(
    mapping: &'a Mapping,
    path: &str,
) -> Option<(&'a FieldMapping, String, bool)> {
    let f = mapping.lookup(path)?;
    if let Some(pos) = path.rfind('.') {
        let parent = &path[..pos];
        if mapping.lookup(parent).is_some() {
            return Some((f, parent.to_string(), true));
        }
    }
    Some((f, path.to_string(), false))
}

/// The indexed values of a field in a document (empty when unmapped or not indexed).
pub fn field_values(doc: &Doc, path: &str, ctx: &Ctx) -> Vec<FieldValue> {
    match path {
        "_id" => return vec![FieldValue::Str(doc.id.clone())],
        "_seq_no" => return vec![FieldValue::Num(doc.seq_no as f64)],
        "_version" => return vec![FieldValue::Num(doc.version as f64)],
        "_index" => return vec![FieldValue::Str(ctx.index.to_string())],
        "_primary_term" => return vec![FieldValue::Num(1.0)],
        _ => {}
    }
    let Some((f, src_path)) = ctx.resolved(path) else {
        return Vec::new();
    };
    if !f.searchable() {
        return Vec::new();
    }
    let mut raw = Vec::new();
    values_at(&doc.source, &src_path, &mut raw);
    let mut out = Vec::new();
    for v in raw {
        if v.is_null() {
            continue;
        }
        match f.ty {
            FieldType::Keyword | FieldType::Ip => {
                let s = scalar_string(v);
                if f.ignore_above.is_none_or(|ia| s.chars().count() <= ia) && !v.is_object() {
                    out.push(FieldValue::Str(s));
                }
            }
            FieldType::Text => {
                for t in analyze(&scalar_string(v)) {
                    out.push(FieldValue::Text(t));
                }
            }
            FieldType::Long | FieldType::Double => {
                let n = match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                };
                if let Some(n) = n {
                    out.push(FieldValue::Num(if f.ty == FieldType::Long {
                        n.trunc()
                    } else {
                        n
                    }));
                }
            }
            FieldType::Date => {
                if let Some(ms) = datemath::parse_date_value(v) {
                    out.push(FieldValue::Num(ms as f64));
                }
            }
            FieldType::Boolean => match v {
                Value::Bool(b) => out.push(FieldValue::Bool(*b)),
                Value::String(s) if s == "true" => out.push(FieldValue::Bool(true)),
                Value::String(s) if s == "false" || s.is_empty() => {
                    out.push(FieldValue::Bool(false))
                }
                _ => {}
            },
            FieldType::Binary => {}
        }
    }
    out
}

/// Whether the field at `path` has a date type (query values are date math then).
fn query_num(dv: &FieldValue, v: &Value, now: i64, round_up: bool) -> Option<f64> {
    let _ = dv;
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .or_else(|| datemath::eval(s, now, round_up).map(|ms| ms as f64)),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn term_eq(dv: &FieldValue, v: &Value, ci: bool, now: i64) -> bool {
    match dv {
        FieldValue::Str(s) | FieldValue::Text(s) => match v {
            Value::String(q) if !ci => s == q,
            _ => {
                let q = scalar_string(v);
                if ci {
                    s.eq_ignore_ascii_case(&q)
                } else {
                    *s == q
                }
            }
        },
        FieldValue::Num(n) => query_num(dv, v, now, false).is_some_and(|q| q == *n),
        FieldValue::Bool(b) => match v {
            Value::Bool(q) => q == b,
            Value::String(s) => (s == "true" && *b) || (s == "false" && !*b),
            _ => false,
        },
    }
}

fn in_range(dv: &FieldValue, b: &[Option<Value>; 4], now: i64) -> bool {
    let ok = |i: usize, round_up: bool, cmp: &dyn Fn(std::cmp::Ordering) -> bool| -> bool {
        let Some(bound) = &b[i] else { return true };
        match dv {
            FieldValue::Num(n) => match query_num(dv, bound, now, round_up) {
                Some(q) => n.partial_cmp(&q).is_some_and(cmp),
                None => false,
            },
            FieldValue::Str(s) | FieldValue::Text(s) => {
                cmp(s.as_str().cmp(scalar_string(bound).as_str()))
            }
            FieldValue::Bool(_) => false,
        }
    };
    use std::cmp::Ordering::*;
    ok(0, true, &|o| o == Greater)
        && ok(1, false, &|o| o != Less)
        && ok(2, false, &|o| o == Less)
        && ok(3, true, &|o| o != Greater)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(src: Value) -> Doc {
        Doc {
            id: "A1".into(),
            source: src,
            seq_no: 7,
            version: 1,
            shard: 0,
        }
    }

    fn m() -> Mapping {
        Mapping::from_compact(
            false,
            &[
                "agents keyword",
                "expiration date",
                "active boolean",
                "revision_idx integer",
                "data object disabled",
                "msg text",
                "msg.keyword keyword ignore_above=5",
            ],
        )
    }

    fn hit(q: Value, d: &Doc) -> bool {
        let mapping = m();
        let ctx = Ctx::new(
            &mapping,
            "i",
            datemath::parse_iso("2026-01-01T00:00:00Z").unwrap(),
        );
        Query::parse(&q).unwrap().score(d, &ctx).is_some()
    }

    #[test]
    fn fleet_pending_actions_query() {
        let d = doc(json!({"agents":["a","b"],"expiration":"2026-02-01T00:00:00Z"}));
        let q = json!({"bool":{"filter":[{"range":{"_seq_no":{"gt":5}}},{"range":{"_seq_no":{"lte":7}}},
            {"range":{"expiration":{"gt":"2026-01-01T00:00:00Z"}}},{"terms":{"agents":["b"]}}]}});
        assert!(hit(q, &d));
        assert!(!hit(json!({"range":{"_seq_no":{"gt":7}}}), &d));
        assert!(hit(json!({"range":{"expiration":{"gt":"now+30d"}}}), &d));
        assert!(!hit(json!({"range":{"expiration":{"gt":"now+31d"}}}), &d));
    }

    #[test]
    fn unmapped_and_disabled_fields_match_nothing() {
        let d = doc(json!({"policy_id":"p","data":{"x":1},"unmapped":"u"}));
        assert!(!hit(json!({"term":{"unmapped":"u"}}), &d));
        assert!(!hit(json!({"exists":{"field":"data.x"}}), &d));
        assert!(!hit(json!({"exists":{"field":"unmapped"}}), &d));
        assert!(hit(
            json!({"bool":{"must_not":{"exists":{"field":"unmapped"}}}}),
            &d
        ));
    }

    #[test]
    fn typed_terms() {
        let d = doc(json!({"active":true,"revision_idx":"3","msg":"Hello World","agents":"x"}));
        assert!(hit(json!({"term":{"active":true}}), &d));
        assert!(hit(json!({"term":{"active":"true"}}), &d));
        assert!(hit(json!({"term":{"revision_idx":3}}), &d));
        assert!(hit(json!({"term":{"msg":"hello"}}), &d));
        assert!(!hit(json!({"term":{"msg":"Hello"}}), &d));
        assert!(
            !hit(json!({"term":{"msg.keyword":"Hello World"}}), &d),
            "ignore_above"
        );
        assert!(hit(json!({"match":{"msg":"WORLD other"}}), &d));
        assert!(hit(json!({"term":{"_id":"A1"}}), &d));
        assert!(hit(json!({"ids":{"values":["A1"]}}), &d));
        assert!(hit(json!({"exists":{"field":"_seq_no"}}), &d));
        assert!(hit(json!({}), &d));
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            Query::parse(&json!({"nope":{}})).unwrap_err().kind,
            "parsing_exception"
        );
        assert!(Query::parse(&json!({"term":{"a":1,"b":2}})).is_err());
    }
}
