//! `fleet-edge artifacts import FILE...` and `fleet-edge pgp import FILE`: what the operator
//! copies onto an air-gapped box goes where the server serves it. A package lands where Elastic's
//! artifact site keeps it (`beats/elastic-agent/elastic-agent-9.6.0-linux-arm64.tar.gz`, Beats
//! under `beats/<name>/`, other products under `<name>/`), with its `.sha512` and `.asc` when they
//! sit beside it. A package with a `.sha512` is verified while it is copied (streamed, never read
//! whole); a mismatch leaves nothing behind. Copies are written under a hidden name (never served)
//! and renamed into place, so an agent never downloads half a package.

use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why an import failed: one sentence for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A named file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The mirror cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file name does not say which product and version it is.
    #[error("{0}: not an Elastic artifact name (expected <product>-<version>-<platform>..., e.g. elastic-agent-9.6.0-linux-arm64.tar.gz)")]
    Name(String),
    /// The package does not match its `.sha512`.
    #[error(
        "{path}: SHA-512 {actual} does not match {expected} in {checksum}; nothing was imported"
    )]
    Checksum {
        /// The package.
        path: PathBuf,
        /// Its `.sha512` file.
        checksum: PathBuf,
        /// The digest the `.sha512` names.
        expected: String,
        /// The package's digest.
        actual: String,
    },
    /// The `.sha512` file is not `<hex digest>  <name>`.
    #[error("{0}: not a SHA-512 checksum file (expected '<128 hex digits>  <file name>')")]
    ChecksumFormat(PathBuf),
    /// The key file is not an ASCII-armored PGP public key.
    #[error("{0}: not an ASCII-armored PGP public key (-----BEGIN PGP PUBLIC KEY BLOCK-----)")]
    NotAKey(PathBuf),
}

/// One file placed in the mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Path inside the mirror, `/`-separated.
    pub path: String,
    /// Whether a `.sha512` checked it.
    pub verified: bool,
}

/// The directory of Elastic's artifact site a file belongs in (`beats/elastic-agent`).
pub fn site_dir(file_name: &str) -> Option<String> {
    let product = product_of(file_name)?;
    let beat = product == "elastic-agent" || product.ends_with("beat");
    Some(match beat {
        true => format!("beats/{product}"),
        false => product.to_owned(),
    })
}

/// `elastic-agent` of `elastic-agent-9.6.0-linux-arm64.tar.gz`: everything before `-<digit>`.
fn product_of(file_name: &str) -> Option<&str> {
    let bytes = file_name.as_bytes();
    let at = (1..bytes.len()).find(|&i| {
        bytes.get(i - 1) == Some(&b'-') && bytes.get(i).is_some_and(u8::is_ascii_digit)
    })?;
    let product = file_name.get(..at - 1)?;
    let plain = !product.is_empty()
        && product
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    plain.then_some(product)
}

fn name_of(path: &Path) -> Result<String, ImportError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.starts_with('.'))
        .map(str::to_owned)
        .ok_or_else(|| ImportError::Name(path.display().to_string()))
}

/// The digest a `.sha512` file names (its first word; `sha512sum` and Elastic's files agree).
fn expected_digest(checksum: &Path) -> Result<String, ImportError> {
    let text = std::fs::read_to_string(checksum).map_err(|source| ImportError::Read {
        path: checksum.to_owned(),
        source,
    })?;
    let digest = text.split_whitespace().next().unwrap_or_default();
    if digest.len() != 128 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ImportError::ChecksumFormat(checksum.to_owned()));
    }
    Ok(digest.to_ascii_lowercase())
}

/// Copies `source` to `dest` through a hidden temporary name, returning the SHA-512 (hex) of
/// what was copied; the caller decides whether to keep it ([`finish`]).
fn copy_hashed(source: &Path, dest: &Path) -> Result<(PathBuf, String), ImportError> {
    let read_err = |e| ImportError::Read {
        path: source.to_owned(),
        source: e,
    };
    let parent = dest.parent().unwrap_or(Path::new("."));
    let tmp = parent.join(format!(
        ".{}.partial",
        dest.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("import")
    ));
    let write_err = |e| ImportError::Write {
        path: tmp.clone(),
        source: e,
    };
    // Private modes, as the data dir they usually live in is kept (`fsmode`).
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(parent)
        .map_err(|e| ImportError::Write {
            path: parent.to_owned(),
            source: e,
        })?;
    let mut input = std::fs::File::open(source).map_err(read_err)?;
    let mut output = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(write_err)?;
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA512);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(read_err(e));
            }
        };
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        if let Err(e) = output.write_all(chunk) {
            let _ = std::fs::remove_file(&tmp);
            return Err(write_err(e));
        }
    }
    if let Err(e) = output.sync_all() {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    let hex = hasher
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((tmp, hex))
}

