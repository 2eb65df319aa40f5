//! Request bodies decoded the way Fleet Server's Go `json.Decoder` decodes them: only the first
//! JSON value is read, `null` is accepted wherever Go accepts it (the helpers below), and a body
//! that does not decode is refused with Go's wording of the cause (fleet-protocol.md §1.7,
//! `Bad request: unable to decode <endpoint> request: <cause>`), so logs and support answers
//! read the same as Elastic's. Syntax errors come from a scanner that follows Go's
//! `encoding/json` scanner; type errors are serde's, re-phrased with the Go struct and field
//! names of each body's [`GoBody`] table.

use serde::de::DeserializeOwned;

use crate::backend::OpError;
// Moved to `transform::gojson` (the backend's interface types use them); kept here for the
// branches developed alongside. To be removed.
pub use crate::transform::gojson::{null_as_default, null_strings};

/// Go's names for one request body: what a type error names (`json: cannot unmarshal string
/// into Go struct field CheckinRequest.status of type api.CheckinRequestStatus`).
#[derive(Debug)]
pub struct GoBody {
    /// The `<endpoint>` of `unable to decode <endpoint> request` (`checkin`, `audit/unenroll`).
    pub request: &'static str,
    /// The Go type of the whole body (`api.CheckinRequest`).
    pub go_type: &'static str,
    /// Typed members: dotted JSON path (array elements do not add a step, as in Go's error
    /// context), the Go struct holding the member, and the member's Go type.
    pub fields: &'static [GoField],
}

/// One typed member of a [`GoBody`].
#[derive(Debug)]
pub struct GoField {
    /// Dotted JSON path (`metadata.tags`).
    pub path: &'static str,
    /// The innermost Go struct that holds the member (`EnrollMetadata`).
    pub go_struct: &'static str,
    /// The Go type of the member (`[]string`; `string` for the elements of a `[]string`
    /// are listed under the same path with [`GoField::element`]).
    pub go_type: &'static str,
    /// Whether this entry describes the elements of an array member rather than the member.
    pub element: bool,
    /// Whether the Go type is an integer (a number that is not one is `number <literal>`).
    pub integer: bool,
}

impl GoField {
    /// A member that is not an array element.
    pub const fn member(
        path: &'static str,
        go_struct: &'static str,
        go_type: &'static str,
    ) -> Self {
        GoField {
            path,
            go_struct,
            go_type,
            element: false,
            integer: false,
        }
    }

    /// An integer member.
    pub const fn integer(
        path: &'static str,
        go_struct: &'static str,
        go_type: &'static str,
    ) -> Self {
        GoField {
            path,
            go_struct,
            go_type,
            element: false,
            integer: true,
        }
    }

    /// The elements of an array member.
    pub const fn elements(
        path: &'static str,
        go_struct: &'static str,
        go_type: &'static str,
    ) -> Self {
        GoField {
            path,
            go_struct,
            go_type,
            element: true,
            integer: false,
        }
    }
}

/// Decodes the first JSON value of `body` as `T`; on failure the 400 carries Go's cause (an
/// [`OpError::Invalid`]: it rides to the worker, which answers it after checking the key).
pub fn decode<T: DeserializeOwned>(body: &[u8], names: &GoBody) -> Result<T, OpError> {
    let bad = |cause: String| {
        OpError::Invalid(format!(
            "unable to decode {} request: {cause}",
            names.request
        ))
    };
    let scan = scan_first_value(body).map_err(bad)?;
    let first = &body[scan.start..scan.end];
    // serde would fill a struct from an array; Go refuses anything but an object or null.
    match first.first() {
        Some(b'{' | b'n') => {}
        Some(&other) => return Err(bad(root_type_error(other, names))),
        None => return Err(bad("EOF".into())),
    }
    // Go decodes a top-level `null` into the zero struct: no members set.
    let first: &[u8] = if first == b"null" { b"{}" } else { first };
    serde_json::from_slice(first).map_err(|e| {
        let offset = scan.start + byte_offset(first, e.line(), e.column());
        bad(type_error_cause(body, offset, &e, &scan, names))
    })
}

