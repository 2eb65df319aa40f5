//! `LocalStore`: the embedded, crash-safe [`Store`](crate::backend::Store) of the single-box mode
//! (no Elasticsearch), with exactly the semantics of `MemoryStore` and the conformance suite.
//!
//! **Why redb.** The store sits on [redb](https://www.redb.org) 4.6, a pure-Rust embedded
//! key-value database: ACID transactions over copy-on-write B-trees with checksummed pages,
//! two-phase commit, readers that never block the writer (MVCC: the backend threads read
//! concurrently while the one committer writes), a single file, a file format stable since 1.0
//! that refuses to open what it cannot read, and no dependency beyond `libc`. Being pure Rust, it
//! cross-compiles to the static aarch64/armv7 builds without a C toolchain, unlike SQLite
//! (`rusqlite`), LMDB (`heed`) or RocksDB bindings, which would also bring C code and, for LMDB,
//! a memory map whose size must be tuned. sled's releases since 0.34 are all 1.0 alphas; fjall
//! is an LSM tree with background compaction and a journal, more machinery than a few megabytes
//! of Fleet documents need. Version 4.6 rather than 2.x/3.x because the 4.x releases
//! fixed recovery bugs that could silently roll back a commit or open a damaged file as an empty
//! database: exactly the silent loss this store must never allow. It needs Rust 1.90
//! (`rust-version`), which also gives `File::try_lock` for the directory lock.
//!
//! **Durability.** Every commit is two-phase and fsynced before the caller is answered, and
//! every open verifies the checksum of every page (a few tens of milliseconds for tens of
//! thousands of agents). With two-phase commit a crash can never leave a torn primary commit, so a
//! checksum failure is real damage: it is reported as [`LocalError::Corrupt`] without writing,
//! never "repaired" by falling back to an older commit.
//!
//! **Shape.** `dir` checks and locks `<data_dir>/store/`; `schema` names the tables; `committer`
//! runs every write on one thread with group commit; `store` implements the trait; `admin` has the
//! seeding and management writes; `secrets` the hashing of API key secrets. Reads run on the
//! calling thread in their own read transaction and see every acknowledged write.

mod admin;
mod admin_more;
pub(crate) mod agent_ids;
mod committer;
mod dir;
mod error;
mod files;
mod listing;
mod schema;
mod secrets;
mod snapshot;
mod store;
mod unsynced;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadTransaction, ReadableDatabase};

use crate::backend::StoreError;
use committer::{Committer, Shared};
use dir::{DbState, DirLock, Layout};
use schema::SchemaProblem;

pub use committer::CommitStats;
pub use error::LocalError;

/// redb's page cache (read cache plus write buffer): a bound, not an allocation. It fills with
/// the agent pages the store reads and writes, about 2.2 KB per enrolled agent, until the bound:
/// at 32 MiB that was the largest item of a parked agent's RSS up to ~15,000 agents (issue 21).
/// Pages it does not hold are read from the kernel's page cache (a `pread` each, outside this
/// process's RSS); `cargo bench -p loadgen --bench ack` and `--bench store` measure what that
/// costs the ack and checkin paths (README, issue 21).
const CACHE_BYTES: usize = 1024 * 1024;

/// The data dir's directory of Elastic Defend artifacts: `<identifier>/<decoded_sha256>.json`,
/// each a `.fleet-artifacts` document as Kibana writes it.
pub const ENDPOINT_ARTIFACTS_DIR: &str = "endpoint-artifacts";

