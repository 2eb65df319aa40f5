//! Files fleet-edge serves from disk on the agent listener, for air-gapped upgrades
//! (issue 17): the upgrade PGP key (`pgp.rs`, fleet-protocol.md §8) and the artifact mirror under
//! `/downloads/` (`mirror.rs`). This module does the blocking file-system (and upstream) work on
//! backend worker threads; the sans-IO answers (routing, version parse, ranges, validators) are
//! `api::pgp` and `api::downloads`, and the connection streams a mirror file with
//! `http::Body::File` (`net/conn/file.rs`).

pub mod endpoint;
pub mod import;
pub mod mirror;
pub mod pgp;

use std::path::PathBuf;

/// Creates the mirror directory when it does not exist yet, or uses it as found. Mode 0700 like
/// the rest of the data dir (whose modes are tightened at every start, `fsmode`): the server
/// reads it as its owner, and nothing else on the box needs to.
pub fn prepare_mirror(dir: &std::path::Path) -> Result<(), MirrorDirError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(dir)
        .map_err(|source| MirrorDirError {
            path: dir.to_owned(),
            source,
        })
}

/// The mirror directory could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the artifact mirror directory {path} (--downloads-dir): {source}")]
pub struct MirrorDirError {
    /// The directory.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}
