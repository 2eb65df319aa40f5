//! The ES YAML REST test runner: parses the multi-document YAML files (setup, teardown, tests),
//! executes `do` steps through the REST API specs against a live stand-in (real HTTP), and checks
//! `match`, `length`, `is_true`, `is_false`, `gt`/`gte`/`lt`/`lte`, `contains`, `exists`,
//! `close_to`, `set`/`transform_and_set` stashes, `catch`, `headers`, `ignore` and `skip`.

pub mod specs;

use base64::Engine;
use es_standin::{util, Client};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use yaml_rust2::{Yaml, YamlLoader};

/// Features this runner implements (a `skip: features:` naming anything else skips the test).
const FEATURES: &[&str] = &[
    "headers",
    "warnings",
    "allowed_warnings",
    "contains",
    "stash_in_path",
    "stash_in_key",
    "default_shards",
    "transform_and_set",
    "close_to",
    "is_after",
    "arbitrary_key",
];

/// A parsed test file.
#[derive(Debug, Default)]
pub struct TestFile {
    pub setup: Vec<Yaml>,
    pub teardown: Vec<Yaml>,
    pub tests: Vec<(String, Vec<Yaml>)>,
}

/// Parses a YAML test file.
pub fn parse_file(text: &str) -> Result<TestFile, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    let mut f = TestFile::default();
    for d in docs {
        let Yaml::Hash(h) = d else { continue };
        for (k, v) in h {
            let name = k.as_str().unwrap_or("").to_string();
            let steps = v.as_vec().cloned().unwrap_or_default();
            match name.as_str() {
                "setup" => f.setup = steps,
                "teardown" => f.teardown = steps,
                _ => f.tests.push((name, steps)),
            }
        }
    }
    Ok(f)
}

/// YAML → JSON.
pub fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(s) => s
            .parse::<f64>()
            .map(|f| json!(f))
            .unwrap_or(Value::String(s.clone())),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(h.iter().map(|(k, v)| (yaml_key(k), to_json(v))).collect()),
        _ => Value::Null,
    }
}

fn yaml_key(k: &Yaml) -> String {
    match k {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        Yaml::Real(r) => r.clone(),
        _ => String::new(),
    }
}

/// Per-test execution state.
pub struct Runner<'a> {
    pub client: &'a Client,
    pub specs: &'a HashMap<String, specs::Api>,
    pub version: (u32, u32, u32),
    pub stash: HashMap<String, Value>,
    pub last: Value,
    pub superuser_auth: String,
}

/// Outcome of a step list.
pub enum Outcome {
    Pass,
    Skip(String),
}

fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.trim().split('.').map(|x| x.trim().parse::<u32>().ok());
    Some((
        it.next()??,
        it.next().flatten().unwrap_or(0),
        it.next().flatten().unwrap_or(0),
    ))
}

fn version_in_ranges(v: (u32, u32, u32), ranges: &str) -> bool {
    ranges.split(',').any(|r| {
        let r = r.trim();
        if r == "all" {
            return true;
        }
        let (lo, hi) = r.split_once('-').unwrap_or((r, r));
        let lo = if lo.trim().is_empty() {
            (0, 0, 0)
        } else {
            parse_version(lo).unwrap_or((0, 0, 0))
        };
        let hi = if hi.trim().is_empty() {
            (u32::MAX, 0, 0)
        } else {
            parse_version(hi).unwrap_or((u32::MAX, 0, 0))
        };
        v >= lo && v <= hi
    })
}

