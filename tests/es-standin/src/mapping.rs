//! Index mappings: the field model (keyword, text, date, numbers, boolean, binary, disabled objects),
//! `dynamic` semantics (true: new fields are mapped on write; false: kept in `_source` only), value
//! checks on write (`document_parsing_exception`), and field lookup for queries, sorts and aggs.
//! The Fleet system index definitions built from this model live in `system.rs`.

use crate::datemath;
use crate::error::EsError;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Field types the stand-in models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Exact-value string.
    Keyword,
    /// Analyzed string (standard analyzer approximated: lowercase alphanumeric tokens).
    Text,
    /// `true`/`false`.
    Boolean,
    /// Millisecond date.
    Date,
    /// Integral numbers (long, integer, short, byte).
    Long,
    /// Floating point numbers (double, float, half_float, scaled_float).
    Double,
    /// Base64 binary; never searchable.
    Binary,
    /// `ip` (compared as a string).
    Ip,
}

impl FieldType {
    /// Parses an ES type name.
    pub fn parse(s: &str) -> Option<FieldType> {
        Some(match s {
            "keyword" | "constant_keyword" | "wildcard" => FieldType::Keyword,
            "text" | "match_only_text" => FieldType::Text,
            "boolean" => FieldType::Boolean,
            "date" | "date_nanos" => FieldType::Date,
            "long" | "integer" | "short" | "byte" | "unsigned_long" => FieldType::Long,
            "double" | "float" | "half_float" | "scaled_float" => FieldType::Double,
            "binary" => FieldType::Binary,
            "ip" => FieldType::Ip,
            _ => return None,
        })
    }
}

/// One leaf field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMapping {
    /// Modelled type.
    pub ty: FieldType,
    /// The ES type name as declared (reported by `GET /<index>/_mapping`).
    pub type_name: String,
    /// `index: false` (still queryable through doc values, except binary/text).
    pub indexed: bool,
    /// `ignore_above` for keywords.
    pub ignore_above: Option<usize>,
}

impl FieldMapping {
    /// Whether queries can match this field at all.
    pub fn searchable(&self) -> bool {
        match self.ty {
            FieldType::Binary => false,
            FieldType::Text => self.indexed,
            _ => true,
        }
    }
}

/// The mapping of one index.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapping {
    /// Root `dynamic` setting: true maps new fields on write.
    pub dynamic: bool,
    /// Leaf fields by full dotted path (multi-fields as `a.keyword`).
    pub fields: BTreeMap<String, FieldMapping>,
    /// Object paths with `enabled: false` (source only).
    pub disabled: Vec<String>,
    /// Object paths with `dynamic: true` inside a non-dynamic root.
    pub dynamic_objects: Vec<String>,
    /// Object paths known to the mapping (for `exists` on objects and the mapping API).
    pub objects: Vec<String>,
}

fn field(ty: &str, indexed: bool, ignore_above: Option<usize>) -> Option<FieldMapping> {
    Some(FieldMapping {
        ty: FieldType::parse(ty)?,
        type_name: ty.to_string(),
        indexed,
        ignore_above,
    })
}

impl Mapping {
    /// A dynamic mapping with no fields (ordinary user index).
    pub fn dynamic() -> Mapping {
        Mapping {
            dynamic: true,
            ..Mapping::default()
        }
    }

    /// Builds a mapping from compact lines `path type [noindex] [disabled] [dynamic] [ignore_above=N]`.
    pub fn from_compact(dynamic: bool, lines: &[&str]) -> Mapping {
        let mut m = Mapping {
            dynamic,
            ..Mapping::default()
        };
        for line in lines {
            let mut parts = line.split_whitespace();
            let (Some(path), Some(ty)) = (parts.next(), parts.next()) else {
                continue;
            };
            let flags: Vec<&str> = parts.collect();
            if ty == "object" {
                if flags.contains(&"disabled") {
                    m.disabled.push(path.to_string());
                }
                if flags.contains(&"dynamic") {
                    m.dynamic_objects.push(path.to_string());
                }
                m.objects.push(path.to_string());
                continue;
            }
            let ignore_above = flags
                .iter()
                .find_map(|f| f.strip_prefix("ignore_above="))
                .and_then(|v| v.parse().ok());
            if let Some(f) = field(ty, !flags.contains(&"noindex"), ignore_above) {
                m.add_parents(path);
                m.fields.insert(path.to_string(), f);
            }
        }
        m
    }

