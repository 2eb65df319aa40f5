//! A native executor for the small subset of Painless that Fleet Server's update scripts are
//! written in (es-contract.md §3.7, S1–S9): statements `if/else`, assignments (`=`, `++`),
//! typed local declarations (`Map m = new HashMap();`), method calls (`remove`, `add`, `put`,
//! `contains`, `containsKey`, `get`, `size`, `isEmpty`), field and `[...]` access on `ctx`,
//! `params` and locals, literals (`null`, booleans, numbers, strings, `[:]`, `[]`,
//! `new HashMap()`, `new ArrayList()`), and `== != < > <= >= && || !`. Text outside the subset is a
//! compile error and a null dereference a runtime error, in ES's `script_exception` shape.
//! `scripts.rs` decides which scripts are accepted (the Fleet catalogue) and runs them here.

use crate::error::EsError;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Id(String),
    Str(String),
    Num(f64),
    Sym(&'static str),
}

const SYMS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "++", "--", "=", "<", ">", "!", "(", ")", "{", "}", "[", "]", ";",
    ".", ",", ":", "-", "+",
];

/// A parse failure with the byte offset it occurred at.
#[derive(Debug, Clone)]
pub struct CompileError {
    /// Offset in the source.
    pub offset: usize,
    /// ES-style message.
    pub message: String,
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, CompileError> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    'outer: while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if src[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if src[i..].starts_with("/*") {
            match src[i + 2..].find("*/") {
                Some(p) => i += p + 4,
                None => i = b.len(),
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Id(src[s..i].to_string()), s));
            continue;
        }
        if c.is_ascii_digit() {
            let s = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            let n = src[s..i].trim_end_matches('.').parse().map_err(|_| CompileError {
                offset: s,
                message: format!("invalid number [{}]", &src[s..i]),
            })?;
            out.push((Tok::Num(n), s));
            continue;
        }
        if c == b'"' || c == b'\'' {
            let s = i;
            i += 1;
            let mut v = String::new();
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                let ch = src[i..].chars().next().unwrap_or(' ');
                v.push(ch);
                i += ch.len_utf8();
            }
            if i >= b.len() {
                return Err(CompileError { offset: s, message: "unterminated string".into() });
            }
            i += 1;
            out.push((Tok::Str(v), s));
            continue;
        }
        for sym in SYMS {
            if src[i..].starts_with(sym) {
                out.push((Tok::Sym(sym), i));
                i += sym.len();
                continue 'outer;
            }
        }
        return Err(CompileError {
            offset: i,
            message: format!("unexpected character [{}].", &src[i..].chars().next().unwrap_or(' ')),
        });
    }
    Ok(out)
}

