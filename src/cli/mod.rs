//! The operator's subcommands, thin clients of the management API of a running fleet-edge in
//! embedded mode (grammar and help: `parse.rs`, from one table):
//!
//! ```text
//! fleet-edge agents [list] [--status S] [--policy P] [--tag T] [--query TEXT] [--output json]
//! fleet-edge agents show AGENT_ID [--output json]
//! fleet-edge tags AGENT_ID --set a,b | reassign AGENT_ID --policy ID
//! fleet-edge settings AGENT_ID --log-level L | cancel ACTION_ID | actions [--output json]
//! fleet-edge tokens list | create --policy ID [--name N] | revoke ID
//! fleet-edge policy list | apply FILE
//! fleet-edge unenroll AGENT_ID [--force] [--revoke]
//! fleet-edge upgrade [AGENT_ID...] [--policy ID | --all] --version V [--source-uri URL]
//!                    [--rollout-duration D] [--start-time T] [--force]
//! fleet-edge diagnostics AGENT_ID [--wait DURATION [--output FILE]]
//! fleet-edge files list [--agent ID] | get FILE_ID --output FILE
//! fleet-edge files send FILE --agent ID[,ID...] [--name N] [--mime-type T]
//! fleet-edge migrate AGENT_ID --uri URL --enrollment-token TOKEN
//! fleet-edge results ACTION_ID
//! fleet-edge backup FILE | restore FILE
//! fleet-edge artifacts [list] | import FILE... [--downloads-dir D] | add-endpoint FILE...
//! fleet-edge pgp import FILE [--pgp-dir D]
//! fleet-edge help [COMMAND]                  (or --help anywhere)
//! ```
//!
//! The server's address and bearer token are read from the data dir (`management-url`,
//! `admin-token`), so the CLI needs no flags beyond `--data-dir` (or `FLEET_EDGE_DATA_DIR`).
//! Exit codes ([`CliError::exit_code`]): 2 for a bad command line, 1 for anything else that
//! failed, not-found included.

mod files;
mod output;
mod parse;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

pub use parse::{
    command_names, management_help, top_level_help, CommandSpec, Invocation, Parsed, Usage, SPECS,
};

/// Whether the binary should hand its arguments to the CLI: the first one is a word (a command,
/// `help`, or a misspelling of one, which the CLI reports), not a server flag.
pub fn is_subcommand(first: &str) -> bool {
    !first.starts_with('-')
}

