//! The connection settings of a `remote_elasticsearch` output (fleet-protocol.md §3.7 step 3),
//! read from policy content with its secrets resolved: `hosts`, `service_token` and the `ssl`
//! settings that decide which cluster answers and whether it is trusted
//! (`certificate_authorities` as paths or inline PEM, `ca_trusted_fingerprint`,
//! `verification_mode`). Sans-IO: nothing here opens a file or a socket; the client is built
//! from a [`RemoteEs`] by `backend::remote` on a backend thread.
//!
//! Reading never fails: policy content is not trusted to be well formed, and a remote output
//! that cannot be used must degrade that output, not refuse the revision or crash. What is wrong
//! is kept in [`RemoteEs::problem`] and reported when a key is wanted. [`RemoteEs::config_hash`] is a
//! SHA-256 over the raw values of those settings: agent documents store it beside each remote key
//! so a changed configuration is noticed (a new key is created on the new cluster) and retired
//! keys are invalidated on the cluster they were made on.

use std::fmt;

use serde_json::{json, Value};

/// Verification modes Elastic's `tlscommon` accepts (`""` means `full`).
const VERIFICATION_MODES: &[&str] = &["", "full", "strict", "certificate", "none"];

/// How a remote cluster's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// Chain and host name (`full`, `strict`, and the default).
    Full,
    /// Chain only (`certificate`).
    Certificate,
    /// Nothing (`none`).
    None,
}

/// One remote cluster's connection settings, as a remote output names them.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteEs {
    /// Base URLs (`https://remote:9200`).
    pub hosts: Vec<String>,
    /// The `elastic/fleet-server-remote` service token, sent as `Authorization: Bearer`.
    pub service_token: String,
    /// `ssl.certificate_authorities`: file paths or inline PEM.
    pub certificate_authorities: Vec<String>,
    /// `ssl.ca_trusted_fingerprint`: hex SHA-256 of a CA the cluster presents.
    pub ca_trusted_fingerprint: String,
    /// `ssl.verification_mode`.
    pub verification: Verification,
    /// Why these settings cannot be used, if they cannot (wrong types, no host, no token).
    pub problem: Option<String>,
    /// Lowercase hex SHA-256 over the raw settings: names this configuration.
    pub config_hash: String,
}

impl fmt::Debug for RemoteEs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteEs")
            .field("hosts", &self.hosts)
            .field("service_token", &"<redacted>")
            .field(
                "certificate_authorities",
                &self.certificate_authorities.len(),
            )
            .field("ca_trusted_fingerprint", &self.ca_trusted_fingerprint)
            .field("verification", &self.verification)
            .field("problem", &self.problem)
            .field("config_hash", &self.config_hash)
            .finish()
    }
}

/// A string or a list of strings (`hosts: "h"` is accepted as `hosts: ["h"]`, as libbeat does).
fn strings(v: Option<&Value>, what: &str, problems: &mut Vec<String>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.clone()),
                other => {
                    problems.push(format!("{what} has a non-string entry {other}"));
                    None
                }
            })
            .collect(),
        Some(other) => {
            problems.push(format!("{what} is not a list of strings but {other}"));
            Vec::new()
        }
    }
}

fn string(v: Option<&Value>, what: &str, problems: &mut Vec<String>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            problems.push(format!("{what} is not a string"));
            String::new()
        }
    }
}