/// Expression AST.
#[derive(Debug, Clone)]
enum Expr {
    Lit(Value),
    Var(String, usize),
    Field(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Call(Box<Expr>, String, Vec<Expr>, usize),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(&'static str, Box<Expr>, Box<Expr>),
    NewMap,
    NewList(Vec<Expr>),
}

/// Statement AST.
#[derive(Debug, Clone)]
enum Stmt {
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    Assign(Expr, Expr, usize),
    Incr(Expr, f64, usize),
    Expr(Expr),
    Decl(String, Expr),
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    len: usize,
}

const TYPES: &[&str] = &["Map", "HashMap", "List", "ArrayList", "def", "String", "int", "long", "boolean", "Object"];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn off(&self) -> usize {
        self.toks.get(self.pos).map(|t| t.1).unwrap_or(self.len)
    }
    fn err<T>(&self) -> Result<T, CompileError> {
        let near = match self.peek() {
            Some(Tok::Id(s)) | Some(Tok::Str(s)) => s.clone(),
            Some(Tok::Num(n)) => n.to_string(),
            Some(Tok::Sym(s)) => (*s).to_string(),
            None => "<EOF>".into(),
        };
        Err(CompileError { offset: self.off(), message: format!("invalid sequence of tokens near ['{near}'].") })
    }
    fn eat(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(x)) if *x == s) {
            self.pos += 1;
            return true;
        }
        false
    }
    fn expect(&mut self, s: &str) -> Result<(), CompileError> {
        if self.eat(s) { Ok(()) } else { self.err() }
    }
    fn is_id(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Tok::Id(x)) if x == s)
    }

    fn program(&mut self) -> Result<Vec<Stmt>, CompileError> {
        let mut out = Vec::new();
        while self.peek().is_some() {
            if self.eat(";") {
                continue;
            }
            out.push(self.stmt()?);
        }
        Ok(out)
    }

    fn block(&mut self) -> Result<Vec<Stmt>, CompileError> {
        if self.eat("{") {
            let mut out = Vec::new();
            while !self.eat("}") {
                if self.peek().is_none() {
                    return self.err();
                }
                if self.eat(";") {
                    continue;
                }
                out.push(self.stmt()?);
            }
            Ok(out)
        } else {
            Ok(vec![self.stmt()?])
        }
    }

    fn stmt(&mut self) -> Result<Stmt, CompileError> {
        if self.is_id("if") {
            self.pos += 1;
            self.expect("(")?;
            let c = self.expr()?;
            self.expect(")")?;
            let then = self.block()?;
            let els = if self.is_id("else") {
                self.pos += 1;
                self.block()?
            } else {
                Vec::new()
            };
            return Ok(Stmt::If(c, then, els));
        }
        if let Some(Tok::Id(t)) = self.peek() {
            if TYPES.contains(&t.as_str()) {
                if let Some((Tok::Id(name), _)) = self.toks.get(self.pos + 1).cloned() {
                    self.pos += 2;
                    self.expect("=")?;
                    let v = self.expr()?;
                    self.end()?;
                    return Ok(Stmt::Decl(name, v));
                }
            }
        }
        let at = self.off();
        let lhs = self.expr()?;
        if self.eat("=") {
            let rhs = self.expr()?;
            self.end()?;
            return Ok(Stmt::Assign(lhs, rhs, at));
        }
        if self.eat("++") {
            self.end()?;
            return Ok(Stmt::Incr(lhs, 1.0, at));
        }
        if self.eat("--") {
            self.end()?;
            return Ok(Stmt::Incr(lhs, -1.0, at));
        }
        self.end()?;
        Ok(Stmt::Expr(lhs))
    }

    fn end(&mut self) -> Result<(), CompileError> {
        if self.eat(";") || self.peek().is_none() || matches!(self.peek(), Some(Tok::Sym("}"))) {
            Ok(())
        } else {
            self.err()
        }
    }

    fn expr(&mut self) -> Result<Expr, CompileError> {
        self.bin(0)
    }

    fn bin(&mut self, level: usize) -> Result<Expr, CompileError> {
        const LEVELS: &[&[&str]] = &[&["||"], &["&&"], &["==", "!="], &["<", ">", "<=", ">="], &["+", "-"]];
        if level >= LEVELS.len() {
            return self.unary();
        }
        let mut l = self.bin(level + 1)?;
        loop {
            let op = match self.peek() {
                Some(Tok::Sym(s)) if LEVELS[level].contains(s) => *s,
                _ => return Ok(l),
            };
            self.pos += 1;
            let r = self.bin(level + 1)?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    fn unary(&mut self) -> Result<Expr, CompileError> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, CompileError> {
        let mut e = self.primary()?;
        loop {
            if self.eat(".") {
                let at = self.off();
                let Some(Tok::Id(name)) = self.peek().cloned() else { return self.err() };
                self.pos += 1;
                if self.eat("(") {
                    let mut args = Vec::new();
                    if !self.eat(")") {
                        loop {
                            args.push(self.expr()?);
                            if self.eat(")") {
                                break;
                            }
                            self.expect(",")?;
                        }
                    }
                    e = Expr::Call(Box::new(e), name, args, at);
                } else {
                    e = Expr::Field(Box::new(e), name);
                }
            } else if self.eat("[") {
                let i = self.expr()?;
                self.expect("]")?;
                e = Expr::Index(Box::new(e), Box::new(i));
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, CompileError> {
        let at = self.off();
        let Some(t) = self.peek().cloned() else { return self.err() };
        self.pos += 1;
        Ok(match t {
            Tok::Str(s) => Expr::Lit(Value::String(s)),
            Tok::Num(n) => Expr::Lit(if n.fract() == 0.0 { json!(n as i64) } else { json!(n) }),
            Tok::Id(id) => match id.as_str() {
                "null" => Expr::Lit(Value::Null),
                "true" => Expr::Lit(Value::Bool(true)),
                "false" => Expr::Lit(Value::Bool(false)),
                "new" => {
                    let Some(Tok::Id(ty)) = self.peek().cloned() else { return self.err() };
                    self.pos += 1;
                    self.expect("(")?;
                    self.expect(")")?;
                    match ty.as_str() {
                        "HashMap" | "LinkedHashMap" | "TreeMap" => Expr::NewMap,
                        "ArrayList" | "LinkedList" => Expr::NewList(Vec::new()),
                        _ => {
                            return Err(CompileError { offset: at, message: format!("cannot resolve type [{ty}]") })
                        }
                    }
                }
                "ctx" | "params" => Expr::Var(id, at),
                _ => Expr::Var(id, at),
            },
            Tok::Sym("(") => {
                let e = self.expr()?;
                self.expect(")")?;
                e
            }
            Tok::Sym("[") => {
                if self.eat(":") {
                    self.expect("]")?;
                    return Ok(Expr::NewMap);
                }
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.expr()?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Expr::NewList(items)
            }
            _ => {
                self.pos -= 1;
                return self.err();
            }
        })
    }
}

/// A compiled script.
#[derive(Debug, Clone)]
pub struct Script {
    body: Vec<Stmt>,
    /// The source text.
    pub source: String,
}

/// Compiles a script; unknown variables are compile errors.
pub fn compile(source: &str) -> Result<Script, CompileError> {
    let toks = lex(source)?;
    let mut p = Parser { toks, pos: 0, len: source.len() };
    let body = p.program()?;
    let mut locals = vec!["ctx".to_string(), "params".to_string()];
    check_vars(&body, &mut locals)?;
    Ok(Script { body, source: source.to_string() })
}

fn check_vars(stmts: &[Stmt], locals: &mut Vec<String>) -> Result<(), CompileError> {
    fn ex(e: &Expr, l: &[String]) -> Result<(), CompileError> {
        match e {
            Expr::Var(v, at) if !l.contains(v) => {
                Err(CompileError { offset: *at, message: format!("cannot resolve symbol [{v}]") })
            }
            Expr::Field(a, _) | Expr::Not(a) | Expr::Neg(a) => ex(a, l),
            Expr::Index(a, b) | Expr::Bin(_, a, b) => ex(a, l).and(ex(b, l)),
            Expr::Call(a, _, args, _) => {
                ex(a, l)?;
                args.iter().try_for_each(|x| ex(x, l))
            }
            Expr::NewList(items) => items.iter().try_for_each(|x| ex(x, l)),
            _ => Ok(()),
        }
    }
    for s in stmts {
        match s {
            Stmt::If(c, a, b) => {
                ex(c, locals)?;
                check_vars(a, &mut locals.clone())?;
                check_vars(b, &mut locals.clone())?;
            }
            Stmt::Assign(a, b, _) => {
                ex(a, locals)?;
                ex(b, locals)?;
            }
            Stmt::Incr(a, _, _) | Stmt::Expr(a) => ex(a, locals)?,
            Stmt::Decl(n, v) => {
                ex(v, locals)?;
                locals.push(n.clone());
            }
        }
    }
    Ok(())
}

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
    if n.fract() == 0.0 && n.abs() < 9.0e15 { json!(n as i64) } else { json!(n) }
}

impl Env<'_> {
    fn eval(&mut self, e: &Expr) -> Result<Value, RuntimeError> {
        Ok(match e {
            Expr::Lit(v) => v.clone(),
            Expr::NewMap => Value::Object(Map::new()),
            Expr::NewList(items) => Value::Array(items.iter().map(|i| self.eval(i)).collect::<Result<_, _>>()?),
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
                    Value::Array(a) => a.get(i.as_u64().unwrap_or(u64::MAX) as usize).cloned().ok_or_else(|| RuntimeError {
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
                    return Ok(Value::Bool(truthy(&self.eval(a)?) && truthy(&self.eval(b)?)));
                }
                if *op == "||" {
                    return Ok(Value::Bool(truthy(&self.eval(a)?) || truthy(&self.eval(b)?)));
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
                        let (Some(p), Some(q)) = (num(&x), num(&y)) else { return Err(npe(0, "compareTo()")) };
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
                let argv: Vec<Value> = args.iter().map(|a| self.eval(a)).collect::<Result<_, _>>()?;
                let read_only = matches!(name.as_str(), "contains" | "containsKey" | "get" | "size" | "isEmpty" | "length" | "equals");
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
                    return Err(RuntimeError { offset: at, kind: "illegal_argument_exception", message: "invalid assignment target".into() })
                }
            }
        }
        let Expr::Var(name, _) = cur else { return Err(npe(at, "put()")) };
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
                    match lhs {
                        Expr::Field(b, _) | Expr::Index(b, _) => {
                            if self.eval(b)?.is_null() {
                                return Err(npe(*at, "put()"));
                            }
                        }
                        _ => {}
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
        (Value::Array(a), "get") => a.get(arg.as_u64().unwrap_or(u64::MAX) as usize).cloned().unwrap_or(Value::Null),
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
                message: format!("dynamic method [{}, {name}/{}] not found", type_name(r), args.len()),
            })
        }
    })
}

