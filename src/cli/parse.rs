//! The operator subcommands' grammar as one table ([`SPECS`]) and the parser and help generated
//! from it. Nothing is silently ignored: an unknown command, subcommand or option, a missing or
//! extra argument, or a repeated option is a usage error (exit 2) with the closest known name.
//! Tokens are split by pico-args (`--opt VALUE`, `--opt=VALUE`), as for the server's flags;
//! clap would do the same job at ~210 KB of binary (README, dependency table).

use std::ffi::OsString;

use crate::config::closest;

/// One option of a subcommand; every option takes a value but flags (an empty `value`).
#[derive(Debug)]
pub struct OptSpec {
    /// `--name`.
    pub flag: &'static str,
    /// The value's placeholder in help (`ID`); empty for a flag (`--force`), which takes none.
    pub value: &'static str,
    /// Whether the command cannot run without it.
    pub required: bool,
    /// One line of help.
    pub help: &'static str,
}

/// One runnable subcommand.
#[derive(Debug)]
pub struct CommandSpec {
    /// Its words after `fleet-edge` (`["tokens", "create"]`).
    pub words: &'static [&'static str],
    /// Its positional arguments' placeholders, all required.
    pub args: &'static [&'static str],
    /// Its options (`--data-dir` and `--help` are common to all).
    pub options: &'static [OptSpec],
    /// One line saying what it does.
    pub summary: &'static str,
}

const fn opt(
    flag: &'static str,
    value: &'static str,
    required: bool,
    help: &'static str,
) -> OptSpec {
    OptSpec {
        flag,
        value,
        required,
        help,
    }
}