/// The cause Go's `Decoder.Decode` gives for a body that is JSON but does not fit `names`.
/// `offset` is where serde stopped, in `body`. Only serde's type complaints have a Go
/// equivalent; anything else (a duplicate member, which Go would take) keeps serde's words.
fn type_error_cause(
    body: &[u8],
    offset: usize,
    error: &serde_json::Error,
    scan: &Scan,
    names: &GoBody,
) -> String {
    let text = error_text(error);
    if !(text.starts_with("invalid type:") || text.starts_with("invalid value:")) {
        return text;
    }
    // serde stops inside a scalar it refuses, but just before an object or array it refuses.
    let containing = scan
        .values
        .iter()
        .filter(|v| v.start <= offset && offset <= v.end)
        .max_by_key(|v| v.depth);
    let next = body
        .get(offset + 1..)
        .and_then(|rest| rest.iter().position(|c| !c.is_ascii_whitespace()))
        .map(|skip| offset + 1 + skip);
    let following = scan.values.iter().find(|v| Some(v.start) == next);
    let span = match (containing, following) {
        (Some(c), Some(f)) if f.depth > c.depth => f,
        (Some(c), _) => c,
        (None, Some(f)) => f,
        (None, None) => return error_text(error),
    };
    let first = body.get(span.start).copied().unwrap_or(b'{');
    if span.depth == 0 {
        return root_type_error(first, names);
    }
    let kind = json_kind(first);
    let field = names
        .fields
        .iter()
        .find(|f| f.path == span.path && f.element == span.in_array);
    match field {
        Some(f) => {
            let value = if kind == "number" && f.integer {
                let literal =
                    String::from_utf8_lossy(body.get(span.start..span.end).unwrap_or(b""));
                format!("number {literal}")
            } else {
                kind.to_owned()
            };
            format!(
                "json: cannot unmarshal {value} into Go struct field {}.{} of type {}",
                f.go_struct, f.path, f.go_type
            )
        }
        None => error_text(error),
    }
}

/// What Go calls a JSON value, from its first byte.
fn json_kind(first: u8) -> &'static str {
    match first {
        b'"' => "string",
        b'{' => "object",
        b'[' => "array",
        b't' | b'f' => "bool",
        b'n' => "null",
        _ => "number",
    }
}

/// A body that is not an object (nor `null`) cannot fill the Go struct.
fn root_type_error(first: u8, names: &GoBody) -> String {
    format!(
        "json: cannot unmarshal {} into Go value of type {}",
        json_kind(first),
        names.go_type
    )
}

/// serde's message without its ` at line L column C` suffix (for causes Go has no words for).
fn error_text(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// serde_json's (1-based line, column) → byte offset of the character it stopped at.
fn byte_offset(body: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match body[start..].iter().position(|&b| b == b'\n') {
            Some(nl) => start += nl + 1,
            None => break,
        }
    }
    (start + column).saturating_sub(1).min(body.len())
}

/// Deepest nesting scanned (serde_json refuses deeper bodies anyway; Go's limit is 10000).
const MAX_DEPTH: usize = 128;

/// One JSON value found by the scanner: where it is and which member holds it.
#[derive(Debug)]
struct ValueSpan {
    start: usize,
    end: usize,
    depth: usize,
    /// Dotted member path (array indices left out, as Go's error context does).
    path: String,
    /// Whether the value is an element of an array (directly).
    in_array: bool,
}

/// What the scan of the first value found.
#[derive(Debug)]
struct Scan {
    /// Where the first value starts (after leading white space).
    start: usize,
    /// Where the first value ends (what `Decoder.Decode` reads; the rest is left unread).
    end: usize,
    values: Vec<ValueSpan>,
}

/// Go's `Decoder.Decode` read of the first value: `EOF` for an empty body, `unexpected EOF`
/// when it ends inside the value, else the scanner's `invalid character ...` text.
fn scan_first_value(body: &[u8]) -> Result<Scan, String> {
    let mut scanner = Scanner {
        body,
        pos: 0,
        values: Vec::new(),
    };
    scanner.skip_space();
    if scanner.pos >= body.len() {
        return Err("EOF".into());
    }
    let start = scanner.pos;
    scanner.value(0, String::new(), false)?;
    Ok(Scan {
        start,
        end: scanner.pos,
        values: scanner.values,
    })
}

struct Scanner<'a> {
    body: &'a [u8],
    pos: usize,
    values: Vec<ValueSpan>,
}

/// Go's `quoteChar`: the offending byte as Go prints it in a syntax error.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => "'\\''".into(),
        b'"' => "'\"'".into(),
        b'\\' => "'\\\\'".into(),
        0x07 => "'\\a'".into(),
        0x08 => "'\\b'".into(),
        0x0c => "'\\f'".into(),
        b'\n' => "'\\n'".into(),
        b'\r' => "'\\r'".into(),
        b'\t' => "'\\t'".into(),
        0x0b => "'\\v'".into(),
        0x00..=0x1f | 0x7f => format!("'\\x{c:02x}'"),
        0x20..=0x7e => format!("'{}'", c as char),
        // Go converts the byte to the rune of the same number (Latin-1).
        0x80..=0xa0 | 0xad => format!("'\\u{c:04x}'"),
        _ => format!("'{}'", char::from(c)),
    }
}