    fn add_parents(&mut self, path: &str) {
        let mut p = path;
        while let Some(pos) = p.rfind('.') {
            p = &p[..pos];
            if self.fields.contains_key(p) {
                return; // multi-field of a leaf
            }
            if !self.objects.iter().any(|o| o == p) {
                self.objects.push(p.to_string());
            }
        }
    }

    /// Parses the `mappings` object of `PUT /<index>` (typeless, or wrapped in `_doc`).
    pub fn from_es_json(v: &Value) -> Result<Mapping, EsError> {
        let v = v.get("_doc").unwrap_or(v);
        let dynamic = !matches!(v.get("dynamic"), Some(Value::Bool(false)))
            && v.get("dynamic").and_then(Value::as_str) != Some("false")
            && v.get("dynamic").and_then(Value::as_str) != Some("strict");
        let mut m = Mapping {
            dynamic,
            ..Mapping::default()
        };
        if let Some(Value::Object(props)) = v.get("properties") {
            m.walk_props(props, "")?;
        }
        Ok(m)
    }

    fn walk_props(&mut self, props: &Map<String, Value>, prefix: &str) -> Result<(), EsError> {
        for (k, v) in props {
            let path = format!("{prefix}{k}");
            let ty = v.get("type").and_then(Value::as_str).unwrap_or("object");
            if ty == "object" || ty == "nested" || v.get("properties").is_some() {
                self.objects.push(path.clone());
                if v.get("enabled") == Some(&Value::Bool(false)) {
                    self.disabled.push(path.clone());
                }
                let dyn_v = v.get("dynamic");
                if dyn_v == Some(&Value::Bool(true))
                    || dyn_v.and_then(Value::as_str) == Some("true")
                {
                    self.dynamic_objects.push(path.clone());
                }
                if let Some(Value::Object(p)) = v.get("properties") {
                    self.walk_props(p, &format!("{path}."))?;
                }
                continue;
            }
            let indexed = v.get("index") != Some(&Value::Bool(false));
            let ia = v
                .get("ignore_above")
                .and_then(Value::as_u64)
                .map(|n| n as usize);
            let Some(f) = field(ty, indexed, ia) else {
                if ty == "flattened" || ty == "alias" || ty.contains("vector") {
                    continue;
                }
                return Err(EsError::new(
                    400,
                    "mapper_parsing_exception",
                    format!("No handler for type [{ty}] declared on field [{k}]"),
                ));
            };
            self.fields.insert(path.clone(), f);
            if let Some(Value::Object(sub)) = v.get("fields") {
                for (sk, sv) in sub {
                    let sty = sv.get("type").and_then(Value::as_str).unwrap_or("keyword");
                    let sia = sv
                        .get("ignore_above")
                        .and_then(Value::as_u64)
                        .map(|n| n as usize);
                    if let Some(f) = field(sty, true, sia) {
                        self.fields.insert(format!("{path}.{sk}"), f);
                    }
                }
            }
        }
        Ok(())
    }

    /// The mapped leaf field at `path`, if any (disabled objects hide everything below them).
    pub fn lookup(&self, path: &str) -> Option<&FieldMapping> {
        if self.under_disabled(path) {
            return None;
        }
        self.fields.get(path)
    }

    fn under_disabled(&self, path: &str) -> bool {
        self.disabled.iter().any(|d| {
            path == d || (path.starts_with(d.as_str()) && path[d.len()..].starts_with('.'))
        })
    }

    fn dynamic_at(&self, path: &str) -> bool {
        self.dynamic
            || self
                .dynamic_objects
                .iter()
                .any(|d| path.starts_with(d.as_str()) && path[d.len()..].starts_with('.'))
    }

