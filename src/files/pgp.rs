//! The upgrade PGP key (fleet-protocol.md §8, Elastic's `handlePGPRequest.go`): read
//! `<dir>/default.pgp`, which must have permission bits exactly 0600; when it is absent, fetch
//! the upstream URL, keep the key in memory and write it to the directory (best effort, mode
//! 0600, the directory created 0700). A key that exists but cannot be used is an error, never a
//! reason to go upstream. Runs on a backend worker (it blocks on disk and network).

use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The file name Fleet Server serves from the PGP directory.
pub const KEY_FILE: &str = "default.pgp";
/// The only permission bits a served key file may have.
pub const KEY_MODE: u32 = 0o600;
/// `server.pgp.upstream_url`'s default.
pub const DEFAULT_UPSTREAM: &str = "https://artifacts.elastic.co/GPG-KEY-elastic-agent";
/// Largest key accepted from upstream (Elastic's key is ~1.7 KiB armored).
const MAX_UPSTREAM_KEY: u64 = 1024 * 1024;

/// Why the key cannot be served (every one is a 500 with this text, as in Fleet Server).
#[derive(Debug, thiserror::Error)]
pub enum PgpError {
    /// The key file's mode is not 0600.
    #[error("pgp key permissions are not 0600")]
    Permissions,
    /// The key file exists but could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The upstream answered something other than 200.
    #[error("upstream http server status error: {0}")]
    UpstreamStatus(u16),
    /// The upstream could not be reached or read.
    #[error("fetching the pgp key from {url}: {reason}")]
    Upstream {
        /// The upstream URL.
        url: String,
        /// What failed.
        reason: String,
    },
}

/// `server.pgp.dir` and `server.pgp.upstream_url`, with the upstream key once fetched.
#[derive(Debug, Default)]
pub struct PgpSource {
    /// Directory holding `default.pgp`.
    pub dir: PathBuf,
    /// Where to fetch the key when the file is absent (empty: never fetch).
    pub upstream_url: String,
    fetched: Mutex<Option<Vec<u8>>>,
}

impl PgpSource {
    /// A source reading `dir` and falling back to `upstream_url`.
    pub fn new(dir: PathBuf, upstream_url: String) -> Self {
        Self {
            dir,
            upstream_url,
            fetched: Mutex::new(None),
        }
    }

    /// The key file's path.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    /// The armored key: from the directory, else from memory, else from upstream.
    pub fn key(&self) -> Result<Vec<u8>, PgpError> {
        let path = self.key_path();
        match read_key(&path) {
            Ok(key) => return Ok(key),
            Err(PgpError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if let Some(key) = self.fetched.lock().ok().and_then(|k| k.clone()) {
            return Ok(key);
        }
        let key = fetch(&self.upstream_url)?;
        if let Ok(mut cached) = self.fetched.lock() {
            *cached = Some(key.clone());
        }
        match write_key(&self.dir, &key) {
            Ok(()) => log::info!(
                "pgp key from {} written to {}",
                self.upstream_url,
                path.display()
            ),
            Err(e) => log::error!("unable to write the pgp key to {}: {e}", path.display()),
        }
        Ok(key)
    }
}

/// Reads a key file whose mode is exactly 0600.
pub fn read_key(path: &Path) -> Result<Vec<u8>, PgpError> {
    let read_error = |source| PgpError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    if meta.permissions().mode() & 0o777 != KEY_MODE {
        return Err(PgpError::Permissions);
    }
    std::fs::read(path).map_err(read_error)
}

/// Writes `key` as `<dir>/default.pgp`, mode 0600, creating `dir` (0700) when missing; the file
/// is replaced atomically (a temporary file renamed over it).
pub fn write_key(dir: &Path, key: &[u8]) -> io::Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(dir)?;
    }
    let tmp = dir.join(format!(".{KEY_FILE}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(KEY_MODE)
        .open(&tmp)?;
    file.set_permissions(std::fs::Permissions::from_mode(KEY_MODE))?;
    file.write_all(key)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(KEY_FILE))
}

fn fetch(url: &str) -> Result<Vec<u8>, PgpError> {
    let failed = |reason: String| PgpError::Upstream {
        url: url.to_owned(),
        reason,
    };
    if url.is_empty() {
        return Err(failed("no upstream URL is configured".into()));
    }
    // The public web PKI (webpki-roots) and the one crypto provider of the process (ring).
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .root_certs(ureq::tls::RootCerts::WebPki)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .tls_config(tls)
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(PgpError::UpstreamStatus(status));
    }
    let mut key = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(MAX_UPSTREAM_KEY)
        .read_to_end(&mut key)
        .map_err(|e| failed(e.to_string()))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fleet-edge-pgp-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn written_keys_are_0600_and_served() {
        let dir = temp_dir("write");
        write_key(&dir, b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n").unwrap();
        let path = dir.join(KEY_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let source = PgpSource::new(dir.clone(), String::new());
        assert!(source.key().unwrap().starts_with(b"-----BEGIN PGP"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(source.key(), Err(PgpError::Permissions)));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_absent_key_without_a_reachable_upstream_is_an_error() {
        let dir = temp_dir("absent");
        let source = PgpSource::new(dir.clone(), String::new());
        assert!(matches!(source.key(), Err(PgpError::Upstream { .. })));
        // A port nothing listens on: connection refused, not a hang.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/GPG-KEY", free.local_addr().unwrap());
        drop(free);
        let source = PgpSource::new(dir.clone(), url);
        assert!(matches!(source.key(), Err(PgpError::Upstream { .. })));
        assert!(!dir.join(KEY_FILE).exists());
    }
}
