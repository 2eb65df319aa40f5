//! `fleet-edge backup` and `fleet-edge restore`: the data dir as one `.tar.gz`.
//!
//! A backup holds every file of the data dir that matters (the certificates and keys under
//! `certs/`, `policies/`, `admin-token`, `log-level`, the store's `FORMAT` marker, anything else
//! an operator put there) with its mode, and, instead of the live database file, a consistent copy
//! of the store: the running server writes it from one read transaction
//! (`LocalStore::snapshot`, asked for through the management API), or, when no server runs, this
//! process opens the store itself (taking its lock) and writes it. Left out: the store's `LOCK`,
//! `management-url` (a running server's address), snapshots in progress and files the server is
//! writing aside before renaming them into place. The archive is
//! written under a temporary name with mode 0600 (it holds keys and tokens) and renamed.
//!
//! A restore unpacks into a new directory beside the target, opens the store there (which checks
//! every page and migrates an older format), and only then renames it into place; the target must
//! be absent or empty.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::backend::local::{LocalError, LocalStore};

/// Files of the data dir a backup leaves out (relative paths).
const NOT_BACKED_UP: [&str; 3] = ["management-url", "store/LOCK", "store/fleet-edge.redb"];
/// Where the store's database sits in the data dir and in the archive.
pub const DATABASE: &str = "store/fleet-edge.redb";
/// Name prefix of snapshot files being written into the data dir.
const SNAPSHOT_PREFIX: &str = ".backup-";
/// Name endings of files the running server writes aside and then renames into place (the
/// status history, policy files): a half-written one is never part of the data dir's state.
const WRITTEN_ASIDE: [&str; 2] = [".json.new", ".json.tmp"];

/// Why a backup or restore failed: one sentence each; nothing was changed at the target.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store could not be opened or copied.
    #[error(transparent)]
    Store(#[from] LocalError),
    /// `restore` into a directory that has files.
    #[error(
        "{0} is not empty: restore only into an empty or absent directory (nothing was changed)"
    )]
    NotEmpty(PathBuf),
    /// The data dir holds no store to back up.
    #[error("{0} holds no fleet-edge store (no {DATABASE}); is --data-dir right?")]
    NoStore(PathBuf),
    /// The archive is not a fleet-edge backup.
    #[error("{path} is not a fleet-edge backup: {reason} (nothing was changed)")]
    NotABackup {
        /// The archive.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A fresh snapshot file name in `data_dir` (several backups may run at once).
pub fn snapshot_path(data_dir: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    data_dir.join(format!("{SNAPSHOT_PREFIX}{}-{n}.redb", std::process::id()))
}

/// Writes a snapshot of the store of `data_dir` when no server holds it: opens the store (its
/// lock tells whether a server runs) and copies it.
pub fn snapshot_offline(data_dir: &Path) -> Result<PathBuf, BackupError> {
    if !data_dir.join(DATABASE).is_file() {
        return Err(BackupError::NoStore(data_dir.to_path_buf()));
    }
    let store = LocalStore::open(data_dir)?;
    let path = snapshot_path(data_dir);
    store.snapshot(&path)?;
    Ok(path)
}

/// Writes the archive `out` from `data_dir` with `snapshot` as the database; returns how many
/// files it holds. `snapshot` is removed afterwards, whatever happened.
pub fn write_archive(data_dir: &Path, snapshot: &Path, out: &Path) -> Result<usize, BackupError> {
    let result = write_archive_inner(data_dir, snapshot, out);
    let _ = fs::remove_file(snapshot);
    result
}

fn write_archive_inner(data_dir: &Path, snapshot: &Path, out: &Path) -> Result<usize, BackupError> {
    let partial = out.with_extension("partial");
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(io(&partial))?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    // Plain entries: a restore accepts regular files and directories only.
    tar.sparse(false);
    let skip_out = fs::canonicalize(out).ok();
    let mut files = 0;
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let dir = data_dir.join(&rel);
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .map_err(io(&dir))?
            .collect::<Result<_, _>>()
            .map_err(io(&dir))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = rel.join(entry.file_name());
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            let text = name.to_string_lossy();
            let skipped = NOT_BACKED_UP.contains(&text.as_ref())
                || text.starts_with(SNAPSHOT_PREFIX)
                || WRITTEN_ASIDE.iter().any(|end| text.ends_with(end))
                || path == partial
                || skip_out.as_deref() == fs::canonicalize(&path).ok().as_deref();
            if skipped {
                continue;
            }
            if kind.is_dir() {
                tar.append_dir(&name, &path).map_err(io(&path))?;
                pending.push(name);
            } else if kind.is_file() {
                // A file the server renamed away since the listing (an aside write moved into
                // place, a policy file removed) is no longer part of the state: tar stats and
                // opens it before writing anything, so the archive is intact without it.
                match tar.append_path_with_name(&path, &name) {
                    Ok(()) => files += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(&path)(e)),
                }
            }
        }
    }
    tar.append_path_with_name(snapshot, DATABASE)
        .map_err(io(snapshot))?;
    files += 1;
    let gz = tar.into_inner().map_err(io(&partial))?;
    let mut file = gz.finish().map_err(io(&partial))?;
    file.flush()
        .and_then(|()| file.sync_all())
        .map_err(io(&partial))?;
    fs::rename(&partial, out).map_err(io(out))?;
    Ok(files)
}