/// Every subcommand. A first word shared by several rows is a group (`tokens`, `policy`); the
/// group alone runs its `list`.
pub const SPECS: &[CommandSpec] = &[
    CommandSpec {
        words: &["agents", "list"],
        args: &[],
        options: &[
            opt(
                "--status",
                "STATUS",
                false,
                "only agents in this status (online, error, degraded, offline, updating, ...; comma-separated)",
            ),
            opt("--policy", "ID", false, "only agents of this policy"),
            opt("--tag", "TAG", false, "only agents with this tag"),
            opt(
                "--query",
                "TEXT",
                false,
                "only agents whose id or host name contains TEXT",
            ),
            OUTPUT,
        ],
        summary: "list agents with status (as Kibana computes it), unhealthy reason, policy revision, version and last checkin",
    },
    CommandSpec {
        words: &["agents", "show"],
        args: &["AGENT_ID"],
        options: &[OUTPUT],
        summary: "show one agent: status, health per component and unit, upgrade progress, tags, policy and revision, last message",
    },
    CommandSpec {
        words: &["tags"],
        args: &["AGENT_ID"],
        options: &[opt(
            "--set",
            "TAGS",
            true,
            "the agent's tags, comma-separated (empty: none)",
        )],
        summary: "replace an agent's tags",
    },
    CommandSpec {
        words: &["reassign"],
        args: &["AGENT_ID"],
        options: &[opt("--policy", "ID", true, "the policy the agent moves to")],
        summary: "move an agent to another policy (POLICY_REASSIGN)",
    },
    CommandSpec {
        words: &["settings"],
        args: &["AGENT_ID"],
        options: &[opt(
            "--log-level",
            "LEVEL",
            true,
            "the agent's log level: trace, debug, info, warning or error",
        )],
        summary: "send SETTINGS (the agent's log level) to an agent",
    },
    CommandSpec {
        words: &["cancel"],
        args: &["ACTION_ID"],
        options: &[],
        summary: "send CANCEL for an action to the agents it targets",
    },
    CommandSpec {
        words: &["actions"],
        args: &[],
        options: &[OUTPUT],
        summary: "list actions with their progress (agents targeted, sent, acked, failed, errors)",
    },
    CommandSpec {
        words: &["tokens", "list"],
        args: &[],
        options: &[],
        summary: "list enrollment tokens",
    },
    CommandSpec {
        words: &["tokens", "create"],
        args: &[],
        options: &[
            opt(
                "--policy",
                "ID",
                true,
                "the policy agents enrolled with it get",
            ),
            opt(
                "--name",
                "NAME",
                false,
                "a name for the token (default: Default)",
            ),
        ],
        summary: "create an enrollment token for a policy",
    },
    CommandSpec {
        words: &["tokens", "revoke"],
        args: &["TOKEN_ID"],
        options: &[],
        summary: "revoke an enrollment token (its id, as listed)",
    },
    CommandSpec {
        words: &["policy", "list"],
        args: &[],
        options: &[],
        summary: "list policies and their latest revision",
    },
    CommandSpec {
        words: &["policy", "apply"],
        args: &["FILE"],
        options: &[],
        summary: "install a policy JSON file as the policy's next revision",
    },
    CommandSpec {
        words: &["unenroll"],
        args: &["AGENT_ID"],
        options: &[
            opt(
                "--force",
                "",
                false,
                "deactivate the agent now, without waiting for it to acknowledge (a dead or uninstalled agent)",
            ),
            opt(
                "--revoke",
                "",
                false,
                "deactivate now and invalidate the agent's API keys",
            ),
        ],
        summary: "unenroll an agent (UNENROLL, acknowledged by the agent; or at once with --force / --revoke)",
    },
    CommandSpec {
        words: &["upgrade"],
        args: &["[AGENT_ID...]"],
        options: &[
            opt(
                "--version",
                "VERSION",
                true,
                "the Elastic Agent version to upgrade to",
            ),
            opt(
                "--source-uri",
                "URL",
                false,
                "where the agent downloads the artifact (default: the agent's own setting, the mirror in the default policy)",
            ),
            opt(
                "--policy",
                "ID",
                false,
                "upgrade every enrolled agent of this policy",
            ),
            opt("--all", "", false, "upgrade every enrolled agent"),
            opt(
                "--rollout-duration",
                "DURATION",
                false,
                "spread the agents' start times over this long (e.g. 1h), as Kibana's bulk upgrade",
            ),
            opt(
                "--start-time",
                "TIME",
                false,
                "earliest start, RFC 3339 (default: now)",
            ),
            opt(
                "--force",
                "",
                false,
                "accepted as Kibana's force (fleet-edge checks no upgradeability)",
            ),
            DOWNLOADS_DIR,
        ],
        summary: "send UPGRADE to one agent, a list, a policy's agents or all",
    },
    CommandSpec {
        words: &["diagnostics"],
        args: &["AGENT_ID"],
        options: &[
            opt(
                "--wait",
                "DURATION",
                false,
                "wait this long (like 10m) for the agent's bundle and download it",
            ),
            opt(
                "--output",
                "FILE",
                false,
                "where --wait writes the bundle (default: the bundle's own name)",
            ),
        ],
        summary: "send REQUEST_DIAGNOSTICS to an agent (and with --wait, download the bundle)",
    },
    CommandSpec {
        words: &["files", "list"],
        args: &[],
        options: &[opt(
            "--agent",
            "ID",
            false,
            "only this agent's files",
        )],
        summary: "list uploaded files (agent, action, name, size, status, time)",
    },
    CommandSpec {
        words: &["files", "get"],
        args: &["FILE_ID"],
        options: &[opt("--output", "FILE", true, "where to write the file")],
        summary: "download an uploaded file (its id, as listed)",
    },
    CommandSpec {
        words: &["files", "send"],
        args: &["FILE"],
        options: &[
            opt(
                "--agent",
                "ID[,ID...]",
                true,
                "the agents that may fetch it (GET /api/fleet/file/{id})",
            ),
            opt("--name", "NAME", false, "the file's name (default: FILE's)"),
            opt(
                "--mime-type",
                "TYPE",
                false,
                "its Content-Type for agents (default application/octet-stream)",
            ),
        ],
        summary: "place a file for agents to fetch (embedded mode); prints its id",
    },
    CommandSpec {
        words: &["results"],
        args: &["ACTION_ID"],
        options: &[],
        summary: "list an action's results",
    },
    CommandSpec {
        words: &["migrate"],
        args: &["AGENT_ID"],
        options: &[
            opt(
                "--uri",
                "URL",
                true,
                "the Fleet Server the agent moves to",
            ),
            opt(
                "--enrollment-token",
                "TOKEN",
                true,
                "an enrollment token of that Fleet",
            ),
        ],
        summary: "send MIGRATE (agents 9.1+) to move an agent to another Fleet Server",
    },
    CommandSpec {
        words: &["artifacts", "list"],
        args: &[],
        options: &[DOWNLOADS_DIR],
        summary: "list the packages of the artifact mirror served at /downloads/",
    },
    CommandSpec {
        words: &["artifacts", "import"],
        args: &["FILE..."],
        options: &[DOWNLOADS_DIR],
        summary: "copy packages (with their .sha512 and .asc beside them) into the artifact mirror where Elastic's artifact site keeps them, verifying each against its .sha512",
    },
    CommandSpec {
        words: &["artifacts", "add-endpoint"],
        args: &["FILE..."],
        options: &[],
        summary: "embedded mode: install Elastic Defend artifacts (.fleet-artifacts documents as Kibana writes them, JSON) for GET /api/fleet/artifacts/{id}/{sha2}, checking body and digests",
    },
    CommandSpec {
        words: &["pgp", "import"],
        args: &["FILE"],
        options: &[opt(
            "--pgp-dir",
            "DIR",
            false,
            "the server's --pgp-dir (default: <data-dir>/pgp)",
        )],
        summary: "install the ASCII-armored PGP key agents verify upgrades with (default.pgp, mode 0600)",
    },
    CommandSpec {
        words: &["backup"],
        args: &["FILE"],
        options: &[],
        summary: "write the data dir and a consistent store copy to FILE (.tar.gz), server running or not",
    },
    CommandSpec {
        words: &["restore"],
        args: &["FILE"],
        options: &[],
        summary: "unpack a backup into an empty or absent --data-dir",
    },
];

