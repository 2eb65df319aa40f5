//! File modes of the data dir: it holds the store (enrollment tokens, agents' key hashes), private
//! keys, the admin token and policy files with output credentials, so only the server's own user
//! may read any of it. Directories are 0700 and files 0600; certificates (`*.crt`, public by
//! nature) may stay readable (0644).
//!
//! New files are created with these modes where they are written ([`private_file`],
//! [`private_dir`]); [`secure_data_dir`] runs once at start and tightens what an older version,
//! an operator's editor or a restored backup left looser, one log line per path changed.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of directories under the data dir.
pub const DIR_MODE: u32 = 0o700;
/// The mode of files under the data dir.
pub const FILE_MODE: u32 = 0o600;
/// The most a certificate (`*.crt`) may be opened to.
const CERT_MODE: u32 = 0o644;

/// How deep [`secure_data_dir`] descends (the layout is two levels; the bound keeps a symlink
/// loop or a mistaken data dir from walking a whole disk).
const MAX_DEPTH: usize = 4;

/// Why the data dir could not be secured.
#[derive(Debug, thiserror::Error)]
pub enum FsModeError {
    /// A path could not be created, read or changed.
    #[error("cannot secure {path} (mode {mode:04o} wanted): {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The mode it should have had.
        mode: u32,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A path whose mode [`secure_data_dir`] tightened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tightened {
    /// The path.
    pub path: PathBuf,
    /// Its mode before.
    pub old: u32,
    /// Its mode now.
    pub new: u32,
}

/// Creates `data_dir` (0700) if needed and tightens every directory in it to 0700 and every
/// file to 0600 (certificates to 0644), logging one line per path changed. Symbolic links are
/// not followed.
pub fn secure_data_dir(data_dir: &Path) -> Result<Vec<Tightened>, FsModeError> {
    private_dir(data_dir).map_err(|source| FsModeError::Io {
        path: data_dir.to_path_buf(),
        mode: DIR_MODE,
        source,
    })?;
    let mut changed = Vec::new();
    walk(data_dir, 0, &mut changed)?;
    for t in &changed {
        log::warn!(
            "tightened the mode of {} from {:04o} to {:04o}",
            t.path.display(),
            t.old,
            t.new
        );
    }
    Ok(changed)
}

fn walk(path: &Path, depth: usize, changed: &mut Vec<Tightened>) -> Result<(), FsModeError> {
    let io = |mode: u32| {
        let path = path.to_path_buf();
        move |source| FsModeError::Io { path, mode, source }
    };
    let meta = std::fs::symlink_metadata(path).map_err(io(DIR_MODE))?;
    let wanted = if meta.is_dir() {
        DIR_MODE
    } else if meta.is_file() {
        if path.extension().is_some_and(|e| e == "crt") {
            CERT_MODE
        } else {
            FILE_MODE
        }
    } else {
        return Ok(()); // symlinks, sockets, fifos: not ours to change
    };
    let old = meta.permissions().mode() & 0o7777;
    let new = old & wanted;
    if new != old {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(new)).map_err(io(wanted))?;
        changed.push(Tightened {
            path: path.to_path_buf(),
            old,
            new,
        });
    }
    if meta.is_dir() && depth < MAX_DEPTH {
        let entries = std::fs::read_dir(path).map_err(io(DIR_MODE))?;
        for entry in entries {
            let entry = entry.map_err(io(DIR_MODE))?;
            walk(&entry.path(), depth + 1, changed)?;
        }
    }
    Ok(())
}

/// Creates `dir` and its missing parents with mode 0700 (an existing one is left as it is).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Options that create a file with mode 0600 (write, create, truncate).
pub fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE);
    options
}

/// Writes `contents` to a file created with mode 0600 (an existing file keeps its mode).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = private_file().open(path)?;
    file.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("fleet-edge-fsmode-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn looser_modes_are_tightened_and_reported() {
        let dir = scratch("loose");
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        std::fs::create_dir_all(dir.join("certs")).unwrap();
        std::fs::write(dir.join("policies/p.json"), "{}").unwrap();
        std::fs::write(dir.join("certs/ca.crt"), "pem").unwrap();
        std::fs::write(dir.join("certs/ca.key"), "pem").unwrap();
        std::fs::write(dir.join("admin-token"), "t").unwrap();
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        set(&dir, 0o755);
        set(&dir.join("policies"), 0o777);
        set(&dir.join("policies/p.json"), 0o664);
        set(&dir.join("certs/ca.crt"), 0o666);
        set(&dir.join("certs/ca.key"), 0o644);
        set(&dir.join("admin-token"), 0o400);
        std::os::unix::fs::symlink("/etc/hostname", dir.join("link")).unwrap();

        let changed = secure_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("policies")), 0o700);
        assert_eq!(mode(&dir.join("policies/p.json")), 0o600);
        assert_eq!(mode(&dir.join("certs/ca.crt")), 0o644);
        assert_eq!(mode(&dir.join("certs/ca.key")), 0o600);
        assert_eq!(
            mode(&dir.join("admin-token")),
            0o400,
            "stricter modes are kept"
        );
        assert!(changed.contains(&Tightened {
            path: dir.join("policies"),
            old: 0o777,
            new: 0o700
        }));
        assert_eq!(changed.len(), 6, "{changed:?}"); // the data dir, both dirs, three files
        assert!(
            secure_data_dir(&dir).unwrap().is_empty(),
            "a second run changes nothing"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_data_dir_is_created_private() {
        let dir = scratch("fresh").join("nested");
        assert!(secure_data_dir(&dir).unwrap().is_empty());
        assert_eq!(mode(&dir), 0o700);
        write_private(&dir.join("f"), b"x").unwrap();
        assert_eq!(mode(&dir.join("f")), 0o600);
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
