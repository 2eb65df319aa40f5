//! The web console (issue 19) in a real browser: `tests/console-browser/suite.js` drives a
//! headless Chromium (Debian's `chromium` and `chromium-driver`) through WebDriver against the
//! binary with five agents in known states and a viewer operator: log in (a wrong token first),
//! agents by status, filters, one agent's components, diagnostics (the agent, scripted here,
//! uploads a zip when the suite's request reaches it, and the suite downloads it through the
//! files page's link and compares its SHA-256), the compiled policy, a new
//! token's install command as the quick start prints it, unenroll, logout, the viewer's read-only
//! view, no console error (the CSP holds), a phone-sized screen. Screenshots land in
//! `target/console-screenshots/` (and in `docs/console/` with `FLEET_EDGE_SCREENSHOTS=docs`).
//!
//! Without chromium or chromedriver the suite is skipped with a message, except under CI
//! (`CI` set), where `.ci/run` installs them and their absence fails.
//! The HTTP-level checks (headers, rate limit, logs without secrets) need no browser.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::management::{only_action, roots};
use crate::support::agent::Agent;
use crate::support::{Client, FleetEdge, TempDir};
use crate::uploads::{bundle, hex, sha256, upload, MIB};
use crate::uploads_cli::ack_with_upload;

const VIEWER_TOKEN: &str = "0123456789abcdef-viewer-alice";

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console-browser")
}

/// The browser and driver, or why the suite cannot run here.
fn browser() -> Result<(), String> {
    for (tool, var, default) in [
        ("chromium", "CHROMIUM", "/usr/bin/chromium"),
        ("chromedriver", "CHROMEDRIVER", "/usr/bin/chromedriver"),
    ] {
        let path = std::env::var(var).unwrap_or_else(|_| default.to_owned());
        if !Path::new(&path).exists() {
            return Err(format!(
                "{tool} is not installed ({path}; apt-get install chromium chromium-driver)"
            ));
        }
    }
    Ok(())
}

fn ensure_packages() {
    let dir = suite_dir();
    if dir.join("node_modules/selenium-webdriver").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .expect("the console browser suite needs node and npm (bash .ci/run installs them)");
    assert!(status.success(), "npm ci in {} failed", dir.display());
}

/// A raw management request; status, headers and body.
fn call(
    server: &FleetEdge,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, crate::support::HttpResponse) {
    let url = std::fs::read_to_string(server.data_dir.join("management-url")).unwrap();
    let addr = url.trim().trim_start_matches("http://").parse().unwrap();
    let extra: String = headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let resp = Client::plain(addr)
        .unwrap()
        .request(raw.as_bytes())
        .unwrap();
    (resp.status, resp)
}

fn admin_token(server: &FleetEdge) -> String {
    std::fs::read_to_string(server.data_dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned()
}

fn get(server: &FleetEdge, path: &str) -> Value {
    let auth = format!("Bearer {}", admin_token(server));
    let (status, resp) = call(server, "GET", path, &[("Authorization", &auth)], "");
    assert_eq!(status, 200, "GET {path}");
    resp.json()
}

fn start_server(data: &TempDir) -> FleetEdge {
    std::fs::write(
        data.join("operator-tokens"),
        format!("# name role token\nalice viewer {VIEWER_TOKEN}\n"),
    )
    .unwrap();
    let server = FleetEdge::start_in(
        data.path(),
        &["--checkin-long-poll", "1s", "--checkin-jitter", "0s"],
        &[],
    );
    server
        .wait_for_log("management API on", Duration::from_secs(30))
        .expect("management API announced");
    server
}

/// One checkin as host `host`, with `over` replacing members of the usual body.
fn checkin_as(agent: &mut Agent, host: &str, mut over: Value) -> Value {
    over["local_metadata"] = json!({"elastic": {"agent": {"id": agent.id, "version": "9.2.1"}},
        "host": {"hostname": host, "name": host}});
    let (resp, body) = agent.checkin_with(over);
    assert_eq!(resp.status, 200, "{body}");
    body
}

/// An agent that took its policy (online), or only checked in (updating).
fn agent(server: &FleetEdge, token: &str, host: &str, tags: &[&str], settle: bool) -> Agent {
    let (mut a, _) = Agent::enroll(server.addr, roots(server), token, tags);
    let body = checkin_as(&mut a, host, json!({}));
    if settle {
        let action = only_action(&body).clone();
        a.apply_policy(&action);
        a.ack(&[(action["id"].as_str().unwrap(), "POLICY_CHANGE")]);
        checkin_as(&mut a, host, json!({}));
    }
    a
}

/// The quick start's install command: what precedes the token and what follows it.
fn quick_start_command(server: &FleetEdge) -> (String, String, String) {
    let line = server
        .wait_for_log("sudo elastic-agent install", Duration::from_secs(10))
        .expect("the quick start");
    let command = line.trim();
    let (head, rest) = command.split_once("--enrollment-token=").unwrap();
    let (token, trust) = rest.split_once(' ').map_or((rest, ""), |(t, r)| (t, r));
    let url = head
        .trim_start_matches("sudo elastic-agent install --url=")
        .trim()
        .to_owned();
    let trust = if trust.is_empty() {
        String::new()
    } else {
        format!(" {trust}")
    };
    (url, token.to_owned(), trust)
}

/// `status-history.json` as a run that stopped a few minutes ago left it: three hours of
/// 5-minute samples with online, degraded and offline agents; the samples.
fn status_history_of_a_previous_run(data: &TempDir) -> Vec<Value> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let slot = now - now % 300;
    let samples: Vec<Value> = (1..=36u64)
        .rev()
        .map(|k| {
            // online, error, degraded, offline, then the other seven statuses.
            json!({"t": slot - 300 * k, "c": [2 + k % 4, 0, 1, u64::from(k > 24), 0, 0, 0, 0, 0, 0, 0]})
        })
        .collect();
    std::fs::write(
        data.join("status-history.json"),
        json!({ "samples": samples }).to_string(),
    )
    .unwrap();
    samples
}

