//! The on-disk layout of the local store and the checks made before redb touches anything:
//! `<data_dir>/store/` (mode 0700) holding exactly
//!
//! * `LOCK`: an exclusive advisory lock (`flock`), held for the life of the process, with the
//!   holder's pid written in it for the error message of a second process;
//! * `FORMAT`: the marker `fleet-edge local store\nformat <n>\n`, written atomically (temp file,
//!   fsync, rename, directory fsync) before the database is initialised;
//! * `fleet-edge.redb`: the database (mode 0600; it keeps enrollment tokens for display).
//!
//! Anything else in the directory, a database without a marker, a marker of another format, or a
//! marker whose database is gone is refused with an error naming the path; nothing is changed and
//! nothing is recreated. The only states treated as "new" are an absent or empty directory and an
//! initialisation interrupted before the database held any data (an empty database file).

use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::error::LocalError;

/// The store's own subdirectory of the data dir.
pub(super) const STORE_DIR: &str = "store";
/// The database file name.
pub(super) const DB_FILE: &str = "fleet-edge.redb";
/// The lock file name.
pub(super) const LOCK_FILE: &str = "LOCK";
/// The format marker file name.
pub(super) const FORMAT_FILE: &str = "FORMAT";
const FORMAT_TMP: &str = "FORMAT.tmp";
/// The on-disk format this build writes (marker and `meta.format_version`); it reads this one and
/// migrates every older one (`schema::migrate`), and refuses a newer one.
///
/// 1. the tables of `schema` without `info`;
/// 2. adds `info` (`written_by`: the fleet-edge version that last opened the store), so that an
///    older fleet-edge can name the version a store needs;
/// 3. adds `uploads` (file transfer metadata; the chunks live in `<data_dir>/files/`).
pub(super) const FORMAT_VERSION: i64 = 3;
const MARKER_PREFIX: &str = "fleet-edge local store\nformat ";

/// Paths of one store directory.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    /// `<data_dir>/store`.
    pub dir: PathBuf,
    /// The database file.
    pub db: PathBuf,
    /// The format marker.
    pub format: PathBuf,
    /// The lock file.
    pub lock: PathBuf,
}

impl Layout {
    fn new(data_dir: &Path) -> Self {
        let dir = data_dir.join(STORE_DIR);
        Layout {
            db: dir.join(DB_FILE),
            format: dir.join(FORMAT_FILE),
            lock: dir.join(LOCK_FILE),
            dir,
        }
    }
}

/// The exclusive lock on a store directory; released when dropped (or when the process dies).
#[derive(Debug)]
pub(super) struct DirLock {
    _file: File,
}

/// What the database file is, once the directory checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DbState {
    /// No data yet: initialise (redb `create` on an empty file).
    Fresh,
    /// A database with data: open it, never initialise it.
    Existing,
}

/// Creates or checks the store directory, takes its lock and says what the database file is.
pub(super) fn prepare(data_dir: &Path) -> Result<(Layout, DirLock, DbState), LocalError> {
    let layout = Layout::new(data_dir);
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|e| LocalError::io(data_dir, e))?;
    if layout.dir.exists() {
        // Before creating the lock file: a foreign directory is left exactly as it was.
        check_entries(&layout.dir)?;
    } else {
        DirBuilder::new()
            .mode(0o700)
            .create(&layout.dir)
            .map_err(|e| LocalError::io(&layout.dir, e))?;
    }
    let lock = lock(&layout.lock)?;
    // Under the lock: another process may have initialised the directory meanwhile.
    check_entries(&layout.dir)?;
    let marker = read_marker(&layout.format)?;
    let db_len = match fs::metadata(&layout.db) {
        Ok(meta) => Some(meta.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(LocalError::io(&layout.db, e)),
    };
    let state = match (marker, db_len) {
        (None, Some(len)) if len > 0 => {
            return Err(LocalError::NotAStore {
                path: layout.dir.clone(),
                reason: format!("{DB_FILE} without a {FORMAT_FILE} marker"),
            })
        }
        (None, _) => {
            create_private_file(&layout.db)?;
            write_marker(&layout)?;
            DbState::Fresh
        }
        (Some(()), None) => {
            return Err(LocalError::DatabaseMissing {
                path: layout.db.clone(),
            })
        }
        (Some(()), Some(0)) => DbState::Fresh,
        (Some(()), Some(_)) => DbState::Existing,
    };
    restrict(&layout.dir, 0o700)?;
    restrict(&layout.db, 0o600)?;
    Ok((layout, lock, state))
}

