//! The documents that describe the binary, checked against it: the README's configuration table
//! and the packaged `/etc/default/fleet-edge` (`packaging/fleet-edge.default`) must name every
//! flag and environment variable the binary knows. The names come from the settings table that
//! `--help` is generated from, and from the real `fleet-edge --help` output (every `FLEET_*` /
//! `ELASTICSEARCH_*` name in it), so a setting added on any branch fails here until it is
//! documented.
//!
//! `packaging/fleet-edge.default` is generated from the settings table by this file:
//! `UPDATE_GENERATED=1 cargo test --test integration docs::` rewrites it; without the variable a
//! difference fails the test.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use fleet_edge::config::{Kind, SettingId, SettingSpec, SETTINGS};

use crate::support::run_to_exit;

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(repo_file(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

/// True for an environment variable name fleet-edge reads (Elastic's prefixes and its own).
fn is_env_name(token: &str) -> bool {
    (token.starts_with("FLEET_") || token.starts_with("ELASTICSEARCH_"))
        && !token.ends_with('_')
        && token
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Every environment variable name in a text, wherever it stands.
fn env_names_in(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| is_env_name(t))
        .map(str::to_owned)
        .collect()
}

/// Every `--flag` name in a text.
fn flag_names_in(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|t| t.starts_with("--") && t.len() > 2 && !t.ends_with('-'))
        .map(str::to_owned)
        .collect()
}

/// What the binary says it accepts: the settings table plus every environment variable named in
/// `fleet-edge --help`. Also checks that `--help` really lists the table (so the two agree).
fn known_names() -> (BTreeSet<String>, BTreeSet<String>) {
    let (status, help, stderr) = run_to_exit(&["--help"], &[]);
    assert!(status.success(), "--help failed: {stderr}");
    let mut flags = BTreeSet::new();
    let mut envs = env_names_in(&help);
    for setting in SETTINGS {
        if let Some(flag) = setting.flag {
            assert!(help.contains(flag), "--help does not list {flag}");
            flags.insert(flag.to_owned());
        }
        for env in setting.envs {
            assert!(help.contains(env), "--help does not list {env}");
            envs.insert((*env).to_owned());
        }
    }
    assert!(flags.len() >= 30 && envs.len() >= 35, "too few names found");
    (flags, envs)
}

/// The README's `## Configuration` section, up to the next `## ` heading.
fn readme_configuration() -> String {
    let readme = read("README.md");
    let start = readme
        .find("\n## Configuration\n")
        .expect("README has a ## Configuration section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_owned()
}

/// The rows of the configuration table: (flag cell, environment cell, default cell).
fn table_rows(section: &str) -> Vec<[String; 3]> {
    section
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| flag "))
        .map(|l| {
            let cells: Vec<String> = l
                .replace("\\|", "/")
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect();
            assert!(cells.len() >= 5, "table row with fewer than 3 cells: {l}");
            [cells[1].clone(), cells[2].clone(), cells[3].clone()]
        })
        .collect()
}

fn setting_of(flags: &BTreeSet<String>, envs: &BTreeSet<String>) -> Vec<&'static SettingSpec> {
    SETTINGS
        .iter()
        .filter(|s| {
            s.flag.is_some_and(|f| flags.contains(f)) || s.envs.iter().any(|e| envs.contains(*e))
        })
        .collect()
}

#[test]
fn readme_configuration_table_lists_every_flag_and_variable() {
    let (flags, envs) = known_names();
    let rows = table_rows(&readme_configuration());
    let mut listed_flags = BTreeSet::new();
    let mut listed_envs = BTreeSet::new();
    let mut problems = Vec::new();
    for [flag_cell, env_cell, default_cell] in &rows {
        let row_flags = flag_names_in(flag_cell);
        let row_envs = env_names_in(env_cell);
        for unknown in row_flags.difference(&flags) {
            problems.push(format!(
                "README lists {unknown}, which fleet-edge does not accept"
            ));
        }
        for unknown in row_envs.difference(&envs) {
            problems.push(format!(
                "README lists {unknown}, which fleet-edge does not read"
            ));
        }
        // One setting per row: its default is in the default column.
        if let [setting] = setting_of(&row_flags, &row_envs)[..] {
            if let Some(default) = setting.default {
                if !default_cell.contains(default) {
                    problems.push(format!(
                        "README's default for {} is '{default_cell}', the binary's is '{default}'",
                        setting.name()
                    ));
                }
            }
        }
        listed_flags.extend(row_flags);
        listed_envs.extend(row_envs);
    }
    for missing in flags.difference(&listed_flags) {
        problems.push(format!("README's configuration table lacks {missing}"));
    }
    for missing in envs.difference(&listed_envs) {
        problems.push(format!("README's configuration table lacks {missing}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Notes for the packaged service, where its unit changes what a setting means.
fn package_note(id: SettingId) -> Option<&'static str> {
    match id {
        SettingId::DataDir => Some(
            "The unit sets /var/lib/fleet-edge, the service's state dir and its only writable \
             path; moving it needs StateDirectory= and ReadWritePaths= in a drop-in as well.",
        ),
        SettingId::Port => Some(
            "A port below 1024 needs CAP_NET_BIND_SERVICE: see the comment in the unit \
             (systemctl cat fleet-edge).",
        ),
        SettingId::MaxConnections => Some(
            "Each connection holds a descriptor: the unit's LimitNOFILE=16384 covers the default; \
             raise both together (systemctl edit fleet-edge).",
        ),
        SettingId::ServiceToken => {
            Some("Prefer FLEET_SERVER_SERVICE_TOKEN_PATH; this file is readable by root only.")
        }
        _ => None,
    }
}

fn wrap_comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() > 1 && line.len() + 1 + word.len() > 98 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

/// `/etc/default/fleet-edge`: every setting, commented out at its default.
fn render_env_file() -> String {
    let mut out = String::from(
        "# /etc/default/fleet-edge: settings of the fleet-edge service, read by systemd\n\
         # (EnvironmentFile= in fleet-edge.service). Every setting fleet-edge has is below, commented\n\
         # out at its default; uncomment and edit, then `systemctl restart fleet-edge`.\n\
         # (`systemctl reload` sends SIGHUP, which re-reads certificate and policy files, not this file.)\n\
         # Syntax: NAME=value, one per line, no `export`; quote a value that has spaces.\n\
         # `fleet-edge --help` describes the same settings; `fleet-edge --print-config` shows the\n\
         # values in effect. Generated from fleet-edge's settings table (tests/integration/docs.rs).\n",
    );
    let mut section = None;
    for setting in SETTINGS {
        if section != Some(setting.section) {
            section = Some(setting.section);
            let _ = write!(out, "\n# ==== {} ====\n", setting.section.title());
        }
        let Some((primary, fallbacks)) = setting.envs.split_first() else {
            continue;
        };
        out.push('\n');
        let flag = setting
            .flag
            .map_or(String::from("(environment only)"), |f| format!("flag {f}"));
        let policy = if setting.policy_overridable {
            ", the Fleet Server policy may override it"
        } else {
            ""
        };
        let _ = writeln!(out, "# {primary} ({flag}{policy})");
        wrap_comment(&mut out, setting.help);
        if !fallbacks.is_empty() {
            wrap_comment(
                &mut out,
                &format!(
                    "Also read, when {primary} is unset: {}.",
                    fallbacks.join(", ")
                ),
            );
        }
        if setting.kind == Kind::List {
            wrap_comment(&mut out, "Several values: comma-separated.");
        }
        if let Some(note) = package_note(setting.id) {
            wrap_comment(&mut out, note);
        }
        let value = match (setting.id, setting.default) {
            (SettingId::DataDir, _) => "/var/lib/fleet-edge",
            (_, Some(default)) => default,
            (_, None) => "",
        };
        let _ = writeln!(out, "#{primary}={value}");
    }
    out
}

#[test]
fn packaged_env_file_is_generated_from_the_settings_table() {
    let path = repo_file("packaging/fleet-edge.default");
    let expected = render_env_file();
    if std::env::var_os("UPDATE_GENERATED").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "packaging/fleet-edge.default is not what the settings table generates; run \
         UPDATE_GENERATED=1 cargo test --test integration docs:: and commit the file"
    );
}

#[test]
fn packaged_env_file_names_every_variable_of_help() {
    let (_, envs) = known_names();
    let file = read("packaging/fleet-edge.default");
    let in_file = env_names_in(&file);
    let missing: Vec<&String> = envs.difference(&in_file).collect();
    assert!(missing.is_empty(), "env file lacks {missing:?}");
    // Every primary name is an assignment line an operator can uncomment.
    for setting in SETTINGS {
        if let Some(primary) = setting.envs.first() {
            let line = format!("\n#{primary}=");
            assert!(file.contains(&line), "env file has no '#{primary}=' line");
        }
    }
}
