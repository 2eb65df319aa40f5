//! Aggregations Fleet Server uses (a `terms` bucket aggregation with a `top_hits` sub-aggregation,
//! es-contract.md §3.8 Q6) plus the simple metrics `max`, `min`, `value_count` and `cardinality`.
//! Buckets are ordered by `doc_count` desc then key asc; keys of unmapped fields give no buckets.

use crate::error::{EsError, EsResult};
use crate::mapping::FieldType;
use crate::query::{field_values, resolve_field, Ctx, FieldValue};
use crate::search::{parse_sort, render_hit, Hit, RenderOpts, SortSpec, SourceFilter};
use serde_json::{json, Map, Value};
use std::cmp::Ordering;

/// One aggregation.
#[derive(Debug, Clone)]
pub struct Agg {
    /// Name in the response.
    pub name: String,
    /// Kind and parameters.
    pub kind: AggKind,
    /// Sub-aggregations.
    pub subs: Vec<Agg>,
}

/// Aggregation kinds.
#[derive(Debug, Clone)]
pub enum AggKind {
    /// `terms` on a field.
    Terms {
        /// Field.
        field: String,
        /// Number of buckets.
        size: usize,
        /// Minimum doc count.
        min_doc_count: usize,
    },
    /// `top_hits`.
    TopHits {
        /// Hits per bucket.
        size: usize,
        /// Sort.
        sort: Vec<SortSpec>,
        /// `_source` filter.
        source: SourceFilter,
    },
    /// `max`/`min`/`value_count`/`cardinality` on a field.
    Metric(String, String),
}

/// Parses an `aggs` object.
pub fn parse(v: &Value) -> EsResult<Vec<Agg>> {
    let Some(m) = v.as_object() else {
        return Err(EsError::parsing("Aggregation definition must be an object"));
    };
    let mut out = Vec::new();
    for (name, def) in m {
        let Some(d) = def.as_object() else {
            return Err(EsError::parsing(format!(
                "Aggregation [{name}] must be an object"
            )));
        };
        let mut kind = None;
        let mut subs = Vec::new();
        for (k, body) in d {
            match k.as_str() {
                "aggs" | "aggregations" => subs = parse(body)?,
                "meta" => {}
                "terms" => {
                    let field = body
                        .get("field")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    kind = Some(AggKind::Terms {
                        field,
                        size: body.get("size").and_then(Value::as_u64).unwrap_or(10) as usize,
                        min_doc_count: body
                            .get("min_doc_count")
                            .and_then(Value::as_u64)
                            .unwrap_or(1) as usize,
                    });
                }
                "top_hits" => {
                    kind = Some(AggKind::TopHits {
                        size: body.get("size").and_then(Value::as_u64).unwrap_or(3) as usize,
                        sort: parse_sort(body.get("sort"))?,
                        source: SourceFilter::parse(body.get("_source")),
                    });
                }
                "max" | "min" | "value_count" | "cardinality" => {
                    let field = body
                        .get("field")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    kind = Some(AggKind::Metric(k.clone(), field));
                }
                other => {
                    return Err(EsError::parsing(format!(
                        "Unknown aggregation type [{other}] did you mean [terms]?"
                    )))
                }
            }
        }
        let kind = kind.ok_or_else(|| {
            EsError::parsing(format!("Missing definition for aggregation [{name}]"))
        })?;
        out.push(Agg {
            name: name.clone(),
            kind,
            subs,
        });
    }
    Ok(out)
}

fn key_json(v: &FieldValue, ty: Option<FieldType>) -> (Value, Option<Value>) {
    match (v, ty) {
        (FieldValue::Bool(b), _) => (json!(if *b { 1 } else { 0 }), Some(json!(b.to_string()))),
        (FieldValue::Num(n), Some(FieldType::Date)) => (
            json!(*n as i64),
            Some(json!(crate::datemath::format_millis(*n as i64))),
        ),
        (other, _) => (other.to_json(), None),
    }
}