/// Restores `archive` into `data_dir`, which must be absent or empty.
pub fn restore(archive: &Path, data_dir: &Path) -> Result<usize, BackupError> {
    match fs::read_dir(data_dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::NotEmpty(data_dir.to_path_buf()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(data_dir)(e)),
    }
    let name = data_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    let parent = match data_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let staging = parent.join(format!(".{name}.restoring-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&staging)
        .map_err(io(&staging))?;
    let result = unpack_and_check(archive, &staging).and_then(|files| {
        if data_dir.exists() {
            fs::remove_dir(data_dir).map_err(io(data_dir))?;
        }
        fs::rename(&staging, data_dir).map_err(io(data_dir))?;
        Ok(files)
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

fn unpack_and_check(archive: &Path, staging: &Path) -> Result<usize, BackupError> {
    let not_a_backup = |reason: String| BackupError::NotABackup {
        path: archive.to_path_buf(),
        reason,
    };
    let file = fs::File::open(archive).map_err(io(archive))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    tar.set_preserve_permissions(true);
    tar.set_overwrite(false);
    let mut files = 0;
    let entries = tar.entries().map_err(|e| not_a_backup(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| not_a_backup(e.to_string()))?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            return Err(not_a_backup(format!(
                "it holds a {kind:?} entry; backups hold files and directories only"
            )));
        }
        // `unpack_in` refuses paths that leave the staging directory.
        let inside = entry
            .unpack_in(staging)
            .map_err(|e| not_a_backup(e.to_string()))?;
        if !inside {
            return Err(not_a_backup("an entry points outside the data dir".into()));
        }
        if kind.is_file() {
            files += 1;
        }
    }
    if !staging.join(DATABASE).is_file() {
        return Err(not_a_backup(format!("it has no {DATABASE}")));
    }
    // Every page checked, an older format migrated, before the directory is put in place.
    drop(LocalStore::open(staging)?);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::test_support::TempDir;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_archive_keeps_modes_and_leaves_out_the_lock_and_the_server_address() {
        let data = TempDir::new("backup-src");
        drop(LocalStore::open(data.path()).unwrap());
        fs::write(data.path().join("management-url"), "http://127.0.0.1:1\n").unwrap();
        fs::create_dir(data.path().join("certs")).unwrap();
        let key = data.path().join("certs/ca.key");
        fs::write(&key, "KEY").unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(data.path().join("notes.txt"), "kept").unwrap();
        // Writes in progress beside their targets: the server renames them into place.
        fs::write(data.path().join("status-history.json.new"), "{\"half").unwrap();
        fs::create_dir(data.path().join("policies")).unwrap();
        fs::write(data.path().join("policies/p.json.tmp"), "{\"half").unwrap();
        let snapshot = snapshot_offline(data.path()).unwrap();
        let out = TempDir::new("backup-out");
        let archive = out.path().join("b.tar.gz");
        write_archive(data.path(), &snapshot, &archive).unwrap();
        assert!(!snapshot.exists(), "the snapshot is removed once archived");
        assert_eq!(mode(&archive), 0o600);

        let target = out.path().join("restored");
        restore(&archive, &target).unwrap();
        assert_eq!(mode(&target.join("certs/ca.key")), 0o600);
        assert_eq!(
            fs::read_to_string(target.join("notes.txt")).unwrap(),
            "kept"
        );
        assert!(!target.join("management-url").exists());
        assert!(!target.join("status-history.json.new").exists());
        assert!(!target.join("policies/p.json.tmp").exists());
        assert!(target.join("policies").is_dir());
        assert!(target.join("store/FORMAT").is_file());
        drop(LocalStore::open(&target).unwrap());
        // Into a directory with files: refused, and it is left as it was.
        let err = restore(&archive, &target).unwrap_err();
        assert!(matches!(err, BackupError::NotEmpty(_)), "{err}");
        assert!(target.join("notes.txt").is_file());
    }

    #[test]
    fn a_restore_refuses_links_and_archives_without_a_store() {
        let dir = TempDir::new("backup-bad");
        let write = |name: &str, link: bool| {
            let path = dir.path().join(name);
            let gz = flate2::write::GzEncoder::new(
                fs::File::create(&path).unwrap(),
                flate2::Compression::default(),
            );
            let mut tar = tar::Builder::new(gz);
            let mut header = tar::Header::new_gnu();
            if link {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                tar.append_link(&mut header, "certs", "/etc").unwrap();
            } else {
                header.set_size(4);
                header.set_mode(0o600);
                tar.append_data(&mut header, "admin-token", &b"abcd"[..])
                    .unwrap();
            }
            tar.into_inner().unwrap().finish().unwrap();
            path
        };
        let target = dir.path().join("target");
        let err = restore(&write("link.tar.gz", true), &target).unwrap_err();
        assert!(err.to_string().contains("Symlink"), "{err}");
        let err = restore(&write("nostore.tar.gz", false), &target).unwrap_err();
        assert!(
            err.to_string().contains("no store/fleet-edge.redb"),
            "{err}"
        );
        assert!(!target.exists(), "nothing is left at the target");
        let staging: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("restoring"))
            .collect();
        assert!(staging.is_empty(), "the staging directory is removed");
    }
}
