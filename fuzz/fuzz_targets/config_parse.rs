//! Fuzz target `config_parse`: arbitrary text as a command line and an environment, through
//! `config::parse` (flags, `FLEET_*` variables, their values and cross-checks, help/version,
//! `--print-config` rendering with secrets redacted). No input may panic; a refusal is a
//! `ConfigErrors` whose sentences render.
//!
//! Input layout: lines; a line `NAME=value` whose name is upper-case (`[A-Z0-9_]`) is an
//! environment variable, every other line one argument. Inputs naming an absolute path are
//! skipped: the parser reads the files that flags name, and `/dev/zero` is not a finding.
#![no_main]

use std::collections::HashMap;
use std::ffi::OsString;

use fleet_edge::config::{parse, Command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if text.contains('/') {
        return;
    }
    let mut args: Vec<OsString> = Vec::new();
    let mut env: HashMap<String, String> = HashMap::new();
    for line in text.split('\n') {
        match line.split_once('=') {
            Some((name, value))
                if !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
            {
                env.insert(name.to_owned(), value.to_owned());
            }
            _ => args.push(OsString::from(line)),
        }
    }
    match parse(args, &|name| env.get(name).cloned()) {
        Ok(Command::Run(config)) => {
            let _ = config.print_config();
        }
        Ok(_) => {}
        Err(errors) => {
            let _ = errors.to_string();
        }
    }
});
