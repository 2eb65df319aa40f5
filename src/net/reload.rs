//! What SIGHUP reads again (`systemctl reload`): the listener's certificate, key, key passphrase
//! and client-certificate authorities from the files the configuration named (or the self-signed
//! files in the data dir), the management API's admin token (`<data-dir>/admin-token`), the log
//! level (`<data-dir>/log-level`; without that file, the level the process started with), and
//! whatever the owner hooks in (embedded mode: a policy-file scan).
//!
//! Flags and environment variables are not read again: a running process's environment cannot
//! change (systemd re-reads an `EnvironmentFile` only when it starts the process), so the
//! settings given there need a restart. The log level is the exception an operator needs while
//! the service runs, hence its file.
//!
//! A reload is all or nothing: everything is loaded first, and one failure (unreadable file, bad
//! PEM, a key that does not match its certificate, a certificate `FLEET_URL` is not a name of)
//! keeps the running configuration. The loading runs on a thread of its own (decrypting a key or
//! generating a certificate takes a moment); the event loop applies the result
//! (`server::reload`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;

use crate::config::{Config, ServerTls};
use crate::mgmt::token::Credentials;
use crate::tls::{self, sha256_fingerprint_hex};

/// A step the owner adds to every reload; returns a note for the reload's log line.
pub type ReloadHook = Box<dyn FnMut() -> Option<String> + Send>;

/// The file whose content, when present, is the log level after a reload.
pub fn log_level_path(data_dir: &Path) -> PathBuf {
    data_dir.join("log-level")
}

/// What a successful reload changes in the event loop.
pub struct Reloaded {
    /// A new TLS configuration for new handshakes (`None`: the certificate and client
    /// authorities did not change, so the running one and its session cache stay).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The management API's tokens, when it has them.
    pub admin_token: Option<Credentials>,
    /// One line: what changed.
    pub summary: String,
}

/// What the running configuration is, to say what a reload changed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Current {
    certificate: Option<String>,
    client_cas: Vec<String>,
    admin_token: Option<Credentials>,
    level: log::LevelFilter,
}

/// Loads the reloadable configuration again; owned by the server.
pub struct Reloader {
    config: Config,
    current: Current,
    hooks: Vec<ReloadHook>,
}

impl Reloader {
    /// A reloader for a server started with `config`, serving `certificate` (`None`: plain
    /// HTTP) and, with a management API, `admin_token`.
    pub fn new(
        config: &Config,
        certificate: Option<&CertificateDer<'_>>,
        admin_token: Option<Credentials>,
    ) -> Self {
        Self {
            current: Current {
                certificate: certificate.map(sha256_fingerprint_hex),
                client_cas: config
                    .server
                    .client_cas
                    .iter()
                    .map(sha256_fingerprint_hex)
                    .collect(),
                admin_token,
                level: log::max_level(),
            },
            config: config.clone(),
            hooks: Vec::new(),
        }
    }

    /// Adds a step run after the rest of a reload succeeded.
    pub fn add_hook(&mut self, hook: ReloadHook) {
        self.hooks.push(hook);
    }

    /// Reads everything again; on success the log level is already applied and the caller
    /// applies the rest. The error is one sentence.
    pub fn reload(&mut self) -> Result<Reloaded, String> {
        let data_dir = self.config.data_dir.clone();
        let tls = self.load_tls()?;
        let admin_token = match &self.current.admin_token {
            None => None,
            Some(_) => Some(load_credentials(&data_dir)?),
        };
        let level = match read_level(&log_level_path(&data_dir))? {
            Some(level) => level,
            None => self.config.log_level,
        };
        let mut changes = Vec::new();
        let mut new_tls = None;
        if let Some((config, certificate, client_cas)) = tls {
            if self.current.certificate.as_ref() != Some(&certificate) {
                changes.push(format!(
                    "server certificate SHA-256 {} -> {}",
                    short(self.current.certificate.as_deref()),
                    short(Some(&certificate))
                ));
            }
            if self.current.client_cas != client_cas {
                changes.push(format!(
                    "client certificate authorities ({} certificate(s))",
                    client_cas.len()
                ));
            }
            if self.current.certificate.as_ref() != Some(&certificate)
                || self.current.client_cas != client_cas
            {
                new_tls = Some(config);
                self.current.certificate = Some(certificate);
                self.current.client_cas = client_cas;
            }
        }
        if let (Some(new), Some(old)) = (&admin_token, &self.current.admin_token) {
            if new.admin != old.admin {
                changes.push("management admin token".to_owned());
            }
            if new.operators != old.operators {
                changes.push(format!("operator tokens ({})", new.operators.len()));
            }
        }
        if admin_token.is_some() {
            self.current.admin_token.clone_from(&admin_token);
        }
        if level != self.current.level {
            changes.push(format!("log level {} -> {level}", self.current.level));
            self.current.level = level;
            crate::logging::set_level(level);
        }
        for hook in &mut self.hooks {
            if let Some(note) = hook() {
                changes.push(note);
            }
        }
        let summary = if changes.is_empty() {
            "reloaded: nothing changed".to_owned()
        } else {
            format!("reloaded: {}", changes.join("; "))
        };
        Ok(Reloaded {
            tls: new_tls,
            admin_token,
            summary,
        })
    }

