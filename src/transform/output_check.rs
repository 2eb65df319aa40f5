//! What keeps a policy's outputs from working as written, for the operator: an output with no
//! `hosts` (how the embedded default policy marks its output "not configured") cannot send
//! anything, and an Elasticsearch output without credentials cannot write in embedded mode (no
//! cluster mints per-agent keys there). A real Elastic Agent accepts such a policy (it acks it
//! and keeps checking in) but the components using the output fail, so the management API lists
//! these problems beside each agent of the policy.

use serde_json::Value;

/// One sentence per output problem of `policy` (a full agent policy), in output-name order.
pub fn output_problems(policy: &Value) -> Vec<String> {
    let Some(outputs) = policy.get("outputs").and_then(Value::as_object) else {
        return vec!["the policy has no outputs".to_owned()];
    };
    let mut names: Vec<&String> = outputs.keys().collect();
    names.sort();
    let mut problems = Vec::new();
    for name in names {
        let output = &outputs[name.as_str()];
        let kind = output.get("type").and_then(Value::as_str).unwrap_or("");
        let has_hosts = output
            .get("hosts")
            .and_then(Value::as_array)
            .is_some_and(|h| {
                h.iter()
                    .any(|v| v.as_str().is_some_and(|s| !s.trim().is_empty()))
            });
        if !has_hosts {
            problems.push(format!("output {name} is not configured (no hosts)"));
            continue;
        }
        let has_credentials = ["api_key", "username", "service_token"]
            .iter()
            .any(|k| output.get(*k).is_some_and(|v| !v.is_null() && v != ""));
        if kind == "elasticsearch" && !has_credentials {
            problems.push(format!("output {name} has no api_key"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_without_hosts_or_credentials_are_problems() {
        let policy = json!({"outputs": {
            "z": {"type": "logstash", "hosts": ["ls:5044"]},
            "default": {"type": "elasticsearch", "hosts": []},
            "es": {"type": "elasticsearch", "hosts": ["https://es:9200"]},
            "ok": {"type": "elasticsearch", "hosts": ["https://es:9200"], "api_key": "a:b"},
            "blank": {"type": "logstash", "hosts": [""]},
        }});
        assert_eq!(
            output_problems(&policy),
            vec![
                "output blank is not configured (no hosts)",
                "output default is not configured (no hosts)",
                "output es has no api_key",
            ]
        );
        assert!(output_problems(&json!({"outputs": {"default": {"type": "elasticsearch", "hosts": ["https://es:9200"], "username": "u", "password": "p"}}})).is_empty());
        assert_eq!(
            output_problems(&json!({})),
            vec!["the policy has no outputs"]
        );
    }
}
