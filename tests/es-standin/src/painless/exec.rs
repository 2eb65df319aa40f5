//! Execution of compiled Painless-subset scripts (see the parent module for the subset): a
//! small evaluator over `serde_json::Value` with Java-like null-pointer and dynamic-method errors,
//! plus the ES `script_exception` bodies for compile and runtime errors.

use super::{CompileError, Expr, Script, Stmt};
use crate::error::EsError;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// A runtime failure (Java exception type and message).
#[derive(Debug, Clone)]
pub struct RuntimeError {
    /// Offset in the source.
    pub offset: usize,
    /// Java exception type in snake case.
    pub kind: &'static str,
    /// Message.
    pub message: String,
}

fn npe(at: usize, what: &str) -> RuntimeError {
    RuntimeError {
        offset: at,
        kind: "null_pointer_exception",
        message: format!("Cannot invoke \"Object.{what}\" because the receiver is null"),
    }
}

struct Env<'a> {
    vars: HashMap<String, Value>,
    params: &'a Value,
}

fn truthy(v: &Value) -> bool {
    matches!(v, Value::Bool(true))
}

fn key_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn js_num(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

impl Env<'_> {
    fn eval(&mut self, e: &Expr) -> Result<Value, RuntimeError> {
        Ok(match e {
            Expr::Lit(v) => v.clone(),
            Expr::NewMap => Value::Object(Map::new()),
            Expr::MapLit(es) => {
                let mut m = Map::new();
                for (k, v) in es {
                    let k = key_of(&self.eval(k)?);
                    let v = self.eval(v)?;
                    m.insert(k, v);
                }
                Value::Object(m)
            }
            Expr::NewList(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.eval(i))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Var(name, _) if name == "params" => self.params.clone(),
            Expr::Var(name, _) => self.vars.get(name).cloned().unwrap_or(Value::Null),
            Expr::Field(base, f) => {
                let b = self.eval(base)?;
                match (&b, f.as_str()) {
                    (Value::Object(m), _) => m.get(f).cloned().unwrap_or(Value::Null),
                    (Value::Array(a), "length") => json!(a.len()),
                    (Value::Null, _) => return Err(npe(0, &format!("get(\"{f}\")"))),
                    _ => {
                        return Err(RuntimeError {
                            offset: 0,
                            kind: "illegal_argument_exception",
                            message: format!("dynamic getter [{}, {f}] not found", type_name(&b)),
                        })
                    }
                }
            }
            Expr::Index(base, idx) => {
                let b = self.eval(base)?;
                let i = self.eval(idx)?;
                match &b {
                    Value::Object(m) => m.get(&key_of(&i)).cloned().unwrap_or(Value::Null),
                    Value::Array(a) => a
                        .get(i.as_u64().unwrap_or(u64::MAX) as usize)
                        .cloned()
                        .ok_or_else(|| RuntimeError {
                            offset: 0,
                            kind: "index_out_of_bounds_exception",
                            message: format!("Index {i} out of bounds for length {}", a.len()),
                        })?,
                    Value::Null => return Err(npe(0, "get(Object)")),
                    _ => Value::Null,
                }
            }
            Expr::Not(a) => Value::Bool(!truthy(&self.eval(a)?)),
            Expr::Neg(a) => js_num(-num(&self.eval(a)?).unwrap_or(0.0)),
            Expr::Bin(op, a, b) => {
                if *op == "&&" {
                    return Ok(Value::Bool(
                        truthy(&self.eval(a)?) && truthy(&self.eval(b)?),
                    ));
                }
                if *op == "||" {
                    return Ok(Value::Bool(
                        truthy(&self.eval(a)?) || truthy(&self.eval(b)?),
                    ));
                }
                let (x, y) = (self.eval(a)?, self.eval(b)?);
                match *op {
                    "==" => Value::Bool(values_equal(&x, &y)),
                    "!=" => Value::Bool(!values_equal(&x, &y)),
                    "+" => match (&x, &y) {
                        (Value::String(s), o) => Value::String(format!("{s}{}", key_of(o))),
                        _ => js_num(num(&x).unwrap_or(0.0) + num(&y).unwrap_or(0.0)),
                    },
                    "-" => js_num(num(&x).unwrap_or(0.0) - num(&y).unwrap_or(0.0)),
                    _ => {
                        let (Some(p), Some(q)) = (num(&x), num(&y)) else {
                            return Err(npe(0, "compareTo()"));
                        };
                        Value::Bool(match *op {
                            "<" => p < q,
                            ">" => p > q,
                            "<=" => p <= q,
                            _ => p >= q,
                        })
                    }
                }
            }
            Expr::Call(recv, name, args, at) => {
                let argv: Vec<Value> = args
                    .iter()
                    .map(|a| self.eval(a))
                    .collect::<Result<_, _>>()?;
                let read_only = matches!(
                    name.as_str(),
                    "contains" | "containsKey" | "get" | "size" | "isEmpty" | "length" | "equals"
                );
                if read_only {
                    let r = self.eval(recv)?;
                    return call_ro(&r, name, &argv, *at);
                }
                let place = self.place_mut(recv, *at)?;
                call_mut(place, name, argv, *at)?
            }
        })
    }

    /// Resolves an lvalue to a mutable slot, creating map entries as needed (like Java `put`).
    fn place_mut(&mut self, e: &Expr, at: usize) -> Result<&mut Value, RuntimeError> {
        let mut path = Vec::new();
        let mut cur = e;
        loop {
            match cur {
                Expr::Field(b, f) => {
                    path.push(Value::String(f.clone()));
                    cur = b;
                }
                Expr::Index(b, i) => {
                    let k = self.eval(i)?;
                    path.push(k);
                    cur = b;
                }
                Expr::Var(name, _) if name != "params" => break,
                _ => {
                    return Err(RuntimeError {
                        offset: at,
                        kind: "illegal_argument_exception",
                        message: "invalid assignment target".into(),
                    })
                }
            }
        }
        let Expr::Var(name, _) = cur else {
            return Err(npe(at, "put()"));
        };
        let mut slot = self.vars.entry(name.clone()).or_insert(Value::Null);
        for k in path.into_iter().rev() {
            slot = match slot {
                Value::Object(m) => m.entry(key_of(&k)).or_insert(Value::Null),
                Value::Array(a) => {
                    let i = k.as_u64().unwrap_or(u64::MAX) as usize;
                    let len = a.len();
                    a.get_mut(i).ok_or(RuntimeError {
                        offset: at,
                        kind: "index_out_of_bounds_exception",
                        message: format!("Index {i} out of bounds for length {len}"),
                    })?
                }
                _ => return Err(npe(at, &format!("put(\"{}\")", key_of(&k)))),
            };
        }
        Ok(slot)
    }

    fn run(&mut self, stmts: &[Stmt]) -> Result<(), RuntimeError> {
        for s in stmts {
            match s {
                Stmt::If(c, a, b) => {
                    if truthy(&self.eval(c)?) {
                        self.run(a)?;
                    } else {
                        self.run(b)?;
                    }
                }
                Stmt::Assign(lhs, rhs, at) => {
                    let v = self.eval(rhs)?;
                    // the parent of the target must exist (Java NPE otherwise)
                    if let Expr::Field(b, _) | Expr::Index(b, _) = lhs {
                        if self.eval(b)?.is_null() {
                            return Err(npe(*at, "put()"));
                        }
                    }
                    *self.place_mut(lhs, *at)? = v;
                }
                Stmt::Incr(lhs, d, at) => {
                    let cur = self.eval(lhs)?;
                    let n = num(&cur).ok_or_else(|| npe(*at, "intValue()"))?;
                    *self.place_mut(lhs, *at)? = js_num(n + d);
                }
                Stmt::Expr(e) => {
                    self.eval(e)?;
                }
                Stmt::Decl(n, v) => {
                    let val = self.eval(v)?;
                    self.vars.insert(n.clone(), val);
                }
            }
        }
        Ok(())
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "java.util.HashMap",
        Value::Array(_) => "java.util.ArrayList",
        Value::String(_) => "java.lang.String",
        Value::Number(_) => "java.lang.Integer",
        Value::Bool(_) => "java.lang.Boolean",
        Value::Null => "null",
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn call_ro(r: &Value, name: &str, args: &[Value], at: usize) -> Result<Value, RuntimeError> {
    let arg = args.first().cloned().unwrap_or(Value::Null);
    Ok(match (r, name) {
        (Value::Null, _) => return Err(npe(at, &format!("{name}()"))),
        (Value::Array(a), "contains") => Value::Bool(a.iter().any(|x| values_equal(x, &arg))),
        (Value::Object(m), "containsKey") => Value::Bool(m.contains_key(&key_of(&arg))),
        (Value::Object(m), "get") => m.get(&key_of(&arg)).cloned().unwrap_or(Value::Null),
        (Value::Array(a), "get") => a
            .get(arg.as_u64().unwrap_or(u64::MAX) as usize)
            .cloned()
            .unwrap_or(Value::Null),
        (Value::Array(a), "size") => json!(a.len()),
        (Value::Object(m), "size") => json!(m.len()),
        (Value::Array(a), "isEmpty") => Value::Bool(a.is_empty()),
        (Value::Object(m), "isEmpty") => Value::Bool(m.is_empty()),
        (Value::String(s), "length") => json!(s.encode_utf16().count()),
        (Value::String(s), "isEmpty") => Value::Bool(s.is_empty()),
        (_, "equals") => Value::Bool(values_equal(r, &arg)),
        _ => {
            return Err(RuntimeError {
                offset: at,
                kind: "illegal_argument_exception",
                message: format!(
                    "dynamic method [{}, {name}/{}] not found",
                    type_name(r),
                    args.len()
                ),
            })
        }
    })
}

fn call_mut(
    place: &mut Value,
    name: &str,
    args: Vec<Value>,
    at: usize,
) -> Result<Value, RuntimeError> {
    let mut it = args.into_iter();
    let (a0, a1) = (
        it.next().unwrap_or(Value::Null),
        it.next().unwrap_or(Value::Null),
    );
    Ok(match (place, name) {
        (Value::Null, _) => return Err(npe(at, &format!("{name}()"))),
        (Value::Object(m), "remove") => m.remove(&key_of(&a0)).unwrap_or(Value::Null),
        (Value::Object(m), "put") => m.insert(key_of(&a0), a1).unwrap_or(Value::Null),
        (Value::Array(a), "add") => {
            a.push(a0);
            Value::Bool(true)
        }
        (Value::Array(a), "remove") => {
            let i = a0.as_u64().unwrap_or(u64::MAX) as usize;
            if i < a.len() {
                a.remove(i)
            } else {
                Value::Null
            }
        }
        (p, _) => {
            return Err(RuntimeError {
                offset: at,
                kind: "illegal_argument_exception",
                message: format!("dynamic method [{}, {name}/2] not found", type_name(p)),
            })
        }
    })
}

/// Result of running a script against a document.
#[derive(Debug)]
pub struct Outcome {
    /// The (possibly modified) `_source`.
    pub source: Value,
    /// `ctx.op` after the script (`index`, `noop`, `delete`, `create`, `none`).
    pub op: String,
}

/// Runs an update script with `ctx._source`, `ctx._id`, `ctx._index`, `ctx.op` and `params`.
pub fn run(
    script: &Script,
    source: Value,
    id: &str,
    index: &str,
    op: &str,
    params: &Value,
) -> Result<Outcome, RuntimeError> {
    let ctx = json!({"_source": source, "_id": id, "_index": index, "op": op, "_version": 0});
    let mut env = Env {
        vars: HashMap::from([("ctx".to_string(), ctx)]),
        params,
    };
    env.run(&script.body)?;
    let mut ctx = env.vars.remove("ctx").unwrap_or(Value::Null);
    let op = ctx
        .get("op")
        .and_then(Value::as_str)
        .unwrap_or("index")
        .to_string();
    let source = ctx
        .get_mut("_source")
        .map(Value::take)
        .unwrap_or(Value::Null);
    Ok(Outcome { source, op })
}

fn stack(source: &str, offset: usize) -> Vec<String> {
    let start = offset.saturating_sub(25);
    let end = (offset + 25).min(source.len());
    let snippet: String = source
        .get(start..end)
        .unwrap_or("")
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    vec![
        format!("... {snippet} ..."),
        format!("{}^---- HERE", " ".repeat(4 + offset - start)),
    ]
}

/// ES `script_exception` "compile error".
pub fn compile_error(source: &str, e: &CompileError) -> EsError {
    EsError::new(400, "script_exception", "compile error")
        .with("script_stack", json!(stack(source, e.offset)))
        .with("script", source)
        .with("lang", "painless")
        .with("position", json!({"offset": e.offset, "start": e.offset.saturating_sub(25), "end": (e.offset + 25).min(source.len())}))
        .caused_by(EsError::illegal_argument(e.message.clone()))
}

/// ES `script_exception` "runtime error".
pub fn runtime_error(source: &str, e: &RuntimeError) -> EsError {
    EsError::new(400, "script_exception", "runtime error")
        .with("script_stack", json!(stack(source, e.offset)))
        .with("script", source)
        .with("lang", "painless")
        .with("position", json!({"offset": e.offset, "start": e.offset.saturating_sub(25), "end": (e.offset + 25).min(source.len())}))
        .caused_by(EsError::new(400, e.kind, e.message.clone()))
}

#[cfg(test)]
mod tests {
    use super::super::compile;
    use super::*;

    fn exec(src: &str, doc: Value, params: Value) -> Outcome {
        run(&compile(src).unwrap(), doc, "A1", "i", "index", &params).unwrap()
    }

    #[test]
    fn assignments_conditions_and_removal() {
        let o = exec(
            "ctx._source.a = params.x; if (params.y != \"\") { ctx._source.agent.version = params.y; } ctx._source.remove('gone');",
            json!({"agent":{"id":"1"},"gone":1}),
            json!({"x":[1],"y":"9.0"}),
        );
        assert_eq!(
            o.source,
            json!({"a":[1],"agent":{"id":"1","version":"9.0"}})
        );
        assert_eq!(o.op, "index");
    }

    #[test]
    fn noop_and_maps() {
        let o = exec("if (ctx._source.policy_id == params.id) {ctx._source.x = 1;} else {ctx.op = \"noop\";}", json!({"policy_id":"a"}), json!({"id":"b"}));
        assert_eq!(o.op, "noop");
        let src = "if (ctx._source['outputs']==null) {ctx._source['outputs']=new HashMap();}\nif (ctx._source['outputs'][params.output_name]==null) {ctx._source['outputs'][params.output_name]=new HashMap();}\nif (ctx._source['outputs'][params.output_name].to_retire_api_key_ids==null) {ctx._source['outputs'][params.output_name].to_retire_api_key_ids=new ArrayList();}\nif (!ctx._source['outputs'][params.output_name].to_retire_api_key_ids.contains(params.to_retire_api_key_ids)) {ctx._source['outputs'][params.output_name].to_retire_api_key_ids.add(params.to_retire_api_key_ids);}";
        let p =
            json!({"output_name":"default","to_retire_api_key_ids":{"id":"k","retired_at":"t"}});
        let o = exec(src, json!({}), p.clone());
        let o2 = exec(src, o.source, p);
        assert_eq!(
            o2.source,
            json!({"outputs":{"default":{"to_retire_api_key_ids":[{"id":"k","retired_at":"t"}]}}})
        );
    }

    #[test]
    fn map_literals() {
        let o = exec("ctx._source.file.Status = params.status; if (params.hash != '') { ctx._source.transithash = ['sha256': params.hash]; }", json!({"file":{}}), json!({"status":"READY","hash":"h"}));
        assert_eq!(
            o.source,
            json!({"file":{"Status":"READY"},"transithash":{"sha256":"h"}})
        );
    }

    #[test]
    fn locals_and_increment() {
        let o = exec("Map map = new HashMap(); map.put(\"id\", ctx._id); ctx._source.l = [map]; ctx._source.n++; ctx._source.agent = [:]; ctx._source.agent.id = ctx._id;", json!({"n":1}), json!({}));
        assert_eq!(
            o.source,
            json!({"l":[{"id":"A1"}],"n":2,"agent":{"id":"A1"}})
        );
    }

    #[test]
    fn errors() {
        assert!(compile("ctx._source.a = = 1").is_err());
        assert!(compile("foo.bar = 1").is_err());
        let s = compile("ctx._source.agent.version = 1").unwrap();
        let e = run(&s, json!({}), "1", "i", "index", &json!({})).unwrap_err();
        assert_eq!(e.kind, "null_pointer_exception");
        let es = runtime_error(&s.source, &e).envelope();
        assert_eq!(es["error"]["reason"], "runtime error");
    }
}