/// Why a command failed: one sentence for the operator.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad command line.
    #[error("{}\n(see '{}')", .0.problem, .0.see)]
    Usage(Usage),
    /// A file named on the command line cannot be used.
    #[error("{0}")]
    Input(String),
    /// The server's files are missing (not running, other data dir, or Elasticsearch mode).
    #[error("cannot read {path}: {source}. Is fleet-edge running in embedded mode with --data-dir {data_dir}? These commands manage embedded mode; in Elasticsearch mode (--fleet-server-es) agents are managed with Kibana's Fleet UI or API")]
    NotRunning {
        /// The file.
        path: PathBuf,
        /// The data dir used.
        data_dir: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server could not be reached.
    #[error("cannot reach the management API at {url}: {source}; is fleet-edge running?")]
    Unreachable {
        /// Its URL.
        url: String,
        /// The error.
        source: std::io::Error,
    },
    /// A backup or restore failed.
    #[error(transparent)]
    Backup(#[from] crate::embedded::backup::BackupError),
    /// The server answered an error (404: no such agent, token or action).
    #[error("{message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
}

impl CliError {
    /// 2 for a bad command line (as for bad server configuration), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// Runs a subcommand line; `args` excludes the program name. Output goes to stdout.
pub fn run(args: Vec<String>, env_data_dir: Option<String>) -> Result<(), CliError> {
    let invocation = match parse::parse(args).map_err(CliError::Usage)? {
        Parsed::Help(text) => {
            print!("{text}");
            return Ok(());
        }
        Parsed::Run(invocation) => invocation,
    };
    let data_dir = invocation
        .option("--data-dir")
        .map(str::to_owned)
        .or(env_data_dir)
        .unwrap_or_else(|| "fleet-edge-data".to_owned());
    match invocation.words {
        ["backup"] => return backup(&data_dir, Path::new(&invocation.args[0])),
        ["artifacts", "list"]
        | ["artifacts", "import"]
        | ["artifacts", "add-endpoint"]
        | ["pgp", "import"] => return files(&invocation, Path::new(&data_dir)),
        ["restore"] => {
            let file = &invocation.args[0];
            let files = crate::embedded::backup::restore(Path::new(file), Path::new(&data_dir))?;
            println!("restored {file} into {data_dir} ({files} files); start fleet-edge with --data-dir {data_dir}");
            return Ok(());
        }
        ["diagnostics"] => return files::diagnostics(&invocation, Path::new(&data_dir), &data_dir),
        ["files", "list"] => {
            let answer = files::list(
                Path::new(&data_dir),
                &data_dir,
                invocation.option("--agent"),
            )?;
            print!("{}", output::render(invocation.words, &answer, false));
            return Ok(());
        }
        ["files", "send"] => {
            let file = &invocation.args[0];
            let agents: Vec<String> = invocation
                .option("--agent")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect();
            let id = files::send(
                Path::new(&data_dir),
                &data_dir,
                Path::new(file),
                &agents,
                invocation.option("--name"),
                invocation.option("--mime-type"),
            )?;
            println!("{id}");
            return Ok(());
        }
        ["files", "get"] => {
            let out = invocation.option("--output").unwrap_or_default();
            let file_id = &invocation.args[0];
            let size = files::download(Path::new(&data_dir), &data_dir, file_id, Path::new(out))?;
            println!("{out} ({size} bytes, file {file_id})");
            return Ok(());
        }
        _ => {}
    }
    let json = match invocation.option("--output") {
        None | Some("table") => false,
        Some("json") => true,
        Some(other) => {
            return Err(CliError::Usage(Usage {
                problem: format!("--output must be table or json, not {other:?}"),
                see: format!("fleet-edge help {}", invocation.words.join(" ")),
            }))
        }
    };
    if invocation.words == ["upgrade"] {
        refuse_what_the_mirror_lacks(&invocation, Path::new(&data_dir))?;
    }
    let (method, path, body) = request_for(&invocation)?;
    let answer = request(
        Path::new(&data_dir),
        &data_dir,
        method,
        &path,
        body.as_ref(),
    )?;
    print!("{}", output::render(invocation.words, &answer, json));
    Ok(())
}

/// The air-gap commands: they work on the data dir's files, server running or not.
fn files(inv: &Invocation, data_dir: &Path) -> Result<(), CliError> {
    let input = |e: crate::files::import::ImportError| CliError::Input(e.to_string());
    let mirror = inv
        .option("--downloads-dir")
        .map_or_else(|| data_dir.join("downloads"), PathBuf::from);
    match inv.words {
        ["pgp", "import"] => {
            let pgp_dir = inv
                .option("--pgp-dir")
                .map_or_else(|| data_dir.join("pgp"), PathBuf::from);
            let path = crate::files::import::import_pgp_key(&pgp_dir, Path::new(&inv.args[0]))
                .map_err(input)?;
            println!(
                "installed {} (mode 0600): served at /api/agents/upgrades/<version>/pgp-public-key",
                path.display()
            );
        }
        ["artifacts", "add-endpoint"] => {
            let dir = data_dir.join(crate::backend::local::ENDPOINT_ARTIFACTS_DIR);
            for file in &inv.args {
                let path = crate::files::endpoint::add(&dir, Path::new(file))
                    .map_err(|e| CliError::Input(e.to_string()))?;
                println!("installed {}", path.display());
            }
        }
        ["artifacts", "import"] => {
            for file in &inv.args {
                for imported in
                    crate::files::import::import(&mirror, Path::new(file)).map_err(input)?
                {
                    let how = if imported.verified {
                        " (SHA-512 verified)"
                    } else {
                        ""
                    };
                    println!("/downloads/{}{how}", imported.path);
                }
            }
        }
        _ => {
            let listed = crate::files::mirror::list(&mirror)
                .map_err(|e| CliError::Input(format!("cannot list {}: {e}", mirror.display())))?;
            if listed.is_empty() {
                println!(
                    "the artifact mirror {} is empty; add packages with 'fleet-edge artifacts import FILE...'",
                    mirror.display()
                );
            }
            for file in listed {
                println!("{:>12}  /downloads/{}", file.size, file.path);
            }
        }
    }
    Ok(())
}

/// An upgrade whose source is this server's artifact mirror (the `agent.download.sourceURI` the
/// default policy was written with) to a version the mirror has no Elastic Agent package of would
/// fail on every agent: refused before any action is made (exit 1).
fn refuse_what_the_mirror_lacks(inv: &Invocation, data_dir: &Path) -> Result<(), CliError> {
    let (Some(source), Some(version)) = (inv.option("--source-uri"), inv.option("--version"))
    else {
        return Ok(());
    };
    let policy_file = data_dir
        .join("policies")
        .join(format!("{}.json", crate::embedded::DEFAULT_POLICY_ID));
    let mirror_uri = std::fs::read(policy_file)
        .ok()
        .and_then(|text| serde_json::from_slice::<Value>(&text).ok())
        .and_then(|p| {
            p.pointer("/agent/download/sourceURI")?
                .as_str()
                .map(str::to_owned)
        });
    let is_mirror =
        mirror_uri.is_some_and(|m| m.trim_end_matches('/') == source.trim_end_matches('/'));
    if !is_mirror {
        return Ok(());
    }
    let mirror = inv
        .option("--downloads-dir")
        .map_or_else(|| data_dir.join("downloads"), PathBuf::from);
    let prefix = format!("elastic-agent-{version}-");
    let held = std::fs::read_dir(mirror.join("beats/elastic-agent"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with(&prefix));
    if held {
        return Ok(());
    }
    Err(CliError::Input(format!(
        "the artifact mirror {} has no Elastic Agent {version} package (beats/elastic-agent/{prefix}*): import it first with 'fleet-edge artifacts import', or upgrade from another --source-uri",
        mirror.display()
    )))
}

/// A kuery value in quotes (any characters but the quote and backslash, which are escaped).
fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether an `upgrade` line needs Kibana's bulk upgrade (anything but one agent, now).
fn bulk_upgrade(inv: &Invocation) -> bool {
    inv.args.len() != 1
        || ["--policy", "--all", "--rollout-duration", "--start-time"]
            .iter()
            .any(|o| inv.option(o).is_some())
}

/// `POST /api/fleet/agents/bulk_upgrade`'s body (Kibana's members) for an `upgrade` line.
fn bulk_upgrade_body(inv: &Invocation) -> Result<Value, CliError> {
    let usage = |problem: String| {
        CliError::Usage(Usage {
            problem,
            see: "fleet-edge help upgrade".into(),
        })
    };
    let agents = match (
        inv.args.is_empty(),
        inv.option("--policy"),
        inv.option("--all"),
    ) {
        (false, None, None) => json!(inv.args),
        // Kibana's kuery: the policy's agents; an empty kuery is every enrolled agent.
        (true, Some(policy), None) => json!(format!("policy_id:{}", quoted(policy))),
        (true, None, Some(_)) => json!(""),
        _ => {
            return Err(usage(
                "name the agents with exactly one of: AGENT_ID..., --policy ID, --all".into(),
            ))
        }
    };
    let mut body =
        json!({"agents": agents, "version": inv.option("--version").unwrap_or_default()});
    if let Some(uri) = inv.option("--source-uri") {
        crate::config::parse_http_url(uri, None)
            .map_err(|e| usage(format!("--source-uri: {e}")))?;
        body["source_uri"] = json!(uri);
    }
    if let Some(duration) = inv.option("--rollout-duration") {
        let seconds = match crate::config::parse_duration(duration) {
            Ok(crate::config::GoDuration::Positive(d)) if d.as_secs() > 0 => d.as_secs(),
            _ => {
                return Err(usage(format!(
                    "--rollout-duration {duration:?} is not a positive duration (e.g. 30m, 2h)"
                )))
            }
        };
        body["rollout_duration_seconds"] = json!(seconds);
    }
    if let Some(start) = inv.option("--start-time") {
        if crate::model::time::parse_rfc3339(start).is_none() {
            return Err(usage(format!(
                "--start-time {start:?} is not an RFC 3339 time (e.g. 2026-12-24T22:00:00Z)"
            )));
        }
        body["start_time"] = json!(start);
    }
    if inv.option("--force").is_some() {
        body["force"] = json!(true);
    }
    Ok(body)
}

/// The management API request a parsed subcommand makes.
fn request_for(inv: &Invocation) -> Result<(&'static str, String, Option<Value>), CliError> {
    let arg = |i: usize| inv.args.get(i).map(String::as_str).unwrap_or_default();
    Ok(match inv.words {
        ["agents", "list"] => ("GET", agents_query(inv)?, None),
        ["agents", "show"] => ("GET", format!("/api/fleet/agents/{}", arg(0)), None),
        ["actions"] => (
            "GET",
            "/api/fleet/agents/action_status?perPage=10000".to_owned(),
            None,
        ),
        ["tags"] => {
            let tags: Vec<&str> = inv
                .option("--set")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect();
            (
                "PUT",
                format!("/api/fleet/agents/{}", arg(0)),
                Some(json!({ "tags": tags })),
            )
        }
        ["reassign"] => (
            "POST",
            format!("/api/fleet/agents/{}/reassign", arg(0)),
            Some(json!({"policy_id": inv.option("--policy").unwrap_or_default()})),
        ),
        ["settings"] => (
            "POST",
            format!("/api/fleet/agents/{}/actions", arg(0)),
            Some(json!({"action": {"type": "SETTINGS",
                "data": {"log_level": inv.option("--log-level").unwrap_or_default()}}})),
        ),
        ["cancel"] => (
            "POST",
            format!("/api/fleet/agents/actions/{}/cancel", arg(0)),
            Some(json!({})),
        ),
        ["tokens", "list"] => ("GET", "/api/fleet/enrollment_api_keys".to_owned(), None),
        ["tokens", "create"] => (
            "POST",
            "/api/fleet/enrollment_api_keys".to_owned(),
            Some(json!({
                "policy_id": inv.option("--policy").unwrap_or_default(),
                "name": inv.option("--name").unwrap_or("Default"),
            })),
        ),
        ["tokens", "revoke"] => (
            "DELETE",
            format!("/api/fleet/enrollment_api_keys/{}", arg(0)),
            None,
        ),
        ["policy", "list"] => ("GET", "/api/fleet/agent_policies".to_owned(), None),
        ["policy", "apply"] => {
            let (id, data) = read_policy(arg(0))?;
            (
                "PUT",
                format!("/api/fleet/fleet_edge/policies/{id}"),
                Some(data),
            )
        }
        ["unenroll"] => (
            "POST",
            format!("/api/fleet/agents/{}/unenroll", arg(0)),
            Some(json!({
                "force": inv.option("--force").is_some(),
                "revoke": inv.option("--revoke").is_some(),
            })),
        ),
        ["upgrade"] if bulk_upgrade(inv) => (
            "POST",
            "/api/fleet/agents/bulk_upgrade".to_owned(),
            Some(bulk_upgrade_body(inv)?),
        ),
        ["upgrade"] => {
            // Kibana's body: {"version", "source_uri", "force"}; fleet-edge checks no
            // upgradeability, so there is nothing to force.
            let mut body = json!({"version": inv.option("--version").unwrap_or_default()});
            if let Some(uri) = inv.option("--source-uri") {
                crate::config::parse_http_url(uri, None).map_err(|e| {
                    CliError::Usage(Usage {
                        problem: format!("--source-uri: {e}"),
                        see: "fleet-edge help upgrade".into(),
                    })
                })?;
                body["source_uri"] = json!(uri);
            }
            (
                "POST",
                format!("/api/fleet/agents/{}/upgrade", arg(0)),
                Some(body),
            )
        }
        ["diagnostics"] => (
            "POST",
            format!("/api/fleet/agents/{}/request_diagnostics", arg(0)),
            Some(json!({})),
        ),
        ["migrate"] => (
            "POST",
            format!("/api/fleet/agents/{}/migrate", arg(0)),
            Some(json!({
                "uri": inv.option("--uri").unwrap_or_default(),
                "enrollment_token": inv.option("--enrollment-token").unwrap_or_default(),
            })),
        ),
        ["results"] => (
            "GET",
            format!("/api/fleet/actions/{}/results", arg(0)),
            None,
        ),
        other => {
            return Err(CliError::Usage(Usage {
                problem: format!("'{}' has no request", other.join(" ")),
                see: "fleet-edge help".into(),
            }))
        }
    })
}

/// `GET /api/fleet/agents` with the filters of `agents list` as a kuery (every agent, inactive
/// ones too: the operator asked for this box's agents).
fn agents_query(inv: &Invocation) -> Result<String, CliError> {
    let mut clauses = Vec::new();
    if let Some(list) = inv.option("--status") {
        let mut names = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let Some(status) = crate::model::AgentStatus::parse(name) else {
                return Err(CliError::Usage(Usage {
                    problem: format!(
                        "--status: {name:?} is not an agent status (one of: {})",
                        crate::model::AgentStatus::ALL
                            .map(|s| s.as_str())
                            .join(", ")
                    ),
                    see: "fleet-edge help agents list".into(),
                }));
            };
            names.push(status.as_str());
        }
        clauses.push(format!("status:({})", names.join(" or ")));
    }
    if let Some(policy) = inv.option("--policy") {
        clauses.push(format!("policy_id:{}", quoted(policy)));
    }
    if let Some(tag) = inv.option("--tag") {
        clauses.push(format!("tags:{}", quoted(tag)));
    }
    let mut path = "/api/fleet/agents?showInactive=true&perPage=10000".to_owned();
    if !clauses.is_empty() {
        path.push_str(&format!(
            "&kuery={}",
            percent_encode(&clauses.join(" and "))
        ));
    }
    if let Some(text) = inv.option("--query") {
        path.push_str(&format!("&search={}", percent_encode(text)));
    }
    Ok(path)
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A policy file (JSON, or YAML for `.yml`/`.yaml`): its id (the `id` field, else the file
/// name) and content.
fn read_policy(file: &str) -> Result<(String, Value), CliError> {
    let text =
        std::fs::read(file).map_err(|e| CliError::Input(format!("cannot read {file}: {e}")))?;
    let data: Value = crate::embedded::policy_format::parse(Path::new(file), &text)
        .map_err(|e| CliError::Input(format!("{file}: {e}")))?;
    let id = data
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            Path::new(file)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    Ok((id, data))
}

/// `backup FILE`: the running server writes the store copy (or, with none running, this process
/// does), then the data dir is archived around it.
fn backup(data_dir: &str, out: &Path) -> Result<(), CliError> {
    use crate::embedded::backup;
    let dir = Path::new(data_dir);
    let snapshot_path = "/api/fleet/fleet_edge/snapshot";
    let (snapshot, online) = match request(dir, data_dir, "POST", snapshot_path, Some(&json!({}))) {
        Ok(answer) => {
            let path = PathBuf::from(answer["snapshot"].as_str().unwrap_or_default());
            // Only a snapshot file of this data dir is read and then removed.
            let ours = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".backup-"))
                && path.parent().and_then(|p| std::fs::canonicalize(p).ok())
                    == std::fs::canonicalize(dir).ok();
            if !ours {
                return Err(CliError::Refused {
                    status: 200,
                    message: format!(
                        "the server named a snapshot outside {data_dir}: {}",
                        path.display()
                    ),
                });
            }
            (path, true)
        }
        Err(CliError::NotRunning { .. } | CliError::Unreachable { .. }) => {
            (backup::snapshot_offline(dir)?, false)
        }
        Err(e) => return Err(e),
    };
    let files = backup::write_archive(dir, &snapshot, out)?;
    println!(
        "backup of {data_dir} written to {} ({files} files; store copied {})",
        out.display(),
        if online {
            "by the running server"
        } else {
            "with no server running"
        }
    );
    Ok(())
}

fn read_file(dir: &Path, data_dir: &str, name: &str) -> Result<String, CliError> {
    let path = dir.join(name);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_owned())
        .map_err(|source| CliError::NotRunning {
            path,
            data_dir: data_dir.to_owned(),
            source,
        })
}

pub(super) fn request(
    dir: &Path,
    data_dir: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, CliError> {
    let url = read_file(dir, data_dir, "management-url")?;
    let token = read_file(dir, data_dir, "admin-token")?;
    let authority = url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_owned();
    let unreachable = |source| CliError::Unreachable {
        url: url.clone(),
        source,
    };
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\nkbn-xsrf: fleet-edge\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    );
    // Plain HTTP on loopback, TLS (trusting <data-dir>/management-ca.crt) off it.
    let raw = crate::mgmt::tls::exchange(dir, &url, format!("{head}{payload}").as_bytes())
        .map_err(unreachable)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if status != 200 {
        let message = json
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or(body)
            .to_owned();
        return Err(CliError::Refused { status, message });
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn line(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn exit_codes_are_2_for_usage_and_1_otherwise() {
        let err = run(line("agnets"), None).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("did you mean 'agents'?"), "{err}");
        let err = run(line("agents --data-dir /nonexistent-fleet-edge"), None).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        let text = err.to_string();
        assert!(
            text.contains(
                "Is fleet-edge running in embedded mode with --data-dir /nonexistent-fleet-edge?"
            ),
            "{text}"
        );
        assert!(text.contains("Kibana's Fleet UI or API"), "{text}");
        assert_eq!(
            run(line("policy apply /nonexistent/p.json"), None)
                .unwrap_err()
                .exit_code(),
            1
        );
    }

    #[test]
    fn upgrade_carries_the_source_uri_and_checks_it() {
        let inv = match parse::parse(line(
            "upgrade a1 --version 9.2.0 --source-uri https://artifacts.example/downloads/",
        )) {
            Ok(Parsed::Run(inv)) => inv,
            other => panic!("{other:?}"),
        };
        let (method, path, body) = request_for(&inv).unwrap();
        assert_eq!(
            (method, path.as_str()),
            ("POST", "/api/fleet/agents/a1/upgrade")
        );
        assert_eq!(
            body.unwrap(),
            json!({"version": "9.2.0", "source_uri": "https://artifacts.example/downloads/"})
        );
        let err = run(
            line("upgrade a1 --version 9.2.0 --source-uri ftp://x"),
            None,
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
    }
}