impl Scanner<'_> {
    fn skip_space(&mut self) {
        while matches!(self.body.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Result<u8, String> {
        self.body
            .get(self.pos)
            .copied()
            .ok_or_else(|| "unexpected EOF".to_owned())
    }

    fn invalid(&self, c: u8, context: &str) -> String {
        format!("invalid character {} {context}", quote_char(c))
    }

    fn value(&mut self, depth: usize, path: String, in_array: bool) -> Result<(), String> {
        let start = self.pos;
        let c = self.peek()?;
        if matches!(c, b'{' | b'[') && depth >= MAX_DEPTH {
            // Go's scanner words its own (deeper) limit this way; ours keeps the stack bounded.
            return Err(self.invalid(c, "exceeded max depth"));
        }
        match c {
            b'{' => self.object(depth, &path)?,
            b'[' => self.array(depth, &path)?,
            b'"' => self.string()?,
            b'-' | b'0'..=b'9' => self.number()?,
            b't' => self.literal("true")?,
            b'f' => self.literal("false")?,
            b'n' => self.literal("null")?,
            _ => return Err(self.invalid(c, "looking for beginning of value")),
        }
        self.values.push(ValueSpan {
            start,
            end: self.pos,
            depth,
            path,
            in_array,
        });
        Ok(())
    }

    fn object(&mut self, depth: usize, path: &str) -> Result<(), String> {
        self.pos += 1;
        self.skip_space();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let c = self.peek()?;
            if c != b'"' {
                return Err(self.invalid(c, "looking for beginning of object key string"));
            }
            let key_start = self.pos + 1;
            self.string()?;
            let key = String::from_utf8_lossy(&self.body[key_start..self.pos - 1]).into_owned();
            self.skip_space();
            let c = self.peek()?;
            if c != b':' {
                return Err(self.invalid(c, "after object key"));
            }
            self.pos += 1;
            self.skip_space();
            let member = if path.is_empty() {
                key
            } else {
                format!("{path}.{key}")
            };
            self.value(depth + 1, member, false)?;
            self.skip_space();
            match self.peek()? {
                b',' => {
                    self.pos += 1;
                    self.skip_space();
                }
                b'}' => {
                    self.pos += 1;
                    return Ok(());
                }
                c => return Err(self.invalid(c, "after object key:value pair")),
            }
        }
    }

    fn array(&mut self, depth: usize, path: &str) -> Result<(), String> {
        self.pos += 1;
        self.skip_space();
        if self.peek()? == b']' {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.value(depth + 1, path.to_owned(), true)?;
            self.skip_space();
            match self.peek()? {
                b',' => {
                    self.pos += 1;
                    self.skip_space();
                }
                b']' => {
                    self.pos += 1;
                    return Ok(());
                }
                c => return Err(self.invalid(c, "after array element")),
            }
        }
    }

    fn string(&mut self) -> Result<(), String> {
        self.pos += 1;
        loop {
            let c = self.peek()?;
            self.pos += 1;
            match c {
                b'"' => return Ok(()),
                b'\\' => {
                    let e = self.peek()?;
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            for _ in 0..4 {
                                let h = self.peek()?;
                                if !h.is_ascii_hexdigit() {
                                    return Err(
                                        self.invalid(h, "in \\u hexadecimal character escape")
                                    );
                                }
                                self.pos += 1;
                            }
                        }
                        _ => return Err(self.invalid(e, "in string escape code")),
                    }
                }
                0x00..=0x1f => return Err(self.invalid(c, "in string literal")),
                _ => {}
            }
        }
    }

    fn digits(&mut self) {
        while matches!(self.body.get(self.pos), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn number(&mut self) -> Result<(), String> {
        if self.peek()? == b'-' {
            self.pos += 1;
            let c = self.peek()?;
            if !c.is_ascii_digit() {
                return Err(self.invalid(c, "in numeric literal"));
            }
        }
        if self.peek()? == b'0' {
            self.pos += 1;
        } else {
            self.digits();
        }
        if self.body.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            let c = self.peek()?;
            if !c.is_ascii_digit() {
                return Err(self.invalid(c, "after decimal point in numeric literal"));
            }
            self.digits();
        }
        if matches!(self.body.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.body.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            let c = self.peek()?;
            if !c.is_ascii_digit() {
                return Err(self.invalid(c, "in exponent of numeric literal"));
            }
            self.digits();
        }
        Ok(())
    }

    fn literal(&mut self, word: &str) -> Result<(), String> {
        self.pos += 1;
        for expected in word.bytes().skip(1) {
            let c = self.peek()?;
            if c != expected {
                return Err(self.invalid(
                    c,
                    &format!("in literal {word} (expecting {})", quote_char(expected)),
                ));
            }
            self.pos += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "json_body_tests.rs"]
mod tests;
