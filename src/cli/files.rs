//! The file-transfer commands: `files list [--agent ID]`, `files get FILE_ID --output FILE`,
//! `files send --agent ID FILE` (placed in 4 MiB parts, its SHA-256 checked by the server), and
//! `diagnostics AGENT_ID --wait DURATION [--output FILE]` (request the bundle, wait for the
//! agent's result naming its upload, download it).
//!
//! Downloads go one 4 MiB range at a time (`Range: bytes=a-b`, 206), so neither the server nor
//! this process holds more than a chunk; the file is written to `<FILE>.part` and renamed when
//! every byte is in and its SHA-256 over the chunks' digests matches the transit hash the agent
//! sent.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{read_file, request, CliError, Invocation};
use crate::backend::files::CHUNK_SIZE;

/// Status, headers (lower-cased names) and body of an answer.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// One raw exchange with the management API: status, headers (lower-cased names) and body.
fn exchange(
    dir: &Path,
    data_dir: &str,
    path: &str,
    range: Option<(u64, u64)>,
) -> Result<Answer, CliError> {
    let url = read_file(dir, data_dir, "management-url")?;
    let token = read_file(dir, data_dir, "admin-token")?;
    let authority = url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_owned();
    let range = range
        .map(|(a, b)| format!("Range: bytes={a}-{b}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\n{range}Connection: close\r\n\r\n"
    );
    let raw = crate::mgmt::tls::exchange(dir, &url, head.as_bytes()).map_err(|source| {
        CliError::Unreachable {
            url: url.clone(),
            source,
        }
    })?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| CliError::Refused {
            status: 0,
            message: "the management API sent no HTTP response".into(),
        })?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok((status, headers, body))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn refused(status: u16, body: &[u8]) -> CliError {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = json
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    CliError::Refused { status, message }
}

/// Downloads READY file `file_id` into `out`, a chunk-sized range at a time; returns its size.
pub fn download(dir: &Path, data_dir: &str, file_id: &str, out: &Path) -> Result<u64, CliError> {
    let path = format!("/api/fleet/agents/files/{file_id}/download");
    let part = PathBuf::from(format!("{}.part", out.display()));
    let io = |e: std::io::Error| CliError::Input(format!("cannot write {}: {e}", part.display()));
    let mut file = std::fs::File::create(&part).map_err(io)?;
    let mut digests = ring::digest::Context::new(&ring::digest::SHA256);
    let mut offset = 0u64;
    let mut total = None;
    let mut transit = None;
    while total.is_none_or(|t| offset < t) {
        let (status, headers, body) = exchange(
            dir,
            data_dir,
            &path,
            Some((offset, offset + CHUNK_SIZE - 1)),
        )?;
        if status != 206 {
            let _ = std::fs::remove_file(&part);
            return Err(refused(status, &body));
        }
        let size = header(&headers, "content-range")
            .and_then(|r| r.rsplit('/').next())
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| CliError::Refused {
                status,
                message: "the answer has no Content-Range".into(),
            })?;
        total = Some(size);
        transit = header(&headers, "x-transit-sha2").map(str::to_owned);
        if body.is_empty() {
            break;
        }
        digests.update(ring::digest::digest(&ring::digest::SHA256, &body).as_ref());
        file.write_all(&body).map_err(io)?;
        offset += body.len() as u64;
    }
    file.sync_all().map_err(io)?;
    drop(file);
    let sum = crate::backend::ops::uploads::hex(digests.finish().as_ref());
    if let Some(expected) = transit.filter(|t| !t.eq_ignore_ascii_case(&sum)) {
        let _ = std::fs::remove_file(&part);
        return Err(CliError::Refused {
            status: 200,
            message: format!(
                "the downloaded bytes do not match the file's transit hash ({sum} != {expected})"
            ),
        });
    }
    std::fs::rename(&part, out)
        .map_err(|e| CliError::Input(format!("cannot write {}: {e}", out.display())))?;
    Ok(offset)
}

/// `files list`.
pub fn list(dir: &Path, data_dir: &str, agent: Option<&str>) -> Result<Value, CliError> {
    let path = match agent {
        Some(a) => format!("/api/fleet/agents/{a}/uploads"),
        None => "/api/fleet/fleet_edge/files".to_owned(),
    };
    request(dir, data_dir, "GET", &path, None)
}

/// The wait of `diagnostics --wait`.
fn wait_for(inv: &Invocation) -> Result<Option<Duration>, CliError> {
    let Some(text) = inv.option("--wait") else {
        return Ok(None);
    };
    match crate::config::parse_duration(text) {
        Ok(crate::config::GoDuration::Positive(d)) if !d.is_zero() => Ok(Some(d)),
        _ => Err(CliError::Usage(super::Usage {
            problem: format!("--wait: {text:?} is not a positive duration (like 10m)"),
            see: "fleet-edge help diagnostics".into(),
        })),
    }
}