fn finish(tmp: &Path, dest: &Path) -> Result<(), ImportError> {
    std::fs::rename(tmp, dest).map_err(|source| ImportError::Write {
        path: dest.to_owned(),
        source,
    })
}

/// Imports one package (and its `.sha512` / `.asc` beside it) into `mirror`; a `.sha512` or
/// `.asc` named alone goes beside its package.
pub fn import(mirror: &Path, source: &Path) -> Result<Vec<Imported>, ImportError> {
    let name = name_of(source)?;
    let dir = site_dir(&name).ok_or_else(|| ImportError::Name(name.clone()))?;
    let is_sidecar = name.ends_with(".sha512") || name.ends_with(".asc");
    let sidecar = |ext: &str| {
        let mut path = source.as_os_str().to_owned();
        path.push(ext);
        PathBuf::from(path)
    };
    let checksum = (!is_sidecar)
        .then(|| sidecar(".sha512"))
        .filter(|p| p.is_file());
    let expected = checksum.as_deref().map(expected_digest).transpose()?;
    let dest = mirror.join(&dir).join(&name);
    let (tmp, actual) = copy_hashed(source, &dest)?;
    if let (Some(expected), Some(checksum)) = (expected.as_ref(), checksum.as_ref()) {
        if *expected != actual {
            let _ = std::fs::remove_file(&tmp);
            return Err(ImportError::Checksum {
                path: source.to_owned(),
                checksum: checksum.clone(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    finish(&tmp, &dest)?;
    let mut imported = vec![Imported {
        path: format!("{dir}/{name}"),
        verified: expected.is_some(),
    }];
    if !is_sidecar {
        for ext in [".sha512", ".asc"] {
            let extra = sidecar(ext);
            if extra.is_file() {
                let extra_name = format!("{name}{ext}");
                let extra_dest = mirror.join(&dir).join(&extra_name);
                let (tmp, _) = copy_hashed(&extra, &extra_dest)?;
                finish(&tmp, &extra_dest)?;
                imported.push(Imported {
                    path: format!("{dir}/{extra_name}"),
                    verified: false,
                });
            }
        }
    }
    Ok(imported)
}

/// Installs an ASCII-armored PGP public key as `<pgp dir>/default.pgp`, mode 0600.
pub fn import_pgp_key(pgp_dir: &Path, source: &Path) -> Result<PathBuf, ImportError> {
    let key = std::fs::read(source).map_err(|e| ImportError::Read {
        path: source.to_owned(),
        source: e,
    })?;
    let armored = String::from_utf8_lossy(&key)
        .trim_start()
        .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----");
    if !armored {
        return Err(ImportError::NotAKey(source.to_owned()));
    }
    super::pgp::write_key(pgp_dir, &key).map_err(|e| ImportError::Write {
        path: pgp_dir.join(super::pgp::KEY_FILE),
        source: e,
    })?;
    Ok(pgp_dir.join(super::pgp::KEY_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_go_where_elastics_artifact_site_keeps_them() {
        let cases = [
            (
                "elastic-agent-9.6.0-linux-arm64.tar.gz",
                "beats/elastic-agent",
            ),
            (
                "elastic-agent-9.6.0-windows-x86_64.zip.sha512",
                "beats/elastic-agent",
            ),
            ("filebeat-8.17.1-linux-x86_64.tar.gz", "beats/filebeat"),
            ("fleet-server-9.6.0-linux-x86_64.tar.gz", "fleet-server"),
            (
                "endpoint-security-9.6.0-linux-arm64.tar.gz",
                "endpoint-security",
            ),
        ];
        for (name, dir) in cases {
            assert_eq!(site_dir(name).as_deref(), Some(dir), "{name}");
        }
        for bad in [
            "agent.tar.gz",
            "-9.6.0.tar.gz",
            "../x-9.6.0.tar.gz",
            "a b-1.tar.gz",
        ] {
            assert_eq!(site_dir(bad), None, "{bad}");
        }
    }
}