    /// The listener's TLS configuration from the files again, with the served certificate's
    /// and the client authorities' fingerprints; `None` for plain HTTP.
    #[allow(clippy::type_complexity)]
    fn load_tls(&self) -> Result<Option<(Arc<rustls::ServerConfig>, String, Vec<String>)>, String> {
        let server = &self.config.server;
        let files = &server.tls_files;
        let material = match &server.tls {
            ServerTls::PlainHttp => return Ok(None),
            ServerTls::Provided(running) => match (&files.cert, &files.key) {
                (Some(cert), Some(key)) => {
                    tls::load_material(cert, key, files.passphrase.as_deref())
                        .map_err(|e| e.to_string())?
                }
                _ => running.clone(),
            },
            ServerTls::SelfSigned { hosts } => {
                let request = tls::self_signed::KeyRequest::for_setting(
                    server.self_signed_key,
                    server.defend_policy.as_deref(),
                );
                tls::self_signed::load_or_create(&self.config.data_dir, hosts, request)
                    .map_err(|e| e.to_string())?
                    .material
            }
        };
        super::listen::check_fleet_url(&self.config, &material).map_err(|e| e.to_string())?;
        let client_cas = if files.client_cas.is_empty() {
            server.client_cas.clone()
        } else {
            tls::load_certificate_authorities(&files.client_cas).map_err(|e| e.to_string())?
        };
        let config = tls::server_config(&material, server.client_auth, &client_cas)
            .map_err(|e| e.to_string())?;
        let certificate = material
            .chain
            .first()
            .map(sha256_fingerprint_hex)
            .unwrap_or_default();
        let client_cas = client_cas.iter().map(sha256_fingerprint_hex).collect();
        Ok(Some((config, certificate, client_cas)))
    }
}

/// The first 16 hex digits of a fingerprint, enough to tell two certificates apart in a log line.
fn short(fingerprint: Option<&str>) -> String {
    fingerprint.map_or_else(|| "(none)".to_owned(), |f| f.chars().take(16).collect())
}

/// The admin token file (deleting it and reloading mints a new one) and the operator tokens.
fn load_credentials(data_dir: &Path) -> Result<Credentials, String> {
    Ok(Credentials {
        admin: load_admin_token(data_dir)?,
        operators: crate::mgmt::token::load_operators(data_dir)?,
    })
}

/// The admin token file again: deleting it and reloading mints a new one.
fn load_admin_token(data_dir: &Path) -> Result<String, String> {
    let path = crate::mgmt::token::path(data_dir);
    let token = crate::mgmt::token::load_or_create(data_dir)
        .map_err(|e| format!("cannot read the admin token {}: {e}", path.display()))?;
    // The token is sent as a header value: it must be one, and long enough not to be guessed.
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the admin token in {} must be at least 16 printable characters without spaces",
            path.display()
        ));
    }
    Ok(token)
}

/// The level in `path`, if the file exists.
fn read_level(path: &Path) -> Result<Option<log::LevelFilter>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .trim()
            .parse::<log::LevelFilter>()
            .map(Some)
            .map_err(|_| {
                format!(
                    "{} holds {:?}, not one of off, error, warn, info, debug, trace",
                    path.display(),
                    text.trim()
                )
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_file_is_optional_and_checked() {
        let dir = std::env::temp_dir().join(format!("fleet-edge-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = log_level_path(&dir);
        let _ = std::fs::remove_file(&path);
        assert_eq!(read_level(&path).unwrap(), None);
        std::fs::write(&path, "Debug\n").unwrap();
        assert_eq!(read_level(&path).unwrap(), Some(log::LevelFilter::Debug));
        std::fs::write(&path, "loud").unwrap();
        let e = read_level(&path).unwrap_err();
        assert!(e.contains("\"loud\""), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_short_or_spaced_admin_token_is_refused() {
        let dir =
            std::env::temp_dir().join(format!("fleet-edge-reload-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(crate::mgmt::token::path(&dir), "short").unwrap();
        assert!(load_admin_token(&dir).unwrap_err().contains("at least 16"));
        std::fs::write(crate::mgmt::token::path(&dir), "a token with spaces in it").unwrap();
        assert!(load_admin_token(&dir).is_err());
        std::fs::write(crate::mgmt::token::path(&dir), "0123456789abcdef-ok\n").unwrap();
        assert_eq!(load_admin_token(&dir).unwrap(), "0123456789abcdef-ok");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
