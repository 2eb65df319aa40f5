//! JSON encoded exactly as Go's `encoding/json` writes a `map[string]any` with
//! `json.NewEncoder(w).Encode(m)`: keys sorted byte-wise at every level, compact, `<` `>` `&`
//! and U+2028/U+2029 escaped, every number re-printed as a float64 the Go way, trailing newline.
//! This is the input of the output-key `permissions_hash` (fleet-protocol.md §3.7): matching it
//! byte for byte keeps agent documents stable when fleet-edge and Elastic's Fleet Server share a
//! cluster (a different hash would re-key every agent once).

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Go's encoding of `value`, trailing newline included.
pub fn encode(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out.push('\n');
    out
}

/// Lowercase hex SHA-256 of [`encode`]: the `permissions_hash` of a role-descriptor set.
pub fn permissions_hash(value: &Value) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, encode(value).as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n.as_f64().unwrap_or(0.0), out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_value(v, out);
                }
            }
            out.push('}');
        }
    }
}

/// strconv.FormatFloat(f, 'f', -1, 64) inside [1e-6, 1e21), else 'e' with Go's exponent clean-up.
fn write_number(f: f64, out: &mut String) {
    if !f.is_finite() {
        // Go refuses to encode these; they cannot come from parsed JSON.
        out.push('0');
        return;
    }
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        out.push_str(&format!("{f}"));
        return;
    }
    // Rust: "1e21", "1.5e-7"; Go: "1e+21", "1.5e-07" then cleaned to "1.5e-7".
    let rust = format!("{f:e}");
    match rust.split_once('e') {
        Some((mantissa, exp)) => {
            out.push_str(mantissa);
            out.push('e');
            if exp.starts_with('-') {
                out.push_str(exp);
            } else {
                out.push('+');
                out.push_str(exp);
            }
        }
        None => out.push_str(&rust),
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `deserialize_with` for a member Go decodes into a non-pointer string, number, bool, slice or
/// map: `null` leaves the zero value, exactly like the member being absent.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `deserialize_with` for a `[]string` member: the list may be `null`, and so may each element
/// (Go leaves a `null` element as `""`).
pub fn null_strings<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: Deserializer<'de>,
{
    let items: Option<Vec<Option<String>>> = Option::deserialize(deserializer)?;
    Ok(items
        .unwrap_or_default()
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_escapes_and_prints_numbers_like_go() {
        let v: Value = serde_json::from_str(
            r#"{"b":[1.0,1.5e3,1e21,1e-7,-0.0,0.000001],"a":"<x>&\u2028 é /","c\t":null}"#,
        )
        .unwrap();
        assert_eq!(
            encode(&v),
            "{\"a\":\"\\u003cx\\u003e\\u0026\\u2028 é /\",\"b\":[1,1500,1e+21,1e-7,-0,0.000001],\"c\\t\":null}\n"
        );
    }

    #[test]
    fn matches_vectors_from_the_real_go_encoder_when_present() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/reference/go-json-hash/vectors.json"
        );
        let vectors: Vec<Value> = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).unwrap(),
            // A fresh clone has no ../shared: the built-in case below still runs.
            Err(_) => vec![json!({
                "input": "{\"_elastic_agent_checks\":{\"cluster\":[\"monitor\"]}}",
                "encoded": "{\"_elastic_agent_checks\":{\"cluster\":[\"monitor\"]}}\n",
                "sha256": "f672e8907e9dc67e088d02da3a9f1969e1580f93260bef1b94060c058a08bac5"
            })],
        };
        assert!(!vectors.is_empty());
        for v in vectors {
            let input: Value = serde_json::from_str(v["input"].as_str().unwrap()).unwrap();
            assert_eq!(
                encode(&input),
                v["encoded"].as_str().unwrap(),
                "input {}",
                v["input"]
            );
            assert_eq!(permissions_hash(&input), v["sha256"].as_str().unwrap());
        }
    }
}
