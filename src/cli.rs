//! The operator's subcommands, thin clients of the management API of a running fleet-edge:
//!
//! ```text
//! fleet-edge agents                          [--data-dir D]
//! fleet-edge tokens list | create --policy ID [--name N] | revoke ID
//! fleet-edge policy list | apply FILE
//! fleet-edge unenroll AGENT_ID
//! fleet-edge upgrade AGENT_ID --version V
//! fleet-edge diagnostics AGENT_ID
//! fleet-edge results ACTION_ID
//! ```
//!
//! The server's address and bearer token are read from the data dir (`management-url`,
//! `admin-token`), so the CLI needs no flags beyond `--data-dir` (or `FLEET_EDGE_DATA_DIR`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

/// The subcommand names (the binary dispatches here when its first argument is one of them).
pub const COMMANDS: &[&str] = &[
    "agents",
    "tokens",
    "policy",
    "unenroll",
    "upgrade",
    "diagnostics",
    "results",
];

/// One-line usage of every subcommand, for `--help`.
pub const USAGE: &str = "Management commands (talk to a running fleet-edge in embedded mode):
  fleet-edge agents                                  list agents and their status
  fleet-edge tokens list | create --policy ID [--name N] | revoke ID
  fleet-edge policy list | apply FILE                install FILE as the next revision
  fleet-edge unenroll AGENT_ID                       send UNENROLL
  fleet-edge upgrade AGENT_ID --version V            send UPGRADE
  fleet-edge diagnostics AGENT_ID                    send REQUEST_DIAGNOSTICS
  fleet-edge results ACTION_ID                       list an action's results
  (each takes --data-dir D, default $FLEET_EDGE_DATA_DIR or fleet-edge-data)
";

/// Why a command failed: one sentence for the operator.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad command line.
    #[error("{0}\n{USAGE}")]
    Usage(String),
    /// The server's files are missing (not running, other data dir).
    #[error("cannot read {path}: {source}; is fleet-edge running with --data-dir {data_dir}?")]
    NotRunning {
        /// The file.
        path: PathBuf,
        /// The data dir used.
        data_dir: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server could not be reached.
    #[error("cannot reach the management API at {url}: {source}")]
    Unreachable {
        /// Its URL.
        url: String,
        /// The error.
        source: std::io::Error,
    },
    /// The server answered an error.
    #[error("{status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
}

