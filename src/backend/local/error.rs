//! Why a [`LocalStore`](super::LocalStore) cannot be opened ([`LocalError`]), and how runtime
//! failures of redb become the protocol's [`StoreError`]. Opening errors are startup errors: `main`
//! maps them to an exit code with one sentence, so every message names the path and what to do.

use std::path::PathBuf;

use crate::backend::StoreError;

/// Why the local store did not open, named for what the operator does about it.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Another process (normally another fleet-edge) holds the store's lock file: stop it, or give
    /// this one another `--data-dir`.
    #[error(
        "the local store {path} is in use by another process{holder}: stop it or use another --data-dir"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// ` (pid N)` when the holder wrote its pid, else empty.
        holder: String,
    },
    /// The directory holds files that are not a fleet-edge store: choose an empty or fleet-edge
    /// data directory. Nothing was changed.
    #[error("{path} is not a fleet-edge local store ({reason}); nothing was changed: use an empty directory or a fleet-edge data directory")]
    NotAStore {
        /// The store directory.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// The store was written by a newer fleet-edge, in a format this one does not know: run that
    /// version (or newer), or restore a backup made by this one. Nothing was changed.
    #[error("{path}: the store is in format {found}, written by {written_by}; this fleet-edge {ours} reads formats up to {expected}; nothing was changed: run that fleet-edge version or newer, or restore a backup made with this one")]
    FormatNewer {
        /// The marker or database file.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// `fleet-edge X.Y.Z`, or `a newer fleet-edge` when the store does not say.
        written_by: String,
        /// This build's version.
        ours: &'static str,
        /// The newest format this build reads.
        expected: i64,
    },
    /// The store was written in a format this version does not read (a newer or older fleet-edge):
    /// run the matching fleet-edge version. Nothing was changed.
    #[error("{path}: store format {found} is not the format {expected} this fleet-edge reads; nothing was changed: run the fleet-edge version that wrote it")]
    FormatMismatch {
        /// The marker or database file.
        path: PathBuf,
        /// The version found.
        found: String,
        /// The version this build reads.
        expected: i64,
    },
    /// The database file is damaged (failed checksums, not a redb file): restore it from a backup,
    /// or move the store directory away to start empty. The file was not modified.
    #[error("the database file {path} is corrupt ({detail}); it was not modified: restore it from a backup, or move the directory {dir} away to start an empty store", dir = .path.parent().unwrap_or(.path).display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What redb reported.
        detail: String,
    },
    /// The store's format marker exists but its database file is gone (deleted or moved): restore
    /// it; fleet-edge never silently starts over with an empty store.
    #[error("the database file {path} is missing although its store directory is initialised; restore it from a backup, or move the directory {dir} away to start an empty store", dir = .path.parent().unwrap_or(.path).display())]
    DatabaseMissing {
        /// The expected database file.
        path: PathBuf,
    },
    /// The file system refused (permissions, disk full, I/O error): fix the file system.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl LocalError {
    /// An I/O error at `path`.
    pub(super) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LocalError::Io {
            path: path.into(),
            source,
        }
    }
}

/// A redb failure at run time: the store cannot serve the request now (503, retry later).
pub(super) fn unavailable(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("local store: {err}"))
}

/// A stored document that does not decode, or a value that does not encode.
pub(super) fn bad_document(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Failed {
        status: 500,
        detail: format!("local store: {what}: {err}"),
    }
}