impl Runner<'_> {
    fn subst(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => {
                if let Some(name) = s.strip_prefix('$').filter(|n| !n.starts_with('{')) {
                    if let Some(x) = self.stash.get(name) {
                        return x.clone();
                    }
                }
                if s.starts_with("${") && s.ends_with('}') && s.matches("${").count() == 1 {
                    if let Some(x) = self.stash.get(&s[2..s.len() - 1]) {
                        return x.clone();
                    }
                }
                let mut out = s.clone();
                for (k, val) in &self.stash {
                    let rep = match val {
                        Value::String(x) => x.clone(),
                        o => o.to_string(),
                    };
                    out = out.replace(&format!("${{{k}}}"), &rep);
                }
                Value::String(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| self.subst(x)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| {
                        (
                            match self.subst(&Value::String(k.clone())) {
                                Value::String(s) => s,
                                o => o.to_string(),
                            },
                            self.subst(x),
                        )
                    })
                    .collect(),
            ),
            o => o.clone(),
        }
    }

    fn lookup(&self, path: &str) -> Option<Value> {
        if path.is_empty() || path == "$body" {
            return Some(self.last.clone());
        }
        let mut parts = Vec::new();
        let mut cur = String::new();
        let mut chars = path.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\\' && chars.peek() == Some(&'.') {
                cur.push('.');
                chars.next();
            } else if c == '.' {
                parts.push(std::mem::take(&mut cur));
            } else {
                cur.push(c);
            }
        }
        parts.push(cur);
        let mut v = &self.last;
        for p in parts {
            let p = match self.subst(&Value::String(p.clone())) {
                Value::String(s) => s,
                o => o.to_string(),
            };
            v = match v {
                Value::Object(m) => m.get(&p)?,
                Value::Array(a) => a.get(p.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(v.clone())
    }

    /// Runs a list of steps.
    pub fn run_steps(&mut self, steps: &[Yaml]) -> Result<Outcome, String> {
        for (i, step) in steps.iter().enumerate() {
            let Yaml::Hash(h) = step else { continue };
            for (k, v) in h {
                let kind = k.as_str().unwrap_or("");
                let r = match kind {
                    "skip" | "requires" => {
                        if let Some(reason) = self.skip_reason(&to_json(v)) {
                            return Ok(Outcome::Skip(reason));
                        }
                        Ok(())
                    }
                    "do" => self.do_step(&to_json(v)),
                    _ => self.assert_step(kind, &to_json(v)),
                };
                r.map_err(|e| {
                    format!(
                        "step {} [{kind}]: {e}\n    last response: {}",
                        i + 1,
                        self.last
                    )
                })?;
            }
        }
        Ok(Outcome::Pass)
    }

    fn skip_reason(&self, v: &Value) -> Option<String> {
        let list = |x: &Value| -> Vec<String> {
            match x {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter_map(|i| i.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            }
        };
        for f in list(&v["features"])
            .iter()
            .chain(list(&v["test_runner_features"]).iter())
        {
            if !FEATURES.contains(&f.as_str()) {
                return Some(format!("runner feature [{f}] not supported"));
            }
        }
        if let Some(r) = v["version"].as_str() {
            if version_in_ranges(self.version, r) {
                return Some(format!(
                    "version {r}: {}",
                    v["reason"].as_str().unwrap_or("")
                ));
            }
        }
        if !list(&v["cluster_features"]).is_empty()
            && v.get("reason").is_some()
            && v.get("cluster_features").is_some()
            && v.get("version").is_none()
        {
            return Some("cluster_features gate".into());
        }
        None
    }

    fn do_step(&mut self, v: &Value) -> Result<(), String> {
        let Value::Object(m) = v else {
            return Err("malformed do".into());
        };
        let catch = m.get("catch").and_then(Value::as_str).map(String::from);
        let mut headers: Vec<(String, String)> = Vec::new();
        if let Some(Value::Object(h)) = m.get("headers") {
            for (k, x) in h {
                let x = self.subst(x);
                headers.push((
                    k.clone(),
                    x.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| x.to_string()),
                ));
            }
        }
        let (api, params) = m
            .iter()
            .find(|(k, _)| {
                ![
                    "catch",
                    "headers",
                    "warnings",
                    "allowed_warnings",
                    "node_selector",
                    "allowed_warnings_regex",
                    "warnings_regex",
                ]
                .contains(&k.as_str())
            })
            .ok_or("do without api")?;
        let spec = self
            .specs
            .get(api)
            .ok_or_else(|| format!("unknown api [{api}]"))?;
        let mut params: Map<String, Value> = match self.subst(params) {
            Value::Object(p) => p,
            _ => Map::new(),
        };
        let body = params.remove("body");
        let ignore: Vec<u16> = match params.remove("ignore") {
            Some(Value::Number(n)) => vec![n.as_u64().unwrap_or(0) as u16],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_u64().map(|n| n as u16))
                .collect(),
            _ => Vec::new(),
        };
        let sval = |x: &Value| -> String {
            match x {
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| i.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                o => o.to_string(),
            }
        };
        let (tmpl, methods, parts) = spec
            .paths
            .iter()
            .filter(|(_, _, parts)| parts.iter().all(|p| params.contains_key(p)))
            .max_by_key(|(_, _, parts)| parts.len())
            .cloned()
            .ok_or_else(|| format!("no path of [{api}] matches the params"))?;
        let mut path = tmpl.clone();
        for p in &parts {
            let val = params.remove(p).map(|x| sval(&x)).unwrap_or_default();
            path = path.replace(
                &format!("{{{p}}}"),
                &util::percent_encode(&val).replace("%2C", ","),
            );
        }
        let mut qs: Vec<String> = params
            .iter()
            .map(|(k, x)| {
                format!(
                    "{}={}",
                    util::percent_encode(k),
                    util::percent_encode(&sval(x))
                )
            })
            .collect();
        qs.sort();
        if !qs.is_empty() {
            path = format!("{path}?{}", qs.join("&"));
        }
        let body_bytes: Option<Vec<u8>> = body.map(|b| match (&b, spec.bulk_body) {
            (Value::Array(items), true) => {
                let mut out = String::new();
                for it in items {
                    out.push_str(
                        &it.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| it.to_string()),
                    );
                    out.push('\n');
                }
                out.into_bytes()
            }
            (Value::String(s), true) => {
                let mut s = s.clone();
                if !s.ends_with('\n') {
                    s.push('\n');
                }
                s.into_bytes()
            }
            (Value::String(s), false) => s.clone().into_bytes(),
            (o, _) => o.to_string().into_bytes(),
        });
        let method = if body_bytes.is_some() {
            ["POST", "PUT"]
                .iter()
                .find(|x| methods.iter().any(|m| m == *x))
                .map(|x| x.to_string())
                .unwrap_or_else(|| methods[0].clone())
        } else if methods.iter().any(|m| m == "GET") {
            "GET".to_string()
        } else {
            methods[0].clone()
        };
        let mut hdrs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            hdrs.push(("Authorization", &self.superuser_auth));
        }
        let resp = self
            .client
            .request(&method, &path, &hdrs, body_bytes.as_deref())
            .map_err(|e| format!("{method} {path}: {e}"))?;
        if resp.header("x-elastic-product") != Some("Elasticsearch") {
            return Err("response lacks X-elastic-product: Elasticsearch".into());
        }
        self.last = if method == "HEAD" {
            Value::Bool(resp.status < 300)
        } else {
            resp.json()
        };
        let status = resp.status;
        if ignore.contains(&status) {
            return Ok(());
        }
        match catch.as_deref() {
            None if status >= 400 => Err(format!("{method} {path} failed with {status}")),
            None => Ok(()),
            Some(c) => {
                let ok = match c {
                    "bad_request" => status == 400,
                    "unauthorized" => status == 401,
                    "forbidden" => status == 403,
                    "missing" => status == 404,
                    "request_timeout" => status == 408,
                    "conflict" => status == 409,
                    "unavailable" => status == 503,
                    "request" => status >= 400 && ![401, 403, 404, 408, 409].contains(&status),
                    "param" => false,
                    r if r.starts_with('/') => {
                        status >= 400 && regex_match(r, &self.last.to_string())
                    }
                    _ => false,
                };
                if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "{method} {path}: expected catch [{c}], got status {status}"
                    ))
                }
            }
        }
    }

    fn assert_step(&mut self, kind: &str, v: &Value) -> Result<(), String> {
        let pair = |v: &Value| -> Result<(String, Value), String> {
            match v {
                Value::Object(m) if m.len() == 1 => m
                    .iter()
                    .next()
                    .map(|(k, x)| (k.clone(), x.clone()))
                    .ok_or_else(|| "empty".to_string()),
                Value::String(s) => Ok((s.clone(), Value::Null)),
                _ => Err(format!("malformed {kind}")),
            }
        };
        match kind {
            "set" => {
                let Value::Object(m) = v else {
                    return Err("malformed set".into());
                };
                for (path, var) in m {
                    let val = self
                        .lookup(path)
                        .ok_or_else(|| format!("set: [{path}] not found"))?;
                    self.stash
                        .insert(var.as_str().unwrap_or("").to_string(), val);
                }
                Ok(())
            }
            "transform_and_set" => {
                let Value::Object(m) = v else {
                    return Err("malformed transform_and_set".into());
                };
                for (var, expr) in m {
                    let e = expr.as_str().unwrap_or("");
                    let args = e
                        .strip_prefix("#base64EncodeCredentials(")
                        .and_then(|x| x.strip_suffix(')'))
                        .ok_or("unsupported transform")?;
                    let (a, b) = args.split_once(',').ok_or("bad args")?;
                    let fa = self
                        .lookup(a.trim())
                        .and_then(|x| x.as_str().map(String::from))
                        .unwrap_or_default();
                    let fb = self
                        .lookup(b.trim())
                        .and_then(|x| x.as_str().map(String::from))
                        .unwrap_or_default();
                    self.stash.insert(
                        var.clone(),
                        json!(
                            base64::engine::general_purpose::STANDARD.encode(format!("{fa}:{fb}"))
                        ),
                    );
                }
                Ok(())
            }
            "match" => {
                let (path, expected) = pair(v)?;
                let expected = self.subst(&expected);
                let actual = self.lookup(&path).unwrap_or(Value::Null);
                if values_match(&expected, &actual) {
                    Ok(())
                } else {
                    Err(format!("[{path}] expected {expected} but was {actual}"))
                }
            }
            "length" => {
                let (path, n) = pair(v)?;
                let actual = self
                    .lookup(&path)
                    .ok_or_else(|| format!("[{path}] not found"))?;
                let len = match &actual {
                    Value::Array(a) => a.len(),
                    Value::Object(o) => o.len(),
                    Value::String(s) => s.len(),
                    _ => return Err(format!("[{path}] has no length")),
                };
                if Some(len as u64) == self.subst(&n).as_u64() {
                    Ok(())
                } else {
                    Err(format!("[{path}] length {len}, expected {n}"))
                }
            }
            "is_true" | "is_false" | "exists" => {
                let (path, _) = pair(v)?;
                let actual = self.lookup(&path);
                let truthy = match &actual {
                    None | Some(Value::Null) | Some(Value::Bool(false)) => false,
                    Some(Value::String(s)) => !s.is_empty() && s != "false",
                    Some(Value::Number(n)) => n.as_f64() != Some(0.0),
                    _ => true,
                };
                let want = match kind {
                    "is_false" => !truthy,
                    "exists" => actual.is_some_and(|a| !a.is_null()),
                    _ => truthy,
                };
                if want {
                    Ok(())
                } else {
                    Err(format!("[{path}] {kind} failed"))
                }
            }
            "gt" | "gte" | "lt" | "lte" | "close_to" => {
                let (path, exp) = pair(v)?;
                let exp = self.subst(&exp);
                let a = self
                    .lookup(&path)
                    .and_then(|x| x.as_f64())
                    .ok_or_else(|| format!("[{path}] is not a number"))?;
                let (e, err) = if kind == "close_to" {
                    (
                        exp["value"].as_f64().unwrap_or(0.0),
                        exp["error"].as_f64().unwrap_or(0.0),
                    )
                } else {
                    (exp.as_f64().ok_or("expected not a number")?, 0.0)
                };
                let ok = match kind {
                    "gt" => a > e,
                    "gte" => a >= e,
                    "lt" => a < e,
                    "lte" => a <= e,
                    _ => (a - e).abs() <= err,
                };
                if ok {
                    Ok(())
                } else {
                    Err(format!("[{path}] {a} {kind} {e} failed"))
                }
            }
            "contains" => {
                let (path, exp) = pair(v)?;
                let exp = self.subst(&exp);
                let actual = self.lookup(&path).unwrap_or(Value::Null);
                let ok = actual
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| values_match(&exp, x)));
                if ok {
                    Ok(())
                } else {
                    Err(format!("[{path}] does not contain {exp}"))
                }
            }
            other => Err(format!("unsupported step [{other}]")),
        }
    }
}

fn regex_match(pattern: &str, s: &str) -> bool {
    let inner = pattern.trim().trim_start_matches('/').trim_end_matches('/');
    regex::Regex::new(&format!("(?sx){inner}"))
        .map(|r| r.is_match(s))
        .unwrap_or(false)
}

/// ES runner equality: regexes for `/.../` strings, numbers by value, objects and arrays deeply.
pub fn values_match(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(e), a)
            if e.trim().starts_with('/') && e.trim().ends_with('/') && e.trim().len() > 1 =>
        {
            let s = match a {
                Value::String(x) => x.clone(),
                o => o.to_string(),
            };
            regex_match(e, &s)
        }
        (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
        (Value::Number(e), Value::String(a)) | (Value::String(a), Value::Number(e)) => {
            a.parse::<f64>().ok() == e.as_f64()
        }
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, v)| a.get(k).is_some_and(|x| values_match(v, x)))
        }
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| values_match(x, y))
        }
        (e, a) => e == a,
    }
}
