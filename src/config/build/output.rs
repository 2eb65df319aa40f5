//! `--default-output-*`: the output of the default policy written on the first start in embedded
//! mode. Validated here like every other setting (every problem collected, exit 2); certificate
//! and key files are read and parsed now, and their PEM text is what the policy embeds (the shape
//! Kibana writes in a full agent policy: `ssl.certificate_authorities` as a list of PEM strings,
//! `ssl.certificate` and `ssl.key` as PEM). Secrets (the API key, the key's text) never appear in
//! a message.

use std::path::Path;

use super::super::args::Origin;
use super::super::settings::SettingId as Id;
use super::super::values;
use super::super::{DefaultOutput, OutputType, Secret};
use super::Builder;
use crate::tls;

impl Builder {
    /// The default output, `None` when no hosts were given (after checking that no other
    /// default-output setting was given alone). `embedded` is false with `--fleet-server-es`,
    /// where no default policy is written and the settings are refused.
    pub(super) fn default_output(&mut self, embedded: bool) -> Option<DefaultOutput> {
        let given: Vec<Id> = [
            Id::DefaultOutputType,
            Id::DefaultOutputHosts,
            Id::DefaultOutputApiKey,
            Id::DefaultOutputSslCas,
            Id::DefaultOutputSslCert,
            Id::DefaultOutputSslKey,
        ]
        .into_iter()
        .filter(|id| {
            self.is_set(*id)
                && !matches!(
                    self.origin(*id),
                    Origin::Default | Origin::DerivedDefault(_)
                )
        })
        .collect();
        if given.is_empty() {
            return None;
        }
        if !embedded {
            for id in given {
                self.problem(id, "sets the output of the embedded mode's default policy, but --fleet-server-es selects Elasticsearch mode, where Kibana's policies apply; remove it");
            }
            return None;
        }
        let kind = self
            .parsed(Id::DefaultOutputType, |s| {
                match s.trim().to_ascii_lowercase().as_str() {
                    "elasticsearch" => Ok(OutputType::Elasticsearch),
                    "logstash" => Ok(OutputType::Logstash),
                    _ => Err(format!(
                        "\"{s}\" is not an output type (use elasticsearch or logstash)"
                    )),
                }
            })
            .unwrap_or(OutputType::Elasticsearch);
        let raw_hosts = self
            .value(Id::DefaultOutputHosts)
            .map(|s| values::split_list(&s))
            .unwrap_or_default();
        if raw_hosts.is_empty() {
            for id in given {
                if id != Id::DefaultOutputHosts {
                    let hosts = self.who(Id::DefaultOutputHosts);
                    self.problem(id, format!("needs {hosts} (where the output is)"));
                }
            }
            if self.is_set(Id::DefaultOutputHosts) {
                self.problem(Id::DefaultOutputHosts, "is empty");
            }
            return None;
        }
        let hosts: Vec<String> = raw_hosts
            .iter()
            .filter_map(|h| {
                let parsed = match kind {
                    OutputType::Elasticsearch => {
                        values::parse_http_url(h, None).map(|u| u.to_url_string())
                    }
                    OutputType::Logstash => logstash_host(h),
                };
                parsed
                    .map_err(|e| self.problem(Id::DefaultOutputHosts, e))
                    .ok()
            })
            .collect();
        let api_key = self.output_api_key(kind);
        let cas = self.paths(Id::DefaultOutputSslCas);
        let mut certificate_authorities = Vec::new();
        for path in &cas {
            match tls::load_certificate_authorities(std::slice::from_ref(path))
                .map_err(|e| e.to_string())
                .and_then(|_| pem_text(path))
            {
                Ok(pem) => certificate_authorities.push(pem),
                Err(e) => self.problem(Id::DefaultOutputSslCas, e),
            }
        }
        let (certificate, key) =
            match self.material(Id::DefaultOutputSslCert, Id::DefaultOutputSslKey, None) {
                Some(_) => {
                    let cert = self.path(Id::DefaultOutputSslCert).map(|p| pem_text(&p));
                    let key = self.path(Id::DefaultOutputSslKey).map(|p| pem_text(&p));
                    match (cert, key) {
                        (Some(Ok(cert)), Some(Ok(key))) => (Some(cert), Some(Secret::new(key))),
                        (Some(Err(e)), _) | (_, Some(Err(e))) => {
                            self.problem(Id::DefaultOutputSslCert, e);
                            (None, None)
                        }
                        _ => (None, None),
                    }
                }
                None => (None, None),
            };
        Some(DefaultOutput {
            kind,
            hosts,
            api_key,
            certificate_authorities,
            certificate,
            key,
        })
    }