/// CRC-32 (IEEE), as a zip entry names its data's.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// A diagnostics bundle as the agent zips one: a zip archive with one stored entry of
/// `size` bytes (the bundle spans two 4 MiB upload chunks, so the download joins chunks).
fn diagnostics_zip(size: usize) -> Vec<u8> {
    let name = b"diagnostics/agent-info.yaml";
    let data = bundle(size);
    let (crc, len) = (crc32(&data), u32::try_from(size).unwrap());
    let name_len = u16::try_from(name.len()).unwrap();
    let mut zip = Vec::with_capacity(size + 200);
    // Local file header: version 1.0, no flags, stored, no date.
    zip.extend(0x0403_4b50u32.to_le_bytes());
    zip.extend([10, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    for v in [crc, len, len] {
        zip.extend(v.to_le_bytes());
    }
    zip.extend(name_len.to_le_bytes());
    zip.extend(0u16.to_le_bytes());
    zip.extend(name);
    zip.extend(&data);
    let central = u32::try_from(zip.len()).unwrap();
    // Central directory entry for it, at offset 0.
    zip.extend(0x0201_4b50u32.to_le_bytes());
    zip.extend([20, 3, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    for v in [crc, len, len] {
        zip.extend(v.to_le_bytes());
    }
    zip.extend(name_len.to_le_bytes());
    zip.extend([0u8; 12]);
    zip.extend(0u32.to_le_bytes());
    zip.extend(name);
    let central_len = u32::try_from(zip.len()).unwrap() - central;
    // End of central directory: one entry.
    zip.extend(0x0605_4b50u32.to_le_bytes());
    zip.extend([0, 0, 0, 0, 1, 0, 1, 0]);
    zip.extend(central_len.to_le_bytes());
    zip.extend(central.to_le_bytes());
    zip.extend(0u16.to_le_bytes());
    zip
}

/// While the browser suite runs, the degraded agent checks in as a real agent does; when the
/// suite's "Request diagnostics" reaches it, it uploads `zip` through the upload endpoints and
/// acks the action with the upload id, as the agent's diagnostics handler does. Stops when the
/// suite ends (it may fail before it asks); the action's id if it came.
fn answer_diagnostics(
    agent: &mut Agent,
    host: &str,
    degraded: &Value,
    zip: &[u8],
    suite: &mut std::process::Child,
) -> Option<String> {
    // Generous: the suite's steps before the request take seconds here, more on a slow CI.
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        if suite.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
            return None;
        }
        // A long poll (1 s): it answers at once when an action is pending.
        let body = checkin_as(agent, host, degraded.clone());
        let asked = body["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == "REQUEST_DIAGNOSTICS");
        if let Some(action) = asked {
            let action_id = action["id"].as_str().unwrap().to_owned();
            let upload_id = upload(agent, &action_id, zip);
            ack_with_upload(agent, &action_id, &upload_id);
            return Some(action_id);
        }
    }
}

#[test]
fn the_console_in_a_browser() {
    if let Err(why) = browser() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser suite: {why}"
        );
        eprintln!("SKIPPED the console's browser suite: {why}");
        return;
    }
    ensure_packages();
    let data = TempDir::new("console");
    let history = status_history_of_a_previous_run(&data);
    let server = start_server(&data);
    // The previous run's samples are served, and this start's own (its 5-minute slot is new).
    let served = get(&server, "/api/fleet/fleet_edge/status_history");
    let samples = served["samples"].as_array().unwrap();
    assert!(samples.len() > history.len(), "{served}");
    for (sample, kept) in samples.iter().zip(&history) {
        assert_eq!(sample["counts"], kept["c"], "{served}");
    }
    let (fleet_url, token, trust) = quick_start_command(&server);

    agent(&server, &token, "gw-01", &["site-1"], true);
    let mut degraded = agent(&server, &token, "gw-02", &["site-1"], true);
    let degraded_body = json!({"status": "DEGRADED", "message": "1 unit degraded",
        "components": [{"id": "filestream-default", "type": "filestream", "status": "DEGRADED",
            "message": "Degraded", "units": [{"id": "filestream-default-logs", "type": "input",
            "status": "DEGRADED", "message": "cannot open /var/log/app.log"}]}]});
    checkin_as(&mut degraded, "gw-02", degraded_body.clone());
    agent(&server, &token, "gw-03", &["site-2"], true);
    agent(&server, &token, "gw-04", &[], false);
    let leaving = agent(&server, &token, "gw-05", &["site-2"], true);

    let policy = &get(&server, "/api/fleet/agent_policies")["items"][0];
    // The diagnostics bundle gw-02 uploads when the suite asks for it.
    let zip = diagnostics_zip(4 * MIB + 4096);
    let facts = json!({
        "by_status": {"online": 3, "degraded": 1, "updating": 1},
        "active": 5,
        "active_statuses": ["degraded", "online", "online", "online", "updating"],
        "degraded_host": "gw-02",
        "degraded_id": degraded.id,
        "degraded_message": "1 unit degraded",
        "degraded_unit_message": "cannot open /var/log/app.log",
        "tag": "site-2",
        "tagged": 2,
        "policy": policy["id"],
        "policy_name": policy["name"],
        "fleet_url": fleet_url,
        "trust": trust,
        "unenroll_id": leaving.id,
        "viewer_token": VIEWER_TOKEN,
        "viewer_name": "alice",
        "history_samples": history.len() + 1,
        "history_statuses": ["online", "degraded", "offline"],
        "bundle_size": zip.len(),
        "bundle_mime": "application/zip",
    });
    // The statuses the browser must show are the API's (checkins are written in batches).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let counts = get(&server, "/api/fleet/agent_status")["results"]["by_status"].clone();
        let seen: Vec<(String, u64)> = ["online", "degraded", "updating"]
            .iter()
            .map(|s| (s.to_string(), counts[s].as_u64().unwrap_or(0)))
            .collect();
        if seen
            == [
                ("online".into(), 3),
                ("degraded".into(), 1),
                ("updating".into(), 1),
            ]
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "statuses: {counts}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let shots = match std::env::var("FLEET_EDGE_SCREENSHOTS").as_deref() {
        Ok("docs") => Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console"),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots"),
    };
    std::fs::create_dir_all(&shots).unwrap();
    let url = std::fs::read_to_string(server.data_dir.join("management-url")).unwrap();
    let mut suite = Command::new("node")
        .arg("suite.js")
        .current_dir(suite_dir())
        .env("FLEET_EDGE_MANAGEMENT_URL", url.trim())
        .env("FLEET_EDGE_ADMIN_TOKEN", admin_token(&server))
        .env("CONSOLE_EXPECT", facts.to_string())
        .env("CONSOLE_BUNDLE_SHA256", hex(&sha256(&zip)))
        .env("CONSOLE_SCREENSHOTS", &shots)
        // Files, not pipes: nothing reads them while the agent below answers.
        .stdout(std::fs::File::create(data.join("suite.out")).unwrap())
        .stderr(std::fs::File::create(data.join("suite.err")).unwrap())
        .spawn()
        .expect("node runs");
    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        answer_diagnostics(&mut degraded, "gw-02", &degraded_body, &zip, &mut suite)
    }));
    if answered.is_err() {
        let _ = suite.kill();
    }
    let status = suite.wait().expect("the suite ends");
    let answered = answered.unwrap_or_else(|e| std::panic::resume_unwind(e));
    let stdout = std::fs::read_to_string(data.join("suite.out")).unwrap();
    eprintln!("{stdout}");
    assert!(
        status.success() && stdout.contains(" passed, 0 failed"),
        "the browser suite failed:\n{stdout}\n{}\nserver log:\n{}",
        std::fs::read_to_string(data.join("suite.err")).unwrap(),
        server.log()
    );
    let action_id = answered.expect("the suite's diagnostics request reached the agent");
    // The bundle the browser downloaded is the one stored for that action.
    let uploads = get(
        &server,
        &format!("/api/fleet/agents/{}/uploads", degraded.id),
    );
    assert_eq!(
        uploads["items"][0]["actionId"],
        action_id.as_str(),
        "{uploads}"
    );
    assert_eq!(uploads["items"][0]["status"], "READY", "{uploads}");
    for shot in ["overview.png", "agents.png", "agents-phone.png"] {
        let bytes = std::fs::read(shots.join(shot)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{shot} is not a PNG");
    }
    // The unenroll reached the store; the log names logins, never a token.
    let item = &get(&server, &format!("/api/fleet/agents/{}", leaving.id))["item"];
    assert!(
        !item["unenrollment_started_at"].is_null() || item["status"] == "unenrolling",
        "{item}"
    );
    let log = server.log();
    assert!(log.contains("console login refused: wrong token"), "{log}");
    assert!(log.contains("event.action=console-login event.outcome=success user.name=alice"));
    for secret in [
        admin_token(&server),
        VIEWER_TOKEN.to_owned(),
        "not-the-token-0000".into(),
    ] {
        assert!(!log.contains(&secret), "a token in the log");
    }
}