    /// Maps new fields of `source` (dynamic indices / dynamic objects), ES-style inference:
    /// ISO date strings → date, other strings → text + `keyword` (ignore_above 256), integers →
    /// long, floats → float, booleans → boolean.
    pub fn map_dynamic(&mut self, source: &Value) {
        if !self.dynamic && self.dynamic_objects.is_empty() {
            return;
        }
        let mut leaves = Vec::new();
        collect_leaves(source, "", &mut leaves);
        for (path, v) in leaves {
            if self.fields.contains_key(&path)
                || self.under_disabled(&path)
                || !self.dynamic_at(&path)
            {
                continue;
            }
            let (ty, sub) = match v {
                Value::Bool(_) => ("boolean", false),
                Value::Number(n) if n.is_i64() || n.is_u64() => ("long", false),
                Value::Number(_) => ("float", false),
                Value::String(s) if datemath::parse_iso(s).is_some() && s.len() >= 10 => {
                    ("date", false)
                }
                Value::String(_) => ("text", true),
                _ => continue,
            };
            if let Some(f) = field(ty, true, None) {
                self.add_parents(&path);
                self.fields.insert(path.clone(), f);
            }
            if sub {
                if let Some(f) = field("keyword", true, Some(256)) {
                    self.fields.insert(format!("{path}.keyword"), f);
                }
            }
        }
    }

    /// Checks every mapped value of `source` against its type (dates parse, numbers are numbers).
    pub fn check(&self, source: &Value, id: &str) -> Result<(), EsError> {
        let mut leaves = Vec::new();
        collect_leaves(source, "", &mut leaves);
        for (path, v) in leaves {
            let Some(f) = self.lookup(&path) else {
                continue;
            };
            let ok = match (f.ty, v) {
                (_, Value::Null) => true,
                (FieldType::Date, v) => datemath::parse_date_value(v).is_some(),
                (FieldType::Long, Value::Number(n)) => n.is_i64() || n.is_u64() || n.is_f64(),
                (FieldType::Long, Value::String(s)) => s.trim().parse::<f64>().is_ok(),
                (FieldType::Double, Value::Number(_)) => true,
                (FieldType::Double, Value::String(s)) => s.trim().parse::<f64>().is_ok(),
                (FieldType::Boolean, Value::Bool(_)) => true,
                (FieldType::Boolean, Value::String(s)) => {
                    s == "true" || s == "false" || s.is_empty()
                }
                (FieldType::Long | FieldType::Double | FieldType::Boolean, _) => false,
                (_, Value::Object(_)) => false,
                _ => true,
            };
            if !ok {
                let preview = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                return Err(EsError::new(
                    400,
                    "document_parsing_exception",
                    format!(
                        "[1:1] failed to parse field [{path}] of type [{}] in document with id '{id}'. Preview of field's value: '{preview}'",
                        f.type_name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The `properties` tree for `GET /<index>/_mapping`.
    pub fn to_es_json(&self) -> Value {
        let mut root = Map::new();
        for (path, f) in &self.fields {
            let parts: Vec<&str> = path.split('.').collect();
            // multi-field?
            let parent = parts[..parts.len() - 1].join(".");
            if !parent.is_empty() && self.fields.contains_key(&parent) {
                continue;
            }
            let mut leaf = json!({ "type": f.type_name });
            if !f.indexed {
                leaf["index"] = Value::Bool(false);
            }
            if let Some(ia) = f.ignore_above {
                leaf["ignore_above"] = json!(ia);
            }
            let subs: Map<String, Value> = self
                .fields
                .iter()
                .filter(|(p, _)| {
                    p.starts_with(&format!("{path}.")) && !p[path.len() + 1..].contains('.')
                })
                .map(|(p, sf)| {
                    let mut s = json!({ "type": sf.type_name });
                    if let Some(ia) = sf.ignore_above {
                        s["ignore_above"] = json!(ia);
                    }
                    (p[path.len() + 1..].to_string(), s)
                })
                .collect();
            if !subs.is_empty() {
                leaf["fields"] = Value::Object(subs);
            }
            insert_path(&mut root, &parts, leaf);
        }
        for d in &self.disabled {
            let parts: Vec<&str> = d.split('.').collect();
            insert_path(
                &mut root,
                &parts,
                json!({ "type": "object", "enabled": false }),
            );
        }
        let mut out = json!({ "properties": root });
        if !self.dynamic {
            out["dynamic"] = Value::String("false".into());
        }
        out
    }
}

fn insert_path(root: &mut Map<String, Value>, parts: &[&str], leaf: Value) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    if rest.is_empty() {
        root.insert((*first).to_string(), leaf);
        return;
    }
    let entry = root
        .entry((*first).to_string())
        .or_insert_with(|| json!({ "properties": {} }));
    if let Some(Value::Object(p)) = entry.get_mut("properties") {
        insert_path(p, rest, leaf);
    }
}

/// Flattens a source document into `(dotted path, leaf value)` pairs; arrays contribute each element.
pub fn collect_leaves<'a>(v: &'a Value, prefix: &str, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                collect_leaves(c, &p, out);
            }
        }
        Value::Array(a) => {
            for c in a {
                collect_leaves(c, prefix, out);
            }
        }
        _ if !prefix.is_empty() => out.push((prefix.to_string(), v)),
        _ => {}
    }
}

/// All values found at dotted `path` in `source` (dotted keys and arrays of objects handled).
pub fn values_at<'a>(source: &'a Value, path: &str, out: &mut Vec<&'a Value>) {
    match source {
        Value::Array(a) => {
            for c in a {
                values_at(c, path, out);
            }
        }
        Value::Object(m) => {
            if let Some(v) = m.get(path) {
                push_flat(v, out);
            }
            let mut idx = 0;
            while let Some(pos) = path[idx..].find('.') {
                let split = idx + pos;
                if let Some(child) = m.get(&path[..split]) {
                    values_at(child, &path[split + 1..], out);
                }
                idx = split + 1;
            }
        }
        _ => {}
    }
}