impl RemoteEs {
    /// Reads the settings of one `remote_elasticsearch` output object (secrets resolved).
    pub fn from_output(output: &Value) -> RemoteEs {
        let mut problems = Vec::new();
        let ssl = output.get("ssl").filter(|s| !s.is_null());
        if ssl.is_some_and(|s| !s.is_object()) {
            problems.push("ssl is not an object".to_owned());
        }
        let field = |name: &str| ssl.and_then(|s| s.get(name));
        let hosts = strings(output.get("hosts"), "hosts", &mut problems);
        let service_token = string(output.get("service_token"), "service_token", &mut problems);
        let certificate_authorities = strings(
            field("certificate_authorities"),
            "ssl.certificate_authorities",
            &mut problems,
        );
        let ca_trusted_fingerprint = string(
            field("ca_trusted_fingerprint"),
            "ssl.ca_trusted_fingerprint",
            &mut problems,
        );
        let mode = string(
            field("verification_mode"),
            "ssl.verification_mode",
            &mut problems,
        );
        let verification = match mode.as_str() {
            "none" => Verification::None,
            "certificate" => Verification::Certificate,
            _ => Verification::Full,
        };
        if !VERIFICATION_MODES.contains(&mode.as_str()) {
            problems.push(format!(
                "ssl.verification_mode {mode:?} is not one of full, strict, certificate, none"
            ));
        }
        if hosts.iter().all(|h| h.trim().is_empty()) {
            problems.push("no hosts".to_owned());
        }
        if service_token.is_empty() {
            problems.push("no service_token".to_owned());
        }
        // The raw values, so that any change of them (types included) is a new configuration.
        let raw = json!({
            "hosts": output.get("hosts"),
            "service_token": output.get("service_token"),
            "ssl": {
                "certificate_authorities": field("certificate_authorities"),
                "ca_trusted_fingerprint": field("ca_trusted_fingerprint"),
                "verification_mode": field("verification_mode"),
            },
        });
        let digest = ring::digest::digest(&ring::digest::SHA256, raw.to_string().as_bytes());
        RemoteEs {
            hosts,
            service_token,
            certificate_authorities,
            ca_trusted_fingerprint,
            verification,
            problem: (!problems.is_empty()).then(|| problems.join("; ")),
            config_hash: digest.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_remote_output() {
        let r = RemoteEs::from_output(&json!({
            "type": "remote_elasticsearch", "hosts": ["https://r:9200"], "service_token": "tok",
            "ssl": {"certificate_authorities": ["/etc/ca.pem"], "verification_mode": "certificate"}}));
        assert_eq!(r.hosts, ["https://r:9200"]);
        assert_eq!(r.service_token, "tok");
        assert_eq!(r.certificate_authorities, ["/etc/ca.pem"]);
        assert_eq!(r.verification, Verification::Certificate);
        assert_eq!(r.problem, None);
        assert_eq!(r.config_hash.len(), 64);
        assert!(!format!("{r:?}").contains("tok\""), "token redacted");
    }

    #[test]
    fn the_id_follows_every_connection_setting_and_nothing_else() {
        let base = json!({"type": "remote_elasticsearch", "hosts": ["https://r:9200"],
                          "service_token": "tok", "preset": "balanced"});
        let id = RemoteEs::from_output(&base).config_hash;
        let mut other = base.clone();
        other["preset"] = json!("throughput");
        assert_eq!(
            RemoteEs::from_output(&other).config_hash,
            id,
            "not a connection setting"
        );
        for (path, value) in [
            ("/hosts", json!(["https://r2:9200"])),
            ("/service_token", json!("tok2")),
            ("/ssl", json!({"ca_trusted_fingerprint": "ab"})),
            ("/ssl", json!({"certificate_authorities": "PEM"})),
            ("/ssl", json!({"verification_mode": "none"})),
        ] {
            let mut changed = base.clone();
            let key = path.trim_start_matches('/');
            changed[key] = value;
            assert_ne!(RemoteEs::from_output(&changed).config_hash, id, "{path}");
        }
    }

    #[test]
    fn unusable_settings_are_a_problem_not_a_panic() {
        for bad in [
            json!({"type": "remote_elasticsearch"}),
            json!({"hosts": 7, "service_token": "t"}),
            json!({"hosts": ["h", 1], "service_token": {"x": 1}}),
            json!({"hosts": ["h"], "service_token": "t", "ssl": "yes"}),
            json!({"hosts": ["h"], "service_token": "t", "ssl": {"verification_mode": "sloppy"}}),
            json!({"hosts": ["h"], "service_token": "t", "ssl": {"certificate_authorities": [null]}}),
            json!([]),
            Value::Null,
        ] {
            let r = RemoteEs::from_output(&bad);
            assert!(r.problem.is_some(), "{bad}");
        }
        let one = RemoteEs::from_output(&json!({"hosts": "h", "service_token": "t"}));
        assert_eq!((one.hosts, one.problem), (vec!["h".to_owned()], None));
    }
}