const DOWNLOADS_DIR: OptSpec = opt(
    "--downloads-dir",
    "DIR",
    false,
    "the server's --downloads-dir (default: <data-dir>/downloads)",
);

/// `--output`, on the listing commands.
const OUTPUT: OptSpec = opt(
    "--output",
    "FORMAT",
    false,
    "table (default) or json (the management API's answer)",
);

/// The options every subcommand takes.
const COMMON: &[OptSpec] = &[opt(
    "--data-dir",
    "DIR",
    false,
    "the server's data dir (default: $FLEET_EDGE_DATA_DIR or fleet-edge-data)",
)];

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Print this help and exit 0.
    Help(String),
    /// Run this subcommand.
    Run(Invocation),
}

/// A subcommand with its arguments, checked against its [`CommandSpec`].
#[derive(Debug, PartialEq, Eq)]
pub struct Invocation {
    /// Its words (`["upgrade"]`).
    pub words: &'static [&'static str],
    /// Its positional arguments, as many as the spec names.
    pub args: Vec<String>,
    /// Options given, `(flag, value)`.
    pub options: Vec<(&'static str, String)>,
}

impl Invocation {
    /// The value of an option, if given.
    pub fn option(&self, flag: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(f, _)| *f == flag)
            .map(|(_, v)| v.as_str())
    }
}

/// A usage error: what is wrong, and the help command that shows the right usage.
#[derive(Debug, PartialEq, Eq)]
pub struct Usage {
    /// One sentence.
    pub problem: String,
    /// `fleet-edge help ...` for the command concerned.
    pub see: String,
}

/// The first words of all commands (the binary hands these, and `help`, to the CLI).
pub fn command_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = SPECS.iter().map(|s| s.words[0]).collect();
    names.dedup();
    names
}

fn group(first: &str) -> Vec<&'static CommandSpec> {
    SPECS
        .iter()
        .filter(|s| s.words[0] == first && s.words.len() > 1)
        .collect()
}

