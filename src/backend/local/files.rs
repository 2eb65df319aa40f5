//! File transfer in the embedded store: upload metadata documents in the `uploads` table, chunk
//! bytes as files under `<data_dir>/files/<upload_id>/<n>` (not in the B-tree, not in memory).
//!
//! Crash safety. A chunk is written to `<n>.<uuid>.part` (created exclusively), fsynced, linked
//! to `<n>` (a link never replaces: the first complete copy wins) and the directory fsynced, so
//! a chunk file either holds every byte the agent sent or does not exist (a leftover `.part` is
//! never read, and goes with its upload's directory). Complete reads the chunk files back and
//! computes each chunk's SHA-256 from the bytes on disk, so READY is committed only for bytes
//! that match the transit hash. A kill at any point leaves either a READY file or an upload that
//! is still AWAITING_UPLOAD, which the agent may finish and which is removed after the 24 h
//! expiry otherwise. Directories are named by the server-made upload id (a UUID), never by what
//! an agent sent.
//!
//! Housekeeping runs before each new upload ([`FileStore::admit`]): uploads past their expiry,
//! finished ones past the retention, and chunk directories no document names are removed; then
//! the total cap is checked.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use redb::ReadableTable;
use serde_json::{Map, Value};

use super::committer::WriteFault;
use super::error::unavailable;
use super::schema::{decode, encode, UPLOADS};
use super::store::table;
use super::LocalStore;
use crate::backend::delivery::{DeliveryBytes, DeliveryFrom};
use crate::backend::files::{
    apply_status, epoch_millis, listing, ChunkInfo, ChunkWrite, FileSettings, FileStatus,
    FileStore, UploadInfo,
};
use crate::backend::StoreError;

/// A document and its `_id`.
type IdDoc = (String, Map<String, Value>);

/// The directory of upload chunk files under a data dir.
pub(super) const FILES_DIR: &str = "files";

/// Read block for hashing and copying chunk files: bounded, whatever the chunk size.
const BLOCK: usize = 64 * 1024;

fn io_error(what: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| unavailable(format!("{}: {e}", what.display()))
}

/// `fsync` of a directory, so a rename or a new entry in it survives a power loss.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A chunk file name: its position.
fn chunk_pos(name: &str) -> Option<u64> {
    name.parse::<u64>().ok().filter(|n| n.to_string() == name)
}

/// An upload id safe as a directory name (the server makes UUIDs; anything else read from a
/// document is refused rather than used as a path).
fn safe_dir_name(upload_id: &str) -> Option<&str> {
    let ok = !upload_id.is_empty()
        && upload_id.len() <= 64
        && upload_id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-');
    ok.then_some(upload_id)
}

/// Streams a file through SHA-256 in [`BLOCK`]s; returns (hex digest, length).
fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; BLOCK];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        len += n as u64;
    }
    let sum = crate::backend::ops::uploads::hex(ctx.finish().as_ref());
    Ok((sum, len))
}

impl LocalStore {
    /// `<data_dir>/files`.
    fn files_root(&self) -> &Path {
        &self.files_dir
    }

    /// The chunk directory of an upload.
    fn chunk_dir(&self, info: &UploadInfo) -> Result<PathBuf, StoreError> {
        let name = safe_dir_name(&info.upload_id)
            .ok_or_else(|| unavailable(format!("upload id {:?} is not a UUID", info.upload_id)))?;
        Ok(self.files_root().join(name))
    }

    /// Every metadata document, by `_id`.
    fn upload_docs(&self) -> Result<Vec<IdDoc>, StoreError> {
        self.read(|txn| {
            let uploads = table(txn, UPLOADS)?;
            let mut out = Vec::new();
            for row in uploads.iter().map_err(unavailable)? {
                let (k, v) = row.map_err(unavailable)?;
                let id = k.value().to_owned();
                out.push((id.clone(), decode(&format!("upload {id}"), v.value())?));
            }
            Ok(out)
        })
    }