fn push_flat<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(a) => {
            for c in a {
                push_flat(c, out);
            }
        }
        _ => out.push(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_lookup() {
        let m = Mapping::from_compact(
            false,
            &[
                "a.b keyword",
                "data object disabled",
                "t text",
                "t.keyword keyword ignore_above=10",
            ],
        );
        assert!(m.lookup("a.b").is_some());
        assert!(m.lookup("data.x").is_none());
        assert_eq!(m.lookup("t.keyword").unwrap().ignore_above, Some(10));
        assert!(m.objects.contains(&"a".to_string()));
    }

    #[test]
    fn dynamic_inference() {
        let mut m = Mapping::dynamic();
        m.map_dynamic(
            &json!({"s":"x","n":1,"f":1.5,"b":true,"d":"2020-01-01T00:00:00Z","o":{"k":"v"}}),
        );
        assert_eq!(m.lookup("s").unwrap().ty, FieldType::Text);
        assert_eq!(m.lookup("s.keyword").unwrap().ty, FieldType::Keyword);
        assert_eq!(m.lookup("n").unwrap().ty, FieldType::Long);
        assert_eq!(m.lookup("d").unwrap().ty, FieldType::Date);
        assert_eq!(m.lookup("o.k").unwrap().ty, FieldType::Text);
    }

    #[test]
    fn check_rejects_bad_values() {
        let m = Mapping::from_compact(false, &["n integer", "d date"]);
        assert!(m.check(&json!({"n": 1, "d": "2020-01-01"}), "1").is_ok());
        let e = m.check(&json!({"n": "abc"}), "1").unwrap_err();
        assert_eq!(e.kind, "document_parsing_exception");
        assert!(m.check(&json!({"d": "yesterday"}), "1").is_err());
        assert!(m.check(&json!({"unmapped": {"x": 1}}), "1").is_ok());
    }

    #[test]
    fn values_at_handles_dots_and_arrays() {
        let doc = json!({"a": [{"b": 1}, {"b": [2, 3]}], "c.d": "x", "e": {"f.g": true}});
        let mut out = Vec::new();
        values_at(&doc, "a.b", &mut out);
        assert_eq!(out.len(), 3);
        out.clear();
        values_at(&doc, "c.d", &mut out);
        assert_eq!(out, vec![&json!("x")]);
        out.clear();
        values_at(&doc, "e.f.g", &mut out);
        assert_eq!(out, vec![&json!(true)]);
    }
}
