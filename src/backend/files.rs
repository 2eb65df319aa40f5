//! File transfer storage (fleet-protocol.md §8 "Uploads", es-contract.md §2.9): what an upload
//! is ([`UploadInfo`], read back from its metadata document as Fleet Server's `file.GetInfo`
//! reads it), its chunks ([`ChunkInfo`]), its status, and the [`FileStore`] operations every
//! store implements: Elasticsearch in `es/files.rs` (metadata and CBOR chunk documents in the
//! `.fleet-fileds-*` data streams), the embedded store in `local/files.rs` (chunks as files under
//! the data directory, metadata in redb), and [`MemoryFiles`] here (the reference semantics).
//!
//! The upload endpoints' decisions live in `ops/uploads.rs`; these are only the storage steps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::StoreError;

/// `file.MaxChunkSize`: every chunk but the last is exactly this long.
pub const CHUNK_SIZE: u64 = 4_194_304;

/// How long an upload accepts chunks after it began (`maxUploadTimer`).
pub const UPLOAD_EXPIRY: Duration = Duration::from_secs(24 * 3600);

pub use crate::config::file_settings::{FileSettings, DEFAULT_TOTAL_CAP};

/// `file.Status`: the only values the storage spec allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileStatus {
    /// `AWAITING_UPLOAD`: begun, chunks welcome.
    Awaiting,
    /// `UPLOADING` (written by other uploaders; chunks still welcome).
    Uploading,
    /// `READY`: complete, transit hash verified.
    Ready,
    /// `UPLOAD_ERROR`: validation failed, chunks deleted.
    Failed,
    /// `DELETED`.
    Deleted,
}

impl FileStatus {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Awaiting => "AWAITING_UPLOAD",
            FileStatus::Uploading => "UPLOADING",
            FileStatus::Ready => "READY",
            FileStatus::Failed => "UPLOAD_ERROR",
            FileStatus::Deleted => "DELETED",
        }
    }

    /// Parses a wire value; anything unknown reads as still open, as Go's `StatusCanUpload`
    /// treats every value other than the three final ones.
    pub fn parse(s: &str) -> FileStatus {
        match s {
            "READY" => FileStatus::Ready,
            "UPLOAD_ERROR" => FileStatus::Failed,
            "DELETED" => FileStatus::Deleted,
            "UPLOADING" => FileStatus::Uploading,
            _ => FileStatus::Awaiting,
        }
    }

    /// Whether more chunks may come (`StatusCanUpload`).
    pub fn can_upload(self) -> bool {
        !matches!(
            self,
            FileStatus::Ready | FileStatus::Failed | FileStatus::Deleted
        )
    }
}

/// An upload as its metadata document describes it (`file.Info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadInfo {
    /// `upload_id`: the id agents use in the chunk and complete paths.
    pub upload_id: String,
    /// The metadata document's `_id` (`<action_id>.<agent_id>`), the chunks' `bid`.
    pub doc_id: String,
    /// `src`: the integration uploading (`agent`, `endpoint`); names the data streams.
    pub source: String,
    /// `agent_id`.
    pub agent_id: String,
    /// `action_id`.
    pub action_id: String,
    /// `file.size`.
    pub size: u64,
    /// `file.ChunkSize`.
    pub chunk_size: u64,
    /// `upload_start`, epoch milliseconds.
    pub start_ms: i64,
    /// `file.Status`.
    pub status: FileStatus,
}

impl UploadInfo {
    /// Reads the members Go's `MetaDoc` reads; `None` when the document lacks the ones an upload
    /// cannot do without (a size, a positive chunk size, an upload id).
    pub fn from_doc(doc_id: &str, doc: &Map<String, Value>) -> Option<UploadInfo> {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
        let file = doc.get("file")?.as_object()?;
        let size = file.get("size")?.as_u64()?;
        let chunk_size = file.get("ChunkSize")?.as_u64().filter(|c| *c > 0)?;
        Some(UploadInfo {
            upload_id: text(doc.get("upload_id")),
            doc_id: doc_id.to_owned(),
            source: text(doc.get("src")),
            agent_id: text(doc.get("agent_id")),
            action_id: text(doc.get("action_id")),
            size,
            chunk_size,
            start_ms: doc.get("upload_start").and_then(Value::as_i64).unwrap_or(0),
            status: FileStatus::parse(file.get("Status").and_then(Value::as_str).unwrap_or("")),
        })
    }

