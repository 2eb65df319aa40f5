//! What the subcommands print: `agents list` and `actions` as tables whose columns are as wide
//! as their widest cell, `agents show` as a report (health per component and unit, upgrade
//! progress, tags, policy and revision, last message), `files list` as a table of uploaded files,
//! everything else — and any command with
//! `--output json` — as the management API's JSON, pretty-printed (scripts parse it).

use serde_json::Value;

/// The text printed for a command's answer, ending with a newline.
pub fn render(words: &[&str], answer: &Value, json: bool) -> String {
    match words {
        ["agents", "list"] if !json => agents_table(answer),
        ["agents", "show"] if !json => agent_report(&answer["item"]),
        ["actions"] if !json => actions_table(answer),
        ["files", "list"] if !json => files_table(answer),
        _ => format!(
            "{}\n",
            serde_json::to_string_pretty(answer).unwrap_or_default()
        ),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "-".to_owned(),
    }
}

/// Why an agent is unhealthy, in a few words: Kibana's `unhealthy_reason`, a failed upgrade,
/// the policy's output problems; `-` when nothing is wrong.
fn unhealthy(a: &Value) -> String {
    let mut reasons: Vec<String> = a["unhealthy_reason"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|r| format!("{r} unhealthy"))
        .collect();
    if let Some(e) = a["upgrade_failure"].as_str() {
        reasons.push(format!("upgrade failed: {e}"));
    }
    let problems = problems(&a["problems"]);
    if problems != "-" {
        reasons.push(problems);
    }
    if reasons.is_empty() {
        "-".to_owned()
    } else {
        reasons.join("; ")
    }
}

fn agents_table(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = answer["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            vec![
                text(&a["id"]),
                text(&a["type"]),
                text(&a["status"]),
                text(&a["hostname"]),
                text(&a["policy_id"]),
                text(&a["policy_revision"]),
                text(&a["version"]),
                text(&a["last_checkin"]),
                upgrade(&a["upgrade_details"]),
                unhealthy(a),
            ]
        })
        .collect();
    table(
        &[
            ("ID", Align::Left),
            ("TYPE", Align::Left),
            ("STATUS", Align::Left),
            ("HOST", Align::Left),
            ("POLICY", Align::Left),
            ("REVISION", Align::Right),
            ("VERSION", Align::Left),
            ("LAST CHECKIN", Align::Left),
            ("UPGRADE", Align::Left),
            ("PROBLEMS", Align::Left),
        ],
        &rows,
    )
}

/// An upgrade's progress from the agent's `upgrade_details` (fleet-protocol.md §3.10): its
/// state and target, the download percentage while downloading, the error once failed; `-`
/// when no upgrade is under way.
fn upgrade(details: &Value) -> String {
    let Some(state) = details["state"].as_str() else {
        return "-".to_owned();
    };
    let mut cell = state.to_owned();
    if let Some(version) = details["target_version"].as_str() {
        cell.push_str(&format!("->{version}"));
    }
    let meta = &details["metadata"];
    if let Some(percent) = meta["download_percent"].as_f64() {
        cell.push_str(&format!(" {percent:.0}%"));
    }
    for key in ["error_msg", "retry_error_msg"] {
        if let Some(error) = meta[key].as_str().filter(|e| !e.is_empty()) {
            cell.push_str(&format!(": {error}"));
            break;
        }
    }
    cell
}

fn agent_report(a: &Value) -> String {
    let tags: Vec<&str> = a["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<14}{v}\n"));
    line("id", text(&a["id"]));
    line("status", text(&a["status"]));
    line("problems", unhealthy(a));
    line("host", text(&a["hostname"]));
    line("version", text(&a["version"]));
    line(
        "policy",
        format!(
            "{} revision {}",
            text(&a["policy_id"]),
            text(&a["policy_revision"])
        ),
    );
    line(
        "tags",
        if tags.is_empty() {
            "-".into()
        } else {
            tags.join(", ")
        },
    );
    line("enrolled", text(&a["enrolled_at"]));
    line(
        "last checkin",
        format!(
            "{} ({})",
            text(&a["last_checkin"]),
            text(&a["last_checkin_status"])
        ),
    );
    line("message", text(&a["last_checkin_message"]));
    let details = &a["upgrade_details"];
    if details.is_object() {
        line("upgrade", upgrade(details));
    }
    let components = a["components"].as_array().cloned().unwrap_or_default();
    if !components.is_empty() {
        out.push_str("components\n");
        for c in &components {
            out.push_str(&format!(
                "  {}  {}  {}\n",
                text(&c["id"]),
                text(&c["status"]),
                text(&c["message"])
            ));
            for u in c["units"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "    {} {}  {}  {}\n",
                    text(&u["type"]),
                    text(&u["id"]),
                    text(&u["status"]),
                    text(&u["message"])
                ));
            }
        }
    }
    out
}

fn files_table(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = answer["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            [
                "id",
                "agentId",
                "actionId",
                "name",
                "size",
                "status",
                "createTime",
            ]
            .iter()
            .map(|k| text(&f[*k]))
            .collect()
        })
        .collect();
    table(
        &[
            ("ID", Align::Left),
            ("AGENT", Align::Left),
            ("ACTION", Align::Left),
            ("NAME", Align::Left),
            ("SIZE", Align::Right),
            ("STATUS", Align::Left),
            ("TIME", Align::Left),
        ],
        &rows,
    )
}

