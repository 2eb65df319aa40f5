//! The grammar's tests: suggestions, counting, help at every level.

#![allow(clippy::unwrap_used, clippy::panic)]
use super::*;

fn parse_line(line: &str) -> Result<Parsed, Usage> {
    parse(line.split_whitespace().map(str::to_owned).collect())
}

fn usage_error(line: &str) -> String {
    match parse_line(line) {
        Err(u) => u.problem,
        Ok(p) => panic!("{line}: expected a usage error, got {p:?}"),
    }
}

fn run(line: &str) -> Invocation {
    match parse_line(line) {
        Ok(Parsed::Run(inv)) => inv,
        other => panic!("{line}: {other:?}"),
    }
}

fn help(line: &str) -> String {
    match parse_line(line) {
        Ok(Parsed::Help(text)) => text,
        other => panic!("{line}: {other:?}"),
    }
}

#[test]
fn misspelled_commands_and_options_get_a_suggestion() {
    assert_eq!(
        usage_error("agnets"),
        "'agnets' is not a fleet-edge command; did you mean 'agents'?"
    );
    assert_eq!(
        usage_error("tokens crate --policy p"),
        "'crate' is not a 'tokens' command; did you mean 'create'?"
    );
    assert_eq!(
        usage_error("tokens create --policy p --nmae x"),
        "--nmae is not an option of 'fleet-edge tokens create'; did you mean '--name'?"
    );
    assert_eq!(
        usage_error("upgrade a1 --version 9.2.0 --source-url=http://x"),
        "--source-url is not an option of 'fleet-edge upgrade'; did you mean '--source-uri'?"
    );
    let far = usage_error("agents --frobnicate-everything");
    assert!(far.starts_with("--frobnicate-everything is not an option of 'fleet-edge agents list' (one of: --status, --policy"), "{far}");
}

#[test]
fn arguments_are_counted_and_required_options_checked() {
    assert_eq!(usage_error("results"), "ACTION_ID is missing");
    assert_eq!(usage_error("unenroll a b"), "unexpected argument 'b'");
    assert_eq!(
        usage_error("agents extra"),
        "'extra' is not a 'agents' command (one of: list, show)"
    );
    assert_eq!(
        usage_error("agents list extra"),
        "unexpected argument 'extra'"
    );
    assert_eq!(usage_error("agents show"), "AGENT_ID is missing");
    assert_eq!(
        usage_error("unenroll a --force --force"),
        "--force was given more than once"
    );
    let inv = run("unenroll a --revoke");
    assert_eq!(
        (inv.option("--revoke"), inv.option("--force")),
        (Some("true"), None)
    );
    assert_eq!(usage_error("upgrade a1"), "--version VERSION is required");
    assert_eq!(usage_error("tokens create"), "--policy ID is required");
    assert_eq!(
        usage_error("upgrade a1 --version"),
        "--version needs a value (--version VERSION)"
    );
    assert_eq!(
        usage_error("upgrade a1 --version 1 --version=2"),
        "--version was given more than once"
    );
    assert_eq!(
        usage_error("upgrade a1 --version --source-uri http://x"),
        "--version needs a value, but was followed by --source-uri"
    );
}

#[test]
fn a_full_command_line_keeps_every_value() {
    let inv =
        run("upgrade a1 --version 9.2.0 --source-uri=https://artifacts.example/dl --data-dir /d");
    assert_eq!(inv.words, ["upgrade"]);
    assert_eq!(inv.args, ["a1"]);
    assert_eq!(inv.option("--version"), Some("9.2.0"));
    assert_eq!(
        inv.option("--source-uri"),
        Some("https://artifacts.example/dl")
    );
    assert_eq!(inv.option("--data-dir"), Some("/d"));
    let inv = run("tokens create --name site-7 --policy p");
    assert_eq!(inv.words, ["tokens", "create"]);
    assert_eq!(inv.option("--name"), Some("site-7"));
    // A group alone is its list.
    assert_eq!(run("tokens").words, ["tokens", "list"]);
    assert_eq!(run("policy --data-dir /d").words, ["policy", "list"]);
}

#[test]
fn help_at_every_level() {
    let top = help("help");
    assert!(top.contains("--fleet-server-es") && top.contains("fleet-edge tokens create"));
    for line in ["help agents", "agents --help", "agents -h"] {
        let text = help(line);
        assert!(
            text.starts_with("Usage: fleet-edge agents <command>"),
            "{line}"
        );
        assert!(text.contains("fleet-edge agents show AGENT_ID"), "{line}");
    }
    assert!(help("help unenroll").contains("[--force] [--revoke]"));
    for line in ["help tokens", "tokens --help"] {
        let text = help(line);
        assert!(
            text.starts_with("Usage: fleet-edge tokens <command>"),
            "{line}"
        );
        assert!(text.contains("fleet-edge tokens revoke TOKEN_ID"), "{line}");
    }
    for line in ["help upgrade", "upgrade --help", "upgrade a1 --help"] {
        let text = help(line);
        assert!(text.contains("--source-uri URL"), "{line}: {text}");
    }
    assert!(help("tokens create --help").contains("--policy ID"));
    assert!(help("help tokens create").contains("--policy ID"));
    assert_eq!(
        usage_error("help agnets"),
        "'agnets' is not a fleet-edge command; did you mean 'agents'?"
    );
    assert_eq!(
        usage_error("help unenroll now"),
        "unexpected 'now' after the command name"
    );
}

#[test]
fn every_spec_has_help_and_a_unique_name() {
    for spec in SPECS {
        let text = command_help(spec);
        for o in spec.options {
            assert!(text.contains(o.flag), "{text}");
        }
        assert_eq!(
            SPECS.iter().filter(|s| s.words == spec.words).count(),
            1,
            "{:?}",
            spec.words
        );
    }
}
