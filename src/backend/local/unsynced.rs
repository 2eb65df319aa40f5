//! The test suite's storage backend: redb's own file backend with `sync_data` left out.
//!
//! A commit of the embedded store is two fsyncs. On a CI machine whose disk takes hundreds of
//! milliseconds per fsync, the suite's thousands of commits turned a 40-second test run into
//! twenty-five minutes and made tests about group commit depend on the disk. What the tests check
//! does not need the fsync: every write still reaches the file before its commit returns, so a
//! reopen or a `kill -9` (the page cache survives a process) sees exactly what a synced commit
//! leaves; only a power cut could tell the difference, and no test cuts power.
//!
//! Used only by debug builds, never by a release build: by the library's unit tests always, and by
//! a debug server binary when `FLEET_EDGE_TEST_NO_FSYNC=1` (the integration tests set it).

use std::fs::File;
use std::ops::Bound;

use redb::backends::FileBackend;
use redb::{BackendError, DatabaseError, StorageBackend};

/// The error of redb's I/O backend methods (without its `experimental-api-5` feature).
type BackendIoError = std::io::Error;

/// Whether this process's embedded store skips fsync (see the module comment).
pub(super) fn skips_fsync() -> bool {
    if cfg!(test) {
        return true;
    }
    cfg!(debug_assertions) && std::env::var_os("FLEET_EDGE_TEST_NO_FSYNC").is_some_and(|v| v == "1")
}

/// A [`FileBackend`] whose `sync_data` does nothing.
#[derive(Debug)]
pub(super) struct Unsynced(FileBackend);

impl Unsynced {
    pub fn new(file: File) -> Result<Self, DatabaseError> {
        FileBackend::new(file).map(Unsynced)
    }
}

impl StorageBackend for Unsynced {
    fn len(&self) -> Result<u64, BackendIoError> {
        self.0.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), BackendIoError> {
        self.0.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), BackendIoError> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> Result<(), BackendIoError> {
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendIoError> {
        self.0.write(offset, data)
    }
    fn close(&self) -> Result<(), BackendIoError> {
        self.0.close()
    }
    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.0.try_lock_range(start, end)
    }
    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.0.try_lock_shared_range(start, end)
    }
    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.0.lock_range(start, end)
    }
    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.0.lock_shared_range(start, end)
    }
    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.0.unlock_range(start, end)
    }
    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.0.query_lock_range(start, end)
    }
}
