//! A native executor for the small subset of Painless that Fleet Server's update scripts are
//! written in (es-contract.md §3.7, S1–S9): statements `if/else`, assignments (`=`, `++`),
//! typed local declarations (`Map m = new HashMap();`), method calls (`remove`, `add`, `put`,
//! `contains`, `containsKey`, `get`, `size`, `isEmpty`), field and `[...]` access on `ctx`,
//! `params` and locals, literals (`null`, booleans, numbers, strings, `[:]`, `[]`, `[k: v]`,
//! `new HashMap()`, `new ArrayList()`), and `== != < > <= >= && || !`. Text outside the subset is
//! a compile error and a null dereference a runtime error, in ES's `script_exception` shape.
//! `update.rs` (updates) and `api_search.rs` (`_update_by_query`) compile and run scripts here.

use serde_json::{json, Value};

mod exec;
pub use exec::{compile_error, run, runtime_error, Outcome, RuntimeError};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Id(String),
    Str(String),
    Num(f64),
    Sym(&'static str),
}

const SYMS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "++", "--", "=", "<", ">", "!", "(", ")", "{", "}", "[",
    "]", ";", ".", ",", ":", "-", "+",
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
            let n = src[s..i]
                .trim_end_matches('.')
                .parse()
                .map_err(|_| CompileError {
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
                return Err(CompileError {
                    offset: s,
                    message: "unterminated string".into(),
                });
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
            message: format!(
                "unexpected character [{}].",
                &src[i..].chars().next().unwrap_or(' ')
            ),
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
    MapLit(Vec<(Expr, Expr)>),
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

const TYPES: &[&str] = &[
    "Map",
    "HashMap",
    "List",
    "ArrayList",
    "def",
    "String",
    "int",
    "long",
    "boolean",
    "Object",
];

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
        Err(CompileError {
            offset: self.off(),
            message: format!("invalid sequence of tokens near ['{near}']."),
        })
    }
    fn eat(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(x)) if *x == s) {
            self.pos += 1;
            return true;
        }
        false
    }
    fn expect(&mut self, s: &str) -> Result<(), CompileError> {
        if self.eat(s) {
            Ok(())
        } else {
            self.err()
        }
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
        const LEVELS: &[&[&str]] = &[
            &["||"],
            &["&&"],
            &["==", "!="],
            &["<", ">", "<=", ">="],
            &["+", "-"],
        ];
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
                let Some(Tok::Id(name)) = self.peek().cloned() else {
                    return self.err();
                };
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
        let Some(t) = self.peek().cloned() else {
            return self.err();
        };
        self.pos += 1;
        Ok(match t {
            Tok::Str(s) => Expr::Lit(Value::String(s)),
            Tok::Num(n) => Expr::Lit(if n.fract() == 0.0 {
                json!(n as i64)
            } else {
                json!(n)
            }),
            Tok::Id(id) => match id.as_str() {
                "null" => Expr::Lit(Value::Null),
                "true" => Expr::Lit(Value::Bool(true)),
                "false" => Expr::Lit(Value::Bool(false)),
                "new" => {
                    let Some(Tok::Id(ty)) = self.peek().cloned() else {
                        return self.err();
                    };
                    self.pos += 1;
                    self.expect("(")?;
                    self.expect(")")?;
                    match ty.as_str() {
                        "HashMap" | "LinkedHashMap" | "TreeMap" => Expr::NewMap,
                        "ArrayList" | "LinkedList" => Expr::NewList(Vec::new()),
                        _ => {
                            return Err(CompileError {
                                offset: at,
                                message: format!("cannot resolve type [{ty}]"),
                            })
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
                let mut entries = Vec::new();
                if !self.eat("]") {
                    loop {
                        let e = self.expr()?;
                        if self.eat(":") {
                            entries.push((e, self.expr()?));
                        } else if entries.is_empty() {
                            items.push(e);
                        } else {
                            return self.err();
                        }
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                if !entries.is_empty() {
                    if !items.is_empty() {
                        return self.err();
                    }
                    return Ok(Expr::MapLit(entries));
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
    let mut p = Parser {
        toks,
        pos: 0,
        len: source.len(),
    };
    let body = p.program()?;
    let mut locals = vec!["ctx".to_string(), "params".to_string()];
    check_vars(&body, &mut locals)?;
    Ok(Script {
        body,
        source: source.to_string(),
    })
}

fn check_vars(stmts: &[Stmt], locals: &mut Vec<String>) -> Result<(), CompileError> {
    fn ex(e: &Expr, l: &[String]) -> Result<(), CompileError> {
        match e {
            Expr::Var(v, at) if !l.contains(v) => Err(CompileError {
                offset: *at,
                message: format!("cannot resolve symbol [{v}]"),
            }),
            Expr::Field(a, _) | Expr::Not(a) | Expr::Neg(a) => ex(a, l),
            Expr::Index(a, b) | Expr::Bin(_, a, b) => ex(a, l).and(ex(b, l)),
            Expr::Call(a, _, args, _) => {
                ex(a, l)?;
                args.iter().try_for_each(|x| ex(x, l))
            }
            Expr::NewList(items) => items.iter().try_for_each(|x| ex(x, l)),
            Expr::MapLit(es) => es.iter().try_for_each(|(k, v)| ex(k, l).and(ex(v, l))),
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