fn check_entries(dir: &Path) -> Result<(), LocalError> {
    let entries = fs::read_dir(dir).map_err(|e| LocalError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LocalError::io(dir, e))?;
        let name = entry.file_name();
        let known = [DB_FILE, LOCK_FILE, FORMAT_FILE, FORMAT_TMP]
            .iter()
            .any(|k| name == **k);
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if !known || !is_file {
            return Err(LocalError::NotAStore {
                path: dir.to_path_buf(),
                reason: format!("it contains {:?}", name),
            });
        }
    }
    Ok(())
}

fn lock(path: &Path) -> Result<DirLock, LocalError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| LocalError::io(path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = match text.trim().parse::<u32>() {
                Ok(pid) => format!(" (pid {pid})"),
                Err(_) => String::new(),
            };
            return Err(LocalError::Locked {
                path: path.to_path_buf(),
                holder,
            });
        }
        Err(TryLockError::Error(e)) => return Err(LocalError::io(path, e)),
    }
    // Best effort: the pid only improves the message a second process prints.
    if file.set_len(0).is_ok() {
        let _ = writeln!(file, "{}", std::process::id());
    }
    Ok(DirLock { _file: file })
}

/// `Some(())` when the marker exists and names this format or an older one (migrated at open);
/// errors when it names a newer one or is not a marker at all.
fn read_marker(path: &Path) -> Result<Option<()>, LocalError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => String::new(),
        Err(e) => return Err(LocalError::io(path, e)),
    };
    let Some(version) = text
        .strip_prefix(MARKER_PREFIX)
        .and_then(|rest| rest.strip_suffix('\n'))
    else {
        return Err(LocalError::NotAStore {
            path: path.to_path_buf(),
            reason: format!("{FORMAT_FILE} is not a fleet-edge format marker"),
        });
    };
    match version.parse::<i64>() {
        Ok(found) if found > FORMAT_VERSION => Err(LocalError::FormatNewer {
            path: path.to_path_buf(),
            found,
            written_by: "a newer fleet-edge".to_owned(),
            ours: env!("CARGO_PKG_VERSION"),
            expected: FORMAT_VERSION,
        }),
        Ok(found) if found >= 1 => Ok(Some(())),
        _ => Err(LocalError::FormatMismatch {
            path: path.to_path_buf(),
            found: version.chars().take(40).collect(),
            expected: FORMAT_VERSION,
        }),
    }
}

/// Rewrites the marker when it names an older format (after a migration committed).
pub(super) fn refresh_marker(layout: &Layout) -> Result<(), LocalError> {
    let current = format!("{MARKER_PREFIX}{FORMAT_VERSION}\n");
    match fs::read_to_string(&layout.format) {
        Ok(text) if text == current => Ok(()),
        _ => write_marker(layout),
    }
}

/// The marker, atomically: a reader sees no marker or a complete one.
fn write_marker(layout: &Layout) -> Result<(), LocalError> {
    let tmp = layout.dir.join(FORMAT_TMP);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| LocalError::io(&tmp, e))?;
    file.write_all(format!("{MARKER_PREFIX}{FORMAT_VERSION}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| LocalError::io(&tmp, e))?;
    fs::rename(&tmp, &layout.format).map_err(|e| LocalError::io(&layout.format, e))?;
    sync_dir(&layout.dir)
}

/// An empty database file with mode 0600 (redb would create it with the umask's mode), made
/// durable with its directory entry before the marker names it.
fn create_private_file(path: &Path) -> Result<(), LocalError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| LocalError::io(path, e))?;
    file.sync_all().map_err(|e| LocalError::io(path, e))?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), LocalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LocalError::io(dir, e))
}

fn restrict(path: &Path, mode: u32) -> Result<(), LocalError> {
    let meta = fs::metadata(path).map_err(|e| LocalError::io(path, e))?;
    if meta.permissions().mode() & 0o777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| LocalError::io(path, e))?;
    }
    Ok(())
}
