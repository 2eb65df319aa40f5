//! Log output on stderr: one line per record, either human text or ECS-style JSON
//! (`@timestamp`, `log.level`, `message`, `log.logger`, `ecs.version`, `service.name`), which is
//! what Elastic's own Fleet Server emits and what Filebeat/Elastic Agent ingest without parsing.
//!
//! A small `log::Log` of our own instead of env_logger: the level comes from our configuration
//! (`--log-level`), not from `RUST_LOG`, and the JSON shape is ours to fix.
//!
//! Other crates' records are capped at `info` whatever the level: at debug and trace they print
//! wire bytes (ureq-proto hex-dumps every Elasticsearch request and response, Authorization
//! headers and minted API keys included; rustls prints handshake messages), and no level may
//! put a secret in the log. Their warnings and errors still come through.

use std::io::Write;
use std::time::SystemTime;

/// The two line formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `2026-11-22T19:54:00.123Z INFO  fleet_edge::net: message`
    Text,
    /// `{"@timestamp":"...","log.level":"info","message":"...",...}`
    Json,
}

impl From<crate::config::LogFormat> for Format {
    fn from(format: crate::config::LogFormat) -> Self {
        match format {
            crate::config::LogFormat::Text => Format::Text,
            crate::config::LogFormat::Json => Format::Json,
        }
    }
}

/// The level lives in `log`'s global maximum, so a reload can change it ([`set_level`]).
struct Logger {
    format: Format,
}

/// Installs the logger for the whole process. Calling it twice keeps the first one.
pub fn init(level: log::LevelFilter, format: Format) {
    if log::set_boxed_logger(Box::new(Logger { format })).is_ok() {
        log::set_max_level(level);
    }
}

/// The most verbose level a record from another crate is written at.
const THIRD_PARTY_CAP: log::LevelFilter = log::LevelFilter::Info;

/// Whether a record's target is this crate's own (`fleet_edge`, `fleet_edge::...`).
fn is_ours(target: &str) -> bool {
    target
        .strip_prefix("fleet_edge")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

/// The level records of `target` are written up to, given the configured one.
fn level_for(target: &str, configured: log::LevelFilter) -> log::LevelFilter {
    if is_ours(target) {
        configured
    } else {
        configured.min(THIRD_PARTY_CAP)
    }
}

/// Changes the level of the installed logger (a reload reading `<data-dir>/log-level`).
pub fn set_level(level: log::LevelFilter) {
    log::set_max_level(level);
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= level_for(metadata.target(), log::max_level())
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "a log line carries the wall-clock time it is written at"
    )]
    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_record(self.format, SystemTime::now(), record);
        // A closed stderr must not take the server down; the record is dropped.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

fn format_record(format: Format, now: SystemTime, record: &log::Record) -> String {
    let ts = crate::model::time::rfc3339_millis(now);
    let level = record.level();
    match format {
        Format::Text => format!("{ts} {level:<5} {}: {}\n", record.target(), record.args()),
        Format::Json => {
            let line = serde_json::json!({
                "@timestamp": ts,
                "log.level": level.as_str().to_ascii_lowercase(),
                "message": record.args().to_string(),
                "log.logger": record.target(),
                "ecs.version": "1.6.0",
                "service.name": "fleet-edge",
            });
            format!("{line}\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(
            crate::model::time::rfc3339_millis(UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
        let t = UNIX_EPOCH + Duration::from_millis(1_795_377_240_123);
        assert_eq!(
            crate::model::time::rfc3339_millis(t),
            "2026-11-22T19:54:00.123Z"
        );
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(
            crate::model::time::rfc3339_millis(leap),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn other_crates_are_capped_at_info_whatever_the_level() {
        let at =
            |target: &str, level: log::Level| level <= level_for(target, log::LevelFilter::Trace);
        assert!(at("fleet_edge::backend::es", log::Level::Trace));
        assert!(at("fleet_edge", log::Level::Trace));
        for wire in [
            "ureq_proto::util",
            "ureq::run",
            "rustls::conn",
            "redb",
            "mio::poll",
        ] {
            assert!(!at(wire, log::Level::Trace), "{wire} at trace");
            assert!(!at(wire, log::Level::Debug), "{wire} at debug");
            assert!(at(wire, log::Level::Info), "{wire} at info");
            assert!(at(wire, log::Level::Warn), "{wire} at warn");
        }
        assert!(!at("fleet_edge_other", log::Level::Debug));
        assert!(
            log::Level::Info > level_for("ureq::run", log::LevelFilter::Warn),
            "the configured level still applies"
        );
    }

    #[test]
    fn json_lines_are_ecs_shaped() {
        let args = format_args!("listening on {}", "https://127.0.0.1:8220");
        let record = log::Record::builder()
            .args(args)
            .level(log::Level::Info)
            .target("fleet_edge::net")
            .build();
        let line = format_record(Format::Json, UNIX_EPOCH, &record);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["log.level"], "info");
        assert_eq!(v["message"], "listening on https://127.0.0.1:8220");
        assert_eq!(v["@timestamp"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["ecs.version"], "1.6.0");
        let text = format_record(Format::Text, UNIX_EPOCH, &record);
        assert_eq!(
            text,
            "1970-01-01T00:00:00.000Z INFO  fleet_edge::net: listening on https://127.0.0.1:8220\n"
        );
    }
}
