//! The cluster state: indices, aliases and data streams; name resolution (concrete names, aliases,
//! data streams, comma lists, wildcards that skip hidden indices unless the pattern starts with a
//! dot); write-target resolution with auto-creation of Fleet system indices (`.fleet-agents` →
//! `.fleet-agents-7` + alias), data streams (`.ds-<name>-<yyyy.MM.dd>-000001`) and ordinary
//! dynamically mapped indices; index creation with settings/mappings/aliases and deletion.

use crate::datemath;
use crate::error::{EsError, EsResult};
use crate::index::{Index, Settings};
use crate::mapping::Mapping;
use crate::system;
use crate::util;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// All indices and data streams.
#[derive(Debug, Default)]
pub struct Cluster {
    /// Indices by concrete name.
    pub indices: BTreeMap<String, Index>,
    /// Data streams: name → backing indices (oldest first).
    pub data_streams: BTreeMap<String, Vec<String>>,
    /// Default `refresh_interval` for new indices.
    pub default_refresh: Option<Duration>,
    /// Composable index templates: (name, patterns, body, data stream).
    pub templates: Vec<(String, Vec<String>, Value, bool)>,
}

/// A resolved write target.
#[derive(Debug, Clone)]
pub struct WriteTarget {
    /// Concrete index to write into.
    pub concrete: String,
    /// The target is a data stream (only `create` allowed; `@timestamp` required).
    pub data_stream: bool,
}

fn invalid_name(name: &str, why: &str) -> EsError {
    EsError::new(
        400,
        "invalid_index_name_exception",
        format!("Invalid index name [{name}], {why}"),
    )
    .with("index_uuid", "_na_")
    .with("index", name)
}