fn did_you_mean(word: &str, known: &[&'static str]) -> String {
    match closest(word, known.iter().copied()) {
        Some(k) => format!("; did you mean '{k}'?"),
        None => format!(" (one of: {})", known.join(", ")),
    }
}

/// Where `words` lead: a command, a group, or a usage error naming the unknown word.
enum Target {
    Command(&'static CommandSpec),
    Group(&'static str),
}

fn resolve(words: &[String]) -> Result<(Target, usize), Usage> {
    let names = command_names();
    let Some(first) = words.first() else {
        return Err(Usage {
            problem: "no command given".into(),
            see: "fleet-edge help".into(),
        });
    };
    let Some(&name) = names.iter().find(|n| **n == first.as_str()) else {
        return Err(Usage {
            problem: format!(
                "'{first}' is not a fleet-edge command{}",
                did_you_mean(first, &names)
            ),
            see: "fleet-edge help".into(),
        });
    };
    let subs = group(name);
    if subs.is_empty() {
        let spec = SPECS.iter().find(|s| s.words == [name]);
        return match spec {
            Some(spec) => Ok((Target::Command(spec), 1)),
            None => Err(Usage {
                problem: format!("'{name}' has no definition"),
                see: "fleet-edge help".into(),
            }),
        };
    }
    match words.get(1).filter(|w| !w.starts_with('-')) {
        Some(sub) => match subs.iter().find(|s| s.words[1] == sub.as_str()) {
            Some(spec) => Ok((Target::Command(spec), 2)),
            None => {
                let known: Vec<&'static str> = subs.iter().map(|s| s.words[1]).collect();
                Err(Usage {
                    problem: format!(
                        "'{sub}' is not a '{name}' command{}",
                        did_you_mean(sub, &known)
                    ),
                    see: format!("fleet-edge help {name}"),
                })
            }
        },
        None => Ok((Target::Group(name), 1)),
    }
}

/// Parses a subcommand line (`args` without the program name, starting with the command or
/// `help`).
pub fn parse(args: Vec<String>) -> Result<Parsed, Usage> {
    if args.first().map(String::as_str) == Some("help") {
        let words: Vec<String> = args[1..]
            .iter()
            .filter(|a| !a.starts_with('-'))
            .cloned()
            .collect();
        if words.is_empty() {
            return Ok(Parsed::Help(top_level_help()));
        }
        let (target, used) = resolve(&words)?;
        if let Some(extra) = words.get(used) {
            return Err(Usage {
                problem: format!("unexpected '{extra}' after the command name"),
                see: "fleet-edge help".into(),
            });
        }
        return Ok(Parsed::Help(match target {
            Target::Command(spec) => command_help(spec),
            Target::Group(name) => group_help(name),
        }));
    }
    let (target, used) = resolve(&args)?;
    let rest: Vec<OsString> = args[used..].iter().map(OsString::from).collect();
    let mut pargs = pico_args::Arguments::from_vec(rest);
    let wants_help = pargs.contains(["-h", "--help"]);
    let spec = match target {
        Target::Group(name) if wants_help => return Ok(Parsed::Help(group_help(name))),
        Target::Group(name) => match group(name).into_iter().find(|s| s.words[1] == "list") {
            Some(list) => list,
            None => {
                return Err(Usage {
                    problem: format!("'{name}' needs a command"),
                    see: format!("fleet-edge help {name}"),
                })
            }
        },
        Target::Command(spec) => spec,
    };
    if wants_help {
        return Ok(Parsed::Help(command_help(spec)));
    }
    let see = format!("fleet-edge help {}", spec.words.join(" "));
    let usage = |problem: String| Usage {
        problem,
        see: see.clone(),
    };
    let mut options = Vec::new();
    for o in spec.options.iter().chain(COMMON) {
        if o.value.is_empty() {
            if pargs.contains(o.flag) {
                if pargs.contains(o.flag) {
                    return Err(usage(format!("{} was given more than once", o.flag)));
                }
                options.push((o.flag, "true".to_owned()));
            }
            continue;
        }
        let first: Option<String> = pargs
            .opt_value_from_str(o.flag)
            .map_err(|e| usage(option_problem(o, &e)))?;
        let Some(value) = first else { continue };
        if value.starts_with("--") {
            return Err(usage(format!(
                "{} needs a value, but was followed by {value}",
                o.flag
            )));
        }
        if !matches!(pargs.opt_value_from_str::<_, String>(o.flag), Ok(None)) {
            return Err(usage(format!("{} was given more than once", o.flag)));
        }
        options.push((o.flag, value));
    }
    let leftovers: Vec<String> = pargs
        .finish()
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(unknown) = leftovers.iter().find(|a| a.starts_with('-') && a.len() > 1) {
        let key = unknown.split_once('=').map_or(unknown.as_str(), |(k, _)| k);
        let known: Vec<&'static str> = spec
            .options
            .iter()
            .chain(COMMON)
            .map(|o| o.flag)
            .chain(["--help"])
            .collect();
        return Err(usage(format!(
            "{key} is not an option of 'fleet-edge {}'{}",
            spec.words.join(" "),
            did_you_mean(key, &known)
        )));
    }
    // A last placeholder ending in `...` takes one or more arguments.
    let variadic = spec
        .args
        .last()
        .is_some_and(|a| a.trim_end_matches(']').ends_with("..."));
    if leftovers.len() > spec.args.len() && !variadic {
        return Err(usage(format!(
            "unexpected argument '{}'",
            leftovers[spec.args.len()]
        )));
    }
    // A placeholder in brackets (`[AGENT_ID...]`) is optional.
    if let Some(missing) = spec
        .args
        .get(leftovers.len())
        .filter(|a| !a.starts_with('['))
    {
        return Err(usage(format!("{missing} is missing")));
    }
    if let Some(o) = spec
        .options
        .iter()
        .find(|o| o.required && !options.iter().any(|(f, _)| *f == o.flag))
    {
        return Err(usage(format!("{} {} is required", o.flag, o.value)));
    }
    Ok(Parsed::Run(Invocation {
        words: spec.words,
        args: leftovers,
        options,
    }))
}

fn option_problem(o: &OptSpec, e: &pico_args::Error) -> String {
    match e {
        pico_args::Error::OptionWithoutAValue(_) => {
            format!("{} needs a value ({} {})", o.flag, o.flag, o.value)
        }
        pico_args::Error::NonUtf8Argument => format!("{} has a value that is not UTF-8", o.flag),
        other => format!("{}: {other}", o.flag),
    }
}

/// `fleet-edge upgrade AGENT_ID --version VERSION [--source-uri URL] [--data-dir DIR]`.
pub fn usage_line(spec: &CommandSpec) -> String {
    let mut line = format!("fleet-edge {}", spec.words.join(" "));
    for a in spec.args {
        line.push_str(&format!(" {a}"));
    }
    for o in spec.options {
        let head = format!("{} {}", o.flag, o.value);
        match o.required {
            true => line.push_str(&format!(" {}", head.trim_end())),
            false => line.push_str(&format!(" [{}]", head.trim_end())),
        }
    }
    line
}

/// `fleet-edge help COMMAND` / `fleet-edge COMMAND --help`.
pub fn command_help(spec: &CommandSpec) -> String {
    let mut out = format!(
        "Usage: {} [--data-dir DIR]\n\n{}.\n\nOptions:\n",
        usage_line(spec),
        capitalised(spec.summary)
    );
    let width = spec
        .options
        .iter()
        .chain(COMMON)
        .map(|o| o.flag.len() + 1 + o.value.len())
        .max()
        .unwrap_or(0)
        .max("-h, --help".len());
    for o in spec.options.iter().chain(COMMON) {
        let head = format!("{} {}", o.flag, o.value).trim_end().to_owned();
        out.push_str(&format!("  {head:<width$}  {}\n", o.help));
    }
    out.push_str(&format!("  {:<width$}  print this help\n", "-h, --help"));
    out
}

/// `fleet-edge help tokens` / `fleet-edge tokens --help`.
pub fn group_help(name: &str) -> String {
    let mut out = format!("Usage: fleet-edge {name} <command> [--data-dir DIR]\n\nCommands:\n");
    out.push_str(&commands_table(&group(name)));
    out.push_str(&format!(
        "\n'fleet-edge {name}' alone runs 'fleet-edge {name} list'; 'fleet-edge help {name} <command>' shows a command's options.\n"
    ));
    out
}

/// The management section of `fleet-edge help` / `--help`.
pub fn management_help() -> String {
    let all: Vec<&CommandSpec> = SPECS.iter().collect();
    format!(
        "Management commands (clients of a running fleet-edge in embedded mode; in Elasticsearch\nmode Kibana's Fleet UI and API manage agents):\n{}\nEach takes --data-dir DIR (default $FLEET_EDGE_DATA_DIR or fleet-edge-data) and --help;\n'fleet-edge help COMMAND' shows its options. Exit codes: 0 done, 1 failed or not found,\n2 bad command line.\n",
        commands_table(&all)
    )
}

/// `fleet-edge help` / `fleet-edge --help`: the server's flags, then the management commands.
pub fn top_level_help() -> String {
    format!("{}\n{}", crate::config::help_text(), management_help())
}

fn commands_table(specs: &[&CommandSpec]) -> String {
    let lines: Vec<(String, &str)> = specs.iter().map(|s| (usage_line(s), s.summary)).collect();
    let width = lines.iter().map(|(u, _)| u.len()).max().unwrap_or(0);
    lines
        .iter()
        .map(|(u, s)| format!("  {u:<width$}  {s}\n"))
        .collect()
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
