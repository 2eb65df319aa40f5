//! The query string of a management request (`page`, `perPage`, `showInactive`, `kuery`,
//! `policyId`, ...), percent-decoded, and the subset of Kibana's KQL (`kuery`) the agent listing
//! understands:
//!
//! ```text
//! kuery   := or
//! or      := and ("or" and)*
//! and     := not ("and" not)*
//! not     := "not" not | "(" or ")" | term
//! term    := FIELD ":" value | FIELD ":" "(" value ("or" value)* ")"
//! value   := WORD | "quoted string"       (a trailing * matches any suffix)
//! ```
//!
//! Fields (with or without Kibana's `fleet-agents.` prefix): `status`, `policy_id`, `tags`,
//! `agent.id`, `agent.version`, `local_metadata.host.hostname`, `local_metadata.host.name`,
//! `last_checkin_status`, `type`, `policy_revision_idx` (the revision the agent runs; `0` for
//! none yet). Anything else is refused with the list, never ignored.

use std::collections::HashMap;

/// The decoded query parameters (the last value of a repeated one wins).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `a=1&b=x%20y` (`+` is a space, as in forms).
    pub fn parse(query: Option<&str>) -> Params {
        let mut map = HashMap::new();
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(decode(k), decode(v));
        }
        Params(map)
    }

    /// Sets a parameter.
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_owned(), value.to_owned());
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A positive integer parameter, `default` when absent; an error sentence when malformed.
    pub fn number(&self, name: &str, default: usize) -> Result<usize, String> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name} must be a positive integer, not {v:?}")),
        }
    }

    /// A boolean parameter (`true`/`false`), `false` when absent.
    pub fn flag(&self, name: &str) -> Result<bool, String> {
        match self.get(name) {
            None | Some("") | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(v) => Err(format!("{name} must be true or false, not {v:?}")),
        }
    }
}

/// Percent-decodes (and turns `+` into a space); invalid escapes stay as they are.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The fields a kuery may test.
pub const KUERY_FIELDS: [&str; 10] = [
    "status",
    "policy_id",
    "policy_revision_idx",
    "tags",
    "agent.id",
    "agent.version",
    "local_metadata.host.hostname",
    "local_metadata.host.name",
    "last_checkin_status",
    "type",
];

/// A parsed kuery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kuery {
    /// Any of these.
    Or(Vec<Kuery>),
    /// All of these.
    And(Vec<Kuery>),
    /// Not this.
    Not(Box<Kuery>),
    /// `field` has one of `values` (patterns ending in `*` match a prefix).
    Term {
        /// One of [`KUERY_FIELDS`].
        field: &'static str,
        /// Accepted values.
        values: Vec<String>,
    },
}

impl Kuery {
    /// Parses a kuery; one sentence saying what is wrong otherwise.
    pub fn parse(text: &str) -> Result<Kuery, String> {
        let tokens = tokenize(text)?;
        let mut p = Parser { tokens, at: 0 };
        let k = p.or()?;
        match p.tokens.get(p.at) {
            None => Ok(k),
            Some(t) => Err(format!("kuery: unexpected {t:?}")),
        }
    }

