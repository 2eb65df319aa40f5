//! The import graph of `src/` is one-way (issue 14 item 4; review architecture-2026-12 §C2).
//!
//! Reads every production file of `src/` (test modules and `#[cfg(test)]` items left out), takes
//! the `crate::…`, `super::…` and `self::…` paths of its `use` declarations and of its code, and
//! resolves each to the file that declares the module it names. Two graphs come out: one between
//! the top-level modules (`api`, `backend`, `core`, …) and one between files. Neither may hold a
//! cycle, except for the edges and file groups listed in [`ALLOWED_EDGES`] and
//! [`ALLOWED_FILE_CYCLES`], each with the change that removes it. A listed edge that no longer
//! exists fails the test too, so the list only shrinks.
//!
//! What the lines mean: a parent module declaring or re-exporting its own children is structure,
//! not dependence, so edges from a module to its descendants are not counted. A path through a
//! re-export (`crate::backend::Store`) counts as an edge to the module that re-exports it.
//!
//! Target direction (not all enforced, only the absence of cycles is):
//! `main → net → core → api → {http, model, backend::interface}`; `backend → {model, config,
//! tls}`; `mgmt → {backend, http, model}`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level edges that still close a cycle, each with what removes it. Tighten after merging.
const ALLOWED_EDGES: &[(&str, &str, &str)] = &[];

/// File groups allowed to form one cycle (review §C2: "no cycle remains among `src/` files
/// except the small `http/{encode,error,gzip}.rs` triangle inside `http`").
const ALLOWED_FILE_CYCLES: &[&[&str]] = &[&["http/encode.rs", "http/error.rs", "http/gzip.rs"]];

/// One production source file: its module path and its text with comments and literals blanked.
struct Source {
    path: String,
    module: Vec<String>,
    code: String,
}

/// An import: from file, to module path (already absolute), at line.
struct Import {
    from: String,
    target: Vec<String>,
    line: usize,
}

#[test]
fn src_has_no_import_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    let report = check(&files, ALLOWED_EDGES, ALLOWED_FILE_CYCLES);
    assert!(report.is_empty(), "{}", report.join("\n"));
}

