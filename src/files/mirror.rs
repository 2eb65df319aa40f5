//! The artifact mirror's file lookup: a request path under `/downloads/` to an open regular file
//! inside the mirror directory, or not found. Refused (as not found, so nothing about the disk
//! leaks): bad percent-encoding, empty segments, any segment starting with `.` (`..`, `.`, hidden
//! and partially imported files), NUL or backslash, anything whose resolved path (symlinks
//! followed) leaves the directory, directories, and every non-regular file (FIFOs, devices,
//! sockets). Runs on a backend worker; the answer (ranges, validators) is `api::downloads`.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// What a worker needs to answer one mirror request (`api::downloads::request` makes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRequest {
    /// The mirror directory.
    pub root: PathBuf,
    /// The raw path after `/downloads/` (percent-decoded by the lookup).
    pub path: String,
    /// `Range`, if sent.
    pub range: Option<String>,
    /// `If-Range`, if sent.
    pub if_range: Option<String>,
    /// `If-None-Match`, if sent.
    pub if_none_match: Option<String>,
}

/// Why a mirror path is not served.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// Absent, refused or not a regular file: 404.
    #[error("not found")]
    NotFound,
    /// The file exists but could not be opened or examined.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// A mirror file, open, with what its validators are made of.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The open file.
    pub file: Arc<File>,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, seconds since the epoch.
    pub modified_secs: u64,
    /// Its modification time's sub-second part, for the entity tag.
    pub modified_nanos: u32,
    /// The file name (last path segment), for its content type.
    pub name: String,
}

/// Decodes `%XX` escapes; `None` for a malformed escape or a result that is not UTF-8.
pub fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The relative path a raw request path (after `/downloads/`) names, when it is acceptable.
pub fn relative_path(raw: &str) -> Option<PathBuf> {
    let decoded = percent_decode(raw)?;
    let mut path = PathBuf::new();
    for segment in decoded.split('/') {
        let refused = segment.is_empty()
            || segment.starts_with('.')
            || segment.contains('\0')
            || segment.contains('\\');
        if refused {
            return None;
        }
        path.push(segment);
    }
    Some(path)
}

/// Opens the mirror file `raw` (a raw request path after `/downloads/`) under `root`.
pub fn open(root: &Path, raw: &str) -> Result<Opened, MirrorError> {
    let relative = relative_path(raw).ok_or(MirrorError::NotFound)?;
    let not_found_or = |e: io::Error| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => MirrorError::NotFound,
        _ => MirrorError::Io(e),
    };
    let root = root.canonicalize().map_err(not_found_or)?;
    let resolved = root.join(&relative).canonicalize().map_err(not_found_or)?;
    if !resolved.starts_with(&root) {
        log::debug!("mirror: {raw:?} resolves outside the mirror directory");
        return Err(MirrorError::NotFound);
    }
    // Checked before opening (opening a FIFO would block) and again on the open file.
    if !std::fs::metadata(&resolved)
        .map_err(not_found_or)?
        .is_file()
    {
        return Err(MirrorError::NotFound);
    }
    let file = File::open(&resolved).map_err(not_found_or)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(MirrorError::NotFound);
    }
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    Ok(Opened {
        file: Arc::new(file),
        size: meta.len(),
        modified_secs: modified.as_secs(),
        modified_nanos: modified.subsec_nanos(),
        name: relative
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    })
}

/// One file of the mirror, for `fleet-edge artifacts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Path relative to the mirror root, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// Every regular file under `root` (symlinks not followed, hidden entries skipped), sorted.
pub fn list(root: &Path) -> io::Result<Vec<Listed>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&relative))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let kind = entry.file_type()?;
            let path = relative.join(&name);
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                out.push(Listed {
                    path: path.to_string_lossy().into_owned(),
                    size: entry.metadata()?.len(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_hidden_segments_are_refused_before_touching_the_disk() {
        for raw in [
            "../etc/passwd",
            "beats/../../x",
            "%2e%2e/x",
            "%2E%2E/x",
            "beats/%2e%2e%2f%2e%2e/x",
            "./x",
            "/etc/passwd",
            "a//b",
            "",
            ".hidden",
            "a%00b",
            "a%5cb",
            "bad%zz",
            "%ff",
        ] {
            assert_eq!(relative_path(raw), None, "{raw}");
        }
        assert_eq!(
            relative_path("beats/elastic-agent/elastic-agent-9.6.0-linux-arm64.tar.gz"),
            Some(PathBuf::from(
                "beats/elastic-agent/elastic-agent-9.6.0-linux-arm64.tar.gz"
            ))
        );
        assert_eq!(relative_path("a%20b"), Some(PathBuf::from("a b")));
    }
}