    /// Whether the kuery holds, `field` giving each field's values for the agent.
    pub fn matches(&self, field: &dyn Fn(&str) -> Vec<String>) -> bool {
        match self {
            Kuery::Or(list) => list.iter().any(|k| k.matches(field)),
            Kuery::And(list) => list.iter().all(|k| k.matches(field)),
            Kuery::Not(k) => !k.matches(field),
            Kuery::Term {
                field: name,
                values,
            } => {
                let have = field(name);
                values.iter().any(|want| {
                    have.iter().any(|h| match want.strip_suffix('*') {
                        Some(prefix) => h.starts_with(prefix),
                        None => h == want,
                    })
                })
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Colon,
    Word(String),
    Quoted(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ':' => {
                chars.next();
                out.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Colon,
                });
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => s.extend(chars.next()),
                        Some(c) => s.push(c),
                        None => return Err("kuery: unterminated quoted string".into()),
                    }
                }
                out.push(Token::Quoted(s));
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | ':' | '"') {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                out.push(Token::Word(s));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn keyword(&mut self, word: &str) -> bool {
        match self.tokens.get(self.at) {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case(word) => {
                self.at += 1;
                true
            }
            _ => false,
        }
    }

    fn or(&mut self) -> Result<Kuery, String> {
        let mut list = vec![self.and()?];
        while self.keyword("or") {
            list.push(self.and()?);
        }
        Ok(if list.len() == 1 {
            list.remove(0)
        } else {
            Kuery::Or(list)
        })
    }

    fn and(&mut self) -> Result<Kuery, String> {
        let mut list = vec![self.not()?];
        while self.keyword("and") {
            list.push(self.not()?);
        }
        Ok(if list.len() == 1 {
            list.remove(0)
        } else {
            Kuery::And(list)
        })
    }

    fn not(&mut self) -> Result<Kuery, String> {
        if self.keyword("not") {
            return Ok(Kuery::Not(Box::new(self.not()?)));
        }
        if self.tokens.get(self.at) == Some(&Token::Open) {
            self.at += 1;
            let inner = self.or()?;
            return match self.tokens.get(self.at) {
                Some(Token::Close) => {
                    self.at += 1;
                    Ok(inner)
                }
                _ => Err("kuery: missing )".into()),
            };
        }
        self.term()
    }

    fn term(&mut self) -> Result<Kuery, String> {
        let name = match self.tokens.get(self.at) {
            Some(Token::Word(w)) => w.clone(),
            other => return Err(format!("kuery: expected a field name, found {other:?}")),
        };
        let bare = name.strip_prefix("fleet-agents.").unwrap_or(&name);
        let Some(field) = KUERY_FIELDS.iter().find(|f| **f == bare) else {
            return Err(format!(
                "kuery: {name:?} is not a field fleet-edge filters on (one of: {})",
                KUERY_FIELDS.join(", ")
            ));
        };
        self.at += 1;
        if self.tokens.get(self.at) != Some(&Token::Colon) {
            return Err(format!("kuery: expected ':' after {name}"));
        }
        self.at += 1;
        let mut values = Vec::new();
        if self.tokens.get(self.at) == Some(&Token::Open) {
            self.at += 1;
            values.push(self.value()?);
            while self.keyword("or") {
                values.push(self.value()?);
            }
            if self.tokens.get(self.at) != Some(&Token::Close) {
                return Err("kuery: missing ) after the values".into());
            }
            self.at += 1;
        } else {
            values.push(self.value()?);
        }
        Ok(Kuery::Term { field, values })
    }

    fn value(&mut self) -> Result<String, String> {
        let v = match self.tokens.get(self.at) {
            Some(Token::Word(w) | Token::Quoted(w)) => w.clone(),
            other => return Err(format!("kuery: expected a value, found {other:?}")),
        };
        self.at += 1;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        let p = Params::parse(Some(
            "perPage=5&kuery=status%3Aonline+and+tags%3A%22a%20b%22&x",
        ));
        assert_eq!(p.get("kuery"), Some("status:online and tags:\"a b\""));
        assert_eq!(p.number("perPage", 20), Ok(5));
        assert_eq!(p.number("page", 1), Ok(1));
        assert_eq!(p.get("x"), Some(""));
        assert!(Params::parse(Some("page=0")).number("page", 1).is_err());
        assert!(Params::parse(Some("showInactive=yes"))
            .flag("showInactive")
            .is_err());
        assert_eq!(Params::parse(Some("a=%zz%4")).get("a"), Some("%zz%4"));
    }

    #[test]
    fn kuery_subset() {
        let agent = |f: &str| -> Vec<String> {
            match f {
                "status" => vec!["degraded".into()],
                "tags" => vec!["edge".into(), "site 7".into()],
                "policy_id" => vec!["p1".into()],
                "local_metadata.host.hostname" => vec!["gw-01".into()],
                _ => vec![],
            }
        };
        for (q, want) in [
            ("status:degraded", true),
            ("fleet-agents.status : (online or degraded)", true),
            ("status:online or tags:\"site 7\"", true),
            ("status:degraded and not policy_id:p1", false),
            ("local_metadata.host.hostname:gw-*", true),
            ("(status:online or status:error) and tags:edge", false),
            ("NOT status:online", true),
        ] {
            assert_eq!(Kuery::parse(q).unwrap().matches(&agent), want, "{q}");
        }
        for bad in [
            "status",
            "foo:bar",
            "status:(online",
            "(status:online",
            "status:\"x",
        ] {
            assert!(Kuery::parse(bad).is_err(), "{bad}");
        }
    }
}
