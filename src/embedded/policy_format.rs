//! Policy files as people write them: JSON (Kibana's full agent policy) or YAML, in the shape of
//! Elastic's standalone `elastic-agent.yml` that Kibana's "Add agent → Run standalone" produces
//! (`outputs`, `agent`, `inputs`, ...). Variables such as `${ES_USERNAME}` are plain strings here
//! and reach the agent untouched, which resolves them. A file that does not parse is refused with
//! its line and column.

use std::path::Path;

use serde_json::{json, Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// Deepest nesting accepted (a policy is a few levels deep; this keeps recursion bounded).
const MAX_DEPTH: usize = 64;

/// Whether a file name is a policy file: `.json`, `.yml` or `.yaml`.
pub fn is_policy_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e == "json" || e == "yml" || e == "yaml")
}

/// Parses a policy file's content by its extension (YAML for `.yml`/`.yaml`, JSON otherwise);
/// when it does not parse, one sentence starting `line L column C:` (or saying what is wrong
/// with the whole file).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Value, String> {
    let yaml = path.extension().is_some_and(|e| e == "yml" || e == "yaml");
    if !yaml {
        return serde_json::from_slice(bytes)
            .map_err(|e| format!("line {} column {}: {e}", e.line(), e.column()));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let docs = YamlLoader::load_from_str(text).map_err(|e| {
        let at = e.marker();
        format!("line {} column {}: {}", at.line(), at.col() + 1, e.info())
    })?;
    match docs.as_slice() {
        [doc @ Yaml::Hash(_)] => to_json(doc, 0),
        [] => Err("the file is empty".into()),
        [_] => Err("the top level is not a mapping".into()),
        _ => Err("the file holds more than one YAML document".into()),
    }
}

fn to_json(y: &Yaml, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("nested too deeply".into());
    }
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => json!(b),
        Yaml::Integer(i) => json!(i),
        Yaml::Real(s) => match y.as_f64().and_then(serde_json::Number::from_f64) {
            Some(n) => Value::Number(n),
            None => return Err(format!("{s} is not a number JSON can hold")),
        },
        Yaml::String(s) => json!(s),
        Yaml::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| to_json(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Hash(h) => {
            let mut out = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => return Err(format!("a mapping key is not a string: {other:?}")),
                };
                out.insert(key, to_json(v, depth + 1)?);
            }
            Value::Object(out)
        }
        Yaml::Alias(_) => return Err("YAML aliases are not supported".into()),
        Yaml::BadValue => return Err("a value is not valid YAML".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_with_positions() {
        let yml = Path::new("edge.yml");
        let v = parse(
            yml,
            b"outputs:\n  default:\n    type: elasticsearch\n    hosts: [\"https://es:9200\"]\n    username: '${ES_USERNAME}'\n    password: ${ES_PASSWORD}\ninputs: []\nagent:\n  monitoring:\n    enabled: false\n",
        )
        .unwrap();
        assert_eq!(v["outputs"]["default"]["username"], "${ES_USERNAME}");
        assert_eq!(v["outputs"]["default"]["password"], "${ES_PASSWORD}");
        assert_eq!(v["agent"]["monitoring"]["enabled"], false);
        let err = parse(yml, b"outputs:\n  default: [\n").unwrap_err();
        assert!(err.contains("line") && err.contains("column"), "{err}");
        let err = parse(Path::new("p.json"), b"{\n  \"a\": ,\n}").unwrap_err();
        assert!(err.starts_with("line 2 column"), "{err}");
        assert!(parse(yml, b"- a\n").is_err());
        assert_eq!(
            parse(yml, b"a: &x 1\nb: *x\n").unwrap()["b"],
            1,
            "anchors expand"
        );
        assert!(is_policy_file(Path::new("x.yaml")) && !is_policy_file(Path::new("x.txt")));
    }

    /// Every file of `examples/` is a policy the loader accepts: it parses, names an output,
    /// and every input uses an output it defines.
    #[test]
    fn the_examples_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if !is_policy_file(&path) {
                continue;
            }
            let v = parse(&path, &std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let outputs = v["outputs"].as_object().unwrap();
            assert!(!outputs.is_empty(), "{}", path.display());
            for input in v["inputs"].as_array().unwrap() {
                let used = input["use_output"].as_str().unwrap_or("default");
                assert!(outputs.contains_key(used), "{}: {used}", path.display());
            }
            seen += 1;
        }
        assert!(seen >= 3, "examples found: {seen}");
    }
}
