//! Precedence as code: for every row of the settings table, the raw value and where it came
//! from: CLI flag (pico-args, `--flag VALUE` or `--flag=VALUE`) over environment variable (first
//! non-empty of the row's names) over default. Also picks out the command flags and reports
//! unknown flags, stray arguments, missing values and repeats. Typed parsing is `build.rs`.

use std::ffi::OsString;
use std::fmt;

use super::settings::{Kind, SettingId, COMMAND_FLAGS, SETTINGS};

/// Where a setting's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// An environment variable.
    Env(&'static str),
    /// A command-line flag.
    Flag(&'static str),
    /// A default that depends on another setting (the reason is printed).
    DerivedDefault(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::Env(name) => write!(f, "env {name}"),
            Origin::Flag(name) => write!(f, "flag {name}"),
            Origin::DerivedDefault(why) => write!(f, "default ({why})"),
        }
    }
}

/// The raw value(s) of one setting. Empty `values` means unset.
#[derive(Clone, Debug)]
pub(super) struct Raw {
    pub id: SettingId,
    pub values: Vec<String>,
    pub origin: Origin,
}

/// Everything read from the arguments and the environment.
pub(super) struct Collected {
    pub help: bool,
    pub version: bool,
    pub print_config: bool,
    pub raw: Vec<Raw>,
    pub errors: Vec<String>,
}

pub(super) fn collect(args: Vec<OsString>, env: &dyn Fn(&str) -> Option<String>) -> Collected {
    let mut errors = Vec::new();

    // `--bool-flag=value` is split off first: pico-args only knows `--flag` for booleans.
    let mut rest = Vec::with_capacity(args.len());
    let mut bool_values: Vec<(SettingId, String)> = Vec::new();
    for arg in args {
        let text = arg.to_str().unwrap_or_default();
        let bool_flag = SETTINGS.iter().find(|s| {
            s.kind == Kind::Bool
                && s.flag.is_some_and(|f| {
                    text.strip_prefix(f)
                        .is_some_and(|after| after.starts_with('='))
                })
        });
        match bool_flag {
            Some(spec) => {
                let value = text.split_once('=').map_or("", |(_, v)| v);
                bool_values.push((spec.id, value.to_string()));
            }
            None => rest.push(arg),
        }
    }

    let mut pargs = pico_args::Arguments::from_vec(rest);
    let help = drain_switch(&mut pargs, ["-h", "--help"]);
    let version = drain_switch(&mut pargs, ["-V", "--version"]);
    let print_config = drain_switch(&mut pargs, "--print-config");

    let mut raw = Vec::with_capacity(SETTINGS.len());
    for spec in SETTINGS {
        let mut cli = Vec::new();
        if let Some(flag) = spec.flag {
            if spec.kind == Kind::Bool {
                cli.extend(
                    bool_values
                        .iter()
                        .filter(|(id, _)| *id == spec.id)
                        .map(|(_, v)| v.clone()),
                );
                while pargs.contains(flag) {
                    cli.push("true".to_string());
                }
            } else {
                match pargs.values_from_fn(flag, |s| Ok::<String, String>(s.to_string())) {
                    Ok(values) => cli = values,
                    Err(e) => errors.push(pico_error(flag, &e)),
                }
                for value in &cli {
                    if value.starts_with("--") {
                        errors.push(format!(
                            "{flag} needs a value, but was followed by the flag {value}."
                        ));
                    }
                }
            }
            if cli.len() > 1 && spec.kind != Kind::Repeated {
                errors.push(format!(
                    "{flag} was given {} times; give it once.",
                    cli.len()
                ));
            }
            if !cli.is_empty() {
                raw.push(Raw {
                    id: spec.id,
                    values: cli,
                    origin: Origin::Flag(flag),
                });
                continue;
            }
        }
        let from_env = spec.envs.iter().find_map(|name| {
            env(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (*name, v))
        });
        raw.push(match from_env {
            Some((name, value)) => Raw {
                id: spec.id,
                values: vec![value],
                origin: Origin::Env(name),
            },
            None => Raw {
                id: spec.id,
                values: spec.default.map(str::to_string).into_iter().collect(),
                origin: Origin::Default,
            },
        });
    }

    for leftover in pargs.finish() {
        let text = leftover.to_string_lossy();
        let key = text.split_once('=').map_or(&*text, |(k, _)| k);
        if SETTINGS.iter().any(|s| s.flag == Some(key)) {
            // A known flag left behind by a value error, which has been reported already.
            continue;
        }
        if text.starts_with('-') {
            let known = SETTINGS
                .iter()
                .filter_map(|s| s.flag)
                .chain(COMMAND_FLAGS.iter().map(|(flag, _, _)| *flag));
            errors.push(match super::environment::closest(key, known) {
                Some(flag) => format!("{key} is not a fleet-edge flag; did you mean {flag}?"),
                None => format!("{key} is not a fleet-edge flag (see --help for the list)."),
            });
        } else {
            errors.push(format!(
                "unexpected argument \"{text}\": fleet-edge takes only flags (see --help)."
            ));
        }
    }

    Collected {
        help,
        version,
        print_config,
        raw,
        errors,
    }
}

fn drain_switch<K: Into<pico_args::Keys> + Copy>(
    pargs: &mut pico_args::Arguments,
    keys: K,
) -> bool {
    let mut seen = false;
    while pargs.contains(keys) {
        seen = true;
    }
    seen
}

fn pico_error(flag: &str, e: &pico_args::Error) -> String {
    match e {
        pico_args::Error::OptionWithoutAValue(_) => {
            format!("{flag} needs a value ({flag} VALUE or {flag}=VALUE).")
        }
        pico_args::Error::NonUtf8Argument => format!("{flag} has a value that is not UTF-8."),
        other => format!("{flag}: {other}."),
    }
}