fn cmp_key(a: &FieldValue, b: &FieldValue) -> Ordering {
    match (a, b) {
        (FieldValue::Num(x), FieldValue::Num(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (FieldValue::Bool(x), FieldValue::Bool(y)) => x.cmp(y),
        (FieldValue::Str(x) | FieldValue::Text(x), FieldValue::Str(y) | FieldValue::Text(y)) => {
            x.cmp(y)
        }
        _ => Ordering::Equal,
    }
}

/// Runs aggregations over the matching hits.
pub fn run(aggs: &[Agg], hits: &[Hit], now: i64) -> EsResult<Value> {
    let mut out = Map::new();
    for a in aggs {
        out.insert(a.name.clone(), run_one(a, hits, now)?);
    }
    Ok(Value::Object(out))
}

fn values_of(h: &Hit, field: &str, now: i64) -> Vec<FieldValue> {
    let ctx = Ctx::new(&h.index.mapping, &h.index.name, now);
    let mut v = field_values(h.doc, field, &ctx);
    v.dedup();
    v
}

fn run_one(a: &Agg, hits: &[Hit], now: i64) -> EsResult<Value> {
    match &a.kind {
        AggKind::Terms {
            field,
            size,
            min_doc_count,
        } => {
            let ty = hits
                .first()
                .and_then(|h| resolve_field(&h.index.mapping, field))
                .map(|(f, _, _)| f.ty);
            if ty == Some(FieldType::Text) {
                return Err(EsError::illegal_argument(format!(
                    "Fielddata is disabled on [{field}]. Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead."
                )));
            }
            let mut buckets: Vec<(FieldValue, Vec<usize>)> = Vec::new();
            for (i, h) in hits.iter().enumerate() {
                for v in values_of(h, field, now) {
                    match buckets.iter_mut().find(|(k, _)| *k == v) {
                        Some((_, docs)) => docs.push(i),
                        None => buckets.push((v, vec![i])),
                    }
                }
            }
            buckets.retain(|(_, d)| d.len() >= *min_doc_count);
            buckets.sort_by(|(ka, da), (kb, db)| {
                db.len().cmp(&da.len()).then_with(|| cmp_key(ka, kb))
            });
            let other: usize = buckets.iter().skip(*size).map(|(_, d)| d.len()).sum();
            let mut rendered = Vec::new();
            for (k, docs) in buckets.iter().take(*size) {
                let (key, key_str) = key_json(k, ty);
                let mut b = Map::new();
                b.insert("key".into(), key);
                if let Some(s) = key_str {
                    b.insert("key_as_string".into(), s);
                }
                b.insert("doc_count".into(), json!(docs.len()));
                let sub_hits: Vec<Hit> = docs
                    .iter()
                    .map(|&i| Hit {
                        index: hits[i].index,
                        doc: hits[i].doc,
                        score: hits[i].score,
                        sort: Vec::new(),
                    })
                    .collect();
                for s in &a.subs {
                    b.insert(s.name.clone(), run_one(s, &sub_hits, now)?);
                }
                rendered.push(Value::Object(b));
            }
            Ok(
                json!({"doc_count_error_upper_bound": 0, "sum_other_doc_count": other, "buckets": rendered}),
            )
        }
        AggKind::TopHits { size, sort, source } => {
            let mut items: Vec<Hit> = hits
                .iter()
                .map(|h| {
                    let ctx = Ctx::new(&h.index.mapping, &h.index.name, now);
                    let sv = sort
                        .iter()
                        .map(|s| {
                            let vals = field_values(h.doc, &s.field, &ctx);
                            if s.desc {
                                vals.into_iter().max_by(cmp_key)
                            } else {
                                vals.into_iter().min_by(cmp_key)
                            }
                        })
                        .collect();
                    Hit {
                        index: h.index,
                        doc: h.doc,
                        score: h.score,
                        sort: sv,
                    }
                })
                .collect();
            if !sort.is_empty() {
                items.sort_by(|x, y| {
                    for (i, s) in sort.iter().enumerate() {
                        let o = match (&x.sort[i], &y.sort[i]) {
                            (Some(p), Some(q)) => {
                                let o = cmp_key(p, q);
                                if s.desc {
                                    o.reverse()
                                } else {
                                    o
                                }
                            }
                            (Some(_), None) => Ordering::Less,
                            (None, Some(_)) => Ordering::Greater,
                            (None, None) => Ordering::Equal,
                        };
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    Ordering::Equal
                });
            }
            let rendered: Vec<Value> = items
                .iter()
                .take(*size)
                .map(|h| {
                    let o = RenderOpts {
                        source,
                        seq_no_primary_term: false,
                        version: false,
                        sort,
                        fields: &[],
                        script_fields: &[],
                    };
                    render_hit(h, &o, now)
                })
                .collect();
            let max_score = if sort.is_empty() && !items.is_empty() {
                json!(items.iter().map(|h| h.score).fold(f64::MIN, f64::max))
            } else {
                Value::Null
            };
            Ok(
                json!({"hits": {"total": {"value": items.len(), "relation": "eq"}, "max_score": max_score, "hits": rendered}}),
            )
        }
        AggKind::Metric(kind, field) => {
            let mut nums = Vec::new();
            let mut distinct: Vec<FieldValue> = Vec::new();
            let mut count = 0usize;
            for h in hits {
                for v in values_of(h, field, now) {
                    count += 1;
                    if let FieldValue::Num(n) = v {
                        nums.push(n);
                    }
                    if !distinct.contains(&v) {
                        distinct.push(v);
                    }
                }
            }
            Ok(match kind.as_str() {
                "max" => json!({"value": nums.iter().cloned().reduce(f64::max)}),
                "min" => json!({"value": nums.iter().cloned().reduce(f64::min)}),
                "value_count" => json!({"value": count}),
                _ => json!({"value": distinct.len()}),
            })
        }
    }
}