/// Validates an index name like `MetadataCreateIndexService.validateIndexOrAliasName`.
pub fn validate_name(name: &str) -> EsResult<()> {
    if name.is_empty() {
        return Err(invalid_name(name, "must not be empty"));
    }
    if name != name.to_lowercase() {
        return Err(invalid_name(name, "must be lowercase"));
    }
    if name.starts_with(['_', '-', '+']) {
        return Err(invalid_name(name, "must not start with '_', '-', or '+'"));
    }
    if name == "." || name == ".." {
        return Err(invalid_name(name, "must not be '.' or '..'"));
    }
    if name.contains(['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':']) {
        return Err(invalid_name(
            name,
            "must not contain the following characters ['\\','/','*','?','\"','<','>','|',' ',',','#',':']",
        ));
    }
    if name.len() > 255 {
        return Err(invalid_name(name, "index name is too long, (256 > 255)"));
    }
    Ok(())
}

impl Cluster {
    /// Concrete indices an alias points at.
    fn alias_targets(&self, alias: &str) -> Vec<String> {
        self.indices
            .values()
            .filter(|i| i.aliases.iter().any(|a| a == alias))
            .map(|i| i.name.clone())
            .collect()
    }

    /// Resolves one name without wildcards to concrete indices (`None` if unknown).
    pub fn resolve_one(&self, name: &str) -> Option<Vec<String>> {
        if self.indices.contains_key(name) {
            return Some(vec![name.to_string()]);
        }
        if let Some(b) = self.data_streams.get(name) {
            return Some(b.clone());
        }
        let a = self.alias_targets(name);
        (!a.is_empty()).then_some(a)
    }

    /// Resolves an index expression (comma list, wildcards, `_all`, empty) to concrete indices.
    pub fn resolve(&self, expr: &str, ignore_unavailable: bool) -> EsResult<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        let parts: Vec<&str> = expr
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() || parts == ["_all"] || parts == ["*"] {
            return Ok(self
                .indices
                .values()
                .filter(|i| !i.settings.hidden)
                .map(|i| i.name.clone())
                .collect());
        }
        for p in parts {
            if let Some(neg) = p.strip_prefix('-') {
                out.retain(|n| !util::glob(neg, n));
                continue;
            }
            if p.contains('*') {
                let hidden_ok = p.starts_with('.');
                for i in self.indices.values() {
                    let name_hit = util::glob(p, &i.name) && (hidden_ok || !i.settings.hidden);
                    let alias_hit = i
                        .aliases
                        .iter()
                        .any(|a| util::glob(p, a) && (hidden_ok || !a.starts_with('.')));
                    let ds_hit = i
                        .data_stream
                        .as_deref()
                        .is_some_and(|d| util::glob(p, d) && (hidden_ok || !d.starts_with('.')));
                    if (name_hit || alias_hit || ds_hit) && !out.contains(&i.name) {
                        out.push(i.name.clone());
                    }
                }
                continue;
            }
            match self.resolve_one(p) {
                Some(v) => {
                    for n in v {
                        if !out.contains(&n) {
                            out.push(n);
                        }
                    }
                }
                None if ignore_unavailable => {}
                None => return Err(EsError::index_not_found(p)),
            }
        }
        Ok(out)
    }

    /// Resolves a name that must denote exactly one index (GET/mget/update/delete targets).
    pub fn resolve_single(&self, name: &str) -> EsResult<String> {
        match self.resolve_one(name) {
            None => Err(EsError::index_not_found(name)),
            Some(v) if v.len() == 1 => Ok(v[0].clone()),
            Some(v) => {
                if self.data_streams.contains_key(name) {
                    return v
                        .last()
                        .cloned()
                        .ok_or_else(|| EsError::index_not_found(name));
                }
                Err(EsError::illegal_argument(format!(
                    "alias [{name}] has more than one index associated with it [{}], can't execute a single index op",
                    v.join(", ")
                )))
            }
        }
    }

    /// Resolves (and auto-creates when missing) the index a write goes to.
    pub fn write_target(&mut self, name: &str, now_ms: i64) -> EsResult<WriteTarget> {
        if let Some(b) = self.data_streams.get(name) {
            let concrete = b
                .last()
                .cloned()
                .ok_or_else(|| EsError::index_not_found(name))?;
            return Ok(WriteTarget {
                concrete,
                data_stream: true,
            });
        }
        if self.indices.contains_key(name) {
            let ds = self
                .indices
                .get(name)
                .and_then(|i| i.data_stream.clone())
                .is_some();
            return Ok(WriteTarget {
                concrete: name.to_string(),
                data_stream: ds,
            });
        }
        let a = self.alias_targets(name);
        match a.len() {
            0 => {}
            1 => {
                return Ok(WriteTarget {
                    concrete: a[0].clone(),
                    data_stream: false,
                })
            }
            _ => {
                return Err(EsError::illegal_argument(format!(
                    "no write index is defined for alias [{name}]. The write index may be explicitly disabled using is_write_index=false or the alias points to multiple indices without one being designated as a write index"
                )))
            }
        }
        // auto-create: user templates first (highest priority wins as stored order)
        let tpl = self
            .templates
            .iter()
            .find(|(_, pats, _, _)| pats.iter().any(|p| util::glob(p, name)))
            .map(|(_, _, body, ds)| (body.clone(), *ds));
        if let Some((body, ds)) = tpl {
            validate_name(name)?;
            let inner = body.get("template").cloned().unwrap_or(Value::Null);
            if ds {
                let backing = format!(".ds-{name}-{}-000001", datemath::format_ymd_dots(now_ms));
                self.create_index(&backing, &inner, now_ms)?;
                if let Some(i) = self.indices.get_mut(&backing) {
                    i.data_stream = Some(name.to_string());
                    i.settings.hidden = true;
                }
                self.data_streams
                    .insert(name.to_string(), vec![backing.clone()]);
                return Ok(WriteTarget {
                    concrete: backing,
                    data_stream: true,
                });
            }
            self.create_index(name, &inner, now_ms)?;
            return Ok(WriteTarget {
                concrete: name.to_string(),
                data_stream: false,
            });
        }
        if let Some(sys) = system::system_index(name) {
            self.create_system(sys, now_ms);
            return Ok(WriteTarget {
                concrete: sys.concrete.to_string(),
                data_stream: false,
            });
        }
        if let Some(t) = system::stream_template(name) {
            validate_name(name)?;
            let backing = format!(".ds-{name}-{}-000001", datemath::format_ymd_dots(now_ms));
            let mut idx = Index::new(&backing, t.mapping(), self.settings(1, 0, true), now_ms);
            idx.data_stream = Some(name.to_string());
            self.indices.insert(backing.clone(), idx);
            self.data_streams
                .insert(name.to_string(), vec![backing.clone()]);
            return Ok(WriteTarget {
                concrete: backing,
                data_stream: true,
            });
        }
        validate_name(name)?;
        let hidden = name.starts_with('.');
        let idx = Index::new(
            name,
            Mapping::dynamic(),
            self.settings(1, 1, hidden),
            now_ms,
        );
        self.indices.insert(name.to_string(), idx);
        Ok(WriteTarget {
            concrete: name.to_string(),
            data_stream: false,
        })
    }

    fn settings(&self, shards: u32, replicas: u32, hidden: bool) -> Settings {
        Settings {
            shards,
            replicas,
            refresh_interval: self.default_refresh,
            hidden,
        }
    }

    fn create_system(&mut self, sys: &system::SystemIndex, now_ms: i64) {
        if self.indices.contains_key(sys.concrete) {
            return;
        }
        let mut idx = Index::new(
            sys.concrete,
            sys.mapping(),
            self.settings(1, 0, true),
            now_ms,
        );
        idx.aliases.push(sys.alias.to_string());
        self.indices.insert(sys.concrete.to_string(), idx);
    }

    /// `PUT /<index>` with an optional body `{settings, mappings, aliases}`.
    pub fn create_index(&mut self, name: &str, body: &Value, now_ms: i64) -> EsResult<()> {
        if self.indices.contains_key(name) || self.data_streams.contains_key(name) {
            let uuid = self
                .indices
                .get(name)
                .map(|i| i.uuid.clone())
                .unwrap_or_default();
            return Err(EsError::new(
                400,
                "resource_already_exists_exception",
                format!("index [{name}/{uuid}] already exists"),
            )
            .with("index_uuid", uuid)
            .with("index", name));
        }
        if let Some(sys) = system::system_index(name) {
            self.create_system(sys, now_ms);
            return Ok(());
        }
        validate_name(name)?;
        let s = body.get("settings").cloned().unwrap_or(Value::Null);
        let get = |k: &str| -> Option<Value> {
            s.get(k)
                .or_else(|| s.get("index").and_then(|i| i.get(k)))
                .or_else(|| s.get(format!("index.{k}")))
                .cloned()
        };
        let num = |v: Option<Value>, d: u32| -> EsResult<u32> {
            match v {
                None => Ok(d),
                Some(Value::Number(n)) => Ok(n
                    .as_u64()
                    .map(|x| x.min(u64::from(u32::MAX)) as u32)
                    .unwrap_or(d)),
                Some(Value::String(x)) => x.parse().map_err(|_| {
                    EsError::illegal_argument(format!("Failed to parse value [{x}] for setting"))
                }),
                Some(_) => Ok(d),
            }
        };
        let shards = num(get("number_of_shards"), 1)?;
        if !(1..=1024).contains(&shards) {
            return Err(EsError::illegal_argument(format!(
                "Failed to parse value [{shards}] for setting [index.number_of_shards] must be >= 1 and <= 1024"
            )));
        }
        let replicas = num(get("number_of_replicas"), 1)?.min(1024);
        let refresh = match get("refresh_interval") {
            None => self.default_refresh,
            Some(v) => {
                let t = match &v {
                    Value::String(x) => x.clone(),
                    other => other.to_string(),
                };
                if t.trim() == "-1" {
                    None
                } else {
                    Some(util::parse_time(&t).ok_or_else(|| {
                        EsError::illegal_argument(format!(
                            "failed to parse setting [index.refresh_interval] with value [{t}] as a time value"
                        ))
                    })?)
                }
            }
        };
        let hidden = matches!(get("hidden"), Some(Value::Bool(true)))
            || get("hidden").and_then(|v| v.as_str().map(|x| x == "true")) == Some(true);
        let mapping = match body.get("mappings") {
            Some(m) => Mapping::from_es_json(m)?,
            None => Mapping::dynamic(),
        };
        let mut idx = Index::new(
            name,
            mapping,
            Settings {
                shards,
                replicas,
                refresh_interval: refresh,
                hidden,
            },
            now_ms,
        );
        if let Some(Value::Object(al)) = body.get("aliases") {
            idx.aliases = al.keys().cloned().collect();
        }
        self.indices.insert(name.to_string(), idx);
        Ok(())
    }

    /// `DELETE /<index>`: concrete names or wildcards (aliases are rejected as in ES).
    pub fn delete_indices(&mut self, expr: &str) -> EsResult<()> {
        let mut victims = Vec::new();
        for p in expr.split(',').filter(|p| !p.is_empty()) {
            if p.contains('*') || p == "_all" {
                victims.extend(self.resolve(p, true)?);
            } else if self.indices.contains_key(p) {
                victims.push(p.to_string());
            } else if !self.alias_targets(p).is_empty() {
                return Err(EsError::illegal_argument(format!(
                    "The provided expression [{p}] matches an alias, specify the corresponding concrete indices instead."
                )));
            } else {
                return Err(EsError::index_not_found(p));
            }
        }
        for v in victims {
            self.indices.remove(&v);
            for b in self.data_streams.values_mut() {
                b.retain(|n| n != &v);
            }
        }
        self.data_streams.retain(|_, b| !b.is_empty());
        Ok(())
    }

    /// `PUT /<index>/_alias/<name>`.
    pub fn put_alias(&mut self, expr: &str, alias: &str) -> EsResult<()> {
        validate_name(alias)?;
        let targets = self.resolve(expr, false)?;
        if targets.is_empty() {
            return Err(EsError::index_not_found(expr));
        }
        for t in targets {
            if let Some(i) = self.indices.get_mut(&t) {
                if !i.aliases.iter().any(|a| a == alias) {
                    i.aliases.push(alias.to_string());
                }
            }
        }
        Ok(())
    }

    /// Removes every index, data stream and template.
    pub fn wipe(&mut self) {
        self.indices.clear();
        self.data_streams.clear();
        self.templates.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auto_create_system_and_streams() {
        let mut c = Cluster::default();
        let t = c.write_target(".fleet-agents", 0).unwrap();
        assert_eq!(t.concrete, ".fleet-agents-7");
        assert_eq!(
            c.resolve(".fleet-agents", false).unwrap(),
            vec![".fleet-agents-7"]
        );
        assert!(c.resolve("*", false).unwrap().is_empty(), "hidden");
        assert_eq!(c.resolve(".fleet-*", false).unwrap().len(), 1);
        let t = c.write_target(".fleet-actions-results", 0).unwrap();
        assert!(t.data_stream);
        assert_eq!(t.concrete, ".ds-.fleet-actions-results-1970.01.01-000001");
        assert!(matches!(c.resolve(".fleet-actions", false), Err(e) if e.status == 404));
        assert!(c.resolve(".fleet-actions", true).unwrap().is_empty());
    }

    #[test]
    fn create_with_settings_and_alias() {
        let mut c = Cluster::default();
        c.create_index(
            "t",
            &json!({"settings":{"number_of_shards":"2","refresh_interval":"-1"}}),
            0,
        )
        .unwrap();
        let i = &c.indices["t"];
        assert_eq!(i.shards(), 2);
        assert!(i.settings.refresh_interval.is_none());
        assert_eq!(
            c.create_index("t", &json!({}), 0).unwrap_err().kind,
            "resource_already_exists_exception"
        );
        c.put_alias("t", "a").unwrap();
        assert_eq!(c.resolve_single("a").unwrap(), "t");
        assert_eq!(
            validate_name("Bad").unwrap_err().kind,
            "invalid_index_name_exception"
        );
        c.delete_indices("t").unwrap();
        assert!(c.indices.is_empty());
    }
}