fn actions_table(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = answer["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let errors: Vec<String> = a["latestErrors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| format!("{}: {}", text(&e["agentId"]), text(&e["error"])))
                .collect();
            vec![
                text(&a["actionId"]),
                text(&a["type"]),
                text(&a["status"]),
                text(&a["nbAgentsActionCreated"]),
                text(&a["nbAgentsSent"]),
                text(&a["nbAgentsAck"]),
                text(&a["nbAgentsFailed"]),
                text(&a["creationTime"]),
                text(&a["expiration"]),
                if errors.is_empty() {
                    "-".into()
                } else {
                    errors.join("; ")
                },
            ]
        })
        .collect();
    table(
        &[
            ("ACTION", Align::Left),
            ("TYPE", Align::Left),
            ("STATUS", Align::Left),
            ("AGENTS", Align::Right),
            ("SENT", Align::Right),
            ("ACKED", Align::Right),
            ("FAILED", Align::Right),
            ("CREATED", Align::Left),
            ("EXPIRES", Align::Left),
            ("ERRORS", Align::Left),
        ],
        &rows,
    )
}

/// The policy output problems of an agent (`transform::output_check`), `-` when there are none.
fn problems(list: &Value) -> String {
    let problems: Vec<&str> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if problems.is_empty() {
        "-".to_owned()
    } else {
        problems.join("; ")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// Columns separated by two spaces, each as wide as its widest cell (header included); the last
/// column is not padded, so lines carry no trailing blanks.
fn table(columns: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (header, _))| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([header.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let headers: Vec<String> = columns.iter().map(|(h, _)| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(&headers).chain(rows) {
        let mut line = String::new();
        for (i, ((_, align), width)) in columns.iter().zip(&widths).enumerate() {
            let cell = row.get(i).map(String::as_str).unwrap_or_default();
            let last = i + 1 == columns.len();
            if i > 0 {
                line.push_str("  ");
            }
            match (align, last) {
                (Align::Right, _) => line.push_str(&format!("{cell:>width$}")),
                (Align::Left, false) => line.push_str(&format!("{cell:<width$}")),
                (Align::Left, true) => line.push_str(cell),
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_are_as_wide_as_their_content_and_line_up() {
        let answer = json!({"items": [
            {"id": "a-very-long-agent-identifier-0123456789", "status": "online", "policy_id": "p",
             "policy_revision": 12345678901u64, "version": "9.2.1", "last_checkin": "2026-01-01T00:00:00Z"},
            {"id": "b", "status": "unenrolled", "policy_id": "a-long-policy-name-for-the-edge",
             "policy_revision": 3, "version": "", "last_checkin": ""},
        ]});
        let out = render(&["agents", "list"], &answer, false);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        // Every column starts at the same offset on every line.
        for header in ["STATUS", "POLICY", "VERSION", "LAST CHECKIN"] {
            let at = lines[0].find(header).unwrap();
            for line in &lines[1..] {
                assert_eq!(
                    &line[at - 2..at],
                    "  ",
                    "column {header} misaligned:\n{out}"
                );
                assert_ne!(
                    line.as_bytes()[at],
                    b' ',
                    "column {header} misaligned:\n{out}"
                );
            }
        }
        // The revision is right-aligned: numbers end where the header ends.
        let end = lines[0].find("REVISION").unwrap() + "REVISION".len();
        assert_eq!(&lines[1][end - 11..end], "12345678901", "{out}");
        assert_eq!(&lines[2][end - 1..end], "3", "{out}");
        assert!(lines[2].ends_with("  -"), "empty cells show '-': {out}");
        assert!(out.lines().all(|l| l == l.trim_end()), "{out:?}");
    }

    #[test]
    fn upgrade_progress_is_shown_from_upgrade_details() {
        let cell = |details: Value| upgrade(&details);
        assert_eq!(cell(Value::Null), "-");
        assert_eq!(
            cell(json!({"state": "UPG_REQUESTED", "target_version": "9.6.0"})),
            "UPG_REQUESTED->9.6.0"
        );
        assert_eq!(
            cell(
                json!({"state": "UPG_DOWNLOADING", "target_version": "9.6.0", "metadata": {"download_percent": 42.4}})
            ),
            "UPG_DOWNLOADING->9.6.0 42%"
        );
        assert_eq!(
            cell(
                json!({"state": "UPG_FAILED", "target_version": "9.6.0", "metadata": {"error_msg": "checksum mismatch"}})
            ),
            "UPG_FAILED->9.6.0: checksum mismatch"
        );
        let out = render(
            &["agents", "list"],
            &json!({"items": [{"id": "a", "upgrade_details": {"state": "UPG_WATCHING"}}]}),
            false,
        );
        assert!(out.lines().next().unwrap().contains("UPGRADE"), "{out}");
        assert!(out.contains("UPG_WATCHING"), "{out}");
    }

    #[test]
    fn other_answers_are_pretty_json() {
        let out = render(&["results"], &json!({"total": 0, "items": []}), false);
        assert_eq!(
            serde_json::from_str::<Value>(&out).unwrap(),
            json!({"total": 0, "items": []})
        );
        assert!(out.ends_with("}\n"));
    }
}