/// The embedded store. Open it once per process with [`LocalStore::open`]; share it by `Arc`.
pub struct LocalStore {
    // Field order is drop order: the committer finishes queued writes and joins first, then the
    // database closes cleanly, then the directory lock is released.
    committer: Committer,
    db: Arc<Database>,
    shared: Arc<Shared>,
    path: PathBuf,
    /// `<data-dir>/endpoint-artifacts`: Elastic Defend artifacts as Kibana's documents, one JSON
    /// file each (`fleet-edge artifacts add-endpoint`), read by `Store::artifact`.
    endpoint_artifacts: PathBuf,
    /// Output health is kept in memory (latest per output), not in the database: it is a log of
    /// remote outputs' state, rewritten on the next state change after a restart.
    health: crate::backend::memory::HealthBoard,
    /// `<data_dir>/files`: upload chunks (`files.rs`).
    files_dir: PathBuf,
    /// Files the operator placed for agents (`<data-dir>/files-tohost`).
    placed: crate::backend::delivery::DiskPlaced,
    /// The management API's listing index (`listing.rs`).
    index: listing::AgentIndex,
    _lock: DirLock,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LocalStore {
    /// Opens (or, when `<data_dir>/store/` is absent or empty, creates) the store under
    /// `data_dir`, holding its lock until dropped. Verifies every page checksum of the database
    /// before serving; a second process, a foreign or corrupt directory, or another format
    /// version is an error naming the path, and nothing is recreated.
    pub fn open(data_dir: &Path) -> Result<LocalStore, LocalError> {
        let (layout, lock, state) = match dir::prepare(data_dir) {
            Err(LocalError::FormatNewer {
                path,
                found,
                ours,
                expected,
                ..
            }) => {
                // Name the version the store needs, when the store says.
                let db = data_dir.join(dir::STORE_DIR).join(dir::DB_FILE);
                let written_by =
                    schema::written_by_file(&db).unwrap_or_else(|| "a newer fleet-edge".to_owned());
                return Err(LocalError::FormatNewer {
                    path,
                    found,
                    written_by,
                    ours,
                    expected,
                });
            }
            other => other?,
        };
        let db = open_database(&layout, state)?;
        let feed = {
            let txn = db
                .begin_write()
                .map_err(|e| database_error(&layout, e.into()))?;
            let feed = schema::ensure(&txn).map_err(|p| schema_error(&layout, p))?;
            txn.commit()
                .map_err(|e| database_error(&layout, e.into()))?;
            feed
        };
        dir::refresh_marker(&layout)?;
        let shared = Arc::new(Shared::new(feed));
        let db = Arc::new(db);
        let committer = Committer::start(Arc::clone(&db), Arc::clone(&shared))
            .map_err(|e| LocalError::io(&layout.db, e))?;
        Ok(LocalStore {
            committer,
            db,
            shared,
            path: layout.db,
            endpoint_artifacts: data_dir.join(ENDPOINT_ARTIFACTS_DIR),
            health: crate::backend::memory::HealthBoard::default(),
            files_dir: data_dir.join(files::FILES_DIR),
            placed: crate::backend::delivery::DiskPlaced::new(data_dir.join("files-tohost")),
            index: listing::AgentIndex::default(),
            _lock: lock,
        })
    }

    /// Where Elastic Defend artifacts are kept (see [`ENDPOINT_ARTIFACTS_DIR`]).
    pub fn endpoint_artifacts_dir(&self) -> &Path {
        &self.endpoint_artifacts
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a consistent copy of the store, as of one commit, into the new file `dest`
    /// (mode 0600) while the store keeps serving.
    pub fn snapshot(&self, dest: &Path) -> Result<(), LocalError> {
        snapshot::write(&self.db, dest)
    }

    /// The latest output-health document of `output`, if any was written since opening.
    pub fn output_health(&self, output: &str) -> Option<crate::model::OutputHealth> {
        self.health.latest(output)
    }

    /// Output-health documents written since opening.
    pub fn output_health_writes(&self) -> usize {
        self.health.writes()
    }

    /// Commits and writes so far (one commit is one fsync round shared by its writes).
    pub fn commit_stats(&self) -> CommitStats {
        self.shared.stats()
    }

    /// Holds every commit until the returned value is dropped ([`committer::Committer::hold`]).
    #[cfg(test)]
    pub fn hold_commits(&self) -> Result<committer::CommitHold, StoreError> {
        self.committer.hold()
    }

    /// Queues `op` for the next commit. Inside a run of jobs ([`crate::backend::deferred`])
    /// this returns once it is queued and the run waits for it with the others before anything
    /// is answered; otherwise it waits for the commit, as [`Committer::write`] does.
    fn write_deferrable<F>(&self, op: F) -> Result<(), StoreError>
    where
        F: FnOnce(&mut committer::Batch<'_>) -> Result<(), committer::WriteFault> + Send + 'static,
    {
        if !crate::backend::deferred::active() {
            return self.committer.write(op);
        }
        let answer = self.committer.submit(op)?;
        crate::backend::deferred::defer(move || {
            answer
                .recv()
                .map_err(|_| error::unavailable("the commit thread has stopped"))?
        })
    }

    /// Runs `f` in a fresh read transaction: it sees every write acknowledged so far.
    fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_read().map_err(error::unavailable)?;
        f(&txn)
    }
}

fn open_database(layout: &Layout, state: DbState) -> Result<Database, LocalError> {
    let mut builder = Database::builder();
    // Every open verifies every page: corruption is reported, never trusted or panicked on.
    builder
        .set_check_integrity_on_open(true)
        .set_cache_size(CACHE_BYTES);
    let opened = match state {
        _ if unsynced::skips_fsync() => open_unsynced(&builder, layout, state),
        DbState::Fresh => builder.create(&layout.db),
        DbState::Existing => builder.open(&layout.db),
    };
    opened.map_err(|e| database_error(layout, e.into()))
}

/// As `builder.create`/`open`, over the test suite's backend that skips fsync ([`unsynced`]).
fn open_unsynced(
    builder: &redb::Builder,
    layout: &Layout,
    state: DbState,
) -> Result<Database, redb::DatabaseError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(matches!(state, DbState::Fresh))
        .truncate(false)
        .open(&layout.db)?;
    // `create_with_backend` would initialise an empty file that `open` refuses: leave an empty
    // existing database to `open`, so the suite sees the error a release build gives.
    if matches!(state, DbState::Existing) && file.metadata()?.len() == 0 {
        return builder.open(&layout.db);
    }
    builder.create_with_backend(unsynced::Unsynced::new(file)?)
}

fn database_error(layout: &Layout, err: redb::Error) -> LocalError {
    let path = layout.db.clone();
    match err {
        redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => {
            LocalError::Locked {
                path,
                holder: String::new(),
            }
        }
        redb::Error::UpgradeRequired(version) => LocalError::FormatMismatch {
            path,
            found: format!("redb file format {version}"),
            expected: dir::FORMAT_VERSION,
        },
        redb::Error::Io(e) if e.kind() != std::io::ErrorKind::InvalidData => {
            LocalError::io(path, e)
        }
        other => LocalError::Corrupt {
            path,
            detail: other.to_string(),
        },
    }
}

fn schema_error(layout: &Layout, problem: SchemaProblem) -> LocalError {
    match problem {
        SchemaProblem::ForeignTable(name) => LocalError::NotAStore {
            path: layout.db.clone(),
            reason: format!("the database has a table {name:?} fleet-edge does not make"),
        },
        SchemaProblem::Unversioned => LocalError::NotAStore {
            path: layout.db.clone(),
            reason: "the database holds data but no format version".into(),
        },
        SchemaProblem::Newer(found, written_by) => LocalError::FormatNewer {
            path: layout.db.clone(),
            found,
            written_by: written_by.unwrap_or_else(|| "a newer fleet-edge".to_owned()),
            ours: env!("CARGO_PKG_VERSION"),
            expected: dir::FORMAT_VERSION,
        },
        SchemaProblem::Version(found) => LocalError::FormatMismatch {
            path: layout.db.clone(),
            found: found.to_string(),
            expected: dir::FORMAT_VERSION,
        },
        SchemaProblem::Storage(err) => database_error(layout, err),
    }
}
