//! A consistent copy of the running store for `fleet-edge backup`: every table read in one redb
//! read transaction (MVCC: the committer keeps writing meanwhile, the copy sees one commit) and
//! written into a fresh database file (mode 0600) in one write transaction. redb has no online
//! backup call of its own; a copy through a read transaction is its consistent equivalent, and
//! the result is a compacted, checksummed database of the same format.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use redb::{Database, ReadTransaction, ReadableDatabase, TableDefinition, WriteTransaction};

use super::error::LocalError;
use super::schema::{
    ACTIONS, ACTION_DOCS, ACTION_IDS, AGENTS, AGENT_ACTIONS, API_KEYS, ENROLLMENT, INFO, META,
    POLICIES, POLICY_LATEST, RESULTS, SECRETS,
};

/// Writes a copy of `db` as it is at one commit into `dest`, which must not exist.
pub(super) fn write(db: &Database, dest: &Path) -> Result<(), LocalError> {
    let fail = |e: redb::Error| LocalError::Corrupt {
        path: dest.to_path_buf(),
        detail: e.to_string(),
    };
    // The copy holds everything the store holds: owner-only from its first byte.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| LocalError::io(dest, e))?;
    let read = db.begin_read().map_err(|e| fail(e.into()))?;
    let copy = Database::builder()
        .create(dest)
        .map_err(|e| fail(e.into()))?;
    let write = copy.begin_write().map_err(|e| fail(e.into()))?;
    copy_all(&read, &write).map_err(fail)?;
    write.commit().map_err(|e| fail(e.into()))?;
    drop(copy);
    std::fs::File::open(dest)
        .and_then(|f| f.sync_all())
        .map_err(|e| LocalError::io(dest, e))
}

fn copy_all(read: &ReadTransaction, write: &WriteTransaction) -> Result<(), redb::Error> {
    copy(read, write, META)?;
    copy(read, write, INFO)?;
    copy(read, write, API_KEYS)?;
    copy(read, write, ENROLLMENT)?;
    copy(read, write, AGENTS)?;
    copy(read, write, ACTIONS)?;
    copy(read, write, ACTION_DOCS)?;
    copy(read, write, ACTION_IDS)?;
    copy(read, write, AGENT_ACTIONS)?;
    copy(read, write, RESULTS)?;
    copy(read, write, POLICIES)?;
    copy(read, write, POLICY_LATEST)?;
    copy(read, write, SECRETS)
}

fn copy<K: redb::Key + 'static, V: redb::Value + 'static>(
    read: &ReadTransaction,
    write: &WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<(), redb::Error> {
    use redb::ReadableTable;
    let source = read.open_table(table)?;
    let mut target = write.open_table(table)?;
    for entry in source.iter()? {
        let (key, value) = entry?;
        target.insert(key.value(), value.value())?;
    }
    Ok(())
}