/// The checker, run on a made-up tree: it must see a cycle when one is added, and must not see
/// one through test-only code.
#[test]
fn the_checker_finds_an_added_cycle_and_ignores_test_code() {
    let tree = |a_uses_b: &str| {
        vec![
            ("lib.rs".to_owned(), "pub mod a;\npub mod b;\n".to_owned()),
            (
                "a/mod.rs".to_owned(),
                format!("//! a\nmod inner;\n{a_uses_b}\npub fn f() {{}}\n"),
            ),
            (
                "a/inner.rs".to_owned(),
                "use super::f;\nconst X: &str = \"crate::b::g\";\n".to_owned(),
            ),
            (
                "b.rs".to_owned(),
                "use crate::a::f;\n/// [crate::a]\npub fn g() { f() }\n#[cfg(test)]\nmod tests {\n    use crate::b::*;\n}\n".to_owned(),
            ),
        ]
    };
    assert!(check(&tree(""), &[], &[]).is_empty());
    let in_test = "#[cfg(test)]\nmod tests {\n    use crate::b::g;\n    fn t() { g() }\n}";
    assert!(check(&tree(in_test), &[], &[]).is_empty());
    let field = "struct S {\n    #[cfg(test)]\n    x: crate::b::G,\n    y: u8,\n}";
    assert!(check(&tree(field), &[], &[]).is_empty());

    let report = check(&tree("use crate::{b::g};"), &[], &[]);
    assert!(report.iter().any(|l| l.contains("a → b")), "{report:?}");
    let report = check(&tree("fn h() { crate::b::g() }"), &[], &[]);
    assert!(report.iter().any(|l| l.contains("cycle")), "{report:?}");
    assert!(check(&tree("fn h() { crate::b::g() }"), &[("a", "b", "why")], &[]).is_empty());
    let report = check(&tree(""), &[("a", "b", "why")], &[]);
    assert!(report.iter().any(|l| l.contains("no longer")), "{report:?}");
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// Runs the whole check on `(path relative to src, text)` pairs; returns the problems found.
fn check(
    files: &[(String, String)],
    allowed: &[(&str, &str, &str)],
    allowed_file_cycles: &[&[&str]],
) -> Vec<String> {
    let sources = production_sources(files);
    let modules: BTreeMap<Vec<String>, String> = sources
        .iter()
        .map(|s| (s.module.clone(), s.path.clone()))
        .collect();
    let mut file_edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut top_edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut allowed_used = BTreeSet::new();
    for source in &sources {
        for import in imports(source) {
            let Some((target_module, target_file)) = resolve(&modules, &import.target) else {
                continue;
            };
            // A module naming its own descendants (declaring, re-exporting) is structure.
            if target_module.starts_with(&source.module) {
                continue;
            }
            let evidence = format!("{}:{}", import.from, import.line);
            let from = source.module.first().cloned().unwrap_or_default();
            let to = target_module.first().cloned().unwrap_or_default();
            if let Some(used) = allowed.iter().position(|(f, t, _)| *f == from && *t == to) {
                // An allowed edge is left out of both graphs.
                allowed_used.insert(used);
                continue;
            }
            file_edges
                .entry(source.path.clone())
                .or_default()
                .entry(target_file.clone())
                .or_insert_with(|| evidence.clone());
            if from != to && !from.is_empty() && !to.is_empty() {
                top_edges
                    .entry(from)
                    .or_default()
                    .entry(to)
                    .or_insert(evidence);
            }
        }
    }

    let mut problems = Vec::new();
    for (n, (from, to, why)) in allowed.iter().enumerate() {
        if !allowed_used.contains(&n) {
            problems.push(format!(
                "allowed edge {from} → {to} ({why}) no longer exists: remove it from ALLOWED_EDGES"
            ));
        }
    }
    for cycle in cycles(&top_edges) {
        problems.push(format!(
            "import cycle between top-level modules {}:\n{}",
            cycle.join(", "),
            describe(&top_edges, &cycle)
        ));
    }
    let allowed_files: Vec<BTreeSet<String>> = allowed_file_cycles
        .iter()
        .map(|group| group.iter().map(|f| (*f).to_owned()).collect())
        .collect();
    for cycle in cycles(&file_edges) {
        let members: BTreeSet<String> = cycle.iter().cloned().collect();
        if allowed_files.iter().any(|group| members.is_subset(group)) {
            continue;
        }
        problems.push(format!(
            "import cycle between files {}:\n{}",
            cycle.join(", "),
            describe(&file_edges, &cycle)
        ));
    }
    problems
}

/// The edges inside one cycle, each with the first line that makes it.
fn describe(edges: &BTreeMap<String, BTreeMap<String, String>>, cycle: &[String]) -> String {
    let members: BTreeSet<&String> = cycle.iter().collect();
    let mut lines = Vec::new();
    for from in cycle {
        for (to, evidence) in edges.get(from).into_iter().flatten() {
            if members.contains(to) {
                lines.push(format!("  {from} → {to} ({evidence})"));
            }
        }
    }
    lines.join("\n")
}

/// Strongly connected components of more than one node (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeMap<String, String>>,
        index: BTreeMap<&'a str, (usize, usize)>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, node: &'a str) {
        let n = w.index.len();
        w.index.insert(node, (n, n));
        w.stack.push(node);
        w.on_stack.insert(node);
        let edges = w.edges;
        for next in edges.get(node).into_iter().flat_map(|t| t.keys()) {
            let next = next.as_str();
            if !w.index.contains_key(next) {
                visit(w, next);
                let low = w.index[next].1;
                let entry = w.index.get_mut(node).unwrap();
                entry.1 = entry.1.min(low);
            } else if w.on_stack.contains(next) {
                let idx = w.index[next].0;
                let entry = w.index.get_mut(node).unwrap();
                entry.1 = entry.1.min(idx);
            }
        }
        let (idx, low) = w.index[node];
        if idx == low {
            let mut component = Vec::new();
            loop {
                let top = w.stack.pop().unwrap();
                w.on_stack.remove(top);
                component.push(top.to_owned());
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                w.found.push(component);
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in edges.keys() {
        if !walk.index.contains_key(node.as_str()) {
            visit(&mut walk, node);
        }
    }
    walk.found
}

/// The longest declared module that is a prefix of `path`, and its file.
fn resolve<'a>(
    modules: &'a BTreeMap<Vec<String>, String>,
    path: &[String],
) -> Option<(&'a Vec<String>, &'a String)> {
    (0..=path.len())
        .rev()
        .find_map(|n| modules.get_key_value(&path[..n]))
}

/// The production files: `main.rs` (the binary) and test-only modules left out.
fn production_sources(files: &[(String, String)]) -> Vec<Source> {
    let mut test_only: BTreeSet<String> = BTreeSet::new();
    let mut test_dirs: Vec<String> = Vec::new();
    for (path, text) in files {
        let code = blank(text);
        if code.trim_start().starts_with("#![cfg(test)]") {
            test_only.insert(path.clone());
        }
        let children_dir = children_dir(path);
        for (name, attributes) in declared_modules(&code, text) {
            if !attributes.contains("cfg(test)") {
                continue;
            }
            let file = match path_attribute(&attributes) {
                Some(p) => format!("{}{p}", parent_dir(path)),
                None => format!("{children_dir}{name}.rs"),
            };
            test_only.insert(file);
            test_only.insert(format!("{children_dir}{name}/mod.rs"));
            test_dirs.push(format!("{children_dir}{name}/"));
        }
    }
    files
        .iter()
        .filter(|(path, _)| path != "main.rs" && !test_only.contains(path))
        .filter(|(path, _)| !test_dirs.iter().any(|d| path.starts_with(d.as_str())))
        .map(|(path, text)| Source {
            path: path.clone(),
            module: module_of(path),
            code: without_test_items(&blank(text)),
        })
        .collect()
}

fn module_of(path: &str) -> Vec<String> {
    let stem = path.trim_end_matches(".rs");
    let mut parts: Vec<String> = stem.split('/').map(str::to_owned).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn parent_dir(path: &str) -> String {
    path.rfind('/')
        .map(|i| path[..=i].to_owned())
        .unwrap_or_default()
}

/// Where the files of `path`'s child modules live.
fn children_dir(path: &str) -> String {
    if path == "lib.rs" || path.ends_with("/mod.rs") || path == "mod.rs" {
        parent_dir(path)
    } else {
        format!("{}/", path.trim_end_matches(".rs"))
    }
}

/// `mod name;` declarations with the attribute text before each (from the blanked code; the
/// `#[path = "…"]` value is read back from the original text, which has the same offsets).
fn declared_modules(code: &str, text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut attributes = String::new();
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with("#[") {
            attributes.push_str(&text[offset..offset + line.len()]);
        } else if let Some(name) = module_declaration(trimmed) {
            out.push((name, std::mem::take(&mut attributes)));
        } else if !trimmed.is_empty() {
            attributes.clear();
        }
        offset += line.len();
    }
    out
}

fn module_declaration(line: &str) -> Option<String> {
    let rest = line.strip_prefix("pub(crate) ").unwrap_or(line);
    let rest = rest.strip_prefix("pub ").unwrap_or(rest);
    let name = rest.strip_prefix("mod ")?.strip_suffix(';')?;
    Some(name.trim().to_owned())
}

fn path_attribute(attributes: &str) -> Option<String> {
    let start = attributes.find("#[path = \"")? + "#[path = \"".len();
    let end = attributes[start..].find('"')?;
    Some(attributes[start..start + end].to_owned())
}

/// The text with comments, string and character literals replaced by spaces (line breaks
/// kept), so that only code remains.
fn blank(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let keep = |c: u8| if c == b'\n' { '\n' } else { ' ' };
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                out.push(' ');
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            while i < bytes.len() {
                if bytes[i..].starts_with(b"/*") {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if bytes[i..].starts_with(b"*/") {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(keep(bytes[i]));
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(bytes, i) {
            // r"…", r#"…"#, br"…"
            let open = bytes[i..].iter().position(|&c| c == b'"').unwrap() + 1;
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let body_end = bytes[i + open..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(bytes.len(), |p| i + open + p + close.len());
            for &c in &bytes[i..body_end] {
                out.push(keep(c));
            }
            i = body_end;
        } else if bytes[i] == b'"' {
            out.push(' ');
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    out.push(' ');
                    i += 1;
                }
                out.push(keep(bytes[i]));
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else if bytes[i] == b'\'' && char_literal_len(&bytes[i..]).is_some() {
            let len = char_literal_len(&bytes[i..]).unwrap();
            out.push_str(&" ".repeat(len));
            i += len;
        } else {
            // Copy one UTF-8 character.
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The number of `#`s of a raw string starting at `i`, if one does.
fn raw_string_start(bytes: &[u8], i: usize) -> Option<usize> {
    if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
        return None;
    }
    let mut j = i;
    if bytes.get(j) == Some(&b'b') {
        j += 1;
    }
    if bytes.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = bytes[j..].iter().take_while(|&&c| c == b'#').count();
    (bytes.get(j + hashes) == Some(&b'"')).then_some(hashes)
}

/// The length of a character literal at the start of `bytes` (`'a'`, `'\n'`, `'\u{..}'`), or
/// `None` for a lifetime.
fn char_literal_len(bytes: &[u8]) -> Option<usize> {
    if bytes.get(1) == Some(&b'\\') {
        let end = bytes[2..].iter().position(|&c| c == b'\'')?;
        return Some(end + 3);
    }
    let ch = std::str::from_utf8(&bytes[1..bytes.len().min(5)])
        .ok()
        .or_else(|| std::str::from_utf8(&bytes[1..bytes.len().min(2)]).ok())?
        .chars()
        .next()?;
    let len = ch.len_utf8();
    (bytes.get(1 + len) == Some(&b'\'')).then_some(len + 2)
}

/// The blanked code without the items marked `#[cfg(test)]` (a statement, a field, or a block).
fn without_test_items(code: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let mut end = MARK.len();
        // Further attributes belong to the same item.
        loop {
            let ahead = &item[end..];
            let trimmed = ahead.trim_start();
            if trimmed.starts_with("#[") {
                let skip = ahead.len() - trimmed.len();
                end += skip + trimmed.find(']').map_or(trimmed.len(), |p| p + 1);
            } else {
                break;
            }
        }
        let mut depth = 0i32;
        for (offset, c) in item[end..].char_indices() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' => depth -= 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end += offset + 1;
                        break;
                    }
                }
                ';' | ',' if depth == 0 => {
                    end += offset + 1;
                    break;
                }
                _ => {}
            }
            if depth < 0 {
                end += offset;
                break;
            }
        }
        // Keep line numbers: the skipped item becomes its line breaks.
        out.extend(item[..end].chars().filter(|&c| c == '\n'));
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The absolute module paths one file names, with line numbers.
fn imports(source: &Source) -> Vec<Import> {
    let code = &source.code;
    let mut found = Vec::new();
    // Inline modules (`mod opcode { … }`) change what `super` means inside them.
    let mut inline: Vec<(String, i32)> = Vec::new();
    let mut depth = 0i32;
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let chars: Vec<(usize, char)> = code.char_indices().collect();
    let mut k = 0;
    while k < chars.len() {
        let (at, c) = chars[k];
        match c {
            '{' => {
                depth += 1;
                k += 1;
                continue;
            }
            '}' => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                k += 1;
                continue;
            }
            _ => {}
        }
        let word_start = at == 0 || !is_ident(code[..at].chars().next_back().unwrap_or(' '));
        if !word_start || !is_ident(c) {
            k += 1;
            continue;
        }
        let word_end = code[at..]
            .find(|ch: char| !is_ident(ch))
            .map_or(code.len(), |p| at + p);
        let word = &code[at..word_end];
        let here: Vec<String> = source
            .module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(m, _)| m.clone()))
            .collect();
        match word {
            "mod" => {
                let after = code[word_end..].trim_start();
                let name_len = after.find(|ch: char| !is_ident(ch)).unwrap_or(after.len());
                if after[name_len..].trim_start().starts_with('{') {
                    inline.push((after[..name_len].to_owned(), depth));
                }
            }
            "use" => {
                let end = code[word_end..]
                    .find(';')
                    .map_or(code.len(), |p| word_end + p);
                for path in expand_use_tree(&code[word_end..end]) {
                    if let Some(target) = absolute(&here, &path) {
                        found.push(Import {
                            from: source.path.clone(),
                            target,
                            line: line_of(at),
                        });
                    }
                }
                let skip_to = end;
                while k < chars.len() && chars[k].0 < skip_to {
                    k += 1;
                }
                continue;
            }
            "crate" | "super" | "self" => {
                let (path, end) = path_at(code, at);
                if path.len() > 1 {
                    if let Some(target) = absolute(&here, &path) {
                        found.push(Import {
                            from: source.path.clone(),
                            target,
                            line: line_of(at),
                        });
                    }
                }
                while k < chars.len() && chars[k].0 < end {
                    k += 1;
                }
                continue;
            }
            _ => {}
        }
        while k < chars.len() && chars[k].0 < word_end {
            k += 1;
        }
    }
    found
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A `a::b::c` path starting at `at`, as segments, and where it ends.
fn path_at(code: &str, at: usize) -> (Vec<String>, usize) {
    let mut segments = Vec::new();
    let mut pos = at;
    loop {
        let rest = &code[pos..];
        let len = rest.find(|ch: char| !is_ident(ch)).unwrap_or(rest.len());
        if len == 0 {
            break;
        }
        segments.push(rest[..len].to_owned());
        pos += len;
        let after = &code[pos..];
        let trimmed = after.trim_start();
        match trimmed.strip_prefix("::") {
            Some(next) if next.trim_start().starts_with(|c: char| is_ident(c)) => {
                pos += after.len() - next.trim_start().len();
            }
            _ => break,
        }
    }
    (segments, pos)
}

/// The paths of a use tree (`crate::{a::b, c::{d, e}}` → `crate::a::b`, `crate::c::d`, …).
fn expand_use_tree(tree: &str) -> Vec<Vec<String>> {
    fn expand(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
        let tree = tree.trim();
        let (head, group) = match tree.find('{') {
            Some(open) => {
                let close = tree.rfind('}').unwrap_or(tree.len());
                (&tree[..open], Some(&tree[open + 1..close]))
            }
            None => (tree, None),
        };
        let mut path = prefix.to_vec();
        for segment in head.split("::") {
            let segment = segment.split_whitespace().next().unwrap_or("");
            if !segment.is_empty() && segment != "*" {
                path.push(segment.to_owned());
            }
        }
        match group {
            None => out.push(path),
            Some(group) => {
                for member in split_top_level(group) {
                    expand(&path, member, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    expand(&[], tree, &mut out);
    out
}

fn split_top_level(group: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&group[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// The crate-absolute form of a path written in module `here`; `None` for other crates.
fn absolute(here: &[String], path: &[String]) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    let mut base: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "self" => here.to_vec(),
        "super" => here[..here.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    for segment in rest {
        if segment == "super" {
            base.pop();
        } else if segment != "self" {
            base.push(segment.clone());
        }
    }
    Some(base)
}