/// `diagnostics AGENT_ID [--wait D] [--output FILE]`.
#[allow(
    clippy::disallowed_methods,
    reason = "the operator's client process polls the management API until its --wait deadline"
)]
pub fn diagnostics(inv: &Invocation, dir: &Path, data_dir: &str) -> Result<(), CliError> {
    let agent = inv.args.first().map(String::as_str).unwrap_or_default();
    let wait = wait_for(inv)?;
    if wait.is_none() && inv.option("--output").is_some() {
        return Err(CliError::Usage(super::Usage {
            problem: "--output needs --wait (the bundle arrives later)".into(),
            see: "fleet-edge help diagnostics".into(),
        }));
    }
    let answer = request(
        dir,
        data_dir,
        "POST",
        &format!("/api/fleet/agents/{agent}/request_diagnostics"),
        Some(&json!({})),
    )?;
    let Some(wait) = wait else {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        );
        return Ok(());
    };
    let action_id = answer["actionId"].as_str().unwrap_or_default().to_owned();
    eprintln!("requested diagnostics from {agent} (action {action_id}); waiting up to {wait:?}");
    let deadline = Instant::now() + wait;
    let item = loop {
        let results = request(
            dir,
            data_dir,
            "GET",
            &format!("/api/fleet/actions/{action_id}/results"),
            None,
        )?;
        let result = results["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["agent_id"] == agent)
            .cloned();
        if let Some(result) = result {
            let error = result["error"].as_str().unwrap_or_default();
            if !error.is_empty() {
                return Err(CliError::Refused {
                    status: 200,
                    message: format!("the agent could not make the bundle: {error}"),
                });
            }
            let files = list(dir, data_dir, Some(agent))?;
            let found = files["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|f| f["actionId"] == action_id.as_str() && f["status"] == "READY")
                .cloned();
            if let Some(found) = found {
                break found;
            }
        }
        if Instant::now() >= deadline {
            return Err(CliError::Refused {
                status: 0,
                message: format!(
                    "no diagnostics bundle from {agent} within {wait:?} (action {action_id}; see 'fleet-edge results {action_id}')"
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(500).min(deadline - Instant::now()));
    };
    let file_id = item["id"].as_str().unwrap_or_default();
    let name = item["name"].as_str().unwrap_or("diagnostics.zip");
    let out = inv
        .option("--output")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(Path::new(name).file_name().unwrap_or_default()));
    let size = download(dir, data_dir, file_id, &out)?;
    println!("{} ({size} bytes, file {file_id})", out.display());
    Ok(())
}

/// `files send`: places `file` for `agents` through the management API, one 4 MiB part per
/// request (neither side holds more); returns the file id agents fetch.
pub fn send(
    dir: &Path,
    data_dir: &str,
    file: &Path,
    agents: &[String],
    name: Option<&str>,
    mime_type: Option<&str>,
) -> Result<String, CliError> {
    let io = |e: std::io::Error| CliError::Input(format!("cannot read {}: {e}", file.display()));
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; CHUNK_SIZE as usize];
    let mut size = 0u64;
    let mut f = std::fs::File::open(file).map_err(io)?;
    loop {
        let n = read_full(&mut f, &mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        digest.update(buf.get(..n).unwrap_or_default());
        size += n as u64;
    }
    let default_name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut begin = json!({
        "name": name.unwrap_or(&default_name),
        "agents": agents,
        "size": size,
        "sha256": crate::backend::ops::uploads::hex(digest.finish().as_ref()),
    });
    if let Some(m) = mime_type {
        begin["mime_type"] = json!(m);
    }
    let answer = super::request(dir, data_dir, "POST", crate::mgmt::DELIVERIES, Some(&begin))?;
    let id = answer
        .pointer("/item/id")
        .and_then(Value::as_str)
        .ok_or_else(|| CliError::Refused {
            status: 200,
            message: "the management API named no file id".into(),
        })?
        .to_owned();
    let mut f = std::fs::File::open(file).map_err(io)?;
    let mut n = 0u64;
    loop {
        let len = read_full(&mut f, &mut buf).map_err(io)?;
        if len == 0 {
            break;
        }
        let path = format!("{}/{id}/{n}", crate::mgmt::DELIVERIES);
        let (status, _, body) = put(dir, data_dir, &path, buf.get(..len).unwrap_or_default())?;
        if status != 200 {
            return Err(refused(status, &body));
        }
        n += 1;
    }
    super::request(
        dir,
        data_dir,
        "POST",
        &format!("{}/{id}", crate::mgmt::DELIVERIES),
        Some(&json!({})),
    )?;
    Ok(id)
}

/// Reads until `buf` is full or the file ends.
fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
        match f.read(rest)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// A raw `PUT` of `body` to the management API.
fn put(dir: &Path, data_dir: &str, path: &str, body: &[u8]) -> Result<Answer, CliError> {
    let url = read_file(dir, data_dir, "management-url")?;
    let token = read_file(dir, data_dir, "admin-token")?;
    let authority = url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_owned();
    let mut raw = format!(
        "PUT {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\nkbn-xsrf: fleet-edge\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    let answer =
        crate::mgmt::tls::exchange(dir, &url, &raw).map_err(|source| CliError::Unreachable {
            url: url.clone(),
            source,
        })?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(answer.len());
    let status = String::from_utf8_lossy(answer.get(..split).unwrap_or_default())
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((
        status,
        Vec::new(),
        answer.get(split + 4..).unwrap_or_default().to_vec(),
    ))
}