fn call_mut(place: &mut Value, name: &str, args: Vec<Value>, at: usize) -> Result<Value, RuntimeError> {
    let mut it = args.into_iter();
    let (a0, a1) = (it.next().unwrap_or(Value::Null), it.next().unwrap_or(Value::Null));
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
            if i < a.len() { a.remove(i) } else { Value::Null }
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
pub fn run(script: &Script, source: Value, id: &str, index: &str, op: &str, params: &Value) -> Result<Outcome, RuntimeError> {
    let ctx = json!({"_source": source, "_id": id, "_index": index, "op": op, "_version": 0});
    let mut env = Env { vars: HashMap::from([("ctx".to_string(), ctx)]), params };
    env.run(&script.body)?;
    let mut ctx = env.vars.remove("ctx").unwrap_or(Value::Null);
    let op = ctx.get("op").and_then(Value::as_str).unwrap_or("index").to_string();
    let source = ctx.get_mut("_source").map(Value::take).unwrap_or(Value::Null);
    Ok(Outcome { source, op })
}

fn stack(source: &str, offset: usize) -> Vec<String> {
    let start = offset.saturating_sub(25);
    let end = (offset + 25).min(source.len());
    let snippet: String = source.get(start..end).unwrap_or("").chars().map(|c| if c == '\n' { ' ' } else { c }).collect();
    vec![format!("... {snippet} ..."), format!("{}^---- HERE", " ".repeat(4 + offset - start))]
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
        assert_eq!(o.source, json!({"a":[1],"agent":{"id":"1","version":"9.0"}}));
        assert_eq!(o.op, "index");
    }

    #[test]
    fn noop_and_maps() {
        let o = exec("if (ctx._source.policy_id == params.id) {ctx._source.x = 1;} else {ctx.op = \"noop\";}", json!({"policy_id":"a"}), json!({"id":"b"}));
        assert_eq!(o.op, "noop");
        let src = "if (ctx._source['outputs']==null) {ctx._source['outputs']=new HashMap();}\nif (ctx._source['outputs'][params.output_name]==null) {ctx._source['outputs'][params.output_name]=new HashMap();}\nif (ctx._source['outputs'][params.output_name].to_retire_api_key_ids==null) {ctx._source['outputs'][params.output_name].to_retire_api_key_ids=new ArrayList();}\nif (!ctx._source['outputs'][params.output_name].to_retire_api_key_ids.contains(params.to_retire_api_key_ids)) {ctx._source['outputs'][params.output_name].to_retire_api_key_ids.add(params.to_retire_api_key_ids);}";
        let p = json!({"output_name":"default","to_retire_api_key_ids":{"id":"k","retired_at":"t"}});
        let o = exec(src, json!({}), p.clone());
        let o2 = exec(src, o.source, p);
        assert_eq!(o2.source, json!({"outputs":{"default":{"to_retire_api_key_ids":[{"id":"k","retired_at":"t"}]}}}));
    }

    #[test]
    fn locals_and_increment() {
        let o = exec("Map map = new HashMap(); map.put(\"id\", ctx._id); ctx._source.l = [map]; ctx._source.n++; ctx._source.agent = [:]; ctx._source.agent.id = ctx._id;", json!({"n":1}), json!({}));
        assert_eq!(o.source, json!({"l":[{"id":"A1"}],"n":2,"agent":{"id":"A1"}}));
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