    /// Removes an upload: its chunks first, then its document (a crash between leaves a
    /// document without chunks, which the next sweep removes in turn).
    fn remove_upload(&self, doc_id: &str, info: Option<&UploadInfo>) -> Result<(), StoreError> {
        if let Some(info) = info {
            self.delete_chunks(info)?;
        }
        let id = doc_id.to_owned();
        self.committer.write(move |batch| {
            batch.txn().open_table(UPLOADS)?.remove(id.as_str())?;
            Ok(())
        })
    }

    /// Removes expired and retained-out uploads and orphan chunk directories; returns the bytes
    /// the remaining uploads hold or will hold.
    fn sweep(&self, settings: &FileSettings, now: SystemTime) -> Result<u64, StoreError> {
        let now_ms = epoch_millis(now);
        let retention_ms = i64::try_from(settings.retention.as_millis()).unwrap_or(i64::MAX);
        let mut kept_bytes = 0u64;
        let mut kept_dirs = Vec::new();
        for (doc_id, doc) in self.upload_docs()? {
            let info = UploadInfo::from_doc(&doc_id, &doc);
            let remove = match &info {
                None => true,
                Some(i) if i.status.can_upload() => i.expired(now),
                Some(i) => now_ms > i.start_ms.saturating_add(retention_ms),
            };
            if remove {
                log::info!("removing upload {doc_id} (expired or past its retention)");
                self.remove_upload(&doc_id, info.as_ref())?;
            } else if let Some(i) = info {
                kept_bytes = kept_bytes.saturating_add(i.size);
                kept_dirs.push(i.upload_id);
            }
        }
        let root = self.files_root();
        let entries = match fs::read_dir(root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(kept_bytes),
            Err(e) => return Err(io_error(root)(e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !kept_dirs.contains(&name) {
                let path = entry.path();
                log::info!("removing chunk directory {} of no upload", path.display());
                fs::remove_dir_all(&path).map_err(io_error(&path))?;
            }
        }
        Ok(kept_bytes)
    }
}

impl FileStore for LocalStore {
    fn create_upload(&self, info: &UploadInfo, doc: &Map<String, Value>) -> Result<(), StoreError> {
        let id = info.doc_id.clone();
        let bytes = encode("upload", doc)?;
        self.committer.write(move |batch| {
            let mut uploads = batch.txn().open_table(UPLOADS)?;
            if uploads.get(id.as_str())?.is_some() {
                return Err(WriteFault::Answer(StoreError::Conflict));
            }
            uploads.insert(id.as_str(), bytes.as_slice())?;
            Ok(())
        })
    }

    fn upload(&self, upload_id: &str) -> Result<Option<UploadInfo>, StoreError> {
        Ok(self
            .upload_docs()?
            .iter()
            .filter(|(_, d)| d.get("upload_id").and_then(Value::as_str) == Some(upload_id))
            .find_map(|(id, d)| UploadInfo::from_doc(id, d)))
    }

    fn write_chunk(&self, info: &UploadInfo, chunk: &ChunkWrite<'_>) -> Result<(), StoreError> {
        let dir = self.chunk_dir(info)?;
        if !dir.exists() {
            crate::fsmode::private_dir(&dir).map_err(io_error(&dir))?;
            sync_dir(self.files_root()).map_err(io_error(self.files_root()))?;
        }
        let done = dir.join(chunk.pos.to_string());
        if done.exists() {
            return Err(StoreError::Conflict);
        }
        // A part name of its own per write: a part left by a crash is never in the way, and
        // two writers of one chunk race only at the link below.
        let part = dir.join(format!(
            "{}.{}.part",
            chunk.pos,
            crate::backend::ops::uuid_v4()
        ));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&part)
            .map_err(io_error(&part))?;
        let written = file.write_all(chunk.data).and_then(|()| file.sync_all());
        drop(file);
        if let Err(e) = written {
            let _ = fs::remove_file(&part);
            return Err(io_error(&part)(e));
        }
        // `link` never replaces: the first complete copy of a chunk wins, atomically.
        let linked = fs::hard_link(&part, &done);
        let _ = fs::remove_file(&part);
        match linked {
            Ok(()) => sync_dir(&dir).map_err(io_error(&dir)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(StoreError::Conflict),
            Err(e) => Err(io_error(&done)(e)),
        }
    }

    fn chunk_infos(&self, info: &UploadInfo) -> Result<Vec<ChunkInfo>, StoreError> {
        let dir = self.chunk_dir(info)?;
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&dir)(e)),
        };
        let count = info.chunk_count();
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error(&dir))?;
            let Some(pos) = chunk_pos(&entry.file_name().to_string_lossy()) else {
                continue;
            };
            let path = entry.path();
            let (sha2, size) = hash_file(&path).map_err(io_error(&path))?;
            out.push(ChunkInfo {
                pos,
                last: pos + 1 == count,
                sha2,
                size,
            });
        }
        Ok(out)
    }

    fn set_upload_status(
        &self,
        info: &UploadInfo,
        status: FileStatus,
        hash: Option<&str>,
    ) -> Result<(), StoreError> {
        let id = info.doc_id.clone();
        let hash = hash.map(str::to_owned);
        self.committer.write(move |batch| {
            let mut uploads = batch.txn().open_table(UPLOADS)?;
            let mut doc: Map<String, Value> = match uploads.get(id.as_str())? {
                Some(bytes) => decode("upload", bytes.value()).map_err(WriteFault::Answer)?,
                None => return Err(WriteFault::Answer(StoreError::NotFound)),
            };
            apply_status(&mut doc, status, hash.as_deref());
            let bytes = encode("upload", &doc).map_err(WriteFault::Answer)?;
            uploads.insert(id.as_str(), bytes.as_slice())?;
            Ok(())
        })
    }

    fn delete_chunks(&self, info: &UploadInfo) -> Result<(), StoreError> {
        let dir = self.chunk_dir(info)?;
        match fs::remove_dir_all(&dir) {
            Ok(()) => sync_dir(self.files_root()).map_err(io_error(self.files_root())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&dir)(e)),
        }
    }

    fn admit(
        &self,
        size: u64,
        settings: &FileSettings,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        let held = self.sweep(settings, now)?;
        Ok(settings
            .total_cap
            .is_none_or(|cap| held.saturating_add(size) <= cap))
    }

    fn list_uploads(&self, agent_id: Option<&str>) -> Result<Vec<Map<String, Value>>, StoreError> {
        Ok(listing(self.upload_docs()?.into_iter().filter(|(_, d)| {
            agent_id.is_none_or(|a| d.get("agent_id").and_then(Value::as_str) == Some(a))
        })))
    }

    fn upload_doc(&self, doc_id: &str) -> Result<Option<Map<String, Value>>, StoreError> {
        self.read(|txn| {
            let uploads = table(txn, UPLOADS)?;
            let Some(bytes) = uploads.get(doc_id).map_err(unavailable)? else {
                return Ok(None);
            };
            decode("upload", bytes.value()).map(Some)
        })
    }

    fn read_chunk(&self, info: &UploadInfo, pos: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.chunk_dir(info)?.join(pos.to_string());
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    fn delivery_meta(
        &self,
        file_id: &str,
        from: DeliveryFrom<'_>,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        self.placed.meta(file_id, from)
    }

    fn delivery_bytes(
        &self,
        file_id: &str,
        _from: DeliveryFrom<'_>,
    ) -> Result<DeliveryBytes, StoreError> {
        self.placed.bytes(file_id)
    }

    fn place_begin(&self, id: &str, doc: &Map<String, Value>) -> Result<(), StoreError> {
        self.placed.begin(id, doc)
    }

    fn place_part(&self, id: &str, n: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.placed.part(id, n, bytes)
    }

    fn place_complete(&self, id: &str) -> Result<Map<String, Value>, StoreError> {
        self.placed.complete(id)
    }

    fn list_placed(&self) -> Result<Vec<Map<String, Value>>, StoreError> {
        self.placed.list()
    }
}