    /// The API key: required for Elasticsearch (embedded mode mints no per-agent keys), refused
    /// for Logstash; `id:key` form checked without echoing the value.
    fn output_api_key(&mut self, kind: OutputType) -> Option<Secret> {
        let value = self
            .value(Id::DefaultOutputApiKey)
            .map(|v| v.trim().to_owned());
        match (kind, value) {
            (OutputType::Elasticsearch, None) => {
                let hosts = self.who(Id::DefaultOutputHosts);
                let key = super::super::spec(Id::DefaultOutputApiKey).name();
                self.problem(
                    Id::DefaultOutputHosts,
                    format!("an elasticsearch output needs an API key to write with; set {key} (env FLEET_EDGE_DEFAULT_OUTPUT_API_KEY) as well as {hosts}"),
                );
                None
            }
            (OutputType::Elasticsearch, Some(key)) => {
                let well_formed = key.split_once(':').is_some_and(|(id, secret)| {
                    !id.is_empty()
                        && !secret.is_empty()
                        && !key.contains(char::is_whitespace)
                        && !secret.contains(':')
                });
                if well_formed {
                    Some(Secret::new(key))
                } else {
                    self.problem(
                        Id::DefaultOutputApiKey,
                        "is not an API key in the form id:key (the id and api_key of the Elasticsearch create-API-key answer, joined by a colon)",
                    );
                    None
                }
            }
            (OutputType::Logstash, Some(_)) => {
                self.problem(
                    Id::DefaultOutputApiKey,
                    "applies to elasticsearch outputs only; a logstash output authenticates with --default-output-ssl-certificate and --default-output-ssl-key",
                );
                None
            }
            (OutputType::Logstash, None) => None,
        }
    }
}

/// A Logstash host: `host:port`, no scheme (what Kibana accepts for Logstash outputs).
fn logstash_host(input: &str) -> Result<String, String> {
    let s = input.trim();
    let bad = || {
        format!("\"{input}\" is not a Logstash host (use host:port, such as logstash.example:5044)")
    };
    if s.contains("://") || s.contains('/') {
        return Err(bad());
    }
    match values::split_host_port(s) {
        Some((host, Some(port))) if host.contains(':') => Ok(format!("[{host}]:{port}")),
        Some((host, Some(port))) => Ok(format!("{host}:{port}")),
        _ => Err(bad()),
    }
}

fn pem_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|text| text.trim_end().to_owned() + "\n")
        .map_err(|e| format!("cannot read \"{}\": {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logstash_hosts_are_host_and_port() {
        assert_eq!(logstash_host("ls.example:5044").unwrap(), "ls.example:5044");
        assert_eq!(logstash_host(" 10.0.0.7:5044 ").unwrap(), "10.0.0.7:5044");
        assert_eq!(logstash_host("[::1]:5044").unwrap(), "[::1]:5044");
        for bad in [
            "ls.example",
            "https://ls:5044",
            "ls:0",
            "ls:port",
            ":5044",
            "ls:5044/x",
        ] {
            assert!(logstash_host(bad).is_err(), "{bad}");
        }
    }
}
