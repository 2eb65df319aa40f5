//! Text generated from the settings table: `--help` (every flag with its environment
//! variable(s), default and policy rule) and `--print-config` (every effective value with its
//! origin, secrets redacted). Part of `config`; the table is `settings.rs`.

use std::fmt::Write as _;

use super::settings::{spec, Kind, Section, COMMAND_FLAGS, SETTINGS};
use super::SettingValue;

const INTRO: &str = "\
Usage: fleet-edge [FLAGS]

A small, wire-compatible Elastic Fleet Server for edge gateways.

Every setting is a flag and/or an environment variable. Precedence: defaults < environment
variables < flags; the first listed environment variable wins over the ones after it. Flags take
--flag VALUE or --flag=VALUE; boolean flags take no value (or --flag=true|false). Boolean
environment variables are true for 1, true, yes or y and false for 0, false, no or n (any case).
\"policy: may override\" marks settings the Fleet Server policy can change after bootstrap;
\"policy: never\" ones come only from flags or the environment.
";

/// The `--help` text.
pub(super) fn help() -> String {
    let mut out = format!("{}\n{INTRO}", super::version());
    for section in [Section::Elasticsearch, Section::Agents, Section::Runtime] {
        let _ = write!(out, "\n{}:\n", section.title());
        for s in SETTINGS.iter().filter(|s| s.section == section) {
            let head = match (s.flag, s.kind) {
                (Some(flag), Kind::Bool) => flag.to_string(),
                (Some(flag), Kind::Repeated) => format!("{flag} {} (repeatable)", s.value_name),
                (Some(flag), _) => format!("{flag} {}", s.value_name),
                (None, _) => format!(
                    "{}={} (environment only)",
                    s.envs.first().copied().unwrap_or("?"),
                    s.value_name
                ),
            };
            let _ = writeln!(out, "  {head}");
            for line in wrap(s.help, 90) {
                let _ = writeln!(out, "        {line}");
            }
            let mut facts = Vec::new();
            if !s.envs.is_empty() {
                facts.push(format!("env: {}", s.envs.join(", ")));
            }
            if let Some(default) = s.default {
                facts.push(format!("default: {default}"));
            }
            facts.push(
                if s.policy_overridable {
                    "policy: may override"
                } else {
                    "policy: never"
                }
                .to_string(),
            );
            if s.secret {
                facts.push("secret".to_string());
            }
            let _ = writeln!(out, "        [{}]", facts.join(" | "));
        }
    }
    out.push_str("\nCommands:\n");
    for (long, short, text) in COMMAND_FLAGS {
        let names = match short {
            Some(short) => format!("{short}, {long}"),
            None => long.to_string(),
        };
        let _ = writeln!(out, "  {names:<18} {text}");
    }
    out
}

/// The `--print-config` text.
pub(super) fn print_config(settings: &[SettingValue]) -> String {
    let mut out = String::from(
        "# fleet-edge effective configuration (precedence: default < env < flag; secrets redacted)\n",
    );
    let width = SETTINGS.iter().map(|s| s.name().len()).max().unwrap_or(0);
    for v in settings {
        let name = spec(v.id).name();
        let _ = writeln!(out, "{name:<width$}  {}  # {}", v.shown, v.origin);
    }
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