    /// How many chunks the file has: `ceil(size / chunk_size)`.
    pub fn chunk_count(&self) -> u64 {
        self.size.div_ceil(self.chunk_size.max(1))
    }

    /// Whether the upload is older than [`UPLOAD_EXPIRY`] at `now`.
    pub fn expired(&self, now: SystemTime) -> bool {
        epoch_millis(now)
            > self
                .start_ms
                .saturating_add(UPLOAD_EXPIRY.as_millis() as i64)
    }
}

/// Milliseconds since the epoch (0 before it).
pub fn epoch_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What is known about one stored chunk without its bytes (`file.ChunkInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkInfo {
    /// Position in the file, from the chunk's id.
    pub pos: u64,
    /// `last`.
    pub last: bool,
    /// `sha2`: lowercase hex SHA-256 of the chunk.
    pub sha2: String,
    /// Length of `data` in bytes.
    pub size: u64,
}

/// One chunk to store.
#[derive(Clone, Copy, Debug)]
pub struct ChunkWrite<'a> {
    /// Position.
    pub pos: u64,
    /// Whether it is the final chunk.
    pub last: bool,
    /// Hex SHA-256 the agent sent (already checked against `data`).
    pub sha2: &'a str,
    /// The bytes.
    pub data: &'a [u8],
    /// `@timestamp`, epoch milliseconds.
    pub timestamp_ms: i64,
}

/// Where a file for delivery is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryFrom<'a> {
    /// `.fleet-fileds-tohost-*`: the file must name this agent in `file.Meta.target_agents` and
    /// be `READY`.
    Agent(&'a str),
    /// An integration's library (`?source=`): `.<integration>-fleetfiles-<source>-meta|data`.
    Library {
        /// The integration (`endpoint`).
        integration: &'a str,
        /// The sanitized `source`.
        source: &'a str,
    },
}

/// Where a delivery file's bytes are.
#[derive(Debug)]
pub enum DeliveryBytes {
    /// One file on disk holding them all, streamed with positional reads.
    File(std::sync::Arc<std::fs::File>),
    /// Chunks in position order, each named by a locator for [`super::files::FileStore::read_part`]
    /// (empty: the file has no chunks).
    Chunks(Vec<String>),
}

/// Storage of uploads. Blocking; run only on backend threads.
pub trait FileStore: Send + Sync {
    /// Writes a new metadata document under `info.doc_id` (made visible at once, Fleet Server's
    /// `create` with refresh); `Conflict` when that id exists.
    fn create_upload(&self, info: &UploadInfo, doc: &Map<String, Value>) -> Result<(), StoreError>;
    /// The upload with this `upload_id` (Q10), freshly read.
    fn upload(&self, upload_id: &str) -> Result<Option<UploadInfo>, StoreError>;
    /// Stores one chunk (`<doc_id>.<pos>`); `Conflict` when it exists.
    fn write_chunk(&self, info: &UploadInfo, chunk: &ChunkWrite<'_>) -> Result<(), StoreError>;
    /// Every stored chunk of the upload (Q11, after a refresh), any order.
    fn chunk_infos(&self, info: &UploadInfo) -> Result<Vec<ChunkInfo>, StoreError>;
    /// Sets `file.Status`, and `transithash.sha256` when `hash` is given (script S8).
    fn set_upload_status(
        &self,
        info: &UploadInfo,
        status: FileStatus,
        hash: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Deletes every chunk of the upload; absent is fine.
    fn delete_chunks(&self, info: &UploadInfo) -> Result<(), StoreError>;
    /// Housekeeping before a new upload of `size` bytes, and whether it fits: the embedded
    /// store removes uploads past their expiry and files past `settings.retention`, then checks
    /// `settings.total_cap`. Elasticsearch keeps its data streams with its own lifecycle, so
    /// stores without a cap of their own say yes.
    fn admit(
        &self,
        _size: u64,
        _settings: &FileSettings,
        _now: SystemTime,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }
    /// Metadata documents of uploads (of one agent when given), with `_id` added, newest first.
    fn list_uploads(&self, agent_id: Option<&str>) -> Result<Vec<Map<String, Value>>, StoreError>;
    /// The metadata document with this `_id` (`None` when absent).
    fn upload_doc(&self, doc_id: &str) -> Result<Option<Map<String, Value>>, StoreError>;
    /// The bytes of one chunk (`None` when absent).
    fn read_chunk(&self, info: &UploadInfo, pos: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// The metadata document of a file for delivery that `from` may see (`None`: no match).
    fn delivery_meta(
        &self,
        _file_id: &str,
        _from: DeliveryFrom<'_>,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        Ok(None)
    }
    /// Where a delivery file's bytes are.
    fn delivery_bytes(
        &self,
        _file_id: &str,
        _from: DeliveryFrom<'_>,
    ) -> Result<DeliveryBytes, StoreError> {
        Ok(DeliveryBytes::Chunks(Vec::new()))
    }
    /// The bytes of the chunk a [`DeliveryBytes::Chunks`] locator names.
    fn read_part(&self, _locator: &str) -> Result<Vec<u8>, StoreError> {
        Err(StoreError::NotFound)
    }
    /// The operator places a file for agents (stores without Kibana): a document from
    /// [`super::delivery::placed_doc`] under a new id; `Conflict` when it exists.
    fn place_begin(&self, _id: &str, _doc: &Map<String, Value>) -> Result<(), StoreError> {
        Err(not_here())
    }
    /// Part `n` (from 0, every part but the last [`CHUNK_SIZE`] bytes) of a placed file.
    fn place_part(&self, _id: &str, _n: u64, _bytes: &[u8]) -> Result<(), StoreError> {
        Err(not_here())
    }
    /// Completes a placed file (size and digest checked): its READY document.
    fn place_complete(&self, _id: &str) -> Result<Map<String, Value>, StoreError> {
        Err(not_here())
    }
    /// Documents of the placed files, with `_id`.
    fn list_placed(&self) -> Result<Vec<Map<String, Value>>, StoreError> {
        Ok(Vec::new())
    }
}

/// Placing files is for the stores without Kibana (Kibana and Endpoint place them in
/// Elasticsearch).
fn not_here() -> StoreError {
    StoreError::Failed {
        status: 400,
        detail: "files for agents are placed with Kibana in Elasticsearch mode".into(),
    }
}

/// Sets `file.Status` (and `transithash`) in a metadata document, as script S8 does.
pub fn apply_status(doc: &mut Map<String, Value>, status: FileStatus, hash: Option<&str>) {
    if let Some(file) = doc.get_mut("file").and_then(Value::as_object_mut) {
        file.insert("Status".into(), Value::from(status.as_str()));
    }
    if let Some(hash) = hash.filter(|h| !h.is_empty()) {
        doc.insert("transithash".into(), serde_json::json!({ "sha256": hash }));
    }
}

/// Newest first by `upload_start`, with `_id` added: what the operator's listing shows.
pub fn listing(
    docs: impl IntoIterator<Item = (String, Map<String, Value>)>,
) -> Vec<Map<String, Value>> {
    let mut out: Vec<Map<String, Value>> = docs
        .into_iter()
        .map(|(id, mut doc)| {
            doc.insert("_id".into(), Value::from(id));
            doc
        })
        .collect();
    out.sort_by_key(|d| std::cmp::Reverse(d.get("upload_start").and_then(Value::as_i64)));
    out
}

/// One byte range of a file, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte.
    pub end: u64,
}

impl ByteRange {
    /// Parses a `Range` header against a file of `size` bytes: one `bytes=a-b`, `bytes=a-` or
    /// `bytes=-n` (the end is clamped to the file). Several ranges, another unit, or a range
    /// that starts past the end are refused with the reason (answered as 416).
    pub fn parse(header: &str, size: u64) -> Result<ByteRange, &'static str> {
        let spec = header
            .trim()
            .strip_prefix("bytes=")
            .ok_or("range not satisfiable")?;
        if spec.contains(',') {
            return Err("Multipart ranges not satisfiable");
        }
        let (first, last) = spec.split_once('-').ok_or("range not satisfiable")?;
        let number = |s: &str| s.trim().parse::<u64>().map_err(|_| "range not satisfiable");
        let (start, end) = match (first.trim().is_empty(), last.trim().is_empty()) {
            (true, false) => {
                let n = number(last)?.min(size);
                (size - n, size.saturating_sub(1))
            }
            (false, true) => (number(first)?, size.saturating_sub(1)),
            (false, false) => (number(first)?, number(last)?.min(size.saturating_sub(1))),
            (true, true) => return Err("range not satisfiable"),
        };
        if size == 0 || start >= size || start > end {
            return Err("range not satisfiable");
        }
        Ok(ByteRange { start, end })
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Never empty (a parsed range has at least one byte).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The bytes of `range` of an upload, read chunk by chunk (only the chunks it touches).
pub fn read_range(
    files: &dyn FileStore,
    info: &UploadInfo,
    range: ByteRange,
) -> Result<Vec<u8>, StoreError> {
    let chunk_size = info.chunk_size.max(1);
    let mut out = Vec::with_capacity(usize::try_from(range.len()).unwrap_or(0));
    for pos in range.start / chunk_size..=range.end / chunk_size {
        let chunk = files
            .read_chunk(info, pos)?
            .ok_or_else(|| StoreError::Failed {
                status: 404,
                detail: format!("chunk {pos} of {} is missing", info.doc_id),
            })?;
        let base = pos * chunk_size;
        let from = range.start.saturating_sub(base);
        let to = (range.end + 1 - base).min(chunk.len() as u64);
        let slice = usize::try_from(from)
            .ok()
            .zip(usize::try_from(to).ok())
            .and_then(|(f, t)| chunk.get(f..t))
            .ok_or_else(|| StoreError::Failed {
                status: 500,
                detail: format!(
                    "chunk {pos} of {} is shorter than its file says",
                    info.doc_id
                ),
            })?;
        out.extend_from_slice(slice);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::files_memory::MemoryFiles;

    #[test]
    fn ranges_parse_like_go_http() {
        let r = |h| ByteRange::parse(h, 100);
        assert_eq!(r("bytes=0-9"), Ok(ByteRange { start: 0, end: 9 }));
        assert_eq!(r("bytes=90-"), Ok(ByteRange { start: 90, end: 99 }));
        assert_eq!(r("bytes=-10"), Ok(ByteRange { start: 90, end: 99 }));
        assert_eq!(r("bytes=50-500"), Ok(ByteRange { start: 50, end: 99 }));
        assert_eq!(r("bytes=0-1,5-6"), Err("Multipart ranges not satisfiable"));
        assert_eq!(r("bytes=100-"), Err("range not satisfiable"));
        assert_eq!(r("bytes=5-4"), Err("range not satisfiable"));
        assert_eq!(r("items=0-1"), Err("range not satisfiable"));
        assert_eq!(r("bytes=x-1"), Err("range not satisfiable"));
    }

    #[test]
    fn a_range_across_chunks_is_read_from_each() {
        let files = MemoryFiles::default();
        let info = UploadInfo {
            upload_id: "u".into(),
            doc_id: "d".into(),
            source: "agent".into(),
            agent_id: "a".into(),
            action_id: "x".into(),
            size: 10,
            chunk_size: 4,
            start_ms: 0,
            status: FileStatus::Ready,
        };
        let data = b"0123456789";
        for (pos, part) in data.chunks(4).enumerate() {
            files
                .write_chunk(
                    &info,
                    &ChunkWrite {
                        pos: pos as u64,
                        last: pos == 2,
                        sha2: "",
                        data: part,
                        timestamp_ms: 0,
                    },
                )
                .unwrap();
        }
        let read = |start, end| read_range(&files, &info, ByteRange { start, end }).unwrap();
        assert_eq!(read(0, 9), data);
        assert_eq!(read(3, 8), b"345678");
        assert_eq!(read(8, 9), b"89");
    }
}