/// Runs a subcommand; `args` excludes the program name. Output goes to stdout.
pub fn run(args: Vec<String>, env_data_dir: Option<String>) -> Result<(), CliError> {
    let mut rest: Vec<String> = Vec::new();
    let mut data_dir = env_data_dir.unwrap_or_else(|| "fleet-edge-data".to_owned());
    let mut options: Vec<(String, String)> = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if flag.starts_with("--") {
            let value = match inline.or_else(|| it.next()) {
                Some(v) => v,
                None => return Err(CliError::Usage(format!("{flag} needs a value"))),
            };
            if flag == "--data-dir" {
                data_dir = value;
            } else {
                options.push((flag, value));
            }
        } else {
            rest.push(arg);
        }
    }
    let option = |name: &str| {
        options
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, v)| v.clone())
    };
    let words: Vec<&str> = rest.iter().map(String::as_str).collect();
    let (method, path, body) = match words.as_slice() {
        ["agents"] => ("GET", "/api/fleet/agents".to_owned(), None),
        ["tokens"] | ["tokens", "list"] => {
            ("GET", "/api/fleet/enrollment_api_keys".to_owned(), None)
        }
        ["tokens", "create"] => {
            let policy = option("--policy")
                .ok_or_else(|| CliError::Usage("tokens create needs --policy ID".into()))?;
            let name = option("--name").unwrap_or_else(|| "Default".into());
            (
                "POST",
                "/api/fleet/enrollment_api_keys".to_owned(),
                Some(json!({"policy_id": policy, "name": name})),
            )
        }
        ["tokens", "revoke", id] => (
            "DELETE",
            format!("/api/fleet/enrollment_api_keys/{id}"),
            None,
        ),
        ["policy"] | ["policy", "list"] => ("GET", "/api/fleet/agent_policies".to_owned(), None),
        ["policy", "apply", file] => {
            let text = std::fs::read(file)
                .map_err(|e| CliError::Usage(format!("cannot read {file}: {e}")))?;
            let data: Value = serde_json::from_slice(&text).map_err(|e| {
                CliError::Usage(format!(
                    "{file} is not JSON (line {}, column {}): {e}",
                    e.line(),
                    e.column()
                ))
            })?;
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
            ("PUT", format!("/api/fleet/agent_policies/{id}"), Some(data))
        }
        ["unenroll", id] => (
            "POST",
            format!("/api/fleet/agents/{id}/unenroll"),
            Some(json!({})),
        ),
        ["upgrade", id] => {
            let version = option("--version")
                .ok_or_else(|| CliError::Usage("upgrade needs --version V".into()))?;
            (
                "POST",
                format!("/api/fleet/agents/{id}/upgrade"),
                Some(json!({"version": version})),
            )
        }
        ["diagnostics", id] => (
            "POST",
            format!("/api/fleet/agents/{id}/request_diagnostics"),
            Some(json!({})),
        ),
        ["results", id] => ("GET", format!("/api/fleet/actions/{id}/results"), None),
        _ => {
            return Err(CliError::Usage(format!(
                "unknown command: {}",
                words.join(" ")
            )))
        }
    };
    let answer = request(
        Path::new(&data_dir),
        &data_dir,
        method,
        &path,
        body.as_ref(),
    )?;
    print_answer(words.first().copied().unwrap_or(""), &answer);
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

fn request(
    dir: &Path,
    data_dir: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, CliError> {
    let url = read_file(dir, data_dir, "management-url")?;
    let token = read_file(dir, data_dir, "admin-token")?;
    let authority = url.trim_start_matches("http://").to_owned();
    let unreachable = |source| CliError::Unreachable {
        url: url.clone(),
        source,
    };
    let mut stream = TcpStream::connect(&authority).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(unreachable)?;
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    );
    stream.write_all(head.as_bytes()).map_err(unreachable)?;
    stream.write_all(payload.as_bytes()).map_err(unreachable)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(unreachable)?;
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

fn print_answer(command: &str, answer: &Value) {
    if command == "agents" {
        println!(
            "{:<38} {:<10} {:<11} {:<24} {:>8} {:<8} LAST CHECKIN",
            "ID", "TYPE", "STATUS", "POLICY", "REVISION", "VERSION"
        );
        for a in answer["items"].as_array().into_iter().flatten() {
            println!(
                "{:<38} {:<10} {:<11} {:<24} {:>8} {:<8} {}",
                a["id"].as_str().unwrap_or(""),
                a["type"].as_str().unwrap_or(""),
                a["status"].as_str().unwrap_or(""),
                a["policy_id"].as_str().unwrap_or(""),
                a["policy_revision"],
                a["version"].as_str().unwrap_or(""),
                a["last_checkin"].as_str().unwrap_or("-"),
            );
        }
        return;
    }
    println!(
        "{}",
        serde_json::to_string_pretty(answer).unwrap_or_default()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_name_the_problem() {
        let err = run(vec!["tokens".into(), "create".into()], None).unwrap_err();
        assert!(err.to_string().contains("--policy"));
        let err = run(vec!["frobnicate".into()], None).unwrap_err();
        assert!(err.to_string().contains("unknown command"));
        let err = run(
            vec![
                "agents".into(),
                "--data-dir".into(),
                "/nonexistent-fleet-edge".into(),
            ],
            None,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("is fleet-edge running with --data-dir /nonexistent-fleet-edge"),
            "{err}"
        );
    }
}
