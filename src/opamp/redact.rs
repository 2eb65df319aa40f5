//! Secret redaction of a collector's effective configuration before it is stored, as Fleet
//! Server does it (`elastic-agent-libs/redact.Redact` with `WithIgnoreKeys("routekey")`): string
//! values under keys that name a credential become `REDACTED`, a `name`/`value` pair whose name
//! is such a key has its value redacted, and URLs with user information get
//! `REDACTED:REDACTED` in its place.

use serde_json::{Map, Value};

/// The replacement text.
pub const REDACTED: &str = "REDACTED";
/// Keys never redacted even though they contain a credential word.
const IGNORED_KEYS: &[&str] = &["routekey"];

/// Redacts `value` in place (objects anywhere in the tree, and objects or strings directly
/// inside arrays, as the Go walk reaches them).
pub fn redact(value: &mut Value) {
    if let Value::Object(map) = value {
        redact_map(map);
    }
}

fn redact_map(map: &mut Map<String, Value>) {
    let name_is_secret = map
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("name") && v.as_str().is_some_and(is_secret_key));
    if name_is_secret {
        if let Some(value_key) = map
            .keys()
            .find(|k| k.eq_ignore_ascii_case("value"))
            .cloned()
        {
            map.insert(value_key, Value::String(REDACTED.into()));
        }
    }
    for (key, val) in map.iter_mut() {
        match val {
            Value::Object(inner) => redact_map(inner),
            Value::Array(items) => {
                for item in items.iter_mut() {
                    match item {
                        Value::Object(inner) => redact_map(inner),
                        Value::String(s) => {
                            if let Some(r) = redact_url(s) {
                                *s = r;
                            }
                        }
                        _ => {}
                    }
                }
            }
            Value::String(s) => {
                if is_secret_key(key) {
                    *s = REDACTED.into();
                } else if let Some(r) = redact_url(s) {
                    *s = r;
                }
            }
            _ => {}
        }
    }
}

/// `redactKey`: the key names a credential.
fn is_secret_key(key: &str) -> bool {
    if IGNORED_KEYS.contains(&key) {
        return false;
    }
    let k = key.to_ascii_lowercase();
    [
        "auth",
        "certificate",
        "passphrase",
        "password",
        "token",
        "key",
        "secret",
    ]
    .iter()
    .any(|word| k.contains(word))
}

/// `redactURL`: `scheme://user[:password]@host...` → `scheme://REDACTED:REDACTED@host...`.
fn redact_url(s: &str) -> Option<String> {
    let (scheme, rest) = s.split_once("://")?;
    let valid_scheme = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return None;
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (_, host) = authority.rsplit_once('@')?;
    Some(format!("{scheme}://{REDACTED}:{REDACTED}@{host}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credential_keys_name_value_pairs_and_urls_are_redacted() {
        let mut v = json!({
            "exporters": {"otlp": {
                "endpoint": "https://user:pw@apm.example:8200/path",
                "headers": {"Authorization": "ApiKey abc", "routekey": "kept"},
                "api_key": "k", "timeout": "5s", "port_key": 5
            }},
            "extensions": [{"name": "x-secret-token", "value": "s3"}, "http://u:p@h", "plain"],
            "receivers": {"list": [{"name": "ok", "value": "v"}]}
        });
        redact(&mut v);
        assert_eq!(
            v,
            json!({
                "exporters": {"otlp": {
                    "endpoint": "https://REDACTED:REDACTED@apm.example:8200/path",
                    "headers": {"Authorization": "REDACTED", "routekey": "kept"},
                    "api_key": "REDACTED", "timeout": "5s", "port_key": 5
                }},
                "extensions": [{"name": "x-secret-token", "value": "REDACTED"}, "http://REDACTED:REDACTED@h", "plain"],
                "receivers": {"list": [{"name": "ok", "value": "v"}]}
            })
        );
    }

    #[test]
    fn urls_without_user_information_are_kept() {
        assert_eq!(redact_url("https://host:1/a@b"), None);
        assert_eq!(redact_url("mailto:a@b"), None);
        assert_eq!(redact_url("no url"), None);
    }
}