/// The console's headers and its login's rate limit over HTTP (no browser needed).
#[test]
fn console_headers_and_login_rate_limit() {
    let data = TempDir::new("console-http");
    let server = start_server(&data);
    let (status, page) = call(&server, "GET", "/console/", &[], "");
    assert_eq!(status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let wrong = r#"{"token":"wrong-token-0000000"}"#;
    for _ in 0..5 {
        let (status, _) = call(
            &server,
            "POST",
            "/console/api/login",
            &[("kbn-xsrf", "1")],
            wrong,
        );
        assert_eq!(status, 401);
    }
    let right = format!(r#"{{"token":"{}"}}"#, admin_token(&server));
    let (status, locked) = call(
        &server,
        "POST",
        "/console/api/login",
        &[("kbn-xsrf", "1")],
        &right,
    );
    assert_eq!(status, 429);
    assert!(locked.header("retry-after").is_some());
    // The bearer API is not locked out.
    let list = get(&server, "/api/fleet/agents");
    assert_eq!(list["total"], 0);
    let log = server.log();
    assert_eq!(
        log.matches("console login refused: wrong token").count(),
        5,
        "{log}"
    );
    assert!(log.contains("console login refused: too many wrong tokens"));
    assert!(!log.contains("wrong-token-0000000") && !log.contains(&admin_token(&server)));
}

/// Operators come and go with the file and a reload: a removed operator's session ends, a new
/// operator's token works at once.
#[test]
fn operator_tokens_are_reloaded_on_sighup() {
    let data = TempDir::new("console-operators");
    let server = start_server(&data);
    let body = format!(r#"{{"token":"{VIEWER_TOKEN}"}}"#);
    let (status, login) = call(
        &server,
        "POST",
        "/console/api/login",
        &[("kbn-xsrf", "1")],
        &body,
    );
    assert_eq!(status, 200);
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (status, _) = call(
        &server,
        "GET",
        "/api/fleet/agents",
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(status, 200);
    let bob = "0123456789abcdef-admin-bob";
    std::fs::write(data.join("operator-tokens"), format!("bob admin {bob}\n")).unwrap();
    server.sighup();
    server
        .wait_for_log("operator tokens (1)", Duration::from_secs(20))
        .expect("the reload names the operator tokens");
    let (status, _) = call(
        &server,
        "GET",
        "/api/fleet/agents",
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(status, 401, "a removed operator's session ends");
    let auth = format!("Bearer {bob}");
    let (status, created) = call(
        &server,
        "POST",
        "/api/fleet/enrollment_api_keys",
        &[("Authorization", &auth), ("kbn-xsrf", "1")],
        r#"{"policy_id":"fleet-edge-default"}"#,
    );
    assert_eq!(status, 200, "{:?}", created.json());
    assert!(!server.log().contains(bob));
}
